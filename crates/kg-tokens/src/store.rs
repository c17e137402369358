//! The token store: entries, their lifecycle, the JSON form and verification.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime, UtcOffset};

use crate::pepper::{HEX, Pepper, hex_value};
use crate::token::{self, ParsedToken, Prefix, PrefixError, Reason, TokenSecret};

/// The store format version this crate reads and writes.
pub const STORE_VERSION: u32 = 1;

/// Longest token name or scope, in characters.
pub const MAX_NAME_LEN: usize = 64;

/// Where a token is in its life, as recorded in the store.
///
/// Expiry is not a status: an `Active` entry whose `expires` has passed is expired, and
/// [`Entry::check`] says so. In JSON: `{"state": "active"}`,
/// `{"state": "retiring", "until": "<RFC 3339>"}`, `{"state": "revoked", "at": "<RFC 3339>"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "StatusRepr", into = "StatusRepr")]
pub enum Status {
    /// In use.
    Active,
    /// Replaced by [`Store::rotate`]; still accepted until `until`, then expired.
    Retiring {
        /// End of the grace period.
        until: OffsetDateTime,
    },
    /// Revoked at `at`; never accepted again.
    Revoked {
        /// When it was revoked.
        at: OffsetDateTime,
    },
}

/// [`Status`] in the file. `Active {}` is a struct variant here because serde ignores
/// unknown fields beside the tag of a unit variant, even with `deny_unknown_fields`.
#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case", deny_unknown_fields)]
enum StatusRepr {
    Active {},
    Retiring {
        #[serde(with = "time::serde::rfc3339")]
        until: OffsetDateTime,
    },
    Revoked {
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
}

impl From<StatusRepr> for Status {
    fn from(s: StatusRepr) -> Status {
        match s {
            StatusRepr::Active {} => Status::Active,
            StatusRepr::Retiring { until } => Status::Retiring { until },
            StatusRepr::Revoked { at } => Status::Revoked { at },
        }
    }
}

impl From<Status> for StatusRepr {
    fn from(s: Status) -> StatusRepr {
        match s {
            Status::Active => StatusRepr::Active {},
            Status::Retiring { until } => StatusRepr::Retiring { until },
            Status::Revoked { at } => StatusRepr::Revoked { at },
        }
    }
}

/// HMAC-SHA-256 of a whole token under the [`Pepper`]; stored as 64 lowercase hex digits.
///
/// `Debug` shows only the first 8 hex digits, which is enough to tell entries apart.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Digest([u8; 32]);

impl Digest {
    /// The raw digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// 64 lowercase hex digits, as stored.
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        s
    }

    fn from_hex(text: &str) -> Option<Digest> {
        let hex = text.as_bytes();
        if hex.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, pair) in hex.chunks_exact(2).enumerate() {
            out[i] = hex_value(pair[0])? << 4 | hex_value(pair[1])?;
        }
        Some(Digest(out))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({}…)", &self.to_hex()[..8])
    }
}

/// One issued token, as the store keeps it: never the token itself, only its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The token's id (12 base62 characters, also visible inside the token).
    pub id: String,
    /// Who or what the token is for; several entries share a name across rotations.
    pub name: String,
    /// What the token may do; checked by the caller, not by [`Store::verify`].
    pub scopes: Vec<String>,
    /// When it was issued (UTC).
    pub created: OffsetDateTime,
    /// When it stops being accepted, if ever (UTC).
    pub expires: Option<OffsetDateTime>,
    /// Active, retiring or revoked.
    pub status: Status,
    /// HMAC-SHA-256 of the whole token under the pepper.
    pub digest: Digest,
}

impl Entry {
    /// Whether the token would be accepted at `now`, apart from proving possession:
    /// `Err(Revoked)`, `Err(Expired)` (past `expires`, or retiring past `until`), or `Ok`.
    pub fn check(&self, now: OffsetDateTime) -> Result<(), Reason> {
        match self.status {
            Status::Revoked { .. } => Err(Reason::Revoked),
            Status::Retiring { until } if now >= until => Err(Reason::Expired),
            _ if self.expires.is_some_and(|e| now >= e) => Err(Reason::Expired),
            _ => Ok(()),
        }
    }

    /// When the entry stopped being usable, if it has by `now`: the earliest of revocation,
    /// expiry and the end of a retiring grace period.
    pub fn ended(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        let status_end = match self.status {
            Status::Active => None,
            Status::Retiring { until } => Some(until),
            Status::Revoked { at } => Some(at),
        };
        let end = match (status_end, self.expires) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        end.filter(|&t| t <= now)
    }
}

/// What [`Store::verify`] returns for an accepted token. Borrows from the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenInfo<'a> {
    /// The token's id.
    pub id: &'a str,
    /// The entry's name.
    pub name: &'a str,
    /// The entry's scopes.
    pub scopes: &'a [String],
    /// When the token stops being accepted, if ever: its expiry, or for a retiring token the
    /// end of its grace period if that comes first.
    pub expires: Option<OffsetDateTime>,
}

impl TokenInfo<'_> {
    /// Whether `scope` is one of the token's scopes (exact match).
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// The set of issued tokens: what the store file holds, plus an id index built on load.
pub struct Store {
    version: u32,
    prefix: Prefix,
    entries: Vec<Entry>,
    /// Entry position by id, so [`Store::verify`] does one hash lookup whatever the size.
    by_id: HashMap<String, usize>,
}

impl Store {
    /// An empty store whose tokens start with `prefix`.
    pub fn new(prefix: Prefix) -> Store {
        Store {
            version: STORE_VERSION,
            prefix,
            entries: Vec::new(),
            by_id: HashMap::new(),
        }
    }

    /// Reads a store from its JSON text and checks every entry.
    ///
    /// A file that is not JSON, or not in this shape, gives [`StoreError::Json`] with a line
    /// and column; an entry that breaks a rule gives [`StoreError::InvalidEntry`] naming it.
    pub fn from_json(text: &str) -> Result<Store, StoreError> {
        // Read the version alone first, so a newer file is reported as newer rather than as
        // having unknown fields.
        #[derive(Deserialize)]
        struct VersionOnly {
            version: u32,
        }
        let VersionOnly { version } = serde_json::from_str(text).map_err(StoreError::json)?;
        if version != STORE_VERSION {
            return Err(StoreError::UnsupportedVersion { found: version });
        }
        let repr: StoreIn = serde_json::from_str(text).map_err(StoreError::json)?;
        let prefix = Prefix::new(&repr.prefix).map_err(StoreError::BadPrefix)?;
        let mut store = Store::new(prefix);
        for (i, e) in repr.entries.into_iter().enumerate() {
            let number = i + 1;
            let invalid = |problem: String| StoreError::InvalidEntry {
                number,
                id: token::is_valid_id(&e.id).then(|| e.id.clone()),
                problem,
            };
            if !token::is_valid_id(&e.id) {
                return Err(invalid("its id is not 12 base62 characters".to_owned()));
            }
            if let Some(&other) = store.by_id.get(&e.id) {
                return Err(invalid(format!(
                    "its id is also used by entry #{}",
                    other + 1
                )));
            }
            if !name_rule_ok(&e.name) {
                return Err(invalid(format!("its name {}", NAME_RULE)));
            }
            if let Some(pos) = e.scopes.iter().position(|s| check_scope(s).is_err()) {
                return Err(invalid(format!("its scope #{} {}", pos + 1, SCOPE_RULE)));
            }
            let Some(digest) = Digest::from_hex(&e.digest) else {
                return Err(invalid(format!(
                    "its digest must be 64 hex digits (HMAC-SHA-256), found {} characters",
                    e.digest.chars().count()
                )));
            };
            store.by_id.insert(e.id.clone(), store.entries.len());
            store.entries.push(Entry {
                id: e.id,
                name: e.name,
                scopes: e.scopes,
                created: e.created,
                expires: e.expires,
                status: e.status,
                digest,
            });
        }
        Ok(store)
    }

    /// The store as pretty JSON: entries in store order, fields in a fixed order, timestamps
    /// in RFC 3339 UTC, and a final newline.
    pub fn to_json(&self) -> String {
        let repr = StoreOut {
            version: self.version,
            prefix: self.prefix.as_str(),
            entries: self
                .entries
                .iter()
                .map(|e| EntryOut {
                    id: &e.id,
                    name: &e.name,
                    scopes: &e.scopes,
                    created: e.created,
                    expires: e.expires,
                    status: e.status,
                    digest: e.digest.to_hex(),
                })
                .collect(),
        };
        // Every timestamp went through `utc_in_range` (or was read from RFC 3339 text), so
        // formatting cannot fail.
        let mut out =
            serde_json::to_string_pretty(&repr).expect("store timestamps are RFC 3339 formattable");
        out.push('\n');
        out
    }

    /// The format version (always [`STORE_VERSION`] for a store this crate could read).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The prefix of this store's tokens.
    pub fn prefix(&self) -> &Prefix {
        &self.prefix
    }

    /// Every entry, in store order (oldest first, as issued).
    pub fn list(&self) -> &[Entry] {
        &self.entries
    }

    /// The entry with this id.
    pub fn get(&self, id: &str) -> Option<&Entry> {
        self.by_id.get(id).map(|&i| &self.entries[i])
    }

    /// The newest entry named `name` whose status is [`Status::Active`] (it may be expired:
    /// see [`Entry::check`]).
    pub fn find_active(&self, name: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.name == name && e.status == Status::Active)
    }

    /// Issues a token named `name`. Refuses a name that already has an active entry
    /// ([`StoreError::DuplicateName`]): rotate it, revoke it, or use
    /// [`Store::create_additional`].
    ///
    /// Scopes keep their order; repeats are dropped. `expires`, when given, must be after
    /// `now`. Returns a copy of the new entry and the token, which exists nowhere else.
    pub fn create(
        &mut self,
        pepper: &Pepper,
        name: &str,
        scopes: Vec<String>,
        expires: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Result<(Entry, TokenSecret), StoreError> {
        self.check_name(name)?;
        if self.find_active(name).is_some() {
            return Err(StoreError::DuplicateName {
                name: name.to_owned(),
            });
        }
        self.create_additional(pepper, name, scopes, expires, now)
    }

    /// Like [`Store::create`], but allows another active token under a name that has one
    /// (two keys per user, as AWS does, for a hand-over without a grace period).
    pub fn create_additional(
        &mut self,
        pepper: &Pepper,
        name: &str,
        scopes: Vec<String>,
        expires: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Result<(Entry, TokenSecret), StoreError> {
        self.check_name(name)?;
        let scopes = check_scopes(scopes)?;
        let now = utc_in_range(now)?;
        let expires = match expires {
            Some(e) => {
                let e = utc_in_range(e)?;
                if e <= now {
                    return Err(StoreError::ExpiryNotInFuture { expires: e, now });
                }
                Some(e)
            }
            None => None,
        };
        Ok(self.issue(pepper, name.to_owned(), scopes, expires, now))
    }

    /// Replaces the active token named `name` with a new one (new id and secret, same name
    /// and scopes, and the same lifetime counted from `now` if the old one had an expiry).
    ///
    /// The old entry becomes [`Status::Retiring`] until `now + grace`, so clients can switch
    /// over, or [`Status::Revoked`] at once when `grace` is zero.
    pub fn rotate(
        &mut self,
        pepper: &Pepper,
        name: &str,
        grace: Duration,
        now: OffsetDateTime,
    ) -> Result<(Entry, TokenSecret), StoreError> {
        self.check_name(name)?;
        if grace.is_negative() {
            return Err(StoreError::NegativeGrace);
        }
        let now = utc_in_range(now)?;
        let active: Vec<usize> = (0..self.entries.len())
            .filter(|&i| self.entries[i].name == name && self.entries[i].status == Status::Active)
            .collect();
        let old = match active[..] {
            [i] => i,
            [] => {
                return Err(StoreError::NoActiveToken {
                    name: name.to_owned(),
                });
            }
            _ => {
                return Err(StoreError::AmbiguousName {
                    name: name.to_owned(),
                    count: active.len(),
                });
            }
        };
        let old_entry = &self.entries[old];
        let expires = match old_entry.expires {
            Some(e) => {
                let e = add_in_range(now, e - old_entry.created)?;
                if e <= now {
                    return Err(StoreError::ExpiryNotInFuture { expires: e, now });
                }
                Some(e)
            }
            None => None,
        };
        let new_status = if grace.is_zero() {
            Status::Revoked { at: now }
        } else {
            Status::Retiring {
                until: add_in_range(now, grace)?,
            }
        };
        let scopes = old_entry.scopes.clone();
        // Everything that can fail has been checked: change the store.
        self.entries[old].status = new_status;
        Ok(self.issue(pepper, name.to_owned(), scopes, expires, now))
    }

    /// Revokes the entry with this id. Returns `false` if it was already revoked.
    pub fn revoke_id(&mut self, id: &str, now: OffsetDateTime) -> Result<bool, StoreError> {
        if !token::is_valid_id(id) {
            return Err(StoreError::InvalidId);
        }
        let now = utc_in_range(now)?;
        let Some(&i) = self.by_id.get(id) else {
            return Err(StoreError::UnknownId { id: id.to_owned() });
        };
        Ok(revoke(&mut self.entries[i], now))
    }

    /// Revokes every entry named `name` that is not revoked yet (active and retiring ones).
    /// Returns how many changed; [`StoreError::UnknownName`] if no entry has this name.
    pub fn revoke_name(&mut self, name: &str, now: OffsetDateTime) -> Result<usize, StoreError> {
        self.check_name(name)?;
        let now = utc_in_range(now)?;
        let mut seen = false;
        let mut changed = 0;
        for e in self.entries.iter_mut().filter(|e| e.name == name) {
            seen = true;
            changed += usize::from(revoke(e, now));
        }
        if seen {
            Ok(changed)
        } else {
            Err(StoreError::UnknownName {
                name: name.to_owned(),
            })
        }
    }

    /// Removes entries that were revoked or expired more than `retention` before `now`
    /// (a retiring entry counts as expired at the end of its grace period). Returns how many
    /// were removed. A negative retention counts as zero.
    pub fn prune(&mut self, retention: Duration, now: OffsetDateTime) -> usize {
        let retention = retention.max(Duration::ZERO);
        let before = self.entries.len();
        self.entries
            .retain(|e| e.ended(now).is_none_or(|end| now - end <= retention));
        let removed = before - self.entries.len();
        if removed > 0 {
            self.reindex();
        }
        removed
    }

    /// Decides whether `token` is accepted at `now`.
    ///
    /// In order: shape ([`Reason::Malformed`]), checksum ([`Reason::BadChecksum`]), then one
    /// hash lookup by id and a constant-time comparison of the HMAC digest (an unknown id and
    /// a wrong secret both give [`Reason::Unknown`], after the same work), then
    /// [`Reason::Revoked`], then [`Reason::Expired`]. Only a caller holding the real token
    /// learns that it is revoked or expired.
    ///
    /// The cost does not depend on the size of the store, and nothing is allocated.
    pub fn verify<'s>(
        &'s self,
        pepper: &Pepper,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<TokenInfo<'s>, Reason> {
        let parsed: ParsedToken<'_> = token::parse(token, &self.prefix)?;
        // The HMAC is computed before the lookup so an unknown id costs what a wrong secret
        // costs.
        let digest = pepper.digest(parsed.expose_token());
        let entry = self.get(parsed.id());
        let expected = entry.map_or(&UNMATCHABLE, |e| e.digest.as_bytes());
        let matches = bool::from(digest[..].ct_eq(&expected[..]));
        let entry = match entry {
            Some(e) if matches => e,
            _ => return Err(Reason::Unknown),
        };
        entry.check(now)?;
        let expires = match entry.status {
            Status::Retiring { until } => Some(entry.expires.map_or(until, |e| e.min(until))),
            _ => entry.expires,
        };
        Ok(TokenInfo {
            id: &entry.id,
            name: &entry.name,
            scopes: &entry.scopes,
            expires,
        })
    }

    /// Adds a new entry with a fresh id; the inputs are already checked.
    fn issue(
        &mut self,
        pepper: &Pepper,
        name: String,
        scopes: Vec<String>,
        expires: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> (Entry, TokenSecret) {
        // 71 bits of id make a collision all but impossible; checking costs nothing.
        let (id, secret) = loop {
            let (id, secret) = token::generate(&self.prefix);
            if !self.by_id.contains_key(&id) {
                break (id, secret);
            }
        };
        let entry = Entry {
            id,
            name,
            scopes,
            created: now,
            expires,
            status: Status::Active,
            digest: Digest(pepper.digest(secret.expose_secret())),
        };
        self.by_id.insert(entry.id.clone(), self.entries.len());
        self.entries.push(entry.clone());
        (entry, secret)
    }

    /// The naming rule, plus: a name shaped like one of this store's tokens is refused (and
    /// so never echoed in an error or written to the store).
    fn check_name(&self, name: &str) -> Result<(), StoreError> {
        if !name_rule_ok(name) {
            return Err(StoreError::InvalidName);
        }
        if matches!(token::parse(name, &self.prefix), Err(Reason::Malformed)) {
            Ok(())
        } else {
            Err(StoreError::NameLooksLikeToken)
        }
    }

    fn reindex(&mut self) {
        self.by_id = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.id.clone(), i))
            .collect();
    }
}

impl Default for Store {
    /// An empty store with the default prefix (`kg`).
    fn default() -> Self {
        Store::new(Prefix::default())
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("version", &self.version)
            .field("prefix", &self.prefix)
            .field("entries", &self.entries)
            .finish_non_exhaustive()
    }
}

/// Why a store could not be read or an operation was refused.
///
/// Messages name the entry or name concerned and never contain a token; [`StoreError::hint`]
/// says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The text is not JSON, or not shaped like a store (serde_json's message includes the
    /// line and column).
    #[error("the token store is not valid: {source}")]
    Json {
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem.
        column: usize,
        /// The parser's error.
        source: serde_json::Error,
    },
    /// The store was written by a newer (or unknown) format version.
    #[error(
        "the token store has format version {found}, this keygate reads version {STORE_VERSION}"
    )]
    UnsupportedVersion {
        /// The version found in the file.
        found: u32,
    },
    /// The store's prefix is not a valid prefix.
    #[error("the token store's prefix is invalid: {0}")]
    BadPrefix(#[source] PrefixError),
    /// An entry in the store breaks a rule (duplicate id, bad digest, bad name...).
    #[error("entry #{number}{} in the token store is invalid: {problem}", id.as_ref().map(|id| format!(" (id {id})")).unwrap_or_default())]
    InvalidEntry {
        /// 1-based position of the entry in the file.
        number: usize,
        /// The entry's id, when it is a well-formed id.
        id: Option<String>,
        /// What is wrong with it.
        problem: String,
    },
    /// A token name that breaks the naming rule (the name is not repeated: it may be anything).
    #[error("invalid token name: a name {NAME_RULE}")]
    InvalidName,
    /// A name that looks like one of this store's tokens: a token pasted in the wrong place.
    #[error("refusing a token name that looks like a token")]
    NameLooksLikeToken,
    /// A scope that breaks the scope rule.
    #[error("invalid scope #{number}: a scope {SCOPE_RULE}")]
    InvalidScope {
        /// 1-based position among the scopes given.
        number: usize,
    },
    /// [`Store::create`] for a name that already has an active token.
    #[error("token name '{name}' already has an active token")]
    DuplicateName {
        /// The name.
        name: String,
    },
    /// [`Store::rotate`] for a name with no active token.
    #[error("token name '{name}' has no active token to rotate")]
    NoActiveToken {
        /// The name.
        name: String,
    },
    /// [`Store::rotate`] for a name with several active tokens.
    #[error("token name '{name}' has {count} active tokens; rotate would not know which")]
    AmbiguousName {
        /// The name.
        name: String,
        /// How many active entries it has.
        count: usize,
    },
    /// Something that should be a token id is not 12 base62 characters (not repeated: it may
    /// be a whole token).
    #[error("that is not a token id: an id is 12 letters and digits")]
    InvalidId,
    /// No entry has this id.
    #[error("no token has id {id}")]
    UnknownId {
        /// The id.
        id: String,
    },
    /// No entry has this name.
    #[error("no token is named '{name}'")]
    UnknownName {
        /// The name.
        name: String,
    },
    /// An expiry at or before the time of creation.
    #[error("the expiry {expires} is not after the current time {now}")]
    ExpiryNotInFuture {
        /// The requested expiry (UTC).
        expires: OffsetDateTime,
        /// The current time (UTC).
        now: OffsetDateTime,
    },
    /// A negative grace period for [`Store::rotate`].
    #[error("the grace period must not be negative")]
    NegativeGrace,
    /// A time outside the years 0000-9999 that RFC 3339 can write.
    #[error("time is out of range: the store can only hold years 0000 to 9999")]
    TimeOutOfRange,
}

impl StoreError {
    /// A one-line recommendation for the user, when there is one.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            StoreError::Json { line, .. } => format!(
                "fix the file by hand near line {line}, or restore it from a backup; \
                 it holds no secrets, only digests"
            ),
            StoreError::UnsupportedVersion { .. } => {
                "use the keygate release that wrote this store, or a newer one".to_owned()
            }
            StoreError::BadPrefix(_) => {
                "set \"prefix\" in the store file to 2-10 lowercase letters or digits".to_owned()
            }
            StoreError::InvalidEntry { number, .. } => format!(
                "fix or remove entry #{number} by hand; removing it makes its token unknown"
            ),
            StoreError::InvalidName => {
                "choose a name like 'ci-deploy' or 'alice.laptop'".to_owned()
            }
            StoreError::NameLooksLikeToken => {
                "if that was a real token, revoke it: it may have been logged or saved".to_owned()
            }
            StoreError::InvalidScope { .. } => "scopes look like 'read' or 'logs:write'".to_owned(),
            StoreError::DuplicateName { name } => {
                format!("rotate it with `tokenctl rotate {name}`, or revoke it first")
            }
            StoreError::NoActiveToken { name } => {
                format!("create one with `tokenctl create {name}`")
            }
            StoreError::AmbiguousName { .. } => {
                "revoke the ones you no longer need by id (see `tokenctl list`)".to_owned()
            }
            StoreError::InvalidId => "ids are listed by `tokenctl list`; if you pasted a whole \
                                      token, treat it as exposed and revoke it"
                .to_owned(),
            StoreError::UnknownId { .. } | StoreError::UnknownName { .. } => {
                "see `tokenctl list` for the tokens in this store".to_owned()
            }
            StoreError::ExpiryNotInFuture { .. } => {
                "give an expiry in the future, or none".to_owned()
            }
            StoreError::NegativeGrace => "use a grace period of 0 to revoke at once".to_owned(),
            StoreError::TimeOutOfRange => "check the system clock and the expiry".to_owned(),
        })
    }

    fn json(source: serde_json::Error) -> StoreError {
        StoreError::Json {
            line: source.line(),
            column: source.column(),
            source,
        }
    }
}

const NAME_RULE: &str = "must be 1 to 64 characters: letters, digits, '.', '_' or '-'";
const SCOPE_RULE: &str = "must be 1 to 64 printable ASCII characters, without spaces, '\"' or '\\'";

/// A digest no HMAC output will equal in practice, compared against when the id is unknown.
const UNMATCHABLE: [u8; 32] = [0; 32];

fn name_rule_ok(name: &str) -> bool {
    (1..=MAX_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Scope tokens as RFC 6749 section 3.3 defines them (`%x21 / %x23-5B / %x5D-7E`), so scopes
/// can be carried in OAuth-style space-separated lists.
fn check_scope(scope: &str) -> Result<(), ()> {
    let ok = (1..=MAX_NAME_LEN).contains(&scope.len())
        && scope
            .bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x5b | 0x5d..=0x7e));
    if ok { Ok(()) } else { Err(()) }
}

fn check_scopes(scopes: Vec<String>) -> Result<Vec<String>, StoreError> {
    let mut out: Vec<String> = Vec::with_capacity(scopes.len());
    for (i, s) in scopes.into_iter().enumerate() {
        check_scope(&s).map_err(|()| StoreError::InvalidScope { number: i + 1 })?;
        if !out.contains(&s) {
            out.push(s);
        }
    }
    Ok(out)
}

/// Converts to UTC and checks that RFC 3339 can write the year.
fn utc_in_range(t: OffsetDateTime) -> Result<OffsetDateTime, StoreError> {
    let t = t.to_offset(UtcOffset::UTC);
    if (0..=9999).contains(&t.year()) {
        Ok(t)
    } else {
        Err(StoreError::TimeOutOfRange)
    }
}

fn add_in_range(t: OffsetDateTime, d: Duration) -> Result<OffsetDateTime, StoreError> {
    t.checked_add(d)
        .ok_or(StoreError::TimeOutOfRange)
        .and_then(utc_in_range)
}

fn revoke(e: &mut Entry, now: OffsetDateTime) -> bool {
    if matches!(e.status, Status::Revoked { .. }) {
        return false;
    }
    e.status = Status::Revoked { at: now };
    true
}

/// The file form, read side. Unknown fields are refused so a typo in a hand edit is caught.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreIn {
    #[allow(dead_code)] // checked before this parse
    version: u32,
    prefix: String,
    entries: Vec<EntryIn>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryIn {
    id: String,
    name: String,
    scopes: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    created: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    expires: Option<OffsetDateTime>,
    status: Status,
    digest: String,
}

/// The file form, write side; field order here is the order in the file.
#[derive(Serialize)]
struct StoreOut<'a> {
    version: u32,
    prefix: &'a str,
    entries: Vec<EntryOut<'a>>,
}

#[derive(Serialize)]
struct EntryOut<'a> {
    id: &'a str,
    name: &'a str,
    scopes: &'a [String],
    #[serde(with = "time::serde::rfc3339")]
    created: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    expires: Option<OffsetDateTime>,
    status: Status,
    digest: String,
}
