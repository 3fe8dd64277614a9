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

fn local_v6() -> SocketAddr {
    "[::1]:40002".parse().expect("valid address")
}

/// Returns the `o=` line of an SDP body.
fn origin_line(sdp: &str) -> &str {
    sdp.lines()
        .find(|line| line.starts_with("o="))
        .expect("SDP has an o= line")
}

#[test]
fn only_48k_telephone_event_needs_inband() {
    let offer = SOFTPHONE_OFFER
        .replace("RTP/AVP 96 9 8 0 101 102", "RTP/AVP 96 9 8 0 101")
        .replace(
            "a=rtpmap:102 telephone-event/8000\r\na=fmtp:102 0-16\r\n",
            "",
        );
    let negotiated = answer_offer(offer.as_bytes(), local(), 1).expect("answerable");
    assert_eq!(negotiated.telephone_event_payload_type, None);
    assert!(negotiated.needs_inband_dtmf());
    assert!(!negotiated.answer.contains("telephone-event"));

    let both = answer_offer(SOFTPHONE_OFFER.as_bytes(), local(), 1).expect("answerable");
    assert!(!both.needs_inband_dtmf());
}

#[test]
fn telephone_event_48k_listed_after_8k() {
    // The 8 kHz one is picked whatever the order.
    let offer = SOFTPHONE_OFFER.replace("RTP/AVP 96 9 8 0 101 102", "RTP/AVP 8 102 101");
    let negotiated = answer_offer(offer.as_bytes(), local(), 1).expect("answerable");
    assert_eq!(negotiated.telephone_event_payload_type, Some(102));
    assert!(!negotiated.answer.contains("48000"));
}

#[test]
fn pcmu_first_is_answered_pcmu() {
    let offer = SIPP_UAC_OFFER.replace("RTP/AVP 0", "RTP/AVP 0 8").replace(
        "a=rtpmap:0 PCMU/8000\r\n",
        "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n",
    );
    let negotiated = answer_offer(offer.as_bytes(), local(), 1).expect("answerable");
    assert_eq!(negotiated.codec, Codec::Pcmu);
    assert_eq!(media_lines(&negotiated.answer), ["m=audio 40000 RTP/AVP 0"]);
}

#[test]
fn remote_ptime_is_recorded() {
    let negotiated = answer_offer(SIPP_UAC_OFFER.as_bytes(), local(), 1).expect("answerable");
    assert_eq!(negotiated.remote_ptime_ms, None);

    for ptime in [10, 20, 30, 40, 60] {
        let offer = format!("{SIPP_UAC_OFFER}a=ptime:{ptime}\r\n");
        let negotiated = answer_offer(offer.as_bytes(), local(), 1).expect("answerable");
        assert_eq!(negotiated.remote_ptime_ms, Some(ptime), "a=ptime:{ptime}");
        assert_eq!(negotiated.ptime_ms, PTIME_MS, "we still send 20 ms");
        assert!(negotiated.answer.contains("a=ptime:20\r\n"));
    }
}

#[test]
fn remote_ptime_out_of_range_is_rejected() {
    for ptime in [0u64, 5, 9, 61, 100, 200] {
        let offer = format!("{SIPP_UAC_OFFER}a=ptime:{ptime}\r\n");
        assert_eq!(
            answer_offer(offer.as_bytes(), local(), 1),
            Err(SdpError::UnsupportedPtime { ptime_ms: ptime }),
            "a=ptime:{ptime}"
        );
    }
}

#[test]
fn ipv6_offer_with_ipv4_socket_is_mismatch() {
    let offer = SIPP_UAC_OFFER.replace("IN IP4 127.0.0.1", "IN IP6 ::1");
    let error = answer_offer(offer.as_bytes(), local(), 1).expect_err("families differ");
    assert_eq!(
        error,
        SdpError::AddressFamilyMismatch {
            remote: "::1".parse().expect("address"),
            local: "127.0.0.1".parse().expect("address"),
        }
    );
    assert!(error.to_string().contains("IPv6"), "{error}");
}

#[test]
fn ipv4_offer_with_ipv6_socket_is_mismatch() {
    assert!(matches!(
        answer_offer(SIPP_UAC_OFFER.as_bytes(), local_v6(), 1),
        Err(SdpError::AddressFamilyMismatch { .. })
    ));
}

#[test]
fn ipv6_answer_parses() {
    let offer = SOFTPHONE_OFFER.replace("IN IP4 192.0.2.10", "IN IP6 2001:db8::10");
    let negotiated = answer_offer(offer.as_bytes(), local_v6(), 3).expect("answerable");
    assert_eq!(
        negotiated.remote_rtp,
        "[2001:db8::10]:4000".parse().expect("address")
    );
    assert!(negotiated.answer.contains("o=- 3 3 IN IP6 ::1\r\n"));
    assert!(negotiated.answer.contains("c=IN IP6 ::1\r\n"));
    webrtc_sdp::parse_sdp(&negotiated.answer, true).expect("answer parses");
}

#[test]
fn direction_and_hold() {
    let cases = [
        ("", Direction::SendRecv, false),
        ("a=sendrecv\r\n", Direction::SendRecv, false),
        ("a=sendonly\r\n", Direction::SendOnly, true),
        ("a=inactive\r\n", Direction::Inactive, true),
        ("a=recvonly\r\n", Direction::RecvOnly, false),
    ];
    for (attribute, direction, on_hold) in cases {
        let offer = format!("{SIPP_UAC_OFFER}{attribute}");
        let negotiated = answer_offer(offer.as_bytes(), local(), 1).expect("answerable");
        assert_eq!(negotiated.direction, direction, "{attribute:?}");
        assert_eq!(negotiated.on_hold, on_hold, "{attribute:?}");
    }
}

#[test]
fn zero_connection_address_is_hold() {
    let offer = SIPP_UAC_OFFER.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0");
    let negotiated = answer_offer(offer.as_bytes(), local(), 1).expect("answerable");
    assert!(negotiated.on_hold);
    assert_eq!(negotiated.direction, Direction::SendRecv);

    // The old hold form is accepted on an IPv6 socket too.
    let negotiated = answer_offer(offer.as_bytes(), local_v6(), 1).expect("answerable");
    assert!(negotiated.on_hold);
}

#[test]
fn hold_then_resume_raises_version() {
    let session_id = 77;
    let first = answer_offer(SIPP_UAC_OFFER.as_bytes(), local(), session_id).expect("answerable");
    assert_eq!(origin_line(&first.answer), "o=- 77 77 IN IP4 127.0.0.1");

    let hold = format!("{SIPP_UAC_OFFER}a=sendonly\r\n");
    let held =
        answer_offer_with_version(hold.as_bytes(), local(), session_id, 78).expect("answerable");
    assert!(held.on_hold);
    assert_eq!(origin_line(&held.answer), "o=- 77 78 IN IP4 127.0.0.1");
    assert!(held.answer.contains("a=recvonly\r\n"));

    let resumed = answer_offer_with_version(SIPP_UAC_OFFER.as_bytes(), local(), session_id, 79)
        .expect("answerable");
    assert!(!resumed.on_hold);
    assert_eq!(origin_line(&resumed.answer), "o=- 77 79 IN IP4 127.0.0.1");
    assert!(resumed.answer.contains("a=sendrecv\r\n"));
}

#[test]
fn create_offer_contents() {
    let offer = create_offer(local(), 5, 6);
    assert_eq!(origin_line(&offer), "o=- 5 6 IN IP4 127.0.0.1");
    assert_eq!(media_lines(&offer), ["m=audio 40000 RTP/AVP 8 0 101"]);
    for line in [
        "c=IN IP4 127.0.0.1",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-16",
        "a=ptime:20",
        "a=sendrecv",
    ] {
        assert!(
            offer.contains(&format!("{line}\r\n")),
            "{line} missing in\n{offer}"
        );
    }
    assert!(offer.split("\r\n").all(|line| !line.contains('\n')));

    let parsed = webrtc_sdp::parse_sdp(&offer, true).expect("offer parses");
    assert_eq!(parsed.media.len(), 1);

    let offer_v6 = create_offer(local_v6(), 5, 6);
    assert!(offer_v6.contains("c=IN IP6 ::1\r\n"));
    webrtc_sdp::parse_sdp(&offer_v6, true).expect("IPv6 offer parses");
}

#[test]
fn own_offer_answered_by_own_answerer() {
    // Our offer, answered by our own answer_offer as a peer would, and the
    // answer read back with accept_answer.
    let peer: SocketAddr = "127.0.0.1:50000".parse().expect("address");
    let offer = create_offer(local(), 9, 9);
    let peer_side = answer_offer(offer.as_bytes(), peer, 123).expect("answerable");
    assert_eq!(peer_side.codec, Codec::Pcma);
    assert_eq!(peer_side.telephone_event_payload_type, Some(101));
    assert_eq!(peer_side.remote_rtp, local());

    let negotiated = accept_answer(peer_side.answer.as_bytes(), &offer).expect("acceptable");
    assert_eq!(negotiated.codec, Codec::Pcma);
    assert_eq!(negotiated.audio_payload_type, 8);
    assert_eq!(negotiated.telephone_event_payload_type, Some(101));
    assert_eq!(negotiated.remote_rtp, peer);
    assert_eq!(negotiated.remote_ptime_ms, Some(20));
    assert_eq!(negotiated.direction, Direction::SendRecv);
    assert!(!negotiated.on_hold);
    assert_eq!(negotiated.answer, offer, "the SDP we sent");
}

/// An answer from a phone to [`create_offer`]: PCMU, telephone-event.
const PHONE_ANSWER: &str = "v=0\r\n\
    o=phone 100 101 IN IP4 127.0.0.1\r\n\
    s=-\r\n\
    c=IN IP4 127.0.0.1\r\n\
    t=0 0\r\n\
    m=audio 7000 RTP/AVP 0 101\r\n\
    a=rtpmap:0 PCMU/8000\r\n\
    a=rtpmap:101 telephone-event/8000\r\n\
    a=fmtp:101 0-15\r\n\
    a=ptime:30\r\n";

#[test]
fn accept_answer_from_phone() {
    let offer = create_offer(local(), 1, 1);
    let negotiated = accept_answer(PHONE_ANSWER.as_bytes(), &offer).expect("acceptable");
    assert_eq!(negotiated.codec, Codec::Pcmu);
    assert_eq!(negotiated.audio_payload_type, 0);
    assert_eq!(negotiated.telephone_event_payload_type, Some(101));
    assert_eq!(negotiated.remote_ptime_ms, Some(30));
    assert_eq!(
        negotiated.remote_rtp,
        "127.0.0.1:7000".parse().expect("address")
    );
}

#[test]
fn accept_answer_without_telephone_event() {
    let offer = create_offer(local(), 1, 1);
    let answer = PHONE_ANSWER.replace("RTP/AVP 0 101", "RTP/AVP 0");
    let negotiated = accept_answer(answer.as_bytes(), &offer).expect("acceptable");
    assert!(negotiated.needs_inband_dtmf());

    // A telephone-event payload type we did not offer is not used.
    let answer = PHONE_ANSWER
        .replace("RTP/AVP 0 101", "RTP/AVP 0 96")
        .replace("a=rtpmap:101", "a=rtpmap:96")
        .replace("a=fmtp:101", "a=fmtp:96");
    let negotiated = accept_answer(answer.as_bytes(), &offer).expect("acceptable");
    assert_eq!(negotiated.telephone_event_payload_type, None);
}

#[test]
fn accept_answer_rejections() {
    let offer = create_offer(local(), 1, 1);

    let rejected = PHONE_ANSWER.replace("m=audio 7000", "m=audio 0");
    assert_eq!(
        accept_answer(rejected.as_bytes(), &offer),
        Err(SdpError::AnswerWithoutAudio)
    );

    let g729 = PHONE_ANSWER
        .replace("RTP/AVP 0 101", "RTP/AVP 18")
        .replace("a=rtpmap:0 PCMU/8000", "a=rtpmap:18 G729/8000");
    assert_eq!(
        accept_answer(g729.as_bytes(), &offer),
        Err(SdpError::AnswerWithoutAudio)
    );

    // PCMU under a payload type we never offered.
    let remapped = PHONE_ANSWER
        .replace("RTP/AVP 0 101", "RTP/AVP 97")
        .replace("a=rtpmap:0 PCMU/8000", "a=rtpmap:97 PCMU/8000");
    assert_eq!(
        accept_answer(remapped.as_bytes(), &offer),
        Err(SdpError::AnswerWithoutAudio)
    );

    let two_streams = format!("{PHONE_ANSWER}m=video 0 RTP/AVP 97\r\n");
    assert!(matches!(
        accept_answer(two_streams.as_bytes(), &offer),
        Err(SdpError::InvalidAnswer { .. })
    ));

    let no_streams = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n";
    assert!(matches!(
        accept_answer(no_streams.as_bytes(), &offer),
        Err(SdpError::InvalidAnswer { .. })
    ));

    assert!(matches!(
        accept_answer(
            b"garbage garbage garbage garbage garbage garbage garbage",
            &offer
        ),
        Err(SdpError::InvalidAnswer { .. })
    ));
    assert!(matches!(
        accept_answer(&[0xFF, 0xFE], &offer),
        Err(SdpError::InvalidAnswer { .. })
    ));

    let ipv6 = PHONE_ANSWER.replace("IN IP4 127.0.0.1", "IN IP6 ::1");
    assert!(matches!(
        accept_answer(ipv6.as_bytes(), &offer),
        Err(SdpError::AddressFamilyMismatch { .. })
    ));

    let slow = PHONE_ANSWER.replace("a=ptime:30", "a=ptime:120");
    assert_eq!(
        accept_answer(slow.as_bytes(), &offer),
        Err(SdpError::UnsupportedPtime { ptime_ms: 120 })
    );
}

#[test]
fn accept_answer_hold() {
    let offer = create_offer(local(), 1, 1);
    let answer = format!("{PHONE_ANSWER}a=inactive\r\n");
    let negotiated = accept_answer(answer.as_bytes(), &offer).expect("acceptable");
    assert_eq!(negotiated.direction, Direction::Inactive);
    assert!(negotiated.on_hold);
}

#[test]
fn accept_answer_with_foreign_offer_is_error() {
    assert!(matches!(
        accept_answer(PHONE_ANSWER.as_bytes(), "not an offer"),
        Err(SdpError::InvalidAnswer { .. })
    ));
}

#[test]
fn arbitrary_offers_never_panic() {
    // Every offer line replaced by each of a set of hostile lines.
    let hostile = [
        "m=audio 99999999 RTP/AVP 0",
        "m=audio 6000 RTP/AVP 300",
        "a=ptime:99999999999999999999999",
        "a=ptime:-1",
        "c=IN IP4 999.1.1.1",
        "c=IN IP6 ::ffff:1.2.3.4",
        "a=rtpmap:0 PCMU/0",
        "a=rtpmap:101 telephone-event/4294967296",
        "m=",
        "=",
        "a=sendonly",
    ];
    let lines: Vec<&str> = SOFTPHONE_OFFER.split("\r\n").collect();
    for index in 0..lines.len() {
        for replacement in hostile {
            let mut mutated = lines.clone();
            mutated[index] = replacement;
            let offer = mutated.join("\r\n");
            let _ = answer_offer(offer.as_bytes(), local(), 1);
            let _ = accept_answer(offer.as_bytes(), &create_offer(local(), 1, 1));
        }
    }
}

#[test]
fn multicast_and_broadcast_rejected() {
    let local: SocketAddr = "127.0.0.1:20000".parse().unwrap();
    for address in ["224.0.0.1", "255.255.255.255", "239.1.2.3"] {
        let offer = format!(
            "v=0\r\no=- 1 1 IN IP4 {address}\r\ns=-\r\nc=IN IP4 {address}\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n"
        );
        let result = answer_offer(offer.as_bytes(), local, 1);
        assert!(
            matches!(result, Err(SdpError::NonUnicastAddress { .. })),
            "{address}: {result:?}"
        );
    }
}

#[test]
fn unspecified_address_still_means_hold() {
    let local: SocketAddr = "127.0.0.1:20000".parse().unwrap();
    let offer = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n";

    let negotiated = answer_offer(offer.as_bytes(), local, 1).expect("hold offer answered");

    assert!(negotiated.on_hold);
}
