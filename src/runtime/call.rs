//! The task that owns one call: its RTP socket, prompt player, digit
//! receiver and call flow.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;

use crate::flow::{
    Action, CallFlow, ContractCheck, ContractDigits, Input, State, UnverifiedReason, Verification,
};
use crate::media::dtmf::rfc4733::Rfc4733Receiver;
use crate::media::player::{Player, PlayerOutput};
use crate::media::rtp::{RtpPacket, RtpSender};
use crate::sip::sdp::Negotiated;
use crate::sip::{escape_uri_header_value, CallHandle};
use crate::verify::caller_id::CallerNumber;
use crate::verify::keyed_hash::HashPurpose;
use crate::verify::token::{
    handle_for_jti, random_jti, Claims, TokenError, ACR_BASIC, ACR_UNVERIFIED,
};

use super::ports::RtpSocket;
use super::Services;

/// Interval between two audio frames: 20 ms of 8 kHz G.711 is 160 bytes,
/// the packetisation every SIP peer accepts (RFC 3551 §4.5).
const FRAME_INTERVAL: Duration = Duration::from_millis(20);

/// Largest RTP packet we read. G.711 at 60 ms is 480 bytes plus header;
/// anything longer is not audio we negotiated.
const RTP_BUFFER_BYTES: usize = 1500;

/// How long a contract lookup may take before the flow treats the store as
/// unavailable and fails closed.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

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
    } = setup;

    let mut flow = CallFlow::new(services.flow_config.clone());
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
    let (lookups_tx, mut lookups_rx) = mpsc::unbounded_channel::<ContractCheck>();

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
                        tracing::info!(%call_id, failed_attempts = flow.failed_attempts(), "call ended");
                        return;
                    }
                }
            }
            Some(check) = lookups_rx.recv() => {
                flow.handle_input(Input::ContractChecked(check), Instant::now());
            }
            () = flow_timer => flow.handle_timeout(Instant::now()),
        }

        while let Some(action) = flow.poll_action() {
            match action {
                Action::Play(prompt) => {
                    player.enqueue(Arc::clone(services.prompts.get(services.language, prompt)));
                }
                Action::StopPrompts => player.stop(),
                Action::CheckContract(entry) => {
                    let services = Arc::clone(&services);
                    let caller = caller.clone();
                    let lookups_tx = lookups_tx.clone();
                    tokio::spawn(async move {
                        let check = check_contract(&services, &entry, &caller).await;
                        let _ = lookups_tx.send(check);
                    });
                }
                Action::Transfer(verification) => {
                    match transfer_command(&services, &call_id, &caller, &verification).await {
                        Ok(command) => {
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

/// Looks the contract number up and checks whether the calling number is
/// registered to the same customer. Store errors and timeouts fail closed.
async fn check_contract(
    services: &Services,
    entry: &ContractDigits,
    caller: &CallerNumber,
) -> ContractCheck {
    let contract = services
        .hasher
        .hash(HashPurpose::ContractNumber, entry.expose());

    let lookup = tokio::time::timeout(LOOKUP_TIMEOUT, async {
        let Some(customer) = services.store.customer_by_contract(&contract).await? else {
            return Ok(ContractCheck::NoMatch);
        };

        let caller_id_match = match caller {
            CallerNumber::E164(number) => {
                let phone = services.hasher.hash(HashPurpose::PhoneNumber, number);
                services
                    .store
                    .customers_by_phone(&phone)
                    .await?
                    .contains(&customer.customer_id)
            }
            CallerNumber::Withheld | CallerNumber::Unavailable => false,
        };

        Ok::<_, crate::store::StoreError>(ContractCheck::Match {
            customer_id: customer.customer_id,
            caller_id_match,
        })
    })
    .await;

    match lookup {
        Ok(Ok(check)) => check,
        Ok(Err(error)) => {
            tracing::error!(%error, "contract lookup failed; failing closed");
            ContractCheck::StoreUnavailable
        }
        Err(_) => {
            tracing::error!(
                timeout_ms = LOOKUP_TIMEOUT.as_millis() as u64,
                "contract lookup timed out; failing closed"
            );
            ContractCheck::StoreUnavailable
        }
    }
}

/// Issues the verification token and builds the REFER for the agent queue.
async fn transfer_command(
    services: &Services,
    call_id: &str,
    caller: &CallerNumber,
    verification: &Verification,
) -> Result<CallCommand, TokenError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or_default();
    let token_config = &services.config.token;

    let (sub, acr, amr, caller_id_match) = match verification {
        Verification::Basic {
            customer_id,
            caller_id_match,
        } => (
            Some(customer_id.clone()),
            ACR_BASIC,
            vec!["kba".to_owned()],
            *caller_id_match,
        ),
        Verification::Unverified { reason } => {
            tracing::info!(
                call_id,
                reason = match reason {
                    UnverifiedReason::AttemptsExhausted => "attempts exhausted",
                    UnverifiedReason::StoreUnavailable => "store unavailable",
                },
                "caller not verified"
            );
            (None, ACR_UNVERIFIED, Vec::new(), false)
        }
    };

    let claims = Claims {
        iss: token_config.issuer.clone(),
        aud: token_config.audience.clone(),
        sub,
        iat: now,
        exp: now + token_config.lifetime.as_secs(),
        jti: random_jti()?,
        call_id: call_id.to_owned(),
        acr: acr.to_owned(),
        amr,
        caller_id_match,
    };
    let token = services.signer.sign(&claims);

    if let Err(error) = services.store.record_token(&claims.jti, claims.exp).await {
        // The REFER still goes out so the caller reaches an agent, but the
        // token will not introspect as active.
        tracing::error!(call_id, %error, "recording the token id failed");
    }
    tracing::info!(
        call_id,
        acr = claims.acr,
        caller_id_match,
        caller = %super::sip_task::describe_caller(caller),
        "transferring to the agent queue"
    );

    let transfer = &services.config.transfer;
    let separator = if transfer.agent_queue_uri.contains('?') {
        '&'
    } else {
        '?'
    };
    let refer_to = format!(
        "{}{}X-Verification-Token={}&User-to-User={}{}",
        transfer.agent_queue_uri,
        separator,
        escape_uri_header_value(&token),
        handle_for_jti(&claims.jti),
        escape_uri_header_value(";encoding=hex"),
    );

    Ok(CallCommand::Transfer {
        refer_to,
        referred_by: transfer.referred_by.clone(),
    })
}
