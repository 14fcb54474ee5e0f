//! Warden's off-cluster tooling: the `warden` CLI.

pub mod cli;
