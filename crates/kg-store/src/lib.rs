//! The store: state that changes per request, in an embedded SQLite database.
//!
//! Token files suit state that changes when an operator acts (a token minted, a client
//! rotated): one atomic file, read whole. State that changes per request (browser sessions
//! now; authorization codes, refresh-token families and users next) needs point reads and
//! writes that survive a restart, which is what an embedded database is for. SQLite runs in
//! the process (built in, `bundled`: no server, no system library), keeps its file at 0600
//! in the state directory, and in WAL mode lets readers go on while one writer commits.
//!
//! What the rest of keygate sees is a narrow trait per kind of state ([`SessionStore`],
//! [`ClientStore`]),
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

/// The store's file name in the state directory.
pub const DB_FILE: &str = "keygate.db";

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

/// An OAuth client as stored. Times are Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRecord {
    /// The client id (not secret).
    pub id: String,
    /// The operator's name for it; unique among clients not revoked.
    pub name: String,
    /// The grant types it may use.
    pub grants: Vec<String>,
    /// The scopes it may be given.
    pub scopes: Vec<String>,
    /// Its registered redirect URIs.
    pub redirect_uris: Vec<String>,
    /// A public client has no secret (a CLI, a single-page app).
    pub public: bool,
    /// When it was registered.
    pub created: i64,
    /// When it was revoked, if it was.
    pub revoked: Option<i64>,
}

/// One secret of a confidential client: its HMAC digest under the pepper, never the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretRecord {
    /// The secret's id (visible inside the secret, as a token's is).
    pub id: String,
    /// HMAC-SHA-256 of the whole secret under the pepper.
    pub digest: [u8; DIGEST_LEN],
    /// When it was made, Unix milliseconds.
    pub created: i64,
    /// When it stops being accepted (after a rotation's grace), if ever.
    pub until: Option<i64>,
}

impl std::fmt::Debug for SecretRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretRecord")
            .field("id", &self.id)
            .field("created", &self.created)
            .field("until", &self.until)
            .finish_non_exhaustive()
    }
}

/// What is revoked now: clients, and access tokens (by `jti`) not yet expired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Revocations {
    /// Ids of revoked clients.
    pub clients: Vec<String>,
    /// `jti`s of revoked access tokens that have not expired yet.
    pub tokens: Vec<String>,
}

/// Where OAuth clients and revocations live.
pub trait ClientStore: Send + Sync + std::fmt::Debug {
    /// Registers `client` with its first secret (confidential clients); one transaction.
    /// A live client of the same name is [`Error::Conflict`].
    fn insert_client(
        &self,
        client: &ClientRecord,
        secret: Option<&SecretRecord>,
    ) -> Result<(), Error>;

    /// The client with `id`, revoked or not.
    fn client(&self, id: &str) -> Result<Option<ClientRecord>, Error>;

    /// The live (not revoked) client named `name`.
    fn client_named(&self, name: &str) -> Result<Option<ClientRecord>, Error>;

    /// Every client, oldest first.
    fn clients(&self) -> Result<Vec<ClientRecord>, Error>;

    /// A client's secrets, oldest first.
    fn client_secrets(&self, client_id: &str) -> Result<Vec<SecretRecord>, Error>;

    /// Adds `secret` and ends every other secret of the client at `others_until` (or
    /// earlier, if one already ends sooner); one transaction. False, and nothing written,
    /// when the client is unknown or revoked.
    fn add_client_secret(
        &self,
        client_id: &str,
        secret: &SecretRecord,
        others_until: i64,
    ) -> Result<bool, Error>;

    /// Revokes the client at `at`; false if it was unknown or already revoked.
    fn revoke_client(&self, id: &str, at: i64) -> Result<bool, Error>;

    /// Records that the access token `jti` of `client_id` is revoked until it `expires`
    /// (Unix seconds); revoking it again changes nothing.
    fn revoke_token(&self, jti: &str, client_id: &str, expires: i64) -> Result<(), Error>;

    /// What is revoked at `now` (Unix seconds, as tokens' `exp`).
    fn revocations(&self, now: i64) -> Result<Revocations, Error>;

    /// Forgets revoked tokens that have expired by `now` (Unix seconds); how many.
    fn sweep_revoked_tokens(&self, now: i64) -> Result<usize, Error>;

    /// A number that changes when another connection (another process) has committed a
    /// change since the last call: a cheap "look again" signal for caches.
    fn changes(&self) -> Result<i64, Error>;
}
