//! The `warden` command line. `main.rs` only calls [`run`].

use crate::policy_file;
use clap::{Parser, Subcommand};
use std::ffi::OsString;
use std::path::PathBuf;
use warden_engine::{bundle, compile};

/// Everything went as asked.
pub const EXIT_OK: i32 = 0;
/// A test or a check failed.
pub const EXIT_FAILED: i32 = 1;
/// The command line or an input was unusable.
pub const EXIT_USAGE: i32 = 2;

#[derive(Parser)]
#[command(name = "warden", version, about = "Egress policy filter for Envoy: check, compile and ship policies")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate policy files; errors name the exact field.
    Check {
        /// Policy files (YAML or JSON, bare or in a warden/v1 envelope).
        #[arg(required = true)]
        policies: Vec<PathBuf>,
    },
    /// Compile a policy into the binary bundle the filter also accepts.
    Compile {
        /// The policy file.
        policy: PathBuf,
        /// Where to write the bundle.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Write the filter module (warden.wasm) this CLI was built with.
    Wasm {
        /// Where to write it.
        #[arg(short, long)]
        output: PathBuf,
    },
}

/// Runs the CLI with `args` (program name first) and returns the exit code.
pub fn run(args: impl IntoIterator<Item = OsString>, filter_wasm: &[u8]) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() { EXIT_USAGE } else { EXIT_OK };
        }
    };
    match cli.command {
        Command::Check { policies } => check(&policies),
        Command::Compile { policy, output } => compile_to(&policy, &output),
        Command::Wasm { output } => write(&output, filter_wasm),
    }
}

fn check(policies: &[PathBuf]) -> i32 {
    let mut code = EXIT_OK;
    for path in policies {
        match policy_file::load_config(path) {
            Err(err) => {
                eprintln!("error: {err}");
                code = code.max(EXIT_USAGE);
            }
            Ok(config) => match compile::load(&config) {
                Ok(p) => println!(
                    "{}: ok ({} services, {} authorization policies)",
                    path.display(),
                    p.registry().services().len(),
                    p.authz_policies().len()
                ),
                Err(err) => {
                    println!("{}: {err}", path.display());
                    code = code.max(EXIT_FAILED);
                }
            },
        }
    }
    code
}

fn compile_to(policy: &std::path::Path, output: &std::path::Path) -> i32 {
    let config = match policy_file::load_config(policy) {
        Ok(c) => c,
        Err(err) => {
            eprintln!("error: {err}");
            return EXIT_USAGE;
        }
    };
    let bytes = match compile::load(&config).and_then(|p| bundle::encode(&p)) {
        Ok(b) => b,
        Err(err) => {
            eprintln!("error: {}: {err}", policy.display());
            return EXIT_FAILED;
        }
    };
    write(output, &bytes)
}

fn write(output: &std::path::Path, bytes: &[u8]) -> i32 {
    match std::fs::write(output, bytes) {
        Ok(()) => {
            println!("wrote {} ({} bytes)", output.display(), bytes.len());
            EXIT_OK
        }
        Err(err) => {
            eprintln!("error: cannot write {}: {err}", output.display());
            EXIT_USAGE
        }
    }
}
