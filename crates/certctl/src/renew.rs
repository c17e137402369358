//! `certctl renew`, `status`, `doctor` and `schedule`: the unattended side of certctl.

use std::io::IsTerminal;
use std::time::Duration;

use kg_cascade::renew::{CurrentCas, Policy, check, managed_ids};
use kg_cli::{
    CliError, Context, ExitStatus, GlobalArgs, Item, Verdict, out, out_doc, summary, summary_note,
};
use kg_fs::lock::Wait;

/// The longest random delay before renewing from a non-interactive run, as certbot and lego.
const MAX_JITTER: Duration = Duration::from_secs(480);

#[derive(Debug, clap::Args)]
pub(crate) struct RenewArgs {
    /// Renew only this certificate [default: every managed certificate]
    #[arg(long, conflicts_with = "all")]
    id: Option<String>,
    /// Renew every managed certificate that is due (the default)
    #[arg(long)]
    all: bool,
    /// Renew even when not due
    #[arg(long)]
    force: bool,
    /// Show what would be renewed and why, without changing anything
    #[arg(long)]
    dry_run: bool,
    /// Do not wait a random 0-480 s first (done only when stdin is not a terminal and
    /// something is due, so that fleets of cron jobs do not hit a CA at the same second)
    #[arg(long)]
    no_jitter: bool,
    /// Shell command to run after each renewal, with KEYGATE_CERT_ID, KEYGATE_CERT_DIR,
    /// KEYGATE_CERT_FILE, KEYGATE_KEY_FILE, KEYGATE_FULLCHAIN_FILE, KEYGATE_RENEWED_NAMES set
    #[arg(long, value_name = "CMD")]
    deploy_hook: Option<String>,
    /// If another run holds the lock, wait up to SECS seconds instead of exiting 75
    #[arg(long, value_name = "SECS")]
    wait: Option<u64>,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

fn policy(ctx: &Context) -> Result<Policy, CliError> {
    let cfg = &ctx.config;
    let id = cfg.str("cert.id").unwrap_or("default").to_owned();
    Ok(Policy {
        renew_before: cfg.duration("cert.renew_before"),
        configured: Some((id, cfg.list("cert.names").to_vec())),
        ca_extra_names: cfg.list("cert.ca_extra_names").to_vec(),
        keep: cfg.u32("cert.keep_generations") as usize,
        now: kg_cli::now(cfg)?,
    })
}

fn ids(ctx: &Context, only: Option<&str>) -> Result<Vec<String>, CliError> {
    let all = managed_ids(&ctx.locations);
    match only {
        Some(id) if all.iter().any(|m| m == id) => Ok(vec![id.to_owned()]),
        Some(id) => Err(CliError::failure(format!(
            "no certificate with id '{id}' is managed here"
        ))
        .with_hint("run `certctl status` to list them, or `certctl ensure --id ID` to create it")),
        None => Ok(all),
    }
}

/// The cron contract: silent and 0 when nothing is due; one line per renewal; 75 at once
/// when another run holds the lock; one failure does not stop the others; 1 with a summary.
pub(crate) fn renew(global: &GlobalArgs, args: &RenewArgs) -> Result<ExitStatus, CliError> {
    let flags: Vec<(&str, &str, String)> = args
        .deploy_hook
        .iter()
        .map(|h| ("cert.deploy_hook", "--deploy-hook", h.clone()))
        .collect();
    let ctx = global.load(&flags)?;
    let hook = ctx.config.str("cert.deploy_hook").map(str::to_owned);
    let hook_from = ctx
        .config
        .file_of("cert.deploy_hook")
        .map(ToOwned::to_owned);
    if let Some(hook) = &hook {
        // Before anything is renewed: a hook that would be refused after the renewal is a
        // configuration error, not a failed run.
        kg_cascade::renew::check_deploy_hook(hook, hook_from.as_deref()).map_err(|e| {
            let hint = e.hint();
            CliError::classified(&e, hint, true, false)
        })?;
    }
    let policy = policy(&ctx)?;
    let ids = ids(&ctx, args.id.as_deref())?;
    let mut cas = CurrentCas::default();
    let mut not_due: Vec<(String, Option<time::OffsetDateTime>)> = Vec::new();
    let due: Vec<(String, String)> = ids
        .iter()
        .map(|id| check(&ctx.locations, id, &policy, &mut cas))
        .filter_map(|c| match (c.due, args.force) {
            (Some(reason), _) => Some((c.id, reason)),
            (None, true) => Some((c.id, "renewal was forced".to_owned())),
            (None, false) => {
                not_due.push((c.id, c.renew_at));
                None
            }
        })
        .collect();

    if args.dry_run {
        if args.json {
            let list: Vec<_> = due
                .iter()
                .map(|(id, why)| serde_json::json!({ "id": id, "reason": why }))
                .collect();
            out_doc(
                "certctl.renew/1",
                &serde_json::json!({ "dry_run": true, "would_renew": list }),
            )?;
        } else {
            for (id, why) in &due {
                out(format!("would renew '{id}': {why}"))?;
            }
            // A dry run is asked by a person: say what would not happen too (certbot says
            // "no renewals were attempted"), where the real run stays silent for cron.
            for (id, at) in &not_due {
                let when = at
                    .and_then(|t| {
                        t.format(&time::format_description::well_known::Rfc3339)
                            .ok()
                    })
                    .map_or_else(String::new, |t| format!(", renews from {t}"));
                out(format!("would not renew '{id}': not due{when}"))?;
            }
            if due.is_empty() && not_due.is_empty() {
                out("no certificate is managed here: nothing would be renewed")?;
            }
        }
        return Ok(ExitStatus::Success);
    }
    if due.is_empty() {
        if args.json {
            out_doc(
                "certctl.renew/1",
                &serde_json::json!({
                    "dry_run": false,
                    "renewed": [],
                    "failed": [],
                    "deploy_hook_failed": [],
                }),
            )?;
        }
        return Ok(ExitStatus::Success);
    }
    // `--force` is a person or a script asking for now; only the scheduled run spreads out.
    if !args.no_jitter && !args.force && !std::io::stdin().is_terminal() {
        let delay = jitter();
        summary_note(format!(
            "certctl renew: waiting {} s first, so that hosts do not renew at the same moment \
             (--no-jitter skips the wait)",
            delay.as_secs()
        ));
        std::thread::sleep(delay);
    }
    let wait = args
        .wait
        .map_or(Wait::No, |s| Wait::Up(Duration::from_secs(s)));
    let lock = kg_cascade::lock(&ctx.locations, wait).map_err(crate::cli_error)?;

    let mut renewed = Vec::new();
    let mut failed: Vec<(String, String, Option<String>)> = Vec::new();
    // Renewed, but its deploy hook failed: the new certificate is live either way.
    let mut hook_failed: Vec<(String, String)> = Vec::new();
    let mut cas = CurrentCas::default();
    for (id, _) in &due {
        // Another run may have renewed it while we waited for the lock.
        let reason = match (check(&ctx.locations, id, &policy, &mut cas).due, args.force) {
            (Some(r), _) => r,
            (None, true) => "renewal was forced".to_owned(),
            (None, false) => continue,
        };
        match kg_cascade::renew::renew(&ctx.locations, id, &reason, &policy, &lock) {
            Ok(r) => {
                if !args.json {
                    let o = &r.outcome;
                    let until = o
                        .not_after
                        .and_then(|t| {
                            t.format(&time::format_description::well_known::Rfc3339)
                                .ok()
                        })
                        .unwrap_or_default();
                    summary(format!(
                        "renewed '{id}' with {}, valid until {until}: {reason}",
                        o.method
                    ))?;
                }
                if let Some(hook) = &hook {
                    let run = kg_cascade::renew::run_deploy_hook(hook, hook_from.as_deref(), &r);
                    // The hook's own words, as certbot shows them; a failing hook's always.
                    for line in run.output.lines() {
                        if run.error.is_some() {
                            kg_cli::note(format!("deploy hook ('{id}'): {line}"));
                        } else {
                            summary_note(format!("deploy hook ('{id}'): {line}"));
                        }
                    }
                    if let Some(e) = run.error {
                        hook_failed.push((id.clone(), e));
                    }
                }
                renewed.push(r);
            }
            Err(e) => failed.push((id.clone(), e.to_string(), e.hint())),
        }
    }
    drop(lock);
    if args.json {
        let f: Vec<_> = failed
            .iter()
            .map(|(id, e, hint)| serde_json::json!({ "id": id, "error": e, "hint": hint }))
            .collect();
        let h: Vec<_> = hook_failed
            .iter()
            .map(|(id, e)| serde_json::json!({ "id": id, "error": e }))
            .collect();
        out_doc(
            "certctl.renew/1",
            &serde_json::json!({
                "dry_run": false,
                "renewed": renewed,
                "failed": f,
                "deploy_hook_failed": h,
            }),
        )?;
    }
    if failed.is_empty() && hook_failed.is_empty() {
        return Ok(ExitStatus::Success);
    }
    if failed.is_empty() {
        let detail: Vec<String> = hook_failed
            .iter()
            .map(|(id, e)| format!("'{id}': {e}"))
            .collect();
        return Err(CliError::failure(format!(
            "{} renewed; the deploy hook failed for {}",
            renewed.len(),
            detail.join("; ")
        ))
        .with_hint("the new certificates are live; fix the hook and run it by hand, or renew again with --force"));
    }
    let mut detail: Vec<String> = failed
        .iter()
        .map(|(id, e, _)| format!("{id}: {e}"))
        .collect();
    detail.extend(
        hook_failed
            .iter()
            .map(|(id, e)| format!("{id} (renewed, live): {e}")),
    );
    // One failure with its own advice gets that advice; several get the general one.
    let hint = match failed.as_slice() {
        [(_, _, Some(hint))] => hint.clone(),
        _ => "run `certctl doctor` for details; the certificates that failed keep their previous generation".to_owned(),
    };
    Err(CliError::failure(format!(
        "{} renewed, {} failed: {}",
        renewed.len(),
        failed.len(),
        detail.join("; ")
    ))
    .with_hint(hint))
}

fn jitter() -> Duration {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    Duration::from_millis(u64::from_le_bytes(b) % (MAX_JITTER.as_millis() as u64 + 1))
}

#[derive(Debug, clap::Args)]
pub(crate) struct StatusArgs {
    /// Print JSON
    #[arg(long)]
    json: bool,
}

/// Exit 0 when every managed certificate is fine, 1 when any is due, expired or broken.
pub(crate) fn status(global: &GlobalArgs, args: &StatusArgs) -> Result<ExitStatus, CliError> {
    let ctx = global.load(&[])?;
    let policy = policy(&ctx)?;
    let mut cas = CurrentCas::default();
    let checks: Vec<_> = managed_ids(&ctx.locations)
        .iter()
        .map(|id| check(&ctx.locations, id, &policy, &mut cas))
        .collect();
    let bad = checks.iter().any(|c| c.due.is_some() || c.broken.is_some());
    if args.json {
        out_doc(
            "certctl.status/1",
            &serde_json::json!({ "ok": !bad, "certificates": checks }),
        )?;
    } else if checks.is_empty() {
        out("no managed certificates; `certctl ensure` creates one")?;
    } else {
        let date = |t: Option<time::OffsetDateTime>| {
            t.map(|t| t.date().to_string())
                .unwrap_or_else(|| "-".into())
        };
        out(format!(
            "{:<16} {:<12} {:<11} {:>5}  {:<11} {}",
            "ID", "METHOD", "NOT AFTER", "DAYS", "RENEW AT", "STATE"
        ))?;
        for c in &checks {
            let state = match (&c.broken, &c.due) {
                (Some(b), _) => format!("broken: {b}"),
                (None, Some(d)) => format!("due: {d}"),
                (None, None) => "ok".into(),
            };
            out(format!(
                "{:<16} {:<12} {:<11} {:>5}  {:<11} {state}",
                c.id,
                c.method.as_deref().unwrap_or("-"),
                date(c.not_after),
                c.days_left.map_or("-".into(), |d| d.to_string()),
                date(c.renew_at)
            ))?;
            out(format!("{:<16} names: {}", "", c.names.join(" ")))?;
        }
    }
    Ok(if bad {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}

#[derive(Debug, clap::Args)]
pub(crate) struct DoctorArgs {
    /// Repair what is safe to repair: modes, stale temporary files, old generations
    #[arg(long)]
    fix: bool,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

/// Exit 0 when nothing remains wrong, 1 otherwise.
pub(crate) fn doctor(global: &GlobalArgs, args: &DoctorArgs) -> Result<ExitStatus, CliError> {
    let ctx = global.load(&[])?;
    let policy = policy(&ctx)?;
    // Repairs take the lock so that they never race a renewal.
    let _lock = if args.fix {
        Some(kg_cascade::lock(&ctx.locations, Wait::No).map_err(crate::cli_error)?)
    } else {
        None
    };
    let findings = kg_cascade::doctor::doctor(&ctx.locations, &policy, args.fix);
    let remaining = findings.iter().filter(|f| f.remains()).count();
    if args.json {
        let items: Vec<Item> = findings
            .iter()
            .map(|f| Item {
                check: f.id.to_owned(),
                status: if f.ok || f.fixed {
                    Verdict::Ok
                } else {
                    Verdict::Fail
                },
                detail: format!("{}: {}", f.check, f.detail),
                hint: None,
                fixed: args.fix.then_some(f.fixed),
            })
            .collect();
        out_doc(
            "certctl.doctor/1",
            &serde_json::json!({
                "ok": remaining == 0,
                "checks": items,
                "problem_count": remaining,
            }),
        )?;
    } else {
        for f in &findings {
            let tag = if f.fixed {
                "fixed"
            } else if f.ok {
                "ok"
            } else {
                "PROBLEM"
            };
            out(format!("{tag:<8} {}: {}", f.check, f.detail))?;
        }
        if remaining > 0 {
            out(format!(
                "{remaining} problem(s) remain{}",
                if args.fix {
                    ""
                } else {
                    "; `certctl doctor --fix` repairs modes, stale files and old generations"
                }
            ))?;
        }
    }
    Ok(if remaining > 0 {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}
