//! Browser sessions for the reverse proxy: what a sign-in with a token leaves behind.
//!
//! A session is a row in the store ([`kg_store::SessionStore`]), named by 32 random bytes.
//! The cookie carries that id and an HMAC-SHA-256 of it under the sign-in key, so:
//!
//! - the cookie holds no token, no token name and nothing else a reader could use;
//! - a forged or altered cookie is refused by one HMAC, compared in constant time, before
//!   the store is looked at (no lookup, and no lookup timing, for unauthenticated ids);
//! - the store holds only the SHA-256 digest of each id, so the database, or a backup of
//!   it, gives nobody a cookie to present;
//! - the key is kept (`private/login.key`, read by the server), so a restart keeps every
//!   session; a new key ends them all.
//!
//! A session ends at the first of: its absolute lifetime, its idle timeout (slid by use),
//! [`Sessions::end`] (sign-out, or the caller found its token revoked), or eviction when
//! the store holds its bound (the least recently used goes first). A use is written to
//! the store when it moves the last use on by at least [`TOUCH_EVERY`] (or a tenth of the
//! idle timeout, when shorter): a write per request would make every proxied request a
//! database commit, and the idle timeout is then exact to within that step.
//!
//! The store failing (a full or read-only disk) fails closed: a session that cannot be
//! read is no session, and a sign-in that cannot be stored is refused with a 503.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::Mac;
use kg_http::log;
use kg_store::{SessionLimits, SessionRecord, SessionStore};
use kg_verifier::Clock;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::key::ProcessKey;

/// Most sessions held at once; a new one beyond this evicts the least recently used.
pub const MAX_SESSIONS: usize = 10_000;
/// Most sessions held for one token (browsers and devices signed in with it).
pub const MAX_PER_TOKEN: usize = 100;
/// Random bytes in a session id.
pub const ID_LEN: usize = 32;
const TAG_LEN: usize = 32;
/// Length of a cookie value: base64url without padding of the id and its tag.
pub const COOKIE_VALUE_LEN: usize = (ID_LEN + TAG_LEN) * 4 / 3 + 1;
/// The coarsest step in which a session's last use is written to the store.
pub const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// Domain separation of the two uses of the key.
const COOKIE_LABEL: &[u8] = b"keygate session cookie v1\0";
const CSRF_LABEL: &[u8] = b"keygate session csrf v1\0";

type Id = [u8; ID_LEN];

/// The browser sessions, kept in the store.
pub struct Sessions {
    key: ProcessKey,
    lifetime: Duration,
    idle_timeout: Duration,
    capacity: usize,
    store: Arc<dyn SessionStore>,
    clock: Clock,
    /// The sessions read, while the store's version says nothing changed since.
    cache: Mutex<Cache>,
}

/// Sessions read from the store, and the store's version they were read at: one cheap
/// version read per request instead of a row read (`cargo xtask bench portal`).
#[derive(Default)]
struct Cache {
    version: Option<(i64, u64)>,
    rows: HashMap<[u8; 32], SessionRecord>,
}

/// A live session, as a request found it.
#[derive(Clone)]
pub struct SessionRef {
    /// The id of the token the session was begun with; the caller re-judges it on every
    /// request ([`kg_verifier::Credential::Session`]). Empty for a person's session.
    pub token_id: String,
    /// The person who signed in with a password ([`kg_verifier::Credential::Person`]).
    pub user_id: Option<String>,
    /// The service a person's session was opened for by a launch ticket; it is good there
    /// only.
    pub service: Option<String>,
    /// The store's version this session was read at (for judging its person at the same).
    pub at: Option<(i64, u64)>,
    id: Zeroizing<Id>,
    csrf: String,
}

/// A session just begun.
pub struct NewSession {
    /// The session cookie's value: the id and its HMAC, base64url.
    pub cookie_value: Zeroizing<String>,
    /// The value a sign-out form must carry (see [`SessionRef::csrf`]).
    pub csrf: String,
    /// The session itself.
    pub session: SessionRef,
}

/// Unix milliseconds.
fn ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn ms_of(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn digest(id: &Id) -> [u8; 32] {
    Sha256::digest(id).into()
}

impl Sessions {
    /// The sessions in `store`, their cookies signed under `key`, judged by `clock`; at
    /// most [`MAX_SESSIONS`].
    pub fn open(
        store: Arc<dyn SessionStore>,
        key: ProcessKey,
        clock: Clock,
        lifetime: Duration,
        idle_timeout: Duration,
    ) -> Sessions {
        Sessions {
            key,
            lifetime,
            idle_timeout,
            capacity: MAX_SESSIONS,
            store,
            clock,
            cache: Mutex::new(Cache::default()),
        }
    }

    /// The same with another bound (at least 1).
    pub fn with_capacity(mut self, capacity: usize) -> Sessions {
        self.capacity = capacity.max(1);
        self
    }

    /// Begins a session for the token with id `token_id`; returns the cookie value (an
    /// opaque signed reference: random id and HMAC, nothing else) and the CSRF value.
    /// A store that cannot take it is logged here, and the error returned.
    pub fn create(&self, token_id: &str) -> Result<NewSession, kg_store::Error> {
        self.create_at(token_id, self.clock.now())
            .inspect_err(|e| say("session_create_failed", e))
    }

    /// [`Sessions::create`] at `now`.
    pub fn create_at(
        &self,
        token_id: &str,
        now: OffsetDateTime,
    ) -> Result<NewSession, kg_store::Error> {
        self.begin(token_id, None, None, now)
    }

    /// Begins a session for the person with id `user_id` (a password sign-in), as
    /// [`Sessions::create`] does for a token.
    /// `service` names the service host it is for (a launch ticket's), `None` the portal's.
    pub fn create_for_person(
        &self,
        user_id: &str,
        service: Option<&str>,
    ) -> Result<NewSession, kg_store::Error> {
        self.begin("", Some(user_id), service, self.clock.now())
            .inspect_err(|e| say("session_create_failed", e))
    }

    fn begin(
        &self,
        token_id: &str,
        user_id: Option<&str>,
        service: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<NewSession, kg_store::Error> {
        let mut id = Zeroizing::new([0u8; ID_LEN]);
        getrandom::fill(&mut id[..]).expect("the operating system's random number generator");
        let mut raw = Zeroizing::new([0u8; ID_LEN + TAG_LEN]);
        raw[..ID_LEN].copy_from_slice(&id[..]);
        raw[ID_LEN..].copy_from_slice(&self.tag(COOKIE_LABEL, &id));
        let cookie_value = Zeroizing::new(URL_SAFE_NO_PAD.encode(&raw[..]));
        let csrf = self.csrf_of(&id);
        let now = ms(now);
        // Sign-ins are rare: the sweep of ended sessions rides on them.
        self.store.sweep_sessions(
            now.saturating_sub(ms_of(self.lifetime)),
            now.saturating_sub(ms_of(self.idle_timeout)),
        )?;
        // One token's holder cannot crowd everyone else out by signing in over and over:
        // past its share, its own least recently used session goes.
        self.store.insert_session(
            &SessionRecord {
                digest: digest(&id),
                token_id: token_id.to_owned(),
                user_id: user_id.map(str::to_owned),
                service: service.map(str::to_owned),
                created: now,
                used: now,
            },
            SessionLimits {
                per_token: MAX_PER_TOKEN,
                total: self.capacity,
            },
        )?;
        Ok(NewSession {
            cookie_value,
            csrf: csrf.clone(),
            session: SessionRef {
                token_id: token_id.to_owned(),
                user_id: user_id.map(str::to_owned),
                service: service.map(str::to_owned),
                at: None,
                id,
                csrf,
            },
        })
    }

    /// The live session a cookie value names. The HMAC is checked (in constant time)
    /// before any lookup; a session past its lifetime or idle timeout is removed and gives
    /// `None`; a hit slides the idle timeout.
    pub fn get(&self, cookie_value: &str) -> Option<SessionRef> {
        self.get_at(cookie_value, self.clock.now())
    }

    /// [`Sessions::get`] at `now`.
    pub fn get_at(&self, cookie_value: &str, now: OffsetDateTime) -> Option<SessionRef> {
        let id = self.open_cookie(cookie_value)?;
        let (record, at) = self.touch(&id, now)?;
        let csrf = self.csrf_of(&id);
        Some(SessionRef {
            token_id: record.token_id,
            user_id: record.user_id,
            service: record.service,
            at,
            id,
            csrf,
        })
    }

    /// Whether `session` is still live, counting as a use (slides the idle timeout): for a
    /// WebSocket tunnel opened with it, checked periodically, since the tunnel makes no
    /// requests of its own.
    pub fn alive(&self, session: &SessionRef) -> bool {
        self.touch(&session.id, self.clock.now()).is_some()
    }

    /// The token id (and person) of the live session `id`, after recording a use at `now`; a session past
    /// its lifetime or idle timeout is removed and gives `None`. A store that cannot be read
    /// gives `None` too.
    fn touch(&self, id: &Id, now: OffsetDateTime) -> Option<(SessionRecord, Option<(i64, u64)>)> {
        let d = digest(id);
        let (record, at) = self.read(&d)?;
        let now = ms(now);
        if now.saturating_sub(record.created) >= ms_of(self.lifetime)
            || now.saturating_sub(record.used) >= ms_of(self.idle_timeout)
        {
            if let Err(e) = self.store.end_session(&d) {
                say("session_end_failed", &e);
            }
            return None;
        }
        let step = ms_of(TOUCH_EVERY.min(self.idle_timeout / 10));
        let touched = now.saturating_sub(record.used) >= step;
        if touched && let Err(e) = self.store.touch_session(&d, now) {
            // The session stays valid; its idle timeout slides at the next write.
            say("session_touch_failed", &e);
        }
        // A write just now moved the version: the session's person is read at the new one.
        let at = if touched { None } else { at };
        Some((record, at))
    }

    /// The session with digest `d`: from memory while the store's version has not moved
    /// since it was read (no write of this process's, no commit of another's), else from
    /// the store. A store that cannot be read gives `None`.
    fn read(&self, d: &[u8; 32]) -> Option<(SessionRecord, Option<(i64, u64)>)> {
        let version = self.store.version().ok();
        {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if version.is_some() && cache.version == version {
                if let Some(hit) = cache.rows.get(d) {
                    return Some((hit.clone(), version));
                }
            } else {
                cache.rows.clear();
                cache.version = version;
            }
        }
        let record = self.store.session(d).unwrap_or_else(|e| {
            say("session_read_failed", &e);
            None
        })?;
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if version.is_some() && cache.version == version {
            if cache.rows.len() >= self.capacity {
                cache.rows.clear();
            }
            cache.rows.insert(*d, record.clone());
        }
        Some((record, version))
    }

    /// Ends a session (sign-out, or its token is no longer valid). Ending one that already
    /// ended does nothing.
    pub fn end(&self, session: &SessionRef) {
        // The write moves the store's version, which empties the cache on the next read.
        if let Err(e) = self.store.end_session(&digest(&session.id)) {
            say("session_end_failed", &e);
        }
    }

    /// How many sessions are held (some may have expired and not been swept yet).
    pub fn len(&self) -> usize {
        self.store.session_count().unwrap_or(0)
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A session's absolute lifetime (the session cookie's `Max-Age`).
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// The id inside a cookie value whose HMAC matches, without any lookup.
    fn open_cookie(&self, cookie_value: &str) -> Option<Zeroizing<Id>> {
        // The length is public: refusing other lengths early reveals nothing.
        if cookie_value.len() != COOKIE_VALUE_LEN {
            return None;
        }
        let mut raw = Zeroizing::new([0u8; ID_LEN + TAG_LEN]);
        let n = URL_SAFE_NO_PAD
            .decode_slice(cookie_value.as_bytes(), &mut raw[..])
            .ok()?;
        if n != ID_LEN + TAG_LEN {
            return None;
        }
        let mut mac = self.mac(COOKIE_LABEL);
        mac.update(&raw[..ID_LEN]);
        // `verify_slice` compares in constant time.
        mac.verify_slice(&raw[ID_LEN..]).ok()?;
        let mut id = Zeroizing::new([0u8; ID_LEN]);
        id.copy_from_slice(&raw[..ID_LEN]);
        Some(id)
    }

    fn csrf_of(&self, id: &Id) -> String {
        URL_SAFE_NO_PAD.encode(self.tag(CSRF_LABEL, id))
    }

    fn tag(&self, label: &[u8], id: &Id) -> [u8; TAG_LEN] {
        self.key.tag(label, id)
    }

    fn mac(&self, label: &[u8]) -> crate::key::HmacSha256 {
        self.key.mac(label)
    }

    /// The process key, for the other signed values of sign-in (under labels of their own).
    pub(crate) fn key(&self) -> &ProcessKey {
        &self.key
    }
}

/// One error line for a store failure (the store names itself in the error).
fn say(event: &str, e: &kg_store::Error) {
    log::error(event, &[("error", (&e.to_string()).into())]);
}

impl SessionRef {
    /// The store's key of this session (the SHA-256 of its id).
    pub fn digest(&self) -> [u8; 32] {
        digest(&self.id)
    }

    /// The value a form that changes this session (sign-out) must carry: an HMAC of the
    /// session id, so it is tied to this session and stored nowhere.
    pub fn csrf(&self) -> &str {
        &self.csrf
    }
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("store", &self.store)
            .field("capacity", &self.capacity)
            .field("lifetime", &self.lifetime)
            .field("idle_timeout", &self.idle_timeout)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for SessionRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRef")
            .field("token_id", &self.token_id)
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for NewSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSession")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sessions in a fresh in-memory store under a fresh key, on the system clock.
    fn in_memory(lifetime: Duration, idle: Duration) -> Sessions {
        Sessions::open(
            Arc::new(kg_store::SqliteStore::memory().unwrap()),
            ProcessKey::new(),
            Clock::new(OffsetDateTime::now_utc),
            lifetime,
            idle,
        )
    }

    #[test]
    fn one_token_cannot_push_other_sessions_out() {
        let s = in_memory(Duration::from_secs(3600), Duration::from_secs(600)).with_capacity(150);
        let other = s.create("BBBBBBBBBBBB").unwrap();
        let first = s.create("AAAAAAAAAAAA").unwrap();
        for _ in 0..(2 * MAX_PER_TOKEN) {
            s.create("AAAAAAAAAAAA").unwrap();
        }
        assert!(
            s.get(&other.cookie_value).is_some(),
            "the other token's session survived"
        );
        assert!(
            s.get(&first.cookie_value).is_none(),
            "the flooder's oldest went"
        );
        assert_eq!(s.len(), MAX_PER_TOKEN + 1);
    }

    const HOUR: Duration = Duration::from_secs(3600);

    fn sessions() -> Sessions {
        in_memory(12 * HOUR, HOUR)
    }

    #[test]
    fn a_cookie_names_its_session_and_nothing_else() {
        let s = sessions();
        let t0 = OffsetDateTime::now_utc();
        let new = s.create_at("0123456789AB", t0).unwrap();
        assert_eq!(new.cookie_value.len(), COOKIE_VALUE_LEN);
        assert!(!new.cookie_value.contains("0123456789AB"));
        let got = s.get_at(&new.cookie_value, t0).unwrap();
        assert_eq!(got.token_id, "0123456789AB");
        assert_eq!(got.csrf(), new.csrf);
        assert_ne!(new.csrf.as_str(), new.cookie_value.as_str());
        // Two sessions of one token are distinct.
        let other = s.create_at("0123456789AB", t0).unwrap();
        assert_ne!(*other.cookie_value, *new.cookie_value);
        assert_ne!(other.csrf, new.csrf);
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn a_tampered_or_foreign_cookie_is_refused() {
        let s = sessions();
        let t0 = OffsetDateTime::now_utc();
        let value = s.create_at("0123456789AB", t0).unwrap().cookie_value;
        let bytes = value.as_bytes();
        // Flip each character in turn: the id part and the tag part.
        for i in [0, 10, 42, 43, 60, COOKIE_VALUE_LEN - 2] {
            let mut v = bytes.to_vec();
            v[i] = if v[i] == b'A' { b'B' } else { b'A' };
            let v = String::from_utf8(v).unwrap();
            assert!(s.get_at(&v, t0).is_none(), "changed at {i}");
        }
        assert!(s.get_at(&value[1..], t0).is_none());
        assert!(s.get_at(&format!("{}A", *value), t0).is_none());
        assert!(s.get_at("", t0).is_none());
        assert!(s.get_at(&"*".repeat(COOKIE_VALUE_LEN), t0).is_none());
        // Another key cannot vouch for this one's ids.
        assert!(sessions().get_at(&value, t0).is_none());
        assert!(s.get_at(&value, t0).is_some());
    }

    #[test]
    fn sessions_end_after_their_lifetime_even_when_used() {
        let s = in_memory(3 * HOUR, HOUR);
        let t0 = OffsetDateTime::now_utc();
        let value = s.create_at("0123456789AB", t0).unwrap().cookie_value;
        for m in (30..180).step_by(30) {
            let at = t0 + Duration::from_secs(m * 60 - 1);
            assert!(s.get_at(&value, at).is_some(), "at {m} minutes");
        }
        assert!(s.get_at(&value, t0 + 3 * HOUR).is_none());
        assert_eq!(s.len(), 0, "removed when found expired");
    }

    #[test]
    fn idle_sessions_end_and_use_slides_the_timeout() {
        let s = in_memory(12 * HOUR, HOUR);
        let t0 = OffsetDateTime::now_utc();
        let value = s.create_at("0123456789AB", t0).unwrap().cookie_value;
        let t1 = t0 + HOUR - Duration::from_secs(1);
        assert!(s.get_at(&value, t1).is_some());
        let t2 = t1 + HOUR - Duration::from_secs(1);
        assert!(s.get_at(&value, t2).is_some(), "slid by the use at t1");
        assert!(s.get_at(&value, t2 + HOUR).is_none());
        assert!(s.get_at(&value, t2).is_none(), "gone once found idle");
    }

    #[test]
    fn ending_a_session_refuses_its_cookie() {
        let s = sessions();
        let t0 = OffsetDateTime::now_utc();
        let a = s.create_at("0123456789AB", t0).unwrap();
        let b = s.create_at("0123456789AB", t0).unwrap();
        s.end(&a.session);
        s.end(&a.session);
        assert!(s.get_at(&a.cookie_value, t0).is_none());
        assert!(s.get_at(&b.cookie_value, t0).is_some());
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn a_full_table_evicts_the_least_recently_used() {
        let s = in_memory(12 * HOUR, HOUR).with_capacity(3);
        let t0 = OffsetDateTime::now_utc();
        // Minutes apart: a use is written to the store in steps of TOUCH_EVERY.
        let at = |m: u64| t0 + Duration::from_secs(m * 60);
        let a = s.create_at("a", at(0)).unwrap().cookie_value;
        let b = s.create_at("b", at(1)).unwrap().cookie_value;
        let c = s.create_at("c", at(2)).unwrap().cookie_value;
        // `a` is the oldest but used most recently; `b` is now the least recently used.
        assert!(s.get_at(&a, at(3)).is_some());
        let d = s.create_at("d", at(4)).unwrap().cookie_value;
        assert_eq!(s.len(), 3);
        assert!(s.get_at(&b, at(5)).is_none());
        for v in [&a, &c, &d] {
            assert!(s.get_at(v, at(5)).is_some());
        }
    }

    #[test]
    fn the_default_bound_holds() {
        let s = sessions();
        let t0 = OffsetDateTime::now_utc();
        for i in 0..MAX_SESSIONS + 50 {
            s.create_at(&i.to_string(), t0).unwrap();
        }
        assert_eq!(s.len(), MAX_SESSIONS);
    }

    #[test]
    fn idle_sessions_are_swept_when_a_new_one_begins() {
        let s = in_memory(12 * HOUR, HOUR);
        let t0 = OffsetDateTime::now_utc();
        s.create_at("a", t0).unwrap();
        s.create_at("b", t0).unwrap();
        s.create_at("c", t0 + 2 * HOUR).unwrap();
        assert_eq!(s.len(), 1);
    }

    /// A restart (a new `Sessions` over the same store, under the kept key) keeps the
    /// session; a new key ends it; the store holds the id's digest, never the id.
    #[test]
    fn sessions_outlive_a_restart_under_the_kept_key_and_the_store_holds_no_id() {
        let store: Arc<dyn SessionStore> = Arc::new(kg_store::SqliteStore::memory().unwrap());
        let bytes = [7u8; 32];
        let open = |key: [u8; 32]| {
            Sessions::open(
                Arc::clone(&store),
                ProcessKey::from_bytes(&key),
                Clock::new(OffsetDateTime::now_utc),
                12 * HOUR,
                HOUR,
            )
        };
        let new = open(bytes).create("0123456789AB").unwrap();
        let again = open(bytes);
        assert_eq!(
            again.get(&new.cookie_value).map(|s| s.token_id),
            Some("0123456789AB".to_owned())
        );
        assert!(
            store.session(&new.session.id).unwrap().is_none(),
            "the id itself is a key"
        );
        let row = store.session(&digest(&new.session.id)).unwrap().unwrap();
        assert_ne!(row.digest, *new.session.id);
        assert!(open([8u8; 32]).get(&new.cookie_value).is_none());
    }

    #[test]
    fn debug_output_holds_no_secret() {
        let s = sessions();
        let new = s.create("0123456789AB").unwrap();
        for text in [
            format!("{s:?}"),
            format!("{new:?}"),
            format!("{:?}", new.session),
        ] {
            assert!(!text.contains(new.cookie_value.as_str()), "{text}");
            assert!(!text.contains(&new.csrf), "{text}");
        }
        assert!(format!("{:?}", new.session).contains("0123456789AB"));
    }
}
