//! Admission of INVITEs outside any dialog: the edge policy (trusted peers,
//! draining, concurrent-call limit), merged requests, Replaces and the
//! session-timer minimum, checked before a call is offered to the application.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::super::edge::{canonical_ip, UntrustedAction};
use super::super::message::{IncomingRequest, Method};
use super::super::transaction::ServerKey;
use super::super::transport::{Received, Route};
use super::reinvite::{negotiate_session_timer, SessionTimerOutcome, MIN_SESSION_EXPIRES};
use super::Endpoint;

/// Status of an INVITE from an untrusted source under `UntrustedAction::Reject`.
const STATUS_FORBIDDEN: u16 = 403;

/// Minimum interval between two warnings about in-dialog requests from
/// foreign sources. A flood of forged BYEs then costs one log line per
/// interval, which carries the count of the requests not logged.
const FOREIGN_SOURCE_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Status of a merged request: a copy of a request that reached us on
/// another path (RFC 3261 §8.2.2.2).
const STATUS_LOOP_DETECTED: u16 = 482;

/// Status of an INVITE whose Replaces names no dialog of ours (RFC 3891 §3).
const STATUS_NO_DIALOG: u16 = 481;

/// Status of an INVITE whose Replaces names one of our calls. The IVR never
/// hands its caller over to a new dialog (an attended transfer into the
/// IVR, or a call pickup), so it declines; 603 Decline marks the refusal as
/// final without calling the request malformed, and the matched call goes
/// on untouched.
const STATUS_DECLINE: u16 = 603;

/// Status of an INVITE beyond the concurrent-call limit or while draining,
/// so that a load balancer or the carrier tries another node.
const STATUS_SERVICE_UNAVAILABLE: u16 = 503;

/// Status of an INVITE whose Session-Expires is below our minimum (RFC 4028 §6).
const STATUS_INTERVAL_TOO_SMALL: u16 = 422;

impl Endpoint {
    /// Returns whether a request must be dropped unanswered because its
    /// source is untrusted, the policy is `Drop`, and it belongs to no
    /// dialog and no INVITE transaction of ours.
    pub(super) fn drops_untrusted(&self, received: Received, request: &IncomingRequest) -> bool {
        let edge = &self.config.edge;
        if edge.untrusted_action != UntrustedAction::Drop || edge.is_trusted(received.source.ip()) {
            return false;
        }
        if self.find_dialog(request).is_some() {
            return false;
        }
        let cancels_known_invite = request.is(super::super::message::Method::Cancel)
            && self.server_transactions.contains_key(
                &super::super::transaction::ServerKey::for_method(request, "INVITE"),
            );
        !cancels_known_invite
    }

    /// Rejects or drops a request that addresses one of our dialogs or
    /// INVITE transactions but comes from a source that is neither the IP
    /// the INVITE came from nor a trusted peer, so that a third host that
    /// learned the Call-ID and tags cannot send DTMF, end the call, redirect
    /// its RTP, cancel it or acknowledge for the peer. Returns whether it did.
    ///
    /// Such a request is treated like an untrusted request outside a
    /// dialog: 403 under `UntrustedAction::Reject` (an ACK is never
    /// answered), nothing under `Drop`. The call and its transactions are
    /// left as they were.
    pub(super) fn rejects_foreign_source(
        &mut self,
        now: Instant,
        received: Received,
        destination: Route,
        request: &IncomingRequest,
    ) -> bool {
        let Some(invite_source) = self.invite_source_of(request) else {
            return false;
        };
        let source = canonical_ip(received.source.ip());
        if source == canonical_ip(invite_source) || self.config.edge.is_trusted(source) {
            return false;
        }

        let answers = self.config.edge.untrusted_action == UntrustedAction::Reject
            && !request.is(Method::Ack);
        self.counters.foreign_in_dialog += 1;
        if let Some(suppressed) = self
            .foreign_source_log
            .record(now, FOREIGN_SOURCE_LOG_INTERVAL)
        {
            tracing::warn!(
                call_id = %request.call_id,
                source = %received.source,
                method = request.raw.request_method().unwrap_or_default(),
                action = if answers { "answered 403" } else { "dropped" },
                suppressed,
                "in-dialog request from a source that is neither the INVITE's source nor a trusted peer; the call is unchanged"
            );
        }

        if answers {
            self.answer_request(now, destination, request, STATUS_FORBIDDEN, Vec::new(), &[]);
        }
        true
    }

    /// Returns the source IP of the INVITE behind the INVITE transaction
    /// (for ACK and CANCEL) or the dialog that `request` addresses, None
    /// when it addresses neither.
    fn invite_source_of(&self, request: &IncomingRequest) -> Option<IpAddr> {
        if request.is(Method::Ack) || request.is(Method::Cancel) {
            let invite_key = ServerKey::for_method(request, "INVITE");
            if let Some(transaction) = self.server_transactions.get(&invite_key) {
                // The route of a server transaction leads back to the IP the
                // request came from (only the port may come from the Via).
                return Some(transaction.route.destination.ip());
            }
        }

        let handle = self.find_dialog(request)?;
        self.calls
            .get(&handle)
            .map(|call| call.route.destination.ip())
    }

    /// Checks a new INVITE against the edge policy and the dialog rules, then
    /// offers it to the application or answers it with an error.
    pub(super) fn admit_new_invite(
        &mut self,
        now: Instant,
        received: Received,
        destination: Route,
        request: IncomingRequest,
    ) {
        let call_id = request.call_id.clone();

        if !self.config.edge.is_trusted(received.source.ip()) {
            self.counters.untrusted_rejected += 1;
            tracing::info!(%call_id, source = %received.source, "rejected INVITE from an untrusted source");
            self.answer_request(
                now,
                destination,
                &request,
                STATUS_FORBIDDEN,
                Vec::new(),
                &[],
            );
            return;
        }

        if self.is_merged_request(&request) {
            tracing::info!(%call_id, "rejected a merged INVITE that arrived on a second branch");
            self.answer_request(
                now,
                destination,
                &request,
                STATUS_LOOP_DETECTED,
                Vec::new(),
                &[],
            );
            return;
        }

        let retry_after = vec![(
            "Retry-After",
            self.config.edge.retry_after.as_secs().to_string(),
        )];
        if self.draining {
            self.counters.draining_rejected += 1;
            tracing::info!(%call_id, "rejected INVITE while draining");
            self.answer_request(
                now,
                destination,
                &request,
                STATUS_SERVICE_UNAVAILABLE,
                retry_after,
                &[],
            );
            return;
        }
        if self.calls.len() >= self.config.edge.max_concurrent_calls {
            self.counters.over_capacity += 1;
            tracing::warn!(
                %call_id,
                max_concurrent_calls = self.config.edge.max_concurrent_calls,
                "rejected INVITE: concurrent-call limit reached"
            );
            self.answer_request(
                now,
                destination,
                &request,
                STATUS_SERVICE_UNAVAILABLE,
                retry_after,
                &[],
            );
            return;
        }

        if let Some(replaces) = request.header("Replaces") {
            let status = if self.replaces_matches_call(replaces) {
                STATUS_DECLINE
            } else {
                STATUS_NO_DIALOG
            };
            tracing::info!(%call_id, status, "rejected INVITE with Replaces");
            self.answer_request(now, destination, &request, status, Vec::new(), &[]);
            return;
        }

        let session_interval = match negotiate_session_timer(&request.raw) {
            SessionTimerOutcome::TooSmall => {
                let min_se = vec![("Min-SE", MIN_SESSION_EXPIRES.as_secs().to_string())];
                tracing::info!(%call_id, "rejected INVITE whose Session-Expires is below our Min-SE");
                self.answer_request(
                    now,
                    destination,
                    &request,
                    STATUS_INTERVAL_TOO_SMALL,
                    min_se,
                    &[],
                );
                return;
            }
            SessionTimerOutcome::Interval(interval) => Some(interval),
            SessionTimerOutcome::None => None,
        };

        self.handle_new_invite(now, received, destination, request, session_interval);
    }

    /// Returns whether a call already exists for the same Call-ID, From tag
    /// and CSeq as `request` but on another branch: the same INVITE forked
    /// back to us by a proxy (RFC 3261 §8.2.2.2).
    fn is_merged_request(&self, request: &IncomingRequest) -> bool {
        let key = super::super::transaction::ServerKey::of(request);
        self.calls.values().any(|call| {
            call.call_id == request.call_id
                && call.remote_tag == request.from_tag
                && call.invite_cseq == request.cseq
                && call.invite_key != key
        })
    }

    /// Returns whether `replaces` (`call-id;to-tag=..;from-tag=..`, RFC 3891
    /// §6.1) names one of our calls. Its to-tag is our local tag and its
    /// from-tag the peer's tag.
    fn replaces_matches_call(&self, replaces: &str) -> bool {
        let mut parts = replaces.split(';');
        let call_id = parts.next().unwrap_or_default().trim();
        let mut to_tag = None;
        let mut from_tag = None;
        for param in parts {
            let Some((name, value)) = param.split_once('=') else {
                continue;
            };
            let name = name.trim();
            if name.eq_ignore_ascii_case("to-tag") {
                to_tag = Some(value.trim());
            } else if name.eq_ignore_ascii_case("from-tag") {
                from_tag = Some(value.trim());
            }
        }
        let (Some(to_tag), Some(from_tag)) = (to_tag, from_tag) else {
            return false;
        };

        self.calls.values().any(|call| {
            call.call_id == call_id
                && call.local_tag == to_tag
                && call.remote_tag.as_deref().unwrap_or_default() == from_tag
        })
    }
}
