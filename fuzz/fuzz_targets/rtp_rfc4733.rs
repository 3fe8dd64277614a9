//! Parses RTP packets and feeds them to one RFC 4733 telephone-event
//! receiver, as every datagram on a call's RTP port is handled.
//!
//! The input is a sequence of packets, each preceded by a one-byte length.
//! The receiver reads payload type 101, the value of sipp's RFC 4733
//! captures.

#![no_main]

use std::time::{Duration, Instant};

use ivr_verify::media::dtmf::rfc4733::Rfc4733Receiver;
use ivr_verify::media::rtp::RtpPacket;
use libfuzzer_sys::fuzz_target;

/// Telephone-event payload type of the receiver.
const PAYLOAD_TYPE: u8 = 101;

fuzz_target!(|data: &[u8]| {
    let mut receiver = Rfc4733Receiver::new(PAYLOAD_TYPE);
    let mut now = Instant::now();
    let mut rest = data;

    while let Some((&length, tail)) = rest.split_first() {
        let length = usize::from(length).min(tail.len());
        let (datagram, next) = tail.split_at(length);
        rest = next;

        if let Ok(packet) = RtpPacket::parse(datagram) {
            let _ = receiver.handle_packet(&packet, now);
        }
        now += Duration::from_millis(20);
    }

    let _ = receiver.stats();
});
