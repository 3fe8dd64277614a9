//! Shared by the integration tests: starts the real `ivr-verify` binary on
//! free loopback ports and drives it with sipp.

#![allow(dead_code)]

pub mod dtmf_pcap;
pub mod redis;
pub mod sms_server;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Customers every test can use. Contracts 12345678, 23456789 and 87654321
/// belong to C-1001, whose registered numbers are a mobile and a landline;
/// C-1002 has no mobile, so no one-time code can reach it.
pub const CUSTOMERS_CSV: &str = "\
customer_id,phones,mobile,contracts,date_of_birth,postcode,house_number,iban_last_digits
C-1001,06-12345601;020 123 4567,06-12345601,12345678;23456789;87654321,01-02-1980,1234 AB,12,4321
C-1002,+31 6 1234 5602,,34567890,1975-06-30,3511 CD,7,0417
";

/// How long a test waits for the service to answer `/healthz`.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Each service under test gets its own block of RTP ports, so tests that
/// run in parallel never share one. The highest block ends below 30,000 +
/// 40 × 24 × 20 = 49,200, within the u16 range.
const RTP_PORTS_PER_SERVICE: u16 = 20;

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

/// Lowest port handed to sipp for media; below Linux's ephemeral range
/// (32768 and up), so no socket the kernel numbers itself can take it.
const SIPP_MEDIA_PORTS_BASE: u16 = 20_000;

/// Media port blocks one test process may use before they repeat.
const SIPP_MEDIA_BLOCKS: u16 = 500;

static NEXT_SIPP_MEDIA_BLOCK: AtomicU16 = AtomicU16::new(0);

/// Returns an even port for sipp's `-mp` whose block of four (audio RTP and
/// RTCP, video RTP and RTCP, all of which sipp binds) was free a moment ago.
pub fn sipp_media_port() -> u16 {
    let process_offset = (std::process::id() % 20) as u16 * SIPP_MEDIA_BLOCKS;
    for _ in 0..SIPP_MEDIA_BLOCKS {
        let block = NEXT_SIPP_MEDIA_BLOCK.fetch_add(1, Ordering::SeqCst) % SIPP_MEDIA_BLOCKS;
        let base = SIPP_MEDIA_PORTS_BASE + (process_offset + block) * 4 % 9_000;
        let free = (base..base + 4).all(|port| UdpSocket::bind(("127.0.0.1", port)).is_ok());
        if free {
            return base;
        }
    }
    panic!("no free block of four UDP ports for sipp media");
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
        Service::start_with(customers_csv, |_| {})
    }

    /// Starts the service like [`Service::start`], after `adjust` changed the
    /// test config: a menu of request types, a Redis store, an SMS gateway.
    pub fn start_with(
        customers_csv: &str,
        adjust: impl FnOnce(&mut toml_edit::DocumentMut),
    ) -> Service {
        let dir = tempfile::tempdir().expect("temporary directory");
        let customers = dir.path().join("customers.csv");
        std::fs::write(&customers, customers_csv).expect("write customers file");

        let mut document = test_config(dir.path());
        adjust(&mut document);
        let config = dir.path().join("config.toml");
        std::fs::write(&config, document.to_string()).expect("write config file");

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
    /// Sends SIGTERM, which starts the drain.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

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

/// Builds the config of a test service from `config/default.toml`: short
/// secrets in the temporary directory, prompts from the repository, its own
/// RTP ports, an in-memory store, and a menu with one request type (basic),
/// so a call goes straight to the contract number.
fn test_config(dir: &Path) -> toml_edit::DocumentMut {
    let text = std::fs::read_to_string(repo_root().join("config/default.toml"))
        .expect("read config/default.toml");
    let mut document: toml_edit::DocumentMut = text.parse().expect("default.toml is TOML");

    let block = NEXT_RTP_BLOCK.fetch_add(1, Ordering::SeqCst) % MAX_SERVICES_PER_PROCESS;
    let process_offset = (std::process::id() % PROCESS_SLOTS) as u16
        * MAX_SERVICES_PER_PROCESS
        * RTP_PORTS_PER_SERVICE;
    let rtp_min = RTP_PORTS_BASE + process_offset + block * RTP_PORTS_PER_SERVICE;
    let rtp_max = rtp_min + RTP_PORTS_PER_SERVICE - 1;

    let path = |name: &str| dir.join(name).display().to_string();
    document["sip"]["trusted_peers"] =
        toml_edit::value(toml_edit::Array::from_iter(["127.0.0.1/32"]));
    document["media"]["rtp_port_min"] = toml_edit::value(i64::from(rtp_min));
    document["media"]["rtp_port_max"] = toml_edit::value(i64::from(rtp_max));
    document["prompts"]["dir"] =
        toml_edit::value(repo_root().join("prompts").display().to_string());
    document["customers"]["file"] = toml_edit::value("customers.csv");
    document["secrets"]["pepper_file"] = toml_edit::value(path("pepper"));
    document["secrets"]["signing_key_file"] = toml_edit::value(path("token-signing-key.p8"));
    document["token"]["issuer"] = toml_edit::value("ivr-verify-test");
    document["transfer"]["agent_queue_uri"] = toml_edit::value(TEST_AGENT_QUEUE);
    if let Some(types) = document["request_types"].as_table_like_mut() {
        for (_, request_type) in types.iter_mut() {
            if let Some(table) = request_type.as_table_like_mut() {
                table.remove("agent_queue_uri");
            }
        }
    }
    document["store"] = toml_edit::table();
    document["store"]["kind"] = toml_edit::value("memory");
    set_menu(&mut document, &["information"]);
    document
}

/// Agent queue of every test service.
pub const TEST_AGENT_QUEUE: &str = "sip:agents@127.0.0.1:5999";

/// Sets the menu of the first service line.
pub fn set_menu(document: &mut toml_edit::DocumentMut, menu: &[&str]) {
    let lines = document["service_lines"]
        .as_array_of_tables_mut()
        .expect("default.toml has [[service_lines]]");
    let line = lines.get_mut(0).expect("default.toml has a service line");
    line["menu"] = toml_edit::value(toml_edit::Array::from_iter(menu.iter().copied()));
}

/// Lowest RTP port handed to test services.
const RTP_PORTS_BASE: u16 = 30_000;

/// Test processes that can run at once without sharing RTP ports.
const PROCESS_SLOTS: u32 = 40;

/// Services one test process starts before its RTP blocks are reused.
const MAX_SERVICES_PER_PROCESS: u16 = 24;

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
            replace_digits_block(&template, &pcap)
        }
    };
    let scenario = work.path().join("scenario.xml");
    std::fs::write(&scenario, scenario_text).expect("write the sipp scenario");

    let messages = work.path().join("messages.log");
    let media_port = sipp_media_port();
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
/// generated capture.
fn replace_digits_block(template: &str, pcap: &Path) -> String {
    let begin = template
        .find("<!-- digits:begin -->")
        .expect("scenario has a digits:begin marker");
    let end = template
        .find("<!-- digits:end -->")
        .expect("scenario has a digits:end marker");

    // sipp plays a capture in the background, so the scenario goes on to
    // wait for the REFER while the digits are still being sent. A pause
    // here would turn a REFER that comes right after the last digit into
    // an unexpected message.
    let block = format!(
        "<nop><action><exec play_pcap_audio=\"{}\"/></action></nop>\n  ",
        pcap.display(),
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

/// Sends `digits` as RFC 4733 telephone-events (payload type 101) from a new
/// socket on 127.0.0.1 to `target`, paced in real time like a phone does:
/// eight updates 20 ms apart, three end packets, and a pause between keys.
pub fn send_rfc4733_digits(target: SocketAddr, digits: &str) {
    const PAYLOAD_TYPE: u8 = 101;
    const SSRC: u32 = 0x5eed_0001;
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind an RTP socket");
    let mut sequence: u16 = 1000;
    let mut timestamp: u32 = 160_000;

    for key in digits.chars() {
        let event = match key {
            '0'..='9' => key as u8 - b'0',
            '*' => 10,
            '#' => 11,
            other => panic!("no telephone-event for key {other:?}"),
        };
        for step in 0..11u16 {
            let end = step >= 8;
            let duration = 160 * (step.min(7) + 1);
            let mut packet = Vec::with_capacity(16);
            packet.push(0x80);
            packet.push(PAYLOAD_TYPE | if step == 0 { 0x80 } else { 0 });
            packet.extend_from_slice(&sequence.to_be_bytes());
            packet.extend_from_slice(&timestamp.to_be_bytes());
            packet.extend_from_slice(&SSRC.to_be_bytes());
            packet.push(event);
            packet.push(if end { 0x80 | 10 } else { 10 });
            packet.extend_from_slice(&duration.to_be_bytes());
            socket.send_to(&packet, target).expect("send RTP");
            // The three end packets share one sequence number.
            if step < 8 {
                sequence = sequence.wrapping_add(1);
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        sequence = sequence.wrapping_add(1);
        timestamp = timestamp.wrapping_add(160 * 12);
        std::thread::sleep(Duration::from_millis(80));
    }
}

/// Returns the local RTP port of the last call in a service log.
pub fn last_rtp_port(log: &str) -> Option<u16> {
    log.lines()
        .rev()
        .find_map(|line| line.split("rtp_port=").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|port| port.parse().ok())
}

/// Returns the claims of a JWT without checking its signature, for tests
/// that look at a token the API cannot introspect.
pub fn token_claims(token: &str) -> serde_json::Value {
    use base64::Engine;

    let payload = token.split('.').nth(1).expect("a JWS has a payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON claims")
}
