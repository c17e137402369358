//! The age commands: keygen, seal, unseal.
//!
//! Output files go through the secure file layer. `unseal` publishes plaintext only once the
//! whole input authenticated: into a 0600 temporary file that is renamed over `-o FILE`, or
//! held in memory and then written to stdout. A truncated or tampered input leaves nothing.

use std::io::{self, Write};
use std::path::PathBuf;

use kg_cli::{CliError, Context, ExitStatus, GlobalArgs, absolute, note, out, out_doc};
use kg_fs::{AtomicFile, FileMode};
use kg_tokens::seal::{
    Identities, Recipients, SealError, parse_identity_file, parse_recipient, parse_recipients_file,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use zeroize::Zeroizing;

use crate::{load, now};
use kg_cli::tty;

/// Largest plaintext `unseal` holds in memory for stdout; beyond it, `-o FILE` is needed.
const MAX_STDOUT_PLAINTEXT: usize = 64 << 20;

#[derive(Debug, clap::Args)]
pub(crate) struct KeygenArgs {
    /// Write the identity to FILE (0600; refuses to overwrite) instead of stdout
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
    /// Print JSON (the recipient and the file; never the secret key)
    #[arg(long, requires = "output")]
    json: bool,
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("to").required(true).multiple(true).args(["recipients", "recipients_file", "passphrase"])))]
pub(crate) struct SealArgs {
    /// Encrypt to this age X25519 recipient, age1... (repeatable)
    #[arg(long = "recipient", short = 'r', value_name = "RECIPIENT")]
    recipients: Vec<String>,
    /// Encrypt to the recipients listed in FILE, one per line (repeatable)
    #[arg(long = "recipients-file", short = 'R', value_name = "FILE")]
    recipients_file: Vec<PathBuf>,
    /// Encrypt with a passphrase (AGE_PASSPHRASE, AGE_PASSPHRASE_FD, or a prompt)
    #[arg(long, short = 'p', conflicts_with_all = ["recipients", "recipients_file"])]
    passphrase: bool,
    /// Write ASCII armor instead of binary
    #[arg(long, short = 'a')]
    armor: bool,
    /// Write to FILE instead of stdout
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct UnsealArgs {
    /// Decrypt with the identities in FILE (repeatable); without -i, a passphrase is used
    #[arg(long = "identity", short = 'i', value_name = "FILE")]
    identities: Vec<PathBuf>,
    /// Write to FILE (0600) instead of stdout, only once the input authenticated
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
}

pub(crate) fn keygen(global: &GlobalArgs, args: &KeygenArgs) -> Result<ExitStatus, CliError> {
    let ctx = load(global, &[])?;
    let (identity, recipient) = kg_tokens::seal::keygen(now(&ctx.config)?);
    let Some(path) = &args.output else {
        out(identity.expose_secret().trim_end())?;
        return Ok(ExitStatus::Success);
    };
    // Checked, then created by the secure file layer: a file appearing in between is
    // replaced, which only a racing keygen of the same user can cause.
    if std::fs::symlink_metadata(path).is_ok() {
        return Err(
            CliError::failure(format!("refusing to overwrite '{}'", path.display()))
                .with_hint("an identity file is the only copy of its key; choose another name"),
        );
    }
    kg_fs::write_atomic(path, identity.expose_secret().as_bytes(), FileMode::Secret)?;
    if args.json {
        out_doc(
            "tokenctl.keygen/1",
            &json!({"recipient": recipient, "identity_file": absolute(path)}),
        )?;
    } else {
        note(format!("Public key: {recipient}"));
        out(path.display())?;
    }
    Ok(ExitStatus::Success)
}

pub(crate) fn seal(global: &GlobalArgs, args: &SealArgs) -> Result<ExitStatus, CliError> {
    let ctx = load(global, &[])?;
    let recipients = if args.passphrase {
        let pass = passphrase(&ctx, true)?;
        Recipients::Passphrase(pass)
    } else {
        let mut keys = Vec::new();
        for (i, r) in args.recipients.iter().enumerate() {
            keys.push(parse_recipient(&format!("-r #{}", i + 1), r).map_err(seal_error)?);
        }
        for file in &args.recipients_file {
            let location = format!("'{}'", file.display());
            let text = std::fs::read_to_string(file).map_err(|e| {
                CliError::usage(format!("cannot read recipients file {location}: {e}"))
            })?;
            keys.extend(parse_recipients_file(&location, &text).map_err(seal_error)?);
        }
        Recipients::Keys(keys)
    };
    let input = io::stdin().lock();
    match &args.output {
        Some(path) => {
            let mut file = AtomicFile::create(path, FileMode::Public)?;
            kg_tokens::seal::seal(input, &mut file, recipients, args.armor).map_err(seal_error)?;
            file.commit()?;
        }
        None => {
            if !args.armor && tty::stdout_is_tty() {
                return Err(
                    CliError::usage("refusing to write binary age output to a terminal")
                        .with_hint("pass --armor, -o FILE, or redirect stdout"),
                );
            }
            kg_tokens::seal::seal(input, io::stdout().lock(), recipients, args.armor)
                .map_err(seal_error)?;
        }
    }
    Ok(ExitStatus::Success)
}

/// Largest identity file read: far beyond any list of keys a person keeps.
const MAX_IDENTITY_FILE: u64 = 1 << 20;

pub(crate) fn unseal(global: &GlobalArgs, args: &UnsealArgs) -> Result<ExitStatus, CliError> {
    let ctx = load(global, &[])?;
    let identities = if args.identities.is_empty() {
        Identities::Passphrase(passphrase(&ctx, false)?)
    } else {
        let mut keys = Vec::new();
        for file in &args.identities {
            let location = format!("'{}'", file.display());
            // The user's file, not one of keygate's: read as Go age reads `-i` (through a
            // link, from a descriptor such as `<(pass show key)`), bounded, and left as is.
            let bytes = Zeroizing::new(kg_fs::read_limited(
                file,
                MAX_IDENTITY_FILE,
                "age identity file",
            )?);
            let text = std::str::from_utf8(&bytes)
                .map_err(|_| CliError::usage(format!("identity file {location} is not text")))?;
            keys.extend(parse_identity_file(&location, text).map_err(seal_error)?);
        }
        Identities::Keys(keys)
    };
    let input = io::stdin().lock();
    match &args.output {
        Some(path) => {
            // A 0600 file with no name (O_TMPFILE) until the whole stream has authenticated:
            // an error, or even SIGKILL, leaves no partial plaintext anywhere.
            let mut file = kg_fs::UnnamedFile::create(path, FileMode::Secret)?;
            kg_tokens::seal::unseal(input, &mut file, identities).map_err(seal_error)?;
            file.commit()?;
        }
        None => {
            let mut buf = Capped(Zeroizing::new(Vec::new()));
            kg_tokens::seal::unseal(input, &mut buf, identities).map_err(seal_error)?;
            let mut stdout = io::stdout().lock();
            stdout.write_all(&buf.0)?;
            stdout.flush()?;
        }
    }
    Ok(ExitStatus::Success)
}

/// The passphrase: `AGE_PASSPHRASE`, else the first line of `AGE_PASSPHRASE_FD`, else a
/// prompt on the terminal (twice when encrypting).
fn passphrase(ctx: &Context, confirm: bool) -> Result<SecretString, CliError> {
    if let Some(p) = ctx.config.secret("age.passphrase") {
        return Ok(p.clone());
    }
    if let Some(raw) = ctx.config.str("age.passphrase_fd") {
        let fd: u32 = raw.trim().parse().map_err(|_| {
            CliError::usage(format!(
                "invalid AGE_PASSPHRASE_FD '{raw}': expected a descriptor number"
            ))
        })?;
        return tty::open_fd(fd).and_then(tty::read_line).map_err(|e| {
            CliError::usage(format!(
                "cannot read the passphrase from descriptor {fd}: {e}"
            ))
        });
    }
    let no_tty = || {
        CliError::usage("no passphrase: there is no terminal to ask on").with_hint(
            "set AGE_PASSPHRASE, or AGE_PASSPHRASE_FD to a descriptor the passphrase can be read from",
        )
    };
    let ask = |prompt: &str| {
        tty::prompt_secret(prompt)
            .map_err(|e| CliError::usage(format!("cannot read the passphrase: {e}")))?
            .ok_or_else(no_tty)
    };
    let first = ask("Passphrase: ")?;
    if confirm {
        let second = ask("Confirm passphrase: ")?;
        if first.expose_secret() != second.expose_secret() {
            return Err(
                CliError::usage("the passphrases do not match").with_hint("run the command again")
            );
        }
    }
    Ok(first)
}

/// Maps an age error: a bad key or missing input is usage (2), a failed decryption 1.
fn seal_error(e: SealError) -> CliError {
    if let SealError::Write(io) = &e
        && io.kind() == io::ErrorKind::BrokenPipe
    {
        return io::Error::from(io::ErrorKind::BrokenPipe).into();
    }
    let usage = matches!(
        e,
        SealError::BadRecipient { .. }
            | SealError::BadIdentity { .. }
            | SealError::NoRecipients { .. }
            | SealError::NoIdentities { .. }
            | SealError::EmptyPassphrase
    );
    let mut err = if usage {
        CliError::usage(e.to_string())
    } else {
        CliError::failure(e.to_string())
    };
    err.hint = match e {
        // This command never leaves partial output behind, so there is nothing to discard.
        SealError::HeaderTampered
        | SealError::Tampered
        | SealError::InvalidArmor(_)
        | SealError::Truncated => {
            Some("nothing was written; get an intact copy of the file and try again".to_owned())
        }
        _ => e.hint(),
    };
    err
}

/// An in-memory sink that refuses to grow past [`MAX_STDOUT_PLAINTEXT`], wiped on drop.
struct Capped(Zeroizing<Vec<u8>>);

impl Write for Capped {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.0.len() + buf.len() > MAX_STDOUT_PLAINTEXT {
            return Err(io::Error::other(format!(
                "the plaintext is larger than {} MiB; pass -o FILE",
                MAX_STDOUT_PLAINTEXT >> 20
            )));
        }
        // Grow by copying into a new wiped buffer, never leaving an unwiped old allocation.
        if self.0.capacity() < self.0.len() + buf.len() {
            let mut bigger = Zeroizing::new(Vec::with_capacity(
                (self.0.len() + buf.len()).next_power_of_two(),
            ));
            bigger.extend_from_slice(&self.0);
            self.0 = bigger;
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
