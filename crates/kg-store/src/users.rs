//! People and groups: the records of `keygate users` and `keygate groups`, and what
//! sign-in reads.

use crate::{DIGEST_LEN, Error, SessionRecord, SessionStore};

/// What stands in for a token id where a person signed in with a password instead (the
/// `token_id` of an OAuth grant or code, the `tid` of an access token): `u:` and the
/// person's id. Token ids never hold a `:`.
pub const PERSON_REF_PREFIX: &str = "u:";

/// The group whose members administer keygate (its pages and its people). Made by
/// `keygate users bootstrap-admin`; an ordinary group otherwise.
pub const ADMINS: &str = "admins";

/// A person as stored. `Debug` shows neither the password hash nor the TOTP secret.
#[derive(Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// A random id: sessions, memberships and audit lines name it, so a name removed and
    /// given again is a new person who inherits nothing.
    pub id: String,
    /// The sign-in name (`kg_accounts::names`); unique.
    pub name: String,
    /// Where a password-reset link goes.
    pub email: Option<String>,
    /// The Argon2id PHC string.
    pub password: String,
    /// The password is temporary: it must be changed at the next sign-in.
    pub must_change: bool,
    /// Signing in is refused, and the person's sessions end.
    pub disabled: bool,
    /// The TOTP secret, once a second factor is enrolled.
    pub totp: Option<Vec<u8>>,
    /// The last TOTP step accepted ([`UserStore::advance_totp`]).
    pub totp_step: Option<i64>,
    /// Counts changes: an edit names the revision it read and is refused if another came
    /// first ([`Error::Stale`]).
    pub revision: i64,
    /// When the person was added, Unix milliseconds.
    pub created: i64,
    /// When the record last changed.
    pub changed: i64,
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("email", &self.email)
            .field("must_change", &self.must_change)
            .field("disabled", &self.disabled)
            .field("totp", &self.totp.is_some())
            .field("totp_step", &self.totp_step)
            .field("revision", &self.revision)
            .finish_non_exhaustive()
    }
}

/// A group as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRecord {
    /// Its name (`kg_accounts::names`); unique.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// When it was made.
    pub created: i64,
    /// Its members' user ids, sorted.
    pub members: Vec<String>,
}

/// One line of the people's audit trail ([`UserStore::record_event`]). Never a secret: the
/// names of what happened, to whom, from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// When, Unix milliseconds.
    pub at: i64,
    /// What: the audit log's reason (`signed_in`, `bad_password`, `group_member_added`...).
    pub event: String,
    /// The person it was about, by name, when they exist.
    pub user: Option<String>,
    /// The client address, for what a request did.
    pub client: Option<String>,
    /// More: the service, the group, who made an admin change.
    pub detail: Option<String>,
}

/// Where people and groups live, with the sessions they sign in to.
pub trait UserStore: SessionStore {
    /// Adds a person ([`Error::Conflict`] when the name is taken; nothing written).
    fn insert_user(&self, user: &UserRecord) -> Result<(), Error>;

    /// The person with this id.
    fn user(&self, id: &str) -> Result<Option<UserRecord>, Error>;

    /// The person with this name.
    fn user_named(&self, name: &str) -> Result<Option<UserRecord>, Error>;

    /// Everyone, by name.
    fn users(&self) -> Result<Vec<UserRecord>, Error>;

    /// Replaces the record of `user.id` if it is still at `user.revision` (the one read),
    /// storing it as the next revision; [`Error::Stale`] otherwise and nothing written.
    /// When `end_sessions`, the person's sessions end in the same transaction (a new
    /// password, a reset, disabling), and so do the OAuth grants their sign-ins made
    /// (revoked at `user.changed`).
    fn update_user(&self, user: &UserRecord, end_sessions: bool) -> Result<UserRecord, Error>;

    /// Removes the person with their memberships, recovery codes and sessions.
    fn remove_user(&self, id: &str) -> Result<bool, Error>;

    /// Records `step` as the person's last accepted TOTP step if it is later than the one
    /// stored: `false` when it is not (the code was used already, perhaps by a request
    /// racing this one).
    fn advance_totp(&self, id: &str, step: i64) -> Result<bool, Error>;

    /// Replaces the person's recovery codes with these digests.
    fn set_recovery_codes(&self, id: &str, digests: &[[u8; DIGEST_LEN]]) -> Result<(), Error>;

    /// Spends the recovery code with this digest: whether it was there (each works once).
    fn use_recovery_code(&self, id: &str, digest: &[u8; DIGEST_LEN]) -> Result<bool, Error>;

    /// How many recovery codes the person has left.
    fn recovery_codes_left(&self, id: &str) -> Result<usize, Error>;

    /// Makes a group ([`Error::Conflict`] when the name is taken).
    fn insert_group(&self, name: &str, description: &str, created: i64) -> Result<(), Error>;

    /// Every group, by name, with its members.
    fn groups(&self) -> Result<Vec<GroupRecord>, Error>;

    /// Removes a group and its memberships.
    fn remove_group(&self, name: &str) -> Result<bool, Error>;

    /// Adds a person to a group: `false` when they were in it already;
    /// [`Error::NotFound`] when there is no such group or person.
    fn add_member(&self, group: &str, user_id: &str) -> Result<bool, Error>;

    /// Takes a person out of a group: whether they were in it.
    fn remove_member(&self, group: &str, user_id: &str) -> Result<bool, Error>;

    /// The names of the groups a person is in, sorted.
    fn groups_of(&self, user_id: &str) -> Result<Vec<String>, Error>;

    /// A person's sessions, most recently used first.
    fn sessions_of_user(&self, user_id: &str) -> Result<Vec<SessionRecord>, Error>;

    /// Ends every session of a person: how many.
    fn end_user_sessions(&self, user_id: &str) -> Result<usize, Error>;

    /// Every session, most recently used first (the admin's list).
    fn all_sessions(&self) -> Result<Vec<SessionRecord>, Error>;

    /// Spends the launch ticket with this digest, valid until `expires`: `false` when it
    /// was spent already. Spent tickets past their expiry are swept as `now` passes them.
    fn spend_ticket(
        &self,
        digest: &[u8; DIGEST_LEN],
        expires: i64,
        now: i64,
    ) -> Result<bool, Error>;

    /// Stores a password-reset link's digest for the person, good until `expires`
    /// (sweeping the expired ones at `now`).
    fn insert_reset(
        &self,
        digest: &[u8; DIGEST_LEN],
        user_id: &str,
        expires: i64,
        now: i64,
    ) -> Result<(), Error>;

    /// The person a reset link is for, while it is good.
    fn reset_user(&self, digest: &[u8; DIGEST_LEN], now: i64) -> Result<Option<String>, Error>;

    /// Uses a reset link: the person it was for, once (every link of theirs ends with it).
    fn take_reset(&self, digest: &[u8; DIGEST_LEN], now: i64) -> Result<Option<String>, Error>;

    /// Adds a line to the audit trail.
    fn record_event(&self, e: &AuditEvent) -> Result<(), Error>;

    /// The audit trail from `since` on, newest first, at most `limit` lines; only the
    /// person `user`'s when given.
    fn events(
        &self,
        since: i64,
        user: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, Error>;

    /// Removes the lines older than `before`: how many.
    fn prune_events(&self, before: i64) -> Result<usize, Error>;
}
