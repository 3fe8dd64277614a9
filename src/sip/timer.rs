//! Transaction and dialog timers (RFC 3261 §17, table 4 in Appendix A).
//!
//! The endpoint never reads a clock. Each armed timer is a deadline stored
//! next to the state it belongs to, and [`crate::sip::Endpoint::poll_timeout`]
//! returns the earliest one. A [`TimerIndex`] finds that one without
//! visiting every transaction and call.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashSet};
use std::hash::Hash;
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
    ///
    /// Private to this module, so that code outside it arms timers through
    /// [`TimerIndex::arm`], which records the deadline in the index too.
    fn set(&mut self, timer: Timer, at: Instant) {
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

    /// Returns the deadline of every armed timer, in no particular order.
    pub fn deadlines(&self) -> impl Iterator<Item = Instant> + '_ {
        self.deadlines.iter().map(|(_, at)| *at)
    }
}

/// Number of entries up to which [`TimerIndex::needs_rebuild`] never
/// requests a rebuild, so that an endpoint with a handful of calls never
/// pays for one.
pub(crate) const REBUILD_MIN_ENTRIES: usize = 1024;

/// Entries allowed per timer table before [`TimerIndex::needs_rebuild`]
/// requests a rebuild. A table arms at most 3 timers at once (a call's
/// Retransmit2xx, H and SessionExpires), so a rebuild leaves at most 3 per
/// table, and at least 5 more arms per table come before the next one.
const REBUILD_ENTRIES_PER_TABLE: usize = 8;

/// Deadlines of many [`TimerTable`]s in one min-heap, so that the earliest
/// deadline of all of them costs O(log n) to find instead of a scan.
///
/// `K` names the owner of a table (a transaction or call key). Every arm
/// goes through [`TimerIndex::arm`], which pushes `(deadline, owner)`.
/// Disarming pushes and removes nothing: clearing a timer, replacing a
/// table or removing its owner leaves a stale entry behind. An entry is
/// current while its deadline is the earliest deadline of its owner's
/// table. Stale entries are dropped when they reach the top of the heap.
///
/// Invariant: every timer armed in a live table has an entry with its
/// deadline and owner. Hence the first current entry from the top has the
/// earliest deadline of all tables: any earlier deadline would be some
/// table's earliest and would have a current entry above it.
#[derive(Debug)]
pub(crate) struct TimerIndex<K> {
    /// Min-heap of `(deadline, owner)`, stale entries included.
    entries: BinaryHeap<Reverse<IndexEntry<K>>>,
    /// Sequence number of the next entry, which orders entries with equal
    /// deadlines so that `K` needs no ordering of its own.
    next_sequence: u64,
}

/// One armed deadline in a [`TimerIndex`].
#[derive(Debug)]
struct IndexEntry<K> {
    /// When the timer fires.
    at: Instant,
    /// Unique per index, so that the ordering by `(at, sequence)` is total
    /// and equality is identity.
    sequence: u64,
    /// The table the timer was armed in.
    owner: K,
}

impl<K> PartialEq for IndexEntry<K> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.sequence) == (other.at, other.sequence)
    }
}

impl<K> Eq for IndexEntry<K> {}

impl<K> PartialOrd for IndexEntry<K> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<K> Ord for IndexEntry<K> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.sequence).cmp(&(other.at, other.sequence))
    }
}

impl<K> Default for TimerIndex<K> {
    fn default() -> Self {
        TimerIndex {
            entries: BinaryHeap::new(),
            next_sequence: 0,
        }
    }
}

impl<K: Clone + Eq + Hash> TimerIndex<K> {
    /// Arms `timer` of `owner`'s `table` to fire at `at`, replacing an earlier
    /// deadline for it, and records the deadline in the index.
    pub fn arm(&mut self, table: &mut TimerTable, owner: K, timer: Timer, at: Instant) {
        table.set(timer, at);
        self.push(owner, at);
    }

    /// Returns the earliest deadline armed in any table, dropping the stale
    /// entries above it. `earliest_of` returns the earliest deadline of an
    /// owner's table, or None when the owner is gone.
    pub fn earliest(&mut self, earliest_of: impl Fn(&K) -> Option<Instant>) -> Option<Instant> {
        while let Some(Reverse(top)) = self.entries.peek() {
            if earliest_of(&top.owner) == Some(top.at) {
                return Some(top.at);
            }
            self.entries.pop();
        }
        None
    }

    /// Removes every entry due at `now` and returns the owners that have a
    /// timer due, each once, earliest deadline first. `earliest_of` is as
    /// for [`TimerIndex::earliest`].
    ///
    /// The caller must then fire every timer due at `now` in each returned
    /// table (as [`TimerTable::take_expired`] does), because their entries
    /// are gone.
    pub fn take_due(
        &mut self,
        now: Instant,
        earliest_of: impl Fn(&K) -> Option<Instant>,
    ) -> Vec<K> {
        let mut due = Vec::new();
        let mut seen = HashSet::new();
        while let Some(Reverse(top)) = self.entries.peek() {
            if top.at > now {
                break;
            }

            let current = earliest_of(&top.owner) == Some(top.at);
            let Some(Reverse(entry)) = self.entries.pop() else {
                break;
            };
            if current && seen.insert(entry.owner.clone()) {
                due.push(entry.owner);
            }
        }
        due
    }

    /// Returns whether the index has so many more entries than `tables`
    /// live tables can arm that [`TimerIndex::rebuild`] should run. A stale
    /// entry leaves the heap only when it reaches the top, so stale entries
    /// behind an earlier live deadline pile up: for example the expiries of
    /// a session timer refreshed every minute behind a one-day timer.
    pub fn needs_rebuild(&self, tables: usize) -> bool {
        let limit = REBUILD_MIN_ENTRIES.max(tables.saturating_mul(REBUILD_ENTRIES_PER_TABLE));
        self.entries.len() > limit
    }

    /// Replaces every entry with the deadlines armed in `tables` now, which
    /// drops all stale entries.
    pub fn rebuild<'a>(&mut self, tables: impl IntoIterator<Item = (K, &'a TimerTable)>) {
        let mut entries = Vec::new();
        for (owner, table) in tables {
            for at in table.deadlines() {
                entries.push(Reverse(IndexEntry {
                    at,
                    sequence: self.next_sequence,
                    owner: owner.clone(),
                }));
                self.next_sequence += 1;
            }
        }

        // Heapifying the whole vector at once costs O(n), not O(n log n).
        self.entries = BinaryHeap::from(entries);
    }

    /// Returns the number of entries, stale ones included.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    fn push(&mut self, owner: K, at: Instant) {
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        self.entries.push(Reverse(IndexEntry {
            at,
            sequence,
            owner,
        }));
    }
}

/// Returns the next retransmit interval: double the current one, capped at T2.
pub(crate) fn next_retransmit_interval(current: Duration) -> Duration {
    (current * 2).min(T2)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

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

    /// Timer tables by owner number, standing in for the endpoint's maps.
    type Tables = HashMap<u32, TimerTable>;

    fn earliest_in(tables: &Tables) -> impl Fn(&u32) -> Option<Instant> + '_ {
        |owner| tables.get(owner)?.earliest()
    }

    fn arm(
        index: &mut TimerIndex<u32>,
        tables: &mut Tables,
        owner: u32,
        timer: Timer,
        at: Instant,
    ) {
        index.arm(tables.entry(owner).or_default(), owner, timer, at);
    }

    #[test]
    fn index_earliest_after_arm() {
        let start = Instant::now();
        let mut index = TimerIndex::default();
        let mut tables = Tables::new();
        assert_eq!(index.earliest(earliest_in(&tables)), None);

        arm(&mut index, &mut tables, 1, Timer::H, start + TIMEOUT_64_T1);
        assert_eq!(
            index.earliest(earliest_in(&tables)),
            Some(start + TIMEOUT_64_T1)
        );

        arm(&mut index, &mut tables, 2, Timer::E, start + T1);
        assert_eq!(index.earliest(earliest_in(&tables)), Some(start + T1));
    }

    #[test]
    fn index_skips_cleared_and_removed() {
        let start = Instant::now();
        let mut index = TimerIndex::default();
        let mut tables = Tables::new();
        arm(&mut index, &mut tables, 1, Timer::G, start + T1);
        arm(&mut index, &mut tables, 1, Timer::H, start + TIMEOUT_64_T1);
        arm(&mut index, &mut tables, 2, Timer::J, start + T2);

        tables.get_mut(&1).unwrap().clear(Timer::G);
        assert_eq!(index.earliest(earliest_in(&tables)), Some(start + T2));

        tables.remove(&2);
        assert_eq!(
            index.earliest(earliest_in(&tables)),
            Some(start + TIMEOUT_64_T1)
        );

        tables.insert(1, TimerTable::default());
        assert_eq!(index.earliest(earliest_in(&tables)), None);
        assert_eq!(index.len(), 0);
    }

    #[test]
    fn index_rearm_to_later_deadline() {
        let start = Instant::now();
        let mut index = TimerIndex::default();
        let mut tables = Tables::new();
        arm(&mut index, &mut tables, 1, Timer::G, start + T1);
        arm(&mut index, &mut tables, 1, Timer::G, start + T2);

        assert_eq!(index.earliest(earliest_in(&tables)), Some(start + T2));
    }

    #[test]
    fn index_take_due_returns_each_owner_once() {
        let start = Instant::now();
        let mut index = TimerIndex::default();
        let mut tables = Tables::new();
        arm(&mut index, &mut tables, 1, Timer::G, start + T1);
        arm(&mut index, &mut tables, 1, Timer::H, start + T2);
        arm(&mut index, &mut tables, 2, Timer::E, start + T1 / 2);
        arm(&mut index, &mut tables, 3, Timer::K, start + T4);
        arm(&mut index, &mut tables, 4, Timer::J, start + T2);
        tables.remove(&4);

        assert!(index.take_due(start, earliest_in(&tables)).is_empty());
        assert_eq!(index.take_due(start + T2, earliest_in(&tables)), vec![2, 1]);

        // The caller fires what is due; owner 3 is not due yet, so its entry stays.
        for table in tables.values_mut() {
            table.take_expired(start + T2);
        }
        assert_eq!(index.earliest(earliest_in(&tables)), Some(start + T4));
    }

    #[test]
    fn index_take_due_keeps_same_deadline_owners() {
        let start = Instant::now();
        let mut index = TimerIndex::default();
        let mut tables = Tables::new();
        for owner in 0..5 {
            arm(&mut index, &mut tables, owner, Timer::J, start + T1);
        }

        let mut due = index.take_due(start + T1, earliest_in(&tables));
        due.sort_unstable();
        assert_eq!(due, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn index_rebuild_drops_stale_entries() {
        let start = Instant::now();
        let mut index = TimerIndex::default();
        let mut tables = Tables::new();
        let rearms = REBUILD_MIN_ENTRIES + 1;
        for step in 0..rearms {
            let offset = Duration::from_secs(step as u64);
            arm(
                &mut index,
                &mut tables,
                1,
                Timer::SessionExpires,
                start + offset,
            );
        }
        arm(&mut index, &mut tables, 2, Timer::H, start + TIMEOUT_64_T1);
        assert_eq!(index.len(), rearms + 1);
        assert!(index.needs_rebuild(tables.len()));

        index.rebuild(tables.iter().map(|(owner, table)| (*owner, table)));
        assert_eq!(index.len(), 2);
        assert!(!index.needs_rebuild(tables.len()));
        assert_eq!(
            index.earliest(earliest_in(&tables)),
            Some(start + TIMEOUT_64_T1)
        );
    }

    #[test]
    fn index_needs_rebuild_scales_with_tables() {
        let index: TimerIndex<u32> = TimerIndex::default();
        assert!(!index.needs_rebuild(0));

        let mut index = TimerIndex::default();
        let mut tables = Tables::new();
        let start = Instant::now();
        let owners = REBUILD_MIN_ENTRIES as u32;
        for owner in 0..owners {
            arm(&mut index, &mut tables, owner, Timer::G, start + T1);
            arm(&mut index, &mut tables, owner, Timer::H, start + T2);
        }
        // Two live entries per table are far below the limit of 8.
        assert!(!index.needs_rebuild(tables.len()));
        assert!(index.needs_rebuild(1));
    }
}
