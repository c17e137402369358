//! `tokenctl` through the real binary (issue 5): the store on disk, concurrency, the lifecycle
//! under a test clock, client credentials, secrets kept out of output, errors and `ps`, and
//! bad input. The age commands are in `tokens_age.rs`.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use test_support::{Env, Run, have, stat_mode};

use test_support::tokens::*;

#[test]
fn the_store_is_0600_and_holds_no_plaintext() {
    let env = Env::new();
    let a = create_at(&env, T0, "ci", &["--scope", "deploy"]);
    let out_file = env.root().join("b.token");
    let run = at(
        &env,
        T0,
        &[
            "create",
            "--name",
            "b",
            "--output",
            out_file.to_str().unwrap(),
        ],
    );
    run.code(0);
    assert!(!run.stdout.contains("kg_"), "{}", run.stdout);
    let b = std::fs::read_to_string(&out_file)
        .unwrap()
        .trim()
        .to_owned();
    let ensured = PathBuf::from(at(&env, T0, &["ensure"]).code(0).stdout.trim());
    let c = std::fs::read_to_string(&ensured).unwrap().trim().to_owned();

    assert_eq!(stat_mode(&store_file(&env)), "600");
    assert_eq!(stat_mode(&env.root().join("private/pepper")), "600");
    assert_eq!(stat_mode(&env.root().join("private")), "700");
    assert_eq!(stat_mode(&env.root().join("state")), "700");
    assert_eq!(stat_mode(&out_file), "600");
    assert_eq!(ensured, env.root().join("private/client/default.token"));
    assert_eq!(stat_mode(&ensured), "600");

    // Nothing under the state directory holds a token, its secret part, or the pepper.
    let pepper = std::fs::read_to_string(env.root().join("private/pepper")).unwrap();
    let pepper = pepper.trim();
    assert_eq!(pepper.len(), 64);
    for entry in std::fs::read_dir(env.root().join("state")).unwrap() {
        let path = entry.unwrap().path();
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        assert_no_secret(&path.display().to_string(), &text, &[&a, &b, &c]);
        assert!(
            !text.contains(pepper),
            "{} holds the pepper",
            path.display()
        );
    }
    // ... while it does hold the three entries, by id.
    let store = std::fs::read_to_string(store_file(&env)).unwrap();
    for t in [&a, &b, &c] {
        assert!(store.contains(&t[3..15]), "id of {t} missing");
        verify(&env, T0, t).code(0);
    }
}

#[test]
fn twenty_concurrent_creates_all_land() {
    let env = Env::new();
    let children: Vec<(String, Child)> = (0..20)
        .map(|i| {
            let name = format!("worker-{i:02}");
            let child = env
                .cmd("tokenctl")
                .args(["create", "--name", &name, "--wait", "60"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (name, child)
        })
        .collect();
    let mut tokens = Vec::new();
    for (name, child) in children {
        let run = Run::from(child.wait_with_output().unwrap());
        run.code(0);
        tokens.push((name, run.stdout.trim().to_owned()));
    }
    let list = env.run("tokenctl", &["list", "--json"]);
    list.code(0);
    let rows = list.json();
    let mut names: Vec<&str> = rows["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    let want: Vec<String> = (0..20).map(|i| format!("worker-{i:02}")).collect();
    assert_eq!(names, want, "every create landed exactly once");
    for (name, token) in &tokens {
        let run = verify_stdin(&env, T0, token, &["--json"]);
        run.code(0);
        assert_eq!(run.json()["name"], name.as_str());
    }
}

#[test]
fn expiry_follows_the_clock() {
    let env = Env::new();
    let token = create_at(&env, T0, "short", &["--expires", "1h"]);
    let run = verify(&env, "2026-11-01T12:59:59Z", &token);
    run.code(0);
    assert!(
        run.stdout.contains("valid until 2026-11-01T13:00:00Z"),
        "{}",
        run.stdout
    );
    let run = verify(&env, "2026-11-01T13:00:00Z", &token);
    run.code(1);
    assert!(
        run.stderr.contains("the token has expired"),
        "{}",
        run.stderr
    );
    let list = at(&env, "2026-11-01T13:00:00Z", &["list", "--json"]).json();
    assert_eq!(list["tokens"][0]["state"], "expired");
    assert_eq!(list["tokens"][0]["expires_at"], "2026-11-01T13:00:00Z");
    // An expiry that is not in the future is bad input.
    at(&env, T0, &["create", "--name", "x", "--expires", "0"]).code(2);
    // So is one past the calendar's end, which panicked (exit 101; issue 14, item 7), and
    // nothing is written.
    let run = at(
        &env,
        T0,
        &["create", "--name", "y", "--expires", "3000000d"],
    );
    run.code(2);
    assert!(
        run.stderr
            .contains("error: invalid --expires '3000000d': it ends after the year 9999"),
        "{}",
        run.stderr
    );
    let names: Vec<_> = at(&env, T0, &["list", "--json"]).json()["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(!names.contains(&"y".to_owned()), "{names:?}");
}

#[test]
fn rotate_with_grace_keeps_the_old_token_until_the_end() {
    let env = Env::new();
    let old = create_at(&env, T0, "svc", &["--scope", "read"]);
    let run = at(
        &env,
        T0,
        &["rotate", "--name", "svc", "--grace", "2h", "--json"],
    );
    run.code(0);
    let report = run.json();
    let new = report["token"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert_eq!(report["old_id"], &old[3..15]);
    assert_eq!(report["old_retires_at"], "2026-11-01T14:00:00Z");
    assert_eq!(report["scopes"], serde_json::json!(["read"]));

    // Before the end of the grace period both work; the old one reports its end.
    let run = verify_stdin(&env, "2026-11-01T13:59:59Z", &old, &["--json"]);
    run.code(0);
    assert_eq!(run.json()["expires_at"], "2026-11-01T14:00:00Z");
    verify(&env, "2026-11-01T13:59:59Z", &new).code(0);
    // After it, only the new one.
    let run = verify(&env, "2026-11-01T14:00:00Z", &old);
    run.code(1);
    assert!(run.stderr.contains("expired"), "{}", run.stderr);
    verify(&env, "2026-11-01T14:00:00Z", &new).code(0);

    // The default grace comes from the config (token.default_grace).
    std::fs::write(
        env.root().join("config.toml"),
        "[token]\ndefault_grace = \"10m\"\n",
    )
    .unwrap();
    let report = at(&env, T0, &["rotate", "--name", "svc", "--json"]).json();
    assert_eq!(report["old_retires_at"], "2026-11-01T12:10:00Z");
}

#[test]
fn rotate_with_grace_0_revokes_at_once() {
    let env = Env::new();
    let old = create_at(&env, T0, "svc", &[]);
    let run = at(&env, T0, &["rotate", "--name", "svc", "--grace", "0"]);
    run.code(0);
    let new = run.stdout.trim().to_owned();
    assert!(run.stderr.contains("is revoked"), "{}", run.stderr);
    let run = verify(&env, T0, &old);
    run.code(1);
    assert!(run.stderr.contains("revoked"), "{}", run.stderr);
    verify(&env, T0, &new).code(0);
    // Rotating a name without an active token fails (1); a negative grace is bad input (2).
    at(&env, T0, &["rotate", "--name", "nobody"]).code(1);
    at(&env, T0, &["rotate", "--name", "svc", "--grace", "-1h"]).code(2);
}

#[test]
fn revoke_by_id_and_by_name() {
    let env = Env::new();
    let a = create_at(&env, T0, "a", &[]);
    let b1 = create_at(&env, T0, "b", &[]);
    let b2 = at(&env, T0, &["rotate", "--name", "b", "--grace", "1d"])
        .code(0)
        .stdout
        .trim()
        .to_owned();
    verify(&env, T0, &b1).code(0);

    let run = at(&env, T0, &["revoke", &a[3..15]]);
    run.code(0);
    assert!(run.stdout.contains(&format!("revoked token {}", &a[3..15])));
    let run = verify(&env, T0, &a);
    run.code(1);
    assert!(run.stderr.contains("has been revoked"), "{}", run.stderr);
    // Again: nothing to do, still success.
    let run = at(&env, T0, &["revoke", &a[3..15], "--json"]);
    run.code(0);
    assert_eq!(run.json()["revoked_count"], 0);

    // By name: the active and the retiring token both go at once.
    let run = at(&env, T0, &["revoke", "--name", "b", "--json"]);
    run.code(0);
    assert_eq!(run.json()["revoked_count"], 2);
    verify(&env, T0, &b1).code(1);
    verify(&env, T0, &b2).code(1);

    at(&env, T0, &["revoke", "AAAAAAAAAAAA"]).code(1);
    at(&env, T0, &["revoke", "--name", "nobody"]).code(1);
    at(&env, T0, &["revoke"]).code(2);
}

#[test]
fn prune_removes_only_entries_past_retention() {
    let env = Env::new();
    let keep = create_at(&env, T0, "keep", &[]);
    let old = create_at(&env, T0, "old", &[]);
    create_at(&env, T0, "expiring", &["--expires", "1d"]);
    at(&env, T0, &["revoke", "--name", "old"]).code(0);
    let recent = create_at(&env, "2026-11-20T00:00:00Z", "recent", &[]);
    at(
        &env,
        "2026-11-20T00:00:00Z",
        &["revoke", "--name", "recent"],
    )
    .code(0);

    // 35 days on: "old" (revoked 35 d ago) and "expiring" (expired 34 d ago) are past the
    // default 30 d retention; "recent" (revoked 16 d ago) and the active one are not.
    let later = "2026-12-06T12:00:00Z";
    let run = at(&env, later, &["prune", "--json"]);
    run.code(0);
    assert_eq!(run.json()["removed_count"], 2);
    assert_eq!(run.json()["remaining_count"], 2);
    let names: Vec<String> = at(&env, later, &["list", "--json"]).json()["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["keep", "recent"]);
    let run = verify(&env, later, &old);
    run.code(1);
    assert!(run.stderr.contains("unknown"), "{}", run.stderr);
    verify(&env, later, &keep).code(0);
    verify(&env, later, &recent).code(1);

    // A shorter retention from the flag.
    let run = at(&env, later, &["prune", "--retention", "1d"]);
    run.code(0);
    assert!(
        run.stdout.starts_with("removed 1 token(s)"),
        "{}",
        run.stdout
    );
}

#[test]
fn ensure_is_idempotent_and_rotate_updates_its_file_atomically() {
    let env = Env::new();
    let first = at(&env, T0, &["ensure", "--json"]);
    first.code(0);
    let report = first.json();
    assert_eq!(report["created"], true);
    let path = PathBuf::from(report["token_file"].as_str().unwrap());
    let token = std::fs::read_to_string(&path).unwrap().trim().to_owned();
    verify(&env, T0, &token).code(0);

    let again = at(&env, T0, &["ensure"]);
    again.code(0);
    assert_eq!(again.stdout.trim(), path.display().to_string());
    assert!(again.stderr.is_empty(), "{}", again.stderr);
    assert_eq!(std::fs::read_to_string(&path).unwrap().trim(), token);
    assert_eq!(
        at(&env, T0, &["list", "--json"]).json()["tokens"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "no second token"
    );

    // rotate replaces the client file by a rename (a new inode), never in place.
    let ino = std::fs::metadata(&path).unwrap().ino();
    let run = at(&env, T0, &["rotate", "--name", "default"]);
    run.code(0);
    assert!(
        run.stdout
            .contains(&format!("client token file updated: {}", path.display())),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("kg_"),
        "the token is not shown: {}",
        run.stdout
    );
    assert_ne!(std::fs::metadata(&path).unwrap().ino(), ino);
    assert_eq!(stat_mode(&path), "600");
    let rotated = std::fs::read_to_string(&path).unwrap().trim().to_owned();
    assert_ne!(rotated, token);
    verify(&env, T0, &rotated).code(0);
    verify(&env, T0, &token).code(0); // within the default 24 h grace
    at(&env, T0, &["ensure"]).code(0);

    // A client file that no longer works is replaced by a new token, and said so (issue 14:
    // rerunning ensure after a crash converges); what the file held is never echoed.
    std::fs::write(&path, "kg_garbage\n").unwrap();
    let run = at(&env, T0, &["ensure"]);
    run.code(0);
    assert!(
        run.stderr.contains("did not hold a working token"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("kg_garbage"), "{}", run.stderr);
    let repaired = std::fs::read_to_string(&path).unwrap().trim().to_owned();
    verify(&env, T0, &repaired).code(0);
    verify(&env, T0, &rotated).code(1); // the replaced token is revoked at once
    // After a revoke, ensure issues a new token into the same file.
    at(&env, T0, &["revoke", "--name", "default"]).code(0);
    let run = at(&env, T0, &["ensure", "--json"]);
    run.code(0);
    assert_eq!(run.json()["created"], true);
    let fresh = std::fs::read_to_string(&path).unwrap().trim().to_owned();
    verify(&env, T0, &fresh).code(0);
}

/// Issue 14, item 8: 70-86% of 20 concurrent `tokenctl create` runs without `--wait` exited
/// 75, so parallel provisioning mostly failed. A change holds the lock for milliseconds; by
/// default the others queue for it.
#[test]
fn concurrent_changes_queue_for_the_lock_by_default() {
    let env = Env::new();
    create_at(&env, T0, "first", &[]);
    let runs: Vec<_> = (0..20)
        .map(|i| {
            let mut cmd = env.cmd("tokenctl");
            cmd.env("KEYGATE_TEST_NOW", T0)
                .args(["create", "--name", &format!("host{i}")])
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            cmd.spawn().unwrap()
        })
        .collect();
    for (i, child) in runs.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "host{i}: {:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let list = at(&env, T0, &["list", "--json"]).json();
    assert_eq!(list["tokens"].as_array().unwrap().len(), 21);
}

#[test]
fn a_held_lock_exits_75() {
    if !have("flock") {
        return;
    }
    let env = Env::new();
    create_at(&env, T0, "first", &[]); // the state directory and lock file exist now
    let lock = env.root().join("state/tokens.lock");
    // flock(1) holds the lock through its child `sleep` too: give both their own process
    // group, so that both can be ended at once.
    let mut holder = Command::new("flock")
        .arg(&lock)
        .args(["sleep", "30"])
        .process_group(0)
        .spawn()
        .unwrap();
    // Wait until the lock is really held, probing with a change that changes nothing.
    let deadline = Instant::now() + Duration::from_secs(10);
    while at(&env, T0, &["prune", "--wait", "0"]).code != 75 {
        assert!(Instant::now() < deadline, "flock never took the lock");
        std::thread::sleep(Duration::from_millis(50));
    }
    let run = at(&env, T0, &["create", "--name", "second", "--wait", "0"]);
    run.code(75);
    assert!(run.stderr.contains("holds the lock"), "{}", run.stderr);
    assert!(run.stderr.contains("--wait"), "{}", run.stderr);
    let started = Instant::now();
    at(&env, T0, &["rotate", "--name", "first", "--wait", "1"]).code(75);
    assert!(started.elapsed() >= Duration::from_secs(1));
    // Readers need no lock.
    at(&env, T0, &["list"]).code(0);
    // bash's builtin kill: no dependency on procps.
    let killed = Command::new("bash")
        .args(["-c", &format!("kill -TERM -- -{}", holder.id())])
        .status()
        .unwrap();
    assert!(killed.success());
    holder.wait().unwrap();
    at(&env, T0, &["create", "--name", "second", "--wait", "10"]).code(0);
}

#[test]
fn credentials_are_taken_in_order() {
    let mut env = Env::new();
    let from_file = create_at(&env, T0, "from-file", &[]);
    let from_env = create_at(&env, T0, "from-env", &[]);
    let from_profile = create_at(&env, T0, "from-profile", &[]);
    let file = env.root().join("file.token");
    std::fs::write(&file, format!("{from_file}\n")).unwrap();
    let profile_file = env.root().join("profile.token");
    std::fs::write(&profile_file, &from_profile).unwrap();
    std::fs::write(
        env.root().join("config.toml"),
        format!(
            "[profiles.ci]\ntoken_file = \"{}\"\n",
            profile_file.display()
        ),
    )
    .unwrap();
    let name_of = |run: &Run| run.json()["name"].as_str().unwrap().to_owned();
    let file_arg = file.to_str().unwrap();

    env.set("KEYGATE_TOKEN", &from_env)
        .set("KEYGATE_PROFILE", "ci");
    // 1. An explicit source wins over everything.
    let run = at(&env, T0, &["verify", "--json", "--token-file", file_arg]);
    assert_eq!(name_of(run.code(0)), "from-file");
    let run = verify_stdin(&env, T0, &from_file, &["--json"]);
    assert_eq!(name_of(run.code(0)), "from-file");
    let run = Run::from(
        shell(&env, r#""$TOKENCTL" verify --json --token-fd 3 3<"$0""#)
            .arg(&file)
            .output()
            .unwrap(),
    );
    assert_eq!(name_of(run.code(0)), "from-file");
    // 2. Then KEYGATE_TOKEN, over the profile.
    let run = at(&env, T0, &["verify", "--json"]);
    assert_eq!(name_of(run.code(0)), "from-env");
    // 3. Then the profile, from KEYGATE_PROFILE or --profile.
    let without_env = |args: &[&str]| {
        Run::from(
            env.cmd("tokenctl")
                .env("KEYGATE_TEST_NOW", T0)
                .env_remove("KEYGATE_TOKEN")
                .args(args)
                .output()
                .unwrap(),
        )
    };
    let run = without_env(&["verify", "--json"]);
    assert_eq!(name_of(run.code(0)), "from-profile");
    let run = Run::from(
        env.cmd("tokenctl")
            .env("KEYGATE_TEST_NOW", T0)
            .env_remove("KEYGATE_TOKEN")
            .env_remove("KEYGATE_PROFILE")
            .args(["verify", "--json", "--profile", "ci"])
            .output()
            .unwrap(),
    );
    assert_eq!(name_of(run.code(0)), "from-profile");
    // An unknown profile is a usage error naming the config file.
    let run = without_env(&["verify", "--profile", "nope"]);
    run.code(2);
    assert!(
        run.stderr.contains("no profile 'nope' in config file"),
        "{}",
        run.stderr
    );
    // 4. Nothing at all, and stdin is not a terminal: a usage error, no prompt.
    let run = Run::from(
        env.cmd("tokenctl")
            .env_remove("KEYGATE_TOKEN")
            .env_remove("KEYGATE_PROFILE")
            .arg("verify")
            .output()
            .unwrap(),
    );
    run.code(2);
    assert!(
        run.stderr.starts_with("error: no token given\nhint: "),
        "{}",
        run.stderr
    );
    // Unreadable sources are named, never their content.
    let run = without_env(&["verify", "--token-file", "/nonexistent/t"]);
    run.code(2);
    assert!(
        run.stderr
            .contains("cannot read token file '/nonexistent/t'"),
        "{}",
        run.stderr
    );
    // Two explicit sources at once are refused by the parser.
    at(&env, T0, &["verify", "--token-file", file_arg, "-"]).code(2);
}

/// The last resort of the credential order: a prompt on the terminal, with echo off.
#[test]
fn the_prompt_reads_the_token_without_echo() {
    let env = Env::new();
    let token = create_at(&env, T0, "typed", &[]);
    // With no other source, and for `-` when stdin is a terminal.
    for args in ["verify", "verify -"] {
        let command = format!("KEYGATE_TEST_NOW={T0} \"$TOKENCTL\" {args}");
        let (code, shown) = tty_session(&env, &command, &[("Token: ", &token)]);
        assert_eq!(code, 0, "{args}: {shown}");
        assert!(shown.contains("valid: token 'typed'"), "{shown}");
        assert_no_secret("the terminal", &shown, &[&token]);
    }
}

/// Every output and error of a realistic session, including tokens pasted where they do not
/// belong (an id, a name, a positional argument, `--set`, an unknown flag), never shows a
/// token; only `create`/`rotate` print the new token, once, on stdout.
#[test]
fn secrets_appear_in_no_output_or_error() {
    let mut env = Env::new();
    let live = create_at(&env, T0, "live", &["--scope", "read"]);
    let revoked = create_at(&env, T0, "gone", &[]);
    at(&env, T0, &["revoke", "--name", "gone"]).code(0);
    let rotated_out = at(&env, T0, &["rotate", "--name", "live", "--grace", "1h"]);
    rotated_out.code(0);
    let new = rotated_out.stdout.trim().to_owned();
    let pepper = std::fs::read_to_string(env.root().join("private/pepper")).unwrap();
    let file = env.root().join("t");
    std::fs::write(&file, &live).unwrap();
    let file = file.to_str().unwrap();
    let set_token = format!("client.token={live}");
    let eq_flag = format!("--token={live}");
    let mut runs: Vec<(String, Run)> = Vec::new();
    let mut record = |what: &str, run: Run| runs.push((what.to_owned(), run));
    record("list", at(&env, T0, &["list"]));
    record("list --json", at(&env, T0, &["list", "--json"]));
    record("verify ok", at(&env, T0, &["verify", "--token-file", file]));
    record(
        "verify ok json",
        at(&env, T0, &["verify", "--json", "--token-file", file]),
    );
    record("verify revoked", verify(&env, T0, &revoked));
    record(
        "verify revoked json",
        verify_stdin(&env, T0, &revoked, &["--json"]),
    );
    record("revoke by token", at(&env, T0, &["revoke", &live]));
    record(
        "create named a token",
        at(&env, T0, &["create", "--name", &live]),
    );
    record(
        "rotate named a token",
        at(&env, T0, &["rotate", "--name", &live]),
    );
    record(
        "ensure named a token",
        at(&env, T0, &["ensure", "--name", &live]),
    );
    record("verify positional", at(&env, T0, &["verify", &live]));
    record("unknown --token flag", at(&env, T0, &["verify", &eq_flag]));
    record(
        "--set client.token",
        at(&env, T0, &["--set", &set_token, "verify"]),
    );
    record(
        "scope with a token",
        at(
            &env,
            T0,
            &["create", "--name", "x", "--scope", &format!("a b{live}")],
        ),
    );
    record(
        "scope is a token",
        at(
            &env,
            T0,
            &["create", "--name", "y", "--scope", "read", "--scope", &live],
        ),
    );
    record("prune", at(&env, T0, &["prune", "--json"]));
    record("format", at(&env, T0, &["format"]));
    env.set("KEYGATE_TOKEN", &live);
    record("env token", at(&env, T0, &["verify"]));
    record(
        "config explain",
        at(&env, T0, &["config", "explain", "--json"]),
    );
    env.set("KEYGATE_TOKEN", "kg_bad");
    record("bad env token", at(&env, T0, &["verify", "--json"]));

    for (what, run) in &runs {
        for (stream, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
            assert_no_secret(
                &format!("{what} ({stream})"),
                text,
                &[&live, &revoked, &new],
            );
            assert!(!text.contains(pepper.trim()), "{what} shows the pepper");
        }
    }
    // The refusals were refusals, with the usage exit code where the input was wrong.
    let code = |what: &str| runs.iter().find(|(w, _)| w == what).unwrap().1.code;
    assert_eq!(code("revoke by token"), 2);
    assert_eq!(code("create named a token"), 2);
    assert_eq!(code("scope with a token"), 2);
    assert_eq!(code("scope is a token"), 2);
    assert_eq!(code("verify positional"), 2);
    assert_eq!(code("unknown --token flag"), 2);
    assert_eq!(code("--set client.token"), 2);
    assert_eq!(code("bad env token"), 1);
    // And the one place a token is shown: once, on stdout, by create or rotate.
    assert!(rotated_out.stderr.contains("shown only this once"));
}

/// Secrets never reach argv: while commands wait for their input, the command lines of our
/// processes (`/proc/PID/cmdline`, and `ps` as another user would see it) hold no secret.
#[test]
fn secrets_never_reach_the_process_list() {
    let mut env = Env::new();
    let token = create_at(&env, T0, "ps", &[]);
    let passphrase = "correct horse battery staple";
    let fifo = env.root().join("token.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());

    // verify --token-file FIFO blocks opening the FIFO; verify - and seal block on stdin.
    let by_file = env
        .cmd("tokenctl")
        .args(["verify", "--token-file"])
        .arg(&fifo)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut by_stdin = env
        .cmd("tokenctl")
        .args(["verify", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    env.set("AGE_PASSPHRASE", passphrase);
    let mut sealing = env
        .cmd("tokenctl")
        .args(["seal", "--passphrase", "--armor"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Until each has exec'ed (its command line is ours, not the test's) and is waiting.
    let deadline = Instant::now() + Duration::from_secs(20);
    for child in [&by_file, &by_stdin, &sealing] {
        while !std::fs::read(format!("/proc/{}/cmdline", child.id()))
            .is_ok_and(|c| c.windows(8).any(|w| w == b"tokenctl"))
        {
            assert!(Instant::now() < deadline, "tokenctl did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    std::thread::sleep(Duration::from_millis(100));

    // `ps` as any user sees it (procps); /proc/PID/cmdline is checked either way.
    let ps = if have("ps") {
        let out = Command::new("ps").args(["-eo", "pid,args"]).output();
        String::from_utf8_lossy(&out.unwrap().stdout).into_owned()
    } else {
        String::new()
    };
    for child in [&by_file, &by_stdin, &sealing] {
        let pid = child.id();
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        assert!(cmdline.contains("tokenctl"), "{cmdline}");
        assert_no_secret(&format!("cmdline of {pid}"), &cmdline, &[&token]);
        assert!(!cmdline.contains(passphrase), "{cmdline}");
        assert!(
            ps.is_empty()
                || ps
                    .lines()
                    .any(|l| l.trim_start().starts_with(&format!("{pid} "))),
            "ps lists {pid}"
        );
    }
    assert_no_secret("ps", &ps, &[&token]);
    assert!(!ps.contains(passphrase));

    // Now feed them; each does its job.
    std::fs::write(&fifo, format!("{token}\n")).unwrap();
    let run = Run::from(by_file.wait_with_output().unwrap());
    run.code(0);
    by_stdin
        .stdin
        .take()
        .unwrap()
        .write_all(token.as_bytes())
        .unwrap();
    Run::from(by_stdin.wait_with_output().unwrap()).code(0);
    sealing.stdin.take().unwrap().write_all(b"hello").unwrap();
    let run = Run::from(sealing.wait_with_output().unwrap());
    run.code(0);
    assert!(run.stdout.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"));
}

#[test]
fn malformed_tokens_exit_1_with_a_reason_and_no_echo() {
    let env = Env::new();
    let good = create_at(&env, T0, "good", &[]);
    let mut changed = good.clone().into_bytes();
    changed[30] = if changed[30] == b'a' { b'b' } else { b'a' };
    let changed = String::from_utf8(changed).unwrap();
    let other_prefix = format!("xx{}", &good[2..]);
    let unknown = create_at(&Env::new(), T0, "elsewhere", &[]); // another store's token
    let cases: [(&str, &str, &str); 6] = [
        (
            &good[..good.len() - 1],
            "malformed",
            "the token is malformed",
        ),
        ("not a token at all", "malformed", "the token is malformed"),
        (&other_prefix, "malformed", "the token is malformed"),
        (&changed, "bad_checksum", "checksum does not match"),
        (&unknown, "unknown", "the token is unknown"),
        ("", "malformed", "is empty"),
    ];
    for (token, code, text) in cases {
        let run = verify(&env, T0, token);
        run.code(1);
        assert!(
            run.stderr.starts_with("error: the token from stdin "),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains(text), "{token}: {}", run.stderr);
        assert!(run.stderr.contains("\nhint: "), "{}", run.stderr);
        if token.len() > 8 {
            assert!(!run.stderr.contains(token), "echoed: {}", run.stderr);
            assert!(!run.stdout.contains(token), "echoed: {}", run.stdout);
        }
        let run = verify_stdin(&env, T0, token, &["--json"]);
        run.code(1);
        assert_eq!(run.json()["valid"], false);
        assert_eq!(run.json()["reason"], code, "{token}");
    }
    assert_no_secret("changed", &verify(&env, T0, &changed).stderr, &[&good]);
}

#[test]
fn a_corrupt_store_exits_2_naming_file_and_line_and_is_left_alone() {
    let env = Env::new();
    let token = create_at(&env, T0, "one", &[]);
    create_at(&env, T0, "two", &[]);
    let store = store_file(&env);
    let good = std::fs::read_to_string(&store).unwrap();
    // A hand edit that drops a comma (serde reports the line after it), and one that breaks
    // an entry's digest (reported at the line where that entry opens).
    let digest_line = good
        .lines()
        .position(|l| l.trim_start().starts_with("\"digest\""))
        .unwrap();
    let mut lines: Vec<String> = good.lines().map(String::from).collect();
    let entry_open = lines[..digest_line]
        .iter()
        .rposition(|l| l == "    {")
        .unwrap()
        + 1;
    lines[digest_line] = "      \"digest\": \"zz\"".to_owned();
    let bad_digest = lines.join("\n") + "\n";
    let no_comma = good.replacen("\"name\": \"one\",", "\"name\": \"one\"", 1);
    let name_line = good
        .lines()
        .position(|l| l.contains("\"name\": \"one\""))
        .unwrap()
        + 1;
    for (text, line) in [(no_comma, name_line + 1), (bad_digest, entry_open)] {
        std::fs::write(&store, &text).unwrap();
        let before = std::fs::metadata(&store).unwrap();
        let token_file = env.root().join("t");
        std::fs::write(&token_file, &token).unwrap();
        let token_file = token_file.to_str().unwrap();
        for args in [
            &["list"][..],
            &["list", "--json"],
            &["verify", "--token-file", token_file],
            &["create", "--name", "three"],
            &["ensure"],
            &["rotate", "--name", "one"],
            &["revoke", "--name", "one"],
            &["prune"],
            &["format", "--regex"],
        ] {
            let run = at(&env, T0, args);
            run.code(2);
            let want = format!("error: token store '{}' line {line}: ", store.display());
            assert!(run.stderr.starts_with(&want), "{args:?}: {}", run.stderr);
            assert!(run.stderr.contains("\nhint: "), "{}", run.stderr);
            assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
        }
        let after = std::fs::metadata(&store).unwrap();
        assert_eq!(std::fs::read_to_string(&store).unwrap(), text, "unchanged");
        assert_eq!(
            (before.ino(), before.mtime(), before.mtime_nsec()),
            (after.ino(), after.mtime(), after.mtime_nsec())
        );
    }
    // Fixed by hand, it works again.
    std::fs::write(&store, &good).unwrap();
    verify(&env, T0, &token).code(0);
}

/// The published regex, used by a real scanner (`grep -P`), finds our tokens and not
/// near-misses.
#[test]
fn the_format_regex_finds_tokens_with_grep() {
    if !have("grep") {
        return;
    }
    let env = Env::new();
    let a = create_at(&env, T0, "a", &[]);
    let b = create_at(&env, T0, "b", &[]);
    let run = at(&env, T0, &["format", "--regex"]);
    run.code(0);
    let regex = run.stdout.trim().to_owned();
    assert_eq!(regex, r"\bkg_[0-9A-Za-z]{12}_[0-9A-Za-z]{38}\b");
    let text = format!(
        "export TOKEN={a}\nAuthorization: Bearer {b}\nnear: {}\nlonger: {a}x\nprefix: xkg_{}\nother: gh_{}\n",
        &a[..a.len() - 1],
        &a[3..],
        &a[3..],
    );
    let file = env.root().join("leaks.txt");
    std::fs::write(&file, text).unwrap();
    let found = Command::new("grep")
        .args(["-oP", &regex])
        .arg(&file)
        .output()
        .unwrap();
    let found = String::from_utf8(found.stdout).unwrap();
    assert_eq!(found, format!("{a}\n{b}\n"));
    // A custom prefix for a new store changes the pattern.
    std::fs::write(
        env.root().join("config.toml"),
        "[token]\nprefix = \"acme\"\n",
    )
    .unwrap();
    let json = at(&env, T0, &["format", "--json"]).json();
    assert_eq!(json["prefix"], "kg", "an existing store keeps its prefix");
    let fresh = Env::new();
    std::fs::write(
        fresh.root().join("config.toml"),
        "[token]\nprefix = \"acme\"\n",
    )
    .unwrap();
    let token = create_at_prefix(&fresh);
    assert!(token.starts_with("acme_"), "{token}");
    let regex = at(&fresh, T0, &["format", "--regex"]).stdout;
    assert!(regex.starts_with(r"\bacme_"), "{regex}");
}

fn create_at_prefix(env: &Env) -> String {
    let run = at(env, T0, &["create", "--name", "p"]);
    run.code(0);
    run.stdout.trim().to_owned()
}

/// `--json` on every command that reports, each parseable and without secrets.
#[test]
fn every_reporting_command_speaks_json() {
    let env = Env::new();
    let out = env.root().join("c.token");
    let key = env.root().join("key.txt");
    let cases: Vec<Vec<String>> = vec![
        vec!["ensure".into(), "--json".into()],
        vec![
            "create".into(),
            "--name".into(),
            "c".into(),
            "--output".into(),
            out.display().to_string(),
            "--json".into(),
        ],
        vec!["list".into(), "--json".into()],
        vec![
            "rotate".into(),
            "--name".into(),
            "c".into(),
            "--json".into(),
        ],
        vec![
            "revoke".into(),
            "--name".into(),
            "c".into(),
            "--json".into(),
        ],
        vec![
            "verify".into(),
            "--token-file".into(),
            out.display().to_string(),
            "--json".into(),
        ],
        vec!["prune".into(), "--json".into()],
        vec!["format".into(), "--json".into()],
        vec![
            "keygen".into(),
            "-o".into(),
            key.display().to_string(),
            "--json".into(),
        ],
        vec!["config".into(), "explain".into(), "--json".into()],
    ];
    for args in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = at(&env, T0, &args);
        let value = run.json();
        assert!(value.is_object() || value.is_array(), "{args:?}");
        let text = run.stdout.clone();
        assert!(!text.contains("AGE-SECRET-KEY"), "{args:?}: {text}");
        if args[0] != "create" && args[0] != "rotate" {
            assert!(!text.contains("\"token\""), "{args:?}: {text}");
        }
    }
    // With a client token file, rotate writes the new token there instead of showing it.
    let rotate = at(&env, T0, &["rotate", "--name", "default", "--json"]).json();
    assert!(
        rotate["token_file"]
            .as_str()
            .unwrap()
            .ends_with("client/default.token")
    );
    assert_eq!(
        rotate["token"],
        serde_json::Value::Null,
        "written to the client file, not shown"
    );
}

/// Issue 13: `sudo tokenctl create --output /tmp/ci.token` over a file another user created
/// there kept that user as the owner, so they could read the token. Root's file is root's.
#[test]
fn root_writing_a_token_over_a_file_another_user_planted_keeps_it_from_them() {
    if !test_support::can_be_nobody() {
        return;
    }
    let env = Env::new();
    // A shared directory like /tmp: world-writable and sticky, reachable by everyone.
    let shared = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        shared.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .unwrap();
    let planted = shared.path().join("ci.token");
    std::fs::write(&planted, b"").unwrap();
    std::fs::set_permissions(
        &planted,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    test_support::give_to_nobody(&planted);

    let run = at(
        &env,
        T0,
        &[
            "create",
            "--name",
            "ci",
            "--output",
            planted.to_str().unwrap(),
        ],
    );
    run.code(0);
    let meta = std::fs::metadata(&planted).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid()),
        (0, 0),
        "owner of {}",
        planted.display()
    );
    assert_eq!(stat_mode(&planted), "600");
    let token = std::fs::read_to_string(&planted).unwrap();
    verify(&env, T0, token.trim()).code(0);
    let theirs = test_support::as_nobody("cat", &[planted.as_os_str()]);
    assert_ne!(theirs.code, 0, "nobody read the token: {}", theirs.stdout);
    assert!(!theirs.stdout.contains("kg_"));
}
