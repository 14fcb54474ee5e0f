//! Policy text as it is read from a file, bounded before a YAML parser
//! sees it: at most [`MAX_FILE_BYTES`] bytes and [`MAX_DEPTH`] nested
//! collections, UTF-8, with a leading byte-order mark removed.
//!
//! The bounds matter because the YAML parser's time grows with the square
//! of the nesting depth: 200 KB of `[` kept it busy for 10 s (38 s in a
//! debug build) before it failed. The depth is measured by a streaming pass that
//! stops at the first collection past the limit, so hostile input is
//! refused in milliseconds.
//!
//! ```
//! use warden_config::input::{check_text, MAX_DEPTH};
//!
//! assert!(check_text("services:\n- hosts: [a.com]\n").is_ok());
//! let deep = "[".repeat(MAX_DEPTH + 1);
//! let e = check_text(&deep).unwrap_err();
//! assert_eq!((e.line, e.column), (1, MAX_DEPTH + 1));
//! ```

use std::io::Read;
use std::path::Path;
use yaml_rust2::parser::{Event, Parser};

use crate::error::LoadError;

/// The largest file read as a policy, Istio YAML or test file: 4 MiB,
/// more than twice what a Kubernetes object may hold (etcd refuses
/// requests over 1.5 MiB).
pub const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;

/// The deepest nesting of mappings and sequences read: 64. The deepest
/// field of a policy in its envelope is 10 levels down
/// (`spec.authorization[].rules[].from[].source.principals[]`), an Istio
/// `List` adds two.
pub const MAX_DEPTH: usize = 64;

/// The UTF-8 byte-order mark some editors write first.
const BOM: char = '\u{feff}';

/// Text that is refused before it is parsed: where, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The line (1-based) where the problem is.
    pub line: usize,
    /// The column (1-based, in characters).
    pub column: usize,
    /// What is wrong.
    pub problem: String,
}

/// Reads a file as policy text: refuses one larger than
/// [`MAX_FILE_BYTES`], not UTF-8, or nested deeper than [`MAX_DEPTH`];
/// drops a leading byte-order mark.
pub fn read(path: &Path) -> Result<String, LoadError> {
    let file = std::fs::File::open(path).map_err(|e| LoadError::new(path, format!("cannot read: {e}")))?;
    read_from(file, path)
}

/// Reads policy text from `reader` (standard input: `-` on the command
/// line), bounded like [`read`]; `name` is what errors call it.
pub fn read_from(reader: impl Read, name: &Path) -> Result<String, LoadError> {
    let path = name;
    let cannot_read = |e: std::io::Error| LoadError::new(path, format!("cannot read: {e}"));
    let mut bytes = Vec::new();
    // One byte more than the limit tells a file at the limit from a larger one.
    reader.take(MAX_FILE_BYTES as u64 + 1).read_to_end(&mut bytes).map_err(cannot_read)?;
    if bytes.len() > MAX_FILE_BYTES {
        return Err(LoadError::new(
            path,
            format!("larger than {} MiB, the most Warden reads as one file", MAX_FILE_BYTES >> 20),
        ));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let before = e.as_bytes().get(..at).unwrap_or_default();
        let line = before.iter().filter(|b| **b == b'\n').count() + 1;
        LoadError::new(path, format!("not UTF-8 text (byte {at} is not valid UTF-8)")).at_line(Some(line))
    })?;
    let text = match text.strip_prefix(BOM) {
        Some(rest) => rest.to_owned(),
        None => text,
    };
    check_text(&text).map_err(|r| LoadError::new(path, r.problem).at_line(Some(r.line)).at_column(Some(r.column)))?;
    Ok(text)
}

/// Checks that `text` nests mappings and sequences at most [`MAX_DEPTH`]
/// deep. Text that is not valid YAML passes unless it could be deep: the
/// YAML reader reports what is wrong with it.
pub fn check_text(text: &str) -> Result<(), Refused> {
    let mut parser = Parser::new_from_str(text);
    let mut depth = 0usize;
    loop {
        match parser.next_token() {
            Ok((Event::StreamEnd, _)) => return Ok(()),
            Ok((Event::MappingStart(..) | Event::SequenceStart(..), at)) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(too_deep(at.line(), at.col() + 1));
                }
            }
            Ok((Event::MappingEnd | Event::SequenceEnd, _)) => depth = depth.saturating_sub(1),
            Ok(_) => {}
            // This reader stops where the other would go on (its own limit
            // on flow nesting, or a construct it reads differently): count
            // brackets instead, all of them, so that nothing hides a deep
            // nest from the count. Only text this reader refused gets here,
            // so a miscount costs nothing but which error is shown.
            Err(_) => return bracket_depth(text),
        }
    }
}

/// The bracket count of [`check_text`]: every `[` and `{` opens, every `]`
/// and `}` closes, wherever they are.
fn bracket_depth(text: &str) -> Result<(), Refused> {
    let (mut depth, mut line, mut column) = (0usize, 1usize, 0usize);
    for c in text.chars() {
        column += 1;
        match c {
            '\n' => (line, column) = (line + 1, 0),
            '[' | '{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(too_deep(line, column));
                }
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

fn too_deep(line: usize, column: usize) -> Refused {
    Refused {
        line,
        column,
        problem: format!(
            "nested more than {MAX_DEPTH} mappings or sequences deep (no policy or Istio resource is): refused \
             before it is parsed"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_block_and_flow_collections() {
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(check_text(&nested(MAX_DEPTH)).is_ok());
        assert_eq!(check_text(&nested(MAX_DEPTH + 1)).map_err(|r| (r.line, r.column)), Err((1, MAX_DEPTH + 1)));
        // Block sequences in block sequences, one level per `- `.
        let block = format!("a:\n{}x\n", "- ".repeat(MAX_DEPTH));
        let e = check_text(&block).unwrap_err();
        assert_eq!(e.line, 2);
        // Brackets in quoted strings and comments are not collections.
        let quoted = format!("a: '{}'\n# {}\n", "[".repeat(500), "{".repeat(500));
        assert!(check_text(&quoted).is_ok());
        // Not YAML: left to the YAML reader, unless brackets nest deep.
        assert!(check_text("a: [\n").is_ok());
        assert_eq!(check_text(&"[".repeat(200_000)).map_err(|r| (r.line, r.column)), Err((1, MAX_DEPTH + 1)));
        let hidden = format!("a: 'x\n\t{}", "{".repeat(1000));
        assert_eq!(check_text(&hidden).map_err(|r| (r.line, r.column)), Err((2, MAX_DEPTH + 2)));
    }

    #[test]
    fn files_are_bounded_and_lose_their_byte_order_mark() {
        let dir = std::env::temp_dir().join(format!("warden-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bom = dir.join("bom.yaml");
        std::fs::write(&bom, "\u{feff}name: t\n").unwrap();
        assert_eq!(read(&bom).unwrap(), "name: t\n");
        let big = dir.join("big.yaml");
        std::fs::write(&big, "#".repeat(MAX_FILE_BYTES + 1)).unwrap();
        assert_eq!(read(&big).unwrap_err().problem, "larger than 4 MiB, the most Warden reads as one file");
        let latin1 = dir.join("latin1.yaml");
        std::fs::write(&latin1, b"name: t\nhost: caf\xe9\n").unwrap();
        let e = read(&latin1).unwrap_err();
        assert_eq!((e.line, e.problem.as_str()), (Some(2), "not UTF-8 text (byte 17 is not valid UTF-8)"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
