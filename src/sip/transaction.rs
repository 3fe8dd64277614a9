//! Server and client transaction state (RFC 3261 §17) kept by the endpoint.
//!
//! These are plain records. The endpoint (`endpoint/uas.rs`, `endpoint/uac.rs`
//! and `endpoint/timers.rs`) makes every transition.

use std::time::Duration;

use super::call::CallHandle;
use super::message::{IncomingRequest, RawMessage, RequestMethod};
use super::timer::TimerTable;
use super::transport::Route;

/// Identifies a server transaction (RFC 3261 §17.2.3): a request matches
/// when the branch and the sent-by of its top Via and its method match.
///
/// ACK and CANCEL look up the INVITE transaction by using method `INVITE`
/// with their own branch and sent-by.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ServerKey {
    /// Branch of the top Via, or for an RFC 2543 request without the magic
    /// cookie, a key built from Call-ID, CSeq number, From tag and top Via.
    pub branch: String,
    /// Host of the top Via sent-by, in lower case.
    pub sent_by_host: String,
    /// Port of the top Via sent-by, None when the Via names none.
    pub sent_by_port: Option<u16>,
    /// Method of the request, with ACK and CANCEL mapped by the caller.
    pub method: String,
}

/// Magic cookie that starts every RFC 3261 branch (§8.1.1.7).
pub(crate) const BRANCH_MAGIC_COOKIE: &str = "z9hG4bK";

impl ServerKey {
    /// Builds the key of `request` as a transaction of `method`.
    ///
    /// A sent-by without a port differs from one with port 5060, because
    /// RFC 3261 §17.2.3 compares the sent-by values as sent.
    pub fn for_method(request: &IncomingRequest, method: &str) -> ServerKey {
        let branch = match &request.via.branch {
            Some(branch)
                if branch.starts_with(BRANCH_MAGIC_COOKIE)
                    && branch.len() > BRANCH_MAGIC_COOKIE.len() =>
            {
                branch.clone()
            }
            _ => format!(
                "rfc2543|{}|{}|{}|{}",
                request.call_id,
                request.cseq,
                request.from_tag.as_deref().unwrap_or_default(),
                request.raw.value("Via").unwrap_or_default()
            ),
        };
        ServerKey {
            branch,
            sent_by_host: request.via.host.clone(),
            sent_by_port: request.via.port,
            method: method.to_string(),
        }
    }

    /// Builds the key of `request` as a transaction of its own method.
    pub fn of(request: &IncomingRequest) -> ServerKey {
        let method = match &request.method {
            RequestMethod::Known(method) => method.to_string(),
            RequestMethod::Extension(token) => token.clone(),
        };
        ServerKey::for_method(request, &method)
    }
}

/// States of an INVITE server transaction (RFC 3261 §17.2.1, with the Accepted state of RFC 6026).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum InviteServerState {
    /// 100 Trying sent. The application has not accepted or rejected the call yet.
    Proceeding,
    /// Non-2xx final response sent; waiting for the ACK.
    Completed,
    /// ACK for the non-2xx received; absorbing ACK retransmissions until Timer I.
    Confirmed,
    /// 2xx sent. Retransmitted INVITEs get the 2xx again until Timer L.
    Accepted,
}

/// Kind of server transaction: INVITE or non-INVITE.
#[derive(Clone, Debug)]
pub(crate) enum ServerKind {
    /// An INVITE transaction, which belongs to one call.
    Invite {
        /// Current state.
        state: InviteServerState,
        /// The call the INVITE created or refreshed; None when the INVITE was refused outright.
        call: Option<CallHandle>,
        /// Interval until the next Timer G retransmission.
        retransmit_interval: Duration,
    },
    /// A non-INVITE transaction; we always answer at once, so it is Completed from the start.
    NonInvite,
}

/// A server transaction: what we answered, so that retransmitted requests get it again.
#[derive(Clone, Debug)]
pub(crate) struct ServerTransaction {
    /// INVITE or non-INVITE behaviour.
    pub kind: ServerKind,
    /// Path of the responses (RFC 3261 §18.2.2): the connection the request
    /// came in on, or on UDP its source address and Via port.
    pub route: Route,
    /// The request, kept so that a later final response can copy its headers.
    pub request: RawMessage,
    /// The last response sent, resent when the request is retransmitted.
    pub last_response: Option<Vec<u8>>,
    /// Armed timers: G, H, I for INVITE; J for non-INVITE; L after a 2xx.
    pub timers: TimerTable,
}

/// States of a non-INVITE client transaction (RFC 3261 §17.1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClientState {
    /// Request sent, nothing received yet.
    Trying,
    /// A provisional response arrived; retransmissions continue every T2.
    Proceeding,
    /// A final response arrived; absorbing its retransmissions until Timer K.
    Completed,
}

/// What an outgoing in-dialog request is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClientPurpose {
    /// BYE sent by `hang_up` or after a missing ACK.
    Bye,
    /// REFER sent by `transfer`.
    Refer,
}

impl ClientPurpose {
    /// Returns the method name as it appears in CSeq.
    pub fn method_name(self) -> &'static str {
        match self {
            ClientPurpose::Bye => "BYE",
            ClientPurpose::Refer => "REFER",
        }
    }
}

/// A non-INVITE client transaction that we started, keyed by its branch.
#[derive(Clone, Debug)]
pub(crate) struct ClientTransaction {
    /// The call whose dialog carries the request.
    pub call: CallHandle,
    /// Call-ID of that dialog, for logs after the call has ended.
    pub call_id: String,
    /// BYE or REFER.
    pub purpose: ClientPurpose,
    /// Serialised request, resent on Timer E.
    pub request: Vec<u8>,
    /// Path of the request: the dialog's route.
    pub route: Route,
    /// Current state.
    pub state: ClientState,
    /// Interval until the next Timer E retransmission.
    pub retransmit_interval: Duration,
    /// Armed timers: E and F until a final response, then K.
    pub timers: TimerTable,
}
