//! What can go wrong getting a token, with the hint and the exit-code class tokenctl uses.

use std::path::PathBuf;

/// Why no token could be had. Never carries a secret or a token.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The profile is missing or incomplete.
    #[error("{0}")]
    Profile(String),
    /// The configuration could not be read.
    #[error(transparent)]
    Config(#[from] kg_config::ConfigError),
    /// A URL this client will not use.
    #[error("invalid URL '{url}': {why}")]
    Url {
        /// The URL.
        url: String,
        /// Why.
        why: String,
    },
    /// The profile's CA file.
    #[error("cannot use the CA file '{}': {why}", path.display())]
    CaFile {
        /// The file.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// TLS could not be set up.
    #[error("TLS: {0}")]
    Tls(String),
    /// A request failed.
    #[error("request to {url} failed: {why}")]
    Http {
        /// The URL.
        url: String,
        /// Why.
        why: String,
    },
    /// The issuer's metadata is not usable.
    #[error("the issuer {issuer}: {why}")]
    Metadata {
        /// The issuer.
        issuer: String,
        /// Why.
        why: String,
    },
    /// The issuer refused (RFC 6749 §5.2).
    #[error("the issuer refused: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Refused {
        /// The error code.
        error: String,
        /// Its description, if any (printable, shortened).
        description: Option<String>,
    },
    /// The cache file is not one this client wrote.
    #[error("the token cache '{}' is damaged or was changed: {why}", path.display())]
    Cache {
        /// The file.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// No such profile, and nothing signed in under its name.
    #[error("no profile '{name}' in {}, and nothing signed in under that name", if *exists { format!("config file '{}'", config_file.display()) } else { format!("the configuration ('{}' does not exist)", config_file.display()) })]
    NoProfile {
        /// The profile's name.
        name: String,
        /// The config file looked in.
        config_file: PathBuf,
        /// Whether that file exists.
        exists: bool,
    },
    /// No token can be had without a person signing in.
    #[error("profile '{0}' is not signed in, or its sign-in ended")]
    NotSignedIn(String),
    /// Another process held the lock too long.
    #[error("another tokenctl is fetching a token for this profile (lock '{}')", path.display())]
    Busy {
        /// The lock file.
        path: PathBuf,
    },
    /// A file could not be read or written.
    #[error(transparent)]
    Fs(#[from] kg_fs::Error),
}

impl Error {
    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            Error::Profile(_) => "a machine client's profile: [profiles.NAME] issuer = \"URL\", \
                 client_id = \"ID\", client_secret_file = \"PATH\" (or KEYGATE_CLIENT_ID and \
                 KEYGATE_CLIENT_SECRET in the environment)"
                .into(),
            Error::Refused { error, .. } if error == "invalid_client" => {
                "check the client id and its secret; `tokenctl client rotate NAME` issues a new \
                 secret on keygate"
                    .into()
            }
            Error::Refused { error, .. } if error == "invalid_scope" => {
                "ask only for scopes the client is registered for".into()
            }
            Error::Http { why, .. } if why.starts_with("TLS") => {
                "trust the issuer's CA: ca_file = \"PATH\" in the profile, SSL_CERT_FILE in the \
                 environment, or `certctl trust` for keygate's own"
                    .into()
            }
            Error::Http { .. } => "check the issuer URL and that it is up".into(),
            Error::NoProfile { name, .. } => format!(
                "`tokenctl login --issuer URL --client-id ID` signs in as '{name}', or add \
                 [profiles.{name}] with issuer = \"URL\" to the config file"
            ),
            Error::Cache { path, .. } => format!(
                "remove '{}' (`tokenctl logout` does): the next run fetches a new token",
                path.display()
            ),
            Error::CaFile { .. } => {
                "ca_file must be a PEM certificate the issuer's chain ends in".into()
            }
            Error::Busy { .. } => "retry in a moment".into(),
            Error::NotSignedIn(name) => format!("`tokenctl login --profile {name}` signs in"),
            Error::Config(e) => return e.hint(),
            _ => return None,
        })
    }

    /// Whether nothing is signed in (status answers "no" rather than failing).
    pub fn is_signed_out(&self) -> bool {
        matches!(self, Error::NotSignedIn(_) | Error::NoProfile { .. })
    }

    /// Whether it is the caller's mistake (usage or configuration, exit 2).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Error::Profile(_) | Error::Config(_) | Error::Url { .. } | Error::CaFile { .. }
        )
    }

    /// Whether another process held the lock (exit 75: retry).
    pub fn is_busy(&self) -> bool {
        matches!(self, Error::Busy { .. })
    }
}
