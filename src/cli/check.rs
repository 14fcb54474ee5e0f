//! `warden check`: validate policy files and lint them.

use super::exit::{Exit, EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use crate::display::shown;
use crate::lint;
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use warden_config::PolicyLoadError;
use warden_engine::compile;

/// `warden check`.
#[derive(Args)]
pub(super) struct CheckArgs {
    /// Policy files (YAML or JSON, bare or in a warden/v1 envelope).
    #[arg(required = true, value_name = "POLICY")]
    pub(super) policies: Vec<PathBuf>,
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

pub(super) fn check(policies: &[PathBuf], deny_warnings: bool, out: &mut dyn Write, err: &mut dyn Write) -> Exit {
    let mut code = EXIT_OK;
    for path in policies {
        let name = shown(path);
        let (config, policy) = match warden_config::load_policy(std::slice::from_ref(path)) {
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
        let lints = match (compile::parse_json(&config), serde_json::from_slice(&config)) {
            (Ok(doc), Ok(raw)) => lint::lint(&doc, &raw),
            _ => Vec::new(),
        };
        for l in &lints {
            writeln!(out, "warning: {name}: {}: {}", l.path, l.message)?;
        }
        let warnings = match lints.len() {
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
        if deny_warnings && !lints.is_empty() {
            code = code.max(EXIT_FAILED);
        }
    }
    Ok(code)
}
