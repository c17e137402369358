//! age encryption of keygate's secrets (store and pepper backups, hand-over between hosts).
//!
//! Interoperates with Go `age` 1.1.1 and `rage`: X25519 keys (`age1...`) and passphrases
//! (scrypt), binary or ASCII-armored. Post-quantum keys (`age1pq1...`, Go age 1.3) cannot be
//! read by the `age` crate, so they are refused with an explanation instead of failing late.
//!
//! Passphrase encryption pins the scrypt work factor to [`SCRYPT_WORK_FACTOR`] (2^18, what Go
//! age uses) instead of tuning it to this machine, so files made on a fast machine still
//! open on a slow one. Decryption accepts up to [`MAX_SCRYPT_WORK_FACTOR`].
//!
//! [`unseal`] streams: it writes plaintext before the end of the input has been
//! authenticated, and returns `Ok` only once the whole file has been. The caller writes into
//! a temporary 0600 file and renames it into place only on `Ok`, so truncated or tampered
//! input never replaces good data.
//!
//! No error contains a key, a passphrase or plaintext.

use std::fmt;
use std::io::{self, Read, Write};
use std::iter;

use age::armor::{ArmoredReadError, ArmoredReader, ArmoredWriter, Format};
use age::secrecy::{ExposeSecret, SecretString};
use age::{DecryptError, Decryptor, Encryptor, scrypt, x25519};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use zeroize::Zeroizing;

/// The scrypt work factor (log2 N) used for passphrase encryption. Go age uses 18 too.
pub const SCRYPT_WORK_FACTOR: u8 = 18;

/// The largest scrypt work factor accepted when decrypting, as in Go age: 16 times the work
/// and memory of [`SCRYPT_WORK_FACTOR`] (scrypt with N = 2^22 and r = 8 needs 4 GiB). A
/// larger one in a file is refused before any work is done, so a hostile file cannot make
/// decryption take hours.
pub const MAX_SCRYPT_WORK_FACTOR: u8 = 22;

/// Generates an X25519 identity: the identity file text and its recipient (`age1...`).
///
/// The text has the form `age-keygen` writes:
/// `# created: <RFC 3339>\n# public key: age1...\nAGE-SECRET-KEY-1...\n`. The time is
/// passed in, like every clock in this crate.
pub fn keygen(now: OffsetDateTime) -> (SecretString, String) {
    let identity = x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let secret = identity.to_string();
    let created = now
        .to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "unknown".to_owned());
    let header = format!("# created: {created}\n# public key: {recipient}\n");
    // Sized exactly so the secret is never left behind in a reallocated buffer.
    let mut text = String::with_capacity(header.len() + secret.expose_secret().len() + 1);
    text.push_str(&header);
    text.push_str(secret.expose_secret());
    text.push('\n');
    (SecretString::from(text), recipient)
}

/// Who can decrypt what [`seal`] writes.
#[derive(Debug)]
pub enum Recipients {
    /// X25519 public keys (`age1...`); see [`parse_recipient`] and [`parse_recipients_file`].
    Keys(Vec<x25519::Recipient>),
    /// A passphrase, stretched with scrypt at work factor [`SCRYPT_WORK_FACTOR`].
    Passphrase(SecretString),
}

/// What [`unseal`] decrypts with.
pub enum Identities {
    /// X25519 secret keys; see [`parse_identity_file`].
    Keys(Vec<x25519::Identity>),
    /// A passphrase (scrypt, work factor up to [`MAX_SCRYPT_WORK_FACTOR`]).
    Passphrase(SecretString),
}

impl Identities {
    /// The identities in an identity file's text (see [`parse_identity_file`]).
    pub fn from_file_text(location: &str, text: &str) -> Result<Identities, SealError> {
        parse_identity_file(location, text).map(Identities::Keys)
    }
}

impl fmt::Debug for Identities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identities::Keys(keys) => write!(f, "Identities::Keys([{} REDACTED])", keys.len()),
            Identities::Passphrase(_) => f.write_str("Identities::Passphrase([REDACTED])"),
        }
    }
}

/// Parses one recipient, as given to `-r`. `location` names it in errors (e.g. `-r #2`).
///
/// Only X25519 keys are accepted; a post-quantum, plugin, tag or SSH key, or a secret key
/// given by mistake, is refused with a [`KeyProblem`] that says so. The key is never echoed.
pub fn parse_recipient(location: &str, key: &str) -> Result<x25519::Recipient, SealError> {
    let key = key.trim();
    key.parse::<x25519::Recipient>()
        .map_err(|_| SealError::BadRecipient {
            location: location.to_owned(),
            problem: recipient_problem(key),
        })
}

/// Parses a recipients file (`-R`): one key per line; blank lines and `#` comments skipped.
pub fn parse_recipients_file(
    location: &str,
    text: &str,
) -> Result<Vec<x25519::Recipient>, SealError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        out.push(parse_recipient(
            &format!("line {} of {location}", n + 1),
            line,
        )?);
    }
    if out.is_empty() {
        return Err(SealError::NoRecipients {
            location: Some(location.to_owned()),
        });
    }
    Ok(out)
}

/// Parses an identity file (`-i`): `AGE-SECRET-KEY-1...` lines; blank lines and `#` comments
/// skipped. Nothing of the file's content appears in errors, only line numbers.
pub fn parse_identity_file(location: &str, text: &str) -> Result<Vec<x25519::Identity>, SealError> {
    let start = text.trim_start();
    if start.starts_with("age-encryption.org/") || start.starts_with(ARMOR_BEGIN) {
        return Err(SealError::BadIdentity {
            location: location.to_owned(),
            problem: KeyProblem::EncryptedIdentityFile,
        });
    }
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.parse::<x25519::Identity>() {
            Ok(identity) => out.push(identity),
            Err(_) => {
                return Err(SealError::BadIdentity {
                    location: format!("line {} of {location}", n + 1),
                    problem: identity_problem(line),
                });
            }
        }
    }
    if out.is_empty() {
        return Err(SealError::NoIdentities {
            location: location.to_owned(),
        });
    }
    Ok(out)
}

/// Encrypts `input` to `recipients`, writing an age file (ASCII-armored if `armor`).
///
/// Flushes `output` at the end. On error the output is incomplete and must be discarded.
pub fn seal(
    input: impl Read,
    output: impl Write,
    recipients: Recipients,
    armor: bool,
) -> Result<(), SealError> {
    // age turns some write errors into strings (the header writer does); keep the original
    // so a broken pipe is still recognisable.
    let mut output = TrackedWriter {
        inner: output,
        error: None,
    };
    seal_inner(input, &mut output, &recipients, armor).map_err(|e| match e {
        SealError::Write(e) => SealError::Write(output.error.take().unwrap_or(e)),
        e => e,
    })
}

fn seal_inner(
    mut input: impl Read,
    output: impl Write,
    recipients: &Recipients,
    armor: bool,
) -> Result<(), SealError> {
    let encryptor = match recipients {
        Recipients::Keys(keys) => {
            if keys.is_empty() {
                return Err(SealError::NoRecipients { location: None });
            }
            Encryptor::with_recipients(keys.iter().map(|k| k as &dyn age::Recipient))
                .map_err(|e| SealError::Encrypt(e.to_string()))?
        }
        Recipients::Passphrase(pass) => {
            if pass.expose_secret().is_empty() {
                return Err(SealError::EmptyPassphrase);
            }
            let mut recipient = scrypt::Recipient::new(pass.clone());
            recipient.set_work_factor(SCRYPT_WORK_FACTOR);
            Encryptor::with_recipients(iter::once(&recipient as &dyn age::Recipient))
                .map_err(|e| SealError::Encrypt(e.to_string()))?
        }
    };
    let format = if armor {
        Format::AsciiArmor
    } else {
        Format::Binary
    };
    let armored = ArmoredWriter::wrap_output(output, format).map_err(SealError::Write)?;
    let mut writer = encryptor.wrap_output(armored).map_err(SealError::Write)?;
    let mut buf = Zeroizing::new(vec![0u8; BUF_LEN]);
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(SealError::Read(e)),
        };
        writer.write_all(&buf[..n]).map_err(SealError::Write)?;
    }
    let armored = writer.finish().map_err(SealError::Write)?;
    let mut output = armored.finish().map_err(SealError::Write)?;
    output.flush().map_err(SealError::Write)
}

/// Decrypts an age file (binary or ASCII-armored) from `input` into `output`.
///
/// Plaintext is written as it is decrypted, in 64 KiB chunks that each authenticated, but the
/// file as a whole is only known to be complete and unmodified when this returns `Ok`: on any
/// `Err` ([`SealError::Truncated`], [`SealError::Tampered`]...) discard what was written.
pub fn unseal(
    input: impl Read,
    mut output: impl Write,
    identities: Identities,
) -> Result<(), SealError> {
    let reader = ArmoredReader::new(TaggedReader(input));
    let decryptor = Decryptor::new_buffered(reader).map_err(decrypt_error)?;
    let mut stream = match &identities {
        Identities::Keys(keys) => {
            if keys.is_empty() {
                return Err(SealError::NoIdentities {
                    location: "the identities given".to_owned(),
                });
            }
            if decryptor.is_scrypt() {
                return Err(SealError::NeedsPassphrase);
            }
            decryptor
                .decrypt(keys.iter().map(|k| k as &dyn age::Identity))
                .map_err(decrypt_error)?
        }
        Identities::Passphrase(pass) => {
            if !decryptor.is_scrypt() {
                return Err(SealError::NotPassphraseFile);
            }
            let mut identity = scrypt::Identity::new(pass.clone());
            identity.set_max_work_factor(MAX_SCRYPT_WORK_FACTOR);
            decryptor
                .decrypt(iter::once(&identity as &dyn age::Identity))
                .map_err(|e| match e {
                    // For a passphrase, a failed unwrap means the wrong passphrase.
                    DecryptError::DecryptionFailed => SealError::WrongPassphrase,
                    e => decrypt_error(e),
                })?
        }
    };
    let mut buf = Zeroizing::new(vec![0u8; BUF_LEN]);
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_error(e)),
        };
        output.write_all(&buf[..n]).map_err(SealError::Write)?;
    }
    output.flush().map_err(SealError::Write)
}

/// Why a key given as a recipient or an identity was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyProblem {
    /// A post-quantum key (`age1pq1...`, `AGE-SECRET-KEY-PQ-1...`) from Go age 1.3.
    PostQuantum,
    /// A plugin, tag or SSH key: only X25519 keys are supported.
    Unsupported,
    /// A secret key where a recipient (public key) was expected.
    SecretKeyAsRecipient,
    /// A public key where an identity (secret key) was expected.
    PublicKeyAsIdentity,
    /// A passphrase-protected identity file.
    EncryptedIdentityFile,
    /// Not an age key at all, or a damaged one.
    Invalid,
}

impl fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyProblem::PostQuantum => {
                "post-quantum age keys (age1pq1...) are not supported, only X25519 keys"
            }
            KeyProblem::Unsupported => {
                "only X25519 age keys are supported, not plugin, tag or SSH keys"
            }
            KeyProblem::SecretKeyAsRecipient => {
                "this is a secret key (AGE-SECRET-KEY-1...), not a recipient"
            }
            KeyProblem::PublicKeyAsIdentity => "this is a public key (age1...), not an identity",
            KeyProblem::EncryptedIdentityFile => {
                "passphrase-protected identity files are not supported"
            }
            KeyProblem::Invalid => "not a valid X25519 age key",
        })
    }
}

/// Why [`seal`] or [`unseal`] failed, or a key was refused. [`SealError::hint`] says what
/// to do. Never contains a key, a passphrase or plaintext.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// A recipient could not be used.
    #[error("{location}: {problem}")]
    BadRecipient {
        /// Where it came from (`-r #2`, `line 3 of keys.txt`).
        location: String,
        /// What is wrong with it.
        problem: KeyProblem,
    },
    /// An identity could not be used.
    #[error("{location}: {problem}")]
    BadIdentity {
        /// Where it came from.
        location: String,
        /// What is wrong with it.
        problem: KeyProblem,
    },
    /// No recipients at all (or a recipients file with none).
    #[error("no recipients{}", location.as_ref().map(|l| format!(" in {l}")).unwrap_or_default())]
    NoRecipients {
        /// The file that had none, if it was a file.
        location: Option<String>,
    },
    /// An identity file with no identities in it.
    #[error("no identities in {location}")]
    NoIdentities {
        /// The file.
        location: String,
    },
    /// An empty passphrase for encryption.
    #[error("the passphrase is empty")]
    EmptyPassphrase,
    /// The age crate refused the recipient set.
    #[error("cannot encrypt: {0}")]
    Encrypt(String),
    /// The file was encrypted with a passphrase, but keys were given.
    #[error("this file is encrypted with a passphrase, not to age keys")]
    NeedsPassphrase,
    /// The file was encrypted to keys, but a passphrase was given.
    #[error("this file is encrypted to age keys, not with a passphrase")]
    NotPassphraseFile,
    /// None of the identities is a recipient of the file.
    #[error("none of the identities can decrypt this file")]
    NoMatchingKeys,
    /// The passphrase did not decrypt the file.
    #[error("incorrect passphrase")]
    WrongPassphrase,
    /// The file asks for more scrypt work than [`MAX_SCRYPT_WORK_FACTOR`].
    #[error(
        "the file's passphrase needs scrypt work factor {required}, more than the {MAX_SCRYPT_WORK_FACTOR} accepted"
    )]
    ExcessiveWork {
        /// The work factor (log2 N) in the file.
        required: u8,
    },
    /// Not an age file, or one with a damaged header.
    #[error("the input is not an age file, or its header is damaged")]
    NotAgeFile,
    /// An age file in a format version this crate does not know.
    #[error("the input is an age file in an unknown format version")]
    UnknownFormat,
    /// The header's MAC did not verify: the header was modified.
    #[error("the age file's header failed authentication: it was modified or is damaged")]
    HeaderTampered,
    /// The input ended before the end of the age file, at a header or chunk boundary.
    /// (Cut inside a chunk, a file fails authentication instead: [`SealError::Tampered`].)
    #[error("the age file is truncated")]
    Truncated,
    /// The payload did not authenticate (modified, or cut inside a chunk), or there is data
    /// after its end.
    #[error("the age file failed authentication: it was truncated, modified or damaged")]
    Tampered,
    /// ASCII armor that does not follow the format (damaged, truncated or re-wrapped).
    #[error("the age file's ASCII armor is invalid (truncated or damaged?): {0}")]
    InvalidArmor(String),
    /// Reading the input failed.
    #[error("cannot read the input: {0}")]
    Read(#[source] io::Error),
    /// Writing the output failed.
    #[error("cannot write the output: {0}")]
    Write(#[source] io::Error),
}

impl SealError {
    /// A one-line recommendation for the user, when there is one.
    pub fn hint(&self) -> Option<String> {
        let hint = match self {
            SealError::BadRecipient { problem, .. } | SealError::BadIdentity { problem, .. } => {
                match problem {
                    KeyProblem::PostQuantum | KeyProblem::Unsupported => {
                        "generate an X25519 key with `age-keygen` (without -pq), or use a passphrase"
                    }
                    KeyProblem::SecretKeyAsRecipient => {
                        "give the public key (`age-keygen -y KEYFILE` prints it), and keep the \
                         secret key off command lines"
                    }
                    KeyProblem::PublicKeyAsIdentity => {
                        "give the identity file that holds the AGE-SECRET-KEY-1... line"
                    }
                    KeyProblem::EncryptedIdentityFile => {
                        "decrypt the identity file with `age -d` into a 0600 file first"
                    }
                    KeyProblem::Invalid => {
                        "age public keys start with age1, secret keys with \
                                            AGE-SECRET-KEY-1; check for a truncated copy"
                    }
                }
            }
            SealError::NoRecipients { .. } => {
                "pass a recipient with -r age1..., a recipients file with -R, or use a passphrase"
            }
            SealError::NoIdentities { .. } => "give a file made by `age-keygen`",
            SealError::EmptyPassphrase => "choose a passphrase of several words",
            SealError::Encrypt(_) => return None,
            SealError::NeedsPassphrase => "decrypt it with the passphrase option",
            SealError::NotPassphraseFile => "decrypt it with the identity file (-i)",
            SealError::NoMatchingKeys => {
                "the file was encrypted to other recipients; check which key it was sealed to"
            }
            SealError::WrongPassphrase => "check the passphrase and try again",
            SealError::ExcessiveWork { .. } => {
                "this may be a hostile file; if you trust it, decrypt it with `age -d` and \
                 seal it again (work factor 18)"
            }
            SealError::NotAgeFile | SealError::UnknownFormat => {
                "check that this is the file you meant; a newer age format needs a newer keygate"
            }
            SealError::HeaderTampered | SealError::Tampered | SealError::InvalidArmor(_) => {
                "discard any output written; restore the file from another copy"
            }
            SealError::Truncated => {
                "the copy is incomplete: discard any output written and copy the file again"
            }
            SealError::Read(_) => return None,
            SealError::Write(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                "are you piping to a program that isn't reading from stdin?"
            }
            SealError::Write(_) => "check free space and permissions where the output goes",
        };
        Some(hint.to_owned())
    }
}

const BUF_LEN: usize = 64 * 1024;
const ARMOR_BEGIN: &str = "-----BEGIN AGE ENCRYPTED FILE-----";

fn recipient_problem(key: &str) -> KeyProblem {
    if key.starts_with("age1pq1") {
        KeyProblem::PostQuantum
    } else if key.starts_with("AGE-SECRET-KEY-") {
        KeyProblem::SecretKeyAsRecipient
    } else if key.starts_with("age1") && key[4..].contains('1') || key.starts_with("ssh-") {
        // Bech32 data never contains '1' (it separates the human-readable part), so a second
        // '1' means another type: `age1yubikey1...` (plugins), `age1tag1...`, `age1tagpq1...`.
        KeyProblem::Unsupported
    } else {
        KeyProblem::Invalid
    }
}

fn identity_problem(line: &str) -> KeyProblem {
    if line.starts_with("AGE-SECRET-KEY-PQ-") {
        KeyProblem::PostQuantum
    } else if line.starts_with("AGE-PLUGIN-") || line.starts_with("-----BEGIN OPENSSH") {
        KeyProblem::Unsupported
    } else if line.starts_with("age1") {
        KeyProblem::PublicKeyAsIdentity
    } else {
        KeyProblem::Invalid
    }
}

/// Keeps the first error from the caller's output, which age may pass on only as text.
struct TrackedWriter<W> {
    inner: W,
    error: Option<io::Error>,
}

impl<W: Write> Write for TrackedWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf).map_err(|e| self.keep(e))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush().map_err(|e| self.keep(e))
    }
}

impl<W> TrackedWriter<W> {
    fn keep(&mut self, e: io::Error) -> io::Error {
        let copy = io::Error::new(e.kind(), e.to_string());
        if self.error.is_none() && e.kind() != io::ErrorKind::Interrupted {
            self.error = Some(e);
        }
        copy
    }
}

/// Marks errors from the caller's input, so they are reported as read errors rather than
/// mistaken for age's own (which come as plain `io::Error`s too).
struct TaggedReader<R>(R);

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct InputError(io::Error);

impl<R: Read> Read for TaggedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0
            .read(buf)
            .map_err(|e| io::Error::new(e.kind(), InputError(e)))
    }
}

fn decrypt_error(e: DecryptError) -> SealError {
    match e {
        DecryptError::Io(e) => read_error(e),
        DecryptError::InvalidHeader => SealError::NotAgeFile,
        DecryptError::UnknownFormat => SealError::UnknownFormat,
        DecryptError::InvalidMac => SealError::HeaderTampered,
        DecryptError::NoMatchingKeys => SealError::NoMatchingKeys,
        DecryptError::ExcessiveWork { required, .. } => SealError::ExcessiveWork { required },
        // A recipient stanza that is malformed or does not decrypt: a damaged header.
        _ => SealError::HeaderTampered,
    }
}

/// Sorts an error from reading the decrypted stream: the caller's input, the armor, or age's
/// own checks (which signal truncation with `UnexpectedEof` and failed authentication with
/// `InvalidData`).
fn read_error(e: io::Error) -> SealError {
    let kind = e.kind();
    match e.into_inner() {
        Some(inner) => match inner.downcast::<InputError>() {
            Ok(input) => SealError::Read(input.0),
            Err(inner) => match inner.downcast::<ArmoredReadError>() {
                Ok(armor) => SealError::InvalidArmor(armor.to_string()),
                Err(inner) => classify_age_io(kind, Some(inner)),
            },
        },
        None => classify_age_io(kind, None),
    }
}

fn classify_age_io(
    kind: io::ErrorKind,
    inner: Option<Box<dyn std::error::Error + Send + Sync>>,
) -> SealError {
    match kind {
        io::ErrorKind::UnexpectedEof => SealError::Truncated,
        io::ErrorKind::InvalidData => SealError::Tampered,
        _ => SealError::Read(match inner {
            Some(inner) => io::Error::new(kind, inner),
            None => io::Error::from(kind),
        }),
    }
}
