//! `modprobe` (community.general.modprobe): load or unload a kernel module
//! and keep it loaded at boot (`/etc/modules-load.d/NAME.conf`, its
//! options in `/etc/modprobe.d/NAME.conf`). Whether it is loaded comes
//! from `/proc/modules` and `modules.builtin`; the files of both
//! directories are read in the same exec and edited as Ansible edits them
//! (old lines commented out, not deleted).

use async_trait::async_trait;
use base64::Engine as _;
use serde::Deserialize;

use super::args::{opt_string_ish, string_ish};
use super::fs::{write_file_atomic, Attrs};
use super::safe;
use super::{
    Decision, Diff, Module, ModuleCtx, ModuleError, Observed, Plan, Protocol, ReadCtx, ReadSet,
    Scope,
};
use crate::transport::shell_quote;
use crate::{Map, Value};

const MODULES_LOAD: &str = "/etc/modules-load.d";
const MODPROBE_D: &str = "/etc/modprobe.d";

/// Arguments of `modprobe`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Modprobe {
    /// The kernel module.
    #[serde(deserialize_with = "string_ish")]
    name: String,
    /// present (loaded) or absent (unloaded).
    #[serde(default)]
    state: super::args::Presence,
    /// Options given when loading (`key=value ...`).
    #[serde(default, deserialize_with = "opt_string_ish")]
    params: Option<String>,
    /// Load at boot: disabled (leave the files alone), present or absent.
    #[serde(default)]
    persistent: Persistent,
}

/// `persistent` values.
#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Persistent {
    #[default]
    Disabled,
    Present,
    Absent,
}

/// What the read found.
#[derive(Debug, Default, PartialEq, Eq)]
struct Found {
    loaded: bool,
    /// Files of modules-load.d, with their content.
    load_files: Vec<(String, String)>,
    /// Files of modprobe.d, with their content.
    option_files: Vec<(String, String)>,
}

/// What `apply` does.
#[derive(Debug, PartialEq, Eq, Default)]
pub struct ModprobeChange {
    /// `modprobe NAME PARAMS` (true) or `modprobe -r NAME` (false).
    load: Option<bool>,
    /// Files to write.
    files: Vec<(String, String)>,
}

impl Modprobe {
    fn params(&self) -> &str {
        self.params.as_deref().unwrap_or("").trim()
    }

    /// Is `line` this module in a modules-load file (`name`, comment allowed)?
    fn is_module_line(&self, line: &str) -> bool {
        let t = line.trim_start_matches(' ');
        let Some(rest) = t.strip_prefix(self.name.as_str()) else {
            return false;
        };
        let rest = rest.trim_start_matches(' ');
        rest.is_empty() || rest.starts_with(['#', ';'])
    }

    /// The `key=value` of an `options NAME key=value` line (one option).
    fn option_of<'a>(&self, line: &'a str) -> Option<&'a str> {
        let rest = line
            .strip_prefix("options ")?
            .strip_prefix(self.name.as_str())?;
        let rest = rest.strip_prefix(' ')?;
        let end = rest.find(' ').unwrap_or(rest.len());
        let (opt, tail) = rest.split_at(end);
        let tail = tail.trim_start_matches(' ');
        let (k, v) = opt.split_once('=')?;
        let word = !k.is_empty() && k.chars().all(|c| c.is_alphanumeric() || c == '_');
        (word && !v.is_empty() && (tail.is_empty() || tail.starts_with(['#', ';']))).then_some(opt)
    }

    fn persisted(&self, f: &Found) -> bool {
        f.load_files
            .iter()
            .any(|(_, c)| c.lines().any(|l| self.is_module_line(l)))
    }

    fn permanent_params(&self, f: &Found) -> std::collections::BTreeSet<String> {
        f.option_files
            .iter()
            .flat_map(|(_, c)| {
                c.lines()
                    .filter_map(|l| self.option_of(l))
                    .map(str::to_string)
            })
            .collect()
    }

    fn params_set(&self, f: &Found) -> bool {
        let want: std::collections::BTreeSet<String> = self
            .params()
            .split_whitespace()
            .map(str::to_string)
            .collect();
        want == self.permanent_params(f)
    }

    /// Files with the matching lines commented out, those that changed.
    fn comment_out(
        files: &[(String, String)],
        hit: impl Fn(&str) -> bool,
    ) -> Vec<(String, String)> {
        files
            .iter()
            .filter(|(_, c)| c.lines().any(&hit))
            .map(|(p, c)| {
                let body: String = c
                    .lines()
                    .map(|l| {
                        if hit(l) {
                            format!("#{l}\n")
                        } else {
                            format!("{l}\n")
                        }
                    })
                    .collect();
                (p.clone(), body)
            })
            .collect()
    }

    fn plan(&self, f: &Found) -> Plan<ModprobeChange> {
        let mut c = ModprobeChange::default();
        let present = self.state == super::args::Presence::Present;
        if present && !f.loaded {
            c.load = Some(true);
        } else if !present && f.loaded {
            c.load = Some(false);
        }
        let persisted = self.persisted(f);
        match self.persistent {
            Persistent::Present if !(persisted && self.params_set(f)) => {
                if !persisted {
                    c.files.push((
                        format!("{MODULES_LOAD}/{}.conf", self.name),
                        format!("{}\n", self.name),
                    ));
                }
                if !self.params_set(f) {
                    c.files.extend(Self::comment_out(&f.option_files, |l| {
                        self.option_of(l).is_some()
                    }));
                    let opts: String = self
                        .params()
                        .split_whitespace()
                        .map(|p| format!("options {} {p}\n", self.name))
                        .collect();
                    let path = format!("{MODPROBE_D}/{}.conf", self.name);
                    c.files.retain(|(p, _)| *p != path);
                    c.files
                        .push((path, if opts.is_empty() { "\n".into() } else { opts }));
                }
            }
            Persistent::Absent if persisted || !self.permanent_params(f).is_empty() => {
                c.files
                    .extend(Self::comment_out(&f.load_files, |l| self.is_module_line(l)));
                c.files.extend(Self::comment_out(&f.option_files, |l| {
                    self.option_of(l).is_some()
                }));
            }
            _ => {}
        }
        let mut data = Map::new();
        data.insert("name".into(), Value::from(self.name.clone()));
        data.insert("params".into(), Value::from(self.params().to_string()));
        data.insert(
            "state".into(),
            Value::from(if present { "present" } else { "absent" }),
        );
        if c.load.is_none() && c.files.is_empty() {
            return Plan::Unchanged(data);
        }
        let before_of = |p: &str| {
            f.load_files
                .iter()
                .chain(&f.option_files)
                .find(|(q, _)| q == p)
                .map(|(_, c)| c.clone())
                .unwrap_or_default()
        };
        let diff = c.files.first().map(|(p, new)| Diff {
            before_header: p.clone(),
            after_header: p.clone(),
            before: before_of(p),
            after: new.clone(),
        });
        Plan::Change {
            change: c,
            diff,
            data,
        }
    }

    fn read_script(&self) -> String {
        format!(
            "n={}; m=$(printf %s \"$n\" | tr - _)\n\
             if grep -q \"^$m \" /proc/modules 2>/dev/null || grep -q \"/$n\\.ko\\(\\.[a-z]*\\)\\?$\" \"/lib/modules/$(uname -r)/modules.builtin\" 2>/dev/null; then echo @@loaded; fi\n\
             for f in {ml}/* ; do [ -f \"$f\" ] || continue; printf '@@ml %s ' \"$(printf %s \"$f\" | base64 -w0)\"; base64 -w0 < \"$f\"; echo; done\n\
             for f in {md}/* ; do [ -f \"$f\" ] || continue; printf '@@mp %s ' \"$(printf %s \"$f\" | base64 -w0)\"; base64 -w0 < \"$f\"; echo; done\n\
             echo @@end\n",
            shell_quote(&self.name),
            ml = MODULES_LOAD,
            md = MODPROBE_D,
        )
    }
}

fn parse(out: &str) -> Result<Found, super::OutputError> {
    let b64 = |s: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(s.trim())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|e| super::OutputError::Malformed(format!("bad output: {e}")))
    };
    let mut f = Found::default();
    let mut ended = false;
    for line in out.lines() {
        match line.split_once(' ') {
            Some(("@@ml", r)) | Some(("@@mp", r)) => {
                let (p, c) = r.split_once(' ').unwrap_or((r, ""));
                let entry = (b64(p)?, b64(c)?);
                if line.starts_with("@@ml") {
                    f.load_files.push(entry);
                } else {
                    f.option_files.push(entry);
                }
            }
            _ if line == "@@loaded" => f.loaded = true,
            _ if line == "@@end" => ended = true,
            _ => {}
        }
    }
    if !ended {
        return Err(super::OutputError::Incomplete);
    }
    Ok(f)
}

#[async_trait]
impl Module for Modprobe {
    const NAME: &'static str = "modprobe";
    const ARGS: &'static [&'static str] = &["name", "state", "params", "persistent"];
    type Change = ModprobeChange;

    fn reads(&self, _ctx: &ReadCtx<'_>) -> Result<Protocol, ModuleError> {
        safe::name("name", &self.name)?;
        if self.name.contains('/') || self.name.starts_with('-') {
            return Err(ModuleError::Args(format!(
                "invalid module name {:?}",
                self.name
            )));
        }
        safe::one_line("params", self.params())?;
        Ok(Protocol::Declared(ReadSet::one(
            self.read_script(),
            Scope::Host,
        )))
    }

    fn decide(
        &self,
        observed: &Observed,
        _ctx: &ReadCtx<'_>,
    ) -> Result<Decision<ModprobeChange>, ModuleError> {
        let out = observed.output(0)?;
        let found = super::reads::parse_read(out, "the kernel modules", parse)?;
        Ok(Decision::Plan(self.plan(&found)))
    }

    async fn apply(&self, ctx: &ModuleCtx<'_>, change: ModprobeChange) -> Result<Map, ModuleError> {
        if let Some(load) = change.load {
            let params: Vec<String> = crate::shlex::words(self.params())
                .unwrap_or_default()
                .iter()
                .map(|p| shell_quote(p))
                .collect();
            let cmd = if load {
                format!("modprobe {} {}", shell_quote(&self.name), params.join(" "))
            } else {
                format!("modprobe -r {}", shell_quote(&self.name))
            };
            let out = ctx.remote.exec(&cmd, b"").await?;
            if out.status != 0 {
                let mut d = Map::new();
                d.insert("rc".into(), Value::from(out.status));
                d.insert("stdout".into(), Value::from(out.stdout_str()));
                d.insert("stderr".into(), Value::from(out.stderr_str()));
                return Err(ModuleError::Failed {
                    msg: out.stderr_str().trim().to_string(),
                    data: d,
                });
            }
        }
        if !change.files.is_empty() {
            // kmod creates both on Debian; a minimal image may lack one.
            super::fs::run_checked(
                ctx.remote,
                &format!("mkdir -p {MODULES_LOAD} {MODPROBE_D}"),
                "creating the modprobe directories",
            )
            .await?;
        }
        for (path, content) in &change.files {
            write_file_atomic(
                ctx.remote,
                path,
                content.as_bytes(),
                &Attrs::default(),
                false,
            )
            .await?;
        }
        Ok(Map::new())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::modules::testutil::assert_args_complete;

    fn m(v: Value) -> Modprobe {
        serde_json::from_value(v).expect("args")
    }

    fn change(p: Plan<ModprobeChange>) -> Option<ModprobeChange> {
        match p {
            Plan::Change { change, .. } => Some(change),
            _ => None,
        }
    }

    #[test]
    fn args() {
        assert_args_complete::<Modprobe>();
    }

    #[test]
    fn loads_once_and_persists_as_ansible_writes_it() {
        let br = m(json!({"name": "br_netfilter", "persistent": "present", "params": "a=1"}));
        let c = change(br.plan(&Found::default())).expect("change");
        assert_eq!(c.load, Some(true));
        assert_eq!(
            c.files,
            vec![
                (
                    "/etc/modules-load.d/br_netfilter.conf".into(),
                    "br_netfilter\n".into()
                ),
                (
                    "/etc/modprobe.d/br_netfilter.conf".into(),
                    "options br_netfilter a=1\n".into()
                ),
            ]
        );
        let done = Found {
            loaded: true,
            load_files: vec![(
                "/etc/modules-load.d/k3s.conf".into(),
                "overlay\nbr_netfilter # k3s\n".into(),
            )],
            option_files: vec![(
                "/etc/modprobe.d/br_netfilter.conf".into(),
                "options br_netfilter a=1\n".into(),
            )],
        };
        assert!(change(br.plan(&done)).is_none(), "converged");
        let other = m(json!({"name": "br_netfilter", "persistent": "present", "params": "a=2"}));
        let c = change(other.plan(&done)).expect("change");
        assert_eq!(
            c.files,
            vec![(
                "/etc/modprobe.d/br_netfilter.conf".into(),
                "options br_netfilter a=2\n".into()
            )]
        );
    }

    #[test]
    fn absent_unloads_and_comments_out() {
        let f = Found {
            loaded: true,
            load_files: vec![(
                "/etc/modules-load.d/x.conf".into(),
                "overlay\nbr_netfilter\n".into(),
            )],
            option_files: vec![],
        };
        let c = change(
            m(json!({"name": "br_netfilter", "state": "absent", "persistent": "absent"})).plan(&f),
        )
        .expect("change");
        assert_eq!(c.load, Some(false));
        assert_eq!(
            c.files,
            vec![(
                "/etc/modules-load.d/x.conf".into(),
                "overlay\n#br_netfilter\n".into()
            )]
        );
        assert!(!m(json!({"name": "br"})).is_module_line("br_netfilter"));
    }

    #[test]
    fn parses_the_read() {
        let b = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let out = format!(
            "@@loaded\n@@ml {} {}\n@@end\n",
            b("/etc/modules-load.d/a.conf"),
            b("overlay\n")
        );
        let f = parse(&out).expect("parse");
        assert!(f.loaded);
        assert_eq!(
            f.load_files,
            vec![("/etc/modules-load.d/a.conf".into(), "overlay\n".into())]
        );
        assert!(parse("@@loaded\n").is_err());
    }
}
