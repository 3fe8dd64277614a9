use super::*;

const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

fn config_path() -> &'static Path {
    Path::new("/etc/ivr/ivr.toml")
}

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    Config::parse(text, config_path())
}

/// Returns the problems as displayed strings.
fn problems(text: &str) -> Vec<String> {
    parse(text)
        .unwrap_err()
        .problems
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// Returns the default file with the line that starts with `key =` replaced.
fn with_line(key: &str, replacement: &str) -> String {
    let mut found = false;
    let lines: Vec<String> = DEFAULT_TOML
        .lines()
        .map(|line| {
            if line.starts_with(&format!("{key} =")) && !found {
                found = true;
                replacement.to_string()
            } else {
                line.to_string()
            }
        })
        .collect();
    assert!(found, "no line for {key}");
    lines.join("\n")
}

/// Returns the 1-based line of the first line that starts with `key =`.
fn line_of_key(text: &str, key: &str) -> usize {
    text.lines()
        .position(|line| line.starts_with(&format!("{key} =")))
        .unwrap()
        + 1
}

#[test]
fn default_file_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default.toml");
    let config = Config::load(&path).unwrap();
    let dir = path.parent().unwrap();

    assert_eq!(config.sip.listen, "127.0.0.1:5060".parse().unwrap());
    assert_eq!(config.sip.user_agent, "ivr-verify");
    assert_eq!(
        config.sip.trusted_peers,
        vec![
            "127.0.0.1/32".parse::<IpNet>().unwrap(),
            "::1/128".parse().unwrap()
        ]
    );
    assert_eq!(config.http.listen, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(config.media.rtp_port_min, 20000);
    assert_eq!(config.media.rtp_port_max, 20999);
    assert_eq!(config.media.address, IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_eq!(config.prompts.dir, dir.join("../prompts"));
    assert_eq!(config.prompts.language, Language::Nl);
    assert_eq!(config.customers.file, dir.join("customers.example.csv"));
    assert_eq!(config.customers.default_region, country::Id::NL);
    assert_eq!(config.secrets.pepper_file, dir.join("../var/pepper"));
    assert_eq!(
        config.secrets.signing_key_file,
        dir.join("../var/token-signing-key.p8")
    );
    assert_eq!(config.token.issuer, "ivr-verify");
    assert_eq!(config.token.audience, "agent-desktop");
    assert_eq!(config.token.lifetime, Duration::from_secs(600));
    assert_eq!(config.transfer.agent_queue_uri, "sip:agents@127.0.0.1:5070");
    assert_eq!(config.transfer.referred_by, "sip:ivr-verify@127.0.0.1");
    assert_eq!(config.flow.max_attempts, 3);
    assert_eq!(config.flow.contract_min_digits, 6);
    assert_eq!(config.flow.contract_max_digits, 12);
    assert_eq!(config.flow.first_digit_timeout, Duration::from_millis(8000));
    assert_eq!(config.flow.inter_digit_timeout, Duration::from_millis(4000));
}

#[test]
fn default_file_comments_every_key() {
    let lines: Vec<&str> = DEFAULT_TOML.lines().collect();
    for (index, line) in lines.iter().enumerate() {
        let is_key = !line.starts_with('#') && !line.starts_with('[') && line.contains(" = ");
        if is_key {
            assert!(
                index > 0 && lines[index - 1].starts_with('#'),
                "key without comment: {line}"
            );
        }
    }
}

#[test]
fn absolute_paths_kept() {
    let text = with_line("dir", "dir = \"/srv/prompts\"");
    let config = parse(&text).unwrap();
    assert_eq!(config.prompts.dir, PathBuf::from("/srv/prompts"));
}

#[test]
fn optional_keys_default() {
    let text = with_line("user_agent", "");
    let config = parse(&text).unwrap();
    assert_eq!(config.sip.user_agent, DEFAULT_USER_AGENT);
}

#[test]
fn media_address_set() {
    let text = with_line("# address", "address = \"::1\"");
    let config = parse(&text).unwrap();
    assert_eq!(config.media.address, "::1".parse::<IpAddr>().unwrap());
}

#[test]
fn media_address_required_for_wildcard_listen() {
    let text = with_line("listen", "listen = \"0.0.0.0:5060\"");
    let problems = problems(&text);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].starts_with("/etc/ivr/ivr.toml:7: media.address: must be set"));
}

#[test]
fn media_address_unspecified_rejected() {
    let text = with_line("# address", "address = \"0.0.0.0\"");
    let problems = problems(&text);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("media.address: is 0.0.0.0"));
}

#[test]
fn syntax_error_names_line() {
    let text = with_line("language", "language = \"nl");
    let line = line_of_key(&text, "language");
    let problems = problems(&text);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with(&format!("/etc/ivr/ivr.toml:{line}: invalid TOML")),
        "{problems:?}"
    );
}

#[test]
fn duplicate_key_names_key_and_lines() {
    let text = with_line(
        "contract_min_digits",
        "contract_min_digits = 6\nmax_attempts = 4",
    );
    let first = line_of_key(&text, "max_attempts");
    let second = line_of_key(&text, "contract_min_digits") + 1;
    assert_eq!(
        problems(&text),
        vec![format!(
            "/etc/ivr/ivr.toml:{second}: flow.max_attempts: duplicate key, first defined on line {first}; keep one of them"
        )]
    );
}

#[test]
fn duplicate_section_names_table() {
    let first = DEFAULT_TOML.lines().position(|l| l == "[flow]").unwrap() + 1;
    let text = format!("{DEFAULT_TOML}\n[flow]\nmax_attempts = 4\n");
    let second = text.lines().count() - 1;
    assert_eq!(
        problems(&text),
        vec![format!(
            "/etc/ivr/ivr.toml:{second}: flow: duplicate table, first defined on line {first}; merge the two into one [flow]"
        )]
    );
}

#[test]
fn duplicate_key_in_service_line_named() {
    let text = with_line("menu", "menu = [\"information\"]\nlanguage = \"en\"");
    // The service line's `language` is two lines above its `menu`.
    let first = line_of_key(&text, "menu") - 2;
    let second = line_of_key(&text, "menu") + 1;
    assert_eq!(
        problems(&text),
        vec![format!(
            "/etc/ivr/ivr.toml:{second}: service_lines.language: duplicate key, first defined on line {first}; keep one of them"
        )]
    );
}

#[test]
fn unknown_key_names_line() {
    let text = with_line("max_attempts", "max_atempts = 3");
    let line = line_of_key(&text, "max_atempts");
    let flow_line = text.lines().position(|l| l == "[flow]").unwrap() + 1;
    let problems = problems(&text);
    assert_eq!(
        problems,
        vec![
            format!("/etc/ivr/ivr.toml:{flow_line}: flow.max_attempts: missing key in [flow]"),
            format!("/etc/ivr/ivr.toml:{line}: flow.max_atempts: unknown key; known keys in [flow] are max_attempts, contract_min_digits, contract_max_digits, contract_check_digit, first_digit_timeout_ms, inter_digit_timeout_ms"),
        ]
    );
}

#[test]
fn unknown_section_reported() {
    let text = format!("{DEFAULT_TOML}\n[smtp]\nserver = \"x\"\n");
    let problems = problems(&text);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains(": smtp: unknown section or key"));
}

#[test]
fn missing_section_reported() {
    let text = DEFAULT_TOML.replace("[http]", "[htp]");
    let problems = problems(&text);
    assert!(problems
        .iter()
        .any(|p| p == "/etc/ivr/ivr.toml: missing section [http]"));
    assert!(problems
        .iter()
        .any(|p| p.contains(": htp: unknown section")));
}

#[test]
fn type_error_names_line() {
    let text = with_line("lifetime_minutes", "lifetime_minutes = \"10\"");
    let line = line_of_key(&text, "lifetime_minutes");
    assert_eq!(
        problems(&text),
        vec![format!(
            "/etc/ivr/ivr.toml:{line}: token.lifetime_minutes: must be an integer, found string"
        )]
    );
}

#[test]
fn every_problem_reported() {
    let mut text = with_line("rtp_port_min", "rtp_port_min = 20001");
    text = text.replacen("language = \"nl\"", "language = \"de\"", 1);
    text = text.replace("lifetime_minutes = 10", "lifetime_minutes = 0");
    text = text.replace("max_attempts = 3", "max_attempts = 6");
    text = text.replace("contract_max_digits = 12", "contract_max_digits = 5");
    text = text.replacen("sip:agents@127.0.0.1:5070", "agents@127.0.0.1", 1);
    text = text.replace("\"::1/128\"", "\"::1/129\"");
    text = text.replace("default_region = \"NL\"", "default_region = \"XX\"");

    let problems = problems(&text);
    let expect = [
        ("sip.trusted_peers", "`::1/129` is not an IP network"),
        ("media.rtp_port_min", "is 20001, but must be even"),
        ("prompts.language", "is `de`"),
        ("customers.default_region", "`XX` is not a region code"),
        ("token.lifetime_minutes", "is 0, but must be 1 to 60"),
        (
            "transfer.agent_queue_uri",
            "`agents@127.0.0.1` must be a sip: or sips: URI",
        ),
        ("flow.max_attempts", "is 6, but must be 1 to 5"),
        (
            "flow.contract_max_digits",
            "is 5, but must be at least flow.contract_min_digits (6)",
        ),
    ];
    assert_eq!(problems.len(), expect.len(), "{problems:?}");
    for ((key, message), problem) in expect.iter().zip(&problems) {
        let short_key = key.split('.').nth(1).unwrap();
        let line = line_of_key(&text, short_key);
        let prefix = format!("/etc/ivr/ivr.toml:{line}: {key}: {message}");
        assert!(
            problem.starts_with(&prefix),
            "{problem} does not start with {prefix}"
        );
    }
}

#[test]
fn rtp_range_checked() {
    let text = with_line("rtp_port_max", "rtp_port_max = 20000");
    let line = line_of_key(&text, "rtp_port_max");
    assert_eq!(
        problems(&text),
        vec![format!("/etc/ivr/ivr.toml:{line}: media.rtp_port_max: is 20000, but must be greater than media.rtp_port_min (20000)")]
    );
}

#[test]
fn bad_socket_address_rejected() {
    let text = with_line("listen", "listen = \"localhost:5060\"");
    let problems = problems(&text);
    // The media address falls back to the SIP address, which is unusable too,
    // but only the socket address is reported.
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0]
        .starts_with("/etc/ivr/ivr.toml:7: sip.listen: `localhost:5060` is not a socket address"));
}

#[test]
fn header_injection_rejected() {
    let cases = [
        ("referred_by", "referred_by = \"sip:a@b\\r\\nX-Evil: 1\""),
        ("referred_by", "referred_by = \"sip:a@b>;x=<sip:c\""),
        ("referred_by", "referred_by = \"sip:\""),
        ("user_agent", "user_agent = \"ivr\\r\\nX-Evil: 1\""),
        ("issuer", "issuer = \"\""),
    ];
    for (key, line) in cases {
        let text = with_line(key, line);
        let problems = problems(&text);
        assert_eq!(problems.len(), 1, "{line}: {problems:?}");
    }
}

#[test]
fn trusted_peer_bare_address_accepted() {
    let text = with_line(
        "trusted_peers",
        "trusted_peers = [\"192.0.2.7\", \"2001:db8::/32\"]",
    );
    let config = parse(&text).unwrap();
    assert_eq!(
        config.sip.trusted_peers,
        vec![
            "192.0.2.7/32".parse::<IpNet>().unwrap(),
            "2001:db8::/32".parse().unwrap()
        ]
    );
}

#[test]
fn trusted_peers_element_type_checked() {
    let text = with_line(
        "trusted_peers",
        "trusted_peers = [\n  \"127.0.0.1/32\",\n  5,\n]",
    );
    let line = line_of_key(&text, "trusted_peers") + 2;
    assert_eq!(
        problems(&text),
        vec![format!(
            "/etc/ivr/ivr.toml:{line}: sip.trusted_peers: elements must be strings, found integer"
        )]
    );
}

#[test]
fn lowercase_region_and_english_accepted() {
    let text = DEFAULT_TOML
        .replace("default_region = \"NL\"", "default_region = \"be\"")
        .replace("language = \"nl\"", "language = \"en\"");
    let config = parse(&text).unwrap();
    assert_eq!(config.customers.default_region, country::Id::BE);
    assert_eq!(config.prompts.language, Language::En);
    assert_eq!(config.prompts.language.code(), "en");
}

#[test]
fn section_as_value_rejected() {
    let text = format!("http = 1\n{}", DEFAULT_TOML.replace("[http]", "[http2]"));
    let problems = problems(&text);
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("/etc/ivr/ivr.toml:1: http: must be a table")),
        "{problems:?}"
    );
}

#[test]
fn inline_table_section_accepted() {
    let without_http = DEFAULT_TOML
        .replace("[http]", "")
        .replace("listen = \"127.0.0.1:8080\"\n", "");
    let text = format!("http = {{ listen = \"127.0.0.1:8081\" }}\n{without_http}");
    let config = parse(&text).unwrap();
    assert_eq!(config.http.listen, "127.0.0.1:8081".parse().unwrap());
}

#[test]
fn missing_file_is_one_problem() {
    let errors = Config::load(Path::new("/nonexistent/ivr.toml")).unwrap_err();
    assert_eq!(errors.problems.len(), 1);
    assert!(errors.problems[0]
        .to_string()
        .starts_with("/nonexistent/ivr.toml: failed to read configuration file"));
}
