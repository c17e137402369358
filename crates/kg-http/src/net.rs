//! Addresses: trusted-proxy CIDRs and the client address a request is attributed to.
//!
//! The rules follow the advisories in which forwarded headers let clients pose as someone
//! else (Home Assistant's trusted_networks, qBittorrent's localhost bypass): the socket peer
//! is the only fact; forwarding headers are believed only from configured proxies and read
//! right to left, so a client cannot prepend its way into a trusted address.

use std::net::IpAddr;
use std::str::FromStr;

use hyper::HeaderMap;
use hyper::header::HeaderName;

use crate::headers::{Headers, visible};

/// `X-Forwarded-For`, read here and written by the gateway.
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// An IP network, e.g. `10.0.0.0/8`; a bare address is a /32 or /128.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    bits: u8,
}

impl FromStr for Cidr {
    type Err = ();

    fn from_str(s: &str) -> Result<Cidr, ()> {
        let s = s.trim();
        let (ip, bits) = match s.split_once('/') {
            Some((ip, bits)) => (ip, Some(bits.parse::<u8>().map_err(|_| ())?)),
            None => (s, None),
        };
        let addr = ip.parse::<IpAddr>().map_err(|_| ())?.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let bits = bits.unwrap_or(max);
        if bits > max {
            return Err(());
        }
        Ok(Cidr { addr, bits })
    }
}

impl Cidr {
    /// Whether `ip` is inside this network (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_eq(
                u128::from(net.to_bits()),
                u128::from(ip.to_bits()),
                32,
                self.bits,
            ),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(net.to_bits(), ip.to_bits(), 128, self.bits)
            }
            _ => false,
        }
    }
}

fn prefix_eq(a: u128, b: u128, width: u32, bits: u8) -> bool {
    let bits = u32::from(bits);
    if bits == 0 {
        return true;
    }
    let shift = width - bits;
    (a >> shift) == (b >> shift)
}

/// Whether `ip` is any loopback address (127.0.0.0/8, ::1, or IPv4-mapped loopback).
pub fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// Whether any forwarding header is present: then the request came through a proxy and the
/// socket peer says nothing about the client, so no loopback shortcut may apply.
///
/// Besides `Forwarded`, `X-Forwarded-*`, `X-Real-IP` and `Via`, this counts the headers
/// that local forwarders add: `tailscale serve` (`Tailscale-User-*`), cloudflared
/// (`Cf-Connecting-Ip`), and the client-address headers of other CDNs and load balancers.
/// Any of them means the socket peer is a relay, not the client.
pub fn has_forwarding_headers(headers: &HeaderMap) -> bool {
    ["forwarded", "x-real-ip", "via"]
        .iter()
        .chain(&CLIENT_ADDRESS_HEADERS)
        .any(|h| headers.contains_key(*h))
        || headers.keys().any(|k| {
            let k = k.as_str();
            k.starts_with("x-forwarded-") || k.starts_with("tailscale-") || k.starts_with("cf-")
        })
}

/// Headers in which relays (CDNs, load balancers, tunnels) name the client's address,
/// besides `X-Forwarded-For` and `X-Real-IP`. Their presence means the peer is a relay; their
/// values are believed only from a trusted proxy.
pub const CLIENT_ADDRESS_HEADERS: [&str; 8] = [
    "client-ip",
    "true-client-ip",
    "x-client-ip",
    "cf-connecting-ip",
    "fly-client-ip",
    "fastly-client-ip",
    "x-cluster-client-ip",
    "x-originating-ip",
];

/// The key one client is counted under, by the failed-attempt limiter and the connection
/// table alike: an IPv4 address as is (an IPv4-mapped IPv6 address as that IPv4 address),
/// an IPv6 address by its /64. One host is routinely given a whole /64 (RFC 6177), so
/// counting IPv6 by address would give an attacker 2^64 clients; an IPv4 /24 routinely
/// holds many unrelated clients, so IPv4 is not grouped.
pub fn client_key(ip: IpAddr) -> u128 {
    match ip.to_canonical() {
        IpAddr::V4(v4) => u128::from(v4.to_bits()),
        IpAddr::V6(v6) => (v6.to_bits() & !((1u128 << 64) - 1)) | 1,
    }
}

/// Whether the socket peer is one of the trusted proxies.
pub fn is_trusted(peer: IpAddr, trusted: &[Cidr]) -> bool {
    trusted.iter().any(|c| c.contains(peer))
}

/// The address a request is attributed to (rate limits, logs).
///
/// The socket peer, unless the peer is a trusted proxy: then `X-Forwarded-For` is read from
/// right to left, skipping trusted proxies, and the first other address is the client (if
/// every hop is trusted, the leftmost one). Without `X-Forwarded-For`, `X-Real-IP` is used.
/// An entry that is not an address ends the walk at the last address that was believed.
pub fn client_addr<H: Headers + ?Sized>(peer: IpAddr, headers: &H, trusted: &[Cidr]) -> IpAddr {
    let peer = peer.to_canonical();
    if trusted.is_empty() || !is_trusted(peer, trusted) {
        return peer;
    }
    let mut believed = peer;
    let mut saw_xff = false;
    // Later header lines are closer to us: walk the lines backwards, and each line's
    // comma-separated entries backwards too.
    for value in headers.values(&X_FORWARDED_FOR).rev() {
        saw_xff = true;
        let Some(text) = visible(value) else {
            return believed;
        };
        for entry in text.rsplit(',') {
            let Some(ip) = parse_forwarded_ip(entry) else {
                return believed;
            };
            if !is_trusted(ip, trusted) {
                return ip;
            }
            believed = ip;
        }
    }
    if !saw_xff
        && let Some(ip) = headers
            .values(&X_REAL_IP)
            .next()
            .and_then(visible)
            .and_then(parse_forwarded_ip)
    {
        return ip;
    }
    believed
}

/// One `X-Forwarded-For` entry: `1.2.3.4`, `1.2.3.4:5678`, `::1`, `[::1]` or `[::1]:80`.
fn parse_forwarded_ip(entry: &str) -> Option<IpAddr> {
    let e = entry.trim();
    if let Ok(ip) = e.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Some(rest) = e.strip_prefix('[') {
        let end = rest.find(']')?;
        return rest[..end]
            .parse::<IpAddr>()
            .ok()
            .map(|ip| ip.to_canonical());
    }
    let (host, port) = e.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                hyper::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn cidrs() {
        let table: &[(&str, &str, bool)] = &[
            ("10.0.0.0/8", "10.1.2.3", true),
            ("10.0.0.0/8", "11.0.0.1", false),
            ("127.0.0.1", "127.0.0.1", true),
            ("127.0.0.1", "127.0.0.2", false),
            ("127.0.0.1", "::ffff:127.0.0.1", true),
            ("::1", "::1", true),
            ("fd00::/8", "fd12::1", true),
            ("fd00::/8", "10.0.0.1", false),
            ("0.0.0.0/0", "8.8.8.8", true),
        ];
        for (net, ip, want) in table {
            let c: Cidr = net.parse().unwrap();
            assert_eq!(c.contains(ip.parse().unwrap()), *want, "{net} {ip}");
        }
        for bad in ["", "10.0.0.0/33", "::/129", "nope", "10.0.0.0/x"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn client_address_is_the_peer_unless_the_peer_is_trusted() {
        let trusted: Vec<Cidr> = vec!["127.0.0.1".parse().unwrap(), "10.0.0.0/8".parse().unwrap()];
        let peer: IpAddr = "127.0.0.1".parse().unwrap();
        let outsider: IpAddr = "192.0.2.7".parse().unwrap();
        type Case<'a> = (IpAddr, &'a [(&'a str, &'a str)], &'a str);
        let table: &[Case<'_>] = &[
            // Home Assistant 2018: a spoofed X-Forwarded-For from an untrusted peer is ignored.
            (outsider, &[("x-forwarded-for", "127.0.0.1")], "192.0.2.7"),
            // Right to left: the client prepended 127.0.0.1; the proxy appended the real one.
            (
                peer,
                &[("x-forwarded-for", "127.0.0.1, 198.51.100.4")],
                "198.51.100.4",
            ),
            // Trusted hops are skipped.
            (
                peer,
                &[("x-forwarded-for", "203.0.113.9, 10.1.1.1")],
                "203.0.113.9",
            ),
            // Several header lines: the last is the closest.
            (
                peer,
                &[
                    ("x-forwarded-for", "1.1.1.1"),
                    ("x-forwarded-for", "10.0.0.2"),
                ],
                "1.1.1.1",
            ),
            // Every hop trusted: the leftmost.
            (
                peer,
                &[("x-forwarded-for", "10.0.0.3, 10.0.0.2")],
                "10.0.0.3",
            ),
            // Garbage ends the walk at the last believed address.
            (
                peer,
                &[("x-forwarded-for", "1.1.1.1, nonsense")],
                "127.0.0.1",
            ),
            (
                peer,
                &[("x-forwarded-for", "[2001:db8::1]:443")],
                "2001:db8::1",
            ),
            (
                peer,
                &[("x-forwarded-for", "198.51.100.4:5555")],
                "198.51.100.4",
            ),
            (peer, &[("x-real-ip", "198.51.100.5")], "198.51.100.5"),
            (peer, &[], "127.0.0.1"),
        ];
        for (p, h, want) in table {
            assert_eq!(
                client_addr(*p, &headers(h), &trusted),
                want.parse::<IpAddr>().unwrap(),
                "{p} {h:?}"
            );
        }
        // No trusted proxies: always the peer.
        assert_eq!(
            client_addr(peer, &headers(&[("x-forwarded-for", "1.1.1.1")]), &[]),
            peer
        );
    }

    #[test]
    fn forwarding_headers() {
        assert!(has_forwarding_headers(&headers(&[(
            "X-Forwarded-For",
            "1.1.1.1"
        )])));
        assert!(has_forwarding_headers(&headers(&[(
            "x-forwarded-uri",
            "/"
        )])));
        assert!(has_forwarding_headers(&headers(&[(
            "forwarded",
            "for=1.1.1.1"
        )])));
        assert!(has_forwarding_headers(&headers(&[(
            "x-real-ip",
            "1.1.1.1"
        )])));
        assert!(!has_forwarding_headers(&headers(&[("user-agent", "x")])));
    }
}

/// The name of a `Host` value (or a target's authority) without its port or trailing dot:
/// `[::1]:8443` is `[::1]`, `app.internal.:443` is `app.internal`. Routing and the portal
/// compare it without regard to ASCII case.
pub fn host_name(host: &str) -> &str {
    let name = if host.starts_with('[') {
        host.split_inclusive(']').next().unwrap_or(host)
    } else {
        host.rsplit_once(':')
            .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
            .map_or(host, |(h, _)| h)
    };
    name.trim_end_matches('.')
}

/// The `:PORT` of a `Host` value, or nothing when it names none.
pub fn host_port(host: &str) -> &str {
    let after = &host[host_name(host).len()..];
    let after = after.trim_start_matches('.');
    if after.len() > 1 && after.starts_with(':') && after[1..].bytes().all(|b| b.is_ascii_digit()) {
        after
    } else {
        ""
    }
}

#[cfg(test)]
mod host_tests {
    use super::*;

    #[test]
    fn names_and_ports() {
        assert_eq!(host_name("[::1]:8443"), "[::1]");
        assert_eq!(host_name("app.internal.:443"), "app.internal");
        assert_eq!(host_name("a.localhost"), "a.localhost");
        assert_eq!(host_port("[::1]:8443"), ":8443");
        assert_eq!(host_port("a.localhost:80"), ":80");
        assert_eq!(host_port("app.internal.:443"), ":443");
        assert_eq!(host_port("a.localhost"), "");
        assert_eq!(host_port("a:b"), "");
    }
}
