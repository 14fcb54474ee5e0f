//! The registry of external services (Istio's ServiceEntry): which hosts
//! and ports may be reached at all.
//!
//! Lookup costs one hash probe for the exact name plus one per label of the
//! host for wildcards, whatever the number of services.

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

/// One registered service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    /// The service's name, as authorization and DLP policies refer to it.
    pub name: String,
    /// Allowed ports; `None` allows any port.
    pub ports: Option<Vec<u16>>,
}

impl Service {
    fn allows_port(&self, port: u16) -> bool {
        self.ports.as_ref().is_none_or(|ports| ports.contains(&port))
    }
}

/// Index of a service in the registry.
pub type ServiceId = u32;

/// The compiled registry.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Registry {
    services: Vec<Service>,
    /// Exact host → services registering it, in document order.
    exact: FxHashMap<String, Vec<ServiceId>>,
    /// `*.example.com` is stored under `example.com`.
    wildcard: FxHashMap<String, Vec<ServiceId>>,
}

impl Registry {
    pub(crate) fn push(&mut self, service: Service) -> ServiceId {
        let id = self.services.len() as ServiceId;
        self.services.push(service);
        id
    }

    /// Registers `host` (already validated and lowercased) for `id`.
    pub(crate) fn add_host(&mut self, host: &str, id: ServiceId) {
        let (map, key) = match host.strip_prefix("*.") {
            Some(suffix) => (&mut self.wildcard, suffix),
            None => (&mut self.exact, host),
        };
        let ids = map.entry(key.to_owned()).or_default();
        if !ids.contains(&id) {
            ids.push(id);
        }
    }

    /// All services, indexed by [`ServiceId`].
    pub fn services(&self) -> &[Service] {
        &self.services
    }

    /// Every registered host with its service, wildcards as `*.suffix`, in
    /// no particular order.
    pub fn hosts(&self) -> impl Iterator<Item = (String, ServiceId)> + '_ {
        let exact = self.exact.iter().flat_map(|(h, ids)| ids.iter().map(move |&id| (h.clone(), id)));
        let wild = self.wildcard.iter().flat_map(|(h, ids)| ids.iter().map(move |&id| (format!("*.{h}"), id)));
        exact.chain(wild)
    }

    /// The service with this id.
    pub fn service(&self, id: ServiceId) -> Option<&Service> {
        self.services.get(id as usize)
    }

    /// Finds the service for a lowercased host and a port: the exact name
    /// first, then the most specific wildcard.
    pub fn lookup(&self, host: &str, port: u16) -> Option<ServiceId> {
        let pick = |ids: &Vec<ServiceId>| {
            ids.iter().copied().find(|&id| self.service(id).is_some_and(|s| s.allows_port(port)))
        };
        if let Some(id) = self.exact.get(host).and_then(pick) {
            return Some(id);
        }
        if self.wildcard.is_empty() {
            return None;
        }
        let mut rest = host;
        while let Some((_, suffix)) = rest.split_once('.') {
            if let Some(id) = self.wildcard.get(suffix).and_then(pick) {
                return Some(id);
            }
            rest = suffix;
        }
        None
    }
}

impl Registry {
    /// Whether every host entry points at a service (for decoded bundles).
    pub(crate) fn ids_in_range(&self) -> bool {
        let n = self.services.len() as ServiceId;
        self.exact.values().chain(self.wildcard.values()).flatten().all(|&id| id < n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> Registry {
        let mut r = Registry::default();
        let a = r.push(Service { name: "httpbin".into(), ports: Some(vec![80, 443]) });
        r.add_host("httpbin.org", a);
        r.add_host("*.httpbin.org", a);
        let b = r.push(Service { name: "deep".into(), ports: None });
        r.add_host("*.eu.httpbin.org", b);
        let c = r.push(Service { name: "alt-port".into(), ports: Some(vec![8080]) });
        r.add_host("httpbin.org", c);
        r
    }

    #[test]
    fn exact_wildcard_and_ports() {
        let r = registry();
        assert_eq!(r.lookup("httpbin.org", 80), Some(0));
        assert_eq!(r.lookup("httpbin.org", 8080), Some(2));
        assert_eq!(r.lookup("httpbin.org", 9999), None);
        assert_eq!(r.lookup("api.httpbin.org", 443), Some(0));
        assert_eq!(r.lookup("a.b.httpbin.org", 443), Some(0));
        // The most specific wildcard wins.
        assert_eq!(r.lookup("x.eu.httpbin.org", 9999), Some(1));
        // A wildcard does not cover the apex or a look-alike.
        assert_eq!(r.lookup("eu.httpbin.org", 9999), None);
        assert_eq!(r.lookup("evilhttpbin.org", 80), None);
        assert_eq!(r.lookup("httpbin.org.evil.com", 80), None);
        assert_eq!(r.lookup("org", 80), None);
    }
}
