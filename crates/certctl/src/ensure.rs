use std::time::Duration;

use kg_cascade::{Action, Method, Outcome, Request};
use kg_cli::{CliError, ExitStatus, GlobalArgs, out, out_doc, summary};
use kg_fs::lock::Wait;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Names to cover: DNS names and IP addresses [default: localhost, this host, 127.0.0.1, ::1]
    names: Vec<String>,
    /// The managed certificate to act on [default: cert.id, "default"]
    #[arg(long)]
    id: Option<String>,
    /// How to obtain it: auto, tailscale, mkcert, local-ca or self-signed [default: cert.method, auto]
    #[arg(long)]
    method: Option<String>,
    /// Key type: ecdsa-p256, ecdsa-p384, ed25519, rsa-2048 or rsa-3072 [default: cert.key]
    #[arg(long)]
    key: Option<String>,
    /// Lifetime in days of certificates keygate signs (at most 825) [default: cert.days, 90]
    #[arg(long)]
    days: Option<String>,
    /// Show the decision (each method, available or not and why) without writing anything
    #[arg(long)]
    dry_run: bool,
    /// If another run holds the lock, wait up to SECS seconds instead of exiting 75
    #[arg(long, value_name = "SECS")]
    wait: Option<u64>,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(global: &GlobalArgs, args: &Args, force: bool) -> Result<ExitStatus, CliError> {
    let mut flags = Vec::new();
    for (key, flag, value) in [
        ("cert.id", "--id", &args.id),
        ("cert.method", "--method", &args.method),
        ("cert.key", "--key", &args.key),
        ("cert.days", "--days", &args.days),
    ] {
        if let Some(v) = value {
            flags.push((key, flag, v.clone()));
        }
    }
    if !args.names.is_empty() {
        flags.push(("cert.names", "NAME", args.names.join(",")));
    }
    let ctx = global.load(&flags)?;
    let cfg = &ctx.config;
    let text = |key| cfg.str(key).unwrap_or_default().to_owned();
    let req = Request {
        id: text("cert.id"),
        names: if args.names.is_empty() {
            cfg.list("cert.names").to_vec()
        } else {
            args.names.clone()
        },
        method: text("cert.method").parse().map_err(CliError::usage)?,
        key: text("cert.key")
            .parse()
            .map_err(|e: kg_pki::KeyKindError| CliError::usage(e.to_string()))?,
        days: cfg.u32("cert.days"),
        force,
        dry_run: args.dry_run,
        wait: args
            .wait
            .map_or(Wait::No, |s| Wait::Up(Duration::from_secs(s))),
        ca_extra_names: cfg.list("cert.ca_extra_names").to_vec(),
        tailnet_hint: None,
        keep: cfg.u32("cert.keep_generations") as usize,
        now: kg_cli::now(cfg)?,
    };
    let outcome = kg_cascade::provision(&ctx.locations, &req).map_err(crate::cli_error)?;
    if args.json {
        let schema = if force {
            "certctl.issue/1"
        } else {
            "certctl.ensure/1"
        };
        out_doc(schema, &outcome)?;
    } else {
        print_text(&outcome, req.method)?;
    }
    Ok(ExitStatus::Success)
}

fn print_text(o: &Outcome, asked: Method) -> Result<(), CliError> {
    let names = o
        .names
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ");
    match o.action {
        Action::Unchanged => {
            summary(format!(
                "certificate '{}' is up to date ({}, generation {}, valid until {}); nothing changed",
                o.id,
                o.method,
                o.generation.unwrap_or_default(),
                date(o.not_after)
            ))?;
            return Ok(());
        }
        Action::WouldKeep => {
            out(format!("would keep certificate '{}': {}", o.id, o.why))?;
            return Ok(());
        }
        Action::WouldIssue => {
            out(format!(
                "would issue certificate '{}' for {names} with {}",
                o.id, o.method
            ))?;
            out(format!("  why: {}", o.why))?;
            for t in &o.tiers {
                out(format!(
                    "  {}: {}{}",
                    t.method,
                    if t.available { "available: " } else { "" },
                    kg_cli::untrusted(&t.reason)
                ))?;
            }
            if asked != Method::Auto && o.tiers.is_empty() {
                out(format!(
                    "  {} was asked for explicitly; no detection was needed",
                    asked.as_str()
                ))?;
            }
            return Ok(());
        }
        Action::Issued => {}
    }
    summary(format!(
        "issued certificate '{}' with {} (generation {})",
        o.id,
        o.method,
        o.generation.unwrap_or_default()
    ))?;
    summary(format!("  why:       {}", o.why))?;
    summary(format!("  names:     {names}"))?;
    summary(format!("  valid:     until {}", date(o.not_after)))?;
    if let Some(f) = &o.files {
        summary(format!("  cert:      {}", f.fullchain.display()))?;
        summary(format!("  key:       {}", f.key.display()))?;
        summary(format!("  ca:        {}", f.ca.display()))?;
    }
    if let Some(t) = &o.tailnet {
        summary(format!(
            "  tailnet:   {} ({}, key {})",
            t.domain,
            t.fullchain.display(),
            t.key.display()
        ))?;
    }
    for note in &o.notes {
        summary(format!("note: {note}"))?;
    }
    Ok(())
}

fn date(t: Option<time::OffsetDateTime>) -> String {
    t.and_then(|t| {
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    })
    .unwrap_or_else(|| "?".into())
}
