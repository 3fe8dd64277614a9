//! The tokio edge: sockets, clocks and tasks around the sans-I/O cores.
//!
//! One task owns the SIP socket and the endpoint (`sip_task`); one task per
//! call owns its RTP socket, player, digit receiver and flow (`call`); the
//! HTTP API runs beside them. Shutdown is explicit: a `watch` channel tells
//! the SIP task to refuse new calls with 503, it ends when the last call has
//! ended, and the HTTP server stops after it.

mod call;
mod ports;
mod sip_task;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;

use crate::config::Config;
use crate::flow::FlowConfig;
use crate::media::prompts::{Language, PromptLibrary};
use crate::store::{MemoryStore, Store};
use crate::verify::keyed_hash::KeyedHasher;
use crate::verify::token::TokenSigner;

pub use ports::{RtpPorts, RtpSocket};

/// Everything the call tasks share, built once at start-up.
pub struct Services {
    /// The loaded configuration.
    pub config: Config,
    /// Limits and timeouts of the call flow, taken from `config.flow`.
    pub flow_config: FlowConfig,
    /// Every prompt, decoded once into G.711 frames.
    pub prompts: PromptLibrary,
    /// The language callers hear.
    pub language: Language,
    /// Customers, token ids and (later) counters.
    pub store: Arc<dyn Store>,
    /// Signs verification tokens; also serves the JWKS.
    pub signer: Arc<TokenSigner>,
    /// Turns contract and phone numbers into keyed hashes.
    pub hasher: KeyedHasher,
    /// Local RTP ports, one per call.
    pub rtp_ports: RtpPorts,
    /// Region for numbers written without a country code.
    pub default_region: phonenumber::country::Id,
}

/// Command-line values that take precedence over the config file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// Replaces `sip.listen`.
    pub sip_listen: Option<SocketAddr>,
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

/// Loads everything, binds the sockets and runs until SIGINT or SIGTERM.
pub async fn serve(config: Config) -> Result<(), StartError> {
    let services = Arc::new(build_services(config)?);

    let sip_address = services.config.sip.listen;
    let sip_socket = UdpSocket::bind(sip_address)
        .await
        .map_err(|source| StartError::Bind {
            address: sip_address,
            source,
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
        sip = %sip_address,
        http = %http_address,
        rtp = %services.rtp_ports.address(),
        "ivr-verify started"
    );

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let sip = tokio::spawn(sip_task::run(
        sip_socket,
        Arc::clone(&services),
        shutdown_rx.clone(),
    ));

    let router = crate::api::router(crate::api::ApiState {
        signer: Arc::clone(&services.signer),
        store: Arc::clone(&services.store),
    });
    let mut http_shutdown = shutdown_rx.clone();
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

    if let Ok(Err(error)) = http.await {
        tracing::error!(%error, "HTTP server failed");
    }
    tracing::info!("ivr-verify stopped");
    Ok(())
}

async fn wait_for_signal() {
    let interrupt = tokio::signal::ctrl_c();

    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
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
