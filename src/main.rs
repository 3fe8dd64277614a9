//! The `ivr-verify` command: `serve` runs the service, `check-config`
//! validates a deployment without starting it.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = ivr_verify::cli::Cli::parse();
    ivr_verify::cli::run(cli)
}
