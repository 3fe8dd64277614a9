//! Transport selection: replies on the receiving connection, dialog
//! requests on the dialog's transport, Via and Contact per transport, IPv6.

use super::*;
use crate::sip::transport::ConnectionId;

const TCP_LOCAL: &str = "127.0.0.1:5061";

fn over_stream(transport: Transport, connection: u64) -> Received {
    Received {
        transport,
        local: TCP_LOCAL.parse().unwrap(),
        source: "127.0.0.1:40000".parse().unwrap(),
        connection: Some(ConnectionId(connection)),
    }
}

fn tcp_invite(transport: Transport, request_uri: &str) -> String {
    invite("z9hG4bKtcp")
        .replace(
            "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKtcp;rport",
            &format!(
                "SIP/2.0/{} 127.0.0.1:5070;branch=z9hG4bKtcp",
                transport.via_token()
            ),
        )
        .replace(
            "sip:+31201234567@127.0.0.1 SIP/2.0",
            &format!("{request_uri} SIP/2.0"),
        )
}

#[test]
fn tcp_dialog_stays_on_its_connection() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    let received = over_stream(Transport::Tcp, 7);
    endpoint.handle_message(
        now,
        received,
        tcp_invite(Transport::Tcp, "sip:+31201234567@127.0.0.1").as_bytes(),
    );

    let sent = transmits(&mut endpoint);
    assert_eq!(statuses(&sent), vec![100]);
    assert_eq!(sent[0].transport, Transport::Tcp);
    assert_eq!(sent[0].connection, Some(ConnectionId(7)));
    assert_eq!(
        sent[0].destination, received.source,
        "a stream reply goes to the connection's peer, not the Via port"
    );
    let Some(Event::IncomingCall(incoming)) = events(&mut endpoint).pop() else {
        panic!("expected IncomingCall");
    };
    assert_eq!(incoming.transport, Transport::Tcp);

    endpoint
        .accept_call(now, incoming.call, SDP_ANSWER.to_vec())
        .unwrap();
    let sent = transmits(&mut endpoint);
    assert_eq!(
        header(&sent[0], "Contact").as_deref(),
        Some("<sip:127.0.0.1:5061;transport=tcp>")
    );
    let tag = header_param(&header(&sent[0], "To").unwrap(), "tag").unwrap();
    let ack =
        request("ACK", "z9hG4bKack", 1, Some(&tag), "", "").replace("SIP/2.0/UDP", "SIP/2.0/TCP");
    endpoint.handle_message(now, received, ack.as_bytes());
    let _ = events(&mut endpoint);

    endpoint.hang_up(now, incoming.call).unwrap();
    let sent = transmits(&mut endpoint);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].transport, Transport::Tcp);
    assert_eq!(sent[0].connection, Some(ConnectionId(7)));
    let via = header(&sent[0], "Via").unwrap();
    assert!(
        via.starts_with("SIP/2.0/TCP 127.0.0.1:5061;branch=z9hG4bK"),
        "{via}"
    );

    // No Timer E over a reliable transport: nothing until Timer F.
    let resent = run_until(
        &mut endpoint,
        now + TIMEOUT_64_T1 - Duration::from_millis(1),
    );
    assert!(resent.is_empty());
}

#[test]
fn tcp_rejection_is_not_retransmitted() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    let received = over_stream(Transport::Tcp, 3);
    endpoint.handle_message(
        now,
        received,
        tcp_invite(Transport::Tcp, "sip:+31201234567@127.0.0.1").as_bytes(),
    );
    let _ = transmits(&mut endpoint);
    let Some(Event::IncomingCall(incoming)) = events(&mut endpoint).pop() else {
        panic!("expected IncomingCall");
    };
    endpoint.reject_call(now, incoming.call, 486).unwrap();
    assert_eq!(statuses(&transmits(&mut endpoint)), vec![486]);
    let resent = run_until(&mut endpoint, now + TIMEOUT_64_T1);
    assert!(resent.is_empty(), "Timer G runs only over UDP");
}

#[test]
fn sips_request_gets_sips_contact() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    let received = over_stream(Transport::Tls, 9);
    endpoint.handle_message(
        now,
        received,
        tcp_invite(Transport::Tls, "sips:+31201234567@127.0.0.1").as_bytes(),
    );
    let _ = transmits(&mut endpoint);
    let Some(Event::IncomingCall(incoming)) = events(&mut endpoint).pop() else {
        panic!("expected IncomingCall");
    };
    assert_eq!(incoming.transport, Transport::Tls);
    endpoint
        .accept_call(now, incoming.call, SDP_ANSWER.to_vec())
        .unwrap();
    let sent = transmits(&mut endpoint);
    assert_eq!(sent[0].transport, Transport::Tls);
    assert_eq!(
        header(&sent[0], "Contact").as_deref(),
        Some("<sips:127.0.0.1:5061>")
    );
}

#[test]
fn tls_with_sip_uri_gets_transport_param() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    let received = over_stream(Transport::Tls, 9);
    endpoint.handle_message(
        now,
        received,
        tcp_invite(Transport::Tls, "sip:+31201234567@127.0.0.1").as_bytes(),
    );
    let _ = transmits(&mut endpoint);
    let Some(Event::IncomingCall(incoming)) = events(&mut endpoint).pop() else {
        panic!("expected IncomingCall");
    };
    endpoint
        .accept_call(now, incoming.call, SDP_ANSWER.to_vec())
        .unwrap();
    let sent = transmits(&mut endpoint);
    assert_eq!(
        header(&sent[0], "Contact").as_deref(),
        Some("<sip:127.0.0.1:5061;transport=tls>")
    );
}

#[test]
fn ipv6_udp_reply_uses_ipv6_listener() {
    let mut endpoint = endpoint_with(EdgePolicy {
        trusted_peers: vec!["::1/128".parse().unwrap()],
        ..EdgePolicy::default()
    });
    let now = Instant::now();
    let received = Received {
        transport: Transport::Udp,
        local: "[::1]:5060".parse().unwrap(),
        source: "[::1]:5070".parse().unwrap(),
        connection: None,
    };
    let message = invite("z9hG4bKv6").replace("127.0.0.1:5070;branch", "[::1]:5070;branch");
    endpoint.handle_message(now, received, message.as_bytes());
    let sent = transmits(&mut endpoint);
    assert_eq!(statuses(&sent), vec![100]);
    assert_eq!(sent[0].destination, received.source);
    assert_eq!(sent[0].local, received.local);
    assert_eq!(
        header(&sent[0], "Via").as_deref(),
        Some("SIP/2.0/UDP [::1]:5070;branch=z9hG4bKv6;received=::1;rport=5070")
    );
    let Some(Event::IncomingCall(incoming)) = events(&mut endpoint).pop() else {
        panic!("expected IncomingCall");
    };
    endpoint
        .accept_call(now, incoming.call, SDP_ANSWER.to_vec())
        .unwrap();
    let sent = transmits(&mut endpoint);
    assert_eq!(
        header(&sent[0], "Contact").as_deref(),
        Some("<sip:[::1]:5060>")
    );
}

#[test]
fn unframed_stream_gets_400_when_via_is_readable() {
    let mut endpoint = new_endpoint();
    let received = over_stream(Transport::Tcp, 4);
    let header_section = "OPTIONS sip:ivr@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5070;branch=z9hG4bKnl\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.1>\r\nCall-ID: nl\r\nCSeq: 1 OPTIONS";
    endpoint.reject_unframed(
        received,
        Some(header_section.as_bytes()),
        &FramingError::MissingContentLength,
    );
    let sent = transmits(&mut endpoint);
    assert_eq!(statuses(&sent), vec![400]);
    assert_eq!(sent[0].connection, Some(ConnectionId(4)));

    endpoint.reject_unframed(received, None, &FramingError::HeaderTooLarge { max: 10 });
    assert!(transmits(&mut endpoint).is_empty());
}
