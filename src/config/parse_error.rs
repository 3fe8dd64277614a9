//! Turns a TOML syntax error into a [`Problem`] at its line.
//!
//! toml_edit reports a duplicate key as "duplicate key" with the span of the
//! second occurrence only, so the dotted key and the line of the first
//! occurrence are worked out here from the text before that line.

use std::ops::Range;
use std::path::Path;

use toml_edit::{Document, Item, Key, Table, TableLike, TomlError};

use super::problem::{line_of, Problem};

/// Message of toml_edit 0.23 for a key or table defined twice.
const DUPLICATE_KEY_MESSAGE: &str = "duplicate key";

/// A key or table header that repeats an earlier one.
struct Duplicate {
    /// Dotted key, such as `flow.max_attempts` or `flow` for a second
    /// `[flow]` header.
    key: String,
    /// Whether the repeat is a table header (`[flow]`) rather than a
    /// key-value pair, because the fix differs.
    is_table: bool,
    /// 1-based line of the first occurrence, when it could be found.
    first_line: Option<usize>,
}

/// Converts `error` from parsing `text` into a problem in `path`. A duplicate
/// key names its dotted key and the line of its first occurrence.
pub(crate) fn problem_from_parse_error(path: &Path, text: &str, error: &TomlError) -> Problem {
    let span = error.span();
    let line = span.clone().map(|span| line_of(text, span.start));
    let message = error.message().trim();

    if message != DUPLICATE_KEY_MESSAGE {
        return Problem::new(path, line, None, format!("invalid TOML: {message}"));
    }

    let Some(span) = span else {
        return Problem::new(path, line, None, format!("invalid TOML: {message}"));
    };

    match find_duplicate(text, span.clone()) {
        Some(duplicate) => Problem::new(path, line, Some(&duplicate.key), duplicate.message()),
        None => {
            // Keys inside inline tables and text that does not parse before
            // the duplicate get the key as written, without its table.
            let written = text.get(span).unwrap_or_default().trim();
            Problem::new(
                path,
                line,
                None,
                format!("invalid TOML: duplicate key `{written}`; keep one of them"),
            )
        }
    }
}

impl Duplicate {
    fn message(&self) -> String {
        let first = match self.first_line {
            Some(line) => format!(", first defined on line {line}"),
            None => String::new(),
        };
        if self.is_table {
            format!(
                "duplicate table{first}; merge the two into one [{}]",
                self.key
            )
        } else {
            format!("duplicate key{first}; keep one of them")
        }
    }
}

/// Finds the dotted key of the duplicate whose last key segment is at
/// `span`, and where it was first defined. Returns `None` when the text
/// before the duplicate's line does not parse on its own, or when the
/// duplicate is inside an inline table.
fn find_duplicate(text: &str, span: Range<usize>) -> Option<Duplicate> {
    let line_start = text
        .get(..span.start)?
        .rfind('\n')
        .map_or(0, |index| index + 1);
    let before = Document::parse(text.get(..line_start)?).ok()?;
    let root = before.as_table();

    // The line up to the end of the duplicate segment is a table header
    // (`[a.b`) or the key of a key-value pair (`a.b`).
    let written = text.get(line_start..span.end)?.trim_start();
    let header = written
        .strip_prefix("[[")
        .or_else(|| written.strip_prefix('['));
    let is_table = header.is_some();
    let line_keys = Key::parse(header.unwrap_or(written).trim()).ok()?;

    let mut path = if is_table {
        Vec::new()
    } else {
        last_header_path(root)
    };
    path.extend(line_keys.iter().map(|key| key.get().to_string()));

    let first_line = first_key_offset(root, &path).map(|offset| line_of(text, offset));
    Some(Duplicate {
        key: path.join("."),
        is_table,
        first_line,
    })
}

/// Returns the path of the table whose header comes last in the document,
/// which is the table that the following key-value pairs go into. Empty
/// when there is no header.
fn last_header_path(root: &Table) -> Vec<String> {
    let mut last: Option<(usize, Vec<String>)> = None;
    collect_last_header(root, &mut Vec::new(), &mut last);
    last.map(|(_, path)| path).unwrap_or_default()
}

/// Walks the tables below `table`, whose path is `path`, and keeps in `last`
/// the header with the highest start offset.
fn collect_last_header(
    table: &Table,
    path: &mut Vec<String>,
    last: &mut Option<(usize, Vec<String>)>,
) {
    for (name, item) in table.iter() {
        path.push(name.to_string());

        let children: Vec<&Table> = match item {
            Item::Table(child) => vec![child],
            Item::ArrayOfTables(array) => array.iter().collect(),
            Item::None | Item::Value(_) => Vec::new(),
        };
        for child in children {
            // Implicit tables (`levels` above `[levels.basic]`) and tables of
            // dotted keys have no header of their own.
            let has_header = !child.is_implicit() && !child.is_dotted();
            if let Some(start) = child.span().map(|span| span.start).filter(|_| has_header) {
                if last.as_ref().is_none_or(|(best, _)| start >= *best) {
                    *last = Some((start, path.clone()));
                }
            }
            collect_last_header(child, path, last);
        }

        path.pop();
    }
}

/// Returns the byte offset of the key at `path` in `root`. In an array of
/// tables the last element is searched, because later keys go there.
fn first_key_offset(root: &Table, path: &[String]) -> Option<usize> {
    let (last, parents) = path.split_last()?;

    let mut table: &dyn TableLike = root;
    for name in parents {
        table = match table.get(name)? {
            Item::Table(child) => child,
            Item::ArrayOfTables(array) => array.iter().last()?,
            Item::Value(value) => value.as_inline_table()?,
            Item::None => return None,
        };
    }

    table.key(last)?.span().map(|span| span.start)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Returns the problem displayed for `text`, which must fail to parse.
    fn problem(text: &str) -> String {
        let error = Document::parse(text).unwrap_err();
        problem_from_parse_error(Path::new("ivr.toml"), text, &error).to_string()
    }

    #[test]
    fn duplicate_key_in_table() {
        let text =
            "[sip]\nlisten = \"a\"\n\n[flow]\nmax_attempts = 3\nother = 1\nmax_attempts = 4\n";
        assert_eq!(
            problem(text),
            "ivr.toml:7: flow.max_attempts: duplicate key, first defined on line 5; keep one of them"
        );
    }

    #[test]
    fn duplicate_key_at_top_level() {
        let text = "version = 1\nversion = 2\n";
        assert_eq!(
            problem(text),
            "ivr.toml:2: version: duplicate key, first defined on line 1; keep one of them"
        );
    }

    #[test]
    fn duplicate_dotted_key() {
        let text = "[store]\nredis.url = \"a\"\nredis.url = \"b\"\n";
        assert_eq!(
            problem(text),
            "ivr.toml:3: store.redis.url: duplicate key, first defined on line 2; keep one of them"
        );
    }

    #[test]
    fn duplicate_quoted_key() {
        let text = "[flow]\nmax_attempts = 3\n\"max_attempts\" = 4\n";
        assert_eq!(
            problem(text),
            "ivr.toml:3: flow.max_attempts: duplicate key, first defined on line 2; keep one of them"
        );
    }

    #[test]
    fn duplicate_key_in_array_of_tables() {
        let text = "[[lines]]\nname = \"a\"\n\n[[lines]]\nname = \"b\"\nmenu = []\nname = \"c\"\n";
        assert_eq!(
            problem(text),
            "ivr.toml:7: lines.name: duplicate key, first defined on line 5; keep one of them"
        );
    }

    #[test]
    fn duplicate_key_in_subtable() {
        let text = "[levels.basic]\nall_of = []\n\n[levels.high]\nall_of = []\nall_of = []\n";
        assert_eq!(
            problem(text),
            "ivr.toml:6: levels.high.all_of: duplicate key, first defined on line 5; keep one of them"
        );
    }

    #[test]
    fn duplicate_table_header() {
        let text = "[flow]\nmax_attempts = 3\n\n[http]\nlisten = \"a\"\n\n[ flow ]\nother = 1\n";
        assert_eq!(
            problem(text),
            "ivr.toml:7: flow: duplicate table, first defined on line 1; merge the two into one [flow]"
        );
    }

    #[test]
    fn duplicate_subtable_header() {
        let text = "[levels.basic]\nall_of = []\n\n[levels.basic]\nany_of = []\n";
        assert_eq!(
            problem(text),
            "ivr.toml:4: levels.basic: duplicate table, first defined on line 1; merge the two into one [levels.basic]"
        );
    }

    #[test]
    fn duplicate_in_inline_table() {
        let text = "[sip]\nlisten = \"a\"\nhttp = { listen = \"a\", listen = \"b\" }\n";
        assert_eq!(
            problem(text),
            "ivr.toml:3: invalid TOML: duplicate key `listen`; keep one of them"
        );
    }

    #[test]
    fn other_syntax_error_keeps_message() {
        let text = "[flow]\nmax_attempts = \n";
        let displayed = problem(text);
        assert!(
            displayed.starts_with("ivr.toml:2: invalid TOML: "),
            "{displayed}"
        );
        assert!(!displayed.contains("duplicate"), "{displayed}");
    }
}
