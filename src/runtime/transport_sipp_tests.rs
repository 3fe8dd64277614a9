//! A whole call over TCP between real sipp (its built-in `uac` scenario)
//! and the endpoint driven through [`Transports`], as the SIP task drives it.

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::sip::{EdgePolicy, EndCause, Endpoint, EndpointConfig, Event, Transport};

use super::{Inbound, SipListeners, Transports};

/// Maximum time the call may take. sipp's own `-timeout` is shorter.
const CALL_DEADLINE: Duration = Duration::from_secs(30);

const SDP_ANSWER: &[u8] = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

fn free_tcp_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral TCP port");
    listener.local_addr().expect("local address").port()
}

#[tokio::test(flavor = "multi_thread")]
async fn sipp_call_over_tcp() {
    let bound = SipListeners {
        tcp: vec!["127.0.0.1:0".parse().unwrap()],
        ..SipListeners::default()
    }
    .bind()
    .await
    .expect("the TCP listener binds");
    let (_, server): (Transport, SocketAddr) = bound.local_addrs()[0];
    let edge = EdgePolicy {
        trusted_peers: vec!["127.0.0.1/32".parse().unwrap()],
        ..EdgePolicy::default()
    };
    let (mut transports, mut inbound) = Transports::start(bound, &edge);
    let mut endpoint = Endpoint::new(EndpointConfig {
        local_addr: server,
        user_agent: "ivr-verify-test".to_string(),
        edge,
    });

    let sipp_port = free_tcp_port();
    let sipp = tokio::task::spawn_blocking(move || {
        Command::new("sipp")
            .args(["-sn", "uac", "-t", "t1", "-m", "1", "-i", "127.0.0.1"])
            .args(["-p", &sipp_port.to_string(), "-s", "ivr", "-timeout", "20s"])
            .args(["-timeout_error", "-nostdin", "-trace_err"])
            .arg(server.to_string())
            .current_dir(std::env::temp_dir())
            .output()
            .expect("sipp runs; install it with the Debian package sip-tester")
    });
    tokio::pin!(sipp);

    let started = Instant::now();
    let mut seen = Vec::new();
    let output = loop {
        let deadline = endpoint.poll_timeout();
        let sleep = async {
            match deadline {
                Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            Some(item) = inbound.recv() => match item {
                Inbound::Message { received, bytes } => endpoint.handle_message(Instant::now(), received, &bytes),
                other => transports.track(&other),
            },
            () = sleep => endpoint.handle_timeout(Instant::now()),
            finished = &mut sipp => break finished.expect("the sipp task completes"),
            () = tokio::time::sleep(CALL_DEADLINE.saturating_sub(started.elapsed())) => {
                panic!("the call did not finish within {CALL_DEADLINE:?}; events so far: {seen:?}");
            }
        }

        while let Some(transmit) = endpoint.poll_transmit() {
            assert_eq!(
                transmit.transport,
                Transport::Tcp,
                "every message stays on TCP"
            );
            transports.send(transmit).await;
        }
        while let Some(event) = endpoint.poll_event() {
            if let Event::IncomingCall(incoming) = &event {
                assert_eq!(incoming.transport, Transport::Tcp);
                endpoint
                    .accept_call(Instant::now(), incoming.call, SDP_ANSWER.to_vec())
                    .expect("the offered call can be accepted");
            }
            seen.push(event);
        }
        while let Some(transmit) = endpoint.poll_transmit() {
            transports.send(transmit).await;
        }
    };

    assert!(
        output.status.success(),
        "sipp failed\n--- stdout ---\n{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        matches!(seen.first(), Some(Event::IncomingCall(_))),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|event| matches!(event, Event::CallConfirmed { .. })),
        "{seen:?}"
    );
    assert!(
        seen.iter().any(|event| matches!(
            event,
            Event::CallEnded {
                cause: EndCause::ByeReceived,
                ..
            }
        )),
        "{seen:?}"
    );
}
