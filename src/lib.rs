//! ivr-verify: verifies that the person calling a contact center is the
//! customer, over SIP, and hands the verified call to an agent with a signed
//! token.
//!
//! The protocol cores (`sip`, `media`, `flow`) are sans-I/O: they take input
//! and the current time as parameters and return actions, so each state
//! transition is testable without sockets or clocks. The `runtime` module is
//! the tokio edge that moves bytes and time between them.

pub mod api;
pub mod cli;
pub mod config;
pub mod flow;
pub mod media;
pub mod runtime;
pub mod sip;
pub mod sms;
pub mod store;
pub mod verify;
