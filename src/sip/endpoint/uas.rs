//! Requests received from the peer: the UAS side of transactions and dialogs
//! (RFC 3261 §8.2, §12.2.2, §13.3, §17.2).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::super::call::{Call, CallHandle, CallState, DialogKey};
use super::super::message::{
    address_uri, build_response, IncomingRequest, MessageError, Method, RawMessage, RequestMethod,
    ResponseParts, ViaHop,
};
use super::super::timer::{Timer, TimerTable, T1, T4, TIMEOUT_64_T1};
use super::super::transaction::{InviteServerState, ServerKey, ServerKind, ServerTransaction};
use super::super::transport::{Received, Route};
use super::{
    EndCause, Endpoint, Event, IncomingCall, TimerOwner, ALLOW, DEFAULT_SIP_PORT, SUPPORTED,
};

impl Endpoint {
    pub(super) fn handle_request(
        &mut self,
        now: Instant,
        received: Received,
        request: IncomingRequest,
    ) {
        let destination = reply_route(received, &request.via);

        if request.is(Method::Ack) {
            if !self.rejects_foreign_source(now, received, destination, &request) {
                self.handle_ack(now, &request);
            }
            return;
        }

        // A retransmission gets the stored response on the transaction's own
        // route, so a copy from another source changes no transaction or call.
        let key = ServerKey::of(&request);
        if let Some(transaction) = self.server_transactions.get(&key) {
            if let Some(response) = transaction.last_response.clone() {
                let target = transaction.route;
                self.send(target, response);
            }
            return;
        }

        if self.rejects_foreign_source(now, received, destination, &request) {
            return;
        }

        if self.drops_untrusted(received, &request) {
            self.counters.untrusted_dropped += 1;
            tracing::debug!(source = %received.source, "dropped request from an untrusted source");
            return;
        }

        if request.is(Method::Cancel) {
            self.handle_cancel(now, destination, &request);
            return;
        }

        // RFC 3261 §8.2.2.3: every option tag in Require that is not in
        // SUPPORTED is listed in Unsupported of a 420.
        let unsupported: Vec<String> = request
            .header_values("Require")
            .into_iter()
            .filter(|tag| {
                !SUPPORTED
                    .split(',')
                    .any(|supported| supported.trim().eq_ignore_ascii_case(tag))
            })
            .collect();
        if !unsupported.is_empty() {
            let unsupported = unsupported.join(", ");
            self.answer_request(
                now,
                destination,
                &request,
                420,
                vec![("Unsupported", unsupported)],
                &[],
            );
            return;
        }

        if request.to_tag.is_some() {
            self.handle_in_dialog(now, destination, request);
            return;
        }

        match &request.method {
            RequestMethod::Known(Method::Invite) => {
                self.admit_new_invite(now, received, destination, request)
            }
            RequestMethod::Known(Method::Options) => {
                self.answer_options(now, destination, &request)
            }
            RequestMethod::Known(
                Method::Bye
                | Method::Info
                | Method::Notify
                | Method::Refer
                | Method::PRack
                | Method::Update,
            ) => {
                self.answer_request(now, destination, &request, 481, Vec::new(), &[]);
            }
            RequestMethod::Known(_) => {
                self.answer_request(
                    now,
                    destination,
                    &request,
                    405,
                    vec![("Allow", ALLOW.to_string())],
                    &[],
                );
            }
            RequestMethod::Extension(_) => {
                self.answer_request(
                    now,
                    destination,
                    &request,
                    501,
                    vec![("Allow", ALLOW.to_string())],
                    &[],
                );
            }
        }
    }

    /// Sends 400, 416 or 505 to a request that failed validation, if a reply can be routed.
    pub(super) fn reject_malformed(
        &mut self,
        received: Received,
        raw: &RawMessage,
        error: &MessageError,
    ) {
        let source = received.source;
        if raw.request_method() == Some("ACK") {
            tracing::debug!(%source, %error, "dropped malformed ACK");
            return;
        }
        let Some(via) = raw.top_via() else {
            tracing::debug!(%source, %error, "dropped malformed request without a readable Via");
            return;
        };

        let destination = reply_route(received, &via);
        let tag = self.random_token();
        let response = build_response(ResponseParts {
            request: raw,
            status: error.status(),
            to_tag: Some(&tag),
            copy_record_route: false,
            extra_headers: Vec::new(),
            body: &[],
            server: &self.config.user_agent,
        });
        tracing::info!(%source, %error, status = error.status(), "rejected malformed request");
        self.send(destination, response);
    }

    /// Sends a response and keeps it for retransmitted requests. A non-INVITE
    /// response is kept until Timer J. An INVITE rejected here gets a Completed
    /// INVITE transaction, which retransmits the response until the ACK.
    pub(super) fn answer_request(
        &mut self,
        now: Instant,
        destination: Route,
        request: &IncomingRequest,
        status: u16,
        extra_headers: Vec<(&'static str, String)>,
        body: &[u8],
    ) {
        let tag = match &request.to_tag {
            Some(_) => None,
            None => Some(self.random_token()),
        };
        let response = build_response(ResponseParts {
            request: &request.raw,
            status,
            to_tag: tag.as_deref(),
            copy_record_route: false,
            extra_headers,
            body,
            server: &self.config.user_agent,
        });
        // The final response to an INVITE waits for an ACK and is
        // retransmitted on Timer G (RFC 3261 §17.2.1).
        if request.is(Method::Invite) {
            let key = ServerKey::of(request);
            self.start_completed_invite(now, key, None, destination, &request.raw, response);
            return;
        }

        self.send(destination, response.clone());
        let key = ServerKey::of(request);
        let mut timers = TimerTable::default();
        self.timer_index.arm(
            &mut timers,
            TimerOwner::Server(key.clone()),
            Timer::J,
            now + TIMEOUT_64_T1,
        );
        self.server_transactions.insert(
            key,
            ServerTransaction {
                kind: ServerKind::NonInvite,
                route: destination,
                request: request.raw.clone(),
                last_response: Some(response),
                timers,
            },
        );
    }

    pub(super) fn answer_options(
        &mut self,
        now: Instant,
        destination: Route,
        request: &IncomingRequest,
    ) {
        let headers = vec![
            ("Allow", ALLOW.to_string()),
            ("Accept", "application/sdp".to_string()),
        ];
        self.answer_request(now, destination, request, 200, headers, &[]);
    }

    pub(super) fn handle_ack(&mut self, now: Instant, request: &IncomingRequest) {
        // ACK for a non-2xx final response: same branch as the INVITE (RFC 3261 §17.2.1).
        let invite_key = ServerKey::for_method(request, "INVITE");
        if let Some(transaction) = self.server_transactions.get_mut(&invite_key) {
            if let ServerKind::Invite { state, .. } = &mut transaction.kind {
                if *state == InviteServerState::Completed {
                    *state = InviteServerState::Confirmed;
                    transaction.timers = TimerTable::default();
                    self.timer_index.arm(
                        &mut transaction.timers,
                        TimerOwner::Server(invite_key),
                        Timer::I,
                        now + T4,
                    );
                }
                if *state != InviteServerState::Accepted {
                    return;
                }
            }
        }

        // ACK for a 2xx: a new transaction inside the dialog (RFC 3261 §13.2.2.4).
        let Some(handle) = self.find_dialog(request) else {
            tracing::debug!(call_id = %request.call_id, "dropped ACK that matches no transaction or dialog");
            return;
        };
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let acknowledged = call
            .pending_2xx
            .as_ref()
            .is_some_and(|pending| pending.cseq == request.cseq);
        if !acknowledged {
            return;
        }

        let reinvite = call
            .pending_2xx
            .as_ref()
            .is_some_and(|pending| pending.reinvite);
        call.pending_2xx = None;
        call.timers.clear(Timer::Retransmit2xx);
        call.timers.clear(Timer::H);
        if call.state != CallState::Answered {
            return;
        }

        call.state = CallState::Confirmed;
        tracing::info!(call_id = %call.call_id, state = "confirmed", "dialog state changed");
        let ack_sdp = (request.content_type().as_deref() == Some("application/sdp")
            && !request.body.is_empty())
        .then(|| request.body.clone());
        if reinvite {
            self.emit(Event::ReofferConfirmed {
                call: handle,
                ack_sdp,
            });
        } else {
            self.emit(Event::CallConfirmed {
                call: handle,
                ack_sdp,
            });
        }
    }

    pub(super) fn handle_cancel(
        &mut self,
        now: Instant,
        destination: Route,
        request: &IncomingRequest,
    ) {
        let invite_key = ServerKey::for_method(request, "INVITE");
        let Some(transaction) = self.server_transactions.get(&invite_key) else {
            self.answer_request(now, destination, request, 481, Vec::new(), &[]);
            return;
        };
        let ServerKind::Invite { state, call, .. } = transaction.kind.clone() else {
            self.answer_request(now, destination, request, 481, Vec::new(), &[]);
            return;
        };

        // RFC 3261 §9.2: the 200 to CANCEL carries the To tag of the INVITE's response.
        let tag = call
            .and_then(|call| self.calls.get(&call))
            .map_or_else(|| self.random_token(), |entry| entry.local_tag.clone());
        let response = build_response(ResponseParts {
            request: &request.raw,
            status: 200,
            to_tag: Some(&tag),
            copy_record_route: false,
            extra_headers: Vec::new(),
            body: &[],
            server: &self.config.user_agent,
        });
        self.send(destination, response.clone());
        let key = ServerKey::of(request);
        let mut timers = TimerTable::default();
        self.timer_index.arm(
            &mut timers,
            TimerOwner::Server(key.clone()),
            Timer::J,
            now + TIMEOUT_64_T1,
        );
        self.server_transactions.insert(
            key,
            ServerTransaction {
                kind: ServerKind::NonInvite,
                route: destination,
                request: request.raw.clone(),
                last_response: Some(response),
                timers,
            },
        );

        // A CANCEL after the final response has no effect (RFC 3261 §9.2).
        // A cancelled re-INVITE fails with 487 but leaves the call up.
        let pending_call = call.filter(|call| self.calls.contains_key(call));
        let (InviteServerState::Proceeding, Some(call)) = (state, pending_call) else {
            return;
        };
        let is_initial = self
            .calls
            .get(&call)
            .is_some_and(|entry| entry.invite_key == invite_key);
        if is_initial {
            self.send_invite_error(now, call, 487);
            self.end_call(now, call, EndCause::Cancelled);
        } else {
            self.fail_pending_reoffer(now, call, 487);
        }
    }

    /// Sends 100 Trying, creates the call in state Offered and emits
    /// `IncomingCall`, unless the body or Accept rules out SDP (415 or 406).
    pub(super) fn handle_new_invite(
        &mut self,
        now: Instant,
        received: Received,
        destination: Route,
        request: IncomingRequest,
        session_interval: Option<Duration>,
    ) {
        let source = received.source;
        let handle = CallHandle(self.next_handle);
        self.next_handle += 1;
        let key = ServerKey::of(&request);
        let local_tag = self.random_token();

        // RFC 3261 §8.2.3, §21.4.13: refuse a body or Accept we cannot serve
        // before anything else, so no 100 Trying precedes the rejection.
        if let Some(status) = media_rejection(&request) {
            let response = build_response(ResponseParts {
                request: &request.raw,
                status,
                to_tag: Some(&local_tag),
                copy_record_route: false,
                extra_headers: vec![("Accept", "application/sdp".to_string())],
                body: &[],
                server: &self.config.user_agent,
            });
            tracing::info!(call_id = %request.call_id, status, "rejected INVITE with unsupported media type or Accept");
            self.start_completed_invite(
                now,
                key,
                Some(handle),
                destination,
                &request.raw,
                response,
            );
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

        let from = request.header("From").unwrap_or_default().to_string();
        let to = request.header("To").unwrap_or_default().to_string();
        let remote_target = request.header_values("Contact").first().map_or_else(
            || address_uri(&from).to_string(),
            |contact| address_uri(contact).to_string(),
        );
        let call = Call {
            call_id: request.call_id.clone(),
            state: CallState::Offered,
            // Requests we send in the dialog go to where the INVITE came
            // from, which differs from the reply address of a UDP request
            // without rport.
            route: Route {
                destination: source,
                ..destination
            },
            secure: request
                .request_uri
                .get(..5)
                .is_some_and(|scheme| scheme.eq_ignore_ascii_case("sips:")),
            local_tag: local_tag.clone(),
            remote_tag: request.from_tag.clone(),
            invite_key: key,
            invite_cseq: request.cseq,
            local_uri: format!("{to};tag={local_tag}"),
            remote_uri: from.clone(),
            remote_target,
            route_set: request.header_values("Record-Route"),
            local_cseq: 0,
            remote_cseq: request.cseq,
            last_sdp: Vec::new(),
            pending_2xx: None,
            pending_reoffer: None,
            session_interval,
            timers: TimerTable::default(),
            started_at: now,
        };
        self.dialogs.insert(call.dialog_key(), handle);
        self.calls.insert(handle, call);

        tracing::info!(call_id = %request.call_id, %source, state = "offered", "dialog state changed");
        let sdp_offer = (request.content_type().as_deref() == Some("application/sdp")
            && !request.body.is_empty())
        .then(|| request.body.clone());
        self.emit(Event::IncomingCall(IncomingCall {
            call: handle,
            call_id: request.call_id.clone(),
            source,
            transport: received.transport,
            request_uri: request.request_uri.clone(),
            from,
            to,
            p_asserted_identity: request.header_values("P-Asserted-Identity"),
            remote_party_id: request.header_values("Remote-Party-ID"),
            privacy: request.header("Privacy").map(str::to_string),
            sdp_offer,
        }));
    }

    pub(super) fn find_dialog(&self, request: &IncomingRequest) -> Option<CallHandle> {
        let key = DialogKey {
            call_id: request.call_id.clone(),
            local_tag: request.to_tag.clone()?,
            remote_tag: request.from_tag.clone().unwrap_or_default(),
        };
        self.dialogs.get(&key).copied()
    }

    pub(super) fn handle_in_dialog(
        &mut self,
        now: Instant,
        destination: Route,
        request: IncomingRequest,
    ) {
        let Some(handle) = self.find_dialog(&request) else {
            tracing::debug!(call_id = %request.call_id, "no dialog for in-dialog request");
            self.answer_request(now, destination, &request, 481, Vec::new(), &[]);
            return;
        };

        // RFC 3261 §12.2.2: a CSeq lower than the last one is out of order.
        let out_of_order = self
            .calls
            .get(&handle)
            .is_some_and(|call| request.cseq < call.remote_cseq);
        if out_of_order {
            self.answer_request(now, destination, &request, 500, Vec::new(), &[]);
            return;
        }
        if let Some(call) = self.calls.get_mut(&handle) {
            call.remote_cseq = request.cseq;
        }

        match &request.method {
            RequestMethod::Known(Method::Bye) => {
                self.answer_request(now, destination, &request, 200, Vec::new(), &[]);
                self.end_call(now, handle, EndCause::ByeReceived);
            }
            RequestMethod::Known(Method::Invite) => {
                self.handle_reinvite(now, destination, handle, request)
            }
            RequestMethod::Known(Method::Options) => {
                self.answer_options(now, destination, &request)
            }
            RequestMethod::Known(Method::Info) => {
                self.answer_request(now, destination, &request, 200, Vec::new(), &[]);
                self.emit(Event::Info {
                    call: handle,
                    content_type: request.content_type(),
                    body: request.body.clone(),
                });
            }
            RequestMethod::Known(Method::Notify) => {
                self.handle_notify(now, destination, handle, &request)
            }
            RequestMethod::Known(Method::Refer) => {
                // NOTE: the IVR transfers calls but does not accept being
                // transferred; a REFER from the peer is declined.
                self.answer_request(now, destination, &request, 403, Vec::new(), &[]);
            }
            RequestMethod::Known(_) => {
                self.answer_request(
                    now,
                    destination,
                    &request,
                    405,
                    vec![("Allow", ALLOW.to_string())],
                    &[],
                );
            }
            RequestMethod::Extension(_) => {
                self.answer_request(
                    now,
                    destination,
                    &request,
                    501,
                    vec![("Allow", ALLOW.to_string())],
                    &[],
                );
            }
        }
    }

    pub(super) fn handle_notify(
        &mut self,
        now: Instant,
        destination: Route,
        handle: CallHandle,
        request: &IncomingRequest,
    ) {
        let event_package = request
            .header("Event")
            .and_then(|value| value.split(';').next())
            .map(|package| package.trim().to_ascii_lowercase());
        if event_package.as_deref() != Some("refer") {
            // 489 Bad Event (RFC 6665) for an event package other than refer.
            self.answer_request(now, destination, request, 489, Vec::new(), &[]);
            return;
        }

        let Some(status) = sipfrag_status(&request.body) else {
            tracing::info!(call_id = %request.call_id, "NOTIFY for refer without a readable sipfrag status line");
            self.answer_request(now, destination, request, 400, Vec::new(), &[]);
            return;
        };
        let terminated = request
            .header("Subscription-State")
            .and_then(|value| value.split(';').next())
            .is_some_and(|state| state.trim().eq_ignore_ascii_case("terminated"));

        self.answer_request(now, destination, request, 200, Vec::new(), &[]);
        if let Some(call) = self.calls.get(&handle) {
            tracing::info!(call_id = %call.call_id, status, terminated, "transfer progress");
        }
        self.emit(Event::TransferProgress {
            call: handle,
            status,
            final_: status >= 200 || terminated,
        });
    }

    pub(super) fn send_invite_error(&mut self, now: Instant, call: CallHandle, status: u16) {
        self.send_invite_error_with(now, call, status, Vec::new());
    }

    /// Sends a non-2xx final response on the call's INVITE transaction and starts Timers G and H.
    pub(super) fn send_invite_error_with(
        &mut self,
        now: Instant,
        call: CallHandle,
        status: u16,
        extra_headers: Vec<(&'static str, String)>,
    ) {
        let Some(entry) = self.calls.get(&call) else {
            return;
        };
        let key = entry.invite_key.clone();
        let tag = entry.local_tag.clone();
        let Some(transaction) = self.server_transactions.get(&key) else {
            return;
        };

        let response = build_response(ResponseParts {
            request: &transaction.request,
            status,
            to_tag: Some(&tag),
            copy_record_route: false,
            extra_headers,
            body: &[],
            server: &self.config.user_agent,
        });
        let route = transaction.route;
        let request = transaction.request.clone();
        self.start_completed_invite(now, key, Some(call), route, &request, response);
    }

    pub(super) fn start_completed_invite(
        &mut self,
        now: Instant,
        key: ServerKey,
        call: Option<CallHandle>,
        destination: Route,
        request: &RawMessage,
        response: Vec<u8>,
    ) {
        self.send(destination, response.clone());
        // RFC 3261 §17.2.1: Timer G retransmits only over unreliable transports.
        let mut timers = TimerTable::default();
        let owner = TimerOwner::Server(key.clone());
        if !destination.transport.is_stream() {
            self.timer_index
                .arm(&mut timers, owner.clone(), Timer::G, now + T1);
        }
        self.timer_index
            .arm(&mut timers, owner, Timer::H, now + TIMEOUT_64_T1);
        self.server_transactions.insert(
            key,
            ServerTransaction {
                kind: ServerKind::Invite {
                    state: InviteServerState::Completed,
                    call,
                    retransmit_interval: T1,
                },
                route: destination,
                request: request.clone(),
                last_response: Some(response),
                timers,
            },
        );
    }
}

/// Returns where responses to a request go (RFC 3261 §18.2.2, RFC 3581).
/// On TCP and TLS: back on its connection, else to its source address. On
/// UDP: the source IP, and the source port with rport, else the Via port or 5060.
fn reply_route(received: Received, via: &ViaHop) -> Route {
    let destination = if received.transport.is_stream() {
        received.source
    } else {
        let port = if via.rport {
            received.source.port()
        } else {
            via.port.unwrap_or(DEFAULT_SIP_PORT)
        };
        SocketAddr::new(received.source.ip(), port)
    };
    Route {
        transport: received.transport,
        local: received.local,
        destination,
        connection: received.connection,
    }
}

/// Returns 415 or 406 when an INVITE's body or Accept rules out SDP (RFC 3261 §21.4.7, §21.4.13).
fn media_rejection(request: &IncomingRequest) -> Option<u16> {
    if !request.body.is_empty() {
        // NOTE: a multipart/mixed body is accepted, but its SDP part is not
        // extracted, so such a call arrives with `sdp_offer` None.
        let supported = matches!(
            request.content_type().as_deref(),
            Some("application/sdp") | Some("multipart/mixed")
        );
        if !supported {
            return Some(415);
        }
    }

    let accept = request.header_values("Accept");
    if accept.is_empty() {
        return None;
    }
    let accepts_sdp = accept.iter().any(|value| {
        let media_type = value
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        matches!(
            media_type.as_str(),
            "application/sdp" | "application/*" | "*/*"
        )
    });
    (!accepts_sdp).then_some(406)
}

/// Returns the status code of a message/sipfrag body's status line (RFC 3420), e.g. `SIP/2.0 180 Ringing`.
fn sipfrag_status(body: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(body).ok()?;
    let line = text.lines().next()?;
    let mut parts = line.split_whitespace();
    if parts.next()? != "SIP/2.0" {
        return None;
    }
    let code = parts.next()?;
    let status: u16 = code.parse().ok()?;
    (code.len() == 3 && (100..=699).contains(&status)).then_some(status)
}
