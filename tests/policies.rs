//! Each example policy's test file (`policies/**/*.test.yaml`) as a test of
//! its own: its cases through the compiled filter in the harness, as
//! `warden test` runs them, so a failing file is named in `cargo test`'s
//! output. A new test file is a new test; no Rust to write.
//! (`tests/e2e/example_policies.rs` runs the same cases in a real Envoy.)
//! Each file runs twice: its cases sharing one VM, then each in a fresh
//! VM, and both runs must agree case by case (no state carried over
//! between streams).

use std::fmt;
use std::path::Path;
use warden::harness::{Host, HostOptions};
use warden::testing::{report, runner};

/// A failure, shown as `warden test` shows it (the harness prints errors
/// with `Debug`, which would escape the report's lines).
struct Failed(String);

impl fmt::Debug for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failed {}

fn example_policy(path: &Path) -> datatest_stable::Result<()> {
    // The compiled module is cached on disk by its hash: a host per file
    // costs a cache read.
    let host = Host::new(warden::FILTER_WASM, HostOptions::default())?;
    let run = runner::run_file(&host, path, &runner::Options::default());
    if let Err(e) = &run.result {
        return Err(Failed(e.clone()).into());
    }
    if run.cases().is_empty() {
        return Err(Failed(format!("{}: no cases", path.display())).into());
    }
    let failures: Vec<String> = run.cases().iter().filter(|c| !c.passed()).map(report::failure_block).collect();
    if !failures.is_empty() {
        return Err(Failed(format!(
            "{} of {} cases failed:\n{}",
            failures.len(),
            run.cases().len(),
            failures.join("\n")
        ))
        .into());
    }
    // One VM serves every case above, as one Envoy worker serves every
    // stream: nothing a case leaves behind in the VM may change another's
    // outcome. The same cases, each in a fresh VM, must come out the same
    // in every detail the filter shows (status, headers, record, what
    // went upstream).
    let isolated = runner::run_file(&host, path, &runner::Options { isolate: true, ..runner::Options::default() });
    for (shared, fresh) in run.cases().iter().zip(isolated.cases()) {
        if format!("{:?}", shared.actual) != format!("{:?}", fresh.actual) {
            return Err(Failed(format!(
                "{}: case '{}' came out differently after the cases before it in the same VM than in a fresh \
                 VM:\n  shared VM: {:?}\n  fresh VM:  {:?}",
                path.display(),
                shared.name,
                shared.actual,
                fresh.actual
            ))
            .into());
        }
    }
    if isolated.cases().len() != run.cases().len() {
        return Err(Failed(format!("{}: the isolated run has {} cases", path.display(), isolated.cases().len())).into());
    }
    Ok(())
}

datatest_stable::harness! {
    { test = example_policy, root = "policies", pattern = r"\.test\.yaml$" },
}
