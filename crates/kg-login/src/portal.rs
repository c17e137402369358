//! The portal: one sign-in in front of several services, each on a host of its own.
//!
//! A person signs in on the portal host (`server.portal_host`) and sees, on its landing
//! page ([`PORTAL`]), the services whose groups they are in. Each entry is a form that posts a
//! one-time launch ticket to that service's host ([`ENTER`]), which checks it and sets a
//! session cookie of its own: host-only (`__Host-` on HTTPS), so the browser never sends
//! one service's credential to another, and keygate never forwards its cookies upstream.
//! The ticket travels in a form body, never a URL (no log, history or `Referer` sees it).
//!
//! A ticket is the person's id, the service's name, an expiry ([`TICKET_LIFETIME`]) and a
//! random nonce, under an HMAC of the process key with a label of its own; the service host
//! takes it only from the portal's origin (`Origin`), for itself, before it expires, once
//! (its digest is spent in the store), and only while the person may still enter.

use std::fmt::Write as _;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use kg_verifier::Outcome;
use kg_verifier::people::may_enter;
use sha2::{Digest as _, Sha256};

use crate::form::Form;
use crate::page::{escape, push_error};
use crate::{Body, Req, SIGN_IN, SignIn, set_cookie};

/// The portal's landing page: the services the person may enter.
pub const PORTAL: &str = "/.keygate/";
/// Where a service host takes a launch ticket.
pub const ENTER: &str = "/.keygate/enter";
/// How long a launch ticket on a landing page stays good.
pub const TICKET_LIFETIME: Duration = Duration::from_secs(600);
const TICKET_LABEL: &[u8] = b"keygate launch ticket v1\0";
const TAG_LEN: usize = 32;
const NONCE_LEN: usize = 16;

/// A service behind the portal, as the portal needs it.
#[derive(Debug, Clone)]
pub struct PortalService {
    /// Its name (`[service.NAME]`).
    pub name: String,
    /// The host it answers for.
    pub host: String,
    /// Who may enter (anyone signed in when empty).
    pub groups: Vec<String>,
    /// What the landing page says it is.
    pub description: Option<String>,
}

/// The portal's settings.
#[derive(Debug, Clone)]
pub struct Portal {
    /// The portal's host name.
    pub host: String,
    /// The services.
    pub services: Vec<PortalService>,
}

struct Ticket {
    user_id: String,
    service: String,
    expires: i64,
    /// The person's record revision when it was made: a new password, disabling or any
    /// other change to them ends it.
    revision: i64,
    /// The portal session it was made in: signing out there ends it.
    session: [u8; 32],
}

/// The host name of a `Host` value, lower-cased.
fn host_name(host: &str) -> String {
    kg_http::net::host_name(host).to_ascii_lowercase()
}

impl SignIn {
    /// The portal, when configured.
    fn portal(&self) -> Option<&Portal> {
        self.portal.get()
    }

    /// Serves the portal: its landing page and, on a service host, a launch ticket.
    pub fn set_portal(&self, portal: Portal) {
        let _ = self.portal.set(portal);
    }

    /// The `Host` of the request, when it names one.
    fn request_host<'a>(&self, r: &Req<'a>) -> Option<&'a str> {
        r.headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .or_else(|| r.uri.authority().map(|a| a.as_str()))
    }

    /// The origin a browser gives `host` (this request's scheme and port).
    pub(crate) fn origin_of(&self, r: &Req<'_>, host: &str) -> String {
        let scheme = if r.https { "https" } else { "http" };
        let port = self
            .request_host(r)
            .map(kg_http::net::host_port)
            .unwrap_or("");
        format!("{scheme}://{host}{port}")
    }

    fn mint_ticket(
        &self,
        user_id: &str,
        revision: i64,
        session: &[u8; 32],
        service: &str,
    ) -> String {
        let expires = self.now_ms() + TICKET_LIFETIME.as_millis() as i64;
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).expect("the operating system's random number generator");
        let mut raw = Vec::with_capacity(104 + service.len() + user_id.len());
        raw.push(2u8);
        raw.extend_from_slice(&expires.to_be_bytes());
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(&revision.to_be_bytes());
        raw.extend_from_slice(session);
        raw.push(service.len() as u8);
        raw.extend_from_slice(service.as_bytes());
        raw.extend_from_slice(user_id.as_bytes());
        let tag = self.sessions.key().tag(TICKET_LABEL, &raw);
        raw.extend_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// The ticket's contents when its HMAC matches; the digest it is spent under.
    fn open_ticket(&self, text: &[u8]) -> Option<(Ticket, [u8; 32])> {
        if text.len() > 1024 {
            return None;
        }
        let raw = URL_SAFE_NO_PAD.decode(text).ok()?;
        if raw.len() < 1 + 8 + NONCE_LEN + 8 + 32 + 1 + TAG_LEN {
            return None;
        }
        let (body, tag) = raw.split_at(raw.len() - TAG_LEN);
        let mut mac = self.sessions.key().mac(TICKET_LABEL);
        hmac::Mac::update(&mut mac, body);
        hmac::Mac::verify_slice(mac, tag).ok()?;
        if body[0] != 2 {
            return None;
        }
        let expires = i64::from_be_bytes(body[1..9].try_into().ok()?);
        let at = 9 + NONCE_LEN;
        let revision = i64::from_be_bytes(body[at..at + 8].try_into().ok()?);
        let session: [u8; 32] = body[at + 8..at + 40].try_into().ok()?;
        let rest = &body[at + 40..];
        let n = usize::from(*rest.first()?);
        let service = std::str::from_utf8(rest.get(1..1 + n)?).ok()?.to_owned();
        let user_id = std::str::from_utf8(rest.get(1 + n..)?).ok()?.to_owned();
        Some((
            Ticket {
                user_id,
                service,
                expires,
                revision,
                session,
            },
            Sha256::digest(body).into(),
        ))
    }

    /// For the `signed_values` fuzz target: a ticket, and what a text opens to.
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn testing_mint_ticket(&self, user_id: &str, service: &str) -> String {
        self.mint_ticket(user_id, 1, &[7; 32], service)
    }

    /// For the `signed_values` fuzz target: the (user id, service) a text opens to.
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn testing_open_ticket(&self, text: &[u8]) -> Option<(String, String)> {
        self.open_ticket(text).map(|(t, _)| (t.user_id, t.service))
    }

    /// GET on [`PORTAL`]: the services the signed-in person may enter.
    pub(crate) fn landing(&self, r: &Req<'_>) -> Response<Body> {
        let Some(portal) = self.portal() else {
            return crate::status_only(StatusCode::NOT_FOUND);
        };
        let here = self.request_host(r).map(host_name);
        if here.as_deref() != Some(portal.host.as_str()) {
            return crate::status_only(StatusCode::NOT_FOUND);
        }
        let portal_session = self
            .session_of(r.headers, r.https)
            .filter(|s| s.service.is_none());
        let person = portal_session
            .as_ref()
            .and_then(|s| s.user_id.clone())
            .and_then(|id| self.verifier.person(&id));
        let (Some(person), Some(portal_session)) = (person, portal_session) else {
            return self.see_other(&format!("{SIGN_IN}?next=%2F.keygate%2F"));
        };
        let realm = escape(&self.realm);
        let mut b = String::with_capacity(4096);
        let _ = write!(
            b,
            "<h1>Your services</h1>\n<p class=\"sub\">Signed in to {realm} as <strong>{}</strong>.</p>\n",
            escape(&person.name)
        );
        let mine: Vec<&PortalService> = portal
            .services
            .iter()
            .filter(|s| may_enter(&person, &s.groups))
            .collect();
        let mut sources = Vec::new();
        if mine.is_empty() {
            push_error(
                &mut b,
                Some("No service is open to you yet. Ask an administrator to add you to a group."),
            );
        } else {
            b.push_str("<ul class=\"services\">\n");
            for s in &mine {
                let origin = self.origin_of(r, &s.host);
                let ticket = self.mint_ticket(
                    &person.id,
                    person.revision,
                    &portal_session.digest(),
                    &s.name,
                );
                let _ = write!(
                    b,
                    "<li><form method=\"post\" action=\"{origin}{ENTER}\">\n\
                     <input type=\"hidden\" name=\"ticket\" value=\"{ticket}\">\n\
                     <button type=\"submit\" id=\"open-{name}\">{name}</button>\n\
                     {desc}</form></li>\n",
                    origin = escape(&origin),
                    name = escape(&s.name),
                    desc = s
                        .description
                        .as_deref()
                        .map(|d| format!("<p class=\"hint\">{}</p>\n", escape(d)))
                        .unwrap_or_default(),
                );
                sources.push(origin);
            }
            b.push_str("</ul>\n");
        }
        let _ = writeln!(
            b,
            "<p class=\"hint\"><a id=\"sessions\" href=\"{}\">Your sessions</a></p>",
            crate::SESSIONS
        );
        if let Some(s) = self.session_of(r.headers, r.https) {
            let _ = write!(
                b,
                "<form id=\"sign-out-form\" method=\"post\" action=\"{}\">\n\
                 <input type=\"hidden\" name=\"csrf\" value=\"{}\">\n\
                 <button type=\"submit\" id=\"sign-out\" class=\"secondary\">Sign out</button>\n\
                 </form>\n",
                crate::SIGN_OUT,
                escape(s.csrf())
            );
        }
        // Under the pages' `same-origin` referrer policy a cross-origin POST says `Origin:
        // null`; the service host takes a ticket only from the portal's origin, so this
        // page's policy names it (the origin only, never a path).
        let html = crate::page::shell(&format!("Services \u{b7} {realm}"), &b).replacen(
            "<meta name=\"referrer\" content=\"same-origin\">",
            "<meta name=\"referrer\" content=\"strict-origin\">",
            1,
        );
        let mut resp = self.allow_forms_to(self.html(StatusCode::OK, html), &sources.join(" "));
        let h = resp.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("strict-origin"),
        );
        resp
    }

    /// POST on [`ENTER`] of a service host: a launch ticket from the portal becomes this
    /// host's own session.
    pub(crate) fn enter(&self, r: &Req<'_>, form: &Form) -> Response<Body> {
        let Some(portal) = self.portal() else {
            return crate::status_only(StatusCode::NOT_FOUND);
        };
        let here = self.request_host(r).map(host_name).unwrap_or_default();
        let Some(service) = portal.services.iter().find(|s| s.host == here) else {
            return crate::status_only(StatusCode::NOT_FOUND);
        };
        let refuse = |why: &str| {
            self.record(r, Outcome::Csrf, StatusCode::FORBIDDEN, None);
            self.page(
                StatusCode::FORBIDDEN,
                "Not let in",
                &format!(
                    "<h1>Not let in</h1>\n<p id=\"error\" role=\"alert\">{}</p>\n\
                     <p class=\"sub\"><a href=\"{}\">Back to your services</a></p>\n",
                    escape(why),
                    escape(&format!("{}{PORTAL}", self.origin_of(r, &portal.host)))
                ),
            )
        };
        // Only the portal's own page may post a ticket here: a sibling service's page is the
        // same site, and would otherwise sign the browser in as whoever it likes.
        let portal_origin = self.origin_of(r, &portal.host);
        let origin_ok = {
            let mut all = r.headers.get_all(header::ORIGIN).iter();
            matches!((all.next(), all.next()), (Some(o), None) if o.as_bytes().eq_ignore_ascii_case(portal_origin.as_bytes()))
        };
        if !origin_ok {
            return refuse("This link did not come from the portal.");
        }
        let opened = form.ticket.as_deref().and_then(|t| self.open_ticket(t));
        let Some((ticket, digest)) = opened else {
            return refuse("This link is not valid. Open the service from the portal again.");
        };
        let now = self.now_ms();
        if ticket.service != service.name || now >= ticket.expires {
            return refuse(
                "This link has expired or is for another service. Open it from the portal again.",
            );
        }
        let Some(person) = self.verifier.person(&ticket.user_id) else {
            return refuse("You are no longer signed in.");
        };
        // Made before a change to the person, or in a portal session since ended: dead.
        let portal_session_stands = self
            .verifier
            .people()
            .and_then(|d| d.store().session(&ticket.session).ok().flatten())
            .is_some_and(|s| s.user_id.as_deref() == Some(person.id.as_str()));
        if person.revision != ticket.revision || !portal_session_stands {
            return refuse(
                "This link is from before you signed out or changed your password. Open the service from the portal again.",
            );
        }
        if !may_enter(&person, &service.groups) {
            self.verifier
                .record_person(Outcome::NotInGroup, 403, &person, &r.ctx());
            return refuse("You are not in a group this service admits.");
        }
        match self
            .verifier
            .people()
            .map(|d| d.store().spend_ticket(&digest, ticket.expires, now))
        {
            Some(Ok(true)) => {}
            Some(Ok(false)) => {
                return refuse(
                    "This link was used already. Open the service from the portal again.",
                );
            }
            _ => return crate::status_only(StatusCode::SERVICE_UNAVAILABLE),
        }
        if let Some(old) = self.session_of(r.headers, r.https) {
            self.sessions.end(&old);
        }
        let Ok(new) = self
            .sessions
            .create_for_person(&person.id, Some(&service.name))
        else {
            return crate::status_only(StatusCode::SERVICE_UNAVAILABLE);
        };
        self.verifier
            .record_person(Outcome::SignedIn, 303, &person, &r.ctx());
        let mut resp = self.see_other("/");
        set_cookie(&mut resp, &self.session_cookie(r.https, &new.cookie_value));
        crate::clear_plain_leftovers(&mut resp, r);
        resp
    }

    /// Where a browser without a session at a service goes: the portal's landing page,
    /// which sends it on to sign in first when it has to.
    pub fn portal_landing(&self, https: bool, host_header: Option<&str>) -> Option<String> {
        let portal = self.portal()?;
        let scheme = if https { "https" } else { "http" };
        let port = host_header.map(kg_http::net::host_port).unwrap_or("");
        Some(format!("{scheme}://{}{port}{PORTAL}", portal.host))
    }
}
