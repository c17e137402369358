//! The loopback redirect of `tokenctl login` (RFC 8252 §7.3): one listener on an ephemeral
//! port of 127.0.0.1 (else [::1]) that waits for the browser to come back with the
//! authorization response.
//!
//! Hand-written rather than a hyper server: it reads one request head (at most 8 KiB) from
//! the person's own browser and answers one small page; the parser is
//! [`parse_callback`], which the `client_answer` fuzz target drives.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use crate::Error;

/// The path the redirect URI names.
pub(crate) const PATH: &str = "/callback";
/// The largest request head read.
const MAX_HEAD: usize = 8 * 1024;

/// What came back. `Debug` leaves the code and the state out: the code is a credential
/// until it is redeemed.
#[derive(Default, PartialEq, Eq)]
pub struct Callback {
    /// The authorization code.
    pub code: Option<String>,
    /// The state sent.
    pub state: Option<String>,
    /// The issuer that answered (RFC 9207).
    pub iss: Option<String>,
    /// An error (RFC 6749 §4.1.2.1).
    pub error: Option<String>,
    /// Its description.
    pub error_description: Option<String>,
}

impl std::fmt::Debug for Callback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Callback")
            .field("code", &self.code.as_ref().map(|_| "(set)"))
            .field("iss", &self.iss)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

/// The query of a `GET /callback?...` request head, decoded; `None` for any other request
/// (a favicon, a probe), which gets a 404 and is waited past.
pub fn parse_callback(head: &[u8]) -> Option<Callback> {
    let line = head.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim_end_matches('\r');
    let mut parts = line.split(' ');
    let (method, target) = (parts.next()?, parts.next()?);
    if method != "GET" || !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path != PATH {
        return None;
    }
    let mut cb = Callback::default();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        let slot = match k.as_ref() {
            "code" => &mut cb.code,
            "state" => &mut cb.state,
            "iss" => &mut cb.iss,
            "error" => &mut cb.error,
            "error_description" => &mut cb.error_description,
            _ => continue,
        };
        if slot.is_some() {
            // A repeated parameter (RFC 6749 §3.1: must not be): not an answer to trust.
            return Some(Callback {
                error: Some("invalid_request".into()),
                error_description: Some("a parameter is repeated".into()),
                ..Callback::default()
            });
        }
        *slot = Some(v.into_owned());
    }
    Some(cb)
}

/// The listener, bound before the browser is sent anywhere.
pub(crate) struct Listener {
    listener: TcpListener,
    pub(crate) redirect_uri: String,
}

impl Listener {
    pub(crate) fn bind() -> Result<Listener, Error> {
        let v4 = TcpListener::bind((Ipv4Addr::LOCALHOST, 0));
        let (listener, host) = match v4 {
            Ok(l) => (l, "127.0.0.1".to_owned()),
            Err(_) => (
                TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).map_err(|e| Error::Http {
                    url: "a loopback port".into(),
                    why: format!("cannot listen on 127.0.0.1 or [::1]: {e}"),
                })?,
                "[::1]".to_owned(),
            ),
        };
        let port = listener
            .local_addr()
            .map_err(|e| Error::Http {
                url: "a loopback port".into(),
                why: e.to_string(),
            })?
            .port();
        Ok(Listener {
            listener,
            redirect_uri: format!("http://{host}:{port}{PATH}"),
        })
    }

    /// Waits up to `limit` for the callback; answers it with `page(&callback)`.
    pub(crate) fn wait(
        &self,
        limit: Duration,
        page: &dyn Fn(&Callback) -> (u16, String),
    ) -> Result<Callback, Error> {
        let deadline = Instant::now() + limit;
        self.listener
            .set_nonblocking(true)
            .map_err(|e| timeout_error(e.to_string()))?;
        loop {
            if Instant::now() > deadline {
                return Err(timeout_error(format!(
                    "no answer from the browser within {} minutes",
                    limit.as_secs() / 60
                )));
            }
            let mut stream = match self.listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
                Err(e) => return Err(timeout_error(e.to_string())),
            };
            let Some(head) = read_head(&mut stream) else {
                continue;
            };
            match parse_callback(&head) {
                Some(cb) => {
                    let (status, html) = page(&cb);
                    respond(&mut stream, status, &html);
                    return Ok(cb);
                }
                None => respond(&mut stream, 404, "not found"),
            }
        }
    }
}

fn timeout_error(why: String) -> Error {
    Error::Http {
        url: "the loopback redirect".into(),
        why,
    }
}

fn read_head(stream: &mut TcpStream) -> Option<Vec<u8>> {
    stream.set_nonblocking(false).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 || buf.len() + n > MAX_HEAD {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(buf)
}

/// The pages' one style sheet, allowed by its hash (no script, nothing loaded).
const STYLE: &str = "body{margin:0;min-height:100vh;display:flex;align-items:center;\
justify-content:center;background:#f3f4f6;color:#111827;font:16px/1.5 system-ui,sans-serif}\
main{max-width:400px;margin:24px;padding:32px;background:#fff;border:1px solid #d1d5db;\
border-radius:14px}h1{margin:0 0 8px;font-size:22px}p{margin:0;color:#6b7280}\
@media (prefers-color-scheme:dark){body{background:#0f1115;color:#e5e7eb}\
main{background:#181b21;border-color:#2f3540}p{color:#9ca3af}}";

/// A page for the browser: `heading`, then `text` (HTML, escaped already) as `#id`.
pub(crate) fn page(heading: &str, id: &str, text: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{heading}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n\
         <h1>{heading}</h1>\n<p id=\"{id}\">{text}</p>\n</main>\n</body>\n</html>\n"
    )
}

fn respond(stream: &mut TcpStream, status: u16, html: &str) {
    use base64::Engine as _;
    use sha2::Digest as _;
    let reason = if status == 200 { "OK" } else { "Error" };
    let style = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(STYLE));
    let _ = write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\n\
         Content-Length: {}\r\nCache-Control: no-store\r\nReferrer-Policy: no-referrer\r\n\
         Content-Security-Policy: default-src 'none'; style-src 'sha256-{style}'\r\n\
         Connection: close\r\n\r\n{html}",
        html.len()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_get_callback_is_an_answer() {
        let cb = parse_callback(
            b"GET /callback?code=a%2Bb&state=s&iss=https%3A%2F%2Fi HTTP/1.1\r\n\r\n",
        )
        .unwrap();
        assert_eq!(cb.code.as_deref(), Some("a+b"));
        assert_eq!(cb.iss.as_deref(), Some("https://i"));
        assert!(parse_callback(b"GET /favicon.ico HTTP/1.1\r\n\r\n").is_none());
        assert!(parse_callback(b"POST /callback?code=a HTTP/1.1\r\n\r\n").is_none());
        let twice = parse_callback(b"GET /callback?code=a&code=b HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(twice.error.as_deref(), Some("invalid_request"));
        assert_eq!(twice.code, None);
    }
}
