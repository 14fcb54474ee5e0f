//! What reading a policy noted (Istio input read differently from how it
//! is written, skipped resources, settings that look wrong for where the
//! policy is deployed), shown by every command that reads a policy, and
//! refused under `--strict`.

use std::collections::BTreeSet;
use std::io::{self, Write};
use warden_config::istio::Note;

/// Prints notes, each once per run.
#[derive(Default)]
pub(super) struct Notes {
    /// `--strict`: every note is an error.
    pub(super) strict: bool,
    printed: BTreeSet<String>,
}

impl Notes {
    pub(super) fn new(strict: bool) -> Notes {
        Notes { strict, printed: BTreeSet::new() }
    }

    /// Prints `notes` not printed before, as `note:`/`warning:` lines (or
    /// `error:` under `--strict`), and returns whether `--strict` refuses
    /// the policy they are about.
    pub(super) fn print(&mut self, notes: &[Note], to: &mut dyn Write) -> io::Result<bool> {
        for note in notes {
            let label = if self.strict && note.is_strict_error() { "error" } else { note.label() };
            let line = format!("{label}: {note}");
            if self.printed.insert(line.clone()) {
                writeln!(to, "{line}")?;
            }
        }
        Ok(refused(self.strict, notes))
    }
}

/// Whether `--strict` refuses a policy with these notes.
fn refused(strict: bool, notes: &[Note]) -> bool {
    strict && notes.iter().any(Note::is_strict_error)
}
