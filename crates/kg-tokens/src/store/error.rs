//! Why a store could not be read or an operation was refused.

use super::*;

/// Why a store could not be read or an operation was refused.
///
/// Messages name the entry or name concerned and never contain a token; [`StoreError::hint`]
/// says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The text is not JSON, or not shaped like a store (serde_json's message includes the
    /// line and column).
    #[error("the token store is not valid: {source}")]
    Json {
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem.
        column: usize,
        /// The parser's error.
        source: serde_json::Error,
    },
    /// The store was written by a newer (or unknown) format version.
    #[error(
        "the token store has format version {found}, this keygate reads version {STORE_VERSION}"
    )]
    UnsupportedVersion {
        /// The version found in the file.
        found: u32,
    },
    /// The store's prefix is not a valid prefix.
    #[error("the token store's prefix is invalid: {0}")]
    BadPrefix(#[source] PrefixError),
    /// An entry in the store breaks a rule (duplicate id, bad digest, bad name...).
    #[error("entry #{number}{} in the token store is invalid: {problem}", id.as_ref().map(|id| format!(" (id {id})")).unwrap_or_default())]
    InvalidEntry {
        /// 1-based position of the entry in the file.
        number: usize,
        /// The entry's id, when it is a well-formed id.
        id: Option<String>,
        /// What is wrong with it.
        problem: String,
    },
    /// A token name that breaks the naming rule (the name is not repeated: it may be anything).
    #[error("invalid token name: a name {NAME_RULE}")]
    InvalidName,
    /// A name that looks like one of this store's tokens: a token pasted in the wrong place.
    #[error("refusing a token name that looks like a token")]
    NameLooksLikeToken,
    /// A scope that looks like one of this store's tokens.
    #[error("refusing scope #{number}: it looks like a token")]
    ScopeLooksLikeToken {
        /// 1-based position among the scopes given.
        number: usize,
    },
    /// A scope that breaks the scope rule.
    #[error("invalid scope #{number}: a scope {SCOPE_RULE}")]
    InvalidScope {
        /// 1-based position among the scopes given.
        number: usize,
    },
    /// [`Store::create`] for a name that already has an active token.
    #[error("token name '{name}' already has an active token")]
    DuplicateName {
        /// The name.
        name: String,
    },
    /// [`Store::rotate`] for a name with no active token.
    #[error("token name '{name}' has no active token to rotate")]
    NoActiveToken {
        /// The name.
        name: String,
    },
    /// [`Store::rotate`] for a name with several active tokens.
    #[error("token name '{name}' has {count} active tokens; rotate would not know which")]
    AmbiguousName {
        /// The name.
        name: String,
        /// How many active entries it has.
        count: usize,
    },
    /// Something that should be a token id is not 12 base62 characters (not repeated: it may
    /// be a whole token).
    #[error("that is not a token id: an id is 12 letters and digits")]
    InvalidId,
    /// No entry has this id.
    #[error("no token has id {id}")]
    UnknownId {
        /// The id.
        id: String,
    },
    /// No entry has this name.
    #[error("no token is named '{name}'")]
    UnknownName {
        /// The name.
        name: String,
    },
    /// An expiry at or before the time of creation.
    #[error("the expiry {expires} is not after the current time {now}")]
    ExpiryNotInFuture {
        /// The requested expiry (UTC).
        expires: OffsetDateTime,
        /// The current time (UTC).
        now: OffsetDateTime,
    },
    /// A negative grace period for [`Store::rotate`].
    #[error("the grace period must not be negative")]
    NegativeGrace,
    /// A time outside the years 0000-9999 that RFC 3339 can write.
    #[error("time is out of range: the store can only hold years 0000 to 9999")]
    TimeOutOfRange,
}

impl StoreError {
    /// A one-line recommendation for the user, when there is one.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            StoreError::Json { line, .. } => format!(
                "fix the file by hand near line {line}, or restore it from a backup; \
                 it holds no secrets, only digests"
            ),
            StoreError::UnsupportedVersion { .. } => {
                "use the keygate release that wrote this store, or a newer one".to_owned()
            }
            StoreError::BadPrefix(_) => {
                "set \"prefix\" in the store file to 2-10 lowercase letters or digits".to_owned()
            }
            StoreError::InvalidEntry { number, .. } => format!(
                "fix or remove entry #{number} by hand; removing it makes its token unknown"
            ),
            StoreError::InvalidName => {
                "choose a name like 'ci-deploy' or 'alice.laptop'".to_owned()
            }
            StoreError::NameLooksLikeToken | StoreError::ScopeLooksLikeToken { .. } => {
                "if that was a real token, revoke it: it may have been logged or saved".to_owned()
            }
            StoreError::InvalidScope { .. } => "scopes look like 'read' or 'logs:write'".to_owned(),
            StoreError::DuplicateName { name } => {
                format!("rotate it with `tokenctl rotate --name {name}`, or revoke it first")
            }
            StoreError::NoActiveToken { name } => {
                format!("create one with `tokenctl create --name {name}`")
            }
            StoreError::AmbiguousName { .. } => {
                "revoke the ones you no longer need by id (see `tokenctl list`)".to_owned()
            }
            StoreError::InvalidId => "ids are listed by `tokenctl list`; if you pasted a whole \
                                      token, treat it as exposed and revoke it"
                .to_owned(),
            StoreError::UnknownId { .. } | StoreError::UnknownName { .. } => {
                "see `tokenctl list` for the tokens in this store".to_owned()
            }
            StoreError::ExpiryNotInFuture { .. } => {
                "give an expiry in the future, or none".to_owned()
            }
            StoreError::NegativeGrace => "use a grace period of 0 to revoke at once".to_owned(),
            StoreError::TimeOutOfRange => "check the system clock and the expiry".to_owned(),
        })
    }

    pub(crate) fn from_json_error(source: serde_json::Error) -> StoreError {
        StoreError::json(source)
    }

    pub(super) fn json(source: serde_json::Error) -> StoreError {
        StoreError::Json {
            line: source.line(),
            column: source.column(),
            source,
        }
    }
}
