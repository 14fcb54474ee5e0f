//! The network filter: one decision per connection.
//!
//! What Envoy 1.40 does, measured (`tests/e2e/network_shapes.rs`):
//! `tcp_proxy` stops reading the client when the filter chain is made and
//! reads again only once it connected upstream, which it does in its own
//! `on_new_connection`. So a filter that pauses there stalls the
//! connection for good; it has to decide then, or let `tcp_proxy` connect
//! and decide on the first bytes. Hence:
//!
//! - when the connection opens, the filter decides from what Envoy knows
//!   then (the server name from `tls_inspector`, the ports, the peer's
//!   address). A refused connection is closed there: `tcp_proxy` never
//!   opens an upstream connection;
//! - when the rules need the peer certificate of a TLS handshake that is
//!   not done yet (a listener terminating mesh mTLS), the connection goes
//!   on and the filter decides on the first bytes the client sends, after
//!   the handshake, as Envoy's RBAC network filter does. A refused
//!   connection is closed then: the upstream connection was opened, but it
//!   gets no byte.

use crate::{log, EnvoyRequest, Metrics};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, StreamContext};
use proxy_wasm::types::{Action, LogLevel, PeerType};
use std::cell::RefCell;
use std::rc::Rc;
use warden_engine::identity::x509::{CertificateCache, CertificateError, SubjectAltNames};
use warden_engine::record::FILTER_STATE_PROPERTY;
use warden_engine::request::property;
use warden_engine::{Attributes, Decision, Outcome, Policy};

/// A connection's properties for one decision: each read from Envoy once
/// (deciding whether to wait for the handshake and then deciding read the
/// server name, port and certificate twice otherwise), headers none.
struct Properties<'a> {
    envoy: EnvoyRequest<'a>,
    /// What Envoy returned for each of [`CACHED`], once read.
    read: RefCell<[Option<Option<Vec<u8>>>; CACHED.len()]>,
}

/// The properties a connection's decision reads; any other is read
/// each time it is asked for (a `filterState` identity or peer address).
const CACHED: [&[&str]; 6] = [
    property::SNI,
    property::DESTINATION_PORT,
    property::PEER_CERTIFICATE,
    property::PEER_URI_SAN,
    property::SOURCE_ADDRESS,
    property::TLS_VERSION,
];

impl<'a> Properties<'a> {
    fn new(certificates: &'a RefCell<CertificateCache>) -> Self {
        Properties { envoy: EnvoyRequest::connection(certificates), read: RefCell::new(Default::default()) }
    }
}

impl Attributes for Properties<'_> {
    fn header(&self, _name: &str) -> Option<&str> {
        None
    }

    fn for_each_header(&self, _visit: &mut dyn FnMut(&str, &str)) {}

    fn any_header_value(&self, _name: &str, _pred: &mut dyn FnMut(&str) -> bool) -> bool {
        false
    }

    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        let Some(k) = CACHED.iter().position(|known| *known == path) else {
            return self.envoy.property(path);
        };
        if let Some(Some(value)) = self.read.try_borrow().ok()?.get(k) {
            return value.clone();
        }
        let value = self.envoy.property(path);
        if let Some(slot) = self.read.try_borrow_mut().ok()?.get_mut(k) {
            *slot = Some(value.clone());
        }
        value
    }

    fn peer_certificate_names(&self, pem: &[u8]) -> Result<SubjectAltNames, CertificateError> {
        self.envoy.peer_certificate_names(pem)
    }
}

/// Where a connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for the first bytes (and the handshake before them).
    Undecided,
    /// Let through.
    Allowed,
    /// Refused and closed.
    Closed,
}

/// One downstream connection.
pub(crate) struct WardenConnection {
    policy: Option<Rc<Policy>>,
    metrics: Metrics,
    certificates: Rc<RefCell<CertificateCache>>,
    state: State,
}

impl WardenConnection {
    pub(crate) fn new(
        policy: Option<Rc<Policy>>,
        metrics: Metrics,
        certificates: Rc<RefCell<CertificateCache>>,
    ) -> Self {
        WardenConnection { policy, metrics, certificates, state: State::Undecided }
    }

    /// Decides, records, counts, and closes a refused connection.
    fn decide(&mut self, attrs: &Properties<'_>) -> Action {
        let Some(policy) = self.policy.clone() else {
            // Fail closed: no valid configuration, no traffic.
            let decision = Decision::no_config();
            self.finish(&decision, "no valid configuration");
            return self.close();
        };
        let decision = policy.decide_connection(attrs);
        if decision.is_allowed() {
            self.finish(&decision, "");
            self.state = State::Allowed;
            return Action::Continue;
        }
        let sni = attrs.property(property::SNI).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
        self.finish(&decision, &sni);
        self.close()
    }

    /// Writes the record and counts the connection; logs a refusal.
    fn finish(&self, decision: &Decision<'_>, sni: &str) {
        let record = decision.record();
        let _ = hostcalls::set_property(vec![FILTER_STATE_PROPERTY], Some(record.as_bytes()));
        let m = &self.metrics;
        Metrics::bump(m.connections);
        Metrics::bump(match decision.outcome {
            Outcome::Allow => m.connections_allowed,
            Outcome::Unregistered => m.connections_unregistered,
            Outcome::BadRequest => m.connections_bad_request,
            Outcome::Denied | Outcome::DlpBlocked => m.connections_denied,
        });
        if decision.audited() {
            Metrics::bump(m.audit);
        }
        if !decision.is_allowed() {
            log(LogLevel::Info, &format!("warden: {} connection sni={sni:?} {record}", decision.outcome.as_str()));
        }
    }

    fn close(&mut self) -> Action {
        self.state = State::Closed;
        let _ = hostcalls::close_downstream();
        Action::Pause
    }
}

impl Context for WardenConnection {}

impl StreamContext for WardenConnection {
    fn on_new_connection(&mut self) -> Action {
        let certificates = Rc::clone(&self.certificates);
        let attrs = Properties::new(&certificates);
        if let Some(policy) = &self.policy {
            if policy.connection_awaits_peer(&attrs) {
                // Decided on the first bytes; pausing here would stall.
                return Action::Continue;
            }
        }
        self.decide(&attrs)
    }

    fn on_downstream_data(&mut self, _data_size: usize, _end_of_stream: bool) -> Action {
        match self.state {
            State::Undecided => {
                // Read afresh: the handshake has finished since.
                let certificates = Rc::clone(&self.certificates);
                self.decide(&Properties::new(&certificates))
            }
            State::Allowed => Action::Continue,
            State::Closed => Action::Pause,
        }
    }

    fn on_downstream_close(&mut self, _peer_type: PeerType) {}

    fn on_upstream_data(&mut self, _data_size: usize, _end_of_stream: bool) -> Action {
        Action::Continue
    }
}
