//! What the engine decided about one request. The record the filter writes
//! of it, and the words it uses, are in [`crate::record`].

use crate::dlp::body::BodyScan;
use crate::dlp::finding::Finding;
use crate::document::DlpAction;
use crate::record::{Outcome, Reason, RecordBase, RecordFields};

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
            more_findings: [&[], &[]],
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
