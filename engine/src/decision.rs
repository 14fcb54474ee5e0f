//! What the engine decided about one request, and the one-line record that
//! goes into Envoy's filter state (SPEC §5).

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
}

impl Outcome {
    /// The word used in `x-warden-decision` and in the record.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allow => "allow",
            Outcome::Denied => "denied",
            Outcome::Unregistered => "unregistered",
            Outcome::BadRequest => "bad-request",
        }
    }
}

/// Why the outcome is what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// A rule of an ALLOW policy matched.
    AllowPolicy,
    /// No ALLOW policy applies to the request, and no DENY matched.
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
        }
    }
}

/// A decision, borrowing names from the policy that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// The `:path` to forward (normalized, query re-attached) when it
    /// differs from the one received.
    pub forward_path: Option<String>,
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

    /// The one-line JSON record for `wasm.warden.decision`:
    /// `{"decision","reason","policy","rule","service","principal","findings","dryRun","audit"}`.
    /// It never contains request data beyond the principal.
    ///
    /// Written by hand rather than through serde: it is built for every
    /// request inside the VM, where serde's formatting machinery measured
    /// several microseconds per request in Envoy's V8 (see PERFORMANCE.md).
    /// A test checks it against serde_json.
    pub fn record(&self) -> String {
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
        push_opt_str(&mut out, self.principal.as_deref());
        out.push_str(",\"findings\":[],\"dryRun\":");
        push_str_list(&mut out, &self.dry_run);
        out.push_str(",\"audit\":");
        push_str_list(&mut out, &self.audit);
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
