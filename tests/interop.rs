//! Interop with a real SIP client (sipp) over UDP on loopback: call set-up
//! and tear-down orders that the plain call scenario in `calls.rs` does not
//! take. Each test starts its own service on free ports.

mod support;

use std::path::Path;
use std::process::Command;

use support::{free_udp_port, repo_root, Service};

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
