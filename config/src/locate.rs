//! Where a field is in a YAML (or JSON) file: the line of a field path such
//! as `services[0].hosts[1]` or `spec.rules[0].from[0].source` in one of the
//! file's documents, so that an error names the line as well as the field.
//!
//! ```
//! use warden_config::locate::line_of;
//!
//! let text = "name: a\nservices:\n- name: b\n  hostz: [b.com]\n---\nname: c\n";
//! assert_eq!(line_of(text, 0, "services[0].hostz"), Some(4));
//! assert_eq!(line_of(text, 1, "name"), Some(6));
//! assert_eq!(line_of(text, 0, "services[1]"), None);
//! ```

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// `a.b[0]["c.d"]` → `[a, b, 0, c.d]`; `None` when it does not parse.
fn steps(path: &str) -> Option<Vec<Step>> {
    let mut out = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("[\"") {
            let (key, tail) = after.split_once("\"]")?;
            out.push(Step::Key(key.to_owned()));
            rest = tail;
        } else if let Some(after) = rest.strip_prefix('[') {
            let (index, tail) = after.split_once(']')?;
            out.push(Step::Index(index.parse().ok()?));
            rest = tail;
        } else {
            let rest_key = rest.strip_prefix('.').unwrap_or(rest);
            let end = rest_key.find(['.', '[']).unwrap_or(rest_key.len());
            let (key, tail) = rest_key.split_at(end);
            if key.is_empty() {
                return None;
            }
            out.push(Step::Key(key.to_owned()));
            rest = tail;
        }
    }
    Some(out)
}

/// The line (1-based) of the field at `path` in the `document`-th
/// (0-based) YAML document of `text`: the line of its key in a mapping, of
/// its entry in a sequence. `None` when the text does not parse, the path
/// is not there (it came from a default, an alias or a merge key), or the
/// path is empty.
pub fn line_of(text: &str, document: usize, path: &str) -> Option<usize> {
    let target = steps(path).filter(|s| !s.is_empty())?;
    let mut finder = Finder { target, document, documents: 0, stack: Vec::new(), found: None };
    let mut parser = Parser::new_from_str(text);
    // A parse error after the field was found does not unfind it.
    let _ = parser.load(&mut finder, true);
    finder.found
}

/// How a container is reached from its parent.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reached {
    /// The document's top node.
    Root,
    /// By this step.
    By(Step),
    /// Through a complex key or an alias: no field path leads here.
    Lost,
}

/// A container being read.
enum Frame {
    /// A mapping: whether the next node is a key, and the current key (a
    /// scalar; `None` for a complex key).
    Map { reached: Reached, at_key: bool, key: Option<String> },
    /// A sequence: the index of the next entry.
    Seq { reached: Reached, next: usize },
}

impl Frame {
    fn reached(&self) -> &Reached {
        match self {
            Frame::Map { reached, .. } | Frame::Seq { reached, .. } => reached,
        }
    }
}

struct Finder {
    target: Vec<Step>,
    document: usize,
    documents: usize,
    stack: Vec<Frame>,
    found: Option<usize>,
}

impl Finder {
    /// Whether the path to the current container, then `last`, is the
    /// target.
    fn is_target(&self, last: &Step) -> bool {
        let mut steps = Vec::with_capacity(self.stack.len() + 1);
        for frame in &self.stack {
            match frame.reached() {
                Reached::Root => {}
                Reached::By(step) => steps.push(step),
                Reached::Lost => return false,
            }
        }
        steps.push(last);
        steps.len() == self.target.len() && steps.iter().zip(&self.target).all(|(a, b)| *a == b)
    }

    fn mark(&mut self, last: &Step, at: Marker) {
        if self.found.is_none() && self.is_target(last) {
            self.found = Some(at.line());
        }
    }

    /// A scalar or an alias (`key` is its text, if a scalar).
    fn leaf(&mut self, text: Option<&str>, at: Marker) {
        let probe = match self.stack.last() {
            Some(Frame::Map { at_key: true, .. }) => text.map(|t| Step::Key(t.to_owned())),
            Some(Frame::Seq { next, .. }) => Some(Step::Index(*next)),
            _ => None,
        };
        if let Some(step) = &probe {
            self.mark(step, at);
        }
        match self.stack.last_mut() {
            Some(Frame::Map { at_key, key, .. }) => {
                *key = if *at_key { text.map(str::to_owned) } else { None };
                *at_key = !*at_key;
            }
            Some(Frame::Seq { next, .. }) => *next += 1,
            None => {}
        }
    }

    /// A container starts.
    fn open(&mut self, map: bool, at: Marker) {
        let reached = match self.stack.last() {
            None => Reached::Root,
            Some(Frame::Map { at_key: true, .. }) => Reached::Lost,
            Some(Frame::Map { key, .. }) => key.clone().map_or(Reached::Lost, |k| Reached::By(Step::Key(k))),
            Some(Frame::Seq { next, .. }) => Reached::By(Step::Index(*next)),
        };
        if let (Some(Frame::Seq { .. }), Reached::By(step)) = (self.stack.last(), &reached) {
            let step = step.clone();
            self.mark(&step, at);
        }
        self.stack.push(if map {
            Frame::Map { reached, at_key: true, key: None }
        } else {
            Frame::Seq { reached, next: 0 }
        });
    }

    /// A container ends: its parent moves on.
    fn close(&mut self) {
        self.stack.pop();
        match self.stack.last_mut() {
            Some(Frame::Map { at_key, key, .. }) => {
                if !*at_key {
                    *key = None;
                }
                *at_key = !*at_key;
            }
            Some(Frame::Seq { next, .. }) => *next += 1,
            None => {}
        }
    }
}

impl MarkedEventReceiver for Finder {
    fn on_event(&mut self, event: Event, at: Marker) {
        if let Event::DocumentStart = event {
            self.documents += 1;
            self.stack.clear();
            return;
        }
        if self.found.is_some() || self.documents != self.document + 1 {
            return;
        }
        match event {
            Event::Scalar(text, ..) => self.leaf(Some(&text), at),
            Event::Alias(_) => self.leaf(None, at),
            Event::MappingStart(..) => self.open(true, at),
            Event::SequenceStart(..) => self.open(false, at),
            Event::MappingEnd | Event::SequenceEnd => self.close(),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse() {
        let k = |s: &str| Step::Key(s.to_owned());
        assert_eq!(steps("a.b[2].c"), Some(vec![k("a"), k("b"), Step::Index(2), k("c")]));
        assert_eq!(
            steps("metadata.annotations[\"istio.io/dry-run\"]"),
            Some(vec![k("metadata"), k("annotations"), k("istio.io/dry-run")])
        );
        assert_eq!(steps("a[x]"), None);
        assert_eq!(steps("a..b"), None);
    }

    #[test]
    fn fields_are_found_in_block_and_flow_style() {
        let text = "\
name: t
services:
- name: a
  hosts: [a.com, b.com]
- {name: b, hosts: [c.com]}
authorization:
- name: p
  rules:
  - from:
    - source:
        principals:
        - x
        - y
";
        assert_eq!(line_of(text, 0, "name"), Some(1));
        assert_eq!(line_of(text, 0, "services[0].hosts"), Some(4));
        assert_eq!(line_of(text, 0, "services[0].hosts[1]"), Some(4));
        assert_eq!(line_of(text, 0, "services[1]"), Some(5));
        assert_eq!(line_of(text, 0, "services[1].hosts[0]"), Some(5));
        assert_eq!(line_of(text, 0, "authorization[0].rules[0].from[0].source.principals[1]"), Some(13));
        assert_eq!(line_of(text, 0, "authorization[0].rules[0].from[0].source.principals"), Some(11));
        // Not there, or not a path.
        assert_eq!(line_of(text, 0, "services[2]"), None);
        assert_eq!(line_of(text, 0, "authorization[0].rules[0].to"), None);
        assert_eq!(line_of(text, 1, "name"), None);
        assert_eq!(line_of(text, 0, ""), None);
    }

    #[test]
    fn documents_json_and_odd_keys() {
        let text = "a: 1\n---\n# comment\nmetadata:\n  annotations:\n    istio.io/dry-run: 'yes'\n";
        assert_eq!(line_of(text, 1, "metadata.annotations[\"istio.io/dry-run\"]"), Some(6));
        let json = "{\n  \"name\": \"t\",\n  \"services\": [\n    {\"name\": \"a\", \"hostz\": []}\n  ]\n}\n";
        assert_eq!(line_of(json, 0, "services[0].hostz"), Some(4));
        // A complex key leads nowhere; the fields after it are still found.
        let complex = "? [a, b]\n: {c: 1}\nd: 2\n";
        assert_eq!(line_of(complex, 0, "c"), None);
        assert_eq!(line_of(complex, 0, "d"), Some(3));
        // Text that does not parse finds what comes before the error.
        assert_eq!(line_of("a: 1\nb: [\n", 0, "a"), Some(1));
    }
}
