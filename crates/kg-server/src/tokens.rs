//! The token store as the server sees it: verified against on every request, re-read on the
//! first request after it changed.
//!
//! Noticing a change costs one `fstat` per request on a descriptor kept open on the store
//! file as loaded. Every writer replaces the file by a rename, which leaves the old inode
//! with no links (`st_nlink == 0`); a hand edit in place changes its size or times. Either
//! way the next request calls [`LoadedStore::reload_if_changed`], whose own `stat` of the
//! path decides. `fstat` on a descriptor walks no path, so it is the cheapest check that
//! still sees a change on the very next request, which `tokenctl revoke` relies on. It is
//! the plain `fstat` system call (rustix), not `File::metadata`, which is `statx` with an
//! empty path: that one copies and checks the path string first (some 20% dearer here).

use std::fs::File;
use std::sync::{RwLock, RwLockReadGuard};

use kg_tokens::{FileError, LoadedStore, Prefix, Reason, StorePaths, TokenInfo};
use time::OffsetDateTime;

use crate::log;
use crate::metrics::Metrics;

/// The store, and how to notice that it changed.
pub struct Tokens {
    inner: RwLock<Inner>,
}

struct Inner {
    loaded: LoadedStore,
    /// Open on the store file as it was when `loaded` last matched it; `None` when there was
    /// no file.
    probe: Option<Probe>,
}

impl Inner {
    /// Whether the store file changed since `loaded` was read.
    fn stale(&self) -> bool {
        match &self.probe {
            Some(p) => p.stale(),
            // No file when last looked: one stat of the path tells whether one appeared.
            None => self.loaded.paths().store.symlink_metadata().is_ok(),
        }
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
    pub fn load(paths: &StorePaths, prefix: &Prefix) -> Result<Tokens, FileError> {
        let probe = Probe::open(paths);
        let mut loaded = paths.load(prefix)?;
        // The probe was opened first: if the file was replaced in between, this sees it.
        loaded.reload_if_changed()?;
        Ok(Tokens {
            inner: RwLock::new(Inner { loaded, probe }),
        })
    }

    /// Runs `f` on the verdict for `token` at `now`, after picking up any change to the store.
    pub fn verify<R>(
        &self,
        token: &str,
        now: OffsetDateTime,
        metrics: &Metrics,
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
        metrics: &Metrics,
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

    /// The store's token prefix.
    pub fn with_prefix<R>(&self, f: impl FnOnce(&Prefix) -> R) -> R {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        f(inner.loaded.store().prefix())
    }

    /// The store, read-locked, after picking up any change to it: the probe and the
    /// verification that follows share one read lock when nothing changed (the usual case).
    fn fresh(&self, metrics: &Metrics) -> RwLockReadGuard<'_, Inner> {
        {
            let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
            if !inner.stale() {
                return inner;
            }
        }
        self.reload(metrics);
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Re-reads the store if it changed. On error the last good store stays in use and the
    /// error is logged (once per change of the file).
    pub fn refresh(&self, metrics: &Metrics) {
        let stale = self.inner.read().unwrap_or_else(|e| e.into_inner()).stale();
        if stale {
            self.reload(metrics);
        }
    }

    /// Re-reads the store under the write lock, if it is still stale then.
    fn reload(&self, metrics: &Metrics) {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        // Another request may have refreshed while this one waited for the lock.
        if !inner.stale() {
            return;
        }
        // Open the probe before reading, so that a change after the read is seen next time.
        let probe = Probe::open(inner.loaded.paths());
        match inner.loaded.reload_if_changed() {
            Ok(changed) => {
                if changed {
                    metrics.reload("tokens", true);
                    log::info(
                        "tokens_reloaded",
                        &[("active", &inner.loaded.store().list().len().to_string())],
                    );
                }
                inner.probe = probe;
            }
            Err(e) => {
                metrics.reload("tokens", false);
                log::error(
                    "tokens_reload_failed",
                    &[
                        ("error", &e.to_string()),
                        ("keeping", "the last good token store"),
                    ],
                );
                // Wait for the next change before trying (and logging) again.
                inner.probe = probe;
            }
        }
    }

    /// How many entries the store holds (for `check`).
    pub fn len(&self) -> usize {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        inner.loaded.store().list().len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens").finish_non_exhaustive()
    }
}
