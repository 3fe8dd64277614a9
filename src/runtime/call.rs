//! The task that owns one call: its RTP socket, prompt player, digit
//! receiver and call flow.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;

use crate::flow::{Action, CallFlow, CallPlan, CodeDelivery, EntryCheck, Input, Prompt, State};
use crate::media::prompts::Language;
use crate::store::CustomerRecord;
use std::net::SocketAddr;

use crate::media::dtmf::inband::InbandDetector;
use crate::media::dtmf::info::parse_info;
use crate::media::dtmf::merge::{DigitMerger, DigitSource};
use crate::media::dtmf::rfc4733::Rfc4733Receiver;
use crate::media::player::{Player, PlayerOutput};
use crate::media::rtp::{RtpPacket, RtpSender};
use crate::sip::sdp::Negotiated;
use crate::sip::CallHandle;
use crate::verify::caller_id::CallerNumber;

use super::steps::{self, CheckContext};

use super::ports::RtpSocket;
use super::Services;

/// Interval between two audio frames: 20 ms of 8 kHz G.711 is 160 bytes,
/// the packetisation every SIP peer accepts (RFC 3551 §4.5).
const FRAME_INTERVAL: Duration = Duration::from_millis(20);

/// Largest RTP packet we read. G.711 at 60 ms is 480 bytes plus header;
/// anything longer is not audio we negotiated.
const RTP_BUFFER_BYTES: usize = 1500;

/// Dialog events the SIP task sends to a call task.
#[derive(Debug)]
pub enum CallNotice {
    /// The ACK for our 200 arrived: the caller hears us from now on. With a
    /// late offer it brings the media from the answer in the ACK.
    Confirmed {
        /// Media negotiated from the ACK, when the INVITE had no offer.
        media: Option<Negotiated>,
    },
    /// A re-INVITE changed the media: hold, resume, or a new address.
    MediaChanged(Negotiated),
    /// An in-dialog INFO arrived (answered 200); it may relay a key press.
    Info {
        /// Its Content-Type.
        content_type: Option<String>,
        /// Its body. Never log it: it may carry a digit.
        body: Vec<u8>,
    },
    /// The dialog is over (BYE, CANCEL, ACK timeout or our own BYE).
    Ended,
    /// The REFER was answered 2xx.
    TransferAccepted,
    /// The REFER failed with this status.
    TransferRejected {
        /// Final status of the REFER, or 408 when it timed out.
        status: u16,
    },
    /// A NOTIFY reported the progress of the transfer.
    TransferProgress {
        /// Status code of the sipfrag.
        status: u16,
        /// Whether the subscription ended with this NOTIFY.
        final_: bool,
    },
}

/// Commands a call task sends to the SIP task.
#[derive(Debug)]
pub enum CallCommand {
    /// Send REFER within the dialog.
    Transfer {
        /// Full Refer-To URI, embedded headers included.
        refer_to: String,
        /// Referred-By value (RFC 3892).
        referred_by: String,
    },
    /// End the dialog with BYE.
    HangUp,
}

/// Everything a call task needs, handed over by the SIP task.
pub struct CallSetup {
    /// The endpoint's key for this dialog.
    pub handle: CallHandle,
    /// SIP Call-ID, for logs and the token.
    pub call_id: String,
    /// The caller's number as far as we can trust it.
    pub caller: CallerNumber,
    /// Codec, payload types and the remote RTP address from offer/answer;
    /// `None` until the ACK answers our offer (late offer).
    pub negotiated: Option<Negotiated>,
    /// The local RTP socket; its port returns to the pool when dropped.
    pub rtp: RtpSocket,
    /// Dialog events from the SIP task.
    pub notices: mpsc::UnboundedReceiver<CallNotice>,
    /// Commands to the SIP task.
    pub commands: mpsc::UnboundedSender<(CallHandle, CallCommand)>,
    /// Shared configuration, prompts, store and keys.
    pub services: Arc<Services>,
    /// Menu and rules of the call's service line.
    pub plan: CallPlan,
    /// The language the caller hears.
    pub language: Language,
}

/// Results of work the call task started on other tasks.
enum StepResult {
    /// An entry was checked; a matched contract number brings the customer.
    Entry(EntryCheck, Option<CustomerRecord>),
    /// A one-time code was sent, or not.
    Code(CodeDelivery),
}

/// Runs the call until its dialog ends.
pub async fn run(setup: CallSetup) {
    let CallSetup {
        handle,
        call_id,
        caller,
        negotiated,
        rtp,
        mut notices,
        commands,
        services,
        plan,
        language,
    } = setup;

    let mut flow = CallFlow::new(services.config.flow.clone(), plan);
    let mut context = CheckContext {
        call_id: call_id.clone(),
        caller,
        customer: None,
    };
    let mut media = match MediaPath::new(negotiated) {
        Ok(media) => media,
        Err(error) => {
            tracing::error!(%call_id, %error, "cannot start RTP for the call; hanging up");
            let _ = commands.send((handle, CallCommand::HangUp));
            return;
        }
    };
    let (steps_tx, mut steps_rx) = mpsc::unbounded_channel::<StepResult>();

    let mut ticker = tokio::time::interval(FRAME_INTERVAL);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut packet = [0u8; RTP_BUFFER_BYTES];
    let mut received = [0u8; RTP_BUFFER_BYTES];
    let mut state = flow.state();
    let started = Instant::now();
    let mut hanging_up = false;

    loop {
        let flow_deadline = flow.poll_timeout();
        let flow_timer = async {
            match flow_deadline {
                Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
                None => std::future::pending().await,
            }
        };

        tokio::select! {
            _ = ticker.tick() => {
                let now = Instant::now();
                if let Some(reason) = media.expired(now, started) {
                    if !hanging_up {
                        tracing::warn!(%call_id, reason, "ending the call");
                        hanging_up = true;
                        flow.handle_input(Input::CallerHungUp, now);
                        let _ = commands.send((handle, CallCommand::HangUp));
                    }
                }
                if let Some((destination, length, drained)) = media.next_packet(&mut packet) {
                    if let Err(error) = rtp
                        .socket
                        .send_to(packet.get(..length).unwrap_or_default(), destination)
                        .await
                    {
                        tracing::trace!(%call_id, %error, "RTP send failed");
                    }
                    if drained {
                        flow.handle_input(Input::PromptsFinished, Instant::now());
                    }
                }
            }
            incoming = rtp.socket.recv_from(&mut received) => {
                if let Ok((length, source)) = incoming {
                    let bytes = received.get(..length).unwrap_or_default();
                    if let Some(digit) = media.receive(bytes, source, Instant::now()) {
                        flow.handle_input(Input::Digit(digit), Instant::now());
                    }
                }
            }
            notice = notices.recv() => {
                let now = Instant::now();
                match notice {
                    Some(CallNotice::Confirmed { media: negotiated }) => {
                        if let Some(negotiated) = negotiated {
                            media.update(&call_id, negotiated);
                        }
                        flow.handle_input(Input::Answered, now);
                    }
                    Some(CallNotice::MediaChanged(negotiated)) => media.update(&call_id, negotiated),
                    Some(CallNotice::Info { content_type, body }) => {
                        if let Some(digit) = media.info(&call_id, content_type.as_deref(), &body, now) {
                            flow.handle_input(Input::Digit(digit), now);
                        }
                    }
                    Some(CallNotice::TransferAccepted) => flow.handle_input(Input::TransferAccepted, now),
                    Some(CallNotice::TransferRejected { status }) => {
                        tracing::info!(%call_id, status, "transfer rejected");
                        flow.handle_input(Input::TransferFailed, now);
                    }
                    Some(CallNotice::TransferProgress { status, final_ }) => {
                        tracing::info!(%call_id, status, final_, "transfer progress");
                        if (200..300).contains(&status) {
                            flow.handle_input(Input::TransferSucceeded, now);
                        } else if final_ || status >= 300 {
                            flow.handle_input(Input::TransferFailed, now);
                        }
                    }
                    Some(CallNotice::Ended) | None => {
                        flow.handle_input(Input::CallerHungUp, now);
                        log_state(&call_id, &mut state, flow.state());
                        tracing::info!(%call_id, "call ended");
                        return;
                    }
                }
            }
            Some(result) = steps_rx.recv() => match result {
                StepResult::Entry(check, customer) => {
                    if customer.is_some() {
                        context.customer = customer;
                    }
                    flow.handle_input(Input::EntryChecked(check), Instant::now());
                }
                StepResult::Code(delivery) => flow.handle_input(Input::CodeSent(delivery), Instant::now()),
            },
            () = flow_timer => flow.handle_timeout(Instant::now()),
        }

        while let Some(action) = flow.poll_action() {
            match action {
                Action::Play(prompt) => match prompt_audio(&services, language, &prompt) {
                    Some(audio) => media.player.enqueue(audio),
                    None => tracing::warn!(%call_id, ?prompt, "prompt file missing; skipped"),
                },
                Action::StopPrompts => media.player.stop(),
                Action::CheckEntry { factor, digits } => {
                    let services = Arc::clone(&services);
                    let context = context.clone();
                    let steps_tx = steps_tx.clone();
                    tokio::spawn(async move {
                        let (check, customer) =
                            steps::check_entry(&services, &context, factor, &digits).await;
                        let _ = steps_tx.send(StepResult::Entry(check, customer));
                    });
                }
                Action::SendCode => {
                    let services = Arc::clone(&services);
                    let context = context.clone();
                    let steps_tx = steps_tx.clone();
                    tokio::spawn(async move {
                        let delivery = steps::send_code(&services, &context, language).await;
                        let _ = steps_tx.send(StepResult::Code(delivery));
                    });
                }
                Action::Transfer(verification) => {
                    match steps::plan_transfer(&services, &call_id, &verification).await {
                        Ok(transfer) => {
                            tracing::info!(
                                %call_id,
                                acr = transfer.claims.acr,
                                request_type = ?verification.request_type,
                                caller_id_match = verification.caller_id_match,
                                caller = %super::sip_task::describe_caller(&context.caller),
                                "transferring to the agent queue"
                            );
                            let record =
                                steps::audit_record(&call_id, &verification, &transfer.claims);
                            services.audit.append(services.store.as_ref(), record).await;
                            let command = CallCommand::Transfer {
                                refer_to: steps::refer_to(&transfer),
                                referred_by: services.config.transfer.referred_by.clone(),
                            };
                            let _ = commands.send((handle, command));
                        }
                        Err(error) => {
                            tracing::error!(%call_id, %error, "issuing the verification token failed");
                            flow.handle_input(Input::TransferFailed, Instant::now());
                        }
                    }
                }
                Action::HangUp => {
                    let _ = commands.send((handle, CallCommand::HangUp));
                }
            }
        }

        log_state(&call_id, &mut state, flow.state());
    }
}

fn log_state(call_id: &str, logged: &mut State, current: State) {
    if *logged != current {
        tracing::info!(
            call_id,
            from = logged.name(),
            to = current.name(),
            "call state changed"
        );
        *logged = current;
    }
}

/// Returns the audio of `prompt` in `language`, or `None` for a named prompt
/// whose file is missing.
fn prompt_audio(
    services: &Services,
    language: Language,
    prompt: &Prompt,
) -> Option<Arc<crate::media::prompts::Prompt>> {
    match prompt {
        Prompt::Fixed(id) => Some(Arc::clone(services.prompts.get(language, *id))),
        Prompt::Named(name) => services.prompts.get_named(language, name).cloned(),
    }
}

/// The media of one call: what is played, and where key presses come from.
/// Key presses from RFC 4733 telephone-events, SIP INFO and in-band tones
/// are merged into one stream, so a press sent two ways counts once.
struct MediaPath {
    /// Codec, payload types and remote address; `None` until known (late
    /// offer), and then nothing is sent.
    negotiated: Option<Negotiated>,
    /// Prompt queue, played one frame per tick.
    player: Player,
    /// Sequence number, timestamp and SSRC of what we send.
    sender: RtpSender,
    /// RFC 4733 receiver on the negotiated telephone-event payload type.
    telephone_events: Option<Rfc4733Receiver>,
    /// Goertzel detector, run on received audio only when the offer had no
    /// telephone-event.
    inband: Option<InbandDetector>,
    /// Merges the three sources into one press each.
    merger: DigitMerger,
    /// When the last RTP packet from the caller arrived, or when media
    /// became known; a call silent for longer than
    /// [`RTP_INACTIVITY_TIMEOUT`] is ended.
    last_received: Instant,
}

/// Longest time without any RTP from the caller (while not on hold) before
/// the call is ended. A phone sends a packet every 20 ms even in silence
/// unless it uses silence suppression, which still sends comfort noise
/// every few seconds, so a minute of nothing means the caller is gone.
const RTP_INACTIVITY_TIMEOUT: Duration = Duration::from_secs(60);

/// Longest call. Verification takes a few minutes at most; this bounds
/// calls that are stuck for any reason, so they free their slot and port.
const MAX_CALL_DURATION: Duration = Duration::from_secs(20 * 60);

impl MediaPath {
    fn new(negotiated: Option<Negotiated>) -> Result<MediaPath, crate::media::rtp::RtpError> {
        let codec = negotiated
            .as_ref()
            .map_or(crate::media::g711::Codec::Pcma, |negotiated| {
                negotiated.codec
            });
        let mut media = MediaPath {
            negotiated: None,
            player: Player::new(codec),
            sender: RtpSender::new()?,
            telephone_events: None,
            inband: None,
            merger: DigitMerger::new(),
            last_received: Instant::now(),
        };
        if let Some(negotiated) = negotiated {
            media.apply(negotiated);
        }
        Ok(media)
    }

    /// Takes new offer/answer results: after a late offer or a re-INVITE.
    fn update(&mut self, call_id: &str, negotiated: Negotiated) {
        tracing::info!(call_id, codec = ?negotiated.codec, on_hold = negotiated.on_hold, remote = %negotiated.remote_rtp, "media updated");
        let codec_changed = self
            .negotiated
            .as_ref()
            .is_some_and(|current| current.codec != negotiated.codec);
        if codec_changed {
            // Frames are per codec, so the queue cannot continue; the flow
            // repeats its question when the caller does not answer.
            self.player = Player::new(negotiated.codec);
        }
        self.apply(negotiated);
    }

    fn apply(&mut self, negotiated: Negotiated) {
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
        self.last_received = Instant::now();
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
    /// while there is no media or the caller holds the call (then the
    /// prompt waits where it was).
    fn next_packet(&mut self, packet: &mut [u8]) -> Option<(SocketAddr, usize, bool)> {
        let negotiated = self.negotiated.as_ref()?;
        if negotiated.on_hold {
            return None;
        }

        let (frame, drained) = match self.player.next_frame() {
            PlayerOutput::Audio(frame) => (frame, false),
            PlayerOutput::Silence(frame) => (frame, false),
            PlayerOutput::Drained(frame) => (frame, true),
        };
        let length = self
            .sender
            .write_packet(negotiated.audio_payload_type, frame, false, packet);
        Some((negotiated.remote_rtp, length, drained))
    }

    /// Handles one received RTP packet; returns a key press, if it ends one.
    fn receive(&mut self, bytes: &[u8], source: SocketAddr, now: Instant) -> Option<char> {
        let negotiated = self.negotiated.as_ref()?;
        // NOTE: only packets from the address in the SDP are taken; callers
        // behind NAT without an SBC would need symmetric-RTP latching.
        if source.ip() != negotiated.remote_rtp.ip() {
            return None;
        }
        let packet = RtpPacket::parse(bytes).ok()?;
        self.last_received = now;

        let event = if Some(packet.payload_type) == negotiated.telephone_event_payload_type {
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
        }?;

        self.merger
            .push(event.0, event.1)
            .map(|event| event.digit.as_char())
    }

    /// Handles an INFO body; returns a key press if it relays one.
    fn info(
        &mut self,
        call_id: &str,
        content_type: Option<&str>,
        body: &[u8],
        now: Instant,
    ) -> Option<char> {
        match parse_info(content_type, body) {
            Ok(Some(digit)) => self
                .merger
                .push(DigitSource::Info, digit.into_event(now))
                .map(|event| event.digit.as_char()),
            Ok(None) => None,
            Err(error) => {
                tracing::info!(call_id, %error, "INFO body ignored");
                None
            }
        }
    }
}
