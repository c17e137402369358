//! keygate behind Debian's Caddy with `forward_auth`, using the shipped example
//! (`examples/caddy/Caddyfile`) with only its addresses changed (issue 6).

use std::net::SocketAddr;
use std::path::Path;

use test_support::proxy::{
    Upstream, assert_audited_as_the_socket_client, assert_only_keygates_identity,
};
use test_support::server::*;
use test_support::{Env, Proc, have};

/// Caddy with the shipped example in front of `app`; with `echo`, `app` is a Caddy site too
/// that answers with the identity it was given.
pub(crate) fn start_caddy(
    env: &Env,
    listen: SocketAddr,
    keygate: SocketAddr,
    app: SocketAddr,
    echo: bool,
) -> Proc {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let example = std::fs::read_to_string(repo.join("examples/caddy/Caddyfile")).unwrap();
    for needle in [
        ":8080 {",
        "forward_auth 127.0.0.1:9180",
        "reverse_proxy 127.0.0.1:3000",
    ] {
        assert!(example.contains(needle), "the example lost '{needle}'");
    }
    let site = example
        .replace(":8080 {", &format!("http://{listen} {{"))
        .replace(
            "forward_auth 127.0.0.1:9180",
            &format!("forward_auth {keygate}"),
        )
        .replace(
            "reverse_proxy 127.0.0.1:3000",
            &format!("reverse_proxy {app}"),
        );
    let dir = env.root().join("caddy");
    std::fs::create_dir_all(&dir).unwrap();
    let echo_site = if echo {
        format!(
            "http://{app} {{\n\trespond \"app user={{header.X-Auth-Request-User}} \
             scopes={{header.X-Auth-Request-Scopes}} authz=[{{header.Authorization}}]\" 200\n}}\n"
        )
    } else {
        String::new()
    };
    let caddyfile = format!(
        "{{\n\tadmin off\n\tstorage file_system {}\n}}\n\n{site}\n{echo_site}",
        dir.join("data").display()
    );
    std::fs::write(dir.join("Caddyfile"), &caddyfile).unwrap();
    let mut cmd = std::process::Command::new("caddy");
    cmd.args(["run", "--adapter", "caddyfile", "--config"])
        .arg(dir.join("Caddyfile"))
        .env("HOME", &dir)
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("XDG_DATA_HOME", dir.join("data"));
    let mut p = Proc::spawn("caddy", cmd, &dir.join("caddy.log"));
    p.wait_port(listen);
    if echo {
        p.wait_port(app);
    }
    p
}

#[test]
fn caddy_forward_auth_gets_the_same_allow_and_deny_results() {
    if !have("caddy") || !have("curl") {
        return;
    }
    let env = Env::new();
    config(
        &env,
        "[server]\ntrusted_proxies = [\"127.0.0.1/32\"]\nrequired_scopes = [\"read\", \"/admin=admin\"]\n",
    );
    let alice = token(&env, "alice", &["read"]);
    let root = token(&env, "root", &["read", "admin"]);
    let (kg_addr, app, front) = (local_addr(), local_addr(), local_addr());
    let _kg = keygate(&env, kg_addr, &["--plain-http"]);
    let _caddy = start_caddy(&env, front, kg_addr, app, true);
    let site = |path: &str| format!("http://{front}{path}");

    let ok = curl(&["-H", &bearer(&alice), &site("/notes")]);
    assert_eq!(ok.status, 200, "{ok:?}");
    assert!(
        ok.body.contains("user=alice scopes=read authz=[]"),
        "{}",
        ok.body
    );
    let missing = curl(&[&site("/notes")]);
    assert_eq!(missing.status, 401);
    assert_eq!(
        missing.header("www-authenticate"),
        Some("Bearer realm=\"keygate\"")
    );
    assert!(!missing.body.contains("app user="));
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
    // Caddy reports the original URI in X-Forwarded-Uri.
    let denied = curl(&["-H", &bearer(&alice), &site("/admin/users")]);
    assert_eq!(denied.status, 403);
    assert!(
        denied
            .header("www-authenticate")
            .is_some_and(|h| h.contains("insufficient_scope")),
        "{denied:?}"
    );
    assert_eq!(
        curl(&["-H", &bearer(&root), &site("/admin/users")]).status,
        200
    );

    // Spoofing: a client's identity headers and original-URI claims change nothing.
    let spoof = curl(&[
        "-H",
        &bearer(&alice),
        "-H",
        "X-Auth-Request-User: root",
        "-H",
        "X-Auth-Request-Scopes: admin",
        &site("/notes"),
    ]);
    assert!(
        spoof.body.contains("user=alice scopes=read "),
        "{}",
        spoof.body
    );
    for h in ["X-Original-URI: /notes", "X-Forwarded-Uri: /notes"] {
        assert_eq!(
            curl(&["-H", &bearer(&alice), "-H", h, &site("/admin/users")]).status,
            403,
            "{h}"
        );
    }
    assert_eq!(
        curl(&["-H", "X-Forwarded-For: 127.0.0.1", &site("/notes")]).status,
        401
    );
}

/// Issue 13: the example passed a client's `Remote-User`, `X-WEBAUTH-USER` and
/// `X-Forwarded-User` (and every other identity header but keygate's three) to the app.
#[test]
fn the_caddy_example_passes_no_identity_or_address_a_client_forged() {
    if !have("caddy") || !have("curl") {
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
    let _caddy = start_caddy(&env, front, kg_addr, app.addr(), false);
    let forged = [
        "Remote-User: root",
        "X-WEBAUTH-USER: root",
        "X-Forwarded-User: root",
        "X-Forwarded-Email: root@example.com",
        "X-Auth-Request-Email: root@example.com",
        "Cf-Access-Authenticated-User-Email: root@example.com",
        "Tailscale-User-Login: root@example.com",
        "X-Authenticated-User: root",
        "X-Ssl-Client-S-Dn: CN=root",
        "X_Auth_Request_User: root",
        "X-Forwarded-For: 6.6.6.6",
        "X-Real-IP: 6.6.6.6",
        "Forwarded: for=6.6.6.6",
        "X-Original-URL: /admin",
        "X-Rewrite-URL: /admin",
    ];
    let auth = bearer(&alice);
    let mut args = vec!["--interface", "127.0.0.7", "-H", auth.as_str()];
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
            "tailscale-user-login",
            "x-authenticated-user",
            "x-ssl-client-s-dn",
            "x_auth_request_user",
            "x-real-ip",
            "forwarded",
            "x-original-url",
            "x-rewrite-url",
            "authorization",
        ],
        "alice",
        "127.0.0.7",
    );

    assert_audited_as_the_socket_client(
        &kg,
        &format!("http://{front}/forged-client"),
        &forged,
        "127.0.0.7",
    );
}
