//! Renewal and status: which managed certificates are due, and renewing them.
//!
//! The checks are cheap on purpose (cron runs them twice a day on every machine): the record
//! in `meta.json` carries the SHA-256 of every file that was verified at publication, so
//! unchanged bytes prove an intact, matching pair without a signature check. Anything that
//! does not match is due, and goes through the full issue-verify-publish path.

use std::path::Path;
use std::time::Duration;

use kg_config::Locations;
use kg_fs::lock::LockGuard;
use serde::Serialize;
use time::OffsetDateTime;

use crate::state::{self, Record};
use crate::{Error, Method, Outcome, Request, files, provision_locked};

/// What renewal needs beyond the records themselves.
#[derive(Debug, Clone)]
pub struct Policy {
    /// `cert.renew_before`: renew this long before expiry instead of at a third of the lifetime.
    pub renew_before: Option<Duration>,
    /// The names configured for one id (`cert.id` with `cert.names`): a certificate that no
    /// longer covers them is due.
    pub configured: Option<(String, Vec<String>)>,
    pub ca_extra_names: Vec<String>,
    pub keep: usize,
    pub now: OffsetDateTime,
}

/// Where one managed certificate stands, a closed set (`certctl status --json`'s `state`,
/// documented in `docs/json.md`): the first that applies of missing, broken, expired, due,
/// valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Published, intact, and not due.
    Valid,
    /// Intact and still valid, but due for renewal (its time came, its names or CA changed).
    Due,
    /// Intact, and past its end of validity.
    Expired,
    /// Nothing is published for the id (no `current` link).
    Missing,
    /// Published, but unreadable, damaged, mismatched, or with a key others can read.
    Broken,
}

/// The state of one managed certificate, as `certctl status --json` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub id: String,
    pub state: State,
    /// Why it is not valid (what is broken, or why it is due), in one line; `null` when
    /// valid.
    pub reason: Option<String>,
    pub method: Option<String>,
    pub names: Vec<String>,
    #[serde(with = "time::serde::rfc3339::option", rename = "expires_at")]
    pub not_after: Option<OffsetDateTime>,
    /// Whole seconds from now to `not_after`; negative once expired.
    pub expires_in_secs: Option<i64>,
    #[serde(skip)]
    pub days_left: Option<i64>,
    /// When it will be renewed (a third of the lifetime before expiry, or `renew_before`).
    #[serde(with = "time::serde::rfc3339::option")]
    pub renew_at: Option<OffsetDateTime>,
    /// Why it is due for renewal; `None` when it is not (a broken certificate is due).
    #[serde(skip)]
    pub due: Option<String>,
    /// Files missing, damaged, mismatched or with wrong modes; `None` when all are right.
    #[serde(skip)]
    pub broken: Option<String>,
}

impl Check {
    pub fn is_due(&self) -> bool {
        self.due.is_some()
    }
}

/// Every id that has a certificate directory, sorted.
pub fn managed_ids(locations: &Locations) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(locations.private_dir.join("certs")) else {
        return Vec::new();
    };
    let mut ids: Vec<String> = entries
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.'))
        .collect();
    ids.sort();
    ids
}

/// The CA certificates certificates were issued under, read once per run.
#[derive(Debug, Default)]
pub struct CurrentCas {
    local_ca: Option<String>,
    mkcert: Option<Option<String>>,
}

impl CurrentCas {
    fn local(&mut self, locations: &Locations) -> Option<&str> {
        if self.local_ca.is_none() {
            let file = kg_fs::generation::current(&locations.ca_dir())
                .ok()
                .flatten()
                .map(|g| g.file("ca.pem"));
            self.local_ca = file
                .and_then(|f| std::fs::read(f).ok())
                .map(|b| state::digest(&b));
        }
        self.local_ca.as_deref()
    }

    fn mkcert(&mut self) -> Option<&str> {
        self.mkcert
            .get_or_insert_with(|| {
                let (_, ca) = crate::tiers::mkcert();
                ca.and_then(|ca| std::fs::read(ca.caroot.join("rootCA.pem")).ok())
                    .map(|b| state::digest(&b))
            })
            .as_deref()
    }
}

/// Checks one certificate without verifying signatures (see the module docs).
pub fn check(locations: &Locations, id: &str, policy: &Policy, cas: &mut CurrentCas) -> Check {
    let mut c = Check {
        id: id.to_owned(),
        state: State::Missing,
        reason: None,
        method: None,
        names: Vec::new(),
        not_after: None,
        expires_in_secs: None,
        days_left: None,
        renew_at: None,
        due: None,
        broken: None,
    };
    let (g, record) = match state::load(&locations.cert_dir(id)) {
        Ok(Some(found)) => found,
        Ok(None) => {
            c.broken = Some("nothing is published (no `current` link)".into());
            c.due = c.broken.clone();
            c.reason = c.broken.clone();
            return c;
        }
        Err(e) => {
            c.state = State::Broken;
            c.broken = Some(e.to_string());
            c.due = c.broken.clone();
            c.reason = c.broken.clone();
            return c;
        }
    };
    c.method = Some(record.method.clone());
    c.names = record.names.clone();
    c.not_after = Some(record.not_after);
    c.days_left = Some((record.not_after - policy.now).whole_days());
    c.expires_in_secs = Some((record.not_after - policy.now).whole_seconds());
    let renew_at = kg_pki::renew_at(
        record.not_before,
        record.not_after,
        policy.renew_before.map(to_time),
    );
    c.renew_at = Some(renew_at);

    if let Err(e) = record.files_intact(&g) {
        c.broken = Some(e);
    } else if let Some(mode) = wide_key_mode(&g, &record) {
        c.broken = Some(mode);
    }
    c.due = c
        .broken
        .clone()
        .or_else(|| due_reason(locations, id, &record, policy, renew_at, cas));
    c.state = match (&c.broken, &c.due) {
        (Some(_), _) => State::Broken,
        (None, Some(_)) if policy.now >= record.not_after => State::Expired,
        (None, Some(_)) => State::Due,
        (None, None) => State::Valid,
    };
    c.reason = c.due.clone();
    c
}

fn due_reason(
    locations: &Locations,
    id: &str,
    record: &Record,
    policy: &Policy,
    renew_at: OffsetDateTime,
    cas: &mut CurrentCas,
) -> Option<String> {
    if policy.now >= record.not_after {
        return Some(format!("it expired at {}", rfc3339(record.not_after)));
    }
    if policy.now >= renew_at {
        return Some(format!(
            "it is due for renewal since {} (valid until {})",
            rfc3339(renew_at),
            rfc3339(record.not_after)
        ));
    }
    if let Some(t) = record.tailnet_not_after {
        // Tailscale's Let's Encrypt certificates live 90 days; renew with a third left.
        if policy.now >= t - time::Duration::days(30) {
            return Some(format!("its tailnet certificate expires at {}", rfc3339(t)));
        }
    }
    if let Some((cid, names)) = &policy.configured
        && cid == id
        && !names.is_empty()
    {
        let planned = kg_pki::plan_names(names)
            .map(|n| n.iter().map(ToString::to_string).collect::<Vec<_>>());
        match planned {
            Ok(p) if p != record.names => {
                return Some(format!(
                    "the configured names changed from {} to {}",
                    record.names.join(" "),
                    p.join(" ")
                ));
            }
            _ => {}
        }
    }
    let published_ca = record.files.get(files::CA).map(String::as_str);
    let current_ca = match record.method.as_str() {
        "local-ca" => cas.local(locations),
        "mkcert" => cas.mkcert(),
        _ => None,
    };
    if let (Some(published), Some(current)) = (published_ca, current_ca)
        && published != current
    {
        return Some(format!(
            "its CA changed ({} has a new CA certificate)",
            record.method
        ));
    }
    None
}

fn wide_key_mode(g: &kg_fs::generation::Generation, record: &Record) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let keys = [files::KEY, files::TAILNET_KEY];
    record
        .files
        .keys()
        .filter(|n| keys.contains(&n.as_str()))
        .find_map(|name| {
            let path = g.file(name);
            let mode = std::fs::metadata(&path).ok()?.permissions().mode() & 0o777;
            (mode & 0o077 != 0).then(|| {
                format!(
                    "key '{}' is mode {mode:04o}, readable by others",
                    path.display()
                )
            })
        })
}

fn to_time(d: Duration) -> time::Duration {
    time::Duration::try_from(d).unwrap_or(time::Duration::MAX)
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A renewal that happened.
#[derive(Debug, Clone, Serialize)]
pub struct Renewed {
    pub id: String,
    /// Why it was due.
    pub reason: String,
    pub outcome: Outcome,
}

/// Renews one certificate. The caller holds the lock (proof: `held`).
pub fn renew(
    locations: &Locations,
    id: &str,
    reason: &str,
    policy: &Policy,
    held: &LockGuard,
) -> Result<Renewed, Error> {
    let record = state::load(&locations.cert_dir(id))
        .ok()
        .flatten()
        .map(|(_, r)| r);
    let recorded: Option<Method> = record.as_ref().and_then(|r| r.method.parse().ok());
    let names = match (&policy.configured, &record) {
        (Some((cid, names)), _) if cid == id && !names.is_empty() => names.clone(),
        (_, Some(r)) => r.names.clone(),
        (_, None) => Vec::new(),
    };
    let key = record
        .as_ref()
        .and_then(|r| r.key.parse().ok())
        .unwrap_or_default();
    let req = Request {
        id: id.to_owned(),
        names,
        method: recorded.unwrap_or(Method::Auto),
        key,
        days: record.as_ref().map_or(90, |r| r.days),
        force: true,
        dry_run: false,
        wait: kg_fs::lock::Wait::No,
        ca_extra_names: policy.ca_extra_names.clone(),
        keep: policy.keep,
        tailnet_hint: record.as_ref().and_then(|r| r.tailnet_domain.clone()),
        now: policy.now,
    };
    match provision_locked(locations, &req, held) {
        Ok(outcome) => Ok(Renewed {
            id: id.to_owned(),
            reason: reason.to_owned(),
            outcome,
        }),
        // The recorded method is not usable here (mkcert without the user's CAROOT under
        // cron, tailscale down): renewing through another would move the certificate to
        // another CA, and every client that trusts the recorded one would fail TLS. certbot
        // keeps a lineage's authenticator too. So the renewal fails, naming what is missing,
        // and the live certificate stays; moving it is a decision (`certctl issue --method`).
        Err(Error::Unavailable {
            method,
            reason: why,
            ..
        }) if req.method != Method::Auto => Err(Error::Unavailable {
            method,
            reason: format!(
                "{why}; '{id}' was issued by {method}'s CA and is not renewed by another, which \
                 its clients do not trust (the current certificate stays live)"
            ),
            hint: Some(method_hint(method, id)),
        }),
        Err(e) => Err(e),
    }
}

/// What a renewal job (cron, systemd) needs in its environment to renew with the methods
/// that issued the managed certificates, and a warning when one is not usable here: renewal
/// keeps the recorded method, and mkcert finds its CA by `CAROOT`, which cron and systemd
/// do not set, in a directory their `PATH` may lack.
pub fn job_env(locations: &Locations) -> (Vec<(&'static str, String)>, Option<String>) {
    let uses_mkcert: Vec<String> = managed_ids(locations)
        .into_iter()
        .filter(|id| {
            state::load(&locations.cert_dir(id))
                .ok()
                .flatten()
                .is_some_and(|(_, r)| r.method == "mkcert")
        })
        .collect();
    if uses_mkcert.is_empty() {
        return (Vec::new(), None);
    }
    let (tier, ca) = crate::tiers::mkcert();
    let Some(ca) = ca else {
        let warning = format!(
            "'{}' was issued by mkcert, which is not usable here ({}): the job cannot renew it \
             until it is",
            uses_mkcert.join("', '"),
            tier.reason
        );
        return (Vec::new(), Some(warning));
    };
    let mut vars = vec![("CAROOT", ca.caroot.display().to_string())];
    if let Some(dir) = ca.exe.parent()
        && !matches!(dir.to_str(), Some("/usr/bin" | "/bin"))
    {
        vars.push(("PATH", format!("{}:/usr/bin:/bin", dir.display())));
    }
    (vars, None)
}

/// The home of a system install when `KEYGATE_HOME` is not set.
pub const SYSTEM_HOME: &str = "/var/lib/keygate";

/// The home a root job or service (`certctl schedule --system`, `keygate unit --system`)
/// uses: the one this shell uses, so that it renews and serves what the bootstrap created.
/// That is `KEYGATE_HOME` when set; without it, [`SYSTEM_HOME`], unless this shell's own
/// home (root's `~/.local/share/keygate`) holds certificates, which the job would then never
/// see: refused with `(message, hint)`.
pub fn system_home(locations: &Locations) -> Result<String, (String, String)> {
    if let Some(home) = &locations.home {
        return Ok(home.display().to_string());
    }
    if !managed_ids(locations).is_empty() {
        return Err((
            format!(
                "a system job renews {SYSTEM_HOME}, but this shell's certificates are in '{}' \
                 (KEYGATE_HOME is not set), so they would never be renewed",
                locations.private_dir.display()
            ),
            format!(
                "run the whole bootstrap (certctl ensure, tokenctl ensure, keygate serve) with \
                 KEYGATE_HOME={SYSTEM_HOME}, or with KEYGATE_HOME set to the home you use, and \
                 print the job again"
            ),
        ));
    }
    Ok(SYSTEM_HOME.to_owned())
}

/// What to do when the method that issued `id` is not usable at renewal time.
fn method_hint(method: &str, id: &str) -> String {
    let fix = match method {
        "mkcert" => {
            "renew where mkcert works (the job needs mkcert on PATH and the CAROOT that holds \
             its CA: print the job again with `certctl schedule`, which carries them)"
        }
        "tailscale" => "start tailscaled and log in (`tailscale up`), then renew again",
        _ => "make the method usable again, then renew",
    };
    format!(
        "{fix}; or move the certificate to another CA on purpose: \
         `certctl issue --id {id} --method auto`"
    )
}

/// Refuses a deploy hook that another user could have changed (issue 13): the config file it
/// came from (`from`, when it came from one), and the program it starts when its first word
/// names one by absolute path (`/usr/local/bin/deploy.sh`). The hook runs through `sh -c` as
/// whoever runs `certctl renew`, often root, so this is [`kg_fs::trust`]'s rule, the same one
/// the config file passed when it was loaded.
pub fn check_deploy_hook(hook: &str, from: Option<&Path>) -> Result<(), kg_fs::Error> {
    if let Some(file) = from {
        kg_fs::trust::check_owned_by_us_or_root("config file", file)?;
    }
    let program = hook
        .split_whitespace()
        .next()
        .map(Path::new)
        .filter(|p| p.is_absolute() && p.exists());
    if let Some(program) = program {
        kg_fs::trust::check_owned_by_us_or_root("deploy hook program", program)?;
    }
    Ok(())
}

/// Runs the deploy hook through `sh -c` (it is the user's shell command, like certbot's)
/// with the documented environment, after [`check_deploy_hook`] (checked again here, where it
/// runs, because the config file was read before the renewal, which can take minutes).
/// What the hook printed comes back for the caller to show, as certbot shows a hook's output.
pub fn run_deploy_hook(hook: &str, from: Option<&Path>, renewed: &Renewed) -> HookRun {
    let Some(f) = &renewed.outcome.files else {
        return HookRun::default();
    };
    if let Err(e) = check_deploy_hook(hook, from) {
        return HookRun {
            output: String::new(),
            error: Some(format!("deploy hook not run: {e}")),
        };
    }
    let names: Vec<String> = renewed
        .outcome
        .names
        .iter()
        .map(ToString::to_string)
        .collect();
    let expr = duct::cmd("sh", ["-c", hook])
        .env("KEYGATE_CERT_ID", &renewed.id)
        .env("KEYGATE_CERT_DIR", &f.dir)
        .env("KEYGATE_CERT_FILE", &f.cert)
        .env("KEYGATE_KEY_FILE", &f.key)
        .env("KEYGATE_FULLCHAIN_FILE", &f.fullchain)
        .env("KEYGATE_RENEWED_NAMES", names.join(" "));
    match crate::tool::run("deploy hook", expr, Duration::from_secs(300)) {
        Ok(out) => {
            let mut output = String::from_utf8_lossy(&out.stdout).into_owned();
            output.push_str(&String::from_utf8_lossy(&out.stderr));
            let output = output.trim_end().to_owned();
            let error = (!out.status.success()).then(|| {
                let detail = crate::tool::last_line(&out.stderr);
                format!(
                    "deploy hook failed with {}{}",
                    out.status,
                    if detail.is_empty() {
                        String::new()
                    } else {
                        format!(": {detail}")
                    }
                )
            });
            HookRun { output, error }
        }
        Err(e) => HookRun {
            output: String::new(),
            error: Some(e.to_string()),
        },
    }
}

/// What a deploy hook did: what it printed (stdout, then stderr) and, when it failed or was
/// not run, why.
#[derive(Debug, Default)]
pub struct HookRun {
    pub output: String,
    pub error: Option<String>,
}
