//! `warden diff`: what a policy change opens and closes.

use super::exit::{CliError, Exit, EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use super::notes::Notes;
use crate::diff::{self, Inputs};
use crate::testing::runner;
use clap::{Args, ValueEnum};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

pub(super) const ABOUT: &str = "\
Show every class of request whose decision a policy change changes: newly allowed (widens),
newly refused (narrows), or decided for another reason, by another policy, or with other
dry-run or AUDIT records (record); each with a witness, a concrete request that `warden
explain` reproduces. DLP is compared per service, place and detector.

OLD and NEW are policies as every command reads them (warden/v1 or Istio YAML, files or
directories, any mix), or REV:PATH for PATH as it is in git revision REV (nothing is checked
out):

  warden diff policies/old.yaml policies/new.yaml
  warden diff main:policies policies --format markdown > comment.md
  warden diff HEAD~1:egress.yaml egress.yaml --fail-on widen
  warden diff old.yaml new.yaml --log access.log --principal-field downstream_peer_uri_san

--log counts how many requests of an Envoy JSON access log (read as `warden replay` reads it)
fall in each change: how much real traffic the change affects.

The diff is exact, not sampled: the requests are cut into classes by every constant either
policy mentions (hosts, ports, principals, namespaces, methods, paths, headers, addresses,
server names), so that each policy decides every request of a class alike, and one request of
each class is decided by both. docs/DIFF.md says how, and what it leaves out.

Exit codes: 0 compared (whatever changed, unless --fail-on), 1 what --fail-on names
changed, 2 an unreadable or invalid policy.";

/// Output formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(super) enum Format {
    /// For a terminal.
    Human,
    /// For programs.
    Json,
    /// For a pull-request comment.
    Markdown,
}

/// What makes the exit code 1.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(super) enum FailOn {
    /// Anything newly allowed, or a DLP protection weakened.
    Widen,
    /// Any change at all.
    Any,
}

#[derive(Args)]
pub(super) struct DiffArgs {
    /// The policy before: a file, a directory, - or REV:PATH.
    #[arg(value_name = "OLD")]
    old: String,
    /// The policy after.
    #[arg(value_name = "NEW")]
    new: String,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    format: Format,
    /// The human report details this many sets of requests per widening or narrowing change
    /// (one per other change); JSON and markdown list them all.
    #[arg(long, default_value_t = 3, value_name = "N")]
    limit: usize,
    /// Count how many requests of this Envoy JSON access log (as `warden replay` reads it; .gz
    /// too) each change affects.
    #[arg(long, value_name = "ACCESS_LOG")]
    log: Option<PathBuf>,
    /// With --log: the field of each line that holds the caller's principal.
    #[arg(long, value_name = "FIELD", requires = "log")]
    principal_field: Option<String>,
    /// With --log: the principal of every line without one.
    #[arg(long, value_name = "PRINCIPAL", requires = "log")]
    principal: Option<String>,
    /// Exit 1 when the change widens access (widen) or changes anything (any).
    #[arg(long, value_enum, value_name = "WHAT")]
    fail_on: Option<FailOn>,
}

/// A directory removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A policy argument read from disk or from git (`REV:PATH`, written to a
/// scratch directory removed when the input is dropped).
pub(super) struct Input {
    pub(super) path: PathBuf,
    shown: String,
    /// For a revision: its files, written out, and the prefix to show
    /// instead of the scratch directory in messages.
    scratch: Option<(Scratch, String)>,
}

impl Input {
    fn message(&self, text: String) -> String {
        match &self.scratch {
            Some((dir, shown)) => text.replace(&format!("{}/", dir.0.display()), shown),
            None => text,
        }
    }
}

fn git(args: &[&str]) -> Result<Vec<u8>, String> {
    let out = Command::new("git").args(args).output().map_err(|e| format!("cannot run git: {e}"))?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

/// `REV:PATH` when the argument is not a path that exists.
fn revision(arg: &str) -> Option<(&str, &str)> {
    if arg == "-" || Path::new(arg).exists() {
        return None;
    }
    let (rev, path) = arg.split_once(':')?;
    (!rev.is_empty()).then_some((rev, path))
}

pub(super) fn input(arg: &str, which: &str) -> Result<Input, CliError> {
    let Some((rev, path)) = revision(arg) else {
        return Ok(Input { path: PathBuf::from(arg), shown: arg.to_owned(), scratch: None });
    };
    let path = if path.is_empty() { "." } else { path };
    if Path::new(path).is_absolute() {
        return Err(CliError::Input(format!("{arg}: the path after REV: must be relative to the current directory")));
    }
    git(&["rev-parse", "--verify", "--quiet", &format!("{rev}^{{commit}}")]).map_err(|_| {
        CliError::Input(format!("{arg}: {rev} is not a git revision here (and no file is named {arg})"))
    })?;
    let listing = git(&["ls-tree", "-r", "-z", "--name-only", rev, "--", path])
        .map_err(|e| CliError::Input(format!("{arg}: {e}")))?;
    let names: Vec<String> =
        listing.split(|&b| b == 0).filter(|n| !n.is_empty()).map(|n| String::from_utf8_lossy(n).into_owned()).collect();
    if names.is_empty() {
        return Err(CliError::Input(format!("{arg}: {path} is not in {rev}")));
    }
    let dir = std::env::temp_dir().join(format!("warden-diff-{}-{which}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let scratch = Scratch(dir);
    for name in &names {
        let bytes = git(&["show", &format!("{rev}:./{name}")]).map_err(|e| CliError::Input(format!("{arg}: {e}")))?;
        let file = scratch.0.join(name);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&file, bytes)?;
    }
    Ok(Input { path: scratch.0.join(path), shown: arg.to_owned(), scratch: Some((scratch, format!("{rev}:"))) })
}

pub(super) fn diff(args: &DiffArgs, notes: &mut Notes, out: &mut dyn Write, err: &mut dyn Write) -> Exit {
    let old_input = input(&args.old, "old")?;
    let new_input = input(&args.new, "new")?;
    let mut load = |input: &Input| -> Result<Option<warden_engine::Policy>, CliError> {
        match runner::load_policy(std::slice::from_ref(&input.path)) {
            Ok(loaded) => {
                let shown: Vec<_> = loaded
                    .notes
                    .iter()
                    .map(|n| {
                        let mut n = n.clone();
                        n.file = n.file.map(|f| PathBuf::from(input.message(f.display().to_string())));
                        n
                    })
                    .collect();
                if notes.print(&shown, err)? {
                    return Ok(None);
                }
                Ok(Some(loaded.policy))
            }
            Err(e) => Err(CliError::Input(input.message(runner::policy_error(&e)))),
        }
    };
    let (Some(old), Some(new)) = (load(&old_input)?, load(&new_input)?) else {
        return Ok(EXIT_USAGE);
    };
    let analysis = warden_diff::Diff::new(&old, &new);
    let report = analysis.run(false).0;
    let inputs = Inputs { old: &old_input.shown, new: &new_input.shown, policy: &new };
    let counts = match &args.log {
        None => None,
        Some(path) => {
            let file = std::fs::File::open(path)
                .map_err(|e| CliError::Input(format!("{}: cannot read: {e}", path.display())))?;
            let gzipped = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gz"));
            let mut reader: Box<dyn std::io::BufRead> = if gzipped {
                Box::new(std::io::BufReader::new(flate2::read::MultiGzDecoder::new(file)))
            } else {
                Box::new(std::io::BufReader::new(file))
            };
            let counted = diff::count_log(
                &analysis,
                &report,
                &mut reader,
                args.principal_field.as_deref(),
                args.principal.as_deref(),
            )
            .map_err(|e| CliError::Input(format!("{}: cannot read: {e}", path.display())))?;
            if counted.requests == 0 {
                return Err(CliError::Input(format!(
                    "{}: no request lines (JSON access-log lines with authority, method and path)",
                    path.display()
                )));
            }
            Some((crate::display::shown(path), counted))
        }
    };
    match args.format {
        Format::Human => {
            out.write_all(diff::human(&report, &inputs, args.limit).as_bytes())?;
            if let Some((shown, c)) = &counts {
                out.write_all(diff::log_text(&report, c, shown).as_bytes())?;
            }
        }
        Format::Markdown => {
            out.write_all(diff::markdown(&report, &inputs).as_bytes())?;
            if let Some((shown, c)) = &counts {
                writeln!(out, "\n```text{}```", diff::log_text(&report, c, shown))?;
            }
        }
        Format::Json => {
            let mut value = diff::json(&report, &inputs);
            if let (Some((_, c)), Some(obj)) = (&counts, value.as_object_mut()) {
                obj.insert("log".into(), diff::log_json(&report, c));
            }
            let text = serde_json::to_string_pretty(&value).unwrap_or_default();
            writeln!(out, "{text}")?;
        }
    }
    let failed = match args.fail_on {
        None => false,
        Some(FailOn::Widen) => report.widens(),
        Some(FailOn::Any) => report.any(),
    };
    Ok(if failed { EXIT_FAILED } else { EXIT_OK })
}
