//! The token commands: ensure, create, list, rotate, revoke, verify, prune, format.

use std::path::{Path, PathBuf};

use kg_cli::{
    CliError, ExitStatus, GlobalArgs, absolute, note, out, out_doc, summary_note, warn_exposed,
};
use kg_tokens::files::client_token_file;
use kg_tokens::{Entry, Prefix, Reason, Status, TokenSecret};
use serde_json::json;
use time::OffsetDateTime;

use crate::creds::{self, Explicit};
use crate::{config_prefix, file_error, load, now, rfc3339, store_error, store_paths, wait};

#[derive(Debug, clap::Args)]
pub(crate) struct EnsureArgs {
    /// The token's name
    #[arg(long, default_value = "default")]
    name: String,
    /// A scope for the token when it is created (repeatable)
    #[arg(long = "scope", value_name = "SCOPE")]
    scopes: Vec<String>,
    /// If another run holds the lock, wait up to SECS seconds for it, then exit 75 [default:
    /// 10; 0 exits 75 at once]
    #[arg(long, value_name = "SECS")]
    wait: Option<u64>,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct CreateArgs {
    /// The token's name: letters, digits, '.', '_' and '-'
    #[arg(long)]
    name: String,
    /// A scope for the token (repeatable)
    #[arg(long = "scope", value_name = "SCOPE")]
    scopes: Vec<String>,
    /// Lifetime, e.g. 30d or 12h [default: never expires]
    #[arg(long, value_name = "DURATION")]
    expires: Option<String>,
    /// Write the token to FILE (0600) instead of stdout; `-` is stdout
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
    /// If another run holds the lock, wait up to SECS seconds for it, then exit 75 [default:
    /// 10; 0 exits 75 at once]
    #[arg(long, value_name = "SECS")]
    wait: Option<u64>,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ListArgs {
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct RotateArgs {
    /// The name whose active token is replaced
    #[arg(long)]
    name: String,
    /// How long the old token keeps working, e.g. 24h; 0 revokes it at once [default: token.default_grace, 24h]
    #[arg(long, value_name = "DURATION")]
    grace: Option<String>,
    /// Also write the new token to FILE (0600); `-` is stdout
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
    /// If another run holds the lock, wait up to SECS seconds for it, then exit 75 [default:
    /// 10; 0 exits 75 at once]
    #[arg(long, value_name = "SECS")]
    wait: Option<u64>,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["id", "name"])))]
pub(crate) struct RevokeArgs {
    /// The id of the token to revoke (see `tokenctl list`)
    id: Option<String>,
    /// Revoke every token of this name instead
    #[arg(long)]
    name: Option<String>,
    /// If another run holds the lock, wait up to SECS seconds for it, then exit 75 [default:
    /// 10; 0 exits 75 at once]
    #[arg(long, value_name = "SECS")]
    wait: Option<u64>,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("source").args(["token_file", "token_fd", "stdin"])))]
pub(crate) struct VerifyArgs {
    /// `-` reads the token from stdin (a token itself is never accepted here)
    #[arg(value_name = "-")]
    stdin: Option<String>,
    /// Read the token from FILE
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Read the token from file descriptor N
    #[arg(long, value_name = "N")]
    token_fd: Option<u32>,
    /// Use the token file of profile NAME ([profiles.NAME] in the config file)
    #[arg(long, value_name = "NAME")]
    profile: Option<String>,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct PruneArgs {
    /// Keep revoked and expired tokens this long after they ended [default: token.retention, 30d]
    #[arg(long, value_name = "DURATION")]
    retention: Option<String>,
    /// If another run holds the lock, wait up to SECS seconds for it, then exit 75 [default:
    /// 10; 0 exits 75 at once]
    #[arg(long, value_name = "SECS")]
    wait: Option<u64>,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct FormatArgs {
    /// Print only a regular expression that matches this store's tokens
    #[arg(long)]
    regex: bool,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

pub(crate) fn ensure(global: &GlobalArgs, args: &EnsureArgs) -> Result<ExitStatus, CliError> {
    let ctx = load(global, &[])?;
    let now = now(&ctx.config)?;
    let ensured = kg_tokens::files::ensure_client_token(
        &store_paths(&ctx),
        &ctx.locations.private_dir,
        &args.name,
        args.scopes.clone(),
        &config_prefix(&ctx)?,
        wait(args.wait),
        now,
    )
    .map_err(ensure_error)?;
    warn_exposed(&ensured.exposed);
    // A repair is said on stderr even with --json: it revoked a token someone may hold.
    if let Some(r) = &ensured.repaired {
        note(format!(
            "repaired token '{}': its client token file {} (a token is shown only when issued), \
             so id {} is revoked and new id {} was written there",
            args.name, r.problem, r.old_id, ensured.id
        ));
    }
    if args.json {
        out_doc(
            "tokenctl.ensure/1",
            &json!({
                "name": args.name,
                "id": ensured.id,
                "created": ensured.created,
                "repaired": ensured.repaired.is_some(),
                "old_id": ensured.repaired.as_ref().map(|r| &r.old_id),
                "token_file": absolute(&ensured.token_file),
            }),
        )?;
    } else {
        if ensured.created {
            summary_note(format!("created token '{}' (id {})", args.name, ensured.id));
        }
        out(ensured.token_file.display())?;
    }
    Ok(ExitStatus::Success)
}

fn ensure_error(e: kg_tokens::files::EnsureError) -> CliError {
    CliError::classified(&e, e.hint(), e.is_usage(), e.is_locked())
}

pub(crate) fn create(global: &GlobalArgs, args: &CreateArgs) -> Result<ExitStatus, CliError> {
    let ctx = load(global, &[])?;
    let now = now(&ctx.config)?;
    let expires = match &args.expires {
        // Checked: a lifetime past the calendar's end (`3000000d`) panicked here.
        Some(raw) => Some(now.checked_add(duration(raw, "--expires")?).ok_or_else(|| {
            CliError::usage(format!("invalid --expires '{raw}': it ends after the year 9999"))
                .with_hint("give a shorter lifetime, e.g. 365d, or leave --expires out for a token that does not expire")
        })?),
        None => None,
    };
    let file = args.output.as_deref().filter(|p| *p != Path::new("-"));
    let mut txn = store_paths(&ctx)
        .begin(wait(args.wait), &config_prefix(&ctx)?)
        .map_err(file_error)?;
    warn_exposed(txn.exposed());
    let (store, pepper) = txn.parts();
    let (entry, token) = store
        .create(pepper, &args.name, args.scopes.clone(), expires, now)
        .map_err(store_error)?;
    // The file, if any, is written before the store (`commit_delivering`): a crash leaves no
    // entry whose token was lost, only perhaps a file with a token the store does not know.
    txn.commit_delivering(&token, file.as_slice())
        .map_err(file_error)?;
    let mut report = entry_json(&entry, now);
    report["output_file"] = json!(file.map(absolute));
    report["token"] = json!(null);
    match file {
        Some(f) => {
            if args.json {
                out_doc("tokenctl.create/1", &report)?;
            } else {
                out(format!(
                    "created token '{}' (id {}); written to {}",
                    entry.name,
                    entry.id,
                    f.display()
                ))?;
            }
        }
        None => show_token_once("tokenctl.create/1", &mut report, &token, args.json, || {
            format!("created token '{}' (id {})", entry.name, entry.id)
        })?,
    }
    Ok(ExitStatus::Success)
}

/// Prints a new token on stdout (alone on its line, so it can be piped) or in the JSON
/// report, with a note on stderr that it is not shown again.
fn show_token_once(
    schema: &str,
    report: &mut serde_json::Value,
    token: &TokenSecret,
    json: bool,
    what: impl FnOnce() -> String,
) -> Result<(), CliError> {
    if json {
        report["token"] = json!(token.expose_secret());
        out_doc(schema, report)
    } else {
        summary_note(format!("{}; it is shown only this once", what()));
        out(token.expose_secret())
    }
}

pub(crate) fn list(global: &GlobalArgs, args: &ListArgs) -> Result<ExitStatus, CliError> {
    let ctx = load(global, &[])?;
    let now = now(&ctx.config)?;
    let loaded = store_paths(&ctx)
        .load(&config_prefix(&ctx)?)
        .map_err(file_error)?;
    warn_exposed(loaded.exposed());
    let entries = loaded.store().list();
    if args.json {
        let rows: Vec<_> = entries.iter().map(|e| entry_json(e, now)).collect();
        out_doc(
            "tokenctl.list/1",
            &json!({
                "store_file": absolute(&loaded.paths().store),
                "tokens": rows,
            }),
        )?;
        return Ok(ExitStatus::Success);
    }
    if entries.is_empty() {
        note(format!(
            "no tokens in '{}'; `tokenctl create --name NAME` issues one",
            loaded.paths().store.display()
        ));
        return Ok(ExitStatus::Success);
    }
    let rows: Vec<[String; 6]> = entries
        .iter()
        .map(|e| {
            [
                e.id.clone(),
                e.name.clone(),
                status_text(e, now),
                rfc3339(e.created),
                e.expires.map_or_else(|| "never".to_owned(), rfc3339),
                e.scopes.join(","),
            ]
        })
        .collect();
    let header = ["ID", "NAME", "STATUS", "CREATED", "EXPIRES", "SCOPES"].map(String::from);
    let mut widths = [0usize; 6];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:w$}"))
            .collect();
        out(line.join("  ").trim_end())?;
    }
    Ok(ExitStatus::Success)
}

pub(crate) fn rotate(global: &GlobalArgs, args: &RotateArgs) -> Result<ExitStatus, CliError> {
    let flags: Vec<_> = args
        .grace
        .iter()
        .map(|g| ("token.default_grace", "--grace", g.clone()))
        .collect();
    let ctx = load(global, &flags)?;
    let now = now(&ctx.config)?;
    let grace = ctx
        .config
        .duration("token.default_grace")
        .unwrap_or_default();
    let grace = time::Duration::try_from(grace)
        .map_err(|_| CliError::usage("the grace period is too long"))?;
    let client = client_token_file(&ctx.locations.private_dir, &args.name);
    let file = args.output.as_deref().filter(|p| *p != Path::new("-"));
    let mut txn = store_paths(&ctx)
        .begin(wait(args.wait), &config_prefix(&ctx)?)
        .map_err(file_error)?;
    warn_exposed(txn.exposed());
    let old_id = txn.store().find_active(&args.name).map(|e| e.id.clone());
    let (store, pepper) = txn.parts();
    let (entry, token) = store
        .rotate(pepper, &args.name, grace, now)
        .map_err(store_error)?;
    let old = old_id.and_then(|id| txn.store().get(&id)).cloned();
    // Every file that receives the new token is written before the store
    // (`commit_delivering`): a crash leaves the store as it was, and a file holding a token
    // the store does not know, which rerunning rotate (or ensure) replaces.
    let client_exists = std::fs::symlink_metadata(&client).is_ok();
    let files: Vec<&Path> = client_exists
        .then_some(client.as_path())
        .into_iter()
        .chain(file)
        .collect();
    txn.commit_delivering(&token, &files).map_err(file_error)?;
    let old_until = old.as_ref().and_then(|o| match o.status {
        Status::Retiring { until } => Some(until),
        _ => None,
    });
    let mut report = entry_json(&entry, now);
    report["old_id"] = json!(old.as_ref().map(|o| &o.id));
    report["old_retires_at"] = json!(old_until.map(rfc3339));
    report["token_file"] = json!(client_exists.then(|| absolute(&client)));
    report["output_file"] = json!(file.map(absolute));
    report["token"] = json!(null);
    let old_text = match (&old, old_until) {
        (Some(o), Some(t)) => format!("old id {} keeps working until {}", o.id, rfc3339(t)),
        (Some(o), None) => format!("old id {} is revoked", o.id),
        (None, _) => String::new(),
    };
    let summary = format!(
        "rotated token '{}': new id {}; {old_text}",
        entry.name, entry.id
    );
    if !client_exists && file.is_none() {
        show_token_once("tokenctl.rotate/1", &mut report, &token, args.json, || {
            summary
        })?;
    } else if args.json {
        out_doc("tokenctl.rotate/1", &report)?;
    } else {
        out(&summary)?;
        if client_exists {
            out(format!("client token file updated: {}", client.display()))?;
        }
        if let Some(f) = file {
            out(format!("written to {}", f.display()))?;
        }
    }
    Ok(ExitStatus::Success)
}

pub(crate) fn revoke(global: &GlobalArgs, args: &RevokeArgs) -> Result<ExitStatus, CliError> {
    let ctx = load(global, &[])?;
    let now = now(&ctx.config)?;
    let mut txn = store_paths(&ctx)
        .begin(wait(args.wait), &config_prefix(&ctx)?)
        .map_err(file_error)?;
    warn_exposed(txn.exposed());
    let (store, _) = txn.parts();
    let (report, text) = match (&args.id, &args.name) {
        (Some(id), _) => {
            let changed = store.revoke_id(id, now).map_err(store_error)?;
            let name = store.get(id).map(|e| e.name.clone()).unwrap_or_default();
            let text = if changed {
                format!("revoked token {id} ('{name}')")
            } else {
                format!("token {id} ('{name}') was already revoked; nothing changed")
            };
            (
                json!({"id": id, "name": name, "revoked_count": usize::from(changed)}),
                text,
            )
        }
        (None, Some(name)) => {
            let n = store.revoke_name(name, now).map_err(store_error)?;
            (
                json!({"id": null, "name": name, "revoked_count": n}),
                format!("revoked {n} token(s) named '{name}'"),
            )
        }
        (None, None) => unreachable!("clap requires an id or --name"),
    };
    txn.commit().map_err(file_error)?;
    if args.json {
        out_doc("tokenctl.revoke/1", &report)?;
    } else {
        out(text)?;
    }
    Ok(ExitStatus::Success)
}

pub(crate) fn verify(global: &GlobalArgs, args: &VerifyArgs) -> Result<ExitStatus, CliError> {
    if let Some(arg) = &args.stdin
        && arg != "-"
    {
        // Not repeated: it may be a token typed where it does not belong.
        return Err(
            CliError::usage("verify takes no token as an argument; only `-` (stdin)").with_hint(
                "pass the token in a file (--token-file), a descriptor (--token-fd), stdin \
                 or KEYGATE_TOKEN; if that argument was a token, treat it as exposed and rotate it",
            ),
        );
    }
    let flags: Vec<_> = args
        .profile
        .iter()
        .map(|p| ("client.profile", "--profile", p.clone()))
        .collect();
    let ctx = load(global, &flags)?;
    let now = now(&ctx.config)?;
    let explicit = Explicit {
        file: args.token_file.clone(),
        fd: args.token_fd,
        stdin: args.stdin.is_some(),
    };
    let cred = creds::resolve(&ctx, &explicit)?;
    let loaded = store_paths(&ctx)
        .load(&config_prefix(&ctx)?)
        .map_err(file_error)?;
    warn_exposed(loaded.exposed());
    let outcome = match &cred.token {
        Some(token) => loaded.verify(token.expose_secret(), now),
        None => Err(Reason::Malformed),
    };
    match outcome {
        Ok(info) => {
            if args.json {
                out_doc(
                    "tokenctl.verify/1",
                    &json!({
                        "valid": true,
                        "id": info.id,
                        "name": info.name,
                        "scopes": info.scopes,
                        "expires_at": info.expires.map(rfc3339),
                        "reason": null,
                        "detail": null,
                    }),
                )?;
            } else {
                let scopes = if info.scopes.is_empty() {
                    "(none)".to_owned()
                } else {
                    info.scopes.join(" ")
                };
                let until = info
                    .expires
                    .map_or_else(String::new, |t| format!(", valid until {}", rfc3339(t)));
                out(format!(
                    "valid: token '{}' (id {}), scopes: {scopes}{until}",
                    info.name, info.id
                ))?;
            }
            Ok(ExitStatus::Success)
        }
        Err(reason) => {
            let empty = cred.token.is_none();
            let message = if empty {
                format!("the token from {} is empty", cred.from)
            } else {
                format!("the token from {} is not valid: {reason}", cred.from)
            };
            if args.json {
                out_doc(
                    "tokenctl.verify/1",
                    &json!({
                        "valid": false,
                        "id": null,
                        "name": null,
                        "scopes": [],
                        "expires_at": null,
                        "reason": reason.as_str(),
                        "detail": message,
                    }),
                )?;
                return Ok(ExitStatus::Failure);
            }
            Err(CliError::failure(message).with_hint(reason_hint(reason)))
        }
    }
}

fn reason_hint(reason: Reason) -> &'static str {
    match reason {
        Reason::Malformed => {
            "a token looks like kg_<12 letters and digits>_<38 letters and digits>; check for a \
             truncated or wrapped copy"
        }
        Reason::BadChecksum => "a character was changed or lost in copying; copy it again",
        Reason::Unknown => {
            "this store did not issue it (or it was pruned); check which host or store it is for"
        }
        Reason::Expired => "ask for a new token (`tokenctl rotate --name NAME`)",
        Reason::Revoked => "ask for a new token; this one must not be used again",
    }
}

pub(crate) fn prune(global: &GlobalArgs, args: &PruneArgs) -> Result<ExitStatus, CliError> {
    let flags: Vec<_> = args
        .retention
        .iter()
        .map(|r| ("token.retention", "--retention", r.clone()))
        .collect();
    let ctx = load(global, &flags)?;
    let now = now(&ctx.config)?;
    let retention = ctx.config.duration("token.retention").unwrap_or_default();
    let retention = time::Duration::try_from(retention)
        .map_err(|_| CliError::usage("the retention period is too long"))?;
    let mut txn = store_paths(&ctx)
        .begin(wait(args.wait), &config_prefix(&ctx)?)
        .map_err(file_error)?;
    warn_exposed(txn.exposed());
    let (store, _) = txn.parts();
    let removed = store.prune(retention, now);
    let left = store.list().len();
    txn.commit().map_err(file_error)?;
    let retention_text = kg_config::format_duration(retention.unsigned_abs());
    if args.json {
        out_doc(
            "tokenctl.prune/1",
            &json!({
                "removed_count": removed,
                "remaining_count": left,
                "retention_secs": retention.whole_seconds(),
            }),
        )?;
    } else {
        out(format!(
            "removed {removed} token(s) revoked or expired more than {retention_text} ago; {left} remain"
        ))?;
    }
    Ok(ExitStatus::Success)
}

pub(crate) fn format(global: &GlobalArgs, args: &FormatArgs) -> Result<ExitStatus, CliError> {
    let ctx = load(global, &[])?;
    // An existing store's prefix wins over the setting, which applies to new stores only.
    let prefix: Prefix = store_paths(&ctx)
        .load(&config_prefix(&ctx)?)
        .map_err(file_error)?
        .store()
        .prefix()
        .clone();
    let regex = kg_tokens::format_regex(&prefix);
    let layout = format!(
        "{prefix}_<{} base62 id>_<{} base62 secret><6 base62 CRC32 checksum>",
        kg_tokens::ID_LEN,
        kg_tokens::SECRET_LEN
    );
    match (args.json, args.regex) {
        (true, _) => out_doc(
            "tokenctl.format/1",
            &json!({
                "prefix": prefix.as_str(),
                "format": layout,
                "regex": regex,
            }),
        )?,
        (false, true) => out(regex)?,
        (false, false) => {
            out(format!("format: {layout}"))?;
            out("base62: 0-9A-Za-z; the id is public, the secret carries about 190 bits")?;
            out(format!("regex:  {regex}"))?;
        }
    }
    Ok(ExitStatus::Success)
}

/// One entry as `list --json` and the other reports show it; never a secret or a digest.
fn entry_json(e: &Entry, now: OffsetDateTime) -> serde_json::Value {
    let (until, revoked_at) = match e.status {
        Status::Active => (None, None),
        Status::Retiring { until } => (Some(rfc3339(until)), None),
        Status::Revoked { at } => (None, Some(rfc3339(at))),
    };
    json!({
        "id": e.id,
        "name": e.name,
        "scopes": e.scopes,
        "state": status_word(e, now),
        "created_at": rfc3339(e.created),
        "expires_at": e.expires.map(rfc3339),
        "retires_at": until,
        "revoked_at": revoked_at,
    })
}

/// `active`, `retiring`, `expired` or `revoked`, as of `now`.
fn status_word(e: &Entry, now: OffsetDateTime) -> &'static str {
    match (e.check(now), e.status) {
        (Err(Reason::Revoked), _) => "revoked",
        (Err(_), _) => "expired",
        (Ok(()), Status::Retiring { .. }) => "retiring",
        (Ok(()), _) => "active",
    }
}

fn status_text(e: &Entry, now: OffsetDateTime) -> String {
    match (status_word(e, now), e.status) {
        ("retiring", Status::Retiring { until }) => format!("retiring until {}", rfc3339(until)),
        ("revoked", Status::Revoked { at }) => format!("revoked {}", rfc3339(at)),
        (word, _) => word.to_owned(),
    }
}

fn duration(raw: &str, flag: &str) -> Result<time::Duration, CliError> {
    let d = kg_config::parse_duration(raw)
        .map_err(|e| CliError::usage(format!("invalid {flag}: {e}")))?;
    time::Duration::try_from(d).map_err(|_| CliError::usage(format!("invalid {flag}: too long")))
}
