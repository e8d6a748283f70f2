//! `group` (ansible.builtin.group): create, renumber or remove a local
//! group with `groupadd`, `groupmod` and `groupdel`. The group is read with
//! `getent group` in one exec.

use async_trait::async_trait;
use serde::Deserialize;

use super::args::{bool_ish, opt_u64_ish};
use super::safe;
use super::{
    Decision, Module, ModuleCtx, ModuleError, Observed, Plan, Protocol, ReadCtx, ReadSet, Scope,
};
use crate::transport::{shell_quote, ExecOutput};
use crate::{Map, Value};

/// Arguments of `group`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    /// Name of the group.
    name: String,
    /// Wanted numeric id.
    #[serde(default, deserialize_with = "opt_u64_ish")]
    gid: Option<u64>,
    /// `present` or `absent`.
    #[serde(default)]
    state: State,
    /// Create a system group (only when creating it).
    #[serde(default, deserialize_with = "bool_ish")]
    system: bool,
    /// Allow a gid another group has (`-o`).
    #[serde(default, deserialize_with = "bool_ish")]
    non_unique: bool,
    /// Delete the group even if it is a user's primary group (`groupdel -f`).
    #[serde(default, deserialize_with = "bool_ish")]
    force: bool,
    /// The range a new group's gid is picked from (login.defs' GID_MIN).
    #[serde(default, deserialize_with = "opt_u64_ish")]
    gid_min: Option<u64>,
    /// ... and GID_MAX.
    #[serde(default, deserialize_with = "opt_u64_ish")]
    gid_max: Option<u64>,
}

/// Whether the group should exist.
#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum State {
    #[default]
    Present,
    Absent,
}

/// A group as `getent group` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupEntry {
    /// Name.
    pub name: String,
    /// Numeric id.
    pub gid: u64,
}

/// Parse one `getent group` line (`name:x:gid:members`).
pub fn parse_group_line(line: &str) -> Option<GroupEntry> {
    let mut f = line.trim_end_matches('\n').split(':');
    let name = f.next()?.to_string();
    let _password = f.next()?;
    let gid = f.next()?.trim().parse().ok()?;
    Some(GroupEntry { name, gid })
}

/// The command `apply` runs (an argument vector, quoted when run).
#[derive(Debug, PartialEq)]
pub struct GroupChange(Vec<String>);

impl Group {
    fn validate(&self) -> Result<(), ModuleError> {
        safe::name("name", &self.name)?;
        if self.name.is_empty() || self.name.starts_with('-') || self.name.contains([':', '\n']) {
            return Err(ModuleError::Args(format!(
                "invalid group name {:?}",
                self.name
            )));
        }
        // As Ansible's required_if: a duplicate gid needs the gid.
        if self.non_unique && self.gid.is_none() {
            return Err(ModuleError::Args(
                "non_unique is True but all of the following are missing: gid".into(),
            ));
        }
        Ok(())
    }

    /// What to run, given the group as found (`None`: no such group).
    fn decide(&self, current: Option<&GroupEntry>) -> Option<GroupChange> {
        let argv = |v: &[&str]| Some(GroupChange(v.iter().map(|s| s.to_string()).collect()));
        match (self.state, current) {
            (State::Absent, None) => None,
            (State::Absent, Some(_)) if self.force => argv(&["groupdel", "-f", &self.name]),
            (State::Absent, Some(_)) => argv(&["groupdel", &self.name]),
            (State::Present, None) => {
                let mut v = vec!["groupadd".to_string()];
                if let Some(gid) = self.gid {
                    v.extend(["-g".into(), gid.to_string()]);
                    if self.non_unique {
                        v.push("-o".into());
                    }
                }
                if self.system {
                    v.push("-r".into());
                }
                if let Some(min) = self.gid_min {
                    v.extend(["-K".into(), format!("GID_MIN={min}")]);
                }
                if let Some(max) = self.gid_max {
                    v.extend(["-K".into(), format!("GID_MAX={max}")]);
                }
                v.push(self.name.clone());
                Some(GroupChange(v))
            }
            (State::Present, Some(g)) => match self.gid {
                Some(gid) if gid != g.gid && self.non_unique => {
                    argv(&["groupmod", "-g", &gid.to_string(), "-o", &self.name])
                }
                Some(gid) if gid != g.gid => {
                    argv(&["groupmod", "-g", &gid.to_string(), &self.name])
                }
                _ => None,
            },
        }
    }

    fn data(&self, gid: Option<u64>) -> Map {
        let mut m = Map::new();
        m.insert("name".into(), Value::from(self.name.clone()));
        m.insert(
            "state".into(),
            Value::from(match self.state {
                State::Present => "present",
                State::Absent => "absent",
            }),
        );
        if self.state == State::Present {
            m.insert("system".into(), Value::from(self.system));
            if let Some(gid) = gid {
                m.insert("gid".into(), Value::from(gid));
            }
        }
        m
    }
}

/// The read of group `name` (exit status 2 of getent is "no such key").
fn getent_script(name: &str) -> String {
    format!(
        "getent group {}; r=$?; [ $r -eq 2 ] && exit 0; exit $r",
        shell_quote(name)
    )
}

/// The group `name`, from what [`getent_script`] printed.
fn getent_group(out: &ExecOutput, name: &str) -> Result<Option<GroupEntry>, ModuleError> {
    if out.status != 0 {
        return Err(ModuleError::failed(format!(
            "getent group {name} failed: {}",
            out.stderr_str().trim()
        )));
    }
    Ok(out
        .stdout_str()
        .lines()
        .filter_map(parse_group_line)
        .find(|g| g.name == name))
}

#[async_trait]
impl Module for Group {
    const NAME: &'static str = "group";
    const ARGS: &'static [&'static str] = &[
        "name",
        "gid",
        "state",
        "system",
        "non_unique",
        "force",
        "gid_min",
        "gid_max",
    ];
    // libuser's lgroupadd & co. (`local`): not implemented yet.
    const PENDING: &'static [&'static str] = &["local"];
    type Change = GroupChange;

    fn reads(&self, _ctx: &ReadCtx<'_>) -> Result<Protocol, ModuleError> {
        self.validate()?;
        Ok(Protocol::Declared(ReadSet::one(
            getent_script(&self.name),
            Scope::Host,
        )))
    }

    fn decide(
        &self,
        observed: &Observed,
        _ctx: &ReadCtx<'_>,
    ) -> Result<Decision<GroupChange>, ModuleError> {
        let current = getent_group(observed.output(0)?, &self.name)?;
        Ok(Decision::Plan(match self.decide(current.as_ref()) {
            None => Plan::Unchanged(self.data(current.map(|g| g.gid))),
            Some(change) => Plan::Change {
                change,
                diff: None,
                data: self.data(self.gid.or(current.map(|g| g.gid))),
            },
        }))
    }

    async fn apply(&self, ctx: &ModuleCtx<'_>, change: GroupChange) -> Result<Map, ModuleError> {
        let mut cmd = change
            .0
            .iter()
            .map(|a| shell_quote(a))
            .collect::<Vec<_>>()
            .join(" ");
        if self.state == State::Present {
            // Report the gid the system picked.
            cmd.push_str(&format!(" && getent group {}", shell_quote(&self.name)));
        }
        let out = ctx.remote.exec(&cmd, b"").await?;
        if out.status != 0 {
            let mut data = Map::new();
            data.insert("rc".into(), Value::from(out.status));
            return Err(ModuleError::Failed {
                msg: format!("{} failed: {}", change.0[0], out.stderr_str().trim()),
                data,
            });
        }
        let mut data = Map::new();
        if let Some(g) = out.stdout_str().lines().filter_map(parse_group_line).next() {
            data.insert("gid".into(), Value::from(g.gid));
        }
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::modules::testutil::{assert_args_complete, Harness};

    fn module(v: Value) -> Group {
        serde_json::from_value(v).expect("args")
    }

    fn argv(c: Option<GroupChange>) -> Option<String> {
        c.map(|c| c.0.join(" "))
    }

    #[test]
    fn args() {
        assert_args_complete::<Group>();
    }

    #[test]
    fn parses_getent() {
        assert_eq!(
            parse_group_line("docker:x:998:alice,bob\n"),
            Some(GroupEntry {
                name: "docker".into(),
                gid: 998
            })
        );
        assert_eq!(parse_group_line("bad"), None);
        assert_eq!(parse_group_line("bad:x:y:"), None);
    }

    /// group target: non_unique, force, gid_min and gid_max were unknown
    /// arguments.
    #[test]
    fn plans_non_unique_gids_forced_deletes_and_gid_ranges() {
        let m = module(json!({"name": "g", "gid": 0, "non_unique": true}));
        assert_eq!(argv(m.decide(None)).as_deref(), Some("groupadd -g 0 -o g"));
        let g = GroupEntry {
            name: "g".into(),
            gid: 5,
        };
        assert_eq!(
            argv(m.decide(Some(&g))).as_deref(),
            Some("groupmod -g 0 -o g")
        );
        let m = module(json!({"name": "g", "state": "absent", "force": "yes"}));
        assert_eq!(argv(m.decide(Some(&g))).as_deref(), Some("groupdel -f g"));
        let m = module(json!({"name": "g", "gid_min": 1200, "gid_max": 1299}));
        assert_eq!(
            argv(m.decide(None)).as_deref(),
            Some("groupadd -K GID_MIN=1200 -K GID_MAX=1299 g")
        );
    }

    #[test]
    fn plans_groupadd_groupmod_groupdel() {
        let k3s = GroupEntry {
            name: "k3s".into(),
            gid: 1001,
        };
        let m = module(json!({"name": "k3s", "gid": "1001", "system": "yes"}));
        assert_eq!(
            argv(m.decide(None)).as_deref(),
            Some("groupadd -g 1001 -r k3s")
        );
        assert_eq!(argv(m.decide(Some(&k3s))), None);
        let m = module(json!({"name": "k3s", "gid": 1002}));
        assert_eq!(
            argv(m.decide(Some(&k3s))).as_deref(),
            Some("groupmod -g 1002 k3s")
        );
        let m = module(json!({"name": "k3s"}));
        assert_eq!(argv(m.decide(Some(&k3s))), None, "no gid: any gid will do");
        assert_eq!(argv(m.decide(None)).as_deref(), Some("groupadd k3s"));
        let m = module(json!({"name": "k3s", "state": "absent"}));
        assert_eq!(argv(m.decide(Some(&k3s))).as_deref(), Some("groupdel k3s"));
        assert_eq!(argv(m.decide(None)), None);
        assert!(module(json!({"name": "-r"})).validate().is_err());
        // group target "validate gid required with non_unique": Ansible fails.
        assert!(module(json!({"name": "g", "non_unique": true}))
            .validate()
            .is_err());
        assert!(module(json!({"name": "g", "non_unique": true, "gid": 5}))
            .validate()
            .is_ok());
        assert!(serde_json::from_value::<Group>(json!({"name": "a", "state": "gone"})).is_err());
    }

    #[tokio::test]
    async fn check_mode_reads_the_host_and_changes_nothing() {
        // Read-only: check mode stops after planning.
        let h = Harness::new();
        let name = "drover-no-such-group-x9";
        let out = h
            .run::<Group>(json!({"name": name}), true, false)
            .await
            .expect("plan");
        assert!(out.changed, "a missing group would be created");
        assert_eq!(h.take_execs(), 1, "one read");
        let out = h
            .run::<Group>(json!({"name": name, "state": "absent"}), true, false)
            .await
            .expect("plan");
        assert!(!out.changed);
        let out = h
            .run::<Group>(json!({"name": "root", "state": "present"}), true, false)
            .await
            .expect("plan");
        assert!(!out.changed, "root exists");
    }
}
