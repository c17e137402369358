//! Whether a file keygate acts on could have been changed by another user.
//!
//! keygate runs what its config says (`cert.deploy_hook` through `sh -c`), appends to the
//! audit log it names, and prints root jobs that run its own binary. Each of those is only as
//! trustworthy as the least trusted user who could have changed the file, so the rule is
//! sshd's `StrictModes`, made once here:
//!
//! - the file, and every directory from it up to `/`, is owned by root or by the user keygate
//!   runs as (by root alone for what a root job will run);
//! - none of them is writable by group or others, except a directory with the sticky bit
//!   (`/tmp`): there others can add entries but cannot replace ours, and the entry below it
//!   on the path is itself checked for owner and mode.
//!
//! The path is resolved first (`~/.config` may be a link into a dotfiles checkout), and the
//! directories walked are those of the resolved path, as sshd does.
//!
//! Hand-written on purpose: the crates that harden paths (`cap-std`, `libpathrs`) resolve a
//! name safely inside a root, and none checks owners and modes up the tree; the walk is a few
//! dozen lines over `std` and `rustix`.

use std::fs::File;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use crate::Error;

/// Whom a file must belong to for keygate to act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TrustedOwner {
    /// Root, or the user keygate runs as (the effective uid): for what this process reads.
    UsOrRoot,
    /// Root only: for what a job running as root will execute, whoever prints the job.
    Root,
}

impl TrustedOwner {
    fn accepts(self, uid: u32) -> bool {
        uid == 0 || (self == TrustedOwner::UsOrRoot && uid == rustix::process::geteuid().as_raw())
    }

    fn chown_to(self) -> &'static str {
        if self == TrustedOwner::Root || rustix::process::geteuid().is_root() {
            "root"
        } else {
            "\"$(id -un)\""
        }
    }
}

/// What is wrong with one entry on a trusted path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Untrust {
    /// Group or others may write to it.
    Writable,
    /// It belongs to this uid, who is neither root nor (where allowed) us.
    Owner(u32),
    /// On the walk up, an entry turned out to be a symbolic link (it changed after the path
    /// was resolved).
    Moved,
}

/// Refuses `path` unless it, and every directory above it, can be changed only by root or the
/// user keygate runs as. `what` names the file for the message (`config file`, `deploy hook`).
pub fn check_owned_by_us_or_root(what: &'static str, path: &Path) -> Result<(), Error> {
    check_path(what, path, TrustedOwner::UsOrRoot)
}

/// Refuses `path` unless it, and every directory above it, can be changed only by root: for a
/// program a root job will run.
pub fn check_owned_by_root(what: &'static str, path: &Path) -> Result<(), Error> {
    check_path(what, path, TrustedOwner::Root)
}

/// Reads a file keygate will act on (the config), after checking it as
/// [`check_owned_by_us_or_root`] does. The file is opened once; its owner and mode are checked
/// on that descriptor, which must be the file the checked path leads to, and the contents are
/// read from it, so the file cannot be swapped between the check and the read. At most `max`
/// bytes are read ([`Error::TooLarge`] beyond).
pub fn read_trusted(what: &'static str, path: &Path, max: u64) -> Result<Vec<u8>, Error> {
    // O_NONBLOCK: a FIFO in the file's place is refused below instead of hanging the open.
    let file = File::options()
        .read(true)
        .custom_flags((rustix::fs::OFlags::CLOEXEC | rustix::fs::OFlags::NONBLOCK).bits() as i32)
        .open(path)
        .map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot read {what} '{}': {e}", path.display()),
            )
        })?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(Error::NotAFile {
            what,
            path: path.to_owned(),
            kind: kind(&meta),
        });
    }
    check_entry(what, path, path, &meta, TrustedOwner::UsOrRoot, false)?;
    let real = fs_err::canonicalize(path)?;
    let now = fs_err::metadata(&real)?;
    if (now.dev(), now.ino()) != (meta.dev(), meta.ino()) {
        return Err(untrusted(
            what,
            path,
            &real,
            Untrust::Moved,
            TrustedOwner::UsOrRoot,
        ));
    }
    check_ancestors(what, path, &real, TrustedOwner::UsOrRoot)?;
    crate::read_bounded(&file, path, max, what)
}

/// Checks an open file's own owner and mode (not its directories): for a file that is
/// appended to, where the descriptor, not the name, is what gets written.
pub fn check_open_file(what: &'static str, path: &Path, file: &File) -> Result<(), Error> {
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(Error::NotAFile {
            what,
            path: path.to_owned(),
            kind: kind(&meta),
        });
    }
    check_entry(what, path, path, &meta, TrustedOwner::UsOrRoot, false)
}

/// What a file that is not a regular one is, for a message.
pub(crate) fn kind(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_symlink() {
        "a symbolic link"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else {
        "something other than a file"
    }
}

/// Opens a log for appending (the audit log): created 0600 when missing, never through a
/// symbolic link, and refused when the file that is there is not ours (or root's, when we are
/// root) or group- or world-writable. Checked on the descriptor that is written to, so a file
/// another user created in a shared directory never receives our lines (issue 13).
pub fn open_append(what: &'static str, path: &Path) -> Result<File, Error> {
    let file = File::options()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::CLOEXEC).bits() as i32)
        .open(path);
    let file = match file {
        Ok(file) => file,
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
            return Err(Error::NotAFile {
                what,
                path: path.to_owned(),
                kind: "a symbolic link",
            });
        }
        Err(e) => {
            return Err(Error::Io(std::io::Error::new(
                e.kind(),
                format!("cannot open {what} '{}': {e}", path.display()),
            )));
        }
    };
    check_open_file(what, path, &file)?;
    Ok(file)
}

/// What [`open_append`] would find at `path`, without creating or changing anything (for a
/// check, which writes nothing): `Ok(true)` when the file is there and would be used,
/// `Ok(false)` when it is missing and its directory lets us create it.
pub fn check_append(what: &'static str, path: &Path) -> Result<bool, Error> {
    let file = File::options()
        .append(true)
        .custom_flags((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::CLOEXEC).bits() as i32)
        .open(path);
    match file {
        Ok(file) => {
            check_open_file(what, path, &file)?;
            Ok(true)
        }
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
            Err(Error::NotAFile {
                what,
                path: path.to_owned(),
                kind: "a symbolic link",
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let dir = path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            rustix::fs::access(dir, rustix::fs::Access::WRITE_OK).map_err(|e| {
                Error::Io(std::io::Error::new(
                    std::io::Error::from(e).kind(),
                    format!(
                        "cannot create {what} '{}': its directory '{}' is missing or not writable",
                        path.display(),
                        dir.display()
                    ),
                ))
            })?;
            Ok(false)
        }
        Err(e) => Err(Error::Io(std::io::Error::new(
            e.kind(),
            format!("cannot open {what} '{}': {e}", path.display()),
        ))),
    }
}

fn check_path(what: &'static str, path: &Path, owner: TrustedOwner) -> Result<(), Error> {
    let real = fs_err::canonicalize(path)?;
    let meta = fs_err::metadata(&real)?;
    check_entry(what, path, &real, &meta, owner, false)?;
    check_ancestors(what, path, &real, owner)
}

/// Walks the directories above `real` (a resolved path) up to `/`.
fn check_ancestors(
    what: &'static str,
    target: &Path,
    real: &Path,
    owner: TrustedOwner,
) -> Result<(), Error> {
    for dir in real.ancestors().skip(1) {
        let meta = fs_err::symlink_metadata(dir)?;
        if meta.file_type().is_symlink() {
            return Err(untrusted(what, target, dir, Untrust::Moved, owner));
        }
        check_entry(what, target, dir, &meta, owner, true)?;
    }
    Ok(())
}

fn check_entry(
    what: &'static str,
    target: &Path,
    entry: &Path,
    meta: &std::fs::Metadata,
    owner: TrustedOwner,
    ancestor: bool,
) -> Result<(), Error> {
    if !owner.accepts(meta.uid()) {
        return Err(untrusted(
            what,
            target,
            entry,
            Untrust::Owner(meta.uid()),
            owner,
        ));
    }
    let mode = meta.mode();
    let sticky_dir = ancestor && meta.is_dir() && mode & 0o1000 != 0;
    if mode & 0o022 != 0 && !sticky_dir {
        return Err(untrusted(what, target, entry, Untrust::Writable, owner));
    }
    Ok(())
}

fn untrusted(
    what: &'static str,
    target: &Path,
    entry: &Path,
    problem: Untrust,
    owner: TrustedOwner,
) -> Error {
    let (reason, fix) = match problem {
        Untrust::Writable => (
            "is writable by group or others".to_owned(),
            format!("run `chmod go-w '{}'`", entry.display()),
        ),
        Untrust::Owner(uid) => (
            match owner {
                TrustedOwner::Root => format!("is owned by uid {uid}, not by root"),
                TrustedOwner::UsOrRoot => {
                    format!("is owned by uid {uid}, neither root nor this user")
                }
            },
            format!("run `chown {} '{}'`", owner.chown_to(), entry.display()),
        ),
        Untrust::Moved => (
            "changed while it was checked".to_owned(),
            "check who else can change it, then try again".to_owned(),
        ),
    };
    let it = if entry == target || std::fs::canonicalize(target).is_ok_and(|r| r == entry) {
        "it".to_owned()
    } else {
        format!("'{}'", entry.display())
    };
    Error::Untrusted {
        what,
        path: target.to_owned(),
        reason: format!("{it} {reason}"),
        hint: format!(
            "{fix}, or keep the {what} where only {} can change it",
            match owner {
                TrustedOwner::Root => "root",
                TrustedOwner::UsOrRoot => "you and root",
            }
        ),
    }
}
