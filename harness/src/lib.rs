//! Warden's off-cluster tooling: reading policy files (YAML or JSON, bare
//! or in a Kubernetes envelope), the `*.test.yaml` test-file format, a
//! proxy-wasm host that runs the compiled filter, and the `warden` CLI
//! (`test`, `check`, `explain`, `compile`, `wasm`, `oci`, `wasmplugin`,
//! `replay`, `import`), which also reads Istio resources ([`istio`]).

pub mod cli;
pub mod coverage;
pub mod envoy;
pub mod explain;
pub mod host;
pub mod istio;
pub mod lint;
pub mod oci;
pub mod policy_file;
pub mod replay;
pub mod report;
pub mod runner;
pub mod testfile;

/// The JUnit data model `warden test --format junit` writes with, re-exported
/// so callers can read reports back (`quick_junit::Report::deserialize_from_str`).
pub use quick_junit;
pub mod wasmplugin;
