//! What the upstream sees: the header policy of the reverse proxy, in one table-tested
//! function (see the crate doc, "What the upstream sees").

use std::net::IpAddr;

use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::http::request::Parts;
use kg_http::net::{self, X_FORWARDED_FOR};

/// Request headers a client must never be able to set for the upstream: identity headers
/// that upstreams are commonly configured to trust from an auth proxy.
const IDENTITY_HEADERS: [&str; 14] = [
    "remote-user",
    "remote-email",
    "remote-groups",
    "remote-name",
    "x-remote-user",
    "x-remote-email",
    "x-forwarded-user",
    "x-forwarded-email",
    "x-forwarded-groups",
    "x-forwarded-preferred-username",
    "x-forwarded-access-token",
    "x-user",
    "x-email",
    "x-request-id",
];
/// Prefixes of the same.
const IDENTITY_PREFIXES: [&str; 3] = ["x-auth-request-", "x-webauth-", "tailscale-user-"];

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

/// Headers that frameworks read as the real request target (Symfony, IIS, nginx's
/// `auth_request` convention): a client could name a path other than the one authorized.
const REWRITE_HEADERS: [&str; 4] = [
    "x-original-url",
    "x-rewrite-url",
    "x-original-uri",
    "x-original-method",
];

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
            || REWRITE_HEADERS.contains(&n)
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
        let f = |trusted, drop_authorization| Forwarding {
            peer: "192.0.2.7".parse().unwrap(),
            trusted,
            scheme: "https",
            request_id: "abc-1",
            upstream_authority: "127.0.0.1:3000",
            identity: Some(&identity),
            drop_authorization,
            upgrade: None,
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
        assert_eq!(h["x-original-url"], "/admin");
        assert_eq!(h["authorization"], "Bearer kg_x");
        assert_eq!(h.get_all("x-auth-request-user").iter().count(), 1);
        assert!(!h.contains_key("remote-user"));
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
