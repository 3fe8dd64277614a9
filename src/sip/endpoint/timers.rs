//! Expiry of the transaction and dialog timers, and the owners that the
//! endpoint's timer index names.

use std::collections::HashMap;
use std::time::Instant;

use super::super::call::{Call, CallHandle};
use super::super::timer::{next_retransmit_interval, Timer, TimerTable, T2};
use super::super::transaction::{
    ClientPurpose, ClientState, ClientTransaction, ServerKey, ServerKind, ServerTransaction,
};
use super::{transmit_on, EndCause, Endpoint};

/// The transaction or call whose timer table an entry of the endpoint's
/// [`TimerIndex`](super::super::timer::TimerIndex) belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) enum TimerOwner {
    /// A server transaction, by its key in `server_transactions`.
    Server(ServerKey),
    /// A client transaction, by its branch in `client_transactions`.
    Client(String),
    /// The dialog timers of a call.
    Call(CallHandle),
}

/// Returns the earliest deadline armed in `owner`'s timer table, or None
/// when the owner is gone or has no timer armed.
///
/// It takes the three maps instead of the endpoint, so that it can run
/// while the endpoint's timer index is borrowed mutably.
pub(super) fn armed_earliest(
    server_transactions: &HashMap<ServerKey, ServerTransaction>,
    client_transactions: &HashMap<String, ClientTransaction>,
    calls: &HashMap<CallHandle, Call>,
    owner: &TimerOwner,
) -> Option<Instant> {
    match owner {
        TimerOwner::Server(key) => server_transactions.get(key)?.timers.earliest(),
        TimerOwner::Client(branch) => client_transactions.get(branch)?.timers.earliest(),
        TimerOwner::Call(handle) => calls.get(handle)?.timers.earliest(),
    }
}

impl Endpoint {
    pub(super) fn expire_server_timers(&mut self, now: Instant, key: &ServerKey) {
        let Some(transaction) = self.server_transactions.get_mut(key) else {
            return;
        };
        for timer in transaction.timers.take_expired(now) {
            match timer {
                Timer::G => {
                    if let ServerKind::Invite {
                        retransmit_interval,
                        ..
                    } = &mut transaction.kind
                    {
                        *retransmit_interval = next_retransmit_interval(*retransmit_interval);
                        self.timer_index.arm(
                            &mut transaction.timers,
                            TimerOwner::Server(key.clone()),
                            Timer::G,
                            now + *retransmit_interval,
                        );
                    }
                    if let Some(response) = transaction.last_response.clone() {
                        self.transmits
                            .push_back(transmit_on(transaction.route, response));
                    }
                }
                Timer::H => {
                    tracing::info!(
                        call_id = transaction.request.value("Call-ID").unwrap_or_default(),
                        "no ACK for a final response within 64*T1; INVITE transaction ended"
                    );
                    self.server_transactions.remove(key);
                    return;
                }
                Timer::I | Timer::J | Timer::L => {
                    self.server_transactions.remove(key);
                    return;
                }
                Timer::E | Timer::F | Timer::K | Timer::Retransmit2xx | Timer::SessionExpires => {}
            }
        }
    }

    pub(super) fn expire_client_timers(&mut self, now: Instant, key: &str) {
        let Some(transaction) = self.client_transactions.get_mut(key) else {
            return;
        };
        for timer in transaction.timers.take_expired(now) {
            match timer {
                Timer::E => {
                    transaction.retransmit_interval = match transaction.state {
                        ClientState::Trying => {
                            next_retransmit_interval(transaction.retransmit_interval)
                        }
                        ClientState::Proceeding | ClientState::Completed => T2,
                    };
                    self.timer_index.arm(
                        &mut transaction.timers,
                        TimerOwner::Client(key.to_string()),
                        Timer::E,
                        now + transaction.retransmit_interval,
                    );
                    self.transmits
                        .push_back(transmit_on(transaction.route, transaction.request.clone()));
                }
                Timer::F => {
                    let (call, purpose) = (transaction.call, transaction.purpose);
                    tracing::info!(
                        call_id = %transaction.call_id,
                        method = purpose.method_name(),
                        "request timed out without a final response"
                    );
                    self.client_transactions.remove(key);
                    self.finish_client_transaction(now, call, purpose, 408);
                    return;
                }
                Timer::K => {
                    self.client_transactions.remove(key);
                    return;
                }
                Timer::G
                | Timer::H
                | Timer::I
                | Timer::J
                | Timer::L
                | Timer::Retransmit2xx
                | Timer::SessionExpires => {}
            }
        }
    }

    pub(super) fn expire_call_timers(&mut self, now: Instant, handle: CallHandle) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        for timer in call.timers.take_expired(now) {
            match timer {
                Timer::Retransmit2xx => {
                    if let Some(pending) = &mut call.pending_2xx {
                        pending.retransmit_interval =
                            next_retransmit_interval(pending.retransmit_interval);
                        self.timer_index.arm(
                            &mut call.timers,
                            TimerOwner::Call(handle),
                            Timer::Retransmit2xx,
                            now + pending.retransmit_interval,
                        );
                        self.transmits
                            .push_back(transmit_on(call.route, pending.response.clone()));
                    }
                }
                Timer::H => {
                    // RFC 3261 §13.3.1.4: without an ACK the session is ended with BYE.
                    tracing::info!(call_id = %call.call_id, "no ACK for our 2xx within 64*T1; sending BYE");
                    call.pending_2xx = None;
                    call.timers = TimerTable::default();
                    if let Err(error) =
                        self.send_in_dialog(now, handle, ClientPurpose::Bye, Vec::new())
                    {
                        tracing::warn!(%error, "could not send BYE after the ACK timeout");
                    }
                    self.end_call(now, handle, EndCause::AckTimeout);
                    return;
                }
                Timer::SessionExpires => {
                    // RFC 4028 §10: the side that does not refresh sends BYE
                    // when the session expires without a refresh.
                    tracing::info!(call_id = %call.call_id, "session interval passed without a refresh; sending BYE");
                    call.timers = TimerTable::default();
                    if let Err(error) =
                        self.send_in_dialog(now, handle, ClientPurpose::Bye, Vec::new())
                    {
                        tracing::warn!(%error, "could not send BYE after the session expired");
                    }
                    self.end_call(now, handle, EndCause::SessionExpired);
                    return;
                }
                Timer::E | Timer::F | Timer::G | Timer::I | Timer::J | Timer::K | Timer::L => {}
            }
        }
    }
}
