//! Password reset by email: a person who forgot their password asks for a link, and the
//! link lets them choose a new one.
//!
//! - The request (`POST` [`RESET`] with a name or an address) always gets the same answer,
//!   whether or not anyone has that name, so it tells nobody who has an account; it spends
//!   one attempt from the form's per-client budget, so it cannot be used to flood a mailbox.
//! - The link holds 32 random bytes; the store keeps only their SHA-256, for
//!   [`RESET_LIFETIME`]; it works once, and using it ends every other link of that person
//!   and every session of theirs.
//! - The link's origin is the portal's, from the configuration (`server.portal_host`), never
//!   the request's `Host`, which the sender of the request chooses (a link to their own host
//!   would hand them the secret). Without a portal host there is no reset.
//! - The secret is in the link (mail has nothing else), so the page it opens sends no
//!   referrer, and keygate's logs never hold a query string.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use kg_verifier::Outcome;
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use crate::form::Form;
use crate::page::{escape, push_error};
use crate::{Body, Req, SIGN_IN, SignIn, set_cookie};

/// The reset pages.
pub const RESET: &str = "/.keygate/reset";
/// How long a reset link works.
pub const RESET_LIFETIME: Duration = Duration::from_secs(1800);
/// At most one reset link per person per this long, whoever asks and from where.
pub const RESET_COOLDOWN: Duration = Duration::from_secs(120);

const MSG_SENT: &str = "If that account has an email address, a link to choose a new password is on its way. It works once, for 30 minutes.";
const MSG_BAD_LINK: &str = "This link has expired or was used already. Ask for a new one.";

impl SignIn {
    /// Sends reset links through `mailer` from now on (when a portal host is configured).
    pub fn set_mailer(&self, mailer: kg_mail::Mailer) {
        let _ = self.mailer.set(Arc::new(mailer));
    }

    /// Whether the sign-in page offers a reset: people, a mailer and a portal host.
    pub(crate) fn offers_reset(&self) -> bool {
        self.mailer.get().is_some() && self.portal.get().is_some() && self.has_people()
    }

    fn reset_page(&self, r: &Req<'_>, status: StatusCode, body: &str) -> Response<Body> {
        let (csrf, fresh) = self.csrf_for(r);
        let body = body.replace("{csrf}", &escape(&csrf));
        // The link's secret is in this page's URL: no referrer, to anyone (the shell's meta
        // policy would otherwise send it to same-origin requests).
        let html = crate::page::shell("Reset your password", &body).replacen(
            "<meta name=\"referrer\" content=\"same-origin\">",
            "<meta name=\"referrer\" content=\"no-referrer\">",
            1,
        );
        let mut resp = self.html(status, html);
        if fresh {
            set_cookie(&mut resp, &SignIn::csrf_cookie(r.https, &csrf));
        }
        let h = resp.headers_mut();
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        resp
    }

    fn ask_form(&self, r: &Req<'_>, status: StatusCode, message: Option<&str>) -> Response<Body> {
        let mut b = String::from(
            "<h1>Reset your password</h1>\n<p class=\"sub\">Enter your name or email address; \
             a link to choose a new password goes to the address on your account.</p>\n",
        );
        push_error(&mut b, message.filter(|m| *m != MSG_SENT));
        if message == Some(MSG_SENT) {
            let _ = writeln!(b, "<p id=\"sent\" role=\"status\">{MSG_SENT}</p>");
        }
        let _ = write!(
            b,
            "<form id=\"reset-form\" method=\"post\" action=\"{RESET}\">\n\
             <input type=\"hidden\" name=\"csrf\" value=\"{{csrf}}\">\n\
             <label for=\"who\">Name or email address</label>\n\
             <input type=\"text\" id=\"who\" name=\"username\" autocomplete=\"username\" \
             autocapitalize=\"off\" spellcheck=\"false\" required autofocus>\n\
             <button type=\"submit\">Send the link</button>\n</form>\n\
             <p class=\"foot\"><a href=\"{SIGN_IN}\">Back to sign-in</a></p>\n"
        );
        self.reset_page(r, status, &b)
    }

    fn choose_form(
        &self,
        r: &Req<'_>,
        status: StatusCode,
        link: &str,
        message: Option<&str>,
    ) -> Response<Body> {
        let mut b = String::from("<h1>Choose a new password</h1>\n");
        push_error(&mut b, message);
        let _ = write!(
            b,
            "<form id=\"reset-form\" method=\"post\" action=\"{RESET}\">\n\
             <input type=\"hidden\" name=\"csrf\" value=\"{{csrf}}\">\n\
             <input type=\"hidden\" name=\"ticket\" value=\"{link}\">\n\
             <input type=\"hidden\" name=\"step\" value=\"reset\">\n\
             <label for=\"new_password\">New password</label>\n\
             <input type=\"password\" id=\"new_password\" name=\"new_password\" \
             autocomplete=\"new-password\" minlength=\"{min}\" required autofocus>\n\
             <label for=\"new_password_again\">The same again</label>\n\
             <input type=\"password\" id=\"new_password_again\" name=\"new_password_again\" \
             autocomplete=\"new-password\" minlength=\"{min}\" required>\n\
             <p class=\"hint\">At least {min} characters. Every browser signed in as you is \
             signed out.</p>\n<button type=\"submit\">Save</button>\n</form>\n",
            link = escape(link),
            min = kg_accounts::password::MIN_CHARS,
        );
        self.reset_page(r, status, &b)
    }

    /// GET on [`RESET`]: the request form, or, with `?t=` from a mail, the new-password form.
    pub(crate) fn reset_show(&self, r: &Req<'_>) -> Response<Body> {
        if !self.offers_reset() {
            return crate::status_only(StatusCode::NOT_FOUND);
        }
        let link = r.uri.query().and_then(|q| {
            form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "t")
                .map(|(_, v)| Zeroizing::new(v.into_owned()))
        });
        match link {
            None => self.ask_form(r, StatusCode::OK, None),
            Some(link) => match self.link_user(&link) {
                Some(_) => self.choose_form(r, StatusCode::OK, &link, None),
                None => self.ask_form(r, StatusCode::BAD_REQUEST, Some(MSG_BAD_LINK)),
            },
        }
    }

    fn link_digest(link: &str) -> Option<[u8; 32]> {
        let raw = URL_SAFE_NO_PAD.decode(link.trim()).ok()?;
        (raw.len() == 32).then(|| Sha256::digest(&raw).into())
    }

    fn link_user(&self, link: &str) -> Option<String> {
        let d = SignIn::link_digest(link)?;
        let store = self.verifier.people()?.store();
        store.reset_user(&d, self.now_ms()).ok().flatten()
    }

    /// POST on [`RESET`] (the CSRF pair checked already): a request for a link, or a new
    /// password with one.
    pub(crate) async fn reset_post(&self, r: &Req<'_>, form: &Form) -> Response<Body> {
        if !self.offers_reset() {
            return crate::status_only(StatusCode::NOT_FOUND);
        }
        if form.step.as_deref() == Some("reset") {
            return self.reset_choose(r, form).await;
        }
        if let Some(wait) = self.verifier.spend_reset_attempt(&r.ctx()) {
            let secs = wait.as_secs().max(1);
            let mut resp = self.ask_form(
                r,
                StatusCode::TOO_MANY_REQUESTS,
                Some(&format!("Too many requests. Try again in {secs} seconds.")),
            );
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            return resp;
        }
        let who = form
            .username
            .as_deref()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let (Some(people), Some(mailer), Some(portal)) = (
            self.verifier.people().cloned(),
            self.mailer.get().cloned(),
            self.portal.get(),
        ) else {
            return crate::status_only(StatusCode::NOT_FOUND);
        };
        let store = people.store().clone();
        let found = store.user_named(&who).ok().flatten().or_else(|| {
            store.users().ok().and_then(|all| {
                all.into_iter().find(|u| {
                    u.email
                        .as_deref()
                        .is_some_and(|e| e.eq_ignore_ascii_case(&who))
                })
            })
        });
        let now = self.now_ms();
        let due = |id: &str| {
            let mut sent = self.resets_sent.lock().unwrap_or_else(|e| e.into_inner());
            let cooldown = RESET_COOLDOWN.as_millis() as i64;
            sent.retain(|_, at| now - *at < cooldown);
            if sent.contains_key(id) {
                return false;
            }
            sent.insert(id.to_owned(), now);
            true
        };
        if let Some(user) = found.filter(|u| !u.disabled && u.email.is_some() && due(&u.id)) {
            let mut secret = Zeroizing::new([0u8; 32]);
            getrandom::fill(&mut secret[..])
                .expect("the operating system's random number generator");
            let link_secret = Zeroizing::new(URL_SAFE_NO_PAD.encode(&secret[..]));
            let digest: [u8; 32] = Sha256::digest(&secret[..]).into();
            let expires = now + RESET_LIFETIME.as_millis() as i64;
            let origin = self.origin_of(r, &portal.host);
            let link = Zeroizing::new(format!("{origin}{RESET}?t={}", link_secret.as_str()));
            let body = format!(
                "Someone asked to reset the password of {name} at {realm}.\n\n\
                 To choose a new password, open this link within 30 minutes:\n\n{link}\n\n\
                 It works once. If you did not ask, ignore this message: your password stays as \
                 it is.\n",
                name = user.name,
                realm = self.realm,
                link = link.as_str(),
            );
            let subject = format!("Reset your {} password", self.realm);
            let to = user.email.clone().unwrap_or_default();
            let user_id = user.id.clone();
            let person = kg_accounts::directory::Person {
                id: user.id.clone(),
                name: user.name.clone(),
                disabled: false,
                groups: Vec::new(),
                revision: user.revision,
            };
            let verifier = self.verifier.clone();
            let (client, method) = (r.client, r.method.as_str().to_owned());
            // Sent from a detached thread: the answer does not wait for the relay, so its
            // timing does not tell whether the account exists.
            drop(tokio::task::spawn_blocking(move || {
                let sent = store
                    .insert_reset(&digest, &user_id, expires, now)
                    .map_err(|e| e.to_string())
                    .and_then(|()| mailer.send(&to, &subject, &body).map_err(|e| e.to_string()));
                let ctx = kg_verifier::Ctx {
                    client,
                    method: &method,
                    path: Some(RESET.as_bytes()),
                    request_id: None,
                };
                match sent {
                    Ok(()) => verifier.record_person(Outcome::ResetSent, 200, &person, &ctx),
                    Err(e) => kg_http::log::error("reset_mail_failed", &[("error", (&e).into())]),
                }
            }));
        }
        // The same answer whoever was named.
        self.ask_form(r, StatusCode::OK, Some(MSG_SENT))
    }

    async fn reset_choose(&self, r: &Req<'_>, form: &Form) -> Response<Body> {
        let link = Zeroizing::new(
            form.ticket
                .as_deref()
                .map(|t| String::from_utf8_lossy(t).into_owned())
                .unwrap_or_default(),
        );
        let (new, again) = form.new_passwords();
        let Some(user_id) = self.link_user(&link) else {
            return self.ask_form(r, StatusCode::BAD_REQUEST, Some(MSG_BAD_LINK));
        };
        if *new != *again {
            return self.choose_form(
                r,
                StatusCode::BAD_REQUEST,
                &link,
                Some("The two new passwords differ."),
            );
        }
        let Ok(text) = String::from_utf8(new.to_vec()).map(Zeroizing::new) else {
            return self.choose_form(
                r,
                StatusCode::BAD_REQUEST,
                &link,
                Some("The new password is not text."),
            );
        };
        let Some(people) = self.verifier.people().cloned() else {
            return crate::status_only(StatusCode::SERVICE_UNAVAILABLE);
        };
        let name = people
            .store()
            .user(&user_id)
            .ok()
            .flatten()
            .map(|u| u.name)
            .unwrap_or_default();
        if let Err(e) = kg_accounts::password::check_new(&text, &name) {
            let msg = crate::page::sentence(&e.to_string());
            return self.choose_form(r, StatusCode::BAD_REQUEST, &link, Some(&msg));
        }
        // The link is spent first: of two submissions racing with it, one changes the password.
        let Some(digest) = SignIn::link_digest(&link) else {
            return self.ask_form(r, StatusCode::BAD_REQUEST, Some(MSG_BAD_LINK));
        };
        let now = self.now_ms();
        match people.store().take_reset(&digest, now) {
            Ok(Some(id)) if id == user_id => {}
            Ok(_) => return self.ask_form(r, StatusCode::BAD_REQUEST, Some(MSG_BAD_LINK)),
            Err(_) => return crate::status_only(StatusCode::SERVICE_UNAVAILABLE),
        }
        let changed =
            tokio::task::spawn_blocking(move || people.reset_password(&user_id, &text, now)).await;
        match changed {
            Ok(Ok(Ok(person))) => {
                self.verifier
                    .record_person(Outcome::PasswordReset, 303, &person, &r.ctx());
                let mut resp = self.see_other(SIGN_IN);
                if let Some(old) = self.session_of(r.headers, r.https) {
                    self.sessions.end(&old);
                }
                set_cookie(&mut resp, &SignIn::clear_session_cookie(r.https));
                resp
            }
            _ => crate::status_only(StatusCode::SERVICE_UNAVAILABLE),
        }
    }
}
