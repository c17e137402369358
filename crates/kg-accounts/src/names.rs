//! User and group names: what an operator types and what headers carry upstream, so short,
//! printable and unambiguous.

use crate::Error;

/// Longest name.
pub const MAX_NAME: usize = 64;

/// Checks a user name: 1 to 64 of lowercase ASCII letters, digits and `. _ - @`, starting
/// with a letter or digit. Lowercase only, so `Alice` and `alice` are never two people.
pub fn check_user(name: &str) -> Result<(), Error> {
    check(name, "user", b"._-@")
}

/// Checks a group name: as a user name, without `@`.
pub fn check_group(name: &str) -> Result<(), Error> {
    check(name, "group", b"._-")
}

fn check(name: &str, what: &str, extra: &[u8]) -> Result<(), Error> {
    let ok_first = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let ok_rest = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || extra.contains(&b));
    if name.len() > MAX_NAME || !ok_first || !ok_rest {
        let allowed = String::from_utf8_lossy(extra);
        return Err(Error::BadName(format!(
            "{what} name {name:?} is not usable: use 1 to {MAX_NAME} lowercase letters, digits and \
             '{allowed}', starting with a letter or digit"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in ["alice", "a", "bob.smith", "ci-bot_2", "alice@example.com"] {
            check_user(good).unwrap();
        }
        for bad in [
            "",
            "Alice",
            "-a",
            ".a",
            "a b",
            "a:b",
            "é",
            &"a".repeat(65),
            "a\n",
        ] {
            assert!(check_user(bad).is_err(), "{bad:?}");
        }
        check_group("ops-team").unwrap();
        assert!(check_group("a@b").is_err());
    }
}
