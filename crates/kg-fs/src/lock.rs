//! Advisory locks on dedicated lock files.
//!
//! The lock file is never renamed or replaced: a lock taken on a file that is later renamed
//! over would protect nothing. std's `File::lock`/`try_lock` (`flock(2)` on Linux) release
//! the lock when the descriptor closes, so a killed holder never leaves a stale lock.

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::Error;
use crate::atomic::{parent_of, with_path};

/// What to do when another process holds the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Fail at once with [`Error::Locked`].
    No,
    /// Retry until the duration has passed, then fail with [`Error::LockTimeout`].
    Up(Duration),
}

/// An exclusive lock, held until dropped.
#[derive(Debug)]
pub struct LockGuard {
    _file: File,
    path: PathBuf,
}

impl LockGuard {
    /// The lock file this guard holds.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Takes the exclusive lock on `path`, creating the lock file (0600) if needed.
///
/// On a read-only file system an existing lock file is opened read-only and locked all the
/// same (`flock` needs no write access), so that a command with nothing to change (an
/// `ensure` that finds everything in place) succeeds on a read-only home, and still excludes
/// a writer reaching the same file through a writable mount. A command that does need to
/// write then fails at the write, naming the file.
pub fn acquire(path: &Path, wait: Wait) -> Result<LockGuard, Error> {
    crate::check_dir(parent_of(path))?;
    let flags = (rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::CLOEXEC).bits() as i32;
    let file = match OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(flags)
        .open(path)
    {
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::ROFS.raw_os_error()) => {
            OpenOptions::new()
                .read(true)
                .custom_flags(flags)
                .open(path)
                // The file system's refusal says more than a missing lock file would.
                .map_err(|_| with_path(e, "open lock file", path))?
        }
        other => other.map_err(|e| with_path(e, "open lock file", path))?,
    };
    // `None`: fail now; `Some(None)`: a wait too long to represent, i.e. wait for ever.
    let deadline = match wait {
        Wait::No => None,
        Wait::Up(d) => Some(Instant::now().checked_add(d)),
    };
    loop {
        match file.try_lock() {
            Ok(()) => {
                return Ok(LockGuard {
                    _file: file,
                    path: path.to_owned(),
                });
            }
            Err(TryLockError::WouldBlock) => match deadline {
                None => {
                    return Err(Error::Locked {
                        path: path.to_owned(),
                    });
                }
                Some(Some(d)) if Instant::now() >= d => {
                    let secs = match wait {
                        Wait::Up(d) => d.as_secs(),
                        Wait::No => 0,
                    };
                    return Err(Error::LockTimeout {
                        path: path.to_owned(),
                        secs,
                    });
                }
                Some(_) => std::thread::sleep(Duration::from_millis(25)),
            },
            Err(TryLockError::Error(e)) => return Err(with_path(e, "lock", path)),
        }
    }
}
