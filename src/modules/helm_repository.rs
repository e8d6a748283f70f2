//! `kubernetes.core.helm_repository`: add or remove a chart repository in
//! helm's configuration on the node (of the user the task runs as, as
//! helm keeps it per user). A declared read (`helm repo list -o json`) and
//! a pure decision; `helm repo add`/`remove` to apply.

use async_trait::async_trait;
use serde::Deserialize;

use super::args::Presence as State;
use super::args::{bool_ish, opt_string_ish};
use super::helm::{helm_cmd, need_helm, no_helm};
use super::{
    Decision, Diff, Module, ModuleCtx, ModuleError, Observed, Plan, Protocol, ReadCtx, ReadSet,
    Scope,
};
use crate::transport::shell_quote;
use crate::{Map, Value};

/// Arguments of `kubernetes.core.helm_repository` (Ansible's names).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HelmRepository {
    /// The repository's name.
    #[serde(alias = "repo_name", deserialize_with = "super::args::string_ish")]
    name: String,
    /// Its URL (required when present).
    #[serde(default, alias = "url", deserialize_with = "opt_string_ish")]
    repo_url: Option<String>,
    /// `present` or `absent`.
    #[serde(default, alias = "state")]
    repo_state: State,
    /// Replace a repository of the same name with another URL.
    #[serde(default, deserialize_with = "bool_ish")]
    force_update: bool,
    /// The helm program (default `helm` on PATH).
    #[serde(default, deserialize_with = "opt_string_ish")]
    binary_path: Option<String>,
}

/// What applying runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepoChange {
    /// `helm repo add` (with `--force-update` when replacing).
    Add {
        /// Another URL is configured under the name.
        replace: bool,
    },
    /// `helm repo remove`.
    Remove,
}

/// The configured repositories: name → URL.
fn parse_list(status: i32, stdout: &str, stderr: &str) -> Result<Vec<(String, String)>, String> {
    if status != 0 {
        // helm answers an empty configuration with an error.
        if stderr.contains("no repositories to show") {
            return Ok(Vec::new());
        }
        return Err(format!(
            "helm repo list failed (rc {status}): {}",
            stderr.trim()
        ));
    }
    let list: Vec<Value> =
        serde_json::from_str(stdout.trim()).map_err(|e| format!("helm repo list -o json: {e}"))?;
    Ok(list
        .iter()
        .filter_map(|r| {
            Some((
                r.get("name")?.as_str()?.to_string(),
                r.get("url")?.as_str()?.to_string(),
            ))
        })
        .collect())
}

impl HelmRepository {
    fn decide_list(&self, repos: &[(String, String)]) -> Result<Plan<RepoChange>, ModuleError> {
        let have = repos.iter().find(|(n, _)| *n == self.name);
        let mut data = Map::new();
        if let Some((n, u)) = have {
            data.insert("repo".into(), serde_json::json!({"name": n, "url": u}));
        }
        let change = match (self.repo_state, have) {
            (State::Absent, None) => None,
            (State::Absent, Some(_)) => Some(RepoChange::Remove),
            (State::Present, None) => Some(RepoChange::Add { replace: false }),
            (State::Present, Some((_, url))) if Some(url) == self.repo_url.as_ref() => None,
            (State::Present, Some((_, url))) if !self.force_update => {
                return Err(ModuleError::failed(format!(
                    "Repository already have a repository named {} (with URL {url}); \
                     set force_update to replace it",
                    self.name
                )))
            }
            (State::Present, Some(_)) => Some(RepoChange::Add { replace: true }),
        };
        let Some(change) = change else {
            return Ok(Plan::Unchanged(data));
        };
        let line = |u: Option<&String>| {
            u.map(|u| format!("{} {u}\n", self.name))
                .unwrap_or_default()
        };
        let diff = Diff {
            before_header: "helm repositories".into(),
            after_header: "helm repositories".into(),
            before: line(have.map(|(_, u)| u)),
            after: match change {
                RepoChange::Remove => String::new(),
                RepoChange::Add { .. } => line(self.repo_url.as_ref()),
            },
        };
        Ok(Plan::Change {
            change,
            diff: Some(diff),
            data,
        })
    }
}

#[async_trait]
impl Module for HelmRepository {
    const NAME: &'static str = "helm_repository";
    const ARGS: &'static [&'static str] = &[
        "name",
        "repo_name",
        "repo_url",
        "url",
        "repo_state",
        "state",
        "force_update",
        "binary_path",
    ];
    type Change = RepoChange;

    fn validate(&self) -> Result<(), super::ArgError> {
        // A value helm would take for an option.
        for (arg, v) in [
            ("name", Some(&self.name)),
            ("repo_url", self.repo_url.as_ref()),
        ] {
            if v.is_some_and(|v| v.starts_with('-') || v.is_empty()) {
                return Err(super::ArgError {
                    arg: Some(arg.into()),
                    msg: format!("{arg} must not be empty or start with '-'"),
                });
            }
        }
        if self.repo_state == State::Present && self.repo_url.is_none() {
            return Err(
                "repo_state is present but all of the following are missing: repo_url".into(),
            );
        }
        Ok(())
    }

    fn reads(&self, _ctx: &ReadCtx<'_>) -> Result<Protocol, ModuleError> {
        let script = format!(
            "{}{} repo list -o json\n",
            need_helm(self.binary_path.as_deref()),
            helm_cmd(self.binary_path.as_deref(), None)
        );
        Ok(Protocol::Declared(ReadSet::one(script, Scope::Host)))
    }

    fn decide(
        &self,
        observed: &Observed,
        ctx: &ReadCtx<'_>,
    ) -> Result<Decision<RepoChange>, ModuleError> {
        let out = observed.output(0)?;
        if out.status == 127 {
            if ctx.check && self.repo_state == State::Present {
                return self.decide_list(&[]).map(Decision::Plan);
            }
            return Err(no_helm(
                "kubernetes.core.helm_repository",
                self.binary_path.as_deref(),
            ));
        }
        let repos = parse_list(out.status, &out.stdout_str(), &out.stderr_str())
            .map_err(ModuleError::failed)?;
        self.decide_list(&repos).map(Decision::Plan)
    }

    async fn apply(&self, ctx: &ModuleCtx<'_>, change: RepoChange) -> Result<Map, ModuleError> {
        let helm = helm_cmd(self.binary_path.as_deref(), None);
        let cmd = match change {
            RepoChange::Add { replace } => format!(
                "{helm} repo add {} {}{}",
                shell_quote(&self.name),
                shell_quote(self.repo_url.as_deref().unwrap_or_default()),
                if replace { " --force-update" } else { "" }
            ),
            RepoChange::Remove => format!("{helm} repo remove {}", shell_quote(&self.name)),
        };
        let out = ctx.remote.exec(&cmd, b"").await?;
        let mut data = Map::new();
        data.insert("command".into(), Value::String(cmd));
        data.insert("stdout".into(), Value::String(out.stdout_str()));
        data.insert("stderr".into(), Value::String(out.stderr_str()));
        data.insert("rc".into(), Value::from(out.status));
        if out.status != 0 {
            return Err(ModuleError::Failed {
                msg: format!(
                    "helm failed (rc {}): {}",
                    out.status,
                    out.stderr_str().trim()
                ),
                data,
            });
        }
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::modules::testutil::assert_args_complete;

    fn module(v: Value) -> HelmRepository {
        serde_json::from_value(v).expect("args")
    }

    #[test]
    fn args() {
        assert_args_complete::<HelmRepository>();
        assert!(module(json!({"name": "a"})).validate().is_err());
        assert!(module(json!({"name": "a", "state": "absent"}))
            .validate()
            .is_ok());
    }

    #[test]
    fn reads_the_list_helm_prints() {
        assert_eq!(
            parse_list(1, "", "Error: no repositories to show\n"),
            Ok(vec![])
        );
        assert_eq!(
            parse_list(0, r#"[{"name":"a","url":"https://a"}]"#, ""),
            Ok(vec![("a".into(), "https://a".into())])
        );
        assert!(parse_list(1, "", "Error: boom").is_err());
    }

    #[test]
    fn adds_removes_or_keeps() {
        let repos = vec![(
            "apache-airflow".to_string(),
            "https://airflow.apache.org".to_string(),
        )];
        let m = module(json!({"name": "apache-airflow", "repo_url": "https://airflow.apache.org"}));
        assert!(matches!(m.decide_list(&repos), Ok(Plan::Unchanged(_))));
        assert!(matches!(
            m.decide_list(&[]),
            Ok(Plan::Change {
                change: RepoChange::Add { replace: false },
                ..
            })
        ));
        let other = module(json!({"name": "apache-airflow", "repo_url": "https://x"}));
        assert!(other.decide_list(&repos).is_err());
        let forced = module(
            json!({"name": "apache-airflow", "repo_url": "https://x", "force_update": true}),
        );
        assert!(matches!(
            forced.decide_list(&repos),
            Ok(Plan::Change {
                change: RepoChange::Add { replace: true },
                ..
            })
        ));
        let gone = module(json!({"name": "apache-airflow", "repo_state": "absent"}));
        assert!(matches!(
            gone.decide_list(&repos),
            Ok(Plan::Change {
                change: RepoChange::Remove,
                ..
            })
        ));
        assert!(matches!(gone.decide_list(&[]), Ok(Plan::Unchanged(_))));
    }
}
