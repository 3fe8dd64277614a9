//! Typed access to a parsed TOML document that records a [`Problem`] with the
//! key and line for every missing, unknown or mistyped value, instead of
//! stopping at the first one as serde does.

use std::path::Path;

use toml_edit::{Item, Table, TableLike};

use super::locations::KeyLocations;
use super::problem::{line_of, Problem};

/// Layout of a top-level section, with its known keys.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Shape {
    /// A table of values (`[flow]`) with these keys.
    Keys(&'static [&'static str]),
    /// A table of named tables (`[levels.basic]`), each read by its own
    /// reader, which checks their keys.
    NamedTables,
    /// An array of tables (`[[service_lines]]`), each read by its own
    /// reader, which checks their keys.
    ArrayOfTables,
}

/// A table in the document with the dotted prefix of its keys and the line
/// of its header, so that problems about it name both.
#[derive(Clone, Copy)]
pub(crate) struct TableRef<'d> {
    /// The table.
    pub table: &'d dyn TableLike,
    /// Line of the table header, where a problem about a missing key is
    /// placed.
    pub line: Option<usize>,
}

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
    /// Lines of the values that name files or prompts, kept in the
    /// [`Config`](super::Config) for problems found when those are read.
    pub locations: KeyLocations,
}

impl<'d> TomlReader<'d> {
    pub fn new(path: &'d Path, text: &'d str, root: &'d Table) -> TomlReader<'d> {
        TomlReader {
            path,
            text,
            root,
            problems: Vec::new(),
            locations: KeyLocations::new(path),
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

    /// Checks the document against `schema` (section name, shape and whether
    /// it is required): every required section must be present, and every
    /// section or key not in the schema is a problem, which catches typos.
    pub fn check_schema(&mut self, schema: &[(&str, Shape, bool)]) {
        let known_sections: Vec<&str> = schema.iter().map(|(name, _, _)| *name).collect();

        for (name, item) in self.root.iter() {
            let line = self.line(self.root.key(name).and_then(|key| key.span()));
            match schema.iter().find(|(section, _, _)| *section == name) {
                None => self.problem(
                    line,
                    Some(name),
                    format!(
                        "unknown section or key; known sections are {}",
                        known_sections.join(", ")
                    ),
                ),
                Some((section, Shape::ArrayOfTables, _)) => {
                    if item.as_array_of_tables().is_none() {
                        self.problem(
                            line,
                            Some(name),
                            format!(
                                "must be an array of tables ([[{section}]]), found {}",
                                item.type_name()
                            ),
                        );
                    }
                }
                Some((section, shape, _)) => match item.as_table_like() {
                    None => self.problem(
                        line,
                        Some(name),
                        format!("must be a table ([{section}]), found {}", item.type_name()),
                    ),
                    Some(table) => {
                        if let Shape::Keys(keys) = shape {
                            self.check_keys(section, table, keys);
                        }
                    }
                },
            }
        }

        for (section, _, required) in schema {
            if *required && !self.root.contains_key(section) {
                self.problem(None, None, format!("missing section [{section}]"));
            }
        }
    }

    /// Records a problem for every key of `table` not in `keys`. `section` is
    /// the dotted prefix of the table's keys.
    pub fn check_keys(&mut self, section: &str, table: &dyn TableLike, keys: &[&str]) {
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

    /// Returns the top-level table `section` with the line of its header, or
    /// `None` when it is missing or not a table.
    pub fn section(&self, section: &str) -> Option<TableRef<'d>> {
        let root = self.root;
        let table = root.get(section)?.as_table_like()?;
        let line = self.line(root.key(section).and_then(|k| k.span()));
        Some(TableRef { table, line })
    }

    /// Returns the tables of `item` (a table of named tables) with their
    /// names and header lines, recording a problem for every entry that is
    /// not a table. `prefix` is the dotted key of `item`.
    pub fn named_tables(
        &mut self,
        prefix: &str,
        item: &'d dyn TableLike,
    ) -> Vec<(&'d str, TableRef<'d>)> {
        let mut tables = Vec::new();
        for (name, value) in item.iter() {
            let line = self.line(item.key(name).and_then(|k| k.span()));
            match value.as_table_like() {
                Some(table) => tables.push((name, TableRef { table, line })),
                None => self.problem(
                    line,
                    Some(&format!("{prefix}.{name}")),
                    format!(
                        "must be a table ([{prefix}.{name}]), found {}",
                        value.type_name()
                    ),
                ),
            }
        }
        tables
    }

    /// Returns the elements of the array of tables `[[section]]` at the top
    /// level, or of `[[parent.key]]` within `parent`, with the header line of
    /// each. Returns an empty list when it is missing or of another type,
    /// which [`TomlReader::check_schema`] or the caller reports.
    pub fn array_of_tables(
        &self,
        parent: Option<&'d dyn TableLike>,
        key: &str,
    ) -> Vec<TableRef<'d>> {
        let item = match parent {
            Some(table) => table.get(key),
            None => self.root.get(key),
        };
        let Some(array) = item.and_then(Item::as_array_of_tables) else {
            return Vec::new();
        };
        array
            .iter()
            .map(|table| {
                let line = self.line(table.span()).or_else(|| {
                    table
                        .iter()
                        .next()
                        .and_then(|(name, _)| self.line(table.key(name).and_then(|k| k.span())))
                        .map(|line| line.saturating_sub(1))
                });
                TableRef {
                    table: table as &dyn TableLike,
                    line,
                }
            })
            .collect()
    }

    /// Returns the value of `section.key`. A missing key is a problem when
    /// `required`, placed on the section's header line.
    pub fn get(&mut self, section: &str, key: &str, required: bool) -> Option<Field<'d>> {
        let table = self.section(section)?;
        self.get_in(&table, section, key, required)
    }

    /// Returns the value of `key` in `table`, whose keys are named
    /// `prefix.key` in problems. A missing key is a problem when `required`,
    /// placed on the table's header line.
    pub fn get_in(
        &mut self,
        table: &TableRef<'d>,
        prefix: &str,
        key: &str,
        required: bool,
    ) -> Option<Field<'d>> {
        let dotted = format!("{prefix}.{key}");

        let Some((found_key, item)) = table.table.get_key_value(key) else {
            if required {
                self.problem(
                    table.line,
                    Some(&dotted),
                    format!("missing key in [{prefix}]"),
                );
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
        self.as_string(field)
    }

    /// Returns `field` as a string, recording a problem when it is not one.
    pub fn as_string(&mut self, field: Field<'d>) -> Option<(String, Field<'d>)> {
        match field.item.as_str() {
            Some(value) => Some((value.to_string(), field)),
            None => {
                let found = field.item.type_name();
                self.field_problem(&field, format!("must be a string, found {found}"));
                None
            }
        }
    }

    /// Returns `field` as a boolean, recording a problem when it is not one.
    pub fn as_bool(&mut self, field: Field<'d>) -> Option<(bool, Field<'d>)> {
        match field.item.as_bool() {
            Some(value) => Some((value, field)),
            None => {
                let found = field.item.type_name();
                self.field_problem(&field, format!("must be true or false, found {found}"));
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
        self.as_integer(field, range)
    }

    /// Returns `field` as an integer in `range`, recording a problem when it
    /// is not an integer or out of range.
    pub fn as_integer(
        &mut self,
        field: Field<'d>,
        range: std::ops::RangeInclusive<i64>,
    ) -> Option<(i64, Field<'d>)> {
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
        self.as_string_array(field)
    }

    /// Returns `field` as a list of strings with the line of each element,
    /// recording a problem for a non-array or a non-string element.
    pub fn as_string_array(&mut self, field: Field<'d>) -> Option<Vec<(String, Field<'d>)>> {
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
