//! `certctl`: gets a working, SAN-correct certificate onto disk by the best method the
//! machine offers, and keeps it renewed. Logic lives in the library crates.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kg_cli::{CliError, ConfigCommand, EXIT_CODES_HELP, ExitStatus, GlobalArgs};

/// Provision TLS certificates: tailscale, else mkcert, else keygate's own local CA
#[derive(Debug, Parser)]
#[command(name = "certctl", version, after_help = EXIT_CODES_HELP)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show where settings come from, and the paths keygate uses
    #[command(subcommand)]
    Config(ConfigCommand),
}

fn main() -> ExitCode {
    kg_cli::main_with(|| run(Cli::parse()))
}

fn run(cli: Cli) -> Result<ExitStatus, CliError> {
    match &cli.command {
        Command::Config(cmd) => cmd.run(&cli.global),
    }
}
