//! `ini_file` (community.general.ini_file): manage one option (or a whole
//! section) of an INI file. The edit is the pure function [`edit`] over
//! the file's text; reading and writing are the text-edit helpers that
//! lineinfile uses (atomic write, attributes, backup, diff).

use async_trait::async_trait;
use serde::Deserialize;

use super::args::{bool_ish, opt_bool_ish, opt_string_ish, opt_strings_ish, yes, FileAttrs};
use super::textedit::{
    apply_edit, decide_edit, edit_touches, fail_rc, text_observed, text_reads, EditChange,
    WriteOpts,
};
use super::{Decision, Module, ModuleCtx, ModuleError, Observed, Plan, Protocol, ReadCtx, Touched};
use crate::{Map, Value};

/// Whether the option (or section) should be there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
enum State {
    #[default]
    Present,
    Absent,
}

/// Arguments of `ini_file`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IniFile {
    /// The INI file.
    #[serde(alias = "dest")]
    path: String,
    /// Section name; omitted or null: the options before the first section.
    #[serde(default, deserialize_with = "opt_string_ish")]
    section: Option<String>,
    /// The option; without it the whole section is added or removed.
    #[serde(default, alias = "key", deserialize_with = "opt_string_ish")]
    option: Option<String>,
    /// The option's value.
    #[serde(default, deserialize_with = "opt_string_ish")]
    value: Option<String>,
    /// Several values of one option (one line each).
    #[serde(default, deserialize_with = "opt_strings_ish")]
    values: Option<Vec<String>>,
    /// `present` (default) or `absent`.
    #[serde(default)]
    state: State,
    /// Remove the option's other occurrences in the section (default yes).
    #[serde(default = "yes", deserialize_with = "bool_ish")]
    exclusive: bool,
    /// `option=value` instead of `option = value`.
    #[serde(default, deserialize_with = "bool_ish")]
    no_extra_spaces: bool,
    /// An option without a value is written as the bare name.
    #[serde(default, deserialize_with = "bool_ish")]
    allow_no_value: bool,
    /// Reuse a commented-out `;option = ...` line (default yes).
    #[serde(default = "yes", deserialize_with = "bool_ish")]
    modify_inactive_option: bool,
    /// Create the file when missing (default yes).
    #[serde(default = "yes", deserialize_with = "bool_ish")]
    create: bool,
    /// Keep a timestamped copy of the old file.
    #[serde(default, deserialize_with = "bool_ish")]
    backup: bool,
    /// Spaces around `=` do not make a value differ.
    #[serde(default, rename = "ignore_spaces", deserialize_with = "bool_ish")]
    _ignore_spaces: bool,
    /// Writes follow links (drover always writes through them).
    #[serde(default, rename = "follow", deserialize_with = "opt_bool_ish")]
    _follow: Option<bool>,
    /// Mode, owner and group of the file.
    #[serde(flatten)]
    attrs: FileAttrs,
}

/// What [`edit`] does.
#[derive(Debug, Clone, Default)]
struct Spec<'a> {
    section: Option<&'a str>,
    option: Option<&'a str>,
    /// The values wanted (`None`: a bare option).
    values: Vec<Option<&'a str>>,
    absent: bool,
    exclusive: bool,
    no_extra_spaces: bool,
    modify_inactive: bool,
}

/// `option = value` on `line`: `(commented, value)`; value `None` for a
/// bare option.
fn match_option(line: &str, option: &str) -> Option<(bool, Option<String>)> {
    let t = line.trim_start_matches([' ', '\t']);
    let (commented, t) = match t.strip_prefix(['#', ';']) {
        Some(rest) => (true, rest.trim_start_matches([' ', '\t'])),
        None => (false, t),
    };
    let rest = t.strip_prefix(option)?.trim_start_matches([' ', '\t']);
    if rest.is_empty() {
        return Some((commented, None));
    }
    let v = rest.strip_prefix('=')?;
    Some((commented, Some(v.trim_matches([' ', '\t']).to_string())))
}

/// Is `line` a section header; its name.
fn header(line: &str) -> Option<&str> {
    let t = line.trim();
    t.strip_prefix('[')?.strip_suffix(']')
}

/// The lines of `section` as a half-open range of indices, the header's
/// index first (`None` for the global section).
fn section_range(lines: &[String], section: Option<&str>) -> Option<(Option<usize>, usize, usize)> {
    let first_header = lines.iter().position(|l| header(l).is_some());
    match section {
        None => Some((None, 0, first_header.unwrap_or(lines.len()))),
        Some(s) => {
            let h = lines.iter().position(|l| header(l) == Some(s))?;
            let end = lines[h + 1..]
                .iter()
                .position(|l| header(l).is_some())
                .map_or(lines.len(), |i| h + 1 + i);
            Some((Some(h), h + 1, end))
        }
    }
}

fn blank_or_comment(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#') || t.starts_with(';')
}

/// The file edited as `spec` says, and Ansible's message (`OK` when
/// nothing changes).
fn edit(content: &str, spec: &Spec<'_>) -> (String, &'static str) {
    let mut lines: Vec<String> = content.lines().map(str::to_string).collect();
    let format = |v: Option<&str>| {
        let o = spec.option.unwrap_or_default();
        match v {
            None => o.to_string(),
            Some(v) if spec.no_extra_spaces => format!("{o}={v}"),
            Some(v) => format!("{o} = {v}"),
        }
    };
    let mut msg = "OK";
    let range = section_range(&lines, spec.section);
    match (spec.absent, spec.option, range) {
        (false, _, None) => {
            // A new section at the end (a named one: the global one always exists).
            lines.push(format!("[{}]", spec.section.unwrap_or_default()));
            msg = "section added";
            if spec.option.is_some() {
                for v in &spec.values {
                    lines.push(format(*v));
                }
                msg = "section and option added";
            }
        }
        (true, _, None) | (false, None, Some(_)) => {}
        (true, None, Some((h, start, end))) => {
            if let Some(h) = h {
                lines.drain(h..end);
                msg = "section removed";
            } else if start < end {
                lines.drain(start..end);
                msg = "section removed";
            }
        }
        (true, Some(o), Some((_, start, end))) => {
            let before = lines.len();
            let mut i = start;
            let mut end = end;
            while i < end {
                let hit = match match_option(&lines[i], o) {
                    Some((false, v)) => {
                        spec.values.is_empty()
                            || spec.values.iter().any(|w| w.map(str::to_string) == v)
                    }
                    _ => false,
                };
                if hit {
                    lines.remove(i);
                    end -= 1;
                } else {
                    i += 1;
                }
            }
            if lines.len() != before {
                msg = "option changed";
            }
        }
        (false, Some(o), Some((_, start, end))) => {
            let mut end = end;
            let active: Vec<(usize, Option<String>)> = (start..end)
                .filter_map(|i| match match_option(&lines[i], o) {
                    Some((false, v)) => Some((i, v)),
                    _ => None,
                })
                .collect();
            let mut used: Vec<usize> = Vec::new();
            let mut missing = Vec::new();
            for v in &spec.values {
                match active
                    .iter()
                    .find(|(i, have)| !used.contains(i) && have.as_deref() == *v)
                {
                    Some((i, _)) => used.push(*i),
                    None => missing.push(*v),
                }
            }
            for v in missing {
                let free = active.iter().map(|(i, _)| *i).find(|i| !used.contains(i));
                let inactive = || {
                    (start..end).find(|i| {
                        !used.contains(i) && matches!(match_option(&lines[*i], o), Some((true, _)))
                    })
                };
                let at = free.or_else(|| spec.modify_inactive.then(inactive).flatten());
                match at {
                    Some(i) => {
                        lines[i] = format(v);
                        used.push(i);
                        msg = "option changed";
                    }
                    None => {
                        // After the section's last line that is not blank or a comment.
                        let mut at = start;
                        for i in (start..end).rev() {
                            if !blank_or_comment(&lines[i]) {
                                at = i + 1;
                                break;
                            }
                        }
                        lines.insert(at, format(v));
                        for u in used.iter_mut().filter(|u| **u >= at) {
                            *u += 1;
                        }
                        used.push(at);
                        end += 1;
                        if msg == "OK" {
                            msg = "option added";
                        }
                    }
                }
            }
            if spec.exclusive {
                let extra: Vec<usize> = (start..end)
                    .filter(|i| {
                        !used.contains(i) && matches!(match_option(&lines[*i], o), Some((false, _)))
                    })
                    .collect();
                for i in extra.into_iter().rev() {
                    lines.remove(i);
                    msg = "option changed";
                }
            }
        }
    }
    let mut out = lines.join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    if msg == "OK" {
        return (content.to_string(), msg);
    }
    (out, msg)
}

impl IniFile {
    fn spec(&self) -> Result<Spec<'_>, ModuleError> {
        let mut values: Vec<Option<&str>> = match (&self.value, &self.values) {
            (Some(_), Some(_)) => {
                return Err(ModuleError::Args(
                    "parameters are mutually exclusive: value|values".into(),
                ))
            }
            (Some(v), None) => vec![Some(v.as_str())],
            (None, Some(vs)) => vs.iter().map(|v| Some(v.as_str())).collect(),
            (None, None) => Vec::new(),
        };
        if values.is_empty() && self.state == State::Present && self.option.is_some() {
            if !self.allow_no_value {
                // Ansible writes `option = ` for a missing value.
                values.push(Some(""));
            } else {
                values.push(None);
            }
        }
        Ok(Spec {
            section: self.section.as_deref().filter(|s| !s.is_empty()),
            option: self.option.as_deref(),
            values,
            absent: self.state == State::Absent,
            exclusive: self.exclusive,
            no_extra_spaces: self.no_extra_spaces,
            modify_inactive: self.modify_inactive_option,
        })
    }
}

#[async_trait]
impl Module for IniFile {
    const NAME: &'static str = "ini_file";
    const ARGS: &'static [&'static str] = &[
        "path",
        "dest",
        "section",
        "option",
        "key",
        "value",
        "values",
        "state",
        "exclusive",
        "no_extra_spaces",
        "allow_no_value",
        "modify_inactive_option",
        "create",
        "backup",
        "ignore_spaces",
        "follow",
        "mode",
        "owner",
        "group",
    ];
    type Change = EditChange;

    fn reads(&self, ctx: &ReadCtx<'_>) -> Result<Protocol, ModuleError> {
        text_reads(self.decide(&Observed::default(), ctx)?)
    }

    fn decide(
        &self,
        observed: &Observed,
        _ctx: &ReadCtx<'_>,
    ) -> Result<Decision<EditChange>, ModuleError> {
        let spec = self.spec()?;
        let opts = WriteOpts::new(self.attrs.attrs(), self.backup, "backup_file", None)?;
        let file = match text_observed(&self.path, observed)? {
            Ok(file) => file,
            Err(more) => return Ok(Decision::Read(more)),
        };
        if file.is_dir() {
            return Err(fail_rc(
                format!("Destination {} is a directory", self.path),
                1,
            ));
        }
        let mut data = Map::new();
        data.insert("path".into(), Value::from(self.path.clone()));
        data.insert("section".into(), Value::from(self.section.clone()));
        data.insert("option".into(), Value::from(self.option.clone()));
        let old = match file.content() {
            Some(c) => String::from_utf8_lossy(c).into_owned(),
            None if spec.absent => {
                data.insert("msg".into(), Value::from("OK"));
                return Ok(Decision::Plan(Plan::Unchanged(data)));
            }
            None if !self.create => {
                return Err(fail_rc(
                    format!("Destination {} does not exist!", self.path),
                    257,
                ))
            }
            None => String::new(),
        };
        let (new, msg) = edit(&old, &spec);
        let content = (!file.exists() || new != old).then(|| new.into_bytes());
        decide_edit(&file, content, msg, &opts, self.path.clone(), data)
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
    use crate::modules::testutil::{assert_args_accepted, Harness};

    #[test]
    fn args() {
        assert_args_accepted::<IniFile>();
    }

    fn run_edit(content: &str, args: Value) -> (String, &'static str) {
        let m: IniFile = serde_json::from_value(args).expect("args");
        let spec = m.spec().expect("spec");
        edit(content, &spec)
    }

    #[test]
    fn edits_like_community_general() {
        let f = "; top\n[a]\nx = 1\n\n[b]\ny=2\n";
        assert_eq!(
            run_edit(
                f,
                json!({"path": "p", "section": "a", "option": "x", "value": "1"})
            ),
            (f.to_string(), "OK")
        );
        assert_eq!(
            run_edit(
                f,
                json!({"path": "p", "section": "a", "option": "x", "value": "3"})
            )
            .0,
            "; top\n[a]\nx = 3\n\n[b]\ny=2\n"
        );
        assert_eq!(
            run_edit(
                f,
                json!({"path": "p", "section": "a", "option": "z", "value": "9", "no_extra_spaces": true})
            ),
            (
                "; top\n[a]\nx = 1\nz=9\n\n[b]\ny=2\n".into(),
                "option added"
            )
        );
        assert_eq!(
            run_edit(
                f,
                json!({"path": "p", "section": "c", "option": "k", "value": "v"})
            ),
            (
                "; top\n[a]\nx = 1\n\n[b]\ny=2\n[c]\nk = v\n".into(),
                "section and option added"
            )
        );
        assert_eq!(
            run_edit(f, json!({"path": "p", "section": "a", "state": "absent"})),
            ("; top\n[b]\ny=2\n".into(), "section removed")
        );
        assert_eq!(
            run_edit(
                f,
                json!({"path": "p", "section": "b", "option": "y", "state": "absent"})
            ),
            ("; top\n[a]\nx = 1\n\n[b]\n".into(), "option changed")
        );
        assert_eq!(
            run_edit(
                "[s]\n;opt = old\n",
                json!({"path": "p", "section": "s", "option": "opt", "value": "new"})
            )
            .0,
            "[s]\nopt = new\n"
        );
        assert_eq!(
            run_edit(
                "[s]\nk = 1\nk = 2\n",
                json!({"path": "p", "section": "s", "option": "k", "value": "2"})
            )
            .0,
            "[s]\nk = 2\n",
            "exclusive drops the other occurrences"
        );
        assert_eq!(
            run_edit("[s]\nk = 1\n", json!({"path": "p", "section": "s", "option": "k", "value": "2", "exclusive": false})).0,
            "[s]\nk = 2\n"
        );
        assert_eq!(
            run_edit(
                "[s]\n",
                json!({"path": "p", "section": "s", "option": "flag", "allow_no_value": true})
            )
            .0,
            "[s]\nflag\n"
        );
        assert_eq!(
            run_edit(
                "a = 1\n[s]\n",
                json!({"path": "p", "option": "b", "value": "2"})
            )
            .0,
            "a = 1\nb = 2\n[s]\n",
            "no section: the options before the first section"
        );
        assert_eq!(
            run_edit(
                "",
                json!({"path": "p", "section": "s", "option": "k", "values": ["1", "2"]})
            )
            .0,
            "[s]\nk = 1\nk = 2\n"
        );
    }

    #[tokio::test]
    async fn creates_then_converges_with_a_diff() {
        let h = Harness::new();
        let p = h.path("conf.ini");
        let args = json!({"path": p, "section": "drinks", "option": "fav", "value": "lemonade", "mode": "0600"});
        let out = h
            .run::<IniFile>(args.clone(), true, true)
            .await
            .expect("check");
        assert!(out.changed);
        assert!(!std::path::Path::new(&p).exists());
        assert_eq!(out.diff.expect("diff").after, "[drinks]\nfav = lemonade\n");
        let out = h
            .run::<IniFile>(args.clone(), false, false)
            .await
            .expect("run");
        assert!(out.changed);
        assert_eq!(out.data["msg"], json!("section and option added"));
        assert_eq!(
            std::fs::read_to_string(&p).expect("read"),
            "[drinks]\nfav = lemonade\n"
        );
        let out = h.run::<IniFile>(args, false, false).await.expect("again");
        assert!(!out.changed);
        let err = h
            .run::<IniFile>(
                json!({"path": h.path("none.ini"), "section": "s", "create": false}),
                false,
                false,
            )
            .await
            .expect_err("missing");
        assert!(err.to_string().contains("does not exist"), "{err}");
    }
}
