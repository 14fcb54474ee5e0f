//! `warden check`: validate policy files and lint them.

use super::exit::{Exit, EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use super::notes::Notes;
use super::Streams;
use crate::diagnostic::Diagnostic;
use crate::diagnostic::Severity;
use crate::display::shown_list;
use crate::lint;
use clap::{Args, ValueEnum};
use serde_json::json;
use std::io;
use std::path::PathBuf;
use warden_config::{Loaded, PolicyLoadError};
use warden_engine::compile;

/// `warden check`.
#[derive(Args)]
pub(super) struct CheckArgs {
    /// Policies: files (YAML or JSON, warden/v1 or Istio), directories (every policy file under
    /// one is one input) or - (standard input).
    #[arg(required = true, value_name = "POLICY")]
    pub(super) policies: Vec<PathBuf>,
    /// Check all the arguments as one input (Istio YAML split over files and directories).
    #[arg(long)]
    pub(super) combine: bool,
    /// Exit 1 when a lint warns.
    #[arg(long)]
    pub(super) deny_warnings: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = CheckFormat::Human)]
    pub(super) format: CheckFormat,
}

/// `--format` of `warden check`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(super) enum CheckFormat {
    /// `error[E103]: ...` and `warning[W110]: ...` lines, and one line per valid file.
    Human,
    /// One JSON document: per file, its errors and warnings with code, line and field.
    Json,
    /// GitHub Actions workflow commands (::error / ::warning annotations).
    Github,
}

pub(super) const ABOUT: &str = "\
Validate policy files and lint them; errors and warnings name the exact field.

Lints: unreachable or shadowed rules (after a rule that matches everything, identical to an
earlier rule), policies without rules (an ALLOW without rules denies everything), ALLOW with
notPaths, DENY with paths under pathNormalization: NONE, wildcards over a public suffix
(*.com, *.co.uk), methods with lowercase letters (never match), the header identity source
(any client can set it).

Every error and warning has a stable code (E001-E005 the file, E101-E103 the policy, W101-
W113 the lints; docs/CLI.md lists them). --format json prints one document, --format github
GitHub Actions annotations (::error file=F,line=L,title=CODE name::message).

Exit codes: 0 valid (warnings allowed unless --deny-warnings), 1 invalid policy (or
warnings with --deny-warnings), 2 unreadable file.";

/// What `check` found in one input.
struct Checked {
    file: String,
    diagnostics: Vec<Diagnostic>,
    /// Services and authorization policies, when the policy is valid.
    counts: Option<(usize, usize)>,
}

pub(super) fn check(args: &CheckArgs, notes: &mut Notes, streams: Streams<'_>) -> Exit {
    let Streams { out, err, paint_out, paint_err } = streams;
    let inputs: Vec<&[PathBuf]> = if args.combine {
        vec![args.policies.as_slice()]
    } else {
        args.policies.iter().map(std::slice::from_ref).collect()
    };
    let mut code = EXIT_OK;
    let mut checked = Vec::with_capacity(inputs.len());
    for paths in inputs {
        let name = shown_list(paths);
        let Loaded { config, policy, notes: noted } = match warden_config::load_policy(paths) {
            Ok(loaded) => loaded,
            Err(e) => {
                let unreadable = matches!(e, PolicyLoadError::Unreadable(_));
                code = code.max(if unreadable { EXIT_USAGE } else { EXIT_FAILED });
                let d = Diagnostic::error(&e);
                if args.format == CheckFormat::Human {
                    // An unreadable file is an input error, on stderr; an
                    // invalid policy is the finding, on stdout.
                    let (stream, paint) = if unreadable { (&mut *err, paint_err) } else { (&mut *out, paint_out) };
                    writeln!(stream, "{}", d.human(paint))?;
                }
                checked.push(Checked { file: name, diagnostics: vec![d], counts: None });
                continue;
            }
        };
        // What reading it noted first, then the lints.
        let mut diagnostics: Vec<Diagnostic> = noted.iter().map(|n| Diagnostic::note(n, notes.strict)).collect();
        let refused = diagnostics.iter().any(|d| d.severity == Severity::Error);
        let lints = match (compile::parse_json(&config), serde_json::from_slice(&config)) {
            (Ok(doc), Ok(raw)) if !refused => lint::lint(&doc, &raw),
            _ => Vec::new(),
        };
        // A lint names the (first) file, and the line of its field when the
        // file holds the one policy.
        if let Some(first) = paths.first() {
            diagnostics.extend(lints.iter().map(|l| Diagnostic::warning(first, l)));
        }
        let warnings = diagnostics.iter().filter(|d| d.severity == Severity::Warning).count();
        let counts = (policy.registry().services().len(), policy.authz_policies().len());
        if args.format == CheckFormat::Human {
            for d in &diagnostics {
                writeln!(out, "{}", d.human(paint_out))?;
            }
            if refused {
                writeln!(out, "{name}: refused: --strict makes its notes errors")?;
            } else {
                writeln!(out, "{}", ok_line(&name, counts, warnings))?;
            }
        }
        if refused || (args.deny_warnings && warnings > 0) {
            code = code.max(EXIT_FAILED);
        }
        let counts = (!refused).then_some(counts);
        checked.push(Checked { file: name, diagnostics, counts });
    }
    match args.format {
        CheckFormat::Human => {}
        CheckFormat::Github => {
            for c in &checked {
                for d in &c.diagnostics {
                    writeln!(out, "{}", d.github())?;
                }
                if let Some(counts) = c.counts {
                    let warnings = c.diagnostics.iter().filter(|d| d.severity == Severity::Warning).count();
                    writeln!(out, "{}", ok_line(&c.file, counts, warnings))?;
                }
            }
        }
        CheckFormat::Json => {
            let severity = |c: &Checked, s: Severity| -> Vec<serde_json::Value> {
                c.diagnostics.iter().filter(|d| d.severity == s).map(Diagnostic::json).collect()
            };
            let files: Vec<serde_json::Value> = checked
                .iter()
                .map(|c| {
                    json!({
                        "file": c.file,
                        "valid": c.counts.is_some(),
                        "services": c.counts.map(|(s, _)| s),
                        "authorizationPolicies": c.counts.map(|(_, a)| a),
                        "errors": severity(c, Severity::Error),
                        "warnings": severity(c, Severity::Warning),
                        "notes": severity(c, Severity::Note),
                    })
                })
                .collect();
            let count = |s: Severity| checked.iter().flat_map(|c| &c.diagnostics).filter(|d| d.severity == s).count();
            let doc = json!({
                "errors": count(Severity::Error),
                "warnings": count(Severity::Warning),
                "notes": count(Severity::Note),
                "files": files,
            });
            serde_json::to_writer_pretty(&mut *out, &doc).map_err(io::Error::other)?;
            writeln!(out)?;
        }
    }
    Ok(code)
}

/// `FILE: ok (N services, M authorization policies), K warnings`.
fn ok_line(name: &str, (services, policies): (usize, usize), warnings: usize) -> String {
    let warnings = match warnings {
        0 => String::new(),
        1 => ", 1 warning".to_owned(),
        n => format!(", {n} warnings"),
    };
    format!("{name}: ok ({services} services, {policies} authorization policies){warnings}")
}
