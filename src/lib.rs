//! Warden: an egress policy filter for Envoy.
//!
//! This root crate ties the workspace together: it carries the compiled
//! filter (`warden.wasm`, built from `filter/` by `build.rs`) and re-exports
//! the engine and the harness, so the `warden` binary and the integration
//! tests all run the filter that is in the tree.

pub use warden_engine as engine;
pub use warden_harness as harness;

/// Path of the filter built for this tree (`wasm32-wasip1`, size-optimised).
pub const FILTER_WASM_PATH: &str = env!("WARDEN_WASM");

/// The filter module itself, embedded so the CLI can write it out or run it.
pub static FILTER_WASM: &[u8] = include_bytes!(env!("WARDEN_WASM"));
