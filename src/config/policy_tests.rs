//! Tests of the sections added for the verification policy: `[service]`,
//! `[policy]`, `[levels.*]`, `[request_types.*]`, `[[service_lines]]`,
//! `[factors]`, `[otp]`, `[lockout]`, `[store]` and `[sms]`.

use super::*;
use crate::sms::GatewayConfig;
use crate::store::RedisConnection;
use crate::verify::factors::CheckDigit;
use crate::verify::policy::{explain_request_type, Rule};

const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

const PATH: &str = "/etc/ivr/ivr.toml";

/// Environment of the tests: two variables set, one set but empty.
fn env(name: &str) -> Option<String> {
    match name {
        "SMS_TOKEN" => Some("secret-token".to_string()),
        "CM_TOKEN" => Some("1b2c3d4e-0000-4a5b-8c9d-0123456789ab".to_string()),
        "REDIS_URL" => Some("redis://:pw@127.0.0.1:6379/0".to_string()),
        "EMPTY" => Some(String::new()),
        _ => None,
    }
}

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    Config::parse_with_env(text, Path::new(PATH), &env)
}

fn problems_of(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.problems.iter().map(ToString::to_string).collect(),
    }
}

/// Returns the default file with `from` replaced by `to`; `from` must occur.
fn replace(from: &str, to: &str) -> String {
    assert!(DEFAULT_TOML.contains(from), "default.toml lacks {from:?}");
    DEFAULT_TOML.replacen(from, to, 1)
}

/// Returns the default file with the `[sms]` section and its gateways
/// replaced by `sms`.
fn with_sms(sms: &str) -> String {
    let start = DEFAULT_TOML.find("[sms]").unwrap();
    format!("{}{sms}", &DEFAULT_TOML[..start])
}

/// Returns the default file with the `[store]` section replaced by `store`.
fn with_store(store: &str) -> String {
    let start = DEFAULT_TOML.find("[store]").unwrap();
    let end = DEFAULT_TOML.find("[sms]").unwrap();
    format!(
        "{}{store}\n{}",
        &DEFAULT_TOML[..start],
        &DEFAULT_TOML[end..]
    )
}

/// Returns the 1-based line of the first line of `text` containing `needle`.
fn line_containing(text: &str, needle: &str) -> usize {
    text.lines().position(|line| line.contains(needle)).unwrap() + 1
}

/// Asserts that `text` has exactly one problem and that it starts with
/// `prefix` after the file name.
fn assert_one_problem(text: &str, prefix: &str) {
    let problems = problems_of(text);
    assert_eq!(problems.len(), 1, "{problems:?}");
    let expected = format!("{PATH}:{prefix}");
    assert!(
        problems[0].starts_with(&expected),
        "{} does not start with {expected}",
        problems[0]
    );
}

#[test]
fn default_policy_loads() {
    let config = parse(DEFAULT_TOML).unwrap();
    let policy = &config.policy;
    assert_eq!(policy.version(), "2026-12-01");

    let levels: Vec<&str> = policy.levels().iter().map(|l| l.name.as_str()).collect();
    assert_eq!(levels, vec!["basic", "substantial", "high"]);
    assert_eq!(
        policy.level("basic").unwrap().rule,
        Rule {
            all_of: vec![Factor::ContractNumber],
            any_of: vec![],
        }
    );
    assert_eq!(
        policy.level("substantial").unwrap().rule,
        Rule {
            all_of: vec![Factor::ContractNumber],
            any_of: vec![
                Factor::DateOfBirth,
                Factor::Postcode,
                Factor::IbanLastDigits
            ],
        }
    );
    assert_eq!(
        policy.level("high").unwrap().rule,
        Rule {
            all_of: vec![Factor::ContractNumber, Factor::SmsOtp],
            any_of: vec![],
        }
    );

    assert_eq!(policy.level_for("information").unwrap().name, "basic");
    assert_eq!(
        policy.level_for("contract_change").unwrap().name,
        "substantial"
    );
    assert_eq!(policy.level_for("financial_change").unwrap().name, "high");
    for request_type in policy.request_types() {
        assert_eq!(request_type.agent_queue_uri, "sip:agents@127.0.0.1:5070");
    }

    let line = policy.service_line_for(None);
    assert_eq!(line.name, "default");
    assert!(line.numbers.is_empty());
    assert_eq!(line.language, Language::Nl);
    assert_eq!(
        line.menu,
        vec!["information", "contract_change", "financial_change"]
    );
}

#[test]
fn default_limits_load() {
    let config = parse(DEFAULT_TOML).unwrap();
    assert!(config.service.development);
    assert_eq!(
        config.factors,
        FactorSettings {
            contract_digits: 6..=12,
            contract_check_digit: CheckDigit::None,
            iban_last_digits: 4,
        }
    );
    assert_eq!(
        config.otp,
        OtpConfig {
            lifetime: Duration::from_secs(300),
            max_entries: 3,
            max_sends: 3,
            send_window: Duration::from_secs(900),
        }
    );
    assert_eq!(
        config.lockout,
        LockoutConfig {
            contract_limit: 5,
            contract_window: Duration::from_secs(900),
            customer_limit: 10,
            customer_window: Duration::from_secs(3600),
            calling_number_limit: 10,
            calling_number_window: Duration::from_secs(3600),
        }
    );
}

#[test]
fn default_backends_load() {
    let config = parse(DEFAULT_TOML).unwrap();
    assert_eq!(
        config.store,
        StoreConfig::Embedded {
            path: PathBuf::from("/etc/ivr/../var/ivr-verify.redb")
        }
    );
    assert_eq!(
        config.sms,
        SmsConfig {
            gateways: vec![GatewayConfig::Console],
            timeout: Duration::from_millis(5000),
            retries: 2,
            backoff: Duration::from_millis(200),
            sender: "Klantdienst".to_string(),
            development: true,
        }
    );
}

#[test]
fn optional_sections_default() {
    let keep: Vec<&str> = DEFAULT_TOML
        .split("\n[")
        .filter(|part| {
            ![
                "service]",
                "factors]",
                "otp]",
                "lockout]",
                "store]",
                "sms]",
                "[sms.gateways]]",
            ]
            .iter()
            .any(|name| part.starts_with(name))
        })
        .collect();
    let text = keep.join("\n[");
    // Without [service] the console gateway would be rejected, and without
    // a gateway the high level cannot send codes, so drop sms_otp.
    let text = text.replace(
        "all_of = [\"contract_number\", \"sms_otp\"]",
        "all_of = [\"contract_number\", \"date_of_birth\"]",
    );
    let config = parse(&text).unwrap();

    assert!(!config.service.development);
    assert_eq!(config.factors.iban_last_digits, 4);
    assert_eq!(config.factors.contract_check_digit, CheckDigit::None);
    assert_eq!(config.otp.lifetime, Duration::from_secs(300));
    assert_eq!(config.lockout.customer_limit, 10);
    assert_eq!(
        config.store,
        StoreConfig::Embedded {
            path: PathBuf::from("/etc/ivr/../var/ivr-verify.redb")
        }
    );
    assert!(config.sms.gateways.is_empty());
    assert_eq!(config.sms.sender, "Klantdienst");
}

#[test]
fn policy_sections_required() {
    let text = replace("[policy]\n", "[polic]\n");
    let problems = problems_of(&text);
    assert!(
        problems.contains(&format!("{PATH}: missing section [policy]")),
        "{problems:?}"
    );
}

#[test]
fn forbidden_factor_rejected() {
    let text = replace(
        "all_of = [\"contract_number\"]\n\n[levels.substantial]",
        "all_of = [\"contract_number\", \"full_iban\"]\n\n[levels.substantial]",
    );
    let line = line_containing(&text, "full_iban");
    assert_one_problem(
        &text,
        &format!("{line}: levels.basic.all_of: factor `full_iban` would ask for a full IBAN; ivr-verify never asks for or stores a full IBAN, because"),
    );
}

#[test]
fn forbidden_factor_names_each_category() {
    let cases = [
        ("iban", "a full IBAN"),
        ("bsn", "a BSN (citizen service number)"),
        ("burgerservicenummer", "a BSN (citizen service number)"),
        ("card_number", "a card number"),
        ("creditcard", "a card number"),
        ("password", "a password"),
        ("wachtwoord", "a password"),
        ("pin", "a PIN"),
        ("pincode", "a PIN"),
        ("PIN_code", "a PIN"),
    ];
    for (name, data) in cases {
        let text = replace(
            "any_of = [\"date_of_birth\", \"postcode\", \"iban_last_digits\"]",
            &format!("any_of = [\"date_of_birth\", \"{name}\"]"),
        );
        let problems = problems_of(&text);
        assert_eq!(problems.len(), 1, "{name}: {problems:?}");
        assert!(
            problems[0].contains(&format!(
                "factor `{name}` would ask for {data}; ivr-verify never asks for or stores {data}"
            )),
            "{name}: {problems:?}"
        );
    }
}

#[test]
fn forbidden_level_and_request_type_names_rejected() {
    let text = replace("[levels.high]", "[levels.pin_check]")
        .replace("level = \"high\"", "level = \"pin_check\"");
    let problems = problems_of(&text);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("levels.pin_check: level `pin_check` would ask for a PIN")),
        "{problems:?}"
    );

    let text = replace("[request_types.information]", "[request_types.bsn_lookup]");
    let problems = problems_of(&text);
    assert!(
        problems.iter().any(|p| p
            .contains("request_types.bsn_lookup: request type `bsn_lookup` would ask for a BSN")),
        "{problems:?}"
    );
}

#[test]
fn unknown_factor_rejected() {
    let text = replace(
        "all_of = [\"contract_number\", \"sms_otp\"]",
        "all_of = [\"contract_number\", \"voice_print\"]",
    );
    let line = line_containing(&text, "voice_print");
    assert_one_problem(
        &text,
        &format!("{line}: levels.high.all_of: `voice_print` is not a factor; known factors are contract_number, date_of_birth, postcode, iban_last_digits, sms_otp, caller_id_match"),
    );
}

#[test]
fn repeated_factor_rejected() {
    let text = replace(
        "all_of = [\"contract_number\", \"sms_otp\"]",
        "all_of = [\"contract_number\", \"sms_otp\", \"contract_number\"]",
    );
    let problems = problems_of(&text);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("levels.high.all_of: lists contract_number twice"));

    let text = replace(
        "any_of = [\"date_of_birth\", \"postcode\", \"iban_last_digits\"]",
        "any_of = [\"contract_number\", \"postcode\"]",
    );
    let problems = problems_of(&text);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("lists contract_number in both all_of and any_of"));
}

#[test]
fn empty_level_rejected() {
    let text = replace(
        "[levels.high]\n# Factors that must all pass, asked in this order.\nall_of = [\"contract_number\", \"sms_otp\"]",
        "[levels.high]\n# No factors.\nall_of = []",
    );
    let line = line_containing(&text, "[levels.high]");
    assert_one_problem(&text, &format!("{line}: levels.high: requires no factor"));
}

#[test]
fn caller_id_alone_only_for_lowest_level() {
    // The first level may be reached with caller ID alone.
    let text = replace(
        "[levels.basic]\n# Factors that must all pass, asked in this order.\nall_of = [\"contract_number\"]",
        "[levels.basic]\n# Either factor.\nany_of = [\"caller_id_match\", \"contract_number\"]",
    );
    assert!(parse(&text).is_ok(), "{:?}", problems_of(&text));

    // A higher level may not.
    let text = replace(
        "all_of = [\"contract_number\", \"sms_otp\"]",
        "all_of = [\"caller_id_match\"]",
    );
    let line = line_containing(&text, "[levels.high]");
    assert_one_problem(
        &text,
        &format!("{line}: levels.high: can be reached with caller_id_match alone"),
    );
}

#[test]
fn unverified_level_name_rejected() {
    let text = replace("[levels.high]", "[levels.unverified]")
        .replace("level = \"high\"", "level = \"unverified\"");
    let problems = problems_of(&text);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("levels.unverified: `unverified` is the acr")),
        "{problems:?}"
    );
}

#[test]
fn invalid_level_name_rejected() {
    let text = replace("[levels.high]", "[levels.High-Level]")
        .replace("level = \"high\"", "level = \"High-Level\"");
    let problems = problems_of(&text);
    assert!(
        problems.iter().any(|p| p
            .contains("levels.High-Level: level name `High-Level` must be 1 to 32 characters a-z")),
        "{problems:?}"
    );
}

#[test]
fn request_type_unknown_level_rejected() {
    let text = replace("level = \"substantial\"", "level = \"medium\"");
    let line = line_containing(&text, "level = \"medium\"");
    assert_one_problem(
        &text,
        &format!("{line}: request_types.contract_change.level: level `medium` is not defined; defined levels are basic, substantial, high"),
    );
}

#[test]
fn request_type_queue_defaults_and_overrides() {
    let text = replace(
        "agent_queue_uri = \"sip:agents@127.0.0.1:5070\"\n\n# [[service_lines]]",
        "agent_queue_uri = \"sip:finance@127.0.0.1:5071\"\n\n# [[service_lines]]",
    )
    .replace(
        "agent_queue_uri = \"sip:agents@127.0.0.1:5070\"\n# sip: or sips: URI sent",
        "agent_queue_uri = \"sip:general@127.0.0.1:5070\"\n# sip: or sips: URI sent",
    );
    let config = parse(&text).unwrap();
    let policy = &config.policy;
    assert_eq!(
        policy
            .request_type("financial_change")
            .unwrap()
            .agent_queue_uri,
        "sip:finance@127.0.0.1:5071"
    );
    assert_eq!(
        policy.request_type("information").unwrap().agent_queue_uri,
        "sip:general@127.0.0.1:5070"
    );
}

#[test]
fn request_type_queue_checked() {
    let text = replace(
        "agent_queue_uri = \"sip:agents@127.0.0.1:5070\"\n\n# [[service_lines]]",
        "agent_queue_uri = \"sip:finance@x>;evil\"\n\n# [[service_lines]]",
    );
    let line = line_containing(&text, "sip:finance@x");
    assert_one_problem(
        &text,
        &format!("{line}: request_types.financial_change.agent_queue_uri: `sip:finance@x>;evil` must be a sip: or sips: URI"),
    );
}

#[test]
fn request_type_unknown_key_rejected() {
    let text = replace("level = \"basic\"", "level = \"basic\"\nqueue = \"x\"");
    let line = line_containing(&text, "queue = \"x\"");
    assert_one_problem(
        &text,
        &format!("{line}: request_types.information.queue: unknown key; known keys in [request_types.information] are level, agent_queue_uri"),
    );
}

/// Returns the default file with a second, numbered service line.
fn two_lines(numbers: &str, menu: &str) -> String {
    replace(
        "[factors]",
        &format!("[[service_lines]]\n# English line.\nname = \"english\"\n# Numbers.\nnumbers = {numbers}\n# Language.\nlanguage = \"en\"\n# Menu.\nmenu = {menu}\n\n[factors]"),
    )
}

#[test]
fn numbered_service_line_selected() {
    let text = two_lines(
        "[\"020 123 4567\", \"+31 88 123 4567\"]",
        "[\"information\"]",
    );
    let config = parse(&text).unwrap();
    let policy = &config.policy;
    let english = policy.service_line_for(Some("+31201234567"));
    assert_eq!(english.name, "english");
    assert_eq!(english.numbers, vec!["+31201234567", "+31881234567"]);
    assert_eq!(english.language, Language::En);
    assert_eq!(
        policy.service_line_for(Some("+31881234567")).name,
        "english"
    );
    assert_eq!(
        policy.service_line_for(Some("+31301234567")).name,
        "default"
    );
}

#[test]
fn two_fallback_lines_rejected() {
    let text = two_lines("[]", "[\"information\"]");
    let line = line_containing(&text, "# English line.") - 1;
    assert_one_problem(
        &text,
        &format!("{line}: service_lines.numbers: service lines `default` and `english` both have no numbers"),
    );
}

#[test]
fn missing_fallback_line_rejected() {
    let text = replace("numbers = []", "numbers = [\"020 123 4567\"]");
    assert_one_problem(&text, " service_lines: no service line is the fallback");
}

#[test]
fn service_line_numbers_checked() {
    let text = two_lines(
        "[\"12\", \"+31 20 123 4567\", \"0201234567\"]",
        "[\"information\"]",
    );
    let problems = problems_of(&text);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[0].contains("service_lines.numbers: `12` "),
        "{problems:?}"
    );
    assert!(
        problems[1].contains("`0201234567` is also a number of service line `english`"),
        "{problems:?}"
    );
}

#[test]
fn service_line_menu_checked() {
    let text = two_lines(
        "[\"0201234567\"]",
        "[\"information\", \"payments\", \"information\"]",
    );
    let problems = problems_of(&text);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[0].contains("service_lines.menu: request type `payments` is not defined"),
        "{problems:?}"
    );
    assert!(problems[1].contains("service_lines.menu: offers `information` twice"));

    let text = two_lines("[\"0201234567\"]", "[]");
    let problems = problems_of(&text);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("has 0 request types, but a menu offers 1 to 9"));
}

#[test]
fn service_line_language_and_name_checked() {
    let text = two_lines("[\"0201234567\"]", "[\"information\"]")
        .replace("language = \"en\"", "language = \"de\"")
        .replace("name = \"english\"", "name = \"default\"");
    let problems = problems_of(&text);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].contains("service_lines.name: service line `default` is defined twice"));
    assert!(problems[1].contains("service_lines.language: is `de`"));
}

#[test]
fn service_lines_must_be_array_of_tables() {
    let start = DEFAULT_TOML.find("[[service_lines]]").unwrap();
    let end = DEFAULT_TOML.find("[factors]").unwrap();
    let text = format!(
        "service_lines = 1\n{}{}",
        &DEFAULT_TOML[..start],
        &DEFAULT_TOML[end..]
    );
    let problems = problems_of(&text);
    assert!(
        problems.iter().any(|p| p.starts_with(&format!(
            "{PATH}:1: service_lines: must be an array of tables ([[service_lines]])"
        ))),
        "{problems:?}"
    );
}

#[test]
fn iban_digits_limited_to_four() {
    let text = replace("iban_last_digits = 4", "iban_last_digits = 5");
    let line = line_containing(&text, "iban_last_digits = 5");
    assert_one_problem(
        &text,
        &format!("{line}: factors.iban_last_digits: is 5, but at most 4 trailing IBAN digits are asked, because more digits come close to the full IBAN"),
    );

    let text = replace("iban_last_digits = 4", "iban_last_digits = 0");
    assert_one_problem(
        &text,
        &format!("{line}: factors.iban_last_digits: is 0, but must be 1 to 4"),
    );

    let text = replace("iban_last_digits = 4", "iban_last_digits = 2");
    assert_eq!(parse(&text).unwrap().factors.iban_last_digits, 2);
}

#[test]
fn contract_check_digit_read() {
    let text = replace(
        "contract_check_digit = \"none\"",
        "contract_check_digit = \"elfproef\"",
    );
    assert_eq!(
        parse(&text).unwrap().factors.contract_check_digit,
        CheckDigit::Elfproef
    );

    let text = replace(
        "contract_check_digit = \"none\"",
        "contract_check_digit = \"mod97\"",
    );
    let line = line_containing(&text, "mod97");
    assert_one_problem(
        &text,
        &format!("{line}: flow.contract_check_digit: is `mod97`, but must be \"none\", \"luhn\" or \"elfproef\""),
    );
}

#[test]
fn otp_and_lockout_ranges_checked() {
    let text = DEFAULT_TOML
        .replace("lifetime_s = 300", "lifetime_s = 3600")
        .replace("max_entries = 3", "max_entries = 10")
        .replace("contract_limit = 5", "contract_limit = 0")
        .replace("customer_window_s = 3600", "customer_window_s = 10");
    let problems = problems_of(&text);
    let expect = [
        ("otp.lifetime_s", "is 3600, but must be 30 to 600"),
        ("otp.max_entries", "is 10, but must be 1 to 5"),
        ("lockout.contract_limit", "is 0, but must be 1 to 100"),
        (
            "lockout.customer_window_s",
            "is 10, but must be 60 to 604800",
        ),
    ];
    assert_eq!(problems.len(), expect.len(), "{problems:?}");
    for ((key, message), problem) in expect.iter().zip(&problems) {
        assert!(
            problem.contains(&format!("{key}: {message}")),
            "{problem} lacks {key}: {message}"
        );
    }
}

#[test]
fn development_must_be_bool() {
    let text = replace("development = true", "development = \"yes\"");
    let line = line_containing(&text, "development = \"yes\"");
    assert_one_problem(
        &text,
        &format!("{line}: service.development: must be true or false, found string"),
    );
}

#[test]
fn console_gateway_rejected_in_production() {
    let text = replace("development = true", "development = false");
    let line = line_containing(&text, "kind = \"console\"");
    assert_one_problem(
        &text,
        &format!("{line}: sms.gateways.kind: the console gateway only logs messages and works only with service.development = true"),
    );
}

#[test]
fn sms_otp_needs_a_gateway() {
    let text = with_sms("[sms]\n# Sender.\nsender = \"Klantdienst\"\n");
    let line = line_containing(&text, "[sms]");
    assert_one_problem(
        &text,
        &format!("{line}: sms.gateways: a level uses sms_otp, but no SMS gateway is configured"),
    );
}

#[test]
fn every_gateway_kind_read() {
    let text = with_sms(
        r#"[sms]
sender = "+3197010203040"
[[sms.gateways]]
kind = "http_json"
url = "http://127.0.0.1:8099/send"
headers = { Authorization = "env:SMS_TOKEN", X-Tenant = "acme" }
body_template = '{"to": "{{to}}", "from": "{{from}}", "body": "{{text}}"}'
[[sms.gateways]]
kind = "cm"
product_token = "env:CM_TOKEN"
[[sms.gateways]]
kind = "spryng"
url = "https://rest.example.test/v1/messages"
api_key = "spryng-key"
[[sms.gateways]]
kind = "bird"
access_key = "bird-key"
workspace_id = "ws-1"
channel_id = "ch_2"
[[sms.gateways]]
kind = "twilio"
account_sid = "AC0123456789abcdef0123456789abcdef"
auth_token = "twilio-token"
[[sms.gateways]]
kind = "console"
"#,
    );
    let config = parse(&text).unwrap();
    assert_eq!(config.sms.sender, "+3197010203040");
    assert_eq!(
        config.sms.gateways,
        vec![
            GatewayConfig::HttpJson {
                url: "http://127.0.0.1:8099/send".to_string(),
                headers: vec![
                    ("Authorization".to_string(), "secret-token".to_string()),
                    ("X-Tenant".to_string(), "acme".to_string()),
                ],
                body_template: r#"{"to": "{{to}}", "from": "{{from}}", "body": "{{text}}"}"#
                    .to_string(),
            },
            GatewayConfig::CmCom {
                url: "https://gw.messaging.cm.com/v1.0/message".to_string(),
                product_token: "1b2c3d4e-0000-4a5b-8c9d-0123456789ab".to_string(),
            },
            GatewayConfig::Spryng {
                url: "https://rest.example.test/v1/messages".to_string(),
                api_key: "spryng-key".to_string(),
            },
            GatewayConfig::Bird {
                url: "https://api.bird.com".to_string(),
                access_key: "bird-key".to_string(),
                workspace_id: "ws-1".to_string(),
                channel_id: "ch_2".to_string(),
            },
            GatewayConfig::Twilio {
                url: "https://api.twilio.com".to_string(),
                account_sid: "AC0123456789abcdef0123456789abcdef".to_string(),
                auth_token: "twilio-token".to_string(),
            },
            GatewayConfig::Console,
        ]
    );
}

#[test]
fn gateway_problems_reported() {
    let text = with_sms(
        r#"[sms]
sender = "Klantenservice"
timeout_ms = 50
[[sms.gateways]]
kind = "http_json"
url = "http://192.0.2.9/send"
body_template = '{"to": {{to}}, "body": "{{text}}"}'
[[sms.gateways]]
kind = "spryng"
api_key = "env:MISSING_KEY"
[[sms.gateways]]
kind = "twilio"
account_sid = "AC123"
auth_token = "env:EMPTY"
[[sms.gateways]]
kind = "cm"
product_token = "not-a-uuid"
token = "x"
[[sms.gateways]]
kind = "smpp"
"#,
    );
    let problems = problems_of(&text);
    let expect = [
        "sms.timeout_ms: is 50, but must be 100 to 30000",
        "sms.sender: `Klantenservice` must be 1 to 11 ASCII letters",
        "sms.gateways.url: `http://192.0.2.9/send` must be an https:// URL",
        "sms.gateways.body_template: is not JSON once the placeholders are filled in",
        "sms.gateways.api_key: environment variable MISSING_KEY is not set",
        "sms.gateways.account_sid: must be a Twilio account SID",
        "sms.gateways.auth_token: environment variable EMPTY is empty",
        "sms.gateways.token: unknown key; known keys in [sms.gateways] are kind, url, product_token",
        "sms.gateways.product_token: must be a product token in UUID form",
        "sms.gateways.kind: is `smpp`, but must be",
    ];
    for expected in expect {
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "no problem contains {expected:?}: {problems:#?}"
        );
    }
    assert_eq!(problems.len(), expect.len(), "{problems:#?}");
}

#[test]
fn credentials_never_in_problems() {
    let text = with_sms(
        r#"[sms]
[[sms.gateways]]
kind = "cm"
product_token = "env:SMS_TOKEN"
"#,
    );
    let problems = problems_of(&text);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(!problems[0].contains("secret-token"), "{problems:?}");
}

#[test]
fn body_template_needs_placeholders() {
    let text = with_sms(
        r#"[sms]
[[sms.gateways]]
kind = "http_json"
url = "https://sms.example.test/send"
body_template = '{"body": "fixed"}'
"#,
    );
    let problems = problems_of(&text);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].contains("must contain the placeholder {{to}}"));
    assert!(problems[1].contains("must contain the placeholder {{text}}"));
}

#[test]
fn memory_store_read() {
    let text = with_store("[store]\n# Memory.\nkind = \"memory\"\n");
    assert_eq!(parse(&text).unwrap().store, StoreConfig::Memory);
}

#[test]
fn embedded_store_path_resolved() {
    let text = replace(
        "path = \"../var/ivr-verify.redb\"",
        "path = \"/srv/ivr/state.redb\"",
    );
    assert_eq!(
        parse(&text).unwrap().store,
        StoreConfig::Embedded {
            path: PathBuf::from("/srv/ivr/state.redb")
        }
    );
}

#[test]
fn redis_store_modes_read() {
    let standalone = with_store("[store]\nkind = \"redis\"\nredis_url = \"env:REDIS_URL\"\n");
    assert_eq!(
        parse(&standalone).unwrap().store,
        StoreConfig::Redis {
            connection: RedisConnection::Standalone {
                url: "redis://:pw@127.0.0.1:6379/0".to_string()
            },
            key_prefix: "ivr-verify:".to_string(),
        }
    );

    let sentinel = with_store(
        "[store]\nkind = \"redis\"\nredis_mode = \"sentinel\"\nredis_sentinels = [\"redis://127.0.0.1:26379\", \"redis://127.0.0.2:26379\"]\nredis_master_name = \"ivr\"\nkey_prefix = \"acme:\"\n",
    );
    assert_eq!(
        parse(&sentinel).unwrap().store,
        StoreConfig::Redis {
            connection: RedisConnection::Sentinel {
                sentinels: vec![
                    "redis://127.0.0.1:26379".to_string(),
                    "redis://127.0.0.2:26379".to_string()
                ],
                master_name: "ivr".to_string(),
            },
            key_prefix: "acme:".to_string(),
        }
    );

    let cluster = with_store(
        "[store]\nkind = \"redis\"\nredis_mode = \"cluster\"\nredis_nodes = [\"rediss://127.0.0.1:7000\"]\n",
    );
    assert_eq!(
        parse(&cluster).unwrap().store,
        StoreConfig::Redis {
            connection: RedisConnection::Cluster {
                nodes: vec!["rediss://127.0.0.1:7000".to_string()]
            },
            key_prefix: "ivr-verify:".to_string(),
        }
    );
}

#[test]
fn store_problems_reported() {
    let text = with_store(
        "[store]\nkind = \"redis\"\nredis_mode = \"cluster\"\nredis_url = \"redis://127.0.0.1:6379\"\nredis_nodes = []\npath = \"x.redb\"\n",
    );
    let problems = problems_of(&text);
    let expect = [
        "store.redis_url: applies only when kind = \"redis\" and redis_mode = \"standalone\"",
        "store.redis_nodes: is empty; list at least one redis://HOST:PORT URL",
        "store.path: applies only when kind = \"embedded\"",
    ];
    assert_eq!(problems.len(), expect.len(), "{problems:#?}");
    for expected in expect {
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "no problem contains {expected:?}: {problems:#?}"
        );
    }

    let text = with_store("[store]\nkind = \"redis\"\nredis_url = \"http://127.0.0.1:6379\"\n");
    let problems = problems_of(&text);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("store.redis_url: must be a redis:// or rediss:// URL"));

    let text = with_store("[store]\nkind = \"sqlite\"\n");
    let problems = problems_of(&text);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("store.kind: is `sqlite`"));
}

#[test]
fn explain_lists_level_factors_and_limits() {
    let config = parse(DEFAULT_TOML).unwrap();

    let text = explain_request_type(&config, "financial_change").unwrap();
    assert!(text.starts_with("Request type `financial_change` (policy version 2026-12-01)\n"));
    assert!(
        text.contains("Requires level `high`, reached when:\n  all of: contract_number, sms_otp\n")
    );
    assert!(text.contains("Offered on service lines: default (key 3)."));
    assert!(text.contains("referred to sip:agents@127.0.0.1:5070"));
    assert!(text.contains("contract_number: 6 to 12 digits then #, check digit none"));
    assert!(text.contains(
        "sms_otp: a 6-digit code sent by SMS to the registered mobile, valid 300 s, 3 entries per code, at most 3 codes per 900 s"
    ));
    assert!(text.contains("at most 5 failed attempts per contract number in 900 s"));
    assert!(text.contains("Levels from lowest to highest: basic, substantial, high."));

    let text = explain_request_type(&config, "contract_change").unwrap();
    assert!(text.contains(
        "all of: contract_number\n  and at least one of: date_of_birth, postcode, iban_last_digits\n"
    ));
    assert!(text.contains("iban_last_digits: the last 4 digits of the IBAN"));
}

#[test]
fn explain_unknown_request_type() {
    let config = parse(DEFAULT_TOML).unwrap();
    assert_eq!(
        explain_request_type(&config, "payment"),
        Err("unknown request type `payment`; known request types are information, contract_change, financial_change".to_string())
    );
}
