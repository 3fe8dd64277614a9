//! One digit stream from the three ways a peer can send DTMF.
//!
//! A gateway may relay one key press in more than one form: as an RFC 4733
//! telephone-event and as tones left in the audio, or as a telephone-event
//! and a SIP INFO. Each detector already reports a press once, so the
//! [`DigitMerger`] only has to pair reports from different sources. A report
//! is a repeat when an earlier press of the same key lies within
//! [`SAME_PRESS_WINDOW`] and no report from the same source was paired with
//! that press yet. Otherwise it is a new press.
//!
//! Reports from one source are never merged with each other, so quickly
//! typed repeats (`11`) stay two presses as long as each source reports
//! both.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::media::dtmf::DtmfEvent;

/// Largest time between two reports of one key press from different
/// sources.
///
/// The sources disagree on timing. An RFC 4733 report carries the arrival
/// of the first packet. An in-band report carries the estimated start of
/// the tone. An INFO request carries its own arrival, and some gateways
/// send it only when the key is released, one key-hold later. A second
/// press of the same key is no risk within this window, because it is only
/// paired with a press that its own source has not reported yet. So the
/// window covers a long key hold rather than the shortest press cycle
/// (about 80 ms: a 40 ms tone and a 40 ms pause).
// NOTE: one second is an estimate of the longest gateway delay, not a
// measured figure. A key held longer and reported by INFO only on release
// yields a second digit.
pub const SAME_PRESS_WINDOW: Duration = Duration::from_millis(1_000);

/// Maximum number of recent presses kept for pairing. At the 40 ms tone and
/// 40 ms pause this module assumes as the fastest cadence, a one-second
/// window contains at most 13 presses.
const MAX_RECENT_PRESSES: usize = 16;

/// Source of a key press.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigitSource {
    /// An RFC 4733 telephone-event in the RTP stream.
    Rfc4733,
    /// A SIP INFO request (`application/dtmf-relay` or `application/dtmf`).
    Info,
    /// Tones in the audio, found by the in-band detector.
    Inband,
}

impl DigitSource {
    /// Returns this source's bit in [`RecentPress::sources`].
    fn bit(self) -> u8 {
        match self {
            DigitSource::Rfc4733 => 1,
            DigitSource::Info => 2,
            DigitSource::Inband => 4,
        }
    }
}

/// A key press already reported to the call flow.
#[derive(Debug, Clone, Copy)]
struct RecentPress {
    /// The press as first reported.
    event: DtmfEvent,
    /// Bit set of the sources that reported this press.
    sources: u8,
}

/// Counters a merger keeps for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MergerStats {
    /// Key presses passed on to the call flow.
    pub presses: u64,
    /// Reports dropped as a second form of a press already passed on.
    pub duplicates: u64,
}

/// Sans-I/O merger of the digit reports of one call.
#[derive(Debug, Clone, Default)]
pub struct DigitMerger {
    /// Presses passed on within the last [`SAME_PRESS_WINDOW`], oldest
    /// first, which later reports from other sources may repeat.
    recent: VecDeque<RecentPress>,
    /// Counters since creation.
    stats: MergerStats,
}

impl DigitMerger {
    /// Creates a merger with no presses seen.
    pub fn new() -> DigitMerger {
        DigitMerger::default()
    }

    /// Returns the counters since creation.
    pub fn stats(&self) -> MergerStats {
        self.stats
    }

    /// Takes one report from a detector and returns it when it is a new key
    /// press, or `None` when it repeats a press already returned.
    ///
    /// The driver calls this for every event that [`super::rfc4733`],
    /// [`super::inband`] or [`super::info`] yields, as soon as it yields
    /// it. Reports may arrive out of time order across sources.
    #[must_use = "a returned key press must reach the call flow"]
    pub fn push(&mut self, source: DigitSource, event: DtmfEvent) -> Option<DtmfEvent> {
        self.forget_old_presses(event.received_at);

        // The earliest press of the same key that this source has not
        // reported yet, so that two quick presses pair in order.
        let paired = self.recent.iter_mut().find(|press| {
            press.event.digit == event.digit
                && press.sources & source.bit() == 0
                && time_between(press.event.received_at, event.received_at) <= SAME_PRESS_WINDOW
        });
        if let Some(press) = paired {
            press.sources |= source.bit();
            self.stats.duplicates += 1;
            return None;
        }

        if self.recent.len() == MAX_RECENT_PRESSES {
            self.recent.pop_front();
        }
        self.recent.push_back(RecentPress {
            event,
            sources: source.bit(),
        });
        self.stats.presses += 1;
        Some(event)
    }

    /// Drops presses that no report at `now` or later can repeat.
    fn forget_old_presses(&mut self, now: Instant) {
        self.recent.retain(|press| {
            now.saturating_duration_since(press.event.received_at) <= SAME_PRESS_WINDOW
        });
    }
}

/// Returns the absolute time between two instants.
fn time_between(a: Instant, b: Instant) -> Duration {
    a.saturating_duration_since(b)
        .max(b.saturating_duration_since(a))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::dtmf::Digit;

    fn event(key: char, start: Instant, ms: u64) -> DtmfEvent {
        DtmfEvent {
            digit: Digit::from_char(key).expect("a keypad key"),
            received_at: start + Duration::from_millis(ms),
        }
    }

    /// Pushes reports and returns the keys passed on.
    fn merge(merger: &mut DigitMerger, reports: &[(DigitSource, char, u64)]) -> String {
        let start = Instant::now();
        reports
            .iter()
            .filter_map(|&(source, key, ms)| merger.push(source, event(key, start, ms)))
            .map(|event| event.digit.as_char())
            .collect()
    }

    use DigitSource::{Inband, Info, Rfc4733};

    #[test]
    fn telephone_event_and_inband_once() {
        let mut merger = DigitMerger::new();
        let keys = merge(
            &mut merger,
            &[
                (Rfc4733, '1', 0),
                (Inband, '1', 45),
                (Rfc4733, '2', 300),
                (Inband, '2', 330),
            ],
        );
        assert_eq!(keys, "12");
        assert_eq!(merger.stats().duplicates, 2);
        assert_eq!(merger.stats().presses, 2);
    }

    #[test]
    fn info_and_telephone_event_once() {
        let mut merger = DigitMerger::new();
        // The INFO comes first here, and the telephone-event later.
        let keys = merge(&mut merger, &[(Info, '#', 0), (Rfc4733, '#', 120)]);
        assert_eq!(keys, "#");
    }

    #[test]
    fn all_three_sources_once() {
        let mut merger = DigitMerger::new();
        let keys = merge(
            &mut merger,
            &[(Rfc4733, '7', 0), (Inband, '7', 10), (Info, '7', 600)],
        );
        assert_eq!(keys, "7");
        assert_eq!(merger.stats().duplicates, 2);
    }

    #[test]
    fn quick_repeats_from_one_source_stay() {
        let mut merger = DigitMerger::new();
        let keys = merge(
            &mut merger,
            &[(Rfc4733, '1', 0), (Rfc4733, '1', 100), (Rfc4733, '1', 200)],
        );
        assert_eq!(keys, "111");
    }

    #[test]
    fn quick_repeats_from_two_sources_pair_up() {
        let mut merger = DigitMerger::new();
        // Each press is sent both ways; the in-band reports trail.
        let keys = merge(
            &mut merger,
            &[
                (Rfc4733, '1', 0),
                (Rfc4733, '1', 100),
                (Inband, '1', 20),
                (Inband, '1', 120),
            ],
        );
        assert_eq!(keys, "11");
        assert_eq!(merger.stats().duplicates, 2);
    }

    #[test]
    fn same_key_outside_window_is_new_press() {
        let mut merger = DigitMerger::new();
        let late = SAME_PRESS_WINDOW.as_millis() as u64 + 1;
        let keys = merge(&mut merger, &[(Rfc4733, '5', 0), (Inband, '5', late)]);
        assert_eq!(keys, "55");
    }

    #[test]
    fn other_key_is_new_press() {
        let mut merger = DigitMerger::new();
        let keys = merge(&mut merger, &[(Rfc4733, '5', 0), (Inband, '6', 10)]);
        assert_eq!(keys, "56");
    }

    #[test]
    fn earlier_inband_report_pairs() {
        let mut merger = DigitMerger::new();
        // The in-band time is the tone start, before the RTP report's
        // arrival, but the RTP report reaches the merger first.
        let keys = merge(&mut merger, &[(Rfc4733, '3', 500), (Inband, '3', 480)]);
        assert_eq!(keys, "3");
    }

    #[test]
    fn returned_event_is_the_first_report() {
        let mut merger = DigitMerger::new();
        let start = Instant::now();
        let first = event('9', start, 0);
        assert_eq!(merger.push(Inband, first), Some(first));
        assert_eq!(merger.push(Rfc4733, event('9', start, 30)), None);
    }

    #[test]
    fn long_sequence_keeps_bounded_memory() {
        let mut merger = DigitMerger::new();
        let start = Instant::now();
        for index in 0..1_000u64 {
            let key = char::from(b'0' + (index % 10) as u8);
            assert!(merger
                .push(Rfc4733, event(key, start, index * 100))
                .is_some());
            assert!(merger
                .push(Inband, event(key, start, index * 100 + 20))
                .is_none());
            assert!(merger.recent.len() <= MAX_RECENT_PRESSES);
        }
        assert_eq!(merger.stats().presses, 1_000);
    }
}
