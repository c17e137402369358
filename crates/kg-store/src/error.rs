//! What can go wrong with the store, each naming the database and with a hint.

use std::path::PathBuf;

/// A store error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database file could not be created, checked or opened.
    #[error(transparent)]
    Fs(#[from] kg_fs::Error),
    /// SQLite refused to open the file.
    #[error("cannot open the store '{}': {detail}", path.display())]
    Open { path: PathBuf, detail: String },
    /// The file is not a SQLite database (or is damaged).
    #[error("the store '{}' is not a keygate database (or is damaged)", path.display())]
    NotADatabase { path: PathBuf },
    /// Written by a newer keygate, whose schema this one does not know.
    #[error(
        "the store '{}' has schema version {found}, newer than this keygate knows ({known})",
        path.display()
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    /// A live record of the same name exists.
    #[error("a {what} named '{name}' exists")]
    Conflict { what: &'static str, name: String },
    /// A record changed since it was read (someone else's edit): nothing was written.
    #[error("the {what} '{name}' changed since it was read")]
    Stale { what: &'static str, name: String },
    /// A record that is not there.
    #[error("no {what} named '{name}'")]
    NotFound { what: &'static str, name: String },
    /// A statement failed.
    #[error("the store could not {what}: {detail}")]
    Sql { what: &'static str, detail: String },
}

impl Error {
    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Fs(e) => e.hint(),
            Error::Open { .. } => {
                Some("check that the state directory exists and is writable by this user".into())
            }
            Error::NotADatabase { .. } => Some(
                "restore it from a backup (`keygate store backup` makes one), or move it \
                 aside to start with an empty store (every browser is signed out)"
                    .into(),
            ),
            Error::TooNew { .. } => Some(
                "run the newer keygate that wrote it, or restore a backup made by this version"
                    .into(),
            ),
            Error::Sql { detail, .. } if detail.contains("locked") || detail.contains("busy") => {
                Some("another process holds the store: try again".into())
            }
            Error::Sql { .. } => None,
            Error::Stale { what, .. } => Some(format!("read the {what} again and redo the change")),
            Error::NotFound { what, .. } => Some(format!("`keygate {what}s list` shows them")),
            Error::Conflict { what: "client", .. } => {
                Some("choose another name, or revoke the existing client first".into())
            }
            Error::Conflict { what, .. } => Some(format!(
                "choose another name, or remove the existing {what} first"
            )),
        }
    }

    pub(crate) fn sql(what: &'static str) -> impl FnOnce(rusqlite::Error) -> Error {
        move |e| Error::Sql {
            what,
            detail: e.to_string(),
        }
    }
}
