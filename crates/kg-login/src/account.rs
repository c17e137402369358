//! A person's own sessions: every browser signed in as them, which they can end from any
//! of them ([`SESSIONS`]). Each row is named by a short digest of its store key, never
//! anything a browser could present; ending one needs the viewing session's own CSRF value,
//! and only the person's own sessions can be ended.

use std::fmt::Write as _;

use hyper::{Response, StatusCode};
use kg_verifier::Outcome;
use sha2::{Digest as _, Sha256};

use crate::form::Form;
use crate::page::{escape, push_error};
use crate::{Body, Req, SIGN_IN, SignIn};

/// The page of a person's sessions.
pub const SESSIONS: &str = "/.keygate/sessions";

/// The name a session row has on the page: 16 hex digits of a hash of its store key.
fn row_name(digest: &[u8; 32]) -> String {
    let h = Sha256::digest([&b"keygate session row\0"[..], digest].concat());
    h[..8].iter().map(|b| format!("{b:02x}")).collect()
}

fn when(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute] UTC"
            ))
            .ok()
        })
        .unwrap_or_default()
}

impl SignIn {
    /// GET on [`SESSIONS`].
    pub(crate) fn sessions_page(&self, r: &Req<'_>, message: Option<&str>) -> Response<Body> {
        // The portal's session (or the one upstream's), not a service's: a service host's
        // page could otherwise reach every other session of the person.
        let Some(me) = self
            .session_of(r.headers, r.https)
            .filter(|s| s.service.is_none())
        else {
            return self.see_other(&format!("{SIGN_IN}?next=%2F.keygate%2Fsessions"));
        };
        let person = me
            .user_id
            .as_deref()
            .and_then(|id| self.verifier.person(id));
        let (Some(person), Some(people)) = (person, self.verifier.people()) else {
            return self.see_other(SIGN_IN);
        };
        let Ok(all) = people.store().sessions_of_user(&person.id) else {
            return crate::status_only(StatusCode::SERVICE_UNAVAILABLE);
        };
        let mine = me.digest();
        let mut b = String::with_capacity(4096);
        let _ = write!(
            b,
            "<h1>Your sessions</h1>\n<p class=\"sub\">Browsers signed in as <strong>{}</strong>. \
             End any you do not recognise.</p>\n",
            escape(&person.name)
        );
        push_error(&mut b, message);
        b.push_str("<ul class=\"sessions\">\n");
        for s in &all {
            let this = s.digest == mine;
            let _ = write!(
                b,
                "<li><form method=\"post\" action=\"{SESSIONS}\">\n\
                 <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\n\
                 <input type=\"hidden\" name=\"step\" value=\"{row}\">\n\
                 <p><strong>{what}</strong>{this}<br><span class=\"hint\">began {began}, last \
                 used {used}</span></p>\n\
                 <button type=\"submit\" class=\"secondary\" id=\"end-{row}\">End</button>\n\
                 </form></li>\n",
                csrf = escape(me.csrf()),
                row = row_name(&s.digest),
                what = s
                    .service
                    .as_deref()
                    .map_or_else(|| "Portal".to_owned(), escape),
                this = if this { " (this browser)" } else { "" },
                began = when(s.created),
                used = when(s.used),
            );
        }
        b.push_str("</ul>\n");
        let mut resp = self.page(StatusCode::OK, "Your sessions", &b);
        resp.headers_mut().insert(
            hyper::header::CACHE_CONTROL,
            hyper::header::HeaderValue::from_static("no-store"),
        );
        resp
    }

    /// POST on [`SESSIONS`]: ends one of the person's sessions.
    pub(crate) fn end_own_session(&self, r: &Req<'_>, form: &Form) -> Response<Body> {
        let Some(me) = self
            .session_of(r.headers, r.https)
            .filter(|s| s.service.is_none())
        else {
            return self.see_other(SIGN_IN);
        };
        let own_csrf: bool = subtle::ConstantTimeEq::ct_eq(
            form.csrf.as_deref().unwrap_or("").as_bytes(),
            me.csrf().as_bytes(),
        )
        .into();
        if self.cross_site(r.headers, r.uri) || !own_csrf {
            self.record(r, Outcome::Csrf, StatusCode::FORBIDDEN, None);
            return crate::status_only(StatusCode::FORBIDDEN);
        }
        let (Some(user_id), Some(people)) = (me.user_id.as_deref(), self.verifier.people()) else {
            return self.see_other(SIGN_IN);
        };
        let row = form.step.as_deref().unwrap_or("");
        let Ok(all) = people.store().sessions_of_user(user_id) else {
            return crate::status_only(StatusCode::SERVICE_UNAVAILABLE);
        };
        let Some(target) = all.iter().find(|s| row_name(&s.digest) == row) else {
            return self.sessions_page(r, Some("That session has ended already."));
        };
        if people.store().end_session(&target.digest).is_err() {
            return crate::status_only(StatusCode::SERVICE_UNAVAILABLE);
        }
        if target.digest == me.digest() {
            let mut resp = self.see_other(SIGN_IN);
            crate::set_cookie(&mut resp, &SignIn::clear_session_cookie(r.https));
            return resp;
        }
        self.see_other(SESSIONS)
    }
}
