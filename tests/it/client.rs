//! Issue 16, first part: `tokenctl token` for machine clients (the CI case), against
//! keygate's own authorization server and node-oidc-provider (npm, pinned in
//! `fixtures/oidc-provider`): fetched once, cached 0600, shared by concurrent processes
//! through the profile's lock, printed in the formats tools take; refusals leave nothing.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use test_support::server::*;
use test_support::{Env, fixtures, have, have_npm_fixture, stat_mode};

/// Writes `text` to `path` with mode 0600 (a secret the test hands over).
pub(crate) fn secret_file(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn write_config(env: &Env, text: &str) {
    std::fs::write(env.root().join("config.toml"), text).unwrap();
}

/// How many access tokens keygate issued so far (its `token_issued` audit lines).
fn issued(kg: &test_support::Proc) -> usize {
    kg.output()
        .lines()
        .filter(|l| l.contains("\"kind\":\"audit\"") && l.contains("\"event\":\"token_issued\""))
        .count()
}

/// Twenty `tokenctl token` at once in `env`: each succeeds; the tokens they printed.
fn twenty_tokens(env: &Env) -> std::collections::BTreeSet<String> {
    let children: Vec<_> = (0..20)
        .map(|_| {
            env.cmd("tokenctl")
                .arg("token")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|c| {
            let o = c.wait_with_output().unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            String::from_utf8_lossy(&o.stdout).trim().to_owned()
        })
        .collect()
}

fn cache(env: &Env, profile: &str) -> PathBuf {
    env.root()
        .join("private/client-cache")
        .join(format!("{profile}.json"))
}

#[test]
fn tokenctl_token_fetches_once_caches_0600_and_serves_twenty_processes_with_one_request() {
    if !have("curl") {
        return;
    }
    let mut env = Env::new();
    let ca = cert(&env);
    let addr = local_addr();
    let kg = keygate(&env, addr, &[]);
    let issuer = format!("https://localhost:{}", addr.port());
    let made = env
        .run(
            "tokenctl",
            &[
                "client", "create", "--name", "ci", "--scope", "deploy", "--json",
            ],
        )
        .code(0)
        .json();
    let id = made["client_id"].as_str().unwrap().to_owned();
    let secret = env.root().join("ci.secret");
    secret_file(&secret, made["client_secret"].as_str().unwrap());
    write_config(
        &env,
        &format!(
            "[profiles.ci]\nissuer = \"{issuer}\"\nscopes = [\"deploy\"]\nca_file = \"{}\"\n\
             client_secret_file = \"{}\"\n",
            ca.display(),
            secret.display()
        ),
    );
    // The CI case: the id from the environment, the secret from a file.
    env.set("KEYGATE_CLIENT_ID", &id);

    let first = env.run("tokenctl", &["token", "--profile", "ci"]);
    first.code(0);
    let token = first.stdout.trim().to_owned();
    assert!(token.starts_with("eyJ"), "{}", first.stdout);
    assert_eq!(first.stderr, "", "quiet success");
    let auth = |t: &str| {
        curl(&[
            "--cacert",
            ca.to_str().unwrap(),
            "-H",
            &bearer(t),
            &format!("{issuer}/auth"),
        ])
        .status
    };
    assert_eq!(auth(&token), 200);
    assert_eq!(stat_mode(&cache(&env, "ci")), "600");
    assert_eq!(issued(&kg), 1);

    // Cached: the same token, no request; KEYGATE_PROFILE chooses the profile too.
    env.set("KEYGATE_PROFILE", "ci");
    let again = env.run("tokenctl", &["token"]);
    assert_eq!(again.code(0).stdout.trim(), token);
    assert_eq!(issued(&kg), 1, "a cached token was fetched again");

    // Formats: a header line for `curl -H @-`, a kubectl ExecCredential.
    let header = env.run("tokenctl", &["token", "--format", "header"]);
    let line = header.code(0).stdout.clone();
    assert_eq!(line.trim(), format!("Authorization: Bearer {token}"));
    let mut c = Command::new("curl")
        .args(["--silent", "--cacert", ca.to_str().unwrap(), "-H", "@-"])
        .args(["-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("{issuer}/auth"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    c.stdin.take().unwrap().write_all(line.as_bytes()).unwrap();
    let out = c.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200", "curl -H @-");
    let kube = env.run("tokenctl", &["token", "--format", "kubectl"]);
    let cred: Value = serde_json::from_str(&kube.code(0).stdout).unwrap();
    crate::json::validate_against(&fixtures().join("k8s/execcredential-v1.json"), &cred);
    assert_eq!(cred["apiVersion"], "client.authentication.k8s.io/v1");
    assert_eq!(cred["kind"], "ExecCredential");
    assert_eq!(cred["status"]["token"], token.as_str());
    let exp = cred["status"]["expirationTimestamp"].as_str().unwrap();
    let exp =
        time::OffsetDateTime::parse(exp, &time::format_description::well_known::Rfc3339).unwrap();
    let left = exp - time::OffsetDateTime::now_utc();
    assert!(
        left > time::Duration::minutes(8) && left <= time::Duration::minutes(10),
        "keygate's client tokens live 10 minutes: {left}"
    );

    // A token with less left than --min-validity is replaced.
    let longer = env.run("tokenctl", &["token", "--min-validity", "11m"]);
    let renewed = longer.code(0).stdout.trim().to_owned();
    assert_ne!(renewed, token);
    assert_eq!(issued(&kg), 2);

    // git's credential helper gives the token for https, never for plain http; `reject`
    // (the server refused it) makes the next one a new token.
    let git = |op: &str, input: &str| {
        let mut cmd = Command::new("git");
        for (k, v) in env.cmd("tokenctl").get_envs() {
            if let Some(v) = v {
                cmd.env(k, v);
            }
        }
        let helper = format!(
            "!{} credential-helper --profile ci",
            test_support::bin("tokenctl").display()
        );
        let mut c = cmd
            .args([
                "-c",
                "credential.helper=",
                "-c",
                &format!("credential.helper={helper}"),
            ])
            .args(["credential", op])
            .env("GIT_TERMINAL_PROMPT", "0")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write as _;
        c.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        c.wait_with_output().unwrap()
    };
    let current = env
        .run("tokenctl", &["token"])
        .code(0)
        .stdout
        .trim()
        .to_owned();
    let filled = git("fill", "protocol=https\nhost=git.example\n\n");
    let text = String::from_utf8_lossy(&filled.stdout).into_owned();
    assert!(
        filled.status.success(),
        "{}",
        String::from_utf8_lossy(&filled.stderr)
    );
    assert!(text.contains("username=oauth2\n"), "{text}");
    assert!(text.contains(&format!("password={current}\n")), "{text}");
    let clear = git("fill", "protocol=http\nhost=git.example\n\n");
    assert!(
        !String::from_utf8_lossy(&clear.stdout).contains(&current),
        "a token for plain http"
    );
    let rejected = git(
        "reject",
        &format!("protocol=https\nhost=git.example\nusername=oauth2\npassword={current}\n\n"),
    );
    assert!(
        rejected.status.success(),
        "{}",
        String::from_utf8_lossy(&rejected.stderr)
    );
    let after = env
        .run("tokenctl", &["token"])
        .code(0)
        .stdout
        .trim()
        .to_owned();
    assert_ne!(after, current, "a rejected token was handed out again");

    // Twenty processes at once with nothing cached: one request, twenty identical tokens.
    env.run("tokenctl", &["logout"]).code(0);
    assert!(!cache(&env, "ci").exists(), "logout forgets the token");
    let before = issued(&kg);
    let printed = twenty_tokens(&env);
    assert_eq!(
        printed.len(),
        1,
        "twenty processes printed {} tokens",
        printed.len()
    );
    assert!(
        eventually(Duration::from_secs(2), || issued(&kg) > before),
        "no token was issued"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(issued(&kg) - before, 1, "one request for twenty processes");

    // A cached token is for its resource only: naming another fetches another.
    let shared = printed.into_iter().next().unwrap();
    write_config(
        &env,
        &format!(
            "[profiles.ci]\nissuer = \"{issuer}\"\nscopes = [\"deploy\"]\nca_file = \"{}\"\n\
             client_secret_file = \"{}\"\nresource = \"https://api.example\"\n",
            ca.display(),
            secret.display()
        ),
    );
    let before = issued(&kg);
    let other = env.run("tokenctl", &["token"]);
    assert_ne!(
        other.code(0).stdout.trim(),
        shared,
        "a token for another resource"
    );
    assert!(eventually(Duration::from_secs(2), || issued(&kg) == before + 1));

    // KEYGATE_CLIENT_SECRET instead of a file; the secret never reaches argv or output.
    write_config(
        &env,
        &format!(
            "[profiles.ci]\nissuer = \"{issuer}\"\nca_file = \"{}\"\n",
            ca.display()
        ),
    );
    let mut env2 = env;
    env2.set(
        "KEYGATE_CLIENT_SECRET",
        made["client_secret"].as_str().unwrap(),
    );
    env2.run("tokenctl", &["logout"]).code(0);
    let from_env = env2.run("tokenctl", &["token"]);
    assert!(from_env.code(0).stdout.starts_with("eyJ"));

    // Refused: a wrong secret is one line with a hint, exit 1, and nothing is cached.
    let mut wrong = Env::new();
    std::fs::create_dir_all(wrong.root().join("private")).unwrap();
    write_config(
        &wrong,
        &format!(
            "[profiles.ci]\nissuer = \"{issuer}\"\nca_file = \"{}\"\n",
            ca.display()
        ),
    );
    wrong.set("KEYGATE_CLIENT_ID", &id);
    wrong.set(
        "KEYGATE_CLIENT_SECRET",
        "kgcs_AAAAAAAAAAAA_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    );
    let r = wrong.run("tokenctl", &["token", "--profile", "ci"]);
    r.code(1);
    assert_eq!(r.stdout, "");
    assert!(
        r.stderr
            .starts_with("error: the issuer refused: invalid_client"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("hint: "), "{}", r.stderr);
    assert!(!r.stderr.contains("kgcs_"), "the secret in an error");
    assert!(!cache(&wrong, "ci").exists(), "a refusal cached something");

    // A tampered cache is refused with the file named, and left for the person to see.
    let c = cache(&env2, "ci");
    std::fs::write(&c, "{\"version\":1,\"access_token\":\"forged\"}").unwrap();
    let r = env2.run("tokenctl", &["token"]);
    r.code(1);
    assert!(r.stderr.contains(&c.display().to_string()), "{}", r.stderr);
    assert!(r.stderr.contains("damaged or was changed"), "{}", r.stderr);

    // So is one that others could read or change.
    env2.run("tokenctl", &["logout"]).code(0);
    env2.run("tokenctl", &["token"]).code(0);
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&c, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let r = env2.run("tokenctl", &["token"]);
    r.code(1);
    assert!(r.stderr.contains("mode 0644"), "{}", r.stderr);
    env2.run("tokenctl", &["logout"]).code(0);
    // Mix-up defence: metadata naming another issuer than the profile's is refused.
    write_config(
        &env2,
        &format!(
            "[profiles.ci]\nissuer = \"https://127.0.0.1:{}\"\nca_file = \"{}\"\n",
            addr.port(),
            ca.display()
        ),
    );
    let r = env2.run("tokenctl", &["token"]);
    r.code(1);
    assert!(r.stderr.contains("names another issuer"), "{}", r.stderr);
    // Tokens never cross a network in the clear.
    write_config(&env2, "[profiles.ci]\nissuer = \"http://issuer.example\"\n");
    let r = env2.run("tokenctl", &["token"]);
    r.code(2);
    assert!(r.stderr.contains("use https://"), "{}", r.stderr);
}

/// node-oidc-provider, started from the bench's fixture with a token counter.
pub(crate) struct OidcProvider {
    child: std::process::Child,
    pub(crate) issuer: String,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl OidcProvider {
    fn start(dir: &Path, secret: &str) -> OidcProvider {
        OidcProvider::start_with(dir, secret, false)
    }

    /// With `login`, also its people's client `cli` and development sign-in pages.
    pub(crate) fn start_with(dir: &Path, secret: &str, login: bool) -> OidcProvider {
        let config = dir.join("oidc-provider.json");
        secret_file(
            &config,
            &serde_json::json!({ "client_secret": secret }).to_string(),
        );
        let mut child = Command::new("node")
            .arg(fixtures().join("oidc-provider/server.mjs"))
            .arg(&config)
            .env("COUNT_TOKENS", "1")
            .env("LOGIN", if login { "1" } else { "0" })
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        let first = lines
            .recv_timeout(Duration::from_secs(20))
            .expect("oidc-provider prints `listening PORT`");
        let port = first.strip_prefix("listening ").expect(&first).to_owned();
        OidcProvider {
            child,
            issuer: format!("http://127.0.0.1:{port}"),
            lines,
        }
    }

    /// How many tokens it issued since the last call.
    pub(crate) fn issued(&self) -> usize {
        std::thread::sleep(Duration::from_millis(200));
        self.lines.try_iter().filter(|l| l == "issued").count()
    }
}

#[test]
fn tokenctl_token_gets_a_machine_clients_token_from_node_oidc_provider() {
    if !have_npm_fixture("oidc-provider") {
        return;
    }
    let mut env = Env::new();
    let secret = "s3cret-with:colon%and-percent";
    let p = OidcProvider::start(env.root(), secret);
    let file = env.root().join("svc.secret");
    secret_file(&file, secret);
    write_config(
        &env,
        &format!(
            "[profiles.svc]\nissuer = \"{}\"\nclient_id = \"svc\"\nscopes = [\"deploy\"]\n\
             client_secret_file = \"{}\"\n",
            p.issuer,
            file.display()
        ),
    );
    env.set("KEYGATE_PROFILE", "svc");
    // Basic credentials are form-encoded before base64 (RFC 6749 §2.3.1): a secret with
    // `:` and `%` works.
    let first = env.run("tokenctl", &["token"]);
    first.code(0);
    let token = first.stdout.trim().to_owned();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    assert_eq!(p.issued(), 1);
    let again = env.run("tokenctl", &["token", "--format", "header"]);
    assert_eq!(
        again.code(0).stdout.trim(),
        format!("Authorization: Bearer {token}")
    );
    assert_eq!(p.issued(), 0, "served from the cache");
    // Its refusal, in its words.
    let mut wrong = Env::new();
    let bad = wrong.root().join("bad.secret");
    secret_file(&bad, "nope");
    write_config(
        &wrong,
        &format!(
            "[profiles.svc]\nissuer = \"{}\"\nclient_id = \"svc\"\nclient_secret_file = \"{}\"\n",
            p.issuer,
            bad.display()
        ),
    );
    wrong.set("KEYGATE_PROFILE", "svc");
    let r = wrong.run("tokenctl", &["token"]);
    r.code(1);
    assert!(
        r.stderr
            .starts_with("error: the issuer refused: invalid_client"),
        "{}",
        r.stderr
    );
}

/// The holder of `token` signs in on keygate's page with curl and approves `user_code` on
/// the device page, as a browser would (same origin).
fn approve_device(issuer: &str, ca: &Path, jar_dir: &Path, token: &str, user_code: &str) {
    let jar = jar_dir.join("jar").display().to_string();
    let ca = ca.to_str().unwrap();
    let get = |url: &str| curl(&["--cacert", ca, "-c", &jar, "-b", &jar, url]);
    let page = get(&format!("{issuer}/.keygate/sign-in"));
    let csrf = test_support::proxy::input_value(&page.body, "csrf").expect("a csrf field");
    let origin = format!("Origin: {issuer}");
    let post = |url: &str, fields: &[String]| {
        let mut args = vec![
            "--cacert",
            ca,
            "-c",
            &jar,
            "-b",
            &jar,
            "-H",
            &origin,
            "-H",
            "Sec-Fetch-Site: same-origin",
        ];
        for f in fields {
            args.extend(["--data-urlencode", f.as_str()]);
        }
        args.push(url);
        curl(&args)
    };
    let r = post(
        &format!("{issuer}/.keygate/sign-in"),
        &[format!("token={token}"), format!("csrf={csrf}")],
    );
    assert_eq!(r.status, 303, "sign-in: {r:?}");
    let page = get(&format!("{issuer}/oauth/device?user_code={user_code}"));
    assert!(
        page.body.contains(user_code),
        "the device page shows the code: {}",
        page.body
    );
    let csrf = test_support::proxy::input_value(&page.body, "csrf").expect("a csrf field");
    let r = post(
        &format!("{issuer}/oauth/device"),
        &[
            format!("csrf={csrf}"),
            format!("user_code={user_code}"),
            "decision=approve".into(),
        ],
    );
    assert_eq!(r.status, 200, "approval: {}", r.body);
}

#[test]
fn tokenctl_login_with_the_device_grant_then_twenty_processes_share_one_refresh() {
    if !have("curl") {
        return;
    }
    let mut env = Env::new();
    let ca = cert(&env);
    let addr = local_addr();
    let kg = keygate(&env, addr, &[]);
    let issuer = format!("https://localhost:{}", addr.port());
    let alice = token(&env, "alice", &[]);
    let cli = crate::oauth::public_client(&env);
    write_config(
        &env,
        &format!(
            "[profiles.dev]\nissuer = \"{issuer}\"\nclient_id = \"{cli}\"\nscopes = [\"openid\"]\n\
             ca_file = \"{}\"\n",
            ca.display()
        ),
    );
    env.set("KEYGATE_PROFILE", "dev");
    // Not signed in yet: a clear refusal, not a request.
    let r = env.run("tokenctl", &["token"]);
    r.code(1);
    assert!(
        r.stderr.contains("tokenctl login --profile dev"),
        "{}",
        r.stderr
    );

    // No display here (the test's environment has none): `login` chooses the device grant
    // by itself.
    let mut login = env
        .cmd("tokenctl")
        .args(["login"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(login.stderr.take().unwrap());
    let mut shown = String::new();
    while !shown.contains("shows the code") {
        let mut line = String::new();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "login ended: {shown}"
        );
        shown.push_str(&line);
    }
    let code = shown.trim().rsplit(' ').next().unwrap().to_owned();
    assert!(
        shown.contains(&format!("{issuer}/oauth/device?user_code={code}")),
        "{shown}"
    );
    approve_device(&issuer, &ca, env.root(), &alice, &code);
    let status = login.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    assert!(status.success(), "{shown}{rest}");
    assert!(rest.contains("signed in (profile 'dev'"), "{rest}");
    assert_eq!(stat_mode(&cache(&env, "dev")), "600");
    let cached = std::fs::read_to_string(cache(&env, "dev")).unwrap();
    assert!(
        cached.contains("\"refresh_token\": \"kgrt_"),
        "a refresh token is kept"
    );

    let status = env.run("tokenctl", &["status", "--json"]).code(0).json();
    crate::json::validate("tokenctl.status", &status);
    assert_eq!(status["signed_in"], true);
    assert_eq!(status["subject"], "alice");
    assert_eq!(status["refreshable"], true);
    assert!(
        !status.to_string().contains("kgrt_"),
        "a refresh token in status"
    );
    let first = env.run("tokenctl", &["token"]);
    let at = first.code(0).stdout.trim().to_owned();
    let auth = |t: &str| {
        curl(&[
            "--cacert",
            ca.to_str().unwrap(),
            "-H",
            &bearer(t),
            &format!("{issuer}/auth"),
        ])
        .status
    };
    assert_eq!(auth(&at), 200, "alice's access token");

    // Two hours on (for tokenctl; keygate keeps real time): the access token has expired
    // for twenty processes at once; one refresh, twenty identical new tokens.
    let later = (time::OffsetDateTime::now_utc() + time::Duration::hours(2))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let mut later_env = env;
    later_env.set("KEYGATE_TEST_NOW", &later);
    let before = issued(&kg);
    let printed = twenty_tokens(&later_env);
    assert_eq!(
        printed.len(),
        1,
        "twenty processes printed {} tokens",
        printed.len()
    );
    let refreshed = printed.into_iter().next().unwrap();
    assert_ne!(refreshed, at);
    assert!(eventually(Duration::from_secs(2), || issued(&kg) > before));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(issued(&kg) - before, 1, "one refresh for twenty processes");
    assert_eq!(auth(&refreshed), 200);
    let rotated = std::fs::read_to_string(cache(&later_env, "dev")).unwrap();
    assert_ne!(rotated, cached, "the refresh token rotated");
    assert!(
        !kg.output().contains("refresh_token_reused"),
        "{}",
        kg.output()
    );

    // Revoking alice's API token ends the sign-in: the next refresh is refused and tokenctl
    // says to sign in again.
    later_env
        .run("tokenctl", &["revoke", "--name", "alice"])
        .code(0);
    let much_later = (time::OffsetDateTime::now_utc() + time::Duration::hours(5))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    later_env.set("KEYGATE_TEST_NOW", &much_later);
    let r = later_env.run("tokenctl", &["token"]);
    r.code(1);
    assert!(
        r.stderr.contains("is not signed in, or its sign-in ended"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("kgrt_"), "a refresh token in an error");
    // logout forgets it; status then says so, with exit 1 for scripts.
    later_env.run("tokenctl", &["logout"]).code(0);
    assert!(!cache(&later_env, "dev").exists());
    let r = later_env.run("tokenctl", &["status", "--json"]);
    r.code(1);
    let v = r.json();
    crate::json::validate("tokenctl.status", &v);
    assert_eq!(
        (v["signed_in"].clone(), v["expires_at"].clone()),
        (Value::Bool(false), Value::Null)
    );
    let text = later_env.run("tokenctl", &["status"]);
    assert!(
        text.stdout.contains("none cached: `tokenctl login`"),
        "{}",
        text.stdout
    );
    // No such profile and nothing signed in under the name: "no", with the way in.
    let r = later_env.run("tokenctl", &["status", "--profile", "nosuch", "--json"]);
    r.code(1);
    crate::json::validate("tokenctl.status", &r.json());
    let r = later_env.run("tokenctl", &["token", "--profile", "nosuch"]);
    assert!(
        r.stderr.contains("tokenctl login --issuer URL"),
        "{}",
        r.stderr
    );
}

/// `tokenctl login --no-browser ARGS` started in `env`; the URL it prints, and the process
/// with its stderr.
pub(crate) fn start_login(
    env: &Env,
    args: &[&str],
) -> (
    String,
    std::process::Child,
    BufReader<std::process::ChildStderr>,
) {
    let mut child = env
        .cmd("tokenctl")
        .args(["login", "--no-browser"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("to sign in, open ")
        .unwrap_or_else(|| panic!("{line}"))
        .to_owned();
    (url, child, err)
}

fn param(url: &str, name: &str) -> String {
    let q = url.split_once('?').unwrap().1;
    form_urlencoded_pairs(q)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no {name} in {url}"))
}

fn form_urlencoded_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| {
            (
                k.to_owned(),
                test_support::proxy::percent_decode(&v.replace('+', " ")),
            )
        })
        .collect()
}

/// The browser's return to tokenctl's loopback listener, forged as `query`.
fn call_back(url: &str, query: &str) -> Resp {
    let redirect = param(url, "redirect_uri");
    curl(&[&format!("{redirect}?{query}")])
}

#[test]
fn tokenctl_login_refuses_a_callback_with_a_wrong_state_or_issuer_and_caches_nothing() {
    if !have("curl") {
        return;
    }
    let mut env = Env::new();
    let ca = cert(&env);
    let addr = local_addr();
    let _kg = keygate(&env, addr, &[]);
    let issuer = format!("https://localhost:{}", addr.port());
    let cli = crate::oauth::public_client(&env);
    write_config(
        &env,
        &format!(
            "[profiles.dev]\nissuer = \"{issuer}\"\nclient_id = \"{cli}\"\nca_file = \"{}\"\n",
            ca.display()
        ),
    );
    env.set("KEYGATE_PROFILE", "dev");
    let (url, mut first, _) = start_login(&env, &["--timeout", "1m"]);
    let _ = first.kill();
    let _ = first.wait();
    assert!(
        url.starts_with(&format!("{issuer}/oauth/authorize?")),
        "{url}"
    );
    assert_eq!(param(&url, "code_challenge_method"), "S256");
    let redirect = param(&url, "redirect_uri");
    assert!(
        redirect.starts_with("http://127.0.0.1:") && redirect.ends_with("/callback"),
        "an ephemeral loopback port: {redirect}"
    );
    let iss = format!("iss={}", encode(&issuer));
    let cases = [
        (
            format!("code=kgac_x&state=forged&{iss}"),
            "its state differs",
        ),
        (
            format!(
                "code=kgac_x&state={}&iss={}",
                "STATE",
                encode("https://evil.example")
            ),
            "names another issuer",
        ),
        ("code=kgac_x&state=STATE".to_owned(), "names another issuer"),
        (
            format!("error=access_denied&state=STATE&{iss}"),
            "the issuer refused: access_denied",
        ),
    ];
    for (query, want) in cases {
        let (url, child, mut err) = start_login(&env, &["--timeout", "1m"]);
        let state = param(&url, "state");
        let query = query.replace("STATE", &encode(&state));
        let page = call_back(&url, &query);
        assert_eq!(page.status, 400, "{query}: {page:?}");
        let out = child.wait_with_output().unwrap();
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
        assert_eq!(out.status.code(), Some(1), "{query}: {rest}");
        assert!(rest.contains(want), "{query}: {rest}");
        assert!(
            !cache(&env, "dev").exists(),
            "{query}: something was cached"
        );
    }
}

fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `tokenctl login` picks its flow from where it runs: a browser in a graphical session,
/// the device grant over SSH (the browser would open on the wrong machine) or with none.
#[test]
fn tokenctl_login_chooses_the_device_grant_over_ssh_and_the_browser_on_a_desktop() {
    if !have("curl") {
        return;
    }
    let env = Env::new();
    let ca = cert(&env);
    let addr = local_addr();
    let _kg = keygate(&env, addr, &[]);
    let issuer = format!("https://localhost:{}", addr.port());
    let cli = crate::oauth::public_client(&env);
    write_config(
        &env,
        &format!(
            "[profiles.dev]\nissuer = \"{issuer}\"\nclient_id = \"{cli}\"\nca_file = \"{}\"\n",
            ca.display()
        ),
    );
    let run = |vars: &[(&str, &str)]| {
        let mut cmd = env.cmd("tokenctl");
        cmd.args(["login", "--profile", "dev", "--timeout", "2s"]);
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let opened = env.root().join("opened");
    let browser = format!("touch {}", opened.display());
    let (code, err) = run(&[
        ("DISPLAY", ":0"),
        ("SSH_CONNECTION", "198.51.100.7 50000 192.0.2.1 22"),
        ("BROWSER", &browser),
    ]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("check that it shows the code"),
        "over SSH: {err}"
    );
    assert!(!opened.exists(), "a browser was started over SSH");
    let (code, err) = run(&[("DISPLAY", ":0"), ("BROWSER", &browser)]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("/oauth/authorize?"), "on a desktop: {err}");
    assert!(opened.exists(), "$BROWSER was not started");
    assert!(!cache(&env, "dev").exists());
}

/// A profile with `age_identity` keeps its cache sealed with age to that identity: the file
/// holds no token in the clear, it is used as any cache, and a plaintext one put in its
/// place is refused (no silent fall-back to plaintext).
#[test]
fn a_profile_with_an_age_identity_keeps_its_token_cache_sealed() {
    if !have("curl") {
        return;
    }
    let mut env = Env::new();
    let ca = cert(&env);
    let addr = local_addr();
    let kg = keygate(&env, addr, &[]);
    let issuer = format!("https://localhost:{}", addr.port());
    let made = env
        .run("tokenctl", &["client", "create", "--name", "ci", "--json"])
        .code(0)
        .json();
    let key = env.root().join("cache-key.txt");
    env.run("tokenctl", &["keygen", "-o", key.to_str().unwrap()])
        .code(0);
    write_config(
        &env,
        &format!(
            "[profiles.ci]\nissuer = \"{issuer}\"\nca_file = \"{}\"\nage_identity = \"{}\"\n",
            ca.display(),
            key.display()
        ),
    );
    env.set("KEYGATE_PROFILE", "ci");
    env.set("KEYGATE_CLIENT_ID", made["client_id"].as_str().unwrap());
    env.set(
        "KEYGATE_CLIENT_SECRET",
        made["client_secret"].as_str().unwrap(),
    );
    let token = env
        .run("tokenctl", &["token"])
        .code(0)
        .stdout
        .trim()
        .to_owned();
    let file = cache(&env, "ci");
    let sealed = std::fs::read(&file).unwrap();
    assert!(
        sealed.starts_with(b"age-encryption.org/v1"),
        "not an age file"
    );
    assert!(
        !String::from_utf8_lossy(&sealed).contains(&token[..20]),
        "the token in the clear"
    );
    assert_eq!(stat_mode(&file), "600");
    // Go's age opens it with the same identity: a real age file.
    if have("age") {
        let out = Command::new("age")
            .args(["-d", "-i", key.to_str().unwrap(), file.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains(&token));
    }
    assert_eq!(env.run("tokenctl", &["token"]).code(0).stdout.trim(), token);
    assert_eq!(issued(&kg), 1, "the sealed cache was not used");
    std::fs::write(
        &file,
        format!(
            "{{\"version\":1,\"issuer\":\"{issuer}\",\"client_id\":\"x\",\"scopes\":[],\
             \"resource\":null,\"access_token\":\"forged\",\"expires_at\":9999999999,\"scope\":null}}"
        ),
    )
    .unwrap();
    let r = env.run("tokenctl", &["token"]);
    r.code(1);
    assert!(r.stderr.contains("not sealed with age"), "{}", r.stderr);
    assert_eq!(r.stdout, "", "the plaintext token was used");
}
