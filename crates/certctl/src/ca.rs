use std::path::PathBuf;

use kg_cli::{CliError, ExitStatus, GlobalArgs, absolute, out, out_doc};

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
    /// self-signed certificate itself) [default: cert.id, the certificate keygate serves]
    #[arg(long)]
    id: Option<String>,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct TrustArgs {
    /// The managed certificate whose CA should be trusted [default: cert.id, the certificate keygate serves]
    #[arg(long)]
    id: Option<String>,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

/// The CA clients of a managed certificate must trust: its file and who issued it.
struct Ca {
    file: PathBuf,
    /// The method of the published certificate (`mkcert`, `local-ca`, ...); `None` for
    /// keygate's local CA when no certificate is published.
    method: Option<String>,
}

/// The CA of certificate `id` (default `cert.id`: the one keygate serves), whichever method
/// issued it; keygate's local CA when nothing is published yet but the CA exists.
fn ca_file(global: &GlobalArgs, id: Option<&str>) -> Result<(Ca, kg_cli::Context), CliError> {
    let ctx = global.load(&[])?;
    let named = id.is_some();
    let id = id
        .map(str::to_owned)
        .unwrap_or_else(|| ctx.config.str("cert.id").unwrap_or("default").to_owned());
    kg_cascade::check_id(&id).map_err(crate::cli_error)?;
    let cert_dir = ctx.locations.cert_dir(&id);
    if let Some(g) = kg_fs::generation::current(&cert_dir)? {
        let method = kg_cascade::state::load(&cert_dir)
            .ok()
            .flatten()
            .map(|(_, r)| r.method);
        let ca = Ca {
            file: g.file(kg_cascade::files::CA),
            method,
        };
        return Ok((ca, ctx));
    }
    if !named
        && let Some(ca) =
            kg_cascade::load_local_ca(&ctx.locations.ca_dir()).map_err(crate::cli_error)?
    {
        let ca = Ca {
            file: ca.cert_file,
            method: None,
        };
        return Ok((ca, ctx));
    }
    Err(
        CliError::failure(format!("no certificate with id '{id}' has been published"))
            .with_hint("run `certctl ensure` first"),
    )
}

pub(crate) fn run(global: &GlobalArgs, cmd: &CaCommand) -> Result<ExitStatus, CliError> {
    match cmd {
        CaCommand::Export(args) => {
            let (Ca { file, .. }, _) = ca_file(global, args.id.as_deref())?;
            let pem = std::fs::read_to_string(&file)
                .map_err(|e| CliError::failure(format!("cannot read '{}': {e}", file.display())))?;
            if args.json {
                out_doc(
                    "certctl.ca.export/1",
                    &serde_json::json!({ "ca_file": absolute(&file), "pem": pem }),
                )?;
            } else {
                // Through `out`, like everything else: a closed pipe is not an error.
                out(pem.trim_end())?;
            }
        }
        CaCommand::Show(args) => {
            let (Ca { file, .. }, ctx) = ca_file(global, args.id.as_deref())?;
            let pem = std::fs::read_to_string(&file)
                .map_err(|e| CliError::failure(format!("cannot read '{}': {e}", file.display())))?;
            let report =
                kg_pki::inspect(&pem, None, None, kg_cli::now(&ctx.config)?).map_err(|e| {
                    CliError::failure(format!("cannot read CA '{}': {e}", file.display()))
                })?;
            if args.json {
                let secs = (report.leaf.not_after - kg_cli::now(&ctx.config)?).whole_seconds();
                out_doc(
                    "certctl.ca.show/1",
                    &serde_json::json!({
                        "ca_file": absolute(&file),
                        "ca": report.leaf,
                        "expires_in_secs": secs,
                    }),
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
/// The CA is the one that issued the served certificate: mkcert's root is installed the way
/// mkcert users know (`mkcert -install`, which also fills the browsers' stores), under
/// mkcert's name if copied by hand; a tailnet certificate needs nothing.
pub(crate) fn trust(global: &GlobalArgs, args: &TrustArgs) -> Result<ExitStatus, CliError> {
    let (ca, _) = ca_file(global, args.id.as_deref())?;
    let file = ca.file;
    if ca.method.as_deref() == Some("tailscale") {
        let note = "the certificate is from Let's Encrypt (through tailscale), which every system already trusts: nothing to install";
        if args.json {
            out_doc(
                "certctl.trust/1",
                &serde_json::json!({
                    "ca_file": absolute(&file),
                    "method": ca.method,
                    "mkcert_install": null,
                    "systems": [],
                    "note": note,
                }),
            )?;
        } else {
            out(format!("# {note}"))?;
        }
        return Ok(ExitStatus::Success);
    }
    let mkcert = ca.method.as_deref() == Some("mkcert");
    // The name the root gets in the system and browser stores: whose CA it is.
    let (base, nick) = if mkcert {
        ("mkcert-rootCA", "mkcert root CA")
    } else {
        ("keygate-local-ca", "keygate local CA")
    };
    let install = mkcert.then(|| {
        let (_, found) = kg_cascade::tiers::mkcert();
        let caroot = found
            .map(|m| m.caroot)
            .filter(|c| std::fs::read(c.join("rootCA.pem")).ok() == std::fs::read(&file).ok());
        match caroot {
            Some(c) => format!(
                "CAROOT={} mkcert -install",
                kg_cli::shell_quote(&c.display().to_string())
            ),
            None => {
                "mkcert -install   # with CAROOT set to the directory that holds this CA".to_owned()
            }
        }
    });
    let f = kg_cli::shell_quote(&file.display().to_string());
    let nss = |db: &str| format!("certutil -d \"sql:{db}\" -A -t C,, -n '{nick}' -i {f}");
    let systems = [
        (
            "Debian, Ubuntu",
            vec![
                format!("sudo cp {f} /usr/local/share/ca-certificates/{base}.crt"),
                "sudo update-ca-certificates".to_owned(),
            ],
        ),
        (
            "Fedora, RHEL",
            vec![
                format!("sudo cp {f} /etc/pki/ca-trust/source/anchors/{base}.pem"),
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
        out_doc(
            "certctl.trust/1",
            &serde_json::json!({
                "ca_file": absolute(&file),
                "method": ca.method,
                "mkcert_install": install,
                "systems": list,
                "note": null,
            }),
        )?;
        return Ok(ExitStatus::Success);
    }
    if let Some(install) = &install {
        out(format!(
            "# The certificate is mkcert's: mkcert installs its CA into the system and the \
             browsers' stores.\n{install}\n\n# Or by hand:"
        ))?;
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
