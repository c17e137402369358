//! `tokenctl`: mints, lists, rotates, revokes and verifies bearer tokens, storing only
//! peppered hashes. Logic lives in the library crates.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kg_cli::{CliError, ConfigCommand, EXIT_CODES_HELP, ExitStatus, GlobalArgs};

/// Manage prefixed, checksummed bearer tokens and seal secrets with age
#[derive(Debug, Parser)]
#[command(name = "tokenctl", version, after_help = EXIT_CODES_HELP)]
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
