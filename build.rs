//! Builds the proxy-wasm filter (`filter/`) for `wasm32-wasip1` so that the
//! CLI, the harness and every test run the filter as it is in the tree now.
//!
//! The nested cargo uses its own target directory (`target/wasm`): sharing
//! the outer build's directory would deadlock on cargo's build lock.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

// The same cargo command (host flags and wrappers removed) the tests and
// benchmarks use to build their own test filters.
#[path = "benches/support/wasm_cargo.rs"]
mod wasm_cargo;

fn main() {
    let root = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    for watched in ["engine", "filter", "Cargo.lock", "Cargo.toml"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=WARDEN_FILTER_WASM");
    println!("cargo:rustc-env=WARDEN_GIT_COMMIT={}", git_commit(&root));

    // An explicit artifact (e.g. the exact build that is deployed) wins.
    if let Some(path) = env::var_os("WARDEN_FILTER_WASM") {
        println!("cargo:rustc-env=WARDEN_WASM={}", PathBuf::from(path).display());
        return;
    }

    ensure_wasm_target();

    let target_dir =
        env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target")).join("wasm");
    let mut cmd = wasm_cargo::wasm_cargo(&root);
    cmd.args(["build", "--package", "warden-filter", "--lib"])
        .args(["--target", "wasm32-wasip1", "--profile", "wasm"])
        .arg("--target-dir")
        .arg(&target_dir);

    let status = match cmd.status() {
        Ok(status) => status,
        Err(err) => fail(&format!("could not run cargo to build the filter: {err}")),
    };
    if !status.success() {
        fail(
            "building the filter for wasm32-wasip1 failed (see above). \
             If the target is missing: rustup target add wasm32-wasip1",
        );
    }
    let wasm = target_dir.join("wasm32-wasip1/wasm/warden_filter.wasm");
    if !wasm.is_file() {
        fail(&format!("the filter build produced no {}", wasm.display()));
    }
    println!("cargo:rustc-env=WARDEN_WASM={}", wasm.display());
}

/// rust-toolchain.toml lists the target, but rustup only installs listed
/// targets with a toolchain it installs itself; an existing toolchain
/// without the target would fail the build. Add it once, like rustup would.
fn ensure_wasm_target() {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| PathBuf::from(s.trim()));
    let Some(sysroot) = sysroot else { return };
    if sysroot.join("lib/rustlib/wasm32-wasip1").is_dir() {
        return;
    }
    let toolchain = sysroot.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    println!("cargo:warning=installing the wasm32-wasip1 target for {toolchain} (rustup target add)");
    let mut cmd = Command::new("rustup");
    cmd.args(["target", "add", "wasm32-wasip1"]);
    if !toolchain.is_empty() {
        cmd.args(["--toolchain", &toolchain]);
    }
    match cmd.status() {
        Ok(s) if s.success() => {}
        _ => fail("the wasm32-wasip1 target is missing and `rustup target add wasm32-wasip1` failed"),
    }
}

/// The commit the tree is checked out at, for `warden --version`:
/// `WARDEN_GIT_COMMIT` when set (a container build has no `.git`), else
/// `git rev-parse HEAD` when the package is the top of a git checkout;
/// otherwise (a source tarball, no git) `unknown`, never a failed build.
/// Uncommitted changes are not marked.
fn git_commit(root: &Path) -> String {
    println!("cargo:rerun-if-env-changed=WARDEN_GIT_COMMIT");
    if let Some(commit) = env::var("WARDEN_GIT_COMMIT").ok().filter(|c| !c.trim().is_empty()) {
        return commit.trim().to_owned();
    }
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(root)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_owned())
    };
    // Not the checkout of some other repository the tarball was unpacked in.
    let top = git(&["rev-parse", "--show-toplevel"]).and_then(|t| PathBuf::from(t).canonicalize().ok());
    if top.is_none() || top != root.canonicalize().ok() {
        return "unknown".into();
    }
    // Built again when HEAD moves: HEAD, the branch it is on, packed refs.
    // Only files that exist: cargo reruns the script every time for one
    // that does not.
    let branch = git(&["symbolic-ref", "-q", "HEAD"]);
    for name in ["HEAD", "packed-refs"].into_iter().chain(branch.as_deref()) {
        if let Some(path) = git(&["rev-parse", "--git-path", name]).map(|p| root.join(p)).filter(|p| p.is_file()) {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into())
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(1);
}
