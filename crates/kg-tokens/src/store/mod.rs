//! The token store: entries, their lifecycle, the JSON form and verification.
//!
//! The error type is in `error.rs`; the hand-written JSON reader and writer, a performance
//! feature (a reload of 100,000 tokens in under 100 ms), in `json.rs`.

mod error;
mod json;

use std::borrow::{Borrow, Cow};
use std::collections::HashSet;
use std::fmt;
use std::hash::{Hash, Hasher};

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime, UtcOffset};

use crate::pepper::{HEX, Pepper, hex_value};

/// Hex digit values by byte (either case); 0x80 marks a byte that is not a hex digit.
static HEX_DECODE: [u8; 256] = {
    let mut table = [0x80u8; 256];
    let mut b = 0;
    while b < 256 {
        if let Some(v) = hex_value(b as u8) {
            table[b] = v;
        }
        b += 1;
    }
    table
};
use crate::token::{self, ID_LEN, ParsedToken, Prefix, PrefixError, Reason, TokenSecret};

/// The store format version this crate reads and writes.
pub const STORE_VERSION: u32 = 1;

/// Longest token name or scope, in characters.
pub const MAX_NAME_LEN: usize = 64;

/// Where a token is in its life, as recorded in the store.
///
/// Expiry is not a status: an `Active` entry whose `expires` has passed is expired, and
/// [`Entry::check`] says so. In JSON: `{"state": "active"}`,
/// `{"state": "retiring", "until": "<RFC 3339>"}`, `{"state": "revoked", "at": "<RFC 3339>"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(into = "StatusRepr")]
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

/// [`Status`] as written to the file.
#[derive(Clone, Copy, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
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

/// Read by hand rather than as a serde internally tagged enum, which buffers every status
/// object before looking at its tag: with 100,000 entries that buffering alone costs tens of
/// milliseconds of every reload. Unknown fields, and fields that do not belong to the state
/// (`until` on an active token), are refused as before.
impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Status, D::Error> {
        d.deserialize_map(StatusVisitor)
    }
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum StatusField {
    State,
    Until,
    At,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum StateWord {
    Active,
    Retiring,
    Revoked,
}

#[derive(Deserialize)]
struct Rfc3339Time(#[serde(with = "time::serde::rfc3339")] OffsetDateTime);

struct StatusVisitor;

impl<'de> Visitor<'de> for StatusVisitor {
    type Value = Status;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(r#"a status such as {"state": "active"}"#)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Status, A::Error> {
        let (mut state, mut until, mut at) = (None, None, None);
        while let Some(field) = map.next_key::<StatusField>()? {
            match field {
                StatusField::State if state.is_none() => state = Some(map.next_value()?),
                StatusField::Until if until.is_none() => {
                    until = Some(map.next_value::<Rfc3339Time>()?.0)
                }
                StatusField::At if at.is_none() => at = Some(map.next_value::<Rfc3339Time>()?.0),
                StatusField::State => return Err(de::Error::duplicate_field("state")),
                StatusField::Until => return Err(de::Error::duplicate_field("until")),
                StatusField::At => return Err(de::Error::duplicate_field("at")),
            }
        }
        match (state, until, at) {
            (None, _, _) => Err(de::Error::missing_field("state")),
            (Some(StateWord::Active), None, None) => Ok(Status::Active),
            (Some(StateWord::Active), Some(_), _) => Err(de::Error::unknown_field("until", &[])),
            (Some(StateWord::Active), None, Some(_)) => Err(de::Error::unknown_field("at", &[])),
            (Some(StateWord::Retiring), Some(until), None) => Ok(Status::Retiring { until }),
            (Some(StateWord::Retiring), _, Some(_)) => {
                Err(de::Error::unknown_field("at", &["until"]))
            }
            (Some(StateWord::Retiring), None, None) => Err(de::Error::missing_field("until")),
            (Some(StateWord::Revoked), None, Some(at)) => Ok(Status::Revoked { at }),
            (Some(StateWord::Revoked), Some(_), _) => {
                Err(de::Error::unknown_field("until", &["at"]))
            }
            (Some(StateWord::Revoked), None, None) => Err(de::Error::missing_field("at")),
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
        // Table-driven and without early exits: a reload decodes 100,000 of these, and the
        // branchy version was a fifth of the reload time.
        let mut out = [0u8; 32];
        let mut bad = 0u8;
        for (slot, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
            let (hi, lo) = (
                HEX_DECODE[usize::from(pair[0])],
                HEX_DECODE[usize::from(pair[1])],
            );
            bad |= hi | lo;
            *slot = hi << 4 | (lo & 0x0f);
        }
        (bad & 0x80 == 0).then_some(Digest(out))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({}…)", &self.to_hex()[..8])
    }
}

/// One issued token, as the store keeps it: never the token itself, only its digest.
///
/// Laid out so that `name` and `scopes`, which [`Store::verify`] hands out in its
/// [`TokenInfo`], share the entry's first cache line: an accepted token costs one line of the
/// entry besides its index slot, however large the store.
#[derive(Debug, Clone, PartialEq, Eq)]
#[repr(C, align(64))]
pub struct Entry {
    /// Who or what the token is for; several entries share a name across rotations.
    pub name: String,
    /// What the token may do; checked by the caller, not by [`Store::verify`].
    pub scopes: Vec<String>,
    /// The token's id (12 base62 characters, also visible inside the token).
    pub id: String,
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
    /// Everything [`Store::verify`] needs, by id: one hash lookup and one cache line per
    /// token whatever the size of the store (see [`Slot`]).
    index: HashSet<Slot>,
}

/// What [`Store::verify`] needs to decide on a token, packed into one 64-byte cache line:
/// the id (the hash key), the digest, and when the token stops being accepted. Deciding
/// touches the index's control bytes and one slot; only an accepted token's name and scopes
/// are then taken from its entry (one more line). Kept in step with `entries` by every
/// change ([`Store::refresh`]).
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Slot {
    id: [u8; ID_LEN],
    /// Position of the entry in `entries`.
    pos: u32,
    digest: [u8; 32],
    /// When the token stops being accepted (expiry, or the end of its grace period,
    /// whichever comes first) as Unix seconds and nanoseconds; [`NEVER`] if it does not.
    /// Two fields, not a tuple, so that the padding of a tuple does not cost a second line.
    ends_secs: i64,
    ends_nanos: u32,
    revoked: bool,
}

const NEVER: (i64, u32) = (i64::MAX, 0);

// One cache line, no more: the point of the type.
const _: () = assert!(std::mem::size_of::<Slot>() == 64);

impl Slot {
    fn of(e: &Entry, pos: usize) -> Slot {
        let ends = match e.status {
            Status::Retiring { until } => Some(e.expires.map_or(until, |x| x.min(until))),
            _ => e.expires,
        };
        let (ends_secs, ends_nanos) = ends.map_or(NEVER, unix);
        Slot {
            id: id_key(&e.id).expect("entry ids are checked on the way in"),
            pos: u32::try_from(pos).expect("fewer than 4 billion entries"),
            digest: e.digest.0,
            ends_secs,
            ends_nanos,
            revoked: matches!(e.status, Status::Revoked { .. }),
        }
    }

    fn ends(&self) -> (i64, u32) {
        (self.ends_secs, self.ends_nanos)
    }
}

impl Hash for Slot {
    // Only the id, exactly as `[u8; ID_LEN]` hashes, so slots are found by id (`Borrow`).
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}

impl PartialEq for Slot {
    fn eq(&self, other: &Slot) -> bool {
        self.id == other.id
    }
}

impl Eq for Slot {}

impl Borrow<[u8; ID_LEN]> for Slot {
    fn borrow(&self) -> &[u8; ID_LEN] {
        &self.id
    }
}

/// An id as the index key: 12 bytes, or `None` if it is not 12 bytes long.
fn id_key(id: &str) -> Option<[u8; ID_LEN]> {
    id.as_bytes().try_into().ok()
}

fn unix(t: OffsetDateTime) -> (i64, u32) {
    (t.unix_timestamp(), t.nanosecond())
}

fn from_unix((secs, nanos): (i64, u32)) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(secs)
        .ok()?
        .replace_nanosecond(nanos)
        .ok()
}

impl Store {
    /// An empty store whose tokens start with `prefix`.
    pub fn new(prefix: Prefix) -> Store {
        Store {
            version: STORE_VERSION,
            prefix,
            entries: Vec::new(),
            index: HashSet::new(),
        }
    }

    /// Reads a store from its JSON text and checks every entry.
    ///
    /// A file that is not JSON, or not in this shape, gives [`StoreError::Json`] with a line
    /// and column; an entry that breaks a rule gives [`StoreError::InvalidEntry`] naming it.
    pub fn from_json(text: &str) -> Result<Store, StoreError> {
        if text.len() >= PARSE_IN_HALVES_FROM
            && let Some(store) = parse_in_halves(text)
        {
            return Ok(store);
        }
        // One streaming parse: each entry is checked and indexed as it is read, with no
        // intermediate list (a store of 100,000 tokens is some 30 MB, and a server reloads
        // it whenever it changes). A rule broken by the content, rather than the JSON, is
        // left in `problem` and stops the parse.
        let mut problem = None;
        let mut de = serde_json::Deserializer::from_str(text);
        let parsed = StoreSeed {
            problem: &mut problem,
            // Pretty entries take some 290 bytes; a little over-reservation is cheap.
            capacity: text.len() / 256,
        }
        .deserialize(&mut de)
        .and_then(|store| de.end().map(|()| store));
        match (problem, parsed) {
            (Some(problem), _) => Err(problem),
            (None, Ok(store)) => Ok(store),
            (None, Err(e)) => {
                // A newer file is reported as newer rather than as having unknown fields.
                #[derive(Deserialize)]
                struct VersionOnly {
                    version: u32,
                }
                Err(match serde_json::from_str::<VersionOnly>(text) {
                    Ok(VersionOnly { version }) if version != STORE_VERSION => {
                        StoreError::UnsupportedVersion { found: version }
                    }
                    _ => StoreError::json(e),
                })
            }
        }
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
        let slot = self.index.get(&id_key(id)?)?;
        Some(&self.entries[slot.pos as usize])
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
        // A scope is stored and listed in the clear: a token pasted there would be too.
        if let Some(i) = scopes
            .iter()
            .position(|s| !matches!(token::parse(s, &self.prefix), Err(Reason::Malformed)))
        {
            return Err(StoreError::ScopeLooksLikeToken { number: i + 1 });
        }
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
        self.refresh(old);
        Ok(self.issue(pepper, name.to_owned(), scopes, expires, now))
    }

    /// Revokes the entry with this id. Returns `false` if it was already revoked.
    pub fn revoke_id(&mut self, id: &str, now: OffsetDateTime) -> Result<bool, StoreError> {
        if !token::is_valid_id(id) {
            return Err(StoreError::InvalidId);
        }
        let now = utc_in_range(now)?;
        let Some(i) = id_key(id)
            .and_then(|k| self.index.get(&k))
            .map(|s| s.pos as usize)
        else {
            return Err(StoreError::UnknownId { id: id.to_owned() });
        };
        let changed = revoke(&mut self.entries[i], now);
        self.refresh(i);
        Ok(changed)
    }

    /// Revokes every entry named `name` that is not revoked yet (active and retiring ones).
    /// Returns how many changed; [`StoreError::UnknownName`] if no entry has this name.
    pub fn revoke_name(&mut self, name: &str, now: OffsetDateTime) -> Result<usize, StoreError> {
        self.check_name(name)?;
        let now = utc_in_range(now)?;
        let mut seen = false;
        let mut changed = 0;
        for i in 0..self.entries.len() {
            if self.entries[i].name == name {
                seen = true;
                if revoke(&mut self.entries[i], now) {
                    changed += 1;
                    self.refresh(i);
                }
            }
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
        // The lookup comes first and the expected digest is copied out at once, so that the
        // processor fetches the slot (from memory, in a large store) while it computes the
        // HMAC instead of after: the wait is hidden behind work that is done anyway. The HMAC
        // is always computed and nothing returns early, so an unknown id costs what a wrong
        // secret costs.
        let slot = id_key(parsed.id()).and_then(|k| self.index.get(&k));
        let expected: [u8; 32] = *slot.map_or(&UNMATCHABLE, |s| &s.digest);
        let digest = pepper.digest(parsed.expose_token());
        let matches = bool::from(digest[..].ct_eq(&expected[..]));
        let slot = match slot {
            Some(s) if matches => s,
            _ => return Err(Reason::Unknown),
        };
        // The same decision as `Entry::check`, from the slot alone.
        if slot.revoked {
            return Err(Reason::Revoked);
        }
        let ends = slot.ends();
        if ends != NEVER && unix(now) >= ends {
            return Err(Reason::Expired);
        }
        let expires = if ends == NEVER { None } else { from_unix(ends) };
        // Only addresses are taken here: the entry's memory is read by whoever uses them.
        let entry = &self.entries[slot.pos as usize];
        Ok(TokenInfo {
            // From the slot, which is in cache already; ids are checked base62 on the way in.
            id: std::str::from_utf8(&slot.id).unwrap_or(&entry.id),
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
            if !id_key(&id).is_some_and(|k| self.index.contains(&k)) {
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
        self.index.insert(Slot::of(&entry, self.entries.len()));
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
        self.index = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| Slot::of(e, i))
            .collect();
    }

    /// Brings the slot of entry `pos` up to date after its status changed.
    fn refresh(&mut self, pos: usize) {
        self.index.replace(Slot::of(&self.entries[pos], pos));
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

pub use error::StoreError;

/// The naming rule, as errors state it.
pub const NAME_RULE: &str = "must be 1 to 64 characters: letters, digits, '.', '_' or '-'";
/// The scope rule, as errors state it.
pub const SCOPE_RULE: &str =
    "must be 1 to 64 printable ASCII characters, without spaces, '\"' or '\\'";

/// A digest no HMAC output will equal in practice, compared against when the id is unknown.
const UNMATCHABLE: [u8; 32] = [0; 32];

/// Whether `name` follows the naming rule of tokens (and of OAuth clients): 1 to 64
/// letters, digits, `.`, `_` or `-`.
pub fn valid_name(name: &str) -> bool {
    name_rule_ok(name)
}

/// Whether `scope` is an RFC 6749 scope token of at most 64 characters, as token scopes are.
pub fn valid_scope(scope: &str) -> bool {
    check_scope(scope).is_ok()
}

fn name_rule_ok(name: &str) -> bool {
    // A table and no early exit, like `base62::all_base62`: names are checked for every entry
    // of every reload, and per-character branches mispredict on varied names.
    static NAME_CHAR: [bool; 256] = {
        let mut t = [false; 256];
        let mut b = 0;
        while b < 256 {
            let c = b as u8;
            t[b] = c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-');
            b += 1;
        }
        t
    };
    (1..=MAX_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .fold(true, |ok, b| ok & NAME_CHAR[usize::from(b)])
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

use json::{EntryOut, PARSE_IN_HALVES_FROM, StoreOut, StoreSeed, parse_in_halves};

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    /// `tests/it/store.rs` checks that large stores read back exactly; this checks that they
    /// really take the two-thread path, and that it declines what it does not recognise.
    #[test]
    fn large_canonical_stores_are_parsed_in_halves() {
        let pepper = Pepper::from_bytes([7; 32]);
        let now = datetime!(2026-11-01 12:00 UTC);
        let mut store = Store::default();
        for i in 0..15_000 {
            store
                .create_additional(&pepper, &format!("c{i}"), vec![], None, now)
                .unwrap();
        }
        let text = store.to_json();
        assert!(text.len() >= PARSE_IN_HALVES_FROM);
        let halves = parse_in_halves(&text).expect("the canonical layout is recognised");
        assert_eq!(halves.list(), store.list());
        assert_eq!(halves.index.len(), 15_000);
        // Another layout (compact JSON), or trailing data: the one-pass parse handles it.
        let compact =
            serde_json::to_string(&serde_json::from_str::<serde_json::Value>(&text).unwrap())
                .unwrap();
        assert!(parse_in_halves(&compact).is_none());
        assert_eq!(Store::from_json(&compact).unwrap().list(), store.list());
        assert!(parse_in_halves(&format!("{text}x")).is_none());
    }
}
