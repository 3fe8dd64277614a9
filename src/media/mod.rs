//! Media for one call: G.711 audio, RTP packets, prompt playback and DTMF
//! detection.
//!
//! Every type here is sans-I/O. None of them owns a socket or reads a clock.
//! The per-call task at the runtime edge receives RTP datagrams and hands
//! them to [`rtp::RtpPacket::parse`] and [`dtmf::rfc4733::Rfc4733Receiver`].
//! Every 20 ms, measured on absolute deadlines, it takes one frame from
//! [`player::Player::next_frame`] and sends it with [`rtp::RtpSender`].

pub mod dtmf;
pub mod g711;
pub mod player;
pub mod prompts;
pub mod rtp;

use std::time::Duration;

/// RTP clock rate of G.711 (fixed by RFC 3551) and of the telephone-event
/// stream this service accepts, in Hz.
pub const SAMPLE_RATE_HZ: u32 = 8_000;

/// Samples in one frame. G.711 carries one byte per sample, so this is also
/// the payload size in bytes.
pub const SAMPLES_PER_FRAME: usize = 160;

/// Duration of one frame: 160 samples at 8 kHz, the default G.711 packet
/// time of RFC 3551.
pub const FRAME_DURATION: Duration = Duration::from_millis(20);

/// One 20 ms frame of G.711 audio, ready to be an RTP payload.
pub type Frame = [u8; SAMPLES_PER_FRAME];
