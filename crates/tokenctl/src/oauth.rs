//! `tokenctl token` and `tokenctl logout`: a profile's OAuth access token, from kg-client.

use clap::ValueEnum;
use kg_cli::{CliError, ExitStatus, GlobalArgs, out, summary_note};
use secrecy::ExposeSecret;

use crate::load;

/// How `tokenctl token` prints the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// The token alone.
    Plain,
    /// `Authorization: Bearer TOKEN`, for `curl -H @-`.
    Header,
    /// A kubectl ExecCredential (client.authentication.k8s.io/v1).
    Kubectl,
}

#[derive(Debug, clap::Args)]
pub(crate) struct TokenArgs {
    /// The profile ([profiles.NAME]); else KEYGATE_PROFILE, client.profile, or "default"
    #[arg(long, value_name = "NAME")]
    profile: Option<String>,
    /// Fetch a new token when the cached one has less than this left
    #[arg(long, value_name = "DURATION", default_value = "1m")]
    min_validity: String,
    /// How to print it
    #[arg(long, value_enum, default_value_t = Format::Plain)]
    format: Format,
}

#[derive(Debug, clap::Args)]
pub(crate) struct LoginArgs {
    /// The profile ([profiles.NAME]); else KEYGATE_PROFILE, client.profile, or "default"
    #[arg(long, value_name = "NAME")]
    profile: Option<String>,
    /// The issuer, instead of the profile's (later commands take it from the cache)
    #[arg(long, value_name = "URL")]
    issuer: Option<String>,
    /// The client id, instead of the profile's
    #[arg(long, value_name = "ID", requires = "issuer")]
    client_id: Option<String>,
    /// Sign in with the device grant: a code to approve in any browser, on any machine
    /// (chosen by itself with no display or over SSH)
    #[arg(long)]
    device: bool,
    /// Print the sign-in URL without starting a browser
    #[arg(long, conflicts_with = "device")]
    no_browser: bool,
    /// How long to wait for the person
    #[arg(long, value_name = "DURATION", default_value = "5m")]
    timeout: String,
}

#[derive(Debug, clap::Args)]
pub(crate) struct StatusArgs {
    /// The profile ([profiles.NAME]); else KEYGATE_PROFILE, client.profile, or "default"
    #[arg(long, value_name = "NAME")]
    profile: Option<String>,
    /// Print a JSON document (docs/json.md)
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct LogoutArgs {
    /// The profile ([profiles.NAME]); else KEYGATE_PROFILE, client.profile, or "default"
    #[arg(long, value_name = "NAME")]
    profile: Option<String>,
    /// Only forget the token here, without revoking it at the issuer (it then works until
    /// it expires)
    #[arg(long)]
    local: bool,
}

/// What git asks a credential helper (gitcredentials(7)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum GitOperation {
    /// Print a username and password (the access token) for the request on stdin.
    Get,
    /// Nothing to do: the token is cached already.
    Store,
    /// The token was refused: forget it, so the next `get` fetches or refreshes.
    Erase,
}

#[derive(Debug, clap::Args)]
pub(crate) struct CredentialHelperArgs {
    /// The profile ([profiles.NAME]); else KEYGATE_PROFILE, client.profile, or "default"
    #[arg(long, value_name = "NAME")]
    profile: Option<String>,
    /// What git asks (it appends this itself)
    #[arg(value_enum)]
    operation: GitOperation,
}

fn client_error(e: kg_client::Error) -> CliError {
    CliError::classified(&e, e.hint(), e.is_usage(), e.is_busy())
}

/// The configuration and the profile's name: `--profile`, else `KEYGATE_PROFILE` or
/// `client.profile`, else `default`.
fn profile(
    global: &GlobalArgs,
    profile: Option<&String>,
) -> Result<(kg_cli::Context, String), CliError> {
    let flags: Vec<_> = profile
        .map(|p| ("client.profile", "--profile", p.clone()))
        .into_iter()
        .collect();
    let ctx = load(global, &flags)?;
    let name = ctx
        .config
        .str("client.profile")
        .unwrap_or("default")
        .to_owned();
    Ok((ctx, name))
}

fn client(global: &GlobalArgs, profile: Option<&String>) -> Result<kg_client::Client, CliError> {
    client_or_error(global, profile, None, None)?.map_err(client_error)
}

/// The profile's client (with `issuer` and `client_id` from the command line winning),
/// kg-client's own error kept for the caller to judge.
fn client_or_error(
    global: &GlobalArgs,
    name: Option<&String>,
    issuer: Option<&str>,
    client_id: Option<&str>,
) -> Result<Result<kg_client::Client, kg_client::Error>, CliError> {
    let (ctx, name) = profile(global, name)?;
    let clock = kg_cli::clock(&ctx.config)?;
    Ok(
        kg_client::settings_for(&ctx.locations, &ctx.config, &name, issuer, client_id)
            .map(|s| kg_client::Client::new(s, clock)),
    )
}

pub(crate) fn token(global: &GlobalArgs, args: &TokenArgs) -> Result<ExitStatus, CliError> {
    let min = kg_config::parse_duration(&args.min_validity).map_err(|e| {
        CliError::usage(format!(
            "invalid --min-validity '{}': {e}",
            args.min_validity
        ))
        .with_hint("a duration such as 30s, 5m or 1h")
    })?;
    let min = time::Duration::try_from(min)
        .map_err(|_| CliError::usage("invalid --min-validity: too long"))?;
    let c = client(global, args.profile.as_ref())?;
    let t = c.access_token_valid_for(min).map_err(client_error)?;
    let token = t.token.expose_secret();
    match args.format {
        Format::Plain => out(token)?,
        Format::Header => out(format!("Authorization: Bearer {token}"))?,
        Format::Kubectl => out(serde_json::to_string_pretty(&serde_json::json!({
            "apiVersion": "client.authentication.k8s.io/v1",
            "kind": "ExecCredential",
            "status": {
                "token": token,
                "expirationTimestamp": crate::rfc3339(t.expires_at),
            },
        }))
        .expect("JSON serializes"))?,
    }
    Ok(ExitStatus::Success)
}

pub(crate) fn login(global: &GlobalArgs, args: &LoginArgs) -> Result<ExitStatus, CliError> {
    let c = client_or_error(
        global,
        args.profile.as_ref(),
        args.issuer.as_deref(),
        args.client_id.as_deref(),
    )?
    .map_err(client_error)?;
    let limit = kg_config::parse_duration(&args.timeout)
        .map_err(|e| CliError::usage(format!("invalid --timeout '{}': {e}", args.timeout)))?;
    let device = args.device || (!args.no_browser && !crate::browser::usable());
    if !device {
        let no_browser = args.no_browser;
        let mut open = |url: &str| {
            kg_cli::note(format!("to sign in, open {url}"));
            if !no_browser && crate::browser::open(url) {
                kg_cli::note("(a browser was started; waiting for it to come back)");
            }
        };
        let t = c.login_browser(&mut open, limit).map_err(client_error)?;
        return signed_in(&c, &t);
    }
    let mut show = |p: &kg_client::DevicePrompt| {
        let at = p
            .verification_uri_complete
            .clone()
            .unwrap_or_else(|| p.verification_uri.clone());
        // stderr, so that `tokenctl login` in a script keeps stdout clean; a person reads it.
        kg_cli::note(format!(
            "to sign in, open {at}\nand check that it shows the code {}",
            p.user_code
        ));
    };
    let t = c.login_device(&mut show, limit).map_err(client_error)?;
    signed_in(&c, &t)
}

fn signed_in(c: &kg_client::Client, t: &kg_client::AccessToken) -> Result<ExitStatus, CliError> {
    summary_note(format!(
        "signed in (profile '{}', token valid until {}); `tokenctl token` prints it",
        c.settings().profile,
        crate::rfc3339(t.expires_at)
    ));
    Ok(ExitStatus::Success)
}

/// Who the profile is signed in as, until when, and where that is kept; exit 1 when it is
/// not signed in (as `gh auth status`), so a script can ask.
pub(crate) fn status(global: &GlobalArgs, args: &StatusArgs) -> Result<ExitStatus, CliError> {
    let c = match client_or_error(global, args.profile.as_ref(), None, None)? {
        Ok(c) => c,
        // Nothing signed in under that name, and no profile: "no", not a failure to ask.
        Err(e) if e.is_signed_out() => {
            if args.json {
                kg_cli::out_doc(
                    "tokenctl.status/1",
                    &serde_json::json!({
                        "profile": args.profile.clone().unwrap_or_else(|| "default".into()),
                        "issuer": null, "client_id": null, "signed_in": false,
                        "subject": null, "scope": null, "expires_at": null,
                        "refreshable": false, "cache_file": null,
                    }),
                )?;
            } else {
                kg_cli::note(format!("not signed in: {e}"));
            }
            return Ok(ExitStatus::Failure);
        }
        Err(e) => return Err(client_error(e)),
    };
    let st = c.status().map_err(client_error)?;
    let s = c.settings();
    let clock_now = c.now();
    let signed_in = st
        .as_ref()
        .is_some_and(|t| t.refreshable || t.expires_at > clock_now || s.secret.is_some());
    if args.json {
        kg_cli::out_doc(
            "tokenctl.status/1",
            &serde_json::json!({
                "profile": s.profile,
                "issuer": s.issuer,
                "client_id": s.client_id,
                "signed_in": signed_in,
                "subject": st.as_ref().and_then(|t| t.subject.clone()),
                "scope": st.as_ref().and_then(|t| t.scope.clone()),
                "expires_at": st.as_ref().map(|t| crate::rfc3339(t.expires_at)),
                "refreshable": st.as_ref().is_some_and(|t| t.refreshable),
                "cache_file": kg_cli::absolute(&s.cache_file),
            }),
        )?;
    } else {
        out(format!("profile   {}", s.profile))?;
        out(format!("issuer    {}", s.issuer))?;
        out(format!("client    {}", s.client_id))?;
        match &st {
            None => out(
                "token     none cached: `tokenctl login` (a person) or `tokenctl token` (a machine client)",
            )?,
            Some(t) => {
                let left = t.expires_at - clock_now;
                let when = if left.is_positive() {
                    format!(
                        "valid until {} ({} min left)",
                        crate::rfc3339(t.expires_at),
                        left.whole_minutes()
                    )
                } else {
                    format!("expired at {}", crate::rfc3339(t.expires_at))
                };
                if let Some(sub) = &t.subject {
                    out(format!("subject   {sub}"))?;
                }
                out(format!("token     {when}"))?;
                out(format!(
                    "refresh   {}",
                    if t.refreshable {
                        "kept: `tokenctl token` renews it"
                    } else {
                        "none"
                    }
                ))?;
            }
        }
        out(format!("cache     {}", s.cache_file.display()))?;
    }
    Ok(if signed_in {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

/// git's credential helper: `git config credential.https://git.example.com.helper
/// '!tokenctl credential-helper --profile P'`. Answers `get` with `username=oauth2` and the
/// access token as the password (with its expiry, git 2.41+), never over plain http.
pub(crate) fn credential_helper(
    global: &GlobalArgs,
    args: &CredentialHelperArgs,
) -> Result<ExitStatus, CliError> {
    use std::io::Read as _;
    let mut input = String::new();
    std::io::stdin()
        .take(64 * 1024)
        .read_to_string(&mut input)
        .map_err(|e| CliError::usage(format!("cannot read git's request on stdin: {e}")))?;
    let field = |k: &str| {
        input
            .lines()
            .find_map(|l| l.strip_prefix(k).and_then(|r| r.strip_prefix('=')))
    };
    let c = client(global, args.profile.as_ref())?;
    match args.operation {
        GitOperation::Store => {}
        GitOperation::Erase => c.expire().map_err(client_error)?,
        GitOperation::Get => {
            if field("protocol") != Some("https") {
                // git asks again of the next helper, or the person; a token never goes out
                // in the clear.
                return Ok(ExitStatus::Success);
            }
            let t = c.access_token().map_err(client_error)?;
            out(format!(
                "username=oauth2\npassword={}\npassword_expiry_utc={}",
                t.token.expose_secret(),
                t.expires_at.unix_timestamp()
            ))?;
        }
    }
    Ok(ExitStatus::Success)
}

pub(crate) fn logout(global: &GlobalArgs, args: &LogoutArgs) -> Result<ExitStatus, CliError> {
    let (ctx, name) = profile(global, args.profile.as_ref())?;
    let name = name.as_str();
    // Revoked at the issuer first; when that fails the cache is kept (so that logout can be
    // run again) and the command fails, unless --local says to forget it anyway.
    let cached = kg_client::cache_file(&ctx.locations.private_dir, name).exists();
    if cached && !args.local {
        let revoked = kg_client::settings_of(&ctx.locations, &ctx.config, name).and_then(|s| {
            let clock =
                kg_cli::clock(&ctx.config).map_err(|e| kg_client::Error::Profile(e.message))?;
            kg_client::Client::new(s, clock).revoke()
        });
        match revoked {
            Ok(true) => summary_note(format!(
                "revoked the sign-in of profile '{name}' at its issuer"
            )),
            Ok(false) => {}
            // A damaged cache holds nothing to revoke: it is only removed.
            Err(e @ kg_client::Error::Cache { .. }) => {
                kg_cli::note(format!("warning: {e}: nothing to revoke; removing it"));
            }
            Err(e) => {
                let hint = e.hint().map_or_else(String::new, |h| format!("{h}; "));
                return Err(CliError::failure(format!(
                    "could not revoke the sign-in of profile '{name}' at its issuer: {e}"
                ))
                .with_hint(format!(
                    "{hint}then run `tokenctl logout` again, or `tokenctl logout --local` to \
                     forget it here only (it works until it expires)"
                )));
            }
        }
    }
    let forgot = kg_client::forget(&ctx.locations, name).map_err(client_error)?;
    summary_note(if forgot {
        format!("forgot the cached token of profile '{name}'")
    } else {
        format!("profile '{name}' had no cached token")
    });
    Ok(ExitStatus::Success)
}
