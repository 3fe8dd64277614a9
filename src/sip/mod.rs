//! SIP for the IVR: a sans-I/O user agent endpoint over UDP, TCP and TLS
//! (RFC 3261).
//!
//! [`Endpoint`] takes received messages and the current time, and returns
//! messages to send, events for the application and the next deadline.
//! [`StreamFramer`] cuts TCP and TLS byte streams into messages, and
//! [`EdgePolicy`] sets who may call and how much. It
//! accepts or rejects INVITEs as a UAS, keeps the transactions and dialogs of RFC 3261
//! §12 to §17, and sends BYE and REFER (RFC 3515) inside its dialogs.
//!
//! The rest of the crate uses only the types re-exported here. rsipstack,
//! which supplies the message types and serialisation, is named only in
//! `message/`, so replacing it touches that folder alone. SDP offer/answer
//! (`sdp`) uses webrtc-sdp.

mod call;
pub mod edge;
mod endpoint;
mod escape;
mod message;
pub mod sdp;
mod timer;
mod transaction;
mod transport;

pub use call::CallHandle;
pub use edge::{EdgeCounters, EdgePolicy, RateLimit, UntrustedAction};
pub use endpoint::{
    EndCause, Endpoint, EndpointConfig, EndpointError, Event, IncomingCall, Transmit, ALLOW,
    SUPPORTED,
};
pub use escape::escape_uri_header_value;
pub use message::{MessageError, MAX_MESSAGE_SIZE};
pub use timer::{Timer, T1, T2, T4, TIMEOUT_64_T1};
pub use transport::{ConnectionId, FramingError, Received, StreamFrame, StreamFramer, Transport};
