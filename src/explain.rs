//! `warden explain`: one request through the compiled filter in the
//! harness, the native engine's trail of how it was decided, and a check
//! that both reached the same decision.

use serde_json::Value;
use std::borrow::Cow;
use std::fmt::Write as _;
use warden_engine::document::Action;
use warden_engine::record::{Record, DECISION_HEADER, FILTER_STATE_KEY};
use warden_engine::{Attributes, Decision, Policy, Reason, Trace};
use warden_harness::{Outcome, Request};

/// The engine's view of a harness [`Request`]: the same headers and
/// properties the filter reads through the host. Header names match
/// whatever their case, and nothing is allocated per lookup.
pub struct RequestAttributes<'a>(pub &'a Request);

impl Attributes for RequestAttributes<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        let (_, value) = self.0.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name))?;
        std::str::from_utf8(value).ok()
    }

    fn for_each_header(&self, visit: &mut dyn FnMut(&str, &str)) {
        for (n, v) in &self.0.headers {
            let name: Cow<'_, str> = if n.bytes().any(|b| b.is_ascii_uppercase()) {
                Cow::Owned(n.to_ascii_lowercase())
            } else {
                Cow::Borrowed(n)
            };
            visit(&name, &String::from_utf8_lossy(v));
        }
    }

    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        self.0
            .properties
            .iter()
            .find(|(p, _)| p.iter().map(String::as_str).eq(path.iter().copied()))
            .map(|(_, v)| v.clone())
    }
}

/// A harness connection as the engine's [`Attributes`]: its properties,
/// those of the TLS handshake included (what the network filter can read
/// by the time it decides), and no headers.
pub struct ConnectionAttributes<'a>(pub &'a warden_harness::Connection);

impl Attributes for ConnectionAttributes<'_> {
    fn header(&self, _name: &str) -> Option<&str> {
        None
    }

    fn for_each_header(&self, _visit: &mut dyn FnMut(&str, &str)) {}

    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        self.0
            .properties
            .iter()
            .chain(&self.0.handshake_properties)
            .find(|(p, _)| p.iter().map(String::as_str).eq(path.iter().copied()))
            .map(|(_, v)| v.clone())
    }
}

/// Where the harness (the filter) and the native engine differ; empty when
/// they agree.
pub fn disagreements(outcome: &Outcome, request: &Request, policy: &Policy, native: &Decision<'_>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(fault) = &outcome.fault {
        out.push(format!("the filter faulted: {fault}"));
        return out;
    }
    let text = outcome.filter_state_str(FILTER_STATE_KEY).unwrap_or_default();
    let record = Record::parse(text.as_bytes()).ok();
    let mut differ = |what: &str, filter: String, engine: String| {
        if filter != engine {
            out.push(format!("{what}: the filter says {filter}, the native engine {engine}"));
        }
    };
    let opt = |v: Option<&str>| v.unwrap_or("none").to_owned();
    let joined = |names: &[Cow<'_, str>]| names.join(", ");
    let r = record.as_ref();
    differ("decision", opt(r.map(|r| r.decision.as_str())), native.outcome.as_str().to_owned());
    differ("reason", opt(r.map(|r| &*r.reason)), native.reason.as_str().to_owned());
    differ("policy", opt(r.and_then(|r| r.policy.as_deref())), opt(native.policy));
    differ(
        "rule",
        opt(r.and_then(|r| r.rule).map(|n| n.to_string()).as_deref()),
        opt(native.rule.map(|n| n.to_string()).as_deref()),
    );
    differ("service", opt(r.and_then(|r| r.service.as_deref())), opt(native.service));
    differ("principal", opt(r.and_then(|r| r.principal.as_deref())), opt(native.principal.as_deref()));
    differ("dryRun", r.map(|r| joined(&r.dry_run)).unwrap_or_default(), native.dry_run.join(", "));
    differ("audit", r.map(|r| joined(&r.audit)).unwrap_or_default(), native.audit.join(", "));

    let forwarded = outcome.forwarded.as_ref().and_then(|f| f.header(":path"));
    let native_forward =
        native.is_allowed().then(|| native.forward_path.clone().or_else(|| request.header_value(":path"))).flatten();
    differ("forwarded path", opt(forwarded.as_deref()), opt(native_forward.as_deref()));
    let local = outcome.local_response.as_ref().map(|l| l.status.to_string());
    let native_status = policy.response_for(native).map(|r| r.status.to_string());
    differ("local response", opt(local.as_deref()), opt(native_status.as_deref()));
    out
}

fn action_word(action: Action, dry_run: bool) -> String {
    let word = match action {
        Action::Allow => "ALLOW",
        Action::Deny => "DENY",
        Action::Audit => "AUDIT",
    };
    if dry_run {
        format!("{word} (dry-run)")
    } else {
        word.to_owned()
    }
}

/// The explanation: the decision as the filter made it, then the trail.
/// `document` is the policy as JSON, to show each rule as written.
pub fn render(
    request: &Request,
    outcome: &Outcome,
    native: &Decision<'_>,
    trace: &Trace<'_>,
    document: &Value,
) -> String {
    let mut s = String::new();
    let header = |name: &str| request.header_value(name).unwrap_or_default();
    let _ = writeln!(s, "request    {} {}{}", header(":method"), header(":authority"), header(":path"));
    if let Some(san) = request
        .properties
        .iter()
        .find(|(p, _)| p == &["connection", "uri_san_peer_certificate"])
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    {
        let _ = writeln!(s, "           peer certificate {san}");
    }
    if let Some(addr) = request
        .properties
        .iter()
        .find(|(p, _)| p == &["source", "address"])
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    {
        let _ = writeln!(s, "           source address {addr}");
    }
    // What the filter saw, as Envoy hands it over (Envoy adds the
    // x-forwarded-* headers, x-request-id, x-forwarded-client-cert).
    for (name, value) in request.headers.iter().filter(|(n, _)| !n.starts_with(':')) {
        let value = String::from_utf8_lossy(value);
        let shown = match value.char_indices().nth(96) {
            Some((cut, _)) => format!("{}… ({} bytes)", &value[..cut], value.len()),
            None => value.into_owned(),
        };
        let _ = writeln!(s, "           header {name}: {shown}");
    }
    let port = request
        .properties
        .iter()
        .find(|(p, _)| p == &["destination", "port"])
        .and_then(|(_, v)| <[u8; 8]>::try_from(v.as_slice()).ok())
        .map_or_else(|| "-".to_owned(), |le| u64::from_le_bytes(le).to_string());
    let _ = writeln!(s, "           :scheme {}, destination port {port}", header(":scheme"));

    let text = outcome.filter_state_str(FILTER_STATE_KEY);
    let record = text.as_deref().and_then(|t| Record::parse(t.as_bytes()).ok());
    let r = record.as_ref();
    let field = |value: Option<&str>| value.unwrap_or("-").to_owned();
    if let Some(fault) = &outcome.fault {
        let _ = writeln!(s, "outcome    the filter faulted: {fault}");
    } else if let Some(local) = &outcome.local_response {
        let _ = writeln!(
            s,
            "outcome    refused: {} {}",
            local.status,
            local.header(DECISION_HEADER).map(|h| format!("({DECISION_HEADER}: {h})")).unwrap_or_default()
        );
    } else {
        let _ = writeln!(s, "outcome    forwarded upstream");
    }
    let _ = writeln!(s, "decision   {}", field(r.map(|r| r.decision.as_str())));
    let _ = writeln!(s, "reason     {}", field(r.map(|r| &*r.reason)));
    let _ = writeln!(s, "policy     {}", field(r.and_then(|r| r.policy.as_deref())));
    let _ = writeln!(s, "rule       {}", field(r.and_then(|r| r.rule).map(|n| n.to_string()).as_deref()));
    let _ = writeln!(s, "service    {}", field(r.and_then(|r| r.service.as_deref())));
    let _ = writeln!(s, "principal  {}", field(r.and_then(|r| r.principal.as_deref())));
    let forwarded = outcome.forwarded.as_ref().and_then(|f| f.header(":path"));
    let _ = writeln!(s, "forwarded  {}", forwarded.as_deref().unwrap_or("nothing"));
    for (names, label) in [(r.map(|r| &r.dry_run), "dry-run"), (r.map(|r| &r.audit), "audit")] {
        if let Some(names) = names.filter(|n| !n.is_empty()) {
            let _ = writeln!(s, "{label:<10} {}", names.join(", "));
        }
    }
    let _ = writeln!(s, "record     {}", text.as_deref().unwrap_or("none"));
    trail(&mut s, native, trace, document);
    s
}

/// The explanation of a connection: what the network filter knew of it,
/// its decision as the filter made it, then the trail (under Istio's TCP
/// semantics).
pub fn render_connection(
    connection: &warden_harness::Connection,
    outcome: &warden_harness::ConnectionOutcome,
    native: &Decision<'_>,
    trace: &Trace<'_>,
    document: &Value,
) -> String {
    let mut s = String::new();
    let attrs = ConnectionAttributes(connection);
    let text = |path: &[&str]| attrs.property(path).map(|v| String::from_utf8_lossy(&v).into_owned());
    let port = attrs
        .property(&["destination", "port"])
        .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
        .map_or_else(|| "-".to_owned(), |le| u64::from_le_bytes(le).to_string());
    let sni = text(&["connection", "requested_server_name"]).unwrap_or_else(|| "none".into());
    let _ = writeln!(s, "connection sni {sni}, destination port {port}");
    if let Some(san) = text(&["connection", "uri_san_peer_certificate"]) {
        let _ = writeln!(s, "           peer certificate {san} (after the TLS handshake)");
    }
    if let Some(addr) = text(&["source", "address"]) {
        let _ = writeln!(s, "           source address {addr}");
    }
    let state = outcome.filter_state_str(FILTER_STATE_KEY);
    let record = state.as_deref().and_then(|t| Record::parse(t.as_bytes()).ok());
    let r = record.as_ref();
    let field = |value: Option<&str>| value.unwrap_or("-").to_owned();
    let closed = matches!(
        outcome.closed,
        Some(warden_harness::ClosedBy::FilterDownstream | warden_harness::ClosedBy::FilterUpstream)
    );
    if let Some(fault) = &outcome.fault {
        let _ = writeln!(s, "outcome    the filter faulted: {fault}");
    } else if closed && outcome.forwarded.is_empty() {
        let upstream =
            if outcome.upstream_connected { "no byte reached the upstream" } else { "no upstream connection" };
        let _ = writeln!(s, "outcome    closed by the filter: {upstream}");
    } else if outcome.upstream_connected {
        let _ = writeln!(s, "outcome    passed on to the upstream");
    } else {
        let _ = writeln!(s, "outcome    neither passed on nor closed");
    }
    let _ = writeln!(s, "decision   {}", field(r.map(|r| r.decision.as_str())));
    let _ = writeln!(s, "reason     {}", field(r.map(|r| &*r.reason)));
    let _ = writeln!(s, "policy     {}", field(r.and_then(|r| r.policy.as_deref())));
    let _ = writeln!(s, "rule       {}", field(r.and_then(|r| r.rule).map(|n| n.to_string()).as_deref()));
    let _ = writeln!(s, "service    {}", field(r.and_then(|r| r.service.as_deref())));
    let _ = writeln!(s, "principal  {}", field(r.and_then(|r| r.principal.as_deref())));
    for (names, label) in [(r.map(|r| &r.dry_run), "dry-run"), (r.map(|r| &r.audit), "audit")] {
        if let Some(names) = names.filter(|n| !n.is_empty()) {
            let _ = writeln!(s, "{label:<10} {}", names.join(", "));
        }
    }
    let _ = writeln!(s, "record     {}", state.as_deref().unwrap_or("none"));
    trail(&mut s, native, trace, document);
    s
}

/// Where the filter and the native engine differ on a connection; empty
/// when they agree.
pub fn connection_disagreements(outcome: &warden_harness::ConnectionOutcome, native: &Decision<'_>) -> Vec<String> {
    if let Some(fault) = &outcome.fault {
        return vec![format!("the filter faulted: {fault}")];
    }
    let filter = outcome.filter_state_str(FILTER_STATE_KEY).unwrap_or_default();
    let engine = native.record();
    if filter == engine {
        Vec::new()
    } else {
        vec![format!("record: the filter says {filter}, the native engine {engine}")]
    }
}

/// The trail: host and port as matched, the service, each applicable
/// policy and which of its rules matched, and the verdict.
fn trail(s: &mut String, native: &Decision<'_>, trace: &Trace<'_>, document: &Value) {
    let _ = writeln!(s, "trail");
    if trace.host.is_empty() && trace.port == 0 {
        let _ = writeln!(s, "  refused before matching: {}", native.reason.as_str());
        return;
    }
    if native.outcome == warden_engine::Outcome::BadRequest {
        let _ = writeln!(s, "  refused as a bad request: {}", native.reason.as_str());
        return;
    }
    if trace.method.is_empty() && trace.path.is_empty() {
        let host = if trace.host.is_empty() { "none" } else { &trace.host };
        let _ = writeln!(s, "  server name {host}, port {} (a connection: Istio's TCP semantics)", trace.port);
    } else {
        let _ = writeln!(s, "  host {}, port {}, method {}, path {}", trace.host, trace.port, trace.method, trace.path);
    }
    match trace.service {
        Some(service) => {
            let _ = writeln!(s, "  service {service}");
        }
        None if trace.host.is_empty() => {
            let _ = writeln!(s, "  no server name: no service to look up");
        }
        None => {
            let _ = writeln!(s, "  no service registers {}:{}", trace.host, trace.port);
        }
    }
    if trace.steps.is_empty() && native.outcome != warden_engine::Outcome::Unregistered {
        let _ = writeln!(s, "  no authorization policy applies");
    }
    let policies = document.get("authorization").and_then(Value::as_array);
    for step in &trace.steps {
        let index = policies
            .and_then(|list| list.iter().position(|p| p.get("name").and_then(Value::as_str) == Some(step.policy)));
        let at = index.map(|i| format!(" (authorization[{i}])")).unwrap_or_default();
        let matched = step.rules.iter().any(|m| *m);
        let verdict = if step.rules.is_empty() {
            "no rules: never matches"
        } else if matched {
            "matches"
        } else {
            "does not match"
        };
        let _ = writeln!(s, "  {} {}{at}: {verdict}", action_word(step.action, step.dry_run), step.policy);
        let raw_rules =
            index.and_then(|i| policies.and_then(|l| l.get(i))).and_then(|p| p.get("rules")).and_then(Value::as_array);
        for (j, hit) in step.rules.iter().enumerate() {
            let deciding = native.policy == Some(step.policy) && native.rule == Some(j);
            let mark = if deciding {
                "decides"
            } else if *hit {
                "matches"
            } else {
                "-"
            };
            let text = raw_rules.and_then(|r| r.get(j)).map(Value::to_string).unwrap_or_default();
            let _ = writeln!(s, "    rules[{j}] {mark:<7} {text}");
        }
    }
    let _ = writeln!(s, "  → {}", verdict(native));
}

/// Why the engine decided as it did, in one line.
fn verdict(d: &Decision<'_>) -> String {
    let at = |policy: Option<&str>, rule: Option<usize>| {
        format!("{} rules[{}]", policy.unwrap_or("?"), rule.map_or_else(|| "?".to_owned(), |r| r.to_string()))
    };
    match d.reason {
        Reason::AllowPolicy => format!("allowed by {}", at(d.policy, d.rule)),
        Reason::NoPolicy => "allowed: no ALLOW policy applies and no DENY policy matched".to_owned(),
        Reason::DenyPolicy => format!("denied by {}", at(d.policy, d.rule)),
        Reason::NoAllowMatch => "denied: ALLOW policies apply and none matched".to_owned(),
        Reason::Unregistered => "unregistered: outboundTrafficPolicy is REGISTRY_ONLY".to_owned(),
        Reason::NoServerName => {
            "unregistered: no server name (SNI) to look up, and outboundTrafficPolicy is REGISTRY_ONLY".to_owned()
        }
        other => format!("{}: {}", d.outcome.as_str(), other.as_str()),
    }
}
