//! Parses SIP INFO bodies as DTMF relay, as every in-dialog INFO is
//! handled, and pushes each key into a digit merger.
//!
//! The first byte chooses the Content-Type; the rest is the body.

#![no_main]

use std::time::Instant;

use ivr_verify::media::dtmf::info::parse_info;
use ivr_verify::media::dtmf::merge::{DigitMerger, DigitSource};
use libfuzzer_sys::fuzz_target;

/// Content types a peer may send, including odd spellings and parameters.
const CONTENT_TYPES: [Option<&str>; 6] = [
    Some("application/dtmf-relay"),
    Some("application/dtmf"),
    Some("Application/DTMF-Relay; charset=utf-8"),
    Some("text/plain"),
    Some(""),
    None,
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let content_type = CONTENT_TYPES[usize::from(selector) % CONTENT_TYPES.len()];

    if let Ok(Some(digit)) = parse_info(content_type, body) {
        let mut merger = DigitMerger::new();
        let _ = merger.push(DigitSource::Info, digit.into_event(Instant::now()));
    }
});
