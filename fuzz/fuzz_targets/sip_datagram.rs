//! Feeds SIP datagrams to the sans-I/O endpoint, the code every received UDP
//! packet reaches first: framing, validation, transactions and dialogs.
//!
//! The input is split at each `\0\0\0` into up to eight datagrams from one
//! source, so that sequences (INVITE then ACK, CANCEL or BYE) reach the
//! dialog code. Every offered call is accepted with a fixed SDP answer, and
//! the clock moves 600 ms after each datagram so that retransmission
//! timers fire.

#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ivr_verify::sip::{Endpoint, EndpointConfig, Event};
use libfuzzer_sys::fuzz_target;

/// Separator between datagrams in one input.
const SEPARATOR: &[u8] = b"\0\0\0";

/// Datagrams per input, which bounds the time of one execution.
const MAX_DATAGRAMS: usize = 8;

/// SDP answer sent in every 200 OK.
const ANSWER: &[u8] = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n";

fuzz_target!(|data: &[u8]| {
    let local: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 5060));
    let peer: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 5070));
    let mut endpoint = Endpoint::new(EndpointConfig {
        local_addr: local,
        user_agent: "fuzz".to_string(),
    });
    let mut now = Instant::now();

    for datagram in split(data).take(MAX_DATAGRAMS) {
        endpoint.handle_datagram(now, peer, datagram);
        drain(&mut endpoint, now);

        now += Duration::from_millis(600);
        endpoint.handle_timeout(now);
        drain(&mut endpoint, now);
    }
});

fn split(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(data);
    std::iter::from_fn(move || {
        let current = rest?;
        match current
            .windows(SEPARATOR.len())
            .position(|window| window == SEPARATOR)
        {
            Some(at) => {
                rest = current.get(at + SEPARATOR.len()..);
                current.get(..at)
            }
            None => {
                rest = None;
                Some(current)
            }
        }
    })
}

fn drain(endpoint: &mut Endpoint, now: Instant) {
    while endpoint.poll_transmit().is_some() {}
    while let Some(event) = endpoint.poll_event() {
        if let Event::IncomingCall(call) = event {
            let _ = endpoint.accept_call(now, call.call, ANSWER.to_vec());
        }
    }
    while endpoint.poll_transmit().is_some() {}
}
