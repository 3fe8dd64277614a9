//! The store conformance suite against a real 3-node Redis Cluster on free
//! loopback ports.

#[path = "support/redis.rs"]
mod redis_support;

use std::sync::Arc;

use ivr_verify::store::testing::{self, CLEAR_SECRETS};
use ivr_verify::store::{RedisConnection, RedisStore, Store};
use redis_support::RedisCluster;

async fn connect(cluster: &RedisCluster, prefix: &str) -> RedisStore {
    let connection = RedisConnection::Cluster {
        nodes: cluster.urls(),
    };
    RedisStore::connect(&connection, prefix)
        .await
        .expect("connect to the cluster")
}

// One cluster per test binary run would be faster, but each test starting
// its own keeps them independent; three tests start nine servers in total.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_conformance_and_parallel_reservations() {
    let cluster = RedisCluster::start();
    let store = connect(&cluster, "ivr-test:conformance:").await;
    testing::run_store_conformance(&store).await;

    // Two separate cluster connections stand in for two service instances.
    let first: Arc<dyn Store> = Arc::new(connect(&cluster, "ivr-test:parallel:").await);
    let second: Arc<dyn Store> = Arc::new(connect(&cluster, "ivr-test:parallel:").await);
    testing::run_parallel_reservations(&[first, second], 50).await;
}

#[tokio::test]
async fn cluster_holds_no_secret_in_clear() {
    let cluster = RedisCluster::start();
    let prefix = "ivr-test:dump:";
    let store = connect(&cluster, prefix).await;
    testing::write_sensitive_sample(&store).await;

    // Keys spread over the nodes by slot, so every node is read.
    let mut text = Vec::new();
    for node in &cluster.nodes {
        text.extend(redis_support::dump_text(node.url(), prefix).await);
    }
    assert!(
        text.iter().any(|item| item.contains("C-SAMPLE")),
        "the dump missed the sample: {text:?}"
    );
    for secret in CLEAR_SECRETS {
        let found: Vec<&String> = text.iter().filter(|item| item.contains(secret)).collect();
        assert!(found.is_empty(), "{secret} stored in clear: {found:?}");
    }
}
