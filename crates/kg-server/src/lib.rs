//! keygate's verifying server: HTTPS with certctl's certificates, `/auth` for reverse
//! proxies from tokenctl's store, `/health` and `/metrics`.
//!
//! `keygate serve` and `keygate check` are thin layers over [`serve`] and [`check`].
//!
//! # Endpoints
//!
//! | path | methods | answer |
//! |---|---|---|
//! | `/auth`, `/auth/...` | any (Envoy forwards the original) | 200, 401 or 403, always `Content-Length: 0`; 400 for a body |
//! | `/health` | GET, HEAD | 200 `healthy` |
//! | `/metrics` | GET, HEAD | Prometheus text, to loopback peers or a token with the `metrics` scope |
//!
//! `/auth` answers 200 with `X-Auth-Request-User` (the token's name),
//! `X-Auth-Request-Token-Id` and `X-Auth-Request-Scopes`; 401 with
//! `WWW-Authenticate: Bearer realm="keygate"` without credentials, adding
//! `error="invalid_token"` for a bad token; 403 with `error="insufficient_scope"` when the
//! token lacks a scope required for the original path (`server.required_scopes`). Never a
//! redirect, 404 or 5xx: nginx turns any other status into a 500 for the client. Every
//! answer has an empty body, because nginx opens a new upstream connection after a 401 with
//! a body (a TLS handshake each, 20 times the CPU of the 401 itself).
//!
//! # Reverse-proxy mode
//!
//! With `server.upstream` set, every other path is authorized (a bearer token, a browser
//! session from the sign-in page, or the localhost bypass) and forwarded to the upstream;
//! the endpoints above move under `/.keygate/`, beside `/.keygate/sign-in` and
//! `/.keygate/sign-out`. See [`gateway`], [`signin`] and [`upstream`].
//!
//! # Security properties
//!
//! - **No localhost bypass on `/auth`.** Its callers are proxies, which connect from
//!   loopback; the socket peer says nothing about the client.
//! - **Forwarding headers only from trusted proxies** (`server.trusted_proxies`, none by
//!   default). `X-Forwarded-For` is read right to left; `X-Original-URI` and
//!   `X-Forwarded-Uri` are ignored from anyone else, and when both arrive and disagree (a
//!   client's copy passed through), the path is unknown and every scope is required.
//!   `/metrics` is open to loopback peers only while no forwarding header is present and no
//!   trusted proxy is configured.
//! - **No header-keyed shortcuts**: nothing but the bearer token grants anything;
//!   client-sent identity headers (`X-Auth-Request-User`) are never read.
//! - **Bounded resources**: a header timeout from the first byte of each request head, a
//!   keep-alive idle timeout, a TLS handshake timeout, 414 beyond an 8 KiB request target,
//!   431 beyond 16 KiB of headers, a connection cap, and a rate limiter of fixed size.
//! - **Failed attempts are rate limited** per client address and per token id; a throttled
//!   source gets the same cheap 401, without verification work.
//! - **Never logged**: tokens, secrets, `Authorization` headers, query strings. The audit log
//!   ([`audit`]) names the token by id and name.
//! - **Live reload, last good version kept**: a new certificate generation serves from the
//!   next handshake, a changed token store from the next request; a reload that fails is
//!   logged and the previous version stays in use. The first load failing refuses start-up.
#![forbid(unsafe_code)]

pub mod audit;
mod conn;
mod fast;
pub mod gateway;
pub mod http;
pub mod limiter;
pub mod log;
pub mod metrics;
pub mod net;
pub mod scopes;
mod server;
pub mod session;
pub mod settings;
pub mod signin;
#[cfg(test)]
mod testing;
pub mod tls;
pub mod tokens;
pub mod upstream;

use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::Arc;

use kg_pki::Problem;
use time::OffsetDateTime;
use tokio::sync::{Semaphore, watch};

pub use settings::{AuditAllows, AuditTarget, Settings, SettingsError};

/// Why the server could not start. Each names what failed; [`ServeError::hint`] says what
/// to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The certificate could not be loaded.
    #[error("certificate '{id}': {source}")]
    Cert {
        /// The certificate id.
        id: String,
        /// What failed.
        source: tls::CertError,
    },
    /// The token store could not be loaded.
    #[error("{0}")]
    Tokens(#[source] kg_tokens::FileError),
    /// The audit log could not be opened.
    #[error("{0}")]
    Audit(#[source] std::io::Error),
    /// A listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// What the kernel said.
        source: std::io::Error,
    },
    /// The runtime, the TLS configuration or the signal handlers could not be set up.
    #[error("cannot start the server: {0}")]
    Setup(String),
}

impl ServeError {
    /// A one-line recommendation.
    pub fn hint(&self) -> Option<String> {
        match self {
            ServeError::Cert { source, .. } => source.hint(),
            ServeError::Tokens(e) => e.hint(),
            ServeError::Bind { source, .. } => match source.kind() {
                std::io::ErrorKind::AddrInUse => {
                    Some("another process listens there; is keygate already running?".into())
                }
                std::io::ErrorKind::PermissionDenied => {
                    Some("ports below 1024 need privileges; use a higher port".into())
                }
                _ => None,
            },
            _ => None,
        }
    }

    /// Whether the setup itself is wrong (exit 2) rather than the environment (exit 1).
    pub fn is_usage(&self) -> bool {
        match self {
            ServeError::Cert { .. } => true,
            ServeError::Tokens(e) => e.is_usage(),
            _ => false,
        }
    }
}

/// A running server's handles, for tests and embedding: the addresses it listens on and a
/// way to stop it.
#[derive(Debug)]
pub struct Running {
    /// The bound addresses (port 0 resolved), in `server.listen` order.
    pub addrs: Vec<SocketAddr>,
    stop: watch::Sender<bool>,
}

impl Running {
    /// Starts a graceful shutdown, as SIGTERM does.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }
}

/// Loads everything, binds, and serves until SIGTERM or SIGINT; then stops accepting and
/// lets in-flight requests finish within `shutdown_timeout`.
pub fn serve(settings: &Settings) -> Result<(), ServeError> {
    serve_then(settings, || {})
}

/// [`serve`], calling `ready` once every listener is bound and the first loads succeeded
/// (`keygate up` prints its URLs then, not before a bind can still fail).
pub fn serve_then(settings: &Settings, ready: impl FnOnce()) -> Result<(), ServeError> {
    // One worker per CPU we may run on (taskset and cgroups included). On one CPU the
    // current-thread scheduler does the same work without work-stealing overhead.
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut builder = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(workers);
        b
    };
    let rt = builder
        .enable_all()
        .build()
        .map_err(|e| ServeError::Setup(e.to_string()))?;
    rt.block_on(async {
        let (running, done) = start(settings)?;
        ready();
        let why = server::signal()
            .await
            .map_err(|e| ServeError::Setup(format!("signal handlers: {e}")))?;
        log::info("shutting_down", &[("signal", why)]);
        running.stop();
        let _ = done.await;
        Ok(())
    })
}

/// Starts serving on the current tokio runtime. Returns the handles and a future that
/// completes when the server has stopped after [`Running::stop`].
pub fn start(
    settings: &Settings,
) -> Result<(Running, impl Future<Output = ()> + Send + 'static), ServeError> {
    let metrics = Arc::new(metrics::Metrics::default());
    let tokens =
        tokens::Tokens::load(&settings.store, &settings.prefix).map_err(ServeError::Tokens)?;
    let tls = if settings.plain_http {
        None
    } else {
        let provider = tls::provider();
        let first =
            tls::load(&settings.cert_dir, &provider).map_err(|source| ServeError::Cert {
                id: settings.cert_id.clone(),
                source,
            })?;
        let generation = first.generation.to_string();
        let serial = first.record.serial.clone();
        let resolver = Arc::new(tls::Resolver::new(
            &settings.cert_dir,
            first,
            Arc::clone(&provider),
            Arc::clone(&metrics),
        ));
        let config = tls::server_config(resolver, provider)
            .map_err(|e| ServeError::Setup(format!("TLS: {e}")))?;
        log::info(
            "cert_loaded",
            &[
                ("id", &settings.cert_id),
                ("generation", &generation),
                ("serial", &serial),
            ],
        );
        Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    };
    let audit = audit::Audit::open(&settings.audit, settings.audit_allows, Arc::clone(&metrics))
        .map_err(ServeError::Audit)?;
    let app = Arc::new(http::App::new(settings, tokens, metrics, audit));
    // SIGHUP reopens the audit log (logrotate). Installed here, before any listener binds,
    // so that no SIGHUP can arrive without a handler: its default action ends the process.
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(|e| ServeError::Setup(format!("signal handlers: {e}")))?;
    let reopener = tokio::spawn({
        let app = Arc::clone(&app);
        async move {
            while hangup.recv().await.is_some() {
                if app.audit().reopen().is_ok() {
                    log::info("audit_reopened", &[("signal", "SIGHUP")]);
                }
            }
        }
    });
    let gateway = gateway::Gateway::new(settings, Arc::clone(&app)).map(Arc::new);
    if let Some(g) = &gateway {
        log::info(
            "proxying",
            &[
                ("upstream", &g.upstream().to_string()),
                ("local_bypass", if g.local_bypass() { "on" } else { "off" }),
            ],
        );
    }
    let serving = Arc::new(server::Serving::new(
        settings,
        Arc::clone(&app),
        gateway,
        tls,
    ));

    let mut listeners = Vec::new();
    for addr in &settings.listen {
        let l = StdListener::bind(addr)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .and_then(tokio::net::TcpListener::from_std)
            .map_err(|source| ServeError::Bind {
                addr: *addr,
                source,
            })?;
        listeners.push(l);
    }
    let addrs: Vec<SocketAddr> = listeners
        .iter()
        .map(|l| l.local_addr())
        .collect::<Result<_, _>>()
        .map_err(|e| ServeError::Setup(e.to_string()))?;
    if !settings.scopes.is_empty()
        && settings.trusted_proxies.is_empty()
        && settings.upstream.is_none()
    {
        log::warn(
            "scopes_without_trusted_proxies",
            &[(
                "note",
                "server.required_scopes match the original path, which is only believed from \
                 server.trusted_proxies; without any, every request needs every scope",
            )],
        );
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let permits = Arc::new(Semaphore::new(settings.max_connections));
    let mut loops = Vec::new();
    for (l, addr) in listeners.into_iter().zip(&addrs) {
        let scheme = if settings.plain_http { "http" } else { "https" };
        log::info(
            "listening",
            &[
                ("url", &format!("{scheme}://{addr}")),
                ("pid", &std::process::id().to_string()),
            ],
        );
        loops.push(tokio::spawn(Arc::clone(&serving).accept_loop(
            l,
            Arc::clone(&permits),
            stop_rx.clone(),
        )));
    }
    let max = settings.max_connections as u32;
    let grace = settings.shutdown_timeout;
    let mut stopped = stop_rx;
    let done = async move {
        let _ = stopped.wait_for(|s| *s).await;
        reopener.abort();
        for l in loops {
            let _ = l.await;
        }
        // Every connection holds a permit: all of them back means all connections ended.
        let drained = tokio::time::timeout(grace, permits.acquire_many(max)).await;
        if drained.is_err() {
            log::warn(
                "shutdown_timeout",
                &[(
                    "open_connections",
                    &(max as usize - permits.available_permits()).to_string(),
                )],
            );
        }
        app.audit().close();
        log::info("stopped", &[]);
    };
    Ok((
        Running {
            addrs,
            stop: stop_tx,
        },
        done,
    ))
}

/// One line of `keygate check`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CheckItem {
    /// What was checked, e.g. `certificate 'default'`.
    pub what: String,
    /// Whether it is fit to serve.
    pub ok: bool,
    /// What was found.
    pub detail: String,
    /// What to do, when not ok (or worth a warning).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// Checks what `serve` would load, without serving: the certificate (loads, key matches,
/// valid now), the token store, the audit log and the listen addresses.
pub fn check(settings: &Settings, now: OffsetDateTime) -> Vec<CheckItem> {
    let mut items = Vec::new();
    let mut item = |what: String, r: Result<String, (String, Option<String>)>| {
        items.push(match r {
            Ok(detail) => CheckItem {
                what,
                ok: true,
                detail,
                hint: None,
            },
            Err((detail, hint)) => CheckItem {
                what,
                ok: false,
                detail,
                hint,
            },
        })
    };
    if settings.plain_http {
        item(
            "tls".into(),
            Ok("off: plain HTTP on loopback (server.plain_http)".into()),
        );
    } else {
        let what = format!("certificate '{}'", settings.cert_id);
        item(what, check_cert(settings, now));
    }
    item(
        "token store".into(),
        match tokens::Tokens::load(&settings.store, &settings.prefix) {
            Ok(t) => Ok(format!(
                "{} token(s) in '{}'",
                t.len(),
                settings.store.store.display()
            )),
            Err(e) => Err((e.to_string(), e.hint())),
        },
    );
    if let AuditTarget::File(path) = &settings.audit {
        item(
            "audit log".into(),
            // The server's own opener: 0600 and no symlinks, also when `check` is the first
            // to create the file (a plain create made it 0644 for `serve` to keep using).
            audit::open_append(path)
                .map(|_| format!("appending to '{}'", path.display()))
                .map_err(|e| (e.to_string(), None)),
        );
    }
    for addr in &settings.listen {
        let r = match StdListener::bind(addr) {
            Ok(_) => Ok("free".to_owned()),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                Ok("in use (fine if keygate already runs there)".to_owned())
            }
            Err(e) => {
                let hint = (e.kind() == std::io::ErrorKind::PermissionDenied)
                    .then(|| "ports below 1024 need privileges; use a higher port".to_owned())
                    .or_else(|| Some("listen on an address this host has".to_owned()));
                Err((format!("cannot bind: {e}"), hint))
            }
        };
        item(format!("listen {addr}"), r);
    }
    if let Some(up) = &settings.upstream {
        let (ok_detail, hint) = match probe_upstream(&up.target) {
            Ok(()) => (format!("{up}: reachable"), None),
            Err(e) => (
                format!("{up}: not reachable now ({e})"),
                Some("keygate answers 502 until the upstream listens; start it, or fix server.upstream".to_owned()),
            ),
        };
        items.push(CheckItem {
            what: "upstream".into(),
            ok: true,
            detail: format!(
                "{ok_detail}; local requests {}",
                if settings.local_bypass {
                    "skip sign-in (server.local_bypass)"
                } else {
                    "need credentials too"
                }
            ),
            hint,
        });
    }
    if !settings.scopes.is_empty()
        && settings.trusted_proxies.is_empty()
        && settings.upstream.is_none()
    {
        items.push(CheckItem {
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

/// Whether the upstream accepts a connection now (for `check`; a refusal is a warning,
/// since the upstream may start after keygate).
fn probe_upstream(target: &upstream::Target) -> std::io::Result<()> {
    use std::net::ToSocketAddrs;
    let timeout = std::time::Duration::from_secs(2);
    match target {
        upstream::Target::Addr(a) => std::net::TcpStream::connect_timeout(a, timeout).map(drop),
        upstream::Target::Unix(p) => std::os::unix::net::UnixStream::connect(p).map(drop),
        upstream::Target::Name { host, port } => {
            let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no address");
            for a in (host.as_str(), *port).to_socket_addrs()? {
                if let Err(e) = upstream::check_addr(a.ip()) {
                    last = std::io::Error::new(std::io::ErrorKind::PermissionDenied, e.to_string());
                    continue;
                }
                match std::net::TcpStream::connect_timeout(&a, timeout) {
                    Ok(_) => return Ok(()),
                    Err(e) => last = e,
                }
            }
            Err(last)
        }
    }
}

fn check_cert(
    settings: &Settings,
    now: OffsetDateTime,
) -> Result<String, (String, Option<String>)> {
    let provider = tls::provider();
    let set = tls::load(&settings.cert_dir, &provider).map_err(|e| (e.to_string(), e.hint()))?;
    let dir = kg_fs::generation::current(&settings.cert_dir)
        .ok()
        .flatten()
        .map(|g| g.path)
        .ok_or_else(|| {
            (
                "the certificate changed while being checked".to_owned(),
                None,
            )
        })?;
    let mut pairs = vec![(kg_cascade::files::FULLCHAIN, kg_cascade::files::KEY)];
    if set.tailnet.is_some() {
        pairs.push((
            kg_cascade::files::TAILNET_FULLCHAIN,
            kg_cascade::files::TAILNET_KEY,
        ));
    }
    let mut details = Vec::new();
    for (cert, key) in pairs {
        let cert_path = dir.join(cert);
        let key_path = dir.join(key);
        let pem = std::fs::read_to_string(&cert_path)
            .map_err(|e| (format!("cannot read '{}': {e}", cert_path.display()), None))?;
        let key_pem = kg_fs::read_secret(&key_path).map_err(|e| (e.to_string(), e.hint()))?;
        let key_pem = kg_pki::SecretPem::new(String::from_utf8(key_pem).unwrap_or_default());
        let report = kg_pki::inspect(&pem, Some(&key_pem), None, now)
            .map_err(|e| (format!("'{}': {e}", cert_path.display()), None))?;
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
            return Err((
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
