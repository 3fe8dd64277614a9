//! One caller: INVITE, ACK, media with typed digits, 202 to the REFER,
//! NOTIFY with a 200 sipfrag, and 200 to the service's BYE.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::time::timeout;

use crate::media;
use crate::sip::{sdp_remote, Message, SipSocket};
use crate::stats::{Failure, Stats};

/// RFC 3261 T1: first retransmission interval of a request over UDP.
const T1: Duration = Duration::from_millis(500);
/// Time allowed for a final response (64 × T1).
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(32);
/// Time allowed from the last digit to the REFER. The service plays its
/// thank-you prompt (about 4.6 s) first.
const REFER_TIMEOUT: Duration = Duration::from_secs(40);

/// Parameters of one call.
pub struct CallSpec {
    pub number: u64,
    pub caller: String,
    pub contract: String,
    /// The `acr` the REFER's token must carry.
    pub expected_acr: String,
    /// Time from the ACK to the first digit.
    pub type_after: Duration,
    pub run_id: u32,
}

/// Places the call and records its figures; returns whether it passed.
pub async fn place(sip: SipSocket, spec: CallSpec, stats: Arc<Stats>) -> bool {
    let call_id = format!("lg{}-{}@127.0.0.1", spec.run_id, spec.number);
    let mut inbox = sip.register(&call_id);
    let result = run(&sip, &spec, &call_id, &mut inbox, &stats).await;
    sip.unregister(&call_id);

    let mut inner = stats.lock();
    match result {
        Ok(()) => {
            inner.completed += 1;
            true
        }
        Err(failure) => {
            drop(inner);
            stats.fail(failure);
            false
        }
    }
}

async fn run(
    sip: &SipSocket,
    spec: &CallSpec,
    call_id: &str,
    inbox: &mut mpsc::UnboundedReceiver<Message>,
    stats: &Arc<Stats>,
) -> Result<(), Failure> {
    let rtp = UdpSocket::bind("127.0.0.1:0").await.map_err(|_| Failure::Socket)?;
    media::enable_timestamps(&rtp).map_err(|_| Failure::Socket)?;
    let rtp_port = rtp.local_addr().map_err(|_| Failure::Socket)?.port();

    let local = sip.local;
    let remote = sip.remote;
    let from_tag = format!("{}x{}", spec.run_id, spec.number);
    let from = format!("\"Caller\" <sip:{}@{local}>;tag={from_tag}", spec.caller);
    let to_plain = format!("<sip:0881234567@{remote}>");
    let branch = format!("z9hG4bK-{}-{}-inv", spec.run_id, spec.number);
    let sdp = format!(
        "v=0\r\no=caller 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {rtp_port} RTP/AVP 8 {pt}\r\na=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:{pt} telephone-event/8000\r\na=fmtp:{pt} 0-15\r\na=ptime:20\r\na=sendrecv\r\n",
        pt = media::EVENT_PAYLOAD_TYPE
    );
    let invite = format!(
        "INVITE sip:0881234567@{remote} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch={branch};rport\r\n\
         From: {from}\r\nTo: {to_plain}\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\n\
         Contact: <sip:caller@{local}>\r\nP-Asserted-Identity: <sip:{caller}@127.0.0.1;user=phone>\r\n\
         Max-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {length}\r\n\r\n{sdp}",
        caller = spec.caller,
        length = sdp.len()
    );

    // INVITE, retransmitted at T1, 2·T1, … until a provisional or final response.
    let sent_at = Instant::now();
    sip.send(&invite).await;
    stats.lock().started += 1;
    let mut interval = T1;
    let mut next_retransmit = Some(sent_at + interval);
    let ok = loop {
        let deadline = next_retransmit.unwrap_or(sent_at + TRANSACTION_TIMEOUT).min(sent_at + TRANSACTION_TIMEOUT);
        match tokio::time::timeout_at(deadline.into(), inbox.recv()).await {
            Ok(Some(message)) if message.method == "INVITE" => match message.status {
                Some(100..=199) => next_retransmit = None,
                Some(200..=299) => break message,
                Some(_) => {
                    let to = message.header("to").unwrap_or_default().to_owned();
                    sip.send(&ack(remote, local, &format!("sip:0881234567@{remote}"), &branch, &from, &to, call_id)).await;
                    return Err(Failure::Setup);
                }
                None => {}
            },
            Ok(Some(_)) => {}
            Ok(None) => return Err(Failure::Setup),
            Err(_) => {
                if Instant::now() >= sent_at + TRANSACTION_TIMEOUT {
                    return Err(Failure::Setup);
                }
                sip.send(&invite).await;
                interval = (interval * 2).min(Duration::from_secs(4));
                next_retransmit = Some(Instant::now() + interval);
            }
        }
    };
    let setup_us = sent_at.elapsed().as_micros() as u64;
    stats.lock().setup.record(setup_us);

    let to = ok.header("to").unwrap_or_default().to_owned();
    let target = ok.contact_uri().unwrap_or_else(|| format!("sip:{remote}"));
    let ack_text = ack(remote, local, &target, &format!("z9hG4bK-{}-{}-ack", spec.run_id, spec.number), &from, &to, call_id);
    sip.send(&ack_text).await;
    let Some(remote_rtp) = sdp_remote(&ok.body) else {
        return Err(Failure::Sdp);
    };

    let (stop_tx, stop_rx) = oneshot::channel();
    let (digit_tx, digit_rx) = oneshot::channel();
    let media = tokio::spawn(media::run(
        rtp,
        remote_rtp,
        format!("{}#", spec.contract),
        spec.type_after,
        Arc::clone(stats),
        stop_rx,
        digit_tx,
    ));

    let result = converse(sip, spec, call_id, inbox, stats, &ack_text, &from, &to, &target, digit_rx).await;
    let _ = stop_tx.send(());
    let _ = media.await;
    result
}

/// Runs everything after the ACK: wait for the REFER, accept it, report
/// the transfer with NOTIFY, and respond 200 to the BYE.
#[allow(clippy::too_many_arguments)]
async fn converse(
    sip: &SipSocket,
    spec: &CallSpec,
    call_id: &str,
    inbox: &mut mpsc::UnboundedReceiver<Message>,
    stats: &Arc<Stats>,
    ack_text: &str,
    from: &str,
    to: &str,
    target: &str,
    mut digit_rx: oneshot::Receiver<Instant>,
) -> Result<(), Failure> {
    let local = sip.local;
    let limit = Instant::now() + spec.type_after + Duration::from_secs(10) + REFER_TIMEOUT;
    let mut last_digit: Option<Instant> = None;

    let refer = loop {
        let message = tokio::select! {
            sent = &mut digit_rx, if last_digit.is_none() => {
                last_digit = Some(sent.unwrap_or_else(|_| Instant::now()));
                continue;
            }
            received = tokio::time::timeout_at(limit.into(), inbox.recv()) => match received {
                Ok(Some(message)) => message,
                _ => return Err(Failure::NoRefer),
            }
        };
        match (message.status, message.method.as_str()) {
            (Some(200..=299), "INVITE") => sip.send(ack_text).await,
            (None, "REFER") => break message,
            (None, "BYE") => {
                sip.send(&message.response("200 OK", "")).await;
                return Err(Failure::NoRefer);
            }
            (None, method) if method != "ACK" => sip.send(&message.response("200 OK", "")).await,
            _ => {}
        }
    };
    // The REFER can only follow the last digit; its send time is set by then.
    if let Ok(sent) = digit_rx.try_recv() {
        last_digit = Some(sent);
    }
    if let Some(sent) = last_digit {
        stats.lock().digits_to_refer.record(sent.elapsed().as_micros() as u64);
    }

    let accepted = refer.response("202 Accepted", &format!("Contact: <sip:caller@{local}>\r\n"));
    sip.send(&accepted).await;
    let acr = refer.header("refer-to").and_then(token_acr);
    if acr.as_deref() != Some(spec.expected_acr.as_str()) {
        return Err(Failure::WrongLevel);
    }

    let sipfrag = "SIP/2.0 200 OK\r\n";
    let notify = format!(
        "NOTIFY {target} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-{}-{}-notify;rport\r\n\
         From: {from}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: 2 NOTIFY\r\n\
         Contact: <sip:caller@{local}>\r\nEvent: refer\r\nSubscription-State: terminated;reason=noresource\r\n\
         Max-Forwards: 70\r\nContent-Type: message/sipfrag;version=2.0\r\nContent-Length: {}\r\n\r\n{sipfrag}",
        spec.run_id,
        spec.number,
        sipfrag.len()
    );
    sip.send(&notify).await;

    let started = Instant::now();
    let mut next_retransmit = Some(started + T1);
    let mut notify_answered = false;
    loop {
        let deadline = next_retransmit.unwrap_or(started + TRANSACTION_TIMEOUT).min(started + TRANSACTION_TIMEOUT);
        match timeout(deadline.saturating_duration_since(Instant::now()), inbox.recv()).await {
            Ok(Some(message)) => match (message.status, message.method.as_str()) {
                (Some(200..=299), "NOTIFY") => {
                    notify_answered = true;
                    next_retransmit = None;
                }
                (Some(_), "NOTIFY") => return Err(Failure::Teardown),
                (None, "REFER") => sip.send(&accepted).await,
                (None, "BYE") => {
                    sip.send(&message.response("200 OK", "")).await;
                    return if notify_answered { Ok(()) } else { Err(Failure::Teardown) };
                }
                (Some(200..=299), "INVITE") => sip.send(ack_text).await,
                _ => {}
            },
            Ok(None) => return Err(Failure::Teardown),
            Err(_) => {
                if Instant::now() >= started + TRANSACTION_TIMEOUT {
                    return Err(Failure::Teardown);
                }
                if !notify_answered {
                    sip.send(&notify).await;
                    next_retransmit = Some(Instant::now() + T1 * 2);
                }
            }
        }
    }
}

fn ack(remote: std::net::SocketAddr, local: std::net::SocketAddr, target: &str, branch: &str, from: &str, to: &str, call_id: &str) -> String {
    let _ = remote;
    format!(
        "ACK {target} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch={branch};rport\r\n\
         From: {from}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
}

/// Returns the `acr` claim of the X-Verification-Token embedded in a
/// Refer-To value, without checking the signature.
fn token_acr(refer_to: &str) -> Option<String> {
    let start = refer_to.find("X-Verification-Token=")? + "X-Verification-Token=".len();
    let rest = &refer_to[start..];
    let end = rest.find(['&', '>']).unwrap_or(rest.len());
    let token = percent_decode(&rest[..end]);
    let payload = token.split('.').nth(1)?;
    let json = String::from_utf8(base64url_decode(payload)?).ok()?;
    let key = "\"acr\":\"";
    let value_start = json.find(key)? + key.len();
    let value_end = json[value_start..].find('"')? + value_start;
    Some(json[value_start..value_end].to_owned())
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' && index + 2 < bytes.len() {
            if let Ok(byte) = u8::from_str_radix(&text[index + 1..index + 3], 16) {
                out.push(byte);
                index += 3;
                continue;
            }
        }
        out.push(bytes[index]);
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut buffer = 0u32;
    let mut bits = 0;
    for byte in text.bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            b'=' => break,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    Some(out)
}
