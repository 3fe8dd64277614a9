//! Typed access to a parsed TOML document that records a [`Problem`] with the
//! key and line for every missing, unknown or mistyped value, instead of
//! stopping at the first one as serde does.

use std::path::Path;

use toml_edit::{Item, Table, TableLike};

use super::problem::{line_of, Problem};

/// A value found in the document, with the dotted key and line that a problem
/// about it names.
pub(crate) struct Field<'d> {
    /// Dotted key, such as `flow.max_attempts`.
    pub key: String,
    /// The parsed value.
    pub item: &'d Item,
    /// 1-based line of the value.
    pub line: Option<usize>,
}

/// Reads values from one TOML document and collects the problems found.
pub(crate) struct TomlReader<'d> {
    /// File name for problems.
    path: &'d Path,
    /// Source text, to turn byte spans into lines.
    text: &'d str,
    /// Top-level table of the parsed document.
    root: &'d Table,
    /// Problems found so far, in the order found.
    pub problems: Vec<Problem>,
}

impl<'d> TomlReader<'d> {
    pub fn new(path: &'d Path, text: &'d str, root: &'d Table) -> TomlReader<'d> {
        TomlReader {
            path,
            text,
            root,
            problems: Vec::new(),
        }
    }

    /// Records a problem at `line` for `key`.
    pub fn problem(&mut self, line: Option<usize>, key: Option<&str>, message: impl Into<String>) {
        self.problems
            .push(Problem::new(self.path, line, key, message));
    }

    /// Records a problem about `field`.
    pub fn field_problem(&mut self, field: &Field<'_>, message: impl Into<String>) {
        self.problems.push(Problem::new(
            self.path,
            field.line,
            Some(&field.key),
            message,
        ));
    }

    fn line(&self, span: Option<std::ops::Range<usize>>) -> Option<usize> {
        span.map(|span| line_of(self.text, span.start))
    }

    /// Checks the document against `schema` (section name and its keys):
    /// every section must be present, and every section or key not in the
    /// schema is a problem, which catches typos.
    pub fn check_schema(&mut self, schema: &[(&str, &[&str])]) {
        let known_sections: Vec<&str> = schema.iter().map(|(name, _)| *name).collect();

        for (name, item) in self.root.iter() {
            let line = self.line(self.root.key(name).and_then(|key| key.span()));
            match schema.iter().find(|(section, _)| *section == name) {
                None => self.problem(
                    line,
                    Some(name),
                    format!(
                        "unknown section or key; known sections are {}",
                        known_sections.join(", ")
                    ),
                ),
                Some((section, keys)) => match item.as_table_like() {
                    None => self.problem(
                        line,
                        Some(name),
                        format!("must be a table ([{section}]), found {}", item.type_name()),
                    ),
                    Some(table) => self.check_keys(section, table, keys),
                },
            }
        }

        for (section, _) in schema {
            if !self.root.contains_key(section) {
                self.problem(None, None, format!("missing section [{section}]"));
            }
        }
    }

    fn check_keys(&mut self, section: &str, table: &dyn TableLike, keys: &[&str]) {
        for (name, _) in table.iter() {
            if keys.contains(&name) {
                continue;
            }
            let line = self.line(table.key(name).and_then(|key| key.span()));
            self.problem(
                line,
                Some(&format!("{section}.{name}")),
                format!(
                    "unknown key; known keys in [{section}] are {}",
                    keys.join(", ")
                ),
            );
        }
    }

    /// Returns the value of `section.key`. A missing key is a problem when
    /// `required`, placed on the section's header line.
    pub fn get(&mut self, section: &str, key: &str, required: bool) -> Option<Field<'d>> {
        let root = self.root;
        let table = root.get(section)?.as_table_like()?;
        let dotted = format!("{section}.{key}");

        let Some((found_key, item)) = table.get_key_value(key) else {
            if required {
                let line = self.line(root.key(section).and_then(|k| k.span()));
                self.problem(line, Some(&dotted), format!("missing key in [{section}]"));
            }
            return None;
        };

        let line = self.line(item.span().or_else(|| found_key.span()));
        Some(Field {
            key: dotted,
            item,
            line,
        })
    }

    /// Returns `section.key` as a string, recording a problem when it is
    /// missing (and required) or not a string.
    pub fn string(
        &mut self,
        section: &str,
        key: &str,
        required: bool,
    ) -> Option<(String, Field<'d>)> {
        let field = self.get(section, key, required)?;
        match field.item.as_str() {
            Some(value) => Some((value.to_string(), field)),
            None => {
                let found = field.item.type_name();
                self.field_problem(&field, format!("must be a string, found {found}"));
                None
            }
        }
    }

    /// Returns `section.key` as an integer in `range`, recording a problem
    /// when it is missing, not an integer or out of range.
    pub fn integer(
        &mut self,
        section: &str,
        key: &str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Option<(i64, Field<'d>)> {
        let field = self.get(section, key, true)?;
        let Some(value) = field.item.as_integer() else {
            let found = field.item.type_name();
            self.field_problem(&field, format!("must be an integer, found {found}"));
            return None;
        };
        if !range.contains(&value) {
            self.field_problem(
                &field,
                format!(
                    "is {value}, but must be {} to {}",
                    range.start(),
                    range.end()
                ),
            );
            return None;
        }
        Some((value, field))
    }

    /// Returns `section.key` as a list of strings with the line of each
    /// element, recording a problem for a missing key, a non-array or a
    /// non-string element.
    pub fn string_array(&mut self, section: &str, key: &str) -> Option<Vec<(String, Field<'d>)>> {
        let field = self.get(section, key, true)?;
        let Some(array) = field.item.as_array() else {
            let found = field.item.type_name();
            self.field_problem(
                &field,
                format!("must be an array of strings, found {found}"),
            );
            return None;
        };

        let mut values = Vec::new();
        for value in array.iter() {
            let line = self.line(value.span()).or(field.line);
            let element = Field {
                key: field.key.clone(),
                item: field.item,
                line,
            };
            match value.as_str() {
                Some(text) => values.push((text.to_string(), element)),
                None => self.field_problem(
                    &element,
                    format!("elements must be strings, found {}", value.type_name()),
                ),
            }
        }
        Some(values)
    }
}
