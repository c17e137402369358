//! Issue 14 item 7, the secret-mode traps: reading a secret never changes it, and a mode that
//! lets the group or others at it is reported where it is read. `keygate check` fails the
//! item and writes nothing; `keygate serve` serves a read-only 0644 secret (the Kubernetes
//! secret-volume default) with a warning; `certctl doctor` reports the token files and
//! `--fix` narrows them, the one place that changes an existing file's mode; an `ensure`
//! with nothing to change succeeds on a read-only home.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use test_support::proxy::OtherUser;
use test_support::server::*;
use test_support::{Env, NOBODY, Proc, bin, can_be_nobody, have, stat_mode};

fn chmod(path: &Path, bits: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(bits)).unwrap();
}

/// `keygate check` chmodded a 0644 pepper and key to 0600 and printed ok: a check must write
/// nothing, and an exposed secret fails its item with the fix.
#[test]
fn check_reports_a_0644_pepper_and_key_and_leaves_them_0644() {
    let env = Env::new();
    token(&env, "ci", &[]);
    let pepper = env.root().join("private/pepper");
    chmod(&pepper, 0o644);

    let run = env.run("keygate", &["check", "--plain-http"]);
    run.code(1);
    let p = pepper.display();
    assert!(
        run.stdout.contains(&format!(
            "FAIL  token store: '{p}' has mode 0644: its group or others can read it\n      \
             hint: run `chmod 600 '{p}'`"
        )),
        "{}",
        run.stdout
    );
    assert_eq!(stat_mode(&pepper), "644", "check changed the pepper's mode");

    // The certificate's key, read through the same rule.
    chmod(&pepper, 0o600);
    cert(&env);
    let key =
        std::fs::canonicalize(env.root().join("private/certs/default/current/key.pem")).unwrap();
    chmod(&key, 0o644);
    let run = env.run("keygate", &["check"]);
    run.code(1);
    let k = key.display();
    assert!(
        run.stdout.contains(&format!(
            "FAIL  certificate 'default': '{k}' has mode 0644: its group or others can read it\n      \
             hint: run `chmod 600 '{k}'`"
        )),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("ok    token store:"), "{}", run.stdout);
    assert_eq!(stat_mode(&key), "644", "check changed the key's mode");
}

/// A Kubernetes secret volume mounts root-owned 0644 files, and keygate runs as another uid:
/// reading fchmodded first, failed with EPERM, and nothing could be served. The pepper and
/// store are served, a valid token gets 200, and each exposed file is named once in a
/// warning with its mode and the fix; the files are left as they are.
#[test]
fn serve_as_another_user_serves_root_owned_0644_secrets_with_a_warning() {
    if !can_be_nobody() || !have("curl") {
        return;
    }
    let env = Env::new();
    let good = token(&env, "ci", &[]);
    let pepper = env.root().join("private/pepper");
    let store = env.root().join("state/tokens.json");
    // Root's files, readable by everyone, as a secret volume lays them out.
    for dir in [
        env.root(),
        &env.root().join("private"),
        &env.root().join("state"),
    ] {
        chmod(dir, 0o755);
    }
    chmod(&pepper, 0o644);
    chmod(&store, 0o644);

    let other = OtherUser::new(NOBODY);
    let addr = local_addr();
    let mut cmd = other.command(other.bin("keygate"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", env.root())
        .env("KEYGATE_HOME", env.root())
        .stdin(Stdio::null())
        .args(["serve", "--plain-http", "--listen", &addr.to_string()]);
    let log = other.home().join("keygate.log");
    let mut kg = Proc::spawn("keygate", cmd, &log);
    kg.wait_port(addr);

    for _ in 0..3 {
        let ok = curl(&["-H", &bearer(&good), &url(addr, "/auth")]);
        assert_eq!(ok.status, 200, "{}", kg.output());
    }
    let bad = curl(&[
        "-H",
        &bearer(&good.replace("kg_", "kg_x")),
        &url(addr, "/auth"),
    ]);
    assert_eq!(bad.status, 401);

    let out = kg.output();
    for file in [&pepper, &store] {
        let warnings: Vec<serde_json::Value> = out
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| {
                v["event"] == "secret_exposed" && v["secret_file"] == file.to_str().unwrap()
            })
            .collect();
        assert_eq!(
            warnings.len(),
            1,
            "one warning for {}:\n{out}",
            file.display()
        );
        let w = &warnings[0];
        assert_eq!(w["level"], "warn");
        assert_eq!(w["mode"], "0644");
        let hint = w["hint"].as_str().unwrap();
        assert!(
            hint.contains(&format!("chmod 600 '{}'", file.display()))
                && hint.contains("defaultMode: 0400"),
            "{hint}"
        );
        assert_eq!(stat_mode(file), "644");
    }
}

/// The certificate's key follows the same rule: `serve` over TLS used to chmod a 0644 key
/// silently; it serves it, warns once naming it, and leaves its mode alone.
#[test]
fn serve_warns_about_a_0644_key_and_leaves_it() {
    if !have("curl") {
        return;
    }
    let env = Env::new();
    let ca = cert(&env);
    let alice = token(&env, "alice", &[]);
    let key =
        std::fs::canonicalize(env.root().join("private/certs/default/current/key.pem")).unwrap();
    chmod(&key, 0o644);
    let addr = local_addr();
    let kg = keygate(&env, addr, &[]);
    let r = curl(&[
        "--cacert",
        ca.to_str().unwrap(),
        "-H",
        &bearer(&alice),
        &format!("https://localhost:{}/auth", addr.port()),
    ]);
    assert_eq!(r.status, 200, "{}", kg.output());
    let out = kg.output();
    let warnings: Vec<serde_json::Value> = out
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "secret_exposed")
        .collect();
    assert_eq!(warnings.len(), 1, "{out}");
    assert_eq!(warnings[0]["secret_file"], key.to_str().unwrap());
    assert_eq!(warnings[0]["mode"], "0644");
    assert_eq!(stat_mode(&key), "644");
}

/// `certctl doctor` ignored a 0644 pepper, store and client token file: each is a problem
/// with its fix, and `doctor --fix` makes them 0600.
#[test]
fn doctor_reports_0644_token_files_and_fix_makes_them_0600() {
    let env = Env::new();
    env.run("tokenctl", &["ensure", "--name", "app"]).code(0);
    let files = [
        env.root().join("private/pepper"),
        env.root().join("state/tokens.json"),
        env.root().join("private/client/app.token"),
    ];
    for f in &files {
        chmod(f, 0o644);
    }

    let run = env.run("certctl", &["doctor"]);
    run.code(1);
    for f in &files {
        let want = format!(
            "PROBLEM  mode of {}: 0644: a secret must be 0600; run `chmod 600 '{}'`",
            f.display(),
            f.display()
        );
        assert!(run.stdout.contains(&want), "{want}\n{}", run.stdout);
        assert_eq!(stat_mode(f), "644", "doctor without --fix changed a mode");
    }

    let fixed = env.run("certctl", &["doctor", "--fix"]);
    fixed.code(0);
    for f in &files {
        let want = format!("fixed    mode of {}: 0644 changed to 0600", f.display());
        assert!(fixed.stdout.contains(&want), "{want}\n{}", fixed.stdout);
        assert_eq!(stat_mode(f), "600");
    }
    env.run("certctl", &["doctor"]).code(0);
    // And the token still works after the fix.
    env.run("tokenctl", &["ensure", "--name", "app"]).code(0);
}

/// `certctl ensure` and `tokenctl ensure` with nothing to change exited 1 on a read-only
/// home (the lock file was opened for writing). They exit 0 when nothing needs writing; the
/// home is a read-only bind mount in a mount namespace of the test's own.
#[test]
fn ensure_with_nothing_to_change_succeeds_on_a_read_only_home() {
    if !have("unshare") {
        return;
    }
    let env = Env::new();
    env.run("certctl", &["ensure", "--method", "local-ca"])
        .code(0);
    env.run("tokenctl", &["ensure", "--name", "app"]).code(0);
    // Exposed modes are reported, not fixed: a pepper others can read must not need a write.
    chmod(&env.root().join("private/pepper"), 0o644);

    let script = "mount --bind -o ro \"$KEYGATE_HOME\" \"$KEYGATE_HOME\" || exit 90\n\
        if touch \"$KEYGATE_HOME/probe\" 2>/dev/null; then exit 91; fi\n\
        \"$KG_TOKENCTL\" ensure --name app || exit 92\n\
        \"$KG_CERTCTL\" ensure --method local-ca || exit 93\n\
        \"$KG_TOKENCTL\" list >/dev/null || exit 94\n\
        \"$KG_TOKENCTL\" create --name new 2>&1 && exit 95\n\
        exit 0\n";
    let out = Command::new("unshare")
        .args(["--mount", "--", "sh", "-c", script])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", env.root())
        .env("KEYGATE_HOME", env.root())
        .env("KG_TOKENCTL", bin("tokenctl"))
        .env("KG_CERTCTL", bin("certctl"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!(
            "{}\n",
            env.root().join("private/client/app.token").display()
        )),
        "{stdout}"
    );
    assert!(stdout.contains("nothing changed"), "{stdout}");
    // The exposure is said once per command, on stderr, and nothing was changed.
    assert!(
        stderr.contains("warning: '") && stderr.contains("/private/pepper' has mode 0644"),
        "{stderr}"
    );
    // A change that does need a write fails, naming the read-only file system.
    assert!(stdout.contains("Read-only file system"), "{stdout}");
    assert_eq!(stat_mode(&env.root().join("private/pepper")), "644");
}
