//! Store in Redis (standalone, Sentinel or Cluster), shared by several nodes.
//!
//! Every read-modify-write runs as one Lua script on one key, so it is atomic
//! across nodes and works in Redis Cluster, where a script may only touch
//! keys of one hash slot. Every key starts with the configured prefix.
//!
//! Keys, after the prefix:
//!
//! | key                               | type   | lifetime                   |
//! |-----------------------------------|--------|----------------------------|
//! | `customers:generation`            | string | none (a counter)           |
//! | `customers:current`               | string | none                       |
//! | `customers:{gen}:contracts`       | hash   | none while current         |
//! | `customers:{gen}:phones`          | hash   | none while current         |
//! | `token:{jti}`                     | string | until the token's `exp`    |
//! | `lockout:{key}`                   | zset   | until the newest attempt leaves the window |
//! | `otp:{customer_id}`               | hash   | until the code expires     |
//! | `audit`                           | stream | [`AUDIT_RETENTION`]        |
//!
//! Customer hashes use the keyed hash in hex as field name, so no number is
//! stored in clear except the registered mobile.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{
    Cmd, ConnectionAddr, IntoConnectionInfo, Pipeline, RedisError, RedisFuture, Script, Value,
};

use super::codec;
use super::index::build_index;
use super::window;
use super::{
    AttemptDecision, AuditRecord, CustomerRecord, OtpCheck, RedisConnection, Reservation, Store,
    StoreError, TokenState, AUDIT_RETENTION,
};
use crate::verify::customers::Customer;
use crate::verify::keyed_hash::KeyedHash;

/// Time allowed for one command. A caller waits in silence while a lookup
/// runs, and the call flow gives a lookup 2 seconds in total (two commands
/// plus a reconnect), so a hung Redis fails the lookup well within that.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);

/// Time allowed to open a TCP connection to Redis or a Sentinel.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Reconnect attempts after a connection drops, before the pending commands
/// fail. The next command starts a new round, so a Redis that comes back is
/// used again without a new store handle.
const RECONNECT_RETRIES: usize = 3;

/// Maximum wait between two reconnect attempts.
const MAX_RECONNECT_DELAY: Duration = Duration::from_millis(200);

/// Fields written per pipeline when customers are replaced. Large enough to
/// keep round trips few, small enough to keep each request well under
/// Redis's 512 MB argument limit and the response timeout.
const CUSTOMER_BATCH: usize = 1_000;

/// How long a replaced customer generation stays readable. A lookup reads
/// the current generation number and then the hash, so the old hash must
/// outlive every lookup that started before the switch.
const OLD_GENERATION_GRACE: Duration = Duration::from_secs(60);

/// Lifetime of a customer generation while it is being written. Made
/// permanent just before it becomes current, so an import that dies halfway
/// leaves nothing behind after this time.
const IMPORT_TTL: Duration = Duration::from_secs(60 * 60);

/// Largest millisecond value passed to a script. Lua numbers are doubles,
/// which hold integers exactly up to 2^53, and Redis expiry times must fit
/// in a signed 64-bit count of milliseconds.
const MAX_SCRIPT_MS: u64 = 1 << 52;

/// Counts the attempts of one lockout key in the window and, below the
/// limit, records one more. KEYS[1] is the sorted set of attempts (score:
/// time in ms, member: reservation id). ARGV: now_ms, window_ms, limit,
/// reservation id. Returns `{1, remaining}` or `{0, retry_after_ms}`.
const RESERVE_SCRIPT: &str = r"
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
if now >= window then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
end
local count = redis.call('ZCARD', KEYS[1])
if count >= limit then
  local leaving = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
  local retry = window
  if leaving[2] then
    retry = tonumber(leaving[2]) + window - now
  end
  return {0, retry}
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
local newest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[1], tonumber(newest[2]) + window - now)
return {1, limit - count - 1}
";

/// Consumes a token id. KEYS[1] contains `exp:used`. ARGV[1] is now in Unix
/// seconds. Returns 0 (unknown or expired), 1 (fresh, now used) or 2
/// (already used).
const CONSUME_TOKEN_SCRIPT: &str = r"
local value = redis.call('GET', KEYS[1])
if not value then
  return 0
end
local separator = string.find(value, ':', 1, true)
if not separator then
  return redis.error_reply('malformed token entry')
end
local expires_at = tonumber(string.sub(value, 1, separator - 1))
if expires_at == nil or expires_at <= tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[1])
  return 0
end
if string.sub(value, separator + 1) == '1' then
  return 2
end
redis.call('SET', KEYS[1], string.sub(value, 1, separator) .. '1', 'KEEPTTL')
return 1
";

/// Replaces a customer's one-time code. KEYS[1] is the code's hash. ARGV:
/// code hash in hex, entries, expires_at_ms.
const PUT_OTP_SCRIPT: &str = r"
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'code', ARGV[1], 'remaining', ARGV[2], 'expires_at', ARGV[3])
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
return 1
";

/// Checks an entered code. KEYS[1] is the code's hash. ARGV: entered code
/// hash in hex, now_ms. Returns `{status, remaining}` with status 0 missing,
/// 1 valid, 2 invalid, 3 expired, 4 exhausted. The hex strings are compared
/// byte by byte over their whole length, so the time taken does not depend
/// on where they first differ.
const CHECK_OTP_SCRIPT: &str = r"
local entry = redis.call('HMGET', KEYS[1], 'code', 'remaining', 'expires_at')
if not entry[1] then
  return {0, 0}
end
if tonumber(entry[3]) <= tonumber(ARGV[2]) then
  redis.call('DEL', KEYS[1])
  return {3, 0}
end
local remaining = tonumber(entry[2])
if remaining <= 0 then
  return {4, 0}
end
local stored = entry[1]
local given = ARGV[1]
local difference = 0
if #stored ~= #given then
  difference = 1
end
for i = 1, math.min(#stored, #given) do
  difference = bit.bor(difference, bit.bxor(string.byte(stored, i), string.byte(given, i)))
end
if difference == 0 then
  redis.call('DEL', KEYS[1])
  return {1, 0}
end
remaining = remaining - 1
redis.call('HSET', KEYS[1], 'remaining', remaining)
return {2, remaining}
";

/// Appends an audit record to the stream KEYS[1] and trims entries older
/// than the retention. ARGV: record JSON, retention_ms. Stream ids carry the
/// Redis server's clock, so the cutoff is taken from the same clock (TIME)
/// rather than from the record's own time. Trimming with `~` removes only
/// whole internal nodes of the stream (100 entries by default), so a few
/// records may outlive the retention until the next append trims them.
const APPEND_AUDIT_SCRIPT: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local oldest_kept = math.max(now - tonumber(ARGV[2]), 0)
redis.call('XADD', KEYS[1], 'MINID', '~', string.format('%d', oldest_kept), '*', 'record', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
";

/// The stored scripts, hashed once.
struct Scripts {
    /// See [`RESERVE_SCRIPT`].
    reserve: Script,
    /// See [`CONSUME_TOKEN_SCRIPT`].
    consume_token: Script,
    /// See [`PUT_OTP_SCRIPT`].
    put_otp: Script,
    /// See [`CHECK_OTP_SCRIPT`].
    check_otp: Script,
    /// See [`APPEND_AUDIT_SCRIPT`].
    append_audit: Script,
}

/// A connection to whichever Redis deployment is configured. Cheap to clone:
/// clones share the underlying multiplexed connection.
#[derive(Clone)]
enum Connection {
    /// Standalone server or Sentinel primary, reconnected by the manager.
    Single(ConnectionManager),
    /// Redis Cluster, which routes each command to the node of its slot.
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Single(connection) => connection.req_packed_command(cmd),
            Connection::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Single(connection) => {
                connection.req_packed_commands(pipeline, offset, count)
            }
            Connection::Cluster(connection) => {
                connection.req_packed_commands(pipeline, offset, count)
            }
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(connection) => connection.get_db(),
            Connection::Cluster(connection) => connection.get_db(),
        }
    }
}

/// The Sentinel client and the primary it last named.
struct SentinelPrimary {
    /// Asks the Sentinels for the primary's address. A mutex, because the
    /// client keeps state between lookups.
    sentinel: tokio::sync::Mutex<SentinelClient>,
    /// The primary's address and a connection to it, replaced when the
    /// Sentinels name another primary after a failover.
    current: RwLock<(ConnectionAddr, ConnectionManager)>,
}

/// Connection kind of the store.
enum Backend {
    /// One server, or a proxy in front of several.
    Standalone(ConnectionManager),
    /// A primary found through Sentinel. Boxed, because the Sentinel client
    /// is several times larger than the other variants.
    Sentinel(Box<SentinelPrimary>),
    /// Redis Cluster.
    Cluster(ClusterConnection),
}

/// Store in Redis.
#[derive(Clone)]
pub struct RedisStore {
    /// Connection, shared by clones of the store.
    backend: Arc<Backend>,
    /// Prefix of every key.
    prefix: Arc<str>,
    /// Lua scripts for the atomic operations.
    scripts: Arc<Scripts>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match *self.backend {
            Backend::Standalone(_) => "standalone",
            Backend::Sentinel(_) => "sentinel",
            Backend::Cluster(_) => "cluster",
        };
        f.debug_struct("RedisStore")
            .field("kind", &kind)
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// Settings of every connection manager: short timeouts, so that a store
/// failure reaches the call flow quickly and the caller hears the fallback.
fn manager_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
        .set_number_of_retries(RECONNECT_RETRIES)
        .set_max_delay(MAX_RECONNECT_DELAY)
}

/// Wraps a Redis client error as the error of store operation `operation`.
fn redis_error(operation: &'static str) -> impl Fn(RedisError) -> StoreError {
    move |source| StoreError::Redis {
        operation,
        source: Box::new(source),
    }
}

/// Reads a script's reply of two integers.
fn pair(reply: &[i64], operation: &'static str) -> Result<(i64, i64), StoreError> {
    match reply {
        [first, second] => Ok((*first, *second)),
        _ => Err(StoreError::Malformed {
            what: "script reply",
            detail: format!("{operation} expected two integers, got {reply:?}"),
        }),
    }
}

impl RedisStore {
    /// Connects to Redis as `connection` describes. Every key the store
    /// writes starts with `key_prefix`. Fails when no server responds within
    /// the connect timeout.
    pub async fn connect(
        connection: &RedisConnection,
        key_prefix: &str,
    ) -> Result<RedisStore, StoreError> {
        let backend = match connection {
            RedisConnection::Standalone { url } => {
                let client =
                    redis::Client::open(url.as_str()).map_err(|error| StoreError::RedisConfig {
                        reason: format!("redis_url is not a valid Redis URL: {error}"),
                    })?;
                let manager = ConnectionManager::new_with_config(client, manager_config())
                    .await
                    .map_err(redis_error("connect"))?;
                Backend::Standalone(manager)
            }
            RedisConnection::Sentinel {
                sentinels,
                master_name,
            } => Backend::Sentinel(Box::new(connect_sentinel(sentinels, master_name).await?)),
            RedisConnection::Cluster { nodes } => Backend::Cluster(connect_cluster(nodes).await?),
        };

        Ok(RedisStore {
            backend: Arc::new(backend),
            prefix: Arc::from(key_prefix),
            scripts: Arc::new(Scripts {
                reserve: Script::new(RESERVE_SCRIPT),
                consume_token: Script::new(CONSUME_TOKEN_SCRIPT),
                put_otp: Script::new(PUT_OTP_SCRIPT),
                check_otp: Script::new(CHECK_OTP_SCRIPT),
                append_audit: Script::new(APPEND_AUDIT_SCRIPT),
            }),
        })
    }

    /// Returns a handle on the current connection.
    fn connection(&self) -> Connection {
        match &*self.backend {
            Backend::Standalone(manager) => Connection::Single(manager.clone()),
            Backend::Sentinel(primary) => {
                let current = primary
                    .current
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                Connection::Single(current.1.clone())
            }
            Backend::Cluster(cluster) => Connection::Cluster(cluster.clone()),
        }
    }

    /// Runs `operation`, the commands of store operation `name`. After a
    /// failure that may mean the Sentinels moved the primary, queries them for
    /// the primary again, so that the next operation goes to the new one.
    async fn run<T>(
        &self,
        name: &'static str,
        operation: impl std::future::Future<Output = Result<T, RedisError>>,
    ) -> Result<T, StoreError> {
        let result = operation.await;

        if let (Err(error), Backend::Sentinel(primary)) = (&result, &*self.backend) {
            if may_be_failover(error) {
                refresh_primary(primary).await;
            }
        }
        result.map_err(redis_error(name))
    }

    /// Returns the key `name` under the configured prefix.
    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Returns the current customer generation, or `None` before the first
    /// import.
    async fn current_generation(
        &self,
        connection: &mut Connection,
    ) -> Result<Option<u64>, RedisError> {
        redis::cmd("GET")
            .arg(self.key("customers:current"))
            .query_async(connection)
            .await
    }

    /// Returns the two hash keys of customer generation `generation`.
    fn generation_keys(&self, generation: u64) -> (String, String) {
        (
            self.key(&format!("customers:{generation}:contracts")),
            self.key(&format!("customers:{generation}:phones")),
        )
    }
}

/// Returns whether `error` can come from a primary that is down or was demoted to a
/// replica.
fn may_be_failover(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_timeout()
        || matches!(
            error.kind(),
            redis::ErrorKind::Server(
                redis::ServerErrorKind::ReadOnly | redis::ServerErrorKind::MasterDown
            )
        )
}

/// Parses Redis URLs into addresses, naming `setting` in errors.
fn parse_addresses(urls: &[String], setting: &str) -> Result<Vec<ConnectionAddr>, StoreError> {
    if urls.is_empty() {
        return Err(StoreError::RedisConfig {
            reason: format!("{setting} is empty; list at least one redis://host:port URL"),
        });
    }
    urls.iter()
        .enumerate()
        .map(|(position, url)| {
            url.as_str()
                .into_connection_info()
                .map(|info| info.addr().clone())
                .map_err(|error| StoreError::RedisConfig {
                    reason: format!(
                        "{setting} item {} is not a valid Redis URL: {error}",
                        position + 1
                    ),
                })
        })
        .collect()
}

/// Asks the Sentinels for the primary and connects to it.
async fn connect_sentinel(
    sentinels: &[String],
    master_name: &str,
) -> Result<SentinelPrimary, StoreError> {
    let addresses = parse_addresses(sentinels, "redis_sentinels")?;
    let mut client = SentinelClientBuilder::new(addresses, master_name, SentinelServerType::Master)
        .and_then(|builder| builder.build())
        .map_err(|error| StoreError::RedisConfig {
            reason: format!("redis_sentinels and redis_master_name are not usable: {error}"),
        })?;

    let (address, manager) = connect_primary(&mut client).await?;
    Ok(SentinelPrimary {
        sentinel: tokio::sync::Mutex::new(client),
        current: RwLock::new((address, manager)),
    })
}

/// Asks the Sentinels for the primary's address and connects to it.
async fn connect_primary(
    client: &mut SentinelClient,
) -> Result<(ConnectionAddr, ConnectionManager), StoreError> {
    let primary = tokio::time::timeout(CONNECT_TIMEOUT, client.async_get_client())
        .await
        .map_err(|_| StoreError::Redis {
            operation: "ask the Sentinels for the primary",
            source: Box::new(RedisError::from(std::io::Error::from(
                std::io::ErrorKind::TimedOut,
            ))),
        })?
        .map_err(redis_error("ask the Sentinels for the primary"))?;
    let address = primary.get_connection_info().addr().clone();
    let manager = ConnectionManager::new_with_config(primary, manager_config())
        .await
        .map_err(redis_error("connect to the primary"))?;
    Ok((address, manager))
}

/// Asks the Sentinels for the primary again and switches to it when it
/// moved. Errors are logged, because the caller already has an error.
async fn refresh_primary(primary: &SentinelPrimary) {
    let mut client = primary.sentinel.lock().await;
    let lookup = tokio::time::timeout(CONNECT_TIMEOUT, client.async_get_client()).await;
    let found = match lookup {
        Ok(Ok(found)) => found,
        Ok(Err(error)) => {
            tracing::warn!(%error, "failed to ask the Sentinels for the primary");
            return;
        }
        Err(_) => {
            tracing::warn!(
                timeout_ms = CONNECT_TIMEOUT.as_millis() as u64,
                "the Sentinels did not name a primary in time"
            );
            return;
        }
    };

    let address = found.get_connection_info().addr().clone();
    let unchanged = {
        let current = primary
            .current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        current.0 == address
    };
    if unchanged {
        return;
    }

    // The manager connects on first use, so the lock is never held across
    // a connection attempt.
    match ConnectionManager::new_lazy_with_config(found, manager_config()) {
        Ok(manager) => {
            tracing::warn!(primary = %address, "Sentinels named a new Redis primary; switching");
            *primary
                .current
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = (address, manager);
        }
        Err(error) => {
            tracing::warn!(%error, primary = %address, "failed to set up a connection to the new Redis primary")
        }
    }
}

/// Connects to Redis Cluster through the seed nodes.
async fn connect_cluster(nodes: &[String]) -> Result<ClusterConnection, StoreError> {
    parse_addresses(nodes, "redis_nodes")?;
    let client = redis::cluster::ClusterClientBuilder::new(nodes.iter().map(String::as_str))
        .connection_timeout(CONNECT_TIMEOUT)
        .response_timeout(RESPONSE_TIMEOUT)
        .retries(RECONNECT_RETRIES as u32)
        .max_retry_wait(MAX_RECONNECT_DELAY.as_millis() as u64)
        .build()
        .map_err(|error| StoreError::RedisConfig {
            reason: format!("redis_nodes are not usable: {error}"),
        })?;
    client
        .get_async_connection()
        .await
        .map_err(redis_error("connect to the cluster"))
}

/// Decodes the reply of `XREVRANGE` into audit records. Each entry is
/// `[id, [field, value, ...]]`, and the record is the value of `record`.
fn audit_from_stream(reply: Value) -> Result<Vec<AuditRecord>, StoreError> {
    let malformed = |detail: &str| StoreError::Malformed {
        what: "audit stream entry",
        detail: detail.to_string(),
    };
    let Value::Array(entries) = reply else {
        return Err(malformed("XREVRANGE did not return an array"));
    };

    let mut records = Vec::with_capacity(entries.len());
    for entry in entries {
        let Value::Array(parts) = entry else {
            return Err(malformed("entry is not an array"));
        };
        let Some(Value::Array(fields)) = parts.get(1) else {
            return Err(malformed("entry has no field list"));
        };
        let record = fields
            .chunks_exact(2)
            .find_map(|pair| match pair {
                [Value::BulkString(name), Value::BulkString(value)] if name == b"record" => {
                    Some(value)
                }
                _ => None,
            })
            .ok_or_else(|| malformed("entry has no record field"))?;
        records.push(codec::decode_audit(record)?);
    }
    Ok(records)
}

#[async_trait]
impl Store for RedisStore {
    async fn customer_by_contract(
        &self,
        contract: &KeyedHash,
    ) -> Result<Option<CustomerRecord>, StoreError> {
        let field = codec::hash_to_hex(contract);
        let json: Option<Vec<u8>> = self
            .run("customer_by_contract", async {
                let connection = &mut self.connection();
                let Some(generation) = self.current_generation(connection).await? else {
                    return Ok(None);
                };
                let (contracts, _) = self.generation_keys(generation);
                redis::cmd("HGET")
                    .arg(contracts)
                    .arg(&field)
                    .query_async(connection)
                    .await
            })
            .await?;
        json.as_deref().map(codec::decode_customer).transpose()
    }

    async fn customers_by_phone(&self, phone: &KeyedHash) -> Result<Vec<String>, StoreError> {
        let field = codec::hash_to_hex(phone);
        let json: Option<Vec<u8>> = self
            .run("customers_by_phone", async {
                let connection = &mut self.connection();
                let Some(generation) = self.current_generation(connection).await? else {
                    return Ok(None);
                };
                let (_, phones) = self.generation_keys(generation);
                redis::cmd("HGET")
                    .arg(phones)
                    .arg(&field)
                    .query_async(connection)
                    .await
            })
            .await?;
        match json {
            Some(json) => codec::decode_ids(&json),
            None => Ok(Vec::new()),
        }
    }

    async fn replace_customers(&self, customers: Vec<Customer>) -> Result<(), StoreError> {
        let index = build_index(customers)?;

        let mut contract_fields = Vec::with_capacity(index.by_contract.len());
        for (hash, record) in &index.by_contract {
            contract_fields.push((codec::hash_to_hex(hash), codec::encode_customer(record)?));
        }
        let mut phone_fields = Vec::with_capacity(index.by_phone.len());
        for (hash, ids) in &index.by_phone {
            phone_fields.push((codec::hash_to_hex(hash), codec::encode_ids(ids)?));
        }

        // The new set is written as a new generation while lookups keep
        // reading the current one. Switching `customers:current` is a single
        // SET, so lookups see either set whole.
        let generation: u64 = self
            .run("replace_customers", async {
                let connection = &mut self.connection();
                redis::cmd("INCR")
                    .arg(self.key("customers:generation"))
                    .query_async(connection)
                    .await
            })
            .await?;
        let (contracts_key, phones_key) = self.generation_keys(generation);

        let written = self
            .run("replace_customers", async {
                let connection = &mut self.connection();
                for (key, fields) in [
                    (&contracts_key, &contract_fields),
                    (&phones_key, &phone_fields),
                ] {
                    for batch in fields.chunks(CUSTOMER_BATCH) {
                        let mut pipeline = redis::pipe();
                        pipeline.cmd("HSET").arg(key).arg(batch).ignore();
                        pipeline
                            .cmd("PEXPIRE")
                            .arg(key)
                            .arg(IMPORT_TTL.as_millis() as u64)
                            .ignore();
                        pipeline.query_async::<()>(connection).await?;
                    }
                }
                for key in [&contracts_key, &phones_key] {
                    redis::cmd("PERSIST")
                        .arg(key)
                        .query_async::<()>(connection)
                        .await?;
                }
                redis::cmd("SET")
                    .arg(self.key("customers:current"))
                    .arg(generation)
                    .arg("GET")
                    .query_async::<Option<u64>>(connection)
                    .await
            })
            .await;

        let previous = match written {
            Ok(previous) => previous,
            Err(error) => {
                // Best effort: the import TTL removes the keys anyway.
                let _ = self
                    .run("replace_customers", async {
                        let connection = &mut self.connection();
                        redis::cmd("DEL")
                            .arg(&contracts_key)
                            .arg(&phones_key)
                            .query_async::<()>(connection)
                            .await
                    })
                    .await;
                return Err(error);
            }
        };

        if let Some(previous) = previous.filter(|previous| *previous != generation) {
            let (old_contracts, old_phones) = self.generation_keys(previous);
            self.run("replace_customers", async {
                let connection = &mut self.connection();
                for key in [&old_contracts, &old_phones] {
                    redis::cmd("PEXPIRE")
                        .arg(key)
                        .arg(OLD_GENERATION_GRACE.as_millis() as u64)
                        .query_async::<()>(connection)
                        .await?;
                }
                Ok(())
            })
            .await?;
        }
        Ok(())
    }

    async fn record_token(&self, jti: &str, expires_at_unix: u64) -> Result<(), StoreError> {
        let key = self.key(&format!("token:{jti}"));
        let expires_at = expires_at_unix.clamp(1, MAX_SCRIPT_MS / 1000);

        let stored: Option<String> = self
            .run("record_token", async {
                let connection = &mut self.connection();
                redis::cmd("SET")
                    .arg(&key)
                    .arg(format!("{expires_at}:0"))
                    .arg("NX")
                    .arg("EXAT")
                    .arg(expires_at)
                    .query_async(connection)
                    .await
            })
            .await?;
        match stored {
            Some(_) => Ok(()),
            None => Err(StoreError::DuplicateToken),
        }
    }

    async fn consume_token(&self, jti: &str, now_unix: u64) -> Result<TokenState, StoreError> {
        let key = self.key(&format!("token:{jti}"));
        let state: i64 = self
            .run("consume_token", async {
                let connection = &mut self.connection();
                self.scripts
                    .consume_token
                    .key(&key)
                    .arg(now_unix.min(MAX_SCRIPT_MS))
                    .invoke_async(connection)
                    .await
            })
            .await?;
        match state {
            0 => Ok(TokenState::Unknown),
            1 => Ok(TokenState::Fresh),
            2 => Ok(TokenState::AlreadyUsed),
            other => Err(StoreError::Malformed {
                what: "script reply",
                detail: format!("consume_token returned {other}"),
            }),
        }
    }

    async fn reserve_attempt(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
        now_ms: u64,
    ) -> Result<AttemptDecision, StoreError> {
        let reservation = Reservation::new()?;
        let redis_key = self.key(&format!("lockout:{key}"));
        let window_ms = window::window_ms(window).min(MAX_SCRIPT_MS);

        let reply: Vec<i64> = self
            .run("reserve_attempt", async {
                let connection = &mut self.connection();
                self.scripts
                    .reserve
                    .key(&redis_key)
                    .arg(now_ms.min(MAX_SCRIPT_MS))
                    .arg(window_ms)
                    .arg(limit)
                    .arg(&reservation.id)
                    .invoke_async(connection)
                    .await
            })
            .await?;

        match pair(&reply, "reserve_attempt")? {
            (1, remaining) => Ok(AttemptDecision::Allowed {
                reservation,
                remaining: u32::try_from(remaining).unwrap_or(0),
            }),
            (_, retry_after_ms) => Ok(AttemptDecision::Locked {
                retry_after: Duration::from_millis(u64::try_from(retry_after_ms).unwrap_or(0)),
            }),
        }
    }

    async fn release_attempt(
        &self,
        key: &str,
        reservation: &Reservation,
    ) -> Result<(), StoreError> {
        let redis_key = self.key(&format!("lockout:{key}"));
        self.run("release_attempt", async {
            let connection = &mut self.connection();
            redis::cmd("ZREM")
                .arg(&redis_key)
                .arg(&reservation.id)
                .query_async::<()>(connection)
                .await
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
        let key = self.key(&format!("otp:{customer_id}"));
        let code = codec::hash_to_hex(code);

        self.run("put_otp", async {
            let connection = &mut self.connection();
            self.scripts
                .put_otp
                .key(&key)
                .arg(&code)
                .arg(max_entries)
                .arg(expires_at_ms.clamp(1, MAX_SCRIPT_MS))
                .invoke_async::<()>(connection)
                .await
        })
        .await
    }

    async fn check_otp(
        &self,
        customer_id: &str,
        code: &KeyedHash,
        now_ms: u64,
    ) -> Result<OtpCheck, StoreError> {
        let key = self.key(&format!("otp:{customer_id}"));
        let code = codec::hash_to_hex(code);

        let reply: Vec<i64> = self
            .run("check_otp", async {
                let connection = &mut self.connection();
                self.scripts
                    .check_otp
                    .key(&key)
                    .arg(&code)
                    .arg(now_ms.min(MAX_SCRIPT_MS))
                    .invoke_async(connection)
                    .await
            })
            .await?;

        match pair(&reply, "check_otp")? {
            (0, _) => Ok(OtpCheck::Missing),
            (1, _) => Ok(OtpCheck::Valid),
            (2, remaining) => Ok(OtpCheck::Invalid {
                remaining: u32::try_from(remaining).unwrap_or(0),
            }),
            (3, _) => Ok(OtpCheck::Expired),
            (4, _) => Ok(OtpCheck::Exhausted),
            (status, _) => Err(StoreError::Malformed {
                what: "script reply",
                detail: format!("check_otp returned status {status}"),
            }),
        }
    }

    async fn append_audit(&self, record: &AuditRecord) -> Result<(), StoreError> {
        let key = self.key("audit");
        let json = codec::encode_audit(record)?;
        let retention_ms = window::window_ms(AUDIT_RETENTION);
        self.run("append_audit", async {
            let connection = &mut self.connection();
            self.scripts
                .append_audit
                .key(&key)
                .arg(&json)
                .arg(retention_ms)
                .invoke_async::<()>(connection)
                .await
        })
        .await
    }

    async fn recent_audit(&self, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let key = self.key("audit");
        let reply: Value = self
            .run("recent_audit", async {
                let connection = &mut self.connection();
                redis::cmd("XREVRANGE")
                    .arg(&key)
                    .arg("+")
                    .arg("-")
                    .arg("COUNT")
                    .arg(limit)
                    .query_async(connection)
                    .await
            })
            .await?;
        audit_from_stream(reply)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.run("ping", async {
            let connection = &mut self.connection();
            redis::cmd("PING").query_async::<()>(connection).await
        })
        .await
    }
}
