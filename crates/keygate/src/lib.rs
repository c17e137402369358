//! `keygate`: the small verifying server: HTTPS with certctl's certificates and `/auth`
//! for reverse proxies from tokenctl's store. Logic lives in the library crates.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kg_cli::{CliError, ConfigCommand, EXIT_CODES_HELP, ExitStatus, GlobalArgs};

mod people;
mod serve;
mod store;
mod unit;
mod up;

/// Serve HTTPS and answer /auth for nginx, Caddy, Traefik, Envoy and HAProxy, or protect a web app
#[derive(Debug, Parser)]
#[command(name = "keygate", version, after_help = EXIT_CODES_HELP)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Get a certificate and a token, serve, and print how to call it (no config needed)
    Up(up::UpArgs),
    /// Serve /auth, /health and /metrics (with --upstream: protect a web app) until SIGTERM or SIGINT
    Serve(serve::ServeArgs),
    /// Check the config, certificate, token store and listen addresses; exit 1 if a check fails
    Check(serve::CheckArgs),
    /// Print a systemd service running `keygate serve` (hardened with --system) and, for a file audit log, a logrotate snippet
    Unit(unit::UnitArgs),
    /// Add, change and remove the people who sign in to the portal
    #[command(subcommand)]
    Users(people::UsersCommand),
    /// Make groups and choose their members
    #[command(subcommand)]
    Groups(people::GroupsCommand),
    /// Explain who may enter which service
    #[command(subcommand)]
    Access(people::AccessCommand),
    /// Show the people's audit trail: sign-ins, refusals, service entries, admin changes
    Audit(people::AuditArgs),
    /// Back up the store browser sessions live in
    #[command(subcommand)]
    Store(store::StoreCommand),
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
        Command::Up(args) => up::up(&cli.global, args),
        Command::Serve(args) => serve::serve(&cli.global, args),
        Command::Check(args) => serve::check(&cli.global, args),
        Command::Unit(args) => unit::run(&cli.global, args),
        Command::Store(cmd) => store::run(&cli.global, cmd),
        Command::Users(cmd) => people::users(&cli.global, cmd),
        Command::Groups(cmd) => people::groups(&cli.global, cmd),
        Command::Access(cmd) => people::access(&cli.global, cmd),
        Command::Audit(args) => people::audit(&cli.global, args),
        Command::Config(cmd) => cmd.run("keygate", &cli.global),
    }
}
