//! Sliding-window attempt counting for the stores that keep the attempts of
//! a key as one list (memory and embedded). The Redis store runs the same
//! rules in a Lua script.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{AttemptDecision, Reservation};

/// One recorded attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Attempt {
    /// When it was recorded, Unix milliseconds.
    pub(crate) at_ms: u64,
    /// The reservation id, so that the attempt can be released.
    pub(crate) id: String,
}

/// Converts a window to milliseconds, saturating at `u64::MAX`.
pub(crate) fn window_ms(window: Duration) -> u64 {
    u64::try_from(window.as_millis()).unwrap_or(u64::MAX)
}

/// Drops the attempts that left the window `(now_ms - window_ms, now_ms]`.
/// Attempts later than `now_ms` stay, because another node's clock may be
/// ahead.
pub(crate) fn prune(attempts: &mut Vec<Attempt>, window_ms: u64, now_ms: u64) {
    if let Some(cutoff) = now_ms.checked_sub(window_ms) {
        attempts.retain(|attempt| attempt.at_ms > cutoff);
    }
}

/// Counts the attempts in the window and, below `limit`, records one more
/// with `reservation`'s id.
pub(crate) fn reserve(
    attempts: &mut Vec<Attempt>,
    limit: u32,
    window_ms: u64,
    now_ms: u64,
    reservation: Reservation,
) -> AttemptDecision {
    prune(attempts, window_ms, now_ms);
    attempts.sort_by_key(|attempt| attempt.at_ms);

    let count = u32::try_from(attempts.len()).unwrap_or(u32::MAX);
    if count >= limit {
        // Below the limit again once the oldest `count - limit + 1` attempts
        // have left the window, that is when attempt `count - limit` leaves.
        let leaving = usize::try_from(count - limit).unwrap_or(usize::MAX);
        let retry_after_ms = match attempts.get(leaving) {
            Some(attempt) => attempt
                .at_ms
                .saturating_add(window_ms)
                .saturating_sub(now_ms),
            None => window_ms,
        };
        return AttemptDecision::Locked {
            retry_after: Duration::from_millis(retry_after_ms),
        };
    }

    attempts.push(Attempt {
        at_ms: now_ms,
        id: reservation.id.clone(),
    });
    AttemptDecision::Allowed {
        reservation,
        remaining: limit - count - 1,
    }
}

/// Removes the attempt recorded with `reservation`, if it is still there.
pub(crate) fn release(attempts: &mut Vec<Attempt>, reservation: &Reservation) {
    attempts.retain(|attempt| attempt.id != reservation.id);
}

/// Unix milliseconds at which the last attempt leaves the window, after
/// which the list can be deleted.
pub(crate) fn expires_at_ms(attempts: &[Attempt], window_ms: u64) -> u64 {
    attempts
        .iter()
        .map(|attempt| attempt.at_ms.saturating_add(window_ms))
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reservation(id: &str) -> Reservation {
        Reservation { id: id.to_string() }
    }

    #[test]
    fn allows_up_to_limit_then_locks() {
        let mut attempts = Vec::new();
        for (step, expected_remaining) in [2, 1, 0].into_iter().enumerate() {
            let decision = reserve(
                &mut attempts,
                3,
                1_000,
                10_000 + step as u64,
                reservation(&step.to_string()),
            );
            assert!(
                matches!(decision, AttemptDecision::Allowed { remaining, .. } if remaining == expected_remaining),
                "attempt {step}: {decision:?}"
            );
        }
        let locked = reserve(&mut attempts, 3, 1_000, 10_500, reservation("x"));
        assert_eq!(
            locked,
            AttemptDecision::Locked {
                retry_after: Duration::from_millis(500)
            }
        );
        assert_eq!(attempts.len(), 3, "a locked attempt was recorded");
    }

    #[test]
    fn attempt_leaves_window_exactly_at_its_end() {
        let mut attempts = Vec::new();
        let _ = reserve(&mut attempts, 1, 1_000, 10_000, reservation("a"));
        let still = reserve(&mut attempts, 1, 1_000, 10_999, reservation("b"));
        assert!(matches!(still, AttemptDecision::Locked { .. }), "{still:?}");
        let after = reserve(&mut attempts, 1, 1_000, 11_000, reservation("c"));
        assert!(
            matches!(after, AttemptDecision::Allowed { .. }),
            "{after:?}"
        );
    }

    #[test]
    fn lowered_limit_waits_for_enough_attempts() {
        let mut attempts = Vec::new();
        for (at, id) in [(1_000, "a"), (2_000, "b"), (3_000, "c")] {
            let _ = reserve(&mut attempts, 5, 10_000, at, reservation(id));
        }
        let locked = reserve(&mut attempts, 2, 10_000, 4_000, reservation("d"));
        assert_eq!(
            locked,
            AttemptDecision::Locked {
                retry_after: Duration::from_millis(8_000)
            }
        );
    }

    #[test]
    fn zero_limit_always_locked() {
        let mut attempts = Vec::new();
        let decision = reserve(&mut attempts, 0, 1_000, 5_000, reservation("a"));
        assert_eq!(
            decision,
            AttemptDecision::Locked {
                retry_after: Duration::from_millis(1_000)
            }
        );
    }

    #[test]
    fn future_attempts_count() {
        let mut attempts = vec![Attempt {
            at_ms: 20_000,
            id: "ahead".to_string(),
        }];
        let decision = reserve(&mut attempts, 1, 1_000, 10_000, reservation("a"));
        assert!(
            matches!(decision, AttemptDecision::Locked { .. }),
            "{decision:?}"
        );
    }

    #[test]
    fn released_attempt_frees_slot() {
        let mut attempts = Vec::new();
        let AttemptDecision::Allowed {
            reservation: held, ..
        } = reserve(&mut attempts, 1, 1_000, 10_000, reservation("a"))
        else {
            panic!("first attempt locked");
        };
        release(&mut attempts, &held);
        let again = reserve(&mut attempts, 1, 1_000, 10_001, reservation("b"));
        assert!(
            matches!(again, AttemptDecision::Allowed { .. }),
            "{again:?}"
        );
        assert_eq!(expires_at_ms(&attempts, 1_000), 11_001);
    }
}
