//! OAuth clients and signing keys: `tokenctl client ...` and `tokenctl keys ...`.
//!
//! Clients live in the store (`STATE_DIR/keygate.db`), which a running server reads on every
//! token request, so a client created, rotated or revoked here takes effect at once. Their
//! secrets are stored as HMACs under the same pepper as API tokens.

use std::path::{Path, PathBuf};

use kg_cli::{CliError, ExitStatus, GlobalArgs, absolute, note, out, out_doc, summary_note};
use kg_jose::KeyState;
use kg_oauth::clients::{self, ClientError, Grant, Registration};
use kg_oauth::keyring::KeyRing;
use kg_store::{ClientRecord, ClientStore, SqliteStore};
use kg_tokens::TokenSecret;
use serde_json::json;

use crate::{config_prefix, file_error, load, now, store_paths, wait};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum ClientCommand {
    /// Register a client; a confidential client's secret is shown exactly once
    Create(CreateArgs),
    /// List clients (never secrets)
    List(JsonArg),
    /// Show one client, by id or name
    Show(WhichArgs),
    /// Give a client a new secret; the old one keeps working for the grace period
    Rotate(RotateArgs),
    /// Revoke a client: its secrets and every token it was given stop working
    Revoke(WhichArgs),
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum KeysCommand {
    /// List the signing keys: next, current and previous (never private parts)
    List(JsonArg),
    /// Rotate now: the published next key starts signing, a new next key is published
    Rotate(JsonArg),
}

#[derive(Debug, clap::Args)]
pub(crate) struct JsonArg {
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct CreateArgs {
    /// The client's name: letters, digits, '.', '_' and '-'
    #[arg(long)]
    name: String,
    /// A grant type it may use (repeatable) [default: client_credentials]
    #[arg(long = "grant", value_name = "GRANT", value_parser = clap::builder::PossibleValuesParser::new(Grant::NAMES))]
    grants: Vec<String>,
    /// A scope it may be given (repeatable)
    #[arg(long = "scope", value_name = "SCOPE")]
    scopes: Vec<String>,
    /// No secret: a CLI or a single-page app, which proves itself with PKCE instead
    #[arg(long)]
    public: bool,
    /// A redirect URI for authorization_code (repeatable); http://127.0.0.1/PATH and
    /// http://[::1]/PATH match any port
    #[arg(long = "redirect-uri", value_name = "URI")]
    redirect_uris: Vec<String>,
    /// Write the secret to FILE (0600) instead of stdout; `-` is stdout
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct WhichArgs {
    /// The client's id (kgc_...) or name
    client: String,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct RotateArgs {
    /// The client's id (kgc_...) or name
    client: String,
    /// How long the old secret keeps working, e.g. 24h; 0 ends it at once [default: token.default_grace, 24h]
    #[arg(long, value_name = "DURATION")]
    grace: Option<String>,
    /// Write the new secret to FILE (0600) instead of stdout; `-` is stdout
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

fn open_store(ctx: &kg_cli::Context) -> Result<SqliteStore, CliError> {
    let store = SqliteStore::open_in(&ctx.locations.state_dir).map_err(store_error)?;
    if let Some(e) = store.exposed() {
        kg_cli::warn_exposed(std::slice::from_ref(e));
    }
    Ok(store)
}

fn store_error(e: kg_store::Error) -> CliError {
    let usage = matches!(
        e,
        kg_store::Error::TooNew { .. } | kg_store::Error::NotADatabase { .. }
    );
    CliError::classified(&e, e.hint(), usage, false)
}

fn client_error(e: ClientError) -> CliError {
    CliError::classified(&e, e.hint(), e.is_usage(), false)
}

fn pepper(ctx: &kg_cli::Context) -> Result<kg_tokens::Pepper, CliError> {
    store_paths(ctx)
        .pepper(wait(None), &config_prefix(ctx)?)
        .map_err(file_error)
}

fn client_json(c: &ClientRecord, store: &dyn ClientStore, now_ms: i64) -> serde_json::Value {
    let mut live = store.client_secrets(&c.id).unwrap_or_default();
    // The retiring ones first, then the one that stays: an order two secrets made in the
    // same millisecond cannot upset.
    live.sort_by_key(|s| (s.until.is_none(), s.created));
    let secrets: Vec<_> = live
        .into_iter()
        .filter(|s| s.until.is_none_or(|u| now_ms < u))
        .map(|s| {
            json!({
                "id": s.id,
                "created_at": kg_cli::rfc3339_millis(s.created),
                "retires_at": s.until.map(kg_cli::rfc3339_millis),
            })
        })
        .collect();
    json!({
        "client_id": c.id,
        "name": c.name,
        "grants": c.grants,
        "scopes": c.scopes,
        "redirect_uris": c.redirect_uris,
        "public": c.public,
        "state": if c.revoked.is_some() { "revoked" } else { "active" },
        "created_at": kg_cli::rfc3339_millis(c.created),
        "revoked_at": c.revoked.map(kg_cli::rfc3339_millis),
        "secrets": secrets,
    })
}

/// Hands a new secret to its owner once: to a 0600 file, or on stdout (its own line) or in
/// the JSON report.
fn deliver(
    schema: &str,
    mut report: serde_json::Value,
    secret: &TokenSecret,
    output: Option<&Path>,
    json_out: bool,
    what: String,
) -> Result<(), CliError> {
    let file = output.filter(|p| *p != Path::new("-"));
    if let Some(f) = file {
        kg_fs::write_atomic(
            f,
            secret.expose_secret().as_bytes(),
            kg_fs::FileMode::Secret,
        )?;
        report["output_file"] = json!(absolute(f));
        report["client_secret"] = json!(null);
        if json_out {
            return out_doc(schema, &report);
        }
        summary_note(format!("{what}; secret written to {}", f.display()));
        return Ok(());
    }
    if json_out {
        report["client_secret"] = json!(secret.expose_secret());
        return out_doc(schema, &report);
    }
    summary_note(format!("{what}; its secret is shown only this once"));
    out(secret.expose_secret())
}

pub(crate) fn client(global: &GlobalArgs, cmd: &ClientCommand) -> Result<ExitStatus, CliError> {
    let ctx = load(global, &[])?;
    let now = now(&ctx.config)?;
    let now_ms = (now.unix_timestamp_nanos() / 1_000_000) as i64;
    match cmd {
        ClientCommand::Create(args) => {
            let grants = args.grants.iter().filter_map(|g| Grant::parse(g)).collect();
            let reg = Registration {
                name: args.name.clone(),
                grants,
                scopes: args.scopes.clone(),
                public: args.public,
                redirect_uris: args.redirect_uris.clone(),
            };
            // Checked before anything is opened or created.
            clients::check(&reg, now).map_err(client_error)?;
            let pepper = pepper(&ctx)?;
            let store = open_store(&ctx)?;
            let (record, secret) =
                clients::register(&store, &pepper, &reg, now).map_err(client_error)?;
            let report = client_json(&record, &store, now_ms);
            let what = format!("created client '{}' (id {})", record.name, record.id);
            match secret {
                Some(secret) => {
                    if !args.json {
                        out(&record.id)?;
                    }
                    deliver(
                        "tokenctl.client.create/1",
                        report,
                        &secret,
                        args.output.as_deref(),
                        args.json,
                        what,
                    )?
                }
                None if args.json => {
                    let mut report = report;
                    report["client_secret"] = json!(null);
                    out_doc("tokenctl.client.create/1", &report)?
                }
                None => {
                    summary_note(format!("{what}; it is public and has no secret"));
                    out(&record.id)?
                }
            }
        }
        ClientCommand::List(a) => {
            let store = open_store(&ctx)?;
            let mut all = store.clients().map_err(store_error)?;
            all.sort_by(|a, b| a.name.cmp(&b.name));
            if a.json {
                let rows: Vec<_> = all.iter().map(|c| client_json(c, &store, now_ms)).collect();
                out_doc("tokenctl.client.list/1", &json!({ "clients": rows }))?;
            } else if all.is_empty() {
                note(
                    "no clients; `tokenctl client create --name NAME --scope SCOPE` registers one",
                );
            } else {
                let rows: Vec<[String; 5]> = all
                    .iter()
                    .map(|c| {
                        [
                            c.id.clone(),
                            c.name.clone(),
                            if c.revoked.is_some() {
                                "revoked"
                            } else {
                                "active"
                            }
                            .into(),
                            c.grants.join(","),
                            c.scopes.join(","),
                        ]
                    })
                    .collect();
                kg_cli::table(["ID", "NAME", "STATE", "GRANTS", "SCOPES"], &rows)?;
            }
        }
        ClientCommand::Show(a) => {
            let store = open_store(&ctx)?;
            let c = clients::find_any(&store, &a.client).map_err(client_error)?;
            let report = client_json(&c, &store, now_ms);
            if a.json {
                out_doc("tokenctl.client.show/1", &report)?;
            } else {
                out(serde_json::to_string_pretty(&report).unwrap_or_default())?;
            }
        }
        ClientCommand::Rotate(a) => {
            let flags: Vec<_> = a
                .grace
                .iter()
                .map(|g| ("token.default_grace", "--grace", g.clone()))
                .collect();
            let ctx = load(global, &flags)?;
            let grace = ctx
                .config
                .duration("token.default_grace")
                .unwrap_or_default();
            let grace = time::Duration::try_from(grace)
                .map_err(|_| CliError::usage("the grace period is too long"))?;
            let pepper = pepper(&ctx)?;
            let store = open_store(&ctx)?;
            let (c, secret) =
                clients::rotate(&store, &pepper, &a.client, grace, now).map_err(client_error)?;
            let report = client_json(&c, &store, now_ms);
            let what = format!("rotated the secret of client '{}' (id {})", c.name, c.id);
            deliver(
                "tokenctl.client.rotate/1",
                report,
                &secret,
                a.output.as_deref(),
                a.json,
                what,
            )?;
        }
        ClientCommand::Revoke(a) => {
            let store = open_store(&ctx)?;
            let (c, changed) = clients::revoke(&store, &a.client, now).map_err(client_error)?;
            let c = store.client(&c.id).map_err(store_error)?.unwrap_or(c);
            if a.json {
                out_doc("tokenctl.client.revoke/1", &client_json(&c, &store, now_ms))?;
            } else if changed {
                summary_note(format!("revoked client '{}' (id {})", c.name, c.id));
            } else {
                summary_note(format!(
                    "client '{}' (id {}) was revoked already",
                    c.name, c.id
                ));
            }
        }
    }
    Ok(ExitStatus::Success)
}

/// The key ring this configuration describes: the server's, built by the same function.
fn ring(ctx: &kg_cli::Context) -> Result<KeyRing, CliError> {
    let alg = match ctx.config.str("oauth.signing_alg") {
        Some("ES256") => kg_jose::Alg::Es256,
        _ => kg_jose::Alg::EdDsa,
    };
    let d = |key: &str| {
        time::Duration::try_from(ctx.config.duration(key).unwrap_or_default())
            .map_err(|_| CliError::usage(format!("{key} is too long")))
    };
    Ok(KeyRing::standard(
        &ctx.locations.private_dir,
        ctx.locations.lock_file("signing"),
        alg,
        d("oauth.key_rotation")?,
        &[
            d("oauth.client_token_lifetime")?,
            d("oauth.access_token_lifetime")?,
        ],
    ))
}

fn key_error(e: kg_oauth::keyring::KeyError) -> CliError {
    let usage = matches!(e, kg_oauth::keyring::KeyError::Damaged { .. });
    CliError::classified(&e, e.hint(), usage, false)
}

pub(crate) fn keys(global: &GlobalArgs, cmd: &KeysCommand) -> Result<ExitStatus, CliError> {
    let ctx = load(global, &[])?;
    let now = now(&ctx.config)?;
    let ring = ring(&ctx)?;
    let (loaded, json_out, schema) = match cmd {
        // Listing makes the set when there is none yet, as the server would at start: a
        // listing then shows what will sign.
        KeysCommand::List(a) => (
            ring.ensure(now).map_err(key_error)?,
            a.json,
            "tokenctl.keys.list/1",
        ),
        KeysCommand::Rotate(a) => (
            ring.rotate(&[], now).map_err(key_error)?,
            a.json,
            "tokenctl.keys.rotate/1",
        ),
    };
    let infos: Vec<_> = loaded.set.keys().map(|k| k.info().clone()).collect();
    if json_out {
        let keys: Vec<_> = infos
            .iter()
            .map(|k| {
                let (current_at, retires_at) = match k.state {
                    KeyState::Next => (None, None),
                    KeyState::Current { since } => (Some(since), None),
                    KeyState::Previous { until } => (None, Some(until)),
                };
                json!({
                    "kid": k.kid,
                    "alg": k.alg.as_str(),
                    "state": k.state.as_str(),
                    "created_at": crate::rfc3339(k.created),
                    "current_at": current_at.map(crate::rfc3339),
                    "retires_at": retires_at.map(crate::rfc3339),
                })
            })
            .collect();
        out_doc(
            schema,
            &json!({
                "generation": loaded.generation,
                "keys_dir": absolute(&ring.dir),
                "keys": keys,
            }),
        )?;
        return Ok(ExitStatus::Success);
    }
    if matches!(cmd, KeysCommand::Rotate(_)) {
        summary_note(format!(
            "rotated: generation {} published; a running server signs with the new key within a second",
            loaded.generation
        ));
    }
    let rows: Vec<[String; 4]> = infos
        .iter()
        .map(|k| {
            let when = match k.state {
                kg_jose::KeyState::Next => String::new(),
                kg_jose::KeyState::Current { since } => format!("since {}", crate::rfc3339(since)),
                kg_jose::KeyState::Previous { until } => format!("until {}", crate::rfc3339(until)),
            };
            [
                k.kid.clone(),
                k.alg.to_string(),
                k.state.as_str().into(),
                when,
            ]
        })
        .collect();
    kg_cli::table(["KID", "ALG", "STATE", "WHEN"], &rows)?;
    Ok(ExitStatus::Success)
}
