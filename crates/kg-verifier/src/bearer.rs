//! The credential a request presents.

use hyper::header;
use kg_http::Headers;

/// A credential, as presented. Its `Debug` never shows a token.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Credential<'a> {
    /// No credentials at all (no `Authorization` header, or another scheme).
    None,
    /// More than one `Authorization` header, or `Bearer` without a usable token.
    Malformed,
    /// A bearer token.
    Bearer(&'a str),
    /// A browser session, standing for the token with this id (which proved possession when
    /// the session began, and is judged again on every request).
    Session {
        /// The token's id.
        token_id: &'a str,
        /// Whether the request comes from another origin for a state change or an upgrade
        /// (the gateway's judgement of fetch metadata and `Origin`): refused.
        foreign: bool,
    },
    /// A browser session of a person who signed in with a password (and a second factor
    /// when they have one), judged again on every request: removed or disabled ends it.
    Person {
        /// The person's id.
        user_id: &'a str,
        /// As for [`Credential::Session`].
        foreign: bool,
        /// The store's version the session was just read at, when known: the person is
        /// judged at it too, without reading it again.
        at: Option<(i64, u64)>,
    },
}

impl std::fmt::Debug for Credential<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::None => f.write_str("None"),
            Credential::Malformed => f.write_str("Malformed"),
            Credential::Bearer(t) => f
                .debug_tuple("Bearer")
                .field(&format_args!("id {:?}, secret hidden", token_id(t)))
                .finish(),
            Credential::Session { token_id, foreign } => f
                .debug_struct("Session")
                .field("token_id", token_id)
                .field("foreign", foreign)
                .finish(),
            Credential::Person {
                user_id, foreign, ..
            } => f
                .debug_struct("Person")
                .field("user_id", user_id)
                .field("foreign", foreign)
                .finish(),
        }
    }
}

impl<'a> Credential<'a> {
    /// The bearer token of the `Authorization` header (RFC 6750 section 2.1: header only).
    pub fn from_headers<H: Headers + ?Sized>(h: &'a H) -> Credential<'a> {
        let mut all = h.values(&header::AUTHORIZATION);
        let Some(v) = all.next() else {
            return Credential::None;
        };
        if all.next().is_some() {
            return Credential::Malformed;
        }
        if v.len() < 7 || !v[..6].eq_ignore_ascii_case(b"bearer") || v[6] != b' ' {
            return Credential::None;
        }
        Credential::from_text(&v[7..])
    }

    /// A token typed or pasted by a person (the sign-in form): surrounding white space is
    /// not part of it; nothing at all is no credential.
    pub fn from_form(v: Option<&'a [u8]>) -> Credential<'a> {
        match v {
            None => Credential::None,
            Some(v) if v.trim_ascii().is_empty() => Credential::None,
            Some(v) => Credential::from_text(v),
        }
    }

    fn from_text(v: &'a [u8]) -> Credential<'a> {
        match std::str::from_utf8(v).map(str::trim) {
            Ok(t) if !t.is_empty() && !t.contains(' ') => Credential::Bearer(t),
            _ => Credential::Malformed,
        }
    }
}

/// The id part of something shaped like a token (`prefix_ID_...`), without checking it.
pub fn token_id(token: &str) -> Option<&str> {
    let mut parts = token.splitn(3, '_');
    parts.next()?;
    let id = parts.next()?;
    (id.len() == kg_tokens::ID_LEN && parts.next().is_some()).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::{HeaderMap, HeaderValue};

    #[test]
    fn bearer_credentials_come_from_one_authorization_header() {
        let h = |values: &[&str]| {
            let mut m = HeaderMap::new();
            for v in values {
                m.append(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
            }
            m
        };
        let judge = |values: &[&str], want: Credential<'_>| {
            let m = h(values);
            assert_eq!(Credential::from_headers(&m), want, "{values:?}");
        };
        judge(&[], Credential::None);
        judge(&["Basic dXNlcjpwdw=="], Credential::None);
        judge(&["Bearer"], Credential::None);
        judge(&["Bearer  "], Credential::Malformed);
        judge(&["Bearer a b"], Credential::Malformed);
        judge(&["Bearer a", "Bearer b"], Credential::Malformed);
        judge(&["bearer abc"], Credential::Bearer("abc"));
        judge(&["Bearer  abc "], Credential::Bearer("abc"));
    }

    #[test]
    fn a_form_field_is_a_token_without_its_white_space() {
        assert_eq!(Credential::from_form(None), Credential::None);
        assert_eq!(Credential::from_form(Some(b" \n")), Credential::None);
        assert_eq!(
            Credential::from_form(Some(b" kg_x \n")),
            Credential::Bearer("kg_x")
        );
        assert_eq!(Credential::from_form(Some(b"\xff")), Credential::Malformed);
        assert_eq!(Credential::from_form(Some(b"a b")), Credential::Malformed);
    }

    #[test]
    fn debug_output_never_shows_a_token() {
        let token = "kg_0123456789AB_s3cretS3cretS3cret";
        let text = format!("{:?}", Credential::Bearer(token));
        assert!(!text.contains("s3cret"), "{text}");
        assert!(text.contains("0123456789AB"), "{text}");
    }

    #[test]
    fn token_ids_are_cut_without_parsing() {
        assert_eq!(token_id("kg_0123456789AB_rest"), Some("0123456789AB"));
        assert_eq!(token_id("kg_short_rest"), None);
        assert_eq!(token_id("kg_0123456789AB"), None);
        assert_eq!(token_id("nounderscore"), None);
    }
}
