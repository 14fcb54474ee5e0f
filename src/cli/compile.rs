//! `warden compile`: a policy as the binary bundle the filter also accepts.

use super::artifacts::write;
use super::exit::{CliError, Exit, EXIT_FAILED};
use super::notes::Notes;
use crate::display::shown_list;
use clap::Args;
use std::io::Write;
use std::path::{Path, PathBuf};
use warden_config::PolicyLoadError;
use warden_engine::bundle;

/// `warden compile`.
#[derive(Args)]
pub(super) struct CompileArgs {
    /// The policy: files, directories of them or - (standard input), read as one input.
    #[arg(required = true, value_name = "POLICY")]
    pub(super) policy: Vec<PathBuf>,
    /// Where to write the bundle.
    #[arg(short, long)]
    pub(super) output: PathBuf,
}

pub(super) fn compile_to(
    policy: &[PathBuf],
    output: &Path,
    notes: &mut Notes,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Exit {
    let compiled = match warden_config::load_policy(policy) {
        Ok(loaded) => {
            if notes.print(&loaded.notes, err)? {
                return Ok(EXIT_FAILED);
            }
            loaded.policy
        }
        Err(PolicyLoadError::Unreadable(e)) => return Err(CliError::Input(e.to_string())),
        Err(PolicyLoadError::Invalid(e)) => {
            writeln!(err, "error: {e}")?;
            return Ok(EXIT_FAILED);
        }
    };
    let bytes = match bundle::encode(&compiled) {
        Ok(b) => b,
        Err(e) => {
            writeln!(err, "error: {}: {e}", shown_list(policy))?;
            return Ok(EXIT_FAILED);
        }
    };
    write(output, &bytes, out)
}
