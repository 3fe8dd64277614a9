//! Fixed-width histograms and the counters of one load run.

use std::sync::Mutex;

/// Counts of samples in buckets of `bucket_us` microseconds, up to
/// `max_us`; larger samples land in the last bucket.
pub struct Histogram {
    bucket_us: u64,
    counts: Vec<u64>,
    total: u64,
    max_seen_us: u64,
}

impl Histogram {
    pub fn new(bucket_us: u64, max_us: u64) -> Histogram {
        let buckets = usize::try_from(max_us / bucket_us + 1).unwrap_or(usize::MAX);
        Histogram {
            bucket_us,
            counts: vec![0; buckets],
            total: 0,
            max_seen_us: 0,
        }
    }

    pub fn record(&mut self, value_us: u64) {
        let index = usize::try_from(value_us / self.bucket_us)
            .unwrap_or(usize::MAX)
            .min(self.counts.len() - 1);
        self.counts[index] += 1;
        self.total += 1;
        self.max_seen_us = self.max_seen_us.max(value_us);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// Returns the upper edge of the bucket holding quantile `q` (0..=1),
    /// in milliseconds, or `None` without samples.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((self.total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                let upper_us = (index as u64 + 1) * self.bucket_us;
                return Some(upper_us.min(self.max_seen_us.max(1)) as f64 / 1000.0);
            }
        }
        Some(self.max_seen_us as f64 / 1000.0)
    }

    pub fn max_ms(&self) -> f64 {
        self.max_seen_us as f64 / 1000.0
    }
}

/// Reason a call failed, for the summary.
#[derive(Debug, Clone, Copy)]
pub enum Failure {
    /// No final response to the INVITE, or one that was not 2xx.
    Setup,
    /// The 200 OK carried no usable SDP.
    Sdp,
    /// No REFER within the timeout after the digits.
    NoRefer,
    /// The REFER carried a token whose `acr` was not the expected level,
    /// so at least one digit did not reach the flow.
    WrongLevel,
    /// No 200 for our NOTIFY, or no BYE after it.
    Teardown,
    /// A socket could not be bound or used.
    Socket,
}

/// Everything measured in one run, shared by all call tasks.
pub struct Stats {
    pub inner: Mutex<Inner>,
}

pub struct Inner {
    /// INVITE sent → 200 OK received (RFC 6076 session request delay).
    pub setup: Histogram,
    /// Last key's first packet sent → REFER received.
    pub digits_to_refer: Histogram,
    /// |RTP inter-arrival − 20 ms| of consecutive received packets.
    pub jitter: Histogram,
    pub started: u64,
    pub completed: u64,
    pub failed: u64,
    pub failures: Vec<(Failure, u64)>,
    pub digits_lost: u64,
    pub rtp_received: u64,
    pub rtp_late: u64,
    pub rtp_sent: u64,
}

impl Stats {
    pub fn new() -> Stats {
        Stats {
            inner: Mutex::new(Inner {
                setup: Histogram::new(10, 10_000_000),
                digits_to_refer: Histogram::new(100, 60_000_000),
                jitter: Histogram::new(10, 200_000),
                started: 0,
                completed: 0,
                failed: 0,
                failures: Vec::new(),
                digits_lost: 0,
                rtp_received: 0,
                rtp_late: 0,
                rtp_sent: 0,
            }),
        }
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn fail(&self, failure: Failure) {
        let mut inner = self.lock();
        inner.failed += 1;
        if matches!(failure, Failure::WrongLevel) {
            inner.digits_lost += 1;
        }
        let name = format!("{failure:?}");
        match inner
            .failures
            .iter_mut()
            .find(|(kind, _)| format!("{kind:?}") == name)
        {
            Some((_, count)) => *count += 1,
            None => inner.failures.push((failure, 1)),
        }
    }
}
