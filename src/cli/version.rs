//! `warden --version`: which build this is — the version, the commit it was
//! built from and the filter module it carries, so a report or a bug can
//! name the exact filter that decided.

use crate::package::oci::sha256_hex;

/// The commit `build.rs` found (`unknown` outside a git checkout).
pub const GIT_COMMIT: &str = env!("WARDEN_GIT_COMMIT");

/// What `warden --version` (and `-V`) prints for a CLI that carries
/// `filter_wasm`.
pub(super) fn version_text(filter_wasm: &[u8]) -> String {
    format!(
        "warden {}\ncommit {GIT_COMMIT}\nfilter sha256:{} ({} bytes)\n",
        env!("CARGO_PKG_VERSION"),
        sha256_hex(filter_wasm),
        filter_wasm.len()
    )
}
