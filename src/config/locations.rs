//! Lines of the configuration values that name other files, kept after
//! loading so that a problem found when such a file is read later names the
//! key and line that named it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::problem::Problem;

/// Dotted key of the menu entries of `[[service_lines]]`.
const MENU_KEY: &str = "service_lines.menu";

/// Lines in the configuration file of the values that name files, folders
/// or menu prompts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyLocations {
    /// The configuration file, named in every problem.
    file: PathBuf,
    /// 1-based line of each key that names a file or folder, by dotted key
    /// (`secrets.pepper_file`).
    keys: HashMap<String, usize>,
    /// 1-based line of each menu entry, by service line name and request
    /// type. Every service line has its own `service_lines.menu` key, so the
    /// dotted key alone cannot tell their lines apart.
    menu_entries: HashMap<(String, String), usize>,
}

impl KeyLocations {
    /// Creates an empty set of locations in the configuration file `file`.
    pub(crate) fn new(file: &Path) -> KeyLocations {
        KeyLocations {
            file: file.to_path_buf(),
            ..KeyLocations::default()
        }
    }

    /// Records that `key` was written on `line`.
    pub(crate) fn insert_key(&mut self, key: &str, line: Option<usize>) {
        if let Some(line) = line {
            self.keys.insert(key.to_string(), line);
        }
    }

    /// Records that the menu of `service_line` lists `request_type` on
    /// `line`.
    pub(crate) fn insert_menu_entry(
        &mut self,
        service_line: &str,
        request_type: &str,
        line: Option<usize>,
    ) {
        if let Some(line) = line {
            let entry = (service_line.to_string(), request_type.to_string());
            self.menu_entries.insert(entry, line);
        }
    }

    /// Creates a problem about the value of `key`, placed on its line when
    /// the key was recorded.
    pub fn problem(&self, key: &str, message: impl Into<String>) -> Problem {
        let line = self.keys.get(key).copied();
        Problem::new(&self.file, line, Some(key), message)
    }

    /// Creates a problem about the entry `request_type` in the menu of the
    /// service line `service_line`, placed on the entry's line.
    pub fn menu_entry_problem(
        &self,
        service_line: &str,
        request_type: &str,
        message: impl Into<String>,
    ) -> Problem {
        let entry = (service_line.to_string(), request_type.to_string());
        let line = self.menu_entries.get(&entry).copied();
        Problem::new(&self.file, line, Some(MENU_KEY), message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_key_has_line() {
        let mut locations = KeyLocations::new(Path::new("ivr.toml"));
        locations.insert_key("secrets.pepper_file", Some(96));
        let problem = locations.problem("secrets.pepper_file", "has mode 644");
        assert_eq!(
            problem.to_string(),
            "ivr.toml:96: secrets.pepper_file: has mode 644"
        );
    }

    #[test]
    fn unrecorded_key_has_no_line() {
        let locations = KeyLocations::new(Path::new("ivr.toml"));
        let problem = locations.problem("secrets.pepper_file", "has mode 644");
        assert_eq!(
            problem.to_string(),
            "ivr.toml: secrets.pepper_file: has mode 644"
        );
    }

    #[test]
    fn menu_entries_kept_apart() {
        let mut locations = KeyLocations::new(Path::new("ivr.toml"));
        locations.insert_menu_entry("default", "information", Some(10));
        locations.insert_menu_entry("business", "information", Some(20));
        let problem = locations.menu_entry_problem("business", "information", "no prompt");
        assert_eq!(
            problem.to_string(),
            "ivr.toml:20: service_lines.menu: no prompt"
        );
    }
}
