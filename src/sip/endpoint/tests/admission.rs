//! The edge policy applied to received messages: trusted peers, rate
//! limits, scanners, call limit, draining and message size.

use super::*;
use crate::sip::edge::{RateLimit, UntrustedAction};

fn options(branch: &str, extra: &str) -> String {
    request("OPTIONS", branch, 1, None, extra, "")
}

fn policy_trusting_10_slash_8() -> EdgePolicy {
    EdgePolicy {
        trusted_peers: vec!["10.0.0.0/8".parse().unwrap()],
        ..EdgePolicy::default()
    }
}

#[test]
fn untrusted_invite_gets_403() {
    let mut endpoint = endpoint_with(policy_trusting_10_slash_8());
    let now = Instant::now();
    feed(&mut endpoint, now, &invite("z9hG4bKu1"));
    assert_eq!(statuses(&transmits(&mut endpoint)), vec![403]);
    assert!(events(&mut endpoint).is_empty());
    assert_eq!(endpoint.edge_counters().untrusted_rejected, 1);

    feed(&mut endpoint, now, &options("z9hG4bKo1", ""));
    assert_eq!(
        statuses(&transmits(&mut endpoint)),
        vec![200],
        "Reject answers OPTIONS as usual"
    );
}

#[test]
fn untrusted_drop_sends_nothing() {
    let mut endpoint = endpoint_with(EdgePolicy {
        untrusted_action: UntrustedAction::Drop,
        ..policy_trusting_10_slash_8()
    });
    let now = Instant::now();
    feed(&mut endpoint, now, &invite("z9hG4bKu1"));
    feed(&mut endpoint, now, &options("z9hG4bKo1", ""));
    feed(
        &mut endpoint,
        now,
        &request("BYE", "z9hG4bKb1", 2, Some("guessed"), "", ""),
    );
    assert!(transmits(&mut endpoint).is_empty());
    assert!(events(&mut endpoint).is_empty());
    assert_eq!(endpoint.edge_counters().untrusted_dropped, 3);
}

#[test]
fn trusted_peer_with_drop_policy_calls() {
    let mut endpoint = endpoint_with(EdgePolicy {
        untrusted_action: UntrustedAction::Drop,
        ..trusting_policy()
    });
    let now = Instant::now();
    let (call, tag) = confirm_call(&mut endpoint, now);
    feed(
        &mut endpoint,
        now,
        &request("BYE", "z9hG4bKbye", 2, Some(&tag), "", ""),
    );
    assert_eq!(statuses(&transmits(&mut endpoint)), vec![200]);
    assert_eq!(
        events(&mut endpoint),
        vec![Event::CallEnded {
            call,
            cause: EndCause::ByeReceived
        }]
    );
}

#[test]
fn scanner_user_agent_is_dropped() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    for agent in ["friendly-scanner", "sipcli/v1.8", "VaxSIPUserAgent/3.1"] {
        feed(
            &mut endpoint,
            now,
            &options("z9hG4bKs1", &format!("User-Agent: {agent}\r\n")),
        );
    }
    assert!(transmits(&mut endpoint).is_empty());
    assert_eq!(endpoint.edge_counters().scanners_dropped, 3);

    feed(
        &mut endpoint,
        now,
        &options("z9hG4bKs2", "User-Agent: Asterisk PBX 20\r\n"),
    );
    assert_eq!(statuses(&transmits(&mut endpoint)), vec![200]);
}

#[test]
fn rate_limit_drops_excess_requests() {
    let mut endpoint = endpoint_with(EdgePolicy {
        untrusted_rate: RateLimit {
            requests_per_second: 1.0,
            burst: 3,
        },
        ..policy_trusting_10_slash_8()
    });
    let start = Instant::now();
    for index in 0..5 {
        feed(
            &mut endpoint,
            start,
            &options(&format!("z9hG4bKr{index}"), ""),
        );
    }
    assert_eq!(statuses(&transmits(&mut endpoint)), vec![200, 200, 200]);
    assert_eq!(endpoint.edge_counters().rate_limited, 2);

    let later = start + Duration::from_secs(1);
    feed(&mut endpoint, later, &options("z9hG4bKr9", ""));
    assert_eq!(statuses(&transmits(&mut endpoint)), vec![200]);
}

#[test]
fn trusted_peer_gets_its_whole_burst() {
    let mut endpoint = endpoint_with(EdgePolicy {
        trusted_rate: RateLimit {
            requests_per_second: 1.0,
            burst: 100,
        },
        untrusted_rate: RateLimit {
            requests_per_second: 1.0,
            burst: 1,
        },
        ..trusting_policy()
    });
    let now = Instant::now();
    for index in 0..100 {
        feed(
            &mut endpoint,
            now,
            &options(&format!("z9hG4bKt{index}"), ""),
        );
    }
    assert_eq!(transmits(&mut endpoint).len(), 100);
    assert_eq!(endpoint.edge_counters().rate_limited, 0);
}

#[test]
fn call_limit_gets_503_with_retry_after() {
    let mut endpoint = endpoint_with(EdgePolicy {
        max_concurrent_calls: 1,
        ..trusting_policy()
    });
    let now = Instant::now();
    let call = offer_call(&mut endpoint, now);

    let second = invite("z9hG4bKsecond").replace(CALL_ID, "call-2@127.0.0.1");
    feed(&mut endpoint, now, &second);
    let sent = transmits(&mut endpoint);
    assert_eq!(statuses(&sent), vec![503]);
    assert_eq!(header(&sent[0], "Retry-After").as_deref(), Some("30"));
    assert!(events(&mut endpoint).is_empty());
    assert_eq!(endpoint.edge_counters().over_capacity, 1);

    endpoint.reject_call(now, call, 486).unwrap();
    let _ = transmits(&mut endpoint);
    let _ = events(&mut endpoint);
    let third = invite("z9hG4bKthird").replace(CALL_ID, "call-3@127.0.0.1");
    feed(&mut endpoint, now, &third);
    assert_eq!(statuses(&transmits(&mut endpoint)), vec![100]);
}

#[test]
fn draining_gets_503_and_keeps_calls() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    let (call, tag) = confirm_call(&mut endpoint, now);
    endpoint.set_draining(true);

    let second = invite("z9hG4bKsecond").replace(CALL_ID, "call-2@127.0.0.1");
    feed(&mut endpoint, now, &second);
    let sent = transmits(&mut endpoint);
    assert_eq!(statuses(&sent), vec![503]);
    assert_eq!(header(&sent[0], "Retry-After").as_deref(), Some("30"));
    assert_eq!(endpoint.edge_counters().draining_rejected, 1);

    feed(
        &mut endpoint,
        now,
        &request("BYE", "z9hG4bKbye", 2, Some(&tag), "", ""),
    );
    assert_eq!(statuses(&transmits(&mut endpoint)), vec![200]);
    assert_eq!(
        events(&mut endpoint),
        vec![Event::CallEnded {
            call,
            cause: EndCause::ByeReceived
        }]
    );
}

#[test]
fn oversized_message_is_dropped() {
    let mut endpoint = endpoint_with(EdgePolicy {
        max_message_bytes: 300,
        ..trusting_policy()
    });
    let now = Instant::now();
    feed(&mut endpoint, now, &invite("z9hG4bKbig"));
    assert!(transmits(&mut endpoint).is_empty());
    assert_eq!(endpoint.edge_counters().oversized, 1);
}

#[test]
fn remote_party_id_is_surfaced() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    let message = invite("z9hG4bKrpid").replace(
        "Privacy: none\r\n",
        "Privacy: none\r\nRemote-Party-ID: <sip:+31612345678@127.0.0.1>;party=calling;screen=yes\r\n",
    );
    feed(&mut endpoint, now, &message);
    let received = events(&mut endpoint);
    let [Event::IncomingCall(incoming)] = received.as_slice() else {
        panic!("expected one IncomingCall, got {received:?}");
    };
    assert_eq!(
        incoming.remote_party_id,
        vec!["<sip:+31612345678@127.0.0.1>;party=calling;screen=yes"]
    );
    assert_eq!(incoming.transport, Transport::Udp);
}
