//! The few HTTP requests an OAuth client makes (discovery, the token endpoint), over
//! hyper's HTTP/1 client and rustls, one connection each: a CLI makes one or two requests
//! per run, so there is nothing to pool.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::{Request, Uri, header};
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};

use crate::Error;

/// How long one request may take, connection included.
const TIMEOUT: Duration = Duration::from_secs(15);
/// The largest answer read: a discovery document or a token response is a few KiB.
const MAX_BODY: usize = 1 << 20;

/// An answer (no `Debug`: its body may be a token response).
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: Bytes,
}

/// The client: the system's trust store, plus the profile's CA when it names one.
pub(crate) struct Http {
    tls: Arc<rustls::ClientConfig>,
}

impl Http {
    pub(crate) fn new(ca_file: Option<&Path>) -> Result<Http, Error> {
        let mut roots = rustls::RootCertStore::empty();
        // Unreadable entries of the system store are skipped, as every TLS client does; a
        // profile's own CA must load.
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
        if let Some(path) = ca_file {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect())
                .map_err(|e| Error::CaFile {
                    path: path.to_owned(),
                    why: e.to_string(),
                })?;
            if certs.is_empty() {
                return Err(Error::CaFile {
                    path: path.to_owned(),
                    why: "it holds no PEM certificate".into(),
                });
            }
            for c in certs {
                roots.add(c).map_err(|e| Error::CaFile {
                    path: path.to_owned(),
                    why: e.to_string(),
                })?;
            }
        }
        let tls = kg_tls::client::verifying(roots).map_err(|e| Error::Tls(e.to_string()))?;
        Ok(Http { tls: Arc::new(tls) })
    }

    pub(crate) fn get(&self, url: &str) -> Result<Reply, Error> {
        self.send(url, None, None)
    }

    /// POSTs `form`, with HTTP Basic credentials when given (RFC 6749 §2.3.1: each part
    /// form-urlencoded before base64).
    pub(crate) fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> Result<Reply, Error> {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let auth = basic.map(|(id, secret)| {
            use base64::Engine as _;
            let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let pair = format!("{}:{}", enc(id), enc(secret));
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )
        });
        self.send(url, Some(body), auth)
    }

    fn send(&self, url: &str, form: Option<String>, auth: Option<String>) -> Result<Reply, Error> {
        let target = Target::parse(url)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Http {
                url: url.to_owned(),
                why: e.to_string(),
            })?;
        let fail = |why: String| Error::Http {
            url: url.to_owned(),
            why,
        };
        rt.block_on(async {
            tokio::time::timeout(TIMEOUT, self.exchange(&target, form, auth))
                .await
                .map_err(|_| fail(format!("no answer within {} s", TIMEOUT.as_secs())))?
                .map_err(fail)
        })
    }

    async fn exchange(
        &self,
        t: &Target,
        form: Option<String>,
        auth: Option<String>,
    ) -> Result<Reply, String> {
        let tcp = tokio::net::TcpStream::connect((t.host.as_str(), t.port))
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        let method = if form.is_some() { "POST" } else { "GET" };
        let mut req = Request::builder()
            .method(method)
            .uri(&t.path)
            .header(header::HOST, &t.authority)
            .header(header::ACCEPT, "application/json")
            .header(
                header::USER_AGENT,
                concat!("keygate/", env!("CARGO_PKG_VERSION")),
            );
        if form.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        if let Some(a) = &auth {
            req = req.header(header::AUTHORIZATION, a);
        }
        let req = req
            .body(Full::new(Bytes::from(form.unwrap_or_default())))
            .map_err(|e| e.to_string())?;
        let resp = if t.tls {
            let name = ServerName::try_from(t.host.clone()).map_err(|e| e.to_string())?;
            let stream = tokio_rustls::TlsConnector::from(Arc::clone(&self.tls))
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS: {e}"))?;
            send_on(TokioIo::new(stream), req).await?
        } else {
            send_on(TokioIo::new(tcp), req).await?
        };
        let status = resp.status().as_u16();
        let body = Limited::new(resp.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| format!("reading the answer: {e}"))?
            .to_bytes();
        Ok(Reply { status, body })
    }
}

async fn send_on<IO>(
    io: TokioIo<IO>,
    req: Request<Full<Bytes>>,
) -> Result<hyper::Response<hyper::body::Incoming>, String>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    sender.send_request(req).await.map_err(|e| e.to_string())
}

/// Where a URL leads.
struct Target {
    tls: bool,
    host: String,
    port: u16,
    authority: String,
    path: String,
}

impl Target {
    /// `https://...`, or `http://` to a loopback address only (a local test issuer):
    /// tokens never cross a network in the clear.
    fn parse(url: &str) -> Result<Target, Error> {
        let bad = |why: &str| Error::Url {
            url: shown_url(url),
            why: why.to_owned(),
        };
        let uri: Uri = url.parse().map_err(|_| bad("not a URL"))?;
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(bad("expected https://")),
        };
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        if authority.as_str().contains('@') {
            return Err(bad("credentials in a URL are refused"));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        if !tls && !is_loopback(host) {
            return Err(bad("http:// is for a loopback issuer only; use https://"));
        }
        Ok(Target {
            tls,
            host: host.to_owned(),
            port: authority.port_u16().unwrap_or(if tls { 443 } else { 80 }),
            authority: authority.as_str().to_owned(),
            path: uri
                .path_and_query()
                .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
        })
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `url` with any userinfo (`user:password@`) cut out, for messages.
pub(crate) fn shown_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            match rest[..end].rfind('@') {
                Some(at) => format!("{scheme}://(credentials removed)@{}", &rest[at + 1..]),
                None => url.to_owned(),
            }
        }
        None => url.to_owned(),
    }
}

/// Whether `url` is one this client will talk to (https, or http on loopback).
pub(crate) fn check_url(url: &str) -> Result<(), Error> {
    Target::parse(url).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_http() {
        assert!(check_url("https://id.example.com/oauth").is_ok());
        assert!(check_url("http://127.0.0.1:8080").is_ok());
        assert!(check_url("http://[::1]:8080/x").is_ok());
        assert!(check_url("http://localhost:9000").is_ok());
        for bad in [
            "http://id.example.com",
            "http://127.0.0.1.example.com",
            "ftp://127.0.0.1",
            "https://user:pw@id.example.com",
            "id.example.com",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
        let e = check_url("https://ci:hunter2@id.example.com/x")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2"), "{e}");
    }
}
