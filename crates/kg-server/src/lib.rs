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
//! `/.keygate/sign-out`. See kg-gateway and kg-login.
//!
//! # The rooms
//!
//! This crate is the composition root: it reads the configuration ([`Settings`]), gives
//! each room its own plain settings, routes every path (`router.rs`), and starts, serves and
//! checks. The rooms are kg-http (hosting, no credential), kg-verifier (the one credential
//! decision), kg-login (browser sign-in), kg-gateway (the reverse proxy) and kg-tls.
//!
//! # Security properties
//!
//! - **No localhost bypass on `/auth`.** Its callers are proxies, which connect from
//!   loopback; the socket peer says nothing about the client.
//! - **Relayed locality**: "local" is what the kernel says about the connecting process.
//!   Proxy mode's bypass lets in only loopback connections whose socket keygate's own uid
//!   owns (never root's unless `server.danger_local_bypass_as_root`), so a relay on this
//!   host run by another uid is never local; see kg-gateway, "Who gets in".
//! - **Path ambiguity**: what the upstream routes is what was judged. A path whose meaning
//!   depends on the parser (dot segments raw or encoded, encoded `/` or `\`, `;`, NUL,
//!   double encoding, bytes that are not UTF-8) is refused unjudged, by the proxy always
//!   (400) and by `/auth` while a scope rule exists (403); `kg_verifier::paths` is the one
//!   rule, and every other path is forwarded byte for byte.
//! - **Identity headers from keygate alone**: in proxy mode every identity-header family
//!   other auth proxies use, and every URL-rewrite header, is removed from each request,
//!   a trusted proxy's included (kg-gateway's `header_policy.rs`).
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
//!   (`kg_http::audit`) names the token by id and name.
//! - **Live reload, last good version kept**: a new certificate generation serves from the
//!   next handshake, a changed token store from the next request; a reload that fails is
//!   logged and the previous version stays in use. The first load failing refuses start-up.
#![forbid(unsafe_code)]

mod check;
mod router;
mod settings;
mod state;

use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::Arc;

use kg_fs::lock::Wait;
use kg_http::audit::Audit;
use kg_http::log;
use kg_http::metrics::{Metrics, Reload};
use kg_http::serve::{Serving, Site};
use kg_http::slots::Slots;
use kg_tls::server::{CertError, CertSet, Observer};
use kg_verifier::{Tokens, Verifier};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use check::{CheckItem, check};
pub use kg_http::audit::{AuditAllows, AuditTarget};
pub use kg_http::log::warn;
pub use kg_verifier::Clock;
pub use settings::{Bypass, Settings, SettingsError};

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
        source: CertError,
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
    /// The store could not be opened.
    #[error("{0}")]
    Store(#[source] kg_store::Error),
    /// The signing keys could not be read or made.
    #[error("{0}")]
    Keys(#[source] kg_oauth::keyring::KeyError),
    /// A file sign-in keeps (its key, its directories) could not be read or written.
    #[error("{0}")]
    File(#[source] kg_fs::Error),
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
            ServeError::Store(e) => e.hint(),
            ServeError::Keys(e) => e.hint(),
            ServeError::File(e) => e.hint(),
            ServeError::Bind { source, .. } => bind_hint(source, false),
            ServeError::Audit(e) => audit_refusal(e).and_then(kg_fs::Error::hint),
            _ => None,
        }
    }

    /// Whether the setup itself is wrong (exit 2) rather than the environment (exit 1).
    pub fn is_usage(&self) -> bool {
        match self {
            ServeError::Cert { .. } => true,
            ServeError::Tokens(e) => e.is_usage(),
            // An audit log another user could have planted is a setup to fix.
            ServeError::Audit(e) => audit_refusal(e).is_some(),
            _ => false,
        }
    }
}

/// `keygate store backup`: a consistent 0600 copy of the store at `to`, taken while a
/// server may be using it.
pub fn backup_store(settings: &Settings, to: &std::path::Path) -> Result<(), ServeError> {
    kg_store::SqliteStore::backup_file(&settings.db, to).map_err(ServeError::Store)
}

/// The secure file layer's refusal inside an audit log error, if that is what it is.
pub(crate) fn audit_refusal(e: &std::io::Error) -> Option<&kg_fs::Error> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<kg_fs::Error>())
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
        let stop = kg_http::serve::signals()
            .map_err(|e| ServeError::Setup(format!("signal handlers: {e}")))?;
        let (running, done) = start(settings)?;
        ready();
        let why = stop.await;
        log::info("shutting_down", &[("signal", why.into())]);
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
    let metrics = Arc::new(kg_verifier::metrics());
    let tokens = Tokens::load(&settings.store, &settings.prefix).map_err(ServeError::Tokens)?;
    kg_verifier::live_store::warn_exposed(&tokens.exposed());
    let tls = if settings.plain_http {
        None
    } else {
        let provider = kg_tls::provider();
        let first = kg_tls::server::load(&settings.cert_dir, &provider).map_err(|source| {
            ServeError::Cert {
                id: settings.cert_id.clone(),
                source,
            }
        })?;
        log::info(
            "cert_loaded",
            &[
                ("id", (&settings.cert_id).into()),
                ("generation", first.generation.into()),
                ("serial", (&first.record.serial).into()),
            ],
        );
        let resolver = Arc::new(kg_tls::server::Resolver::new(
            &settings.cert_dir,
            first,
            Arc::clone(&provider),
            Arc::new(CertEvents(Arc::clone(&metrics))),
        ));
        let config = kg_tls::server::server_config(resolver, provider)
            .map_err(|e| ServeError::Setup(format!("TLS: {e}")))?;
        Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    };
    let audit = Audit::open(&settings.audit, settings.audit_allows, Arc::clone(&metrics))
        .map_err(ServeError::Audit)?;
    let verifier = Arc::new(Verifier::new(&settings.verifier(), tokens, metrics, audit));
    // SIGHUP reopens the audit log (logrotate). Installed here, before any listener binds,
    // so that no SIGHUP can arrive without a handler: its default action ends the process.
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(|e| ServeError::Setup(format!("signal handlers: {e}")))?;
    let reopener = tokio::spawn({
        let verifier = Arc::clone(&verifier);
        async move {
            while hangup.recv().await.is_some() {
                if verifier.audit().reopen().is_ok() {
                    log::info("audit_reopened", &[("signal", "SIGHUP".into())]);
                }
            }
        }
    });

    let mut listeners = Vec::new();
    for addr in &settings.listen {
        let l = StdListener::bind(addr)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .and_then(TcpListener::from_std)
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
    if settings.scopes_need_every_scope() {
        log::warn(
            "scopes_without_trusted_proxies",
            &[(
                "note",
                "server.required_scopes match the original path, which is only believed from \
                 server.trusted_proxies; without any, every request needs every scope"
                    .into(),
            )],
        );
    }
    let store = if settings.proxying() || settings.oauth_on() {
        Some(state::open_store(settings)?)
    } else {
        None
    };
    // People who sign in with passwords live in the store too.
    if let Some(store) = &store {
        verifier.set_people(Arc::new(kg_accounts::directory::Directory::new(
            Arc::clone(store) as Arc<dyn kg_store::UserStore>,
        )));
    }
    // Sign-in: the proxy's, and the authorization server's way of knowing who a person is.
    let sign_in = match &store {
        Some(store) => Some(Arc::new(kg_login::SignIn::new(
            &settings.login(),
            Arc::clone(&verifier),
            Arc::clone(store) as Arc<dyn kg_store::SessionStore>,
            state::sign_in_key(settings)?,
        ))),
        None => None,
    };
    if let (Some(sign_in), Some(portal)) = (&sign_in, &settings.portal) {
        sign_in.set_portal(portal.clone());
    }
    if let (Some(sign_in), Some((smtp, password_file))) = (&sign_in, &settings.smtp) {
        sign_in.set_mailer(state::mailer(smtp, password_file.as_deref())?);
    }
    let oauth = match &store {
        Some(store) if settings.oauth_on() => {
            Some(oauth(settings, store, &verifier, sign_in.clone(), &addrs)?)
        }
        _ => {
            if settings.oauth_enabled.is_none() {
                log::warn(
                    "oauth_off",
                    &[(
                        "note",
                        "the state or private directory is not writable, so the OAuth \
                         authorization server is off and /auth takes API tokens only; set \
                         oauth.enabled = false to say so, or make them writable"
                            .into(),
                    )],
                );
            }
            None
        }
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let slots = Slots::new(
        settings.max_connections,
        settings.max_connections_per_source,
        settings.trusted_proxies.clone(),
    );
    let loops = match settings.gateway() {
        None => accept_loops(
            settings,
            router::Verifying {
                verifier: Arc::clone(&verifier),
                oauth: oauth.clone(),
                // Only for the authorization server's people: without it, no sign-in page.
                sign_in: oauth.as_ref().and(sign_in.clone()),
            },
            tls,
            listeners,
            &addrs,
            &slots,
            &stop_rx,
        ),
        Some(g) => {
            let sign_in = sign_in
                .clone()
                .ok_or_else(|| ServeError::Setup("the store is needed in proxy mode".into()))?;
            let gateway = Arc::new(kg_gateway::Gateway::new(
                &g,
                Arc::clone(&verifier),
                Arc::clone(&sign_in),
            ));
            if let Some(o) = &oauth {
                gateway.set_asserter(Arc::new(Assertions(Arc::clone(o))));
            }
            log::info(
                "proxying",
                &[
                    (
                        "upstream",
                        (&g.upstream
                            .as_ref()
                            .map(|u| u.to_string())
                            .unwrap_or_default())
                            .into(),
                    ),
                    (
                        "services",
                        (&g.services
                            .iter()
                            .map(|s| s.name.as_str())
                            .collect::<Vec<_>>()
                            .join(","))
                            .into(),
                    ),
                    (
                        "local_bypass",
                        matches!(settings.bypass(), Bypass::User(_)).into(),
                    ),
                    ("local_user", settings.bypass_user().into()),
                ],
            );
            match settings.bypass() {
                Bypass::RefusedAsRoot => log::warn(
                    "local_bypass_off_as_root",
                    &[("note", (&settings.bypass().says()).into())],
                ),
                Bypass::User(_) if kg_http::peer_owner::euid() == 0 => log::warn(
                    "danger_local_bypass_as_root",
                    &[(
                        "note",
                        "every process of root's on this host gets in without credentials, \
                         relays run as root (sshd, tailscaled, a proxy) and what they forward \
                         included"
                            .into(),
                    )],
                ),
                _ => {}
            }
            let site = router::Proxying {
                verifier: Arc::clone(&verifier),
                sign_in,
                gateway,
                oauth: oauth.clone(),
            };
            accept_loops(settings, site, tls, listeners, &addrs, &slots, &stop_rx)
        }
    };
    let grace = settings.shutdown_timeout;
    let mut stopped = stop_rx;
    let done = async move {
        let _ = stopped.wait_for(|s| *s).await;
        reopener.abort();
        for l in loops {
            let _ = l.await;
        }
        // Every connection holds a slot: an empty table means all connections ended.
        let open = slots.drained(grace).await;
        if open > 0 {
            log::warn("shutdown_timeout", &[("open_connections", open.into())]);
        }
        verifier.audit().close();
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

/// The authorization server signs the gateway's identity assertions.
struct Assertions(Arc<kg_oauth::Provider>);

impl kg_gateway::Asserter for Assertions {
    fn assertion(
        &self,
        subject: &str,
        token_id: &str,
        scopes: &[String],
        audience: &str,
    ) -> Option<String> {
        self.0
            .identity_assertion(subject, token_id, scopes, audience)
    }
}

/// The authorization server on `store`, teaching `verifier` its tokens.
fn oauth(
    settings: &Settings,
    store: &Arc<kg_store::SqliteStore>,
    verifier: &Arc<Verifier>,
    sign_in: Option<Arc<kg_login::SignIn>>,
    addrs: &[SocketAddr],
) -> Result<Arc<kg_oauth::Provider>, ServeError> {
    let pepper = settings
        .store
        .pepper(
            Wait::Up(std::time::Duration::from_secs(10)),
            &settings.prefix,
        )
        .map_err(ServeError::Tokens)?;
    let provider = kg_oauth::Provider::new(
        settings.oauth(addrs),
        Arc::clone(store) as Arc<dyn kg_oauth::provider::Store>,
        pepper,
        Arc::clone(verifier),
        sign_in,
    )
    .map_err(ServeError::Keys)?;
    log::info(
        "oauth_issuer",
        &[
            ("issuer", provider.issuer().into()),
            ("discovery", (&settings.discovery(addrs)).into()),
        ],
    );
    Ok(Arc::new(provider))
}

/// Serves `site` on every listener.
fn accept_loops<S: Site>(
    settings: &Settings,
    site: S,
    tls: Option<tokio_rustls::TlsAcceptor>,
    listeners: Vec<TcpListener>,
    addrs: &[SocketAddr],
    slots: &Arc<Slots>,
    stop: &watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let serving = Arc::new(Serving::new(
        Arc::new(site),
        tls,
        settings.header_timeout,
        settings.idle_timeout,
    ));
    let scheme = if settings.plain_http { "http" } else { "https" };
    listeners
        .into_iter()
        .zip(addrs)
        .map(|(l, addr)| {
            log::info(
                "listening",
                &[
                    ("url", (&format!("{scheme}://{addr}")).into()),
                    ("pid", std::process::id().into()),
                ],
            );
            tokio::spawn(Arc::clone(&serving).accept_loop(l, Arc::clone(slots), stop.clone()))
        })
        .collect()
}

/// What the TLS resolver reports: logged, and counted in the metrics.
struct CertEvents(Arc<Metrics>);

impl Observer for CertEvents {
    fn serving(&self, set: &CertSet, reloaded: bool) {
        kg_verifier::live_store::warn_exposed(&set.exposed);
        self.0.cert_not_after(
            set.record.not_after.unix_timestamp(),
            set.record
                .tailnet_not_after
                .map_or(0, |t| t.unix_timestamp()),
        );
        if reloaded {
            log::info(
                "cert_reloaded",
                &[
                    ("generation", set.generation.into()),
                    ("serial", (&set.record.serial).into()),
                ],
            );
            self.0.reload(Reload::Cert, true);
        }
    }

    fn reload_failed(&self, error: &CertError, kept: u64) {
        self.0.reload(Reload::Cert, false);
        log::error(
            "cert_reload_failed",
            &[
                ("error", (&error.to_string()).into()),
                ("keeping_generation", kept.into()),
            ],
        );
    }
}

/// What to do about a listen address that cannot be bound (`for_check`: also when the
/// address is not this host's).
pub(crate) fn bind_hint(e: &std::io::Error, for_check: bool) -> Option<String> {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => {
            Some("another process listens there; is keygate already running?".into())
        }
        std::io::ErrorKind::PermissionDenied => {
            Some("ports below 1024 need privileges; use a higher port".into())
        }
        _ if for_check => Some("listen on an address this host has".into()),
        _ => None,
    }
}
