//! Writes pcap files of RFC 4733 key presses that sipp can replay with
//! `<exec play_pcap_audio="..."/>`.
//!
//! sipp's own `dtmf_2833_*.pcap` captures are cut from one stream, so only
//! numbers whose keys follow that stream's order can be typed with them.
//! This writer produces any key sequence, repeated keys included, as one
//! stream with rising sequence numbers and timestamps.
//!
//! sipp reads the file with libpcap and requires Ethernet (or Linux cooked)
//! framing, IPv4 or IPv6, UDP, and untruncated packets. It takes the UDP
//! length field as the payload length, recomputes the UDP checksum and
//! rewrites the addresses and ports, so the 127.0.0.1 addresses written
//! here never leave the machine as they are.

use std::fs;
use std::io;
use std::path::Path;

/// Time between two packets of one key press, in ms (the usual 20 ms packet
/// time of RFC 3551).
const PACKET_INTERVAL_MS: u32 = 20;

/// Update packets per key press. Eight packets 20 ms apart make a 160 ms
/// press, well above the 40 ms that ITU-T Q.24 receivers must accept.
const UPDATES_PER_KEY: u32 = 8;

/// Copies of the end packet, all with one sequence number, as RFC 4733
/// recommends and sipp's captures do.
const END_PACKET_COPIES: u32 = 3;

/// Silence between the last end packet of one key and the start of the next.
const INTER_KEY_GAP_MS: u32 = 60;

/// RTP clock of telephone-event, in samples per ms (8 kHz).
const SAMPLES_PER_MS: u32 = 8;

/// Volume field of each event: 10, meaning -10 dBm0, a typical keypad level.
const EVENT_VOLUME: u8 = 10;

/// SSRC of the generated stream. Fixed so that runs are reproducible.
const SSRC: u32 = 0x4956_5256;

/// First sequence number and first timestamp of the stream.
const FIRST_SEQUENCE_NUMBER: u16 = 1000;
const FIRST_TIMESTAMP: u32 = 160_000;

/// UDP ports written into the capture. sipp replaces the destination with
/// the media port the remote side announced in its SDP.
const SOURCE_PORT: u16 = 6002;
const DESTINATION_PORT: u16 = 6000;

/// Capture time of the first packet, in seconds since the Unix epoch.
const CAPTURE_START_SECONDS: u32 = 1_700_000_000;

/// libpcap link type for Ethernet.
const LINKTYPE_ETHERNET: u32 = 1;

/// Writes `digits` as RFC 4733 telephone-events with `payload_type` to a
/// libpcap file at `path`.
///
/// Each key is 8 update packets 20 ms apart (marker bit on the first), then
/// three copies of the end packet, 20 ms apart with one sequence number,
/// then 60 ms without packets. Sequence numbers and RTP timestamps rise
/// strictly from key to key, and the pcap timestamps follow the RTP clock.
/// Keys are `0`-`9`, `*`, `#` and `A`-`D` (either case). Any other
/// character returns `ErrorKind::InvalidInput`.
pub fn write_rfc4733_pcap(path: &Path, digits: &str, payload_type: u8) -> io::Result<()> {
    if payload_type > 127 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("payload type {payload_type} does not fit in 7 bits; use 0-127"),
        ));
    }

    let mut file = pcap_global_header();
    let mut sequence_number = FIRST_SEQUENCE_NUMBER;
    let mut elapsed_ms: u32 = 0;
    let mut ip_id: u16 = 1;

    for key in digits.chars() {
        let code = event_code(key)?;
        let timestamp = FIRST_TIMESTAMP + elapsed_ms * SAMPLES_PER_MS;
        let event_start_ms = elapsed_ms;

        for update in 0..UPDATES_PER_KEY {
            let duration = (update + 1) * PACKET_INTERVAL_MS * SAMPLES_PER_MS;
            let rtp = rtp_event_packet(
                payload_type,
                update == 0,
                sequence_number,
                timestamp,
                code,
                false,
                duration,
            );
            push_record(&mut file, elapsed_ms, ip_id, &rtp);
            sequence_number = sequence_number.wrapping_add(1);
            ip_id = ip_id.wrapping_add(1);
            elapsed_ms += PACKET_INTERVAL_MS;
        }

        let duration = (elapsed_ms - event_start_ms) * SAMPLES_PER_MS;
        for _ in 0..END_PACKET_COPIES {
            let rtp = rtp_event_packet(
                payload_type,
                false,
                sequence_number,
                timestamp,
                code,
                true,
                duration,
            );
            push_record(&mut file, elapsed_ms, ip_id, &rtp);
            ip_id = ip_id.wrapping_add(1);
            elapsed_ms += PACKET_INTERVAL_MS;
        }
        sequence_number = sequence_number.wrapping_add(1);

        // The loop above already waited one interval after the last copy.
        elapsed_ms += INTER_KEY_GAP_MS - PACKET_INTERVAL_MS;
    }

    fs::write(path, file)
}

/// Returns the RFC 4733 event code of a keypad character.
fn event_code(key: char) -> io::Result<u8> {
    match key.to_ascii_uppercase() {
        digit @ '0'..='9' => Ok(digit as u8 - b'0'),
        '*' => Ok(10),
        '#' => Ok(11),
        letter @ 'A'..='D' => Ok(letter as u8 - b'A' + 12),
        other => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{other:?} is not a DTMF key; use 0-9, *, # or A-D"),
        )),
    }
}

/// Returns the 24-byte libpcap file header: microsecond timestamps, written
/// little-endian like sipp's own captures.
fn pcap_global_header() -> Vec<u8> {
    let mut header = Vec::with_capacity(24);
    header.extend_from_slice(&0xA1B2_C3D4u32.to_le_bytes());
    header.extend_from_slice(&2u16.to_le_bytes());
    header.extend_from_slice(&4u16.to_le_bytes());
    header.extend_from_slice(&0i32.to_le_bytes()); // UTC offset
    header.extend_from_slice(&0u32.to_le_bytes()); // timestamp accuracy
    header.extend_from_slice(&65_535u32.to_le_bytes()); // snapshot length
    header.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
    header
}

/// Returns one RTP packet with a telephone-event payload.
fn rtp_event_packet(
    payload_type: u8,
    marker: bool,
    sequence_number: u16,
    timestamp: u32,
    code: u8,
    end: bool,
    duration: u32,
) -> Vec<u8> {
    let marker_bit = if marker { 0x80 } else { 0x00 };
    let end_bit = if end { 0x80 } else { 0x00 };
    let duration = u16::try_from(duration).unwrap_or(u16::MAX);

    let mut packet = Vec::with_capacity(16);
    packet.push(0x80); // version 2
    packet.push(marker_bit | payload_type);
    packet.extend_from_slice(&sequence_number.to_be_bytes());
    packet.extend_from_slice(&timestamp.to_be_bytes());
    packet.extend_from_slice(&SSRC.to_be_bytes());
    packet.push(code);
    packet.push(end_bit | EVENT_VOLUME);
    packet.extend_from_slice(&duration.to_be_bytes());
    packet
}

/// Appends one pcap record containing `rtp` in Ethernet, IPv4 and UDP headers
/// from 127.0.0.1 to 127.0.0.1.
fn push_record(file: &mut Vec<u8>, elapsed_ms: u32, ip_id: u16, rtp: &[u8]) {
    const LOOPBACK: [u8; 4] = [127, 0, 0, 1];
    let udp_len = 8 + rtp.len();
    let ip_len = 20 + udp_len;
    let frame_len = 14 + ip_len;

    let seconds = CAPTURE_START_SECONDS + elapsed_ms / 1000;
    let micros = (elapsed_ms % 1000) * 1000;
    file.extend_from_slice(&seconds.to_le_bytes());
    file.extend_from_slice(&micros.to_le_bytes());
    file.extend_from_slice(&(frame_len as u32).to_le_bytes()); // captured
    file.extend_from_slice(&(frame_len as u32).to_le_bytes()); // original

    // Ethernet: locally administered MAC addresses, EtherType IPv4.
    file.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x02]);
    file.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
    file.extend_from_slice(&[0x08, 0x00]);

    let mut ip = [0u8; 20];
    ip[0] = 0x45; // version 4, 5 words of header
    ip[1] = 0xB8; // DSCP EF, the usual marking for voice
    ip[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
    ip[4..6].copy_from_slice(&ip_id.to_be_bytes());
    ip[6] = 0x40; // don't fragment
    ip[8] = 64; // TTL
    ip[9] = 17; // UDP
    ip[12..16].copy_from_slice(&LOOPBACK);
    ip[16..20].copy_from_slice(&LOOPBACK);
    let ip_checksum = internet_checksum(&[&ip]);
    ip[10..12].copy_from_slice(&ip_checksum.to_be_bytes());
    file.extend_from_slice(&ip);

    let mut udp = [0u8; 8];
    udp[0..2].copy_from_slice(&SOURCE_PORT.to_be_bytes());
    udp[2..4].copy_from_slice(&DESTINATION_PORT.to_be_bytes());
    udp[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());
    let mut pseudo_header = [0u8; 12];
    pseudo_header[0..4].copy_from_slice(&LOOPBACK);
    pseudo_header[4..8].copy_from_slice(&LOOPBACK);
    pseudo_header[9] = 17;
    pseudo_header[10..12].copy_from_slice(&(udp_len as u16).to_be_bytes());
    let udp_checksum = match internet_checksum(&[&pseudo_header, &udp, rtp]) {
        // RFC 768: a computed zero is sent as all ones, because zero means
        // "no checksum".
        0 => 0xFFFF,
        sum => sum,
    };
    udp[6..8].copy_from_slice(&udp_checksum.to_be_bytes());
    file.extend_from_slice(&udp);

    file.extend_from_slice(rtp);
}

/// Computes the RFC 1071 ones' complement checksum over the concatenated
/// parts. Every part but the last must have an even length.
fn internet_checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    for part in parts {
        for pair in part.chunks(2) {
            let word = match pair {
                [high, low] => u16::from_be_bytes([*high, *low]),
                [high] => u16::from_be_bytes([*high, 0]),
                _ => 0,
            };
            sum += u32::from(word);
        }
    }
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}
