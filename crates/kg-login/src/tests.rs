//! Sign-in's unit tests: the pieces, then the endpoints over real connections.

use super::*;
use crate::form::{FORM_TYPE, percent_decode_into};
use http_body_util::BodyExt as _;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use kg_fs::lock::Wait;

use kg_verifier::testing::{loaded, verifier};
use time::OffsetDateTime;

use crate::testing::settings;

const HOUR: Duration = Duration::from_secs(3600);
const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

fn sign_in(secure: bool) -> SignIn {
    let dir = tempfile::tempdir().unwrap();
    crate::testing::sign_in(dir.path(), secure)
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

#[test]
fn cookies_on_https_are_host_only_and_secure() {
    let s = sign_in(true);
    assert_eq!(
        s.session_cookie(true, "v"),
        "__Host-keygate_session=v; Path=/; Max-Age=43200; HttpOnly; Secure; SameSite=Lax"
    );
    assert_eq!(
        SignIn::clear_session_cookie(true),
        "__Host-keygate_session=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax"
    );
    assert_eq!(
        SignIn::csrf_cookie(true, "c"),
        "__Host-keygate_csrf=c; Path=/; Max-Age=3600; HttpOnly; Secure; SameSite=Lax"
    );
    assert_eq!(
        SignIn::clear_csrf_cookie(true),
        "__Host-keygate_csrf=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax"
    );
}

#[test]
fn cookies_on_plain_http_have_plain_names_and_no_secure_flag() {
    let s = sign_in(false);
    assert_eq!(
        s.session_cookie(false, "v"),
        "keygate_session=v; Path=/; Max-Age=43200; HttpOnly; SameSite=Lax"
    );
    assert_eq!(
        SignIn::csrf_cookie(false, "c"),
        "keygate_csrf=c; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax"
    );
    for c in [
        s.session_cookie(false, "v"),
        SignIn::clear_csrf_cookie(false),
    ] {
        assert!(!c.contains("Domain") && !c.contains("Secure"), "{c}");
    }
}

#[test]
fn settings_decide_the_scheme_and_the_lifetime() {
    let dir = tempfile::tempdir().unwrap();
    let new = |flags: &[(&str, &str)]| {
        let s = settings(dir.path(), flags);
        SignIn::new(
            &s.login,
            verifier(&s.base, dir.path()),
            crate::testing::store(),
            crate::key::ProcessKey::new(),
        )
    };
    let peer: IpAddr = "192.0.2.7".parse().unwrap();
    let none = HeaderMap::new();
    let https = new(&[("server.session_lifetime", "2h")]);
    assert!(https.https(peer, &none));
    assert!(https.session_cookie(true, "v").contains("Max-Age=7200;"));
    let plain = new(&[("server.plain_http", "true")]);
    assert!(!plain.https(peer, &none));
    assert_eq!(SignIn::session_cookie_name(false), "keygate_session");
    assert_eq!(SignIn::csrf_cookie_name(false), "keygate_csrf");
}

#[test]
fn https_behind_a_plain_listener_is_a_trusted_proxys_word_only() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(
        dir.path(),
        &[
            ("server.plain_http", "true"),
            ("server.trusted_proxies", "127.0.0.1/32,10.0.0.0/8"),
        ],
    );
    let plain = SignIn::new(
        &s.login,
        verifier(&s.base, dir.path()),
        crate::testing::store(),
        crate::key::ProcessKey::new(),
    );
    let proxy: IpAddr = "127.0.0.1".parse().unwrap();
    let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
    let outsider: IpAddr = "127.0.0.7".parse().unwrap();
    for (peer, h, want) in [
        (proxy, vec![("x-forwarded-proto", "https")], true),
        (proxy, vec![("x-forwarded-proto", "HTTPS")], true),
        (mapped, vec![("x-forwarded-proto", "https")], true),
        // The nearest entry is the trusted peer's own word.
        (proxy, vec![("x-forwarded-proto", "http, https")], true),
        (proxy, vec![("x-forwarded-proto", "https, http")], false),
        (
            proxy,
            vec![
                ("x-forwarded-proto", "https"),
                ("x-forwarded-proto", "http"),
            ],
            false,
        ),
        (proxy, vec![("x-forwarded-proto", "http")], false),
        (proxy, vec![], false),
        (proxy, vec![("x-forwarded-proto", "httpsx")], false),
        // Anyone else saying so changes nothing.
        (outsider, vec![("x-forwarded-proto", "https")], false),
        (outsider, vec![("forwarded", "proto=https")], false),
    ] {
        assert_eq!(plain.https(peer, &headers(&h)), want, "{peer} {h:?}");
    }
}

#[test]
fn next_is_a_local_path_or_slash() {
    for (given, kept) in [
        ("/", "/"),
        ("/some/path?x=1", "/some/path?x=1"),
        ("/a/b?next=//evil.com#frag", "/a/b?next=//evil.com#frag"),
        ("/%2F%2Fevil.com", "/%2F%2Fevil.com"),
        ("/%5Cevil.com", "/%5Cevil.com"),
        ("/https://evil.com", "/https://evil.com"),
        ("/a?b=../c", "/a?b=../c"),
        ("", "/"),
        ("//evil.com", "/"),
        ("///evil.com", "/"),
        ("/\\evil.com", "/"),
        ("\\\\evil.com", "/"),
        ("/a\\b", "/"),
        ("https://evil.com", "/"),
        ("http:evil.com", "/"),
        ("javascript:alert(1)", "/"),
        ("evil.com", "/"),
        ("\t/", "/"),
        ("/\t/evil.com", "/"),
        ("/\n/evil.com", "/"),
        ("/\r\n/evil.com", "/"),
        (" /", "/"),
        ("/a b", "/"),
        ("/caf\u{e9}", "/"),
        ("/../evil", "/"),
        ("/a/./b", "/"),
        ("/a/..", "/"),
        ("/.keygate/sign-in", "/"),
        ("/.keygate/sign-out", "/"),
        ("/.keygate", "/"),
        ("/.keygate-app/x", "/.keygate-app/x"),
    ] {
        assert_eq!(safe_next(given), kept, "{given:?}");
    }
    assert_eq!(safe_next(&format!("/{}", "a".repeat(MAX_NEXT))), "/");
}

#[test]
fn forms_decode_plus_and_percent_and_keep_the_first_of_a_field() {
    let f = Form::parse(
        b"csrf=a%2Bb+c&next=%2Fx%3Fy%3D1&token=kg_abc%5F%zz%4&token=second&other=1&&=x&bare",
    );
    assert_eq!(f.csrf.as_deref(), Some("a+b c"));
    assert_eq!(f.next.as_deref(), Some("/x?y=1"));
    assert_eq!(
        f.token.as_deref().map(Vec::as_slice),
        Some(&b"kg_abc_%zz%4"[..])
    );
    let empty = Form::parse(b"");
    assert!(empty.token.is_none() && empty.csrf.is_none() && empty.next.is_none());
    let blank = Form::parse(b"token=&csrf");
    assert_eq!(blank.token.as_deref().map(Vec::len), Some(0));
    assert_eq!(blank.csrf.as_deref(), Some(""));
    // The buffer never grows, so no unwiped copy of a token is left behind.
    let mut out = Vec::with_capacity(8);
    percent_decode_into(b"%41%42+cd", &mut out);
    assert_eq!(out, b"AB cd");
    assert_eq!(out.capacity(), 8);
}

#[test]
fn html_is_escaped() {
    assert_eq!(
        escape("<a href=\"x\">'&'</a>"),
        "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
    );
    let dir = tempfile::tempdir().unwrap();
    let base = kg_verifier::testing::settings(dir.path(), &[]);
    let s = SignIn::build(
        false,
        "<b>&\"realm'",
        crate::testing::sessions(HOUR, HOUR),
        verifier(&base, dir.path()),
    );
    let page = s.sign_in_page(
        "c\"><script>",
        "/x\"><script>",
        Some("<i>oops</i>"),
        "\"><b>",
    );
    assert!(!page.contains("<script>") && !page.contains("<b>") && !page.contains("<i>"));
    assert!(page.contains("Sign in to &lt;b&gt;&amp;&quot;realm&#39;"));
    assert!(page.contains("value=\"/x&quot;&gt;&lt;script&gt;\""));
    let page = s.signed_in_page("<img>", "c", "/", None);
    assert!(page.contains("<strong>&lt;img&gt;</strong>"));
}

#[test]
fn the_policy_allows_exactly_the_page_style() {
    let s = sign_in(true);
    let page = s.sign_in_page("c", "/", None, "");
    let style = page
        .split_once("<style>")
        .and_then(|(_, rest)| rest.split_once("</style>"))
        .unwrap()
        .0;
    let hash = STANDARD.encode(Sha256::digest(style.as_bytes()));
    let csp = s.csp.to_str().unwrap();
    assert!(csp.contains(&format!("style-src 'sha256-{hash}'")), "{csp}");
    for d in [
        "default-src 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(d), "{d}");
    }
    assert!(!page.contains("<script") && !page.contains(" style=") && !page.contains("http"));
}

#[test]
fn csrf_values_are_signed_by_this_process() {
    let s = sign_in(true);
    let v = s.mint_csrf();
    assert!(s.csrf_valid(&v));
    assert_ne!(v, s.mint_csrf());
    assert!(!sign_in(true).csrf_valid(&v), "another key");
    let mut tampered = v.clone().into_bytes();
    tampered[0] = if tampered[0] == b'A' { b'B' } else { b'A' };
    assert!(!s.csrf_valid(std::str::from_utf8(&tampered).unwrap()));
    for bad in ["", "abc", &"A".repeat(43), &format!("{v}A")] {
        assert!(!s.csrf_valid(bad), "{bad}");
    }
}

#[test]
fn the_csrf_field_must_match_a_valid_cookie() {
    let s = sign_in(true);
    let v = s.mint_csrf();
    let other = s.mint_csrf();
    let form = |csrf: Option<&str>| {
        let mut f = Form::default();
        f.csrf = csrf.map(str::to_owned);
        f
    };
    let uri: Uri = SIGN_IN.parse().unwrap();
    let matches = |h: &HeaderMap, https: bool, f: &Form| {
        let r = Req {
            method: &Method::POST,
            uri: &uri,
            headers: h,
            client: "127.0.0.1".parse().unwrap(),
            https,
            path: SIGN_IN,
        };
        s.csrf_pair_matches(&r, f)
    };
    let cookie = format!("a=1; __Host-keygate_csrf={v}; b=2");
    let h = headers(&[("cookie", &cookie)]);
    assert!(matches(&h, true, &form(Some(&v))));
    assert!(!matches(&h, true, &form(Some(&other))));
    assert!(!matches(&h, true, &form(None)));
    assert!(!matches(&h, true, &form(Some(""))));
    // The plain-HTTP name does not count on HTTPS, nor the `__Host-` one on plain HTTP.
    let plain = headers(&[("cookie", &format!("keygate_csrf={v}"))]);
    assert!(!matches(&plain, true, &form(Some(&v))));
    assert!(matches(&plain, false, &form(Some(&v))));
    assert!(!matches(&h, false, &form(Some(&v))));
    // A value this process did not sign is refused even when field and cookie agree.
    let forged = "A".repeat(43);
    let h = headers(&[("cookie", &format!("__Host-keygate_csrf={forged}"))]);
    assert!(!matches(&h, true, &form(Some(&forged))));
}

#[test]
fn requests_from_other_sites_are_recognised() {
    let uri: Uri = "/.keygate/sign-in".parse().unwrap();
    let https = sign_in(true);
    let plain = sign_in(false);
    let host = ("host", "app.example:8443");
    for (h, https_cross, plain_cross) in [
        (vec![host], false, false),
        (
            vec![host, ("origin", "https://app.example:8443")],
            false,
            false,
        ),
        (
            vec![host, ("origin", "HTTPS://APP.example:8443")],
            false,
            false,
        ),
        (
            vec![host, ("origin", "http://app.example:8443")],
            true,
            false,
        ),
        (vec![host, ("origin", "https://evil.example")], true, true),
        (vec![host, ("origin", "https://app.example")], true, true),
        (vec![host, ("origin", "null")], true, true),
        (vec![("origin", "https://app.example:8443")], true, true),
        (vec![host, ("sec-fetch-site", "cross-site")], true, true),
        (vec![host, ("sec-fetch-site", "same-origin")], false, false),
        (
            vec![("host", "app.example"), ("origin", "https://app.example")],
            false,
            false,
        ),
        (
            vec![
                ("host", "app.example:443"),
                ("origin", "https://app.example"),
            ],
            false,
            false,
        ),
        (
            vec![("host", "app.example:80"), ("origin", "http://app.example")],
            true,
            false,
        ),
    ] {
        let hm = headers(&h);
        assert_eq!(https.cross_site(&hm, &uri), https_cross, "https {h:?}");
        assert_eq!(plain.cross_site(&hm, &uri), plain_cross, "plain {h:?}");
    }
    // HTTP/2: the authority is in the URI.
    let h2: Uri = "https://app.example:8443/.keygate/sign-in".parse().unwrap();
    let h = headers(&[("origin", "https://app.example:8443")]);
    assert!(!https.cross_site(&h, &h2));
}

#[test]
fn own_cookies_are_stripped_before_forwarding() {
    let s = sign_in(true);
    let mut h = headers(&[
        (
            "cookie",
            "a=1; __Host-keygate_session=x;keygate_csrf=y ; b=2",
        ),
        ("cookie", "__Host-keygate_csrf=z"),
        ("cookie", "c=3"),
    ]);
    s.strip_cookies(&mut h);
    let all: Vec<_> = h.get_all(header::COOKIE).iter().collect();
    assert_eq!(all, ["a=1; b=2; c=3"]);
    let mut only_ours = headers(&[("cookie", "__Host-keygate_session=x; keygate_session=y")]);
    s.strip_cookies(&mut only_ours);
    assert!(!only_ours.contains_key(header::COOKIE));
    // Names are exact: a look-alike belongs to the upstream.
    let mut alike = headers(&[("cookie", "keygate_session2=1; my__Host-keygate_csrf=2")]);
    s.strip_cookies(&mut alike);
    assert_eq!(
        alike[header::COOKIE],
        "keygate_session2=1; my__Host-keygate_csrf=2"
    );
    let mut none = HeaderMap::new();
    s.strip_cookies(&mut none);
    assert!(none.is_empty());
}

#[test]
fn the_redirect_carries_the_request_target_as_next() {
    let s = sign_in(true);
    let loc = |uri: &str| {
        let resp = s.redirect(&uri.parse().unwrap());
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        assert_eq!(resp.headers()[header::CACHE_CONTROL], "no-store");
        resp.headers()[header::LOCATION]
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(loc("/"), SIGN_IN);
    assert_eq!(
        loc("/some/path?x=1&y=a+b%20c#f"),
        "/.keygate/sign-in?next=/some/path?x%3D1%26y%3Da%2Bb%2520c"
    );
    assert_eq!(loc("//evil.com/x"), SIGN_IN);
    assert_eq!(loc("/.keygate/sign-in?next=/x"), SIGN_IN);
    // What the page reads back is what the request asked for.
    let encoded = loc("/a/b?q=1&r=%2F");
    let query = encoded.split_once('?').unwrap().1;
    let next = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "next")
        .unwrap()
        .1;
    assert_eq!(next, "/a/b?q=1&r=%2F");
}

// The endpoints over real connections.

struct State {
    signin: SignIn,
    verifier: Arc<Verifier>,
}

struct Harness {
    rt: tokio::runtime::Runtime,
    addr: SocketAddr,
    state: Arc<State>,
    dir: tempfile::TempDir,
    /// A valid token named `alice`, and a revoked one named `bob`.
    token: String,
    revoked: String,
    /// Whether the listener's cookies are HTTPS ones.
    https: bool,
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect()
    }

    /// The value a `Set-Cookie` gives `name`.
    fn cookie(&self, name: &str) -> Option<String> {
        self.set_cookies().into_iter().find_map(|c| {
            let (n, rest) = c.split_once('=')?;
            (n == name).then(|| rest.split(';').next().unwrap().to_owned())
        })
    }

    /// The `value` of the form field `name` in the page.
    fn field(&self, name: &str) -> Option<String> {
        let marker = format!("name=\"{name}\" value=\"");
        let rest = self.body.split_once(&marker)?.1;
        Some(rest.split('"').next().unwrap().to_owned())
    }
}

/// A body sent in chunks of unknown total length (chunked transfer encoding).
struct Chunks(Vec<Bytes>);

impl hyper::body::Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(if self.0.is_empty() {
            None
        } else {
            Some(Ok(Frame::data(self.0.remove(0))))
        })
    }
}

impl Harness {
    fn new(flags: &[(&str, &str)]) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let setup = settings(dir.path(), flags);
        let settings = &setup.base;
        let now = OffsetDateTime::now_utc();
        let mut txn = settings.store.begin(Wait::No, &settings.prefix).unwrap();
        let (store, pepper) = txn.parts();
        let (_, token) = store.create(pepper, "alice", vec![], None, now).unwrap();
        let (bob, revoked) = store.create(pepper, "bob", vec![], None, now).unwrap();
        store.revoke_id(&bob.id, now).unwrap();
        txn.commit().unwrap();
        let (tokens, metrics, audit) = loaded(settings, dir.path());
        let verifier = Arc::new(Verifier::new(&settings.verifier, tokens, metrics, audit));
        let state = Arc::new(State {
            signin: SignIn::new(
                &setup.login,
                Arc::clone(&verifier),
                crate::testing::store(),
                crate::key::ProcessKey::new(),
            ),
            verifier,
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let served = Arc::clone(&state);
        rt.spawn(async move {
            while let Ok((stream, peer)) = listener.accept().await {
                let s = Arc::clone(&served);
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let s = Arc::clone(&s);
                        async move {
                            let resp = s.signin.handle(req, peer.ip()).await;
                            Ok::<_, Infallible>(resp)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Harness {
            rt,
            addr,
            state,
            dir,
            token: token.expose_secret().to_owned(),
            revoked: revoked.expose_secret().to_owned(),
            https: setup.login.secure,
        }
    }

    fn send<B>(&self, method: &str, uri: &str, headers: &[(&str, &str)], body: B) -> Reply
    where
        B: hyper::body::Body<Data = Bytes, Error = Infallible> + Send + 'static,
    {
        self.rt.block_on(async {
            let stream = tokio::net::TcpStream::connect(self.addr).await.unwrap();
            let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .unwrap();
            tokio::spawn(conn);
            let mut b = Request::builder().method(method).uri(uri);
            if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
                b = b.header(header::HOST, "127.0.0.1");
            }
            for (k, v) in headers {
                b = b.header(*k, *v);
            }
            let resp = tx.send_request(b.body(body).unwrap()).await.unwrap();
            let (parts, body) = resp.into_parts();
            let body = body.collect().await.unwrap().to_bytes();
            Reply {
                status: parts.status,
                headers: parts.headers,
                body: String::from_utf8(body.to_vec()).unwrap(),
            }
        })
    }

    fn get(&self, uri: &str, headers: &[(&str, &str)]) -> Reply {
        self.send("GET", uri, headers, Full::new(Bytes::new()))
    }

    fn post(&self, uri: &str, headers: &[(&str, &str)], form: &[(&str, &str)]) -> Reply {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut h = vec![("content-type", FORM_TYPE)];
        h.extend_from_slice(headers);
        self.send("POST", uri, &h, Full::new(Bytes::from(body)))
    }

    /// A CSRF cookie header and field value, as a sign-in page hands them out.
    fn csrf(&self) -> (String, String) {
        let page = self.get(SIGN_IN, &[]);
        let name = SignIn::csrf_cookie_name(self.https);
        let value = page.cookie(name).unwrap();
        (format!("{name}={value}"), value)
    }

    /// Signs in with `token`; returns the reply and the session cookie header.
    fn sign_in(&self, token: &str, next: &str) -> (Reply, Option<String>) {
        let (cookie, csrf) = self.csrf();
        let r = self.post(
            SIGN_IN,
            &[("cookie", &cookie)],
            &[("token", token), ("csrf", &csrf), ("next", next)],
        );
        let name = SignIn::session_cookie_name(self.https);
        let session = r.cookie(name).map(|v| format!("{name}={v}"));
        (r, session)
    }

    /// Every audit line so far (closes the log).
    fn audit(&self) -> (String, Vec<serde_json::Value>) {
        self.state.verifier.audit().close();
        let text = std::fs::read_to_string(self.dir.path().join("audit.log")).unwrap();
        let lines = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (text, lines)
    }
}

fn assert_page_headers(r: &Reply) {
    let h = &r.headers;
    assert_eq!(h[header::CONTENT_TYPE], "text/html; charset=utf-8");
    assert_eq!(h[header::CACHE_CONTROL], "no-store");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h[header::REFERRER_POLICY], "same-origin");
    assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(
        csp.starts_with("default-src 'none'; style-src 'sha256-"),
        "{csp}"
    );
}

#[test]
fn the_page_has_the_form_and_sets_a_csrf_cookie() {
    let t = Harness::new(&[]);
    let r = t.get("/.keygate/sign-in?next=/some/path?x=1", &[]);
    assert_eq!(r.status, StatusCode::OK);
    assert_page_headers(&r);
    for part in [
        "<title>Sign in \u{b7} keygate</title>",
        "<h1>Sign in to keygate</h1>",
        "<form id=\"sign-in-form\" method=\"post\" action=\"/.keygate/sign-in\">",
        "<label for=\"token\">",
        "<input type=\"password\" id=\"token\" name=\"token\" autocomplete=\"off\"",
        "<button type=\"submit\">",
    ] {
        assert!(r.body.contains(part), "{part}");
    }
    assert!(!r.body.contains("id=\"error\""));
    assert_eq!(r.field("next").unwrap(), "/some/path?x=1");
    let csrf = r.cookie("__Host-keygate_csrf").unwrap();
    assert_eq!(r.field("csrf").unwrap(), csrf);
    let set = r.set_cookies();
    assert_eq!(set.len(), 1);
    assert!(set[0].ends_with("; Path=/; Max-Age=3600; HttpOnly; Secure; SameSite=Lax"));
    // A valid cookie is reused, so two open tabs do not spoil each other's forms.
    let again = t.get(
        SIGN_IN,
        &[("cookie", &format!("__Host-keygate_csrf={csrf}"))],
    );
    assert!(again.set_cookies().is_empty());
    assert_eq!(again.field("csrf").unwrap(), csrf);
    assert_eq!(again.field("next").unwrap(), "/");
    // One this process did not sign is replaced.
    let forged = t.get(SIGN_IN, &[("cookie", "__Host-keygate_csrf=forged")]);
    assert_ne!(forged.cookie("__Host-keygate_csrf").unwrap(), "forged");
    // An unsafe next never reaches the page.
    let evil = t.get("/.keygate/sign-in?next=//evil.com", &[]);
    assert_eq!(evil.field("next").unwrap(), "/");
    let head = t.send("HEAD", SIGN_IN, &[], Full::new(Bytes::new()));
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.body.is_empty());
}

#[test]
fn a_valid_token_begins_a_session_and_sign_out_ends_it() {
    let t = Harness::new(&[]);
    let (r, session) = t.sign_in(&t.token, "/app/x?y=1");
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.headers[header::LOCATION], "/app/x?y=1");
    assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");
    let set = r.set_cookies();
    assert!(set.iter().any(|c| c.starts_with("__Host-keygate_session=")
        && c.ends_with("; Path=/; Max-Age=43200; HttpOnly; Secure; SameSite=Lax")));
    assert!(
        set.iter()
            .any(|c| c.starts_with("__Host-keygate_csrf=; Path=/; Max-Age=0"))
    );
    let session = session.unwrap();
    assert!(!session.contains(&t.token) && !session.contains("alice"));
    let found = t
        .state
        .signin
        .session(&headers(&[("cookie", &session)]), LOCAL)
        .unwrap();
    assert_eq!(t.state.signin.sessions().len(), 1);
    let alice_id = found.token_id.clone();

    // Signed in, the page offers sign-out.
    let page = t.get("/.keygate/sign-in?next=/app", &[("cookie", &session)]);
    assert_eq!(page.status, StatusCode::OK);
    assert_page_headers(&page);
    assert!(page.body.contains("signed in as <strong>alice</strong>"));
    assert!(page.body.contains("id=\"sign-out\""));
    assert!(page.body.contains("href=\"/app\""));
    let csrf = page.field("csrf").unwrap();
    assert_eq!(csrf, found.csrf());

    // Sign-out needs the session's CSRF value.
    let wrong = t.post(SIGN_OUT, &[("cookie", &session)], &[("csrf", "nope")]);
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    assert!(
        t.state
            .signin
            .session(&headers(&[("cookie", &session)]), LOCAL)
            .is_some()
    );
    let out = t.post(SIGN_OUT, &[("cookie", &session)], &[("csrf", &csrf)]);
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.headers[header::LOCATION], SIGN_IN);
    // Both names are cleared on HTTPS: a session cookie left from plain HTTP goes too.
    assert_eq!(
        out.set_cookies(),
        [
            "__Host-keygate_session=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax",
            "keygate_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"
        ]
    );
    assert!(
        t.state
            .signin
            .session(&headers(&[("cookie", &session)]), LOCAL)
            .is_none()
    );
    assert!(t.state.signin.sessions().is_empty());
    // Without a session, sign-out still clears the cookies, under both names.
    let again = t.post(SIGN_OUT, &[("cookie", &session)], &[]);
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    assert_eq!(again.set_cookies().len(), 2);

    let (text, lines) = t.audit();
    assert!(!text.contains(&t.token) && !text.contains(&csrf));
    assert!(!text.contains(session.split_once('=').unwrap().1));
    let reasons: Vec<_> = lines
        .iter()
        .map(|l| l["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["signed_in", "csrf", "signed_out", "signed_out"]);
    assert_eq!(lines[0]["decision"], "allow");
    assert_eq!(lines[0]["token_id"], alice_id.as_str());
    assert_eq!(lines[0]["token_name"], "alice");
    assert_eq!(lines[0]["path"], SIGN_IN);
    assert_eq!(lines[0]["method"], "POST");
    assert_eq!(lines[0]["client"], "127.0.0.1");
    assert_eq!(lines[0]["status"], 303);
    assert_eq!(lines[2]["path"], SIGN_OUT);
    assert_eq!(lines[2]["token_id"], alice_id.as_str());
    assert!(
        t.state
            .verifier
            .metrics()
            .render()
            .contains("keygate_auth_decisions_total{result=\"allow\",reason=\"signed_in\"} 1")
    );
}

#[test]
fn a_session_of_a_revoked_token_shows_the_form_again() {
    let t = Harness::new(&[]);
    let (_, session) = t.sign_in(&t.token, "/");
    let session = session.unwrap();
    let mut txn =
        kg_tokens::StorePaths::new(&t.dir.path().join("state"), &t.dir.path().join("private"))
            .begin(Wait::No, &kg_tokens::Prefix::default())
            .unwrap();
    let (store, _) = txn.parts();
    assert_eq!(
        store
            .revoke_name("alice", OffsetDateTime::now_utc())
            .unwrap(),
        1
    );
    txn.commit().unwrap();
    let page = t.get(SIGN_IN, &[("cookie", &session)]);
    assert!(page.body.contains("id=\"sign-in-form\""));
    assert!(t.state.signin.sessions().is_empty());
}

#[test]
fn a_refused_token_gets_the_same_answer_whatever_the_reason() {
    let t = Harness::new(&[]);
    let mut bodies = Vec::new();
    // Well formed and checksummed, but not in the store: `unknown`.
    let wrong_secret = kg_tokens::generate(&kg_tokens::Prefix::default())
        .1
        .expose_secret()
        .to_owned();
    for token in [t.revoked.as_str(), "kg_nonsense", &wrong_secret] {
        let (r, session) = t.sign_in(token, "/x");
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{token}");
        assert!(session.is_none());
        assert_page_headers(&r);
        assert_eq!(
            r.headers[header::WWW_AUTHENTICATE],
            "Bearer realm=\"keygate\""
        );
        assert!(
            r.body
                .contains("<p id=\"error\" role=\"alert\">That token was not accepted.</p>")
        );
        assert!(!r.body.contains(token));
        assert_eq!(r.field("next").unwrap(), "/x");
        bodies.push(r.body.replace(&r.field("csrf").unwrap(), ""));
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
    let (missing, _) = t.sign_in("", "/");
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert!(missing.body.contains("Enter a token"));
    let (text, lines) = t.audit();
    let reasons: Vec<_> = lines
        .iter()
        .map(|l| l["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        ["revoked", "malformed", "unknown", "missing_credentials"]
    );
    assert!(lines[0]["token_id"].is_string());
    assert!(lines[1]["token_id"].is_null());
    for token in [&t.token, &t.revoked, &wrong_secret] {
        assert!(!text.contains(token.as_str()));
    }
    assert!(t.state.signin.sessions().is_empty());
}

#[test]
fn a_form_without_its_csrf_pair_or_from_another_site_is_refused() {
    let t = Harness::new(&[]);
    let (cookie, csrf) = t.csrf();
    let token = t.token.as_str();
    type Pairs<'a> = Vec<(&'a str, &'a str)>;
    let cases: [(Pairs<'_>, Pairs<'_>); 5] = [
        // No cookie.
        (vec![], vec![("token", token), ("csrf", &csrf)]),
        // No field.
        (vec![("cookie", &cookie)], vec![("token", token)]),
        // Field and cookie differ.
        (
            vec![("cookie", &cookie)],
            vec![("token", token), ("csrf", "x")],
        ),
        (
            vec![("cookie", &cookie), ("origin", "https://evil.example")],
            vec![("token", token), ("csrf", &csrf)],
        ),
        (
            vec![("cookie", &cookie), ("sec-fetch-site", "cross-site")],
            vec![("token", token), ("csrf", &csrf)],
        ),
    ];
    for (h, form) in &cases {
        let r = t.post(SIGN_IN, h, form);
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{h:?}");
        assert!(r.body.contains("id=\"error\""));
        assert!(r.cookie("__Host-keygate_session").is_none());
        assert!(r.field("csrf").is_some(), "a fresh form to retry with");
    }
    // The same request from our own origin goes through.
    let ok = t.post(
        SIGN_IN,
        &[
            ("cookie", &cookie),
            ("origin", "https://127.0.0.1"),
            ("sec-fetch-site", "same-origin"),
        ],
        &[("token", token), ("csrf", &csrf)],
    );
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    let (_, lines) = t.audit();
    let reasons: Vec<_> = lines
        .iter()
        .map(|l| l["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        ["csrf", "csrf", "csrf", "csrf", "csrf", "signed_in"]
    );
    assert_eq!(lines[0]["status"], 403);
}

#[test]
fn a_client_out_of_attempts_is_not_verified() {
    let t = Harness::new(&[
        ("server.rate_limit_burst", "2"),
        ("server.rate_limit_refill", "1h"),
    ]);
    for _ in 0..2 {
        assert_eq!(
            t.sign_in("kg_wrong", "/").0.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let (r, session) = t.sign_in(&t.token, "/");
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(session.is_none());
    let secs: u64 = r.headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(secs >= 1);
    assert!(r.body.contains("Too many failed attempts"));
    assert_page_headers(&r);
    let (_, lines) = t.audit();
    let reasons: Vec<_> = lines
        .iter()
        .map(|l| l["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["malformed", "malformed", "throttled"]);
    assert_eq!(lines[2]["status"], 429);
    assert!(t.state.signin.sessions().is_empty());
}

/// Found by an independent review of the split: with one bucket for bearer tokens and the
/// form, a script at the same address failing with a bad token (which `/auth` and the proxy
/// charge on every try, and never refuse a good secret for) kept everyone there at 429.
#[test]
fn bearer_failures_from_an_address_do_not_lock_people_there_out_of_the_form() {
    let t = Harness::new(&[
        ("server.rate_limit_burst", "2"),
        ("server.rate_limit_refill", "1h"),
    ]);
    let ctx = kg_verifier::Ctx {
        client: "127.0.0.1".parse().unwrap(),
        method: "GET",
        path: Some(b"/app"),
        request_id: None,
    };
    for _ in 0..5 {
        let ask = Ask {
            credential: Credential::Bearer("kg_junk"),
            need: Need::Nothing,
            ctx,
            throttle: Throttle::AfterFailure,
            allow_as: Outcome::Allow,
            allow_logged_later: false,
        };
        let refused = t
            .state
            .verifier
            .judge(&ask, |d| (matches!(d, Decision::Invalid), 401));
        assert!(refused);
    }
    let (r, session) = t.sign_in(&t.token, "/");
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(session.is_some());
}

#[test]
fn bodies_are_bounded_typed_and_methods_checked() {
    let t = Harness::new(&[("server.plain_http", "true")]);
    let big = format!("token={}", "a".repeat(MAX_FORM_BYTES));
    let r = t.send(
        "POST",
        SIGN_IN,
        &[("content-type", FORM_TYPE)],
        Full::new(Bytes::from(big.clone())),
    );
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    // Chunked, without a declared length.
    let chunks = Chunks(vec![
        Bytes::from(big[..5000].to_owned()),
        Bytes::from(big[5000..].to_owned()),
    ]);
    let r = t.send("POST", SIGN_IN, &[("content-type", FORM_TYPE)], chunks);
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    for ct in [
        None,
        Some("text/plain"),
        Some("multipart/form-data; boundary=x"),
    ] {
        let h: Vec<_> = ct.map(|c| ("content-type", c)).into_iter().collect();
        let r = t.send("POST", SIGN_IN, &h, Full::new(Bytes::from("token=x")));
        assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct:?}");
    }
    // Parameters after the type are fine.
    let (cookie, csrf) = t.csrf();
    assert!(cookie.starts_with("keygate_csrf="));
    let body = format!("token={}&csrf={csrf}", t.token);
    let r = t.send(
        "POST",
        SIGN_IN,
        &[
            (
                "content-type",
                "Application/X-WWW-Form-Urlencoded; charset=UTF-8",
            ),
            ("cookie", &cookie),
        ],
        Full::new(Bytes::from(body)),
    );
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.headers[header::LOCATION], "/");
    assert!(r.cookie("keygate_session").is_some());
    for (method, path, allow) in [
        ("PUT", SIGN_IN, "GET, HEAD, POST"),
        ("DELETE", SIGN_IN, "GET, HEAD, POST"),
        ("GET", SIGN_OUT, "POST"),
    ] {
        let r = t.send(method, path, &[], Full::new(Bytes::new()));
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_eq!(r.headers[header::ALLOW], allow);
    }
    let r = t.get("/.keygate/other", &[]);
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}
