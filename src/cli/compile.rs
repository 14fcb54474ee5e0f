//! `warden compile`: a policy as the binary bundle the filter also accepts.

use super::artifacts::write;
use super::exit::{CliError, Exit, EXIT_FAILED};
use crate::display::shown;
use clap::Args;
use std::io::Write;
use std::path::{Path, PathBuf};
use warden_engine::{bundle, compile};

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
    let config =
        warden_config::load_config(policy).map_err(|e| CliError::Input(format!("{}: {}", shown(policy), e.message)))?;
    let bytes = match compile::load(&config).and_then(|p| bundle::encode(&p)) {
        Ok(b) => b,
        Err(e) => {
            writeln!(err, "error: {}: {e}", shown(policy))?;
            return Ok(EXIT_FAILED);
        }
    };
    write(output, &bytes, out)
}
