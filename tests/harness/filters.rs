//! The test filters in `tests/filters/`, built for both wasm targets the
//! proxy-wasm Rust SDK supports, once per test process, and loaded into
//! the harness.
//!
//! The SDK exports its allocator as `proxy_on_memory_allocate` on
//! `wasm32-wasip1` and as `malloc` on `wasm32-unknown-unknown`; running
//! every filter built both ways tests that the host finds either.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use warden::harness::{Host, HostOptions, Outcome, Request, Vm};

/// The targets every test filter is built for.
pub const TARGETS: [Target; 2] = [Target::Wasip1, Target::Unknown];

/// A wasm target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `wasm32-wasip1`: WASI imports; allocator `proxy_on_memory_allocate`.
    Wasip1,
    /// `wasm32-unknown-unknown`: no WASI; allocator `malloc`.
    Unknown,
}

impl Target {
    pub fn triple(self) -> &'static str {
        match self {
            Target::Wasip1 => "wasm32-wasip1",
            Target::Unknown => "wasm32-unknown-unknown",
        }
    }
}

/// A test filter crate under `tests/filters/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    AddHeaders,
    RewriteBody,
    Probe,
    Faults,
    UnknownImport,
}

const ALL: [Filter; 5] =
    [Filter::AddHeaders, Filter::RewriteBody, Filter::Probe, Filter::Faults, Filter::UnknownImport];

impl Filter {
    fn package(self) -> &'static str {
        match self {
            Filter::AddHeaders => "add-headers-filter",
            Filter::RewriteBody => "rewrite-body-filter",
            Filter::Probe => "probe-filter",
            Filter::Faults => "faults-filter",
            Filter::UnknownImport => "unknown-import-filter",
        }
    }
}

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

#[path = "../../benches/support/wasm_cargo.rs"]
mod wasm_cargo;

/// The compiled module of `filter` for `target`, building all of them on
/// first use. A build failure fails the test with cargo's output.
pub fn wasm(filter: Filter, target: Target) -> Vec<u8> {
    let path = path(filter, target);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Where the compiled module of `filter` for `target` is, building all of
/// them on first use (Envoy loads it from there).
pub fn path(filter: Filter, target: Target) -> PathBuf {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let dir = match BUILT.get_or_init(build) {
        Ok(dir) => dir,
        Err(message) => panic!("{message}"),
    };
    dir.join(target.triple()).join("wasm").join(format!("{}.wasm", filter.package().replace('-', "_")))
}

/// `cargo build` of every test filter for both targets, in the wasm target
/// directory `build.rs` uses for Warden's filter. Returns that directory.
fn build() -> Result<PathBuf, String> {
    let root = Path::new(ROOT);
    for target in TARGETS {
        ensure_target(target.triple())?;
    }
    let target_dir = root.join("target").join("wasm");
    let mut cmd = wasm_cargo::wasm_cargo(root);
    cmd.args(["build", "--lib", "--profile", "wasm", "--target-dir"]).arg(&target_dir);
    for filter in ALL {
        cmd.args(["--package", filter.package()]);
    }
    for target in TARGETS {
        cmd.args(["--target", target.triple()]);
    }
    let output = cmd.output().map_err(|e| format!("could not run cargo to build the test filters: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "building the test filters failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(target_dir)
}

/// rust-toolchain.toml lists both targets, but rustup installs them only
/// with a toolchain it installs itself: add a missing one, like build.rs.
fn ensure_target(triple: &str) -> Result<(), String> {
    let sysroot = Command::new("rustc")
        .current_dir(ROOT)
        .args(["--print", "sysroot"])
        .output()
        .map_err(|e| format!("could not run rustc: {e}"))?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    if sysroot.join("lib/rustlib").join(triple).is_dir() {
        return Ok(());
    }
    let toolchain = sysroot.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut cmd = Command::new("rustup");
    cmd.current_dir(ROOT).args(["target", "add", triple]);
    if !toolchain.is_empty() {
        cmd.args(["--toolchain", &toolchain]);
    }
    let output = cmd.output().map_err(|e| format!("the {triple} target is missing and rustup could not run: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "the {triple} target is missing and `rustup target add {triple}` failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
}

/// A host for `filter` built for `target`.
pub fn host_with(filter: Filter, target: Target, options: HostOptions) -> Host {
    Host::new(&wasm(filter, target), options).unwrap_or_else(|e| panic!("{filter:?} on {}: {e}", target.triple()))
}

/// A host for `filter` built for `target`, with default options.
pub fn host(filter: Filter, target: Target) -> Host {
    host_with(filter, target, HostOptions::default())
}

/// A VM of `host` with `config`, which must start.
pub fn vm(host: &Host, config: &str) -> Vm {
    host.vm(config.as_bytes()).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `request`, which must complete without a fault.
pub fn run(vm: &mut Vm, request: &Request) -> Outcome {
    let outcome = vm.run(request);
    assert_eq!(outcome.fault, None, "logs: {:?}", outcome.logs);
    outcome
}

/// The messages of the log lines at `level`.
pub fn logs_at(outcome: &Outcome, level: &str) -> Vec<String> {
    outcome.logs.iter().filter(|l| l.level == level).map(|l| l.message.clone()).collect()
}
