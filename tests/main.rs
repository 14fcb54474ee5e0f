//! Warden's integration tests, compiled into one test binary.
//!
//! `cargo test` from the repository root runs them all; `cargo test --test
//! main e2e` runs only the end-to-end tests against a real Envoy (see
//! `e2e/mod.rs`).

// A test fails by panicking, and `expect` with a message is how the
// fixtures report what went wrong. clippy.toml allows both inside #[test]
// functions only; the fixtures around them need the same.
#![allow(clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod cli;
mod e2e;
mod harness;
