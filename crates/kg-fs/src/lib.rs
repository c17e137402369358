//! The secure file layer: the only code in keygate that writes key material, config or state.
//!
//! Every credential-handling CLI we studied gets part of this wrong (see
//! `shared/REFERENCE.md`, "Atomic 0600 writes on Linux"), so the rules live in one place:
//!
//! - A file is written to a temporary file in the same directory that is *created* with its
//!   final mode and `O_NOFOLLOW|O_CLOEXEC|O_EXCL`, filled, `fsync`ed, renamed over the target,
//!   and then the directory is `fsync`ed. The temporary file is removed on every error path,
//!   and a temporary file left by a killed process is removed by the next write.
//! - An existing file's mode is never widened. Rewriting a secret makes it 0600; *reading*
//!   one never changes it ([`read_secret`] reports a wider mode and the caller decides:
//!   `certctl doctor --fix` is the one place that narrows an existing file's mode).
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
pub use dir::{
    DirMode, check_dir, create_dir_all, private_tempdir, stale_private_tempdirs, writable_dir,
};
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

/// A secret as [`read_secret`] found it: its bytes and, when the file's mode lets its group
/// or others at it, that exposure.
///
/// `Debug` shows the exposure and the length, never the bytes; the caller wraps `bytes` in
/// a secret type straight away.
pub struct Secret {
    /// The file's contents.
    pub bytes: Vec<u8>,
    /// `Some` when the mode gives the group or others any access (anything beyond 0600).
    pub exposed: Option<Exposed>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("len", &self.bytes.len())
            .field("exposed", &self.exposed)
            .finish()
    }
}

/// A secret file whose mode lets its group or others read or write it.
///
/// Displays as `'PATH' has mode 0644: its group or others can read it`, and
/// [`Exposed::hint`] gives the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exposed {
    /// The file.
    pub path: std::path::PathBuf,
    /// Its permission bits as found, e.g. `0o644`.
    pub mode: u32,
}

impl Exposed {
    /// The exposure of a file with `mode` at `path`, or `None` when only its owner has access.
    pub fn of(path: &std::path::Path, mode: u32) -> Option<Exposed> {
        (mode & 0o077 != 0).then(|| Exposed {
            path: path.to_owned(),
            mode: mode & 0o7777,
        })
    }

    /// The one-line fix: `chmod 600`, or for a Kubernetes secret volume (root-owned 0644 files
    /// by default, whose owner a pod cannot choose) its `defaultMode`: 0400 when the container
    /// runs as root, else 0440 with `fsGroup`, which is the narrowest a non-root reader gets
    /// there (and is still reported, since the group can read it).
    pub fn hint(&self) -> String {
        Exposed::hint_all(std::slice::from_ref(self)).unwrap_or_default()
    }

    /// One fix for several exposed files (one `chmod 600` naming them all); `None` for none.
    pub fn hint_all(exposed: &[Exposed]) -> Option<String> {
        if exposed.is_empty() {
            return None;
        }
        let paths: Vec<String> = exposed
            .iter()
            .map(|e| format!("'{}'", e.path.display()))
            .collect();
        Some(format!(
            "run `chmod 600 {}` (a Kubernetes secret volume's files are root's: set \
             `defaultMode: 0400` there for a root container, or 0440 with the pod's `fsGroup`)",
            paths.join(" ")
        ))
    }
}

impl std::fmt::Display for Exposed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = if self.mode & 0o022 != 0 {
            "write"
        } else {
            "read"
        };
        write!(
            f,
            "'{}' has mode {:04o}: its group or others can {what} it",
            self.path.display(),
            self.mode
        )
    }
}

/// Narrows an existing secret file to 0600 if its mode is wider; returns the mode it had then.
///
/// For `certctl doctor --fix`, the one place that changes the mode of an existing file (every
/// reader only reports it, see [`read_secret`]). Done on one descriptor opened as
/// `read_secret` opens it, so a symlink or FIFO put in the file's place is refused, never
/// followed or waited on.
pub fn narrow_secret(path: &std::path::Path) -> Result<Option<u32>, Error> {
    use std::os::unix::fs::MetadataExt;
    let (file, meta) = open_secret(path)?;
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 == 0 {
        return Ok(None);
    }
    rustix::fs::fchmod(&file, rustix::fs::Mode::from_raw_mode(0o600))
        .map_err(|e| atomic::with_path(e.into(), "change the mode of", path))?;
    Ok(Some(mode))
}

/// Reads a file that holds a secret, without changing it.
///
/// The file is opened once (`O_NOFOLLOW`, and `O_NONBLOCK` so that a FIFO planted in its place
/// cannot hang the reader), and everything after is done on that descriptor: the check that
/// it is a regular file, the mode, the read. Checking a path and then reading it again by
/// name would let the file be swapped in between.
///
/// A mode wider than 0600 is reported in [`Secret::exposed`], never tightened: reading must
/// not write (a `check` or an `ensure` with nothing to do changes nothing), and a read-only
/// secret, such as a Kubernetes secret volume's root-owned 0644 files read by another uid,
/// could not be tightened anyway. Each caller decides what an exposure means: the server
/// warns, `keygate check` fails, `certctl doctor --fix` narrows it.
pub fn read_secret(path: &std::path::Path) -> Result<Secret, Error> {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    let (mut file, meta) = open_secret(path)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| atomic::with_path(e, "read", path))?;
    Ok(Secret {
        bytes,
        exposed: Exposed::of(path, meta.mode()),
    })
}

/// Makes sure a private file exists at `path` for another program to write in place (a
/// SQLite database, which SQLite itself writes): created empty with mode 0600 when absent
/// (`O_EXCL|O_NOFOLLOW`, the exact mode set on the descriptor, never create-then-chmod),
/// left as it is otherwise. True when it was created. A symlink, a directory or a FIFO at
/// the path is refused; an existing file's exposure is returned for the caller to report.
pub fn ensure_private_file(path: &std::path::Path) -> Result<(bool, Option<Exposed>), Error> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    check_dir(atomic::parent_of(path))?;
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::CLOEXEC).bits() as i32)
        .open(path);
    match created {
        Ok(file) => {
            rustix::fs::fchmod(&file, rustix::fs::Mode::from_raw_mode(0o600))
                .map_err(|e| atomic::with_path(e.into(), "set the mode of", path))?;
            file.sync_all()
                .map_err(|e| atomic::with_path(e, "sync", path))?;
            Ok((true, None))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let (_, meta) = open_secret(path)?;
            Ok((false, Exposed::of(path, meta.mode())))
        }
        Err(e) => Err(atomic::with_path(e, "create", path)),
    }
}

/// Opens a secret once, `O_NOFOLLOW|O_NONBLOCK`, and refuses anything but a regular file;
/// returns the descriptor and what `fstat` said of it.
fn open_secret(path: &std::path::Path) -> Result<(std::fs::File, std::fs::Metadata), Error> {
    use rustix::fs::{Mode, OFlags};
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
    let file = std::fs::File::from(fd);
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
    Ok((file, meta))
}
