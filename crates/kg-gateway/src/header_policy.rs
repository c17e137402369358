//! What the upstream sees: the header policy of the reverse proxy, in one table-tested
//! function (see the crate doc, "What the upstream sees").
//!
//! # Identity headers
//!
//! An upstream behind an auth proxy trusts some header to name the user. keygate sets its
//! own (`X-Auth-Request-User`, `-Token-Id`, `-Scopes`) and removes, from every request and
//! whoever sent it (a trusted proxy passes on what its client sent), every header of the
//! identity families other auth proxies use, so that an app configured for one of them
//! cannot be told a name by a client:
//!
//! | family | removed |
//! |---|---|
//! | oauth2-proxy, nginx `auth_request` | `X-Auth-Request-*`, `X-Forwarded-User`, `-Email`, `-Groups`, `-Preferred-Username`, `-Access-Token`, `Gap-Auth` |
//! | Authelia, Apache, Kubernetes front proxy | `Remote-*`, `X-Remote-*` |
//! | Grafana auth proxy | `X-Webauth-*` |
//! | Pomerium | `X-Pomerium-*` |
//! | Cloudflare Access | `Cf-Access-*` |
//! | Tailscale serve | `Tailscale-*` |
//! | Google IAP | `X-Goog-Authenticated-User-*`, `X-Goog-Iap-*` |
//! | AWS ALB | `X-Amzn-Oidc-*`, `X-Amzn-Mtls-*` |
//! | Azure App Service | `X-Ms-Client-Principal*`, `X-Ms-Token-*` |
//! | TLS client certificates | `X-Ssl-Client-*`, `Ssl-Client-*`, `X-Client-Cert*`, `X-Client-Verify`, `X-Client-Dn`, `X-Arr-Clientcert`, `X-Forwarded-Client-Cert`, `X-Forwarded-Tls-Client-Cert*` |
//! | authentik, Vouch, Kong, Keycloak Gatekeeper, ngrok, Teleport, Sandstorm, mod_auth_openidc, Shibboleth, Caddy security | `X-Authentik-*`, `X-Vouch-*`, `X-Consumer-*`, `X-Credential-Identifier`, `X-Anonymous-Consumer`, `X-Userinfo`, `X-Auth-Username`, `-Userid`, `-Email`, `-Roles`, `-Groups`, `-Subject`, `Ngrok-Auth-*`, `Teleport-Jwt-*`, `X-Sandstorm-*`, `Oidc-*`, `Shib-*`, `X-Token-User-*`, `X-Token-Subject` |
//! | generic | `X-Authenticated-*`, `X-User`, `X-User-Id`, `-Name`, `-Email`, `-Groups`, `-Roles`, `X-Username`, `X-Userid`, `X-Email`, `X-Jwt-Assertion`, `X-Jwt-Payload` |
//!
//! Of `X-Forwarded-*`, only `-For` (rebuilt by keygate), `-Proto`, `-Host`, `-Port`,
//! `-Server`, `-Ssl` and `-Scheme` pass, and only from a trusted proxy; every other one is
//! dropped. Any name with an underscore is dropped (CGI servers read `_` as `-`), and so is
//! any name listed in `server.strip_headers` (`NAME` or `PREFIX*`), for an app that trusts
//! a header of its own. The URL-rewrite headers are in [`REWRITE_HEADERS`].

use std::net::IpAddr;

use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::http::request::Parts;
use kg_http::net::{self, X_FORWARDED_FOR};

/// Request headers a client must never be able to set for the upstream: identity headers
/// that upstreams are commonly configured to trust from an auth proxy. Families whose
/// members share a prefix are in [`IDENTITY_PREFIXES`]; `X-Forwarded-*` identity headers
/// (oauth2-proxy's, Envoy's `X-Forwarded-Client-Cert`, Traefik's
/// `X-Forwarded-Tls-Client-Cert`) are named here and are outside [`FORWARDED_KEPT`] too.
const IDENTITY_HEADERS: &[&str] = &[
    // oauth2-proxy (dropped also as `X-Forwarded-*` outside `FORWARDED_KEPT`).
    "x-forwarded-user",
    "x-forwarded-email",
    "x-forwarded-groups",
    "x-forwarded-preferred-username",
    "x-forwarded-access-token",
    "x-forwarded-client-cert",
    // Kubernetes' front proxy, Apache's and many apps' `REMOTE_USER` convention.
    "x-remote-user",
    // oauth2-proxy's older upstream header.
    "gap-auth",
    // Generic names apps read.
    "x-user",
    "x-user-id",
    "x-user-name",
    "x-user-email",
    "x-user-groups",
    "x-user-roles",
    "x-username",
    "x-userid",
    "x-email",
    // Keycloak Gatekeeper (louketo-proxy).
    "x-auth-username",
    "x-auth-userid",
    "x-auth-email",
    "x-auth-roles",
    "x-auth-groups",
    "x-auth-subject",
    // Kong.
    "x-credential-identifier",
    "x-anonymous-consumer",
    "x-userinfo",
    // JWTs handed on by API gateways (WSO2, Ambassador, Istio).
    "x-jwt-assertion",
    "x-jwt-payload",
    // Caddy security (authcrunch).
    "x-token-subject",
    // Client certificates (Puppet's conventions, Azure App Service).
    "x-client-verify",
    "x-client-dn",
    "x-arr-clientcert",
    // keygate's correlation id.
    "x-request-id",
];
/// Identity header families, by prefix.
const IDENTITY_PREFIXES: &[&str] = &[
    // oauth2-proxy, nginx's auth_request convention, and keygate's own.
    "x-auth-request-",
    // Authelia (`Remote-User`, `-Groups`, `-Email`, `-Name`).
    "remote-",
    // Kubernetes' front proxy (`X-Remote-Group`, `X-Remote-Extra-*`), and the rest.
    "x-remote-",
    // Grafana's auth proxy.
    "x-webauth-",
    // Tailscale serve (`Tailscale-User-Login`, `-Name`, `-Profile-Pic`,
    // `Tailscale-App-Capabilities`).
    "tailscale-",
    // Pomerium (`X-Pomerium-Jwt-Assertion`, `X-Pomerium-Claim-*`).
    "x-pomerium-",
    // Cloudflare Access (`Cf-Access-Authenticated-User-Email`, `Cf-Access-Jwt-Assertion`).
    "cf-access-",
    // Google IAP.
    "x-goog-authenticated-user-",
    "x-goog-iap-",
    // AWS ALB: OIDC and mutual TLS.
    "x-amzn-oidc-",
    "x-amzn-mtls-",
    // Azure App Service authentication.
    "x-ms-client-principal",
    "x-ms-token-",
    // TLS client certificates as nginx, HAProxy, Apache and GCP pass them on.
    "x-ssl-client-",
    "ssl-client-",
    "x-client-cert",
    // authentik, Vouch, Kong consumers, ngrok, Teleport, Sandstorm, mod_auth_openidc,
    // Shibboleth, Caddy security.
    "x-authentik-",
    "x-vouch-",
    "x-consumer-",
    "ngrok-auth-",
    "teleport-jwt-",
    "x-sandstorm-",
    "oidc-",
    "shib-",
    "x-token-user-",
    // `X-Authenticated-User`, `-Userid` (Kong), `-Groups`, `-Scope`.
    "x-authenticated-",
];

/// The `X-Forwarded-*` headers a trusted proxy's word is passed on in: how the client
/// connected. Every other `X-Forwarded-*` header (identities, client certificates, the
/// rewrites of [`REWRITE_HEADERS`]) is dropped, whoever sent it; `X-Forwarded-For` is
/// rebuilt by keygate.
const FORWARDED_KEPT: &[&str] = &[
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-server",
    "x-forwarded-ssl",
    "x-forwarded-scheme",
];

/// Hop-by-hop headers (RFC 9110 section 7.6.1, plus the legacy ones proxies also drop).
const HOP_BY_HOP: [HeaderName; 9] = [
    HeaderName::from_static("http2-settings"),
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// Headers that frameworks or their middleware read as the real request target, or as a
/// part of it to cut off: the upstream would route a path other than the one keygate
/// judged, so none is forwarded, whoever sent it (a trusted proxy passes on what its
/// client sent). `X-Original-URL` and `X-Rewrite-URL`: IIS' URL Rewrite convention,
/// honoured by Zend/Laminas and Symfony before CVE-2018-14773; `X-Original-URI` and
/// `X-Original-Method`: nginx's `auth_request` convention, meant for keygate's `/auth`
/// only; `X-Forwarded-Uri`, `-Path`, `-Method`: Traefik's and Kong's; `X-Envoy-Original-Path`;
/// `X-Script-Name` and `X-Forwarded-Prefix`: the prefix middlewares of Flask and Django
/// recipes cut from `PATH_INFO`, so that `/public/admin` with a prefix of `/public` routes
/// to `/admin`. An app mounted under a prefix takes it from its own configuration.
const REWRITE_HEADERS: &[&str] = &[
    "x-original-url",
    "x-rewrite-url",
    "x-original-uri",
    "x-original-method",
    "x-forwarded-uri",
    "x-forwarded-path",
    "x-forwarded-method",
    "x-forwarded-prefix",
    "x-envoy-original-path",
    "x-script-name",
];

/// More request headers to remove before forwarding (`server.strip_headers`): exact names
/// and, ending in `*`, prefixes; case-insensitive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StripHeaders {
    names: Vec<String>,
    prefixes: Vec<String>,
}

impl StripHeaders {
    /// Parses `server.strip_headers`; an entry that is no header name (or `NAME*`) is
    /// returned as the error.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<StripHeaders, String> {
        let mut out = StripHeaders::default();
        for entry in entries {
            let e = entry.as_ref().trim();
            let (name, prefix) = match e.strip_suffix('*') {
                Some(p) => (p, true),
                None => (e, false),
            };
            // RFC 9110 `token`; at least one character before a `*`.
            let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'+-.^_`|~".contains(&b);
            if name.is_empty() || !name.bytes().all(tchar) {
                return Err(e.to_owned());
            }
            let name = name.to_ascii_lowercase();
            if prefix {
                out.prefixes.push(name);
            } else {
                out.names.push(name);
            }
        }
        Ok(out)
    }

    fn matches(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name) || self.prefixes.iter().any(|p| name.starts_with(p))
    }
}

pub(crate) const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub(crate) const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
pub(crate) const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What the policy needs to know besides the client's headers.
#[derive(Debug)]
pub(crate) struct Forwarding<'a> {
    /// The socket peer.
    pub peer: IpAddr,
    /// Whether the peer is a trusted proxy (its forwarding headers are believed).
    pub trusted: bool,
    /// How the client connected: `http` or `https`.
    pub scheme: &'static str,
    /// keygate's correlation id, as `X-Request-Id`.
    pub request_id: &'a str,
    /// The upstream's authority, for `Host` when the client sent none.
    pub upstream_authority: &'a str,
    /// The identity headers keygate sets, for a request let in by a token.
    pub identity: Option<&'a [(HeaderName, HeaderValue)]>,
    /// Whether `Authorization` carried keygate's own credential.
    pub drop_authorization: bool,
    /// The protocol of a WebSocket handshake being forwarded.
    pub upgrade: Option<&'a HeaderValue>,
    /// `server.strip_headers`.
    pub strip: &'a StripHeaders,
}

/// The headers an authorized request is forwarded with (keygate's cookies are removed by
/// sign-in, which knows their names).
pub(crate) fn upstream_headers(parts: &Parts, f: &Forwarding<'_>) -> HeaderMap {
    let trusted = f.trusted;
    let mut headers = HeaderMap::with_capacity(parts.headers.len() + 8);
    let named_by_connection = connection_tokens(&parts.headers);
    let mut client_xff: Option<String> = None;
    for (name, value) in &parts.headers {
        let n = name.as_str();
        // Many servers (WSGI and CGI, Puma, uWSGI) read `X_Auth_Request_User` as
        // `X-Auth-Request-User`: a name with an underscore could smuggle any identity
        // header past the checks below, so none passes (nginx's default, too).
        if n.contains('_') {
            continue;
        }
        if HOP_BY_HOP.contains(name)
            || name == header::UPGRADE
            || named_by_connection.iter().any(|c| c.eq_ignore_ascii_case(n))
            || is_identity_header(n)
            || f.strip.matches(n)
            || REWRITE_HEADERS.contains(&n)
            || (n.starts_with("x-forwarded-") && name != X_FORWARDED_FOR && !FORWARDED_KEPT.contains(&n))
            || name == header::HOST
            // keygate answered any `100-continue` itself when it read the body.
            || name == header::EXPECT
        {
            continue;
        }
        if name == X_FORWARDED_FOR {
            if trusted && let Ok(v) = value.to_str() {
                client_xff = Some(match client_xff {
                    Some(prev) => format!("{prev}, {v}"),
                    None => v.to_owned(),
                });
            }
            continue;
        }
        if n.starts_with("x-forwarded-")
            || n == "forwarded"
            || n == "x-real-ip"
            || net::CLIENT_ADDRESS_HEADERS.contains(&n)
        {
            // Believed only from a trusted proxy.
            if !trusted {
                continue;
            }
        }
        if name == header::AUTHORIZATION && f.drop_authorization {
            continue;
        }
        headers.append(name.clone(), value.clone());
    }
    let host = parts
        .headers
        .get(header::HOST)
        .cloned()
        .or_else(|| {
            parts
                .uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        })
        .or_else(|| HeaderValue::from_str(f.upstream_authority).ok())
        .unwrap_or(HeaderValue::from_static("localhost"));
    let xff = match client_xff {
        Some(prev) => format!("{prev}, {}", f.peer),
        None => f.peer.to_string(),
    };
    if let Ok(v) = HeaderValue::from_str(&xff) {
        headers.insert(X_FORWARDED_FOR, v);
    }
    if !(trusted && headers.contains_key(&X_FORWARDED_PROTO)) {
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(f.scheme));
    }
    if !(trusted && headers.contains_key(&X_FORWARDED_HOST)) {
        headers.insert(X_FORWARDED_HOST, host.clone());
    }
    headers.insert(header::HOST, host);
    if let Ok(v) = HeaderValue::from_str(f.request_id) {
        headers.insert(X_REQUEST_ID, v);
    }
    for (h, v) in f.identity.unwrap_or_default() {
        headers.insert(h.clone(), v.clone());
    }
    if let Some(proto) = f.upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, proto.clone());
    }
    headers
}

pub(crate) fn is_identity_header(name: &str) -> bool {
    IDENTITY_HEADERS.contains(&name) || IDENTITY_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// The header names listed in `Connection`.
pub(crate) fn connection_tokens(h: &HeaderMap) -> Vec<String> {
    h.get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect()
}

pub(crate) fn strip_hop_by_hop(h: &mut HeaderMap) {
    for name in connection_tokens(h) {
        if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
            h.remove(name);
        }
    }
    for name in &HOP_BY_HOP {
        h.remove(name);
    }
    h.remove(header::UPGRADE);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(pairs: &[(&str, &str)]) -> Parts {
        let mut b = hyper::Request::builder().uri("/x");
        for (k, v) in pairs {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn what_the_upstream_sees_is_keygates_word_not_the_clients() {
        let identity = [(
            HeaderName::from_static("x-auth-request-user"),
            HeaderValue::from_static("alice"),
        )];
        let none = StripHeaders::default();
        let f = |trusted, drop_authorization| Forwarding {
            peer: "192.0.2.7".parse().unwrap(),
            trusted,
            scheme: "https",
            request_id: "abc-1",
            upstream_authority: "127.0.0.1:3000",
            identity: Some(&identity),
            drop_authorization,
            upgrade: None,
            strip: &none,
        };
        let client = parts(&[
            ("host", "app.example"),
            ("x-auth-request-user", "mallory"),
            ("remote-user", "root"),
            ("x_auth_request_user", "mallory"),
            ("x-forwarded-for", "203.0.113.1"),
            ("x-forwarded-proto", "http"),
            ("x-original-url", "/admin"),
            ("authorization", "Bearer kg_x"),
            ("connection", "keep-alive, x-secret"),
            ("x-secret", "1"),
            ("accept", "text/html"),
        ]);
        let h = upstream_headers(&client, &f(false, true));
        for gone in [
            "remote-user",
            "x_auth_request_user",
            "x-original-url",
            "authorization",
            "x-secret",
            "connection",
        ] {
            assert!(!h.contains_key(gone), "{gone}: {h:?}");
        }
        for (name, want) in [
            ("x-auth-request-user", "alice"),
            ("x-forwarded-for", "192.0.2.7"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "app.example"),
            ("host", "app.example"),
            ("x-request-id", "abc-1"),
            ("accept", "text/html"),
        ] {
            assert_eq!(h[name], want, "{name}");
        }
        // A trusted proxy's forwarding headers are believed and its chain extended; the
        // identity is still keygate's alone; a session's request keeps the app's own
        // Authorization.
        let h = upstream_headers(&client, &f(true, false));
        assert_eq!(h["x-forwarded-for"], "203.0.113.1, 192.0.2.7");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["authorization"], "Bearer kg_x");
        assert_eq!(h.get_all("x-auth-request-user").iter().count(), 1);
        assert!(!h.contains_key("remote-user"));
    }

    /// Every identity family and URL-rewrite header of the module doc, as a client sends
    /// it through a trusted proxy (which passes on what its client sent): none reaches the
    /// upstream; the forwarding headers a trusted proxy may state do.
    #[test]
    fn no_identity_or_rewrite_header_passes_even_from_a_trusted_proxy() {
        let strip = StripHeaders::parse(&["X-Corp-User", "x-corp-team-*"]).unwrap();
        let f = |trusted| Forwarding {
            peer: "127.0.0.1".parse().unwrap(),
            trusted,
            scheme: "http",
            request_id: "abc-1",
            upstream_authority: "127.0.0.1:3000",
            identity: None,
            drop_authorization: true,
            upgrade: None,
            strip: &strip,
        };
        let forged = [
            "X-Auth-Request-Email",
            "X-Auth-Request-Groups",
            "X-Auth-Request-Preferred-Username",
            "X-Auth-Request-Access-Token",
            "X-Forwarded-User",
            "X-Forwarded-Email",
            "X-Forwarded-Groups",
            "X-Forwarded-Preferred-Username",
            "X-Forwarded-Access-Token",
            "X-Forwarded-Client-Cert",
            "X-Forwarded-Tls-Client-Cert",
            "X-Forwarded-Tls-Client-Cert-Info",
            "Gap-Auth",
            "Remote-User",
            "Remote-Groups",
            "Remote-Email",
            "Remote-Name",
            "X-Remote-User",
            "X-Remote-Group",
            "X-Remote-Extra-Scopes",
            "X-Webauth-User",
            "X-WEBAUTH-EMAIL",
            "X-Pomerium-Jwt-Assertion",
            "X-Pomerium-Claim-Email",
            "Cf-Access-Authenticated-User-Email",
            "Cf-Access-Jwt-Assertion",
            "Tailscale-User-Login",
            "Tailscale-User-Name",
            "Tailscale-App-Capabilities",
            "X-Goog-Authenticated-User-Email",
            "X-Goog-Authenticated-User-Id",
            "X-Goog-Iap-Jwt-Assertion",
            "X-Amzn-Oidc-Identity",
            "X-Amzn-Oidc-Data",
            "X-Amzn-Oidc-Accesstoken",
            "X-Amzn-Mtls-Clientcert",
            "X-Ms-Client-Principal",
            "X-Ms-Client-Principal-Name",
            "X-Ms-Client-Principal-Id",
            "X-Ms-Token-Aad-Id-Token",
            "X-Ssl-Client-Cert",
            "X-Ssl-Client-Verify",
            "X-Ssl-Client-S-Dn",
            "Ssl-Client-Cert",
            "Ssl-Client-Verify",
            "X-Client-Cert",
            "X-Client-Cert-Chain",
            "X-Client-Verify",
            "X-Client-Dn",
            "X-Arr-Clientcert",
            "X-Authenticated-User",
            "X-Authenticated-Userid",
            "X-Authenticated-Groups",
            "X-Authenticated-Scope",
            "X-Authentik-Username",
            "X-Vouch-User",
            "X-Consumer-Username",
            "X-Credential-Identifier",
            "X-Userinfo",
            "X-Auth-Username",
            "Ngrok-Auth-User-Email",
            "Teleport-Jwt-Assertion",
            "X-Sandstorm-Username",
            "Oidc-Claim-Email",
            "Shib-Identity-Provider",
            "X-Token-User-Email",
            "X-User",
            "X-User-Id",
            "X-User-Email",
            "X-Username",
            "X-Email",
            "X-Jwt-Assertion",
            // server.strip_headers, by name and by prefix, in any case.
            "x-corp-user",
            "X-Corp-Team-Lead",
            // URL rewrites.
            "X-Original-URL",
            "X-Rewrite-URL",
            "X-Original-URI",
            "X-Original-Method",
            "X-Forwarded-Uri",
            "X-Forwarded-Path",
            "X-Forwarded-Method",
            "X-Forwarded-Prefix",
            "X-Envoy-Original-Path",
            "X-Script-Name",
        ];
        let mut pairs: Vec<(&str, &str)> = forged.iter().map(|n| (*n, "root")).collect();
        let kept = [
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "app.example"),
            ("x-forwarded-port", "443"),
            ("x-forwarded-ssl", "on"),
            ("x-corp-trace", "1"),
            ("x-user-agent-hint", "1"),
            ("cf-ray", "1"),
            ("accept", "text/html"),
        ];
        pairs.extend(kept);
        let client = parts(&pairs);
        for trusted in [true, false] {
            let h = upstream_headers(&client, &f(trusted));
            for name in forged {
                assert!(!h.contains_key(name), "{name} passed (trusted: {trusted})");
            }
            for (name, value) in kept {
                let forwarding = name.starts_with("x-forwarded-");
                if trusted || !forwarding {
                    assert_eq!(h[name], value, "{name} (trusted: {trusted})");
                }
            }
        }
    }

    #[test]
    fn strip_headers_entries_are_names_or_prefixes() {
        let s = StripHeaders::parse(&[" X-A ", "x-b-*"]).unwrap();
        assert!(s.matches("x-a") && s.matches("x-b-c") && !s.matches("x-ab"));
        for bad in ["", "*", "x y", "x:y", "x-*-y", "é"] {
            assert_eq!(
                StripHeaders::parse(&[bad]),
                Err(bad.trim().to_owned()),
                "{bad}"
            );
        }
    }

    #[test]
    fn identity_headers_are_recognised() {
        for h in [
            "x-auth-request-user",
            "x-auth-request-email",
            "remote-user",
            "x-forwarded-user",
            "x-webauth-user",
            "tailscale-user-login",
            "x-request-id",
        ] {
            assert!(is_identity_header(h), "{h}");
        }
        for h in ["x-forwarded-for", "cookie", "accept", "x-requested-with"] {
            assert!(!is_identity_header(h), "{h}");
        }
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_dropped() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key(header::CONTENT_TYPE));
    }
}
