//! A profile's settings, from keygate's configuration: `[profiles.NAME]`, the `client.id`
//! and `client.secret` settings, and what a flagged login left in the cache.

use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};

use crate::{Cached, Error, MAX_CACHE, Settings, http, printable};

/// The environment a machine client may take its id from (a CI secret): the `client.id`
/// setting.
const ENV_CLIENT_ID: &str = "KEYGATE_CLIENT_ID";

/// The settings of profile `name`: the profile's issuer, client id (else the `client.id`
/// setting, `KEYGATE_CLIENT_ID`), secret (its `client_secret_file`, else `client.secret`,
/// `KEYGATE_CLIENT_SECRET`), scopes, resource and CA; the cache and lock in keygate's
/// directories.
pub fn settings_of(
    locations: &kg_config::Locations,
    config: &kg_config::Config,
    name: &str,
) -> Result<Settings, Error> {
    settings_for(locations, config, name, None, None)
}

/// [`settings_of`] with an issuer and a client id given on the command line (`tokenctl
/// login --issuer URL --client-id ID`), which win over the profile's. A profile that names
/// no issuer takes the one its cache was made for: after such a login, `tokenctl token`
/// needs no flags.
pub fn settings_for(
    locations: &kg_config::Locations,
    config: &kg_config::Config,
    name: &str,
    issuer: Option<&str>,
    client_id_flag: Option<&str>,
) -> Result<Settings, Error> {
    let client_id = config.str("client.id").map(str::to_owned);
    let secret = config
        .secret("client.secret")
        .map(|s| SecretString::from(s.expose_secret().to_owned()));
    check_name(name)?;
    let mut p = config.profile(name).cloned().unwrap_or_default();
    let remembered = if p.issuer.is_none() && issuer.is_none() {
        remembered(&cache_file(&locations.private_dir, name))
    } else {
        None
    };
    if let Some(c) = remembered {
        p.issuer = Some(c.issuer);
        p.client_id = p.client_id.or(Some(c.client_id));
        p.scopes = c.scopes;
        p.resource = c.resource;
    }
    if let Some(i) = issuer {
        p.issuer = Some(i.to_owned());
    }
    if let Some(c) = client_id_flag {
        p.client_id = Some(c.to_owned());
    }
    let issuer = p.issuer.clone().ok_or_else(|| {
        if config.profile(name).is_some() {
            Error::Profile(format!("profile '{name}' has no issuer"))
        } else {
            let file = &locations.config_file;
            Error::NoProfile {
                name: name.to_owned(),
                config_file: file.clone(),
                exists: file.exists(),
            }
        }
    })?;
    http::check_url(&issuer)?;
    let client_id = p
        .client_id
        .clone()
        .or(client_id)
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            Error::Profile(format!(
                "profile '{name}' has no client_id, and {ENV_CLIENT_ID} is not set"
            ))
        })?;
    let secret = match &p.client_secret_file {
        Some(f) => Some(read_secret_file(f)?),
        None => secret,
    };
    Ok(Settings {
        profile: name.to_owned(),
        issuer,
        client_id,
        secret,
        scopes: p.scopes.clone(),
        resource: p.resource.clone(),
        ca_file: p.ca_file.clone(),
        cache_file: cache_file(&locations.private_dir, name),
        lock_file: locations.lock_file(&format!("client-{name}")),
        age_identity: p.age_identity.clone(),
    })
}

/// Forgets profile `name`'s cached token, whatever the profile now says (it may be gone,
/// or its secret file); whether there was one.
pub fn forget(locations: &kg_config::Locations, name: &str) -> Result<bool, Error> {
    check_name(name)?;
    let file = cache_file(&locations.private_dir, name);
    match fs_err::remove_file(&file) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(kg_fs::Error::Io(e).into()),
    }
}

/// The cache file at `path` when it is a readable one of this client's (for the issuer and
/// client a flagged login left there).
pub(crate) fn remembered(path: &Path) -> Option<Cached> {
    let s = kg_fs::read_secret(path).ok()?;
    if s.exposed.is_some() || s.bytes.len() as u64 > MAX_CACHE {
        return None;
    }
    serde_json::from_slice::<Cached>(&s.bytes)
        .ok()
        .filter(|c| c.version == 1)
}

/// Where profile `name`'s token is cached.
pub fn cache_file(private_dir: &Path, name: &str) -> PathBuf {
    private_dir
        .join("client-cache")
        .join(format!("{name}.json"))
}

/// A profile name names files: it cannot leave the cache directory.
fn check_name(name: &str) -> Result<(), Error> {
    if valid_profile_name(name) {
        return Ok(());
    }
    Err(Error::Profile(format!(
        "invalid profile name '{}': letters, digits, '.', '_' and '-' only",
        printable(name)
    )))
}

fn valid_profile_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A client secret from its file: the first line, trimmed.
fn read_secret_file(path: &Path) -> Result<SecretString, Error> {
    let s = kg_fs::read_secret(path)?;
    let text = String::from_utf8(s.bytes).map_err(|_| {
        Error::Profile(format!(
            "the client secret file '{}' is not text",
            path.display()
        ))
    })?;
    let line = text.lines().next().unwrap_or("").trim().to_owned();
    if line.is_empty() {
        return Err(Error::Profile(format!(
            "the client secret file '{}' is empty",
            path.display()
        )));
    }
    Ok(SecretString::from(line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_names_cannot_leave_the_cache_directory() {
        for bad in ["", "../x", ".hidden", "a/b", "a b"] {
            assert!(!valid_profile_name(bad), "{bad}");
        }
        assert!(valid_profile_name("ci.prod-1"));
    }
}
