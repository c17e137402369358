//! Turning what a person typed into the names a certificate carries.
//!
//! Browsers only look at the subjectAltName, and they are strict about it: an IP address must
//! be an iPAddress entry (never a dNSName), an IDN must be punycode, and a wildcard may only be
//! the whole leftmost label and never sit directly on a public suffix. rcgen validates none of
//! this (REFERENCE.md, rcgen trap 5), so every name goes through [`plan_names`] first.

use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

/// One subjectAltName entry: a DNS name (ASCII, lower-case, maybe a leading `*.`) or an IP.
///
/// Values made by [`plan_names`] / [`SanName::parse`] are validated and normalized; values read
/// back from a certificate ([`crate::CertFacts::sans`]) are reported as found.
/// Serializes as its text, `"localhost"` / `"::1"`: names are strings in every `--json`
/// document (`docs/json.md`); an IP address is told from a DNS name by its syntax.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SanName {
    /// A DNS name, in punycode and lower case, without a trailing dot.
    Dns(String),
    /// An IPv4 or IPv6 address, written as an iPAddress SAN.
    Ip(IpAddr),
}

impl SanName {
    /// Validates and normalizes one name; see [`plan_names`] for the rules.
    pub fn parse(input: &str) -> Result<SanName, NameError> {
        parse_one(input)
    }

    /// True for a DNS name whose leftmost label is `*`.
    pub fn is_wildcard(&self) -> bool {
        matches!(self, SanName::Dns(d) if d.starts_with("*."))
    }

    /// The DNS name, if this is one.
    pub fn as_dns(&self) -> Option<&str> {
        match self {
            SanName::Dns(d) => Some(d),
            SanName::Ip(_) => None,
        }
    }

    /// The IP address, if this is one.
    pub fn as_ip(&self) -> Option<IpAddr> {
        match self {
            SanName::Dns(_) => None,
            SanName::Ip(ip) => Some(*ip),
        }
    }
}

impl serde::Serialize for SanName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl fmt::Display for SanName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SanName::Dns(d) => f.write_str(d),
            SanName::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

impl FromStr for SanName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_one(s)
    }
}

/// Validates, normalizes and de-duplicates the names for one certificate.
///
/// - IPv4 and IPv6 literals become [`SanName::Ip`]; `[::1]` is accepted too. The unspecified,
///   broadcast and multicast addresses are refused: no client connects to them.
/// - DNS names are lower-cased, lose one trailing dot, and must be LDH (letters, digits,
///   hyphens) with labels of 1..=63 characters, no hyphen at either end of a label, at most 253
///   characters in all, and a last label that is not all digits (else `1.2.3.4.5` would pass
///   as a name).
/// - Internationalized names are converted to punycode (UTS #46, via the `idna` crate), because
///   browsers compare SANs in their ASCII form.
/// - A wildcard is allowed only as the whole leftmost label (`*.example.test`), and only over
///   at least two labels that are not a known public suffix. So `*.com`, `*.co.uk`, `*.ts.net`
///   and also `*.localhost`, `*.test`, `*.internal` are refused: Chrome treats every unknown
///   top-level label as a registry and will not match a wildcard on it. Name the hosts, or use
///   a deeper wildcard such as `*.app.localhost`.
/// - Duplicates are removed, keeping the first occurrence, so the order the user gave (and the
///   first name, which becomes the CN) is kept.
///
/// An empty list gives an empty plan; issuing refuses that, not planning.
pub fn plan_names(inputs: &[impl AsRef<str>]) -> Result<Vec<SanName>, NameError> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(inputs.len());
    for input in inputs {
        let name = parse_one(input.as_ref())?;
        if seen.insert(name.clone()) {
            out.push(name);
        }
    }
    Ok(out)
}

/// Why a name was refused. Display is one line naming the input, e.g.
/// `invalid name '1.2.3.4.5': not an IP address, and a DNS name cannot end in a numeric label`;
/// [`NameError::hint`] says how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The input is empty.
    #[error("invalid name '{}': empty", .input.escape_debug())]
    Empty {
        /// The input as given.
        input: String,
    },
    /// The input contains a space, tab, newline or other whitespace.
    #[error("invalid name '{}': contains whitespace", .input.escape_debug())]
    Whitespace {
        /// The input as given.
        input: String,
    },
    /// The input is a URL rather than a host name.
    #[error("invalid name '{}': a URL, not a host name", .input.escape_debug())]
    Url {
        /// The input as given.
        input: String,
        /// The host part of the URL, to suggest instead.
        host: String,
    },
    /// The input is an email address.
    #[error("invalid name '{}': an email address, not a host name", .input.escape_debug())]
    Email {
        /// The input as given.
        input: String,
    },
    /// The input is `host:port`.
    #[error("invalid name '{}': includes a port", .input.escape_debug())]
    Port {
        /// The input as given.
        input: String,
        /// The host without the port.
        host: String,
    },
    /// The input has a `:` or brackets but is not a valid IPv6 address.
    #[error("invalid name '{}': not a valid IPv6 address", .input.escape_debug())]
    BadIpv6 {
        /// The input as given.
        input: String,
    },
    /// The input is an IP address no client can connect to (unspecified, broadcast, multicast).
    #[error("invalid name '{}': {kind} address, not one a client connects to", .input.escape_debug())]
    UnusableIp {
        /// The input as given.
        input: String,
        /// "unspecified", "broadcast" or "multicast".
        kind: &'static str,
    },
    /// All labels are fine but the last is numeric: neither an IP nor a DNS name.
    #[error(
        "invalid name '{}': not an IP address, and a DNS name cannot end in a numeric label",
        .input.escape_debug()
    )]
    NumericLastLabel {
        /// The input as given.
        input: String,
    },
    /// The name is longer than 253 characters (after punycode).
    #[error("invalid name '{}': longer than 253 characters", .input.escape_debug())]
    TooLong {
        /// The input as given.
        input: String,
    },
    /// A label is longer than 63 characters.
    #[error("invalid name '{}': label '{label}' is longer than 63 characters", .input.escape_debug())]
    LabelTooLong {
        /// The input as given.
        input: String,
        /// The offending label.
        label: String,
    },
    /// Two dots in a row, or a leading dot.
    #[error("invalid name '{}': empty label (a leading dot or two dots in a row)", .input.escape_debug())]
    EmptyLabel {
        /// The input as given.
        input: String,
    },
    /// A character outside letters, digits, hyphens and dots.
    #[error(
        "invalid name '{}': character '{}' is not allowed in a DNS name",
        .input.escape_debug(), .ch.escape_debug()
    )]
    BadChar {
        /// The input as given.
        input: String,
        /// The first offending character.
        ch: char,
    },
    /// A label starts or ends with a hyphen.
    #[error("invalid name '{}': label '{label}' starts or ends with a hyphen", .input.escape_debug())]
    Hyphen {
        /// The input as given.
        input: String,
        /// The offending label.
        label: String,
    },
    /// `*` alone.
    #[error("invalid name '{}': a bare wildcard matches no host", .input.escape_debug())]
    BareWildcard {
        /// The input as given.
        input: String,
    },
    /// `*` somewhere other than as the whole leftmost label.
    #[error(
        "invalid name '{}': a wildcard is only allowed as the whole leftmost label",
        .input.escape_debug()
    )]
    WildcardPosition {
        /// The input as given.
        input: String,
    },
    /// `*.` directly on a top-level label or a public suffix.
    #[error(
        "invalid name '{}': a wildcard directly on the public suffix or top-level domain '{suffix}'",
        .input.escape_debug()
    )]
    WildcardOnSuffix {
        /// The input as given.
        input: String,
        /// The suffix the wildcard sits on.
        suffix: String,
    },
    /// An internationalized name that UTS #46 refuses, or a broken `xn--` label.
    #[error("invalid name '{}': not a valid internationalized domain name", .input.escape_debug())]
    Idna {
        /// The input as given.
        input: String,
    },
}

impl NameError {
    /// The input that was refused, as given.
    pub fn input(&self) -> &str {
        match self {
            NameError::Empty { input }
            | NameError::Whitespace { input }
            | NameError::Url { input, .. }
            | NameError::Email { input }
            | NameError::Port { input, .. }
            | NameError::BadIpv6 { input }
            | NameError::UnusableIp { input, .. }
            | NameError::NumericLastLabel { input }
            | NameError::TooLong { input }
            | NameError::LabelTooLong { input, .. }
            | NameError::EmptyLabel { input }
            | NameError::BadChar { input, .. }
            | NameError::Hyphen { input, .. }
            | NameError::BareWildcard { input }
            | NameError::WildcardPosition { input }
            | NameError::WildcardOnSuffix { input, .. }
            | NameError::Idna { input } => input,
        }
    }

    /// What to do instead, as one line for the person who typed the name.
    pub fn hint(&self) -> String {
        match self {
            NameError::Empty { .. } => "remove the empty entry from the list of names".into(),
            NameError::Whitespace { .. } => {
                "give each name as its own entry, without spaces".into()
            }
            NameError::Url { host, .. } => format!("give only the host name: '{host}'"),
            NameError::Email { .. } => {
                "a server certificate names hosts: give the host name, not an email address".into()
            }
            NameError::Port { host, .. } => format!("drop the port: '{host}'"),
            NameError::BadIpv6 { .. } => {
                "write an IPv6 address like '::1' or '[fd00::1]', without a zone or port".into()
            }
            NameError::UnusableIp { .. } => {
                "name the address clients connect to, such as 127.0.0.1 or the host's LAN address"
                    .into()
            }
            NameError::NumericLastLabel { .. } => {
                "an IPv4 address has four numbers from 0 to 255 without leading zeros; a host name needs a non-numeric last label".into()
            }
            NameError::TooLong { .. } | NameError::LabelTooLong { .. } => {
                "DNS allows 63 characters per label and 253 in all; use a shorter name".into()
            }
            NameError::EmptyLabel { .. } => "remove the extra dot".into(),
            NameError::BadChar { ch: '_', .. } => {
                "browsers and CAs refuse '_' in host names; use '-' instead".into()
            }
            NameError::BadChar { .. } => {
                "a host name uses letters, digits, hyphens and dots only".into()
            }
            NameError::Hyphen { .. } => "remove the hyphen at the start or end of the label".into(),
            NameError::BareWildcard { .. } | NameError::WildcardPosition { .. } => {
                "write a wildcard as '*.example.test'; it matches exactly one label".into()
            }
            NameError::WildcardOnSuffix { suffix, .. } => format!(
                "browsers refuse a wildcard on '{suffix}': list the host names, or use a deeper wildcard such as '*.app.{suffix}'"
            ),
            NameError::Idna { .. } => {
                "check the spelling; give the name in Unicode or as valid punycode ('xn--...')"
                    .into()
            }
        }
    }
}

/// Whether `name` (lower-case ASCII, no trailing dot) is itself a public suffix in
/// Mozilla's Public Suffix List (`com`, `dev`, `co.uk`, `github.io`): a wildcard directly on
/// one is refused by browsers, and a CA must never be constrained to one.
pub fn is_public_suffix(name: &str) -> bool {
    psl::suffix(name.as_bytes()).is_some_and(|s| s.is_known() && s.as_bytes() == name.as_bytes())
}

fn parse_one(input: &str) -> Result<SanName, NameError> {
    let err_input = || input.to_owned();
    if input.is_empty() {
        return Err(NameError::Empty { input: err_input() });
    }
    if input.chars().any(char::is_whitespace) {
        return Err(NameError::Whitespace { input: err_input() });
    }
    if let Some(idx) = input.find("://") {
        let rest = &input[idx + 3..];
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let authority = authority.rsplit('@').next().unwrap_or_default();
        let host = strip_port(authority).unwrap_or(authority);
        return Err(NameError::Url {
            input: err_input(),
            host: host.to_owned(),
        });
    }
    if input.contains('@') {
        return Err(NameError::Email { input: err_input() });
    }

    // IP literals, bracketed or not.
    if input.starts_with('[') && !input.ends_with(']') {
        return Err(match strip_port(input) {
            Some(host) => NameError::Port {
                input: err_input(),
                host: host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned(),
            },
            None => NameError::BadIpv6 { input: err_input() },
        });
    }
    if let Some(inner) = input.strip_prefix('[') {
        let Some(inner) = inner.strip_suffix(']') else {
            return Err(NameError::BadIpv6 { input: err_input() });
        };
        return match inner.parse::<Ipv6Addr>() {
            Ok(ip) => check_ip(input, IpAddr::V6(ip)),
            Err(_) => Err(NameError::BadIpv6 { input: err_input() }),
        };
    }
    if let Ok(ip) = input.parse::<IpAddr>() {
        return check_ip(input, ip);
    }
    if input.contains(':') {
        return Err(match strip_port(input) {
            Some(host) if !host.contains(':') => NameError::Port {
                input: err_input(),
                host: host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned(),
            },
            _ => NameError::BadIpv6 { input: err_input() },
        });
    }

    // From here on a DNS name.
    let lowered = input.to_lowercase();
    let name = lowered.strip_suffix('.').unwrap_or(&lowered);
    if name.is_empty() {
        return Err(NameError::EmptyLabel { input: err_input() });
    }
    if name == "*" {
        return Err(NameError::BareWildcard { input: err_input() });
    }
    let (wildcard, base) = match name.strip_prefix("*.") {
        Some(base) => (true, base),
        None => (false, name),
    };
    if base.contains('*') {
        return Err(NameError::WildcardPosition { input: err_input() });
    }

    let ascii = if base.is_ascii() {
        check_ldh(input, base, wildcard)?;
        // Passes LDH; now make sure any `xn--` label is real punycode.
        if base.split('.').any(|l| l.starts_with("xn--")) {
            to_ascii(base).map_err(|()| NameError::Idna { input: err_input() })?;
        }
        base.to_owned()
    } else {
        let ascii = to_ascii(base).map_err(|()| NameError::Idna { input: err_input() })?;
        check_ldh(input, &ascii, wildcard)?;
        ascii
    };

    if wildcard {
        let suffix_is_public = !ascii.contains('.') || is_public_suffix(&ascii);
        if suffix_is_public {
            return Err(NameError::WildcardOnSuffix {
                input: err_input(),
                suffix: ascii,
            });
        }
        Ok(SanName::Dns(format!("*.{ascii}")))
    } else {
        Ok(SanName::Dns(ascii))
    }
}

/// `host:port` or `[v6]:port` → host, when the part after the last colon is a port number.
fn strip_port(s: &str) -> Option<&str> {
    let (host, port) = s.rsplit_once(':')?;
    let is_port = !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
    let bracketed_v6 = host.starts_with('[') && host.ends_with(']');
    (is_port && (!host.contains(':') || bracketed_v6)).then_some(host)
}

fn check_ip(input: &str, ip: IpAddr) -> Result<SanName, NameError> {
    let kind = match ip {
        _ if ip.is_unspecified() => Some("unspecified"),
        _ if ip.is_multicast() => Some("multicast"),
        IpAddr::V4(v4) if v4.is_broadcast() => Some("broadcast"),
        _ => None,
    };
    match kind {
        Some(kind) => Err(NameError::UnusableIp {
            input: input.to_owned(),
            kind,
        }),
        None => Ok(SanName::Ip(ip)),
    }
}

/// UTS #46 ToASCII with the STD3 rules (LDH only after mapping); lengths are checked by us.
fn to_ascii(name: &str) -> Result<String, ()> {
    use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};
    Uts46::new()
        .to_ascii(
            name.as_bytes(),
            AsciiDenyList::STD3,
            Hyphens::Allow,
            DnsLength::Ignore,
        )
        .map(|cow| cow.into_owned())
        .map_err(|_| ())
}

/// The RFC 1035/1123 "preferred name syntax" checks on an ASCII, lower-case name (without the
/// wildcard label), with a specific error for each way it can fail.
fn check_ldh(input: &str, name: &str, wildcard: bool) -> Result<(), NameError> {
    let err_input = || input.to_owned();
    let total = name.len() + if wildcard { 2 } else { 0 };
    if total > 253 {
        return Err(NameError::TooLong { input: err_input() });
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(NameError::EmptyLabel { input: err_input() });
        }
        if let Some(ch) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(NameError::BadChar {
                input: err_input(),
                ch,
            });
        }
        if label.len() > 63 {
            return Err(NameError::LabelTooLong {
                input: err_input(),
                label: label.to_owned(),
            });
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(NameError::Hyphen {
                input: err_input(),
                label: label.to_owned(),
            });
        }
    }
    let last = name.rsplit('.').next().unwrap_or_default();
    // The WHATWG URL parser (what browsers use) reads a host whose last label is a number,
    // decimal or `0x` hex, as an IPv4 address or rejects it: such a DNS SAN never matches.
    let hex = last
        .strip_prefix("0x")
        .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
    if last.bytes().all(|b| b.is_ascii_digit()) || hex {
        return Err(NameError::NumericLastLabel { input: err_input() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `expected` is the normalized name (`dns:`/`ip:` prefix) or the exact error text.
    fn check(input: &str, expected: &str) {
        let actual = match SanName::parse(input) {
            Ok(SanName::Dns(d)) => format!("dns:{d}"),
            Ok(SanName::Ip(ip)) => format!("ip:{ip}"),
            Err(e) => e.to_string(),
        };
        assert_eq!(actual, expected, "input {input:?}");
    }

    #[test]
    fn good_names() {
        let table = [
            ("localhost", "dns:localhost"),
            ("LocalHost.", "dns:localhost"),
            ("Example.TEST", "dns:example.test"),
            ("a-b.c-d.test", "dns:a-b.c-d.test"),
            ("123.test", "dns:123.test"),
            ("myhost", "dns:myhost"),
            ("*.app.localhost", "dns:*.app.localhost"),
            ("*.Example.test.", "dns:*.example.test"),
            ("*.foo.co.uk", "dns:*.foo.co.uk"),
            ("127.0.0.1", "ip:127.0.0.1"),
            ("::1", "ip:::1"),
            ("[::1]", "ip:::1"),
            ("[FD7A:115C:A1E0::1]", "ip:fd7a:115c:a1e0::1"),
            ("0:0:0:0:0:0:0:1", "ip:::1"),
            ("100.101.102.103", "ip:100.101.102.103"),
            ("bücher.example", "dns:xn--bcher-kva.example"),
            ("BÜCHER.example", "dns:xn--bcher-kva.example"),
            ("*.bücher.example", "dns:*.xn--bcher-kva.example"),
            ("xn--bcher-kva.example", "dns:xn--bcher-kva.example"),
            ("例え.テスト", "dns:xn--r8jz45g.xn--zckzah"),
            // UTS #46 maps a zero-width space to nothing, as the browser's address bar does.
            ("a\u{200b}b.test", "dns:ab.test"),
            // Full-width dot, as typed with a Japanese input method.
            ("例え。テスト", "dns:xn--r8jz45g.xn--zckzah"),
            (
                &format!("{}.test", "a".repeat(63)),
                &format!("dns:{}.test", "a".repeat(63)),
            ),
        ];
        for (input, expected) in table {
            check(input, expected);
        }
    }

    #[test]
    fn bad_names() {
        let long_label = "a".repeat(64);
        let long_name = format!("{}.test", vec!["a".repeat(60); 5].join("."));
        let table = [
            ("", "invalid name '': empty"),
            ("foo bar", "invalid name 'foo bar': contains whitespace"),
            (
                " localhost",
                "invalid name ' localhost': contains whitespace",
            ),
            ("a\tb", "invalid name 'a\\tb': contains whitespace"),
            (
                "1.2.3.4.5",
                "invalid name '1.2.3.4.5': not an IP address, and a DNS name cannot end in a numeric label",
            ),
            (
                "127.0.0.01",
                "invalid name '127.0.0.01': not an IP address, and a DNS name cannot end in a numeric label",
            ),
            (
                "256.1.1.1",
                "invalid name '256.1.1.1': not an IP address, and a DNS name cannot end in a numeric label",
            ),
            (
                "-bad.test",
                "invalid name '-bad.test': label '-bad' starts or ends with a hyphen",
            ),
            (
                "bad-.test",
                "invalid name 'bad-.test': label 'bad-' starts or ends with a hyphen",
            ),
            ("*", "invalid name '*': a bare wildcard matches no host"),
            (
                "*.*.test",
                "invalid name '*.*.test': a wildcard is only allowed as the whole leftmost label",
            ),
            (
                "a.*.test",
                "invalid name 'a.*.test': a wildcard is only allowed as the whole leftmost label",
            ),
            (
                "f*.test",
                "invalid name 'f*.test': a wildcard is only allowed as the whole leftmost label",
            ),
            (
                "*.com",
                "invalid name '*.com': a wildcard directly on the public suffix or top-level domain 'com'",
            ),
            (
                "*.localhost",
                "invalid name '*.localhost': a wildcard directly on the public suffix or top-level domain 'localhost'",
            ),
            (
                "*.co.uk",
                "invalid name '*.co.uk': a wildcard directly on the public suffix or top-level domain 'co.uk'",
            ),
            (
                "*.ts.net",
                "invalid name '*.ts.net': a wildcard directly on the public suffix or top-level domain 'ts.net'",
            ),
            (
                "https://x",
                "invalid name 'https://x': a URL, not a host name",
            ),
            (
                "http://localhost:8443/path",
                "invalid name 'http://localhost:8443/path': a URL, not a host name",
            ),
            (
                "a@b",
                "invalid name 'a@b': an email address, not a host name",
            ),
            (
                "localhost:8443",
                "invalid name 'localhost:8443': includes a port",
            ),
            ("[::1]:8443", "invalid name '[::1]:8443': includes a port"),
            (
                "fe80::1%eth0",
                "invalid name 'fe80::1%eth0': not a valid IPv6 address",
            ),
            (
                "[127.0.0.1]",
                "invalid name '[127.0.0.1]': not a valid IPv6 address",
            ),
            ("::1::", "invalid name '::1::': not a valid IPv6 address"),
            (
                "0.0.0.0",
                "invalid name '0.0.0.0': unspecified address, not one a client connects to",
            ),
            (
                "::",
                "invalid name '::': unspecified address, not one a client connects to",
            ),
            (
                "255.255.255.255",
                "invalid name '255.255.255.255': broadcast address, not one a client connects to",
            ),
            (
                "224.0.0.1",
                "invalid name '224.0.0.1': multicast address, not one a client connects to",
            ),
            (
                "a..test",
                "invalid name 'a..test': empty label (a leading dot or two dots in a row)",
            ),
            (
                ".test",
                "invalid name '.test': empty label (a leading dot or two dots in a row)",
            ),
            (
                ".",
                "invalid name '.': empty label (a leading dot or two dots in a row)",
            ),
            (
                "test..",
                "invalid name 'test..': empty label (a leading dot or two dots in a row)",
            ),
            (
                "my_host.test",
                "invalid name 'my_host.test': character '_' is not allowed in a DNS name",
            ),
            (
                "a/b",
                "invalid name 'a/b': character '/' is not allowed in a DNS name",
            ),
            (
                "xn--zz.test",
                "invalid name 'xn--zz.test': not a valid internationalized domain name",
            ),
            (
                "\u{fffd}.test",
                "invalid name '\u{fffd}.test': not a valid internationalized domain name",
            ),
            (
                "\u{301}a.test",
                "invalid name '\\u{301}a.test': not a valid internationalized domain name",
            ),
        ];
        for (input, expected) in table {
            check(input, expected);
        }
        check(
            &format!("{long_label}.test"),
            &format!(
                "invalid name '{long_label}.test': label '{long_label}' is longer than 63 characters"
            ),
        );
        check(
            &long_name,
            &format!("invalid name '{long_name}': longer than 253 characters"),
        );
    }

    #[test]
    fn plan_dedups_and_keeps_order() {
        let plan =
            plan_names(&["b.test", "127.0.0.1", "B.test.", "[::1]", "::1", "a.test"]).unwrap();
        let shown: Vec<String> = plan.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["b.test", "127.0.0.1", "::1", "a.test"]);
        assert!(plan_names(&[] as &[&str]).unwrap().is_empty());
    }

    #[test]
    fn plan_stops_at_first_bad_name() {
        let err = plan_names(&["localhost", "foo bar", "-x"]).unwrap_err();
        assert_eq!(err.input(), "foo bar");
    }

    #[test]
    fn hints_name_the_fix() {
        let table = [
            ("https://x/y", "give only the host name: 'x'"),
            ("localhost:8443", "drop the port: 'localhost'"),
            ("[::1]:443", "drop the port: '::1'"),
            (
                "my_host",
                "browsers and CAs refuse '_' in host names; use '-' instead",
            ),
            (
                "*.test",
                "browsers refuse a wildcard on 'test': list the host names, or use a deeper wildcard such as '*.app.test'",
            ),
        ];
        for (input, expected) in table {
            let err = SanName::parse(input).unwrap_err();
            assert_eq!(err.hint(), expected, "input {input:?}");
            assert!(!err.to_string().contains('\n'));
        }
    }

    #[test]
    fn serializes_as_text() {
        let names = plan_names(&["localhost", "::1"]).unwrap();
        let json = serde_json::to_string(&names).unwrap();
        assert_eq!(json, r#"["localhost","::1"]"#);
    }
}
