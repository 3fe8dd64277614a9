//! `[store]`, `[sms]` and `[[sms.gateways]]`: where state lives and how
//! one-time codes reach the caller.
//!
//! Credential values may be written as `"env:NAME"`, which reads environment
//! variable NAME at load time, so that secrets stay out of the file.

use std::path::Path;
use std::time::Duration;

use super::reader::{Field, TableRef, TomlReader};
use crate::sms::{GatewayConfig, SmsConfig};
use crate::store::{RedisConnection, StoreConfig};

/// Reads an environment variable: `std::env::var` in the service, a map in
/// tests.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Prefix of a value read from the environment.
const ENV_PREFIX: &str = "env:";

/// Default `store.path`, relative to the config file's folder.
const DEFAULT_STORE_PATH: &str = "../var/ivr-verify.redb";

/// Default `store.key_prefix`.
const DEFAULT_KEY_PREFIX: &str = "ivr-verify:";

/// Maximum length of `store.key_prefix`. Every key carries it.
const MAX_KEY_PREFIX_LEN: usize = 64;

/// Keys of `[store]`.
pub(crate) const STORE_KEYS: &[&str] = &[
    "kind",
    "path",
    "redis_mode",
    "redis_url",
    "redis_sentinels",
    "redis_master_name",
    "redis_nodes",
    "key_prefix",
];

/// Keys of `[sms]`.
pub(crate) const SMS_KEYS: &[&str] = &["timeout_ms", "retries", "backoff_ms", "sender", "gateways"];

/// Range of `sms.timeout_ms`. Under 100 ms no gateway can respond, and the
/// caller waits on the line for the whole timeout, times every retry.
const SMS_TIMEOUT_MS: std::ops::RangeInclusive<i64> = 100..=30_000;

/// Maximum `sms.retries` per gateway. The caller waits through all of them.
const MAX_SMS_RETRIES: i64 = 5;

/// Maximum `sms.backoff_ms`, the delay before the first retry.
const MAX_SMS_BACKOFF_MS: i64 = 10_000;

/// Maximum characters of an alphanumeric SMS sender, the limit of the GSM
/// originator address.
const MAX_ALPHANUMERIC_SENDER: usize = 11;

/// Maximum digits of a numeric sender: an E.164 number has at most 15.
const MAX_NUMERIC_SENDER: usize = 15;

/// Default `sms.sender`.
const DEFAULT_SENDER: &str = "Klantdienst";

/// Documented production endpoints of the named providers.
const CM_URL: &str = "https://gw.messaging.cm.com/v1.0/message";
const SPRYNG_URL: &str = "https://rest.spryngsms.com/v1/messages";
const BIRD_URL: &str = "https://api.bird.com";
const TWILIO_URL: &str = "https://api.twilio.com";

pub(crate) fn read_store(
    reader: &mut TomlReader<'_>,
    base_dir: &Path,
    env: EnvLookup<'_>,
) -> StoreConfig {
    let default_path = base_dir.join(DEFAULT_STORE_PATH);
    let Some(table) = reader.section("store") else {
        return StoreConfig::Embedded { path: default_path };
    };

    let kind = match reader
        .get_in(&table, "store", "kind", false)
        .and_then(|field| reader.as_string(field))
    {
        None => "embedded".to_string(),
        Some((value, field)) => {
            if !["memory", "embedded", "redis"].contains(&value.as_str()) {
                reader.field_problem(
                    &field,
                    format!("is `{value}`, but must be \"memory\", \"embedded\" or \"redis\""),
                );
            }
            value
        }
    };
    let mode = match reader
        .get_in(&table, "store", "redis_mode", false)
        .and_then(|field| reader.as_string(field))
    {
        None => "standalone".to_string(),
        Some((value, field)) => {
            if !["standalone", "sentinel", "cluster"].contains(&value.as_str()) {
                reader.field_problem(
                    &field,
                    format!(
                        "is `{value}`, but must be \"standalone\", \"sentinel\" or \"cluster\""
                    ),
                );
            }
            value
        }
    };

    // A key of another kind or mode is a problem, so that a setting that
    // would be ignored does not look as if it were in force.
    let applies = |key: &str| -> Option<String> {
        let wanted = match key {
            "path" => kind == "embedded",
            "redis_mode" | "key_prefix" => kind == "redis",
            "redis_url" => kind == "redis" && mode == "standalone",
            "redis_sentinels" | "redis_master_name" => kind == "redis" && mode == "sentinel",
            "redis_nodes" => kind == "redis" && mode == "cluster",
            _ => true,
        };
        if wanted {
            return None;
        }
        Some(match key {
            "path" => "applies only when kind = \"embedded\"; remove it".to_string(),
            "redis_mode" | "key_prefix" => {
                "applies only when kind = \"redis\"; remove it".to_string()
            }
            "redis_url" => {
                "applies only when kind = \"redis\" and redis_mode = \"standalone\"; remove it"
                    .to_string()
            }
            "redis_nodes" => {
                "applies only when kind = \"redis\" and redis_mode = \"cluster\"; remove it"
                    .to_string()
            }
            _ => "applies only when kind = \"redis\" and redis_mode = \"sentinel\"; remove it"
                .to_string(),
        })
    };
    for key in STORE_KEYS {
        if let Some(message) = applies(key) {
            if let Some(field) = reader.get_in(&table, "store", key, false) {
                reader.field_problem(&field, message);
            }
        }
    }

    match kind.as_str() {
        "memory" => StoreConfig::Memory,
        "redis" => {
            let connection = read_redis_connection(reader, &table, &mode, env);
            let key_prefix = match reader
                .get_in(&table, "store", "key_prefix", false)
                .and_then(|field| reader.as_string(field))
            {
                None => DEFAULT_KEY_PREFIX.to_string(),
                Some((value, field)) => {
                    if value.is_empty()
                        || value.len() > MAX_KEY_PREFIX_LEN
                        || !value.chars().all(|c| c.is_ascii_graphic())
                    {
                        reader.field_problem(
                            &field,
                            format!("must be 1 to {MAX_KEY_PREFIX_LEN} printable ASCII characters without spaces, such as \"ivr-verify:\""),
                        );
                    }
                    value
                }
            };
            StoreConfig::Redis {
                connection,
                key_prefix,
            }
        }
        _ => {
            let path = match reader
                .get_in(&table, "store", "path", false)
                .and_then(|field| reader.as_string(field))
            {
                None => default_path,
                Some((value, field)) if value.trim().is_empty() => {
                    reader.field_problem(&field, "is empty; set a file path");
                    default_path
                }
                Some((value, _)) => {
                    let path = Path::new(&value);
                    if path.is_absolute() {
                        path.to_path_buf()
                    } else {
                        base_dir.join(path)
                    }
                }
            };
            StoreConfig::Embedded { path }
        }
    }
}

fn read_redis_connection<'d>(
    reader: &mut TomlReader<'d>,
    table: &TableRef<'d>,
    mode: &str,
    env: EnvLookup<'_>,
) -> RedisConnection {
    let url_list = |reader: &mut TomlReader<'d>, key: &str| -> Vec<String> {
        let Some(field) = reader.get_in(table, "store", key, true) else {
            return Vec::new();
        };
        let list_field = Field {
            key: field.key.clone(),
            item: field.item,
            line: field.line,
        };
        let values = reader.as_string_array(field).unwrap_or_default();
        if values.is_empty() {
            reader.field_problem(
                &list_field,
                "is empty; list at least one redis://HOST:PORT URL",
            );
        }
        values
            .into_iter()
            .map(|(value, field)| redis_url(reader, &value, &field, env))
            .collect()
    };

    match mode {
        "sentinel" => {
            let sentinels = url_list(reader, "redis_sentinels");
            let master_name = reader
                .get_in(table, "store", "redis_master_name", true)
                .and_then(|field| reader.as_string(field))
                .map(|(value, field)| {
                    if value.trim().is_empty() || value.chars().any(char::is_whitespace) {
                        reader.field_problem(
                            &field,
                            "must be the non-empty name of the monitored primary, without spaces",
                        );
                    }
                    value
                })
                .unwrap_or_default();
            RedisConnection::Sentinel {
                sentinels,
                master_name,
            }
        }
        "cluster" => RedisConnection::Cluster {
            nodes: url_list(reader, "redis_nodes"),
        },
        _ => {
            let url = reader
                .get_in(table, "store", "redis_url", true)
                .and_then(|field| reader.as_string(field))
                .map(|(value, field)| redis_url(reader, &value, &field, env))
                .unwrap_or_default();
            RedisConnection::Standalone { url }
        }
    }
}

/// Resolves and checks one Redis URL, which may carry a password and so may
/// come from the environment.
fn redis_url(
    reader: &mut TomlReader<'_>,
    value: &str,
    field: &Field<'_>,
    env: EnvLookup<'_>,
) -> String {
    let url = resolve_credential(reader, value, field, env);
    let valid_scheme = url.starts_with("redis://") || url.starts_with("rediss://");
    if !valid_scheme || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        // The value may contain a password, so it is not repeated.
        reader.field_problem(
            field,
            "must be a redis:// or rediss:// URL without spaces, such as \"redis://127.0.0.1:6379/0\"",
        );
    }
    url
}

/// Returns `value`, or the environment variable it names when it is
/// written `env:NAME`. Records a problem, without the value, when the
/// variable is not set or the result is empty.
fn resolve_credential(
    reader: &mut TomlReader<'_>,
    value: &str,
    field: &Field<'_>,
    env: EnvLookup<'_>,
) -> String {
    let Some(name) = value.strip_prefix(ENV_PREFIX) else {
        if value.trim().is_empty() {
            reader.field_problem(
                field,
                "is empty; set the value or write \"env:NAME\" to read environment variable NAME",
            );
        }
        return value.to_string();
    };
    match env(name) {
        Some(resolved) if !resolved.trim().is_empty() => resolved,
        Some(_) => {
            reader.field_problem(
                field,
                format!("environment variable {name} is empty; set it to the credential"),
            );
            String::new()
        }
        None => {
            reader.field_problem(field, format!("environment variable {name} is not set; set it, or write the value in the file"));
            String::new()
        }
    }
}

pub(crate) fn read_sms(
    reader: &mut TomlReader<'_>,
    development: bool,
    env: EnvLookup<'_>,
) -> SmsConfig {
    let integer = |reader: &mut TomlReader<'_>, key: &str, range, default: i64| {
        reader
            .get("sms", key, false)
            .and_then(|field| reader.as_integer(field, range))
            .map_or(default, |(value, _)| value)
    };
    let timeout = integer(reader, "timeout_ms", SMS_TIMEOUT_MS, 5_000);
    let retries = integer(reader, "retries", 0..=MAX_SMS_RETRIES, 2);
    let backoff = integer(reader, "backoff_ms", 0..=MAX_SMS_BACKOFF_MS, 200);

    let sender = match reader.string("sms", "sender", false) {
        None => DEFAULT_SENDER.to_string(),
        Some((value, field)) => {
            if !is_valid_sender(&value) {
                reader.field_problem(
                    &field,
                    format!("`{value}` must be 1 to {MAX_ALPHANUMERIC_SENDER} ASCII letters, digits and spaces with at least one letter, or a number of up to {MAX_NUMERIC_SENDER} digits, because phones show no longer sender"),
                );
            }
            value
        }
    };

    let sms_table = reader.section("sms").map(|table| table.table);
    let mut gateways = Vec::new();
    if let Some(table) = sms_table {
        if let Some(item) = table.get("gateways") {
            if item.as_array_of_tables().is_none() {
                let field = reader.get("sms", "gateways", false);
                if let Some(field) = field {
                    reader.field_problem(
                        &field,
                        format!(
                            "must be an array of tables ([[sms.gateways]]), found {}",
                            item.type_name()
                        ),
                    );
                }
            }
        }
    }
    for table in reader.array_of_tables(sms_table, "gateways") {
        if let Some(gateway) = read_gateway(reader, &table, development, env) {
            gateways.push(gateway);
        }
    }

    SmsConfig {
        gateways,
        timeout: Duration::from_millis(timeout.unsigned_abs()),
        retries: u32::try_from(retries).unwrap_or(0),
        backoff: Duration::from_millis(backoff.unsigned_abs()),
        sender,
        development,
    }
}

/// Returns whether `sender` is an alphanumeric or numeric SMS originator.
fn is_valid_sender(sender: &str) -> bool {
    let digits = sender.strip_prefix('+').unwrap_or(sender);
    let numeric = !digits.is_empty()
        && digits.len() <= MAX_NUMERIC_SENDER
        && digits.chars().all(|c| c.is_ascii_digit());
    let alphanumeric = !sender.is_empty()
        && sender.len() <= MAX_ALPHANUMERIC_SENDER
        && sender
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == ' ')
        && sender.chars().any(|c| c.is_ascii_alphabetic())
        && sender.trim() == sender;
    numeric || alphanumeric
}

/// Keys of each gateway kind besides `kind`.
fn gateway_keys(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "console" => &[],
        "http_json" => &["url", "headers", "body_template"],
        "cm" => &["url", "product_token"],
        "spryng" => &["url", "api_key"],
        "bird" => &["url", "access_key", "workspace_id", "channel_id"],
        "twilio" => &["url", "account_sid", "auth_token"],
        _ => return None,
    })
}

fn read_gateway<'d>(
    reader: &mut TomlReader<'d>,
    table: &TableRef<'d>,
    development: bool,
    env: EnvLookup<'_>,
) -> Option<GatewayConfig> {
    let prefix = "sms.gateways";
    let (kind, kind_field) = reader
        .get_in(table, prefix, "kind", true)
        .and_then(|field| reader.as_string(field))?;
    let Some(keys) = gateway_keys(&kind) else {
        reader.field_problem(
            &kind_field,
            format!("is `{kind}`, but must be \"console\", \"http_json\", \"cm\", \"spryng\", \"bird\" or \"twilio\""),
        );
        return None;
    };
    let mut known = vec!["kind"];
    known.extend_from_slice(keys);
    reader.check_keys(prefix, table.table, &known);

    let gateway = match kind.as_str() {
        "console" => {
            if !development {
                reader.field_problem(
                    &kind_field,
                    "the console gateway only logs messages and works only with service.development = true; configure a real gateway for production",
                );
            }
            GatewayConfig::Console
        }
        "http_json" => {
            let url = gateway_url(reader, table, None);
            let headers = read_headers(reader, table, env);
            let body_template = match gateway_string(reader, table, "body_template") {
                Some((value, field)) => {
                    check_body_template(reader, &value, &field);
                    value
                }
                None => String::new(),
            };
            GatewayConfig::HttpJson {
                url,
                headers,
                body_template,
            }
        }
        "cm" => {
            let url = gateway_url(reader, table, Some(CM_URL));
            let product_token = gateway_credential(reader, table, env, "product_token");
            if !product_token.is_empty() && !is_uuid(&product_token) {
                if let Some(field) = reader.get_in(table, prefix, "product_token", false) {
                    reader.field_problem(
                        &field,
                        "must be a product token in UUID form (8-4-4-4-12 hexadecimal digits)",
                    );
                }
            }
            GatewayConfig::CmCom { url, product_token }
        }
        "spryng" => GatewayConfig::Spryng {
            url: gateway_url(reader, table, Some(SPRYNG_URL)),
            api_key: gateway_credential(reader, table, env, "api_key"),
        },
        "bird" => {
            let url = gateway_url(reader, table, Some(BIRD_URL));
            let access_key = gateway_credential(reader, table, env, "access_key");
            let id = |reader: &mut TomlReader<'d>, key: &str| -> String {
                let value = gateway_credential(reader, table, env, key);
                let path_safe = value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
                if !path_safe {
                    if let Some(field) = reader.get_in(table, prefix, key, false) {
                        reader.field_problem(&field, "must contain only letters, digits, - and _, because it is part of the request path");
                    }
                }
                value
            };
            let workspace_id = id(reader, "workspace_id");
            let channel_id = id(reader, "channel_id");
            GatewayConfig::Bird {
                url,
                access_key,
                workspace_id,
                channel_id,
            }
        }
        _ => {
            let url = gateway_url(reader, table, Some(TWILIO_URL));
            let account_sid = gateway_credential(reader, table, env, "account_sid");
            let valid_sid = account_sid.len() == 34
                && account_sid.starts_with("AC")
                && account_sid.chars().skip(2).all(|c| c.is_ascii_hexdigit());
            if !account_sid.is_empty() && !valid_sid {
                if let Some(field) = reader.get_in(table, prefix, "account_sid", false) {
                    reader.field_problem(
                        &field,
                        "must be a Twilio account SID: AC followed by 32 hexadecimal digits",
                    );
                }
            }
            GatewayConfig::Twilio {
                url,
                account_sid,
                auth_token: gateway_credential(reader, table, env, "auth_token"),
            }
        }
    };
    Some(gateway)
}

/// Reads a required string of a gateway.
fn gateway_string<'d>(
    reader: &mut TomlReader<'d>,
    table: &TableRef<'d>,
    key: &str,
) -> Option<(String, Field<'d>)> {
    reader
        .get_in(table, "sms.gateways", key, true)
        .and_then(|field| reader.as_string(field))
}

/// Reads a required credential of a gateway, resolving `env:NAME`.
fn gateway_credential<'d>(
    reader: &mut TomlReader<'d>,
    table: &TableRef<'d>,
    env: EnvLookup<'_>,
    key: &str,
) -> String {
    match gateway_string(reader, table, key) {
        Some((value, field)) => resolve_credential(reader, &value, &field, env),
        None => String::new(),
    }
}

/// Reads the `url` of a gateway, which is required when the kind has no
/// `default` endpoint.
fn gateway_url<'d>(
    reader: &mut TomlReader<'d>,
    table: &TableRef<'d>,
    default: Option<&str>,
) -> String {
    let found = reader
        .get_in(table, "sms.gateways", "url", default.is_none())
        .and_then(|field| reader.as_string(field));
    match (found, default) {
        (Some((value, field)), _) => {
            if !is_allowed_gateway_url(&value) {
                reader.field_problem(
                    &field,
                    format!("`{value}` must be an https:// URL (http:// only to localhost or 127.0.0.1, for tests), because the message contains a one-time code"),
                );
            }
            value
        }
        (None, Some(default)) => default.to_string(),
        (None, None) => String::new(),
    }
}

/// Reads the optional `headers` table of an HTTP JSON gateway. Values may
/// come from the environment, because they usually carry a credential.
fn read_headers<'d>(
    reader: &mut TomlReader<'d>,
    table: &TableRef<'d>,
    env: EnvLookup<'_>,
) -> Vec<(String, String)> {
    let Some(field) = reader.get_in(table, "sms.gateways", "headers", false) else {
        return Vec::new();
    };
    let Some(headers) = field.item.as_table_like() else {
        let found = field.item.type_name();
        reader.field_problem(&field, format!("must be a table of header names and values, such as {{ Authorization = \"env:SMS_TOKEN\" }}, found {found}"));
        return Vec::new();
    };

    let mut result = Vec::new();
    for (name, value) in headers.iter() {
        let Some(value) = value.as_str() else {
            reader.field_problem(
                &field,
                format!(
                    "header {name} must be a string, found {}",
                    value.type_name()
                ),
            );
            continue;
        };
        let token = !name.is_empty() && name.chars().all(is_header_name_char);
        if !token {
            reader.field_problem(&field, format!("`{name}` is not a valid HTTP header name"));
            continue;
        }
        let resolved = resolve_credential(reader, value, &field, env);
        if resolved.chars().any(|c| c.is_control() && c != '\t') {
            reader.field_problem(
                &field,
                format!("header {name} contains a control character, which would end the header"),
            );
            continue;
        }
        result.push((name.to_string(), resolved));
    }
    result
}

/// Returns whether `c` may appear in an HTTP field name (a `tchar` of RFC
/// 9110, section 5.6.2).
fn is_header_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// Checks that the body template names the recipient and the text, and is
/// JSON once the placeholders are filled in with JSON-escaped strings.
fn check_body_template(reader: &mut TomlReader<'_>, template: &str, field: &Field<'_>) {
    for placeholder in ["{{to}}", "{{text}}"] {
        if !template.contains(placeholder) {
            reader.field_problem(field, format!("must contain the placeholder {placeholder}"));
        }
    }
    let filled = template
        .replace("{{to}}", "x")
        .replace("{{from}}", "x")
        .replace("{{text}}", "x");
    if let Err(error) = serde_json::from_str::<serde_json::Value>(&filled) {
        reader.field_problem(
            field,
            format!("is not JSON once the placeholders are filled in ({error}); put each placeholder inside a JSON string, such as \"to\": \"{{{{to}}}}\""),
        );
    }
}

/// Returns whether a gateway may be reached at `url`: https anywhere, plain
/// http only on the loopback interface, where tests run their gateway.
fn is_allowed_gateway_url(url: &str) -> bool {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let lower = url.to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix("https://") {
        return !host_of(rest).is_empty();
    }
    let Some(rest) = lower.strip_prefix("http://") else {
        return false;
    };
    let host = host_of(rest);
    host == "localhost" || host == "[::1]" || host.starts_with("127.")
}

/// Returns the host of the part of a URL after `scheme://`.
fn host_of(rest: &str) -> &str {
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    if host_port.starts_with('[') {
        return host_port.split_inclusive(']').next().unwrap_or_default();
    }
    host_port.split(':').next().unwrap_or_default()
}

/// Returns whether `value` has the 8-4-4-4-12 hexadecimal form of a UUID.
fn is_uuid(value: &str) -> bool {
    let groups: Vec<&str> = value.split('-').collect();
    let lengths: Vec<usize> = groups.iter().map(|group| group.len()).collect();
    lengths == [8, 4, 4, 4, 12]
        && groups
            .iter()
            .all(|group| group.chars().all(|c| c.is_ascii_hexdigit()))
}
