//! `apt_repository` (ansible.builtin.apt_repository): keep a one-line APT
//! source in `/etc/apt/sources.list` or `sources.list.d/*.list`, as
//! Ansible's module does without python-apt: every list file is read in
//! one exec, parsed into lines, the source added (a disabled copy enabled,
//! or appended to the file Ansible names after the URL) or removed, and
//! the files whose text changed are written (normalized as Ansible writes
//! them) or deleted when nothing is left in them.
//!
//! `ppa:` sources need Launchpad and are refused.

use async_trait::async_trait;
use base64::Engine as _;
use serde::Deserialize;

use super::args::{bool_ish, opt_string_ish, opt_u64_ish, yes, Presence};
use super::fs::{write_file_atomic, Attrs, Mode};
use super::{
    Decision, Diff, Module, ModuleCtx, ModuleError, Plan, Protocol, ReadCtx, ReadSet, Scope,
};
use crate::transport::shell_quote;
use crate::{Map, Value};

/// The main list, as `Dir::Etc::sourcelist` has it on Debian.
const MAIN_LIST: &str = "/etc/apt/sources.list";
/// The directory of further lists (`Dir::Etc::sourceparts`).
const LIST_DIR: &str = "/etc/apt/sources.list.d";

/// Arguments of `apt_repository`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AptRepository {
    /// The source line (`deb [signed-by=...] URL SUITE COMPONENTS`).
    repo: String,
    /// `present` or `absent`.
    #[serde(default)]
    state: Presence,
    /// Mode of a list file a source is added to (default 0644).
    #[serde(default)]
    mode: Option<Value>,
    /// Run `apt-get update` after a change.
    #[serde(default = "yes", alias = "update-cache", deserialize_with = "bool_ish")]
    update_cache: bool,
    /// Tries of the update before giving up (and restoring the files).
    #[serde(default, deserialize_with = "opt_u64_ish")]
    update_cache_retries: Option<u64>,
    /// Longest wait between tries, in seconds.
    #[serde(default, deserialize_with = "opt_u64_ish")]
    update_cache_retry_max_delay: Option<u64>,
    /// Name of the file in sources.list.d, without `.list`.
    #[serde(default, deserialize_with = "opt_string_ish")]
    filename: Option<String>,
    /// Only for `ppa:` sources (refused), as Ansible has it.
    #[serde(default, deserialize_with = "opt_string_ish")]
    codename: Option<String>,
    /// Only for `ppa:` sources' keys (refused), as Ansible has it.
    #[serde(default = "yes", deserialize_with = "bool_ish")]
    validate_certs: bool,
    /// Ansible installs python-apt for itself; drover needs none.
    #[serde(default = "yes", deserialize_with = "bool_ish")]
    install_python_apt: bool,
}

/// One line of a list file, as Ansible parses it.
#[derive(Debug, Clone, PartialEq)]
struct Line {
    valid: bool,
    enabled: bool,
    source: String,
    comment: String,
}

impl Line {
    fn parse(line: &str) -> Line {
        let mut line = line.trim();
        let mut enabled = true;
        if let Some(rest) = line.strip_prefix('#') {
            enabled = false;
            line = rest;
        }
        let mut comment = String::new();
        if let Some(i) = line.find('#').filter(|i| *i > 0) {
            comment = line[i + 1..].trim().to_string();
            line = &line[..i];
        }
        let mut source = line.trim().to_string();
        let mut valid = false;
        if let Some(first) = source.split_whitespace().next() {
            if first == "deb" || first == "deb-src" {
                valid = true;
                source = source.split_whitespace().collect::<Vec<_>>().join(" ");
            }
        }
        Line {
            valid,
            enabled,
            source,
            comment,
        }
    }

    fn render(&self) -> String {
        let mut s = String::new();
        if !self.enabled {
            s.push_str("# ");
        }
        s.push_str(&self.source);
        if !self.comment.is_empty() {
            s.push_str(" # ");
            s.push_str(&self.comment);
        }
        s.push('\n');
        s
    }
}

/// A list file: its path, lines, and its raw text (for the diff).
#[derive(Debug, Clone, PartialEq)]
struct ListFile {
    path: String,
    lines: Vec<Line>,
}

fn dump(lines: &[Line]) -> String {
    lines.iter().map(Line::render).collect()
}

/// The file name Ansible gives a source's list (`filename` wins):
/// options and scheme dropped, the first word after the type, without
/// credentials, with every run of other characters than letters and
/// digits as `_`.
fn suggest_filename(source: &str, filename: Option<&str>) -> String {
    if let Some(f) = filename {
        return format!("{f}.list");
    }
    let mut no_opts = String::new();
    let mut depth = false;
    for c in source.chars() {
        match c {
            '[' => depth = true,
            ']' if depth => depth = false,
            c if !depth => no_opts.push(c),
            _ => {}
        }
    }
    let first = no_opts
        .split_whitespace()
        .map(|w| match w.find("://") {
            Some(i) if i > 0 && w[..i].chars().all(|c| c.is_alphanumeric() || c == '_') => {
                &w[i + 3..]
            }
            _ => w,
        })
        .find(|w| *w != "deb" && *w != "deb-src")
        .unwrap_or("");
    let first = first.split_once('@').map(|(_, h)| h).unwrap_or(first);
    let cleaned: Vec<&str> = first
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|p| !p.is_empty())
        .collect();
    format!("{}.list", cleaned.join("_"))
}

/// `name` as a path: in sources.list.d unless it holds a `/`.
fn expand_path(name: &str) -> String {
    if name.contains('/') {
        name.to_string()
    } else {
        format!("{LIST_DIR}/{name}")
    }
}

fn read_script() -> String {
    format!(
        "for f in {main} {dir}/*.list; do\n\
         [ -f \"$f\" ] || continue\n\
         printf '@@f %s ' \"$(printf %s \"$f\" | base64 -w0)\"; base64 -w0 < \"$f\" || exit 1; echo\n\
         done\necho '@@end'\n",
        main = shell_quote(MAIN_LIST),
        dir = shell_quote(LIST_DIR),
    )
}

fn parse_files(out: &str) -> Result<Vec<(String, String)>, super::OutputError> {
    let b64 = |s: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(s.trim())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|e| super::OutputError::Malformed(format!("bad output: {e}")))
    };
    let mut files = Vec::new();
    let mut done = false;
    for line in out.lines() {
        if line == "@@end" {
            done = true;
        } else if let Some(rest) = line.strip_prefix("@@f ") {
            let (p, c) = rest.split_once(' ').unwrap_or((rest, ""));
            files.push((b64(p)?, b64(c)?));
        }
    }
    if !done {
        return Err(super::OutputError::Incomplete);
    }
    Ok(files)
}

/// What `apply` does.
#[derive(Debug, PartialEq)]
pub struct ReposChange {
    /// Files to write, with their new text and whether they get the mode.
    write: Vec<(String, String, bool)>,
    /// Files to delete.
    remove: Vec<String>,
    /// The files as they were, to restore if the cache update fails.
    before: Vec<(String, String)>,
}

impl AptRepository {
    fn check_args(&self) -> Result<(), ModuleError> {
        if self.repo.trim().is_empty() {
            return Err(ModuleError::Args(
                "Please set argument 'repo' to a non-empty value".into(),
            ));
        }
        super::safe::one_line("repo", &self.repo)?;
        if self.repo.trim_start().starts_with("ppa:") {
            return Err(ModuleError::Args(
                "ppa: repositories need Launchpad (Ubuntu): drover does not support them".into(),
            ));
        }
        if let Some(f) = &self.filename {
            super::safe::one_line("filename", f)?;
            if f.is_empty() || f.split('/').any(|p| p == "..") {
                return Err(ModuleError::Args(format!("bad filename {f:?}")));
            }
        }
        self.mode()?;
        Ok(())
    }

    fn mode(&self) -> Result<Mode, ModuleError> {
        match &self.mode {
            None | Some(Value::Null) => Ok(Mode::Bits(0o644)),
            Some(v) => Mode::parse(v),
        }
    }

    /// The source as Ansible compares it; refuses disabled or invalid lines.
    fn source(&self) -> Result<String, ModuleError> {
        let l = Line::parse(&self.repo);
        if !l.valid || !l.enabled {
            return Err(ModuleError::failed(format!(
                "Invalid repository string: {}",
                self.repo.trim()
            )));
        }
        Ok(l.source)
    }

    /// The files after the change, and which of them get a new source.
    fn edit(&self, files: &[ListFile]) -> Result<(Vec<ListFile>, Vec<String>), ModuleError> {
        let source = self.source()?;
        let mut after: Vec<ListFile> = files.to_vec();
        let mut added_to = Vec::new();
        match self.state {
            Presence::Present => {
                let mut found = false;
                for f in &mut after {
                    for l in f.lines.iter_mut().filter(|l| l.valid && l.source == source) {
                        l.enabled = true;
                        found = true;
                    }
                }
                if !found {
                    let path = expand_path(&suggest_filename(&source, self.filename.as_deref()));
                    let line = Line {
                        valid: true,
                        enabled: true,
                        source,
                        comment: String::new(),
                    };
                    match after.iter_mut().find(|f| f.path == path) {
                        Some(f) => f.lines.push(line),
                        None => after.push(ListFile {
                            path: path.clone(),
                            lines: vec![line],
                        }),
                    }
                    added_to.push(path);
                }
            }
            Presence::Absent => {
                for f in &mut after {
                    f.lines
                        .retain(|l| !(l.valid && l.enabled && l.source == source));
                }
            }
        }
        Ok((after, added_to))
    }

    fn plan(
        &self,
        read: Vec<(String, String)>,
        diff: bool,
    ) -> Result<Plan<ReposChange>, ModuleError> {
        let files: Vec<ListFile> = read
            .iter()
            .map(|(p, text)| ListFile {
                path: p.clone(),
                lines: text.lines().map(Line::parse).collect(),
            })
            .collect();
        let (after, added_to) = self.edit(&files)?;
        let dumped = |fs: &[ListFile]| -> Vec<(String, String)> {
            fs.iter()
                .filter(|f| !f.lines.is_empty())
                .map(|f| (f.path.clone(), dump(&f.lines)))
                .collect()
        };
        let before_d = dumped(&files);
        let after_d = dumped(&after);
        let mut data = Map::new();
        data.insert("repo".into(), Value::from(self.repo.clone()));
        data.insert(
            "state".into(),
            Value::from(match self.state {
                Presence::Present => "present",
                Presence::Absent => "absent",
            }),
        );
        let names = |a: &[(String, String)], b: &[(String, String)]| -> Vec<String> {
            a.iter()
                .filter(|(p, _)| !b.iter().any(|(q, _)| q == p))
                .map(|(p, _)| p.clone())
                .collect()
        };
        let added = names(&after_d, &before_d);
        let removed = names(&before_d, &after_d);
        data.insert("sources_added".into(), Value::from(added.clone()));
        data.insert("sources_removed".into(), Value::from(removed.clone()));
        if before_d == after_d {
            return Ok(Plan::Unchanged(data));
        }
        let get = |set: &[(String, String)], p: &str| {
            set.iter().find(|(q, _)| q == p).map(|(_, t)| t.clone())
        };
        let write: Vec<(String, String, bool)> = after_d
            .iter()
            .filter(|(p, t)| get(&before_d, p).as_ref() != Some(t))
            .map(|(p, t)| (p.clone(), t.clone(), added_to.contains(p)))
            .collect();
        let diff = diff.then(|| {
            let mut d = Diff::default();
            for p in write.iter().map(|(p, _, _)| p).chain(&removed) {
                let before = read.iter().find(|(q, _)| q == p).map(|(_, t)| t.clone());
                d.before_header = if before.is_some() {
                    p.clone()
                } else {
                    "/dev/null".into()
                };
                d.after_header = if get(&after_d, p).is_some() {
                    p.clone()
                } else {
                    "/dev/null".into()
                };
                d.before.push_str(&before.unwrap_or_default());
                d.after.push_str(&get(&after_d, p).unwrap_or_default());
            }
            d
        });
        Ok(Plan::Change {
            change: ReposChange {
                write,
                remove: removed,
                before: read,
            },
            diff,
            data,
        })
    }

    /// `apt-get update`, tried `update_cache_retries` times with a
    /// doubling wait up to `update_cache_retry_max_delay`. A source that
    /// could not be fetched fails it, as it fails python-apt's update
    /// (apt-get itself only warns and exits 0).
    fn update_script(&self) -> String {
        let tries = self.update_cache_retries.unwrap_or(5).max(1);
        let max = self.update_cache_retry_max_delay.unwrap_or(12);
        format!(
            "i=0; d=1\nwhile :; do\n\
             if apt-get update -q >/dev/null 2>\"${{TMPDIR:-/tmp}}/.drover-apt-update.$$\" && ! grep -q -e '^E:' -e 'Failed to fetch' -e 'index files failed' \"${{TMPDIR:-/tmp}}/.drover-apt-update.$$\"; then rm -f \"${{TMPDIR:-/tmp}}/.drover-apt-update.$$\"; exit 0; fi\n\
             i=$((i+1)); if [ $i -ge {tries} ]; then cat \"${{TMPDIR:-/tmp}}/.drover-apt-update.$$\" >&2; rm -f \"${{TMPDIR:-/tmp}}/.drover-apt-update.$$\"; exit 1; fi\n\
             sleep $d; d=$((d*2)); [ $d -gt {max} ] && d={max}\ndone\n"
        )
    }
}

#[async_trait]
impl Module for AptRepository {
    const NAME: &'static str = "apt_repository";
    const ARGS: &'static [&'static str] = &[
        "repo",
        "state",
        "mode",
        "update_cache",
        "update-cache",
        "update_cache_retries",
        "update_cache_retry_max_delay",
        "filename",
        "codename",
        "validate_certs",
        "install_python_apt",
    ];
    type Change = ReposChange;

    fn validate(&self) -> Result<(), super::ArgError> {
        self.check_args()
            .map_err(|e| super::ArgError::from(e.to_string()))
    }

    fn reads(&self, _ctx: &ReadCtx<'_>) -> Result<Protocol, ModuleError> {
        self.check_args()?;
        // codename and validate_certs matter only for ppa: sources.
        let _ = (&self.codename, self.validate_certs, self.install_python_apt);
        Ok(Protocol::Declared(ReadSet::one(
            read_script(),
            Scope::Paths(vec![MAIN_LIST.into(), LIST_DIR.into()]),
        )))
    }

    fn decide(
        &self,
        observed: &super::Observed,
        ctx: &ReadCtx<'_>,
    ) -> Result<Decision<ReposChange>, ModuleError> {
        let read = super::reads::parse_read(observed.output(0)?, "the APT sources", parse_files)?;
        self.plan(read, ctx.diff).map(Decision::Plan)
    }

    fn touches(&self, _change: &ReposChange) -> super::Touched {
        // apt-get update changes the package lists too.
        super::Touched::Everything
    }

    async fn apply(&self, ctx: &ModuleCtx<'_>, change: ReposChange) -> Result<Map, ModuleError> {
        let mode = self.mode()?;
        for (path, text, new_source) in &change.write {
            let attrs = Attrs {
                mode: new_source.then(|| mode.clone()),
                ..Attrs::default()
            };
            write_file_atomic(ctx.remote, path, text.as_bytes(), &attrs, false).await?;
        }
        if !change.remove.is_empty() {
            let paths: Vec<String> = change.remove.iter().map(|p| shell_quote(p)).collect();
            let out = ctx
                .remote
                .exec(&format!("rm -f -- {}", paths.join(" ")), b"")
                .await?;
            if out.status != 0 {
                return Err(ModuleError::failed(format!(
                    "removing {} failed: {}",
                    change.remove.join(", "),
                    out.stderr_str().trim()
                )));
            }
        }
        if self.update_cache {
            let out = ctx.remote.exec(&self.update_script(), b"").await?;
            if out.status != 0 {
                // As Ansible: put the sources back as they were.
                for (path, _, _) in &change.write {
                    match change.before.iter().find(|(p, _)| p == path) {
                        Some((_, text)) => {
                            write_file_atomic(
                                ctx.remote,
                                path,
                                text.as_bytes(),
                                &Attrs::default(),
                                false,
                            )
                            .await?;
                        }
                        None => {
                            ctx.remote
                                .exec(&format!("rm -f -- {}", shell_quote(path)), b"")
                                .await?;
                        }
                    }
                }
                for path in &change.remove {
                    if let Some((_, text)) = change.before.iter().find(|(p, _)| p == path) {
                        write_file_atomic(
                            ctx.remote,
                            path,
                            text.as_bytes(),
                            &Attrs::default(),
                            false,
                        )
                        .await?;
                    }
                }
                return Err(ModuleError::failed(format!(
                    "Failed to update apt cache after {} retries: {}",
                    self.update_cache_retries.unwrap_or(5),
                    out.stderr_str().trim()
                )));
            }
        }
        Ok(Map::new())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::modules::testutil::assert_args_complete;

    fn module(v: Value) -> AptRepository {
        serde_json::from_value(v).expect("args")
    }

    #[test]
    fn args() {
        assert_args_complete::<AptRepository>();
    }

    #[test]
    fn file_names_are_derived_as_ansible_derives_them() {
        assert_eq!(
            suggest_filename(
                "deb [arch=amd64 signed-by=/etc/apt/keyrings/docker.gpg] https://download.docker.com/linux/debian bookworm stable",
                None
            ),
            "download_docker_com_linux_debian.list"
        );
        assert_eq!(
            suggest_filename(
                "deb http://user:pw@archive.raspberrypi.com/debian/ bookworm main",
                None
            ),
            "archive_raspberrypi_com_debian.list"
        );
        assert_eq!(
            suggest_filename("deb http://x/ y z", Some("google-chrome")),
            "google-chrome.list"
        );
        assert_eq!(expand_path("a.list"), "/etc/apt/sources.list.d/a.list");
        assert_eq!(
            expand_path("/etc/apt/sources.list"),
            "/etc/apt/sources.list"
        );
    }

    #[test]
    fn lines_parse_and_render_as_ansible_writes_them() {
        let l = Line::parse("#deb   http://x  y z # note");
        assert_eq!(
            l,
            Line {
                valid: true,
                enabled: false,
                source: "deb http://x y z".into(),
                comment: "note".into()
            }
        );
        assert_eq!(l.render(), "# deb http://x y z # note\n");
        assert!(!Line::parse("hello").valid);
        assert_eq!(Line::parse("").render(), "\n");
    }

    const REPO: &str = "deb http://deb.example/debian bookworm main";

    #[test]
    fn a_new_source_gets_its_own_file_and_a_second_run_changes_nothing() {
        let m = module(json!({"repo": REPO, "update_cache": false}));
        let read = vec![(
            MAIN_LIST.to_string(),
            "deb http://deb.debian.org/debian bookworm main\n".to_string(),
        )];
        let Plan::Change { change, diff, data } = m.plan(read.clone(), true).expect("plan") else {
            panic!("a new source is a change");
        };
        let path = "/etc/apt/sources.list.d/deb_example_debian.list";
        assert_eq!(
            change.write,
            vec![(path.to_string(), format!("{REPO}\n"), true)]
        );
        assert_eq!(data["sources_added"], json!([path]));
        let diff = diff.expect("diff");
        assert_eq!(
            (diff.before_header.as_str(), diff.after.as_str()),
            ("/dev/null", &*format!("{REPO}\n"))
        );
        let mut read = read;
        read.push((path.to_string(), format!("{REPO}\n")));
        assert!(matches!(m.plan(read, false), Ok(Plan::Unchanged(_))));
    }

    #[test]
    fn a_disabled_copy_is_enabled_and_absent_removes_the_file_it_empties() {
        let m = module(json!({"repo": REPO}));
        let read = vec![(MAIN_LIST.to_string(), format!("# {REPO}\n"))];
        let Ok(Plan::Change { change, .. }) = m.plan(read, false) else {
            panic!("change");
        };
        assert_eq!(
            change.write,
            vec![(MAIN_LIST.to_string(), format!("{REPO}\n"), false)]
        );
        let m = module(json!({"repo": format!("{REPO}  "), "state": "absent"}));
        let path = "/etc/apt/sources.list.d/x.list".to_string();
        let Ok(Plan::Change { change, data, .. }) =
            m.plan(vec![(path.clone(), format!("{REPO} # c\n"))], false)
        else {
            panic!("change");
        };
        assert_eq!(change.remove, vec![path.clone()]);
        assert_eq!(data["sources_removed"], json!([path]));
        assert!(matches!(m.plan(vec![], false), Ok(Plan::Unchanged(_))));
    }

    #[test]
    fn refuses_ppa_and_invalid_sources() {
        assert!(module(json!({"repo": "ppa:x/y"})).check_args().is_err());
        assert!(module(json!({"repo": ""})).check_args().is_err());
        assert!(module(json!({"repo": "deb x\ndeb y"}))
            .check_args()
            .is_err());
        assert!(module(json!({"repo": "rpm http://x"})).source().is_err());
        assert!(module(json!({"repo": REPO, "filename": "../x"}))
            .check_args()
            .is_err());
    }
}
