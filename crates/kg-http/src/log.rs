//! The server's own log: one JSON object per line on stderr, in the envelope the audit log
//! shares (`docs/json.md`, `docs/schema/log-line.json`): `ts` (RFC 3339 UTC), `level`,
//! `event`, then the fields, each with its JSON type: counts, numbers and durations (`_secs`)
//! as numbers, switches as booleans, the rest as strings. Used for start-up, reloads and
//! errors: rare events, written directly.
//!
//! Callers pass only names, paths, counts and error texts. Error texts from kg-tokens and
//! kg-fs never contain token material (their documented guarantee).

use std::io::Write;
use std::time::SystemTime;

use crate::ids::push_u64;

/// One field's value, written with its JSON type.
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    Str(&'a str),
    /// A count, a number (a status code, a generation, a pid) or whole seconds.
    U64(u64),
    Bool(bool),
    /// `null`: the field is known but has no value here.
    Null,
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(s: &'a str) -> Value<'a> {
        Value::Str(s)
    }
}

impl<'a> From<&'a String> for Value<'a> {
    fn from(s: &'a String) -> Value<'a> {
        Value::Str(s)
    }
}

impl<'a> From<Option<&'a str>> for Value<'a> {
    fn from(s: Option<&'a str>) -> Value<'a> {
        s.map_or(Value::Null, Value::Str)
    }
}

impl From<bool> for Value<'_> {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

macro_rules! from_unsigned {
    ($($t:ty),*) => {$(
        impl From<$t> for Value<'_> {
            fn from(n: $t) -> Self {
                Value::U64(n as u64)
            }
        }
    )*};
}
from_unsigned!(u16, u32, u64, usize);

/// Logs an informational event.
pub fn info(event: &str, fields: &[(&str, Value<'_>)]) {
    write("info", event, fields);
}

/// Logs a warning.
pub fn warn(event: &str, fields: &[(&str, Value<'_>)]) {
    write("warn", event, fields);
}

/// Logs an error.
pub fn error(event: &str, fields: &[(&str, Value<'_>)]) {
    write("error", event, fields);
}

fn write(level: &str, event: &str, fields: &[(&str, Value<'_>)]) {
    let mut line = Vec::with_capacity(256);
    push_line(&mut line, SystemTime::now(), level, event, fields);
    let _ = std::io::stderr().lock().write_all(&line);
}

/// Appends one whole log line, newline included.
fn push_line(
    line: &mut Vec<u8>,
    at: SystemTime,
    level: &str,
    event: &str,
    fields: &[(&str, Value<'_>)],
) {
    line.extend_from_slice(b"{\"ts\":\"");
    push_time(line, at);
    line.extend_from_slice(b"\",\"level\":\"");
    line.extend_from_slice(level.as_bytes());
    line.extend_from_slice(b"\",\"event\":");
    push_str(line, event.as_bytes());
    for (k, v) in fields {
        line.push(b',');
        push_str(line, k.as_bytes());
        line.push(b':');
        match *v {
            Value::Str(s) => push_str(line, s.as_bytes()),
            Value::U64(n) => push_u64(line, n),
            Value::Bool(true) => line.extend_from_slice(b"true"),
            Value::Bool(false) => line.extend_from_slice(b"false"),
            Value::Null => line.extend_from_slice(b"null"),
        }
    }
    line.extend_from_slice(b"}\n");
}

/// Appends `t` as RFC 3339 UTC with milliseconds, e.g. `2026-11-01T12:00:00.123Z`.
///
/// The part up to the second is kept per thread and reused within the same second: an
/// audit line per denial at a hundred thousand denials a second would otherwise redo the
/// calendar arithmetic for every line.
pub fn push_time(out: &mut Vec<u8>, t: SystemTime) {
    thread_local! {
        static SECOND: std::cell::Cell<(i64, [u8; 20])> = const {
            std::cell::Cell::new((i64::MIN, [0; 20]))
        };
    }
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (cached, mut prefix) = SECOND.get();
    if cached != secs {
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (y, m, day) = civil_from_days(days);
        let parts: [(i64, usize, u8); 6] = [
            (y, 4, b'-'),
            (m, 2, b'-'),
            (day, 2, b'T'),
            (rem / 3600, 2, b':'),
            (rem % 3600 / 60, 2, b':'),
            (rem % 60, 2, b'.'),
        ];
        let mut at = 0;
        for (n, width, sep) in parts {
            push_digits(&mut prefix[at..at + width], n);
            prefix[at + width] = sep;
            at += width + 1;
        }
        SECOND.set((secs, prefix));
    }
    out.extend_from_slice(&prefix);
    let mut millis = [0u8; 4];
    push_digits(&mut millis[..3], i64::from(d.subsec_millis()));
    millis[3] = b'Z';
    out.extend_from_slice(&millis);
}

/// Writes `n` as exactly `into.len()` decimal digits (zero-padded, the top cut off).
fn push_digits(into: &mut [u8], mut n: i64) {
    for b in into.iter_mut().rev() {
        *b = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Appends `s` as a JSON string. Bytes that are not valid UTF-8 become U+FFFD.
pub fn push_str(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for chunk in s.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.extend_from_slice(b"\\\""),
                '\\' => out.extend_from_slice(b"\\\\"),
                '\n' => out.extend_from_slice(b"\\n"),
                '\r' => out.extend_from_slice(b"\\r"),
                '\t' => out.extend_from_slice(b"\\t"),
                c if (c as u32) < 0x20 || c == '\u{7f}' => {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    let v = c as u32;
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[(v >> 4) as usize]);
                    out.push(HEX[(v & 0xf) as usize]);
                }
                c => {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        if !chunk.invalid().is_empty() {
            out.extend_from_slice("\u{fffd}".as_bytes());
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_cached_second_is_reused_only_within_its_second() {
        let at = |ms: u64| {
            let mut out = Vec::new();
            push_time(&mut out, SystemTime::UNIX_EPOCH + Duration::from_millis(ms));
            String::from_utf8(out).unwrap()
        };
        let base = 1_793_534_400_000;
        assert_eq!(at(base + 5), "2026-11-01T12:00:00.005Z");
        assert_eq!(at(base + 999), "2026-11-01T12:00:00.999Z");
        assert_eq!(at(base + 1_000), "2026-11-01T12:00:01.000Z");
        assert_eq!(at(base + 86_400_042), "2026-11-02T12:00:00.042Z");
        assert_eq!(at(base + 7), "2026-11-01T12:00:00.007Z");
    }

    #[test]
    fn times_are_rfc3339_utc() {
        let table: &[(u64, &str)] = &[
            (0, "1970-01-01T00:00:00.000Z"),
            (951_782_400_123, "2000-02-29T00:00:00.123Z"),
            (1_793_534_400_000, "2026-11-01T12:00:00.000Z"),
        ];
        for (ms, want) in table {
            let mut out = Vec::new();
            push_time(
                &mut out,
                SystemTime::UNIX_EPOCH + Duration::from_millis(*ms),
            );
            assert_eq!(String::from_utf8(out).unwrap(), *want);
        }
    }

    #[test]
    fn lines_carry_the_envelope_and_typed_values() {
        let mut line = Vec::new();
        push_line(
            &mut line,
            SystemTime::UNIX_EPOCH + Duration::from_millis(1_793_534_400_000),
            "info",
            "cert_loaded",
            &[
                ("id", "default".into()),
                ("generation", 3u64.into()),
                ("open_connections", 0usize.into()),
                ("local_bypass", true.into()),
                ("local_user", None.into()),
            ],
        );
        let text = String::from_utf8(line).unwrap();
        assert_eq!(
            text,
            "{\"ts\":\"2026-11-01T12:00:00.000Z\",\"level\":\"info\",\"event\":\"cert_loaded\",\
             \"id\":\"default\",\"generation\":3,\"open_connections\":0,\"local_bypass\":true,\
             \"local_user\":null}\n"
        );
    }

    #[test]
    fn strings_are_escaped() {
        let mut out = Vec::new();
        push_str(&mut out, b"a\"q\\\n\x01\xff");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"a\\\"q\\\\\\n\\u0001\u{fffd}\""
        );
    }
}
