//! `lineinfile`: make sure one line is in a file (replacing the last line a
//! regular expression matches), or that no line matching is. The edit is the
//! pure function [`present`] / [`absent`] over the file's bytes; the file is
//! read in one exec and written only when the content or attributes differ.

use async_trait::async_trait;
use serde::Deserialize;

use super::args::{opt_bool_ish, opt_string_ish, FileAttrs};
use super::textedit::{
    apply_edit, decide_edit, edit_touches, fail_rc, py_regex, split_lines, strip_eol,
    text_observed, text_reads, without_newline, DiffKey, DiffReport, EditChange, PyRegex,
    PyTemplate, ReFlags, WriteOpts,
};
use super::{Decision, Module, ModuleCtx, ModuleError, Observed, Plan, Protocol, ReadCtx, Touched};
use crate::{Map, Value};

/// Whether the line should be there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Ensure the line is in the file.
    #[default]
    Present,
    /// Remove matching lines.
    Absent,
}

/// Arguments of `lineinfile`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineInFile {
    /// The file to edit.
    #[serde(
        default,
        alias = "dest",
        alias = "destfile",
        alias = "name",
        deserialize_with = "opt_string_ish"
    )]
    path: Option<String>,
    /// `present` (default) or `absent`.
    #[serde(default)]
    state: Option<State>,
    /// Python regular expression selecting the line to replace or remove.
    #[serde(default, alias = "regex", deserialize_with = "opt_string_ish")]
    regexp: Option<String>,
    /// Literal text selecting the line to replace or remove.
    #[serde(default, deserialize_with = "opt_string_ish")]
    search_string: Option<String>,
    /// The line to put in.
    #[serde(default, alias = "value", deserialize_with = "opt_string_ish")]
    line: Option<String>,
    /// `EOF`, `BOF` or a regular expression: insert after its last match.
    #[serde(default, deserialize_with = "opt_string_ish")]
    insertafter: Option<String>,
    /// `BOF` or a regular expression: insert before its last match.
    #[serde(default, deserialize_with = "opt_string_ish")]
    insertbefore: Option<String>,
    /// `line` holds `\1`-style references to `regexp`'s groups; without a
    /// match nothing changes.
    #[serde(default, deserialize_with = "opt_bool_ish")]
    backrefs: Option<bool>,
    /// Create the file when missing.
    #[serde(default, deserialize_with = "opt_bool_ish")]
    create: Option<bool>,
    /// Keep a timestamped copy of the old file.
    #[serde(default, deserialize_with = "opt_bool_ish")]
    backup: Option<bool>,
    /// Use the first match of `regexp`/`insertafter`/`insertbefore`, not the last.
    #[serde(default, deserialize_with = "opt_bool_ish")]
    firstmatch: Option<bool>,
    /// Command checking the new content (`%s` is its temp file).
    #[serde(default, deserialize_with = "opt_string_ish")]
    validate: Option<String>,
    /// Mode, owner and group of the file.
    #[serde(flatten)]
    attrs: FileAttrs,
    /// Accepted for compatibility; writes are always atomic.
    #[serde(default, deserialize_with = "opt_bool_ish")]
    #[allow(dead_code)]
    unsafe_writes: Option<bool>,
}

/// How the line to replace or remove is found.
#[derive(Debug)]
pub enum Matcher {
    /// A regular expression, searched in each line.
    Regexp(PyRegex),
    /// Literal text contained in the line.
    Search(Vec<u8>),
}

impl Matcher {
    fn matches(&self, line: &[u8]) -> bool {
        match self {
            Matcher::Regexp(re) => re.is_match(without_newline(line)),
            Matcher::Search(s) => s.is_empty() || line.windows(s.len()).any(|w| w == s.as_slice()),
        }
    }
}

/// Where the line goes when nothing matches.
#[derive(Debug)]
pub enum Insert {
    /// At the end (the default).
    Eof,
    /// At the beginning.
    Bof,
    /// After the last (or first) line matching.
    After(PyRegex),
    /// Before the last (or first) line matching.
    Before(PyRegex),
}

/// What `state=present` needs.
#[derive(Debug)]
pub struct Present {
    /// The line, without its newline.
    pub line: Vec<u8>,
    /// `regexp` or `search_string`.
    pub matcher: Option<Matcher>,
    /// `insertafter` / `insertbefore`.
    pub insert: Insert,
    /// `line` as a template over `regexp`'s groups (`backrefs: yes`).
    pub backrefs: Option<PyTemplate>,
    /// Stop at the first match.
    pub firstmatch: bool,
}

fn ends_line(line: &[u8]) -> bool {
    matches!(line.last(), Some(b'\n' | b'\r'))
}

/// `state=present` on `old`: the new content and Ansible's message (empty
/// when nothing changes).
pub fn present(old: &[u8], spec: &Present) -> (Vec<u8>, &'static str) {
    let mut lines: Vec<Vec<u8>> = split_lines(old).into_iter().map(<[u8]>::to_vec).collect();
    let line = spec.line.as_slice();
    let with_nl = |l: &[u8]| {
        let mut v = l.to_vec();
        v.push(b'\n');
        v
    };
    // index of the line to replace; where to insert otherwise.
    let mut found: Option<usize> = None;
    let mut insert_at: Option<usize> = None;
    let mut matched = false;
    if let Some(m) = &spec.matcher {
        for (i, l) in lines.iter().enumerate() {
            if m.matches(l) {
                found = Some(i);
                matched = true;
                if spec.firstmatch {
                    break;
                }
            }
        }
    }
    if !matched {
        let anchor = match &spec.insert {
            Insert::After(re) | Insert::Before(re) => Some(re),
            _ => None,
        };
        for (i, l) in lines.iter().enumerate() {
            if strip_eol(l) == line {
                found = Some(i);
            } else if anchor.is_some_and(|re| re.is_match(without_newline(l))) {
                insert_at = Some(match spec.insert {
                    Insert::After(_) => i + 1,
                    _ => i,
                });
                if spec.firstmatch {
                    break;
                }
            }
        }
    }

    let msg = if let Some(i) = found {
        let mut new_line = match (&spec.backrefs, &spec.matcher) {
            (Some(t), Some(Matcher::Regexp(re))) if matched => re
                .captures(without_newline(&lines[i]))
                .map(|c| t.expand(&c))
                .unwrap_or_else(|| line.to_vec()),
            _ => line.to_vec(),
        };
        if !new_line.ends_with(b"\n") {
            new_line.push(b'\n');
        }
        if lines[i] == new_line {
            ""
        } else {
            lines[i] = new_line;
            "line replaced"
        }
    } else if spec.backrefs.is_some() {
        // Without a match the backreferences have nothing to fill them.
        ""
    } else {
        match (&spec.insert, insert_at) {
            (Insert::Bof, _) => {
                lines.insert(0, with_nl(line));
                "line added"
            }
            (Insert::Eof, _) | (_, None) => {
                if lines.last().is_some_and(|l| !ends_line(l)) {
                    lines.push(b"\n".to_vec());
                }
                lines.push(with_nl(line));
                "line added"
            }
            (Insert::After(_), Some(at)) if at == lines.len() => {
                if strip_eol(&lines[at - 1]) == line {
                    ""
                } else {
                    // Ansible glues the line onto a last line that lacks
                    // its newline here; drover ends that line first.
                    if !ends_line(&lines[at - 1]) {
                        lines[at - 1].push(b'\n');
                    }
                    lines.push(with_nl(line));
                    "line added"
                }
            }
            (Insert::After(_), Some(at)) => {
                if strip_eol(&lines[at]) == line {
                    ""
                } else {
                    lines.insert(at, with_nl(line));
                    "line added"
                }
            }
            (Insert::Before(_), Some(at)) => {
                lines.insert(at, with_nl(line));
                "line added"
            }
        }
    };
    (lines.concat(), msg)
}

/// `state=absent` on `old`: the remaining content and how many lines went.
/// Lines are selected by `matcher`, or else by being equal to `line`.
pub fn absent(old: &[u8], matcher: Option<&Matcher>, line: &[u8]) -> (Vec<u8>, usize) {
    let mut found = 0;
    let mut kept = Vec::with_capacity(old.len());
    for l in split_lines(old) {
        let hit = match matcher {
            Some(m) => m.matches(l),
            None => strip_eol(l) == line,
        };
        if hit {
            found += 1;
        } else {
            kept.extend_from_slice(l);
        }
    }
    (kept, found)
}

/// What the task asks for, validated.
enum Job {
    Present(Present),
    /// Remove the lines `matcher` selects, or else those equal to `line`.
    Absent(Option<Matcher>),
}

fn exclusive(a: bool, b: bool, names: &str) -> Result<(), ModuleError> {
    if a && b {
        return Err(ModuleError::Args(format!(
            "parameters are mutually exclusive: {names}"
        )));
    }
    Ok(())
}

impl LineInFile {
    /// Ansible's warning for an empty `regexp` or `search_string`, which
    /// selects every line.
    fn empty_pattern_warning(&self) -> Option<String> {
        let (name, hint) = if self.regexp.as_deref() == Some("") {
            (
                "regular expression",
                " If this is desired, use '^' to match every line in the file and avoid this warning.",
            )
        } else if self.search_string.as_deref() == Some("") {
            ("search string", "")
        } else {
            return None;
        };
        Some(format!(
            "The {name} is an empty string, which will match every line in the file. This may \
             have unintended consequences, such as replacing the last line in the file rather \
             than appending.{hint}"
        ))
    }

    fn matcher(&self) -> Result<Option<Matcher>, ModuleError> {
        Ok(match (&self.regexp, &self.search_string) {
            (Some(r), _) => Some(Matcher::Regexp(py_regex(r, ReFlags::default())?)),
            (None, Some(s)) => Some(Matcher::Search(s.as_bytes().to_vec())),
            (None, None) => None,
        })
    }

    fn present_spec(&self, matcher: Option<Matcher>) -> Result<Present, ModuleError> {
        let line = self
            .line
            .clone()
            .ok_or_else(|| ModuleError::failed("line is required with state=present"))?;
        let backrefs = match (self.backrefs.unwrap_or(false), &matcher) {
            (false, _) => None,
            (true, Some(Matcher::Regexp(re))) => Some(PyTemplate::parse(&line, re)?),
            (true, _) => return Err(ModuleError::failed("regexp is required with backrefs=true")),
        };
        let regex = |p: &str| py_regex(p, ReFlags::default());
        let insert = match (self.insertafter.as_deref(), self.insertbefore.as_deref()) {
            (None | Some("EOF"), None) => Insert::Eof,
            (Some("BOF"), _) | (None, Some("BOF")) => Insert::Bof,
            (Some(after), _) => Insert::After(regex(after)?),
            (None, Some(before)) => Insert::Before(regex(before)?),
        };
        Ok(Present {
            line: line.into_bytes(),
            matcher,
            insert,
            backrefs,
            firstmatch: self.firstmatch.unwrap_or(false),
        })
    }
}

#[async_trait]
impl Module for LineInFile {
    const NAME: &'static str = "lineinfile";
    const ARGS: &'static [&'static str] = &[
        "path",
        "dest",
        "destfile",
        "name",
        "state",
        "regexp",
        "regex",
        "search_string",
        "line",
        "value",
        "insertafter",
        "insertbefore",
        "backrefs",
        "create",
        "backup",
        "firstmatch",
        "validate",
        "mode",
        "owner",
        "group",
        "unsafe_writes",
    ];
    type Change = EditChange;

    fn reads(&self, ctx: &ReadCtx<'_>) -> Result<Protocol, ModuleError> {
        // Deciding with nothing observed checks the arguments and names the
        // first reads.
        text_reads(self.decide(&Observed::default(), ctx)?)
    }

    fn decide(
        &self,
        observed: &Observed,
        ctx: &ReadCtx<'_>,
    ) -> Result<Decision<EditChange>, ModuleError> {
        let path = self
            .path
            .as_deref()
            .ok_or_else(|| ModuleError::Args("missing required arguments: path".into()))?;
        exclusive(
            self.insertafter.is_some(),
            self.insertbefore.is_some(),
            "insertbefore|insertafter",
        )?;
        exclusive(
            self.regexp.is_some(),
            self.search_string.is_some(),
            "regexp|search_string",
        )?;
        exclusive(
            self.backrefs.unwrap_or(false),
            self.search_string.is_some(),
            "backrefs|search_string",
        )?;
        let state = self.state.unwrap_or_default();
        let matcher = self.matcher()?;
        let job = match state {
            State::Present => Job::Present(self.present_spec(matcher)?),
            State::Absent => {
                if matcher.is_none() && self.line.is_none() {
                    return Err(ModuleError::failed(
                        "one of line, search_string, or regexp is required with state=absent",
                    ));
                }
                Job::Absent(matcher)
            }
        };
        let opts = WriteOpts::new(
            self.attrs.attrs(),
            self.backup.unwrap_or(false),
            "backup",
            self.validate.clone(),
        )?;

        let file = match text_observed(path, observed)? {
            Ok(file) => file,
            Err(more) => return Ok(Decision::Read(more)),
        };
        if file.is_dir() {
            return Err(fail_rc(format!("Path {path} is a directory !"), 256));
        }
        let mut data = Map::new();
        data.insert("backup".into(), Value::from(""));
        if let Some(w) = self.empty_pattern_warning() {
            data.insert("warnings".into(), Value::Array(vec![Value::from(w)]));
        }
        let report = DiffReport {
            path: path.to_string(),
            key: DiffKey::List,
            wanted: ctx.diff,
            check: ctx.check,
        };
        match job {
            Job::Present(spec) => {
                if !file.exists() && !self.create.unwrap_or(false) {
                    return Err(fail_rc(format!("Destination {path} does not exist !"), 257));
                }
                let (new, msg) = present(file.content().unwrap_or_default(), &spec);
                let content = (!msg.is_empty()).then_some(new);
                decide_edit(&file, content, msg, &opts, report, data)
            }
            Job::Absent(matcher) => {
                let Some(old) = file.content() else {
                    data.insert("msg".into(), Value::from("file not present"));
                    return Ok(Decision::Plan(Plan::Unchanged(data)));
                };
                let line = self.line.as_deref().unwrap_or_default().as_bytes();
                let (new, found) = absent(old, matcher.as_ref(), line);
                data.insert("found".into(), Value::from(found));
                let content = (found > 0).then_some(new);
                decide_edit(
                    &file,
                    content,
                    &format!("{found} line(s) removed"),
                    &opts,
                    report,
                    data,
                )
            }
        }
    }

    fn touches(&self, change: &EditChange) -> Touched {
        edit_touches(change)
    }

    async fn apply(&self, ctx: &ModuleCtx<'_>, change: EditChange) -> Result<Map, ModuleError> {
        apply_edit(ctx.remote, change).await
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::modules::testutil::run;

    fn re(p: &str) -> PyRegex {
        py_regex(p, ReFlags::default()).expect("regex")
    }

    fn spec(line: &str) -> Present {
        Present {
            line: line.as_bytes().to_vec(),
            matcher: None,
            insert: Insert::Eof,
            backrefs: None,
            firstmatch: false,
        }
    }

    fn with_re(line: &str, r: &str) -> Present {
        Present {
            matcher: Some(Matcher::Regexp(re(r))),
            ..spec(line)
        }
    }

    fn apply(old: &str, s: &Present) -> (String, &'static str) {
        let (new, msg) = present(old.as_bytes(), s);
        (String::from_utf8(new).expect("utf8"), msg)
    }

    #[test]
    fn appends_with_a_newline_where_missing() {
        assert_eq!(apply("", &spec("x")), ("x\n".into(), "line added"));
        assert_eq!(apply("a\n", &spec("x")), ("a\nx\n".into(), "line added"));
        assert_eq!(apply("a", &spec("x")), ("a\nx\n".into(), "line added"));
        assert_eq!(
            apply("a\r\n", &spec("x")),
            ("a\r\nx\n".into(), "line added")
        );
    }

    #[test]
    fn an_existing_line_is_left_alone() {
        assert_eq!(apply("a\nx\nb\n", &spec("x")), ("a\nx\nb\n".into(), ""));
        // Ansible's quirks, kept: the line gets a newline, CRLF becomes LF.
        assert_eq!(
            apply("a\nx", &spec("x")),
            ("a\nx\n".into(), "line replaced")
        );
        assert_eq!(apply("x\r\n", &spec("x")), ("x\n".into(), "line replaced"));
    }

    #[test]
    fn regexp_replaces_the_last_match_or_the_first() {
        let s = with_re("port=3", "^port=");
        assert_eq!(
            apply("port=1\nport=2\nz\n", &s),
            ("port=1\nport=3\nz\n".into(), "line replaced")
        );
        let first = Present {
            firstmatch: true,
            ..with_re("port=3", "^port=")
        };
        assert_eq!(
            apply("port=1\nport=2\n", &first),
            ("port=3\nport=2\n".into(), "line replaced")
        );
        assert_eq!(apply("port=3\n", &s), ("port=3\n".into(), ""));
        // `$` matches before the newline, as in Python.
        let anchored = with_re("a=2", "^a=1$");
        assert_eq!(apply("a=1\n", &anchored), ("a=2\n".into(), "line replaced"));
    }

    #[test]
    fn regexp_without_match_inserts_or_finds_the_line() {
        let s = with_re("port=3", "^port=");
        assert_eq!(apply("a\n", &s), ("a\nport=3\n".into(), "line added"));
        let s = with_re("port=3", "^nomatch");
        assert_eq!(apply("port=3\n", &s), ("port=3\n".into(), ""));
    }

    #[test]
    fn insertafter_and_insertbefore() {
        let after = Present {
            insert: Insert::After(re("^\\[main\\]")),
            ..spec("k=v")
        };
        assert_eq!(
            apply("[main]\na=1\n[other]\n", &after),
            ("[main]\nk=v\na=1\n[other]\n".into(), "line added")
        );
        // The last match wins unless firstmatch.
        let after_sec = Present {
            insert: Insert::After(re("^\\[")),
            ..spec("k=v")
        };
        assert_eq!(
            apply("[a]\n[b]\nx\n", &after_sec),
            ("[a]\n[b]\nk=v\nx\n".into(), "line added")
        );
        let first = Present {
            insert: Insert::After(re("^\\[")),
            firstmatch: true,
            ..spec("k=v")
        };
        assert_eq!(
            apply("[a]\n[b]\n", &first),
            ("[a]\nk=v\n[b]\n".into(), "line added")
        );
        // At the end of a file lacking its final newline.
        assert_eq!(
            apply("x\n[main]", &after),
            ("x\n[main]\nk=v\n".into(), "line added")
        );
        // No match: EOF.
        assert_eq!(apply("x\n", &after), ("x\nk=v\n".into(), "line added"));
        let before = Present {
            insert: Insert::Before(re("^exit")),
            ..spec("run")
        };
        assert_eq!(
            apply("a\nexit 0\n", &before),
            ("a\nrun\nexit 0\n".into(), "line added")
        );
        assert_eq!(
            apply("a\nrun\nexit 0\n", &before),
            ("a\nrun\nexit 0\n".into(), "")
        );
        let bof = Present {
            insert: Insert::Bof,
            ..spec("#!/bin/sh")
        };
        assert_eq!(apply("a\n", &bof), ("#!/bin/sh\na\n".into(), "line added"));
        assert_eq!(apply("#!/bin/sh\na\n", &bof), ("#!/bin/sh\na\n".into(), ""));
    }

    #[test]
    fn backrefs_fill_groups_or_change_nothing() {
        let r = re(r"^(\s*)(?P<key>port)\s*=.*$");
        let t = PyTemplate::parse(r"\1\g<key> = 8080", &r).expect("template");
        let s = Present {
            matcher: Some(Matcher::Regexp(r)),
            backrefs: Some(t),
            ..spec(r"\1\g<key> = 8080")
        };
        assert_eq!(
            apply("[s]\n    port = 80\n", &s),
            ("[s]\n    port = 8080\n".into(), "line replaced")
        );
        assert_eq!(
            apply("    port = 8080\n", &s),
            ("    port = 8080\n".into(), "")
        );
        assert_eq!(apply("other\n", &s), ("other\n".into(), ""));
    }

    #[test]
    fn search_string_is_literal() {
        let s = Present {
            matcher: Some(Matcher::Search(b"a.b(".to_vec())),
            ..spec("x")
        };
        assert_eq!(
            apply("a.b(1)\naxb(\n", &s),
            ("x\naxb(\n".into(), "line replaced")
        );
    }

    #[test]
    fn absent_removes_every_match() {
        let (new, n) = absent(b"a\n#x\nb\n#y", Some(&Matcher::Regexp(re("^#"))), b"");
        assert_eq!((new.as_slice(), n), (&b"a\nb\n"[..], 2));
        let (new, n) = absent(b"a\nb\r\na\n", None, b"a");
        assert_eq!((new.as_slice(), n), (&b"b\r\n"[..], 2));
        let (_, n) = absent(b"a\n", None, b"zz");
        assert_eq!(n, 0);
    }

    fn file(dir: &tempfile::TempDir, name: &str) -> String {
        dir.path().join(name).to_str().expect("utf8").to_string()
    }

    #[tokio::test]
    async fn converges_then_stays_unchanged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = file(&dir, "sub/conf");
        let args =
            json!({"path": p, "line": "a=1", "regexp": "^a=", "create": "yes", "mode": "0600"});
        let check = run::<LineInFile>(args.clone(), true).await.expect("check");
        assert!(check.changed);
        assert!(!dir.path().join("sub").exists(), "check mode wrote");
        let diff = check.diff.expect("diff");
        assert_eq!((diff.before.as_str(), diff.after.as_str()), ("", "a=1\n"));
        let first = run::<LineInFile>(args.clone(), false).await.expect("first");
        assert!(first.changed);
        assert_eq!(first.data["msg"], "line added");
        assert_eq!(std::fs::read_to_string(&p).expect("read"), "a=1\n");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&p).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let second = run::<LineInFile>(args, false).await.expect("second");
        assert!(!second.changed);
        assert_eq!(second.data["msg"], "");
    }

    #[test]
    fn empty_patterns_warn_as_ansible_does() {
        let w = |args: Value| {
            serde_json::from_value::<LineInFile>(args)
                .expect("args")
                .empty_pattern_warning()
        };
        let re = w(json!({"path": "/f", "regexp": "", "line": "x"})).expect("warning");
        assert!(re.starts_with("The regular expression is an empty string, which will match every line in the file. This may have unintended consequences, such as replacing the last line in the file rather than appending. If this"));
        let s = w(json!({"path": "/f", "search_string": "", "line": "x"})).expect("warning");
        assert!(s.ends_with("rather than appending."));
        assert!(w(json!({"path": "/f", "regexp": "^", "line": "x"})).is_none());
    }

    #[test]
    fn backreference_in_regexp_selects_the_line() {
        let mut s = spec("This is line 3");
        s.matcher = Some(Matcher::Regexp(re(r"^(REF) .* \1$")));
        s.backrefs = Some(PyTemplate::parse("This is line 3", &re(r"^(REF) .* \1$")).expect("t"));
        let old = b"a\nREF this is a line for backrefs REF\nb\n";
        let (new, msg) = present(old, &s);
        assert_eq!(
            (new.as_slice(), msg),
            (&b"a\nThis is line 3\nb\n"[..], "line replaced")
        );
        let (again, msg) = present(&new, &s);
        assert_eq!((again, msg), (new, ""));
    }

    #[tokio::test]
    async fn result_carries_a_content_and_attributes_diff_list() {
        use crate::modules::testutil::Harness;
        let dir = tempfile::tempdir().expect("tempdir");
        let p = file(&dir, "a/a.txt");
        let args = json!({"dest": p, "line": "First line", "create": true});
        // Without diff mode the list is there, its texts empty.
        let check = Harness::new()
            .run::<LineInFile>(args.clone(), true, false)
            .await
            .expect("check");
        let content = json!({"before": "", "after": "",
            "before_header": format!("{p} (content)"), "after_header": format!("{p} (content)")});
        // Check mode on a missing file: the content diff alone.
        assert_eq!(check.data["diff"], content);
        let first = run::<LineInFile>(args.clone(), false).await.expect("first");
        let attrs = json!({"before_header": format!("{p} (file attributes)"),
            "after_header": format!("{p} (file attributes)")});
        let mut shown = content.clone();
        shown["after"] = json!("First line\n");
        assert_eq!(first.data["diff"], json!([shown, attrs]));
        let again = json!({"dest": p, "line": "First line", "mode": "0600"});
        let second = run::<LineInFile>(again, false).await.expect("second");
        let diff = second.data["diff"].as_array().expect("list");
        assert_eq!(diff[0]["before"], diff[0]["after"]);
        assert_eq!(diff[1]["after"], json!({"mode": "0600"}));
    }

    #[tokio::test]
    async fn attributes_alone_and_backup() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = file(&dir, "f");
        std::fs::write(&p, "a=0\n").expect("write");
        let out = run::<LineInFile>(json!({"path": p, "line": "a=0", "mode": "0640"}), false)
            .await
            .expect("mode");
        assert!(out.changed);
        assert_eq!(
            out.data["msg"],
            "ownership, perms or SE linux context changed"
        );
        let out = run::<LineInFile>(
            json!({"dest": p, "regexp": "^a=", "line": "a=1", "backup": true}),
            false,
        )
        .await
        .expect("backup");
        let backup = out.data["backup"]
            .as_str()
            .expect("backup path")
            .to_string();
        assert_eq!(std::fs::read_to_string(&backup).expect("backup"), "a=0\n");
        assert_eq!(std::fs::read_to_string(&p).expect("file"), "a=1\n");
    }

    #[tokio::test]
    async fn absent_and_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = file(&dir, "f");
        match run::<LineInFile>(json!({"path": p, "line": "x"}), false).await {
            Err(ModuleError::Failed { msg, data }) => {
                assert_eq!(msg, format!("Destination {p} does not exist !"));
                assert_eq!(data["rc"], 257);
            }
            other => panic!("{other:?}"),
        }
        let gone = run::<LineInFile>(json!({"path": p, "line": "x", "state": "absent"}), false)
            .await
            .expect("absent on missing");
        assert_eq!(gone.data["msg"], "file not present");
        std::fs::write(&p, "x\ny\nx\n").expect("write");
        let args = json!({"path": p, "line": "x", "state": "absent"});
        let check = run::<LineInFile>(args.clone(), true).await.expect("check");
        assert!(check.changed);
        assert_eq!(std::fs::read_to_string(&p).expect("read"), "x\ny\nx\n");
        let out = run::<LineInFile>(args.clone(), false)
            .await
            .expect("absent");
        assert_eq!(out.data["msg"], "2 line(s) removed");
        assert_eq!(out.data["found"], 2);
        assert_eq!(std::fs::read_to_string(&p).expect("read"), "y\n");
        assert!(!run::<LineInFile>(args, false).await.expect("again").changed);
        let dir_path = dir.path().to_str().expect("utf8");
        match run::<LineInFile>(json!({"path": dir_path, "line": "x"}), false).await {
            Err(ModuleError::Failed { msg, .. }) => assert!(msg.ends_with("is a directory !")),
            other => panic!("{other:?}"),
        }
        for bad in [
            json!({"path": p, "regexp": "a", "search_string": "b", "line": "x"}),
            json!({"path": p, "insertafter": "a", "insertbefore": "b", "line": "x"}),
            json!({"path": p, "line": "x", "bogus": 1}),
            json!({"path": p, "line": "x", "state": "maybe"}),
        ] {
            assert!(
                matches!(
                    run::<LineInFile>(bad.clone(), false).await,
                    Err(ModuleError::Args(_))
                ),
                "{bad}"
            );
        }
    }

    #[tokio::test]
    async fn validate_failure_keeps_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = file(&dir, "f");
        std::fs::write(&p, "ok\n").expect("write");
        let out = run::<LineInFile>(
            json!({"path": p, "line": "bad", "validate": "sh -c '! grep -q bad %s'"}),
            false,
        )
        .await;
        assert!(matches!(out, Err(ModuleError::Failed { .. })), "{out:?}");
        assert_eq!(std::fs::read_to_string(&p).expect("read"), "ok\n");
    }
}
