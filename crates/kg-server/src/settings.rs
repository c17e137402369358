//! What the server is told to do: resolved from the configuration once, at start-up, and
//! checked before anything binds or loads.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use kg_config::{Config, Locations};
use kg_gateway::upstream::{Upstream, UpstreamError};
use kg_http::audit::{AuditAllows, AuditTarget};
use kg_http::net::Cidr;
use kg_tokens::{Prefix, StorePaths};
use kg_verifier::{Clock, ScopeRules};

/// Everything the server needs, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The addresses to listen on.
    pub listen: Vec<SocketAddr>,
    /// Serve plain HTTP instead of HTTPS.
    pub plain_http: bool,
    /// The managed certificate's id, and its directory (`PRIVATE/certs/ID`).
    pub cert_id: String,
    /// The directory holding the certificate's generations.
    pub cert_dir: PathBuf,
    /// The token store.
    pub store: StorePaths,
    /// The prefix of tokens when there is no store file yet.
    pub prefix: Prefix,
    /// Proxies whose forwarding headers are believed.
    pub trusted_proxies: Vec<Cidr>,
    /// Scopes required per original path.
    pub scopes: ScopeRules,
    /// The realm of `WWW-Authenticate`.
    pub realm: String,
    /// Where audit lines go.
    pub audit: AuditTarget,
    /// Which allows are audited.
    pub audit_allows: AuditAllows,
    /// Concurrent connections.
    pub max_connections: usize,
    /// Open connections one address outside the trusted proxies may hold.
    pub max_connections_per_source: usize,
    /// Time for a request head, from its first byte or from connecting.
    pub header_timeout: Duration,
    /// Idle time after which a keep-alive connection is closed.
    pub idle_timeout: Duration,
    /// Bound on finishing in-flight requests at shutdown.
    pub shutdown_timeout: Duration,
    /// Failed attempts allowed at once per client address and per token id; 0 is no limit.
    pub rate_limit_burst: u32,
    /// One more failed attempt is allowed per this interval.
    pub rate_limit_refill: Duration,
    /// How long the people's audit trail in the store keeps a line.
    pub audit_retention: Duration,
    /// The upstream of the reverse proxy; `None` serves only the verifying endpoints
    /// (unless there are services).
    pub upstream: Option<Upstream>,
    /// The services behind the portal (`[service.NAME]`), each on its own host.
    pub services: Vec<kg_gateway::ServiceRoute>,
    /// What the portal's landing page shows of them.
    pub portal: Option<kg_login::Portal>,
    /// Where password-reset mail goes (`smtp.*`), its password still in its file.
    pub smtp: Option<(kg_mail::Settings, Option<PathBuf>)>,
    /// Time for the upstream to connect and answer with response headers.
    pub upstream_timeout: Duration,
    /// Largest request body forwarded, in bytes.
    pub max_request_body: u64,
    /// Largest response body relayed, in bytes.
    pub max_response_body: u64,
    /// Whether requests of keygate's own user on this host pass the proxy without
    /// credentials (resolved from `auto`: on only while every listen address is loopback
    /// and no proxy is trusted), and who that user is. `None` when off.
    pub local_bypass: Option<kg_gateway::LocalBypass>,
    /// A browser session's absolute lifetime.
    pub session_lifetime: Duration,
    /// A browser session's idle timeout, slid by every request.
    pub session_idle_timeout: Duration,
    /// The store (browser sessions): `state/keygate.db`.
    pub db: PathBuf,
    /// Sign-in's key, which signs session cookies and forms: `private/login.key`.
    pub login_key: PathBuf,
    /// The lock taken to create the key once.
    pub login_lock: PathBuf,
    /// More request headers the proxy removes before forwarding.
    pub strip_headers: kg_gateway::StripHeaders,
    /// The clock expiry is judged by: the binary's one clock, so that the test clock
    /// reaches the server too.
    pub clock: Clock,
    /// `oauth.issuer` when set (checked, without a trailing slash); else the issuer is this
    /// server's own URL, known once it has bound ([`Settings::issuer`]).
    pub oauth_issuer: Option<String>,
    /// `oauth.enabled`: `Some(true)`, `Some(false)`, or `None` for auto.
    pub oauth_enabled: Option<bool>,
    /// `oauth.signing_alg`.
    pub signing_alg: kg_jose::Alg,
    /// `oauth.key_rotation`.
    pub key_rotation: Duration,
    /// `oauth.client_token_lifetime`.
    pub client_token_lifetime: Duration,
    /// `oauth.access_token_lifetime`.
    pub access_token_lifetime: Duration,
    /// `oauth.refresh_lifetime`.
    pub refresh_lifetime: Duration,
    /// The private directory (the signing keys live in `PRIVATE/signing`).
    pub private_dir: PathBuf,
    /// The lock taken to change the signing keys.
    pub signing_lock: PathBuf,
}

/// Whom the localhost bypass lets in ([`Settings::bypass`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bypass<'a> {
    /// Nobody: `server.local_bypass` is off.
    Off,
    /// Nobody: keygate runs as root and `server.danger_local_bypass_as_root` is not set.
    RefusedAsRoot,
    /// The processes of this user (keygate's own) on this host, over loopback.
    User(&'a str),
}

impl Bypass<'_> {
    /// One line saying whom, for `keygate up`, `keygate check` and the start log.
    pub fn says(&self) -> String {
        match self {
            Bypass::Off => "local requests need credentials too".to_owned(),
            Bypass::RefusedAsRoot => "local requests need credentials too: keygate runs as \
                                      root, whose processes include relays for others \
                                      (server.danger_local_bypass_as_root)"
                .to_owned(),
            Bypass::User(name) => format!(
                "only {name}'s own processes on this host skip sign-in, over loopback (not \
                 other users, not root, not relays another user runs)"
            ),
        }
    }
}

/// A setting that cannot work. Every variant is a configuration error (exit 2).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// A listen address that is not `IP:PORT` or `localhost:PORT`.
    #[error(
        "invalid listen address '{addr}': expected IP:PORT or localhost:PORT, e.g. 127.0.0.1:8443 or [::1]:8443"
    )]
    BadListen {
        /// What was given.
        addr: String,
    },
    /// An issuer URL tokens could not name.
    #[error(
        "invalid oauth.issuer '{value}': expected https://HOST[:PORT][/PATH] (http only for \
         127.0.0.1, [::1] or localhost), without a query or fragment"
    )]
    BadIssuer {
        /// What was given.
        value: String,
    },
    /// Nothing to listen on.
    #[error("no listen address: server.listen is empty")]
    NoListen,
    /// Plain HTTP on an address other hosts can reach.
    #[error(
        "refusing plain HTTP on {addr}: tokens would cross the network in clear text; \
         plain HTTP is for a proxy on the same host (loopback addresses)"
    )]
    PlainNotLoopback {
        /// The address.
        addr: SocketAddr,
    },
    /// A trusted proxy that is not a CIDR.
    #[error("invalid trusted proxy '{value}': expected an IP address or a CIDR such as 10.0.0.0/8")]
    BadCidr {
        /// What was given.
        value: String,
    },
    /// A required-scopes rule that does not parse.
    #[error(transparent)]
    BadScopeRule(#[from] kg_verifier::BadRule),
    /// A realm that cannot be written inside a quoted header parameter.
    #[error(
        "invalid server.realm: it must be 1 to 64 printable ASCII characters without '\"' or '\\'"
    )]
    BadRealm,
    /// A timeout of zero where zero would make the server useless.
    #[error("{key} must be more than 0")]
    ZeroTimeout {
        /// The setting.
        key: &'static str,
    },
    /// The configured token prefix is invalid.
    #[error("invalid token.prefix: {0}")]
    BadPrefix(String),
    /// An empty audit log path.
    #[error("server.audit_log is empty: give stderr or a file path")]
    NoAuditLog,
    /// A `[service.NAME]` table that cannot be served.
    #[error("invalid service.{name}: {message}")]
    BadService {
        /// The service.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// An upstream that is malformed or could be reached around the proxy.
    #[error("invalid server.upstream '{value}': {source}")]
    BadUpstream {
        /// What was given (credentials, if any, removed).
        value: String,
        /// What is wrong.
        source: UpstreamError,
    },
    /// A `server.strip_headers` entry that is no header name.
    #[error(
        "invalid server.strip_headers entry '{value}': expected a header name or a prefix ending in *"
    )]
    BadStripHeader {
        /// The entry.
        value: String,
    },
}

impl SettingsError {
    /// A one-line recommendation.
    pub fn hint(&self) -> Option<String> {
        match self {
            SettingsError::PlainNotLoopback { .. } => Some(
                "serve HTTPS (the default), listen on 127.0.0.1 or [::1], or pass \
                 --danger-plain-http-non-loopback if the network is trusted"
                    .to_owned(),
            ),
            SettingsError::NoListen => {
                Some("set server.listen, e.g. --listen 127.0.0.1:8443".to_owned())
            }
            SettingsError::BadScopeRule(_) => Some(
                "write \"SCOPE\" for every path, or \"/PREFIX=SCOPE\" (several scopes joined by +)"
                    .to_owned(),
            ),
            SettingsError::BadUpstream { source, .. } => Some(source.hint().to_owned()),
            SettingsError::BadStripHeader { .. } => {
                Some("for example strip_headers = [\"X-Corp-User\", \"X-Corp-*\"]".to_owned())
            }
            _ => None,
        }
    }
}

/// `IP:PORT`, or `localhost:PORT` for 127.0.0.1 (what the URLs keygate prints say, and what
/// every resolver answers first or falls back to); no other name, since a name that
/// resolves elsewhere later would move the listener.
fn listen_addr(text: &str) -> Option<SocketAddr> {
    if let Some(port) = text
        .strip_prefix("localhost:")
        .or_else(|| text.strip_prefix("LOCALHOST:"))
    {
        return port
            .parse::<u16>()
            .ok()
            .map(|p| SocketAddr::from(([127, 0, 0, 1], p)));
    }
    text.parse().ok()
}

impl Settings {
    /// Resolves the server's settings from the configuration.
    ///
    /// `danger_plain_non_loopback` is the `--danger-plain-http-non-loopback` flag: it allows
    /// plain HTTP on addresses other than loopback. `clock` is the binary's clock.
    pub fn from_config(
        locations: &Locations,
        config: &Config,
        danger_plain_non_loopback: bool,
        clock: Clock,
    ) -> Result<Settings, SettingsError> {
        let listen = config
            .list("server.listen")
            .iter()
            .map(|a| {
                listen_addr(a.trim()).ok_or_else(|| SettingsError::BadListen { addr: a.clone() })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if listen.is_empty() {
            return Err(SettingsError::NoListen);
        }
        let plain_http = config.bool("server.plain_http");
        if plain_http
            && !danger_plain_non_loopback
            && let Some(addr) = listen.iter().find(|a| !a.ip().to_canonical().is_loopback())
        {
            return Err(SettingsError::PlainNotLoopback { addr: *addr });
        }
        let trusted_proxies = config
            .list("server.trusted_proxies")
            .iter()
            .map(|v| {
                v.parse::<Cidr>()
                    .map_err(|()| SettingsError::BadCidr { value: v.clone() })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let realm = config.str("server.realm").unwrap_or("keygate").to_owned();
        if realm.is_empty()
            || realm.len() > 64
            || !realm
                .bytes()
                .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
        {
            return Err(SettingsError::BadRealm);
        }
        let scopes = ScopeRules::parse(config.list("server.required_scopes"), &realm)?;
        let audit = match config.str("server.audit_log").unwrap_or("stderr").trim() {
            "" => return Err(SettingsError::NoAuditLog),
            "stderr" | "-" => AuditTarget::Stderr,
            path => AuditTarget::File(PathBuf::from(path)),
        };
        let audit_allows = match config.str("server.audit_allows") {
            Some("off") => AuditAllows::Off,
            Some("all") => AuditAllows::All,
            _ => AuditAllows::Sampled,
        };
        let duration = |key: &'static str| -> Result<Duration, SettingsError> {
            let d = config.duration(key).unwrap_or_default();
            if d.is_zero() {
                return Err(SettingsError::ZeroTimeout { key });
            }
            Ok(d)
        };
        let prefix_text = config.str("token.prefix").unwrap_or("kg");
        let prefix =
            Prefix::new(prefix_text).map_err(|e| SettingsError::BadPrefix(e.to_string()))?;
        let cert_id = config.str("server.cert_id").unwrap_or("default").to_owned();
        let upstream = match config.str("server.upstream").map(str::trim) {
            None | Some("") => None,
            Some(text) => {
                Some(
                    Upstream::parse(text).map_err(|source| SettingsError::BadUpstream {
                        value: kg_gateway::upstream::redact(text),
                        source,
                    })?,
                )
            }
        };
        let (services, portal) = services(config, realm_text(config))?;
        let smtp = smtp(config)?;
        let strip_headers = kg_gateway::StripHeaders::parse(config.list("server.strip_headers"))
            .map_err(|value| SettingsError::BadStripHeader { value })?;
        let all_loopback = listen.iter().all(|a| a.ip().to_canonical().is_loopback());
        // `auto` is off for plain HTTP too: that listener is for a proxy on this host, and a
        // proxy that adds no forwarding header (a bare nginx `proxy_pass`, a TCP forwarder)
        // would make every request from anywhere look local.
        let local_bypass = match config.str("server.local_bypass") {
            Some("true") => true,
            Some("false") => false,
            _ => all_loopback && !plain_http,
        } && trusted_proxies.is_empty();
        let local_bypass = local_bypass.then(|| {
            let uid = kg_http::peer_owner::euid();
            kg_gateway::LocalBypass {
                uid,
                name: kg_http::peer_owner::login_name(uid),
                as_root: config.bool("server.danger_local_bypass_as_root"),
            }
        });
        let oauth_issuer = match config.str("oauth.issuer").map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(check_issuer(text)?),
        };
        let signing_alg = match config.str("oauth.signing_alg") {
            Some("ES256") => kg_jose::Alg::Es256,
            _ => kg_jose::Alg::EdDsa,
        };
        const MIB: u64 = 1024 * 1024;
        let oauth_enabled = match config.str("oauth.enabled") {
            Some("true") => Some(true),
            Some("false") => Some(false),
            _ => None,
        };
        Ok(Settings {
            oauth_enabled,
            oauth_issuer,
            signing_alg,
            key_rotation: duration("oauth.key_rotation")?,
            client_token_lifetime: duration("oauth.client_token_lifetime")?,
            access_token_lifetime: duration("oauth.access_token_lifetime")?,
            refresh_lifetime: duration("oauth.refresh_lifetime")?,
            private_dir: locations.private_dir.clone(),
            signing_lock: locations.lock_file("signing"),
            listen,
            plain_http,
            cert_dir: locations.cert_dir(&cert_id),
            cert_id,
            store: StorePaths::new(&locations.state_dir, &locations.private_dir),
            db: locations.state_dir.join(DB_FILE),
            login_key: locations.private_dir.join("login.key"),
            login_lock: locations.lock_file("login"),
            prefix,
            trusted_proxies,
            scopes,
            realm,
            audit,
            audit_allows,
            max_connections: config.u32("server.max_connections") as usize,
            max_connections_per_source: config.u32("server.max_connections_per_source") as usize,
            header_timeout: duration("server.header_timeout")?,
            idle_timeout: duration("server.idle_timeout")?,
            shutdown_timeout: duration("server.shutdown_timeout")?,
            rate_limit_burst: config.u32("server.rate_limit_burst"),
            rate_limit_refill: duration("server.rate_limit_refill")?,
            audit_retention: duration("server.audit_retention")?,
            upstream,
            services,
            portal,
            smtp,
            upstream_timeout: duration("server.upstream_timeout")?,
            max_request_body: u64::from(config.u32("server.max_request_body_mib")) * MIB,
            max_response_body: u64::from(config.u32("server.max_response_body_mib")) * MIB,
            local_bypass,
            session_lifetime: duration("server.session_lifetime")?,
            session_idle_timeout: duration("server.session_idle_timeout")?,
            strip_headers,
            clock,
        })
    }

    /// The issuer URL once the server listens on `addrs`: `oauth.issuer`, or the URL a
    /// local client reaches the first address at (`localhost` for loopback and "any"
    /// addresses, which the certificate covers), with `/.keygate` in proxy mode, whose
    /// other paths belong to the upstream.
    pub fn issuer(&self, addrs: &[SocketAddr]) -> String {
        if let Some(i) = &self.oauth_issuer {
            return i.clone();
        }
        let scheme = if self.plain_http { "http" } else { "https" };
        let base = addrs
            .first()
            .map_or_else(String::new, |a| origin(scheme, *a));
        if self.proxying() {
            format!("{base}{}", OAUTH_PREFIX)
        } else {
            base
        }
    }

    /// Where clients discover the authorization server once it listens on `addrs`.
    pub fn discovery(&self, addrs: &[SocketAddr]) -> String {
        format!(
            "{}{}",
            self.issuer(addrs),
            kg_oauth::provider::OIDC_DISCOVERY
        )
    }

    /// Whether to serve the authorization server: as `oauth.enabled` says, and under auto
    /// when the state and private directories are writable (a verifier on a read-only
    /// secret volume serves `/auth` without it). In proxy mode the store is needed anyway.
    pub fn oauth_on(&self) -> bool {
        self.oauth_enabled.unwrap_or_else(|| {
            let state = self.db.parent().unwrap_or(&self.db);
            kg_fs::writable_dir(state) && kg_fs::writable_dir(&self.private_dir)
        })
    }

    /// The authorization server's part, once the server listens on `addrs`.
    pub fn oauth(&self, addrs: &[SocketAddr]) -> kg_oauth::Settings {
        let d =
            |d: Duration, fallback: time::Duration| time::Duration::try_from(d).unwrap_or(fallback);
        let client = d(self.client_token_lifetime, time::Duration::minutes(10));
        let people = d(self.access_token_lifetime, time::Duration::HOUR);
        kg_oauth::Settings {
            issuer: self.issuer(addrs),
            client_token_lifetime: client,
            people_token_lifetime: people,
            refresh_lifetime: d(self.refresh_lifetime, time::Duration::days(30)),
            signing_alg: self.signing_alg,
            keys: kg_oauth::keyring::KeyRing::standard(
                &self.private_dir,
                self.signing_lock.clone(),
                self.signing_alg,
                d(self.key_rotation, time::Duration::days(30)),
                &[client, people],
            ),
        }
    }

    /// The verifier's part.
    pub fn verifier(&self) -> kg_verifier::Settings {
        kg_verifier::Settings {
            trusted_proxies: self.trusted_proxies.clone(),
            scopes: self.scopes.clone(),
            realm: self.realm.clone(),
            rate_limit_burst: self.rate_limit_burst,
            rate_limit_refill: self.rate_limit_refill,
            clock: self.clock.clone(),
            audit_retention: self.audit_retention,
        }
    }

    /// Sign-in's part.
    pub fn login(&self) -> kg_login::Settings {
        kg_login::Settings {
            secure: !self.plain_http,
            realm: self.realm.clone(),
            session_lifetime: self.session_lifetime,
            session_idle_timeout: self.session_idle_timeout,
        }
    }

    /// Whether this is proxy mode: an upstream, or services behind the portal.
    pub fn proxying(&self) -> bool {
        self.upstream.is_some() || !self.services.is_empty()
    }

    /// The gateway's part, in proxy mode.
    pub fn gateway(&self) -> Option<kg_gateway::Settings> {
        if !self.proxying() {
            return None;
        }
        Some(kg_gateway::Settings {
            upstream: self.upstream.clone(),
            services: self.services.clone(),
            portal_host: self.portal.as_ref().map(|p| p.host.clone()),
            upstream_timeout: self.upstream_timeout,
            max_request_body: self.max_request_body,
            max_response_body: self.max_response_body,
            local_bypass: self.local_bypass.clone(),
            https: !self.plain_http,
            strip_headers: self.strip_headers.clone(),
        })
    }

    /// Whom the localhost bypass lets in.
    pub fn bypass(&self) -> Bypass<'_> {
        match &self.local_bypass {
            None => Bypass::Off,
            Some(b) if !b.grants() => Bypass::RefusedAsRoot,
            Some(b) => Bypass::User(&b.name),
        }
    }

    /// The login name the bypass lets in, if it lets anyone in.
    pub fn bypass_user(&self) -> Option<&str> {
        match self.bypass() {
            Bypass::User(name) => Some(name),
            _ => None,
        }
    }

    /// Whether `server.required_scopes` can only ever ask for every scope: they match the
    /// original path, which is believed only from trusted proxies, and none is configured
    /// (in proxy mode the path is the request's own, so they work as written).
    pub fn scopes_need_every_scope(&self) -> bool {
        !self.scopes.is_empty() && self.trusted_proxies.is_empty() && !self.proxying()
    }
}

/// Where the authorization server's paths live in proxy mode (the issuer's path there):
/// keygate's own prefix, beside sign-in.
pub const OAUTH_PREFIX: &str = crate::router::OWN;

/// `scheme://host:port` for a client on this host.
pub fn origin(scheme: &str, a: SocketAddr) -> String {
    let ip = a.ip();
    if ip.is_loopback() || ip.is_unspecified() {
        format!("{scheme}://localhost:{}", a.port())
    } else if ip.is_ipv6() {
        format!("{scheme}://[{ip}]:{}", a.port())
    } else {
        format!("{scheme}://{ip}:{}", a.port())
    }
}

/// `oauth.issuer`: an https URL (http only for loopback) with no query, fragment or
/// credentials; a trailing slash is dropped, because tokens must name it exactly.
fn check_issuer(text: &str) -> Result<String, SettingsError> {
    let bad = || SettingsError::BadIssuer {
        value: text.to_owned(),
    };
    let rest = text
        .strip_prefix("https://")
        .or_else(|| {
            text.strip_prefix("http://").filter(|r| {
                r.starts_with("127.0.0.1") || r.starts_with("[::1]") || r.starts_with("localhost")
            })
        })
        .ok_or_else(bad)?;
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty()
        || host.contains('@')
        || text.contains(['?', '#'])
        || text.bytes().any(|b| b <= b' ' || b == 0x7f)
        || text.len() > 512
    {
        return Err(bad());
    }
    Ok(text.trim_end_matches('/').to_owned())
}

/// The store's file name in the state directory.
pub const DB_FILE: &str = kg_store::DB_FILE;

/// The `smtp.*` settings, when `smtp.host` is set: a sender is needed then.
fn smtp(
    config: &kg_config::Config,
) -> Result<Option<(kg_mail::Settings, Option<PathBuf>)>, SettingsError> {
    let Some(host) = config
        .str("smtp.host")
        .map(str::trim)
        .filter(|h| !h.is_empty())
    else {
        return Ok(None);
    };
    let Some(from) = config
        .str("smtp.from")
        .map(str::trim)
        .filter(|f| !f.is_empty())
    else {
        return Err(SettingsError::BadService {
            name: "smtp".into(),
            message: "smtp.from must name the sender of reset mail when smtp.host is set".into(),
        });
    };
    let security = match config.str("smtp.security") {
        Some("tls") => kg_mail::Security::Tls,
        Some("none") => kg_mail::Security::None,
        _ => kg_mail::Security::StartTls,
    };
    let settings = kg_mail::Settings {
        host: host.to_owned(),
        port: config.u32("smtp.port") as u16,
        security,
        from: from.to_owned(),
        credentials: config
            .str("smtp.username")
            .map(|u| (u.to_owned(), zeroize::Zeroizing::new(String::new()))),
    };
    Ok(Some((
        settings,
        config.str("smtp.password_file").map(PathBuf::from),
    )))
}

fn realm_text(config: &kg_config::Config) -> String {
    config.str("server.realm").unwrap_or("keygate").to_owned()
}

/// The `[service.NAME]` tables as the gateway and the portal need them, checked: each host
/// once, not the portal's, an upstream the proxy may reach, groups and scopes well formed,
/// and a portal to enter them from.
fn services(
    config: &kg_config::Config,
    realm: String,
) -> Result<(Vec<kg_gateway::ServiceRoute>, Option<kg_login::Portal>), SettingsError> {
    let portal_host = config
        .str("server.portal_host")
        .map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase())
        .filter(|h| !h.is_empty());
    let mut routes: Vec<kg_gateway::ServiceRoute> = Vec::new();
    let mut shown = Vec::new();
    for (name, s) in config.services() {
        let bad = |message: String| SettingsError::BadService {
            name: name.to_owned(),
            message,
        };
        if routes.iter().any(|r| r.host == s.host) || portal_host.as_deref() == Some(&s.host) {
            return Err(bad(format!(
                "host '{}' is another service's or the portal's; each service needs a host of its own",
                s.host
            )));
        }
        let upstream =
            Upstream::parse(s.upstream.trim()).map_err(|e| bad(format!("upstream: {e}")))?;
        for g in &s.groups {
            kg_accounts::names::check_group(g).map_err(|e| bad(e.to_string()))?;
        }
        let scopes = if s.scopes.is_empty() {
            None
        } else {
            Some(
                kg_verifier::Requirement::all_of(&s.scopes, &realm)
                    .ok_or_else(|| bad("scopes: each must be an RFC 6749 scope token".into()))?,
            )
        };
        routes.push(kg_gateway::ServiceRoute {
            name: name.to_owned(),
            host: s.host.clone(),
            upstream,
            groups: s.groups.clone(),
            scopes,
        });
        shown.push(kg_login::PortalService {
            name: name.to_owned(),
            host: s.host.clone(),
            groups: s.groups.clone(),
            description: s.description.clone(),
        });
    }
    let portal = match (portal_host, routes.is_empty()) {
        (Some(host), _) => Some(kg_login::Portal {
            host,
            services: shown,
        }),
        (None, true) => None,
        (None, false) => {
            return Err(SettingsError::BadService {
                name: routes[0].name.clone(),
                message:
                    "services are entered from the portal: set server.portal_host to its host name"
                        .into(),
            });
        }
    };
    Ok((routes, portal))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_are_ip_and_port_or_localhost_and_port() {
        let ok = [
            ("127.0.0.1:8443", "127.0.0.1:8443"),
            ("[::1]:8443", "[::1]:8443"),
            ("0.0.0.0:443", "0.0.0.0:443"),
            ("localhost:8443", "127.0.0.1:8443"),
        ];
        for (text, want) in ok {
            assert_eq!(
                listen_addr(text).map(|a| a.to_string()).as_deref(),
                Some(want),
                "{text}"
            );
        }
        for bad in [
            "localhost",
            "localhost:",
            "localhost:99999",
            "example.com:443",
            "8443",
            ":8443",
        ] {
            assert_eq!(listen_addr(bad), None, "{bad}");
        }
    }
}
