//! The example policies under `policies/`, as the filter takes them: JSON
//! (Istio hands a WasmPlugin's `pluginConfig` to the filter as JSON).

use std::path::PathBuf;

use serde_json::Value;

/// The policy document `policies/<name>/policy.yaml`, as JSON, read the way
/// the CLI reads policy files.
pub fn example(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("policies").join(name).join("policy.yaml");
    let config = warden::config::load_config(&path).unwrap_or_else(|e| panic!("{e}"));
    serde_json::from_slice(&config).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `policy` with the value at JSON pointer `pointer` (e.g.
/// `/authorization/0/rules/0/to/0/operation/paths/0`) replaced.
pub fn with(mut policy: Value, pointer: &str, value: Value) -> Value {
    let slot = policy.pointer_mut(pointer).unwrap_or_else(|| panic!("the policy has nothing at {pointer}"));
    *slot = value;
    policy
}
