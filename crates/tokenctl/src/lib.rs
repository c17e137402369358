//! `tokenctl`: mints, lists, rotates, revokes and verifies bearer tokens, storing only
//! peppered hashes, seals secrets with age, and manages OAuth clients and signing keys. Logic lives in the library crates: this is
//! argument parsing, the order credentials are looked for in, and output.
//!
//! Tokens are never accepted as a command-line value: they come from a file, a descriptor,
//! stdin, `KEYGATE_TOKEN`, a profile's token file or a no-echo prompt. Usage errors are
//! printed with anything shaped like a token removed, in case one was pasted anyway.
#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use kg_cli::{CliError, ConfigCommand, Context, EXIT_CODES_HELP, ExitStatus, GlobalArgs};
use kg_fs::lock::Wait;
use kg_tokens::{FileError, Prefix, StoreError, StorePaths};

mod browser;
mod clients;
mod creds;
mod oauth;
mod seal;
mod tokens;

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
    /// Make sure NAME has a token and a client token file; print the file's path
    Ensure(tokens::EnsureArgs),
    /// Issue a token; its plaintext is shown exactly once (stdout or a 0600 file)
    Create(tokens::CreateArgs),
    /// List tokens: id, name, scopes, status, created, expires (never secrets)
    List(tokens::ListArgs),
    /// Replace NAME's token; the old one keeps working for the grace period
    Rotate(tokens::RotateArgs),
    /// Revoke a token by id, or every token of a name, at once
    Revoke(tokens::RevokeArgs),
    /// Check a token (from a file, a descriptor, stdin, KEYGATE_TOKEN, a profile or a prompt)
    Verify(tokens::VerifyArgs),
    /// Remove revoked and expired tokens older than the retention period
    Prune(tokens::PruneArgs),
    /// Describe the token format, or print a regex for secret scanners
    Format(tokens::FormatArgs),
    /// Generate an age X25519 identity (0600; never overwrites)
    Keygen(seal::KeygenArgs),
    /// Encrypt stdin with age, to recipients or with a passphrase
    Seal(seal::SealArgs),
    /// Decrypt an age file from stdin; output appears only once it fully authenticated
    Unseal(seal::UnsealArgs),
    /// Register, list, show, rotate and revoke OAuth clients
    #[command(subcommand)]
    Client(clients::ClientCommand),
    /// List or rotate the keys that sign access tokens
    #[command(subcommand)]
    Keys(clients::KeysCommand),
    /// Sign a person in to an OAuth issuer (browser with PKCE, or the device grant) and cache the tokens
    Login(oauth::LoginArgs),
    /// Print a profile's OAuth access token, fetching one when the cached one is too old
    Token(oauth::TokenArgs),
    /// Show who a profile is signed in as, until when, and where the tokens are kept
    Status(oauth::StatusArgs),
    /// Revoke a profile's OAuth sign-in at its issuer and forget it here
    Logout(oauth::LogoutArgs),
    /// git's credential helper: the profile's access token as the password
    CredentialHelper(oauth::CredentialHelperArgs),
    /// Show where settings come from, and the paths keygate uses
    #[command(subcommand)]
    Config(ConfigCommand),
}

/// The whole program: parse, run, map to an exit code. `main.rs` only calls this.
pub fn main() -> ExitCode {
    kg_cli::main_with(|| run(parse()?))
}

/// The command-line interface, for generating shell completions and man pages.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

fn run(cli: Cli) -> Result<ExitStatus, CliError> {
    let g = &cli.global;
    g.apply();
    match &cli.command {
        Command::Ensure(args) => tokens::ensure(g, args),
        Command::Create(args) => tokens::create(g, args),
        Command::List(args) => tokens::list(g, args),
        Command::Rotate(args) => tokens::rotate(g, args),
        Command::Revoke(args) => tokens::revoke(g, args),
        Command::Verify(args) => tokens::verify(g, args),
        Command::Prune(args) => tokens::prune(g, args),
        Command::Format(args) => tokens::format(g, args),
        Command::Keygen(args) => seal::keygen(g, args),
        Command::Seal(args) => seal::seal(g, args),
        Command::Unseal(args) => seal::unseal(g, args),
        Command::Client(cmd) => clients::client(g, cmd),
        Command::Keys(cmd) => clients::keys(g, cmd),
        Command::Login(args) => oauth::login(g, args),
        Command::Token(args) => oauth::token(g, args),
        Command::Status(args) => oauth::status(g, args),
        Command::Logout(args) => oauth::logout(g, args),
        Command::CredentialHelper(args) => oauth::credential_helper(g, args),
        Command::Config(cmd) => {
            load(g, &[])?;
            cmd.run("tokenctl", g)
        }
    }
}

/// Parses the command line. clap quotes offending arguments in its errors, so anything
/// shaped like a token is cut out of the message before it is printed.
fn parse() -> Result<Cli, CliError> {
    match Cli::try_parse() {
        Ok(cli) => Ok(cli),
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                e.exit();
            }
            let text = redact(&e.render().to_string());
            kg_cli::note(text.trim_end_matches('\n'));
            std::process::exit(ExitStatus::Usage as i32);
        }
    }
}

/// Replaces every run of word characters (`[A-Za-z0-9_]`) that is 40 characters or longer
/// and contains `_` with `[REDACTED]`. Tokens are 56 or more such characters; near-misses
/// (a truncated copy) are caught too, while paths, flags and words are left alone.
fn redact(text: &str) -> String {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(is_word) {
        out.push_str(&rest[..start]);
        let run = &rest[start..];
        let len = run.find(|c| !is_word(c)).unwrap_or(run.len());
        let word = &run[..len];
        if word.len() >= 40 && word.contains('_') {
            out.push_str("[REDACTED]");
        } else {
            out.push_str(word);
        }
        rest = &run[len..];
    }
    out.push_str(rest);
    out
}

/// Loads the configuration with `flags`. Secrets given with `--set` (`client.token`,
/// `age.passphrase`) are refused by `kg_cli` for every binary, without echoing them.
pub(crate) fn load(
    global: &GlobalArgs,
    flags: &[(&str, &str, String)],
) -> Result<Context, CliError> {
    global.load(flags)
}

/// The store's paths for this configuration.
pub(crate) fn store_paths(ctx: &Context) -> StorePaths {
    let l = &ctx.locations;
    StorePaths {
        store: l.state_dir.join(kg_tokens::files::STORE_FILE),
        pepper: l.private_dir.join(kg_tokens::files::PEPPER_FILE),
        lock: l.lock_file(kg_tokens::files::LOCK_NAME),
    }
}

/// The prefix for a new store (`token.prefix`); an existing store keeps its own.
pub(crate) fn config_prefix(ctx: &Context) -> Result<Prefix, CliError> {
    let raw = ctx.config.str("token.prefix").unwrap_or(Prefix::DEFAULT);
    Prefix::new(raw).map_err(|e| {
        CliError::usage(format!("invalid value for 'token.prefix': {e}"))
            .with_hint("for example token.prefix = \"kg\"")
    })
}

pub(crate) fn wait(secs: Option<u64>) -> Wait {
    match secs.unwrap_or(DEFAULT_WAIT_SECS) {
        0 => Wait::No,
        s => Wait::Up(Duration::from_secs(s)),
    }
}

/// How long a store change waits for another run's lock by default. A change holds the lock
/// for milliseconds, so parallel provisioning (Ansible forks, CI matrix jobs) should queue
/// rather than fail, as apt, git and SQLite's busy timeout do; a lock held longer than this
/// is a stuck run, reported with exit 75.
const DEFAULT_WAIT_SECS: u64 = 10;

/// Maps a store file error to what the user sees: a corrupt store or pepper exits 2, a held
/// lock 75, anything else 1.
pub(crate) fn file_error(e: FileError) -> CliError {
    CliError::classified(&e, e.hint(), e.is_usage(), e.is_locked())
}

/// Maps a refused store operation: bad input exits 2, a state that does not allow the
/// operation (a name already taken, nothing to rotate, an unknown id) exits 1.
pub(crate) fn store_error(e: StoreError) -> CliError {
    let usage = matches!(
        e,
        StoreError::InvalidName
            | StoreError::NameLooksLikeToken
            | StoreError::ScopeLooksLikeToken { .. }
            | StoreError::InvalidScope { .. }
            | StoreError::InvalidId
            | StoreError::ExpiryNotInFuture { .. }
            | StoreError::NegativeGrace
            | StoreError::TimeOutOfRange
    );
    CliError::classified(&e, e.hint(), usage, false)
}

/// The current time (or the test clock, `kg_cli::now`), in whole seconds: the store and
/// listings stay readable, and nothing here needs more.
pub(crate) fn now(config: &kg_config::Config) -> Result<time::OffsetDateTime, CliError> {
    let t = kg_cli::now(config)?;
    Ok(t.replace_nanosecond(0).unwrap_or(t))
}

/// RFC 3339 text of a time, for output (UTC, as every `--json` instant).
pub(crate) fn rfc3339(t: time::OffsetDateTime) -> String {
    kg_cli::rfc3339(t)
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redact_removes_token_shapes_only() {
        let token = "kg_0123456789AB_abcdefghijklmnopqrstuvwxyzABCDEF012345";
        let text = format!("error: unexpected argument '{token}' found; also --token={token}x");
        let out = redact(&text);
        assert!(!out.contains("abcdefghijklmnop"), "{out}");
        assert_eq!(
            out,
            "error: unexpected argument '[REDACTED]' found; also --token=[REDACTED]"
        );
        let plain = "error: invalid value '/some/long/path/to_a_file.token' for '--token-fd <N>'";
        assert_eq!(redact(plain), plain);
    }
}
