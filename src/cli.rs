//! Command-line interface: parsing, logging set-up and exit codes.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::runtime::Overrides;

/// Config file used when `--config` is not given, relative to the working
/// directory (the repository root in development).
pub const DEFAULT_CONFIG: &str = "config/default.toml";

/// Verifies callers for contact centers over SIP and hands them to an agent
/// with a signed token.
#[derive(Debug, Parser)]
#[command(name = "ivr-verify", version, about)]
pub struct Cli {
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service: SIP, media and the HTTP API.
    Serve(ConfigArgs),
    /// Load the config, customers file, prompts and secrets, print every
    /// problem with its file, line and key, and exit 1 if there was any.
    CheckConfig(ConfigArgs),
    /// Manage the registered customers in the configured store.
    Customers {
        /// The customers subcommand.
        #[command(subcommand)]
        command: CustomersCommand,
    },
    /// Show what the verification policy asks.
    Policy {
        /// The policy subcommand.
        #[command(subcommand)]
        command: PolicyCommand,
    },
}

/// `customers` subcommands.
#[derive(Debug, Subcommand)]
pub enum CustomersCommand {
    /// Replace the customers in the configured store with those of a
    /// customers file (CSV). Contract numbers and knowledge factors are
    /// stored only as keyed hashes.
    Import {
        /// The customers file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Config file (TOML) that names the store and the pepper.
        #[arg(long, value_name = "FILE", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
}

/// `policy` subcommands.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Print what a call of one request type needs: the level, its factors,
    /// and the limits on codes and attempts.
    Explain {
        /// Request type name, as in `[request_types.NAME]`.
        #[arg(long, value_name = "NAME")]
        request_type: String,
        /// Config file (TOML).
        #[arg(long, value_name = "FILE", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
}

/// Options shared by `serve` and `check-config`.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Config file (TOML).
    #[arg(long, value_name = "FILE", default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,

    /// SIP listen address (UDP), overriding `sip.listen`.
    #[arg(long, value_name = "ADDR:PORT")]
    pub sip_listen: Option<SocketAddr>,

    /// SIP listen address for TCP, overriding `sip.listen_tcp`; repeat for
    /// several.
    #[arg(long, value_name = "ADDR:PORT")]
    pub sip_listen_tcp: Vec<SocketAddr>,

    /// SIP listen address for TLS, overriding `sip.listen_tls`; repeat for
    /// several.
    #[arg(long, value_name = "ADDR:PORT")]
    pub sip_listen_tls: Vec<SocketAddr>,

    /// HTTP API listen address, overriding `http.listen`.
    #[arg(long, value_name = "ADDR:PORT")]
    pub http_listen: Option<SocketAddr>,

    /// Customers file (CSV), overriding `customers.file`.
    #[arg(long, value_name = "FILE")]
    pub customers: Option<PathBuf>,
}

impl ConfigArgs {
    fn overrides(&self) -> Overrides {
        Overrides {
            sip_listen: self.sip_listen,
            sip_listen_tcp: self.sip_listen_tcp.clone(),
            sip_listen_tls: self.sip_listen_tls.clone(),
            http_listen: self.http_listen,
            customers: self.customers.clone(),
        }
    }
}

/// Runs the parsed command and returns the process exit code: 0 on
/// success, 1 when the configuration has problems or the service failed.
pub fn run(cli: Cli) -> ExitCode {
    init_logging();

    match cli.command {
        Command::Serve(args) => serve(&args),
        Command::CheckConfig(args) => check_config(&args),
        Command::Customers {
            command: CustomersCommand::Import { file, config },
        } => import_customers(&config, &file),
        Command::Policy {
            command:
                PolicyCommand::Explain {
                    request_type,
                    config,
                },
        } => explain_policy(&config, &request_type),
    }
}

fn import_customers(config_path: &Path, file: &Path) -> ExitCode {
    let config = match crate::config::Config::load(config_path) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    let Some(runtime) = build_runtime() else {
        return ExitCode::FAILURE;
    };

    let result = runtime.block_on(async {
        let store = crate::store::open_store(&config.store)
            .await
            .map_err(|error| format!("opening the store failed: {error}"))?;
        crate::runtime::import_customers(&config, file, store.as_ref()).await
    });
    match result {
        Ok(count) => {
            println!("{}: imported {count} customers", file.display());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn explain_policy(config_path: &Path, request_type: &str) -> ExitCode {
    let config = match crate::config::Config::load(config_path) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
    };

    match crate::verify::policy::explain_request_type(&config, request_type) {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn build_runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => Some(runtime),
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            None
        }
    }
}

fn serve(args: &ConfigArgs) -> ExitCode {
    let Some(runtime) = build_runtime() else {
        return ExitCode::FAILURE;
    };

    let result = runtime.block_on(crate::runtime::serve(&args.config, &args.overrides()));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn check_config(args: &ConfigArgs) -> ExitCode {
    let problems = crate::runtime::check(&args.config, &args.overrides());

    if problems.is_empty() {
        println!("{}: OK", args.config.display());
        return ExitCode::SUCCESS;
    }

    for problem in &problems {
        eprintln!("{problem}");
    }
    eprintln!("{} problem(s) found", problems.len());
    ExitCode::FAILURE
}

/// Logs go to standard error; `RUST_LOG` picks the level (default `info`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour codes only on a terminal, so log files and journald stay plain.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .init();
}
