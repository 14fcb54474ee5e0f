//! `warden test`: the cases of `*.test.yaml` files through the compiled filter.

use super::artifacts::start_host;
use super::exit::{CliError, Exit, EXIT_FAILED, EXIT_OK};
use super::notes::Notes;
use crate::display::shown;
use crate::testing::coverage;
use crate::testing::report::{self, Totals};
use crate::testing::runner::{self, Options};
use crate::testing::testfile;
use clap::{Args, ValueEnum};
use std::io::{self, Write};
use std::path::PathBuf;

pub(super) const ABOUT: &str = "\
Run the cases of *.test.yaml files through the compiled filter.

Finds every *.test.yaml under the paths (default: the current directory), loads the policy each
names, and sends every case through the filter in the harness (wasmtime), one VM per test file
shared by its cases like one Envoy worker (--isolate: a fresh VM per case).

Each request is sent as a workload's call through its sidecar to port 80: Envoy's
destination.port is 80, so a port-less authority is looked up on port 80 and an explicit
port (api.stripe.com:443) wins. A case with a principal arrives over mTLS (:scheme https)
with that principal as the peer certificate's URI SAN (spiffe:// added if absent); sourceIp
becomes source.address; a body comes with its content-length, bodyChunks as separate chunks.
This is how the end-to-end tests send the same cases to a real Envoy.

Prints one line per case (ok / FAIL), the request, expected and actual outcome of each
failure, and a closing line `N passed, M failed`.

Exit codes: 0 every case passed, 1 a case failed, 2 usage or input error (unreadable test
file, invalid policy, no test files found).";

/// Output formats of `warden test`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(super) enum Format {
    /// One line per case, failures in detail, a closing line.
    Human,
    /// One JSON document with every case's result.
    Json,
    /// JUnit XML, one testsuite per test file.
    Junit,
}

#[derive(Args)]
pub(super) struct TestArgs {
    /// Test files, or directories to search for *.test.yaml [default: .]
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Test this build of the filter instead of the one built into warden.
    #[arg(long, value_name = "FILE.wasm")]
    filter: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// After the run, list the rules and services no case touched, per policy file.
    #[arg(long)]
    coverage: bool,
    /// A fresh VM for every case (default: one VM per test file).
    #[arg(long)]
    isolate: bool,
}

pub(super) fn test(args: TestArgs, wasm: &[u8], notes: &mut Notes, out: &mut dyn Write, err: &mut dyn Write) -> Exit {
    let roots = if args.paths.is_empty() { vec![PathBuf::from(".")] } else { args.paths };
    for root in &roots {
        if !root.exists() {
            return Err(CliError::Input(format!("{}: no such file or directory", shown(root))));
        }
    }
    let mut files: Vec<PathBuf> = roots.iter().flat_map(|r| testfile::discover(r)).collect();
    files.sort();
    files.dedup();
    if files.is_empty() {
        let list: Vec<String> = roots.iter().map(|r| shown(r)).collect();
        return Err(CliError::Input(format!("no *.test.yaml files under {}", list.join(", "))));
    }
    let host = start_host(args.filter.as_deref(), wasm)?;

    let options = Options { isolate: args.isolate, strict: notes.strict };
    let mut runs = Vec::with_capacity(files.len());
    for file in &files {
        let run = runner::run_file(&host, file, &options);
        notes.print(&run.notes, err)?;
        if let Err(e) = &run.result {
            writeln!(err, "error: {e}")?;
        }
        if args.format == Format::Human {
            report::human_file(out, &run)?;
        }
        runs.push(run);
    }
    let totals = Totals::of(&runs);
    let coverage = args.coverage.then(|| coverage::compute(&runs));
    match args.format {
        Format::Human => {
            if let Some(c) = &coverage {
                report::human_coverage(out, c)?;
            }
            writeln!(out, "{}", totals.closing_line())?;
        }
        Format::Json => {
            let doc = report::json_report(&runs, coverage.as_deref());
            serde_json::to_writer_pretty(&mut *out, &doc).map_err(io::Error::other)?;
            writeln!(out)?;
        }
        Format::Junit => {
            let xml = report::junit_report(&runs).to_string().map_err(io::Error::other)?;
            writeln!(out, "{xml}")?;
            if let Some(c) = &coverage {
                report::human_coverage(err, c)?;
            }
        }
    }
    if totals.errors > 0 {
        let files = if totals.errors == 1 { "file" } else { "files" };
        return Err(CliError::Input(format!("{} test {files} could not be run", totals.errors)));
    }
    Ok(if totals.failed > 0 { EXIT_FAILED } else { EXIT_OK })
}
