//! `blockinfile`: keep a block of lines between two marker lines in a file,
//! inserting, updating or removing it. The edit is the pure function
//! [`blockinfile`].

use async_trait::async_trait;
use serde::Deserialize;

use super::args::{opt_bool_ish, opt_string_ish, FileAttrs};
use super::safe;
use super::textedit::{
    apply_edit, decide_edit, edit_touches, fail_rc, py_regex, strip_eol, text_observed, text_reads,
    without_newline, DiffKey, DiffReport, EditChange, PyRegex, ReFlags, WriteOpts,
};
use super::{Decision, Module, ModuleCtx, ModuleError, Observed, Plan, Protocol, ReadCtx, Touched};
use crate::{Map, Value};

/// Whether the block should be there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Insert or update the block.
    #[default]
    Present,
    /// Remove it.
    Absent,
}

/// Arguments of `blockinfile`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockInFile {
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
    /// Marker line template; `{mark}` becomes `marker_begin` / `marker_end`.
    #[serde(default, deserialize_with = "opt_string_ish")]
    marker: Option<String>,
    /// The text between the markers; empty removes the block.
    #[serde(default, alias = "content", deserialize_with = "opt_string_ish")]
    block: Option<String>,
    /// `EOF` or a regular expression: a new block goes after its last match.
    #[serde(default, deserialize_with = "opt_string_ish")]
    insertafter: Option<String>,
    /// `BOF` or a regular expression: a new block goes before its last match.
    #[serde(default, deserialize_with = "opt_string_ish")]
    insertbefore: Option<String>,
    /// Create the file when missing.
    #[serde(default, deserialize_with = "opt_bool_ish")]
    create: Option<bool>,
    /// Keep a timestamped copy of the old file.
    #[serde(default, deserialize_with = "opt_bool_ish")]
    backup: Option<bool>,
    /// Command checking the new content (`%s` is its temp file).
    #[serde(default, deserialize_with = "opt_string_ish")]
    validate: Option<String>,
    /// Replaces `{mark}` in the first marker (default `BEGIN`).
    #[serde(default, deserialize_with = "opt_string_ish")]
    marker_begin: Option<String>,
    /// Replaces `{mark}` in the last marker (default `END`).
    #[serde(default, deserialize_with = "opt_string_ish")]
    marker_end: Option<String>,
    /// Put a blank line after the block unless one is there.
    #[serde(default, deserialize_with = "opt_bool_ish")]
    append_newline: Option<bool>,
    /// Put a blank line before the block unless one is there.
    #[serde(default, deserialize_with = "opt_bool_ish")]
    prepend_newline: Option<bool>,
    /// Mode, owner and group of the file.
    #[serde(flatten)]
    attrs: FileAttrs,
    /// Accepted for compatibility; writes are always atomic.
    #[serde(default, deserialize_with = "opt_bool_ish")]
    #[allow(dead_code)]
    unsafe_writes: Option<bool>,
}

/// Where a block without markers in the file goes.
#[derive(Debug)]
pub enum Insert {
    /// At the end (the default).
    Eof,
    /// At the beginning.
    Bof,
    /// After the line of the last match; `true` when the pattern is
    /// multi-line (`(?m)`) and is searched in the whole file.
    After(PyRegex, bool),
    /// Before the line of the last match (multi-line as for `After`).
    Before(PyRegex, bool),
}

/// A compiled `blockinfile` task.
#[derive(Debug)]
pub struct Spec {
    /// The first marker line, without newline.
    pub begin: Vec<u8>,
    /// The last marker line, without newline.
    pub end: Vec<u8>,
    /// The block; empty (or `present: false`) removes it.
    pub block: Vec<u8>,
    /// `state=present`.
    pub present: bool,
    /// Where a new block goes.
    pub insert: Insert,
    /// Blank line before the block.
    pub prepend_newline: bool,
    /// Blank line after the block.
    pub append_newline: bool,
}

/// Python's `bytes.splitlines(True)`: lines end at `\n`, `\r\n` or `\r`.
fn split_universal(data: &[u8]) -> Vec<Vec<u8>> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < data.len() {
        match data[i] {
            b'\n' => {
                lines.push(data[start..=i].to_vec());
                start = i + 1;
            }
            b'\r' => {
                if data.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                lines.push(data[start..=i].to_vec());
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < data.len() {
        lines.push(data[start..].to_vec());
    }
    lines
}

/// Apply `spec` to the file's content (`None`: no file yet). Returns the new
/// content and Ansible's message (empty when nothing changes).
pub fn blockinfile(original: Option<&[u8]>, spec: &Spec) -> (Vec<u8>, &'static str) {
    let mut lines = split_universal(original.unwrap_or_default());
    let with_nl = |l: &[u8]| {
        let mut v = l.to_vec();
        v.push(b'\n');
        v
    };
    let blocklines: Vec<Vec<u8>> = if spec.present && !spec.block.is_empty() {
        let mut block = spec.block.clone();
        if !block.ends_with(b"\n") {
            block.push(b'\n');
        }
        let mut v = vec![with_nl(&spec.begin)];
        v.extend(split_universal(&block));
        v.push(with_nl(&spec.end));
        v
    } else {
        Vec::new()
    };
    // Markers are recognised whatever their line ending, so that a file
    // with CRLF endings or a last marker without newline does not get a
    // second block.
    let (mut n0, mut n1) = (None, None);
    for (i, l) in lines.iter().enumerate() {
        if strip_eol(l) == spec.begin.as_slice() {
            n0 = Some(i);
        }
        if strip_eol(l) == spec.end.as_slice() {
            n1 = Some(i);
        }
    }
    let mut at = match (n0, n1) {
        (Some(b), Some(e)) => {
            let (lo, hi) = if b < e { (b, e) } else { (e, b) };
            lines.drain(lo..=hi);
            lo
        }
        _ => match &spec.insert {
            Insert::Eof => lines.len(),
            Insert::Bof => 0,
            Insert::After(re, multi) | Insert::Before(re, multi) => {
                let after = matches!(spec.insert, Insert::After(..));
                let found = if *multi {
                    let text = original.unwrap_or_default();
                    re.find(text).map(|m| {
                        let upto = if after { m.end() } else { m.start() };
                        text[..upto].iter().filter(|&&b| b == b'\n').count()
                    })
                } else {
                    lines.iter().rposition(|l| re.is_match(without_newline(l)))
                };
                match found {
                    None => lines.len(),
                    Some(i) if after => i + 1,
                    Some(i) => i,
                }
            }
        },
    };
    if at > 0 && !lines[at - 1].ends_with(b"\n") {
        lines[at - 1].push(b'\n');
    }
    if spec.present && spec.prepend_newline && at != 0 && lines[at - 1] != b"\n" {
        lines.insert(at, b"\n".to_vec());
        at += 1;
    }
    let count = blocklines.len();
    lines.splice(at..at, blocklines);
    let after = at + count;
    if spec.present && spec.append_newline && after < lines.len() && lines[after] != b"\n" {
        lines.insert(after, b"\n".to_vec());
    }
    let result = lines.concat();
    let msg = match original {
        Some(o) if o == result.as_slice() => "",
        None => "File created",
        Some(_) if count == 0 => "Block removed",
        Some(_) => "Block inserted",
    };
    (result, msg)
}

/// Is the pattern compiled with `re.MULTILINE`, i.e. does it start with
/// global inline flags containing `m`?
fn is_multiline(pattern: &str) -> bool {
    pattern
        .strip_prefix("(?")
        .and_then(|rest| rest.split_once(')'))
        .is_some_and(|(flags, _)| {
            flags.contains('m') && flags.chars().all(|c| "aiLmsux".contains(c))
        })
}

impl BlockInFile {
    fn spec(&self) -> Result<Spec, ModuleError> {
        let marker = self
            .marker
            .as_deref()
            .unwrap_or("# {mark} ANSIBLE MANAGED BLOCK");
        let begin = marker.replace("{mark}", self.marker_begin.as_deref().unwrap_or("BEGIN"));
        let end = marker.replace("{mark}", self.marker_end.as_deref().unwrap_or("END"));
        // A marker spanning lines would never be found again: every run
        // would add another block.
        safe::one_line("marker", &begin)?;
        safe::one_line("marker", &end)?;
        let regex = |p: &str| -> Result<Insert, ModuleError> {
            let re = py_regex(p, ReFlags::default())?;
            Ok(if self.insertafter.is_some() {
                Insert::After(re, is_multiline(p))
            } else {
                Insert::Before(re, is_multiline(p))
            })
        };
        let insert = match (self.insertafter.as_deref(), self.insertbefore.as_deref()) {
            (Some(_), Some(_)) => {
                return Err(ModuleError::Args(
                    "parameters are mutually exclusive: insertbefore|insertafter".into(),
                ))
            }
            (None | Some("EOF"), None) => Insert::Eof,
            (None, Some("BOF")) => Insert::Bof,
            (Some(p), None) | (None, Some(p)) => regex(p)?,
        };
        Ok(Spec {
            begin: begin.into_bytes(),
            end: end.into_bytes(),
            block: self.block.clone().unwrap_or_default().into_bytes(),
            present: self.state.unwrap_or_default() == State::Present,
            insert,
            prepend_newline: self.prepend_newline.unwrap_or(false),
            append_newline: self.append_newline.unwrap_or(false),
        })
    }
}

#[async_trait]
impl Module for BlockInFile {
    const NAME: &'static str = "blockinfile";
    const ARGS: &'static [&'static str] = &[
        "path",
        "dest",
        "destfile",
        "name",
        "state",
        "marker",
        "block",
        "content",
        "insertafter",
        "insertbefore",
        "create",
        "backup",
        "validate",
        "marker_begin",
        "marker_end",
        "append_newline",
        "prepend_newline",
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
        let spec = self.spec()?;
        let opts = WriteOpts::new(
            self.attrs.attrs(),
            self.backup.unwrap_or(false),
            "backup_file",
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
        if !file.exists() {
            if !self.create.unwrap_or(false) {
                return Err(fail_rc(format!("Path {path} does not exist !"), 257));
            }
            if !spec.present {
                data.insert(
                    "msg".into(),
                    Value::from(format!("File {path} not present")),
                );
                return Ok(Decision::Plan(Plan::Unchanged(data)));
            }
        }
        let (new, msg) = blockinfile(file.content(), &spec);
        let content = (!msg.is_empty()).then_some(new);
        decide_edit(
            &file,
            content,
            msg,
            &opts,
            DiffReport {
                path: path.to_string(),
                key: DiffKey::List,
                wanted: ctx.diff,
                check: ctx.check,
            },
            data,
        )
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

    fn spec(args: Value) -> Spec {
        serde_json::from_value::<BlockInFile>(args)
            .expect("args")
            .spec()
            .expect("spec")
    }

    fn edit(old: Option<&str>, args: Value) -> (String, &'static str) {
        let (new, msg) = blockinfile(old.map(str::as_bytes), &spec(args));
        (String::from_utf8(new).expect("utf8"), msg)
    }

    const B: &str = "# BEGIN ANSIBLE MANAGED BLOCK\n";
    const E: &str = "# END ANSIBLE MANAGED BLOCK\n";

    #[test]
    fn inserts_at_the_end_or_creates() {
        assert_eq!(
            edit(None, json!({"block": "a\nb"})),
            (format!("{B}a\nb\n{E}"), "File created")
        );
        assert_eq!(
            edit(Some("x"), json!({"block": "a\n"})),
            (format!("x\n{B}a\n{E}"), "Block inserted")
        );
        assert_eq!(
            edit(Some(""), json!({"block": "a\n", "insertbefore": "BOF"})),
            (format!("{B}a\n{E}"), "Block inserted")
        );
    }

    #[test]
    fn updates_in_place_and_is_idempotent() {
        let old = format!("x\n{B}old\n{E}y\n");
        let (new, msg) = edit(Some(&old), json!({"block": "new1\nnew2\n"}));
        assert_eq!(
            (new.as_str(), msg),
            (
                format!("x\n{B}new1\nnew2\n{E}y\n").as_str(),
                "Block inserted"
            )
        );
        assert_eq!(
            edit(Some(&new), json!({"block": "new1\nnew2\n"})),
            (new.clone(), "")
        );
        // Markers in the other order are still one block.
        let swapped = format!("x\n{E}old\n{B}y\n");
        assert_eq!(
            edit(Some(&swapped), json!({"block": "n"})).0,
            format!("x\n{B}n\n{E}y\n")
        );
    }

    #[test]
    fn removes_with_absent_or_empty_block() {
        let old = format!("x\n{B}old\n{E}y\n");
        assert_eq!(
            edit(Some(&old), json!({"state": "absent"})),
            ("x\ny\n".into(), "Block removed")
        );
        assert_eq!(
            edit(Some(&old), json!({"block": ""})),
            ("x\ny\n".into(), "Block removed")
        );
        assert_eq!(
            edit(Some("x\n"), json!({"state": "absent"})),
            ("x\n".into(), "")
        );
    }

    #[test]
    fn insertafter_and_insertbefore_use_the_last_match() {
        let old = "[a]\nk\n[a]\nz\n";
        assert_eq!(
            edit(Some(old), json!({"block": "b", "insertafter": "^\\[a\\]"})).0,
            format!("[a]\nk\n[a]\n{B}b\n{E}z\n")
        );
        assert_eq!(
            edit(Some(old), json!({"block": "b", "insertbefore": "^\\[a\\]"})).0,
            format!("[a]\nk\n{B}b\n{E}[a]\nz\n")
        );
        assert_eq!(
            edit(Some(old), json!({"block": "b", "insertafter": "^nomatch"})).0,
            format!("{old}{B}b\n{E}")
        );
        // A multi-line pattern is searched in the whole file (first match).
        assert_eq!(
            edit(Some(old), json!({"block": "b", "insertafter": "(?m)^k$"})).0,
            format!("[a]\nk\n{B}b\n{E}[a]\nz\n")
        );
        assert_eq!(
            edit(
                Some(old),
                json!({"block": "b", "insertbefore": "(?m)^k\\n\\[a\\]"})
            )
            .0,
            format!("[a]\n{B}b\n{E}k\n[a]\nz\n")
        );
    }

    #[test]
    fn blank_lines_around_the_block() {
        let args = json!({"block": "b", "insertafter": "^x", "prepend_newline": true, "append_newline": true});
        let (new, _) = edit(Some("x\ny\n"), args.clone());
        assert_eq!(new, format!("x\n\n{B}b\n{E}\ny\n"));
        assert_eq!(edit(Some(&new), args), (new.clone(), ""));
    }

    #[test]
    fn custom_markers_and_crlf_files() {
        let args = json!({"block": "b", "marker": "<!-- {mark} -->", "marker_begin": "start", "marker_end": "stop"});
        assert_eq!(edit(Some(""), args).0, "<!-- start -->\nb\n<!-- stop -->\n");
        let crlf = "x\r\n# BEGIN ANSIBLE MANAGED BLOCK\r\nb\r\n# END ANSIBLE MANAGED BLOCK\r\n";
        assert_eq!(
            edit(Some(crlf), json!({"block": "b"})).0,
            format!("x\r\n{B}b\n{E}")
        );
        // Last marker without newline.
        let open = format!("{B}b\n# END ANSIBLE MANAGED BLOCK");
        assert_eq!(
            edit(Some(&open), json!({"block": "b"})).0,
            format!("{B}b\n{E}")
        );
    }

    #[test]
    fn universal_lines() {
        assert_eq!(
            split_universal(b"a\r\nb\rc\nd"),
            vec![
                b"a\r\n".to_vec(),
                b"b\r".to_vec(),
                b"c\n".to_vec(),
                b"d".to_vec()
            ]
        );
        assert!(is_multiline("(?m)^x"));
        assert!(is_multiline("(?im)^x"));
        assert!(!is_multiline("^(?:m)"));
    }

    #[tokio::test]
    async fn converges_then_stays_unchanged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("hosts");
        std::fs::write(&p, "127.0.0.1 localhost\n").expect("write");
        let p = p.to_str().expect("utf8");
        let args =
            json!({"path": p, "block": "192.168.1.240 pi-master\n192.168.1.241 pi-worker-01\n"});
        let check = run::<BlockInFile>(args.clone(), true).await.expect("check");
        assert!(check.changed);
        assert_eq!(
            std::fs::read_to_string(p).expect("read"),
            "127.0.0.1 localhost\n"
        );
        let first = run::<BlockInFile>(args.clone(), false)
            .await
            .expect("first");
        assert_eq!(first.data["msg"], "Block inserted");
        assert_eq!(
            std::fs::read_to_string(p).expect("read"),
            format!(
                "127.0.0.1 localhost\n{B}192.168.1.240 pi-master\n192.168.1.241 pi-worker-01\n{E}"
            )
        );
        assert!(
            !run::<BlockInFile>(args, false)
                .await
                .expect("second")
                .changed
        );
        let removed = run::<BlockInFile>(json!({"path": p, "state": "absent"}), false)
            .await
            .expect("remove");
        assert_eq!(removed.data["msg"], "Block removed");
        assert_eq!(
            std::fs::read_to_string(p).expect("read"),
            "127.0.0.1 localhost\n"
        );
    }

    #[tokio::test]
    async fn missing_file_needs_create() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("new/f");
        let p = p.to_str().expect("utf8");
        match run::<BlockInFile>(json!({"path": p, "block": "x"}), false).await {
            Err(ModuleError::Failed { data, .. }) => assert_eq!(data["rc"], 257),
            other => panic!("{other:?}"),
        }
        let gone = run::<BlockInFile>(json!({"path": p, "state": "absent", "create": true}), false)
            .await
            .expect("absent");
        assert!(!gone.changed);
        let made = run::<BlockInFile>(json!({"path": p, "block": "x", "create": true}), false)
            .await
            .expect("create");
        assert_eq!(made.data["msg"], "File created");
        assert_eq!(
            std::fs::read_to_string(p).expect("read"),
            format!("{B}x\n{E}")
        );
    }
}
