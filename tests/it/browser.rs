//! A real browser signs in through keygate's reverse proxy: headless Chromium driven over
//! WebDriver (chromedriver), against keygate on HTTPS with certctl's certificate.
//!
//! Chromium trusts exactly keygate's key (`--ignore-certificate-errors-spki-list`), not every
//! certificate, so the `__Host-`/`Secure` cookie rules apply as they would in production.
//! Everything stays on loopback: the background-networking flags keep Chromium from calling
//! Google, and both chromedriver and Chromium are killed when the test ends, pass or fail.
#![allow(clippy::print_stderr)] // Test code: progress and skip notes go to the test output.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use test_support::{Env, Proc, bin_dir, have};

use test_support::server::*;

use test_support::proxy::*;

/// chromedriver and the Chromium it starts; both are killed when dropped.
struct Browser {
    /// Chromium's profile: fresh per test, and the mark that finds its processes.
    profile: tempfile::TempDir,
    driver: Proc,
    port: u16,
}

impl Browser {
    fn start(env: &Env) -> Browser {
        let port = free_port();
        let mut cmd = Command::new("chromedriver");
        cmd.arg(format!("--port={port}"));
        let mut driver = Proc::spawn("chromedriver", cmd, &env.root().join("chromedriver.log"));
        driver.wait_port(([127, 0, 0, 1], port).into());
        Browser {
            profile: tempfile::tempdir().unwrap(),
            driver,
            port,
        }
    }

    /// A WebDriver session with headless Chromium; `spki` is the one key it trusts besides
    /// the system's roots.
    async fn session(&self, spki: Option<&str>) -> Client {
        let mut args = vec![
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--window-size=1024,768".to_owned(),
            format!("--user-data-dir={}", self.profile.path().display()),
        ];
        if let Some(spki) = spki {
            args.push(format!("--ignore-certificate-errors-spki-list={spki}"));
        }
        let caps = serde_json::json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": chromium(), "args": args },
        });
        let serde_json::Value::Object(caps) = caps else {
            unreachable!()
        };
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .unwrap_or_else(|e| panic!("no WebDriver session: {e}\n{}", self.driver.output()))
    }
}

impl Drop for Browser {
    /// Chromium first (found by its unique profile directory, killed by pid), then
    /// chromedriver (its `Proc` is dropped after this).
    fn drop(&mut self) {
        let mark = self.profile.path().to_string_lossy().into_owned();
        let Ok(procs) = std::fs::read_dir("/proc") else {
            return;
        };
        for entry in procs.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&mark) {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
    }
}

/// The Chromium binary on PATH.
fn chromium() -> String {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("chromium"))
        .find(|p| p.is_file())
        .expect("chromium on PATH")
        .to_string_lossy()
        .into_owned()
}

/// base64(sha256(SubjectPublicKeyInfo)) of a PEM certificate, computed by openssl: the value
/// Chromium's `--ignore-certificate-errors-spki-list` takes.
fn spki_hash(cert: &Path) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(
            "openssl x509 -pubkey -noout -in \"$1\" | openssl pkey -pubin -outform der \
             | openssl dgst -sha256 -binary | base64",
        )
        .arg("sh")
        .arg(cert)
        .output()
        .unwrap();
    let hash = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        out.status.success() && hash.len() == 44,
        "spki hash of {}: {hash} {}",
        cert.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    hash
}

/// Where screenshots go: `target/e2e-screenshots/`, kept after the run for a human look.
fn screenshot_dir() -> PathBuf {
    let dir = bin_dir().parent().unwrap().join("e2e-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Saves a screenshot as `name` and checks it is a PNG of the window's size with content.
async fn screenshot(client: &Client, name: &str) -> PathBuf {
    let png = client.screenshot().await.unwrap();
    let path = screenshot_dir().join(name);
    std::fs::write(&path, &png).unwrap();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        path.display()
    );
    let dim = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    let (w, h) = (dim(16), dim(20));
    assert!(
        (800..=4096).contains(&w) && (400..=4096).contains(&h),
        "{}: {w}x{h}",
        path.display()
    );
    // A blank page compresses to a few hundred bytes; text and a form do not.
    assert!(
        png.len() > 4000,
        "{}: only {} bytes",
        path.display(),
        png.len()
    );
    path
}

/// The path and query of the page the browser shows.
async fn at(client: &Client) -> String {
    let url = client.current_url().await.unwrap();
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    }
}

/// Waits for an element (up to 10 s); panics with the page's URL and source otherwise.
async fn wait_for(client: &Client, id: &str) -> fantoccini::elements::Element {
    match client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Id(id))
        .await
    {
        Ok(e) => e,
        Err(e) => panic!(
            "no #{id} at {} ({e}):\n{}",
            at(client).await,
            page_text(client).await
        ),
    }
}

/// The text the page shows (its source is mostly inline CSS: too long for a failure message).
async fn page_text(client: &Client) -> String {
    match client.find(Locator::Css("body")).await {
        Ok(body) => body.text().await.unwrap_or_default(),
        Err(_) => client.source().await.unwrap_or_default(),
    }
}

/// Signs in on the sign-in page shown now with `token`.
async fn submit_token(client: &Client, token: &str) {
    let field = wait_for(client, "token").await;
    field.clear().await.unwrap();
    field.send_keys(token).await.unwrap();
    client
        .find(Locator::Css(
            "#sign-in-form button[type=submit], #sign-in-form input[type=submit], #sign-in-form button",
        ))
        .await
        .expect("a submit button in #sign-in-form")
        .click()
        .await
        .unwrap();
}

#[test]
fn chromium_signs_in_sees_the_app_signs_out_and_is_signed_out_by_revocation() {
    if !have("chromium") || !have("chromedriver") || !have("openssl") || !have("curl") {
        return;
    }
    let env = Env::new();
    let ca = cert(&env);
    let spki = spki_hash(&env.root().join("private/certs/default/current/cert.pem"));
    let alice = token(&env, "alice", &["read"]);
    let up = Upstream::tcp();
    let browser = Browser::start(&env);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = browser.session(Some(&spki)).await;

        // The browser itself works: the upstream, straight, on loopback.
        client.goto(&format!("{}/straight", up.url)).await.unwrap();
        wait_for(&client, "upstream").await;
        screenshot(&client, "upstream.png").await;

        let addr = local_addr();
        let kg = keygate_proxy(
            &env,
            addr,
            &up.url,
            true,
            &["--set", "server.local_bypass=false"],
        );
        let site = |p: &str| format!("https://localhost:{}{p}", addr.port());

        // Chromium trusts keygate's key (and only that), so HTTPS works.
        client.goto(&site("/.keygate/health")).await.unwrap();
        let body = client
            .find(Locator::Css("body"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(body.trim(), "healthy", "{}", client.source().await.unwrap());

        // A protected page sends the browser to sign in, with the page to come back to.
        client.goto(&site("/notes?tab=1")).await.unwrap();
        wait_for(&client, "sign-in-form").await;
        let here = at(&client).await;
        assert!(here.starts_with("/.keygate/sign-in"), "{here}");
        assert_eq!(sign_in_next(&here), "/notes?tab=1");
        let token_field = wait_for(&client, "token").await;
        assert_eq!(
            token_field.attr("type").await.unwrap().as_deref(),
            Some("password")
        );
        assert_eq!(
            token_field.attr("name").await.unwrap().as_deref(),
            Some("token")
        );
        for hidden in ["csrf", "next"] {
            let input = client
                .find(Locator::Css(&format!("#sign-in-form input[name={hidden}]")))
                .await
                .unwrap_or_else(|_| panic!("no {hidden} field"));
            assert_eq!(input.attr("type").await.unwrap().as_deref(), Some("hidden"));
        }
        let shot = screenshot(&client, "sign-in.png").await;
        eprintln!("sign-in page screenshot: {}", shot.display());

        // A wrong token: the page again, with the error.
        submit_token(&client, "kg_0123456789AB_nope").await;
        let error = wait_for(&client, "error").await.text().await.unwrap();
        assert!(
            error.contains("That token was not accepted."),
            "the sign-in page shows #error {error:?}"
        );
        screenshot(&client, "sign-in-error.png").await;

        // The right token: back to the page first asked for, as alice.
        submit_token(&client, &alice).await;
        let page = wait_for(&client, "upstream").await;
        assert!(page.is_displayed().await.unwrap());
        assert_eq!(at(&client).await, "/notes?tab=1");
        let echo = client
            .find(Locator::Id("echo"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let echo: serde_json::Value = serde_json::from_str(&echo).unwrap();
        assert_eq!(
            header(&echo, "x-auth-request-user"),
            Some("alice"),
            "{echo:#}"
        );
        assert_eq!(
            header(&echo, "x-forwarded-proto"),
            Some("https"),
            "{echo:#}"
        );
        assert!(
            !header(&echo, "cookie")
                .unwrap_or_default()
                .contains("keygate_session"),
            "{echo:#}"
        );

        // The session cookie, as the browser stored it.
        let cookies = client.get_all_cookies().await.unwrap();
        let session = cookies
            .iter()
            .find(|c| c.name() == "__Host-keygate_session")
            .unwrap_or_else(|| panic!("no __Host-keygate_session in {cookies:?}"));
        assert_eq!(session.secure(), Some(true), "{session:?}");
        assert_eq!(session.http_only(), Some(true), "{session:?}");
        assert_eq!(
            session.same_site().map(|s| s.to_string()).as_deref(),
            Some("Lax")
        );
        assert_eq!(session.path(), Some("/"));
        assert!(
            session.domain().is_none_or(|d| !d.starts_with('.')),
            "{session:?}"
        );
        let old = session.value().to_owned();
        let replay = |value: &str| {
            curl(&[
                "--cacert",
                ca.to_str().unwrap(),
                "--resolve",
                &format!("localhost:{}:127.0.0.1", addr.port()),
                "-H",
                &format!("Cookie: __Host-keygate_session={value}"),
                "-H",
                "Accept: text/html",
                &site("/notes"),
            ])
        };
        assert_eq!(
            replay(&old).status,
            200,
            "the cookie works outside the browser too"
        );

        // Sign out from the sign-in page: back to the form, and the old cookie is dead.
        client.goto(&site("/.keygate/sign-in")).await.unwrap();
        wait_for(&client, "sign-out").await.click().await.unwrap();
        wait_for(&client, "sign-in-form").await;
        let r = replay(&old);
        assert_eq!(r.status, 303, "the signed-out session still works: {r:?}");
        client.goto(&site("/notes")).await.unwrap();
        wait_for(&client, "sign-in-form").await;

        // Sign in again, then revoke the token: the next navigation asks to sign in again.
        submit_token(&client, &alice).await;
        wait_for(&client, "upstream").await;
        env.run("tokenctl", &["revoke", "--name", "alice"]).code(0);
        client.goto(&site("/notes?after=revoke")).await.unwrap();
        wait_for(&client, "sign-in-form").await;
        assert_eq!(sign_in_next(&at(&client).await), "/notes?after=revoke");

        // The token never reached the log.
        assert!(
            !kg.output().contains(&alice[16..]),
            "a secret reached the log"
        );
        client.close().await.unwrap();
    });
}

/// A line-by-line JSON reader of a peer's stdout (node's OAuth client).
fn json_lines(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<serde_json::Value> {
    use std::io::BufRead as _;
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                let _ = tx.send(v);
            }
        }
    });
    rx
}

fn next_json(rx: &std::sync::mpsc::Receiver<serde_json::Value>, what: &str) -> serde_json::Value {
    rx.recv_timeout(Duration::from_secs(40))
        .unwrap_or_else(|_| panic!("openid-client printed no {what}"))
}

/// Issue 15: a person signs in through Chromium for a CLI that uses openid-client
/// (authorization code, PKCE S256, state, nonce, `iss` checked, refresh, userinfo), then
/// approves a device on the device page.
#[test]
fn chromium_signs_a_person_in_for_openid_client_with_pkce_and_approves_a_device() {
    if !have("chromium")
        || !have("chromedriver")
        || !have("openssl")
        || !test_support::have_npm_fixture("oauth")
    {
        return;
    }
    let env = Env::new();
    let ca = cert(&env);
    let spki = spki_hash(&env.root().join("private/certs/default/current/cert.pem"));
    let alice = token(&env, "alice", &[]);
    let addr = local_addr();
    let kg = keygate(&env, addr, &[]);
    let issuer = format!("https://localhost:{}", addr.port());
    let cli = crate::oauth::public_client(&env);
    let node = |mode: &str| {
        let mut c = Command::new("node");
        c.arg(test_support::fixtures().join("oauth/client.mjs"))
            .arg(mode)
            .env("ISSUER", &issuer)
            .env("CLIENT_ID", &cli)
            .env("CLIENT_SECRET", "")
            .env("NODE_EXTRA_CA_CERTS", &ca)
            .stdout(std::process::Stdio::piped());
        c.spawn().unwrap()
    };
    let browser = Browser::start(&env);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = browser.session(Some(&spki)).await;

        // The CLI prints its authorization URL; the browser goes there, signs in, and is
        // sent back to the CLI's loopback listener on whatever port it got.
        let mut login = node("login");
        let lines = json_lines(&mut login);
        let url = next_json(&lines, "authorization URL")["authorize"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(url.contains("code_challenge_method=S256"), "{url}");
        client.goto(&url).await.unwrap();
        wait_for(&client, "sign-in-form").await;
        let here = at(&client).await;
        assert!(
            sign_in_next(&here).starts_with("/oauth/authorize?"),
            "sign-in comes back to /authorize: {here}"
        );
        screenshot(&client, "oauth-sign-in.png").await;
        submit_token(&client, &alice).await;
        // A public client is asked for: the page names it and where the answer goes.
        let request = wait_for(&client, "request").await.text().await.unwrap();
        assert!(
            request.contains("cli"),
            "the page names the client: {request}"
        );
        let goes_to = wait_for(&client, "redirect").await.text().await.unwrap();
        assert!(goes_to.starts_with("127.0.0.1:"), "{goes_to}");
        screenshot(&client, "oauth-consent.png").await;
        wait_for(&client, "allow").await.click().await.unwrap();
        wait_for(&client, "cli-done").await;
        let back = client.current_url().await.unwrap();
        assert_eq!(back.host_str(), Some("127.0.0.1"), "{back}");
        let done = next_json(&lines, "result");
        assert!(login.wait().unwrap().success(), "{done}");
        // RFC 9207: the answer names its issuer, and openid-client checked it.
        assert_eq!(done["callback"]["iss"], issuer.as_str());
        assert!(
            done["callback"]["code"]
                .as_str()
                .unwrap()
                .starts_with("kgac_")
        );
        assert_eq!(done["id_token_claims"]["sub"], "alice");
        assert_eq!(done["id_token_claims"]["aud"], cli.as_str());
        assert_eq!(done["id_token_header"]["alg"], "RS256");
        assert_eq!(done["userinfo"]["sub"], "alice");
        let rt1 = done["refresh_token"].as_str().unwrap();
        let rt2 = done["refreshed"]["refresh_token"].as_str().unwrap();
        assert!(
            rt1.starts_with("kgrt_") && rt2.starts_with("kgrt_") && rt1 != rt2,
            "rotated"
        );
        let at2 = done["refreshed"]["access_token"].as_str().unwrap();
        let auth = curl(&[
            "--cacert",
            ca.to_str().unwrap(),
            "-H",
            &bearer(at2),
            &format!("{issuer}/auth"),
        ]);
        assert_eq!(auth.status, 200, "a person's access token at /auth");

        // The device grant: the device shows a code; the signed-in person approves it.
        let mut device = node("device");
        let lines = json_lines(&mut device);
        let d = next_json(&lines, "device authorization");
        let user_code = d["device"]["user_code"].as_str().unwrap().to_owned();
        let complete = d["device"]["verification_uri_complete"].as_str().unwrap();
        client.goto(complete).await.unwrap();
        let request = wait_for(&client, "request").await.text().await.unwrap();
        assert!(
            request.contains("cli"),
            "the page names the client: {request}"
        );
        let shown = wait_for(&client, "user-code").await.text().await.unwrap();
        assert_eq!(shown, user_code, "the page shows the code to compare");
        screenshot(&client, "oauth-device.png").await;
        wait_for(&client, "approve").await.click().await.unwrap();
        wait_for(&client, "done").await;
        screenshot(&client, "oauth-device-done.png").await;
        let got = next_json(&lines, "device tokens");
        assert!(device.wait().unwrap().success(), "{got}");
        assert_eq!(got["sub"], "alice");
        assert!(got["refresh_token"].as_str().unwrap().starts_with("kgrt_"));
        assert!(
            !kg.output().contains(&alice[16..]),
            "a secret reached the log"
        );
        client.close().await.unwrap();
    });
}

/// Issue 16: `tokenctl login` opens its loopback port, Chromium signs the person in at
/// keygate, allows the CLI, and comes back to that port; `tokenctl token` then prints the
/// person's access token.
#[test]
fn chromium_logs_tokenctl_in_through_its_ephemeral_loopback_port() {
    if !have("chromium") || !have("chromedriver") || !have("curl") {
        return;
    }
    let mut env = Env::new();
    let ca = cert(&env);
    let spki = spki_hash(&env.root().join("private/certs/default/current/cert.pem"));
    let alice = token(&env, "alice", &[]);
    let addr = local_addr();
    let _kg = keygate(&env, addr, &[]);
    let issuer = format!("https://localhost:{}", addr.port());
    let cli = crate::oauth::public_client(&env);
    // No profile at all: the issuer and client on the command line, keygate's CA from
    // SSL_CERT_FILE (the system store's convention); later commands take both from the cache.
    env.set("SSL_CERT_FILE", &ca);
    let (url, mut login, mut err) = crate::client::start_login(
        &env,
        &["--timeout", "2m", "--issuer", &issuer, "--client-id", &cli],
    );
    let browser = Browser::start(&env);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = browser.session(Some(&spki)).await;
        client.goto(&url).await.unwrap();
        wait_for(&client, "sign-in-form").await;
        submit_token(&client, &alice).await;
        wait_for(&client, "allow").await.click().await.unwrap();
        let done = wait_for(&client, "signed-in").await.text().await.unwrap();
        assert!(done.contains("go back to the terminal"), "{done}");
        let back = client.current_url().await.unwrap();
        assert_eq!(back.host_str(), Some("127.0.0.1"), "{back}");
        screenshot(&client, "tokenctl-login-done.png").await;
        client.close().await.unwrap();
    });
    let status = login.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    assert!(status.success(), "{rest}");
    assert!(rest.contains("signed in (profile 'default'"), "{rest}");
    let t = env.run("tokenctl", &["token"]);
    let at = t.code(0).stdout.trim().to_owned();
    let auth = curl(&[
        "--cacert",
        ca.to_str().unwrap(),
        "-H",
        &bearer(&at),
        &format!("{issuer}/auth"),
    ]);
    assert_eq!(auth.status, 200, "the person's access token");
    // A logout that cannot reach the issuer (here: its CA not trusted) fails and keeps the
    // sign-in, so that it can be run again.
    let cut_off = env
        .cmd("tokenctl")
        .arg("logout")
        .env_remove("SSL_CERT_FILE")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&cut_off.stderr);
    assert_eq!(cut_off.status.code(), Some(1), "{said}");
    assert!(
        said.contains("could not revoke") && said.contains("SSL_CERT_FILE"),
        "{said}"
    );
    assert!(
        env.root()
            .join("private/client-cache/default.json")
            .exists(),
        "the sign-in was forgotten without being revoked"
    );
    // logout revokes the sign-in at keygate (RFC 7009), its access token with it.
    let out = env.run("tokenctl", &["logout"]);
    assert!(
        out.code(0).stderr.contains("revoked the sign-in"),
        "{}",
        out.stderr
    );
    assert!(
        eventually(Duration::from_secs(2), || curl(&[
            "--cacert",
            ca.to_str().unwrap(),
            "-H",
            &bearer(&at),
            &format!("{issuer}/auth"),
        ])
        .status
            == 401),
        "the access token outlived the logout"
    );
}

/// Issue 16 against another provider: `tokenctl login` signs in at node-oidc-provider
/// (its development sign-in and consent pages, driven by Chromium), then `tokenctl token`
/// prints its access token, refreshes it (counted at the provider) once it has expired for
/// tokenctl, and `logout` revokes the refresh token there.
#[test]
fn chromium_logs_tokenctl_in_at_node_oidc_provider_and_it_refreshes_there() {
    if !have("chromium")
        || !have("chromedriver")
        || !test_support::have_npm_fixture("oidc-provider")
    {
        return;
    }
    let mut env = Env::new();
    let p = crate::client::OidcProvider::start_with(env.root(), "unused-secret", true);
    std::fs::write(
        env.root().join("config.toml"),
        format!(
            "[profiles.op]\nissuer = \"{}\"\nclient_id = \"cli\"\nscopes = [\"openid\", \"offline_access\"]\n",
            p.issuer
        ),
    )
    .unwrap();
    env.set("KEYGATE_PROFILE", "op");
    let (url, mut login, mut err) = crate::client::start_login(&env, &["--timeout", "2m"]);
    let browser = Browser::start(&env);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = browser.session(None).await;
        client.goto(&url).await.unwrap();
        let form = client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css("input[name=login]"))
            .await
            .unwrap_or_else(|e| panic!("no login form ({e})"));
        form.send_keys("carol").await.unwrap();
        client
            .find(Locator::Css("input[name=password]"))
            .await
            .unwrap()
            .send_keys("any")
            .await
            .unwrap();
        client
            .find(Locator::Css("button[type=submit]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        // Its consent page (told by its hidden prompt field, not by a submit button, which
        // the sign-in page still has until it is gone), then back to tokenctl's port.
        consent_at_node_oidc_provider(&client).await;
        let done = wait_for(&client, "signed-in").await.text().await.unwrap();
        assert!(done.contains("go back to the terminal"), "{done}");
        client.close().await.unwrap();
    });
    let status = login.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    assert!(status.success(), "{rest}");
    let st = env.run("tokenctl", &["status", "--json"]).code(0).json();
    assert_eq!(st["refreshable"], true, "{st}");
    let refresh_of = |env: &Env| {
        let c = std::fs::read(env.root().join("private/client-cache/op.json")).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&c).unwrap();
        v["refresh_token"]
            .as_str()
            .expect("a refresh token")
            .to_owned()
    };
    let before = refresh_of(&env);
    let first = env
        .run("tokenctl", &["token"])
        .code(0)
        .stdout
        .trim()
        .to_owned();
    let _ = p.issued();
    // Later than its access token lives, for tokenctl: a refresh at the provider.
    let later = (time::OffsetDateTime::now_utc() + time::Duration::hours(2))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    env.set("KEYGATE_TEST_NOW", &later);
    let second = env
        .run("tokenctl", &["token"])
        .code(0)
        .stdout
        .trim()
        .to_owned();
    assert_ne!(first, second, "no refresh");
    assert_eq!(p.issued(), 1, "one refresh at the provider");
    assert_ne!(
        refresh_of(&env),
        before,
        "node-oidc-provider rotates a public client's refresh token"
    );
    // logout revokes the refresh token there: a copy of the cache kept from before is no
    // good afterwards.
    let cache = env.root().join("private/client-cache/op.json");
    let kept = std::fs::read(&cache).unwrap();
    let out = env.run("tokenctl", &["logout"]);
    assert!(
        out.code(0).stderr.contains("revoked the sign-in"),
        "{}",
        out.stderr
    );
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(&cache, kept).unwrap();
        std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let much_later = (time::OffsetDateTime::now_utc() + time::Duration::hours(5))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    env.set("KEYGATE_TEST_NOW", &much_later);
    let r = env.run("tokenctl", &["token"]);
    r.code(1);
    assert!(r.stderr.contains("its sign-in ended"), "{}", r.stderr);
}

/// The device grant at node-oidc-provider: `tokenctl login --device` shows a code, Chromium
/// confirms it on the provider's pages and signs in there, and tokenctl gets the tokens.
#[test]
fn chromium_approves_a_tokenctl_device_login_at_node_oidc_provider() {
    if !have("chromium")
        || !have("chromedriver")
        || !test_support::have_npm_fixture("oidc-provider")
    {
        return;
    }
    let mut env = Env::new();
    let p = crate::client::OidcProvider::start_with(env.root(), "unused-secret", true);
    std::fs::write(
        env.root().join("config.toml"),
        format!(
            "[profiles.op]\nissuer = \"{}\"\nclient_id = \"cli\"\nscopes = [\"openid\"]\n",
            p.issuer
        ),
    )
    .unwrap();
    env.set("KEYGATE_PROFILE", "op");
    let mut login = env
        .cmd("tokenctl")
        .args(["login", "--device", "--timeout", "2m"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::BufRead as _;
    let mut err = std::io::BufReader::new(login.stderr.take().unwrap());
    let mut shown = String::new();
    while !shown.contains("shows the code") {
        let mut line = String::new();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "login ended: {shown}"
        );
        shown.push_str(&line);
    }
    let url = shown
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("{shown}"))
        .to_owned();
    let code = shown.trim().rsplit(' ').next().unwrap().to_owned();
    let browser = Browser::start(&env);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = browser.session(None).await;
        client.goto(&url).await.unwrap();
        let find = |css: &'static str| {
            let client = client.clone();
            async move {
                client
                    .wait()
                    .at_most(Duration::from_secs(10))
                    .for_element(Locator::Css(css))
                    .await
                    .unwrap_or_else(|e| panic!("no {css} ({e})"))
            }
        };
        // Its confirmation page shows the code tokenctl printed.
        let text = page_text(&client).await;
        assert!(
            text.contains(&code),
            "the provider's page shows {code}: {text}"
        );
        find("button[autofocus]").await.click().await.unwrap();
        find("input[name=login]")
            .await
            .send_keys("dave")
            .await
            .unwrap();
        find("input[name=password]")
            .await
            .send_keys("any")
            .await
            .unwrap();
        find("button[type=submit]").await.click().await.unwrap();
        consent_at_node_oidc_provider(&client).await;
        // Its success page, once the consent is in.
        let start = std::time::Instant::now();
        while !page_text(&client).await.contains("successful") {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "no success page: {}",
                page_text(&client).await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        client.close().await.unwrap();
    });
    let status = login.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    assert!(status.success(), "{shown}{rest}");
    let st = env.run("tokenctl", &["status", "--json"]).code(0).json();
    assert_eq!(st["subject"], "dave", "{st}");
    let t = env.run("tokenctl", &["token"]);
    assert_eq!(t.code(0).stdout.trim().split('.').count(), 3, "a JWT");
}

/// Waits for node-oidc-provider's consent page and answers it.
async fn consent_at_node_oidc_provider(client: &Client) {
    client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("input[name=prompt][value=consent]"))
        .await
        .unwrap_or_else(|e| panic!("no consent page ({e})"));
    client
        .find(Locator::Css(
            "form:has(input[name=prompt][value=consent]) button[type=submit]",
        ))
        .await
        .expect("its Continue button")
        .click()
        .await
        .unwrap();
}

/// Fills the form field `id` with `text`.
async fn fill(client: &Client, id: &str, text: &str) {
    let field = wait_for(client, id).await;
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

/// Clicks the submit button of the form with id `form`.
async fn submit(client: &Client, form: &str) {
    client
        .find(Locator::Css(&format!("#{form} button[type=submit]")))
        .await
        .unwrap_or_else(|_| panic!("no submit button in #{form}"))
        .click()
        .await
        .unwrap();
}

#[test]
fn chromium_signs_a_person_in_at_the_portal_with_totp_and_enters_only_their_service() {
    if !have("chromium") || !have("chromedriver") || !have("curl") {
        return;
    }
    let env = Env::new();
    let a = Upstream::tcp();
    let b = Upstream::tcp();
    let addr = local_addr();
    let port = addr.port();
    config(
        &env,
        &format!(
            "[cert]\nnames = [\"localhost\", \"portal.localhost\", \"a.localhost\", \"b.localhost\"]\n\n\
             [server]\nportal_host = \"portal.localhost\"\nlocal_bypass = false\n\n\
             [service.grafana]\nhost = \"a.localhost\"\nupstream = \"{}\"\ngroups = [\"ops\"]\n\
             description = \"Dashboards\"\n\n\
             [service.jupyter]\nhost = \"b.localhost\"\nupstream = \"{}\"\ngroups = [\"research\"]\n",
            a.url, b.url
        ),
    );
    cert(&env);
    let spki = spki_hash(&env.root().join("private/certs/default/current/cert.pem"));
    let added = env
        .run("keygate", &["users", "add", "alice", "--json"])
        .json();
    let temporary = added["temporary_password"].as_str().unwrap().to_owned();
    for g in ["ops", "research"] {
        env.run("keygate", &["groups", "add", g]).code(0);
    }
    env.run("keygate", &["groups", "add-member", "ops", "alice"])
        .code(0);
    let totp = env
        .run("keygate", &["users", "totp", "alice", "--json"])
        .json();
    let secret = totp["secret"].as_str().unwrap().to_owned();
    // Chromium sends *.localhost to the loopback addresses itself, ::1 first.
    let v6 = format!("[::1]:{port}");
    let kg = keygate(&env, addr, &["--listen", &v6]);
    let browser = Browser::start(&env);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = browser.session(Some(&spki)).await;
        let on = |host: &str, p: &str| format!("https://{host}.localhost:{port}{p}");

        // Grafana's host sends her to the portal's sign-in.
        client.goto(&on("a", "/d/home")).await.unwrap();
        wait_for(&client, "password-form").await;
        let url = client.current_url().await.unwrap();
        assert_eq!(url.host_str(), Some("portal.localhost"), "{url}");
        screenshot(&client, "portal-sign-in.png").await;
        fill(&client, "username", "alice").await;
        fill(&client, "password", "wrong password").await;
        submit(&client, "password-form").await;
        let error = wait_for(&client, "error").await.text().await.unwrap();
        assert!(error.contains("not accepted"), "{error}");
        fill(&client, "password", &temporary).await;
        submit(&client, "password-form").await;

        // Her second factor, then her own password.
        wait_for(&client, "code").await;
        screenshot(&client, "portal-totp.png").await;
        fill(&client, "code", &totp_code(&secret, unix_now())).await;
        submit(&client, "step-form").await;
        wait_for(&client, "new_password").await;
        screenshot(&client, "portal-change-password.png").await;
        fill(&client, "new_password", "alice picks a long one").await;
        fill(&client, "new_password_again", "alice picks a long one").await;
        submit(&client, "step-form").await;

        // Her services: Grafana, not Jupyter.
        wait_for(&client, "open-grafana").await;
        assert!(client.find(Locator::Id("open-jupyter")).await.is_err());
        screenshot(&client, "portal-landing.png").await;
        // Her sessions, from the landing page's link.
        wait_for(&client, "sessions").await.click().await.unwrap();
        client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(".sessions button"))
            .await
            .unwrap();
        assert!(page_text(&client).await.contains("(this browser)"));
        screenshot(&client, "portal-sessions.png").await;
        client.back().await.unwrap();
        let open = wait_for(&client, "open-grafana").await;
        open.click().await.unwrap();
        let page = wait_for(&client, "upstream").await;
        assert!(page.is_displayed().await.unwrap());
        let url = client.current_url().await.unwrap();
        assert_eq!(url.host_str(), Some("a.localhost"), "{url}");
        let echo: serde_json::Value = serde_json::from_str(
            &client
                .find(Locator::Id("echo"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            header(&echo, "x-auth-request-user"),
            Some("alice"),
            "{echo:#}"
        );
        assert_eq!(
            header(&echo, "x-auth-request-groups"),
            Some("ops"),
            "{echo:#}"
        );
        assert!(
            !header(&echo, "cookie").unwrap_or("").contains("keygate"),
            "{echo:#}"
        );
        // Grafana's page sees no cookie of keygate's, and the browser keeps one per host.
        let seen = client
            .execute("return document.cookie", vec![])
            .await
            .unwrap();
        assert!(!seen.as_str().unwrap_or("").contains("keygate"), "{seen}");
        let cookies = client.get_all_cookies().await.unwrap();
        let session = cookies
            .iter()
            .find(|c| c.name() == "__Host-keygate_session")
            .unwrap_or_else(|| panic!("no __Host-keygate_session on a.localhost: {cookies:?}"));
        assert_eq!(session.secure(), Some(true));
        assert!(
            session.domain().is_none_or(|d| !d.starts_with('.')),
            "{session:?}"
        );

        // Jupyter is not hers: its host sends her back to the portal, which lists it not.
        client.goto(&on("b", "/lab")).await.unwrap();
        wait_for(&client, "open-grafana").await;
        assert!(b.seen().is_empty(), "jupyter's upstream was reached");

        // Taken out of ops, her next request to Grafana is refused.
        env.run("keygate", &["groups", "remove-member", "ops", "alice"])
            .code(0);
        client.goto(&on("a", "/d/home")).await.unwrap();
        let error = wait_for(&client, "error").await.text().await.unwrap();
        assert!(error.contains("not in a group"), "{error}");
        screenshot(&client, "portal-no-access.png").await;
        client.close().await.unwrap();
    });
    assert!(
        !kg.output().contains(&temporary),
        "a password reached the log"
    );
}
