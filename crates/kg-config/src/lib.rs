//! Where keygate keeps things, and what its settings are.
//!
//! Every setting is declared once in [`SETTINGS`]; parsing the file, reading the environment,
//! applying flags, validation, "did you mean" and `config explain` are all driven by that
//! table, so a setting cannot be readable from one source and forgotten by another.
//!
//! Resolution per key: command-line flag > environment > config file > built-in default.
//! Only the environment variables named in the table are read: Kubernetes injects
//! `<SERVICE>_PORT=tcp://...` variables, so rejecting unknown `KEYGATE_*` names would make
//! keygate fail to start in a pod whose service happens to be called "keygate".
#![forbid(unsafe_code)]

mod error;
mod locations;
mod schema;
mod value;

pub use error::ConfigError;
pub use locations::Locations;
pub use schema::{Kind, SETTINGS, Setting, setting};
pub use value::{
    Config, ExplainRow, Profile, Service, Source, Value, format_duration, parse_duration,
};

/// The environment variables keygate reads, besides those in [`SETTINGS`].
pub const ENV_HOME: &str = "KEYGATE_HOME";
/// Path of the config file, overriding the location-derived one.
pub const ENV_CONFIG: &str = "KEYGATE_CONFIG";
