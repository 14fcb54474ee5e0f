//! `cargo build` for wasm filters, shared by `build.rs` (Warden's filter),
//! `tests/harness/filters.rs` and `benches/dlp_filter.rs` (test filters).

use std::path::Path;
use std::process::Command;

/// A `cargo` command in the workspace root for building wasm filters:
/// the cargo that built this binary (else the one on the PATH), with the
/// outer build's host flags and wrappers (clippy, coverage) removed: the
/// filter gets a plain build.
pub fn wasm_cargo(root: &Path) -> Command {
    let cargo = std::env::var_os("CARGO").or_else(|| option_env!("CARGO").map(Into::into)).unwrap_or("cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root);
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_LLVM_COV",
        "LLVM_PROFILE_FILE",
    ] {
        cmd.env_remove(var);
    }
    cmd
}
