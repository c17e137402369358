//! Which scopes `/auth` requires, by the original request's path.
//!
//! Rules are `"SCOPE"` (every path) or `"/PREFIX=SCOPE+SCOPE"`; the longest matching prefix
//! wins, and a prefix matches whole segments (`/admin` matches `/admin` and `/admin/x`, not
//! `/administrator`). The path is normalized the way the proxy routes it before matching:
//! percent-decoded, `//` merged, `.` and `..` resolved, the query dropped. Otherwise
//! `/public/../admin` or `/%61dmin` would reach `/admin` under the rules of another prefix.
//!
//! When the path is unknown (no original-URI header from a trusted proxy) or cannot be
//! normalized, the strictest requirement applies: every scope of every rule.

use hyper::header::HeaderValue;

/// A required-scopes rule that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid server.required_scopes rule '{rule}': {problem}")]
pub struct BadRule {
    /// The rule.
    pub rule: String,
    /// What is wrong.
    pub problem: String,
}

use crate::paths::{MAX_PATH, hex};

/// One requirement: the scopes a token must all have, and the challenge sent when it lacks one.
#[derive(Debug, Clone)]
pub struct Requirement {
    /// The path prefix (`/` for every path), for logs.
    pub prefix: String,
    /// The scopes, all required.
    pub scopes: Vec<String>,
    /// `Bearer realm="..", error="insufficient_scope", scope=".."`, built once.
    pub challenge: HeaderValue,
}

/// The configured rules.
#[derive(Debug, Clone, Default)]
pub struct ScopeRules {
    /// Longest prefix first.
    rules: Vec<Requirement>,
    /// Every scope of every rule, for requests whose path is unknown.
    strictest: Option<Requirement>,
}

impl ScopeRules {
    /// Parses `server.required_scopes`.
    pub fn parse(rules: &[String], realm: &str) -> Result<ScopeRules, BadRule> {
        let mut out: Vec<Requirement> = Vec::new();
        let mut all: Vec<String> = Vec::new();
        for rule in rules {
            let bad = |problem: &str| BadRule {
                rule: rule.clone(),
                problem: problem.to_owned(),
            };
            let rule_text = rule.trim();
            let (prefix, scopes) = match rule_text.split_once('=') {
                Some((p, s)) => (p.trim(), s.trim()),
                None => ("/", rule_text),
            };
            if !prefix.starts_with('/') {
                return Err(bad("the path prefix must start with '/'"));
            }
            let mut buf = [0u8; MAX_PATH];
            let normal = normalize(prefix.as_bytes(), &mut buf)
                .ok_or_else(|| bad("the path prefix cannot be normalized"))?;
            if normal != prefix.as_bytes() && normal != prefix.trim_end_matches('/').as_bytes() {
                return Err(bad(
                    "write the path prefix normalized (no '..', '//' or %-escapes)",
                ));
            }
            let mut list: Vec<String> = Vec::new();
            for s in scopes.split('+') {
                if !valid_scope(s) {
                    return Err(bad(
                        "a scope must be 1 to 64 printable ASCII characters without spaces, '\"' or '\\'",
                    ));
                }
                if !list.iter().any(|x| x == s) {
                    list.push(s.to_owned());
                }
                if !all.iter().any(|x| x == s) {
                    all.push(s.to_owned());
                }
            }
            if out.iter().any(|r| r.prefix == prefix) {
                return Err(bad("another rule has the same prefix"));
            }
            out.push(requirement(prefix, list, realm));
        }
        out.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
        let strictest = (!out.is_empty()).then(|| requirement("*", all, realm));
        Ok(ScopeRules {
            rules: out,
            strictest,
        })
    }

    /// Whether any rule is configured.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The requirement for a request to `path` (`None`: unknown), or `None` when any valid
    /// token will do.
    pub fn for_path(&self, path: Option<&[u8]>) -> Option<&Requirement> {
        if self.rules.is_empty() {
            return None;
        }
        let mut buf = [0u8; MAX_PATH];
        let Some(path) = path.and_then(|p| normalize(p, &mut buf)) else {
            return self.strictest.as_ref();
        };
        // Java servers route `/public/..;/admin` and `/admin;x` to `/admin`, and Windows
        // servers read `\` as `/`: such a path cannot be matched safely, so it needs every
        // scope (security review).
        if path.iter().any(|&b| b == b';' || b == b'\\') {
            return self.strictest.as_ref();
        }
        self.rules
            .iter()
            .find(|r| segment_prefix(path, r.prefix.as_bytes()))
    }
}

impl Requirement {
    /// Whether `info` has every scope this requires.
    pub fn is_met_by(&self, info: &kg_tokens::TokenInfo<'_>) -> bool {
        self.scopes.iter().all(|s| info.has_scope(s))
    }

    /// Whether it requires nothing (what a credential without scopes, a person's session,
    /// can meet).
    pub fn is_met_by_nothing(&self) -> bool {
        self.scopes.is_empty()
    }
}

impl Requirement {
    /// A requirement of every one of `scopes`, on every path (a service's `scopes`); `None`
    /// when a scope is not an RFC 6749 scope token or the realm not printable ASCII
    /// without quotes.
    pub fn all_of(scopes: &[String], realm: &str) -> Option<Requirement> {
        let realm_ok = realm
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\');
        (realm_ok && !scopes.is_empty() && scopes.iter().all(|s| valid_scope(s)))
            .then(|| requirement("/", scopes.to_vec(), realm))
    }
}

/// A requirement of one scope, for every path (what `/metrics` asks of a token).
pub(crate) fn single(scope: &str, realm: &str) -> Requirement {
    requirement("/", vec![scope.to_owned()], realm)
}

fn requirement(prefix: &str, scopes: Vec<String>, realm: &str) -> Requirement {
    let challenge = format!(
        "Bearer realm=\"{realm}\", error=\"insufficient_scope\", scope=\"{}\"",
        scopes.join(" ")
    );
    Requirement {
        prefix: prefix.to_owned(),
        scopes,
        // The realm and the scopes were checked to be printable ASCII without quotes.
        challenge: HeaderValue::from_str(&challenge).expect("checked header text"),
    }
}

/// RFC 6749 scope tokens, as kg-tokens accepts them.
fn valid_scope(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x5b | 0x5d..=0x7e))
}

/// Whether `prefix` matches `path` on whole segments, ignoring ASCII case: many upstreams
/// route `/ADMIN` to `/admin`, and requiring a scope for a path a case-sensitive upstream
/// would not match is only ever stricter.
fn segment_prefix(path: &[u8], prefix: &[u8]) -> bool {
    if prefix == b"/" {
        return true;
    }
    let prefix = prefix.strip_suffix(b"/").unwrap_or(prefix);
    path.len() >= prefix.len()
        && path[..prefix.len()].eq_ignore_ascii_case(prefix)
        && matches!(path.get(prefix.len()), None | Some(b'/'))
}

/// Normalizes the path of a request target into `out`: the query and fragment dropped,
/// percent escapes decoded, repeated slashes merged, `.` and `..` segments resolved. `None`
/// when it is not an origin-form path, has a bad escape, decodes to a NUL or control
/// character, climbs above the root, or is too long.
pub(crate) fn normalize<'b>(target: &[u8], out: &'b mut [u8; MAX_PATH]) -> Option<&'b [u8]> {
    let end = target
        .iter()
        .position(|&b| b == b'?' || b == b'#')
        .unwrap_or(target.len());
    let raw = &target[..end];
    if raw.first() != Some(&b'/') || raw.len() > MAX_PATH {
        return None;
    }
    // Decode first, into `out`.
    let mut n = 0;
    let mut i = 0;
    while i < raw.len() {
        let b = match raw[i] {
            b'%' => {
                let h = hex(*raw.get(i + 1)?)?;
                let l = hex(*raw.get(i + 2)?)?;
                i += 2;
                h << 4 | l
            }
            b => b,
        };
        if b < 0x20 || b == 0x7f {
            return None;
        }
        out[n] = b;
        n += 1;
        i += 1;
    }
    // Then resolve segments in place: the write position never passes the read position.
    let mut w = 0;
    let mut r = 0;
    while r < n {
        // out[r] is '/': skip repeated slashes.
        while r < n && out[r] == b'/' {
            r += 1;
        }
        let start = r;
        while r < n && out[r] != b'/' {
            r += 1;
        }
        let seg_len = r - start;
        let trailing = r == n && seg_len == 0;
        if seg_len == 1 && out[start] == b'.' {
            continue;
        }
        if seg_len == 2 && out[start] == b'.' && out[start + 1] == b'.' {
            if w == 0 {
                return None;
            }
            while w > 0 && out[w - 1] != b'/' {
                w -= 1;
            }
            w -= 1;
            continue;
        }
        if trailing {
            break;
        }
        out[w] = b'/';
        w += 1;
        out.copy_within(start..start + seg_len, w);
        w += seg_len;
    }
    if w == 0 {
        out[0] = b'/';
        w = 1;
    }
    Some(&out[..w])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_normalize_as_proxies_route_them() {
        let table: &[(&str, Option<&str>)] = &[
            ("/", Some("/")),
            ("/a/b?x=1", Some("/a/b")),
            ("/a//b/", Some("/a/b")),
            ("/a/./b", Some("/a/b")),
            ("/public/../admin/x", Some("/admin/x")),
            ("/%61dmin", Some("/admin")),
            ("/a/%2e%2e/admin", Some("/admin")),
            ("/..", None),
            ("/a/../..", None),
            ("/%zz", None),
            ("/%0a", None),
            ("relative", None),
            ("http://x/a", None),
            ("/a/b/..", Some("/a")),
            ("/a#frag", Some("/a")),
        ];
        for (input, want) in table {
            let mut buf = [0u8; MAX_PATH];
            let got = normalize(input.as_bytes(), &mut buf)
                .map(|p| String::from_utf8(p.to_vec()).unwrap());
            assert_eq!(got.as_deref(), *want, "{input}");
        }
    }

    #[test]
    fn the_longest_prefix_wins_and_unknown_paths_get_every_scope() {
        let rules = ScopeRules::parse(
            &[
                "read".into(),
                "/admin=admin".into(),
                "/admin/deploy=deploy+admin".into(),
            ],
            "keygate",
        )
        .unwrap();
        let scopes = |p: Option<&str>| {
            rules
                .for_path(p.map(str::as_bytes))
                .map(|r| r.scopes.join(" "))
        };
        assert_eq!(scopes(Some("/")).as_deref(), Some("read"));
        assert_eq!(scopes(Some("/administrator")).as_deref(), Some("read"));
        assert_eq!(scopes(Some("/admin")).as_deref(), Some("admin"));
        assert_eq!(scopes(Some("/admin/x?y")).as_deref(), Some("admin"));
        assert_eq!(
            scopes(Some("/admin/deploy/1")).as_deref(),
            Some("deploy admin")
        );
        assert_eq!(scopes(Some("/public/../admin")).as_deref(), Some("admin"));
        // Security review: case and `;` parameters must not slip past a rule.
        assert_eq!(scopes(Some("/ADMIN/users")).as_deref(), Some("admin"));
        assert_eq!(
            scopes(Some("/Admin/Deploy")).as_deref(),
            Some("deploy admin")
        );
        for sneaky in [
            "/public/..;/admin/users",
            "/admin;x/users",
            "/admin%3bx",
            "/admin%5cx",
            "/public\\..\\admin",
        ] {
            assert_eq!(
                scopes(Some(sneaky)).as_deref(),
                Some("read admin deploy"),
                "{sneaky}"
            );
        }
        // Unknown or unnormalizable: everything.
        assert_eq!(scopes(None).as_deref(), Some("read admin deploy"));
        assert_eq!(
            scopes(Some("/../admin")).as_deref(),
            Some("read admin deploy")
        );
        assert_eq!(
            rules.for_path(Some(b"/admin")).unwrap().challenge,
            "Bearer realm=\"keygate\", error=\"insufficient_scope\", scope=\"admin\""
        );
        assert!(
            ScopeRules::parse(&[], "k")
                .unwrap()
                .for_path(None)
                .is_none()
        );
    }

    #[test]
    fn bad_rules_are_refused() {
        for bad in ["admin=x", "/a=", "/a=b c", "/a/../b=x", "/a=\"q\""] {
            assert!(ScopeRules::parse(&[bad.to_owned()], "k").is_err(), "{bad}");
        }
        assert!(ScopeRules::parse(&["/a=x".into(), "/a=y".into()], "k").is_err());
    }
}
