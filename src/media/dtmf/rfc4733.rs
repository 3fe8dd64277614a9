//! Key presses carried as RTP telephone-events (RFC 4733).
//!
//! A sender reports one key press as a series of packets that share one RTP
//! timestamp: a start packet (usually with the marker bit), updates with a
//! growing duration, and an end packet that is usually sent three times
//! with the same sequence number. This receiver
//! turns that series into exactly one [`DtmfEvent`], reported on the first
//! packet that arrives, so the call flow can stop a prompt at once.
//!
//! Real senders deviate, and the receiver accepts these cases:
//! - No marker bit on the first packet: the marker is ignored, and a new
//!   RTP timestamp alone starts a new event.
//! - Lost start packets: the first packet seen, even an end packet, reports
//!   the key.
//! - Lost end packets: a packet with a new timestamp ends the previous event
//!   and starts the next one, even for the same key.
//! - Long presses: any number of updates, and events longer than the 16-bit
//!   duration field split into segments whose E bit is not set.
//! - End packets repeated with a new timestamp each (a sender bug seen in
//!   the field): they count as repeats when they arrive within
//!   [`END_REPEAT_WINDOW`] of the previous end packet of the same key.

use std::time::{Duration, Instant};

use crate::media::dtmf::{Digit, DtmfEvent};
use crate::media::rtp::RtpPacket;

/// Size of the telephone-event payload: event code, E/R/volume byte and a
/// 16-bit duration (RFC 4733).
const EVENT_PAYLOAD_LEN: usize = 4;

/// Bit of the second payload byte that marks the end of an event.
const END_BIT: u8 = 0x80;

/// How far behind the newest sequence number a packet may be and still count
/// as late rather than as a restarted stream. RFC 3550 appendix A.1 uses the
/// same value (MAX_MISORDER).
const MAX_MISORDER: i16 = 100;

/// Maximum time after an end packet within which another end packet of the
/// same key, with a new timestamp and no start or update packet before it,
/// counts as a repeat of the first. A real second press ends at least one
/// tone and one pause later. This code assumes 40 ms for each, the shortest
/// tone that ITU-T Q.24 requires receivers to detect.
pub const END_REPEAT_WINDOW: Duration = Duration::from_millis(80);

/// Largest value of the 16-bit duration field, in timestamp units. A sender
/// splits a longer event into segments (RFC 4733 section 2.5.1.3), and this
/// receiver takes a timestamp this far after the previous segment's as the
/// next segment.
const MAX_SEGMENT_DURATION: u32 = u16::MAX as u32;

/// How far below [`MAX_SEGMENT_DURATION`] the last duration seen may be for
/// a new timestamp to still continue the event as its next segment: one
/// second at 8 kHz, to allow for the segment's last updates being lost.
const SEGMENT_END_SLACK: u16 = 8_000;

/// Counters a receiver keeps for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReceiverStats {
    /// Key presses reported.
    pub events: u64,
    /// Packets dropped because their sequence number was already seen or is
    /// behind the newest one (retransmitted end packets, reordering).
    pub duplicates: u64,
    /// Telephone-event packets with a payload shorter than four bytes.
    pub malformed: u64,
    /// New events whose code is not a keypad key (for example 16, flash).
    pub non_key_events: u64,
    /// End packets that repeated the previous event's end with a new
    /// timestamp, within [`END_REPEAT_WINDOW`].
    pub repeated_ends: u64,
}

/// The event this receiver is tracking within one stream.
#[derive(Debug, Clone, Copy)]
struct CurrentEvent {
    /// RTP timestamp shared by all packets of the event.
    timestamp: u32,
    /// Event code, to recognise the next segment of a long event.
    code: u8,
    /// Latest duration seen, in timestamp units.
    duration: u16,
    /// Whether an end packet arrived; a long event continues in a new
    /// segment only while it has not ended.
    ended: bool,
    /// Arrival time of the latest end packet, to recognise end packets that
    /// a faulty sender repeats with a new timestamp.
    last_end_at: Option<Instant>,
}

/// Receiver state for the sender's RTP stream.
#[derive(Debug, Clone, Copy)]
struct StreamState {
    /// SSRC of the stream; a new SSRC starts over.
    ssrc: u32,
    /// Newest telephone-event sequence number accepted.
    newest_sequence_number: u16,
    /// The event in progress or the last one seen.
    event: Option<CurrentEvent>,
}

/// Sans-I/O telephone-event receiver for one call.
#[derive(Debug, Clone)]
pub struct Rfc4733Receiver {
    /// Payload type negotiated for telephone-event in SDP. Packets with any
    /// other payload type are audio or noise and are ignored.
    payload_type: u8,
    /// State of the current sender stream, `None` before the first packet.
    stream: Option<StreamState>,
    /// Counters since creation.
    stats: ReceiverStats,
}

impl Rfc4733Receiver {
    /// Creates a receiver for the telephone-event payload type that the SDP
    /// answer accepted. Any value is accepted; 101 is common, but RFC 4733
    /// assigns none.
    pub fn new(payload_type: u8) -> Rfc4733Receiver {
        Rfc4733Receiver {
            payload_type,
            stream: None,
            stats: ReceiverStats::default(),
        }
    }

    /// Returns the payload type this receiver reads.
    pub fn payload_type(&self) -> u8 {
        self.payload_type
    }

    /// Returns the counters since creation.
    pub fn stats(&self) -> ReceiverStats {
        self.stats
    }

    /// Handles one received RTP packet and returns a key press when the
    /// packet starts a new event.
    ///
    /// The driver calls this for every RTP packet of the call, in arrival
    /// order; packets of other payload types return `None` at no cost. `now`
    /// is the arrival time and becomes [`DtmfEvent::received_at`].
    #[must_use = "a returned key press must reach the call flow"]
    pub fn handle_packet(&mut self, packet: &RtpPacket<'_>, now: Instant) -> Option<DtmfEvent> {
        if packet.payload_type != self.payload_type {
            return None;
        }

        let Some(&[code, flags, duration_high, duration_low]) =
            packet.payload.get(..EVENT_PAYLOAD_LEN)
        else {
            self.stats.malformed += 1;
            return None;
        };
        let ended = flags & END_BIT != 0;
        let duration = u16::from_be_bytes([duration_high, duration_low]);

        let stream = self.accept_sequence_number(packet)?;

        if let Some(previous) = stream.event.as_mut() {
            if is_repeated_end(previous, packet.timestamp, code, ended, now) {
                previous.last_end_at = Some(now);
                self.stats.repeated_ends += 1;
                return None;
            }
        }

        let is_new_event = match stream.event {
            None => true,
            Some(previous) if previous.timestamp == packet.timestamp => false,
            Some(previous) => !continues_in_segment(&previous, packet.timestamp, code),
        };

        // An update of the same event keeps the time of its last end packet.
        let last_end_at = match stream.event {
            _ if ended => Some(now),
            Some(previous) if !is_new_event => previous.last_end_at,
            _ => None,
        };
        stream.event = Some(CurrentEvent {
            timestamp: packet.timestamp,
            code,
            duration,
            ended,
            last_end_at,
        });

        if !is_new_event {
            return None;
        }

        let Some(digit) = Digit::from_event_code(code) else {
            self.stats.non_key_events += 1;
            return None;
        };
        self.stats.events += 1;
        Some(DtmfEvent {
            digit,
            received_at: now,
        })
    }

    /// Records the packet's sequence number and returns the stream state, or
    /// `None` when the packet is a duplicate or arrives too late.
    fn accept_sequence_number(&mut self, packet: &RtpPacket<'_>) -> Option<&mut StreamState> {
        let sequence_number = packet.sequence_number;

        match &mut self.stream {
            Some(stream) if stream.ssrc == packet.ssrc => {
                // Signed distance on the 16-bit circle, so wrapping from
                // 65535 to 0 counts as one step forward.
                let distance = sequence_number.wrapping_sub(stream.newest_sequence_number) as i16;
                if (-MAX_MISORDER..=0).contains(&distance) {
                    self.stats.duplicates += 1;
                    return None;
                }
                // Forward steps, and jumps too large to be reordering (the
                // sender restarted its numbering), are both accepted.
                stream.newest_sequence_number = sequence_number;
            }
            _ => {
                self.stream = Some(StreamState {
                    ssrc: packet.ssrc,
                    newest_sequence_number: sequence_number,
                    event: None,
                });
            }
        }

        self.stream.as_mut()
    }
}

/// Returns whether a packet with a new timestamp is an end packet that
/// repeats the end of `previous` rather than a new press of the same key.
fn is_repeated_end(
    previous: &CurrentEvent,
    timestamp: u32,
    code: u8,
    ended: bool,
    now: Instant,
) -> bool {
    let Some(previous_end) = previous.last_end_at else {
        return false;
    };
    ended
        && previous.ended
        && previous.code == code
        && previous.timestamp != timestamp
        && now.saturating_duration_since(previous_end) < END_REPEAT_WINDOW
}

/// Returns whether a packet with a new timestamp is the next segment of a
/// long event rather than a new event.
///
/// RFC 4733 splits events longer than the 16-bit duration field into
/// segments. The next segment has the same code, the previous segment has
/// not ended, and the new timestamp starts where the previous duration
/// stopped. When the segment's last updates were lost, the seen duration
/// falls short, so a timestamp exactly [`MAX_SEGMENT_DURATION`] further on
/// also continues the event once the seen duration is near that maximum.
fn continues_in_segment(previous: &CurrentEvent, timestamp: u32, code: u8) -> bool {
    if previous.code != code || previous.ended {
        return false;
    }

    let distance = timestamp.wrapping_sub(previous.timestamp);
    let exact = distance == u32::from(previous.duration);
    let after_lost_updates =
        distance == MAX_SEGMENT_DURATION && previous.duration >= u16::MAX - SEGMENT_END_SLACK;
    exact || after_lost_updates
}

/// The integration tests' pcap writer, compiled here so that a unit test
/// can check that its captures decode to the keys written.
#[cfg(test)]
#[path = "../../../tests/support/dtmf_pcap.rs"]
mod dtmf_pcap;

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::time::Duration;

    use super::dtmf_pcap;

    /// Directory where Debian's sip-tester package installs sipp's captures.
    const SIPP_PCAP_DIR: &str = "/usr/share/sip-tester";

    /// Keys of sipp's captures in the order their sequence numbers rise.
    const SIPP_KEY_ORDER: [(&str, char); 12] = [
        ("1", '1'),
        ("2", '2'),
        ("3", '3'),
        ("4", '4'),
        ("5", '5'),
        ("6", '6'),
        ("7", '7'),
        ("8", '8'),
        ("9", '9'),
        ("star", '*'),
        ("pound", '#'),
        ("0", '0'),
    ];

    /// One packet of a capture: its RTP bytes and its capture time offset.
    struct CapturedPacket {
        rtp: Vec<u8>,
        offset: Duration,
    }

    /// Reads the UDP payloads of a classic libpcap file with Ethernet and
    /// IPv4 headers, in either byte order.
    fn read_pcap_udp_payloads(path: &Path) -> Vec<CapturedPacket> {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        assert!(bytes.len() >= 24, "{} has no pcap header", path.display());

        let magic = [bytes[0], bytes[1], bytes[2], bytes[3]];
        let little_endian = match magic {
            [0xD4, 0xC3, 0xB2, 0xA1] => true,
            [0xA1, 0xB2, 0xC3, 0xD4] => false,
            other => panic!("{}: unknown pcap magic {other:02x?}", path.display()),
        };
        let read_u32 = |at: usize| {
            let word = [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]];
            if little_endian {
                u32::from_le_bytes(word)
            } else {
                u32::from_be_bytes(word)
            }
        };
        assert_eq!(read_u32(20), 1, "link type must be Ethernet");

        let mut packets = Vec::new();
        let mut offset = 24;
        let mut first_time = None;
        while offset + 16 <= bytes.len() {
            let seconds = u64::from(read_u32(offset));
            let micros = u64::from(read_u32(offset + 4));
            let captured = read_u32(offset + 8) as usize;
            let original = read_u32(offset + 12) as usize;
            assert_eq!(captured, original, "truncated packet in {}", path.display());
            let frame = &bytes[offset + 16..offset + 16 + captured];
            offset += 16 + captured;

            let time = Duration::from_micros(seconds * 1_000_000 + micros);
            let start = *first_time.get_or_insert(time);

            assert_eq!(&frame[12..14], &[0x08, 0x00], "EtherType must be IPv4");
            let ip = &frame[14..];
            assert_eq!(ip[0] >> 4, 4, "IP version");
            assert_eq!(ip[9], 17, "IP protocol must be UDP");
            let ip_header_len = usize::from(ip[0] & 0x0F) * 4;
            let udp = &ip[ip_header_len..];
            let udp_len = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
            packets.push(CapturedPacket {
                rtp: udp[8..udp_len].to_vec(),
                offset: time - start,
            });
        }
        packets
    }

    /// Feeds packets to a receiver, advancing the clock by their capture
    /// times, and returns the keys reported.
    fn feed(receiver: &mut Rfc4733Receiver, packets: &[CapturedPacket], start: Instant) -> String {
        let mut keys = String::new();
        for captured in packets {
            let packet = RtpPacket::parse(&captured.rtp).expect("captured packet is RTP");
            if let Some(event) = receiver.handle_packet(&packet, start + captured.offset) {
                keys.push(event.digit.as_char());
            }
        }
        keys
    }

    fn sipp_capture(name: &str) -> Vec<CapturedPacket> {
        let path = Path::new(SIPP_PCAP_DIR).join(format!("dtmf_2833_{name}.pcap"));
        read_pcap_udp_payloads(&path)
    }

    /// Builds a telephone-event packet.
    fn event_packet(sequence: u16, timestamp: u32, code: u8, end: bool, duration: u16) -> Vec<u8> {
        let mut packet = vec![0x80, 101];
        packet.extend_from_slice(&sequence.to_be_bytes());
        packet.extend_from_slice(&timestamp.to_be_bytes());
        packet.extend_from_slice(&0x0102_0304u32.to_be_bytes());
        let flags = if end { 0x8A } else { 0x0A };
        packet.extend_from_slice(&[code, flags]);
        packet.extend_from_slice(&duration.to_be_bytes());
        packet
    }

    fn feed_raw(receiver: &mut Rfc4733Receiver, packets: &[Vec<u8>]) -> String {
        let captured: Vec<CapturedPacket> = packets
            .iter()
            .map(|rtp| CapturedPacket {
                rtp: rtp.clone(),
                offset: Duration::ZERO,
            })
            .collect();
        feed(receiver, &captured, Instant::now())
    }

    #[test]
    fn sipp_captures_yield_their_key_once() {
        for (name, key) in SIPP_KEY_ORDER {
            let packets = sipp_capture(name);
            assert_eq!(packets.len(), 10, "dtmf_2833_{name}.pcap packet count");

            let mut receiver = Rfc4733Receiver::new(101);
            let keys = feed(&mut receiver, &packets, Instant::now());
            assert_eq!(keys, key.to_string(), "dtmf_2833_{name}.pcap");
            assert_eq!(receiver.stats().duplicates, 2, "two repeated end packets");
        }
    }

    #[test]
    fn sipp_captures_in_sequence_order() {
        let mut receiver = Rfc4733Receiver::new(101);
        let mut keys = String::new();
        let start = Instant::now();
        for (name, _) in SIPP_KEY_ORDER {
            keys.push_str(&feed(&mut receiver, &sipp_capture(name), start));
        }
        assert_eq!(keys, "123456789*#0");
        assert_eq!(receiver.stats().events, 12);
    }

    #[test]
    fn replayed_capture_is_dropped() {
        let packets = sipp_capture("5");
        let mut receiver = Rfc4733Receiver::new(101);
        let start = Instant::now();
        assert_eq!(feed(&mut receiver, &packets, start), "5");
        assert_eq!(
            feed(&mut receiver, &packets, start),
            "",
            "identical packets again"
        );
    }

    #[test]
    fn other_payload_type_is_ignored() {
        let mut receiver = Rfc4733Receiver::new(96);
        let keys = feed(&mut receiver, &sipp_capture("1"), Instant::now());
        assert_eq!(keys, "");
        assert_eq!(receiver.stats(), ReceiverStats::default());
    }

    #[test]
    fn generated_pcap_yields_repeated_digits() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("digits.pcap");
        dtmf_pcap::write_rfc4733_pcap(&path, "1122#", 101).expect("pcap written");

        let packets = read_pcap_udp_payloads(&path);
        let mut receiver = Rfc4733Receiver::new(101);
        assert_eq!(feed(&mut receiver, &packets, Instant::now()), "1122#");
        assert_eq!(receiver.stats().duplicates, 10, "two repeats per key press");
    }

    #[test]
    fn generated_pcap_dynamic_payload_type() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("digits.pcap");
        dtmf_pcap::write_rfc4733_pcap(&path, "90*AD#", 96).expect("pcap written");

        let packets = read_pcap_udp_payloads(&path);
        let mut receiver = Rfc4733Receiver::new(96);
        assert_eq!(feed(&mut receiver, &packets, Instant::now()), "90*AD#");
    }

    #[test]
    fn generated_pcap_timing_and_numbering() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("digits.pcap");
        dtmf_pcap::write_rfc4733_pcap(&path, "12", 101).expect("pcap written");
        let packets = read_pcap_udp_payloads(&path);

        let parsed: Vec<RtpPacket<'_>> = packets
            .iter()
            .map(|p| RtpPacket::parse(&p.rtp).expect("RTP"))
            .collect();
        assert_eq!(parsed.len(), 22, "8 updates and 3 end packets per key");
        assert!(parsed[0].marker, "first packet has the marker");
        assert!(parsed[11].marker, "second key starts with the marker");
        assert!(parsed[1..11].iter().all(|p| !p.marker));

        // End packets repeat one sequence number; otherwise it rises by one.
        assert_eq!(parsed[8].sequence_number, parsed[9].sequence_number);
        assert_eq!(parsed[9].sequence_number, parsed[10].sequence_number);
        assert_eq!(
            parsed[11].sequence_number,
            parsed[10].sequence_number.wrapping_add(1)
        );
        assert!(parsed[11].timestamp > parsed[0].timestamp);

        // The capture clock matches the RTP clock: 8 samples per millisecond.
        let rtp_ms = (parsed[11].timestamp - parsed[0].timestamp) / 8;
        let capture_ms = (packets[11].offset - packets[0].offset).as_millis();
        assert_eq!(u128::from(rtp_ms), capture_ms);
        assert_eq!(
            packets[1].offset - packets[0].offset,
            Duration::from_millis(20)
        );
    }

    #[test]
    fn generated_pcap_rejects_unknown_key() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("digits.pcap");
        let error = dtmf_pcap::write_rfc4733_pcap(&path, "12x", 101).expect_err("x is no key");
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    }

    #[test]
    fn lost_start_still_yields_key() {
        let mut receiver = Rfc4733Receiver::new(101);
        let packets = [
            event_packet(10, 800, 3, true, 800),
            event_packet(10, 800, 3, true, 800),
            event_packet(10, 800, 3, true, 800),
        ];
        assert_eq!(feed_raw(&mut receiver, &packets), "3");
    }

    #[test]
    fn late_packet_of_old_event_is_dropped() {
        let mut receiver = Rfc4733Receiver::new(101);
        let packets = [
            event_packet(10, 800, 1, false, 160),
            event_packet(12, 2400, 2, false, 160),
            // Packet 11 of the first event arrives after the second started.
            event_packet(11, 800, 1, true, 320),
            event_packet(13, 2400, 2, true, 320),
        ];
        assert_eq!(feed_raw(&mut receiver, &packets), "12");
        assert_eq!(receiver.stats().duplicates, 1);
    }

    #[test]
    fn sequence_number_wraps() {
        let mut receiver = Rfc4733Receiver::new(101);
        let packets = [
            event_packet(65534, 800, 4, false, 160),
            event_packet(65535, 800, 4, true, 320),
            event_packet(0, 1600, 4, false, 160),
            event_packet(1, 1600, 4, true, 320),
        ];
        assert_eq!(feed_raw(&mut receiver, &packets), "44");
        assert_eq!(receiver.stats().duplicates, 0);
    }

    #[test]
    fn long_event_segment_is_not_a_new_key() {
        let mut receiver = Rfc4733Receiver::new(101);
        let packets = [
            event_packet(1, 1000, 7, false, 65535),
            // Next segment starts where the first one's duration ended.
            event_packet(2, 1000 + 65535, 7, false, 160),
            event_packet(3, 1000 + 65535, 7, true, 320),
            // A real new press of the same key after the end.
            event_packet(4, 1000 + 65535 + 2000, 7, false, 160),
        ];
        assert_eq!(feed_raw(&mut receiver, &packets), "77");
    }

    #[test]
    fn new_ssrc_starts_over() {
        let mut receiver = Rfc4733Receiver::new(101);
        let first = event_packet(500, 800, 1, false, 160);
        let mut second = event_packet(20, 800, 2, false, 160);
        second[8..12].copy_from_slice(&0x0A0B_0C0Du32.to_be_bytes());
        assert_eq!(feed_raw(&mut receiver, &[first, second]), "12");
    }

    #[test]
    fn sequence_restart_is_accepted() {
        let mut receiver = Rfc4733Receiver::new(101);
        let packets = [
            event_packet(30000, 800, 5, false, 160),
            // Far behind: the sender restarted its numbering.
            event_packet(100, 4000, 6, false, 160),
        ];
        assert_eq!(feed_raw(&mut receiver, &packets), "56");
    }

    #[test]
    fn short_payload_and_flash_are_not_keys() {
        let mut receiver = Rfc4733Receiver::new(101);
        let mut short = event_packet(1, 800, 1, false, 160);
        short.truncate(14);
        let flash = event_packet(2, 1600, 16, false, 160);
        assert_eq!(feed_raw(&mut receiver, &[short, flash]), "");
        assert_eq!(receiver.stats().malformed, 1);
        assert_eq!(receiver.stats().non_key_events, 1);
    }

    #[test]
    fn received_at_is_the_first_packet_time() {
        let mut receiver = Rfc4733Receiver::new(101);
        let start = Instant::now();
        let packet_bytes = event_packet(1, 800, 9, false, 160);
        let packet = RtpPacket::parse(&packet_bytes).expect("RTP");
        let event = receiver
            .handle_packet(&packet, start + Duration::from_millis(40))
            .expect("first packet reports the key");
        assert_eq!(event.digit.as_char(), '9');
        assert_eq!(event.received_at, start + Duration::from_millis(40));
    }

    /// Feeds packets with their arrival times in ms after a common start.
    fn feed_timed(receiver: &mut Rfc4733Receiver, packets: &[(Vec<u8>, u64)]) -> String {
        let captured: Vec<CapturedPacket> = packets
            .iter()
            .map(|(rtp, ms)| CapturedPacket {
                rtp: rtp.clone(),
                offset: Duration::from_millis(*ms),
            })
            .collect();
        feed(receiver, &captured, Instant::now())
    }

    /// Builds the packets of one key press as a sender sends them every
    /// 20 ms: updates with a growing duration, then three end packets with
    /// one sequence number. Returns the packets with their send times in ms.
    fn key_press(
        first_sequence: u16,
        timestamp: u32,
        code: u8,
        updates: u16,
        start_ms: u64,
    ) -> Vec<(Vec<u8>, u64)> {
        let mut packets = Vec::new();
        for update in 0..updates {
            let duration = (update + 1) * 160;
            let sequence = first_sequence.wrapping_add(update);
            let ms = start_ms + u64::from(update) * 20;
            packets.push((event_packet(sequence, timestamp, code, false, duration), ms));
        }
        let end_sequence = first_sequence.wrapping_add(updates);
        let end_ms = start_ms + u64::from(updates) * 20;
        for repeat in 0..3 {
            let packet = event_packet(end_sequence, timestamp, code, true, updates * 160);
            packets.push((packet, end_ms + repeat * 20));
        }
        packets
    }

    #[test]
    fn long_press_many_updates_is_one_key() {
        let mut receiver = Rfc4733Receiver::new(101);
        // Three seconds of updates.
        let packets = key_press(100, 8000, 5, 150, 0);
        assert_eq!(feed_timed(&mut receiver, &packets), "5");
        assert_eq!(receiver.stats().events, 1);
    }

    #[test]
    fn segmented_event_without_end_bit() {
        let mut receiver = Rfc4733Receiver::new(101);
        let base = 4_000u32;
        let max = u32::from(u16::MAX);
        let packets = [
            (event_packet(1, base, 0, false, 65_000), 0),
            // The segment's last update (duration 65535) is lost, so the
            // next segment starts a full segment after the first.
            (event_packet(3, base + max, 0, false, 160), 8_200),
            (event_packet(4, base + max, 0, false, 60_000), 15_700),
            (event_packet(5, base + 2 * max, 0, false, 160), 16_400),
            (event_packet(6, base + 2 * max, 0, true, 480), 16_440),
        ];
        assert_eq!(feed_timed(&mut receiver, &packets), "0");
        assert_eq!(receiver.stats().events, 1);
    }

    #[test]
    fn missing_end_packets_then_same_key() {
        let mut receiver = Rfc4733Receiver::new(101);
        let packets = [
            (event_packet(1, 800, 2, false, 160), 0),
            (event_packet(2, 800, 2, false, 320), 20),
            (event_packet(3, 800, 2, false, 480), 40),
            // End packets lost. The same key again, 100 ms later.
            (event_packet(4, 1_920, 2, false, 160), 140),
            (event_packet(5, 1_920, 2, true, 320), 160),
        ];
        assert_eq!(feed_timed(&mut receiver, &packets), "22");
    }

    #[test]
    fn missing_end_packets_then_other_key() {
        let mut receiver = Rfc4733Receiver::new(101);
        let packets = [
            (event_packet(1, 800, 8, false, 160), 0),
            (event_packet(2, 1_600, 9, false, 160), 100),
        ];
        assert_eq!(feed_timed(&mut receiver, &packets), "89");
    }

    #[test]
    fn no_marker_bit_starts_events() {
        let mut with_marker = Rfc4733Receiver::new(101);
        let mut without_marker = Rfc4733Receiver::new(101);
        let mut packets = key_press(10, 800, 1, 4, 0);
        packets.extend(key_press(17, 2_400, 1, 4, 200));
        assert!(packets.iter().all(|(rtp, _)| rtp[1] & 0x80 == 0));
        assert_eq!(feed_timed(&mut without_marker, &packets), "11");

        for index in [0, 7] {
            packets[index].0[1] |= 0x80;
        }
        assert_eq!(feed_timed(&mut with_marker, &packets), "11");
    }

    #[test]
    fn end_repeated_with_new_timestamps_is_one_key() {
        let mut receiver = Rfc4733Receiver::new(101);
        let packets = [
            (event_packet(1, 800, 4, false, 160), 0),
            (event_packet(2, 800, 4, false, 320), 20),
            (event_packet(3, 800, 4, true, 480), 40),
            // The sender stamps every repeat as if it were audio.
            (event_packet(4, 960, 4, true, 480), 60),
            (event_packet(5, 1_120, 4, true, 480), 80),
        ];
        assert_eq!(feed_timed(&mut receiver, &packets), "4");
        assert_eq!(receiver.stats().repeated_ends, 2);
    }

    #[test]
    fn end_only_press_after_window_is_new_key() {
        let mut receiver = Rfc4733Receiver::new(101);
        let packets = [
            (event_packet(1, 800, 4, true, 480), 0),
            // Start and updates of the second press were lost; its end
            // arrives well after the window.
            (event_packet(6, 2_400, 4, true, 480), 200),
        ];
        assert_eq!(feed_timed(&mut receiver, &packets), "44");
        assert_eq!(receiver.stats().repeated_ends, 0);
    }

    #[test]
    fn end_of_other_key_in_window_is_new_key() {
        let mut receiver = Rfc4733Receiver::new(101);
        let packets = [
            (event_packet(1, 800, 4, true, 480), 0),
            (event_packet(2, 960, 6, true, 480), 20),
        ];
        assert_eq!(feed_timed(&mut receiver, &packets), "46");
    }
}
