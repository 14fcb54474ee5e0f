//! `warden test`: the cases of `*.test.yaml` files through the compiled filter.

use super::artifacts::start_host;
use super::exit::{CliError, Exit, EXIT_FAILED, EXIT_OK};
use super::notes::Notes;
use super::watch::{ChangeSource, Poll};
use super::Streams;
use crate::display::{shown, shown_list};
use crate::testing::coverage::{self, Total};
use crate::testing::report::{self, Totals};
use crate::testing::runner::{self, Options};
use crate::testing::testfile;
use clap::{Args, ValueEnum};
use std::io;
use std::path::PathBuf;
use warden_harness::Host;

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
failure, and a closing line `N passed, M failed` (`, K filtered out` with --run).

--run REGEX runs only the cases whose name, or `FILE: NAME`, the regex matches. --watch runs
again whenever a test file, or a policy file one names, changes (Ctrl-C stops). --coverage lists
what no case touched and the percentage touched; --threshold PERCENT fails the run below it.

Exit codes: 0 every case passed, 1 a case failed or coverage is below --threshold, 2 usage or
input error (unreadable test file, invalid policy, no test files found, --run matching no
case).";

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
    /// After the run, list the rules and services no case touched, per policy file, and the percentage touched.
    #[arg(long)]
    coverage: bool,
    /// Fail (exit 1) when coverage is below PERCENT (0-100); implies --coverage.
    #[arg(long, value_name = "PERCENT", value_parser = percent)]
    threshold: Option<f64>,
    /// Only the cases whose name, or `FILE: NAME`, this regex matches.
    #[arg(long, value_name = "REGEX")]
    run: Option<String>,
    /// Run again when a test file or a policy file it names changes (Ctrl-C stops).
    #[arg(long)]
    watch: bool,
    /// A fresh VM for every case (default: one VM per test file).
    #[arg(long)]
    isolate: bool,
}

/// `--threshold`: a percentage, 0 to 100.
fn percent(text: &str) -> Result<f64, String> {
    let value: f64 = text.trim().trim_end_matches('%').parse().map_err(|_| format!("'{text}' is not a number"))?;
    if (0.0..=100.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{value} is not a percentage (0-100)"))
    }
}

/// How often `--watch` looks at the files.
const POLL_INTERVAL: std::time::Duration = std::time::Duration::from_millis(300);

pub(super) fn test(args: TestArgs, wasm: &[u8], notes: &mut Notes, streams: Streams<'_>) -> Exit {
    let roots = if args.paths.is_empty() { vec![PathBuf::from(".")] } else { args.paths.clone() };
    for root in &roots {
        if !root.exists() {
            return Err(CliError::Input(format!("{}: no such file or directory", shown(root))));
        }
    }
    let only = match &args.run {
        Some(re) => Some(regex::Regex::new(re).map_err(|e| CliError::Input(format!("--run: {e}")))?),
        None => None,
    };
    let host = start_host(args.filter.as_deref(), wasm)?;
    let options = Options { isolate: args.isolate, strict: notes.strict, only };
    if args.watch {
        let mut changes = Poll::new(roots.clone(), POLL_INTERVAL);
        return watch(&args, &roots, &host, &options, notes, streams, &mut changes);
    }
    run_once(&args, &roots, &host, &options, notes, streams).map(|done| done.code)
}

/// One run: its exit code, and the files it read (test files and the
/// policy files they name), for `--watch`.
struct Done {
    code: i32,
    read: Vec<PathBuf>,
}

fn run_once(
    args: &TestArgs,
    roots: &[PathBuf],
    host: &Host,
    options: &Options,
    notes: &mut Notes,
    streams: Streams<'_>,
) -> Result<Done, CliError> {
    let Streams { out, err, paint_out, paint_err } = streams;
    let mut files: Vec<PathBuf> = roots.iter().flat_map(|r| testfile::discover(r)).collect();
    files.sort();
    files.dedup();
    if files.is_empty() {
        let list: Vec<String> = roots.iter().map(|r| shown(r)).collect();
        return Err(CliError::Input(format!("no *.test.yaml files under {}", list.join(", "))));
    }
    let mut runs = Vec::with_capacity(files.len());
    for file in &files {
        let run = runner::run_file(host, file, options);
        notes.print(&run.notes, err)?;
        if let Err(e) = &run.result {
            writeln!(err, "{}: {e}", paint_err.fail("error"))?;
        }
        if args.format == Format::Human {
            report::human_file(out, &run, paint_out)?;
        }
        runs.push(run);
    }
    let read: Vec<PathBuf> =
        runs.iter().flat_map(|r| std::iter::once(r.file.clone()).chain(r.policy_files.clone())).collect();
    let totals = Totals::of(&runs);
    let coverage = (args.coverage || args.threshold.is_some()).then(|| coverage::compute(&runs));
    match args.format {
        Format::Human => {
            if let Some(c) = &coverage {
                report::human_coverage(out, c)?;
            }
            writeln!(out, "{}", totals.closing_line())?;
        }
        Format::Json => {
            let doc = report::json_report(&runs, coverage.as_deref(), args.threshold);
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
    if let (Some(re), 0) = (&args.run, totals.passed + totals.failed) {
        if totals.filtered_out > 0 {
            let cases = if totals.filtered_out == 1 { "case" } else { "cases" };
            return Err(CliError::Input(format!(
                "--run '{re}' matches none of the {} {cases} (names, or FILE: NAME)",
                totals.filtered_out
            )));
        }
    }
    if totals.errors > 0 {
        let files = if totals.errors == 1 { "file" } else { "files" };
        return Err(CliError::Input(format!("{} test {files} could not be run", totals.errors)));
    }
    let mut code = if totals.failed > 0 { EXIT_FAILED } else { EXIT_OK };
    if let (Some(threshold), Some(c)) = (args.threshold, &coverage) {
        let total = Total::of(c);
        if total.below(threshold) {
            writeln!(
                err,
                "{}: coverage {:.1}% is below the threshold of {threshold}%: {} of {} rules, AUDIT and dry-run \
                 policies and services touched",
                paint_err.fail("error"),
                total.percent(),
                total.touched,
                total.items
            )?;
            code = EXIT_FAILED;
        }
    }
    Ok(Done { code, read })
}

/// `--watch`: a run, then another each time `changes` reports a change to
/// the files the last run read or to the test files under `roots`, until
/// `changes` stops (the command's source never does: Ctrl-C ends it).
/// Returns the last run's exit code. An input error of a run is shown and
/// the watch goes on.
fn watch(
    args: &TestArgs,
    roots: &[PathBuf],
    host: &Host,
    options: &Options,
    notes: &mut Notes,
    streams: Streams<'_>,
    changes: &mut dyn ChangeSource,
) -> Exit {
    let Streams { out, err, paint_out, paint_err } = streams;
    loop {
        let (code, read) = match run_once(
            args,
            roots,
            host,
            options,
            notes,
            Streams { out: &mut *out, err: &mut *err, paint_out, paint_err },
        ) {
            Ok(done) => (done.code, done.read),
            Err(CliError::Input(message)) => {
                writeln!(err, "{}: {message}", paint_err.fail("error"))?;
                (super::EXIT_USAGE, Vec::new())
            }
            Err(e) => return Err(e),
        };
        let mut watched = read;
        watched.sort();
        watched.dedup();
        writeln!(
            err,
            "watching {} files and the test files under {}; Ctrl-C to stop",
            watched.len(),
            shown_list(roots)
        )?;
        out.flush()?;
        match changes.wait(&watched) {
            Some(changed) => writeln!(out, "\n--- changed: {}; running again\n", shown_list(&changed))?,
            None => return Ok(code),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        args: TestArgs,
    }

    /// Changes the policy once, then stops watching.
    struct Script {
        policy: PathBuf,
        waits: Vec<Vec<PathBuf>>,
    }

    impl ChangeSource for Script {
        fn wait(&mut self, watched: &[PathBuf]) -> Option<Vec<PathBuf>> {
            self.waits.push(watched.to_vec());
            if self.waits.len() > 1 {
                return None;
            }
            std::fs::write(&self.policy, "name: t\noutboundTrafficPolicy: REGISTRY_ONLY\nservices: []\n").ok()?;
            Some(vec![self.policy.clone()])
        }
    }

    #[test]
    fn watch_runs_again_when_a_policy_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let policy = dir.path().join("policy.yaml");
        let tests = dir.path().join("a.test.yaml");
        std::fs::write(&policy, "name: t\nservices: [{name: h, hosts: [h.org]}]\n").unwrap();
        std::fs::write(
            &tests,
            "policy: policy.yaml\ntests:\n  - {name: h.org is registered, request: {authority: h.org}, \
             expect: {decision: allow}}\n",
        )
        .unwrap();
        let args = Command::parse_from(["test", "--watch", dir.path().to_str().unwrap()]).args;
        let host = start_host(None, crate::FILTER_WASM).unwrap();
        let options = Options::default();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut script = Script { policy: policy.clone(), waits: Vec::new() };
        let streams = Streams {
            out: &mut out,
            err: &mut err,
            paint_out: crate::display::Paint::PLAIN,
            paint_err: crate::display::Paint::PLAIN,
        };
        let roots = vec![dir.path().to_owned()];
        let code = watch(&args, &roots, &host, &options, &mut Notes::default(), streams, &mut script).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert_eq!(code, EXIT_FAILED, "the last run's code: {out}");
        let runs: Vec<&str> = out.split("--- changed: ").collect();
        assert_eq!(runs.len(), 2, "{out}");
        assert!(runs[0].ends_with("1 passed, 0 failed\n\n"), "{out}");
        assert!(runs[1].starts_with(&format!("{}; running again", shown(&policy))), "{out}");
        assert!(runs[1].ends_with("0 passed, 1 failed\n"), "{out}");
        // The test file and the policy file it names are watched.
        let mut expected = vec![tests, policy];
        expected.sort();
        assert_eq!(script.waits, vec![expected.clone(), expected]);
        assert!(String::from_utf8(err).unwrap().contains("watching 2 files"));
    }
}
