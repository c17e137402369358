use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use kg_cli::{CliError, ExitStatus, GlobalArgs, Item, Verdict, out, out_doc, untrusted};
use kg_pki::{Report, SecretPem};

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["target", "id"])))]
pub(crate) struct Args {
    /// A PEM file (leaf first), or HOST:PORT to fetch the chain a server presents
    target: Option<String>,
    /// The private key that belongs to FILE, to check that they match
    #[arg(long, value_name = "FILE", conflicts_with = "id")]
    key: Option<PathBuf>,
    /// A managed certificate instead of a file
    #[arg(long)]
    id: Option<String>,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

/// Reports what a certificate says and everything wrong with it; exit 1 when anything is.
pub(crate) fn run(global: &GlobalArgs, args: &Args) -> Result<ExitStatus, CliError> {
    let ctx = global.load(&[])?;
    let now = kg_cli::now(&ctx.config)?;
    let (source, pem, key_path) = match (&args.id, &args.target) {
        (Some(id), _) => {
            kg_cascade::check_id(id).map_err(crate::cli_error)?;
            let g = kg_fs::generation::current(&ctx.locations.cert_dir(id))?.ok_or_else(|| {
                CliError::failure(format!("no certificate with id '{id}' has been published"))
                    .with_hint("run `certctl ensure` first")
            })?;
            let cert = g.file(kg_cascade::files::FULLCHAIN);
            (
                cert.display().to_string(),
                read(&cert)?,
                Some(g.file(kg_cascade::files::KEY)),
            )
        }
        (None, Some(target)) if Path::new(target).exists() || !looks_like_address(target) => {
            (target.clone(), read(Path::new(target))?, args.key.clone())
        }
        (None, Some(target)) => (
            target.clone(),
            kg_cascade::fetch::presented_chain(target).map_err(crate::cli_error)?,
            None,
        ),
        (None, None) => unreachable!("clap requires one"),
    };
    let (key, mode) = match &key_path {
        Some(p) => {
            // Inspection changes nothing: read the key as it is, without tightening its mode.
            let mode = std::fs::symlink_metadata(p)
                .map(|m| m.permissions().mode())
                .ok();
            let key = text(p, "key")?;
            let key = SecretPem::new(key);
            (Some(key), mode)
        }
        None => (None, None),
    };
    let report = kg_pki::inspect(&pem, key.as_ref(), mode, now).map_err(|e| {
        let hint = e.hint();
        CliError {
            status: ExitStatus::Failure,
            message: format!("cannot inspect '{source}': {e}"),
            hint,
        }
    })?;
    if args.json {
        out_doc(
            "certctl.inspect/1",
            &serde_json::json!({
                "source": source,
                "leaf": report.leaf,
                "expires_in_secs": (report.leaf.not_after - now).whole_seconds(),
                "chain": report.chain,
                "problems": problems(&report),
            }),
        )?;
    } else {
        print_text(&source, &report)?;
    }
    Ok(if report.problems.is_empty() {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

/// The problems as findings, the one item shape of every list of checks: each is a failure
/// (any problem makes inspect exit 1).
fn problems(r: &Report) -> Vec<Item> {
    r.problems
        .iter()
        .map(|p| Item {
            check: p.code().to_owned(),
            status: Verdict::Fail,
            detail: p.to_string(),
            hint: None,
            fixed: None,
        })
        .collect()
}

fn looks_like_address(target: &str) -> bool {
    target
        .rsplit_once(':')
        .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
}

/// The most a PEM file inspect reads may hold: a chain of a dozen certificates is ~20 KiB.
const MAX_PEM: u64 = 1024 * 1024;

fn read(path: &Path) -> Result<String, CliError> {
    text(path, "certificate")
}

/// A PEM file as text, read within [`MAX_PEM`] (a device like `/dev/zero` grew certctl to
/// 4 GB).
fn text(path: &Path, what: &'static str) -> Result<String, CliError> {
    let bytes = kg_fs::read_limited(
        path,
        MAX_PEM,
        if what == "key" {
            "key file"
        } else {
            "certificate file"
        },
    )
    .map_err(|e| match e {
        kg_fs::Error::TooLarge { .. } => CliError::usage(e.to_string()).with_hint(
            "inspect takes a PEM file (leaf first), or HOST:PORT to fetch a server's chain",
        ),
        e => CliError::failure(format!("cannot read {what} '{}': {e}", path.display())),
    })?;
    String::from_utf8(bytes).map_err(|_| {
        CliError::failure(format!(
            "cannot read {what} '{}': it is not text (PEM)",
            path.display()
        ))
    })
}

fn print_text(source: &str, r: &Report) -> Result<(), CliError> {
    let l = &r.leaf;
    let sans: Vec<String> = l
        .sans
        .iter()
        .map(|s| match s {
            kg_pki::SanName::Dns(d) => format!("DNS:{}", untrusted(d)),
            kg_pki::SanName::Ip(ip) => format!("IP:{ip}"),
        })
        .chain(l.other_sans.iter().map(|o| untrusted(o).into_owned()))
        .collect();
    let time = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    out(format!("certificate  {}", untrusted(source)))?;
    out(format!("  subject      {}", untrusted(&l.subject)))?;
    out(format!(
        "  names        {}",
        if sans.is_empty() {
            "(none)".into()
        } else {
            sans.join(", ")
        }
    ))?;
    out(format!("  issuer       {}", untrusted(&l.issuer)))?;
    out(format!(
        "  valid        {} to {} ({} days left)",
        time(l.not_before),
        time(l.not_after),
        r.days_left
    ))?;
    out(format!("  key          {} {} bits", l.key_type, l.key_bits))?;
    out(format!(
        "  usage        {}",
        if l.eku.is_empty() {
            "(no extended key usage)".into()
        } else {
            l.eku.join(", ")
        }
    ))?;
    out(format!("  serial       {}", l.serial))?;
    out(format!("  sha256       {}", l.sha256_fingerprint))?;
    for c in &r.chain {
        out(format!(
            "  chain        {} (valid to {})",
            untrusted(&c.subject),
            time(c.not_after)
        ))?;
    }
    if r.problems.is_empty() {
        out("  problems     none")?;
    }
    for p in &r.problems {
        out(format!("  problem      {p}"))?;
    }
    Ok(())
}
