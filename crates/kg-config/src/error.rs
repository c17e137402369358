use std::path::PathBuf;

/// Why the configuration could not be loaded. Each variant is a usage error (exit 2).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file '{}': {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A config file was named (`--config`, `KEYGATE_CONFIG`) and is not there: running on
    /// defaults instead would drop whatever it says (a scope rule, a listen address).
    #[error("config file '{}' does not exist (named by {by})", path.display())]
    Missing {
        path: PathBuf,
        /// What named it: `--config` or `KEYGATE_CONFIG`.
        by: &'static str,
    },
    /// The file is not valid TOML.
    #[error("config file '{}' line {line}: {message}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// A key (or section) the schema does not know.
    #[error("config file '{}' line {line}: unknown key '{key}'", path.display())]
    UnknownKey {
        path: PathBuf,
        line: usize,
        key: String,
        suggestion: Option<String>,
    },
    /// A value of the wrong type or out of range, from any source.
    #[error("invalid value for '{key}' from {origin}: {message}")]
    InvalidValue {
        key: String,
        origin: String,
        message: String,
    },
    /// A secret where secrets may not be written (the config file, which is not private).
    #[error("config file '{}' line {line}: '{key}' is a secret and cannot be set in the config file", path.display())]
    SecretInFile {
        path: PathBuf,
        line: usize,
        key: String,
    },
    /// The config file or `KEYGATE_HOME` cannot be used: it, or a directory above it, could
    /// have been changed by another user (group- or world-writable, or owned by someone
    /// else), it is not a regular file, or reading it failed.
    #[error(transparent)]
    File(kg_fs::Error),
    /// `KEYGATE_HOME` is a relative path.
    #[error("KEYGATE_HOME '{}' is a relative path", .0.display())]
    RelativeHome(PathBuf),
    /// No home directory and no `KEYGATE_HOME`.
    #[error("cannot find a home directory to keep keygate's files in")]
    NoHome,
}

impl ConfigError {
    /// A one-line recommendation.
    pub fn hint(&self) -> Option<String> {
        match self {
            ConfigError::UnknownKey {
                suggestion: Some(s),
                ..
            } => Some(format!("did you mean '{s}'?")),
            ConfigError::UnknownKey { .. } => {
                Some("run `certctl config explain` to list every setting".to_owned())
            }
            ConfigError::SecretInFile { key, .. } => {
                Some(match crate::setting(key).and_then(|s| s.env) {
                    Some(env) => {
                        format!("set it in the environment ({env}) or use a file-based setting")
                    }
                    None => "use a file-based setting instead".to_owned(),
                })
            }
            ConfigError::RelativeHome(_) => {
                Some("give an absolute path, e.g. KEYGATE_HOME=\"$PWD/keygate\"".to_owned())
            }
            ConfigError::NoHome => {
                Some("set KEYGATE_HOME to a directory keygate may use".to_owned())
            }
            ConfigError::Syntax { .. } => Some("fix the TOML syntax at that line".to_owned()),
            ConfigError::Missing { by, .. } => Some(format!(
                "check the path given to {by}, or create the file (an empty one means the defaults)"
            )),
            ConfigError::File(e) => e.hint(),
            ConfigError::InvalidValue { .. } | ConfigError::Read { .. } => None,
        }
    }
}
