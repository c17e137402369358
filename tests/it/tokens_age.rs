//! `tokenctl keygen`, `seal` and `unseal` through the real binary, against Go `age` (Debian's
//! 1.1.1) in both directions: X25519 and passphrase, binary and armored. A truncated or
//! tampered input leaves no output file. Go age reads passphrases only from a terminal, so
//! those runs go through `script`, as do our own prompts.
#![allow(clippy::print_stderr)] // Test code: progress and skip notes go to the test output.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use test_support::{Env, Run, have, stat_mode};

use test_support::tokens::*;

const PASS: &str = "correct horse battery staple";

/// Go age and `script`; under CI=true a missing tool fails instead of skipping.
fn go_age() -> bool {
    have("age") && have("age-keygen") && have("script")
}

/// More than two 64 KiB age chunks, with a recognisable pattern.
fn plaintext() -> Vec<u8> {
    (0..150_000).map(|i| (i * 7 % 251) as u8).collect()
}

/// Runs tokenctl with `input` on stdin.
fn tokenctl_with_input(env: &Env, args: &[&str], input: &[u8]) -> (i32, Vec<u8>, String) {
    let mut child = env
        .cmd("tokenctl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    // Written from a thread: tokenctl may fail (and stop reading) before the input ends.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    (
        out.status.code().unwrap_or(-1),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn run_ok(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn q(p: &Path) -> String {
    format!("'{}'", p.display())
}

/// Our identity (keygen) and its recipient as Go's age-keygen computes it.
fn our_key(env: &Env) -> (PathBuf, String) {
    let key = env.root().join("ours.key");
    let run = env.run(
        "tokenctl",
        &["keygen", "-o", key.to_str().unwrap(), "--json"],
    );
    run.code(0);
    let recipient = run.json()["recipient"].as_str().unwrap().to_owned();
    let go_view = run_ok(Command::new("age-keygen").arg("-y").arg(&key));
    assert_eq!(String::from_utf8(go_view).unwrap().trim(), recipient);
    (key, recipient)
}

fn go_key(env: &Env) -> (PathBuf, String) {
    let key = env.root().join("go.key");
    run_ok(Command::new("age-keygen").arg("-o").arg(&key));
    let recipient = run_ok(Command::new("age-keygen").arg("-y").arg(&key));
    (key, String::from_utf8(recipient).unwrap().trim().to_owned())
}

/// Files in `dir` other than those listed: a temporary file left behind would show here.
fn others_in(dir: &Path, known: &[&Path]) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !known.contains(&p.as_path()))
        .collect()
}

#[test]
fn keygen_writes_0600_refuses_to_overwrite_and_go_age_agrees() {
    if !go_age() {
        return;
    }
    let env = Env::new();
    let (key, recipient) = our_key(&env);
    assert_eq!(stat_mode(&key), "600");
    assert!(recipient.starts_with("age1"));
    let before = std::fs::read(&key).unwrap();
    let run = env.run("tokenctl", &["keygen", "-o", key.to_str().unwrap()]);
    run.code(1);
    assert!(
        run.stderr.contains("refusing to overwrite"),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read(&key).unwrap(), before);
    // To stdout, the identity file text; it is never in --json output.
    let run = env.run("tokenctl", &["keygen"]);
    run.code(0);
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("AGE-SECRET-KEY-1"))
    );
    assert!(!String::from_utf8_lossy(&before).is_empty());
}

#[test]
fn go_age_decrypts_what_tokenctl_seals() {
    if !go_age() {
        return;
    }
    let mut env = Env::new();
    let (go_key, go_rcpt) = go_key(&env);
    let (our_key, our_rcpt) = our_key(&env);
    let pt = plaintext();
    for armor in [false, true] {
        // X25519, to a Go key and one of ours at once (-r and -R).
        let rfile = env.root().join("recipients.txt");
        std::fs::write(&rfile, format!("# ours\n{our_rcpt}\n")).unwrap();
        let ct = env.root().join(format!("x25519-{armor}.age"));
        let mut args = vec![
            "seal",
            "-r",
            &go_rcpt,
            "-R",
            rfile.to_str().unwrap(),
            "-o",
            ct.to_str().unwrap(),
        ];
        if armor {
            args.push("--armor");
        }
        let (code, _, err) = tokenctl_with_input(&env, &args, &pt);
        assert_eq!(code, 0, "{err}");
        let head = std::fs::read(&ct).unwrap();
        assert_eq!(
            head.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----"),
            armor
        );
        for key in [&go_key, &our_key] {
            let out = run_ok(Command::new("age").arg("-d").arg("-i").arg(key).arg(&ct));
            assert_eq!(out, pt, "armor {armor}");
        }
    }
    // Passphrase, from AGE_PASSPHRASE; Go age asks for it on a terminal.
    env.set("AGE_PASSPHRASE", PASS);
    for armor in [false, true] {
        let ct = env.root().join(format!("pass-{armor}.age"));
        let mut args = vec!["seal", "--passphrase", "-o", ct.to_str().unwrap()];
        if armor {
            args.push("-a");
        }
        let (code, _, err) = tokenctl_with_input(&env, &args, &pt);
        assert_eq!(code, 0, "{err}");
        let out = env.root().join(format!("pass-{armor}.out"));
        let (code, shown) = tty_session(
            &env,
            &format!("age -d -o {} {}", q(&out), q(&ct)),
            &[("passphrase", PASS)],
        );
        assert_eq!(code, 0, "{shown}");
        assert_eq!(std::fs::read(&out).unwrap(), pt, "armor {armor}");
    }
}

#[test]
fn tokenctl_unseals_what_go_age_seals() {
    if !go_age() {
        return;
    }
    let mut env = Env::new();
    let (go_key, go_rcpt) = go_key(&env);
    let (our_key, our_rcpt) = our_key(&env);
    let pt = plaintext();
    let pt_file = env.root().join("pt");
    std::fs::write(&pt_file, &pt).unwrap();
    for armor in [false, true] {
        let mut cmd = Command::new("age");
        cmd.args(["-e", "-r", &go_rcpt, "-r", &our_rcpt]);
        if armor {
            cmd.arg("-a");
        }
        let ct = run_ok(cmd.arg(&pt_file));
        // With either identity; to stdout and to a 0600 file.
        for key in [&our_key, &go_key] {
            let (code, out, err) =
                tokenctl_with_input(&env, &["unseal", "-i", key.to_str().unwrap()], &ct);
            assert_eq!(code, 0, "{err}");
            assert_eq!(out, pt, "armor {armor}");
        }
        let out_file = env.root().join(format!("x25519-{armor}.out"));
        let (code, out, err) = tokenctl_with_input(
            &env,
            &[
                "unseal",
                "-i",
                our_key.to_str().unwrap(),
                "-o",
                out_file.to_str().unwrap(),
            ],
            &ct,
        );
        assert_eq!(code, 0, "{err}");
        assert!(out.is_empty());
        assert_eq!(std::fs::read(&out_file).unwrap(), pt);
        assert_eq!(stat_mode(&out_file), "600");
    }
    // Passphrase files made by Go age (on a terminal), opened with AGE_PASSPHRASE.
    for armor in [false, true] {
        let ct = env.root().join(format!("go-pass-{armor}.age"));
        let (code, shown) = tty_session(
            &env,
            &format!(
                "age -p {} -o {} {}",
                if armor { "-a" } else { "" },
                q(&ct),
                q(&pt_file)
            ),
            &[("passphrase", PASS), ("passphrase", PASS)],
        );
        assert_eq!(code, 0, "{shown}");
        let ct = std::fs::read(&ct).unwrap();
        env.set("AGE_PASSPHRASE", PASS);
        let (code, out, err) = tokenctl_with_input(&env, &["unseal"], &ct);
        assert_eq!(code, 0, "{err}");
        assert_eq!(out, pt, "armor {armor}");
        env.set("AGE_PASSPHRASE", "wrong");
        let (code, out, err) = tokenctl_with_input(&env, &["unseal"], &ct);
        assert_eq!(code, 1);
        assert!(out.is_empty());
        assert!(err.contains("incorrect passphrase"), "{err}");
        assert!(!err.contains("wrong") && !err.contains(PASS), "{err}");
    }
}

/// An identity is the user's file, read as Go age reads `-i`: through a symbolic link (a
/// dotfiles manager's), from a descriptor (`-i <(pass show age-key)`), and left as it is,
/// mode included. A version that read it as one of keygate's own secrets refused the link
/// and the pipe, and chmodded the file.
#[test]
fn an_identity_is_read_through_links_and_descriptors_and_left_unchanged() {
    if !go_age() || !have("bash") {
        return;
    }
    let env = Env::new();
    let (our_key, our_rcpt) = our_key(&env);
    let pt_file = env.root().join("pt");
    std::fs::write(&pt_file, b"sealed for a linked identity").unwrap();
    let ct = run_ok(
        Command::new("age")
            .args(["-e", "-r", &our_rcpt])
            .arg(&pt_file),
    );
    let ct_file = env.root().join("ct.age");
    std::fs::write(&ct_file, &ct).unwrap();
    let link = env.root().join("linked.key");
    std::os::unix::fs::symlink(&our_key, &link).unwrap();
    let (code, out, err) =
        tokenctl_with_input(&env, &["unseal", "-i", link.to_str().unwrap()], &ct);
    assert_eq!(
        (code, out.as_slice()),
        (0, &b"sealed for a linked identity"[..]),
        "{err}"
    );
    let mut cmd = env.cmd("tokenctl");
    cmd.env("KEY", &our_key).env("CT", &ct_file);
    let shell = Command::new("bash")
        .args(["-c", "exec \"$0\" unseal -i <(cat \"$KEY\") < \"$CT\""])
        .arg(cmd.get_program())
        .envs(cmd.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .output()
        .unwrap();
    assert!(
        shell.status.success(),
        "{}",
        String::from_utf8_lossy(&shell.stderr)
    );
    assert_eq!(shell.stdout, b"sealed for a linked identity");
    // A 0640 identity (a group that may read it, by the user's choice) is not chmodded.
    std::fs::set_permissions(
        &our_key,
        std::os::unix::fs::PermissionsExt::from_mode(0o640),
    )
    .unwrap();
    let (code, _, err) =
        tokenctl_with_input(&env, &["unseal", "-i", our_key.to_str().unwrap()], &ct);
    assert_eq!(code, 0, "{err}");
    assert_eq!(stat_mode(&our_key), "640");
}

/// REFERENCE.md: Go `age -d -o F` leaves partial plaintext over F on truncated input. Ours
/// leaves nothing: no output file, no temporary file, an existing file untouched, and
/// nothing on stdout.
#[test]
fn truncated_or_tampered_input_leaves_no_output() {
    if !go_age() {
        return;
    }
    let env = Env::new();
    let (our_key, our_rcpt) = our_key(&env);
    let pt = plaintext();
    let pt_file = env.root().join("pt");
    std::fs::write(&pt_file, &pt).unwrap();
    let outdir = env.root().join("out");
    std::fs::create_dir(&outdir).unwrap();
    for armor in [false, true] {
        let mut cmd = Command::new("age");
        cmd.args(["-e", "-r", &our_rcpt]);
        if armor {
            cmd.arg("-a");
        }
        let ct = run_ok(cmd.arg(&pt_file));
        let mut tampered = ct.clone();
        let at = tampered.len() * 2 / 3;
        tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
        let mut header_tampered = ct.clone();
        header_tampered[armor as usize * 40 + 30] ^= 1;
        let inputs: [(&str, &[u8]); 4] = [
            ("truncated at a chunk", &ct[..65_000]),
            ("truncated near the end", &ct[..ct.len() - 10]),
            ("tampered payload", &tampered),
            ("tampered header", &header_tampered),
        ];
        for (what, input) in inputs {
            // A new output file: never created.
            let target = outdir.join("new.txt");
            let (code, out, err) = tokenctl_with_input(
                &env,
                &[
                    "unseal",
                    "-i",
                    our_key.to_str().unwrap(),
                    "-o",
                    target.to_str().unwrap(),
                ],
                input,
            );
            assert_ne!(code, 0, "{what} (armor {armor}) accepted");
            assert!(out.is_empty());
            assert!(err.starts_with("error: "), "{err}");
            assert!(
                !target.exists(),
                "{what} (armor {armor}) left {}",
                target.display()
            );
            // An existing file: left as it was.
            let existing = outdir.join("existing.txt");
            std::fs::write(&existing, b"previous contents").unwrap();
            let (code, _, _) = tokenctl_with_input(
                &env,
                &[
                    "unseal",
                    "-i",
                    our_key.to_str().unwrap(),
                    "-o",
                    existing.to_str().unwrap(),
                ],
                input,
            );
            assert_ne!(code, 0);
            assert_eq!(std::fs::read(&existing).unwrap(), b"previous contents");
            assert_eq!(
                others_in(&outdir, &[&existing]),
                Vec::<PathBuf>::new(),
                "{what}"
            );
            // To stdout: no partial plaintext either.
            let (code, out, _) =
                tokenctl_with_input(&env, &["unseal", "-i", our_key.to_str().unwrap()], input);
            assert_ne!(code, 0);
            assert!(out.is_empty(), "{what}: {} bytes on stdout", out.len());
        }
    }
    // For contrast, what Go age does with the same truncated file (REFERENCE.md, section 2).
    let ct = run_ok(
        Command::new("age")
            .args(["-e", "-r", &our_rcpt])
            .arg(&pt_file),
    );
    let cut = env.root().join("cut.age");
    std::fs::write(&cut, &ct[..ct.len() - 10]).unwrap();
    let go_out = env.root().join("go-out.txt");
    let status = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(&our_key)
        .arg("-o")
        .arg(&go_out)
        .arg(&cut)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success());
    eprintln!(
        "Go age left {} bytes of partial plaintext behind",
        std::fs::metadata(&go_out).map(|m| m.len()).unwrap_or(0)
    );
}

/// The passphrase from our own no-echo prompt (asked twice when sealing) and from
/// AGE_PASSPHRASE_FD.
#[test]
fn passphrase_from_the_prompt_and_from_a_descriptor() {
    if !go_age() {
        return;
    }
    let env = Env::new();
    let pt_file = env.root().join("pt");
    std::fs::write(&pt_file, b"a secret for the prompt\n").unwrap();
    let ct = env.root().join("prompted.age");
    let (code, shown) = tty_session(
        &env,
        &format!("\"$TOKENCTL\" seal -p -a -o {} < {}", q(&ct), q(&pt_file)),
        &[("Passphrase: ", PASS), ("Confirm passphrase: ", PASS)],
    );
    assert_eq!(code, 0, "{shown}");
    assert!(!shown.contains(PASS), "the passphrase was echoed: {shown}");
    // Go age opens it.
    let out = env.root().join("prompted.out");
    let (code, shown) = tty_session(
        &env,
        &format!("age -d -o {} {}", q(&out), q(&ct)),
        &[("passphrase", PASS)],
    );
    assert_eq!(code, 0, "{shown}");
    assert_eq!(std::fs::read(&out).unwrap(), b"a secret for the prompt\n");
    // Mismatched confirmation: refused, nothing written.
    let ct2 = env.root().join("mismatch.age");
    let (code, shown) = tty_session(
        &env,
        &format!("\"$TOKENCTL\" seal -p -o {} < {}", q(&ct2), q(&pt_file)),
        &[
            ("Passphrase: ", PASS),
            ("Confirm passphrase: ", "something else"),
        ],
    );
    assert_eq!(code, 2, "{shown}");
    assert!(shown.contains("the passphrases do not match"), "{shown}");
    assert!(!ct2.exists());
    // AGE_PASSPHRASE_FD: the first line of descriptor 3.
    let pass_file = env.root().join("pass.txt");
    std::fs::write(&pass_file, format!("{PASS}\nignored\n")).unwrap();
    let run = Run::from(
        shell(
            &env,
            r#"AGE_PASSPHRASE_FD=3 "$TOKENCTL" unseal 3<"$0" <"$1""#,
        )
        .arg(&pass_file)
        .arg(&ct)
        .output()
        .unwrap(),
    );
    run.code(0);
    assert_eq!(run.stdout, "a secret for the prompt\n");
    // No passphrase source and no terminal: a usage error with the fix.
    let (code, _, err) = tokenctl_with_input(&env, &["unseal"], &std::fs::read(&ct).unwrap());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("AGE_PASSPHRASE"), "{err}");
}

/// The issue's bootstrap flow: `tokenctl create --output - | tokenctl seal -r age1... >
/// ci.token.age` in a repository, then `tokenctl unseal` on the target machine, whose output
/// verifies.
#[test]
fn create_seal_unseal_verify_pipeline() {
    if !go_age() {
        return;
    }
    let env = Env::new();
    let (key, recipient) = our_key(&env);
    let sealed = env.root().join("ci.token.age");
    let run = Run::from(
        shell(
            &env,
            r#"set -o pipefail; "$TOKENCTL" create --name ci --output - | "$TOKENCTL" seal -r "$0" > "$1""#,
        )
        .arg(&recipient)
        .arg(&sealed)
        .output()
        .unwrap(),
    );
    run.code(0);
    assert!(
        !std::fs::read(&sealed)
            .unwrap()
            .windows(3)
            .any(|w| w == b"kg_")
    );
    let run = Run::from(
        shell(
            &env,
            r#"set -o pipefail; "$TOKENCTL" unseal -i "$0" < "$1" | "$TOKENCTL" verify --json -"#,
        )
        .arg(&key)
        .arg(&sealed)
        .output()
        .unwrap(),
    );
    run.code(0);
    assert_eq!(run.json()["name"], "ci");
    // Go age opens the same file.
    let token = run_ok(
        Command::new("age")
            .arg("-d")
            .arg("-i")
            .arg(&key)
            .arg(&sealed),
    );
    let token = String::from_utf8(token).unwrap();
    verify(&env, T0, token.trim()).code(0);
}

/// Security review: `unseal -o` killed mid-stream left its temporary file, holding the
/// chunks of plaintext that had authenticated so far. The output now has no name until the
/// whole stream verified, so SIGKILL leaves nothing.
#[test]
fn a_killed_unseal_leaves_no_plaintext() {
    let env = Env::new();
    let (key, recipient) = our_key(&env);
    let sealed = tokenctl_with_input(&env, &["seal", "-r", &recipient], &plaintext());
    assert_eq!(sealed.0, 0, "{}", sealed.2);
    let out_dir = env.root().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let target = out_dir.join("plain.txt");
    let mut child = env
        .cmd("tokenctl")
        .args([
            "unseal",
            "-i",
            key.to_str().unwrap(),
            "-o",
            target.to_str().unwrap(),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Feed most of the file (several authenticated chunks) and keep the pipe open.
    let mut stdin = child.stdin.take().unwrap();
    std::io::Write::write_all(&mut stdin, &sealed.1[..sealed.1.len() * 3 / 4]).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    child.kill().unwrap();
    child.wait().unwrap();
    drop(stdin);
    assert!(
        others_in(&out_dir, &[]).is_empty(),
        "left behind: {:?}",
        others_in(&out_dir, &[])
    );
}
