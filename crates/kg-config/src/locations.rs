use std::path::{Path, PathBuf};

use etcetera::BaseStrategy;

use crate::ConfigError;

/// Where keygate keeps its files.
///
/// - config (no secrets): `$XDG_CONFIG_HOME/keygate/config.toml`
/// - state and locks: `$XDG_STATE_HOME/keygate/`
/// - private material (keys, CA, pepper): `$XDG_DATA_HOME/keygate/`, mode 0700, kept out of
///   `~/.config` so that it stays out of dotfile repositories.
///
/// `KEYGATE_HOME=DIR` puts all three under `DIR` (`config.toml`, `state/`, `private/`), for
/// tests and system installs. Relative `XDG_*` values are ignored, as the spec requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locations {
    pub config_file: PathBuf,
    pub state_dir: PathBuf,
    pub private_dir: PathBuf,
    /// The one directory everything is under (`KEYGATE_HOME`), or `None` for the XDG layout:
    /// what a job run elsewhere (cron, systemd) must be given to find the same files.
    pub home: Option<PathBuf>,
    /// What named `config_file` when someone did (`--config`, `KEYGATE_CONFIG`): such a
    /// file must exist. `None` for the default location, where no file means the defaults.
    pub config_named_by: Option<&'static str>,
}

impl Locations {
    /// Derives the locations from the process environment.
    pub fn from_env() -> Result<Locations, ConfigError> {
        let home = std::env::var_os(crate::ENV_HOME)
            .filter(|h| !h.is_empty())
            .map(PathBuf::from);
        if let Some(home) = home.as_ref().filter(|h| !h.is_absolute()) {
            // Ignoring it would put keys in the user's real directories instead.
            return Err(ConfigError::RelativeHome(home.clone()));
        }
        let mut locations = match home {
            Some(root) => Locations::under(&root),
            None => {
                // The XDG layout on every Unix, macOS included: people look for dotfiles there.
                let xdg = etcetera::base_strategy::Xdg::new().map_err(|_| ConfigError::NoHome)?;
                let state = xdg
                    .state_dir()
                    .unwrap_or_else(|| xdg.home_dir().join(".local/state"));
                Locations {
                    config_file: xdg.config_dir().join("keygate/config.toml"),
                    state_dir: state.join("keygate"),
                    private_dir: xdg.data_dir().join("keygate"),
                    home: None,
                    config_named_by: None,
                }
            }
        };
        if let Some(file) = std::env::var_os(crate::ENV_CONFIG).filter(|f| !f.is_empty()) {
            locations.config_file = PathBuf::from(file);
            locations.config_named_by = Some(crate::ENV_CONFIG);
        }
        Ok(locations)
    }

    /// Everything under one root directory.
    pub fn under(root: &Path) -> Locations {
        Locations {
            config_file: root.join("config.toml"),
            state_dir: root.join("state"),
            private_dir: root.join("private"),
            home: Some(root.to_owned()),
            config_named_by: None,
        }
    }

    /// The generations of certificate `id`.
    pub fn cert_dir(&self, id: &str) -> PathBuf {
        self.private_dir.join("certs").join(id)
    }

    /// keygate's own local CA.
    pub fn ca_dir(&self) -> PathBuf {
        self.private_dir.join("ca")
    }

    /// A lock file; locks live in the state directory and are never renamed.
    pub fn lock_file(&self, name: &str) -> PathBuf {
        self.state_dir.join(format!("{name}.lock"))
    }
}
