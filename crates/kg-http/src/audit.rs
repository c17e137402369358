//! The audit sink: one JSON object per decision the rooms record (`/auth`, `/metrics`, the
//! proxy, sign-in) and per upstream failure, written by a background thread. What a line
//! says is the rooms' business; this module only keeps the promises below.
//!
//! ```text
//! {"ts":"2026-11-01T12:00:00.123Z","kind":"audit","event":"decision",
//!  "request_id":"5f3a9c01-17","decision":"deny","reason":"unknown","status":401,
//!  "token_id":null,"token_name":null,"client":"198.51.100.4","method":"GET",
//!  "path":"/admin/users"}
//! ```
//!
//! The envelope (`ts`, `kind`, `event`) is the server log's, with `kind: "audit"` where a
//! log line has its `level`; `event` is `decision` or `upstream_error`. Numbers are JSON
//! numbers (`status`, `suppressed`), absent values `null` (`docs/schema/audit-line.json`).
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
//!   counted in `keygate_audit_dropped_total` rather than stalling requests. A write that
//!   fails (a full disk) loses its lines too: counted the same way, and said once on the
//!   server's log (`audit_write_failed`), then `audit_write_recovered` with the number lost.
//! - SIGHUP reopens a file target ([`Audit::reopen`]), for logrotate's `postrotate`: lines
//!   logged before the reopen go to the old file, later ones to the new one, none lost or
//!   split.
//!   When the reopen fails, the old file stays in use. With stderr, SIGHUP does nothing.

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use crate::ids::{RequestIds, push_u64};
use crate::log::{push_str, push_time};
use crate::metrics::Metrics;

/// Where audit lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditTarget {
    /// The server's standard error.
    Stderr,
    /// A file, appended to (created 0600 if missing).
    File(PathBuf),
}

/// Which allowed requests are written to the audit log (denials always are).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAllows {
    /// None.
    Off,
    /// One in [`SAMPLE_EVERY`].
    Sampled,
    /// Every one; this costs throughput.
    All,
}

/// With `audit_allows = "sampled"`, one allow in this many is logged.
pub const SAMPLE_EVERY: u64 = 100;
const FLUSH_AT: usize = 64 * 1024;
const MAX_PENDING: usize = 1024 * 1024;

/// One decision, as logged.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// `allow` or `deny`.
    pub decision: &'static str,
    /// Why, as a stable lower-case code.
    pub reason: &'static str,
    /// The HTTP status sent.
    pub status: u16,
    /// The token's id, when known.
    pub token_id: Option<&'a str>,
    /// The token's name, when it verified.
    pub token_name: Option<&'a str>,
    /// The login name of the local user a localhost-bypass decision was for (the field is
    /// left out otherwise).
    pub local_user: Option<&'a str>,
    /// The sign-in name of the person a decision was about (the field is left out
    /// otherwise).
    pub user: Option<&'a str>,
    /// The client address.
    pub client: IpAddr,
    /// The request method (the original one, when a trusted proxy said).
    pub method: &'a str,
    /// The original path, query removed, when a trusted proxy said.
    pub path: Option<&'a [u8]>,
    /// Throttled requests from this client not logged since the last line.
    pub suppressed: u32,
    /// The request's id, when the caller drew it already ([`Audit::ids`]); else one is
    /// drawn for this line.
    pub request_id: Option<&'a str>,
}

/// A value in an [`Audit::log_event`] line.
#[derive(Debug, Clone, Copy)]
pub enum Field<'a> {
    /// A JSON string (escaped; invalid UTF-8 dropped).
    Str(&'a [u8]),
    /// A JSON number.
    Num(u64),
}

/// The audit log.
pub struct Audit {
    shared: Arc<Shared>,
    allows: AuditAllows,
    allow_count: AtomicU64,
    ids: RequestIds,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// The file to reopen on SIGHUP; `None` for stderr.
    path: Option<PathBuf>,
}

struct Shared {
    pending: Mutex<Vec<u8>>,
    wake: Condvar,
    stop: AtomicBool,
    /// A reopened file for the writer to switch to, and the lines logged before it that
    /// still belong to the old file. Only the writer thread writes, so a switch can never
    /// split or interleave lines; and no lock is held across IO, so [`Audit::reopen`] does
    /// not wait on a slow disk.
    reopened: Mutex<Option<Reopened>>,
    metrics: Arc<Metrics>,
}

struct Reopened {
    file: std::fs::File,
    old_lines: Vec<u8>,
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
            reopened: Mutex::new(None),
            metrics,
        });
        let writer = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("keygate-audit".into())
                .spawn(move || write_loop(&shared, out))?
        };
        Ok(Audit {
            shared,
            allows,
            allow_count: AtomicU64::new(0),
            ids: RequestIds::default(),
            writer: Mutex::new(Some(writer)),
            path: match target {
                AuditTarget::Stderr => None,
                AuditTarget::File(path) => Some(path.clone()),
            },
        })
    }

    /// Opens a file target's path again and has the writer switch to it (on SIGHUP, after
    /// logrotate moved the file away). The new file is opened like the first: created 0600
    /// when missing, never through a symlink. Lines logged before this call go to the old
    /// file, lines logged after it returns to the new one. On failure the error is logged
    /// and the old file stays in use. With stderr, nothing to do.
    pub fn reopen(&self) -> std::io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let file = open_append(path).inspect_err(|e| {
            crate::log::error(
                "audit_reopen_failed",
                &[
                    ("error", (&e.to_string()).into()),
                    ("note", "still appending to the file opened before".into()),
                ],
            );
        })?;
        // Under the buffer's lock, so that no line can land on the wrong side of the switch.
        let mut buf = self
            .shared
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let mut slot = self
            .shared
            .reopened
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match &mut *slot {
            // Two reopens before the writer got to the first: the lines between them go to
            // the old file too, in order, and the first new file is closed unused.
            Some(r) => {
                r.old_lines.append(&mut buf);
                r.file = file;
            }
            None => {
                *slot = Some(Reopened {
                    file,
                    old_lines: std::mem::take(&mut *buf),
                });
            }
        }
        drop((slot, buf));
        self.shared.wake.notify_one();
        Ok(())
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

    /// The buffer of lines waiting for the writer, or `None` (the line counted as dropped)
    /// when the writer has fallen [`MAX_PENDING`] behind.
    fn pending(&self) -> Option<std::sync::MutexGuard<'_, Vec<u8>>> {
        let buf = self
            .shared
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if buf.len() > MAX_PENDING {
            drop(buf);
            self.shared.metrics.audit_dropped(1);
            return None;
        }
        Some(buf)
    }

    /// The source of request ids, shared with whoever needs one before logging under it.
    pub fn ids(&self) -> &RequestIds {
        &self.ids
    }

    /// Appends one line.
    pub fn log(&self, e: &Entry<'_>) {
        let Some(mut buf) = self.pending() else {
            // The id is spent all the same, so ids stay in step with requests.
            if e.request_id.is_none() {
                self.ids.push_next(&mut Vec::new());
            }
            return;
        };
        let b = &mut *buf;
        let before = b.len();
        b.extend_from_slice(b"{\"ts\":\"");
        push_time(b, SystemTime::now());
        b.extend_from_slice(b"\",\"kind\":\"audit\",\"event\":\"decision\",\"request_id\":\"");
        match e.request_id {
            // Drawn from `ids` (hex and a counter): nothing to escape.
            Some(id) => b.extend_from_slice(id.as_bytes()),
            None => self.ids.push_next(b),
        }
        b.extend_from_slice(b"\",\"decision\":\"");
        b.extend_from_slice(e.decision.as_bytes());
        b.extend_from_slice(b"\",\"reason\":\"");
        b.extend_from_slice(e.reason.as_bytes());
        b.extend_from_slice(b"\",\"status\":");
        push_u64(b, u64::from(e.status));
        b.extend_from_slice(b",\"token_id\":");
        opt_str(b, e.token_id.map(str::as_bytes));
        b.extend_from_slice(b",\"token_name\":");
        opt_str(b, e.token_name.map(str::as_bytes));
        if let Some(user) = e.local_user {
            b.extend_from_slice(b",\"local_user\":");
            push_json(b, user.as_bytes());
        }
        if let Some(user) = e.user {
            b.extend_from_slice(b",\"user\":");
            push_json(b, user.as_bytes());
        }
        b.extend_from_slice(b",\"client\":\"");
        push_ip(b, e.client);
        b.extend_from_slice(b"\",\"method\":");
        push_json(b, e.method.as_bytes());
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

    /// Logs a proxied request the upstream did not answer properly (proxy mode). The client
    /// got a generic page naming `id`; this line, under the same `request_id`, says why.
    pub fn log_upstream_error(
        &self,
        id: &str,
        status: u16,
        client: IpAddr,
        method: &str,
        path: &[u8],
        detail: &str,
    ) {
        let client = client.to_string();
        self.log_event(
            "upstream_error",
            &[
                ("request_id", Field::Str(id.as_bytes())),
                ("decision", Field::Str(b"error")),
                ("reason", Field::Str(b"upstream")),
                ("status", Field::Num(u64::from(status))),
                ("client", Field::Str(client.as_bytes())),
                ("method", Field::Str(method.as_bytes())),
                ("path", Field::Str(strip_query(path))),
                ("detail", Field::Str(detail.as_bytes())),
            ],
        );
    }

    /// Logs an event that is not a request's decision (an upstream's failure, a token the
    /// authorization server issued, a reused refresh token): `kind: audit`, `event`, then
    /// `fields`, whatever `audit_allows` says.
    pub fn log_event(&self, event: &'static str, fields: &[(&'static str, Field<'_>)]) {
        let mut line = Vec::with_capacity(256);
        line.extend_from_slice(b"{\"ts\":\"");
        push_time(&mut line, SystemTime::now());
        line.extend_from_slice(b"\",\"kind\":\"audit\",\"event\":");
        push_str(&mut line, event.as_bytes());
        for (k, v) in fields {
            line.push(b',');
            push_str(&mut line, k.as_bytes());
            line.push(b':');
            match v {
                Field::Str(v) => push_str(&mut line, v),
                Field::Num(n) => push_u64(&mut line, *n),
            }
        }
        line.extend_from_slice(b"}\n");
        let Some(mut buf) = self.pending() else {
            return;
        };
        buf.extend_from_slice(&line);
        drop(buf);
        self.shared.wake.notify_one();
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
    let mut health = Health::default();
    loop {
        let stop;
        let next;
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
            // Taken with the buffer: every line in `spare` was logged after the switch.
            next = shared
                .reopened
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
        }
        if let Some(Reopened { file, old_lines }) = next {
            write_out(shared, out.as_mut(), &old_lines, &mut health);
            // The old file is closed here, after its last lines.
            out = Box::new(file);
        }
        if !spare.is_empty() {
            write_out(shared, out.as_mut(), &spare, &mut health);
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

/// Whether the last write failed, and how many lines were lost since, so that a full disk is
/// said once on the server's log (and once more when writing works again), not per line.
#[derive(Default)]
struct Health {
    lost: Option<u64>,
}

fn write_out(shared: &Shared, out: &mut (dyn Write + Send), lines: &[u8], health: &mut Health) {
    if lines.is_empty() {
        return;
    }
    match out.write_all(lines).and_then(|()| out.flush()) {
        Ok(()) => {
            if let Some(lost) = health.lost.take() {
                crate::log::info("audit_write_recovered", &[("lost_lines", lost.into())]);
            }
        }
        Err(e) => {
            let n = lines.iter().filter(|&&b| b == b'\n').count() as u64;
            shared.metrics.audit_dropped(n);
            match &mut health.lost {
                Some(lost) => *lost += n,
                None => {
                    health.lost = Some(n);
                    // A full disk or a vanished mount: the lines are lost, and this is the one
                    // place left to say so (keygate_audit_dropped_total counts them too).
                    crate::log::error(
                        "audit_write_failed",
                        &[
                            ("error", (&e.to_string()).into()),
                            (
                                "note",
                                "audit lines are being lost until writing works again; \
                                 keygate_audit_dropped_total counts them"
                                    .into(),
                            ),
                        ],
                    );
                }
            }
        }
    }
}

/// Opens the audit log for appending: created 0600 when missing, never through a symlink, and
/// never a file another user created or can write to ([`kg_fs::trust::open_append`]; the
/// server's opener; `keygate check` asks [`check_target`]). A refusal is an `io::Error` wrapping the
/// [`kg_fs::Error`], whose hint the server shows.
pub fn open_append(path: &Path) -> std::io::Result<std::fs::File> {
    kg_fs::trust::open_append("audit log", path).map_err(|e| match e {
        kg_fs::Error::Io(e) => e,
        refused => std::io::Error::other(refused),
    })
}

/// What [`open_append`] would do with `path`, for `keygate check`, which writes nothing:
/// `Ok(true)` when the log is there and would be appended to, `Ok(false)` when `serve` would
/// create it (0600). Refusals as for [`open_append`].
pub fn check_target(path: &Path) -> std::io::Result<bool> {
    kg_fs::trust::check_append("audit log", path).map_err(|e| match e {
        kg_fs::Error::Io(e) => e,
        refused => std::io::Error::other(refused),
    })
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
        Some(s) => push_json(b, s),
        None => b.extend_from_slice(b"null"),
    }
}

/// [`push_str`], with a fast path for what audit fields almost always are (ids, names,
/// methods, paths): printable ASCII with nothing to escape, copied in one piece rather than
/// character by character. The output is the same either way.
fn push_json(b: &mut Vec<u8>, s: &[u8]) {
    if s.iter()
        .all(|&c| (0x20..0x7f).contains(&c) && c != b'"' && c != b'\\')
    {
        b.reserve(s.len() + 2);
        b.push(b'"');
        b.extend_from_slice(s);
        b.push(b'"');
    } else {
        push_str(b, s);
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
    fn the_fast_string_path_writes_what_the_general_one_does() {
        let cases: &[&[u8]] = &[
            b"",
            b"GET",
            b"/admin/users",
            b"0123456789AB",
            b"a\"q",
            b"back\\slash",
            b"tab\there",
            b"\x7f",
            b"caf\xc3\xa9",
            b"\xff",
            b" ~",
        ];
        for s in cases {
            let (mut fast, mut general) = (Vec::new(), Vec::new());
            push_json(&mut fast, s);
            push_str(&mut general, s);
            assert_eq!(fast, general, "{s:?}");
        }
    }

    #[test]
    fn lines_are_json_without_the_query() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let metrics = Arc::new(Metrics::default());
        let audit =
            Audit::open(&AuditTarget::File(path.clone()), AuditAllows::All, metrics).unwrap();
        audit.log(&Entry {
            decision: "deny",
            reason: "unknown",
            status: 401,
            token_id: Some("0123456789AB"),
            token_name: None,
            local_user: None,
            user: None,
            client: "198.51.100.4".parse().unwrap(),
            method: "GET",
            path: Some(b"/admin/x?access_token=secret"),
            suppressed: 0,
            request_id: None,
        });
        audit.close();
        let text = std::fs::read_to_string(&path).unwrap();
        let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert!(text.starts_with("{\"ts\":\""), "{text}");
        assert_eq!(v["kind"], "audit");
        assert_eq!(v["event"], "decision");
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

    fn deny(audit: &Audit, path: &'static str) {
        audit.log(&Entry {
            decision: "deny",
            reason: "unknown",
            status: 401,
            token_id: None,
            token_name: None,
            local_user: None,
            user: None,
            client: "198.51.100.4".parse().unwrap(),
            method: "GET",
            path: Some(path.as_bytes()),
            suppressed: 0,
            request_id: None,
        });
    }

    fn paths(file: &Path) -> Vec<String> {
        std::fs::read_to_string(file)
            .unwrap()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["path"].as_str().unwrap().to_owned()
            })
            .collect()
    }

    #[test]
    fn reopen_sends_earlier_lines_to_the_moved_file_and_later_ones_to_a_new_private_one() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let rotated = dir.path().join("audit.log.1");
        let metrics = Arc::new(Metrics::default());
        let audit = Audit::open(
            &AuditTarget::File(path.clone()),
            AuditAllows::All,
            Arc::clone(&metrics),
        )
        .unwrap();
        deny(&audit, "/written");
        while std::fs::metadata(&path).unwrap().len() == 0 {
            std::thread::sleep(Duration::from_millis(10));
        }
        // logrotate: rename, a line still on its way, then the signal.
        std::fs::rename(&path, &rotated).unwrap();
        deny(&audit, "/buffered");
        audit.reopen().unwrap();
        deny(&audit, "/after");
        audit.close();
        assert_eq!(paths(&rotated), ["/written", "/buffered"]);
        assert_eq!(paths(&path), ["/after"]);
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(metrics.render().contains("keygate_audit_dropped_total 0"));
    }

    #[test]
    fn two_reopens_in_a_row_keep_every_line_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let audit = Audit::open(
            &AuditTarget::File(path.clone()),
            AuditAllows::All,
            Arc::new(Metrics::default()),
        )
        .unwrap();
        let moved = dir.path().join("moved");
        deny(&audit, "/1");
        std::fs::rename(&path, &moved).unwrap();
        audit.reopen().unwrap();
        deny(&audit, "/2");
        audit.reopen().unwrap();
        deny(&audit, "/3");
        audit.close();
        let mut all = paths(&moved);
        all.extend(paths(&path));
        assert_eq!(all, ["/1", "/2", "/3"]);
    }

    #[test]
    fn a_failed_reopen_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let moved = dir.path().join("audit.log.1");
        let audit = Audit::open(
            &AuditTarget::File(path.clone()),
            AuditAllows::All,
            Arc::new(Metrics::default()),
        )
        .unwrap();
        std::fs::rename(&path, &moved).unwrap();
        // A symlink where the log was is refused, as at start-up.
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), &path).unwrap();
        let err = audit.reopen().unwrap_err();
        assert!(
            err.to_string()
                .contains("it is a symbolic link, not a regular file"),
            "{err}"
        );
        deny(&audit, "/still-old");
        audit.close();
        assert_eq!(paths(&moved), ["/still-old"]);
        assert!(!dir.path().join("elsewhere").exists());
    }

    /// Issue 13: after logrotate moved the log away, another user could create the next one.
    #[test]
    fn a_reopen_onto_a_file_others_can_write_keeps_the_old_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let moved = dir.path().join("audit.log.1");
        let audit = Audit::open(
            &AuditTarget::File(path.clone()),
            AuditAllows::All,
            Arc::new(Metrics::default()),
        )
        .unwrap();
        std::fs::rename(&path, &moved).unwrap();
        std::fs::write(&path, b"").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let err = audit.reopen().unwrap_err();
        assert!(
            err.to_string().contains("is writable by group or others"),
            "{err}"
        );
        deny(&audit, "/still-old");
        audit.close();
        assert_eq!(paths(&moved), ["/still-old"]);
        assert_eq!(std::fs::read(&path).unwrap(), b"");
    }

    #[test]
    fn reopen_with_stderr_does_nothing() {
        let audit = Audit::open(
            &AuditTarget::Stderr,
            AuditAllows::Off,
            Arc::new(Metrics::default()),
        )
        .unwrap();
        audit.reopen().unwrap();
        audit.close();
    }
}
