//! SDP offer/answer (RFC 3264, SDP syntax RFC 4566) for the audio stream of
//! an inbound call.
//!
//! Usually the caller's INVITE carries the offer, and [`answer_offer`] picks
//! G.711 and telephone-event from it and writes the answer. A re-INVITE
//! (hold, resume) is answered the same way with
//! [`answer_offer_with_version`]. For an INVITE without SDP (late offer),
//! [`create_offer`] writes the offer for the 200 OK and [`accept_answer`]
//! reads the answer from the ACK. Everything here is sans-I/O.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use webrtc_sdp::address::ExplicitlyTypedAddress;
use webrtc_sdp::attribute_type::{SdpAttribute, SdpAttributeType};
use webrtc_sdp::media_type::{SdpFormatList, SdpMedia, SdpMediaValue, SdpProtocolValue};
use webrtc_sdp::SdpSession;

use crate::media::g711::Codec;
use crate::media::{FRAME_DURATION, SAMPLE_RATE_HZ};

mod offer;

pub use offer::{accept_answer, create_offer, OFFER_TELEPHONE_EVENT_PAYLOAD_TYPE};

/// Packet time of the audio this service sends, in ms. Prompts are stored as
/// 20 ms frames, so this is fixed.
pub const PTIME_MS: u32 = FRAME_DURATION.as_millis() as u32;

/// Telephone-events answered in `a=fmtp`: the 16 keypad keys and flash
/// (RFC 4733 event codes).
const TELEPHONE_EVENTS: &str = "0-16";

/// Encoding name of RFC 4733 events in `a=rtpmap`.
const TELEPHONE_EVENT_NAME: &str = "telephone-event";

/// Packet times accepted in the peer's `a=ptime`, in ms. The service
/// receives any of them but always sends [`PTIME_MS`]. An offer outside the
/// range is rejected with 488, so widen it if a real peer needs more.
pub const REMOTE_PTIME_RANGE_MS: std::ops::RangeInclusive<u64> = 10..=60;

/// Errors from negotiating an SDP offer. The SIP layer maps them to
/// responses.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SdpError {
    /// The body is not UTF-8, so it cannot be SDP.
    #[error("SDP offer is not valid UTF-8; reject the INVITE with 400")]
    NotUtf8,

    /// The body does not parse as SDP.
    #[error("invalid SDP offer: {reason}; reject the INVITE with 400")]
    Invalid {
        /// Parser message, or the malformed line.
        reason: String,
    },

    /// No usable audio stream: no `m=audio` line, or none over plain RTP
    /// offering PCMA or PCMU at 8 kHz.
    #[error("SDP offer has no audio stream with PCMA or PCMU over RTP/AVP; answer 488 Not Acceptable Here")]
    NoCommonCodec,

    /// The chosen stream's connection address is a host name, which this
    /// service does not resolve.
    #[error("SDP connection address {address:?} is a host name; only IP addresses are supported, answer 488")]
    UnsupportedConnectionAddress {
        /// The host name from the `c=` line.
        address: String,
    },

    /// The chosen stream's address is multicast or broadcast. Unicast RTP
    /// from us could then reach every host of a group or subnet.
    #[error("SDP connection address {address} is multicast or broadcast; only unicast media is supported, answer 488")]
    NonUnicastAddress {
        /// The address from the `c=` line.
        address: std::net::IpAddr,
    },

    /// The chosen stream's port does not fit in 16 bits.
    #[error("SDP media port {port} is out of range; reject the INVITE with 400")]
    InvalidPort {
        /// The port from the `m=` line.
        port: u32,
    },

    /// The chosen stream requests a packet time outside
    /// [`REMOTE_PTIME_RANGE_MS`].
    #[error("SDP a=ptime:{ptime_ms} is outside the supported 10-60 ms; reject an offer with 488, end a call whose answer has it")]
    UnsupportedPtime {
        /// The value of `a=ptime`, in ms.
        ptime_ms: u64,
    },

    /// The peer's connection address and our RTP address are of different IP
    /// families, so the peer could not reach us. The caller can retry with an
    /// RTP socket of the peer's family, or answer 488.
    #[error("SDP connection address {remote} is {}, but the local RTP address {local} is not; use an RTP socket of the same family, or reject with 488", family(*remote))]
    AddressFamilyMismatch {
        /// The peer's connection address.
        remote: IpAddr,
        /// Our RTP address.
        local: IpAddr,
    },

    /// The answer in the ACK to our offer (late offer) does not parse, is not
    /// UTF-8, or has a different number of media streams than the offer.
    #[error("invalid SDP answer to our offer: {reason}; end the call with BYE")]
    InvalidAnswer {
        /// Parser message, or what is wrong.
        reason: String,
    },

    /// The answer to our offer rejects the audio stream (port 0) or accepts
    /// none of the codecs we offered.
    #[error("SDP answer rejects the audio stream or accepts neither PCMA nor PCMU; end the call with BYE")]
    AnswerWithoutAudio,
}

/// Returns the name of an address's IP family for messages.
fn family(address: IpAddr) -> &'static str {
    match address {
        IpAddr::V4(_) => "IPv4",
        IpAddr::V6(_) => "IPv6",
    }
}

/// Direction attribute of an SDP media stream (RFC 3264 section 5.1), seen
/// from the side that wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `a=sendrecv`, also the default when no direction is given.
    SendRecv,
    /// `a=sendonly`: the writer sends but does not want to receive. A
    /// caller's phone offers this when it puts the call on hold.
    SendOnly,
    /// `a=recvonly`: the writer receives but does not send.
    RecvOnly,
    /// `a=inactive`: neither side sends.
    Inactive,
}

impl Direction {
    /// Returns the attribute name as written in SDP.
    pub fn attribute(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// Returns the direction an answer takes to this offered direction
    /// (RFC 3264 section 6.1): send-only and receive-only swap.
    pub fn answer(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            other => other,
        }
    }
}

/// Result of answering an offer: the answer to send and what the media path
/// needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// The SDP this side sends in the 200 OK body, with CRLF line ends: the
    /// answer to the peer's offer, or, after [`accept_answer`], our own
    /// offer.
    pub answer: String,
    /// Address to send RTP to: the offer's connection address and audio
    /// port.
    pub remote_rtp: SocketAddr,
    /// Codec of the audio in both directions.
    pub codec: Codec,
    /// Payload type of that codec, as the caller offered it (8 or 0, or a
    /// dynamic value mapped with `a=rtpmap`).
    pub audio_payload_type: u8,
    /// Payload type of telephone-event at 8 kHz as the caller offered it, or
    /// `None` when the caller offered none. Then keys arrive as tones in the
    /// audio or as SIP INFO (see [`Negotiated::needs_inband_dtmf`]).
    /// Telephone-event at other rates (such as 48000 Hz, offered with Opus)
    /// is ignored.
    pub telephone_event_payload_type: Option<u8>,
    /// Packet time of the audio this service sends, in ms (always
    /// [`PTIME_MS`]).
    // NOTE: an offered `a=ptime` other than 20 is not honoured when we send;
    // the service sends 20 ms packets regardless.
    pub ptime_ms: u32,
    /// The peer's `a=ptime` in ms, within [`REMOTE_PTIME_RANGE_MS`], or
    /// `None` when it sent none. It sizes the packets the peer sends us.
    pub remote_ptime_ms: Option<u32>,
    /// Direction of the stream as the peer wrote it: media level first,
    /// then session level, default send-receive.
    pub direction: Direction,
    /// Whether the peer put the call on hold: it offered `sendonly` or
    /// `inactive`, or the old RFC 2543 form, a connection address of
    /// `0.0.0.0`. The application is expected to pause prompts while on
    /// hold and to resume on the next offer that clears it.
    pub on_hold: bool,
}

impl Negotiated {
    /// Returns whether keys can only come as tones in the audio (or as
    /// SIP INFO), because the peer offered no telephone-event at 8 kHz. The
    /// runtime should then run the in-band detector on the received audio.
    pub fn needs_inband_dtmf(&self) -> bool {
        self.telephone_event_payload_type.is_none()
    }
}

/// Answers an SDP offer with one G.711 audio stream.
///
/// Takes the first `m=audio` stream over RTP/AVP or RTP/AVPF with a non-zero
/// port that offers PCMA or PCMU at 8 kHz, and picks the caller's first
/// choice among those two. Telephone-event at 8 kHz is answered with the
/// caller's payload type. Every other media stream is rejected with port 0,
/// as RFC 3264 section 6 requires, so the answer has as many `m=` lines as
/// the offer. `local_rtp` is the address the caller should send RTP to, and
/// `session_id` becomes the `o=` line's session id and version.
///
/// Returns [`SdpError::NoCommonCodec`] when no stream qualifies, which the
/// SIP layer turns into 488, and [`SdpError::AddressFamilyMismatch`] when
/// the offer's connection address is not of the family of `local_rtp`.
pub fn answer_offer(
    offer: &[u8],
    local_rtp: SocketAddr,
    session_id: u64,
) -> Result<Negotiated, SdpError> {
    answer_offer_with_version(offer, local_rtp, session_id, session_id)
}

/// Answers an SDP offer like [`answer_offer`], with `version` as the `o=`
/// line's session version.
///
/// Within a dialog, every new answer must carry a higher version than the
/// previous SDP this side sent, and the same session id (RFC 3264
/// section 8). So the answer to a re-INVITE passes the previous version
/// plus one.
pub fn answer_offer_with_version(
    offer: &[u8],
    local_rtp: SocketAddr,
    session_id: u64,
    version: u64,
) -> Result<Negotiated, SdpError> {
    let text = std::str::from_utf8(offer).map_err(|_| SdpError::NotUtf8)?;
    let split = split_offer(text)?;

    if split.sections.is_empty() {
        // Parse anyway, so garbage is reported as invalid rather than as
        // an offer without audio.
        parse_sdp(text)?;
        return Err(SdpError::NoCommonCodec);
    }

    // Each media section is parsed on its own, together with the session
    // lines. webrtc-sdp drops an m= line it does not know (such as T.38's
    // `m=image ... udptl t38`) and attaches that section's lines to the
    // previous one, which would corrupt the audio section or fail the parse.
    let mut first_parse_error = None;
    let mut parsed_sections = 0;
    let mut chosen = None;
    for (index, section) in split.sections.iter().enumerate() {
        let single = format!("{}{}", split.session, section.text);
        let session = match parse_sdp(&single) {
            Ok(session) => session,
            Err(error) => {
                first_parse_error.get_or_insert(error);
                continue;
            }
        };
        parsed_sections += 1;

        if chosen.is_none() {
            if let Some(choice) = choose_audio(&session)? {
                chosen = Some((index, choice));
            }
        }
    }

    let Some((chosen_index, choice)) = chosen else {
        return match first_parse_error {
            Some(error) if parsed_sections == 0 => Err(error),
            _ => Err(SdpError::NoCommonCodec),
        };
    };

    check_address_family(choice.remote_rtp.ip(), local_rtp.ip())?;

    let origin = Origin {
        session_id,
        version,
    };
    let answer = write_answer(&split, chosen_index, &choice, local_rtp, origin);
    Ok(choice.into_negotiated(answer))
}

/// Returns an error when the peer's connection address and our RTP address
/// are of different IP families. An unspecified peer address (`0.0.0.0` or
/// `::`) means hold and is accepted with either family.
fn check_address_family(remote: IpAddr, local: IpAddr) -> Result<(), SdpError> {
    if remote.is_unspecified() || remote.is_ipv4() == local.is_ipv4() {
        return Ok(());
    }
    Err(SdpError::AddressFamilyMismatch { remote, local })
}

/// Session id and version of an `o=` line (RFC 4566 section 5.2).
#[derive(Debug, Clone, Copy)]
struct Origin {
    /// Stays the same for the whole dialog.
    session_id: u64,
    /// Rises with every new SDP this side sends in the dialog.
    version: u64,
}

/// The offer cut into its session part and its media sections.
struct SplitOffer<'a> {
    /// Session-level lines, each ending in CRLF.
    session: String,
    /// Media sections in offer order.
    sections: Vec<RawSection<'a>>,
}

/// One media section of the offer as text.
struct RawSection<'a> {
    /// The section's lines, each ending in CRLF, starting with its `m=` line.
    text: String,
    /// Media type token of the `m=` line (`audio`, `video`, `image`, ...).
    media: &'a str,
    /// Transport protocol token of the `m=` line.
    proto: &'a str,
    /// First format token, echoed when the stream is rejected.
    first_format: &'a str,
}

/// Splits the offer at its `m=` lines, normalising line ends to CRLF.
fn split_offer(text: &str) -> Result<SplitOffer<'_>, SdpError> {
    let mut split = SplitOffer {
        session: String::new(),
        sections: Vec::new(),
    };

    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }

        if let Some(media_line) = line.strip_prefix("m=") {
            split.sections.push(parse_media_line(media_line, line)?);
        }

        let target = match split.sections.last_mut() {
            Some(section) => &mut section.text,
            None => &mut split.session,
        };
        target.push_str(line);
        target.push_str("\r\n");
    }

    Ok(split)
}

/// Reads the tokens of an `m=` line that a rejected stream echoes. They go
/// into the answer, so only visible ASCII is accepted.
fn parse_media_line<'a>(media_line: &'a str, line: &str) -> Result<RawSection<'a>, SdpError> {
    let invalid = || SdpError::Invalid {
        reason: format!("media line {line:?} needs a media type, port, protocol and format"),
    };

    let tokens: Vec<&str> = media_line.split_whitespace().collect();
    let [media, _port, proto, first_format, ..] = tokens.as_slice() else {
        return Err(invalid());
    };
    if !tokens
        .iter()
        .all(|token| token.chars().all(|c| c.is_ascii_graphic()))
    {
        return Err(invalid());
    }

    Ok(RawSection {
        text: String::new(),
        media,
        proto,
        first_format,
    })
}

/// Parses SDP text with webrtc-sdp, ignoring lines it does not support.
fn parse_sdp(text: &str) -> Result<SdpSession, SdpError> {
    webrtc_sdp::parse_sdp(text, false).map_err(|error| SdpError::Invalid {
        reason: error.to_string(),
    })
}

/// Audio parameters chosen from one media section.
struct AudioChoice {
    /// Address the caller receives RTP on.
    remote_rtp: SocketAddr,
    /// The chosen G.711 codec.
    codec: Codec,
    /// Its payload type in the offer.
    audio_payload_type: u8,
    /// Payload type of telephone-event/8000, if offered.
    telephone_event_payload_type: Option<u8>,
    /// Transport protocol to echo (`RTP/AVP` or `RTP/AVPF`).
    proto: &'static str,
    /// Direction as the peer wrote it.
    direction: Direction,
    /// The peer's `a=ptime`, if any.
    remote_ptime_ms: Option<u32>,
}

impl AudioChoice {
    /// Builds the negotiation result, with `local_sdp` as the SDP we send.
    fn into_negotiated(self, local_sdp: String) -> Negotiated {
        let on_hold = matches!(self.direction, Direction::SendOnly | Direction::Inactive)
            || self.remote_rtp.ip().is_unspecified();
        Negotiated {
            answer: local_sdp,
            remote_rtp: self.remote_rtp,
            codec: self.codec,
            audio_payload_type: self.audio_payload_type,
            telephone_event_payload_type: self.telephone_event_payload_type,
            ptime_ms: PTIME_MS,
            remote_ptime_ms: self.remote_ptime_ms,
            direction: self.direction,
            on_hold,
        }
    }
}

/// Picks codec and telephone-event from a session with one media section, or
/// returns `None` when that section cannot carry the call.
fn choose_audio(session: &SdpSession) -> Result<Option<AudioChoice>, SdpError> {
    let Some(media) = session.media.first() else {
        return Ok(None);
    };

    if *media.get_type() != SdpMediaValue::Audio || media.get_port() == 0 {
        return Ok(None);
    }
    // Only plain RTP: the secure profiles need SRTP keys this service does
    // not negotiate.
    let proto = match media.get_proto() {
        SdpProtocolValue::RtpAvp => "RTP/AVP",
        SdpProtocolValue::RtpAvpf => "RTP/AVPF",
        _ => return Ok(None),
    };
    let SdpFormatList::Integers(formats) = media.get_formats() else {
        return Ok(None);
    };

    let Some((codec, audio_payload_type)) = formats
        .iter()
        .filter_map(|format| u8::try_from(*format).ok())
        .find_map(|payload_type| {
            g711_codec(media, payload_type).map(|codec| (codec, payload_type))
        })
    else {
        return Ok(None);
    };

    let telephone_event_payload_type = formats
        .iter()
        .filter_map(|format| u8::try_from(*format).ok())
        .find(|payload_type| is_telephone_event(media, *payload_type));

    let remote_rtp = remote_address(session, media)?;
    let remote_ptime_ms = remote_ptime(media)?;

    Ok(Some(AudioChoice {
        remote_rtp,
        codec,
        audio_payload_type,
        telephone_event_payload_type,
        proto,
        direction: stream_direction(session, media),
        remote_ptime_ms,
    }))
}

/// Returns the media section's `a=ptime` when it is within
/// [`REMOTE_PTIME_RANGE_MS`], `None` when absent, or an error.
fn remote_ptime(media: &SdpMedia) -> Result<Option<u32>, SdpError> {
    let ptime = media
        .get_attributes_of_type(SdpAttributeType::Ptime)
        .into_iter()
        .find_map(|attribute| match attribute {
            SdpAttribute::Ptime(ptime) => Some(*ptime),
            _ => None,
        });
    let Some(ptime_ms) = ptime else {
        return Ok(None);
    };

    if !REMOTE_PTIME_RANGE_MS.contains(&ptime_ms) {
        return Err(SdpError::UnsupportedPtime { ptime_ms });
    }
    // The range check above keeps the value far below u32::MAX.
    Ok(u32::try_from(ptime_ms).ok())
}

/// Returns the `a=rtpmap` of a payload type in a media section.
fn rtpmap(
    media: &SdpMedia,
    payload_type: u8,
) -> Option<&webrtc_sdp::attribute_type::SdpAttributeRtpmap> {
    media
        .get_attributes_of_type(SdpAttributeType::Rtpmap)
        .into_iter()
        .find_map(|attribute| match attribute {
            SdpAttribute::Rtpmap(map) if map.payload_type == payload_type => Some(map),
            _ => None,
        })
}

/// Returns the G.711 codec a payload type carries: from its `a=rtpmap` when
/// present, else from the static assignments of RFC 3551 (0 and 8).
fn g711_codec(media: &SdpMedia, payload_type: u8) -> Option<Codec> {
    match rtpmap(media, payload_type) {
        Some(map) => {
            let mono = map.channels.is_none_or(|channels| channels == 1);
            let codec = Codec::from_encoding_name(&map.codec_name)?;
            (map.frequency == SAMPLE_RATE_HZ && mono).then_some(codec)
        }
        None => Codec::ALL
            .into_iter()
            .find(|codec| codec.static_payload_type() == payload_type),
    }
}

/// Returns whether a payload type is telephone-event at 8 kHz.
fn is_telephone_event(media: &SdpMedia, payload_type: u8) -> bool {
    rtpmap(media, payload_type).is_some_and(|map| {
        map.codec_name.eq_ignore_ascii_case(TELEPHONE_EVENT_NAME) && map.frequency == SAMPLE_RATE_HZ
    })
}

/// Returns the RTP address of a media section: its own `c=` line, else the
/// session's.
fn remote_address(session: &SdpSession, media: &SdpMedia) -> Result<SocketAddr, SdpError> {
    let connection = media
        .get_connection()
        .as_ref()
        .or(session.get_connection().as_ref())
        .ok_or_else(|| SdpError::Invalid {
            reason: "no c= line for the audio stream".to_owned(),
        })?;

    let ip = match &connection.address {
        ExplicitlyTypedAddress::Ip(ip) => *ip,
        ExplicitlyTypedAddress::Fqdn { domain, .. } => {
            return Err(SdpError::UnsupportedConnectionAddress {
                address: domain.clone(),
            })
        }
    };
    if is_multicast_or_broadcast(ip) {
        return Err(SdpError::NonUnicastAddress { address: ip });
    }
    let port = u16::try_from(media.get_port()).map_err(|_| SdpError::InvalidPort {
        port: media.get_port(),
    })?;

    Ok(SocketAddr::new(ip, port))
}

/// Returns whether RTP to `ip` would reach more than one host. The
/// unspecified address (`c=0.0.0.0`, an old way to put a call on hold) is
/// not one of them: nothing is sent to it.
fn is_multicast_or_broadcast(ip: std::net::IpAddr) -> bool {
    // An IPv4-mapped IPv6 address (::ffff:224.0.0.1) counts as its IPv4 one.
    match ip.to_canonical() {
        std::net::IpAddr::V4(v4) => v4.is_multicast() || v4.is_broadcast(),
        std::net::IpAddr::V6(v6) => v6.is_multicast(),
    }
}

/// Returns the direction the peer wrote for a stream: media level first,
/// then session level, default sendrecv (RFC 3264 section 5.1).
fn stream_direction(session: &SdpSession, media: &SdpMedia) -> Direction {
    let attributes = [
        (SdpAttributeType::Sendonly, Direction::SendOnly),
        (SdpAttributeType::Recvonly, Direction::RecvOnly),
        (SdpAttributeType::Inactive, Direction::Inactive),
        (SdpAttributeType::Sendrecv, Direction::SendRecv),
    ];
    let find = |has: &dyn Fn(SdpAttributeType) -> bool| {
        attributes
            .iter()
            .find(|(attribute, _)| has(attribute.clone()))
            .map(|(_, direction)| *direction)
    };

    find(&|attribute| media.get_attribute(attribute).is_some())
        .or_else(|| find(&|attribute| session.get_attribute(attribute).is_some()))
        .unwrap_or(Direction::SendRecv)
}

/// Returns the `o=`, `s=`, `c=` and `t=` lines of SDP we write, with the
/// address of `local_rtp`.
fn session_lines(local_rtp: SocketAddr, origin: Origin) -> String {
    let (address_type, address) = match local_rtp.ip() {
        IpAddr::V4(ip) => ("IP4", ip.to_string()),
        IpAddr::V6(ip) => ("IP6", ip.to_string()),
    };
    let Origin {
        session_id,
        version,
    } = origin;

    format!(
        "v=0\r\n\
         o=- {session_id} {version} IN {address_type} {address}\r\n\
         s=ivr-verify\r\n\
         c=IN {address_type} {address}\r\n\
         t=0 0\r\n"
    )
}

/// Writes the answer: the chosen stream with our address, every other
/// stream rejected with port 0.
fn write_answer(
    split: &SplitOffer<'_>,
    chosen_index: usize,
    choice: &AudioChoice,
    local_rtp: SocketAddr,
    origin: Origin,
) -> String {
    // Writing to a String cannot fail, so the fmt::Result values are ignored.
    let mut answer = session_lines(local_rtp, origin);

    for (index, section) in split.sections.iter().enumerate() {
        if index != chosen_index {
            let _ = write!(
                answer,
                "m={} 0 {} {}\r\n",
                section.media, section.proto, section.first_format
            );
            continue;
        }

        let audio_pt = choice.audio_payload_type;
        let _ = write!(
            answer,
            "m=audio {} {} {audio_pt}",
            local_rtp.port(),
            choice.proto
        );
        if let Some(event_pt) = choice.telephone_event_payload_type {
            let _ = write!(answer, " {event_pt}");
        }
        let _ = write!(
            answer,
            "\r\na=rtpmap:{audio_pt} {}/{SAMPLE_RATE_HZ}\r\n",
            choice.codec.encoding_name()
        );
        if let Some(event_pt) = choice.telephone_event_payload_type {
            let _ = write!(
                answer,
                "a=rtpmap:{event_pt} {TELEPHONE_EVENT_NAME}/{SAMPLE_RATE_HZ}\r\n\
                 a=fmtp:{event_pt} {TELEPHONE_EVENTS}\r\n"
            );
        }
        let _ = write!(
            answer,
            "a=ptime:{PTIME_MS}\r\na={}\r\n",
            choice.direction.answer().attribute()
        );
    }

    answer
}

#[cfg(test)]
mod tests;
