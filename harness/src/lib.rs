//! Warden's off-cluster tooling: reading policy files (YAML or JSON, bare
//! or in a Kubernetes envelope), the `*.test.yaml` test-file format, and
//! the `warden` CLI.

pub mod cli;
pub mod host;
pub mod policy_file;
pub mod testfile;
