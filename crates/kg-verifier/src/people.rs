//! People's credentials: a password, a second factor, and the session they leave behind.
//!
//! The checks themselves are kg-accounts' (Argon2id through its gate, the TOTP step kept
//! with a compare-and-set, recovery codes spent once); deciding, charging the limiter,
//! counting and writing the audit line happen here, as for every other credential.
//!
//! Guessing is limited as sign-in forms are, per client address (behind trusted proxies,
//! the one they name) in the form's own bucket, and a second factor spends from the same
//! bucket as a password. That bucket refills (a backoff, not a lock): a flood of wrong
//! passwords for the admin from one address slows that address down, and never locks the
//! admin out from another.

use std::sync::Arc;

use kg_accounts::directory::{Directory, FactorCheck, PasswordCheck, Person, Unavailable};
use kg_http::limiter::{Check, client_key};

use crate::{Ask, Ctx, Decision, Identity, Need, Note, Outcome, Verifier};

/// Wrong second factors a person may send at once, whatever their addresses.
pub const FACTOR_BURST: u32 = 5;
/// One more wrong second factor is allowed per this interval: about 1,440 guesses a day at
/// a six-digit code, against the million it would take.
pub const FACTOR_REFILL: std::time::Duration = std::time::Duration::from_secs(60);

/// What stands in for a token id where a person signed in with a password instead
/// (`kg_store::PERSON_REF_PREFIX`, where the store ends their grants with them).
pub const PERSON_PREFIX: &str = kg_accounts::directory::PERSON_REF_PREFIX;

/// The stand-in for a token id of the person with id `user_id` ([`PERSON_PREFIX`]).
pub fn person_ref(user_id: &str) -> String {
    format!("{PERSON_PREFIX}{user_id}")
}

/// What a password sign-in came to.
#[derive(Debug)]
pub enum PasswordDecision {
    /// The person may have a session now.
    SignedIn(Arc<Person>),
    /// The password was right: a TOTP code next (`second_factor`), then a new password
    /// (`must_change`).
    Continue {
        /// Who.
        person: Arc<Person>,
        /// A second factor comes next.
        second_factor: bool,
        /// A new password comes next.
        must_change: bool,
    },
    /// Refused: the same answer for an unknown name, a wrong password and a disabled
    /// person (the audit log has which).
    Refused,
    /// Out of attempts: try again after this long.
    Throttled(std::time::Duration),
    /// The store or the hashing gate could not answer: 503.
    Unavailable,
}

/// What a second-factor answer came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactorDecision {
    /// Good: a TOTP code not used before, or a recovery code (this many left).
    Good {
        /// Recovery codes left, when one was spent.
        recovery_left: Option<usize>,
    },
    /// Wrong, or a code already used.
    Refused,
    /// Out of attempts.
    Throttled(std::time::Duration),
    /// The store could not answer.
    Unavailable,
}

/// Whether `person` is in one of `groups` (anyone, when there are none).
pub fn may_enter(person: &Person, groups: &[String]) -> bool {
    groups.is_empty() || groups.iter().any(|g| person.in_group(g))
}

fn unavailable(e: &Unavailable) {
    kg_http::log::error("people_unavailable", &[("error", (&e.to_string()).into())]);
}

impl Verifier {
    /// Accepts people's sessions and sign-ins from now on. Set once.
    pub fn set_people(&self, people: Arc<Directory>) {
        let _ = self.people.set(people);
    }

    /// The people, if set.
    pub fn people(&self) -> Option<&Arc<Directory>> {
        self.people.get()
    }

    /// The person with this id while they may sign in (present and not disabled). Nothing
    /// is recorded.
    pub fn person(&self, user_id: &str) -> Option<Arc<Person>> {
        self.people
            .get()?
            .person(user_id)
            .ok()
            .flatten()
            .filter(|p| !p.disabled)
    }

    /// A person's session: they must still be there and enabled; their groups go with the
    /// identity.
    pub(crate) fn judge_person<R>(
        &self,
        ask: &Ask<'_>,
        user_id: &str,
        foreign: bool,
        at: Option<(i64, u64)>,
        respond: impl FnOnce(Decision<'_>) -> (R, u16),
    ) -> R {
        let ctx = &ask.ctx;
        let found = match self.people.get().map(|d| d.person_at(user_id, at)) {
            Some(Ok(found)) => found,
            None => None,
            Some(Err(e)) => {
                unavailable(&e);
                let (r, status) = respond(Decision::Unavailable);
                self.note(Note::person(Outcome::Unavailable, None), status, ctx);
                return r;
            }
        };
        let person = match found {
            Some(p) if !p.disabled => p,
            other => {
                let (r, status) = respond(Decision::SessionEnded);
                let outcome = if other.is_some() {
                    Outcome::UserDisabled
                } else {
                    Outcome::SessionEnded
                };
                let name = other.as_ref().map(|p| p.name.as_str());
                self.note(Note::person(outcome, name), status, ctx);
                return r;
            }
        };
        // A person has no scopes: a path whose rules require one is not theirs. At a
        // service, their groups are what counts.
        let (need, groups): (Option<&crate::Requirement>, &[String]) = match ask.need {
            Need::Nothing => (None, &[]),
            Need::Path(path) => (self.scopes.for_path(path), &[]),
            Need::Scope(r) => (Some(r), &[]),
            Need::Service { groups, .. } => (None, groups),
        };
        let (decision, outcome) = match need {
            Some(need) if !need.is_met_by_nothing() => (
                Decision::InsufficientScope(&need.challenge),
                Outcome::InsufficientScope,
            ),
            _ if !may_enter(&person, groups) => (Decision::NotInGroup, Outcome::NotInGroup),
            _ if foreign => (Decision::CrossSite, Outcome::CrossSite),
            _ => (
                Decision::Allow(Identity {
                    name: &person.name,
                    id: "",
                    scopes: &[],
                    groups: &person.groups,
                }),
                ask.allow_as,
            ),
        };
        let later = ask.allow_logged_later && outcome == ask.allow_as;
        let (r, status) = respond(decision);
        if later {
            self.metrics.decision(outcome.index());
        } else {
            self.note(Note::person(outcome, Some(&person.name)), status, ctx);
        }
        r
    }

    /// Charges the form's budget for this client before a slow check (a password), so that
    /// attempts in flight at once count, not only those that have failed: `Some(wait)` when
    /// none is left. [`Verifier::form_refund`] gives it back when the check is good.
    fn form_charge(&self, ctx: &Ctx<'_>) -> Option<std::time::Duration> {
        let l = self.by_form.as_ref()?;
        match l.check_and_fail(client_key(ctx.client)) {
            Check::Throttled {
                retry_after,
                log,
                suppressed,
            } => {
                self.note(
                    Note::Throttled {
                        id: None,
                        log,
                        suppressed,
                    },
                    429,
                    ctx,
                );
                Some(retry_after)
            }
            _ => None,
        }
    }

    fn form_refund(&self, ctx: &Ctx<'_>) {
        if let Some(l) = &self.by_form {
            l.refund(client_key(ctx.client));
        }
    }

    /// Judges a name and password from the sign-in form. Blocking (one Argon2
    /// verification, whether or not the name is anyone's): call from a blocking thread.
    /// `status` is what the caller will answer for each decision, for the audit line.
    pub fn judge_password(
        &self,
        ctx: &Ctx<'_>,
        name: &str,
        password: &[u8],
        now_ms: i64,
    ) -> PasswordDecision {
        if let Some(wait) = self.form_charge(ctx) {
            return PasswordDecision::Throttled(wait);
        }
        let Some(people) = self.people.get() else {
            self.note(Note::person(Outcome::UnknownUser, None), 401, ctx);
            return PasswordDecision::Refused;
        };
        match people.check_password(name, password, now_ms) {
            Ok(PasswordCheck::Good {
                person,
                second_factor,
                must_change,
            }) => {
                self.form_refund(ctx);
                if second_factor || must_change {
                    self.note(
                        Note::person(Outcome::FirstFactor, Some(&person.name)),
                        200,
                        ctx,
                    );
                    PasswordDecision::Continue {
                        person,
                        second_factor,
                        must_change,
                    }
                } else {
                    self.note(
                        Note::person(Outcome::SignedIn, Some(&person.name)),
                        303,
                        ctx,
                    );
                    PasswordDecision::SignedIn(person)
                }
            }
            Ok(refused) => {
                let (outcome, who) = match &refused {
                    PasswordCheck::Wrong { name } => (Outcome::BadPassword, Some(name.as_str())),
                    PasswordCheck::Disabled { name } => {
                        (Outcome::UserDisabled, Some(name.as_str()))
                    }
                    // A name nobody has is not logged: people type passwords into it.
                    _ => (Outcome::UnknownUser, None),
                };
                self.note(Note::person(outcome, who), 401, ctx);
                PasswordDecision::Refused
            }
            Err(e) => {
                self.form_refund(ctx);
                unavailable(&e);
                self.note(Note::person(Outcome::Unavailable, None), 503, ctx);
                PasswordDecision::Unavailable
            }
        }
    }

    /// Judges a second-factor answer (a TOTP code or a recovery code) for `person`, whose
    /// password was just accepted. From the same bucket as passwords.
    pub fn judge_second_factor(
        &self,
        ctx: &Ctx<'_>,
        person: &Person,
        code: &str,
        now_secs: u64,
    ) -> FactorDecision {
        // The client's budget, and the person's own: a second factor is tried only by someone
        // who has the password, and a budget per person stops guessing spread over many
        // addresses (a stolen password would otherwise make the code a million guesses).
        if let Some(wait) = self.form_charge(ctx) {
            return FactorDecision::Throttled(wait);
        }
        if let Some(l) = &self.by_factor
            && let Check::Throttled { retry_after, .. } = l.check_and_fail(person.id.as_bytes())
        {
            self.metrics.decision(Outcome::Throttled.index());
            self.note(
                Note::person(Outcome::Throttled, Some(&person.name)),
                429,
                ctx,
            );
            return FactorDecision::Throttled(retry_after);
        }
        let Some(people) = self.people.get() else {
            return FactorDecision::Unavailable;
        };
        let who = Some(person.name.as_str());
        match people.check_second_factor(&person.id, code, now_secs) {
            Ok(good @ (FactorCheck::Totp | FactorCheck::Recovery(_))) => {
                self.form_refund(ctx);
                if let Some(l) = &self.by_factor {
                    l.refund(person.id.as_bytes());
                }
                FactorDecision::Good {
                    recovery_left: match good {
                        FactorCheck::Recovery(left) => Some(left),
                        _ => None,
                    },
                }
            }
            Ok(bad) => {
                let outcome = if bad == FactorCheck::Replayed {
                    Outcome::TotpReplayed
                } else {
                    Outcome::BadSecondFactor
                };
                self.note(Note::person(outcome, who), 401, ctx);
                FactorDecision::Refused
            }
            Err(e) => {
                self.form_refund(ctx);
                unavailable(&e);
                self.note(Note::person(Outcome::Unavailable, who), 503, ctx);
                FactorDecision::Unavailable
            }
        }
    }

    /// A password-reset request spends one attempt from the form's budget for this client
    /// (sending mail is what a flood would cost): `Some(wait)` when none is left.
    pub fn spend_reset_attempt(&self, ctx: &Ctx<'_>) -> Option<std::time::Duration> {
        self.form_charge(ctx)
    }

    /// Adds a people outcome to the store's audit trail, pruning what is past its
    /// retention on each sign-in. A store that fails loses the line there (the JSON audit
    /// log has it) and says so in the log.
    pub(crate) fn trail(&self, outcome: Outcome, user: Option<&str>, ctx: &Ctx<'_>) {
        let Some(people) = self.people.get() else {
            return;
        };
        let at = (self.clock.now().unix_timestamp_nanos() / 1_000_000) as i64;
        let event = kg_accounts::directory::AuditEvent {
            at,
            event: outcome.reason().to_owned(),
            user: user.map(str::to_owned),
            client: Some(ctx.client.to_string()),
            detail: ctx.path.map(|p| String::from_utf8_lossy(p).into_owned()),
        };
        let keep = i64::try_from(self.audit_retention.as_millis()).unwrap_or(i64::MAX);
        let prune = (outcome == Outcome::SignedIn).then(|| at.saturating_sub(keep));
        if let Err(e) = people.trail(&event, prune) {
            kg_http::log::error("audit_trail_failed", &[("error", (&e.to_string()).into())]);
        }
    }

    /// Records a person's completed sign-in (after the second factor or a new password).
    pub fn record_person(&self, outcome: Outcome, status: u16, person: &Person, ctx: &Ctx<'_>) {
        self.note(Note::person(outcome, Some(&person.name)), status, ctx);
    }
}
