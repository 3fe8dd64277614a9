//! The store conformance suite against a real Redis primary found through
//! a real Sentinel, and a failover to a replica.

#[path = "support/redis.rs"]
mod redis_support;

use std::time::{Duration, Instant};

use ivr_verify::store::testing;
use ivr_verify::store::{RedisConnection, RedisStore, Store, TokenState};
use redis_support::{RedisSentinel, MASTER_NAME};

/// How long the store may take to follow a failover.
const FAILOVER_DEADLINE: Duration = Duration::from_secs(15);

async fn connect(setup: &RedisSentinel, prefix: &str) -> RedisStore {
    let connection = RedisConnection::Sentinel {
        sentinels: vec![setup.sentinel_url()],
        master_name: MASTER_NAME.to_string(),
    };
    RedisStore::connect(&connection, prefix)
        .await
        .expect("connect through the Sentinel")
}

#[tokio::test]
async fn sentinel_conformance() {
    let setup = RedisSentinel::start(false);
    let store = connect(&setup, "ivr-test:conformance:").await;
    testing::run_store_conformance(&store).await;
}

#[tokio::test]
async fn unknown_master_name_rejected() {
    let setup = RedisSentinel::start(false);
    let connection = RedisConnection::Sentinel {
        sentinels: vec![setup.sentinel_url()],
        master_name: "no-such-primary".to_string(),
    };
    let result = RedisStore::connect(&connection, "ivr-test:").await;
    assert!(result.is_err(), "connected to an unknown primary");
}

#[tokio::test]
async fn empty_sentinel_list_rejected() {
    let connection = RedisConnection::Sentinel {
        sentinels: Vec::new(),
        master_name: MASTER_NAME.to_string(),
    };
    let message = RedisStore::connect(&connection, "ivr-test:")
        .await
        .expect_err("accepted no Sentinels")
        .to_string();
    assert!(message.contains("redis_sentinels"), "{message}");
}

#[tokio::test]
async fn store_follows_failover() {
    let setup = RedisSentinel::start(true);
    let store = connect(&setup, "ivr-test:failover:").await;
    store.record_token("before", 4_000_000_000).await.unwrap();

    setup.fail_over();

    // The old primary is demoted and rejects writes. The store then queries the
    // Sentinel again and moves to the new primary by itself.
    let deadline = Instant::now() + FAILOVER_DEADLINE;
    loop {
        match store.record_token("after", 4_000_000_000).await {
            Ok(()) => break,
            Err(error) => {
                assert!(
                    Instant::now() < deadline,
                    "store did not follow the failover: {error}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    // The token recorded before the failover was replicated.
    let before = store.consume_token("before", 1_000).await.unwrap();
    assert_eq!(before, TokenState::Fresh, "token recorded before failover");
    let after = store.consume_token("after", 1_000).await.unwrap();
    assert_eq!(after, TokenState::Fresh, "token recorded after failover");
    store.ping().await.unwrap();
}
