//! `replace`: replace every match of a Python regular expression (in
//! multi-line mode) in a file, optionally only in the part between `after`
//! and `before`. The substitution is the pure function [`replace`].

use async_trait::async_trait;
use serde::Deserialize;

use super::args::{opt_bool_ish, opt_string_ish, FileAttrs};
use super::textedit::{
    apply_edit, decide_edit, edit_touches, fail_rc, py_regex, text_observed, text_reads, DiffKey,
    DiffReport, EditChange, PyRegex, PyTemplate, ReFlags, WriteOpts,
};
use super::{Decision, Module, ModuleCtx, ModuleError, Observed, Plan, Protocol, ReadCtx, Touched};
use crate::{Map, Value};

/// Arguments of `replace`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Replace {
    /// The file to edit.
    #[serde(
        default,
        alias = "dest",
        alias = "destfile",
        alias = "name",
        deserialize_with = "opt_string_ish"
    )]
    path: Option<String>,
    /// Python regular expression, compiled with `re.MULTILINE`.
    #[serde(default, deserialize_with = "opt_string_ish")]
    regexp: Option<String>,
    /// Replacement, with `\1` / `\g<name>` references (default: empty).
    #[serde(default, deserialize_with = "opt_string_ish")]
    replace: Option<String>,
    /// Only replace after the first match of this expression.
    #[serde(default, deserialize_with = "opt_string_ish")]
    after: Option<String>,
    /// Only replace before the (first following) match of this expression.
    #[serde(default, deserialize_with = "opt_string_ish")]
    before: Option<String>,
    /// Keep a timestamped copy of the old file.
    #[serde(default, deserialize_with = "opt_bool_ish")]
    backup: Option<bool>,
    /// Command checking the new content (`%s` is its temp file).
    #[serde(default, deserialize_with = "opt_string_ish")]
    validate: Option<String>,
    /// The file's encoding; only UTF-8 is supported.
    #[serde(default, deserialize_with = "opt_string_ish")]
    encoding: Option<String>,
    /// Mode, owner and group of the file.
    #[serde(flatten)]
    attrs: FileAttrs,
    /// Accepted for compatibility; writes are always atomic.
    #[serde(default, deserialize_with = "opt_bool_ish")]
    #[allow(dead_code)]
    unsafe_writes: Option<bool>,
}

/// A compiled `replace` task.
#[derive(Debug)]
pub struct Spec {
    /// What to replace.
    pub regexp: PyRegex,
    /// What to put instead.
    pub replace: PyTemplate,
    /// `after(?P<subsection>.*?)before` and its Python spelling, when limited.
    pub section: Option<(PyRegex, String)>,
}

/// What [`replace`] did.
#[derive(Debug, PartialEq)]
pub enum Replaced {
    /// The `after`/`before` section is not in the file (its pattern given).
    NoSection(String),
    /// The new content and the number of matches replaced.
    Done(Vec<u8>, usize),
}

/// Python's `re.subn`: replace every match, where (unlike the regex
/// crate's iterator) an empty match right after a non-empty one counts too.
fn substitute(re: &PyRegex, template: &PyTemplate, hay: &[u8]) -> (Vec<u8>, usize) {
    let mut out = Vec::with_capacity(hay.len());
    let mut copied = 0;
    let mut pos = 0;
    let mut count = 0;
    let mut empty_at: Option<usize> = None;
    while pos <= hay.len() {
        let Some(caps) = re.captures_at(hay, pos) else {
            break;
        };
        let Some(m) = caps.get(0) else {
            break;
        };
        if m.is_empty() && empty_at == Some(m.start()) {
            // Not the same empty match twice: move on by one character.
            pos = m.start() + 1;
            while hay.get(pos).is_some_and(|b| b & 0xC0 == 0x80) {
                pos += 1;
            }
            continue;
        }
        out.extend_from_slice(&hay[copied..m.start()]);
        out.extend_from_slice(&template.expand(&caps));
        copied = m.end();
        count += 1;
        empty_at = m.is_empty().then_some(m.end());
        pos = m.end();
    }
    out.extend_from_slice(&hay[copied..]);
    (out, count)
}

/// Replace every match of `spec.regexp` in `contents` (or in its section).
pub fn replace(contents: &[u8], spec: &Spec) -> Replaced {
    let (start, end) = match &spec.section {
        None => (0, contents.len()),
        Some((re, pattern)) => match re
            .captures(contents)
            .and_then(|c| re.group_index("subsection").and_then(|i| c.get(i)))
        {
            Some(m) => (m.start(), m.end()),
            None => return Replaced::NoSection(pattern.clone()),
        },
    };
    let (replaced, count) = substitute(&spec.regexp, &spec.replace, &contents[start..end]);
    let mut out = Vec::with_capacity(contents.len());
    out.extend_from_slice(&contents[..start]);
    out.extend_from_slice(&replaced);
    out.extend_from_slice(&contents[end..]);
    Replaced::Done(out, count)
}

impl Replace {
    fn spec(&self) -> Result<Spec, ModuleError> {
        let pattern = self
            .regexp
            .as_deref()
            .ok_or_else(|| ModuleError::Args("missing required arguments: regexp".into()))?;
        let regexp = py_regex(
            pattern,
            ReFlags {
                multi_line: true,
                dot_all: false,
            },
        )?;
        // Python compiles the template before substituting: a bad one fails
        // the task even where nothing matches, with this message.
        let replace = PyTemplate::compile(self.replace.as_deref().unwrap_or_default(), &regexp)
            .map_err(|e| {
                ModuleError::failed(format!("Unable to process replace due to error: {e}"))
            })?;
        let section = match (&self.after, &self.before) {
            (None, None) => None,
            (after, before) => {
                let (a, b) = (
                    after.as_deref().unwrap_or_default(),
                    before.as_deref().unwrap_or_default(),
                );
                // Python's spelling, for the message when it does not match.
                let pattern = match (after, before) {
                    (Some(_), Some(_)) => format!("{a}(?P<subsection>.*?){b}"),
                    _ => format!("{a}(?P<subsection>.*){b}"),
                };
                let re = py_regex(
                    &pattern,
                    ReFlags {
                        multi_line: false,
                        dot_all: true,
                    },
                )?;
                Some((re, pattern))
            }
        };
        Ok(Spec {
            regexp,
            replace,
            section,
        })
    }
}

#[async_trait]
impl Module for Replace {
    const NAME: &'static str = "replace";
    const ARGS: &'static [&'static str] = &[
        "path",
        "dest",
        "destfile",
        "name",
        "regexp",
        "replace",
        "after",
        "before",
        "backup",
        "validate",
        "encoding",
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
        if let Some(enc) = &self.encoding {
            if !matches!(
                enc.to_ascii_lowercase().as_str(),
                "utf-8" | "utf8" | "utf_8"
            ) {
                return Err(ModuleError::Args(format!(
                    "encoding {enc} is not supported, only utf-8"
                )));
            }
        }
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
        let Some(old) = file.content() else {
            return Err(fail_rc(format!("Path {path} does not exist !"), 257));
        };
        let mut data = Map::new();
        match replace(old, &spec) {
            Replaced::NoSection(pattern) => {
                data.insert(
                    "msg".into(),
                    Value::from(format!(
                        "Pattern for before/after params did not match the given file: {pattern}"
                    )),
                );
                Ok(Decision::Plan(Plan::Unchanged(data)))
            }
            Replaced::Done(new, count) => {
                let content = (count > 0 && new != old).then_some(new);
                decide_edit(
                    &file,
                    content,
                    &format!("{count} replacements made"),
                    &opts,
                    DiffReport {
                        path: path.to_string(),
                        key: DiffKey::Changed,
                        wanted: ctx.diff,
                        check: ctx.check,
                    },
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

    fn spec(args: Value) -> Spec {
        serde_json::from_value::<Replace>(args)
            .expect("args")
            .spec()
            .expect("spec")
    }

    fn sub(old: &str, args: Value) -> (String, usize) {
        match replace(old.as_bytes(), &spec(args)) {
            Replaced::Done(new, n) => (String::from_utf8(new).expect("utf8"), n),
            other => panic!("{other:?}"),
        }
    }

    const SSHD: &str = "Port 22\n#PermitRootLogin yes\n  PasswordAuthentication yes\n";

    #[test]
    fn replaces_every_match_in_multiline_mode() {
        let (new, n) = sub(
            SSHD,
            json!({"regexp": "^(\\s*)#?(PermitRootLogin|PasswordAuthentication)\\s.*$", "replace": "\\1\\2 no"}),
        );
        assert_eq!(
            new,
            "Port 22\nPermitRootLogin no\n  PasswordAuthentication no\n"
        );
        assert_eq!(n, 2);
        let (new, n) = sub("a1\nb1\n", json!({"regexp": "1$", "replace": "2"}));
        assert_eq!((new.as_str(), n), ("a2\nb2\n", 2));
        let (new, n) = sub("keep\n", json!({"regexp": "^x"}));
        assert_eq!((new.as_str(), n), ("keep\n", 0));
        // Default replacement is empty: matches are deleted.
        let (new, _) = sub("a # c\n", json!({"regexp": "\\s*#.*$"}));
        assert_eq!(new, "a\n");
        // Named groups and \g<0>.
        let (new, _) = sub(
            "k=v\n",
            json!({"regexp": "(?P<k>\\w+)=(?P<v>\\w+)", "replace": "\\g<v>=\\g<k> (\\g<0>)"}),
        );
        assert_eq!(new, "v=k (k=v)\n");
    }

    #[test]
    fn line_anchors_and_empty_matches_like_python() {
        // Expected values are Python's re.sub results.
        assert_eq!(
            sub("a\nb\n", json!({"regexp": "^", "replace": "#"})).0,
            "#a\n#b\n#"
        );
        assert_eq!(
            sub("a\nb\n", json!({"regexp": "$", "replace": "#"})).0,
            "a#\nb#\n#"
        );
        assert_eq!(
            sub("a\n\n  \nb\n", json!({"regexp": "^\\s*$\\n?"})).0,
            "a\nb\n"
        );
        assert_eq!(
            sub("abxd", json!({"regexp": "x*", "replace": "-"})).0,
            "-a-b--d-"
        );
        assert_eq!(
            sub("a  \nb", json!({"regexp": "\\s*$", "replace": "X"})),
            ("aXX\nbX".to_string(), 3)
        );
        assert_eq!(sub("éa", json!({"regexp": "", "replace": "-"})).0, "-é-a-");
    }

    #[test]
    fn after_and_before_limit_the_section() {
        let text = "x=1\n[a]\nx=1\n[b]\nx=1\n";
        let (new, n) = sub(
            text,
            json!({"regexp": "^x=1", "replace": "x=2", "after": "\\[a\\]"}),
        );
        assert_eq!((new.as_str(), n), ("x=1\n[a]\nx=2\n[b]\nx=2\n", 2));
        let (new, n) = sub(
            text,
            json!({"regexp": "^x=1", "replace": "x=2", "after": "\\[a\\]", "before": "\\[b\\]"}),
        );
        assert_eq!((new.as_str(), n), ("x=1\n[a]\nx=2\n[b]\nx=1\n", 1));
        let (new, _) = sub(
            text,
            json!({"regexp": "^x=1", "replace": "x=2", "before": "\\[a\\]"}),
        );
        assert_eq!(new, "x=2\n[a]\nx=1\n[b]\nx=1\n");
        assert_eq!(
            replace(
                text.as_bytes(),
                &spec(json!({"regexp": "x", "after": "\\[zz\\]"}))
            ),
            Replaced::NoSection("\\[zz\\](?P<subsection>.*)".into())
        );
    }

    #[test]
    fn bad_patterns_are_argument_errors() {
        let r: Replace =
            serde_json::from_value(json!({"regexp": "(a", "replace": ""})).expect("args");
        assert!(matches!(r.spec(), Err(ModuleError::Args(_))));
    }

    #[tokio::test]
    async fn bad_template_fails_as_python_re_error_even_without_a_match() {
        for (replace, want) in [
            ("\\D", "bad escape \\D at position 0"),
            ("\\2", "invalid group reference 2"),
        ] {
            let args = json!({"path": "/dev/null", "after": "^", "before": "$",
                "regexp": "(\\.)", "replace": replace});
            match run::<Replace>(args, false).await {
                Err(ModuleError::Failed { msg, .. }) => assert_eq!(
                    msg,
                    format!("Unable to process replace due to error: {want}")
                ),
                other => panic!("{other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn result_diff_only_in_diff_mode_and_when_changed() {
        use crate::modules::testutil::Harness;
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("f");
        std::fs::write(&p, "a\n").expect("write");
        let p = p.to_str().expect("utf8");
        let args = json!({"path": p, "regexp": "a", "replace": "b"});
        let plain = Harness::new()
            .run::<Replace>(args.clone(), true, false)
            .await
            .expect("no diff mode");
        assert!(plain.changed && plain.data.get("diff").is_none());
        let shown = run::<Replace>(args.clone(), true).await.expect("diff mode");
        assert_eq!(
            shown.data["diff"],
            json!({"before": "a\n", "after": "b\n", "before_header": p, "after_header": p})
        );
        let args = json!({"path": p, "regexp": "z", "replace": "b"});
        let same = run::<Replace>(args, true).await.expect("unchanged");
        assert!(!same.changed && same.data.get("diff").is_none());
    }

    #[tokio::test]
    async fn converges_then_stays_unchanged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("sshd_config");
        std::fs::write(&p, SSHD).expect("write");
        let p = p.to_str().expect("utf8");
        let args = json!({"path": p, "regexp": "^#?PermitRootLogin.*$", "replace": "PermitRootLogin no", "backup": "yes"});
        let check = run::<Replace>(args.clone(), true).await.expect("check");
        assert!(check.changed);
        assert_eq!(check.data["msg"], "1 replacements made");
        assert_eq!(std::fs::read_to_string(p).expect("read"), SSHD);
        let diff = check.diff.expect("diff");
        assert_eq!(diff.before_header, p);
        assert!(diff.after.contains("\nPermitRootLogin no\n"));
        let first = run::<Replace>(args.clone(), false).await.expect("first");
        assert!(first.changed);
        assert!(first.data["backup_file"].as_str().is_some());
        assert!(std::fs::read_to_string(p)
            .expect("read")
            .contains("\nPermitRootLogin no\n"));
        // The pattern still matches, but the result is the same: unchanged.
        let second = run::<Replace>(args, false).await.expect("second");
        assert!(!second.changed);
    }

    #[tokio::test]
    async fn missing_file_fails() {
        match run::<Replace>(json!({"path": "/nonexistent/drover", "regexp": "x"}), false).await {
            Err(ModuleError::Failed { msg, data }) => {
                assert_eq!(msg, "Path /nonexistent/drover does not exist !");
                assert_eq!(data["rc"], 257);
            }
            other => panic!("{other:?}"),
        }
    }
}
