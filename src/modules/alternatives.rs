//! `community.general.alternatives`: manage a Debian alternatives group
//! with `update-alternatives`. One declared read (`update-alternatives
//! --query NAME`), a pure decision following Ansible's module: install the
//! path (or reinstall it with another priority), then select it
//! (`selected`), return the group to automatic mode (`auto`), or remove it
//! (`absent`).

use async_trait::async_trait;
use serde::Deserialize;

use super::args::{opt_string_ish, opt_u64_ish};
use super::{
    ArgError, Decision, Diff, Module, ModuleCtx, ModuleError, Observed, Plan, Protocol, ReadCtx,
    ReadSet, Scope,
};
use crate::transport::shell_quote;
use crate::{Map, Value};

/// `state` of the alternative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Installed and selected (manual mode).
    #[default]
    Selected,
    /// Installed, the selection left alone.
    Present,
    /// Installed, the group in automatic mode.
    Auto,
    /// Not installed.
    Absent,
}

/// Arguments of `community.general.alternatives` (Ansible's names).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alternatives {
    /// The generic name (`editor`).
    #[serde(deserialize_with = "super::args::string_ish")]
    name: String,
    /// The alternative's path.
    #[serde(deserialize_with = "super::args::string_ish")]
    path: String,
    /// The generic link (`/usr/bin/editor`); needed to create a group.
    #[serde(default, deserialize_with = "opt_string_ish")]
    link: Option<String>,
    /// Its priority (default 50).
    #[serde(default, deserialize_with = "opt_u64_ish")]
    priority: Option<u64>,
    /// `selected`, `present`, `auto` or `absent`.
    #[serde(default)]
    state: State,
}

/// What `update-alternatives --query` said.
#[derive(Debug, Default, PartialEq, Eq)]
struct Group {
    link: Option<String>,
    auto: bool,
    value: Option<String>,
    /// Alternatives with their priorities.
    alternatives: Vec<(String, u64)>,
}

/// The commands to run, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AltChange {
    commands: Vec<String>,
}

fn parse_query(status: i32, stdout: &str, stderr: &str) -> Result<Option<Group>, String> {
    if status != 0 {
        if stderr.contains("no alternatives for") {
            return Ok(None);
        }
        if status == 127 {
            return Err("update-alternatives was not found on the target".into());
        }
        return Err(format!(
            "update-alternatives --query failed (rc {status}): {}",
            stderr.trim()
        ));
    }
    let mut g = Group::default();
    let mut current: Option<String> = None;
    for line in stdout.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim().to_string();
        match k {
            "Link" => g.link = Some(v),
            "Status" => g.auto = v == "auto",
            "Value" if v != "none" => g.value = Some(v),
            "Alternative" => current = Some(v),
            "Priority" => {
                if let Some(a) = current.take() {
                    let p = v.parse().map_err(|_| format!("bad priority {v:?}"))?;
                    g.alternatives.push((a, p));
                }
            }
            _ => {}
        }
    }
    Ok(Some(g))
}

impl Alternatives {
    fn plan(&self, group: Option<&Group>) -> Result<Plan<AltChange>, ModuleError> {
        let priority = self.priority.unwrap_or(50);
        let name = shell_quote(&self.name);
        let path = shell_quote(&self.path);
        let installed = group.and_then(|g| {
            g.alternatives
                .iter()
                .find(|(a, _)| *a == self.path)
                .map(|(_, p)| *p)
        });
        let mut commands = Vec::new();
        if self.state == State::Absent {
            if installed.is_some() {
                commands.push(format!("update-alternatives --remove {name} {path}"));
            }
        } else {
            if installed != Some(priority) {
                let link = self
                    .link
                    .clone()
                    .or_else(|| group.and_then(|g| g.link.clone()))
                    .ok_or_else(|| {
                        ModuleError::failed(format!(
                            "Needed to install the alternative, but unable to do so as we are \
                             missing the link (there is no alternatives group {} yet)",
                            self.name
                        ))
                    })?;
                commands.push(format!(
                    "update-alternatives --install {} {name} {path} {priority}",
                    shell_quote(&link)
                ));
            }
            // After an install, the group's mode and value are update-alternatives'.
            let fresh = group.is_none();
            match self.state {
                State::Selected => {
                    let selected = group
                        .is_some_and(|g| !g.auto && g.value.as_deref() == Some(self.path.as_str()));
                    if !selected {
                        commands.push(format!("update-alternatives --set {name} {path}"));
                    }
                }
                State::Auto if !fresh && !group.is_some_and(|g| g.auto) => {
                    commands.push(format!("update-alternatives --auto {name}"));
                }
                _ => {}
            }
        }
        let mut data = Map::new();
        if let Some(g) = group {
            data.insert(
                "alternatives".into(),
                Value::Array(
                    g.alternatives
                        .iter()
                        .map(|(a, p)| serde_json::json!({"path": a, "priority": p}))
                        .collect(),
                ),
            );
        }
        if commands.is_empty() {
            return Ok(Plan::Unchanged(data));
        }
        let diff = Diff {
            before_header: format!("alternatives {}", self.name),
            after_header: format!("alternatives {}", self.name),
            before: group
                .map(|g| {
                    format!(
                        "mode: {}\nvalue: {}\n",
                        if g.auto { "auto" } else { "manual" },
                        g.value.as_deref().unwrap_or("none")
                    )
                })
                .unwrap_or_default(),
            after: commands.join("\n") + "\n",
        };
        Ok(Plan::Change {
            change: AltChange { commands },
            diff: Some(diff),
            data,
        })
    }
}

#[async_trait]
impl Module for Alternatives {
    const NAME: &'static str = "alternatives";
    const ARGS: &'static [&'static str] = &["name", "path", "link", "priority", "state"];
    type Change = AltChange;

    fn validate(&self) -> Result<(), ArgError> {
        // update-alternatives would take these for options.
        for (arg, v) in [("path", Some(&self.path)), ("link", self.link.as_ref())] {
            if v.is_some_and(|v| !v.starts_with('/')) {
                return Err(ArgError {
                    arg: Some(arg.into()),
                    msg: format!("{arg} must be an absolute path"),
                });
            }
        }
        if self.name.starts_with('-') || self.name.contains('/') || self.name.trim().is_empty() {
            return Err(ArgError {
                arg: Some("name".into()),
                msg: format!("name must be a generic name, not {:?}", self.name),
            });
        }
        Ok(())
    }

    fn reads(&self, _ctx: &ReadCtx<'_>) -> Result<Protocol, ModuleError> {
        Ok(Protocol::Declared(ReadSet::one(
            format!(
                "command -v update-alternatives >/dev/null 2>&1 || exit 127\n\
                 LC_ALL=C update-alternatives --query {}\n",
                shell_quote(&self.name)
            ),
            Scope::Host,
        )))
    }

    fn decide(
        &self,
        observed: &Observed,
        _ctx: &ReadCtx<'_>,
    ) -> Result<Decision<AltChange>, ModuleError> {
        let out = observed.output(0)?;
        let group = parse_query(out.status, &out.stdout_str(), &out.stderr_str())
            .map_err(ModuleError::failed)?;
        self.plan(group.as_ref()).map(Decision::Plan)
    }

    async fn apply(&self, ctx: &ModuleCtx<'_>, change: AltChange) -> Result<Map, ModuleError> {
        for cmd in &change.commands {
            let out = ctx.remote.exec(cmd, b"").await?;
            if out.status != 0 {
                return Err(ModuleError::failed(format!(
                    "{cmd} failed (rc {}): {}",
                    out.status,
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

    fn module(v: Value) -> Alternatives {
        serde_json::from_value(v).expect("args")
    }

    const QUERY: &str = "Name: editor\nLink: /usr/bin/editor\nSlaves:\n editor.1.gz /usr/share/man/man1/editor.1.gz\nStatus: auto\nBest: /bin/nano\nValue: /bin/nano\n\nAlternative: /bin/nano\nPriority: 40\nSlaves:\n editor.1.gz /usr/share/man/man1/nano.1.gz\n\nAlternative: /usr/bin/vim.basic\nPriority: 30\n";

    fn commands(m: &Alternatives, g: Option<&Group>) -> Vec<String> {
        match m.plan(g).expect("plan") {
            Plan::Change { change, .. } => change.commands,
            _ => Vec::new(),
        }
    }

    #[test]
    fn args() {
        assert_args_complete::<Alternatives>();
        assert!(module(json!({"name": "/usr/bin/x", "path": "/p"}))
            .validate()
            .is_err());
        assert!(module(json!({"name": "x", "path": "--remove-all"}))
            .validate()
            .is_err());
        assert!(module(json!({"name": "--all", "path": "/p"}))
            .validate()
            .is_err());
    }

    #[test]
    fn parses_the_query() {
        let g = parse_query(0, QUERY, "").expect("ok").expect("group");
        assert!(g.auto);
        assert_eq!(g.link.as_deref(), Some("/usr/bin/editor"));
        assert_eq!(g.value.as_deref(), Some("/bin/nano"));
        assert_eq!(
            g.alternatives,
            [("/bin/nano".into(), 40), ("/usr/bin/vim.basic".into(), 30)]
        );
        assert_eq!(
            parse_query(2, "", "update-alternatives: error: no alternatives for x\n"),
            Ok(None)
        );
        assert!(parse_query(2, "", "boom").is_err());
    }

    #[test]
    fn decides_like_ansible() {
        let g = parse_query(0, QUERY, "").expect("ok");
        let g = g.as_ref();
        let m = module(json!({"name": "editor", "path": "/usr/bin/vim.basic", "priority": 30}));
        assert_eq!(
            commands(&m, g),
            ["update-alternatives --set editor /usr/bin/vim.basic"]
        );
        let m = module(json!({"name": "editor", "path": "/usr/bin/vim.basic", "priority": 60}));
        assert_eq!(
            commands(&m, g),
            [
                "update-alternatives --install /usr/bin/editor editor /usr/bin/vim.basic 60",
                "update-alternatives --set editor /usr/bin/vim.basic"
            ]
        );
        let m =
            module(json!({"name": "editor", "path": "/bin/nano", "priority": 40, "state": "auto"}));
        assert!(commands(&m, g).is_empty());
        let m = module(
            json!({"name": "editor", "path": "/bin/nano", "priority": 40, "state": "present"}),
        );
        assert!(commands(&m, g).is_empty());
        let m = module(json!({"name": "editor", "path": "/bin/ed", "state": "absent"}));
        assert!(commands(&m, g).is_empty());
        let m = module(json!({"name": "editor", "path": "/bin/nano", "state": "absent"}));
        assert_eq!(
            commands(&m, g),
            ["update-alternatives --remove editor /bin/nano"]
        );
        let m = module(json!({"name": "new", "path": "/bin/x"}));
        assert!(m.plan(None).is_err(), "no link for a new group");
        let m = module(json!({"name": "new", "path": "/bin/x", "link": "/usr/bin/new"}));
        assert_eq!(
            commands(&m, None),
            [
                "update-alternatives --install /usr/bin/new new /bin/x 50",
                "update-alternatives --set new /bin/x"
            ]
        );
    }
}
