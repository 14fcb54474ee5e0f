//! Compiled modules cached on disk, keyed by the module's SHA-256 and the
//! engine's compatibility hash, so a second `warden test` does not pay
//! Cranelift again.

use super::HostError;
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use wasmtime::{Engine, Module};

/// `$WARDEN_CACHE_DIR`, else `$XDG_CACHE_HOME/warden`, else `~/.cache/warden`.
pub(crate) fn default_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("WARDEN_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return Some(PathBuf::from(dir).join("warden"));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache").join("warden"))
}

/// The cache file for `wasm` under `dir`.
pub(crate) fn entry(engine: &Engine, wasm: &[u8], dir: &Path) -> PathBuf {
    let digest = Sha256::digest(wasm);
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    dir.join(format!("{hex}-{:016x}.cwasm", hasher.finish()))
}

/// Loads the compiled module from the cache, or compiles and stores it.
/// A damaged or foreign cache file is ignored and replaced.
pub(crate) fn load_or_compile(engine: &Engine, wasm: &[u8], dir: Option<&Path>) -> Result<Module, HostError> {
    let path = dir.map(|d| entry(engine, wasm, d));
    if let Some(path) = &path {
        if path.is_file() {
            // SAFETY: the file is one this function wrote with
            // `Module::serialize` for this engine configuration (the name
            // carries the compatibility hash); wasmtime checks the header and
            // refuses files from other versions or configurations.
            if let Ok(module) = unsafe { Module::deserialize_file(engine, path) } {
                return Ok(module);
            }
        }
    }
    let module = Module::new(engine, wasm).map_err(|e| HostError::Load(format!("{e:#}")))?;
    if let Some(path) = &path {
        // Best effort: a cache that cannot be written only costs time.
        if let (Some(dir), Ok(bytes)) = (path.parent(), module.serialize()) {
            // One temporary file per writer: threads of one process (tests
            // compiling the same module side by side) must not write the
            // same file, or one could rename it into place half-written.
            static WRITERS: AtomicU64 = AtomicU64::new(0);
            let writer = WRITERS.fetch_add(1, Ordering::Relaxed);
            let tmp = path.with_extension(format!("tmp{}-{writer}", std::process::id()));
            if std::fs::create_dir_all(dir).is_ok() && std::fs::write(&tmp, bytes).is_ok() {
                let _ = std::fs::rename(&tmp, path);
            }
        }
    }
    Ok(module)
}
