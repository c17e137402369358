//! keygate as a reverse proxy (`server.upstream`): who gets through to the upstream, what
//! reaches it, streaming, WebSockets, errors, sign-in with curl, startup validation and
//! `keygate up --upstream`. The upstream is in-process (`test_support::proxy`) and echoes what
//! reached it, so every assertion about forwarded headers reads the upstream's own view.
//! Chromium signing in is in browser.rs.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use test_support::{Env, Proc, have};

use test_support::server::*;

use test_support::proxy::*;

/// The identity a client claims, as (header, value): the upstream must never see these values
/// (the X-Forwarded-* identity headers are sent separately: they also turn the bypass off).
const FORGED: [(&str, &str); 8] = [
    ("x-auth-request-user", "mallory"),
    ("x-auth-request-scopes", "admin"),
    ("x-auth-request-token-id", "000000000000"),
    ("x-auth-request-email", "root@example.com"),
    ("remote-user", "root"),
    ("remote-email", "root@example.com"),
    ("remote-groups", "admins"),
    ("x-remote-user", "root"),
];

/// `-H` arguments for curl that send [`FORGED`].
fn forged() -> Vec<String> {
    FORGED
        .iter()
        .flat_map(|(k, v)| ["-H".to_owned(), format!("{k}: {v}")])
        .collect()
}

/// The upstream saw none of the client's identity claims: only keygate's own
/// `X-Auth-Request-User/-Scopes/-Token-Id` may be present, with keygate's values.
#[track_caller]
fn assert_no_client_identity(echo: &serde_json::Value) {
    let keygates = [
        "x-auth-request-user",
        "x-auth-request-scopes",
        "x-auth-request-token-id",
    ];
    for (h, forged) in FORGED {
        let v = header(echo, h);
        assert_ne!(
            v,
            Some(forged),
            "the client's {h} reached the upstream: {echo:#}"
        );
        if !keygates.contains(&h) {
            assert!(v.is_none(), "{h} reached the upstream: {echo:#}");
        }
    }
    for h in ["x-forwarded-user", "x-forwarded-email"] {
        assert!(
            header(echo, h).is_none(),
            "{h} reached the upstream: {echo:#}"
        );
    }
}

/// Runs curl with owned arguments.
fn curl_args(args: &[String]) -> Resp {
    curl(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// curl `args` and parse the JSON echo the upstream answered with.
#[track_caller]
fn echo(args: &[&str]) -> (Resp, serde_json::Value) {
    let r = curl(args);
    assert_eq!(r.status, 200, "{r:?}");
    let v = serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("not an echo ({e}): {r:?}"));
    (r, v)
}

#[track_caller]
fn echo_args(args: &[String]) -> (Resp, serde_json::Value) {
    echo(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// Uploads `file` with POST and saves the answer in `out`; the status code.
fn upload(url: &str, file: &std::path::Path, out: &std::path::Path, extra: &[&str]) -> u16 {
    let o = Command::new("curl")
        .args(["-sS", "--max-time", "60", "-o"])
        .arg(out)
        .args([
            "-w",
            "%{http_code}",
            "-H",
            "Content-Type: application/octet-stream",
        ])
        .arg("--data-binary")
        .arg(format!("@{}", file.display()))
        .args(extra)
        .arg(url)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).parse().unwrap()
}

/// The peer itself, without keygate: when this passes and a scenario below fails, the failure
/// is keygate's.
#[test]
fn the_test_upstream_echoes_headers_bodies_and_websockets() {
    if !have("curl") {
        return;
    }
    let env = Env::new();
    for up in [Upstream::tcp(), Upstream::unix(&env.root().join("up.sock"))] {
        let (base, via) = match up.url.strip_prefix("unix:") {
            Some(path) => ("http://localhost".to_owned(), vec!["--unix-socket", path]),
            None => (up.url.clone(), vec![]),
        };
        let mut args = via.clone();
        let u = format!("{base}/a/b?c=1");
        args.extend(["-H", "X-Test: yes", &u]);
        let (_, e) = echo(&args);
        assert_eq!(
            (e["method"].as_str(), e["uri"].as_str()),
            (Some("GET"), Some("/a/b?c=1"))
        );
        assert_eq!(header(&e, "x-test"), Some("yes"));
        assert_eq!(up.last()["uri"], "/a/b?c=1");
        let (file, out) = (env.root().join("in.bin"), env.root().join("out.bin"));
        payload(&file, 5 * 1024 * 1024);
        assert_eq!(upload(&format!("{base}/echo"), &file, &out, &via), 200);
        assert_eq!(sha256_file(&out), sha256_file(&file));
    }
    let up = Upstream::tcp();
    assert_eq!(ws_echo(&format!("ws://{}/ws", up.addr()), &[]), Ws::Echoed);
    let (first, last) = drip_timing(up.addr(), "/drip");
    assert!(
        first < DRIP_PAUSE / 2 && last >= DRIP_PAUSE,
        "{first:?} {last:?}"
    );
    let slammer = Slammer::start();
    drop(std::net::TcpStream::connect(slammer.addr).unwrap());
    assert!(soon(|| slammer.accepted() == 1));
}

#[test]
fn loopback_requests_skip_sign_in_but_never_carry_a_client_identity() {
    if !have("curl") {
        return;
    }
    let env = Env::new();
    let up = Upstream::tcp();
    let addr = local_addr();
    // Plain HTTP turns the bypass off unless asked for (a proxy in front that adds no
    // forwarding header would make everyone local).
    let kg = keygate_proxy(&env, addr, &up.url, false, &[]);
    let r = curl(&[&format!("http://{addr}/")]);
    assert_eq!(r.status, 401, "{r:?}");
    drop(kg);
    let _kg = plain_proxy(&env, addr, &up.url, true);
    let url = |p: &str| format!("http://{addr}{p}");

    // keygate's own endpoints live under /.keygate/ and never reach the upstream.
    let health = curl(&[&url("/.keygate/health")]);
    assert_eq!((health.status, health.body.as_str()), (200, "healthy"));
    assert!(up.seen().is_empty(), "{:#?}", up.seen());

    // A loopback client of keygate's own user (root here, with the danger setting that
    // `plain_proxy` adds) with no forwarding headers is let through, as that user: the
    // client's own identity claims never reach the upstream.
    let mut args = forged();
    args.push(url("/hello/world?x=1&y=%2F"));
    let (_, e) = echo_args(&args);
    assert_eq!(e["method"], "GET");
    assert_eq!(e["uri"], "/hello/world?x=1&y=%2F");
    assert_no_client_identity(&e);
    assert_eq!(header(&e, "x-auth-request-user"), Some("root"), "{e:#}");
    assert_eq!(header(&e, "x-auth-request-session"), Some("local"), "{e:#}");
    for h in ["x-auth-request-scopes", "x-auth-request-token-id"] {
        assert!(header(&e, h).is_none(), "{h} on a bypassed request: {e:#}");
    }
    assert!(header(&e, "authorization").is_none());
    assert_eq!(header(&e, "x-forwarded-proto"), Some("http"), "{e:#}");
    assert_eq!(
        header(&e, "x-forwarded-host"),
        Some(addr.to_string().as_str()),
        "{e:#}"
    );
    let xff = header(&e, "x-forwarded-for").unwrap_or_default();
    assert!(xff.ends_with("127.0.0.1"), "{e:#}");
    // Other paths, /health and /auth included, belong to the upstream.
    for p in ["/health", "/auth", "/metrics"] {
        let (_, e) = echo(&[&url(p)]);
        assert_eq!(e["uri"], p);
    }

    // Any sign of a relay turns the bypass off (qBittorrent#18706 and friends).
    for h in [
        "Forwarded: for=203.0.113.9",
        "X-Forwarded-For: 127.0.0.1",
        "X-Forwarded-Host: localhost",
        "X-Forwarded-Proto: https",
        "X-Forwarded-User: root",
        "X-Forwarded-Email: root@example.com",
        "X-Real-IP: 127.0.0.1",
        "Tailscale-User-Login: root@example.com",
        "Cf-Connecting-Ip: 127.0.0.1",
        "True-Client-Ip: 127.0.0.1",
    ] {
        let before = up.seen().len();
        let r = curl(&["-H", h, &url("/private")]);
        assert_eq!(r.status, 401, "{h}: {r:?}");
        assert_eq!(
            r.header("www-authenticate"),
            Some("Bearer realm=\"keygate\""),
            "{h}"
        );
        assert_eq!(up.seen().len(), before, "{h} reached the upstream");
    }

    // Responses stream: the first chunk arrives long before the last one is written.
    let (first, last) = drip_timing(addr, "/drip");
    assert!(
        first < DRIP_PAUSE / 2 && last >= DRIP_PAUSE,
        "{first:?} {last:?}"
    );

    // WebSockets ride the bypass too.
    assert_eq!(ws_echo(&format!("ws://{addr}/ws"), &[]), Ws::Echoed);
}

#[test]
fn without_the_bypass_a_token_is_needed_and_only_its_identity_reaches_the_upstream() {
    if !have("curl") {
        return;
    }
    let env = Env::new();
    let alice = token(&env, "alice", &["read", "write"]);
    let up = Upstream::tcp();
    let addr = local_addr();
    let _kg = plain_proxy(&env, addr, &up.url, false);
    let url = |p: &str| format!("http://{addr}{p}");

    // No credentials: 401 for programs, a redirect to sign-in for browser navigations.
    let r = curl(&[&url("/notes")]);
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"keygate\"")
    );
    let html = "Accept: text/html,application/xhtml+xml,*/*;q=0.8";
    let target = url("/notes/a%20b?q=1");
    for method in ["GET", "HEAD"] {
        let mut args = vec!["-H", html, &target];
        if method == "HEAD" {
            args.insert(0, "-I");
        }
        let r = curl(&args);
        assert_eq!(r.status, 303, "{method}: {r:?}");
        let loc = r.header("location").unwrap_or_default();
        assert_eq!(sign_in_next(loc), "/notes/a%20b?q=1", "{method}: {loc}");
    }
    let post = curl(&["-X", "POST", "-H", html, "-d", "x=1", &url("/notes")]);
    assert_eq!(post.status, 401, "{post:?}");
    let wrong = curl(&[
        "-H",
        "Authorization: Bearer kg_0123456789AB_nope",
        &url("/notes"),
    ]);
    assert_eq!(wrong.status, 401);
    assert_eq!(
        wrong.header("www-authenticate"),
        Some("Bearer realm=\"keygate\", error=\"invalid_token\"")
    );
    assert!(up.seen().is_empty(), "{:#?}", up.seen());

    // A token: the upstream sees its name, id and scopes, and neither the token nor anything
    // the client claimed about itself.
    let auth = bearer(&alice);
    let mut args = forged();
    args.extend(
        [
            "-H",
            &auth,
            "-H",
            "X-Forwarded-For: 203.0.113.9",
            "-H",
            "X-Forwarded-User: root",
            "-H",
            "Cookie: theme=dark; keygate_session=forged; __Host-keygate_session=forged; lang=en",
            "-H",
            "Host: app.internal:8080",
            &url("/notes?page=2"),
        ]
        .map(str::to_owned),
    );
    let (_, e) = echo_args(&args);
    assert_eq!(e["uri"], "/notes?page=2");
    assert_eq!(header(&e, "x-auth-request-user"), Some("alice"), "{e:#}");
    assert_eq!(
        header(&e, "x-auth-request-scopes"),
        Some("read write"),
        "{e:#}"
    );
    let id = header(&e, "x-auth-request-token-id").unwrap_or_default();
    assert!(id.len() == 12 && alice.contains(id), "{e:#}");
    assert!(header(&e, "authorization").is_none(), "{e:#}");
    assert_no_client_identity(&e);
    let xff = header(&e, "x-forwarded-for").unwrap_or_default();
    assert!(
        xff.ends_with("127.0.0.1") && !xff.contains("203.0.113.9"),
        "{e:#}"
    );
    assert_eq!(header(&e, "x-forwarded-proto"), Some("http"));
    assert_eq!(
        header(&e, "x-forwarded-host"),
        Some("app.internal:8080"),
        "{e:#}"
    );
    let cookie = header(&e, "cookie").unwrap_or_default();
    assert!(
        cookie.contains("theme=dark")
            && cookie.contains("lang=en")
            && !cookie.contains("keygate_session"),
        "{e:#}"
    );

    // keygate's own endpoints keep working under /.keygate/.
    assert_eq!(curl(&["-H", &auth, &url("/.keygate/auth")]).status, 200);
    assert_eq!(curl(&[&url("/.keygate/auth")]).status, 401);
    assert_eq!(curl(&[&url("/.keygate/health")]).body, "healthy");

    // WebSockets are authorized like everything else.
    let ws = format!("ws://{addr}/ws");
    assert_eq!(ws_echo(&ws, &[]), Ws::Refused(401));
    assert_eq!(
        ws_echo(&ws, &[("authorization", "Bearer kg_0123456789AB_nope")]),
        Ws::Refused(401)
    );
    assert_eq!(
        ws_echo(&ws, &[("authorization", &format!("Bearer {alice}"))]),
        Ws::Echoed
    );
}

#[test]
fn bodies_stream_both_ways_and_oversized_ones_get_413() {
    if !have("curl") {
        return;
    }
    let env = Env::new();
    let alice = token(&env, "alice", &[]);
    let up = Upstream::tcp();
    let addr = local_addr();
    let _kg = keygate_proxy(
        &env,
        addr,
        &up.url,
        false,
        &[
            "--set",
            "server.local_bypass=false",
            "--set",
            "server.max_request_body_mib=8",
        ],
    );
    let auth = bearer(&alice);
    let (file, out) = (env.root().join("5mib.bin"), env.root().join("back.bin"));
    payload(&file, 5 * 1024 * 1024);
    let echo_url = format!("http://{addr}/echo");
    assert_eq!(upload(&echo_url, &file, &out, &["-H", &auth]), 200);
    assert_eq!(std::fs::metadata(&out).unwrap().len(), 5 * 1024 * 1024);
    assert_eq!(sha256_file(&out), sha256_file(&file));
    // Chunked (no Content-Length) streams too.
    assert_eq!(
        upload(
            &echo_url,
            &file,
            &out,
            &["-H", &auth, "-H", "Transfer-Encoding: chunked"]
        ),
        200
    );
    assert_eq!(sha256_file(&out), sha256_file(&file));

    // Over server.max_request_body_mib: 413, and the upstream never sees it.
    let big = env.root().join("9mib.bin");
    payload(&big, 9 * 1024 * 1024);
    let before = up.seen().len();
    assert_eq!(
        upload(&format!("http://{addr}/upload"), &big, &out, &["-H", &auth]),
        413
    );
    assert_eq!(up.seen().len(), before, "{:#?}", up.seen().last());
}

#[test]
fn a_dead_upstream_gives_502_with_a_correlation_id_the_audit_log_also_has() {
    if !have("curl") {
        return;
    }
    let env = Env::new();
    let alice = token(&env, "alice", &[]);
    let auth = bearer(&alice);
    for (what, upstream) in [
        (
            "nothing listens",
            format!("http://127.0.0.1:{}", free_port()),
        ),
        (
            "closes at once",
            format!("http://{}", Slammer::start().addr),
        ),
    ] {
        let addr = local_addr();
        let kg = plain_proxy(&env, addr, &upstream, false);
        let r = curl(&["-H", &auth, &format!("http://{addr}/page")]);
        assert_eq!(r.status, 502, "{what}: {r:?}");
        let id = correlation_id(&r.body).unwrap_or_else(|| panic!("{what}: no id in {r:?}"));
        assert!(
            soon(|| kg.output().lines().any(|l| l.contains(&id))),
            "{what}: id {id} is not in the log:\n{}",
            kg.output()
        );
        assert!(
            !kg.output().contains(&alice[16..]),
            "a secret reached the log"
        );
    }

    // Unsafe methods are not retried: one POST, one connection to the upstream.
    let slammer = Slammer::start();
    let addr = local_addr();
    let _kg = keygate_proxy(
        &env,
        addr,
        &format!("http://{}", slammer.addr),
        false,
        &["--set", "server.local_bypass=false"],
    );
    let r = curl(&[
        "-H",
        &auth,
        "-X",
        "POST",
        "-d",
        "order=1",
        &format!("http://{addr}/orders"),
    ]);
    assert_eq!(r.status, 502, "{r:?}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(slammer.accepted(), 1, "the POST was sent more than once");
}

/// The id after "correlation id" in a 502 page: the first run of at least 6 id characters.
fn correlation_id(body: &str) -> Option<String> {
    let at = body.to_ascii_lowercase().find("correlation id")? + "correlation id".len();
    let mut rest = &body[at..];
    loop {
        // Skip markup and punctuation between the words and the id.
        rest = rest.trim_start_matches(|c: char| !c.is_ascii_alphanumeric() && c != '<');
        if rest.starts_with('<') {
            rest = &rest[rest.find('>')? + 1..];
            continue;
        }
        let id: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        return (id.len() >= 6).then_some(id);
    }
}

#[test]
fn a_unix_socket_upstream_works_like_a_tcp_one() {
    if !have("curl") {
        return;
    }
    let env = Env::new();
    let up = Upstream::unix(&env.root().join("app.sock"));
    let addr = local_addr();
    let _kg = plain_proxy(&env, addr, &up.url, true);
    let (_, e) = echo(&[&format!("http://{addr}/via/unix?ok=1")]);
    assert_eq!(e["uri"], "/via/unix?ok=1");
    assert_eq!(ws_echo(&format!("ws://{addr}/ws"), &[]), Ws::Echoed);
}

#[test]
fn behind_nginx_the_bypass_is_off_and_only_a_token_gets_through() {
    if !have("nginx") || !have("curl") {
        return;
    }
    let env = Env::new();
    let alice = token(&env, "alice", &["read"]);
    let up = Upstream::tcp();
    let (kg_addr, front) = (local_addr(), local_addr());
    // Default bypass (auto, loopback listener): nginx's X-Forwarded-For turns it off.
    let _kg = keygate_proxy(&env, kg_addr, &up.url, false, &[]);
    let _nginx = nginx_in_front(&env, front, kg_addr);
    let site = |p: &str| format!("http://{front}{p}");

    let r = curl(&[&site("/notes")]);
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"keygate\"")
    );
    let r = curl(&["-H", "Accept: text/html", &site("/notes?a=1")]);
    assert_eq!(r.status, 303, "{r:?}");
    assert_eq!(
        sign_in_next(r.header("location").unwrap_or_default()),
        "/notes?a=1"
    );
    assert!(up.seen().is_empty(), "{:#?}", up.seen());

    let auth = bearer(&alice);
    let mut args = forged();
    args.extend(["-H", &auth, "--interface", "127.0.0.7", &site("/notes")].map(str::to_owned));
    let (_, e) = echo_args(&args);
    assert_eq!(header(&e, "x-auth-request-user"), Some("alice"), "{e:#}");
    assert_eq!(header(&e, "x-auth-request-scopes"), Some("read"), "{e:#}");
    assert!(header(&e, "authorization").is_none(), "{e:#}");
    assert_no_client_identity(&e);
    // nginx is not a trusted proxy here: its claim about the client is dropped.
    assert_eq!(header(&e, "x-forwarded-for"), Some("127.0.0.1"), "{e:#}");
    assert_eq!(header(&e, "x-forwarded-proto"), Some("http"));
    assert_eq!(
        header(&e, "x-forwarded-host"),
        Some(front.to_string().as_str()),
        "{e:#}"
    );

    let ws = format!("ws://{front}/ws");
    assert_eq!(ws_echo(&ws, &[]), Ws::Refused(401));
    assert_eq!(
        ws_echo(&ws, &[("authorization", &format!("Bearer {alice}"))]),
        Ws::Echoed
    );
}

#[test]
fn behind_a_trusted_nginx_the_forwarded_for_chain_is_kept() {
    if !have("nginx") || !have("curl") {
        return;
    }
    let env = Env::new();
    config(&env, "[server]\ntrusted_proxies = [\"127.0.0.1/32\"]\n");
    let alice = token(&env, "alice", &[]);
    let up = Upstream::tcp();
    let (kg_addr, front) = (local_addr(), local_addr());
    let _kg = keygate_proxy(&env, kg_addr, &up.url, false, &[]);
    let _nginx = nginx_in_front(&env, front, kg_addr);
    // Trusted proxies configured: no bypass, even for a loopback client straight to keygate.
    assert_eq!(curl(&[&format!("http://{kg_addr}/x")]).status, 401);
    let auth = bearer(&alice);
    let (_, e) = echo(&[
        "-H",
        &auth,
        "--interface",
        "127.0.0.7",
        &format!("http://{front}/x"),
    ]);
    assert_eq!(
        header(&e, "x-forwarded-for"),
        Some("127.0.0.7, 127.0.0.1"),
        "{e:#}"
    );
    assert_eq!(header(&e, "x-auth-request-user"), Some("alice"));
}

#[test]
fn sign_in_with_curl_sets_a_session_cookie_and_sign_out_ends_it_server_side() {
    if !have("curl") {
        return;
    }
    let env = Env::new();
    let alice = token(&env, "alice", &["read"]);
    let up = Upstream::tcp();
    let addr = local_addr();
    let _kg = plain_proxy(&env, addr, &up.url, false);
    let url = |p: &str| format!("http://{addr}{p}");
    let jar = env.root().join("cookies.txt");
    let jar = jar.to_str().unwrap();

    let page = curl(&[
        "-c",
        jar,
        "-b",
        jar,
        &url("/.keygate/sign-in?next=%2Fnotes%3Fa%3D1"),
    ]);
    assert_eq!(page.status, 200, "{page:?}");
    for needle in [
        "id=\"sign-in-form\"",
        "id=\"token\"",
        "name=\"token\"",
        "type=\"password\"",
    ] {
        assert!(page.body.contains(needle), "{needle}:\n{}", page.body);
    }
    let csrf = input_value(&page.body, "csrf").expect("a csrf field");
    assert_eq!(
        input_value(&page.body, "next").as_deref(),
        Some("/notes?a=1")
    );
    // Posted the way a browser posts the form: from this origin, same-origin.
    let origin = format!("Origin: http://{addr}");
    let post_from = |origin: &str, token: &str, csrf: &str| {
        curl(&[
            "-c",
            jar,
            "-b",
            jar,
            "-H",
            origin,
            "-H",
            "Sec-Fetch-Site: same-origin",
            "--data-urlencode",
            &format!("token={token}"),
            "--data-urlencode",
            &format!("csrf={csrf}"),
            "--data-urlencode",
            "next=/notes?a=1",
            &url("/.keygate/sign-in"),
        ])
    };
    let post = |token: &str, csrf: &str| post_from(&origin, token, csrf);
    let session_cookies = |r: &Resp| -> Vec<String> {
        r.headers
            .iter()
            .filter(|(k, v)| k == "set-cookie" && v.contains("keygate_session="))
            .map(|(_, v)| v.clone())
            .collect()
    };

    let wrong = post("kg_0123456789AB_nope", &csrf);
    assert_eq!(wrong.status, 401, "{wrong:?}");
    assert!(wrong.body.contains("id=\"error\""), "{}", wrong.body);
    assert!(
        wrong.body.contains("That token was not accepted."),
        "{}",
        wrong.body
    );
    assert!(
        session_cookies(&wrong)
            .iter()
            .all(|c| c.contains("keygate_session=;"))
    );
    // The right token with a forged CSRF value does not sign in.
    let forged_csrf = post(&alice, "forged");
    assert_ne!(forged_csrf.status, 303, "{forged_csrf:?}");
    assert!(session_cookies(&forged_csrf).is_empty(), "{forged_csrf:?}");

    // Another site's form, even with a valid CSRF pair, does not sign in.
    let cross = post_from("Origin: http://evil.example", &alice, &csrf);
    assert_ne!(cross.status, 303, "{cross:?}");
    assert!(session_cookies(&cross).is_empty(), "{cross:?}");
    let page = curl(&["-c", jar, "-b", jar, &url("/.keygate/sign-in")]);
    let csrf = input_value(&page.body, "csrf").expect("a csrf field");
    // Chromium sends `Origin: null` for a form POST from a page whose referrer policy is
    // no-referrer (Fetch, "append a request Origin header"), with Sec-Fetch-Site: same-origin.
    let no_referrer = page.body.contains("content=\"no-referrer\"")
        || page.header("referrer-policy") == Some("no-referrer");
    if no_referrer {
        let r = post_from("Origin: null", "kg_0123456789AB_nope", &csrf);
        let error = r
            .body
            .find("id=\"error\"")
            .map(|at| &r.body[at..r.body.len().min(at + 120)]);
        assert_eq!(
            r.status, 401,
            "the sign-in page sets referrer no-referrer, so Chromium posts it with `Origin: null` \
             (and Sec-Fetch-Site: same-origin); that post must reach the token check, got {error:?}"
        );
    }
    let ok = post(&alice, &csrf);
    assert_eq!(ok.status, 303, "{ok:?}");
    assert_eq!(ok.header("location"), Some("/notes?a=1"));
    let set = session_cookies(&ok);
    assert_eq!(set.len(), 1, "{ok:?}");
    let attrs: Vec<String> = set[0]
        .split(';')
        .map(|a| a.trim().to_ascii_lowercase())
        .collect();
    assert!(
        set[0].starts_with("keygate_session="),
        "plain HTTP cookie name: {}",
        set[0]
    );
    for want in ["httponly", "samesite=lax", "path=/"] {
        assert!(
            attrs.iter().any(|a| a == want),
            "{want} missing: {}",
            set[0]
        );
    }
    assert!(
        !attrs.iter().any(|a| a == "secure"),
        "Secure on plain HTTP: {}",
        set[0]
    );
    let value = set[0]["keygate_session=".len()..]
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert!(value.len() >= 16, "{value}");
    assert!(!value.contains(&alice[16..]), "the token is in the cookie");

    // The session carries alice's identity; keygate's cookie stays with keygate.
    let cookie = format!("Cookie: theme=dark; keygate_session={value}");
    let (_, e) = echo(&["-H", &cookie, &url("/notes?a=1")]);
    assert_eq!(header(&e, "x-auth-request-user"), Some("alice"), "{e:#}");
    assert_eq!(header(&e, "cookie"), Some("theme=dark"), "{e:#}");
    let me = curl(&["-H", &cookie, &url("/.keygate/sign-in")]);
    assert!(me.body.contains("id=\"sign-out\""), "{}", me.body);

    // Sign out with the form's own fields; the old cookie is dead even when replayed.
    let mut out = vec!["-H".to_owned(), cookie.clone()];
    for field in ["csrf", "next"] {
        if let Some(v) = input_value(&sign_out_form(&me.body), field) {
            out.extend(["--data-urlencode".to_owned(), format!("{field}={v}")]);
        }
    }
    out.extend([
        "-X".to_owned(),
        "POST".to_owned(),
        url("/.keygate/sign-out"),
    ]);
    let bye = curl_args(&out);
    assert!(matches!(bye.status, 200 | 303), "{bye:?}");
    let replay = curl(&["-H", &cookie, "-H", "Accept: text/html", &url("/notes")]);
    assert_eq!(replay.status, 303, "{replay:?}");
    assert_eq!(curl(&["-H", &cookie, &url("/notes")]).status, 401);

    // A revoked token ends its sessions on the next request.
    let csrf = input_value(
        &curl(&["-c", jar, "-b", jar, &url("/.keygate/sign-in")]).body,
        "csrf",
    )
    .unwrap();
    let again = post(&alice, &csrf);
    assert_eq!(again.status, 303, "{again:?}");
    let value = session_cookies(&again)[0]["keygate_session=".len()..]
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let cookie = format!("Cookie: keygate_session={value}");
    assert_eq!(curl(&["-H", &cookie, &url("/n")]).status, 200);
    env.run("tokenctl", &["revoke", "--name", "alice"]).code(0);
    let after = curl(&["-H", &cookie, "-H", "Accept: text/html", &url("/n")]);
    assert_eq!(after.status, 303, "{after:?}");
}

/// The `<form>` holding the sign-out button (or the whole page when none can be cut out).
fn sign_out_form(html: &str) -> String {
    let Some(button) = html.find("id=\"sign-out\"") else {
        return html.to_owned();
    };
    let start = html[..button].rfind("<form").unwrap_or(0);
    let end = html[button..]
        .find("</form>")
        .map_or(html.len(), |e| button + e);
    html[start..end].to_owned()
}

#[test]
fn the_upstream_is_checked_at_startup_and_its_secrets_are_never_echoed() {
    if !have("curl") {
        return;
    }
    let env = Env::new();
    let cases = [
        ("http://93.184.216.34:80", "public"),
        ("http://user:secret@127.0.0.1:3000", "secret"),
        ("http://127.0.0.1:3000/?a=b", "query"),
    ];
    for (upstream, what) in cases {
        let mut cmd = env.cmd("keygate");
        cmd.args([
            "serve",
            "--plain-http",
            "--listen",
            &local_addr().to_string(),
        ])
        .args(["--set", &format!("server.upstream={upstream}")]);
        let log = env.root().join(format!("{what}.log"));
        let mut p = Proc::spawn("keygate", cmd, &log);
        let code = p.wait_exit(Duration::from_secs(10));
        let out = p.output();
        assert_eq!(code, Some(2), "{upstream}: exit code\n{out}");
        let error = out
            .lines()
            .find(|l| l.starts_with("error:"))
            .unwrap_or_else(|| panic!("{upstream}: no error line:\n{out}"));
        assert!(error.contains("server.upstream"), "{upstream}: {error}");
        match what {
            "public" => {
                assert!(error.contains("public"), "{error}");
                assert!(out.lines().any(|l| l.starts_with("hint:")), "{out}");
            }
            "secret" => assert!(!out.contains("secret"), "the password was echoed:\n{out}"),
            _ => {}
        }
    }
    // Private addresses, .internal names and a base path are fine (the checks above are
    // about the upstream, not any upstream).
    for upstream in [
        "http://10.0.0.1:3000",
        "http://app.internal:3000/base",
        "http://[::1]:3000",
    ] {
        let addr = local_addr();
        let _kg = keygate_proxy(&env, addr, upstream, false, &[]);
        let health = curl(&[&format!("http://{addr}/.keygate/health")]);
        assert_eq!(
            (health.status, health.body.as_str()),
            (200, "healthy"),
            "{upstream}"
        );
    }
}

#[test]
fn up_with_an_upstream_says_root_gets_no_bypass_and_prints_a_curl_line_that_reaches_it() {
    if !have("curl") {
        return;
    }
    let env = Env::new();
    let up = Upstream::tcp();
    let port = free_port();
    let mut child = env
        .cmd("keygate")
        .args([
            "up",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--upstream",
            &up.url,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let guard = Killed(child.id());
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut readers = Vec::new();
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let lines = lines.clone();
        readers.push(std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        }));
    }
    let start = Instant::now();
    let ready = || {
        lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.starts_with("stop with"))
    };
    while start.elapsed() < Duration::from_secs(30) && !ready() {
        if let Ok(Some(status)) = child.try_wait() {
            for r in readers {
                let _ = r.join();
            }
            let text = lines.lock().unwrap().join("\n");
            panic!("keygate up exited ({status}):\n{text}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let lines = lines.lock().unwrap().clone();
    let text = lines.join("\n");
    assert!(text.contains(&format!(":{port}")), "no URL:\n{text}");
    assert!(text.contains(".token"), "no token file:\n{text}");
    // Run as root, `keygate up` grants no bypass, and says why and what would (a user's own
    // `keygate up` names who skips sign-in: local_bypass.rs).
    assert!(
        lines.iter().any(|l| {
            l.contains("sign-in")
                && l.contains("required for every request")
                && l.contains("runs as root")
        }),
        "no note that local requests need credentials as root:\n{text}"
    );
    assert!(
        text.contains("server.danger_local_bypass_as_root"),
        "no name for the setting that would restore it:\n{text}"
    );
    let line = lines
        .iter()
        .find(|l| l.contains("curl "))
        .unwrap_or_else(|| panic!("no curl line:\n{text}"))
        .trim()
        .to_owned();
    let before = up.seen().len();
    let out = Command::new("sh").arg("-c").arg(&line).output().unwrap();
    assert!(
        out.status.success(),
        "{line}\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "200", "{line}");
    assert!(
        up.seen().len() > before,
        "the curl line did not reach the upstream: {line}"
    );
    drop(guard);
    let _ = child.wait();
}

/// Kills a pid when dropped (the child of `keygate up`, also when an assertion fails).
struct Killed(u32);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.to_string()])
            .status();
    }
}

#[test]
fn local_requests_from_other_sites_or_rebound_names_are_not_let_through() {
    if !have("curl") {
        return;
    }
    let env = Env::new();
    let up = Upstream::tcp();
    let addr = local_addr();
    let _kg = plain_proxy(&env, addr, &up.url, true);
    let url = |p: &str| format!("http://{addr}{p}");

    // The local user's own page: same origin, passes.
    let same = curl(&[
        "-X",
        "POST",
        "-H",
        &format!("Origin: http://{addr}"),
        "-H",
        "Sec-Fetch-Site: same-origin",
        &url("/echo"),
    ]);
    assert_eq!(same.status, 200, "{same:?}");
    // Another site's page making the local browser post, or another port on this host.
    for site in ["cross-site", "same-site"] {
        let r = curl(&[
            "-X",
            "POST",
            "-H",
            "Origin: https://evil.example",
            "-H",
            &format!("Sec-Fetch-Site: {site}"),
            &url("/echo"),
        ]);
        assert_eq!(r.status, 403, "{site}: {r:?}");
    }
    // A browser without fetch metadata: its Origin decides.
    let r = curl(&[
        "-X",
        "POST",
        "-H",
        "Origin: http://localhost:3000",
        &url("/echo"),
    ]);
    assert_eq!(r.status, 403, "{r:?}");
    // Cross-site WebSocket hijacking.
    assert_eq!(
        ws_echo(
            &format!("ws://{addr}/ws"),
            &[
                ("origin", "https://evil.example"),
                ("sec-fetch-site", "cross-site")
            ]
        ),
        Ws::Refused(403)
    );
    // DNS rebinding: the page's own name, resolved to 127.0.0.1, is in Host.
    let r = curl(&["-H", "Host: evil.example", &url("/secret")]);
    assert_eq!(r.status, 401, "{r:?}");
    assert!(
        up.seen().iter().all(|e| e["uri"] != "/secret"),
        "{:#?}",
        up.seen()
    );
}

#[test]
fn underscored_identity_headers_h2c_and_climbing_paths_never_reach_the_upstream() {
    if !have("curl") {
        return;
    }
    let env = Env::new();
    let alice = token(&env, "alice", &["read"]);
    let up = Upstream::tcp();
    let addr = local_addr();
    let base = format!("{}/app", up.url);
    let _kg = plain_proxy(&env, addr, &base, false);
    let url = |p: &str| format!("http://{addr}{p}");
    let auth = bearer(&alice);
    // WSGI, Puma and uWSGI read X_Auth_Request_User as X-Auth-Request-User.
    let (_, e) = echo(&[
        "-H",
        &auth,
        "-H",
        "X_Auth_Request_User: root",
        "-H",
        "Remote_User: root",
        "-H",
        "True-Client-IP: 10.9.9.9",
        "-H",
        "X-Original-URL: /admin",
        &url("/x"),
    ]);
    assert_eq!(header(&e, "x-auth-request-user"), Some("alice"), "{e:#}");
    for h in [
        "x_auth_request_user",
        "remote_user",
        "true-client-ip",
        "x-original-url",
    ] {
        assert!(header(&e, h).is_none(), "{h} reached the upstream: {e:#}");
    }
    assert_eq!(e["uri"], "/app/x");
    // An h2c upgrade is forwarded as a plain request, never as a tunnel.
    let (_, e) = echo(&[
        "-H",
        &auth,
        "-H",
        "Connection: Upgrade, HTTP2-Settings",
        "-H",
        "Upgrade: h2c",
        "-H",
        "HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA",
        &url("/h2c"),
    ]);
    assert!(header(&e, "upgrade").is_none(), "{e:#}");
    assert!(header(&e, "http2-settings").is_none(), "{e:#}");
    // Under a base path, dot segments could climb out of it.
    for p in ["/../secret", "/%2e%2e/secret", "/a/%2E%2E/%2e%2e/secret"] {
        let r = curl(&["--path-as-is", "-H", &auth, &url(p)]);
        assert_eq!(r.status, 400, "{p}: {r:?}");
    }
    assert!(
        up.seen()
            .iter()
            .all(|e| !e["uri"].as_str().unwrap_or("").contains("secret")),
        "{:#?}",
        up.seen()
    );
}

#[test]
fn an_open_websocket_closes_when_its_token_is_revoked() {
    if !have("curl") {
        return;
    }
    let env = Env::new();
    let carol = token(&env, "carol", &[]);
    let up = Upstream::tcp();
    let addr = local_addr();
    let _kg = plain_proxy(&env, addr, &up.url, false);
    let auth = format!("Bearer {carol}");
    let closed = ws_closed_after(
        &format!("ws://{addr}/ws"),
        &[("authorization", &auth)],
        || {
            env.run("tokenctl", &["revoke", "--name", "carol"]).code(0);
        },
        Duration::from_secs(40),
    );
    // Tunnels are judged again every 15 s.
    assert!(
        closed.is_some_and(|d| d <= Duration::from_secs(20)),
        "{closed:?}"
    );
}

/// Signs in through the form with `token` (cookies in `jar`); the session cookie is then in
/// the jar.
fn sign_in_form(addr: std::net::SocketAddr, jar: &str, token: &str) {
    let url = |p: &str| format!("http://{addr}{p}");
    let page = curl(&["-c", jar, "-b", jar, &url("/.keygate/sign-in")]);
    let csrf = input_value(&page.body, "csrf").expect("a csrf field");
    let r = curl(&[
        "-c",
        jar,
        "-b",
        jar,
        "-H",
        &format!("Origin: http://{addr}"),
        "--data-urlencode",
        &format!("token={token}"),
        "--data-urlencode",
        &format!("csrf={csrf}"),
        &url("/.keygate/sign-in"),
    ]);
    assert_eq!(r.status, 303, "{r:?}");
}

#[test]
fn a_session_ends_when_its_rotated_token_leaves_its_grace_period() {
    if !have("curl") {
        return;
    }
    let env = Env::new();
    let dave = token(&env, "dave", &[]);
    let up = Upstream::tcp();
    let addr = local_addr();
    let _kg = plain_proxy(&env, addr, &up.url, false);
    let jar = env.root().join("cookies.txt");
    let jar = jar.to_str().unwrap();
    sign_in_form(addr, jar, &dave);
    let page = || {
        curl(&[
            "-b",
            jar,
            "-H",
            "Accept: text/html",
            &format!("http://{addr}/app"),
        ])
    };
    assert_eq!(page().status, 200);
    env.run("tokenctl", &["rotate", "--name", "dave", "--grace", "2s"])
        .code(0);
    // Within the grace period the session stands; after it, the next request ends it.
    assert_eq!(page().status, 200);
    std::thread::sleep(Duration::from_millis(2500));
    let after = page();
    assert_eq!(after.status, 303, "{after:?}");
    assert!(
        after
            .headers
            .iter()
            .any(|(k, v)| k == "location" && v.starts_with("/.keygate/sign-in")),
        "{after:?}"
    );
}

/// Issue 14: one request had two ids (the audit allow line's, and the one the upstream and
/// the 502 page got), and its allow line said 200 for a request that got 502. Now the allow
/// line carries the request's one id and the status the client got.
#[test]
fn one_request_one_id_and_the_allow_line_has_the_status_the_client_got() {
    if !have("curl") {
        return;
    }
    let env = Env::new();
    let alice = token(&env, "alice", &["read"]);
    let auth = bearer(&alice);
    // An upstream that answers: the id it is sent is the one the audit line names.
    let up = Upstream::tcp();
    let addr = local_addr();
    let kg = keygate_proxy(
        &env,
        addr,
        &up.url,
        false,
        &["--set", "server.audit_allows=all"],
    );
    let r = curl(&["-H", &auth, &url(addr, "/ok")]);
    assert_eq!(r.status, 200);
    let sent = header(&up.last(), "x-request-id").unwrap().to_owned();
    let ok = allow_line(&kg, "/ok");
    assert_eq!(ok["request_id"], sent.as_str(), "{ok}");
    assert_eq!(ok["status"], 200);
    assert_eq!(ok["token_name"], "alice");
    drop(kg);

    // An upstream that is gone: the page, the allow line and the error line share the id,
    // and the allow line says 502.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let addr = local_addr();
    let kg = keygate_proxy(
        &env,
        addr,
        &dead,
        false,
        &["--set", "server.audit_allows=all"],
    );
    let r = curl(&["-H", &auth, &url(addr, "/down")]);
    assert_eq!(r.status, 502);
    let page_id = r.header("x-request-id").unwrap().to_owned();
    assert!(r.body.contains(&page_id));
    let down = allow_line(&kg, "/down");
    assert_eq!(down["request_id"], page_id.as_str(), "{down}");
    assert_eq!(down["status"], 502, "{down}");
    let lines = audit_lines(&kg.output());
    let with_id: Vec<_> = lines
        .iter()
        .filter(|l| l["request_id"] == page_id.as_str())
        .collect();
    assert_eq!(
        with_id.len(),
        2,
        "the allow line and the upstream error: {with_id:?}"
    );
}

/// The audit allow line for `path` in `kg`'s output (the writer flushes every 100 ms).
fn allow_line(kg: &Proc, path: &str) -> serde_json::Value {
    let mut found = None;
    eventually(Duration::from_secs(5), || {
        found = audit_lines(&kg.output())
            .into_iter()
            .find(|l| l["path"] == path && l["decision"] == "allow");
        found.is_some()
    });
    found.unwrap_or_else(|| panic!("no allow line for {path}:\n{}", kg.output()))
}

/// Issue 15, the store: browser sessions live in `state/keygate.db` under a key kept in
/// `private/login.key`, so a restart keeps a browser signed in (before, sessions lived in
/// memory and every restart signed everyone out). Both files are 0600; the database holds
/// no session id (only its digest); `keygate store backup` makes a private copy that
/// Python's own sqlite3 reads; a new key signs everyone out; and a store written by a newer
/// keygate stops `serve` and fails `check`, naming the file, leaving it byte for byte.
#[test]
fn sessions_outlive_a_restart_in_a_private_store_that_backs_up_and_refuses_a_newer_schema() {
    if !have("curl") || !have("python3") {
        return;
    }
    let env = Env::new();
    let alice = token(&env, "alice", &[]);
    let up = Upstream::tcp();
    let jar = env.root().join("cookies.txt");
    let jar = jar.to_str().unwrap();
    let page = |addr: std::net::SocketAddr| {
        curl(&[
            "-b",
            jar,
            "-H",
            "Accept: text/html",
            &format!("http://{addr}/app"),
        ])
        .status
    };
    let db = env.root().join("state/keygate.db");
    let key = env.root().join("private/login.key");

    let addr = local_addr();
    let kg = plain_proxy(&env, addr, &up.url, false);
    sign_in_form(addr, jar, &alice);
    assert_eq!(page(addr), 200);
    assert_eq!(test_support::stat_mode(&db), "600");
    assert_eq!(test_support::stat_mode(&key), "600");
    drop(kg);

    let addr = local_addr();
    let kg = plain_proxy(&env, addr, &up.url, false);
    assert_eq!(page(addr), 200, "the restart signed the browser out");

    // A backup while the server runs: private, and a database Python reads.
    let copy = env.root().join("backup.db");
    env.run("keygate", &["store", "backup", copy.to_str().unwrap()])
        .code(0);
    assert_eq!(test_support::stat_mode(&copy), "600");
    let cookie = std::fs::read_to_string(jar)
        .unwrap()
        .lines()
        .find_map(|l| {
            l.split_once("keygate_session\t")
                .map(|(_, v)| v.trim().to_owned())
        })
        .expect("a session cookie in the jar");
    let py = r#"
import base64, sqlite3, sys
db, cookie = sys.argv[1], sys.argv[2]
session_id = base64.urlsafe_b64decode(cookie + "=" * (-len(cookie) % 4))[:32]
rows = sqlite3.connect(db).execute("select digest, token_id from sessions").fetchall()
assert len(rows) == 1, rows
assert session_id not in open(db, "rb").read(), "the session id is in the store"
print(rows[0][1])
"#;
    for file in [&copy, &db] {
        let out = Command::new("python3")
            .args(["-c", py, file.to_str().unwrap(), &cookie])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let holder = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        assert_eq!(holder.len(), 12, "a token id: {holder}");
        assert!(alice.contains(&holder));
    }
    drop(kg);

    // A new key: every browser is signed out.
    std::fs::remove_file(&key).unwrap();
    let addr = local_addr();
    let kg = plain_proxy(&env, addr, &up.url, false);
    assert_eq!(
        page(addr),
        303,
        "a cookie signed under the old key was taken"
    );
    drop(kg);

    // A store from a newer keygate.
    let set = Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); \
             c.execute('pragma user_version = 99'); c.commit()",
            db.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(set.success());
    let before = std::fs::read(&db).unwrap();
    let upstream = format!("server.upstream={}", up.url);
    let check = env.run(
        "keygate",
        &["check", "--plain-http", "--set", &upstream, "--json"],
    );
    check.code(1);
    let store = check.json()["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "store")
        .cloned()
        .expect("a store check");
    assert_eq!(store["status"], "fail", "{store}");
    assert!(
        store["detail"].as_str().unwrap().contains("newer"),
        "{store}"
    );
    let addr = local_addr();
    let listen = addr.to_string();
    let mut serve = env.cmd("keygate");
    serve
        .args([
            "serve",
            "--plain-http",
            "--listen",
            &listen,
            "--set",
            &upstream,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = serve.spawn().unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("serve started on a newer store");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("keygate.db") && stderr.contains("schema version 99"),
        "{stderr}"
    );
    assert!(stderr.contains("hint:"), "{stderr}");
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "the newer store was changed"
    );
}
