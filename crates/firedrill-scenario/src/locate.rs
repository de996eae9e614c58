//! Maps paths inside a YAML document (`faults[1].target`) to line and column, so that errors found after
//! deserialisation still point at the exact place in the file.
//!
//! serde-saphyr reports positions for syntax and type errors; for the semantic checks that run on the typed
//! document (unknown services, versions, parameters) this walks the parser's event stream once and records
//! where every node starts.

use std::collections::BTreeMap;

use firedrill_world::topology::{PathSeg, SpecPath};
use serde_saphyr::granit_parser::{Event, Parser};

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub col: usize,
}

/// Where each node of a document starts.
#[derive(Debug, Clone, Default)]
pub struct Locator {
    nodes: BTreeMap<String, Position>,
}

enum Frame {
    Map { key: Option<String> },
    Seq { next: usize },
}

impl Locator {
    /// Indexes a document. A document that does not parse gives an empty index (the parse error is reported
    /// by the deserialiser instead).
    pub fn new(text: &str) -> Locator {
        let mut nodes = BTreeMap::new();
        let mut stack: Vec<(Frame, SpecPath)> = Vec::new();
        let mut parser = Parser::new_from_str(text);
        while let Some(Ok((event, span))) = parser.next_event() {
            let pos = Position {
                line: span.start.line(),
                col: span.start.col() + 1,
            };
            let is_node = matches!(
                event,
                Event::Scalar(..)
                    | Event::SequenceStart(..)
                    | Event::MappingStart(..)
                    | Event::Alias(..)
            );
            let mut node_path = None;
            if is_node {
                match stack.last_mut() {
                    None => node_path = Some(SpecPath::root()),
                    Some((Frame::Map { key }, path)) => match key.take() {
                        None => {
                            // A key: remember it; it also locates its value if the value has no position.
                            if let Event::Scalar(text, ..) = &event {
                                let p = path.key(text);
                                nodes.entry(p.to_string()).or_insert(pos);
                                *key = Some(text.to_string());
                            } else {
                                *key = Some(String::new());
                            }
                            continue;
                        }
                        Some(k) => node_path = Some(path.key(&k)),
                    },
                    Some((Frame::Seq { next }, path)) => {
                        node_path = Some(path.index(*next));
                        *next += 1;
                    }
                }
            }
            match event {
                Event::MappingStart(..) => {
                    let p = node_path.unwrap_or_default();
                    nodes.entry(p.to_string()).or_insert(pos);
                    stack.push((Frame::Map { key: None }, p));
                }
                Event::SequenceStart(..) => {
                    let p = node_path.unwrap_or_default();
                    nodes.entry(p.to_string()).or_insert(pos);
                    stack.push((Frame::Seq { next: 0 }, p));
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    stack.pop();
                }
                _ => {
                    if let Some(p) = node_path {
                        // A scalar value: point at the value itself rather than its key.
                        nodes.insert(p.to_string(), pos);
                    }
                }
            }
        }
        Locator { nodes }
    }

    /// The position of a path, or of its nearest ancestor that has one.
    pub fn find(&self, path: &SpecPath) -> Option<Position> {
        let mut segs = path.0.clone();
        loop {
            if let Some(p) = self.nodes.get(&SpecPath(segs.clone()).to_string()) {
                return Some(*p);
            }
            segs.pop()?;
        }
    }
}

/// A helper to build paths from literal segments in tests and callers.
pub fn path(segs: &[&str]) -> SpecPath {
    SpecPath(
        segs.iter()
            .map(|s| match s.parse::<usize>() {
                Ok(n) => PathSeg::Index(n),
                Err(_) => PathSeg::Key(s.to_string()),
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_keys_values_and_items() {
        let text =
            "id: x\nfaults:\n  - id: a\n    target: order-service\n  - id: b\n    target: $t\n";
        let loc = Locator::new(text);
        assert_eq!(loc.find(&path(&["id"])), Some(Position { line: 1, col: 5 }));
        assert_eq!(
            loc.find(&path(&["faults", "1", "target"])),
            Some(Position { line: 6, col: 13 })
        );
        assert_eq!(
            loc.find(&path(&["faults", "0"])),
            Some(Position { line: 3, col: 5 })
        );
        // A missing child falls back to its parent.
        assert_eq!(
            loc.find(&path(&["faults", "1", "nothing"])),
            Some(Position { line: 5, col: 5 })
        );
    }
}
