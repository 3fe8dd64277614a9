//! The caller's RTP: PCMA audio every 20 ms, digits as RFC 4733
//! telephone-events in the same stream, and kernel receive timestamps
//! (SO_TIMESTAMPNS) of the service's packets, so that the generator's own
//! scheduling delay does not count as the service's jitter.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::oneshot;
use tokio::time::MissedTickBehavior;

use crate::stats::Stats;

const FRAME: Duration = Duration::from_millis(20);
const FRAME_NS: i64 = 20_000_000;
const AUDIO_PAYLOAD_TYPE: u8 = 8;
pub const EVENT_PAYLOAD_TYPE: u8 = 101;
const SAMPLES_PER_FRAME: u32 = 160;
/// A frame that arrives more than this after its slot on the stream's
/// 20 ms grid counts as late: a 20 ms jitter buffer would have run dry.
const LATE_NS: i64 = 20_000_000;

/// The packet of one 20 ms tick.
#[derive(Clone, Copy)]
enum Slot {
    Audio,
    Event {
        event: u8,
        duration: u16,
        marker: bool,
        end: bool,
        /// End packets after the first repeat the sequence number.
        repeat: bool,
        /// The first packet of the last key: the moment "last digit sent",
        /// because ivr-verify's RFC 4733 receiver reports a key on its first packet.
        last_key_start: bool,
    },
}

/// Builds the ticks that type `digits`: per key four updates 20 ms apart,
/// three end packets, then two ticks of audio.
fn schedule(digits: &str) -> VecDeque<Slot> {
    let mut slots = VecDeque::new();
    let keys: Vec<u8> = digits
        .chars()
        .filter_map(|key| match key {
            '0'..='9' => Some(key as u8 - b'0'),
            '*' => Some(10),
            '#' => Some(11),
            _ => None,
        })
        .collect();
    for (index, event) in keys.iter().enumerate() {
        for step in 0..7u16 {
            slots.push_back(Slot::Event {
                event: *event,
                duration: 160 * (step.min(3) + 1),
                marker: step == 0,
                end: step >= 4,
                repeat: step >= 5,
                last_key_start: index + 1 == keys.len() && step == 0,
            });
        }
        slots.push_back(Slot::Audio);
        slots.push_back(Slot::Audio);
    }
    slots
}

/// Per-call receive state for the jitter and late-frame figures.
#[derive(Default)]
struct Receiver {
    previous: Option<(u16, i64)>,
    extended: i64,
    min_offset: Option<i64>,
}

impl Receiver {
    /// Takes one packet's sequence number and kernel arrival time (ns);
    /// returns the inter-arrival deviation in µs for consecutive packets and
    /// whether the packet is late.
    fn take(&mut self, sequence: u16, arrival_ns: i64) -> (Option<u64>, bool) {
        let mut deviation = None;
        if let Some((previous_sequence, previous_ns)) = self.previous {
            let step = i64::from(sequence.wrapping_sub(previous_sequence) as i16);
            self.extended += step;
            if step == 1 {
                deviation = Some(((arrival_ns - previous_ns) - FRAME_NS).unsigned_abs() / 1000);
            }
        }
        self.previous = Some((sequence, arrival_ns));

        let offset = arrival_ns - self.extended * FRAME_NS;
        let baseline = *self.min_offset.get_or_insert(offset);
        if offset < baseline {
            self.min_offset = Some(offset);
        }
        (deviation, offset - baseline > LATE_NS)
    }
}

/// Runs the call's media until `stop` fires. Starts typing `type_after`
/// after the start, and sends `last_digit` the moment the last key's first
/// packet left.
pub async fn run(
    socket: UdpSocket,
    remote: SocketAddr,
    digits: String,
    type_after: Duration,
    stats: Arc<Stats>,
    mut stop: oneshot::Receiver<()>,
    last_digit: oneshot::Sender<Instant>,
) {
    let mut last_digit = Some(last_digit);
    let start = Instant::now();
    let mut pending: Option<VecDeque<Slot>> = Some(schedule(&digits));
    let mut slots: VecDeque<Slot> = VecDeque::new();

    let ssrc: u32 = std::process::id() ^ (socket.local_addr().map_or(0, |a| u32::from(a.port())) << 16);
    let mut sequence: u16 = 1;
    let mut timestamp: u32 = 0;
    let mut event_timestamp: u32 = 0;
    let mut packet = [0u8; 12 + SAMPLES_PER_FRAME as usize];
    let mut buffer = [0u8; 1500];
    let mut receiver = Receiver::default();
    let (mut sent, mut received, mut late) = (0u64, 0u64, 0u64);

    let mut ticker = tokio::time::interval(FRAME);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);

    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = ticker.tick() => {
                if pending.is_some() && start.elapsed() >= type_after {
                    slots = pending.take().unwrap_or_default();
                }
                let slot = slots.pop_front().unwrap_or(Slot::Audio);
                let length = match slot {
                    Slot::Audio => {
                        write_header(&mut packet, AUDIO_PAYLOAD_TYPE, false, sequence, timestamp, ssrc);
                        packet[12..].fill(0xD5);
                        sequence = sequence.wrapping_add(1);
                        packet.len()
                    }
                    Slot::Event { event, duration, marker, end, repeat, last_key_start } => {
                        if marker {
                            event_timestamp = timestamp;
                        }
                        let this_sequence = if repeat { sequence.wrapping_sub(1) } else { sequence };
                        write_header(&mut packet, EVENT_PAYLOAD_TYPE, marker, this_sequence, event_timestamp, ssrc);
                        packet[12] = event;
                        packet[13] = if end { 0x80 | 10 } else { 10 };
                        packet[14..16].copy_from_slice(&duration.to_be_bytes());
                        if !repeat {
                            sequence = sequence.wrapping_add(1);
                        }
                        if last_key_start {
                            if let Some(tx) = last_digit.take() {
                                let _ = tx.send(Instant::now());
                            }
                        }
                        16
                    }
                };
                timestamp = timestamp.wrapping_add(SAMPLES_PER_FRAME);
                if socket.send_to(&packet[..length], remote).await.is_ok() {
                    sent += 1;
                }
            }
            incoming = socket.async_io(Interest::READABLE, || recv_timestamped(&socket, &mut buffer)) => {
                if let Ok((length, arrival_ns)) = incoming {
                    if length >= 12 {
                        let sequence = u16::from_be_bytes([buffer[2], buffer[3]]);
                        let (deviation, is_late) = receiver.take(sequence, arrival_ns);
                        received += 1;
                        late += u64::from(is_late);
                        if let Some(deviation) = deviation {
                            stats.lock().jitter.record(deviation);
                        }
                    }
                }
            }
        }
    }

    let mut inner = stats.lock();
    inner.rtp_sent += sent;
    inner.rtp_received += received;
    inner.rtp_late += late;
}

fn write_header(packet: &mut [u8], payload_type: u8, marker: bool, sequence: u16, timestamp: u32, ssrc: u32) {
    packet[0] = 0x80;
    packet[1] = payload_type | if marker { 0x80 } else { 0 };
    packet[2..4].copy_from_slice(&sequence.to_be_bytes());
    packet[4..8].copy_from_slice(&timestamp.to_be_bytes());
    packet[8..12].copy_from_slice(&ssrc.to_be_bytes());
}

/// Turns on SO_TIMESTAMPNS, so that each datagram carries its kernel
/// arrival time.
pub fn enable_timestamps(socket: &UdpSocket) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: valid fd and a c_int option value.
    let result = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            std::ptr::from_ref(&on).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Reads one datagram with recvmsg; returns its length and kernel arrival
/// time in nanoseconds (CLOCK_REALTIME), or now when the kernel sent none.
fn recv_timestamped(socket: &UdpSocket, buffer: &mut [u8]) -> io::Result<(usize, i64)> {
    let mut iov = libc::iovec {
        iov_base: buffer.as_mut_ptr().cast(),
        iov_len: buffer.len(),
    };
    let mut control = [0u64; 8];
    // SAFETY: msghdr is plain data; every pointer set below outlives the call.
    let mut header: libc::msghdr = unsafe { std::mem::zeroed() };
    header.msg_iov = &mut iov;
    header.msg_iovlen = 1;
    header.msg_control = control.as_mut_ptr().cast();
    header.msg_controllen = std::mem::size_of_val(&control);

    // SAFETY: the fd is open and `header` points at live buffers.
    let length = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut header, libc::MSG_DONTWAIT) };
    if length < 0 {
        return Err(io::Error::last_os_error());
    }

    let mut arrival_ns = None;
    // SAFETY: the CMSG macros walk the control buffer the kernel filled.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&header);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS {
                let time = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::timespec>());
                arrival_ns = Some(time.tv_sec * 1_000_000_000 + time.tv_nsec);
            }
            cmsg = libc::CMSG_NXTHDR(&header, cmsg);
        }
    }
    let arrival_ns = arrival_ns.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos() as i64)
    });
    Ok((length as usize, arrival_ns))
}
