//! certctl end to end: the cascade against real mkcert, the fake tailscale and the local CA;
//! every certificate checked with openssl, served with `openssl s_server`, fetched with curl.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use test_support::server::free_port;
use test_support::{Env, Run, have, mkcert_caroot, stat_mode};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn current(env: &Env, id: &str) -> PathBuf {
    env.root().join("private/certs").join(id).join("current")
}

/// Runs openssl with `args`; returns (success, stdout + stderr).
fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn text_of(cert: &Path) -> String {
    let (ok, text) = openssl(&["x509", "-noout", "-text", "-in", cert.to_str().unwrap()]);
    assert!(ok, "{text}");
    text
}

fn verify(ca: &Path, cert: &Path) {
    let (ok, text) = openssl(&[
        "verify",
        "-CAfile",
        ca.to_str().unwrap(),
        cert.to_str().unwrap(),
    ]);
    assert!(ok, "openssl verify failed: {text}");
}

fn generation_number(env: &Env, id: &str) -> String {
    std::fs::read_link(current(env, id))
        .unwrap()
        .display()
        .to_string()
}

/// An environment where PATH has the real tools but no tailscale, unless a test adds it.
fn env() -> Env {
    Env::new()
}

#[test]
fn local_ca_issues_san_correct_certs_that_openssl_verifies() {
    if !have("openssl") {
        return;
    }
    let env = env();
    let run = env.run("certctl", &["ensure", "--method", "local-ca", "--json"]);
    run.code(0);
    let json = run.json();
    assert_eq!(json["action"], "issued");
    assert_eq!(json["method"], "local-ca");
    let dir = current(&env, "default");
    verify(&dir.join("ca.pem"), &dir.join("cert.pem"));

    let leaf = text_of(&dir.join("cert.pem"));
    for want in [
        "DNS:localhost",
        "IP Address:127.0.0.1",
        "IP Address:0:0:0:0:0:0:0:1",
        "TLS Web Server Authentication",
        "CA:FALSE",
    ] {
        assert!(leaf.contains(want), "leaf lacks {want}:\n{leaf}");
    }
    assert!(
        !leaf.contains("DNS:127.0.0.1"),
        "an IP written as a DNS SAN breaks browsers"
    );
    // Lifetime within limits: the default 90 days (plus the 5-minute backdate), never 825+.
    let (ok, dates) = openssl(&[
        "x509",
        "-noout",
        "-checkend",
        &(91 * 86_400).to_string(),
        "-in",
        dir.join("cert.pem").to_str().unwrap(),
    ]);
    assert!(!ok, "the leaf outlives 91 days: {dates}");
    let (ok, _) = openssl(&[
        "x509",
        "-noout",
        "-checkend",
        &(89 * 86_400).to_string(),
        "-in",
        dir.join("cert.pem").to_str().unwrap(),
    ]);
    assert!(ok, "the leaf expires before 89 days");

    let ca = text_of(&dir.join("ca.pem"));
    for want in [
        "X509v3 Name Constraints: critical",
        "Permitted:",
        "DNS:localhost",
        "DNS:test",
        "DNS:internal",
        "IP:127.0.0.0/255.0.0.0",
        "CA:TRUE",
        "Certificate Sign, CRL Sign",
    ] {
        assert!(ca.contains(want), "CA lacks {want}:\n{ca}");
    }
    // Modes as stat sees them: key 0600, public files 0644, private directories 0700.
    assert_eq!(stat_mode(&dir.join("key.pem")), "600");
    for public in ["cert.pem", "chain.pem", "fullchain.pem", "ca.pem"] {
        assert_eq!(stat_mode(&dir.join(public)), "644", "{public}");
    }
    assert_eq!(stat_mode(&env.root().join("private")), "700");
    // The key is PKCS#8 whatever the source.
    assert!(
        std::fs::read_to_string(dir.join("key.pem"))
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );
}

#[test]
fn every_key_type_and_lifetime_verifies_with_openssl() {
    if !have("openssl") {
        return;
    }
    let env = env();
    for (key, days, marker) in [
        ("ecdsa-p384", "30", "NIST CURVE: P-384"),
        ("ed25519", "7", "ED25519"),
        ("rsa-2048", "90", "Public-Key: (2048 bit)"),
        ("rsa-3072", "825", "Public-Key: (3072 bit)"),
    ] {
        let id = format!("k-{key}");
        env.run(
            "certctl",
            &[
                "issue",
                "--method",
                "local-ca",
                "--id",
                &id,
                "--key",
                key,
                "--days",
                days,
                "localhost",
                "127.0.0.1",
            ],
        )
        .code(0);
        let dir = current(&env, &id);
        verify(&dir.join("ca.pem"), &dir.join("cert.pem"));
        let text = text_of(&dir.join("cert.pem"));
        assert!(text.contains(marker), "{key}: {text}");
        let secs = days.parse::<i64>().unwrap() * 86_400;
        let cert = dir.join("cert.pem");
        assert!(
            !openssl(&[
                "x509",
                "-noout",
                "-checkend",
                &(secs + 3600).to_string(),
                "-in",
                cert.to_str().unwrap()
            ])
            .0,
            "{key} outlives {days} days"
        );
        assert!(
            openssl(&[
                "x509",
                "-noout",
                "-checkend",
                &(secs - 3600).to_string(),
                "-in",
                cert.to_str().unwrap()
            ])
            .0,
            "{key} ends before {days} days"
        );
        // openssl reads our PKCS#8 key, and it is the certificate's key.
        let (ok, pubkey) = openssl(&[
            "pkey",
            "-pubout",
            "-in",
            dir.join("key.pem").to_str().unwrap(),
        ]);
        assert!(ok, "{key}: {pubkey}");
        assert_eq!(
            pubkey,
            openssl(&["x509", "-noout", "-pubkey", "-in", cert.to_str().unwrap()]).1,
            "{key}"
        );
    }
    // Over Apple's limit, or zero: a usage error, nothing issued.
    for days in ["826", "0"] {
        let run = env.run(
            "certctl",
            &[
                "issue", "--method", "local-ca", "--id", "toolong", "--days", days,
            ],
        );
        run.code(2);
        assert!(
            run.stderr
                .starts_with("error: invalid value for 'cert.days' from flag --days"),
            "{}",
            run.stderr
        );
    }
    assert!(!env.root().join("private/certs/toolong").exists());
}

#[test]
fn the_local_ca_key_is_private_and_the_ca_is_created_once() {
    let env = env();
    env.run("certctl", &["ensure", "--method", "local-ca"])
        .code(0);
    let ca_dir = env.root().join("private/ca/current");
    assert_eq!(stat_mode(&ca_dir.join("ca-key.pem")), "600");
    assert_eq!(stat_mode(&ca_dir.join("ca.pem")), "644");
    let ca = std::fs::read(ca_dir.join("ca.pem")).unwrap();
    env.run(
        "certctl",
        &["issue", "--method", "local-ca", "--id", "second"],
    )
    .code(0);
    assert_eq!(
        std::fs::read(ca_dir.join("ca.pem")).unwrap(),
        ca,
        "the CA must not be re-created"
    );
    assert_eq!(
        std::fs::read(current(&env, "second").join("ca.pem")).unwrap(),
        ca
    );
}

#[test]
fn every_issue_gets_a_distinct_serial() {
    let env = env();
    let mut serials = std::collections::BTreeSet::new();
    for _ in 0..100 {
        let run = env.run(
            "certctl",
            &["issue", "--method", "local-ca", "--json", "localhost"],
        );
        run.code(0);
        serials.insert(run.json()["serial"].as_str().unwrap().to_owned());
    }
    assert_eq!(serials.len(), 100);
}

#[test]
fn a_name_outside_the_constraints_is_refused_and_nothing_is_written() {
    let env = env();
    let run = env.run(
        "certctl",
        &["ensure", "--method", "local-ca", "example.com"],
    );
    run.code(2);
    assert_eq!(
        run.stderr.lines().next().unwrap(),
        "error: name 'example.com' is outside the local CA's name constraints (widen them with cert.ca_extra_names)"
    );
    assert!(run.stderr.contains("hint: ") && run.stderr.contains("cert.ca_extra_names"));
    assert!(
        !env.root().join("private").exists(),
        "a refusal must write nothing, not even the CA"
    );
}

#[test]
fn bad_names_are_refused_with_the_reason() {
    let env = env();
    for (name, reason) in [
        ("foo bar", "contains whitespace"),
        ("1.2.3.4.5", ""),
        ("-bad.test", ""),
        ("https://x.test", ""),
    ] {
        let run = env.run("certctl", &["ensure", "--", name]);
        run.code(2);
        assert!(
            run.stderr
                .starts_with(&format!("error: invalid name '{name}'")),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains(reason));
        assert!(run.stderr.contains("\nhint: "), "{}", run.stderr);
    }
    assert!(!env.root().join("private").exists());
}

#[test]
fn a_dry_run_explains_every_tier_and_writes_nothing() {
    let env = env();
    let run = env.run("certctl", &["ensure", "--dry-run", "--json"]);
    run.code(0);
    let json = run.json();
    assert_eq!(json["action"], "would-issue");
    assert_eq!(json["method"], "local-ca");
    let tiers = json["tiers"].as_array().unwrap();
    let reason = |m: &str| {
        tiers.iter().find(|t| t["method"] == m).unwrap()["reason"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(reason("tailscale"), "not on PATH");
    assert!(reason("mkcert").contains("has no rootCA.pem") || reason("mkcert") == "not on PATH");
    assert_eq!(
        std::fs::read_dir(env.root()).unwrap().count(),
        0,
        "a dry run wrote something"
    );
}

#[test]
fn ensure_is_idempotent() {
    let env = env();
    env.run("certctl", &["ensure"]).code(0);
    let first = generation_number(&env, "default");
    let run = env.run("certctl", &["ensure"]);
    run.code(0);
    assert!(run.stdout.contains("is up to date"), "{}", run.stdout);
    assert!(run.stdout.contains("nothing changed"));
    assert_eq!(generation_number(&env, "default"), first);
    assert_eq!(
        env.run("certctl", &["ensure", "--json"]).json()["action"],
        "unchanged"
    );
    // `issue` always publishes a new generation.
    env.run("certctl", &["issue"]).code(0);
    assert_ne!(generation_number(&env, "default"), first);
}

#[test]
fn a_second_run_while_the_lock_is_held_exits_75() {
    let env = env();
    env.run("certctl", &["ensure"]).code(0);
    let lock = env.root().join("state/certs.lock");
    // Hold the same flock(2) lock certctl takes, from this process.
    let holder = std::fs::File::open(&lock).unwrap();
    holder.lock().unwrap();
    let run = env.run("certctl", &["issue"]);
    run.code(75);
    assert_eq!(
        run.stderr.lines().next().unwrap(),
        format!(
            "error: another keygate process holds the lock '{}'",
            lock.display()
        )
    );
    let waited = env.run("certctl", &["issue", "--wait", "1"]);
    waited.code(75);
    assert!(
        waited
            .stderr
            .starts_with("error: gave up waiting 1 s for the lock"),
        "{}",
        waited.stderr
    );
    let release = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(500));
        drop(holder);
    });
    env.run("certctl", &["issue", "--wait", "10"]).code(0);
    release.join().unwrap();
}

#[test]
fn auto_chooses_mkcert_when_its_ca_can_sign() {
    if !have("mkcert") || !have("openssl") {
        return;
    }
    let mut env = env();
    let caroot = mkcert_caroot(&env);
    env.set("CAROOT", &caroot);
    let run = env.run("certctl", &["ensure", "--json"]);
    run.code(0);
    let json = run.json();
    assert_eq!(json["method"], "mkcert", "{json}");
    assert!(json["why"].as_str().unwrap().contains("mkcert"));
    let dir = current(&env, "default");
    verify(&caroot.join("rootCA.pem"), &dir.join("cert.pem"));
    assert_eq!(
        std::fs::read(dir.join("ca.pem")).unwrap(),
        std::fs::read(caroot.join("rootCA.pem")).unwrap()
    );
    assert_eq!(stat_mode(&dir.join("key.pem")), "600");
    let leaf = text_of(&dir.join("cert.pem"));
    assert!(
        leaf.contains("IP Address:127.0.0.1") && leaf.contains("ASN1 OID: prime256v1"),
        "{leaf}"
    );

    // Without the CA key mkcert cannot sign: the cascade says so and falls through.
    std::fs::remove_file(caroot.join("rootCA-key.pem")).unwrap();
    let run = env.run("certctl", &["issue", "--dry-run", "--json"]);
    let tiers = run.json()["tiers"].clone();
    let mk = tiers
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["method"] == "mkcert")
        .unwrap()
        .clone();
    assert_eq!(mk["available"], false);
    assert_eq!(
        mk["reason"],
        format!(
            "CAROOT '{}' has no rootCA-key.pem, so mkcert cannot sign",
            caroot.display()
        )
    );
}

/// A wrapper around the real mkcert that always certifies the wrong name: its output must
/// fail verification and never become live.
#[test]
fn a_certificate_that_fails_verification_never_goes_live() {
    if !have("mkcert") {
        return;
    }
    let mut env = env();
    let caroot = mkcert_caroot(&env);
    env.set("CAROOT", &caroot);
    env.run("certctl", &["ensure", "--method", "mkcert"])
        .code(0);
    let before = generation_number(&env, "default");
    let cert_before = std::fs::read(current(&env, "default").join("cert.pem")).unwrap();

    let bin = env.root().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let real = which("mkcert");
    std::fs::write(
        bin.join("mkcert"),
        format!("#!/bin/sh\nargs=\"\"\nfor a in \"$@\"; do case \"$a\" in localhost) a=wrong.test;; esac; args=\"$args $a\"; done\nexec {} $args\n", real.display()),
    )
    .unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut std::fs::metadata(bin.join("mkcert")).unwrap().permissions(),
        0o755,
    );
    Command::new("chmod")
        .arg("755")
        .arg(bin.join("mkcert"))
        .status()
        .unwrap();
    env.set(
        "PATH",
        format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
    );
    let run = env.run("certctl", &["issue", "--method", "mkcert"]);
    run.code(1);
    assert!(
        run.stderr
            .starts_with("error: mkcert produced a certificate that fails verification"),
        "{}",
        run.stderr
    );
    assert_eq!(generation_number(&env, "default"), before);
    assert_eq!(
        std::fs::read(current(&env, "default").join("cert.pem")).unwrap(),
        cert_before
    );
}

fn which(tool: &str) -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
        .unwrap()
}

#[test]
fn an_unsafe_target_directory_leaves_the_old_generation_live() {
    let env = env();
    env.run("certctl", &["ensure"]).code(0);
    let before = generation_number(&env, "default");
    let dir = env.root().join("private/certs/default");
    Command::new("chmod")
        .arg("0777")
        .arg(&dir)
        .status()
        .unwrap();
    let run = env.run("certctl", &["issue"]);
    run.code(1);
    assert!(
        run.stderr.contains("world-writable without the sticky bit"),
        "{}",
        run.stderr
    );
    Command::new("chmod")
        .arg("0700")
        .arg(&dir)
        .status()
        .unwrap();
    assert_eq!(generation_number(&env, "default"), before);
    env.run("certctl", &["ensure"]).code(0);
    assert_eq!(
        generation_number(&env, "default"),
        before,
        "the old generation is still fine"
    );
}

#[test]
fn damage_is_reported_by_inspect_and_repaired_by_ensure() {
    let env = env();
    env.run("certctl", &["ensure"]).code(0);
    let gen_dir = std::fs::canonicalize(current(&env, "default")).unwrap();

    // A key of another certificate: inspect names the mismatch, ensure replaces the pair.
    let other = Env::new();
    other.run("certctl", &["ensure"]).code(0);
    std::fs::copy(
        current(&other, "default").join("key.pem"),
        gen_dir.join("key.pem"),
    )
    .unwrap();
    let run = env.run("certctl", &["inspect", "--id", "default", "--json"]);
    run.code(1);
    let kinds: Vec<String> = run.json()["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["check"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds, ["key_mismatch"]);
    let fixed = env.run("certctl", &["ensure", "--json"]);
    fixed.code(0);
    assert_eq!(fixed.json()["action"], "issued");
    assert!(
        fixed.json()["why"].as_str().unwrap().contains("key"),
        "{}",
        fixed.stdout
    );
    env.run("certctl", &["inspect", "--id", "default"]).code(0);

    // A truncated certificate: inspect fails naming the file, ensure replaces it.
    let gen_dir = std::fs::canonicalize(current(&env, "default")).unwrap();
    let cert = std::fs::read(gen_dir.join("fullchain.pem")).unwrap();
    std::fs::write(gen_dir.join("fullchain.pem"), &cert[..cert.len() / 2]).unwrap();
    std::fs::write(gen_dir.join("cert.pem"), &cert[..cert.len() / 3]).unwrap();
    let run = env.run("certctl", &["inspect", "--id", "default"]);
    run.code(1);
    assert!(
        run.stderr.starts_with(&format!(
            "error: cannot inspect '{}",
            gen_dir.join("fullchain.pem").display()
        )),
        "{}",
        run.stderr
    );
    env.run("certctl", &["ensure"]).code(0);
    env.run("certctl", &["inspect", "--id", "default"]).code(0);

    // A key left readable by others is a problem inspect reports.
    let key = current(&env, "default").join("key.pem");
    Command::new("chmod")
        .arg("0644")
        .arg(&key)
        .status()
        .unwrap();
    let run = env.run("certctl", &["inspect", "--id", "default"]);
    run.code(1);
    assert!(run.stdout.contains("0644"), "{}", run.stdout);
}

/// The fake tailscale of fixtures/, following the real CLI contract.
fn with_fake_tailscale(env: &mut Env, mode: &str) -> PathBuf {
    let state = env.root().join("fake-ts");
    std::fs::create_dir_all(&state).unwrap();
    env.set("FAKE_TS_STATE", &state)
        .set("FAKE_TS_MODE", mode)
        .set("FAKE_TS_CHAIN", "1");
    env.set(
        "PATH",
        format!(
            "{}:{}",
            repo().join("fixtures/tailscale").display(),
            std::env::var("PATH").unwrap()
        ),
    );
    state
}

#[test]
fn tailscale_with_https_is_chosen_and_a_local_cert_is_added() {
    if !have("openssl") {
        return;
    }
    let mut env = env();
    let state = with_fake_tailscale(&mut env, "running");
    let run = env.run("certctl", &["ensure", "--json"]);
    run.code(0);
    let json = run.json();
    assert_eq!(json["method"], "tailscale");
    assert_eq!(json["tailnet"]["domain"], "laptop.tail1234.ts.net");
    assert!(
        json["notes"][0]
            .as_str()
            .unwrap()
            .contains("certificate transparency")
    );
    let dir = current(&env, "default");
    // The tailnet certificate covers only the node name, and verifies to the fake CA.
    let ts = text_of(&dir.join("tailnet-fullchain.pem"));
    assert!(ts.contains("DNS:laptop.tail1234.ts.net") && !ts.contains("localhost"));
    let (ok, out) = openssl(&[
        "verify",
        "-CAfile",
        state.join("ca/ca.crt").to_str().unwrap(),
        "-untrusted",
        dir.join("tailnet-fullchain.pem").to_str().unwrap(),
        dir.join("tailnet-fullchain.pem").to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    // tailscale wrote SEC1; we publish PKCS#8, 0600.
    assert!(
        std::fs::read_to_string(dir.join("tailnet-key.pem"))
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );
    assert_eq!(stat_mode(&dir.join("tailnet-key.pem")), "600");
    // The local names get their own certificate in the same generation.
    let local = text_of(&dir.join("cert.pem"));
    assert!(local.contains("DNS:localhost") && local.contains("IP Address:127.0.0.1"));
    verify(&dir.join("ca.pem"), &dir.join("cert.pem"));
    // --min-validity was passed, so cron gets a fresh cert instead of tailscale's cache.
    let calls = std::fs::read_to_string(state.join("calls.log")).unwrap();
    assert!(
        calls
            .lines()
            .any(|l| l.contains("cert") && l.contains("--min-validity") && l.contains("720h")),
        "{calls}"
    );
    // Idempotent with tailscale too.
    assert_eq!(
        env.run("certctl", &["ensure", "--json"]).json()["action"],
        "unchanged"
    );
}

#[test]
fn tailscale_without_https_or_not_running_falls_through_with_the_reason() {
    for (mode, reason) in [
        (
            "https-off",
            "HTTPS certificates are off for this tailnet (CertDomains is null)",
        ),
        ("stopped", "the tailscale backend is Stopped, not Running"),
    ] {
        let mut env = env();
        with_fake_tailscale(&mut env, mode);
        let run = env.run("certctl", &["ensure", "--dry-run", "--json"]);
        run.code(0);
        let json = run.json();
        assert_eq!(json["method"], "local-ca", "{mode}");
        let ts = json["tiers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["method"] == "tailscale")
            .unwrap()
            .clone();
        assert_eq!(ts["reason"], reason, "{mode}");
        // Asked for explicitly, it is an error with the reason and a hint.
        let run = env.run("certctl", &["ensure", "--method", "tailscale"]);
        run.code(1);
        assert_eq!(
            run.stderr.lines().next().unwrap(),
            format!("error: tailscale is not available: {reason}")
        );
        assert!(run.stderr.contains("hint: "));
    }
}

#[test]
fn tailscale_access_denied_names_the_fix() {
    let mut env = env();
    with_fake_tailscale(&mut env, "denied");
    let run = env.run("certctl", &["ensure"]);
    run.code(1);
    assert_eq!(
        run.stderr.lines().next().unwrap(),
        "error: tailscale cert failed: Access denied: cert access denied"
    );
    assert!(
        run.stderr.contains("TS_PERMIT_CERT_UID") && run.stderr.contains("--operator"),
        "{}",
        run.stderr
    );
    assert!(
        !env.root().join("private/certs").exists(),
        "nothing may be published"
    );
}

/// The published files, served by a real TLS server, check out with openssl and curl.
#[test]
fn the_published_files_serve_a_verifiable_tls_endpoint() {
    if !have("openssl") || !have("curl") {
        return;
    }
    let env = env();
    env.run("certctl", &["ensure"]).code(0);
    let dir = current(&env, "default");
    let port = free_port();
    let mut server = Command::new("openssl")
        .args(["s_server", "-quiet", "-www", "-accept", &port.to_string()])
        .arg("-cert")
        .arg(dir.join("cert.pem"))
        .arg("-cert_chain")
        .arg(dir.join("chain.pem"))
        .arg("-key")
        .arg(dir.join("key.pem"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_port(port);
    for host in ["localhost", "127.0.0.1", "[::1]"] {
        if host == "[::1]" && std::net::TcpStream::connect(("::1", port)).is_err() {
            continue; // s_server may bind IPv4 only
        }
        let out = Command::new("curl")
            .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
            .arg(dir.join("ca.pem"))
            .arg(format!("https://{host}:{port}/"))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "200",
            "{host}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-verify_return_error",
            "-verify_ip",
            "127.0.0.1",
            "-CAfile",
        ])
        .arg(dir.join("ca.pem"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Verify return code: 0 (ok)"), "{text}");
    // certctl inspect HOST:PORT shows what is actually served.
    let run = env.run(
        "certctl",
        &["inspect", &format!("127.0.0.1:{port}"), "--json"],
    );
    let served = run.json();
    let published = env
        .run("certctl", &["inspect", "--id", "default", "--json"])
        .json();
    assert_eq!(served["leaf"]["serial"], published["leaf"]["serial"]);
    assert_eq!(
        served["chain"].as_array().unwrap().len(),
        1,
        "the CA is served as the chain"
    );
    server.kill().unwrap();
    server.wait().unwrap();
}

fn wait_for_port(port: u16) {
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    panic!("nothing listens on {port}");
}

#[test]
fn ca_export_and_trust_name_the_ca_file() {
    let env = env();
    env.run("certctl", &["ensure", "--method", "local-ca"])
        .code(0);
    let export = env.run("certctl", &["ca", "export"]);
    export.code(0);
    assert!(export.stdout.starts_with("-----BEGIN CERTIFICATE-----"));
    assert_eq!(
        export.stdout,
        std::fs::read_to_string(current(&env, "default").join("ca.pem")).unwrap()
    );
    let trust = env.run("certctl", &["trust"]);
    trust.code(0);
    for want in [
        "update-ca-certificates",
        "update-ca-trust",
        "security add-trusted-cert",
        "certutil -d \"sql:",
    ] {
        assert!(trust.stdout.contains(want), "{want}");
    }
    let json = env.run("certctl", &["trust", "--json"]).json();
    assert_eq!(json["systems"].as_array().unwrap().len(), 4);
    let show = env.run("certctl", &["ca", "show", "--json"]);
    show.code(0);
    assert!(
        show.json()["ca"]["subject"]
            .as_str()
            .unwrap()
            .contains("keygate local CA")
    );
    let _: &Run = &show;
}

/// Issue 14: with mkcert chosen, `trust` and `ca export` without `--id` failed ("keygate's
/// local CA has not been created yet"), and `trust --id default` installed mkcert's root
/// under keygate's CA name. They now follow the served certificate's CA, and point mkcert
/// users at `mkcert -install`.
#[test]
fn trust_and_export_follow_the_served_certificates_ca_for_mkcert() {
    if !have("mkcert") {
        return;
    }
    let mut env = env();
    let caroot = mkcert_caroot(&env);
    env.set("CAROOT", &caroot);
    env.run("certctl", &["ensure", "--method", "mkcert"])
        .code(0);
    let root = std::fs::read_to_string(caroot.join("rootCA.pem")).unwrap();
    let export = env.run("certctl", &["ca", "export"]);
    export.code(0);
    assert_eq!(export.stdout.trim_end(), root.trim_end());
    for args in [&["trust"][..], &["trust", "--id", "default"][..]] {
        let trust = env.run("certctl", args);
        trust.code(0);
        assert!(
            trust
                .stdout
                .contains(&format!("CAROOT='{}' mkcert -install", caroot.display())),
            "{}",
            trust.stdout
        );
        assert!(
            trust
                .stdout
                .contains("/usr/local/share/ca-certificates/mkcert-rootCA.crt")
                && trust.stdout.contains("-n 'mkcert root CA'")
                && !trust.stdout.contains("keygate-local-ca")
                && !trust.stdout.contains("keygate local CA"),
            "{}",
            trust.stdout
        );
    }
    let json = env.run("certctl", &["trust", "--json"]).json();
    assert_eq!(json["method"], "mkcert");
    assert!(
        json["mkcert_install"]
            .as_str()
            .unwrap()
            .ends_with("mkcert -install")
    );
}

/// Security review: `ca export` printed with `print!`, which panics (exit 101) on a closed
/// pipe.
#[test]
fn ca_export_to_a_closed_pipe_is_not_an_error() {
    let env = env();
    env.run("certctl", &["ensure", "--method", "local-ca"])
        .code(0);
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = env
        .cmd("certctl")
        .args(["ca", "export"])
        .stdout(writer)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Security review: `trust` quoted the path with bare single quotes, so a path containing
/// one injected shell code into the printed commands.
#[test]
fn trust_commands_quote_any_path_safely() {
    let hostile = tempfile::Builder::new()
        .prefix("it's $(id) ")
        .tempdir()
        .unwrap();
    let mut env = env();
    env.set("KEYGATE_HOME", hostile.path());
    env.run("certctl", &["ensure", "--method", "local-ca"])
        .code(0);
    let run = env.run("certctl", &["trust"]);
    run.code(0);
    let line = run
        .stdout
        .lines()
        .find(|l| {
            l.contains("update-ca-certificates") || l.contains("/usr/local/share/ca-certificates")
        })
        .unwrap();
    // Run the printed copy command with `printf` in place of `sudo cp`: the shell must see
    // exactly the CA path as one word.
    let probe = line.replacen("sudo cp ", "printf '%s|' ", 1);
    let out = Command::new("sh").arg("-c").arg(&probe).output().unwrap();
    let words = String::from_utf8_lossy(&out.stdout).into_owned();
    let first = words.split('|').next().unwrap();
    assert!(
        first.starts_with(hostile.path().to_str().unwrap()) && first.ends_with("/ca.pem"),
        "{words}"
    );
    assert!(
        Path::new(first).is_file(),
        "the shell saw a different path: {words}"
    );
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("uid="),
        "the path ran a command"
    );
}

/// Security review: certificate fields reached the terminal raw, so a served certificate
/// could clear the screen or hide the problem lines.
#[test]
fn inspect_escapes_control_characters_from_certificates() {
    if !have("openssl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=legit\x1b[2J\x1b[8mhidden",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // openssl writes the escapes literally unless asked; put a real ESC in via the subject.
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
            "-utf8",
            "-subj",
        ])
        .arg(format!("/CN=legit{}[2J{}[8mhidden", '\u{1b}', '\u{1b}'))
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let env = env();
    let run = env.run("certctl", &["inspect", cert.to_str().unwrap()]);
    assert!(
        !run.stdout.contains('\u{1b}'),
        "raw escape reached the terminal: {:?}",
        run.stdout
    );
    assert!(run.stdout.contains("\\u{1b}[2J"), "{}", run.stdout);
}

/// Security review: `--dry-run` tightened a key's mode (it must write nothing), and a key
/// found readable by others was silently tightened and kept instead of being replaced.
#[test]
fn a_dry_run_changes_no_mode_and_an_exposed_key_is_replaced() {
    let env = env();
    env.run("certctl", &["ensure"]).code(0);
    let key = std::fs::canonicalize(current(&env, "default").join("key.pem")).unwrap();
    Command::new("chmod")
        .arg("0644")
        .arg(&key)
        .status()
        .unwrap();
    let run = env.run("certctl", &["ensure", "--dry-run", "--json"]);
    run.code(0);
    assert_eq!(run.json()["action"], "would-issue");
    assert!(
        run.json()["why"]
            .as_str()
            .unwrap()
            .contains("readable by others")
    );
    assert_eq!(stat_mode(&key), "644", "a dry run must not change anything");
    let run = env.run("certctl", &["ensure", "--json"]);
    assert_eq!(run.json()["action"], "issued");
    assert_eq!(stat_mode(&current(&env, "default").join("key.pem")), "600");
}

/// Security review: mkcert and tailscale wrote keys into a directory made with the umask's
/// mode, in the state directory. It must be private (0700), whatever the umask.
#[test]
fn external_tools_write_into_a_private_scratch_directory() {
    if !have("mkcert") {
        return;
    }
    let mut env = env();
    let caroot = mkcert_caroot(&env);
    env.set("CAROOT", &caroot);
    let bin = env.root().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = env.root().join("scratch.log");
    std::fs::write(
        bin.join("mkcert"),
        format!(
            "#!/bin/sh
for a in \"$@\"; do case \"$prev\" in -cert-file) stat -c '%a %n' \"$(dirname \"$a\")\" >> {log};; esac; prev=\"$a\"; done
exec {real} \"$@\"
",
            log = log.display(),
            real = which("mkcert").display()
        ),
    )
    .unwrap();
    Command::new("chmod")
        .arg("755")
        .arg(bin.join("mkcert"))
        .status()
        .unwrap();
    env.set(
        "PATH",
        format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
    );
    let run = test_support::Run::from(
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "umask 000; exec {} ensure --method mkcert",
                test_support::bin("certctl").display()
            ))
            .env_clear()
            .env(
                "PATH",
                format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
            )
            .env("HOME", env.root())
            .env("KEYGATE_HOME", env.root())
            .env("CAROOT", &caroot)
            .output()
            .unwrap(),
    );
    run.code(0);
    let seen = std::fs::read_to_string(&log).unwrap();
    let (mode, dir) = seen.trim().split_once(' ').unwrap();
    assert_eq!(mode, "700", "{seen}");
    assert!(
        dir.starts_with(env.root().join("private").to_str().unwrap()),
        "{seen}"
    );
    assert!(
        !Path::new(dir).exists(),
        "the scratch directory must be removed"
    );
}

/// Issue 14, item 7: `certctl inspect /dev/zero` read without end and grew to 4 GB. Under a
/// 1 GiB address-space limit (which the unbounded read exceeds), it now stops at the cap
/// with a usage error.
#[test]
fn inspect_reads_a_bounded_amount_of_what_it_is_given() {
    let env = env();
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg("ulimit -v 1048576; exec \"$0\" inspect /dev/zero")
        .arg(test_support::bin("certctl"))
        .env("KEYGATE_HOME", env.root());
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "error: '/dev/zero' is larger than 1048576 bytes, more than a certificate file holds"
        ),
        "{stderr}"
    );
}
