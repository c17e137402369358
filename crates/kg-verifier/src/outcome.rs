//! The decision vocabulary: every outcome a room records.

use kg_tokens::Reason;

/// What was decided and why: the `result` and `reason` labels of
/// `keygate_auth_decisions_total` and the `decision` and `reason` of audit lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A valid token with every required scope.
    Allow,
    /// No bearer credentials.
    Missing,
    /// A bad token, with the store's reason.
    Invalid(Reason),
    /// A valid token without a required scope.
    InsufficientScope,
    /// The client address or token id used up its failed attempts.
    Throttled,
    /// A request `/auth` cannot judge (a body), or a sign-in form that cannot be read.
    BadRequest,
    /// A sign-in or sign-out form without a matching CSRF value, or sent from another site.
    Csrf,
    /// A browser session began (a token was accepted on the sign-in page).
    SignedIn,
    /// A browser session was ended by signing out.
    SignedOut,
    /// Proxy mode: a request from this host, let through by the localhost bypass.
    Local,
    /// Proxy mode: a cookie-authenticated state change or upgrade from another origin.
    CrossSite,
    /// Proxy mode: a session whose token was revoked, expired or retired was ended.
    SessionEnded,
    /// A path whose meaning depends on who parses it (`crate::paths`), refused unjudged.
    AmbiguousPath,
    /// A person's password was right and a second factor (or a new password) comes next.
    FirstFactor,
    /// A sign-in name nobody has.
    UnknownUser,
    /// The wrong password for a person.
    BadPassword,
    /// A disabled person's sign-in, or their session.
    UserDisabled,
    /// A wrong TOTP or recovery code.
    BadSecondFactor,
    /// A TOTP code already used once (RFC 6238 section 5.2).
    TotpReplayed,
    /// The store could not answer: refused, fail closed.
    Unavailable,
    /// A person at a service none of whose groups they are in.
    NotInGroup,
    /// A password-reset link was sent.
    ResetSent,
    /// A person chose a new password through a reset link.
    PasswordReset,
}

impl Outcome {
    /// Every outcome, in the order of the metrics' counters.
    pub const ALL: [Outcome; 27] = [
        Outcome::Allow,
        Outcome::Missing,
        Outcome::Invalid(Reason::Malformed),
        Outcome::Invalid(Reason::BadChecksum),
        Outcome::Invalid(Reason::Unknown),
        Outcome::Invalid(Reason::Expired),
        Outcome::Invalid(Reason::Revoked),
        Outcome::InsufficientScope,
        Outcome::Throttled,
        Outcome::BadRequest,
        Outcome::Csrf,
        Outcome::SignedIn,
        Outcome::SignedOut,
        Outcome::Local,
        Outcome::CrossSite,
        Outcome::SessionEnded,
        Outcome::AmbiguousPath,
        Outcome::FirstFactor,
        Outcome::UnknownUser,
        Outcome::BadPassword,
        Outcome::UserDisabled,
        Outcome::BadSecondFactor,
        Outcome::TotpReplayed,
        Outcome::Unavailable,
        Outcome::NotInGroup,
        Outcome::ResetSent,
        Outcome::PasswordReset,
    ];

    /// The position in [`Outcome::ALL`].
    pub fn index(self) -> usize {
        match self {
            Outcome::Allow => 0,
            Outcome::Missing => 1,
            Outcome::Invalid(Reason::Malformed) => 2,
            Outcome::Invalid(Reason::BadChecksum) => 3,
            Outcome::Invalid(Reason::Unknown) => 4,
            Outcome::Invalid(Reason::Expired) => 5,
            Outcome::Invalid(Reason::Revoked) => 6,
            Outcome::InsufficientScope => 7,
            Outcome::Throttled => 8,
            Outcome::BadRequest => 9,
            Outcome::Csrf => 10,
            Outcome::SignedIn => 11,
            Outcome::SignedOut => 12,
            Outcome::Local => 13,
            Outcome::CrossSite => 14,
            Outcome::SessionEnded => 15,
            Outcome::AmbiguousPath => 16,
            Outcome::FirstFactor => 17,
            Outcome::UnknownUser => 18,
            Outcome::BadPassword => 19,
            Outcome::UserDisabled => 20,
            Outcome::BadSecondFactor => 21,
            Outcome::TotpReplayed => 22,
            Outcome::Unavailable => 23,
            Outcome::NotInGroup => 24,
            Outcome::ResetSent => 25,
            Outcome::PasswordReset => 26,
        }
    }

    /// The label pairs, `(result, reason)`, for [`kg_http::metrics::Metrics::new`].
    pub fn labels() -> Vec<(&'static str, &'static str)> {
        Outcome::ALL
            .iter()
            .map(|o| (o.decision(), o.reason()))
            .collect()
    }

    /// Whether the audit log samples this outcome as `server.audit_allows` says (requests
    /// let through), rather than logging every one.
    pub fn sampled(self) -> bool {
        matches!(self, Outcome::Allow | Outcome::Local)
    }

    /// Whether the people's audit trail in the store keeps it too (`keygate audit`): what
    /// a person's sign-in came to, never a request let through.
    pub fn in_people_trail(self) -> bool {
        matches!(
            self,
            Outcome::SignedIn
                | Outcome::FirstFactor
                | Outcome::UnknownUser
                | Outcome::BadPassword
                | Outcome::UserDisabled
                | Outcome::BadSecondFactor
                | Outcome::TotpReplayed
                | Outcome::NotInGroup
                | Outcome::ResetSent
                | Outcome::PasswordReset
        )
    }

    /// `allow` or `deny`.
    pub fn decision(self) -> &'static str {
        match self {
            Outcome::Allow
            | Outcome::SignedIn
            | Outcome::SignedOut
            | Outcome::Local
            | Outcome::FirstFactor
            | Outcome::ResetSent
            | Outcome::PasswordReset => "allow",
            _ => "deny",
        }
    }

    /// A stable lower-case code for logs and labels.
    pub fn reason(self) -> &'static str {
        match self {
            Outcome::Allow => "ok",
            Outcome::Missing => "missing_credentials",
            Outcome::Invalid(r) => r.as_str(),
            Outcome::InsufficientScope => "insufficient_scope",
            Outcome::Throttled => "throttled",
            Outcome::BadRequest => "bad_request",
            Outcome::Csrf => "csrf",
            Outcome::SignedIn => "signed_in",
            Outcome::SignedOut => "signed_out",
            Outcome::Local => "local",
            Outcome::CrossSite => "cross_site",
            Outcome::SessionEnded => "session_ended",
            Outcome::AmbiguousPath => "ambiguous_path",
            Outcome::FirstFactor => "first_factor",
            Outcome::UnknownUser => "unknown_user",
            Outcome::BadPassword => "bad_password",
            Outcome::UserDisabled => "user_disabled",
            Outcome::BadSecondFactor => "bad_second_factor",
            Outcome::TotpReplayed => "totp_replayed",
            Outcome::Unavailable => "unavailable",
            Outcome::NotInGroup => "not_in_group",
            Outcome::ResetSent => "reset_sent",
            Outcome::PasswordReset => "password_reset",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_has_its_own_counter_in_the_order_of_all() {
        for (i, o) in Outcome::ALL.iter().enumerate() {
            assert_eq!(o.index(), i, "{o:?}");
        }
        let labels = Outcome::labels();
        for (i, a) in labels.iter().enumerate() {
            assert!(!labels[..i].contains(a), "{a:?} twice");
        }
    }
}
