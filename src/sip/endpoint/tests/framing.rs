//! Requests that break the message syntax of RFC 3261 §7 and §25: each gets
//! 400 when its Via can be read, and is dropped otherwise.

use super::*;

fn options(branch: &str) -> String {
    request("OPTIONS", branch, 1, None, "", "")
}

/// Feeds `datagram` and returns the status of every reply.
fn replies_to(endpoint: &mut Endpoint, now: Instant, datagram: &[u8]) -> Vec<u16> {
    endpoint.handle_datagram(now, peer(), datagram);
    statuses(&transmits(endpoint))
}

#[test]
fn missing_empty_line_gets_400() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();

    let complete = options("z9hG4bKnoend1");
    let cut = complete.strip_suffix("\r\n").unwrap();
    endpoint.handle_datagram(now, peer(), cut.as_bytes());
    let sent = transmits(&mut endpoint);
    assert_eq!(statuses(&sent), vec![400]);
    assert_eq!(sent[0].destination, peer());
    assert_eq!(header(&sent[0], "Call-ID").as_deref(), Some(CALL_ID));

    let without_line_end = options("z9hG4bKnoend2").replace("\r\nContent-Length: 0\r\n\r\n", "");
    assert_eq!(
        replies_to(&mut endpoint, now, without_line_end.as_bytes()),
        vec![400]
    );
}

#[test]
fn invite_without_empty_line_offers_no_call() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    let invite = invite("z9hG4bKnoend3");
    let headers = invite.split("\r\n\r\n").next().unwrap();

    assert_eq!(
        replies_to(&mut endpoint, now, format!("{headers}\r\n").as_bytes()),
        vec![400]
    );
    assert!(events(&mut endpoint).is_empty());
}

#[test]
fn missing_empty_line_unroutable_dropped() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    let without_via: String = options("z9hG4bKnoend4")
        .lines()
        .filter(|line| !line.starts_with("Via:") && !line.is_empty())
        .map(|line| format!("{line}\r\n"))
        .collect();
    assert!(replies_to(&mut endpoint, now, without_via.as_bytes()).is_empty());

    let ack = request("ACK", "z9hG4bKnoend5", 1, None, "", "");
    let cut = ack.strip_suffix("\r\n").unwrap();
    assert!(replies_to(&mut endpoint, now, cut.as_bytes()).is_empty());
}

#[test]
fn header_line_without_colon_gets_400() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    let message = options("z9hG4bKcolon").replace(
        "Content-Length: 0",
        "This line has no colon\r\nContent-Length: 0",
    );

    endpoint.handle_datagram(now, peer(), message.as_bytes());
    let sent = transmits(&mut endpoint);
    assert_eq!(statuses(&sent), vec![400]);
    assert_eq!(header(&sent[0], "Call-ID").as_deref(), Some(CALL_ID));
}

#[test]
fn non_token_header_name_gets_400() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    let text = options("z9hG4bKtoken");
    let (head, tail) = text.split_once("Content-Length").unwrap();
    let mut datagram = head.as_bytes().to_vec();
    datagram.extend_from_slice(b"X-Bad\xff\xfe: value\r\nContent-Length");
    datagram.extend_from_slice(tail.as_bytes());

    assert_eq!(replies_to(&mut endpoint, now, &datagram), vec![400]);

    let spaced =
        options("z9hG4bKtoken2").replace("Content-Length: 0", "X Bad: value\r\nContent-Length: 0");
    assert_eq!(replies_to(&mut endpoint, now, spaced.as_bytes()), vec![400]);
}

#[test]
fn unreadable_header_in_response_is_dropped() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    let response = "SIP/2.0 200 OK\r\n\
        Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKnone\r\n\
        No colon here\r\n\
        From: <sip:ivr@127.0.0.1>;tag=a\r\n\
        To: <sip:peer@127.0.0.1>;tag=b\r\n\
        Call-ID: response@127.0.0.1\r\n\
        CSeq: 1 BYE\r\n\
        Content-Length: 0\r\n\r\n";

    assert!(replies_to(&mut endpoint, now, response.as_bytes()).is_empty());
}

#[test]
fn unclosed_ipv6_request_uri_gets_400() {
    let mut endpoint = new_endpoint();
    let now = Instant::now();
    let unclosed = options("z9hG4bKipv6a").replacen("sip:ivr@127.0.0.1", "sip:ivr@[::1", 1);
    assert_eq!(
        replies_to(&mut endpoint, now, unclosed.as_bytes()),
        vec![400]
    );

    let closed = options("z9hG4bKipv6b").replacen("sip:ivr@127.0.0.1", "sip:ivr@[::1]", 1);
    assert_eq!(replies_to(&mut endpoint, now, closed.as_bytes()), vec![200]);
}
