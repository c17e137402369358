//! Which request paths mean the same thing to every parser, and which do not.
//!
//! keygate judges a path and something else routes it: the upstream behind the proxy mode,
//! or the app behind nginx, Caddy or Traefik when keygate answers `/auth`. Parsers disagree
//! on dot segments (Werkzeug routes `/admin/..` to `/admin/<path>`, a URL resolver to `/`),
//! on `%2F` (a separator to some, a byte of a segment to others), on `\` (a separator on
//! Windows servers), on `;` (path parameters to Java servers: `/admin;x` is `/admin`), on
//! escapes decoded twice, on NUL and control bytes (C strings, log injection) and on
//! malformed or overlong UTF-8 (IIS's `%c0%ae` was a dot). A path with any of those can be
//! judged as one route and served as another, so it is **ambiguous**: keygate's proxy
//! refuses it (400), and `/auth` refuses it while any scope rule makes the answer depend on
//! the path. Every other path means one thing, and that is what was judged.
//!
//! What is not ambiguous: percent escapes of other bytes (judged decoded, which matches any
//! upstream that decodes; an upstream that does not sees a path no rule names), repeated
//! slashes (judged merged: a prefix rule then matches at least as much), letter case (judged
//! without case, ditto), and the query (not a path).
//!
//! This is the one place that says so: the verifier (`/auth`, scope rules) and the gateway
//! (what is forwarded) both ask [`ambiguity`]. Hand-written, since no crate of the field
//! classifies paths by who might read them differently; it is a single pass over the bytes.

/// Why a path's meaning depends on who parses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ambiguity {
    /// Not an origin-form path (`/...`), or a raw `#`.
    NotAPath,
    /// A `.` or `..` segment (or a segment of dots), raw or percent-encoded.
    DotSegment,
    /// `%2F`: a slash inside a segment, or a separator, depending on the parser.
    EncodedSlash,
    /// `\`, raw or encoded: a separator to Windows servers.
    Backslash,
    /// `;`, raw or encoded: path parameters to Java servers.
    Parameter,
    /// A NUL or control byte, raw or encoded.
    Control,
    /// `%25` followed by two hex digits: decodes to another escape.
    DoubleEncoding,
    /// A `%` not followed by two hex digits.
    BadEscape,
    /// Bytes that are not UTF-8 once decoded, overlong forms included.
    NotUtf8,
    /// Longer than keygate normalizes.
    TooLong,
}

impl Ambiguity {
    /// A short description for logs and error pages.
    pub fn describe(self) -> &'static str {
        match self {
            Ambiguity::NotAPath => "not an origin-form path",
            Ambiguity::DotSegment => "a '.' or '..' segment",
            Ambiguity::EncodedSlash => "an encoded '/'",
            Ambiguity::Backslash => "a '\\'",
            Ambiguity::Parameter => "a ';' parameter",
            Ambiguity::Control => "a NUL or control byte",
            Ambiguity::DoubleEncoding => "a double-encoded escape",
            Ambiguity::BadEscape => "a malformed %-escape",
            Ambiguity::NotUtf8 => "bytes that are not UTF-8",
            Ambiguity::TooLong => "a path too long to judge",
        }
    }
}

/// Longest path that is judged; a longer one is ambiguous.
pub(crate) const MAX_PATH: usize = 8192;

/// Why the path of request target `target` (the query ignored) may mean different things to
/// different parsers, or `None` when it means one thing.
pub fn ambiguity(target: &[u8]) -> Option<Ambiguity> {
    let end = target
        .iter()
        .position(|&b| b == b'?')
        .unwrap_or(target.len());
    let path = &target[..end];
    if path.first() != Some(&b'/') {
        return Some(Ambiguity::NotAPath);
    }
    if path.len() > MAX_PATH {
        return Some(Ambiguity::TooLong);
    }
    // Without escapes the raw bytes are the decoded ones: checked in place, with no buffer
    // (the common case, and on `/auth`'s path while scope rules exist).
    if !path.contains(&b'%') {
        return plain_ambiguity(path);
    }
    let mut decoded = [0u8; MAX_PATH];
    let mut n = 0;
    // Each segment, raw between slashes: its decoded bytes are checked as a whole.
    for segment in path[1..].split(|&b| b == b'/') {
        let start = n;
        let mut i = 0;
        while i < segment.len() {
            let b = match segment[i] {
                b'%' => {
                    let (Some(h), Some(l)) = (
                        segment.get(i + 1).and_then(|&b| hex(b)),
                        segment.get(i + 2).and_then(|&b| hex(b)),
                    ) else {
                        return Some(Ambiguity::BadEscape);
                    };
                    i += 2;
                    let b = h << 4 | l;
                    match b {
                        b'/' => return Some(Ambiguity::EncodedSlash),
                        b'%' if segment.get(i + 1).is_some_and(|&b| hex(b).is_some())
                            && segment.get(i + 2).is_some_and(|&b| hex(b).is_some()) =>
                        {
                            return Some(Ambiguity::DoubleEncoding);
                        }
                        _ => b,
                    }
                }
                b'#' => return Some(Ambiguity::NotAPath),
                b => b,
            };
            match b {
                b'\\' => return Some(Ambiguity::Backslash),
                b';' => return Some(Ambiguity::Parameter),
                0..0x20 | 0x7f => return Some(Ambiguity::Control),
                _ => {}
            }
            decoded[n] = b;
            n += 1;
            i += 1;
        }
        let seg = &decoded[start..n];
        if !seg.is_empty() && seg.iter().all(|&b| b == b'.') {
            return Some(Ambiguity::DotSegment);
        }
    }
    if std::str::from_utf8(&decoded[..n]).is_err() {
        return Some(Ambiguity::NotUtf8);
    }
    None
}

/// [`ambiguity`] of a path without `%` escapes (so no double encoding, no bad escape).
fn plain_ambiguity(path: &[u8]) -> Option<Ambiguity> {
    for segment in path[1..].split(|&b| b == b'/') {
        for &b in segment {
            match b {
                b'#' => return Some(Ambiguity::NotAPath),
                b'\\' => return Some(Ambiguity::Backslash),
                b';' => return Some(Ambiguity::Parameter),
                0..0x20 | 0x7f => return Some(Ambiguity::Control),
                _ => {}
            }
        }
        if !segment.is_empty() && segment.iter().all(|&b| b == b'.') {
            return Some(Ambiguity::DotSegment);
        }
    }
    std::str::from_utf8(path)
        .is_err()
        .then_some(Ambiguity::NotUtf8)
}

pub(crate) fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_whose_meaning_depends_on_the_parser_are_named() {
        use Ambiguity::*;
        let table: &[(&str, Option<Ambiguity>)] = &[
            ("/", None),
            ("/admin/x?next=/../y", None),
            ("/a//b/", None),
            ("/%61dmin", None),
            ("/caf%C3%A9", None),
            ("/caf\u{e9}", None),
            ("/100%25", None),
            ("/100%25zz", None),
            ("/a.b/.c/..d/...e", None),
            ("/admin/..", Some(DotSegment)),
            ("/admin/../", Some(DotSegment)),
            ("/admin/./x", Some(DotSegment)),
            ("/admin/%2e%2e/", Some(DotSegment)),
            ("/admin/%2E./", Some(DotSegment)),
            ("/admin/x/../../", Some(DotSegment)),
            ("/admin/.../", Some(DotSegment)),
            ("/admin/..%2f", Some(EncodedSlash)),
            ("/admin%2Fx", Some(EncodedSlash)),
            ("/admin%5c..", Some(Backslash)),
            ("/public\\..\\admin", Some(Backslash)),
            ("/admin;x", Some(Parameter)),
            ("/public/..;/admin", Some(Parameter)),
            ("/admin%3bx", Some(Parameter)),
            ("/admin%00", Some(Control)),
            ("/admin%0a", Some(Control)),
            ("/admin\x7f", Some(Control)),
            ("/admin%252e%252e", Some(DoubleEncoding)),
            ("/admin%252F", Some(DoubleEncoding)),
            ("/admin%c0%ae%c0%ae/", Some(NotUtf8)),
            ("/admin%ff", Some(NotUtf8)),
            ("/%zz", Some(BadEscape)),
            ("/%4", Some(BadEscape)),
            ("/a#/../admin", Some(NotAPath)),
            ("admin", Some(NotAPath)),
            ("http://x/admin", Some(NotAPath)),
            ("", Some(NotAPath)),
        ];
        for (path, want) in table {
            assert_eq!(ambiguity(path.as_bytes()), *want, "{path:?}");
        }
        assert_eq!(
            ambiguity(format!("/{}", "a".repeat(MAX_PATH)).as_bytes()),
            Some(TooLong)
        );
    }
}
