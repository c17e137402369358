use std::path::PathBuf;

/// Why the secure file layer refused or failed an operation.
///
/// Every variant names the path it is about; [`Error::hint`] says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O call failed; the message (from `fs-err`) names the path and the operation.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The target is a symbolic link; writing through it could replace any file.
    #[error("refusing to write '{}': it is a symbolic link", path.display())]
    Symlink { path: PathBuf },
    /// The target exists and is not a regular file.
    #[error("refusing to write '{}': it is not a regular file", path.display())]
    NotRegular { path: PathBuf },
    /// A file to be read or appended to (a secret, the config, the audit log) is a link, a
    /// FIFO, a directory or a device rather than a regular file.
    #[error("refusing to use {what} '{}': it is {kind}, not a regular file", path.display())]
    NotAFile {
        what: &'static str,
        path: PathBuf,
        kind: &'static str,
    },
    /// A directory that others could write to or that another user owns.
    #[error("refusing to use directory '{}': {reason}", path.display())]
    UnsafeDir { path: PathBuf, reason: &'static str },
    /// A file keygate would act on (the config, a deploy hook, the audit log, a program a root
    /// job runs), or a directory above it, that another user could change ([`crate::trust`]).
    #[error("refusing to use {what} '{}': {reason}", path.display())]
    Untrusted {
        what: &'static str,
        path: PathBuf,
        reason: String,
        hint: String,
    },
    /// Another process holds the lock and the caller asked not to wait.
    #[error("another keygate process holds the lock '{}'", path.display())]
    Locked { path: PathBuf },
    /// Waited for the lock and gave up.
    #[error("gave up waiting {secs} s for the lock '{}'", path.display())]
    LockTimeout { path: PathBuf, secs: u64 },
    /// A file handed in from outside holds more than what it should hold could.
    #[error("'{}' is larger than {max} bytes, more than a {what} holds", path.display())]
    TooLarge {
        path: PathBuf,
        max: u64,
        what: &'static str,
    },
    /// A generation directory is not in the shape this layer writes.
    #[error("generation directory '{}' is damaged: {reason}", path.display())]
    Damaged { path: PathBuf, reason: String },
}

impl Error {
    /// A one-line recommendation for the user, when there is one.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Symlink { path } | Error::NotRegular { path } | Error::NotAFile { path, .. } => {
                Some(format!(
                    "remove '{}' or point keygate at a regular file",
                    path.display()
                ))
            }
            Error::UnsafeDir { path, .. } => Some(format!(
                "run `chmod go-w '{}'` and make sure it belongs to you, or use another directory",
                path.display()
            )),
            Error::Locked { .. } => {
                Some("wait for the other run to finish, or pass `--wait SECS`".to_owned())
            }
            Error::LockTimeout { .. } => {
                Some("another run is still working; try again later".to_owned())
            }
            Error::Untrusted { hint, .. } => Some(hint.clone()),
            Error::Damaged { .. } => Some("run `certctl doctor --fix`".to_owned()),
            Error::TooLarge { .. } => Some("check that this is the file you meant".to_owned()),
            Error::Io(_) => None,
        }
    }

    /// Whether the error means "someone else holds the lock" (exit code 75 in the CLIs).
    pub fn is_locked(&self) -> bool {
        matches!(self, Error::Locked { .. } | Error::LockTimeout { .. })
    }
}
