//! What the engine decided about one request, and the one-line record that
//! goes into Envoy's filter state.

use crate::dlp::body::BodyScan;
use crate::dlp::policy::{Finding, Location, MAX_LOCATIONS};
use crate::document::DlpAction;
use crate::normalize::BadRequest;

/// The outcome of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The request goes on upstream.
    Allow,
    /// An authorization policy refused it.
    Denied,
    /// The host (and port) is not in the registry.
    Unregistered,
    /// The request is malformed or its path ambiguous.
    BadRequest,
    /// DLP refused it.
    DlpBlocked,
}

impl Outcome {
    /// The word used in `x-warden-decision` and in the record.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allow => "allow",
            Outcome::Denied => "denied",
            Outcome::Unregistered => "unregistered",
            Outcome::BadRequest => "bad-request",
            Outcome::DlpBlocked => "dlp",
        }
    }
}

/// Why the outcome is what it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Reason {
    /// A rule of an ALLOW policy matched.
    AllowPolicy,
    /// No ALLOW policy applies to the request, and no DENY matched.
    #[default]
    NoPolicy,
    /// A rule of a DENY policy matched.
    DenyPolicy,
    /// ALLOW policies apply, but none matched.
    NoAllowMatch,
    /// Not in the registry.
    Unregistered,
    /// Malformed request.
    BadRequest(BadRequest),
    /// The filter has no valid configuration and refuses everything.
    NoConfig,
    /// A BLOCK DLP policy found something.
    DlpFinding,
    /// A held body could not be scanned whole (over `maxBodyBytes`, an
    /// unknown content-encoding, corrupt compression) and `onOversize` is
    /// BLOCK.
    DlpUnscannable,
    /// A REDACT finding in a compressed body, which cannot be masked in
    /// place.
    DlpUnredactable,
    /// Enforced rules match on the caller's identity, and a peer
    /// certificate was presented whose names cannot all be read.
    UnverifiableIdentity,
    /// Enforced rules match on the caller's address, and Envoy does not
    /// show it (the direct peer, when Envoy took `source.address` from
    /// `x-forwarded-for`).
    UnknownAddress,
}

impl Reason {
    /// A short machine-readable reason.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::AllowPolicy => "allow-policy",
            Reason::NoPolicy => "no-policy",
            Reason::DenyPolicy => "deny-policy",
            Reason::NoAllowMatch => "no-allow-match",
            Reason::Unregistered => "unregistered",
            Reason::BadRequest(b) => b.reason(),
            Reason::NoConfig => "no-config",
            Reason::DlpFinding => "dlp-finding",
            Reason::DlpUnscannable => "dlp-unscannable",
            Reason::DlpUnredactable => "dlp-unredactable",
            Reason::UnverifiableIdentity => "unverifiable-identity",
            Reason::UnknownAddress => "unknown-address",
        }
    }
}

/// A decision, borrowing names from the policy that made it.
#[derive(Debug)]
pub struct Decision<'p> {
    /// Allow or which refusal.
    pub outcome: Outcome,
    /// Why.
    pub reason: Reason,
    /// The matched service, if any.
    pub service: Option<&'p str>,
    /// The deciding authorization policy, if one decided.
    pub policy: Option<&'p str>,
    /// The index of the deciding rule within that policy.
    pub rule: Option<usize>,
    /// The caller's principal, `spiffe://` stripped.
    pub principal: Option<String>,
    /// Dry-run policies that would have refused the request.
    pub dry_run: Vec<&'p str>,
    /// AUDIT policies that matched.
    pub audit: Vec<&'p str>,
    /// The `:path` to forward (normalized, query re-attached, REDACT
    /// applied) when it differs from the one received.
    pub forward_path: Option<String>,
    /// DLP findings in the headers and the request target.
    pub findings: Vec<Finding>,
    /// Headers to replace (name, masked value): before forwarding
    /// (REDACT), or before refusing (BLOCK), so that Envoy's access log of
    /// the request does not show what was found. `forward_path` is masked
    /// the same way.
    pub header_edits: Vec<(String, String)>,
    /// The body scan, when DLP policies scan the body of an allowed
    /// request that has one; the filter feeds it the body and writes its
    /// record when done.
    pub body: Option<BodyScan>,
}

/// Equal when everything decided is equal; body scans compare by presence
/// (their state is still to come).
impl PartialEq for Decision<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.outcome == other.outcome
            && self.reason == other.reason
            && self.service == other.service
            && self.policy == other.policy
            && self.rule == other.rule
            && self.principal == other.principal
            && self.dry_run == other.dry_run
            && self.audit == other.audit
            && self.forward_path == other.forward_path
            && self.findings == other.findings
            && self.header_edits == other.header_edits
            && self.body.is_some() == other.body.is_some()
    }
}

impl<'p> Decision<'p> {
    pub(crate) fn allowed(reason: Reason) -> Self {
        Self::new(Outcome::Allow, reason, None)
    }

    pub(crate) fn refused(outcome: Outcome, reason: Reason, principal: Option<String>) -> Self {
        Self::new(outcome, reason, principal)
    }

    fn new(outcome: Outcome, reason: Reason, principal: Option<String>) -> Self {
        Decision {
            outcome,
            reason,
            service: None,
            policy: None,
            rule: None,
            principal,
            dry_run: Vec::new(),
            audit: Vec::new(),
            forward_path: None,
            findings: Vec::new(),
            header_edits: Vec::new(),
            body: None,
        }
    }

    /// The decision of a filter that has no valid configuration.
    pub fn no_config() -> Decision<'static> {
        Decision::new(Outcome::Denied, Reason::NoConfig, None)
    }

    /// Whether the request goes on upstream.
    pub fn is_allowed(&self) -> bool {
        self.outcome == Outcome::Allow
    }

    /// Whether a DLP finding was redacted in the headers or the target.
    pub fn redacted(&self) -> bool {
        self.is_allowed() && self.findings.iter().any(|f| f.action == DlpAction::Redact)
    }

    /// Whether anything was recorded for audit: an AUDIT policy matched or
    /// a DLP finding was only recorded.
    pub fn audited(&self) -> bool {
        !self.audit.is_empty() || self.findings.iter().any(|f| f.action == DlpAction::Audit)
    }

    /// The one-line JSON record for `wasm.warden.decision`:
    /// `{"decision","reason","policy","rule","service","principal","findings","dryRun","audit"}`,
    /// plus `findingsAt` (where each finding was made: header name,
    /// `path`, `query`, `body` offset) when there are findings, and
    /// `bodyUnscanned` when a body went on without being scanned whole.
    /// It never contains request data beyond the principal and header
    /// names, and never a matched secret.
    ///
    /// Written by hand rather than through serde: it is built for every
    /// request inside the VM, where serde's formatting machinery measured
    /// several microseconds per request in Envoy's V8 (see PERFORMANCE.md).
    /// A test checks it against serde_json.
    pub fn record(&self) -> String {
        let fields = RecordFields {
            outcome: self.outcome,
            reason: self.reason,
            policy: self.policy,
            rule: self.rule,
            service: self.service,
            principal: self.principal.as_deref(),
            dry_run: &self.dry_run,
            audit: &self.audit,
            findings: &self.findings,
            more_findings: &[],
            unscanned: false,
        };
        fields.write()
    }

    /// Moves the body scan out, giving it what it needs to write the final
    /// record.
    pub fn take_body(&mut self) -> Option<BodyScan> {
        let mut body = self.body.take()?;
        body.base = RecordBase {
            reason: self.reason,
            service: self.service.map(str::to_owned),
            policy: self.policy.map(str::to_owned),
            rule: self.rule,
            principal: self.principal.clone(),
            dry_run: self.dry_run.iter().map(|s| (*s).to_owned()).collect(),
            audit: self.audit.iter().map(|s| (*s).to_owned()).collect(),
            findings: std::mem::take(&mut self.findings),
        };
        Some(body)
    }
}

/// The header-time decision, owned, for a body scan's final record.
#[derive(Debug, Clone, Default)]
pub(crate) struct RecordBase {
    pub(crate) reason: Reason,
    pub(crate) service: Option<String>,
    pub(crate) policy: Option<String>,
    pub(crate) rule: Option<usize>,
    pub(crate) principal: Option<String>,
    pub(crate) dry_run: Vec<String>,
    pub(crate) audit: Vec<String>,
    pub(crate) findings: Vec<Finding>,
}

impl RecordBase {
    /// The record with the body's outcome and findings.
    pub(crate) fn record(&self, outcome: Outcome, reason: Reason, body: &[Finding], unscanned: bool) -> String {
        let refused = outcome != Outcome::Allow;
        let mut audit: Vec<&str> = self.audit.iter().map(String::as_str).collect();
        for f in self.findings.iter().chain(body) {
            if f.action == DlpAction::Audit && !audit.contains(&f.policy.as_str()) {
                audit.push(&f.policy);
            }
        }
        let dry_run: Vec<&str> = self.dry_run.iter().map(String::as_str).collect();
        RecordFields {
            outcome,
            reason,
            policy: self.policy.as_deref(),
            rule: if refused { None } else { self.rule },
            service: self.service.as_deref(),
            principal: self.principal.as_deref(),
            dry_run: &dry_run,
            audit: &audit,
            findings: &self.findings,
            more_findings: body,
            unscanned,
        }
        .write()
    }
}

/// Everything a record shows, borrowed.
struct RecordFields<'a> {
    outcome: Outcome,
    reason: Reason,
    policy: Option<&'a str>,
    rule: Option<usize>,
    service: Option<&'a str>,
    principal: Option<&'a str>,
    dry_run: &'a [&'a str],
    audit: &'a [&'a str],
    findings: &'a [Finding],
    more_findings: &'a [Finding],
    unscanned: bool,
}

impl RecordFields<'_> {
    fn write(&self) -> String {
        let mut out = String::with_capacity(160);
        out.push_str("{\"decision\":\"");
        out.push_str(self.outcome.as_str());
        out.push_str("\",\"reason\":\"");
        out.push_str(self.reason.as_str());
        out.push_str("\",\"policy\":");
        push_opt_str(&mut out, self.policy);
        out.push_str(",\"rule\":");
        match self.rule {
            Some(rule) => out.push_str(itoa::Buffer::new().format(rule)),
            None => out.push_str("null"),
        }
        out.push_str(",\"service\":");
        push_opt_str(&mut out, self.service);
        out.push_str(",\"principal\":");
        push_opt_str(&mut out, self.principal);
        out.push_str(",\"findings\":");
        let all = || self.findings.iter().chain(self.more_findings);
        let mut ids: Vec<&str> = Vec::new();
        for f in all() {
            if !ids.contains(&f.detector.as_str()) {
                ids.push(&f.detector);
            }
        }
        push_str_list(&mut out, &ids);
        out.push_str(",\"dryRun\":");
        push_str_list(&mut out, self.dry_run);
        out.push_str(",\"audit\":");
        push_str_list(&mut out, self.audit);
        if !ids.is_empty() {
            out.push_str(",\"findingsAt\":[");
            for (i, f) in all().take(MAX_LOCATIONS).enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"id\":");
                push_json_str(&mut out, &f.detector);
                out.push_str(",\"in\":");
                match &f.location {
                    Location::Header(name) => {
                        out.push_str("\"header\",\"name\":");
                        push_json_str(&mut out, name);
                    }
                    Location::HeaderName => out.push_str("\"header-name\""),
                    Location::Path => out.push_str("\"path\""),
                    Location::Query => out.push_str("\"query\""),
                    Location::Body(offset) => {
                        out.push_str("\"body\",\"offset\":");
                        out.push_str(itoa::Buffer::new().format(*offset));
                    }
                }
                out.push_str(",\"action\":\"");
                out.push_str(match f.action {
                    DlpAction::Block => "BLOCK",
                    DlpAction::Redact => "REDACT",
                    DlpAction::Audit => "AUDIT",
                });
                out.push_str("\"}");
            }
            out.push(']');
        }
        if self.unscanned {
            out.push_str(",\"bodyUnscanned\":true");
        }
        out.push('}');
        out
    }
}

fn push_opt_str(out: &mut String, value: Option<&str>) {
    match value {
        Some(v) => push_json_str(out, v),
        None => out.push_str("null"),
    }
}

fn push_str_list(out: &mut String, values: &[&str]) {
    out.push('[');
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_str(out, v);
    }
    out.push(']');
}

/// A JSON string literal (RFC 8259 §7): `"` and `\\` escaped, control
/// characters as `\\u00XX`; everything else, non-ASCII included, as is.
fn push_json_str(out: &mut String, value: &str) {
    out.push('"');
    let mut rest = value;
    while let Some(i) = rest.find(|c: char| c == '"' || c == '\\' || c < ' ') {
        out.push_str(rest.get(..i).unwrap_or_default());
        let c = rest.get(i..).and_then(|r| r.chars().next()).unwrap_or(' ');
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => {
                out.push_str("\\u00");
                let b = c as u8;
                for nibble in [b >> 4, b & 0xf] {
                    out.push(char::from_digit(u32::from(nibble), 16).unwrap_or('0'));
                }
            }
        }
        rest = rest.get(i + 1..).unwrap_or_default();
    }
    out.push_str(rest);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The record, parsed back, equals what serde_json makes of the fields.
    #[test]
    fn record_is_valid_json_with_every_field() {
        let nasty = "cluster.local/ns/\"quoted\"/sa/back\\slash\u{1}\n\tü";
        let mut d = Decision::new(Outcome::Denied, Reason::DenyPolicy, Some(nasty.to_owned()));
        d.policy = Some("deny \"this\"");
        d.rule = Some(12);
        d.service = Some("httpbin.org");
        d.dry_run = vec!["a", "b\\"];
        d.audit = vec!["x"];
        let parsed: serde_json::Value = serde_json::from_str(&d.record()).unwrap();
        let expected = serde_json::json!({
            "decision": "denied", "reason": "deny-policy", "policy": "deny \"this\"", "rule": 12,
            "service": "httpbin.org", "principal": nasty, "findings": [], "dryRun": ["a", "b\\"], "audit": ["x"]
        });
        assert_eq!(parsed, expected);
        assert!(!d.record().contains('\n'));

        let empty = Decision::new(Outcome::Allow, Reason::NoPolicy, None);
        let parsed: serde_json::Value = serde_json::from_str(&empty.record()).unwrap();
        assert_eq!(parsed["policy"], serde_json::Value::Null);
        assert_eq!(parsed["rule"], serde_json::Value::Null);
        assert_eq!(parsed["dryRun"], serde_json::json!([]));
    }
}
