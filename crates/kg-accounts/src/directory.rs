//! The directory: people as a server sees them, read from the store and cached until the
//! store says they changed.
//!
//! Every request with a person's session asks [`Directory::person`]; the answer comes from
//! memory as long as the store's version (`PRAGMA data_version` and this connection's own
//! write count: no row read) has not moved, so a change made anywhere (`keygate users disable` in another process, an admin page, a
//! second instance sharing the database) applies on the next request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub use kg_store::{AuditEvent, PERSON_REF_PREFIX};
use kg_store::{UserRecord, UserStore};

use crate::password::{Checked, Gate, VerifyError};
use crate::{recovery, totp};

/// A person as a request needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// Their id.
    pub id: String,
    /// Their sign-in name.
    pub name: String,
    /// Signing in and every session refused.
    pub disabled: bool,
    /// Their groups, sorted.
    pub groups: Vec<String>,
    /// The revision of their record.
    pub revision: i64,
}

impl Person {
    /// Whether they are in `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups
            .binary_search_by(|g| g.as_str().cmp(group))
            .is_ok()
    }
}

/// What a password check found.
#[derive(Debug)]
pub enum PasswordCheck {
    /// The password is the person's, and they may sign in.
    Good {
        /// Who.
        person: Arc<Person>,
        /// They must answer a TOTP code next.
        second_factor: bool,
        /// Their password is temporary: they must choose one next.
        must_change: bool,
    },
    /// No such person (checked against the dummy hash all the same).
    Unknown,
    /// The wrong password.
    Wrong {
        /// Who was tried.
        name: String,
    },
    /// The right password for a disabled person.
    Disabled {
        /// Who.
        name: String,
    },
}

/// What a second-factor check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactorCheck {
    /// A TOTP code for a step not used before.
    Totp,
    /// A recovery code, now spent; this many are left.
    Recovery(usize),
    /// A TOTP code already used (replayed, or raced by another request).
    Replayed,
    /// Neither a good code nor a recovery code.
    Wrong,
}

/// Why the directory gave no answer: the caller fails closed.
#[derive(Debug, thiserror::Error)]
pub enum Unavailable {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] kg_store::Error),
    /// Too many sign-ins at once.
    #[error(transparent)]
    Busy(#[from] crate::password::Busy),
    /// A stored hash is unusable.
    #[error(transparent)]
    Hash(crate::Error),
}

impl From<VerifyError> for Unavailable {
    fn from(e: VerifyError) -> Unavailable {
        match e {
            VerifyError::Busy(b) => Unavailable::Busy(b),
            VerifyError::Hash(h) => Unavailable::Hash(h),
        }
    }
}

#[derive(Default)]
struct Cache {
    /// The store's version ([`kg_store::SessionStore::version`]) the people were read at.
    version: Option<(i64, u64)>,
    people: HashMap<String, Option<Arc<Person>>>,
    /// Whether anyone is in the store, at `version`.
    anyone: Option<bool>,
}

/// People, for a server.
pub struct Directory {
    store: Arc<dyn UserStore>,
    gate: Gate,
    cache: Mutex<Cache>,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory")
            .field("gate", &self.gate)
            .finish_non_exhaustive()
    }
}

/// Most people cached at once; past it the cache starts again.
const CACHE_MAX: usize = 10_000;

impl Directory {
    /// The people in `store`, their passwords checked through a gate of one place per core.
    pub fn new(store: Arc<dyn UserStore>) -> Directory {
        Directory {
            store,
            gate: Gate::default(),
            cache: Mutex::new(Cache::default()),
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn UserStore> {
        &self.store
    }

    /// Adds a line to the store's audit trail, and forgets the lines before `prune_before`
    /// when given.
    pub fn trail(&self, event: &AuditEvent, prune_before: Option<i64>) -> Result<(), Unavailable> {
        self.store.record_event(event)?;
        if let Some(before) = prune_before {
            self.store.prune_events(before)?;
        }
        Ok(())
    }

    /// Whether the store holds anyone at all (the sign-in page offers passwords then). A
    /// store that cannot say counts as holding people, so sign-in fails closed on them.
    pub fn anyone(&self) -> bool {
        let Ok(version) = self.store.version() else {
            return true;
        };
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.version != Some(version) {
            cache.people.clear();
            cache.anyone = None;
            cache.version = Some(version);
        }
        if let Some(a) = cache.anyone {
            return a;
        }
        let a = self.store.users().map_or(true, |u| !u.is_empty());
        cache.anyone = Some(a);
        a
    }

    /// The person with this id as they stand now (`None`: removed).
    pub fn person(&self, id: &str) -> Result<Option<Arc<Person>>, Unavailable> {
        self.person_at(id, None)
    }

    /// [`Directory::person`] at the store version `at` when the caller has just read it
    /// (a session, in the same request), else at the one read now.
    pub fn person_at(
        &self,
        id: &str,
        at: Option<(i64, u64)>,
    ) -> Result<Option<Arc<Person>>, Unavailable> {
        // Any change to the store moves its version (another process's commit, or a write
        // of this one), so a person read at this version is still who they are.
        let version = match at {
            Some(v) => v,
            None => self.store.version()?,
        };
        {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if cache.version != Some(version) || cache.people.len() >= CACHE_MAX {
                cache.people.clear();
                cache.anyone = None;
                cache.version = Some(version);
            } else if let Some(hit) = cache.people.get(id) {
                return Ok(hit.clone());
            }
        }
        let found = match self.store.user(id)? {
            Some(u) => Some(Arc::new(self.person_of(&u)?)),
            None => None,
        };
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.version == Some(version) {
            cache.people.insert(id.to_owned(), found.clone());
        }
        Ok(found)
    }

    fn person_of(&self, u: &UserRecord) -> Result<Person, Unavailable> {
        Ok(Person {
            id: u.id.clone(),
            name: u.name.clone(),
            disabled: u.disabled,
            groups: self.store.groups_of(&u.id)?,
            revision: u.revision,
        })
    }

    /// Checks a name and password: one Argon2 verification whether or not the name is
    /// anyone's. Blocking (Argon2 takes tens of milliseconds): call from a blocking thread.
    /// A match against weaker stored parameters is rehashed at the defaults.
    pub fn check_password(
        &self,
        name: &str,
        password: &[u8],
        now_ms: i64,
    ) -> Result<PasswordCheck, Unavailable> {
        let user = self.store.user_named(name)?;
        let Checked { ok, rehash } = self
            .gate
            .verify(user.as_ref().map(|u| u.password.as_str()), password)?;
        let Some(user) = user else {
            return Ok(PasswordCheck::Unknown);
        };
        if !ok {
            return Ok(PasswordCheck::Wrong { name: user.name });
        }
        if user.disabled {
            return Ok(PasswordCheck::Disabled { name: user.name });
        }
        let mut user = user;
        if rehash {
            let again = UserRecord {
                password: self.gate.hash(password)?,
                changed: now_ms,
                ..user.clone()
            };
            // Someone else's edit first is fine: the next sign-in rehashes.
            if let Ok(stored) = self.store.update_user(&again, false) {
                user = stored;
            }
        }
        Ok(PasswordCheck::Good {
            second_factor: user.totp.is_some(),
            must_change: user.must_change,
            person: Arc::new(self.person_of(&user)?),
        })
    }

    /// Checks a second factor for the person `id`: a TOTP code (accepted once: the step is
    /// stored with a compare-and-set) or a recovery code (spent).
    pub fn check_second_factor(
        &self,
        id: &str,
        code: &str,
        now_secs: u64,
    ) -> Result<FactorCheck, Unavailable> {
        let Some(user) = self.store.user(id)? else {
            return Ok(FactorCheck::Wrong);
        };
        let Some(secret) = user.totp.as_deref() else {
            return Ok(FactorCheck::Wrong);
        };
        if let Some(d) = recovery::digest(code) {
            return Ok(if self.store.use_recovery_code(id, &d)? {
                FactorCheck::Recovery(self.store.recovery_codes_left(id)?)
            } else {
                FactorCheck::Wrong
            });
        }
        let last = user.totp_step.map(|s| s.max(0) as u64);
        match totp::check(secret, code, now_secs, last) {
            Some(step) if self.store.advance_totp(id, step as i64)? => Ok(FactorCheck::Totp),
            Some(_) => Ok(FactorCheck::Replayed),
            None if totp::check(secret, code, now_secs, None).is_some() => {
                Ok(FactorCheck::Replayed)
            }
            None => Ok(FactorCheck::Wrong),
        }
    }

    /// Stores a new password chosen through a reset link, whatever the record's revision
    /// (the link proved the mailbox; nothing of the record was read to be edited), ending
    /// every session of theirs.
    pub fn reset_password(
        &self,
        id: &str,
        password: &str,
        now_ms: i64,
    ) -> Result<Result<Arc<Person>, crate::Error>, Unavailable> {
        let Some(user) = self.store.user(id)? else {
            return Err(kg_store::Error::NotFound {
                what: "user",
                name: id.to_owned(),
            }
            .into());
        };
        let revision = user.revision;
        self.change_password(id, revision, password, now_ms)
    }

    /// Stores a new password the person chose (a temporary one being replaced): checked
    /// against the rules, hashed through the gate, and every other session of theirs ended.
    pub fn change_password(
        &self,
        id: &str,
        revision: i64,
        password: &str,
        now_ms: i64,
    ) -> Result<Result<Arc<Person>, crate::Error>, Unavailable> {
        let Some(user) = self.store.user(id)? else {
            return Err(kg_store::Error::NotFound {
                what: "user",
                name: id.to_owned(),
            }
            .into());
        };
        if let Err(e) = crate::password::check_new(password, &user.name) {
            return Ok(Err(e));
        }
        let changed = UserRecord {
            password: self.gate.hash(password.as_bytes())?,
            must_change: false,
            changed: now_ms,
            revision,
            ..user
        };
        let stored = self.store.update_user(&changed, true)?;
        Ok(Ok(Arc::new(self.person_of(&stored)?)))
    }
}
