//! `warden wasm`: the filter module this CLI was built with.

use clap::Args;
use std::path::PathBuf;

/// `warden wasm`.
#[derive(Args)]
pub(super) struct WasmArgs {
    /// Where to write it.
    #[arg(short, long)]
    pub(super) output: PathBuf,
}
