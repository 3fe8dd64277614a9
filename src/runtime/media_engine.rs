//! Media threads: the RTP of many calls, paced on one shared grid.
//!
//! A call's media is a stream: a prompt player and an RTP sender for what
//! the caller hears, and telephone-event and in-band detectors for what the
//! caller sends. Each media thread owns the RTP sockets of many streams.
//! It wakes once a millisecond, sends one frame for every stream in that
//! millisecond's slot of a 20 ms wheel, and reads whatever the sockets
//! received in between through one epoll set.
//!
//! A task per call with its own 20 ms timer costs a timer wake-up and a
//! task switch per frame, and the call count multiplies them. Here the
//! wake-ups are a fixed 1,000 per second per thread, whatever the number
//! of calls or packets: the thread sleeps until its next slot and then
//! collects every socket that became readable meanwhile. Spreading the
//! streams over 20 slots keeps each wake-up's send burst short, so
//! received key presses wait at most about one slot.
//!
//! The call task drives the flow and talks to its stream through a
//! [`MediaStream`] handle: commands go in (play, stop, new media), and
//! [`MediaEvent`]s come out (a key press, the prompts drained, the caller
//! gone silent).

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use tokio::sync::mpsc;

use crate::media::dtmf::inband::InbandDetector;
use crate::media::dtmf::merge::DigitSource;
use crate::media::dtmf::rfc4733::Rfc4733Receiver;
use crate::media::dtmf::DtmfEvent;
use crate::media::player::{Player, PlayerOutput};
use crate::media::prompts::Prompt;
use crate::media::rtp::{RtpError, RtpPacket, RtpSender};
use crate::sip::sdp::Negotiated;

use super::ports::RtpSocket;

/// Interval between two audio frames: 20 ms of 8 kHz G.711 is 160 bytes,
/// the packetisation every SIP peer accepts (RFC 3551 §4.5).
const FRAME_INTERVAL: Duration = Duration::from_millis(20);

/// Width of one slot of the pacing wheel. The wheel has
/// `FRAME_INTERVAL / SLOT_WIDTH` slots; a stream sends in its own slot of
/// every turn.
const SLOT_WIDTH: Duration = Duration::from_millis(1);

/// Slots in one turn of the wheel.
const SLOT_COUNT: usize = (FRAME_INTERVAL.as_millis() / SLOT_WIDTH.as_millis()) as usize;

/// Maximum lag of the wheel before it stops catching up. Below it, missed
/// slots are sent at once, so every stream keeps its audio clock. Beyond it
/// (a machine stalled for a moment), the frames are skipped and the wheel
/// restarts from now.
const MAX_LAG: Duration = Duration::from_millis(200);

/// Samples in one frame: 20 ms at 8 kHz, the RTP timestamp step.
const SAMPLES_PER_FRAME: u32 = 160;

/// Largest RTP packet we read. G.711 at 60 ms is 480 bytes plus header;
/// anything longer is not audio we negotiated.
const RTP_BUFFER_BYTES: usize = 1500;

/// Datagrams read from one socket per readiness event before the others
/// get their turn; the rest are read after the next slot.
const MAX_READS_PER_EVENT: usize = 64;

/// Epoll events taken per wake-up.
const EVENT_CAPACITY: usize = 1024;

/// The waker's token; stream tokens count up from 0 and never reach it.
const WAKER: Token = Token(usize::MAX);

/// Maximum time without any RTP from the caller (while not on hold) before
/// the call is ended. A phone sends a packet every 20 ms even in silence
/// unless it uses silence suppression, which still sends comfort noise
/// every few seconds, so a minute of nothing means the caller is gone.
const RTP_INACTIVITY_TIMEOUT: Duration = Duration::from_secs(60);

/// Maximum call duration. Verification takes a few minutes at most, so this
/// only ends calls that are stuck, which frees their slot and port.
const MAX_CALL_DURATION: Duration = Duration::from_secs(20 * 60);

/// Event a stream reports to its call task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEvent {
    /// A detector found a key press. The call task merges the sources so
    /// that a press sent two ways counts once.
    Digit {
        /// The detector that found it.
        source: DigitSource,
        /// The key and when it began.
        event: DtmfEvent,
    },
    /// Every prompt queued so far has been played to the end.
    PromptsFinished,
    /// The call must end: it lasted too long, or the caller's media went
    /// silent. Reported once.
    Expired(&'static str),
}

/// Command from a call task to its stream.
enum Command {
    /// Start a stream on a socket.
    Open {
        /// The stream's token in the thread's epoll set.
        id: usize,
        /// The call's RTP socket; dropped, and its port freed, on close.
        rtp: RtpSocket,
        /// Codec and addresses, when known.
        negotiated: Option<Negotiated>,
        /// Channel to the call task, for the stream's events.
        events: mpsc::UnboundedSender<MediaEvent>,
    },
    /// Queue a prompt behind whatever is playing.
    Play(usize, Arc<Prompt>),
    /// Stop the current prompt and drop the queue (barge-in).
    StopPrompts(usize),
    /// New offer/answer results: after a late offer or a re-INVITE.
    Update(usize, Negotiated),
    /// End the stream and free its socket.
    Close(usize),
}

/// The media threads of the service.
pub struct MediaEngine {
    /// One entry per thread; streams are spread over them in turn.
    threads: Vec<ThreadHandle>,

    /// The next stream's token, unique across threads.
    next_id: AtomicUsize,

    /// The thread that gets the next stream.
    next_thread: AtomicUsize,
}

/// The engine's side of one media thread.
struct ThreadHandle {
    /// Commands to the thread, read when it wakes.
    commands: std_mpsc::Sender<Command>,

    /// Wakes the thread from its epoll wait, so that a command does not
    /// wait for the next slot when the thread is idle.
    waker: Arc<Waker>,

    /// Joined on shutdown, after the command channel has closed.
    join: Option<JoinHandle<()>>,
}

/// The call task's handle on its stream. Dropping it ends the stream and
/// frees the RTP port.
pub struct MediaStream {
    /// The stream's token.
    id: usize,

    /// The thread that owns the stream.
    commands: std_mpsc::Sender<Command>,

    /// Wakes that thread.
    waker: Arc<Waker>,
}

impl MediaEngine {
    /// Starts `threads` media threads (at least one).
    pub fn start(threads: usize) -> io::Result<MediaEngine> {
        let mut handles = Vec::new();

        for index in 0..threads.max(1) {
            let poll = Poll::new()?;
            let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
            let (commands, receiver) = std_mpsc::channel();
            let join = std::thread::Builder::new()
                .name(format!("media-{index}"))
                .spawn(move || MediaThread::new(poll, receiver).run())?;
            handles.push(ThreadHandle {
                commands,
                waker,
                join: Some(join),
            });
        }

        Ok(MediaEngine {
            threads: handles,
            next_id: AtomicUsize::new(0),
            next_thread: AtomicUsize::new(0),
        })
    }

    /// Starts one media thread per core this process may run on.
    pub fn start_per_core() -> io::Result<MediaEngine> {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        MediaEngine::start(cores)
    }

    /// Hands `rtp` to a media thread and returns the handle for its stream.
    /// Nothing is sent until `negotiated` (or a later update) is known.
    pub fn open(
        &self,
        rtp: RtpSocket,
        negotiated: Option<Negotiated>,
        events: mpsc::UnboundedSender<MediaEvent>,
    ) -> io::Result<MediaStream> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let index = self.next_thread.fetch_add(1, Ordering::Relaxed) % self.threads.len();
        let thread = self
            .threads
            .get(index)
            .ok_or_else(|| io::Error::other("no media thread"))?;

        let stream = MediaStream {
            id,
            commands: thread.commands.clone(),
            waker: Arc::clone(&thread.waker),
        };
        stream.send(Command::Open {
            id,
            rtp,
            negotiated,
            events,
        })?;
        Ok(stream)
    }
}

impl Drop for MediaEngine {
    /// Closes every thread's command channel and waits for the threads.
    /// A thread ends once its last stream handle is gone as well.
    fn drop(&mut self) {
        for thread in &mut self.threads {
            let (closed, _) = std_mpsc::channel();
            drop(std::mem::replace(&mut thread.commands, closed));
            let _ = thread.waker.wake();
        }
        for thread in &mut self.threads {
            if let Some(join) = thread.join.take() {
                let _ = join.join();
            }
        }
    }
}

impl MediaStream {
    /// Queues a prompt behind whatever is playing.
    pub fn play(&self, prompt: Arc<Prompt>) {
        let _ = self.send(Command::Play(self.id, prompt));
    }

    /// Stops the current prompt and drops the queue (barge-in).
    pub fn stop_prompts(&self) {
        let _ = self.send(Command::StopPrompts(self.id));
    }

    /// Takes new offer/answer results.
    pub fn update(&self, negotiated: Negotiated) {
        let _ = self.send(Command::Update(self.id, negotiated));
    }

    fn send(&self, command: Command) -> io::Result<()> {
        self.commands
            .send(command)
            .map_err(|_| io::Error::other("the media thread has stopped"))?;
        self.waker.wake()
    }
}

impl Drop for MediaStream {
    fn drop(&mut self) {
        let _ = self.send(Command::Close(self.id));
    }
}

/// One stream on a media thread.
struct Stream {
    /// The call's socket, registered in the thread's epoll set.
    rtp: RtpSocket,

    /// Player, sender and detectors.
    path: MediaPath,

    /// Events to the call task.
    events: mpsc::UnboundedSender<MediaEvent>,

    /// When the stream opened, for the maximum call duration.
    started: Instant,

    /// The wheel slot the stream sends in.
    slot: usize,

    /// Whether [`MediaEvent::Expired`] was sent, so that it is sent once.
    expired: bool,
}

/// The state a media thread owns.
struct MediaThread {
    /// The epoll set of the thread's sockets and its waker.
    poll: Poll,

    /// Commands from the engine and the stream handles.
    commands: std_mpsc::Receiver<Command>,

    /// Streams by token.
    streams: HashMap<usize, Stream>,

    /// The tokens of the streams in each slot of the wheel.
    slots: [Vec<usize>; SLOT_COUNT],

    /// The slot sent at `next_slot_at`.
    next_slot: usize,

    /// When the next slot is due; re-anchored when the thread was idle.
    next_slot_at: Instant,

    /// Streams whose socket may still contain datagrams, because reading
    /// stopped at [`MAX_READS_PER_EVENT`].
    unread: Vec<usize>,

    /// Set when the command channel closed: no new streams will come.
    closing: bool,
}

impl MediaThread {
    fn new(poll: Poll, commands: std_mpsc::Receiver<Command>) -> MediaThread {
        MediaThread {
            poll,
            commands,
            streams: HashMap::new(),
            slots: Default::default(),
            next_slot: 0,
            next_slot_at: Instant::now(),
            unread: Vec::new(),
            closing: false,
        }
    }

    /// Runs until the engine is dropped and every stream has closed.
    fn run(mut self) {
        let mut events = Events::with_capacity(EVENT_CAPACITY);
        let mut buffer = [0u8; RTP_BUFFER_BYTES];
        let mut packet = [0u8; RTP_BUFFER_BYTES];

        loop {
            let timeout = if self.streams.is_empty() {
                None
            } else {
                // Sleep through to the next slot instead of waking for each
                // datagram, then take everything that arrived meanwhile
                // from one epoll_wait that does not block. A key press waits
                // at most one slot, and the wake-ups stay at one per slot
                // whatever the packet rate.
                let wait = self.next_slot_at.saturating_duration_since(Instant::now());
                if !wait.is_zero() {
                    std::thread::sleep(wait);
                }
                Some(Duration::ZERO)
            };
            if let Err(error) = self.poll.poll(&mut events, timeout) {
                if error.kind() != io::ErrorKind::Interrupted {
                    tracing::error!(%error, "media thread cannot wait for its sockets; stopping");
                    return;
                }
            }

            let now = Instant::now();
            for event in &events {
                let Token(id) = event.token();
                if event.token() != WAKER {
                    self.read(id, now, &mut buffer);
                }
            }
            for id in std::mem::take(&mut self.unread) {
                self.read(id, now, &mut buffer);
            }

            self.take_commands(now);
            if self.closing && self.streams.is_empty() {
                return;
            }

            self.send_due_slots(Instant::now(), &mut packet);
        }
    }

    /// Applies every queued command.
    fn take_commands(&mut self, now: Instant) {
        loop {
            match self.commands.try_recv() {
                Ok(command) => self.apply(command, now),
                Err(std_mpsc::TryRecvError::Empty) => return,
                Err(std_mpsc::TryRecvError::Disconnected) => {
                    self.closing = true;
                    return;
                }
            }
        }
    }

    fn apply(&mut self, command: Command, now: Instant) {
        match command {
            Command::Open {
                id,
                rtp,
                negotiated,
                events,
            } => self.open(id, rtp, negotiated, events, now),
            Command::Play(id, prompt) => {
                if let Some(stream) = self.streams.get_mut(&id) {
                    stream.path.player.enqueue(prompt);
                }
            }
            Command::StopPrompts(id) => {
                if let Some(stream) = self.streams.get_mut(&id) {
                    stream.path.player.stop();
                }
            }
            Command::Update(id, negotiated) => {
                if let Some(stream) = self.streams.get_mut(&id) {
                    stream.path.update(negotiated, now);
                }
            }
            Command::Close(id) => self.close(id),
        }
    }

    fn open(
        &mut self,
        id: usize,
        rtp: RtpSocket,
        negotiated: Option<Negotiated>,
        events: mpsc::UnboundedSender<MediaEvent>,
        now: Instant,
    ) {
        let path = match MediaPath::new(negotiated, now) {
            Ok(path) => path,
            Err(error) => {
                tracing::error!(%error, "cannot start RTP for a call");
                let _ = events.send(MediaEvent::Expired("RTP could not start"));
                return;
            }
        };
        let fd = rtp.socket.as_raw_fd();
        if let Err(error) =
            self.poll
                .registry()
                .register(&mut SourceFd(&fd), Token(id), Interest::READABLE)
        {
            tracing::error!(%error, "cannot watch an RTP socket");
            let _ = events.send(MediaEvent::Expired("RTP socket could not be watched"));
            return;
        }

        // The least used slot, so that each millisecond sends about as
        // many frames as the others.
        let slot = (0..SLOT_COUNT)
            .min_by_key(|&slot| self.slots.get(slot).map_or(usize::MAX, Vec::len))
            .unwrap_or(0);
        if let Some(members) = self.slots.get_mut(slot) {
            members.push(id);
        }
        if self.streams.is_empty() {
            self.next_slot_at = now;
        }
        self.streams.insert(
            id,
            Stream {
                rtp,
                path,
                events,
                started: now,
                slot,
                expired: false,
            },
        );
        // Datagrams may have arrived before the socket was registered; an
        // edge-triggered epoll set would not report them.
        self.unread.push(id);
    }

    fn close(&mut self, id: usize) {
        let Some(stream) = self.streams.remove(&id) else {
            return;
        };

        let fd = stream.rtp.socket.as_raw_fd();
        let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
        if let Some(members) = self.slots.get_mut(stream.slot) {
            members.retain(|member| *member != id);
        }
    }

    /// Reads the datagrams queued on one stream's socket and reports key presses.
    fn read(&mut self, id: usize, now: Instant, buffer: &mut [u8]) {
        let Some(stream) = self.streams.get_mut(&id) else {
            return;
        };

        for _ in 0..MAX_READS_PER_EVENT {
            match stream.rtp.socket.recv_from(buffer) {
                Ok((length, source)) => {
                    let bytes = buffer.get(..length).unwrap_or_default();
                    if let Some((source, event)) = stream.path.receive(bytes, source, now) {
                        let _ = stream.events.send(MediaEvent::Digit { source, event });
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) => tracing::trace!(%error, "RTP receive failed"),
            }
        }
        self.unread.push(id);
    }

    /// Sends the frames of every slot that is due, catching up on slots
    /// missed while the thread was busy.
    fn send_due_slots(&mut self, now: Instant, packet: &mut [u8]) {
        if self.streams.is_empty() {
            return;
        }
        if now.saturating_duration_since(self.next_slot_at) > MAX_LAG {
            tracing::warn!(
                lag_ms = now.saturating_duration_since(self.next_slot_at).as_millis(),
                streams = self.streams.len(),
                "media thread fell behind; skipping frames"
            );
            self.next_slot_at = now;
        }

        while self.next_slot_at <= now {
            let slot = self.next_slot;
            self.next_slot = (slot + 1) % SLOT_COUNT;
            self.next_slot_at += SLOT_WIDTH;

            let Some(members) = self.slots.get(slot) else {
                continue;
            };
            for id in members {
                if let Some(stream) = self.streams.get_mut(id) {
                    send_frame(stream, now, packet);
                }
            }
        }
    }
}

/// Sends one stream's next frame and reports what the flow must know.
fn send_frame(stream: &mut Stream, now: Instant, packet: &mut [u8]) {
    if !stream.expired {
        if let Some(reason) = stream.path.expired(now, stream.started) {
            stream.expired = true;
            let _ = stream.events.send(MediaEvent::Expired(reason));
        }
    }

    let Some((destination, length, drained)) = stream.path.next_packet(packet) else {
        return;
    };
    if let Err(error) = stream
        .rtp
        .socket
        .send_to(packet.get(..length).unwrap_or_default(), destination)
    {
        tracing::trace!(%error, "RTP send failed");
    }
    if drained {
        let _ = stream.events.send(MediaEvent::PromptsFinished);
    }
}

/// The media of one call without its socket: what is played, and where
/// key presses come from. Time goes in as a parameter.
struct MediaPath {
    /// Codec, payload types and remote address; `None` until known (late
    /// offer), and then nothing is sent.
    negotiated: Option<Negotiated>,

    /// Prompt queue, played one frame per slot.
    player: Player,

    /// Sequence number, timestamp and SSRC of what we send.
    sender: RtpSender,

    /// Whether frame periods passed without a packet (on hold), so that
    /// the next packet carries the marker bit (RFC 3551 §4.1).
    paused: bool,

    /// RFC 4733 receiver on the negotiated telephone-event payload type.
    telephone_events: Option<Rfc4733Receiver>,

    /// Goertzel detector, run on received audio only when the offer had no
    /// telephone-event.
    inband: Option<InbandDetector>,

    /// When the last RTP packet from the caller arrived, or when media
    /// became known; a call silent for longer than
    /// [`RTP_INACTIVITY_TIMEOUT`] is ended.
    last_received: Instant,
}

impl MediaPath {
    fn new(negotiated: Option<Negotiated>, now: Instant) -> Result<MediaPath, RtpError> {
        let codec = negotiated
            .as_ref()
            .map_or(crate::media::g711::Codec::Pcma, |negotiated| {
                negotiated.codec
            });
        let mut media = MediaPath {
            negotiated: None,
            player: Player::new(codec),
            sender: RtpSender::new()?,
            paused: false,
            telephone_events: None,
            inband: None,
            last_received: now,
        };
        if let Some(negotiated) = negotiated {
            media.apply(negotiated, now);
        }
        Ok(media)
    }

    /// Takes new offer/answer results: after a late offer or a re-INVITE.
    fn update(&mut self, negotiated: Negotiated, now: Instant) {
        let codec_changed = self
            .negotiated
            .as_ref()
            .is_some_and(|current| current.codec != negotiated.codec);
        if codec_changed {
            // The flow waits for the queue to drain, so the queue must go
            // on in the new codec rather than be dropped.
            self.player.set_codec(negotiated.codec);
        }
        self.apply(negotiated, now);
    }

    fn apply(&mut self, negotiated: Negotiated, now: Instant) {
        let same_event_type = self
            .telephone_events
            .as_ref()
            .zip(negotiated.telephone_event_payload_type)
            .is_some_and(|(receiver, payload_type)| receiver.payload_type() == payload_type);
        if !same_event_type {
            self.telephone_events = negotiated
                .telephone_event_payload_type
                .map(Rfc4733Receiver::new);
        }

        if negotiated.needs_inband_dtmf() {
            self.inband.get_or_insert_with(InbandDetector::new);
        } else {
            self.inband = None;
        }

        self.negotiated = Some(negotiated);
        self.last_received = now;
    }

    /// Returns why the call must end now, if it must: it lasted too long,
    /// or media is flowing but the caller sent nothing for too long.
    fn expired(&self, now: Instant, started: Instant) -> Option<&'static str> {
        if now.duration_since(started) >= MAX_CALL_DURATION {
            return Some("maximum call duration reached");
        }

        let listening = self
            .negotiated
            .as_ref()
            .is_some_and(|negotiated| !negotiated.on_hold);
        if listening && now.duration_since(self.last_received) >= RTP_INACTIVITY_TIMEOUT {
            return Some("no RTP from the caller");
        }
        None
    }

    /// Writes the next frame into `packet`; returns where to send it, its
    /// length, and whether the prompt queue just drained. Returns `None`
    /// while there is no media or the caller put the call on hold (then the
    /// prompt waits where it was).
    fn next_packet(&mut self, packet: &mut [u8]) -> Option<(SocketAddr, usize, bool)> {
        let negotiated = self.negotiated.as_ref()?;
        if negotiated.on_hold {
            self.sender.skip(SAMPLES_PER_FRAME);
            self.paused = true;
            return None;
        }

        let (frame, drained) = match self.player.next_frame() {
            PlayerOutput::Audio(frame) => (frame, false),
            PlayerOutput::Silence(frame) => (frame, false),
            PlayerOutput::Drained(frame) => (frame, true),
        };
        let marker = std::mem::take(&mut self.paused);
        let length = self
            .sender
            .write_packet(negotiated.audio_payload_type, frame, marker, packet);
        Some((negotiated.remote_rtp, length, drained))
    }

    /// Handles one received RTP packet; returns a key press when a
    /// detector finds one.
    fn receive(
        &mut self,
        bytes: &[u8],
        source: SocketAddr,
        now: Instant,
    ) -> Option<(DigitSource, DtmfEvent)> {
        let negotiated = self.negotiated.as_ref()?;
        // NOTE: only packets from the address in the SDP are taken; callers
        // behind NAT without an SBC would need symmetric-RTP latching.
        if source.ip() != negotiated.remote_rtp.ip() {
            return None;
        }
        let packet = RtpPacket::parse(bytes).ok()?;
        self.last_received = now;

        if Some(packet.payload_type) == negotiated.telephone_event_payload_type {
            let receiver = self.telephone_events.as_mut()?;
            receiver
                .handle_packet(&packet, now)
                .map(|event| (DigitSource::Rfc4733, event))
        } else if packet.payload_type == negotiated.audio_payload_type {
            let codec = negotiated.codec;
            let detector = self.inband.as_mut()?;
            detector
                .push_payload(codec, packet.payload, now)
                .map(|event| (DigitSource::Inband, event))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::prompts::Language;
    use crate::runtime::ports::RtpPorts;
    use std::net::{IpAddr, Ipv4Addr, UdpSocket};

    /// Local media address that the SDP answer in these tests contains.
    const LOCAL_RTP: &str = "127.0.0.1:30000";

    /// Payload type the caller offers for telephone-event.
    const EVENT_PT: u8 = 101;

    /// Offer/answer results for a caller at `remote`.
    fn negotiated(remote: SocketAddr, telephone_event: bool) -> Negotiated {
        let formats = if telephone_event { "8 101" } else { "8" };
        let mut offer = format!(
            "v=0\r\no=caller 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
             m=audio {port} RTP/AVP {formats}\r\na=rtpmap:8 PCMA/8000\r\n",
            ip = remote.ip(),
            port = remote.port(),
        );
        if telephone_event {
            offer.push_str("a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n");
        }
        crate::sip::sdp::answer_offer(offer.as_bytes(), LOCAL_RTP.parse().unwrap(), 1)
            .expect("a valid offer")
    }

    /// Builds a prompt of `frames` 20 ms frames of a quiet tone.
    fn prompt(frames: usize) -> Arc<Prompt> {
        let samples: Vec<i16> = (0..frames * 160)
            .map(|n| if n % 16 < 8 { 1000 } else { -1000 })
            .collect();
        Arc::new(Prompt::from_samples("test", Language::Nl, &samples))
    }

    /// Builds an RFC 4733 packet for key `code`. Every packet of one key press
    /// carries the same RTP timestamp, derived here from the sequence
    /// number of its first packet.
    fn event_packet(sequence: u16, code: u8, end: bool, duration: u16) -> Vec<u8> {
        let first = if end { sequence - 1 } else { sequence };
        let timestamp = u32::from(first) * 1600;
        let mut packet = vec![0x80, EVENT_PT, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78];
        packet[2..4].copy_from_slice(&sequence.to_be_bytes());
        packet[4..8].copy_from_slice(&timestamp.to_be_bytes());
        packet.extend_from_slice(&[code, if end { 0x80 | 10 } else { 10 }]);
        packet.extend_from_slice(&duration.to_be_bytes());
        packet
    }

    fn caller() -> SocketAddr {
        "127.0.0.1:4000".parse().unwrap()
    }

    #[test]
    fn path_waits_for_media() {
        let now = Instant::now();
        let mut path = MediaPath::new(None, now).unwrap();
        let mut packet = [0u8; RTP_BUFFER_BYTES];

        assert_eq!(path.next_packet(&mut packet), None);

        path.update(negotiated(caller(), true), now);
        let (destination, length, _) = path.next_packet(&mut packet).expect("media is known");
        assert_eq!(destination, caller());
        assert_eq!(length, 12 + 160, "an RTP header and 20 ms of G.711");
    }

    #[test]
    fn path_pauses_prompt_on_hold() {
        let now = Instant::now();
        let mut path = MediaPath::new(Some(negotiated(caller(), true)), now).unwrap();
        let mut packet = [0u8; RTP_BUFFER_BYTES];
        path.player.enqueue(prompt(3));
        assert!(path.next_packet(&mut packet).is_some());

        let mut on_hold = negotiated(caller(), true);
        on_hold.on_hold = true;
        path.update(on_hold, now);
        assert_eq!(path.next_packet(&mut packet), None);
        assert_eq!(path.player.queued_prompts(), 1);

        path.update(negotiated(caller(), true), now);
        let drained: Vec<bool> = (0..3)
            .filter_map(|_| path.next_packet(&mut packet))
            .map(|(_, _, drained)| drained)
            .collect();
        assert_eq!(
            drained,
            vec![false, false, true],
            "two frames left, then drained"
        );
    }

    #[test]
    fn path_marks_resume_after_hold() {
        let now = Instant::now();
        let mut path = MediaPath::new(Some(negotiated(caller(), true)), now).unwrap();
        let mut buffer = [0u8; RTP_BUFFER_BYTES];
        let (_, length, _) = path.next_packet(&mut buffer).unwrap();
        let before = RtpPacket::parse(&buffer[..length]).unwrap();
        let (before_timestamp, before_sequence) = (before.timestamp, before.sequence_number);

        let mut on_hold = negotiated(caller(), true);
        on_hold.on_hold = true;
        path.update(on_hold, now);
        for _ in 0..50 {
            assert_eq!(path.next_packet(&mut buffer), None);
        }
        path.update(negotiated(caller(), true), now);
        let (_, length, _) = path.next_packet(&mut buffer).unwrap();
        let after = RtpPacket::parse(&buffer[..length]).unwrap();

        assert_eq!(after.sequence_number, before_sequence.wrapping_add(1));
        assert_eq!(
            after.timestamp,
            before_timestamp.wrapping_add(51 * SAMPLES_PER_FRAME),
            "the timestamp follows the clock through one second of hold"
        );
        assert!(after.marker, "the first packet after the gap is marked");
        let (_, length, _) = path.next_packet(&mut buffer).unwrap();
        assert!(!RtpPacket::parse(&buffer[..length]).unwrap().marker);
    }

    #[test]
    fn path_keeps_prompt_on_codec_change() {
        let now = Instant::now();
        let mut path = MediaPath::new(Some(negotiated(caller(), true)), now).unwrap();
        let mut packet = [0u8; RTP_BUFFER_BYTES];
        path.player.enqueue(prompt(3));
        assert!(path.next_packet(&mut packet).is_some());

        let mut pcmu = negotiated(caller(), true);
        pcmu.codec = crate::media::g711::Codec::Pcmu;
        pcmu.audio_payload_type = 0;
        path.update(pcmu, now);

        let drained: Vec<bool> = (0..3)
            .filter_map(|_| path.next_packet(&mut packet))
            .map(|(_, _, drained)| drained)
            .collect();
        assert_eq!(
            drained,
            vec![false, false, true],
            "the prompt plays on, then drains"
        );
        assert_eq!(packet[1] & 0x7f, 0, "sent as PCMU");
    }

    #[test]
    fn path_expires_silent_caller() {
        let now = Instant::now();
        let path = MediaPath::new(Some(negotiated(caller(), true)), now).unwrap();

        assert_eq!(path.expired(now + Duration::from_secs(59), now), None);
        assert_eq!(
            path.expired(now + RTP_INACTIVITY_TIMEOUT, now),
            Some("no RTP from the caller")
        );
    }

    #[test]
    fn path_expires_held_call_late() {
        let now = Instant::now();
        let mut on_hold = negotiated(caller(), true);
        on_hold.on_hold = true;
        let path = MediaPath::new(Some(on_hold), now).unwrap();

        assert_eq!(path.expired(now + Duration::from_secs(600), now), None);
        assert_eq!(
            path.expired(now + MAX_CALL_DURATION, now),
            Some("maximum call duration reached")
        );
    }

    #[test]
    fn path_ignores_other_addresses() {
        let now = Instant::now();
        let mut path = MediaPath::new(Some(negotiated(caller(), true)), now).unwrap();
        let stranger: SocketAddr = "127.0.0.2:4000".parse().unwrap();
        let later = now + Duration::from_secs(30);

        let press = path.receive(&event_packet(1, 5, false, 160), stranger, later);

        assert_eq!(press, None);
        assert!(
            path.expired(now + RTP_INACTIVITY_TIMEOUT, now).is_some(),
            "a stranger's packet does not keep the call alive"
        );
    }

    #[test]
    fn path_reports_telephone_event() {
        let now = Instant::now();
        let mut path = MediaPath::new(Some(negotiated(caller(), true)), now).unwrap();

        let press = path.receive(&event_packet(1, 5, false, 160), caller(), now);
        let repeat = path.receive(&event_packet(2, 5, true, 320), caller(), now);

        let (source, event) = press.expect("the first packet starts the key press");
        assert_eq!(source, DigitSource::Rfc4733);
        assert_eq!(event.digit.as_char(), '5');
        assert_eq!(repeat, None, "the end packet is the same press");
    }

    /// Starts an engine and opens one stream towards a loopback peer.
    fn open_stream(
        engine: &MediaEngine,
        pool: &RtpPorts,
        peer: &UdpSocket,
    ) -> (MediaStream, u16, mpsc::UnboundedReceiver<MediaEvent>) {
        let rtp = pool.bind().expect("a free RTP port");
        let port = rtp.port();
        let (events_tx, events) = mpsc::unbounded_channel();
        let remote = peer.local_addr().unwrap();
        let stream = engine
            .open(rtp, Some(negotiated(remote, true)), events_tx)
            .expect("the media thread runs");
        (stream, port, events)
    }

    /// Returns a port range that no other test in this process uses.
    fn pool(offset: u16) -> RtpPorts {
        let base = 42_000 + (std::process::id() % 500) as u16 * 16 + offset * 4;
        RtpPorts::new(IpAddr::V4(Ipv4Addr::LOCALHOST), base, base + 3)
    }

    fn loopback_peer() -> UdpSocket {
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        peer
    }

    async fn next_event(events: &mut mpsc::UnboundedReceiver<MediaEvent>) -> MediaEvent {
        tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .expect("an event within 5 s")
            .expect("the stream is open")
    }

    #[tokio::test]
    async fn engine_plays_prompt_in_sequence() {
        let engine = MediaEngine::start(1).unwrap();
        let pool = pool(0);
        let peer = loopback_peer();
        let (stream, port, mut events) = open_stream(&engine, &pool, &peer);

        stream.play(prompt(5));

        let mut sequence_numbers = Vec::new();
        let mut buffer = [0u8; RTP_BUFFER_BYTES];
        while sequence_numbers.len() < 8 {
            let (length, from) = peer.recv_from(&mut buffer).expect("a frame");
            assert_eq!(from.port(), port, "sent from the stream's own port");
            let packet = RtpPacket::parse(buffer.get(..length).unwrap()).expect("RTP");
            assert_eq!(packet.payload.len(), 160);
            sequence_numbers.push(packet.sequence_number);
        }
        for pair in sequence_numbers.windows(2) {
            assert_eq!(pair[1], pair[0].wrapping_add(1), "{sequence_numbers:?}");
        }
        assert_eq!(next_event(&mut events).await, MediaEvent::PromptsFinished);
    }

    #[tokio::test]
    async fn engine_reports_key_presses() {
        let engine = MediaEngine::start(1).unwrap();
        let pool = pool(1);
        let peer = loopback_peer();
        let (_stream, port, mut events) = open_stream(&engine, &pool, &peer);
        let target = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);

        peer.send_to(&event_packet(1, 9, false, 160), target)
            .unwrap();
        peer.send_to(&event_packet(2, 9, true, 320), target)
            .unwrap();
        peer.send_to(&event_packet(3, 11, false, 160), target)
            .unwrap();

        let mut keys = Vec::new();
        while keys.len() < 2 {
            if let MediaEvent::Digit { source, event } = next_event(&mut events).await {
                assert_eq!(source, DigitSource::Rfc4733);
                keys.push(event.digit.as_char());
            }
        }
        assert_eq!(keys, vec!['9', '#']);
    }

    #[tokio::test]
    async fn engine_frees_port_on_drop() {
        let engine = MediaEngine::start(2).unwrap();
        let pool = pool(2);
        let peer = loopback_peer();
        let (first, first_port, _first_events) = open_stream(&engine, &pool, &peer);
        let (_second, _, _second_events) = open_stream(&engine, &pool, &peer);
        assert!(pool.bind().is_err(), "both even ports are taken");

        drop(first);

        let mut freed = None;
        for _ in 0..100 {
            if let Ok(rtp) = pool.bind() {
                freed = Some(rtp.port());
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(freed, Some(first_port));
    }

    #[test]
    fn engine_spreads_streams_over_slots() {
        let poll = Poll::new().unwrap();
        let (_commands, receiver) = std_mpsc::channel();
        let mut thread = MediaThread::new(poll, receiver);
        let pool = RtpPorts::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0, 0);
        let now = Instant::now();

        for id in 0..SLOT_COUNT * 2 + 1 {
            let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
            socket.set_nonblocking(true).unwrap();
            let rtp = RtpSocket::for_tests(socket, &pool);
            let (events, _) = mpsc::unbounded_channel();
            thread.open(id, rtp, Some(negotiated(caller(), true)), events, now);
        }

        let sizes: Vec<usize> = thread.slots.iter().map(Vec::len).collect();
        assert_eq!(sizes.iter().sum::<usize>(), SLOT_COUNT * 2 + 1);
        assert_eq!(sizes.iter().max(), Some(&3));
        assert_eq!(sizes.iter().min(), Some(&2));

        thread.close(0);
        assert_eq!(
            thread.slots.iter().map(Vec::len).sum::<usize>(),
            SLOT_COUNT * 2
        );
    }
}
