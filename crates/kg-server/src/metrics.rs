//! Counters for `/metrics`, in the Prometheus text format. Fixed atomics: counting a
//! decision is one relaxed add, with no lock and no allocation.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use kg_tokens::Reason;

/// Why `/auth` decided as it did: the `reason` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A valid token with every required scope.
    Allow,
    /// No bearer credentials.
    Missing,
    /// A bad token, with the store's reason.
    Invalid(Reason),
    /// A valid token without a required scope.
    InsufficientScope,
    /// The client address or token id used up its failed attempts.
    Throttled,
    /// A request `/auth` cannot judge (a body), or a sign-in form that cannot be read.
    BadRequest,
    /// A sign-in or sign-out form without a matching CSRF value, or sent from another site.
    Csrf,
    /// A browser session began (a token was accepted on the sign-in page).
    SignedIn,
    /// A browser session was ended by signing out.
    SignedOut,
    /// Proxy mode: a request from this host, let through by the localhost bypass.
    Local,
    /// Proxy mode: a cookie-authenticated state change or upgrade from another origin.
    CrossSite,
    /// Proxy mode: a session whose token was revoked, expired or retired was ended.
    SessionEnded,
}

impl Outcome {
    const ALL: [Outcome; 16] = [
        Outcome::Allow,
        Outcome::Missing,
        Outcome::Invalid(Reason::Malformed),
        Outcome::Invalid(Reason::BadChecksum),
        Outcome::Invalid(Reason::Unknown),
        Outcome::Invalid(Reason::Expired),
        Outcome::Invalid(Reason::Revoked),
        Outcome::InsufficientScope,
        Outcome::Throttled,
        Outcome::BadRequest,
        Outcome::Csrf,
        Outcome::SignedIn,
        Outcome::SignedOut,
        Outcome::Local,
        Outcome::CrossSite,
        Outcome::SessionEnded,
    ];

    fn index(self) -> usize {
        match self {
            Outcome::Allow => 0,
            Outcome::Missing => 1,
            Outcome::Invalid(Reason::Malformed) => 2,
            Outcome::Invalid(Reason::BadChecksum) => 3,
            Outcome::Invalid(Reason::Unknown) => 4,
            Outcome::Invalid(Reason::Expired) => 5,
            Outcome::Invalid(Reason::Revoked) => 6,
            Outcome::InsufficientScope => 7,
            Outcome::Throttled => 8,
            Outcome::BadRequest => 9,
            Outcome::Csrf => 10,
            Outcome::SignedIn => 11,
            Outcome::SignedOut => 12,
            Outcome::Local => 13,
            Outcome::CrossSite => 14,
            Outcome::SessionEnded => 15,
        }
    }

    /// `allow` or `deny`.
    pub fn decision(self) -> &'static str {
        match self {
            Outcome::Allow | Outcome::SignedIn | Outcome::SignedOut | Outcome::Local => "allow",
            _ => "deny",
        }
    }

    /// A stable lower-case code for logs and labels.
    pub fn reason(self) -> &'static str {
        match self {
            Outcome::Allow => "ok",
            Outcome::Missing => "missing_credentials",
            Outcome::Invalid(r) => r.as_str(),
            Outcome::InsufficientScope => "insufficient_scope",
            Outcome::Throttled => "throttled",
            Outcome::BadRequest => "bad_request",
            Outcome::Csrf => "csrf",
            Outcome::SignedIn => "signed_in",
            Outcome::SignedOut => "signed_out",
            Outcome::Local => "local",
            Outcome::CrossSite => "cross_site",
            Outcome::SessionEnded => "session_ended",
        }
    }
}

/// Every counter the server keeps.
#[derive(Debug, Default)]
pub struct Metrics {
    decisions: [AtomicU64; 16],
    upstream_errors: AtomicU64,
    token_reloads: [AtomicU64; 2],
    cert_reloads: [AtomicU64; 2],
    cert_not_after: AtomicI64,
    tailnet_not_after: AtomicI64,
    connections: AtomicU64,
    connections_open: AtomicI64,
    audit_dropped: AtomicU64,
}

impl Metrics {
    /// Counts one `/auth` decision.
    pub fn decision(&self, o: Outcome) {
        self.decisions[o.index()].fetch_add(1, Relaxed);
    }

    /// Counts a reload of `what` (`tokens` or `cert`).
    pub fn reload(&self, what: &str, ok: bool) {
        let slot = if what == "cert" {
            &self.cert_reloads
        } else {
            &self.token_reloads
        };
        slot[usize::from(!ok)].fetch_add(1, Relaxed);
    }

    /// Records the served certificates' expiry (Unix seconds; 0 when there is none).
    pub fn cert_not_after(&self, local: i64, tailnet: i64) {
        self.cert_not_after.store(local, Relaxed);
        self.tailnet_not_after.store(tailnet, Relaxed);
    }

    /// A connection was accepted.
    pub fn connection_opened(&self) {
        self.connections.fetch_add(1, Relaxed);
        self.connections_open.fetch_add(1, Relaxed);
    }

    /// A connection ended.
    pub fn connection_closed(&self) {
        self.connections_open.fetch_sub(1, Relaxed);
    }

    /// Audit lines dropped because the writer fell behind.
    pub fn audit_dropped(&self, n: u64) {
        self.audit_dropped.fetch_add(n, Relaxed);
    }

    /// Counts a proxied request the upstream did not answer properly.
    pub fn upstream_error(&self) {
        self.upstream_errors.fetch_add(1, Relaxed);
    }

    /// The decisions counted so far for `o` (tests).
    pub fn decisions(&self, o: Outcome) -> u64 {
        self.decisions[o.index()].load(Relaxed)
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut s = String::with_capacity(2048);
        let _ = writeln!(
            s,
            "# HELP keygate_auth_decisions_total /auth decisions by result and reason.\n\
             # TYPE keygate_auth_decisions_total counter"
        );
        for o in Outcome::ALL {
            let _ = writeln!(
                s,
                "keygate_auth_decisions_total{{result=\"{}\",reason=\"{}\"}} {}",
                o.decision(),
                o.reason(),
                self.decisions[o.index()].load(Relaxed)
            );
        }
        let _ = writeln!(
            s,
            "# HELP keygate_upstream_errors_total Proxied requests answered 502, 504 or 413 for the upstream.\n\
             # TYPE keygate_upstream_errors_total counter\n\
             keygate_upstream_errors_total {}",
            self.upstream_errors.load(Relaxed)
        );
        let _ = writeln!(
            s,
            "# HELP keygate_reloads_total Reloads of the token store and the certificate.\n\
             # TYPE keygate_reloads_total counter"
        );
        for (what, slot) in [
            ("tokens", &self.token_reloads),
            ("cert", &self.cert_reloads),
        ] {
            for (result, i) in [("ok", 0), ("error", 1)] {
                let _ = writeln!(
                    s,
                    "keygate_reloads_total{{what=\"{what}\",result=\"{result}\"}} {}",
                    slot[i].load(Relaxed)
                );
            }
        }
        let _ = writeln!(
            s,
            "# HELP keygate_cert_not_after_seconds Expiry of the served certificates (Unix time).\n\
             # TYPE keygate_cert_not_after_seconds gauge"
        );
        for (cert, v) in [
            ("local", &self.cert_not_after),
            ("tailnet", &self.tailnet_not_after),
        ] {
            let v = v.load(Relaxed);
            if v != 0 {
                let _ = writeln!(s, "keygate_cert_not_after_seconds{{cert=\"{cert}\"}} {v}");
            }
        }
        let _ = writeln!(
            s,
            "# HELP keygate_connections_total Connections accepted.\n\
             # TYPE keygate_connections_total counter\n\
             keygate_connections_total {}\n\
             # HELP keygate_connections_open Connections open now.\n\
             # TYPE keygate_connections_open gauge\n\
             keygate_connections_open {}\n\
             # HELP keygate_audit_dropped_total Audit lines dropped because the log writer fell behind.\n\
             # TYPE keygate_audit_dropped_total counter\n\
             keygate_audit_dropped_total {}",
            self.connections.load(Relaxed),
            self.connections_open.load(Relaxed),
            self.audit_dropped.load(Relaxed),
        );
        s
    }
}
