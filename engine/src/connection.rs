//! The decision on a connection: the network filter (TLS passthrough, an
//! egress gateway that terminates mesh mTLS and forwards the bytes inside)
//! sees no HTTP request, only the server name (SNI), the destination port,
//! the peer's certificate and address. It decides once, with Istio's TCP
//! semantics ([`crate::authz::Rule::matches`]), before a byte reaches the
//! upstream.

use crate::authz::RequestView;
use crate::decision::Decision;
use crate::document::{IdentitySource, OutboundTrafficPolicy};
use crate::identity::{self, IdentityError};
use crate::needs::Required;
use crate::normalize::{self, BadRequest};
use crate::policy::{Policy, Trace};
use crate::record::{Outcome, Reason};
use crate::request::{self, property, Attributes};

impl Policy {
    /// Decides one connection from its properties: the server name
    /// (`connection.requested_server_name`), the destination port, the
    /// peer certificate and the source address. Headers are not read.
    ///
    /// - The server name must be a host name; it is looked up in the
    ///   registry with the port. No server name is a refusal under
    ///   `REGISTRY_ONLY`, and a connection for no service under `ALLOW_ANY`.
    /// - Rules follow Istio's TCP semantics: in ALLOW rules, `hosts`,
    ///   `methods`, `paths` and `request.headers` make a rule never match;
    ///   in DENY and AUDIT rules they are ignored.
    /// - There is no DLP: the bytes are another protocol's, mostly TLS.
    pub fn decide_connection(&self, attrs: &dyn Attributes) -> Decision<'_> {
        self.decide_connection_traced(attrs, None)
    }

    /// Like [`Policy::decide_connection`], with the trail of
    /// [`Policy::explain`]; the trace's host is the server name, its
    /// method and path are empty.
    pub fn explain_connection(&self, attrs: &dyn Attributes) -> (Decision<'_>, Trace<'_>) {
        let mut trace = Trace::default();
        let decision = self.decide_connection_traced(attrs, Some(&mut trace));
        (decision, trace)
    }

    /// Whether deciding the connection now would be premature: the
    /// enforced rules for its service read the caller's identity, the
    /// policy reads it from the peer certificate, the listener terminates
    /// TLS (`connection.tls_version` is there), and no certificate is
    /// shown yet. A
    /// listener that terminates mesh mTLS finishes the handshake after the
    /// connection opens; the network filter then decides on the first
    /// bytes the client sends, as Envoy's RBAC network filter does.
    pub fn connection_awaits_peer(&self, attrs: &dyn Attributes) -> bool {
        let from_certificate = self.identity.iter().any(|s| matches!(s, IdentitySource::PeerCertificate(_)));
        if !from_certificate {
            return false;
        }
        // Whether the rules that apply need the caller at all, first: the
        // server name and port are read to decide anyway, while the
        // certificate and TLS properties below would be host calls spent
        // on every passthrough connection for nothing.
        let host = attrs
            .property(property::SNI)
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|sni| normalize::server_name(&sni).ok().map(std::borrow::Cow::into_owned));
        let port = request::destination_port(attrs).map(|listener| self.service_port(listener));
        let service = host.as_deref().zip(port).and_then(|(h, p)| self.registry.lookup(h, p));
        let required =
            service.and_then(|id| self.required_by_service.get(id as usize)).copied().unwrap_or(self.required_unscoped);
        if !required.identity || attrs.property(property::PEER_CERTIFICATE).is_some_and(|c| !c.is_empty()) {
            return false;
        }
        // A connection Envoy does not decrypt never gets a peer
        // certificate: decide it now.
        attrs.property(property::TLS_VERSION).is_some()
    }

    fn decide_connection_traced<'p>(&'p self, attrs: &dyn Attributes, trace: Option<&mut Trace<'p>>) -> Decision<'p> {
        let mut principal = None;
        let mut decision = match self.decide_connection_inner(attrs, &mut principal, trace) {
            Ok(d) => d,
            Err(bad) => {
                // Refused before the caller was read; the record names it.
                let _ = self.connection_identity(attrs, Required::default(), &mut principal);
                Decision::refused(Outcome::BadRequest, Reason::BadRequest(bad), None)
            }
        };
        decision.principal = principal;
        decision
    }

    /// The caller's identity, read once the service is known: whether a
    /// certificate Envoy cannot show was presented matters only when the
    /// rules read the caller (or another source could answer instead), so
    /// that host call is saved on every other connection.
    fn connection_identity(
        &self,
        attrs: &dyn Attributes,
        required: Required,
        principal: &mut Option<String>,
    ) -> Result<Option<identity::Identity>, IdentityError> {
        let tell_unreadable = required.identity || self.identity.len() > 1;
        let identity = identity::resolve_checked(attrs, &self.identity, self.needs.subject, tell_unreadable);
        if let Ok(Some(id)) = &identity {
            *principal = id.principal().map(str::to_owned);
        }
        identity
    }

    fn decide_connection_inner<'p>(
        &'p self,
        attrs: &dyn Attributes,
        principal: &mut Option<String>,
        trace: Option<&mut Trace<'p>>,
    ) -> Result<Decision<'p>, BadRequest> {
        let raw_sni = attrs.property(property::SNI).filter(|v| !v.is_empty());
        let sni = match &raw_sni {
            Some(bytes) => Some(std::str::from_utf8(bytes).map_err(|_| BadRequest::InvalidSni)?),
            None => None,
        };
        let host = sni.map(normalize::server_name).transpose()?;
        let listener = request::destination_port(attrs).ok_or(BadRequest::MissingPort)?;
        let port = self.service_port(listener);

        let service = host.as_deref().and_then(|h| self.registry.lookup(h, port));
        let service_name = service.and_then(|id| self.registry.service(id)).map(|s| s.name.as_str());
        let mut trace = trace;
        if let Some(t) = trace.as_deref_mut() {
            t.host = host.as_deref().unwrap_or_default().to_owned();
            t.port = port;
            t.service = service_name;
        }
        let required: Required =
            service.and_then(|id| self.required_by_service.get(id as usize)).copied().unwrap_or(self.required_unscoped);
        if service.is_none() && self.outbound == OutboundTrafficPolicy::RegistryOnly {
            // The record still names the caller.
            let _ = self.connection_identity(attrs, Required::default(), principal);
            let reason = if host.is_some() { Reason::Unregistered } else { Reason::NoServerName };
            return Ok(Decision::refused(Outcome::Unregistered, reason, None));
        }
        let identity = self.connection_identity(attrs, required, principal);
        let unknown = |reason: Reason| {
            let mut d = Decision::refused(Outcome::Denied, reason, None);
            d.service = service_name;
            Ok(d)
        };
        let identity = match &identity {
            Ok(found) => found.as_ref(),
            Err(_) if required.identity => return unknown(Reason::UnverifiableIdentity),
            Err(_) => None,
        };
        let addresses = if self.needs.addresses {
            request::addresses(attrs, &self.peer_address)
        } else {
            request::Addresses::default()
        };
        if (required.direct_address && addresses.direct.is_none())
            || (required.remote_address && addresses.remote.is_none())
        {
            return unknown(Reason::UnknownAddress);
        }
        let host = host.as_deref().unwrap_or_default();
        let view = RequestView {
            host,
            authority: host,
            port,
            listener_port: port,
            method: "",
            path: "",
            identity,
            addresses,
            sni: host_or_none(host),
            attrs,
            connection: true,
        };
        if let Some(t) = trace {
            t.steps = self.trace_steps(&view, service);
        }
        let mut d = self.authorize(&view, service);
        d.service = service_name;
        Ok(d)
    }
}

fn host_or_none(host: &str) -> Option<&str> {
    (!host.is_empty()).then_some(host)
}
