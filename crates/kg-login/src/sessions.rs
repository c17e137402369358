//! Browser sessions for the reverse proxy: what a sign-in with a token leaves behind.
//!
//! A session is an entry in a bounded in-memory table, named by 32 random bytes. The cookie
//! carries that id and an HMAC-SHA-256 of it under a key drawn at start-up, so:
//!
//! - the cookie holds no token, no token name and nothing else a reader could use;
//! - a forged or altered cookie is refused by one HMAC, compared in constant time, before
//!   the table is looked at (no lookup timing for unauthenticated ids);
//! - a restart draws a new key, which ends every session (they live in memory only).
//!
//! A session ends at the first of: its absolute lifetime, its idle timeout (slid by every
//! use), [`Sessions::end`] (sign-out, or the caller found its token revoked), or eviction
//! when the table is full (the least recently used goes first). The table stores the token
//! id and times; the CSRF value of a session is derived from its id under the key, so no
//! other secret is kept.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::Mac;
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

/// Domain separation of the two uses of the key.
const COOKIE_LABEL: &[u8] = b"keygate session cookie v1\0";
const CSRF_LABEL: &[u8] = b"keygate session csrf v1\0";

type Id = [u8; ID_LEN];

/// The live sessions of this process.
pub struct Sessions {
    key: ProcessKey,
    lifetime: Duration,
    idle_timeout: Duration,
    capacity: usize,
    table: Mutex<Table>,
}

/// A live session, as a request found it.
#[derive(Clone)]
pub struct SessionRef {
    /// The id of the token the session was begun with; the caller re-judges it on every
    /// request ([`kg_verifier::Credential::Session`]).
    pub token_id: String,
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

#[derive(Default)]
struct Table {
    by_id: HashMap<Id, Entry>,
    /// Sessions by last use, least recent first: use number to id.
    by_use: BTreeMap<u64, Id>,
    uses: u64,
}

struct Entry {
    token_id: String,
    created: Instant,
    used: Instant,
    /// The key of this session in `by_use`.
    use_no: u64,
}

impl Sessions {
    /// An empty table of at most [`MAX_SESSIONS`], under a fresh random key.
    pub fn new(lifetime: Duration, idle_timeout: Duration) -> Sessions {
        Sessions::with_capacity(lifetime, idle_timeout, MAX_SESSIONS)
    }

    /// [`Sessions::new`] with another bound (at least 1).
    pub fn with_capacity(lifetime: Duration, idle_timeout: Duration, capacity: usize) -> Sessions {
        Sessions {
            key: ProcessKey::new(),
            lifetime,
            idle_timeout,
            capacity: capacity.max(1),
            table: Mutex::new(Table::default()),
        }
    }

    /// Begins a session for the token with id `token_id`; returns the cookie value (an
    /// opaque signed reference: random id and HMAC, nothing else) and the CSRF value.
    pub fn create(&self, token_id: &str) -> NewSession {
        self.create_at(token_id, Instant::now())
    }

    /// [`Sessions::create`] at `now`.
    pub fn create_at(&self, token_id: &str, now: Instant) -> NewSession {
        let mut id = Zeroizing::new([0u8; ID_LEN]);
        getrandom::fill(&mut id[..]).expect("the operating system's random number generator");
        let mut raw = Zeroizing::new([0u8; ID_LEN + TAG_LEN]);
        raw[..ID_LEN].copy_from_slice(&id[..]);
        raw[ID_LEN..].copy_from_slice(&self.tag(COOKIE_LABEL, &id));
        let cookie_value = Zeroizing::new(URL_SAFE_NO_PAD.encode(&raw[..]));
        let csrf = self.csrf_of(&id);
        {
            let mut t = self.lock();
            self.sweep(&mut t, now);
            // One token's holder cannot crowd everyone else out of the table by signing in
            // over and over: past its share, its own least recently used session goes.
            let mine: Vec<(u64, [u8; ID_LEN])> = t
                .by_id
                .iter()
                .filter(|(_, e)| e.token_id == token_id)
                .map(|(k, e)| (e.use_no, *k))
                .collect();
            if mine.len() >= MAX_PER_TOKEN
                && let Some(&(use_no, oldest)) = mine.iter().min_by_key(|(u, _)| *u)
            {
                t.by_use.remove(&use_no);
                t.by_id.remove(&oldest);
            }
            while t.by_id.len() >= self.capacity {
                let Some((_, oldest)) = t.by_use.pop_first() else {
                    break;
                };
                t.by_id.remove(&oldest);
            }
            t.uses += 1;
            let use_no = t.uses;
            t.by_use.insert(use_no, *id);
            t.by_id.insert(
                *id,
                Entry {
                    token_id: token_id.to_owned(),
                    created: now,
                    used: now,
                    use_no,
                },
            );
        }
        NewSession {
            cookie_value,
            csrf: csrf.clone(),
            session: SessionRef {
                token_id: token_id.to_owned(),
                id,
                csrf,
            },
        }
    }

    /// The live session a cookie value names. The HMAC is checked (in constant time)
    /// before any lookup; a session past its lifetime or idle timeout is removed and gives
    /// `None`; a hit slides the idle timeout.
    pub fn get(&self, cookie_value: &str) -> Option<SessionRef> {
        self.get_at(cookie_value, Instant::now())
    }

    /// [`Sessions::get`] at `now`.
    pub fn get_at(&self, cookie_value: &str, now: Instant) -> Option<SessionRef> {
        let id = self.open(cookie_value)?;
        let token_id = self.touch(&id, now)?;
        let csrf = self.csrf_of(&id);
        Some(SessionRef { token_id, id, csrf })
    }

    /// Whether `session` is still live, counting as a use (slides the idle timeout): for a
    /// WebSocket tunnel opened with it, checked periodically, since the tunnel makes no
    /// requests of its own.
    pub fn alive(&self, session: &SessionRef) -> bool {
        self.touch(&session.id, Instant::now()).is_some()
    }

    /// The token id of the live session `id`, after recording a use at `now`; a session past
    /// its lifetime or idle timeout is removed and gives `None`.
    fn touch(&self, id: &Id, now: Instant) -> Option<String> {
        let mut t = self.lock();
        let t = &mut *t;
        let e = t.by_id.get_mut(id)?;
        if self.expired(e, now) {
            let use_no = e.use_no;
            t.by_use.remove(&use_no);
            t.by_id.remove(id);
            return None;
        }
        e.used = e.used.max(now);
        t.by_use.remove(&e.use_no);
        t.uses += 1;
        e.use_no = t.uses;
        t.by_use.insert(e.use_no, *id);
        Some(e.token_id.clone())
    }

    /// Ends a session (sign-out, or its token is no longer valid). Ending one that already
    /// ended does nothing.
    pub fn end(&self, session: &SessionRef) {
        let mut t = self.lock();
        if let Some(e) = t.by_id.remove(&*session.id) {
            t.by_use.remove(&e.use_no);
        }
    }

    /// How many sessions are held (some may have expired and not been swept yet).
    pub fn len(&self) -> usize {
        self.lock().by_id.len()
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
    fn open(&self, cookie_value: &str) -> Option<Zeroizing<Id>> {
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

    fn expired(&self, e: &Entry, now: Instant) -> bool {
        now.saturating_duration_since(e.created) >= self.lifetime
            || now.saturating_duration_since(e.used) >= self.idle_timeout
    }

    /// Drops idle sessions from the least recently used end: they are a prefix of the
    /// use order, so this costs nothing when there are none.
    fn sweep(&self, t: &mut Table, now: Instant) {
        while let Some((&use_no, id)) = t.by_use.first_key_value() {
            let id = *id;
            match t.by_id.get(&id) {
                Some(e) if !self.expired(e, now) => break,
                _ => {
                    t.by_use.remove(&use_no);
                    t.by_id.remove(&id);
                }
            }
        }
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

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl SessionRef {
    /// The value a form that changes this session (sign-out) must carry: an HMAC of the
    /// session id, so it is tied to this session and stored nowhere.
    pub fn csrf(&self) -> &str {
        &self.csrf
    }
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("len", &self.len())
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

    #[test]
    fn one_token_cannot_push_other_sessions_out() {
        let s = Sessions::with_capacity(Duration::from_secs(3600), Duration::from_secs(600), 150);
        let other = s.create("BBBBBBBBBBBB");
        let first = s.create("AAAAAAAAAAAA");
        for _ in 0..(2 * MAX_PER_TOKEN) {
            s.create("AAAAAAAAAAAA");
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
        Sessions::new(12 * HOUR, HOUR)
    }

    #[test]
    fn a_cookie_names_its_session_and_nothing_else() {
        let s = sessions();
        let t0 = Instant::now();
        let new = s.create_at("0123456789AB", t0);
        assert_eq!(new.cookie_value.len(), COOKIE_VALUE_LEN);
        assert!(!new.cookie_value.contains("0123456789AB"));
        let got = s.get_at(&new.cookie_value, t0).unwrap();
        assert_eq!(got.token_id, "0123456789AB");
        assert_eq!(got.csrf(), new.csrf);
        assert_ne!(new.csrf.as_str(), new.cookie_value.as_str());
        // Two sessions of one token are distinct.
        let other = s.create_at("0123456789AB", t0);
        assert_ne!(*other.cookie_value, *new.cookie_value);
        assert_ne!(other.csrf, new.csrf);
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn a_tampered_or_foreign_cookie_is_refused() {
        let s = sessions();
        let t0 = Instant::now();
        let value = s.create_at("0123456789AB", t0).cookie_value;
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
        // Another process (another key) cannot vouch for this one's ids.
        assert!(sessions().get_at(&value, t0).is_none());
        assert!(s.get_at(&value, t0).is_some());
    }

    #[test]
    fn sessions_end_after_their_lifetime_even_when_used() {
        let s = Sessions::new(3 * HOUR, HOUR);
        let t0 = Instant::now();
        let value = s.create_at("0123456789AB", t0).cookie_value;
        for m in (30..180).step_by(30) {
            let at = t0 + Duration::from_secs(m * 60 - 1);
            assert!(s.get_at(&value, at).is_some(), "at {m} minutes");
        }
        assert!(s.get_at(&value, t0 + 3 * HOUR).is_none());
        assert_eq!(s.len(), 0, "removed when found expired");
    }

    #[test]
    fn idle_sessions_end_and_use_slides_the_timeout() {
        let s = Sessions::new(12 * HOUR, HOUR);
        let t0 = Instant::now();
        let value = s.create_at("0123456789AB", t0).cookie_value;
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
        let t0 = Instant::now();
        let a = s.create_at("0123456789AB", t0);
        let b = s.create_at("0123456789AB", t0);
        s.end(&a.session);
        s.end(&a.session);
        assert!(s.get_at(&a.cookie_value, t0).is_none());
        assert!(s.get_at(&b.cookie_value, t0).is_some());
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn a_full_table_evicts_the_least_recently_used() {
        let s = Sessions::with_capacity(12 * HOUR, HOUR, 3);
        let t0 = Instant::now();
        let at = |secs| t0 + Duration::from_secs(secs);
        let a = s.create_at("a", at(0)).cookie_value;
        let b = s.create_at("b", at(1)).cookie_value;
        let c = s.create_at("c", at(2)).cookie_value;
        // `a` is the oldest but used most recently; `b` is now the least recently used.
        assert!(s.get_at(&a, at(3)).is_some());
        let d = s.create_at("d", at(4)).cookie_value;
        assert_eq!(s.len(), 3);
        assert!(s.get_at(&b, at(5)).is_none());
        for v in [&a, &c, &d] {
            assert!(s.get_at(v, at(5)).is_some());
        }
    }

    #[test]
    fn the_default_bound_holds() {
        let s = sessions();
        let t0 = Instant::now();
        for i in 0..MAX_SESSIONS + 50 {
            s.create_at(&i.to_string(), t0);
        }
        assert_eq!(s.len(), MAX_SESSIONS);
        let t = s.lock();
        assert_eq!(t.by_use.len(), MAX_SESSIONS);
    }

    #[test]
    fn idle_sessions_are_swept_when_a_new_one_begins() {
        let s = Sessions::new(12 * HOUR, HOUR);
        let t0 = Instant::now();
        s.create_at("a", t0);
        s.create_at("b", t0);
        s.create_at("c", t0 + 2 * HOUR);
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn debug_output_holds_no_secret() {
        let s = sessions();
        let new = s.create("0123456789AB");
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
