//! A person's sign-in: name and password, then a TOTP or recovery code when they have a
//! second factor, then a new password when theirs is temporary; then a session.
//!
//! Between the steps the browser holds a short-lived pending cookie (`__Host-keygate_pending`
//! on HTTPS): the step it is at, the person's id and record revision, and an expiry, under an
//! HMAC of the process key with a label of its own. It grants nothing but the next step's
//! form, dies with any change to the person (a new password, disabling), and is cleared when
//! the session begins. The session is always new: any session the browser brought is ended
//! first, so a session id planted before sign-in never becomes a signed-in one (session
//! fixation).
//!
//! Every check is the verifier's (`judge_password`, `judge_second_factor`): one Argon2
//! verification whatever the name, one message for every refusal, the form's limiter per
//! client address.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use kg_accounts::directory::Person;
use kg_verifier::people::{FactorDecision, PasswordDecision};
use kg_verifier::{Ctx, Outcome};
use zeroize::Zeroizing;

use crate::form::Form;
use crate::page::{self, escape, push_error};
use crate::{
    Body, Req, SIGN_IN, SignIn, clear_plain_leftovers, continues_to_an_application, cookie,
    cookie_values, safe_next, set_cookie,
};

pub(crate) const PENDING_COOKIE_SECURE: &str = "__Host-keygate_pending";
pub(crate) const PENDING_COOKIE_PLAIN: &str = "keygate_pending";
const PENDING_LABEL: &[u8] = b"keygate sign-in pending v1\0";
/// How long the steps after a password may take.
pub const PENDING_MAX_AGE: Duration = Duration::from_secs(300);
const TAG_LEN: usize = 32;

const MSG_REFUSED: &str = "That name and password were not accepted.";
const MSG_CODE_REFUSED: &str =
    "That code was not accepted. Codes work once; wait for the next one.";
const MSG_MISMATCH: &str = "The two new passwords differ.";
const MSG_EXPIRED: &str = "This sign-in took too long. Please start again.";
const MSG_UNAVAILABLE: &str = "Sign-in is unavailable right now. Please try again shortly.";

/// The step a pending sign-in is at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Totp = 1,
    Change = 2,
}

struct Pending {
    step: Step,
    user_id: String,
    revision: i64,
    /// Whether a new password comes after the code.
    then_change: bool,
    /// When it stops working: set when the password is accepted and kept by every later
    /// cookie of the same sign-in, so that wrong codes never extend it.
    expires: Option<i64>,
}

fn pending_name(https: bool) -> &'static str {
    if https {
        PENDING_COOKIE_SECURE
    } else {
        PENDING_COOKIE_PLAIN
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl SignIn {
    pub(crate) fn now_ms(&self) -> i64 {
        (self.verifier.clock().now().unix_timestamp_nanos() / 1_000_000) as i64
    }

    fn seal_pending(&self, p: &Pending) -> String {
        let mut raw = Vec::with_capacity(18 + p.user_id.len() + TAG_LEN);
        raw.push(p.step as u8);
        raw.push(u8::from(p.then_change));
        let expires = p
            .expires
            .unwrap_or_else(|| self.now_ms() + millis(PENDING_MAX_AGE));
        raw.extend_from_slice(&expires.to_be_bytes());
        raw.extend_from_slice(&p.revision.to_be_bytes());
        raw.extend_from_slice(p.user_id.as_bytes());
        let tag = self.sessions.key().tag(PENDING_LABEL, &raw);
        raw.extend_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(raw)
    }

    fn open_pending(&self, r: &Req<'_>) -> Option<Pending> {
        cookie_values(r.headers, pending_name(r.https)).find_map(|v| self.open_pending_value(v))
    }

    /// A pending cookie's contents, when its HMAC matches and it has not expired.
    fn open_pending_value(&self, v: &str) -> Option<Pending> {
        {
            if v.len() > 512 {
                return None;
            }
            let raw = URL_SAFE_NO_PAD.decode(v).ok()?;
            if raw.len() < 18 + TAG_LEN {
                return None;
            }
            let (body, tag) = raw.split_at(raw.len() - TAG_LEN);
            let mut mac = self.sessions.key().mac(PENDING_LABEL);
            hmac::Mac::update(&mut mac, body);
            hmac::Mac::verify_slice(mac, tag).ok()?;
            let expires = i64::from_be_bytes(body[2..10].try_into().ok()?);
            if self.now_ms() >= expires {
                return None;
            }
            let step = match body[0] {
                1 => Step::Totp,
                2 => Step::Change,
                _ => return None,
            };
            Some(Pending {
                step,
                expires: Some(expires),
                then_change: body[1] == 1,
                revision: i64::from_be_bytes(body[10..18].try_into().ok()?),
                user_id: String::from_utf8(body[18..].to_vec()).ok()?,
            })
        }
    }

    /// For the `signed_values` fuzz target: a pending cookie value for `user_id`.
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn testing_seal_pending(&self, user_id: &str) -> String {
        self.seal_pending(&Pending {
            step: Step::Totp,
            user_id: user_id.to_owned(),
            revision: 1,
            then_change: false,
            expires: None,
        })
    }

    /// For the `signed_values` fuzz target: the user id a pending cookie value opens to.
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn testing_open_pending(&self, v: &str) -> Option<String> {
        self.open_pending_value(v).map(|p| p.user_id)
    }

    /// Whether the sign-in page offers names and passwords (the store holds people).
    pub(crate) fn has_people(&self) -> bool {
        self.verifier.people().is_some_and(|d| d.anyone())
    }

    /// POST of the name-and-password form (the CSRF pair checked already).
    pub(crate) async fn sign_in_password(&self, r: &Req<'_>, form: &Form) -> Response<Body> {
        let next = safe_next(form.next.as_deref().unwrap_or("/")).to_owned();
        let name = form.username.as_deref().unwrap_or("").trim().to_owned();
        let password = Zeroizing::new(form.password.as_deref().cloned().unwrap_or_default());
        if name.is_empty() || password.is_empty() {
            return self.password_form(
                r,
                StatusCode::UNAUTHORIZED,
                &next,
                &name,
                Some(MSG_REFUSED),
            );
        }
        // Argon2 takes tens of milliseconds of a core: on a blocking thread.
        let verifier = self.verifier.clone();
        let (client, method) = (r.client, r.method.as_str().to_owned());
        let now_ms = self.now_ms();
        let who = name.clone();
        let decision = tokio::task::spawn_blocking(move || {
            let ctx = Ctx {
                client,
                method: &method,
                path: Some(SIGN_IN.as_bytes()),
                request_id: None,
            };
            verifier.judge_password(&ctx, &who, &password, now_ms)
        })
        .await
        .unwrap_or(PasswordDecision::Unavailable);
        match decision {
            PasswordDecision::SignedIn(person) => self.begin_person(r, &person, &next),
            PasswordDecision::Continue {
                person,
                second_factor,
                must_change,
            } => {
                let p = Pending {
                    step: if second_factor {
                        Step::Totp
                    } else {
                        Step::Change
                    },
                    user_id: person.id.clone(),
                    revision: person.revision,
                    then_change: second_factor && must_change,
                    expires: None,
                };
                self.step_page(r, &p, &person.name, &next, StatusCode::OK, None)
            }
            PasswordDecision::Refused => {
                self.password_form(r, StatusCode::UNAUTHORIZED, &next, &name, Some(MSG_REFUSED))
            }
            PasswordDecision::Throttled(wait) => {
                let secs = wait.as_secs().max(1);
                let msg = format!("Too many failed attempts. Try again in {secs} seconds.");
                let mut resp =
                    self.password_form(r, StatusCode::TOO_MANY_REQUESTS, &next, &name, Some(&msg));
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
                resp
            }
            PasswordDecision::Unavailable => self.password_form(
                r,
                StatusCode::SERVICE_UNAVAILABLE,
                &next,
                &name,
                Some(MSG_UNAVAILABLE),
            ),
        }
    }

    /// POST of a later step: the code, or the new password.
    pub(crate) async fn sign_in_step(&self, r: &Req<'_>, form: &Form) -> Response<Body> {
        let next = safe_next(form.next.as_deref().unwrap_or("/")).to_owned();
        let asked = form.step.as_deref().unwrap_or("");
        let pending = self.open_pending(r).filter(|p| {
            matches!(
                (p.step, asked),
                (Step::Totp, "totp") | (Step::Change, "change")
            )
        });
        let person = pending
            .as_ref()
            .and_then(|p| self.verifier.person(&p.user_id))
            .filter(|person| {
                pending
                    .as_ref()
                    .is_some_and(|p| p.revision == person.revision)
            });
        let (Some(p), Some(person)) = (pending, person) else {
            return self.password_form(r, StatusCode::UNAUTHORIZED, &next, "", Some(MSG_EXPIRED));
        };
        match p.step {
            Step::Totp => {
                let code = form
                    .code
                    .as_deref()
                    .map(|c| String::from_utf8_lossy(c).into_owned());
                let code = Zeroizing::new(code.unwrap_or_default());
                let now = self.verifier.clock().now().unix_timestamp().max(0) as u64;
                match self
                    .verifier
                    .judge_second_factor(&r.ctx(), &person, &code, now)
                {
                    FactorDecision::Good { .. } if p.then_change => {
                        let change = Pending {
                            step: Step::Change,
                            ..p
                        };
                        self.step_page(r, &change, &person.name, &next, StatusCode::OK, None)
                    }
                    FactorDecision::Good { .. } => {
                        self.verifier
                            .record_person(Outcome::SignedIn, 303, &person, &r.ctx());
                        self.begin_person(r, &person, &next)
                    }
                    FactorDecision::Refused => self.step_page(
                        r,
                        &p,
                        &person.name,
                        &next,
                        StatusCode::UNAUTHORIZED,
                        Some(MSG_CODE_REFUSED),
                    ),
                    FactorDecision::Throttled(wait) => {
                        let secs = wait.as_secs().max(1);
                        let msg = format!("Too many failed attempts. Try again in {secs} seconds.");
                        let mut resp = self.step_page(
                            r,
                            &p,
                            &person.name,
                            &next,
                            StatusCode::TOO_MANY_REQUESTS,
                            Some(&msg),
                        );
                        resp.headers_mut()
                            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
                        resp
                    }
                    FactorDecision::Unavailable => self.step_page(
                        r,
                        &p,
                        &person.name,
                        &next,
                        StatusCode::SERVICE_UNAVAILABLE,
                        Some(MSG_UNAVAILABLE),
                    ),
                }
            }
            Step::Change => {
                let (new, again) = form.new_passwords();
                if *new != *again {
                    return self.step_page(
                        r,
                        &p,
                        &person.name,
                        &next,
                        StatusCode::BAD_REQUEST,
                        Some(MSG_MISMATCH),
                    );
                }
                let Ok(text) = String::from_utf8(new.to_vec()).map(Zeroizing::new) else {
                    return self.step_page(
                        r,
                        &p,
                        &person.name,
                        &next,
                        StatusCode::BAD_REQUEST,
                        Some("The new password is not text."),
                    );
                };
                let Some(people) = self.verifier.people().cloned() else {
                    return self.password_form(
                        r,
                        StatusCode::SERVICE_UNAVAILABLE,
                        &next,
                        "",
                        Some(MSG_UNAVAILABLE),
                    );
                };
                let (id, revision, now_ms) = (person.id.clone(), person.revision, self.now_ms());
                let changed = tokio::task::spawn_blocking(move || {
                    people.change_password(&id, revision, &text, now_ms)
                })
                .await;
                match changed {
                    Ok(Ok(Ok(person))) => {
                        self.verifier
                            .record_person(Outcome::SignedIn, 303, &person, &r.ctx());
                        self.begin_person(r, &person, &next)
                    }
                    Ok(Ok(Err(weak))) => {
                        let msg = crate::page::sentence(&weak.to_string());
                        self.step_page(
                            r,
                            &p,
                            &person.name,
                            &next,
                            StatusCode::BAD_REQUEST,
                            Some(&msg),
                        )
                    }
                    _ => self.password_form(
                        r,
                        StatusCode::SERVICE_UNAVAILABLE,
                        &next,
                        "",
                        Some(MSG_UNAVAILABLE),
                    ),
                }
            }
        }
    }

    /// A new session for `person` (ending whatever session the browser brought), and on to
    /// `next`.
    fn begin_person(&self, r: &Req<'_>, person: &Arc<Person>, next: &str) -> Response<Body> {
        if let Some(old) = self.session_of(r.headers, r.https) {
            self.sessions.end(&old);
        }
        let new = match self.sessions.create_for_person(&person.id, None) {
            Ok(new) => new,
            Err(_) => {
                return self.password_form(
                    r,
                    StatusCode::SERVICE_UNAVAILABLE,
                    next,
                    &person.name,
                    Some(MSG_UNAVAILABLE),
                );
            }
        };
        let mut resp = if continues_to_an_application(next) {
            self.continue_page(next)
        } else {
            self.see_other(next)
        };
        set_cookie(&mut resp, &self.session_cookie(r.https, &new.cookie_value));
        set_cookie(&mut resp, &SignIn::clear_csrf_cookie(r.https));
        set_cookie(&mut resp, &cookie(r.https, pending_name(r.https), "", 0));
        clear_plain_leftovers(&mut resp, r);
        resp
    }

    /// The name-and-password form (with the token form folded beneath it).
    pub(crate) fn password_form(
        &self,
        r: &Req<'_>,
        status: StatusCode,
        next: &str,
        name: &str,
        error: Option<&str>,
    ) -> Response<Body> {
        let mut resp = self.form_response_with(status, r, next, error, name);
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, self.verifier.challenge().clone());
        }
        set_cookie(&mut resp, &cookie(r.https, pending_name(r.https), "", 0));
        resp
    }

    /// The page of the next step, with a fresh pending cookie for it.
    fn step_page(
        &self,
        r: &Req<'_>,
        p: &Pending,
        name: &str,
        next: &str,
        status: StatusCode,
        error: Option<&str>,
    ) -> Response<Body> {
        let csrf = self.csrf_for(r);
        let realm = escape(&self.realm);
        let mut b = String::with_capacity(2048);
        let described = if error.is_some() {
            " aria-describedby=\"error\" aria-invalid=\"true\""
        } else {
            ""
        };
        let (title, body) = match p.step {
            Step::Totp => (
                "Two-step verification",
                format!(
                    "<label for=\"code\">Code from your authenticator app</label>\n\
                     <input type=\"text\" id=\"code\" name=\"code\" inputmode=\"numeric\" \
                     autocomplete=\"one-time-code\" autocapitalize=\"off\" spellcheck=\"false\" \
                     maxlength=\"32\" required autofocus{described}>\n\
                     <p class=\"hint\">Lost your device? Enter one of your recovery codes instead.</p>\n\
                     <button type=\"submit\">Verify</button>\n"
                ),
            ),
            Step::Change => (
                "Choose a new password",
                format!(
                    "<input type=\"text\" name=\"username\" value=\"{user}\" autocomplete=\"username\" hidden>\n\
                     <label for=\"new_password\">New password</label>\n\
                     <input type=\"password\" id=\"new_password\" name=\"new_password\" \
                     autocomplete=\"new-password\" minlength=\"{min}\" required autofocus{described}>\n\
                     <label for=\"new_password_again\">The same again</label>\n\
                     <input type=\"password\" id=\"new_password_again\" name=\"new_password_again\" \
                     autocomplete=\"new-password\" minlength=\"{min}\" required>\n\
                     <p class=\"hint\">At least {min} characters. A few words make a good one.</p>\n\
                     <button type=\"submit\">Save and sign in</button>\n",
                    user = escape(name),
                    min = kg_accounts::password::MIN_CHARS,
                ),
            ),
        };
        let step = match p.step {
            Step::Totp => "totp",
            Step::Change => "change",
        };
        let sub = match p.step {
            Step::Totp => format!("Signing in as <strong>{}</strong>.", escape(name)),
            Step::Change => format!(
                "<strong>{}</strong>, your password is temporary: choose your own to continue.",
                escape(name)
            ),
        };
        let _ = write!(b, "<h1>{title}</h1>\n<p class=\"sub\">{sub}</p>\n");
        push_error(&mut b, error);
        let _ = write!(
            b,
            "<form id=\"step-form\" method=\"post\" action=\"{SIGN_IN}\">\n\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\n\
             <input type=\"hidden\" name=\"next\" value=\"{next}\">\n\
             <input type=\"hidden\" name=\"step\" value=\"{step}\">\n{body}</form>\n",
            csrf = escape(&csrf.0),
            next = escape(next),
        );
        let mut resp = self.html(status, page::shell(&format!("{title} \u{b7} {realm}"), &b));
        if csrf.1 {
            set_cookie(&mut resp, &SignIn::csrf_cookie(r.https, &csrf.0));
        }
        set_cookie(
            &mut resp,
            &cookie(
                r.https,
                pending_name(r.https),
                &self.seal_pending(p),
                PENDING_MAX_AGE.as_secs(),
            ),
        );
        clear_plain_leftovers(&mut resp, r);
        resp
    }
}
