//! Outgoing mail: the password-reset link, over SMTP.
//!
//! lettre's blocking SMTP transport, on rustls with aws-lc-rs and the system's roots:
//! STARTTLS (port 587, the default) or TLS from the first byte (465); plain SMTP only to a
//! loopback relay (a local MTA or a test's server), never across the network, since the
//! message carries a secret. The password for SMTP authentication comes from a file, never
//! the config. Sending blocks for a network round trip or several: callers send from a
//! blocking thread. Errors say which relay failed and never hold the message.
#![forbid(unsafe_code)]

use std::net::IpAddr;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport as _};
use zeroize::Zeroizing;

/// How the connection to the relay is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// `STARTTLS`, required.
    StartTls,
    /// TLS from the first byte (SMTPS).
    Tls,
    /// None: loopback relays only.
    None,
}

/// Where mail goes and as whom.
#[derive(Clone)]
pub struct Settings {
    /// The relay's host name or address.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// How the connection is protected.
    pub security: Security,
    /// The sender, `keygate <keygate@example.com>` or a bare address.
    pub from: String,
    /// SMTP authentication, when the relay wants it: the user and the password.
    pub credentials: Option<(String, Zeroizing<String>)>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("from", &self.from)
            .field("user", &self.credentials.as_ref().map(|c| &c.0))
            .finish_non_exhaustive()
    }
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The settings cannot work.
    #[error("smtp: {0}")]
    Settings(String),
    /// The relay refused or could not be reached.
    #[error("smtp relay {relay}: {detail}")]
    Send {
        /// `host:port`.
        relay: String,
        /// What it said.
        detail: String,
    },
}

/// Sends mail.
#[derive(Debug)]
pub struct Mailer {
    settings: Settings,
    from: Mailbox,
    transport: SmtpTransport,
}

/// How long a conversation with the relay may take.
const TIMEOUT: Duration = Duration::from_secs(20);

impl Mailer {
    /// A mailer for `settings`, checked: a sender that parses, plain SMTP only to loopback.
    pub fn new(settings: Settings) -> Result<Mailer, Error> {
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|e| Error::Settings(format!("smtp.from {:?}: {e}", settings.from)))?;
        let loopback = settings.host == "localhost"
            || settings
                .host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if settings.security == Security::None && !loopback {
            return Err(Error::Settings(format!(
                "smtp.security = \"none\" sends reset links in clear text; it is allowed only to a \
                 loopback relay, not {}",
                settings.host
            )));
        }
        let tls = || {
            TlsParameters::new(settings.host.clone())
                .map_err(|e| Error::Settings(format!("TLS for {}: {e}", settings.host)))
        };
        let mut b = SmtpTransport::builder_dangerous(settings.host.clone())
            .port(settings.port)
            .timeout(Some(TIMEOUT));
        b = match settings.security {
            Security::StartTls => b.tls(Tls::Required(tls()?)),
            Security::Tls => b.tls(Tls::Wrapper(tls()?)),
            Security::None => b.tls(Tls::None),
        };
        if let Some((user, password)) = &settings.credentials {
            b = b.credentials(Credentials::new(user.clone(), password.to_string()));
        }
        Ok(Mailer {
            transport: b.build(),
            from,
            settings,
        })
    }

    /// Sends a plain-text message. Blocking.
    pub fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), Error> {
        let relay = format!("{}:{}", self.settings.host, self.settings.port);
        let to: Mailbox = to.parse().map_err(|e| Error::Send {
            relay: relay.clone(),
            detail: format!("recipient: {e}"),
        })?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_owned())
            .map_err(|e| Error::Send {
                relay: relay.clone(),
                detail: e.to_string(),
            })?;
        self.transport
            .send(&message)
            .map(|_| ())
            .map_err(|e| Error::Send {
                relay,
                detail: e.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(host: &str, security: Security) -> Settings {
        Settings {
            host: host.into(),
            port: 25,
            security,
            from: "keygate <keygate@example.com>".into(),
            credentials: None,
        }
    }

    #[test]
    fn clear_text_only_to_loopback() {
        Mailer::new(settings("127.0.0.1", Security::None)).unwrap();
        Mailer::new(settings("localhost", Security::None)).unwrap();
        let e = Mailer::new(settings("mail.example.com", Security::None)).unwrap_err();
        assert!(e.to_string().contains("clear text"), "{e}");
        Mailer::new(settings("mail.example.com", Security::StartTls)).unwrap();
    }

    #[test]
    fn a_bad_sender_is_named() {
        let mut s = settings("127.0.0.1", Security::None);
        s.from = "not an address".into();
        let e = Mailer::new(s).unwrap_err();
        assert!(e.to_string().contains("smtp.from"), "{e}");
        let s = settings("127.0.0.1", Security::None);
        assert!(
            !format!(
                "{:?}",
                Settings {
                    credentials: Some(("u".into(), Zeroizing::new("hunter2".into()))),
                    ..s
                }
            )
            .contains("hunter2")
        );
    }
}
