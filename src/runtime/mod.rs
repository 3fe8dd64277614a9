//! The tokio edge: sockets, clocks and tasks around the sans-I/O cores.
//!
//! One task owns the SIP socket and the endpoint (`sip_task`). One task per
//! call owns its flow and merges its key presses (`call`). Media threads,
//! one per core, own the RTP sockets and send every call's prompts on one
//! shared 20 ms wheel (`media_engine`). The HTTP API runs beside them.
//! Shutdown is explicit. A `watch` channel signals the SIP task to reject
//! new calls with 503. The SIP task ends when the last call has ended, and
//! the HTTP server stops after it.

mod call;
mod media_engine;
mod ports;
mod sip_task;
mod steps;
mod transport;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::{check_prompt_catalog, load_or_create_pepper, Config, ConfigErrors, Problem};
use crate::media::prompts::PromptLibrary;
use crate::sms::SmsSender;
use crate::store::{open_store, Store};
use crate::verify::customers::{load_customers_with_settings, CustomerFileSettings};
use crate::verify::factors::Date;
use crate::verify::keyed_hash::KeyedHasher;
use crate::verify::token::TokenSigner;

pub use media_engine::{MediaEngine, MediaEvent, MediaStream};
pub use ports::{RtpPorts, RtpSocket};
pub use transport::{BoundListeners, SipListeners, TransportError};

/// Everything the call tasks share, built once at start-up.
pub struct Services {
    /// The loaded configuration, policy included.
    pub config: Config,
    /// Every prompt, decoded once into G.711 frames.
    pub prompts: PromptLibrary,
    /// Customers, lockout counters, one-time codes, token ids and audit.
    pub store: Arc<dyn Store>,
    /// Sends one-time codes through the configured gateways.
    pub sms: SmsSender,
    /// Audit records waiting for the store after it failed.
    pub audit: steps::AuditBacklog,
    /// Signs verification tokens; also serves the JWKS.
    pub signer: Arc<TokenSigner>,
    /// Turns contract and phone numbers into keyed hashes.
    pub hasher: KeyedHasher,
    /// Local RTP ports, one per call.
    pub rtp_ports: RtpPorts,
    /// Local IPv6 RTP ports for callers who offer IPv6 media, when
    /// `media.address_v6` is set.
    pub rtp_ports_v6: Option<RtpPorts>,
    /// The media threads that play prompts and read key presses.
    pub media: MediaEngine,
    /// Region for numbers written without a country code.
    pub default_region: phonenumber::country::Id,
}

/// Command-line values that take precedence over the config file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// Replaces `sip.listen`.
    pub sip_listen: Option<SocketAddr>,
    /// Replaces `sip.listen_tcp` when not empty.
    pub sip_listen_tcp: Vec<SocketAddr>,
    /// Replaces `sip.listen_tls` when not empty.
    pub sip_listen_tls: Vec<SocketAddr>,
    /// Replaces `http.listen`.
    pub http_listen: Option<SocketAddr>,
    /// Replaces `customers.file`.
    pub customers: Option<PathBuf>,
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The config, customers file, prompts or secrets had problems; each
    /// line names the file, line and key.
    #[error("{0}")]
    Invalid(String),
    /// A listen address could not be bound.
    #[error("cannot listen on {address}: {source}; pick a free address with --sip-listen / --http-listen")]
    Bind {
        /// The address from the config or the command line.
        address: SocketAddr,
        /// What the operating system said.
        source: std::io::Error,
    },
}

/// How long a draining service waits for calls to end before it stops
/// anyway. Long enough for a caller to finish a typical verification.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(120);

// Dotted keys of the config values that name the files read at start-up. A
// problem with one of those files names the key and its line.
const PEPPER_FILE_KEY: &str = "secrets.pepper_file";
const SIGNING_KEY_FILE_KEY: &str = "secrets.signing_key_file";
const PROMPTS_DIR_KEY: &str = "prompts.dir";

/// Loads the config file and applies the command-line overrides.
pub fn load_config(path: &Path, overrides: &Overrides) -> Result<Config, ConfigErrors> {
    let mut config = Config::load(path)?;

    if let Some(listen) = overrides.sip_listen {
        // RTP follows the SIP address unless the file set its own.
        if config.media.address == config.sip.listen.ip() {
            config.media.address = listen.ip();
        }
        config.sip.listen = listen;
    }
    if !overrides.sip_listen_tcp.is_empty() {
        config.sip.listen_tcp.clone_from(&overrides.sip_listen_tcp);
    }
    if !overrides.sip_listen_tls.is_empty() {
        config.sip.listen_tls.clone_from(&overrides.sip_listen_tls);
    }
    if let Some(listen) = overrides.http_listen {
        config.http.listen = listen;
    }
    if let Some(customers) = &overrides.customers {
        config.customers.file = customers.clone();
    }

    Ok(config)
}

/// Loads the config, secrets, customers and prompts like `serve` does and
/// returns every problem found, without binding anything. Secrets that do
/// not exist yet are not created; `serve` creates them.
pub fn check(path: &Path, overrides: &Overrides) -> Vec<Problem> {
    let config = match load_config(path, overrides) {
        Ok(config) => config,
        Err(errors) => return errors.problems,
    };
    let mut problems = Vec::new();
    let locations = &config.locations;

    let pepper_file = &config.secrets.pepper_file;
    let hasher = if pepper_file.exists() {
        match load_or_create_pepper(pepper_file).map(|(pepper, _)| KeyedHasher::new(&pepper)) {
            Ok(Ok(hasher)) => Some(hasher),
            Ok(Err(error)) => {
                problems.push(locations.problem(PEPPER_FILE_KEY, error.to_string()));
                None
            }
            Err(error) => {
                problems.push(locations.problem(PEPPER_FILE_KEY, error.to_string()));
                None
            }
        }
    } else {
        // A throwaway pepper is enough to check the customers file's syntax.
        KeyedHasher::new(&[0u8; 32]).ok()
    };

    if config.secrets.signing_key_file.exists() {
        if let Err(error) = TokenSigner::load_or_create(&config.secrets.signing_key_file) {
            problems.push(locations.problem(SIGNING_KEY_FILE_KEY, error.to_string()));
        }
    }

    if let Some(hasher) = hasher {
        if let Err(errors) = load_customers_with_settings(
            &config.customers.file,
            &customer_file_settings(&config),
            &hasher,
        ) {
            problems.extend(errors.problems);
        }
    }

    if let Err(error) = SmsSender::from_config(&config.sms) {
        problems.push(Problem::new(path, None, Some("sms"), error.to_string()));
    }
    problems.extend(check_prompt_catalog(
        &config.prompts.dir.join("catalog.toml"),
    ));
    problems.extend(check_menu_prompts(&config));

    let prompts_dir = &config.prompts.dir;
    problems.extend(
        PromptLibrary::problems(prompts_dir)
            .into_iter()
            .map(|error| locations.problem(PROMPTS_DIR_KEY, error.to_string())),
    );
    problems
}

/// Returns a problem, placed on the menu entry in the config file, for every
/// request type in a menu whose option prompt `request_type_<name>.wav` is
/// missing in some language. A menu of one request type is skipped, because
/// the call flow plays no menu for it.
fn check_menu_prompts(config: &Config) -> Vec<Problem> {
    let mut problems = Vec::new();

    for line in config.policy.service_lines() {
        if line.menu.len() < 2 {
            continue;
        }
        for request_type in &line.menu {
            let name = format!("request_type_{request_type}");
            let missing = PromptLibrary::missing_named(&config.prompts.dir, &name);
            if missing.is_empty() {
                continue;
            }

            let files: Vec<String> = missing
                .iter()
                .map(|path| path.display().to_string())
                .collect();
            let files = match files.as_slice() {
                [file] => format!("prompt file {file} is"),
                _ => format!("prompt files {} are", files.join(", ")),
            };
            problems.push(config.locations.menu_entry_problem(
                &line.name,
                request_type,
                format!("{files} missing for request type `{request_type}` of service line `{}`; add [{name}] to prompts/catalog.toml if it is not there, then run prompts/generate", line.name),
            ));
        }
    }
    problems
}

fn customer_file_settings(config: &Config) -> CustomerFileSettings {
    CustomerFileSettings::from_config(config, Date::from_system_time(std::time::SystemTime::now()))
}

/// Loads the customers file named by the config and replaces the customers
/// in `store` with it, as `serve` does at start-up and
/// `ivr-verify customers import` does on demand.
pub async fn import_customers(
    config: &Config,
    file: &Path,
    store: &dyn Store,
) -> Result<usize, String> {
    let (pepper, _) = load_or_create_pepper(&config.secrets.pepper_file).map_err(|error| {
        config
            .locations
            .problem(PEPPER_FILE_KEY, error.to_string())
            .to_string()
    })?;
    let hasher = KeyedHasher::new(&pepper).map_err(|error| error.to_string())?;
    let customers = load_customers_with_settings(file, &customer_file_settings(config), &hasher)
        .map_err(|errors| errors.to_string())?;
    let count = customers.len();
    store
        .replace_customers(customers)
        .await
        .map_err(|error| format!("{}: importing customers failed: {error}", file.display()))?;
    Ok(count)
}

/// Loads secrets, customers and prompts: everything a call needs.
async fn build_services(config: Config) -> Result<Services, StartError> {
    let invalid = |path: &Path, error: &dyn std::fmt::Display| {
        StartError::Invalid(Problem::new(path, None, None, error.to_string()).to_string())
    };
    // Problems with a file that a config key names point at that key.
    let invalid_value = |key: &str, error: &dyn std::fmt::Display| {
        StartError::Invalid(config.locations.problem(key, error.to_string()).to_string())
    };

    let pepper_file = &config.secrets.pepper_file;
    let (pepper, created) = load_or_create_pepper(pepper_file)
        .map_err(|error| invalid_value(PEPPER_FILE_KEY, &error))?;
    if created {
        tracing::warn!(path = %pepper_file.display(), "created a new HMAC pepper; keep it secret and back it up");
    }
    let hasher =
        KeyedHasher::new(&pepper).map_err(|error| invalid_value(PEPPER_FILE_KEY, &error))?;

    let key_file = &config.secrets.signing_key_file;
    let (signer, created) = TokenSigner::load_or_create(key_file)
        .map_err(|error| invalid_value(SIGNING_KEY_FILE_KEY, &error))?;
    if created {
        tracing::warn!(path = %key_file.display(), kid = signer.kid(), "created a new token signing key; agent desktops must fetch the new JWK Set");
    }
    let signer = signer.with_issuer_audience(&config.token.issuer, &config.token.audience);

    let store = open_store(&config.store)
        .await
        .map_err(|error| StartError::Invalid(format!("store: {error}")))?;
    let customers = load_customers_with_settings(
        &config.customers.file,
        &customer_file_settings(&config),
        &hasher,
    )
    .map_err(|errors| StartError::Invalid(errors.to_string()))?;
    let customer_count = customers.len();
    store
        .replace_customers(customers)
        .await
        .map_err(|error| invalid(&config.customers.file, &error))?;
    tracing::info!(customers = customer_count, path = %config.customers.file.display(), "customers loaded");

    let sms = SmsSender::from_config(&config.sms)
        .map_err(|error| StartError::Invalid(format!("sms: {error}")))?;

    let prompts = PromptLibrary::load(&config.prompts.dir)
        .map_err(|error| invalid_value(PROMPTS_DIR_KEY, &error))?;

    let media = MediaEngine::start_per_core()
        .map_err(|error| StartError::Invalid(format!("cannot start the media threads: {error}")))?;

    Ok(Services {
        media,
        sms,
        audit: steps::AuditBacklog::default(),
        rtp_ports: RtpPorts::new(
            config.media.address,
            config.media.rtp_port_min,
            config.media.rtp_port_max,
        ),
        rtp_ports_v6: config.media.address_v6.map(|address| {
            RtpPorts::new(
                address,
                config.media.rtp_port_min,
                config.media.rtp_port_max,
            )
        }),
        default_region: config.customers.default_region,
        prompts,
        store,
        signer: Arc::new(signer),
        hasher,
        config,
    })
}

/// Loads everything, binds the sockets and runs until SIGINT or SIGTERM.
pub async fn serve(path: &Path, overrides: &Overrides) -> Result<(), StartError> {
    let config =
        load_config(path, overrides).map_err(|errors| StartError::Invalid(errors.to_string()))?;
    let services = Arc::new(build_services(config).await?);

    let sip = &services.config.sip;
    let sip_address = sip.listen;
    let sip_listeners = SipListeners {
        udp: std::iter::once(sip.listen)
            .chain(sip.listen_udp_extra.iter().copied())
            .collect(),
        tcp: sip.listen_tcp.clone(),
        tls: sip.listen_tls.clone(),
        tls_certificate_file: sip.tls_certificate_file.clone(),
        tls_private_key_file: sip.tls_private_key_file.clone(),
    };
    let sip_bound = sip_listeners.bind().await.map_err(|error| match error {
        TransportError::Bind {
            address, source, ..
        } => StartError::Bind { address, source },
        other => StartError::Invalid(other.to_string()),
    })?;
    let http_address = services.config.http.listen;
    let http_listener =
        TcpListener::bind(http_address)
            .await
            .map_err(|source| StartError::Bind {
                address: http_address,
                source,
            })?;

    tracing::info!(
        sip_udp = %sip_address,
        sip_tcp = ?services.config.sip.listen_tcp,
        sip_tls = ?services.config.sip.listen_tls,
        http = %http_address,
        rtp = %services.rtp_ports.address(),
        "ivr-verify started"
    );

    let audit_flush = tokio::spawn(steps::flush_audit_backlog(Arc::clone(&services)));
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let sip = tokio::spawn(sip_task::run(sip_bound, Arc::clone(&services), shutdown_rx));

    let router = crate::api::router(crate::api::ApiState {
        signer: Arc::clone(&services.signer),
        store: Arc::clone(&services.store),
    });
    // The HTTP API stops only after the calls have drained: agents must be
    // able to introspect the tokens of calls transferred during the drain.
    let (http_stop_tx, mut http_shutdown) = watch::channel(false);
    let http = tokio::spawn(async move {
        axum::serve(http_listener, router)
            .with_graceful_shutdown(async move {
                let _ = http_shutdown.wait_for(|stop| *stop).await;
            })
            .await
    });

    wait_for_signal().await;
    tracing::info!("shutdown requested; draining calls (a second signal stops at once)");
    let _ = shutdown_tx.send(true);

    tokio::select! {
        finished = tokio::time::timeout(DRAIN_TIMEOUT, sip) => {
            if finished.is_err() {
                tracing::warn!(timeout_s = DRAIN_TIMEOUT.as_secs(), "calls still active after the drain timeout; stopping");
            }
        }
        () = wait_for_signal() => tracing::warn!("second signal; stopping with calls active"),
    }

    let _ = http_stop_tx.send(true);
    if let Ok(Err(error)) = http.await {
        tracing::error!(%error, "HTTP server failed");
    }

    // One last try for audit records kept while the store was down.
    audit_flush.abort();
    services.audit.flush(services.store.as_ref()).await;
    if !services.audit.is_empty() {
        tracing::error!(
            records = services.audit.len(),
            "audit records could not be written before stopping"
        );
    }
    tracing::info!("ivr-verify stopped");
    Ok(())
}

async fn wait_for_signal() {
    let interrupt = tokio::signal::ctrl_c();

    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(signal) => signal,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only SIGINT stops the service");
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }

    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

#[cfg(test)]
mod check_tests;
