//! How a file path is shown to a user in messages and reports.

use std::path::{Component, Path, PathBuf};

/// A path as the user should see it: relative to the current directory
/// when it lies below it, without a leading `./`; `-` is standard input.
pub fn shown(path: &Path) -> String {
    if path.as_os_str() == crate::STDIN {
        return "<stdin>".into();
    }
    let relative = if path.is_absolute() {
        std::env::current_dir()
            .ok()
            .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
            .unwrap_or_else(|| path.to_path_buf())
    } else {
        path.to_path_buf()
    };
    let cleaned: PathBuf = relative.components().skip_while(|c| matches!(c, Component::CurDir)).collect();
    if cleaned.as_os_str().is_empty() {
        ".".into()
    } else {
        cleaned.display().to_string()
    }
}
