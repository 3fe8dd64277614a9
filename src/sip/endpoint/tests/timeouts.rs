//! `poll_timeout` against the scan of every transaction and call that it
//! replaced: right after arming, after a transaction or call ends, and over
//! a long pseudo-random run of calls, commands and timeouts.

use super::*;
use crate::sip::timer::REBUILD_MIN_ENTRIES;

/// Asserts that `poll_timeout` returns `expected` and agrees with the scan.
fn assert_next_deadline(endpoint: &mut Endpoint, expected: Option<Instant>) {
    let scanned = endpoint.poll_timeout_by_scan();
    assert_eq!(endpoint.poll_timeout(), expected);
    assert_eq!(scanned, expected, "the scan disagrees with the expectation");
}

#[test]
fn poll_timeout_right_after_arming() {
    let mut endpoint = new_endpoint();
    let start = Instant::now();
    let call = offer_call(&mut endpoint, start);
    assert_next_deadline(&mut endpoint, None);

    endpoint
        .accept_call(start, call, SDP_ANSWER.to_vec())
        .unwrap();
    assert_next_deadline(&mut endpoint, Some(start + T1));

    // Timer J of an OPTIONS comes after the 2xx retransmission.
    let options_at = start + Duration::from_millis(100);
    let options = request("OPTIONS", "z9hG4bKopt", 1, None, "", "");
    feed(&mut endpoint, options_at, &options);
    assert_next_deadline(&mut endpoint, Some(start + T1));

    // The ACK disarms the call's timers; Timer L of the INVITE is next.
    let tag = header(&transmits(&mut endpoint)[0], "To")
        .and_then(|to| header_param(&to, "tag"))
        .unwrap();
    feed(
        &mut endpoint,
        options_at,
        &request("ACK", "z9hG4bKack1", 1, Some(&tag), "", ""),
    );
    assert_next_deadline(&mut endpoint, Some(start + TIMEOUT_64_T1));
}

#[test]
fn poll_timeout_after_transaction_ends() {
    let mut endpoint = new_endpoint();
    let start = Instant::now();
    let (call, _) = confirm_call(&mut endpoint, start);
    let _ = run_until(&mut endpoint, start + TIMEOUT_64_T1);
    assert_next_deadline(&mut endpoint, None);

    let hung_up_at = start + TIMEOUT_64_T1;
    endpoint.hang_up(hung_up_at, call).unwrap();
    let bye = transmits(&mut endpoint).pop().unwrap();
    assert_next_deadline(&mut endpoint, Some(hung_up_at + T1));

    // The final response stops Timers E and F, whose entries go stale, and
    // arms Timer K (RFC 3261 §17.1.2.2).
    let answered_at = hung_up_at + Duration::from_millis(100);
    feed(
        &mut endpoint,
        answered_at,
        &response_to(&bye, "SIP/2.0 200 OK"),
    );
    assert_next_deadline(&mut endpoint, Some(answered_at + T4));

    endpoint.handle_timeout(answered_at + T4);
    assert_next_deadline(&mut endpoint, None);
}

#[test]
fn poll_timeout_after_call_ends() {
    let mut endpoint = new_endpoint();
    let start = Instant::now();
    let (call, tag) = answer_call(&mut endpoint, start);
    assert_next_deadline(&mut endpoint, Some(start + T1));

    // A BYE before the ACK ends the call with its 2xx timers still armed.
    let bye_at = start + Duration::from_millis(100);
    feed(
        &mut endpoint,
        bye_at,
        &request("BYE", "z9hG4bKbye", 2, Some(&tag), "", ""),
    );
    assert_eq!(
        events(&mut endpoint),
        vec![Event::CallEnded {
            call,
            cause: EndCause::ByeReceived
        }]
    );

    // Left: Timer L of the INVITE and Timer J of the BYE.
    assert_next_deadline(&mut endpoint, Some(start + TIMEOUT_64_T1));
    endpoint.handle_timeout(start + TIMEOUT_64_T1);
    assert_next_deadline(&mut endpoint, Some(bye_at + TIMEOUT_64_T1));
    endpoint.handle_timeout(bye_at + TIMEOUT_64_T1);
    assert_next_deadline(&mut endpoint, None);
    assert!(transmits(&mut endpoint)
        .iter()
        .all(|transmit| status(transmit) == 200));
}

/// Places a call with `extra` headers in its INVITE, answers it and
/// acknowledges the answer; returns the handle and our To tag.
fn confirm_with(
    endpoint: &mut Endpoint,
    now: Instant,
    call_id: &str,
    extra: &str,
) -> (CallHandle, String) {
    let branch = format!("z9hG4bK{call_id}");
    let invite = invite(&branch)
        .replace(CALL_ID, call_id)
        .replace("Privacy: none\r\n", &format!("Privacy: none\r\n{extra}"));
    feed(endpoint, now, &invite);
    let _ = transmits(endpoint);
    let Some(Event::IncomingCall(incoming)) = events(endpoint).pop() else {
        panic!("expected IncomingCall");
    };

    endpoint
        .accept_call(now, incoming.call, SDP_ANSWER.to_vec())
        .unwrap();
    let to = header(&transmits(endpoint)[0], "To").unwrap();
    let tag = header_param(&to, "tag").unwrap();
    let ack = request("ACK", "z9hG4bKack", 1, Some(&tag), "", "").replace(CALL_ID, call_id);
    feed(endpoint, now, &ack);
    let _ = events(endpoint);
    (incoming.call, tag)
}

#[test]
fn stale_entries_stay_bounded() {
    let mut endpoint = new_endpoint();
    let start = Instant::now();
    let longest = "Supported: timer\r\nSession-Expires: 1800\r\n";

    // The first call's session expiry (after 1,768 s) stays the earliest
    // deadline, so the stale entries behind it never reach the top of the
    // heap.
    let _ = confirm_with(&mut endpoint, start, "first@127.0.0.1", longest);
    let (call, tag) = confirm_with(&mut endpoint, start, "second@127.0.0.1", "");

    // Each refresh of the second call moves its expiry 1 s on and leaves
    // the previous expiry behind as a stale entry.
    let extra = format!("Contact: <sip:caller@127.0.0.1:5070>\r\n{longest}");
    let refreshes = REBUILD_MIN_ENTRIES as u32 + 200;
    let mut now = start;
    for cseq in 2..refreshes + 2 {
        now += Duration::from_secs(1);
        let _ = run_until(&mut endpoint, now);
        let branch = format!("z9hG4bKrefresh{cseq}");
        let reinvite = request("INVITE", &branch, cseq, Some(&tag), &extra, "")
            .replace(CALL_ID, "second@127.0.0.1");
        feed(&mut endpoint, now, &reinvite);
        assert!(matches!(
            events(&mut endpoint).as_slice(),
            [Event::Reoffer { .. }]
        ));
        endpoint
            .answer_reoffer(now, call, SDP_ANSWER.to_vec())
            .unwrap();
        let ack_branch = format!("z9hG4bKrefreshack{cseq}");
        let ack = request("ACK", &ack_branch, cseq, Some(&tag), "", "")
            .replace(CALL_ID, "second@127.0.0.1");
        feed(&mut endpoint, now, &ack);
        let _ = transmits(&mut endpoint);
        let _ = events(&mut endpoint);

        let scanned = endpoint.poll_timeout_by_scan();
        assert_eq!(endpoint.poll_timeout(), scanned, "refresh {cseq}");
        assert!(
            endpoint.timer_index.len() <= REBUILD_MIN_ENTRIES,
            "refresh {cseq}: {} index entries",
            endpoint.timer_index.len()
        );
    }
}

/// xorshift64*: a small deterministic generator, so that a failing run can
/// be repeated from its seed.
struct Generator(u64);

impl Generator {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Returns a number below `bound`.
    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// State the test peer keeps for one call it placed.
struct PeerCall {
    /// Call-ID of the INVITE, unique per call.
    call_id: String,
    /// Branch of the INVITE, which CANCEL and the ACK for a non-2xx repeat.
    invite_branch: String,
    /// Handle from `IncomingCall`, for the application commands; None for
    /// an INVITE that was rejected before it became a call.
    handle: Option<CallHandle>,
    /// Our To tag, from the 200 OK.
    tag: Option<String>,
    /// CSeq number of the last INVITE or re-INVITE, which its ACK repeats.
    invite_cseq: u32,
    /// CSeq number of the peer's next in-dialog request.
    next_cseq: u32,
}

/// The test peer: its calls and the requests from the endpoint that it has
/// not sent a final response to.
struct Peer {
    /// Every call placed, ended ones included, so that late requests reach ended dialogs too.
    calls: Vec<PeerCall>,
    /// BYEs and REFERs from the endpoint without a response yet.
    unanswered: Vec<Transmit>,
    /// Counter that makes each branch unique.
    next_branch: u64,
    /// CallEnded causes seen, to show that the run reached every timer path.
    causes: Vec<EndCause>,
}

impl Peer {
    fn branch(&mut self) -> String {
        self.next_branch += 1;
        format!("z9hG4bKrandom{}", self.next_branch)
    }

    /// Drains what the endpoint sent and emitted, and answers re-INVITEs.
    fn absorb(&mut self, endpoint: &mut Endpoint, now: Instant, generator: &mut Generator) {
        for transmit in transmits(endpoint) {
            let Some(call_id) = header(&transmit, "Call-ID") else {
                continue;
            };
            let is_request = status(&transmit) == 0;
            if is_request {
                self.unanswered.push(transmit);
                continue;
            }
            let cseq = header(&transmit, "CSeq").unwrap_or_default();
            if status(&transmit) == 200 && cseq.ends_with("INVITE") {
                let tag = header(&transmit, "To").and_then(|to| header_param(&to, "tag"));
                if let Some(call) = self.calls.iter_mut().find(|call| call.call_id == call_id) {
                    call.tag = tag;
                }
            }
        }

        for event in events(endpoint) {
            match event {
                Event::IncomingCall(incoming) => {
                    if let Some(call) = self
                        .calls
                        .iter_mut()
                        .find(|call| call.call_id == incoming.call_id)
                    {
                        call.handle = Some(incoming.call);
                    }
                }
                Event::Reoffer { call, .. } => {
                    let result = if generator.chance(70) {
                        endpoint.answer_reoffer(now, call, SDP_ANSWER.to_vec())
                    } else {
                        endpoint.reject_reoffer(now, call, 488)
                    };
                    result.unwrap();
                    // The answer is drained on the next call of `absorb`.
                }
                Event::CallEnded { cause, .. } => self.causes.push(cause),
                _ => {}
            }
        }
    }
}

/// Builds an INVITE for a new call; with `session_timer`, one that asks for
/// a 90 s session timer with the peer as refresher.
fn new_invite(call_id: &str, branch: &str, session_timer: bool) -> String {
    let message = invite(branch).replace(CALL_ID, call_id);
    if session_timer {
        message.replace(
            "Privacy: none\r\n",
            "Privacy: none\r\nSupported: timer\r\nSession-Expires: 90\r\n",
        )
    } else {
        message
    }
}

fn in_dialog(call: &PeerCall, method: &str, branch: &str, cseq: u32, extra: &str) -> String {
    let tag = call.tag.as_deref().unwrap_or("unknown");
    request(method, branch, cseq, Some(tag), extra, "").replace(CALL_ID, &call.call_id)
}

/// Runs one pseudo-random step: a peer message, an application command or
/// the passing of time.
fn random_step(
    endpoint: &mut Endpoint,
    peer: &mut Peer,
    now: &mut Instant,
    generator: &mut Generator,
) {
    let pick = peer
        .calls
        .len()
        .checked_sub(1)
        .map(|last| generator.below(last as u64 + 1) as usize);

    match generator.below(16) {
        0 | 1 => {
            let call_id = format!("random-{}@127.0.0.1", peer.calls.len());
            let branch = peer.branch();
            let session_timer = generator.chance(50);
            feed(
                endpoint,
                *now,
                &new_invite(&call_id, &branch, session_timer),
            );
            peer.calls.push(PeerCall {
                call_id,
                invite_branch: branch,
                handle: None,
                tag: None,
                invite_cseq: 1,
                next_cseq: 2,
            });
        }
        2 | 3 => {
            if let Some(handle) = pick.and_then(|index| peer.calls[index].handle) {
                let _ = endpoint.accept_call(*now, handle, SDP_ANSWER.to_vec());
            }
        }
        4 => {
            if let Some(handle) = pick.and_then(|index| peer.calls[index].handle) {
                let _ = endpoint.reject_call(*now, handle, 486);
            }
        }
        5 | 6 => {
            // ACK for our 2xx; a call left without one hits Timer H.
            if let Some(call) = pick.map(|index| &peer.calls[index]) {
                let branch = format!("{}ack{}", call.invite_branch, call.invite_cseq);
                let ack = in_dialog(call, "ACK", &branch, call.invite_cseq, "");
                feed(endpoint, *now, &ack);
            }
        }
        7 => {
            // ACK for a non-2xx final response, on the INVITE's branch.
            if let Some(call) = pick.map(|index| &peer.calls[index]) {
                let ack = request("ACK", &call.invite_branch, 1, Some("any"), "", "")
                    .replace(CALL_ID, &call.call_id);
                feed(endpoint, *now, &ack);
            }
        }
        8 => {
            if let Some(index) = pick {
                let branch = peer.branch();
                let call = &mut peer.calls[index];
                let cseq = call.next_cseq;
                call.next_cseq += 1;
                let bye = in_dialog(call, "BYE", &branch, cseq, "");
                feed(endpoint, *now, &bye);
            }
        }
        9 => {
            if let Some(handle) = pick.and_then(|index| peer.calls[index].handle) {
                let _ = endpoint.hang_up(*now, handle);
            }
        }
        10 => {
            if let Some(handle) = pick.and_then(|index| peer.calls[index].handle) {
                let _ =
                    endpoint.transfer(*now, handle, "sip:agents@127.0.0.1", "sip:ivr@127.0.0.1");
            }
        }
        11 => {
            // A final response to one of our BYEs or REFERs; the others time out.
            if !peer.unanswered.is_empty() {
                let index = generator.below(peer.unanswered.len() as u64) as usize;
                let request = peer.unanswered.swap_remove(index);
                feed(endpoint, *now, &response_to(&request, "SIP/2.0 200 OK"));
            }
        }
        12 => {
            // A session refresh, answered or rejected in `absorb`.
            if let Some(index) = pick {
                let branch = peer.branch();
                let call = &mut peer.calls[index];
                let cseq = call.next_cseq;
                call.next_cseq += 1;
                call.invite_cseq = cseq;
                let extra = "Contact: <sip:caller@127.0.0.1:5070>\r\nSupported: timer\r\nSession-Expires: 90\r\n";
                let reinvite = in_dialog(call, "INVITE", &branch, cseq, extra);
                feed(endpoint, *now, &reinvite);
            }
        }
        13 => {
            if let Some(call) = pick.map(|index| &peer.calls[index]) {
                let cancel = request("CANCEL", &call.invite_branch, 1, None, "", "")
                    .replace(CALL_ID, &call.call_id);
                feed(endpoint, *now, &cancel);
            }
        }
        14 => {
            let branch = peer.branch();
            feed(
                endpoint,
                *now,
                &request("OPTIONS", &branch, 1, None, "", ""),
            );
        }
        _ => {
            // Time passes: to the next deadline, a little, or far ahead.
            let deadline = endpoint.poll_timeout_by_scan();
            *now = match (generator.below(3), deadline) {
                (0, Some(deadline)) if deadline > *now => deadline,
                (1, _) => *now + Duration::from_secs(generator.below(70)),
                _ => *now + Duration::from_millis(generator.below(3_000)),
            };
            endpoint.handle_timeout(*now);
        }
    }
}

#[test]
fn poll_timeout_matches_scan_over_random_run() {
    for seed in [1_u64, 0x5EED, 0xC0FFEE, 0xDEAD_BEEF] {
        let mut generator = Generator(seed);
        let mut endpoint = endpoint_with(EdgePolicy {
            max_concurrent_calls: 10_000,
            ..trusting_policy()
        });
        let mut peer = Peer {
            calls: Vec::new(),
            unanswered: Vec::new(),
            next_branch: 0,
            causes: Vec::new(),
        };
        let mut now = Instant::now();

        for step in 0..2_000 {
            random_step(&mut endpoint, &mut peer, &mut now, &mut generator);
            peer.absorb(&mut endpoint, now, &mut generator);

            let scanned = endpoint.poll_timeout_by_scan();
            assert_eq!(
                endpoint.poll_timeout(),
                scanned,
                "seed {seed:#x}, step {step}: the index and the scan disagree"
            );
        }

        // The run must have reached the timer paths, or it proves little.
        for cause in [
            EndCause::AckTimeout,
            EndCause::SessionExpired,
            EndCause::HungUp,
            EndCause::ByeReceived,
            EndCause::Rejected,
        ] {
            assert!(
                peer.causes.contains(&cause),
                "seed {seed:#x}: no call ended with {cause:?}"
            );
        }

        // Let every timer run out: the index must empty out with the scan.
        now += Duration::from_secs(3_600);
        endpoint.handle_timeout(now);
        let _ = transmits(&mut endpoint);
        let _ = events(&mut endpoint);
        now += Duration::from_secs(3_600);
        endpoint.handle_timeout(now);
        assert_next_deadline(&mut endpoint, None);
    }
}
