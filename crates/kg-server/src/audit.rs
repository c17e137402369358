//! The audit log: one JSON object per `/auth` decision (and per refused `/metrics` request),
//! written by a background thread.
//!
//! ```text
//! {"time":"2026-11-01T12:00:00.123Z","request_id":"5f3a9c01-17","decision":"deny",
//!  "reason":"unknown","status":401,"token_id":null,"token_name":null,
//!  "client":"198.51.100.4","method":"GET","path":"/admin/users"}
//! ```
//!
//! - Never a token, a secret or an `Authorization` header: the fields are the token's id and
//!   name (from the store, once the token verified, or the id of a well-formed token that did
//!   not), the client address, the method, and the original path without its query (only
//!   from a trusted proxy; `null` otherwise). A query string can carry secrets, so it is cut.
//! - Denials are always logged; allows as configured (`off`, `sampled`: one in
//!   [`SAMPLE_EVERY`], `all`). Throttled requests are logged at most once a second per
//!   client, with a `suppressed` count, so a flood cannot turn into a flood of log lines.
//! - A request appends its line to a shared buffer under a lock (no allocation once the
//!   buffer has grown); the thread writes the buffer out in one `write` every 100 ms or
//!   when it passes 64 KiB. If the writer falls 1 MiB behind, lines are dropped and
//!   counted in `keygate_audit_dropped_total` rather than stalling requests.

use std::fs::OpenOptions;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use crate::log::{push_str, push_time};
use crate::metrics::{Metrics, Outcome};
use crate::settings::{AuditAllows, AuditTarget};

/// With `audit_allows = "sampled"`, one allow in this many is logged.
pub const SAMPLE_EVERY: u64 = 100;
const FLUSH_AT: usize = 64 * 1024;
const MAX_PENDING: usize = 1024 * 1024;

/// One decision, as logged.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// What was decided and why.
    pub outcome: Outcome,
    /// The HTTP status sent.
    pub status: u16,
    /// The token's id, when known.
    pub token_id: Option<&'a str>,
    /// The token's name, when it verified.
    pub token_name: Option<&'a str>,
    /// The client address.
    pub client: IpAddr,
    /// The request method (the original one, when a trusted proxy said).
    pub method: &'a str,
    /// The original path, query removed, when a trusted proxy said.
    pub path: Option<&'a [u8]>,
    /// Throttled requests from this client not logged since the last line.
    pub suppressed: u32,
}

/// The audit log.
pub struct Audit {
    shared: Arc<Shared>,
    allows: AuditAllows,
    allow_count: AtomicU64,
    salt: u32,
    next_id: AtomicU64,
    writer: Mutex<Option<JoinHandle<()>>>,
}

struct Shared {
    pending: Mutex<Vec<u8>>,
    wake: Condvar,
    stop: AtomicBool,
    metrics: Arc<Metrics>,
}

impl Audit {
    /// Opens the log (a file is created 0600 and appended to) and starts its writer.
    pub fn open(
        target: &AuditTarget,
        allows: AuditAllows,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Audit> {
        let out: Box<dyn Write + Send> = match target {
            AuditTarget::Stderr => Box::new(std::io::stderr()),
            AuditTarget::File(path) => Box::new(open_append(path)?),
        };
        let shared = Arc::new(Shared {
            pending: Mutex::new(Vec::with_capacity(FLUSH_AT)),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
            metrics,
        });
        let writer = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("keygate-audit".into())
                .spawn(move || write_loop(&shared, out))?
        };
        let mut salt = [0u8; 4];
        let _ = getrandom::fill(&mut salt);
        Ok(Audit {
            shared,
            allows,
            allow_count: AtomicU64::new(0),
            salt: u32::from_le_bytes(salt),
            next_id: AtomicU64::new(1),
            writer: Mutex::new(Some(writer)),
        })
    }

    /// Whether an allow should be logged now (counts allows for sampling).
    pub fn wants_allow(&self) -> bool {
        match self.allows {
            AuditAllows::Off => false,
            AuditAllows::All => true,
            AuditAllows::Sampled => self
                .allow_count
                .fetch_add(1, Relaxed)
                .is_multiple_of(SAMPLE_EVERY),
        }
    }

    /// Appends one line.
    pub fn log(&self, e: &Entry<'_>) {
        let id = self.next_id.fetch_add(1, Relaxed);
        let mut buf = self
            .shared
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if buf.len() > MAX_PENDING {
            drop(buf);
            self.shared.metrics.audit_dropped(1);
            return;
        }
        let b = &mut *buf;
        let before = b.len();
        b.extend_from_slice(b"{\"time\":\"");
        push_time(b, SystemTime::now());
        b.extend_from_slice(b"\",\"request_id\":\"");
        push_hex(b, self.salt);
        b.push(b'-');
        push_u64(b, id);
        b.extend_from_slice(b"\",\"decision\":\"");
        b.extend_from_slice(e.outcome.decision().as_bytes());
        b.extend_from_slice(b"\",\"reason\":\"");
        b.extend_from_slice(e.outcome.reason().as_bytes());
        b.extend_from_slice(b"\",\"status\":");
        push_u64(b, u64::from(e.status));
        b.extend_from_slice(b",\"token_id\":");
        opt_str(b, e.token_id.map(str::as_bytes));
        b.extend_from_slice(b",\"token_name\":");
        opt_str(b, e.token_name.map(str::as_bytes));
        b.extend_from_slice(b",\"client\":\"");
        push_ip(b, e.client);
        b.extend_from_slice(b"\",\"method\":");
        push_str(b, e.method.as_bytes());
        b.extend_from_slice(b",\"path\":");
        opt_str(b, e.path.map(strip_query));
        if e.suppressed > 0 {
            b.extend_from_slice(b",\"suppressed\":");
            push_u64(b, u64::from(e.suppressed));
        }
        b.extend_from_slice(b"}\n");
        // Wake the writer once, when the buffer crosses the mark: a wake-up per line would
        // be a futex call per denial until the writer gets to run.
        let wake = before < FLUSH_AT && b.len() >= FLUSH_AT;
        drop(buf);
        if wake {
            self.shared.wake.notify_one();
        }
    }

    /// Writes out everything pending and stops the writer (at shutdown).
    pub fn close(&self) {
        self.shared.stop.store(true, Relaxed);
        self.shared.wake.notify_one();
        let handle = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

impl Drop for Audit {
    fn drop(&mut self) {
        self.close();
    }
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit")
            .field("allows", &self.allows)
            .finish_non_exhaustive()
    }
}

fn write_loop(shared: &Shared, mut out: Box<dyn Write + Send>) {
    let mut spare: Vec<u8> = Vec::with_capacity(FLUSH_AT);
    loop {
        let stop;
        {
            let mut buf = shared.pending.lock().unwrap_or_else(|p| p.into_inner());
            if buf.is_empty() && !shared.stop.load(Relaxed) {
                buf = shared
                    .wake
                    .wait_timeout(buf, Duration::from_millis(100))
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            stop = shared.stop.load(Relaxed);
            std::mem::swap(&mut *buf, &mut spare);
        }
        if !spare.is_empty() {
            if out.write_all(&spare).and_then(|()| out.flush()).is_err() {
                // Nowhere to report a broken log but the metrics.
                shared
                    .metrics
                    .audit_dropped(spare.iter().filter(|&&b| b == b'\n').count() as u64);
            }
            spare.clear();
            if spare.capacity() > 4 * FLUSH_AT {
                spare.shrink_to(FLUSH_AT);
            }
        }
        if stop {
            return;
        }
    }
}

pub(crate) fn open_append(path: &Path) -> std::io::Result<std::fs::File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(no_follow_flags())
        .open(path)
        .map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot open audit log '{}': {e}", path.display()),
            )
        })
}

fn no_follow_flags() -> i32 {
    (rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::CLOEXEC).bits() as i32
}

fn strip_query(p: &[u8]) -> &[u8] {
    let end = p
        .iter()
        .position(|&b| b == b'?' || b == b'#')
        .unwrap_or(p.len());
    &p[..end]
}

fn opt_str(b: &mut Vec<u8>, s: Option<&[u8]>) {
    match s {
        Some(s) => push_str(b, s),
        None => b.extend_from_slice(b"null"),
    }
}

fn push_u64(b: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    b.extend_from_slice(&buf[i..]);
}

fn push_hex(b: &mut Vec<u8>, n: u32) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for shift in (0..8).rev() {
        b.push(HEX[((n >> (shift * 4)) & 0xf) as usize]);
    }
}

fn push_ip(b: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        // The common case, without core::fmt (a visible cost on the denial path).
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    b.push(b'.');
                }
                push_u64(b, u64::from(octet));
            }
        }
        IpAddr::V6(v6) => {
            use std::io::Write as _;
            let _ = write!(b, "{v6}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_json_without_the_query() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let metrics = Arc::new(Metrics::default());
        let audit =
            Audit::open(&AuditTarget::File(path.clone()), AuditAllows::All, metrics).unwrap();
        audit.log(&Entry {
            outcome: Outcome::Invalid(kg_tokens::Reason::Unknown),
            status: 401,
            token_id: Some("0123456789AB"),
            token_name: None,
            client: "198.51.100.4".parse().unwrap(),
            method: "GET",
            path: Some(b"/admin/x?access_token=secret"),
            suppressed: 0,
        });
        audit.close();
        let text = std::fs::read_to_string(&path).unwrap();
        let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(v["decision"], "deny");
        assert_eq!(v["reason"], "unknown");
        assert_eq!(v["status"], 401);
        assert_eq!(v["token_id"], "0123456789AB");
        assert_eq!(v["token_name"], serde_json::Value::Null);
        assert_eq!(v["client"], "198.51.100.4");
        assert_eq!(v["path"], "/admin/x");
        assert!(!text.contains("secret"));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
