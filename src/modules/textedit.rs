//! What the modules that edit text files in place (lineinfile, replace,
//! blockinfile) share: Python regular expressions and replacement templates
//! on top of the `regex` crate (`fancy-regex` for what it lacks), reading the file in one exec, and planning and
//! applying the write with attributes, backup and `validate`.
//!
//! The text transformations themselves are pure functions in each module's
//! file; this file only moves bytes and decides what kind of change it is.

use regex::bytes::{Regex, RegexBuilder};

use super::fs::{self, Attrs, FileKind, FileState, Read};
use super::{Decision, Diff, ModuleError, Observed, Plan, Protocol, ReadSet, Scope, Touched};
use crate::transport::{shell_quote, Remote};
use crate::{Map, Value};

/// The flags Ansible's modules compile their patterns with.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct ReFlags {
    /// `re.MULTILINE`: `^` and `$` match at line boundaries.
    pub multi_line: bool,
    /// `re.DOTALL`: `.` matches a newline too.
    pub dot_all: bool,
}

/// A compiled Python regular expression over bytes: the `regex` crate's
/// automaton when the pattern allows (linear time), else `fancy-regex`,
/// which backtracks for backreferences and look-around.
#[derive(Debug, Clone)]
pub enum PyRegex {
    /// Everything the `regex` crate reads.
    Fast(Regex),
    /// Backreferences or look-around.
    Fancy(fancy_regex::Regex),
}

/// The spans of a match's groups in the searched bytes.
#[derive(Debug)]
pub struct PyCaptures<'h> {
    hay: &'h [u8],
    spans: Vec<Option<(usize, usize)>>,
}

/// Where a match or group lies.
#[derive(Debug, Clone, Copy)]
pub struct Span {
    start: usize,
    end: usize,
}

impl Span {
    /// Offset of its first byte.
    pub fn start(&self) -> usize {
        self.start
    }

    /// Offset after its last byte.
    pub fn end(&self) -> usize {
        self.end
    }

    /// It matched nothing.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
}

impl<'h> PyCaptures<'h> {
    /// Group `i` (0: the whole match), when it took part.
    pub fn get(&self, i: usize) -> Option<Span> {
        self.spans
            .get(i)
            .copied()
            .flatten()
            .map(|(start, end)| Span { start, end })
    }

    /// Number of groups, the whole match included.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// The bytes group `i` matched.
    pub fn bytes(&self, i: usize) -> Option<&'h [u8]> {
        self.get(i).map(|s| &self.hay[s.start..s.end])
    }
}

// A backtracking search that exceeds fancy-regex's limit counts as no
// match: such a pattern is pathological, and the edit then leaves the
// content as it is or appends, as with any line that does not match.
impl PyRegex {
    /// Does the pattern match anywhere in `hay`?
    pub fn is_match(&self, hay: &[u8]) -> bool {
        match self {
            PyRegex::Fast(re) => re.is_match(hay),
            PyRegex::Fancy(re) => re.is_match(hay).unwrap_or(false),
        }
    }

    /// The first match in `hay`.
    pub fn find(&self, hay: &[u8]) -> Option<Span> {
        self.captures_at(hay, 0).and_then(|c| c.get(0))
    }

    /// The first match in `hay` and its groups.
    pub fn captures<'h>(&self, hay: &'h [u8]) -> Option<PyCaptures<'h>> {
        self.captures_at(hay, 0)
    }

    /// The first match at or after offset `at` (what lies before still
    /// counts for `^` and look-behind).
    pub fn captures_at<'h>(&self, hay: &'h [u8], at: usize) -> Option<PyCaptures<'h>> {
        let spans = match self {
            PyRegex::Fast(re) => {
                let c = re.captures_at(hay, at)?;
                (0..c.len())
                    .map(|i| c.get(i).map(|m| (m.start(), m.end())))
                    .collect()
            }
            PyRegex::Fancy(re) => {
                let c = re.captures_from_pos(hay, at).ok().flatten()?;
                (0..c.len())
                    .map(|i| c.get(i).map(|m| (m.start(), m.end())))
                    .collect()
            }
        };
        Some(PyCaptures { hay, spans })
    }

    /// Number of groups, the whole match included.
    pub fn captures_len(&self) -> usize {
        match self {
            PyRegex::Fast(re) => re.captures_len(),
            PyRegex::Fancy(re) => re.captures_len(),
        }
    }

    /// The name of each group, in order (`None`: unnamed).
    pub fn capture_names(&self) -> Vec<Option<&str>> {
        match self {
            PyRegex::Fast(re) => re.capture_names().collect(),
            PyRegex::Fancy(re) => re.capture_names().collect(),
        }
    }

    /// The index of the group called `name`.
    pub fn group_index(&self, name: &str) -> Option<usize> {
        match self {
            PyRegex::Fast(re) => re.capture_names().position(|n| n == Some(name)),
            PyRegex::Fancy(re) => re.capture_names().position(|n| n == Some(name)),
        }
    }
}

/// Compile a Python regular expression. The syntax the two engines share
/// passes through; Python's `\Z`, literal `{`/`}` outside quantifiers, `{,n}`,
/// literal `[`, `&&` and `~~` inside classes and `\<`/`\>` are rewritten.
/// Backreferences and look-around take the backtracking engine.
pub(super) fn py_regex(pattern: &str, flags: ReFlags) -> Result<PyRegex, ModuleError> {
    // Compiling is the costliest thing a converged lineinfile/replace does
    // on the control machine (profiled: a quarter of a run's instructions),
    // and every host compiles the same patterns: keep them. A `Regex` is a
    // cheap handle to shared, thread-safe state.
    type Cache = std::sync::Mutex<std::collections::HashMap<(String, bool, bool), PyRegex>>;
    static CACHE: std::sync::OnceLock<Cache> = std::sync::OnceLock::new();
    let key = (pattern.to_string(), flags.multi_line, flags.dot_all);
    let cache = CACHE.get_or_init(Default::default);
    if let Some(re) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(re.clone());
    }
    let translated = translate(pattern);
    let re = match RegexBuilder::new(&translated)
        .multi_line(flags.multi_line)
        .dot_matches_new_line(flags.dot_all)
        .build()
    {
        Ok(re) => PyRegex::Fast(re),
        // Only what the automaton cannot do goes to the backtracker; the
        // automaton's error names the problem of a pattern neither takes.
        Err(e) => fancy_regex::RegexBuilder::new(&translated)
            .multi_line(flags.multi_line)
            .dot_matches_new_line(flags.dot_all)
            .build()
            .map(PyRegex::Fancy)
            .map_err(|_| {
                ModuleError::Args(format!("invalid regular expression {pattern:?}: {e}"))
            })?,
    };
    let mut map = cache.lock().unwrap_or_else(|e| e.into_inner());
    // Playbooks have a bounded set of patterns; guard against templated ones.
    if map.len() >= 4096 {
        map.clear();
    }
    map.insert(key, re.clone());
    Ok(re)
}

/// Rewrite the parts of Python's regex syntax that the `regex` crate reads
/// differently.
fn translate(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut in_class = false;
    let mut class_start = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            match chars.get(i + 1) {
                None => out.push('\\'),
                Some('Z') if !in_class => out.push_str("\\z"),
                // Python: literal angle brackets; regex crate: word boundaries.
                Some(&d @ ('<' | '>')) => out.push(d),
                Some(&d) => {
                    out.push('\\');
                    out.push(d);
                }
            }
            i += 2;
            class_start = false;
            continue;
        }
        if in_class {
            match c {
                ']' if !class_start => {
                    in_class = false;
                    out.push(']');
                }
                ']' | '[' | '&' | '~' => {
                    out.push('\\');
                    out.push(c);
                }
                _ => out.push(c),
            }
            class_start = false;
            i += 1;
            continue;
        }
        match c {
            '[' => {
                in_class = true;
                class_start = true;
                out.push('[');
                if chars.get(i + 1) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
            }
            '{' => match quantifier(&chars[i..]) {
                Some((len, q)) => {
                    out.push_str(&q);
                    i += len;
                    continue;
                }
                None => out.push_str("\\{"),
            },
            '}' => out.push_str("\\}"),
            _ => out.push(c),
        }
        i += 1;
    }
    out
}

/// A `{m}`, `{m,}`, `{,n}` or `{m,n}` quantifier at the start of `s`: its
/// length and its spelling for the regex crate.
fn quantifier(s: &[char]) -> Option<(usize, String)> {
    let digits = |from: usize| -> String {
        s[from..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .collect()
    };
    let lo = digits(1);
    let mut j = 1 + lo.len();
    let hi = if s.get(j) == Some(&',') {
        let h = digits(j + 1);
        j += 1 + h.len();
        Some(h)
    } else {
        None
    };
    if s.get(j) != Some(&'}') || (lo.is_empty() && hi.is_none()) {
        return None;
    }
    let lo = if lo.is_empty() { "0".to_string() } else { lo };
    let q = match hi {
        None => format!("{{{lo}}}"),
        Some(h) => format!("{{{lo},{h}}}"),
    };
    Some((j + 1, q))
}

/// A Python replacement template (`re.sub`'s `repl`, `match.expand`):
/// `\1`, `\g<1>`, `\g<name>`, `\n`-style escapes, octal escapes.
#[derive(Debug, Clone, PartialEq)]
pub struct PyTemplate(Vec<Piece>);

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Lit(Vec<u8>),
    Group(usize),
}

impl PyTemplate {
    /// Parse `template` for matches of `re`; group references are checked
    /// against the pattern's groups as Python does.
    pub fn parse(template: &str, re: &PyRegex) -> Result<PyTemplate, ModuleError> {
        PyTemplate::compile(template, re)
            .map_err(|m| ModuleError::Args(format!("invalid replacement {template:?}: {m}")))
    }

    /// [`PyTemplate::parse`], failing with Python's `re.error` message.
    pub fn compile(template: &str, re: &PyRegex) -> Result<PyTemplate, String> {
        let bad = |m: String| m;
        let group = |n: usize| -> Result<Piece, String> {
            if n < re.captures_len() {
                Ok(Piece::Group(n))
            } else {
                Err(bad(format!("invalid group reference {n}")))
            }
        };
        let chars: Vec<char> = template.chars().collect();
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let flush = |lit: &mut String, pieces: &mut Vec<Piece>| {
            if !lit.is_empty() {
                pieces.push(Piece::Lit(std::mem::take(lit).into_bytes()));
            }
        };
        let is_oct = |c: Option<&char>| c.is_some_and(|c| ('0'..='7').contains(c));
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c != '\\' {
                lit.push(c);
                i += 1;
                continue;
            }
            let Some(&e) = chars.get(i + 1) else {
                return Err(bad("bad escape (end of pattern)".into()));
            };
            i += 2;
            match e {
                'g' => {
                    if chars.get(i) != Some(&'<') {
                        return Err(bad("missing <".into()));
                    }
                    let end = chars[i..]
                        .iter()
                        .position(|&c| c == '>')
                        .map(|p| i + p)
                        .ok_or_else(|| bad("missing >, unterminated name".into()))?;
                    let name: String = chars[i + 1..end].iter().collect();
                    i = end + 1;
                    if name.is_empty() {
                        return Err(bad("missing group name".into()));
                    }
                    let piece = if name.bytes().all(|b| b.is_ascii_digit()) {
                        group(name.parse().map_err(|_| bad(format!("bad group {name}")))?)?
                    } else {
                        let n = re
                            .group_index(&name)
                            .ok_or_else(|| bad(format!("unknown group name '{name}'")))?;
                        Piece::Group(n)
                    };
                    flush(&mut lit, &mut pieces);
                    pieces.push(piece);
                }
                '0' => {
                    let mut value = 0u32;
                    let mut taken = 0;
                    while taken < 2 && is_oct(chars.get(i)) {
                        value = value * 8 + chars[i].to_digit(8).unwrap_or(0);
                        i += 1;
                        taken += 1;
                    }
                    lit.push(char::from_u32(value).unwrap_or('\0'));
                }
                '1'..='9' => {
                    if is_oct(Some(&e)) && is_oct(chars.get(i)) && is_oct(chars.get(i + 1)) {
                        let value = e.to_digit(8).unwrap_or(0) * 64
                            + chars[i].to_digit(8).unwrap_or(0) * 8
                            + chars[i + 1].to_digit(8).unwrap_or(0);
                        if value > 0o377 {
                            return Err(bad(format!(
                                "octal escape value \\{e}{}{} outside of range 0-0o377",
                                chars[i],
                                chars[i + 1]
                            )));
                        }
                        lit.push(char::from_u32(value).unwrap_or('\0'));
                        i += 2;
                    } else {
                        let mut n = e.to_digit(10).unwrap_or(0) as usize;
                        if let Some(d) = chars.get(i).and_then(|c| c.to_digit(10)) {
                            n = n * 10 + d as usize;
                            i += 1;
                        }
                        flush(&mut lit, &mut pieces);
                        pieces.push(group(n)?);
                    }
                }
                'a' => lit.push('\x07'),
                'b' => lit.push('\x08'),
                'f' => lit.push('\x0c'),
                'n' => lit.push('\n'),
                'r' => lit.push('\r'),
                't' => lit.push('\t'),
                'v' => lit.push('\x0b'),
                '\\' => lit.push('\\'),
                e if e.is_ascii_alphabetic() => {
                    return Err(bad(format!("bad escape \\{e} at position {}", i - 2)))
                }
                e => {
                    lit.push('\\');
                    lit.push(e);
                }
            }
        }
        flush(&mut lit, &mut pieces);
        Ok(PyTemplate(pieces))
    }

    /// The replacement for one match (an unmatched group gives nothing).
    pub fn expand(&self, caps: &PyCaptures<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        for p in &self.0 {
            match p {
                Piece::Lit(b) => out.extend_from_slice(b),
                Piece::Group(n) => {
                    if let Some(m) = caps.bytes(*n) {
                        out.extend_from_slice(m);
                    }
                }
            }
        }
        out
    }
}

/// Split after each `\n`, as Python's `readlines()` does.
pub(super) fn split_lines(data: &[u8]) -> Vec<&[u8]> {
    data.split_inclusive(|&b| b == b'\n').collect()
}

/// A line without its `\r\n` / `\n` / `\r` ending (`rstrip(b'\r\n')`).
pub(super) fn strip_eol(line: &[u8]) -> &[u8] {
    let mut end = line.len();
    while end > 0 && matches!(line[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    &line[..end]
}

/// A line without its final `\n` only: what a Python pattern sees of a line
/// once `$` (which matches before a final newline) is accounted for.
pub(super) fn without_newline(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\n").unwrap_or(line)
}

/// A failure with the `rc` Ansible's file modules report.
pub(super) fn fail_rc(msg: String, rc: i64) -> ModuleError {
    let mut data = Map::new();
    data.insert("rc".into(), Value::from(rc));
    data.insert("msg".into(), Value::from(msg.clone()));
    ModuleError::Failed { msg, data }
}

/// A text file on the host, read for editing.
#[derive(Debug, Clone)]
pub(super) struct TextFile {
    /// Where writes go: the path with `~` and symbolic links resolved.
    pub real: String,
    /// State (and content) of `real`.
    pub state: FileState,
    /// Does the directory a new file would go into exist?
    pub parent_exists: bool,
}

impl TextFile {
    /// The content, or `None` when there is no file.
    pub(super) fn content(&self) -> Option<&[u8]> {
        match self.state.kind {
            FileKind::Missing => None,
            _ => Some(self.state.content.as_deref().unwrap_or(b"")),
        }
    }

    /// Is something there?
    pub(super) fn exists(&self) -> bool {
        self.state.exists()
    }

    /// Is it a directory?
    pub(super) fn is_dir(&self) -> bool {
        self.state.kind == FileKind::Directory
    }
}

fn parent_of(path: &str) -> String {
    match path.trim_end_matches('/').rfind('/') {
        Some(0) => "/".into(),
        Some(i) => path[..i].into(),
        None => ".".into(),
    }
}

/// The user whose home a leading `~` or `~user` names, when the path has
/// one drover expands (as Ansible's `type: path` does).
fn home_user(path: &str) -> Option<&str> {
    let rest = path.strip_prefix('~')?;
    let user = &rest[..rest.find('/').unwrap_or(rest.len())];
    user.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        .then_some(user)
}

/// The read of `real` and of its directory.
fn text_batch(real: &str) -> fs::ReadBatch {
    let read = Read {
        checksum: false,
        content: true,
    };
    let mut batch = fs::ReadBatch::new();
    batch.path(real, read, false);
    batch.path_kind(&parent_of(real), false);
    batch
}

/// The reads of a text file to edit, in stages: a leading `~` expanded
/// (a read only for such paths), the file and its directory, and through
/// a symbolic link (Ansible writes through links) the file it names.
/// Given what was observed so far, the file, or the next stage's reads.
pub(super) fn text_observed(
    path: &str,
    observed: &Observed,
) -> Result<Result<TextFile, ReadSet>, ModuleError> {
    let mut at = 0;
    let mut real = path.to_string();
    if let Some(user) = home_user(path) {
        let Some(out) = observed.get(at) else {
            return Ok(Err(ReadSet::one(
                format!("printf '%s' ~{user}"),
                Scope::Host,
            )));
        };
        at += 1;
        let home = out.stdout_str();
        if out.status == 0 && !home.starts_with('~') && !home.is_empty() {
            real = format!("{home}{}", &path[1 + user.len()..]);
        }
    }
    let batch = text_batch(&real);
    let Some(out) = observed.get(at) else {
        return Ok(Err(ReadSet {
            reads: vec![batch.declare()],
        }));
    };
    at += 1;
    let mut states = batch.parse_exec(out)?.states;
    if states.first().is_some_and(|s| s.kind == FileKind::Link) {
        let Some(out) = observed.get(at) else {
            return Ok(Err(ReadSet::one(
                format!("readlink -f -- {}", shell_quote(&real)),
                Scope::Host,
            )));
        };
        at += 1;
        if out.status != 0 {
            return Err(ModuleError::failed(format!(
                "cannot resolve the link {path}: {}",
                out.stderr_str().trim()
            )));
        }
        real = out.stdout_str().trim_end_matches('\n').to_string();
        let batch = text_batch(&real);
        let Some(out) = observed.get(at) else {
            return Ok(Err(ReadSet {
                reads: vec![batch.declare()],
            }));
        };
        states = batch.parse_exec(out)?.states;
    }
    let mut states = states.into_iter();
    match (states.next(), states.next()) {
        (Some(state), Some(parent)) => Ok(Ok(TextFile {
            real,
            state,
            parent_exists: parent.kind == FileKind::Directory,
        })),
        _ => Err(ModuleError::failed(format!("reading {path} failed"))),
    }
}

/// The first reads of a module editing a text file, from its decision
/// with nothing observed (see [`text_observed`]).
pub(super) fn text_reads<C>(first: Decision<C>) -> Result<Protocol, ModuleError> {
    match first {
        Decision::Read(reads) => Ok(Protocol::Declared(reads)),
        Decision::Plan(_) => Err(ModuleError::failed("internal error: nothing to read")),
    }
}

/// Read `path` (its state, content and whether its directory exists), each
/// stage of [`text_observed`] in one exec.
#[cfg(test)]
pub(super) async fn read_text(remote: &Remote, path: &str) -> Result<TextFile, ModuleError> {
    let mut outputs = Vec::new();
    loop {
        match text_observed(path, &Observed::new(outputs.clone()))? {
            Ok(file) => return Ok(file),
            Err(reads) => {
                for r in &reads.reads {
                    outputs.push(fs::exec_read(remote, &r.script).await?);
                }
            }
        }
    }
}

/// How an edited file is written.
#[derive(Debug, Clone, Default)]
pub(super) struct WriteOpts {
    /// Mode, owner and group the file must have.
    pub attrs: Attrs,
    /// Copy the old file aside before writing.
    pub backup: bool,
    /// Result key for the backup's path (`backup` or `backup_file`).
    pub backup_key: &'static str,
    /// Command (with `%s` for the new content's temp file) that must succeed
    /// before the file is replaced.
    pub validate: Option<String>,
}

impl WriteOpts {
    /// Options from the common file arguments.
    pub(super) fn new(
        attrs: Attrs,
        backup: bool,
        backup_key: &'static str,
        validate: Option<String>,
    ) -> Result<WriteOpts, ModuleError> {
        if let Some(v) = &validate {
            if !v.contains("%s") {
                return Err(ModuleError::failed(format!(
                    "validate must contain %s: {v}"
                )));
            }
        }
        Ok(WriteOpts {
            attrs,
            backup,
            backup_key,
            validate,
        })
    }
}

/// The planned write of an edited file.
#[derive(Debug, Clone)]
pub struct EditChange {
    /// File to write.
    path: String,
    /// New content, or `None` when only attributes change.
    content: Option<Vec<u8>>,
    /// Directory to create first.
    mkdir: Option<String>,
    /// The attributes to fix when they differ.
    fix: Option<fs::AttrsFix>,
    /// Attributes, backup and validation.
    opts: WriteOpts,
    /// The file was missing or a regular file (see [`Touched::Entries`]).
    entries_only: bool,
}

const ATTRS_MSG: &str = "ownership, perms or SE linux context changed";

/// Decide what to do with `file` given the content it should have (`None`:
/// the module leaves the content as it is) and the message naming that
/// change. `data` is the result to register; `msg` is added to it.
/// [`plan_edit`], as a decision.
pub(super) fn decide_edit(
    file: &TextFile,
    content: Option<Vec<u8>>,
    msg: &str,
    opts: &WriteOpts,
    report: impl Into<DiffReport>,
    data: Map,
) -> Result<Decision<EditChange>, ModuleError> {
    plan_edit(file, content, msg, opts, &report.into(), data).map(Decision::Plan)
}

/// How a text-edit module puts its diff into the registered result; each of
/// Ansible's modules does it its own way, and playbooks test for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DiffKey {
    /// No `diff` key: the diff is only shown with `--diff`.
    Hidden,
    /// Always a list `[content, file attributes]` (lineinfile,
    /// blockinfile); the content's texts are filled in diff mode only.
    List,
    /// A mapping of the old and new content, in diff mode and only when
    /// the content changes (replace).
    Changed,
}

/// The diff a text edit reports: of which path, in which shape.
#[derive(Debug, Clone)]
pub(super) struct DiffReport {
    /// The path as the task gave it.
    pub path: String,
    /// Shape of the result's `diff`.
    pub key: DiffKey,
    /// Diff mode (`--diff` or the task's `diff:`).
    pub wanted: bool,
    /// Check mode: a missing file reports its content diff alone.
    pub check: bool,
}

impl From<String> for DiffReport {
    /// A diff shown with `--diff` only, headed by `path`.
    fn from(path: String) -> DiffReport {
        DiffReport {
            path,
            key: DiffKey::Hidden,
            wanted: false,
            check: false,
        }
    }
}

impl DiffReport {
    /// The label of the content in the diff.
    fn header(&self) -> String {
        match self.key {
            DiffKey::List => format!("{} (content)", self.path),
            DiffKey::Hidden | DiffKey::Changed => self.path.clone(),
        }
    }

    /// The result's `diff` for content going from `before` to `after`
    /// (`None`: unchanged) and the attribute changes `fix`.
    fn value(
        &self,
        exists: bool,
        before: &[u8],
        after: Option<&[u8]>,
        fix: Option<&fs::AttrsFix>,
    ) -> Option<Value> {
        let text = |b: &[u8]| Value::from(String::from_utf8_lossy(b).into_owned());
        let header = Value::from(self.header());
        let content = |before: &[u8], after: &[u8]| -> Value {
            let mut m = Map::new();
            m.insert("before".into(), text(before));
            m.insert("after".into(), text(after));
            m.insert("before_header".into(), header.clone());
            m.insert("after_header".into(), header.clone());
            Value::Object(m)
        };
        match self.key {
            DiffKey::Hidden => None,
            DiffKey::Changed => match after {
                Some(after) if self.wanted => Some(content(before, after)),
                _ => None,
            },
            DiffKey::List => {
                let content = match self.wanted {
                    true => content(before, after.unwrap_or(before)),
                    false => content(b"", b""),
                };
                if self.check && !exists {
                    return Some(content);
                }
                let mut attrs = Map::new();
                if let Some(fix) = fix {
                    let (mut was, mut will) = (Map::new(), Map::new());
                    for (name, before, after) in &fix.changes {
                        was.insert(name.to_string(), Value::from(before.clone()));
                        will.insert(name.to_string(), Value::from(after.clone()));
                    }
                    attrs.insert("before".into(), Value::Object(was));
                    attrs.insert("after".into(), Value::Object(will));
                }
                let attrs_header = Value::from(format!("{} (file attributes)", self.path));
                attrs.insert("before_header".into(), attrs_header.clone());
                attrs.insert("after_header".into(), attrs_header);
                Some(Value::Array(vec![content, Value::Object(attrs)]))
            }
        }
    }
}

/// What an edit writes: the file (its directory, when created).
pub(super) fn edit_touches(change: &EditChange) -> Touched {
    let mut paths = vec![change.path.clone()];
    paths.extend(change.mkdir.clone());
    if change.entries_only {
        Touched::Entries(paths)
    } else {
        Touched::Paths(paths)
    }
}

pub(super) fn plan_edit(
    file: &TextFile,
    content: Option<Vec<u8>>,
    msg: &str,
    opts: &WriteOpts,
    report: &DiffReport,
    mut data: Map,
) -> Result<Plan<EditChange>, ModuleError> {
    let before = file.content();
    let content = content.filter(|new| before != Some(new.as_slice()));
    let fix = match file.exists() {
        true => fs::ensure_attrs(&file.state, &opts.attrs)?,
        false => None,
    };
    let result_diff = report.value(
        file.exists(),
        before.unwrap_or(b""),
        content.as_deref(),
        fix.as_ref(),
    );
    if let Some(d) = result_diff {
        data.insert("diff".into(), d);
    }
    let header = report.header();
    let attrs_differ = fix.is_some();
    let msg = match (&content, attrs_differ) {
        (None, false) => {
            data.insert("msg".into(), Value::from(""));
            return Ok(Plan::Unchanged(data));
        }
        (Some(_), false) => msg.to_string(),
        (None, true) => ATTRS_MSG.to_string(),
        (Some(_), true) => format!("{msg} and {ATTRS_MSG}"),
    };
    data.insert("msg".into(), Value::from(msg));
    let diff = content.as_ref().map(|new| Diff {
        before_header: header.clone(),
        after_header: header,
        before: String::from_utf8_lossy(before.unwrap_or(b"")).into_owned(),
        after: String::from_utf8_lossy(new).into_owned(),
    });
    let mkdir = (!file.exists() && !file.parent_exists).then(|| parent_of(&file.real));
    Ok(Plan::Change {
        change: EditChange {
            path: file.real.clone(),
            content,
            mkdir,
            fix,
            opts: opts.clone(),
            entries_only: matches!(file.state.kind, FileKind::Missing | FileKind::File),
        },
        diff,
        data,
    })
}

/// Make a change planned by [`plan_edit`]; returns the backup's path when
/// one was made.
pub(super) async fn apply_edit(remote: &Remote, change: EditChange) -> Result<Map, ModuleError> {
    let mut data = Map::new();
    let opts = &change.opts;
    let Some(content) = change.content else {
        let script = change
            .fix
            .map(|f| f.script(&change.path))
            .unwrap_or_default();
        fs::run_checked(
            remote,
            &script,
            &format!("setting attributes of {}", change.path),
        )
        .await?;
        return Ok(data);
    };
    if let Some(dir) = &change.mkdir {
        let out = remote
            .exec(&format!("mkdir -p -- {}", shell_quote(dir)), b"")
            .await?;
        if out.status != 0 {
            return Err(ModuleError::failed(format!(
                "Error creating {dir} ({})",
                out.stderr_str().trim()
            )));
        }
    }
    if let Some(v) = &opts.validate {
        validate(remote, v, &content).await?;
    }
    let backup =
        fs::write_file_atomic(remote, &change.path, &content, &opts.attrs, opts.backup).await?;
    if let Some(b) = backup {
        data.insert(opts.backup_key.into(), Value::from(b));
    }
    Ok(data)
}

/// `validate` as shell text that runs its words without a shell, as
/// Ansible does: each word quoted, `%s` standing for the temp file `"$t"`.
pub(super) fn validate_command(validate: &str) -> Result<String, ModuleError> {
    let words = crate::shlex::words(validate).map_err(|e| ModuleError::Args(e.to_string()))?;
    if words.is_empty() {
        return Err(ModuleError::Args("validate cannot be empty".into()));
    }
    Ok(words
        .iter()
        .map(|w| quote_with_tmp(w))
        .collect::<Vec<_>>()
        .join(" "))
}

/// Run `validate` on a temp file holding `content`; fail the task unless it
/// exits 0. Like Ansible, the command is split into words, not run by a shell.
async fn validate(remote: &Remote, validate: &str, content: &[u8]) -> Result<(), ModuleError> {
    let script = format!(
        "t=$(mktemp) || exit 1; trap 'rm -f \"$t\"' EXIT; cat > \"$t\"; ( exec {} )",
        validate_command(validate)?
    );
    let out = remote.exec(&script, content).await?;
    if out.status != 0 {
        let mut data = Map::new();
        data.insert("rc".into(), Value::from(out.status));
        data.insert("stderr".into(), Value::from(out.stderr_str()));
        return Err(ModuleError::Failed {
            msg: format!(
                "failed to validate: rc:{} error:{}",
                out.status,
                out.stderr_str()
            ),
            data,
        });
    }
    Ok(())
}

/// Quote one word for the shell with `%s` standing for the temp file `$t`
/// and `%%` for a percent sign (Python's `validate % tmpfile`).
fn quote_with_tmp(word: &str) -> String {
    let mut out = String::new();
    let mut lit = String::new();
    let mut chars = word.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('%', Some('s')) => {
                chars.next();
                if !lit.is_empty() {
                    out.push_str(&shell_quote(&std::mem::take(&mut lit)));
                }
                out.push_str("\"$t\"");
            }
            ('%', Some('%')) => {
                chars.next();
                lit.push('%');
            }
            (c, _) => lit.push(c),
        }
    }
    if !lit.is_empty() || out.is_empty() {
        out.push_str(&shell_quote(&lit));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::testutil::remote;

    fn re(p: &str) -> PyRegex {
        py_regex(p, ReFlags::default()).expect("regex")
    }

    #[test]
    fn backreferences_and_lookaround_take_the_backtracker() {
        let r = re(r"^(REF) .* \1$");
        assert!(matches!(r, PyRegex::Fancy(_)));
        assert!(r.is_match(b"REF this is a line for backrefs REF"));
        assert!(!r.is_match(b"REF this is a line for backrefs FER"));
        let caps = r.captures(b"REF x REF").expect("match");
        assert_eq!(caps.bytes(1), Some(&b"REF"[..]));
        let behind = re(r"(?<=a)b");
        assert_eq!(
            behind
                .captures_at(b"abab", 2)
                .and_then(|c| c.get(0))
                .map(|s| s.start()),
            Some(3)
        );
        assert!(matches!(re(r"^\s*a"), PyRegex::Fast(_)));
    }

    #[test]
    fn python_syntax_is_translated() {
        assert_eq!(translate(r"abc\Z"), r"abc\z");
        assert_eq!(translate(r"server {"), r"server \{");
        assert_eq!(translate(r"a{2,}b{,3}c{}"), r"a{2,}b{0,3}c\{\}");
        assert_eq!(translate(r"[[a&&b~~]"), r"[\[a\&\&b\~\~]");
        assert_eq!(translate(r"[]x]\<y\>"), r"[\]x]<y>");
        assert_eq!(translate(r"[^]x]"), r"[^\]x]");
        assert_eq!(translate(r"[\]]{3}"), r"[\]]{3}");
        assert!(re(r"^\s*listen\s+(\d+);").is_match(b"  listen 80;"));
        assert!(re(r"^x = {").is_match(b"x = {"));
        assert!(re(r"<tag>").is_match(b"a <tag> b"));
        assert!(py_regex(r"(a", ReFlags::default()).is_err());
    }

    #[test]
    fn templates_like_python() {
        let r = re(r"(?P<key>\w+)=(\w+)");
        let caps = r.captures(b"port=80").expect("match");
        let t = |s: &str| PyTemplate::parse(s, &r).expect("template").expand(&caps);
        assert_eq!(t(r"\1 is \2"), b"port is 80");
        assert_eq!(t(r"\g<key>:\g<2>"), b"port:80");
        assert_eq!(t(r"\g<1>0"), b"port0");
        assert_eq!(t(r"a\tb\\c\&"), b"a\tb\\c\\&");
        assert_eq!(t(r"\0"), b"\0");
        assert_eq!(t("$1 ${key}"), b"$1 ${key}");
        assert!(PyTemplate::parse(r"\3", &r).is_err());
        assert!(PyTemplate::parse(r"\g<nope>", &r).is_err());
        assert!(PyTemplate::parse(r"\q", &r).is_err());
    }

    #[test]
    fn lines_and_endings() {
        assert_eq!(split_lines(b"a\nb\r\nc"), vec![&b"a\n"[..], b"b\r\n", b"c"]);
        assert!(split_lines(b"").is_empty());
        assert_eq!(strip_eol(b"x\r\n"), b"x");
        assert_eq!(without_newline(b"x\r\n"), b"x\r");
        assert_eq!(parent_of("/etc/x"), "/etc");
        assert_eq!(parent_of("/x"), "/");
        assert_eq!(parent_of("x"), ".");
    }

    #[test]
    fn validate_words_are_quoted() {
        assert_eq!(quote_with_tmp("%s"), "\"$t\"");
        assert_eq!(quote_with_tmp("--file=%s"), "--file=\"$t\"");
        assert_eq!(quote_with_tmp("a b"), "'a b'");
        assert_eq!(quote_with_tmp("100%%"), "100%");
    }

    #[tokio::test]
    async fn validation_runs_on_the_new_content() {
        let r = remote();
        assert!(validate(&r, "grep -q good %s", b"good\n").await.is_ok());
        match validate(&r, "grep -q good %s", b"bad\n").await {
            Err(ModuleError::Failed { msg, .. }) => {
                assert!(msg.starts_with("failed to validate: rc:1"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn links_are_followed_and_home_expanded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("target");
        std::fs::write(&target, "x\n").expect("write");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        let f = read_text(&remote(), link.to_str().expect("utf8"))
            .await
            .expect("read");
        assert_eq!(f.real, target.to_str().expect("utf8"));
        assert_eq!(f.content(), Some(&b"x\n"[..]));
        assert!(f.parent_exists);
        let home = std::env::var("HOME").expect("HOME");
        let f = read_text(&remote(), "~/.drover-surely-missing/x")
            .await
            .expect("read");
        assert_eq!(f.real, format!("{home}/.drover-surely-missing/x"));
        assert!(!f.exists() && !f.parent_exists);
    }

    #[test]
    fn a_text_file_is_read_in_stages_home_file_then_link_target() {
        use crate::modules::reads::observed_stdout;
        let head = |kind: &str| {
            format!("@@ {kind}|644|root|root|0|0|0|1|1|2049|0|0|0|2026-01-01 00:00:00.0 +0000|2026-01-01 00:00:00.0 +0000|2026-01-01 00:00:00.0 +0000\n")
        };
        let stage = |outs: &[&str]| text_observed("~/x", &observed_stdout(outs)).expect("no error");
        let Err(first) = stage(&[]) else {
            panic!("the home is read first")
        };
        assert_eq!(first.reads[0].script, "printf '%s' ~");
        assert_eq!(first.reads[0].scope, Scope::Host);
        let Err(second) = stage(&["/home/u"]) else {
            panic!("then the file")
        };
        assert!(second.reads[0].script.contains("_dr /home/u/x P 0 1 0"));
        assert_eq!(
            second.reads[0].scope,
            Scope::Paths(vec![
                "/home/u/x".into(),
                crate::modules::ScopePath {
                    path: "/home/u".into(),
                    kind_only: true
                }
            ])
        );
        let link = format!(
            "{}@@lnk /etc/y\n{}",
            head("symbolic link"),
            head("directory")
        );
        let Err(third) = stage(&["/home/u", &link]) else {
            panic!("then the link")
        };
        assert_eq!(third.reads[0].script, "readlink -f -- /home/u/x");
        let Err(fourth) = stage(&["/home/u", &link, "/etc/y\n"]) else {
            panic!("then its target")
        };
        assert!(fourth.reads[0].script.contains("_dr /etc/y P 0 1 0"));
        let target = format!("@@ missing\n{}", head("directory"));
        let Ok(file) = stage(&["/home/u", &link, "/etc/y\n", &target]) else {
            panic!("then it is known")
        };
        assert_eq!(file.real, "/etc/y");
        assert!(!file.exists() && file.parent_exists);
    }
}
