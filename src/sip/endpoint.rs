//! The sans-I/O user agent endpoint: transactions, dialogs and calls of an IVR.
//!
//! The endpoint accepts or rejects INVITEs (as a UAS) and sends BYE and REFER
//! inside the dialogs it created. It speaks UDP only.

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use ring::rand::{SecureRandom, SystemRandom};

use super::call::{Call, CallHandle, CallState, DialogKey, Pending2xx};
use super::message::{
    build_response, split_header_values, IncomingRequest, IncomingResponse, RawMessage,
    ResponseParts,
};
use super::timer::{Timer, TimerTable, T1, TIMEOUT_64_T1};
use super::transaction::{
    ClientPurpose, ClientTransaction, InviteServerState, ServerKey, ServerKind, ServerTransaction,
};

/// Methods this endpoint implements, sent in Allow (RFC 3261 §20.5).
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, REFER, NOTIFY, INFO";

/// Max-Forwards of the requests we send (RFC 3261 §8.1.1.6 recommends 70).
const MAX_FORWARDS: &str = "70";

/// Default SIP port over UDP (RFC 3261 §19.1.2), used when a Via has no port.
const DEFAULT_SIP_PORT: u16 = 5060;

/// Configuration of an [`Endpoint`].
#[derive(Clone, Debug)]
pub struct EndpointConfig {
    /// Address put in Via/Contact of what we send (the SIP listen address).
    pub local_addr: SocketAddr,
    /// Value of the User-Agent / Server header.
    pub user_agent: String,
}

/// A datagram the driver must send.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct Transmit {
    /// Destination address.
    pub destination: SocketAddr,
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
    /// Request-URI, as text: the dialled number or service address.
    pub request_uri: String,
    /// From header value (name-addr) as received.
    pub from: String,
    /// To header value (name-addr) as received.
    pub to: String,
    /// Each P-Asserted-Identity value; RFC 3325 allows one sip and one tel URI.
    pub p_asserted_identity: Vec<String>,
    /// Raw Privacy header value (RFC 3323), if present.
    pub privacy: Option<String>,
    /// INVITE body when Content-Type is application/sdp.
    pub sdp_offer: Option<Vec<u8>>,
}

/// Notification from the endpoint to the application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A new INVITE outside any dialog; 100 Trying has already been queued.
    IncomingCall(IncomingCall),
    /// The ACK for our 2xx arrived.
    CallConfirmed { call: CallHandle },
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
}

/// A sans-I/O SIP user agent for an IVR (RFC 3261, UDP only).
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
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            next_handle: 1,
            random: SystemRandom::new(),
            fallback_token_counter: Cell::new(0),
        }
    }

    /// Feeds one received UDP datagram (driver calls it on every recv).
    ///
    /// Malformed requests get 400 (505 for a wrong version, 416 for an
    /// unsupported URI scheme) when their Via can be read, and are dropped
    /// otherwise. Malformed responses are dropped.
    pub fn handle_datagram(&mut self, now: Instant, source: SocketAddr, datagram: &[u8]) {
        let mut raw = match RawMessage::frame(datagram) {
            Ok(raw) => raw,
            Err(error) => {
                tracing::debug!(%source, %error, "dropped datagram");
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

        raw.stamp_received(source);
        match IncomingRequest::validate(&raw) {
            Ok(request) => self.handle_request(now, source, request),
            Err(error) => self.reject_malformed(source, &raw, &error),
        }
    }

    /// Driver calls it when `poll_timeout()` has passed; spurious calls are harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        let server_keys: Vec<ServerKey> = self
            .server_transactions
            .iter()
            .filter(|(_, transaction)| transaction.timers.earliest().is_some_and(|at| at <= now))
            .map(|(key, _)| key.clone())
            .collect();
        for key in server_keys {
            self.expire_server_timers(now, &key);
        }

        let client_keys: Vec<String> = self
            .client_transactions
            .iter()
            .filter(|(_, transaction)| transaction.timers.earliest().is_some_and(|at| at <= now))
            .map(|(key, _)| key.clone())
            .collect();
        for key in client_keys {
            self.expire_client_timers(now, &key);
        }

        let calls: Vec<CallHandle> = self
            .calls
            .iter()
            .filter(|(_, call)| call.timers.earliest().is_some_and(|at| at <= now))
            .map(|(handle, _)| *handle)
            .collect();
        for handle in calls {
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
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
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

    /// Answers an offered call with 200 OK carrying `sdp_answer`.
    ///
    /// The 2xx is retransmitted until the ACK arrives; without an ACK after
    /// 64·T1 the endpoint sends BYE and emits `CallEnded { AckTimeout }`.
    pub fn accept_call(
        &mut self,
        now: Instant,
        call: CallHandle,
        sdp_answer: Vec<u8>,
    ) -> Result<(), EndpointError> {
        let (invite_key, local_tag, invite_cseq) = {
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
            (
                entry.invite_key.clone(),
                entry.local_tag.clone(),
                entry.invite_cseq,
            )
        };

        let contact = self.contact();
        let Some(transaction) = self.server_transactions.get_mut(&invite_key) else {
            return Err(EndpointError::UnknownCall { call });
        };
        let response = build_response(ResponseParts {
            request: &transaction.request,
            status: 200,
            to_tag: Some(&local_tag),
            copy_record_route: true,
            extra_headers: vec![
                ("Contact", contact),
                ("Allow", ALLOW.to_string()),
                ("Content-Type", "application/sdp".to_string()),
            ],
            body: &sdp_answer,
            server: &self.config.user_agent,
        });
        transaction.kind = ServerKind::Invite {
            state: InviteServerState::Accepted,
            call: Some(call),
            retransmit_interval: T1,
        };
        transaction.last_response = Some(response.clone());
        transaction.timers = TimerTable::default();
        transaction.timers.set(Timer::L, now + TIMEOUT_64_T1);
        let destination = transaction.destination;

        self.transmits.push_back(Transmit {
            destination,
            payload: response.clone(),
        });
        if let Some(entry) = self.calls.get_mut(&call) {
            entry.state = CallState::Answered;
            entry.last_sdp_answer = sdp_answer;
            entry.pending_2xx = Some(Pending2xx {
                response,
                cseq: invite_cseq,
                retransmit_interval: T1,
            });
            entry.timers.set(Timer::Retransmit2xx, now + T1);
            entry.timers.set(Timer::H, now + TIMEOUT_64_T1);
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

    fn contact(&self) -> String {
        format!("<sip:{}>", self.config.local_addr)
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

    fn send(&mut self, destination: SocketAddr, payload: Vec<u8>) {
        self.transmits.push_back(Transmit {
            destination,
            payload,
        });
    }

    /// Removes the call and its dialog, logs, and emits `CallEnded`.
    fn end_call(&mut self, now: Instant, call: CallHandle, cause: EndCause) {
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

/// Returns whether `uri` can be put inside `<>` in a header without breaking the message.
fn is_bare_uri(uri: &str) -> bool {
    !uri.is_empty()
        && !uri.contains(['<', '>', '\r', '\n', '\0'])
        && split_header_values(uri).len() == 1
}

#[cfg(test)]
mod tests;
mod timers;
mod uac;
mod uas;
