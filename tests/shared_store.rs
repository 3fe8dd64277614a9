//! Behaviour that needs a store shared by several service instances: a
//! lockout that holds against a parallel guessing attack through two nodes,
//! and a call that fails closed while Redis is down and recovers after.
//!
//! Each test starts its own redis-server on a free port and real services
//! on loopback, and calls them with sipp (root, as in CI).

mod support;

use std::time::{Duration, Instant};

use support::redis::{redis_cli, RedisServer};
use support::{
    call_with_sipp, embedded_header, introspect, refer_to, token_claims, Keypad, Service,
};

/// Writes a pepper file that several services share, as nodes of one
/// deployment must, so that their keyed hashes agree.
fn shared_pepper(dir: &std::path::Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;

    let path = dir.join("pepper");
    std::fs::write(&path, "7f".repeat(32)).expect("write the pepper");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .expect("pepper readable by its owner only");
    path
}

/// Points a test config at Redis with a shared pepper and key prefix.
fn use_redis(
    config: &mut toml_edit::DocumentMut,
    url: &str,
    prefix: &str,
    pepper: &std::path::Path,
) {
    config["store"] = toml_edit::table();
    config["store"]["kind"] = toml_edit::value("redis");
    config["store"]["redis_url"] = toml_edit::value(url);
    config["store"]["key_prefix"] = toml_edit::value(prefix);
    config["secrets"]["pepper_file"] = toml_edit::value(pepper.display().to_string());
}

/// Returns the token a sipp call received in its REFER.
fn token_of(run: &support::SippRun, service: &Service) -> String {
    assert!(
        run.succeeded,
        "sipp call failed\n--- sipp ---\n{}\n--- service log ---\n{}",
        run.output,
        service.log()
    );
    let refer_to = refer_to(&run.messages).expect("the REFER carries Refer-To");
    embedded_header(&refer_to, "X-Verification-Token").expect("Refer-To embeds the token")
}

/// Counts the checks of `factor` that ended with `outcome` in a log.
fn count_checks(log: &str, factor: &str, outcome: &str) -> usize {
    let needle = format!("factor=\"{factor}\" outcome=\"{outcome}\"");
    log.lines().filter(|line| line.contains(&needle)).count()
}

#[tokio::test(flavor = "multi_thread")]
async fn parallel_guessing_across_nodes_hits_limit() {
    const LIMIT: usize = 4;
    const CALLS_PER_NODE: usize = 3;

    let redis = RedisServer::standalone();
    let secrets = tempfile::tempdir().expect("temporary directory");
    let pepper = shared_pepper(secrets.path());
    let prefix = format!("lockout-{}:", std::process::id());

    let configure = |config: &mut toml_edit::DocumentMut| {
        use_redis(config, redis.url(), &prefix, &pepper);
        config["lockout"]["calling_number_limit"] = toml_edit::value(LIMIT as i64);
        config["lockout"]["contract_limit"] = toml_edit::value(100);
        config["lockout"]["customer_limit"] = toml_edit::value(100);
    };
    let first = Service::start_with(support::CUSTOMERS_CSV, configure);
    let second = Service::start_with(support::CUSTOMERS_CSV, configure);

    // Every call guesses three wrong contract numbers from one calling
    // number: 18 guesses in all, of which only LIMIT may reach the store.
    let runs = tokio::task::block_in_place(|| {
        std::thread::scope(|scope| {
            let calls: Vec<_> = (0..CALLS_PER_NODE * 2)
                .map(|index| {
                    let service = if index % 2 == 0 { &first } else { &second };
                    scope.spawn(move || {
                        call_with_sipp(
                            service,
                            "0612345699",
                            Keypad::Generated("11111111#22222222#33333333#"),
                        )
                    })
                })
                .collect();
            calls
                .into_iter()
                .map(|call| call.join().expect("sipp thread"))
                .collect::<Vec<_>>()
        })
    });

    let logs = format!("{}\n{}", first.log(), second.log());
    let failed = count_checks(&logs, "contract_number", "failed");
    let locked = count_checks(&logs, "contract_number", "locked");
    assert_eq!(failed, LIMIT, "guesses that reached the store");
    assert!(locked >= 1, "later guesses were locked out");

    for (index, run) in runs.iter().enumerate() {
        let service = if index % 2 == 0 { &first } else { &second };
        let token = token_of(run, service);
        let claims = token_claims(&token);
        assert_eq!(claims["acr"], "unverified", "call {index}: {claims}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn store_outage_fails_closed_then_recovers() {
    // Persistence on, so the customers survive the restart like in
    // production; the test stops the server as a crash would.
    let mut redis = RedisServer::start(&["--appendonly", "yes", "--appendfsync", "always"]);
    let secrets = tempfile::tempdir().expect("temporary directory");
    let pepper = shared_pepper(secrets.path());
    let prefix = format!("outage-{}:", std::process::id());
    let service = Service::start_with(support::CUSTOMERS_CSV, |config| {
        use_redis(config, redis.url(), &prefix, &pepper);
    });

    redis.kill();
    let during = tokio::task::block_in_place(|| {
        call_with_sipp(&service, "0612345601", Keypad::Generated("12345678#"))
    });
    let token = token_of(&during, &service);
    let claims = token_claims(&token);
    assert_eq!(claims["acr"], "unverified", "fails closed: {claims}");
    assert!(
        claims.get("sub").is_none(),
        "no customer without the store: {claims}"
    );
    assert!(service.log().contains("failing closed"));

    redis.restart();
    let after = tokio::task::block_in_place(|| {
        call_with_sipp(&service, "0612345601", Keypad::Generated("12345678#"))
    });
    let token = token_of(&after, &service);
    let claims = introspect(&service, &token).await;
    assert_eq!(claims["active"], true, "{claims}");
    assert_eq!(claims["acr"], "basic", "recovered by itself: {claims}");

    // The audit record of the failed call was kept and written once Redis
    // was back, next to the record of the second call.
    let audit_key = format!("{prefix}audit");
    let started = Instant::now();
    loop {
        let length: usize = redis_cli(redis.port(), &["XLEN", &audit_key])
            .and_then(|reply| reply.trim().parse().ok())
            .unwrap_or(0);
        if length >= 2 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "audit records in Redis: {length}, expected 2\n{}",
            service.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
