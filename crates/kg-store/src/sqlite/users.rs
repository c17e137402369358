//! [`UserStore`] on SQLite.

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::{SESSION_COLUMNS, SqliteStore, record};
use crate::{AuditEvent, DIGEST_LEN, Error, GroupRecord, SessionRecord, UserRecord, UserStore};

const USER_COLUMNS: &str = "id, name, email, password, must_change, disabled, totp, totp_step, \
     revision, created, changed FROM users";

fn user_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserRecord> {
    Ok(UserRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        email: r.get(2)?,
        password: r.get(3)?,
        must_change: r.get(4)?,
        disabled: r.get(5)?,
        totp: r.get(6)?,
        totp_step: r.get(7)?,
        revision: r.get(8)?,
        created: r.get(9)?,
        changed: r.get(10)?,
    })
}

/// A unique name taken is a [`Error::Conflict`] naming it; anything else fails `what`.
fn conflict<'a>(
    kind: &'static str,
    name: &'a str,
    what: &'static str,
) -> impl FnOnce(rusqlite::Error) -> Error + 'a {
    move |e| match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::ConstraintViolation) => Error::Conflict {
            what: kind,
            name: name.to_owned(),
        },
        _ => Error::sql(what)(e),
    }
}

impl SqliteStore {
    /// Runs `f` in one write transaction (its writes move the store's version, which is how
    /// servers learn that people changed).
    fn people_txn<T>(
        &self,
        what: &'static str,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(Error::sql(what))?;
        let out = f(&tx)?;
        tx.commit().map_err(Error::sql(what))?;
        Ok(out)
    }

    fn query_users(&self, tail: &str, p: impl rusqlite::Params) -> Result<Vec<UserRecord>, Error> {
        let conn = self.lock();
        let mut st = conn
            .prepare_cached(&format!("SELECT {USER_COLUMNS} {tail}"))
            .map_err(Error::sql("read people"))?;
        st.query_map(p, user_record)
            .and_then(|rows| rows.collect())
            .map_err(Error::sql("read people"))
    }

    fn query_sessions(
        &self,
        tail: &str,
        p: impl rusqlite::Params,
    ) -> Result<Vec<SessionRecord>, Error> {
        let conn = self.lock();
        let mut st = conn
            .prepare_cached(&format!("SELECT {SESSION_COLUMNS} {tail}"))
            .map_err(Error::sql("read sessions"))?;
        st.query_map(p, record)
            .and_then(|rows| rows.collect())
            .map_err(Error::sql("read sessions"))
    }
}

impl UserStore for SqliteStore {
    fn insert_user(&self, u: &UserRecord) -> Result<(), Error> {
        self.people_txn("add a person", |tx| {
            tx.execute(
                "INSERT INTO users (id, name, email, password, must_change, disabled, totp, \
                 totp_step, revision, created, changed) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    u.id,
                    u.name,
                    u.email,
                    u.password,
                    u.must_change,
                    u.disabled,
                    u.totp,
                    u.totp_step,
                    u.revision,
                    u.created,
                    u.changed
                ],
            )
            .map(|_| ())
            .map_err(conflict("user", &u.name, "add a person"))
        })
    }

    fn user(&self, id: &str) -> Result<Option<UserRecord>, Error> {
        Ok(self.query_users("WHERE id = ?1", [id])?.pop())
    }

    fn user_named(&self, name: &str) -> Result<Option<UserRecord>, Error> {
        Ok(self.query_users("WHERE name = ?1", [name])?.pop())
    }

    fn users(&self) -> Result<Vec<UserRecord>, Error> {
        self.query_users("ORDER BY name", [])
    }

    fn update_user(&self, u: &UserRecord, end_sessions: bool) -> Result<UserRecord, Error> {
        self.people_txn("change a person", |tx| {
            let n = tx
                .execute(
                    "UPDATE users SET name = ?2, email = ?3, password = ?4, must_change = ?5, \
                     disabled = ?6, totp = ?7, totp_step = ?8, revision = revision + 1, \
                     changed = ?9 WHERE id = ?1 AND revision = ?10",
                    params![
                        u.id,
                        u.name,
                        u.email,
                        u.password,
                        u.must_change,
                        u.disabled,
                        u.totp,
                        u.totp_step,
                        u.changed,
                        u.revision
                    ],
                )
                .map_err(conflict("user", &u.name, "change a person"))?;
            if n == 0 {
                let exists: Option<i64> = tx
                    .query_row("SELECT revision FROM users WHERE id = ?1", [&u.id], |r| {
                        r.get(0)
                    })
                    .optional()
                    .map_err(Error::sql("change a person"))?;
                return Err(match exists {
                    Some(_) => Error::Stale {
                        what: "user",
                        name: u.name.clone(),
                    },
                    None => Error::NotFound {
                        what: "user",
                        name: u.name.clone(),
                    },
                });
            }
            if end_sessions {
                tx.execute("DELETE FROM sessions WHERE user_id = ?1", [&u.id])
                    .map_err(Error::sql("end a person's sessions"))?;
                tx.execute(
                    "UPDATE grants SET revoked = ?2 WHERE token_id = ?1 AND revoked IS NULL",
                    params![format!("{}{}", crate::PERSON_REF_PREFIX, u.id), u.changed],
                )
                .map_err(Error::sql("revoke a person's grants"))?;
            }
            Ok(UserRecord {
                revision: u.revision + 1,
                ..u.clone()
            })
        })
    }

    fn remove_user(&self, id: &str) -> Result<bool, Error> {
        self.people_txn("remove a person", |tx| {
            tx.execute("DELETE FROM sessions WHERE user_id = ?1", [id])
                .map_err(Error::sql("end a person's sessions"))?;
            tx.execute("DELETE FROM users WHERE id = ?1", [id])
                .map(|n| n > 0)
                .map_err(Error::sql("remove a person"))
        })
    }

    fn advance_totp(&self, id: &str, step: i64) -> Result<bool, Error> {
        // Not a change to people: no server caches the step.
        self.lock()
            .prepare_cached(
                "UPDATE users SET totp_step = ?2 \
                 WHERE id = ?1 AND totp IS NOT NULL AND (totp_step IS NULL OR totp_step < ?2)",
            )
            .and_then(|mut st| st.execute(params![id, step]))
            .map(|n| n > 0)
            .map_err(Error::sql("record a TOTP step"))
    }

    fn set_recovery_codes(&self, id: &str, digests: &[[u8; DIGEST_LEN]]) -> Result<(), Error> {
        self.people_txn("store recovery codes", |tx| {
            tx.execute("DELETE FROM recovery_codes WHERE user_id = ?1", [id])
                .map_err(Error::sql("store recovery codes"))?;
            for d in digests {
                tx.execute(
                    "INSERT INTO recovery_codes (user_id, digest) VALUES (?1, ?2)",
                    params![id, &d[..]],
                )
                .map_err(Error::sql("store recovery codes"))?;
            }
            Ok(())
        })
    }

    fn use_recovery_code(&self, id: &str, digest: &[u8; DIGEST_LEN]) -> Result<bool, Error> {
        self.lock()
            .prepare_cached("DELETE FROM recovery_codes WHERE user_id = ?1 AND digest = ?2")
            .and_then(|mut st| st.execute(params![id, &digest[..]]))
            .map(|n| n > 0)
            .map_err(Error::sql("spend a recovery code"))
    }

    fn recovery_codes_left(&self, id: &str) -> Result<usize, Error> {
        self.lock()
            .query_row(
                "SELECT count(*) FROM recovery_codes WHERE user_id = ?1",
                [id],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as usize)
            .map_err(Error::sql("count recovery codes"))
    }

    fn insert_group(&self, name: &str, description: &str, created: i64) -> Result<(), Error> {
        self.people_txn("make a group", |tx| {
            tx.execute(
                "INSERT INTO groups (name, description, created) VALUES (?1, ?2, ?3)",
                params![name, description, created],
            )
            .map(|_| ())
            .map_err(conflict("group", name, "make a group"))
        })
    }

    fn groups(&self) -> Result<Vec<GroupRecord>, Error> {
        let conn = self.lock();
        let mut st = conn
            .prepare_cached(
                "SELECT g.name, g.description, g.created, m.user_id FROM groups g \
                 LEFT JOIN members m ON m.group_name = g.name ORDER BY g.name, m.user_id",
            )
            .map_err(Error::sql("read groups"))?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(Error::sql("read groups"))?;
        let mut out: Vec<GroupRecord> = Vec::new();
        for (name, description, created, member) in rows {
            if out.last().is_none_or(|g| g.name != name) {
                out.push(GroupRecord {
                    name,
                    description,
                    created,
                    members: Vec::new(),
                });
            }
            if let (Some(m), Some(g)) = (member, out.last_mut()) {
                g.members.push(m);
            }
        }
        Ok(out)
    }

    fn remove_group(&self, name: &str) -> Result<bool, Error> {
        self.people_txn("remove a group", |tx| {
            tx.execute("DELETE FROM groups WHERE name = ?1", [name])
                .map(|n| n > 0)
                .map_err(Error::sql("remove a group"))
        })
    }

    fn add_member(&self, group: &str, user_id: &str) -> Result<bool, Error> {
        self.people_txn("add a member", |tx| {
            let has = |sql: &str, key: &str| -> Result<bool, Error> {
                tx.query_row(sql, [key], |_| Ok(()))
                    .optional()
                    .map(|x| x.is_some())
                    .map_err(Error::sql("add a member"))
            };
            if !has("SELECT 1 FROM groups WHERE name = ?1", group)? {
                return Err(Error::NotFound {
                    what: "group",
                    name: group.to_owned(),
                });
            }
            if !has("SELECT 1 FROM users WHERE id = ?1", user_id)? {
                return Err(Error::NotFound {
                    what: "user",
                    name: user_id.to_owned(),
                });
            }
            tx.execute(
                "INSERT OR IGNORE INTO members (group_name, user_id) VALUES (?1, ?2)",
                params![group, user_id],
            )
            .map(|n| n > 0)
            .map_err(Error::sql("add a member"))
        })
    }

    fn remove_member(&self, group: &str, user_id: &str) -> Result<bool, Error> {
        self.people_txn("remove a member", |tx| {
            tx.execute(
                "DELETE FROM members WHERE group_name = ?1 AND user_id = ?2",
                params![group, user_id],
            )
            .map(|n| n > 0)
            .map_err(Error::sql("remove a member"))
        })
    }

    fn groups_of(&self, user_id: &str) -> Result<Vec<String>, Error> {
        let conn = self.lock();
        let mut st = conn
            .prepare_cached("SELECT group_name FROM members WHERE user_id = ?1 ORDER BY group_name")
            .map_err(Error::sql("read memberships"))?;
        st.query_map([user_id], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(Error::sql("read memberships"))
    }

    fn sessions_of_user(&self, user_id: &str) -> Result<Vec<SessionRecord>, Error> {
        self.query_sessions("WHERE user_id = ?1 ORDER BY used DESC", [user_id])
    }

    fn end_user_sessions(&self, user_id: &str) -> Result<usize, Error> {
        self.lock()
            .execute("DELETE FROM sessions WHERE user_id = ?1", [user_id])
            .map_err(Error::sql("end a person's sessions"))
    }

    fn all_sessions(&self) -> Result<Vec<SessionRecord>, Error> {
        self.query_sessions("ORDER BY used DESC", [])
    }

    fn spend_ticket(
        &self,
        digest: &[u8; DIGEST_LEN],
        expires: i64,
        now: i64,
    ) -> Result<bool, Error> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(Error::sql("spend a ticket"))?;
        tx.execute("DELETE FROM spent_tickets WHERE expires <= ?1", [now])
            .map_err(Error::sql("sweep spent tickets"))?;
        let fresh = tx
            .execute(
                "INSERT OR IGNORE INTO spent_tickets (digest, expires) VALUES (?1, ?2)",
                params![&digest[..], expires],
            )
            .map_err(Error::sql("spend a ticket"))?;
        tx.commit().map_err(Error::sql("spend a ticket"))?;
        Ok(fresh > 0)
    }

    fn insert_reset(
        &self,
        digest: &[u8; DIGEST_LEN],
        user_id: &str,
        expires: i64,
        now: i64,
    ) -> Result<(), Error> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(Error::sql("store a reset link"))?;
        tx.execute("DELETE FROM password_resets WHERE expires <= ?1", [now])
            .map_err(Error::sql("sweep reset links"))?;
        tx.execute(
            "INSERT INTO password_resets (digest, user_id, expires) VALUES (?1, ?2, ?3)",
            params![&digest[..], user_id, expires],
        )
        .map_err(Error::sql("store a reset link"))?;
        tx.commit().map_err(Error::sql("store a reset link"))
    }

    fn reset_user(&self, digest: &[u8; DIGEST_LEN], now: i64) -> Result<Option<String>, Error> {
        self.lock()
            .prepare_cached(
                "SELECT user_id FROM password_resets WHERE digest = ?1 AND expires > ?2",
            )
            .and_then(|mut st| {
                st.query_row(params![&digest[..], now], |r| r.get(0))
                    .optional()
            })
            .map_err(Error::sql("read a reset link"))
    }

    fn take_reset(&self, digest: &[u8; DIGEST_LEN], now: i64) -> Result<Option<String>, Error> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(Error::sql("use a reset link"))?;
        let user: Option<String> = tx
            .query_row(
                "SELECT user_id FROM password_resets WHERE digest = ?1 AND expires > ?2",
                params![&digest[..], now],
                |r| r.get(0),
            )
            .optional()
            .map_err(Error::sql("use a reset link"))?;
        if let Some(u) = &user {
            tx.execute("DELETE FROM password_resets WHERE user_id = ?1", [u])
                .map_err(Error::sql("use a reset link"))?;
        }
        tx.commit().map_err(Error::sql("use a reset link"))?;
        Ok(user)
    }

    fn record_event(&self, e: &AuditEvent) -> Result<(), Error> {
        self.lock()
            .prepare_cached(
                "INSERT INTO audit_events (at, event, user_name, client, detail) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut st| st.execute(params![e.at, e.event, e.user, e.client, e.detail]))
            .map(|_| ())
            .map_err(Error::sql("record an audit event"))
    }

    fn events(
        &self,
        since: i64,
        user: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, Error> {
        let conn = self.lock();
        let mut st = conn
            .prepare_cached(
                "SELECT at, event, user_name, client, detail FROM audit_events \
                 WHERE at >= ?1 AND (?2 IS NULL OR user_name = ?2) \
                 ORDER BY at DESC, id DESC LIMIT ?3",
            )
            .map_err(Error::sql("read the audit trail"))?;
        st.query_map(params![since, user, limit as i64], |r| {
            Ok(AuditEvent {
                at: r.get(0)?,
                event: r.get(1)?,
                user: r.get(2)?,
                client: r.get(3)?,
                detail: r.get(4)?,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(Error::sql("read the audit trail"))
    }

    fn prune_events(&self, before: i64) -> Result<usize, Error> {
        self.lock()
            .execute("DELETE FROM audit_events WHERE at < ?1", [before])
            .map_err(Error::sql("prune the audit trail"))
    }
}
