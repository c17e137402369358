//! `keygate up`: from nothing to a running, protected service on embedded defaults.
//!
//! A certificate (certctl's cascade), a token (tokenctl's `ensure`), then the verifying
//! server, and a line that calls it. Re-running reuses both.

use std::net::SocketAddr;
use std::time::Duration;

use kg_cascade::{Action, Method, Request};
use kg_cli::{CliError, ExitStatus, GlobalArgs, out, shell_quote};
use kg_fs::lock::Wait;
use kg_tokens::files::StorePaths;

#[derive(Debug, clap::Args)]
pub(crate) struct UpArgs {
    /// Listen on ADDR (IP:PORT; repeatable) [default: server.listen, 127.0.0.1:8443]
    #[arg(long, value_name = "ADDR")]
    listen: Vec<String>,
    /// Listen on every interface ([::]:8443, which takes IPv4 too), not only loopback
    #[arg(long, conflicts_with = "listen")]
    public: bool,
    /// Put sign-in in front of the web app at URL (http://HOST:PORT on loopback, a private address or a .internal name, or unix:/PATH) [default: server.upstream]
    #[arg(long, value_name = "URL")]
    upstream: Option<String>,
}

/// The token `keygate up` creates for the local user.
const TOKEN_NAME: &str = "default";

pub(crate) fn up(global: &GlobalArgs, args: &UpArgs) -> Result<ExitStatus, CliError> {
    let mut flags = Vec::new();
    if args.public {
        flags.push((
            "server.listen",
            "--public",
            // One dual-stack socket: binding 0.0.0.0 beside [::] fails where bindv6only=0
            // (the Linux default), since [::] already takes the IPv4 addresses.
            "[::]:8443".to_owned(),
        ));
    } else if !args.listen.is_empty() {
        flags.push(("server.listen", "--listen", args.listen.join(",")));
    }
    if let Some(u) = &args.upstream {
        flags.push(("server.upstream", "--upstream", u.clone()));
    }
    // `up` always serves HTTPS: beyond loopback there is no other safe choice, and on
    // loopback it costs nothing.
    flags.push(("server.plain_http", "keygate up", "false".to_owned()));
    let ctx = global.load(&flags)?;
    let cfg = &ctx.config;
    let now = kg_cli::now(cfg)?;
    let text = |key| cfg.str(key).unwrap_or_default().to_owned();

    let id = text("server.cert_id");
    // Names the user chose (`certctl ensure app.internal 10.0.0.5`) stay: without names in
    // the config, `up` asks for what is published, not for the defaults.
    let names = match cfg.list("cert.names") {
        [] => kg_cascade::published_names(&ctx.locations, &id).unwrap_or_default(),
        configured => configured.to_vec(),
    };
    let cert = kg_cascade::provision(
        &ctx.locations,
        &Request {
            id,
            names,
            method: text("cert.method")
                .parse::<Method>()
                .map_err(CliError::usage)?,
            key: text("cert.key")
                .parse()
                .map_err(|e: kg_pki::KeyKindError| CliError::usage(e.to_string()))?,
            days: cfg.u32("cert.days"),
            force: false,
            dry_run: false,
            wait: Wait::Up(Duration::from_secs(30)),
            ca_extra_names: cfg.list("cert.ca_extra_names").to_vec(),
            keep: cfg.u32("cert.keep_generations") as usize,
            tailnet_hint: None,
            now,
        },
    )
    .map_err(|e| CliError::classified(&e, e.hint(), e.is_usage(), false))?;

    let prefix = kg_tokens::Prefix::new(
        cfg.str("token.prefix")
            .unwrap_or(kg_tokens::Prefix::DEFAULT),
    )
    .map_err(|e| CliError::usage(format!("invalid value for 'token.prefix': {e}")))?;
    let l = &ctx.locations;
    let token = kg_tokens::files::ensure_client_token(
        &StorePaths::new(&l.state_dir, &l.private_dir),
        &l.private_dir,
        TOKEN_NAME,
        Vec::new(),
        &prefix,
        Wait::Up(Duration::from_secs(30)),
        now,
    )
    .map_err(|e| CliError::classified(&e, e.hint(), e.is_usage(), e.is_locked()))?;
    kg_cli::warn_exposed(&token.exposed);

    let settings =
        kg_server::Settings::from_config(l, cfg, false, kg_server::Clock::new(kg_cli::clock(cfg)?))
            .map_err(|e| CliError::classified(&e, e.hint(), true, false))?;
    let files = cert
        .files
        .clone()
        .ok_or_else(|| CliError::failure("the certificate has no published files"))?;
    let ca_pem = std::fs::read_to_string(&files.ca).unwrap_or_default();
    let trusted = kg_cascade::trusted_by_system(&ca_pem);

    let proxy = settings.upstream.as_ref().map(ToString::to_string);
    let local_user = settings.bypass_user().map(str::to_owned);
    let as_root = settings.bypass() == kg_server::Bypass::RefusedAsRoot;
    let public = args.public;
    let issuer = settings.oauth_on().then(|| {
        let addrs = settings_listen(&ctx);
        (settings.issuer(&addrs), settings.discovery(&addrs))
    });
    let summary = move || -> Result<(), CliError> {
        let urls: Vec<String> = settings_urls(&settings_listen(&ctx));
        let reuse = |fresh: bool| if fresh { "new" } else { "reused" };
        let cert_state = reuse(cert.action == Action::Issued);
        let until = cert
            .not_after
            .map(|t| t.date().to_string())
            .unwrap_or_default();
        match &proxy {
            Some(upstream) => {
                out(format!("keygate is up: sign-in in front of {upstream}"))?;
                for u in &urls {
                    out(format!("  {u}/"))?;
                }
            }
            None => {
                out("keygate is up: /auth answers for tokens from tokenctl's store")?;
                for u in &urls {
                    out(format!("  {u}/auth"))?;
                }
            }
        }
        out(format!(
            "  certificate  {} ({cert_state}, valid until {until}): {}",
            cert.method, cert.why
        ))?;
        if trusted {
            out("  CA           trusted by this system")?;
        } else {
            out(format!(
                "  CA           {} (not trusted by this system yet: `certctl trust` prints how)",
                files.ca.display()
            ))?;
        }
        out(format!(
            "  token        {} ({}, name '{TOKEN_NAME}')",
            token.token_file.display(),
            match &token.repaired {
                // Its file was lost (e.g. a run killed by an older build): a new token.
                Some(r) => format!(
                    "replaced: the client file {}, id {} revoked",
                    r.problem, r.old_id
                ),
                None => reuse(token.created).to_owned(),
            }
        ))?;
        if let Some((issuer, discovery)) = &issuer {
            out(format!(
                "  OAuth        issuer {issuer} ({discovery}); clients: `tokenctl client create`"
            ))?;
        }
        if proxy.is_some() {
            match &local_user {
                Some(user) => out(format!(
                    "  sign-in      not needed by {user}'s own processes on this host (the kernel \
                     says who connects; other users and relays they run still sign in); turn \
                     that off with --set server.local_bypass=false"
                ))?,
                None if as_root => out(
                    "  sign-in      required for every request, local ones included: keygate runs \
                     as root, whose processes include relays for others (see \
                     server.danger_local_bypass_as_root)",
                )?,
                None => out("  sign-in      required for every request, local ones included")?,
            }
            out(format!(
                "  browsers     sign in at {}/.keygate/sign-in by pasting the token",
                urls.first().map_or("", String::as_str)
            ))?;
        }
        if public && let Some(lan) = lan_address() {
            let covered = cert.names.iter().any(|n| n.to_string() == lan.to_string());
            if !covered {
                out(format!(
                    "  LAN          other hosts reach this one as {lan}, which the certificate \
                     does not name: `certctl ensure {} {lan}` adds it",
                    cert.names
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(" ")
                ))?;
            }
        }
        let first = urls.first().cloned().unwrap_or_default();
        let path = if proxy.is_some() { "/" } else { "/auth" };
        out("try it (prints 200):")?;
        // The token goes to curl through its config on stdin, from the shell's builtin
        // printf: it never appears in any process's argv (visible to every user in `ps`).
        out(format!(
            "  printf 'header = \"Authorization: Bearer %s\"\\n' \"$(cat {})\" | curl --fail --silent --show-error --cacert {} --config - -o /dev/null -w '%{{http_code}}\\n' {first}{path}",
            shell_quote(&token.token_file.display().to_string()),
            shell_quote(&files.ca.display().to_string())
        ))?;
        out("stop with Ctrl-C")?;
        Ok(())
    };
    // The summary is a courtesy: a closed stdout (`keygate up | head -3`) ends it, never the
    // server it describes.
    kg_server::serve_then(&settings, move || {
        let _ = summary();
    })
    .map_err(crate::serve::serve_error)?;
    Ok(ExitStatus::Success)
}

fn settings_listen(ctx: &kg_cli::Context) -> Vec<SocketAddr> {
    ctx.config
        .list("server.listen")
        .iter()
        .filter_map(|a| a.trim().parse().ok())
        .collect()
}

/// How a local client reaches each address: `localhost` for loopback and "any" addresses
/// (the certificate covers it), the address itself otherwise.
fn settings_urls(addrs: &[SocketAddr]) -> Vec<String> {
    addrs
        .iter()
        .map(|a| {
            let ip = a.ip();
            if ip.is_loopback() || ip.is_unspecified() {
                format!("https://localhost:{}", a.port())
            } else if ip.is_ipv6() {
                format!("https://[{ip}]:{}", a.port())
            } else {
                format!("https://{ip}:{}", a.port())
            }
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// This host's address on the network its default route leads to: what other hosts on the
/// LAN use to reach it. A UDP socket "connected" to a documentation address sends nothing;
/// the kernel only picks the source address. `None` without a route.
fn lan_address() -> Option<std::net::IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}
