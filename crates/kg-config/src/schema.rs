/// The type of a setting's value, and how it is parsed from text (env and flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Free text.
    Str,
    /// One of a fixed set of words.
    Enum(&'static [&'static str]),
    /// A whole number within bounds.
    U32 { min: u32, max: u32 },
    /// `true` or `false`.
    Bool,
    /// A list; from text, comma-separated.
    List,
    /// A duration such as `90s`, `15m`, `24h`, `30d`, `1h30m`, or `0`.
    Duration,
    /// A secret: never printed, never serialized, never read from the config file.
    Secret,
}

/// One setting of the schema.
#[derive(Debug)]
pub struct Setting {
    /// `section.name`, as written in the config file.
    pub key: &'static str,
    /// The environment variable that sets it, if any.
    pub env: Option<&'static str>,
    pub kind: Kind,
    /// The built-in default, in the same text form as an environment value.
    pub default: Option<&'static str>,
    /// One line for `config explain --help` and the docs.
    pub doc: &'static str,
}

/// Every setting keygate has. Later features add rows here, nowhere else.
pub static SETTINGS: &[Setting] = &[
    Setting {
        key: "cert.id",
        env: Some("KEYGATE_CERT_ID"),
        kind: Kind::Str,
        default: Some("default"),
        doc: "which managed certificate commands act on",
    },
    Setting {
        key: "cert.method",
        env: Some("KEYGATE_CERT_METHOD"),
        kind: Kind::Enum(&["auto", "tailscale", "mkcert", "local-ca", "self-signed"]),
        default: Some("auto"),
        doc: "how certificates are obtained; auto tries tailscale, then mkcert, then the local CA",
    },
    Setting {
        key: "cert.key",
        env: Some("KEYGATE_CERT_KEY"),
        kind: Kind::Enum(&[
            "ecdsa-p256",
            "ecdsa-p384",
            "ed25519",
            "rsa-2048",
            "rsa-3072",
        ]),
        default: Some("ecdsa-p256"),
        doc: "key type of new certificates",
    },
    Setting {
        key: "cert.days",
        env: Some("KEYGATE_CERT_DAYS"),
        kind: Kind::U32 { min: 1, max: 825 },
        default: Some("90"),
        doc: "lifetime of certificates from the local CA (at most 825, Apple's limit)",
    },
    Setting {
        key: "cert.names",
        env: Some("KEYGATE_CERT_NAMES"),
        kind: Kind::List,
        default: Some(""),
        doc: "names the certificate covers; empty means localhost, this host, 127.0.0.1 and ::1",
    },
    Setting {
        key: "cert.ca_extra_names",
        env: None,
        kind: Kind::List,
        default: Some(""),
        doc: "DNS suffixes the local CA may sign beyond the local namespaces",
    },
    Setting {
        key: "cert.keep_generations",
        env: None,
        kind: Kind::U32 { min: 1, max: 100 },
        default: Some("3"),
        doc: "how many published generations of each certificate are kept",
    },
    Setting {
        key: "cert.renew_before",
        env: Some("KEYGATE_RENEW_BEFORE"),
        kind: Kind::Duration,
        default: None,
        doc: "renew this long before expiry instead of when a third of the lifetime is left",
    },
    Setting {
        key: "cert.deploy_hook",
        env: None,
        kind: Kind::Str,
        default: None,
        doc: "shell command run after each renewal (e.g. `nginx -s reload`), with KEYGATE_CERT_* set",
    },
    Setting {
        key: "token.prefix",
        env: None,
        kind: Kind::Str,
        default: Some("kg"),
        doc: "prefix of new tokens, so that secret scanners can find leaked ones",
    },
    Setting {
        key: "token.default_grace",
        env: None,
        kind: Kind::Duration,
        default: Some("24h"),
        doc: "how long a rotated token keeps working beside its replacement (0: not at all)",
    },
    Setting {
        key: "token.retention",
        env: None,
        kind: Kind::Duration,
        default: Some("30d"),
        doc: "how long `prune` keeps revoked and expired tokens in the store (for audits)",
    },
    Setting {
        key: "age.passphrase",
        env: Some("AGE_PASSPHRASE"),
        kind: Kind::Secret,
        default: None,
        doc: "passphrase for `tokenctl seal --passphrase` and `unseal` (environment only)",
    },
    Setting {
        key: "age.passphrase_fd",
        env: Some("AGE_PASSPHRASE_FD"),
        // Text, not a number: a number setting must have a default, and this one has none.
        kind: Kind::Str,
        default: None,
        doc: "file descriptor number to read the age passphrase from (its first line)",
    },
    Setting {
        key: "server.listen",
        env: Some("KEYGATE_LISTEN"),
        kind: Kind::List,
        default: Some("127.0.0.1:8443"),
        doc: "addresses the server listens on",
    },
    Setting {
        key: "server.cert_id",
        env: None,
        kind: Kind::Str,
        default: Some("default"),
        doc: "the managed certificate the server presents",
    },
    Setting {
        key: "server.plain_http",
        env: None,
        kind: Kind::Bool,
        default: Some("false"),
        doc: "serve plain HTTP instead of HTTPS; loopback addresses only (for a proxy on the same host)",
    },
    Setting {
        key: "server.trusted_proxies",
        env: None,
        kind: Kind::List,
        default: Some(""),
        doc: "proxy CIDRs whose X-Forwarded-For, X-Real-IP and original-URI headers are believed",
    },
    Setting {
        key: "server.required_scopes",
        env: None,
        kind: Kind::List,
        default: Some(""),
        doc: "scopes /auth requires, as \"SCOPE\" (every path) or \"/PATH-PREFIX=SCOPE+SCOPE\"; longest prefix wins",
    },
    Setting {
        key: "server.realm",
        env: None,
        kind: Kind::Str,
        default: Some("keygate"),
        doc: "the realm in WWW-Authenticate",
    },
    Setting {
        key: "server.audit_log",
        env: None,
        kind: Kind::Str,
        default: Some("stderr"),
        doc: "where audit JSON lines go: stderr or a file path (denials are always logged)",
    },
    Setting {
        key: "server.audit_allows",
        env: None,
        kind: Kind::Enum(&["off", "sampled", "all"]),
        default: Some("sampled"),
        doc: "which allowed requests are audited: none, one in 100, or all (all costs throughput)",
    },
    Setting {
        key: "server.max_connections",
        env: None,
        kind: Kind::U32 {
            min: 1,
            max: 1_000_000,
        },
        default: Some("1024"),
        doc: "open connections; when all are open, one waiting for a request gives way (one in a request never does)",
    },
    Setting {
        key: "server.max_connections_per_source",
        env: None,
        kind: Kind::U32 {
            min: 1,
            max: 1_000_000,
        },
        default: Some("256"),
        doc: "open connections one source (an IPv4 address, or an IPv6 /64) may hold (server.trusted_proxies are exempt); beyond it, its own waiting connections give way",
    },
    Setting {
        key: "server.header_timeout",
        env: None,
        kind: Kind::Duration,
        default: Some("10s"),
        doc: "time a client has to send a whole request head, from its first byte (or from connecting)",
    },
    Setting {
        key: "server.idle_timeout",
        env: None,
        kind: Kind::Duration,
        default: Some("75s"),
        doc: "keep-alive connections idle this long are closed; keep it above the proxy's own (nginx: 60s)",
    },
    Setting {
        key: "server.shutdown_timeout",
        env: None,
        kind: Kind::Duration,
        default: Some("10s"),
        doc: "on SIGTERM or SIGINT, how long in-flight requests may take before the server exits",
    },
    Setting {
        key: "server.rate_limit_burst",
        env: None,
        kind: Kind::U32 {
            min: 0,
            max: 1_000_000,
        },
        default: Some("30"),
        doc: "failed token attempts allowed at once per client address and per token id (0: no limit)",
    },
    Setting {
        key: "server.rate_limit_refill",
        env: None,
        kind: Kind::Duration,
        default: Some("1s"),
        doc: "one more failed attempt is allowed per this interval once the burst is used up",
    },
    Setting {
        key: "server.upstream",
        env: Some("KEYGATE_UPSTREAM"),
        kind: Kind::Str,
        default: None,
        doc: "proxy authorized requests to this upstream: http://HOST:PORT[/PATH] on loopback, a private address or a .internal name, or unix:/PATH; unset serves only /auth, /health and /metrics",
    },
    Setting {
        key: "server.audit_retention",
        env: None,
        kind: Kind::Duration,
        default: Some("90d"),
        doc: "how long the people's audit trail in the store (`keygate audit`) keeps sign-ins, refusals and admin changes",
    },
    Setting {
        key: "server.portal_host",
        env: None,
        kind: Kind::Str,
        default: None,
        doc: "the host name of the portal, where people sign in and see their services; [service.NAME] tables with a host get their own origin and enter through a one-time launch ticket from it",
    },
    Setting {
        key: "server.upstream_timeout",
        env: None,
        kind: Kind::Duration,
        default: Some("60s"),
        doc: "how long the upstream may take to connect and answer with response headers (502 after)",
    },
    Setting {
        key: "server.max_request_body_mib",
        env: None,
        kind: Kind::U32 {
            min: 0,
            max: 1_048_576,
        },
        default: Some("64"),
        doc: "largest request body forwarded to the upstream, in MiB (413 beyond; 0: no bodies)",
    },
    Setting {
        key: "server.max_response_body_mib",
        env: None,
        kind: Kind::U32 {
            min: 1,
            max: 1_048_576,
        },
        default: Some("1024"),
        doc: "largest response body relayed from the upstream, in MiB (the response is cut off beyond)",
    },
    Setting {
        key: "server.local_bypass",
        env: None,
        kind: Kind::Enum(&["auto", "true", "false"]),
        default: Some("auto"),
        doc: "let requests of keygate's own user on this host through the proxy without signing in (the kernel names the owner of each loopback connection; relays run by other users never pass); auto: only over HTTPS while every listen address is loopback",
    },
    Setting {
        key: "server.danger_local_bypass_as_root",
        env: None,
        kind: Kind::Bool,
        default: Some("false"),
        doc: "apply the localhost bypass while keygate runs as root: every process of root's on this host then gets in without credentials, relays run as root (sshd, tailscaled, a proxy) included",
    },
    Setting {
        key: "server.session_lifetime",
        env: None,
        kind: Kind::Duration,
        default: Some("12h"),
        doc: "a browser sign-in session ends this long after it began, however active",
    },
    Setting {
        key: "server.session_idle_timeout",
        env: None,
        kind: Kind::Duration,
        default: Some("1h"),
        doc: "a browser sign-in session ends after this long without a request",
    },
    Setting {
        key: "oauth.enabled",
        env: None,
        kind: Kind::Enum(&["auto", "true", "false"]),
        default: Some("auto"),
        doc: "serve the OAuth authorization server (client credentials, JWKS, introspection, revocation); auto: when the state and private directories are writable, so a read-only verifier (a secret volume) still serves /auth",
    },
    Setting {
        key: "oauth.issuer",
        env: Some("KEYGATE_OAUTH_ISSUER"),
        kind: Kind::Str,
        default: Some(""),
        doc: "the issuer URL tokens name and clients discover from (https://HOST[:PORT][/PATH]); empty: this server's own URL, with /.keygate in proxy mode",
    },
    Setting {
        key: "oauth.signing_alg",
        env: None,
        kind: Kind::Enum(&["Ed25519", "ES256"]),
        default: Some("Ed25519"),
        doc: "the algorithm access tokens are signed with (Ed25519 is published as EdDSA)",
    },
    Setting {
        key: "oauth.key_rotation",
        env: None,
        kind: Kind::Duration,
        default: Some("30d"),
        doc: "how long a signing key signs before the next one, published since the last rotation, takes over",
    },
    Setting {
        key: "oauth.access_token_lifetime",
        env: None,
        kind: Kind::Duration,
        default: Some("1h"),
        doc: "lifetime of a person's access token and ID token (authorization code, refresh and device grants)",
    },
    Setting {
        key: "oauth.refresh_lifetime",
        env: None,
        kind: Kind::Duration,
        default: Some("30d"),
        doc: "how long a sign-in's refresh tokens keep working, however often they rotate; a reused spent one ends them at once",
    },
    Setting {
        key: "oauth.client_token_lifetime",
        env: None,
        kind: Kind::Duration,
        default: Some("10m"),
        doc: "lifetime of an access token issued for client credentials",
    },
    Setting {
        key: "server.strip_headers",
        env: None,
        kind: Kind::List,
        default: Some(""),
        doc: "more request headers the proxy removes before forwarding, as NAME or PREFIX* (case-insensitive), besides the identity headers it always removes",
    },
    Setting {
        key: "smtp.host",
        env: None,
        kind: Kind::Str,
        default: None,
        doc: "the SMTP relay password-reset links are sent through; unset, sign-in offers no reset by email",
    },
    Setting {
        key: "smtp.port",
        env: None,
        kind: Kind::U32 { min: 1, max: 65535 },
        default: Some("587"),
        doc: "the relay's port (587 for STARTTLS, 465 for TLS)",
    },
    Setting {
        key: "smtp.security",
        env: None,
        kind: Kind::Enum(&["starttls", "tls", "none"]),
        default: Some("starttls"),
        doc: "how the connection to the relay is protected; none only to a loopback relay",
    },
    Setting {
        key: "smtp.from",
        env: None,
        kind: Kind::Str,
        default: None,
        doc: "the sender of reset mail, e.g. \"keygate <keygate@example.com>\"",
    },
    Setting {
        key: "smtp.username",
        env: None,
        kind: Kind::Str,
        default: None,
        doc: "the user for SMTP authentication, when the relay wants it",
    },
    Setting {
        key: "smtp.password_file",
        env: None,
        kind: Kind::Str,
        default: None,
        doc: "the file holding the SMTP password (never the password itself in the config)",
    },
    Setting {
        key: "test.now",
        env: Some("KEYGATE_TEST_NOW"),
        kind: Kind::Str,
        default: None,
        doc: "for tests only: pretend the current time is this RFC 3339 instant, to age certificates and tokens",
    },
    Setting {
        key: "client.profile",
        env: Some("KEYGATE_PROFILE"),
        kind: Kind::Str,
        default: None,
        doc: "the [profiles.NAME] client commands use (its token_file; for `tokenctl token`, its OAuth client; else \"default\")",
    },
    Setting {
        key: "client.id",
        env: Some("KEYGATE_CLIENT_ID"),
        kind: Kind::Str,
        default: None,
        doc: "the OAuth client id for `tokenctl token` when the profile names none (a CI secret)",
    },
    Setting {
        key: "client.secret",
        env: Some("KEYGATE_CLIENT_SECRET"),
        kind: Kind::Secret,
        default: None,
        doc: "the OAuth client secret for `tokenctl token` when the profile has no client_secret_file (environment only)",
    },
    Setting {
        key: "client.token",
        env: Some("KEYGATE_TOKEN"),
        kind: Kind::Secret,
        default: None,
        doc: "a bearer token for client commands (environment only)",
    },
];

/// Looks a setting up by its `section.name` key.
pub fn setting(key: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.key == key)
}

/// The sections of the config file: those of the settings, plus `profiles`.
pub(crate) fn sections() -> Vec<&'static str> {
    let mut v: Vec<&str> = SETTINGS
        .iter()
        .filter_map(|s| s.key.split_once('.').map(|(a, _)| a))
        .collect();
    v.push("profiles");
    v.push("service");
    v.sort_unstable();
    v.dedup();
    v
}
