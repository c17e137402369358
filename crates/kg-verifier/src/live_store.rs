//! The token store as the server sees it: verified against on every request, re-read on the
//! first request after it changed.
//!
//! # Noticing a change: an inotify watch read through the reactor
//!
//! Loaded inside a tokio runtime (as `serve` loads it), [`Tokens`] puts an inotify watch on
//! the store's directory and registers it with the runtime's reactor. The directory, not the
//! file: every writer replaces the file by a rename, which a watch on the old inode would
//! miss. A request then reads only the readiness tokio keeps for the watch, one atomic load
//! and no system call. When it is set, the request takes the write lock, reads every queued
//! event and clears the readiness (unless the reactor set it again meanwhile), checks that
//! the directory at the path is still the one watched, then calls
//! [`LoadedStore::reload_if_changed`], whose own `stat` decides: the event may be about
//! another file in the directory. An event after that read sets the readiness again.
//!
//! Why the next request still sees the change: `rename` queues the event, and so puts the
//! watch on keygate's epoll ready list, before it returns, so before `tokenctl revoke` exits.
//! A request sent after that reaches its socket later; epoll hands out ready descriptors in
//! the order they became ready, tokio marks every event of a batch before the woken tasks
//! run, and it reads a socket after an event for it (a short read clears the readiness). So
//! the watch is marked by the time such a request is read. What tokio reads on readiness it
//! had before the change (bytes pipelined behind an earlier request, a socket already on the
//! ready list, the first request of a connection accepted from a backlog still being
//! drained, since tokio takes an accepted socket as readable) may be judged on the old store
//! until the reactor's next turn. Tokio turns it at least every 61 task polls, well under a
//! millisecond at full load and less than a `tokenctl` process takes to exit and a client
//! to send anything after it.
//!
//! The readiness is updated by the runtime the watch was registered with only: a `Tokens`
//! loaded inside a runtime is to be used from that runtime's tasks (the server's are).
//!
//! # The fallback: one `fstat` per request
//!
//! Without a runtime at load (`check`, tests), without inotify (the limits
//! `fs.inotify.max_user_instances` and `max_user_watches`, logged once), without the store's
//! directory at load, or once the watch stops being reliable (its directory removed, moved
//! or unmounted, logged once; for good), a request costs one `fstat` on a descriptor kept
//! open on the store file as loaded. A rename leaves the old inode with no links
//! (`st_nlink == 0`); a hand edit in place changes its size or times. Either way the next
//! request calls [`LoadedStore::reload_if_changed`]. `fstat` on a descriptor walks no path,
//! so it is the cheapest check that still sees a change on the very next request. It is the
//! plain `fstat` system call (rustix), not `File::metadata`, which is `statx` with an empty
//! path: that one copies and checks the path string first (some 20% dearer here). With no
//! store file, a request costs one `stat` of its path.
//!
//! Neither way notices the store's directory being swapped through an ancestor (a renamed
//! parent, a retargeted symlink, a mount) until what it looks at changes too.

use std::fs::File;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard};

use kg_tokens::{Exposed, FileError, LoadedStore, Prefix, Reason, StorePaths, TokenInfo};
use rustix::fs::inotify;
use time::OffsetDateTime;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use kg_http::log;
use kg_http::metrics::{Metrics, Reload};

/// The store, and how to notice that it changed.
pub struct Tokens {
    shared: Arc<Shared>,
}

/// What requests and the builder of the next table share.
struct Shared {
    inner: RwLock<Inner>,
    /// A build is wanted or running (mirrors `build.asked > build.finished`): a request
    /// that sees it looks at the build, since under the watch the store stops looking
    /// stale as soon as the builder has taken in the events, before the new table is in.
    building: AtomicBool,
    build: Mutex<Build>,
    /// Wakes the builder.
    wake: Condvar,
    /// Notified when a build ends.
    built: Condvar,
    /// The builder's read buffer, kept between builds.
    buf: Mutex<Vec<u8>>,
    /// Held through each build: one at a time, so a later read is never swapped in before
    /// an earlier one (the thread and an inline build, when the thread could not start).
    serial: Mutex<()>,
    /// Held by a test to keep the builder from building (a build that takes long).
    #[cfg(test)]
    hold: Mutex<()>,
    /// Set by a test to make the next build panic.
    #[cfg(test)]
    panic_next: AtomicBool,
}

/// The builder's state.
struct Build {
    /// Builds are numbered from 1. The highest number a request waits for: a request that
    /// finds a build running asks for the one after it (the running one may have read the
    /// store before the change this request saw); otherwise for the next to start.
    asked: u64,
    /// The number of the build running, or of the last one (`started > finished`: running).
    started: u64,
    /// The number of the last build that ended.
    finished: u64,
    /// Where the builder counts reloads (the first asker's registry).
    metrics: Option<Arc<Metrics>>,
    /// The builder thread was started.
    spawned: bool,
    /// When starting the builder thread last failed: until a minute has passed, builds
    /// run inline without another attempt (and another error line) per request.
    spawn_failed: Option<std::time::Instant>,
    /// The `Tokens` was dropped: the builder ends.
    stop: bool,
}

struct Inner {
    loaded: LoadedStore,
    /// Open on the store file as it was when `loaded` last matched it; `None` when there was
    /// no file. Kept up to date under a watch too, for the day the watch stops.
    probe: Option<Probe>,
    /// The watch on the store's directory, when there is one.
    watch: Option<Watch>,
}

impl Inner {
    /// Whether the store file changed since `loaded` was read: under a watch, whether it may
    /// have (an event is queued), for [`Tokens::reload`] to find out.
    fn stale(&self) -> bool {
        if let Some(w) = &self.watch {
            return w.ready();
        }
        match &self.probe {
            Some(p) => p.stale(),
            // No file when last looked: one stat of the path tells whether one appeared.
            None => self.loaded.paths().store.symlink_metadata().is_ok(),
        }
    }
}

/// An inotify instance watching the store's directory, registered with tokio's reactor,
/// which marks it readable when an event is queued.
struct Watch {
    fd: AsyncFd<OwnedFd>,
    /// The directory's path, and its identity (device, inode) when the watch was placed.
    dir: PathBuf,
    id: (u64, u64),
}

/// Every change that can touch the store file, and the watch's own end.
const WATCH_MASK: inotify::WatchFlags = inotify::WatchFlags::CREATE
    .union(inotify::WatchFlags::DELETE)
    .union(inotify::WatchFlags::MODIFY)
    .union(inotify::WatchFlags::CLOSE_WRITE)
    .union(inotify::WatchFlags::MOVED_FROM)
    .union(inotify::WatchFlags::MOVED_TO)
    .union(inotify::WatchFlags::ATTRIB)
    .union(inotify::WatchFlags::DELETE_SELF)
    .union(inotify::WatchFlags::MOVE_SELF)
    .union(inotify::WatchFlags::ONLYDIR);

impl Watch {
    /// Watches the directory of `paths.store`. `Ok(None)` where a watch does not apply: no
    /// runtime to read it, a store path that is a symlink (the file it names may live in
    /// another directory), or no directory yet.
    fn start(paths: &StorePaths) -> io::Result<Option<Watch>> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Ok(None);
        }
        let store = &paths.store;
        if store
            .symlink_metadata()
            .is_ok_and(|m| m.file_type().is_symlink())
        {
            return Ok(None);
        }
        let dir = match store.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let id = match dir_id(dir) {
            Ok(id) => id,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let fd = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)?;
        match inotify::add_watch(&fd, dir, WATCH_MASK) {
            Ok(_) => {}
            Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        // The same directory before and after, so the one watched: else it was being swapped.
        if dir_id(dir).ok() != Some(id) {
            return Ok(None);
        }
        // Deprecated because it takes any `AsRawFd`, whose descriptor could be closed or
        // swapped under the registration. An `OwnedFd` moved in cannot be: it is what the
        // `unsafe` replacement asks its caller to promise (and this crate forbids `unsafe`).
        #[allow(deprecated)]
        let fd = AsyncFd::with_interest(fd, Interest::READABLE)?;
        Ok(Some(Watch {
            fd,
            dir: dir.to_owned(),
            id,
        }))
    }

    /// Whether an event is queued, as of the reactor's last turn. No system call: `try_io`
    /// reads the readiness and, with a closure that does nothing, leaves it as it is.
    /// (Unlike `poll_read_ready`, which would also spend the task's cooperative budget,
    /// answering "not ready" once that is used up, and lock the waker slot when not ready.)
    fn ready(&self) -> bool {
        self.fd.try_io(Interest::READABLE, |_| Ok(())).is_ok()
    }

    /// Reads every queued event; clears the readiness unless the reactor marked it again
    /// meanwhile (`try_io` clears it on `WouldBlock` for the turn it read it from). `Err`
    /// says why the watch can no longer be trusted.
    ///
    /// Then checks that the directory at the path is still the one watched: a directory
    /// removed while something keeps it open (an audit log written there, say) sends its
    /// `IN_DELETE_SELF` only once that is closed, and the store may meanwhile be re-created
    /// in a new directory at the same path.
    fn drain(&self) -> Result<(), &'static str> {
        let mut result = Ok(());
        let _: io::Result<()> = self.fd.try_io(Interest::READABLE, |fd| {
            let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
            let mut events = inotify::Reader::new(fd, &mut buf);
            loop {
                match events.next() {
                    Ok(event) => {
                        if let Some(why) = gone(event.events()) {
                            result = Err(why);
                        }
                    }
                    Err(rustix::io::Errno::WOULDBLOCK) => {
                        return Err(io::ErrorKind::WouldBlock.into());
                    }
                    Err(e) => {
                        result = Err("the watch could not be read");
                        return Err(e.into());
                    }
                }
            }
        });
        result?;
        if dir_id(&self.dir).ok() != Some(self.id) {
            return Err("the store's directory was replaced or removed");
        }
        Ok(())
    }
}

/// What identifies a directory: its device and inode.
fn dir_id(dir: &Path) -> io::Result<(u64, u64)> {
    let meta = std::fs::metadata(dir)?;
    Ok((meta.dev(), meta.ino()))
}

/// Why an event with these flags ends the watch, if it does. A queue overflow does not:
/// events only ever lead to a `stat` that decides, and the overflow is an event too.
fn gone(flags: inotify::ReadFlags) -> Option<&'static str> {
    use inotify::ReadFlags as F;
    if flags.contains(F::UNMOUNT) {
        Some("the store's file system was unmounted")
    } else if flags.contains(F::DELETE_SELF) {
        Some("the store's directory was removed")
    } else if flags.contains(F::MOVE_SELF) {
        Some("the store's directory was moved")
    } else if flags.contains(F::IGNORED) {
        Some("the watch was removed")
    } else {
        None
    }
}

struct Probe {
    file: File,
    stamp: (u64, i64, i64, i64, i64),
}

impl Probe {
    fn open(paths: &StorePaths) -> Option<Probe> {
        let file = File::open(&paths.store).ok()?;
        let st = rustix::fs::fstat(&file).ok()?;
        Some(Probe {
            stamp: stamp(&st),
            file,
        })
    }

    /// Whether the file this probe is open on was replaced, removed or edited.
    fn stale(&self) -> bool {
        match rustix::fs::fstat(&self.file) {
            Ok(st) => st.st_nlink == 0 || stamp(&st) != self.stamp,
            Err(_) => true,
        }
    }
}

// The field types of `struct stat` differ between targets; the casts are no-ops on some.
#[allow(clippy::unnecessary_cast)]
fn stamp(st: &rustix::fs::Stat) -> (u64, i64, i64, i64, i64) {
    (
        st.st_size as u64,
        st.st_mtime as i64,
        st.st_mtime_nsec as i64,
        st.st_ctime as i64,
        st.st_ctime_nsec as i64,
    )
}

/// What a verification found: the accepted token's identity, or why not.
#[derive(Debug)]
pub enum Verdict<'a> {
    /// Accepted.
    Valid(TokenInfo<'a>),
    /// Refused.
    Invalid(Reason),
}

impl Tokens {
    /// Loads the store; an error here refuses start-up.
    ///
    /// Inside a tokio runtime this also starts the watch (see the module doc); the runtime
    /// must have IO enabled, as every runtime here has.
    pub fn load(paths: &StorePaths, prefix: &Prefix) -> Result<Tokens, FileError> {
        // The watch first, then the probe, then the read: a change after either is seen.
        let watch = Watch::start(paths).unwrap_or_else(|e| {
            let error = e.to_string();
            let mut fields = vec![
                ("error", error.as_str().into()),
                ("checking", "the store file on every request".into()),
            ];
            let limit = [rustix::io::Errno::MFILE, rustix::io::Errno::NOSPC]
                .map(|n| Some(n.raw_os_error()))
                .contains(&e.raw_os_error());
            if limit {
                fields.push((
                    "hint",
                    "raise the sysctl fs.inotify.max_user_instances or fs.inotify.max_user_watches"
                        .into(),
                ));
            }
            log::info("tokens_watch_unavailable", &fields);
            None
        });
        let probe = Probe::open(paths);
        let mut loaded = paths.load(prefix)?;
        // The probe was opened first: if the file was replaced in between, this sees it.
        loaded.reload_if_changed()?;
        Ok(Tokens {
            shared: Arc::new(Shared {
                inner: RwLock::new(Inner {
                    loaded,
                    probe,
                    watch,
                }),
                building: AtomicBool::new(false),
                build: Mutex::new(Build {
                    asked: 0,
                    started: 0,
                    finished: 0,
                    metrics: None,
                    spawned: false,
                    spawn_failed: None,
                    stop: false,
                }),
                wake: Condvar::new(),
                built: Condvar::new(),
                buf: Mutex::new(Vec::new()),
                serial: Mutex::new(()),
                #[cfg(test)]
                hold: Mutex::new(()),
                #[cfg(test)]
                panic_next: AtomicBool::new(false),
            }),
        })
    }

    /// Runs `f` on the verdict for `token` at `now`, after picking up any change to the store.
    pub fn verify<R>(
        &self,
        token: &str,
        now: OffsetDateTime,
        metrics: &Arc<Metrics>,
        f: impl FnOnce(Verdict<'_>) -> R,
    ) -> R {
        let inner = self.fresh(metrics);
        match inner.loaded.verify(token, now) {
            Ok(info) => f(Verdict::Valid(info)),
            Err(reason) => f(Verdict::Invalid(reason)),
        }
    }

    /// Runs `f` on the standing of the token with this id at `now`, without its secret: for
    /// a browser session, which proved possession when it began and is re-judged on every
    /// request, so that revoking the token (or its grace period ending) ends the session.
    pub fn check_id<R>(
        &self,
        id: &str,
        now: OffsetDateTime,
        metrics: &Arc<Metrics>,
        f: impl FnOnce(Verdict<'_>) -> R,
    ) -> R {
        let inner = self.fresh(metrics);
        let Some(entry) = inner.loaded.store().get(id) else {
            return f(Verdict::Invalid(Reason::Unknown));
        };
        match entry.check(now) {
            Ok(()) => f(Verdict::Valid(TokenInfo {
                id: &entry.id,
                name: &entry.name,
                scopes: &entry.scopes,
                expires: entry.expires,
            })),
            Err(reason) => f(Verdict::Invalid(reason)),
        }
    }

    /// The store, read-locked, after picking up any change to it: the check and the
    /// verification that follows share one read lock when nothing changed (the usual case).
    ///
    /// When the store changed, the next table is built on the builder thread, off the
    /// serving path, while this lock stays free for everyone (at 100,000 tokens a build
    /// takes tens of milliseconds, and building under the write lock stalled every request
    /// that long: issue 14, item 6). A request that finds the store changed waits for the
    /// build, so that a change made before it was sent applies to it, as long as the table
    /// it would wait for is small ([`WAIT_BELOW`] entries: a build of a few milliseconds).
    /// With a larger one it does not wait: it is answered from the previous table, as nginx
    /// answers from its old workers until the new ones are up, and the change applies once
    /// its table is in (a build of tens of milliseconds; waiting even 10 ms for it made the
    /// wait the p99 under frequent reloads, BENCHMARKS.md `reload`).
    fn fresh(&self, metrics: &Arc<Metrics>) -> RwLockReadGuard<'_, Inner> {
        let (small, stale) = {
            let inner = self.read();
            let building = self.shared.building.load(Ordering::Acquire);
            let stale = inner.stale();
            if !building && !stale {
                return inner;
            }
            let small = inner.loaded.store().list().len() < WAIT_BELOW;
            // A large table being built and nothing newer seen: nothing to ask or wait for.
            if !small && !stale {
                return inner;
            }
            (small, stale)
        };
        self.shared.await_build(metrics, small, stale);
        self.read()
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.shared.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The store and pepper files, as last read, whose mode lets the group or others at
    /// them (for `check`, which fails on them, and for the server's warning at start).
    pub fn exposed(&self) -> Vec<Exposed> {
        self.read().loaded.exposed().to_vec()
    }

    /// How many entries the store holds (for `check`).
    pub fn len(&self) -> usize {
        self.read().loaded.store().list().len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether changes are noticed through the watch (else through the probe).
    #[cfg(test)]
    fn watching(&self) -> bool {
        self.read().watch.is_some()
    }
}

impl Drop for Tokens {
    fn drop(&mut self) {
        self.shared.lock_build().stop = true;
        self.shared.wake.notify_all();
    }
}

/// How long after failing to start the builder thread the next attempt is made.
const SPAWN_RETRY: std::time::Duration = std::time::Duration::from_secs(60);

/// Held by the builder thread: when it ends by a panic, the build it was running counts as
/// ended (the last good table stays), the thread as not started, and every waiting
/// request is woken.
struct BuilderGone(Arc<Shared>);

impl Drop for BuilderGone {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let mut b = self.0.lock_build();
        b.spawned = false;
        b.finished = b.finished.max(b.started);
        // Whatever was asked is given up: the requests go on with the table they have.
        b.asked = b.finished;
        self.0.building.store(false, Ordering::Release);
        drop(b);
        self.0.built.notify_all();
        log::error(
            "tokens_build_panicked",
            &[("keeping", "the last good token store".into())],
        );
    }
}

/// Below this many entries, a request that finds the store changed waits for the new table
/// however long it takes (a few milliseconds), so a change always applies to the next
/// request; the tests and most stores live here. "Small" is judged by the table in use,
/// since the next one is not read yet: a store that grows past it in one change (a bulk
/// import) makes the requests that see that change wait once for its build.
const WAIT_BELOW: usize = 10_000;

impl Shared {
    fn lock_build(&self) -> MutexGuard<'_, Build> {
        self.build.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn buf(&self) -> MutexGuard<'_, Vec<u8>> {
        self.buf.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks for a build when the request saw the store `stale` (one more if one is
    /// running: it may have read the store before the change this request saw), and waits
    /// as [`Tokens::fresh`] says. A request that saw only that a build is under way asks
    /// for nothing: the build running (or asked for) took in every event before reading,
    /// so it covers what this request saw; it waits for that build. (Asking for one more
    /// here chained builds for as long as requests kept coming.)
    fn await_build(self: &Arc<Self>, metrics: &Arc<Metrics>, small: bool, stale: bool) {
        let mut b = self.lock_build();
        if b.stop {
            return;
        }
        let running = b.started > b.finished;
        let target = match (stale, running) {
            (true, true) => b.started + 1,
            (true, false) => b.finished + 1,
            (false, true) => b.started,
            (false, false) => b.asked,
        };
        if target <= b.finished {
            return;
        }
        b.asked = b.asked.max(target);
        if b.metrics.is_none() {
            b.metrics = Some(Arc::clone(metrics));
        }
        self.building.store(true, Ordering::Release);
        if !b.spawned {
            let retry = b.spawn_failed.is_none_or(|at| at.elapsed() >= SPAWN_RETRY);
            let started = if retry {
                let shared = Arc::clone(self);
                std::thread::Builder::new()
                    .name("kg-tokens-build".into())
                    .spawn(move || shared.builder())
                    .map_err(Some)
            } else {
                Err(None)
            };
            match started {
                Ok(_) => {
                    b.spawned = true;
                    b.spawn_failed = None;
                }
                Err(e) => {
                    // No thread: build here, on the serving path, as before.
                    if let Some(e) = e {
                        b.spawn_failed = Some(std::time::Instant::now());
                        log::error(
                            "tokens_builder_unavailable",
                            &[
                                ("error", (&e.to_string()).into()),
                                (
                                    "building",
                                    "on the serving path; retrying in a minute".into(),
                                ),
                            ],
                        );
                    }
                    // It reads the store after every request so far asked: it serves them all.
                    let asked = b.asked;
                    drop(b);
                    self.build_once();
                    let mut b = self.lock_build();
                    b.finished = b.finished.max(asked);
                    b.started = b.started.max(b.finished);
                    self.building.store(b.asked > b.finished, Ordering::Release);
                    drop(b);
                    self.built.notify_all();
                    return;
                }
            }
        }
        self.wake.notify_one();
        while small && b.finished < target && !b.stop {
            b = self.built.wait(b).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// The builder thread: builds whenever asked, until the `Tokens` is dropped.
    ///
    /// It runs at nice 10, so that on a busy CPU the scheduler prefers the request workers
    /// to it (at 100,000 tokens a build is some 100 ms of CPU; on one shared CPU at normal
    /// priority it took every other slice from the worker). On Linux the nice value of a
    /// thread id is that thread's alone; lowering one's own priority needs no privilege.
    fn builder(self: Arc<Self>) {
        // Should a build panic, the requests waiting for it must not wait for ever: the
        // guard marks it ended and the thread gone, and the next request starts another.
        let _gone = BuilderGone(Arc::clone(&self));
        let tid = rustix::thread::gettid();
        if let Err(e) = rustix::process::setpriority_process(Some(tid), 10) {
            log::info(
                "tokens_builder_priority",
                &[("error", (&e.to_string()).into())],
            );
        }
        loop {
            {
                let mut b = self.lock_build();
                while b.asked <= b.finished && !b.stop {
                    b = self.wake.wait(b).unwrap_or_else(|e| e.into_inner());
                }
                if b.stop {
                    return;
                }
                b.started = b.finished + 1;
            }
            self.build_once();
            let mut b = self.lock_build();
            // An inline build (no thread at first) may have got further meanwhile.
            b.finished = b.finished.max(b.started);
            self.building.store(b.asked > b.finished, Ordering::Release);
            drop(b);
            self.built.notify_all();
        }
    }

    /// Builds the next table while requests go on reading the current one, then swaps it
    /// in under the write lock (a pointer's worth of work); the old table is freed after,
    /// here, outside every lock.
    fn build_once(&self) {
        let _one_at_a_time = self.serial.lock().unwrap_or_else(|e| e.into_inner());
        #[cfg(test)]
        let _held = self.hold.lock().unwrap_or_else(|e| e.into_inner());
        #[cfg(test)]
        assert!(
            !self.panic_next.swap(false, Ordering::Relaxed),
            "a build panics, as a test asked"
        );
        let metrics = self.lock_build().metrics.clone();
        let mut buf = std::mem::take(&mut *self.buf());
        // Take in the events before reading: one queued after this marks the watch again.
        // Open the probe before reading, so that a change after the read is seen next time
        // (also under the watch: the probe takes over from the state it was left in).
        let (watch_lost, probe, next) = {
            let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
            let watch_lost = inner.watch.as_ref().and_then(|w| w.drain().err());
            let probe = Probe::open(inner.loaded.paths());
            (watch_lost, probe, inner.loaded.next(&mut buf))
        };
        *self.buf() = buf;
        let mut old = None;
        let mut loaded = None;
        {
            let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
            if watch_lost.is_some() {
                inner.watch = None;
            }
            inner.probe = probe;
            match next {
                Ok(Some(next)) => {
                    loaded = Some((next.store().list().len(), next.exposed().to_vec()));
                    old = Some(std::mem::replace(&mut inner.loaded, next));
                }
                Ok(None) => {}
                Err(e) => {
                    if let Some(m) = &metrics {
                        m.reload(Reload::Tokens, false);
                    }
                    // Wait for the next change before trying (and logging) again.
                    log::error(
                        "tokens_reload_failed",
                        &[
                            ("error", (&e.to_string()).into()),
                            ("keeping", "the last good token store".into()),
                        ],
                    );
                }
            }
        }
        if let Some(why) = watch_lost {
            log::info(
                "tokens_watch_stopped",
                &[
                    ("reason", why.into()),
                    ("checking", "the store file on every request".into()),
                ],
            );
        }
        if let Some((active, exposed)) = loaded {
            if let Some(m) = &metrics {
                m.reload(Reload::Tokens, true);
            }
            log::info("tokens_reloaded", &[("active", active.into())]);
            warn_exposed(&exposed);
        }
        drop(old);
    }
}

/// Logs one warning per secret file that was read although its group or others can get at
/// it (a Kubernetes secret volume's root-owned 0644 files, say): the server serves it, since
/// reading never changes a secret, and says once per load how to close the exposure.
pub fn warn_exposed(exposed: &[Exposed]) {
    for e in exposed {
        log::warn(
            "secret_exposed",
            &[
                ("secret_file", (&e.path.display().to_string()).into()),
                ("mode", (&format!("{:04o}", e.mode)).into()),
                ("problem", (&e.to_string()).into()),
                ("hint", (&e.hint()).into()),
            ],
        );
    }
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    use std::path::PathBuf;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use kg_fs::lock::Wait;

    use super::*;

    /// A store under a temporary root (`state/`, `private/`), changed through the same calls
    /// as `tokenctl` makes, each a write to a temporary file and a rename.
    struct Fixture {
        _dir: tempfile::TempDir,
        root: PathBuf,
        paths: StorePaths,
    }

    impl Fixture {
        fn new() -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().to_owned();
            let paths = StorePaths::new(&root.join("state"), &root.join("private"));
            Fixture {
                _dir: dir,
                root,
                paths,
            }
        }

        /// Issues a token named `name`; returns its id and its text.
        fn issue(&self, name: &str) -> (String, String) {
            let mut txn = self.paths.begin(Wait::No, &Prefix::default()).unwrap();
            let (store, pepper) = txn.parts();
            let (entry, token) = store
                .create(pepper, name, vec![], None, OffsetDateTime::now_utc())
                .unwrap();
            assert!(txn.commit().unwrap());
            (entry.id, token.expose_secret().to_owned())
        }

        fn revoke(&self, id: &str) {
            let mut txn = self.paths.begin(Wait::No, &Prefix::default()).unwrap();
            assert!(
                txn.parts()
                    .0
                    .revoke_id(id, OffsetDateTime::now_utc())
                    .unwrap()
            );
            assert!(txn.commit().unwrap());
        }

        /// Replaces the store with `text`, as a bad hand edit saved by an editor would.
        fn write_store(&self, text: &str) {
            let tmp = self.root.join("state/tokens.json.edit");
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
                .and_then(|mut f| io::Write::write_all(&mut f, text.as_bytes()))
                .unwrap();
            std::fs::rename(&tmp, &self.paths.store).unwrap();
        }

        fn load(&self) -> Tokens {
            Tokens::load(&self.paths, &Prefix::default()).unwrap()
        }
    }

    fn check(tokens: &Tokens, token: &str, metrics: &Arc<Metrics>) -> Result<(), Reason> {
        tokens.verify(token, OffsetDateTime::now_utc(), metrics, |v| match v {
            Verdict::Valid(_) => Ok(()),
            Verdict::Invalid(reason) => Err(reason),
        })
    }

    fn verdict(tokens: &Tokens, token: &str) -> Result<(), Reason> {
        check(tokens, token, &Arc::default())
    }

    /// Lets the reactor take in what the kernel queued, as it does between two requests.
    async fn turn() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    fn private_dir(path: &Path) {
        std::fs::DirBuilder::new().mode(0o700).create(path).unwrap();
    }

    /// Issue 14, item 4: after a reset (or a restore) of store and pepper, the running
    /// server kept the old pepper, so every new token got 401 while `tokenctl verify` said
    /// valid.
    #[tokio::test]
    async fn a_store_and_pepper_reset_together_are_read_together() {
        let f = Fixture::new();
        let (_, old) = f.issue("alice");
        let tokens = f.load();
        assert_eq!(verdict(&tokens, &old), Ok(()));
        // A reset: both files gone, then a first token makes a new pepper and store.
        std::fs::remove_file(&f.paths.store).unwrap();
        std::fs::remove_file(&f.paths.pepper).unwrap();
        let (_, new) = f.issue("bob");
        turn().await;
        assert_eq!(verdict(&tokens, &new), Ok(()));
        assert_eq!(verdict(&tokens, &old), Err(Reason::Unknown));
    }

    /// Issue 14, item 4: a deleted store used to become an empty one (everyone 401, quietly).
    /// It is now a failed reload: the last good store stays in use until a store is back.
    #[tokio::test]
    async fn a_deleted_store_keeps_the_last_good_one_until_a_store_is_back() {
        let f = Fixture::new();
        let (id, token) = f.issue("alice");
        let tokens = f.load();
        let metrics = Arc::new(Metrics::default());
        std::fs::remove_file(&f.paths.store).unwrap();
        turn().await;
        assert_eq!(check(&tokens, &token, &metrics), Ok(()));
        assert!(
            metrics
                .render()
                .contains("keygate_reloads_total{what=\"tokens\",result=\"error\"} 1"),
            "{}",
            metrics.render()
        );
        // A new store (the first change after the deletion) is read as usual.
        f.issue("bob");
        turn().await;
        assert_eq!(check(&tokens, &token, &metrics), Err(Reason::Unknown));
        assert!(
            tokens.check_id(&id, OffsetDateTime::now_utc(), &metrics, |v| {
                matches!(v, Verdict::Invalid(Reason::Unknown))
            })
        );
    }

    #[tokio::test]
    async fn under_the_watch_a_revocation_is_seen_once_the_reactor_has_turned() {
        let f = Fixture::new();
        let (id, token) = f.issue("alice");
        let tokens = f.load();
        assert!(tokens.watching());
        assert_eq!(verdict(&tokens, &token), Ok(()));
        f.revoke(&id);
        // No system call per request: before the reactor has turned, a verification is
        // judged on the store as it was, like a request received before the change.
        assert_eq!(verdict(&tokens, &token), Ok(()));
        turn().await;
        assert_eq!(verdict(&tokens, &token), Err(Reason::Revoked));
        // Read, not just noticed: the next check finds nothing new.
        assert!(!tokens.read().stale());
        // check_id goes the same way.
        let (bob, _) = f.issue("bob");
        f.revoke(&bob);
        turn().await;
        let standing = tokens.check_id(&bob, OffsetDateTime::now_utc(), &Arc::default(), |v| {
            matches!(v, Verdict::Invalid(Reason::Revoked))
        });
        assert!(standing);
        assert!(tokens.watching());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn under_the_watch_workers_verifying_at_once_see_a_revocation() {
        let f = Fixture::new();
        let (id, token) = f.issue("alice");
        let tokens = Arc::new(f.load());
        assert!(tokens.watching());
        let on_workers = |tokens: &Arc<Tokens>| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let (tokens, token) = (Arc::clone(tokens), token.clone());
                    tokio::spawn(async move { verdict(&tokens, &token) })
                })
                .collect();
            async move {
                let mut all = Vec::new();
                for h in handles {
                    all.push(h.await.unwrap());
                }
                all
            }
        };
        assert!(on_workers(&tokens).await.iter().all(Result::is_ok));
        f.revoke(&id);
        turn().await;
        let after = on_workers(&tokens).await;
        assert!(
            after.iter().all(|v| *v == Err(Reason::Revoked)),
            "{after:?}"
        );
        assert!(tokens.watching());
    }

    #[tokio::test]
    async fn under_the_watch_a_store_created_after_start_is_read() {
        let f = Fixture::new();
        private_dir(&f.root.join("state"));
        let tokens = f.load();
        assert!(tokens.watching());
        assert!(tokens.is_empty());
        let (_, token) = f.issue("alice");
        turn().await;
        assert_eq!(verdict(&tokens, &token), Ok(()));
    }

    #[tokio::test]
    async fn a_state_directory_reached_through_a_symlink_is_watched() {
        let f = Fixture::new();
        private_dir(&f.root.join("real-state"));
        std::os::unix::fs::symlink("real-state", f.root.join("state")).unwrap();
        let (id, token) = f.issue("alice");
        let tokens = f.load();
        assert!(tokens.watching());
        f.revoke(&id);
        turn().await;
        assert_eq!(verdict(&tokens, &token), Err(Reason::Revoked));
    }

    #[tokio::test]
    async fn a_symlinked_store_path_gets_no_watch() {
        // kg-tokens refuses to read a store through a symlink, so `load` fails on one before
        // the watch matters; the watch keeps out of it anyway, as its file may live elsewhere.
        let f = Fixture::new();
        private_dir(&f.root.join("state"));
        std::os::unix::fs::symlink("elsewhere.json", &f.paths.store).unwrap();
        assert!(Watch::start(&f.paths).unwrap().is_none());
        assert!(Tokens::load(&f.paths, &Prefix::default()).is_err());
    }

    #[test]
    fn without_a_runtime_the_probe_sees_a_change_on_the_next_verification() {
        let f = Fixture::new();
        let (id, token) = f.issue("alice");
        let tokens = f.load();
        assert!(!tokens.watching());
        assert_eq!(verdict(&tokens, &token), Ok(()));
        f.revoke(&id);
        assert_eq!(verdict(&tokens, &token), Err(Reason::Revoked));
    }

    #[tokio::test]
    async fn without_a_state_directory_at_start_the_probe_sees_the_store_appear() {
        let f = Fixture::new();
        let tokens = f.load();
        assert!(!tokens.watching());
        let (id, token) = f.issue("alice");
        // No await: the probe looks on every verification.
        assert_eq!(verdict(&tokens, &token), Ok(()));
        f.revoke(&id);
        assert_eq!(verdict(&tokens, &token), Err(Reason::Revoked));
    }

    #[tokio::test]
    async fn a_moved_state_directory_ends_the_watch_and_the_probe_follows_the_path() {
        let f = Fixture::new();
        let (_, alice) = f.issue("alice");
        let tokens = f.load();
        assert!(tokens.watching());
        std::fs::rename(f.root.join("state"), f.root.join("state.old")).unwrap();
        turn().await;
        // No store at the path any more: a failed reload, so the last good store stays in
        // use (before issue 14, item 4, it became an empty one and refused everyone).
        assert_eq!(verdict(&tokens, &alice), Ok(()));
        assert!(!tokens.watching());
        // A new store at the path is seen at once, and so are its changes, with no await.
        let (id, carol) = f.issue("carol");
        assert_eq!(verdict(&tokens, &carol), Ok(()));
        assert_eq!(verdict(&tokens, &alice), Err(Reason::Unknown));
        f.revoke(&id);
        assert_eq!(verdict(&tokens, &carol), Err(Reason::Revoked));
    }

    #[tokio::test]
    async fn a_state_directory_removed_and_made_again_ends_the_watch() {
        let f = Fixture::new();
        let (_, alice) = f.issue("alice");
        let tokens = f.load();
        assert!(tokens.watching());
        // The probe keeps the old directory in use, so its IN_DELETE_SELF waits until the
        // probe is closed: the check that the directory is still the one watched tells.
        std::fs::remove_dir_all(f.root.join("state")).unwrap();
        let (id, bob) = f.issue("bob");
        turn().await;
        assert_eq!(verdict(&tokens, &alice), Err(Reason::Unknown));
        assert_eq!(verdict(&tokens, &bob), Ok(()));
        assert!(!tokens.watching());
        f.revoke(&id);
        assert_eq!(verdict(&tokens, &bob), Err(Reason::Revoked));
    }

    #[tokio::test]
    async fn a_corrupt_store_keeps_the_last_good_until_the_next_good_one() {
        let f = Fixture::new();
        let (id, token) = f.issue("alice");
        let tokens = f.load();
        assert!(tokens.watching());
        let metrics = Arc::new(Metrics::default());
        let failed = |m: &Metrics| {
            m.render()
                .contains("keygate_reloads_total{what=\"tokens\",result=\"error\"} 1\n")
        };
        let text = std::fs::read_to_string(&f.paths.store).unwrap();
        f.write_store("{ this is not json");
        turn().await;
        assert_eq!(check(&tokens, &token, &metrics), Ok(()));
        assert!(failed(&metrics));
        // Tried (and logged) once per change, not once per request.
        assert_eq!(check(&tokens, &token, &metrics), Ok(()));
        assert!(failed(&metrics));
        // The good text again, then a revocation: both read.
        f.write_store(&text);
        f.revoke(&id);
        turn().await;
        assert_eq!(check(&tokens, &token, &metrics), Err(Reason::Revoked));
        assert!(tokens.watching());
    }

    /// Issue 14, item 6: at 100,000 tokens a reload built the next table under the write
    /// lock, stalling every request (p99 65 ms). With more than [`WAIT_BELOW`] entries, a
    /// build that takes long (held here) no longer holds requests up: they are answered from
    /// the previous table, and the change applies once its table is in.
    #[test]
    fn a_slow_build_of_a_large_store_holds_no_request_up() {
        let f = Fixture::new();
        let (id, token) = f.issue("alice");
        {
            let mut txn = f.paths.begin(Wait::No, &Prefix::default()).unwrap();
            let (store, pepper) = txn.parts();
            for i in 0..WAIT_BELOW {
                let now = OffsetDateTime::now_utc();
                store
                    .create(pepper, &format!("t{i}"), vec![], None, now)
                    .unwrap();
            }
            assert!(txn.commit().unwrap());
        }
        let tokens = f.load();
        assert!(tokens.len() > WAIT_BELOW);
        let held = tokens.shared.hold.lock().unwrap();
        f.revoke(&id);
        let asked = Instant::now();
        assert_eq!(verdict(&tokens, &token), Ok(()));
        let waited = asked.elapsed();
        // Generous against a loaded machine; the build it would wait for never ends.
        assert!(waited < Duration::from_secs(2), "waited {waited:?}");
        drop(held);
        let deadline = Instant::now() + Duration::from_secs(30);
        while verdict(&tokens, &token).is_ok() {
            assert!(Instant::now() < deadline, "the revocation never applied");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(verdict(&tokens, &token), Err(Reason::Revoked));
    }

    /// A small store (most of them, and every test's) keeps the stronger promise: a request
    /// that finds the store changed waits for the new table, however long the build takes.
    #[test]
    fn a_request_to_a_small_store_waits_for_its_change() {
        let f = Fixture::new();
        let (id, token) = f.issue("alice");
        let tokens = Arc::new(f.load());
        let held = tokens.shared.hold.lock().unwrap();
        f.revoke(&id);
        let asking = {
            let (tokens, token) = (Arc::clone(&tokens), token.clone());
            std::thread::spawn(move || verdict(&tokens, &token))
        };
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            !asking.is_finished(),
            "answered before the new table was in"
        );
        drop(held);
        assert_eq!(asking.join().unwrap(), Err(Reason::Revoked));
    }

    /// A build that panics leaves no request waiting for it: they are answered from the last
    /// good table, and the next change starts a new builder thread that applies it.
    #[test]
    fn a_build_that_panics_holds_no_request_and_the_next_change_applies() {
        let f = Fixture::new();
        let (id, token) = f.issue("alice");
        let (_, bob) = f.issue("bob");
        let tokens = Arc::new(f.load());
        tokens.shared.panic_next.store(true, Ordering::Relaxed);
        f.revoke(&id);
        let asking = {
            let (tokens, token) = (Arc::clone(&tokens), token.clone());
            std::thread::spawn(move || verdict(&tokens, &token))
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !asking.is_finished() {
            assert!(
                Instant::now() < deadline,
                "a request waits for a dead build"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        // Its build died: answered from the table before the revocation.
        assert_eq!(asking.join().unwrap(), Ok(()));
        assert_eq!(verdict(&tokens, &bob), Ok(()));
        f.issue("carol");
        assert_eq!(verdict(&tokens, &token), Err(Reason::Revoked));
    }

    #[tokio::test]
    async fn a_change_to_another_file_in_the_directory_reads_nothing() {
        let f = Fixture::new();
        let (_, token) = f.issue("alice");
        let tokens = f.load();
        let metrics = Arc::new(Metrics::default());
        std::fs::write(f.root.join("state/audit.log"), "x").unwrap();
        turn().await;
        assert!(tokens.read().stale());
        assert_eq!(check(&tokens, &token, &metrics), Ok(()));
        assert!(!tokens.read().stale());
        assert!(
            metrics
                .render()
                .contains("keygate_reloads_total{what=\"tokens\",result=\"ok\"} 0\n")
        );
    }
}
