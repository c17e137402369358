//! age helpers: round trips, interop with the Go `age` binary (Debian's 1.1.1), and the
//! promise that truncated or tampered input never ends in `Ok`.
//!
//! The Go tests need `age`, `age-keygen` and `script` (util-linux) on PATH; they fail with an
//! install hint when those are missing, unless KEYGATE_SKIP_GO_AGE=1 is set.
#![allow(clippy::print_stderr)] // Test code: progress and skip notes go to the test output.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use kg_tokens::seal::{
    self, Identities, KeyProblem, Recipients, SealError, keygen, parse_identity_file,
    parse_recipient, parse_recipients_file, seal, unseal,
};
use secrecy::{ExposeSecret, SecretString};
use time::macros::datetime;

const NOW: time::OffsetDateTime = datetime!(2026-11-01 12:00 UTC);

/// More than two 64 KiB chunks, with a recognisable pattern.
fn plaintext(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

fn key() -> (SecretString, String) {
    keygen(NOW)
}

fn identities(identity_text: &SecretString) -> Identities {
    Identities::from_file_text("key.txt", identity_text.expose_secret()).unwrap()
}

fn recipients(recipient: &str) -> Recipients {
    Recipients::Keys(vec![parse_recipient("-r", recipient).unwrap()])
}

fn seal_to_vec(pt: &[u8], r: Recipients, armor: bool) -> Vec<u8> {
    let mut out = Vec::new();
    seal(pt, &mut out, r, armor).unwrap();
    out
}

fn unseal_to_vec(ct: &[u8], ids: Identities) -> (Result<(), SealError>, Vec<u8>) {
    let mut out = Vec::new();
    let res = unseal(ct, &mut out, ids);
    (res, out)
}

fn passphrase() -> SecretString {
    SecretString::from("correct horse battery staple".to_owned())
}

/// The Go age tools, or `None` when skipping is allowed.
fn go_age() -> Option<()> {
    let have = |tool: &str| {
        Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    };
    if have("age") && have("age-keygen") && Path::new("/usr/bin/script").exists() {
        return Some(());
    }
    if std::env::var_os("KEYGATE_SKIP_GO_AGE").is_some() {
        eprintln!("skipping: Go age not installed and KEYGATE_SKIP_GO_AGE is set");
        return None;
    }
    panic!(
        "Go age is needed for interop tests: `apt-get install age bsdutils` (or set KEYGATE_SKIP_GO_AGE=1)"
    );
}

fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().expect("run command");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs a Go age command under `script`, which gives it a terminal, and types `lines` into
/// it: Go age 1.1.1 reads passphrases only from a terminal.
fn run_with_tty(command: &str, lines: &str) -> std::process::Output {
    let mut child = Command::new("script")
        .args(["-q", "-e", "-c", command, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run script");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{command} failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    out
}

fn sh_quote(p: &Path) -> String {
    format!("'{}'", p.display())
}

#[test]
fn keygen_writes_the_age_keygen_form() {
    let (text, recipient) = key();
    let lines: Vec<&str> = text.expose_secret().lines().collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0], "# created: 2026-11-01T12:00:00Z");
    assert_eq!(lines[1], format!("# public key: {recipient}"));
    assert!(lines[2].starts_with("AGE-SECRET-KEY-1"));
    assert!(text.expose_secret().ends_with('\n'));
    assert!(recipient.starts_with("age1") && recipient.len() == 62);
    assert_ne!(key().1, recipient, "fresh keys");
}

#[test]
fn round_trips_binary_and_armored() {
    let (id, rcpt) = key();
    for len in [0, 1, 1000, 64 * 1024, 64 * 1024 + 1, 200_000] {
        for armor in [false, true] {
            let pt = plaintext(len);
            let ct = seal_to_vec(&pt, recipients(&rcpt), armor);
            assert_eq!(ct.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----"), armor);
            let (res, out) = unseal_to_vec(&ct, identities(&id));
            res.unwrap();
            assert_eq!(out, pt, "len {len} armor {armor}");
        }
    }
}

#[test]
fn several_recipients_each_decrypt() {
    let (id1, r1) = key();
    let (id2, r2) = key();
    let file = format!("# team\n\n{r1}\n  {r2}  \n");
    let keys = parse_recipients_file("team.txt", &file).unwrap();
    assert_eq!(keys.len(), 2);
    let ct = seal_to_vec(b"hello", Recipients::Keys(keys), false);
    for id in [id1, id2] {
        let (res, out) = unseal_to_vec(&ct, identities(&id));
        res.unwrap();
        assert_eq!(out, b"hello");
    }
    let (other, _) = key();
    let (res, out) = unseal_to_vec(&ct, identities(&other));
    assert!(matches!(res, Err(SealError::NoMatchingKeys)), "{res:?}");
    assert!(out.is_empty());
}

#[test]
fn passphrase_round_trip_pins_work_factor_18() {
    assert_eq!(seal::SCRYPT_WORK_FACTOR, 18);
    let pt = plaintext(70_000);
    for armor in [false, true] {
        let ct = seal_to_vec(&pt, Recipients::Passphrase(passphrase()), armor);
        let mut header = Vec::new();
        unseal_header(&ct, &mut header);
        let header = String::from_utf8(header).unwrap();
        let stanza = header
            .lines()
            .find(|l| l.starts_with("-> scrypt "))
            .unwrap();
        assert!(stanza.ends_with(" 18"), "{stanza}");
        let (res, out) = unseal_to_vec(&ct, Identities::Passphrase(passphrase()));
        res.unwrap();
        assert_eq!(out, pt);
        let (res, _) = unseal_to_vec(&ct, Identities::Passphrase(SecretString::from("wrong")));
        assert!(matches!(res, Err(SealError::WrongPassphrase)), "{res:?}");
        let (id, _) = key();
        let (res, _) = unseal_to_vec(&ct, identities(&id));
        assert!(matches!(res, Err(SealError::NeedsPassphrase)), "{res:?}");
    }
    let (_, rcpt) = key();
    let ct = seal_to_vec(b"x", recipients(&rcpt), false);
    let (res, _) = unseal_to_vec(&ct, Identities::Passphrase(passphrase()));
    assert!(matches!(res, Err(SealError::NotPassphraseFile)), "{res:?}");
    let err = seal(
        &b"x"[..],
        Vec::new(),
        Recipients::Passphrase(SecretString::from("")),
        false,
    );
    assert!(matches!(err, Err(SealError::EmptyPassphrase)));
}

/// The binary header of a (possibly armored) age file, for inspection.
fn unseal_header(ct: &[u8], out: &mut Vec<u8>) {
    let text = String::from_utf8_lossy(ct);
    let binary = if text.starts_with("-----BEGIN") {
        use std::io::Read;
        let mut r = age::armor::ArmoredReader::new(ct);
        let mut v = Vec::new();
        r.read_to_end(&mut v).unwrap();
        v
    } else {
        ct.to_vec()
    };
    let end = binary.windows(4).position(|w| w == b"\n---").unwrap();
    out.extend_from_slice(&binary[..end]);
}

/// A file asking for scrypt work factor 23 is refused before doing that work.
#[test]
fn excessive_work_factor_is_refused() {
    let ct = seal_to_vec(b"x", Recipients::Passphrase(passphrase()), false);
    let text = ct.clone();
    let pos = text.windows(4).position(|w| w == b" 18\n").unwrap();
    let mut hostile = ct;
    hostile[pos + 1..pos + 3].copy_from_slice(b"23");
    let start = std::time::Instant::now();
    let (res, _) = unseal_to_vec(&hostile, Identities::Passphrase(passphrase()));
    assert!(
        matches!(res, Err(SealError::ExcessiveWork { required: 23 })),
        "{res:?}"
    );
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn truncated_input_never_succeeds() {
    let (id, rcpt) = key();
    let pt = plaintext(200_000); // chunks of 64 KiB: 3 full and one partial
    for armor in [false, true] {
        let ct = seal_to_vec(&pt, recipients(&rcpt), armor);
        let mut cuts: Vec<usize> = vec![0, 1, 10, 40, 100, 200, ct.len() / 2, ct.len() - 1];
        if !armor {
            // Exactly at chunk boundaries of the payload: the stream just ends.
            let header_len = ct.windows(4).position(|w| w == b"\n---").unwrap();
            let header_end = header_len
                + ct[header_len + 1..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .unwrap()
                + 2;
            let payload = header_end + 16; // nonce
            for chunks in 1..=3 {
                cuts.push(payload + chunks * (64 * 1024 + 16));
            }
        } else {
            // Without the end marker line, or with only part of it.
            let end = ct.len() - "-----END AGE ENCRYPTED FILE-----\n".len();
            cuts.retain(|&c| c != ct.len() - 1);
            cuts.extend([end, end - 1, end + 5, ct.len() - 2]);
            // Only the final newline missing is still a complete file (the format allows it).
            let (res, out) = unseal_to_vec(&ct[..ct.len() - 1], identities(&id));
            res.unwrap();
            assert_eq!(out, pt);
        }
        for cut in cuts {
            let (res, out) = unseal_to_vec(&ct[..cut], identities(&id));
            assert!(
                res.is_err(),
                "armor {armor}: cut at {cut} of {} was accepted",
                ct.len()
            );
            assert!(out.len() < pt.len(), "never all of it");
            assert_eq!(out[..], pt[..out.len()], "what was written is a prefix");
        }
    }
    // The streaming contract: output may have been written before the error.
    let ct = seal_to_vec(&pt, recipients(&rcpt), false);
    let (res, out) = unseal_to_vec(&ct[..ct.len() - 100], identities(&id));
    assert!(
        matches!(res, Err(SealError::Truncated | SealError::Tampered)),
        "{res:?}"
    );
    assert!(
        !out.is_empty(),
        "earlier chunks were written before the error"
    );
}

#[test]
fn tampered_input_never_succeeds() {
    let (id, rcpt) = key();
    let pt = plaintext(100_000);
    let ct = seal_to_vec(&pt, recipients(&rcpt), false);
    let header_len = ct.windows(4).position(|w| w == b"\n---").unwrap();
    // One flipped bit anywhere: header, MAC, nonce, first chunk, last byte.
    for pos in [
        5,
        30,
        header_len + 10,
        header_len + 60,
        header_len + 200,
        ct.len() / 2,
        ct.len() - 1,
    ] {
        let mut bad = ct.clone();
        bad[pos] ^= 0x01;
        let (res, _) = unseal_to_vec(&bad, identities(&id));
        assert!(res.is_err(), "flip at {pos} accepted");
    }
    let mut bad = ct.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x80;
    let (res, _) = unseal_to_vec(&bad, identities(&id));
    assert!(matches!(res, Err(SealError::Tampered)), "{res:?}");
    // Data after the final chunk.
    let mut longer = ct.clone();
    longer.extend_from_slice(b"more");
    let (res, _) = unseal_to_vec(&longer, identities(&id));
    assert!(matches!(res, Err(SealError::Tampered)), "{res:?}");
    // Armored: trailing garbage after the end marker, a changed character inside.
    let armored = seal_to_vec(&pt, recipients(&rcpt), true);
    let mut garbage = armored.clone();
    garbage.extend_from_slice(b"x\n");
    let (res, _) = unseal_to_vec(&garbage, identities(&id));
    assert!(matches!(res, Err(SealError::InvalidArmor(_))), "{res:?}");
    let mut changed = armored.clone();
    let mid = changed.len() / 2;
    changed[mid] = if changed[mid] == b'A' { b'B' } else { b'A' };
    let (res, _) = unseal_to_vec(&changed, identities(&id));
    assert!(res.is_err());
    // Not an age file at all.
    let (res, _) = unseal_to_vec(&[b'x'; 500], identities(&id));
    assert!(matches!(res, Err(SealError::NotAgeFile)), "{res:?}");
    let (res, _) = unseal_to_vec(b"short", identities(&id));
    assert!(matches!(res, Err(SealError::Truncated)), "{res:?}");
}

#[test]
fn key_problems_are_explained_and_never_echoed() {
    let (id, rcpt) = key();
    let secret_line = id.expose_secret().lines().nth(2).unwrap().to_owned();
    let pq = "age1pq1".to_owned() + &"q".repeat(100);
    let cases: Vec<(&str, KeyProblem)> = vec![
        (&pq, KeyProblem::PostQuantum),
        (&secret_line, KeyProblem::SecretKeyAsRecipient),
        ("age1yubikey1qxyz", KeyProblem::Unsupported),
        ("age1tag1qxyz", KeyProblem::Unsupported),
        (
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI",
            KeyProblem::Unsupported,
        ),
        ("age1qqqq", KeyProblem::Invalid),
        (&rcpt[..rcpt.len() - 1], KeyProblem::Invalid),
        ("hello", KeyProblem::Invalid),
    ];
    for (key, problem) in cases {
        let err = parse_recipient("-r #1", key).unwrap_err();
        match &err {
            SealError::BadRecipient {
                problem: p,
                location,
            } => {
                assert_eq!(*p, problem, "{key}");
                assert_eq!(location, "-r #1");
            }
            other => panic!("{other:?}"),
        }
        let text = format!("{err} {err:?} {}", err.hint().unwrap_or_default());
        assert!(!text.contains(key), "echoed {key}: {text}");
    }
    let err = parse_recipient("-r #1", &pq).unwrap_err();
    assert!(err.to_string().contains("post-quantum"), "{err}");
    assert!(err.hint().unwrap().contains("X25519"));

    // A recipients file: errors name the line.
    let err = parse_recipients_file("team.txt", &format!("# x\n{rcpt}\n{pq}\n")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("line 3 of team.txt: post-quantum"),
        "{err}"
    );
    assert!(matches!(
        parse_recipients_file("empty.txt", "# nothing\n\n"),
        Err(SealError::NoRecipients { .. })
    ));

    // Identity files.
    let pq_identity = format!("# pq\nAGE-SECRET-KEY-PQ-1{}\n", "Q".repeat(80));
    let cases: Vec<(String, KeyProblem)> = vec![
        (pq_identity, KeyProblem::PostQuantum),
        (format!("{rcpt}\n"), KeyProblem::PublicKeyAsIdentity),
        (
            "AGE-PLUGIN-YUBIKEY-1QQQ\n".to_owned(),
            KeyProblem::Unsupported,
        ),
        (
            "-----BEGIN AGE ENCRYPTED FILE-----\nYWdl\n".to_owned(),
            KeyProblem::EncryptedIdentityFile,
        ),
        (
            "age-encryption.org/v1\n-> scrypt x 18\n".to_owned(),
            KeyProblem::EncryptedIdentityFile,
        ),
        (format!("{}X\n", secret_line), KeyProblem::Invalid),
    ];
    for (text, problem) in cases {
        match parse_identity_file("key.txt", &text).map(|v| v.len()) {
            Err(SealError::BadIdentity { problem: p, .. }) => assert_eq!(p, problem, "{text}"),
            other => panic!("{text}: {other:?}"),
        }
    }
    let Err(err) = parse_identity_file("key.txt", &format!("# c\n\n{secret_line}X\n")) else {
        panic!("accepted a damaged key")
    };
    assert_eq!(
        err.to_string(),
        "line 3 of key.txt: not a valid X25519 age key"
    );
    assert!(matches!(
        parse_identity_file("key.txt", "# only comments\n"),
        Err(SealError::NoIdentities { .. })
    ));
    // Comments, blank lines, CRLF and several keys are fine.
    let (id2, _) = key();
    let two = format!("{}\r\n\r\n{}", id.expose_secret(), id2.expose_secret());
    assert_eq!(parse_identity_file("two.txt", &two).unwrap().len(), 2);

    // Debug never shows keys or passphrases.
    let dbg = format!(
        "{:?} {:?} {:?}",
        identities(&id),
        Identities::Passphrase(passphrase()),
        Recipients::Passphrase(passphrase())
    );
    assert!(
        !dbg.contains(&secret_line[16..]) && !dbg.contains("horse"),
        "{dbg}"
    );
    assert!(matches!(
        seal(&b"x"[..], Vec::new(), Recipients::Keys(vec![]), false),
        Err(SealError::NoRecipients { location: None })
    ));
}

#[test]
fn write_errors_are_reported_as_such() {
    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let (id, rcpt) = key();
    let err = seal(&b"x"[..], Broken, recipients(&rcpt), false).unwrap_err();
    assert!(matches!(err, SealError::Write(_)), "{err:?}");
    assert!(
        err.hint().unwrap().contains("piping"),
        "{err:?} {:?}",
        err.hint()
    );
    let ct = seal_to_vec(b"x", recipients(&rcpt), false);
    let err = unseal(&ct[..], Broken, identities(&id)).unwrap_err();
    assert!(matches!(err, SealError::Write(_)), "{err:?}");
    // A failing input is a read error, not "tampered".
    struct FailingInput;
    impl std::io::Read for FailingInput {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "disk on fire",
            ))
        }
    }
    let err = unseal(FailingInput, Vec::new(), identities(&id)).unwrap_err();
    assert!(matches!(err, SealError::Read(_)), "{err:?}");
    let err = seal(FailingInput, Vec::new(), recipients(&rcpt), false).unwrap_err();
    assert!(matches!(err, SealError::Read(_)), "{err:?}");
}

// ---- Interop with Go age 1.1.1 ----

#[test]
fn go_age_decrypts_ours() {
    let Some(()) = go_age() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (id, rcpt) = key();
    let key_file = dir.path().join("key.txt");
    std::fs::write(&key_file, id.expose_secret()).unwrap();
    // Go age-keygen agrees on the public key of our identity.
    let y = run(Command::new("age-keygen").arg("-y").arg(&key_file));
    assert_eq!(String::from_utf8(y.stdout).unwrap().trim(), rcpt);

    let pt = plaintext(150_000);
    for armor in [false, true] {
        let ct_file = dir.path().join(format!("ct-{armor}.age"));
        std::fs::write(&ct_file, seal_to_vec(&pt, recipients(&rcpt), armor)).unwrap();
        let out = run(Command::new("age")
            .arg("-d")
            .arg("-i")
            .arg(&key_file)
            .arg(&ct_file));
        assert_eq!(out.stdout, pt, "armor {armor}");
    }
}

#[test]
fn we_decrypt_go_age() {
    let Some(()) = go_age() else { return };
    let dir = tempfile::tempdir().unwrap();
    let pt_file = dir.path().join("pt");
    let pt = plaintext(150_000);
    std::fs::write(&pt_file, &pt).unwrap();

    // Our key, Go encrypts to it.
    let (id, rcpt) = key();
    // A Go key, we read its identity file.
    let go_key = dir.path().join("go-key.txt");
    run(Command::new("age-keygen").arg("-o").arg(&go_key));
    let go_id = std::fs::read_to_string(&go_key).unwrap();
    let go_rcpt = String::from_utf8(run(Command::new("age-keygen").arg("-y").arg(&go_key)).stdout)
        .unwrap()
        .trim()
        .to_owned();

    for armor in [false, true] {
        let mut cmd = Command::new("age");
        cmd.arg("-e").arg("-r").arg(&rcpt).arg("-r").arg(&go_rcpt);
        if armor {
            cmd.arg("-a");
        }
        let ct = run(cmd.arg(&pt_file)).stdout;
        assert_eq!(ct.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----"), armor);
        let (res, out) = unseal_to_vec(&ct, identities(&id));
        res.unwrap();
        assert_eq!(out, pt);
        let (res, out) = unseal_to_vec(
            &ct,
            Identities::from_file_text("go-key.txt", &go_id).unwrap(),
        );
        res.unwrap();
        assert_eq!(out, pt);

        // Go's output, truncated, is refused too.
        let (res, _) = unseal_to_vec(&ct[..ct.len() - 20], identities(&id));
        assert!(res.is_err(), "truncated Go output accepted (armor {armor})");
    }
    // And our seal to a Go key, decrypted by Go.
    let ct_file = dir.path().join("to-go.age");
    std::fs::write(&ct_file, seal_to_vec(&pt, recipients(&go_rcpt), true)).unwrap();
    let out = run(Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(&go_key)
        .arg(&ct_file));
    assert_eq!(out.stdout, pt);
}

/// Go age 1.1.1 reads passphrases from the terminal only; `script` provides one.
#[test]
fn passphrase_interop_with_go_age() {
    let Some(()) = go_age() else { return };
    let dir = tempfile::tempdir().unwrap();
    let pt = plaintext(100_000);
    let pass = passphrase();

    // Ours -> Go.
    for armor in [false, true] {
        let ct_file = dir.path().join(format!("ours-{armor}.age"));
        let out_file = dir.path().join(format!("ours-{armor}.out"));
        std::fs::write(
            &ct_file,
            seal_to_vec(&pt, Recipients::Passphrase(pass.clone()), armor),
        )
        .unwrap();
        run_with_tty(
            &format!("age -d -o {} {}", sh_quote(&out_file), sh_quote(&ct_file)),
            &format!("{}\n", pass.expose_secret()),
        );
        assert_eq!(std::fs::read(&out_file).unwrap(), pt, "armor {armor}");
    }

    // Go -> ours.
    let pt_file = dir.path().join("pt");
    std::fs::write(&pt_file, &pt).unwrap();
    for armor in [false, true] {
        let ct_file = dir.path().join(format!("go-{armor}.age"));
        run_with_tty(
            &format!(
                "age -p {} -o {} {}",
                if armor { "-a" } else { "" },
                sh_quote(&ct_file),
                sh_quote(&pt_file)
            ),
            &format!("{0}\n{0}\n", pass.expose_secret()),
        );
        let ct = std::fs::read(&ct_file).unwrap();
        let (res, out) = unseal_to_vec(&ct, Identities::Passphrase(pass.clone()));
        res.unwrap();
        assert_eq!(out, pt, "armor {armor}");
        let (res, _) = unseal_to_vec(&ct, Identities::Passphrase(SecretString::from("nope")));
        assert!(matches!(res, Err(SealError::WrongPassphrase)), "{res:?}");
    }
}

/// Go age's own behaviour that our callers must not copy (REFERENCE.md: it leaves partial
/// plaintext on truncated input): check that the truncated file is refused by both.
#[test]
fn go_age_also_refuses_truncated_input() {
    let Some(()) = go_age() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (id, rcpt) = key();
    let key_file = dir.path().join("key.txt");
    std::fs::write(&key_file, id.expose_secret()).unwrap();
    let pt = plaintext(200_000);
    let ct = seal_to_vec(&pt, recipients(&rcpt), false);
    let ct_file = dir.path().join("cut.age");
    std::fs::write(&ct_file, &ct[..ct.len() - 100]).unwrap();
    let out = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(&key_file)
        .arg(&ct_file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let (res, _) = unseal_to_vec(&ct[..ct.len() - 100], identities(&id));
    assert!(res.is_err());
}
