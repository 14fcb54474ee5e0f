//! Any configuration bytes: a JSON policy or a bundle. Loading never
//! panics; a policy that loads decides every request without panicking,
//! and its compiled bundle decides exactly as it does.

#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use warden_engine::{bundle, compile};

fuzz_target!(|data: &[u8]| {
    let Ok(policy) = compile::load(data) else { return };
    let encoded = bundle::encode(&policy).expect("a loaded policy encodes");
    let decoded = bundle::decode(&encoded).expect("its bundle decodes");
    for request in common::requests() {
        assert_eq!(policy.decide(&request).record(), decoded.decide(&request).record());
        let (decision, _) = policy.explain(&request);
        assert_eq!(decision.record(), policy.decide(&request).record(), "explain decides as decide");
    }
});
