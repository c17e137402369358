//! The route table: the upstream services behind the gateway, and which one a request goes
//! to. Configuration gives one today (`server.upstream`, for every host); each entry holds
//! its own upstream and connection pools, so that more (one per `Host`) need no other change
//! to the gateway.

use std::time::Duration;

use http_body_util::Limited;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::connect::Connector;
use crate::upstream::Upstream;
use kg_http::net::host_name;

/// One upstream service and its clients.
pub(crate) struct Service {
    /// Its name (`[service.NAME]`); `None` for `server.upstream`.
    pub name: Option<String>,
    /// Whose sessions it admits (anyone's when empty).
    pub groups: Vec<String>,
    /// What a token needs there, when it says.
    pub scopes: Option<kg_verifier::Requirement>,
    /// Where it is.
    pub upstream: Upstream,
    /// For safe methods: a request that failed on a reused connection before a byte was
    /// written is sent again on another.
    pub safe: Client<Connector, Limited<Incoming>>,
    /// For everything else: never sent twice.
    pub once: Client<Connector, Limited<Incoming>>,
}

impl Service {
    pub(crate) fn new(upstream: Upstream) -> Service {
        let connector = Connector::new(upstream.target.clone());
        let client = |retry: bool| {
            Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .pool_max_idle_per_host(64)
                .retry_canceled_requests(retry)
                .set_host(false)
                .build(connector.clone())
        };
        Service {
            name: None,
            groups: Vec::new(),
            scopes: None,
            safe: client(true),
            once: client(false),
            upstream,
        }
    }
}

/// The services, by the `Host` they answer for; `None` answers for any other host.
pub(crate) struct Routes {
    services: Vec<(Option<String>, Service)>,
}

impl Routes {
    /// One service, for every host.
    #[cfg(test)]
    pub(crate) fn one(upstream: Upstream) -> Routes {
        Routes {
            services: vec![(None, Service::new(upstream))],
        }
    }

    /// The named services, each for its host, and `default` for every other host.
    pub(crate) fn new(default: Option<Upstream>, named: &[crate::ServiceRoute]) -> Routes {
        let mut services: Vec<(Option<String>, Service)> = named
            .iter()
            .map(|r| {
                let mut s = Service::new(r.upstream.clone());
                s.name = Some(r.name.clone());
                s.groups = r.groups.clone();
                s.scopes = r.scopes.clone();
                (Some(r.host.clone()), s)
            })
            .collect();
        if let Some(up) = default {
            services.push((None, Service::new(up)));
        }
        Routes { services }
    }

    /// The service for a request to `host` (the `Host` header or the target's authority,
    /// with or without a port): the one named for it, else the one for any host.
    pub(crate) fn route(&self, host: Option<&str>) -> Option<&Service> {
        let name = host.map(|h| host_name(h).to_ascii_lowercase());
        let named = self.services.iter().find(|(h, _)| {
            h.as_deref()
                .is_some_and(|h| name.as_deref().is_some_and(|n| h.eq_ignore_ascii_case(n)))
        });
        named
            .or_else(|| self.services.iter().find(|(h, _)| h.is_none()))
            .map(|(_, s)| s)
    }

    /// Every service, for start-up messages.
    pub(crate) fn services(&self) -> impl Iterator<Item = &Service> {
        self.services.iter().map(|(_, s)| s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(text: &str) -> Upstream {
        Upstream::parse(text).unwrap()
    }

    #[tokio::test]
    async fn each_host_goes_to_its_service_and_the_rest_to_the_default() {
        let mut routes = Routes::one(up("http://127.0.0.1:3000"));
        routes.services.push((
            Some("grafana.internal".to_owned()),
            Service::new(up("http://127.0.0.1:3001")),
        ));
        let port = |host| routes.route(host).map(|s| s.upstream.authority.clone());
        let to = |p: &str| Some(format!("127.0.0.1:{p}"));
        assert_eq!(port(Some("grafana.internal")), to("3001"));
        assert_eq!(port(Some("Grafana.Internal:8443")), to("3001"));
        assert_eq!(port(Some("grafana.internal.")), to("3001"));
        assert_eq!(port(Some("grafana.internal.evil")), to("3000"));
        assert_eq!(port(Some("[::1]:8443")), to("3000"));
        assert_eq!(port(None), to("3000"));
        // Without a default, a host nobody serves goes nowhere.
        let only = Routes {
            services: vec![(
                Some("a.internal".to_owned()),
                Service::new(up("http://127.0.0.1:1")),
            )],
        };
        assert!(only.route(Some("b.internal")).is_none());
        assert!(only.route(Some("a.internal")).is_some());
    }
}
