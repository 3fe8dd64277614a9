//! SDP offer/answer (RFC 3264, SDP syntax RFC 4566) for the audio stream of
//! an inbound call.
//!
//! The service only answers: the caller's INVITE carries the offer, and
//! [`answer_offer`] picks G.711 and telephone-event from it and writes the
//! answer. It is sans-I/O and allocates only the answer text.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use webrtc_sdp::address::ExplicitlyTypedAddress;
use webrtc_sdp::attribute_type::{SdpAttribute, SdpAttributeType};
use webrtc_sdp::media_type::{SdpFormatList, SdpMedia, SdpMediaValue, SdpProtocolValue};
use webrtc_sdp::SdpSession;

use crate::media::g711::Codec;
use crate::media::{FRAME_DURATION, SAMPLE_RATE_HZ};

/// Packet time of the audio this service sends, in ms. Prompts are stored as
/// 20 ms frames, so this is fixed.
pub const PTIME_MS: u32 = FRAME_DURATION.as_millis() as u32;

/// Telephone-events answered in `a=fmtp`: the 16 keypad keys and flash
/// (RFC 4733 event codes).
const TELEPHONE_EVENTS: &str = "0-16";

/// Encoding name of RFC 4733 events in `a=rtpmap`.
const TELEPHONE_EVENT_NAME: &str = "telephone-event";

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

    /// The chosen stream's port does not fit in 16 bits.
    #[error("SDP media port {port} is out of range; reject the INVITE with 400")]
    InvalidPort {
        /// The port from the `m=` line.
        port: u32,
    },
}

/// Result of answering an offer: the answer to send and what the media path
/// needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// The SDP answer, with CRLF line ends, for the 200 OK body.
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
    /// `None` when the caller offered none and DTMF must come another way.
    pub telephone_event_payload_type: Option<u8>,
    /// Packet time of the audio this service sends, in ms (always
    /// [`PTIME_MS`]).
    // NOTE: an offered `a=ptime` other than 20 is not honoured; the service
    // sends 20 ms packets regardless.
    pub ptime_ms: u32,
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
/// SIP layer turns into 488.
pub fn answer_offer(
    offer: &[u8],
    local_rtp: SocketAddr,
    session_id: u64,
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

    let answer = write_answer(&split, chosen_index, &choice, local_rtp, session_id);
    Ok(Negotiated {
        answer,
        remote_rtp: choice.remote_rtp,
        codec: choice.codec,
        audio_payload_type: choice.audio_payload_type,
        telephone_event_payload_type: choice.telephone_event_payload_type,
        ptime_ms: PTIME_MS,
    })
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
    /// Direction attribute of the answer.
    direction: &'static str,
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

    Ok(Some(AudioChoice {
        remote_rtp,
        codec,
        audio_payload_type,
        telephone_event_payload_type,
        proto,
        direction: answer_direction(session, media),
    }))
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
    let port = u16::try_from(media.get_port()).map_err(|_| SdpError::InvalidPort {
        port: media.get_port(),
    })?;

    Ok(SocketAddr::new(ip, port))
}

/// Returns the answer's direction attribute for the offer's direction
/// (RFC 3264): media level first, then session level, default
/// sendrecv.
fn answer_direction(session: &SdpSession, media: &SdpMedia) -> &'static str {
    let offered = [
        (SdpAttributeType::Sendonly, "recvonly"),
        (SdpAttributeType::Recvonly, "sendonly"),
        (SdpAttributeType::Inactive, "inactive"),
        (SdpAttributeType::Sendrecv, "sendrecv"),
    ];
    let find = |has: &dyn Fn(SdpAttributeType) -> bool| {
        offered
            .iter()
            .find(|(attribute, _)| has(attribute.clone()))
            .map(|(_, answer)| *answer)
    };

    find(&|attribute| media.get_attribute(attribute).is_some())
        .or_else(|| find(&|attribute| session.get_attribute(attribute).is_some()))
        .unwrap_or("sendrecv")
}

/// Writes the answer: the chosen stream with our address, every other
/// stream rejected with port 0.
fn write_answer(
    split: &SplitOffer<'_>,
    chosen_index: usize,
    choice: &AudioChoice,
    local_rtp: SocketAddr,
    session_id: u64,
) -> String {
    let (address_type, address) = match local_rtp.ip() {
        IpAddr::V4(ip) => ("IP4", ip.to_string()),
        IpAddr::V6(ip) => ("IP6", ip.to_string()),
    };

    // Writing to a String cannot fail, so the fmt::Result values are ignored.
    // NOTE: the o= version equals session_id. An answer to a re-INVITE that
    // changes the media must use a higher version (RFC 3264), which this
    // signature cannot express yet.
    let mut answer = String::with_capacity(512);
    let _ = write!(
        answer,
        "v=0\r\n\
         o=- {session_id} {session_id} IN {address_type} {address}\r\n\
         s=ivr-verify\r\n\
         c=IN {address_type} {address}\r\n\
         t=0 0\r\n"
    );

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
        // NOTE: the direction is only written into the answer. Negotiated
        // does not carry it, so the media task sends prompts even when the
        // caller offered sendonly or inactive (hold).
        let _ = write!(answer, "a=ptime:{PTIME_MS}\r\na={}\r\n", choice.direction);
    }

    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> SocketAddr {
        "127.0.0.1:40000".parse().expect("valid address")
    }

    /// The offer of sipp's built-in `uac` scenario (SIPp 3.6.1, shown by
    /// `sipp -sd uac`), with its placeholders filled in.
    const SIPP_UAC_OFFER: &str = "v=0\r\n\
        o=user1 53655765 2353687637 IN IP4 127.0.0.1\r\n\
        s=-\r\n\
        c=IN IP4 127.0.0.1\r\n\
        t=0 0\r\n\
        m=audio 6000 RTP/AVP 0\r\n\
        a=rtpmap:0 PCMU/8000\r\n";

    /// A softphone offer: Opus, G.722, both G.711 laws, telephone-event at
    /// 48 kHz and 8 kHz, RTCP attributes and a disabled video stream.
    const SOFTPHONE_OFFER: &str = "v=0\r\n\
        o=- 3912345678 3912345678 IN IP4 192.0.2.10\r\n\
        s=pjmedia\r\n\
        b=AS:84\r\n\
        t=0 0\r\n\
        a=X-nat:0\r\n\
        m=audio 4000 RTP/AVP 96 9 8 0 101 102\r\n\
        c=IN IP4 192.0.2.10\r\n\
        b=AS:64000\r\n\
        a=rtpmap:96 opus/48000/2\r\n\
        a=fmtp:96 useinbandfec=1\r\n\
        a=rtpmap:9 G722/8000\r\n\
        a=rtpmap:8 PCMA/8000\r\n\
        a=rtpmap:0 PCMU/8000\r\n\
        a=rtpmap:101 telephone-event/48000\r\n\
        a=fmtp:101 0-16\r\n\
        a=rtpmap:102 telephone-event/8000\r\n\
        a=fmtp:102 0-16\r\n\
        a=ptime:20\r\n\
        a=maxptime:150\r\n\
        a=sendrecv\r\n\
        a=rtcp:4001 IN IP4 192.0.2.10\r\n\
        m=video 0 RTP/AVP 97\r\n\
        c=IN IP4 192.0.2.10\r\n\
        a=rtpmap:97 H264/90000\r\n";

    /// Offer whose PCMU and telephone-event use dynamic payload types.
    const DYNAMIC_OFFER: &str = "v=0\n\
        o=carrier 1 1 IN IP4 198.51.100.7\n\
        s=call\n\
        t=0 0\n\
        m=audio 30000 RTP/AVP 110 98\n\
        c=IN IP4 198.51.100.7\n\
        a=rtpmap:110 PCMU/8000\n\
        a=rtpmap:98 telephone-event/8000\n\
        a=fmtp:98 0-15\n";

    fn media_lines(answer: &str) -> Vec<&str> {
        answer
            .lines()
            .filter(|line| line.starts_with("m="))
            .collect()
    }

    #[test]
    fn sipp_offer_gets_pcmu() {
        let negotiated = answer_offer(SIPP_UAC_OFFER.as_bytes(), local(), 42).expect("answerable");
        assert_eq!(negotiated.codec, Codec::Pcmu);
        assert_eq!(negotiated.audio_payload_type, 0);
        assert_eq!(negotiated.telephone_event_payload_type, None);
        assert_eq!(
            negotiated.remote_rtp,
            "127.0.0.1:6000".parse().expect("address")
        );
        assert_eq!(negotiated.ptime_ms, 20);
        assert_eq!(media_lines(&negotiated.answer), ["m=audio 40000 RTP/AVP 0"]);
        assert!(negotiated.answer.contains("a=rtpmap:0 PCMU/8000\r\n"));
        assert!(negotiated.answer.contains("o=- 42 42 IN IP4 127.0.0.1\r\n"));
        assert!(negotiated.answer.contains("c=IN IP4 127.0.0.1\r\n"));
        assert!(negotiated.answer.contains("a=sendrecv\r\n"));
        assert!(!negotiated.answer.contains("telephone-event"));
    }

    #[test]
    fn softphone_offer_gets_first_g711() {
        let negotiated = answer_offer(SOFTPHONE_OFFER.as_bytes(), local(), 7).expect("answerable");
        assert_eq!(negotiated.codec, Codec::Pcma, "PCMA is listed before PCMU");
        assert_eq!(negotiated.audio_payload_type, 8);
        assert_eq!(
            negotiated.telephone_event_payload_type,
            Some(102),
            "the 8 kHz one"
        );
        assert_eq!(
            negotiated.remote_rtp,
            "192.0.2.10:4000".parse().expect("address")
        );
        assert_eq!(
            media_lines(&negotiated.answer),
            ["m=audio 40000 RTP/AVP 8 102", "m=video 0 RTP/AVP 97"]
        );
        assert!(negotiated
            .answer
            .contains("a=rtpmap:102 telephone-event/8000\r\n"));
        assert!(negotiated.answer.contains("a=fmtp:102 0-16\r\n"));
        assert!(negotiated.answer.contains("a=ptime:20\r\n"));
        assert!(!negotiated.answer.contains("opus"));
    }

    #[test]
    fn dynamic_payload_types_are_echoed() {
        let negotiated = answer_offer(DYNAMIC_OFFER.as_bytes(), local(), 1).expect("answerable");
        assert_eq!(negotiated.codec, Codec::Pcmu);
        assert_eq!(negotiated.audio_payload_type, 110);
        assert_eq!(negotiated.telephone_event_payload_type, Some(98));
        assert_eq!(
            negotiated.remote_rtp,
            "198.51.100.7:30000".parse().expect("address")
        );
        assert!(negotiated.answer.contains("a=rtpmap:110 PCMU/8000\r\n"));
        assert!(negotiated.answer.contains("a=fmtp:98 0-16\r\n"));
        assert!(negotiated.answer.lines().all(|line| !line.is_empty()));
    }

    #[test]
    fn answer_parses_as_sdp() {
        for offer in [SIPP_UAC_OFFER, SOFTPHONE_OFFER, DYNAMIC_OFFER] {
            let negotiated = answer_offer(offer.as_bytes(), local(), 99).expect("answerable");
            let parsed = webrtc_sdp::parse_sdp(&negotiated.answer, true)
                .unwrap_or_else(|e| panic!("answer does not parse: {e}\n{}", negotiated.answer));
            assert_eq!(
                parsed.media.len(),
                media_lines(offer).len(),
                "one m= line per offer stream"
            );
            let audio = &parsed.media[0];
            assert_eq!(audio.get_port(), 40000);
            assert!(audio.get_attribute(SdpAttributeType::Sendrecv).is_some());
        }
    }

    #[test]
    fn garbage_is_invalid() {
        let error = answer_offer(
            b"hello, this is not a session description at all, sorry",
            local(),
            1,
        )
        .expect_err("garbage");
        assert!(matches!(error, SdpError::Invalid { .. }), "{error:?}");

        assert!(matches!(
            answer_offer(b"", local(), 1),
            Err(SdpError::Invalid { .. })
        ));
        assert_eq!(
            answer_offer(&[0xFF, 0xFE, 0x00], local(), 1),
            Err(SdpError::NotUtf8)
        );

        let broken_media = SIPP_UAC_OFFER.replace("m=audio 6000 RTP/AVP 0", "m=audio 6000");
        assert!(matches!(
            answer_offer(broken_media.as_bytes(), local(), 1),
            Err(SdpError::Invalid { .. })
        ));

        let no_timing = SIPP_UAC_OFFER.replace("t=0 0\r\n", "");
        assert!(matches!(
            answer_offer(no_timing.as_bytes(), local(), 1),
            Err(SdpError::Invalid { .. })
        ));
    }

    #[test]
    fn control_characters_in_media_line_are_invalid() {
        let offer = SOFTPHONE_OFFER.replace("m=video 0 RTP/AVP 97", "m=video 0 RTP/AVP 9\u{7}7");
        assert!(matches!(
            answer_offer(offer.as_bytes(), local(), 1),
            Err(SdpError::Invalid { .. })
        ));
    }

    #[test]
    fn no_g711_is_no_common_codec() {
        let offer = SIPP_UAC_OFFER
            .replace("RTP/AVP 0", "RTP/AVP 18")
            .replace("a=rtpmap:0 PCMU/8000", "a=rtpmap:18 G729/8000");
        assert_eq!(
            answer_offer(offer.as_bytes(), local(), 1),
            Err(SdpError::NoCommonCodec)
        );
    }

    #[test]
    fn g711_at_wrong_rate_is_not_accepted() {
        let offer = SIPP_UAC_OFFER
            .replace("RTP/AVP 0", "RTP/AVP 100")
            .replace("a=rtpmap:0 PCMU/8000", "a=rtpmap:100 PCMU/16000");
        assert_eq!(
            answer_offer(offer.as_bytes(), local(), 1),
            Err(SdpError::NoCommonCodec)
        );
    }

    #[test]
    fn no_media_is_no_common_codec() {
        let offer = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n";
        assert_eq!(
            answer_offer(offer.as_bytes(), local(), 1),
            Err(SdpError::NoCommonCodec)
        );

        let video_only = SIPP_UAC_OFFER
            .replace("m=audio 6000 RTP/AVP 0", "m=video 6000 RTP/AVP 97")
            .replace("a=rtpmap:0 PCMU/8000", "a=rtpmap:97 H264/90000");
        assert_eq!(
            answer_offer(video_only.as_bytes(), local(), 1),
            Err(SdpError::NoCommonCodec)
        );
    }

    #[test]
    fn srtp_only_is_no_common_codec() {
        let offer = SIPP_UAC_OFFER.replace("RTP/AVP", "RTP/SAVP");
        assert_eq!(
            answer_offer(offer.as_bytes(), local(), 1),
            Err(SdpError::NoCommonCodec)
        );
    }

    #[test]
    fn t38_stream_is_rejected_not_fatal() {
        let offer = format!(
            "{SIPP_UAC_OFFER}m=image 6002 udptl t38\r\nc=IN IP4 127.0.0.1\r\na=T38FaxVersion:0\r\n"
        );
        let negotiated = answer_offer(offer.as_bytes(), local(), 1).expect("audio is answerable");
        assert_eq!(negotiated.codec, Codec::Pcmu);
        assert_eq!(
            media_lines(&negotiated.answer),
            ["m=audio 40000 RTP/AVP 0", "m=image 0 udptl t38"]
        );
    }

    #[test]
    fn disabled_audio_is_skipped() {
        let offer = "v=0\r\n\
            o=- 1 1 IN IP4 192.0.2.1\r\n\
            s=-\r\n\
            c=IN IP4 192.0.2.1\r\n\
            t=0 0\r\n\
            m=audio 0 RTP/AVP 8\r\n\
            m=audio 5000 RTP/AVP 0 8\r\n";
        let negotiated = answer_offer(offer.as_bytes(), local(), 1).expect("second stream works");
        assert_eq!(negotiated.codec, Codec::Pcmu);
        assert_eq!(negotiated.remote_rtp.port(), 5000);
        assert_eq!(
            media_lines(&negotiated.answer),
            ["m=audio 0 RTP/AVP 8", "m=audio 40000 RTP/AVP 0"]
        );
    }

    #[test]
    fn media_connection_overrides_session() {
        let offer = SIPP_UAC_OFFER.replace(
            "a=rtpmap:0 PCMU/8000\r\n",
            "c=IN IP4 203.0.113.5\r\na=rtpmap:0 PCMU/8000\r\n",
        );
        let negotiated = answer_offer(offer.as_bytes(), local(), 1).expect("answerable");
        assert_eq!(
            negotiated.remote_rtp,
            "203.0.113.5:6000".parse().expect("address")
        );
    }

    #[test]
    fn ipv6_offer_and_local_address() {
        let offer = SIPP_UAC_OFFER.replace("IN IP4 127.0.0.1", "IN IP6 ::1");
        let local_v6: SocketAddr = "[::1]:40002".parse().expect("address");
        let negotiated = answer_offer(offer.as_bytes(), local_v6, 5).expect("answerable");
        assert_eq!(
            negotiated.remote_rtp,
            "[::1]:6000".parse().expect("address")
        );
        assert!(negotiated.answer.contains("c=IN IP6 ::1\r\n"));
        assert!(negotiated.answer.contains("m=audio 40002 "));
    }

    #[test]
    fn host_name_connection_is_unsupported() {
        let offer = SIPP_UAC_OFFER.replace("c=IN IP4 127.0.0.1", "c=IN IP4 media.example.com");
        assert_eq!(
            answer_offer(offer.as_bytes(), local(), 1),
            Err(SdpError::UnsupportedConnectionAddress {
                address: "media.example.com".to_owned()
            })
        );
    }

    #[test]
    fn direction_is_mirrored() {
        let cases = [
            ("a=sendonly", "a=recvonly"),
            ("a=recvonly", "a=sendonly"),
            ("a=inactive", "a=inactive"),
            ("a=sendrecv", "a=sendrecv"),
        ];
        for (offered, answered) in cases {
            let offer = format!("{SIPP_UAC_OFFER}{offered}\r\n");
            let negotiated = answer_offer(offer.as_bytes(), local(), 1).expect("answerable");
            assert!(
                negotiated.answer.contains(&format!("{answered}\r\n")),
                "{offered} answered with\n{}",
                negotiated.answer
            );
        }

        let session_level = SIPP_UAC_OFFER.replace("t=0 0\r\n", "t=0 0\r\na=sendonly\r\n");
        let negotiated = answer_offer(session_level.as_bytes(), local(), 1).expect("answerable");
        assert!(negotiated.answer.contains("a=recvonly\r\n"));
    }

    #[test]
    fn static_payload_type_without_rtpmap() {
        let offer = SIPP_UAC_OFFER
            .replace("RTP/AVP 0", "RTP/AVP 8 0 101")
            .replace(
                "a=rtpmap:0 PCMU/8000\r\n",
                "a=rtpmap:101 TELEPHONE-EVENT/8000\r\n",
            );
        let negotiated = answer_offer(offer.as_bytes(), local(), 1).expect("answerable");
        assert_eq!(negotiated.codec, Codec::Pcma);
        assert_eq!(negotiated.audio_payload_type, 8);
        assert_eq!(negotiated.telephone_event_payload_type, Some(101));
    }
}
