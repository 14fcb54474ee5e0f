//! Damaged bundles: whatever follows the magic and the format version,
//! decoding never panics, and a bundle that decodes decides without
//! panicking.

#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use warden_engine::bundle;

fuzz_target!(|data: &[u8]| {
    let mut bytes = bundle::MAGIC.to_vec();
    bytes.extend(bundle::FORMAT_VERSION.to_le_bytes());
    bytes.extend_from_slice(data);
    let Ok(policy) = bundle::decode(&bytes) else { return };
    for request in common::requests() {
        let _ = policy.decide(&request).record();
    }
});
