//! `warden compile`: a policy as the binary bundle the filter also accepts.

use super::artifacts::write;
use super::exit::{CliError, Exit, EXIT_FAILED};
use crate::display::shown;
use clap::Args;
use std::io::Write;
use std::path::{Path, PathBuf};
use warden_config::PolicyLoadError;
use warden_engine::bundle;

/// `warden compile`.
#[derive(Args)]
pub(super) struct CompileArgs {
    /// The policy file.
    pub(super) policy: PathBuf,
    /// Where to write the bundle.
    #[arg(short, long)]
    pub(super) output: PathBuf,
}

pub(super) fn compile_to(policy: &Path, output: &Path, out: &mut dyn Write, err: &mut dyn Write) -> Exit {
    let bytes = match warden_config::load_policy(&[policy.to_owned()]) {
        Ok((_, compiled)) => match bundle::encode(&compiled) {
            Ok(b) => b,
            Err(e) => {
                writeln!(err, "error: {}: {e}", shown(policy))?;
                return Ok(EXIT_FAILED);
            }
        },
        Err(PolicyLoadError::Unreadable(e)) => return Err(CliError::Input(e.to_string())),
        Err(PolicyLoadError::Invalid(e)) => {
            writeln!(err, "error: {e}")?;
            return Ok(EXIT_FAILED);
        }
    };
    write(output, &bytes, out)
}
