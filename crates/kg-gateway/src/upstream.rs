//! The reverse proxy's upstream: what `server.upstream` may name, checked at start-up and
//! again for every address a name resolves to at connect time.
//!
//! An upstream must be reachable only from this host or its private network: loopback,
//! private and shared (CGNAT, which tailnets use) IPv4 ranges, IPv6 unique-local addresses,
//! names under `.internal` or `.localhost`, and unix sockets. A public upstream could be
//! reached around the proxy, so it would protect nothing; link-local addresses are refused
//! too, since cloud metadata services live there (169.254.169.254).
//!
//! The URL carries no credentials (they would end up in logs and process listings), no
//! query and no fragment (the request's own are used).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

/// Where authorized requests go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// How to connect.
    pub target: Target,
    /// The path prefix requests are forwarded under, without a trailing `/` (empty for `/`).
    pub base_path: String,
    /// The `Host` header the upstream expects by default: `HOST[:PORT]`, or `localhost` for
    /// a unix socket.
    pub authority: String,
}

/// How to reach the upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// TCP to a host name (resolved per connection, every address checked) and port.
    Name {
        /// The name, lower case.
        host: String,
        /// The port.
        port: u16,
    },
    /// TCP to an address.
    Addr(std::net::SocketAddr),
    /// A unix stream socket.
    Unix(PathBuf),
}

/// Why an upstream URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    /// Not `http://...` or `unix:/...`.
    #[error("expected http://HOST:PORT[/PATH] or unix:/PATH")]
    Scheme,
    /// `https://...`: keygate speaks plain HTTP to its upstream.
    #[error(
        "https:// upstreams are not supported: keygate speaks plain HTTP to the upstream, which is on this host, a private address or a .internal name"
    )]
    Https,
    /// `user:password@` in the URL.
    #[error("the URL carries credentials")]
    Credentials,
    /// `?...` in the URL.
    #[error("the URL has a query; the request's own query is forwarded")]
    Query,
    /// `#...` in the URL.
    #[error("the URL has a fragment")]
    Fragment,
    /// A host, port or path that does not parse.
    #[error("{0}")]
    Malformed(&'static str),
    /// An address other hosts on the internet could reach.
    #[error("{0} is a public address: clients could reach the upstream around the proxy")]
    Public(IpAddr),
    /// A link-local address (cloud metadata services live there).
    #[error("{0} is link-local (cloud metadata services live there)")]
    LinkLocal(IpAddr),
    /// A name that could resolve anywhere.
    #[error(
        "the name '{0}' could resolve to a public address; only localhost, *.localhost and *.internal names are allowed"
    )]
    PublicName(String),
}

impl UpstreamError {
    /// What to do instead.
    pub fn hint(&self) -> &'static str {
        match self {
            UpstreamError::Credentials => {
                "remove user:password@; keygate sets the identity headers the upstream can trust"
            }
            UpstreamError::Query | UpstreamError::Fragment => "remove the part after ? or #",
            UpstreamError::Public(_) | UpstreamError::PublicName(_) => {
                "run the upstream on loopback, a private address, a .internal name or a unix socket"
            }
            UpstreamError::LinkLocal(_) => "use a loopback or private address",
            UpstreamError::Https => {
                "use http:// (e.g. http://127.0.0.1:3000), or a unix socket; TLS ends at keygate"
            }
            _ => "for example http://127.0.0.1:3000 or unix:/run/app.sock",
        }
    }
}

impl Upstream {
    /// Parses and checks `server.upstream`.
    pub fn parse(text: &str) -> Result<Upstream, UpstreamError> {
        let text = text.trim();
        if let Some(path) = text.strip_prefix("unix:") {
            // unix:/path and unix:///path.
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.contains('?') {
                return Err(UpstreamError::Query);
            }
            if path.contains('#') {
                return Err(UpstreamError::Fragment);
            }
            if !path.starts_with('/') || path.len() < 2 {
                return Err(UpstreamError::Malformed(
                    "a unix socket path must be absolute: unix:/PATH",
                ));
            }
            if path.bytes().any(|b| b.is_ascii_control()) {
                return Err(UpstreamError::Malformed(
                    "the socket path has control characters",
                ));
            }
            return Ok(Upstream {
                target: Target::Unix(PathBuf::from(path)),
                base_path: String::new(),
                authority: "localhost".into(),
            });
        }
        let (scheme, rest) = text.split_once("://").ok_or(UpstreamError::Scheme)?;
        if scheme.eq_ignore_ascii_case("https") {
            return Err(UpstreamError::Https);
        }
        if !scheme.eq_ignore_ascii_case("http") {
            return Err(UpstreamError::Scheme);
        }
        if rest.contains('#') {
            return Err(UpstreamError::Fragment);
        }
        if rest.contains('?') {
            return Err(UpstreamError::Query);
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(UpstreamError::Credentials);
        }
        if path
            .bytes()
            .any(|b| b.is_ascii_control() || b == b' ' || b == b'\\')
        {
            return Err(UpstreamError::Malformed(
                "the path has spaces or control characters",
            ));
        }
        let uri: hyper::Uri = format!("http://{authority}/")
            .parse()
            .map_err(|_| UpstreamError::Malformed("the host or port does not parse"))?;
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or(UpstreamError::Malformed("the URL has no host"))?;
        // After the host (an IPv6 literal ends with ']'), an optional ":PORT".
        let after_host = authority
            .rsplit_once(']')
            .map_or(authority, |(_, rest)| rest);
        let port = match after_host.rsplit_once(':').map(|(_, p)| p) {
            None => 80,
            Some("") => return Err(UpstreamError::Malformed("the port is empty")),
            Some(p) => match p.parse::<u16>() {
                Ok(0) => return Err(UpstreamError::Malformed("port 0 cannot be connected to")),
                Ok(p) => p,
                Err(_) => return Err(UpstreamError::Malformed("the port is not 1 to 65535")),
            },
        };
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let target = if let Ok(ip) = bare.parse::<IpAddr>() {
            check_addr(ip)?;
            Target::Addr(std::net::SocketAddr::new(ip, port))
        } else {
            let name = bare.to_ascii_lowercase();
            let name = name.strip_suffix('.').unwrap_or(&name).to_owned();
            let label_ok = |l: &str| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            };
            if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
                return Err(UpstreamError::Malformed(
                    "the host name is not a valid DNS name",
                ));
            }
            if !is_local_name(&name) {
                return Err(UpstreamError::PublicName(name));
            }
            Target::Name { host: name, port }
        };
        let base_path = path.trim_end_matches('/').to_owned();
        Ok(Upstream {
            target,
            base_path,
            authority: authority.to_ascii_lowercase(),
        })
    }
}

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            Target::Unix(p) => write!(f, "unix:{}", p.display()),
            _ => write!(f, "http://{}{}", self.authority, self.base_path),
        }
    }
}

/// Names that stay on this host or its private network: RFC 6761 `localhost` and the
/// ICANN-reserved private TLD `.internal`.
fn is_local_name(name: &str) -> bool {
    name == "localhost"
        || name.ends_with(".localhost")
        || name == "internal"
        || name.ends_with(".internal")
}

/// Whether `ip` may be an upstream: loopback, RFC 1918, RFC 6598 shared space (tailnets),
/// IPv6 unique-local; never link-local, unspecified, multicast or public.
pub fn check_addr(ip: IpAddr) -> Result<(), UpstreamError> {
    let ip = ip.to_canonical();
    match ip {
        IpAddr::V4(v4) => {
            if v4.is_link_local() {
                return Err(UpstreamError::LinkLocal(ip));
            }
            if v4.is_loopback() || v4.is_private() || is_shared(v4) {
                return Ok(());
            }
        }
        IpAddr::V6(v6) => {
            if is_v6_link_local(v6) {
                return Err(UpstreamError::LinkLocal(ip));
            }
            if v6.is_loopback() || is_unique_local(v6) {
                return Ok(());
            }
        }
    }
    Err(UpstreamError::Public(ip))
}

fn is_shared(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    a == 100 && (64..128).contains(&b)
}

fn is_unique_local(ip: Ipv6Addr) -> bool {
    ip.segments()[0] & 0xfe00 == 0xfc00
}

fn is_v6_link_local(ip: Ipv6Addr) -> bool {
    ip.segments()[0] & 0xffc0 == 0xfe80
}

/// `text` with any `user:password@` removed, for error messages.
pub fn redact(text: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else {
        return text.chars().filter(|c| !c.is_control()).collect();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let authority = match authority.rsplit_once('@') {
        Some((_, host)) => format!("***@{host}"),
        None => authority.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
        .chars()
        .filter(|c| !c.is_control())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_upstreams_parse() {
        let u = Upstream::parse("http://127.0.0.1:3000").unwrap();
        assert_eq!(u.target, Target::Addr("127.0.0.1:3000".parse().unwrap()));
        assert_eq!(u.base_path, "");
        assert_eq!(u.authority, "127.0.0.1:3000");
        let u = Upstream::parse("http://[::1]:8080/app/").unwrap();
        assert_eq!(u.target, Target::Addr("[::1]:8080".parse().unwrap()));
        assert_eq!(u.base_path, "/app");
        for ok in [
            "http://10.1.2.3",
            "http://172.16.0.1:81",
            "http://192.168.1.10:9000",
            "http://100.101.102.103:80",
            "http://[fd7a:115c:a1e0::1]:80",
            "http://localhost:3000",
            "http://app.localhost",
            "http://grafana.corp.internal:3000",
            "HTTP://Grafana.Internal.:3000",
            "unix:/run/app.sock",
            "unix:///run/app.sock",
        ] {
            Upstream::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        let u = Upstream::parse("http://Grafana.Internal.:3000").unwrap();
        assert_eq!(
            u.target,
            Target::Name {
                host: "grafana.internal".into(),
                port: 3000
            }
        );
    }

    #[test]
    fn upstreams_reachable_around_the_proxy_are_refused() {
        let err = |s: &str| Upstream::parse(s).unwrap_err();
        assert!(matches!(
            err("http://93.184.216.34"),
            UpstreamError::Public(_)
        ));
        assert!(matches!(
            err("http://[2001:db8::1]:80"),
            UpstreamError::Public(_)
        ));
        assert!(matches!(err("http://0.0.0.0:80"), UpstreamError::Public(_)));
        assert!(matches!(err("http://[::]:80"), UpstreamError::Public(_)));
        assert!(matches!(
            err("http://169.254.169.254"),
            UpstreamError::LinkLocal(_)
        ));
        assert!(matches!(
            err("http://[fe80::1]:80"),
            UpstreamError::LinkLocal(_)
        ));
        assert!(matches!(
            err("http://[::ffff:8.8.8.8]:80"),
            UpstreamError::Public(_)
        ));
        assert!(matches!(
            err("http://example.com"),
            UpstreamError::PublicName(_)
        ));
        assert!(matches!(
            err("http://localhost.example.com"),
            UpstreamError::PublicName(_)
        ));
        assert!(matches!(
            err("http://internal.evil.com"),
            UpstreamError::PublicName(_)
        ));
    }

    #[test]
    fn credentials_queries_and_fragments_are_refused() {
        let err = |s: &str| Upstream::parse(s).unwrap_err();
        assert_eq!(
            err("http://user:pw@127.0.0.1:3000"),
            UpstreamError::Credentials
        );
        assert_eq!(err("http://user@127.0.0.1"), UpstreamError::Credentials);
        assert_eq!(err("http://127.0.0.1:3000/?a=b"), UpstreamError::Query);
        assert_eq!(err("http://127.0.0.1:3000/#top"), UpstreamError::Fragment);
        // Issue 14, item 12: https:// got the generic message.
        assert_eq!(err("https://127.0.0.1:3000"), UpstreamError::Https);
        assert_eq!(err("HTTPS://127.0.0.1:3000"), UpstreamError::Https);
        assert_eq!(err("127.0.0.1:3000"), UpstreamError::Scheme);
        assert_eq!(err("ftp://127.0.0.1"), UpstreamError::Scheme);
        assert!(matches!(
            err("unix:run/app.sock"),
            UpstreamError::Malformed(_)
        ));
        assert!(matches!(
            err("http://127.0.0.1:0"),
            UpstreamError::Malformed(_)
        ));
        assert!(matches!(
            err("http://127.0.0.1:99999"),
            UpstreamError::Malformed(_)
        ));
        assert!(matches!(
            err("http://127.0.0.1:"),
            UpstreamError::Malformed(_)
        ));
        assert!(matches!(
            err("http://bad_name.internal"),
            UpstreamError::Malformed(_)
        ));
        assert!(matches!(err("http://"), UpstreamError::Malformed(_)));
    }

    #[test]
    fn redaction_removes_credentials_only() {
        assert_eq!(
            redact("http://user:secret@127.0.0.1:3000/x"),
            "http://***@127.0.0.1:3000/x"
        );
        assert_eq!(redact("http://127.0.0.1:3000"), "http://127.0.0.1:3000");
        assert_eq!(redact("unix:/a\u{1b}b"), "unix:/ab");
    }
}
