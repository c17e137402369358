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
mod users;

pub mod conformance;

pub use error::Error;
pub use sqlite::{Inspection, SCHEMA_VERSION, SqliteStore};
pub use users::{ADMINS, AuditEvent, GroupRecord, PERSON_REF_PREFIX, UserRecord, UserStore};

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
    /// The id of the API token the session was begun with; empty for a person's session.
    pub token_id: String,
    /// The person (a [`UserRecord`]'s id) who signed in with a password, if one did.
    pub user_id: Option<String>,
    /// The service (`[service.NAME]`) a person's session was opened for by a launch
    /// ticket; `None` for the portal's own (or the one upstream's).
    pub service: Option<String>,
    /// When it began, Unix milliseconds.
    pub created: i64,
    /// When it was last used, Unix milliseconds.
    pub used: i64,
}

impl std::fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRecord")
            .field("token_id", &self.token_id)
            .field("user_id", &self.user_id)
            .field("service", &self.service)
            .field("created", &self.created)
            .field("used", &self.used)
            .finish_non_exhaustive()
    }
}

/// The bounds a new session is inserted under.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    /// Most sessions of one token or person: beyond it, their least recently used goes.
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

    /// A value that changes whenever anything in the store may have changed: another
    /// process's commit, or a write of this one. While it stays the same, what was read
    /// stands, so a server can serve sessions and people from memory.
    fn version(&self) -> Result<(i64, u64), Error>;
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

/// What one sign-in granted a client: the family of its refresh tokens. Revoking it ends
/// every refresh token and every access token issued under it. Times are Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRecord {
    /// The grant's id (in its access tokens' `gid` claim; not secret).
    pub id: String,
    /// The client it was given to.
    pub client_id: String,
    /// Who signed in.
    pub subject: String,
    /// The scopes granted, space-separated.
    pub scope: String,
    /// The resource (RFC 8707) its access tokens are for, if one was named.
    pub resource: Option<String>,
    /// When the person signed in.
    pub auth_time: i64,
    /// When it was made.
    pub created: i64,
    /// When its refresh tokens stop working, however often they are rotated.
    pub expires: i64,
    /// When it was revoked, if it was.
    pub revoked: Option<i64>,
    /// The API token the person signed in with: the grant stands only while it does.
    pub token_id: Option<String>,
}

/// An authorization code as stored: its digest, never the code.
#[derive(Clone, PartialEq, Eq)]
pub struct CodeRecord {
    /// SHA-256 of the code.
    pub digest: [u8; DIGEST_LEN],
    /// The client it was issued to.
    pub client_id: String,
    /// The redirect URI it was sent to.
    pub redirect_uri: String,
    /// Who signed in.
    pub subject: String,
    /// The scopes granted, space-separated.
    pub scope: String,
    /// The resource, if one was named.
    pub resource: Option<String>,
    /// The PKCE S256 challenge.
    pub challenge: Option<String>,
    /// The OpenID Connect nonce.
    pub nonce: Option<String>,
    /// When the person signed in.
    pub auth_time: i64,
    /// When it stops being redeemable.
    pub expires: i64,
    /// When it was redeemed.
    pub used: Option<i64>,
    /// The grant its redemption made.
    pub grant_id: Option<String>,
    /// The API token the person signed in with.
    pub token_id: Option<String>,
}

impl std::fmt::Debug for CodeRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeRecord")
            .field("client_id", &self.client_id)
            .field("subject", &self.subject)
            .field("expires", &self.expires)
            .field("used", &self.used)
            .finish_non_exhaustive()
    }
}

/// What redeeming a code found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeTake {
    /// Redeemed now, for the first time.
    Fresh(CodeRecord),
    /// Redeemed before: a replay (its grant should be revoked).
    Replayed(CodeRecord),
    /// No such code, or expired.
    Unknown,
}

/// A refresh token as stored: its digest, never the token.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshRecord {
    /// HMAC of the token under the pepper.
    pub digest: [u8; DIGEST_LEN],
    /// Its grant.
    pub grant_id: String,
    /// When it was issued.
    pub created: i64,
}

impl std::fmt::Debug for RefreshRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshRecord")
            .field("grant_id", &self.grant_id)
            .field("created", &self.created)
            .finish_non_exhaustive()
    }
}

/// What using a refresh token found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshUse {
    /// Spent now; the successor given was stored.
    Rotated(GrantRecord),
    /// Spent moments ago (within the grace) and its successor is unspent: the same request
    /// again (parallel processes, a lost response). The successor already stored stands.
    Retried(GrantRecord),
    /// Spent before, outside the grace: a stolen token replayed, or a race lost long ago.
    /// The whole grant was revoked by this call.
    Reused(GrantRecord),
    /// Its grant is revoked or expired.
    Ended,
    /// No such token.
    Unknown,
}

/// A device authorization (RFC 8628) as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    /// HMAC of the device code under the pepper.
    pub digest: [u8; DIGEST_LEN],
    /// The code the person types (normalized, without the dash).
    pub user_code: String,
    /// The client that asked.
    pub client_id: String,
    /// The scopes asked for, space-separated.
    pub scope: String,
    /// The resource, if one was named.
    pub resource: Option<String>,
    /// When it stops being usable.
    pub expires: i64,
    /// The polling interval, grown by every `slow_down`.
    pub interval_ms: i64,
    /// The earliest next poll that is not too fast.
    pub next_poll: i64,
    /// Who approved it.
    pub subject: Option<String>,
    /// When they signed in.
    pub auth_time: Option<i64>,
    /// When it was denied.
    pub denied: Option<i64>,
    /// When its tokens were issued.
    pub used: Option<i64>,
    /// The API token of the person who approved it.
    pub token_id: Option<String>,
}

/// A person's approval of a device authorization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Approval<'a> {
    /// Who approved it.
    pub subject: &'a str,
    /// The API token they signed in with.
    pub token_id: &'a str,
    /// When they signed in.
    pub auth_time: i64,
}

impl std::fmt::Debug for DeviceRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceRecord")
            .field("client_id", &self.client_id)
            .field("expires", &self.expires)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// What a device poll found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DevicePoll {
    /// No such device code (or another client's).
    Unknown,
    /// Past its expiry.
    Expired,
    /// Polled before `next_poll`: the interval grew by `slow_down`.
    SlowDown,
    /// Not approved yet.
    Pending,
    /// Denied by the person.
    Denied,
    /// Approved; marked used by this call, so only one poll gets tokens.
    Approved(Box<DeviceRecord>),
    /// Its tokens were issued already.
    Used,
}

/// Where people's sign-ins and what they grant live.
pub trait GrantStore: Send + Sync + std::fmt::Debug {
    /// Stores a new authorization code.
    fn insert_code(&self, code: &CodeRecord) -> Result<(), Error>;
    /// Redeems the code with `digest` for `client_id` at `now`: once. Another client's code
    /// is `Unknown` to it and stays as it was, so a leaked code cannot be spent (or its
    /// grant revoked) by a client it was not issued to.
    fn take_code(
        &self,
        digest: &[u8; DIGEST_LEN],
        client_id: &str,
        now: i64,
    ) -> Result<CodeTake, Error>;
    /// Records the grant a code's redemption made, so a replay can revoke it.
    fn set_code_grant(&self, digest: &[u8; DIGEST_LEN], grant_id: &str) -> Result<(), Error>;
    /// Stores a grant with its first refresh token; one transaction.
    fn insert_grant(&self, grant: &GrantRecord, first: &RefreshRecord) -> Result<(), Error>;
    /// The grant with `id`.
    fn grant(&self, id: &str) -> Result<Option<GrantRecord>, Error>;
    /// Revokes a grant; false if unknown or revoked already.
    fn revoke_grant(&self, id: &str, at: i64) -> Result<bool, Error>;
    /// Spends the refresh token `digest` at `now` for `successor`; one transaction. Within
    /// `grace_ms` of its first use, with `successor` stored and unspent, it is a retry.
    fn use_refresh(
        &self,
        digest: &[u8; DIGEST_LEN],
        successor: &RefreshRecord,
        now: i64,
        grace_ms: i64,
    ) -> Result<RefreshUse, Error>;
    /// The grant of the refresh token `digest`, if there is one.
    fn refresh_grant(&self, digest: &[u8; DIGEST_LEN]) -> Result<Option<GrantRecord>, Error>;
    /// Ids of the grants revoked and not yet expired at `now`.
    fn revoked_grants(&self, now: i64) -> Result<Vec<String>, Error>;
    /// Stores a device authorization; a user code in use is [`Error::Conflict`].
    fn insert_device(&self, device: &DeviceRecord) -> Result<(), Error>;
    /// The live device authorization with this user code.
    fn device_by_user_code(&self, user_code: &str, now: i64)
    -> Result<Option<DeviceRecord>, Error>;
    /// Approves (`Some`) or denies (`None`) a pending authorization; false if it is not
    /// pending any more.
    fn decide_device(
        &self,
        user_code: &str,
        approval: Option<Approval<'_>>,
        now: i64,
    ) -> Result<bool, Error>;
    /// A poll of `client_id` for `digest` at `now`; `slow_down_ms` is added to the interval
    /// of a poll that came too soon.
    fn poll_device(
        &self,
        digest: &[u8; DIGEST_LEN],
        client_id: &str,
        now: i64,
        slow_down_ms: i64,
    ) -> Result<DevicePoll, Error>;
    /// Forgets expired codes, device authorizations and grants; how many rows went.
    fn sweep_grants(&self, now: i64) -> Result<usize, Error>;
}
