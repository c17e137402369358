//! `keygate check`: what `serve` would load, checked without serving.

use std::net::TcpListener as StdListener;
use std::time::Duration;

use kg_http::audit::AuditTarget;
use kg_pki::Problem;
use kg_tls::layout as files;
use kg_verifier::Tokens;
use time::OffsetDateTime;

use crate::Settings;

/// A failed check: what was found, and what to do.
struct Failed {
    detail: String,
    hint: Option<String>,
}

impl Failed {
    fn new(detail: impl Into<String>, hint: Option<String>) -> Failed {
        Failed {
            detail: detail.into(),
            hint,
        }
    }
}

/// The store sign-in keeps its sessions in, read without writing (proxy mode opens it).
fn check_store(db: &std::path::Path) -> Result<String, Failed> {
    match kg_store::SqliteStore::inspect(db) {
        Ok(None) => Ok(format!(
            "'{}' will be created (0600) by keygate serve",
            db.display()
        )),
        Ok(Some(seen)) => match seen.exposed {
            Some(e) => Err(Failed::new(e.to_string(), Some(e.hint()))),
            None => Ok(format!(
                "'{}': schema {}, {} session(s)",
                db.display(),
                seen.schema_version,
                seen.sessions
            )),
        },
        Err(e) => Err(Failed::new(e.to_string(), e.hint())),
    }
}

/// One line of `keygate check`.
#[derive(Debug, Clone)]
pub struct CheckItem {
    /// A stable id of what was checked (`certificate`, `token_store`, `store`, `audit_log`,
    /// `listen`, `upstream`, `required_scopes`, `tls`): `--json` names it `check`.
    pub id: &'static str,
    /// What was checked, for people, e.g. `certificate 'default'`.
    pub what: String,
    /// Whether it is fit to serve.
    pub ok: bool,
    /// What was found.
    pub detail: String,
    /// What to do, when not ok (or worth a warning: ok with a hint is a warning).
    pub hint: Option<String>,
}

/// Checks what `serve` would load, without serving: the certificate (loads, key matches,
/// valid now), the token store, the audit log and the listen addresses; and, in proxy
/// mode, whether the upstream accepts a TCP connection (the detail says so), through the
/// proxy's own connect, which never connects to an address the upstream policy refuses.
pub fn check(settings: &Settings, now: OffsetDateTime) -> Vec<CheckItem> {
    let mut items = Vec::new();
    let mut item = |id: &'static str, what: String, r: Result<String, Failed>| {
        items.push(match r {
            Ok(detail) => CheckItem {
                id,
                what,
                ok: true,
                detail,
                hint: None,
            },
            Err(Failed { detail, hint }) => CheckItem {
                id,
                what,
                ok: false,
                detail,
                hint,
            },
        })
    };
    if settings.plain_http {
        item(
            "tls",
            "tls".into(),
            Ok("off: plain HTTP on loopback (server.plain_http)".into()),
        );
    } else {
        let what = format!("certificate '{}'", settings.cert_id);
        item("certificate", what, check_cert(settings, now));
    }
    item(
        "token_store",
        "token store".into(),
        match Tokens::load(&settings.store, &settings.prefix) {
            // Served with a warning, but a check reports it (and, like every check, changes
            // nothing).
            Ok(t) => match t.exposed() {
                e if e.is_empty() => Ok(format!(
                    "{} token(s) in '{}'",
                    t.len(),
                    settings.store.store.display()
                )),
                e => Err(Failed::new(
                    e.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; "),
                    kg_fs::Exposed::hint_all(&e),
                )),
            },
            Err(e) => Err(Failed::new(e.to_string(), e.hint())),
        },
    );
    if settings.upstream.is_some() {
        item("store", "store".into(), check_store(&settings.db));
    }
    if let AuditTarget::File(path) = &settings.audit {
        item(
            "audit_log",
            "audit log".into(),
            // The server's own rules, without creating the file: a check writes nothing.
            kg_http::audit::check_target(path)
                .map(|there| {
                    if there {
                        format!("appending to '{}'", path.display())
                    } else {
                        format!(
                            "'{}' will be created (0600) by keygate serve",
                            path.display()
                        )
                    }
                })
                .map_err(|e| {
                    let hint = crate::audit_refusal(&e).and_then(kg_fs::Error::hint);
                    Failed::new(e.to_string(), hint)
                }),
        );
    }
    for addr in &settings.listen {
        let r = match StdListener::bind(addr) {
            Ok(_) => Ok("free".to_owned()),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                Ok("in use (fine if keygate already runs there)".to_owned())
            }
            Err(e) => Err(Failed::new(
                format!("cannot bind: {e}"),
                crate::bind_hint(&e, true),
            )),
        };
        item("listen", format!("listen {addr}"), r);
    }
    if let Some(up) = &settings.upstream {
        // The probe is the proxy's own connect: an address the upstream policy refuses (a
        // name that resolves to one) is never connected to, and fails the check.
        let (ok, ok_detail, hint) =
            match kg_gateway::connect::probe(&up.target, Duration::from_secs(2)) {
                Ok(addr) => (
                    true,
                    format!(
                        "{up}: reachable (keygate check connected to {addr} and closed the \
                         connection without sending a request)"
                    ),
                    None,
                ),
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => (
                    false,
                    format!("{up}: refused, not connected to ({e})"),
                    Some(
                        "point server.upstream at the app's own loopback or private address"
                            .to_owned(),
                    ),
                ),
                Err(e) => (
                    true,
                    format!("{up}: not reachable now (keygate check tried to connect: {e})"),
                    Some(
                        "keygate answers 502 until the upstream listens; start it, or fix \
                         server.upstream"
                            .to_owned(),
                    ),
                ),
            };
        items.push(CheckItem {
            id: "upstream",
            what: "upstream".into(),
            ok,
            detail: format!("{ok_detail}; {}", settings.bypass().says()),
            hint,
        });
    }
    if settings.scopes_need_every_scope() {
        items.push(CheckItem {
            id: "required_scopes",
            what: "required scopes".into(),
            ok: true,
            detail: "no trusted proxy: the original path is never believed, so every request \
                     needs every scope"
                .into(),
            hint: Some("set server.trusted_proxies to your proxy's address".into()),
        });
    }
    items
}

fn check_cert(settings: &Settings, now: OffsetDateTime) -> Result<String, Failed> {
    let provider = kg_tls::provider();
    let set = kg_tls::server::load(&settings.cert_dir, &provider)
        .map_err(|e| Failed::new(e.to_string(), e.hint()))?;
    let dir = kg_fs::generation::current(&settings.cert_dir)
        .ok()
        .flatten()
        .map(|g| g.path)
        .ok_or_else(|| Failed::new("the certificate changed while being checked", None))?;
    let mut pairs = vec![(files::FULLCHAIN, files::KEY)];
    if set.tailnet.is_some() {
        pairs.push((files::TAILNET_FULLCHAIN, files::TAILNET_KEY));
    }
    let mut details = Vec::new();
    for (cert, key) in pairs {
        let cert_path = dir.join(cert);
        let key_path = dir.join(key);
        let pem = std::fs::read_to_string(&cert_path).map_err(|e| {
            Failed::new(format!("cannot read '{}': {e}", cert_path.display()), None)
        })?;
        let key =
            kg_fs::read_secret(&key_path).map_err(|e| Failed::new(e.to_string(), e.hint()))?;
        if let Some(e) = key.exposed {
            return Err(Failed::new(e.to_string(), Some(e.hint())));
        }
        let key_pem = kg_pki::SecretPem::new(String::from_utf8(key.bytes).unwrap_or_default());
        let report = kg_pki::inspect(&pem, Some(&key_pem), None, now)
            .map_err(|e| Failed::new(format!("'{}': {e}", cert_path.display()), None))?;
        let fatal: Vec<String> = report
            .problems
            .iter()
            .filter(|p| {
                matches!(
                    p,
                    Problem::Expired
                        | Problem::NotYetValid
                        | Problem::KeyMismatch
                        | Problem::KeyUnreadable
                )
            })
            .map(ToString::to_string)
            .collect();
        if !fatal.is_empty() {
            return Err(Failed::new(
                format!("'{}': {}", cert_path.display(), fatal.join("; ")),
                Some("run `certctl issue` to publish a new certificate".into()),
            ));
        }
        details.push(format!(
            "{} serial {} valid until {} ({} days left)",
            cert.trim_end_matches(".pem"),
            report.leaf.serial,
            report
                .leaf
                .not_after
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            report.days_left
        ));
    }
    Ok(format!(
        "generation {}: {}",
        set.generation,
        details.join("; ")
    ))
}
