//! The task that owns the sans-I/O [`Endpoint`] and drives the SIP transports.
//!
//! It moves received messages and time into the endpoint, sends what the
//! endpoint queues through [`Transports`], answers new calls, and routes
//! dialog events to the call tasks through channels. Call tasks send their
//! commands back the same way, so the endpoint has exactly one owner and
//! needs no lock.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, watch};
use tokio::time::Sleep;

use crate::flow::CallPlan;
use crate::sip::sdp::{self, Negotiated};
use crate::sip::{CallHandle, Endpoint, EndpointConfig, Event, IncomingCall};
use crate::verify::caller_id::{determine_caller_number, mask_number, to_e164, CallerNumber};

use super::call::{self, CallCommand, CallNotice, CallSetup};
use super::transport::{BoundListeners, Inbound, Transports};
use super::{RtpSocket, Services};

/// Status for a call that cannot get an RTP port, so that a load balancer
/// sends the call to another node.
const STATUS_SERVICE_UNAVAILABLE: u16 = 503;

/// Status for an offer with no codec we can answer (RFC 3261 §21.4.26).
const STATUS_NOT_ACCEPTABLE_HERE: u16 = 488;

/// Runs the SIP side of the service until shutdown is requested and every
/// call has ended.
pub async fn run(
    listeners: BoundListeners,
    services: Arc<Services>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let local_addrs = listeners.local_addrs();
    let Some((_, first_local)) = local_addrs.first().copied() else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "no SIP listener is configured; set at least one UDP, TCP or TLS address",
        ));
    };
    let edge = services.config.sip.edge.clone();
    let (transports, mut inbound) = Transports::start(listeners, &edge);
    let (commands_tx, mut commands_rx) = mpsc::unbounded_channel();
    let (answers_due, mut answers_due_rx) = mpsc::unbounded_channel();
    tracing::info!(listeners = ?local_addrs, "SIP transports started");

    let mut task = SipTask {
        transports,
        endpoint: Endpoint::new(EndpointConfig {
            local_addr: first_local,
            user_agent: services.config.sip.user_agent.clone(),
            edge,
        }),
        calls: HashMap::new(),
        media: HashMap::new(),
        pending_answers: HashMap::new(),
        answers_due,
        commands_tx,
        services,
        draining: false,
    };

    let mut endpoint_timer = DeadlineTimer::new();
    loop {
        endpoint_timer.set(task.endpoint.poll_timeout());

        tokio::select! {
            Some(item) = inbound.recv() => task.receive(item).await,
            Some((call, command)) = commands_rx.recv() => {
                task.apply(call, command);
            }
            Some(call) = answers_due_rx.recv() => task.answer_due(call),
            () = endpoint_timer.wait() => task.endpoint.handle_timeout(Instant::now()),
            changed = shutdown.changed(), if !task.draining => {
                if changed.is_err() || *shutdown.borrow() {
                    tracing::info!(active_calls = task.calls.len(), "draining: new calls get 503");
                    task.draining = true;
                    task.endpoint.set_draining(true);
                }
            }
        }

        task.drain_endpoint().await;

        if task.draining && task.calls.is_empty() {
            let counters = task.endpoint.edge_counters();
            tracing::info!(?counters, "all calls ended; SIP task stopped");
            return Ok(());
        }
    }
}

/// The SIP task's timer for the endpoint's next deadline.
///
/// It keeps one `Sleep` and resets it only when the deadline changes, so a
/// loop turn that leaves the deadline where it was costs no timer-wheel
/// work. A new `Sleep` per turn added and removed a timer-wheel entry on
/// every received message.
struct DeadlineTimer {
    /// The timer, pinned because `Sleep` is `!Unpin`.
    sleep: Pin<Box<Sleep>>,
    /// Deadline that `sleep` is set to. None when there is no deadline, or
    /// when `sleep` has fired and must be reset before it fires again.
    armed: Option<Instant>,
}

impl DeadlineTimer {
    fn new() -> Self {
        DeadlineTimer {
            sleep: Box::pin(tokio::time::sleep_until(tokio::time::Instant::now())),
            armed: None,
        }
    }

    /// Moves the timer to `deadline`, or disables it for None. Returns
    /// whether the `Sleep` was reset, which happens only when the deadline
    /// changed or the timer has fired since the last reset.
    fn set(&mut self, deadline: Option<Instant>) -> bool {
        if deadline == self.armed {
            return false;
        }

        self.armed = deadline;
        match deadline {
            Some(deadline) => {
                self.sleep.as_mut().reset(deadline.into());
                true
            }
            None => false,
        }
    }

    /// Completes when the deadline has passed, and never while no deadline
    /// is set. Dropping the future before it completes changes nothing, so
    /// it is safe to use in `select!`.
    async fn wait(&mut self) {
        if self.armed.is_none() {
            return std::future::pending().await;
        }

        self.sleep.as_mut().await;

        // An elapsed `Sleep` stays ready until it is reset, so the next
        // `set` must reset it even when the deadline is the same.
        self.armed = None;
    }
}

/// State of the SIP task; see the module docs.
struct SipTask {
    /// UDP sockets and TCP/TLS connections for all SIP traffic.
    transports: Transports,

    /// Transactions and dialogs of every call.
    endpoint: Endpoint,

    /// Senders of dialog events, per live call.
    calls: HashMap<CallHandle, mpsc::UnboundedSender<CallNotice>>,

    /// Offer/answer state per live call, for re-INVITEs and late offer.
    media: HashMap<CallHandle, MediaSession>,

    /// Calls waiting for `sip.answer_delay` to pass before the 200 OK.
    pending_answers: HashMap<CallHandle, PendingAnswer>,

    /// Each delayed answer's timer sends its call here when it is due.
    answers_due: mpsc::UnboundedSender<CallHandle>,

    /// Cloned into each call task so it can send commands back.
    commands_tx: mpsc::UnboundedSender<(CallHandle, CallCommand)>,

    /// Configuration, prompts, store and keys shared with the call tasks.
    services: Arc<Services>,

    /// Set once shutdown was requested: the endpoint refuses new calls and
    /// the task ends when the last call has.
    draining: bool,
}

impl SipTask {
    /// Hands one item from the transports to the endpoint.
    async fn receive(&mut self, item: Inbound) {
        match item {
            Inbound::Message { received, bytes } => {
                self.endpoint
                    .handle_message(Instant::now(), received, &bytes);
            }
            Inbound::Unframed {
                received,
                header,
                error,
            } => {
                self.endpoint
                    .reject_unframed(received, header.as_deref(), &error);
                // Send the 400 before the close, which the connection task
                // carries out after the writes queued ahead of it.
                self.drain_endpoint().await;
                if let Some(connection) = received.connection {
                    self.transports.close(connection);
                }
            }
            Inbound::Opened { .. } | Inbound::Closed { .. } => self.transports.track(&item),
        }
    }

    /// Sends what the endpoint queued and handles its events, until both
    /// queues are empty (handling an event can queue more to send).
    async fn drain_endpoint(&mut self) {
        loop {
            while let Some(transmit) = self.endpoint.poll_transmit() {
                self.transports.send(transmit).await;
            }

            let Some(event) = self.endpoint.poll_event() else {
                return;
            };
            self.handle_event(event);
        }
    }

    fn handle_event(&mut self, event: Event) {
        match event {
            Event::IncomingCall(incoming) => self.answer(incoming),
            Event::CallConfirmed { call, ack_sdp } => self.confirm(call, ack_sdp),
            Event::CallEnded { call, cause } => {
                self.notify(call, CallNotice::Ended);
                self.calls.remove(&call);
                self.media.remove(&call);
                self.pending_answers.remove(&call);
                tracing::debug!(?call, ?cause, "dialog ended");
            }
            Event::Reoffer { call, sdp } => self.answer_reoffer(call, sdp),
            Event::ReofferConfirmed { call, ack_sdp } => {
                if let Some(negotiated) = self.take_answer(call, ack_sdp) {
                    self.notify(call, CallNotice::MediaChanged(negotiated));
                }
            }
            Event::Info {
                call,
                content_type,
                body,
            } => self.notify(call, CallNotice::Info { content_type, body }),
            Event::TransferAccepted { call } => self.notify(call, CallNotice::TransferAccepted),
            Event::TransferRejected { call, status } => {
                self.notify(call, CallNotice::TransferRejected { status })
            }
            Event::TransferProgress {
                call,
                status,
                final_,
            } => self.notify(call, CallNotice::TransferProgress { status, final_ }),
        }
    }

    fn notify(&self, call: CallHandle, notice: CallNotice) {
        if let Some(sender) = self.calls.get(&call) {
            // The call task may have ended already; then nobody needs it.
            let _ = sender.send(notice);
        }
    }

    fn apply(&mut self, call: CallHandle, command: CallCommand) {
        let now = Instant::now();
        let result = match &command {
            CallCommand::Transfer {
                refer_to,
                referred_by,
            } => self.endpoint.transfer(now, call, refer_to, referred_by),
            CallCommand::HangUp => self.endpoint.hang_up(now, call),
        };

        if let Err(error) = result {
            tracing::warn!(?call, %error, "call command failed");
            if matches!(command, CallCommand::Transfer { .. }) {
                self.notify(call, CallNotice::TransferRejected { status: 500 });
            } else {
                self.notify(call, CallNotice::Ended);
                self.calls.remove(&call);
            }
        }
    }

    /// Negotiates media for a new call, answers it and starts its task.
    fn answer(&mut self, incoming: IncomingCall) {
        let now = Instant::now();
        let call = incoming.call;

        let mut rtp = match self.services.rtp_ports.bind() {
            Ok(rtp) => rtp,
            Err(error) => {
                tracing::warn!(call_id = %incoming.call_id, %error, "no RTP port for the call");
                self.reject(
                    call,
                    &incoming.call_id,
                    STATUS_SERVICE_UNAVAILABLE,
                    "no RTP port",
                );
                return;
            }
        };

        let mut local_rtp = SocketAddr::new(self.services.rtp_ports.address(), rtp.port());
        let mut session = MediaSession {
            local_rtp,
            session_id: session_id(),
            version: 0,
            last_sdp: Vec::new(),
            pending_offer: None,
        };

        // With an offer we answer in the 200; without one (late offer) we
        // offer in the 200 and take the answer from the ACK.
        let negotiated = match incoming.sdp_offer.as_deref() {
            Some(offer) => {
                let mut answered =
                    sdp::answer_offer_with_version(offer, local_rtp, session.session_id, 0);

                // An IPv6 offer needs an IPv6 answer (RFC 3264), so retry once
                // from the IPv6 RTP address when one is configured.
                let family_mismatch =
                    matches!(answered, Err(sdp::SdpError::AddressFamilyMismatch { .. }));
                if family_mismatch && local_rtp.is_ipv4() {
                    if let Some((socket, address)) = self.bind_ipv6_rtp() {
                        rtp = socket;
                        local_rtp = address;
                        session.local_rtp = address;
                        answered =
                            sdp::answer_offer_with_version(offer, local_rtp, session.session_id, 0);
                    }
                }

                match answered {
                    Ok(negotiated) => {
                        session.last_sdp = negotiated.answer.clone().into_bytes();
                        Some(negotiated)
                    }
                    Err(error) => {
                        tracing::info!(call_id = %incoming.call_id, %error, "offer rejected");
                        self.reject(
                            call,
                            &incoming.call_id,
                            STATUS_NOT_ACCEPTABLE_HERE,
                            "offer rejected",
                        );
                        return;
                    }
                }
            }
            None => {
                let offer = sdp::create_offer(local_rtp, session.session_id, 0);
                session.last_sdp = offer.clone().into_bytes();
                session.pending_offer = Some(offer);
                None
            }
        };

        let sip = &self.services.config.sip;
        let caller = determine_caller_number(
            incoming.source.ip(),
            &sip.trusted_peers,
            &incoming.from,
            &incoming.p_asserted_identity,
            incoming.privacy.as_deref(),
            self.services.default_region,
        );
        tracing::info!(
            call_id = %incoming.call_id,
            source = %incoming.source,
            caller = %describe_caller(&caller),
            codec = ?negotiated.as_ref().map(|negotiated| negotiated.codec),
            late_offer = negotiated.is_none(),
            rtp_port = local_rtp.port(),
            "incoming call"
        );

        let config = &self.services.config;
        let dialled = dialled_number(&incoming.request_uri)
            .and_then(|number| to_e164(&number, config.customers.default_region).ok());
        let line = config.policy.service_line_for(dialled.as_deref());
        let plan = CallPlan {
            menu: line
                .menu
                .iter()
                .filter_map(|name| {
                    let level = config.policy.level_for(name)?;
                    Some((name.clone(), level.rule.clone()))
                })
                .collect(),
            iban_last_digits: config.factors.iban_last_digits,
        };
        let language = line.language;
        tracing::info!(call_id = %incoming.call_id, service_line = %line.name, %language, "service line selected");

        let (notices_tx, notices_rx) = mpsc::unbounded_channel();
        let setup = CallSetup {
            handle: call,
            call_id: incoming.call_id,
            caller,
            negotiated,
            rtp,
            notices: notices_rx,
            commands: self.commands_tx.clone(),
            services: Arc::clone(&self.services),
            plan,
            language,
        };
        let answer = PendingAnswer {
            session,
            setup,
            notices: notices_tx,
        };

        let delay = self.services.config.sip.answer_delay;
        if delay.is_zero() {
            self.accept(now, answer);
            return;
        }

        // Answer later, so a caller (or a PBX hunting for a free IVR) can
        // still CANCEL; the endpoint ends the call then, and the pending
        // answer is dropped with its RTP port.
        self.pending_answers.insert(call, answer);
        let due = self.answers_due.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = due.send(call);
        });
    }

    /// Binds an RTP socket on `media.address_v6`, for a caller who offers
    /// IPv6 media; `None` when no IPv6 address is configured or no port is
    /// free.
    fn bind_ipv6_rtp(&self) -> Option<(RtpSocket, SocketAddr)> {
        let pool = self.services.rtp_ports_v6.as_ref()?;
        match pool.bind() {
            Ok(socket) => {
                let address = SocketAddr::new(pool.address(), socket.port());
                Some((socket, address))
            }
            Err(error) => {
                tracing::warn!(%error, "no IPv6 RTP port for an IPv6 offer");
                None
            }
        }
    }

    /// Sends the 200 OK for a call and starts its task.
    fn accept(&mut self, now: Instant, answer: PendingAnswer) {
        let PendingAnswer {
            session,
            setup,
            notices,
        } = answer;
        let call = setup.handle;

        if let Err(error) = self
            .endpoint
            .accept_call(now, call, session.last_sdp.clone())
        {
            tracing::warn!(call_id = %setup.call_id, %error, "answering the call failed");
            return;
        }
        self.media.insert(call, session);
        self.calls.insert(call, notices);
        tokio::spawn(call::run(setup));
    }

    /// Answers a call whose answer delay has passed, unless it was
    /// cancelled meanwhile.
    fn answer_due(&mut self, call: CallHandle) {
        if let Some(answer) = self.pending_answers.remove(&call) {
            self.accept(Instant::now(), answer);
        }
    }

    /// Passes the ACK on to the call task, with the media from the answer
    /// in the ACK when the INVITE had no offer.
    fn confirm(&mut self, call: CallHandle, ack_sdp: Option<Vec<u8>>) {
        let late_offer = self
            .media
            .get(&call)
            .is_some_and(|session| session.pending_offer.is_some());
        if !late_offer {
            self.notify(call, CallNotice::Confirmed { media: None });
            return;
        }

        match self.take_answer(call, ack_sdp) {
            Some(negotiated) => self.notify(
                call,
                CallNotice::Confirmed {
                    media: Some(negotiated),
                },
            ),
            None => {
                // RFC 3261 §13.2.2.4: a UAC that cannot answer our offer
                // ends the call; one that sent no usable answer gets a BYE.
                if let Err(error) = self.endpoint.hang_up(Instant::now(), call) {
                    tracing::warn!(?call, %error, "ending the call without an answer failed");
                }
            }
        }
    }

    /// Takes the answer to our pending offer from an ACK body.
    fn take_answer(&mut self, call: CallHandle, ack_sdp: Option<Vec<u8>>) -> Option<Negotiated> {
        let session = self.media.get_mut(&call)?;
        let offer = session.pending_offer.take()?;
        let Some(answer) = ack_sdp else {
            tracing::info!(?call, "ACK carries no answer to our offer");
            return None;
        };

        match sdp::accept_answer(&answer, &offer) {
            Ok(negotiated) => Some(negotiated),
            Err(error) => {
                tracing::info!(?call, %error, "answer in the ACK rejected");
                None
            }
        }
    }

    /// Answers a re-INVITE: hold, resume or a new address with an offer; our
    /// current offer when it has none (RFC 3264 §8). An offer that cannot be
    /// answered gets 488 and the call keeps its media (RFC 3261 §14.2).
    fn answer_reoffer(&mut self, call: CallHandle, offer: Option<Vec<u8>>) {
        let Some(session) = self.media.get_mut(&call) else {
            tracing::warn!(?call, "re-INVITE for a call without media");
            return;
        };

        let mut changed = None;
        let sdp = match offer {
            Some(offer) => match negotiate_reoffer(&offer, session) {
                Ok(negotiated) => {
                    session.version += 1;
                    session.last_sdp = negotiated.answer.clone().into_bytes();
                    changed = Some(negotiated);
                    session.last_sdp.clone()
                }
                Err(error) => {
                    tracing::info!(?call, %error, status = STATUS_NOT_ACCEPTABLE_HERE, "re-INVITE offer rejected; keeping the current media");
                    let now = Instant::now();
                    if let Err(error) =
                        self.endpoint
                            .reject_reoffer(now, call, STATUS_NOT_ACCEPTABLE_HERE)
                    {
                        tracing::warn!(?call, %error, "sending 488 to the re-INVITE failed");
                    }
                    return;
                }
            },
            None => {
                session.version += 1;
                let offer =
                    sdp::create_offer(session.local_rtp, session.session_id, session.version);
                session.last_sdp = offer.clone().into_bytes();
                session.pending_offer = Some(offer);
                session.last_sdp.clone()
            }
        };

        if let Err(error) = self.endpoint.answer_reoffer(Instant::now(), call, sdp) {
            tracing::warn!(?call, %error, "sending 200 OK to the re-INVITE failed");
            return;
        }
        if let Some(negotiated) = changed {
            tracing::info!(?call, on_hold = negotiated.on_hold, direction = ?negotiated.direction, "media changed by re-INVITE");
            self.notify(call, CallNotice::MediaChanged(negotiated));
        }
    }

    fn reject(&mut self, call: CallHandle, call_id: &str, status: u16, reason: &str) {
        tracing::info!(call_id, status, reason, "call rejected");
        if let Err(error) = self.endpoint.reject_call(Instant::now(), call, status) {
            tracing::warn!(call_id, %error, "rejecting the call failed");
        }
    }
}

/// Answers the offer of a re-INVITE for `session`, with the next `o=`
/// version. The caller raises `session.version` only when the answer is sent.
/// Offers with no usable codec, or with a multicast or broadcast address,
/// are errors, and the re-INVITE gets 488.
fn negotiate_reoffer(offer: &[u8], session: &MediaSession) -> Result<Negotiated, sdp::SdpError> {
    sdp::answer_offer_with_version(
        offer,
        session.local_rtp,
        session.session_id,
        session.version + 1,
    )
}

/// A call accepted by the service but not yet answered with 200 OK.
struct PendingAnswer {
    /// Its offer/answer state, with the SDP the 200 OK will carry.
    session: MediaSession,
    /// Setup of its call task, started once the call is answered.
    setup: CallSetup,
    /// Sender of its dialog events, kept by the SIP task once answered.
    notices: mpsc::UnboundedSender<CallNotice>,
}

/// Offer/answer state of one call (RFC 3264).
struct MediaSession {
    /// Our RTP address, announced in every SDP we send.
    local_rtp: SocketAddr,
    /// `o=` session id, fixed for the call.
    session_id: u64,
    /// `o=` version, raised with every new SDP we send (RFC 3264 §8).
    version: u64,
    /// The last SDP we sent, answer or offer.
    last_sdp: Vec<u8>,
    /// Our offer while its answer is awaited in an ACK.
    pending_offer: Option<String>,
}

/// Returns the caller's number for a log line: masked, or why there is none.
pub fn describe_caller(caller: &CallerNumber) -> String {
    match caller {
        CallerNumber::E164(number) => mask_number(number),
        CallerNumber::Withheld => "withheld".to_owned(),
        CallerNumber::Unavailable => "unavailable".to_owned(),
    }
}

/// Returns the user part of a `sip:`/`sips:` Request-URI or the number of
/// a `tel:` URI: the number the caller dialled.
fn dialled_number(request_uri: &str) -> Option<String> {
    let uri = request_uri.trim();
    let rest = uri
        .strip_prefix("sip:")
        .or_else(|| uri.strip_prefix("sips:"))
        .map(|rest| rest.split('@').next().filter(|_| rest.contains('@')))
        .or_else(|| uri.strip_prefix("tel:").map(Some))??;
    let number = rest.split([';', '?']).next()?;
    (!number.is_empty()).then(|| number.to_owned())
}

/// Returns a session id for the SDP origin line (RFC 4566 §5.2 suggests an
/// NTP timestamp; any number unique enough for this host will do).
fn session_id() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{dialled_number, negotiate_reoffer, DeadlineTimer, MediaSession};
    use crate::sip::sdp::SdpError;

    /// Upper bound on a wait that must end, so a broken timer fails the test instead of hanging it.
    const WAIT: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn deadline_timer_resets_only_on_change() {
        let mut timer = DeadlineTimer::new();
        let deadline = Instant::now() + Duration::from_secs(60);

        assert!(timer.set(Some(deadline)), "a first deadline resets");
        assert!(!timer.set(Some(deadline)), "the same deadline does not");
        let later = deadline + Duration::from_millis(10);
        assert!(timer.set(Some(later)), "a new deadline resets");
        assert!(!timer.set(None), "no deadline disables without a reset");
        assert!(timer.set(Some(later)), "a deadline after none resets");
    }

    #[tokio::test]
    async fn deadline_timer_fires_then_rearms() {
        let mut timer = DeadlineTimer::new();
        let deadline = Instant::now() + Duration::from_millis(20);
        timer.set(Some(deadline));

        tokio::time::timeout(WAIT, timer.wait())
            .await
            .expect("the timer fires at its deadline");
        assert!(Instant::now() >= deadline);

        // A fired timer is reset even for the same deadline, and fires again at once.
        assert!(timer.set(Some(deadline)));
        tokio::time::timeout(WAIT, timer.wait())
            .await
            .expect("the timer fires again for a past deadline");
    }

    #[tokio::test]
    async fn deadline_timer_without_deadline_waits() {
        let mut timer = DeadlineTimer::new();
        timer.set(None);

        let waited = tokio::time::timeout(Duration::from_millis(50), timer.wait()).await;
        assert!(waited.is_err(), "a timer without a deadline never fires");
    }

    const LOCAL_RTP: &str = "127.0.0.1:40000";

    fn session() -> MediaSession {
        MediaSession {
            local_rtp: LOCAL_RTP.parse().unwrap(),
            session_id: 7,
            version: 3,
            last_sdp: Vec::new(),
            pending_offer: None,
        }
    }

    fn offer(connection: &str, media: &str) -> Vec<u8> {
        format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 {connection}\r\nt=0 0\r\n{media}"
        )
        .into_bytes()
    }

    #[test]
    fn reoffer_with_pcmu_is_answered() {
        let audio = offer("127.0.0.1", "m=audio 4000 RTP/AVP 0\r\n");
        let negotiated = negotiate_reoffer(&audio, &session()).expect("PCMU is answered");
        assert_eq!(negotiated.remote_rtp, "127.0.0.1:4000".parse().unwrap());
        assert!(
            negotiated.answer.contains("o=- 7 4 IN IP4"),
            "the answer carries the next version: {}",
            negotiated.answer
        );
    }

    #[test]
    fn unanswerable_reoffers_are_rejected() {
        let cases = [
            (
                "no common codec",
                offer("127.0.0.1", "m=audio 4000 RTP/AVP 18\r\n"),
            ),
            ("garbage", b"this is not SDP\r\n".to_vec()),
            (
                "video only",
                offer(
                    "127.0.0.1",
                    "m=video 4000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n",
                ),
            ),
            (
                "multicast",
                offer("224.2.1.1/127", "m=audio 4000 RTP/AVP 0\r\n"),
            ),
        ];
        for (case, body) in cases {
            let result = negotiate_reoffer(&body, &session());
            assert!(
                result.is_err(),
                "{case}: expected a rejection, got {result:?}"
            );
        }
    }

    #[test]
    fn multicast_reoffer_names_the_group() {
        let body = offer("224.2.1.1/127", "m=audio 4000 RTP/AVP 0\r\n");
        let result = negotiate_reoffer(&body, &session());
        assert!(
            matches!(result, Err(SdpError::NonUnicastAddress { address }) if address.to_string() == "224.2.1.1"),
            "{result:?}"
        );
    }

    #[test]
    fn dialled_number_from_request_uri() {
        assert_eq!(
            dialled_number("sip:0881234567@10.0.0.1:5060;user=phone").as_deref(),
            Some("0881234567")
        );
        assert_eq!(
            dialled_number("tel:+31881234567").as_deref(),
            Some("+31881234567")
        );
        assert_eq!(
            dialled_number("sips:ivr@example.com").as_deref(),
            Some("ivr")
        );
        assert_eq!(dialled_number("sip:example.com"), None);
        assert_eq!(dialled_number("mailto:x@y"), None);
    }
}
