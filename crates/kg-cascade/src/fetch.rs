//! `certctl inspect HOST:PORT`: the chain a server actually presents.
//!
//! Inspection must show a broken or untrusted chain rather than refuse to connect, so the
//! certificate is *not* verified here (that is the point of the command); the handshake
//! signatures still are, so what we print is what a server holding that key presented.
//! The only TLS client in certctl; its configuration (and the crypto provider) comes from
//! kg-tls.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};

use crate::Error;

/// Connects to `host:port`, completes a TLS handshake (sending SNI unless `host` is an IP
/// address, as browsers do) and returns the presented chain as PEM, leaf first.
pub fn presented_chain(target: &str) -> Result<String, Error> {
    let usage = |m: String| Error::Usage(m);
    let (host, port) = target
        .rsplit_once(':')
        .and_then(|(h, p)| {
            Some((
                h.trim_start_matches('[').trim_end_matches(']'),
                p.parse::<u16>().ok()?,
            ))
        })
        .ok_or_else(|| usage(format!("invalid address '{target}': expected HOST:PORT")))?;
    let config = kg_tls::client::danger_inspecting().map_err(|e| failure(target, e.to_string()))?;
    let name = ServerName::try_from(host.to_owned())
        .map_err(|_| usage(format!("invalid host '{host}'")))?;
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name)
        .map_err(|e| failure(target, e.to_string()))?;

    let addr = (host, port)
        .to_socket_addrs()
        .map_err(|e| failure(target, e.to_string()))?
        .next()
        .ok_or_else(|| failure(target, "the name has no address".into()))?;
    let mut sock = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
        .map_err(|e| failure(target, e.to_string()))?;
    // One deadline for the whole handshake: a server that trickles a byte every few seconds
    // must not keep certctl waiting for ever.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while conn.is_handshaking() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(failure(
                target,
                "the TLS handshake did not finish within 15 s".into(),
            ));
        }
        sock.set_read_timeout(Some(left)).ok();
        sock.set_write_timeout(Some(left)).ok();
        conn.complete_io(&mut sock)
            .map_err(|e| failure(target, format!("TLS handshake failed: {e}")))?;
    }
    let certs = conn
        .peer_certificates()
        .ok_or_else(|| failure(target, "the server presented no certificate".into()))?;
    let pem = certs.iter().map(to_pem).collect::<String>();
    conn.send_close_notify();
    let _ = conn.complete_io(&mut sock);
    let _ = sock.flush();
    let _ = sock.read(&mut [0u8; 0]);
    Ok(pem)
}

fn failure(target: &str, message: String) -> Error {
    Error::Tool {
        tool: "connecting",
        message: format!("cannot fetch the certificate of '{target}': {message}"),
        hint: None,
    }
}

fn to_pem(der: &CertificateDer<'_>) -> String {
    pem::encode_config(
        &pem::Pem::new("CERTIFICATE", der.to_vec()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}
