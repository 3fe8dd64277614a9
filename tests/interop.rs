//! Interop with real SIP clients on loopback: sipp for call set-up and
//! tear-down orders that the plain call scenario in `calls.rs` does not
//! take, and baresip as a softphone that dials in, types digits and records
//! what it hears. Each test starts its own service on free ports.

mod support;

#[path = "torture/harness.rs"]
mod harness;

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use harness::run_in_network_namespace;
use support::{embedded_header, free_udp_port, introspect, repo_root, Service};

/// How long baresip may take to establish the call and to be transferred.
const BARESIP_TIMEOUT: Duration = Duration::from_secs(45);

/// RMS amplitude (full scale 1.0) above which a recording counts as sound.
/// The Dutch prompts measure about 0.06 with `sox stat`, and digital silence
/// after G.711 decoding is below 0.001.
const MIN_PROMPT_RMS: f64 = 0.01;

/// Runs one call of the sipp scenario `tests/sipp/NAME` against `service`
/// and returns sipp's output when the scenario fails.
fn run_scenario(service: &Service, name: &str) -> Result<(), String> {
    run_scenario_with(service, name, &[]).map(|_| ())
}

/// Runs one call of `tests/sipp/NAME` with extra sipp arguments and returns
/// the messages sipp sent and received, or sipp's output when the scenario
/// fails.
fn run_scenario_with(service: &Service, name: &str, extra: &[&str]) -> Result<String, String> {
    let work = tempfile::tempdir().expect("temporary directory for sipp");
    let scenario = repo_root().join("tests/sipp").join(name);
    run_sipp(service, &scenario, work.path(), extra)
}

fn run_sipp(
    service: &Service,
    scenario: &Path,
    work: &Path,
    extra: &[&str],
) -> Result<String, String> {
    let media_port = support::sipp_media_port();
    let output = Command::new("sipp")
        .current_dir(work)
        .arg("-sf")
        .arg(scenario)
        .args(extra)
        .args(["-m", "1", "-i", "127.0.0.1", "-nostdin"])
        .args(["-p", &free_udp_port().to_string()])
        .args(["-mp", &media_port.to_string()])
        .args(["-s", "0881234567"])
        .args(["-timeout", "60s", "-timeout_error"])
        .arg("-trace_msg")
        .arg("-message_file")
        .arg(work.join("messages.log"))
        .arg(service.sip.to_string())
        .output()
        .expect("run sipp (Debian package sip-tester)");
    let messages = std::fs::read_to_string(work.join("messages.log")).unwrap_or_default();
    if output.status.success() {
        return Ok(messages);
    }
    Err(format!(
        "{}\n{}\n--- messages ---\n{}\n--- service log ---\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        messages,
        service.log()
    ))
}

#[test]
fn bye_before_ack_ends_call() {
    let service = Service::start(support::CUSTOMERS_CSV);

    let result = run_scenario(&service, "bye_before_ack.xml");

    assert!(result.is_ok(), "sipp: {}", result.unwrap_err());
    let log = service.log();
    assert!(
        log.contains("ByeReceived"),
        "the service ended the call on the BYE:\n{log}"
    );
}

/// A running baresip 1.0 with its own config folder, driven over its `cons`
/// module (UDP on loopback), which reads key presses like a keyboard.
struct Baresip {
    /// The baresip process; killed on drop if it did not quit.
    child: Child,
    /// Config, accounts, SIP trace and recordings.
    dir: tempfile::TempDir,
    /// Where the `cons` module listens for key presses.
    console: std::net::SocketAddr,
}

impl Baresip {
    /// Starts baresip and dials `target`.
    ///
    /// baresip binds SIP and RTP to 127.0.0.1 (`-n`), sends and receives
    /// G.711 through the `aubridge` device, which needs no sound card, and
    /// the `sndfile` filter writes what it receives to `dump-*-dec.wav`.
    fn dial(target: &str) -> Baresip {
        let dir = tempfile::tempdir().expect("temporary directory for baresip");
        let console = format!("127.0.0.1:{}", free_udp_port())
            .parse()
            .expect("console address");
        let rtp_min = free_udp_port() & !1;
        let config = format!(
            "poll_method poll\n\
             sip_listen 127.0.0.1:{sip}\n\
             audio_player aubridge,bridge\n\
             audio_source aubridge,bridge\n\
             audio_alert aubridge,bridge\n\
             rtp_ports {rtp_min}-{rtp_max}\n\
             module_path /usr/lib/baresip/modules\n\
             module g711.so\n\
             module aubridge.so\n\
             module sndfile.so\n\
             module_app account.so\n\
             module_app menu.so\n\
             module_app cons.so\n\
             cons_listen {console}\n\
             snd_path {recordings}\n",
            sip = free_udp_port(),
            rtp_max = rtp_min.saturating_add(9),
            recordings = dir.path().display(),
        );
        std::fs::write(dir.path().join("config"), config).expect("write the baresip config");
        std::fs::write(
            dir.path().join("accounts"),
            "<sip:0612345601@127.0.0.1>;regint=0\n",
        )
        .expect("write the baresip accounts");

        let trace = std::fs::File::create(dir.path().join("trace.log")).expect("create the trace");
        let child = Command::new("baresip")
            .args(["-n", "127.0.0.1", "-s", "-f"])
            .arg(dir.path())
            .arg("-e")
            .arg(format!("/dial {target}"))
            .stdin(Stdio::null())
            .stdout(trace.try_clone().expect("trace file handle"))
            .stderr(trace)
            .spawn()
            .expect("run baresip (Debian package baresip)");
        Baresip {
            child,
            dir,
            console,
        }
    }

    /// Returns what baresip printed so far, SIP trace included.
    fn trace(&self) -> String {
        std::fs::read(self.dir.path().join("trace.log"))
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    /// Waits until the trace contains `text`; returns false after `timeout`.
    fn wait_for(&self, text: &str, timeout: Duration) -> bool {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if self.trace().contains(text) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// Presses keys on the console, 300 ms apart. In a call, the menu sends
    /// each digit as RFC 4733 telephone-events.
    fn press(&self, keys: &str) {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP port for the console");
        for key in keys.chars() {
            socket
                .send_to(key.to_string().as_bytes(), self.console)
                .expect("send a key press to baresip");
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// Quits with `q`, so that the recording is closed properly, and waits
    /// up to ten seconds before killing the process.
    fn quit(&mut self) {
        self.press("q");
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Returns the recording of the audio baresip received.
    fn received_audio(&self) -> Option<PathBuf> {
        std::fs::read_dir(self.dir.path())
            .ok()?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .find(|path| path.to_string_lossy().ends_with("-dec.wav"))
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Returns the RMS amplitude that `sox FILE -n stat` reports.
fn rms_amplitude(wav: &Path) -> f64 {
    let output = Command::new("sox")
        .arg(wav)
        .args(["-n", "stat"])
        .output()
        .expect("run sox (Debian package sox)");
    let report = String::from_utf8_lossy(&output.stderr);
    report
        .lines()
        .find_map(|line| line.strip_prefix("RMS     amplitude:"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("sox stat printed no RMS amplitude:\n{report}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn baresip_hears_prompts_and_transfers() {
    if !run_in_network_namespace("baresip_hears_prompts_and_transfers") {
        return;
    }
    let service = Service::start(support::CUSTOMERS_CSV);
    let mut phone = Baresip::dial(&format!("sip:0881234567@{}", service.sip));

    let established = phone.wait_for("Call established", BARESIP_TIMEOUT);
    assert!(
        established,
        "baresip did not connect:\n{}\n--- service log ---\n{}",
        phone.trace(),
        service.log()
    );

    // Let the welcome play for a while, then type over it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    tokio::task::block_in_place(|| phone.press("12345678#"));
    let referred = tokio::task::block_in_place(|| phone.wait_for("Refer-To:", BARESIP_TIMEOUT));
    assert!(
        referred,
        "no REFER reached baresip:\n{}\n--- service log ---\n{}",
        phone.trace(),
        service.log()
    );
    tokio::task::block_in_place(|| phone.quit());

    let trace = phone.trace();
    let refer_to = support::refer_to(&trace).expect("the REFER carries Refer-To");
    let token =
        embedded_header(&refer_to, "X-Verification-Token").expect("Refer-To embeds the token");
    let claims = introspect(&service, &token).await;
    assert_eq!(claims["active"], true, "{claims}");
    assert_eq!(
        claims["acr"], "basic",
        "the RFC 4733 digits verified the caller: {claims}"
    );
    assert_eq!(claims["sub"], "C-1001", "{claims}");

    let recording = phone
        .received_audio()
        .expect("sndfile wrote the received audio");
    let rms = rms_amplitude(&recording);
    assert!(
        rms > MIN_PROMPT_RMS,
        "the received audio is silence: RMS {rms} in {}",
        recording.display()
    );
}

/// Places a call with `scenario`, which types 12345678# with sipp's own
/// captures, and checks that the token in the REFER verifies caller C-1001.
async fn assert_call_verified(service: &Service, scenario: &str, extra: &[&str]) {
    let mut arguments = vec!["-set", "caller", "0612345601"];
    arguments.extend_from_slice(extra);
    let run = tokio::task::block_in_place(|| run_scenario_with(service, scenario, &arguments));
    let messages = match run {
        Ok(messages) => messages,
        Err(output) => panic!("sipp {scenario} failed:\n{output}"),
    };

    let refer_to = support::refer_to(&messages).expect("the REFER carries Refer-To");
    let token =
        embedded_header(&refer_to, "X-Verification-Token").expect("Refer-To embeds the token");
    let claims = introspect(service, &token).await;
    assert_eq!(claims["active"], true, "{claims}");
    assert_eq!(claims["acr"], "basic", "{claims}");
    assert_eq!(claims["sub"], "C-1001", "{claims}");
}

#[tokio::test(flavor = "multi_thread")]
async fn hold_and_resume_still_verified() {
    let service = Service::start(support::CUSTOMERS_CSV);

    assert_call_verified(&service, "hold_resume.xml", &[]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn info_digits_verify_caller() {
    let service = Service::start(support::CUSTOMERS_CSV);

    assert_call_verified(&service, "info_digits.xml", &[]).await;
}

/// An INVITE with an SDP offer from `$VIA`, for the raw-socket tests.
const INVITE: &str = "INVITE sip:0881234567@$SERVICE SIP/2.0\r\n\
Via: SIP/2.0/UDP $VIA;branch=$BRANCH;rport\r\n\
Max-Forwards: 70\r\n\
From: <sip:0612345601@127.0.0.1>;tag=cancelling\r\n\
To: <sip:0881234567@$SERVICE>\r\n\
Call-ID: $CALLID\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:caller@$VIA>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 148\r\n\r\n\
v=0\r\n\
o=- 1 1 IN IP4 127.0.0.1\r\n\
s=-\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
m=audio 6000 RTP/AVP 8 101\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n";

/// Returns the status and CSeq method of each response among `datagrams`.
fn statuses_and_methods(datagrams: &[Vec<u8>]) -> Vec<(u16, String)> {
    datagrams
        .iter()
        .filter_map(|datagram| {
            let status = harness::status_of(datagram)?;
            let text = String::from_utf8_lossy(datagram);
            let method = text
                .lines()
                .find_map(|line| line.strip_prefix("CSeq:"))
                .and_then(|value| value.split_whitespace().nth(1))
                .unwrap_or_default()
                .to_owned();
            Some((status, method))
        })
        .collect()
}

/// Sends INVITE and CANCEL back to back and expects 487 for the INVITE.
/// The service answers after `sip.answer_delay_ms`, so the CANCEL arrives
/// before the 200 OK (RFC 3261 section 9.2). sipp cannot send the two
/// without reading the 100 Trying in between, so the test sends them itself.
#[test]
fn cancel_before_answer_gets_487() {
    let service = Service::start_with(support::CUSTOMERS_CSV, |config| {
        config["sip"]["answer_delay_ms"] = toml_edit::value(1500);
    });
    let mut sender = harness::SipSender::new(service.sip);

    let invite = sender.fill(INVITE.as_bytes());
    let text = String::from_utf8_lossy(&invite).into_owned();
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    let cancel = head
        .replacen("INVITE ", "CANCEL ", 1)
        .replace("CSeq: 1 INVITE", "CSeq: 1 CANCEL")
        .replace("Content-Type: application/sdp\r\n", "")
        .replace("Content-Length: 148", "Content-Length: 0")
        + "\r\n\r\n";
    sender.send(&invite);
    sender.send(cancel.as_bytes());

    let replies = statuses_and_methods(&sender.receive_for(Duration::from_secs(2)));
    assert!(
        replies.contains(&(200, "CANCEL".to_owned())),
        "the CANCEL got 200: {replies:?}"
    );
    assert!(
        replies.contains(&(487, "INVITE".to_owned())),
        "the INVITE got 487: {replies:?}\n{}",
        service.log()
    );
    assert!(
        !replies.contains(&(200, "INVITE".to_owned())),
        "the INVITE was answered 200 after all: {replies:?}"
    );

    let ack = head
        .replacen("INVITE ", "ACK ", 1)
        .replace("CSeq: 1 INVITE", "CSeq: 1 ACK")
        .replace("Content-Type: application/sdp\r\n", "")
        .replace("Content-Length: 148", "Content-Length: 0")
        + "\r\n\r\n";
    sender.send(ack.as_bytes());
    let after_ack = sender.receive_for(Duration::from_secs(1));
    assert!(
        statuses_and_methods(&after_ack).is_empty(),
        "the 487 was retransmitted after the ACK: {:?}",
        statuses_and_methods(&after_ack)
    );
    assert_eq!(
        sender.options(),
        Some(200),
        "OPTIONS after the cancelled call"
    );
}

/// The same with sipp: it reads the 100 Trying, sends CANCEL, and expects
/// 200 for it and 487 for the INVITE.
#[test]
fn sipp_cancel_before_answer() {
    let service = Service::start_with(support::CUSTOMERS_CSV, |config| {
        config["sip"]["answer_delay_ms"] = toml_edit::value(1500);
    });

    let outcome = run_scenario(&service, "cancel.xml");

    assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
    assert!(
        !service.log().contains("call state changed"),
        "the cancelled call never reached the flow:\n{}",
        service.log()
    );
}

/// Requests the service must refuse without starting a call: methods it does
/// not serve, requests inside dialogs that do not exist, and an INVITE that
/// requires an extension it lacks.
const UNAUTHORISED_REQUESTS: &[&str] = &[
    "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP $VIA;branch=$BRANCH;rport\r\nMax-Forwards: 70\r\nFrom: <sip:intruder@127.0.0.1>;tag=b1\r\nTo: <sip:intruder@127.0.0.1>\r\nCall-ID: $CALLID\r\nCSeq: 1 REGISTER\r\nContact: <sip:intruder@$VIA>\r\nContent-Length: 0\r\n\r\n",
    "BYE sip:ivr@$SERVICE SIP/2.0\r\nVia: SIP/2.0/UDP $VIA;branch=$BRANCH;rport\r\nMax-Forwards: 70\r\nFrom: <sip:intruder@127.0.0.1>;tag=b2\r\nTo: <sip:ivr@$SERVICE>;tag=guessed\r\nCall-ID: $CALLID\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
    "REFER sip:ivr@$SERVICE SIP/2.0\r\nVia: SIP/2.0/UDP $VIA;branch=$BRANCH;rport\r\nMax-Forwards: 70\r\nFrom: <sip:intruder@127.0.0.1>;tag=b3\r\nTo: <sip:ivr@$SERVICE>;tag=guessed\r\nCall-ID: $CALLID\r\nCSeq: 2 REFER\r\nRefer-To: <sip:premium@192.0.2.1>\r\nContent-Length: 0\r\n\r\n",
    "INVITE sip:ivr@$SERVICE SIP/2.0\r\nVia: SIP/2.0/UDP $VIA;branch=$BRANCH;rport\r\nMax-Forwards: 70\r\nFrom: <sip:intruder@127.0.0.1>;tag=b4\r\nTo: <sip:ivr@$SERVICE>\r\nCall-ID: $CALLID\r\nCSeq: 1 INVITE\r\nRequire: no-such-extension\r\nContact: <sip:intruder@$VIA>\r\nContent-Length: 0\r\n\r\n",
    "MESSAGE sip:ivr@$SERVICE SIP/2.0\r\nVia: SIP/2.0/UDP $VIA;branch=$BRANCH;rport\r\nMax-Forwards: 70\r\nFrom: <sip:intruder@127.0.0.1>;tag=b5\r\nTo: <sip:ivr@$SERVICE>\r\nCall-ID: $CALLID\r\nCSeq: 1 MESSAGE\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
];

/// Malformed messages mixed into the burst.
const MALFORMED_MESSAGES: &[&str] = &[
    "OPTIONS sip:ivr@$SERVICE SIP/2.0\r\nVia: SIP/2.0/UDP $VIA;branch=$BRANCH;rport\r\nCSeq: 99999999999 OPTIONS\r\nCall-ID: $CALLID\r\nContent-Length: 0\r\n\r\n",
    "INVITE  sip:ivr@$SERVICE  SIP/2.0\r\nVia: SIP/2.0/UDP $VIA;branch=$BRANCH;rport\r\n\r\n",
    "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP $VIA;branch=$BRANCH\r\nCall-ID: $CALLID\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
    "\u{0}\u{1}\u{2}garbage\r\n\r\n",
];

/// Messages in the burst: a few hundred, sent 10 ms apart, so the burst
/// lasts about as long as the three calls.
const BURST_MESSAGES: usize = 400;

/// Pause between two burst messages.
const BURST_INTERVAL: Duration = Duration::from_millis(10);

/// Sends refused and malformed messages while three real calls run; every
/// call must still be verified and transferred.
#[tokio::test(flavor = "multi_thread")]
async fn burst_alongside_three_calls() {
    if !run_in_network_namespace("burst_alongside_three_calls") {
        return;
    }
    let service = Service::start(support::CUSTOMERS_CSV);

    let burst = {
        let mut sender = harness::SipSender::new(service.sip);
        std::thread::spawn(move || {
            let templates: Vec<&str> = UNAUTHORISED_REQUESTS
                .iter()
                .chain(MALFORMED_MESSAGES)
                .copied()
                .collect();
            for index in 0..BURST_MESSAGES {
                let template = templates[index % templates.len()];
                let message = sender.fill(template.as_bytes());
                sender.send(&message);
                std::thread::sleep(BURST_INTERVAL);
            }
            let replies = statuses_and_methods(&sender.receive_for(Duration::from_secs(1)));
            (sender, replies)
        })
    };

    let callers = ["0612345601", "0612345602", "0301234567"];
    let keypads = ["12345678#", "23456789#", "87654321#"];
    let runs: Vec<_> = tokio::task::block_in_place(|| {
        std::thread::scope(|scope| {
            let handles: Vec<_> = callers
                .iter()
                .zip(keypads)
                .map(|(caller, digits)| {
                    let service = &service;
                    scope.spawn(move || {
                        support::call_with_sipp(service, caller, support::Keypad::Generated(digits))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|handle| handle.join().expect("sipp thread"))
                .collect()
        })
    });

    let (mut sender, burst_replies) = burst.join().expect("burst thread");
    assert!(
        burst_replies
            .iter()
            .any(|(status, _)| (400..500).contains(status)),
        "the service refused none of the burst: {burst_replies:?}"
    );
    let accepted: Vec<_> = burst_replies
        .iter()
        .filter(|(status, _)| (200..300).contains(status))
        .collect();
    assert!(
        accepted.is_empty(),
        "burst messages answered 2xx: {accepted:?}"
    );

    for (run, caller) in runs.iter().zip(callers) {
        assert!(
            run.succeeded,
            "call from {caller} failed during the burst\n{}\n--- service log ---\n{}",
            run.output,
            service.log()
        );
        let refer_to = support::refer_to(&run.messages).expect("the REFER carries Refer-To");
        let token =
            embedded_header(&refer_to, "X-Verification-Token").expect("Refer-To embeds the token");
        let claims = introspect(&service, &token).await;
        assert_eq!(claims["active"], true, "{caller}: {claims}");
        assert_eq!(claims["acr"], "basic", "{caller}: {claims}");
    }
    assert_eq!(sender.options(), Some(200), "OPTIONS after the burst");
}

/// Starts a second service process on the test service's config with a SIP
/// TCP listener, and returns it with its TCP and HTTP addresses.
fn start_with_tcp(service: &Service) -> (Child, std::net::SocketAddr, std::net::SocketAddr) {
    let tcp: std::net::SocketAddr = format!("127.0.0.1:{}", support::free_tcp_port())
        .parse()
        .expect("TCP address");
    let http: std::net::SocketAddr = format!("127.0.0.1:{}", support::free_tcp_port())
        .parse()
        .expect("HTTP address");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ivr-verify"))
        .arg("serve")
        .arg("--config")
        .arg(service.dir.path().join("config.toml"))
        .arg("--customers")
        .arg(service.dir.path().join("customers.csv"))
        .args(["--sip-listen", &format!("127.0.0.1:{}", free_udp_port())])
        .args(["--sip-listen-tcp", &tcp.to_string()])
        .args(["--http-listen", &http.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ivr-verify with a TCP listener");

    let started = Instant::now();
    while std::net::TcpStream::connect(http).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("ivr-verify with --sip-listen-tcp exited with {status}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "ivr-verify with --sip-listen-tcp did not open {http}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, tcp, http)
}

/// Places the plain verification call over TCP (sipp `-t t1`) and checks
/// the token in the REFER.
#[tokio::test(flavor = "multi_thread")]
async fn tcp_call_verified() {
    // The scenario's own captures press 1 in the menu, then 23456789#.
    let service = Service::start_with(support::CUSTOMERS_CSV, |config| {
        support::set_menu(
            config,
            &["information", "contract_change", "financial_change"],
        )
    });
    let (mut child, tcp, http) = start_with_tcp(&service);

    let work = tempfile::tempdir().expect("temporary directory for sipp");
    let messages = work.path().join("messages.log");
    let media_port = support::sipp_media_port();
    let output = tokio::task::block_in_place(|| {
        Command::new("sipp")
            .current_dir(work.path())
            .arg("-sf")
            .arg(repo_root().join("tests/sipp/verify_caller.xml"))
            .args(["-t", "t1", "-m", "1", "-i", "127.0.0.1", "-nostdin"])
            .args(["-p", &support::free_tcp_port().to_string()])
            .args(["-mp", &media_port.to_string()])
            .args(["-set", "caller", "0612345601", "-s", "0881234567"])
            .args(["-timeout", "60s", "-timeout_error", "-trace_msg"])
            .arg("-message_file")
            .arg(&messages)
            .arg(tcp.to_string())
            .output()
            .expect("run sipp (Debian package sip-tester)")
    });

    let messages = std::fs::read_to_string(&messages).unwrap_or_default();
    assert!(
        output.status.success(),
        "sipp over TCP failed:\n{}\n{messages}",
        String::from_utf8_lossy(&output.stdout)
    );
    let refer_to = support::refer_to(&messages).expect("the REFER carries Refer-To");
    let token =
        embedded_header(&refer_to, "X-Verification-Token").expect("Refer-To embeds the token");
    let claims: serde_json::Value = reqwest::Client::new()
        .post(format!("http://{http}/v1/tokens/introspect"))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .expect("introspection request")
        .json()
        .await
        .expect("introspection answer is JSON");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(claims["active"], true, "{claims}");
    assert_eq!(claims["acr"], "basic", "{claims}");
    assert_eq!(claims["sub"], "C-1001", "{claims}");
}

/// An offer with an IPv6 connection line, over SIP on IPv6, is answered
/// with IPv6 media from `media.address_v6`.
#[test]
fn ipv6_offer_answered_over_ipv6() {
    let sip_v6: std::net::SocketAddr = format!("[::1]:{}", free_udp_port())
        .parse()
        .expect("IPv6 SIP address");
    let service = Service::start_with(support::CUSTOMERS_CSV, |config| {
        config["sip"]["listen_udp_extra"] =
            toml_edit::value(toml_edit::Array::from_iter([sip_v6.to_string()]));
        config["sip"]["trusted_peers"] =
            toml_edit::value(toml_edit::Array::from_iter(["127.0.0.1/32", "::1/128"]));
        config["media"]["address_v6"] = toml_edit::value("::1");
    });
    let socket = std::net::UdpSocket::bind("[::1]:0").expect("bind an IPv6 socket");
    socket
        .set_read_timeout(Some(Duration::from_secs(3)))
        .expect("read timeout");
    let local = socket.local_addr().expect("local address");

    let body = "v=0\r\no=caller 1 1 IN IP6 ::1\r\ns=-\r\nc=IN IP6 ::1\r\nt=0 0\r\nm=audio 40002 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n";
    let invite = format!(
        "INVITE sip:0881234567@{sip_v6} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKv6test1;rport\r\nMax-Forwards: 70\r\nFrom: <sip:0612345601@[::1]>;tag=v6caller\r\nTo: <sip:0881234567@{sip_v6}>\r\nCall-ID: ipv6-offer@test\r\nCSeq: 1 INVITE\r\nContact: <sip:caller@{local}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    socket
        .send_to(invite.as_bytes(), sip_v6)
        .expect("send INVITE");

    let mut buffer = [0u8; 65_535];
    let started = Instant::now();
    let answer = loop {
        let (length, _) = socket
            .recv_from(&mut buffer)
            .expect("a reply to the INVITE");
        let reply = String::from_utf8_lossy(&buffer[..length]).into_owned();
        if reply.starts_with("SIP/2.0 200") {
            break reply;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no 200 OK; last reply:\n{reply}"
        );
    };

    assert!(
        answer.contains("c=IN IP6 ::1"),
        "IPv6 media in the answer:\n{answer}\n--- service log ---\n{}",
        service.log()
    );
    assert!(
        !answer.contains("IN IP4"),
        "no IPv4 address in the answer:\n{answer}"
    );
}

/// Returns the HTTP status of `GET path` on `address`, or `None` when
/// nothing listens there.
fn http_status(address: std::net::SocketAddr, path: &str) -> Option<u16> {
    use std::io::{Read, Write};

    let mut stream = std::net::TcpStream::connect(address).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("read timeout");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.split_whitespace().nth(1)?.parse().ok()
}

/// SIGTERM with a call up: a new INVITE gets 503, and the HTTP API keeps
/// serving requests while the call drains, so that agents can introspect
/// the tokens of calls transferred then. The service exits once the call
/// has ended.
#[test]
fn drain_keeps_api_until_calls_end() {
    let mut service = Service::start(support::CUSTOMERS_CSV);
    let mut sender = harness::SipSender::new(service.sip);
    let invite = sender.fill(INVITE.as_bytes());
    sender.send(&invite);
    let answer = sender
        .receive_for(Duration::from_secs(2))
        .into_iter()
        .find(|datagram| harness::status_of(datagram) == Some(200))
        .expect("200 OK for the INVITE");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let to = answer
        .lines()
        .find_map(|line| line.strip_prefix("To:"))
        .expect("To header")
        .trim()
        .to_owned();
    let head = String::from_utf8_lossy(&invite)
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .to_owned();
    let in_dialog = |method: &str, cseq: u32| {
        let original_to = head
            .lines()
            .find(|line| line.starts_with("To:"))
            .unwrap_or_default()
            .to_owned();
        head.replacen("INVITE ", &format!("{method} "), 1)
            .replace(&original_to, &format!("To: {to}"))
            .replace("CSeq: 1 INVITE", &format!("CSeq: {cseq} {method}"))
            .replace(";branch=", &format!(";branch={method}"))
            .replace("Content-Type: application/sdp\r\n", "")
            .replace("Content-Length: 148", "Content-Length: 0")
            + "\r\n\r\n"
    };
    sender.send(in_dialog("ACK", 1).as_bytes());

    service.terminate();
    std::thread::sleep(Duration::from_millis(500));

    let second = sender.fill(INVITE.as_bytes());
    sender.send(&second);
    let replies = statuses_and_methods(&sender.receive_for(Duration::from_secs(1)));
    assert!(
        replies.contains(&(503, "INVITE".to_owned())),
        "a new call is refused while draining: {replies:?}"
    );
    assert!(service.is_running(), "the call keeps the service up");
    assert_eq!(
        http_status(service.http, "/healthz"),
        Some(200),
        "the HTTP API answers during the drain\n{}",
        service.log()
    );

    sender.send(in_dialog("BYE", 2).as_bytes());
    let replies = statuses_and_methods(&sender.receive_for(Duration::from_secs(1)));
    assert!(
        replies.contains(&(200, "BYE".to_owned())),
        "the BYE is answered: {replies:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while service.is_running() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !service.is_running(),
        "the service exits after the last call"
    );
    assert_eq!(http_status(service.http, "/healthz"), None);
}
