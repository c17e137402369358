/// Why provisioning failed. [`Error::is_usage`] tells bad input (exit 2) from failure (exit 1).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A requested name is not a valid DNS name or IP address.
    #[error(transparent)]
    Name(#[from] kg_pki::NameError),
    /// A requested name is outside the local CA's name constraints.
    #[error(transparent)]
    Constraint(#[from] kg_pki::ConstraintError),
    /// The secure file layer refused or failed (including "locked").
    #[error(transparent)]
    Fs(#[from] kg_fs::Error),
    /// Issuing or parsing failed in the PKI core.
    #[error(transparent)]
    Pki(#[from] kg_pki::PkiError),
    /// The produced certificate did not pass verification; nothing was published.
    #[error("{method} produced a certificate that fails verification: {source}")]
    Verify {
        method: &'static str,
        source: kg_pki::VerifyError,
    },
    /// The requested method cannot be used here.
    #[error("{method} is not available: {reason}")]
    Unavailable {
        method: &'static str,
        reason: String,
        hint: Option<String>,
    },
    /// An external tool ran and failed.
    #[error("{tool} failed: {message}")]
    Tool {
        tool: &'static str,
        message: String,
        hint: Option<String>,
    },
    /// The state file is damaged.
    #[error("state file '{}' is damaged: {message}", path.display())]
    State {
        path: std::path::PathBuf,
        message: String,
    },
    /// Nothing has been published under this id.
    #[error("no certificate with id '{0}' has been published")]
    NoSuchId(String),
    /// A bad argument that is not a name (an id, a key kind for a method).
    #[error("{0}")]
    Usage(String),
}

impl Error {
    /// A one-line recommendation.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Name(e) => Some(e.hint()),
            Error::Constraint(e) => Some(e.hint()),
            Error::Fs(e) => e.hint(),
            Error::Pki(e) => e.hint(),
            Error::Verify { .. } => Some(
                "the previous certificate is still live; run `certctl inspect --id ID` to see it"
                    .into(),
            ),
            Error::Unavailable { hint, .. } | Error::Tool { hint, .. } => hint.clone(),
            Error::State { .. } => {
                Some("run `certctl doctor`, or `certctl issue` to publish afresh".into())
            }
            Error::NoSuchId(_) => Some("run `certctl ensure` first".into()),
            Error::Usage(_) => None,
        }
    }

    /// Bad input rather than a failed operation.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Error::Name(_) | Error::Constraint(_) | Error::Usage(_)
        )
    }
}
