//! Our own offer, for an INVITE without SDP (late offer, RFC 3264 section
//! 5): the 200 OK carries the offer and the ACK carries the answer.

use std::fmt::Write as _;
use std::net::SocketAddr;

use super::{
    check_address_family, choose_audio, parse_sdp, session_lines, split_offer, Negotiated, Origin,
    SdpError, PTIME_MS, TELEPHONE_EVENTS, TELEPHONE_EVENT_NAME,
};
use webrtc_sdp::media_type::SdpFormatList;

use crate::media::g711::Codec;
use crate::media::SAMPLE_RATE_HZ;

/// Payload type of telephone-event in our offer. Any dynamic value would
/// do; 101 is the one most peers use themselves.
pub const OFFER_TELEPHONE_EVENT_PAYLOAD_TYPE: u8 = 101;

/// Writes our SDP offer: one audio stream with PCMA, PCMU (A-law first, the
/// law of European networks) and telephone-event, 20 ms packets,
/// send-receive.
///
/// `local_rtp` is where the peer should send RTP. `session_id` and
/// `version` go into the `o=` line; later SDP in the same dialog keeps the
/// id and raises the version (RFC 3264 section 8).
pub fn create_offer(local_rtp: SocketAddr, session_id: u64, version: u64) -> String {
    let origin = Origin {
        session_id,
        version,
    };
    let mut offer = session_lines(local_rtp, origin);

    let pcma = Codec::Pcma.static_payload_type();
    let pcmu = Codec::Pcmu.static_payload_type();
    let event = OFFER_TELEPHONE_EVENT_PAYLOAD_TYPE;

    // Writing to a String cannot fail, so the fmt::Result is ignored.
    let _ = write!(
        offer,
        "m=audio {port} RTP/AVP {pcma} {pcmu} {event}\r\n\
         a=rtpmap:{pcma} PCMA/{SAMPLE_RATE_HZ}\r\n\
         a=rtpmap:{pcmu} PCMU/{SAMPLE_RATE_HZ}\r\n\
         a=rtpmap:{event} {TELEPHONE_EVENT_NAME}/{SAMPLE_RATE_HZ}\r\n\
         a=fmtp:{event} {TELEPHONE_EVENTS}\r\n\
         a=ptime:{PTIME_MS}\r\n\
         a=sendrecv\r\n",
        port = local_rtp.port(),
    );
    offer
}

/// Reads the peer's answer to an offer from [`create_offer`] and returns
/// the negotiated media.
///
/// `our_offer` is the offer exactly as sent. The answer must have as many
/// media streams as the offer (RFC 3264 section 6) and accept PCMA or PCMU
/// on the audio stream with one of the payload types we offered.
/// Telephone-event counts only with the payload type we offered. The
/// returned [`Negotiated::answer`] is `our_offer`, the SDP this side sent.
///
/// Errors: [`SdpError::InvalidAnswer`] for an answer that does not parse or
/// has the wrong number of streams, [`SdpError::AnswerWithoutAudio`] when
/// it rejects the audio or picks no offered codec, and
/// [`SdpError::AddressFamilyMismatch`] or [`SdpError::UnsupportedPtime`] as
/// for an offer. In each case the caller ends the call.
pub fn accept_answer(answer: &[u8], our_offer: &str) -> Result<Negotiated, SdpError> {
    let invalid = |reason: String| SdpError::InvalidAnswer { reason };

    let text = std::str::from_utf8(answer).map_err(|_| invalid("not UTF-8".to_owned()))?;
    let offer = offered_audio(our_offer)?;

    let split = split_offer(text).map_err(|error| invalid(error.to_string()))?;
    if split.sections.len() != offer.stream_count {
        return Err(invalid(format!(
            "{} media streams for the {} offered",
            split.sections.len(),
            offer.stream_count
        )));
    }
    let Some(section) = split.sections.get(offer.audio_index) else {
        return Err(invalid("no answer to the audio stream".to_owned()));
    };

    let single = format!("{}{}", split.session, section.text);
    let session = parse_sdp(&single).map_err(|error| invalid(error.to_string()))?;
    let mut choice = choose_audio(&session)?.ok_or(SdpError::AnswerWithoutAudio)?;

    if !offer.payload_types.contains(&choice.audio_payload_type) {
        return Err(SdpError::AnswerWithoutAudio);
    }
    if choice
        .telephone_event_payload_type
        .is_some_and(|payload_type| !offer.payload_types.contains(&payload_type))
    {
        choice.telephone_event_payload_type = None;
    }

    check_address_family(choice.remote_rtp.ip(), offer.local_rtp.ip())?;
    Ok(choice.into_negotiated(our_offer.to_owned()))
}

/// What accepting an answer needs to know about our offer.
struct OfferedAudio {
    /// Number of `m=` lines in our offer.
    stream_count: usize,
    /// Index of the audio stream among them.
    audio_index: usize,
    /// Payload types we offered on the audio stream.
    payload_types: Vec<u8>,
    /// Our RTP address from the offer.
    local_rtp: SocketAddr,
}

/// Reads back our own offer. It came from [`create_offer`], so a failure
/// here means the caller passed something else, which is reported as
/// [`SdpError::InvalidAnswer`] naming the offer.
fn offered_audio(our_offer: &str) -> Result<OfferedAudio, SdpError> {
    let invalid = |reason: &str| SdpError::InvalidAnswer {
        reason: format!("our own offer is unusable: {reason}"),
    };

    let split = split_offer(our_offer).map_err(|_| invalid("it does not split into streams"))?;
    let (audio_index, section) = split
        .sections
        .iter()
        .enumerate()
        .find(|(_, section)| section.media == "audio")
        .ok_or_else(|| invalid("it has no audio stream"))?;

    let single = format!("{}{}", split.session, section.text);
    let session = parse_sdp(&single).map_err(|_| invalid("it does not parse"))?;
    let choice = choose_audio(&session)?.ok_or_else(|| invalid("it offers no G.711"))?;
    let media = session
        .media
        .first()
        .ok_or_else(|| invalid("it has no audio stream"))?;
    let payload_types = match media.get_formats() {
        SdpFormatList::Integers(formats) => formats
            .iter()
            .filter_map(|format| u8::try_from(*format).ok())
            .collect(),
        _ => Vec::new(),
    };

    Ok(OfferedAudio {
        stream_count: split.sections.len(),
        audio_index,
        payload_types,
        local_rtp: choice.remote_rtp,
    })
}
