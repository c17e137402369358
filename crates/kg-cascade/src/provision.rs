use std::path::{Path, PathBuf};
use std::time::Duration;

use kg_config::Locations;
use kg_fs::FileMode;
use kg_fs::generation::{self, Generation, Item};
use kg_fs::lock::Wait;
use kg_pki::{CertFacts, KeyKind, SanName, SecretPem};
use serde::Serialize;
use time::OffsetDateTime;

use crate::state::{self, Record};

use crate::tiers::{self, Tier};
use crate::{Error, files, local_ca, tool};

/// How to obtain a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    Auto,
    Tailscale,
    Mkcert,
    LocalCa,
    SelfSigned,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Auto => "auto",
            Method::Tailscale => "tailscale",
            Method::Mkcert => "mkcert",
            Method::LocalCa => "local-ca",
            Method::SelfSigned => "self-signed",
        }
    }
}

impl std::str::FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> Result<Method, String> {
        [
            Method::Auto,
            Method::Tailscale,
            Method::Mkcert,
            Method::LocalCa,
            Method::SelfSigned,
        ]
        .into_iter()
        .find(|m| m.as_str() == s)
        .ok_or_else(|| {
            format!(
                "unknown method '{s}'; expected auto, tailscale, mkcert, local-ca or self-signed"
            )
        })
    }
}

/// What to provision.
#[derive(Debug, Clone)]
pub struct Request {
    pub id: String,
    /// Names as the user gave them; empty means [`default_names`].
    pub names: Vec<String>,
    pub method: Method,
    pub key: KeyKind,
    pub days: u32,
    /// Issue even when the published certificate is fine (`certctl issue`).
    pub force: bool,
    /// Decide and report, write nothing.
    pub dry_run: bool,
    pub wait: Wait,
    /// `cert.ca_extra_names`: what the local CA may sign beyond the local namespaces.
    pub ca_extra_names: Vec<String>,
    /// Generations to keep.
    pub keep: usize,
    /// The tailnet name to ask tailscale for when no requested name is one (renewals keep
    /// the tailnet certificate they had).
    pub tailnet_hint: Option<String>,
    pub now: OffsetDateTime,
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// The published certificate was fine; nothing changed.
    Unchanged,
    /// A new generation was published.
    Issued,
    /// Dry run: a new certificate would be issued.
    WouldIssue,
    /// Dry run: the published certificate would be kept.
    WouldKeep,
}

/// The files of the live generation (paths through the `current` link). In JSON every
/// path is a `<what>_file` (or `_dir`), as everywhere (`docs/json.md`).
#[derive(Debug, Clone, Serialize)]
pub struct Files {
    #[serde(rename = "cert_dir")]
    pub dir: PathBuf,
    #[serde(rename = "cert_file")]
    pub cert: PathBuf,
    #[serde(rename = "chain_file")]
    pub chain: PathBuf,
    #[serde(rename = "fullchain_file")]
    pub fullchain: PathBuf,
    #[serde(rename = "key_file")]
    pub key: PathBuf,
    #[serde(rename = "ca_file")]
    pub ca: PathBuf,
}

/// The tailnet certificate published beside the local one.
#[derive(Debug, Clone, Serialize)]
pub struct Tailnet {
    pub domain: String,
    #[serde(rename = "fullchain_file")]
    pub fullchain: PathBuf,
    #[serde(rename = "key_file")]
    pub key: PathBuf,
    #[serde(with = "time::serde::rfc3339", rename = "expires_at")]
    pub not_after: OffsetDateTime,
}

/// The outcome of [`provision`], printed as text or JSON.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub id: String,
    pub action: Action,
    /// The method of the live (or would-be) certificate.
    pub method: &'static str,
    /// Why that method, or why nothing changed, in one line.
    pub why: String,
    /// Every tier considered, available or not and why (empty when an explicit method made
    /// detection unnecessary).
    pub tiers: Vec<Tier>,
    pub names: Vec<SanName>,
    pub generation: Option<u64>,
    pub files: Option<Files>,
    /// The live (or would-be kept) certificate's end of validity (`expires_at` in JSON).
    #[serde(with = "time::serde::rfc3339::option", rename = "expires_at")]
    pub not_after: Option<OffsetDateTime>,
    pub serial: Option<String>,
    pub tailnet: Option<Tailnet>,
    /// Things the user should know once (e.g. certificate transparency).
    pub notes: Vec<String>,
}

/// The host's short name and, when it has one, its fully qualified name.
///
/// A name that is itself a public suffix (a host called `dev` or `app`) is left out: the
/// local CA cannot be constrained to it without being able to sign for the whole TLD.
pub fn host_names() -> Vec<String> {
    let node = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let mut names = Vec::new();
    if let Some((short, _)) = node.split_once('.') {
        names.push(short.to_owned());
    }
    if !node.is_empty() {
        names.push(node);
    }
    names.retain(|n| !kg_pki::is_public_suffix(n));
    names
}

/// The names of a certificate for local use: `localhost`, this host, `127.0.0.1`, `::1`.
pub fn default_names() -> Vec<String> {
    let mut names = vec!["localhost".to_owned()];
    names.extend(host_names());
    names.extend(["127.0.0.1".to_owned(), "::1".to_owned()]);
    names
}

/// Gets a verified certificate for `req` published, unless the published one is fine.
///
/// Takes the certificate lock for the whole decision and publication (dry runs take none
/// and write nothing, not even the state directory).
pub fn provision(locations: &Locations, req: &Request) -> Result<Outcome, Error> {
    if req.dry_run {
        return provision_inner(locations, req);
    }
    let lock = lock(locations, req.wait)?;
    provision_locked(locations, req, &lock)
}

/// Takes the lock that serializes every change to managed certificates.
pub fn lock(locations: &Locations, wait: Wait) -> Result<kg_fs::lock::LockGuard, Error> {
    kg_fs::create_dir_all(&locations.state_dir, kg_fs::DirMode::Private)?;
    Ok(kg_fs::lock::acquire(&locations.lock_file("certs"), wait)?)
}

/// [`provision`] for a caller that already holds the lock (renewing many certificates).
pub fn provision_locked(
    locations: &Locations,
    req: &Request,
    _held: &kg_fs::lock::LockGuard,
) -> Result<Outcome, Error> {
    // Scratch directories of killed runs may hold keys: remove them while we hold the lock.
    for stale in kg_fs::stale_private_tempdirs(&locations.private_dir) {
        let _ = std::fs::remove_dir_all(stale);
    }
    provision_inner(locations, req)
}

/// The names the published certificate `id` was issued for (as planned), if one is
/// published: for callers that keep what the user chose instead of asking for the defaults.
pub fn published_names(locations: &Locations, id: &str) -> Option<Vec<String>> {
    state::load(&locations.cert_dir(id))
        .ok()
        .flatten()
        .map(|(_, record)| record.names)
        .filter(|names| !names.is_empty())
}

fn provision_inner(locations: &Locations, req: &Request) -> Result<Outcome, Error> {
    check_id(&req.id)?;
    let requested = if req.names.is_empty() {
        default_names()
    } else {
        req.names.clone()
    };
    let names = kg_pki::plan_names(&requested)?;
    let cert_dir = locations.cert_dir(&req.id);

    let published = state::load(&cert_dir);
    let verdict = match (&published, req.force) {
        (_, true) => Err("a new certificate was asked for".to_owned()),
        (Err(e), _) => Err(e.to_string()),
        (Ok(None), _) => Err("nothing was published yet".to_owned()),
        (Ok(Some((g, record))), false) => current_is_fine(g, record, &names, req),
    };
    if let (Ok(facts), Ok(Some((g, record)))) = (&verdict, &published) {
        let facts = facts.clone();
        return Ok(Outcome {
            id: req.id.clone(),
            action: if req.dry_run { Action::WouldKeep } else { Action::Unchanged },
            method: method_name(&record.method),
            why: "the published certificate covers the names, matches its key, verifies, and is not due for renewal".into(),
            tiers: Vec::new(),
            names,
            generation: Some(g.number),
            files: Some(files_of(&cert_dir)),
            not_after: Some(facts.not_after),
            serial: Some(facts.serial),
            tailnet: tailnet_of(&cert_dir, record),
            notes: Vec::new(),
        });
    }
    let why_new = verdict.err().unwrap_or_default();

    let plan = choose(req, &names)?;
    if req.dry_run {
        return Ok(Outcome {
            id: req.id.clone(),
            action: Action::WouldIssue,
            method: plan.method.as_str(),
            why: format!("{why_new}; {}", plan.why),
            tiers: plan.tiers,
            names,
            generation: None,
            files: None,
            not_after: None,
            serial: None,
            tailnet: None,
            notes: Vec::new(),
        });
    }

    let produced = produce(locations, req, &plan, &names)?;
    // mkcert and tailscale date their certificates by their own clock, after we read ours:
    // check their output against a clock read after they ran (the test clock still wins).
    let external =
        produced.tailnet.is_some() || !matches!(produced.local.method, "local-ca" | "self-signed");
    let verify_now = if external {
        req.now.max(OffsetDateTime::now_utc())
    } else {
        req.now
    };
    let facts = kg_pki::verify(
        &produced.local.cert_pem,
        &produced.local.key,
        &produced.local.trust_pem,
        &produced.local_names,
        verify_now,
    )
    .map_err(|source| Error::Verify {
        method: produced.local.method,
        source,
    })?;
    let tailnet_facts = match &produced.tailnet {
        Some((domain, m)) => Some((
            domain.clone(),
            kg_pki::verify(
                &m.cert_pem,
                &m.key,
                &m.trust_pem,
                &[SanName::Dns(domain.clone())],
                verify_now,
            )
            .map_err(|source| Error::Verify {
                method: "tailscale",
                source,
            })?,
        )),
        None => None,
    };

    let method = if produced.tailnet.is_some() {
        "tailscale"
    } else {
        produced.local.method
    };
    let mut record = Record {
        names: produced
            .local_names
            .iter()
            .map(ToString::to_string)
            .collect(),
        method: method.to_owned(),
        key: req.key.as_str().to_owned(),
        days: req.days,
        serial: facts.serial.clone(),
        sha256_fingerprint: facts.sha256_fingerprint.clone(),
        not_before: facts.not_before,
        not_after: facts.not_after,
        tailnet_domain: tailnet_facts.as_ref().map(|(d, _)| d.clone()),
        tailnet_not_after: tailnet_facts.as_ref().map(|(_, f)| f.not_after),
        files: Default::default(),
    };
    let fullchain = format!("{}{}", produced.local.cert_pem, produced.local.chain_pem);
    let mut items = vec![
        Item {
            name: files::CERT,
            contents: produced.local.cert_pem.as_bytes(),
            mode: FileMode::Public,
        },
        Item {
            name: files::CHAIN,
            contents: produced.local.chain_pem.as_bytes(),
            mode: FileMode::Public,
        },
        Item {
            name: files::FULLCHAIN,
            contents: fullchain.as_bytes(),
            mode: FileMode::Public,
        },
        Item {
            name: files::KEY,
            contents: produced.local.key.expose().as_bytes(),
            mode: FileMode::Secret,
        },
        Item {
            name: files::CA,
            contents: produced.local.trust_pem.as_bytes(),
            mode: FileMode::Public,
        },
    ];
    let tailnet_fullchain;
    if let Some((_, m)) = &produced.tailnet {
        tailnet_fullchain = format!("{}{}", m.cert_pem, m.chain_pem);
        items.push(Item {
            name: files::TAILNET_FULLCHAIN,
            contents: tailnet_fullchain.as_bytes(),
            mode: FileMode::Public,
        });
        items.push(Item {
            name: files::TAILNET_KEY,
            contents: m.key.expose().as_bytes(),
            mode: FileMode::Secret,
        });
    }
    // Digests of what was just verified let renew and status check 1,000 certificates
    // cheaply: unchanged bytes are still a matching, verified pair.
    record.files = items
        .iter()
        .map(|i| (i.name.to_owned(), state::digest(i.contents)))
        .collect();
    let meta = record.to_json();
    items.push(Item {
        name: files::META,
        contents: meta.as_bytes(),
        mode: FileMode::Public,
    });
    let g = generation::publish(&cert_dir, &items, req.keep)?;
    let notes = if record.tailnet_domain.is_some() {
        vec!["tailscale certificates come from Let's Encrypt and are logged in public certificate transparency logs: the node and tailnet names become public".to_owned()]
    } else {
        Vec::new()
    };
    let tailnet = tailnet_of(&cert_dir, &record);

    Ok(Outcome {
        id: req.id.clone(),
        action: Action::Issued,
        method,
        why: format!("{why_new}; {}", plan.why),
        tiers: plan.tiers,
        names,
        generation: Some(g.number),
        files: Some(files_of(&cert_dir)),
        not_after: Some(facts.not_after),
        serial: Some(facts.serial),
        tailnet,
        notes,
    })
}

/// Refuses an id that is not a plain name (it becomes a directory name).
pub fn check_id(id: &str) -> Result<(), Error> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "invalid certificate id '{id}': use 1-64 letters, digits, '.', '_' or '-'"
        )))
    }
}

fn method_name(recorded: &str) -> &'static str {
    recorded
        .parse::<Method>()
        .map(Method::as_str)
        .unwrap_or("unknown")
}

/// Whether the published generation can stay; `Err` says why not.
fn current_is_fine(
    g: &Generation,
    record: &Record,
    names: &[SanName],
    req: &Request,
) -> Result<CertFacts, String> {
    let local = local_names(names, record.tailnet_domain.as_deref()).map_err(|e| e.to_string())?;
    let planned: Vec<String> = local.iter().map(ToString::to_string).collect();
    if record.names != planned {
        return Err(format!(
            "the names changed from {} to {}",
            record.names.join(" "),
            planned.join(" ")
        ));
    }
    if req.method != Method::Auto && req.method.as_str() != record.method {
        return Err(format!(
            "the method changed from {} to {}",
            record.method,
            req.method.as_str()
        ));
    }
    if record.key != req.key.as_str() {
        return Err(format!(
            "the key type changed from {} to {}",
            record.key,
            req.key.as_str()
        ));
    }
    let facts = check_pair(
        &g.file(files::CERT),
        &g.file(files::KEY),
        &g.file(files::CA),
        &local,
        req.now,
    )?;
    if let Some(domain) = &record.tailnet_domain {
        let fullchain = g.file(files::TAILNET_FULLCHAIN);
        let anchor = read(&fullchain).and_then(|pem| {
            last_cert(&pem).ok_or_else(|| "the tailnet chain is empty".to_owned())
        })?;
        let anchor_file_facts = check_pair_with(
            &fullchain,
            &g.file(files::TAILNET_KEY),
            &anchor,
            &[SanName::Dns(domain.clone())],
            req.now,
        )?;
        if kg_pki::renewal_due(
            anchor_file_facts.not_before,
            anchor_file_facts.not_after,
            req.now,
            None,
        ) {
            return Err("the tailnet certificate is due for renewal".into());
        }
    }
    if kg_pki::renewal_due(facts.not_before, facts.not_after, req.now, None) {
        return Err(format!(
            "the certificate is due for renewal (valid until {})",
            facts.not_after
        ));
    }
    Ok(facts)
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read '{}': {e}", path.display()))
}

fn check_pair(
    cert: &Path,
    key: &Path,
    ca: &Path,
    names: &[SanName],
    now: OffsetDateTime,
) -> Result<CertFacts, String> {
    check_pair_with(cert, key, &read(ca)?, names, now)
}

fn check_pair_with(
    cert: &Path,
    key: &Path,
    trust_pem: &str,
    names: &[SanName],
    now: OffsetDateTime,
) -> Result<CertFacts, String> {
    use std::os::unix::fs::PermissionsExt;
    let cert_pem = read(cert)?;
    // Only looks: a dry run must change nothing, so the mode is reported, not tightened. A
    // key others could read may have been copied: it is replaced, not just tightened.
    let mode = std::fs::metadata(key)
        .map_err(|e| format!("cannot read '{}': {e}", key.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "the key '{}' is mode {:04o}, readable by others",
            key.display(),
            mode & 0o777
        ));
    }
    let bytes = zeroize::Zeroizing::new(
        std::fs::read(key).map_err(|e| format!("cannot read '{}': {e}", key.display()))?,
    );
    let text =
        std::str::from_utf8(&bytes).map_err(|_| "the key file is not PEM text".to_owned())?;
    let key = SecretPem::new(text.to_owned());
    kg_pki::verify(&cert_pem, &key, trust_pem, names, now).map_err(|e| e.to_string())
}

/// The last certificate of a PEM bundle, as PEM: the anchor a delivered chain ends in.
fn last_cert(pem: &str) -> Option<String> {
    let start = pem.rfind("-----BEGIN CERTIFICATE-----")?;
    Some(pem[start..].to_owned())
}

fn files_of(cert_dir: &Path) -> Files {
    let dir = cert_dir.join(generation::CURRENT);
    Files {
        cert: dir.join(files::CERT),
        chain: dir.join(files::CHAIN),
        fullchain: dir.join(files::FULLCHAIN),
        key: dir.join(files::KEY),
        ca: dir.join(files::CA),
        dir,
    }
}

fn tailnet_of(cert_dir: &Path, record: &Record) -> Option<Tailnet> {
    let dir = cert_dir.join(generation::CURRENT);
    Some(Tailnet {
        domain: record.tailnet_domain.clone()?,
        fullchain: dir.join(files::TAILNET_FULLCHAIN),
        key: dir.join(files::TAILNET_KEY),
        not_after: record.tailnet_not_after?,
    })
}

/// The decision: which method makes the local certificate, and whether tailscale adds one.
struct Plan {
    method: Method,
    why: String,
    tiers: Vec<Tier>,
    /// With tailscale: the tailnet name to fetch; the local part uses `method`.
    tailnet: Option<String>,
    mkcert: Option<tiers::MkcertCa>,
}

fn choose(req: &Request, names: &[SanName]) -> Result<Plan, Error> {
    let mkcert_key_ok = matches!(req.key, KeyKind::EcdsaP256 | KeyKind::Rsa2048);
    let detect_ts = matches!(req.method, Method::Auto | Method::Tailscale);
    let detect_mkcert = matches!(
        req.method,
        Method::Auto | Method::Mkcert | Method::Tailscale
    );
    let mut tiers_seen = Vec::new();

    let mut tailnet = None;
    if detect_ts {
        let (mut tier, status) = tiers::tailscale();
        if let Some(status) = status.filter(|_| tier.available) {
            let wanted = names
                .iter()
                .filter_map(SanName::as_dns)
                .find(|n| status.cert_domains.iter().any(|d| d == n))
                .or_else(|| {
                    req.tailnet_hint
                        .as_deref()
                        .filter(|h| status.cert_domains.iter().any(|d| d == h))
                });
            match wanted {
                Some(domain) => tailnet = Some(domain.to_owned()),
                None if req.names.is_empty() => tailnet = status.cert_domains.first().cloned(),
                None => {
                    tier.available = false;
                    tier.reason = format!(
                        "none of the requested names is a tailnet name ({})",
                        status.cert_domains.join(", ")
                    );
                }
            }
        }
        if req.method == Method::Tailscale && tailnet.is_none() {
            return Err(Error::Unavailable {
                method: "tailscale",
                reason: tier.reason,
                hint: Some("run `tailscale up` and enable HTTPS certificates in the tailnet's admin console, or use --method auto".into()),
            });
        }
        tiers_seen.push(tier);
    }
    let mut mkcert = None;
    if detect_mkcert {
        let (mut tier, ca) = tiers::mkcert();
        if tier.available && !mkcert_key_ok {
            tier.available = false;
            tier.reason = format!(
                "mkcert cannot make {} keys (only ecdsa-p256 and rsa-2048)",
                req.key
            );
        }
        if req.method == Method::Mkcert && !tier.available {
            return Err(Error::Unavailable {
                method: "mkcert",
                reason: tier.reason,
                hint: Some("install mkcert and run `mkcert -install`, or use --method auto".into()),
            });
        }
        if tier.available {
            mkcert = ca;
        }
        tiers_seen.push(tier);
    }
    if req.method == Method::Auto || req.method == Method::Tailscale {
        tiers_seen.push(Tier {
            method: "local-ca",
            available: true,
            reason: "keygate's own CA is always available".into(),
        });
    }

    let local = match req.method {
        Method::SelfSigned => Method::SelfSigned,
        Method::LocalCa => Method::LocalCa,
        Method::Mkcert => Method::Mkcert,
        Method::Auto | Method::Tailscale if mkcert.is_some() => Method::Mkcert,
        Method::Auto | Method::Tailscale => Method::LocalCa,
    };
    let why = match (&tailnet, local) {
        (Some(d), l) => format!(
            "tailscale for {d} (the tailnet offers HTTPS certificates), {} for the local names",
            l.as_str()
        ),
        (None, Method::Mkcert) if req.method == Method::Auto => {
            "mkcert: tailscale is not usable and mkcert's CA can sign".into()
        }
        (None, Method::LocalCa) if req.method == Method::Auto => {
            "local-ca: neither tailscale nor mkcert is usable".into()
        }
        (None, l) => format!("{} was asked for", l.as_str()),
    };
    Ok(Plan {
        method: if tailnet.is_some() {
            Method::Tailscale
        } else {
            local
        },
        why,
        tiers: tiers_seen,
        tailnet,
        mkcert,
    })
}

/// Certificate material from one method, before verification.
struct Material {
    method: &'static str,
    cert_pem: String,
    chain_pem: String,
    key: SecretPem,
    /// What clients trust to verify it.
    trust_pem: String,
}

struct Produced {
    local: Material,
    local_names: Vec<SanName>,
    tailnet: Option<(String, Material)>,
}

fn produce(
    locations: &Locations,
    req: &Request,
    plan: &Plan,
    names: &[SanName],
) -> Result<Produced, Error> {
    let tailnet = match &plan.tailnet {
        Some(domain) => Some((domain.clone(), tailscale_cert(locations, domain)?)),
        None => None,
    };
    // The tailnet name goes in the tailnet certificate; the local one covers the rest.
    let local_names = local_names(names, plan.tailnet.as_deref())?;
    let local = match plan.method {
        Method::SelfSigned => {
            let issued = kg_pki::self_signed(&local_names, req.key, req.days, req.now)?;
            Material {
                method: "self-signed",
                trust_pem: issued.cert_pem.clone(),
                cert_pem: issued.cert_pem,
                chain_pem: issued.chain_pem,
                key: issued.key,
            }
        }
        _ if plan.mkcert.is_some() => mkcert_cert(
            locations,
            plan.mkcert.as_ref().expect("checked"),
            req.key,
            &local_names,
        )?,
        _ => {
            let hosts = host_names();
            let constraints = kg_pki::default_constraints(&hosts, &req.ca_extra_names);
            // Refuse before anything is created, the CA included.
            kg_pki::check_constraints(&local_names, &constraints)?;
            let host = hosts.last().cloned().unwrap_or_else(|| "localhost".into());
            let ca = local_ca::load_or_create(
                &locations.ca_dir(),
                &host,
                &req.ca_extra_names,
                &hosts,
                req.now,
            )?;
            let issued =
                kg_pki::issue_leaf(&ca.material, &local_names, req.key, req.days, req.now)?;
            Material {
                method: "local-ca",
                cert_pem: issued.cert_pem,
                chain_pem: issued.chain_pem,
                key: issued.key,
                trust_pem: ca.material.cert_pem,
            }
        }
    };
    Ok(Produced {
        local,
        local_names,
        tailnet,
    })
}

/// The names the local certificate covers: the planned names without the tailnet name, or
/// the local defaults when that leaves none.
fn local_names(names: &[SanName], tailnet: Option<&str>) -> Result<Vec<SanName>, Error> {
    let local: Vec<SanName> = names
        .iter()
        .filter(|n| tailnet.is_none() || n.as_dns() != tailnet)
        .cloned()
        .collect();
    if local.is_empty() {
        return Ok(kg_pki::plan_names(&default_names())?);
    }
    Ok(local)
}

/// A private (0700) scratch directory for a tool's output, removed when dropped.
fn staging(locations: &Locations) -> Result<tempfile::TempDir, Error> {
    Ok(kg_fs::private_tempdir(&locations.private_dir)?)
}

fn read_staged(path: &Path, tool: &'static str) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|e| Error::Tool {
        tool,
        message: format!("wrote no readable '{}': {e}", path.display()),
        hint: None,
    })
}

fn mkcert_cert(
    locations: &Locations,
    ca: &tiers::MkcertCa,
    key: KeyKind,
    names: &[SanName],
) -> Result<Material, Error> {
    let dir = staging(locations)?;
    let (cert, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let mut args: Vec<String> = Vec::new();
    if key == KeyKind::EcdsaP256 {
        args.push("-ecdsa".into());
    }
    args.extend([
        "-cert-file".into(),
        cert.display().to_string(),
        "-key-file".into(),
        key_file.display().to_string(),
    ]);
    args.extend(names.iter().map(ToString::to_string));
    let out = tool::run(
        "mkcert",
        duct::cmd(&ca.exe, &args).env("CAROOT", &ca.caroot),
        Duration::from_secs(60),
    )?;
    if !out.status.success() {
        return Err(Error::Tool {
            tool: "mkcert",
            message: tool::last_line(&out.stderr),
            hint: None,
        });
    }
    let key = kg_pki::normalize_key_pem(local_ca::read_key(&key_file)?.expose())?;
    let root = read_staged(&ca.caroot.join("rootCA.pem"), "mkcert")?;
    Ok(Material {
        method: "mkcert",
        cert_pem: read_staged(&cert, "mkcert")?,
        chain_pem: root.clone(),
        key,
        trust_pem: root,
    })
}

/// Remaining validity below which `tailscale cert` renews synchronously instead of handing
/// back its cached certificate (tailscale#9666): a third of Let's Encrypt's 90 days. Never
/// more than the CA's lifetime, or every call would re-issue and hit rate limits.
const TAILSCALE_MIN_VALIDITY: &str = "720h";

fn tailscale_cert(locations: &Locations, domain: &str) -> Result<Material, Error> {
    let dir = staging(locations)?;
    let (cert, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let exe = which::which("tailscale").map_err(|_| Error::Unavailable {
        method: "tailscale",
        reason: "not on PATH".into(),
        hint: None,
    })?;
    let args = [
        "cert".to_owned(),
        "--cert-file".into(),
        cert.display().to_string(),
        "--key-file".into(),
        key_file.display().to_string(),
        "--min-validity".into(),
        TAILSCALE_MIN_VALIDITY.into(),
        domain.to_owned(),
    ];
    let out = tool::run(
        "tailscale cert",
        duct::cmd(exe, &args),
        Duration::from_secs(180),
    )?;
    if !out.status.success() {
        return Err(tailscale_error(&String::from_utf8_lossy(&out.stderr)));
    }
    let pem = read_staged(&cert, "tailscale cert")?;
    // tailscale writes the key as SEC1 `EC PRIVATE KEY`; we store PKCS#8 whatever the source.
    let key = kg_pki::normalize_key_pem(local_ca::read_key(&key_file)?.expose())?;
    let certs = kg_pki::pem_certs(&pem)?;
    if certs.len() < 2 {
        return Err(Error::Tool {
            tool: "tailscale cert",
            message: "it returned a certificate without its issuer chain".into(),
            hint: None,
        });
    }
    let start_of_chain = pem
        .match_indices("-----BEGIN CERTIFICATE-----")
        .nth(1)
        .map(|(i, _)| i)
        .unwrap_or(pem.len());
    let (leaf, chain) = pem.split_at(start_of_chain);
    let anchor = last_cert(&pem).unwrap_or_default();
    Ok(Material {
        method: "tailscale",
        cert_pem: leaf.to_owned(),
        chain_pem: chain.to_owned(),
        key,
        trust_pem: anchor,
    })
}

/// Turns the real CLI's error texts into a message and a fix. The texts come from
/// tailscale's source (see fixtures/README.md); the LocalAPI ones carry a `500 ...:` prefix.
fn tailscale_error(stderr: &str) -> Error {
    let line = stderr
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    let message = tool::clean(
        line.strip_prefix("500 Internal Server Error: ")
            .unwrap_or(line),
    );
    let hint = if stderr.contains("Access denied") {
        Some("tailscaled only hands certificates to root, the operator user (`sudo tailscale set --operator=$USER`), or a uid listed in TS_PERMIT_CERT_UID on tailscaled".into())
    } else if stderr.contains("does not support getting TLS certs") {
        Some("enable HTTPS certificates in the tailnet's admin console (DNS page), or use --method auto".into())
    } else if stderr.contains("no netmap") || stderr.contains("not running") {
        Some("start tailscale with `tailscale up`, or use --method auto".into())
    } else if stderr.contains("invalid domain") {
        Some("ask for the name `tailscale status --json` lists under CertDomains".into())
    } else {
        None
    };
    Error::Tool {
        tool: "tailscale cert",
        message,
        hint,
    }
}
