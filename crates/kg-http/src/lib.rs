//! Hardened HTTP hosting that knows no credential.
//!
//! What every room of the server stands on: listeners and the accept loop ([`serve`]) with
//! the connection table that sheds waiting connections first ([`slots`]), header and idle
//! deadlines ([`deadline`]), the HTTP/1 fast-lane mechanism ([`fast_lane`]), the head limits,
//! the [`Headers`] view shared by hyper and the lane, the client address behind trusted proxies
//! ([`net`]), the failure rate limiter ([`limiter`]), the JSON-line log ([`log`]), the audit
//! sink ([`audit`]), request ids ([`ids`]) and the metrics registry ([`metrics`]).
//!
//! Nothing here parses, verifies or even names a credential: the rooms above (kg-verifier,
//! kg-login, kg-gateway) decide, this crate carries their requests and their records.
#![forbid(unsafe_code)]

pub mod audit;
pub mod deadline;
pub mod fast_lane;
mod headers;
pub mod ids;
pub mod limiter;
pub mod log;
pub mod metrics;
pub mod net;
pub mod peer_owner;
pub mod response;
pub mod serve;
pub mod slots;

pub use headers::{Headers, visible};

use hyper::Request;
use hyper::StatusCode;

/// Longest request target (414 beyond).
pub const MAX_TARGET: usize = 8 * 1024;
/// Most header bytes, names, values and separators (431 beyond).
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// The response body of keygate's own answers: empty, or a small fixed text.
pub type Body = http_body_util::Full<hyper::body::Bytes>;

/// 414 or 431 for a request beyond [`MAX_TARGET`] or [`MAX_HEADER_BYTES`].
pub fn too_large<B>(req: &Request<B>) -> Option<hyper::Response<Body>> {
    let target_len = req.uri().path_and_query().map_or(0, |p| p.as_str().len())
        + req.uri().authority().map_or(0, |a| a.as_str().len());
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    over_limits(target_len, header_bytes).map(response::closing)
}

/// The limits on a request head, for hyper's path and the fast lane alike: 414 for a target
/// over [`MAX_TARGET`], else 431 for header lines (names, values, separators) over
/// [`MAX_HEADER_BYTES`].
pub fn over_limits(target_len: usize, header_bytes: usize) -> Option<StatusCode> {
    if target_len > MAX_TARGET {
        Some(StatusCode::URI_TOO_LONG)
    } else if header_bytes > MAX_HEADER_BYTES {
        Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
    } else {
        None
    }
}

/// An error and its causes as one printable line of at most 300 characters (for logs).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out.chars().filter(|c| !c.is_control()).take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_chains_are_one_printable_line() {
        let e = std::io::Error::other("a\nb");
        assert_eq!(error_chain(&e), "ab");
    }

    #[test]
    fn the_target_limit_comes_before_the_header_limit() {
        assert_eq!(over_limits(MAX_TARGET, MAX_HEADER_BYTES), None);
        assert_eq!(
            over_limits(MAX_TARGET + 1, MAX_HEADER_BYTES + 1),
            Some(StatusCode::URI_TOO_LONG)
        );
        assert_eq!(
            over_limits(0, MAX_HEADER_BYTES + 1),
            Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        );
    }
}
