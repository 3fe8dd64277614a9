//! `[policy]`, `[levels.NAME]`, `[request_types.NAME]` and
//! `[[service_lines]]`: which factors each request type needs, read into a
//! [`Policy`].

use std::collections::HashMap;

use phonenumber::country;

use super::forbidden::{forbidden_data, forbidden_message};
use super::reader::{Field, TableRef, TomlReader};
use super::{check_sip_uri, Language};
use crate::verify::caller_id::to_e164;
use crate::verify::policy::{Factor, Level, Policy, RequestType, Rule, ServiceLine};

/// Maximum length of `policy.version`, which every token carries.
const MAX_VERSION_LEN: usize = 64;

/// Maximum length of a level, request type or service line name. Level
/// names are the token's `acr` claim and request type names go into tokens
/// and audit records, so they stay short.
const MAX_NAME_LEN: usize = 32;

/// Menu keys are 1 to 9; 0, `*` and `#` stay free for navigation.
const MAX_MENU_ITEMS: usize = 9;

/// `acr` value of a call that reached no level, so no level may use it.
const UNVERIFIED: &str = "unverified";

/// Keys of one `[levels.NAME]` table.
const LEVEL_KEYS: &[&str] = &["all_of", "any_of"];

/// Keys of one `[request_types.NAME]` table.
const REQUEST_TYPE_KEYS: &[&str] = &["level", "agent_queue_uri"];

/// Keys of one `[[service_lines]]` table.
const SERVICE_LINE_KEYS: &[&str] = &["name", "numbers", "language", "menu"];

/// Reads the policy. `default_queue` is `transfer.agent_queue_uri`, the
/// queue of request types without their own. Returns `None` when a problem
/// was recorded.
pub(crate) fn read_policy(
    reader: &mut TomlReader<'_>,
    default_queue: &str,
    region: country::Id,
) -> Option<Policy> {
    let problems_before = reader.problems.len();

    let version = read_version(reader);
    let levels = read_levels(reader);
    let request_types = read_request_types(reader, &levels, default_queue);
    let service_lines = read_service_lines(reader, &request_types, region);

    if reader.problems.len() > problems_before {
        return None;
    }

    // The checks above cover every case that Policy::new rejects, with
    // lines; this error is only a safety net.
    match Policy::new(version, levels, request_types, service_lines) {
        Ok(policy) => Some(policy),
        Err(error) => {
            reader.problem(None, None, error.to_string());
            None
        }
    }
}

fn read_version(reader: &mut TomlReader<'_>) -> String {
    let Some((value, field)) = reader.string("policy", "version", true) else {
        return String::new();
    };
    let printable = value.chars().all(|c| c.is_ascii_graphic() || c == ' ');
    if value.trim().is_empty() || value.len() > MAX_VERSION_LEN || !printable {
        reader.field_problem(
            &field,
            format!("must be 1 to {MAX_VERSION_LEN} printable ASCII characters, such as a date \"2026-12-01\", because every token carries it"),
        );
    }
    value
}

/// Records a problem when `name` is not a valid name of a `kind` or names
/// forbidden data. `line` and `key` place the problem.
fn check_name(
    reader: &mut TomlReader<'_>,
    kind: &str,
    name: &str,
    line: Option<usize>,
    key: &str,
) -> bool {
    if let Some(data) = forbidden_data(name) {
        reader.problem(line, Some(key), forbidden_message(kind, name, data));
        return false;
    }
    let mut chars = name.chars();
    let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_valid = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !starts_with_letter || !rest_valid || name.len() > MAX_NAME_LEN {
        reader.problem(
            line,
            Some(key),
            format!("{kind} name `{name}` must be 1 to {MAX_NAME_LEN} characters a-z, 0-9 and _, starting with a letter"),
        );
        return false;
    }
    true
}

fn read_levels(reader: &mut TomlReader<'_>) -> Vec<Level> {
    let Some(section) = reader.section("levels") else {
        return Vec::new();
    };
    let tables = reader.named_tables("levels", section.table);
    if tables.is_empty() {
        reader.problem(
            section.line,
            Some("levels"),
            "defines no level; define at least one, such as [levels.basic] with all_of = [\"contract_number\"]",
        );
    }

    let mut levels: Vec<Level> = Vec::new();
    for (name, table) in tables {
        let prefix = format!("levels.{name}");
        reader.check_keys(&prefix, table.table, LEVEL_KEYS);
        if !check_name(reader, "level", name, table.line, &prefix) {
            continue;
        }
        if name == UNVERIFIED {
            reader.problem(
                table.line,
                Some(&prefix),
                "`unverified` is the acr of a call that reached no level, so it cannot name a level",
            );
            continue;
        }

        let all_of = read_factor_list(reader, &table, &prefix, "all_of");
        let any_of = read_factor_list(reader, &table, &prefix, "any_of");
        for factor in &all_of {
            if any_of.contains(factor) {
                reader.problem(
                    table.line,
                    Some(&prefix),
                    format!("lists {factor} in both all_of and any_of; keep it in one of them"),
                );
            }
        }

        let rule = Rule { all_of, any_of };
        if rule.all_of.is_empty() && rule.any_of.is_empty() {
            reader.problem(
                table.line,
                Some(&prefix),
                "requires no factor; set all_of or any_of, because a level without factors verifies every caller",
            );
        } else if rule.satisfied_by_caller_id_alone() && !levels.is_empty() {
            reader.problem(
                table.line,
                Some(&prefix),
                "can be reached with caller_id_match alone, which only the first (lowest) level may allow, because caller ID can be spoofed; add a factor to all_of",
            );
        }
        levels.push(Level {
            name: name.to_string(),
            rule,
        });
    }
    levels
}

/// Reads a list of factor names, recording unknown, forbidden and repeated
/// names. A missing key is an empty list.
fn read_factor_list<'d>(
    reader: &mut TomlReader<'d>,
    table: &TableRef<'d>,
    prefix: &str,
    key: &str,
) -> Vec<Factor> {
    let Some(field) = reader.get_in(table, prefix, key, false) else {
        return Vec::new();
    };
    let Some(values) = reader.as_string_array(field) else {
        return Vec::new();
    };

    let mut factors = Vec::new();
    for (value, field) in values {
        match Factor::from_name(&value) {
            Some(factor) if factors.contains(&factor) => {
                reader.field_problem(&field, format!("lists {factor} twice"));
            }
            Some(factor) => factors.push(factor),
            None => match forbidden_data(&value) {
                Some(data) => {
                    reader.field_problem(&field, forbidden_message("factor", &value, data))
                }
                None => {
                    let known: Vec<&str> = Factor::ALL.iter().map(|f| f.name()).collect();
                    reader.field_problem(
                        &field,
                        format!(
                            "`{value}` is not a factor; known factors are {}",
                            known.join(", ")
                        ),
                    );
                }
            },
        }
    }
    factors
}

fn read_request_types(
    reader: &mut TomlReader<'_>,
    levels: &[Level],
    default_queue: &str,
) -> Vec<RequestType> {
    let Some(section) = reader.section("request_types") else {
        return Vec::new();
    };
    let tables = reader.named_tables("request_types", section.table);
    if tables.is_empty() {
        reader.problem(
            section.line,
            Some("request_types"),
            "defines no request type; define at least one, such as [request_types.information] with level = \"basic\"",
        );
    }

    let mut request_types = Vec::new();
    for (name, table) in tables {
        let prefix = format!("request_types.{name}");
        reader.check_keys(&prefix, table.table, REQUEST_TYPE_KEYS);
        if !check_name(reader, "request type", name, table.line, &prefix) {
            continue;
        }

        let level = match reader
            .get_in(&table, &prefix, "level", true)
            .and_then(|field| reader.as_string(field))
        {
            Some((value, field)) => {
                if !levels.iter().any(|known| known.name == value) {
                    let known: Vec<&str> = levels.iter().map(|l| l.name.as_str()).collect();
                    reader.field_problem(
                        &field,
                        format!(
                            "level `{value}` is not defined; defined levels are {}",
                            known.join(", ")
                        ),
                    );
                }
                value
            }
            None => String::new(),
        };

        let agent_queue_uri = match reader
            .get_in(&table, &prefix, "agent_queue_uri", false)
            .and_then(|field| reader.as_string(field))
        {
            Some((value, field)) => {
                check_sip_uri(reader, &value, &field);
                value
            }
            None => default_queue.to_string(),
        };

        request_types.push(RequestType {
            name: name.to_string(),
            level,
            agent_queue_uri,
        });
    }
    request_types
}

fn read_service_lines(
    reader: &mut TomlReader<'_>,
    request_types: &[RequestType],
    region: country::Id,
) -> Vec<ServiceLine> {
    let tables = reader.array_of_tables(None, "service_lines");
    if tables.is_empty() {
        return Vec::new();
    }

    let mut lines = Vec::new();
    let mut names: HashMap<String, Option<usize>> = HashMap::new();
    let mut numbers: HashMap<String, String> = HashMap::new();
    let mut fallback: Option<(String, Option<usize>)> = None;

    for table in tables {
        let prefix = "service_lines";
        reader.check_keys(prefix, table.table, SERVICE_LINE_KEYS);

        let name = reader
            .get_in(&table, prefix, "name", true)
            .and_then(|field| reader.as_string(field))
            .map(|(name, field)| {
                if check_name(reader, "service line", &name, field.line, &field.key) {
                    if let Some(first) = names.get(&name) {
                        let first = first.map_or("another".to_string(), |l| format!("line {l}"));
                        reader.field_problem(
                            &field,
                            format!("service line `{name}` is defined twice, first on {first}"),
                        );
                    }
                    names.insert(name.clone(), field.line);
                }
                name
            })
            .unwrap_or_default();

        let line_numbers = read_numbers(reader, &table, &name, &mut numbers, region);
        if line_numbers.is_empty() {
            match &fallback {
                Some((first, _)) => reader.problem(
                    table.line,
                    Some("service_lines.numbers"),
                    format!("service lines `{first}` and `{name}` both have no numbers, but exactly one may be the fallback line; give one of them numbers"),
                ),
                None => fallback = Some((name.clone(), table.line)),
            }
        }

        let language = match reader
            .get_in(&table, prefix, "language", true)
            .and_then(|field| reader.as_string(field))
        {
            Some((value, _)) if value == "nl" => Language::Nl,
            Some((value, _)) if value == "en" => Language::En,
            Some((value, field)) => {
                reader.field_problem(
                    &field,
                    format!("is `{value}`, but must be \"nl\" or \"en\""),
                );
                Language::Nl
            }
            None => Language::Nl,
        };

        let menu = read_menu(reader, &table, &name, request_types);
        lines.push(ServiceLine {
            name,
            numbers: line_numbers,
            language,
            menu,
        });
    }

    if fallback.is_none() {
        reader.problem(
            None,
            Some("service_lines"),
            "no service line is the fallback; give exactly one service line `numbers = []`, so that calls to other numbers have a menu",
        );
    }
    lines
}

/// Reads the dialled numbers of one service line into E.164. `seen` maps
/// every number read so far to its line's name, to catch a number on two
/// lines.
fn read_numbers<'d>(
    reader: &mut TomlReader<'d>,
    table: &TableRef<'d>,
    line_name: &str,
    seen: &mut HashMap<String, String>,
    region: country::Id,
) -> Vec<String> {
    let values = reader
        .get_in(table, "service_lines", "numbers", true)
        .and_then(|field| reader.as_string_array(field))
        .unwrap_or_default();

    let mut numbers = Vec::new();
    for (value, field) in values {
        match to_e164(&value, region) {
            Ok(e164) => {
                if let Some(other) = seen.get(&e164) {
                    reader.field_problem(
                        &field,
                        format!("`{value}` is also a number of service line `{other}`; a dialled number selects one line"),
                    );
                    continue;
                }
                seen.insert(e164.clone(), line_name.to_string());
                numbers.push(e164);
            }
            Err(error) => reader.field_problem(&field, format!("`{value}` {error}")),
        }
    }
    numbers
}

/// Reads the menu of the service line `line_name` and records the line of
/// each entry, where a missing menu prompt is reported.
fn read_menu<'d>(
    reader: &mut TomlReader<'d>,
    table: &TableRef<'d>,
    line_name: &str,
    request_types: &[RequestType],
) -> Vec<String> {
    let Some(field) = reader.get_in(table, "service_lines", "menu", true) else {
        return Vec::new();
    };
    let menu_field = Field {
        key: field.key.clone(),
        item: field.item,
        line: field.line,
    };
    let Some(values) = reader.as_string_array(field) else {
        return Vec::new();
    };

    if values.is_empty() || values.len() > MAX_MENU_ITEMS {
        reader.field_problem(
            &menu_field,
            format!(
                "has {} request types, but a menu offers 1 to {MAX_MENU_ITEMS}, on keys 1 to 9",
                values.len()
            ),
        );
    }

    let mut menu: Vec<String> = Vec::new();
    for (value, field) in values {
        if !request_types.iter().any(|known| known.name == value) {
            let known: Vec<&str> = request_types.iter().map(|r| r.name.as_str()).collect();
            reader.field_problem(
                &field,
                format!(
                    "request type `{value}` is not defined; defined request types are {}",
                    known.join(", ")
                ),
            );
        } else if menu.contains(&value) {
            reader.field_problem(&field, format!("offers `{value}` twice"));
        } else {
            reader
                .locations
                .insert_menu_entry(line_name, &value, field.line);
            menu.push(value);
        }
    }
    menu
}
