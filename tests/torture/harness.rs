//! Helpers shared by the torture and interop tests: running a test body in a
//! private network namespace, and sending raw SIP over UDP.

#![allow(dead_code)]

use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

/// Environment variable set on the copy of the test binary that runs inside
/// the namespace.
const INSIDE_VARIABLE: &str = "IVR_VERIFY_TEST_IN_NETNS";

/// Runs the test named `test_name` in a new network namespace where only
/// `lo` is up, and returns whether the caller is that copy and must run the
/// body.
///
/// The outer call re-runs the test binary under `unshare --net` with just
/// this test selected, asserts that it passed, and returns false. Messages
/// under test carry foreign addresses in Via, Contact and SDP; inside the
/// namespace a reply aimed at one of them cannot leave the machine. Needs
/// root, as the sipp tests already do.
pub fn run_in_network_namespace(test_name: &str) -> bool {
    if std::env::var_os(INSIDE_VARIABLE).is_some() {
        return true;
    }

    let binary = std::env::current_exe().expect("path of the test binary");
    let output = Command::new("unshare")
        .args(["--net", "sh", "-c"])
        .arg(r#"ip link set lo up && exec "$0" --exact "$1" --nocapture --test-threads=1 --include-ignored"#)
        .arg(&binary)
        .arg(test_name)
        .env(INSIDE_VARIABLE, "1")
        .output()
        .expect("run unshare (util-linux) and ip (iproute2)");

    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{test_name} failed inside its network namespace\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
    );
    assert!(
        stdout.contains("1 passed"),
        "{test_name} did not run inside its network namespace\n--- stdout ---\n{stdout}"
    );
    false
}

/// A UDP socket on 127.0.0.1 that sends SIP to one service and reads replies.
pub struct SipSender {
    /// Bound to a free port; its address goes into Via, so replies come here.
    pub socket: UdpSocket,
    /// The service's SIP address.
    pub service: SocketAddr,
    /// Counter that makes every branch and Call-ID unique.
    sequence: u32,
}

impl SipSender {
    /// Binds a free port on 127.0.0.1 for talking to `service`.
    pub fn new(service: SocketAddr) -> SipSender {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP port for the sender");
        SipSender {
            socket,
            service,
            sequence: 0,
        }
    }

    /// Returns the sender's address as written in Via.
    pub fn local(&self) -> SocketAddr {
        self.socket.local_addr().expect("sender address")
    }

    /// Replaces the placeholders `$VIA`, `$SERVICE`, `$BRANCH` and `$CALLID`
    /// with this sender's values, a new branch and a new Call-ID.
    pub fn fill(&mut self, template: &[u8]) -> Vec<u8> {
        self.sequence += 1;
        let replacements = [
            ("$VIA".to_string(), self.local().to_string()),
            ("$SERVICE".to_string(), self.service.to_string()),
            (
                "$BRANCH".to_string(),
                format!("z9hG4bKtorture{}", self.sequence),
            ),
            (
                "$CALLID".to_string(),
                format!("torture-{}-{}@127.0.0.1", std::process::id(), self.sequence),
            ),
        ];
        let mut message = template.to_vec();
        for (placeholder, value) in replacements {
            message = replace_bytes(&message, placeholder.as_bytes(), value.as_bytes());
        }
        message
    }

    /// Sends one datagram to the service.
    pub fn send(&self, datagram: &[u8]) {
        self.socket
            .send_to(datagram, self.service)
            .expect("send a datagram to the service");
    }

    /// Discards replies already waiting, such as retransmissions.
    pub fn drain(&self) {
        self.socket
            .set_nonblocking(true)
            .expect("non-blocking socket");
        let mut buffer = vec![0; 65_535];
        while self.socket.recv(&mut buffer).is_ok() {}
        self.socket.set_nonblocking(false).expect("blocking socket");
    }

    /// Returns every datagram received within `window`.
    pub fn receive_for(&self, window: Duration) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + window;
        let mut replies = Vec::new();
        let mut buffer = vec![0; 65_535];
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return replies;
            }
            self.socket
                .set_read_timeout(Some(remaining))
                .expect("set the read timeout");
            match self.socket.recv(&mut buffer) {
                Ok(length) => replies.push(buffer.get(..length).unwrap_or_default().to_vec()),
                Err(_) => return replies,
            }
        }
    }

    /// Sends `datagram` and returns the status of the first response with
    /// its Call-ID that arrives within `timeout`, or None. Responses to
    /// earlier messages, such as a late 488 after 100 Trying, are skipped.
    pub fn first_reply(&self, datagram: &[u8], timeout: Duration) -> Option<u16> {
        self.drain();
        let call_id = call_id_of(datagram);
        self.send(datagram);
        let deadline = Instant::now() + timeout;
        let mut buffer = vec![0; 65_535];
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return None;
            }
            self.socket
                .set_read_timeout(Some(remaining))
                .expect("set the read timeout");
            let length = self.socket.recv(&mut buffer).ok()?;
            let reply = buffer.get(..length).unwrap_or_default();
            let same_call = call_id.is_none() || call_id_of(reply) == call_id;
            if let (Some(status), true) = (status_of(reply), same_call) {
                return Some(status);
            }
        }
    }

    /// Sends a plain OPTIONS and returns the status of the reply.
    pub fn options(&mut self) -> Option<u16> {
        let message = self.fill(OPTIONS.as_bytes());
        self.first_reply(&message, REPLY_TIMEOUT)
    }
}

/// How long a test waits for a reply before counting "no reply". Replies
/// over loopback take well under a millisecond; the margin covers a debug
/// build on a busy machine.
pub const REPLY_TIMEOUT: Duration = Duration::from_millis(1500);

/// A well-formed OPTIONS with placeholders.
pub const OPTIONS: &str = "OPTIONS sip:ivr@$SERVICE SIP/2.0\r\n\
Via: SIP/2.0/UDP $VIA;branch=$BRANCH;rport\r\n\
Max-Forwards: 70\r\n\
From: <sip:probe@127.0.0.1>;tag=probe\r\n\
To: <sip:ivr@$SERVICE>\r\n\
Call-ID: $CALLID\r\n\
CSeq: 1 OPTIONS\r\n\
Content-Length: 0\r\n\r\n";

/// Returns the status code of a SIP response, or None for anything else.
pub fn status_of(datagram: &[u8]) -> Option<u16> {
    let rest = datagram.strip_prefix(b"SIP/2.0 ")?;
    let code = std::str::from_utf8(rest.get(..3)?).ok()?;
    code.parse().ok()
}

/// Returns the Call-ID value of a SIP message, or None when it has none.
pub fn call_id_of(message: &[u8]) -> Option<Vec<u8>> {
    message.split(|&byte| byte == b'\n').find_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let colon = line.iter().position(|&byte| byte == b':')?;
        let name = std::str::from_utf8(line.get(..colon)?).ok()?.trim();
        let is_call_id = name.eq_ignore_ascii_case("Call-ID") || name.eq_ignore_ascii_case("i");
        is_call_id.then(|| {
            line.get(colon + 1..)
                .unwrap_or_default()
                .trim_ascii()
                .to_vec()
        })
    })
}

/// Returns `haystack` with every `from` replaced by `to`.
pub fn replace_bytes(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut output = Vec::with_capacity(haystack.len());
    let mut index = 0;
    while index < haystack.len() {
        if haystack.get(index..index + from.len()) == Some(from) {
            output.extend_from_slice(to);
            index += from.len();
        } else {
            output.push(haystack[index]);
            index += 1;
        }
    }
    output
}
