//! State that outlives a single call or is shared between nodes: registered
//! customers, issued token ids, lockout counters, one-time codes and the
//! audit trail.
//!
//! Every store implements [`Store`] and passes the same conformance suite
//! ([`testing::run_store_conformance`]):
//!
//! - [`MemoryStore`]: in process, lost on restart; for tests.
//! - [`EmbeddedStore`]: one redb file, for a single node (the default).
//! - [`RedisStore`]: Redis standalone, Sentinel or Cluster, for several nodes.
//!
//! Knowledge factors reach a store only as keyed hashes. Stores take the
//! current time as a parameter wherever a result depends on it, so the same
//! tests run against every store with made-up times.

mod audit;
mod codec;
pub mod config;
mod embedded;
mod index;
mod memory;
mod otp;
mod redis_store;
#[doc(hidden)]
pub mod testing;
mod window;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

pub use audit::{AuditRecord, FactorResult, AUDIT_RETENTION};
pub use config::{RedisConnection, StoreConfig};
pub use embedded::EmbeddedStore;
pub use memory::MemoryStore;
pub use redis_store::RedisStore;

use crate::verify::customers::Customer;
use crate::verify::keyed_hash::KeyedHash;

/// Customer data returned by a contract number lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerRecord {
    /// The contact center's customer reference.
    pub customer_id: String,
    /// Registered mobile in E.164, where one-time codes and callbacks go.
    pub mobile_e164: Option<String>,
    /// Keyed hash of the date of birth, checked when the policy requires it.
    pub date_of_birth: Option<KeyedHash>,
    /// Keyed hash of the postcode digits and house number.
    pub postcode: Option<KeyedHash>,
    /// Keyed hash of the last digits of the known IBAN.
    pub iban_last_digits: Option<KeyedHash>,
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

/// One recorded attempt, returned by [`Store::reserve_attempt`] so that the
/// caller can take it back with [`Store::release_attempt`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// Random id of the attempt, unique within its lockout key.
    id: String,
}

impl Reservation {
    /// Creates a reservation with a fresh random id.
    fn new() -> Result<Reservation, StoreError> {
        Ok(Reservation {
            id: codec::random_id()?,
        })
    }
}

/// Outcome of [`Store::reserve_attempt`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "an allowed attempt carries a reservation to release when the guess is right"]
pub enum AttemptDecision {
    /// The attempt is recorded and counts against the limit until the window
    /// passes or the caller releases it.
    Allowed {
        /// Handle for [`Store::release_attempt`].
        reservation: Reservation,
        /// Attempts left in the window after this one.
        remaining: u32,
    },
    /// The limit is reached. Nothing was recorded.
    Locked {
        /// Time until enough attempts leave the window for one more.
        retry_after: Duration,
    },
}

/// Outcome of [`Store::check_otp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtpCheck {
    /// The code matches. It is deleted, so it cannot be used again.
    Valid,
    /// The code does not match. One entry is used up.
    Invalid {
        /// Entries left before the code is exhausted.
        remaining: u32,
    },
    /// The code's lifetime has passed. It is deleted. A store that already
    /// dropped the expired code returns [`OtpCheck::Missing`] instead.
    Expired,
    /// Every entry was used on wrong codes. The code stays until it expires,
    /// so that further guesses keep failing.
    Exhausted,
    /// No code is stored for the customer.
    Missing,
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
    /// The embedded database file could not be created or opened.
    #[error("failed to open embedded store {path}: {source}; check the path, its permissions, and that no other process has it open")]
    EmbeddedOpen {
        /// The database file.
        path: std::path::PathBuf,
        /// The redb error.
        source: Box<redb::DatabaseError>,
    },
    /// A read or write of the embedded database failed.
    #[error("embedded store failed: {0}; check the disk and the file's permissions")]
    Embedded(Box<redb::Error>),
    /// The blocking task that runs an embedded store operation panicked or
    /// was cancelled.
    #[error("embedded store task did not finish: {0}")]
    EmbeddedTask(#[from] tokio::task::JoinError),
    /// The Redis settings cannot work, such as an empty list of nodes.
    #[error("invalid Redis settings: {reason}; fix [store] in the config file")]
    RedisConfig {
        /// Description of the problem, naming the setting.
        reason: String,
    },
    /// A Redis command failed, timed out, or found no server.
    #[error("Redis {operation} failed: {source}; check that Redis is reachable")]
    Redis {
        /// The store operation, such as `reserve_attempt`.
        operation: &'static str,
        /// The error from the Redis client.
        source: Box<redis::RedisError>,
    },
    /// A stored value does not decode, because another program wrote the key
    /// or a newer version of this service changed the format.
    #[error("stored {what} is malformed: {detail}")]
    Malformed {
        /// The kind of value, such as `customer record`.
        what: &'static str,
        /// The decoding error.
        detail: String,
    },
    /// The operating system's random generator failed.
    #[error("random generator failed; the operating system's entropy source is unavailable")]
    Random,
}

/// Storage shared by all calls, the HTTP API and, for Redis, all nodes.
///
/// Contract and phone numbers and the other knowledge factors are passed only
/// as keyed hashes, so a store never receives them in clear. The mobile
/// number is the exception, because one-time codes and callbacks need it.
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

    /// Replaces all customers at once. Lookups see either the old or the new
    /// set, never a mix. On error the old set stays.
    async fn replace_customers(&self, customers: Vec<Customer>) -> Result<(), StoreError>;

    /// Records an issued token id, valid until `expires_at_unix` (Unix
    /// seconds, the token's `exp`). Call before the token leaves the service.
    async fn record_token(&self, jti: &str, expires_at_unix: u64) -> Result<(), StoreError>;

    /// Consumes a token id at `now_unix` (Unix seconds). Only the first call
    /// for a recorded, unexpired id returns [`TokenState::Fresh`], even when
    /// calls race.
    async fn consume_token(&self, jti: &str, now_unix: u64) -> Result<TokenState, StoreError>;

    /// Counts the attempts recorded under `key` in the sliding window
    /// `(now_ms - window, now_ms]` and, below `limit`, records one more.
    /// Count and record are one atomic step, even across nodes, so parallel
    /// calls never get more than `limit` attempts per window.
    ///
    /// Call before checking a guess, and release the reservation when the
    /// guess was right. Attempts recorded with a later time than `now_ms`
    /// (by a node whose clock is ahead) count as well. `key` names what is
    /// guarded, such as a contract hash in hex, and must not contain
    /// caller-supplied digits in clear.
    async fn reserve_attempt(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
        now_ms: u64,
    ) -> Result<AttemptDecision, StoreError>;

    /// Takes back an attempt recorded by [`Store::reserve_attempt`], because
    /// the guess was right. Releasing an attempt that has left the window or
    /// was released before does nothing.
    async fn release_attempt(&self, key: &str, reservation: &Reservation)
        -> Result<(), StoreError>;

    /// Stores the one-time code of a customer, replacing any earlier one.
    /// The code is valid until `expires_at_ms` (Unix milliseconds) and
    /// accepts `max_entries` entries in total.
    async fn put_otp(
        &self,
        customer_id: &str,
        code: &KeyedHash,
        expires_at_ms: u64,
        max_entries: u32,
    ) -> Result<(), StoreError>;

    /// Checks an entered code against the customer's one-time code at
    /// `now_ms` (Unix milliseconds), in one atomic step. A valid code is
    /// deleted, and a wrong one uses up an entry. The codes are compared in
    /// constant time.
    async fn check_otp(
        &self,
        customer_id: &str,
        code: &KeyedHash,
        now_ms: u64,
    ) -> Result<OtpCheck, StoreError>;

    /// Appends a record to the audit trail, kept for [`AUDIT_RETENTION`].
    async fn append_audit(&self, record: &AuditRecord) -> Result<(), StoreError>;

    /// Returns up to `limit` audit records, newest first.
    async fn recent_audit(&self, limit: usize) -> Result<Vec<AuditRecord>, StoreError>;

    /// Checks that the store responds, for the health endpoint.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// Opens the store that `config` names. Connects to Redis or opens the redb
/// file now, so that a wrong setting fails at start-up.
pub async fn open_store(config: &StoreConfig) -> Result<Arc<dyn Store>, StoreError> {
    match config {
        StoreConfig::Memory => Ok(Arc::new(MemoryStore::new())),
        StoreConfig::Embedded { path } => Ok(Arc::new(EmbeddedStore::open(path).await?)),
        StoreConfig::Redis {
            connection,
            key_prefix,
        } => Ok(Arc::new(RedisStore::connect(connection, key_prefix).await?)),
    }
}

/// Replaces the customers in `store` with `customers`, as
/// `ivr-verify customers import` does.
pub async fn import_customers(
    store: &dyn Store,
    customers: Vec<Customer>,
) -> Result<(), StoreError> {
    store.replace_customers(customers).await
}
