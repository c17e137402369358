//! `keygate serve` and SIGHUP: a file audit log is reopened for logrotate (rename, then
//! `kill -HUP`), and a SIGHUP never stops the server, whatever the audit target.

use std::path::Path;
use std::time::Duration;

use test_support::{Env, Proc, have, stat_mode};

use test_support::server::*;

/// The audit lines of a file, once it holds `n` of them (the writer flushes every 100 ms).
#[track_caller]
fn wait_lines(path: &Path, n: usize) -> Vec<serde_json::Value> {
    let read = || audit_lines(&std::fs::read_to_string(path).unwrap_or_default());
    assert!(
        eventually(Duration::from_secs(3), || read().len() >= n),
        "{} holds {:?}, expected {n} line(s)",
        path.display(),
        read()
    );
    read()
}

/// Waits until the server has logged `n` reopens.
#[track_caller]
fn wait_reopened(kg: &Proc, n: usize) {
    let count = || kg.output().matches("\"event\":\"audit_reopened\"").count();
    assert!(
        eventually(Duration::from_secs(3), || count() >= n),
        "no audit_reopened after SIGHUP:\n{}",
        kg.output()
    );
}

#[test]
fn sighup_reopens_a_rotated_audit_log_as_a_new_private_file() {
    if !have("curl") {
        return;
    }
    let env = Env::new();
    let log = env.root().join("audit.log");
    let rotated = env.root().join("audit.log.1");
    let addr = local_addr();
    let set = format!("server.audit_log={}", log.display());
    let mut kg = keygate(&env, addr, &["--plain-http", "--set", &set]);
    let auth = url(addr, "/auth");

    assert_eq!(curl(&[&auth]).status, 401);
    let first = wait_lines(&log, 1);
    // logrotate's default: move the file away, then signal the daemon.
    std::fs::rename(&log, &rotated).unwrap();
    kg.signal("HUP");
    wait_reopened(&kg, 1);
    assert_eq!(curl(&[&auth]).status, 401);
    let second = wait_lines(&log, 1);

    assert_eq!(stat_mode(&log), "600");
    assert_eq!(second.len(), 1, "{second:?}");
    assert_ne!(second[0]["request_id"], first[0]["request_id"]);
    assert_eq!(second[0]["decision"], "deny");
    let old = audit_lines(&std::fs::read_to_string(&rotated).unwrap());
    assert_eq!(
        old, first,
        "the rotated file keeps the first line, and only it"
    );
    assert!(kg.running(), "{}", kg.output());
    assert_eq!(curl(&[&url(addr, "/health")]).status, 200);
}

#[test]
fn sighup_with_the_audit_log_on_stderr_leaves_the_server_running() {
    if !have("curl") {
        return;
    }
    let env = Env::new();
    let addr = local_addr();
    let mut kg = keygate(&env, addr, &["--plain-http"]);
    for n in 1..=2 {
        kg.signal("HUP");
        wait_reopened(&kg, n);
    }
    assert!(kg.running(), "{}", kg.output());
    assert_eq!(curl(&[&url(addr, "/health")]).status, 200);
    assert_eq!(curl(&[&url(addr, "/auth")]).status, 401);
    assert!(eventually(Duration::from_secs(3), || {
        audit_lines(&kg.output()).len() == 1
    }));
    // SIGTERM still stops it cleanly afterwards.
    kg.signal("TERM");
    assert_eq!(
        kg.wait_exit(Duration::from_secs(10)),
        Some(0),
        "{}",
        kg.output()
    );
}

/// Issue 13: the audit log was appended to whatever file was at its path, so another user who
/// created it first in a shared directory read every line. keygate now refuses at start, and
/// `keygate check` says why, with the fix; the planted file receives nothing.
#[test]
fn an_audit_log_another_user_created_or_can_write_is_refused_at_start() {
    let env = Env::new();
    let shared = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        shared.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .unwrap();
    let log = shared.path().join("audit.log");
    std::fs::write(&log, b"").unwrap();
    let set = format!("server.audit_log={}", log.display());
    // Started with a deadline: a server that accepted the file would serve on and never exit.
    let serve = |env: &Env| {
        let addr = local_addr().to_string();
        let mut child = env
            .cmd("keygate")
            .args(["serve", "--plain-http", "--listen", &addr, "--set", &set])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        while child.try_wait().unwrap().is_none() {
            if started.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        test_support::Run::from(child.wait_with_output().unwrap())
    };

    // Ours, but group-writable: whoever is in the group can rewrite the record.
    std::fs::set_permissions(&log, std::os::unix::fs::PermissionsExt::from_mode(0o620)).unwrap();
    let run = serve(&env);
    run.code(2);
    assert_eq!(
        run.stderr,
        format!(
            "error: refusing to use audit log '{l}': it is writable by group or others\n\
             hint: run `chmod go-w '{l}'`, or keep the audit log where only you and root can change it\n",
            l = log.display()
        )
    );
    let check = env.run("keygate", &["check", "--set", &set]);
    assert!(
        check.stdout.contains("is writable by group or others")
            && check.stdout.contains("chmod go-w"),
        "{}\n{}",
        check.stdout,
        check.stderr
    );

    if test_support::can_be_nobody() {
        std::fs::set_permissions(&log, std::os::unix::fs::PermissionsExt::from_mode(0o666))
            .unwrap();
        test_support::give_to_nobody(&log);
        let run = serve(&env);
        run.code(2);
        assert!(
            run.stderr.starts_with(&format!(
                "error: refusing to use audit log '{}': it is owned by uid 65534, neither root nor this user\nhint: run `chown root '{}'`",
                log.display(),
                log.display()
            )),
            "{}",
            run.stderr
        );
    }
    assert_eq!(
        std::fs::read(&log).unwrap(),
        b"",
        "the planted file received lines"
    );

    // A symlink in its place is no file to append to.
    std::fs::remove_file(&log).unwrap();
    std::os::unix::fs::symlink(env.root().join("elsewhere"), &log).unwrap();
    let run = serve(&env);
    run.code(2);
    assert!(
        run.stderr
            .contains("it is a symbolic link, not a regular file"),
        "{}",
        run.stderr
    );
    assert!(!env.root().join("elsewhere").exists());
}

/// The service `keygate unit` prints: systemd accepts it (hardened with --system, allowed
/// the low port it listens on and the audit log's directory), and its logrotate snippet,
/// run by the real logrotate, rotates a live audit log that keygate then reopens 0600.
/// Issue 14 asked for a `keygate serve` unit and a logrotate snippet.
#[test]
fn the_printed_unit_is_valid_and_its_logrotate_snippet_rotates_a_live_log() {
    if !have("curl") || !have("logrotate") {
        return;
    }
    let env = Env::new();
    let dir = env.root().join("log");
    std::fs::create_dir(&dir).unwrap();
    let log = dir.join("audit.log");
    config(
        &env,
        &format!("[server]\naudit_log = \"{}\"\n", log.display()),
    );
    let system = env.run("keygate", &["unit", "--system", "--listen", "0.0.0.0:443"]);
    system.code(0);
    for line in [
        "ExecStart=",
        " serve --listen 0.0.0.0:443\n",
        "ProtectSystem=strict\n",
        "NoNewPrivileges=yes\n",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE\n",
        &format!("ReadWritePaths={}\n", dir.display()),
        &format!("Environment=KEYGATE_HOME={}\n", env.root().display()),
        "# /etc/logrotate.d/keygate\n",
        "systemctl reload keygate.service\n",
    ] {
        assert!(
            system.stdout.contains(line),
            "no {line:?} in:\n{}",
            system.stdout
        );
    }
    let service = section(&system.stdout, "# /etc/systemd/system/keygate.service");
    if have("systemd-analyze") {
        let unit = env.root().join("keygate.service");
        std::fs::write(&unit, &service).unwrap();
        let out = std::process::Command::new("systemd-analyze")
            .arg("verify")
            .arg(&unit)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // The user's snippet through the real logrotate, its reload pointed at this server.
    let addr = local_addr();
    let mut kg = keygate(&env, addr, &["--plain-http"]);
    let auth = url(addr, "/auth");
    assert_eq!(curl(&[&auth]).status, 401);
    wait_lines(&log, 1);
    let user = env.run("keygate", &["unit"]);
    user.code(0);
    let snippet = section(&user.stdout, "# a file your own logrotate reads");
    assert!(
        snippet.contains("systemctl --user reload keygate.service"),
        "{snippet}"
    );
    let conf = env.root().join("logrotate.conf");
    std::fs::write(
        &conf,
        snippet.replace(
            "systemctl --user reload keygate.service",
            &format!("kill -HUP {}", kg.child.id()),
        ),
    )
    .unwrap();
    let out = std::process::Command::new("logrotate")
        .arg("--force")
        .arg("--state")
        .arg(env.root().join("logrotate.state"))
        .arg(&conf)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_reopened(&kg, 1);
    assert_eq!(curl(&[&auth]).status, 401);
    assert_eq!(wait_lines(&log, 1).len(), 1);
    assert_eq!(stat_mode(&log), "600");
    assert_eq!(wait_lines(&dir.join("audit.log.1"), 1).len(), 1);
    assert!(kg.running());
}

/// The lines after the comment line starting with `header`, up to the next `# ` line.
fn section(text: &str, header: &str) -> String {
    text.lines()
        .skip_while(|l| !l.starts_with(header))
        .skip(1)
        .take_while(|l| !l.starts_with("# "))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Issue 14: audit lines lost on a full disk left no trace but a counter. The loss is now
/// said once on the server's log (`audit_write_failed`, not one line per lost line), and
/// `audit_write_recovered` says how many were lost once writing works again; the server
/// keeps serving throughout. The disk is a 64 KiB tmpfs in a mount namespace of its own.
#[test]
fn a_full_disk_is_said_once_and_the_recovery_counts_what_was_lost() {
    if !have("curl") || !have("unshare") {
        return;
    }
    let env = Env::new();
    let addr = local_addr();
    let script = "set -e\n\
                  mkdir -p \"$KG_DISK\"\n\
                  mount -t tmpfs -o size=64k tmpfs \"$KG_DISK\"\n\
                  \"$KG_BIN\" serve --plain-http --listen \"$KG_ADDR\" \
                    --set server.audit_log=\"$KG_DISK/audit.log\" 2> \"$KG_OUT\" &\n\
                  kg=$!\n\
                  n=0; until curl -s -o /dev/null \"http://$KG_ADDR/health\"; do \
                    n=$((n+1)); [ $n -lt 200 ] || exit 9; sleep 0.05; done\n\
                  dd if=/dev/zero of=\"$KG_DISK/filler\" bs=4k 2>/dev/null || true\n\
                  for i in 1 2 3 4 5 6 7 8 9 10; do\n  \
                    curl -s -o /dev/null -w '%{http_code}\\n' \"http://$KG_ADDR/auth\" >> \"$KG_CODES\"\n  \
                    sleep 0.15\n\
                  done\n\
                  rm \"$KG_DISK/filler\"\n\
                  curl -s -o /dev/null -w '%{http_code}\\n' \"http://$KG_ADDR/auth\" >> \"$KG_CODES\"\n\
                  sleep 0.5\n\
                  tail -n 1 \"$KG_DISK/audit.log\" > \"$KG_LAST\"\n\
                  kill $kg; wait $kg || true\n";
    let keygate = env.cmd("keygate");
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["--mount", "--", "sh", "-c", script]);
    for (k, v) in keygate.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let out_file = env.root().join("kg.err");
    let codes = env.root().join("codes");
    let last = env.root().join("last");
    let result = cmd
        .env("KG_BIN", keygate.get_program())
        .env("KG_DISK", env.root().join("disk"))
        .env("KG_ADDR", addr.to_string())
        .env("KG_OUT", &out_file)
        .env("KG_CODES", &codes)
        .env("KG_LAST", &last)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let log = std::fs::read_to_string(&out_file).unwrap_or_default();
    assert!(
        result.status.success(),
        "{}{}\n{log}",
        String::from_utf8_lossy(&result.stdout),
        String::from_utf8_lossy(&result.stderr)
    );
    // Served throughout: every /auth got its 401.
    let codes = std::fs::read_to_string(&codes).unwrap();
    assert_eq!(codes.lines().filter(|c| *c == "401").count(), 11, "{codes}");
    let failed: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("\"audit_write_failed\""))
        .collect();
    assert_eq!(failed.len(), 1, "said once, not per line:\n{log}");
    assert!(
        failed[0].contains("No space left on device"),
        "{}",
        failed[0]
    );
    let recovered = log
        .lines()
        .find(|l| l.contains("\"audit_write_recovered\""))
        .unwrap_or_else(|| panic!("no recovery line:\n{log}"));
    let lost: u64 = serde_json::from_str::<serde_json::Value>(recovered).unwrap()["lost_lines"]
        .as_u64()
        .unwrap_or_else(|| panic!("lost_lines is a JSON number: {recovered}"));
    assert!(lost >= 1, "{recovered}");
    let last = std::fs::read_to_string(&last).unwrap();
    assert!(
        last.contains("\"decision\":\"deny\""),
        "the log works again: {last}"
    );
}
