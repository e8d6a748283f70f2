//! `cron` (ansible.builtin.cron): jobs and variables in a user's crontab
//! (`crontab -l` / `crontab -`) or in a file of `/etc/cron.d`. Jobs are
//! marked with a `#Ansible: NAME` comment line as Ansible writes them, so
//! crontabs stay interoperable. One declared read; the edit is pure
//! ([`edit`]), with Ansible's rules (an unnamed identical job is adopted,
//! a missing final newline is a change, an emptied cron_file is removed).

use async_trait::async_trait;
use base64::Engine as _;
use serde::Deserialize;

use super::args::{bool_ish, opt_string_ish};
use super::fs::{write_file_atomic, Attrs, Mode};
use super::safe;
use super::{
    Decision, Diff, Module, ModuleCtx, ModuleError, Observed, Plan, Protocol, ReadCtx, ReadSet,
    Scope, Touched,
};
use crate::transport::shell_quote;
use crate::{Map, Value};

/// The marker comment before each job Ansible manages.
const MARK: &str = "#Ansible: ";

/// Arguments of `cron`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cron {
    /// The job's (or variable's) name, in its marker comment.
    #[serde(deserialize_with = "super::args::string_ish")]
    name: String,
    /// Whose crontab (default: the user the task runs as).
    #[serde(default, deserialize_with = "opt_string_ish")]
    user: Option<String>,
    /// The command (or the variable's value with `env`).
    #[serde(default, alias = "value", deserialize_with = "opt_string_ish")]
    job: Option<String>,
    /// A file of `/etc/cron.d` (or an absolute path) instead of a crontab.
    #[serde(default, deserialize_with = "opt_string_ish")]
    cron_file: Option<String>,
    /// present or absent.
    #[serde(default)]
    state: super::args::Presence,
    /// Keep a copy of the crontab as it was before the change.
    #[serde(default, deserialize_with = "bool_ish")]
    backup: bool,
    /// Minute field.
    #[serde(default = "star", deserialize_with = "super::args::string_ish")]
    minute: String,
    /// Hour field.
    #[serde(default = "star", deserialize_with = "super::args::string_ish")]
    hour: String,
    /// Day of the month field.
    #[serde(
        default = "star",
        alias = "dom",
        deserialize_with = "super::args::string_ish"
    )]
    day: String,
    /// Month field.
    #[serde(default = "star", deserialize_with = "super::args::string_ish")]
    month: String,
    /// Day of the week field.
    #[serde(
        default = "star",
        alias = "dow",
        deserialize_with = "super::args::string_ish"
    )]
    weekday: String,
    /// `@reboot`, `@daily`, ... instead of the five fields.
    #[serde(default)]
    special_time: Option<Special>,
    /// Write the job commented out.
    #[serde(default, deserialize_with = "bool_ish")]
    disabled: bool,
    /// Manage a variable (`NAME="job"`) rather than a job.
    #[serde(default, deserialize_with = "bool_ish")]
    env: bool,
    /// With `env`: put a new variable after this one.
    #[serde(default, deserialize_with = "opt_string_ish")]
    insertafter: Option<String>,
    /// With `env`: put a new variable before this one.
    #[serde(default, deserialize_with = "opt_string_ish")]
    insertbefore: Option<String>,
}

fn star() -> String {
    "*".into()
}

/// `special_time` values.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Special {
    Reboot,
    Yearly,
    Annually,
    Monthly,
    Weekly,
    Daily,
    Hourly,
}

impl Special {
    fn word(self) -> &'static str {
        match self {
            Special::Reboot => "reboot",
            Special::Yearly => "yearly",
            Special::Annually => "annually",
            Special::Monthly => "monthly",
            Special::Weekly => "weekly",
            Special::Daily => "daily",
            Special::Hourly => "hourly",
        }
    }
}

/// What `apply` does.
#[derive(Debug, PartialEq, Eq)]
pub enum CronChange {
    /// Write this crontab (or cron_file) content; `old` is kept for `backup`.
    Write {
        /// The new content.
        content: String,
        /// The content before, for `backup`.
        old: String,
    },
    /// Remove the emptied cron_file.
    RemoveFile,
}

/// What the read found.
#[derive(Debug, PartialEq, Eq)]
struct Found {
    /// The content (crontab header lines left out), `""` when none.
    existing: String,
    /// Does the cron_file exist?
    file_exists: bool,
}

impl Cron {
    fn is_present(&self) -> bool {
        self.state == super::args::Presence::Present
    }

    /// The cron_file's path (relative names live in /etc/cron.d).
    fn file(&self) -> Option<String> {
        self.cron_file.as_ref().map(|f| {
            if f.starts_with('/') {
                f.clone()
            } else {
                format!("/etc/cron.d/{f}")
            }
        })
    }

    fn check_args(&self) -> Result<(), ModuleError> {
        safe::one_line("name", &self.name)?;
        for (arg, v) in [
            ("minute", &self.minute),
            ("hour", &self.hour),
            ("day", &self.day),
            ("month", &self.month),
            ("weekday", &self.weekday),
        ] {
            safe::one_line(arg, v)?;
        }
        if let Some(j) = &self.job {
            safe::one_line("job", j.trim_matches(['\r', '\n']))?;
        }
        if let Some(u) = &self.user {
            safe::name("user", u)?;
        }
        if let Some(f) = &self.cron_file {
            safe::one_line("cron_file", f)?;
            if self.file().as_deref() == Some("/etc/crontab") {
                return Err(ModuleError::failed(
                    "Will not manage /etc/crontab via cron_file, see documentation.",
                ));
            }
        }
        if self.special_time.is_some()
            && [
                &self.minute,
                &self.hour,
                &self.day,
                &self.month,
                &self.weekday,
            ]
            .iter()
            .any(|f| f.as_str() != "*")
        {
            return Err(ModuleError::failed(
                "You cannot combine special_time with any of the time or day/date parameters.",
            ));
        }
        if self.is_present() {
            if self.cron_file.is_some() && self.user.is_none() {
                return Err(ModuleError::failed(
                    "To use cron_file=... parameter you must specify user=... as well",
                ));
            }
            if self.job.is_none() {
                return Err(ModuleError::failed(
                    "You must specify 'job' to install a new cron job or variable",
                ));
            }
            if (self.insertafter.is_some() || self.insertbefore.is_some()) && !self.env {
                return Err(ModuleError::failed(
                    "Insertafter and insertbefore parameters are valid only with env=yes",
                ));
            }
        }
        if self.env && self.name.contains(' ') {
            return Err(ModuleError::failed("Invalid name for environment variable"));
        }
        Ok(())
    }

    /// The job line as Ansible writes it.
    fn job_line(&self) -> String {
        let job = self
            .job
            .as_deref()
            .unwrap_or_default()
            .trim_matches(['\r', '\n']);
        let off = if self.disabled { "#" } else { "" };
        let user = match (&self.cron_file, &self.user) {
            (Some(_), Some(u)) => format!("{u} "),
            _ => String::new(),
        };
        match self.special_time {
            Some(s) => format!("{off}@{} {user}{job}", s.word()),
            None => format!(
                "{off}{} {} {} {} {} {user}{job}",
                self.minute, self.hour, self.day, self.month, self.weekday
            ),
        }
    }

    /// The diff headers' label.
    fn label(&self) -> String {
        match (self.file(), &self.user) {
            (Some(f), _) => f,
            (None, Some(u)) => format!("crontab for user \"{u}\""),
            (None, None) => "crontab".into(),
        }
    }

    fn read_script(&self) -> String {
        match self.file() {
            Some(f) => format!(
                "f={}; if [ -f \"$f\" ]; then printf '@@file '; base64 -w0 < \"$f\" || exit 1; echo; else echo @@nofile; fi\n",
                shell_quote(&f)
            ),
            None => format!(
                "command -v crontab >/dev/null 2>&1 || {{ echo 'Failed to find required executable \"crontab\"' >&2; exit 3; }}\n\
                 {}o=$(crontab $u -l 2>/dev/null; rc=$?; echo x; exit $rc); rc=$?; o=${{o%x}}\n\
                 if [ $rc -gt 1 ]; then echo 'Unable to read crontab' >&2; exit 1; fi\n\
                 printf '@@file '; printf '%s' \"$o\" | base64 -w0; echo\n",
                self.user_opt()
            ),
        }
    }

    /// Sets `u` to `-u USER` when the crontab is another user's.
    fn user_opt(&self) -> String {
        match &self.user {
            Some(u) => format!(
                "u=; if [ \"$(id -un)\" != {q} ]; then u='-u '{q}; fi\n",
                q = shell_quote(u)
            ),
            None => "u=\n".into(),
        }
    }
}

/// The read's output: `@@file BASE64` or `@@nofile`.
fn parse(out: &str) -> Result<Found, super::OutputError> {
    for line in out.lines() {
        if line == "@@nofile" {
            return Ok(Found {
                existing: String::new(),
                file_exists: false,
            });
        }
        if let Some(b) = line.strip_prefix("@@file") {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .map_err(|e| super::OutputError::Malformed(format!("bad output: {e}")))?;
            return Ok(Found {
                existing: String::from_utf8_lossy(&bytes).into_owned(),
                file_exists: true,
            });
        }
    }
    Err(super::OutputError::Incomplete)
}

/// The lines of a user's crontab without the header `crontab` may print
/// (Ansible drops it among the first three lines), and the text without it.
fn strip_header(existing: &str) -> (Vec<String>, String) {
    let mut text = existing.to_string();
    let mut lines = Vec::new();
    for (i, l) in existing.lines().enumerate() {
        let header = i <= 2
            && (l.starts_with("# DO NOT EDIT THIS FILE - edit the master and reinstall.")
                || (l.starts_with("# (/tmp/") && l.contains("installed on") && l.ends_with(')'))
                || (l.starts_with("# (") && l.contains("version") && l.ends_with(')')));
        if header {
            for cut in [format!("{l}\n"), format!("{l}\r"), l.to_string()] {
                if let Some(pos) = text.find(&cut) {
                    text.replace_range(pos..pos + cut.len(), "");
                    break;
                }
            }
        } else {
            lines.push(l.to_string());
        }
    }
    (lines, text)
}

/// The new lines and whether anything changed, as Ansible's cron edits.
fn edit(m: &Cron, lines: &mut Vec<String>) -> Result<bool, ModuleError> {
    let mut changed = false;
    if m.env {
        let decl = format!("{}=\"{}\"", m.name, m.job.as_deref().unwrap_or_default());
        let prefix = format!("{}=", m.name);
        let old = lines.iter().find(|l| l.starts_with(&prefix)).cloned();
        if m.is_present() {
            match old {
                None => {
                    let other = m.insertafter.as_ref().or(m.insertbefore.as_ref());
                    match other {
                        None => lines.insert(0, decl),
                        Some(o) => {
                            let p = format!("{o}=");
                            let i =
                                lines
                                    .iter()
                                    .position(|l| l.starts_with(&p))
                                    .ok_or_else(|| {
                                        ModuleError::failed(format!(
                                            "Variable named '{o}' not found."
                                        ))
                                    })?;
                            let at = if m.insertafter.is_some() { i + 1 } else { i };
                            lines.insert(at, decl);
                        }
                    }
                    changed = true;
                }
                Some(o) if o != decl => {
                    for l in lines.iter_mut().filter(|l| l.starts_with(&prefix)) {
                        l.clone_from(&decl);
                    }
                    changed = true;
                }
                Some(_) => {}
            }
        } else if old.is_some() {
            lines.retain(|l| !l.starts_with(&prefix));
            changed = true;
        }
        return Ok(changed);
    }
    let mark = format!("{MARK}{}", m.name);
    if m.is_present() {
        let job = m.job_line();
        let found = find_job(lines, &m.name, Some(&job));
        match found {
            None => {
                lines.push(mark);
                lines.push(job);
                changed = true;
            }
            Some((old, adopted)) => {
                if old != job || adopted {
                    replace_job(lines, &mark, Some(&job));
                    changed = true;
                }
            }
        }
    } else if find_job(lines, &m.name, None).is_some() {
        replace_job(lines, &mark, None);
        changed = true;
    }
    Ok(changed)
}

/// The job line after `#Ansible: name`; else, given `job`, an identical
/// unnamed job, which gets the marker (adopted: `true`).
fn find_job(lines: &mut Vec<String>, name: &str, job: Option<&str>) -> Option<(String, bool)> {
    let mut comment: Option<&str> = None;
    for l in lines.iter() {
        if let Some(c) = comment {
            if c == name {
                return Some((l.clone(), false));
            }
            comment = None;
        } else if let Some(c) = l.strip_prefix(MARK) {
            comment = Some(c);
        }
    }
    let job = job?;
    let i = lines.iter().position(|l| l == job)?;
    let prev = i.checked_sub(1).and_then(|p| lines.get(p)).cloned();
    match prev {
        Some(p) if p.starts_with(MARK) => {
            // Ansible: a job under an empty marker takes the name.
            if p == MARK && !name.is_empty() {
                lines[i - 1] = format!("{MARK}{name}");
                return Some((job.to_string(), true));
            }
            None
        }
        _ => {
            lines.insert(i, format!("{MARK}{name}"));
            Some((job.to_string(), true))
        }
    }
}

/// Every `mark` line and the line after it replaced by `mark` + `job`, or
/// dropped.
fn replace_job(lines: &mut Vec<String>, mark: &str, job: Option<&str>) {
    let mut out = Vec::with_capacity(lines.len());
    let mut after_mark = false;
    for l in lines.drain(..) {
        if after_mark {
            if let Some(j) = job {
                out.push(mark.to_string());
                out.push(j.to_string());
            }
            after_mark = false;
        } else if l == mark {
            after_mark = true;
        } else {
            out.push(l);
        }
    }
    *lines = out;
}

fn render(lines: &[String]) -> String {
    let s = lines.join("\n");
    if s.is_empty() {
        s
    } else {
        format!("{}\n", s.trim_end_matches(['\r', '\n']))
    }
}

impl Cron {
    fn plan(&self, found: &Found) -> Result<Plan<CronChange>, ModuleError> {
        let (mut lines, existing) = if self.cron_file.is_some() {
            (
                found.existing.lines().map(str::to_string).collect(),
                found.existing.clone(),
            )
        } else {
            strip_header(&found.existing)
        };
        let mut changed = edit(self, &mut lines)?;
        let mut data = Map::new();
        if let Some(f) = &self.cron_file {
            data.insert("cron_file".into(), Value::from(f.clone()));
        }
        // An emptied cron_file is removed.
        if !self.is_present()
            && changed
            && !self.env
            && self.cron_file.is_some()
            && lines.iter().all(|l| l.trim().is_empty())
        {
            data.insert("state".into(), Value::from("absent"));
            if !found.file_exists {
                return Ok(Plan::Unchanged(data));
            }
            return Ok(Plan::Change {
                change: CronChange::RemoveFile,
                diff: Some(Diff {
                    before_header: self.label(),
                    after_header: "/dev/null".into(),
                    before: existing,
                    after: String::new(),
                }),
                data,
            });
        }
        if !changed && !existing.is_empty() && !existing.ends_with(['\n', '\r']) {
            changed = true;
        }
        let names = |f: &dyn Fn(&str) -> Option<String>| {
            Value::Array(lines.iter().filter_map(|l| f(l)).map(Value::from).collect())
        };
        data.insert(
            "jobs".into(),
            names(&|l| l.strip_prefix(MARK).map(str::to_string)),
        );
        data.insert(
            "envs".into(),
            names(&|l| {
                let (k, _) = l.split_once('=')?;
                (!k.is_empty() && !k.contains(char::is_whitespace)).then(|| k.to_string())
            }),
        );
        if !changed {
            return Ok(Plan::Unchanged(data));
        }
        let content = render(&lines);
        Ok(Plan::Change {
            diff: Some(Diff {
                before_header: self.label(),
                after_header: self.label(),
                before: existing.clone(),
                after: content.clone(),
            }),
            change: CronChange::Write {
                content,
                old: existing,
            },
            data,
        })
    }
}

#[async_trait]
impl Module for Cron {
    const NAME: &'static str = "cron";
    const ARGS: &'static [&'static str] = &[
        "name",
        "user",
        "job",
        "value",
        "cron_file",
        "state",
        "backup",
        "minute",
        "hour",
        "day",
        "dom",
        "month",
        "weekday",
        "dow",
        "special_time",
        "disabled",
        "env",
        "insertafter",
        "insertbefore",
    ];
    type Change = CronChange;

    fn validate(&self) -> Result<(), super::ArgError> {
        if self.insertafter.is_some() && self.insertbefore.is_some() {
            return Err("parameters are mutually exclusive: insertafter|insertbefore".into());
        }
        Ok(())
    }

    fn reads(&self, _ctx: &ReadCtx<'_>) -> Result<Protocol, ModuleError> {
        self.check_args()?;
        let scope = match self.file() {
            Some(f) => Scope::Paths(vec![f.into()]),
            None => Scope::Host,
        };
        Ok(Protocol::Declared(ReadSet::one(self.read_script(), scope)))
    }

    fn decide(
        &self,
        observed: &Observed,
        _ctx: &ReadCtx<'_>,
    ) -> Result<Decision<CronChange>, ModuleError> {
        let out = observed.output(0)?;
        let found = super::reads::parse_read(out, "the crontab", parse)?;
        self.plan(&found).map(Decision::Plan)
    }

    fn touches(&self, _change: &CronChange) -> Touched {
        match self.file() {
            Some(f) => Touched::Paths(vec![f]),
            None => Touched::Everything,
        }
    }

    async fn apply(&self, ctx: &ModuleCtx<'_>, change: CronChange) -> Result<Map, ModuleError> {
        let mut data = Map::new();
        let (content, old) = match change {
            CronChange::RemoveFile => {
                let f = self.file().unwrap_or_default();
                super::fs::run_checked(
                    ctx.remote,
                    &format!("rm -f -- {}", shell_quote(&f)),
                    &format!("removing {f}"),
                )
                .await?;
                return Ok(data);
            }
            CronChange::Write { content, old } => (content, old),
        };
        if self.backup {
            let out = ctx
                .remote
                .exec(
                    "f=$(mktemp \"${TMPDIR:-/tmp}/crontabXXXXXXXX\") && cat > \"$f\" && echo \"$f\"",
                    old.as_bytes(),
                )
                .await?;
            if out.status != 0 {
                return Err(ModuleError::failed(format!(
                    "saving the crontab's backup failed: {}",
                    out.stderr_str().trim()
                )));
            }
            data.insert(
                "backup_file".into(),
                Value::from(out.stdout_str().trim().to_string()),
            );
        }
        match self.file() {
            Some(f) => {
                let attrs = Attrs {
                    mode: Some(Mode::Bits(0o644)),
                    ..Attrs::default()
                };
                write_file_atomic(ctx.remote, &f, content.as_bytes(), &attrs, false).await?;
            }
            None => {
                let out = ctx
                    .remote
                    .exec(
                        &format!("{}crontab $u -", self.user_opt()),
                        content.as_bytes(),
                    )
                    .await?;
                if out.status != 0 {
                    let mut d = Map::new();
                    d.insert("rc".into(), Value::from(out.status));
                    d.insert("stderr".into(), Value::from(out.stderr_str()));
                    return Err(ModuleError::Failed {
                        msg: format!(
                            "Failed to install new cronfile: {}",
                            out.stderr_str().trim()
                        ),
                        data: d,
                    });
                }
            }
        }
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::modules::testutil::assert_args_complete;

    fn cron(v: Value) -> Cron {
        serde_json::from_value(v).expect("args")
    }

    fn after(m: &Cron, existing: &str) -> Option<String> {
        let found = Found {
            existing: existing.into(),
            file_exists: true,
        };
        match m.plan(&found).expect("plan") {
            Plan::Change {
                change: CronChange::Write { content, .. },
                ..
            } => Some(content),
            Plan::Change { .. } => Some("<removed>".into()),
            _ => None,
        }
    }

    #[test]
    fn args() {
        assert_args_complete::<Cron>();
    }

    #[test]
    fn adds_a_named_job_once_as_ansible_writes_it() {
        let m =
            cron(json!({"name": "backup", "minute": "0", "hour": "5", "job": "/usr/bin/backup"}));
        let added = after(&m, "MAILTO=x\n").expect("added");
        assert_eq!(
            added,
            "MAILTO=x\n#Ansible: backup\n0 5 * * * /usr/bin/backup\n"
        );
        assert_eq!(after(&m, &added), None, "converged");
        let changed =
            cron(json!({"name": "backup", "minute": "30", "hour": "5", "job": "/usr/bin/backup"}));
        assert_eq!(
            after(&changed, &added).as_deref(),
            Some("MAILTO=x\n#Ansible: backup\n30 5 * * * /usr/bin/backup\n")
        );
        let gone = cron(json!({"name": "backup", "state": "absent"}));
        assert_eq!(after(&gone, &added).as_deref(), Some("MAILTO=x\n"));
        assert_eq!(after(&gone, "MAILTO=x\n"), None);
    }

    #[test]
    fn special_time_disabled_cron_file_and_header() {
        let m = cron(json!({"name": "r", "special_time": "reboot", "job": "/x", "disabled": true}));
        assert_eq!(after(&m, "").as_deref(), Some("#Ansible: r\n#@reboot /x\n"));
        let f = cron(
            json!({"name": "r", "job": "/x", "cron_file": "app", "user": "root", "weekday": "1"}),
        );
        assert_eq!(f.file().as_deref(), Some("/etc/cron.d/app"));
        assert_eq!(
            after(&f, "").as_deref(),
            Some("#Ansible: r\n* * * * 1 root /x\n")
        );
        let gone = cron(json!({"name": "r", "cron_file": "app", "state": "absent"}));
        assert_eq!(
            after(&gone, "#Ansible: r\n* * * * 1 root /x\n").as_deref(),
            Some("<removed>")
        );
        let hdr = "# DO NOT EDIT THIS FILE - edit the master and reinstall.\n# (/tmp/crontab.X installed on Mon)\n# (Cron version -- $Id$)\n#Ansible: r\n#@reboot /x\n";
        assert_eq!(
            after(&m, hdr),
            None,
            "the header is not part of the crontab"
        );
        let both = cron(json!({"name": "r", "special_time": "daily", "hour": "1", "job": "/x"}));
        assert!(both.check_args().is_err());
        let no_user = cron(json!({"name": "r", "job": "/x", "cron_file": "app"}));
        assert!(no_user.check_args().is_err());
    }

    #[test]
    fn an_identical_unnamed_job_is_adopted_and_a_missing_newline_is_a_change() {
        let m = cron(json!({"name": "b", "job": "/b"}));
        assert_eq!(
            after(&m, "* * * * * /b\n").as_deref(),
            Some("#Ansible: b\n* * * * * /b\n")
        );
        assert_eq!(
            after(&m, "#Ansible: b\n* * * * * /b").as_deref(),
            Some("#Ansible: b\n* * * * * /b\n")
        );
    }

    #[test]
    fn env_variables_insert_update_remove() {
        let m = cron(json!({"name": "PATH", "env": true, "job": "/bin"}));
        assert_eq!(
            after(&m, "#Ansible: a\n* * * * * /a\n").as_deref(),
            Some("PATH=\"/bin\"\n#Ansible: a\n* * * * * /a\n")
        );
        let after_shell =
            cron(json!({"name": "B", "env": true, "job": "1", "insertafter": "SHELL"}));
        assert_eq!(
            after(&after_shell, "SHELL=\"/bin/sh\"\nX=1\n").as_deref(),
            Some("SHELL=\"/bin/sh\"\nB=\"1\"\nX=1\n")
        );
        let missing = cron(json!({"name": "B", "env": true, "job": "1", "insertbefore": "NOPE"}));
        assert!(missing
            .plan(&Found {
                existing: "X=1\n".into(),
                file_exists: true
            })
            .is_err());
        let upd = cron(json!({"name": "X", "env": true, "job": "2"}));
        assert_eq!(after(&upd, "X=\"1\"\n").as_deref(), Some("X=\"2\"\n"));
        let rm = cron(json!({"name": "X", "env": true, "state": "absent"}));
        assert_eq!(after(&rm, "X=\"1\"\nY=2\n").as_deref(), Some("Y=2\n"));
    }

    #[test]
    fn parses_the_read() {
        assert_eq!(
            parse("@@file YQo=\n"),
            Ok(Found {
                existing: "a\n".into(),
                file_exists: true
            })
        );
        assert_eq!(parse("@@nofile\n").map(|f| f.file_exists), Ok(false));
        assert_eq!(parse(""), Err(super::super::OutputError::Incomplete));
    }
}
