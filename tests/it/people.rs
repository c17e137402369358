//! People in the portal (issue 17): `keygate users` and `keygate groups`, and a person's
//! sign-in through the proxy with a password, a TOTP code or a recovery code, and a forced
//! new password, driven with curl against the real binary and an echoing upstream. The
//! attacks on each rule are here too: TOTP replay and a race on one code, session
//! fixation, a flood of wrong passwords for the admin, a pending step cookie reused after
//! the password changed, an open redirect, a disabled person's live session.

use std::io::Write as _;
use std::time::Duration;

use test_support::proxy::*;
use test_support::server::*;
use test_support::{Env, have, stat_mode};

/// A browser of curl's: a cookie jar and the forms it posts from this origin.
struct Browser {
    jar: String,
    base: String,
    from: Option<&'static str>,
}

impl Browser {
    fn new(env: &Env, name: &str, addr: std::net::SocketAddr) -> Browser {
        Browser {
            jar: env.root().join(format!("{name}.jar")).display().to_string(),
            base: format!("http://{addr}"),
            from: None,
        }
    }

    /// Requests come from this local address (another client, to the limiter).
    fn at_address(mut self, ip: &'static str) -> Browser {
        self.from = Some(ip);
        self
    }

    fn args(&self) -> Vec<String> {
        let mut a = vec!["-c".into(), self.jar.clone(), "-b".into(), self.jar.clone()];
        if let Some(ip) = self.from {
            a.extend(["--interface".into(), ip.into()]);
        }
        a
    }

    fn get(&self, path: &str) -> Resp {
        let mut a = self.args();
        a.push(format!("{}{path}", self.base));
        curl(&a.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// Posts `fields` to the sign-in page with the CSRF value of the page it last got.
    fn post(&self, csrf: &str, fields: &[(&str, &str)]) -> Resp {
        let mut a = self.args();
        a.extend([
            "-H".into(),
            format!("Origin: {}", self.base),
            "-H".into(),
            "Sec-Fetch-Site: same-origin".into(),
            "--data-urlencode".into(),
            format!("csrf={csrf}"),
        ]);
        for (k, v) in fields {
            a.extend(["--data-urlencode".into(), format!("{k}={v}")]);
        }
        a.push(format!("{}/.keygate/sign-in", self.base));
        curl(&a.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// The sign-in page's CSRF value.
    fn csrf(&self) -> String {
        let page = self.get("/.keygate/sign-in");
        input_value(&page.body, "csrf").unwrap_or_else(|| panic!("no csrf: {}", page.body))
    }

    /// Name and password, then the code when asked: the last response.
    fn sign_in(&self, user: &str, password: &str, code: Option<&str>) -> Resp {
        let csrf = self.csrf();
        let r = self.post(
            &csrf,
            &[("username", user), ("password", password), ("next", "/app")],
        );
        match code {
            Some(code) if r.status == 200 && r.body.contains("name=\"step\" value=\"totp\"") => {
                self.post(&csrf, &[("step", "totp"), ("code", code), ("next", "/app")])
            }
            _ => r,
        }
    }

    fn cookie(&self, name: &str) -> Option<String> {
        let jar = std::fs::read_to_string(&self.jar).ok()?;
        jar.lines()
            .filter(|l| !l.starts_with("# ") && !l.is_empty())
            .rev()
            .find_map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                (f.len() >= 7 && f[5] == name).then(|| f[6].to_owned())
            })
    }
}

fn session_set(r: &Resp) -> bool {
    r.headers.iter().any(|(k, v)| {
        k == "set-cookie"
            && v.starts_with("keygate_session=")
            && !v.starts_with("keygate_session=;")
    })
}

#[test]
fn users_and_groups_are_managed_from_the_cli_with_temporary_passwords_and_an_idempotent_bootstrap()
{
    let env = Env::new();
    // The first administrator, from stdin (never argv); again: nothing asked, nothing done.
    keygate_with_stdin(
        &env,
        &["users", "bootstrap-admin", "root", "--password-stdin"],
        "correct horse battery\n",
    )
    .code(0);
    let again = env.run("keygate", &["users", "bootstrap-admin", "other"]);
    again.code(0);
    assert!(
        again.stderr.contains("nothing to do") || again.stdout.contains("nothing to do"),
        "{again:?}"
    );
    // Without a terminal and without a source named, a password is not guessed at.
    let no_tty = env.run("keygate", &["users", "passwd", "root"]);
    no_tty.code(2);
    assert!(
        no_tty.stderr.contains("--password-stdin"),
        "{}",
        no_tty.stderr
    );
    // A short password is refused and nothing changes.
    let weak = keygate_with_stdin(
        &env,
        &["users", "passwd", "root", "--password-stdin"],
        "short\n",
    );
    weak.code(2);
    assert!(weak.stderr.contains("too short"), "{}", weak.stderr);

    let added = env.run(
        "keygate",
        &[
            "users",
            "add",
            "alice",
            "--email",
            "alice@example.com",
            "--json",
        ],
    );
    added.code(0);
    let doc = added.json();
    assert_eq!(doc["schema"], "keygate.users.add/1");
    crate::json::validate("keygate.users", &doc);
    let temporary = doc["temporary_password"].as_str().unwrap();
    assert_eq!(temporary.len(), 23, "{temporary}");
    assert_eq!(doc["must_change_password"], true);
    env.run("keygate", &["users", "add", "alice"]).code(2);
    let bad = env.run("keygate", &["users", "add", "Alice"]);
    bad.code(2);
    assert!(bad.stderr.contains("lowercase"), "{}", bad.stderr);
    // A typo in a member list changes nothing.
    env.run(
        "keygate",
        &["groups", "add", "ops", "--description", "on call"],
    )
    .code(0);
    let typo = env.run(
        "keygate",
        &["groups", "add-member", "ops", "alice", "alcie"],
    );
    typo.code(2);
    assert!(typo.stderr.contains("alcie"), "{}", typo.stderr);
    let groups = env.run("keygate", &["groups", "list", "--json"]).json();
    crate::json::validate("keygate.groups", &groups);
    let ops = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "ops")
        .unwrap();
    assert_eq!(ops["members"], serde_json::json!([]), "{groups}");
    env.run("keygate", &["groups", "add-member", "ops", "alice"])
        .code(0);
    let list = env.run("keygate", &["users", "list", "--json"]).json();
    crate::json::validate("keygate.users", &list);
    let names: Vec<&str> = list["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "root"]);
    assert_eq!(list["users"][0]["groups"], serde_json::json!(["ops"]));
    assert_eq!(list["users"][1]["groups"], serde_json::json!(["admins"]));
    // Nothing secret is in a listing.
    let text = serde_json::to_string(&list).unwrap();
    assert!(
        !text.contains(temporary) && !text.contains("argon2"),
        "{text}"
    );
    assert_eq!(stat_mode(&env.root().join("state/keygate.db")), "600");
    let totp = env
        .run("keygate", &["users", "totp", "alice", "--json"])
        .json();
    assert!(
        totp["otpauth_uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/keygate:alice?secret=")
    );
    assert_eq!(totp["recovery_codes"].as_array().unwrap().len(), 10);
    crate::json::validate("keygate.users", &totp);
    let shown = env
        .run("keygate", &["users", "show", "alice", "--json"])
        .json();
    assert_eq!(shown["second_factor"], "totp");
    crate::json::validate("keygate.users", &shown);
    let sessions = env.run("keygate", &["users", "sessions", "--json"]).json();
    crate::json::validate("keygate.users", &sessions);
    assert!(
        !serde_json::to_string(&shown)
            .unwrap()
            .contains(totp["secret"].as_str().unwrap())
    );
    env.run("keygate", &["users", "disable", "alice"]).code(0);
    env.run("keygate", &["users", "remove", "alice"]).code(0);
    let gone = env.run("keygate", &["users", "remove", "alice"]);
    gone.code(0);
}

#[test]
fn a_person_signs_in_with_a_temporary_password_then_totp_and_the_upstream_sees_only_their_identity()
{
    if !have("curl") {
        return;
    }
    let env = Env::new();
    let added = env
        .run("keygate", &["users", "add", "alice", "--json"])
        .json();
    let temporary = added["temporary_password"].as_str().unwrap().to_owned();
    env.run("keygate", &["groups", "add", "ops"]).code(0);
    env.run("keygate", &["groups", "add-member", "ops", "alice"])
        .code(0);
    let up = Upstream::tcp();
    let addr = local_addr();
    let kg = plain_proxy(&env, addr, &up.url, false);
    let b = Browser::new(&env, "alice", addr);

    let page = b.get("/.keygate/sign-in");
    for needle in [
        "id=\"password-form\"",
        "autocomplete=\"username\"",
        "autocomplete=\"current-password\"",
        "<details>",
    ] {
        assert!(page.body.contains(needle), "{needle}: {}", page.body);
    }
    // One message for a wrong password and for a name nobody has.
    let wrong = b.sign_in("alice", "not her password", None);
    let nobody = b.sign_in("mallory", "not her password", None);
    assert_eq!((wrong.status, nobody.status), (401, 401));
    assert!(
        wrong
            .body
            .contains("That name and password were not accepted.")
    );
    assert!(
        nobody
            .body
            .contains("That name and password were not accepted.")
    );
    assert!(!session_set(&wrong) && !session_set(&nobody));

    // The temporary password leads to "choose a new password", not in.
    let csrf = b.csrf();
    let first = b.post(
        &csrf,
        &[
            ("username", "alice"),
            ("password", &temporary),
            ("next", "/app"),
        ],
    );
    assert_eq!(first.status, 200, "{first:?}");
    assert!(
        first.body.contains("name=\"step\" value=\"change\""),
        "{}",
        first.body
    );
    assert!(!session_set(&first));
    let denied = curl(&["-b", &b.jar, &url(addr, "/app")]);
    assert_ne!(
        denied.status, 200,
        "a pending step is no session: {denied:?}"
    );
    let mismatch = b.post(
        &csrf,
        &[
            ("step", "change"),
            ("new_password", "a brand new passphrase"),
            ("new_password_again", "a brand new passphrasE"),
        ],
    );
    assert_eq!(mismatch.status, 400, "{mismatch:?}");
    let short = b.post(
        &csrf,
        &[
            ("step", "change"),
            ("new_password", "short"),
            ("new_password_again", "short"),
        ],
    );
    assert_eq!(short.status, 400);
    assert!(short.body.contains("too short"), "{}", short.body);
    let changed = b.post(
        &csrf,
        &[
            ("step", "change"),
            ("new_password", "a brand new passphrase"),
            ("new_password_again", "a brand new passphrase"),
            ("next", "/app"),
        ],
    );
    assert_eq!(changed.status, 303, "{changed:?}");
    assert_eq!(changed.header("location"), Some("/app"));
    assert!(session_set(&changed));
    // The old temporary password is gone.
    assert_eq!(
        Browser::new(&env, "other", addr)
            .sign_in("alice", &temporary, None)
            .status,
        401
    );

    // The upstream sees who and which groups, never a credential of keygate's.
    let through = curl(&[
        "-b",
        &b.jar,
        "-H",
        "X-Auth-Request-Groups: admins",
        "-H",
        "X-Auth-Request-User: root",
        &url(addr, "/app"),
    ]);
    assert_eq!(through.status, 200, "{through:?}");
    let seen = up.last();
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
    assert_eq!(header(&seen, "x-auth-request-token-id"), None, "{seen:#}");
    let cookies = header(&seen, "cookie").unwrap_or("");
    assert!(
        !cookies.contains("keygate_"),
        "keygate's cookies reached the upstream: {cookies}"
    );

    // A second factor: the next sign-in asks for a code.
    let totp = env
        .run("keygate", &["users", "totp", "alice", "--json"])
        .json();
    let secret = totp["secret"].as_str().unwrap().to_owned();
    let recovery = totp["recovery_codes"][0].as_str().unwrap().to_owned();
    let b2 = Browser::new(&env, "alice2", addr);
    let csrf = b2.csrf();
    let step = b2.post(
        &csrf,
        &[
            ("username", "alice"),
            ("password", "a brand new passphrase"),
        ],
    );
    assert_eq!(step.status, 200);
    assert!(
        step.body.contains("autocomplete=\"one-time-code\""),
        "{}",
        step.body
    );
    let bad_code = b2.post(&csrf, &[("step", "totp"), ("code", "000000")]);
    assert_eq!(bad_code.status, 401);
    assert!(!session_set(&bad_code));
    // Skipping the code (posting straight to the gateway with the pending cookie) is no way in.
    let skip = curl(&["-b", &b2.jar, &url(addr, "/app")]);
    assert_ne!(skip.status, 200, "{skip:?}");
    let code = totp_code(&secret, unix_now());
    let ok = b2.post(
        &csrf,
        &[("step", "totp"), ("code", &code), ("next", "/app")],
    );
    assert_eq!(ok.status, 303, "{ok:?}");
    assert!(session_set(&ok));

    // The same code again, in another sign-in: refused (RFC 6238 section 5.2).
    let b3 = Browser::new(&env, "alice3", addr);
    let replay = b3.sign_in("alice", "a brand new passphrase", Some(&code));
    assert_eq!(
        replay.status, 401,
        "a TOTP code was accepted twice: {replay:?}"
    );
    // A recovery code works, once.
    let b4 = Browser::new(&env, "alice4", addr);
    assert_eq!(
        b4.sign_in("alice", "a brand new passphrase", Some(&recovery))
            .status,
        303
    );
    let b5 = Browser::new(&env, "alice5", addr);
    assert_eq!(
        b5.sign_in("alice", "a brand new passphrase", Some(&recovery))
            .status,
        401
    );

    // An open redirect through `next` lands on this host.
    let b6 = Browser::new(&env, "alice6", addr);
    let csrf = b6.csrf();
    b6.post(
        &csrf,
        &[
            ("username", "alice"),
            ("password", "a brand new passphrase"),
        ],
    );
    let next_code = totp_code(&secret, unix_now() + 30);
    let evil = b6.post(
        &csrf,
        &[
            ("step", "totp"),
            ("code", &next_code),
            ("next", "//evil.example/"),
        ],
    );
    assert_eq!(evil.status, 303, "{evil:?}");
    assert_eq!(evil.header("location"), Some("/"));

    // Disabling her ends every session on the next request.
    assert_eq!(curl(&["-b", &b.jar, &url(addr, "/app")]).status, 200);
    env.run("keygate", &["users", "disable", "alice"]).code(0);
    let after = curl(&["-b", &b.jar, &url(addr, "/app")]);
    assert_ne!(
        after.status, 200,
        "a disabled person's session still works: {after:?}"
    );
    assert_eq!(b4.get("/app").status, 401);

    // The audit log says what happened, with her name where she exists and no secrets.
    let log = kg.output();
    let lines = audit_lines(&log);
    let reason_for = |reason: &str| {
        lines
            .iter()
            .filter(|l| l["reason"] == reason)
            .cloned()
            .collect::<Vec<_>>()
    };
    assert!(
        reason_for("bad_password")
            .iter()
            .all(|l| l["user"] == "alice"),
        "{log}"
    );
    let unknown = reason_for("unknown_user");
    assert!(
        !unknown.is_empty() && unknown.iter().all(|l| l.get("user").is_none()),
        "{log}"
    );
    assert!(!reason_for("totp_replayed").is_empty(), "{log}");
    assert!(
        reason_for("signed_in").iter().any(|l| l["user"] == "alice"),
        "{log}"
    );
    // The store keeps the people's trail too, admin changes included.
    let trail = env.run("keygate", &["audit", "--json"]);
    trail.code(0);
    let trail = trail.json();
    crate::json::validate("keygate.audit", &trail);
    let has = |event: &str, user: Option<&str>| {
        trail["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"] == event && user.is_none_or(|u| e["user"] == u))
    };
    for (event, user) in [
        ("user_added", Some("alice")),
        ("group_member_added", Some("alice")),
        ("totp_enrolled", Some("alice")),
        ("bad_password", Some("alice")),
        ("unknown_user", None),
        ("totp_replayed", Some("alice")),
        ("signed_in", Some("alice")),
        ("user_disabled", Some("alice")),
    ] {
        assert!(has(event, user), "no {event} for {user:?} in {trail:#}");
    }
    let trail_text = serde_json::to_string(&trail).unwrap();
    assert!(
        !trail_text.contains("mallory"),
        "a name nobody has is in the trail"
    );
    for secret_text in [
        temporary.as_str(),
        "a brand new passphrase",
        secret.as_str(),
        recovery.as_str(),
        code.as_str(),
    ] {
        assert!(!log.contains(secret_text), "{secret_text} is in the log");
    }
}

#[test]
fn a_new_session_id_at_sign_in_so_a_planted_session_is_not_fixed() {
    if !have("curl") {
        return;
    }
    let env = Env::new();
    add_person(&env, "alice", "alice's passphrase");
    add_person(&env, "mallory", "mallory's passphrase");
    let up = Upstream::tcp();
    let addr = local_addr();
    let _kg = plain_proxy(&env, addr, &up.url, false);
    // Alice opens the sign-in page; Mallory, signed in herself, plants her session cookie
    // in Alice's browser before Alice submits the form.
    let m = Browser::new(&env, "mallory", addr);
    assert_eq!(
        m.sign_in("mallory", "mallory's passphrase", None).status,
        303
    );
    let planted = m.cookie("keygate_session").expect("mallory's session");
    let b = Browser::new(&env, "alice", addr);
    let csrf = b.csrf();
    let mut jar = std::fs::OpenOptions::new()
        .append(true)
        .open(&b.jar)
        .unwrap();
    writeln!(
        jar,
        "127.0.0.1\tFALSE\t/\tFALSE\t0\tkeygate_session\t{planted}"
    )
    .unwrap();
    drop(jar);
    assert_eq!(
        b.cookie("keygate_session").as_deref(),
        Some(planted.as_str())
    );
    let r = b.post(
        &csrf,
        &[("username", "alice"), ("password", "alice's passphrase")],
    );
    assert_eq!(r.status, 303, "{r:?}");
    let alices = b.cookie("keygate_session").expect("alice's session");
    assert_ne!(planted, alices, "the session id did not change at sign-in");
    // Mallory's copy of the planted id is dead, not Alice's session.
    let r = curl(&[
        "-H",
        &format!("Cookie: keygate_session={planted}"),
        &url(addr, "/app"),
    ]);
    assert_ne!(r.status, 200, "{r:?}");
    assert_eq!(curl(&["-b", &b.jar, &url(addr, "/app")]).status, 200);
    assert_eq!(header(&up.last(), "x-auth-request-user"), Some("alice"));
}

#[test]
fn a_flood_of_wrong_passwords_for_the_admin_does_not_lock_the_admin_out() {
    if !have("curl") {
        return;
    }
    let env = Env::new();
    keygate_with_stdin(
        &env,
        &["users", "bootstrap-admin", "root", "--password-stdin"],
        "the admin's passphrase\n",
    )
    .code(0);
    let up = Upstream::tcp();
    let addr = local_addr();
    let _kg = keygate_proxy(
        &env,
        addr,
        &up.url,
        false,
        &[
            "--set",
            "server.rate_limit_burst=5",
            "--set",
            "server.rate_limit_refill=60s",
        ],
    );
    let attacker = Browser::new(&env, "attacker", addr).at_address("127.0.0.2");
    let mut statuses = Vec::new();
    for i in 0..8 {
        statuses.push(
            attacker
                .sign_in("root", &format!("guess number {i}"), None)
                .status,
        );
    }
    assert_eq!(statuses[..5], [401; 5], "{statuses:?}");
    assert!(
        statuses[5..].iter().all(|s| *s == 429),
        "the flood was not slowed down: {statuses:?}"
    );
    // Out of attempts, even the right password is not heard from that address...
    assert_eq!(
        attacker
            .sign_in("root", "the admin's passphrase", None)
            .status,
        429
    );
    // ...while the admin, elsewhere, signs in at once.
    let admin = Browser::new(&env, "admin", addr);
    let r = admin.sign_in("root", "the admin's passphrase", None);
    assert_eq!(
        r.status, 303,
        "the admin was locked out by someone else's guesses: {r:?}"
    );
}

#[test]
fn one_totp_code_raced_from_two_browsers_lets_in_only_one() {
    if !have("curl") {
        return;
    }
    let env = Env::new();
    add_person(&env, "carol", "carol's passphrase");
    let totp = env
        .run("keygate", &["users", "totp", "carol", "--json"])
        .json();
    let secret = totp["secret"].as_str().unwrap().to_owned();
    let up = Upstream::tcp();
    let addr = local_addr();
    let _kg = plain_proxy(&env, addr, &up.url, false);
    let browsers: Vec<(Browser, String)> = (0..4)
        .map(|i| {
            let b = Browser::new(&env, &format!("carol{i}"), addr);
            let csrf = b.csrf();
            let r = b.post(
                &csrf,
                &[("username", "carol"), ("password", "carol's passphrase")],
            );
            assert_eq!(r.status, 200);
            (b, csrf)
        })
        .collect();
    let code = totp_code(&secret, unix_now());
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = browsers
            .iter()
            .map(|(b, csrf)| s.spawn(|| b.post(csrf, &[("step", "totp"), ("code", &code)]).status))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|s| **s == 303).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        3,
        "{statuses:?}"
    );
}

#[test]
fn a_pending_step_dies_with_a_password_change() {
    if !have("curl") {
        return;
    }
    let env = Env::new();
    add_person(&env, "dave", "dave's passphrase");
    let totp = env
        .run("keygate", &["users", "totp", "dave", "--json"])
        .json();
    let secret = totp["secret"].as_str().unwrap().to_owned();
    let up = Upstream::tcp();
    let addr = local_addr();
    let _kg = plain_proxy(&env, addr, &up.url, false);
    let b = Browser::new(&env, "dave", addr);
    let csrf = b.csrf();
    assert_eq!(
        b.post(
            &csrf,
            &[("username", "dave"), ("password", "dave's passphrase")]
        )
        .status,
        200
    );
    // The admin resets his password (a stolen one) while the thief holds the pending step.
    keygate_with_stdin(
        &env,
        &["users", "passwd", "dave", "--password-stdin"],
        "a new passphrase for dave\n",
    )
    .code(0);
    let r = b.post(
        &csrf,
        &[("step", "totp"), ("code", &totp_code(&secret, unix_now()))],
    );
    assert_eq!(r.status, 401, "{r:?}");
    assert!(!session_set(&r));
    assert!(r.body.contains("took too long"), "{}", r.body);
}

#[test]
fn a_forgotten_password_is_reset_through_a_link_mailed_by_a_real_smtp_server() {
    if !have("curl") || !test_support::have_python_module("aiosmtpd") {
        return;
    }
    let env = Env::new();
    let smtp_port = free_port();
    let mut smtp_cmd = std::process::Command::new("python3");
    smtp_cmd.args([
        "-u",
        "-m",
        "aiosmtpd",
        "-n",
        "-l",
        &format!("127.0.0.1:{smtp_port}"),
    ]);
    let mut smtp = test_support::Proc::spawn("aiosmtpd", smtp_cmd, &env.root().join("smtp.log"));
    smtp.wait_port(([127, 0, 0, 1], smtp_port).into());
    let up = Upstream::tcp();
    let addr = local_addr();
    config(
        &env,
        &format!(
            "[server]\nportal_host = \"portal.localhost\"\nupstream = \"{}\"\n\n\
             [smtp]\nhost = \"127.0.0.1\"\nport = {smtp_port}\nsecurity = \"none\"\n\
             from = \"keygate <keygate@localhost>\"\n",
            up.url
        ),
    );
    env.run(
        "keygate",
        &["users", "add", "alice", "--email", "alice@example.com"],
    )
    .code(0);
    keygate_with_stdin(
        &env,
        &["users", "passwd", "alice", "--password-stdin"],
        "the one she forgot\n",
    )
    .code(0);
    let kg = keygate(&env, addr, &["--plain-http"]);
    let port = addr.port();
    let portal = |p: &str| format!("http://portal.localhost:{port}{p}");
    let resolve = format!("portal.localhost:{port}:127.0.0.1");
    let jar = env.root().join("jar").display().to_string();
    let browser = |args: &[&str]| {
        let mut all = vec!["--resolve", &resolve, "-c", &jar, "-b", &jar];
        all.extend(args);
        curl(&all)
    };

    // Signed in somewhere (her laptop), which the reset is to end.
    let laptop = Browser::new(&env, "laptop", addr);
    assert_eq!(
        laptop.sign_in("alice", "the one she forgot", None).status,
        303
    );
    assert_eq!(laptop.get("/app").status, 200);

    let page = browser(&[&portal("/.keygate/sign-in")]);
    assert!(page.body.contains("id=\"forgot\""), "{}", page.body);
    let form = browser(&[&portal("/.keygate/reset")]);
    assert_eq!(form.status, 200);
    let csrf = input_value(&form.body, "csrf").unwrap();
    let origin = format!("Origin: {}", portal(""));
    let ask = |who: &str, host: Option<&str>| {
        // An attacker forging `Host` sends the matching `Origin`: the form is then theirs.
        let host_header = host.map(|h| format!("Host: {h}"));
        let their_origin = host.map(|h| format!("Origin: http://{h}"));
        let mut args = vec![
            "-H",
            their_origin.as_deref().unwrap_or(origin.as_str()),
            "--data-urlencode",
        ];
        let csrf_field = format!("csrf={csrf}");
        let who_field = format!("username={who}");
        args.extend([csrf_field.as_str(), "--data-urlencode", who_field.as_str()]);
        // (curl matches its cookies to a forged `Host`: the attacker's CSRF cookie, sent by hand.)
        let their_cookie = format!("Cookie: keygate_csrf={csrf}");
        if let Some(h) = &host_header {
            args.extend(["-H", h.as_str(), "-H", their_cookie.as_str()]);
        }
        let target = portal("/.keygate/reset");
        args.push(&target);
        browser(&args)
    };
    // Nobody by that name: the same answer, and no mail.
    let nobody = ask("mallory@example.com", None);
    assert_eq!(nobody.status, 200, "{nobody:?}");
    assert!(nobody.body.contains("id=\"sent\""), "{}", nobody.body);
    // Asked with a forged Host: the link still names the portal from the configuration.
    let asked = ask("alice@example.com", Some(&format!("evil.example:{port}")));
    assert_eq!(asked.status, 200, "{asked:?}");
    assert_eq!(
        asked.body.replace("evil.example", "portal.localhost"),
        nobody.body.replace("evil.example", "portal.localhost"),
        "the answer says whether the account exists"
    );
    let mut mail = String::new();
    assert!(
        eventually(Duration::from_secs(10), || {
            // The body is quoted-printable (lettre's choice for lines over 76 characters).
            mail = smtp
                .output()
                .replace("=\r\n", "")
                .replace("=\n", "")
                .replace("=3D", "=");
            mail.contains("/.keygate/reset?t=")
        }),
        "no reset mail reached the SMTP server:\n{mail}\n--- keygate\n{}",
        kg.output()
    );
    assert_eq!(
        mail.matches("/.keygate/reset?t=").count(),
        1,
        "mail for nobody: {mail}"
    );
    assert!(mail.contains("alice@example.com"), "{mail}");
    let link = mail
        .split_whitespace()
        .find(|w| w.contains("/.keygate/reset?t="))
        .unwrap()
        .trim_matches(|c: char| c == '\'' || c == '"' || c == '\\')
        .to_owned();
    assert!(
        link.starts_with(&format!("http://portal.localhost:{port}/.keygate/reset?t=")),
        "the link follows the request's Host: {link}"
    );

    // The link opens the new-password form; once used it is spent.
    let path = &link[link.find("/.keygate/").unwrap()..];
    let choose = browser(&[&portal(path)]);
    assert_eq!(choose.status, 200, "{choose:?}");
    assert_eq!(choose.header("referrer-policy"), Some("no-referrer"));
    let ticket = input_value(&choose.body, "ticket").unwrap();
    let csrf = input_value(&choose.body, "csrf").unwrap();
    let set = |new: &str, again: &str| {
        browser(&[
            "-H",
            &origin,
            "--data-urlencode",
            &format!("csrf={csrf}"),
            "--data-urlencode",
            &format!("ticket={ticket}"),
            "--data-urlencode",
            "step=reset",
            "--data-urlencode",
            &format!("new_password={new}"),
            "--data-urlencode",
            &format!("new_password_again={again}"),
            &portal("/.keygate/reset"),
        ])
    };
    assert_eq!(
        set("short", "short").status,
        400,
        "a weak password spends the link"
    );
    let done = set(
        "a fresh passphrase for alice",
        "a fresh passphrase for alice",
    );
    assert_eq!(done.status, 303, "{done:?}");
    assert_eq!(done.header("location"), Some("/.keygate/sign-in"));
    assert_eq!(
        set("another passphrase here", "another passphrase here").status,
        400,
        "the link worked twice"
    );
    assert_eq!(browser(&[&portal(path)]).status, 400);

    // The laptop's session ended; the old password is gone, the new one works.
    assert_eq!(laptop.get("/app").status, 401);
    assert_eq!(
        Browser::new(&env, "a", addr)
            .sign_in("alice", "the one she forgot", None)
            .status,
        401
    );
    assert_eq!(
        Browser::new(&env, "b", addr)
            .sign_in("alice", "a fresh passphrase for alice", None)
            .status,
        303
    );

    let log = kg.output();
    let lines = audit_lines(&log);
    assert!(
        lines
            .iter()
            .any(|l| l["reason"] == "reset_sent" && l["user"] == "alice"),
        "{log}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["reason"] == "password_reset" && l["user"] == "alice"),
        "{log}"
    );
    assert!(
        !log.contains(&ticket),
        "the reset link's secret is in the log"
    );
}

#[test]
fn a_person_lists_their_sessions_and_ends_one_from_another_browser_but_never_anyone_elses() {
    if !have("curl") {
        return;
    }
    let env = Env::new();
    for (user, pw) in [
        ("alice", "alice's passphrase"),
        ("bob", "bob's long passphrase"),
    ] {
        add_person(&env, user, pw);
    }
    let up = Upstream::tcp();
    let addr = local_addr();
    let _kg = plain_proxy(&env, addr, &up.url, false);
    let laptop = Browser::new(&env, "laptop", addr);
    let phone = Browser::new(&env, "phone", addr);
    let bobs = Browser::new(&env, "bob", addr);
    assert_eq!(
        laptop.sign_in("alice", "alice's passphrase", None).status,
        303
    );
    assert_eq!(
        phone.sign_in("alice", "alice's passphrase", None).status,
        303
    );
    assert_eq!(
        bobs.sign_in("bob", "bob's long passphrase", None).status,
        303
    );

    let page = laptop.get("/.keygate/sessions");
    assert_eq!(page.status, 200, "{page:?}");
    let rows: Vec<String> = page
        .body
        .match_indices("name=\"step\" value=\"")
        .map(|(i, m)| {
            page.body[i + m.len()..]
                .split('"')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(rows.len(), 2, "{}", page.body);
    assert_eq!(page.body.matches("(this browser)").count(), 1);
    let csrf = input_value(&page.body, "csrf").unwrap();
    let bob_page = bobs.get("/.keygate/sessions");
    let bob_row = bob_page
        .body
        .split("name=\"step\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_owned();

    let end = |b: &Browser, csrf: &str, row: &str| {
        let mut a = vec![
            "-c".to_owned(),
            b.jar.clone(),
            "-b".to_owned(),
            b.jar.clone(),
        ];
        a.extend([
            "-H".into(),
            format!("Origin: {}", b.base),
            "--data-urlencode".into(),
            format!("csrf={csrf}"),
            "--data-urlencode".into(),
            format!("step={row}"),
            format!("{}/.keygate/sessions", b.base),
        ]);
        curl(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    // Without the session's own CSRF value nothing ends; nor does Bob's session from Alice's.
    assert_eq!(end(&laptop, "forged", &rows[0]).status, 403);
    let not_hers = end(&laptop, &csrf, &bob_row);
    assert_eq!(not_hers.status, 200);
    assert!(not_hers.body.contains("ended already"), "{}", not_hers.body);
    assert_eq!(bobs.get("/app").status, 200, "alice ended bob's session");
    // The phone's row (the one that is not this browser) ends, and the phone is out.
    let other = page
        .body
        .split("<li>")
        .skip(1)
        .find(|li| !li.contains("(this browser)"))
        .and_then(|li| input_value(li, "step"))
        .unwrap();
    assert!(rows.contains(&other));
    let other = &other;
    assert_eq!(end(&laptop, &csrf, other).status, 303);
    assert_ne!(
        phone.get("/app").status,
        200,
        "the ended session still works"
    );
    assert_eq!(laptop.get("/app").status, 200);
}

#[test]
fn second_factor_guesses_from_many_addresses_spend_one_budget_of_the_person() {
    if !have("curl") {
        return;
    }
    let env = Env::new();
    add_person(&env, "erin", "erin's passphrase");
    let totp = env
        .run("keygate", &["users", "totp", "erin", "--json"])
        .json();
    let secret = totp["secret"].as_str().unwrap().to_owned();
    let up = Upstream::tcp();
    let addr = local_addr();
    let _kg = plain_proxy(&env, addr, &up.url, false);
    // The thief has the password: one pending step, then codes from six addresses, one each
    // (every address has its whole budget).
    let thief = Browser::new(&env, "thief", addr);
    let csrf = thief.csrf();
    assert_eq!(
        thief
            .post(
                &csrf,
                &[("username", "erin"), ("password", "erin's passphrase")]
            )
            .status,
        200
    );
    let from = |ip: &'static str| {
        Browser {
            jar: thief.jar.clone(),
            base: thief.base.clone(),
            from: None,
        }
        .at_address(ip)
    };
    let addresses = [
        "127.0.0.2",
        "127.0.0.3",
        "127.0.0.4",
        "127.0.0.5",
        "127.0.0.6",
        "127.0.0.7",
        "127.0.0.8",
    ];
    let statuses: Vec<u16> = addresses
        .iter()
        .enumerate()
        .map(|(i, ip)| {
            from(ip)
                .post(
                    &csrf,
                    &[("step", "totp"), ("code", &format!("{:06}", 100_000 + i))],
                )
                .status
        })
        .collect();
    assert_eq!(statuses[..5], [401; 5], "{statuses:?}");
    assert!(
        statuses[5..].iter().all(|s| *s == 429),
        "guesses spread over addresses were not counted together: {statuses:?}"
    );
    // Even the right code waits now.
    assert_eq!(
        from("127.0.0.9")
            .post(
                &csrf,
                &[("step", "totp"), ("code", &totp_code(&secret, unix_now()))]
            )
            .status,
        429
    );
}

#[test]
fn parallel_password_guesses_are_counted_before_they_are_checked() {
    if !have("curl") {
        return;
    }
    let env = Env::new();
    keygate_with_stdin(
        &env,
        &["users", "bootstrap-admin", "root", "--password-stdin"],
        "the admin's passphrase\n",
    )
    .code(0);
    let up = Upstream::tcp();
    let addr = local_addr();
    let _kg = keygate_proxy(
        &env,
        addr,
        &up.url,
        false,
        &[
            "--set",
            "server.rate_limit_burst=5",
            "--set",
            "server.rate_limit_refill=60s",
        ],
    );
    let attacker = Browser::new(&env, "attacker", addr);
    let csrf = attacker.csrf();
    // One cookie jar per request (curl rewrites its jar; twelve at once would garble one),
    // each holding the same CSRF cookie.
    let browsers: Vec<Browser> = (0..12)
        .map(|i| {
            let jar = format!("{}.{i}", attacker.jar);
            std::fs::copy(&attacker.jar, &jar).unwrap();
            Browser {
                jar,
                base: attacker.base.clone(),
                from: None,
            }
        })
        .collect();
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..12)
            .map(|i| {
                let (a, csrf) = (&browsers[i], &csrf);
                s.spawn(move || {
                    a.post(
                        csrf,
                        &[
                            ("username", "root"),
                            ("password", &format!("parallel guess {i}")),
                        ],
                    )
                    .status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let heard = statuses.iter().filter(|s| **s == 401).count();
    assert!(
        heard <= 5,
        "{heard} of 12 parallel guesses were checked with a budget of 5: {statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        12 - heard,
        "{statuses:?}"
    );
}
