//! The `warden` command line. `main.rs` only calls [`run`]; tests call
//! [`run_with`] and capture what it writes.
//!
//! One module per command, each with its arguments, its long help and the
//! function that runs it over the library: `test` (test files through the
//! compiled filter), `check` (validate and lint), `explain` (one request,
//! decision and trail), `compile` (binary bundle), `wasm` (the filter
//! module), `oci` (the module as an OCI image), `wasmplugin` (the Istio
//! manifest), `replay` (an access log against a policy), `schema` (the
//! JSON Schemas of policy and test files), `import` (Istio resources to a
//! policy) and `completions` (shell completion scripts); `--version` names
//! the commit and the filter module (`version`). A command returns its
//! exit code or a [`CliError`], which carries its own. See `docs/CLI.md`.

mod artifacts;
mod check;
mod compile;
mod completions;
mod diff;
mod exit;
mod explain;
mod import;
mod notes;
mod oci;
mod replay;
mod schema;
mod test;
mod version;
mod wasm;
mod wasmplugin;
mod watch;

pub use exit::{CliError, EXIT_FAILED, EXIT_OK, EXIT_USAGE};
pub use schema::{policy_schema, test_file_schema};
pub use version::GIT_COMMIT;

use crate::display::Paint;
use artifacts::write;

use clap::{CommandFactory, Parser, Subcommand};
use std::ffi::OsString;
use std::io::{self, Write};

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
    /// Treat every note and warning about a policy (Istio input read differently from how it is
    /// written, skipped resources, an egress gateway without gatewayPorts) as an error.
    #[arg(long, global = true)]
    strict: bool,
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
    /// Every class of request whose decision a policy change changes, each with a witness request.
    #[command(long_about = diff::ABOUT)]
    Diff(diff::DiffArgs),
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
    /// Print the JSON Schema of a warden/v1 policy file or of a test file, for editors.
    #[command(long_about = schema::ABOUT)]
    Schema(schema::SchemaArgs),
    /// Convert Istio resources (ServiceEntry, AuthorizationPolicy, mesh config) into a warden/v1 policy.
    #[command(long_about = import::ABOUT)]
    Import(import::ImportArgs),
    /// Print the shell completion script (bash, zsh, fish, powershell, elvish).
    #[command(long_about = completions::ABOUT)]
    Completions(completions::CompletionsArgs),
}

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
    let no_color = std::env::var_os("NO_COLOR");
    let terminal = Terminal {
        progress: stderr.is_terminal(),
        paint_out: Paint::for_stream(stdout.is_terminal(), no_color.as_deref()),
        paint_err: Paint::for_stream(stderr.is_terminal(), no_color.as_deref()),
    };
    run_inner(args, filter_wasm, &mut stdout.lock(), &mut stderr.lock(), terminal)
}

/// Runs the CLI with `args` (program name first), writing what it prints
/// to `out` and `err`, and returns the exit code.
pub fn run_with<I, T>(args: I, filter_wasm: &[u8], out: &mut dyn Write, err: &mut dyn Write) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    run_inner(args, filter_wasm, out, err, Terminal::default())
}

/// What the process's streams allow: progress bars on stderr, colour on
/// each. All off for captured output ([`run_with`]).
#[derive(Debug, Clone, Copy, Default)]
struct Terminal {
    /// Progress bars may be drawn on stderr.
    progress: bool,
    /// Colour on stdout.
    paint_out: Paint,
    /// Colour on stderr.
    paint_err: Paint,
}

/// Where a command writes, and in which colours.
pub(super) struct Streams<'a> {
    /// Standard output.
    pub(super) out: &'a mut dyn Write,
    /// Standard error.
    pub(super) err: &'a mut dyn Write,
    /// Colour on `out`.
    pub(super) paint_out: Paint,
    /// Colour on `err`.
    pub(super) paint_err: Paint,
}

/// [`run_with`], with what the process's streams allow ([`Terminal`]).
fn run_inner<I, T>(args: I, filter_wasm: &[u8], out: &mut dyn Write, err: &mut dyn Write, terminal: Terminal) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayVersion => {
            let _ = out.write_all(version::version_text(filter_wasm).as_bytes());
            return EXIT_OK;
        }
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
    let mut notes = notes::Notes::new(cli.strict);
    let result = match cli.command {
        Command::Test(args) => {
            let streams = Streams {
                out: &mut *out,
                err: &mut *err,
                paint_out: terminal.paint_out,
                paint_err: terminal.paint_err,
            };
            test::test(args, filter_wasm, &mut notes, streams)
        }
        Command::Check(args) => {
            let streams = Streams {
                out: &mut *out,
                err: &mut *err,
                paint_out: terminal.paint_out,
                paint_err: terminal.paint_err,
            };
            check::check(&args, &mut notes, streams)
        }
        Command::Explain(args) => explain::explain(args, filter_wasm, &mut notes, out, err),
        Command::Diff(args) => diff::diff(&args, &mut notes, out, err),
        Command::Compile(args) => compile::compile_to(&args.policy, &args.output, &mut notes, out, err),
        Command::Wasm(args) => write(&args.output, filter_wasm, out),
        Command::Oci(args) => oci::oci_image(args, filter_wasm, out),
        Command::Wasmplugin(args) => wasmplugin::wasmplugin_manifest(args, filter_wasm, &mut notes, out, err),
        Command::Replay(args) => replay::replay_log(args, filter_wasm, &mut notes, out, err, terminal.progress),
        Command::Schema(args) => schema::schema(args.of, args.output.as_deref(), out),
        Command::Import(args) => import::import(args, &mut notes, out, err),
        Command::Completions(args) => completions::completions(args.shell, Cli::command(), out),
    };
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            if let CliError::Input(message) = &e {
                let _ = writeln!(err, "{}: {message}", terminal.paint_err.fail("error"));
            }
            e.exit_code()
        }
    };
    let _ = out.flush();
    let _ = err.flush();
    code
}
