//! YAML text as Ansible's `to_yaml` and `to_nice_yaml` write it (PyYAML's
//! `yaml.dump` over libyaml's emitter): keys sorted, `default_flow_style`
//! choosing flow style for collections of scalars, the same scalar styles
//! (plain when it reads back as the same string, else single-quoted, else
//! double-quoted), the same indentation (`-   key: v` under `indent=4`) and
//! the same folding of long scalars at `width`. Output is byte-for-byte what
//! Ansible writes for the data drover handles, so templated files do not
//! change when a host moves from Ansible to drover.

use std::sync::OnceLock;

use minijinja::value::{Value, ValueKind};
use minijinja::{Error, ErrorKind};
use regex::Regex;

use super::pyjson::py_float_repr;

/// `yaml.dump` options.
#[derive(Debug, Clone)]
pub(super) struct YamlOpts {
    /// `None`: flow style for collections holding only scalars.
    pub default_flow_style: Option<bool>,
    /// Indentation step (2 to 9).
    pub indent: usize,
    /// Preferred line width.
    pub width: usize,
    /// Sort mapping keys.
    pub sort_keys: bool,
    /// Write non-ASCII characters as they are.
    pub allow_unicode: bool,
    /// Start the document with `---`.
    pub explicit_start: bool,
}

impl Default for YamlOpts {
    fn default() -> YamlOpts {
        YamlOpts {
            default_flow_style: None,
            indent: 2,
            width: 80,
            sort_keys: true,
            allow_unicode: true,
            explicit_start: false,
        }
    }
}

/// A represented node: scalars carry their text and whether the plain text
/// resolves back to the same type (PyYAML's `implicit[0]`).
enum Node {
    Scalar {
        text: String,
        implicit: bool,
    },
    Seq {
        items: Vec<Node>,
        flow: bool,
    },
    Map {
        entries: Vec<(Node, Node)>,
        flow: bool,
    },
}

/// Serialize `v` as `yaml.dump(v, Dumper=AnsibleDumper, **opts)`.
pub(super) fn dump(v: &Value, opts: &YamlOpts) -> Result<String, Error> {
    let node = represent(v, opts)?;
    let indent = if (2..10).contains(&opts.indent) {
        opts.indent
    } else {
        2
    };
    let width = if opts.width > indent * 2 {
        opts.width
    } else {
        80
    };
    let mut e = Emitter {
        out: String::new(),
        column: 0,
        whitespace: true,
        indention: true,
        indent: None,
        indents: Vec::new(),
        flow_level: 0,
        best_indent: indent,
        best_width: width,
        allow_unicode: opts.allow_unicode,
    };
    if opts.explicit_start {
        e.write_indicator("---", true, false, false);
    }
    e.node(&node, Ctx::default());
    e.write_indent();
    Ok(e.out)
}

fn represent(v: &Value, opts: &YamlOpts) -> Result<Node, Error> {
    let scalar = |text: String| Node::Scalar {
        text,
        implicit: true,
    };
    Ok(match v.kind() {
        ValueKind::Undefined => {
            return Err(Error::new(
                ErrorKind::UndefinedError,
                "cannot serialize an undefined value to YAML",
            ))
        }
        ValueKind::None => scalar("null".into()),
        ValueKind::Bool => scalar(if v.is_true() { "true" } else { "false" }.into()),
        ValueKind::Number => scalar(number_text(v)),
        ValueKind::String => {
            let s = v.as_str().unwrap_or_default();
            Node::Scalar {
                text: s.to_string(),
                implicit: resolves_to_str(s),
            }
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let items = v
                .try_iter()?
                .map(|item| represent(&item, opts))
                .collect::<Result<Vec<_>, _>>()?;
            let best = items.iter().all(|n| matches!(n, Node::Scalar { .. }));
            Node::Seq {
                flow: opts.default_flow_style.unwrap_or(best),
                items,
            }
        }
        ValueKind::Map => {
            let mut pairs: Vec<(Value, Value)> = Vec::new();
            for key in v.try_iter()? {
                let value = v.get_item(&key)?;
                pairs.push((key, value));
            }
            if opts.sort_keys {
                sort_pairs(&mut pairs);
            }
            let mut entries = Vec::with_capacity(pairs.len());
            for (k, val) in &pairs {
                entries.push((represent(k, opts)?, represent(val, opts)?));
            }
            let best = entries.iter().all(|(k, val)| {
                matches!(k, Node::Scalar { .. }) && matches!(val, Node::Scalar { .. })
            });
            Node::Map {
                flow: opts.default_flow_style.unwrap_or(best),
                entries,
            }
        }
        ValueKind::Bytes => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                "cannot serialize bytes to YAML",
            ))
        }
        _ => Node::Scalar {
            text: v.to_string(),
            implicit: resolves_to_str(&v.to_string()),
        },
    })
}

/// Python sorts keys when they are mutually comparable and leaves them in
/// order otherwise (mixed strings and numbers).
fn sort_pairs(pairs: &mut [(Value, Value)]) {
    let all_str = pairs.iter().all(|(k, _)| k.kind() == ValueKind::String);
    let all_num = pairs
        .iter()
        .all(|(k, _)| matches!(k.kind(), ValueKind::Number | ValueKind::Bool));
    if all_str || all_num {
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
    }
}

/// PyYAML's float and int representation.
fn number_text(v: &Value) -> String {
    if v.is_integer() {
        return v.to_string();
    }
    match f64::try_from(v.clone()) {
        Ok(f) if f.is_nan() => ".nan".into(),
        Ok(f) if f.is_infinite() => if f > 0.0 { ".inf" } else { "-.inf" }.into(),
        Ok(f) => {
            let r = py_float_repr(f).to_lowercase();
            if !r.contains('.') && r.contains('e') {
                r.replacen('e', ".0e", 1)
            } else {
                r
            }
        }
        Err(_) => v.to_string(),
    }
}

/// Would the plain scalar `s` read back as a string under YAML 1.1 (PyYAML's
/// implicit resolvers for bool, float, int, merge, null, timestamp, value)?
pub(super) fn resolves_to_str(s: &str) -> bool {
    static RESOLVERS: OnceLock<Vec<(&'static str, Regex)>> = OnceLock::new();
    let resolvers = RESOLVERS.get_or_init(|| {
        let specs: [(&str, &str); 7] = [
            ("yYnNtTfFoO", r"^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$"),
            (
                "-+0123456789.",
                r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
            ),
            (
                "-+0123456789",
                r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$",
            ),
            ("<", r"^(?:<<)$"),
            ("~nN", r"^(?:~|null|Null|NULL)$"),
            (
                "0123456789",
                r"^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$",
            ),
            ("=", r"^(?:=)$"),
        ];
        specs
            .iter()
            .filter_map(|(first, re)| Regex::new(re).ok().map(|r| (*first, r)))
            .collect()
    });
    let Some(first) = s.chars().next() else {
        // The empty plain scalar is null.
        return false;
    };
    // Python's `$` also matches before a final newline.
    let body = s.strip_suffix('\n').unwrap_or(s);
    !resolvers
        .iter()
        .any(|(chars, re)| chars.contains(first) && re.is_match(body))
}

#[derive(Clone, Copy, Default)]
struct Ctx {
    mapping: bool,
    simple_key: bool,
}

struct Analysis {
    empty: bool,
    multiline: bool,
    allow_flow_plain: bool,
    allow_block_plain: bool,
    allow_single_quoted: bool,
}

/// libyaml's line breaks (it counts `\r` too, unlike PyYAML's emitter).
fn is_break(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_space_or_break(c: char) -> bool {
    matches!(c, '\0' | ' ' | '\t' | '\r') || is_break(c)
}

/// libyaml's notion of a printable character (narrower than PyYAML's pure
/// Python emitter: no U+0085 and nothing beyond the Basic Multilingual
/// Plane, so emoji end up `\U`-escaped in double quotes, as Ansible does).
fn is_printable(c: char) -> bool {
    matches!(c as u32, 0x0A | 0x20..=0x7E | 0xA0..=0xD7FF | 0xE000..=0xFFFD) && c != '\u{FEFF}'
}

fn analyze(text: &str, allow_unicode: bool) -> Analysis {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return Analysis {
            empty: true,
            multiline: false,
            allow_flow_plain: false,
            allow_block_plain: true,
            allow_single_quoted: true,
        };
    }
    let mut block_indicators = false;
    let mut flow_indicators = false;
    let mut line_breaks = false;
    let mut special = false;
    let (mut leading_space, mut leading_break) = (false, false);
    let (mut trailing_space, mut trailing_break) = (false, false);
    let (mut break_space, mut space_break) = (false, false);
    if text.starts_with("---") || text.starts_with("...") {
        block_indicators = true;
        flow_indicators = true;
    }
    let mut preceded_by_ws = true;
    let mut followed_by_ws = chars.len() == 1 || is_space_or_break(chars[1]);
    let (mut prev_space, mut prev_break) = (false, false);
    let last = chars.len() - 1;
    for (i, &ch) in chars.iter().enumerate() {
        if i == 0 {
            if "#,[]{}&*!|>'\"%@`".contains(ch) {
                flow_indicators = true;
                block_indicators = true;
            }
            if ch == '?' || ch == ':' {
                flow_indicators = true;
                if followed_by_ws {
                    block_indicators = true;
                }
            }
            if ch == '-' && followed_by_ws {
                flow_indicators = true;
                block_indicators = true;
            }
        } else {
            if ",?[]{}".contains(ch) {
                flow_indicators = true;
            }
            if ch == ':' {
                flow_indicators = true;
                if followed_by_ws {
                    block_indicators = true;
                }
            }
            if ch == '#' && preceded_by_ws {
                flow_indicators = true;
                block_indicators = true;
            }
        }
        if is_break(ch) {
            line_breaks = true;
        }
        if !(ch == '\n' || (' '..='~').contains(&ch) || (is_printable(ch) && allow_unicode)) {
            special = true;
        }
        if ch == ' ' {
            if i == 0 {
                leading_space = true;
            }
            if i == last {
                trailing_space = true;
            }
            if prev_break {
                break_space = true;
            }
            prev_space = true;
            prev_break = false;
        } else if is_break(ch) {
            if i == 0 {
                leading_break = true;
            }
            if i == last {
                trailing_break = true;
            }
            if prev_space {
                space_break = true;
            }
            prev_space = false;
            prev_break = true;
        } else {
            prev_space = false;
            prev_break = false;
        }
        preceded_by_ws = is_space_or_break(ch);
        followed_by_ws = i + 2 >= chars.len() || is_space_or_break(chars[i + 2]);
    }
    let mut a = Analysis {
        empty: false,
        multiline: line_breaks,
        allow_flow_plain: true,
        allow_block_plain: true,
        allow_single_quoted: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        a.allow_flow_plain = false;
        a.allow_block_plain = false;
    }
    if break_space {
        a.allow_flow_plain = false;
        a.allow_block_plain = false;
        a.allow_single_quoted = false;
    }
    if space_break || special {
        a.allow_flow_plain = false;
        a.allow_block_plain = false;
        a.allow_single_quoted = false;
    }
    if line_breaks {
        a.allow_flow_plain = false;
        a.allow_block_plain = false;
    }
    if flow_indicators {
        a.allow_flow_plain = false;
    }
    if block_indicators {
        a.allow_block_plain = false;
    }
    a
}

#[derive(PartialEq, Eq)]
enum Style {
    Plain,
    Single,
    Double,
}

struct Emitter {
    out: String,
    column: usize,
    whitespace: bool,
    indention: bool,
    indent: Option<usize>,
    indents: Vec<Option<usize>>,
    flow_level: usize,
    best_indent: usize,
    best_width: usize,
    allow_unicode: bool,
}

impl Emitter {
    fn increase_indent(&mut self, flow: bool, indentless: bool) {
        self.indents.push(self.indent);
        self.indent = match self.indent {
            None => Some(if flow { self.best_indent } else { 0 }),
            Some(i) if !indentless => Some(i + self.best_indent),
            keep => keep,
        };
    }

    fn pop_indent(&mut self) {
        self.indent = self.indents.pop().flatten();
    }

    fn write(&mut self, s: &str) {
        self.column += s.chars().count();
        self.out.push_str(s);
    }

    fn write_indicator(&mut self, ind: &str, need_ws: bool, whitespace: bool, indention: bool) {
        if self.whitespace || !need_ws {
            self.write(ind);
        } else {
            self.write(&format!(" {ind}"));
        }
        self.whitespace = whitespace;
        self.indention = self.indention && indention;
    }

    fn write_line_break(&mut self, br: char) {
        self.out.push(br);
        self.whitespace = true;
        self.indention = true;
        self.column = 0;
    }

    fn write_indent(&mut self) {
        let indent = self.indent.unwrap_or(0);
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.write_line_break('\n');
        }
        if self.column < indent {
            self.whitespace = true;
            let pad = " ".repeat(indent - self.column);
            self.write(&pad);
        }
    }

    fn node(&mut self, node: &Node, ctx: Ctx) {
        match node {
            Node::Scalar { text, implicit } => self.scalar(text, *implicit, ctx),
            Node::Seq { items, flow } => {
                if self.flow_level > 0 || *flow || items.is_empty() {
                    self.flow_seq(items);
                } else {
                    self.block_seq(items, ctx);
                }
            }
            Node::Map { entries, flow } => {
                if self.flow_level > 0 || *flow || entries.is_empty() {
                    self.flow_map(entries);
                } else {
                    self.block_map(entries);
                }
            }
        }
    }

    fn is_simple_key(&self, node: &Node) -> bool {
        match node {
            // libyaml: any single-line scalar of at most 128 bytes, even ''.
            Node::Scalar { text, .. } => {
                text.len() <= 128 && !analyze(text, self.allow_unicode).multiline
            }
            Node::Seq { items, .. } => items.is_empty(),
            Node::Map { entries, .. } => entries.is_empty(),
        }
    }

    fn block_seq(&mut self, items: &[Node], ctx: Ctx) {
        let indentless = ctx.mapping && !self.indention;
        self.increase_indent(false, indentless);
        for item in items {
            self.write_indent();
            self.write_indicator("-", true, false, true);
            self.node(item, Ctx::default());
        }
        self.pop_indent();
    }

    fn block_map(&mut self, entries: &[(Node, Node)]) {
        self.increase_indent(false, false);
        let value_ctx = Ctx {
            mapping: true,
            simple_key: false,
        };
        for (k, v) in entries {
            self.write_indent();
            if self.is_simple_key(k) {
                self.node(
                    k,
                    Ctx {
                        mapping: true,
                        simple_key: true,
                    },
                );
                self.write_indicator(":", false, false, false);
            } else {
                self.write_indicator("?", true, false, true);
                self.node(k, value_ctx);
                self.write_indent();
                self.write_indicator(":", true, false, true);
            }
            self.node(v, value_ctx);
        }
        self.pop_indent();
    }

    fn flow_seq(&mut self, items: &[Node]) {
        self.write_indicator("[", true, true, false);
        self.flow_level += 1;
        self.increase_indent(true, false);
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.write_indicator(",", false, false, false);
            }
            if self.column > self.best_width {
                self.write_indent();
            }
            self.node(item, Ctx::default());
        }
        self.pop_indent();
        self.flow_level -= 1;
        self.write_indicator("]", false, false, false);
    }

    fn flow_map(&mut self, entries: &[(Node, Node)]) {
        self.write_indicator("{", true, true, false);
        self.flow_level += 1;
        self.increase_indent(true, false);
        let value_ctx = Ctx {
            mapping: true,
            simple_key: false,
        };
        for (i, (k, v)) in entries.iter().enumerate() {
            if i > 0 {
                self.write_indicator(",", false, false, false);
            }
            if self.column > self.best_width {
                self.write_indent();
            }
            if self.is_simple_key(k) {
                self.node(
                    k,
                    Ctx {
                        mapping: true,
                        simple_key: true,
                    },
                );
                self.write_indicator(":", false, false, false);
            } else {
                self.write_indicator("?", true, false, false);
                self.node(k, value_ctx);
                if self.column > self.best_width {
                    self.write_indent();
                }
                self.write_indicator(":", true, false, false);
            }
            self.node(v, value_ctx);
        }
        self.pop_indent();
        self.flow_level -= 1;
        self.write_indicator("}", false, false, false);
    }

    fn scalar(&mut self, text: &str, implicit: bool, ctx: Ctx) {
        self.increase_indent(true, false);
        let a = analyze(text, self.allow_unicode);
        let plain_ok = if self.flow_level > 0 {
            a.allow_flow_plain
        } else {
            a.allow_block_plain
        };
        let style = if implicit && !(ctx.simple_key && (a.empty || a.multiline)) && plain_ok {
            Style::Plain
        } else if a.allow_single_quoted && !(ctx.simple_key && a.multiline) {
            Style::Single
        } else {
            Style::Double
        };
        let split = !ctx.simple_key;
        match style {
            Style::Plain => self.write_plain(text, split),
            Style::Single => self.write_single_quoted(text, split),
            Style::Double => self.write_double_quoted(text, split),
        }
        self.pop_indent();
    }

    fn write_breaks(&mut self, breaks: &[char]) {
        if breaks.first() == Some(&'\n') {
            self.write_line_break('\n');
        }
        for &br in breaks {
            self.write_line_break(br);
        }
        self.write_indent();
    }

    fn write_plain(&mut self, text: &str, split: bool) {
        if text.is_empty() {
            return;
        }
        if !self.whitespace {
            self.write(" ");
        }
        self.whitespace = false;
        self.indention = false;
        let chars: Vec<char> = text.chars().collect();
        let (mut spaces, mut breaks) = (false, false);
        let mut start = 0;
        for end in 0..=chars.len() {
            let ch = chars.get(end).copied();
            if spaces {
                if ch != Some(' ') {
                    if start + 1 == end && self.column > self.best_width && split {
                        self.write_indent();
                        self.whitespace = false;
                        self.indention = false;
                    } else {
                        let s: String = chars[start..end].iter().collect();
                        self.write(&s);
                    }
                    start = end;
                }
            } else if breaks {
                if !ch.is_some_and(is_break) {
                    let brs: Vec<char> = chars[start..end].to_vec();
                    self.write_breaks(&brs);
                    self.whitespace = false;
                    self.indention = false;
                    start = end;
                }
            } else if ch.is_none_or(|c| c == ' ' || is_break(c)) {
                let s: String = chars[start..end].iter().collect();
                self.write(&s);
                start = end;
            }
            if let Some(c) = ch {
                spaces = c == ' ';
                breaks = is_break(c);
            }
        }
    }

    fn write_single_quoted(&mut self, text: &str, split: bool) {
        self.write_indicator("'", true, false, false);
        let chars: Vec<char> = text.chars().collect();
        let (mut spaces, mut breaks) = (false, false);
        let mut start = 0;
        for end in 0..=chars.len() {
            let ch = chars.get(end).copied();
            if spaces {
                if ch != Some(' ') {
                    if start + 1 == end
                        && self.column > self.best_width
                        && split
                        && start != 0
                        && end != chars.len()
                    {
                        self.write_indent();
                    } else {
                        let s: String = chars[start..end].iter().collect();
                        self.write(&s);
                    }
                    start = end;
                }
            } else if breaks {
                if !ch.is_some_and(is_break) {
                    let brs: Vec<char> = chars[start..end].to_vec();
                    self.write_breaks(&brs);
                    start = end;
                }
            } else if ch.is_none_or(|c| c == ' ' || c == '\'' || is_break(c)) && start < end {
                let s: String = chars[start..end].iter().collect();
                self.write(&s);
                start = end;
            }
            if ch == Some('\'') {
                self.write("''");
                start = end + 1;
            }
            if let Some(c) = ch {
                spaces = c == ' ';
                breaks = is_break(c);
            }
        }
        self.write_indicator("'", false, false, false);
    }

    /// libyaml's double-quoted style: escapes for breaks, quotes,
    /// backslashes and non-printables; long lines fold at a single space
    /// (a doubled space keeps its second half as `\ `).
    fn write_double_quoted(&mut self, text: &str, split: bool) {
        self.write_indicator("\"", true, false, false);
        let chars: Vec<char> = text.chars().collect();
        let last = chars.len().saturating_sub(1);
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            let escape = !is_printable(c)
                || (!self.allow_unicode && !c.is_ascii())
                || is_break(c)
                || c == '"'
                || c == '\\';
            if escape {
                let esc = match c {
                    '\0' => "\\0".to_string(),
                    '\u{7}' => "\\a".into(),
                    '\u{8}' => "\\b".into(),
                    '\t' => "\\t".into(),
                    '\n' => "\\n".into(),
                    '\u{b}' => "\\v".into(),
                    '\u{c}' => "\\f".into(),
                    '\r' => "\\r".into(),
                    '\u{1b}' => "\\e".into(),
                    '"' => "\\\"".into(),
                    '\\' => "\\\\".into(),
                    '\u{85}' => "\\N".into(),
                    '\u{a0}' => "\\_".into(),
                    '\u{2028}' => "\\L".into(),
                    '\u{2029}' => "\\P".into(),
                    c if (c as u32) <= 0xFF => format!("\\x{:02X}", c as u32),
                    c if (c as u32) <= 0xFFFF => format!("\\u{:04X}", c as u32),
                    c => format!("\\U{:08X}", c as u32),
                };
                self.write(&esc);
                spaces = false;
            } else if c == ' ' {
                if split && !spaces && self.column > self.best_width && i != 0 && i != last {
                    self.write_indent();
                    if chars.get(i + 1) == Some(&' ') {
                        self.write("\\");
                    }
                } else {
                    self.write(" ");
                }
                spaces = true;
            } else {
                let mut buf = [0u8; 4];
                self.write(c.encode_utf8(&mut buf));
                spaces = false;
            }
        }
        self.write_indicator("\"", false, false, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolvers_match_yaml_1_1() {
        for s in [
            "yes",
            "Off",
            "1.5",
            "0644",
            "0x1f",
            "1_000",
            "~",
            "null",
            "2024-01-02",
            "<<",
            "=",
            "1:30",
            ".inf",
            "-1.5",
        ] {
            assert!(!resolves_to_str(s), "{s} should not be a string");
        }
        for s in [
            "1e3", "09", "hello", "y", "n", "true1", "0o17", "1.2.3", "v1", "-.5",
        ] {
            assert!(resolves_to_str(s), "{s} should be a string");
        }
    }
}
