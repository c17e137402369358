//! `keygate serve` and `keygate check`: flags to settings, settings to the library.

use kg_cli::{CliError, ExitStatus, GlobalArgs, Verdict, out, out_doc};
use kg_server::{ServeError, Settings, SettingsError};

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ServerFlags {
    /// Listen on ADDR (IP:PORT; repeatable) [default: server.listen, 127.0.0.1:8443]
    #[arg(long, value_name = "ADDR")]
    listen: Vec<String>,
    /// Serve this managed certificate [default: server.cert_id, "default"]
    #[arg(long, value_name = "ID")]
    cert_id: Option<String>,
    /// Serve plain HTTP instead of HTTPS; loopback addresses only [default: server.plain_http]
    #[arg(long)]
    plain_http: bool,
    /// Allow plain HTTP on addresses other hosts can reach: tokens then cross the network in clear text
    #[arg(long)]
    danger_plain_http_non_loopback: bool,
    /// Proxy authorized requests to URL (http://HOST:PORT on loopback, a private address or a .internal name, or unix:/PATH) [default: server.upstream]
    #[arg(long, value_name = "URL")]
    upstream: Option<String>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    flags: ServerFlags,
}

#[derive(Debug, clap::Args)]
pub(crate) struct CheckArgs {
    #[command(flatten)]
    flags: ServerFlags,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

impl ServerFlags {
    /// No flags: the settings as the config gives them.
    pub(crate) fn none() -> ServerFlags {
        ServerFlags {
            listen: Vec::new(),
            cert_id: None,
            plain_http: false,
            danger_plain_http_non_loopback: false,
            upstream: None,
        }
    }

    /// These flags as `keygate serve` arguments, for a unit that runs it.
    pub(crate) fn as_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        for l in &self.listen {
            args.extend(["--listen".to_owned(), l.clone()]);
        }
        if let Some(id) = &self.cert_id {
            args.extend(["--cert-id".to_owned(), id.clone()]);
        }
        if self.plain_http {
            args.push("--plain-http".to_owned());
        }
        if self.danger_plain_http_non_loopback {
            args.push("--danger-plain-http-non-loopback".to_owned());
        }
        if let Some(u) = &self.upstream {
            args.extend(["--upstream".to_owned(), u.clone()]);
        }
        args
    }
}

/// The server's settings from the flags.
pub(crate) fn settings(global: &GlobalArgs, f: &ServerFlags) -> Result<Settings, CliError> {
    let mut flags = Vec::new();
    if !f.listen.is_empty() {
        flags.push(("server.listen", "--listen", f.listen.join(",")));
    }
    if let Some(id) = &f.cert_id {
        flags.push(("server.cert_id", "--cert-id", id.clone()));
    }
    if f.plain_http {
        flags.push(("server.plain_http", "--plain-http", "true".to_owned()));
    }
    if let Some(u) = &f.upstream {
        flags.push(("server.upstream", "--upstream", u.clone()));
    }
    let ctx = global.load(&flags)?;
    let settings = Settings::from_config(
        &ctx.locations,
        &ctx.config,
        f.danger_plain_http_non_loopback,
        kg_server::Clock::new(kg_cli::clock(&ctx.config)?),
    )
    .map_err(settings_error)?;
    if f.danger_plain_http_non_loopback
        && settings.plain_http
        && settings
            .listen
            .iter()
            .any(|a| !a.ip().to_canonical().is_loopback())
    {
        kg_server::warn(
            "danger_plain_http_non_loopback",
            &[(
                "note",
                "serving plain HTTP beyond loopback: bearer tokens cross the network in clear text"
                    .into(),
            )],
        );
    }
    if let Some(t) = ctx.config.str("test.now") {
        // A fixed clock judges every expiry at that instant: a leftover variable would let
        // expired tokens in for as long as the server runs.
        kg_server::warn(
            "test_clock",
            &[
                ("now", t.into()),
                (
                    "note",
                    "test.now (KEYGATE_TEST_NOW) fixes the clock: tokens and certificates are \
                     judged at this time, not the real one; unset it outside tests"
                        .into(),
                ),
            ],
        );
    }
    Ok(settings)
}

fn settings_error(e: SettingsError) -> CliError {
    CliError::classified(&e, e.hint(), true, false)
}

/// A failed start: bad configuration exits 2, anything else 1.
pub(crate) fn serve_error(e: ServeError) -> CliError {
    CliError::classified(&e, e.hint(), e.is_usage(), false)
}

pub(crate) fn serve(global: &GlobalArgs, args: &ServeArgs) -> Result<ExitStatus, CliError> {
    let settings = settings(global, &args.flags)?;
    kg_server::serve(&settings).map_err(serve_error)?;
    Ok(ExitStatus::Success)
}

pub(crate) fn check(global: &GlobalArgs, args: &CheckArgs) -> Result<ExitStatus, CliError> {
    let settings = settings(global, &args.flags)?;
    // The binary's clock, as the server's: `test.now` reaches `check` too.
    let items = kg_server::check(&settings, settings.clock.now());
    let failed = items.iter().filter(|i| !i.ok).count();
    if args.json {
        let checks: Vec<kg_cli::Item> = items
            .iter()
            .map(|i| kg_cli::Item {
                check: i.id.to_owned(),
                status: match (i.ok, &i.hint) {
                    (false, _) => Verdict::Fail,
                    (true, Some(_)) => Verdict::Warn,
                    (true, None) => Verdict::Ok,
                },
                detail: format!("{}: {}", i.what, i.detail),
                hint: i.hint.clone(),
                fixed: None,
            })
            .collect();
        out_doc(
            "keygate.check/1",
            &serde_json::json!({ "ok": failed == 0, "checks": checks }),
        )?;
    } else {
        for i in &items {
            let line = format!(
                "{}  {}: {}",
                if i.ok { "ok  " } else { "FAIL" },
                i.what,
                i.detail
            );
            // Under --quiet only what failed is shown.
            if i.ok {
                kg_cli::summary(line)?;
            } else {
                out(line)?;
            }
            if let Some(h) = &i.hint {
                out(format!("      hint: {h}"))?;
            }
        }
    }
    // The checks ran and found a problem: 1, as for `certctl status`. Settings that do not
    // parse never get here; they are usage errors (2).
    if failed > 0 {
        return Err(CliError::failure(format!(
            "{failed} check(s) failed; fix them before running keygate serve"
        )));
    }
    Ok(ExitStatus::Success)
}
