//! The engine's tests against its public API, one binary.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod bundle;
mod bypass;
mod connections;
mod decide;
mod dlp_detectors;
mod dlp_policy;
mod dlp_scanner;
mod fields;
mod identity_and_headers;
mod istio_examples;
mod validate;

use serde_json::{json, Value};
use warden_engine::{compile, Decision, FakeAttributes, Outcome, Policy};

/// Compiles a policy from a JSON value, panicking with the error.
pub fn policy(doc: Value) -> Policy {
    let bytes = serde_json::to_vec(&doc).unwrap();
    compile::load(&bytes).unwrap_or_else(|e| panic!("policy does not compile: {e}"))
}

/// A policy with `httpbin.org` (ports 80, 443) and `*.example.com`
/// registered and the given authorization policies.
pub fn with_authz(authorization: Value) -> Policy {
    policy(json!({
        "name": "test",
        "services": [
            {"name": "httpbin.org", "hosts": ["httpbin.org"], "ports": [80, 443]},
            {"name": "example", "hosts": ["*.example.com", "example.com"]}
        ],
        "authorization": authorization
    }))
}

/// A policy with one ALLOW policy made of `rules`.
pub fn allow(rules: Value) -> Policy {
    with_authz(json!([{"name": "p", "action": "ALLOW", "rules": rules}]))
}

/// A policy with one DENY policy made of `rules`.
pub fn deny(rules: Value) -> Policy {
    with_authz(json!([{"name": "p", "action": "DENY", "rules": rules}]))
}

/// `GET http://httpbin.org/get`.
pub fn get() -> FakeAttributes {
    FakeAttributes::get("httpbin.org", "/get")
}

/// Decides and returns the outcome.
pub fn outcome(policy: &Policy, req: &FakeAttributes) -> Outcome {
    policy.decide(req).outcome
}

/// Decides, for assertions on the whole decision.
pub fn decide<'p>(policy: &'p Policy, req: &FakeAttributes) -> Decision<'p> {
    policy.decide(req)
}
