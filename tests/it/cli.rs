//! Conventions every binary keeps: exit codes, config resolution and explain, secrets, pipes.

use test_support::Env;

const BINARIES: [&str; 3] = ["certctl", "tokenctl", "keygate"];

#[test]
fn help_lists_the_exit_codes() {
    let env = Env::new();
    for bin in BINARIES {
        let run = env.run(bin, &["--help"]);
        run.code(0);
        for line in [
            "0   success",
            "1   the operation ran and failed",
            "2   usage or configuration error",
            "75  another run holds the lock",
        ] {
            assert!(
                run.stdout.contains(line),
                "{bin} --help lacks '{line}':\n{}",
                run.stdout
            );
        }
    }
}

#[test]
fn usage_errors_exit_2() {
    let env = Env::new();
    for bin in BINARIES {
        env.run(bin, &["no-such-command"]).code(2);
        let run = env.run(bin, &["--set", "nonsense", "config", "explain"]);
        run.code(2);
        assert_eq!(
            run.stderr,
            "error: invalid --set: expected KEY=VALUE\nhint: for example --set cert.days=30\n"
        );
    }
}

/// One table of precedence cases, checked through `config explain --json` of every binary.
#[test]
fn config_explain_shows_each_value_and_its_source() {
    let mut env = Env::new();
    let file = env.root().join("config.toml");
    std::fs::write(
        &file,
        "# keygate\n[cert]\ndays = 30\nmethod = \"mkcert\"\nkey = \"ed25519\"\n",
    )
    .unwrap();
    env.set("KEYGATE_CERT_METHOD", "local-ca")
        .set("KEYGATE_CERT_KEY", "rsa-2048");
    let file_line = |n| format!("{}:{n}", file.display());
    let cases = [
        (
            "cert.id",
            serde_json::json!("default"),
            "default".to_owned(),
        ),
        ("cert.days", serde_json::json!(30), file_line(3)),
        (
            "cert.method",
            serde_json::json!("local-ca"),
            "env KEYGATE_CERT_METHOD".to_owned(),
        ),
        (
            "cert.key",
            serde_json::json!("ecdsa-p384"),
            "flag --set".to_owned(),
        ),
    ];
    for bin in BINARIES {
        let run = env.run(
            bin,
            &[
                "--set",
                "cert.key=ecdsa-p384",
                "config",
                "explain",
                "--json",
            ],
        );
        run.code(0);
        let rows = run.json();
        for (key, value, source) in &cases {
            let row = rows["settings"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["key"] == *key)
                .unwrap();
            assert_eq!(&row["value"], value, "{bin}: value of {key}");
            assert_eq!(
                row["source"].as_str().unwrap(),
                source,
                "{bin}: source of {key}"
            );
        }
    }
    // The text form carries the same facts, one setting per line.
    let run = env.run("certctl", &["config", "explain"]);
    assert!(
        run.stdout.lines().any(|l| l.starts_with("cert.days")
            && l.contains("30")
            && l.ends_with(&format!("({})", file_line(3)))),
        "{}",
        run.stdout
    );
}

#[test]
fn an_unknown_key_is_a_usage_error_with_a_suggestion() {
    let env = Env::new();
    std::fs::write(env.root().join("config.toml"), "[cert]\ndayz = 30\n").unwrap();
    let run = env.run("certctl", &["config", "explain"]);
    run.code(2);
    assert_eq!(
        run.stderr,
        format!(
            "error: config file '{}' line 2: unknown key 'cert.dayz'\nhint: did you mean 'cert.days'?\n",
            env.root().join("config.toml").display()
        )
    );
    assert!(run.stdout.is_empty());
}

#[test]
fn kubernetes_service_variables_do_not_break_start_up() {
    let mut env = Env::new();
    env.set("KEYGATE_PORT", "tcp://10.0.0.1:443")
        .set("KEYGATE_PORT_443_TCP_ADDR", "10.0.0.1")
        .set("KEYGATE_SERVICE_HOST", "10.0.0.1");
    for bin in BINARIES {
        env.run(bin, &["config", "explain"]).code(0);
    }
}

#[test]
fn a_secret_is_shown_only_as_set() {
    let mut env = Env::new();
    env.set(
        "KEYGATE_TOKEN",
        "kg_0123456789ab_thisisthesecretpartofthetoken0123456",
    );
    for json in [true, false] {
        let mut args = vec!["config", "explain"];
        if json {
            args.push("--json");
        }
        let run = env.run("tokenctl", &args);
        run.code(0);
        assert!(!run.stdout.contains("thisisthesecret") && !run.stderr.contains("thisisthesecret"));
        assert!(run.stdout.contains("set"));
    }
}

#[test]
fn relative_xdg_values_are_ignored() {
    let env = Env::new();
    let run = Run::from(
        env.cmd("certctl")
            .env_remove("KEYGATE_HOME")
            .env("XDG_CONFIG_HOME", "relative/config")
            .env("XDG_STATE_HOME", "/abs/state")
            .args(["config", "paths", "--json"])
            .output()
            .unwrap(),
    );
    run.code(0);
    let paths = run.json();
    let home = env.root().display().to_string();
    assert_eq!(
        paths["config_file"],
        format!("{home}/.config/keygate/config.toml")
    );
    assert_eq!(paths["state_dir"], "/abs/state/keygate");
    assert_eq!(paths["private_dir"], format!("{home}/.local/share/keygate"));
}

#[test]
fn a_closed_stdout_is_not_an_error() {
    let env = Env::new();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader); // every write now fails with EPIPE
    let out = env
        .cmd("certctl")
        .args(["config", "explain"])
        .stdout(writer)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

use test_support::Run;

/// Security review: `--set client.token=...` put a token in argv (visible in `ps`), and a
/// mistyped key echoed the value.
#[test]
fn secrets_are_never_taken_from_the_command_line_nor_echoed() {
    let env = Env::new();
    let run = env.run(
        "tokenctl",
        &[
            "--set",
            "client.token=kg_SuperSecretToken123",
            "config",
            "explain",
        ],
    );
    run.code(2);
    assert_eq!(
        run.stderr.lines().next().unwrap(),
        "error: invalid --set: 'client.token' is a secret and is never taken from the command line"
    );
    assert!(run.stderr.contains("KEYGATE_TOKEN"));
    let run = env.run(
        "certctl",
        &[
            "--set",
            "client.tokn=kg_SuperSecretToken123",
            "config",
            "explain",
        ],
    );
    run.code(2);
    assert!(
        !run.stderr.contains("SuperSecret") && !run.stdout.contains("SuperSecret"),
        "{}",
        run.stderr
    );
}

/// Security review: a relative KEYGATE_HOME was ignored, so keys went to the real home.
#[test]
fn a_relative_keygate_home_is_a_usage_error() {
    let env = Env::new();
    let run = Run::from(
        env.cmd("certctl")
            .env("KEYGATE_HOME", "relative/dir")
            .args(["config", "paths"])
            .output()
            .unwrap(),
    );
    run.code(2);
    assert_eq!(
        run.stderr.lines().next().unwrap(),
        "error: KEYGATE_HOME 'relative/dir' is a relative path"
    );
}

/// The test clock is a declared setting: `config explain` shows when it is in effect.
#[test]
fn the_test_clock_is_visible_in_config_explain() {
    let mut env = Env::new();
    env.set("KEYGATE_TEST_NOW", "2030-01-01T00:00:00Z");
    let rows = env.run("certctl", &["config", "explain", "--json"]).json();
    let row = rows["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == "test.now")
        .unwrap()
        .clone();
    assert_eq!(row["value"], "2030-01-01T00:00:00Z");
    assert_eq!(row["source"], "env KEYGATE_TEST_NOW");
}

/// Issue 14, item 1: a config file that was named must exist. It used to be ignored, so a
/// typo in `--config` or `KEYGATE_CONFIG` dropped `required_scopes` and a 403 became a 200.
#[test]
fn a_named_config_file_that_does_not_exist_is_a_usage_error() {
    let mut env = Env::new();
    let typo = env.root().join("confg.toml");
    let typo_text = typo.to_str().unwrap().to_owned();
    for bin in BINARIES {
        let run = env.run(bin, &["--config", &typo_text, "config", "explain"]);
        run.code(2);
        assert!(
            run.stderr.contains(&format!(
                "error: config file '{typo_text}' does not exist (named by --config)"
            )),
            "{bin}: {}",
            run.stderr
        );
        assert!(
            run.stderr
                .contains("hint: check the path given to --config"),
            "{}",
            run.stderr
        );
    }
    let run = env.run(
        "keygate",
        &["--config", &typo_text, "check", "--plain-http"],
    );
    run.code(2);
    // Where the files are can still be asked.
    env.run("keygate", &["--config", &typo_text, "config", "paths"])
        .code(0);
    env.set("KEYGATE_CONFIG", &typo);
    let run = env.run("keygate", &["check", "--plain-http"]);
    run.code(2);
    assert!(
        run.stderr.contains("(named by KEYGATE_CONFIG)"),
        "{}",
        run.stderr
    );
    // Once it exists, even empty, it is the configuration.
    std::fs::write(&typo, "").unwrap();
    env.run(
        "keygate",
        &["check", "--plain-http", "--listen", "127.0.0.1:1"],
    )
    .code(0);
}
