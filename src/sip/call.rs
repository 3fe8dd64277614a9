//! Dialog state of one call on the UAS side (RFC 3261 §12).

use std::time::{Duration, Instant};

use super::timer::TimerTable;
use super::transaction::ServerKey;
use super::transport::Route;

/// Opaque identifier of one call, handed to the application in
/// [`crate::sip::Event::IncomingCall`] and used in every command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CallHandle(pub(crate) u64);

/// Life-cycle state of a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CallState {
    /// INVITE received and 100 Trying sent. The application has not accepted or rejected it yet.
    Offered,
    /// 2xx sent; the ACK has not arrived.
    Answered,
    /// ACK received; the dialog is confirmed.
    Confirmed,
    /// We sent BYE and wait for its final response.
    Terminating,
}

impl CallState {
    /// Returns the state name used in logs and errors.
    pub fn name(self) -> &'static str {
        match self {
            CallState::Offered => "offered",
            CallState::Answered => "answered",
            CallState::Confirmed => "confirmed",
            CallState::Terminating => "terminating",
        }
    }
}

/// A 2xx to an INVITE that is retransmitted until its ACK (RFC 3261 §13.3.1.4).
#[derive(Clone, Debug)]
pub(crate) struct Pending2xx {
    /// Serialised 2xx.
    pub response: Vec<u8>,
    /// CSeq number of the INVITE; the ACK carries the same number.
    pub cseq: u32,
    /// Interval until the next retransmission, doubling up to T2.
    pub retransmit_interval: Duration,
    /// Whether it answers a re-INVITE, whose ACK emits `ReofferConfirmed`
    /// instead of `CallConfirmed`.
    pub reinvite: bool,
}

/// Key of the dialog index: Call-ID plus both tags (RFC 3261 §12).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct DialogKey {
    /// Call-ID of the dialog.
    pub call_id: String,
    /// Our tag, the To tag of requests the peer sends.
    pub local_tag: String,
    /// The peer's tag, the From tag of its requests; empty for an RFC 2543 peer without tags.
    pub remote_tag: String,
}

/// One call: the dialog state and what the endpoint needs to answer and send within it.
#[derive(Clone, Debug)]
pub(crate) struct Call {
    /// Call-ID, logged with every state change.
    pub call_id: String,
    /// Current state.
    pub state: CallState,
    /// Transport, listener, address and connection the INVITE came in on;
    /// the requests we send in the dialog take the same way.
    pub route: Route,
    /// Whether the INVITE's Request-URI was sips, so our Contact must be too (RFC 3261 §12.1.1).
    pub secure: bool,
    /// Our To tag, fixed for the dialog so that a retransmitted INVITE gets the same answer.
    pub local_tag: String,
    /// The peer's From tag, if it sent one.
    pub remote_tag: Option<String>,
    /// Key of the initial INVITE server transaction, for the final response.
    pub invite_key: ServerKey,
    /// CSeq number of the initial INVITE.
    pub invite_cseq: u32,
    /// Our URI with tag: the To of the INVITE plus our tag, the From of our requests.
    pub local_uri: String,
    /// The peer's URI with tag: the From of the INVITE, the To of our requests.
    pub remote_uri: String,
    /// Remote target: the Contact URI of the INVITE, the Request-URI of our requests.
    pub remote_target: String,
    /// Route set: the Record-Route values of the INVITE in received order (RFC 3261 §12.1.1).
    pub route_set: Vec<String>,
    /// CSeq number of the last request we sent in the dialog.
    pub local_cseq: u32,
    /// Highest CSeq number the peer used, to reject out-of-order requests (RFC 3261 §12.2.2).
    pub remote_cseq: u32,
    /// SDP body of our last 2xx (answer or late offer).
    pub last_sdp: Vec<u8>,
    /// A 2xx waiting for its ACK.
    pub pending_2xx: Option<Pending2xx>,
    /// Server transaction of a re-INVITE that waits for `answer_reoffer`.
    pub pending_reoffer: Option<ServerKey>,
    /// Session interval agreed under RFC 4028 with the peer as refresher;
    /// None when the peer asked for no session timer.
    pub session_interval: Option<Duration>,
    /// Armed timers: Retransmit2xx and H while a 2xx waits for its ACK,
    /// SessionExpires while a session timer runs.
    pub timers: TimerTable,
    /// When the INVITE arrived, for the call duration logged at its end.
    pub started_at: Instant,
}

impl Call {
    /// Returns the key of this call in the dialog index.
    pub fn dialog_key(&self) -> DialogKey {
        DialogKey {
            call_id: self.call_id.clone(),
            local_tag: self.local_tag.clone(),
            remote_tag: self.remote_tag.clone().unwrap_or_default(),
        }
    }
}
