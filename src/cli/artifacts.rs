//! What commands read and write besides their arguments: the filter module
//! they run (`--filter FILE.wasm`, else the built-in one) and the files
//! they write.

use super::exit::{CliError, Exit, EXIT_OK};
use crate::display::shown;
use std::borrow::Cow;
use std::io::Write;
use std::path::Path;
use warden_harness::{Host, HostOptions};

/// The filter to run: `--filter FILE.wasm`, else the built-in one.
pub(super) fn filter_module<'a>(given: Option<&Path>, built_in: &'a [u8]) -> Result<Cow<'a, [u8]>, CliError> {
    match given {
        None => Ok(Cow::Borrowed(built_in)),
        Some(path) => std::fs::read(path)
            .map(Cow::Owned)
            .map_err(|e| CliError::Input(format!("{}: cannot read: {e}", shown(path)))),
    }
}

/// A host for the filter to run: `--filter FILE.wasm`, else the built-in one.
/// It models a gateway configured as docs/POLICY.md recommends, with
/// `allow_on_headers_stop_iteration` on (decisions are the same without it;
/// only whether a refused body's headers went upstream first differs).
pub(super) fn start_host(given: Option<&Path>, built_in: &[u8]) -> Result<Host, CliError> {
    let wasm = filter_module(given, built_in)?;
    let name = given.map_or_else(|| "the built-in filter".to_owned(), shown);
    let options = HostOptions { allow_on_headers_stop_iteration: true, ..HostOptions::default() };
    Host::new(&wasm, options).map_err(|e| CliError::Input(format!("{name}: {e}")))
}

pub(super) fn write(output: &Path, bytes: &[u8], out: &mut dyn Write) -> Exit {
    match std::fs::write(output, bytes) {
        Ok(()) => {
            writeln!(out, "wrote {} ({} bytes)", shown(output), bytes.len())?;
            Ok(EXIT_OK)
        }
        Err(e) => Err(CliError::Input(format!("cannot write {}: {e}", shown(output)))),
    }
}
