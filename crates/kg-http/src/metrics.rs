//! The metrics registry for `/metrics`, in the Prometheus text format. Fixed atomics:
//! counting a decision is one relaxed add, with no lock and no allocation.
//!
//! The decision counters are labelled by the room that decides (kg-verifier's outcomes):
//! the registry is given the `(result, reason)` label pairs once and counts by index.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

/// What a reload was of, for `keygate_reloads_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reload {
    /// The token store.
    Tokens,
    /// The served certificate.
    Cert,
}

/// Every counter the server keeps.
#[derive(Debug, Default)]
pub struct Metrics {
    /// `(result, reason)` of each decision counter.
    labels: Vec<(&'static str, &'static str)>,
    decisions: Box<[AtomicU64]>,
    upstream_errors: AtomicU64,
    token_reloads: [AtomicU64; 2],
    cert_reloads: [AtomicU64; 2],
    cert_not_after: AtomicI64,
    tailnet_not_after: AtomicI64,
    connections: AtomicU64,
    connections_open: AtomicI64,
    /// Connections that gave way: the table was full, or their source was at its cap.
    connections_shed: [AtomicU64; 2],
    connections_refused: AtomicU64,
    audit_dropped: AtomicU64,
}

impl Metrics {
    /// A registry whose decision counters carry `labels`, `(result, reason)` each.
    pub fn new(labels: Vec<(&'static str, &'static str)>) -> Metrics {
        Metrics {
            decisions: labels.iter().map(|_| AtomicU64::new(0)).collect(),
            labels,
            ..Metrics::default()
        }
    }

    /// Counts one decision: the counter of `labels[index]` (an index out of range is a bug
    /// of the caller's label table, and counts nothing).
    pub fn decision(&self, index: usize) {
        if let Some(c) = self.decisions.get(index) {
            c.fetch_add(1, Relaxed);
        }
    }

    /// Counts a reload of `what`.
    pub fn reload(&self, what: Reload, ok: bool) {
        let slot = match what {
            Reload::Cert => &self.cert_reloads,
            Reload::Tokens => &self.token_reloads,
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

    /// A connection was told to give way for a new one.
    pub fn connection_shed(&self, why: crate::slots::Shed) {
        let i = match why {
            crate::slots::Shed::Full => 0,
            crate::slots::Shed::Source => 1,
        };
        self.connections_shed[i].fetch_add(1, Relaxed);
    }

    /// A connection was turned away: its source held its cap, all busy.
    pub fn connection_refused(&self) {
        self.connections_refused.fetch_add(1, Relaxed);
    }

    /// Audit lines dropped because the writer fell behind.
    pub fn audit_dropped(&self, n: u64) {
        self.audit_dropped.fetch_add(n, Relaxed);
    }

    /// Counts a proxied request the upstream did not answer properly.
    pub fn upstream_error(&self) {
        self.upstream_errors.fetch_add(1, Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut s = String::with_capacity(2048);
        let _ = writeln!(
            s,
            "# HELP keygate_auth_decisions_total /auth decisions by result and reason.\n\
             # TYPE keygate_auth_decisions_total counter"
        );
        for ((result, reason), n) in self.labels.iter().zip(&*self.decisions) {
            let _ = writeln!(
                s,
                "keygate_auth_decisions_total{{result=\"{result}\",reason=\"{reason}\"}} {}",
                n.load(Relaxed)
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
             # HELP keygate_connections_shed_total Connections closed to make room: the table was full, or their source held its cap.\n\
             # TYPE keygate_connections_shed_total counter\n\
             keygate_connections_shed_total{{reason=\"full\"}} {}\n\
             keygate_connections_shed_total{{reason=\"source\"}} {}\n\
             # HELP keygate_connections_refused_total Connections turned away: their source held its cap and every one was busy.\n\
             # TYPE keygate_connections_refused_total counter\n\
             keygate_connections_refused_total {}\n\
             # HELP keygate_audit_dropped_total Audit lines dropped because the log writer fell behind.\n\
             # TYPE keygate_audit_dropped_total counter\n\
             keygate_audit_dropped_total {}",
            self.connections.load(Relaxed),
            self.connections_open.load(Relaxed),
            self.connections_shed[0].load(Relaxed),
            self.connections_shed[1].load(Relaxed),
            self.connections_refused.load(Relaxed),
            self.audit_dropped.load(Relaxed),
        );
        s
    }
}
