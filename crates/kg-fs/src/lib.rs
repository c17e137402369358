//! The secure file layer: the only code in keygate that writes key material, config or state.
//!
//! Every credential-handling CLI we studied gets part of this wrong (see
//! `shared/REFERENCE.md`, "Atomic 0600 writes on Linux"), so the rules live in one place:
//!
//! - A file is written to a temporary file in the same directory that is *created* with its
//!   final mode and `O_NOFOLLOW|O_CLOEXEC|O_EXCL`, filled, `fsync`ed, renamed over the target,
//!   and then the directory is `fsync`ed. The temporary file is removed on every error path,
//!   and a temporary file left by a killed process is removed by the next write.
//! - An existing file's mode is never widened; a secret found wider than 0600 is tightened.
//! - A symlink or non-regular target, and a directory others can write to, are refused.
//! - A set of files that must change together (a certificate and its key) is published as a
//!   [`generation`]: a new directory, then one atomic switch of the `current` symlink.
//! - Advisory locks live on separate lock files that are never renamed ([`lock`]).
//! - A secret root writes belongs to root, whoever owned the file it replaces: the owner of a
//!   secret is never chosen by another user.
//! - What keygate acts on (the config and its deploy hook, the audit log, a program a root
//!   job runs) is checked first, as sshd's `StrictModes` does ([`trust`]).
//!
//! Results are independent of the process umask: modes are set on the open descriptor.
#![forbid(unsafe_code)]

mod atomic;
mod dir;
mod error;
pub mod generation;
pub mod lock;
pub mod trust;
mod unnamed;

pub use atomic::{AtomicFile, stale_temps, write_atomic};
pub use dir::{DirMode, check_dir, create_dir_all, private_tempdir, stale_private_tempdirs};
pub use error::Error;
pub use unnamed::UnnamedFile;

/// The mode a file is written with.
///
/// Only two exist on purpose: anything that is not public is a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileMode {
    /// Private keys, peppers, token stores, client token files: `0600`.
    Secret,
    /// Certificates, CA certificates, config without secrets: `0644`.
    Public,
}

impl FileMode {
    /// The permission bits this mode stands for.
    pub fn bits(self) -> u32 {
        match self {
            FileMode::Secret => 0o600,
            FileMode::Public => 0o644,
        }
    }
}

/// Reads at most `max` bytes of a file handed in from outside (a certificate to inspect, a
/// key to check it against): a device such as `/dev/zero`, or a huge file named by mistake,
/// fails with [`Error::TooLarge`] instead of growing the process without bound. `what` names
/// what the file should be, for the message.
pub fn read_limited(
    path: &std::path::Path,
    max: u64,
    what: &'static str,
) -> Result<Vec<u8>, Error> {
    read_bounded(fs_err::File::open(path)?, path, max, what)
}

/// Reads at most `max` bytes from `file` (opened from `path`), or [`Error::TooLarge`]: the
/// bound of [`read_limited`] and of `trust::read_trusted`, made once.
pub(crate) fn read_bounded(
    file: impl std::io::Read,
    path: &std::path::Path,
    max: u64,
    what: &'static str,
) -> Result<Vec<u8>, Error> {
    use std::io::Read;
    let mut buf = Vec::new();
    file.take(max + 1).read_to_end(&mut buf).map_err(|e| {
        Error::Io(std::io::Error::new(
            e.kind(),
            format!("cannot read {what} '{}': {e}", path.display()),
        ))
    })?;
    if buf.len() as u64 > max {
        return Err(Error::TooLarge {
            path: path.to_owned(),
            max,
            what,
        });
    }
    Ok(buf)
}

/// Reads a file that holds a secret, tightening it to 0600 first if it was found wider.
///
/// The file is opened once (`O_NOFOLLOW`, and `O_NONBLOCK` so that a FIFO planted in its place
/// cannot hang the reader), and everything after is done on that descriptor: the check that
/// it is a regular file, the `fchmod`, the read. Checking a path and then reading it again by
/// name would let the file be swapped in between.
///
/// Returns the contents; the caller wraps them in a secret type straight away.
pub fn read_secret(path: &std::path::Path) -> Result<Vec<u8>, Error> {
    use rustix::fs::{Mode, OFlags};
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
    let fd = match rustix::fs::open(path, flags, Mode::empty()) {
        Ok(fd) => fd,
        // O_NOFOLLOW on a symlink: ELOOP.
        Err(rustix::io::Errno::LOOP) => {
            return Err(Error::NotAFile {
                what: "secret",
                path: path.to_owned(),
                kind: "a symbolic link",
            });
        }
        Err(e) => {
            let e = std::io::Error::from(e);
            return Err(Error::Io(std::io::Error::new(
                e.kind(),
                format!("cannot read '{}': {e}", path.display()),
            )));
        }
    };
    let mut file = std::fs::File::from(fd);
    let meta = file
        .metadata()
        .map_err(|e| atomic::with_path(e, "stat", path))?;
    if !meta.is_file() {
        return Err(Error::NotAFile {
            what: "secret",
            path: path.to_owned(),
            kind: trust::kind(&meta),
        });
    }
    if meta.mode() & 0o077 != 0 {
        rustix::fs::fchmod(&file, Mode::from_raw_mode(0o600))
            .map_err(|e| atomic::with_path(e.into(), "tighten the mode of", path))?;
    }
    let mut buf = Vec::new();
    file.read_to_end(&mut buf)
        .map_err(|e| atomic::with_path(e, "read", path))?;
    Ok(buf)
}
