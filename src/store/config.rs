//! Which store the service uses (`[store]` in the config file).

use std::path::PathBuf;

/// `[store]`: where customers, lockout counters, one-time codes, token ids
/// and audit records live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// In process and lost on restart; for tests and trying things out.
    Memory,
    /// A redb file on local disk, for a single node.
    Embedded {
        /// The database file; created when missing.
        path: PathBuf,
    },
    /// Redis, shared by several nodes.
    Redis {
        /// How to reach the Redis deployment.
        connection: RedisConnection,
        /// Prefix of every key, so several services can share one Redis.
        key_prefix: String,
    },
}

/// How to reach Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisConnection {
    /// One server (or a proxy), `redis://host:port/db`.
    Standalone {
        /// Connection URL.
        url: String,
    },
    /// A primary found through Redis Sentinel.
    Sentinel {
        /// Sentinel URLs, `redis://host:port`.
        sentinels: Vec<String>,
        /// Name of the monitored primary.
        master_name: String,
    },
    /// Redis Cluster.
    Cluster {
        /// Seed node URLs.
        nodes: Vec<String>,
    },
}
