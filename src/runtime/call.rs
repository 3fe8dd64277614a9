//! The task that owns one call: its flow, its dialog's events and the
//! handle on its media stream.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;

use crate::flow::{Action, CallFlow, CallPlan, CodeDelivery, EntryCheck, Input, Prompt, State};
use crate::media::dtmf::info::parse_info;
use crate::media::dtmf::merge::{DigitMerger, DigitSource};
use crate::media::prompts::Language;
use crate::sip::sdp::Negotiated;
use crate::sip::CallHandle;
use crate::store::CustomerRecord;
use crate::verify::caller_id::CallerNumber;

use super::media_engine::{MediaEvent, MediaStream};
use super::ports::RtpSocket;
use super::steps::{self, CheckContext};
use super::Services;

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
    let (media_tx, mut media_rx) = mpsc::unbounded_channel::<MediaEvent>();
    let media = match services.media.open(rtp, negotiated, media_tx) {
        Ok(media) => media,
        Err(error) => {
            tracing::error!(%call_id, %error, "cannot start RTP for the call; hanging up");
            let _ = commands.send((handle, CallCommand::HangUp));
            return;
        }
    };
    let mut digits = DigitMerger::new();
    let (steps_tx, mut steps_rx) = mpsc::unbounded_channel::<StepResult>();

    // One timer future for the whole call, reset only when the flow's
    // deadline changes, instead of a new one per loop turn.
    let flow_timer = tokio::time::sleep_until(tokio::time::Instant::now());
    tokio::pin!(flow_timer);
    let mut armed: Option<Instant> = None;
    let mut state = flow.state();
    let mut hanging_up = false;

    loop {
        let deadline = flow.poll_timeout();
        if deadline != armed {
            if let Some(deadline) = deadline {
                flow_timer.as_mut().reset(deadline.into());
            }
            armed = deadline;
        }

        tokio::select! {
            Some(event) = media_rx.recv() => match event {
                MediaEvent::Digit { source, event } => {
                    if let Some(event) = digits.push(source, event) {
                        flow.handle_input(Input::Digit(event.digit.as_char()), Instant::now());
                    }
                }
                MediaEvent::PromptsFinished => flow.handle_input(Input::PromptsFinished, Instant::now()),
                MediaEvent::Expired(reason) => {
                    if !hanging_up {
                        tracing::warn!(%call_id, reason, "ending the call");
                        hanging_up = true;
                        flow.handle_input(Input::CallerHungUp, Instant::now());
                        let _ = commands.send((handle, CallCommand::HangUp));
                    }
                }
            },
            notice = notices.recv() => {
                let now = Instant::now();
                match notice {
                    Some(CallNotice::Confirmed { media: negotiated }) => {
                        if let Some(negotiated) = negotiated {
                            update_media(&call_id, &media, negotiated);
                        }
                        flow.handle_input(Input::Answered, now);
                    }
                    Some(CallNotice::MediaChanged(negotiated)) => update_media(&call_id, &media, negotiated),
                    Some(CallNotice::Info { content_type, body }) => {
                        if let Some(digit) = info_digit(&call_id, &mut digits, content_type.as_deref(), &body, now) {
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
            () = &mut flow_timer, if armed.is_some() => {
                armed = None;
                flow.handle_timeout(Instant::now());
            }
        }

        while let Some(action) = flow.poll_action() {
            match action {
                Action::Play(prompt) => match prompt_audio(&services, language, &prompt) {
                    Some(audio) => media.play(audio),
                    None => tracing::warn!(%call_id, ?prompt, "prompt file missing; skipped"),
                },
                Action::StopPrompts => media.stop_prompts(),
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
                            let command = CallCommand::Transfer {
                                refer_to: steps::refer_to(&transfer),
                                referred_by: services.config.transfer.referred_by.clone(),
                            };
                            let _ = commands.send((handle, command));

                            // The audit record is written after the REFER is
                            // out, so the store's latency does not delay the
                            // transfer; a record the store refuses is kept
                            // in the backlog and written later.
                            let record =
                                steps::audit_record(&call_id, &verification, &transfer.claims);
                            let services = Arc::clone(&services);
                            tokio::spawn(async move {
                                services.audit.append(services.store.as_ref(), record).await;
                            });
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

/// Logs new offer/answer results and hands them to the media stream.
fn update_media(call_id: &str, media: &MediaStream, negotiated: Negotiated) {
    tracing::info!(call_id, codec = ?negotiated.codec, on_hold = negotiated.on_hold, remote = %negotiated.remote_rtp, "media updated");
    media.update(negotiated);
}

/// Handles an INFO body; returns a key press if it relays one that the
/// telephone-events or tones have not already brought.
fn info_digit(
    call_id: &str,
    digits: &mut DigitMerger,
    content_type: Option<&str>,
    body: &[u8],
    now: Instant,
) -> Option<char> {
    match parse_info(content_type, body) {
        Ok(Some(digit)) => digits
            .push(DigitSource::Info, digit.into_event(now))
            .map(|event| event.digit.as_char()),
        Ok(None) => None,
        Err(error) => {
            tracing::info!(call_id, %error, "INFO body ignored");
            None
        }
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
