//! The store conformance suite and Redis-specific checks against a real
//! standalone redis-server on a free loopback port.

#[path = "support/redis.rs"]
mod redis_support;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ivr_verify::store::testing::{self, CLEAR_SECRETS};
use ivr_verify::store::{
    open_store, OtpCheck, RedisConnection, RedisStore, Store, StoreConfig, AUDIT_RETENTION,
};
use ivr_verify::verify::customers::Customer;
use ivr_verify::verify::keyed_hash::{HashPurpose, KeyedHash};
use redis_support::{redis_cli, RedisServer};

/// Maximum time a store operation may take when Redis is down. The call flow
/// gives a lookup 2 seconds, so a failure must surface well before that.
const FAILURE_DEADLINE: Duration = Duration::from_millis(1_500);

/// How long a restarted Redis may take to be used again.
const RECOVERY_DEADLINE: Duration = Duration::from_secs(10);

/// Returns a key prefix of its own for each test, so tests that share a
/// `REDIS_URL` server do not see each other's keys.
fn prefix(test: &str) -> String {
    format!("ivr-test:{test}:{}:", std::process::id())
}

async fn connect(server: &RedisServer, prefix: &str) -> RedisStore {
    let connection = RedisConnection::Standalone {
        url: server.url().to_string(),
    };
    RedisStore::connect(&connection, prefix)
        .await
        .expect("connect to redis-server")
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64
}

#[tokio::test]
async fn standalone_conformance() {
    let server = RedisServer::standalone();
    let store = connect(&server, &prefix("conformance")).await;
    testing::run_store_conformance(&store).await;
}

#[tokio::test]
async fn open_store_connects_from_config() {
    let server = RedisServer::standalone();
    let config = StoreConfig::Redis {
        connection: RedisConnection::Standalone {
            url: server.url().to_string(),
        },
        key_prefix: prefix("open"),
    };
    let store = open_store(&config).await.expect("open the Redis store");
    store.ping().await.expect("ping");
}

#[tokio::test]
async fn unreachable_server_fails_at_connect() {
    let port = redis_support::free_port();
    let connection = RedisConnection::Standalone {
        url: format!("redis://127.0.0.1:{port}"),
    };
    let started = Instant::now();
    let result = RedisStore::connect(&connection, "ivr-test:").await;
    assert!(result.is_err(), "connected to a closed port");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "connect took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn invalid_url_rejected() {
    let connection = RedisConnection::Standalone {
        url: "http://127.0.0.1:1".to_string(),
    };
    let result = RedisStore::connect(&connection, "ivr-test:").await;
    let message = result.expect_err("accepted an http URL").to_string();
    assert!(message.contains("redis_url"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_reservations_across_handles() {
    let server = RedisServer::standalone();
    let prefix = prefix("parallel");

    // Two separate connections stand in for two service instances.
    let first: Arc<dyn Store> = Arc::new(connect(&server, &prefix).await);
    let second: Arc<dyn Store> = Arc::new(connect(&server, &prefix).await);
    testing::run_parallel_reservations(&[first, second], 50).await;
}

#[tokio::test]
async fn store_holds_no_secret_in_clear() {
    let server = RedisServer::standalone();
    let prefix = prefix("dump");
    let store = connect(&server, &prefix).await;
    testing::write_sensitive_sample(&store).await;

    let text = redis_support::dump_text(server.url(), &prefix).await;
    assert!(
        text.iter().any(|item| item.contains("C-SAMPLE")),
        "the dump missed the sample: {text:?}"
    );
    for kind in ["customers:current", "otp:", "lockout:", "token:", "audit"] {
        assert!(
            text.iter()
                .any(|item| item.starts_with(&format!("{prefix}{kind}"))),
            "no {kind} key in the dump"
        );
    }
    for secret in CLEAR_SECRETS {
        let found: Vec<&String> = text.iter().filter(|item| item.contains(secret)).collect();
        assert!(found.is_empty(), "{secret} stored in clear: {found:?}");
    }
}

#[tokio::test]
async fn keys_expire_with_their_entries() {
    let server = RedisServer::standalone();
    if !server.is_private() {
        return;
    }
    let prefix = prefix("ttl");
    let store = connect(&server, &prefix).await;
    let port = server.port();
    let pttl = |key: &str| -> i64 {
        redis_cli(port, &["PTTL", &format!("{prefix}{key}")])
            .and_then(|reply| reply.parse().ok())
            .expect("PTTL reply")
    };

    let now = now_ms();
    store
        .put_otp("C-TTL", &KeyedHash([9; 32]), now + 300, 3)
        .await
        .unwrap();
    let _ = store
        .reserve_attempt("ttl", 3, Duration::from_millis(300), now)
        .await
        .unwrap();
    store
        .record_token("ttl-jti", now / 1000 + 60)
        .await
        .unwrap();
    store
        .append_audit(&testing::sample_audit_record("ttl-call", now))
        .await
        .unwrap();

    let otp_ttl = pttl("otp:C-TTL");
    assert!((1..=300).contains(&otp_ttl), "one-time code PTTL {otp_ttl}");
    let lockout_ttl = pttl("lockout:ttl");
    assert!(
        (1..=300).contains(&lockout_ttl),
        "lockout PTTL {lockout_ttl}"
    );
    let token_ttl = pttl("token:ttl-jti");
    assert!((1..=60_000).contains(&token_ttl), "token PTTL {token_ttl}");
    let audit_ttl = pttl("audit");
    let retention = AUDIT_RETENTION.as_millis() as i64;
    assert!(
        (retention - 60_000..=retention).contains(&audit_ttl),
        "audit PTTL {audit_ttl}"
    );

    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(pttl("otp:C-TTL"), -2, "one-time code key kept after expiry");
    assert_eq!(pttl("lockout:ttl"), -2, "lockout key kept after the window");
    let check = store
        .check_otp("C-TTL", &KeyedHash([9; 32]), now_ms())
        .await
        .unwrap();
    assert_eq!(check, OtpCheck::Missing);
}

#[tokio::test]
async fn replaced_customers_expire() {
    let server = RedisServer::standalone();
    if !server.is_private() {
        return;
    }
    let prefix = prefix("generations");
    let store = connect(&server, &prefix).await;
    testing::write_sensitive_sample(&store).await;
    let hasher = testing::hasher();
    let replacement = Customer {
        customer_id: "C-NEW".to_string(),
        phones: Vec::new(),
        mobile_e164: None,
        contracts: vec![hasher.hash(HashPurpose::ContractNumber, "55554444")],
        date_of_birth: None,
        postcode: None,
        iban_last_digits: None,
    };
    store.replace_customers(vec![replacement]).await.unwrap();

    let port = server.port();
    let pttl = |key: &str| -> i64 {
        redis_cli(port, &["PTTL", &format!("{prefix}{key}")])
            .and_then(|reply| reply.parse().ok())
            .expect("PTTL reply")
    };
    let current = redis_cli(port, &["GET", &format!("{prefix}customers:current")]);
    assert_eq!(current.as_deref(), Some("2"), "current generation");
    assert_eq!(pttl("customers:2:contracts"), -1, "current set has a TTL");
    let old = pttl("customers:1:contracts");
    assert!((1..=60_000).contains(&old), "old set PTTL {old}");
}

#[tokio::test]
async fn killed_server_fails_fast_then_recovers() {
    let mut server = RedisServer::standalone();
    if !server.is_private() {
        return;
    }
    let store = connect(&server, &prefix("failure")).await;
    store.record_token("before", 4_000_000_000).await.unwrap();

    server.kill();
    let started = Instant::now();
    let result = store.consume_token("before", 1_000).await;
    assert!(result.is_err(), "operation succeeded with Redis down");
    assert!(
        started.elapsed() < FAILURE_DEADLINE,
        "failure took {:?}",
        started.elapsed()
    );
    let started = Instant::now();
    let second = store.ping().await;
    assert!(second.is_err(), "ping succeeded with Redis down");
    assert!(
        started.elapsed() < FAILURE_DEADLINE,
        "second failure took {:?}",
        started.elapsed()
    );

    // The restarted server is empty, and the same handle reconnects.
    server.restart();
    let deadline = Instant::now() + RECOVERY_DEADLINE;
    while store.ping().await.is_err() {
        assert!(Instant::now() < deadline, "store did not reconnect");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    store.record_token("after", 4_000_000_000).await.unwrap();
    let state = store.consume_token("after", 1_000).await.unwrap();
    assert_eq!(state, ivr_verify::store::TokenState::Fresh);
}
