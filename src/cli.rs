//! Command-line interface: parsing, logging set-up and exit codes.

use std::net::SocketAddr;
use std::path::PathBuf;
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
    /// What to do.
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
    }
}

fn serve(args: &ConfigArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
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
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
