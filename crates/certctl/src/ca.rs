use std::path::PathBuf;

use kg_cli::{CliError, ExitStatus, GlobalArgs, out, out_json};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum CaCommand {
    /// Print where the CA certificate is and what it says
    Show(CaArgs),
    /// Print the CA certificate (PEM) to stdout
    Export(CaArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct CaArgs {
    /// The CA that clients of this managed certificate must trust (mkcert's, keygate's, or the
    /// self-signed certificate itself) [default: keygate's local CA]
    #[arg(long)]
    id: Option<String>,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct TrustArgs {
    /// The managed certificate whose CA should be trusted [default: keygate's local CA]
    #[arg(long)]
    id: Option<String>,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

/// The CA certificate file for `id`, or keygate's local CA.
fn ca_file(global: &GlobalArgs, id: Option<&str>) -> Result<(PathBuf, kg_cli::Context), CliError> {
    let ctx = global.load(&[])?;
    if let Some(id) = id {
        kg_cascade::check_id(id).map_err(crate::cli_error)?;
    }
    match id {
        Some(id) => {
            let g = kg_fs::generation::current(&ctx.locations.cert_dir(id))?.ok_or_else(|| {
                CliError::failure(format!("no certificate with id '{id}' has been published")).with_hint("run `certctl ensure` first")
            })?;
            Ok((g.file(kg_cascade::files::CA), ctx))
        }
        None => match kg_cascade::load_local_ca(&ctx.locations.ca_dir()).map_err(crate::cli_error)? {
            Some(ca) => Ok((ca.cert_file, ctx)),
            None => Err(CliError::failure("keygate's local CA has not been created yet")
                .with_hint("run `certctl ensure` (it creates the CA when neither tailscale nor mkcert is usable), or pass --id")),
        },
    }
}

pub(crate) fn run(global: &GlobalArgs, cmd: &CaCommand) -> Result<ExitStatus, CliError> {
    match cmd {
        CaCommand::Export(args) => {
            let (file, _) = ca_file(global, args.id.as_deref())?;
            let pem = std::fs::read_to_string(&file)
                .map_err(|e| CliError::failure(format!("cannot read '{}': {e}", file.display())))?;
            if args.json {
                out_json(&serde_json::json!({ "file": file, "pem": pem }))?;
            } else {
                // Through `out`, like everything else: a closed pipe is not an error.
                out(pem.trim_end())?;
            }
        }
        CaCommand::Show(args) => {
            let (file, ctx) = ca_file(global, args.id.as_deref())?;
            let pem = std::fs::read_to_string(&file)
                .map_err(|e| CliError::failure(format!("cannot read '{}': {e}", file.display())))?;
            let report =
                kg_pki::inspect(&pem, None, None, kg_cli::now(&ctx.config)?).map_err(|e| {
                    CliError::failure(format!("cannot read CA '{}': {e}", file.display()))
                })?;
            if args.json {
                out_json(
                    &serde_json::json!({ "file": file, "ca": report.leaf, "days_left": report.days_left }),
                )?;
            } else {
                out(format!("{}", file.display()))?;
                out(format!("  subject   {}", report.leaf.subject))?;
                out(format!(
                    "  valid to  {} ({} days left)",
                    report.leaf.not_after, report.days_left
                ))?;
                out(format!("  sha256    {}", report.leaf.sha256_fingerprint))?;
            }
        }
    }
    Ok(ExitStatus::Success)
}

/// Prints, does not run: trusting a root is a decision the user makes with their own eyes.
pub(crate) fn trust(global: &GlobalArgs, args: &TrustArgs) -> Result<ExitStatus, CliError> {
    let (file, _) = ca_file(global, args.id.as_deref())?;
    let f = kg_cli::shell_quote(&file.display().to_string());
    let nss = |db: &str| format!("certutil -d \"sql:{db}\" -A -t C,, -n 'keygate local CA' -i {f}");
    let systems = [
        (
            "Debian, Ubuntu",
            vec![
                format!("sudo cp {f} /usr/local/share/ca-certificates/keygate-local-ca.crt"),
                "sudo update-ca-certificates".to_owned(),
            ],
        ),
        (
            "Fedora, RHEL",
            vec![
                format!("sudo cp {f} /etc/pki/ca-trust/source/anchors/keygate-local-ca.pem"),
                "sudo update-ca-trust".to_owned(),
            ],
        ),
        (
            "macOS",
            vec![format!(
                "sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain {f}"
            )],
        ),
        (
            "Firefox and Chromium on Linux (NSS; certutil is in libnss3-tools)",
            vec![
                nss("$HOME/.pki/nssdb"),
                format!(
                    "for db in \"$HOME\"/.mozilla/firefox/*/; do {}; done",
                    nss("$db")
                ),
            ],
        ),
    ];
    if args.json {
        let list: Vec<_> = systems
            .iter()
            .map(|(system, commands)| serde_json::json!({ "system": system, "commands": commands }))
            .collect();
        out_json(&serde_json::json!({ "ca_file": file, "systems": list }))?;
        return Ok(ExitStatus::Success);
    }
    out(format!(
        "# Trust the CA in {f}. Run the lines for your system; each needs admin rights once."
    ))?;
    for (system, commands) in systems {
        out(format!("\n# {system}"))?;
        for c in commands {
            out(c)?;
        }
    }
    Ok(ExitStatus::Success)
}
