//! `k8s_apply` (drover's own): apply Kubernetes manifests with kubectl in
//! dependency order and wait for workloads to become ready between groups.
//!
//! Manifests come from `src` (a file or a directory on the control machine,
//! `*.j2` rendered with the task's variables) or inline `definition`. All of
//! them are parsed before the host is touched. Objects are ordered into
//! dependency levels (a namespaced object after its Namespace, a workload
//! after the ConfigMaps/Secrets/PVCs/ServiceAccount its pods use, a PVC after
//! its PV and StorageClass, a binding after its role, a custom resource after
//! its CRD, anything after what its `drover.dev/depends-on` annotation
//! names); within a level, Helm's kind order.
//!
//! Each object carries `drover.dev/applied-sha256`, the hash of the object as
//! given; a live object with the same hash is unchanged. The live objects are
//! read in one `kubectl get`; only the changed objects are applied, group by
//! group, with a readiness wait after each group that holds workloads
//! (each group gets `wait_timeout`). A workload a `drover.dev/depends-on`
//! annotation names outside the set must be live and ready before the
//! annotated object is applied.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Deserialize;

use super::args::{bool_ish, opt_f64_ish, opt_string_ish, opt_u64_ish, yes};
use super::k8s::{
    group_objects, is_cluster_scoped, key_of, list_json, object_hash, parse_get_output, readiness,
    redact_secret, set_annotation, str_at, strip_server_fields, to_yaml_docs, Kubectl, ObjKey,
    Readiness, HASH_ANNOTATION, WORKLOADS,
};
use super::{Diff, Module, ModuleCtx, ModuleError, Plan};
use crate::yaml::{load_str, NodeKind};
use crate::{Map, Value};

/// Arguments of `k8s_apply`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct K8sApply {
    /// Manifest file or directory on the control machine (looked up like
    /// `template`'s src); `*.yaml`, `*.yml`, `*.json`, and `*.j2` rendered
    /// as templates. A directory's files are taken in name order.
    #[serde(default, deserialize_with = "opt_string_ish")]
    src: Option<String>,
    /// Inline manifests: a YAML string (several documents allowed), a
    /// mapping, or a list of mappings.
    #[serde(default)]
    definition: Option<Value>,
    /// Namespace for namespaced objects that name none.
    #[serde(default, deserialize_with = "opt_string_ish")]
    namespace: Option<String>,
    /// The kubectl command (`kubectl`, `k3s kubectl`).
    #[serde(default, deserialize_with = "opt_string_ish")]
    kubectl: Option<String>,
    /// Passed as `--kubeconfig`.
    #[serde(default, deserialize_with = "opt_string_ish")]
    kubeconfig: Option<String>,
    /// Wait for each group's workloads to be ready before the next group.
    #[serde(default = "yes", deserialize_with = "bool_ish")]
    wait: bool,
    /// Seconds to wait for one group (default 300).
    #[serde(default, deserialize_with = "opt_u64_ish")]
    wait_timeout: Option<u64>,
    /// Seconds between readiness polls (default 2).
    #[serde(default, deserialize_with = "opt_f64_ish")]
    wait_interval: Option<f64>,
}

/// What happens to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Not live yet.
    Created,
    /// Live with another hash.
    Configured,
    /// Live with the same hash.
    Unchanged,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Configured => "configured",
            Action::Unchanged => "unchanged",
        }
    }
}

/// One manifest object, ready to apply.
#[derive(Debug, Clone)]
pub struct Object {
    /// Identity.
    pub key: ObjKey,
    /// The object with the hash annotation.
    pub value: Value,
    /// Where it came from (`file:line`).
    pub origin: String,
}

/// What `apply` does: the objects in groups and what each needs.
#[derive(Debug)]
pub struct ApplyChange {
    objects: Vec<Object>,
    actions: Vec<Action>,
    groups: Vec<Vec<usize>>,
    /// Readiness of the live objects when planning (None: not live).
    live_ready: Vec<Option<Readiness>>,
}

/// Documents of a YAML text, each padded with blank lines so that line
/// numbers in errors are those of the whole file. A `---` or `...` at
/// column 0 always separates documents in YAML.
fn split_docs(text: &str) -> Vec<String> {
    let mut docs = Vec::new();
    let mut cur = String::new();
    for (n, line) in text.lines().enumerate() {
        let is_start = line == "---" || line.starts_with("--- ") || line.starts_with("---\t");
        let is_end = line == "..." || line.starts_with("... ");
        if is_start || is_end {
            if !cur.trim().is_empty() {
                docs.push(std::mem::take(&mut cur));
            }
            cur = "\n".repeat(n);
            if is_start {
                // Content after `---` on the same line stays in place.
                cur.push_str("   ");
                cur.push_str(&line[3..]);
            }
            cur.push('\n');
        } else {
            if cur.is_empty() && n > 0 {
                cur = "\n".repeat(n);
            }
            cur.push_str(line);
            cur.push('\n');
        }
    }
    if !cur.trim().is_empty() {
        docs.push(cur);
    }
    docs
}

/// Parse manifest text (YAML, or JSON when `json`) into objects with origins.
pub(super) fn parse_text(
    text: &str,
    path: &Path,
    json: bool,
) -> Result<Vec<(Value, String)>, ModuleError> {
    let mut out = Vec::new();
    if json {
        for (i, v) in serde_json::Deserializer::from_str(text)
            .into_iter::<Value>()
            .enumerate()
        {
            let v = v.map_err(|e| ModuleError::failed(format!("{}: {e}", path.display())))?;
            out.push((v, format!("{} (document {})", path.display(), i + 1)));
        }
        return Ok(out);
    }
    for doc in split_docs(text) {
        let node = load_str(&doc, path).map_err(|e| ModuleError::failed(e.to_string()))?;
        if matches!(node.kind, NodeKind::Null) {
            continue;
        }
        let origin = format!("{}:{}", path.display(), node.pos.line);
        if node.as_map().is_none() {
            return Err(ModuleError::failed(format!(
                "{origin}: a manifest must be a mapping"
            )));
        }
        out.push((node.to_value(), origin));
    }
    Ok(out)
}

/// Expand `List` objects and check that each is an object with apiVersion,
/// kind and metadata.name.
pub(super) fn check_objects(
    raw: Vec<(Value, String)>,
) -> Result<Vec<(Value, String)>, ModuleError> {
    let mut out = Vec::new();
    for (v, origin) in raw {
        if str_at(&v, &["kind"]).is_some_and(|k| k == "List" || k.ends_with("List"))
            && v.get("items").is_some()
        {
            let items = v.get("items").and_then(Value::as_array).ok_or_else(|| {
                ModuleError::failed(format!("{origin}: items of a List must be a list"))
            })?;
            out.extend(check_objects(
                items.iter().map(|i| (i.clone(), origin.clone())).collect(),
            )?);
            continue;
        }
        if !v.is_object() {
            return Err(ModuleError::failed(format!(
                "{origin}: a manifest must be a mapping"
            )));
        }
        for (path, what) in [
            (&["apiVersion"][..], "apiVersion"),
            (&["kind"][..], "kind"),
            (&["metadata", "name"][..], "metadata.name"),
        ] {
            match str_at(&v, path) {
                Some(s) if !s.is_empty() => {}
                _ => {
                    return Err(ModuleError::failed(format!(
                        "{origin}: the manifest has no {what} (a non-empty string)"
                    )))
                }
            }
        }
        out.push((v, origin));
    }
    Ok(out)
}

/// Is `name` a manifest file `k8s_apply` reads from a directory?
fn is_manifest_name(name: &str) -> bool {
    let base = name.strip_suffix(".j2").unwrap_or(name);
    !name.starts_with('.')
        && (name.ends_with(".j2")
            || base.ends_with(".yaml")
            || base.ends_with(".yml")
            || base.ends_with(".json"))
}

/// The files to read for `src`: the file, or a directory's manifest files
/// in name order.
fn src_files(path: &Path) -> Result<Vec<PathBuf>, ModuleError> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let rd = std::fs::read_dir(path)
        .map_err(|e| ModuleError::failed(format!("{}: {e}", path.display())))?;
    let mut files = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| ModuleError::failed(format!("{}: {e}", path.display())))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().is_file() && is_manifest_name(&name) {
            files.push(entry.path());
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(ModuleError::failed(format!(
            "{}: no *.yaml, *.yml, *.json or *.j2 files",
            path.display()
        )));
    }
    Ok(files)
}

impl K8sApply {
    fn kubectl(&self) -> Kubectl {
        Kubectl::new(self.kubectl.as_deref(), self.kubeconfig.as_deref())
    }

    /// Every manifest object, parsed, checked and hashed, with origins.
    async fn load(&self, ctx: &ModuleCtx<'_>) -> Result<Vec<Object>, ModuleError> {
        let mut raw: Vec<(Value, String)> = Vec::new();
        match (&self.src, &self.definition) {
            (Some(_), Some(_)) => {
                return Err(ModuleError::Args(
                    "src and definition are mutually exclusive".into(),
                ))
            }
            (None, None) | (None, Some(Value::Null)) => {
                return Err(ModuleError::Args(
                    "one of src or definition is required".into(),
                ))
            }
            (Some(src), None) => {
                let path = ctx.find_local(src)?;
                let texts = tokio::task::spawn_blocking(move || {
                    src_files(&path)?
                        .into_iter()
                        .map(|f| {
                            let text = std::fs::read(&f).map_err(|e| {
                                ModuleError::failed(format!("{}: {e}", f.display()))
                            })?;
                            let text = String::from_utf8(text).map_err(|_| {
                                ModuleError::failed(format!("{}: not UTF-8", f.display()))
                            })?;
                            Ok((f, text))
                        })
                        .collect::<Result<Vec<_>, ModuleError>>()
                })
                .await
                .map_err(|e| ModuleError::failed(e.to_string()))??;
                for (f, text) in texts {
                    let name = f.to_string_lossy().into_owned();
                    match name.strip_suffix(".j2") {
                        Some(base) => {
                            let text = ctx.render.render(&text, &name)?;
                            // Line numbers are those of the rendered text.
                            let shown = PathBuf::from(format!("{name} (rendered)"));
                            raw.extend(parse_text(&text, &shown, base.ends_with(".json"))?);
                        }
                        None => raw.extend(parse_text(&text, &f, name.ends_with(".json"))?),
                    }
                }
            }
            (None, Some(def)) => {
                let path = Path::new("<definition>");
                match def {
                    Value::String(s) => raw.extend(parse_text(s, path, false)?),
                    Value::Array(items) => {
                        for (i, item) in items.iter().enumerate() {
                            match item {
                                Value::String(s) => raw.extend(parse_text(s, path, false)?),
                                other => raw
                                    .push((other.clone(), format!("<definition> item {}", i + 1))),
                            }
                        }
                    }
                    other => raw.push((other.clone(), "<definition>".into())),
                }
            }
        }
        let raw = check_objects(raw)?;
        if raw.is_empty() {
            return Err(ModuleError::failed("no Kubernetes objects to apply"));
        }
        self.prepare(raw)
    }

    /// Default namespaces, identities (duplicates refused) and hashes.
    fn prepare(&self, raw: Vec<(Value, String)>) -> Result<Vec<Object>, ModuleError> {
        // Custom kinds that their CRD (in the same set) declares cluster-scoped.
        let cluster_kinds: Vec<String> = raw
            .iter()
            .filter(|(v, _)| {
                str_at(v, &["kind"]) == Some("CustomResourceDefinition")
                    && str_at(v, &["spec", "scope"]) == Some("Cluster")
            })
            .filter_map(|(v, _)| str_at(v, &["spec", "names", "kind"]).map(str::to_string))
            .collect();
        let mut seen: HashMap<ObjKey, String> = HashMap::new();
        let mut objects = Vec::new();
        for (mut v, origin) in raw {
            let kind = str_at(&v, &["kind"]).unwrap_or_default().to_string();
            let namespaced = !is_cluster_scoped(&kind) && !cluster_kinds.contains(&kind);
            if let (Some(ns), true) = (&self.namespace, namespaced) {
                if str_at(&v, &["metadata", "namespace"]).is_none() {
                    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
                        meta.insert("namespace".into(), Value::String(ns.clone()));
                    }
                }
            }
            let key = key_of(&v, &cluster_kinds)
                .ok_or_else(|| ModuleError::failed(format!("{origin}: no kind or name")))?;
            if let Some(first) = seen.insert(key.clone(), origin.clone()) {
                return Err(ModuleError::failed(format!(
                    "{origin}: {key} is also defined at {first}"
                )));
            }
            let hash = object_hash(&v);
            set_annotation(&mut v, HASH_ANNOTATION, &hash);
            objects.push(Object {
                key,
                value: v,
                origin,
            });
        }
        Ok(objects)
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.wait_timeout.unwrap_or(300))
    }

    fn interval(&self) -> Duration {
        Duration::from_secs_f64(self.wait_interval.unwrap_or(2.0).max(0.05))
    }
}

/// Actions from the live objects (matched by identity).
fn decide(objects: &[Object], live: &[Value]) -> (Vec<Action>, Vec<Option<Value>>) {
    let cluster_kinds: Vec<String> = objects
        .iter()
        .filter(|o| o.key.namespace.is_none() && !is_cluster_scoped(&o.key.kind))
        .map(|o| o.key.kind.clone())
        .collect();
    let by_key: HashMap<ObjKey, &Value> = live
        .iter()
        .filter_map(|l| key_of(l, &cluster_kinds).map(|k| (k, l)))
        .collect();
    objects
        .iter()
        .map(|o| match by_key.get(&o.key) {
            None => (Action::Created, None),
            Some(l) => {
                let want = super::k8s::annotation(&o.value, HASH_ANNOTATION);
                let have = super::k8s::annotation(l, HASH_ANNOTATION);
                let action = if want.is_some() && want == have {
                    Action::Unchanged
                } else {
                    Action::Configured
                };
                (action, Some((*l).clone()))
            }
        })
        .unzip()
}

/// The result to register: objects with actions, and the groups.
fn result_data(objects: &[Object], actions: &[Action], groups: &[Vec<usize>]) -> Map {
    let objs: Vec<Value> = objects
        .iter()
        .zip(actions)
        .map(|(o, a)| {
            serde_json::json!({
                "kind": o.key.kind,
                "name": o.key.name,
                "namespace": o.key.namespace,
                "action": a.as_str(),
            })
        })
        .collect();
    let groups: Vec<Value> = groups
        .iter()
        .map(|g| {
            Value::Array(
                g.iter()
                    .map(|&i| Value::String(objects[i].key.to_string()))
                    .collect(),
            )
        })
        .collect();
    let mut m = Map::new();
    m.insert("objects".into(), Value::Array(objs));
    m.insert("groups".into(), Value::Array(groups));
    m
}

/// Before/after YAML of the changed objects, Secret values redacted.
fn diff_of(objects: &[Object], actions: &[Action], live: &[Option<Value>]) -> Diff {
    let mut before = Vec::new();
    let mut after = Vec::new();
    for ((o, a), l) in objects.iter().zip(actions).zip(live) {
        if *a == Action::Unchanged {
            continue;
        }
        let mut want = o.value.clone();
        strip_server_fields(&mut want);
        redact_secret(&mut want, Some(l.as_ref().unwrap_or(&Value::Null)));
        after.push(want);
        if let Some(l) = l {
            let mut have = l.clone();
            strip_server_fields(&mut have);
            redact_secret(&mut have, None);
            before.push(have);
        }
    }
    let names = |objs: &[Value]| objs.len();
    Diff {
        before_header: format!("live objects ({})", names(&before)),
        after_header: format!("manifests ({})", names(&after)),
        before: to_yaml_docs(&before),
        after: to_yaml_docs(&after),
    }
}

/// `apiVersion` of the workload kinds a depends-on annotation may name.
fn workload_api_version(kind: &str) -> Option<&'static str> {
    match kind {
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" => Some("apps/v1"),
        "Job" | "CronJob" => Some("batch/v1"),
        "Pod" => Some("v1"),
        _ => None,
    }
}

/// Workloads named by `drover.dev/depends-on` of `objs` that are not in
/// the set, as minimal objects `kubectl get -f -` can look up.
fn outside_dependencies(all: &[Object], objs: &[&Object]) -> Result<Vec<Object>, ModuleError> {
    let mut out: Vec<Object> = Vec::new();
    for o in objs {
        for (kind, name) in super::k8s::depends_on(&o.value)
            .map_err(|e| ModuleError::failed(format!("{}: {e}", o.key)))?
        {
            let Some(api) = workload_api_version(&kind) else {
                continue;
            };
            let key = ObjKey {
                kind: kind.clone(),
                namespace: o.key.namespace.clone(),
                name: name.clone(),
            };
            if all.iter().any(|a| a.key == key) || out.iter().any(|a| a.key == key) {
                continue;
            }
            let mut meta = Map::new();
            meta.insert("name".into(), Value::String(name));
            if let Some(ns) = &key.namespace {
                meta.insert("namespace".into(), Value::String(ns.clone()));
            }
            out.push(Object {
                value: serde_json::json!({"apiVersion": api, "kind": kind, "metadata": meta}),
                origin: format!("{} {}", o.key, super::k8s::DEPENDS_ON_ANNOTATION),
                key,
            });
        }
    }
    Ok(out)
}

/// Poll until every object in `keys` is ready; fail at once on a Failed Job,
/// and at the deadline naming what is not ready and why.
pub(super) async fn wait_ready(
    ctx: &ModuleCtx<'_>,
    kubectl: &Kubectl,
    objects: &[&Object],
    timeout: Duration,
    interval: Duration,
) -> Result<(), ModuleError> {
    let start = Instant::now();
    let stdin = list_json(objects.iter().map(|o| &o.value));
    loop {
        let out = kubectl
            .run(ctx.remote, "get -f - -o json --ignore-not-found", &stdin)
            .await?;
        let live =
            parse_get_output(&out.stdout_str()).map_err(|e| ModuleError::failed(e.to_string()))?;
        let cluster_kinds: Vec<String> = objects
            .iter()
            .filter(|o| o.key.namespace.is_none())
            .map(|o| o.key.kind.clone())
            .collect();
        let by_key: HashMap<ObjKey, &Value> = live
            .iter()
            .filter_map(|l| key_of(l, &cluster_kinds).map(|k| (k, l)))
            .collect();
        let mut waiting = Vec::new();
        for o in objects {
            match by_key.get(&o.key).map(|l| readiness(l)) {
                None => waiting.push(format!("{} (not found)", o.key)),
                Some(Readiness::Ready) => {}
                Some(Readiness::NotReady(why)) => waiting.push(format!("{} ({why})", o.key)),
                Some(Readiness::Failed(why)) => {
                    return Err(ModuleError::failed(format!("{} {why}", o.key)))
                }
            }
        }
        if waiting.is_empty() {
            return Ok(());
        }
        if start.elapsed() >= timeout {
            return Err(ModuleError::failed(format!(
                "timed out after {} s waiting for {} to be ready: {}",
                timeout.as_secs(),
                waiting.len(),
                waiting.join(", ")
            )));
        }
        tokio::time::sleep(interval.min(timeout.saturating_sub(start.elapsed()))).await;
    }
}

#[async_trait]
impl Module for K8sApply {
    const NAME: &'static str = "k8s_apply";
    const ARGS: &'static [&'static str] = &[
        "src",
        "definition",
        "namespace",
        "kubectl",
        "kubeconfig",
        "wait",
        "wait_timeout",
        "wait_interval",
    ];
    type Change = ApplyChange;

    fn validate(&self) -> Result<(), super::ArgError> {
        match (&self.src, &self.definition) {
            (Some(_), Some(_)) => {
                Err("arguments 'src' and 'definition' are mutually exclusive".into())
            }
            (None, None) | (None, Some(Value::Null)) => {
                Err("one of the arguments 'src' or 'definition' is required".into())
            }
            _ => Ok(()),
        }
    }

    async fn run_imperative(&self, ctx: &ModuleCtx<'_>) -> Result<Plan<ApplyChange>, ModuleError> {
        let objects = self.load(ctx).await?;
        let keys: Vec<ObjKey> = objects.iter().map(|o| o.key.clone()).collect();
        let values: Vec<Value> = objects.iter().map(|o| o.value.clone()).collect();
        let groups =
            group_objects(&values, &keys).map_err(|e| ModuleError::failed(e.to_string()))?;
        let kubectl = self.kubectl();
        let stdin = list_json(&values);
        let live = if ctx.check {
            // In check mode kubectl may not be installed yet (a first run
            // that would install k3s): then every object would be created.
            let out = ctx
                .remote
                .exec(&kubectl.cmd("get -f - -o json --ignore-not-found"), &stdin)
                .await?;
            match out.status {
                0 => parse_get_output(&out.stdout_str())
                    .map_err(|e| ModuleError::failed(e.to_string()))?,
                127 => Vec::new(),
                rc => {
                    return Err(ModuleError::failed(format!(
                        "kubectl get failed (rc {rc}): {}",
                        out.stderr_str().trim()
                    )))
                }
            }
        } else {
            let out = kubectl
                .run(ctx.remote, "get -f - -o json --ignore-not-found", &stdin)
                .await?;
            parse_get_output(&out.stdout_str()).map_err(|e| ModuleError::failed(e.to_string()))?
        };
        let (actions, live) = decide(&objects, &live);
        let data = result_data(&objects, &actions, &groups);
        if actions.iter().all(|a| *a == Action::Unchanged) {
            return Ok(Plan::Unchanged(data));
        }
        let diff = ctx.diff.then(|| diff_of(&objects, &actions, &live));
        let live_ready = live.iter().map(|l| l.as_ref().map(readiness)).collect();
        Ok(Plan::Change {
            change: ApplyChange {
                objects,
                actions,
                groups,
                live_ready,
            },
            diff,
            data,
        })
    }

    async fn apply(&self, ctx: &ModuleCtx<'_>, change: ApplyChange) -> Result<Map, ModuleError> {
        let kubectl = self.kubectl();
        let ApplyChange {
            objects,
            actions,
            groups,
            live_ready,
        } = change;
        let changed = |i: &usize| actions[*i] != Action::Unchanged;
        let last = groups
            .iter()
            .rposition(|g| g.iter().any(changed))
            .unwrap_or(0);
        let mut output = Vec::new();
        for (n, group) in groups.iter().enumerate().take(last + 1) {
            let to_apply: Vec<&Object> = group
                .iter()
                .filter(|i| changed(i))
                .map(|&i| &objects[i])
                .collect();
            // Before a later group goes in, this group's workloads must be
            // ready: those just applied, and unchanged ones found not ready.
            let to_wait: Vec<&Object> = group
                .iter()
                .filter(|&&i| WORKLOADS.contains(&objects[i].key.kind.as_str()))
                .filter(|&&i| changed(&i) || live_ready[i] != Some(Readiness::Ready))
                .map(|&i| &objects[i])
                .collect();
            // What these objects' depends-on annotations name outside the
            // set must be live and ready first.
            let outside = outside_dependencies(&objects, &to_apply)?;
            if self.wait && !outside.is_empty() {
                let outside: Vec<&Object> = outside.iter().collect();
                wait_ready(ctx, &kubectl, &outside, self.timeout(), self.interval()).await?;
            }
            if !to_apply.is_empty() {
                let out = kubectl
                    .run(
                        ctx.remote,
                        "apply -f -",
                        &list_json(to_apply.iter().map(|o| &o.value)),
                    )
                    .await
                    .map_err(|e| {
                        ModuleError::failed(format!(
                            "applying group {} ({}): {e}",
                            n + 1,
                            to_apply
                                .iter()
                                .map(|o| o.key.to_string())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                    })?;
                output.extend(out.stdout_str().lines().map(|l| Value::String(l.into())));
            }
            if self.wait && !to_wait.is_empty() {
                wait_ready(ctx, &kubectl, &to_wait, self.timeout(), self.interval()).await?;
            }
        }
        let mut m = Map::new();
        m.insert("stdout_lines".into(), Value::Array(output));
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::modules::testutil::{assert_args_complete, Harness};

    fn module(v: Value) -> K8sApply {
        serde_json::from_value(v).expect("args")
    }

    #[test]
    fn args() {
        assert_args_complete::<K8sApply>();
    }

    #[test]
    fn documents_keep_their_line_numbers() {
        let text = "# c\n---\na: 1\n---\n\n--- {b: 2}\n...\nc: 3\n";
        let docs = split_docs(text);
        assert_eq!(docs.len(), 4, "{docs:?}");
        let objs = parse_text(text, Path::new("m.yaml"), false).expect("parse");
        let origins: Vec<&str> = objs.iter().map(|(_, o)| o.as_str()).collect();
        assert_eq!(origins, ["m.yaml:3", "m.yaml:6", "m.yaml:8"]);
        let err =
            parse_text("a: 1\n---\nb: [1,\n", Path::new("bad.yaml"), false).expect_err("bad yaml");
        assert!(err.to_string().starts_with("bad.yaml:"), "{err}");
        let err = parse_text("a: 1\n---\n- x\n", Path::new("l.yaml"), false).expect_err("list");
        assert!(err.to_string().contains("l.yaml:3"), "{err}");
    }

    #[test]
    fn objects_are_checked_namespaced_and_hashed() {
        let m = module(json!({"definition": "x", "namespace": "airflow"}));
        let raw = check_objects(vec![
            (
                json!({"apiVersion": "v1", "kind": "List", "items": [
                    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}},
                    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "airflow"}}]}),
                "f:1".into(),
            ),
            (
                json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "other"}}),
                "f:9".into(),
            ),
        ])
        .expect("check");
        let objs = m.prepare(raw).expect("prepare");
        let keys: Vec<String> = objs.iter().map(|o| o.key.to_string()).collect();
        assert_eq!(
            keys,
            ["ConfigMap/airflow/c", "Namespace/airflow", "Secret/other/s"]
        );
        assert!(str_at(&objs[1].value, &["metadata", "namespace"]).is_none());
        let h = super::super::k8s::annotation(&objs[0].value, HASH_ANNOTATION).expect("hash");
        let mut plain = objs[0].value.clone();
        plain["metadata"]
            .as_object_mut()
            .expect("meta")
            .remove("annotations");
        assert_eq!(h, object_hash(&plain));

        let err = check_objects(vec![(
            json!({"kind": "ConfigMap", "metadata": {"name": "c"}}),
            "f:3".into(),
        )])
        .expect_err("no apiVersion");
        assert!(
            err.to_string()
                .contains("f:3: the manifest has no apiVersion"),
            "{err}"
        );
        let dup = vec![
            (
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
                "a:1".into(),
            ),
            (
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "airflow"}}),
                "b:1".into(),
            ),
        ];
        let err = m.prepare(dup).expect_err("duplicate");
        assert!(
            err.to_string()
                .contains("b:1: ConfigMap/airflow/c is also defined at a:1"),
            "{err}"
        );
    }

    #[test]
    fn unchanged_only_when_the_live_hash_matches() {
        let m = module(json!({"definition": "x"}));
        let objs = m
            .prepare(vec![
                (json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "n"}, "data": {"k": "1"}}), "f:1".into()),
                (json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b", "namespace": "n"}}), "f:2".into()),
                (json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n"}}), "f:3".into()),
            ])
            .expect("prepare");
        let mut live_a = objs[0].value.clone();
        live_a["metadata"]["uid"] = json!("u1");
        let mut live_b = objs[1].value.clone();
        set_annotation(&mut live_b, HASH_ANNOTATION, "0000");
        let (actions, live) = decide(&objs, &[live_a, live_b]);
        assert_eq!(
            actions,
            [Action::Unchanged, Action::Configured, Action::Created]
        );
        assert!(live[2].is_none());
        let data = result_data(&objs, &actions, &[vec![0, 1, 2]]);
        assert_eq!(data["objects"][1]["action"], "configured");
        assert_eq!(data["groups"][0][2], "ConfigMap/n/c");
    }

    #[test]
    fn diffs_never_show_secret_values() {
        let m = module(json!({"definition": "x"}));
        let objs = m
            .prepare(vec![(
                json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "n"},
                       "stringData": {"password": "hunter2-new"}}),
                "f:1".into(),
            )])
            .expect("prepare");
        let live = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "n", "uid": "x"},
                          "data": {"password": "aHVudGVyMi1vbGQ="}});
        let (actions, live) = decide(&objs, &[live]);
        let d = diff_of(&objs, &actions, &live);
        for text in [&d.before, &d.after] {
            assert!(
                !text.contains("hunter2") && !text.contains("aHVudGVy"),
                "{text}"
            );
        }
        assert!(
            d.after.contains("password: <redacted, changed>"),
            "{}",
            d.after
        );
        assert!(d.before.contains("password: <redacted>"), "{}", d.before);
        assert!(!d.after.contains(HASH_ANNOTATION) && !d.before.contains("uid"));
    }

    /// A fake kubectl: `get` prints the file `live.json` if present,
    /// `apply` records its stdin and argv in `applied.N.json`.
    fn fake_kubectl(h: &Harness) -> String {
        let dir = h.root().to_path_buf();
        let script = dir.join("kubectl");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\nd={}\necho \"$*\" >> \"$d/argv.log\"\ncase \"$1\" in\n  get) cat > /dev/null; [ -f \"$d/live.json\" ] && cat \"$d/live.json\"; exit 0;;\n  apply) n=$(ls \"$d\" | grep -c '^applied'); cat > \"$d/applied.$n.json\"; echo applied;;\nesac\n",
                dir.display()
            ),
        )
        .expect("script");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        script.to_string_lossy().into_owned()
    }

    #[tokio::test]
    async fn applies_changed_groups_in_order_through_a_fake_kubectl() {
        let h = Harness::with_vars(json!({"ns": "airflow"}));
        let kubectl = fake_kubectl(&h);
        let dir = h.root().join("files/manifests");
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(
            dir.join("10-app.yaml.j2"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: {{ ns }}\ndata:\n  mode: \"0644\"\n",
        )
        .expect("write");
        std::fs::write(
            dir.join("00-ns.yaml"),
            "# the namespace\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: airflow\n---\n",
        )
        .expect("write");
        std::fs::write(dir.join("README.md"), "not a manifest").expect("write");
        let args = json!({"src": "manifests", "kubectl": kubectl});

        let out = h
            .run::<K8sApply>(args.clone(), true, true)
            .await
            .expect("check");
        assert!(out.changed);
        assert_eq!(
            out.data["groups"],
            json!([["Namespace/airflow"], ["ConfigMap/airflow/c"]])
        );
        assert!(
            !h.root().join("applied.0.json").exists(),
            "check mode applied"
        );
        assert!(out.diff.expect("diff").after.contains("kind: ConfigMap"));

        let out = h
            .run::<K8sApply>(args.clone(), false, false)
            .await
            .expect("apply");
        assert!(out.changed);
        let first: Value =
            serde_json::from_slice(&std::fs::read(h.root().join("applied.0.json")).expect("0"))
                .expect("json");
        let second: Value =
            serde_json::from_slice(&std::fs::read(h.root().join("applied.1.json")).expect("1"))
                .expect("json");
        assert_eq!(first["items"][0]["kind"], "Namespace");
        assert_eq!(second["items"][0]["kind"], "ConfigMap");
        assert_eq!(second["items"][0]["data"]["mode"], "0644");

        // The host now holds what was applied: nothing changes.
        let live = json!({"apiVersion": "v1", "kind": "List", "items": [first["items"][0], second["items"][0]]});
        std::fs::write(h.root().join("live.json"), live.to_string()).expect("live");
        let out = h.run::<K8sApply>(args, false, false).await.expect("again");
        assert!(!out.changed);
        assert!(!h.root().join("applied.2.json").exists());
        let argv = std::fs::read_to_string(h.root().join("argv.log")).expect("argv");
        assert!(
            argv.lines()
                .all(|l| l.ends_with(" -f - -o json --ignore-not-found") || l == "apply -f -"),
            "{argv}"
        );
    }

    #[tokio::test]
    async fn waits_for_workloads_and_names_what_is_not_ready() {
        let h = Harness::new();
        let kubectl = fake_kubectl(&h);
        let live = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "generation": 1},
            "spec": {"replicas": 1},
            "status": {"observedGeneration": 1, "updatedReplicas": 0, "availableReplicas": 0,
                       "conditions": [{"type": "Available", "status": "False", "message": "waiting for Job/migrate"}]}});
        std::fs::write(h.root().join("live.json"), live.to_string()).expect("live");
        let args = json!({"kubectl": kubectl, "wait_timeout": 0, "wait_interval": 0.05,
            "definition": [{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                            "spec": {"replicas": 1}},
                           {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}]});
        let err = h.run::<K8sApply>(args, false, false).await;
        let err = err.expect_err("timeout").to_string();
        assert!(
            err.contains("Deployment/default/web (updated 0/1, available 0/1; Available=False: waiting for Job/migrate)"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn waits_for_a_dependency_outside_the_set_before_applying() {
        let h = Harness::new();
        let kubectl = fake_kubectl(&h);
        let job = json!({"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "migrate", "namespace": "airflow"},
            "status": {"failed": 3, "conditions": [{"type": "Failed", "status": "True", "message": "BackoffLimitExceeded"}]}});
        std::fs::write(h.root().join("live.json"), job.to_string()).expect("live");
        let args = json!({"kubectl": kubectl, "namespace": "airflow",
            "definition": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  annotations:\n    drover.dev/depends-on: Job/migrate\n"});
        let err = h
            .run::<K8sApply>(args, false, false)
            .await
            .expect_err("failed job");
        assert_eq!(
            err.to_string(),
            "Job/airflow/migrate failed: BackoffLimitExceeded"
        );
        assert!(
            !h.root().join("applied.0.json").exists(),
            "applied before its dependency"
        );
    }

    #[tokio::test]
    async fn check_mode_without_kubectl_would_create_everything() {
        let h = Harness::new();
        let args = json!({"kubectl": h.path("no-such-kubectl"),
            "definition": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}});
        let out = h
            .run::<K8sApply>(args.clone(), true, false)
            .await
            .expect("check");
        assert!(out.changed);
        assert_eq!(out.data["objects"][0]["action"], "created");
        let err = h
            .run::<K8sApply>(args, false, false)
            .await
            .expect_err("no kubectl");
        assert!(err.to_string().contains("rc 127"), "{err}");
    }

    #[tokio::test]
    async fn bad_manifests_fail_before_kubectl_runs() {
        let h = Harness::new();
        let kubectl = fake_kubectl(&h);
        std::fs::write(
            h.root().join("files/bad.yaml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [\n",
        )
        .expect("write");
        let err = h
            .run::<K8sApply>(json!({"src": "bad.yaml", "kubectl": kubectl}), false, false)
            .await
            .expect_err("bad");
        assert!(err.to_string().contains("bad.yaml:"), "{err}");
        assert_eq!(h.take_execs(), 0);
        let err = h
            .run::<K8sApply>(json!({"kubectl": kubectl}), false, false)
            .await
            .expect_err("nothing");
        assert!(
            err.to_string().contains("one of src or definition"),
            "{err}"
        );
    }
}

/// The airflow role's real templates, rendered with its defaults, load and
/// group so that PostgreSQL, the migration Job and the servers come in
/// that order.
#[cfg(test)]
mod airflow_role {
    use std::path::PathBuf;
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::modules::Render;
    use crate::template::{Scope, Templar};
    use crate::transport::local::LocalTransport;
    use crate::transport::Remote;

    struct RoleRender {
        templar: Templar,
        scope: Scope,
    }

    impl Render for RoleRender {
        fn render(&self, source: &str, name: &str) -> Result<String, ModuleError> {
            self.templar
                .render_string(source, &self.scope)
                .map_err(|e| ModuleError::failed(format!("{name}: {e}")))
        }
        fn eval(&self, expr: &str) -> Result<Value, ModuleError> {
            self.templar
                .eval(expr, &self.scope)
                .map_err(|e| ModuleError::failed(e.to_string()))
        }
    }

    #[tokio::test]
    async fn airflow_manifests_wait_for_postgres_then_the_migration() {
        let role = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("roles/airflow");
        let defaults = crate::yaml::load_file(&role.join("defaults/main.yml"))
            .expect("defaults")
            .to_value();
        let mut vars = defaults.as_object().cloned().expect("mapping");
        for (k, v) in [
            ("groups", json!({"k3s_server": ["pi-master"]})),
            (
                "hostvars",
                json!({"pi-master": {"ansible_host": "192.0.2.10"}}),
            ),
            (
                "airflow_secrets",
                json!({"fernet_key": "a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U=",
                       "webserver_secret_key": "s", "postgres_password": "p", "admin_password": "a"}),
            ),
        ] {
            vars.insert(k.into(), v);
        }
        let templar = Templar::new();
        let scope = templar.scope(Arc::new(vars), Vec::new());
        let render = RoleRender { templar, scope };
        let remote = Remote::new(Arc::new(LocalTransport), None);
        let search = vec![role.join("templates")];
        let ctx = ModuleCtx {
            host: "pi-master",
            remote: &remote,
            check: true,
            diff: false,
            render: &render,
            search: &search,
        };
        let m: K8sApply = serde_json::from_value(json!({"src": "."})).expect("args");
        let objects = m.load(&ctx).await.expect("load");
        let keys: Vec<ObjKey> = objects.iter().map(|o| o.key.clone()).collect();
        let values: Vec<Value> = objects.iter().map(|o| o.value.clone()).collect();
        let groups = group_objects(&values, &keys).expect("groups");
        let level = |prefix: &str| {
            groups
                .iter()
                .position(|g| g.iter().any(|&i| keys[i].to_string().starts_with(prefix)))
                .unwrap_or_else(|| panic!("{prefix} not found"))
        };
        let pg = level("StatefulSet/airflow/airflow-postgres");
        let job = level("Job/airflow/airflow-db-migrate-");
        assert!(pg < job, "postgres {pg}, job {job}");
        for d in [
            "Deployment/airflow/airflow-webserver",
            "Deployment/airflow/airflow-scheduler",
            "Deployment/airflow/airflow-triggerer",
        ] {
            assert!(job < level(d), "{d}");
        }
        assert_eq!(level("Namespace/airflow"), 0);
    }
}
