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
    let work = tempfile::tempdir().expect("temporary directory for sipp");
    let scenario = repo_root().join("tests/sipp").join(name);
    run_sipp(service, &scenario, work.path())
}

fn run_sipp(service: &Service, scenario: &Path, work: &Path) -> Result<(), String> {
    let media_port = free_udp_port() & !1;
    let output = Command::new("sipp")
        .current_dir(work)
        .arg("-sf")
        .arg(scenario)
        .args(["-m", "1", "-i", "127.0.0.1", "-nostdin"])
        .args(["-p", &free_udp_port().to_string()])
        .args(["-mp", &media_port.to_string()])
        .args(["-s", "0881234567"])
        .args(["-timeout", "60s", "-timeout_error"])
        .arg(service.sip.to_string())
        .output()
        .expect("run sipp (Debian package sip-tester)");
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "{}\n{}\n--- service log ---\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
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
