//! The store and the pepper on disk: where they live, how they are read, and how every change
//! is made under the lock.
//!
//! This is the only module of the crate that touches files, and every write goes through the
//! secure file layer (`kg-fs`): atomic, created 0600, never through a symlink.
//!
//! - The store is `STATE_DIR/tokens.json` (0600). It holds digests, never tokens.
//! - The pepper is `PRIVATE_DIR/pepper` (0600, in a 0700 directory). It is created on first
//!   use, under the lock, and only while the store is empty: a store with entries and no
//!   pepper is an error ([`FileError::MissingPepper`]), because a new pepper would silently
//!   make every issued token unknown.
//! - Every read-modify-write happens in a [`StoreTxn`], which holds the exclusive lock on
//!   `STATE_DIR/tokens.lock` from [`StorePaths::begin`] until it is committed or dropped, so
//!   concurrent commands never lose an update. Readers take no lock: the store is only ever
//!   replaced by an atomic rename, so they see the old or the new file, never a mix.
//! - Long-running readers (the server) hold a [`LoadedStore`] and call
//!   [`LoadedStore::reload_if_changed`] before using it: one `stat` when nothing changed.
//! - A store that cannot be read is an error naming the file and the line
//!   ([`FileError::Corrupt`]), and nothing is written over it.

use std::fmt;
use std::fs::OpenOptions;
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use kg_fs::lock::{self, LockGuard, Wait};
use kg_fs::{AtomicFile, DirMode, FileMode};
use secrecy::SecretString;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::{Pepper, PepperError, Prefix, Reason, Store, StoreError, TokenInfo, TokenSecret};

/// File name of the store in the state directory.
pub const STORE_FILE: &str = "tokens.json";
/// File name of the pepper in the private directory.
pub const PEPPER_FILE: &str = "pepper";
/// Name of the lock (`STATE_DIR/tokens.lock`, as `Locations::lock_file("tokens")` gives).
pub const LOCK_NAME: &str = "tokens";
/// Longest token file accepted by [`read_token`]: a token is about 60 bytes.
pub const MAX_TOKEN_FILE_LEN: usize = 4096;

/// Where the store, its pepper and its lock live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorePaths {
    /// The store file (`STATE_DIR/tokens.json`).
    pub store: PathBuf,
    /// The pepper file (`PRIVATE_DIR/pepper`).
    pub pepper: PathBuf,
    /// The lock file (`STATE_DIR/tokens.lock`); never renamed, never removed.
    pub lock: PathBuf,
}

impl StorePaths {
    /// The standard layout: the store and its lock in `state_dir`, the pepper in `private_dir`.
    pub fn new(state_dir: &Path, private_dir: &Path) -> StorePaths {
        StorePaths {
            store: state_dir.join(STORE_FILE),
            pepper: private_dir.join(PEPPER_FILE),
            lock: state_dir.join(format!("{LOCK_NAME}.lock")),
        }
    }

    /// Takes the lock and reads the store and the pepper, for a change.
    ///
    /// Creates the state and private directories (0700) if needed. A missing store is an
    /// empty one with `prefix` (the prefix of an existing store always wins); a missing
    /// pepper is created (0600) if the store is empty. Errors where
    /// [`FileError::is_locked`] is true mean another process holds the lock.
    pub fn begin(&self, wait: Wait, prefix: &Prefix) -> Result<StoreTxn, FileError> {
        kg_fs::create_dir_all(parent_of(&self.store), DirMode::Private)?;
        kg_fs::create_dir_all(parent_of(&self.lock), DirMode::Private)?;
        kg_fs::create_dir_all(parent_of(&self.pepper), DirMode::Private)?;
        let guard = lock::acquire(&self.lock, wait)?;
        let mut text = Vec::new();
        let mut exposed = Vec::new();
        let (store, original) = match read_store(&self.store, &mut text)? {
            // Parsed, so it is UTF-8.
            Some((store, stamp)) => {
                exposed.extend(stamp.exposed(&self.store));
                (store, String::from_utf8(text).ok())
            }
            None => (Store::new(prefix.clone()), None),
        };
        let pepper = match read_pepper(&self.pepper)? {
            Some((p, e)) => {
                exposed.extend(e);
                p
            }
            None if store.list().is_empty() => {
                let pepper = Pepper::generate();
                let text = pepper.to_text();
                kg_fs::write_atomic(
                    &self.pepper,
                    secrecy::ExposeSecret::expose_secret(&text).as_bytes(),
                    FileMode::Secret,
                )?;
                pepper
            }
            None => {
                return Err(FileError::MissingPepper {
                    path: self.pepper.clone(),
                    store: self.store.clone(),
                });
            }
        };
        Ok(StoreTxn {
            _guard: guard,
            path: self.store.clone(),
            store,
            pepper,
            original,
            exposed,
        })
    }

    /// The pepper, made (0600) under the lock if this is the first use: what kg-oauth keeps
    /// client secrets' digests under, so one key covers every secret keygate stores.
    pub fn pepper(&self, wait: Wait, prefix: &Prefix) -> Result<Pepper, FileError> {
        self.begin(wait, prefix).map(|txn| txn.pepper)
    }

    /// Reads the store and the pepper without the lock, for reading only.
    ///
    /// A missing store is an empty one with `prefix`, and then a missing pepper is fine too
    /// (nothing can verify). Nothing is created.
    pub fn load(&self, prefix: &Prefix) -> Result<LoadedStore, FileError> {
        let mut loaded = LoadedStore {
            paths: self.clone(),
            prefix: prefix.clone(),
            store: Store::new(prefix.clone()),
            pepper: None,
            stamp: None,
            buf: Vec::new(),
            exposed: Vec::new(),
        };
        loaded.reload()?;
        Ok(loaded)
    }
}

/// A change to the store in progress: the lock is held until this is committed or dropped.
///
/// Dropping it without [`StoreTxn::commit`] discards every change and writes nothing.
pub struct StoreTxn {
    _guard: LockGuard,
    path: PathBuf,
    store: Store,
    pepper: Pepper,
    /// The text read from disk, or `None` if there was no store file.
    original: Option<String>,
    /// The store or pepper file as read lets its group or others at it.
    exposed: Vec<kg_fs::Exposed>,
}

impl StoreTxn {
    /// The store as read, with the changes made so far.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The pepper.
    pub fn pepper(&self) -> &Pepper {
        &self.pepper
    }

    /// The store and pepper files, as read, whose mode lets the group or others at them.
    /// Reading changed nothing; the command decides how to say so.
    pub fn exposed(&self) -> &[kg_fs::Exposed] {
        &self.exposed
    }

    /// The store to change, and the pepper that new digests are computed under.
    pub fn parts(&mut self) -> (&mut Store, &Pepper) {
        (&mut self.store, &self.pepper)
    }

    /// Delivers a new `token` to each of `files` (0600, atomically), then commits the store
    /// that knows it, then releases the lock. Returns whether the store file was written.
    ///
    /// This order is the recovery rule that makes a token's files and its store entry one
    /// transaction: a crash (even SIGKILL) before the store is written leaves at most a file
    /// whose token the store does not know, which the rerun of the same command overwrites;
    /// a crash after it leaves both. The store never knows a token whose secret reached no
    /// file, which nothing could recover (only its digest is stored). Every file is staged
    /// before the first one is renamed into place, so a refused file changes nothing.
    pub fn commit_delivering(
        self,
        token: &TokenSecret,
        files: &[&Path],
    ) -> Result<bool, FileError> {
        let staged = files
            .iter()
            .map(|f| stage_token_file(f, token))
            .collect::<Result<Vec<_>, _>>()?;
        for file in staged {
            file.commit()?;
        }
        self.commit()
    }

    /// Writes the store (0600, atomically) if it changed, then releases the lock.
    /// Returns whether the file was written.
    pub fn commit(self) -> Result<bool, FileError> {
        let text = self.store.to_json();
        if self.original.as_deref() == Some(text.as_str()) {
            return Ok(false);
        }
        kg_fs::write_atomic(&self.path, text.as_bytes(), FileMode::Secret)?;
        Ok(true)
    }
}

impl fmt::Debug for StoreTxn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreTxn")
            .field("path", &self.path)
            .field("store", &self.store)
            .field("pepper", &self.pepper)
            .finish_non_exhaustive()
    }
}

/// A store read from disk for verification, that re-reads itself only when the file changed.
///
/// It remembers the store file's identity and change stamp, `(dev, inode, mtime, size,
/// ctime)`, taken with `fstat` on the very descriptor the text was read from, so a change
/// between looking and reading is never missed. Every write replaces the file by a rename (a
/// new inode), and a hand edit in place changes the mtime, size or ctime, so any change is
/// seen. [`LoadedStore::reload_if_changed`] costs one `stat` when nothing changed, which is
/// cheap enough to call before every request.
///
/// If the new file cannot be read (a bad hand edit), the reload returns the error and the
/// handle keeps the last good store, so a long-running server goes on verifying against it
/// and reports the problem instead of locking everyone out.
pub struct LoadedStore {
    paths: StorePaths,
    prefix: Prefix,
    store: Store,
    pepper: Option<Pepper>,
    /// The stamp of the file `store` was read from; `None` when there was no file.
    stamp: Option<Stamp>,
    /// The file's bytes, kept between reloads so that a reload of a large store reuses
    /// memory that is already mapped instead of faulting in tens of megabytes again.
    buf: Vec<u8>,
    /// The store and pepper files, as last read, whose mode lets the group or others at them.
    exposed: Vec<kg_fs::Exposed>,
}

/// What identifies one version of the store file: inode identity plus change times and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    mtime: (i64, i64),
    size: u64,
    ctime: (i64, i64),
    mode: u32,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            size: meta.size(),
            ctime: (meta.ctime(), meta.ctime_nsec()),
            mode: meta.mode(),
        }
    }

    /// The exposure of the store file this stamp was taken of.
    fn exposed(&self, path: &Path) -> Option<kg_fs::Exposed> {
        kg_fs::Exposed::of(path, self.mode)
    }
}

impl LoadedStore {
    /// The store as last read.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The paths this handle reads.
    pub fn paths(&self) -> &StorePaths {
        &self.paths
    }

    /// The store and pepper files, as last read, whose mode lets the group or others at
    /// them: served all the same (reading never changes them), for the server to warn about.
    pub fn exposed(&self) -> &[kg_fs::Exposed] {
        &self.exposed
    }

    /// Verifies `token` against the store as last read (see [`Store::verify`]). Without a
    /// pepper file (and so without any entry) every well-formed token is unknown.
    pub fn verify(&self, token: &str, now: OffsetDateTime) -> Result<TokenInfo<'_>, Reason> {
        match &self.pepper {
            Some(pepper) => self.store.verify(pepper, token, now),
            None => {
                crate::token::parse(token, self.store.prefix())?;
                Err(Reason::Unknown)
            }
        }
    }

    /// Re-reads the store if the file changed since it was last read; returns whether it did.
    ///
    /// Costs one `stat` when nothing changed. On error the last good store is kept.
    pub fn reload_if_changed(&mut self) -> Result<bool, FileError> {
        if self.current_stamp()? == self.stamp {
            return Ok(false);
        }
        self.reload()?;
        Ok(true)
    }

    /// The store as it is on disk now, as a new handle, when the file changed since this one
    /// was read (`Ok(None)` when it did not), leaving this one untouched: the server builds
    /// the next table off the serving path while requests go on being verified against this
    /// one, then swaps. The rules of [`LoadedStore::reload`] apply (a store that was read and
    /// is gone is an error). `buf` is the caller's read buffer, kept between reloads so that
    /// reading a large store reuses memory already mapped.
    pub fn next(&self, buf: &mut Vec<u8>) -> Result<Option<LoadedStore>, FileError> {
        if self.current_stamp()? == self.stamp {
            return Ok(None);
        }
        let mut next = LoadedStore {
            paths: self.paths.clone(),
            prefix: self.prefix.clone(),
            store: Store::new(self.prefix.clone()),
            pepper: None,
            stamp: self.stamp,
            buf: std::mem::take(buf),
            exposed: Vec::new(),
        };
        let read = next.reload();
        *buf = std::mem::take(&mut next.buf);
        read.map(|()| Some(next))
    }

    fn current_stamp(&self) -> Result<Option<Stamp>, FileError> {
        match std::fs::symlink_metadata(&self.paths.store) {
            Ok(meta) => Ok(Some(Stamp::of(&meta))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(FileError::Read {
                path: self.paths.store.clone(),
                source,
            }),
        }
    }

    /// Reads the store and its pepper unconditionally. Nothing changes on error: the last
    /// good store and pepper stay in use.
    ///
    /// The pepper is read again with every store: a store and pepper restored from a backup,
    /// or reset, belong together, and the running server kept the old pepper (every new
    /// token got 401 while `tokenctl verify` said valid). It is read after the store: a
    /// store with entries was written after its pepper, so a store that needs one never
    /// races ahead of it.
    ///
    /// No store file is an empty store only where none was read before: a store that was
    /// read and is gone was deleted or moved, and that is an error
    /// ([`FileError::MissingStore`]) rather than a quiet "every token is unknown". (A pepper
    /// without a store says nothing: the first change writes the pepper before the store,
    /// and may fail between the two.)
    pub fn reload(&mut self) -> Result<(), FileError> {
        match read_store(&self.paths.store, &mut self.buf)? {
            Some((store, stamp)) => {
                let pepper = read_pepper(&self.paths.pepper)?;
                if pepper.is_none() && !store.list().is_empty() {
                    return Err(FileError::MissingPepper {
                        path: self.paths.pepper.clone(),
                        store: self.paths.store.clone(),
                    });
                }
                let (pepper, pepper_exposed) = pepper.unzip();
                self.exposed = stamp
                    .exposed(&self.paths.store)
                    .into_iter()
                    .chain(pepper_exposed.flatten())
                    .collect();
                self.pepper = pepper;
                self.store = store;
                self.stamp = Some(stamp);
            }
            None => {
                if self.stamp.is_some() {
                    return Err(FileError::MissingStore {
                        path: self.paths.store.clone(),
                        pepper: self.paths.pepper.clone(),
                    });
                }
                self.store = Store::new(self.prefix.clone());
            }
        }
        Ok(())
    }
}

impl fmt::Debug for LoadedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedStore")
            .field("paths", &self.paths)
            .field("store", &self.store)
            .field("pepper", &self.pepper)
            .field("stamp", &self.stamp)
            .finish()
    }
}

/// Where a client's token file for token `name` lives: `PRIVATE_DIR/client/NAME.token`.
///
/// Token names are letters, digits, `.`, `_` and `-`, and `.token` is appended, so the path
/// never leaves the `client` directory.
pub fn client_token_file(private_dir: &Path, name: &str) -> PathBuf {
    private_dir.join("client").join(format!("{name}.token"))
}

/// Starts writing `token` (and a newline) to `path` as a 0600 file, through the secure file
/// layer. Nothing appears at `path` until the returned file is committed (dropping it leaves
/// nothing); [`StoreTxn::commit_delivering`] commits it just before the store.
fn stage_token_file(path: &Path, token: &TokenSecret) -> Result<AtomicFile, FileError> {
    use std::io::Write;
    let mut file = AtomicFile::create(path, FileMode::Secret)?;
    file.write_all(token.expose_secret().as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .map_err(|source| FileError::Write {
            path: path.to_owned(),
            source,
        })?;
    Ok(file)
}

/// Reads a token from `input` (a token file, a descriptor, stdin): at most
/// [`MAX_TOKEN_FILE_LEN`] bytes, surrounding whitespace removed.
///
/// `Ok(None)` when there is nothing but whitespace. The text is checked by [`Store::verify`],
/// not here; what is read never appears in an error.
pub fn read_token(input: impl Read) -> Result<Option<TokenSecret>, TokenReadError> {
    let mut buf = Zeroizing::new(Vec::with_capacity(128));
    input
        .take(MAX_TOKEN_FILE_LEN as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(TokenReadError::Io)?;
    if buf.len() > MAX_TOKEN_FILE_LEN {
        return Err(TokenReadError::TooLong);
    }
    let text = std::str::from_utf8(&buf)
        .map_err(|_| TokenReadError::NotText)?
        .trim();
    if text.is_empty() {
        return Ok(None);
    }
    Ok(Some(TokenSecret::from(SecretString::from(text.to_owned()))))
}

/// Why [`read_token`] found no token. Never contains what was read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenReadError {
    /// Reading failed.
    #[error("{0}")]
    Io(#[source] io::Error),
    /// More than [`MAX_TOKEN_FILE_LEN`] bytes: not a token file.
    #[error("it is longer than {MAX_TOKEN_FILE_LEN} bytes, so it is not a token")]
    TooLong,
    /// Not UTF-8 text.
    #[error("it is not text, so it is not a token")]
    NotText,
}

/// Why the store or the pepper could not be read or written.
///
/// Each variant names the file. [`FileError::hint`] says what to do; [`FileError::is_usage`]
/// and [`FileError::is_locked`] sort errors for exit codes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// The secure file layer refused or failed (including a held lock).
    #[error(transparent)]
    Fs(#[from] kg_fs::Error),
    /// A file could not be read.
    #[error("cannot read '{}': {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A file could not be written.
    #[error("cannot write '{}': {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The store file is not a valid store. Nothing was written over it.
    #[error("token store '{}' line {line}: {}", path.display(), corrupt_detail(source))]
    Corrupt {
        /// The store file.
        path: PathBuf,
        /// 1-based line of the problem (of the entry's opening brace, for an invalid entry).
        line: usize,
        /// What is wrong.
        source: StoreError,
    },
    /// The pepper file is not a pepper.
    #[error("pepper file '{}': {source}", path.display())]
    BadPepper {
        /// The pepper file.
        path: PathBuf,
        /// What is wrong (never the content).
        source: PepperError,
    },
    /// The store file is gone although it was read before.
    #[error("token store '{}' is gone since it was last read: it was deleted or moved", path.display())]
    MissingStore {
        /// The store file.
        path: PathBuf,
        /// The pepper file.
        pepper: PathBuf,
    },
    /// The store has entries but the pepper file is gone.
    #[error("pepper file '{}' is missing, but the token store '{}' has tokens", path.display(), store.display())]
    MissingPepper {
        /// The pepper file.
        path: PathBuf,
        /// The store file.
        store: PathBuf,
    },
}

impl FileError {
    /// A one-line recommendation for the user, when there is one.
    pub fn hint(&self) -> Option<String> {
        match self {
            FileError::Fs(e) => e.hint(),
            FileError::Read { .. } | FileError::Write { .. } => None,
            FileError::Corrupt { source, line, .. } => match source {
                StoreError::Json { .. } => Some(format!(
                    "fix the file by hand near line {line}, or restore it from a backup; \
                     it holds no secrets, only digests"
                )),
                other => other.hint(),
            },
            FileError::BadPepper { source, .. } => source.hint(),
            FileError::MissingStore { pepper, .. } => Some(format!(
                "restore it from a backup, or restart to start over with no tokens (and remove '{}' too)",
                pepper.display()
            )),
            FileError::MissingPepper { store, .. } => Some(format!(
                "restore the pepper from a backup; without it no token in '{}' can be verified",
                store.display()
            )),
        }
    }

    /// Whether this is a problem with the files themselves (exit code 2 in the CLIs): a
    /// corrupt store, a bad or missing pepper.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            FileError::Corrupt { .. }
                | FileError::BadPepper { .. }
                | FileError::MissingPepper { .. }
                | FileError::MissingStore { .. }
        )
    }

    /// Whether another process holds the lock (exit code 75 in the CLIs).
    pub fn is_locked(&self) -> bool {
        matches!(self, FileError::Fs(e) if e.is_locked())
    }
}

/// Reads the store file into `buf` and parses it; `None` if there is none.
fn read_store(path: &Path, buf: &mut Vec<u8>) -> Result<Option<(Store, Stamp)>, FileError> {
    let read_err = |source: io::Error| FileError::Read {
        path: path.to_owned(),
        source,
    };
    let dir = parent_of(path);
    match std::fs::symlink_metadata(dir) {
        Ok(_) => kg_fs::check_dir(dir)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(read_err(e)),
    }
    let mut file = match OpenOptions::new()
        .read(true)
        .custom_flags((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::CLOEXEC).bits() as i32)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
            return Err(kg_fs::Error::Symlink {
                path: path.to_owned(),
            }
            .into());
        }
        Err(e) => return Err(read_err(e)),
    };
    // The stamp comes from the descriptor the text is read from, so it describes that text.
    let meta = file.metadata().map_err(read_err)?;
    if !meta.is_file() {
        return Err(kg_fs::Error::NotRegular {
            path: path.to_owned(),
        }
        .into());
    }
    buf.clear();
    buf.reserve(meta.len() as usize);
    file.read_to_end(buf).map_err(read_err)?;
    // One fast check of the whole text up front: serde_json then reads strings without
    // checking each one again.
    let Ok(text) = std::str::from_utf8(buf) else {
        // Not UTF-8: serde_json, reading the bytes, says where.
        let source = match serde_json::from_slice::<serde_json::Value>(buf) {
            Err(e) => StoreError::from_json_error(e),
            Ok(_) => StoreError::from_json_error(serde::de::Error::custom("invalid UTF-8")),
        };
        return Err(FileError::Corrupt {
            path: path.to_owned(),
            line: problem_line("", &source).max(1),
            source,
        });
    };
    let store = Store::from_json(text).map_err(|source| FileError::Corrupt {
        path: path.to_owned(),
        line: problem_line(text, &source),
        source,
    })?;
    Ok(Some((store, Stamp::of(&meta))))
}

/// Reads the pepper file, with its exposure (see [`kg_fs::read_secret`]); `None` if there is
/// none.
fn read_pepper(path: &Path) -> Result<Option<(Pepper, Option<kg_fs::Exposed>)>, FileError> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(FileError::Read {
                path: path.to_owned(),
                source,
            });
        }
    }
    let secret = kg_fs::read_secret(path)?;
    let exposed = secret.exposed;
    let bytes = Zeroizing::new(secret.bytes);
    // Invalid UTF-8 is reported like any other non-hex content.
    let text = std::str::from_utf8(&bytes).unwrap_or("\u{0}");
    Pepper::from_text(text)
        .map(|p| Some((p, exposed)))
        .map_err(|source| FileError::BadPepper {
            path: path.to_owned(),
            source,
        })
}

/// What is wrong, without repeating the position the message already starts with.
fn corrupt_detail(e: &StoreError) -> String {
    match e {
        StoreError::Json { source, .. } => {
            let text = source.to_string();
            match text.rfind(" at line ") {
                Some(at) => text[..at].to_owned(),
                None => text,
            }
        }
        other => other.to_string(),
    }
}

/// The line a store error is about. serde's errors carry one; for the checks made after
/// parsing, the line of the key or entry concerned is found in the (valid JSON) text.
fn problem_line(text: &str, e: &StoreError) -> usize {
    match e {
        StoreError::Json { line, .. } => Some(*line),
        StoreError::UnsupportedVersion { .. } => top_level_key_line(text, "version"),
        StoreError::BadPrefix(_) => top_level_key_line(text, "prefix"),
        StoreError::InvalidEntry { number, .. } => entry_line(text, *number),
        _ => None,
    }
    .unwrap_or(1)
}

/// Walks JSON text (known to be valid) and calls `visit(depth, byte offset, byte)` for each
/// structural byte outside strings, and for the opening quote of each string.
fn walk_json(text: &str, mut visit: impl FnMut(usize, usize, u8) -> bool) {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'"' => {
                if visit(depth, i, b) {
                    return;
                }
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'[' => {
                if visit(depth, i, b) {
                    return;
                }
                depth += 1;
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
}

fn line_at(text: &str, offset: usize) -> usize {
    text[..offset].matches('\n').count() + 1
}

/// The line of `"key"` in the top-level object.
fn top_level_key_line(text: &str, key: &str) -> Option<usize> {
    let quoted = format!("\"{key}\"");
    let mut found = None;
    walk_json(text, |depth, at, b| {
        if depth == 1 && b == b'"' && text[at..].starts_with(&quoted) {
            found = Some(line_at(text, at));
        }
        found.is_some()
    });
    found
}

/// The line where entry `number` (1-based) opens. The store's only array at depth 1 is
/// `entries` (unknown fields are refused), so its entries are the objects at depth 2.
fn entry_line(text: &str, number: usize) -> Option<usize> {
    let mut seen = 0;
    let mut found = None;
    walk_json(text, |depth, at, b| {
        if depth == 2 && b == b'{' {
            seen += 1;
            if seen == number {
                found = Some(line_at(text, at));
            }
        }
        found.is_some()
    });
    found
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_of_keys_and_entries() {
        let text = "{\n  \"version\": 2,\n  \"prefix\": \"k\\\"{\",\n  \"entries\": [\n    {\n      \"id\": \"x\",\n      \"status\": {\"state\": \"active\"}\n    },\n    {\n      \"id\": \"[{\"\n    }\n  ]\n}\n";
        assert_eq!(top_level_key_line(text, "version"), Some(2));
        assert_eq!(top_level_key_line(text, "prefix"), Some(3));
        assert_eq!(entry_line(text, 1), Some(5));
        assert_eq!(entry_line(text, 2), Some(9));
        assert_eq!(entry_line(text, 3), None);
    }
}

/// What [`ensure_client_token`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ensured {
    /// The token's public id.
    pub id: String,
    /// A token was created just now (otherwise the existing one was kept or repaired).
    pub created: bool,
    /// The name had an active token but its client file did not hold it, so it was replaced.
    pub repaired: Option<Repaired>,
    /// The 0600 file holding the plaintext for the local user.
    pub token_file: PathBuf,
    /// The store, pepper or client token file, as read, whose mode lets the group or others
    /// at them (nothing was changed; the command says so).
    pub exposed: Vec<kg_fs::Exposed>,
}

/// A client token file that [`ensure_client_token`] found broken and replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repaired {
    /// The id of the token that was active: revoked now, since its file was lost.
    pub old_id: String,
    /// What was wrong with the file ("was missing", "held a revoked token", ...).
    pub problem: String,
}

/// Why [`ensure_client_token`] failed. Never carries a token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnsureError {
    /// Reading or writing the store, pepper or lock failed.
    #[error(transparent)]
    File(#[from] FileError),
    /// The store refused the change (a bad name or scope).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The secure file layer refused the client token file.
    #[error(transparent)]
    Fs(#[from] kg_fs::Error),
    /// The client token file could not be read (not "it is missing": that is repaired).
    #[error("cannot read '{}': {message}", path.display())]
    ClientFileUnreadable { path: PathBuf, message: String },
}

impl EnsureError {
    /// A one-line recommendation.
    pub fn hint(&self) -> Option<String> {
        match self {
            EnsureError::File(e) => e.hint(),
            EnsureError::Store(e) => e.hint(),
            EnsureError::Fs(e) => e.hint(),
            EnsureError::ClientFileUnreadable { .. } => None,
        }
    }

    /// Bad input rather than a failed operation.
    pub fn is_usage(&self) -> bool {
        match self {
            EnsureError::File(e) => e.is_usage(),
            EnsureError::Store(_) => true,
            _ => false,
        }
    }

    /// Another process holds the lock.
    pub fn is_locked(&self) -> bool {
        match self {
            EnsureError::File(e) => e.is_locked(),
            EnsureError::Fs(e) => e.is_locked(),
            _ => false,
        }
    }
}

/// Makes sure the token `name` exists and that its plaintext sits in the local user's 0600
/// client token file (the auto-generated token of `tokenctl ensure` and `keygate up`).
///
/// Idempotent, and convergent after a crash: everything happens under the store lock, and a
/// new token reaches its file before the store learns it ([`StoreTxn::commit_delivering`]).
/// When the name has an active token but the file is missing or does not hold a token that
/// verifies as this name (an old binary killed between the two writes, a deleted file, a
/// revoked token planted there), the active token is rotated with no grace: its secret cannot
/// be recovered (only its digest is stored), and a token whose only delivery is lost must
/// not stay valid. [`Ensured::repaired`] says so. A file that cannot be read at all (a
/// permission error) is an error, not a repair.
pub fn ensure_client_token(
    paths: &StorePaths,
    private_dir: &Path,
    name: &str,
    scopes: Vec<String>,
    prefix: &Prefix,
    wait: Wait,
    now: OffsetDateTime,
) -> Result<Ensured, EnsureError> {
    let token_file = client_token_file(private_dir, name);
    let mut txn = paths.begin(wait, prefix)?;
    let mut repaired = None;
    if let Some(entry) = txn.store().find_active(name) {
        let old_id = entry.id.clone();
        let mut exposed = txn.exposed().to_vec();
        match client_file_problem(&txn, &token_file, name, now, &mut exposed)? {
            None => {
                return Ok(Ensured {
                    id: old_id,
                    created: false,
                    repaired: None,
                    token_file,
                    exposed,
                });
            }
            Some(problem) => repaired = Some(Repaired { old_id, problem }),
        }
    }
    let exposed = txn.exposed().to_vec();
    let (store, pepper) = txn.parts();
    let (entry, token) = match repaired {
        Some(_) => store.rotate(pepper, name, time::Duration::ZERO, now)?,
        None => store.create(pepper, name, scopes, None, now)?,
    };
    kg_fs::create_dir_all(token_file.parent().unwrap_or(private_dir), DirMode::Private)?;
    txn.commit_delivering(&token, &[&token_file])?;
    Ok(Ensured {
        id: entry.id,
        created: repaired.is_none(),
        repaired,
        token_file,
        exposed,
    })
}

/// What is wrong with `name`'s client token file, or `None` when it holds a token that
/// verifies as `name` (active, or retiring within its grace).
fn client_file_problem(
    txn: &StoreTxn,
    path: &Path,
    name: &str,
    now: OffsetDateTime,
    exposed: &mut Vec<kg_fs::Exposed>,
) -> Result<Option<String>, EnsureError> {
    let unreadable = |message: String| EnsureError::ClientFileUnreadable {
        path: path.to_owned(),
        message,
    };
    let token = match std::fs::File::open(path) {
        Ok(f) => {
            // Its mode, as read: reported, never changed here.
            if let Ok(meta) = f.metadata() {
                exposed.extend(kg_fs::Exposed::of(path, meta.mode()));
            }
            match read_token(f) {
                Ok(t) => t,
                Err(TokenReadError::Io(e)) => return Err(unreadable(e.to_string())),
                Err(e) => return Ok(Some(format!("did not hold a token ({e})"))),
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Some("was missing".into())),
        Err(e) => return Err(unreadable(e.to_string())),
    };
    let Some(token) = token else {
        return Ok(Some("was empty".into()));
    };
    Ok(
        match txn.store().verify(txn.pepper(), token.expose_secret(), now) {
            Ok(info) if info.name == name => None,
            Ok(_) => Some("held a token of another name".into()),
            Err(Reason::Unknown) => Some("held a token this store does not know".into()),
            Err(Reason::Revoked) => Some("held a revoked token".into()),
            Err(Reason::Expired) => Some("held an expired token".into()),
            Err(reason) => Some(format!("did not hold a working token ({reason})")),
        },
    )
}
