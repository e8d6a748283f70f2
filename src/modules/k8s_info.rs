//! `kubernetes.core.k8s_info`: list Kubernetes objects, with kubectl on the
//! node. A declared read (`kubectl get RESOURCE [NAME] -o json`) and a pure
//! decision that never changes anything: `resources` is the list of live
//! objects, `api_found` says whether the server knows the kind, as Ansible
//! registers them. Label selectors are applied to what kubectl returned
//! (equality, inequality, existence), so any kubectl serves.

use async_trait::async_trait;
use serde::Deserialize;

use super::args::opt_string_ish;
use super::k8s::{is_cluster_scoped, parse_get_output, Kubectl};
use super::k8s_object::no_kubectl;
use super::{
    ArgError, Decision, Module, ModuleCtx, ModuleError, Observed, Plan, Protocol, ReadCtx, ReadSet,
    Scope,
};
use crate::transport::shell_quote;
use crate::{Map, Value};

/// Arguments of `kubernetes.core.k8s_info` (Ansible's names).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct K8sInfo {
    /// The kind to list.
    #[serde(deserialize_with = "super::args::string_ish")]
    kind: String,
    /// Its apiVersion (default `v1`).
    #[serde(
        default,
        alias = "api",
        alias = "version",
        deserialize_with = "opt_string_ish"
    )]
    api_version: Option<String>,
    /// One object by name.
    #[serde(default, deserialize_with = "opt_string_ish")]
    name: Option<String>,
    /// The namespace; without it, every namespace.
    #[serde(default, deserialize_with = "opt_string_ish")]
    namespace: Option<String>,
    /// `key=value`, `key!=value`, `key`, `!key`: all must hold.
    #[serde(default)]
    label_selectors: Vec<String>,
    /// Passed to kubectl as `--kubeconfig`.
    #[serde(default, deserialize_with = "opt_string_ish")]
    kubeconfig: Option<String>,
}

/// One label selector term.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Selector {
    Eq(String, String),
    Ne(String, String),
    Exists(String),
    Missing(String),
}

fn parse_selector(s: &str) -> Result<Vec<Selector>, String> {
    let mut out = Vec::new();
    for term in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let sel = if let Some((k, v)) = term.split_once("!=") {
            Selector::Ne(k.trim().into(), v.trim().into())
        } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
            Selector::Eq(k.trim().into(), v.trim().into())
        } else if let Some(k) = term.strip_prefix('!') {
            Selector::Missing(k.trim().into())
        } else if term.contains(' ') || term.contains('(') {
            return Err(format!(
                "label selector {term:?}: set-based selectors (in, notin) are not supported"
            ));
        } else {
            Selector::Exists(term.into())
        };
        out.push(sel);
    }
    Ok(out)
}

fn matches(obj: &Value, sels: &[Selector]) -> bool {
    let labels = obj.get("metadata").and_then(|m| m.get("labels"));
    let label = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
    sels.iter().all(|s| match s {
        Selector::Eq(k, v) => label(k) == Some(v.as_str()),
        Selector::Ne(k, v) => label(k) != Some(v.as_str()),
        Selector::Exists(k) => label(k).is_some(),
        Selector::Missing(k) => label(k).is_none(),
    })
}

impl K8sInfo {
    fn selectors(&self) -> Result<Vec<Selector>, String> {
        let mut out = Vec::new();
        for s in &self.label_selectors {
            out.extend(parse_selector(s)?);
        }
        Ok(out)
    }

    fn get_args(&self) -> String {
        let api = self.api_version.as_deref().unwrap_or("v1");
        let mut args = format!(
            "get {}",
            shell_quote(&super::k8s_object::resource_word(&self.kind, api))
        );
        if let Some(name) = &self.name {
            args.push(' ');
            args.push_str(&shell_quote(name));
        }
        match &self.namespace {
            Some(ns) => args.push_str(&format!(" -n {}", shell_quote(ns))),
            None if !is_cluster_scoped(&self.kind) => args.push_str(" --all-namespaces"),
            None => {}
        }
        args.push_str(" -o json --ignore-not-found");
        args
    }
}

#[async_trait]
impl Module for K8sInfo {
    const NAME: &'static str = "k8s_info";
    const ARGS: &'static [&'static str] = &[
        "kind",
        "api_version",
        "api",
        "version",
        "name",
        "namespace",
        "label_selectors",
        "kubeconfig",
    ];
    type Change = ();

    fn validate(&self) -> Result<(), ArgError> {
        self.selectors().map(|_| ()).map_err(ArgError::from)
    }

    fn reads(&self, _ctx: &ReadCtx<'_>) -> Result<Protocol, ModuleError> {
        let kubectl = Kubectl::new(None, self.kubeconfig.as_deref());
        let script = format!(
            "command -v kubectl >/dev/null 2>&1 || {{ echo 'kubectl: command not found' >&2; exit 127; }}\n{}\n",
            kubectl.cmd(&self.get_args())
        );
        Ok(Protocol::Declared(ReadSet::one(script, Scope::Host)))
    }

    fn decide(&self, observed: &Observed, _ctx: &ReadCtx<'_>) -> Result<Decision<()>, ModuleError> {
        let out = observed.output(0)?;
        let mut data = Map::new();
        let (resources, api_found) = match out.status {
            0 => (
                parse_get_output(&out.stdout_str())
                    .map_err(|e| ModuleError::failed(e.to_string()))?,
                true,
            ),
            127 => return Err(no_kubectl("kubernetes.core.k8s_info")),
            _ if out
                .stderr_str()
                .contains("the server doesn't have a resource type") =>
            {
                (Vec::new(), false)
            }
            rc => {
                return Err(ModuleError::failed(format!(
                    "kubectl get failed (rc {rc}): {}",
                    out.stderr_str().trim()
                )))
            }
        };
        let sels = self.selectors().map_err(ModuleError::Args)?;
        let resources: Vec<Value> = resources
            .into_iter()
            .filter(|o| matches(o, &sels))
            .collect();
        data.insert("resources".into(), Value::Array(resources));
        data.insert("api_found".into(), Value::Bool(api_found));
        Ok(Decision::Plan(Plan::Unchanged(data)))
    }

    async fn apply(&self, _ctx: &ModuleCtx<'_>, _change: ()) -> Result<Map, ModuleError> {
        Ok(Map::new())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::modules::reads::observed_stdout;
    use crate::modules::testutil::{assert_args_complete, TestRender};
    use crate::transport::ExecOutput;

    fn module(v: Value) -> K8sInfo {
        serde_json::from_value(v).expect("args")
    }

    fn decide(m: &K8sInfo, obs: &Observed) -> Result<Map, ModuleError> {
        let r = TestRender::new(json!({}));
        let ctx = r.read_ctx();
        match m.decide(obs, &ctx)? {
            Decision::Plan(Plan::Unchanged(d)) => Ok(d),
            _ => panic!("unchanged"),
        }
    }

    #[test]
    fn args() {
        assert_args_complete::<K8sInfo>();
        assert!(
            module(json!({"kind": "Pod", "label_selectors": ["app in (a)"]}))
                .validate()
                .is_err()
        );
    }

    #[test]
    fn reads_every_namespace_unless_one_is_named() {
        let m = module(json!({"kind": "Deployment", "api_version": "apps/v1"}));
        assert_eq!(
            m.get_args(),
            "get deployments.apps --all-namespaces -o json --ignore-not-found"
        );
        let m = module(json!({"kind": "Node", "name": "pi-master"}));
        assert_eq!(
            m.get_args(),
            "get nodes pi-master -o json --ignore-not-found"
        );
        let m = module(json!({"kind": "Pod", "namespace": "airflow"}));
        assert_eq!(
            m.get_args(),
            "get pods -n airflow -o json --ignore-not-found"
        );
    }

    #[test]
    fn resources_are_filtered_by_labels() {
        let list = json!({"kind": "List", "items": [
            {"kind": "Pod", "metadata": {"name": "a", "labels": {"app": "web", "tier": "f"}}},
            {"kind": "Pod", "metadata": {"name": "b", "labels": {"app": "db"}}},
            {"kind": "Pod", "metadata": {"name": "c"}}]});
        let names = |sel: Value| -> Vec<String> {
            let m = module(json!({"kind": "Pod", "label_selectors": sel}));
            decide(&m, &observed_stdout(&[&list.to_string()])).expect("ok")["resources"]
                .as_array()
                .expect("list")
                .iter()
                .map(|o| o["metadata"]["name"].as_str().expect("name").to_string())
                .collect()
        };
        assert_eq!(names(json!([])), ["a", "b", "c"]);
        assert_eq!(names(json!(["app=web"])), ["a"]);
        assert_eq!(names(json!(["app!=web"])), ["b", "c"]);
        assert_eq!(names(json!(["app", "tier"])), ["a"]);
        assert_eq!(names(json!(["!app"])), ["c"]);
        assert_eq!(names(json!(["app==db,!tier"])), ["b"]);
    }

    #[test]
    fn nothing_found_and_unknown_kinds() {
        let m = module(json!({"kind": "Pod", "name": "x", "namespace": "n"}));
        let d = decide(&m, &observed_stdout(&[""])).expect("ok");
        assert_eq!(d["resources"], json!([]));
        assert_eq!(d["api_found"], true);
        let unknown = Observed::new(vec![ExecOutput {
            status: 1,
            stdout: Vec::new(),
            stderr: b"error: the server doesn't have a resource type \"gizmo\"".to_vec(),
        }]);
        let d = decide(&module(json!({"kind": "Gizmo"})), &unknown).expect("ok");
        assert_eq!(d["api_found"], false);
        let missing = Observed::new(vec![ExecOutput {
            status: 127,
            stdout: Vec::new(),
            stderr: Vec::new(),
        }]);
        let err = decide(&module(json!({"kind": "Pod"})), &missing).expect_err("fails");
        assert!(err.to_string().contains("kubectl was not found"), "{err}");
    }
}
