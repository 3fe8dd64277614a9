//! Server transaction matching (RFC 3261 §17.2.3): a request belongs to a
//! transaction only when the branch and sent-by of its top Via and its
//! method all match.

use super::*;

/// Top Via sent-by of the requests that `request` and `invite` build.
const SENT_BY: &str = "127.0.0.1:5070";

/// Another sent-by that a second peer, or a broken one, uses with the same branch.
const OTHER_SENT_BY: &str = "Host-B.example.com:5070";

/// Returns `message` with its top Via sent-by replaced by `sent_by`.
fn with_sent_by(message: &str, sent_by: &str) -> String {
    message.replacen(&format!("UDP {SENT_BY};"), &format!("UDP {sent_by};"), 1)
}

/// Returns `message` with the Call-ID replaced by `call_id`.
fn with_call_id(message: &str, call_id: &str) -> String {
    message.replace(CALL_ID, call_id)
}

/// Reads an RFC 4475 message from the test data.
fn torture_file(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/sip/testdata/rfc4475")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|error| panic!("read {}: {error}", path.display()))
}

fn call_id_of(datagram: &[u8]) -> Option<String> {
    let raw = RawMessage::frame(datagram).unwrap();
    raw.value("Call-ID").map(str::to_string)
}

#[test]
fn same_branch_other_sent_by_is_new_transaction() {
    let mut endpoint = new_endpoint();
    let start = Instant::now();
    let register = request("REGISTER", "z9hG4bKshared", 1, None, "", "");
    let first = with_call_id(&register, "first@127.0.0.1");
    let second = with_call_id(&with_sent_by(&register, OTHER_SENT_BY), "second@127.0.0.1");

    feed(&mut endpoint, start, &first);
    let first_reply = transmits(&mut endpoint);
    assert_eq!(statuses(&first_reply), vec![405]);

    feed(&mut endpoint, start + Duration::from_millis(100), &second);
    let second_reply = transmits(&mut endpoint);
    assert_eq!(statuses(&second_reply), vec![405]);
    assert_eq!(
        header(&second_reply[0], "Call-ID").as_deref(),
        Some("second@127.0.0.1")
    );
    assert_ne!(
        header(&second_reply[0], "To"),
        header(&first_reply[0], "To")
    );

    // A retransmission with the first sent-by still gets the stored response.
    feed(&mut endpoint, start + Duration::from_millis(500), &first);
    assert_eq!(transmits(&mut endpoint), first_reply);
}

#[test]
fn sent_by_host_case_insensitive() {
    let mut endpoint = new_endpoint();
    let start = Instant::now();
    let options = with_sent_by(
        &request("OPTIONS", "z9hG4bKcase", 1, None, "", ""),
        OTHER_SENT_BY,
    );

    feed(&mut endpoint, start, &options);
    let first_reply = transmits(&mut endpoint);
    assert_eq!(statuses(&first_reply), vec![200]);

    let lower_case = options.replacen(OTHER_SENT_BY, &OTHER_SENT_BY.to_lowercase(), 1);
    feed(
        &mut endpoint,
        start + Duration::from_millis(500),
        &lower_case,
    );
    assert_eq!(transmits(&mut endpoint), first_reply);
}

#[test]
fn rfc4475_escnull_then_cparam01() {
    let mut endpoint = new_endpoint();
    let start = Instant::now();
    let escnull = torture_file("escnull.dat");
    let cparam01 = torture_file("cparam01.dat");

    endpoint.handle_datagram(start, peer(), &escnull);
    let first = transmits(&mut endpoint);
    assert_eq!(statuses(&first), vec![405]);
    assert_eq!(header(&first[0], "Call-ID"), call_id_of(&escnull));

    endpoint.handle_datagram(start + Duration::from_millis(100), peer(), &cparam01);
    let second = transmits(&mut endpoint);
    assert_eq!(statuses(&second), vec![405]);
    assert_eq!(header(&second[0], "Call-ID"), call_id_of(&cparam01));
}

/// RFC 4475 files that repeat the branch, sent-by and method of an earlier
/// file that created a transaction, so they get that file's stored response.
const RFC4475_RETRANSMISSIONS: &[(&str, &str)] = &[
    ("cparam02.dat", "cparam01.dat"),
    ("regescrt.dat", "escnull.dat"),
];

/// Time between two torture messages, well inside Timer J and Timer H, so
/// that every transaction is still there for the files after it.
const TORTURE_SPACING: Duration = Duration::from_millis(100);

#[test]
fn rfc4475_messages_on_one_endpoint() {
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/sip/testdata/rfc4475");
    let mut names: Vec<String> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".dat"))
        .collect();
    names.sort();

    let mut endpoint = new_endpoint();
    let start = Instant::now();
    let mut failures = Vec::new();
    for (index, name) in names.iter().enumerate() {
        let datagram = torture_file(name);
        let now = start + TORTURE_SPACING * u32::try_from(index).unwrap();
        endpoint.handle_datagram(now, peer(), &datagram);
        let sent = transmits(&mut endpoint);
        let _ = events(&mut endpoint);

        let original = RFC4475_RETRANSMISSIONS
            .iter()
            .find(|(file, _)| file == name)
            .map_or(name.as_str(), |(_, original)| original);
        let expected_status = TORTURE_EXPECTATIONS
            .iter()
            .find(|(file, _)| *file == original)
            .and_then(|(_, status)| *status);
        let status = sent.first().map(status);
        if status != expected_status {
            failures.push(format!(
                "{name}: expected {expected_status:?}, got {status:?}"
            ));
            continue;
        }

        let Some(reply) = sent.first() else {
            continue;
        };
        let expected_call_id = call_id_of(&torture_file(original));
        if expected_call_id.is_some() && header(reply, "Call-ID") != expected_call_id {
            failures.push(format!(
                "{name}: reply has Call-ID {:?}, expected {expected_call_id:?}",
                header(reply, "Call-ID")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn ack_needs_invite_sent_by() {
    let mut endpoint = new_endpoint();
    let start = Instant::now();
    let call = offer_call(&mut endpoint, start);
    endpoint.reject_call(start, call, 486).unwrap();
    assert_eq!(statuses(&transmits(&mut endpoint)), vec![486]);
    let _ = events(&mut endpoint);

    // Same branch, other sent-by: not this transaction, so Timer G keeps
    // retransmitting the 486.
    let ack = request("ACK", "z9hG4bKinvite1", 1, Some("any"), "", "");
    let at = start + Duration::from_millis(100);
    feed(&mut endpoint, at, &with_sent_by(&ack, OTHER_SENT_BY));
    assert!(transmits(&mut endpoint).is_empty());
    assert_eq!(endpoint.poll_timeout(), Some(start + T1));

    feed(&mut endpoint, at, &ack);
    assert!(transmits(&mut endpoint).is_empty());
    assert_eq!(endpoint.poll_timeout(), Some(at + T4));
}

#[test]
fn cancel_needs_invite_sent_by() {
    let mut endpoint = new_endpoint();
    let start = Instant::now();
    let call = offer_call(&mut endpoint, start);
    let cancel = request("CANCEL", "z9hG4bKinvite1", 1, None, "", "");

    feed(&mut endpoint, start, &with_sent_by(&cancel, OTHER_SENT_BY));
    assert_eq!(statuses(&transmits(&mut endpoint)), vec![481]);
    assert!(events(&mut endpoint).is_empty());

    // The CANCEL is its own transaction: with the INVITE's sent-by it gets
    // 200, and the INVITE gets 487.
    feed(&mut endpoint, start, &cancel);
    let sent = transmits(&mut endpoint);
    assert_eq!(statuses(&sent), vec![200, 487]);
    assert_eq!(header(&sent[0], "CSeq").as_deref(), Some("1 CANCEL"));
    assert_eq!(
        events(&mut endpoint),
        vec![Event::CallEnded {
            call,
            cause: EndCause::Cancelled
        }]
    );
}
