//! The router: the one place that knows every path, and the hyper services of connections.
//!
//! - Verifying mode (no `server.upstream`): `/auth`, `/auth/...`, `/health` and `/metrics`
//!   go to the verifier; HTTP/1 connections start in its fast lane; anything else is 404.
//! - Proxy mode: the verifier's endpoints move under [`kg_login::PREFIX`] (`/.keygate/`),
//!   beside sign-in's pages; everything else goes to the gateway.
//!
//! Every request is held to the head limits first.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::pin::Pin;
use std::sync::Arc;

use http_body_util::Either;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use kg_gateway::{Gateway, GatewayBody};
use kg_http::metrics::Metrics;
use kg_http::response::empty;
use kg_http::serve::{Conn, NoLane, Site};
use kg_login::SignIn;
use kg_oauth::Provider;
use kg_oauth::provider::AS_METADATA;
use kg_verifier::Verifier;

/// Verifying mode.
#[derive(Debug)]
pub(crate) struct Verifying {
    pub verifier: Arc<Verifier>,
    pub oauth: Option<Arc<Provider>>,
    /// Sign-in for the authorization server's people, under [`kg_login::PREFIX`].
    pub sign_in: Option<Arc<SignIn>>,
}

/// The service of one connection in verifying mode: synchronous, no task, no box, except
/// for the authorization server's endpoints, which read a body.
#[derive(Debug)]
pub(crate) struct VerifyingService {
    verifier: Arc<Verifier>,
    oauth: Option<Arc<Provider>>,
    sign_in: Option<Arc<SignIn>>,
    conn: Arc<Conn>,
}

/// A verifying-mode answer: ready at once (`/auth` and the rest), or the authorization
/// server's, which awaits its form.
pub(crate) enum VerifyingFuture {
    Ready(Ready<Result<Response<kg_http::Body>, Infallible>>),
    OAuth(Pin<Box<dyn Future<Output = Result<Response<kg_http::Body>, Infallible>> + Send>>),
}

impl Future for VerifyingFuture {
    type Output = Result<Response<kg_http::Body>, Infallible>;

    fn poll(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        match self.get_mut() {
            VerifyingFuture::Ready(r) => Pin::new(r).poll(cx),
            VerifyingFuture::OAuth(f) => f.as_mut().poll(cx),
        }
    }
}

/// The path a request for the authorization server has relative to the issuer's path
/// (`prefix`), if it is one: `{prefix}/oauth/token` and the like, and RFC 8414's
/// path-inserted `/.well-known/oauth-authorization-server{prefix}`.
fn oauth_path<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    if !prefix.is_empty()
        && let Some(rest) = path.strip_prefix(AS_METADATA)
        && rest == prefix
    {
        return Some(AS_METADATA);
    }
    path.strip_prefix(prefix).filter(|p| Provider::serves(p))
}

impl Site for Verifying {
    type Body = kg_http::Body;
    type Service = VerifyingService;
    type Lane = Verifier;

    fn service(self: &Arc<Self>, conn: Arc<Conn>) -> VerifyingService {
        VerifyingService {
            verifier: Arc::clone(&self.verifier),
            oauth: self.oauth.clone(),
            sign_in: self.sign_in.clone(),
            conn,
        }
    }

    fn lane(&self) -> Option<&Verifier> {
        Some(&self.verifier)
    }

    fn metrics(&self) -> &Metrics {
        self.verifier.metrics()
    }
}

impl hyper::service::Service<Request<Incoming>> for VerifyingService {
    type Response = Response<kg_http::Body>;
    type Error = Infallible;
    type Future = VerifyingFuture;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        if let Some(resp) = kg_http::too_large(&req) {
            return VerifyingFuture::Ready(ready(Ok(resp)));
        }
        if let Some(oauth) = &self.oauth
            && let Some(own) = oauth_path(req.uri().path(), oauth.path())
        {
            let own = own.to_owned();
            let oauth = Arc::clone(oauth);
            let peer = self.conn.peer.ip();
            return VerifyingFuture::OAuth(Box::pin(async move {
                Ok(oauth.handle(req, &own, peer).await)
            }));
        }
        let path = req.uri().path();
        if let Some(sign_in) = &self.sign_in
            && (path == kg_login::SIGN_IN || path == kg_login::SIGN_OUT)
        {
            let sign_in = Arc::clone(sign_in);
            let peer = self.conn.peer.ip();
            return VerifyingFuture::OAuth(Box::pin(
                async move { Ok(sign_in.handle(req, peer).await) },
            ));
        }
        let resp = self.verifier.handle(&req, self.conn.peer, req.uri().path());
        VerifyingFuture::Ready(ready(Ok(resp)))
    }
}

/// Proxy mode.
#[derive(Debug)]
pub(crate) struct Proxying {
    pub verifier: Arc<Verifier>,
    pub sign_in: Arc<SignIn>,
    pub gateway: Arc<Gateway>,
    pub oauth: Option<Arc<Provider>>,
}

/// The service of one connection in proxy mode.
#[derive(Debug)]
pub(crate) struct ProxyingService {
    site: Arc<Proxying>,
    conn: Arc<Conn>,
}

impl Site for Proxying {
    type Body = GatewayBody;
    type Service = ProxyingService;
    type Lane = NoLane;

    fn service(self: &Arc<Self>, conn: Arc<Conn>) -> ProxyingService {
        ProxyingService {
            site: Arc::clone(self),
            conn,
        }
    }

    fn lane(&self) -> Option<&NoLane> {
        None
    }

    /// The localhost bypass asks the kernel who each loopback connection belongs to.
    fn wants_peer_owner(&self) -> bool {
        self.gateway.local_bypass()
    }

    fn metrics(&self) -> &Metrics {
        self.verifier.metrics()
    }
}

impl hyper::service::Service<Request<Incoming>> for ProxyingService {
    type Response = Response<GatewayBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<GatewayBody>, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let site = Arc::clone(&self.site);
        let conn = Arc::clone(&self.conn);
        Box::pin(async move { Ok(site.route(req, &conn).await) })
    }
}

impl Proxying {
    async fn route(&self, req: Request<Incoming>, conn: &Arc<Conn>) -> Response<GatewayBody> {
        if let Some(resp) = kg_http::too_large(&req) {
            return resp.map(Either::Left);
        }
        let path = req.uri().path();
        if let Some(oauth) = &self.oauth
            && let Some(own) = oauth_path(path, oauth.path())
        {
            let own = own.to_owned();
            return oauth
                .handle(req, &own, conn.peer.ip())
                .await
                .map(Either::Left);
        }
        if let Some(own) = path.strip_prefix(OWN) {
            if [
                kg_login::SIGN_IN,
                kg_login::SIGN_OUT,
                kg_login::PORTAL,
                kg_login::ENTER,
                kg_login::RESET,
                kg_login::SESSIONS,
            ]
            .contains(&path)
            {
                return self
                    .sign_in
                    .handle(req, conn.peer.ip())
                    .await
                    .map(Either::Left);
            }
            if matches!(own, "/health" | "/metrics") || own == "/auth" || own.starts_with("/auth/")
            {
                let own = own.to_owned();
                return self
                    .verifier
                    .handle(&req, conn.peer, &own)
                    .map(Either::Left);
            }
            return empty(StatusCode::NOT_FOUND).map(Either::Left);
        }
        Arc::clone(&self.gateway).serve(req, Arc::clone(conn)).await
    }
}

/// Where keygate's own paths live in proxy mode: `/.keygate`, sign-in's prefix without its
/// slash, so `/.keygate` itself is ours too.
pub(crate) const OWN: &str = kg_login::PREFIX.split_at(kg_login::PREFIX.len() - 1).0;
