//! certctl renew, status, doctor and schedule, end to end: the cron contract.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use test_support::{Env, have, mkcert_caroot, stat_mode};

fn current(env: &Env, id: &str) -> PathBuf {
    env.root().join("private/certs").join(id).join("current")
}

fn generation(env: &Env, id: &str) -> String {
    std::fs::read_link(current(env, id))
        .unwrap()
        .display()
        .to_string()
}

/// `now` plus `days`, as RFC 3339, for the test clock.
fn days_later(days: f64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let out = Command::new("date")
        .args([
            "-u",
            "-d",
            &format!("@{}", (now + days * 86_400.0) as i64),
            "+%Y-%m-%dT%H:%M:%SZ",
        ])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Starts `n` `certctl renew` processes at once at the test time `when`; waits for all.
fn concurrent_renewals(env: &Env, when: &str, n: usize, args: &[&str]) -> Vec<test_support::Run> {
    let children: Vec<_> = (0..n)
        .map(|_| {
            env.cmd("certctl")
                .env("KEYGATE_TEST_NOW", when)
                .arg("renew")
                .args(args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|c| test_support::Run::from(c.wait_with_output().unwrap()))
        .collect()
}

fn renew_at(env: &Env, when: &str, args: &[&str]) -> test_support::Run {
    let mut cmd = env.cmd("certctl");
    cmd.env("KEYGATE_TEST_NOW", when).arg("renew").args(args);
    test_support::Run::from(cmd.output().unwrap())
}

/// (lifetime days, renew_before, age in days, due?): a third of the lifetime, half under 10
/// days, or renew_before when configured.
#[test]
fn due_follows_the_lifetime_rule_and_renew_before() {
    let cases: &[(&str, Option<&str>, f64, bool)] = &[
        ("90", None, 59.0, false),
        ("90", None, 61.0, true),
        ("9", None, 4.0, false),
        ("9", None, 4.6, true),
        ("90", Some("40d"), 49.0, false),
        ("90", Some("40d"), 51.0, true),
    ];
    for (days, before, age, due) in cases {
        let mut env = Env::new();
        if let Some(b) = before {
            env.set("KEYGATE_RENEW_BEFORE", b);
        }
        env.run("certctl", &["ensure", "--days", days]).code(0);
        let first = generation(&env, "default");
        let run = renew_at(&env, &days_later(*age), &["--no-jitter"]);
        run.code(0);
        assert_eq!(
            generation(&env, "default") != first,
            *due,
            "lifetime {days} d, renew_before {before:?}, age {age} d:\n{}",
            run.stdout
        );
        assert_eq!(
            run.stdout.starts_with("renewed 'default' with local-ca"),
            *due,
            "{}",
            run.stdout
        );
    }
}

/// Issue 14, item 12: `renew --dry-run` with nothing due said nothing (certbot says "no
/// renewals were attempted"). A dry run is a person asking: it says what would not happen
/// too, while a real run stays silent for cron.
#[test]
fn a_dry_run_says_what_it_would_not_renew_and_when_it_will() {
    let env = Env::new();
    let nothing = renew_at(&env, "2026-11-01T12:00:00Z", &["--dry-run"]);
    nothing.code(0);
    assert_eq!(
        nothing.stdout,
        "no certificate is managed here: nothing would be renewed\n"
    );
    env.run("certctl", &["ensure", "--days", "90"]).code(0);
    let early = renew_at(&env, &days_later(1.0), &["--dry-run"]);
    early.code(0);
    assert!(
        early
            .stdout
            .starts_with("would not renew 'default': not due, renews from 20"),
        "{}",
        early.stdout
    );
    let late = renew_at(&env, &days_later(61.0), &["--dry-run"]);
    late.code(0);
    assert!(
        late.stdout.starts_with("would renew 'default': "),
        "{}",
        late.stdout
    );
    assert!(!late.stdout.contains("would not renew"), "{}", late.stdout);
    // The real run, not due, is silent.
    let quiet = renew_at(&env, &days_later(1.0), &["--no-jitter"]);
    quiet.code(0);
    assert_eq!(quiet.stdout, "");
}

#[test]
fn force_renews_and_changed_names_in_config_renew() {
    let env = Env::new();
    env.run("certctl", &["ensure"]).code(0);
    let first = generation(&env, "default");
    env.run("certctl", &["renew", "--no-jitter"]).code(0);
    assert_eq!(generation(&env, "default"), first, "nothing was due");
    let forced = env.run("certctl", &["renew", "--no-jitter", "--force"]);
    forced.code(0);
    assert!(forced.stdout.contains("renewal was forced"));
    let second = generation(&env, "default");
    assert_ne!(second, first);

    std::fs::write(
        env.root().join("config.toml"),
        "[cert]\nnames = [\"localhost\", \"app.internal\"]\n",
    )
    .unwrap();
    let run = env.run("certctl", &["renew", "--no-jitter"]);
    run.code(0);
    assert!(
        run.stdout.contains("the configured names changed"),
        "{}",
        run.stdout
    );
    assert_ne!(generation(&env, "default"), second);
    let sans = Command::new("openssl")
        .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
        .arg(current(&env, "default").join("cert.pem"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&sans.stdout).contains("DNS:app.internal"));
}

#[test]
fn a_cron_run_with_nothing_due_is_silent() {
    let env = Env::new();
    env.run("certctl", &["ensure"]).code(0);
    env.run("certctl", &["ensure", "--id", "web", "localhost"])
        .code(0);
    // No --no-jitter and stdin is not a terminal, exactly as under cron: nothing is due, so
    // there is no delay and no output at all.
    let started = std::time::Instant::now();
    let run = env.run("certctl", &["renew"]);
    run.code(0);
    assert_eq!(run.stdout, "");
    assert_eq!(run.stderr, "");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "a run with nothing due must not sleep"
    );
}

#[test]
fn ten_concurrent_renewals_issue_exactly_once() {
    let env = Env::new();
    env.run("certctl", &["ensure", "--days", "9"]).code(0);
    let first = generation(&env, "default");
    let when = days_later(6.0);
    let runs = concurrent_renewals(&env, &when, 10, &["--no-jitter"]);
    let renewed = runs
        .iter()
        .filter(|r| r.stdout.starts_with("renewed 'default'"))
        .count();
    assert_eq!(renewed, 1, "{runs:#?}");
    for r in &runs {
        assert!(r.code == 0 || r.code == 75, "{r:#?}");
        if r.code == 75 {
            assert!(
                r.stderr
                    .starts_with("error: another keygate process holds the lock"),
                "{}",
                r.stderr
            );
            assert_eq!(
                r.stderr.lines().count(),
                2,
                "one line and a hint: {}",
                r.stderr
            );
        }
    }
    let numbers: Vec<u64> = std::fs::read_dir(env.root().join("private/certs/default"))
        .unwrap()
        .filter_map(|e| {
            e.unwrap()
                .file_name()
                .to_str()
                .and_then(|n| n.strip_prefix('g'))
                .and_then(|n| n.parse().ok())
        })
        .collect();
    assert_eq!(
        numbers.iter().max().copied(),
        Some(2),
        "exactly one new generation after {first}"
    );

    // With --wait, the others wait and then find nothing due.
    let when = days_later(12.0);
    let runs = concurrent_renewals(&env, &when, 5, &["--no-jitter", "--wait", "60"]);
    assert!(runs.iter().all(|r| r.code == 0), "{runs:#?}");
    assert_eq!(
        runs.iter()
            .filter(|r| r.stdout.starts_with("renewed"))
            .count(),
        1,
        "{runs:#?}"
    );
}

#[test]
fn the_deploy_hook_gets_the_documented_environment() {
    let env = Env::new();
    env.run(
        "certctl",
        &["ensure", "--id", "web", "localhost", "127.0.0.1"],
    )
    .code(0);
    let dump = env.root().join("hook.env");
    let hook = format!("env | grep '^KEYGATE_' | sort > {}", dump.display());
    env.run(
        "certctl",
        &["renew", "--no-jitter", "--force", "--deploy-hook", &hook],
    )
    .code(0);
    let text = std::fs::read_to_string(&dump).unwrap();
    let dir = current(&env, "web");
    for line in [
        "KEYGATE_CERT_ID=web".to_owned(),
        format!("KEYGATE_CERT_DIR={}", dir.display()),
        format!("KEYGATE_CERT_FILE={}", dir.join("cert.pem").display()),
        format!("KEYGATE_KEY_FILE={}", dir.join("key.pem").display()),
        format!(
            "KEYGATE_FULLCHAIN_FILE={}",
            dir.join("fullchain.pem").display()
        ),
        "KEYGATE_RENEWED_NAMES=localhost 127.0.0.1".to_owned(),
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
    }
    // The hook can also come from the config file.
    std::fs::write(
        env.root().join("config.toml"),
        format!(
            "[cert]\ndeploy_hook = \"echo configured > {}\"\n",
            env.root().join("cfg-hook").display()
        ),
    )
    .unwrap();
    env.run("certctl", &["renew", "--no-jitter", "--force"])
        .code(0);
    assert_eq!(
        std::fs::read_to_string(env.root().join("cfg-hook")).unwrap(),
        "configured\n"
    );
}

#[test]
fn a_failing_hook_exits_1_and_the_new_cert_stays_live() {
    let env = Env::new();
    env.run("certctl", &["ensure"]).code(0);
    let first = generation(&env, "default");
    let run = env.run(
        "certctl",
        &[
            "renew",
            "--no-jitter",
            "--force",
            "--deploy-hook",
            "echo reload refused >&2; exit 3",
        ],
    );
    run.code(1);
    assert!(
        run.stdout.starts_with("renewed 'default'"),
        "{}",
        run.stdout
    );
    // Issue 14: the hook's own words are shown, and a renewal whose hook failed is reported
    // as renewed with a failed hook, not as a failed renewal too.
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(
        lines,
        [
            "deploy hook ('default'): reload refused",
            "error: 1 renewed; the deploy hook failed for 'default': deploy hook failed with exit status: 3: reload refused",
            "hint: the new certificates are live; fix the hook and run it by hand, or renew again with --force",
        ],
        "{}",
        run.stderr
    );
    assert_ne!(generation(&env, "default"), first);
    env.run("certctl", &["inspect", "--id", "default"]).code(0);
    // A hook that works: what it printed is shown too (certbot shows it as well).
    let run = env.run(
        "certctl",
        &[
            "renew",
            "--no-jitter",
            "--force",
            "--deploy-hook",
            "echo reloaded nginx",
        ],
    );
    run.code(0);
    assert_eq!(run.stderr, "deploy hook ('default'): reloaded nginx\n");
}

/// Issue 14: `--quiet` leaves out every success summary (the README promises quiet
/// success); what a command produces still prints. `--force` renews now: only the scheduled,
/// non-interactive run waits, and it says how long.
#[test]
fn quiet_success_and_force_means_now() {
    let env = Env::new();
    let run = env.run("certctl", &["ensure", "-q"]);
    run.code(0);
    assert_eq!((run.stdout.as_str(), run.stderr.as_str()), ("", ""));
    let run = env.run("certctl", &["ensure", "--quiet"]);
    run.code(0);
    assert_eq!((run.stdout.as_str(), run.stderr.as_str()), ("", ""));
    let run = env.run("certctl", &["renew", "--force", "--no-jitter", "-q"]);
    run.code(0);
    assert_eq!((run.stdout.as_str(), run.stderr.as_str()), ("", ""));
    let run = env.run("tokenctl", &["create", "--name", "ci", "-q"]);
    run.code(0);
    assert_eq!(run.stderr, "");
    assert!(
        run.stdout.trim().starts_with("kg_"),
        "the token still prints: {}",
        run.stdout
    );
    let run = env.run("tokenctl", &["ensure", "--name", "deploy", "-q"]);
    run.code(0);
    assert_eq!(run.stderr, "");
    assert!(
        run.stdout.trim().ends_with("deploy.token"),
        "{}",
        run.stdout
    );
    let run = env.run("keygate", &["check", "--plain-http", "-q"]);
    run.code(0);
    assert_eq!((run.stdout.as_str(), run.stderr.as_str()), ("", ""));
    let broken = Env::new();
    std::fs::create_dir_all(broken.root().join("state")).unwrap();
    std::fs::write(broken.root().join("state/tokens.json"), "{").unwrap();
    let run = broken.run("keygate", &["check", "--plain-http", "-q"]);
    run.code(1);
    assert!(
        run.stdout.starts_with("FAIL") && !run.stdout.contains("ok  "),
        "{}",
        run.stdout
    );

    // Forced, from a script (stdin is not a terminal): no wait, no word about one.
    let forced = env.run("certctl", &["renew", "--force"]);
    forced.code(0);
    assert!(!forced.stderr.contains("waiting"), "{}", forced.stderr);
    // The scheduled run with something due says how long it waits (stopped while waiting).
    let mut child = env
        .cmd("certctl")
        .env("KEYGATE_TEST_NOW", days_later(80.0))
        .arg("renew")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stderr.take().unwrap()),
        &mut first,
    )
    .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        first.starts_with("certctl renew: waiting ")
            && first.contains(" s first")
            && first.contains("--no-jitter"),
        "{first}"
    );
}

#[test]
fn a_truncated_cert_is_renewed_and_nothing_else_is_touched() {
    let env = Env::new();
    env.run("certctl", &["ensure"]).code(0);
    env.run("certctl", &["ensure", "--id", "other", "localhost"])
        .code(0);
    let other = generation(&env, "other");
    let other_cert = std::fs::read(current(&env, "other").join("cert.pem")).unwrap();
    let cert = std::fs::canonicalize(current(&env, "default").join("cert.pem")).unwrap();
    let bytes = std::fs::read(&cert).unwrap();
    std::fs::write(&cert, &bytes[..bytes.len() / 2]).unwrap();

    let status = env.run("certctl", &["status", "--json"]);
    status.code(1);
    let broken = status.json()["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "default")
        .unwrap()["reason"]
        .clone();
    assert!(
        broken
            .as_str()
            .unwrap()
            .contains("changed since it was published"),
        "{broken}"
    );

    let run = env.run("certctl", &["renew", "--no-jitter"]);
    run.code(0);
    assert_eq!(run.stdout.lines().count(), 1, "{}", run.stdout);
    assert!(run.stdout.starts_with("renewed 'default'"));
    assert_eq!(generation(&env, "other"), other);
    assert_eq!(
        std::fs::read(current(&env, "other").join("cert.pem")).unwrap(),
        other_cert
    );
    env.run("certctl", &["status"]).code(0);
}

/// Issue 14: a renewal never moves a certificate to another CA. With mkcert's CAROOT
/// missing (cron and systemd do not carry it) or mkcert gone, renew used to fall back to the
/// local CA and exit 0, and every client that trusted mkcert's CA failed TLS. Now it fails
/// (exit 1, one line naming what is missing, a hint), the live certificate stays, and the job
/// `certctl schedule` prints carries the CAROOT that renews it with mkcert.
#[test]
fn a_renewal_keeps_the_ca_that_issued_the_certificate() {
    if !have("mkcert") || !have("openssl") {
        return;
    }
    let mut env = Env::new();
    let caroot = mkcert_caroot(&env);
    env.set("CAROOT", &caroot);
    env.run("certctl", &["ensure"]).code(0);
    let issuer = || {
        let out = Command::new("openssl")
            .args(["x509", "-noout", "-issuer", "-in"])
            .arg(current(&env, "default").join("cert.pem"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let mkcert_issuer = issuer();
    assert!(mkcert_issuer.contains("mkcert"), "{mkcert_issuer}");
    let before = generation(&env, "default");

    // The environment of a cron job: no CAROOT, so mkcert's default (under HOME) is empty.
    let mut cron = env.cmd("certctl");
    cron.env_remove("CAROOT")
        .args(["renew", "--no-jitter", "--force"]);
    let run = test_support::Run::from(cron.output().unwrap());
    run.code(1);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "one error line and a hint: {}", run.stderr);
    assert!(
        lines[0].contains("mkcert is not available")
            && lines[0].contains("has no rootCA.pem")
            && lines[0].contains("was issued by mkcert's CA"),
        "{}",
        run.stderr
    );
    assert!(
        lines[1].starts_with("hint:")
            && lines[1].contains("certctl schedule")
            && lines[1].contains("certctl issue --id default --method auto"),
        "{}",
        run.stderr
    );
    assert_eq!(generation(&env, "default"), before, "nothing was published");
    assert_eq!(issuer(), mkcert_issuer);

    // mkcert gone from PATH: the same refusal.
    let bin = env.root().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in ["sh", "env", "openssl"] {
        if let Some(p) = which(tool) {
            std::os::unix::fs::symlink(p, bin.join(tool)).unwrap();
        }
    }
    let mut no_mkcert = env.cmd("certctl");
    no_mkcert
        .env("PATH", &bin)
        .args(["renew", "--no-jitter", "--force"]);
    let run = test_support::Run::from(no_mkcert.output().unwrap());
    run.code(1);
    assert!(
        run.stderr.contains("mkcert is not available: not on PATH"),
        "{}",
        run.stderr
    );
    assert_eq!(generation(&env, "default"), before);
    let status = env.run("certctl", &["status", "--json"]);
    assert_eq!(status.json()["certificates"][0]["method"], "mkcert");

    // The job schedule prints carries the CAROOT, and in that environment renewal works
    // with mkcert's CA.
    let cron_line = env.run("certctl", &["schedule", "--cron"]);
    cron_line.code(0);
    let want = format!("CAROOT={} ", caroot.display());
    assert!(cron_line.stdout.contains(&want), "{}", cron_line.stdout);
    let units = env.run("certctl", &["schedule", "--systemd"]);
    assert!(
        units
            .stdout
            .contains(&format!("Environment=CAROOT={}\n", caroot.display())),
        "{}",
        units.stdout
    );
    let mut job = env.cmd("certctl");
    job.env_remove("CAROOT")
        .env("CAROOT", &caroot)
        .args(["renew", "--no-jitter", "--force"]);
    let run = test_support::Run::from(job.output().unwrap());
    run.code(0);
    assert!(
        run.stdout.starts_with("renewed 'default' with mkcert"),
        "{}",
        run.stdout
    );
    assert_ne!(generation(&env, "default"), before);
    assert_eq!(issuer(), mkcert_issuer);
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

#[test]
fn doctor_fix_repairs_modes_and_stale_files() {
    let env = Env::new();
    env.run("certctl", &["ensure"]).code(0);
    let key = std::fs::canonicalize(current(&env, "default").join("key.pem")).unwrap();
    Command::new("chmod")
        .arg("0644")
        .arg(&key)
        .status()
        .unwrap();
    // A temporary file left by a writer that was killed (its pid no longer exists).
    let stale = env.root().join("state/.certs.json.999999.AbCdEf.kgtmp");
    std::fs::write(&stale, b"half").unwrap();
    let run = env.run("certctl", &["doctor"]);
    run.code(1);
    assert!(
        run.stdout.contains("PROBLEM") && run.stdout.contains("0644"),
        "{}",
        run.stdout
    );

    let fixed = env.run("certctl", &["doctor", "--fix"]);
    fixed.code(0);
    assert!(
        fixed
            .stdout
            .lines()
            .any(|l| l.starts_with("fixed") && l.contains("0644 changed to 0600")),
        "{}",
        fixed.stdout
    );
    assert!(
        fixed
            .stdout
            .lines()
            .any(|l| l.starts_with("fixed") && l.contains("removed")),
        "{}",
        fixed.stdout
    );
    assert_eq!(stat_mode(&key), "600");
    assert!(!stale.exists());
    env.run("certctl", &["doctor"]).code(0);
}

/// The job finds the files this shell does by the rule every command uses: a relative
/// KEYGATE_HOME (which cron would resolve from another directory) is refused, as everywhere
/// else. schedule used to read the variable itself and wrote it into the job as it was.
#[test]
fn schedule_refuses_a_relative_keygate_home() {
    let mut env = Env::new();
    env.set("KEYGATE_HOME", "relative/home");
    let run = env.run("certctl", &["schedule", "--cron"]);
    run.code(2);
    assert!(
        run.stderr
            .contains("KEYGATE_HOME 'relative/home' is a relative path"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout, "");
}

#[test]
fn schedule_prints_units_systemd_accepts_and_a_valid_crontab_line() {
    let env = Env::new();
    let run = env.run("certctl", &["schedule", "--cron"]);
    run.code(0);
    let line = run.stdout.lines().find(|l| !l.starts_with('#')).unwrap();
    let fields: Vec<&str> = line.split_whitespace().collect();
    // minute hour day month weekday command...
    assert_eq!(&fields[..5], ["17", "3,15", "*", "*", "*"]);
    assert!(
        fields[5].starts_with("KEYGATE_HOME=")
            && fields[6].ends_with("/certctl")
            && fields[7] == "renew",
        "{line}"
    );
    assert!(Path::new(fields[6]).is_file());

    if !have("systemd-analyze") {
        return;
    }
    for extra in [&[][..], &["--system"][..]] {
        let mut args = vec!["schedule", "--systemd"];
        args.extend_from_slice(extra);
        let run = env.run("certctl", &args);
        run.code(0);
        let dir = tempfile::tempdir().unwrap();
        let mut file: Option<std::fs::File> = None;
        for l in run.stdout.lines() {
            if let Some(name) = l
                .strip_prefix("# ")
                .and_then(|p| p.rsplit('/').next())
                .filter(|n| n.starts_with("keygate-renew."))
            {
                file = Some(std::fs::File::create(dir.path().join(name)).unwrap());
            } else if l.starts_with("# then") {
                file = None;
            } else if let Some(f) = file.as_mut() {
                std::io::Write::write_all(f, format!("{l}\n").as_bytes()).unwrap();
            }
        }
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(dir.path().join("keygate-renew.service"))
            .arg(dir.path().join("keygate-renew.timer"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{extra:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(run.stdout.contains("RandomizedDelaySec="));
    }
}

/// Issue 14: as root, `certctl ensure` wrote to `~/.local/share/keygate` while the system
/// timer renewed `/var/lib/keygate`, an empty home, and the certificate expired. A system job
/// now renews the home this shell uses (`KEYGATE_HOME`), and without one refuses when this
/// shell's own home holds certificates that `/var/lib/keygate` would leave unrenewed.
#[test]
fn a_system_job_renews_the_home_the_bootstrap_used() {
    let env = Env::new();
    let home = env.root().display().to_string();
    let cron = env.run("certctl", &["schedule", "--system", "--cron"]);
    cron.code(0);
    assert!(
        cron.stdout.contains(&format!(" KEYGATE_HOME={home} ")),
        "{}",
        cron.stdout
    );
    let units = env.run("certctl", &["schedule", "--system", "--systemd"]);
    units.code(0);
    assert!(
        units
            .stdout
            .contains(&format!("Environment=KEYGATE_HOME={home}\n"))
            && !units.stdout.contains("StateDirectory="),
        "{}",
        units.stdout
    );
    // No KEYGATE_HOME: the system home, while this shell's own home holds nothing.
    let without_home = |args: &[&str]| {
        let mut cmd = env.cmd("certctl");
        cmd.env_remove("KEYGATE_HOME").args(args);
        test_support::Run::from(cmd.output().unwrap())
    };
    let units = without_home(&["schedule", "--system", "--systemd"]);
    units.code(0);
    assert!(
        units
            .stdout
            .contains("Environment=KEYGATE_HOME=/var/lib/keygate\n")
            && units.stdout.contains("StateDirectory=keygate\n"),
        "{}",
        units.stdout
    );
    // ... and once `certctl ensure` put a certificate there, the job would never renew it.
    without_home(&["ensure"]).code(0);
    let xdg = env.root().join(".local/share/keygate");
    assert!(xdg.join("certs/default/current/cert.pem").exists());
    for kind in ["--cron", "--systemd"] {
        let run = without_home(&["schedule", "--system", kind]);
        run.code(2);
        assert_eq!(run.stdout, "", "a job was printed");
        assert!(
            run.stderr.starts_with(&format!(
                "error: a system job renews /var/lib/keygate, but this shell's certificates are in '{}'",
                xdg.display()
            )) && run.stderr.contains("hint: run the whole bootstrap")
                && run.stderr.contains("KEYGATE_HOME=/var/lib/keygate"),
            "{}",
            run.stderr
        );
    }
}

/// Makes `env`'s certificate due and writes a config whose deploy hook creates `marker`.
fn config_with_marker_hook(env: &Env) -> PathBuf {
    env.run("certctl", &["ensure"]).code(0);
    let marker = env.root().join("hook-ran");
    std::fs::write(
        env.root().join("config.toml"),
        format!("[cert]\ndeploy_hook = \"touch {}\"\n", marker.display()),
    )
    .unwrap();
    chmod(&env.root().join("config.toml"), 0o644);
    marker
}

fn chmod(path: &Path, bits: u32) {
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(bits)).unwrap();
}

/// Issue 13: a group member wrote `config.toml` in a group-writable KEYGATE_HOME and root's
/// `certctl renew` ran their deploy hook. The config is now checked as sshd's StrictModes
/// checks `authorized_keys`: refused (exit 2, with the fix) and nothing runs.
#[test]
fn a_config_another_user_can_change_is_refused_and_its_hook_never_runs() {
    let env = Env::new();
    let marker = config_with_marker_hook(&env);
    let config = env.root().join("config.toml");
    let before = generation(&env, "default");

    chmod(env.root(), 0o770);
    let run = env.run("certctl", &["renew", "--no-jitter", "--force"]);
    run.code(2);
    assert_eq!(
        run.stderr,
        format!(
            "error: refusing to use config file '{cfg}': '{home}' is writable by group or others\n\
             hint: run `chmod go-w '{home}'`, or keep the config file where only you and root can change it\n",
            cfg = config.display(),
            home = env.root().display(),
        )
    );
    assert!(!marker.exists(), "the hook ran");
    assert_eq!(generation(&env, "default"), before, "something was renewed");
    chmod(env.root(), 0o700);

    chmod(&config, 0o664);
    let run = env.run("certctl", &["renew", "--no-jitter", "--force"]);
    run.code(2);
    assert!(
        run.stderr
            .starts_with(&format!("error: refusing to use config file '{}': it is writable by group or others\nhint: run `chmod go-w '{}'`", config.display(), config.display())),
        "{}",
        run.stderr
    );
    assert!(!marker.exists(), "the hook ran");
    chmod(&config, 0o644);

    if test_support::can_be_nobody() {
        test_support::give_to_nobody(&config);
        let run = env.run("certctl", &["renew", "--no-jitter", "--force"]);
        run.code(2);
        assert!(
            run.stderr.starts_with(&format!(
                "error: refusing to use config file '{}': it is owned by uid 65534, neither root nor this user\nhint: run `chown root '{}'`",
                config.display(),
                config.display()
            )),
            "{}",
            run.stderr
        );
        assert!(!marker.exists(), "the hook ran");
        std::os::unix::fs::chown(&config, Some(0), Some(0)).unwrap();
    }

    // The same config, once only root can change it, is used and its hook runs.
    env.run("certctl", &["renew", "--no-jitter", "--force"])
        .code(0);
    assert!(marker.exists(), "the hook did not run");
    assert_ne!(generation(&env, "default"), before);
}

/// A deploy hook given on the command line is the caller's own, but the script it starts may
/// not be: one another user can replace is refused before anything is renewed.
#[test]
fn a_hook_whose_program_another_user_can_change_is_refused_before_renewing() {
    if !test_support::can_be_nobody() {
        return;
    }
    let env = Env::new();
    env.run("certctl", &["ensure"]).code(0);
    let before = generation(&env, "default");
    let marker = env.root().join("hook-ran");
    let scripts = tempfile::tempdir().unwrap();
    let script = scripts.path().join("deploy.sh");
    std::fs::write(&script, format!("#!/bin/sh\ntouch {}\n", marker.display())).unwrap();
    chmod(&script, 0o755);
    test_support::give_to_nobody(&script);
    let hook = script.display().to_string();
    let run = env.run(
        "certctl",
        &["renew", "--no-jitter", "--force", "--deploy-hook", &hook],
    );
    run.code(2);
    assert!(
        run.stderr.starts_with(&format!(
            "error: refusing to use deploy hook program '{hook}': it is owned by uid 65534, neither root nor this user\nhint: run `chown root '{hook}'`"
        )),
        "{}",
        run.stderr
    );
    assert!(!marker.exists(), "the hook ran");
    assert_eq!(generation(&env, "default"), before);

    std::os::unix::fs::chown(&script, Some(0), Some(0)).unwrap();
    env.run(
        "certctl",
        &["renew", "--no-jitter", "--force", "--deploy-hook", &hook],
    )
    .code(0);
    assert!(marker.exists(), "the hook did not run");
}

/// Issue 13: `certctl schedule --system` printed a root job running a certctl that an
/// unprivileged user owned, so installing it ran their code as root.
#[test]
fn schedule_system_refuses_a_binary_another_user_can_change() {
    if !test_support::can_be_nobody() {
        return;
    }
    let env = Env::new();
    let place = tempfile::tempdir().unwrap();
    chmod(place.path(), 0o755);
    let copy = place.path().join("certctl");
    std::fs::copy(test_support::bin("certctl"), &copy).unwrap();
    chmod(&copy, 0o755);
    let run = |args: &[&str]| {
        let mut cmd = Command::new(&copy);
        cmd.env_clear()
            .env("KEYGATE_HOME", env.root())
            .args(args)
            .stdin(Stdio::null());
        // A test thread that forked while the copy was open for writing holds it until its
        // child execs: ETXTBSY for a moment.
        for _ in 0..100 {
            match cmd.output() {
                Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                out => return test_support::Run::from(out.unwrap()),
            }
        }
        panic!("{} stayed busy", copy.display());
    };
    run(&["schedule", "--system", "--cron"]).code(0);

    test_support::give_to_nobody(&copy);
    for kind in ["--cron", "--systemd"] {
        let out = run(&["schedule", "--system", kind]);
        out.code(2);
        assert_eq!(out.stdout, "", "a job was printed");
        assert!(
            out.stderr.starts_with(&format!(
                "error: refusing to use certctl binary '{}': it is owned by uid 65534, not by root\nhint: run `chown root '{}'`, or keep the certctl binary where only root can change it",
                copy.display(),
                copy.display()
            )),
            "{}",
            out.stderr
        );
    }
    // A directory another user can write to is as bad: they can replace the binary.
    std::os::unix::fs::chown(&copy, Some(0), Some(0)).unwrap();
    chmod(place.path(), 0o775);
    let out = run(&["schedule", "--system", "--cron"]);
    out.code(2);
    assert!(
        out.stderr.contains("is writable by group or others"),
        "{}",
        out.stderr
    );
    // The user's own job runs as the user: their own binary is theirs to run.
    run(&["schedule", "--cron"]).code(0);
}
