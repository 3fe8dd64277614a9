//! Edge security of the SIP endpoint: who may start calls, how fast a source
//! may send, how many calls run at once, and which senders are dropped
//! unanswered.
//!
//! Everything here is sans-I/O: the rate limiter takes the time as a
//! parameter, and the endpoint applies the policy to each received message.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use ipnet::IpNet;

/// User-Agent substrings of SIP scanning tools, matched without regard to
/// case: the defaults of SIPVicious (`friendly-scanner`, later `sipvicious`),
/// sipcli and sip-scan, and `VaxSIPUserAgent`, which scanning bots copy from
/// the VaxVoIP SDK. Deployments add more through `EdgePolicy::scanner_user_agents`.
pub const DEFAULT_SCANNER_USER_AGENTS: &[&str] = &[
    "friendly-scanner",
    "sipvicious",
    "sipcli",
    "sip-scan",
    "vaxsipuseragent",
];

/// Treatment of a call attempt from a source outside the trusted peers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UntrustedAction {
    /// Answer the INVITE with 403 Forbidden; other requests are handled as usual.
    Reject,
    /// Send nothing back to any request outside a dialog, so a scanner learns
    /// nothing about this host.
    Drop,
}

/// A token bucket: a sustained rate and the burst allowed above it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    /// Tokens added per second: the sustained requests per second.
    pub requests_per_second: f64,
    /// Bucket size: requests accepted at once after a quiet period.
    pub burst: u32,
}

/// Settings of the SIP edge. `Default` gives the values documented per field.
#[derive(Clone, Debug, PartialEq)]
pub struct EdgePolicy {
    /// Networks whose hosts may start calls and whose P-Asserted-Identity and
    /// Remote-Party-ID are believed. Default: empty, so no source may start a
    /// call until the deployment names its carrier, SBC or PBX.
    pub trusted_peers: Vec<IpNet>,
    /// Treatment of an INVITE from an untrusted source. Default: `Reject` (403).
    pub untrusted_action: UntrustedAction,
    /// Rate limit per untrusted source IP. Default: 10 requests/s, burst 20,
    /// which leaves room for OPTIONS probes and a few retransmissions.
    pub untrusted_rate: RateLimit,
    /// Rate limit per trusted source IP. Default: 500 requests/s, burst 1000.
    /// An SBC carries every caller's traffic, so this must exceed the peak
    /// call rate times the messages of one call (an estimate of 6 to 10:
    /// INVITE, ACK, REFER, NOTIFY, BYE, responses and retransmissions).
    pub trusted_rate: RateLimit,
    /// Calls that may be offered or active at once; beyond it an INVITE gets
    /// 503 with Retry-After. Default: 200.
    pub max_concurrent_calls: usize,
    /// Retry-After of the 503 for a full or draining service. Default: 30 s.
    pub retry_after: Duration,
    /// Largest message accepted on any transport. Default: 65,535 bytes, the
    /// largest UDP payload (RFC 768 length field).
    pub max_message_bytes: usize,
    /// User-Agent substrings (case-insensitive) whose requests are dropped
    /// unanswered. Default: [`DEFAULT_SCANNER_USER_AGENTS`].
    pub scanner_user_agents: Vec<String>,
    /// Untrusted source IPs tracked by the rate limiter. When the table is
    /// full of busy sources, requests from a new untrusted source are
    /// dropped, which keeps the memory bounded under a spoofed flood.
    /// Trusted sources are always tracked. Default: 10,000.
    pub max_tracked_sources: usize,
    /// TCP and TLS connections that one untrusted source IP may hold open
    /// at once; the transport closes more at once. Trusted peers are exempt,
    /// because an SBC may carry many connections. Default: 8. An untrusted
    /// host cannot start calls, so one connection serves all it may do, and
    /// 8 leaves room for reconnects and several hosts behind one NAT.
    pub max_connections_per_source: usize,
    /// TCP and TLS connections accepted from all sources together, trusted
    /// peers included; the transport closes more at once. Default: 4,096,
    /// far below the 65,536 descriptors of `deploy/ivr-verify.service`,
    /// so RTP sockets (one per call) and the store still get descriptors.
    // NOTE: many untrusted hosts together can fill this cap and keep a
    // trusted SBC from connecting until their connections close (after
    // `first_message_timeout` when they stay silent).
    pub max_connections: usize,
    /// Time an accepted TCP or TLS connection has, from its start, to
    /// deliver its first complete SIP message; otherwise the transport
    /// closes it. CRLF keep-alives do not count, so a peer that trickles
    /// bytes cannot hold a descriptor for longer either. Default: 10 s,
    /// because a peer connects in order to send a request at once.
    pub first_message_timeout: Duration,
}

impl Default for EdgePolicy {
    fn default() -> Self {
        EdgePolicy {
            trusted_peers: Vec::new(),
            untrusted_action: UntrustedAction::Reject,
            untrusted_rate: RateLimit {
                requests_per_second: 10.0,
                burst: 20,
            },
            trusted_rate: RateLimit {
                requests_per_second: 500.0,
                burst: 1000,
            },
            max_concurrent_calls: 200,
            retry_after: Duration::from_secs(30),
            max_message_bytes: 65_535,
            scanner_user_agents: DEFAULT_SCANNER_USER_AGENTS
                .iter()
                .map(|agent| (*agent).to_string())
                .collect(),
            max_tracked_sources: 10_000,
            max_connections_per_source: 8,
            max_connections: 4_096,
            first_message_timeout: Duration::from_secs(10),
        }
    }
}

impl EdgePolicy {
    /// Returns whether `address` is in one of the trusted networks.
    pub fn is_trusted(&self, address: IpAddr) -> bool {
        let address = canonical_ip(address);
        self.trusted_peers.iter().any(|net| net.contains(&address))
    }

    /// Returns whether `user_agent` contains one of the scanner substrings.
    pub fn is_scanner(&self, user_agent: &str) -> bool {
        let user_agent = user_agent.to_ascii_lowercase();
        self.scanner_user_agents.iter().any(|scanner| {
            !scanner.is_empty() && user_agent.contains(&scanner.to_ascii_lowercase())
        })
    }
}

/// Counts of what the edge turned away, for logs and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EdgeCounters {
    /// Messages dropped because their source exceeded its rate limit.
    pub rate_limited: u64,
    /// INVITEs from untrusted sources answered 403.
    pub untrusted_rejected: u64,
    /// Requests from untrusted sources dropped unanswered.
    pub untrusted_dropped: u64,
    /// Requests dropped because of a scanner User-Agent.
    pub scanners_dropped: u64,
    /// INVITEs answered 503 because the concurrent-call limit was reached.
    pub over_capacity: u64,
    /// INVITEs answered 503 while draining for shutdown.
    pub draining_rejected: u64,
    /// Messages dropped for exceeding `max_message_bytes`.
    pub oversized: u64,
    /// In-dialog requests (ACK and CANCEL of our INVITE transactions
    /// included) from a source that is neither the IP the dialog's INVITE
    /// came from nor a trusted peer: answered 403 under
    /// `UntrustedAction::Reject`, dropped under `Drop`.
    pub foreign_in_dialog: u64,
}

/// How often the limiter logs drops of one source: at the first drop, then at
/// most once per interval with the count in between.
const RATE_LIMIT_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Rate limit of one kind of log line: the first occurrence is logged, then
/// at most one line per interval, which carries the count of occurrences
/// that were not logged in between.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct LogThrottle {
    /// When the last line was logged.
    logged_at: Option<Instant>,
    /// Occurrences since then that were not logged.
    suppressed: u64,
}

impl LogThrottle {
    /// Records one occurrence at `now`. Returns the count of occurrences
    /// suppressed before it when a line is due, None when it must not be logged.
    pub fn record(&mut self, now: Instant, interval: Duration) -> Option<u64> {
        let due = self
            .logged_at
            .is_none_or(|at| now.saturating_duration_since(at) >= interval);
        if !due {
            self.suppressed += 1;
            return None;
        }

        let suppressed = self.suppressed;
        self.logged_at = Some(now);
        self.suppressed = 0;
        Some(suppressed)
    }
}

/// One source's token bucket.
#[derive(Clone, Debug)]
struct Bucket {
    /// Tokens left, up to the burst.
    tokens: f64,
    /// When tokens were last added.
    refilled_at: Instant,
    /// Messages dropped since the last log line about this source.
    dropped_since_log: u64,
    /// When a drop of this source was last logged.
    logged_at: Option<Instant>,
}

/// Per-source token buckets (sans-I/O: time is a parameter).
#[derive(Debug, Default)]
pub(crate) struct RateLimiter {
    /// Buckets of trusted sources, never evicted.
    trusted: HashMap<IpAddr, Bucket>,
    /// Buckets of untrusted sources, at most `max_tracked_sources`.
    untrusted: HashMap<IpAddr, Bucket>,
}

impl RateLimiter {
    /// Takes one token for a message from `source`; returns false when the
    /// message must be dropped.
    pub fn allow(&mut self, policy: &EdgePolicy, source: IpAddr, now: Instant) -> bool {
        let source = canonical_ip(source);
        let trusted = policy.is_trusted(source);
        let limit = if trusted {
            policy.trusted_rate
        } else {
            policy.untrusted_rate
        };

        if !trusted
            && !self.untrusted.contains_key(&source)
            && self.untrusted.len() >= policy.max_tracked_sources
        {
            // Buckets that have refilled completely carry no state worth keeping.
            self.untrusted
                .retain(|_, bucket| refilled(bucket, limit, now) < f64::from(limit.burst));
            if self.untrusted.len() >= policy.max_tracked_sources {
                return false;
            }
        }

        let table = if trusted {
            &mut self.trusted
        } else {
            &mut self.untrusted
        };
        let bucket = table.entry(source).or_insert_with(|| Bucket {
            tokens: f64::from(limit.burst),
            refilled_at: now,
            dropped_since_log: 0,
            logged_at: None,
        });
        bucket.tokens = refilled(bucket, limit, now);
        bucket.refilled_at = now;

        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return true;
        }

        bucket.dropped_since_log += 1;
        let log_due = bucket
            .logged_at
            .is_none_or(|at| now.saturating_duration_since(at) >= RATE_LIMIT_LOG_INTERVAL);
        if log_due {
            tracing::warn!(
                %source,
                trusted,
                dropped = bucket.dropped_since_log,
                requests_per_second = limit.requests_per_second,
                burst = limit.burst,
                "source exceeds its SIP rate limit; dropping its messages"
            );
            bucket.logged_at = Some(now);
            bucket.dropped_since_log = 0;
        }
        false
    }
}

/// Returns the tokens of `bucket` at `now`, capped at the burst.
fn refilled(bucket: &Bucket, limit: RateLimit, now: Instant) -> f64 {
    let elapsed = now
        .saturating_duration_since(bucket.refilled_at)
        .as_secs_f64();
    (bucket.tokens + elapsed * limit.requests_per_second).min(f64::from(limit.burst))
}

/// Maps an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, seen on dual-stack
/// sockets) to its IPv4 form, so that IPv4 networks match it.
pub(crate) fn canonical_ip(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        IpAddr::V4(_) => address,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> EdgePolicy {
        EdgePolicy {
            trusted_peers: vec!["10.0.0.0/8".parse().unwrap()],
            untrusted_rate: RateLimit {
                requests_per_second: 2.0,
                burst: 3,
            },
            trusted_rate: RateLimit {
                requests_per_second: 10.0,
                burst: 50,
            },
            max_tracked_sources: 2,
            ..EdgePolicy::default()
        }
    }

    #[test]
    fn bucket_allows_burst_then_refills() {
        let policy = policy();
        let mut limiter = RateLimiter::default();
        let source: IpAddr = "192.0.2.1".parse().unwrap();
        let start = Instant::now();

        let allowed = (0..5)
            .filter(|_| limiter.allow(&policy, source, start))
            .count();
        assert_eq!(allowed, 3);

        let later = start + Duration::from_millis(500);
        assert!(
            limiter.allow(&policy, source, later),
            "one token after 0.5 s at 2/s"
        );
        assert!(!limiter.allow(&policy, source, later));
    }

    #[test]
    fn trusted_peer_gets_its_full_burst() {
        let policy = policy();
        let mut limiter = RateLimiter::default();
        let start = Instant::now();
        let trusted: IpAddr = "10.1.2.3".parse().unwrap();

        // Fill the untrusted table first: trusted sources must not be affected.
        for last in 1..=10u8 {
            let _ = limiter.allow(&policy, IpAddr::from([192, 0, 2, last]), start);
        }
        let allowed = (0..60)
            .filter(|_| limiter.allow(&policy, trusted, start))
            .count();
        assert_eq!(allowed, 50);
    }

    #[test]
    fn untrusted_table_is_bounded() {
        let policy = policy();
        let mut limiter = RateLimiter::default();
        let start = Instant::now();
        assert!(limiter.allow(&policy, "192.0.2.1".parse().unwrap(), start));
        assert!(limiter.allow(&policy, "192.0.2.2".parse().unwrap(), start));
        assert!(
            !limiter.allow(&policy, "192.0.2.3".parse().unwrap(), start),
            "a third busy source does not fit"
        );

        // Once the first two have refilled, their buckets are evicted.
        let later = start + Duration::from_secs(5);
        assert!(limiter.allow(&policy, "192.0.2.3".parse().unwrap(), later));
        assert!(limiter.untrusted.len() <= 2);
    }

    #[test]
    fn trust_matches_mapped_ipv4() {
        let policy = policy();
        assert!(policy.is_trusted("10.0.0.1".parse().unwrap()));
        assert!(policy.is_trusted("::ffff:10.0.0.1".parse().unwrap()));
        assert!(!policy.is_trusted("192.0.2.1".parse().unwrap()));
        assert!(!EdgePolicy::default().is_trusted("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn log_throttle_logs_once_per_interval() {
        let interval = Duration::from_secs(10);
        let mut throttle = LogThrottle::default();
        let start = Instant::now();

        assert_eq!(throttle.record(start, interval), Some(0));
        assert_eq!(throttle.record(start, interval), None);
        assert_eq!(
            throttle.record(start + Duration::from_secs(9), interval),
            None
        );
        assert_eq!(
            throttle.record(start + interval, interval),
            Some(2),
            "the line after the interval counts the suppressed occurrences"
        );
        assert_eq!(throttle.record(start + interval, interval), None);
    }

    #[test]
    fn scanner_user_agents_match_case_insensitively() {
        let policy = EdgePolicy::default();
        assert!(policy.is_scanner("friendly-scanner"));
        assert!(policy.is_scanner("SIPVicious 0.3.4"));
        assert!(policy.is_scanner("VaxSIPUserAgent/3.1"));
        assert!(!policy.is_scanner("Asterisk PBX 20.5.0"));
        assert!(!policy.is_scanner("Z 5.6.4 v2.10.20.4_1"));
    }
}
