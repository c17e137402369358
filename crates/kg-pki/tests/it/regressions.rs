//! Regressions found by the security review of the first certctl release.

use kg_pki::{SanName, default_constraints, plan_names};

/// A host called like a public suffix (`dev`, `app`) must not give the local CA that whole
/// namespace: a permitted subtree covers every name below it.
#[test]
fn a_host_named_like_a_tld_does_not_widen_the_ca() {
    let c = default_constraints(
        &[
            "dev".to_owned(),
            "app".to_owned(),
            "vm".to_owned(),
            "laptop.co.uk".to_owned(),
        ],
        &[],
    );
    assert!(!c.dns.contains(&"dev".to_owned()), "{:?}", c.dns);
    assert!(!c.dns.contains(&"app".to_owned()), "{:?}", c.dns);
    assert!(
        c.dns.contains(&"vm".to_owned()),
        "an unknown single label is this host's own name"
    );
    assert!(c.dns.contains(&"laptop.co.uk".to_owned()));
    // What the user widens on purpose stays widened.
    let c = default_constraints(&[], &["dev".to_owned()]);
    assert!(c.dns.contains(&"dev".to_owned()));
}

/// Browsers read a last label of `0x` and hex digits as part of an IPv4 address (WHATWG URL
/// "ends in a number"), so such a DNS SAN never matches; and wildcards on any ICANN public
/// suffix are refused, not only those of a short built-in list.
#[test]
fn names_browsers_reject_are_refused() {
    for bad in [
        "0x7f000001",
        "web.0xff",
        "*.gov.in",
        "*.ac.za",
        "*.edu.cn",
        "*.github.io",
    ] {
        assert!(plan_names(&[bad]).is_err(), "{bad} must be refused");
    }
    for good in ["web.0xg", "0x.test", "*.app.example.com"] {
        assert!(plan_names(&[good]).is_ok(), "{good} must be accepted");
    }
    assert_eq!(
        plan_names(&["*.shop.example.co.uk"]).unwrap(),
        [SanName::Dns("*.shop.example.co.uk".into())]
    );
}
