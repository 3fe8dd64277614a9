//! Checks the prompt catalog (`prompts/catalog.toml`) for prompts that would
//! request data the service never requests.

use std::path::Path;

use super::forbidden::{forbidden_data, forbidden_message};
use super::parse_error::problem_from_parse_error;
use super::problem::{line_of, Problem};

/// Prefixes of the ids of prompts that ask the caller for something.
const ASKING_PREFIXES: &[&str] = &["enter_", "ask_"];

/// Checks the prompt catalog at `path`: every prompt whose id starts with
/// `enter_` or `ask_` and names a full IBAN, a card number, a password or
/// PIN, or a BSN is a problem. Returns every problem found; a file that
/// cannot be read or parsed is one problem.
///
/// Only ids are checked, because prompts such as `what_we_never_ask` name
/// that data in their text to warn the caller.
#[must_use]
pub fn check_prompt_catalog(path: &Path) -> Vec<Problem> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) => {
            return vec![Problem::new(
                path,
                None,
                None,
                format!("failed to read prompt catalog: {error}"),
            )]
        }
    };
    let document = match toml_edit::Document::parse(text.as_str()) {
        Ok(document) => document,
        Err(error) => return vec![problem_from_parse_error(path, &text, &error)],
    };

    let root = document.as_table();
    let mut problems = Vec::new();
    for (id, _) in root.iter() {
        let asks = ASKING_PREFIXES.iter().any(|prefix| id.starts_with(prefix));
        if !asks {
            continue;
        }
        if let Some(data) = forbidden_data(id) {
            let line = root
                .key(id)
                .and_then(|key| key.span())
                .map(|span| line_of(&text, span.start));
            problems.push(Problem::new(
                path,
                line,
                Some(id),
                forbidden_message("prompt", id, data),
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_catalog_passes() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts/catalog.toml");
        assert_eq!(check_prompt_catalog(&path), Vec::new());
    }

    #[test]
    fn asking_prompt_for_forbidden_data_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.toml");
        let text = "[welcome]\nnl = \"Welkom\"\n\n[enter_full_iban]\nnl = \"Toets uw IBAN\"\n\n[ask_pincode]\nnl = \"Uw pincode\"\n\n[iban_explained]\nnl = \"Wij vragen nooit uw IBAN\"\n";
        std::fs::write(&path, text).unwrap();

        let problems: Vec<String> = check_prompt_catalog(&path)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(problems.len(), 2, "{problems:?}");
        let prefix = path.display().to_string();
        assert!(
            problems[0].starts_with(&format!(
                "{prefix}:4: enter_full_iban: prompt `enter_full_iban` would ask for a full IBAN"
            )),
            "{problems:?}"
        );
        assert!(
            problems[1].starts_with(&format!(
                "{prefix}:7: ask_pincode: prompt `ask_pincode` would ask for a PIN"
            )),
            "{problems:?}"
        );
    }

    #[test]
    fn unreadable_catalog_is_one_problem() {
        let problems = check_prompt_catalog(Path::new("/nonexistent/catalog.toml"));
        assert_eq!(problems.len(), 1);
        assert!(problems[0]
            .message
            .starts_with("failed to read prompt catalog"));
    }

    #[test]
    fn duplicate_prompt_names_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.toml");
        std::fs::write(&path, "[welcome]\nnl = \"Welkom\"\nnl = \"Hallo\"\n").unwrap();
        let problems = check_prompt_catalog(&path);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].line, Some(3));
        assert_eq!(problems[0].key.as_deref(), Some("welcome.nl"));
    }

    #[test]
    fn invalid_catalog_names_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.toml");
        std::fs::write(&path, "[welcome]\nnl = \"Welkom\n").unwrap();
        let problems = check_prompt_catalog(&path);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].line, Some(2));
    }
}
