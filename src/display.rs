//! How paths, values and withheld data are shown to a user in messages
//! and reports.

use base64::Engine as _;
use std::path::{Path, PathBuf};

pub use warden_config::display::shown;

/// What a report shows instead of data DLP found something in.
pub const WITHHELD: &str = "<withheld: DLP findings>";

/// Text as JSON quotes it (shows whitespace and control characters).
pub fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| format!("{text:?}"))
}

/// Bytes as quoted text, or base64 when they are not UTF-8.
pub fn quoted_bytes(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => quoted(text),
        Err(_) => format!("base64:{}", base64::engine::general_purpose::STANDARD.encode(bytes)),
    }
}

/// Policy files as shown in messages: `dir/a.yaml`; several in one
/// directory as `dir/{a.yaml, b.yaml}`, else joined with `, `.
pub fn shown_list(paths: &[PathBuf]) -> String {
    let parents: Vec<Option<&Path>> = paths.iter().map(|p| p.parent()).collect();
    let names: Option<Vec<String>> =
        paths.iter().map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned())).collect();
    match (parents.first(), names) {
        (Some(Some(dir)), Some(names)) if paths.len() > 1 && parents.iter().all(|p| *p == Some(*dir)) => {
            let dir = shown(dir);
            let dir = if dir == "." { String::new() } else { format!("{dir}/") };
            format!("{dir}{{{}}}", names.join(", "))
        }
        _ => paths.iter().map(|p| shown(p)).collect::<Vec<_>>().join(", "),
    }
}

/// The words a reader scans a report for, in colour on a terminal: `ok`
/// green, `FAIL` and `error` red, `warning` yellow. Off unless the stream
/// is a terminal and `NO_COLOR` is unset or empty (no-color.org), so
/// captured output, files and pipes stay plain.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Paint {
    on: bool,
}

impl Paint {
    /// No colour: captured output, files, pipes.
    pub const PLAIN: Paint = Paint { on: false };

    /// Colour for a stream that is (`terminal`) a terminal, unless
    /// `no_color` (the value of `NO_COLOR`) is set and not empty.
    pub fn for_stream(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> Paint {
        Paint { on: terminal && no_color.is_none_or(|v| v.is_empty()) }
    }

    /// Whether colour is on.
    pub fn is_on(self) -> bool {
        self.on
    }

    fn styled(self, style: anstyle::Style, text: &str) -> String {
        if self.on {
            format!("{style}{text}{style:#}")
        } else {
            text.to_owned()
        }
    }

    /// `text` as a success (`ok`).
    pub fn ok(self, text: &str) -> String {
        self.styled(anstyle::AnsiColor::Green.on_default().bold(), text)
    }

    /// `text` as a failure or an error (`FAIL`, `error`).
    pub fn fail(self, text: &str) -> String {
        self.styled(anstyle::AnsiColor::Red.on_default().bold(), text)
    }

    /// `text` as a warning.
    pub fn warn(self, text: &str) -> String {
        self.styled(anstyle::AnsiColor::Yellow.on_default().bold(), text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        let on = Paint::for_stream(true, None);
        assert_eq!(on.ok("ok"), "\u{1b}[1m\u{1b}[32mok\u{1b}[0m");
        assert!(on.fail("FAIL").starts_with("\u{1b}[") && on.fail("FAIL").contains("31m"));
        assert!(on.warn("warning").contains("33m"));
        assert_eq!(Paint::for_stream(false, None).fail("FAIL"), "FAIL", "not a terminal");
        assert_eq!(Paint::for_stream(true, Some(std::ffi::OsStr::new("1"))).ok("ok"), "ok", "NO_COLOR");
        assert!(Paint::for_stream(true, Some(std::ffi::OsStr::new(""))).is_on(), "an empty NO_COLOR is unset");
        assert_eq!(Paint::PLAIN.warn("warning"), "warning");
    }
}
