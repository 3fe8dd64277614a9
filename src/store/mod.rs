//! State that outlives a single call: registered customers and issued token
//! ids.
//!
//! Every store implements [`Store`] and passes the same conformance suite
//! (`testing::run_store_conformance`).
//! NOTE: only the in-process [`MemoryStore`] exists so far. A persistent
//! embedded store for a single node and Redis for several nodes come later.
//! Until then issued token ids are lost on restart, so a token introspected
//! after a restart reads as inactive.

pub mod config;
mod memory;
#[cfg(test)]
pub mod testing;

use async_trait::async_trait;

pub use config::{RedisConnection, StoreConfig};
pub use memory::MemoryStore;

use crate::verify::customers::Customer;
use crate::verify::keyed_hash::KeyedHash;

/// Customer data returned by a contract number lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerRecord {
    /// The contact center's customer reference.
    pub customer_id: String,
    /// Registered mobile in E.164, where one-time codes and callbacks go.
    pub mobile_e164: Option<String>,
}

/// Result of consuming a token id on introspection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenState {
    /// Recorded, unexpired and not introspected before. It is now consumed.
    Fresh,
    /// Recorded and unexpired, but introspected before.
    AlreadyUsed,
    /// Never recorded, or expired.
    Unknown,
}

/// Error from a store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Two customers in one replacement share a contract number.
    #[error("customers {first} and {second} share a contract number; fix the customers file")]
    DuplicateContract {
        /// Customer listed first.
        first: String,
        /// Customer listed second.
        second: String,
    },
    /// Two customers in one replacement have the same id.
    #[error("customer id {customer_id} occurs twice; fix the customers file")]
    DuplicateCustomerId {
        /// The repeated id.
        customer_id: String,
    },
    /// The token id was recorded before. Token ids are 128 random bits, so
    /// this points to a bug in the caller.
    #[error("token id was already recorded")]
    DuplicateToken,
    /// The store contains its maximum number of unexpired token ids.
    #[error("token store is full ({limit} unexpired token ids); tokens are issued faster than they expire")]
    TokenCapacityExceeded {
        /// Maximum number of token ids held.
        limit: usize,
    },
}

/// Storage of customers and token ids, shared by all calls and the HTTP API.
///
/// Contract and phone numbers are passed only as keyed hashes, so a store
/// never receives them in clear. The mobile number is the exception, because
/// one-time codes and callbacks need it.
#[async_trait]
pub trait Store: Send + Sync {
    /// Returns the customer that owns the contract number with this hash.
    async fn customer_by_contract(
        &self,
        contract: &KeyedHash,
    ) -> Result<Option<CustomerRecord>, StoreError>;

    /// Returns the ids of the customers that registered the phone number with
    /// this hash, in the order they were stored. Several customers may share
    /// one number, such as a family landline.
    async fn customers_by_phone(&self, phone: &KeyedHash) -> Result<Vec<String>, StoreError>;

    /// Records an issued token id, valid until `expires_at_unix` (Unix
    /// seconds, the token's `exp`). Call before the token leaves the service.
    async fn record_token(&self, jti: &str, expires_at_unix: u64) -> Result<(), StoreError>;

    /// Consumes a token id at `now_unix` (Unix seconds). Only the first call
    /// for a recorded, unexpired id returns [`TokenState::Fresh`], even when
    /// calls race.
    async fn consume_token(&self, jti: &str, now_unix: u64) -> Result<TokenState, StoreError>;

    /// Replaces all customers at once. Lookups see either the old or the new
    /// set, never a mix. On error the old set stays.
    async fn replace_customers(&self, customers: Vec<Customer>) -> Result<(), StoreError>;
}
