//! Several services behind one sign-in (issue 17): the portal host signs people in and
//! lists their services; each service has a host of its own and is entered with a one-time
//! launch ticket that becomes that host's own session. Driven with curl (which keeps
//! host-only cookies per host, as a browser does) against the real binary and two echoing
//! upstreams. The attacks: a replayed or relayed ticket, a ticket posted by a sibling
//! service's page, one service's cookie presented to another, a sibling's state change and
//! WebSocket, and a person taken out of the group while a WebSocket is open.

use std::time::Duration;

use test_support::proxy::*;
use test_support::server::*;
use test_support::{Env, have};

struct Hosts {
    port: u16,
    resolve: Vec<String>,
}

impl Hosts {
    fn new(port: u16) -> Hosts {
        let resolve = ["portal.localhost", "a.localhost", "b.localhost"]
            .iter()
            .flat_map(|h| ["--resolve".to_owned(), format!("{h}:{port}:127.0.0.1")])
            .collect();
        Hosts { port, resolve }
    }

    fn origin(&self, host: &str) -> String {
        format!("http://{host}.localhost:{}", self.port)
    }

    /// curl with the hosts resolved, `jar` as the browser's cookies, and `args`.
    fn curl(&self, jar: &str, args: &[&str]) -> Resp {
        let mut all: Vec<&str> = self.resolve.iter().map(String::as_str).collect();
        all.extend(["-c", jar, "-b", jar]);
        all.extend(args);
        curl(&all)
    }
}

fn ticket_form(landing: &str, service: &str) -> Option<(String, String)> {
    let at = landing.find(&format!("id=\"open-{service}\""))?;
    let form_start = landing[..at].rfind("<form")?;
    let form = &landing[form_start..at];
    let action = form
        .split("action=\"")
        .nth(1)?
        .split('"')
        .next()?
        .to_owned();
    Some((action, input_value(form, "ticket")?))
}

#[test]
fn people_enter_only_their_services_each_on_its_own_host_with_its_own_cookie() {
    if !have("curl") {
        return;
    }
    let env = Env::new();
    let a = Upstream::tcp();
    let b = Upstream::tcp();
    let addr = local_addr();
    let h = Hosts::new(addr.port());
    config(
        &env,
        &format!(
            "[server]\nportal_host = \"portal.localhost\"\n\n\
             [service.alpha]\nhost = \"a.localhost\"\nupstream = \"{}\"\ngroups = [\"ops\"]\n\
             description = \"the ops dashboard\"\n\n\
             [service.beta]\nhost = \"b.localhost\"\nupstream = \"{}\"\ngroups = [\"dev\"]\n",
            a.url, b.url
        ),
    );
    add_person(&env, "alice", "alice's passphrase");
    add_person(&env, "bob", "bob's passphrase");
    env.run("keygate", &["groups", "add", "ops"]).code(0);
    env.run("keygate", &["groups", "add", "dev"]).code(0);
    env.run("keygate", &["groups", "add-member", "ops", "alice"])
        .code(0);
    env.run("keygate", &["groups", "add-member", "dev", "bob"])
        .code(0);
    let kg = keygate(&env, addr, &["--plain-http"]);

    let jar = env.root().join("alice.jar").display().to_string();
    // A service host without a session sends the browser to the portal, which has it sign
    // in first.
    let first = h.curl(
        &jar,
        &["-H", "Accept: text/html", &format!("{}/", h.origin("a"))],
    );
    assert_eq!(first.status, 303, "{first:?}");
    let landing_url = format!("{}/.keygate/", h.origin("portal"));
    assert_eq!(first.header("location"), Some(landing_url.as_str()));
    let landing = h.curl(&jar, &[&landing_url]);
    assert_eq!(landing.status, 303);
    assert_eq!(
        landing.header("location"),
        Some("/.keygate/sign-in?next=%2F.keygate%2F")
    );
    assert_eq!(a.seen().len(), 0);
    // A host nobody serves is nobody's.
    assert_eq!(
        h.curl(&jar, &["-H", "Host: c.localhost", &url(addr, "/")])
            .status,
        404
    );

    // Sign in at the portal.
    let page = h.curl(
        &jar,
        &[&format!(
            "{}/.keygate/sign-in?next=%2F.keygate%2F",
            h.origin("portal")
        )],
    );
    let csrf = input_value(&page.body, "csrf").unwrap();
    assert_eq!(
        input_value(&page.body, "next").as_deref(),
        Some("/.keygate/")
    );
    let portal_origin = format!("Origin: {}", h.origin("portal"));
    let sign_in_at_portal = |csrf: &str, password: &str| {
        h.curl(
            &jar,
            &[
                "-H",
                &portal_origin,
                "-H",
                "Sec-Fetch-Site: same-origin",
                "--data-urlencode",
                &format!("csrf={csrf}"),
                "--data-urlencode",
                "username=alice",
                "--data-urlencode",
                &format!("password={password}"),
                "--data-urlencode",
                "next=/.keygate/",
                &format!("{}/.keygate/sign-in", h.origin("portal")),
            ],
        )
    };
    let signed = sign_in_at_portal(&csrf, "alice's passphrase");
    assert_eq!(signed.status, 303, "{signed:?}");
    assert_eq!(signed.header("location"), Some("/.keygate/"));
    let landing = h.curl(&jar, &[&format!("{}/.keygate/", h.origin("portal"))]);
    assert_eq!(landing.status, 200, "{landing:?}");
    assert!(
        landing.body.contains("id=\"open-alpha\""),
        "{}",
        landing.body
    );
    assert!(landing.body.contains("the ops dashboard"));
    assert!(
        !landing.body.contains("open-beta"),
        "bob's service is listed for alice: {}",
        landing.body
    );
    let csp = landing.header("content-security-policy").unwrap_or("");
    assert!(
        csp.contains(&format!("form-action 'self' {}", h.origin("a"))),
        "{csp}"
    );
    assert_eq!(landing.header("cache-control"), Some("no-store"));
    let (action, ticket) = ticket_form(&landing.body, "alpha").expect("a launch form");
    assert_eq!(action, format!("{}/.keygate/enter", h.origin("a")));

    // The ticket from the portal's page, posted to its own service, becomes a session there.
    let post_ticket = |jar: &str, origin: &str, to: &str, ticket: &str| {
        h.curl(
            jar,
            &[
                "-H",
                &format!("Origin: {origin}"),
                "-H",
                "Sec-Fetch-Site: same-site",
                "--data-urlencode",
                &format!("ticket={ticket}"),
                &format!("{to}/.keygate/enter"),
            ],
        )
    };
    // Posted by a sibling service's page, or to another service, it is refused.
    let other_jar = env.root().join("other.jar").display().to_string();
    assert_eq!(
        post_ticket(&other_jar, &h.origin("b"), &h.origin("a"), &ticket).status,
        403
    );
    assert_eq!(
        post_ticket(&other_jar, &h.origin("portal"), &h.origin("b"), &ticket).status,
        403
    );
    let entered = post_ticket(&jar, &h.origin("portal"), &h.origin("a"), &ticket);
    assert_eq!(entered.status, 303, "{entered:?}");
    assert_eq!(entered.header("location"), Some("/"));
    // Once only.
    let again = post_ticket(&other_jar, &h.origin("portal"), &h.origin("a"), &ticket);
    assert_eq!(again.status, 403, "a launch ticket worked twice: {again:?}");
    assert!(again.body.contains("used already"), "{}", again.body);
    // A forged ticket.
    let mut forged = ticket.clone().into_bytes();
    let last = forged.len() - 2;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    assert_eq!(
        post_ticket(&other_jar, &h.origin("portal"), &h.origin("a"), &forged).status,
        403
    );

    // An API token has no groups: a service for the ops group only does not take one.
    let token = test_support::server::token(&env, "ci", &["read"]);
    let with_token = curl(&[
        "-H",
        &format!("Host: a.localhost:{}", h.port),
        "-H",
        &bearer(&token),
        &url(addr, "/dash"),
    ]);
    assert_eq!(
        with_token.status, 403,
        "a token got into a group-only service: {with_token:?}"
    );
    let through = h.curl(&jar, &[&format!("{}/dash", h.origin("a"))]);
    assert_eq!(through.status, 200, "{through:?}");
    let seen = a.last();
    assert_eq!(
        header(&seen, "x-auth-request-user"),
        Some("alice"),
        "{seen:#}"
    );
    assert_eq!(
        header(&seen, "x-auth-request-groups"),
        Some("ops"),
        "{seen:#}"
    );
    assert!(
        !header(&seen, "cookie").unwrap_or("").contains("keygate"),
        "{seen:#}"
    );

    // Cookies are per host: the jar holds one session per host, and neither works elsewhere.
    let jar_text = std::fs::read_to_string(&jar).unwrap();
    let cookie_of = |host: &str| {
        jar_text
            .lines()
            .filter(|l| l.contains("keygate_session"))
            .find(|l| l.trim_start_matches("#HttpOnly_").starts_with(host))
            .and_then(|l| l.split('\t').nth(6))
            .map(str::to_owned)
    };
    let portal_cookie = cookie_of("portal.localhost").expect("the portal's session");
    let a_cookie = cookie_of("a.localhost").expect("alpha's session");
    assert_ne!(portal_cookie, a_cookie);
    let with_cookie = |host: &str, value: &str| {
        curl(&[
            "-H",
            &format!("Host: {host}.localhost:{}", h.port),
            "-H",
            &format!("Cookie: keygate_session={value}"),
            &url(addr, "/"),
        ])
    };
    assert_ne!(
        with_cookie("a", &portal_cookie).status,
        200,
        "the portal's session opened alpha"
    );
    assert_ne!(
        with_cookie("b", &a_cookie).status,
        200,
        "alpha's session opened beta"
    );
    assert_eq!(with_cookie("a", &a_cookie).status, 200);
    assert!(
        b.seen().is_empty(),
        "beta's upstream was reached: {:?}",
        b.seen()
    );
    // Alice at beta, signed in at the portal: not her service.
    assert_eq!(
        h.curl(
            &jar,
            &["-H", "Accept: text/html", &format!("{}/", h.origin("b"))]
        )
        .status,
        303
    );

    // A sibling's page cannot act with alpha's cookie: a POST, or a WebSocket.
    let sibling_post = h.curl(
        &jar,
        &[
            "-H",
            &format!("Origin: {}", h.origin("b")),
            "-H",
            "Sec-Fetch-Site: same-site",
            "-d",
            "x=1",
            &format!("{}/api", h.origin("a")),
        ],
    );
    assert_eq!(sibling_post.status, 403, "{sibling_post:?}");
    let ws_url = format!("ws://{addr}/ws");
    let host_hdr = format!("a.localhost:{}", h.port);
    let cookie_hdr = format!("keygate_session={a_cookie}");
    let sibling_ws = ws_echo(
        &ws_url,
        &[
            ("host", &host_hdr),
            ("cookie", &cookie_hdr),
            ("origin", &h.origin("b")),
        ],
    );
    assert_eq!(sibling_ws, Ws::Refused(403));
    let own_origin = h.origin("a");
    assert_eq!(
        ws_echo(
            &ws_url,
            &[
                ("host", &host_hdr),
                ("cookie", &cookie_hdr),
                ("origin", &own_origin)
            ]
        ),
        Ws::Echoed
    );

    // A ticket made before signing out, or before a new password, is dead.
    let fresh = h.curl(&jar, &[&format!("{}/.keygate/", h.origin("portal"))]);
    let (_, before_change) = ticket_form(&fresh.body, "alpha").unwrap();
    keygate_with_stdin(
        &env,
        &["users", "passwd", "alice", "--password-stdin"],
        "alice's new passphrase\n",
    )
    .code(0);
    let stale = post_ticket(
        &other_jar,
        &h.origin("portal"),
        &h.origin("a"),
        &before_change,
    );
    assert_eq!(
        stale.status, 403,
        "a ticket outlived the password change: {stale:?}"
    );
    // (The new password ended her sessions: sign in again for what follows.)
    let page = h.curl(&jar, &[&format!("{}/.keygate/sign-in", h.origin("portal"))]);
    let csrf = input_value(&page.body, "csrf").unwrap();
    let again = sign_in_at_portal(&csrf, "alice's new passphrase");
    assert_eq!(again.status, 303, "{again:?}");
    let landing = h.curl(&jar, &[&format!("{}/.keygate/", h.origin("portal"))]);
    let (_, before_sign_out) = ticket_form(&landing.body, "alpha").unwrap();
    let signed_in_again = {
        let jar_text = std::fs::read_to_string(&jar).unwrap();
        jar_text.contains("keygate_session")
    };
    assert!(signed_in_again);
    let sign_out_csrf = input_value(&landing.body, "csrf").unwrap();
    let out = h.curl(
        &jar,
        &[
            "-H",
            &portal_origin,
            "-H",
            "Sec-Fetch-Site: same-origin",
            "--data-urlencode",
            &format!("csrf={sign_out_csrf}"),
            &format!("{}/.keygate/sign-out", h.origin("portal")),
        ],
    );
    assert_eq!(out.status, 303, "{out:?}");
    let after_out = post_ticket(
        &other_jar,
        &h.origin("portal"),
        &h.origin("a"),
        &before_sign_out,
    );
    assert_eq!(
        after_out.status, 403,
        "a ticket outlived the portal sign-out: {after_out:?}"
    );
    // Back in for the rest, with a ticket made now.
    let page = h.curl(&jar, &[&format!("{}/.keygate/sign-in", h.origin("portal"))]);
    let csrf = input_value(&page.body, "csrf").unwrap();
    assert_eq!(
        sign_in_at_portal(&csrf, "alice's new passphrase").status,
        303
    );
    let landing = h.curl(&jar, &[&format!("{}/.keygate/", h.origin("portal"))]);
    let (_, ticket_now) = ticket_form(&landing.body, "alpha").unwrap();
    assert_eq!(
        post_ticket(&jar, &h.origin("portal"), &h.origin("a"), &ticket_now).status,
        303
    );
    let a_cookie = {
        let jar_text = std::fs::read_to_string(&jar).unwrap();
        jar_text
            .lines()
            .filter(|l| l.contains("keygate_session"))
            .find(|l| {
                l.trim_start_matches("#HttpOnly_")
                    .starts_with("a.localhost")
            })
            .and_then(|l| l.split('\t').nth(6))
            .map(str::to_owned)
            .unwrap()
    };
    let cookie_hdr = format!("keygate_session={a_cookie}");

    // Explained, then taken away: the next request is refused and the open WebSocket closes.
    let why = env.run(
        "keygate",
        &[
            "access",
            "explain",
            "--user",
            "alice",
            "--service",
            "alpha",
            "--json",
        ],
    );
    why.code(0);
    crate::json::validate("keygate.access", &why.json());
    assert_eq!(why.json()["granted_by"], serde_json::json!(["ops"]));
    let not = env.run(
        "keygate",
        &["access", "explain", "--user", "alice", "--service", "beta"],
    );
    not.code(1);
    assert!(
        not.stdout.contains("admits the groups dev"),
        "{}",
        not.stdout
    );
    let closed = ws_closed_after(
        &ws_url,
        &[
            ("host", &host_hdr),
            ("cookie", &cookie_hdr),
            ("origin", &own_origin),
        ],
        || {
            env.run("keygate", &["groups", "remove-member", "ops", "alice"])
                .code(0);
            let refused = with_cookie("a", &a_cookie);
            assert_eq!(refused.status, 403, "{refused:?}");
            assert!(
                refused.body.contains("No access to alpha"),
                "{}",
                refused.body
            );
        },
        Duration::from_secs(20),
    );
    assert!(
        closed.is_some(),
        "the WebSocket stayed open after alice left the group"
    );

    let log = kg.output();
    let lines = audit_lines(&log);
    assert!(
        lines
            .iter()
            .any(|l| l["reason"] == "not_in_group" && l["user"] == "alice"),
        "{log}"
    );
    assert!(!log.contains(&ticket), "a launch ticket is in the log");
}

#[test]
fn the_portal_host_never_reaches_an_upstream_even_with_one_for_every_other_host() {
    if !have("curl") {
        return;
    }
    let env = Env::new();
    let default = Upstream::tcp();
    let a = Upstream::tcp();
    let addr = local_addr();
    config(
        &env,
        &format!(
            "[server]\nportal_host = \"portal.localhost\"\nupstream = \"{}\"\n\n\
             [service.alpha]\nhost = \"a.localhost\"\nupstream = \"{}\"\n",
            default.url, a.url
        ),
    );
    let _kg = keygate(&env, addr, &["--plain-http"]);
    let host = format!("Host: portal.localhost:{}", addr.port());
    let page = curl(&["-H", &host, "-H", "Accept: text/html", &url(addr, "/")]);
    assert_eq!(page.status, 303, "{page:?}");
    assert_eq!(page.header("location"), Some("/.keygate/"));
    let api = curl(&["-H", &host, &url(addr, "/api/tickets")]);
    assert_eq!(api.status, 404, "{api:?}");
    assert!(
        default.seen().is_empty(),
        "the portal's host reached the upstream: {:?}",
        default.seen()
    );
    // Every other host still goes to it (with a token).
    let token = test_support::server::token(&env, "ci", &["read"]);
    let other = curl(&[
        "-H",
        "Host: other.localhost",
        "-H",
        &bearer(&token),
        &url(addr, "/x"),
    ]);
    assert_eq!(other.status, 200, "{other:?}");
}
