//! keygate behind Debian's nginx with `auth_request` and upstream keepalive, using the
//! shipped example (`examples/nginx/keygate.conf`) with only its addresses changed (issue 6).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use test_support::{Env, have};

use test_support::server::*;

/// The shipped example, pointed at this test's keygate, app and listen port, as the inside
/// of nginx's `http {}` block (see `nginx`). `app` is a second server block that echoes what
/// reached it.
fn nginx_conf(
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
    format!(
        "{site}\n  server {{\n    listen {app};\n    location / {{\n      default_type text/plain;\n      \
         return 200 \"app user=$http_x_auth_request_user scopes=$http_x_auth_request_scopes \
         authz=[$http_authorization] uri=$request_uri\\n\";\n    }}\n  }}\n"
    )
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
