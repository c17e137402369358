//! The reverse proxy's upstream: what `server.upstream` may name, checked at start-up and
//! again for every address a name resolves to at connect time.
//!
//! An upstream must be reachable only from this host or its private network: loopback,
//! private and shared (CGNAT, which tailnets use) IPv4 ranges, IPv6 unique-local addresses,
//! names under `.internal` or `.localhost`, and unix sockets. A public upstream could be
//! reached around the proxy, so it would protect nothing.
//!
//! # Cloud metadata
//!
//! A proxy in front of an instance's metadata service hands its credentials to whoever
//! signs in, so [`check_addr`] refuses, in every spelling:
//!
//! - all of link-local, 169.254.0.0/16 and fe80::/10: AWS, GCP, Azure, Oracle, DigitalOcean
//!   and OpenStack metadata (169.254.169.254), AWS ECS task credentials (169.254.170.2),
//!   EKS Pod Identity (169.254.170.23), AWS DNS and NTP (169.254.169.253, .123);
//! - Alibaba Cloud's metadata, 100.100.100.200, inside the shared range that is otherwise
//!   allowed;
//! - AWS's IPv6 service range, fd00:ec2::/32 (metadata at fd00:ec2::254, DNS ::253, NTP
//!   ::123, Pod Identity ::23), inside the unique-local range that is otherwise allowed;
//! - each of these inside IPv6: IPv4-mapped (`::ffff:169.254.169.254`), IPv4-compatible
//!   (`::169.254.169.254`) and NAT64 (`64:ff9b::a9fe:a9fe`), and GCP's name for it,
//!   `metadata.google.internal`.
//!
//! A host that ends in a number is an IPv4 address to URL parsers and `inet_aton` alike,
//! which also read `2852039166`, `0xa9fea9fe`, `0251.0376.0251.0376` and `169.254.43518` as
//! 169.254.169.254: such a host is read the same way, judged as that address, and refused
//! even when allowed, with the dotted-decimal spelling to use instead (one spelling per
//! address). A name is judged again at connect time, address by address, by the same
//! [`check_addr`] ([`crate::connect`]): a `.internal` name that resolves to a metadata
//! address is never connected to, by the proxy or by `keygate check`.
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
    /// A cloud metadata service's address or name.
    #[error("{0} is a cloud metadata service: it hands out the instance's credentials")]
    Metadata(String),
    /// An IPv4 address in a spelling other than dotted decimal.
    #[error("'{given}' is the IPv4 address {addr} in another notation")]
    NonCanonical {
        /// The host as written.
        given: String,
        /// The address it stands for.
        addr: Ipv4Addr,
    },
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
            UpstreamError::LinkLocal(_) | UpstreamError::Metadata(_) => {
                "use a loopback or private address of the app itself"
            }
            UpstreamError::NonCanonical { .. } => "write the address in dotted-decimal form",
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
        } else if ends_in_number(bare) {
            let addr = ipv4_any_notation(bare).ok_or(UpstreamError::Malformed(
                "a host that ends in a number must be an IPv4 address",
            ))?;
            check_addr(IpAddr::V4(addr))?;
            return Err(UpstreamError::NonCanonical {
                given: bare.to_owned(),
                addr,
            });
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
            if METADATA_NAMES.contains(&name.as_str()) {
                return Err(UpstreamError::Metadata(name));
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

/// Names of metadata services that a `.internal` rule would let through (GCP's resolves to
/// 169.254.169.254, which connect refuses anyway; this says why at start-up).
const METADATA_NAMES: [&str; 1] = ["metadata.google.internal"];

/// Alibaba Cloud's metadata service, inside the shared range.
const ALIBABA_METADATA: Ipv4Addr = Ipv4Addr::new(100, 100, 100, 200);

/// Whether `ip` may be an upstream: loopback, RFC 1918, RFC 6598 shared space (tailnets),
/// IPv6 unique-local; never link-local, a cloud metadata address (see the module doc),
/// unspecified, multicast or public. The one rule for `server.upstream` and for every
/// address a name resolves to at connect time.
pub fn check_addr(ip: IpAddr) -> Result<(), UpstreamError> {
    let ip = ip.to_canonical();
    // An IPv4 address carried inside IPv6 is judged as that address first: a metadata
    // address stays one in every spelling.
    let embedded = match ip {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(v6) => embedded_v4(v6),
    };
    if let Some(v4) = embedded {
        if v4 == ALIBABA_METADATA {
            return Err(UpstreamError::Metadata(ip.to_string()));
        }
        if v4.is_link_local() {
            return Err(UpstreamError::LinkLocal(ip));
        }
    }
    match ip {
        IpAddr::V4(v4) => {
            if v4.is_loopback() || v4.is_private() || is_shared(v4) {
                return Ok(());
            }
        }
        IpAddr::V6(v6) => {
            if is_v6_link_local(v6) {
                return Err(UpstreamError::LinkLocal(ip));
            }
            if is_aws_services(v6) {
                return Err(UpstreamError::Metadata(ip.to_string()));
            }
            if v6.is_loopback() || is_unique_local(v6) {
                return Ok(());
            }
        }
    }
    Err(UpstreamError::Public(ip))
}

/// The IPv4 address inside an IPv4-compatible (`::a.b.c.d`, deprecated but still routed by
/// some stacks) or NAT64 (`64:ff9b::/96`, RFC 6052) address. (IPv4-mapped ones were made
/// IPv4 by `to_canonical`.)
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let tail = Ipv4Addr::from(u32::try_from(ip.to_bits() & 0xffff_ffff).ok()?);
    let compatible = s[..6] == [0; 6] && !(s[6] == 0 && s[7] <= 1);
    let nat64 = s[..6] == [0x64, 0xff9b, 0, 0, 0, 0];
    (compatible || nat64).then_some(tail)
}

/// AWS's IPv6 service range fd00:ec2::/32 (metadata, DNS, NTP, Pod Identity).
fn is_aws_services(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    s[0] == 0xfd00 && s[1] == 0x0ec2
}

/// Whether a host's last label (a trailing dot aside) is a number, decimal or `0x` hex:
/// then URL parsers (WHATWG "ends in a number") and `inet_aton` read it as IPv4.
fn ends_in_number(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    let last = host.rsplit('.').next().unwrap_or("");
    !last.is_empty()
        && (last.bytes().all(|b| b.is_ascii_digit())
            || last
                .strip_prefix("0x")
                .or_else(|| last.strip_prefix("0X"))
                .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit())))
}

/// An IPv4 address in any notation `inet_aton` and the WHATWG URL parser accept: one to
/// four parts, each decimal, `0x` hex or `0` octal, the last one filling the remaining
/// bytes (`127.1`, `169.254.43518`, `2852039166`, `0xa9fea9fe`, `0251.0376.0251.0376`).
fn ipv4_any_notation(host: &str) -> Option<Ipv4Addr> {
    let host = host.strip_suffix('.').unwrap_or(host);
    let parts: Vec<&str> = host.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut numbers = Vec::with_capacity(4);
    for p in &parts {
        let (digits, radix) = if let Some(h) = p.strip_prefix("0x").or_else(|| p.strip_prefix("0X"))
        {
            (h, 16)
        } else if p.len() > 1 && p.starts_with('0') {
            (&p[1..], 8)
        } else {
            (*p, 10)
        };
        let n = if digits.is_empty() && radix == 16 {
            0
        } else {
            u64::from_str_radix(digits, radix).ok()?
        };
        numbers.push(n);
    }
    let (last, init) = numbers.split_last()?;
    if init.iter().any(|&n| n > 255) {
        return None;
    }
    let room = 8 * (4 - init.len() as u32);
    if *last >= 1u64 << room {
        return None;
    }
    let mut addr = *last;
    for (i, n) in init.iter().enumerate() {
        addr |= n << (8 * (3 - i as u32));
    }
    Some(Ipv4Addr::from(u32::try_from(addr).ok()?))
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

    /// Issue 13: `fd00:ec2::254` and `100.100.100.200` were accepted; the other spellings
    /// were refused, but as public names, not as what they are.
    #[test]
    fn cloud_metadata_is_refused_in_every_spelling() {
        let err = |s: &str| Upstream::parse(s).unwrap_err();
        for url in [
            "http://100.100.100.200",
            "http://100.100.100.200:8080/latest",
            "http://[fd00:ec2::254]",
            "http://[fd00:ec2::253]:53",
            "http://[fd00:ec2::23]",
            "http://[FD00:EC2:0:0:0:0:0:254]",
            "http://[::ffff:100.100.100.200]",
            "http://[::ffff:6464:64c8]",
            "http://[::100.100.100.200]",
            "http://[64:ff9b::100.100.100.200]",
            "http://1684301000",
            "http://0x646464c8",
            "http://100.100.25800",
            "http://metadata.google.internal",
            "http://Metadata.Google.Internal.:80",
        ] {
            assert!(
                matches!(err(url), UpstreamError::Metadata(_)),
                "{url}: {:?}",
                err(url)
            );
        }
        for url in [
            "http://169.254.169.254",
            "http://169.254.170.2",
            "http://169.254.170.23",
            "http://169.254.169.253",
            "http://169.254.169.123",
            "http://169.254.1.1",
            "http://[::ffff:169.254.169.254]",
            "http://[::ffff:a9fe:a9fe]",
            "http://[::169.254.169.254]",
            "http://[64:ff9b::a9fe:a9fe]",
            "http://[fe80::a9fe:a9fe]",
            "http://[febf::1]",
            "http://2852039166",
            "http://2852039166.",
            "http://0xa9fea9fe",
            "http://0XA9FEA9FE",
            "http://0251.0376.0251.0376",
            "http://0xa9.0xfe.0xa9.0xfe",
            "http://169.254.43518",
            "http://169.16689662",
            "http://0251.0376.43518",
        ] {
            assert!(
                matches!(err(url), UpstreamError::LinkLocal(_)),
                "{url}: {:?}",
                err(url)
            );
        }
        // An allowed address in another notation: one spelling per address.
        assert_eq!(
            err("http://127.1:3000"),
            UpstreamError::NonCanonical {
                given: "127.1".into(),
                addr: Ipv4Addr::LOCALHOST
            }
        );
        assert!(matches!(
            err("http://2130706433"),
            UpstreamError::NonCanonical { .. }
        ));
        assert!(matches!(
            err("http://1.2.3.4.5"),
            UpstreamError::Malformed(_)
        ));
        assert!(matches!(
            err("http://99999999999"),
            UpstreamError::Malformed(_)
        ));
        assert!(matches!(err("http://0x1.2"), UpstreamError::Public(_)));
        // Neighbours stay as they were.
        for ok in [
            "http://100.100.100.199",
            "http://100.100.100.201",
            "http://[fd00:ec3::254]",
            "http://[fd00::254]",
            "http://[::1]",
            "http://app1.internal",
            "http://metadata.internal",
        ] {
            Upstream::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        // The connect-time rule is the same function.
        for ip in ["100.100.100.200", "fd00:ec2::254", "::ffff:169.254.169.254"] {
            assert!(check_addr(ip.parse().unwrap()).is_err(), "{ip}");
        }
        assert!(check_addr("10.0.0.1".parse().unwrap()).is_ok());
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
