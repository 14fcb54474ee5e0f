//! How a command ends: the exit codes and the error that carries its own.

use std::io;

/// Everything went as asked.
pub const EXIT_OK: i32 = 0;
/// A test or a check failed.
pub const EXIT_FAILED: i32 = 1;
/// The command line or an input was unusable.
pub const EXIT_USAGE: i32 = 2;

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
pub(super) type Exit = Result<i32, CliError>;
