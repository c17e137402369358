//! Name constraints of the local CA.
//!
//! A local root that a person installs into their trust store can otherwise vouch for
//! `bank.example`. Permitted subtrees limit the damage if its key ever leaks: Chrome, Firefox,
//! OpenSSL and webpki enforce them on locally installed roots. The same rules are checked
//! here before issuing, so a refused name gets a clear error instead of a certificate that
//! every client rejects.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Serialize;

use crate::{PkiError, SanName};

/// Permitted subtrees for the local CA.
///
/// Semantics follow RFC 5280 §4.2.1.10, as verifiers apply them: a DNS entry `example.test`
/// permits that name and every name below it; an entry with a leading dot, `.example.test`,
/// permits only names below it. IP entries are networks. If a list is empty, names of that
/// type are not constrained at all; once it has one entry, every name of that type must fall
/// inside some entry (rcgen trap 8: permit both IPv4 and IPv6 ranges, or `::1` fails).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Constraints {
    /// Permitted DNS subtrees, lower-case ASCII, no trailing dot.
    pub dns: Vec<String>,
    /// Permitted IP networks as (address, prefix length).
    pub ips: Vec<(IpAddr, u8)>,
}

/// The constraints keygate puts on a new local CA.
///
/// DNS: `localhost`, `test`, `internal`, `home.arpa`, `local` (RFC 6761/6762/8375 special-use
/// and private-use names that no public CA issues for), each of `host_names`, and each of
/// `extra_dns` (the `cert.ca_extra_names` setting). Each entry also covers its subdomains, so
/// `localhost` already permits `app.localhost`; a separate `.localhost` entry would add nothing.
///
/// IP: loopback (127.0.0.0/8, ::1/128), the RFC 1918 ranges (10/8, 172.16/12, 192.168/16),
/// unique local IPv6 (fc00::/7, which holds tailscale's fd7a:115c:a1e0::/48) and the CGNAT
/// range tailscale uses (100.64/10).
///
/// An entry of `host_names` or `extra_dns` that is an IP address (`203.0.113.7`) or a network
/// in CIDR form (`203.0.113.0/24`) is added to the IP list instead, so one setting can widen
/// both. Entries are lower-cased, a trailing dot and a leading `*.` are dropped; duplicates are
/// skipped. Invalid entries are kept as given and refused by [`new_local_ca`](crate::new_local_ca)
/// with an error naming them.
pub fn default_constraints(host_names: &[String], extra_dns: &[String]) -> Constraints {
    let mut c = Constraints {
        dns: ["localhost", "test", "internal", "home.arpa", "local"]
            .map(String::from)
            .to_vec(),
        ips: vec![
            (IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)), 8),
            (IpAddr::V6(Ipv6Addr::LOCALHOST), 128),
            (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 0)), 8),
            (IpAddr::V4(Ipv4Addr::new(172, 16, 0, 0)), 12),
            (IpAddr::V4(Ipv4Addr::new(192, 168, 0, 0)), 16),
            (IpAddr::V6(Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0)), 7),
            (IpAddr::V4(Ipv4Addr::new(100, 64, 0, 0)), 10),
        ],
    };
    let entries = host_names
        .iter()
        .map(|h| (h, true))
        .chain(extra_dns.iter().map(|e| (e, false)));
    for (entry, is_host) in entries {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        if let Some(net) = parse_network(entry) {
            if !c.ips.contains(&net) {
                c.ips.push(net);
            }
            continue;
        }
        let lowered = entry.to_ascii_lowercase();
        let name = lowered.strip_suffix('.').unwrap_or(&lowered);
        let name = name.strip_prefix("*.").unwrap_or(name).to_owned();
        // A permitted subtree covers every name below it: a host called `dev` would give the
        // CA all of `.dev`. Host names that are public suffixes are left out.
        if is_host && crate::names::is_public_suffix(&name) {
            continue;
        }
        if !c.dns.contains(&name) {
            c.dns.push(name);
        }
    }
    c
}

/// Refuses, before anything is issued, a name the CA's constraints would not permit.
///
/// Wildcards are judged as verifiers judge them: `*.a.test` is inside `a.test`, `.a.test` and
/// `test`, but not inside `www.a.test`.
pub fn check_constraints(names: &[SanName], c: &Constraints) -> Result<(), ConstraintError> {
    for name in names {
        let permitted = match name {
            SanName::Dns(dns) => {
                c.dns.is_empty() || c.dns.iter().any(|base| dns_permitted(dns, base))
            }
            SanName::Ip(ip) => {
                c.ips.is_empty()
                    || c.ips
                        .iter()
                        .any(|(net, prefix)| ip_in_network(*ip, *net, *prefix))
            }
        };
        if !permitted {
            return Err(ConstraintError::NotPermitted { name: name.clone() });
        }
    }
    Ok(())
}

/// A name outside the local CA's permitted subtrees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConstraintError {
    /// The name is not inside any permitted subtree of its type.
    #[error(
        "name '{name}' is outside the local CA's name constraints (widen them with cert.ca_extra_names)"
    )]
    NotPermitted {
        /// The refused name.
        name: SanName,
    },
}

impl ConstraintError {
    /// How to widen the constraints.
    pub fn hint(&self) -> String {
        let ConstraintError::NotPermitted { name } = self;
        let what = match name {
            SanName::Dns(d) => {
                let base = d.strip_prefix("*.").unwrap_or(d);
                format!("'{base}' (or a parent domain)")
            }
            SanName::Ip(ip) => format!("'{ip}' (or its network, e.g. '{ip}/24')"),
        };
        format!(
            "add {what} to cert.ca_extra_names, then re-create the local CA and trust it again: \
             the constraints are part of the CA certificate"
        )
    }
}

impl Constraints {
    /// Checks that every entry can be encoded and will be understood by verifiers. A malformed
    /// DNS constraint makes webpki reject every certificate under the CA, so it is refused here.
    pub(crate) fn validate(&self) -> Result<(), PkiError> {
        for base in &self.dns {
            let name = base.strip_prefix('.').unwrap_or(base);
            if let Some(parent) = name.strip_prefix("*.") {
                return Err(PkiError::InvalidConstraint {
                    entry: base.clone(),
                    reason: format!(
                        "a constraint cannot be a wildcard; '{parent}' already covers every name below it"
                    ),
                });
            }
            let reason = match SanName::parse(name) {
                Ok(SanName::Dns(d)) if d == name && !d.starts_with("*.") => continue,
                Ok(SanName::Dns(_)) => {
                    "write it in lower case, in punycode, without a wildcard or trailing dot"
                        .to_owned()
                }
                Ok(SanName::Ip(_)) => "an IP address belongs in the IP list".to_owned(),
                Err(e) => e.to_string(),
            };
            return Err(PkiError::InvalidConstraint {
                entry: base.clone(),
                reason,
            });
        }
        for (ip, prefix) in &self.ips {
            let max = if ip.is_ipv4() { 32 } else { 128 };
            if *prefix > max {
                return Err(PkiError::InvalidConstraint {
                    entry: format!("{ip}/{prefix}"),
                    reason: format!("prefix length is more than {max}"),
                });
            }
        }
        Ok(())
    }

    /// The constraints as rcgen name constraints; `None` when there are none at all, since
    /// an empty NameConstraints extension is invalid.
    pub(crate) fn to_rcgen(&self) -> Option<rcgen::NameConstraints> {
        use rcgen::{CidrSubnet, GeneralSubtree};
        let mut permitted: Vec<GeneralSubtree> = self
            .dns
            .iter()
            .map(|d| GeneralSubtree::DnsName(d.clone()))
            .collect();
        permitted.extend(self.ips.iter().map(|(ip, prefix)| {
            GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(
                network_address(*ip, *prefix),
                *prefix,
            ))
        }));
        (!permitted.is_empty()).then(|| rcgen::NameConstraints {
            permitted_subtrees: permitted,
            excluded_subtrees: Vec::new(),
        })
    }
}

impl fmt::Display for Constraints {
    /// `localhost, test, ..., 127.0.0.0/8, ::1/128, ...` for messages and `--help` output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dns = self.dns.iter().map(String::to_owned);
        let ips = self.ips.iter().map(|(ip, p)| format!("{ip}/{p}"));
        let all: Vec<String> = dns.chain(ips).collect();
        f.write_str(&all.join(", "))
    }
}

/// `203.0.113.7` → /32, `2001:db8::1` → /128, `203.0.113.0/24` → that network.
fn parse_network(s: &str) -> Option<(IpAddr, u8)> {
    let s = s.trim_start_matches('[');
    let (addr, prefix) = match s.split_once('/') {
        Some((addr, prefix)) => (addr.trim_end_matches(']'), Some(prefix)),
        None => (s.trim_end_matches(']'), None),
    };
    let ip: IpAddr = addr.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max)?,
        None => max,
    };
    Some((network_address(ip, prefix), prefix))
}

fn dns_permitted(name: &str, base: &str) -> bool {
    let base = base.to_ascii_lowercase();
    if base.is_empty() {
        return true;
    }
    // A wildcard SAN stands for "some name one label below": judge that parent, strictly.
    let (name, wildcard) = match name.strip_prefix("*.") {
        Some(parent) => (parent, true),
        None => (name, false),
    };
    match base.strip_prefix('.') {
        // Subdomains only.
        Some(bare) => (wildcard && name == bare) || is_below(name, bare),
        None => name == base || is_below(name, &base),
    }
}

fn is_below(name: &str, base: &str) -> bool {
    name.len() > base.len() + 1
        && name.ends_with(base)
        && name.as_bytes()[name.len() - base.len() - 1] == b'.'
}

pub(crate) fn ip_in_network(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
            network_address(ip, prefix) == network_address(net, prefix)
        }
        _ => false,
    }
}

fn network_address(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask))
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(prefix.min(128)))
                .unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan_names;

    fn defaults() -> Constraints {
        default_constraints(
            &["myhost".into(), "MyHost.lan.".into()],
            &[
                "example.com".into(),
                "203.0.113.0/24".into(),
                "2001:db8::1".into(),
            ],
        )
    }

    /// `expected` is "ok" or the exact error text.
    fn check(name: &str, c: &Constraints, expected: &str) {
        let names = plan_names(&[name]).unwrap();
        let actual = match check_constraints(&names, c) {
            Ok(()) => "ok".to_owned(),
            Err(e) => e.to_string(),
        };
        assert_eq!(actual, expected, "name {name:?}");
    }

    #[test]
    fn default_constraints_table() {
        let c = defaults();
        let refused = |n: &str| {
            format!(
                "name '{n}' is outside the local CA's name constraints (widen them with cert.ca_extra_names)"
            )
        };
        let table = [
            ("localhost", "ok".to_owned()),
            ("app.localhost", "ok".to_owned()),
            ("*.app.localhost", "ok".to_owned()),
            ("web.test", "ok".to_owned()),
            ("nas.home.arpa", "ok".to_owned()),
            ("printer.local", "ok".to_owned()),
            ("svc.internal", "ok".to_owned()),
            ("myhost", "ok".to_owned()),
            ("myhost.lan", "ok".to_owned()),
            ("www.example.com", "ok".to_owned()),
            ("127.0.0.1", "ok".to_owned()),
            ("127.9.9.9", "ok".to_owned()),
            ("::1", "ok".to_owned()),
            ("10.1.2.3", "ok".to_owned()),
            ("172.31.255.1", "ok".to_owned()),
            ("192.168.1.10", "ok".to_owned()),
            ("100.101.102.103", "ok".to_owned()),
            ("fd7a:115c:a1e0::1", "ok".to_owned()),
            ("203.0.113.77", "ok".to_owned()),
            ("2001:db8::1", "ok".to_owned()),
            ("example.org", refused("example.org")),
            ("notlocalhost", refused("notlocalhost")),
            ("lan", refused("lan")),
            ("172.32.0.1", refused("172.32.0.1")),
            ("8.8.8.8", refused("8.8.8.8")),
            ("2001:db8::2", refused("2001:db8::2")),
            ("fe80::1", refused("fe80::1")),
            ("::ffff:127.0.0.1", refused("::ffff:127.0.0.1")),
        ];
        for (name, expected) in table {
            check(name, &c, &expected);
        }
    }

    #[test]
    fn leading_dot_and_wildcards_follow_rfc5280() {
        let c = Constraints {
            dns: vec![".sub.test".into(), "www.a.test".into()],
            ips: vec![],
        };
        let refused = |n: &str| {
            format!(
                "name '{n}' is outside the local CA's name constraints (widen them with cert.ca_extra_names)"
            )
        };
        check("x.sub.test", &c, "ok");
        check("*.sub.test", &c, "ok");
        check("sub.test", &c, &refused("sub.test"));
        check("www.a.test", &c, "ok");
        check("*.a.test", &c, &refused("*.a.test"));
        // No IP subtree at all: IPs are not constrained.
        check("8.8.8.8", &c, "ok");
    }

    #[test]
    fn hint_names_the_setting() {
        let err =
            check_constraints(&plan_names(&["*.example.org"]).unwrap(), &defaults()).unwrap_err();
        assert!(
            err.hint()
                .starts_with("add 'example.org' (or a parent domain) to cert.ca_extra_names")
        );
    }

    #[test]
    fn validate_refuses_what_verifiers_would_choke_on() {
        let table = [
            (
                vec!["*.test".to_owned()],
                "invalid name constraint '*.test': a constraint cannot be a wildcard; 'test' already covers every name below it",
            ),
            (
                vec!["test.".to_owned()],
                "invalid name constraint 'test.': write it in lower case, in punycode, without a wildcard or trailing dot",
            ),
            (
                vec!["a b".to_owned()],
                "invalid name constraint 'a b': invalid name 'a b': contains whitespace",
            ),
            (
                vec!["Test".to_owned()],
                "invalid name constraint 'Test': write it in lower case, in punycode, without a wildcard or trailing dot",
            ),
        ];
        for (dns, expected) in table {
            let c = Constraints { dns, ips: vec![] };
            assert_eq!(c.validate().unwrap_err().to_string(), expected);
        }
        let c = Constraints {
            dns: vec![],
            ips: vec![("10.0.0.0".parse().unwrap(), 33)],
        };
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "invalid name constraint '10.0.0.0/33': prefix length is more than 32"
        );
        defaults().validate().unwrap();
    }

    #[test]
    fn networks_are_masked() {
        assert_eq!(
            parse_network("10.1.2.3/8"),
            Some(("10.0.0.0".parse().unwrap(), 8))
        );
        assert_eq!(parse_network("[::1]"), Some(("::1".parse().unwrap(), 128)));
        assert_eq!(parse_network("10.0.0.0/40"), None);
        assert_eq!(parse_network("example.com"), None);
    }
}
