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
