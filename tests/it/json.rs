//! Issue 14 item 13, machine output that scripts can trust: every `--json` document of the
//! three binaries, run for real, is checked against its JSON Schema in `docs/schema/` (so a
//! schema cannot drift from the code) and pinned by an insta snapshot (so a renamed, removed
//! or retyped key fails here before it reaches a script). The server's log and audit lines
//! are checked against `log-line.json` and `audit-line.json` the same way.
//!
//! The clock is fixed (`KEYGATE_TEST_NOW`), so instants are stable; what is random or
//! machine-bound (token ids and secrets, serials, fingerprints, the home directory, what
//! detection found on this machine, this host's names, the CA's key id) is redacted before
//! the snapshot. Under `CI=true` insta
//! fails on a mismatch and writes nothing; `cargo insta review` accepts a change locally.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use test_support::server::{audit_lines, eventually, keygate, local_addr, raw};
use test_support::{Env, Run};

const NOW: &str = "2026-11-01T12:00:00Z";

fn env() -> Env {
    let mut env = Env::new();
    env.set("KEYGATE_TEST_NOW", NOW);
    env
}

fn schema_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../docs/schema")
        .join(format!("{name}.json"))
}

/// Checks `value` against `docs/schema/<file>.json`, listing every violation.
#[track_caller]
pub(crate) fn validate(file: &str, value: &Value) {
    validate_against(&schema_file(file), value);
}

/// Checks `value` against the JSON schema in `path` (draft 2020-12), listing every violation.
#[track_caller]
pub(crate) fn validate_against(path: &Path, value: &Value) {
    let shown = path.display();
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{shown}: {e}"));
    let schema: Value = serde_json::from_str(&text).unwrap();
    let validator = jsonschema::draft202012::new(&schema)
        .unwrap_or_else(|e| panic!("{shown} is not a valid schema: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "output does not match {shown}:\n{}\n--- output\n{value:#}",
        errors.join("\n")
    );
}

/// Values no two runs share, by key, wherever they appear.
const RANDOM: &[&str] = &[
    "id",
    "old_id",
    "token",
    "serial",
    "sha256_fingerprint",
    "recipient",
    "pem",
    "regex",
    "format",
    "prefix",
    "client_id",
    "client_secret",
    "kid",
];

/// This host's names as certctl derives them (`kg_cascade::host_names`): the short name and
/// the full one, longest first so that a replacement does not split the longer.
fn host_names() -> Vec<String> {
    let node = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let node = node.trim().trim_end_matches('.').to_ascii_lowercase();
    let mut names: Vec<String> = node
        .split_once('.')
        .map(|(s, _)| s.to_owned())
        .into_iter()
        .collect();
    if !node.is_empty() {
        names.insert(0, node);
    }
    names
}

/// Replaces each run of `[0-9A-F]` (at least 8) that follows `marker` with `with`: the CA's
/// key id in its name (`key 3B1550DD`), a serial in a check's detail.
fn redact_hex_after(s: &str, marker: &str, with: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find(marker) {
        let (before, after) = rest.split_at(at + marker.len());
        out.push_str(before);
        let hex = after
            .find(|c: char| !c.is_ascii_hexdigit())
            .unwrap_or(after.len());
        if hex >= 8 {
            out.push_str(with);
            rest = &after[hex..];
        } else {
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

fn redact(v: &mut Value, home: &str, key: Option<&str>) {
    match v {
        Value::String(s) => {
            if key.is_some_and(|k| RANDOM.contains(&k)) && key != Some("id") {
                *s = format!("[{}]", key.unwrap_or_default());
            } else if key == Some("id") && s.len() == 12 && s.chars().all(char::is_alphanumeric) {
                // Token ids; certificate ids ("default") are names and stay.
                *s = "[token id]".into();
            } else {
                let mut t = s.replace(home, "[home]");
                t = redact_hex_after(&t, "key ", "[ca key id]");
                t = redact_hex_after(&t, "serial ", "[serial]");
                for h in host_names() {
                    t = t.replace(&format!("local CA {h}"), "local CA [host]");
                }
                *s = t;
            }
        }
        Value::Array(a) if key == Some("names") => {
            // The host's names (one or two, by machine) become one `[host]`.
            let hosts = host_names();
            let mut seen = false;
            a.retain_mut(|x| {
                if x.as_str().is_some_and(|n| hosts.iter().any(|h| h == n)) {
                    *x = "[host]".into();
                    !std::mem::replace(&mut seen, true)
                } else {
                    true
                }
            });
            a.iter_mut().for_each(|x| redact(x, home, key));
        }
        Value::Array(a) => a.iter_mut().for_each(|x| redact(x, home, key)),
        Value::Object(m) => {
            // What tier detection found depends on the machine (mkcert, tailscale on PATH).
            if m.get("check").and_then(Value::as_str) == Some("method") {
                m.insert("detail".into(), "[depends on this machine]".into());
            }
            for (k, x) in m.iter_mut() {
                redact(x, home, Some(k));
            }
        }
        _ => {}
    }
}

/// The one check every document passes: an object whose first key is `schema`, naming
/// `schema_id`; valid against `docs/schema/<file>.json`; pinned as snapshot `name`.
#[track_caller]
fn pin(env: &Env, name: &str, file: &str, schema_id: &str, run: &Run) -> Value {
    let head = format!("{{\n  \"schema\": \"{schema_id}\"");
    assert!(
        run.stdout.starts_with(&head),
        "the first key must be \"schema\": \"{schema_id}\":\n{}\n--- stderr\n{}",
        run.stdout,
        run.stderr
    );
    let value = run.json();
    validate(file, &value);
    let mut shown = value.clone();
    redact(&mut shown, &env.root().display().to_string(), None);
    insta::with_settings!({ snapshot_path => "snapshots", prepend_module_to_snapshot => false }, {
        insta::assert_json_snapshot!(name, shown);
    });
    value
}

/// certctl: ensure, issue, inspect, status, renew, doctor, ca show/export, trust, config.
#[test]
fn certctl_documents_match_their_schemas_and_snapshots() {
    let env = env();
    let dry = env.run(
        "certctl",
        &["ensure", "--method", "local-ca", "--dry-run", "--json"],
    );
    pin(
        &env,
        "certctl.ensure.dry_run",
        "certctl.ensure",
        "certctl.ensure/1",
        dry.code(0),
    );
    let ensure = env.run("certctl", &["ensure", "--method", "local-ca", "--json"]);
    let v = pin(
        &env,
        "certctl.ensure",
        "certctl.ensure",
        "certctl.ensure/1",
        ensure.code(0),
    );
    assert_eq!(v["action"], "issued");
    assert!(v["names"].as_array().unwrap().iter().all(Value::is_string));
    assert!(v["files"]["cert_file"].as_str().unwrap().starts_with('/'));
    let issue = env.run("certctl", &["issue", "--method", "local-ca", "--json"]);
    pin(
        &env,
        "certctl.issue",
        "certctl.ensure",
        "certctl.issue/1",
        issue.code(0),
    );

    let inspect = env.run("certctl", &["inspect", "--id", "default", "--json"]);
    let v = pin(
        &env,
        "certctl.inspect",
        "certctl.inspect",
        "certctl.inspect/1",
        inspect.code(0),
    );
    assert_eq!(v["problems"], serde_json::json!([]));

    let status = env.run("certctl", &["status", "--json"]);
    let v = pin(
        &env,
        "certctl.status",
        "certctl.status",
        "certctl.status/1",
        status.code(0),
    );
    assert_eq!(v["certificates"][0]["state"], "valid");

    let renew = env.run("certctl", &["renew", "--no-jitter", "--json"]);
    pin(
        &env,
        "certctl.renew.nothing_due",
        "certctl.renew",
        "certctl.renew/1",
        renew.code(0),
    );
    let dry = env.run("certctl", &["renew", "--dry-run", "--force", "--json"]);
    pin(
        &env,
        "certctl.renew.dry_run",
        "certctl.renew",
        "certctl.renew/1",
        dry.code(0),
    );
    let forced = env.run("certctl", &["renew", "--force", "--no-jitter", "--json"]);
    let v = pin(
        &env,
        "certctl.renew",
        "certctl.renew",
        "certctl.renew/1",
        forced.code(0),
    );
    assert_eq!(v["renewed"].as_array().unwrap().len(), 1);

    let doctor = env.run("certctl", &["doctor", "--json"]);
    let v = pin(
        &env,
        "certctl.doctor",
        "certctl.doctor",
        "certctl.doctor/1",
        doctor.code(0),
    );
    assert_eq!(v["problem_count"], 0);

    let show = env.run("certctl", &["ca", "show", "--json"]);
    pin(
        &env,
        "certctl.ca.show",
        "certctl.ca.show",
        "certctl.ca.show/1",
        show.code(0),
    );
    let export = env.run("certctl", &["ca", "export", "--json"]);
    pin(
        &env,
        "certctl.ca.export",
        "certctl.ca.export",
        "certctl.ca.export/1",
        export.code(0),
    );
    let trust = env.run("certctl", &["trust", "--json"]);
    pin(
        &env,
        "certctl.trust",
        "certctl.trust",
        "certctl.trust/1",
        trust.code(0),
    );

    // Aged past its end, the certificate is expired; with its key removed, broken.
    let aged = env
        .cmd("certctl")
        .env("KEYGATE_TEST_NOW", "2027-06-01T00:00:00Z")
        .args(["status", "--json"])
        .output()
        .unwrap();
    let aged = Run::from(aged);
    let v = aged.code(1).json();
    validate("certctl.status", &v);
    assert_eq!(v["certificates"][0]["state"], "expired", "{v:#}");
    assert_eq!(v["ok"], false);
    let key = env.root().join("private/certs/default/current/key.pem");
    std::fs::remove_file(&key).unwrap();
    let broken = env.run("certctl", &["status", "--json"]);
    let v = broken.code(1).json();
    validate("certctl.status", &v);
    assert_eq!(v["certificates"][0]["state"], "broken", "{v:#}");
    let doctor = env.run("certctl", &["doctor", "--json"]);
    let v = doctor.code(1).json();
    validate("certctl.doctor", &v);
    assert!(
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["check"] == "cert_files" && c["status"] == "fail"),
        "{v:#}"
    );
}

/// tokenctl: ensure, create, list, rotate, revoke, verify, prune, format, keygen.
#[test]
fn tokenctl_documents_match_their_schemas_and_snapshots() {
    let env = env();
    let ensure = env.run("tokenctl", &["ensure", "--json"]);
    let v = pin(
        &env,
        "tokenctl.ensure",
        "tokenctl.ensure",
        "tokenctl.ensure/1",
        ensure.code(0),
    );
    assert_eq!(v["created"], true);
    let again = env.run("tokenctl", &["ensure", "--json"]).json();
    assert_eq!(again["created"], false);

    let create = env.run(
        "tokenctl",
        &[
            "create",
            "--name",
            "ci",
            "--scope",
            "deploy",
            "--expires",
            "30d",
            "--json",
        ],
    );
    let v = pin(
        &env,
        "tokenctl.create",
        "tokenctl.create",
        "tokenctl.create/1",
        create.code(0),
    );
    assert_eq!(v["state"], "active");
    assert_eq!(v["created_at"], NOW);
    assert_eq!(v["expires_at"], "2026-12-01T12:00:00Z");
    let token = v["token"].as_str().unwrap().to_owned();
    let file = env.root().join("ci.token");
    let to_file = env.run(
        "tokenctl",
        &[
            "create",
            "--name",
            "web",
            "-o",
            file.to_str().unwrap(),
            "--json",
        ],
    );
    let v = pin(
        &env,
        "tokenctl.create.output",
        "tokenctl.create",
        "tokenctl.create/1",
        to_file.code(0),
    );
    assert_eq!(v["token"], Value::Null);

    let rotate = env.run(
        "tokenctl",
        &["rotate", "--name", "ci", "--grace", "1h", "--json"],
    );
    let v = pin(
        &env,
        "tokenctl.rotate",
        "tokenctl.rotate",
        "tokenctl.rotate/1",
        rotate.code(0),
    );
    assert_eq!(v["old_retires_at"], "2026-11-01T13:00:00Z");

    let list = env.run("tokenctl", &["list", "--json"]);
    let v = pin(
        &env,
        "tokenctl.list",
        "tokenctl.list",
        "tokenctl.list/1",
        list.code(0),
    );
    let states: Vec<&str> = v["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["state"].as_str().unwrap())
        .collect();
    assert!(states.contains(&"retiring"), "{states:?}");

    let mut verify = env.cmd("tokenctl");
    verify
        .args(["verify", "-", "--json"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = verify.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(token.as_bytes())
        .unwrap();
    let valid = Run::from(child.wait_with_output().unwrap());
    let v = pin(
        &env,
        "tokenctl.verify",
        "tokenctl.verify",
        "tokenctl.verify/1",
        valid.code(0),
    );
    assert_eq!(v["valid"], true);
    let revoke = env.run("tokenctl", &["revoke", "--name", "ci", "--json"]);
    let v = pin(
        &env,
        "tokenctl.revoke",
        "tokenctl.revoke",
        "tokenctl.revoke/1",
        revoke.code(0),
    );
    assert_eq!(v["revoked_count"], 2);
    let bad = env.root().join("bad.token");
    // The last character changed (to one it is not: a token ending in `x` stayed itself,
    // revoked, one run in 32), so the checksum no longer matches.
    let other = if token.ends_with('x') { 'y' } else { 'x' };
    std::fs::write(&bad, format!("{}{other}\n", &token[..token.len() - 1])).unwrap();
    let invalid = env.run(
        "tokenctl",
        &["verify", "--token-file", bad.to_str().unwrap(), "--json"],
    );
    let v = pin(
        &env,
        "tokenctl.verify.invalid",
        "tokenctl.verify",
        "tokenctl.verify/1",
        invalid.code(1),
    );
    assert_eq!(v["valid"], false);

    let prune = env.run("tokenctl", &["prune", "--retention", "0s", "--json"]);
    let v = pin(
        &env,
        "tokenctl.prune",
        "tokenctl.prune",
        "tokenctl.prune/1",
        prune.code(0),
    );
    assert_eq!(v["retention_secs"], 0);
    let format = env.run("tokenctl", &["format", "--json"]);
    pin(
        &env,
        "tokenctl.format",
        "tokenctl.format",
        "tokenctl.format/1",
        format.code(0),
    );
    let identity = env.root().join("identity.txt");
    let keygen = env.run(
        "tokenctl",
        &["keygen", "-o", identity.to_str().unwrap(), "--json"],
    );
    pin(
        &env,
        "tokenctl.keygen",
        "tokenctl.keygen",
        "tokenctl.keygen/1",
        keygen.code(0),
    );
}

/// keygate check, and `config explain` / `config paths` of all three binaries.
/// tokenctl's OAuth documents: client create, show, rotate, list, revoke; keys list, rotate.
#[test]
fn tokenctl_client_and_keys_documents_match_their_schemas_and_snapshots() {
    let env = env();
    let f = "tokenctl.client";
    let create = env.run(
        "tokenctl",
        &[
            "client", "create", "--name", "bot", "--scope", "deploy", "--json",
        ],
    );
    let bot = pin(
        &env,
        "tokenctl.client.create",
        f,
        "tokenctl.client.create/1",
        create.code(0),
    );
    assert!(
        bot["client_secret"]
            .as_str()
            .is_some_and(|s| s.starts_with("kgcs_"))
    );
    let public = env.run(
        "tokenctl",
        &[
            "client",
            "create",
            "--name",
            "cli",
            "--public",
            "--grant",
            "authorization_code",
            "--redirect-uri",
            "http://127.0.0.1/callback",
            "--json",
        ],
    );
    let cli = public.code(0).json();
    validate(f, &cli);
    assert_eq!(cli["client_secret"], Value::Null);
    let out = env.root().join("bot.secret");
    let rotate = env.run(
        "tokenctl",
        &[
            "client",
            "rotate",
            "bot",
            "--grace",
            "1h",
            "-o",
            out.to_str().unwrap(),
            "--json",
        ],
    );
    let rotated = pin(
        &env,
        "tokenctl.client.rotate",
        f,
        "tokenctl.client.rotate/1",
        rotate.code(0),
    );
    assert_eq!(
        rotated["client_secret"],
        Value::Null,
        "the secret went to the file"
    );
    assert_eq!(rotated["secrets"].as_array().unwrap().len(), 2);
    assert_eq!(rotated["secrets"][0]["retires_at"], "2026-11-01T13:00:00Z");
    let show = env.run("tokenctl", &["client", "show", "bot", "--json"]);
    pin(
        &env,
        "tokenctl.client.show",
        f,
        "tokenctl.client.show/1",
        show.code(0),
    );
    let list = env.run("tokenctl", &["client", "list", "--json"]);
    pin(
        &env,
        "tokenctl.client.list",
        f,
        "tokenctl.client.list/1",
        list.code(0),
    );
    let revoke = env.run("tokenctl", &["client", "revoke", "bot", "--json"]);
    let revoked = pin(
        &env,
        "tokenctl.client.revoke",
        f,
        "tokenctl.client.revoke/1",
        revoke.code(0),
    );
    assert_eq!(revoked["state"], "revoked");
    // Again is a no-op that succeeds; a revoked client can still be shown, not rotated.
    let again = env.run("tokenctl", &["client", "revoke", "bot"]);
    assert!(again.stderr.contains("revoked already"), "{}", again.stderr);
    again.code(0);
    let shown = env.run("tokenctl", &["client", "show", "bot", "--json"]);
    assert_eq!(shown.code(0).json()["state"], "revoked");
    let refused = env.run("tokenctl", &["client", "rotate", "bot"]);
    assert!(
        refused.stderr.contains("client 'bot' is revoked"),
        "{}",
        refused.stderr
    );
    refused.code(1);
    // With --output, stdout is the client id alone (for `ID=$(...)`), the rest on stderr.
    let file = env.root().join("ci.secret");
    let made = env.run(
        "tokenctl",
        &[
            "client",
            "create",
            "--name",
            "ci",
            "-o",
            file.to_str().unwrap(),
        ],
    );
    let id = made.code(0).stdout.trim().to_owned();
    assert!(
        id.starts_with("kgc_") && !id.contains(' '),
        "{}",
        made.stdout
    );
    assert!(made.stderr.contains("secret written to"), "{}", made.stderr);

    let keys = env.run("tokenctl", &["keys", "list", "--json"]);
    let listed = pin(
        &env,
        "tokenctl.keys.list",
        "tokenctl.keys",
        "tokenctl.keys.list/1",
        keys.code(0),
    );
    assert_eq!(listed["generation"], 1);
    let rotate = env.run("tokenctl", &["keys", "rotate", "--json"]);
    let rotated = pin(
        &env,
        "tokenctl.keys.rotate",
        "tokenctl.keys",
        "tokenctl.keys.rotate/1",
        rotate.code(0),
    );
    assert_eq!(rotated["generation"], 2);
}

#[test]
fn keygate_and_config_documents_match_their_schemas_and_snapshots() {
    let env = env();
    env.run("certctl", &["ensure", "--method", "local-ca"])
        .code(0);
    let check = env.run("keygate", &["check", "--listen", "127.0.0.1:0", "--json"]);
    let v = pin(
        &env,
        "keygate.check",
        "keygate.check",
        "keygate.check/1",
        check.code(0),
    );
    assert!(
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["check"] == "certificate" && c["status"] == "ok"),
        "{v:#}"
    );
    for bin in ["certctl", "tokenctl", "keygate"] {
        let paths = env.run(bin, &["config", "paths", "--json"]);
        pin(
            &env,
            &format!("{bin}.config.paths"),
            "config.paths",
            &format!("{bin}.config.paths/1"),
            paths.code(0),
        );
        let explain = env.run(bin, &["config", "explain", "--json"]);
        let v = explain.code(0).json();
        assert!(
            explain
                .stdout
                .starts_with(&format!("{{\n  \"schema\": \"{bin}.config.explain/1\""))
        );
        validate("config.explain", &v);
    }
    let explain = env.run("certctl", &["config", "explain", "--json"]);
    pin(
        &env,
        "certctl.config.explain",
        "config.explain",
        "certctl.config.explain/1",
        explain.code(0),
    );
}

/// The server's log lines and audit lines, from a real `keygate serve`: one envelope (`ts`,
/// `level` or `kind: "audit"`, `event`), and numbers that are JSON numbers.
#[test]
fn log_and_audit_lines_match_their_schemas() {
    let env = env();
    env.run("tokenctl", &["ensure"]).code(0);
    let addr = local_addr();
    let kg = keygate(&env, addr, &["--plain-http"]);
    let bad = "GET /auth HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer kg_000000000000_00000000000000000000000000000000000000000000\r\nConnection: close\r\n\r\n";
    let answer = raw(addr, bad.as_bytes());
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(eventually(Duration::from_secs(3), || !audit_lines(
        &kg.output()
    )
    .is_empty()));
    let log = kg.output();
    let (mut logs, mut audits) = (0, 0);
    for line in log.lines().filter(|l| l.starts_with('{')) {
        assert!(line.starts_with("{\"ts\":\""), "ts comes first: {line}");
        let v: Value = serde_json::from_str(line).unwrap();
        if v.get("kind").is_some() {
            validate("audit-line", &v);
            assert!(v["status"].is_u64(), "{line}");
            audits += 1;
        } else {
            validate("log-line", &v);
            if v["event"] == "listening" {
                assert!(v["pid"].is_u64(), "{line}");
            }
            logs += 1;
        }
    }
    assert!(logs >= 2 && audits >= 1, "{log}");
}
