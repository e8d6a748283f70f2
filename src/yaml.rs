//! Position-aware YAML: every node remembers the file, line and column it came
//! from, so that errors in user input can point at it. Scalars are resolved the
//! way Ansible's YAML 1.1 loader does (`yes`/`no`/`on`/`off` are booleans, a
//! leading `0` makes an integer octal).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::error::InputError;
use crate::Value;

/// Where a node starts: file, 1-based line and 1-based column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pos {
    /// The file the node was read from (or a pseudo-name such as `<extra-vars>`).
    pub file: Arc<PathBuf>,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
}

impl Pos {
    /// A position at the start of `file`, for errors that concern a whole file.
    pub fn file_start(file: &Path) -> Pos {
        Pos {
            file: Arc::new(file.to_path_buf()),
            line: 1,
            col: 1,
        }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
    }
}

/// A YAML node with its position.
#[derive(Clone, Debug)]
pub struct Node {
    /// Where the node starts.
    pub pos: Pos,
    /// What the node holds.
    pub kind: NodeKind,
}

/// The content of a [`Node`].
#[derive(Clone, Debug)]
pub enum NodeKind {
    /// `~`, `null` or nothing.
    Null,
    /// `true`/`false`/`yes`/`no`/`on`/`off`.
    Bool(bool),
    /// An integer (decimal, `0x` hex, `0o` or leading-zero octal).
    Int(i64),
    /// A float.
    Float(f64),
    /// Any other scalar, and every quoted or block scalar.
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in document order.
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// The mapping entries, if this is a mapping.
    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            NodeKind::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The items, if this is a sequence.
    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.kind {
            NodeKind::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// The string, if this is a string scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Is this a null node?
    pub fn is_null(&self) -> bool {
        matches!(self.kind, NodeKind::Null)
    }

    /// The value under `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.key_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// A mapping key as text (scalars only; numbers and booleans are printed).
    pub fn key_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The scalar printed as a string, for keys that YAML typed as numbers.
    pub fn scalar_string(&self) -> Option<String> {
        match &self.kind {
            NodeKind::Str(s) => Some(s.clone()),
            NodeKind::Int(i) => Some(i.to_string()),
            NodeKind::Float(f) => Some(f.to_string()),
            NodeKind::Bool(b) => Some(b.to_string()),
            NodeKind::Null => Some(String::new()),
            _ => None,
        }
    }

    /// Convert to a plain data value (positions dropped).
    pub fn to_value(&self) -> Value {
        match &self.kind {
            NodeKind::Null => Value::Null,
            NodeKind::Bool(b) => Value::Bool(*b),
            NodeKind::Int(i) => Value::from(*i),
            NodeKind::Float(f) => serde_json::Number::from_f64(*f)
                .map(Value::Number)
                .unwrap_or(Value::Null),
            NodeKind::Str(s) => Value::String(s.clone()),
            NodeKind::Seq(items) => Value::Array(items.iter().map(Node::to_value).collect()),
            NodeKind::Map(entries) => {
                let mut map = crate::Map::new();
                for (k, v) in entries {
                    map.insert(k.scalar_string().unwrap_or_default(), v.to_value());
                }
                Value::Object(map)
            }
        }
    }

    /// An error located at this node.
    pub fn error(&self, msg: impl Into<String>) -> InputError {
        InputError::new(self.pos.clone(), msg)
    }
}

/// Read and parse a YAML file holding one document. An empty file is `Null`.
pub fn load_file(path: &Path) -> Result<Node, InputError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| InputError::new(Pos::file_start(path), format!("cannot read file: {e}")))?;
    load_str(&text, path)
}

/// Parse YAML text; `path` is used for positions only.
pub fn load_str(text: &str, path: &Path) -> Result<Node, InputError> {
    let file = Arc::new(path.to_path_buf());
    let mut builder = Builder {
        file: file.clone(),
        stack: Vec::new(),
        anchors: Vec::new(),
        docs: Vec::new(),
        error: None,
    };
    let mut parser = Parser::new_from_str(text);
    if let Err(e) = parser.load(&mut builder, true) {
        let m = e.marker();
        return Err(InputError::new(
            Pos {
                file,
                line: m.line(),
                col: m.col() + 1,
            },
            format!("YAML syntax error: {}", e.info()),
        ));
    }
    if let Some(err) = builder.error {
        return Err(err);
    }
    match builder.docs.len() {
        0 => Ok(Node {
            pos: Pos {
                file,
                line: 1,
                col: 1,
            },
            kind: NodeKind::Null,
        }),
        1 => Ok(builder.docs.remove(0)),
        _ => Err(InputError::new(
            builder.docs[1].pos.clone(),
            "expected a single YAML document",
        )),
    }
}

enum Open {
    Seq(Node, usize),
    Map(Node, usize, Option<Node>),
}

struct Builder {
    file: Arc<PathBuf>,
    stack: Vec<Open>,
    anchors: Vec<(usize, Node)>,
    docs: Vec<Node>,
    error: Option<InputError>,
}

impl Builder {
    fn pos(&self, mark: Marker) -> Pos {
        Pos {
            file: self.file.clone(),
            line: mark.line(),
            col: mark.col() + 1,
        }
    }

    fn push_value(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.push((anchor, node.clone()));
        }
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Open::Seq(seq, _)) => {
                if let NodeKind::Seq(items) = &mut seq.kind {
                    items.push(node);
                }
            }
            Some(Open::Map(map, _, pending)) => match pending.take() {
                None => *pending = Some(node),
                Some(key) => {
                    if let NodeKind::Map(entries) = &mut map.kind {
                        if key.key_str() == Some("<<") {
                            merge_into(entries, node);
                        } else if let Some(slot) = entries
                            .iter_mut()
                            .find(|(k, _)| k.scalar_string() == key.scalar_string())
                        {
                            // Later keys win, as in PyYAML.
                            *slot = (key, node);
                        } else {
                            entries.push((key, node));
                        }
                    }
                }
            },
        }
    }
}

/// YAML merge keys (`<<: *anchor`): keys already present win.
fn merge_into(entries: &mut Vec<(Node, Node)>, source: Node) {
    let sources = match source.kind {
        NodeKind::Seq(items) => items,
        _ => vec![source],
    };
    for src in sources {
        if let NodeKind::Map(src_entries) = src.kind {
            for (k, v) in src_entries {
                if !entries
                    .iter()
                    .any(|(e, _)| e.scalar_string() == k.scalar_string())
                {
                    entries.push((k, v));
                }
            }
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        match ev {
            Event::SequenceStart(anchor, _) => {
                let node = Node {
                    pos: self.pos(mark),
                    kind: NodeKind::Seq(Vec::new()),
                };
                self.stack.push(Open::Seq(node, anchor));
            }
            Event::MappingStart(anchor, _) => {
                let node = Node {
                    pos: self.pos(mark),
                    kind: NodeKind::Map(Vec::new()),
                };
                self.stack.push(Open::Map(node, anchor, None));
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some(Open::Seq(node, anchor) | Open::Map(node, anchor, _)) = self.stack.pop()
                {
                    let mut node = node;
                    // The parser marks a block mapping where it sees the first
                    // ':'; point at the first key instead.
                    if let NodeKind::Map(entries) = &node.kind {
                        if let Some((k, _)) = entries.first() {
                            if k.pos.line == node.pos.line && k.pos.col < node.pos.col {
                                node.pos = k.pos.clone();
                            }
                        }
                    }
                    self.push_value(node, anchor);
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                let node = Node {
                    pos: self.pos(mark),
                    kind: resolve_scalar(text, style, tag.as_ref()),
                };
                self.push_value(node, anchor);
            }
            Event::Alias(id) => match self.anchors.iter().rev().find(|(a, _)| *a == id) {
                Some((_, node)) => {
                    let node = node.clone();
                    self.push_value(node, 0);
                }
                None => {
                    self.error = Some(InputError::new(self.pos(mark), "unknown YAML alias"));
                }
            },
            _ => {}
        }
    }
}

/// Resolve a scalar the way PyYAML (YAML 1.1) does for Ansible.
fn resolve_scalar(text: String, style: TScalarStyle, tag: Option<&Tag>) -> NodeKind {
    if let Some(tag) = tag {
        // `!unsafe`, `!vault` and `!!str` keep the text as it is.
        if tag.suffix == "str" || tag.suffix == "unsafe" || tag.suffix == "vault" {
            return NodeKind::Str(text);
        }
    }
    if style != TScalarStyle::Plain {
        return NodeKind::Str(text);
    }
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return NodeKind::Null,
        "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => {
            return NodeKind::Bool(true)
        }
        "false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => {
            return NodeKind::Bool(false)
        }
        _ => {}
    }
    if let Some(i) = parse_int(&text) {
        return NodeKind::Int(i);
    }
    if looks_like_float(&text) {
        if let Ok(f) = text.replace('_', "").parse::<f64>() {
            return NodeKind::Float(f);
        }
    }
    NodeKind::Str(text)
}

fn parse_int(text: &str) -> Option<i64> {
    let (neg, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if body.is_empty() || !body.chars().next()?.is_ascii_digit() {
        return None;
    }
    let body = body.replace('_', "");
    let value = if let Some(hex) = body.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).ok()?
    } else if let Some(oct) = body.strip_prefix("0o") {
        i64::from_str_radix(oct, 8).ok()?
    } else if body.len() > 1 && body.starts_with('0') {
        i64::from_str_radix(&body[1..], 8).ok()?
    } else {
        body.parse::<i64>().ok()?
    };
    Some(if neg { -value } else { value })
}

fn looks_like_float(text: &str) -> bool {
    let t = text.trim_start_matches(['-', '+']);
    matches!(t, ".inf" | ".Inf" | ".INF")
        || (t
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit() || c == '.')
            && t.chars().any(|c| c == '.' || c == 'e' || c == 'E')
            && t.chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+' | '_')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Node {
        load_str(text, Path::new("t.yml")).expect("valid yaml")
    }

    #[test]
    fn positions_are_one_based() {
        let doc = load("a: 1\nb:\n  c: x\n");
        let b = doc.get("b").expect("b");
        let c = b.get("c").expect("c");
        assert_eq!((c.pos.line, c.pos.col), (3, 6));
    }

    #[test]
    fn yaml_1_1_scalars() {
        let doc = load("a: yes\nb: 0644\nc: '0644'\nd: off\ne: 1.5\nf: ~\n");
        let v = doc.to_value();
        assert_eq!(v["a"], Value::Bool(true));
        assert_eq!(v["b"], Value::from(420));
        assert_eq!(v["c"], Value::from("0644"));
        assert_eq!(v["d"], Value::Bool(false));
        assert_eq!(v["e"], serde_json::json!(1.5));
        assert_eq!(v["f"], Value::Null);
    }

    #[test]
    fn merge_keys_and_aliases() {
        let doc = load("base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  y: 3\n");
        assert_eq!(doc.to_value()["d"], serde_json::json!({"y": 3, "x": 1}));
    }

    #[test]
    fn syntax_error_has_position() {
        let err = load_str("a: [1, 2\nb: 3\n", Path::new("bad.yml")).expect_err("invalid");
        assert!(err.to_string().starts_with("bad.yml:"), "{err}");
    }
}
