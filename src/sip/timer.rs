//! Transaction and dialog timers (RFC 3261 §17, table 4 in Appendix A).
//!
//! The endpoint never reads a clock. Each armed timer is a deadline stored
//! next to the state it belongs to, and [`crate::sip::Endpoint::poll_timeout`]
//! returns the earliest one.

use std::time::{Duration, Instant};

/// Round-trip time estimate (RFC 3261 §17.1.1.1): the first retransmit interval.
pub const T1: Duration = Duration::from_millis(500);

/// Maximum retransmit interval for non-INVITE requests and INVITE responses (RFC 3261 §17.1.2.2).
pub const T2: Duration = Duration::from_secs(4);

/// Maximum time a message can remain in the network (RFC 3261 §17.1.2.2).
pub const T4: Duration = Duration::from_secs(5);

/// Transaction timeout, 64·T1 = 32 s (RFC 3261 §17.1.1.2, used for Timers B, F, H, J).
pub const TIMEOUT_64_T1: Duration = Duration::from_secs(32);

/// Named timers of the transactions and dialogs this endpoint runs.
///
/// Timers A, B and D belong to INVITE client transactions, which this
/// endpoint never starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Timer {
    /// Fires while our non-INVITE request has no final response: retransmits it,
    /// first after T1, then doubling up to T2 (RFC 3261 §17.1.2.2).
    E,
    /// Fires 64·T1 after our non-INVITE request was sent without a final response:
    /// the request timed out (RFC 3261 §17.1.2.2).
    F,
    /// Fires while our non-2xx final response to an INVITE has no ACK: retransmits
    /// it, first after T1, then doubling up to T2 (RFC 3261 §17.2.1).
    G,
    /// Fires 64·T1 after our final response to an INVITE if no ACK arrived: ends the
    /// transaction, and after a 2xx also sends BYE (RFC 3261 §13.3.1.4, §17.2.1).
    H,
    /// Fires T4 after the ACK for a non-2xx final response: ends the INVITE server
    /// transaction, which stops absorbing ACK retransmissions (RFC 3261 §17.2.1).
    I,
    /// Fires 64·T1 after the final response to a non-INVITE request: ends the server
    /// transaction, which stops resending its response to retransmissions (RFC 3261 §17.2.2).
    J,
    /// Fires T4 after our non-INVITE request got a final response: ends the client
    /// transaction, which stops absorbing response retransmissions (RFC 3261 §17.1.2.2).
    K,
    /// Fires 64·T1 after our 2xx to an INVITE: ends the accepted INVITE server
    /// transaction, which until then resends the 2xx to retransmitted INVITEs (RFC 6026).
    L,
    /// Fires on the Timer G schedule while our 2xx to an INVITE has no ACK:
    /// retransmits the 2xx (RFC 3261 §13.3.1.4).
    Retransmit2xx,
    /// Fires when the session interval (RFC 4028) has passed without a
    /// refreshing re-INVITE from the peer, less the margin of §10: sends BYE.
    SessionExpires,
}

/// Deadlines of the timers armed for one transaction or dialog.
#[derive(Clone, Debug, Default)]
pub(crate) struct TimerTable {
    /// Armed timers with their deadlines. `set` replaces an earlier deadline, so each timer occurs once.
    deadlines: Vec<(Timer, Instant)>,
}

impl TimerTable {
    /// Arms `timer` to fire at `at`, replacing an earlier deadline for it.
    pub fn set(&mut self, timer: Timer, at: Instant) {
        self.clear(timer);
        self.deadlines.push((timer, at));
    }

    /// Disarms `timer`; does nothing when it is not armed.
    pub fn clear(&mut self, timer: Timer) {
        self.deadlines.retain(|(armed, _)| *armed != timer);
    }

    /// Returns the earliest deadline.
    pub fn earliest(&self) -> Option<Instant> {
        self.deadlines.iter().map(|(_, at)| *at).min()
    }

    /// Disarms and returns the timers due at `now`, earliest first.
    pub fn take_expired(&mut self, now: Instant) -> Vec<Timer> {
        let mut expired: Vec<(Timer, Instant)> = self
            .deadlines
            .iter()
            .copied()
            .filter(|(_, at)| *at <= now)
            .collect();
        expired.sort_by_key(|(_, at)| *at);
        self.deadlines.retain(|(_, at)| *at > now);
        expired.into_iter().map(|(timer, _)| timer).collect()
    }
}

/// Returns the next retransmit interval: double the current one, capped at T2.
pub(crate) fn next_retransmit_interval(current: Duration) -> Duration {
    (current * 2).min(T2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retransmit_interval_doubles_to_t2() {
        let mut interval = T1;
        let mut seen = Vec::new();
        for _ in 0..6 {
            seen.push(interval.as_millis());
            interval = next_retransmit_interval(interval);
        }
        assert_eq!(seen, vec![500, 1000, 2000, 4000, 4000, 4000]);
    }

    #[test]
    fn timer_table_returns_expired_in_order() {
        let start = Instant::now();
        let mut table = TimerTable::default();
        table.set(Timer::H, start + TIMEOUT_64_T1);
        table.set(Timer::G, start + T1);
        table.set(Timer::G, start + T2);
        assert_eq!(table.earliest(), Some(start + T2));
        assert!(table.take_expired(start).is_empty());
        assert_eq!(
            table.take_expired(start + TIMEOUT_64_T1),
            vec![Timer::G, Timer::H]
        );
        assert_eq!(table.earliest(), None);
    }

    #[test]
    fn timeout_is_64_t1() {
        assert_eq!(TIMEOUT_64_T1, T1 * 64);
    }
}
