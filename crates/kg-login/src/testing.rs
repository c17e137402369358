//! Helpers for unit tests, here and in the gateway (feature `testing`).

use std::path::Path;
use std::time::Duration;

use kg_verifier::testing::{duration, flag};

use crate::Settings;

/// What a test sets up: the verifier's part and sign-in's.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The verifier's settings and the token store.
    pub base: kg_verifier::testing::Setup,
    /// Sign-in's settings.
    pub login: Settings,
}

/// The settings under `dir`, with `flags` as `--set KEY=VALUE` would give them: the
/// defaults of `SETTINGS` otherwise (HTTPS, 12 hours, 1 hour idle).
pub fn settings(dir: &Path, flags: &[(&str, &str)]) -> Setup {
    let base = kg_verifier::testing::settings(dir, flags);
    Setup {
        login: Settings {
            secure: flag(flags, "server.plain_http") != Some("true"),
            realm: base.verifier.realm.clone(),
            session_lifetime: flag(flags, "server.session_lifetime")
                .map_or(Duration::from_secs(12 * 3600), duration),
            session_idle_timeout: flag(flags, "server.session_idle_timeout")
                .map_or(Duration::from_secs(3600), duration),
        },
        base,
    }
}

/// The fields the sign-in form parser reads from `body`: token, csrf, next. For the
/// `sign_in_form` fuzz target, which checks it against `form_urlencoded`.
pub fn parse_form(body: &[u8]) -> (Option<Vec<u8>>, Option<String>, Option<String>) {
    let f = crate::form::Form::parse(body);
    (
        f.token.as_ref().map(|t| t.to_vec()),
        f.csrf.clone(),
        f.next.clone(),
    )
}

/// Sign-in over plain HTTP (`secure` false) or HTTPS, with a fresh session table and a
/// verifier over an empty store under `dir`.
pub fn sign_in(dir: &Path, secure: bool) -> crate::SignIn {
    let base = kg_verifier::testing::settings(dir, &[]);
    crate::SignIn::build(
        secure,
        "keygate",
        sessions(Duration::from_secs(12 * 3600), Duration::from_secs(3600)),
        kg_verifier::testing::verifier(&base, dir),
    )
}

/// Sessions in a fresh in-memory store under a fresh key, on the system clock.
pub fn sessions(lifetime: Duration, idle: Duration) -> crate::Sessions {
    crate::Sessions::open(
        std::sync::Arc::new(kg_store::SqliteStore::memory().expect("an in-memory store")),
        crate::key::ProcessKey::new(),
        kg_verifier::Clock::new(time::OffsetDateTime::now_utc),
        lifetime,
        idle,
    )
}

/// A fresh in-memory store, for [`crate::SignIn::new`].
pub fn store() -> std::sync::Arc<dyn kg_store::SessionStore> {
    std::sync::Arc::new(kg_store::SqliteStore::memory().expect("an in-memory store"))
}

/// A launch ticket for `user_id` at `service` (the `signed_values` fuzz target).
pub fn mint_ticket(s: &crate::SignIn, user_id: &str, service: &str) -> String {
    s.testing_mint_ticket(user_id, service)
}

/// What `text` opens to as a launch ticket: (user id, service).
pub fn open_ticket(s: &crate::SignIn, text: &[u8]) -> Option<(String, String)> {
    s.testing_open_ticket(text)
}

/// A pending sign-in cookie value for `user_id`.
pub fn seal_pending(s: &crate::SignIn, user_id: &str) -> String {
    s.testing_seal_pending(user_id)
}

/// The user id a pending cookie value opens to.
pub fn open_pending(s: &crate::SignIn, value: &str) -> Option<String> {
    s.testing_open_pending(value)
}
