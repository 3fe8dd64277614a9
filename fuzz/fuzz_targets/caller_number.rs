//! Determines the caller's number from arbitrary From, P-Asserted-Identity
//! and Privacy values, as they arrive in an INVITE.
//!
//! The input is split at each newline: the first line is From, the second
//! Privacy (empty means absent) and every later line one
//! P-Asserted-Identity value. The source is a trusted peer, so both header
//! paths run.

#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;
use ivr_verify::verify::caller_id::{determine_caller_number, mask_number, CallerNumber};
use libfuzzer_sys::fuzz_target;
use phonenumber::country;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let from = lines.next().unwrap_or_default();
    let privacy = lines.next().filter(|value| !value.is_empty());
    let asserted: Vec<String> = lines.map(str::to_owned).collect();

    let source = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let trusted = [IpNet::from(source)];
    let number = determine_caller_number(source, &trusted, from, &asserted, privacy, country::Id::NL);

    if let CallerNumber::E164(e164) = number {
        assert!(e164.starts_with('+'), "E.164 number without +: {e164}");
        let _ = mask_number(&e164);
    }
});
