//! The verifier: the one place that decides whether a credential is good.
//!
//! Every room asks [`Verifier::judge`]: `/auth` and `/metrics` here, the reverse proxy
//! (kg-gateway) for bearer tokens and browser sessions, and the sign-in form (kg-login).
//! A judgement parses the bearer credential, verifies it against the live token store,
//! charges the failure rate limits, checks the scopes the request needs, counts the outcome
//! and writes the audit line, in that order and in this crate only. Outcomes that other
//! rooms decide without a credential (the localhost bypass, a CSRF refusal, a sign-out) are
//! recorded through [`Verifier::record`], so that every audit line and decision counter has
//! one author.
//!
//! Every handler is synchronous: verification is a hash lookup and one HMAC, so a request
//! is answered in the poll that parsed it, with no task, no boxing and no await point.
//! The `/auth` path allocates nothing that grows with the request, the store or the number
//! of clients. `/auth` reads the request through [`Headers`] and answers with a [`Reply`],
//! so that hyper and the HTTP/1 fast lane ([`lane`]) judge alike.
#![forbid(unsafe_code)]

mod bearer;
mod endpoints;
pub mod jwt;
pub mod lane;
pub mod live_store;
mod outcome;
pub mod paths;
pub mod people;
pub mod scopes;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::header::HeaderValue;
use kg_http::audit::{Audit, Entry};
use kg_http::limiter::{Check, Limiter, client_key};
use kg_http::metrics::Metrics;
use kg_http::net::Cidr;
use time::OffsetDateTime;

pub use bearer::{Credential, token_id};
pub use endpoints::{AuthRequest, Identity, METRICS_SCOPE, Reply};
pub use live_store::{Tokens, Verdict};
pub use outcome::Outcome;
pub use scopes::{BadRule, Requirement, ScopeRules};

use kg_http::Headers;

/// The wall clock the verifier judges expiry by: the binary's one clock (`kg_cli::clock`),
/// so that the test clock reaches the server too.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> OffsetDateTime + Send + Sync>);

impl Clock {
    /// A clock reading `now`.
    pub fn new(now: impl Fn() -> OffsetDateTime + Send + Sync + 'static) -> Clock {
        Clock(Arc::new(now))
    }

    /// A clock stopped at `t`.
    pub fn fixed(t: OffsetDateTime) -> Clock {
        Clock::new(move || t)
    }

    /// Now.
    pub fn now(&self) -> OffsetDateTime {
        (self.0)()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Clock").field(&self.now()).finish()
    }
}

/// What the verifier is told.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Proxies whose forwarding headers are believed.
    pub trusted_proxies: Vec<Cidr>,
    /// Scopes required per original path.
    pub scopes: ScopeRules,
    /// The realm of `WWW-Authenticate` (printable ASCII without quotes or backslashes).
    pub realm: String,
    /// Failed attempts allowed at once per client address and per token id; 0 is no limit.
    pub rate_limit_burst: u32,
    /// One more failed attempt is allowed per this interval.
    pub rate_limit_refill: Duration,
    /// The clock expiry is judged by.
    pub clock: Clock,
    /// How long the people's audit trail in the store keeps a line.
    pub audit_retention: Duration,
}

/// What the audit log says about the request besides the decision.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    /// The client address (behind trusted proxies, the one they name).
    pub client: IpAddr,
    /// The method (the original one, when a trusted proxy said).
    pub method: &'a str,
    /// The path judged, when known.
    pub path: Option<&'a [u8]>,
    /// The request's id when the caller made one before deciding (the proxy, which also
    /// sends it upstream as `X-Request-Id`); the audit log draws one otherwise.
    pub request_id: Option<&'a str>,
}

/// What a credential must be good for.
#[derive(Debug, Clone, Copy)]
pub enum Need<'a> {
    /// Any valid token.
    Nothing,
    /// The scopes `server.required_scopes` name for this path (`None`: the path is not
    /// known, so every scope of every rule).
    Path(Option<&'a [u8]>),
    /// One requirement.
    Scope(&'a Requirement),
    /// A service behind the portal (`[service.NAME]`): an API token needs its scopes (or,
    /// when it names none, the path's rules); a person must be in one of its groups (any
    /// person, when it names none).
    Service {
        /// The path's rules apply to tokens when `scopes` is `None`.
        path: Option<&'a [u8]>,
        /// What a token needs.
        scopes: Option<&'a Requirement>,
        /// Whose sessions get in.
        groups: &'a [String],
    },
}

/// When the failure rate limit is consulted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttle {
    /// Only once verification has failed: a correct secret is never refused because of
    /// it, and a throttled source gets the same 401 (a 429 would become a 500 in nginx).
    /// For proxies' subrequests and the reverse proxy.
    AfterFailure,
    /// Before verifying, so a client out of attempts is told to wait ([`Decision::Throttled`])
    /// without any verification work: for `/metrics`, in the same per-client bucket as
    /// `/auth`.
    First,
    /// As [`Throttle::First`], in a per-client bucket of the sign-in form's own: a script at
    /// the same address failing with a bad bearer token (which `/auth` and the proxy go on
    /// charging) must not keep the people there from signing in.
    Form,
}

/// One question for [`Verifier::judge`].
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    /// The credential presented.
    pub credential: Credential<'a>,
    /// What it must be good for.
    pub need: Need<'a>,
    /// For the audit line.
    pub ctx: Ctx<'a>,
    /// When the rate limit applies.
    pub throttle: Throttle,
    /// How a good credential is recorded: [`Outcome::Allow`], or [`Outcome::SignedIn`] for
    /// a sign-in.
    pub allow_as: Outcome,
    /// An allow is counted now but its audit line is written by the caller once the
    /// response's status is known ([`Verifier::log_allowed`]): the proxy's upstream may
    /// still answer 502.
    pub allow_logged_later: bool,
}

/// Who a request let through was, for [`Verifier::log_allowed`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Allowed<'a> {
    /// The token's id.
    pub token_id: Option<&'a str>,
    /// The token's name.
    pub token_name: Option<&'a str>,
    /// The local user, under the localhost bypass.
    pub local_user: Option<&'a str>,
    /// The person, for a person's session.
    pub user: Option<&'a str>,
}

/// The holder of a token that stands ([`Verifier::holder`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The token's name: who signed in.
    pub name: String,
    /// The token's scopes.
    pub scopes: Vec<String>,
    /// When it stops being accepted, if ever.
    pub expires: Option<OffsetDateTime>,
}

/// What was decided, for the caller to answer.
#[derive(Debug)]
pub enum Decision<'a> {
    /// Good for what was needed.
    Allow(Identity<'a>),
    /// No credentials at all.
    Missing,
    /// A bad credential (refused, perhaps throttled after failing): 401 with
    /// `error="invalid_token"`.
    Invalid,
    /// Not heard: the client used up its failed attempts ([`Throttle::First`] and
    /// [`Throttle::Form`] only).
    Throttled {
        /// When to try again.
        retry_after: Duration,
    },
    /// A good token without a scope the request needs: 403 with this challenge.
    InsufficientScope(&'a HeaderValue),
    /// A browser session's credential used from another origin for a state change or an
    /// upgrade: 403.
    CrossSite,
    /// A session whose token no longer stands (revoked, expired, past its rotation grace),
    /// or whose person was removed or disabled: the session must end, and the request goes
    /// on without it.
    SessionEnded,
    /// The store could not say (a person's session): refused with a 503, the session kept.
    Unavailable,
    /// A person's session at a service none of whose groups they are in: 403.
    NotInGroup,
}

/// Everything a request needs to be judged, shared by all connections.
pub struct Verifier {
    tokens: Tokens,
    metrics: Arc<Metrics>,
    audit: Audit,
    by_client: Option<Limiter>,
    by_id: Option<Limiter>,
    /// Failed sign-in forms, per client address.
    by_form: Option<Limiter>,
    /// Failed second factors, per person: [`people::FACTOR_BURST`] at once, one more per
    /// [`people::FACTOR_REFILL`].
    by_factor: Option<Limiter>,
    trusted: Vec<Cidr>,
    scopes: ScopeRules,
    clock: Clock,
    /// `Bearer realm="..."`.
    challenge: HeaderValue,
    /// `Bearer realm="...", error="invalid_token"`.
    challenge_invalid: HeaderValue,
    /// What `/metrics` requires of a token.
    metrics_scope: Requirement,
    /// keygate's own JWT access tokens, once the issuer is set up ([`Verifier::set_jwts`]).
    jwts: std::sync::OnceLock<jwt::Jwts>,
    /// How long the people's audit trail keeps a line.
    audit_retention: Duration,
    /// The people who sign in with passwords, once the store is open ([`Verifier::set_people`]).
    people: std::sync::OnceLock<Arc<kg_accounts::directory::Directory>>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier").finish_non_exhaustive()
    }
}

/// Metrics whose decision counters carry the verifier's outcomes.
pub fn metrics() -> Metrics {
    Metrics::new(Outcome::labels())
}

/// What a refusal is recorded as, worked out while the store is read-locked and written
/// once the caller has answered.
enum Note<'a> {
    /// Count and log `outcome`.
    Log {
        outcome: Outcome,
        id: Option<&'a str>,
        name: Option<&'a str>,
        /// The local user a bypass decision was for.
        local_user: Option<&'a str>,
        /// The person a decision was about.
        user: Option<&'a str>,
    },
    /// Throttled: counted, logged at most once a second per source.
    Throttled {
        id: Option<&'a str>,
        log: bool,
        suppressed: u32,
    },
}

impl Verifier {
    /// Assembles the verifier. `metrics` should come from [`metrics`].
    pub fn new(
        settings: &Settings,
        tokens: Tokens,
        metrics: Arc<Metrics>,
        audit: Audit,
    ) -> Verifier {
        let realm = &settings.realm;
        Verifier {
            tokens,
            metrics,
            audit,
            by_client: Limiter::new(settings.rate_limit_burst, settings.rate_limit_refill),
            by_id: Limiter::new(settings.rate_limit_burst, settings.rate_limit_refill),
            by_form: Limiter::new(settings.rate_limit_burst, settings.rate_limit_refill),
            by_factor: Limiter::new(people::FACTOR_BURST, people::FACTOR_REFILL),
            trusted: settings.trusted_proxies.clone(),
            scopes: settings.scopes.clone(),
            clock: settings.clock.clone(),
            // The realm was checked to be printable ASCII without quotes or backslashes.
            challenge: HeaderValue::from_str(&format!("Bearer realm=\"{realm}\""))
                .unwrap_or(HeaderValue::from_static("Bearer")),
            challenge_invalid: HeaderValue::from_str(&format!(
                "Bearer realm=\"{realm}\", error=\"invalid_token\""
            ))
            .unwrap_or(HeaderValue::from_static("Bearer error=\"invalid_token\"")),
            metrics_scope: scopes::single(METRICS_SCOPE, realm),
            jwts: std::sync::OnceLock::new(),
            people: std::sync::OnceLock::new(),
            audit_retention: settings.audit_retention,
        }
    }

    /// Accepts keygate's own JWT access tokens from now on, wherever API tokens are
    /// accepted (never on the sign-in form: a JWT is not a login). Set once.
    pub fn set_jwts(&self, jwts: jwt::Jwts) {
        let _ = self.jwts.set(jwts);
    }

    /// The JWT half, if set.
    pub fn jwts(&self) -> Option<&jwt::Jwts> {
        self.jwts.get()
    }

    /// Judges a JWT for introspection (RFC 7662): its claims while it is active. Nothing is
    /// counted or logged; the endpoint that asks does that.
    pub fn inspect_jwt(&self, token: &str) -> Option<Arc<jwt::Verified>> {
        self.check_jwt(self.jwts.get()?, token, self.clock.now())
            .ok()
    }

    /// Judges a JWT: [`jwt::Jwts::check`], then, for a person's token, that the API token
    /// they signed in with still stands, so revoking it ends their OAuth sign-ins at once.
    fn check_jwt(
        &self,
        jwts: &jwt::Jwts,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<Arc<jwt::Verified>, jwt::Refusal> {
        let v = jwts.check(token, now)?;
        if let Some(tid) = &v.claims.tid
            && !self.still_valid(tid)
        {
            return Err(jwt::Refusal::Revoked);
        }
        Ok(v)
    }

    /// The clock expiry is judged by (sign-in judges its sessions by it too).
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The token store.
    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    /// The audit log.
    pub fn audit(&self) -> &Audit {
        &self.audit
    }

    /// The proxies whose forwarding headers are believed.
    pub fn trusted(&self) -> &[Cidr] {
        &self.trusted
    }

    /// The challenge for a request without credentials: `Bearer realm="..."`.
    pub fn challenge(&self) -> &HeaderValue {
        &self.challenge
    }

    /// The challenge for a bad credential: `Bearer realm="...", error="invalid_token"`.
    pub fn challenge_invalid(&self) -> &HeaderValue {
        &self.challenge_invalid
    }

    /// The client address of a request from `peer` with `headers`.
    pub fn client<H: Headers + ?Sized>(&self, peer: IpAddr, headers: &H) -> IpAddr {
        kg_http::net::client_addr(peer.to_canonical(), headers, &self.trusted)
    }

    /// Judges `ask`, hands the decision to `respond` (an identity borrows the store, which
    /// stays read-locked meanwhile), then counts the outcome and writes its audit line with
    /// the status `respond` answered with.
    pub fn judge<R>(&self, ask: &Ask<'_>, respond: impl FnOnce(Decision<'_>) -> (R, u16)) -> R {
        let ctx = &ask.ctx;
        let ckey = client_key(ctx.client);
        let heard_first = match ask.throttle {
            Throttle::AfterFailure => None,
            Throttle::First => self.by_client.as_ref(),
            Throttle::Form => self.by_form.as_ref(),
        };
        if let Some(l) = heard_first
            && let Check::Throttled {
                retry_after,
                log,
                suppressed,
            } = l.check(ckey)
        {
            let (r, status) = respond(Decision::Throttled { retry_after });
            self.note(
                Note::Throttled {
                    id: None,
                    log,
                    suppressed,
                },
                status,
                ctx,
            );
            return r;
        }
        let token =
            match ask.credential {
                Credential::None => {
                    let (r, status) = respond(Decision::Missing);
                    self.note(Note::log(Outcome::Missing, None, None), status, ctx);
                    return r;
                }
                Credential::Malformed => {
                    let note = self.charge(kg_tokens::Reason::Malformed, None, ckey, ask.throttle);
                    let (r, status) = respond(Decision::Invalid);
                    self.note(note, status, ctx);
                    return r;
                }
                Credential::Session { token_id, foreign } => {
                    let now = self.clock.now();
                    return self
                        .tokens
                        .check_id(token_id, now, &self.metrics, |verdict| match verdict {
                            Verdict::Valid(info) => self.admit(ask, info, foreign, respond),
                            Verdict::Invalid(_) => {
                                let (r, status) = respond(Decision::SessionEnded);
                                self.note(
                                    Note::log(Outcome::SessionEnded, Some(token_id), None),
                                    status,
                                    ctx,
                                );
                                r
                            }
                        });
                }
                Credential::Person {
                    user_id,
                    foreign,
                    at,
                } => {
                    return self.judge_person(ask, user_id, foreign, at, respond);
                }
                Credential::Bearer(token) => token,
            };
        let now = self.clock.now();
        if let Some(jwts) = self.jwts.get()
            && jwt::looks_like_jwt(token)
        {
            let verdict = if ask.allow_as == Outcome::SignedIn {
                // A JWT is not a login: the sign-in form takes API tokens only.
                Err(jwt::Refusal::Jwt(kg_jose::JwtError::WrongType))
            } else {
                self.check_jwt(jwts, token, now)
            };
            return match verdict {
                Ok(v) => {
                    let info = kg_tokens::TokenInfo {
                        id: &v.claims.client_id,
                        name: &v.claims.sub,
                        scopes: &v.scopes,
                        expires: OffsetDateTime::from_unix_timestamp(v.claims.exp).ok(),
                    };
                    self.admit(ask, info, false, respond)
                }
                Err(refusal) => {
                    let note = self.charge(refusal.reason(), None, ckey, ask.throttle);
                    let (r, status) = respond(Decision::Invalid);
                    self.note(note, status, ctx);
                    r
                }
            };
        }
        self.tokens
            .verify(token, now, &self.metrics, |verdict| match verdict {
                Verdict::Valid(info) => self.admit(ask, info, false, respond),
                Verdict::Invalid(reason) => {
                    let note = self.charge(reason, token_id(token), ckey, ask.throttle);
                    let (r, status) = respond(Decision::Invalid);
                    self.note(note, status, ctx);
                    r
                }
            })
    }

    /// A token that verified: the scopes it needs, then (for a session) where it came from.
    fn admit<R>(
        &self,
        ask: &Ask<'_>,
        info: kg_tokens::TokenInfo<'_>,
        foreign: bool,
        respond: impl FnOnce(Decision<'_>) -> (R, u16),
    ) -> R {
        let need = self.token_need(ask.need);
        let (id, name) = (Some(info.id), Some(info.name));
        // A service that names groups and no scopes is for those people only: a token has
        // no groups, so it has no way in there.
        let for_people_only = matches!(
            ask.need,
            Need::Service { scopes: None, groups, .. } if !groups.is_empty()
        );
        let (decision, outcome) = match need {
            _ if for_people_only => (Decision::NotInGroup, Outcome::NotInGroup),
            Some(need) if !need.is_met_by(&info) => (
                Decision::InsufficientScope(&need.challenge),
                Outcome::InsufficientScope,
            ),
            // SameSite=Lax does not stop another port on this host (same site), so a
            // cookie-authenticated state change or WebSocket must come from our origin.
            _ if foreign => (Decision::CrossSite, Outcome::CrossSite),
            _ => (
                Decision::Allow(Identity {
                    name: info.name,
                    id: info.id,
                    scopes: info.scopes,
                    groups: &[],
                }),
                ask.allow_as,
            ),
        };
        let later = ask.allow_logged_later && outcome == ask.allow_as;
        let (r, status) = respond(decision);
        if later {
            self.metrics.decision(outcome.index());
        } else {
            self.note(Note::log(outcome, id, name), status, &ask.ctx);
        }
        r
    }

    /// What a token must have for `need`.
    fn token_need<'a>(&'a self, need: Need<'a>) -> Option<&'a Requirement> {
        match need {
            Need::Nothing => None,
            Need::Path(path) => self.scopes.for_path(path),
            Need::Scope(r) => Some(r),
            Need::Service {
                scopes: Some(r), ..
            } => Some(r),
            Need::Service { path, .. } => self.scopes.for_path(path),
        }
    }

    /// Charges the failure buckets for a refused credential and says how to record it. The
    /// limiter is consulted only once verification has failed (under
    /// [`Throttle::AfterFailure`]): token ids are public (listings, logs, the identity
    /// header), so a bucket checked before verification let anyone lock a token out by
    /// sending forged tokens with its id.
    fn charge<'a>(
        &self,
        reason: kg_tokens::Reason,
        id: Option<&'a str>,
        ckey: u128,
        throttle: Throttle,
    ) -> Note<'a> {
        // Only these reasons name a token that exists (or did); the id of anything else is
        // whatever the sender made up, and is not logged.
        let known_id = match reason {
            kg_tokens::Reason::Unknown
            | kg_tokens::Reason::Expired
            | kg_tokens::Reason::Revoked => id,
            _ => None,
        };
        // A well-formed token with a wrong secret spends from its id's bucket too.
        let bucket_id = if reason == kg_tokens::Reason::Unknown {
            id
        } else {
            None
        };
        match throttle {
            // Checked before verifying already: only charge.
            Throttle::First => self.by_client.iter().for_each(|l| l.fail(ckey)),
            Throttle::Form => self.by_form.iter().for_each(|l| l.fail(ckey)),
            // Check, then charge: a burst of N allows N failures before throttling.
            Throttle::AfterFailure => {
                if let Some(l) = &self.by_client
                    && let Check::Throttled {
                        log, suppressed, ..
                    } = l.check_and_fail(ckey)
                {
                    return Note::Throttled {
                        id: known_id,
                        log,
                        suppressed,
                    };
                }
            }
        }
        if let (Some(l), Some(id)) = (&self.by_id, bucket_id)
            && let Check::Throttled {
                log, suppressed, ..
            } = l.check_and_fail(id)
        {
            return Note::Throttled {
                id: Some(id),
                log,
                suppressed,
            };
        }
        Note::log(Outcome::Invalid(reason), known_id, None)
    }

    /// Counts an outcome another room decided without a credential (the localhost bypass,
    /// a CSRF refusal, a sign-out, an unreadable form) and writes its audit line: always
    /// for a denial, as `server.audit_allows` says for a request let through.
    pub fn record(&self, outcome: Outcome, status: u16, token_id: Option<&str>, ctx: &Ctx<'_>) {
        self.note(Note::log(outcome, token_id, None), status, ctx);
    }

    /// [`Verifier::record`] for a request under the localhost bypass: its audit line names
    /// the local user it was decided for (`"local_user"`).
    pub fn record_local(&self, outcome: Outcome, status: u16, user: &str, ctx: &Ctx<'_>) {
        let note = Note::Log {
            outcome,
            id: None,
            name: None,
            local_user: Some(user),
            user: None,
        };
        self.note(note, status, ctx);
    }

    /// Counts a request let through without a credential (the localhost bypass) whose
    /// audit line the caller writes once the response's status is known
    /// ([`Verifier::log_allowed`]).
    pub fn count(&self, outcome: Outcome) {
        self.metrics.decision(outcome.index());
    }

    /// The audit line of a request let through and counted earlier (an allow of an
    /// [`Ask`] with `allow_logged_later`, or [`Verifier::count`]), with the status the
    /// client got in the end, as `server.audit_allows` samples allows.
    pub fn log_allowed(&self, outcome: Outcome, status: u16, who: Allowed<'_>, ctx: &Ctx<'_>) {
        if outcome.sampled() && !self.audit.wants_allow() {
            return;
        }
        self.audit.log(&Entry {
            decision: outcome.decision(),
            reason: outcome.reason(),
            status,
            token_id: who.token_id,
            token_name: who.token_name,
            local_user: who.local_user,
            user: who.user,
            client: ctx.client,
            method: ctx.method,
            path: ctx.path,
            suppressed: 0,
            request_id: ctx.request_id,
        });
    }

    fn note(&self, note: Note<'_>, status: u16, ctx: &Ctx<'_>) {
        let (outcome, id, name, local_user, user, suppressed) = match note {
            Note::Log {
                outcome,
                id,
                name,
                local_user,
                user,
            } => (outcome, id, name, local_user, user, 0),
            Note::Throttled {
                id,
                log,
                suppressed,
            } => {
                self.metrics.decision(Outcome::Throttled.index());
                if !log {
                    return;
                }
                (Outcome::Throttled, id, None, None, None, suppressed)
            }
        };
        if outcome != Outcome::Throttled {
            self.metrics.decision(outcome.index());
        }
        if outcome.in_people_trail() {
            self.trail(outcome, user, ctx);
        }
        if outcome.sampled() && !self.audit.wants_allow() {
            return;
        }
        self.audit.log(&Entry {
            decision: outcome.decision(),
            reason: outcome.reason(),
            status,
            token_id: id,
            token_name: name,
            local_user,
            user,
            client: ctx.client,
            method: ctx.method,
            path: ctx.path,
            suppressed,
            request_id: ctx.request_id,
        });
    }

    /// Who holds the token with id `token_id`, while it still stands: for a page that
    /// shows who a session belongs to, and for what a person's sign-in may grant. Nothing
    /// is recorded. A [`people::person_ref`] names a person who signed in with a password:
    /// they stand while present and enabled, and hold the scopes their groups name.
    pub fn holder(&self, token_id: &str) -> Option<Holder> {
        if let Some(user_id) = token_id.strip_prefix(people::PERSON_PREFIX) {
            return self.person(user_id).map(|p| Holder {
                name: p.name.clone(),
                scopes: p.groups.clone(),
                expires: None,
            });
        }
        self.tokens
            .check_id(token_id, self.clock.now(), &self.metrics, |v| match v {
                Verdict::Valid(info) => Some(Holder {
                    name: info.name.to_owned(),
                    scopes: info.scopes.to_vec(),
                    expires: info.expires,
                }),
                Verdict::Invalid(_) => None,
            })
    }

    /// Whether the token with id `token_id` still stands: for a WebSocket tunnel, which
    /// makes no requests of its own and is judged again now and then. Nothing is recorded.
    pub fn still_valid(&self, token_id: &str) -> bool {
        if let Some(user_id) = token_id.strip_prefix(people::PERSON_PREFIX) {
            return self.person(user_id).is_some();
        }
        self.tokens
            .check_id(token_id, self.clock.now(), &self.metrics, |v| {
                matches!(v, Verdict::Valid(_))
            })
    }
}

impl Note<'_> {
    fn log<'a>(outcome: Outcome, id: Option<&'a str>, name: Option<&'a str>) -> Note<'a> {
        Note::Log {
            outcome,
            id,
            name,
            local_user: None,
            user: None,
        }
    }

    fn person<'a>(outcome: Outcome, user: Option<&'a str>) -> Note<'a> {
        Note::Log {
            outcome,
            id: None,
            name: None,
            local_user: None,
            user,
        }
    }
}
