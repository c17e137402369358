//! The store: state that changes per request, in an embedded SQLite database.
//!
//! Token files suit state that changes when an operator acts (a token minted, a client
//! rotated): one atomic file, read whole. State that changes per request (browser sessions
//! now; authorization codes, refresh-token families and users next) needs point reads and
//! writes that survive a restart, which is what an embedded database is for. SQLite runs in
//! the process (built in, `bundled`: no server, no system library), keeps its file at 0600
//! in the state directory, and in WAL mode lets readers go on while one writer commits.
//!
//! What the rest of keygate sees is a narrow trait per kind of state ([`SessionStore`]),
//! never SQL: this is the only crate that speaks it (ARCHITECTURE.md). Each trait has a
//! conformance suite ([`conformance`]) that states the contract as tests, so that a second
//! implementation (PostgreSQL, for several instances) is held to the same behaviour.
//!
//! Times are Unix milliseconds, passed in by the caller: the store reads no clock.

mod error;
mod sqlite;

pub mod conformance;

pub use error::Error;
pub use sqlite::{Inspection, SCHEMA_VERSION, SqliteStore};

/// The length of a session digest.
pub const DIGEST_LEN: usize = 32;

/// A browser session as stored. Never the session id itself: its SHA-256 digest, so that
/// the database, or a backup of it, holds nothing a browser could present.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// SHA-256 of the session id.
    pub digest: [u8; DIGEST_LEN],
    /// The id of the API token the session was begun with.
    pub token_id: String,
    /// When it began, Unix milliseconds.
    pub created: i64,
    /// When it was last used, Unix milliseconds.
    pub used: i64,
}

impl std::fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRecord")
            .field("token_id", &self.token_id)
            .field("created", &self.created)
            .field("used", &self.used)
            .finish_non_exhaustive()
    }
}

/// The bounds a new session is inserted under.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    /// Most sessions of one token: beyond it, that token's least recently used goes.
    pub per_token: usize,
    /// Most sessions in all: beyond it, the least recently used goes.
    pub total: usize,
}

/// Where browser sessions live.
pub trait SessionStore: Send + Sync + std::fmt::Debug {
    /// Inserts `session`, first removing as many of its token's least recently used
    /// sessions, then of all sessions, as keep both within `limits` with it; one
    /// transaction.
    fn insert_session(&self, session: &SessionRecord, limits: SessionLimits) -> Result<(), Error>;

    /// The session with `digest`, if there is one.
    fn session(&self, digest: &[u8; DIGEST_LEN]) -> Result<Option<SessionRecord>, Error>;

    /// Records a use at `used`; a use never moves back in time.
    fn touch_session(&self, digest: &[u8; DIGEST_LEN], used: i64) -> Result<(), Error>;

    /// Removes the session; whether there was one.
    fn end_session(&self, digest: &[u8; DIGEST_LEN]) -> Result<bool, Error>;

    /// Removes every session begun before `created_before` or last used before
    /// `used_before`; how many.
    fn sweep_sessions(&self, created_before: i64, used_before: i64) -> Result<usize, Error>;

    /// How many sessions are stored.
    fn session_count(&self) -> Result<usize, Error>;
}
