//! What `keygate users` and `keygate groups` do (and the admin pages after them), over
//! the store: each operation checks its input, writes once, and says what it did, so
//! running it again is safe.

use std::sync::Arc;

use kg_store::{ADMINS, GroupRecord, UserRecord, UserStore};
use zeroize::Zeroizing;

use crate::{Error as AccountError, names, password, recovery, totp};

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Bad input: a name, a password.
    #[error(transparent)]
    Input(#[from] AccountError),
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] kg_store::Error),
}

impl AdminError {
    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            AdminError::Input(AccountError::WeakPassword(_)) => {
                Some("a passphrase of a few words is easy to type and long enough".into())
            }
            AdminError::Input(_) => None,
            AdminError::Store(e) => e.hint(),
        }
    }

    /// Whether the caller asked for something impossible (exit 2) rather than a failure.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            AdminError::Input(_)
                | AdminError::Store(
                    kg_store::Error::Conflict { .. }
                        | kg_store::Error::NotFound { .. }
                        | kg_store::Error::Stale { .. }
                )
        )
    }
}

fn not_found(what: &'static str, name: &str) -> AdminError {
    AdminError::Store(kg_store::Error::NotFound {
        what,
        name: name.to_owned(),
    })
}

/// A new random user id.
fn new_id() -> Result<String, AccountError> {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let bytes = crate::random::<16>()?;
    Ok(bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
        .collect())
}

/// People administration over a store.
#[derive(Debug, Clone)]
pub struct Admin {
    store: Arc<dyn UserStore>,
}

/// A person just added: the record and the temporary password to hand over once.
#[derive(Debug)]
pub struct Added {
    /// The stored record.
    pub user: UserRecord,
    /// The temporary password (or `None` when the caller gave one).
    pub temporary: Option<Zeroizing<String>>,
}

/// What `bootstrap-admin` did.
#[derive(Debug)]
pub enum Bootstrap {
    /// Added this person to a new `admins` group.
    Created(UserRecord),
    /// `admins` has members already: nothing was done.
    Exists(Vec<String>),
}

/// A second factor just enrolled: what to show the person once.
#[derive(Debug)]
pub struct Enrolled {
    /// The `otpauth://` URI (a QR code's contents).
    pub uri: Zeroizing<String>,
    /// The secret in base32, for typing by hand.
    pub secret: Zeroizing<String>,
    /// Ten one-time recovery codes.
    pub recovery_codes: Vec<Zeroizing<String>>,
}

impl Admin {
    /// Administration of the people in `store`.
    pub fn new(store: Arc<dyn UserStore>) -> Admin {
        Admin { store }
    }

    /// The change's line in the store's audit trail (`keygate audit`).
    fn trail(
        &self,
        now_ms: i64,
        event: &str,
        user: Option<&str>,
        detail: Option<String>,
    ) -> Result<(), AdminError> {
        self.store.record_event(&kg_store::AuditEvent {
            at: now_ms,
            event: event.to_owned(),
            user: user.map(str::to_owned),
            client: None,
            detail,
        })?;
        Ok(())
    }

    /// The person named `name`.
    pub fn user(&self, name: &str) -> Result<UserRecord, AdminError> {
        self.store
            .user_named(name)?
            .ok_or_else(|| not_found("user", name))
    }

    /// Everyone, with their groups.
    pub fn users(&self) -> Result<Vec<(UserRecord, Vec<String>)>, AdminError> {
        let mut out = Vec::new();
        for u in self.store.users()? {
            let groups = self.store.groups_of(&u.id)?;
            out.push((u, groups));
        }
        Ok(out)
    }

    /// Adds a person. Without `password`, a temporary one is made, to be changed at the
    /// first sign-in.
    pub fn add(
        &self,
        name: &str,
        email: Option<&str>,
        password: Option<&str>,
        now_ms: i64,
    ) -> Result<Added, AdminError> {
        names::check_user(name)?;
        if let Some(e) = email {
            check_email(e)?;
        }
        let (temporary, hash) = chosen_or_temporary(password, name)?;
        let user = UserRecord {
            id: new_id()?,
            name: name.to_owned(),
            email: email.map(str::to_owned),
            password: hash,
            must_change: temporary.is_some(),
            disabled: false,
            totp: None,
            totp_step: None,
            revision: 1,
            created: now_ms,
            changed: now_ms,
        };
        self.store.insert_user(&user)?;
        self.trail(now_ms, "user_added", Some(name), None)?;
        Ok(Added { user, temporary })
    }

    /// Makes the first administrator, once: when the `admins` group has members, nothing
    /// is done and they are named.
    pub fn bootstrap_admin(
        &self,
        name: &str,
        password: &str,
        now_ms: i64,
    ) -> Result<Bootstrap, AdminError> {
        if let Some(g) = self.group(ADMINS)?
            && !g.members.is_empty()
        {
            let mut names = Vec::new();
            for id in &g.members {
                if let Some(u) = self.store.user(id)? {
                    names.push(u.name);
                }
            }
            return Ok(Bootstrap::Exists(names));
        }
        let added = self.add(name, None, Some(password), now_ms)?;
        match self
            .store
            .insert_group(ADMINS, "administer keygate", now_ms)
        {
            Ok(()) | Err(kg_store::Error::Conflict { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        self.store.add_member(ADMINS, &added.user.id)?;
        self.trail(
            now_ms,
            "group_member_added",
            Some(name),
            Some(format!("group={ADMINS}")),
        )?;
        Ok(Bootstrap::Created(added.user))
    }

    /// Sets a person's password (`None`: a new temporary one, to be changed at the next
    /// sign-in), ending their sessions.
    pub fn set_password(
        &self,
        name: &str,
        password: Option<&str>,
        now_ms: i64,
    ) -> Result<Option<Zeroizing<String>>, AdminError> {
        let user = self.user(name)?;
        let (temporary, hash) = chosen_or_temporary(password, name)?;
        let changed = UserRecord {
            password: hash,
            must_change: temporary.is_some(),
            changed: now_ms,
            ..user
        };
        self.store.update_user(&changed, true)?;
        let how = if temporary.is_some() {
            "temporary"
        } else {
            "chosen"
        };
        self.trail(now_ms, "password_set", Some(name), Some(how.to_owned()))?;
        Ok(temporary)
    }

    /// Disables or enables a person: whether anything changed. Disabling ends their
    /// sessions.
    pub fn set_disabled(
        &self,
        name: &str,
        disabled: bool,
        now_ms: i64,
    ) -> Result<bool, AdminError> {
        let user = self.user(name)?;
        if user.disabled == disabled {
            return Ok(false);
        }
        let changed = UserRecord {
            disabled,
            changed: now_ms,
            ..user
        };
        self.store.update_user(&changed, disabled)?;
        let event = if disabled {
            "user_disabled"
        } else {
            "user_enabled"
        };
        self.trail(now_ms, event, Some(name), None)?;
        Ok(true)
    }

    /// Removes a person with their sessions: whether there was one.
    pub fn remove(&self, name: &str, now_ms: i64) -> Result<bool, AdminError> {
        match self.store.user_named(name)? {
            Some(u) => {
                let removed = self.store.remove_user(&u.id)?;
                self.trail(now_ms, "user_removed", Some(name), None)?;
                Ok(removed)
            }
            None => Ok(false),
        }
    }

    /// Enrolls a new TOTP secret (replacing any) with ten new recovery codes.
    pub fn enroll_totp(
        &self,
        name: &str,
        issuer: &str,
        now_ms: i64,
    ) -> Result<Enrolled, AdminError> {
        let user = self.user(name)?;
        let secret = totp::new_secret()?;
        let (codes, digests) = recovery::generate()?;
        let changed = UserRecord {
            totp: Some(secret.to_vec()),
            totp_step: None,
            changed: now_ms,
            ..user
        };
        self.store.update_user(&changed, false)?;
        self.store.set_recovery_codes(&changed.id, &digests)?;
        self.trail(now_ms, "totp_enrolled", Some(name), None)?;
        Ok(Enrolled {
            uri: totp::uri(&secret, name, issuer),
            secret: totp::base32(&secret),
            recovery_codes: codes,
        })
    }

    /// Removes a person's second factor and recovery codes: whether they had one.
    pub fn remove_totp(&self, name: &str, now_ms: i64) -> Result<bool, AdminError> {
        let user = self.user(name)?;
        if user.totp.is_none() {
            return Ok(false);
        }
        let id = user.id.clone();
        let changed = UserRecord {
            totp: None,
            totp_step: None,
            changed: now_ms,
            ..user
        };
        self.store.update_user(&changed, false)?;
        self.store.set_recovery_codes(&id, &[])?;
        self.trail(now_ms, "totp_removed", Some(name), None)?;
        Ok(true)
    }

    /// The group named `name`, if there is one.
    pub fn group(&self, name: &str) -> Result<Option<GroupRecord>, AdminError> {
        Ok(self.store.groups()?.into_iter().find(|g| g.name == name))
    }

    /// Every group, members by name.
    pub fn groups(&self) -> Result<Vec<(GroupRecord, Vec<String>)>, AdminError> {
        let users = self.store.users()?;
        let name_of = |id: &str| {
            users
                .iter()
                .find(|u| u.id == id)
                .map_or_else(|| id.to_owned(), |u| u.name.clone())
        };
        Ok(self
            .store
            .groups()?
            .into_iter()
            .map(|g| {
                let mut names: Vec<String> = g.members.iter().map(|m| name_of(m)).collect();
                names.sort();
                (g, names)
            })
            .collect())
    }

    /// Makes a group: whether it was new.
    pub fn add_group(
        &self,
        name: &str,
        description: &str,
        now_ms: i64,
    ) -> Result<bool, AdminError> {
        names::check_group(name)?;
        match self.store.insert_group(name, description, now_ms) {
            Ok(()) => {
                self.trail(now_ms, "group_added", None, Some(format!("group={name}")))?;
                Ok(true)
            }
            Err(kg_store::Error::Conflict { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes a group: whether there was one.
    pub fn remove_group(&self, name: &str, now_ms: i64) -> Result<bool, AdminError> {
        let removed = self.store.remove_group(name)?;
        if removed {
            self.trail(now_ms, "group_removed", None, Some(format!("group={name}")))?;
        }
        Ok(removed)
    }

    /// Adds people to a group: how many were not in it.
    pub fn add_members(
        &self,
        group: &str,
        users: &[String],
        now_ms: i64,
    ) -> Result<usize, AdminError> {
        if self.group(group)?.is_none() {
            return Err(not_found("group", group));
        }
        let ids = self.ids_of(users)?;
        let mut added = 0;
        for (id, name) in ids.iter().zip(users) {
            if self.store.add_member(group, id)? {
                added += 1;
                self.trail(
                    now_ms,
                    "group_member_added",
                    Some(name),
                    Some(format!("group={group}")),
                )?;
            }
        }
        Ok(added)
    }

    /// Takes people out of a group: how many were in it.
    pub fn remove_members(
        &self,
        group: &str,
        users: &[String],
        now_ms: i64,
    ) -> Result<usize, AdminError> {
        if self.group(group)?.is_none() {
            return Err(not_found("group", group));
        }
        let ids = self.ids_of(users)?;
        let mut removed = 0;
        for (id, name) in ids.iter().zip(users) {
            if self.store.remove_member(group, id)? {
                removed += 1;
                self.trail(
                    now_ms,
                    "group_member_removed",
                    Some(name),
                    Some(format!("group={group}")),
                )?;
            }
        }
        Ok(removed)
    }

    /// Every name resolved before anything is written, so a typo changes nothing.
    fn ids_of(&self, users: &[String]) -> Result<Vec<String>, AdminError> {
        users.iter().map(|n| self.user(n).map(|u| u.id)).collect()
    }
}

/// The hash of `password`, checked against the rules, or of a new temporary one (returned
/// to be shown once).
fn chosen_or_temporary(
    password: Option<&str>,
    name: &str,
) -> Result<(Option<Zeroizing<String>>, String), AdminError> {
    Ok(match password {
        Some(p) => {
            password::check_new(p, name)?;
            (None, password::hash(p.as_bytes())?)
        }
        None => {
            let t = password::temporary()?;
            let h = password::hash(t.as_bytes())?;
            (Some(t), h)
        }
    })
}

/// An address a reset link can go to: one `@`, no spaces or controls, at most 254 bytes.
fn check_email(e: &str) -> Result<(), AccountError> {
    let ok = e.len() <= 254
        && e.matches('@').count() == 1
        && !e.starts_with('@')
        && !e.ends_with('@')
        && !e
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>');
    if ok {
        Ok(())
    } else {
        Err(AccountError::BadName(format!(
            "{e:?} is not an email address keygate can send to"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admin() -> Admin {
        Admin::new(Arc::new(kg_store::SqliteStore::memory().unwrap()))
    }

    #[test]
    fn a_new_person_gets_a_temporary_password_that_verifies_and_must_change() {
        let a = admin();
        let added = a.add("alice", Some("alice@example.com"), None, 1).unwrap();
        let t = added.temporary.unwrap();
        assert!(added.user.must_change);
        let dir = crate::directory::Directory::new(a.store.clone());
        match dir.check_password("alice", t.as_bytes(), 2).unwrap() {
            crate::directory::PasswordCheck::Good { must_change, .. } => assert!(must_change),
            other => panic!("{other:?}"),
        }
        assert!(a.add("alice", None, None, 1).is_err(), "a name is unique");
        assert!(a.add("Alice", None, None, 1).unwrap_err().is_usage());
        assert!(a.add("bob", Some("not an address"), None, 1).is_err());
    }

    #[test]
    fn bootstrap_is_once() {
        let a = admin();
        match a.bootstrap_admin("root", "a long passphrase", 1).unwrap() {
            Bootstrap::Created(u) => assert!(!u.must_change),
            other => panic!("{other:?}"),
        }
        match a.bootstrap_admin("other", "a long passphrase", 1).unwrap() {
            Bootstrap::Exists(names) => assert_eq!(names, vec!["root"]),
            other => panic!("{other:?}"),
        }
        assert!(a.store.user_named("other").unwrap().is_none());
    }

    #[test]
    fn a_typo_in_a_member_list_changes_nothing() {
        let a = admin();
        a.add("alice", None, None, 1).unwrap();
        assert!(a.add_group("ops", "", 1).unwrap());
        assert!(!a.add_group("ops", "", 1).unwrap());
        let err = a
            .add_members("ops", &["alice".into(), "alcie".into()], 2)
            .unwrap_err();
        assert!(err.is_usage(), "{err}");
        assert!(a.group("ops").unwrap().unwrap().members.is_empty());
        assert_eq!(a.add_members("ops", &["alice".into()], 2).unwrap(), 1);
        assert_eq!(a.add_members("ops", &["alice".into()], 3).unwrap(), 0);
    }
}
