//! Issue 13, item 1: what the app routes is what keygate judged. With
//! `required_scopes = ["read", "/admin=admin"]`, a token with only `read` sends every path
//! form whose meaning depends on the parser (dot segments raw and encoded, encoded `/` and
//! `\`, `;` parameters, NUL, double encoding, overlong UTF-8) through keygate's proxy, through
//! nginx `auth_request` and through Caddy `forward_auth` (the shipped examples), in front of
//! real Flask (Werkzeug) and Express apps; no form may reach the apps' admin routes. Before
//! the rule, `/admin/../`, `/admin/%2e%2e/`, `/admin/..%2f` and `/admin/x/../../` did, on
//! every front: keygate judged them as `/`, the apps routed them to `/admin`.

use std::process::Command;

use test_support::proxy::plain_proxy;
use test_support::server::*;
use test_support::{Env, Proc, fixtures, have, have_npm_fixture, have_python_module};

/// Paths a `read` token must not get an admin page with, whatever parses them.
const FORMS: &[&str] = &[
    "/admin/../",
    "/admin/..",
    "/admin/%2e%2e/",
    "/admin/%2E%2E",
    "/admin/.%2e/",
    "/admin/..%2f",
    "/admin/..%2F..%2F",
    "/admin/x/../../",
    "/admin/./x",
    "/./admin/x",
    "/public/../admin/x",
    "/admin%2fx",
    "/admin%2Fx",
    "/admin%5cx",
    "/admin/..%5c",
    "/admin;x",
    "/admin/..;/",
    "/public/..;/admin/x",
    "/admin%3bx",
    "/admin%00",
    "/admin/%00/../",
    "/admin%252e%252e/",
    "/admin/%252e%252e/",
    "/admin/%c0%ae%c0%ae/",
    "/admin%c0%af",
    "/Admin/x",
    "/ADMIN",
    "//admin/x",
    "/%61dmin/x",
    "/%2561dmin/x",
];

/// The scopes rules of the issue; the fronts' keygate trusts them (loopback).
const CONFIG: &str = "[server]\ntrusted_proxies = [\"127.0.0.1/32\"]\n\
                      required_scopes = [\"read\", \"/admin=admin\"]\n";

#[test]
fn no_path_form_reaches_an_admin_route_without_the_admin_scope() {
    if !have("curl")
        || !have("nginx")
        || !have("caddy")
        || !have_npm_fixture("apps/express")
        || !have_python_module("flask")
    {
        return;
    }
    let express = fixtures().join("apps/express");
    let scratch = Env::new();
    let flask_addr = local_addr();
    let mut flask_cmd = Command::new("python3");
    flask_cmd
        .arg(fixtures().join("apps/flask_app.py"))
        .arg(flask_addr.port().to_string());
    let mut flask = Proc::spawn("flask", flask_cmd, &scratch.root().join("flask.log"));
    flask.wait_port(flask_addr);
    let express_addr = local_addr();
    let mut express_cmd = Command::new("node");
    express_cmd
        .arg(express.join("app.js"))
        .arg(express_addr.port().to_string());
    let mut express = Proc::spawn("express", express_cmd, &scratch.root().join("express.log"));
    express.wait_port(express_addr);

    let mut leaks = Vec::new();
    let mut tried = 0;
    for (app, app_addr) in [("flask", flask_addr), ("express", express_addr)] {
        for front in ["keygate proxy", "nginx auth_request", "caddy forward_auth"] {
            let env = Env::new();
            config(&env, CONFIG);
            let reader = token(&env, "reader", &["read"]);
            let boss = token(&env, "boss", &["read", "admin"]);
            let kg_addr = local_addr();
            let front_addr = local_addr();
            // Whatever runs stays up for this front's requests.
            let _procs: Vec<Proc> = match front {
                "keygate proxy" => {
                    // Under the localhost bypass nothing would be judged at all.
                    vec![plain_proxy(&env, front_addr, &url(app_addr, ""), false)]
                }
                "nginx auth_request" => vec![
                    keygate(&env, kg_addr, &["--plain-http"]),
                    nginx(
                        &env,
                        &crate::server_nginx::example_site(front_addr, kg_addr, app_addr, None),
                        front_addr,
                    ),
                ],
                _ => vec![
                    keygate(&env, kg_addr, &["--plain-http"]),
                    crate::server_caddy::start_caddy(&env, front_addr, kg_addr, app_addr, false),
                ],
            };
            let get = |token: &str, path: &str| {
                curl(&["--path-as-is", "-H", &bearer(token), &url(front_addr, path)])
            };
            // The fronts work, and the apps' admin routes answer an admin token: a form that
            // reaches one would be seen.
            let admin = get(&boss, "/admin/x");
            assert!(
                admin.status == 200 && admin.body.starts_with(&format!("ADMIN {app}")),
                "{front} -> {app}: {admin:?}"
            );
            let public = get(&reader, "/public");
            assert!(
                public.status == 200 && public.body.starts_with("PUBLIC"),
                "{front} -> {app}: {public:?}"
            );
            assert_eq!(get(&reader, "/admin/x").status, 403, "{front} -> {app}");
            for form in FORMS {
                tried += 1;
                let r = get(&reader, form);
                if r.body.contains("ADMIN") {
                    leaks.push(format!(
                        "{front} -> {app}: {form} got {} {}",
                        r.status, r.body
                    ));
                }
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "{} of {tried} requests reached an admin route with only the read scope:\n{}",
        leaks.len(),
        leaks.join("")
    );
}

/// keygate's own proxy refuses an ambiguous path with 400 naming what is in it, and logs
/// the refusal; `/auth` refuses it with 403 while scope rules exist, and judges it as usual
/// when none do (nothing then depends on the path).
#[test]
fn ambiguous_paths_are_refused_and_say_why() {
    if !have("curl") {
        return;
    }
    let env = Env::new();
    config(
        &env,
        "[server]\nrequired_scopes = [\"read\", \"/admin=admin\"]\n",
    );
    let reader = token(&env, "reader", &["read"]);
    let up = test_support::proxy::Upstream::tcp();
    let addr = local_addr();
    let kg = plain_proxy(&env, addr, &up.url, false);
    let r = curl(&[
        "--path-as-is",
        "-H",
        &bearer(&reader),
        &url(addr, "/admin/%2e%2e/"),
    ]);
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.body.contains("'.' or '..' segment"), "{r:?}");
    assert!(up.seen().is_empty(), "the upstream saw {:?}", up.seen());
    // Unambiguous escapes pass, forwarded byte for byte as judged.
    let r = curl(&[
        "-H",
        &bearer(&reader),
        &url(addr, "/caf%C3%A9/a%20b?x=%2e%2e"),
    ]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        up.last()["uri"].as_str(),
        Some("/caf%C3%A9/a%20b?x=%2e%2e"),
        "{:?}",
        up.last()
    );
    // The audit log (stderr here) says what was refused.
    let refused = || {
        audit_lines(&kg.output())
            .iter()
            .any(|l| l["reason"] == "ambiguous_path" && l["status"] == 400)
    };
    assert!(
        eventually(std::time::Duration::from_secs(5), refused),
        "{}",
        kg.output()
    );

    // /auth behind a trusted proxy.
    let env = Env::new();
    config(&env, CONFIG);
    let reader = token(&env, "reader", &["read", "admin"]);
    let addr = local_addr();
    let _kg = keygate(&env, addr, &["--plain-http"]);
    let auth = |original: &str| {
        curl(&[
            "-H",
            &bearer(&reader),
            "-H",
            &format!("X-Original-URI: {original}"),
            &url(addr, "/auth"),
        ])
        .status
    };
    assert_eq!(auth("/admin/x"), 200);
    for form in [
        "/admin/../",
        "/x/%2e%2e/admin",
        "/admin%2fx",
        "/admin;x",
        "/a%00",
    ] {
        assert_eq!(auth(form), 403, "{form}");
    }
    // Envoy's path_prefix form carries the path in /auth's own.
    let r = curl(&[
        "--path-as-is",
        "-H",
        &bearer(&reader),
        &url(addr, "/auth/admin/../x"),
    ]);
    assert_eq!(r.status, 403, "{r:?}");

    let env = Env::new();
    config(&env, "[server]\ntrusted_proxies = [\"127.0.0.1/32\"]\n");
    let reader = token(&env, "reader", &["read"]);
    let addr = local_addr();
    let _kg = keygate(&env, addr, &["--plain-http"]);
    let r = curl(&[
        "-H",
        &bearer(&reader),
        "-H",
        "X-Original-URI: /admin/../x",
        &url(addr, "/auth"),
    ]);
    assert_eq!(
        r.status, 200,
        "without scope rules no path is special: {r:?}"
    );
}
