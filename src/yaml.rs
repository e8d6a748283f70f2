//! Position-aware YAML: every node remembers the file, line and column it came
//! from, so that errors in user input can point at it. Scalars are resolved the
//! way Ansible's YAML 1.1 loader does (`yes`/`no`/`on`/`off` are booleans, a
//! leading `0` makes an integer octal).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A node's position; defined beside the errors that carry it.
pub use crate::error::Pos;
use crate::error::{InputError, InputErrorKind};
use crate::Value;

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

/// How much data aliases may add to one document, in estimated bytes. A
/// few hundred bytes of nested anchors (`b: &b [*a, *a, ...]`, ten levels
/// deep) otherwise expand to gigabytes; real playbooks and inventories use
/// aliases for small shared mappings, far below this.
pub const MAX_ALIAS_EXPANSION: usize = 16 << 20;

/// What an estimated node costs besides its text (a `Node` and its slot).
const NODE_COST: usize = 64;

/// What to do with a key that appears twice in one mapping (Ansible's
/// `DUPLICATE_YAML_DICT_KEY`). The later value is used unless refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DuplicateKeys {
    /// Warn, naming both places (Ansible's default).
    Warn,
    /// Refuse the file.
    Error,
    /// Say nothing.
    Ignore,
}

impl std::str::FromStr for DuplicateKeys {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "warn" => Ok(DuplicateKeys::Warn),
            "error" => Ok(DuplicateKeys::Error),
            "ignore" => Ok(DuplicateKeys::Ignore),
            other => Err(format!(
                "'{other}' is not a duplicate-key setting (expected warn, error or ignore)"
            )),
        }
    }
}

/// The process-wide duplicate-key setting: 0 warn, 1 error, 2 ignore. The
/// CLI sets it once from the environment; every YAML read (inventory, vars
/// files, `include_vars`, `from_yaml`) follows it.
static DUPLICATE_KEYS: AtomicU8 = AtomicU8::new(0);

/// Warnings from YAML reads not yet shown; the CLI takes them and reports
/// them through the normal warning path.
static WARNINGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Set what every later YAML read does with duplicate keys.
pub fn set_duplicate_keys(policy: DuplicateKeys) {
    let v = match policy {
        DuplicateKeys::Warn => 0,
        DuplicateKeys::Error => 1,
        DuplicateKeys::Ignore => 2,
    };
    DUPLICATE_KEYS.store(v, Ordering::Relaxed);
}

fn duplicate_keys() -> DuplicateKeys {
    match DUPLICATE_KEYS.load(Ordering::Relaxed) {
        1 => DuplicateKeys::Error,
        2 => DuplicateKeys::Ignore,
        _ => DuplicateKeys::Warn,
    }
}

/// Take the warnings (duplicate keys) that YAML reads produced so far.
pub fn take_warnings() -> Vec<String> {
    let mut w = WARNINGS.lock().unwrap_or_else(|e| e.into_inner());
    std::mem::take(&mut *w)
}

/// Read and parse a YAML file holding one document. An empty file is `Null`.
pub fn load_file(path: &Path) -> Result<Node, InputError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        let msg = format!("cannot read file: {e}");
        InputError::of(InputErrorKind::Read, Pos::file_start(path), msg)
    })?;
    load_str(&text, path)
}

/// Parse YAML text; `path` is used for positions only. Duplicate keys are
/// handled as [`set_duplicate_keys`] says; warnings wait in
/// [`take_warnings`].
pub fn load_str(text: &str, path: &Path) -> Result<Node, InputError> {
    let plain = decrypt_vault_file(text, path)?;
    let (node, warnings) = parse(plain.as_deref().unwrap_or(text), path, duplicate_keys())?;
    // A decrypted mapping is variables (vars files, group_vars, role
    // vars): each value is a secret. A decrypted playbook or task list is
    // not masked word by word.
    if plain.is_some() && matches!(node.kind, NodeKind::Map(_)) {
        crate::vault::remember_value(&node.to_value());
    }
    if !warnings.is_empty() {
        WARNINGS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(warnings);
    }
    Ok(node)
}

/// A whole file encrypted with `ansible-vault` is decrypted with the run's
/// vault passwords before it is parsed; every value in it is a secret. A
/// file no password opens is an error at its start, before anything runs.
fn decrypt_vault_file(text: &str, path: &Path) -> Result<Option<String>, InputError> {
    if !crate::vault::is_encrypted(text) {
        return Ok(None);
    }
    let refuse = |e: crate::vault::VaultError| {
        InputError::new(
            Pos::file_start(path),
            format!("cannot decrypt this ansible-vault file: {e}"),
        )
    };
    let plain = crate::vault::decrypt(text, &crate::vault::secrets()).map_err(refuse)?;
    let plain = String::from_utf8(plain).map_err(|_| refuse(crate::vault::VaultError::NotText))?;
    Ok(Some(plain))
}

/// Parse YAML text with an explicit duplicate-key policy; returns the
/// document and the warnings it produced.
pub fn parse(
    text: &str,
    path: &Path,
    duplicates: DuplicateKeys,
) -> Result<(Node, Vec<String>), InputError> {
    let file = Arc::new(path.to_path_buf());
    let mut builder = Builder {
        file: file.clone(),
        stack: Vec::new(),
        anchors: Vec::new(),
        docs: Vec::new(),
        error: None,
        expanded: 0,
        duplicates,
        warnings: Vec::new(),
    };
    let mut parser = Parser::new_from_str(text);
    if let Err(e) = parser.load(&mut builder, true) {
        // An error the builder found first (an alias bomb) is the real one.
        if let Some(err) = builder.error {
            return Err(err);
        }
        let m = e.marker();
        if e.info() == QUOTED_INDENT {
            if let Some(fixed) = reindent_quoted_scalars(text, *m) {
                return parse(&fixed, path, duplicates);
            }
        }
        return Err(InputError::of(
            InputErrorKind::Syntax,
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
    let warnings = builder.warnings;
    let node = match builder.docs.len() {
        0 => Node {
            pos: Pos {
                file,
                line: 1,
                col: 1,
            },
            kind: NodeKind::Null,
        },
        1 => builder.docs.remove(0),
        _ => {
            return Err(InputError::of(
                InputErrorKind::Syntax,
                builder.docs[1].pos.clone(),
                "expected a single YAML document",
            ))
        }
    };
    Ok((node, warnings))
}

/// yaml-rust2's error for a continuation line of a quoted scalar indented
/// less than its block, which PyYAML (and so Ansible) accepts.
const QUOTED_INDENT: &str = "invalid indentation in quoted scalar";

/// `text` with every under-indented continuation line of a quoted scalar
/// indented past the scalar's opening quote, scalar by scalar from the one
/// at `mark`, until yaml-rust2 no longer refuses one for that; None if a
/// scalar cannot be mended. Folding drops a continuation line's leading blanks, so the
/// scalar's value is unchanged, and no line moves, so positions hold.
fn reindent_quoted_scalars(text: &str, mut mark: Marker) -> Option<String> {
    struct Ignore;
    impl MarkedEventReceiver for Ignore {
        fn on_event(&mut self, _: Event, _: Marker) {}
    }
    let mut fixed = text.to_string();
    // Each pass mends one scalar; a file has at most as many as lines.
    for _ in 0..=text.lines().count() {
        let next = reindent_one(&fixed, mark)?;
        if next == fixed {
            return None;
        }
        fixed = next;
        match Parser::new_from_str(&fixed).load(&mut Ignore, true) {
            Err(e) if e.info() == QUOTED_INDENT => mark = *e.marker(),
            // Parsed, or another error, which the caller reports.
            _ => return Some(fixed),
        }
    }
    None
}

/// Re-indent the continuation lines of the quoted scalar opening at `mark`.
fn reindent_one(text: &str, mark: Marker) -> Option<String> {
    let start_line = text
        .split_inclusive('\n')
        .nth(mark.line().checked_sub(1)?)?;
    let line_start: usize = text
        .split_inclusive('\n')
        .take(mark.line() - 1)
        .map(str::len)
        .sum();
    let (quote_at, quote) = start_line.char_indices().nth(mark.col())?;
    if quote != '"' && quote != '\'' {
        return None;
    }
    let indent = start_line[..quote_at].chars().count() + 1;
    let mut out = String::with_capacity(text.len() + 64);
    out.push_str(&text[..line_start + quote_at + 1]);
    let mut chars = text[line_start + quote_at + 1..].char_indices().peekable();
    let base = line_start + quote_at + 1;
    while let Some((i, c)) = chars.next() {
        out.push(c);
        match c {
            '\\' if quote == '"' => {
                if let Some((_, next)) = chars.next() {
                    out.push(next);
                    if next == '\n' {
                        reindent_line(&mut out, &mut chars, indent);
                    }
                }
            }
            '\'' if quote == '\'' => {
                if chars.peek().is_some_and(|(_, n)| *n == '\'') {
                    chars.next();
                    out.push('\'');
                } else {
                    out.push_str(&text[base + i + 1..]);
                    return Some(out);
                }
            }
            '"' if quote == '"' => {
                out.push_str(&text[base + i + 1..]);
                return Some(out);
            }
            '\n' => reindent_line(&mut out, &mut chars, indent),
            _ => {}
        }
    }
    None
}

/// After a line break inside a quoted scalar: the next line's leading
/// blanks, widened to `indent` columns when fewer.
fn reindent_line(
    out: &mut String,
    chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
    indent: usize,
) {
    let mut blanks = String::new();
    while let Some((_, c)) = chars.peek() {
        if *c == ' ' || *c == '\t' {
            blanks.push(*c);
            chars.next();
        } else {
            break;
        }
    }
    let line_is_blank = matches!(chars.peek(), None | Some((_, '\n' | '\r')));
    if !line_is_blank && blanks.chars().count() < indent {
        out.extend(std::iter::repeat_n(' ', indent));
    } else {
        out.push_str(&blanks);
    }
}

/// A mapping being built.
struct MapFrame {
    node: Node,
    anchor: usize,
    /// A key waiting for its value.
    pending: Option<Node>,
    /// Key text → (entry index, where it was written; None when it came in
    /// through a merge key, which a later explicit key may override).
    index: HashMap<String, (usize, Option<Pos>)>,
    weight: usize,
}

enum Open {
    Seq(Node, usize, usize),
    Map(MapFrame),
}

struct Builder {
    file: Arc<PathBuf>,
    stack: Vec<Open>,
    /// Anchored nodes with their estimated size.
    anchors: Vec<(usize, Node, usize)>,
    docs: Vec<Node>,
    error: Option<InputError>,
    /// Estimated bytes added by aliases so far.
    expanded: usize,
    duplicates: DuplicateKeys,
    warnings: Vec<String>,
}

impl Builder {
    fn pos(&self, mark: Marker) -> Pos {
        Pos {
            file: self.file.clone(),
            line: mark.line(),
            col: mark.col() + 1,
        }
    }

    fn push_value(&mut self, node: Node, anchor: usize, weight: usize) {
        if anchor > 0 {
            self.anchors.push((anchor, node.clone(), weight));
        }
        let mut duplicate = None;
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Open::Seq(seq, _, w)) => {
                *w = w.saturating_add(weight);
                if let NodeKind::Seq(items) = &mut seq.kind {
                    items.push(node);
                }
            }
            Some(Open::Map(frame)) => {
                frame.weight = frame.weight.saturating_add(weight);
                match frame.pending.take() {
                    None => frame.pending = Some(node),
                    // PyYAML refuses a collection as a key ("unhashable"),
                    // and so does Ansible, guessing the usual cause: an
                    // unquoted `{{ var }}` read as a flow mapping.
                    Some(key) if matches!(key.kind, NodeKind::Map(_) | NodeKind::Seq(_)) => {
                        let msg = if matches!(key.kind, NodeKind::Map(_)) {
                            "a mapping cannot be a mapping key. This may be an issue with missing quotes around a template block: a value starting with `{{` must be quoted; `raw: {{ some_var }}` should be `raw: \"{{ some_var }}\"`"
                        } else {
                            "a sequence cannot be a mapping key"
                        };
                        let at = frame.node.pos.clone();
                        if self.error.is_none() {
                            self.error = Some(InputError::of(InputErrorKind::Syntax, at, msg));
                        }
                    }
                    Some(key) => duplicate = frame.insert(key, node),
                }
            }
        }
        if let Some((key, first, second)) = duplicate {
            self.duplicate(&key, &first, second);
        }
    }

    fn duplicate(&mut self, key: &str, first: &Pos, second: Pos) {
        let at = format!("line {} column {}", first.line, first.col);
        match self.duplicates {
            DuplicateKeys::Ignore => {}
            DuplicateKeys::Warn => self.warnings.push(format!(
                "{second}: duplicate key '{key}' in this mapping, first at {at}; the later value is used (ANSIBLE_DUPLICATE_YAML_DICT_KEY=error refuses it)"
            )),
            DuplicateKeys::Error => {
                if self.error.is_none() {
                    self.error = Some(InputError::of(
                        InputErrorKind::DuplicateKey,
                        second,
                        format!(
                            "duplicate key '{key}' in this mapping, first at {at} (ANSIBLE_DUPLICATE_YAML_DICT_KEY=error)"
                        ),
                    ));
                }
            }
        }
    }
}

impl MapFrame {
    /// Add an entry; returns (key, first place, this place) when the key was
    /// already written explicitly in this mapping.
    fn insert(&mut self, key: Node, value: Node) -> Option<(String, Pos, Pos)> {
        let NodeKind::Map(entries) = &mut self.node.kind else {
            return None;
        };
        if key.key_str() == Some("<<") {
            merge_into(entries, &mut self.index, value);
            return None;
        }
        let Some(text) = key.scalar_string() else {
            entries.push((key, value));
            return None;
        };
        let here = key.pos.clone();
        match self.index.get_mut(&text) {
            Some((i, first)) => {
                let dup = first.take().map(|f| (text.clone(), f, here.clone()));
                *first = Some(here);
                if let Some(slot) = entries.get_mut(*i) {
                    // Later keys win, as in PyYAML.
                    *slot = (key, value);
                }
                dup
            }
            None => {
                self.index.insert(text, (entries.len(), Some(here)));
                entries.push((key, value));
                None
            }
        }
    }
}

/// YAML merge keys (`<<: *anchor`): keys already present win.
fn merge_into(
    entries: &mut Vec<(Node, Node)>,
    index: &mut HashMap<String, (usize, Option<Pos>)>,
    source: Node,
) {
    let sources = match source.kind {
        NodeKind::Seq(items) => items,
        _ => vec![source],
    };
    for src in sources {
        if let NodeKind::Map(src_entries) = src.kind {
            for (k, v) in src_entries {
                let Some(text) = k.scalar_string() else {
                    continue;
                };
                if let std::collections::hash_map::Entry::Vacant(slot) = index.entry(text) {
                    slot.insert((entries.len(), None));
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
                self.stack.push(Open::Seq(node, anchor, NODE_COST));
            }
            Event::MappingStart(anchor, _) => {
                let node = Node {
                    pos: self.pos(mark),
                    kind: NodeKind::Map(Vec::new()),
                };
                self.stack.push(Open::Map(MapFrame {
                    node,
                    anchor,
                    pending: None,
                    index: HashMap::new(),
                    weight: NODE_COST,
                }));
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (mut node, anchor, weight) = match self.stack.pop() {
                    Some(Open::Seq(node, anchor, weight)) => (node, anchor, weight),
                    Some(Open::Map(f)) => (f.node, f.anchor, f.weight),
                    None => return,
                };
                // The parser marks a block mapping where it sees the first
                // ':'; point at the first key instead.
                if let NodeKind::Map(entries) = &node.kind {
                    if let Some((k, _)) = entries.first() {
                        if k.pos.line == node.pos.line && k.pos.col < node.pos.col {
                            node.pos = k.pos.clone();
                        }
                    }
                }
                self.push_value(node, anchor, weight);
            }
            Event::Scalar(text, style, anchor, tag) => {
                if tag.as_ref().is_some_and(|t| t.suffix == "vault") {
                    // Kept encrypted until used (crate::vault::MARKER):
                    // with no password that opens it, only a use fails.
                    let pos = self.pos(mark);
                    let weight = NODE_COST.saturating_add(text.len());
                    let key = Node {
                        pos: pos.clone(),
                        kind: NodeKind::Str(crate::vault::MARKER.to_string()),
                    };
                    let value = Node {
                        pos: pos.clone(),
                        kind: NodeKind::Str(text),
                    };
                    let node = Node {
                        pos,
                        kind: NodeKind::Map(vec![(key, value)]),
                    };
                    self.push_value(node, anchor, weight);
                    return;
                }
                let weight = NODE_COST.saturating_add(text.len());
                let node = Node {
                    pos: self.pos(mark),
                    kind: resolve_scalar(text, style, tag.as_ref()),
                };
                self.push_value(node, anchor, weight);
            }
            Event::Alias(id) => match self.anchors.iter().rev().find(|(a, _, _)| *a == id) {
                Some((_, node, weight)) => {
                    let (node, weight) = (node.clone(), *weight);
                    self.expanded = self.expanded.saturating_add(weight);
                    if self.expanded > MAX_ALIAS_EXPANSION {
                        self.error = Some(InputError::of(
                            InputErrorKind::Syntax,
                            self.pos(mark),
                            format!(
                                "YAML aliases expand to more than {} MiB here (nested anchors repeated: an alias bomb?); refusing the file",
                                MAX_ALIAS_EXPANSION >> 20
                            ),
                        ));
                        return;
                    }
                    self.push_value(node, 0, weight);
                }
                None => {
                    let msg = "unknown YAML alias";
                    self.error = Some(InputError::of(InputErrorKind::Syntax, self.pos(mark), msg));
                }
            },
            _ => {}
        }
    }
}

/// Resolve a scalar the way PyYAML (YAML 1.1) does for Ansible.
fn resolve_scalar(text: String, style: TScalarStyle, tag: Option<&Tag>) -> NodeKind {
    if let Some(tag) = tag {
        // `!unsafe` and `!!str` keep the text as it is (`!vault` is
        // handled before this).
        if tag.suffix == "str" {
            return NodeKind::Str(text);
        }
        if tag.suffix == "unsafe" {
            return NodeKind::Str(crate::template::literal_text(text));
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

    /// A `!vault` value used to load as its ciphertext string, and a
    /// vault-encrypted file as one long string: the value now stays
    /// encrypted until used, and a file no password opens is refused at
    /// its start.
    #[test]
    fn vault_values_stay_encrypted_and_unopened_vault_files_are_refused() {
        let text = "a: 1\npw: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  6231\n";
        assert_eq!(
            load(text).to_value()["pw"],
            serde_json::json!({"__ansible_vault": "$ANSIBLE_VAULT;1.1;AES256\n6231\n"})
        );
        // Encrypted with a password no test gives.
        let text =
            crate::vault::encrypt(b"a: 1\n", &crate::secret::Secret::new("never given"), None);
        let err = load_str(&text, Path::new("v.yml")).expect_err("refused");
        assert!(
            err.to_string()
                .starts_with("v.yml:1:1: cannot decrypt this ansible-vault file: "),
            "{err}"
        );
        // The word alone is data.
        assert_eq!(
            load("a: $ANSIBLE_VAULT\n").to_value()["a"],
            "$ANSIBLE_VAULT"
        );
    }

    /// `!unsafe '{{ foo }}'` was rendered as a template (the templating
    /// target's `expected`).
    #[test]
    fn unsafe_values_render_as_their_text() {
        let v = load("a: !unsafe '{{ foo }}'\nb: !unsafe plain\n").to_value();
        let templar = crate::template::Templar::new();
        let scope = templar.scope(std::sync::Arc::new(crate::Map::new()), Vec::new());
        assert_eq!(
            templar.render_value(&v, &scope).expect("renders"),
            serde_json::json!({"a": "{{ foo }}", "b": "plain"})
        );
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

    /// Ten levels of nine aliases each: 9^10 leaves from a few hundred bytes.
    fn alias_bomb() -> String {
        let mut s = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let refs = vec![format!("*a{}", i - 1); 9].join(", ");
            s.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        s
    }

    #[test]
    fn alias_bomb_is_refused_with_its_position() {
        let text = alias_bomb();
        assert!(text.len() < 700, "{}", text.len());
        let started = std::time::Instant::now();
        let err = load_str(&text, Path::new("bomb.yml")).expect_err("refused");
        assert!(started.elapsed().as_secs() < 5);
        let msg = err.to_string();
        assert!(msg.starts_with("bomb.yml:"), "{msg}");
        assert!(msg.contains("alias"), "{msg}");
    }

    #[test]
    fn ordinary_aliases_are_not_limited() {
        let doc = load("base: &b {x: 1, y: [1, 2, 3]}\nuses: [*b, *b, *b, *b]\n");
        assert_eq!(doc.to_value()["uses"][3]["y"][2], 3);
    }

    #[test]
    fn duplicate_keys_warn_naming_both_lines() {
        let text = "- command: a\n  name: x\n  command: b\n";
        let (doc, warnings) = parse(text, Path::new("d.yml"), DuplicateKeys::Warn).expect("ok");
        assert_eq!(doc.to_value()[0]["command"], "b");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].starts_with("d.yml:3:3:"), "{}", warnings[0]);
        assert!(warnings[0].contains("'command'"), "{}", warnings[0]);
        assert!(warnings[0].contains("line 1 column 3"), "{}", warnings[0]);

        let err = parse(text, Path::new("d.yml"), DuplicateKeys::Error).expect_err("refused");
        assert!(err.to_string().starts_with("d.yml:3:3:"), "{err}");

        let (_, warnings) = parse(text, Path::new("d.yml"), DuplicateKeys::Ignore).expect("ok");
        assert!(warnings.is_empty());
    }

    #[test]
    fn a_key_overriding_a_merged_key_is_not_a_duplicate() {
        let text = "b: &b {x: 1, y: 2}\nd:\n  <<: *b\n  y: 3\n";
        let (doc, warnings) = parse(text, Path::new("m.yml"), DuplicateKeys::Error).expect("ok");
        assert!(warnings.is_empty());
        assert_eq!(doc.to_value()["d"], serde_json::json!({"x": 1, "y": 3}));
    }

    #[test]
    fn unquoted_template_value_is_refused_with_the_quote_hint() {
        let text = "- hosts: all\n  tasks:\n    - debug:\n        msg: {{ greeting }}\n";
        let err = load_str(text, Path::new("p.yml")).expect_err("refused");
        let msg = err.to_string();
        assert!(msg.starts_with("p.yml:4:14: "), "{msg}");
        assert!(
            msg.contains("missing quotes around a template block"),
            "{msg}"
        );
        assert!(load_str("a: \"{{ x }}\"\nb: {c: 1}\n", Path::new("q.yml")).is_ok());
    }

    #[test]
    fn syntax_error_has_position() {
        let err = load_str("a: [1, 2\nb: 3\n", Path::new("bad.yml")).expect_err("invalid");
        assert!(err.to_string().starts_with("bad.yml:"), "{err}");
    }

    /// PyYAML, and so Ansible, accepts a quoted scalar whose continuation
    /// lines are indented less than its block; yaml-rust2 refused it.
    #[test]
    fn quoted_scalar_with_shallow_continuation_lines_loads_as_pyyaml_does() {
        let text = "- msg: \"a\n  b \\\nc\"\n  other: 'x''s\n y\n\n z'\n  after: 1\n";
        let doc = load(text);
        let item = &doc.as_seq().expect("seq")[0];
        assert_eq!(item.get("msg").and_then(Node::as_str), Some("a b c"));
        assert_eq!(item.get("other").and_then(Node::as_str), Some("x's y\nz"));
        // Positions after the mended scalars are unchanged.
        let after = item.get("after").expect("after");
        assert_eq!((after.pos.line, after.pos.col), (8, 10));
    }

    #[test]
    fn a_real_error_after_a_mended_scalar_is_reported_where_it_is() {
        let text = "- a: \"x\ny\"\n  b: \"open\n";
        let err = load_str(text, Path::new("bad.yml")).expect_err("unterminated");
        assert!(err.to_string().contains("end of stream"), "{err}");
        assert!(err.to_string().starts_with("bad.yml:3:"), "{err}");
    }
}
