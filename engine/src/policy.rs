//! The compiled policy and the per-request decision.

use crate::authz::{AuthzPolicy, RequestView};
use crate::decision::Decision;
use crate::dlp::body::BodyScan;
use crate::dlp::policy::DlpSet;
use crate::document::{Action, DlpAction, IdentitySource, OutboundTrafficPolicy, PathNormalization, PeerAddress};
use crate::identity::{self, Identity, IdentityError};
use crate::needs::{Needs, Required};
use crate::normalize::{self, BadRequest};
use crate::record::{Outcome, Reason};
use crate::registry::{Registry, ServiceId};
use crate::request::{self, property, Attributes};
use serde::{Deserialize, Serialize};

/// The trail of a decision, from [`Policy::explain`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trace<'p> {
    /// The host as matched (lowercased, no port, no trailing dot).
    pub host: String,
    /// The port as matched.
    pub port: u16,
    /// The method.
    pub method: String,
    /// The normalized path (no query).
    pub path: String,
    /// The matched service.
    pub service: Option<&'p str>,
    /// Every authorization policy that applies, in evaluation order.
    pub steps: Vec<TraceStep<'p>>,
}

/// One applicable authorization policy in a [`Trace`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceStep<'p> {
    /// The policy's name.
    pub policy: &'p str,
    /// ALLOW, DENY or AUDIT.
    pub action: Action,
    /// Whether it is dry-run.
    pub dry_run: bool,
    /// For each rule, whether it matched.
    pub rules: Vec<bool>,
}

/// A local response for a refused request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// HTTP status.
    pub status: u32,
    /// Body, sent as is.
    pub body: String,
}

/// The responses for each kind of refusal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Responses {
    /// An authorization policy refused the request.
    pub denied: Response,
    /// The host is not in the registry.
    pub unregistered: Response,
    /// DLP blocked the request.
    pub dlp_blocked: Response,
    /// The request is malformed or ambiguous.
    pub bad_request: Response,
}

impl Default for Responses {
    fn default() -> Self {
        let r = |status: u32, body: &str| Response { status, body: body.to_owned() };
        Responses {
            denied: r(403, "RBAC: access denied"),
            unregistered: r(502, ""),
            dlp_blocked: r(403, "DLP: request blocked"),
            bad_request: r(400, "bad request"),
        }
    }
}

/// A compiled, immutable policy: build it with [`crate::compile`] or
/// [`crate::bundle::decode`], share it, and call [`Policy::decide`] per
/// request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Policy {
    pub(crate) name: String,
    pub(crate) outbound: OutboundTrafficPolicy,
    pub(crate) identity: Vec<IdentitySource>,
    pub(crate) normalization: PathNormalization,
    pub(crate) reject_ambiguous: bool,
    /// `requireSniMatch`.
    pub(crate) require_sni_match: bool,
    /// Listener port → service port (`gatewayPorts`).
    pub(crate) gateway_ports: Vec<(u16, u16)>,
    pub(crate) registry: Registry,
    pub(crate) authz: Vec<AuthzPolicy>,
    /// Policies without `services`, in document order.
    pub(crate) unscoped: Vec<u32>,
    /// Per service: the policies scoped to it, in document order.
    pub(crate) by_service: Vec<Vec<u32>>,
    pub(crate) responses: Responses,
    /// DLP policies and their scanners.
    pub(crate) dlp: DlpSet,
    /// Where `ipBlocks` reads the direct peer.
    pub(crate) peer_address: PeerAddress,
    /// What the rules read.
    pub(crate) needs: Needs,
    /// What the enforced policies applying to a request for no service
    /// must know, and per service.
    pub(crate) required_unscoped: Required,
    pub(crate) required_by_service: Vec<Required>,
}

impl Policy {
    /// The policy's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The authorization policies, in document order.
    pub fn authz_policies(&self) -> &[AuthzPolicy] {
        &self.authz
    }

    /// The port a listener port stands for (`gatewayPorts`).
    pub(crate) fn service_port(&self, listener: u16) -> u16 {
        self.gateway_ports.iter().find(|(from, _)| *from == listener).map_or(listener, |&(_, to)| to)
    }

    /// The authorization policies that apply to a request for `service`
    /// (`None`: a host in no service), in evaluation order.
    pub fn applicable_policies(&self, service: Option<ServiceId>) -> impl Iterator<Item = &AuthzPolicy> {
        self.applicable(service)
    }

    /// Where the caller's identity is read, in order.
    pub fn identity_sources(&self) -> &[IdentitySource] {
        &self.identity
    }

    /// Where `ipBlocks` reads the direct peer.
    pub fn peer_address(&self) -> &PeerAddress {
        &self.peer_address
    }

    /// How paths are normalized before matching.
    pub fn path_normalization(&self) -> PathNormalization {
        self.normalization
    }

    /// Whether ambiguous paths (`%2F`, `\\`, ...) are refused as bad requests.
    pub fn rejects_ambiguous_paths(&self) -> bool {
        self.reject_ambiguous
    }

    /// Whether a request's host must equal its connection's SNI.
    pub fn require_sni_match(&self) -> bool {
        self.require_sni_match
    }

    /// Listener port → service port (`gatewayPorts`).
    pub fn gateway_ports(&self) -> &[(u16, u16)] {
        &self.gateway_ports
    }

    /// The settings that shape every decision besides the registry and the
    /// policies, by name, each as text for comparison and display:
    /// `outboundTrafficPolicy`, `identity`, `pathNormalization`, ...
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        let text = |v: &dyn std::fmt::Debug| format!("{v:?}");
        vec![
            ("outboundTrafficPolicy", text(&self.outbound)),
            ("identity", text(&self.identity)),
            ("pathNormalization", text(&self.normalization)),
            ("rejectAmbiguousPaths", text(&self.reject_ambiguous)),
            ("requireSniMatch", text(&self.require_sni_match)),
            ("gatewayPorts", text(&self.gateway_ports)),
            ("peerAddress", text(&self.peer_address)),
            ("responses", text(&self.responses)),
        ]
    }

    /// The DLP policies.
    pub fn dlp(&self) -> &DlpSet {
        &self.dlp
    }

    /// The configured local responses.
    pub fn responses(&self) -> &Responses {
        &self.responses
    }

    /// Decides one request from its headers and properties.
    pub fn decide(&self, attrs: &dyn Attributes) -> Decision<'_> {
        self.decide_traced(attrs, None)
    }

    /// Decides like [`Policy::decide`] and also returns the trail: the
    /// request attributes as matched and every applicable authorization
    /// policy with which of its rules matched. For `warden explain`; slower
    /// than `decide` (every rule of every applicable policy is evaluated).
    pub fn explain(&self, attrs: &dyn Attributes) -> (Decision<'_>, Trace<'_>) {
        let mut trace = Trace::default();
        let decision = self.decide_traced(attrs, Some(&mut trace));
        (decision, trace)
    }

    fn decide_traced<'p>(&'p self, attrs: &dyn Attributes, trace: Option<&mut Trace<'p>>) -> Decision<'p> {
        let identity = identity::resolve(attrs, &self.identity, self.needs.subject);
        let principal = match &identity {
            Ok(Some(id)) => id.principal().map(str::to_owned),
            _ => None,
        };
        let mut decision = match self.decide_inner(attrs, &identity, trace) {
            Ok(d) => d,
            Err(bad) => Decision::refused(Outcome::BadRequest, Reason::BadRequest(bad), None),
        };
        decision.principal = principal;
        decision
    }

    fn decide_inner<'p>(
        &'p self,
        attrs: &dyn Attributes,
        identity: &Result<Option<Identity>, IdentityError>,
        trace: Option<&mut Trace<'p>>,
    ) -> Result<Decision<'p>, BadRequest> {
        // 1. Bad requests.
        let authority = authority(attrs)?;
        let (host, authority_port) = normalize::split_authority(authority)?;
        let method = attrs.header(":method").filter(|m| !m.is_empty()).ok_or(BadRequest::MissingMethod)?;
        if !normalize::is_valid_method(method) {
            return Err(BadRequest::InvalidMethod);
        }
        // A classic CONNECT (no `:protocol`) names only `host:port`: it
        // opens a tunnel, has no path, and its body is the tunnel's bytes.
        let tunnel = method == "CONNECT" && attrs.header(":protocol").is_none();
        let raw_path = match attrs.header(":path").filter(|p| !p.is_empty()) {
            Some(p) => p,
            None if tunnel => "",
            None => return Err(BadRequest::MissingPath),
        };
        if tunnel && authority_port.is_none() {
            return Err(BadRequest::MissingPort);
        }
        let sni = if self.require_sni_match || self.needs.sni {
            attrs.property(property::SNI).and_then(|b| String::from_utf8(b).ok()).filter(|s| !s.is_empty())
        } else {
            None
        };
        if self.require_sni_match {
            check_sni(sni.as_deref(), &host)?;
        }
        let (path, query, fragment) = normalize::split_path(raw_path);
        if self.reject_ambiguous && !tunnel && normalize::is_ambiguous(raw_path, path) {
            return Err(BadRequest::AmbiguousPath);
        }
        let identity = match identity {
            Ok(found) => Ok(found.as_ref()),
            Err(IdentityError::MalformedXfcc) => return Err(BadRequest::InvalidXfcc),
            Err(IdentityError::RepeatedHeader) => return Err(BadRequest::RepeatedIdentityHeader),
            Err(IdentityError::UnreadableCertificate) => Err(()),
        };
        let normalized = normalize::normalize_path(path, self.normalization);
        // The path to forward, when it differs from what was received.
        let forward_path = match (&normalized, fragment) {
            (std::borrow::Cow::Borrowed(_), false) => None,
            _ => {
                let mut full = normalized.clone().into_owned();
                if let Some(q) = query {
                    full.push('?');
                    full.push_str(q);
                }
                (full != raw_path).then_some(full)
            }
        };

        let listener_port = request::destination_port(attrs).map(|listener| self.service_port(listener));
        let port = authority_port.or(listener_port).unwrap_or_else(|| match attrs.header(":scheme") {
            Some("https") => 443,
            _ => 80,
        });

        // 2. Registry.
        let service = self.registry.lookup(&host, port);
        let service_name = service.and_then(|id| self.registry.service(id)).map(|s| s.name.as_str());
        let mut trace = trace;
        if let Some(t) = trace.as_deref_mut() {
            t.host = host.to_string();
            t.port = port;
            t.method = method.to_owned();
            t.path = normalized.to_string();
            t.service = service_name;
        }
        if service.is_none() && self.outbound == OutboundTrafficPolicy::RegistryOnly {
            let mut d = Decision::refused(Outcome::Unregistered, Reason::Unregistered, None);
            d.forward_path = forward_path;
            return Ok(d);
        }

        // 3. Authorization. What cannot be read is never guessed: if
        // enforced rules need it, the request is refused.
        let addresses = if self.needs.addresses {
            request::addresses(attrs, &self.peer_address)
        } else {
            request::Addresses::default()
        };
        let unknown = |reason: Reason| {
            let mut d = Decision::refused(Outcome::Denied, reason, None);
            d.service = service_name;
            d.forward_path = forward_path.clone();
            Ok(d)
        };
        let required =
            service.and_then(|id| self.required_by_service.get(id as usize)).copied().unwrap_or(self.required_unscoped);
        let identity = match identity {
            Ok(found) => found,
            Err(()) if required.identity => return unknown(Reason::UnverifiableIdentity),
            Err(()) => None,
        };
        if (required.direct_address && addresses.direct.is_none())
            || (required.remote_address && addresses.remote.is_none())
        {
            return unknown(Reason::UnknownAddress);
        }
        let authority_lower = if authority.bytes().any(|b| b.is_ascii_uppercase()) {
            std::borrow::Cow::Owned(authority.to_ascii_lowercase())
        } else {
            std::borrow::Cow::Borrowed(authority)
        };
        let view = RequestView {
            host: &host,
            authority: &authority_lower,
            port,
            listener_port: listener_port.unwrap_or(port),
            method,
            path: &normalized,
            identity,
            addresses,
            sni: sni.as_deref(),
            attrs,
            connection: false,
        };
        if let Some(t) = trace {
            t.steps = self.trace_steps(&view, service);
        }
        let mut d = self.authorize(&view, service);
        d.service = service_name;
        d.forward_path = forward_path;

        // 4. DLP, on what an allowed request carries. A tunnel's body is
        // another connection's bytes (TLS, mostly): its headers are
        // scanned, its body is not.
        if d.is_allowed() && !self.dlp.is_empty() {
            self.scan(&mut d, service, attrs, raw_path);
            if tunnel {
                d.body = None;
            }
        }
        Ok(d)
    }

    /// DLP on the headers and the request target; prepares the body scan.
    fn scan<'p>(&'p self, d: &mut Decision<'p>, service: Option<ServiceId>, attrs: &dyn Attributes, raw_path: &str) {
        let target = d.forward_path.as_deref().unwrap_or(raw_path);
        let scan = self.dlp.scan_request(service, attrs, target, true);
        let name = |n: &str| self.dlp.policies().iter().find(|p| p.name == n).map(|p| p.name.as_str());
        for f in &scan.findings {
            if f.action == DlpAction::Audit {
                if let Some(n) = name(&f.policy).filter(|n| !d.audit.contains(n)) {
                    d.audit.push(n);
                }
            }
        }
        if let Some(target) = scan.target_edit {
            d.forward_path = Some(target);
        }
        d.header_edits = scan.header_edits;
        if let Some(block) = scan.findings.iter().find(|f| f.action == DlpAction::Block) {
            d.outcome = Outcome::DlpBlocked;
            d.reason = Reason::DlpFinding;
            d.policy = name(&block.policy);
            d.rule = None;
        } else {
            d.body = scan.body.map(BodyScan::new);
        }
        d.findings = scan.findings;
    }

    /// Every applicable policy with which of its rules match `view`, for
    /// a [`Trace`].
    pub(crate) fn trace_steps(&self, view: &RequestView<'_>, service: Option<ServiceId>) -> Vec<TraceStep<'_>> {
        self.applicable(service)
            .map(|p| TraceStep {
                policy: &p.name,
                action: p.action,
                dry_run: p.dry_run,
                rules: p.rules.iter().map(|r| r.matches(view, p.action)).collect(),
            })
            .collect()
    }

    /// The policies that apply to a request for `service`, in document
    /// order: the unscoped ones merged with those scoped to the service.
    pub(crate) fn applicable(&self, service: Option<ServiceId>) -> impl Iterator<Item = &AuthzPolicy> {
        let scoped: &[u32] =
            service.and_then(|id| self.by_service.get(id as usize)).map(Vec::as_slice).unwrap_or_default();
        let (mut a, mut b) = (self.unscoped.iter().peekable(), scoped.iter().peekable());
        std::iter::from_fn(move || match (a.peek(), b.peek()) {
            (Some(&&x), Some(&&y)) => {
                if x <= y {
                    a.next()
                } else {
                    b.next()
                }
            }
            (Some(_), None) => a.next(),
            (None, Some(_)) => b.next(),
            (None, None) => None,
        })
        .filter_map(|&i| self.authz.get(i as usize))
    }

    pub(crate) fn authorize(&self, req: &RequestView<'_>, service: Option<ServiceId>) -> Decision<'_> {
        let mut deny: Option<(&str, usize)> = None;
        let mut allow: Option<(&str, usize)> = None;
        let mut allow_applies = false;
        let mut dry_allow_applies: Vec<&str> = Vec::new();
        let mut dry_allow_matched = false;
        let mut dry_run: Vec<&str> = Vec::new();
        let mut audit: Vec<&str> = Vec::new();

        for p in self.applicable(service) {
            match (p.action, p.dry_run) {
                (Action::Deny, false) => {
                    if deny.is_none() {
                        deny = p.first_match(req).map(|r| (p.name.as_str(), r));
                    }
                }
                (Action::Allow, false) => {
                    allow_applies = true;
                    if allow.is_none() && deny.is_none() {
                        allow = p.first_match(req).map(|r| (p.name.as_str(), r));
                    }
                }
                (Action::Deny, true) => {
                    if p.first_match(req).is_some() {
                        dry_run.push(&p.name);
                    }
                }
                (Action::Allow, true) => {
                    dry_allow_applies.push(&p.name);
                    if !dry_allow_matched {
                        dry_allow_matched = p.first_match(req).is_some();
                    }
                }
                (Action::Audit, _) => {
                    if p.first_match(req).is_some() {
                        audit.push(&p.name);
                    }
                }
            }
        }
        if !dry_allow_matched {
            dry_run.extend(dry_allow_applies);
        }

        let mut d = if let Some((name, rule)) = deny {
            let mut d = Decision::refused(Outcome::Denied, Reason::DenyPolicy, None);
            d.policy = Some(name);
            d.rule = Some(rule);
            d
        } else if allow_applies && allow.is_none() {
            Decision::refused(Outcome::Denied, Reason::NoAllowMatch, None)
        } else {
            let mut d = Decision::allowed(if allow.is_some() { Reason::AllowPolicy } else { Reason::NoPolicy });
            if let Some((name, rule)) = allow {
                d.policy = Some(name);
                d.rule = Some(rule);
            }
            d
        };
        d.dry_run = dry_run;
        d.audit = audit;
        d
    }

    /// The local response for a refused decision; `None` when the request
    /// goes on.
    pub fn response_for(&self, decision: &Decision<'_>) -> Option<&Response> {
        self.response_for_outcome(decision.outcome)
    }

    /// The local response for an outcome; `None` for [`Outcome::Allow`].
    pub fn response_for_outcome(&self, outcome: Outcome) -> Option<&Response> {
        match outcome {
            Outcome::Allow => None,
            Outcome::Denied => Some(&self.responses.denied),
            Outcome::Unregistered => Some(&self.responses.unregistered),
            Outcome::BadRequest => Some(&self.responses.bad_request),
            Outcome::DlpBlocked => Some(&self.responses.dlp_blocked),
        }
    }
}

/// With the gateway terminating the client's TLS, the request's host must
/// be the server name the client asked for: a client that says
/// `allowed.example` in its ClientHello and `other.example` in `Host` is
/// trying domain fronting. A server name that is not a host name (Istio's
/// `outbound_.80_._.host` names between sidecar and gateway) names a
/// route, not a destination, and is not compared.
fn check_sni(sni: Option<&str>, host: &str) -> Result<(), BadRequest> {
    let Some(sni) = sni else { return Ok(()) };
    match normalize::server_name(sni) {
        Ok(name) if name != host => Err(BadRequest::SniMismatch),
        _ => Ok(()),
    }
}

/// The request's one authority: `:authority` (HTTP/2, and what Envoy makes
/// of HTTP/1's `Host`), else `Host`. Two of them, or a `Host` that says
/// something else, is a bad request: the upstream might read the other.
fn authority(attrs: &dyn Attributes) -> Result<&str, BadRequest> {
    let count = |name: &str| {
        let mut n = 0;
        attrs.any_header_value(name, &mut |_| {
            n += 1;
            false
        });
        n
    };
    let (pseudo, host) = (count(":authority"), count("host"));
    match (attrs.header(":authority"), attrs.header("host")) {
        _ if pseudo > 1 || host > 1 => Err(BadRequest::InvalidAuthority),
        (Some(a), Some(h)) if a != h => Err(BadRequest::InvalidAuthority),
        (Some(a), _) if !a.is_empty() => Ok(a),
        (_, Some(h)) if !h.is_empty() => Ok(h),
        _ => Err(BadRequest::MissingAuthority),
    }
}

impl Policy {
    /// Checks the cross-references a decoded bundle must satisfy, so a
    /// damaged bundle fails to load instead of deciding wrongly; the error
    /// says which.
    pub(crate) fn check_integrity(&self) -> Result<(), &'static str> {
        let services = self.registry.services().len();
        if self.by_service.len() != services {
            return Err("damaged bundle: service index does not match the registry");
        }
        let n = self.authz.len() as u32;
        let sorted_in_range =
            |list: &[u32]| list.windows(2).all(|w| w.first() < w.get(1)) && list.iter().all(|&i| i < n);
        if !sorted_in_range(&self.unscoped) || !self.by_service.iter().all(|l| sorted_in_range(l)) {
            return Err("damaged bundle: policy index out of range");
        }
        if self.required_by_service.len() != services {
            return Err("damaged bundle: service index does not match the registry");
        }
        if self.dlp.service_count() != services && !self.dlp.is_empty() {
            return Err("damaged bundle: DLP service index does not match the registry");
        }
        if !self.registry.ids_in_range() {
            return Err("damaged bundle: host index out of range");
        }
        Ok(())
    }
}

/// A whole request carried out natively, as the filter does in Envoy: for
/// tests and tools that compare the filter with the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Processed {
    /// The final outcome (a body can still turn an allowed request into
    /// [`Outcome::DlpBlocked`]).
    pub outcome: Outcome,
    /// The final decision record.
    pub record: String,
    /// The `:path` forwarded when it differs from the one received.
    pub forward_path: Option<String>,
    /// Headers replaced before forwarding (REDACT).
    pub header_edits: Vec<(String, String)>,
    /// Trailers replaced before forwarding (REDACT).
    pub trailer_edits: Vec<(String, String)>,
    /// The body forwarded upstream; `None` when the request was refused.
    pub forwarded_body: Option<Vec<u8>>,
}

impl Policy {
    /// Decides a request and runs its body (in chunks, as they would
    /// arrive) through DLP.
    pub fn process(&self, attrs: &dyn Attributes, body: &[&[u8]]) -> Processed {
        self.process_with_trailers(attrs, body, &[])
    }

    /// [`Policy::process`] for a request that ends with trailers (name,
    /// value), scanned as the filter scans them after the body.
    pub fn process_with_trailers(
        &self,
        attrs: &dyn Attributes,
        body: &[&[u8]],
        trailers: &[(&str, &str)],
    ) -> Processed {
        let mut decision = self.decide(attrs);
        let mut out = Processed {
            outcome: decision.outcome,
            record: decision.record(),
            forward_path: decision.forward_path.clone(),
            header_edits: decision.header_edits.clone(),
            trailer_edits: Vec::new(),
            forwarded_body: None,
        };
        if !decision.is_allowed() {
            return out;
        }
        let chunks: Vec<&[u8]> = body.iter().copied().filter(|c| !c.is_empty()).collect();
        let ends_stream = chunks.is_empty() && trailers.is_empty();
        let Some(mut scan) = (if ends_stream { None } else { decision.take_body() }) else {
            out.forwarded_body = Some(body.concat());
            return out;
        };
        let mut forwarded = Vec::new();
        let mut held = Vec::new();
        // Each chunk, then (with trailers) the trailers and the end of the
        // stream on its own, as Envoy calls the filter.
        let last = if trailers.is_empty() { chunks.len().saturating_sub(1) } else { chunks.len() };
        for i in 0..=last {
            let chunk = chunks.get(i).copied().unwrap_or_default();
            let end = i == last;
            if end && !trailers.is_empty() {
                out.trailer_edits = scan.trailers(&self.dlp, &mut |visit| {
                    for (name, value) in trailers {
                        visit(name, value);
                    }
                });
            }
            held.extend_from_slice(chunk);
            let bytes = if scan.reads_body() { chunk } else { &[] };
            match scan.feed(&self.dlp, bytes, end) {
                crate::dlp::body::BodyStep::Hold => {}
                crate::dlp::body::BodyStep::Forward => forwarded.append(&mut held),
                crate::dlp::body::BodyStep::Block => {
                    forwarded.clear();
                    break;
                }
                crate::dlp::body::BodyStep::Redact => {
                    let mut whole = std::mem::take(&mut held);
                    if scan.redact(&self.dlp, &mut whole) {
                        forwarded.extend(whole);
                    } else {
                        forwarded.clear();
                    }
                }
            }
        }
        out.outcome = scan.outcome();
        out.record = scan.record();
        if out.outcome == Outcome::Allow {
            forwarded.append(&mut held);
            out.forwarded_body = Some(forwarded);
        }
        out
    }
}
