//! `warden check`: validate policy files and lint them.

use super::exit::{Exit, EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use super::notes::Notes;
use crate::display::shown_list;
use crate::lint;
use clap::Args;
use std::io::Write;
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
}

pub(super) const ABOUT: &str = "\
Validate policy files and lint them; errors and warnings name the exact field.

Lints: unreachable or shadowed rules (after a rule that matches everything, identical to an
earlier rule), policies without rules (an ALLOW without rules denies everything), ALLOW with
notPaths, DENY with paths under pathNormalization: NONE, wildcards over a public suffix
(*.com, *.co.uk), methods with lowercase letters (never match), the header identity source
(any client can set it).

Exit codes: 0 valid (warnings allowed unless --deny-warnings), 1 invalid policy (or
warnings with --deny-warnings), 2 unreadable file.";

pub(super) fn check(args: &CheckArgs, notes: &mut Notes, out: &mut dyn Write, err: &mut dyn Write) -> Exit {
    let inputs: Vec<&[PathBuf]> = if args.combine {
        vec![args.policies.as_slice()]
    } else {
        args.policies.iter().map(std::slice::from_ref).collect()
    };
    let mut code = EXIT_OK;
    for paths in inputs {
        let name = shown_list(paths);
        let Loaded { config, policy, notes: noted } = match warden_config::load_policy(paths) {
            Ok(loaded) => loaded,
            Err(PolicyLoadError::Unreadable(e)) => {
                writeln!(err, "error: {e}")?;
                code = code.max(EXIT_USAGE);
                continue;
            }
            Err(PolicyLoadError::Invalid(e)) => {
                writeln!(out, "error: {e}")?;
                code = code.max(EXIT_FAILED);
                continue;
            }
        };
        if notes.print(&noted, out)? {
            writeln!(out, "{name}: refused: --strict makes its notes errors")?;
            code = code.max(EXIT_FAILED);
            continue;
        }
        let lints = match (compile::parse_json(&config), serde_json::from_slice(&config)) {
            (Ok(doc), Ok(raw)) => lint::lint(&doc, &raw),
            _ => Vec::new(),
        };
        for l in &lints {
            writeln!(out, "warning: {name}: {}: {}", l.path, l.message)?;
        }
        let warned = lints.len() + super::notes::warnings(&noted);
        let warnings = match warned {
            0 => String::new(),
            1 => ", 1 warning".to_owned(),
            n => format!(", {n} warnings"),
        };
        writeln!(
            out,
            "{name}: ok ({} services, {} authorization policies){warnings}",
            policy.registry().services().len(),
            policy.authz_policies().len()
        )?;
        if args.deny_warnings && warned > 0 {
            code = code.max(EXIT_FAILED);
        }
    }
    Ok(code)
}
