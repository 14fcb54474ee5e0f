//! The fixture most tests use: an egress gateway — one Envoy running the
//! Warden filter with a policy — in front of one recording upstream.

use serde_json::Value;

use super::client::{Dial, Request, Response, Tls};
use super::envoy::Envoy;
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

impl Gateway {
    /// A gateway running the example policy `policies/<name>/policy.yaml`,
    /// in front of an upstream answering 200.
    pub fn example(name: &str) -> Gateway {
        Gateway::start(Some(&policy::example(name)), 200)
    }

    /// A gateway running `policy` (`None`: no filter) in front of an
    /// upstream answering `upstream_status`.
    pub fn start(policy: Option<&Value>, upstream_status: u16) -> Gateway {
        let upstream = Upstream::start(upstream_status);
        let envoy = Envoy::start(policy, upstream.addr()).unwrap_or_else(|failure| panic!("{failure}"));
        Gateway { envoy, upstream }
    }

    /// Sends `request` to the plain-HTTP listener (no peer certificate),
    /// as a workload's connection to port 80.
    pub fn send(&self, request: &Request) -> Response {
        let dial = Dial::plain(self.envoy.plain_addr()).original_port(WORKLOAD_PORT);
        dial.send(request).unwrap_or_else(|e| panic!("{request} on the plain listener: {e}\n{}", self.envoy.log_tail()))
    }

    /// Sends `request` to the mTLS listener with `identity`'s certificate,
    /// as a workload's connection to port 80.
    pub fn send_as(&self, identity: &Identity, request: &Request) -> Response {
        let dial = Dial::tls(self.envoy.mtls_addr(), Tls::As(identity)).original_port(WORKLOAD_PORT);
        dial.send(request).unwrap_or_else(|e| panic!("{request} on the mTLS listener: {e}\n{}", self.envoy.log_tail()))
    }
}
