//! Shared by the integration tests: starts the real `ivr-verify` binary on
//! free loopback ports and drives it with sipp.

#![allow(dead_code)]

pub mod dtmf_pcap;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Customers every test can use. Contract 12345678 belongs to C-1001, whose
/// registered numbers are a mobile and a landline.
pub const CUSTOMERS_CSV: &str = "\
customer_id,phones,mobile,contracts
C-1001,06-12345601;020 123 4567,06-12345601,12345678;87654321
C-1002,+31 6 1234 5602,+31612345602,23456789
";

/// How long a test waits for the service to answer `/healthz`.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Each service under test gets its own block of RTP ports, so tests that
/// run in parallel never share one.
const RTP_PORTS_PER_SERVICE: u16 = 20;

/// Upper bound of how long one generated key press lasts in the capture,
/// tone and gap together.
const MILLISECONDS_PER_GENERATED_DIGIT: usize = 300;

static NEXT_RTP_BLOCK: AtomicU16 = AtomicU16::new(0);

/// The repository root, where `prompts/` and `tests/sipp/` live.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Returns a UDP port on 127.0.0.1 that was free a moment ago.
pub fn free_udp_port() -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind an ephemeral UDP port");
    socket.local_addr().expect("local address").port()
}

/// Returns a TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_tcp_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral TCP port");
    listener.local_addr().expect("local address").port()
}

/// A running `ivr-verify serve` with its own config, secrets and customers.
pub struct Service {
    /// The child process; killed on drop.
    child: Child,
    /// Where it listens for SIP over UDP.
    pub sip: SocketAddr,
    /// Where its HTTP API listens.
    pub http: SocketAddr,
    /// Holds the config, customers file, key and pepper.
    pub dir: TempDir,
    /// Everything the service wrote to standard error so far.
    log: Arc<Mutex<String>>,
}

impl Service {
    /// Starts the service with `customers_csv` and waits until its HTTP API
    /// answers.
    pub fn start(customers_csv: &str) -> Service {
        let dir = tempfile::tempdir().expect("temporary directory");
        let customers = dir.path().join("customers.csv");
        std::fs::write(&customers, customers_csv).expect("write customers file");

        let config = dir.path().join("config.toml");
        std::fs::write(&config, test_config(dir.path())).expect("write config file");

        let sip: SocketAddr = format!("127.0.0.1:{}", free_udp_port()).parse().unwrap();
        let http: SocketAddr = format!("127.0.0.1:{}", free_tcp_port()).parse().unwrap();

        let mut child = Command::new(env!("CARGO_BIN_EXE_ivr-verify"))
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .arg("--sip-listen")
            .arg(sip.to_string())
            .arg("--http-listen")
            .arg(http.to_string())
            .arg("--customers")
            .arg(&customers)
            .env("RUST_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ivr-verify");

        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("piped stderr");
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });

        let service = Service {
            child,
            sip,
            http,
            dir,
            log,
        };
        service.wait_until_ready();
        service
    }

    fn wait_until_ready(&self) {
        let started = Instant::now();
        while started.elapsed() < START_TIMEOUT {
            if TcpStream::connect(self.http).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "ivr-verify did not listen on {} within {:?}; its log:\n{}",
            self.http,
            START_TIMEOUT,
            self.log()
        );
    }

    /// Returns what the service logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Returns the base URL of the HTTP API.
    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{}", self.http, path)
    }

    /// Returns whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes a config for a test service: short timeouts, secrets in the
/// temporary directory, prompts from the repository, and its own RTP ports.
fn test_config(dir: &Path) -> String {
    let block = NEXT_RTP_BLOCK.fetch_add(1, Ordering::SeqCst);
    let process_offset = (std::process::id() % 100) as u16 * 400;
    let rtp_min = 30_000 + process_offset + block * RTP_PORTS_PER_SERVICE;
    let rtp_max = rtp_min + RTP_PORTS_PER_SERVICE - 1;

    format!(
        r#"
[sip]
listen = "127.0.0.1:5060"
trusted_peers = ["127.0.0.1/32"]

[http]
listen = "127.0.0.1:8080"

[media]
rtp_port_min = {rtp_min}
rtp_port_max = {rtp_max}

[prompts]
dir = "{prompts}"
language = "nl"

[customers]
file = "customers.csv"
default_region = "NL"

[secrets]
pepper_file = "{dir}/pepper"
signing_key_file = "{dir}/token-signing-key.p8"

[token]
issuer = "ivr-verify-test"
audience = "agent-desktop"
lifetime_minutes = 10

[transfer]
agent_queue_uri = "sip:agents@127.0.0.1:5999"
referred_by = "sip:ivr-verify@127.0.0.1"

[flow]
max_attempts = 3
contract_min_digits = 6
contract_max_digits = 12
first_digit_timeout_ms = 8000
inter_digit_timeout_ms = 4000
"#,
        prompts = repo_root().join("prompts").display(),
        dir = dir.display(),
    )
}

/// What a sipp run left behind.
pub struct SippRun {
    /// Whether sipp exited 0 (every call passed its scenario).
    pub succeeded: bool,
    /// sipp's standard output and error, for failure messages.
    pub output: String,
    /// Every SIP message sipp sent and received.
    pub messages: String,
}

/// How the caller types digits in a sipp scenario.
pub enum Keypad<'a> {
    /// The scenario's own block: sipp's shipped captures of 12345678#.
    ShippedCaptures,
    /// A capture generated for these digits, typed without pauses.
    Generated(&'a str),
}

/// Runs one call of `tests/sipp/verify_caller.xml` against `service` from
/// the calling number `caller`.
pub fn call_with_sipp(service: &Service, caller: &str, keypad: Keypad<'_>) -> SippRun {
    let work = tempfile::tempdir().expect("temporary directory for sipp");
    let template = std::fs::read_to_string(repo_root().join("tests/sipp/verify_caller.xml"))
        .expect("read the sipp scenario");

    let scenario_text = match keypad {
        Keypad::ShippedCaptures => template,
        Keypad::Generated(digits) => {
            let pcap = work.path().join("digits.pcap");
            dtmf_pcap::write_rfc4733_pcap(&pcap, digits, 101).expect("write the digits capture");
            replace_digits_block(&template, &pcap, digits)
        }
    };
    let scenario = work.path().join("scenario.xml");
    std::fs::write(&scenario, scenario_text).expect("write the sipp scenario");

    let messages = work.path().join("messages.log");
    let media_port = free_udp_port() & !1;
    let output = Command::new("sipp")
        .current_dir(work.path())
        .arg("-sf")
        .arg(&scenario)
        .args(["-m", "1", "-i", "127.0.0.1", "-nostdin"])
        .args(["-p", &free_udp_port().to_string()])
        .args(["-mp", &media_port.to_string()])
        .args(["-set", "caller", caller])
        .args(["-s", "0881234567"])
        .args(["-timeout", "90s", "-timeout_error"])
        .arg("-trace_msg")
        .arg("-message_file")
        .arg(&messages)
        .arg(service.sip.to_string())
        .output()
        .expect("run sipp (Debian package sip-tester)");

    SippRun {
        succeeded: output.status.success(),
        output: format!(
            "{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
        messages: std::fs::read_to_string(&messages).unwrap_or_default(),
    }
}

/// Replaces the scenario's shipped-capture block with one play of a
/// generated capture, long enough pauses included.
fn replace_digits_block(template: &str, pcap: &Path, digits: &str) -> String {
    let begin = template
        .find("<!-- digits:begin -->")
        .expect("scenario has a digits:begin marker");
    let end = template
        .find("<!-- digits:end -->")
        .expect("scenario has a digits:end marker");

    // sipp plays a capture in the background; wait until it is through.
    let milliseconds = digits.len() * MILLISECONDS_PER_GENERATED_DIGIT + 500;
    let block = format!(
        "<nop><action><exec play_pcap_audio=\"{}\"/></action></nop>\n  <pause milliseconds=\"{}\"/>\n  ",
        pcap.display(),
        milliseconds,
    );
    format!("{}{}{}", &template[..begin], block, &template[end..])
}

/// Returns the Refer-To value of the REFER in a sipp message log.
pub fn refer_to(messages: &str) -> Option<String> {
    messages
        .lines()
        .find_map(|line| line.trim().strip_prefix("Refer-To:"))
        .map(|value| value.trim().to_owned())
}

/// Returns the value of an embedded header in a Refer-To URI, with its
/// %-escapes decoded.
pub fn embedded_header(refer_to: &str, name: &str) -> Option<String> {
    let uri = refer_to
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>');
    let (_, headers) = uri.split_once('?')?;
    headers.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        key.eq_ignore_ascii_case(name)
            .then(|| percent_decode(value))
    })
}

fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' && index + 2 < bytes.len() {
            if let Ok(byte) = u8::from_str_radix(&value[index + 1..index + 3], 16) {
                decoded.push(byte);
                index += 3;
                continue;
            }
        }
        decoded.push(bytes[index]);
        index += 1;
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

/// Posts the token to the introspection endpoint and returns the JSON.
pub async fn introspect(service: &Service, token: &str) -> serde_json::Value {
    reqwest::Client::new()
        .post(service.http_url("/v1/tokens/introspect"))
        .form(&[("token", token)])
        .send()
        .await
        .expect("introspection request")
        .json()
        .await
        .expect("introspection answer is JSON")
}
