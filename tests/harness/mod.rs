//! The harness running Warden's compiled filter, and other filters (built
//! from `tests/filters/`) that prove it runs any proxy-wasm filter.

pub(crate) mod dlp_blocks;
mod dlp_memory;
mod faults;
pub(crate) mod filters;
mod host_functions;
pub(crate) mod network;
mod other_filters;
mod warden;
