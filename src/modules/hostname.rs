//! `hostname` (ansible.builtin.hostname): set the persistent name in
//! `/etc/hostname` and the live name with `hostname NAME`, the Debian way,
//! whatever `use` says. Both are read in one exec. `/etc/hosts` is left
//! alone, as Ansible does.

use async_trait::async_trait;
use serde::Deserialize;

use super::fs::{write_file_atomic, Attrs};
use super::{
    Decision, Diff, Module, ModuleCtx, ModuleError, Plan, Protocol, ReadCtx, ReadSet, Scope,
};
use crate::transport::shell_quote;
use crate::{Map, Value};

const HOSTNAME_FILE: &str = "/etc/hostname";

/// Arguments of `hostname`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hostname {
    /// The wanted host name.
    name: String,
    /// Strategy (`systemd`, `debian`, `generic`, ...): accepted, and all
    /// done the Debian way.
    #[serde(default, rename = "use")]
    use_: Option<String>,
}

/// What `apply` changes.
#[derive(Debug, PartialEq)]
pub struct HostnameChange {
    /// Rewrite /etc/hostname.
    file: bool,
    /// Run `hostname NAME`.
    live: bool,
}

/// What was read: /etc/hostname's content (`None`: missing) and the live name.
#[derive(Debug, PartialEq)]
struct Observed {
    file: Option<String>,
    live: String,
}

const READ: &str =
    "if [ -f /etc/hostname ]; then echo @@file; cat /etc/hostname; fi; echo @@live; hostname";

fn parse_observed(out: &str) -> Result<Observed, super::OutputError> {
    let (file_part, live) = out
        .rsplit_once("@@live\n")
        .ok_or(super::OutputError::Incomplete)?;
    let file = file_part.strip_prefix("@@file\n").map(|s| s.to_string());
    Ok(Observed {
        file,
        live: live.trim().to_string(),
    })
}

impl Hostname {
    fn validate(&self) -> Result<(), ModuleError> {
        let ok = !self.name.is_empty()
            && self.name.len() <= 253
            && !self.name.starts_with(['-', '.'])
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
        if !ok {
            return Err(ModuleError::Args(format!(
                "invalid host name {:?}",
                self.name
            )));
        }
        match self.use_.as_deref() {
            None | Some("systemd" | "debian" | "generic" | "alpine" | "redhat") => Ok(()),
            Some(other) => Err(ModuleError::Args(format!(
                "use={other} is not supported (systemd, debian, generic)"
            ))),
        }
    }

    fn decide(&self, obs: &Observed) -> Option<HostnameChange> {
        // Like Ansible's Debian strategy: the first line counts.
        let in_file = obs
            .file
            .as_deref()
            .and_then(|f| f.lines().next())
            .map(str::trim);
        let change = HostnameChange {
            file: in_file != Some(self.name.as_str()),
            live: obs.live != self.name,
        };
        (change.file || change.live).then_some(change)
    }

    fn data(&self) -> Map {
        let mut m = Map::new();
        m.insert("name".into(), Value::from(self.name.clone()));
        let short = self.name.split('.').next().unwrap_or_default();
        let mut facts = Map::new();
        facts.insert("ansible_hostname".into(), Value::from(short));
        facts.insert("ansible_nodename".into(), Value::from(self.name.clone()));
        if let Some(domain) = self.name.split_once('.').map(|(_, d)| d) {
            facts.insert("ansible_domain".into(), Value::from(domain));
            facts.insert("ansible_fqdn".into(), Value::from(self.name.clone()));
        }
        m.insert("ansible_facts".into(), Value::Object(facts));
        m
    }
}

impl Hostname {
    /// The plan, from what the module's read printed.
    fn plan_from(
        &self,
        out: &crate::transport::ExecOutput,
    ) -> Result<Plan<HostnameChange>, ModuleError> {
        let obs = super::reads::parse_read(out, "the host name", parse_observed)?;
        match self.decide(&obs) {
            None => Ok(Plan::Unchanged(self.data())),
            Some(change) => Ok(Plan::Change {
                diff: Some(Diff {
                    before_header: "hostname".into(),
                    after_header: "hostname".into(),
                    before: format!("{}\n", obs.live),
                    after: format!("{}\n", self.name),
                }),
                change,
                data: self.data(),
            }),
        }
    }
}

#[async_trait]
impl Module for Hostname {
    const NAME: &'static str = "hostname";
    const ARGS: &'static [&'static str] = &["name", "use"];
    type Change = HostnameChange;

    fn reads(&self, _ctx: &ReadCtx<'_>) -> Result<Protocol, ModuleError> {
        self.validate()?;
        Ok(Protocol::Declared(ReadSet::one(
            READ.to_string(),
            Scope::Host,
        )))
    }

    fn decide(
        &self,
        observed: &super::Observed,
        _ctx: &ReadCtx<'_>,
    ) -> Result<Decision<HostnameChange>, ModuleError> {
        let out = observed.output(0)?;
        self.plan_from(out).map(Decision::Plan)
    }

    async fn apply(&self, ctx: &ModuleCtx<'_>, change: HostnameChange) -> Result<Map, ModuleError> {
        if change.file {
            write_file_atomic(
                ctx.remote,
                HOSTNAME_FILE,
                format!("{}\n", self.name).as_bytes(),
                &Attrs::default(),
                false,
            )
            .await?;
        }
        if change.live {
            let out = ctx
                .remote
                .exec(&format!("hostname {}", shell_quote(&self.name)), b"")
                .await?;
            if out.status != 0 {
                return Err(ModuleError::failed(format!(
                    "setting the host name failed: {}",
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

    fn module(v: Value) -> Hostname {
        serde_json::from_value(v).expect("args")
    }

    #[test]
    fn args() {
        assert_args_complete::<Hostname>();
    }

    #[test]
    fn parses_read_output() {
        assert_eq!(
            parse_observed("@@file\nnode1\n@@live\nnode1\n").expect("ok"),
            Observed {
                file: Some("node1\n".into()),
                live: "node1".into()
            }
        );
        assert_eq!(
            parse_observed("@@live\nlocalhost\n").expect("ok"),
            Observed {
                file: None,
                live: "localhost".into()
            }
        );
        assert!(parse_observed("node1\n").is_err());
    }

    #[test]
    fn decides_file_and_live_separately() {
        let m = module(json!({"name": "pi-1", "use": "systemd"}));
        m.validate().expect("valid");
        let obs = |file: Option<&str>, live: &str| Observed {
            file: file.map(Into::into),
            live: live.into(),
        };
        assert_eq!(m.decide(&obs(Some("pi-1\n"), "pi-1")), None);
        assert_eq!(
            m.decide(&obs(Some("raspberrypi\n"), "raspberrypi")),
            Some(HostnameChange {
                file: true,
                live: true
            })
        );
        assert_eq!(
            m.decide(&obs(Some("pi-1\n"), "raspberrypi")),
            Some(HostnameChange {
                file: false,
                live: true
            })
        );
        assert_eq!(
            m.decide(&obs(None, "pi-1")),
            Some(HostnameChange {
                file: true,
                live: false
            })
        );
        assert!(module(json!({"name": "a b"})).validate().is_err());
        assert!(module(json!({"name": "-x"})).validate().is_err());
        assert!(module(json!({"name": "a", "use": "nope"}))
            .validate()
            .is_err());
        let data = module(json!({"name": "pi-1.lan"})).data();
        assert_eq!(data["ansible_facts"]["ansible_hostname"], json!("pi-1"));
        assert_eq!(data["ansible_facts"]["ansible_domain"], json!("lan"));
    }

    #[tokio::test]
    async fn check_mode_reads_the_host_and_changes_nothing() {
        // Read-only: check mode stops after planning.
        let h = Harness::new();
        let out = h
            .run::<Hostname>(json!({"name": "drover-no-such-name-x9"}), true, true)
            .await
            .expect("plan");
        assert!(out.changed);
        assert_eq!(h.take_execs(), 1, "one read");
        let diff = out.diff.expect("diff");
        assert_eq!(diff.after, "drover-no-such-name-x9\n");
        assert!(!diff.before.trim().is_empty(), "the live name was read");
    }
}
