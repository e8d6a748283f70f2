//! `file`: make a path a file (attributes only), a directory, a symlink, a
//! hard link, touched, or absent; set mode and owner, recursively for
//! directories.
//!
//! One exec reads the path, what it resolves to, the link source and, for
//! `recurse`, counts with `find` the entries whose owner or mode differ;
//! one exec applies the change.

use async_trait::async_trait;
use serde::Deserialize;

use super::args::{bool_ish, opt_bool_ish, opt_string_ish, yes, FileAttrs};
use super::fs::{
    chmod_bits, ensure_attrs, mkdirs_script, nonempty_dir_test, operand, parent_dir, resolved_word,
    run_checked, Attrs, FileKind, FileState, Mode, Read, ReadBatch, ReadOutput,
};
use super::{
    Decision, Diff, Module, ModuleCtx, ModuleError, Observed, Plan, Protocol, ReadCtx, ReadSet,
    Touched,
};
use crate::transport::shell_quote;
use crate::{Map, Value};

/// What the path should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// An existing file (only its attributes are managed).
    File,
    /// A directory (created with its parents).
    Directory,
    /// Nothing (removed, recursively for directories).
    Absent,
    /// Created empty if missing; times updated.
    Touch,
    /// A symbolic link to `src`.
    Link,
    /// A hard link to `src`.
    Hard,
}

/// Arguments of `file`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    /// The path to manage.
    #[serde(
        alias = "dest",
        alias = "name",
        deserialize_with = "super::args::path_ish"
    )]
    path: String,
    /// What it should be; default: what it is, else `file` (`directory`
    /// with `recurse`).
    #[serde(default)]
    state: Option<State>,
    /// Target of a link (`state: link` or `hard`).
    #[serde(default)]
    src: Option<String>,
    /// Mode (octal or symbolic), owner and group.
    #[serde(flatten)]
    attrs: FileAttrs,
    /// Directories: apply owner, group and mode to everything below.
    #[serde(default, deserialize_with = "bool_ish")]
    recurse: bool,
    /// Links: replace a file or an empty directory, or link to a missing src.
    #[serde(default, deserialize_with = "bool_ish")]
    force: bool,
    /// Operate on what a symlink points to.
    #[serde(default = "yes", deserialize_with = "bool_ish")]
    follow: bool,
    /// `now`, `preserve`, or a time in `modification_time_format`.
    #[serde(default, deserialize_with = "opt_string_ish")]
    modification_time: Option<String>,
    /// strftime format of `modification_time` (only the default is supported).
    #[serde(default, deserialize_with = "opt_string_ish")]
    modification_time_format: Option<String>,
    /// `now`, `preserve`, or a time in `access_time_format`.
    #[serde(default, deserialize_with = "opt_string_ish")]
    access_time: Option<String>,
    /// strftime format of `access_time` (only the default is supported).
    #[serde(default, deserialize_with = "opt_string_ish")]
    access_time_format: Option<String>,
    /// Accepted for compatibility.
    #[serde(default, deserialize_with = "bool_ish")]
    #[allow(dead_code)]
    unsafe_writes: bool,
    /// Ansible's internal peek (its file action asks whether a path looks
    /// binary before a diff): report `appears_binary`, change nothing.
    #[serde(default, rename = "_diff_peek", deserialize_with = "opt_bool_ish")]
    diff_peek: Option<bool>,
    /// File attributes as `chattr` sets them: `A` (exactly these), `+A`
    /// (add) or `-A` (remove); empty leaves them alone.
    #[serde(default, alias = "attr")]
    attributes: Option<String>,
}

/// The shell script that makes the change.
pub struct FileChange {
    script: String,
    /// Paths the script writes.
    touched: Vec<String>,
    /// It writes only those entries, not what is inside them (see
    /// [`Touched::Entries`]).
    entries_only: bool,
}

/// A timestamp argument.
#[derive(Debug, Clone, PartialEq)]
enum Stamp {
    Preserve,
    Now,
    /// A local time for `date -d` (`2024-01-02 15:30:45`).
    At(String),
}

const DEFAULT_TIME_FORMAT: &str = "%Y%m%d%H%M.%S";

fn stamp(value: Option<&str>, format: Option<&str>, default: Stamp) -> Result<Stamp, ModuleError> {
    let Some(v) = value else { return Ok(default) };
    match v {
        "preserve" => return Ok(Stamp::Preserve),
        "now" => return Ok(Stamp::Now),
        _ => {}
    }
    if format.is_some_and(|f| f != DEFAULT_TIME_FORMAT) {
        return Err(ModuleError::Args(format!(
            "only the time format {DEFAULT_TIME_FORMAT} is supported"
        )));
    }
    let bad = || ModuleError::Args(format!("time {v:?} does not match {DEFAULT_TIME_FORMAT}"));
    let (main, secs) = v.split_once('.').ok_or_else(bad)?;
    // Python's strptime reads one or two digits for %S (`...1200.0`).
    if main.len() != 12
        || !(1..=2).contains(&secs.len())
        || !format!("{main}{secs}").bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let secs = format!("{secs:0>2}");
    Ok(Stamp::At(format!(
        "{}-{}-{} {}:{}:{secs}",
        &main[0..4],
        &main[4..6],
        &main[6..8],
        &main[8..10],
        &main[10..12]
    )))
}

/// Ansible's name for what is at a path.
fn prev_state(st: &FileState) -> &'static str {
    match st.kind {
        FileKind::Missing => "absent",
        FileKind::Link => "link",
        FileKind::Directory => "directory",
        _ if st.nlink > 1 => "hard",
        _ => "file",
    }
}

/// Diff lines and script for one path.
#[derive(Default)]
struct Work {
    script: String,
    before: Vec<(String, String)>,
    after: Vec<(String, String)>,
}

impl Work {
    fn note(&mut self, key: &str, before: impl Into<String>, after: impl Into<String>) {
        self.before.push((key.into(), before.into()));
        self.after.push((key.into(), after.into()));
    }

    fn run(&mut self, line: impl AsRef<str>) {
        self.script.push_str(line.as_ref());
        self.script.push('\n');
    }

    fn is_empty(&self) -> bool {
        self.script.is_empty()
    }
}

/// Everything read in the planning exec.
struct Facts {
    /// The path itself (not followed).
    path: FileState,
    /// What the path resolves to (`readlink -f`), followed.
    real: FileState,
    /// Wanted times as seconds since the epoch (`At` stamps).
    mtime: Option<f64>,
    atime: Option<f64>,
    /// Directory has entries (for converting it to a link).
    nonempty: bool,
    /// Entries below a directory whose attributes differ (recurse).
    recurse_mismatches: u64,
    /// Links below a directory that `recurse` follows.
    recurse_links: bool,
    /// Link source as resolved from the link's directory, followed.
    link_src: Option<FileState>,
    /// The path's attribute flags (`lsattr`), when `attributes` is given
    /// and the filesystem keeps them.
    attr_flags: Option<String>,
    /// Directories and other entries under a directory to remove (diff).
    path_content: (Vec<String>, Vec<String>),
}

/// Where each state is in the module's read.
struct ReadsAt {
    path: usize,
    real: usize,
    /// The link source beside the link, inside the path, and as given.
    src: Option<(usize, usize, usize)>,
}

#[async_trait]
impl Module for File {
    const NAME: &'static str = "file";
    const ARGS: &'static [&'static str] = &[
        "_diff_peek",
        "path",
        "dest",
        "name",
        "state",
        "src",
        "mode",
        "owner",
        "group",
        "recurse",
        "force",
        "follow",
        "modification_time",
        "modification_time_format",
        "access_time",
        "access_time_format",
        "unsafe_writes",
        "attributes",
        "attr",
    ];
    type Change = FileChange;

    fn host_paths(_args: &Map) -> &'static [&'static str] {
        &["path", "dest", "name", "src"]
    }

    fn reads(&self, ctx: &ReadCtx<'_>) -> Result<Protocol, ModuleError> {
        if self.diff_peek.is_some() {
            return Ok(Protocol::Imperative);
        }
        // Fail on bad times before reading anything.
        stamp(
            self.modification_time.as_deref(),
            self.modification_time_format.as_deref(),
            Stamp::Now,
        )?;
        stamp(
            self.access_time.as_deref(),
            self.access_time_format.as_deref(),
            Stamp::Now,
        )?;
        let recurse = recurse_classes(self.attrs().mode.as_ref())?;
        let (batch, _) = self.read_batch(recurse.as_deref(), ctx)?;
        Ok(Protocol::Declared(ReadSet {
            reads: vec![batch.declare()],
        }))
    }

    fn decide(
        &self,
        observed: &Observed,
        ctx: &ReadCtx<'_>,
    ) -> Result<Decision<FileChange>, ModuleError> {
        let decided = self.decide_stage(observed, 0, ctx);
        let (warnings, refusal) = self.lookup_warnings(observed, ctx)?;
        let decided = match (decided, refusal) {
            (Ok(Decision::Plan(_)), Some(msg)) => {
                let mut data = Map::new();
                data.insert("path".into(), Value::from(self.path.clone()));
                Err(ModuleError::Failed { msg, data })
            }
            (decided, _) => decided,
        };
        super::with_warnings(decided, warnings)
    }

    fn touches(&self, change: &FileChange) -> Touched {
        if change.entries_only {
            Touched::Entries(change.touched.clone())
        } else {
            Touched::Paths(change.touched.clone())
        }
    }

    /// `_diff_peek`: a NUL byte in the first 8 KiB makes a file look binary,
    /// as Ansible judges it.
    async fn run_imperative(&self, ctx: &ModuleCtx<'_>) -> Result<Plan<FileChange>, ModuleError> {
        let p = shell_quote(&self.path);
        let script = format!(
            "if [ -f {p} ] && [ -r {p} ]; then head -c 8192 {p} | tr -d -c '\\000' | wc -c; else echo 0; fi"
        );
        let out = ctx.remote.exec(&script, &[]).await?;
        let nuls: u64 = out.stdout_str().trim().parse().unwrap_or(0);
        let mut data = Map::new();
        data.insert("path".into(), Value::from(self.path.clone()));
        data.insert("appears_binary".into(), Value::Bool(nuls > 0));
        Ok(Plan::Unchanged(data))
    }

    async fn apply(&self, ctx: &ModuleCtx<'_>, change: FileChange) -> Result<Map, ModuleError> {
        run_checked(ctx.remote, &change.script, &format!("file {}", self.path)).await?;
        Ok(Map::new())
    }
}

fn data_path(data: &Map, fallback: &str) -> String {
    data.get("path")
        .and_then(Value::as_str)
        .unwrap_or(fallback)
        .to_string()
}

impl File {
    fn attrs(&self) -> Attrs {
        self.attrs.attrs()
    }

    /// Decide from the read of stage `stage`: 0 for the path, 1 for the
    /// entry a hard link goes to inside a directory.
    fn decide_stage(
        &self,
        observed: &Observed,
        stage: usize,
        ctx: &ReadCtx<'_>,
    ) -> Result<Decision<FileChange>, ModuleError> {
        let mtime_arg = self.modification_time.as_deref();
        let atime_arg = self.access_time.as_deref();
        let recurse = recurse_classes(self.attrs().mode.as_ref())?;
        let (batch, at) = self.read_batch(recurse.as_deref(), ctx)?;
        let facts = self.facts(&batch.parse_exec(observed.output(stage)?)?, at)?;
        // Ansible puts a hard link to `src` inside a directory given as the
        // path, under src's name.
        if let (0, Some(State::Hard), Some(src), FileKind::Directory) =
            (stage, self.state, &self.src, facts.real.kind)
        {
            let name = src.trim_end_matches('/').rsplit('/').next().unwrap_or(src);
            let inner = File {
                path: format!("{}/{name}", self.path.trim_end_matches('/')),
                ..self.clone()
            };
            if observed.len() < 2 {
                let (batch, _) = inner.read_batch(recurse.as_deref(), ctx)?;
                return Ok(Decision::Read(ReadSet {
                    reads: vec![batch.declare()],
                }));
            }
            return inner.decide_stage(observed, 1, ctx);
        }
        let touched = self.touched_paths(&facts);

        let state = match self.state {
            Some(s) => s,
            None => match prev_state(&facts.path) {
                "absent" if self.recurse => State::Directory,
                "absent" => State::File,
                "directory" => State::Directory,
                "link" => State::Link,
                "hard" => State::Hard,
                _ => State::File,
            },
        };
        if self.recurse && state != State::Directory {
            // Ansible's words, as a failure naming the path.
            return Err(ModuleError::Failed {
                msg: "recurse option requires state to be 'directory'".into(),
                data: path_data(&self.path),
            });
        }
        if self.src.is_some() && !matches!(state, State::Link | State::Hard) {
            return Err(ModuleError::Failed {
                msg: "src option requires state to be 'link' or 'hard'".into(),
                data: path_data(&self.path),
            });
        }
        let default_stamp = if state == State::Touch {
            Stamp::Now
        } else {
            Stamp::Preserve
        };
        let stamps = (
            stamp(
                mtime_arg,
                self.modification_time_format.as_deref(),
                default_stamp.clone(),
            )?,
            stamp(atime_arg, self.access_time_format.as_deref(), default_stamp)?,
        );
        let mut data = Map::new();
        let mut work = Work::default();
        let shown_state = match state {
            State::Absent => self.plan_absent(&facts, &mut work),
            State::File => self.plan_file(&facts, &stamps, &mut work, &mut data)?,
            State::Directory => {
                self.plan_directory(&facts, &stamps, recurse.as_deref(), &mut work, &mut data)?
            }
            State::Touch => self.plan_touch(&facts, &stamps, &mut work, &mut data)?,
            State::Link => self.plan_link(&facts, &stamps, &mut work, &mut data)?,
            State::Hard => self.plan_hard(&facts, &stamps, &mut work, &mut data)?,
        };
        if state != State::Absent {
            self.fix_attributes(&facts, &mut work);
        }
        data.insert("state".into(), Value::from(shown_state));
        if matches!(state, State::Link | State::Hard | State::Touch) {
            data.insert("dest".into(), Value::from(self.path.clone()));
        } else {
            data.entry("path").or_insert(Value::from(self.path.clone()));
        }
        if ctx.diff {
            // Ansible's file module returns its diff as data in diff mode.
            let shown = data_path(&data, &self.path);
            let mut diff = diff_data(&shown, &work);
            if state == State::Absent && facts.path.kind == FileKind::Directory {
                let (dirs, files) = &facts.path_content;
                diff["before"]["path_content"] = serde_json::json!({
                    "directories": dirs,
                    "files": files,
                });
            }
            data.insert("diff".into(), diff);
        }
        if work.is_empty() {
            return Ok(Decision::Plan(Plan::Unchanged(data)));
        }
        let render = |lines: &[(String, String)]| {
            let mut s = format!("path: {}\n", data_path(&data, &self.path));
            for (k, v) in lines {
                s.push_str(&format!("{k}: {v}\n"));
            }
            s
        };
        let diff = Diff {
            before_header: self.path.clone(),
            after_header: self.path.clone(),
            before: render(&work.before),
            after: render(&work.after),
        };
        Ok(Decision::Plan(Plan::Change {
            change: FileChange {
                script: format!("set -e\n{}", work.script),
                touched,
                entries_only: !self.recurse
                    && matches!(state, State::Directory | State::Touch | State::File)
                    && matches!(facts.path.kind, FileKind::Missing | FileKind::File)
                    && !facts.real.path.is_empty(),
            },
            diff: Some(diff),
            data,
        }))
    }

    /// Where a relative link source is looked up: the link's directory, or
    /// the path itself when it is a real directory (Ansible's rule).
    fn link_src_path(&self, src: &str) -> String {
        if src.starts_with('/') {
            return src.to_string();
        }
        format!("{}/{src}", parent_dir(&self.path).trim_end_matches('/'))
    }

    /// The paths a change may write: the path, and what it resolves to
    /// (through links, which `follow` writes through).
    fn touched_paths(&self, facts: &Facts) -> Vec<String> {
        let mut paths = vec![self.path.clone()];
        if facts.recurse_links {
            // Followed links below point anywhere.
            paths.push("/".to_string());
        }
        if facts.real.path != self.path {
            // Unresolvable (empty): anything.
            paths.push(match facts.real.path.as_str() {
                "" => "/".to_string(),
                p => p.to_string(),
            });
        }
        paths
    }

    /// The one read of the module, and where each part is in it.
    fn read_batch(
        &self,
        recurse: Option<&[ModeClass]>,
        ctx: &ReadCtx<'_>,
    ) -> Result<(ReadBatch, ReadsAt), ModuleError> {
        let diff = ctx.diff;
        let mut batch = ReadBatch::new();
        let i_path = batch.path(&self.path, Read::default(), false);
        let i_real = batch.resolved(&self.path, Read::default(), true);
        // A relative src of a link resolves from the link's directory (or
        // the path, when that is a real directory): both are read.
        let src_reads = self.src.as_ref().map(|src| {
            let beside = batch.path(&self.link_src_path(src), Read::default(), true);
            let inside = batch.path(
                &format!("{}/{src}", self.path.trim_end_matches('/')),
                Read::default(),
                true,
            );
            let plain = batch.path(src, Read::default(), true);
            (beside, inside, plain)
        });
        let mut probe = format!(
            "if {}; then echo '@@x nonempty'; fi\n",
            nonempty_dir_test(&self.path)
        );
        for (name, value, format) in [
            (
                "mtime",
                &self.modification_time,
                &self.modification_time_format,
            ),
            ("atime", &self.access_time, &self.access_time_format),
        ] {
            if let Stamp::At(t) = stamp(value.as_deref(), format.as_deref(), Stamp::Preserve)? {
                probe.push_str(&format!(
                    "printf '@@x {name} %s\\n' \"$(date -d {} +%s)\"\n",
                    shell_quote(&t)
                ));
            }
        }
        if self.recurse {
            let root = if self.follow {
                resolved_word(&self.path)
            } else {
                operand(&self.path)
            };
            let mismatch = recurse_mismatch(
                self.attrs.owner.as_deref(),
                self.attrs.group.as_deref(),
                recurse,
            );
            if let (Some(m), false) = (&mismatch, self.follow) {
                probe.push_str(&format!(
                    "printf '@@x recurse %s\\n' \"$(find {root} -mindepth 1 \\( {m} \\) -printf . 2>/dev/null | wc -c)\"\n"
                ));
            }
            if let (Some(m), true) = (&mismatch, self.follow) {
                // As Ansible with `follow`: the links' own owner, then what
                // each link points to (a directory's tree too).
                let links = recurse_mismatch(
                    self.attrs.owner.as_deref(),
                    self.attrs.group.as_deref(),
                    None,
                )
                .map(|o| format!("find {root} -mindepth 1 -type l \\( {o} \\) -printf .;"))
                .unwrap_or_default();
                probe.push_str(&format!(
                    "printf '@@x recurse %s\\n' \"$({{ find -L {root} -mindepth 1 ! -type l \\( {m} \\) -printf .; {links} }} 2>/dev/null | wc -c)\"\n"
                ));
                // Links below: the answer depends on what they point to,
                // and a change writes there.
                probe.push_str(&format!(
                    "if [ -n \"$(find {root} -mindepth 1 -type l -print -quit 2>/dev/null)\" ]; then echo '@@x links'; echo '{}'; fi\n",
                    super::reads::LINKED_MARK
                ));
            }
        }
        if diff && self.state == Some(State::Absent) {
            // What removing a directory removes, for the diff.
            let q = shell_quote(&self.path);
            let root = operand(&self.path);
            probe.push_str(&format!(
                "if [ -d {q} ] && [ ! -L {q} ]; then find {root} -mindepth 1 \\( -type d -printf '@@x pcdir %p\\n' \\) -o -printf '@@x pcfile %p\\n' 2>/dev/null; fi\n"
            ));
        }
        if self.attributes.as_deref().is_some_and(|a| !a.is_empty()) {
            let q = shell_quote(&self.path);
            probe.push_str(&format!(
                "if a=\"$(lsattr -d -- {q} 2>/dev/null)\"; then printf '@@x lsattr %s\\n' \"$a\"; fi\n"
            ));
        }
        let lookups = self.owner_lookups(ctx);
        if lookups.is_empty() {
            // It reads the path's entries, a date and the tree under the path
            // (or what it resolves to, which the `resolved` read checks).
            batch.shell_within(&probe, &[&self.path]);
        } else {
            // The user database is no path: any write may change it.
            batch.shell(&format!("{probe}{lookups}"));
        }
        Ok((
            batch,
            ReadsAt {
                path: i_path,
                real: i_real,
                src: src_reads,
            },
        ))
    }

    /// In check mode, as Ansible: look the owner and group up (a task
    /// before may create them in a real run), for [`Self::lookup_warnings`].
    fn owner_lookups(&self, ctx: &ReadCtx<'_>) -> String {
        if !ctx.check || self.state == Some(State::Absent) {
            return String::new();
        }
        let mut s = String::new();
        for (db, name, mark) in [
            ("passwd", &self.attrs.owner, "nouser"),
            ("group", &self.attrs.group, "nogroup"),
        ] {
            if let Some(n) = name.as_deref().filter(|n| !n.is_empty()) {
                s.push_str(&format!(
                    "getent {db} {} >/dev/null 2>&1 || echo '@@x {mark}'\n",
                    shell_quote(n)
                ));
            }
        }
        s
    }

    /// Ansible's check-mode warnings for an owner or group the host does
    /// not know (yet), from the first read; and, when the path is there
    /// (so Ansible goes on to compare its owner), the failure of a name
    /// that cannot be looked up (a numeric id needs no lookup).
    fn lookup_warnings(
        &self,
        observed: &Observed,
        ctx: &ReadCtx<'_>,
    ) -> Result<(Vec<String>, Option<String>), ModuleError> {
        if self.owner_lookups(ctx).is_empty() {
            return Ok((Vec::new(), None));
        }
        let recurse = recurse_classes(self.attrs().mode.as_ref())?;
        let (batch, at) = self.read_batch(recurse.as_deref(), ctx)?;
        let out = batch.parse_exec(observed.output(0)?)?;
        let exists = out
            .states
            .get(at.path)
            .is_some_and(|st| st.kind != FileKind::Missing);
        let mut refusal = None;
        let mut warnings = Vec::new();
        for (mark, what, id, name) in [
            ("nouser", "user", "uid", &self.attrs.owner),
            ("nogroup", "group", "gid", &self.attrs.group),
        ] {
            let Some(name) = name.as_deref() else {
                continue;
            };
            if !out.extra.iter().any(|l| l == mark) {
                continue;
            }
            let whom = match name.parse::<u32>() {
                Ok(n) => format!("{what} with {id} {n}"),
                Err(_) => {
                    if exists && refusal.is_none() {
                        let cmd = if what == "user" { "chown" } else { "chgrp" };
                        refusal = Some(format!("{cmd} failed: failed to look up {what} {name}"));
                    }
                    format!("{what} {name}")
                }
            };
            warnings.push(format!(
                "failed to look up {whom}. Create {what} up to this point in real play"
            ));
        }
        Ok((warnings, refusal))
    }

    /// The facts a read found.
    fn facts(&self, out: &ReadOutput, at: ReadsAt) -> Result<Facts, ModuleError> {
        let (i_path, i_real, src_reads) = (at.path, at.real, at.src);
        let extra = |key: &str| {
            out.extra
                .iter()
                .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
        };
        let time = |key: &str| -> Result<Option<f64>, ModuleError> {
            match extra(key) {
                None => Ok(None),
                Some(v) => v.parse().map(Some).map_err(|_| {
                    ModuleError::failed(format!("cannot convert the {key} to a timestamp"))
                }),
            }
        };
        let states = &out.states;
        let link_src = match src_reads {
            Some((beside, inside, plain)) => {
                let is_real_dir = states[i_path].kind == FileKind::Directory;
                let pick = match (self.state, is_real_dir) {
                    (Some(State::Hard), _) => plain,
                    (_, true) => inside,
                    _ => beside,
                };
                Some(states[pick].clone())
            }
            None => None,
        };
        Ok(Facts {
            real: states[i_real].clone(),
            path: states[i_path].clone(),
            mtime: time("mtime ")?,
            atime: time("atime ")?,
            nonempty: out.extra.iter().any(|l| l == "nonempty"),
            recurse_mismatches: extra("recurse ").and_then(|v| v.parse().ok()).unwrap_or(0),
            recurse_links: out.extra.iter().any(|l| l == "links"),
            link_src,
            path_content: (
                out.extra
                    .iter()
                    .filter_map(|l| l.strip_prefix("pcdir ").map(str::to_string))
                    .collect(),
                out.extra
                    .iter()
                    .filter_map(|l| l.strip_prefix("pcfile ").map(str::to_string))
                    .collect(),
            ),
            attr_flags: extra("lsattr ")
                .and_then(|v| v.split_whitespace().next().map(|f| f.replace('-', ""))),
        })
    }

    /// `attributes`, as Ansible sets them: `chattr` when the flags differ
    /// from those given, and always to remove flags.
    fn fix_attributes(&self, facts: &Facts, work: &mut Work) {
        let Some(given) = self.attributes.as_deref() else {
            return;
        };
        let (op, flags) = match given.strip_prefix(['+', '-']) {
            Some(rest) => (&given[..1], rest),
            None => ("=", given),
        };
        if flags.is_empty() {
            return;
        }
        let existing = facts.attr_flags.clone().unwrap_or_default();
        if existing != flags || op == "-" {
            let wanted = format!("{op}{flags}");
            work.run(format!(
                "chattr {} -- {}",
                shell_quote(&wanted),
                shell_quote(&self.path)
            ));
            work.note("attributes", existing, wanted);
        }
    }

    fn plan_absent(&self, facts: &Facts, work: &mut Work) -> &'static str {
        let prev = prev_state(&facts.path);
        if prev != "absent" {
            let q = shell_quote(&self.path);
            if facts.path.kind == FileKind::Directory {
                work.run(format!("rm -rf -- {q}"));
            } else {
                work.run(format!("rm -f -- {q}"));
            }
            work.note("state", prev, "absent");
        }
        "absent"
    }

    /// The path to work on: the link's target when following a link.
    fn target<'f>(&self, facts: &'f Facts) -> (&'f FileState, String) {
        if self.follow && facts.path.kind == FileKind::Link && !facts.real.path.is_empty() {
            (&facts.real, facts.real.path.clone())
        } else {
            (&facts.path, self.path.clone())
        }
    }

    fn plan_file(
        &self,
        facts: &Facts,
        stamps: &(Stamp, Stamp),
        work: &mut Work,
        data: &mut Map,
    ) -> Result<&'static str, ModuleError> {
        let (st, path) = self.target(facts);
        let prev = prev_state(st);
        if !matches!(prev, "file" | "hard") {
            let mut data = path_data(&path);
            data.insert("state".into(), Value::from(prev));
            return Err(ModuleError::Failed {
                msg: format!("file ({path}) is {prev}, cannot continue"),
                data,
            });
        }
        self.fix_attrs(st, &path, work, data)?;
        self.fix_times(st, &path, facts, stamps, false, work)?;
        data.insert("path".into(), Value::from(path));
        Ok("file")
    }

    fn plan_directory(
        &self,
        facts: &Facts,
        stamps: &(Stamp, Stamp),
        recurse: Option<&[ModeClass]>,
        work: &mut Work,
        data: &mut Map,
    ) -> Result<&'static str, ModuleError> {
        let (st, path) = self.target(facts);
        data.insert("path".into(), Value::from(path.clone()));
        match st.kind {
            FileKind::Missing => {
                work.run(mkdirs_script(&path, &self.attrs())?);
                work.note("state", "absent", "directory");
                let mode = match &self.attrs().mode {
                    Some(m) => m.resolve(0o755, true)?,
                    None => 0o755,
                };
                data.insert("mode".into(), Value::from(format!("0{mode:03o}")));
                if let Some(o) = &self.attrs.owner {
                    data.insert("owner".into(), Value::from(o.clone()));
                }
                if let Some(g) = &self.attrs.group {
                    data.insert("group".into(), Value::from(g.clone()));
                }
                self.fix_times(st, &path, facts, stamps, false, work)?;
                return Ok("directory");
            }
            FileKind::Directory => {}
            _ => {
                return Err(ModuleError::Failed {
                    msg: format!("{path} already exists as a {}", prev_state(st)),
                    data: path_data(&path),
                })
            }
        }
        self.fix_attrs(st, &path, work, data)?;
        self.fix_times(st, &path, facts, stamps, false, work)?;
        if self.recurse && facts.recurse_mismatches > 0 {
            let n = facts.recurse_mismatches;
            work.run(recurse_fix(
                &operand(&path),
                self.attrs.owner.as_deref(),
                self.attrs.group.as_deref(),
                recurse,
                self.follow,
            ));
            work.note(
                "recurse",
                format!("{n} entries below differ"),
                "owner, group and mode applied",
            );
        }
        Ok("directory")
    }

    fn plan_touch(
        &self,
        facts: &Facts,
        stamps: &(Stamp, Stamp),
        work: &mut Work,
        data: &mut Map,
    ) -> Result<&'static str, ModuleError> {
        let (st, path) = self.target(facts);
        let q = shell_quote(&path);
        if !st.exists() {
            work.run(format!("touch -- {q}"));
            work.note("state", "absent", "touch");
            let created_at = work.script.len();
            let created = {
                let mut s = st.clone();
                s.kind = FileKind::File;
                s.mode = 0o644;
                s
            };
            // Attributes of the new file: only what was asked differs.
            self.fix_attrs(&created, &path, work, data)?;
            data.remove("uid");
            data.remove("gid");
            if *stamps != (Stamp::Now, Stamp::Now) {
                self.fix_times(&created, &path, facts, stamps, false, work)?;
            }
            // Ansible removes the file it created when setting its
            // attributes fails (a chown the user may not make).
            let rest = work.script.split_off(created_at);
            if !rest.is_empty() {
                work.run(format!(
                    "set +e; (\nset -e\n{rest}); s=$?; set -e\nif [ \"$s\" -ne 0 ]; then rm -f -- {q}; exit \"$s\"; fi"
                ));
            }
            return Ok("file");
        }
        self.fix_attrs(st, &path, work, data)?;
        self.fix_times(st, &path, facts, stamps, !self.follow, work)?;
        Ok(if st.kind == FileKind::Directory {
            "directory"
        } else {
            "file"
        })
    }

    fn plan_link(
        &self,
        facts: &Facts,
        stamps: &(Stamp, Stamp),
        work: &mut Work,
        data: &mut Map,
    ) -> Result<&'static str, ModuleError> {
        let st = &facts.path;
        let prev = prev_state(st);
        let src = match (&self.src, prev) {
            (Some(s), _) => s.clone(),
            // No src: keep the current link, manage its attributes.
            (None, "link") => st.link_target.clone().unwrap_or_default(),
            (None, _) => {
                return Err(ModuleError::failed(
                    "src is required for creating new symlinks",
                ))
            }
        };
        data.insert("src".into(), Value::from(src.clone()));
        let src_state = facts.link_src.as_ref();
        if self.src.is_some() && !self.force && !src_state.is_some_and(FileState::exists) {
            return Err(ModuleError::Failed {
                msg: format!(
                    "src file does not exist, use \"force=yes\" if you really want to create the link: {}",
                    src_state.map(|s| s.path.clone()).unwrap_or(src.clone())
                ),
                data: path_data(&self.path),
            });
        }
        match prev {
            "directory" if !self.force => {
                return Err(ModuleError::failed(format!(
                    "refusing to convert from directory to symlink for {}",
                    self.path
                )))
            }
            "directory" if facts.nonempty => {
                return Err(ModuleError::failed(format!(
                    "the directory {} is not empty, refusing to convert it",
                    self.path
                )))
            }
            "file" | "hard" if !self.force => {
                return Err(ModuleError::failed(format!(
                    "refusing to convert from {prev} to symlink for {}",
                    self.path
                )))
            }
            _ => {}
        }
        let q = shell_quote(&self.path);
        let relink = prev != "link" || st.link_target.as_deref() != Some(src.as_str());
        if relink {
            self.replace_with(
                &format!("ln -s -- {} \"$t\"", shell_quote(&src)),
                prev,
                work,
            );
            if prev == "link" {
                work.note(
                    "src",
                    st.link_target.clone().unwrap_or_default(),
                    src.clone(),
                );
            } else {
                work.note("state", prev, "link");
            }
        }
        // Attributes: of the link's target when following (if it exists),
        // else of the link itself (owner only: Linux links have no mode).
        let src_state = src_state.or((self.src.is_none()).then_some(&facts.real));
        match src_state {
            Some(target) if self.follow && target.exists() => {
                self.fix_attrs(target, &target.path.clone(), work, data)?;
                self.fix_times(target, &target.path.clone(), facts, stamps, false, work)?;
            }
            _ if !self.follow => {
                let owner_only = Attrs {
                    mode: None,
                    ..self.attrs()
                };
                let current = if relink { None } else { Some(st) };
                let changes = match current {
                    Some(c) => ensure_attrs(c, &owner_only)?.map_or_else(Vec::new, |f| f.changes),
                    None => owner_changes_unknown(&owner_only),
                };
                if !changes.is_empty() {
                    work.run(chown_cmd(&q, &owner_only, true));
                    for (k, b, a) in changes {
                        work.note(k, b, a);
                    }
                }
            }
            _ => {}
        }
        Ok("link")
    }

    fn plan_hard(
        &self,
        facts: &Facts,
        stamps: &(Stamp, Stamp),
        work: &mut Work,
        data: &mut Map,
    ) -> Result<&'static str, ModuleError> {
        let Some(src) = self.src.clone() else {
            // An existing hard link needs no src: only its attributes and
            // times are managed.
            if prev_state(&facts.path) != "hard" {
                return Err(ModuleError::failed(
                    "src is required for creating new hardlinks",
                ));
            }
            self.fix_attrs(&facts.path, &self.path, work, data)?;
            self.fix_times(&facts.path, &self.path, facts, stamps, false, work)?;
            return Ok("hard");
        };
        data.insert("src".into(), Value::from(src.clone()));
        let src_state = facts
            .link_src
            .as_ref()
            .filter(|s| s.exists())
            .ok_or_else(|| {
                // Ansible's words, with the paths as fields.
                let mut data = Map::new();
                data.insert("dest".into(), Value::from(self.path.clone()));
                data.insert("src".into(), Value::from(src.clone()));
                ModuleError::Failed {
                    msg: "src does not exist".into(),
                    data,
                }
            })?;
        let st = &facts.path;
        let prev = prev_state(st);
        let same_inode = st.exists() && st.inode == src_state.inode && st.dev == src_state.dev;
        let relink = match prev {
            "absent" => true,
            "link" => true,
            "hard" | "file" | "directory" if same_inode => false,
            _ if !self.force => {
                return Err(ModuleError::failed(format!(
                    "Cannot link, {prev} exists at destination: {}",
                    self.path
                )))
            }
            _ => true,
        };
        if relink {
            self.replace_with(&format!("ln -- {} \"$t\"", shell_quote(&src)), prev, work);
            work.note("state", prev, "hard");
        }
        let current = if relink { src_state } else { st };
        self.fix_attrs(current, &self.path, work, data)?;
        self.fix_times(current, &self.path, facts, stamps, false, work)?;
        Ok("hard")
    }

    /// Put a new link at the path: directly when nothing is there, else
    /// beside it under a dot name and renamed over it.
    fn replace_with(&self, make: &str, prev: &str, work: &mut Work) {
        let q = shell_quote(&self.path);
        if prev == "absent" {
            work.run(make.replace("\"$t\"", &q));
            return;
        }
        work.run(format!(
            "t=\"$(dirname -- {q})/.drover.$$.link\"; rm -f -- \"$t\""
        ));
        if prev == "directory" {
            work.run(format!("rmdir -- {q}"));
        }
        work.run(make);
        work.run(format!("mv -fT -- \"$t\" {q}"));
    }

    /// Mode, owner and group of `st` (at `path`).
    fn fix_attrs(
        &self,
        st: &FileState,
        path: &str,
        work: &mut Work,
        data: &mut Map,
    ) -> Result<(), ModuleError> {
        let mut attrs = self.attrs();
        let is_link = st.kind == FileKind::Link;
        if is_link {
            // A symlink has no mode of its own on Linux (chmod would change
            // its target); its owner is changed with chown -h.
            attrs.mode = None;
        }
        let is_dir = st.kind == FileKind::Directory;
        let changes = ensure_attrs(st, &attrs)?.map_or_else(Vec::new, |f| f.changes);
        let q = shell_quote(path);
        let owner_changes = changes.iter().any(|(k, _, _)| *k != "mode");
        if owner_changes {
            work.run(chown_cmd(&q, &attrs, is_link));
        }
        // chown clears set-id bits: set the mode again after it.
        let mode = match &attrs.mode {
            Some(m) => m.resolve(st.mode, is_dir)?,
            None => st.mode,
        };
        if changes.iter().any(|(k, _, _)| *k == "mode") || (owner_changes && attrs.mode.is_some()) {
            work.run(format!("chmod -- {} {q}", chmod_bits(mode)));
        }
        for (k, b, a) in changes {
            work.note(k, b, a);
        }
        data.insert("mode".into(), Value::from(format!("0{mode:03o}")));
        data.insert(
            "owner".into(),
            Value::from(attrs.owner.clone().unwrap_or_else(|| st.owner.clone())),
        );
        data.insert(
            "group".into(),
            Value::from(attrs.group.clone().unwrap_or_else(|| st.group.clone())),
        );
        if attrs.owner.is_none() {
            data.insert("uid".into(), Value::from(st.uid));
        }
        if attrs.group.is_none() {
            data.insert("gid".into(), Value::from(st.gid));
        }
        if st.kind == FileKind::File {
            data.insert("size".into(), Value::from(st.size));
        }
        Ok(())
    }

    /// Access and modification times of `st` (at `path`).
    fn fix_times(
        &self,
        st: &FileState,
        path: &str,
        facts: &Facts,
        stamps: &(Stamp, Stamp),
        no_deref: bool,
        work: &mut Work,
    ) -> Result<(), ModuleError> {
        let q = shell_quote(path);
        let h = if no_deref { "-h " } else { "" };
        let (m, a) = stamps;
        if *m == Stamp::Now && *a == Stamp::Now {
            work.run(format!("touch -c {h}-- {q}"));
            work.note("times", "(previous)", "now");
            return Ok(());
        }
        for (stamp, flag, wanted, current, name) in [
            (m, "-m", facts.mtime, st.mtime, "mtime"),
            (a, "-a", facts.atime, st.atime, "atime"),
        ] {
            match stamp {
                Stamp::Preserve => {}
                Stamp::Now => {
                    work.run(format!("touch -c {h}{flag} -- {q}"));
                    work.note(name, format!("{current}"), "now");
                }
                Stamp::At(_) => {
                    let want = wanted.ok_or_else(|| {
                        ModuleError::failed(format!("the host could not convert the {name}"))
                    })?;
                    if !st.exists() || want != current {
                        work.run(format!("touch -c {h}{flag} -d @{want} -- {q}"));
                        work.note(name, format!("{current}"), format!("{want}"));
                    }
                }
            }
        }
        Ok(())
    }
}

/// The `diff` result of Ansible's file module: the path, then each
/// attribute that changes, before and after.
fn diff_data(path: &str, work: &Work) -> Value {
    let side = |lines: &[(String, String)]| {
        let mut m = Map::new();
        m.insert("path".into(), Value::from(path));
        for (k, v) in lines {
            m.insert(k.clone(), Value::from(v.clone()));
        }
        Value::Object(m)
    };
    let mut d = Map::new();
    d.insert("before".into(), side(&work.before));
    d.insert("after".into(), side(&work.after));
    Value::Object(d)
}

fn path_data(path: &str) -> Map {
    let mut m = Map::new();
    m.insert("path".into(), Value::from(path));
    m
}

/// For a link about to be created: every owner/group asked for is a change.
fn owner_changes_unknown(attrs: &Attrs) -> Vec<(&'static str, String, String)> {
    let mut v = Vec::new();
    if let Some(o) = &attrs.owner {
        v.push(("owner", String::new(), o.clone()));
    }
    if let Some(g) = &attrs.group {
        v.push(("group", String::new(), g.clone()));
    }
    v
}

fn chown_cmd(word: &str, attrs: &Attrs, no_deref: bool) -> String {
    let h = if no_deref { "-h " } else { "" };
    match (&attrs.owner, &attrs.group) {
        (Some(o), Some(g)) => format!("chown {h}-- {}:{} {word}", shell_quote(o), shell_quote(g)),
        (Some(o), None) => format!("chown {h}-- {} {word}", shell_quote(o)),
        (None, Some(g)) => format!("chgrp {h}-- {} {word}", shell_quote(g)),
        (None, None) => "true".into(),
    }
}

/// A class of entries below a directory (a `find` predicate) and how the
/// wanted mode changes any of them: bits to set and bits to clear.
#[derive(Debug, Clone, PartialEq)]
struct ModeClass {
    find: &'static str,
    set: u32,
    clear: u32,
}

/// Split a mode into `find` classes on which it acts as fixed set/clear
/// bits, so that one `find` can tell what differs and one `chmod` per class
/// can fix it. `u=rwX,g=rX,o=rX` gives directories 0755 and files 0644 or
/// 0755 depending on whether they have an execute bit.
fn recurse_classes(mode: Option<&Mode>) -> Result<Option<Vec<ModeClass>>, ModuleError> {
    let Some(mode) = mode else { return Ok(None) };
    if let Mode::Bits(b) = mode {
        return Ok(Some(vec![ModeClass {
            find: "! -type l",
            set: *b,
            clear: !*b & 0o7777,
        }]));
    }
    type Class = (&'static str, bool, fn(u32) -> bool);
    let classes: [Class; 3] = [
        ("-type d", true, |_| true),
        ("! -type d ! -type l -perm /111", false, |c| c & 0o111 != 0),
        ("! -type d ! -type l ! -perm /111", false, |c| {
            c & 0o111 == 0
        }),
    ];
    let mut out = Vec::new();
    for (find, is_dir, member) in classes {
        // Per bit: always 1 after, always 0 after, or unchanged, over every
        // mode of the class.
        let (mut ones, mut zeros, mut keeps) = (0o7777u32, 0o7777u32, 0o7777u32);
        for c in (0..=0o7777u32).filter(|c| member(*c)) {
            let r = mode.resolve(c, is_dir)?;
            ones &= r;
            zeros &= !r;
            keeps &= !(r ^ c);
        }
        let set = ones & !keeps;
        let clear = zeros & !keeps;
        if (set | clear | keeps) & 0o7777 != 0o7777 {
            return Err(ModuleError::Args(format!(
                "mode {mode:?} cannot be applied recursively"
            )));
        }
        out.push(ModeClass { find, set, clear });
    }
    Ok(Some(out))
}

/// `find` expression matching entries whose owner, group or mode differ.
fn recurse_mismatch(
    owner: Option<&str>,
    group: Option<&str>,
    classes: Option<&[ModeClass]>,
) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(o) = owner {
        parts.push(format!("! -user {}", shell_quote(o)));
    }
    if let Some(g) = group {
        parts.push(format!("! -group {}", shell_quote(g)));
    }
    for c in classes.unwrap_or_default() {
        if let Some(m) = class_mismatch(c) {
            parts.push(format!("\\( {} {m} \\)", c.find));
        }
    }
    (!parts.is_empty()).then(|| parts.join(" -o "))
}

fn class_mismatch(c: &ModeClass) -> Option<String> {
    let mut alts = Vec::new();
    if c.set != 0 {
        alts.push(format!("! -perm -{:04o}", c.set));
    }
    if c.clear != 0 {
        alts.push(format!("-perm /{:04o}", c.clear));
    }
    (!alts.is_empty()).then(|| format!("\\( {} \\)", alts.join(" -o ")))
}

/// A `chmod` symbolic argument that sets `set` and clears `clear`.
fn chmod_delta(set: u32, clear: u32) -> String {
    let letters = |bits: u32, who: char| -> String {
        let (shift, special, sp) = match who {
            'u' => (6, 0o4000, 's'),
            'g' => (3, 0o2000, 's'),
            _ => (0, 0o1000, 't'),
        };
        let mut s = String::new();
        for (b, ch) in [(4, 'r'), (2, 'w'), (1, 'x')] {
            if bits & (b << shift) != 0 {
                s.push(ch);
            }
        }
        if bits & special != 0 {
            s.push(sp);
        }
        s
    };
    let mut clauses = Vec::new();
    for (bits, op) in [(clear, '-'), (set, '+')] {
        for who in ['u', 'g', 'o'] {
            let l = letters(bits, who);
            if !l.is_empty() {
                clauses.push(format!("{who}{op}{l}"));
            }
        }
    }
    clauses.join(",")
}

/// Commands applying owner, group and mode to everything below `root`
/// (ownership first, as `chown` clears set-id bits).
/// With `follow`, as Ansible: links get the owner themselves, and what
/// they point to (through `find -L`, which descends into linked
/// directories) gets owner and mode; dangling links are left alone.
fn recurse_fix(
    root: &str,
    owner: Option<&str>,
    group: Option<&str>,
    classes: Option<&[ModeClass]>,
    follow: bool,
) -> String {
    let mut s = String::new();
    if let Some(m) = recurse_mismatch(owner, group, None) {
        let attrs = Attrs {
            mode: None,
            owner: owner.map(str::to_string),
            group: group.map(str::to_string),
        };
        let cmd = chown_cmd("{}", &attrs, true);
        s.push_str(&format!(
            "find {root} -mindepth 1 \\( {m} \\) -exec {cmd} +\n"
        ));
        if follow {
            let cmd = chown_cmd("{}", &attrs, false);
            s.push_str(&format!(
                "find -L {root} -mindepth 1 ! -type l \\( {m} \\) -exec {cmd} +\n"
            ));
        }
    }
    let find = if follow { "find -L" } else { "find" };
    for c in classes.unwrap_or_default() {
        if let Some(m) = class_mismatch(c) {
            s.push_str(&format!(
                "{find} {root} -mindepth 1 {} {m} -exec chmod -- {} {{}} +\n",
                c.find,
                chmod_delta(c.set, c.clear)
            ));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::json;

    use super::*;
    use crate::modules::testutil::{assert_args_complete, mode_of, owner_of, Harness};

    #[test]
    fn args() {
        assert_args_complete::<File>();
    }

    #[test]
    fn symbolic_classes() {
        let m = Mode::Symbolic("u=rwX,g=rX,o=rX".into());
        let classes = recurse_classes(Some(&m)).expect("ok").expect("some");
        assert_eq!(classes[0].set, 0o755); // directories
        assert_eq!(classes[0].clear, 0o7022);
        assert_eq!(classes[1].set, 0o755); // files with an x bit
        assert_eq!(classes[2].set, 0o644); // files without
        assert_eq!(classes[2].clear, 0o7022); // (their x bits are 0 already)
        assert_eq!(chmod_delta(0o644, 0o7133), "u-xs,g-wxs,o-wxt,u+rw,g+r,o+r");
        // Additive modes only set bits.
        let plus = recurse_classes(Some(&Mode::Symbolic("g+w".into())))
            .expect("ok")
            .expect("some");
        assert!(plus.iter().all(|c| c.set == 0o020 && c.clear == 0));
    }

    #[test]
    fn timestamps() {
        assert_eq!(
            stamp(Some("202401021530.45"), None, Stamp::Now).expect("ok"),
            Stamp::At("2024-01-02 15:30:45".into())
        );
        assert_eq!(stamp(None, None, Stamp::Now).expect("ok"), Stamp::Now);
        assert!(stamp(Some("yesterday"), None, Stamp::Now).is_err());
        assert!(stamp(Some("2024"), Some("%Y"), Stamp::Now).is_err());
        // find target: one digit of seconds, as Python's strptime reads it.
        assert_eq!(
            stamp(Some("202001011200.0"), None, Stamp::Now).expect("ok"),
            Stamp::At("2020-01-01 12:00:00".into())
        );
        assert!(stamp(Some("202001011200.123"), None, Stamp::Now).is_err());
    }

    #[tokio::test]
    #[ignore = "needs root: run scripts/test"]
    async fn directory_created_with_parents_then_unchanged() {
        let h = Harness::new();
        let leaf = h.path("a/b/c");
        let args = json!({ "path": leaf, "state": "directory", "mode": "0750", "owner": "daemon" });
        let out = h
            .run::<File>(args.clone(), true, true)
            .await
            .expect("check");
        assert!(out.changed);
        assert!(!Path::new(&h.path("a")).exists());
        let diff = out.diff.expect("diff");
        assert!(diff.before.contains("state: absent"), "{}", diff.before);
        assert!(diff.after.contains("state: directory"), "{}", diff.after);

        h.take_execs();
        let out = h
            .run::<File>(args.clone(), false, false)
            .await
            .expect("run");
        assert!(out.changed);
        assert_eq!(h.take_execs(), 2);
        // Like Ansible, every directory created gets mode and owner.
        for p in ["a", "a/b", "a/b/c"] {
            assert_eq!(mode_of(&h.path(p)), 0o750, "{p}");
            assert_eq!(owner_of(&h.path(p)).0, 1, "{p}");
        }
        let out = h.run::<File>(args, false, false).await.expect("again");
        assert!(!out.changed);
        assert_eq!(h.take_execs(), 1);
        assert_eq!(out.data["mode"], json!("0750"));
        assert_eq!(out.data["owner"], json!("daemon"));

        // Only the leaf's mode changes when it alone differs.
        let out = h
            .run::<File>(
                json!({ "path": leaf, "state": "directory", "mode": "u=rwx,g=,o=" }),
                false,
                true,
            )
            .await
            .expect("mode");
        assert!(out.changed);
        assert_eq!(mode_of(&leaf), 0o700);
        assert_eq!(mode_of(&h.path("a/b")), 0o750);
        // A file in the way fails.
        std::fs::write(h.path("plain"), "").expect("write");
        let err = h
            .run::<File>(
                json!({ "path": h.path("plain"), "state": "directory" }),
                false,
                false,
            )
            .await
            .expect_err("file in the way");
        assert!(
            err.to_string().contains("already exists as a file"),
            "{err}"
        );
    }

    #[tokio::test]
    #[ignore = "needs root: run scripts/test"]
    async fn recurse_is_idempotent() {
        let h = Harness::new();
        let root = h.path("tree");
        std::fs::create_dir_all(h.path("tree/sub")).expect("mkdir");
        std::fs::write(h.path("tree/sub/run.sh"), "").expect("write");
        std::fs::write(h.path("tree/data"), "").expect("write");
        std::process::Command::new("chmod")
            .args(["0700", &h.path("tree/sub/run.sh")])
            .status()
            .expect("chmod");
        std::process::Command::new("chmod")
            .args(["0600", &h.path("tree/data")])
            .status()
            .expect("chmod");
        let args = json!({ "path": root, "state": "directory", "recurse": true,
                           "owner": "nobody", "group": "daemon", "mode": "u=rwX,g=rX,o=rX" });
        let out = h
            .run::<File>(args.clone(), true, true)
            .await
            .expect("check");
        assert!(out.changed);
        assert_eq!(owner_of(&h.path("tree/data")).0, 0);
        h.take_execs();
        let out = h
            .run::<File>(args.clone(), false, false)
            .await
            .expect("run");
        assert!(out.changed);
        assert_eq!(h.take_execs(), 2);
        assert_eq!(mode_of(&h.path("tree/sub/run.sh")), 0o755);
        assert_eq!(mode_of(&h.path("tree/data")), 0o644);
        assert_eq!(mode_of(&h.path("tree/sub")), 0o755);
        for p in ["tree", "tree/sub", "tree/sub/run.sh", "tree/data"] {
            assert_eq!(owner_of(&h.path(p)), (65534, 1), "{p}");
        }
        let out = h
            .run::<File>(args.clone(), false, false)
            .await
            .expect("again");
        assert!(!out.changed);
        // One file drifts: found and fixed.
        std::process::Command::new("chown")
            .args(["root", &h.path("tree/sub/run.sh")])
            .status()
            .expect("chown");
        let out = h
            .run::<File>(args.clone(), false, true)
            .await
            .expect("drift");
        assert!(out.changed);
        assert!(out
            .diff
            .expect("diff")
            .before
            .contains("1 entries below differ"));
        assert_eq!(owner_of(&h.path("tree/sub/run.sh")).0, 65534);
        assert!(
            !h.run::<File>(args, false, false)
                .await
                .expect("again")
                .changed
        );
    }

    /// file target: the result's mode is Ansible's `'0%03o'`, so a
    /// sticky bit shows as `01444`.
    #[tokio::test]
    #[ignore = "needs root: run scripts/test"]
    async fn result_mode_keeps_a_leading_zero_before_special_bits() {
        let h = Harness::new();
        let f = h.path("s");
        std::fs::write(&f, "x").expect("write");
        let out = h
            .run::<File>(json!({ "path": f, "mode": "01444" }), false, false)
            .await
            .expect("sticky");
        assert_eq!(out.data["mode"], json!("01444"));
        let out = h
            .run::<File>(json!({ "path": f, "mode": "0444" }), false, false)
            .await
            .expect("plain");
        assert_eq!(out.data["mode"], json!("0444"));
    }

    /// file target: removing a directory in diff mode lists what goes.
    #[tokio::test]
    #[ignore = "needs root: run scripts/test"]
    async fn absent_directory_diff_lists_its_content() {
        let h = Harness::new();
        let d = h.path("d");
        std::fs::create_dir_all(format!("{d}/sub")).expect("mkdir");
        std::fs::write(format!("{d}/sub/f"), "x").expect("write");
        let out = h
            .run::<File>(json!({ "path": d, "state": "absent" }), true, true)
            .await
            .expect("check");
        let pc = &out.data["diff"]["before"]["path_content"];
        assert_eq!(pc["directories"], json!([format!("{d}/sub")]));
        assert_eq!(pc["files"], json!([format!("{d}/sub/f")]));
        assert!(std::path::Path::new(&d).exists(), "check mode removed it");
    }

    /// file target: a touch whose chown fails leaves no file behind.
    #[tokio::test]
    #[ignore = "needs root: run scripts/test"]
    async fn touch_that_cannot_set_its_owner_removes_the_file() {
        let h = Harness::new();
        let f = h.path("t");
        let err = h
            .run::<File>(
                json!({ "path": f, "state": "touch", "owner": "drover-no-such-user" }),
                false,
                false,
            )
            .await
            .expect_err("unknown owner");
        assert!(!std::path::Path::new(&f).exists(), "{err}");
    }

    /// file target: `attributes` was refused as not implemented.
    #[tokio::test]
    #[ignore = "needs root: run scripts/test"]
    async fn attributes_set_add_and_remove_like_ansible() {
        let h = Harness::new();
        let f = h.path("f");
        std::fs::write(&f, "x").expect("write");
        let flags = || {
            let out = std::process::Command::new("lsattr")
                .args(["-d", &f])
                .output()
                .expect("lsattr");
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .replace('-', "")
        };
        // The file system's own flags (ext4's `e`, extents), which chattr
        // keeps whatever it is asked.
        let own = flags();
        let without_own = |f: String| f.replace(|c| own.contains(c), "");
        let run = |attributes: &str| {
            let args = json!({ "path": f, "attributes": attributes });
            let h = &h;
            async move { h.run::<File>(args, false, true).await.expect("run") }
        };
        let out = run("A").await;
        assert!(out.changed);
        assert_eq!(without_own(flags()), "A");
        assert_eq!(out.data["diff"]["after"]["attributes"], json!("=A"));
        // As Ansible: the whole flag string is compared, so a file system
        // flag makes even `+A` run chattr again.
        assert_eq!(run("+A").await.changed, !own.is_empty(), "already there");
        assert!(!run("").await.changed, "empty leaves them alone");
        assert!(run("-A").await.changed, "removing always runs chattr");
        assert_eq!(flags(), own);
    }

    #[tokio::test]
    async fn file_state_and_absent() {
        let h = Harness::new();
        let f = h.path("f");
        let err = h
            .run::<File>(json!({ "path": f, "mode": "0600" }), false, false)
            .await
            .expect_err("missing");
        assert!(
            err.to_string().contains("is absent, cannot continue"),
            "{err}"
        );
        // The failure registers the state found, as Ansible's does.
        match err {
            ModuleError::Failed { data, .. } => assert_eq!(data["state"], json!("absent")),
            other => panic!("{other}"),
        }
        std::fs::write(&f, "x").expect("write");
        let args = json!({ "path": f, "state": "file", "mode": "0600" });
        let out = h
            .run::<File>(args.clone(), true, true)
            .await
            .expect("check");
        assert!(out.changed);
        assert_eq!(mode_of(&f), 0o644);
        let diff = out.diff.expect("diff");
        assert!(diff.before.contains("mode: 0644") && diff.after.contains("mode: 0600"));
        h.run::<File>(args.clone(), false, false)
            .await
            .expect("run");
        assert_eq!(mode_of(&f), 0o600);
        assert!(
            !h.run::<File>(args, false, false)
                .await
                .expect("again")
                .changed
        );

        std::fs::create_dir_all(h.path("d/x")).expect("mkdir");
        let args = json!({ "path": h.path("d"), "state": "absent" });
        let out = h
            .run::<File>(args.clone(), true, true)
            .await
            .expect("check");
        assert!(out.changed);
        assert!(out.diff.expect("diff").after.contains("state: absent"));
        assert!(Path::new(&h.path("d")).exists());
        h.run::<File>(args.clone(), false, false)
            .await
            .expect("run");
        assert!(!Path::new(&h.path("d")).exists());
        assert!(
            !h.run::<File>(args, false, false)
                .await
                .expect("again")
                .changed
        );
    }

    #[tokio::test]
    async fn touch_always_changes_unless_preserved() {
        let h = Harness::new();
        let f = h.path("t");
        let out = h
            .run::<File>(
                json!({ "path": f, "state": "touch", "mode": "0640" }),
                true,
                false,
            )
            .await
            .expect("check");
        assert!(out.changed);
        assert!(!Path::new(&f).exists());
        h.run::<File>(
            json!({ "path": f, "state": "touch", "mode": "0640" }),
            false,
            false,
        )
        .await
        .expect("create");
        assert_eq!(mode_of(&f), 0o640);
        assert!(
            h.run::<File>(json!({ "path": f, "state": "touch" }), false, false)
                .await
                .expect("touch")
                .changed
        );
        let keep = json!({ "path": f, "state": "touch",
                           "modification_time": "preserve", "access_time": "preserve" });
        assert!(
            !h.run::<File>(keep, false, false)
                .await
                .expect("preserve")
                .changed
        );
        // An explicit time is set once.
        let at = json!({ "path": f, "state": "file",
                         "modification_time": "202001021530.45", "access_time": "preserve" });
        assert!(
            h.run::<File>(at.clone(), false, false)
                .await
                .expect("at")
                .changed
        );
        assert!(
            !h.run::<File>(at, false, false)
                .await
                .expect("again")
                .changed
        );
    }

    #[tokio::test]
    #[ignore = "needs root: run scripts/test"]
    async fn symlinks() {
        let h = Harness::new();
        std::fs::write(h.path("target"), "x").expect("write");
        let link = h.path("link");
        // A relative src resolves from the link's directory.
        let args = json!({ "src": "target", "dest": link, "state": "link" });
        let out = h
            .run::<File>(args.clone(), true, true)
            .await
            .expect("check");
        assert!(out.changed);
        assert!(std::fs::symlink_metadata(&link).is_err());
        h.run::<File>(args.clone(), false, false)
            .await
            .expect("run");
        assert_eq!(
            std::fs::read_link(&link).expect("link").to_str(),
            Some("target")
        );
        assert!(
            !h.run::<File>(args, false, false)
                .await
                .expect("again")
                .changed
        );

        // Retarget: the diff names both sources.
        std::fs::write(h.path("other"), "y").expect("write");
        let args = json!({ "src": h.path("other"), "path": link, "state": "link" });
        let out = h
            .run::<File>(args.clone(), false, true)
            .await
            .expect("retarget");
        assert!(out.changed);
        let diff = out.diff.expect("diff");
        assert!(diff.before.contains("src: target"), "{}", diff.before);
        // In diff mode the result carries Ansible's diff as data too.
        assert_eq!(out.data["diff"]["before"]["src"], json!("target"));
        assert_eq!(out.data["diff"]["after"]["src"], json!(h.path("other")));
        assert_eq!(out.data["diff"]["after"]["path"], json!(link));
        assert!(
            h.run::<File>(args.clone(), false, false)
                .await
                .expect("again")
                .data
                .get("diff")
                .is_none(),
            "no diff data outside diff mode"
        );
        assert_eq!(
            std::fs::read_link(&link).expect("link"),
            Path::new(&h.path("other"))
        );

        // A missing src needs force; a file in the way needs force.
        let err = h
            .run::<File>(
                json!({ "src": "nope", "path": h.path("l2"), "state": "link" }),
                false,
                false,
            )
            .await
            .expect_err("missing src");
        assert!(err.to_string().contains("force=yes"), "{err}");
        h.run::<File>(
            json!({ "src": "nope", "path": h.path("l2"), "state": "link", "force": true }),
            false,
            false,
        )
        .await
        .expect("dangling link with force");
        std::fs::write(h.path("plain"), "").expect("write");
        let err = h
            .run::<File>(
                json!({ "src": "target", "path": h.path("plain"), "state": "link" }),
                false,
                false,
            )
            .await
            .expect_err("file in the way");
        assert!(err.to_string().contains("refusing to convert"), "{err}");
        h.run::<File>(
            json!({ "src": "target", "path": h.path("plain"), "state": "link", "force": "yes" }),
            false,
            false,
        )
        .await
        .expect("forced");
        assert!(std::fs::symlink_metadata(h.path("plain"))
            .expect("meta")
            .is_symlink());

        // Owner with follow=no applies to the link itself.
        let args = json!({ "src": "target", "path": link, "state": "link",
                           "owner": "nobody", "follow": false });
        h.run::<File>(args.clone(), false, false)
            .await
            .expect("owner");
        assert_eq!(owner_of(&link).0, 65534);
        assert_eq!(owner_of(&h.path("target")).0, 0);
        assert!(
            !h.run::<File>(args, false, false)
                .await
                .expect("again")
                .changed
        );
        // touch with follow=no: the link's owner, never the target's mode.
        let args = json!({ "path": link, "state": "touch", "follow": false, "owner": "daemon",
                           "mode": "0600", "modification_time": "preserve", "access_time": "preserve" });
        assert!(
            h.run::<File>(args.clone(), false, false)
                .await
                .expect("touch")
                .changed
        );
        assert_eq!(owner_of(&link).0, 1);
        assert_eq!(mode_of(&h.path("target")), 0o644);
        assert!(
            !h.run::<File>(args, false, false)
                .await
                .expect("again")
                .changed
        );
    }

    #[tokio::test]
    async fn hard_links() {
        let h = Harness::new();
        std::fs::write(h.path("src"), "x").expect("write");
        let src = h.path("src");
        let args = json!({ "src": src, "path": h.path("hl"), "state": "hard" });
        assert!(
            h.run::<File>(args.clone(), false, false)
                .await
                .expect("run")
                .changed
        );
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            std::fs::metadata(h.path("hl")).expect("meta").ino(),
            std::fs::metadata(&src).expect("meta").ino()
        );
        assert!(
            !h.run::<File>(args, false, false)
                .await
                .expect("again")
                .changed
        );
        // An existing hard link takes a mode without src.
        let out = h
            .run::<File>(
                json!({ "path": h.path("hl"), "state": "hard", "mode": "0600" }),
                false,
                false,
            )
            .await
            .expect("mode on a hard link");
        assert!(out.changed);
        assert_eq!(mode_of(&src), 0o600);
        // A directory as the path gets the link inside, under src's name.
        std::fs::create_dir(h.path("dir")).expect("mkdir");
        let args = json!({ "src": src, "path": h.path("dir"), "state": "hard", "force": false });
        let out = h
            .run::<File>(args.clone(), false, false)
            .await
            .expect("into dir");
        assert!(out.changed);
        assert_eq!(
            std::fs::metadata(h.path("dir/src")).expect("meta").ino(),
            std::fs::metadata(&src).expect("meta").ino()
        );
        assert!(std::fs::metadata(h.path("dir")).expect("meta").is_dir());
        assert!(
            !h.run::<File>(args, false, false)
                .await
                .expect("into dir again")
                .changed
        );
    }

    /// Check mode with an owner or group the host does not know: Ansible
    /// warns (the result had no `warnings`), and fails when the path is
    /// there and the name (not an id) cannot be looked up.
    #[tokio::test]
    async fn check_mode_warns_about_unknown_owner_and_group() {
        let h = Harness::new();
        let missing = h.path("missing");
        let err = h
            .run::<File>(
                json!({ "path": missing, "owner": "no-such-user-x" }),
                true,
                false,
            )
            .await
            .expect_err("absent file");
        let ModuleError::Failed { data, .. } = err else {
            panic!("not a failure: {err}");
        };
        assert_eq!(
            data["warnings"],
            json!([
                "failed to look up user no-such-user-x. Create user up to this point in real play"
            ])
        );
        std::fs::write(h.path("f"), "x").expect("write");
        let err = h
            .run::<File>(
                json!({ "path": h.path("f"), "state": "touch", "group": "no-such-group-x" }),
                true,
                false,
            )
            .await
            .expect_err("existing file");
        assert_eq!(
            err.to_string(),
            "chgrp failed: failed to look up group no-such-group-x"
        );
        let out = h
            .run::<File>(
                json!({ "path": h.path("f"), "state": "touch", "owner": "3999999" }),
                true,
                false,
            )
            .await
            .expect("a numeric id needs no lookup");
        assert_eq!(
            out.data["warnings"],
            json!(["failed to look up user with uid 3999999. Create user up to this point in real play"])
        );
        let out = h
            .run::<File>(
                json!({ "path": h.path("f"), "state": "touch", "owner": "root" }),
                true,
                false,
            )
            .await
            .expect("known owner");
        assert!(out.data.get("warnings").is_none());
    }

    /// `recurse` with `follow` (the default) left what links below point
    /// to unchanged; Ansible applies the mode there too, and into a linked
    /// directory's tree, but never through `follow: false`.
    #[tokio::test]
    async fn recurse_follows_links_below_only_with_follow() {
        let h = Harness::new();
        for d in ["tree", "target_dir"] {
            std::fs::create_dir(h.path(d)).expect("mkdir");
        }
        for f in ["target_file", "target_dir/foo"] {
            std::fs::write(h.path(f), "x").expect("write");
        }
        for p in ["tree", "target_dir", "target_file", "target_dir/foo"] {
            std::fs::set_permissions(
                h.path(p),
                std::os::unix::fs::PermissionsExt::from_mode(0o700),
            )
            .expect("chmod");
        }
        std::os::unix::fs::symlink("../target_file", h.path("tree/l_file")).expect("link");
        std::os::unix::fs::symlink("../target_dir", h.path("tree/l_dir")).expect("link");
        std::os::unix::fs::symlink("does_not_exist", h.path("tree/dangling")).expect("link");
        let args = |follow: bool| json!({ "path": h.path("tree"), "recurse": true, "mode": "a-x", "follow": follow });
        h.run::<File>(args(false), false, false)
            .await
            .expect("no follow");
        for p in ["target_dir", "target_file", "target_dir/foo"] {
            assert_eq!(mode_of(&h.path(p)), 0o700, "{p}");
        }
        let out = h
            .run::<File>(args(true), false, false)
            .await
            .expect("follow");
        assert!(out.changed);
        for p in ["target_dir", "target_file", "target_dir/foo"] {
            assert_eq!(mode_of(&h.path(p)), 0o600, "{p}");
        }
        let again = h
            .run::<File>(args(true), false, false)
            .await
            .expect("again");
        assert!(!again.changed);
    }

    /// Ansible's failures for a hard link without a usable src.
    #[tokio::test]
    async fn hard_link_src_failures_say_what_ansible_says() {
        let h = Harness::new();
        let err = h
            .run::<File>(
                json!({ "path": h.path("hl"), "state": "hard" }),
                false,
                false,
            )
            .await
            .expect_err("no src");
        assert_eq!(
            err.to_string(),
            "src is required for creating new hardlinks"
        );
        let err = h
            .run::<File>(
                json!({ "path": h.path("hl"), "state": "hard", "src": "nope.txt" }),
                false,
                false,
            )
            .await
            .expect_err("missing src");
        let ModuleError::Failed { msg, data } = err else {
            panic!("not a failure: {err}");
        };
        assert_eq!(msg, "src does not exist");
        assert_eq!(data["src"], json!("nope.txt"));
        assert_eq!(data["dest"], json!(h.path("hl")));
    }
}
