//! Answers arbitrary bytes as an SDP offer, as the INVITE body of any caller
//! reaches `answer_offer`.

#![no_main]

use std::net::SocketAddr;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let local_rtp = SocketAddr::from(([127, 0, 0, 1], 40000));
    let _ = ivr_verify::sip::sdp::answer_offer(data, local_rtp, 1);
});
