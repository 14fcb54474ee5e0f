//! The `warden` command line. `main.rs` only calls [`run`]; tests call
//! [`run_with`] and capture what it writes.
//!
//! One module per command, each with its arguments, its long help and the
//! function that runs it over the library: `test` (test files through the
//! compiled filter), `check` (validate and lint), `explain` (one request,
//! decision and trail), `compile` (binary bundle), `wasm` (the filter
//! module), `oci` (the module as an OCI image), `wasmplugin` (the Istio
//! manifest), `replay` (an access log against a policy), `schema` (the
//! policy's JSON Schema) and `import` (Istio resources to a policy). A
//! command returns its exit code or a [`CliError`], which carries its own.
//! See `docs/CLI.md`.

mod check;
mod compile;
mod explain;
mod import;
mod oci;
mod replay;
mod schema;
mod test;
mod wasm;
mod wasmplugin;

pub use schema::policy_schema;

use crate::display::shown;
use clap::{Parser, Subcommand};
use std::borrow::Cow;
use std::ffi::OsString;
use std::io::{self, Write};
use std::path::Path;
use warden_harness::{Host, HostOptions};

/// Everything went as asked.
pub const EXIT_OK: i32 = 0;
/// A test or a check failed.
pub const EXIT_FAILED: i32 = 1;
/// The command line or an input was unusable.
pub const EXIT_USAGE: i32 = 2;

#[derive(Parser)]
#[command(
    name = "warden",
    version,
    about = "Egress policy filter for Envoy: test, check, explain, compile and ship policies",
    after_help = "Exit codes: 0 all good, 1 a test or check failed, 2 usage or input error."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the cases of *.test.yaml files through the compiled filter.
    #[command(long_about = test::ABOUT)]
    Test(test::TestArgs),
    /// Validate policy files and lint them; errors and warnings name the exact field.
    #[command(long_about = check::ABOUT)]
    Check(check::CheckArgs),
    /// Show how the compiled filter decides one request, and the trail of rules behind it.
    #[command(long_about = explain::ABOUT)]
    Explain(explain::ExplainArgs),
    /// Compile a policy into the binary bundle the filter also accepts.
    Compile(compile::CompileArgs),
    /// Write the filter module (warden.wasm) this CLI was built with.
    Wasm(wasm::WasmArgs),
    /// Write the filter as an OCI image (a layout directory, or a tar of one) for oci:// WasmPlugin urls.
    #[command(long_about = oci::ABOUT)]
    Oci(oci::OciArgs),
    /// Print the Istio WasmPlugin manifest that deploys the filter with a policy.
    #[command(long_about = wasmplugin::ABOUT)]
    Wasmplugin(wasmplugin::WasmpluginArgs),
    /// Replay an Envoy JSON access log against a policy: what it would allow, deny, and why.
    #[command(long_about = replay::ABOUT)]
    Replay(replay::ReplayArgs),
    /// Print the JSON Schema of a warden/v1 policy document, for editors.
    #[command(long_about = schema::ABOUT)]
    Schema(schema::SchemaArgs),
    /// Convert Istio resources (ServiceEntry, AuthorizationPolicy, mesh config) into a warden/v1 policy.
    #[command(long_about = import::ABOUT)]
    Import(import::ImportArgs),
}

/// Why a command did not end with its own exit code: the one error type
/// of the commands, and the exit code it means.
#[derive(Debug)]
pub enum CliError {
    /// The command line or an input was unusable: printed as
    /// `error: MESSAGE`, exit 2.
    Input(String),
    /// Standard output or error could not be written: exit 2.
    Io(io::Error),
}

impl CliError {
    /// The exit code this error ends the run with.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Input(_) | CliError::Io(_) => EXIT_USAGE,
        }
    }
}

impl From<io::Error> for CliError {
    fn from(e: io::Error) -> Self {
        CliError::Io(e)
    }
}

/// What a command returns: its exit code ([`EXIT_OK`], [`EXIT_FAILED`], or
/// [`EXIT_USAGE`] when input errors were already reported one by one), or
/// the error that stopped it.
type Exit = Result<i32, CliError>;

/// Runs the CLI with `args` (program name first), printing to stdout and
/// stderr, and returns the exit code.
pub fn run<I, T>(args: I, filter_wasm: &[u8]) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    use std::io::IsTerminal;
    let stdout = io::stdout();
    let stderr = io::stderr();
    let progress = stderr.is_terminal();
    run_inner(args, filter_wasm, &mut stdout.lock(), &mut stderr.lock(), progress)
}

/// Runs the CLI with `args` (program name first), writing what it prints
/// to `out` and `err`, and returns the exit code.
pub fn run_with<I, T>(args: I, filter_wasm: &[u8], out: &mut dyn Write, err: &mut dyn Write) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    run_inner(args, filter_wasm, out, err, false)
}

/// [`run_with`], and whether progress bars may be drawn on the process's
/// stderr (only when it is a terminal; never for captured output).
fn run_inner<I, T>(args: I, filter_wasm: &[u8], out: &mut dyn Write, err: &mut dyn Write, progress: bool) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let text = e.render().to_string();
            return if e.use_stderr() {
                let _ = err.write_all(text.as_bytes());
                EXIT_USAGE
            } else {
                let _ = out.write_all(text.as_bytes());
                EXIT_OK
            };
        }
    };
    let result = match cli.command {
        Command::Test(args) => test::test(args, filter_wasm, out, err),
        Command::Check(args) => check::check(&args.policies, args.deny_warnings, out, err),
        Command::Explain(args) => explain::explain(args, filter_wasm, out, err),
        Command::Compile(args) => compile::compile_to(&args.policy, &args.output, out, err),
        Command::Wasm(args) => write(&args.output, filter_wasm, out, err),
        Command::Oci(args) => oci::oci_image(args, filter_wasm, out, err),
        Command::Wasmplugin(args) => wasmplugin::wasmplugin_manifest(args, filter_wasm, out, err),
        Command::Replay(args) => replay::replay_log(args, filter_wasm, out, err, progress),
        Command::Schema(args) => schema::schema(args.output.as_deref(), out, err),
        Command::Import(args) => import::import(args, out, err),
    };
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            if let CliError::Input(message) = &e {
                let _ = writeln!(err, "error: {message}");
            }
            e.exit_code()
        }
    };
    let _ = out.flush();
    let _ = err.flush();
    code
}

/// The filter to run: `--filter FILE.wasm`, else the built-in one.
fn filter_module<'a>(given: Option<&Path>, built_in: &'a [u8]) -> Result<Cow<'a, [u8]>, String> {
    match given {
        None => Ok(Cow::Borrowed(built_in)),
        Some(path) => std::fs::read(path).map(Cow::Owned).map_err(|e| format!("{}: cannot read: {e}", shown(path))),
    }
}

fn start_host(given: Option<&Path>, built_in: &[u8]) -> Result<Host, String> {
    let wasm = filter_module(given, built_in)?;
    let name = given.map_or_else(|| "the built-in filter".to_owned(), shown);
    Host::new(&wasm, HostOptions::default()).map_err(|e| format!("{name}: {e}"))
}

fn write(output: &Path, bytes: &[u8], out: &mut dyn Write, _err: &mut dyn Write) -> Exit {
    match std::fs::write(output, bytes) {
        Ok(()) => {
            writeln!(out, "wrote {} ({} bytes)", shown(output), bytes.len())?;
            Ok(EXIT_OK)
        }
        Err(e) => Err(CliError::Input(format!("cannot write {}: {e}", shown(output)))),
    }
}
