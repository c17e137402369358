//! What the three binaries share: exit codes, error reporting, output, global options.
//!
//! The binaries stay thin: `main` calls [`main_with`] with a `run` function, and everything
//! a user sees about failure (the one-line error, the hint, the exit code) is decided here.
#![forbid(unsafe_code)]

pub mod tty;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use kg_config::{Config, ConfigError};

#[cfg(feature = "codegen")]
pub mod codegen;

/// Where things live, as [`GlobalArgs::locations`] resolves them.
pub use kg_config::Locations;

/// Exit codes, the same for `certctl`, `tokenctl` and `keygate`. Scripts may rely on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// The command did what was asked (including "nothing to do").
    Success = 0,
    /// The operation ran and failed, or found a problem (invalid token, cert due, ...).
    Failure = 1,
    /// Bad usage or configuration: nothing was attempted.
    Usage = 2,
    /// Another run holds the lock (EX_TEMPFAIL): try again later or pass `--wait`.
    Locked = 75,
}

/// The exit code table shown at the end of every `--help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0   success, including \"nothing to do\"
  1   the operation ran and failed, or found a problem
  2   usage or configuration error; nothing was attempted
  75  another run holds the lock; try again later or pass --wait";

impl From<ExitStatus> for ExitCode {
    fn from(s: ExitStatus) -> ExitCode {
        ExitCode::from(s as u8)
    }
}

/// An error as the user sees it: one line naming the object, an optional hint, an exit code.
#[derive(Debug)]
pub struct CliError {
    pub status: ExitStatus,
    pub message: String,
    pub hint: Option<String>,
}

impl CliError {
    pub fn new(status: ExitStatus, message: impl Into<String>) -> CliError {
        CliError {
            status,
            message: message.into(),
            hint: None,
        }
    }

    pub fn failure(message: impl Into<String>) -> CliError {
        CliError::new(ExitStatus::Failure, message)
    }

    pub fn usage(message: impl Into<String>) -> CliError {
        CliError::new(ExitStatus::Usage, message)
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> CliError {
        self.hint = Some(hint.into());
        self
    }

    /// An error from one of our libraries, classified the same way everywhere: another run
    /// holds the lock (75), bad input (2), or the operation failed (1).
    pub fn classified(
        e: &impl std::fmt::Display,
        hint: Option<String>,
        usage: bool,
        locked: bool,
    ) -> CliError {
        let status = if locked {
            ExitStatus::Locked
        } else if usage {
            ExitStatus::Usage
        } else {
            ExitStatus::Failure
        };
        CliError {
            status,
            message: e.to_string(),
            hint,
        }
    }

    fn broken_pipe() -> CliError {
        CliError::new(ExitStatus::Success, "")
    }

    fn is_broken_pipe(&self) -> bool {
        self.status == ExitStatus::Success && self.message.is_empty()
    }
}

impl From<kg_fs::Error> for CliError {
    fn from(e: kg_fs::Error) -> CliError {
        let status = if e.is_locked() {
            ExitStatus::Locked
        } else {
            ExitStatus::Failure
        };
        CliError {
            status,
            message: e.to_string(),
            hint: e.hint(),
        }
    }
}

impl From<ConfigError> for CliError {
    fn from(e: ConfigError) -> CliError {
        CliError {
            status: ExitStatus::Usage,
            message: e.to_string(),
            hint: e.hint(),
        }
    }
}

impl From<io::Error> for CliError {
    fn from(e: io::Error) -> CliError {
        if e.kind() == io::ErrorKind::BrokenPipe {
            return CliError::broken_pipe();
        }
        CliError::failure(e.to_string())
    }
}

/// Runs a command and turns its outcome into the process exit code.
///
/// Errors are printed once, as `error: ...` and `hint: ...` on stderr. A closed stdout (the
/// reader of a pipe went away, as with `| head`) is not an error.
pub fn main_with(run: impl FnOnce() -> Result<ExitStatus, CliError>) -> ExitCode {
    match run() {
        Ok(status) => status.into(),
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            let mut err = io::stderr().lock();
            let _ = writeln!(err, "error: {}", e.message);
            if let Some(hint) = &e.hint {
                let _ = writeln!(err, "hint: {hint}");
            }
            e.status.into()
        }
    }
}

/// Writes a line to stdout; a closed pipe becomes the silent broken-pipe outcome.
pub fn out(line: impl std::fmt::Display) -> Result<(), CliError> {
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{line}")?;
    Ok(())
}

/// Writes a line to stderr: a note beside the output (what was created, why nothing is
/// listed), never the output itself. A closed stderr is ignored: nobody is left to tell, and
/// the command's work and its stdout matter more than the note.
pub fn note(line: impl std::fmt::Display) {
    let _ = writeln!(io::stderr().lock(), "{line}");
}

/// One `warning:` line on stderr for each secret file read that its group or others can
/// get at: the command still works (reading never changes a secret), and the line says how
/// to close the exposure.
pub fn warn_exposed(exposed: &[kg_fs::Exposed]) {
    for e in exposed {
        note(format!("warning: {e}; {}", e.hint()));
    }
}

/// Prints rows under a header, each column as wide as its widest cell, two spaces apart.
pub fn table<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> Result<(), CliError> {
    let header = header.map(String::from);
    let mut widths = [0usize; N];
    for row in std::iter::once(&header).chain(rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    for row in std::iter::once(&header).chain(rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:w$}"))
            .collect();
        out(line.join("  ").trim_end())?;
    }
    Ok(())
}

/// Writes a `--json` document to stdout, pretty-printed: one JSON object whose first key is
/// `"schema": "<binary>.<command>/<n>"` (`docs/json.md`), then the fields of `body`, which
/// must serialize as an object (a struct or a map) in the vocabulary documented there.
/// The number in `schema` changes only with an incompatible change to that command's shape.
pub fn out_doc(schema: &str, body: &impl serde::Serialize) -> Result<(), CliError> {
    #[derive(serde::Serialize)]
    struct Doc<'a, T> {
        schema: &'a str,
        #[serde(flatten)]
        body: &'a T,
    }
    let text = serde_json::to_string_pretty(&Doc { schema, body })
        .map_err(|e| CliError::failure(format!("cannot encode JSON: {e}")))?;
    out(text)
}

/// The verdict of one check, in every list of findings (`keygate check`, `certctl doctor`,
/// the problems `certctl inspect` finds): a closed set, documented in `docs/json.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Fine as found (or repaired: see [`Item::fixed`]).
    Ok,
    /// Works, but worth knowing: the hint says what to do.
    Warn,
    /// A problem: the command exits 1.
    Fail,
}

/// One finding, the one item shape of every list of checks under `--json`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Item {
    /// A stable id of what was checked (`certificate`, `key_mode`, `expired`, ...): scripts
    /// match on it. Several items may share one id (one per listen address, one per file).
    pub check: String,
    pub status: Verdict,
    /// What was found, in one line, naming the object (a path, an address, an id).
    pub detail: String,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// `certctl doctor --fix` repaired it (then `status` is `ok`); left out elsewhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixed: Option<bool>,
}

/// Options every binary accepts before its subcommand.
#[derive(Clone, Default, clap::Args)]
pub struct GlobalArgs {
    /// Read this config file instead of the default location
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Override one setting for this run, e.g. `--set cert.days=30` (repeatable)
    #[arg(long = "set", global = true, value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Print nothing on success but what the command produces (a token, a path, JSON, a
    /// listing); warnings and errors still print
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
}

/// Whether `--quiet` was given: [`summary`] and [`summary_note`] then print nothing.
static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

impl GlobalArgs {
    /// Makes this run's `--quiet` take effect; each binary calls it once, after parsing.
    pub fn apply(&self) {
        QUIET.store(self.quiet, std::sync::atomic::Ordering::Relaxed);
    }
}

fn quiet() -> bool {
    QUIET.load(std::sync::atomic::Ordering::Relaxed)
}

/// Writes a line of a success summary to stdout ("issued certificate ...", "renewed ..."):
/// what a person reads and a script ignores, so `--quiet` leaves it out. What the command
/// produces (a token, a path, JSON) goes through [`out`] instead.
pub fn summary(line: impl std::fmt::Display) -> Result<(), CliError> {
    if quiet() { Ok(()) } else { out(line) }
}

/// [`note`] for success chatter on stderr ("created token ..."), which `--quiet` leaves out;
/// warnings go through [`note`] and always print.
pub fn summary_note(line: impl std::fmt::Display) {
    if !quiet() {
        note(line);
    }
}

/// Shows the keys of `--set`, never the values (a value may be a mistyped secret).
impl std::fmt::Debug for GlobalArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<&str> = self
            .set
            .iter()
            .map(|s| s.split_once('=').map_or("?", |(k, _)| k))
            .collect();
        f.debug_struct("GlobalArgs")
            .field("config", &self.config)
            .field("set", &keys)
            .field("quiet", &self.quiet)
            .finish()
    }
}

/// Loaded context: where things live and the effective configuration.
#[derive(Debug)]
pub struct Context {
    pub locations: Locations,
    pub config: Config,
}

impl GlobalArgs {
    /// Where keygate's files are, from the environment and `--config`, without reading the
    /// config file.
    pub fn locations(&self) -> Result<Locations, CliError> {
        let mut locations = Locations::from_env()?;
        if let Some(file) = &self.config {
            locations.config_file = file.clone();
            locations.config_named_by = Some("--config");
        }
        Ok(locations)
    }

    /// Resolves locations and loads the config with these flags plus command-specific ones
    /// given as `(key, flag name, value)`.
    pub fn load(&self, flags: &[(&str, &str, String)]) -> Result<Context, CliError> {
        let locations = self.locations()?;
        let mut all: Vec<(&str, &str, String)> = Vec::new();
        for item in &self.set {
            // Errors name the key only: the value may be a secret typed into the wrong place.
            let Some((key, value)) = item.split_once('=') else {
                return Err(CliError::usage("invalid --set: expected KEY=VALUE")
                    .with_hint("for example --set cert.days=30"));
            };
            let key = key.trim();
            let Some(setting) = kg_config::setting(key) else {
                return Err(
                    CliError::usage(format!("invalid --set: unknown setting '{key}'"))
                        .with_hint("run `config explain` to list every setting"),
                );
            };
            if setting.kind == kg_config::Kind::Secret {
                let from = setting.env.map_or(String::new(), |e| format!(" ({e})"));
                return Err(CliError::usage(format!("invalid --set: '{key}' is a secret and is never taken from the command line"))
                    .with_hint(format!("command lines are visible to every user in `ps`; use the environment{from} or a file")));
            }
            all.push((setting.key, "--set", value.to_owned()));
        }
        all.extend(flags.iter().cloned());
        let config = Config::load(&locations, &all)?;
        Ok(Context { locations, config })
    }
}

/// The `config` subcommand every binary has.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum ConfigCommand {
    /// Print every effective setting and where it came from (flag, env var, file:line, default)
    Explain {
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Print the paths keygate uses
    Paths {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
}

impl ConfigCommand {
    /// Runs it for `binary` (`certctl`, `tokenctl` or `keygate`), which names the JSON
    /// documents' schema (`certctl.config.explain/1`).
    pub fn run(&self, binary: &str, global: &GlobalArgs) -> Result<ExitStatus, CliError> {
        let json = match self {
            // Where the files are is worth knowing before the config file exists.
            ConfigCommand::Paths { json } => {
                return paths(binary, &global.locations()?, *json);
            }
            ConfigCommand::Explain { json } => *json,
        };
        let ctx = global.load(&[])?;
        if json {
            out_doc(
                &format!("{binary}.config.explain/1"),
                &serde_json::json!({ "settings": ctx.config.explain() }),
            )?;
        } else {
            let rows = ctx.config.explain();
            let width = rows.iter().map(|r| r.key.len()).max().unwrap_or(0);
            for row in rows {
                let value = match &row.value {
                    serde_json::Value::Null => "(unset)".to_owned(),
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                out(format!("{:width$}  {value}  ({})", row.key, row.source))?;
            }
        }
        Ok(ExitStatus::Success)
    }
}

/// `config paths`.
fn paths(binary: &str, l: &Locations, json: bool) -> Result<ExitStatus, CliError> {
    let paths = serde_json::json!({
        "config_file": absolute(&l.config_file),
        "state_dir": absolute(&l.state_dir),
        "private_dir": absolute(&l.private_dir),
    });
    if json {
        out_doc(&format!("{binary}.config.paths/1"), &paths)?;
    } else {
        out(format!("config file  {}", l.config_file.display()))?;
        out(format!("state        {}", l.state_dir.display()))?;
        out(format!("private      {}", l.private_dir.display()))?;
    }
    Ok(ExitStatus::Success)
}

/// `path` made absolute against the working directory (without resolving symlinks), for
/// `--json` documents, whose `*_file` and `*_dir` values are always absolute paths.
pub fn absolute(path: &std::path::Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// An instant as `--json` documents write it: RFC 3339 in UTC, whole seconds
/// (`2030-01-01T00:00:00Z`), in keys ending `_at`.
pub fn rfc3339(t: time::OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// [`rfc3339`] of a store's Unix milliseconds (empty when out of range).
pub fn rfc3339_millis(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map(rfc3339)
        .unwrap_or_default()
}

/// The current time, or the test clock `test.now` (`KEYGATE_TEST_NOW`), which exists only so
/// tests can age certificates and tokens without waiting. It is a declared setting, so
/// `config explain` shows when it is in effect.
pub fn now(config: &kg_config::Config) -> Result<time::OffsetDateTime, CliError> {
    clock(config).map(|c| c())
}

/// The clock of a long-running command (the server): the current time whenever it is read,
/// or `test.now` throughout. The only place that reads the system's wall clock.
pub fn clock(
    config: &kg_config::Config,
) -> Result<impl Fn() -> time::OffsetDateTime + Send + Sync + Clone + 'static, CliError> {
    let fixed = match config.str("test.now") {
        Some(t) => Some(
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                .map_err(|e| {
                    CliError::usage(format!("invalid test.now '{t}': {e}"))
                        .with_hint("use RFC 3339, e.g. 2030-01-01T00:00:00Z")
                })?,
        ),
        None => None,
    };
    Ok(move || fixed.unwrap_or_else(time::OffsetDateTime::now_utc))
}

/// Makes text from outside (certificate fields, other tools' output) safe to print: control
/// characters are escaped, so a certificate cannot move the cursor, recolour or hide lines.
pub fn untrusted(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(
        text.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

/// `text` as it is when it holds only plain path characters, else [`shell_quote`]d: for
/// printed jobs and units (cron's shell, systemd and logrotate all read single quotes).
pub fn quote_if_needed(text: &str) -> String {
    if text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-=:+,@".contains(&b))
    {
        text.to_owned()
    } else {
        shell_quote(text)
    }
}

/// Quotes `s` for a POSIX shell, so printed commands are safe to paste whatever the path.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}
