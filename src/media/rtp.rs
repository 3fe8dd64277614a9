//! RTP (RFC 3550) packet writing for the audio we send and parsing of the
//! packets we receive.

use rtp_rs::{RtpReader, RtpReaderError};

use ring::rand::{SecureRandom, SystemRandom};

/// Length of the fixed RTP header without CSRCs or extension (RFC 3550
/// section 5.1). [`RtpSender`] writes exactly this header.
pub const RTP_HEADER_LEN: usize = 12;

/// Largest payload type that fits the 7-bit field of the RTP header.
pub const MAX_PAYLOAD_TYPE: u8 = 0x7F;

/// Errors from RTP packet handling.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RtpError {
    /// The datagram ends before the 12-byte fixed header.
    #[error("RTP packet of {len} bytes is shorter than the 12-byte header; drop it")]
    TooShort {
        /// Datagram length in bytes.
        len: usize,
    },

    /// The version field is not 2, so this is not RTP (or is STUN or DTLS
    /// sent to the media port).
    #[error("RTP packet has version {version}, expected 2; drop it")]
    UnsupportedVersion {
        /// Value of the two version bits.
        version: u8,
    },

    /// CSRC list or header extension runs past the end of the datagram.
    #[error("RTP header needs {header_len} bytes but the packet has {len}; drop it")]
    HeaderTruncated {
        /// Header length the flags announce.
        header_len: usize,
        /// Datagram length in bytes.
        len: usize,
    },

    /// The padding count in the last byte is zero or larger than the packet.
    #[error("RTP padding length {padding} is invalid for this packet; drop it")]
    InvalidPadding {
        /// Value of the last byte of the packet.
        padding: u8,
    },

    /// The operating system's random number generator failed, so no SSRC,
    /// sequence number or timestamp could be drawn.
    #[error(
        "random number generator failed while creating an RTP sender; check the OS entropy source"
    )]
    RandomUnavailable,
}

impl From<RtpReaderError> for RtpError {
    fn from(error: RtpReaderError) -> Self {
        match error {
            RtpReaderError::BufferTooShort(len) => RtpError::TooShort { len },
            RtpReaderError::UnsupportedVersion(version) => RtpError::UnsupportedVersion { version },
            RtpReaderError::HeadersTruncated {
                header_len,
                buffer_len,
            } => RtpError::HeaderTruncated {
                header_len,
                len: buffer_len,
            },
            RtpReaderError::PaddingLengthInvalid(padding) => RtpError::InvalidPadding { padding },
        }
    }
}

/// A received RTP packet, with the fields this service reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    /// Payload type, matched against the negotiated audio and telephone-event
    /// payload types.
    pub payload_type: u8,
    /// Sequence number, used to drop duplicated and reordered packets.
    pub sequence_number: u16,
    /// Media timestamp in clock-rate units. All packets of one
    /// telephone-event share it.
    pub timestamp: u32,
    /// Marker bit. For telephone-event it flags the first packet of an event.
    pub marker: bool,
    /// Synchronisation source, which changes when the sender restarts its
    /// stream (for example after a transfer in the peer).
    pub ssrc: u32,
    /// Payload without header, CSRCs, extension or padding.
    pub payload: &'a [u8],
}

impl<'a> RtpPacket<'a> {
    /// Parses a received datagram. Returns an error for anything that is not
    /// a well-formed RTP version 2 packet, and never panics.
    pub fn parse(datagram: &'a [u8]) -> Result<RtpPacket<'a>, RtpError> {
        let reader = RtpReader::new(datagram)?;

        Ok(RtpPacket {
            payload_type: reader.payload_type(),
            sequence_number: u16::from(reader.sequence_number()),
            timestamp: reader.timestamp(),
            marker: reader.mark(),
            ssrc: reader.ssrc(),
            payload: reader.payload(),
        })
    }
}

/// The sending side of one RTP stream: one SSRC with its sequence number and
/// timestamp.
///
/// SSRC, first sequence number and first timestamp are random, as RFC 3550
/// recommends, which makes it harder for an off-path attacker to
/// inject packets the peer accepts.
#[derive(Debug)]
pub struct RtpSender {
    /// Synchronisation source written into every packet.
    ssrc: u32,
    /// Sequence number of the next packet; wraps at 2^16.
    next_sequence_number: u16,
    /// Timestamp of the next packet in 8 kHz units; wraps at 2^32.
    next_timestamp: u32,
}

impl RtpSender {
    /// Creates a sender with SSRC, sequence number and timestamp drawn from
    /// the operating system's CSPRNG.
    pub fn new() -> Result<RtpSender, RtpError> {
        let rng = SystemRandom::new();
        let mut seed = [0u8; 10];
        rng.fill(&mut seed)
            .map_err(|_| RtpError::RandomUnavailable)?;

        let [s0, s1, s2, s3, q0, q1, t0, t1, t2, t3] = seed;
        Ok(RtpSender::with_initial_state(
            u32::from_be_bytes([s0, s1, s2, s3]),
            u16::from_be_bytes([q0, q1]),
            u32::from_be_bytes([t0, t1, t2, t3]),
        ))
    }

    /// Creates a sender with the given start values. Use this only in tests;
    /// a real stream needs the random values of [`RtpSender::new`].
    pub fn with_initial_state(ssrc: u32, sequence_number: u16, timestamp: u32) -> RtpSender {
        RtpSender {
            ssrc,
            next_sequence_number: sequence_number,
            next_timestamp: timestamp,
        }
    }

    /// Advances the timestamp by `samples` without sending, for a period in
    /// which nothing was sent (the call on hold). RFC 3550 §5.1 has the
    /// timestamp follow the sampling clock across such a gap.
    pub fn skip(&mut self, samples: u32) {
        self.next_timestamp = self.next_timestamp.wrapping_add(samples);
    }

    /// Returns the SSRC this sender writes.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Writes one packet carrying `frame` into `buf` and returns its length.
    ///
    /// Call this once per frame. The sequence number rises by one and the
    /// timestamp by the number of samples in `frame` (160 for a 20 ms G.711
    /// frame, one byte per sample). Set `marker` on the first packet after
    /// silence that was not sent, as RFC 3551 section 4.1 describes.
    ///
    /// # Panics
    ///
    /// Panics if `payload_type` is above 127 or `buf` is shorter than
    /// `RTP_HEADER_LEN + frame.len()`. Both are programming errors in the
    /// caller, not properties of received data.
    #[must_use = "the packet is only in buf; send the returned number of bytes"]
    pub fn write_packet(
        &mut self,
        payload_type: u8,
        frame: &[u8],
        marker: bool,
        buf: &mut [u8],
    ) -> usize {
        assert!(
            payload_type <= MAX_PAYLOAD_TYPE,
            "RTP payload type {payload_type} does not fit in 7 bits"
        );
        let len = RTP_HEADER_LEN + frame.len();
        assert!(
            buf.len() >= len,
            "RTP buffer of {} bytes cannot hold a {len}-byte packet",
            buf.len()
        );

        let (header, rest) = buf.split_at_mut(RTP_HEADER_LEN);
        let marker_bit = if marker { 0x80 } else { 0x00 };
        let sequence = self.next_sequence_number.to_be_bytes();
        let timestamp = self.next_timestamp.to_be_bytes();
        let ssrc = self.ssrc.to_be_bytes();
        header.copy_from_slice(&[
            0x80, // version 2, no padding, no extension, no CSRC
            marker_bit | payload_type,
            sequence[0],
            sequence[1],
            timestamp[0],
            timestamp[1],
            timestamp[2],
            timestamp[3],
            ssrc[0],
            ssrc[1],
            ssrc[2],
            ssrc[3],
        ]);
        rest[..frame.len()].copy_from_slice(frame);

        // G.711 has one sample per byte, so the payload length is the number
        // of samples the timestamp advances by.
        let samples = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        self.next_sequence_number = self.next_sequence_number.wrapping_add(1);
        self.next_timestamp = self.next_timestamp.wrapping_add(samples);

        len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::{Frame, SAMPLES_PER_FRAME};

    #[test]
    fn sender_writes_parsable_packets() {
        let mut sender = RtpSender::with_initial_state(0x1234_5678, 65535, u32::MAX - 100);
        let frame: Frame = [0xD5; SAMPLES_PER_FRAME];
        let mut buf = [0u8; 1500];

        let len = sender.write_packet(8, &frame, true, &mut buf);
        assert_eq!(len, RTP_HEADER_LEN + SAMPLES_PER_FRAME);
        let first = RtpPacket::parse(&buf[..len]).expect("first packet parses");
        assert_eq!(first.payload_type, 8);
        assert!(first.marker);
        assert_eq!(first.sequence_number, 65535);
        assert_eq!(first.timestamp, u32::MAX - 100);
        assert_eq!(first.ssrc, 0x1234_5678);
        assert_eq!(first.payload, &frame[..]);

        let len = sender.write_packet(8, &frame, false, &mut buf);
        let second = RtpPacket::parse(&buf[..len]).expect("second packet parses");
        assert!(!second.marker);
        assert_eq!(second.sequence_number, 0, "sequence number wraps");
        assert_eq!(second.timestamp, 59, "timestamp wraps after +160");
    }

    #[test]
    fn new_senders_draw_different_values() {
        let a = RtpSender::new().expect("random source works");
        let b = RtpSender::new().expect("random source works");
        // 96 random bits each; a collision of all three values means the
        // random source is broken.
        assert!(
            a.ssrc != b.ssrc
                || a.next_sequence_number != b.next_sequence_number
                || a.next_timestamp != b.next_timestamp
        );
    }

    #[test]
    #[should_panic(expected = "cannot hold")]
    fn write_packet_short_buffer_panics() {
        let mut sender = RtpSender::with_initial_state(1, 1, 1);
        let mut buf = [0u8; 100];
        let _ = sender.write_packet(0, &[0xFF; SAMPLES_PER_FRAME], false, &mut buf);
    }

    #[test]
    fn parse_rejects_malformed_packets() {
        assert_eq!(
            RtpPacket::parse(&[0x80, 0x00, 0x00]),
            Err(RtpError::TooShort { len: 3 })
        );

        let mut version_one = [0u8; 12];
        version_one[0] = 0x40;
        assert_eq!(
            RtpPacket::parse(&version_one),
            Err(RtpError::UnsupportedVersion { version: 1 })
        );

        // Four CSRCs announced, none present.
        let mut csrc = [0u8; 12];
        csrc[0] = 0x84;
        assert!(matches!(
            RtpPacket::parse(&csrc),
            Err(RtpError::HeaderTruncated {
                header_len: 28,
                len: 12
            })
        ));

        // Extension flag with an extension length past the end.
        let mut extension = [0u8; 16];
        extension[0] = 0x90;
        extension[15] = 0x10;
        assert!(matches!(
            RtpPacket::parse(&extension),
            Err(RtpError::HeaderTruncated { .. })
        ));

        // Padding flag with a padding count larger than the payload.
        let mut padding = [0u8; 14];
        padding[0] = 0xA0;
        padding[13] = 200;
        assert_eq!(
            RtpPacket::parse(&padding),
            Err(RtpError::InvalidPadding { padding: 200 })
        );

        let mut zero_padding = [0u8; 14];
        zero_padding[0] = 0xA0;
        assert!(RtpPacket::parse(&zero_padding).is_err());
    }

    #[test]
    fn parse_strips_padding_and_csrcs() {
        let mut packet = vec![0xA1, 101, 0, 7, 0, 0, 0, 9, 0, 0, 0, 1];
        packet.extend_from_slice(&[0xAA, 0xBB, 0xCC, 0xDD]); // one CSRC
        packet.extend_from_slice(&[1, 2, 3, 4]); // payload
        packet.extend_from_slice(&[0, 0, 3]); // three bytes of padding
        let parsed = RtpPacket::parse(&packet).expect("valid packet");
        assert_eq!(parsed.payload, &[1, 2, 3, 4]);
        assert_eq!(parsed.payload_type, 101);
        assert_eq!(parsed.sequence_number, 7);
        assert_eq!(parsed.timestamp, 9);
    }

    #[test]
    fn parse_survives_every_short_prefix() {
        // Truncating a valid packet at every length must give an error or a
        // packet, never a panic.
        let mut packet = vec![0xB1, 0x80, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 9, 9, 9, 9];
        packet.extend_from_slice(&[0xBE, 0xDE, 0x00, 0x01, 1, 2, 3, 4, 5, 6, 7, 8]);
        for len in 0..=packet.len() {
            let _ = RtpPacket::parse(&packet[..len]);
        }
    }
}
