//! `k8s_node_labels` (drover's own): keep labels on a Kubernetes Node.
//!
//! The Node is read with `kubectl get node NAME -o json` (waiting for it to
//! exist: agents register asynchronously), the labels are compared, and one
//! `kubectl label node NAME k=v ... stale- --overwrite` makes them match.
//! With `exclusive`, labels under `prefix` that are not wanted are removed;
//! labels of Kubernetes itself (`*kubernetes.io/`, `*k8s.io/`, `*k3s.io/`)
//! are never removed unless the prefix names keys inside such a domain
//! (`node-role.kubernetes.io/airflow`, which the user owns), not the domain.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Deserialize;

use super::args::{bool_ish, loose_string, opt_string_ish, opt_u64_ish};
use super::k8s::Kubectl;
use super::{Diff, Module, ModuleCtx, ModuleError, Plan};
use crate::transport::shell_quote;
use crate::{Map, Value};

/// Arguments of `k8s_node_labels`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct K8sNodeLabels {
    /// Node name.
    #[serde(deserialize_with = "super::args::string_ish")]
    name: String,
    /// Labels the Node must have.
    #[serde(default)]
    labels: Option<Map>,
    /// Remove labels under `prefix` that are not in `labels`.
    #[serde(default, deserialize_with = "bool_ish")]
    exclusive: bool,
    /// Key prefix `exclusive` works under (`drover.dev/`, `airflow-`).
    #[serde(default, deserialize_with = "opt_string_ish")]
    prefix: Option<String>,
    /// The kubectl command (`kubectl`, `k3s kubectl`).
    #[serde(default, deserialize_with = "opt_string_ish")]
    kubectl: Option<String>,
    /// Passed as `--kubeconfig`.
    #[serde(default, deserialize_with = "opt_string_ish")]
    kubeconfig: Option<String>,
    /// Seconds to wait for the Node to exist (default 60).
    #[serde(default, deserialize_with = "opt_u64_ish")]
    wait_timeout: Option<u64>,
}

/// Is `key` a label Kubernetes (or k3s) owns?
fn is_system_label(key: &str) -> bool {
    let Some((domain, _)) = key.split_once('/') else {
        return false;
    };
    ["kubernetes.io", "k8s.io", "k3s.io"]
        .iter()
        .any(|d| domain == *d || domain.ends_with(&format!(".{d}")))
}

/// Does `prefix` name keys inside a domain (`node-role.kubernetes.io/airflow`)
/// rather than a whole domain (`node-role.kubernetes.io/`)?
fn names_keys(prefix: &str) -> bool {
    prefix
        .split_once('/')
        .is_some_and(|(_, name)| !name.is_empty())
}

/// What changes on the Node's labels.
#[derive(Debug, Default, PartialEq)]
pub struct LabelChange {
    /// New keys and values.
    added: Vec<(String, String)>,
    /// Keys whose value changes: (key, old, new).
    changed: Vec<(String, String, String)>,
    /// Keys removed.
    removed: Vec<String>,
}

impl LabelChange {
    fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }

    /// kubectl arguments: `k=v` for added and changed, `k-` for removed.
    fn args(&self) -> Vec<String> {
        self.added
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .chain(self.changed.iter().map(|(k, _, v)| format!("{k}={v}")))
            .chain(self.removed.iter().map(|k| format!("{k}-")))
            .collect()
    }
}

/// Compare current and wanted labels; `exclusive_prefix` removes unwanted
/// keys under it (never system labels).
fn plan_labels(
    current: &BTreeMap<String, String>,
    want: &BTreeMap<String, String>,
    exclusive_prefix: Option<&str>,
) -> LabelChange {
    let mut c = LabelChange::default();
    for (k, v) in want {
        match current.get(k) {
            None => c.added.push((k.clone(), v.clone())),
            Some(old) if old != v => c.changed.push((k.clone(), old.clone(), v.clone())),
            Some(_) => {}
        }
    }
    if let Some(prefix) = exclusive_prefix {
        c.removed = current
            .keys()
            .filter(|k| {
                k.starts_with(prefix)
                    && !want.contains_key(*k)
                    && (names_keys(prefix) || !is_system_label(k))
            })
            .cloned()
            .collect();
    }
    c
}

/// Labels after the change.
fn labels_after(current: &BTreeMap<String, String>, c: &LabelChange) -> BTreeMap<String, String> {
    let mut after = current.clone();
    for (k, v) in &c.added {
        after.insert(k.clone(), v.clone());
    }
    for (k, _, v) in &c.changed {
        after.insert(k.clone(), v.clone());
    }
    for k in &c.removed {
        after.remove(k);
    }
    after
}

fn label_lines(labels: &BTreeMap<String, String>) -> String {
    labels.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
}

/// The labels of a Node as kubectl printed it.
fn node_labels(json: &str) -> Result<BTreeMap<String, String>, super::OutputError> {
    let v: Value = serde_json::from_str(json)
        .map_err(|e| super::OutputError::Malformed(format!("kubectl printed no Node: {e}")))?;
    Ok(v.get("metadata")
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), loose_string(v).unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default())
}

impl K8sNodeLabels {
    fn kubectl(&self) -> Kubectl {
        Kubectl::new(self.kubectl.as_deref(), self.kubeconfig.as_deref())
    }

    /// Checked wanted labels and the exclusive prefix.
    fn wanted(&self) -> Result<(BTreeMap<String, String>, Option<&str>), ModuleError> {
        if self.name.trim().is_empty() {
            return Err(ModuleError::Args("name cannot be empty".into()));
        }
        let mut want = BTreeMap::new();
        for (k, v) in self.labels.iter().flatten() {
            if k.is_empty() || k.contains(char::is_whitespace) || k.contains('=') {
                return Err(ModuleError::Args(format!("{k:?} is not a label key")));
            }
            let v = loose_string(v)
                .ok_or_else(|| ModuleError::Args(format!("label {k}: {v} is not a string")))?;
            if v.contains(char::is_whitespace) {
                return Err(ModuleError::Args(format!(
                    "label {k}: {v:?} is not a label value"
                )));
            }
            want.insert(k.clone(), v);
        }
        let prefix = match (self.exclusive, self.prefix.as_deref()) {
            (false, _) => None,
            (true, None) | (true, Some("")) => {
                return Err(ModuleError::Args(
                    "exclusive needs a prefix (labels of Kubernetes itself are never removed)"
                        .into(),
                ))
            }
            (true, Some(p))
                if !names_keys(p) && is_system_label(&format!("{}/x", p.trim_end_matches('/'))) =>
            {
                return Err(ModuleError::Args(format!(
                    "prefix {p} is Kubernetes' own; its labels are never removed \
                     (name the keys: {}/<name>)",
                    p.trim_end_matches('/')
                )))
            }
            (true, Some(p)) => Some(p),
        };
        Ok((want, prefix))
    }

    /// The Node's labels, waiting for it to exist (`None`: absent in check mode).
    async fn read(
        &self,
        ctx: &ModuleCtx<'_>,
    ) -> Result<Option<BTreeMap<String, String>>, ModuleError> {
        let kubectl = self.kubectl();
        let cmd = kubectl.cmd(&format!("get node {} -o json", shell_quote(&self.name)));
        let timeout = Duration::from_secs(self.wait_timeout.unwrap_or(60));
        let start = Instant::now();
        loop {
            let out = ctx.remote.exec(&cmd, b"").await?;
            if out.status == 0 {
                return node_labels(&out.stdout_str())
                    .map(Some)
                    .map_err(|e| ModuleError::failed(e.to_string()));
            }
            let err = out.stderr_str();
            // 127: no kubectl yet (k3s not installed): absent in check mode.
            if out.status == 127 && ctx.check {
                return Ok(None);
            }
            let absent = err.contains("NotFound")
                || err.contains(&format!("nodes \"{}\" not found", self.name));
            if out.status == 127 || !absent {
                return Err(ModuleError::failed(format!(
                    "kubectl get node {} failed (rc {}): {}",
                    self.name,
                    out.status,
                    err.trim()
                )));
            }
            if ctx.check {
                return Ok(None);
            }
            if start.elapsed() >= timeout {
                return Err(ModuleError::failed(format!(
                    "node {} did not register within {} s: {}",
                    self.name,
                    timeout.as_secs(),
                    err.trim()
                )));
            }
            tokio::time::sleep(Duration::from_secs(2).min(timeout.saturating_sub(start.elapsed())))
                .await;
        }
    }
}

fn result(after: &BTreeMap<String, String>, c: &LabelChange) -> Map {
    let mut m = Map::new();
    m.insert(
        "labels".into(),
        Value::Object(
            after
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect(),
        ),
    );
    let keys =
        |ks: Vec<&String>| Value::Array(ks.into_iter().map(|k| Value::String(k.clone())).collect());
    m.insert(
        "added".into(),
        keys(c.added.iter().map(|(k, _)| k).collect()),
    );
    m.insert(
        "changed".into(),
        keys(c.changed.iter().map(|(k, _, _)| k).collect()),
    );
    m.insert("removed".into(), keys(c.removed.iter().collect()));
    m
}

#[async_trait]
impl Module for K8sNodeLabels {
    const NAME: &'static str = "k8s_node_labels";
    const ARGS: &'static [&'static str] = &[
        "name",
        "labels",
        "exclusive",
        "prefix",
        "kubectl",
        "kubeconfig",
        "wait_timeout",
    ];
    type Change = LabelChange;

    async fn run_imperative(&self, ctx: &ModuleCtx<'_>) -> Result<Plan<LabelChange>, ModuleError> {
        let (want, prefix) = self.wanted()?;
        let found = self.read(ctx).await?;
        let current = found.clone().unwrap_or_default();
        let change = plan_labels(&current, &want, prefix);
        let after = labels_after(&current, &change);
        let mut data = result(&after, &change);
        if found.is_none() {
            data.insert("node_found".into(), Value::Bool(false));
        }
        if change.is_empty() && found.is_some() {
            return Ok(Plan::Unchanged(data));
        }
        let header = format!("node {} labels", self.name);
        Ok(Plan::Change {
            diff: Some(Diff {
                before_header: header.clone(),
                after_header: header,
                before: label_lines(&current),
                after: label_lines(&after),
            }),
            change,
            data,
        })
    }

    async fn apply(&self, ctx: &ModuleCtx<'_>, change: LabelChange) -> Result<Map, ModuleError> {
        if change.is_empty() {
            return Ok(Map::new());
        }
        let args: Vec<String> = change.args().iter().map(|a| shell_quote(a)).collect();
        self.kubectl()
            .run(
                ctx.remote,
                &format!(
                    "label node {} {} --overwrite",
                    shell_quote(&self.name),
                    args.join(" ")
                ),
                b"",
            )
            .await?;
        Ok(Map::new())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::modules::testutil::{assert_args_complete, Harness};

    fn m(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn args() {
        assert_args_complete::<K8sNodeLabels>();
    }

    #[test]
    fn plans_added_changed_and_removed_labels() {
        let current = m(&[
            ("kubernetes.io/hostname", "pi-worker-01"),
            ("node-role.kubernetes.io/worker", "true"),
            ("airflow-role", "scheduler-2"),
            ("airflow-old", "x"),
            ("other", "y"),
        ]);
        let want = m(&[("airflow-role", "scheduler-1"), ("airflow-zone", "a")]);
        let c = plan_labels(&current, &want, None);
        assert_eq!(c.added, vec![("airflow-zone".to_string(), "a".to_string())]);
        assert_eq!(
            c.changed,
            vec![(
                "airflow-role".into(),
                "scheduler-2".into(),
                "scheduler-1".into()
            )]
        );
        assert!(c.removed.is_empty());
        let c = plan_labels(&current, &want, Some("airflow-"));
        assert_eq!(c.removed, vec!["airflow-old".to_string()]);
        assert_eq!(
            c.args(),
            ["airflow-zone=a", "airflow-role=scheduler-1", "airflow-old-"]
        );
        // A prefix that happens to cover system labels never removes them.
        let c = plan_labels(&current, &m(&[]), Some("node-role"));
        assert!(c.removed.is_empty(), "{c:?}");
        let after = labels_after(&current, &plan_labels(&current, &want, Some("airflow-")));
        assert_eq!(
            after.get("airflow-role").map(String::as_str),
            Some("scheduler-1")
        );
        assert!(!after.contains_key("airflow-old") && after.contains_key("other"));
        assert!(plan_labels(&current, &m(&[("other", "y")]), Some("o")).is_empty());
    }

    #[test]
    fn argument_checks() {
        let parse = |v: Value| serde_json::from_value::<K8sNodeLabels>(v).expect("args");
        let err = parse(json!({"name": "n", "labels": {"a": "b"}, "exclusive": true}))
            .wanted()
            .expect_err("no prefix");
        assert!(
            err.to_string().contains("exclusive needs a prefix"),
            "{err}"
        );
        let err =
            parse(json!({"name": "n", "exclusive": "yes", "prefix": "node-role.kubernetes.io/"}))
                .wanted()
                .expect_err("system prefix");
        assert!(err.to_string().contains("Kubernetes' own"), "{err}");
        let named = parse(json!({"name": "n", "exclusive": true,
            "prefix": "node-role.kubernetes.io/airflow", "labels": {}}));
        let (_, prefix) = named.wanted().expect("a named key under a system domain");
        let current = m(&[
            ("node-role.kubernetes.io/airflow", "scheduler-1"),
            ("node-role.kubernetes.io/control-plane", "true"),
        ]);
        let c = plan_labels(&current, &BTreeMap::new(), prefix);
        assert_eq!(
            c.removed,
            vec!["node-role.kubernetes.io/airflow".to_string()]
        );
        let ok = parse(json!({"name": "n", "labels": {"n": 1, "b": true}}));
        let (want, prefix) = ok.wanted().expect("ok");
        assert_eq!(want, m(&[("n", "1"), ("b", "True")]));
        assert!(prefix.is_none());
        assert!(parse(json!({"name": "n", "labels": {"a b": "c"}}))
            .wanted()
            .is_err());
    }

    #[test]
    fn node_json_labels() {
        let l = node_labels(r#"{"kind": "Node", "metadata": {"name": "n", "labels": {"a": "1"}}}"#)
            .expect("labels");
        assert_eq!(l, m(&[("a", "1")]));
        assert!(
            node_labels(r#"{"kind": "Node", "metadata": {"name": "n"}}"#)
                .expect("none")
                .is_empty()
        );
    }

    #[tokio::test]
    async fn labels_a_node_through_a_fake_kubectl() {
        let h = Harness::new();
        let d = h.root().display().to_string();
        let script = h.root().join("kubectl");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\nd={d}\necho \"$*\" >> \"$d/argv.log\"\ncase \"$1\" in\n  get) [ -f \"$d/node.json\" ] || {{ echo 'Error from server (NotFound): nodes \"w1\" not found' >&2; exit 1; }}; cat \"$d/node.json\";;\n  label) echo node/w1 labeled;;\nesac\n"
            ),
        )
        .expect("script");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let k = script.to_string_lossy().into_owned();
        let args = json!({"name": "w1", "labels": {"role": "scheduler-1"}, "kubectl": k, "wait_timeout": 0});

        // Absent in check mode: would add; outside check mode: fails after the wait.
        let out = h
            .run::<K8sNodeLabels>(args.clone(), true, true)
            .await
            .expect("check");
        assert!(out.changed);
        assert_eq!(out.data["node_found"], false);
        let err = h
            .run::<K8sNodeLabels>(args.clone(), false, false)
            .await
            .expect_err("absent");
        assert!(
            err.to_string().contains("did not register within 0 s"),
            "{err}"
        );

        std::fs::write(
            h.root().join("node.json"),
            r#"{"kind": "Node", "metadata": {"name": "w1", "labels": {"role": "old", "kubernetes.io/os": "linux"}}}"#,
        )
        .expect("node");
        let out = h
            .run::<K8sNodeLabels>(args.clone(), false, true)
            .await
            .expect("label");
        assert!(out.changed);
        assert_eq!(out.data["changed"], json!(["role"]));
        let diff = out.diff.expect("diff");
        assert!(diff.before.contains("role=old") && diff.after.contains("role=scheduler-1"));
        let argv = std::fs::read_to_string(h.root().join("argv.log")).expect("argv");
        assert!(
            argv.contains("label node w1 role=scheduler-1 --overwrite"),
            "{argv}"
        );

        std::fs::write(
            h.root().join("node.json"),
            r#"{"kind": "Node", "metadata": {"name": "w1", "labels": {"role": "scheduler-1"}}}"#,
        )
        .expect("node");
        let out = h
            .run::<K8sNodeLabels>(args, false, false)
            .await
            .expect("same");
        assert!(!out.changed);
    }
}
