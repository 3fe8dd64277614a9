//! The task that owns one call: its RTP socket, prompt player, digit
//! receiver and call flow.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;

use crate::flow::{Action, CallFlow, CallPlan, CodeDelivery, EntryCheck, Input, Prompt, State};
use crate::media::prompts::Language;
use crate::store::CustomerRecord;
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


/// What the SIP task tells a call task about its dialog.
#[derive(Debug)]
pub enum CallNotice {
    /// The ACK for our 200 arrived: the caller hears us from now on.
    Confirmed,
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

/// What a call task asks of the SIP task.
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
    /// Codec, payload types and the remote RTP address from offer/answer.
    pub negotiated: Negotiated,
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
    let mut player = Player::new(negotiated.codec);
    let mut sender = match RtpSender::new() {
        Ok(sender) => sender,
        Err(error) => {
            tracing::error!(%call_id, %error, "cannot start RTP for the call; hanging up");
            let _ = commands.send((handle, CallCommand::HangUp));
            return;
        }
    };
    let mut digits = negotiated
        .telephone_event_payload_type
        .map(Rfc4733Receiver::new);
    let (steps_tx, mut steps_rx) = mpsc::unbounded_channel::<StepResult>();

    let mut ticker = tokio::time::interval(FRAME_INTERVAL);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut packet = [0u8; RTP_BUFFER_BYTES];
    let mut received = [0u8; RTP_BUFFER_BYTES];
    let mut state = flow.state();

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
                let (frame, drained) = match player.next_frame() {
                    PlayerOutput::Audio(frame) => (frame, false),
                    PlayerOutput::Silence(frame) => (frame, false),
                    PlayerOutput::Drained(frame) => (frame, true),
                };
                let length = sender.write_packet(
                    negotiated.audio_payload_type,
                    frame,
                    false,
                    &mut packet,
                );
                if let Err(error) = rtp
                    .socket
                    .send_to(packet.get(..length).unwrap_or_default(), negotiated.remote_rtp)
                    .await
                {
                    tracing::trace!(%call_id, %error, "RTP send failed");
                }
                if drained {
                    flow.handle_input(Input::PromptsFinished, Instant::now());
                }
            }
            incoming = rtp.socket.recv_from(&mut received) => {
                if let Ok((length, source)) = incoming {
                    // NOTE: only packets from the address in the offer are
                    // taken; callers behind NAT without an SBC would need
                    // symmetric-RTP latching.
                    if source.ip() == negotiated.remote_rtp.ip() {
                        let bytes = received.get(..length).unwrap_or_default();
                        if let (Some(receiver), Ok(parsed)) = (digits.as_mut(), RtpPacket::parse(bytes)) {
                            if let Some(event) = receiver.handle_packet(&parsed, Instant::now()) {
                                flow.handle_input(Input::Digit(event.digit.as_char()), Instant::now());
                            }
                        }
                    }
                }
            }
            notice = notices.recv() => {
                let now = Instant::now();
                match notice {
                    Some(CallNotice::Confirmed) => flow.handle_input(Input::Answered, now),
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
                    Some(audio) => player.enqueue(audio),
                    None => tracing::warn!(%call_id, ?prompt, "prompt file missing; skipped"),
                },
                Action::StopPrompts => player.stop(),
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
                            let record = steps::audit_record(&call_id, &verification, &transfer.claims);
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
