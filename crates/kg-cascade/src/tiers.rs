//! Which methods this machine offers, and why not when it does not. Detection has no side
//! effects: it reads `tailscale status --json` and mkcert's CAROOT, and writes nothing.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::tool;

/// What detection found out about one tier.
#[derive(Debug, Clone, Serialize)]
pub struct Tier {
    /// `tailscale`, `mkcert`, `local-ca` or `self-signed`.
    pub method: &'static str,
    pub available: bool,
    /// Why it is or is not available, in one line.
    pub reason: String,
}

/// What `tailscale status --json` says that matters here.
#[derive(Debug, Clone, Serialize)]
pub struct TailscaleStatus {
    pub backend_state: String,
    /// Empty when HTTPS certificates are off (`CertDomains` null).
    pub cert_domains: Vec<String>,
}

/// Detects tailscale: on PATH, backend Running, and a non-empty `CertDomains`.
pub fn tailscale() -> (Tier, Option<TailscaleStatus>) {
    let tier = |available, reason: String| Tier {
        method: "tailscale",
        available,
        reason,
    };
    let Ok(exe) = which::which("tailscale") else {
        return (tier(false, "not on PATH".into()), None);
    };
    let out = match tool::run(
        "tailscale",
        duct::cmd(&exe, ["status", "--json"]),
        Duration::from_secs(10),
    ) {
        Ok(out) => out,
        Err(e) => return (tier(false, e.to_string()), None),
    };
    if !out.status.success() {
        return (
            tier(
                false,
                format!(
                    "`tailscale status --json` failed: {}",
                    tool::last_line(&out.stderr)
                ),
            ),
            None,
        );
    }
    let json: serde_json::Value = match serde_json::from_slice(&out.stdout) {
        Ok(v) => v,
        Err(e) => {
            return (
                tier(
                    false,
                    format!("`tailscale status --json` printed no JSON ({e})"),
                ),
                None,
            );
        }
    };
    let status = TailscaleStatus {
        backend_state: json["BackendState"]
            .as_str()
            .unwrap_or("unknown")
            .to_owned(),
        cert_domains: json["CertDomains"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|d| d.as_str())
                    .filter_map(tailnet_name)
                    .collect()
            })
            .unwrap_or_default(),
    };
    // BackendState first: a stopped daemon may still report its last CertDomains.
    let t = if status.backend_state != "Running" {
        tier(
            false,
            format!(
                "the tailscale backend is {}, not Running",
                status.backend_state
            ),
        )
    } else if status.cert_domains.is_empty() {
        tier(
            false,
            "HTTPS certificates are off for this tailnet (CertDomains is null)".into(),
        )
    } else {
        tier(
            true,
            format!(
                "the tailnet offers HTTPS certificates for {}",
                status.cert_domains.join(", ")
            ),
        )
    };
    (t, Some(status))
}

/// Where mkcert keeps its CA, and whether it can sign.
#[derive(Debug, Clone, Serialize)]
pub struct MkcertCa {
    pub caroot: PathBuf,
    pub exe: PathBuf,
}

/// Detects mkcert: on PATH, and a CAROOT holding both `rootCA.pem` and `rootCA-key.pem`.
pub fn mkcert() -> (Tier, Option<MkcertCa>) {
    let tier = |available, reason: String| Tier {
        method: "mkcert",
        available,
        reason,
    };
    let Ok(exe) = which::which("mkcert") else {
        return (tier(false, "not on PATH".into()), None);
    };
    let caroot = match std::env::var_os("CAROOT").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => match tool::run(
            "mkcert",
            duct::cmd(&exe, ["-CAROOT"]),
            Duration::from_secs(10),
        ) {
            Ok(out) if out.status.success() => {
                PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
            }
            Ok(out) => {
                return (
                    tier(
                        false,
                        format!("`mkcert -CAROOT` failed: {}", tool::last_line(&out.stderr)),
                    ),
                    None,
                );
            }
            Err(e) => return (tier(false, e.to_string()), None),
        },
    };
    if !caroot.join("rootCA.pem").is_file() {
        return (
            tier(
                false,
                format!(
                    "CAROOT '{}' has no rootCA.pem (run `mkcert -install` to create one)",
                    caroot.display()
                ),
            ),
            None,
        );
    }
    if !caroot.join("rootCA-key.pem").is_file() {
        return (
            tier(
                false,
                format!(
                    "CAROOT '{}' has no rootCA-key.pem, so mkcert cannot sign",
                    caroot.display()
                ),
            ),
            None,
        );
    }
    (
        tier(
            true,
            format!("mkcert's CA in '{}' can sign", caroot.display()),
        ),
        Some(MkcertCa { caroot, exe }),
    )
}

/// A `CertDomains` entry we are willing to pass to `tailscale cert`: a plain DNS name (so it
/// can never be read as a flag), without the trailing dot.
fn tailnet_name(entry: &str) -> Option<String> {
    match kg_pki::SanName::parse(entry.trim_end_matches('.')) {
        Ok(kg_pki::SanName::Dns(name)) if !name.starts_with("*.") => Some(name),
        _ => None,
    }
}
