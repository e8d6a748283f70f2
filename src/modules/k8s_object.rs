//! `kubernetes.core.k8s`: make Kubernetes objects present or absent, with
//! kubectl on the node (as `k8s_apply` does) instead of Ansible's Python
//! client on the controller.
//!
//! The objects come from `definition` (a mapping, a list, or YAML text with
//! several documents), from `src` (a manifest file on the control machine),
//! or from `api_version`/`kind`/`name`/`namespace` alone. The declared read
//! is one `kubectl get -f - -o json --ignore-not-found` of the objects'
//! identities (never their content: a Secret's data stays off the command
//! line). An object is unchanged when every field the definition gives has
//! the same value on the live object (the server adds defaults and status;
//! Ansible's k8s compares the same way, through a dry-run merge).
//! Applying is `kubectl apply -f -` with the objects as JSON on stdin;
//! deleting is `kubectl delete RESOURCE NAME --ignore-not-found`.

use std::path::Path;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine as _;
use serde::Deserialize;

use super::args::Presence as State;
use super::args::{bool_ish, opt_f64_ish, opt_string_ish, opt_u64_ish};
use super::k8s::{
    is_cluster_scoped, key_of, list_json, parse_get_output, redact_secret, str_at,
    strip_server_fields, to_yaml_docs, Kubectl, WORKLOADS,
};
use super::k8s_apply::{check_objects, parse_text, wait_ready, Object};
use super::{
    ArgError, Decision, Diff, Module, ModuleCtx, ModuleError, Observed, Plan, Protocol, ReadCtx,
    ReadSet, Scope,
};
use crate::transport::shell_quote;
use crate::{Map, Value};

/// Arguments of `kubernetes.core.k8s` (Ansible's names).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct K8s {
    /// `present` or `absent`.
    #[serde(default)]
    state: State,
    /// Objects: a mapping, a list of mappings, or YAML text.
    #[serde(default, alias = "resource_definition")]
    definition: Option<Value>,
    /// A manifest file on the control machine.
    #[serde(default, deserialize_with = "opt_string_ish")]
    src: Option<String>,
    /// apiVersion when the definition gives none (default `v1`).
    #[serde(
        default,
        alias = "api",
        alias = "version",
        deserialize_with = "opt_string_ish"
    )]
    api_version: Option<String>,
    /// kind when the definition gives none.
    #[serde(default, deserialize_with = "opt_string_ish")]
    kind: Option<String>,
    /// metadata.name when the definition gives none.
    #[serde(default, deserialize_with = "opt_string_ish")]
    name: Option<String>,
    /// metadata.namespace of namespaced objects that give none.
    #[serde(default, deserialize_with = "opt_string_ish")]
    namespace: Option<String>,
    /// Passed to kubectl as `--kubeconfig`.
    #[serde(default, deserialize_with = "opt_string_ish")]
    kubeconfig: Option<String>,
    /// Apply the objects (kubectl apply); drover always applies, this only
    /// names the method in the result.
    #[serde(default, deserialize_with = "bool_ish")]
    apply: bool,
    /// Wait until workloads are ready (present) or objects gone (absent).
    #[serde(default, deserialize_with = "bool_ish")]
    wait: bool,
    /// Seconds to wait (default 120).
    #[serde(default, deserialize_with = "opt_u64_ish")]
    wait_timeout: Option<u64>,
    /// Seconds between polls (default 5).
    #[serde(default, deserialize_with = "opt_f64_ish")]
    wait_sleep: Option<f64>,
}

/// What one object needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Not live: create it.
    Create,
    /// Live but different: apply it.
    Update,
    /// Live and `state: absent`: delete it.
    Delete,
    /// Nothing to do.
    Keep,
}

/// The planned change: every object with what it needs.
#[derive(Debug)]
pub struct K8sChange {
    objects: Vec<(Object, Method)>,
}

/// `deployments.apps`: the resource name kubectl accepts for a kind.
pub(super) fn resource_word(kind: &str, api_version: &str) -> String {
    let k = kind.to_lowercase();
    let plural = if k.ends_with('s') || k.ends_with('x') || k.ends_with("ch") || k.ends_with("sh") {
        format!("{k}es")
    } else if k.ends_with('y') && !k.ends_with("ay") && !k.ends_with("ey") && !k.ends_with("oy") {
        format!("{}ies", &k[..k.len() - 1])
    } else {
        format!("{k}s")
    };
    match api_version.split_once('/') {
        Some((group, _)) => format!("{plural}.{group}"),
        None => plural,
    }
}

/// Does `live` hold every field `want` gives, with the same value? Lists
/// must have the same length, their items compared the same way.
pub fn holds(live: &Value, want: &Value) -> bool {
    match (live, want) {
        (Value::Object(l), Value::Object(w)) => w.iter().all(|(k, wv)| match l.get(k) {
            Some(lv) => holds(lv, wv),
            None => wv.is_null(),
        }),
        (Value::Array(l), Value::Array(w)) => {
            l.len() == w.len() && l.iter().zip(w).all(|(a, b)| holds(a, b))
        }
        (l, w) => l == w,
    }
}

/// A Secret's `stringData` as the API server stores it: base64 in `data`.
fn secret_as_stored(obj: &Value) -> Option<Value> {
    if str_at(obj, &["kind"]) != Some("Secret") {
        return None;
    }
    let string_data = obj.get("stringData")?.as_object()?;
    let mut out = obj.clone();
    let map = out.as_object_mut()?;
    map.remove("stringData");
    let data = map
        .entry("data")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()?;
    for (k, v) in string_data {
        let text = v
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| v.to_string());
        data.insert(
            k.clone(),
            Value::String(base64::engine::general_purpose::STANDARD.encode(text)),
        );
    }
    Some(out)
}

/// Is the live object what `want` defines?
fn up_to_date(live: &Value, want: &Value) -> bool {
    holds(live, want) || secret_as_stored(want).is_some_and(|w| holds(live, &w))
}

/// The identity of an object, for `kubectl get -f -`.
fn identity(obj: &Object) -> Value {
    let mut meta = Map::new();
    meta.insert("name".into(), Value::String(obj.key.name.clone()));
    if let Some(ns) = &obj.key.namespace {
        meta.insert("namespace".into(), Value::String(ns.clone()));
    }
    serde_json::json!({
        "apiVersion": str_at(&obj.value, &["apiVersion"]).unwrap_or("v1"),
        "kind": obj.key.kind,
        "metadata": meta,
    })
}

/// A read of the live objects: kubectl's absence is exit 127, said so.
pub(super) fn get_script(kubectl: &Kubectl, stdin_json: &str, args: &str) -> String {
    format!(
        "command -v {k} >/dev/null 2>&1 || {{ echo 'kubectl: command not found' >&2; exit 127; }}\n\
         printf '%s' {json} | {cmd}\n",
        k = shell_quote(kubectl.command.split_whitespace().next().unwrap_or("kubectl")),
        json = shell_quote(stdin_json),
        cmd = kubectl.cmd(args),
    )
}

/// The failure when kubectl is not on the node.
pub(super) fn no_kubectl(module: &str) -> ModuleError {
    ModuleError::failed(format!(
        "kubectl was not found on the target: {module} runs kubectl on the node \
         (install kubectl or k3s there first, or give kubeconfig for one that is)"
    ))
}

impl K8s {
    fn kubectl(&self) -> Kubectl {
        Kubectl::new(None, self.kubeconfig.as_deref())
    }

    /// The objects as given, with apiVersion/kind/name/namespace filled in
    /// from the arguments where the definition has none.
    fn objects(&self, ctx: &ReadCtx<'_>) -> Result<Vec<Object>, ModuleError> {
        let mut raw: Vec<(Value, String)> = Vec::new();
        match (&self.src, &self.definition) {
            (Some(src), _) => {
                let path = ctx.find_local(src)?;
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| ModuleError::failed(format!("{}: {e}", path.display())))?;
                let json = src.ends_with(".json");
                raw.extend(parse_text(&text, &path, json)?);
            }
            (None, Some(Value::String(s))) => {
                raw.extend(parse_text(s, Path::new("<definition>"), false)?)
            }
            (None, Some(Value::Array(items))) => {
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::String(s) => {
                            raw.extend(parse_text(s, Path::new("<definition>"), false)?)
                        }
                        other => raw.push((other.clone(), format!("<definition> item {}", i + 1))),
                    }
                }
            }
            (None, Some(Value::Null) | None) => {
                raw.push((Value::Object(Map::new()), "<args>".into()))
            }
            (None, Some(other)) => raw.push((other.clone(), "<definition>".into())),
        }
        for (v, _) in &mut raw {
            self.fill_in(v);
        }
        let raw = check_objects(raw)?;
        if raw.is_empty() {
            return Err(ModuleError::failed(
                "no Kubernetes objects in the definition",
            ));
        }
        let mut out: Vec<Object> = Vec::new();
        for (value, origin) in raw {
            let key = key_of(&value, &[])
                .ok_or_else(|| ModuleError::failed(format!("{origin}: no kind or name")))?;
            // kubectl would take these for options (Kubernetes refuses such names).
            if [Some(&key.kind), Some(&key.name), key.namespace.as_ref()]
                .iter()
                .flatten()
                .any(|v| v.starts_with('-'))
            {
                return Err(ModuleError::failed(format!(
                    "{origin}: {key}: kind, name and namespace must not start with '-'"
                )));
            }
            if out.iter().any(|o| o.key == key) {
                return Err(ModuleError::failed(format!(
                    "{origin}: {key} is defined twice"
                )));
            }
            out.push(Object { key, value, origin });
        }
        Ok(out)
    }

    fn fill_in(&self, v: &mut Value) {
        let Some(m) = v.as_object_mut() else {
            return;
        };
        if !m.contains_key("apiVersion") {
            let api = self.api_version.clone().unwrap_or_else(|| "v1".into());
            m.insert("apiVersion".into(), Value::String(api));
        }
        if let (Some(kind), false) = (&self.kind, m.contains_key("kind")) {
            m.insert("kind".into(), Value::String(kind.clone()));
        }
        let kind = m
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let meta = m
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(meta) = meta.as_object_mut() {
            if let (Some(name), false) = (&self.name, meta.contains_key("name")) {
                meta.insert("name".into(), Value::String(name.clone()));
            }
            if let (Some(ns), false) = (&self.namespace, meta.contains_key("namespace")) {
                if !is_cluster_scoped(&kind) {
                    meta.insert("namespace".into(), Value::String(ns.clone()));
                }
            }
        }
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.wait_timeout.unwrap_or(120))
    }

    fn sleep(&self) -> Duration {
        Duration::from_secs_f64(self.wait_sleep.unwrap_or(5.0).max(0.05))
    }

    /// The plan from the live objects kubectl printed.
    fn plan(
        &self,
        objects: Vec<Object>,
        live: &[Value],
        diff: bool,
    ) -> Result<Plan<K8sChange>, ModuleError> {
        let mut planned = Vec::new();
        let (mut before, mut after) = (Vec::new(), Vec::new());
        let mut results = Vec::new();
        for o in objects {
            let found = live
                .iter()
                .find(|l| key_of(l, &[]).as_ref() == Some(&o.key));
            let method = match (self.state, found) {
                (State::Present, None) => Method::Create,
                (State::Present, Some(l)) if up_to_date(l, &o.value) => Method::Keep,
                (State::Present, Some(_)) => Method::Update,
                (State::Absent, Some(_)) => Method::Delete,
                (State::Absent, None) => Method::Keep,
            };
            let shown = match (method, found) {
                (Method::Keep | Method::Delete, Some(l)) => l.clone(),
                (Method::Keep | Method::Delete, None) => Value::Object(Map::new()),
                _ => o.value.clone(),
            };
            results.push(result_entry(shown, method, self.apply));
            if method != Method::Keep {
                if let Some(l) = found {
                    let mut l = l.clone();
                    strip_server_fields(&mut l);
                    redact_secret(&mut l, None);
                    before.push(l);
                }
                if method != Method::Delete {
                    let mut w = o.value.clone();
                    redact_secret(&mut w, Some(found.unwrap_or(&Value::Null)));
                    after.push(w);
                }
            }
            planned.push((o, method));
        }
        let data = result_data(results);
        if planned.iter().all(|(_, m)| *m == Method::Keep) {
            return Ok(Plan::Unchanged(data));
        }
        let diff = diff.then(|| Diff {
            before_header: "live objects".into(),
            after_header: "definition".into(),
            before: to_yaml_docs(&before),
            after: to_yaml_docs(&after),
        });
        Ok(Plan::Change {
            change: K8sChange { objects: planned },
            diff,
            data,
        })
    }
}

/// Ansible's per-object result: the object, and how it was handled. A
/// Secret's values are redacted: Ansible registers them, but drover keeps
/// Secret values out of its output and events (as `k8s_apply` does).
fn result_entry(mut object: Value, method: Method, apply: bool) -> Map {
    redact_secret(&mut object, None);
    let mut m = Map::new();
    m.insert("result".into(), object);
    let method = match method {
        Method::Create if apply => Some("apply"),
        Method::Update if apply => Some("apply"),
        Method::Create => Some("create"),
        Method::Update => Some("update"),
        Method::Delete => Some("delete"),
        Method::Keep => None,
    };
    if let Some(method) = method {
        m.insert("method".into(), Value::String(method.into()));
    }
    m.insert("changed".into(), Value::Bool(method.is_some()));
    m
}

/// One object: its result at the top; several: `result.results`, as
/// Ansible registers them.
fn result_data(mut results: Vec<Map>) -> Map {
    if results.len() == 1 {
        let mut m = results.remove(0);
        m.remove("changed");
        return m;
    }
    let mut m = Map::new();
    m.insert(
        "result".into(),
        serde_json::json!({"results": results.into_iter().map(Value::Object).collect::<Vec<_>>()}),
    );
    m
}

#[async_trait]
impl Module for K8s {
    const NAME: &'static str = "k8s";
    const ARGS: &'static [&'static str] = &[
        "state",
        "definition",
        "resource_definition",
        "src",
        "api_version",
        "api",
        "version",
        "kind",
        "name",
        "namespace",
        "kubeconfig",
        "apply",
        "wait",
        "wait_timeout",
        "wait_sleep",
    ];
    type Change = K8sChange;

    fn validate(&self) -> Result<(), ArgError> {
        if self.src.is_some() && self.definition.as_ref().is_some_and(|d| !d.is_null()) {
            return Err("parameters are mutually exclusive: src|resource_definition".into());
        }
        let no_def = self.src.is_none() && self.definition.as_ref().is_none_or(Value::is_null);
        if no_def && (self.kind.is_none() || self.name.is_none()) {
            return Err("one of definition or src is required, or kind and name".into());
        }
        Ok(())
    }

    fn reads(&self, ctx: &ReadCtx<'_>) -> Result<Protocol, ModuleError> {
        let objects = self.objects(ctx)?;
        let ids: Vec<Value> = objects.iter().map(identity).collect();
        let json = String::from_utf8(list_json(&ids)).unwrap_or_default();
        Ok(Protocol::Declared(ReadSet::one(
            get_script(
                &self.kubectl(),
                &json,
                "get -f - -o json --ignore-not-found",
            ),
            Scope::Host,
        )))
    }

    fn decide(
        &self,
        observed: &Observed,
        ctx: &ReadCtx<'_>,
    ) -> Result<Decision<K8sChange>, ModuleError> {
        let out = observed.output(0)?;
        let live = match out.status {
            0 => parse_get_output(&out.stdout_str())
                .map_err(|e| ModuleError::failed(e.to_string()))?,
            // In check mode kubectl may not be installed yet (the run
            // would install it): every object would then be created.
            127 if ctx.check => Vec::new(),
            127 => return Err(no_kubectl("kubernetes.core.k8s")),
            rc => {
                return Err(ModuleError::failed(format!(
                    "kubectl get failed (rc {rc}): {}",
                    out.stderr_str().trim()
                )))
            }
        };
        self.plan(self.objects(ctx)?, &live, ctx.diff)
            .map(Decision::Plan)
    }

    async fn apply(&self, ctx: &ModuleCtx<'_>, change: K8sChange) -> Result<Map, ModuleError> {
        let kubectl = self.kubectl();
        let to_apply: Vec<&Object> = change
            .objects
            .iter()
            .filter(|(_, m)| matches!(m, Method::Create | Method::Update))
            .map(|(o, _)| o)
            .collect();
        if !to_apply.is_empty() {
            kubectl
                .run(
                    ctx.remote,
                    "apply -f -",
                    &list_json(to_apply.iter().map(|o| &o.value)),
                )
                .await?;
        }
        for (o, _) in change.objects.iter().filter(|(_, m)| *m == Method::Delete) {
            let api = str_at(&o.value, &["apiVersion"]).unwrap_or("v1");
            let mut args = format!(
                "delete {} {} --ignore-not-found",
                shell_quote(&resource_word(&o.key.kind, api)),
                shell_quote(&o.key.name)
            );
            if let Some(ns) = &o.key.namespace {
                args.push_str(&format!(" -n {}", shell_quote(ns)));
            }
            kubectl.run(ctx.remote, &args, b"").await?;
        }
        let all: Vec<&Object> = change.objects.iter().map(|(o, _)| o).collect();
        let ids: Vec<Value> = all.iter().map(|o| identity(o)).collect();
        if self.wait {
            let start = Instant::now();
            if self.state == State::Present {
                let workloads: Vec<&Object> = to_apply
                    .iter()
                    .copied()
                    .filter(|o| WORKLOADS.contains(&o.key.kind.as_str()))
                    .collect();
                if !workloads.is_empty() {
                    wait_ready(ctx, &kubectl, &workloads, self.timeout(), self.sleep()).await?;
                }
            } else {
                loop {
                    let out = kubectl
                        .run(
                            ctx.remote,
                            "get -f - -o json --ignore-not-found",
                            &list_json(&ids),
                        )
                        .await?;
                    let live = parse_get_output(&out.stdout_str())
                        .map_err(|e| ModuleError::failed(e.to_string()))?;
                    if live.is_empty() {
                        break;
                    }
                    if start.elapsed() >= self.timeout() {
                        return Err(ModuleError::failed(format!(
                            "timed out after {} s waiting for {} object(s) to be deleted",
                            self.timeout().as_secs(),
                            live.len()
                        )));
                    }
                    tokio::time::sleep(self.sleep()).await;
                }
            }
        }
        if self.state == State::Absent {
            return Ok(Map::new());
        }
        // The result is the objects as the server now has them.
        let out = kubectl
            .run(
                ctx.remote,
                "get -f - -o json --ignore-not-found",
                &list_json(&ids),
            )
            .await?;
        let live =
            parse_get_output(&out.stdout_str()).map_err(|e| ModuleError::failed(e.to_string()))?;
        let results = change
            .objects
            .into_iter()
            .map(|(o, method)| {
                let now = live
                    .iter()
                    .find(|l| key_of(l, &[]).as_ref() == Some(&o.key))
                    .cloned()
                    .unwrap_or(o.value);
                result_entry(now, method, self.apply)
            })
            .collect();
        Ok(result_data(results))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::modules::reads::observed_stdout;
    use crate::modules::testutil::{assert_args_complete, TestRender};
    use crate::transport::ExecOutput;

    fn module(v: Value) -> K8s {
        serde_json::from_value(v).expect("args")
    }

    fn ctx<'a>(render: &'a TestRender, check: bool) -> ReadCtx<'a> {
        ReadCtx {
            host: "h",
            check,
            diff: true,
            render,
            search: &[],
        }
    }

    fn plan(m: &K8s, live: &str, check: bool) -> Result<Plan<K8sChange>, ModuleError> {
        let r = TestRender::new(json!({}));
        match m.decide(&observed_stdout(&[live]), &ctx(&r, check))? {
            Decision::Plan(p) => Ok(p),
            Decision::Read(_) => panic!("one read"),
        }
    }

    fn methods(p: &Plan<K8sChange>) -> Vec<Method> {
        match p {
            Plan::Change { change, .. } => change.objects.iter().map(|(_, m)| *m).collect(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn args() {
        assert_args_complete::<K8s>();
        assert!(module(json!({"src": "a", "definition": {}}))
            .validate()
            .is_err());
        assert!(module(json!({"kind": "Namespace"})).validate().is_err());
        assert!(module(json!({"kind": "Namespace", "name": "x"}))
            .validate()
            .is_ok());
    }

    #[test]
    fn resource_words_are_what_kubectl_takes() {
        assert_eq!(resource_word("ConfigMap", "v1"), "configmaps");
        assert_eq!(resource_word("Deployment", "apps/v1"), "deployments.apps");
        assert_eq!(
            resource_word("Ingress", "networking.k8s.io/v1"),
            "ingresses.networking.k8s.io"
        );
        assert_eq!(
            resource_word("NetworkPolicy", "networking.k8s.io/v1"),
            "networkpolicies.networking.k8s.io"
        );
        assert_eq!(resource_word("Gateway", "g/v1"), "gateways.g");
    }

    #[test]
    fn the_read_names_objects_not_their_content() {
        let r = TestRender::new(json!({}));
        let m = module(json!({"namespace": "airflow", "definition": {
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "pw"},
            "stringData": {"password": "hunter2"}}}));
        let Protocol::Declared(reads) = m.reads(&ctx(&r, false)).expect("reads") else {
            panic!("declared")
        };
        let script = &reads.reads[0].script;
        assert!(!script.contains("hunter2"), "{script}");
        assert!(script.contains("\"namespace\":\"airflow\""), "{script}");
        assert!(script.contains("kubectl get -f - -o json --ignore-not-found"));
    }

    #[test]
    fn present_creates_updates_or_keeps() {
        let m = module(json!({"kind": "Namespace", "name": "airflow"}));
        let p = plan(&m, "", false).expect("plan");
        assert_eq!(methods(&p), [Method::Create]);
        let live = json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "airflow", "uid": "u", "resourceVersion": "3"},
            "status": {"phase": "Active"}});
        let p = plan(&m, &live.to_string(), false).expect("plan");
        let Plan::Unchanged(data) = p else {
            panic!("unchanged")
        };
        assert_eq!(data["result"]["metadata"]["uid"], "u");
        assert!(data.get("method").is_none());

        let m = module(
            json!({"namespace": "airflow", "definition": "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: '1'\n"}),
        );
        let live = json!({"kind": "List", "items": [{"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "airflow", "uid": "x"}, "data": {"a": "2"}}]});
        let p = plan(&m, &live.to_string(), false).expect("plan");
        assert_eq!(methods(&p), [Method::Update]);
        let Plan::Change { diff, data, .. } = p else {
            panic!("change")
        };
        assert_eq!(data["method"], "update");
        let diff = diff.expect("diff");
        assert!(diff.before.contains("a: '2'"), "{}", diff.before);
        assert!(!diff.before.contains("uid"), "{}", diff.before);
        assert!(diff.after.contains("a: '1'"), "{}", diff.after);
    }

    #[test]
    fn secrets_given_as_string_data_match_their_stored_form() {
        let m = module(json!({"definition": {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "s", "namespace": "a"}, "stringData": {"k": "v"}}}));
        let live = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "s", "namespace": "a"}, "data": {"k": "dg=="}, "type": "Opaque"});
        assert!(matches!(
            plan(&m, &live.to_string(), false).expect("plan"),
            Plan::Unchanged(_)
        ));
        let live = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "s", "namespace": "a"}, "data": {"k": "dw=="}});
        let p = plan(&m, &live.to_string(), false).expect("plan");
        let Plan::Change { diff, .. } = p else {
            panic!("change")
        };
        let diff = diff.expect("diff");
        assert!(!diff.after.contains(": v\n"), "{}", diff.after);
        assert!(!diff.before.contains("dw=="), "{}", diff.before);
    }

    #[test]
    fn absent_deletes_only_what_is_live() {
        let m =
            module(json!({"state": "absent", "kind": "ConfigMap", "name": "c", "namespace": "n"}));
        assert!(matches!(
            plan(&m, "", false).expect("plan"),
            Plan::Unchanged(_)
        ));
        let live = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n"}});
        let p = plan(&m, &live.to_string(), false).expect("plan");
        assert_eq!(methods(&p), [Method::Delete]);
    }

    #[test]
    fn missing_kubectl_is_said_and_check_mode_plans_creation() {
        let m = module(json!({"kind": "Namespace", "name": "x"}));
        let r = TestRender::new(json!({}));
        let missing = Observed::new(vec![ExecOutput {
            status: 127,
            stdout: Vec::new(),
            stderr: b"kubectl: command not found".to_vec(),
        }]);
        let err = match m.decide(&missing, &ctx(&r, false)) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("fails"),
        };
        assert!(err.contains("kubectl was not found on the target"), "{err}");
        assert!(matches!(
            m.decide(&missing, &ctx(&r, true)),
            Ok(Decision::Plan(Plan::Change { .. }))
        ));
    }

    #[test]
    fn several_objects_register_results() {
        let m = module(json!({"definition": [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}},
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "a"}}]}));
        let live = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}});
        let Plan::Change { data, .. } = plan(&m, &live.to_string(), false).expect("plan") else {
            panic!("change")
        };
        let results = data["result"]["results"].as_array().expect("results");
        assert_eq!(results.len(), 2);
        assert_eq!(results[0]["changed"], false);
        assert_eq!(results[1]["method"], "create");
    }

    #[test]
    fn holds_compares_what_the_definition_gives() {
        assert!(holds(
            &json!({"a": 1, "b": {"c": 2, "d": 3}}),
            &json!({"b": {"c": 2}})
        ));
        assert!(!holds(&json!({"a": 1}), &json!({"a": 2})));
        assert!(holds(
            &json!({"l": [{"x": 1, "y": 2}]}),
            &json!({"l": [{"x": 1}]})
        ));
        assert!(!holds(&json!({"l": [1, 2]}), &json!({"l": [1]})));
        assert!(holds(&json!({}), &json!({"a": null})));
    }
}
