//! In-process store for a single node. Nothing survives a restart.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError, RwLock};

use async_trait::async_trait;

use super::{CustomerRecord, Store, StoreError, TokenState};
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

/// Customers indexed by keyed hash, replaced as a whole.
#[derive(Debug, Default)]
struct CustomerIndex {
    /// Contract number hash to its customer.
    by_contract: HashMap<KeyedHash, CustomerRecord>,
    /// Phone number hash to the ids of the customers that registered it.
    by_phone: HashMap<KeyedHash, Vec<String>>,
}

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

/// Store kept in process memory, for a single node and for tests.
#[derive(Debug)]
pub struct MemoryStore {
    /// Customer index. Readers hold the lock only for one lookup, and
    /// `replace_customers` swaps in a fully built index.
    customers: RwLock<CustomerIndex>,
    /// Token ids. A mutex, because consuming reads and writes in one step.
    tokens: Mutex<TokenTable>,
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
        let mut index = CustomerIndex::default();
        let mut seen_ids = std::collections::HashSet::new();

        for customer in customers {
            if !seen_ids.insert(customer.customer_id.clone()) {
                return Err(StoreError::DuplicateCustomerId {
                    customer_id: customer.customer_id,
                });
            }
            let record = CustomerRecord {
                customer_id: customer.customer_id.clone(),
                mobile_e164: customer.mobile_e164.clone(),
            };
            for contract in &customer.contracts {
                if let Some(existing) = index.by_contract.get(contract) {
                    if existing.customer_id != customer.customer_id {
                        return Err(StoreError::DuplicateContract {
                            first: existing.customer_id.clone(),
                            second: customer.customer_id,
                        });
                    }
                }
                index.by_contract.insert(*contract, record.clone());
            }
            for phone in &customer.phones {
                let ids = index.by_phone.entry(*phone).or_default();
                if !ids.contains(&customer.customer_id) {
                    ids.push(customer.customer_id.clone());
                }
            }
        }

        *self
            .customers
            .write()
            .unwrap_or_else(PoisonError::into_inner) = index;
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
