//! keygate behind Debian's HAProxy, using the shipped example (`examples/haproxy/haproxy.cfg`
//! and its `keygate-auth.lua`) with only its addresses and the script's path changed.

use std::net::SocketAddr;
use std::path::Path;

use test_support::proxy::{
    Upstream, assert_audited_as_the_socket_client, assert_only_keygates_identity, header,
};
use test_support::server::*;
use test_support::{Env, Proc, have};

fn start_haproxy(env: &Env, listen: SocketAddr, keygate: SocketAddr, app: SocketAddr) -> Proc {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let example = std::fs::read_to_string(repo.join("examples/haproxy/haproxy.cfg")).unwrap();
    let script = repo.join("examples/haproxy/keygate-auth.lua");
    for needle in [
        "lua-load /etc/haproxy/keygate-auth.lua",
        "bind :8080",
        "lua.keygate-auth 127.0.0.1:9180",
        "server app 127.0.0.1:3000",
    ] {
        assert!(example.contains(needle), "the example lost '{needle}'");
    }
    let cfg = example
        .replace(
            "lua-load /etc/haproxy/keygate-auth.lua",
            &format!("lua-load {}", script.display()),
        )
        .replace("bind :8080", &format!("bind {listen}"))
        .replace(
            "lua.keygate-auth 127.0.0.1:9180",
            &format!("lua.keygate-auth {keygate}"),
        )
        .replace("server app 127.0.0.1:3000", &format!("server app {app}"));
    let dir = env.root().join("haproxy");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("haproxy.cfg"), &cfg).unwrap();
    let mut cmd = std::process::Command::new("haproxy");
    cmd.arg("-db").arg("-f").arg(dir.join("haproxy.cfg"));
    let mut p = Proc::spawn("haproxy", cmd, &dir.join("haproxy.log"));
    p.wait_port(listen);
    p
}

#[test]
fn haproxy_with_the_example_allows_denies_and_passes_only_keygates_identity() {
    if !have("haproxy") || !have("curl") {
        return;
    }
    let env = Env::new();
    // The clients' network is trusted too, as a LAN CIDR would be.
    config(
        &env,
        "[server]\ntrusted_proxies = [\"127.0.0.0/8\"]\nrequired_scopes = [\"read\", \"/admin=admin\"]\n",
    );
    let alice = token(&env, "alice", &["read"]);
    let root = token(&env, "root", &["read", "admin"]);
    let app = Upstream::tcp();
    let (kg_addr, front) = (local_addr(), local_addr());
    let kg = keygate(&env, kg_addr, &["--plain-http"]);
    let _haproxy = start_haproxy(&env, front, kg_addr, app.addr());
    let site = |path: &str| format!("http://{front}{path}");

    // Allowed: the app gets keygate's identity and not the token.
    let ok = curl(&["-H", &bearer(&alice), &site("/notes?a=1")]);
    assert_eq!(ok.status, 200, "{ok:?}");
    let seen = app.last();
    assert_eq!(seen["uri"], "/notes?a=1");
    assert_eq!(
        header(&seen, "x-auth-request-user"),
        Some("alice"),
        "{seen:#}"
    );
    assert_eq!(
        header(&seen, "x-auth-request-scopes"),
        Some("read"),
        "{seen:#}"
    );
    assert!(header(&seen, "authorization").is_none(), "{seen:#}");
    // Refused: keygate's status and challenge, and nothing reaches the app.
    let before = app.seen().len();
    let missing = curl(&[&site("/notes")]);
    assert_eq!(missing.status, 401, "{missing:?}");
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
    // The scope of the original path: HAProxy reports it, and a client's claim does not count.
    let denied = curl(&["-H", &bearer(&alice), &site("/admin/users")]);
    assert_eq!(denied.status, 403, "{denied:?}");
    assert!(
        denied
            .header("www-authenticate")
            .is_some_and(|h| h.contains("insufficient_scope")),
        "{denied:?}"
    );
    for h in [
        "X-Original-URI: /notes",
        "X-Forwarded-Uri: /notes",
        "X-Original-URL: /notes",
    ] {
        assert_eq!(
            curl(&["-H", &bearer(&alice), "-H", h, &site("/admin/users")]).status,
            403,
            "{h}"
        );
    }
    // Two Authorization headers: keygate would judge one, the app might read the other.
    let two = curl(&[
        "-H",
        &bearer(&alice),
        "-H",
        "Authorization: Basic cm9vdDpyb290",
        &site("/notes"),
    ]);
    assert_eq!(two.status, 400, "{two:?}");
    assert_eq!(
        app.seen().len(),
        before,
        "a refused request reached the app"
    );
    assert_eq!(
        curl(&["-H", &bearer(&root), &site("/admin/users")]).status,
        200
    );

    // Forged identities and addresses (issue 13: a client's `X-Forwarded-For: 6.6.6.6` was
    // logged as the client, dodging the per-client limiter).
    let forged = [
        "Remote-User: root",
        "X-WEBAUTH-USER: root",
        "X-Forwarded-User: root",
        "X-Auth-Request-User: root",
        "X-Auth-Request-Email: root@example.com",
        "Cf-Access-Authenticated-User-Email: root@example.com",
        "X-Ssl-Client-S-Dn: CN=root",
        "X_Auth_Request_User: root",
        "X-Forwarded-For: 6.6.6.6",
        "X-Real-IP: 6.6.6.6",
        "Forwarded: for=6.6.6.6",
    ];
    let auth = bearer(&alice);
    let mut args = vec!["--interface", "127.0.0.7", "-H", auth.as_str()];
    for h in &forged {
        args.extend(["-H", h]);
    }
    let url = site("/notes");
    args.push(&url);
    assert_eq!(curl(&args).status, 200);
    let seen = app.last();
    assert_only_keygates_identity(
        &seen,
        &[
            "remote-user",
            "x-webauth-user",
            "x-forwarded-user",
            "x-auth-request-email",
            "cf-access-authenticated-user-email",
            "x-ssl-client-s-dn",
            "x_auth_request_user",
            "x-real-ip",
            "forwarded",
        ],
        "alice",
        "127.0.0.7",
    );

    assert_audited_as_the_socket_client(&kg, &site("/forged-client"), &forged, "127.0.0.7");
}
