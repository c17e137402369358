use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use toml_edit::{Item, TableLike};

use crate::{ConfigError, Kind, Locations, SETTINGS, Setting, schema};

/// A resolved value. Secrets are held in a type that cannot be printed or serialized.
#[derive(Debug, Clone)]
pub enum Value {
    Str(String),
    U32(u32),
    Bool(bool),
    List(Vec<String>),
    Duration(Duration),
    Secret(SecretString),
}

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A command-line flag, e.g. `--days`.
    Flag(String),
    /// An environment variable.
    Env(&'static str),
    /// The config file, with the line of the key.
    File { path: PathBuf, line: usize },
    /// keygate's built-in default.
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag(flag) => write!(f, "flag {flag}"),
            Source::Env(var) => write!(f, "env {var}"),
            Source::File { path, line } => write!(f, "{}:{line}", path.display()),
            Source::Default => f.write_str("default"),
        }
    }
}

/// One row of `config explain`: never holds a secret, only whether it is set.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExplainRow {
    pub key: String,
    pub value: serde_json::Value,
    pub source: String,
}

/// A client profile, `[profiles.NAME]`: an API token's file (`token_file`), or an OAuth
/// client of an issuer (`issuer`, `client_id`, `scopes`, `resource`, `client_secret_file`,
/// `ca_file`), or both. No secret is ever in the config file: a client secret lives in its
/// own file (or `KEYGATE_CLIENT_SECRET`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Profile {
    /// The file holding an API token.
    pub token_file: Option<PathBuf>,
    /// The OAuth issuer URL.
    pub issuer: Option<String>,
    /// The OAuth client id.
    pub client_id: Option<String>,
    /// The scopes to ask for.
    pub scopes: Vec<String>,
    /// The resource (RFC 8707) the tokens are for.
    pub resource: Option<String>,
    /// The file holding the client's secret (a machine client).
    pub client_secret_file: Option<PathBuf>,
    /// A CA certificate (PEM) to trust for the issuer, besides the system's.
    pub ca_file: Option<PathBuf>,
    /// An age identity file to seal the profile's token cache to.
    pub age_identity: Option<PathBuf>,
}

/// The keys a `[profiles.NAME]` table may have.
pub const PROFILE_KEYS: [&str; 8] = [
    "token_file",
    "issuer",
    "client_id",
    "scopes",
    "resource",
    "client_secret_file",
    "ca_file",
    "age_identity",
];

/// A service behind the portal, `[service.NAME]`: requests to its `host` go to its
/// `upstream`, for the people in its `groups` (everyone signed in when empty) and the API
/// tokens with its `scopes`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Service {
    /// The host name it answers for (its own origin).
    pub host: String,
    /// Where its requests go (the rules of `server.upstream`).
    pub upstream: String,
    /// Who may enter: members of any of these groups; everyone signed in when empty.
    pub groups: Vec<String>,
    /// What an API token needs to enter.
    pub scopes: Vec<String>,
    /// What the landing page says it is.
    pub description: Option<String>,
}

/// The keys a `[service.NAME]` table may have.
pub const SERVICE_KEYS: [&str; 5] = ["host", "upstream", "groups", "scopes", "description"];

/// A config file larger than this is refused rather than read (a device named by mistake).
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Config {
    values: BTreeMap<&'static str, (Option<Value>, Source)>,
    profiles: BTreeMap<String, (Profile, Source)>,
    services: BTreeMap<String, (Service, Source)>,
}

impl Config {
    /// Loads the config file named by `locations` (missing is fine at the default location,
    /// an error when the file was named), the allow-listed environment variables, and
    /// `flags` as `(key, flag name, raw value)`.
    pub fn load(
        locations: &Locations,
        flags: &[(&str, &str, String)],
    ) -> Result<Config, ConfigError> {
        // The config can run commands as whoever reads it (`cert.deploy_hook`), so it is
        // used only when nobody but us and root could have changed it or its directories,
        // as sshd's StrictModes (issue 13). The KEYGATE_HOME root holds the keys as well
        // and is checked after the file, so that a refusal names the file when there is one.
        let path = &locations.config_file;
        let text = match kg_fs::trust::read_trusted("config file", path, MAX_CONFIG_BYTES) {
            Ok(bytes) => Some(String::from_utf8(bytes).map_err(|_| ConfigError::Read {
                path: path.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "it is not UTF-8 text",
                ),
            })?),
            Err(kg_fs::Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(by) = locations.config_named_by {
                    return Err(ConfigError::Missing {
                        path: path.clone(),
                        by,
                    });
                }
                None
            }
            // The message names the file and what failed (or who could have changed it).
            Err(e) => return Err(ConfigError::File(e)),
        };
        // Checked even without a config file: one could be planted there.
        if let Some(home) = locations.home.as_deref().filter(|h| h.exists()) {
            kg_fs::trust::check_owned_by_us_or_root("KEYGATE_HOME", home)
                .map_err(ConfigError::File)?;
        }
        let file = text
            .as_deref()
            .map(|t| (locations.config_file.as_path(), t));
        Config::resolve(file, |var| std::env::var(var).ok(), flags)
    }

    /// The pure core of [`Config::load`], for tests: file contents, an environment lookup and
    /// flags in, the effective configuration out.
    pub fn resolve(
        file: Option<(&Path, &str)>,
        env: impl Fn(&str) -> Option<String>,
        flags: &[(&str, &str, String)],
    ) -> Result<Config, ConfigError> {
        let mut values = BTreeMap::new();
        for s in SETTINGS {
            let default = s
                .default
                .map(|d| parse_text(s, d, "the default"))
                .transpose()?;
            values.insert(s.key, (default, Source::Default));
        }
        let mut profiles = BTreeMap::new();
        let mut services = BTreeMap::new();
        if let Some((path, text)) = file {
            read_file(path, text, &mut values, &mut profiles, &mut services)?;
        }
        for s in SETTINGS {
            if let Some(var) = s.env
                && let Some(raw) = env(var).filter(|v| !v.is_empty())
            {
                let v = parse_text(s, &raw, &format!("env {var}"))?;
                values.insert(s.key, (Some(v), Source::Env(var)));
            }
        }
        for (key, flag, raw) in flags {
            let s = crate::setting(key)
                .unwrap_or_else(|| panic!("flag {flag} maps to unknown setting {key}"));
            let v = parse_text(s, raw, &format!("flag {flag}"))?;
            values.insert(s.key, (Some(v), Source::Flag((*flag).to_owned())));
        }
        Ok(Config {
            values,
            profiles,
            services,
        })
    }

    fn value(&self, key: &str) -> Option<&Value> {
        self.values
            .get(key)
            .unwrap_or_else(|| panic!("no setting {key}"))
            .0
            .as_ref()
    }

    /// The config file the value of `key` came from, when it came from one: what to check
    /// again before acting on it (a deploy hook).
    pub fn file_of(&self, key: &str) -> Option<&Path> {
        match self.source(key) {
            Source::File { path, .. } => Some(path),
            _ => None,
        }
    }

    /// Where the value of `key` came from.
    pub fn source(&self, key: &str) -> &Source {
        &self
            .values
            .get(key)
            .unwrap_or_else(|| panic!("no setting {key}"))
            .1
    }

    /// A text or enum setting; `None` when unset and without default.
    pub fn str(&self, key: &str) -> Option<&str> {
        match self.value(key) {
            Some(Value::Str(s)) => Some(s),
            None => None,
            Some(other) => panic!("setting {key} is not text: {other:?}"),
        }
    }

    pub fn u32(&self, key: &str) -> u32 {
        match self.value(key) {
            Some(Value::U32(n)) => *n,
            other => panic!("setting {key} is not a number: {other:?}"),
        }
    }

    pub fn bool(&self, key: &str) -> bool {
        match self.value(key) {
            Some(Value::Bool(b)) => *b,
            None => false,
            other => panic!("setting {key} is not a boolean: {other:?}"),
        }
    }

    pub fn list(&self, key: &str) -> &[String] {
        match self.value(key) {
            Some(Value::List(v)) => v,
            other => panic!("setting {key} is not a list: {other:?}"),
        }
    }

    pub fn duration(&self, key: &str) -> Option<Duration> {
        match self.value(key) {
            Some(Value::Duration(d)) => Some(*d),
            None => None,
            other => panic!("setting {key} is not a duration: {other:?}"),
        }
    }

    pub fn secret(&self, key: &str) -> Option<&SecretString> {
        match self.value(key) {
            Some(Value::Secret(s)) => Some(s),
            None => None,
            other => panic!("setting {key} is not a secret: {other:?}"),
        }
    }

    /// The services, `[service.NAME]`, by name.
    pub fn services(&self) -> impl Iterator<Item = (&str, &Service)> {
        self.services.iter().map(|(n, (s, _))| (n.as_str(), s))
    }

    /// A client profile by name.
    pub fn profile(&self, name: &str) -> Option<&Profile> {
        self.profiles.get(name).map(|(p, _)| p)
    }

    /// Every effective value and where it came from; secrets only as `set`/`unset`.
    pub fn explain(&self) -> Vec<ExplainRow> {
        let mut rows: Vec<ExplainRow> = SETTINGS
            .iter()
            .map(|s| {
                let (value, source) = &self.values[s.key];
                ExplainRow {
                    key: s.key.to_owned(),
                    value: shown(value.as_ref()),
                    source: source.to_string(),
                }
            })
            .collect();
        for (name, (profile, source)) in &self.profiles {
            let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
            let fields = [
                ("token_file", path(&profile.token_file).map(Into::into)),
                ("issuer", profile.issuer.clone().map(Into::into)),
                ("client_id", profile.client_id.clone().map(Into::into)),
                (
                    "scopes",
                    (!profile.scopes.is_empty()).then(|| profile.scopes.clone().into()),
                ),
                ("resource", profile.resource.clone().map(Into::into)),
                (
                    "client_secret_file",
                    path(&profile.client_secret_file).map(Into::into),
                ),
                ("ca_file", path(&profile.ca_file).map(Into::into)),
                ("age_identity", path(&profile.age_identity).map(Into::into)),
            ];
            for (key, value) in fields {
                if let Some(value) = value {
                    rows.push(ExplainRow {
                        key: format!("profiles.{name}.{key}"),
                        value,
                        source: source.to_string(),
                    });
                }
            }
        }
        for (name, (service, source)) in &self.services {
            let fields = [
                ("host", Some(service.host.clone().into())),
                ("upstream", Some(service.upstream.clone().into())),
                ("groups", Some(service.groups.clone().into())),
                ("scopes", Some(service.scopes.clone().into())),
                ("description", service.description.clone().map(Into::into)),
            ];
            for (key, value) in fields {
                if let Some(value) = value {
                    rows.push(ExplainRow {
                        key: format!("service.{name}.{key}"),
                        value,
                        source: source.to_string(),
                    });
                }
            }
        }
        rows
    }
}

fn shown(value: Option<&Value>) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        None => J::Null,
        Some(Value::Secret(_)) => J::String("set".into()),
        Some(Value::Str(s)) => J::String(s.clone()),
        Some(Value::U32(n)) => J::from(*n),
        Some(Value::Bool(b)) => J::Bool(*b),
        Some(Value::List(v)) => J::Array(v.iter().cloned().map(J::String).collect()),
        Some(Value::Duration(d)) => J::String(format_duration(*d)),
    }
}

/// Parses a value given as text (environment, flag, default).
fn parse_text(s: &Setting, raw: &str, source: &str) -> Result<Value, ConfigError> {
    let invalid = |message: String| ConfigError::InvalidValue {
        key: s.key.into(),
        origin: source.into(),
        message,
    };
    Ok(match s.kind {
        Kind::Str => Value::Str(raw.to_owned()),
        Kind::Enum(choices) => {
            if !choices.contains(&raw) {
                return Err(invalid(format!("expected one of {}", choices.join(", "))));
            }
            Value::Str(raw.to_owned())
        }
        Kind::U32 { min, max } => {
            let n: u32 = raw
                .trim()
                .parse()
                .map_err(|_| invalid("expected a whole number".into()))?;
            check_range(n, min, max).map_err(invalid)?
        }
        Kind::Bool => match raw {
            "true" | "1" | "yes" => Value::Bool(true),
            "false" | "0" | "no" => Value::Bool(false),
            _ => return Err(invalid("expected true or false".into())),
        },
        Kind::List => Value::List(
            raw.split(',')
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(String::from)
                .collect(),
        ),
        Kind::Duration => Value::Duration(parse_duration(raw).map_err(invalid)?),
        Kind::Secret => {
            if looks_masked(raw) {
                return Err(invalid(
                    "this looks like a masked placeholder, not a real secret".into(),
                ));
            }
            Value::Secret(SecretString::from(raw.to_owned()))
        }
    })
}

fn check_range(n: u32, min: u32, max: u32) -> Result<Value, String> {
    if n < min || n > max {
        return Err(format!("{n} is out of range {min}..={max}"));
    }
    Ok(Value::U32(n))
}

/// Placeholders that redacting UIs show instead of a secret. Accepting one as input would
/// write the mask over the real secret (the redaction-wipe bug of Grafana and others).
fn looks_masked(raw: &str) -> bool {
    let t = raw.trim();
    t.is_empty()
        || t.chars().all(|c| c == '*' || c == '•')
        || ["set", "unset", "[redacted]", "<redacted>", "redacted"]
            .contains(&t.to_ascii_lowercase().as_str())
}

/// Parses `0`, `90s`, `15m`, `24h`, `30d`, `2w` and sums like `1h30m`.
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let t = raw.trim();
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    let bad = || format!("'{raw}' is not a duration; use e.g. 90s, 15m, 24h, 30d");
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|x| total.checked_add(x))
            .ok_or_else(bad)?;
        digits.clear();
    }
    if !digits.is_empty() || t.is_empty() {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

/// The inverse of [`parse_duration`] for whole units.
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => "0".into(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

fn line_of(text: &str, span: Option<std::ops::Range<usize>>) -> usize {
    span.map_or(1, |r| {
        text[..r.start.min(text.len())].matches('\n').count() + 1
    })
}

type Values = BTreeMap<&'static str, (Option<Value>, Source)>;

fn read_file(
    path: &Path,
    text: &str,
    values: &mut Values,
    profiles: &mut BTreeMap<String, (Profile, Source)>,
    services: &mut BTreeMap<String, (Service, Source)>,
) -> Result<(), ConfigError> {
    let doc = toml_edit::Document::parse(text).map_err(|e| ConfigError::Syntax {
        path: path.to_owned(),
        line: line_of(text, e.span()),
        message: e.message().trim().to_owned(),
    })?;
    let sections = schema::sections();
    let root = doc.as_table();
    for (name, item) in root.iter() {
        let line = line_of(
            text,
            root.key(name)
                .and_then(|k| k.span())
                .or_else(|| item.span()),
        );
        let unknown = |key: String, candidates: &[&str]| ConfigError::UnknownKey {
            path: path.to_owned(),
            line,
            suggestion: closest(key.rsplit('.').next().unwrap_or(&key), candidates, &key),
            key,
        };
        if !sections.contains(&name) {
            return Err(unknown(name.to_owned(), &sections));
        }
        let Some(table) = item.as_table_like() else {
            return Err(ConfigError::InvalidValue {
                key: name.into(),
                origin: format!("{}:{line}", path.display()),
                message: "expected a [section]".into(),
            });
        };
        if name == "profiles" {
            read_profiles(path, text, table, profiles)?;
            continue;
        }
        if name == "service" {
            read_services(path, text, table, services)?;
            continue;
        }
        for (key, item) in table.iter() {
            let line = line_of(
                text,
                table
                    .key(key)
                    .and_then(|k| k.span())
                    .or_else(|| item.span()),
            );
            let full = format!("{name}.{key}");
            let Some(s) = crate::setting(&full) else {
                let in_section: Vec<&str> = SETTINGS
                    .iter()
                    .filter_map(|s| s.key.strip_prefix(name).and_then(|k| k.strip_prefix('.')))
                    .collect();
                return Err(ConfigError::UnknownKey {
                    path: path.to_owned(),
                    line,
                    suggestion: closest(key, &in_section, &full).map(|k| format!("{name}.{k}")),
                    key: full,
                });
            };
            if s.kind == Kind::Secret {
                return Err(ConfigError::SecretInFile {
                    path: path.to_owned(),
                    line,
                    key: full,
                });
            }
            let source = Source::File {
                path: path.to_owned(),
                line,
            };
            let v = parse_item(s, item).map_err(|message| ConfigError::InvalidValue {
                key: full.clone(),
                origin: source.to_string(),
                message,
            })?;
            values.insert(s.key, (Some(v), source));
        }
    }
    Ok(())
}

/// One `[SECTION.NAME]` table of a repeated section (`profiles`, `service`), read with
/// the same rules: known keys only, strings and lists of strings.
struct Named<'a> {
    section: &'static str,
    name: &'a str,
    table: &'a dyn TableLike,
    source: Source,
}

impl<'a> Named<'a> {
    /// Every `[section.NAME]` table of `table`, or the error of the first that is not one.
    fn all(
        section: &'static str,
        path: &'a Path,
        text: &'a str,
        table: &'a dyn TableLike,
        keys: &[&str],
    ) -> Result<Vec<Named<'a>>, ConfigError> {
        let mut out = Vec::new();
        for (name, item) in table.iter() {
            let line = line_of(
                text,
                table
                    .key(name)
                    .and_then(|k| k.span())
                    .or_else(|| item.span()),
            );
            let source = Source::File {
                path: path.to_owned(),
                line,
            };
            let Some(inner) = item.as_table_like() else {
                return Err(ConfigError::InvalidValue {
                    key: format!("{section}.{name}"),
                    origin: source.to_string(),
                    message: format!("expected a [{section}.NAME] table"),
                });
            };
            for (key, _) in inner.iter() {
                if !keys.contains(&key) {
                    let kline = line_of(text, inner.key(key).and_then(|k| k.span()));
                    return Err(ConfigError::UnknownKey {
                        path: path.to_owned(),
                        line: kline,
                        suggestion: closest(key, keys, key)
                            .map(|k| format!("{section}.{name}.{k}")),
                        key: format!("{section}.{name}.{key}"),
                    });
                }
            }
            out.push(Named {
                section,
                name,
                table: inner,
                source,
            });
        }
        Ok(out)
    }

    fn invalid(&self, key: Option<&str>, message: &str) -> ConfigError {
        ConfigError::InvalidValue {
            key: match key {
                Some(k) => format!("{}.{}.{k}", self.section, self.name),
                None => format!("{}.{}", self.section, self.name),
            },
            origin: self.source.to_string(),
            message: message.into(),
        }
    }

    fn text(&self, key: &str) -> Result<Option<String>, ConfigError> {
        match self.table.get(key) {
            None => Ok(None),
            Some(item) => item
                .as_str()
                .map(|s| Some(s.to_owned()))
                .ok_or_else(|| self.invalid(Some(key), "expected a string")),
        }
    }

    fn list(&self, key: &str, example: &str) -> Result<Vec<String>, ConfigError> {
        match self.table.get(key) {
            None => Ok(Vec::new()),
            Some(item) => item
                .as_array()
                .and_then(|a| a.iter().map(|v| v.as_str().map(str::to_owned)).collect())
                .ok_or_else(|| {
                    self.invalid(
                        Some(key),
                        &format!("expected a list of strings, e.g. {example}"),
                    )
                }),
        }
    }
}

fn read_profiles(
    path: &Path,
    text: &str,
    table: &dyn TableLike,
    profiles: &mut BTreeMap<String, (Profile, Source)>,
) -> Result<(), ConfigError> {
    for t in Named::all("profiles", path, text, table, &PROFILE_KEYS)? {
        let p = Profile {
            token_file: t.text("token_file")?.map(PathBuf::from),
            issuer: t.text("issuer")?,
            client_id: t.text("client_id")?,
            scopes: t.list("scopes", "[\"read\", \"deploy\"]")?,
            resource: t.text("resource")?,
            client_secret_file: t.text("client_secret_file")?.map(PathBuf::from),
            ca_file: t.text("ca_file")?.map(PathBuf::from),
            age_identity: t.text("age_identity")?.map(PathBuf::from),
        };
        if p.token_file.is_none() && p.issuer.is_none() {
            return Err(t.invalid(
                None,
                "expected token_file = \"PATH\" (an API token) or issuer = \"URL\" (an OAuth client)",
            ));
        }
        profiles.insert(t.name.to_owned(), (p, t.source.clone()));
    }
    Ok(())
}

fn read_services(
    path: &Path,
    text: &str,
    table: &dyn TableLike,
    services: &mut BTreeMap<String, (Service, Source)>,
) -> Result<(), ConfigError> {
    for t in Named::all("service", path, text, table, &SERVICE_KEYS)? {
        let name_ok = !t.name.is_empty()
            && t.name.len() <= 64
            && t.name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !name_ok {
            return Err(t.invalid(
                None,
                "a service name is 1 to 64 lowercase letters, digits, - and _",
            ));
        }
        let host = t
            .text("host")?
            .map(|h| h.trim_end_matches('.').to_ascii_lowercase());
        let Some(host) = host.filter(|h| !h.is_empty()) else {
            return Err(t.invalid(
                Some("host"),
                "expected host = \"NAME\", the host name it answers for",
            ));
        };
        let Some(upstream) = t.text("upstream")? else {
            return Err(t.invalid(Some("upstream"), "expected upstream = \"http://HOST:PORT\""));
        };
        let s = Service {
            host,
            upstream,
            groups: t.list("groups", "[\"ops\"]")?,
            scopes: t.list("scopes", "[\"read\"]")?,
            description: t.text("description")?,
        };
        services.insert(t.name.to_owned(), (s, t.source.clone()));
    }
    Ok(())
}

fn parse_item(s: &Setting, item: &Item) -> Result<Value, String> {
    let v = item.as_value().ok_or("expected a value, not a table")?;
    match s.kind {
        Kind::Str | Kind::Enum(_) => {
            // A word set with `true` and `false` (`auto`, `true`, `false`) takes a TOML
            // boolean as its word: `enabled = false` means what it says.
            let word = match (s.kind, v.as_bool()) {
                (Kind::Enum(choices), Some(b)) if choices.contains(&"true") => {
                    Some(if b { "true" } else { "false" })
                }
                _ => None,
            };
            let text = word.or_else(|| v.as_str()).ok_or("expected a string")?;
            if let Kind::Enum(choices) = s.kind
                && !choices.contains(&text)
            {
                return Err(format!("expected one of {}", choices.join(", ")));
            }
            Ok(Value::Str(text.to_owned()))
        }
        Kind::U32 { min, max } => {
            let n = v.as_integer().ok_or("expected a whole number")?;
            check_range(
                u32::try_from(n).map_err(|_| format!("{n} is out of range {min}..={max}"))?,
                min,
                max,
            )
        }
        Kind::Bool => v
            .as_bool()
            .map(Value::Bool)
            .ok_or_else(|| "expected true or false".into()),
        Kind::List => {
            let items = v
                .as_array()
                .ok_or("expected a list of strings, e.g. [\"a\", \"b\"]")?;
            items
                .iter()
                .map(|x| {
                    x.as_str()
                        .map(String::from)
                        .ok_or_else(|| "expected a list of strings".to_owned())
                })
                .collect::<Result<_, _>>()
                .map(Value::List)
        }
        Kind::Duration => parse_duration(
            v.as_str()
                .ok_or("expected a duration string like \"24h\"")?,
        )
        .map(Value::Duration),
        Kind::Secret => unreachable!("secrets are refused before parsing"),
    }
}

/// The candidate closest to `word`, if it is close enough to be what the user meant.
fn closest(word: &str, candidates: &[&str], full: &str) -> Option<String> {
    candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3) && *c != full)
        .min()
        .map(|(_, c)| c.to_owned())
}
