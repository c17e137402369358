//! keygate behind Debian's nginx with `auth_request` and upstream keepalive, using the
//! shipped example (`examples/nginx/keygate.conf`) with only its addresses changed (issue 6).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use test_support::proxy::{
    Upstream, assert_audited_as_the_socket_client, assert_only_keygates_identity, header,
    input_value, keygate_proxy,
};
use test_support::server::*;
use test_support::{Env, have};

/// The shipped example, pointed at this test's keygate, app and listen port, as the inside
/// of nginx's `http {}` block (see `nginx`). `app` is a second server block that echoes what
/// reached it.
fn nginx_conf(
    listen: SocketAddr,
    keygate: SocketAddr,
    app: SocketAddr,
    tls: Option<&Path>,
) -> String {
    let site = example_site(listen, keygate, app, tls);
    format!(
        "{site}\n  server {{\n    listen {app};\n    location / {{\n      default_type text/plain;\n      \
         return 200 \"app user=$http_x_auth_request_user scopes=$http_x_auth_request_scopes \
         authz=[$http_authorization] uri=$request_uri\\n\";\n    }}\n  }}\n"
    )
}

/// The shipped example with only its addresses changed (and keygate over TLS with `tls`).
pub(crate) fn example_site(
    listen: SocketAddr,
    keygate: SocketAddr,
    app: SocketAddr,
    tls: Option<&Path>,
) -> String {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let example = std::fs::read_to_string(repo.join("examples/nginx/keygate.conf")).unwrap();
    for needle in [
        "server 127.0.0.1:9180;",
        "listen 8080;",
        "proxy_pass http://127.0.0.1:3000;",
    ] {
        assert!(example.contains(needle), "the example lost '{needle}'");
    }
    let mut site = example
        .replace("server 127.0.0.1:9180;", &format!("server {keygate};"))
        .replace("listen 8080;", &format!("listen {listen};"))
        .replace(
            "proxy_pass http://127.0.0.1:3000;",
            &format!("proxy_pass http://{app};"),
        );
    if let Some(ca) = tls {
        // keygate over TLS, as the example's header comment describes.
        site = site.replace(
            "proxy_pass http://keygate/auth;",
            &format!(
                "proxy_pass https://keygate/auth;\n        proxy_ssl_verify on;\n        \
                 proxy_ssl_trusted_certificate {};\n        proxy_ssl_name localhost;\n        \
                 proxy_ssl_session_reuse on;",
                ca.display()
            ),
        );
    }
    site
}

fn setup(env: &Env) {
    config(
        env,
        "[server]\ntrusted_proxies = [\"127.0.0.1/32\"]\nrequired_scopes = [\"read\", \"/admin=admin\"]\n",
    );
}

#[test]
fn nginx_auth_request_allows_denies_and_passes_the_identity_on() {
    if !have("nginx") || !have("curl") {
        return;
    }
    let env = Env::new();
    setup(&env);
    let alice = token(&env, "alice", &["read"]);
    let root = token(&env, "root", &["read", "admin"]);
    let prom = token(&env, "prom", &["metrics"]);
    let (kg_addr, app, front) = (local_addr(), local_addr(), local_addr());
    let kg = keygate(&env, kg_addr, &["--plain-http"]);
    let _nginx = nginx(&env, &nginx_conf(front, kg_addr, app, None), front);
    let site = |path: &str| format!("http://{front}{path}");

    // A valid token reaches the app, with the identity passed on and the token withheld.
    let ok = curl(&["-H", &bearer(&alice), &site("/notes")]);
    assert_eq!(ok.status, 200, "{ok:?}");
    assert!(
        ok.body.contains("user=alice scopes=read authz=[]"),
        "{}",
        ok.body
    );
    // Missing and wrong tokens: 401 with keygate's WWW-Authenticate.
    let missing = curl(&[&site("/notes")]);
    assert_eq!(missing.status, 401);
    assert_eq!(
        missing.header("www-authenticate"),
        Some("Bearer realm=\"keygate\"")
    );
    let wrong = curl(&[
        "-H",
        "Authorization: Bearer kg_0123456789AB_nope",
        &site("/notes"),
    ]);
    assert_eq!(wrong.status, 401);
    assert_eq!(
        wrong.header("www-authenticate"),
        Some("Bearer realm=\"keygate\", error=\"invalid_token\"")
    );
    assert!(!wrong.body.contains("app user="));
    // Insufficient scope: 403; the scope that has it gets through.
    assert_eq!(
        curl(&["-H", &bearer(&alice), &site("/admin/users")]).status,
        403
    );
    let admin = curl(&["-H", &bearer(&root), &site("/admin/users")]);
    assert_eq!(admin.status, 200);
    assert!(admin.body.contains("user=root"), "{}", admin.body);
    // nginx routes /public/../admin to /admin, and so does keygate's scope check.
    let sneaky = curl(&[
        "--path-as-is",
        "-H",
        &bearer(&alice),
        &site("/public/../admin/users"),
    ]);
    assert_eq!(sneaky.status, 403, "{sneaky:?}");

    // Spoofing changes no decision and no identity.
    let spoof_user = curl(&[
        "-H",
        &bearer(&alice),
        "-H",
        "X-Auth-Request-User: root",
        "-H",
        "X-Auth-Request-Scopes: admin",
        &site("/notes"),
    ]);
    assert!(
        spoof_user.body.contains("user=alice scopes=read "),
        "{}",
        spoof_user.body
    );
    assert_eq!(
        curl(&["-H", "X-Auth-Request-User: root", &site("/notes")]).status,
        401
    );
    assert_eq!(
        curl(&["-H", "X-Forwarded-For: 127.0.0.1", &site("/notes")]).status,
        401
    );
    assert_eq!(
        curl(&["-H", "X-Real-IP: 127.0.0.1", &site("/notes")]).status,
        401
    );
    for h in ["X-Original-URI: /notes", "X-Forwarded-Uri: /notes"] {
        assert_eq!(
            curl(&["-H", &bearer(&alice), "-H", h, &site("/admin/users")]).status,
            403,
            "{h}"
        );
    }
    // The audit log names the real client, not the address it claimed.
    let _ = curl(&[
        "--interface",
        "127.0.0.7",
        "-H",
        "X-Forwarded-For: 127.0.0.1",
        &site("/x"),
    ]);
    assert!(
        eventually(Duration::from_secs(2), || {
            audit_lines(&kg.output()).iter().any(|l| {
                l["client"] == "127.0.0.7"
                    && l["path"] == "/x"
                    && l["reason"] == "missing_credentials"
            })
        }),
        "{}",
        kg.output()
    );

    // Upstream keepalive held for allows and denials alike: a handful of connections for all
    // of the above, not one per request.
    for _ in 0..10 {
        assert_eq!(
            curl(&["-H", "Authorization: Bearer kg_bad", &site("/notes")]).status,
            401
        );
        assert_eq!(curl(&["-H", &bearer(&alice), &site("/notes")]).status, 200);
    }
    let metrics = curl(&["-H", &bearer(&prom), &format!("http://{kg_addr}/metrics")]);
    let conns: u64 = metrics
        .body
        .lines()
        .find_map(|l| l.strip_prefix("keygate_connections_total "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{}", metrics.body));
    assert!(conns <= 3, "{conns} connections for ~40 auth requests");
}

#[test]
fn rotation_and_revocation_take_effect_while_nginx_and_keygate_run() {
    if !have("nginx") || !have("curl") {
        return;
    }
    let env = Env::new();
    setup(&env);
    let old = token(&env, "deploy", &["read"]);
    let (kg_addr, app, front) = (local_addr(), local_addr(), local_addr());
    let _kg = keygate(&env, kg_addr, &["--plain-http"]);
    let _nginx = nginx(&env, &nginx_conf(front, kg_addr, app, None), front);
    let site = format!("http://{front}/app");
    let status = |t: &str| curl(&["-H", &bearer(t), &site]).status;
    assert_eq!(status(&old), 200);

    let new_file = env.root().join("deploy.token");
    env.run(
        "tokenctl",
        &[
            "rotate",
            "--name",
            "deploy",
            "--grace",
            "3s",
            "-o",
            new_file.to_str().unwrap(),
        ],
    )
    .code(0);
    let new = std::fs::read_to_string(&new_file)
        .unwrap()
        .trim()
        .to_owned();
    assert_ne!(new, old);
    // The new token works at once; the old one until the grace period ends.
    assert_eq!(status(&new), 200);
    assert_eq!(status(&old), 200);
    std::thread::sleep(Duration::from_millis(3300));
    assert_eq!(status(&old), 401);
    assert_eq!(status(&new), 200);
    // Revoked: refused on the very next request.
    env.run("tokenctl", &["revoke", "--name", "deploy"]).code(0);
    assert_eq!(status(&new), 401);
}

#[test]
fn cert_renewal_is_served_from_the_next_handshake_while_nginx_talks_tls_to_keygate() {
    if !have("nginx") || !have("curl") || !have("openssl") {
        return;
    }
    let env = Env::new();
    setup(&env);
    let ca = cert(&env);
    let alice = token(&env, "alice", &["read"]);
    let (kg_addr, app, front) = (local_addr(), local_addr(), local_addr());
    let mut kg = keygate(&env, kg_addr, &[]);
    let conf = nginx_conf(front, kg_addr, app, Some(&ca));
    let nginx = nginx(&env, &conf, front);
    let site = format!("http://{front}/app");
    let ok = curl(&["-H", &bearer(&alice), &site]);
    assert_eq!(
        ok.status,
        200,
        "{ok:?}\n{}",
        std::fs::read_to_string(env.root().join("nginx/error.log")).unwrap_or_default()
    );
    assert_eq!(curl(&[&site]).status, 401);

    let current = env.root().join("private/certs/default/current/cert.pem");
    let before = file_serial(&current);
    assert_eq!(served_serial(kg_addr, Some("localhost")), before);
    env.run("certctl", &["issue", "--method", "local-ca"])
        .code(0);
    let after = file_serial(&current);
    assert_ne!(before, after);
    assert_eq!(served_serial(kg_addr, Some("localhost")), after);
    // No restart, and nginx keeps getting answers.
    assert!(kg.running());
    assert_eq!(curl(&["-H", &bearer(&alice), &site]).status, 200);
    assert_eq!(curl(&[&site]).status, 401);
    drop(nginx);
}

/// Issue 13: the example passed a client's `Remote-User`, `X-WEBAUTH-USER` and
/// `X-Forwarded-User` to the app, and its `X-Forwarded-For` both to the app and (appended
/// to) keygate, which read it as the client whenever the client's own address was inside
/// `trusted_proxies` (a LAN CIDR that covers the clients): anyone could name the user to an
/// app that trusts one of those headers, and pick the address keygate limits and logs.
#[test]
fn the_nginx_example_passes_no_identity_or_address_a_client_forged() {
    if !have("nginx") || !have("curl") {
        return;
    }
    let env = Env::new();
    // The clients' network is trusted too, as a LAN CIDR would be.
    config(
        &env,
        "[server]\ntrusted_proxies = [\"127.0.0.0/8\"]\nrequired_scopes = [\"read\"]\n",
    );
    let alice = token(&env, "alice", &["read"]);
    let app = Upstream::tcp();
    let (kg_addr, front) = (local_addr(), local_addr());
    let kg = keygate(&env, kg_addr, &["--plain-http"]);
    let _nginx = nginx(&env, &example_site(front, kg_addr, app.addr(), None), front);
    let forged = [
        "Remote-User: root",
        "X-WEBAUTH-USER: root",
        "X-Forwarded-User: root",
        "X-Forwarded-Email: root@example.com",
        "X-Auth-Request-Email: root@example.com",
        "Cf-Access-Authenticated-User-Email: root@example.com",
        "X-Authenticated-User: root",
        "X-Ssl-Client-S-Dn: CN=root",
        "X_Auth_Request_User: root",
        "X-Forwarded-For: 6.6.6.6",
        "X-Real-IP: 6.6.6.6",
        "Forwarded: for=6.6.6.6",
        "X-Original-URL: /admin",
        "X-Rewrite-URL: /admin",
    ];
    let mut args = vec!["--interface", "127.0.0.7", "-H"];
    let auth = bearer(&alice);
    args.push(&auth);
    for h in &forged {
        args.extend(["-H", h]);
    }
    let url = format!("http://{front}/notes");
    args.push(&url);
    let ok = curl(&args);
    assert_eq!(ok.status, 200, "{ok:?}");
    let seen = app.last();
    assert_only_keygates_identity(
        &seen,
        &[
            "remote-user",
            "x-webauth-user",
            "x-forwarded-user",
            "x-forwarded-email",
            "x-auth-request-email",
            "cf-access-authenticated-user-email",
            "x-authenticated-user",
            "x-ssl-client-s-dn",
            "x_auth_request_user",
            "forwarded",
            "x-original-url",
            "x-rewrite-url",
            "authorization",
        ],
        "alice",
        "127.0.0.7",
    );
    assert_eq!(header(&seen, "x-real-ip"), Some("127.0.0.7"), "{seen:#}");
    assert_eq!(seen["uri"], "/notes");

    // keygate's audit log names the real client, not the one the client claimed.
    assert_audited_as_the_socket_client(
        &kg,
        &format!("http://{front}/forged-client"),
        &forged,
        "127.0.0.7",
    );
}

/// The `Set-Cookie` values of a response, by cookie name.
fn set_cookies(r: &Resp) -> Vec<(String, String)> {
    r.headers
        .iter()
        .filter(|(k, _)| k == "set-cookie")
        .filter_map(|(_, v)| Some((v.split_once('=')?.0.to_owned(), v.clone())))
        .collect()
}

fn set_cookie<'a>(r: &'a Resp, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .filter(|(k, _)| k == "set-cookie")
        .map(|(_, v)| v.as_str())
        .find(|v| v.split_once('=').is_some_and(|(n, _)| n == name))
}

/// The cookie's value and its attributes, lower-cased.
fn cookie_parts(set: &str) -> (String, Vec<String>) {
    let mut parts = set.split(';');
    let value = parts.next().unwrap().split_once('=').unwrap().1.to_owned();
    (
        value,
        parts.map(|a| a.trim().to_ascii_lowercase()).collect(),
    )
}

/// Issue 13, item 5: keygate on plain HTTP behind a TLS proxy it trusts (nginx terminating
/// TLS and saying `X-Forwarded-Proto: https`) set its session cookie without `Secure` and
/// without the `__Host-` prefix, so it could leak over plain HTTP and be shadowed or fixed
/// by a sibling host. The browser reached keygate over HTTPS: its cookies must say so.
#[test]
fn behind_a_trusted_tls_proxy_the_cookies_are_host_only_and_secure() {
    if !have("nginx") || !have("curl") || !have("openssl") {
        return;
    }
    let env = Env::new();
    config(&env, "[server]\ntrusted_proxies = [\"127.0.0.1/32\"]\n");
    let ca = cert(&env);
    let current = env.root().join("private/certs/default/current");
    let alice = token(&env, "alice", &["read"]);
    let up = Upstream::tcp();
    let (kg_addr, front) = (local_addr(), local_addr());
    let _kg = keygate_proxy(&env, kg_addr, &up.url, false, &[]);
    let tls_front = format!(
        "  server {{\n    listen {front} ssl;\n    \
         ssl_certificate {chain};\n    ssl_certificate_key {key};\n    \
         location / {{\n      proxy_pass http://{kg_addr};\n      proxy_http_version 1.1;\n      \
         proxy_set_header Host $http_host;\n      \
         proxy_set_header X-Forwarded-For $remote_addr;\n      \
         proxy_set_header X-Forwarded-Proto $scheme;\n    }}\n  }}\n",
        chain = current.join("fullchain.pem").display(),
        key = current.join("key.pem").display(),
    );
    let _nginx = nginx(&env, &tls_front, front);
    let cacert = ca.to_str().unwrap();
    let https = |path: &str| format!("https://localhost:{}{path}", front.port());
    let over_tls = |extra: &[&str], path: &str| {
        let mut args = vec!["--cacert", cacert];
        args.extend(extra);
        let url = https(path);
        args.push(&url);
        curl(&args)
    };
    let host_only_and_secure = |set: &str| {
        let (_, attrs) = cookie_parts(set);
        assert!(set.starts_with("__Host-"), "{set}");
        for want in ["secure", "path=/", "httponly", "samesite=lax"] {
            assert!(attrs.iter().any(|a| a == want), "{want} missing: {set}");
        }
        assert!(!attrs.iter().any(|a| a.starts_with("domain")), "{set}");
    };

    // The sign-in page: a `__Host-` CSRF cookie, Secure.
    let page = over_tls(&[], "/.keygate/sign-in");
    assert_eq!(page.status, 200, "{page:?}");
    let csrf_set = set_cookie(&page, "__Host-keygate_csrf").unwrap_or_else(|| panic!("{page:?}"));
    host_only_and_secure(csrf_set);
    let (csrf, _) = cookie_parts(csrf_set);
    assert_eq!(
        input_value(&page.body, "csrf").as_deref(),
        Some(csrf.as_str())
    );

    // Signing in: a `__Host-` session cookie, Secure; the app is reached with it.
    let csrf_cookie = format!("Cookie: __Host-keygate_csrf={csrf}");
    let signed_in = over_tls(
        &[
            "-H",
            &csrf_cookie,
            "--data-urlencode",
            &format!("token={alice}"),
            "--data-urlencode",
            &format!("csrf={csrf}"),
            "--data-urlencode",
            "next=/notes",
        ],
        "/.keygate/sign-in",
    );
    assert_eq!(signed_in.status, 303, "{signed_in:?}");
    let session_set =
        set_cookie(&signed_in, "__Host-keygate_session").unwrap_or_else(|| panic!("{signed_in:?}"));
    host_only_and_secure(session_set);
    assert!(
        set_cookie(&signed_in, "keygate_session").is_none(),
        "{signed_in:?}"
    );
    let (session, _) = cookie_parts(session_set);
    let session_cookie = format!("Cookie: __Host-keygate_session={session}");
    let app = over_tls(&["-H", &session_cookie], "/notes");
    assert_eq!(app.status, 200, "{app:?}");
    let seen = up.last();
    assert_eq!(
        header(&seen, "x-auth-request-user"),
        Some("alice"),
        "{seen:#}"
    );
    assert!(header(&seen, "cookie").is_none(), "{seen:#}");

    // An untrusted peer saying `X-Forwarded-Proto: https` changes nothing: plain names,
    // no Secure.
    let direct = |extra: &[&str], path: &str| {
        let mut args = vec!["--interface", "127.0.0.7"];
        args.extend(extra);
        let url = format!("http://{kg_addr}{path}");
        args.push(&url);
        curl(&args)
    };
    let forged = direct(&["-H", "X-Forwarded-Proto: https"], "/.keygate/sign-in");
    assert_eq!(forged.status, 200, "{forged:?}");
    let names: Vec<String> = set_cookies(&forged).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["keygate_csrf"], "{forged:?}");
    let (_, attrs) = cookie_parts(set_cookie(&forged, "keygate_csrf").unwrap());
    assert!(!attrs.iter().any(|a| a == "secure"), "{forged:?}");

    // A session cookie set over plain HTTP is not read over HTTPS (a sibling host or a
    // network attacker can plant one; a `__Host-` one they cannot), and is cleared there.
    let plain_csrf = cookie_parts(set_cookie(&forged, "keygate_csrf").unwrap()).0;
    let plain_csrf_cookie = format!("Cookie: keygate_csrf={plain_csrf}");
    let plain_sign_in = direct(
        &[
            "-H",
            &plain_csrf_cookie,
            "--data-urlencode",
            &format!("token={alice}"),
            "--data-urlencode",
            &format!("csrf={plain_csrf}"),
        ],
        "/.keygate/sign-in",
    );
    assert_eq!(plain_sign_in.status, 303, "{plain_sign_in:?}");
    let plain_session = cookie_parts(
        set_cookie(&plain_sign_in, "keygate_session")
            .unwrap_or_else(|| panic!("{plain_sign_in:?}")),
    )
    .0;
    let plain_session_cookie = format!("Cookie: keygate_session={plain_session}");
    assert_eq!(direct(&["-H", &plain_session_cookie], "/notes").status, 200);
    let before = up.seen().len();
    let fixed = over_tls(
        &["-H", &plain_session_cookie, "-H", "Accept: text/html"],
        "/notes",
    );
    assert_eq!(fixed.status, 303, "{fixed:?}");
    assert_eq!(
        up.seen().len(),
        before,
        "a plain-HTTP session reached the app over HTTPS"
    );
    // Nor does a plain-HTTP CSRF cookie count over HTTPS.
    let plain_pair = over_tls(
        &[
            "-H",
            &plain_csrf_cookie,
            "--data-urlencode",
            &format!("token={alice}"),
            "--data-urlencode",
            &format!("csrf={plain_csrf}"),
        ],
        "/.keygate/sign-in",
    );
    assert_eq!(plain_pair.status, 403, "{plain_pair:?}");
    let cleared =
        set_cookie(&plain_pair, "keygate_csrf").unwrap_or_else(|| panic!("{plain_pair:?}"));
    assert!(cleared.contains("Max-Age=0"), "{cleared}");

    // Signing out over HTTPS ends the session and clears both names.
    let me = over_tls(&["-H", &session_cookie], "/.keygate/sign-in");
    let out_csrf = me
        .body
        .split("action=\"/.keygate/sign-out\"")
        .nth(1)
        .and_then(|form| input_value(form, "csrf"))
        .unwrap_or_else(|| panic!("{me:?}"));
    let both = format!("Cookie: __Host-keygate_session={session}; keygate_session={plain_session}");
    let out = over_tls(
        &["-H", &both, "--data-urlencode", &format!("csrf={out_csrf}")],
        "/.keygate/sign-out",
    );
    assert_eq!(out.status, 303, "{out:?}");
    for name in ["__Host-keygate_session", "keygate_session"] {
        let set = set_cookie(&out, name).unwrap_or_else(|| panic!("{name} not cleared: {out:?}"));
        assert!(set.contains("Max-Age=0"), "{set}");
    }
    host_only_and_secure(set_cookie(&out, "__Host-keygate_session").unwrap());
    let after = over_tls(
        &["-H", &session_cookie, "-H", "Accept: text/html"],
        "/notes",
    );
    assert_eq!(after.status, 303, "{after:?}");
}
