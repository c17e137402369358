//! Resolution order, file errors and secrecy, through the pure `Config::resolve`.

use std::path::Path;

use kg_config::{Config, ConfigError, Source};

/// Environment variables of one case.
type Vars = &'static [(&'static str, &'static str)];

fn env_of(pairs: Vars) -> impl Fn(&str) -> Option<String> {
    move |var| {
        pairs
            .iter()
            .find(|(k, _)| *k == var)
            .map(|(_, v)| (*v).to_owned())
    }
}

const FILE: &str =
    "[cert]\nmethod = \"mkcert\"\ndays = 30\n\n[server]\nlisten = [\"127.0.0.1:9443\"]\n";

/// `(key, env, flag, expected value, expected source)`: one row per precedence case.
#[test]
fn precedence_flag_over_env_over_file_over_default() {
    let path = Path::new("/etc/keygate/config.toml");
    let file_line = |line| Source::File {
        path: path.to_owned(),
        line,
    };
    let cases: &[(&str, Vars, Option<&str>, &str, Source)] = &[
        ("cert.key", &[], None, "ecdsa-p256", Source::Default),
        ("cert.method", &[], None, "mkcert", file_line(2)),
        (
            "cert.method",
            &[("KEYGATE_CERT_METHOD", "local-ca")],
            None,
            "local-ca",
            Source::Env("KEYGATE_CERT_METHOD"),
        ),
        (
            "cert.method",
            &[("KEYGATE_CERT_METHOD", "local-ca")],
            Some("self-signed"),
            "self-signed",
            Source::Flag("--method".into()),
        ),
        ("cert.days", &[], None, "30", file_line(3)),
        (
            "cert.days",
            &[("KEYGATE_CERT_DAYS", "7")],
            None,
            "7",
            Source::Env("KEYGATE_CERT_DAYS"),
        ),
        (
            "cert.days",
            &[("KEYGATE_CERT_DAYS", "7")],
            Some("1"),
            "1",
            Source::Flag("--days".into()),
        ),
        // An empty variable counts as unset, as in most shells' `VAR= cmd` idiom.
        (
            "cert.days",
            &[("KEYGATE_CERT_DAYS", "")],
            None,
            "30",
            file_line(3),
        ),
    ];
    for (key, env, flag, want, want_source) in cases {
        let flag_name = if *key == "cert.days" {
            "--days"
        } else {
            "--method"
        };
        let flags: Vec<(&str, &str, String)> = flag
            .iter()
            .map(|v| (*key, flag_name, (*v).to_owned()))
            .collect();
        let cfg = Config::resolve(Some((path, FILE)), env_of(env), &flags).unwrap();
        let got = match *key {
            "cert.days" => cfg.u32(key).to_string(),
            _ => cfg.str(key).unwrap().to_owned(),
        };
        assert_eq!(&got, want, "{key} with env {env:?} flag {flag:?}");
        assert_eq!(
            cfg.source(key),
            want_source,
            "{key} with env {env:?} flag {flag:?}"
        );
    }
}

#[test]
fn unknown_keys_name_file_line_and_a_suggestion() {
    let path = Path::new("/home/u/.config/keygate/config.toml");
    let cases: &[(&str, &str, Option<&str>)] = &[
        (
            "[cert]\nmethod = \"auto\"\ndayz = 3\n",
            "config file '/home/u/.config/keygate/config.toml' line 3: unknown key 'cert.dayz'",
            Some("did you mean 'cert.days'?"),
        ),
        (
            "[sever]\nlisten = []\n",
            "config file '/home/u/.config/keygate/config.toml' line 1: unknown key 'sever'",
            Some("did you mean 'server'?"),
        ),
        (
            "[cert]\nfrobnicate = 1\n",
            "config file '/home/u/.config/keygate/config.toml' line 2: unknown key 'cert.frobnicate'",
            Some("run `certctl config explain` to list every setting"),
        ),
        (
            "[profiles.ci]\ntoken_fil = \"/x\"\n",
            "config file '/home/u/.config/keygate/config.toml' line 2: unknown key 'profiles.ci.token_fil'",
            Some("did you mean 'profiles.ci.token_file'?"),
        ),
    ];
    for (text, want, hint) in cases {
        let err = Config::resolve(Some((path, text)), |_| None, &[]).unwrap_err();
        assert_eq!(err.to_string(), *want);
        assert_eq!(err.hint().as_deref(), *hint);
    }
}

#[test]
fn bad_values_and_syntax_name_their_origin() {
    let path = Path::new("c.toml");
    let cases: &[(&str, Vars, &str)] = &[
        (
            "[cert]\ndays = 0\n",
            &[],
            "invalid value for 'cert.days' from c.toml:2: 0 is out of range 1..=825",
        ),
        (
            "[cert]\ndays = \"ten\"\n",
            &[],
            "invalid value for 'cert.days' from c.toml:2: expected a whole number",
        ),
        (
            "[cert]\nmethod = \"acme\"\n",
            &[],
            "invalid value for 'cert.method' from c.toml:2: expected one of auto, tailscale, mkcert, local-ca, self-signed",
        ),
        (
            "",
            &[("KEYGATE_CERT_DAYS", "soon")],
            "invalid value for 'cert.days' from env KEYGATE_CERT_DAYS: expected a whole number",
        ),
        ("[cert\n", &[], "config file 'c.toml' line 1: "),
    ];
    for (text, env, want) in cases {
        let err = Config::resolve(Some((path, text)), env_of(env), &[]).unwrap_err();
        assert!(err.to_string().starts_with(want), "got {err}, want {want}");
    }
}

#[test]
fn unrelated_keygate_variables_are_ignored() {
    // Kubernetes injects <SERVICE>_PORT for a service named "keygate".
    let env = env_of(&[
        ("KEYGATE_PORT", "tcp://10.0.0.1:443"),
        ("KEYGATE_SERVICE_HOST", "10.0.0.1"),
    ]);
    let cfg = Config::resolve(None, env, &[]).unwrap();
    assert_eq!(cfg.u32("cert.days"), 90);
}

#[test]
fn secrets_never_print_and_never_come_from_the_file() {
    let cfg = Config::resolve(
        None,
        env_of(&[("KEYGATE_TOKEN", "kg_supersecretvalue")]),
        &[],
    )
    .unwrap();
    assert!(
        !format!("{cfg:?}").contains("supersecret"),
        "Debug leaks the secret"
    );
    let explained = serde_json::to_string(&cfg.explain()).unwrap();
    assert!(
        !explained.contains("supersecret"),
        "explain leaks the secret"
    );
    let row = cfg
        .explain()
        .into_iter()
        .find(|r| r.key == "client.token")
        .unwrap();
    assert_eq!(row.value, "set");
    assert_eq!(row.source, "env KEYGATE_TOKEN");

    let err = Config::resolve(
        Some((Path::new("c.toml"), "[client]\ntoken = \"kg_x\"\n")),
        |_| None,
        &[],
    )
    .unwrap_err();
    assert!(
        matches!(err, ConfigError::SecretInFile { line: 2, .. }),
        "{err}"
    );
    assert!(!err.to_string().contains("kg_x"));
}

#[test]
fn masked_placeholders_are_refused_as_secrets() {
    // The redaction-wipe bug: a UI shows "********" and writes it back over the real secret.
    for mask in ["********", "set", "[REDACTED]", "•••"] {
        let env = move |v: &str| (v == "KEYGATE_TOKEN").then(|| mask.to_owned());
        let err = Config::resolve(None, env, &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value for 'client.token' from env KEYGATE_TOKEN: this looks like a masked placeholder, not a real secret"
        );
    }
}

#[test]
fn durations_parse_and_format() {
    use kg_config::{format_duration, parse_duration};
    use std::time::Duration;
    for (text, secs) in [
        ("0", 0),
        ("90s", 90),
        ("15m", 900),
        ("24h", 86_400),
        ("30d", 2_592_000),
        ("1h30m", 5_400),
        ("2w", 1_209_600),
    ] {
        assert_eq!(
            parse_duration(text),
            Ok(Duration::from_secs(secs)),
            "{text}"
        );
    }
    for bad in ["", "h", "10", "10x", "-5m", "1.5h"] {
        assert!(parse_duration(bad).is_err(), "{bad} must be refused");
    }
    assert_eq!(format_duration(Duration::from_secs(86_400)), "1d");
    assert_eq!(format_duration(Duration::from_secs(5_400)), "90m");
}

#[test]
fn an_auto_true_false_setting_takes_a_toml_boolean_and_nothing_else() {
    let path = Path::new("c.toml");
    let text = "[oauth]\nenabled = false\n[server]\nlocal_bypass = true\n";
    let c = Config::resolve(Some((path, text)), |_| None, &[]).unwrap();
    assert_eq!(c.str("oauth.enabled"), Some("false"));
    assert_eq!(c.str("server.local_bypass"), Some("true"));
    // A word set without `true` still wants a word.
    let err = Config::resolve(Some((path, "[cert]\nmethod = true\n")), |_| None, &[]).unwrap_err();
    assert!(err.to_string().ends_with("expected a string"), "{err}");
}

#[test]
fn profiles_hold_an_api_token_file_or_an_oauth_client_and_nothing_secret() {
    let path = Path::new("c.toml");
    let text = "[profiles.ci]\nissuer = \"https://id.example\"\nclient_id = \"kgc_x\"\n\
                scopes = [\"deploy\", \"read\"]\nclient_secret_file = \"/run/secret\"\n\
                [profiles.dev]\ntoken_file = \"/t\"\n";
    let c = Config::resolve(Some((path, text)), |_| None, &[]).unwrap();
    let ci = c.profile("ci").unwrap();
    assert_eq!(ci.issuer.as_deref(), Some("https://id.example"));
    assert_eq!(ci.scopes, ["deploy", "read"]);
    assert_eq!(ci.token_file, None);
    assert_eq!(
        c.profile("dev").unwrap().token_file.as_deref(),
        Some(Path::new("/t"))
    );
    let err = |t: &str| {
        Config::resolve(Some((path, t)), |_| None, &[])
            .unwrap_err()
            .to_string()
    };
    assert!(err("[profiles.x]\nclient_id = \"a\"\n").contains("token_file = \"PATH\""));
    assert!(
        err("[profiles.x]\nissuer = \"h\"\nscopes = \"deploy\"\n").contains("a list of strings")
    );
    // A secret has no key here: it would sit in a file meant to be shared.
    let e = err("[profiles.x]\nissuer = \"h\"\nclient_secret = \"s\"\n");
    assert!(
        e.contains("profiles.x.client_secret") && !e.contains("\"s\""),
        "{e}"
    );
}
