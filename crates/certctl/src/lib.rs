//! `certctl`: gets a working, SAN-correct certificate onto disk by the best method the
//! machine offers, and keeps it renewed. Logic lives in the library crates.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kg_cli::{CliError, ConfigCommand, EXIT_CODES_HELP, ExitStatus, GlobalArgs};

mod ca;
mod ensure;
mod inspect;
mod renew;
mod schedule;

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
    /// Make sure a valid certificate for the names is published; issue one only if needed
    Ensure(ensure::Args),
    /// Issue and publish a new certificate, even if the published one is fine
    Issue(ensure::Args),
    /// Show a certificate's names, validity, key and problems: a file, a managed id, or what a server presents
    Inspect(inspect::Args),
    /// Renew every managed certificate that is due; silent when nothing is (for cron)
    Renew(renew::RenewArgs),
    /// List every managed certificate, its expiry and renewal time; exit 1 if any is due or broken
    Status(renew::StatusArgs),
    /// Check modes, owners, links, stale files, key/cert match, expiry and the CA; --fix repairs
    Doctor(renew::DoctorArgs),
    /// Print a crontab line or systemd units that run `certctl renew`
    Schedule(schedule::Args),
    /// Show or export the CA certificate that clients must trust
    #[command(subcommand)]
    Ca(ca::CaCommand),
    /// Print the commands that make this machine's browsers and tools trust the CA
    Trust(ca::TrustArgs),
    /// Show where settings come from, and the paths keygate uses
    #[command(subcommand)]
    Config(ConfigCommand),
}

/// The whole program: parse, run, map to an exit code. `main.rs` only calls this.
pub fn main() -> ExitCode {
    kg_cli::main_with(|| run(Cli::parse()))
}

/// The command-line interface, for generating shell completions and man pages.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

fn run(cli: Cli) -> Result<ExitStatus, CliError> {
    cli.global.apply();
    match &cli.command {
        Command::Ensure(args) => ensure::run(&cli.global, args, false),
        Command::Issue(args) => ensure::run(&cli.global, args, true),
        Command::Inspect(args) => inspect::run(&cli.global, args),
        Command::Renew(args) => renew::renew(&cli.global, args),
        Command::Status(args) => renew::status(&cli.global, args),
        Command::Doctor(args) => renew::doctor(&cli.global, args),
        Command::Schedule(args) => schedule::run(&cli.global, args),
        Command::Ca(cmd) => ca::run(&cli.global, cmd),
        Command::Trust(args) => ca::trust(&cli.global, args),
        Command::Config(cmd) => cmd.run("certctl", &cli.global),
    }
}

/// Maps a cascade error to what the user sees: bad input exits 2, a held lock 75.
pub(crate) fn cli_error(e: kg_cascade::Error) -> CliError {
    if let kg_cascade::Error::Fs(fs) = e {
        return fs.into();
    }
    CliError::classified(&e, e.hint(), e.is_usage(), false)
}
