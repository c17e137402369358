//! Issue 15: keygate as an OAuth 2.0 authorization server, driven by real clients:
//! openid-client and jose from npm, authlib and pyjwt from PyPI (pinned under `fixtures/`),
//! curl for the requests no client library would send.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use test_support::proxy::{Upstream, keygate_proxy};
use test_support::server::*;
use test_support::{Env, Proc, fixtures, have, have_npm_fixture, have_python_module};

/// A keygate on HTTPS with one client registered.
struct Server {
    env: Env,
    _kg: Proc,
    ca: PathBuf,
    issuer: String,
    client_id: String,
    secret: String,
}

fn peers() -> bool {
    have("curl")
        && have_npm_fixture("oauth")
        && have_python_module("authlib")
        && have_python_module("jwt")
}

fn register(env: &Env, name: &str, scopes: &[&str]) -> (String, String) {
    let mut args = vec!["client", "create", "--name", name, "--json"];
    for s in scopes {
        args.extend(["--scope", s]);
    }
    let doc = env.run("tokenctl", &args).code(0).json();
    (
        doc["client_id"].as_str().unwrap().to_owned(),
        doc["client_secret"].as_str().unwrap().to_owned(),
    )
}

fn server() -> Server {
    let env = Env::new();
    let ca = cert(&env);
    let addr = local_addr();
    let kg = keygate(&env, addr, &[]);
    let (client_id, secret) = register(&env, "svc", &["deploy", "read"]);
    Server {
        issuer: format!("https://localhost:{}", addr.port()),
        env,
        _kg: kg,
        ca,
        client_id,
        secret,
    }
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// `node fixtures/oauth/client.mjs ARGS` as this client; its JSON and whether it succeeded.
    fn node(&self, args: &[&str]) -> (bool, Value) {
        self.node_as(&self.client_id, &self.secret, args)
    }

    fn node_as(&self, id: &str, secret: &str, args: &[&str]) -> (bool, Value) {
        let out = Command::new("node")
            .arg(fixtures().join("oauth/client.mjs"))
            .args(args)
            .env("ISSUER", &self.issuer)
            .env("CLIENT_ID", id)
            .env("CLIENT_SECRET", secret)
            .env("NODE_EXTRA_CA_CERTS", &self.ca)
            .output()
            .unwrap();
        parse(out)
    }

    fn python(&self, args: &[&str]) -> (bool, Value) {
        self.python_with(&[], args)
    }

    /// `python3 fixtures/oauth/client.py ARGS` as this client, `vars` overriding.
    fn python_with(&self, vars: &[(&str, &str)], args: &[&str]) -> (bool, Value) {
        let mut cmd = Command::new("python3");
        cmd.arg(fixtures().join("oauth/client.py"))
            .args(args)
            .env("ISSUER", &self.issuer)
            .env("CLIENT_ID", &self.client_id)
            .env("CLIENT_SECRET", &self.secret)
            .env("CA", &self.ca);
        for (k, v) in vars {
            cmd.env(k, v);
        }
        parse(cmd.output().unwrap())
    }

    /// The audit lines of `event` the server wrote so far, each checked against
    /// `docs/schema/audit-line.json`.
    fn audited(&self, event: &str) -> Vec<Value> {
        self._kg
            .output()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["kind"] == "audit" && v["event"] == event)
            .inspect(|v| crate::json::validate("audit-line", v))
            .collect()
    }

    /// `/auth` with `token`: its status.
    fn auth(&self, token: &str) -> u16 {
        curl(&[
            "--cacert",
            self.ca.to_str().unwrap(),
            "-H",
            &bearer(token),
            &self.url("/auth"),
        ])
        .status
    }

    /// A POST of `form` to `path`, with `extra` curl arguments.
    fn post(&self, path: &str, form: &str, extra: &[&str]) -> Resp {
        let mut args = vec!["--cacert", self.ca.to_str().unwrap(), "--data-raw", form];
        args.extend(extra);
        let url = self.url(path);
        args.push(&url);
        curl(&args)
    }

    fn basic(&self) -> String {
        format!("{}:{}", self.client_id, self.secret)
    }
}

fn parse(out: std::process::Output) -> (bool, Value) {
    let text = String::from_utf8_lossy(&out.stdout);
    let v = serde_json::from_str(text.trim()).unwrap_or_else(|_| {
        panic!(
            "not JSON: {text}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), v)
}

fn token_of(v: &Value) -> String {
    v["access_token"]
        .as_str()
        .expect("an access token")
        .to_owned()
}

fn kid(token: &str) -> String {
    use base64::Engine as _;
    let head = token.split('.').next().unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(head)
        .unwrap();
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    v["kid"].as_str().unwrap().to_owned()
}

#[test]
fn real_clients_get_tokens_that_keygate_jose_and_pyjwt_accept_before_and_after_a_key_rotation() {
    if !peers() {
        return;
    }
    let s = server();
    // openid-client: discovery, then client credentials with Basic and with post.
    let (ok, basic) = s.node(&["cc-basic"]);
    assert!(ok, "{basic}");
    assert_eq!(basic["scope"], "deploy read", "all the client's scopes");
    assert_eq!(basic["expires_in"], 600);
    // RFC 6749 §4.4.3: no refresh token for client credentials.
    assert_eq!(basic["refresh_token"], Value::Null);
    let (ok, post) = s.node(&["cc-post", "deploy"]);
    assert!(ok, "{post}");
    assert_eq!(post["scope"], "deploy");
    // The same through OAuth 2.0 metadata (RFC 8414) instead of OpenID discovery.
    let (ok, _) = s.node(&["cc-basic"]);
    assert!(ok);
    // authlib, both ways.
    let (ok, py_basic) = s.python(&["cc-basic"]);
    assert!(ok, "{py_basic}");
    let (ok, py_post) = s.python(&["cc-post", "read"]);
    assert!(ok, "{py_post}");
    assert_eq!(py_post["scope"], "read");
    let before: Vec<String> = [&basic, &post, &py_basic, &py_post]
        .iter()
        .map(|v| token_of(v))
        .collect();
    for t in &before {
        assert_eq!(s.auth(t), 200, "keygate's /auth accepts its own JWT");
        let (ok, v) = s.node(&["verify", t]);
        assert!(ok, "jose: {v}");
        assert_eq!(v["header"]["typ"], "at+jwt");
        assert_eq!(v["payload"]["client_id"], s.client_id.as_str());
        let (ok, v) = s.python(&["verify", t]);
        assert!(ok, "pyjwt: {v}");
    }
    // Rotation: the next key, already published, starts signing; the old one stays.
    let old_kid = kid(&before[0]);
    s.env.run("tokenctl", &["keys", "rotate"]).code(0);
    let mut after = String::new();
    assert!(
        eventually(Duration::from_secs(5), || {
            let (ok, v) = s.node(&["cc-basic"]);
            after = if ok { token_of(&v) } else { String::new() };
            ok && kid(&after) != old_kid
        }),
        "the server signs with the rotated key within a second or so"
    );
    for t in before.iter().chain([&after]) {
        assert_eq!(s.auth(t), 200);
        let (ok, v) = s.node(&["verify", t]);
        assert!(ok, "jose after rotation: {v}");
        let (ok, v) = s.python(&["verify", t]);
        assert!(ok, "pyjwt after rotation: {v}");
    }
    let listed = s
        .env
        .run("tokenctl", &["keys", "list", "--json"])
        .code(0)
        .json();
    // Access tokens are EdDSA; RS256 keys sign ID tokens, on their own schedule.
    let states: Vec<&str> = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["alg"] == "EdDSA")
        .map(|k| k["state"].as_str().unwrap())
        .collect();
    assert_eq!(states.iter().filter(|s| **s == "current").count(), 1);
    assert_eq!(states.iter().filter(|s| **s == "next").count(), 1);
    assert!(states.contains(&"previous"), "{states:?}");
    // The private key set is 0600, the public one 0644, in one generation.
    let current = s.env.root().join("private/signing/current");
    assert_eq!(test_support::stat_mode(&current.join("keys.json")), "600");
    assert_eq!(test_support::stat_mode(&current.join("jwks.json")), "644");
    // The JWKS is cacheable for a bounded time, tied to the rotation period.
    let jwks = curl(&["--cacert", s.ca.to_str().unwrap(), &s.url("/oauth/jwks")]);
    assert_eq!(jwks.header("cache-control"), Some("public, max-age=3600"));
    assert!(
        !jwks.body.contains("\"d\""),
        "no private part: {}",
        jwks.body
    );

    // Introspection (RFC 7662) and revocation (RFC 7009) through openid-client.
    let (ok, v) = s.node(&["introspect", &after]);
    assert!(ok && v["active"] == true, "{v}");
    assert_eq!(v["scope"], "deploy read");
    let (ok, _) = s.node(&["revoke", &after]);
    assert!(ok);
    let (_, v) = s.node(&["introspect", &after]);
    assert_eq!(
        v,
        serde_json::json!({"active": false}),
        "inactive says nothing more"
    );
    assert_eq!(s.auth(&after), 401, "a revoked token is refused at once");
    assert_eq!(s.auth(&before[0]), 200, "other tokens are untouched");

    // Revoking the client ends every token it was given, in the running server.
    s.env.run("tokenctl", &["client", "revoke", "svc"]).code(0);
    assert!(
        eventually(Duration::from_secs(2), || s.auth(&before[0]) == 401),
        "a revoked client's tokens are refused"
    );
    let (ok, v) = s.node(&["cc-basic"]);
    assert!(!ok, "a revoked client gets no token: {v}");
}

#[test]
fn the_token_endpoint_answers_the_rfcs_errors_and_changes_nothing() {
    if !peers() {
        return;
    }
    let s = server();
    let clients_before = s
        .env
        .run("tokenctl", &["client", "list", "--json"])
        .code(0)
        .stdout
        .clone();
    let cc = "grant_type=client_credentials";
    let wrong = format!("{}:kgcs_AAAAAAAAAAAA_{}", s.client_id, "A".repeat(38));
    // A wrong secret with Basic: 401 invalid_client with a Basic challenge (RFC 6749 §5.2).
    let r = s.post("/oauth/token", cc, &["-u", &wrong]);
    assert_eq!(r.status, 401);
    assert!(r.body.contains("\"invalid_client\""), "{}", r.body);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Basic realm=\"keygate\"")
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
    // The same in the form: 401 without a Basic challenge.
    let form = format!("{cc}&client_id={}&client_secret=kgcs_nope", s.client_id);
    let r = s.post("/oauth/token", &form, &[]);
    assert_eq!((r.status, r.header("www-authenticate")), (401, None));
    // Each refusal has its audit line, naming the client claimed, never a secret pasted
    // where the id goes.
    let pasted = format!("{cc}&client_id={}", &wrong[s.client_id.len() + 1..]);
    assert_eq!(s.post("/oauth/token", &pasted, &[]).status, 401);
    assert!(
        eventually(Duration::from_secs(2), || s.audited("client_refused").len()
            >= 3),
        "{}",
        s._kg.output()
    );
    let refused = s.audited("client_refused");
    assert!(
        refused
            .iter()
            .filter(|l| l["client_id"] == s.client_id.as_str()
                && l["endpoint"] == "/oauth/token"
                && l["client"] == "127.0.0.1")
            .count()
            >= 2,
        "{refused:?}"
    );
    assert!(refused.iter().any(|l| l["client_id"] == "(not shown)"));
    assert!(
        !s._kg.output().contains("kgcs_AAAA"),
        "a secret in the audit log"
    );
    // Unknown client; another client's secret.
    let (_, other_secret) = register(&s.env, "other", &["read"]);
    let r = s.post(
        "/oauth/token",
        cc,
        &["-u", &format!("{}:{other_secret}", s.client_id)],
    );
    assert_eq!(r.status, 401, "another client's secret: {}", r.body);
    let r = s.post(
        "/oauth/token",
        cc,
        &["-u", &format!("kgc_000000000000:{}", s.secret)],
    );
    assert_eq!(r.status, 401);
    // RFC 6749 §2.3.1: Basic carries form-encoded values, so an id with an escaped character
    // must be decoded before it is looked up (oidc-provider's most common client bug).
    let escaped = format!(
        "{}%{:02X}{}:{}",
        &s.client_id[..4],
        s.client_id.as_bytes()[4],
        &s.client_id[5..],
        s.secret
    );
    let r = s.post("/oauth/token", cc, &["-u", &escaped]);
    assert_eq!(r.status, 200, "form-decoded Basic credentials: {}", r.body);
    // Two ways of authenticating at once, a repeated parameter, a missing grant type.
    let both = format!("{cc}&client_secret={}", s.secret);
    let r = s.post("/oauth/token", &both, &["-u", &s.basic()]);
    assert!(
        r.status == 400 && r.body.contains("invalid_request"),
        "{}",
        r.body
    );
    let r = s.post(
        "/oauth/token",
        &format!("{cc}&scope=read&scope=deploy"),
        &["-u", &s.basic()],
    );
    assert!(
        r.status == 400 && r.body.contains("invalid_request"),
        "{}",
        r.body
    );
    let r = s.post("/oauth/token", "scope=read", &["-u", &s.basic()]);
    assert!(r.status == 400 && r.body.contains("invalid_request"));
    // Grants and scopes the client was not given.
    for (form, error) in [
        (
            "grant_type=password&username=a&password=b",
            "unsupported_grant_type",
        ),
        (
            "grant_type=authorization_code&code=x",
            "unauthorized_client",
        ),
        (
            "grant_type=refresh_token&refresh_token=x",
            "unauthorized_client",
        ),
        ("grant_type=client_credentials&scope=admin", "invalid_scope"),
        (
            "grant_type=client_credentials&scope=read%20admin",
            "invalid_scope",
        ),
        (
            "grant_type=client_credentials&resource=not-a-uri",
            "invalid_target",
        ),
        (
            "grant_type=client_credentials&resource=https://api.example/%23frag",
            "invalid_target",
        ),
    ] {
        let r = s.post("/oauth/token", form, &["-u", &s.basic()]);
        assert_eq!(r.status, 400, "{form}: {}", r.body);
        assert!(
            r.body.contains(&format!("\"{error}\"")),
            "{form}: {}",
            r.body
        );
    }
    // Only forms, only POST.
    let r = s.post(
        "/oauth/token",
        "{\"grant_type\":\"client_credentials\"}",
        &["-u", &s.basic(), "-H", "Content-Type: application/json"],
    );
    assert!(
        r.status == 400 && r.body.contains("invalid_request"),
        "{}",
        r.body
    );
    let r = curl(&["--cacert", s.ca.to_str().unwrap(), &s.url("/oauth/token")]);
    assert_eq!(r.status, 405);
    // Introspection and revocation need an authenticated client.
    let good = s.post("/oauth/token", cc, &["-u", &s.basic()]);
    let token = serde_json::from_str::<Value>(&good.body).unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    for path in ["/oauth/introspect", "/oauth/revoke"] {
        let r = s.post(path, &format!("token={token}"), &[]);
        assert_eq!(r.status, 401, "{path} without a client: {}", r.body);
        let r = s.post(path, &format!("token={token}"), &["-u", &wrong]);
        assert_eq!(r.status, 401, "{path} with a wrong secret");
    }
    // Another client cannot revoke this client's token: 200 (RFC 7009 tells nothing), and
    // the token stays good.
    let r = s.post(
        "/oauth/revoke",
        &format!("token={token}"),
        &["-u", &format!("{}:{other_secret}", other_id(&s.env))],
    );
    assert_eq!(r.status, 200);
    assert_eq!(s.auth(&token), 200, "revoked by a stranger: it must not be");
    // Nothing above changed a client or a secret (the second client aside).
    let after = s
        .env
        .run("tokenctl", &["client", "list", "--json"])
        .code(0)
        .json();
    let before: Value = serde_json::from_str(&clients_before).unwrap();
    let svc = |doc: &Value| {
        doc["clients"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "svc")
            .cloned()
            .unwrap()
    };
    assert_eq!(svc(&after), svc(&before));
}

fn other_id(env: &Env) -> String {
    env.run("tokenctl", &["client", "show", "other", "--json"])
        .code(0)
        .json()["client_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A JWT with its header or payload replaced (signature kept).
fn forge(token: &str, header: Option<&str>, payload: Option<&str>) -> String {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    if let Some(h) = header {
        parts[0] = b64(h);
    }
    if let Some(p) = payload {
        parts[1] = b64(p);
    }
    parts.join(".")
}

#[test]
fn tampered_and_misdirected_jwts_are_refused_at_auth_and_by_jose() {
    if !peers() {
        return;
    }
    let s = server();
    let (ok, v) = s.node(&["cc-basic"]);
    assert!(ok, "{v}");
    let token = token_of(&v);
    assert_eq!(s.auth(&token), 200);
    let kid = kid(&token);
    use base64::Engine as _;
    let payload: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    let mut admin = payload.clone();
    admin["scope"] = "deploy read admin".into();
    let mut later = payload.clone();
    later["exp"] = (payload["exp"].as_i64().unwrap() + 86_400).into();
    let none = forge(
        &token,
        Some(&format!(r#"{{"alg":"none","typ":"at+jwt","kid":"{kid}"}}"#)),
        None,
    );
    let none = format!("{}.", none.rsplit_once('.').unwrap().0);
    let attacks = [
        (
            "a widened scope",
            forge(&token, None, Some(&admin.to_string())),
        ),
        (
            "a later expiry",
            forge(&token, None, Some(&later.to_string())),
        ),
        ("alg none", none),
        (
            "HS256 with the public key as secret",
            forge(
                &token,
                Some(&format!(
                    r#"{{"alg":"HS256","typ":"at+jwt","kid":"{kid}"}}"#
                )),
                None,
            ),
        ),
        (
            "its own key by jku",
            forge(
                &token,
                Some(&format!(
                    r#"{{"alg":"EdDSA","typ":"at+jwt","kid":"{kid}","jku":"https://evil.example/jwks"}}"#
                )),
                None,
            ),
        ),
        (
            "an ID-token type",
            forge(
                &token,
                Some(&format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":"{kid}"}}"#)),
                None,
            ),
        ),
    ];
    for (what, forged) in &attacks {
        assert_eq!(s.auth(forged), 401, "{what}");
        let (ok, v) = s.node(&["verify", forged]);
        assert!(!ok, "jose accepted {what}: {v}");
    }
    // A token for another resource (RFC 8707) verifies for that audience, not at keygate.
    let (ok, v) = s.node(&["cc-basic", "read", "https://api.example"]);
    assert!(ok, "{v}");
    let elsewhere = token_of(&v);
    assert_eq!(
        s.auth(&elsewhere),
        401,
        "audience-restricted to another resource"
    );
    let (ok, _) = s.node(&["verify", &elsewhere, "https://api.example"]);
    assert!(ok, "the resource it names accepts it");
    // A token from another keygate (another issuer and key set) is refused.
    let other = server();
    let (ok, v) = other.node(&["cc-basic"]);
    assert!(ok);
    assert_eq!(s.auth(&token_of(&v)), 401, "another issuer's token");
    // The audit log names each refusal; the original still works.
    assert_eq!(s.auth(&token), 200);
}

#[test]
fn in_proxy_mode_the_issuer_lives_under_keygate_and_a_jwt_reaches_the_upstream_but_never_signs_in()
{
    if !peers() {
        return;
    }
    let env = Env::new();
    let ca = cert(&env);
    let upstream = Upstream::tcp();
    let addr = local_addr();
    let _kg = keygate_proxy(&env, addr, &upstream_url(&upstream), true, &[]);
    let (client_id, secret) = register(&env, "svc", &["deploy"]);
    let origin = format!("https://localhost:{}", addr.port());
    let issuer = format!("{origin}/.keygate");
    let cacert = ca.to_str().unwrap();
    // OpenID discovery appends to the issuer; RFC 8414 inserts before its path.
    for path in [
        "/.keygate/.well-known/openid-configuration".to_owned(),
        "/.well-known/oauth-authorization-server/.keygate".to_owned(),
    ] {
        let r = curl(&["--cacert", cacert, &format!("{origin}{path}")]);
        assert_eq!(r.status, 200, "{path}");
        let meta: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(meta["issuer"], issuer.as_str(), "{path}");
    }
    assert!(
        upstream.seen().is_empty(),
        "metadata never reaches the upstream"
    );
    let out = Command::new("node")
        .arg(fixtures().join("oauth/client.mjs"))
        .arg("cc-basic")
        .env("ISSUER", &issuer)
        .env("CLIENT_ID", &client_id)
        .env("CLIENT_SECRET", &secret)
        .env("NODE_EXTRA_CA_CERTS", &ca)
        .env("DISCOVERY", "oauth2")
        .output()
        .unwrap();
    let (ok, v) = parse(out);
    assert!(
        ok,
        "openid-client with RFC 8414 discovery under a path: {v}"
    );
    let token = token_of(&v);
    let r = curl(&[
        "--cacert",
        cacert,
        "-H",
        &bearer(&token),
        "-H",
        "X-Auth-Request-Assertion: forged",
        &format!("{origin}/app"),
    ]);
    assert_eq!(r.status, 200, "{}", r.body);
    let seen = upstream.last();
    assert_eq!(seen["uri"], "/app");
    // The upstream gets a signed identity assertion for itself, never the client's own.
    let assertion = seen["headers"]["x-auth-request-assertion"]
        .as_str()
        .expect("an identity assertion")
        .to_owned();
    assert_ne!(assertion, "forged");
    let verify = |jwt: &str, aud: &str| {
        parse(
            Command::new("node")
                .arg(fixtures().join("oauth/client.mjs"))
                .args(["verify-identity", jwt, aud])
                .env("ISSUER", &issuer)
                .env("NODE_EXTRA_CA_CERTS", &ca)
                .output()
                .unwrap(),
        )
    };
    let (ok, v) = verify(&assertion, &upstream_url(&upstream));
    assert!(ok, "jose verifies the assertion for this upstream: {v}");
    assert_eq!(v["payload"]["sub"], client_id.as_str());
    assert_eq!(v["payload"]["scope"], "deploy");
    let (ok, _) = verify(&assertion, "http://another.internal:80");
    assert!(!ok, "an assertion for one upstream is not good for another");
    let (ok, _) = verify(&token, &upstream_url(&upstream));
    assert!(!ok, "an access token is not an identity assertion (typ)");
    // A JWT is not a login: the sign-in form refuses it, and takes an API token.
    let jar = env.root().join("jar");
    let jar = jar.to_str().unwrap();
    let sign_in = format!("{origin}/.keygate/sign-in");
    let page = curl(&["--cacert", cacert, "-c", jar, "-b", jar, &sign_in]);
    assert_eq!(page.status, 200);
    let csrf = test_support::proxy::input_value(&page.body, "csrf").expect("a csrf field");
    let post = |credential: &str| {
        curl(&[
            "--cacert",
            cacert,
            "-c",
            jar,
            "-b",
            jar,
            "-H",
            &format!("Origin: {origin}"),
            "-H",
            "Sec-Fetch-Site: same-origin",
            "--data-urlencode",
            &format!("token={credential}"),
            "--data-urlencode",
            &format!("csrf={csrf}"),
            &sign_in,
        ])
    };
    let session = |r: &Resp| {
        r.headers.iter().any(|(k, v)| {
            k == "set-cookie" && v.contains("keygate_session=") && !v.contains("keygate_session=;")
        })
    };
    let refused = post(&token);
    assert_eq!(
        refused.status, 401,
        "a JWT on the sign-in form: {refused:?}"
    );
    assert!(!session(&refused), "{refused:?}");
    let api_token = test_support::server::token(&env, "alice", &[]);
    let accepted = post(&api_token);
    assert_eq!(accepted.status, 303, "an API token signs in: {accepted:?}");
    assert!(session(&accepted));
}

fn upstream_url(u: &Upstream) -> String {
    format!("http://{}", u.addr())
}

/// The value of `name` in the query of `url`, percent-decoded.
fn query_param(url: &str, name: &str) -> Option<String> {
    let q = url.split_once('?')?.1;
    q.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| test_support::proxy::percent_decode(&v.replace('+', " ")))
    })
}

/// A browser as curl: a cookie jar signed in as the holder of `token`.
struct Person {
    jar: String,
}

impl Person {
    fn sign_in(s: &Server, token: &str) -> Person {
        let jar = s.env.root().join(format!("jar-{}", &token[3..9]));
        let jar = jar.to_str().unwrap().to_owned();
        let page = curl(&[
            "--cacert",
            s.ca.to_str().unwrap(),
            "-c",
            &jar,
            "-b",
            &jar,
            &s.url("/.keygate/sign-in"),
        ]);
        let csrf = test_support::proxy::input_value(&page.body, "csrf").expect("a csrf field");
        let r = curl(&[
            "--cacert",
            s.ca.to_str().unwrap(),
            "-c",
            &jar,
            "-b",
            &jar,
            "-H",
            &format!("Origin: {}", s.issuer),
            "-H",
            "Sec-Fetch-Site: same-origin",
            "--data-urlencode",
            &format!("token={token}"),
            "--data-urlencode",
            &format!("csrf={csrf}"),
            &s.url("/.keygate/sign-in"),
        ]);
        assert_eq!(r.status, 303, "sign-in: {r:?}");
        Person { jar }
    }

    /// GET /oauth/authorize with `query`.
    fn authorize(&self, s: &Server, query: &str) -> Resp {
        curl(&[
            "--cacert",
            s.ca.to_str().unwrap(),
            "-b",
            &self.jar,
            &s.url(&format!("/oauth/authorize?{query}")),
        ])
    }
}

/// The parameters keygate's consent form carries back to `/authorize`.
const CONSENT_FIELDS: [&str; 10] = [
    "csrf",
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "nonce",
    "resource",
];

impl Person {
    /// GET /oauth/authorize with `query`, then the consent form's answer `decision` as the
    /// browser sends it (same origin), with `tamper` applied to the form's fields.
    fn consent(
        &self,
        s: &Server,
        query: &str,
        decision: &str,
        tamper: impl Fn(&mut Vec<(String, String)>),
        headers: &[&str],
    ) -> Resp {
        let page = self.authorize(s, query);
        assert!(
            page.status == 200 && page.body.contains("id=\"consent-form\""),
            "a consent page: {page:?}"
        );
        assert_eq!(
            page.header("location"),
            None,
            "no code before the person allows"
        );
        let mut fields: Vec<(String, String)> = CONSENT_FIELDS
            .iter()
            .filter_map(|k| {
                test_support::proxy::input_value(&page.body, k).map(|v| ((*k).to_owned(), v))
            })
            .collect();
        fields.push(("decision".into(), decision.into()));
        tamper(&mut fields);
        let mut args: Vec<String> = vec![
            "--cacert".into(),
            s.ca.to_str().unwrap().into(),
            "-b".into(),
            self.jar.clone(),
        ];
        for h in headers {
            args.extend(["-H".into(), (*h).into()]);
        }
        for (k, v) in &fields {
            args.extend(["--data-urlencode".into(), format!("{k}={v}")]);
        }
        args.push(s.url("/oauth/authorize"));
        curl(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// Authorizes `query` as a browser would: through the consent page, a person clicking
    /// Allow (same origin, a navigation, user-activated).
    fn allow(&self, s: &Server, query: &str) -> Resp {
        let same = format!("Origin: {}", s.issuer);
        let headers = [same.as_str(), CLICKED[0], CLICKED[1], CLICKED[2]];
        self.consent(s, query, "allow", |_| {}, &headers)
    }
}

/// The Fetch Metadata of a person's click on a same-origin form.
const CLICKED: [&str; 3] = [
    "Sec-Fetch-Site: same-origin",
    "Sec-Fetch-Mode: navigate",
    "Sec-Fetch-User: ?1",
];

/// Where an authorization response sends the browser: its `Location` (a 303, never a page
/// with the code in it).
fn landing(r: &Resp) -> Option<String> {
    assert!(
        !r.body.contains("code="),
        "a code in a page body: {}",
        r.body
    );
    r.header("location").map(str::to_owned)
}

/// RFC 7636 S256 of `verifier`, by openssl.
fn s256(verifier: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg("printf %s \"$1\" | openssl dgst -sha256 -binary | openssl base64 -A | tr '+/' '-_' | tr -d '='")
        .arg("sh")
        .arg(verifier)
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A public client `cli` for people (code and device grants, loopback redirect): its id.
pub(crate) fn public_client(env: &Env) -> String {
    env.run(
        "tokenctl",
        &[
            "client",
            "create",
            "--name",
            "cli",
            "--public",
            "--grant",
            "authorization_code",
            "--grant",
            "device_code",
            "--redirect-uri",
            "http://127.0.0.1/callback",
        ],
    )
    .code(0)
    .stdout
    .trim()
    .to_owned()
}

const VERIFIER: &str = "kg-test-verifier-0123456789-abcdefghijklmnopqrstuvwxyz";

#[test]
fn people_flows_refuse_pkce_downgrades_foreign_redirects_replayed_codes_and_reused_refresh_tokens()
{
    if !peers() || !have("openssl") {
        return;
    }
    let s = server();
    let alice = token(&s.env, "alice", &[]);
    let cli = public_client(&s.env);
    let person = Person::sign_in(&s, &alice);
    let challenge = s256(VERIFIER);
    let good = |redirect: &str| {
        format!(
            "response_type=code&client_id={cli}&redirect_uri={}&scope=openid&state=st4te\
             &code_challenge={challenge}&code_challenge_method=S256",
            encode(redirect)
        )
    };
    // Redirect URIs: a loopback literal on any port (RFC 8252 §7.3); nothing else loosened.
    // A refused one gets a page, never a redirect.
    for evil in [
        "https://evil.example/callback",
        "http://127.0.0.1.evil.example/callback",
        "http://localhost:8000/callback",
        "http://127.0.0.1:8000/callback/../evil",
        "http://127.0.0.1@evil.example/callback",
    ] {
        let r = person.authorize(&s, &good(evil));
        assert_eq!(r.status, 400, "{evil}");
        assert_eq!(r.header("location"), None, "{evil}: no redirect");
    }
    // A public client's request waits for the person's answer: no code before it.
    let r = person.authorize(&s, &good("http://127.0.0.1:54321/callback"));
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.contains("id=\"consent-form\""), "{}", r.body);
    assert!(!r.body.contains("kgac_"), "a code on the consent page");
    assert_eq!(r.header("location"), None);
    let page = person.authorize(&s, &good("http://127.0.0.1:54321/callback"));
    assert!(
        page.header("content-security-policy")
            .is_some_and(|c| c.contains("form-action 'self' http://127.0.0.1:54321;")),
        "the consent form may lead to the redirect's origin, no other: {page:?}"
    );
    let r = person.allow(&s, &good("http://127.0.0.1:54321/callback"));
    assert_eq!(r.status, 303, "{r:?}");
    let location = landing(&r).unwrap();
    assert!(
        location.starts_with("http://127.0.0.1:54321/callback?code=kgac_"),
        "{location}"
    );
    assert_eq!(query_param(&location, "state").as_deref(), Some("st4te"));
    assert_eq!(
        query_param(&location, "iss").as_deref(),
        Some(s.issuer.as_str()),
        "RFC 9207"
    );
    // PKCE is required and S256 only (RFC 9700 §2.1.1).
    let plain = format!(
        "response_type=code&client_id={cli}&redirect_uri={}&code_challenge={VERIFIER}\
         &code_challenge_method=plain&state=x",
        encode("http://127.0.0.1/callback")
    );
    let none = format!(
        "response_type=code&client_id={cli}&redirect_uri={}&state=x",
        encode("http://127.0.0.1/callback")
    );
    for (what, q) in [("plain", &plain), ("no challenge", &none)] {
        let r = person.authorize(&s, q);
        let loc = r.header("location").unwrap_or_default();
        assert_eq!(
            query_param(loc, "error").as_deref(),
            Some("invalid_request"),
            "{what}: {loc}"
        );
        assert_eq!(query_param(loc, "code"), None, "{what}");
    }
    // The consent form cannot be answered from another site, with another session's CSRF
    // value, or by saying anything but allow.
    let q = good("http://127.0.0.1:54321/callback");
    let same = format!("Origin: {}", s.issuer);
    let r = person.consent(&s, &q, "allow", |_| {}, &["Origin: https://evil.example"]);
    assert_eq!(r.status, 403, "cross-site: {r:?}");
    assert!(landing(&r).is_none_or(|l| !l.contains("code=")), "{r:?}");
    let forged = |f: &mut Vec<(String, String)>| {
        for (k, v) in f.iter_mut() {
            if k == "csrf" {
                *v = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into();
            }
        }
    };
    let r = person.consent(&s, &q, "allow", forged, &[&same]);
    assert_eq!(r.status, 403, "forged csrf: {r:?}");
    assert!(!r.body.contains("code="), "{}", r.body);
    // A script of this origin (the application's, in proxy mode) that read the page and
    // its CSRF value cannot answer for the person: a fetch, or a form it submits, is not
    // a click.
    for meta in [
        [
            "Sec-Fetch-Site: same-origin",
            "Sec-Fetch-Mode: cors",
            "Sec-Fetch-Dest: empty",
        ],
        [
            "Sec-Fetch-Site: same-origin",
            "Sec-Fetch-Mode: navigate",
            "Sec-Fetch-Dest: document",
        ],
    ] {
        let headers = [same.as_str(), meta[0], meta[1], meta[2]];
        let r = person.consent(&s, &q, "allow", |_| {}, &headers);
        assert_eq!(r.status, 403, "{meta:?}: {r:?}");
        assert_eq!(r.header("location"), None, "{meta:?}");
    }
    let r = person.consent(&s, &q, "deny", |_| {}, &[&same]);
    let l = landing(&r).unwrap();
    assert_eq!(
        query_param(&l, "error").as_deref(),
        Some("access_denied"),
        "{l}"
    );
    assert_eq!(query_param(&l, "code"), None);
    // prompt=none cannot skip the question.
    let r = person.authorize(&s, &format!("{q}&prompt=none"));
    let l = r.header("location").unwrap_or_default();
    assert_eq!(
        query_param(l, "error").as_deref(),
        Some("consent_required"),
        "{l}"
    );

    let code_for = |port: u16| {
        let r = person.allow(&s, &good(&format!("http://127.0.0.1:{port}/callback")));
        query_param(&landing(&r).unwrap(), "code").unwrap()
    };
    let redeem = |code: &str, redirect: &str, verifier: Option<&str>| {
        let mut form = format!(
            "grant_type=authorization_code&client_id={cli}&code={code}&redirect_uri={}",
            encode(redirect)
        );
        if let Some(v) = verifier {
            form.push_str(&format!("&code_verifier={v}"));
        }
        s.post("/oauth/token", &form, &[])
    };
    let cb = "http://127.0.0.1:40000/callback";
    let wrong = redeem(&code_for(40000), cb, Some(&VERIFIER.replace('k', "K")));
    assert!(
        wrong.status == 400 && wrong.body.contains("invalid_grant"),
        "wrong verifier: {}",
        wrong.body
    );
    let missing = redeem(&code_for(40000), cb, None);
    assert!(
        missing.body.contains("invalid_grant"),
        "no verifier: {}",
        missing.body
    );
    let elsewhere = redeem(
        &code_for(40000),
        "http://127.0.0.1:40001/callback",
        Some(VERIFIER),
    );
    assert!(
        elsewhere.body.contains("invalid_grant"),
        "another redirect: {}",
        elsewhere.body
    );
    // A replayed code revokes what it granted (RFC 6749 §4.1.2).
    let code = code_for(40000);
    let first = redeem(&code, cb, Some(VERIFIER));
    assert_eq!(first.status, 200, "{}", first.body);
    let tokens: Value = serde_json::from_str(&first.body).unwrap();
    let at = tokens["access_token"].as_str().unwrap().to_owned();
    let rt = tokens["refresh_token"].as_str().unwrap().to_owned();
    assert!(tokens["id_token"].is_string());
    assert_eq!(s.auth(&at), 200);
    let again = redeem(&code, cb, Some(VERIFIER));
    assert!(again.body.contains("invalid_grant"), "{}", again.body);
    assert!(
        eventually(Duration::from_secs(2), || s.auth(&at) == 401),
        "the replayed code's access token still works"
    );
    let refresh = |rt: &str| {
        s.post(
            "/oauth/token",
            &format!("grant_type=refresh_token&client_id={cli}&refresh_token={rt}"),
            &[],
        )
    };
    assert!(
        refresh(&rt).body.contains("invalid_grant"),
        "its refresh token too"
    );

    // Refresh: rotated on every use; the same request again at once gets the same successor;
    // a spent token outside that (after its successor was used) revokes the whole family.
    let fresh: Value =
        serde_json::from_str(&redeem(&code_for(40000), cb, Some(VERIFIER)).body).unwrap();
    let rt_a = fresh["refresh_token"].as_str().unwrap().to_owned();
    let b1: Value = serde_json::from_str(&refresh(&rt_a).body).unwrap();
    let b2: Value = serde_json::from_str(&refresh(&rt_a).body).unwrap();
    let rt_b = b1["refresh_token"].as_str().expect("rotated").to_owned();
    assert_ne!(rt_a, rt_b);
    assert_eq!(
        b2["refresh_token"].as_str(),
        Some(rt_b.as_str()),
        "a retry gets the same successor"
    );
    let c: Value = serde_json::from_str(&refresh(&rt_b).body).unwrap();
    let rt_c = c["refresh_token"].as_str().unwrap().to_owned();
    let at_c = c["access_token"].as_str().unwrap().to_owned();
    assert_eq!(s.auth(&at_c), 200);
    let reused = refresh(&rt_a);
    assert!(
        reused.body.contains("invalid_grant"),
        "reuse: {}",
        reused.body
    );
    assert!(
        refresh(&rt_c).body.contains("invalid_grant"),
        "the family is revoked"
    );
    assert!(
        eventually(Duration::from_secs(2), || s.auth(&at_c) == 401),
        "and its access tokens with it"
    );
    let reuse = s.audited("refresh_token_reused");
    assert!(
        reuse.iter().any(|l| l["client_id"] == cli.as_str()
            && l["sub"] == "alice"
            && l["grant"].as_str().is_some_and(|g| !g.is_empty())),
        "the reuse has its audit line: {}",
        s._kg.output()
    );
    assert!(
        !s._kg.output().contains(&rt_a[5..]),
        "no refresh token in the logs"
    );

    // Another client cannot spend a person's refresh token; a public client has no secret.
    let owned: Value =
        serde_json::from_str(&redeem(&code_for(40000), cb, Some(VERIFIER)).body).unwrap();
    let rt_o = owned["refresh_token"].as_str().unwrap();
    let stolen = s.post(
        "/oauth/token",
        &format!("grant_type=refresh_token&refresh_token={rt_o}"),
        &["-u", &s.basic()],
    );
    assert_eq!(stolen.status, 400, "{}", stolen.body);
    assert_eq!(refresh(rt_o).status, 200, "the owner's token was not spent");
    let with_secret = s.post(
        "/oauth/token",
        &format!("grant_type=refresh_token&client_id={cli}&client_secret=x&refresh_token={rt_o}"),
        &[],
    );
    assert_eq!(
        with_secret.status, 401,
        "a public client presenting a secret"
    );

    // Device grant: polling at once is too fast (RFC 8628 §3.5); an unknown code is refused.
    let d = s.post(
        "/oauth/device_authorization",
        &format!("client_id={cli}&scope=openid"),
        &[],
    );
    assert_eq!(d.status, 200, "{}", d.body);
    let d: Value = serde_json::from_str(&d.body).unwrap();
    assert_eq!(d["interval"], 5);
    let user_code = d["user_code"].as_str().unwrap();
    assert!(
        user_code.len() == 9 && user_code.as_bytes()[4] == b'-',
        "{user_code}"
    );
    let poll = |code: &str| {
        s.post(
            "/oauth/token",
            &format!("grant_type=urn:ietf:params:oauth:grant-type:device_code&client_id={cli}&device_code={code}"),
            &[],
        )
    };
    let p = poll(d["device_code"].as_str().unwrap());
    assert!(p.body.contains("\"slow_down\""), "{}", p.body);
    let p = poll("kgdc_AAAAAAAAAAAA_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    assert!(p.body.contains("invalid_grant"), "{}", p.body);
}

fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn authlib_signs_a_person_in_with_pkce_refreshes_introspects_revokes_and_pyjwt_verifies_id_tokens_across_a_rotation()
 {
    if !peers() {
        return;
    }
    let s = server();
    let alice = token(&s.env, "alice", &[]);
    let cli = public_client(&s.env);
    let person = Person::sign_in(&s, &alice);
    let redirect = "http://127.0.0.1:40002/callback";
    let as_cli = [
        ("CLIENT_ID", cli.as_str()),
        ("CLIENT_SECRET", ""),
        ("REDIRECT_URI", redirect),
    ];
    let (ok, start) = s.python_with(&as_cli, &["code-url"]);
    assert!(ok, "{start}");
    let url = start["url"].as_str().unwrap();
    assert!(url.contains("code_challenge_method=S256"), "{url}");
    let r = person.allow(&s, url.split_once('?').unwrap().1);
    let back = landing(&r).expect("the way back to the application");
    let exchange = [
        ("CLIENT_ID", cli.as_str()),
        ("CLIENT_SECRET", ""),
        ("REDIRECT_URI", redirect),
        ("STATE", start["state"].as_str().unwrap()),
        ("VERIFIER", start["verifier"].as_str().unwrap()),
    ];
    let (ok, first) = s.python_with(&exchange, &["code-exchange", &back]);
    assert!(ok, "authlib's code exchange: {first}");
    let at1 = token_of(&first);
    let id1 = first["id_token"].as_str().expect("an ID token").to_owned();
    let mut rt = first["refresh_token"].as_str().unwrap().to_owned();
    assert!(rt.starts_with("kgrt_"), "{rt}");
    assert_eq!(first["expires_in"], 3600);
    assert!(!first.as_object().unwrap().contains_key("error"), "{first}");
    // pyjwt verifies both from the JWKS: the access token for the issuer, the ID token
    // (RS256) for the client.
    let (ok, v) = s.python(&["verify", &at1]);
    assert!(ok, "{v}");
    assert_eq!(v["payload"]["sub"], "alice");
    assert_eq!(v["payload"]["client_id"], cli.as_str());
    let (ok, v) = s.python_with(&as_cli, &["verify-id", &id1]);
    assert!(ok, "{v}");
    assert_eq!(v["header"]["alg"], "RS256");
    assert_eq!(v["payload"]["sub"], "alice");
    assert_eq!(v["payload"]["aud"], cli.as_str());
    // The ID token is not an access token: pyjwt's access-token check and keygate refuse it.
    let (ok, _) = s.python(&["verify", &id1]);
    assert!(!ok, "an ID token passed as an access token");
    assert_eq!(s.auth(&id1), 401);

    // The confidential client introspects both (RFC 7662).
    let (ok, v) = s.python(&["introspect", &at1]);
    assert!(ok && v["active"] == true && v["sub"] == "alice", "{v}");
    let (ok, v) = s.python(&["introspect", &rt]);
    assert!(
        ok && v["active"] == true && v["token_type"] == "refresh_token",
        "{v}"
    );
    // A public client may not introspect.
    let (ok, _) = s.python_with(&as_cli, &["introspect", &at1]);
    assert!(!ok, "a public client introspected");

    // After a key rotation, refreshes sign with the new keys; what the old ones signed still
    // verifies from the JWKS.
    s.env.run("tokenctl", &["keys", "rotate"]).code(0);
    let mut latest = Value::Null;
    assert!(
        eventually(Duration::from_secs(5), || {
            let (ok, v) = s.python_with(&as_cli, &["refresh", &rt]);
            assert!(ok, "authlib's refresh: {v}");
            let next = v["refresh_token"].as_str().unwrap().to_owned();
            assert_ne!(next, rt, "rotated on every use");
            rt = next;
            latest = v;
            kid(latest["access_token"].as_str().unwrap()) != kid(&at1)
        }),
        "the server signs with the rotated key"
    );
    let at2 = token_of(&latest);
    let id2 = latest["id_token"].as_str().expect("an ID token on refresh");
    assert_ne!(kid(id2), kid(&id1), "the ID token key rotated too");
    for t in [&at1, &at2] {
        let (ok, v) = s.python(&["verify", t]);
        assert!(ok, "pyjwt after rotation: {v}");
        assert_eq!(s.auth(t), 200);
    }
    for t in [id1.as_str(), id2] {
        let (ok, v) = s.python_with(&as_cli, &["verify-id", t]);
        assert!(ok, "pyjwt, ID token after rotation: {v}");
    }

    // The public client revokes its refresh token (RFC 7009): the grant ends, its access
    // tokens with it.
    let (ok, v) = s.python_with(&as_cli, &["revoke", &rt]);
    assert!(ok, "{v}");
    let (_, v) = s.python(&["introspect", &rt]);
    assert_eq!(v, serde_json::json!({"active": false}));
    assert!(
        eventually(Duration::from_secs(2), || s.auth(&at2) == 401),
        "the revoked grant's access token still works"
    );
    let (_, v) = s.python(&["introspect", &at2]);
    assert_eq!(v, serde_json::json!({"active": false}));
    let (ok, _) = s.python_with(&as_cli, &["refresh", &rt]);
    assert!(!ok, "a revoked refresh token refreshed");

    // One audit trail: every access token issued has its line, and so does the revocation.
    let issued = s.audited("token_issued");
    for t in [&at1, &at2] {
        let (_, v) = s.python(&["verify", t]);
        let jti = v["payload"]["jti"].as_str().map(str::to_owned);
        // at2 no longer verifies at keygate, but pyjwt still checks its signature.
        let jti = jti.expect("a jti");
        assert!(
            issued.iter().any(|l| l["jti"] == jti.as_str()
                && l["sub"] == "alice"
                && l["client_id"] == cli.as_str()),
            "no token_issued line for {jti}"
        );
    }
    assert!(
        s.audited("grant_revoked")
            .iter()
            .any(|l| l["client_id"] == cli.as_str() && l["sub"] == "alice"),
        "the revocation's audit line"
    );
    assert!(
        !s._kg.output().contains(&rt[5..]),
        "a refresh token in the logs"
    );
}

/// What a person's sign-in may grant is bounded by the API token they signed in with, and
/// ends with it; a code is spent only by its own client; user codes cannot be scanned.
#[test]
fn a_persons_grant_never_exceeds_or_outlives_their_token_and_codes_resist_other_clients_and_scans()
{
    if !peers() || !have("openssl") {
        return;
    }
    let s = server();
    let alice = token(&s.env, "alice", &[]);
    let bob = token(&s.env, "bob", &["deploy"]);
    let cli = public_client(&s.env);
    let deployer = s
        .env
        .run(
            "tokenctl",
            &[
                "client",
                "create",
                "--name",
                "deployer",
                "--public",
                "--grant",
                "authorization_code",
                "--scope",
                "deploy",
                "--redirect-uri",
                "http://127.0.0.1/callback",
            ],
        )
        .code(0)
        .stdout
        .trim()
        .to_owned();
    let challenge = s256(VERIFIER);
    let cb = "http://127.0.0.1:40003/callback";
    let ask = |client: &str, scope: &str| {
        format!(
            "response_type=code&client_id={client}&redirect_uri={}&scope={}&state=s\
             &code_challenge={challenge}&code_challenge_method=S256",
            encode(cb),
            encode(scope)
        )
    };
    let code_of = |r: &Resp| query_param(&landing(r).unwrap_or_default(), "code");
    let redeem = |client: &str, code: &str| {
        s.post(
            "/oauth/token",
            &format!(
                "grant_type=authorization_code&client_id={client}&code={code}&redirect_uri={}\
                 &code_verifier={VERIFIER}",
                encode(cb)
            ),
            &[],
        )
    };
    let (a, b) = (Person::sign_in(&s, &alice), Person::sign_in(&s, &bob));

    // A client registered for `deploy` gets it only from a person whose token has it.
    let from_alice = code_of(&a.allow(&s, &ask(&deployer, "openid deploy"))).unwrap();
    let r = redeem(&deployer, &from_alice);
    assert_eq!(r.status, 200, "{}", r.body);
    let t: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(t["scope"], "openid", "alice's token has no deploy: {t}");
    let (_, v) = s.python(&["verify", t["access_token"].as_str().unwrap()]);
    assert_eq!(v["payload"]["scope"], "openid");
    let from_bob = code_of(&b.allow(&s, &ask(&deployer, "openid deploy"))).unwrap();
    let t: Value = serde_json::from_str(&redeem(&deployer, &from_bob).body).unwrap();
    assert_eq!(t["scope"], "openid deploy", "{t}");
    let bob_at = t["access_token"].as_str().unwrap().to_owned();
    let bob_rt = t["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(s.auth(&bob_at), 200);

    // Another client cannot spend (or learn anything of) a code that is not its own: the
    // code still works for its client afterwards.
    let code = code_of(&a.allow(&s, &ask(&cli, "openid"))).unwrap();
    let stolen = redeem(&deployer, &code);
    assert!(stolen.body.contains("invalid_grant"), "{}", stolen.body);
    let own = redeem(&cli, &code);
    assert_eq!(
        own.status, 200,
        "the foreign try spent the code: {}",
        own.body
    );

    // Revoking the person's API token ends their access tokens at once and their refresh
    // tokens, with an audit line.
    s.env.run("tokenctl", &["revoke", "--name", "bob"]).code(0);
    assert!(
        eventually(Duration::from_secs(5), || s.auth(&bob_at) == 401),
        "bob's access token outlived his revoked token"
    );
    let r = s.post(
        "/oauth/token",
        &format!("grant_type=refresh_token&client_id={deployer}&refresh_token={bob_rt}"),
        &[],
    );
    assert!(r.body.contains("invalid_grant"), "{}", r.body);
    assert!(
        s.audited("grant_revoked")
            .iter()
            .any(|l| l["sub"] == "bob" && l["client_id"] == deployer.as_str()),
        "the ended grant's audit line"
    );

    // An over-long state is refused, not dropped.
    let long = format!(
        "response_type=code&client_id={cli}&redirect_uri={}&state={}\
         &code_challenge={challenge}&code_challenge_method=S256",
        encode(cb),
        "x".repeat(600)
    );
    let r = a.authorize(&s, &long);
    let loc = r.header("location").unwrap_or_default();
    assert_eq!(
        query_param(loc, "error").as_deref(),
        Some("invalid_request"),
        "{loc}"
    );
    assert_eq!(query_param(loc, "code"), None);

    // Guessing user codes through the page's link is limited like the form.
    let statuses: Vec<u16> = (0..14)
        .map(|n| {
            curl(&[
                "--cacert",
                s.ca.to_str().unwrap(),
                "-b",
                &a.jar,
                &s.url(&format!("/oauth/device?user_code=BCDF-GH{:02}", n)),
            ])
            .status
        })
        .collect();
    assert_eq!(statuses[0], 400, "{statuses:?}");
    assert_eq!(
        statuses.last(),
        Some(&429),
        "scanning user codes is not limited: {statuses:?}"
    );
}
