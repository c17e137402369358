//! The sign-in form: its body read within bounds, and parsed into buffers wiped on drop.

use http_body_util::BodyExt as _;
use hyper::StatusCode;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap};
use zeroize::Zeroizing;

use crate::{BODY_TIMEOUT, MAX_FORM_BYTES};

pub(crate) const FORM_TYPE: &str = "application/x-www-form-urlencoded";

/// A sign-in form's fields. The token is kept in a buffer wiped on drop; every other
/// value read is wiped too, in case a token was pasted into the wrong field.
#[derive(Default)]
pub(crate) struct Form {
    pub(crate) token: Option<Zeroizing<Vec<u8>>>,
    pub(crate) csrf: Option<String>,
    pub(crate) next: Option<String>,
    /// A person's sign-in name.
    pub(crate) username: Option<String>,
    /// Their password.
    pub(crate) password: Option<Zeroizing<Vec<u8>>>,
    /// A TOTP or recovery code.
    pub(crate) code: Option<Zeroizing<Vec<u8>>>,
    /// A new password, and the same again.
    pub(crate) new_password: Option<Zeroizing<Vec<u8>>>,
    pub(crate) new_password_again: Option<Zeroizing<Vec<u8>>>,
    /// Which step of a person's sign-in the form answers (`totp`, `change`).
    pub(crate) step: Option<String>,
    /// A launch ticket from the portal.
    pub(crate) ticket: Option<Zeroizing<Vec<u8>>>,
}

impl Drop for Form {
    fn drop(&mut self) {
        // `token` wipes itself; the others are wiped here, as the type's doc promises.
        use zeroize::Zeroize;
        for field in [
            &mut self.csrf,
            &mut self.next,
            &mut self.username,
            &mut self.step,
        ]
        .into_iter()
        .flatten()
        {
            field.zeroize();
        }
    }
}

impl Form {
    /// The new password and its repetition, as typed (empty when missing).
    pub(crate) fn new_passwords(&self) -> (Zeroizing<Vec<u8>>, Zeroizing<Vec<u8>>) {
        let of = |f: &Option<Zeroizing<Vec<u8>>>| {
            Zeroizing::new(f.as_deref().cloned().unwrap_or_default())
        };
        (of(&self.new_password), of(&self.new_password_again))
    }

    /// Parses `application/x-www-form-urlencoded`; the first of repeated fields counts.
    ///
    /// Hand-written rather than `form_urlencoded::parse`: that one decodes `+` and `%` into
    /// intermediate buffers that would be freed without being wiped.
    pub(crate) fn parse(body: &[u8]) -> Form {
        let mut form = Form::default();
        for pair in body.split(|&b| b == b'&') {
            if pair.is_empty() {
                continue;
            }
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &pair[pair.len()..]),
            };
            let mut n = Zeroizing::new(Vec::with_capacity(name.len()));
            percent_decode_into(name, &mut n);
            let mut v = Zeroizing::new(Vec::with_capacity(value.len()));
            percent_decode_into(value, &mut v);
            match n.as_slice() {
                b"token" if form.token.is_none() => form.token = Some(v),
                b"csrf" if form.csrf.is_none() => {
                    form.csrf = Some(String::from_utf8_lossy(&v).into_owned());
                }
                b"next" if form.next.is_none() => {
                    form.next = Some(String::from_utf8_lossy(&v).into_owned());
                }
                b"username" if form.username.is_none() => {
                    form.username = Some(String::from_utf8_lossy(&v).into_owned());
                }
                b"step" if form.step.is_none() => {
                    form.step = Some(String::from_utf8_lossy(&v).into_owned());
                }
                b"password" if form.password.is_none() => form.password = Some(v),
                b"code" if form.code.is_none() => form.code = Some(v),
                b"ticket" if form.ticket.is_none() => form.ticket = Some(v),
                b"new_password" if form.new_password.is_none() => form.new_password = Some(v),
                b"new_password_again" if form.new_password_again.is_none() => {
                    form.new_password_again = Some(v)
                }
                _ => {}
            }
        }
        form
    }
}

/// One decoded form field: its name and value, each wiped on drop.
pub type Field = (Zeroizing<Vec<u8>>, Zeroizing<Vec<u8>>);

/// Every field of a form body, decoded into buffers wiped on drop, in order (repeats kept,
/// so the caller can refuse them): for the OAuth endpoints, whose forms carry client secrets,
/// codes and refresh tokens.
pub fn fields(body: &[u8]) -> Vec<Field> {
    let mut out = Vec::new();
    for pair in body.split(|&b| b == b'&') {
        if pair.is_empty() {
            continue;
        }
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &pair[pair.len()..]),
        };
        let mut n = Zeroizing::new(Vec::with_capacity(name.len()));
        percent_decode_into(name, &mut n);
        let mut v = Zeroizing::new(Vec::with_capacity(value.len()));
        percent_decode_into(value, &mut v);
        out.push((n, v));
    }
    out
}

/// Decodes `+` and `%XX` into `out`, which has room for all of `input` (so it never
/// reallocates and leaves a copy behind); a `%` without two hex digits stays as it is.
pub fn percent_decode_into(input: &[u8], out: &mut Vec<u8>) {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut i = 0;
    while i < input.len() {
        let c = input[i];
        match c {
            b'+' => out.push(b' '),
            b'%' => {
                match (
                    input.get(i + 1).copied().and_then(hex),
                    input.get(i + 2).copied().and_then(hex),
                ) {
                    (Some(h), Some(l)) => {
                        out.push(h << 4 | l);
                        i += 2;
                    }
                    _ => out.push(c),
                }
            }
            _ => out.push(c),
        }
        i += 1;
    }
}

/// Whether the request says its body is `application/x-www-form-urlencoded`.
pub fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case(FORM_TYPE))
}

/// Reads and discards a body of at most [`MAX_FORM_BYTES`] within [`BODY_TIMEOUT`], so that
/// an error can be answered after the client finished sending (an HTTP/2 client whose
/// stream is answered mid-upload sees a reset, not the answer).
pub async fn drain(mut body: Incoming) {
    let read = async {
        let mut seen = 0usize;
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(data) = frame.into_data() {
                seen += data.len();
                if seen > MAX_FORM_BYTES {
                    break;
                }
            }
        }
    };
    let _ = tokio::time::timeout(BODY_TIMEOUT, read).await;
}

/// Reads a form body: the right type, at most [`MAX_FORM_BYTES`], within
/// [`BODY_TIMEOUT`], into a buffer wiped on drop that never reallocates.
pub async fn read_form(
    headers: &HeaderMap,
    mut body: Incoming,
) -> Result<Zeroizing<Vec<u8>>, StatusCode> {
    if !is_form(headers) {
        return Err(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_FORM_BYTES as u64) {
        return Err(StatusCode::PAYLOAD_TOO_LARGE);
    }
    let mut buf = Zeroizing::new(Vec::with_capacity(MAX_FORM_BYTES));
    let read = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| StatusCode::BAD_REQUEST)?;
            if let Ok(data) = frame.into_data() {
                if buf.len() + data.len() > MAX_FORM_BYTES {
                    return Err(StatusCode::PAYLOAD_TOO_LARGE);
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok(())
    };
    tokio::time::timeout(BODY_TIMEOUT, read)
        .await
        .map_err(|_| StatusCode::REQUEST_TIMEOUT)??;
    Ok(buf)
}
