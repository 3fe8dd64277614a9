//! Re-INVITEs inside a dialog (hold, resume, new media, late offer) and the
//! session timer of RFC 4028 that they refresh.

use std::time::{Duration, Instant};

use super::super::call::{CallHandle, CallState, Pending2xx};
use super::super::message::{
    build_response, parse_digits, IncomingRequest, RawMessage, ResponseParts,
};
use super::super::timer::{Timer, TimerTable, T1, TIMEOUT_64_T1};
use super::super::transaction::{InviteServerState, ServerKey, ServerKind, ServerTransaction};
use super::super::transport::Route;
use super::{Endpoint, EndpointError, Event, TimerOwner, ALLOW, SUPPORTED};

/// Smallest session interval we accept, sent in Min-SE of a 422. RFC 4028 §4
/// forbids a Min-SE below 90 seconds; a larger value would only cost calls
/// from peers that ask for a short interval.
pub(crate) const MIN_SESSION_EXPIRES: Duration = Duration::from_secs(90);

/// Largest session interval we grant unless the request's Min-SE is
/// larger. A larger request is lowered to it in the 2xx, which RFC 4028 §9
/// allows the UAS. It is the interval RFC 4028 §4 recommends and longer
/// than the service's maximum call duration.
pub(crate) const MAX_SESSION_EXPIRES: Duration = Duration::from_secs(1800);

/// Largest Min-SE we honour when lowering an interval. A request whose
/// Min-SE is larger still gets at most a day, which keeps `now + interval`
/// far from the end of `Instant`'s range.
const MAX_MIN_SE: Duration = Duration::from_secs(86_400);

/// Largest margin before expiry at which we send BYE (RFC 4028 §10: the
/// smaller of 32 seconds and a third of the session interval).
const MAX_EXPIRY_MARGIN: Duration = Duration::from_secs(32);

/// Outcome of the session-timer negotiation of an INVITE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SessionTimerOutcome {
    /// No session timer: none requested, or one we would have to refresh.
    None,
    /// The interval is below [`MIN_SESSION_EXPIRES`]: answer 422 with Min-SE.
    TooSmall,
    /// A session timer with the peer as refresher, over this interval.
    Interval(Duration),
}

/// Reads Session-Expires, Supported and Min-SE of an INVITE (RFC 4028 §9).
///
/// A session timer runs only when the peer supports `timer` and does not ask
/// us to refresh (`refresher=uas`), because this endpoint sends no
/// re-INVITE or UPDATE of its own. Leaving Session-Expires out of the 2xx
/// then means "no session timer" to the peer (RFC 4028 §7.2).
pub(crate) fn negotiate_session_timer(request: &RawMessage) -> SessionTimerOutcome {
    let Some(value) = request.value("Session-Expires") else {
        return SessionTimerOutcome::None;
    };
    let mut parts = value.split(';');
    let delta = parts.next().unwrap_or_default().trim();
    let seconds = match parse_digits(delta) {
        Some(seconds) => seconds,
        // Digits too many for u64 are a huge interval, lowered below like
        // any other.
        None if !delta.is_empty() && delta.bytes().all(|byte| byte.is_ascii_digit()) => u64::MAX,
        None => return SessionTimerOutcome::None,
    };
    let refresher = parts.find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("refresher")
            .then(|| value.trim().to_ascii_lowercase())
    });

    let supports_timer = request
        .values("Supported")
        .flat_map(|value| value.split(','))
        .any(|tag| tag.trim().eq_ignore_ascii_case("timer"));
    if !supports_timer || refresher.as_deref() == Some("uas") {
        // NOTE: a peer that cannot refresh, or wants us to, gets no session
        // timer; a dead call is then found only by the media timeouts.
        return SessionTimerOutcome::None;
    }

    // The UAS may lower the interval, but not below the request's Min-SE
    // (RFC 4028 §9).
    let min_se = request
        .value("Min-SE")
        .and_then(|value| parse_digits(value.split(';').next().unwrap_or_default()))
        .map_or(Duration::ZERO, Duration::from_secs);
    let ceiling = MAX_SESSION_EXPIRES.max(min_se.min(MAX_MIN_SE));
    let interval = Duration::from_secs(seconds).min(ceiling);
    if interval < MIN_SESSION_EXPIRES {
        return SessionTimerOutcome::TooSmall;
    }
    SessionTimerOutcome::Interval(interval)
}

/// Returns the session-timer headers of a 2xx: Session-Expires with the peer
/// as refresher, and Require: timer, which RFC 4028 §9 requires when the
/// refresher is the UAC.
pub(crate) fn session_timer_headers(interval: Option<Duration>) -> Vec<(&'static str, String)> {
    match interval {
        Some(interval) => vec![
            (
                "Session-Expires",
                format!("{};refresher=uac", interval.as_secs()),
            ),
            ("Require", "timer".to_string()),
        ],
        None => Vec::new(),
    }
}

/// Returns how long after a 2xx we send BYE when no refresh arrives: the
/// interval less min(32 s, interval / 3) (RFC 4028 §10).
pub(crate) fn session_expiry_delay(interval: Duration) -> Duration {
    interval.saturating_sub(MAX_EXPIRY_MARGIN.min(interval / 3))
}

impl Endpoint {
    /// Answers a re-INVITE that [`Event::Reoffer`] reported with 200 OK
    /// carrying `sdp`: the answer to its offer, or our offer when it had
    /// none. The 2xx is retransmitted until the ACK, which emits
    /// `ReofferConfirmed`. A session timer, if any, restarts from now.
    pub fn answer_reoffer(
        &mut self,
        now: Instant,
        call: CallHandle,
        sdp: Vec<u8>,
    ) -> Result<(), EndpointError> {
        let entry = self
            .calls
            .get(&call)
            .ok_or(EndpointError::UnknownCall { call })?;
        let key = entry
            .pending_reoffer
            .clone()
            .ok_or(EndpointError::NoPendingReoffer { call })?;
        let contact = self.contact(entry);
        let Some(transaction) = self.server_transactions.get_mut(&key) else {
            return Err(EndpointError::NoPendingReoffer { call });
        };

        let session_interval = match negotiate_session_timer(&transaction.request) {
            SessionTimerOutcome::Interval(interval) => Some(interval),
            SessionTimerOutcome::None | SessionTimerOutcome::TooSmall => None,
        };
        let mut extra_headers = vec![
            ("Contact", contact),
            ("Allow", ALLOW.to_string()),
            ("Supported", SUPPORTED.to_string()),
        ];
        extra_headers.extend(session_timer_headers(session_interval));
        extra_headers.push(("Content-Type", "application/sdp".to_string()));
        let response = build_response(ResponseParts {
            request: &transaction.request,
            status: 200,
            to_tag: None,
            copy_record_route: false,
            extra_headers,
            body: &sdp,
            server: &self.config.user_agent,
        });
        transaction.kind = ServerKind::Invite {
            state: InviteServerState::Accepted,
            call: Some(call),
            retransmit_interval: T1,
        };
        transaction.last_response = Some(response.clone());
        transaction.timers = TimerTable::default();
        self.timer_index.arm(
            &mut transaction.timers,
            TimerOwner::Server(key),
            Timer::L,
            now + TIMEOUT_64_T1,
        );
        let route = transaction.route;
        let cseq = transaction
            .request
            .value("CSeq")
            .and_then(|value| value.split_whitespace().next())
            .and_then(parse_digits)
            .and_then(|number| u32::try_from(number).ok())
            .unwrap_or_default();

        self.send(route, response.clone());
        if let Some(entry) = self.calls.get_mut(&call) {
            entry.pending_reoffer = None;
            entry.last_sdp = sdp;
            entry.session_interval = session_interval;
            entry.pending_2xx = Some(Pending2xx {
                response,
                cseq,
                retransmit_interval: T1,
                reinvite: true,
            });
            let owner = TimerOwner::Call(call);
            let index = &mut self.timer_index;
            index.arm(
                &mut entry.timers,
                owner.clone(),
                Timer::Retransmit2xx,
                now + T1,
            );
            index.arm(
                &mut entry.timers,
                owner.clone(),
                Timer::H,
                now + TIMEOUT_64_T1,
            );
            match session_interval {
                Some(interval) => index.arm(
                    &mut entry.timers,
                    owner,
                    Timer::SessionExpires,
                    now + session_expiry_delay(interval),
                ),
                None => entry.timers.clear(Timer::SessionExpires),
            }
            entry.state = CallState::Answered;
            tracing::info!(call_id = %entry.call_id, state = "answered", "sent 200 OK to the re-INVITE");
        }
        Ok(())
    }

    /// Rejects a re-INVITE that [`Event::Reoffer`] reported with a final
    /// `status` from 300 to 699, usually 488 Not Acceptable Here for an
    /// offer that cannot be answered. The call goes on with the session it
    /// had (RFC 3261 §14.2) and no event follows. The response is
    /// retransmitted on Timer G over UDP until its ACK, which is absorbed,
    /// or until Timer H (RFC 3261 §17.2.1).
    pub fn reject_reoffer(
        &mut self,
        now: Instant,
        call: CallHandle,
        status: u16,
    ) -> Result<(), EndpointError> {
        if !(300..=699).contains(&status) {
            return Err(EndpointError::InvalidRejectStatus { status });
        }
        let entry = self
            .calls
            .get(&call)
            .ok_or(EndpointError::UnknownCall { call })?;
        let waiting = entry
            .pending_reoffer
            .as_ref()
            .is_some_and(|key| self.server_transactions.contains_key(key));
        if !waiting {
            return Err(EndpointError::NoPendingReoffer { call });
        }
        let call_id = entry.call_id.clone();

        self.fail_pending_reoffer(now, call, status);
        tracing::info!(%call_id, status, "rejected the re-INVITE; the session stays as it was");
        Ok(())
    }

    /// Handles a re-INVITE: 100 Trying and `Event::Reoffer`, or 500 with
    /// Retry-After while another INVITE of the dialog is unfinished, or 422
    /// when its session interval is too small.
    pub(super) fn handle_reinvite(
        &mut self,
        now: Instant,
        destination: Route,
        handle: CallHandle,
        request: IncomingRequest,
    ) {
        let Some(call) = self.calls.get(&handle) else {
            return;
        };

        // RFC 3261 §14.2: a re-INVITE that arrives while an earlier INVITE of
        // the dialog is unanswered or its 2xx unacknowledged gets 500 with
        // Retry-After.
        let busy = call.pending_2xx.is_some()
            || call.pending_reoffer.is_some()
            || call.state != CallState::Confirmed;
        if busy {
            let retry_after = vec![("Retry-After", "1".to_string())];
            self.answer_request(now, destination, &request, 500, retry_after, &[]);
            return;
        }

        if negotiate_session_timer(&request.raw) == SessionTimerOutcome::TooSmall {
            let min_se = vec![("Min-SE", MIN_SESSION_EXPIRES.as_secs().to_string())];
            self.answer_request(now, destination, &request, 422, min_se, &[]);
            return;
        }

        let trying = build_response(ResponseParts {
            request: &request.raw,
            status: 100,
            to_tag: None,
            copy_record_route: false,
            extra_headers: Vec::new(),
            body: &[],
            server: &self.config.user_agent,
        });
        self.send(destination, trying.clone());
        let key = ServerKey::of(&request);
        self.server_transactions.insert(
            key.clone(),
            ServerTransaction {
                kind: ServerKind::Invite {
                    state: InviteServerState::Proceeding,
                    call: Some(handle),
                    retransmit_interval: T1,
                },
                route: destination,
                request: request.raw.clone(),
                last_response: Some(trying),
                timers: TimerTable::default(),
            },
        );

        let sdp = (request.content_type().as_deref() == Some("application/sdp")
            && !request.body.is_empty())
        .then(|| request.body.clone());
        if let Some(call) = self.calls.get_mut(&handle) {
            // NOTE: the application must call answer_reoffer or
            // reject_reoffer. Until then the re-INVITE stays in Proceeding
            // and the peer's own Timer B (64·T1) decides what happens.
            call.pending_reoffer = Some(key);
            tracing::info!(call_id = %call.call_id, offer = sdp.is_some(), "re-INVITE received");
        }
        self.emit(Event::Reoffer { call: handle, sdp });
    }

    /// Sends a non-2xx final response on the re-INVITE that waits for
    /// `answer_reoffer`, if any: 487 when it was cancelled or the dialog ends.
    pub(super) fn fail_pending_reoffer(&mut self, now: Instant, call: CallHandle, status: u16) {
        let Some(key) = self
            .calls
            .get_mut(&call)
            .and_then(|entry| entry.pending_reoffer.take())
        else {
            return;
        };
        let Some(transaction) = self.server_transactions.get(&key) else {
            return;
        };
        let response = build_response(ResponseParts {
            request: &transaction.request,
            status,
            to_tag: None,
            copy_record_route: false,
            extra_headers: Vec::new(),
            body: &[],
            server: &self.config.user_agent,
        });
        let route = transaction.route;
        let request = transaction.request.clone();
        self.start_completed_invite(now, key, Some(call), route, &request, response);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invite_with(headers: &str) -> RawMessage {
        let text = format!("INVITE sip:a@h SIP/2.0\r\n{headers}\r\n");
        RawMessage::frame(text.as_bytes()).unwrap()
    }

    #[test]
    fn session_timer_needs_peer_support() {
        let request = invite_with("Session-Expires: 1800\r\n");
        assert_eq!(negotiate_session_timer(&request), SessionTimerOutcome::None);
    }

    #[test]
    fn session_timer_with_peer_as_refresher() {
        let request = invite_with("Supported: 100rel, timer\r\nx: 1800;refresher=uac\r\n");
        assert_eq!(
            negotiate_session_timer(&request),
            SessionTimerOutcome::Interval(Duration::from_secs(1800))
        );
        let request = invite_with("k: timer\r\nSession-Expires: 600\r\n");
        assert_eq!(
            negotiate_session_timer(&request),
            SessionTimerOutcome::Interval(Duration::from_secs(600))
        );
    }

    #[test]
    fn session_timer_refresher_uas_is_declined() {
        let request = invite_with("Supported: timer\r\nSession-Expires: 1800;refresher=uas\r\n");
        assert_eq!(negotiate_session_timer(&request), SessionTimerOutcome::None);
    }

    #[test]
    fn session_timer_below_minimum_is_too_small() {
        let request = invite_with("Supported: timer\r\nSession-Expires: 89\r\n");
        assert_eq!(
            negotiate_session_timer(&request),
            SessionTimerOutcome::TooSmall
        );
    }

    #[test]
    fn expiry_margin_is_a_third_or_32_seconds() {
        assert_eq!(
            session_expiry_delay(Duration::from_secs(90)),
            Duration::from_secs(60)
        );
        assert_eq!(
            session_expiry_delay(Duration::from_secs(1800)),
            Duration::from_secs(1768)
        );
    }
}
