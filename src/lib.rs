//! Warden: an egress policy filter for Envoy, and the `warden` command
//! line that tests, checks, explains, replays and ships its policies
//! off-cluster by running the compiled filter in a proxy-wasm host.
//!
//! The work is split by job, and each crate may use only those below it:
//!
//! - [`engine`] (`warden-engine`): parse, validate, compile and decide a
//!   policy; DLP. No proxy dependency.
//! - `warden-filter`: the proxy-wasm glue around the engine, compiled to
//!   `warden.wasm` by `build.rs`.
//! - [`config`] (`warden-config`): policy files as users keep them
//!   (`warden/v1` YAML or JSON, Istio resources) read into the filter's
//!   configuration.
//! - [`harness`] (`warden-harness`): a proxy-wasm host on wasmtime that
//!   runs any filter as one Envoy worker would.
//! - this crate: the `warden` commands ([`cli`]), built from the test-file
//!   runner and reports ([`testing`]), [`explain`], [`replay`], the lints
//!   ([`lint`]), what `check` reports with its codes ([`diagnostic`]) and
//!   packaging ([`package`]).
//!
//! `docs/ARCHITECTURE.md` draws the layers and follows one request
//! through them.

pub use warden_config as config;
pub use warden_engine as engine;
pub use warden_harness as harness;

pub mod cli;
pub mod diagnostic;
pub mod diff;
pub mod display;
pub mod explain;
pub mod lint;
pub mod package;
pub mod replay;
pub mod testing;

/// The JUnit data model `warden test --format junit` writes with, re-exported
/// so callers can read reports back (`quick_junit::Report::deserialize_from_str`).
pub use quick_junit;

/// Path of the filter built for this tree (`wasm32-wasip1`, size-optimised).
pub const FILTER_WASM_PATH: &str = env!("WARDEN_WASM");

/// The filter module itself, embedded so the CLI can write it out or run it.
pub static FILTER_WASM: &[u8] = include_bytes!(env!("WARDEN_WASM"));
