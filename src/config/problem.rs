//! Problems found in a configuration or customers file, reported together.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in an input file, displayed as `FILE:LINE: KEY: message`.
/// Line and key are left out of the display when unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// File that contains the problem.
    pub file: PathBuf,
    /// 1-based line, when the problem can be placed on one.
    pub line: Option<usize>,
    /// Dotted TOML key (`flow.max_attempts`) or CSV column (`phones`).
    pub key: Option<String>,
    /// Description of the fault and its fix, without secret or personal
    /// values.
    pub message: String,
}

impl Problem {
    /// Creates a problem.
    pub fn new(
        file: &Path,
        line: Option<usize>,
        key: Option<&str>,
        message: impl Into<String>,
    ) -> Problem {
        Problem {
            file: file.to_path_buf(),
            line,
            key: key.map(str::to_string),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": {key}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found while loading a file, sorted by line, so that one run
/// of `check-config` shows them all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    /// The problems. Never empty when returned as an error.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, problem) in self.problems.iter().enumerate() {
            if index > 0 {
                writeln!(f)?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Returns the 1-based line of a byte offset in `text`. An offset past the
/// end gives the last line.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()
        .get(..end)
        .map_or(0, |before| before.iter().filter(|b| **b == b'\n').count())
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_with_line_and_key() {
        let problem = Problem::new(
            Path::new("ivr.toml"),
            Some(12),
            Some("flow.max_attempts"),
            "must be 1 to 5",
        );
        assert_eq!(
            problem.to_string(),
            "ivr.toml:12: flow.max_attempts: must be 1 to 5"
        );
    }

    #[test]
    fn display_without_line_or_key() {
        let problem = Problem::new(Path::new("ivr.toml"), None, None, "missing section [sip]");
        assert_eq!(problem.to_string(), "ivr.toml: missing section [sip]");
        let problem = Problem::new(Path::new("ivr.toml"), Some(3), None, "expected `=`");
        assert_eq!(problem.to_string(), "ivr.toml:3: expected `=`");
    }

    #[test]
    fn errors_display_one_per_line() {
        let errors = ConfigErrors {
            problems: vec![
                Problem::new(Path::new("a"), Some(1), None, "first"),
                Problem::new(Path::new("a"), Some(2), None, "second"),
            ],
        };
        assert_eq!(errors.to_string(), "a:1: first\na:2: second");
    }

    #[test]
    fn line_of_counts_newlines() {
        let text = "a\nbb\nccc";
        assert_eq!(line_of(text, 0), 1);
        assert_eq!(line_of(text, 2), 2);
        assert_eq!(line_of(text, 5), 3);
        assert_eq!(line_of(text, 999), 3);
    }
}
