//! `certctl doctor`: everything keygate manages, checked, and repaired where that is safe.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use kg_config::Locations;
use kg_fs::generation;

use crate::renew::{CurrentCas, Policy, check, managed_ids};
use crate::{files, state};

/// One thing doctor looked at.
#[derive(Debug, Clone)]
pub struct Finding {
    /// A stable id of the kind of check (`dir_mode`, `secret_mode`, `cert_expiry`, ...):
    /// what `--json` names `check`, for scripts to match on.
    pub id: &'static str,
    /// What was checked, e.g. `mode of /path/key.pem`, for people.
    pub check: String,
    /// Fine as found.
    pub ok: bool,
    /// Was a problem, and `--fix` repaired it.
    pub fixed: bool,
    /// What was found (and what to do when it was not fixed).
    pub detail: String,
}

impl Finding {
    fn ok(id: &'static str, check: impl Into<String>, detail: impl Into<String>) -> Finding {
        Finding {
            id,
            check: check.into(),
            ok: true,
            fixed: false,
            detail: detail.into(),
        }
    }

    fn problem(id: &'static str, check: impl Into<String>, detail: impl Into<String>) -> Finding {
        Finding {
            id,
            check: check.into(),
            ok: false,
            fixed: false,
            detail: detail.into(),
        }
    }

    /// A problem that remains after this run.
    pub fn remains(&self) -> bool {
        !self.ok && !self.fixed
    }
}

/// Runs every check; with `fix`, repairs modes, stale temporary files and old generations.
pub fn doctor(locations: &Locations, policy: &Policy, fix: bool) -> Vec<Finding> {
    let mut out = Vec::new();
    let me = rustix::process::geteuid().as_raw();
    let certs_root = locations.private_dir.join("certs");
    for dir in [
        &locations.private_dir,
        &certs_root,
        &locations.ca_dir(),
        &locations.state_dir,
    ] {
        check_dir(dir, me, fix, &mut out);
    }

    let mut cas = CurrentCas::default();
    for id in managed_ids(locations) {
        let cert_dir = locations.cert_dir(&id);
        check_dir(&cert_dir, me, fix, &mut out);
        match generation::current(&cert_dir) {
            Ok(Some(g)) => out.push(Finding::ok(
                "current_link",
                format!("certificate '{id}': current link"),
                format!("points to generation {}", g.number),
            )),
            Ok(None) => out.push(Finding::problem(
                "current_link",
                format!("certificate '{id}': current link"),
                "missing; run `certctl ensure --id ID` to publish again",
            )),
            Err(e) => out.push(Finding::problem(
                "current_link",
                format!("certificate '{id}': current link"),
                format!("{e}; run `certctl renew --id {id} --force`"),
            )),
        }
        if let Ok(Some((g, record))) = state::load(&cert_dir) {
            for key in [files::KEY, files::TAILNET_KEY]
                .into_iter()
                .filter(|k| record.files.contains_key(*k))
            {
                secret_mode(&g.file(key), fix, &mut out);
            }
            let pair = std::fs::read_to_string(g.file(files::CERT))
                .ok()
                .zip(std::fs::read_to_string(g.file(files::KEY)).ok());
            let names: Vec<kg_pki::SanName> =
                record.names.iter().filter_map(|n| n.parse().ok()).collect();
            let verdict = match (pair, std::fs::read_to_string(g.file(files::CA))) {
                (Some((cert, key)), Ok(ca)) => {
                    kg_pki::verify(&cert, &kg_pki::SecretPem::new(key), &ca, &names, policy.now)
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                }
                _ => Err("a file of the pair is missing".into()),
            };
            out.push(match verdict {
                Ok(()) => Finding::ok(
                    "cert_verified",
                    format!("certificate '{id}': key, names and chain"),
                    "the key matches and the chain verifies",
                ),
                Err(e) => Finding::problem(
                    "cert_verified",
                    format!("certificate '{id}': key, names and chain"),
                    format!("{e}; run `certctl renew --id {id} --force`"),
                ),
            });
        }
        let c = check(locations, &id, policy, &mut cas);
        out.push(match (&c.broken, &c.due) {
            (Some(b), _) => Finding::problem(
                "cert_files",
                format!("certificate '{id}': files"),
                format!("{b}; run `certctl renew --id {id} --force`"),
            ),
            (None, Some(d)) => Finding::problem(
                "cert_expiry",
                format!("certificate '{id}': expiry"),
                format!("{d}; run `certctl renew`"),
            ),
            (None, None) => Finding::ok(
                "cert_expiry",
                format!("certificate '{id}': expiry"),
                format!("{} days left", c.days_left.unwrap_or_default()),
            ),
        });
        stale(
            &cert_dir,
            generation::stale_staging(&cert_dir),
            fix,
            &mut out,
        );
        let all = generation::list(&cert_dir).unwrap_or_default();
        if all.len() > policy.keep {
            let extra = all.len() - policy.keep;
            let mut f = Finding::problem(
                "old_generations",
                format!("certificate '{id}': old generations"),
                format!("{extra} beyond the {} kept", policy.keep),
            );
            if fix && generation::prune(&cert_dir, policy.keep).is_ok() {
                f.fixed = true;
                f.detail = format!("removed {extra} old generation(s)");
            }
            out.push(f);
        }
        stale(&cert_dir, kg_fs::stale_temps(&cert_dir), fix, &mut out);
    }

    local_ca(locations, policy, fix, &mut out);
    token_files(locations, fix, &mut out);
    stale(
        &locations.state_dir,
        kg_fs::stale_temps(&locations.state_dir),
        fix,
        &mut out,
    );
    stale(
        &locations.private_dir,
        kg_fs::stale_private_tempdirs(&locations.private_dir),
        fix,
        &mut out,
    );

    let (ts, _) = crate::tiers::tailscale();
    let (mk, _) = crate::tiers::mkcert();
    for tier in [ts, mk] {
        let state = if tier.available {
            "available"
        } else {
            "not available"
        };
        out.push(Finding::ok(
            "method",
            format!("method {}", tier.method),
            format!("{state}: {}", tier.reason),
        ));
    }
    out
}

fn check_dir(dir: &Path, me: u32, fix: bool, out: &mut Vec<Finding>) {
    let Ok(meta) = std::fs::metadata(dir) else {
        return;
    };
    let what = format!("directory {}", dir.display());
    let mode = meta.permissions().mode() & 0o7777;
    if meta.uid() != me && meta.uid() != 0 {
        out.push(Finding::problem(
            "dir_owner",
            what,
            format!(
                "owned by uid {}, not by you (uid {me}); fix the owner with chown",
                meta.uid()
            ),
        ));
        return;
    }
    if mode & 0o077 != 0 {
        let mut f = Finding::problem(
            "dir_mode",
            &what,
            format!("mode {mode:04o}; a private directory should be 0700"),
        );
        if fix && std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).is_ok() {
            f.fixed = true;
            f.detail = format!("mode {mode:04o} changed to 0700");
        }
        out.push(f);
    } else {
        out.push(Finding::ok("dir_mode", what, "private (0700) and yours"));
    }
}

fn secret_mode(path: &Path, fix: bool, out: &mut Vec<Finding>) {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    let mode = meta.permissions().mode() & 0o7777;
    let what = format!("mode of {}", path.display());
    if !meta.is_file() {
        // A link's own mode says nothing, and fixing through it would chmod its target.
        out.push(Finding::problem(
            "secret_mode",
            what,
            "not a regular file; keygate refuses to read a secret through a link",
        ));
        return;
    }
    if mode & 0o077 == 0 {
        out.push(Finding::ok("secret_mode", what, format!("{mode:04o}")));
        return;
    }
    let mut f = Finding::problem(
        "secret_mode",
        &what,
        format!(
            "{mode:04o}: a secret must be 0600; run `chmod 600 '{}'` or `certctl doctor --fix`",
            path.display()
        ),
    );
    if fix {
        match kg_fs::narrow_secret(path) {
            Ok(_) => {
                f.fixed = true;
                f.detail = format!("{mode:04o} changed to 0600");
            }
            Err(e) => f.detail = format!("{}; cannot fix: {e}", f.detail),
        }
    }
    out.push(f);
}

/// The token store, its pepper and the client token files: secrets like the keys (the store
/// holds only digests, but with the pepper it confirms tokens), so each must be 0600.
/// Doctor is the one place that narrows an existing file's mode; every other command only
/// reports it (reading a secret never changes it).
fn token_files(locations: &Locations, fix: bool, out: &mut Vec<Finding>) {
    use kg_tokens::files::{PEPPER_FILE, STORE_FILE, client_token_file};
    secret_mode(&locations.private_dir.join(PEPPER_FILE), fix, out);
    secret_mode(&locations.state_dir.join(STORE_FILE), fix, out);
    let client_dir = client_token_file(&locations.private_dir, "x");
    let Some(client_dir) = client_dir.parent() else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(client_dir) else {
        return;
    };
    let mut tokens: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "token"))
        .collect();
    tokens.sort();
    for token in tokens {
        secret_mode(&token, fix, out);
    }
}

fn stale(dir: &Path, paths: Vec<PathBuf>, fix: bool, out: &mut Vec<Finding>) {
    for path in paths {
        let mut f = Finding::problem(
            "stale_file",
            format!("stale file in {}", dir.display()),
            format!("'{}' was left by a process that died", path.display()),
        );
        if fix {
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            if removed.is_ok() {
                f.fixed = true;
                f.detail = format!("removed '{}', left by a process that died", path.display());
            }
        }
        out.push(f);
    }
}

fn local_ca(locations: &Locations, policy: &Policy, fix: bool, out: &mut Vec<Finding>) {
    let Ok(Some(g)) = generation::current(&locations.ca_dir()) else {
        out.push(Finding::ok(
            "local_ca",
            "local CA",
            "not created (it is made on first use)",
        ));
        return;
    };
    secret_mode(&g.file("ca-key.pem"), fix, out);
    let cert = std::fs::read_to_string(g.file("ca.pem")).unwrap_or_default();
    let key = std::fs::read_to_string(g.file("ca-key.pem"))
        .ok()
        .map(kg_pki::SecretPem::new);
    match kg_pki::inspect(&cert, key.as_ref(), None, policy.now) {
        Ok(r)
            if r.problems
                .iter()
                .any(|p| matches!(p, kg_pki::Problem::KeyMismatch | kg_pki::Problem::Expired)) =>
        {
            out.push(Finding::problem(
                "local_ca",
                "local CA",
                format!(
                    "{}; remove {} to create a new CA, then trust it again",
                    r.problems
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; "),
                    locations.ca_dir().display()
                ),
            ));
        }
        Ok(r) if r.days_left < 365 => out.push(Finding::problem(
            "local_ca",
            "local CA",
            format!("expires in {} days; plan a new CA", r.days_left),
        )),
        Ok(r) => out.push(Finding::ok(
            "local_ca",
            "local CA",
            format!("{}, {} days left", r.leaf.subject, r.days_left),
        )),
        Err(e) => out.push(Finding::problem("local_ca", "local CA", e.to_string())),
    }
}
