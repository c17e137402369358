//! Reading secrets from the terminal without echo, and from numbered file descriptors, in safe
//! code: termios through `rustix`, descriptors by reopening `/proc/self/fd/N`.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;

use rustix::termios::{self, LocalModes, OptionalActions};
use secrecy::SecretString;
use zeroize::Zeroizing;

/// Longest line read from a terminal or descriptor for a secret.
const MAX_LINE: u64 = 4096;

/// Whether standard input is a terminal.
pub fn stdin_is_tty() -> bool {
    termios::isatty(io::stdin())
}

/// Whether standard output is a terminal.
pub fn stdout_is_tty() -> bool {
    termios::isatty(io::stdout())
}

/// Prints `prompt` on the controlling terminal and reads one line with echo off.
///
/// The terminal is `/dev/tty`, not stdin, so this works while stdin carries data (`seal`).
/// Echo is restored before returning, also on error. `Ok(None)` when there is no terminal.
pub fn prompt_secret(prompt: &str) -> io::Result<Option<SecretString>> {
    let tty = match OpenOptions::new().read(true).write(true).open("/dev/tty") {
        Ok(tty) => tty,
        Err(_) => return Ok(None),
    };
    let saved = termios::tcgetattr(&tty)?;
    let mut quiet = saved.clone();
    // No echo, but show the newline so the next output starts on its own line.
    quiet.local_modes.remove(LocalModes::ECHO);
    quiet.local_modes.insert(LocalModes::ECHONL);
    // Echo goes off before the prompt shows, so nothing typed after the prompt is echoed.
    termios::tcsetattr(&tty, OptionalActions::Now, &quiet)?;
    let line = (&tty)
        .write_all(prompt.as_bytes())
        .and_then(|()| read_line(&tty));
    termios::tcsetattr(&tty, OptionalActions::Now, &saved)?;
    line.map(Some)
}

/// Opens descriptor `fd` of this process for reading, without `unsafe`: the kernel reopens
/// the same pipe or file through `/proc/self/fd/N` (`/dev/fd/N` where there is no /proc).
pub fn open_fd(fd: u32) -> io::Result<File> {
    let proc = format!("/proc/self/fd/{fd}");
    let path = if Path::new("/proc/self/fd").is_dir() {
        proc
    } else {
        format!("/dev/fd/{fd}")
    };
    File::open(path)
}

/// Reads the first line of `input` (without its line ending), at most [`MAX_LINE`] bytes.
pub fn read_line(input: impl Read) -> io::Result<SecretString> {
    let mut reader = BufReader::new(input.take(MAX_LINE + 1));
    let mut buf = Zeroizing::new(Vec::with_capacity(128));
    reader.read_until(b'\n', &mut buf)?;
    if buf.len() as u64 > MAX_LINE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the line is longer than {MAX_LINE} bytes"),
        ));
    }
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    let text = std::str::from_utf8(&buf)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "the line is not UTF-8 text"))?;
    Ok(SecretString::from(text.to_owned()))
}
