//! Transactions and dialogs beyond the basic call: merged requests, late
//! offer, re-INVITE races, session timers, Require and Replaces.

use super::*;

/// Builds an INVITE from `invite(branch)` with `extra` headers added and the
/// SDP body removed when `with_offer` is false.
fn invite_with(branch: &str, extra: &str, with_offer: bool) -> String {
    let mut message =
        invite(branch).replace("Privacy: none\r\n", &format!("Privacy: none\r\n{extra}"));
    if !with_offer {
        let header_end = message.find("\r\n\r\n").unwrap();
        message.truncate(header_end + 4);
        message = message
            .replace("Content-Type: application/sdp\r\n", "")
            .replace(
                &format!("Content-Length: {}", SDP_OFFER.len()),
                "Content-Length: 0",
            );
    }
    message
}

fn reinvite(branch: &str, cseq: u32, tag: &str, extra: &str, body: &str) -> String {
    let content_type = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    request(
        "INVITE",
        branch,
        cseq,
        Some(tag),
        &format!("Contact: <sip:caller@127.0.0.1:5070>\r\n{content_type}{extra}"),
        body,
    )
}

#[test]
fn merged_invite_gets_482() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    let call = offer_call(&mut endpoint, now);

    feed(&mut endpoint, now, &invite("z9hG4bKinvite2"));
    assert_eq!(statuses(&transmits(&mut endpoint)), vec![482]);
    assert!(events(&mut endpoint).is_empty());

    endpoint
        .accept_call(now, call, SDP_ANSWER.to_vec())
        .unwrap();
    assert_eq!(statuses(&transmits(&mut endpoint)), vec![200]);
}

#[test]
fn late_offer_answer_arrives_in_ack() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    feed(&mut endpoint, now, &invite_with("z9hG4bKlate", "", false));
    assert_eq!(statuses(&transmits(&mut endpoint)), vec![100]);
    let received = events(&mut endpoint);
    let [Event::IncomingCall(incoming)] = received.as_slice() else {
        panic!("expected one IncomingCall, got {received:?}");
    };
    assert_eq!(incoming.sdp_offer, None);
    let call = incoming.call;

    let our_offer = SDP_ANSWER.to_vec();
    endpoint.accept_call(now, call, our_offer.clone()).unwrap();
    let sent = transmits(&mut endpoint);
    assert_eq!(statuses(&sent), vec![200]);
    assert!(sent[0].payload.ends_with(&our_offer));
    let tag = header_param(&header(&sent[0], "To").unwrap(), "tag").unwrap();

    let ack = request(
        "ACK",
        "z9hG4bKack",
        1,
        Some(&tag),
        "Content-Type: application/sdp\r\n",
        SDP_OFFER,
    );
    feed(&mut endpoint, now, &ack);
    assert_eq!(
        events(&mut endpoint),
        vec![Event::CallConfirmed {
            call,
            ack_sdp: Some(SDP_OFFER.as_bytes().to_vec())
        }]
    );
}

#[test]
fn reinvite_without_offer_gets_answer_in_ack() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    let (call, tag) = confirm_call(&mut endpoint, now);

    feed(&mut endpoint, now, &reinvite("z9hG4bKre", 2, &tag, "", ""));
    assert_eq!(statuses(&transmits(&mut endpoint)), vec![100]);
    assert_eq!(
        events(&mut endpoint),
        vec![Event::Reoffer { call, sdp: None }]
    );

    endpoint
        .answer_reoffer(now, call, SDP_ANSWER.to_vec())
        .unwrap();
    assert_eq!(statuses(&transmits(&mut endpoint)), vec![200]);
    let ack = request(
        "ACK",
        "z9hG4bKack2",
        2,
        Some(&tag),
        "Content-Type: application/sdp\r\n",
        SDP_OFFER,
    );
    feed(&mut endpoint, now, &ack);
    assert_eq!(
        events(&mut endpoint),
        vec![Event::ReofferConfirmed {
            call,
            ack_sdp: Some(SDP_OFFER.as_bytes().to_vec())
        }]
    );
}

#[test]
fn second_reinvite_while_pending_gets_500() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    let (_, tag) = confirm_call(&mut endpoint, now);

    feed(
        &mut endpoint,
        now,
        &reinvite("z9hG4bKre1", 2, &tag, "", SDP_OFFER),
    );
    assert_eq!(statuses(&transmits(&mut endpoint)), vec![100]);
    let _ = events(&mut endpoint);

    feed(
        &mut endpoint,
        now,
        &reinvite("z9hG4bKre2", 3, &tag, "", SDP_OFFER),
    );
    let sent = transmits(&mut endpoint);
    assert_eq!(statuses(&sent), vec![500]);
    assert_eq!(header(&sent[0], "Retry-After").as_deref(), Some("1"));
    assert!(events(&mut endpoint).is_empty());
}

#[test]
fn cancelled_reinvite_keeps_call() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    let (call, tag) = confirm_call(&mut endpoint, now);

    feed(
        &mut endpoint,
        now,
        &reinvite("z9hG4bKre1", 2, &tag, "", SDP_OFFER),
    );
    let _ = transmits(&mut endpoint);
    let _ = events(&mut endpoint);

    feed(
        &mut endpoint,
        now,
        &request("CANCEL", "z9hG4bKre1", 2, Some(&tag), "", ""),
    );
    let sent = transmits(&mut endpoint);
    assert_eq!(statuses(&sent), vec![200, 487]);
    assert!(events(&mut endpoint).is_empty(), "the call goes on");
    assert_eq!(
        endpoint.answer_reoffer(now, call, SDP_ANSWER.to_vec()),
        Err(EndpointError::NoPendingReoffer { call })
    );

    endpoint
        .transfer(now, call, "sip:agents@127.0.0.1", "sip:ivr@127.0.0.1")
        .unwrap();
    let refer = transmits(&mut endpoint);
    assert_eq!(refer.len(), 1);
    assert!(text(&refer[0]).starts_with("REFER "));
}

#[test]
fn bye_fails_pending_reinvite_with_487() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    let (call, tag) = confirm_call(&mut endpoint, now);

    feed(
        &mut endpoint,
        now,
        &reinvite("z9hG4bKre1", 2, &tag, "", SDP_OFFER),
    );
    let _ = transmits(&mut endpoint);
    let _ = events(&mut endpoint);

    feed(
        &mut endpoint,
        now,
        &request("BYE", "z9hG4bKbye", 3, Some(&tag), "", ""),
    );
    let sent = transmits(&mut endpoint);
    assert_eq!(statuses(&sent), vec![200, 487]);
    assert_eq!(header(&sent[1], "CSeq").as_deref(), Some("2 INVITE"));
    assert_eq!(
        events(&mut endpoint),
        vec![Event::CallEnded {
            call,
            cause: EndCause::ByeReceived
        }]
    );
}

#[test]
fn session_timer_sends_bye_without_refresh() {
    let mut endpoint = new_endpoint();
    let start = Instant::now();
    let extra = "Supported: timer\r\nSession-Expires: 90\r\n";
    feed(&mut endpoint, start, &invite_with("z9hG4bKst", extra, true));
    assert_eq!(statuses(&transmits(&mut endpoint)), vec![100]);
    let Some(Event::IncomingCall(incoming)) = events(&mut endpoint).pop() else {
        panic!("expected IncomingCall");
    };
    let call = incoming.call;

    endpoint
        .accept_call(start, call, SDP_ANSWER.to_vec())
        .unwrap();
    let sent = transmits(&mut endpoint);
    assert_eq!(
        header(&sent[0], "Session-Expires").as_deref(),
        Some("90;refresher=uac")
    );
    assert_eq!(header(&sent[0], "Require").as_deref(), Some("timer"));
    let tag = header_param(&header(&sent[0], "To").unwrap(), "tag").unwrap();
    feed(
        &mut endpoint,
        start,
        &request("ACK", "z9hG4bKack", 1, Some(&tag), "", ""),
    );
    let _ = events(&mut endpoint);

    // RFC 4028 §10: BYE at 90 s less min(32 s, 30 s) = 60 s.
    let sent = run_until(&mut endpoint, start + Duration::from_secs(59));
    assert!(sent.is_empty());
    let sent = run_until(&mut endpoint, start + Duration::from_secs(60));
    assert_eq!(sent.len(), 1);
    assert!(text(&sent[0].1).starts_with("BYE "));
    assert_eq!(
        events(&mut endpoint),
        vec![Event::CallEnded {
            call,
            cause: EndCause::SessionExpired
        }]
    );
}

/// Accepts a call whose INVITE has `extra` headers at `start`, and returns
/// the endpoint and the Session-Expires of the 2xx it sent.
fn accept_with_headers(extra: &str, start: Instant) -> (Endpoint, Option<String>) {
    let mut endpoint = new_endpoint();
    feed(
        &mut endpoint,
        start,
        &invite_with("z9hG4bKgrant", extra, true),
    );
    let _ = transmits(&mut endpoint);
    let Some(Event::IncomingCall(incoming)) = events(&mut endpoint).pop() else {
        panic!("expected IncomingCall");
    };

    endpoint
        .accept_call(start, incoming.call, SDP_ANSWER.to_vec())
        .unwrap();

    let session_expires = header(&transmits(&mut endpoint)[0], "Session-Expires");
    (endpoint, session_expires)
}

/// Returns the Session-Expires of the 2xx sent for an INVITE with `extra`
/// headers.
fn granted_session_expires(extra: &str) -> Option<String> {
    accept_with_headers(extra, Instant::now()).1
}

#[test]
fn session_timer_lowers_huge_interval() {
    let start = Instant::now();
    let extra = "Supported: timer\r\nSession-Expires: 18446744073709551615\r\n";

    let (mut endpoint, session_expires) = accept_with_headers(extra, start);

    assert_eq!(session_expires.as_deref(), Some("1800;refresher=uac"));
    assert!(endpoint
        .poll_timeout()
        .is_some_and(|deadline| deadline <= start + Duration::from_secs(1800)));
}

#[test]
fn session_timer_keeps_min_se() {
    let extra = "Supported: timer\r\nSession-Expires: 7200\r\nMin-SE: 3600\r\n";

    assert_eq!(
        granted_session_expires(extra).as_deref(),
        Some("3600;refresher=uac")
    );
}

#[test]
fn session_timer_lowers_overlong_digits() {
    let extra = "Supported: timer\r\nSession-Expires: 99999999999999999999999999\r\n";

    assert_eq!(
        granted_session_expires(extra).as_deref(),
        Some("1800;refresher=uac")
    );
}

#[test]
fn session_refresh_postpones_expiry() {
    let mut endpoint = new_endpoint();
    let start = Instant::now();
    let extra = "Supported: timer\r\nSession-Expires: 90;refresher=uac\r\n";
    feed(&mut endpoint, start, &invite_with("z9hG4bKst", extra, true));
    let _ = transmits(&mut endpoint);
    let Some(Event::IncomingCall(incoming)) = events(&mut endpoint).pop() else {
        panic!("expected IncomingCall");
    };
    let call = incoming.call;
    endpoint
        .accept_call(start, call, SDP_ANSWER.to_vec())
        .unwrap();
    let sent = transmits(&mut endpoint);
    let tag = header_param(&header(&sent[0], "To").unwrap(), "tag").unwrap();
    feed(
        &mut endpoint,
        start,
        &request("ACK", "z9hG4bKack", 1, Some(&tag), "", ""),
    );
    let _ = events(&mut endpoint);

    let refresh_at = start + Duration::from_secs(45);
    feed(
        &mut endpoint,
        refresh_at,
        &reinvite("z9hG4bKrefresh", 2, &tag, extra, SDP_OFFER),
    );
    let _ = transmits(&mut endpoint);
    let _ = events(&mut endpoint);
    endpoint
        .answer_reoffer(refresh_at, call, SDP_ANSWER.to_vec())
        .unwrap();
    let sent = transmits(&mut endpoint);
    assert_eq!(
        header(&sent[0], "Session-Expires").as_deref(),
        Some("90;refresher=uac")
    );
    feed(
        &mut endpoint,
        refresh_at,
        &request("ACK", "z9hG4bKack2", 2, Some(&tag), "", ""),
    );
    let _ = events(&mut endpoint);

    let sent = run_until(&mut endpoint, start + Duration::from_secs(104));
    assert!(sent.is_empty(), "the refresh moved the expiry to 105 s");
    let sent = run_until(&mut endpoint, start + Duration::from_secs(105));
    assert!(text(&sent[0].1).starts_with("BYE "));
}

#[test]
fn small_session_expires_gets_422() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    let extra = "Supported: timer\r\nSession-Expires: 30\r\n";
    feed(&mut endpoint, now, &invite_with("z9hG4bKst", extra, true));
    let sent = transmits(&mut endpoint);
    assert_eq!(statuses(&sent), vec![422]);
    assert_eq!(header(&sent[0], "Min-SE").as_deref(), Some("90"));
    assert!(events(&mut endpoint).is_empty());
}

#[test]
fn require_timer_is_supported() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    let extra = "Require: timer\r\nSupported: timer\r\nSession-Expires: 1800\r\n";
    feed(&mut endpoint, now, &invite_with("z9hG4bKreq", extra, true));
    assert_eq!(statuses(&transmits(&mut endpoint)), vec![100]);
    assert_eq!(events(&mut endpoint).len(), 1);
}

#[test]
fn require_unknown_lists_only_unsupported() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    let call = offer_call(&mut endpoint, now);

    let extra = "Require: 100rel, timer\r\nSupported: timer\r\n";
    let other = invite_with("z9hG4bKreq", extra, true).replace(CALL_ID, "other-call");
    feed(&mut endpoint, now, &other);
    let sent = transmits(&mut endpoint);
    assert_eq!(statuses(&sent), vec![420]);
    assert_eq!(header(&sent[0], "Unsupported").as_deref(), Some("100rel"));
    assert!(events(&mut endpoint).is_empty());

    endpoint
        .accept_call(now, call, SDP_ANSWER.to_vec())
        .unwrap();
    assert_eq!(
        statuses(&transmits(&mut endpoint)),
        vec![200],
        "the first call is untouched"
    );
}

#[test]
fn replaces_without_dialog_gets_481() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    let extra = "Replaces: nothing@127.0.0.1;to-tag=a;from-tag=b\r\n";
    feed(&mut endpoint, now, &invite_with("z9hG4bKrep", extra, true));
    assert_eq!(statuses(&transmits(&mut endpoint)), vec![481]);
    assert!(events(&mut endpoint).is_empty());
}

#[test]
fn replaces_of_our_call_is_declined() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    let (call, tag) = confirm_call(&mut endpoint, now);

    let extra = format!("Replaces: {CALL_ID};to-tag={tag};from-tag={PEER_TAG}\r\n");
    let replacing = invite_with("z9hG4bKrep", &extra, true)
        .replace(CALL_ID, "replacing-call")
        .replace(
            "Replaces: replacing-call;",
            &format!("Replaces: {CALL_ID};"),
        );
    feed(&mut endpoint, now, &replacing);
    assert_eq!(statuses(&transmits(&mut endpoint)), vec![603]);
    assert!(events(&mut endpoint).is_empty());

    // The replaced call is untouched: it still transfers.
    endpoint
        .transfer(now, call, "sip:agents@127.0.0.1", "sip:ivr@127.0.0.1")
        .unwrap();
    assert_eq!(transmits(&mut endpoint).len(), 1);
}

#[test]
fn rejected_reoffer_gets_488_and_keeps_call() {
    let mut endpoint = new_endpoint();
    let start = Instant::now();
    let (call, tag) = confirm_call(&mut endpoint, start);
    let garbage = "this is not SDP\r\n";

    feed(
        &mut endpoint,
        start,
        &reinvite("z9hG4bKbadre", 2, &tag, "", garbage),
    );
    assert_eq!(statuses(&transmits(&mut endpoint)), vec![100]);
    assert_eq!(
        events(&mut endpoint),
        vec![Event::Reoffer {
            call,
            sdp: Some(garbage.as_bytes().to_vec())
        }]
    );

    endpoint.reject_reoffer(start, call, 488).unwrap();
    let sent = transmits(&mut endpoint);
    assert_eq!(statuses(&sent), vec![488]);
    assert_eq!(header(&sent[0], "CSeq").as_deref(), Some("2 INVITE"));
    assert_eq!(
        header(&sent[0], "To").and_then(|to| header_param(&to, "tag")),
        Some(tag.clone())
    );
    assert!(events(&mut endpoint).is_empty(), "the call does not end");
    assert_eq!(
        endpoint.reject_reoffer(start, call, 488),
        Err(EndpointError::NoPendingReoffer { call })
    );

    // Over UDP the 488 is retransmitted on Timer G until the ACK.
    let sent = run_until(&mut endpoint, start + Duration::from_millis(1_500));
    assert_eq!(offsets(start, &sent), vec![500, 1_500]);
    assert!(sent.iter().all(|(_, transmit)| status(transmit) == 488));

    // The ACK for a non-2xx reuses the re-INVITE's branch and is absorbed.
    let acked_at = start + Duration::from_millis(1_500);
    feed(
        &mut endpoint,
        acked_at,
        &request("ACK", "z9hG4bKbadre", 2, Some(&tag), "", ""),
    );
    assert!(transmits(&mut endpoint).is_empty());
    assert!(events(&mut endpoint).is_empty());
    assert!(run_until(&mut endpoint, start + Duration::from_secs(60)).is_empty());

    // The dialog goes on and takes the next re-INVITE.
    let later = start + Duration::from_secs(60);
    feed(
        &mut endpoint,
        later,
        &reinvite("z9hG4bKgoodre", 3, &tag, "", SDP_OFFER),
    );
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
fn reject_reoffer_checks_status_and_state() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    let (call, tag) = confirm_call(&mut endpoint, now);
    assert_eq!(
        endpoint.reject_reoffer(now, call, 488),
        Err(EndpointError::NoPendingReoffer { call })
    );

    feed(
        &mut endpoint,
        now,
        &reinvite("z9hG4bKre", 2, &tag, "", SDP_OFFER),
    );
    let _ = transmits(&mut endpoint);
    let _ = events(&mut endpoint);
    assert_eq!(
        endpoint.reject_reoffer(now, call, 200),
        Err(EndpointError::InvalidRejectStatus { status: 200 })
    );
    let unknown = CallHandle(999);
    assert_eq!(
        endpoint.reject_reoffer(now, unknown, 488),
        Err(EndpointError::UnknownCall { call: unknown })
    );
    assert!(transmits(&mut endpoint).is_empty());
}
