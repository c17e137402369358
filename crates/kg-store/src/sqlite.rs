//! The SQLite implementation: one connection behind a mutex, WAL, versioned migrations.
//!
//! One connection: every statement here is a point read or write of microseconds, and
//! SQLite serializes writers anyway; a pool would add threads and no throughput. Writes
//! take the write lock at their start (`BEGIN IMMEDIATE`), so two processes on one file
//! (the server and `keygate store backup`) wait for each other through SQLite's busy
//! timeout instead of failing half-way.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

mod users;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

use crate::{
    Approval, ClientRecord, ClientStore, CodeRecord, CodeTake, DIGEST_LEN, DevicePoll,
    DeviceRecord, Error, GrantRecord, GrantStore, RefreshRecord, RefreshUse, Revocations,
    SecretRecord, SessionLimits, SessionRecord, SessionStore,
};

/// The migrations, in order: version N is the state after the first N. Never edit one
/// that has shipped; add the next.
const MIGRATIONS: &[&str] = &[
    // 1: browser sessions.
    "CREATE TABLE sessions (
        digest BLOB PRIMARY KEY NOT NULL CHECK (length(digest) = 32),
        token_id TEXT NOT NULL,
        created INTEGER NOT NULL,
        used INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX sessions_by_token ON sessions (token_id, used);
    CREATE INDEX sessions_by_used ON sessions (used);",
    // 2: OAuth clients, their secrets (digests) and revoked access tokens.
    "CREATE TABLE clients (
        id TEXT PRIMARY KEY NOT NULL,
        name TEXT NOT NULL,
        grants TEXT NOT NULL,
        scopes TEXT NOT NULL,
        redirect_uris TEXT NOT NULL,
        public INTEGER NOT NULL CHECK (public IN (0, 1)),
        created INTEGER NOT NULL,
        revoked INTEGER
    ) WITHOUT ROWID;
    CREATE UNIQUE INDEX clients_by_live_name ON clients (name) WHERE revoked IS NULL;
    CREATE TABLE client_secrets (
        client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
        id TEXT NOT NULL,
        digest BLOB NOT NULL CHECK (length(digest) = 32),
        created INTEGER NOT NULL,
        until INTEGER,
        PRIMARY KEY (client_id, id)
    ) WITHOUT ROWID;
    CREATE TABLE revoked_tokens (
        jti TEXT PRIMARY KEY NOT NULL,
        client_id TEXT NOT NULL,
        expires INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX revoked_tokens_by_expiry ON revoked_tokens (expires);",
    // 3: what people's sign-ins grant: authorization codes, grants (refresh-token families)
    // with their refresh tokens, and device authorizations.
    "CREATE TABLE grants (
        id TEXT PRIMARY KEY NOT NULL,
        client_id TEXT NOT NULL,
        subject TEXT NOT NULL,
        scope TEXT NOT NULL,
        resource TEXT,
        auth_time INTEGER NOT NULL,
        created INTEGER NOT NULL,
        expires INTEGER NOT NULL,
        revoked INTEGER
    ) WITHOUT ROWID;
    CREATE INDEX grants_by_client ON grants (client_id);
    CREATE TABLE auth_codes (
        digest BLOB PRIMARY KEY NOT NULL CHECK (length(digest) = 32),
        client_id TEXT NOT NULL,
        redirect_uri TEXT NOT NULL,
        subject TEXT NOT NULL,
        scope TEXT NOT NULL,
        resource TEXT,
        challenge TEXT,
        nonce TEXT,
        auth_time INTEGER NOT NULL,
        expires INTEGER NOT NULL,
        used INTEGER,
        grant_id TEXT
    ) WITHOUT ROWID;
    CREATE TABLE refresh_tokens (
        digest BLOB PRIMARY KEY NOT NULL CHECK (length(digest) = 32),
        grant_id TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
        created INTEGER NOT NULL,
        used INTEGER
    ) WITHOUT ROWID;
    CREATE INDEX refresh_tokens_by_grant ON refresh_tokens (grant_id);
    CREATE TABLE device_codes (
        digest BLOB PRIMARY KEY NOT NULL CHECK (length(digest) = 32),
        user_code TEXT NOT NULL UNIQUE,
        client_id TEXT NOT NULL,
        scope TEXT NOT NULL,
        resource TEXT,
        expires INTEGER NOT NULL,
        interval_ms INTEGER NOT NULL,
        next_poll INTEGER NOT NULL,
        subject TEXT,
        auth_time INTEGER,
        denied INTEGER,
        used INTEGER
    ) WITHOUT ROWID;",
    // 4: the API token a person signed in with, on what their sign-in granted, so that a
    // grant ends when that token is revoked or expires.
    "ALTER TABLE auth_codes ADD COLUMN token_id TEXT;
    ALTER TABLE device_codes ADD COLUMN token_id TEXT;
    ALTER TABLE grants ADD COLUMN token_id TEXT;",
    // 5: people, their recovery codes, groups and memberships; sessions of people. (The
    // version row is no longer written: servers use the store's version, `version()`.)
    "ALTER TABLE sessions ADD COLUMN user_id TEXT;
    CREATE INDEX sessions_by_user ON sessions (user_id, used) WHERE user_id IS NOT NULL;
    CREATE TABLE users (
        id TEXT PRIMARY KEY NOT NULL,
        name TEXT NOT NULL UNIQUE,
        email TEXT,
        password TEXT NOT NULL,
        must_change INTEGER NOT NULL CHECK (must_change IN (0, 1)),
        disabled INTEGER NOT NULL CHECK (disabled IN (0, 1)),
        totp BLOB,
        totp_step INTEGER,
        revision INTEGER NOT NULL,
        created INTEGER NOT NULL,
        changed INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE recovery_codes (
        user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        digest BLOB NOT NULL CHECK (length(digest) = 32),
        PRIMARY KEY (user_id, digest)
    ) WITHOUT ROWID;
    CREATE TABLE groups (
        name TEXT PRIMARY KEY NOT NULL,
        description TEXT NOT NULL,
        created INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE members (
        group_name TEXT NOT NULL REFERENCES groups (name) ON DELETE CASCADE,
        user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        PRIMARY KEY (group_name, user_id)
    ) WITHOUT ROWID;
    CREATE INDEX members_by_user ON members (user_id);
    CREATE TABLE people_version (
        one INTEGER PRIMARY KEY CHECK (one = 1),
        version INTEGER NOT NULL
    );
    INSERT INTO people_version VALUES (1, 0);",
    // 6: the service a person's session was opened for (by a launch ticket), and the
    // launch tickets spent, kept until they would have expired.
    "ALTER TABLE sessions ADD COLUMN service TEXT;
    CREATE TABLE spent_tickets (
        digest BLOB PRIMARY KEY NOT NULL CHECK (length(digest) = 32),
        expires INTEGER NOT NULL
    ) WITHOUT ROWID;",
    // 7: password-reset links (their secrets' digests), until used or expired.
    "CREATE TABLE password_resets (
        digest BLOB PRIMARY KEY NOT NULL CHECK (length(digest) = 32),
        user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        expires INTEGER NOT NULL
    ) WITHOUT ROWID;",
    // 8: the people's audit trail: sign-ins, refusals, service entries, admin changes.
    "CREATE TABLE audit_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        event TEXT NOT NULL,
        user_name TEXT,
        client TEXT,
        detail TEXT
    );
    CREATE INDEX audit_events_by_at ON audit_events (at);",
];

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// How long a statement waits for another process's write to finish.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The store in a SQLite file (or in memory, for tests).
pub struct SqliteStore {
    conn: Mutex<Connection>,
    path: PathBuf,
    /// The file's mode at open, when the group or others may read it.
    exposed: Option<kg_fs::Exposed>,
}

/// What a read-only look at a store file found (for `keygate check`).
#[derive(Debug)]
pub struct Inspection {
    /// Its schema version.
    pub schema_version: i64,
    /// How many sessions it holds.
    pub sessions: usize,
    /// Its mode, when the group or others may read it.
    pub exposed: Option<kg_fs::Exposed>,
}

impl SqliteStore {
    /// Opens (creating both when absent) the store in the state directory `dir` (0700):
    /// `dir/keygate.db`, as the server, tokenctl and `keygate users` all do.
    pub fn open_in(dir: &Path) -> Result<SqliteStore, Error> {
        kg_fs::create_dir_all(dir, kg_fs::DirMode::Private)?;
        SqliteStore::open(&dir.join(crate::DB_FILE))
    }

    /// Opens the store at `path`, creating it (0600) when absent, and brings its schema up
    /// to [`SCHEMA_VERSION`]. A schema newer than that is refused and left as it is.
    pub fn open(path: &Path) -> Result<SqliteStore, Error> {
        let (_, exposed) = kg_fs::ensure_private_file(path)?;
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| open_error(path, e))?;
        let store = SqliteStore {
            conn: Mutex::new(conn),
            path: path.to_owned(),
            exposed,
        };
        store.prepare(true)?;
        Ok(store)
    }

    /// An empty store in memory, gone when dropped.
    pub fn memory() -> Result<SqliteStore, Error> {
        let conn =
            Connection::open_in_memory().map_err(|e| open_error(Path::new(":memory:"), e))?;
        let store = SqliteStore {
            conn: Mutex::new(conn),
            path: PathBuf::from(":memory:"),
            exposed: None,
        };
        store.prepare(false)?;
        Ok(store)
    }

    /// Looks at the store at `path`, opened read-only (SQLite may still create the `-wal`
    /// and `-shm` files of a WAL database, with the database's mode): `None` when there is
    /// none yet (the server creates it), else its schema version and size. A file that is not
    /// a database, or one with a newer schema, is an error.
    pub fn inspect(path: &Path) -> Result<Option<Inspection>, Error> {
        use std::os::unix::fs::MetadataExt;
        let meta = match std::fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(Error::Open {
                    path: path.to_owned(),
                    detail: e.to_string(),
                });
            }
        };
        if !meta.is_file() {
            return Err(Error::Open {
                path: path.to_owned(),
                detail: "not a regular file".into(),
            });
        }
        let conn = open_read_only(path)?;
        let version = user_version(&conn, path)?;
        // A negative version is no version this build wrote: refused like a newer one.
        if !(0..=SCHEMA_VERSION).contains(&version) {
            return Err(too_new(path, version));
        }
        let sessions = if version >= 1 {
            conn.query_row("SELECT count(*) FROM sessions", [], |r| r.get::<_, i64>(0))
                .map_err(|e| classify(path, e, "count the sessions"))? as usize
        } else {
            0
        };
        Ok(Some(Inspection {
            schema_version: version,
            sessions,
            exposed: kg_fs::Exposed::of(path, meta.mode()),
        }))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's mode as found at open, when its group or others may read it (an
    /// existing file keeps its mode; one this store created is 0600).
    pub fn exposed(&self) -> Option<&kg_fs::Exposed> {
        self.exposed.as_ref()
    }

    /// The schema version of the open store.
    pub fn schema_version(&self) -> Result<i64, Error> {
        user_version(&self.lock(), &self.path)
    }

    /// Writes a consistent copy of the store to `to` (0600, atomically: `to` is a complete
    /// database or untouched), while the store stays in use. SQLite's online backup copies
    /// the pages under a read transaction, so a write committed meanwhile is either in the
    /// copy or not, never half.
    pub fn backup(&self, to: &Path) -> Result<(), Error> {
        copy(&self.lock(), to)
    }

    /// [`SqliteStore::backup`] of the store file at `from`, opened read-only: the copy is
    /// taken as the file is (no migration runs), while a server goes on using it.
    pub fn backup_file(from: &Path, to: &Path) -> Result<(), Error> {
        if !from.exists() {
            return Err(Error::Open {
                path: from.to_owned(),
                detail: "there is no store yet (keygate serve makes it in proxy mode)".into(),
            });
        }
        let conn = open_read_only(from)?;
        // A file that is not a database fails here, before anything is written.
        user_version(&conn, from)?;
        copy(&conn, to)
    }

    /// Settings for every connection, then the migrations.
    fn prepare(&self, file: bool) -> Result<(), Error> {
        let mut conn = self.lock();
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(Error::sql("set its busy timeout"))?;
        let version = user_version(&conn, &self.path)?;
        if version > SCHEMA_VERSION {
            return Err(too_new(&self.path, version));
        }
        if file {
            // WAL: readers never wait for the writer; NORMAL: a commit is durable once
            // the WAL is synced at checkpoint, and never corrupt (SQLite's own advice
            // for WAL). The -wal and -shm files take the database file's mode.
            conn.pragma_update(None, "journal_mode", "WAL")
                .map_err(|e| classify(&self.path, e, "switch to WAL"))?;
            conn.pragma_update(None, "synchronous", "NORMAL")
                .map_err(Error::sql("set synchronous"))?;
        }
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(Error::sql("turn on foreign keys"))?;
        migrate(&mut conn, &self.path)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic mid-statement leaves SQLite consistent (it rolls back what was not
        // committed): the connection is still usable.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A read-only connection to the store file at `path`, waiting for writers as every
/// connection here does.
fn open_read_only(path: &Path) -> Result<Connection, Error> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| open_error(path, e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(Error::sql("set its busy timeout"))?;
    Ok(conn)
}

/// The online backup of `conn` into a new 0600 file that replaces `to` once complete.
fn copy(conn: &Connection, to: &Path) -> Result<(), Error> {
    let file = kg_fs::AtomicFile::create(to, kg_fs::FileMode::Secret)?;
    {
        let mut dst = Connection::open(file.temp_path()).map_err(|e| open_error(to, e))?;
        let backup =
            rusqlite::backup::Backup::new(conn, &mut dst).map_err(Error::sql("start a backup"))?;
        backup
            .run_to_completion(256, Duration::from_millis(5), None)
            .map_err(Error::sql("copy itself"))?;
    }
    file.commit()?;
    Ok(())
}

/// Applies the migrations the file lacks, each version in one transaction with its
/// `user_version`, under the write lock: two processes starting at once migrate once.
fn migrate(conn: &mut Connection, path: &Path) -> Result<(), Error> {
    loop {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| classify(path, e, "begin a migration"))?;
        let version = user_version(&tx, path)?;
        if version > SCHEMA_VERSION {
            return Err(too_new(path, version));
        }
        if version == SCHEMA_VERSION {
            return tx.commit().map_err(Error::sql("end a migration"));
        }
        let next = MIGRATIONS[version as usize];
        tx.execute_batch(next)
            .map_err(Error::sql("apply a migration"))?;
        tx.pragma_update(None, "user_version", version + 1)
            .map_err(Error::sql("record its schema version"))?;
        tx.commit().map_err(Error::sql("commit a migration"))?;
    }
}

fn user_version(conn: &Connection, path: &Path) -> Result<i64, Error> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| classify(path, e, "read its schema version"))
}

fn too_new(path: &Path, found: i64) -> Error {
    Error::TooNew {
        path: path.to_owned(),
        found,
        known: SCHEMA_VERSION,
    }
}

fn open_error(path: &Path, e: rusqlite::Error) -> Error {
    classify(path, e, "open")
}

/// A file that is not a database says so, whatever statement found out.
pub(crate) fn classify(path: &Path, e: rusqlite::Error, what: &'static str) -> Error {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) => Error::NotADatabase {
            path: path.to_owned(),
        },
        Some(rusqlite::ErrorCode::CannotOpen) => Error::Open {
            path: path.to_owned(),
            detail: e.to_string(),
        },
        _ => Error::Sql {
            what,
            detail: e.to_string(),
        },
    }
}

pub(crate) fn record(r: &rusqlite::Row<'_>) -> rusqlite::Result<SessionRecord> {
    let digest: Vec<u8> = r.get(0)?;
    let mut d = [0u8; DIGEST_LEN];
    // The CHECK constraint keeps every digest this long.
    d.copy_from_slice(&digest);
    Ok(SessionRecord {
        digest: d,
        token_id: r.get(1)?,
        created: r.get(2)?,
        used: r.get(3)?,
        user_id: r.get(4)?,
        service: r.get(5)?,
    })
}

/// The columns [`record`] reads.
pub(crate) const SESSION_COLUMNS: &str =
    "digest, token_id, created, used, user_id, service FROM sessions";

impl SessionStore for SqliteStore {
    fn insert_session(&self, session: &SessionRecord, limits: SessionLimits) -> Result<(), Error> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(Error::sql("begin a session"))?;
        // Keep `per_token - 1` of the token's (or person's) sessions, the most recently used.
        tx.execute(
            "DELETE FROM sessions WHERE digest IN (
                SELECT digest FROM sessions WHERE token_id = ?1 AND user_id IS ?3
                ORDER BY used DESC LIMIT -1 OFFSET ?2)",
            params![
                session.token_id,
                limits.per_token.max(1) as i64 - 1,
                session.user_id
            ],
        )
        .map_err(Error::sql("bound a token's sessions"))?;
        let count: i64 = tx
            .query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))
            .map_err(Error::sql("count the sessions"))?;
        let total = limits.total.max(1) as i64;
        if count >= total {
            tx.execute(
                "DELETE FROM sessions WHERE digest IN (
                    SELECT digest FROM sessions ORDER BY used ASC LIMIT ?1)",
                params![count - total + 1],
            )
            .map_err(Error::sql("bound the sessions"))?;
        }
        tx.execute(
            "INSERT INTO sessions (digest, token_id, created, used, user_id, service)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                &session.digest[..],
                session.token_id,
                session.created,
                session.used,
                session.user_id,
                session.service
            ],
        )
        .map_err(Error::sql("store a session"))?;
        tx.commit().map_err(Error::sql("commit a session"))
    }

    fn session(&self, digest: &[u8; DIGEST_LEN]) -> Result<Option<SessionRecord>, Error> {
        self.lock()
            .prepare_cached(&format!("SELECT {SESSION_COLUMNS} WHERE digest = ?1"))
            .and_then(|mut st| st.query_row(params![&digest[..]], record).optional())
            .map_err(Error::sql("read a session"))
    }

    fn touch_session(&self, digest: &[u8; DIGEST_LEN], used: i64) -> Result<(), Error> {
        self.lock()
            .prepare_cached("UPDATE sessions SET used = max(used, ?2) WHERE digest = ?1")
            .and_then(|mut st| st.execute(params![&digest[..], used]))
            .map(|_| ())
            .map_err(Error::sql("record a session's use"))
    }

    fn end_session(&self, digest: &[u8; DIGEST_LEN]) -> Result<bool, Error> {
        self.lock()
            .prepare_cached("DELETE FROM sessions WHERE digest = ?1")
            .and_then(|mut st| st.execute(params![&digest[..]]))
            .map(|n| n > 0)
            .map_err(Error::sql("end a session"))
    }

    fn sweep_sessions(&self, created_before: i64, used_before: i64) -> Result<usize, Error> {
        self.lock()
            .execute(
                "DELETE FROM sessions WHERE created < ?1 OR used < ?2",
                params![created_before, used_before],
            )
            .map_err(Error::sql("sweep the sessions"))
    }

    fn version(&self) -> Result<(i64, u64), Error> {
        let conn = self.lock();
        // `data_version` moves with other connections' commits, `total_changes` with this
        // connection's own writes: together, with anything that changed the data.
        let theirs: i64 = conn
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut st| st.query_row([], |r| r.get(0)))
            .map_err(Error::sql("read the data version"))?;
        Ok((theirs, conn.total_changes()))
    }

    fn session_count(&self) -> Result<usize, Error> {
        self.lock()
            .query_row("SELECT count(*) FROM sessions", [], |r| r.get::<_, i64>(0))
            .map(|n| n as usize)
            .map_err(Error::sql("count the sessions"))
    }
}

/// Lists are stored as one text column, space-separated: no grant, scope or URI holds a
/// space (the clients' rules refuse them before they get here).
fn join(list: &[String]) -> String {
    list.join(" ")
}

fn split(text: String) -> Vec<String> {
    text.split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

const CLIENT_COLUMNS: &str =
    "id, name, grants, scopes, redirect_uris, public, created, revoked FROM clients";

fn client_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<ClientRecord> {
    Ok(ClientRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        grants: split(r.get(2)?),
        scopes: split(r.get(3)?),
        redirect_uris: split(r.get(4)?),
        public: r.get(5)?,
        created: r.get(6)?,
        revoked: r.get(7)?,
    })
}

fn secret_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<SecretRecord> {
    let digest: Vec<u8> = r.get(1)?;
    let mut d = [0u8; DIGEST_LEN];
    d.copy_from_slice(&digest);
    Ok(SecretRecord {
        id: r.get(0)?,
        digest: d,
        created: r.get(2)?,
        until: r.get(3)?,
    })
}

fn insert_secret(
    tx: &rusqlite::Transaction<'_>,
    client_id: &str,
    secret: &SecretRecord,
) -> Result<(), Error> {
    tx.execute(
        "INSERT INTO client_secrets (client_id, id, digest, created, until)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            client_id,
            secret.id,
            &secret.digest[..],
            secret.created,
            secret.until
        ],
    )
    .map(|_| ())
    .map_err(Error::sql("store a client secret"))
}

impl ClientStore for SqliteStore {
    fn insert_client(
        &self,
        client: &ClientRecord,
        secret: Option<&SecretRecord>,
    ) -> Result<(), Error> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(Error::sql("begin a client"))?;
        let inserted = tx.execute(
            "INSERT INTO clients (id, name, grants, scopes, redirect_uris, public, created, revoked)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                client.id,
                client.name,
                join(&client.grants),
                join(&client.scopes),
                join(&client.redirect_uris),
                client.public,
                client.created,
                client.revoked
            ],
        );
        match inserted {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                return Err(Error::Conflict {
                    what: "client",
                    name: client.name.clone(),
                });
            }
            other => other.map_err(Error::sql("store a client"))?,
        };
        if let Some(secret) = secret {
            insert_secret(&tx, &client.id, secret)?;
        }
        tx.commit().map_err(Error::sql("commit a client"))
    }

    fn client(&self, id: &str) -> Result<Option<ClientRecord>, Error> {
        self.lock()
            .prepare_cached(&format!("SELECT {CLIENT_COLUMNS} WHERE id = ?1"))
            .and_then(|mut st| st.query_row(params![id], client_record).optional())
            .map_err(Error::sql("read a client"))
    }

    fn client_named(&self, name: &str) -> Result<Option<ClientRecord>, Error> {
        self.lock()
            .prepare_cached(&format!(
                "SELECT {CLIENT_COLUMNS} WHERE name = ?1 AND revoked IS NULL"
            ))
            .and_then(|mut st| st.query_row(params![name], client_record).optional())
            .map_err(Error::sql("read a client"))
    }

    fn clients(&self) -> Result<Vec<ClientRecord>, Error> {
        self.lock()
            .prepare_cached(&format!("SELECT {CLIENT_COLUMNS} ORDER BY created, id"))
            .and_then(|mut st| st.query_map([], client_record)?.collect())
            .map_err(Error::sql("list the clients"))
    }

    fn client_secrets(&self, client_id: &str) -> Result<Vec<SecretRecord>, Error> {
        self.lock()
            .prepare_cached(
                "SELECT id, digest, created, until FROM client_secrets
                 WHERE client_id = ?1 ORDER BY created, id",
            )
            .and_then(|mut st| st.query_map(params![client_id], secret_record)?.collect())
            .map_err(Error::sql("read a client's secrets"))
    }

    fn add_client_secret(
        &self,
        client_id: &str,
        secret: &SecretRecord,
        others_until: i64,
    ) -> Result<bool, Error> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(Error::sql("begin a rotation"))?;
        let live: bool = tx
            .query_row(
                "SELECT count(*) FROM clients WHERE id = ?1 AND revoked IS NULL",
                params![client_id],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n > 0)
            .map_err(Error::sql("read a client"))?;
        if !live {
            return Ok(false);
        }
        tx.execute(
            "UPDATE client_secrets SET until = min(coalesce(until, ?2), ?2) WHERE client_id = ?1",
            params![client_id, others_until],
        )
        .map_err(Error::sql("retire a client's secrets"))?;
        insert_secret(&tx, client_id, secret)?;
        tx.commit().map_err(Error::sql("commit a rotation"))?;
        Ok(true)
    }

    fn revoke_client(&self, id: &str, at: i64) -> Result<bool, Error> {
        self.lock()
            .prepare_cached("UPDATE clients SET revoked = ?2 WHERE id = ?1 AND revoked IS NULL")
            .and_then(|mut st| st.execute(params![id, at]))
            .map(|n| n > 0)
            .map_err(Error::sql("revoke a client"))
    }

    fn revoke_token(&self, jti: &str, client_id: &str, expires: i64) -> Result<(), Error> {
        self.lock()
            .prepare_cached(
                "INSERT OR IGNORE INTO revoked_tokens (jti, client_id, expires) VALUES (?1, ?2, ?3)",
            )
            .and_then(|mut st| st.execute(params![jti, client_id, expires]))
            .map(|_| ())
            .map_err(Error::sql("revoke a token"))
    }

    fn revocations(&self, now: i64) -> Result<Revocations, Error> {
        let conn = self.lock();
        let clients = conn
            .prepare_cached("SELECT id FROM clients WHERE revoked IS NOT NULL")
            .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
            .map_err(Error::sql("read the revoked clients"))?;
        let tokens = conn
            .prepare_cached("SELECT jti FROM revoked_tokens WHERE expires > ?1")
            .and_then(|mut st| st.query_map(params![now], |r| r.get(0))?.collect())
            .map_err(Error::sql("read the revoked tokens"))?;
        Ok(Revocations { clients, tokens })
    }

    fn sweep_revoked_tokens(&self, now: i64) -> Result<usize, Error> {
        self.lock()
            .execute(
                "DELETE FROM revoked_tokens WHERE expires <= ?1",
                params![now],
            )
            .map_err(Error::sql("sweep the revoked tokens"))
    }

    fn changes(&self) -> Result<i64, Error> {
        self.lock()
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .map_err(Error::sql("read the data version"))
    }
}

const GRANT_COLUMNS: &str = "id, client_id, subject, scope, resource, auth_time, created, expires, revoked, token_id \
     FROM grants";

fn grant_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<GrantRecord> {
    Ok(GrantRecord {
        id: r.get(0)?,
        client_id: r.get(1)?,
        subject: r.get(2)?,
        scope: r.get(3)?,
        resource: r.get(4)?,
        auth_time: r.get(5)?,
        created: r.get(6)?,
        expires: r.get(7)?,
        revoked: r.get(8)?,
        token_id: r.get(9)?,
    })
}

fn digest_of(v: Vec<u8>) -> [u8; DIGEST_LEN] {
    let mut d = [0u8; DIGEST_LEN];
    // The CHECK constraints keep every digest this long.
    d.copy_from_slice(&v);
    d
}

const CODE_COLUMNS: &str = "digest, client_id, redirect_uri, subject, scope, resource, challenge, \
     nonce, auth_time, expires, used, grant_id, token_id FROM auth_codes";

fn code_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<CodeRecord> {
    Ok(CodeRecord {
        digest: digest_of(r.get(0)?),
        client_id: r.get(1)?,
        redirect_uri: r.get(2)?,
        subject: r.get(3)?,
        scope: r.get(4)?,
        resource: r.get(5)?,
        challenge: r.get(6)?,
        nonce: r.get(7)?,
        auth_time: r.get(8)?,
        expires: r.get(9)?,
        used: r.get(10)?,
        grant_id: r.get(11)?,
        token_id: r.get(12)?,
    })
}

const DEVICE_COLUMNS: &str = "digest, user_code, client_id, scope, resource, expires, \
     interval_ms, next_poll, subject, auth_time, denied, used, token_id FROM device_codes";

fn device_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeviceRecord> {
    Ok(DeviceRecord {
        digest: digest_of(r.get(0)?),
        user_code: r.get(1)?,
        client_id: r.get(2)?,
        scope: r.get(3)?,
        resource: r.get(4)?,
        expires: r.get(5)?,
        interval_ms: r.get(6)?,
        next_poll: r.get(7)?,
        subject: r.get(8)?,
        auth_time: r.get(9)?,
        denied: r.get(10)?,
        used: r.get(11)?,
        token_id: r.get(12)?,
    })
}

fn insert_refresh(tx: &rusqlite::Transaction<'_>, rt: &RefreshRecord) -> Result<(), Error> {
    tx.execute(
        "INSERT INTO refresh_tokens (digest, grant_id, created, used) VALUES (?1, ?2, ?3, NULL)",
        params![&rt.digest[..], rt.grant_id, rt.created],
    )
    .map(|_| ())
    .map_err(Error::sql("store a refresh token"))
}

impl GrantStore for SqliteStore {
    fn insert_code(&self, c: &CodeRecord) -> Result<(), Error> {
        self.lock()
            .prepare_cached(
                "INSERT INTO auth_codes (digest, client_id, redirect_uri, subject, scope, \
                 resource, challenge, nonce, auth_time, expires, used, grant_id, token_id) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    &c.digest[..],
                    c.client_id,
                    c.redirect_uri,
                    c.subject,
                    c.scope,
                    c.resource,
                    c.challenge,
                    c.nonce,
                    c.auth_time,
                    c.expires,
                    c.used,
                    c.grant_id,
                    c.token_id
                ])
            })
            .map(|_| ())
            .map_err(Error::sql("store an authorization code"))
    }

    fn take_code(
        &self,
        digest: &[u8; DIGEST_LEN],
        client_id: &str,
        now: i64,
    ) -> Result<CodeTake, Error> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(Error::sql("begin redeeming a code"))?;
        let found = tx
            .query_row(
                &format!("SELECT {CODE_COLUMNS} WHERE digest = ?1"),
                params![&digest[..]],
                code_record,
            )
            .optional()
            .map_err(Error::sql("read a code"))?;
        let took = match found.filter(|c| c.client_id == client_id) {
            None => CodeTake::Unknown,
            Some(c) if c.used.is_some() => CodeTake::Replayed(c),
            Some(c) if now >= c.expires => CodeTake::Unknown,
            Some(mut c) => {
                tx.execute(
                    "UPDATE auth_codes SET used = ?2 WHERE digest = ?1",
                    params![&digest[..], now],
                )
                .map_err(Error::sql("redeem a code"))?;
                c.used = Some(now);
                CodeTake::Fresh(c)
            }
        };
        tx.commit().map_err(Error::sql("commit a code"))?;
        Ok(took)
    }

    fn set_code_grant(&self, digest: &[u8; DIGEST_LEN], grant_id: &str) -> Result<(), Error> {
        self.lock()
            .prepare_cached("UPDATE auth_codes SET grant_id = ?2 WHERE digest = ?1")
            .and_then(|mut st| st.execute(params![&digest[..], grant_id]))
            .map(|_| ())
            .map_err(Error::sql("link a code to its grant"))
    }

    fn insert_grant(&self, g: &GrantRecord, first: &RefreshRecord) -> Result<(), Error> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(Error::sql("begin a grant"))?;
        tx.execute(
            "INSERT INTO grants (id, client_id, subject, scope, resource, auth_time, created, \
             expires, revoked, token_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                g.id,
                g.client_id,
                g.subject,
                g.scope,
                g.resource,
                g.auth_time,
                g.created,
                g.expires,
                g.revoked,
                g.token_id
            ],
        )
        .map_err(Error::sql("store a grant"))?;
        insert_refresh(&tx, first)?;
        tx.commit().map_err(Error::sql("commit a grant"))
    }

    fn grant(&self, id: &str) -> Result<Option<GrantRecord>, Error> {
        self.lock()
            .prepare_cached(&format!("SELECT {GRANT_COLUMNS} WHERE id = ?1"))
            .and_then(|mut st| st.query_row(params![id], grant_record).optional())
            .map_err(Error::sql("read a grant"))
    }

    fn revoke_grant(&self, id: &str, at: i64) -> Result<bool, Error> {
        self.lock()
            .prepare_cached("UPDATE grants SET revoked = ?2 WHERE id = ?1 AND revoked IS NULL")
            .and_then(|mut st| st.execute(params![id, at]))
            .map(|n| n > 0)
            .map_err(Error::sql("revoke a grant"))
    }

    fn use_refresh(
        &self,
        digest: &[u8; DIGEST_LEN],
        successor: &RefreshRecord,
        now: i64,
        grace_ms: i64,
    ) -> Result<RefreshUse, Error> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(Error::sql("begin a refresh"))?;
        let found: Option<(String, Option<i64>)> = tx
            .query_row(
                "SELECT grant_id, used FROM refresh_tokens WHERE digest = ?1",
                params![&digest[..]],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(Error::sql("read a refresh token"))?;
        let Some((grant_id, used)) = found else {
            return Ok(RefreshUse::Unknown);
        };
        let grant = tx
            .query_row(
                &format!("SELECT {GRANT_COLUMNS} WHERE id = ?1"),
                params![grant_id],
                grant_record,
            )
            .optional()
            .map_err(Error::sql("read a grant"))?;
        let Some(grant) = grant.filter(|g| g.revoked.is_none() && now < g.expires) else {
            return Ok(RefreshUse::Ended);
        };
        let outcome = match used {
            None => {
                tx.execute(
                    "UPDATE refresh_tokens SET used = ?2 WHERE digest = ?1",
                    params![&digest[..], now],
                )
                .map_err(Error::sql("spend a refresh token"))?;
                insert_refresh(&tx, successor)?;
                RefreshUse::Rotated(grant)
            }
            Some(at) => {
                let successor_unspent: bool = tx
                    .query_row(
                        "SELECT count(*) FROM refresh_tokens \
                         WHERE digest = ?1 AND grant_id = ?2 AND used IS NULL",
                        params![&successor.digest[..], grant.id],
                        |r| r.get::<_, i64>(0),
                    )
                    .map(|n| n > 0)
                    .map_err(Error::sql("read a refresh token"))?;
                if now - at <= grace_ms && successor_unspent {
                    RefreshUse::Retried(grant)
                } else {
                    tx.execute(
                        "UPDATE grants SET revoked = ?2 WHERE id = ?1 AND revoked IS NULL",
                        params![grant.id, now],
                    )
                    .map_err(Error::sql("revoke a grant"))?;
                    RefreshUse::Reused(grant)
                }
            }
        };
        tx.commit().map_err(Error::sql("commit a refresh"))?;
        Ok(outcome)
    }

    fn refresh_grant(&self, digest: &[u8; DIGEST_LEN]) -> Result<Option<GrantRecord>, Error> {
        self.lock()
            .prepare_cached(&format!(
                "SELECT {GRANT_COLUMNS} WHERE id = \
                 (SELECT grant_id FROM refresh_tokens WHERE digest = ?1)"
            ))
            .and_then(|mut st| st.query_row(params![&digest[..]], grant_record).optional())
            .map_err(Error::sql("read a grant"))
    }

    fn revoked_grants(&self, now: i64) -> Result<Vec<String>, Error> {
        self.lock()
            .prepare_cached("SELECT id FROM grants WHERE revoked IS NOT NULL AND expires > ?1")
            .and_then(|mut st| st.query_map(params![now], |r| r.get(0))?.collect())
            .map_err(Error::sql("read the revoked grants"))
    }

    fn insert_device(&self, d: &DeviceRecord) -> Result<(), Error> {
        let done = self
            .lock()
            .prepare_cached(
                "INSERT INTO device_codes (digest, user_code, client_id, scope, resource, \
                 expires, interval_ms, next_poll, subject, auth_time, denied, used, token_id) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    &d.digest[..],
                    d.user_code,
                    d.client_id,
                    d.scope,
                    d.resource,
                    d.expires,
                    d.interval_ms,
                    d.next_poll,
                    d.subject,
                    d.auth_time,
                    d.denied,
                    d.used,
                    d.token_id
                ])
            });
        match done {
            Ok(_) => Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(Error::Conflict {
                    what: "user code",
                    name: "(not shown)".into(),
                })
            }
            Err(e) => Err(Error::sql("store a device authorization")(e)),
        }
    }

    fn device_by_user_code(
        &self,
        user_code: &str,
        now: i64,
    ) -> Result<Option<DeviceRecord>, Error> {
        self.lock()
            .prepare_cached(&format!(
                "SELECT {DEVICE_COLUMNS} WHERE user_code = ?1 AND expires > ?2"
            ))
            .and_then(|mut st| {
                st.query_row(params![user_code, now], device_record)
                    .optional()
            })
            .map_err(Error::sql("read a device authorization"))
    }

    fn decide_device(
        &self,
        user_code: &str,
        approval: Option<Approval<'_>>,
        now: i64,
    ) -> Result<bool, Error> {
        let conn = self.lock();
        let n = match approval {
            Some(a) => conn.execute(
                "UPDATE device_codes SET subject = ?2, auth_time = ?3, token_id = ?5 \
                 WHERE user_code = ?1 AND expires > ?4 AND subject IS NULL AND denied IS NULL \
                 AND used IS NULL",
                params![user_code, a.subject, a.auth_time, now, a.token_id],
            ),
            None => conn.execute(
                "UPDATE device_codes SET denied = ?2 WHERE user_code = ?1 AND expires > ?2 \
                 AND subject IS NULL AND denied IS NULL AND used IS NULL",
                params![user_code, now],
            ),
        }
        .map_err(Error::sql("decide a device authorization"))?;
        Ok(n > 0)
    }

    fn poll_device(
        &self,
        digest: &[u8; DIGEST_LEN],
        client_id: &str,
        now: i64,
        slow_down_ms: i64,
    ) -> Result<DevicePoll, Error> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(Error::sql("begin a poll"))?;
        let found = tx
            .query_row(
                &format!("SELECT {DEVICE_COLUMNS} WHERE digest = ?1"),
                params![&digest[..]],
                device_record,
            )
            .optional()
            .map_err(Error::sql("read a device authorization"))?;
        let Some(mut d) = found.filter(|d| d.client_id == client_id) else {
            return Ok(DevicePoll::Unknown);
        };
        let poll = if d.used.is_some() {
            DevicePoll::Used
        } else if now >= d.expires {
            DevicePoll::Expired
        } else if d.denied.is_some() {
            DevicePoll::Denied
        } else if d.subject.is_some() {
            tx.execute(
                "UPDATE device_codes SET used = ?2 WHERE digest = ?1",
                params![&digest[..], now],
            )
            .map_err(Error::sql("spend a device authorization"))?;
            d.used = Some(now);
            DevicePoll::Approved(Box::new(d))
        } else if now < d.next_poll {
            tx.execute(
                "UPDATE device_codes SET interval_ms = interval_ms + ?2, \
                 next_poll = ?3 + interval_ms + ?2 WHERE digest = ?1",
                params![&digest[..], slow_down_ms, now],
            )
            .map_err(Error::sql("slow a poll down"))?;
            DevicePoll::SlowDown
        } else {
            tx.execute(
                "UPDATE device_codes SET next_poll = ?2 + interval_ms WHERE digest = ?1",
                params![&digest[..], now],
            )
            .map_err(Error::sql("record a poll"))?;
            DevicePoll::Pending
        };
        tx.commit().map_err(Error::sql("commit a poll"))?;
        Ok(poll)
    }

    fn sweep_grants(&self, now: i64) -> Result<usize, Error> {
        let conn = self.lock();
        let mut n = 0;
        for sql in [
            "DELETE FROM auth_codes WHERE expires <= ?1 - 86400000",
            "DELETE FROM device_codes WHERE expires <= ?1",
            "DELETE FROM grants WHERE expires <= ?1",
        ] {
            n += conn
                .execute(sql, params![now])
                .map_err(Error::sql("sweep the grants"))?;
        }
        Ok(n)
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}
