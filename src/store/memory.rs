//! In-process store for a single node. Nothing survives a restart.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::Duration;

use async_trait::async_trait;

use super::index::{build_index, CustomerIndex};
use super::otp::{AfterCheck, OtpEntry};
use super::window::{self, Attempt};
use super::{
    AttemptDecision, AuditRecord, CustomerRecord, OtpCheck, Reservation, Store, StoreError,
    TokenState, AUDIT_RETENTION,
};
use crate::config::MAX_TOKEN_LIFETIME_MINUTES;
use crate::verify::customers::Customer;
use crate::verify::keyed_hash::KeyedHash;

/// Maximum number of token ids kept. One is recorded per transferred call and
/// kept until its token expires (at most an hour), so this allows a sustained
/// 277 transfers per second at the maximum token lifetime.
const MAX_TOKENS: usize = 1_000_000;

/// Number of token ids at which expired ids are first removed. Pruning walks
/// the whole map, so it runs only when the map has doubled since the last run.
const FIRST_PRUNE_AT: usize = 1024;

/// Maximum token lifetime in seconds, from the upper bound of
/// `token.lifetime_minutes`. A token issued now expires at most this long
/// from now, so an id whose expiry lies this long before the newest expiry
/// has certainly expired.
const MAX_TOKEN_LIFETIME_SECS: u64 = MAX_TOKEN_LIFETIME_MINUTES.unsigned_abs() * 60;

/// Maximum number of audit records kept. The memory store is for tests and
/// trials, so it keeps the newest records rather than grow without bound.
const MAX_AUDIT_RECORDS: usize = 100_000;

/// State of one recorded token id.
#[derive(Debug)]
struct TokenEntry {
    /// The token's `exp`, Unix seconds.
    expires_at: u64,
    /// Whether the token was introspected.
    used: bool,
}

/// Token ids and when to prune them.
#[derive(Debug)]
struct TokenTable {
    /// Recorded token ids.
    entries: HashMap<String, TokenEntry>,
    /// Map size at which the next prune runs.
    prune_at: usize,
}

/// Lockout counters and one-time codes, and when to prune them.
#[derive(Debug)]
struct GuessTable {
    /// Attempts per lockout key, with the window of the last reservation,
    /// which sets when the key can be dropped.
    attempts: HashMap<String, (u64, Vec<Attempt>)>,
    /// One-time code per customer id.
    otps: HashMap<String, OtpEntry>,
    /// Newest time passed to any operation, Unix milliseconds. Pruning
    /// compares against it, because `put_otp` gets no current time.
    newest_now_ms: u64,
    /// Combined size of both maps at which the next prune runs.
    prune_at: usize,
}

impl GuessTable {
    /// Drops expired counters and codes once the maps have doubled since the
    /// last prune, so that pruning costs amortised constant time.
    fn prune_if_due(&mut self) {
        if self.attempts.len() + self.otps.len() < self.prune_at {
            return;
        }

        let now_ms = self.newest_now_ms;
        self.attempts.retain(|_, (window_ms, attempts)| {
            window::expires_at_ms(attempts, *window_ms) > now_ms
        });
        self.otps.retain(|_, entry| entry.expires_at_ms > now_ms);
        self.prune_at = ((self.attempts.len() + self.otps.len()) * 2).max(FIRST_PRUNE_AT);
    }
}

/// Store kept in process memory, for a single node and for tests.
#[derive(Debug)]
pub struct MemoryStore {
    /// Customer index. Readers hold the lock only for one lookup, and
    /// `replace_customers` swaps in a fully built index.
    customers: RwLock<CustomerIndex>,
    /// Token ids. A mutex, because consuming reads and writes in one step.
    tokens: Mutex<TokenTable>,
    /// Lockout counters and one-time codes. A mutex, because reserving and
    /// checking read and write in one step.
    guesses: Mutex<GuessTable>,
    /// Audit records, oldest first.
    audit: Mutex<VecDeque<AuditRecord>>,
}

impl MemoryStore {
    /// Creates an empty store.
    pub fn new() -> MemoryStore {
        MemoryStore {
            customers: RwLock::new(CustomerIndex::default()),
            tokens: Mutex::new(TokenTable {
                entries: HashMap::new(),
                prune_at: FIRST_PRUNE_AT,
            }),
            guesses: Mutex::new(GuessTable {
                attempts: HashMap::new(),
                otps: HashMap::new(),
                newest_now_ms: 0,
                prune_at: FIRST_PRUNE_AT,
            }),
            audit: Mutex::new(VecDeque::new()),
        }
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

// A poisoned lock is taken over with `PoisonError::into_inner`: every write
// below is a single insert, update or swap, so a panic elsewhere cannot leave
// the data half changed.
#[async_trait]
impl Store for MemoryStore {
    async fn customer_by_contract(
        &self,
        contract: &KeyedHash,
    ) -> Result<Option<CustomerRecord>, StoreError> {
        let index = self
            .customers
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        Ok(index.by_contract.get(contract).cloned())
    }

    async fn customers_by_phone(&self, phone: &KeyedHash) -> Result<Vec<String>, StoreError> {
        let index = self
            .customers
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        Ok(index.by_phone.get(phone).cloned().unwrap_or_default())
    }

    async fn record_token(&self, jti: &str, expires_at_unix: u64) -> Result<(), StoreError> {
        let mut table = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);

        if table.entries.len() >= table.prune_at {
            let expired_before = expires_at_unix.saturating_sub(MAX_TOKEN_LIFETIME_SECS);
            table
                .entries
                .retain(|_, entry| entry.expires_at >= expired_before);
            table.prune_at = (table.entries.len() * 2).max(FIRST_PRUNE_AT);
        }
        if table.entries.len() >= MAX_TOKENS {
            return Err(StoreError::TokenCapacityExceeded { limit: MAX_TOKENS });
        }
        if table.entries.contains_key(jti) {
            return Err(StoreError::DuplicateToken);
        }

        table.entries.insert(
            jti.to_string(),
            TokenEntry {
                expires_at: expires_at_unix,
                used: false,
            },
        );
        Ok(())
    }

    async fn consume_token(&self, jti: &str, now_unix: u64) -> Result<TokenState, StoreError> {
        let mut table = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(entry) = table.entries.get_mut(jti) else {
            return Ok(TokenState::Unknown);
        };

        if entry.expires_at <= now_unix {
            table.entries.remove(jti);
            return Ok(TokenState::Unknown);
        }
        if entry.used {
            return Ok(TokenState::AlreadyUsed);
        }
        entry.used = true;
        Ok(TokenState::Fresh)
    }

    async fn replace_customers(&self, customers: Vec<Customer>) -> Result<(), StoreError> {
        let index = build_index(customers)?;
        *self
            .customers
            .write()
            .unwrap_or_else(PoisonError::into_inner) = index;
        Ok(())
    }

    async fn reserve_attempt(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
        now_ms: u64,
    ) -> Result<AttemptDecision, StoreError> {
        let reservation = Reservation::new()?;
        let window_ms = window::window_ms(window);
        let mut table = self.guesses.lock().unwrap_or_else(PoisonError::into_inner);

        table.newest_now_ms = table.newest_now_ms.max(now_ms);
        table.prune_if_due();

        let (key_window_ms, attempts) = table.attempts.entry(key.to_string()).or_default();
        *key_window_ms = window_ms;
        Ok(window::reserve(
            attempts,
            limit,
            window_ms,
            now_ms,
            reservation,
        ))
    }

    async fn release_attempt(
        &self,
        key: &str,
        reservation: &Reservation,
    ) -> Result<(), StoreError> {
        let mut table = self.guesses.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, attempts)) = table.attempts.get_mut(key) {
            window::release(attempts, reservation);
            if attempts.is_empty() {
                table.attempts.remove(key);
            }
        }
        Ok(())
    }

    async fn put_otp(
        &self,
        customer_id: &str,
        code: &KeyedHash,
        expires_at_ms: u64,
        max_entries: u32,
    ) -> Result<(), StoreError> {
        let mut table = self.guesses.lock().unwrap_or_else(PoisonError::into_inner);
        table.prune_if_due();
        table.otps.insert(
            customer_id.to_string(),
            OtpEntry {
                code: *code.as_bytes(),
                expires_at_ms,
                remaining: max_entries,
            },
        );
        Ok(())
    }

    async fn check_otp(
        &self,
        customer_id: &str,
        code: &KeyedHash,
        now_ms: u64,
    ) -> Result<OtpCheck, StoreError> {
        let mut table = self.guesses.lock().unwrap_or_else(PoisonError::into_inner);
        table.newest_now_ms = table.newest_now_ms.max(now_ms);

        let Some(entry) = table.otps.get_mut(customer_id) else {
            return Ok(OtpCheck::Missing);
        };
        let (result, after) = super::otp::check(entry, code, now_ms);
        if after == AfterCheck::Delete {
            table.otps.remove(customer_id);
        }
        Ok(result)
    }

    async fn append_audit(&self, record: &AuditRecord) -> Result<(), StoreError> {
        let mut audit = self.audit.lock().unwrap_or_else(PoisonError::into_inner);
        let retention_ms = window::window_ms(AUDIT_RETENTION);

        while audit
            .front()
            .is_some_and(|oldest| oldest.at_ms.saturating_add(retention_ms) <= record.at_ms)
            || audit.len() >= MAX_AUDIT_RECORDS
        {
            audit.pop_front();
        }
        audit.push_back(record.clone());
        Ok(())
    }

    async fn recent_audit(&self, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        let audit = self.audit.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(audit.iter().rev().take(limit).cloned().collect())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_store_conformance() {
        let store = MemoryStore::new();
        super::super::testing::run_store_conformance(&store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn parallel_reservations_within_limit() {
        let store: std::sync::Arc<dyn Store> = std::sync::Arc::new(MemoryStore::new());
        let handles = [store.clone(), store];
        super::super::testing::run_parallel_reservations(&handles, 50).await;
    }

    #[tokio::test]
    async fn prune_keeps_attempts_of_longer_windows() {
        let store = MemoryStore::new();
        let long = Duration::from_secs(3_600);
        let _ = store.reserve_attempt("long", 1, long, 1_000).await.unwrap();

        // With these the maps reach FIRST_PRUNE_AT keys, so the next
        // reservation prunes, well after the short windows ended.
        for i in 0..FIRST_PRUNE_AT - 1 {
            let _ = store
                .reserve_attempt(&format!("short-{i}"), 1, Duration::from_secs(1), 1_000)
                .await
                .unwrap();
        }
        let _ = store
            .reserve_attempt("trigger", 1, Duration::from_secs(1), 60_000)
            .await
            .unwrap();

        let (long_kept, short_kept) = {
            let table = store.guesses.lock().unwrap();
            (
                table.attempts.contains_key("long"),
                table.attempts.contains_key("short-0"),
            )
        };
        assert!(long_kept, "long-window key pruned");
        assert!(!short_kept, "expired key kept");
        let locked = store
            .reserve_attempt("long", 1, long, 60_000)
            .await
            .unwrap();
        assert!(
            matches!(locked, AttemptDecision::Locked { .. }),
            "{locked:?}"
        );
    }

    #[tokio::test]
    async fn audit_older_than_retention_dropped() {
        let store = MemoryStore::new();
        let mut old = super::super::testing::sample_audit_record("old", 1_000);
        store.append_audit(&old).await.unwrap();
        old.call_id = "new".to_string();
        old.at_ms = 1_000 + window::window_ms(AUDIT_RETENTION);
        store.append_audit(&old).await.unwrap();

        let kept = store.recent_audit(10).await.unwrap();
        let ids: Vec<&str> = kept.iter().map(|r| r.call_id.as_str()).collect();
        assert_eq!(ids, ["new"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn racing_consumers_get_one_fresh() {
        let store = std::sync::Arc::new(MemoryStore::new());
        store.record_token("jti", 2_000).await.unwrap();

        let mut tasks = Vec::new();
        for _ in 0..16 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store.consume_token("jti", 1_000).await.unwrap()
            }));
        }
        let mut fresh = 0;
        for task in tasks {
            if task.await.unwrap() == TokenState::Fresh {
                fresh += 1;
            }
        }
        assert_eq!(fresh, 1);
    }

    #[tokio::test]
    async fn expired_tokens_pruned_on_record() {
        let store = MemoryStore::new();
        for i in 0..FIRST_PRUNE_AT {
            store
                .record_token(&format!("old-{i}"), 1_000)
                .await
                .unwrap();
        }
        let later = 1_000 + MAX_TOKEN_LIFETIME_SECS + 1;
        store.record_token("new", later).await.unwrap();

        let table = store.tokens.lock().unwrap();
        assert_eq!(table.entries.len(), 1);
        assert!(table.entries.contains_key("new"));
    }

    #[tokio::test]
    async fn unexpired_tokens_kept_on_prune() {
        let store = MemoryStore::new();
        for i in 0..FIRST_PRUNE_AT {
            store.record_token(&format!("t-{i}"), 5_000).await.unwrap();
        }
        store
            .record_token("new", 5_000 + MAX_TOKEN_LIFETIME_SECS)
            .await
            .unwrap();
        assert_eq!(
            store.tokens.lock().unwrap().entries.len(),
            FIRST_PRUNE_AT + 1
        );
    }
}
