//! In-dialog requests, and ACK and CANCEL of our INVITE transactions, from
//! a source other than the IP the dialog's INVITE came from.

use super::*;
use crate::sip::edge::UntrustedAction;

/// A host outside the trusted peers that learned the call's Call-ID and tags.
const FOREIGN: &str = "127.0.0.2:5070";

fn foreign() -> SocketAddr {
    FOREIGN.parse().unwrap()
}

fn feed_from_foreign(endpoint: &mut Endpoint, now: Instant, message: &str) {
    endpoint.handle_datagram(now, foreign(), message.as_bytes());
}

fn dropping_policy() -> EdgePolicy {
    EdgePolicy {
        untrusted_action: UntrustedAction::Drop,
        ..trusting_policy()
    }
}

fn dtmf_info(branch: &str, cseq: u32, tag: &str) -> String {
    let extra = "Content-Type: application/dtmf-relay\r\n";
    request(
        "INFO",
        branch,
        cseq,
        Some(tag),
        extra,
        "Signal=5\r\nDuration=160\r\n",
    )
}

#[test]
fn foreign_info_gets_403() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    let (call, tag) = confirm_call(&mut endpoint, now);

    feed_from_foreign(&mut endpoint, now, &dtmf_info("z9hG4bKfinfo", 2, &tag));
    let sent = transmits(&mut endpoint);
    assert_eq!(statuses(&sent), vec![403]);
    assert_eq!(sent[0].destination, foreign());
    assert!(events(&mut endpoint).is_empty(), "no fake DTMF");
    assert_eq!(endpoint.edge_counters().foreign_in_dialog, 1);

    feed(&mut endpoint, now, &dtmf_info("z9hG4bKinfo", 2, &tag));
    assert_eq!(statuses(&transmits(&mut endpoint)), vec![200]);
    let received = events(&mut endpoint);
    assert!(
        matches!(received.as_slice(), [Event::Info { call: info_call, .. }] if *info_call == call),
        "the peer's own INFO still arrives: {received:?}"
    );
}

#[test]
fn foreign_bye_keeps_call() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    let (call, tag) = confirm_call(&mut endpoint, now);

    let forged = request("BYE", "z9hG4bKfbye", 2, Some(&tag), "", "");
    feed_from_foreign(&mut endpoint, now, &forged);
    assert_eq!(statuses(&transmits(&mut endpoint)), vec![403]);
    assert!(events(&mut endpoint).is_empty(), "the call goes on");

    let bye = request("BYE", "z9hG4bKbye", 2, Some(&tag), "", "");
    feed(&mut endpoint, now, &bye);
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
fn foreign_reinvite_is_not_offered() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    let (call, tag) = confirm_call(&mut endpoint, now);
    let extra = "Contact: <sip:caller@127.0.0.2:5070>\r\nContent-Type: application/sdp\r\n";
    let redirect = SDP_OFFER.replace("127.0.0.1", "127.0.0.2");

    let forged = request("INVITE", "z9hG4bKfre", 2, Some(&tag), extra, &redirect);
    feed_from_foreign(&mut endpoint, now, &forged);
    let sent = transmits(&mut endpoint);
    assert_eq!(statuses(&sent), vec![403]);
    assert_eq!(header(&sent[0], "CSeq").as_deref(), Some("2 INVITE"));
    assert!(events(&mut endpoint).is_empty(), "no Reoffer, RTP stays");

    // The ACK for the 403 ends its transaction and is never answered.
    let ack = request("ACK", "z9hG4bKfre", 2, Some(&tag), "", "");
    feed_from_foreign(&mut endpoint, now, &ack);
    assert!(transmits(&mut endpoint).is_empty());
    assert!(events(&mut endpoint).is_empty());

    // The dialog is not left busy: the peer's own re-INVITE is offered.
    let own = request("INVITE", "z9hG4bKre", 2, Some(&tag), extra, SDP_OFFER);
    feed(&mut endpoint, now, &own);
    assert_eq!(statuses(&transmits(&mut endpoint)), vec![100]);
    assert_eq!(
        events(&mut endpoint),
        vec![Event::Reoffer {
            call,
            sdp: Some(SDP_OFFER.as_bytes().to_vec())
        }]
    );
}

#[test]
fn foreign_notify_is_not_reported() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    let (_, tag) = confirm_call(&mut endpoint, now);
    let extra =
        "Event: refer\r\nSubscription-State: terminated\r\nContent-Type: message/sipfrag\r\n";

    let forged = request(
        "NOTIFY",
        "z9hG4bKfnotify",
        2,
        Some(&tag),
        extra,
        "SIP/2.0 200 OK\r\n",
    );
    feed_from_foreign(&mut endpoint, now, &forged);
    assert_eq!(statuses(&transmits(&mut endpoint)), vec![403]);
    assert!(events(&mut endpoint).is_empty(), "no TransferProgress");
}

#[test]
fn foreign_cancel_keeps_offered_call() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    let call = offer_call(&mut endpoint, now);

    let forged = request("CANCEL", "z9hG4bKinvite1", 1, None, "", "");
    feed_from_foreign(&mut endpoint, now, &forged);
    assert_eq!(statuses(&transmits(&mut endpoint)), vec![403]);
    assert!(events(&mut endpoint).is_empty());

    endpoint
        .accept_call(now, call, SDP_ANSWER.to_vec())
        .expect("the call was not cancelled");
    assert_eq!(statuses(&transmits(&mut endpoint)), vec![200]);
}

#[test]
fn foreign_ack_does_not_confirm() {
    let mut endpoint = new_endpoint();
    let start = Instant::now();
    let (call, tag) = answer_call(&mut endpoint, start);

    let ack = request("ACK", "z9hG4bKfack", 1, Some(&tag), "", "");
    feed_from_foreign(&mut endpoint, start, &ack);
    assert!(transmits(&mut endpoint).is_empty());
    assert!(events(&mut endpoint).is_empty());
    assert_eq!(endpoint.edge_counters().foreign_in_dialog, 1);

    // The 2xx is still retransmitted to the peer.
    let sent = run_until(&mut endpoint, start + T1);
    assert_eq!(sent.len(), 1);
    assert_eq!(status(&sent[0].1), 200);
    assert_eq!(sent[0].1.destination, peer());

    feed(&mut endpoint, start + T1, &ack);
    assert_eq!(
        events(&mut endpoint),
        vec![Event::CallConfirmed {
            call,
            ack_sdp: None
        }]
    );
}

#[test]
fn foreign_requests_dropped_under_drop() {
    let mut endpoint = endpoint_with(dropping_policy());
    let now = Instant::now();
    let (call, tag) = confirm_call(&mut endpoint, now);

    feed_from_foreign(&mut endpoint, now, &dtmf_info("z9hG4bKfinfo", 2, &tag));
    let forged = request("BYE", "z9hG4bKfbye", 3, Some(&tag), "", "");
    feed_from_foreign(&mut endpoint, now, &forged);
    assert!(transmits(&mut endpoint).is_empty());
    assert!(events(&mut endpoint).is_empty());
    assert_eq!(endpoint.edge_counters().foreign_in_dialog, 2);

    let bye = request("BYE", "z9hG4bKbye", 2, Some(&tag), "", "");
    feed(&mut endpoint, now, &bye);
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
fn trusted_pool_member_may_send_in_dialog() {
    let mut endpoint = endpoint_with(EdgePolicy {
        trusted_peers: vec!["127.0.0.0/29".parse().unwrap()],
        ..EdgePolicy::default()
    });
    let now = Instant::now();
    let (call, tag) = confirm_call(&mut endpoint, now);

    let bye = request("BYE", "z9hG4bKpoolbye", 2, Some(&tag), "", "");
    feed_from_foreign(&mut endpoint, now, &bye);
    assert_eq!(statuses(&transmits(&mut endpoint)), vec![200]);
    assert_eq!(
        events(&mut endpoint),
        vec![Event::CallEnded {
            call,
            cause: EndCause::ByeReceived
        }]
    );
    assert_eq!(endpoint.edge_counters().foreign_in_dialog, 0);
}
