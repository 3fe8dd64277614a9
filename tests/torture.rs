//! Torture messages against the real binary, one or more per fault class,
//! followed by a plain OPTIONS and a real call that must still succeed.
//!
//! The service and every sender run inside a private network namespace (see
//! `harness::run_in_network_namespace`), so nothing the service sends can
//! leave the machine. Needs root, like the sipp tests in `calls.rs`.

mod support;

#[path = "torture/harness.rs"]
mod harness;

use std::path::Path;
use std::time::Duration;

use harness::{run_in_network_namespace, status_of, SipSender, REPLY_TIMEOUT};
use support::{call_with_sipp, Keypad, Service};

/// The reply a torture message must get.
#[derive(Clone, Copy, Debug)]
enum Expected {
    /// This status code.
    Status(u16),
    /// One of these status codes.
    OneOf(&'static [u16]),
    /// No reply: the message cannot be framed, or it is an ACK or a response
    /// without a transaction.
    Nothing,
}

impl Expected {
    fn matches(self, reply: Option<u16>) -> bool {
        match self {
            Expected::Status(status) => reply == Some(status),
            Expected::OneOf(statuses) => reply.is_some_and(|status| statuses.contains(&status)),
            Expected::Nothing => reply.is_none(),
        }
    }
}

/// Each file under `tests/torture/` and the reply it must get.
const FILE_CASES: &[(&str, Expected)] = &[
    // A continuation line folds into Content-Length, which is then not a number.
    ("header_continuation_after_last.sip", Expected::Status(400)),
    // Start line.
    ("start_line_no_version.sip", Expected::Status(400)),
    ("start_line_four_parts.sip", Expected::Status(400)),
    ("start_line_version_3.sip", Expected::Status(505)),
    // Scalar ranges: CSeq below 2^31 (RFC 3261 §8.1.1.5), Max-Forwards 0-255
    // (§20.22), Content-Length a decimal.
    ("scalar_cseq_2_31.sip", Expected::Status(400)),
    ("scalar_cseq_negative.sip", Expected::Status(400)),
    ("scalar_max_forwards_256.sip", Expected::Status(400)),
    ("scalar_content_length_2_64.sip", Expected::Status(400)),
    // URI syntax.
    ("uri_empty_host.sip", Expected::Status(400)),
    ("uri_port_out_of_range.sip", Expected::Status(400)),
    // Body and Content-Length: over UDP, bytes after the declared body are
    // ignored (RFC 3261 §18.3), while a body shorter than declared is an error.
    ("body_content_length_too_large.sip", Expected::Status(400)),
    ("body_content_length_hex.sip", Expected::Status(400)),
    ("body_tail_after_content_length.sip", Expected::Status(200)),
    // Methods are case-sensitive (§7.1), so `options` is an extension method.
    ("method_subscribe.sip", Expected::OneOf(&[405, 501])),
    ("method_extension.sip", Expected::Status(501)),
    ("method_lowercase.sip", Expected::Status(501)),
    // Transactions: ACK is never answered, a CANCEL without its INVITE gets
    // 481 (§9.2), and a response without a client transaction is dropped.
    ("transaction_stray_ack.sip", Expected::Nothing),
    ("transaction_stray_cancel.sip", Expected::Status(481)),
    ("transaction_stray_response.sip", Expected::Nothing),
    ("transaction_stray_provisional.sip", Expected::Nothing),
    // Dialog mismatch: a To tag of no dialog gets 481 (§12.2.2).
    ("dialog_unknown_bye.sip", Expected::Status(481)),
    ("dialog_unknown_info.sip", Expected::Status(481)),
    // Invalid UTF-8 in a quoted display name is read as bytes and does not
    // stop the request.
    (
        "utf8_invalid_display_name.sip",
        Expected::OneOf(&[200, 400]),
    ),
];

/// Cases where the service departed from RFC 3261, with the reply the RFC
/// requires. `rfc3261_deviations` checks them.
const DEVIATION_CASES: &[(&str, Expected)] = &[
    // The empty line that ends the header section is required (§7), so a
    // datagram without it is malformed, and because the Via is readable, a
    // 400 can be routed.
    ("framing_no_blank_line.sip", Expected::Status(400)),
    // A header line without a colon is malformed; the Via is readable.
    ("header_without_colon.sip", Expected::Status(400)),
    // A header name must be a token (§25.1).
    ("utf8_invalid_header_name.sip", Expected::Status(400)),
    // An IPv6 reference needs its closing bracket (§25.1).
    ("uri_unclosed_ipv6.sip", Expected::Status(400)),
];

/// Datagrams of binary garbage to send.
const GARBAGE_DATAGRAMS: usize = 64;

/// Largest UDP payload over IPv4: 65,535 minus the IP and UDP headers.
const MAX_UDP_PAYLOAD: usize = 65_507;

/// A complete INVITE with an SDP offer, cut at every byte by
/// `truncated_invite_every_byte`.
const INVITE: &str = "INVITE sip:0881234567@$SERVICE SIP/2.0\r\n\
Via: SIP/2.0/UDP $VIA;branch=$BRANCH;rport\r\n\
Max-Forwards: 70\r\n\
From: <sip:0612345601@127.0.0.1>;tag=truncated\r\n\
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

/// Reads a file under `tests/torture/` and turns its LF line ends into CRLF.
fn torture_file(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/torture")
        .join(name);
    let bytes =
        std::fs::read(&path).unwrap_or_else(|error| panic!("read {}: {error}", path.display()));
    let unix = harness::replace_bytes(&bytes, b"\r\n", b"\n");
    harness::replace_bytes(&unix, b"\n", b"\r\n")
}

/// Returns `count` pseudo-random bytes from a fixed xorshift seed, so that
/// every run sends the same garbage.
fn garbage(seed: &mut u64, count: usize) -> Vec<u8> {
    (0..count)
        .map(|_| {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            (*seed >> 24) as u8
        })
        .collect()
}

/// Sends every fault class, then checks that OPTIONS and a whole call still work.
#[test]
fn torture_then_real_call() {
    if !run_in_network_namespace("torture_then_real_call") {
        return;
    }
    let service = Service::start(support::CUSTOMERS_CSV);
    let mut sender = SipSender::new(service.sip);
    let mut failures = Vec::new();

    for (name, expected) in FILE_CASES {
        let message = sender.fill(&torture_file(name));
        let reply = sender.first_reply(&message, REPLY_TIMEOUT);
        if !expected.matches(reply) {
            failures.push(format!("{name}: expected {expected:?}, got {reply:?}"));
        }
    }

    let padding = "x".repeat(60_000);
    let oversize_header = sender.fill(
        harness::OPTIONS
            .replace(
                "Content-Length",
                &format!("X-Padding: {padding}\r\nContent-Length"),
            )
            .as_bytes(),
    );
    let reply = sender.first_reply(&oversize_header, REPLY_TIMEOUT);
    if reply != Some(200) {
        failures.push(format!(
            "OPTIONS with a 60,000-byte header: expected 200, got {reply:?}"
        ));
    }

    let extra_vias = "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKextra\r\n".repeat(400);
    let many_vias = sender.fill(
        harness::OPTIONS
            .replace("Max-Forwards", &format!("{extra_vias}Max-Forwards"))
            .as_bytes(),
    );
    let reply = sender.first_reply(&many_vias, REPLY_TIMEOUT);
    if reply != Some(200) {
        failures.push(format!(
            "OPTIONS with 401 Via headers: expected 200, got {reply:?}"
        ));
    }

    let mut seed = 0x1234_5678_9abc_def1;
    let largest = garbage(&mut seed, MAX_UDP_PAYLOAD);
    let reply = sender.first_reply(&largest, REPLY_TIMEOUT);
    if reply.is_some() {
        failures.push(format!(
            "{MAX_UDP_PAYLOAD} bytes of garbage: expected no reply, got {reply:?}"
        ));
    }

    sender.drain();
    for round in 0..GARBAGE_DATAGRAMS {
        let length = 1 + (round * 37) % 1500;
        sender.send(&garbage(&mut seed, length));
    }
    let replies = sender.receive_for(REPLY_TIMEOUT);
    if !replies.is_empty() {
        failures.push(format!(
            "binary garbage: expected no reply, got {} replies",
            replies.len()
        ));
    }

    assert!(
        failures.is_empty(),
        "wrong replies:\n{}",
        failures.join("\n")
    );
    assert_eq!(
        sender.options(),
        Some(200),
        "OPTIONS after the torture messages"
    );

    let run = call_with_sipp(&service, "0612345601", Keypad::Generated("12345678#"));
    assert!(
        run.succeeded,
        "call after the torture messages failed\n--- sipp ---\n{}\n--- service log ---\n{}",
        run.output,
        service.log()
    );
}

/// Cuts an INVITE at every byte. A cut inside the body leaves fewer bytes
/// than Content-Length declares and must get 400; no cut may be answered
/// with a 2xx, and the service must keep answering OPTIONS.
#[test]
fn truncated_invite_every_byte() {
    if !run_in_network_namespace("truncated_invite_every_byte") {
        return;
    }
    let service = Service::start(support::CUSTOMERS_CSV);
    let mut sender = SipSender::new(service.sip);

    let mut wrong = Vec::new();
    let mut header_cut_replies = Vec::new();
    let template = INVITE.as_bytes();
    for cut in 1..template.len() {
        let message = sender.fill(template);
        let header_end = message
            .windows(4)
            .position(|window| window == b"\r\n\r\n")
            .map(|at| at + 4)
            .expect("the INVITE has an empty line");
        let cut = cut.min(message.len() - 1);
        let prefix = message.get(..cut).expect("cut inside the message");

        if cut >= header_end {
            let reply = sender.first_reply(prefix, REPLY_TIMEOUT);
            if reply != Some(400) {
                wrong.push(format!(
                    "cut at {cut} of {}: expected 400, got {reply:?}",
                    message.len()
                ));
            }
        } else {
            sender.send(prefix);
            // A short pause keeps the service's socket buffer from overflowing.
            std::thread::sleep(Duration::from_millis(2));
            header_cut_replies.extend(
                sender
                    .receive_for(Duration::ZERO)
                    .iter()
                    .filter_map(|reply| status_of(reply)),
            );
        }
    }
    header_cut_replies.extend(
        sender
            .receive_for(REPLY_TIMEOUT)
            .iter()
            .filter_map(|reply| status_of(reply)),
    );

    assert!(
        wrong.is_empty(),
        "cuts inside the body:\n{}",
        wrong.join("\n")
    );
    assert!(
        header_cut_replies
            .iter()
            .all(|status| !(200..300).contains(status)),
        "a truncated INVITE was answered 2xx: {header_cut_replies:?}"
    );
    assert_eq!(
        sender.options(),
        Some(200),
        "OPTIONS after the truncated INVITEs"
    );
}

/// Checks the cases where the service departed from RFC 3261.
#[test]
fn rfc3261_deviations() {
    if !run_in_network_namespace("rfc3261_deviations") {
        return;
    }
    let service = Service::start(support::CUSTOMERS_CSV);
    let mut sender = SipSender::new(service.sip);

    let mut failures = Vec::new();
    for (name, expected) in DEVIATION_CASES {
        let message = sender.fill(&torture_file(name));
        let reply = sender.first_reply(&message, REPLY_TIMEOUT);
        if !expected.matches(reply) {
            failures.push(format!("{name}: expected {expected:?}, got {reply:?}"));
        }
    }

    // Cut after the CSeq line: every required header is there, but the
    // empty line is not, so this is a malformed message with a readable Via.
    let invite = sender.fill(INVITE.as_bytes());
    let text = String::from_utf8_lossy(&invite).into_owned();
    let cut = text
        .find("Contact:")
        .expect("the INVITE has a Contact line");
    let reply = sender.first_reply(
        text.get(..cut).unwrap_or_default().as_bytes(),
        REPLY_TIMEOUT,
    );
    if reply != Some(400) {
        failures.push(format!(
            "INVITE cut at a line end: expected 400, got {reply:?}"
        ));
    }

    assert!(failures.is_empty(), "deviations:\n{}", failures.join("\n"));
}
