//! Store in one redb file, for a single node. Survives restarts.
//!
//! Every operation that reads and then writes runs in one redb write
//! transaction, and redb allows one write transaction at a time, so each is
//! atomic. redb calls block, so they run on tokio's blocking thread pool.
//!
//! Expired entries are pruned lazily: every entry with a lifetime also gets
//! a row in [`EXPIRY`], and write transactions that know the current time
//! delete up to [`PRUNE_BATCH`] entries whose time has passed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redb::{Database, ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::codec;
use super::index::build_index;
use super::otp::{AfterCheck, OtpEntry};
use super::window::{self, Attempt};
use super::{
    AttemptDecision, AuditRecord, CustomerRecord, OtpCheck, Reservation, Store, StoreError,
    TokenState, AUDIT_RETENTION,
};
use crate::config::MAX_TOKEN_LIFETIME_MINUTES;
use crate::verify::customers::Customer;
use crate::verify::keyed_hash::KeyedHash;

/// Contract number hash to the customer record as JSON.
const CONTRACTS: TableDefinition<&[u8], &str> = TableDefinition::new("customers_by_contract");

/// Phone number hash to a JSON array of customer ids.
const PHONES: TableDefinition<&[u8], &str> = TableDefinition::new("customers_by_phone");

/// Token id to its `exp` (Unix seconds) and whether it was introspected.
const TOKENS: TableDefinition<&str, (u64, bool)> = TableDefinition::new("tokens");

/// Lockout key to its attempts as JSON.
const ATTEMPTS: TableDefinition<&str, &str> = TableDefinition::new("lockout_attempts");

/// Customer id to the one-time code entry as JSON.
const OTPS: TableDefinition<&str, &str> = TableDefinition::new("one_time_codes");

/// `(at_ms, sequence)` to the audit record as JSON. The sequence number
/// separates records written in the same millisecond.
const AUDIT: TableDefinition<(u64, u64), &str> = TableDefinition::new("audit");

/// `(expires_at_ms, tagged key)` of every entry with a lifetime. A row can
/// be stale when its entry was rewritten with a later expiry, so pruning
/// checks the entry itself before deleting it.
const EXPIRY: TableDefinition<(u64, &str), ()> = TableDefinition::new("expiry");

/// Maximum number of expired entries one write transaction deletes, so that
/// pruning a large backlog does not stall a call's lookup.
const PRUNE_BATCH: usize = 64;

/// Maximum token lifetime in milliseconds, from the upper bound of
/// `token.lifetime_minutes`. `record_token` gets no current time, but a
/// token issued now expires at most this long from now.
const MAX_TOKEN_LIFETIME_MS: u64 = MAX_TOKEN_LIFETIME_MINUTES.unsigned_abs() * 60 * 1000;

/// Tag of token ids in [`EXPIRY`].
const TAG_TOKEN: &str = "token";
/// Tag of lockout keys in [`EXPIRY`].
const TAG_ATTEMPTS: &str = "lockout";
/// Tag of one-time codes in [`EXPIRY`].
const TAG_OTP: &str = "otp";

/// The attempts of one lockout key, as stored.
#[derive(Debug, Default, Serialize, Deserialize)]
struct AttemptList {
    /// Window of the last reservation, which sets when the list expires.
    window_ms: u64,
    /// Attempts still in the window when last written.
    attempts: Vec<Attempt>,
}

/// Store in a redb file.
#[derive(Debug, Clone)]
pub struct EmbeddedStore {
    /// The open database, shared with the blocking tasks that use it.
    db: Arc<Database>,
    /// The database file, for errors.
    path: PathBuf,
}

impl EmbeddedStore {
    /// Opens the database at `path`, creating the file, its folder and the
    /// tables when missing. Fails when another process has the file open.
    pub async fn open(path: &Path) -> Result<EmbeddedStore, StoreError> {
        let owned = path.to_path_buf();
        let db = tokio::task::spawn_blocking(move || open_database(&owned)).await??;
        Ok(EmbeddedStore {
            db: Arc::new(db),
            path: path.to_path_buf(),
        })
    }

    /// Returns the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `operation` on the blocking thread pool.
    async fn run<T, F>(&self, operation: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || operation(&db)).await?
    }

    /// Runs `operation` in one write transaction and commits it.
    async fn write<T, F>(&self, operation: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTransaction) -> Result<T, StoreError> + Send + 'static,
    {
        self.run(move |db| {
            let txn = db.begin_write().map_err(db_error)?;
            let result = operation(&txn)?;
            txn.commit().map_err(db_error)?;
            Ok(result)
        })
        .await
    }
}

/// Creates or opens the file and makes sure every table exists, so that read
/// transactions never meet a missing table.
/// Makes the database file readable and writable by its owner only: it
/// holds mobile numbers in clear, customer ids and the audit trail.
#[cfg(unix)]
fn restrict_to_owner(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;

    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn restrict_to_owner(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

fn open_database(path: &Path) -> Result<Database, StoreError> {
    let open_error = |source| StoreError::EmbeddedOpen {
        path: path.to_path_buf(),
        source: Box::new(source),
    };

    if let Some(folder) = path
        .parent()
        .filter(|folder| !folder.as_os_str().is_empty())
    {
        std::fs::create_dir_all(folder).map_err(|error| {
            open_error(redb::DatabaseError::Storage(redb::StorageError::Io(error)))
        })?;
    }
    let db = Database::create(path).map_err(open_error)?;
    restrict_to_owner(path)
        .map_err(|error| open_error(redb::DatabaseError::Storage(redb::StorageError::Io(error))))?;

    let txn = db.begin_write().map_err(db_error)?;
    txn.open_table(CONTRACTS).map_err(db_error)?;
    txn.open_table(PHONES).map_err(db_error)?;
    txn.open_table(TOKENS).map_err(db_error)?;
    txn.open_table(ATTEMPTS).map_err(db_error)?;
    txn.open_table(OTPS).map_err(db_error)?;
    txn.open_table(AUDIT).map_err(db_error)?;
    txn.open_table(EXPIRY).map_err(db_error)?;
    txn.commit().map_err(db_error)?;
    Ok(db)
}

/// Converts any redb error into a [`StoreError`].
fn db_error<E: Into<redb::Error>>(error: E) -> StoreError {
    StoreError::Embedded(Box::new(error.into()))
}

/// Joins a tag and a key into an [`EXPIRY`] key. The NUL byte cannot occur in
/// a tag, so no two pairs give the same string.
fn tagged(tag: &str, key: &str) -> String {
    format!("{tag}\0{key}")
}

/// Records that the entry `key` of `tag` expires at `expires_at_ms`.
fn schedule_expiry(
    txn: &WriteTransaction,
    tag: &str,
    key: &str,
    expires_at_ms: u64,
) -> Result<(), StoreError> {
    let mut expiry = txn.open_table(EXPIRY).map_err(db_error)?;
    expiry
        .insert((expires_at_ms, tagged(tag, key).as_str()), ())
        .map_err(db_error)?;
    Ok(())
}

/// Deletes up to [`PRUNE_BATCH`] entries that expired at or before `now_ms`.
fn prune_expired(txn: &WriteTransaction, now_ms: u64) -> Result<(), StoreError> {
    let due: Vec<(u64, String)> = {
        let expiry = txn.open_table(EXPIRY).map_err(db_error)?;
        let mut due = Vec::new();
        for row in expiry
            .range::<(u64, &str)>(..(now_ms.saturating_add(1), ""))
            .map_err(db_error)?
            .take(PRUNE_BATCH)
        {
            let (key, _) = row.map_err(db_error)?;
            let (expires_at_ms, tagged_key) = key.value();
            due.push((expires_at_ms, tagged_key.to_string()));
        }
        due
    };

    for (expires_at_ms, tagged_key) in due {
        txn.open_table(EXPIRY)
            .map_err(db_error)?
            .remove((expires_at_ms, tagged_key.as_str()))
            .map_err(db_error)?;
        let Some((tag, key)) = tagged_key.split_once('\0') else {
            continue;
        };
        match tag {
            TAG_TOKEN => prune_token(txn, key, now_ms)?,
            TAG_ATTEMPTS => prune_attempts(txn, key, now_ms)?,
            TAG_OTP => prune_otp(txn, key, now_ms)?,
            _ => {}
        }
    }
    Ok(())
}

/// Deletes the token id `jti` if it expired at or before `now_ms`.
fn prune_token(txn: &WriteTransaction, jti: &str, now_ms: u64) -> Result<(), StoreError> {
    let mut tokens = txn.open_table(TOKENS).map_err(db_error)?;
    let expired = match tokens.get(jti).map_err(db_error)? {
        Some(entry) => entry.value().0.saturating_mul(1000) <= now_ms,
        None => false,
    };
    if expired {
        tokens.remove(jti).map_err(db_error)?;
    }
    Ok(())
}

/// Deletes the attempts of `key` if all have left their window at `now_ms`.
fn prune_attempts(txn: &WriteTransaction, key: &str, now_ms: u64) -> Result<(), StoreError> {
    let mut table = txn.open_table(ATTEMPTS).map_err(db_error)?;
    let expired = match table.get(key).map_err(db_error)? {
        Some(json) => {
            let list = decode_attempts(json.value())?;
            window::expires_at_ms(&list.attempts, list.window_ms) <= now_ms
        }
        None => false,
    };
    if expired {
        table.remove(key).map_err(db_error)?;
    }
    Ok(())
}

/// Deletes the one-time code of `customer_id` if it expired at `now_ms`.
fn prune_otp(txn: &WriteTransaction, customer_id: &str, now_ms: u64) -> Result<(), StoreError> {
    let mut table = txn.open_table(OTPS).map_err(db_error)?;
    let expired = match table.get(customer_id).map_err(db_error)? {
        Some(json) => decode_otp(json.value())?.expires_at_ms <= now_ms,
        None => false,
    };
    if expired {
        table.remove(customer_id).map_err(db_error)?;
    }
    Ok(())
}

fn decode_attempts(json: &str) -> Result<AttemptList, StoreError> {
    serde_json::from_str(json).map_err(|error| StoreError::Malformed {
        what: "lockout attempts",
        detail: error.to_string(),
    })
}

fn encode_json<T: Serialize>(what: &'static str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|error| StoreError::Malformed {
        what,
        detail: error.to_string(),
    })
}

fn decode_otp(json: &str) -> Result<OtpEntry, StoreError> {
    serde_json::from_str(json).map_err(|error| StoreError::Malformed {
        what: "one-time code",
        detail: error.to_string(),
    })
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn customer_by_contract(
        &self,
        contract: &KeyedHash,
    ) -> Result<Option<CustomerRecord>, StoreError> {
        let contract = *contract;
        self.run(move |db| {
            let txn = db.begin_read().map_err(db_error)?;
            let table = txn.open_table(CONTRACTS).map_err(db_error)?;
            match table.get(&contract.as_bytes()[..]).map_err(db_error)? {
                Some(json) => Ok(Some(codec::decode_customer(json.value().as_bytes())?)),
                None => Ok(None),
            }
        })
        .await
    }

    async fn customers_by_phone(&self, phone: &KeyedHash) -> Result<Vec<String>, StoreError> {
        let phone = *phone;
        self.run(move |db| {
            let txn = db.begin_read().map_err(db_error)?;
            let table = txn.open_table(PHONES).map_err(db_error)?;
            match table.get(&phone.as_bytes()[..]).map_err(db_error)? {
                Some(json) => codec::decode_ids(json.value().as_bytes()),
                None => Ok(Vec::new()),
            }
        })
        .await
    }

    async fn replace_customers(&self, customers: Vec<Customer>) -> Result<(), StoreError> {
        let index = build_index(customers)?;

        // Both tables are emptied and refilled in one transaction, so readers
        // see the old set until the commit and the new set after it.
        self.write(move |txn| {
            txn.delete_table(CONTRACTS).map_err(db_error)?;
            txn.delete_table(PHONES).map_err(db_error)?;

            let mut contracts = txn.open_table(CONTRACTS).map_err(db_error)?;
            for (hash, record) in &index.by_contract {
                let json = codec::encode_customer(record)?;
                contracts
                    .insert(&hash.as_bytes()[..], json.as_str())
                    .map_err(db_error)?;
            }

            let mut phones = txn.open_table(PHONES).map_err(db_error)?;
            for (hash, ids) in &index.by_phone {
                let json = codec::encode_ids(ids)?;
                phones
                    .insert(&hash.as_bytes()[..], json.as_str())
                    .map_err(db_error)?;
            }
            Ok(())
        })
        .await
    }

    async fn record_token(&self, jti: &str, expires_at_unix: u64) -> Result<(), StoreError> {
        let jti = jti.to_string();
        self.write(move |txn| {
            let expires_at_ms = expires_at_unix.saturating_mul(1000);
            prune_expired(txn, expires_at_ms.saturating_sub(MAX_TOKEN_LIFETIME_MS))?;

            {
                let mut tokens = txn.open_table(TOKENS).map_err(db_error)?;
                if tokens.get(jti.as_str()).map_err(db_error)?.is_some() {
                    return Err(StoreError::DuplicateToken);
                }
                tokens
                    .insert(jti.as_str(), (expires_at_unix, false))
                    .map_err(db_error)?;
            }
            schedule_expiry(txn, TAG_TOKEN, &jti, expires_at_ms)
        })
        .await
    }

    async fn consume_token(&self, jti: &str, now_unix: u64) -> Result<TokenState, StoreError> {
        let jti = jti.to_string();
        self.write(move |txn| {
            prune_expired(txn, now_unix.saturating_mul(1000))?;

            let mut tokens = txn.open_table(TOKENS).map_err(db_error)?;
            let Some((expires_at, used)) = tokens
                .get(jti.as_str())
                .map_err(db_error)?
                .map(|entry| entry.value())
            else {
                return Ok(TokenState::Unknown);
            };

            if expires_at <= now_unix {
                tokens.remove(jti.as_str()).map_err(db_error)?;
                return Ok(TokenState::Unknown);
            }
            if used {
                return Ok(TokenState::AlreadyUsed);
            }
            tokens
                .insert(jti.as_str(), (expires_at, true))
                .map_err(db_error)?;
            Ok(TokenState::Fresh)
        })
        .await
    }

    async fn reserve_attempt(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
        now_ms: u64,
    ) -> Result<AttemptDecision, StoreError> {
        let key = key.to_string();
        let reservation = Reservation::new()?;
        let window_ms = window::window_ms(window);

        self.write(move |txn| {
            prune_expired(txn, now_ms)?;

            let mut table = txn.open_table(ATTEMPTS).map_err(db_error)?;
            let mut list = match table.get(key.as_str()).map_err(db_error)? {
                Some(json) => decode_attempts(json.value())?,
                None => AttemptList::default(),
            };
            let decision =
                window::reserve(&mut list.attempts, limit, window_ms, now_ms, reservation);
            list.window_ms = window_ms;

            let json = encode_json("lockout attempts", &list)?;
            table
                .insert(key.as_str(), json.as_str())
                .map_err(db_error)?;
            drop(table);

            let expires_at_ms = window::expires_at_ms(&list.attempts, window_ms);
            schedule_expiry(txn, TAG_ATTEMPTS, &key, expires_at_ms)?;
            Ok(decision)
        })
        .await
    }

    async fn release_attempt(
        &self,
        key: &str,
        reservation: &Reservation,
    ) -> Result<(), StoreError> {
        let key = key.to_string();
        let reservation = reservation.clone();

        self.write(move |txn| {
            let mut table = txn.open_table(ATTEMPTS).map_err(db_error)?;
            let Some(mut list) = table
                .get(key.as_str())
                .map_err(db_error)?
                .map(|json| decode_attempts(json.value()))
                .transpose()?
            else {
                return Ok(());
            };

            window::release(&mut list.attempts, &reservation);
            if list.attempts.is_empty() {
                table.remove(key.as_str()).map_err(db_error)?;
            } else {
                let json = encode_json("lockout attempts", &list)?;
                table
                    .insert(key.as_str(), json.as_str())
                    .map_err(db_error)?;
            }
            Ok(())
        })
        .await
    }

    async fn put_otp(
        &self,
        customer_id: &str,
        code: &KeyedHash,
        expires_at_ms: u64,
        max_entries: u32,
    ) -> Result<(), StoreError> {
        let customer_id = customer_id.to_string();
        let entry = OtpEntry {
            code: *code.as_bytes(),
            expires_at_ms,
            remaining: max_entries,
        };

        self.write(move |txn| {
            let json = encode_json("one-time code", &entry)?;
            txn.open_table(OTPS)
                .map_err(db_error)?
                .insert(customer_id.as_str(), json.as_str())
                .map_err(db_error)?;
            schedule_expiry(txn, TAG_OTP, &customer_id, expires_at_ms)
        })
        .await
    }

    async fn check_otp(
        &self,
        customer_id: &str,
        code: &KeyedHash,
        now_ms: u64,
    ) -> Result<OtpCheck, StoreError> {
        let customer_id = customer_id.to_string();
        let code = *code;

        // Pruning runs after the check, so that an expired code still in the
        // table reads as expired rather than missing.
        self.write(move |txn| {
            let mut table = txn.open_table(OTPS).map_err(db_error)?;
            let Some(mut entry) = table
                .get(customer_id.as_str())
                .map_err(db_error)?
                .map(|json| decode_otp(json.value()))
                .transpose()?
            else {
                drop(table);
                prune_expired(txn, now_ms)?;
                return Ok(OtpCheck::Missing);
            };

            let (result, after) = super::otp::check(&mut entry, &code, now_ms);
            match after {
                AfterCheck::Delete => {
                    table.remove(customer_id.as_str()).map_err(db_error)?;
                }
                AfterCheck::Keep => {
                    let json = encode_json("one-time code", &entry)?;
                    table
                        .insert(customer_id.as_str(), json.as_str())
                        .map_err(db_error)?;
                }
            }
            drop(table);
            prune_expired(txn, now_ms)?;
            Ok(result)
        })
        .await
    }

    async fn append_audit(&self, record: &AuditRecord) -> Result<(), StoreError> {
        let json = codec::encode_audit(record)?;
        let at_ms = record.at_ms;

        self.write(move |txn| {
            let mut audit = txn.open_table(AUDIT).map_err(db_error)?;

            // Records older than the retention are deleted in batches, like
            // the other expired entries.
            let cutoff = at_ms.saturating_sub(window::window_ms(AUDIT_RETENTION));
            let expired: Vec<(u64, u64)> = audit
                .range::<(u64, u64)>(..(cutoff.saturating_add(1), 0))
                .map_err(db_error)?
                .take(PRUNE_BATCH)
                .map(|row| row.map(|(key, _)| key.value()))
                .collect::<Result<_, _>>()
                .map_err(db_error)?;
            for key in expired {
                audit.remove(key).map_err(db_error)?;
            }

            let sequence = match audit
                .range::<(u64, u64)>((at_ms, 0)..=(at_ms, u64::MAX))
                .map_err(db_error)?
                .next_back()
            {
                Some(row) => row.map_err(db_error)?.0.value().1.saturating_add(1),
                None => 0,
            };
            audit
                .insert((at_ms, sequence), json.as_str())
                .map_err(db_error)?;
            Ok(())
        })
        .await
    }

    async fn recent_audit(&self, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        self.run(move |db| {
            let txn = db.begin_read().map_err(db_error)?;
            let audit = txn.open_table(AUDIT).map_err(db_error)?;
            let mut records = Vec::new();
            for row in audit.iter().map_err(db_error)?.rev().take(limit) {
                let (_, json) = row.map_err(db_error)?;
                records.push(codec::decode_audit(json.value().as_bytes())?);
            }
            Ok(records)
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.run(|db| {
            let txn = db.begin_read().map_err(db_error)?;
            txn.open_table(TOKENS).map_err(db_error)?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[tokio::test]
    async fn database_file_owner_only() {
        use std::os::unix::fs::PermissionsExt;

        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("store.redb");

        let _store = EmbeddedStore::open(&path).await.unwrap();

        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    }

    #[tokio::test]
    async fn embedded_store_conformance() {
        let folder = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&folder.path().join("store.redb"))
            .await
            .unwrap();
        super::super::testing::run_store_conformance(&store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn parallel_reservations_within_limit() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("store.redb");
        let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(&path).await.unwrap());
        let handles = [store.clone(), store];
        super::super::testing::run_parallel_reservations(&handles, 50).await;
    }

    #[tokio::test]
    async fn file_holds_no_secret_in_clear() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("store.redb");
        {
            let store = EmbeddedStore::open(&path).await.unwrap();
            super::super::testing::write_sensitive_sample(&store).await;
        }

        // Every table, free page and header of the file at once.
        let bytes = std::fs::read(&path).unwrap();
        let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|window| window == needle);
        assert!(
            contains(b"C-SAMPLE"),
            "the sample was not written to the file"
        );
        for secret in super::super::testing::CLEAR_SECRETS {
            assert!(!contains(secret.as_bytes()), "{secret} stored in clear");
        }
    }

    #[tokio::test]
    async fn audit_older_than_retention_dropped() {
        let folder = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&folder.path().join("store.redb"))
            .await
            .unwrap();
        let mut record = super::super::testing::sample_audit_record("old", 1_000);
        store.append_audit(&record).await.unwrap();
        record.call_id = "same-ms".to_string();
        store.append_audit(&record).await.unwrap();
        record.call_id = "new".to_string();
        record.at_ms = 1_000 + window::window_ms(AUDIT_RETENTION);
        store.append_audit(&record).await.unwrap();

        let kept = store.recent_audit(10).await.unwrap();
        let ids: Vec<&str> = kept.iter().map(|r| r.call_id.as_str()).collect();
        assert_eq!(ids, ["new"]);
    }

    #[tokio::test]
    async fn data_survives_reopen() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("nested").join("store.redb");
        {
            let store = EmbeddedStore::open(&path).await.unwrap();
            store.record_token("kept", 2_000).await.unwrap();
            store
                .put_otp("C1", &KeyedHash([5; 32]), 2_000_000, 3)
                .await
                .unwrap();
        }
        let reopened = EmbeddedStore::open(&path).await.unwrap();
        let token = reopened.consume_token("kept", 1_000).await.unwrap();
        assert_eq!(token, TokenState::Fresh);
        let otp = reopened
            .check_otp("C1", &KeyedHash([5; 32]), 1_500_000)
            .await
            .unwrap();
        assert_eq!(otp, OtpCheck::Valid);
    }

    #[tokio::test]
    async fn second_open_of_same_file_fails() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("store.redb");
        let _first = EmbeddedStore::open(&path).await.unwrap();
        let second = EmbeddedStore::open(&path).await;
        assert!(
            matches!(second, Err(StoreError::EmbeddedOpen { .. })),
            "{second:?}"
        );
    }

    #[tokio::test]
    async fn expired_entries_pruned_lazily() {
        let folder = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&folder.path().join("store.redb"))
            .await
            .unwrap();
        store.record_token("old", 100).await.unwrap();
        store
            .put_otp("C1", &KeyedHash([1; 32]), 100_000, 3)
            .await
            .unwrap();
        let _ = store
            .reserve_attempt("k", 3, Duration::from_secs(10), 100_000)
            .await
            .unwrap();

        // Any write with a later time prunes what expired before it.
        let _ = store
            .reserve_attempt("other", 3, Duration::from_secs(10), 200_000)
            .await
            .unwrap();

        let (tokens, otps, attempts) = store
            .run(|db| {
                let txn = db.begin_read().map_err(db_error)?;
                let tokens = txn.open_table(TOKENS).map_err(db_error)?;
                let otps = txn.open_table(OTPS).map_err(db_error)?;
                let attempts = txn.open_table(ATTEMPTS).map_err(db_error)?;
                Ok((
                    tokens.get("old").map_err(db_error)?.is_some(),
                    otps.get("C1").map_err(db_error)?.is_some(),
                    attempts.get("k").map_err(db_error)?.is_some(),
                ))
            })
            .await
            .unwrap();
        assert!(!tokens, "expired token id kept");
        assert!(!otps, "expired one-time code kept");
        assert!(!attempts, "attempts outside the window kept");
    }
}
