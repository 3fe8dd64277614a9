use std::time::Duration;

mod admission;
mod dialogs;
mod foreign_source;
mod framing;
mod matching;
mod timeouts;
mod transports;

use super::*;
use crate::sip::message::{header_param, MAX_MESSAGE_SIZE};
use crate::sip::timer::T4;

const PEER: &str = "127.0.0.1:5070";
const LOCAL: &str = "127.0.0.1:5060";
const CALL_ID: &str = "call-1@127.0.0.1";
const PEER_TAG: &str = "peer-tag";
const SDP_OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8 0 101\r\n";
const SDP_ANSWER: &[u8] = b"v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 8 101\r\n";

fn peer() -> SocketAddr {
    PEER.parse().unwrap()
}

fn trusting_policy() -> EdgePolicy {
    EdgePolicy {
        trusted_peers: vec!["127.0.0.1/32".parse().unwrap()],
        ..EdgePolicy::default()
    }
}

fn new_endpoint() -> Endpoint {
    endpoint_with(trusting_policy())
}

fn endpoint_with(edge: EdgePolicy) -> Endpoint {
    Endpoint::new(EndpointConfig {
        local_addr: LOCAL.parse().unwrap(),
        user_agent: "ivr-verify-test".to_string(),
        edge,
    })
}

fn transmits(endpoint: &mut Endpoint) -> Vec<Transmit> {
    std::iter::from_fn(|| endpoint.poll_transmit()).collect()
}

fn events(endpoint: &mut Endpoint) -> Vec<Event> {
    std::iter::from_fn(|| endpoint.poll_event()).collect()
}

fn text(transmit: &Transmit) -> String {
    String::from_utf8_lossy(&transmit.payload).into_owned()
}

/// Returns the status code of a response, or 0 for a request.
fn status(transmit: &Transmit) -> u16 {
    let text = text(transmit);
    text.strip_prefix("SIP/2.0 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

fn header(transmit: &Transmit, name: &str) -> Option<String> {
    let raw = RawMessage::frame(&transmit.payload).unwrap();
    raw.value(name).map(str::to_string)
}

fn statuses(transmits: &[Transmit]) -> Vec<u16> {
    transmits.iter().map(status).collect()
}

fn invite(branch: &str) -> String {
    format!(
        "INVITE sip:+31201234567@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5070;branch={branch};rport\r\n\
         Max-Forwards: 70\r\n\
         Record-Route: <sip:127.0.0.1:5070;lr>\r\n\
         From: \"Caller\" <sip:+31612345678@127.0.0.1>;tag={PEER_TAG}\r\n\
         To: <sip:+31201234567@127.0.0.1>\r\n\
         Call-ID: {CALL_ID}\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:caller@127.0.0.1:5070;transport=udp>\r\n\
         P-Asserted-Identity: <sip:+31612345678@127.0.0.1;user=phone>, <tel:+31612345678>\r\n\
         Privacy: none\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{SDP_OFFER}",
        SDP_OFFER.len()
    )
}

/// Builds a request from the peer. With `to_tag` None it is outside any dialog.
fn request(
    method: &str,
    branch: &str,
    cseq: u32,
    to_tag: Option<&str>,
    extra: &str,
    body: &str,
) -> String {
    let to_tag = to_tag.map(|tag| format!(";tag={tag}")).unwrap_or_default();
    format!(
        "{method} sip:ivr@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5070;branch={branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:+31612345678@127.0.0.1>;tag={PEER_TAG}\r\n\
         To: <sip:+31201234567@127.0.0.1>{to_tag}\r\n\
         Call-ID: {CALL_ID}\r\n\
         CSeq: {cseq} {method}\r\n\
         {extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn feed(endpoint: &mut Endpoint, now: Instant, message: &str) {
    endpoint.handle_datagram(now, peer(), message.as_bytes());
}

/// Sends an INVITE and returns the handle from the IncomingCall event.
fn offer_call(endpoint: &mut Endpoint, now: Instant) -> CallHandle {
    feed(endpoint, now, &invite("z9hG4bKinvite1"));
    let sent = transmits(endpoint);
    assert_eq!(statuses(&sent), vec![100]);
    match events(endpoint).as_slice() {
        [Event::IncomingCall(incoming)] => incoming.call,
        other => panic!("expected one IncomingCall, got {other:?}"),
    }
}

/// Offers and accepts a call; returns the handle and our To tag.
fn answer_call(endpoint: &mut Endpoint, now: Instant) -> (CallHandle, String) {
    let call = offer_call(endpoint, now);
    endpoint
        .accept_call(now, call, SDP_ANSWER.to_vec())
        .unwrap();
    let sent = transmits(endpoint);
    assert_eq!(statuses(&sent), vec![200]);
    let to = header(&sent[0], "To").unwrap();
    (call, header_param(&to, "tag").unwrap())
}

/// Offers, accepts and acknowledges a call; returns the handle and our To tag.
fn confirm_call(endpoint: &mut Endpoint, now: Instant) -> (CallHandle, String) {
    let (call, tag) = answer_call(endpoint, now);
    feed(
        endpoint,
        now,
        &request("ACK", "z9hG4bKack1", 1, Some(&tag), "", ""),
    );
    assert!(transmits(endpoint).is_empty());
    assert_eq!(
        events(endpoint),
        vec![Event::CallConfirmed {
            call,
            ack_sdp: None
        }]
    );
    (call, tag)
}

/// Calls handle_timeout at each deadline up to `until`; returns what was sent, with the time.
fn run_until(endpoint: &mut Endpoint, until: Instant) -> Vec<(Instant, Transmit)> {
    let mut sent = Vec::new();
    while let Some(deadline) = endpoint.poll_timeout() {
        if deadline > until {
            break;
        }
        endpoint.handle_timeout(deadline);
        sent.extend(
            transmits(endpoint)
                .into_iter()
                .map(|transmit| (deadline, transmit)),
        );
    }
    sent
}

fn offsets(start: Instant, sent: &[(Instant, Transmit)]) -> Vec<u128> {
    sent.iter()
        .map(|(at, _)| at.duration_since(start).as_millis())
        .collect()
}

#[test]
fn invite_emits_incoming_call() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    feed(&mut endpoint, now, &invite("z9hG4bKinvite1"));

    let sent = transmits(&mut endpoint);
    assert_eq!(statuses(&sent), vec![100]);
    assert_eq!(sent[0].destination, peer());
    assert_eq!(
        header(&sent[0], "To").as_deref(),
        Some("<sip:+31201234567@127.0.0.1>")
    );
    assert_eq!(
        header(&sent[0], "Via").as_deref(),
        Some("SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKinvite1;received=127.0.0.1;rport=5070")
    );

    let received = events(&mut endpoint);
    let [Event::IncomingCall(incoming)] = received.as_slice() else {
        panic!("expected one IncomingCall, got {received:?}");
    };
    assert_eq!(incoming.call_id, CALL_ID);
    assert_eq!(incoming.source, peer());
    assert_eq!(incoming.request_uri, "sip:+31201234567@127.0.0.1");
    assert_eq!(
        incoming.from,
        format!("\"Caller\" <sip:+31612345678@127.0.0.1>;tag={PEER_TAG}")
    );
    assert_eq!(incoming.to, "<sip:+31201234567@127.0.0.1>");
    assert_eq!(
        incoming.p_asserted_identity,
        vec![
            "<sip:+31612345678@127.0.0.1;user=phone>",
            "<tel:+31612345678>"
        ]
    );
    assert_eq!(incoming.privacy.as_deref(), Some("none"));
    assert_eq!(incoming.sdp_offer.as_deref(), Some(SDP_OFFER.as_bytes()));
}

#[test]
fn invite_retransmission_repeats_last_response() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    let call = offer_call(&mut endpoint, now);

    feed(&mut endpoint, now, &invite("z9hG4bKinvite1"));
    assert_eq!(statuses(&transmits(&mut endpoint)), vec![100]);
    assert!(events(&mut endpoint).is_empty());

    endpoint
        .accept_call(now, call, SDP_ANSWER.to_vec())
        .unwrap();
    let first = transmits(&mut endpoint);
    feed(&mut endpoint, now, &invite("z9hG4bKinvite1"));
    let again = transmits(&mut endpoint);
    assert_eq!(statuses(&again), vec![200]);
    assert_eq!(header(&again[0], "To"), header(&first[0], "To"));
    assert!(events(&mut endpoint).is_empty());
}

#[test]
fn accepted_2xx_retransmits_until_ack() {
    let mut endpoint = new_endpoint();
    let start = Instant::now();
    let (call, tag) = answer_call(&mut endpoint, start);

    let sent = run_until(&mut endpoint, start + Duration::from_millis(8_000));
    assert_eq!(offsets(start, &sent), vec![500, 1_500, 3_500, 7_500]);
    assert!(sent.iter().all(|(_, transmit)| status(transmit) == 200));

    let now = start + Duration::from_millis(8_000);
    feed(
        &mut endpoint,
        now,
        &request("ACK", "z9hG4bKack1", 1, Some(&tag), "", ""),
    );
    assert_eq!(
        events(&mut endpoint),
        vec![Event::CallConfirmed {
            call,
            ack_sdp: None
        }]
    );
    assert!(run_until(&mut endpoint, start + Duration::from_secs(60)).is_empty());
    assert!(events(&mut endpoint).is_empty());
}

#[test]
fn ack_timeout_sends_bye() {
    let mut endpoint = new_endpoint();
    let start = Instant::now();
    let (call, _) = answer_call(&mut endpoint, start);

    let sent = run_until(&mut endpoint, start + TIMEOUT_64_T1);
    let retransmitted = sent
        .iter()
        .filter(|(_, transmit)| status(transmit) == 200)
        .count();
    assert_eq!(retransmitted, 10);

    let (at, bye) = sent.last().unwrap();
    assert_eq!(*at, start + TIMEOUT_64_T1);
    // rsipstack 0.7.14 writes the transport parameter of a URI in upper case.
    assert!(
        text(bye).starts_with("BYE sip:caller@127.0.0.1:5070;transport=UDP SIP/2.0\r\n"),
        "{}",
        text(bye)
    );
    assert_eq!(
        events(&mut endpoint),
        vec![Event::CallEnded {
            call,
            cause: EndCause::AckTimeout
        }]
    );
    assert_eq!(
        endpoint.transfer(start, call, "sip:q@127.0.0.1", "sip:ivr@127.0.0.1"),
        Err(EndpointError::UnknownCall { call })
    );
}

#[test]
fn rejection_retransmits_until_ack() {
    let mut endpoint = new_endpoint();
    let start = Instant::now();
    let call = offer_call(&mut endpoint, start);

    endpoint.reject_call(start, call, 486).unwrap();
    assert_eq!(statuses(&transmits(&mut endpoint)), vec![486]);
    assert_eq!(
        events(&mut endpoint),
        vec![Event::CallEnded {
            call,
            cause: EndCause::Rejected
        }]
    );

    let sent = run_until(&mut endpoint, start + Duration::from_millis(2_000));
    assert_eq!(offsets(start, &sent), vec![500, 1_500]);
    assert!(sent.iter().all(|(_, transmit)| status(transmit) == 486));

    // The ACK for a non-2xx reuses the INVITE's branch (RFC 3261 §17.1.1.3).
    let ack = request("ACK", "z9hG4bKinvite1", 1, Some("any"), "", "");
    feed(&mut endpoint, start + Duration::from_millis(2_000), &ack);
    assert!(transmits(&mut endpoint).is_empty());
    assert_eq!(
        endpoint.poll_timeout(),
        Some(start + Duration::from_millis(2_000) + T4)
    );
    assert!(run_until(&mut endpoint, start + Duration::from_secs(60)).is_empty());
    assert_eq!(endpoint.poll_timeout(), None);
}

#[test]
fn rejection_gives_up_on_timer_h() {
    let mut endpoint = new_endpoint();
    let start = Instant::now();
    let call = offer_call(&mut endpoint, start);
    endpoint.reject_call(start, call, 603).unwrap();
    let _ = transmits(&mut endpoint);

    let sent = run_until(&mut endpoint, start + Duration::from_secs(120));
    assert_eq!(offsets(start, &sent).last(), Some(&31_500));
    assert_eq!(endpoint.poll_timeout(), None);
}

#[test]
fn reject_checks_status_and_state() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    let call = offer_call(&mut endpoint, now);
    assert_eq!(
        endpoint.reject_call(now, call, 200),
        Err(EndpointError::InvalidRejectStatus { status: 200 })
    );
    endpoint
        .accept_call(now, call, SDP_ANSWER.to_vec())
        .unwrap();
    assert!(matches!(
        endpoint.reject_call(now, call, 486),
        Err(EndpointError::InvalidState {
            state: "answered",
            ..
        })
    ));
    let unknown = CallHandle(999);
    assert_eq!(
        endpoint.hang_up(now, unknown),
        Err(EndpointError::UnknownCall { call: unknown })
    );
}

#[test]
fn cancel_pending_invite_sends_487() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    let call = offer_call(&mut endpoint, now);

    feed(
        &mut endpoint,
        now,
        &request("CANCEL", "z9hG4bKinvite1", 1, None, "", ""),
    );
    let sent = transmits(&mut endpoint);
    assert_eq!(statuses(&sent), vec![200, 487]);
    assert_eq!(header(&sent[0], "CSeq").as_deref(), Some("1 CANCEL"));
    assert_eq!(header(&sent[1], "CSeq").as_deref(), Some("1 INVITE"));
    assert_eq!(header(&sent[0], "To"), header(&sent[1], "To"));
    assert_eq!(
        events(&mut endpoint),
        vec![Event::CallEnded {
            call,
            cause: EndCause::Cancelled
        }]
    );
    assert!(endpoint
        .accept_call(now, call, SDP_ANSWER.to_vec())
        .is_err());
}

#[test]
fn cancel_without_invite_gets_481() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    feed(
        &mut endpoint,
        now,
        &request("CANCEL", "z9hG4bKnone", 1, None, "", ""),
    );
    assert_eq!(statuses(&transmits(&mut endpoint)), vec![481]);
}

#[test]
fn cancel_after_2xx_keeps_call() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    let (call, tag) = answer_call(&mut endpoint, now);

    feed(
        &mut endpoint,
        now,
        &request("CANCEL", "z9hG4bKinvite1", 1, None, "", ""),
    );
    assert_eq!(statuses(&transmits(&mut endpoint)), vec![200]);
    assert!(events(&mut endpoint).is_empty());

    feed(
        &mut endpoint,
        now,
        &request("ACK", "z9hG4bKack1", 1, Some(&tag), "", ""),
    );
    assert_eq!(
        events(&mut endpoint),
        vec![Event::CallConfirmed {
            call,
            ack_sdp: None
        }]
    );
}

#[test]
fn bye_ends_confirmed_call() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    let (call, tag) = confirm_call(&mut endpoint, now);

    let bye = request("BYE", "z9hG4bKbye1", 2, Some(&tag), "", "");
    feed(&mut endpoint, now, &bye);
    assert_eq!(statuses(&transmits(&mut endpoint)), vec![200]);
    assert_eq!(
        events(&mut endpoint),
        vec![Event::CallEnded {
            call,
            cause: EndCause::ByeReceived
        }]
    );

    feed(&mut endpoint, now, &bye);
    assert_eq!(statuses(&transmits(&mut endpoint)), vec![200]);
    assert!(events(&mut endpoint).is_empty());

    let later = request("BYE", "z9hG4bKbye2", 3, Some(&tag), "", "");
    feed(&mut endpoint, now, &later);
    assert_eq!(statuses(&transmits(&mut endpoint)), vec![481]);
}

#[test]
fn bye_before_ack_ends_call() {
    let mut endpoint = new_endpoint();
    let start = Instant::now();
    let (call, tag) = answer_call(&mut endpoint, start);

    feed(
        &mut endpoint,
        start,
        &request("BYE", "z9hG4bKbye1", 2, Some(&tag), "", ""),
    );
    assert_eq!(statuses(&transmits(&mut endpoint)), vec![200]);
    assert_eq!(
        events(&mut endpoint),
        vec![Event::CallEnded {
            call,
            cause: EndCause::ByeReceived
        }]
    );

    let sent = run_until(&mut endpoint, start + Duration::from_secs(60));
    assert!(
        sent.is_empty(),
        "sent after BYE: {:?}",
        statuses(&sent.into_iter().map(|(_, t)| t).collect::<Vec<_>>())
    );
    assert!(events(&mut endpoint).is_empty());
}

#[test]
fn unknown_dialog_gets_481() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    for method in ["BYE", "INFO", "NOTIFY", "OPTIONS", "INVITE"] {
        let message = request(
            method,
            &format!("z9hG4bK{method}"),
            5,
            Some("nobody"),
            "",
            "",
        );
        feed(&mut endpoint, now, &message);
        assert_eq!(statuses(&transmits(&mut endpoint)), vec![481], "{method}");
    }
    feed(
        &mut endpoint,
        now,
        &request("BYE", "z9hG4bKbye-no-tag", 5, None, "", ""),
    );
    assert_eq!(statuses(&transmits(&mut endpoint)), vec![481]);
}

#[test]
fn invite_in_unknown_dialog_waits_for_ack() {
    let mut endpoint = new_endpoint();
    let start = Instant::now();
    let message = invite("z9hG4bKstray").replace(
        "To: <sip:+31201234567@127.0.0.1>",
        "To: <sip:+31201234567@127.0.0.1>;tag=gone",
    );
    feed(&mut endpoint, start, &message);
    assert_eq!(statuses(&transmits(&mut endpoint)), vec![481]);

    let sent = run_until(&mut endpoint, start + Duration::from_millis(600));
    assert_eq!(
        statuses(&sent.into_iter().map(|(_, t)| t).collect::<Vec<_>>()),
        vec![481]
    );
    let ack = request("ACK", "z9hG4bKstray", 1, Some("gone"), "", "");
    feed(&mut endpoint, start + Duration::from_millis(600), &ack);
    assert!(run_until(&mut endpoint, start + Duration::from_secs(60)).is_empty());
    assert_eq!(endpoint.poll_timeout(), None);
}

#[test]
fn options_gets_allow_and_accept() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    feed(
        &mut endpoint,
        now,
        &request("OPTIONS", "z9hG4bKopt1", 1, None, "", ""),
    );
    let sent = transmits(&mut endpoint);
    assert_eq!(statuses(&sent), vec![200]);
    assert_eq!(header(&sent[0], "Allow").as_deref(), Some(ALLOW));
    assert_eq!(
        header(&sent[0], "Accept").as_deref(),
        Some("application/sdp")
    );
    assert_eq!(
        header(&sent[0], "Server").as_deref(),
        Some("ivr-verify-test")
    );
    assert!(header(&sent[0], "To")
        .and_then(|to| header_param(&to, "tag"))
        .is_some());

    let (_, tag) = confirm_call(&mut endpoint, now);
    feed(
        &mut endpoint,
        now,
        &request("OPTIONS", "z9hG4bKopt2", 2, Some(&tag), "", ""),
    );
    assert_eq!(statuses(&transmits(&mut endpoint)), vec![200]);
}

#[test]
fn unsupported_methods_get_405_or_501() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    for (method, expected) in [
        ("REGISTER", 405),
        ("SUBSCRIBE", 405),
        ("MESSAGE", 405),
        ("FROBNICATE", 501),
    ] {
        feed(
            &mut endpoint,
            now,
            &request(method, &format!("z9hG4bK{method}"), 1, None, "", ""),
        );
        let sent = transmits(&mut endpoint);
        assert_eq!(statuses(&sent), vec![expected], "{method}");
        assert_eq!(
            header(&sent[0], "Allow").as_deref(),
            Some(ALLOW),
            "{method}"
        );
    }
}

#[test]
fn ack_is_never_answered() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    feed(
        &mut endpoint,
        now,
        &request("ACK", "z9hG4bKack9", 1, Some("x"), "", ""),
    );
    feed(
        &mut endpoint,
        now,
        &request("ACK", "z9hG4bKack9", 1, None, "Content-Length: 50\r\n", ""),
    );
    assert!(transmits(&mut endpoint).is_empty());
    assert!(events(&mut endpoint).is_empty());
}

#[test]
fn malformed_with_via_gets_400() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    let message = request("OPTIONS", "z9hG4bKbad1", 1, None, "", "")
        .replace("Content-Length: 0", "Content-Length: 99");
    feed(&mut endpoint, now, &message);
    let sent = transmits(&mut endpoint);
    assert_eq!(statuses(&sent), vec![400]);
    assert_eq!(sent[0].destination, peer());
    assert_eq!(header(&sent[0], "Call-ID").as_deref(), Some(CALL_ID));
}

#[test]
fn malformed_without_via_is_dropped() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    let without_via: String = request("OPTIONS", "z9hG4bKbad2", 1, None, "", "")
        .split("\r\n")
        .filter(|line| !line.starts_with("Via:"))
        .collect::<Vec<_>>()
        .join("\r\n");
    feed(&mut endpoint, now, &without_via);
    endpoint.handle_datagram(now, peer(), b"\x00\xff garbage \r\n\r\n");
    endpoint.handle_datagram(now, peer(), b"");
    endpoint.handle_datagram(now, peer(), &vec![b'A'; MAX_MESSAGE_SIZE + 1]);
    assert!(transmits(&mut endpoint).is_empty());
    assert!(events(&mut endpoint).is_empty());
}

#[test]
fn reply_goes_to_via_port_without_rport() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    let with_port = request("OPTIONS", "z9hG4bKp1", 1, None, "", "").replace(
        "127.0.0.1:5070;branch=z9hG4bKp1;rport",
        "127.0.0.9:5080;branch=z9hG4bKp1",
    );
    feed(&mut endpoint, now, &with_port);
    let sent = transmits(&mut endpoint);
    assert_eq!(sent[0].destination, "127.0.0.1:5080".parse().unwrap());

    let without_port = request("OPTIONS", "z9hG4bKp2", 1, None, "", "").replace(
        "127.0.0.1:5070;branch=z9hG4bKp2;rport",
        "127.0.0.9;branch=z9hG4bKp2",
    );
    feed(&mut endpoint, now, &without_port);
    let sent = transmits(&mut endpoint);
    assert_eq!(sent[0].destination, "127.0.0.1:5060".parse().unwrap());
}

#[test]
fn non_invite_retransmission_gets_stored_response() {
    let mut endpoint = new_endpoint();
    let start = Instant::now();
    let options = request("OPTIONS", "z9hG4bKopt1", 1, None, "", "");
    feed(&mut endpoint, start, &options);
    let first = transmits(&mut endpoint);

    feed(&mut endpoint, start + Duration::from_secs(1), &options);
    let again = transmits(&mut endpoint);
    assert_eq!(first, again);

    assert_eq!(endpoint.poll_timeout(), Some(start + TIMEOUT_64_T1));
    endpoint.handle_timeout(start + TIMEOUT_64_T1);
    assert_eq!(endpoint.poll_timeout(), None);
    feed(&mut endpoint, start + TIMEOUT_64_T1, &options);
    let after_j = transmits(&mut endpoint);
    assert_eq!(statuses(&after_j), vec![200]);
    assert_ne!(header(&after_j[0], "To"), header(&first[0], "To"));
}

#[test]
fn require_gets_420() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    let message = request(
        "OPTIONS",
        "z9hG4bKreq",
        1,
        None,
        "Require: foo, bar\r\n",
        "",
    );
    feed(&mut endpoint, now, &message);
    let sent = transmits(&mut endpoint);
    assert_eq!(statuses(&sent), vec![420]);
    assert_eq!(header(&sent[0], "Unsupported").as_deref(), Some("foo, bar"));
}

#[test]
fn spurious_timeout_is_harmless() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    endpoint.handle_timeout(now);
    let call = offer_call(&mut endpoint, now);
    endpoint.handle_timeout(now + Duration::from_secs(3600));
    assert!(transmits(&mut endpoint).is_empty());
    assert!(events(&mut endpoint).is_empty());
    assert!(endpoint.accept_call(now, call, SDP_ANSWER.to_vec()).is_ok());
}

fn refer_of(endpoint: &mut Endpoint, now: Instant, call: CallHandle) -> Transmit {
    let refer_to = format!(
        "sip:queue@127.0.0.1?User-to-User={}",
        escape_uri(";encoding=hex")
    );
    endpoint
        .transfer(now, call, &refer_to, "sip:ivr@127.0.0.1")
        .unwrap();
    let sent = transmits(endpoint);
    assert_eq!(sent.len(), 1);
    sent.into_iter().next().unwrap()
}

fn escape_uri(value: &str) -> String {
    crate::sip::escape_uri_header_value(value)
}

fn response_to(request: &Transmit, status_line: &str) -> String {
    let raw = RawMessage::frame(&request.payload).unwrap();
    let mut text = format!("{status_line}\r\n");
    for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
        text.push_str(&format!("{name}: {}\r\n", raw.value(name).unwrap()));
    }
    text.push_str("Content-Length: 0\r\n\r\n");
    text
}

#[test]
fn transfer_sends_refer_in_dialog() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    let (call, tag) = confirm_call(&mut endpoint, now);

    let refer = refer_of(&mut endpoint, now, call);
    let refer_text = text(&refer);
    assert_eq!(refer.destination, peer());
    assert!(
        refer_text.starts_with("REFER sip:caller@127.0.0.1:5070;transport=UDP SIP/2.0\r\n"),
        "{refer_text}"
    );
    assert_eq!(
        header(&refer, "Refer-To").as_deref(),
        Some("<sip:queue@127.0.0.1?User-to-User=%3Bencoding%3Dhex>")
    );
    assert_eq!(
        header(&refer, "Referred-By").as_deref(),
        Some("<sip:ivr@127.0.0.1>")
    );
    assert_eq!(
        header(&refer, "Route").as_deref(),
        Some("<sip:127.0.0.1:5070;lr>")
    );
    assert_eq!(header(&refer, "CSeq").as_deref(), Some("1 REFER"));
    assert_eq!(header(&refer, "Call-ID").as_deref(), Some(CALL_ID));
    assert_eq!(
        header(&refer, "From").and_then(|from| header_param(&from, "tag")),
        Some(tag)
    );
    assert_eq!(
        header(&refer, "To")
            .and_then(|to| header_param(&to, "tag"))
            .as_deref(),
        Some(PEER_TAG)
    );
    let via = header(&refer, "Via").unwrap();
    assert!(
        via.starts_with("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK"),
        "{via}"
    );

    feed(
        &mut endpoint,
        now,
        &response_to(&refer, "SIP/2.0 202 Accepted"),
    );
    assert_eq!(
        events(&mut endpoint),
        vec![Event::TransferAccepted { call }]
    );
    feed(
        &mut endpoint,
        now,
        &response_to(&refer, "SIP/2.0 202 Accepted"),
    );
    assert!(events(&mut endpoint).is_empty());
}

#[test]
fn notify_reports_transfer_progress() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    let (call, tag) = confirm_call(&mut endpoint, now);

    let extra = "Event: refer\r\nSubscription-State: active;expires=60\r\nContent-Type: message/sipfrag\r\n";
    feed(
        &mut endpoint,
        now,
        &request(
            "NOTIFY",
            "z9hG4bKn1",
            2,
            Some(&tag),
            extra,
            "SIP/2.0 100 Trying\r\n",
        ),
    );
    assert_eq!(statuses(&transmits(&mut endpoint)), vec![200]);
    assert_eq!(
        events(&mut endpoint),
        vec![Event::TransferProgress {
            call,
            status: 100,
            final_: false
        }]
    );

    let extra = "Event: refer\r\nSubscription-State: terminated;reason=noresource\r\nContent-Type: message/sipfrag\r\n";
    feed(
        &mut endpoint,
        now,
        &request(
            "NOTIFY",
            "z9hG4bKn2",
            3,
            Some(&tag),
            extra,
            "SIP/2.0 180 Ringing\r\n",
        ),
    );
    assert_eq!(statuses(&transmits(&mut endpoint)), vec![200]);
    assert_eq!(
        events(&mut endpoint),
        vec![Event::TransferProgress {
            call,
            status: 180,
            final_: true
        }]
    );

    let extra = "Event: refer\r\nContent-Type: message/sipfrag\r\n";
    feed(
        &mut endpoint,
        now,
        &request(
            "NOTIFY",
            "z9hG4bKn3",
            4,
            Some(&tag),
            extra,
            "SIP/2.0 486 Busy Here\r\n",
        ),
    );
    assert_eq!(statuses(&transmits(&mut endpoint)), vec![200]);
    assert_eq!(
        events(&mut endpoint),
        vec![Event::TransferProgress {
            call,
            status: 486,
            final_: true
        }]
    );

    let extra = "Event: presence\r\n";
    feed(
        &mut endpoint,
        now,
        &request("NOTIFY", "z9hG4bKn4", 5, Some(&tag), extra, ""),
    );
    assert_eq!(statuses(&transmits(&mut endpoint)), vec![489]);
    assert!(events(&mut endpoint).is_empty());
}

#[test]
fn refer_rejected_reports_status() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    let (call, _) = confirm_call(&mut endpoint, now);
    let refer = refer_of(&mut endpoint, now, call);

    feed(
        &mut endpoint,
        now,
        &response_to(&refer, "SIP/2.0 100 Trying"),
    );
    assert!(events(&mut endpoint).is_empty());
    feed(
        &mut endpoint,
        now,
        &response_to(&refer, "SIP/2.0 603 Decline"),
    );
    assert_eq!(
        events(&mut endpoint),
        vec![Event::TransferRejected { call, status: 603 }]
    );
}

#[test]
fn refer_timeout_reports_408() {
    let mut endpoint = new_endpoint();
    let start = Instant::now();
    let (call, _) = confirm_call(&mut endpoint, start);
    let _ = refer_of(&mut endpoint, start, call);

    let sent = run_until(&mut endpoint, start + Duration::from_secs(60));
    let times = offsets(start, &sent);
    assert_eq!(
        times.get(..5),
        Some([500, 1_500, 3_500, 7_500, 11_500].as_slice())
    );
    assert!(sent
        .iter()
        .all(|(_, transmit)| text(transmit).starts_with("REFER ")));
    assert!(times.iter().all(|offset| *offset < 32_000));
    assert_eq!(
        events(&mut endpoint),
        vec![Event::TransferRejected { call, status: 408 }]
    );
}

#[test]
fn refer_proceeding_retransmits_every_t2() {
    let mut endpoint = new_endpoint();
    let start = Instant::now();
    let (call, _) = confirm_call(&mut endpoint, start);
    let refer = refer_of(&mut endpoint, start, call);

    feed(
        &mut endpoint,
        start,
        &response_to(&refer, "SIP/2.0 100 Trying"),
    );
    let sent = run_until(&mut endpoint, start + Duration::from_millis(9_000));
    assert_eq!(offsets(start, &sent), vec![500, 4_500, 8_500]);
}

#[test]
fn transfer_needs_confirmed_call() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    let (call, _) = answer_call(&mut endpoint, now);
    assert!(matches!(
        endpoint.transfer(now, call, "sip:q@127.0.0.1", "sip:ivr@127.0.0.1"),
        Err(EndpointError::InvalidState {
            state: "answered",
            ..
        })
    ));
    assert_eq!(
        endpoint.transfer(now, call, "<sip:q@127.0.0.1>", "sip:ivr@127.0.0.1"),
        Err(EndpointError::InvalidUri { header: "Refer-To" })
    );
    assert_eq!(
        endpoint.transfer(now, call, "sip:q@127.0.0.1", "sip:ivr@127.0.0.1\r\nX: y"),
        Err(EndpointError::InvalidUri {
            header: "Referred-By"
        })
    );
}

#[test]
fn hang_up_sends_bye_then_ends() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    let (call, _) = confirm_call(&mut endpoint, now);

    endpoint.hang_up(now, call).unwrap();
    let sent = transmits(&mut endpoint);
    assert_eq!(sent.len(), 1);
    assert!(text(&sent[0]).starts_with("BYE "));
    assert_eq!(header(&sent[0], "CSeq").as_deref(), Some("1 BYE"));
    assert!(events(&mut endpoint).is_empty());
    assert!(matches!(
        endpoint.hang_up(now, call),
        Err(EndpointError::InvalidState { .. })
    ));

    feed(&mut endpoint, now, &response_to(&sent[0], "SIP/2.0 200 OK"));
    assert_eq!(
        events(&mut endpoint),
        vec![Event::CallEnded {
            call,
            cause: EndCause::HungUp
        }]
    );
}

#[test]
fn hang_up_bye_timeout_ends_call() {
    let mut endpoint = new_endpoint();
    let start = Instant::now();
    let (call, _) = confirm_call(&mut endpoint, start);
    endpoint.hang_up(start, call).unwrap();
    let _ = transmits(&mut endpoint);

    run_until(
        &mut endpoint,
        start + TIMEOUT_64_T1 - Duration::from_millis(1),
    );
    assert!(events(&mut endpoint).is_empty());
    run_until(&mut endpoint, start + TIMEOUT_64_T1);
    assert_eq!(
        events(&mut endpoint),
        vec![Event::CallEnded {
            call,
            cause: EndCause::HungUp
        }]
    );
}

#[test]
fn hang_up_unanswered_sends_480() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    let call = offer_call(&mut endpoint, now);
    endpoint.hang_up(now, call).unwrap();
    assert_eq!(statuses(&transmits(&mut endpoint)), vec![480]);
    assert_eq!(
        events(&mut endpoint),
        vec![Event::CallEnded {
            call,
            cause: EndCause::HungUp
        }]
    );
}

#[test]
fn reinvite_is_offered_and_answered() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    let (call, tag) = confirm_call(&mut endpoint, now);

    let extra = "Contact: <sip:caller@127.0.0.1:5070>\r\nContent-Type: application/sdp\r\n";
    let hold_offer = SDP_OFFER.replace("t=0 0\r\n", "t=0 0\r\na=sendonly\r\n");
    feed(
        &mut endpoint,
        now,
        &request("INVITE", "z9hG4bKre1", 2, Some(&tag), extra, &hold_offer),
    );
    assert_eq!(statuses(&transmits(&mut endpoint)), vec![100]);
    assert_eq!(
        events(&mut endpoint),
        vec![Event::Reoffer {
            call,
            sdp: Some(hold_offer.clone().into_bytes())
        }]
    );

    let hold_answer = b"v=0\r\na=recvonly\r\n".to_vec();
    endpoint
        .answer_reoffer(now, call, hold_answer.clone())
        .unwrap();
    let sent = transmits(&mut endpoint);
    assert_eq!(statuses(&sent), vec![200]);
    assert!(sent[0].payload.ends_with(&hold_answer));
    assert_eq!(
        endpoint.answer_reoffer(now, call, hold_answer),
        Err(EndpointError::NoPendingReoffer { call })
    );

    feed(
        &mut endpoint,
        now,
        &request("ACK", "z9hG4bKack2", 2, Some(&tag), "", ""),
    );
    assert!(transmits(&mut endpoint).is_empty());
    assert_eq!(
        events(&mut endpoint),
        vec![Event::ReofferConfirmed {
            call,
            ack_sdp: None
        }]
    );
}

#[test]
fn info_in_dialog_is_reported() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    let (call, tag) = confirm_call(&mut endpoint, now);
    let extra = "Content-Type: application/dtmf-relay\r\n";
    let body = "Signal=5\r\nDuration=160\r\n";
    feed(
        &mut endpoint,
        now,
        &request("INFO", "z9hG4bKinfo", 2, Some(&tag), extra, body),
    );
    assert_eq!(statuses(&transmits(&mut endpoint)), vec![200]);
    assert_eq!(
        events(&mut endpoint),
        vec![Event::Info {
            call,
            content_type: Some("application/dtmf-relay".to_string()),
            body: body.as_bytes().to_vec(),
        }]
    );
}

#[test]
fn out_of_order_cseq_gets_500() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    let (_, tag) = confirm_call(&mut endpoint, now);
    feed(
        &mut endpoint,
        now,
        &request("INFO", "z9hG4bKi5", 5, Some(&tag), "", ""),
    );
    feed(
        &mut endpoint,
        now,
        &request("INFO", "z9hG4bKi4", 4, Some(&tag), "", ""),
    );
    assert_eq!(statuses(&transmits(&mut endpoint)), vec![200, 500]);
}

#[test]
fn invite_with_unsupported_body_gets_415() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    let message =
        invite("z9hG4bKut").replace("Content-Type: application/sdp", "Content-Type: text/plain");
    feed(&mut endpoint, now, &message);
    let sent = transmits(&mut endpoint);
    assert_eq!(statuses(&sent), vec![415]);
    assert_eq!(
        header(&sent[0], "Accept").as_deref(),
        Some("application/sdp")
    );
    assert!(events(&mut endpoint).is_empty());
}

#[test]
fn datagram_tail_after_content_length_is_ignored() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    let mut message = request("OPTIONS", "z9hG4bKtail", 1, None, "", "");
    message.push_str("OPTIONS sip:x@127.0.0.1 SIP/2.0\r\n\r\n");
    feed(&mut endpoint, now, &message);
    assert_eq!(statuses(&transmits(&mut endpoint)), vec![200]);
}

/// Expected first reply to each RFC 4475 torture message, None when it must be dropped.
const TORTURE_EXPECTATIONS: &[(&str, Option<u16>)] = &[
    // wsinv carries a To tag, so it is a request inside a dialog that does not exist here.
    ("wsinv.dat", Some(481)),
    ("intmeth.dat", Some(501)),
    ("esc01.dat", Some(100)),
    ("escnull.dat", Some(405)),
    ("esc02.dat", Some(501)),
    ("lwsdisp.dat", Some(200)),
    ("longreq.dat", Some(100)),
    ("dblreq.dat", Some(405)),
    ("semiuri.dat", Some(200)),
    ("transports.dat", Some(200)),
    // mpart01 is a MESSAGE, which an IVR does not take.
    ("mpart01.dat", Some(405)),
    ("unreason.dat", None),
    ("noreason.dat", None),
    ("badbranch.dat", Some(200)),
    ("novelsc.dat", Some(416)),
    ("unksm2.dat", Some(405)),
    ("zeromf.dat", Some(200)),
    ("cparam01.dat", Some(405)),
    ("cparam02.dat", Some(405)),
    ("regescrt.dat", Some(405)),
    ("regaut01.dat", Some(405)),
    ("inv2543.dat", Some(100)),
    ("badinv01.dat", Some(400)),
    ("clerr.dat", Some(400)),
    ("ncl.dat", Some(400)),
    ("scalar02.dat", Some(400)),
    ("scalarlg.dat", None),
    ("quotbal.dat", Some(400)),
    ("ltgtruri.dat", Some(400)),
    ("lwsruri.dat", Some(400)),
    ("lwsstart.dat", Some(400)),
    ("trws.dat", Some(400)),
    ("escruri.dat", Some(400)),
    ("baddate.dat", Some(400)),
    ("regbadct.dat", Some(400)),
    ("badaspec.dat", Some(400)),
    ("baddn.dat", Some(400)),
    ("badvers.dat", Some(505)),
    ("mismatch01.dat", Some(400)),
    ("mismatch02.dat", Some(400)),
    ("bigcode.dat", None),
    ("insuf.dat", Some(400)),
    ("unkscm.dat", Some(416)),
    ("bext01.dat", Some(420)),
    ("invut.dat", Some(415)),
    ("multi01.dat", Some(400)),
    ("mcl01.dat", Some(400)),
    ("sdp01.dat", Some(406)),
    ("bcast.dat", None),
];

#[test]
fn rfc4475_torture_messages() {
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/sip/testdata/rfc4475");
    let mut files: Vec<_> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "dat"))
        .collect();
    files.sort();
    assert_eq!(files.len(), TORTURE_EXPECTATIONS.len());

    let mut failures = Vec::new();
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let datagram = std::fs::read(&path).unwrap();
        let mut endpoint = new_endpoint();
        let now = Instant::now();
        endpoint.handle_datagram(now, peer(), &datagram);

        let first = transmits(&mut endpoint).first().map(status);
        let expected = TORTURE_EXPECTATIONS
            .iter()
            .find(|(file, _)| *file == name)
            .map(|(_, status)| *status);
        if expected != Some(first) {
            failures.push(format!("{name}: expected {expected:?}, got {first:?}"));
        }

        // The endpoint still responds 200 to a plain OPTIONS afterwards.
        feed(
            &mut endpoint,
            now,
            &request("OPTIONS", "z9hG4bKafter", 1, None, "", ""),
        );
        let after = transmits(&mut endpoint);
        if statuses(&after) != vec![200] {
            failures.push(format!(
                "{name}: OPTIONS afterwards got {:?}",
                statuses(&after)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn truncated_torture_messages_do_not_panic() {
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/sip/testdata/rfc4475");
    let now = Instant::now();
    for entry in std::fs::read_dir(&folder).unwrap() {
        let datagram = std::fs::read(entry.unwrap().path()).unwrap();
        let mut endpoint = new_endpoint();
        for cut in (0..datagram.len()).step_by(7) {
            endpoint.handle_datagram(now, peer(), datagram.get(..cut).unwrap());
            let _ = transmits(&mut endpoint);
            let _ = events(&mut endpoint);
        }
    }
}
