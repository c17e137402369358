//! Helpers of the `tokenctl` scenarios (`tokens.rs`, `tokens_age.rs`).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::{Env, Run};

pub const T0: &str = "2026-11-01T12:00:00Z";

/// Runs tokenctl with the test clock at `now`.
pub fn at(env: &Env, now: &str, args: &[&str]) -> Run {
    Run::from(
        env.cmd("tokenctl")
            .env("KEYGATE_TEST_NOW", now)
            .args(args)
            .output()
            .expect("spawn tokenctl"),
    )
}

/// Creates a token at `now` and returns it (the only time it is shown).
pub fn create_at(env: &Env, now: &str, name: &str, extra: &[&str]) -> String {
    let mut args = vec!["create", "--name", name];
    args.extend_from_slice(extra);
    let run = at(env, now, &args);
    run.code(0);
    let token = run.stdout.trim().to_owned();
    assert!(
        token.starts_with("kg_") && token.len() == 3 + 12 + 1 + 38,
        "{token}"
    );
    assert!(
        run.stderr.contains("shown only this once"),
        "{}",
        run.stderr
    );
    token
}

/// Runs `tokenctl verify -` with `input` on stdin.
pub fn verify_stdin(env: &Env, now: &str, input: &str, extra: &[&str]) -> Run {
    let mut child = env
        .cmd("tokenctl")
        .env("KEYGATE_TEST_NOW", now)
        .arg("verify")
        .args(extra)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    Run::from(child.wait_with_output().unwrap())
}

pub fn verify(env: &Env, now: &str, token: &str) -> Run {
    verify_stdin(env, now, &format!("{token}\n"), &[])
}

/// The 32 random characters of a token (after `kg_<id>_`, before the checksum).
pub fn secret_part(token: &str) -> &str {
    &token[16..48]
}

pub fn store_file(env: &Env) -> PathBuf {
    env.root().join("state/tokens.json")
}

pub fn assert_no_secret(what: &str, text: &str, tokens: &[&str]) {
    for t in tokens {
        assert!(!text.contains(t), "{what} contains a token:\n{text}");
        assert!(
            !text.contains(secret_part(t)),
            "{what} contains a token's secret part:\n{text}"
        );
    }
}

/// A `bash -c SCRIPT` command in `env`'s scrubbed environment; `$TOKENCTL` is our binary.
pub fn shell(env: &Env, script: &str) -> Command {
    let template = env.cmd("tokenctl");
    let mut cmd = Command::new("bash");
    cmd.env_clear();
    for (k, v) in template.get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    cmd.env("TOKENCTL", crate::bin("tokenctl"))
        .env("KEYGATE_TEST_NOW", T0)
        .args(["-c", script])
        .stdin(Stdio::null());
    cmd
}

/// Runs `command` (a shell command line) under `script`, which gives it a terminal, in
/// `env`'s scrubbed environment. For each `(prompt, answer)` it waits until `prompt` appears
/// on the terminal, then types `answer` and a newline. Returns the exit status and everything
/// the terminal showed.
pub fn tty_session(env: &Env, command: &str, dialog: &[(&str, &str)]) -> (i32, String) {
    let mut script = shell(env, "");
    script.env_remove("KEYGATE_TEST_NOW");
    let mut child = Command::new("script")
        .env_clear()
        .envs(script.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))))
        .args(["-q", "-e", "-c", command, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run script");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    // A reader thread, so that a prompt that never comes fails the test instead of hanging it.
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let mut pos = 0;
    for (prompt, answer) in dialog {
        loop {
            let text = String::from_utf8_lossy(&seen[pos..]).into_owned();
            if let Some(at) = text.find(prompt) {
                pos += at + prompt.len();
                break;
            }
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(chunk) => seen.extend_from_slice(&chunk),
                Err(_) => {
                    let _ = child.kill();
                    panic!("no prompt {prompt:?}: {}", String::from_utf8_lossy(&seen));
                }
            }
        }
        stdin.write_all(format!("{answer}\n").as_bytes()).unwrap();
    }
    drop(stdin);
    loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(chunk) => seen.extend_from_slice(&chunk),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                panic!(
                    "{command} did not finish: {}",
                    String::from_utf8_lossy(&seen)
                );
            }
        }
    }
    reader.join().unwrap();
    let status = child.wait().unwrap();
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&seen).into_owned(),
    )
}
