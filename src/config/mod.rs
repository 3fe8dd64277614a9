//! Typed configuration, loaded from one TOML file.
//!
//! [`Config::load`] reports every problem in the file at once: syntax errors,
//! unknown keys (usually typos), missing keys, wrong types and invalid
//! values. Each problem names its line, and its key where it has one.
//! `config/default.toml` documents every key.
//!
//! The verification policy (`[policy]`, `[levels.*]`, `[request_types.*]`,
//! `[[service_lines]]`) is required, because which factors a request needs
//! is a decision of the deployment, not of the code. The other sections
//! added with it (`[service]`, `[factors]`, `[otp]`, `[lockout]`, `[store]`,
//! `[sms]`) and their keys are optional, with the defaults that
//! `config/default.toml` shows.

mod backends;
pub mod forbidden;
mod limits;
mod locations;
mod parse_error;
mod policy;
mod problem;
mod prompt_catalog;
mod reader;
pub mod secret;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use phonenumber::country;

pub use backends::EnvLookup;
pub use limits::{LockoutConfig, OtpConfig, ServiceConfig};
pub use locations::KeyLocations;
pub use problem::{ConfigErrors, Problem};
pub use prompt_catalog::check_prompt_catalog;
use reader::{Field, Shape, TomlReader};
pub use secret::{load_or_create_pepper, SecretError};

use crate::sms::SmsConfig;
use crate::store::StoreConfig;
use crate::verify::factors::FactorSettings;
use crate::verify::policy::{Factor, Policy};

/// Default `sip.user_agent`.
pub const DEFAULT_USER_AGENT: &str = "ivr-verify";

/// Maximum `token.lifetime_minutes`. The token only has to outlive the
/// transfer to an agent, and a long-lived token is worth more to a thief.
pub const MAX_TOKEN_LIFETIME_MINUTES: i64 = 60;

/// Maximum `flow.max_attempts`. More attempts make guessing a contract number
/// cheaper and do not help a caller who does not have it.
const MAX_ATTEMPTS: i64 = 5;

/// Upper bound of `flow.contract_max_digits`, which bounds the digits a call
/// buffers. Longer numbers are impractical to type on a keypad.
const MAX_CONTRACT_DIGITS: i64 = 20;

/// Minimum of the digit timeouts in ms. Under a second, callers who read
/// their number from a letter are cut off between digits.
const MIN_DIGIT_TIMEOUT_MS: i64 = 1_000;

/// Maximum of the digit timeouts in ms. A caller who has not pressed a key
/// for a minute is not typing, and a longer timer only keeps the call open.
const MAX_DIGIT_TIMEOUT_MS: i64 = 60_000;

/// Maximum length of the User-Agent header value. RFC 3261 sets no limit,
/// and this keeps the header short.
const MAX_USER_AGENT_LEN: usize = 128;

/// Sections of the file in the order of `config/default.toml`, with their
/// shape and whether they are required.
const SCHEMA: &[(&str, Shape, bool)] = &[
    (
        "sip",
        Shape::Keys(&[
            "listen",
            "listen_udp_extra",
            "listen_tcp",
            "listen_tls",
            "tls_certificate_file",
            "tls_private_key_file",
            "user_agent",
            "trusted_peers",
            "untrusted_action",
            "max_concurrent_calls",
            "untrusted_requests_per_second",
            "untrusted_burst",
            "trusted_requests_per_second",
            "trusted_burst",
            "max_message_bytes",
            "scanner_user_agents",
            "answer_delay_ms",
            "max_connections_per_source",
            "max_connections",
            "first_message_timeout_ms",
        ]),
        true,
    ),
    ("http", Shape::Keys(&["listen"]), true),
    (
        "media",
        Shape::Keys(&["rtp_port_min", "rtp_port_max", "address", "address_v6"]),
        true,
    ),
    ("prompts", Shape::Keys(&["dir", "language"]), true),
    ("customers", Shape::Keys(&["file", "default_region"]), true),
    (
        "secrets",
        Shape::Keys(&["pepper_file", "signing_key_file"]),
        true,
    ),
    (
        "token",
        Shape::Keys(&["issuer", "audience", "lifetime_minutes"]),
        true,
    ),
    (
        "transfer",
        Shape::Keys(&["agent_queue_uri", "referred_by"]),
        true,
    ),
    (
        "flow",
        Shape::Keys(&[
            "max_attempts",
            "contract_min_digits",
            "contract_max_digits",
            "contract_check_digit",
            "first_digit_timeout_ms",
            "inter_digit_timeout_ms",
        ]),
        true,
    ),
    ("service", Shape::Keys(&["development"]), false),
    ("policy", Shape::Keys(&["version"]), true),
    ("levels", Shape::NamedTables, true),
    ("request_types", Shape::NamedTables, true),
    ("service_lines", Shape::ArrayOfTables, true),
    ("factors", Shape::Keys(&["iban_last_digits"]), false),
    (
        "otp",
        Shape::Keys(&["lifetime_s", "max_entries", "max_sends", "send_window_s"]),
        false,
    ),
    (
        "lockout",
        Shape::Keys(&[
            "contract_limit",
            "contract_window_s",
            "customer_limit",
            "customer_window_s",
            "calling_number_limit",
            "calling_number_window_s",
        ]),
        false,
    ),
    ("store", Shape::Keys(backends::STORE_KEYS), false),
    ("sms", Shape::Keys(backends::SMS_KEYS), false),
];

/// The whole configuration. Paths are absolute or relative to the working
/// directory, because relative paths in the file are resolved against the
/// directory of the file at load time.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `[sip]`: the SIP listener and which peers are trusted.
    pub sip: SipConfig,
    /// `[http]`: the HTTP API listener.
    pub http: HttpConfig,
    /// `[media]`: RTP ports and address.
    pub media: MediaConfig,
    /// `[prompts]`: where the recorded prompts are and which language plays.
    pub prompts: PromptsConfig,
    /// `[customers]`: the customers file.
    pub customers: CustomersConfig,
    /// `[secrets]`: the pepper and the signing key.
    pub secrets: SecretsConfig,
    /// `[token]`: claims and lifetime of the handoff token.
    pub token: TokenConfig,
    /// `[transfer]`: where verified calls go.
    pub transfer: TransferConfig,
    /// `[flow]`: limits and timers of the call flow.
    pub flow: FlowConfig,
    /// `[service]`: switches of the whole service.
    pub service: ServiceConfig,
    /// `[policy]`, `[levels.*]`, `[request_types.*]` and
    /// `[[service_lines]]`: which factors each request type needs.
    pub policy: Policy,
    /// `[factors]` and `flow.contract_check_digit`: entry formats of the
    /// knowledge factors.
    pub factors: FactorSettings,
    /// `[otp]`: one-time code lifetime and limits.
    pub otp: OtpConfig,
    /// `[lockout]`: limits on failed attempts.
    pub lockout: LockoutConfig,
    /// `[store]`: where state lives.
    pub store: StoreConfig,
    /// `[sms]`: how one-time codes are sent. Holds gateway credentials, so
    /// never log it.
    pub sms: SmsConfig,
    /// Lines of the keys that name files, folders and menu prompts, so that
    /// a problem found when one of those is read names the key and line.
    pub locations: KeyLocations,
}

/// `[sip]`.
#[derive(Debug, Clone, PartialEq)]
pub struct SipConfig {
    /// UDP address the SIP transport binds.
    pub listen: SocketAddr,
    /// More UDP addresses, such as an IPv6 one beside an IPv4 `listen`.
    pub listen_udp_extra: Vec<SocketAddr>,
    /// TCP addresses (RFC 3261 §18.3 framing by Content-Length).
    pub listen_tcp: Vec<SocketAddr>,
    /// TLS addresses (SIPS); need the certificate and key files.
    pub listen_tls: Vec<SocketAddr>,
    /// PEM certificate chain for TLS.
    pub tls_certificate_file: Option<PathBuf>,
    /// PEM private key for TLS.
    pub tls_private_key_file: Option<PathBuf>,
    /// Admission, rate limits and size limits at the SIP edge. Its
    /// `trusted_peers` mirrors the field below.
    pub edge: EdgePolicy,
    /// Time between 100 Trying and 200 OK, during which a CANCEL still
    /// stops the call; zero answers at once.
    pub answer_delay: Duration,
    /// Value of the User-Agent and Server headers.
    pub user_agent: String,
    /// Peers whose P-Asserted-Identity is believed (RFC 3325 trust domain).
    pub trusted_peers: Vec<IpNet>,
}

/// `[http]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// TCP address of the HTTP API.
    pub listen: SocketAddr,
}

/// `[media]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaConfig {
    /// Lowest RTP port, even. RTP uses even ports and RTCP the odd port above
    /// (RFC 3550, section 11).
    pub rtp_port_min: u16,
    /// Highest RTP port, above `rtp_port_min`.
    pub rtp_port_max: u16,
    /// Address that RTP binds and SDP announces. `media.address` when set,
    /// else the IP of `sip.listen`. Never unspecified (`0.0.0.0`, `::`),
    /// because the caller could not send media to it.
    pub address: IpAddr,
    /// IPv6 address for callers whose offer has an IPv6 connection line,
    /// when `address` is IPv4. Without it such offers get 488.
    pub address_v6: Option<IpAddr>,
}

/// `[prompts]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptsConfig {
    /// Folder with one subfolder of WAV prompts per language.
    pub dir: PathBuf,
    /// Language played first.
    pub language: Language,
}

/// Language of the prompts a caller hears; the prompts module owns it.
pub use crate::media::prompts::Language;

/// `[customers]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomersConfig {
    /// The customers CSV file.
    pub file: PathBuf,
    /// Region of numbers without a country code, in the file and in SIP
    /// headers.
    pub default_region: country::Id,
}

/// `[secrets]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretsConfig {
    /// File with the HMAC pepper for keyed hashes, created when missing.
    pub pepper_file: PathBuf,
    /// PKCS#8 Ed25519 key that signs tokens, created when missing.
    pub signing_key_file: PathBuf,
}

/// `[token]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenConfig {
    /// `iss` claim.
    pub issuer: String,
    /// `aud` claim.
    pub audience: String,
    /// Time from `iat` to `exp`.
    pub lifetime: Duration,
}

/// `[transfer]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferConfig {
    /// Refer-To target of verified calls, a sip: or sips: URI.
    pub agent_queue_uri: String,
    /// Referred-By value (RFC 3892), a sip: or sips: URI.
    pub referred_by: String,
}

use crate::sip::{EdgePolicy, UntrustedAction};

/// `[flow]` is the call flow's own settings type.
pub use crate::flow::FlowConfig;

impl Config {
    /// Loads and checks the configuration file at `path`. Returns every
    /// problem found, or the configuration with relative paths resolved
    /// against the directory of `path`. Does not create or read the files the
    /// configuration names.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigErrors {
            problems: vec![Problem::new(
                path,
                None,
                None,
                format!("failed to read configuration file: {error}"),
            )],
        })?;
        Config::parse(&text, path)
    }

    /// Parses configuration text. `path` names the file in problems, and
    /// relative paths resolve against its directory. `env:NAME` values are
    /// read from the process environment.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigErrors> {
        Config::parse_with_env(text, path, &|name| std::env::var(name).ok())
    }

    /// Parses configuration text like [`Config::parse`], reading `env:NAME`
    /// values through `env`.
    pub fn parse_with_env(
        text: &str,
        path: &Path,
        env: EnvLookup<'_>,
    ) -> Result<Config, ConfigErrors> {
        let document = toml_edit::Document::parse(text).map_err(|error| ConfigErrors {
            problems: vec![parse_error::problem_from_parse_error(path, text, &error)],
        })?;

        let base_dir = path.parent().unwrap_or(Path::new(""));
        let mut reader = TomlReader::new(path, text, document.as_table());
        reader.check_schema(SCHEMA);

        let sip = read_sip(&mut reader, base_dir);
        let http = HttpConfig {
            listen: socket_addr(&mut reader, "http", "listen"),
        };
        let media = read_media(&mut reader, sip.listen);
        let prompts = read_prompts(&mut reader, base_dir);
        let customers = read_customers(&mut reader, base_dir);
        let secrets = SecretsConfig {
            pepper_file: path_value(&mut reader, base_dir, "secrets", "pepper_file"),
            signing_key_file: path_value(&mut reader, base_dir, "secrets", "signing_key_file"),
        };
        let token = read_token(&mut reader);
        let transfer = TransferConfig {
            agent_queue_uri: sip_uri(&mut reader, "transfer", "agent_queue_uri"),
            referred_by: sip_uri(&mut reader, "transfer", "referred_by"),
        };
        let flow = read_flow(&mut reader);
        let service = limits::read_service(&mut reader);
        let policy = policy::read_policy(
            &mut reader,
            &transfer.agent_queue_uri,
            customers.default_region,
        );
        let factors = limits::read_factors(&mut reader, &flow);
        let otp = limits::read_otp(&mut reader);
        let lockout = limits::read_lockout(&mut reader);
        let store = backends::read_store(&mut reader, base_dir, env);
        let sms = backends::read_sms(&mut reader, service.development, env);
        if let Some(policy) = &policy {
            check_sms_needed(&mut reader, policy, &sms);
        }

        // Values that failed a check were replaced by placeholders above, so
        // the configuration is returned only when nothing failed.
        let policy = match policy {
            Some(policy) if reader.problems.is_empty() => policy,
            _ => {
                let mut problems = reader.problems;
                problems.sort_by_key(|problem| problem.line.unwrap_or(usize::MAX));
                return Err(ConfigErrors { problems });
            }
        };
        Ok(Config {
            sip,
            http,
            media,
            prompts,
            customers,
            secrets,
            token,
            transfer,
            flow,
            service,
            policy,
            factors,
            otp,
            lockout,
            store,
            sms,
            locations: reader.locations,
        })
    }
}

/// Records a problem when a level that a request type requires uses
/// `sms_otp` but no SMS gateway is configured, because such calls could
/// never reach their level.
fn check_sms_needed(reader: &mut TomlReader<'_>, policy: &Policy, sms: &SmsConfig) {
    if !sms.gateways.is_empty() {
        return;
    }
    let needs_sms = policy.request_types().iter().any(|request_type| {
        policy
            .level(&request_type.level)
            .is_some_and(|level| level.rule.uses(Factor::SmsOtp))
    });
    if needs_sms {
        let line = reader.section("sms").and_then(|table| table.line);
        reader.problem(
            line,
            Some("sms.gateways"),
            "a level uses sms_otp, but no SMS gateway is configured; add a [[sms.gateways]] table",
        );
    }
}

/// Placeholder for an address that failed its check. Never returned in a
/// [`Config`].
const PLACEHOLDER_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);

fn read_sip(reader: &mut TomlReader<'_>, base_dir: &Path) -> SipConfig {
    let listen = socket_addr(reader, "sip", "listen");
    let listen_udp_extra = socket_addr_list(reader, "sip", "listen_udp_extra");
    let listen_tcp = socket_addr_list(reader, "sip", "listen_tcp");
    let listen_tls = socket_addr_list(reader, "sip", "listen_tls");
    let tls_certificate_file = optional_path(reader, base_dir, "sip", "tls_certificate_file");
    let tls_private_key_file = optional_path(reader, base_dir, "sip", "tls_private_key_file");
    if !listen_tls.is_empty() && (tls_certificate_file.is_none() || tls_private_key_file.is_none())
    {
        reader.problem(
            None,
            Some("sip.listen_tls"),
            "TLS listeners need sip.tls_certificate_file and sip.tls_private_key_file (PEM)",
        );
    }

    let user_agent = match reader.string("sip", "user_agent", false) {
        None => DEFAULT_USER_AGENT.to_string(),
        Some((value, field)) => {
            let printable = value.chars().all(|c| c.is_ascii_graphic() || c == ' ');
            if value.trim().is_empty() || !printable || value.len() > MAX_USER_AGENT_LEN {
                reader.field_problem(
                    &field,
                    format!(
                        "must be 1 to {MAX_USER_AGENT_LEN} printable ASCII characters, because it is sent as a SIP header"
                    ),
                );
            }
            value
        }
    };

    let mut trusted_peers = Vec::new();
    for (value, field) in reader
        .string_array("sip", "trusted_peers")
        .unwrap_or_default()
    {
        // A bare address is read as a single-host network.
        let parsed = value
            .parse::<IpNet>()
            .or_else(|_| value.parse::<IpAddr>().map(IpNet::from));
        match parsed {
            Ok(net) => trusted_peers.push(net),
            Err(_) => reader.field_problem(
                &field,
                format!(
                    "`{value}` is not an IP network; write CIDR notation, such as 192.0.2.10/32"
                ),
            ),
        }
    }

    let edge = read_edge(reader, &trusted_peers);
    let answer_delay = reader
        .get("sip", "answer_delay_ms", false)
        .and_then(|field| reader.as_integer(field, 0..=MAX_ANSWER_DELAY_MS))
        .map_or(Duration::ZERO, |(ms, _)| {
            Duration::from_millis(ms.unsigned_abs())
        });

    SipConfig {
        answer_delay,
        listen,
        listen_udp_extra,
        listen_tcp,
        listen_tls,
        tls_certificate_file,
        tls_private_key_file,
        edge,
        user_agent,
        trusted_peers,
    }
}

/// Longest answer delay accepted. A caller waits in silence meanwhile, and
/// carriers give up on an unanswered INVITE after about 32 s (Timer B), so
/// more than a few seconds only costs callers.
const MAX_ANSWER_DELAY_MS: i64 = 10_000;

/// Reads the optional edge keys of `[sip]`; each missing key keeps the
/// [`EdgePolicy`] default.
fn read_edge(reader: &mut TomlReader<'_>, trusted_peers: &[IpNet]) -> EdgePolicy {
    let mut edge = EdgePolicy {
        trusted_peers: trusted_peers.to_vec(),
        ..EdgePolicy::default()
    };

    if let Some((value, field)) = reader.string("sip", "untrusted_action", false) {
        match value.as_str() {
            "reject" => edge.untrusted_action = UntrustedAction::Reject,
            "drop" => edge.untrusted_action = UntrustedAction::Drop,
            _ => reader.field_problem(
                &field,
                format!("`{value}` is not an action; use \"reject\" (403) or \"drop\" (no answer)"),
            ),
        }
    }

    let optional_integer =
        |reader: &mut TomlReader<'_>, key: &str, range: std::ops::RangeInclusive<i64>| {
            let field = reader.get("sip", key, false)?;
            reader
                .as_integer(field, range)
                .map(|(value, _)| value.unsigned_abs())
        };
    if let Some(value) = optional_integer(reader, "max_concurrent_calls", 1..=100_000) {
        edge.max_concurrent_calls = usize::try_from(value).unwrap_or(usize::MAX);
    }
    if let Some(value) = optional_integer(reader, "untrusted_requests_per_second", 1..=100_000) {
        edge.untrusted_rate.requests_per_second = value as f64;
    }
    if let Some(value) = optional_integer(reader, "untrusted_burst", 1..=1_000_000) {
        edge.untrusted_rate.burst = u32::try_from(value).unwrap_or(u32::MAX);
    }
    if let Some(value) = optional_integer(reader, "trusted_requests_per_second", 1..=1_000_000) {
        edge.trusted_rate.requests_per_second = value as f64;
    }
    if let Some(value) = optional_integer(reader, "trusted_burst", 1..=10_000_000) {
        edge.trusted_rate.burst = u32::try_from(value).unwrap_or(u32::MAX);
    }
    if let Some(value) = optional_integer(reader, "max_connections_per_source", 1..=10_000) {
        edge.max_connections_per_source = usize::try_from(value).unwrap_or(usize::MAX);
    }
    if let Some(value) = optional_integer(reader, "max_connections", 1..=1_000_000) {
        edge.max_connections = usize::try_from(value).unwrap_or(usize::MAX);
    }
    if let Some(value) = optional_integer(reader, "first_message_timeout_ms", 100..=300_000) {
        edge.first_message_timeout = Duration::from_millis(value);
    }
    if let Some(value) = optional_integer(reader, "max_message_bytes", 1_024..=65_535) {
        edge.max_message_bytes = usize::try_from(value).unwrap_or(65_535);
    }
    if let Some(field) = reader.get("sip", "scanner_user_agents", false) {
        if let Some(agents) = reader.as_string_array(field) {
            edge.scanner_user_agents = agents.into_iter().map(|(agent, _)| agent).collect();
        }
    }
    edge
}

/// Reads an optional list of socket addresses; a missing key is empty.
fn socket_addr_list(reader: &mut TomlReader<'_>, section: &str, key: &str) -> Vec<SocketAddr> {
    let Some(field) = reader.get(section, key, false) else {
        return Vec::new();
    };
    let Some(values) = reader.as_string_array(field) else {
        return Vec::new();
    };

    let mut addresses = Vec::with_capacity(values.len());
    for (value, field) in values {
        match value.parse::<SocketAddr>() {
            Ok(address) => addresses.push(address),
            Err(_) => reader.field_problem(
                &field,
                format!("`{value}` is not a socket address; write IP:PORT, such as \"127.0.0.1:5060\" or \"[::1]:5060\""),
            ),
        }
    }
    addresses
}

/// Reads an optional path, resolved against the config file's folder.
fn optional_path(
    reader: &mut TomlReader<'_>,
    base_dir: &Path,
    section: &str,
    key: &str,
) -> Option<PathBuf> {
    reader.get(section, key, false)?;
    Some(path_value(reader, base_dir, section, key))
}

fn read_media(reader: &mut TomlReader<'_>, sip_listen: SocketAddr) -> MediaConfig {
    let min = reader.integer("media", "rtp_port_min", 1..=65_534);
    let max = reader.integer("media", "rtp_port_max", 1..=65_534);

    if let Some((min, field)) = &min {
        if min % 2 != 0 {
            reader.field_problem(
                field,
                format!("is {min}, but must be even, because RTP uses even ports and RTCP the odd port above (RFC 3550)"),
            );
        }
    }
    if let (Some((min, _)), Some((max, field))) = (&min, &max) {
        if max <= min {
            reader.field_problem(
                field,
                format!("is {max}, but must be greater than media.rtp_port_min ({min})"),
            );
        }
    }

    let address = match reader.string("media", "address", false) {
        None => {
            let ip = sip_listen.ip();
            if ip.is_unspecified() {
                let field = reader.get("sip", "listen", false);
                let line = field.as_ref().and_then(|f| f.line);
                reader.problem(
                    line,
                    Some("media.address"),
                    format!("must be set when sip.listen binds all addresses ({ip}), because SDP must announce an address the caller can reach"),
                );
            }
            ip
        }
        Some((value, field)) => match value.parse::<IpAddr>() {
            Ok(ip) if ip.is_unspecified() => {
                reader.field_problem(
                    &field,
                    format!("is {ip}, but SDP must announce an address the caller can reach; set the host's own address"),
                );
                ip
            }
            Ok(ip) => ip,
            Err(_) => {
                reader.field_problem(
                    &field,
                    format!("`{value}` is not an IP address, such as 192.0.2.10"),
                );
                sip_listen.ip()
            }
        },
    };

    // Checked ranges above keep both values within u16.
    let port = |value: Option<(i64, Field<'_>)>| {
        value
            .and_then(|(port, _)| u16::try_from(port).ok())
            .unwrap_or(0)
    };
    let address_v6 = match reader.string("media", "address_v6", false) {
        None => None,
        Some((value, field)) => match value.parse::<IpAddr>() {
            Ok(ip) if ip.is_ipv6() && !ip.is_unspecified() => Some(ip),
            _ => {
                reader.field_problem(
                    &field,
                    format!("`{value}` is not a specific IPv6 address, such as \"2001:db8::10\" or \"::1\""),
                );
                None
            }
        },
    };

    MediaConfig {
        rtp_port_min: port(min),
        rtp_port_max: port(max),
        address,
        address_v6,
    }
}

fn read_prompts(reader: &mut TomlReader<'_>, base_dir: &Path) -> PromptsConfig {
    let dir = path_value(reader, base_dir, "prompts", "dir");
    let language = match reader.string("prompts", "language", true) {
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
    PromptsConfig { dir, language }
}

fn read_customers(reader: &mut TomlReader<'_>, base_dir: &Path) -> CustomersConfig {
    let file = path_value(reader, base_dir, "customers", "file");
    let default_region = match reader.string("customers", "default_region", true) {
        Some((value, field)) => match value.to_ascii_uppercase().parse::<country::Id>() {
            Ok(id) => id,
            Err(_) => {
                reader.field_problem(
                    &field,
                    format!("`{value}` is not a region code; write an ISO 3166-1 alpha-2 code, such as \"NL\""),
                );
                country::Id::NL
            }
        },
        None => country::Id::NL,
    };
    CustomersConfig {
        file,
        default_region,
    }
}

fn read_token(reader: &mut TomlReader<'_>) -> TokenConfig {
    let issuer = non_empty_string(reader, "token", "issuer");
    let audience = non_empty_string(reader, "token", "audience");
    let minutes = reader
        .integer("token", "lifetime_minutes", 1..=MAX_TOKEN_LIFETIME_MINUTES)
        .map_or(1, |(value, _)| value.unsigned_abs());
    TokenConfig {
        issuer,
        audience,
        lifetime: Duration::from_secs(minutes * 60),
    }
}

fn read_flow(reader: &mut TomlReader<'_>) -> FlowConfig {
    let max_attempts = reader
        .integer("flow", "max_attempts", 1..=MAX_ATTEMPTS)
        .map_or(1, |(value, _)| value.unsigned_abs());
    let min_digits = reader.integer("flow", "contract_min_digits", 1..=MAX_CONTRACT_DIGITS);
    let max_digits = reader.integer("flow", "contract_max_digits", 1..=MAX_CONTRACT_DIGITS);
    if let (Some((min, _)), Some((max, field))) = (&min_digits, &max_digits) {
        if max < min {
            reader.field_problem(
                field,
                format!("is {max}, but must be at least flow.contract_min_digits ({min})"),
            );
        }
    }

    let timeout = |reader: &mut TomlReader<'_>, key: &str| {
        let ms = reader
            .integer("flow", key, MIN_DIGIT_TIMEOUT_MS..=MAX_DIGIT_TIMEOUT_MS)
            .map_or(MIN_DIGIT_TIMEOUT_MS, |(value, _)| value);
        Duration::from_millis(ms.unsigned_abs())
    };
    let first_digit_timeout = timeout(reader, "first_digit_timeout_ms");
    let inter_digit_timeout = timeout(reader, "inter_digit_timeout_ms");

    let digits = |value: Option<(i64, Field<'_>)>| {
        value.map_or(1, |(digits, _)| usize::try_from(digits).unwrap_or(1))
    };
    FlowConfig {
        max_attempts: u32::try_from(max_attempts).unwrap_or(1),
        contract_min_digits: digits(min_digits),
        contract_max_digits: digits(max_digits),
        first_digit_timeout,
        inter_digit_timeout,
    }
}

fn socket_addr(reader: &mut TomlReader<'_>, section: &str, key: &str) -> SocketAddr {
    let Some((value, field)) = reader.string(section, key, true) else {
        return PLACEHOLDER_ADDR;
    };
    match value.parse::<SocketAddr>() {
        Ok(addr) => addr,
        Err(_) => {
            reader.field_problem(
                &field,
                format!("`{value}` is not a socket address; write IP:PORT, such as \"127.0.0.1:5060\" or \"[::1]:5060\""),
            );
            PLACEHOLDER_ADDR
        }
    }
}

/// Reads a required path, resolved against the config file's folder, and
/// records its line for problems found when the file is read.
fn path_value(reader: &mut TomlReader<'_>, base_dir: &Path, section: &str, key: &str) -> PathBuf {
    let Some((value, field)) = reader.string(section, key, true) else {
        return PathBuf::new();
    };
    if value.trim().is_empty() {
        reader.field_problem(&field, "is empty; set a file or folder path");
        return PathBuf::new();
    }

    reader.locations.insert_key(&field.key, field.line);
    let path = Path::new(&value);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base_dir.join(path)
    }
}

fn non_empty_string(reader: &mut TomlReader<'_>, section: &str, key: &str) -> String {
    let Some((value, field)) = reader.string(section, key, true) else {
        return String::new();
    };
    if value.trim().is_empty() || value.chars().any(char::is_control) {
        reader.field_problem(&field, "must be non-empty text without control characters");
    }
    value
}

/// Reads a sip: or sips: URI that is sent in a SIP header.
fn sip_uri(reader: &mut TomlReader<'_>, section: &str, key: &str) -> String {
    let Some((value, field)) = reader.string(section, key, true) else {
        return String::new();
    };
    check_sip_uri(reader, &value, &field);
    value
}

/// Checks a sip: or sips: URI that is sent in a SIP header, so it must not
/// contain whitespace, control characters or angle brackets, which could end
/// the header or the URI early.
fn check_sip_uri(reader: &mut TomlReader<'_>, value: &str, field: &Field<'_>) {
    let lower = value.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("sip:")
        .or_else(|| lower.strip_prefix("sips:"));
    let clean = !value
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>' || c == '"');
    match rest {
        Some(rest) if !rest.is_empty() && clean => {}
        _ => reader.field_problem(
            field,
            format!("`{value}` must be a sip: or sips: URI without spaces or angle brackets, such as \"sip:agents@192.0.2.20\""),
        ),
    }
}

#[cfg(test)]
mod policy_tests;
#[cfg(test)]
mod tests;
