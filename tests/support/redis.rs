//! Starts private Redis deployments on free loopback ports for the store
//! tests: a standalone server, a 3-node Cluster, and a primary watched by
//! one Sentinel. Each runs without persistence in its own temporary folder
//! and is killed on drop.
//!
//! `REDIS_URL`, when set, names an existing standalone server that
//! [`RedisServer::standalone`] uses instead of starting one. Tests that kill
//! the server skip that case.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Maximum time a started server or cluster may take to respond.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Time between two readiness probes.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Name of the primary the Sentinel monitors.
pub const MASTER_NAME: &str = "ivr-test-primary";

/// Returns a TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral TCP port");
    listener.local_addr().expect("local address").port()
}

/// Runs `redis-cli -p port args...` and returns its output, or `None` when it
/// could not connect.
pub fn redis_cli(port: u16, args: &[&str]) -> Option<String> {
    let output = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stderr(Stdio::null())
        .output()
        .expect("run redis-cli; install the redis-tools package");
    let text = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if !output.status.success() || text.starts_with("Could not connect") || text.is_empty() {
        return None;
    }
    Some(text)
}

/// Polls `ready` until it returns true, or panics naming `what`.
fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + START_TIMEOUT;
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "{what} not ready after {START_TIMEOUT:?}"
        );
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Starts `redis-server` with `args` in `folder`, without persistence.
fn spawn_server(folder: &Path, port: u16, args: &[&str]) -> Child {
    Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(folder)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start redis-server; install the redis-server package")
}

/// One `redis-server` process, or an external server from `REDIS_URL`.
pub struct RedisServer {
    /// The process, or `None` for an external server.
    child: Option<Child>,
    /// Port it listens on.
    port: u16,
    /// URL for the store, `redis://127.0.0.1:port`.
    url: String,
    /// Working folder, removed on drop.
    folder: TempDir,
    /// Extra arguments, kept to restart the server the same way.
    args: Vec<String>,
}

impl RedisServer {
    /// Starts a standalone server, or uses `REDIS_URL` when set.
    pub fn standalone() -> RedisServer {
        match std::env::var("REDIS_URL") {
            Ok(url) if !url.is_empty() => RedisServer {
                child: None,
                port: 0,
                url,
                folder: TempDir::new().expect("temporary folder"),
                args: Vec::new(),
            },
            _ => RedisServer::start(&[]),
        }
    }

    /// Starts a private server with extra `args` on a free port.
    pub fn start(args: &[&str]) -> RedisServer {
        let folder = TempDir::new().expect("temporary folder");
        let port = free_port();
        let mut server = RedisServer {
            child: None,
            port,
            url: format!("redis://127.0.0.1:{port}"),
            folder,
            args: args.iter().map(|arg| arg.to_string()).collect(),
        };
        server.restart();
        server
    }

    /// Returns whether the server was started by this test and so may be killed.
    pub fn is_private(&self) -> bool {
        self.port != 0
    }

    /// URL for the store.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Port it listens on; 0 for an external server.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server at once, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port, empty, and waits until it
    /// responds.
    pub fn restart(&mut self) {
        assert!(self.is_private(), "cannot restart an external server");
        self.kill();
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        self.child = Some(spawn_server(self.folder.path(), self.port, &args));
        let port = self.port;
        wait_until("redis-server", || {
            redis_cli(port, &["PING"]).as_deref() == Some("PONG")
        });
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A 3-node Redis Cluster without replicas.
pub struct RedisCluster {
    /// The three masters.
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts three cluster-enabled servers, joins them into a cluster that
    /// covers all 16384 slots, and waits until every node reports it ok.
    pub fn start() -> RedisCluster {
        let mut nodes = Vec::new();
        for _ in 0..3 {
            let bus_port = free_port().to_string();
            nodes.push(RedisServer::start(&[
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-port",
                &bus_port,
            ]));
        }

        let addresses: Vec<String> = nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port()))
            .collect();
        let status = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run redis-cli --cluster create");
        assert!(status.success(), "redis-cli --cluster create failed");

        for node in &nodes {
            let port = node.port();
            wait_until("Redis Cluster", || {
                redis_cli(port, &["CLUSTER", "INFO"])
                    .is_some_and(|info| info.contains("cluster_state:ok"))
            });
        }
        RedisCluster { nodes }
    }

    /// Seed node URLs for the store.
    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|node| node.url().to_string())
            .collect()
    }
}

/// A primary, optionally one replica, and one Sentinel with quorum 1.
pub struct RedisSentinel {
    /// The Sentinel process.
    sentinel: Child,
    /// Port of the Sentinel.
    sentinel_port: u16,
    /// The primary at start.
    pub primary: RedisServer,
    /// The replica, when one was asked for.
    pub replica: Option<RedisServer>,
    /// Folder of the Sentinel's config file, which Sentinel rewrites.
    folder: TempDir,
}

impl RedisSentinel {
    /// Starts a primary, `with_replica` a replica of it, and a Sentinel that
    /// monitors the primary as [`MASTER_NAME`]. Waits until the Sentinel
    /// names the primary and, with a replica, lists the replica.
    pub fn start(with_replica: bool) -> RedisSentinel {
        let primary = RedisServer::start(&[]);
        let replica = with_replica.then(|| {
            let primary_port = primary.port().to_string();
            let replica = RedisServer::start(&["--replicaof", "127.0.0.1", &primary_port]);
            let port = replica.port();
            wait_until("replication", || {
                redis_cli(port, &["INFO", "replication"])
                    .is_some_and(|info| info.contains("master_link_status:up"))
            });
            replica
        });

        let folder = TempDir::new().expect("temporary folder");
        let sentinel_port = free_port();
        let config = folder.path().join("sentinel.conf");
        std::fs::write(
            &config,
            format!(
                "port {sentinel_port}\nbind 127.0.0.1\ndir {}\n\
                 sentinel monitor {MASTER_NAME} 127.0.0.1 {} 1\n\
                 sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
                 sentinel failover-timeout {MASTER_NAME} 5000\n",
                folder.path().display(),
                primary.port()
            ),
        )
        .expect("write sentinel.conf");
        let sentinel = Command::new("redis-server")
            .arg(&config)
            .arg("--sentinel")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server --sentinel");

        let setup = RedisSentinel {
            sentinel,
            sentinel_port,
            primary,
            replica,
            folder,
        };
        wait_until("Sentinel", || {
            setup.primary_port() == Some(setup.primary.port())
        });
        if setup.replica.is_some() {
            wait_until("Sentinel replica discovery", || {
                redis_cli(sentinel_port, &["SENTINEL", "REPLICAS", MASTER_NAME])
                    .is_some_and(|replicas| !replicas.is_empty())
            });
        }
        setup
    }

    /// Sentinel URL for the store.
    pub fn sentinel_url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.sentinel_port)
    }

    /// Port of the primary the Sentinel names now.
    pub fn primary_port(&self) -> Option<u16> {
        let reply = redis_cli(
            self.sentinel_port,
            &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME],
        )?;
        reply.lines().nth(1)?.trim().parse().ok()
    }

    /// Makes the Sentinel promote the replica, and waits until it names it.
    pub fn fail_over(&self) {
        let replica_port = self
            .replica
            .as_ref()
            .expect("fail_over needs a replica")
            .port();
        // Sentinel rejects the failover (NOGOODSLAVE) until it has seen the
        // replica's replication link up in an INFO reply, so it is retried.
        wait_until("SENTINEL FAILOVER", || {
            redis_cli(self.sentinel_port, &["SENTINEL", "FAILOVER", MASTER_NAME]).as_deref()
                == Some("OK")
        });
        wait_until("failover", || self.primary_port() == Some(replica_port));
        wait_until("promoted replica", || {
            redis_cli(replica_port, &["ROLE"]).is_some_and(|role| role.starts_with("master"))
        });
        let old_port = self.primary.port();
        wait_until("demoted primary", || {
            redis_cli(old_port, &["ROLE"]).is_some_and(|role| role.starts_with("slave"))
        });
    }
}

impl Drop for RedisSentinel {
    fn drop(&mut self) {
        let _ = self.sentinel.kill();
        let _ = self.sentinel.wait();
    }
}

/// Reads every key under `prefix` on the server at `url`, and every value by
/// its type (GET, HGETALL, ZRANGE, XRANGE), and returns keys and values as
/// text. Typed reads rather than DUMP, because DUMP stores numeric strings
/// as binary integers, where a number in clear would go unnoticed.
pub async fn dump_text(url: &str, prefix: &str) -> Vec<String> {
    let client = redis::Client::open(url).expect("Redis URL");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect for the dump");

    let mut keys: Vec<String> = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut connection)
            .await
            .expect("SCAN");
        keys.extend(batch);
        cursor = next;
        if cursor == 0 {
            break;
        }
    }

    let mut text = Vec::new();
    for key in keys {
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(&mut connection)
            .await
            .expect("TYPE");
        let command = match kind.as_str() {
            "string" => redis::cmd("GET").arg(&key).clone(),
            "hash" => redis::cmd("HGETALL").arg(&key).clone(),
            "zset" => redis::cmd("ZRANGE")
                .arg(&key)
                .arg(0)
                .arg(-1)
                .arg("WITHSCORES")
                .clone(),
            "stream" => redis::cmd("XRANGE").arg(&key).arg("-").arg("+").clone(),
            other => panic!("key {key} has unexpected type {other}"),
        };
        let value: redis::Value = command
            .query_async(&mut connection)
            .await
            .expect("read value");
        text.push(key);
        collect_text(&value, &mut text);
    }
    text
}

/// Appends every string inside `value` to `text`.
fn collect_text(value: &redis::Value, text: &mut Vec<String>) {
    match value {
        redis::Value::BulkString(bytes) => text.push(String::from_utf8_lossy(bytes).into_owned()),
        redis::Value::SimpleString(string) => text.push(string.clone()),
        redis::Value::Int(number) => text.push(number.to_string()),
        redis::Value::Array(items) | redis::Value::Set(items) => {
            for item in items {
                collect_text(item, text);
            }
        }
        redis::Value::Map(pairs) => {
            for (key, item) in pairs {
                collect_text(key, text);
                collect_text(item, text);
            }
        }
        _ => {}
    }
}
