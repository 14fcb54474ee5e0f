//! The fixture most tests use: an egress gateway — one Envoy running the
//! Warden filter with a policy — in front of one recording upstream, both
//! in a network namespace of their own.

use std::net::IpAddr;
use std::sync::Arc;

use serde_json::Value;
use warden::testing::envoy::Hcm;

use super::bootstrap;
use super::client::{Request, Response, Tls};
use super::envoy::{Envoy, Options};
use super::netns::NetNs;
use super::pki::Identity;
use super::policy;
use super::upstream::Upstream;

/// The port workloads connect to (`curl httpbin.org`): the services of the
/// example policies are registered on port 80.
pub const WORKLOAD_PORT: u16 = 80;

/// Envoy with Warden, and the upstream behind it.
pub struct Gateway {
    /// The Envoy process.
    pub envoy: Envoy,
    /// The upstream the gateway forwards to.
    pub upstream: Upstream,
}

/// A network namespace for a gateway, with `addresses` on its loopback.
pub fn namespace(addresses: &[IpAddr]) -> Arc<NetNs> {
    Arc::new(NetNs::new(addresses).unwrap_or_else(|e| panic!("{e}")))
}

impl Gateway {
    /// A gateway running the example policy `policies/<name>/policy.yaml`,
    /// in front of an upstream answering 200.
    pub fn example(name: &str) -> Gateway {
        Gateway::start(Some(&policy::example(name)), 200)
    }

    /// A gateway running `policy` (`None`: no filter) on port 80 in front
    /// of an upstream answering `upstream_status`.
    pub fn start(policy: Option<&Value>, upstream_status: u16) -> Gateway {
        Gateway::launch(
            policy.map(bootstrap::warden).into_iter().collect(),
            &[WORKLOAD_PORT],
            Hcm::default(),
            &[],
            upstream_status,
        )
    }

    /// A gateway with these HTTP filters, listening on `ports` with `hcm`,
    /// whose namespace also has `addresses` for clients to connect from.
    pub fn launch(filters: Vec<Value>, ports: &[u16], hcm: Hcm, addresses: &[IpAddr], upstream_status: u16) -> Gateway {
        let netns = namespace(addresses);
        let upstream = netns.run(|| Upstream::start(upstream_status));
        let options = Options { filters, upstream: upstream.addr(), ports: ports.to_vec(), hcm, netns };
        let envoy = Envoy::launch(options).unwrap_or_else(|failure| panic!("{failure}"));
        Gateway { envoy, upstream }
    }

    /// Sends `request` in plain HTTP to port 80 (no peer certificate), as
    /// a workload's connection.
    pub fn send(&self, request: &Request) -> Response {
        let dial = self.envoy.plain(WORKLOAD_PORT);
        dial.send(request).unwrap_or_else(|e| panic!("{request} in plain HTTP: {e}\n{}", self.envoy.log_tail()))
    }

    /// Sends `request` over TLS to port 80 with `identity`'s certificate,
    /// as a workload's mTLS connection.
    pub fn send_as(&self, identity: &Identity, request: &Request) -> Response {
        let dial = self.envoy.tls(WORKLOAD_PORT, Tls::As(identity));
        dial.send(request).unwrap_or_else(|e| panic!("{request} over mTLS: {e}\n{}", self.envoy.log_tail()))
    }
}
