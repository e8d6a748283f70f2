//! `sysctl` (ansible.posix.sysctl): keep a kernel parameter in a sysctl
//! file and, when asked, set its live value. The file and the live value
//! (`/proc/sys/...`) are read in one exec; the file is edited locally and
//! written atomically.

use async_trait::async_trait;
use base64::Engine as _;
use serde::Deserialize;

use super::args::{bool_ish, opt_string_ish, yes};
use super::fs::{write_file_atomic, Attrs};
use super::safe;
use super::{
    Decision, Diff, Module, ModuleCtx, ModuleError, Plan, Protocol, ReadCtx, ReadSet, Scope,
};
use crate::transport::shell_quote;
use crate::{Map, Value};

/// Arguments of `sysctl`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sysctl {
    /// Dotted name of the parameter (`net.ipv4.ip_forward`).
    #[serde(alias = "key")]
    name: String,
    /// Wanted value (required with `state: present`).
    #[serde(default, alias = "val", deserialize_with = "opt_string_ish")]
    value: Option<String>,
    /// `present` or `absent` (from the file; the live value is left alone).
    #[serde(default)]
    state: State,
    /// The file that keeps the setting.
    #[serde(default = "default_file")]
    sysctl_file: String,
    /// Set the live value when the file changed and the live value differs.
    #[serde(default = "yes", deserialize_with = "bool_ish")]
    reload: bool,
    /// Set the live value whenever it differs, even if the file matches.
    #[serde(default, deserialize_with = "bool_ish")]
    sysctl_set: bool,
    /// Do not fail on keys the kernel does not know.
    #[serde(default, deserialize_with = "bool_ish")]
    ignoreerrors: bool,
}

fn default_file() -> String {
    "/etc/sysctl.conf".into()
}

/// Whether the setting should be in the file.
#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum State {
    #[default]
    Present,
    Absent,
}

/// What `apply` does.
#[derive(Debug, PartialEq)]
pub struct SysctlChange {
    /// New file content, when the file changes.
    file: Option<String>,
    /// Run `sysctl -w name=value`.
    set_live: bool,
}

/// Values compare with runs of whitespace folded (the kernel prints tabs).
fn normalize(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The value the file gives `name` (the last assignment wins, as for `sysctl -p`).
fn file_value(content: &str, name: &str) -> Option<String> {
    content
        .lines()
        .filter_map(|l| parse_line(l, name))
        .next_back()
        .map(normalize)
}

/// The value of `name = value` / `name=value` when the line sets `name`.
fn parse_line<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let t = line.trim();
    if t.starts_with('#') || t.starts_with(';') {
        return None;
    }
    let (k, v) = t.split_once('=')?;
    // A leading `-` tells `sysctl -p` to ignore errors for that key.
    let k = k.trim();
    (k == name || k.strip_prefix('-').map(str::trim) == Some(name)).then(|| v.trim())
}

/// The file with `name` set to `value` (first assignment replaced, later
/// ones dropped, appended when absent), or with `name` removed (`None`).
fn edit_file(content: &str, name: &str, value: Option<&str>) -> String {
    let mut out = String::new();
    let mut done = false;
    for line in content.lines() {
        if parse_line(line, name).is_some() {
            if let (Some(v), false) = (value, done) {
                out.push_str(&format!("{name}={v}\n"));
                done = true;
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    if let (Some(v), false) = (value, done) {
        out.push_str(&format!("{name}={v}\n"));
    }
    out
}

/// What was read from the host.
#[derive(Debug, Default, PartialEq)]
struct Observed {
    /// File content (`None`: no file).
    file: Option<String>,
    /// Live value (`None`: no such key in /proc/sys).
    live: Option<String>,
}

/// `/proc/sys/...` for a dotted (or slashed) name.
fn proc_path(name: &str) -> String {
    if name.contains('/') {
        format!("/proc/sys/{}", name.trim_start_matches('/'))
    } else {
        format!("/proc/sys/{}", name.replace('.', "/"))
    }
}

fn read_script(file: &str, name: &str) -> String {
    format!(
        "f={}; p={}\n\
         if [ -f \"$f\" ]; then printf '@@file '; base64 -w0 < \"$f\" || exit 1; echo; else echo '@@nofile'; fi\n\
         if [ -r \"$p\" ] && [ -f \"$p\" ]; then printf '@@live '; base64 -w0 < \"$p\"; echo; else echo '@@nolive'; fi\n",
        shell_quote(file),
        shell_quote(&proc_path(name))
    )
}

fn parse_observed(out: &str) -> Result<Observed, super::OutputError> {
    let b64 = |s: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(s.trim())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|e| super::OutputError::Malformed(format!("bad output: {e}")))
    };
    let mut o = Observed::default();
    let mut seen = (false, false);
    for line in out.lines() {
        if let Some(d) = line.strip_prefix("@@file ") {
            o.file = Some(b64(d)?);
            seen.0 = true;
        } else if line == "@@file" || line == "@@nofile" {
            o.file = (line == "@@file").then(String::new);
            seen.0 = true;
        } else if let Some(d) = line.strip_prefix("@@live ") {
            o.live = Some(normalize(&b64(d)?));
            seen.1 = true;
        } else if line == "@@live" || line == "@@nolive" {
            o.live = (line == "@@live").then(String::new);
            seen.1 = true;
        }
    }
    if seen != (true, true) {
        return Err(super::OutputError::Incomplete);
    }
    Ok(o)
}

impl Sysctl {
    /// Decide from what was read.
    fn decide(&self, obs: &Observed) -> Result<Option<SysctlChange>, ModuleError> {
        let current = obs.file.as_deref().unwrap_or("");
        match self.state {
            State::Absent => {
                let present = file_value(current, &self.name).is_some();
                Ok(present.then(|| SysctlChange {
                    file: Some(edit_file(current, &self.name, None)),
                    set_live: false,
                }))
            }
            State::Present => {
                let value = self.value.as_deref().ok_or_else(|| {
                    ModuleError::Args("value is required with state=present".into())
                })?;
                let want = normalize(value);
                if want.is_empty() {
                    return Err(ModuleError::Args("value cannot be empty".into()));
                }
                let file_changed = file_value(current, &self.name).as_deref() != Some(&want);
                let wants_live = self.sysctl_set || (self.reload && file_changed);
                let set_live = match &obs.live {
                    None if wants_live && !self.ignoreerrors => {
                        return Err(ModuleError::failed(format!(
                            "setting {} failed: no such key {}",
                            self.name,
                            proc_path(&self.name)
                        )))
                    }
                    None => false,
                    Some(live) => wants_live && *live != want,
                };
                let file = file_changed.then(|| edit_file(current, &self.name, Some(value.trim())));
                Ok((file.is_some() || set_live).then_some(SysctlChange { file, set_live }))
            }
        }
    }

    /// Refuse what would add a line to the file or a second assignment to
    /// `sysctl -w`: line breaks, `=` or spaces in the name, a name `sysctl`
    /// would read as an option.
    fn check_args(&self) -> Result<(), ModuleError> {
        safe::name("name", &self.name)?;
        if self.name.contains('=') || self.name.starts_with(['#', ';']) {
            return Err(ModuleError::Args(format!(
                "name cannot contain '=' or start with '#' or ';' ({:?})",
                self.name
            )));
        }
        if self.name.contains("..") {
            return Err(ModuleError::Args(format!(
                "name cannot contain '..' ({:?})",
                self.name
            )));
        }
        if let Some(v) = &self.value {
            safe::one_line("value", v)?;
        }
        safe::one_line("sysctl_file", &self.sysctl_file)
    }

    fn data(&self) -> Map {
        let mut m = Map::new();
        m.insert("name".into(), Value::from(self.name.clone()));
        if let Some(v) = &self.value {
            m.insert("value".into(), Value::from(v.clone()));
        }
        m.insert(
            "state".into(),
            Value::from(match self.state {
                State::Present => "present",
                State::Absent => "absent",
            }),
        );
        m.insert("sysctl_file".into(), Value::from(self.sysctl_file.clone()));
        m
    }
}

impl Sysctl {
    /// The plan, from what the module's read printed.
    fn plan_from(
        &self,
        out: &crate::transport::ExecOutput,
    ) -> Result<Plan<SysctlChange>, ModuleError> {
        let obs = super::reads::parse_read(out, &self.sysctl_file, parse_observed)?;
        match self.decide(&obs)? {
            None => Ok(Plan::Unchanged(self.data())),
            Some(change) => {
                let diff = change.file.as_ref().map(|new| Diff {
                    before_header: self.sysctl_file.clone(),
                    after_header: self.sysctl_file.clone(),
                    before: obs.file.clone().unwrap_or_default(),
                    after: new.clone(),
                });
                Ok(Plan::Change {
                    change,
                    diff,
                    data: self.data(),
                })
            }
        }
    }
}

#[async_trait]
impl Module for Sysctl {
    const NAME: &'static str = "sysctl";
    const ARGS: &'static [&'static str] = &[
        "name",
        "key",
        "value",
        "val",
        "state",
        "sysctl_file",
        "reload",
        "sysctl_set",
        "ignoreerrors",
    ];
    type Change = SysctlChange;

    fn reads(&self, _ctx: &ReadCtx<'_>) -> Result<Protocol, ModuleError> {
        if self.name.trim().is_empty() {
            return Err(ModuleError::Args("name cannot be empty".into()));
        }
        self.check_args()?;
        Ok(Protocol::Declared(ReadSet::one(
            read_script(&self.sysctl_file, &self.name),
            Scope::Host,
        )))
    }

    fn decide(
        &self,
        observed: &super::Observed,
        _ctx: &ReadCtx<'_>,
    ) -> Result<Decision<SysctlChange>, ModuleError> {
        let out = observed.output(0)?;
        self.plan_from(out).map(Decision::Plan)
    }

    async fn apply(&self, ctx: &ModuleCtx<'_>, change: SysctlChange) -> Result<Map, ModuleError> {
        if let Some(content) = &change.file {
            write_file_atomic(
                ctx.remote,
                &self.sysctl_file,
                content.as_bytes(),
                &Attrs::default(),
                false,
            )
            .await?;
        }
        if change.set_live {
            let value = normalize(self.value.as_deref().unwrap_or_default());
            let cmd = format!(
                "sysctl {}-w {}",
                if self.ignoreerrors { "-e " } else { "" },
                shell_quote(&format!("{}={value}", self.name))
            );
            let out = ctx.remote.exec(&cmd, b"").await?;
            if out.status != 0 {
                return Err(ModuleError::failed(format!(
                    "setting {} failed: {}",
                    self.name,
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
    use crate::modules::testutil::{assert_args_complete, Harness};

    fn module(v: Value) -> Sysctl {
        serde_json::from_value(v).expect("args")
    }

    #[test]
    fn args() {
        assert_args_complete::<Sysctl>();
    }

    #[test]
    fn parses_and_edits_files() {
        let f = "# c\nnet.ipv4.ip_forward = 0\nvm.swappiness=10\n; net.ipv4.ip_forward=1\n";
        assert_eq!(file_value(f, "net.ipv4.ip_forward").as_deref(), Some("0"));
        assert_eq!(file_value(f, "vm.swappiness").as_deref(), Some("10"));
        assert_eq!(file_value(f, "vm.x"), None);
        assert_eq!(file_value("-a.b = 1\n", "a.b").as_deref(), Some("1"));
        assert_eq!(
            edit_file(f, "net.ipv4.ip_forward", Some("1")),
            "# c\nnet.ipv4.ip_forward=1\nvm.swappiness=10\n; net.ipv4.ip_forward=1\n"
        );
        assert_eq!(
            edit_file("a=1\nb=2\na=3", "a", Some("4")),
            "a=4\nb=2\n",
            "duplicates go, a missing final newline is added"
        );
        assert_eq!(edit_file("", "a.b", Some("1")), "a.b=1\n");
        assert_eq!(edit_file("a=1\nb=2\n", "a", None), "b=2\n");
        assert_eq!(
            proc_path("net.ipv4.ip_forward"),
            "/proc/sys/net/ipv4/ip_forward"
        );
        assert_eq!(normalize("4096\t131072  6291456\n"), "4096 131072 6291456");
    }

    #[test]
    fn decides_like_ansible() {
        let obs = |file: &str, live: Option<&str>| Observed {
            file: Some(file.into()),
            live: live.map(Into::into),
        };
        let m = module(json!({"name": "a.b", "value": 1}));
        assert_eq!(m.decide(&obs("a.b = 1\n", Some("0"))).expect("ok"), None);
        assert_eq!(
            m.decide(&obs("", Some("0"))).expect("ok"),
            Some(SysctlChange {
                file: Some("a.b=1\n".into()),
                set_live: true
            })
        );
        assert_eq!(
            m.decide(&obs("", Some("1"))).expect("ok"),
            Some(SysctlChange {
                file: Some("a.b=1\n".into()),
                set_live: false
            })
        );
        assert!(m.decide(&obs("", None)).is_err(), "unknown key");
        let m = module(json!({"name": "a.b", "value": "1", "reload": "no"}));
        assert_eq!(
            m.decide(&obs("", None)).expect("ok"),
            Some(SysctlChange {
                file: Some("a.b=1\n".into()),
                set_live: false
            })
        );
        let m = module(json!({"name": "a.b", "value": "1", "sysctl_set": true}));
        assert_eq!(
            m.decide(&obs("a.b=1\n", Some("0"))).expect("ok"),
            Some(SysctlChange {
                file: None,
                set_live: true
            })
        );
        let m = module(json!({"name": "a.b", "value": "1", "ignoreerrors": true}));
        assert_eq!(
            m.decide(&obs("", None)).expect("ok"),
            Some(SysctlChange {
                file: Some("a.b=1\n".into()),
                set_live: false
            })
        );
        let m = module(json!({"name": "a.b", "value": "4096 87380", "sysctl_set": true}));
        assert_eq!(
            m.decide(&obs("a.b = 4096  87380\n", Some("4096 87380")))
                .expect("ok"),
            None
        );
        let m = module(json!({"name": "a.b", "state": "absent"}));
        assert_eq!(m.decide(&obs("c=1\n", Some("0"))).expect("ok"), None);
        assert_eq!(
            m.decide(&obs("a.b=1\nc=1\n", Some("1"))).expect("ok"),
            Some(SysctlChange {
                file: Some("c=1\n".into()),
                set_live: false
            })
        );
        assert!(module(json!({"name": "a.b"}))
            .decide(&obs("", None))
            .is_err());
    }

    #[test]
    fn parses_read_output() {
        assert_eq!(
            parse_observed("@@file YT0xCg==\n@@live MQo=\n").expect("ok"),
            Observed {
                file: Some("a=1\n".into()),
                live: Some("1".into())
            }
        );
        assert_eq!(
            parse_observed("@@nofile\n@@nolive\n").expect("ok"),
            Observed::default()
        );
        assert!(parse_observed("@@nofile\n").is_err());
    }

    #[tokio::test]
    async fn edits_a_temp_file_without_reload() {
        let h = Harness::new();
        let f = h.path("99-k3s.conf");
        std::fs::write(&f, "# k3s\nnet.ipv4.ip_forward = 0\n").expect("write");
        // A key that surely does not exist: with reload off it is not looked at.
        let args = json!({
            "name": "net.ipv4.ip_forward", "value": "1", "sysctl_file": f, "reload": "no"
        });
        let out = h
            .run::<Sysctl>(args.clone(), true, true)
            .await
            .expect("check");
        assert!(out.changed);
        let diff = out.diff.expect("diff");
        assert_eq!(diff.after, "# k3s\nnet.ipv4.ip_forward=1\n");
        assert_eq!(
            std::fs::read_to_string(&f).expect("read"),
            "# k3s\nnet.ipv4.ip_forward = 0\n",
            "check mode writes nothing"
        );
        h.take_execs();
        let out = h
            .run::<Sysctl>(args.clone(), false, false)
            .await
            .expect("run");
        assert!(out.changed);
        assert_eq!(
            std::fs::read_to_string(&f).expect("read"),
            "# k3s\nnet.ipv4.ip_forward=1\n"
        );
        assert_eq!(h.take_execs(), 2, "one read, one write");
        let out = h.run::<Sysctl>(args, false, false).await.expect("again");
        assert!(!out.changed);
        assert_eq!(h.take_execs(), 1);

        let new = h.path("new.conf");
        let out = h
            .run::<Sysctl>(
                json!({"name": "no.such.key_x", "value": 3, "sysctl_file": new, "reload": false}),
                false,
                false,
            )
            .await
            .expect("new file");
        assert!(out.changed);
        assert_eq!(
            std::fs::read_to_string(&new).expect("read"),
            "no.such.key_x=3\n"
        );
        let out = h
            .run::<Sysctl>(
                json!({"name": "no.such.key_x", "state": "absent", "sysctl_file": new}),
                false,
                false,
            )
            .await
            .expect("absent");
        assert!(out.changed);
        assert_eq!(std::fs::read_to_string(&new).expect("read"), "");
    }
}
