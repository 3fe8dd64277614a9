//! The sans-I/O user agent endpoint: transactions, dialogs and calls of an IVR.
//!
//! The endpoint accepts or rejects INVITEs (as a UAS) and sends BYE and REFER
//! inside the dialogs it created, over UDP, TCP or TLS. It applies the edge
//! policy (trusted peers, rate limits, call limit, scanner filter) to every
//! received message before any transaction handles it.

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use ring::rand::{SecureRandom, SystemRandom};

use super::call::{Call, CallHandle, CallState, DialogKey, Pending2xx};
use super::edge::{EdgeCounters, EdgePolicy, LogThrottle, RateLimiter};
use super::message::{
    build_response, split_header_values, IncomingRequest, IncomingResponse, MessageError,
    RawMessage, ResponseParts,
};
use super::timer::{Timer, TimerIndex, TimerTable, T1, TIMEOUT_64_T1};
use super::transaction::{
    ClientPurpose, ClientTransaction, InviteServerState, ServerKey, ServerKind, ServerTransaction,
};
use super::transport::{ConnectionId, FramingError, Received, Route, Transport};

/// Methods this endpoint implements, sent in Allow (RFC 3261 §20.5).
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, REFER, NOTIFY, INFO";

/// Option tags this endpoint supports, sent in Supported (RFC 3261 §20.37).
/// `timer` is the session timer of RFC 4028.
pub const SUPPORTED: &str = "timer";

/// Max-Forwards of the requests we send (RFC 3261 §8.1.1.6 recommends 70).
const MAX_FORWARDS: &str = "70";

/// Default SIP port over UDP (RFC 3261 §19.1.2), used when a Via has no port.
const DEFAULT_SIP_PORT: u16 = 5060;

/// Configuration of an [`Endpoint`].
#[derive(Clone, Debug)]
pub struct EndpointConfig {
    /// UDP listener assumed by [`Endpoint::handle_datagram`], which predates
    /// several transports. [`Endpoint::handle_message`] names the listener per message.
    pub local_addr: SocketAddr,
    /// Value of the User-Agent / Server header.
    pub user_agent: String,
    /// Trusted peers, rate and call limits, scanner filter.
    pub edge: EdgePolicy,
}

/// A message the driver must send.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct Transmit {
    /// Transport to send on.
    pub transport: Transport,
    /// Our listener address: on UDP the socket to send from.
    pub local: SocketAddr,
    /// Destination address.
    pub destination: SocketAddr,
    /// On TCP and TLS, the connection to write to while it is open. When it
    /// has closed, or is None, the driver opens a connection to `destination`
    /// (RFC 3261 §18.2.2).
    pub connection: Option<ConnectionId>,
    /// The complete SIP message.
    pub payload: Vec<u8>,
}

/// Cause of the end of a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndCause {
    /// The peer sent BYE.
    ByeReceived,
    /// The peer sent CANCEL before the call was answered.
    Cancelled,
    /// Our 2xx got no ACK within 64·T1; we sent BYE.
    AckTimeout,
    /// The application hung up: our BYE got a final response or timed out, or we sent 480 to the unanswered INVITE.
    HungUp,
    /// The application rejected the call with a final non-2xx response.
    Rejected,
    /// The session interval (RFC 4028) passed without a refresh; we sent BYE.
    SessionExpired,
}

/// A new call offered to the application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncomingCall {
    /// Handle for the commands on this call.
    pub call: CallHandle,
    /// Call-ID of the INVITE.
    pub call_id: String,
    /// Address the INVITE came from.
    pub source: SocketAddr,
    /// Transport the INVITE came in on; the dialog's requests use it too.
    pub transport: Transport,
    /// Request-URI, as text: the dialled number or service address.
    pub request_uri: String,
    /// From header value (name-addr) as received.
    pub from: String,
    /// To header value (name-addr) as received.
    pub to: String,
    /// Each P-Asserted-Identity value; RFC 3325 allows one sip and one tel URI.
    pub p_asserted_identity: Vec<String>,
    /// Each Remote-Party-ID value (draft-ietf-sip-privacy-04, still sent by
    /// older PBXs), to be believed only from a trusted peer like P-Asserted-Identity.
    pub remote_party_id: Vec<String>,
    /// Raw Privacy header value (RFC 3323), if present.
    pub privacy: Option<String>,
    /// INVITE body when Content-Type is application/sdp. None is a late
    /// offer: the application passes its own offer to `accept_call` and gets
    /// the answer in `CallConfirmed`.
    pub sdp_offer: Option<Vec<u8>>,
}

/// Notification from the endpoint to the application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A new INVITE outside any dialog; 100 Trying has already been queued.
    IncomingCall(IncomingCall),
    /// The ACK for our 2xx to the initial INVITE arrived. `ack_sdp` is its
    /// SDP body: the answer to our offer after a late-offer INVITE.
    CallConfirmed {
        call: CallHandle,
        ack_sdp: Option<Vec<u8>>,
    },
    /// A re-INVITE arrived (hold, resume, new media or a session refresh) and
    /// got 100 Trying. The application must call `answer_reoffer`, or
    /// `reject_reoffer` (488) for an offer it cannot answer. `sdp` is None
    /// when the re-INVITE carries no offer; the application then sends an
    /// offer and the answer arrives in `ReofferConfirmed`.
    Reoffer {
        call: CallHandle,
        sdp: Option<Vec<u8>>,
    },
    /// The ACK for our 2xx to a re-INVITE arrived, with its SDP body if any.
    ReofferConfirmed {
        call: CallHandle,
        ack_sdp: Option<Vec<u8>>,
    },
    /// An INFO arrived in the dialog and was answered 200 (DTMF relay and
    /// similar); `content_type` is its media type in lower case.
    Info {
        call: CallHandle,
        content_type: Option<String>,
        body: Vec<u8>,
    },
    /// The call is over for any reason; no more events for this handle follow.
    CallEnded { call: CallHandle, cause: EndCause },
    /// REFER answered 2xx.
    TransferAccepted { call: CallHandle },
    /// REFER answered with a final non-2xx, or timed out (then status 408).
    TransferRejected { call: CallHandle, status: u16 },
    /// A NOTIFY (Event: refer, message/sipfrag body) arrived and was answered 200.
    /// `status` is the status code of the sipfrag status line. `final_` is true
    /// for 2xx to 6xx or when Subscription-State is terminated.
    TransferProgress {
        call: CallHandle,
        status: u16,
        final_: bool,
    },
}

/// A command from the application that the endpoint cannot carry out.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("call {call:?} is unknown or has ended; drop the handle")]
    UnknownCall { call: CallHandle },
    #[error("call {call:?} is {state}, so it cannot {action}")]
    InvalidState {
        call: CallHandle,
        state: &'static str,
        action: &'static str,
    },
    #[error("status {status} is not a final error status; use 300 to 699")]
    InvalidRejectStatus { status: u16 },
    #[error("the {header} value contains <, >, a line break or a NUL; pass a bare URI")]
    InvalidUri { header: &'static str },
    #[error("the remote target (Contact of the INVITE) of call {call:?} is not a SIP URI, so no request can be sent")]
    InvalidRemoteTarget { call: CallHandle },
    #[error("call {call:?} has no re-INVITE waiting for an answer")]
    NoPendingReoffer { call: CallHandle },
}

/// A sans-I/O SIP user agent for an IVR (RFC 3261 over UDP, TCP and TLS).
///
/// After every call of a `handle_*` method or a command, the driver drains
/// [`Endpoint::poll_transmit`] and [`Endpoint::poll_event`] until they return
/// None, then sleeps until [`Endpoint::poll_timeout`] (or the next datagram)
/// and calls [`Endpoint::handle_timeout`]. The endpoint never reads a clock
/// or touches a socket.
pub struct Endpoint {
    /// Listen address and User-Agent.
    config: EndpointConfig,
    /// Server transactions, to answer retransmissions and match ACK and CANCEL.
    server_transactions: HashMap<ServerKey, ServerTransaction>,
    /// Our BYE and REFER transactions, keyed by branch.
    client_transactions: HashMap<String, ClientTransaction>,
    /// Calls that have not ended.
    calls: HashMap<CallHandle, Call>,
    /// Dialog index for requests with a To tag.
    dialogs: HashMap<DialogKey, CallHandle>,
    /// Deadlines of the timers of all transactions and calls, so that
    /// `poll_timeout` and `handle_timeout` need not visit every one of them.
    timer_index: TimerIndex<TimerOwner>,
    /// Datagrams waiting for the driver.
    transmits: VecDeque<Transmit>,
    /// Events waiting for the application.
    events: VecDeque<Event>,
    /// Next call handle number.
    next_handle: u64,
    /// Source of tags and branches, which RFC 3261 §19.3 requires to be random.
    random: SystemRandom,
    /// Counter for tags and branches if the OS random source fails.
    fallback_token_counter: Cell<u64>,
    /// Token buckets per source IP, applied before a message is parsed.
    rate_limiter: RateLimiter,
    /// Counts of what the edge policy turned away so far.
    counters: EdgeCounters,
    /// Rate limit of the warning about in-dialog requests from foreign sources.
    foreign_source_log: LogThrottle,
    /// Set by `set_draining`: new INVITEs get 503 so a load balancer picks another node.
    draining: bool,
}

impl Endpoint {
    /// Creates an endpoint with no calls and no armed timers.
    pub fn new(config: EndpointConfig) -> Self {
        Endpoint {
            config,
            server_transactions: HashMap::new(),
            client_transactions: HashMap::new(),
            calls: HashMap::new(),
            dialogs: HashMap::new(),
            timer_index: TimerIndex::default(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            next_handle: 1,
            random: SystemRandom::new(),
            fallback_token_counter: Cell::new(0),
            rate_limiter: RateLimiter::default(),
            counters: EdgeCounters::default(),
            foreign_source_log: LogThrottle::default(),
            draining: false,
        }
    }

    /// Feeds one UDP datagram received on `config.local_addr`; the same as
    /// [`Endpoint::handle_message`] with that listener.
    pub fn handle_datagram(&mut self, now: Instant, source: SocketAddr, datagram: &[u8]) {
        let received = Received {
            transport: Transport::Udp,
            local: self.config.local_addr,
            source,
            connection: None,
        };
        self.handle_message(now, received, datagram);
    }

    /// Feeds one received message: a UDP datagram, or a message framed from a
    /// TCP or TLS stream by [`crate::sip::StreamFramer`]. The driver calls it
    /// for every message.
    ///
    /// Messages over the rate limit of their source or over
    /// `max_message_bytes` are dropped. Malformed requests get 400 (505 for a
    /// wrong version, 416 for an unsupported URI scheme) when their Via can
    /// be read, and are dropped otherwise. That includes a header section
    /// without its empty line and a header line that cannot be read.
    /// Malformed responses are dropped.
    pub fn handle_message(&mut self, now: Instant, received: Received, bytes: &[u8]) {
        let source = received.source;
        if bytes.len() > self.config.edge.max_message_bytes {
            self.counters.oversized += 1;
            tracing::debug!(%source, size = bytes.len(), "dropped oversized message");
            return;
        }
        if !self.rate_limiter.allow(&self.config.edge, source.ip(), now) {
            self.counters.rate_limited += 1;
            return;
        }

        let mut raw = match RawMessage::frame(bytes) {
            Ok(raw) => raw,
            Err(error) => {
                tracing::debug!(%source, %error, "dropped message that cannot be framed");
                return;
            }
        };

        if raw.is_response() {
            match IncomingResponse::validate(&raw) {
                Ok(response) => self.handle_response(now, response),
                Err(error) => tracing::debug!(%source, %error, "dropped malformed response"),
            }
            return;
        }

        if let Some(user_agent) = raw.value("User-Agent") {
            if self.config.edge.is_scanner(user_agent) {
                self.counters.scanners_dropped += 1;
                tracing::debug!(%source, "dropped request from a scanner User-Agent");
                return;
            }
        }

        raw.stamp_received(source);
        match IncomingRequest::validate(&raw) {
            Ok(request) => self.handle_request(now, received, request),
            Err(error) => self.reject_malformed(received, &raw, &error),
        }
    }

    /// Answers a stream message that could not be framed: 400 when
    /// `header` (the header section, if complete) has a readable Via,
    /// nothing otherwise. The driver then closes the connection, because the
    /// stream has lost its message boundaries.
    pub fn reject_unframed(
        &mut self,
        received: Received,
        header: Option<&[u8]>,
        error: &FramingError,
    ) {
        let source = received.source;
        let Some(header) = header else {
            tracing::info!(%source, %error, "closing a SIP connection that cannot be framed");
            return;
        };
        let mut bytes = header.to_vec();
        bytes.extend_from_slice(b"\r\n\r\n");
        let Ok(raw) = RawMessage::frame(&bytes) else {
            tracing::info!(%source, %error, "closing a SIP connection that cannot be framed");
            return;
        };
        if raw.is_response() {
            tracing::info!(%source, %error, "closing a SIP connection after an unframed response");
            return;
        }
        let message_error = MessageError::Unframed {
            reason: error.to_string(),
        };
        self.reject_malformed(received, &raw, &message_error);
    }

    /// Makes new INVITEs get 503 with Retry-After (true) or be offered again
    /// (false). Calls in progress are not touched.
    pub fn set_draining(&mut self, draining: bool) {
        self.draining = draining;
    }

    /// Returns what the edge policy has turned away since the endpoint started.
    pub fn edge_counters(&self) -> EdgeCounters {
        self.counters
    }

    /// Driver calls it when `poll_timeout()` has passed; spurious calls are harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        let server_transactions = &self.server_transactions;
        let client_transactions = &self.client_transactions;
        let calls = &self.calls;
        let due = self.timer_index.take_due(now, |owner| {
            armed_earliest(server_transactions, client_transactions, calls, owner)
        });

        // Server transactions first, then client transactions, then calls:
        // the order in which the endpoint has always fired them.
        let mut server_keys = Vec::new();
        let mut client_keys = Vec::new();
        let mut call_handles = Vec::new();
        for owner in due {
            match owner {
                TimerOwner::Server(key) => server_keys.push(key),
                TimerOwner::Client(branch) => client_keys.push(branch),
                TimerOwner::Call(handle) => call_handles.push(handle),
            }
        }

        for key in server_keys {
            self.expire_server_timers(now, &key);
        }
        for key in client_keys {
            self.expire_client_timers(now, &key);
        }
        for handle in call_handles {
            self.expire_call_timers(now, handle);
        }
    }

    /// Returns the next datagram to send. Drained by the driver after every handle_* or command call, until None.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// Returns the next event for the application. Drained like `poll_transmit`.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Returns the earliest armed timer; the driver calls `handle_timeout` once it has passed.
    ///
    /// Costs O(log n) for n armed timers, plus the stale index entries it
    /// drops on the way, so the driver may call it on every loop turn.
    #[must_use]
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        let tables =
            self.server_transactions.len() + self.client_transactions.len() + self.calls.len();
        if self.timer_index.needs_rebuild(tables) {
            self.rebuild_timer_index();
        }

        let server_transactions = &self.server_transactions;
        let client_transactions = &self.client_transactions;
        let calls = &self.calls;
        self.timer_index.earliest(|owner| {
            armed_earliest(server_transactions, client_transactions, calls, owner)
        })
    }

    /// Returns the earliest armed timer by visiting every transaction and
    /// call: the scan that `poll_timeout` replaced, kept as the tests' oracle.
    #[cfg(test)]
    pub(crate) fn poll_timeout_by_scan(&self) -> Option<Instant> {
        let server = self
            .server_transactions
            .values()
            .filter_map(|t| t.timers.earliest());
        let client = self
            .client_transactions
            .values()
            .filter_map(|t| t.timers.earliest());
        let calls = self
            .calls
            .values()
            .filter_map(|call| call.timers.earliest());
        server.chain(client).chain(calls).min()
    }

    /// Answers an offered call with 200 OK carrying `sdp`: the answer to the
    /// INVITE's offer, or our offer when the INVITE had none (late offer).
    ///
    /// The 2xx is retransmitted until the ACK arrives; without an ACK after
    /// 64·T1 the endpoint sends BYE and emits `CallEnded { AckTimeout }`.
    /// When the INVITE asked for a session timer (RFC 4028), the 2xx carries
    /// Session-Expires with `refresher=uac` and the endpoint sends BYE if no
    /// refresh arrives in time.
    pub fn accept_call(
        &mut self,
        now: Instant,
        call: CallHandle,
        sdp: Vec<u8>,
    ) -> Result<(), EndpointError> {
        let state = self.call_state(call)?;
        if state != CallState::Offered {
            return Err(EndpointError::InvalidState {
                call,
                state: state.name(),
                action: "be accepted",
            });
        }
        let entry = self
            .calls
            .get(&call)
            .ok_or(EndpointError::UnknownCall { call })?;
        let invite_key = entry.invite_key.clone();
        let local_tag = entry.local_tag.clone();
        let invite_cseq = entry.invite_cseq;
        let session_interval = entry.session_interval;
        let contact = self.contact(entry);

        let mut extra_headers = vec![
            ("Contact", contact),
            ("Allow", ALLOW.to_string()),
            ("Supported", SUPPORTED.to_string()),
        ];
        extra_headers.extend(session_timer_headers(session_interval));
        extra_headers.push(("Content-Type", "application/sdp".to_string()));

        let Some(transaction) = self.server_transactions.get_mut(&invite_key) else {
            return Err(EndpointError::UnknownCall { call });
        };
        let response = build_response(ResponseParts {
            request: &transaction.request,
            status: 200,
            to_tag: Some(&local_tag),
            copy_record_route: true,
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
            TimerOwner::Server(invite_key),
            Timer::L,
            now + TIMEOUT_64_T1,
        );
        let route = transaction.route;

        self.send(route, response.clone());
        if let Some(entry) = self.calls.get_mut(&call) {
            entry.state = CallState::Answered;
            entry.last_sdp = sdp;
            entry.pending_2xx = Some(Pending2xx {
                response,
                cseq: invite_cseq,
                retransmit_interval: T1,
                reinvite: false,
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
            if let Some(interval) = session_interval {
                index.arm(
                    &mut entry.timers,
                    owner,
                    Timer::SessionExpires,
                    now + session_expiry_delay(interval),
                );
            }
            tracing::info!(call_id = %entry.call_id, state = "answered", "dialog state changed");
        }
        Ok(())
    }

    /// Rejects an offered call with a final `status` from 300 to 699 and emits `CallEnded { Rejected }`.
    pub fn reject_call(
        &mut self,
        now: Instant,
        call: CallHandle,
        status: u16,
    ) -> Result<(), EndpointError> {
        if !(300..=699).contains(&status) {
            return Err(EndpointError::InvalidRejectStatus { status });
        }
        let state = self.call_state(call)?;
        if state != CallState::Offered {
            return Err(EndpointError::InvalidState {
                call,
                state: state.name(),
                action: "be rejected",
            });
        }

        self.send_invite_error(now, call, status);
        self.end_call(now, call, EndCause::Rejected);
        Ok(())
    }

    /// Sends REFER (RFC 3515) in the confirmed dialog of `call`.
    ///
    /// `refer_to` is a bare URI, which may carry embedded headers
    /// (`?name=value&...`, values escaped with [`crate::sip::escape_uri_header_value`]).
    /// `referred_by` is a bare URI (RFC 3892). The outcome arrives as
    /// `TransferAccepted` or `TransferRejected`, then `TransferProgress` for each NOTIFY.
    pub fn transfer(
        &mut self,
        now: Instant,
        call: CallHandle,
        refer_to: &str,
        referred_by: &str,
    ) -> Result<(), EndpointError> {
        if !is_bare_uri(refer_to) {
            return Err(EndpointError::InvalidUri { header: "Refer-To" });
        }
        if !is_bare_uri(referred_by) {
            return Err(EndpointError::InvalidUri {
                header: "Referred-By",
            });
        }
        let state = self.call_state(call)?;
        if state != CallState::Confirmed {
            return Err(EndpointError::InvalidState {
                call,
                state: state.name(),
                action: "be transferred",
            });
        }

        let extra = vec![
            ("Refer-To", format!("<{refer_to}>")),
            ("Referred-By", format!("<{referred_by}>")),
        ];
        self.send_in_dialog(now, call, ClientPurpose::Refer, extra)?;
        if let Some(entry) = self.calls.get(&call) {
            tracing::info!(call_id = %entry.call_id, "sent REFER");
        }
        Ok(())
    }

    /// Ends the call: 480 when it was never answered (emits `CallEnded { HungUp }`
    /// at once), otherwise BYE (emits `CallEnded { HungUp }` when the BYE is
    /// answered or times out).
    pub fn hang_up(&mut self, now: Instant, call: CallHandle) -> Result<(), EndpointError> {
        let state = self.call_state(call)?;
        match state {
            CallState::Offered => {
                self.send_invite_error(now, call, 480);
                self.end_call(now, call, EndCause::HungUp);
                Ok(())
            }
            CallState::Answered | CallState::Confirmed => {
                // NOTE: RFC 3261 §15 says a UAS should wait for the ACK (or the
                // 2xx timeout) before sending BYE. This sends BYE at once and
                // stops retransmitting the 2xx.
                self.send_in_dialog(now, call, ClientPurpose::Bye, Vec::new())?;
                if let Some(entry) = self.calls.get_mut(&call) {
                    entry.pending_2xx = None;
                    entry.timers = TimerTable::default();
                    entry.state = CallState::Terminating;
                    tracing::info!(call_id = %entry.call_id, state = "terminating", "dialog state changed");
                }
                Ok(())
            }
            CallState::Terminating => Err(EndpointError::InvalidState {
                call,
                state: state.name(),
                action: "be hung up again",
            }),
        }
    }

    fn call_state(&self, call: CallHandle) -> Result<CallState, EndpointError> {
        self.calls
            .get(&call)
            .map(|entry| entry.state)
            .ok_or(EndpointError::UnknownCall { call })
    }

    /// Replaces the timer index with the deadlines armed now, dropping its
    /// stale entries.
    fn rebuild_timer_index(&mut self) {
        let server = self
            .server_transactions
            .iter()
            .map(|(key, transaction)| (TimerOwner::Server(key.clone()), &transaction.timers));
        let client = self
            .client_transactions
            .iter()
            .map(|(branch, transaction)| (TimerOwner::Client(branch.clone()), &transaction.timers));
        let calls = self
            .calls
            .iter()
            .map(|(handle, call)| (TimerOwner::Call(*handle), &call.timers));
        self.timer_index.rebuild(server.chain(client).chain(calls));
    }

    /// Returns our Contact for the dialog of `call`: the listener and transport
    /// the INVITE came in on, and a sips URI when the INVITE's was one
    /// (RFC 3261 §12.1.1).
    fn contact(&self, call: &Call) -> String {
        contact_for(call.route, call.secure)
    }

    fn random_token(&self) -> String {
        let mut bytes = [0u8; 8];
        if self.random.fill(&mut bytes).is_err() {
            // NOTE: ring fails only when the OS random source fails. Tags and
            // branches then come from a counter, which is unique within this
            // process but predictable.
            let counter = self.fallback_token_counter.get().wrapping_add(1);
            self.fallback_token_counter.set(counter);
            bytes = counter.to_be_bytes();
        }
        bytes.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    fn emit(&mut self, event: Event) {
        self.events.push_back(event);
    }

    fn send(&mut self, route: Route, payload: Vec<u8>) {
        self.transmits.push_back(transmit_on(route, payload));
    }

    /// Removes the call and its dialog, logs, and emits `CallEnded`.
    fn end_call(&mut self, now: Instant, call: CallHandle, cause: EndCause) {
        self.fail_pending_reoffer(now, call, 487);
        let Some(entry) = self.calls.remove(&call) else {
            return;
        };
        self.dialogs.remove(&entry.dialog_key());
        tracing::info!(
            call_id = %entry.call_id,
            state = "ended",
            ?cause,
            duration_ms = now.saturating_duration_since(entry.started_at).as_millis(),
            "dialog state changed"
        );
        self.emit(Event::CallEnded { call, cause });
    }
}

/// Returns the Transmit that sends `payload` along `route`.
fn transmit_on(route: Route, payload: Vec<u8>) -> Transmit {
    Transmit {
        transport: route.transport,
        local: route.local,
        destination: route.destination,
        connection: route.connection,
        payload,
    }
}

/// Returns a Contact value naming `route`'s listener: `sips:` for a dialog
/// set up with a sips Request-URI, otherwise `sip:` with `;transport=` for
/// TCP and TLS (UDP is the default and goes without it).
fn contact_for(route: Route, secure: bool) -> String {
    let local = route.local;
    match (secure, route.transport) {
        (true, _) => format!("<sips:{local}>"),
        (false, Transport::Udp) => format!("<sip:{local}>"),
        (false, transport) => format!("<sip:{local};transport={}>", transport.uri_param()),
    }
}

/// Returns whether `uri` can be put inside `<>` in a header without breaking the message.
fn is_bare_uri(uri: &str) -> bool {
    !uri.is_empty()
        && !uri.contains(['<', '>', '\r', '\n', '\0'])
        && split_header_values(uri).len() == 1
}

mod admission;
mod reinvite;
#[cfg(test)]
mod tests;
mod timers;
mod uac;
mod uas;

use reinvite::{session_expiry_delay, session_timer_headers};
use timers::{armed_earliest, TimerOwner};
