//! Where a client's token comes from, in order:
//!
//! 1. `--token-file FILE`, `--token-fd N` or `-` (stdin): whichever was given;
//! 2. `KEYGATE_TOKEN` (the `client.token` setting, environment only);
//! 3. the token file of a profile (`[profiles.NAME] token_file`), chosen with `--profile` or
//!    `KEYGATE_PROFILE`;
//! 4. a no-echo prompt, only when stdin is a terminal.
//!
//! Never argv: a value on the command line is visible in `ps` and shell history.

use std::fmt;
use std::path::PathBuf;

use kg_cli::{CliError, Context, tty};
use kg_tokens::TokenSecret;
use kg_tokens::files::read_token;
use secrecy::ExposeSecret;

/// Where the token was taken from; named in messages, never with the token itself.
#[derive(Debug, Clone)]
pub(crate) enum From {
    File(PathBuf),
    Fd(u32),
    Stdin,
    Env,
    Profile { name: String, file: PathBuf },
    Prompt,
}

impl fmt::Display for From {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            From::File(p) => write!(f, "token file '{}'", p.display()),
            From::Fd(n) => write!(f, "descriptor {n}"),
            From::Stdin => f.write_str("stdin"),
            From::Env => f.write_str("KEYGATE_TOKEN"),
            From::Profile { name, file } => {
                write!(f, "token file '{}' of profile '{name}'", file.display())
            }
            From::Prompt => f.write_str("the prompt"),
        }
    }
}

/// The explicit sources a command was given (at most one; clap enforces that).
#[derive(Debug, Default)]
pub(crate) struct Explicit {
    pub(crate) file: Option<PathBuf>,
    pub(crate) fd: Option<u32>,
    pub(crate) stdin: bool,
}

/// A token and where it came from. `None` inside means the source was empty.
pub(crate) struct Credential {
    pub(crate) from: From,
    pub(crate) token: Option<TokenSecret>,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("from", &self.from)
            .field("token", &self.token)
            .finish()
    }
}

/// Finds the client's token by the order above.
pub(crate) fn resolve(ctx: &Context, explicit: &Explicit) -> Result<Credential, CliError> {
    if let Some(path) = &explicit.file {
        return read_from(From::File(path.clone()), || std::fs::File::open(path));
    }
    if let Some(fd) = explicit.fd {
        return read_from(From::Fd(fd), || tty::open_fd(fd));
    }
    if explicit.stdin {
        // `-` on a terminal: ask without echo rather than echo what is typed.
        if tty::stdin_is_tty() {
            return prompt(From::Stdin);
        }
        return read_from(From::Stdin, || Ok(std::io::stdin().lock()));
    }
    if let Some(secret) = ctx.config.secret("client.token") {
        let token = read_token(secret.expose_secret().as_bytes())
            .map_err(|e| CliError::usage(format!("cannot use KEYGATE_TOKEN: {e}")))?;
        return Ok(Credential {
            from: From::Env,
            token,
        });
    }
    if let Some(name) = ctx.config.str("client.profile") {
        let profile = ctx.config.profile(name).ok_or_else(|| {
            CliError::usage(format!(
                "no profile '{name}' in config file '{}'",
                ctx.locations.config_file.display()
            ))
            .with_hint(format!(
                "add [profiles.{name}] with token_file = \"PATH\", or choose another profile"
            ))
        })?;
        let file = profile.token_file.clone().ok_or_else(|| {
            CliError::usage(format!(
                "profile '{name}' has no token_file: it is an OAuth client"
            ))
            .with_hint(format!(
                "`tokenctl token --profile {name}` prints its access token"
            ))
        })?;
        let from = From::Profile {
            name: name.to_owned(),
            file: file.clone(),
        };
        return read_from(from, || std::fs::File::open(&file));
    }
    if tty::stdin_is_tty() {
        return prompt(From::Prompt);
    }
    Err(CliError::usage("no token given").with_hint(
        "pass --token-file FILE, --token-fd N or - (stdin), set KEYGATE_TOKEN, \
         or choose a profile with --profile NAME",
    ))
}

/// Asks on the terminal, without echo.
fn prompt(from: From) -> Result<Credential, CliError> {
    let line = tty::prompt_secret("Token: ")
        .map_err(|e| CliError::usage(format!("cannot read the token from the terminal: {e}")))?
        .ok_or_else(|| CliError::usage("cannot open the terminal to ask for the token"))?;
    let token = read_token(line.expose_secret().as_bytes())
        .map_err(|e| CliError::usage(format!("cannot use the token typed: {e}")))?;
    Ok(Credential { from, token })
}

fn read_from<R: std::io::Read>(
    from: From,
    open: impl FnOnce() -> std::io::Result<R>,
) -> Result<Credential, CliError> {
    let cannot = |e: &dyn fmt::Display| CliError::usage(format!("cannot read {from}: {e}"));
    let input = open().map_err(|e| cannot(&e))?;
    let token = read_token(input).map_err(|e| cannot(&e))?;
    Ok(Credential { from, token })
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    #[test]
    fn debug_shows_where_a_token_came_from_but_not_the_token() {
        let token = "kg_0123456789AB_abcdefghijklmnopqrstuvwxyzABCDEF012345";
        let cred = Credential {
            from: From::Env,
            token: Some(TokenSecret::from(SecretString::from(token.to_owned()))),
        };
        let text = format!("{cred:?}");
        assert!(text.contains("Env"), "{text}");
        assert!(!text.contains("abcdefghijklmnop"), "{text}");
    }
}
