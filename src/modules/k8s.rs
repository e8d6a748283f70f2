//! Kubernetes helpers shared by `k8s_apply` and `k8s_node_labels`: the
//! kubectl command line, object identity, Helm's kind order refined into
//! dependency levels, readiness of workloads from their live status, the
//! `drover.dev/applied-sha256` hash, Secret redaction for diffs, and parsing
//! of `kubectl get -o json` output.
//!
//! Only the kubectl subset in the project's contract is used: objects go to
//! kubectl as JSON on stdin (never on a command line, they may be Secrets).

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use sha2::{Digest, Sha256};

use super::ModuleError;
use crate::transport::{shell_quote, ExecOutput, Remote};
use crate::{Map, Value};

/// Annotation holding the hash of the object as drover applied it.
pub const HASH_ANNOTATION: &str = "drover.dev/applied-sha256";
/// Annotation naming objects (`Kind/name`, same namespace) to order after.
pub const DEPENDS_ON_ANNOTATION: &str = "drover.dev/depends-on";
/// What replaces Secret values in diffs.
pub const REDACTED: &str = "<redacted>";
/// What replaces a Secret value that differs from the live one.
pub const REDACTED_CHANGED: &str = "<redacted, changed>";

/// How to run kubectl on the host.
#[derive(Debug, Clone)]
pub struct Kubectl {
    /// The command (`kubectl`, `k3s kubectl`); used as written.
    pub command: String,
    /// `--kubeconfig` path, if given.
    pub kubeconfig: Option<String>,
}

impl Kubectl {
    /// From a task's `kubectl` and `kubeconfig` arguments (`kubectl` when
    /// the command is unset or blank).
    pub fn new(command: Option<&str>, kubeconfig: Option<&str>) -> Kubectl {
        Kubectl {
            command: command
                .filter(|k| !k.trim().is_empty())
                .unwrap_or("kubectl")
                .to_string(),
            kubeconfig: kubeconfig.map(str::to_string),
        }
    }

    /// The shell command running kubectl with `args` (already quoted).
    pub fn cmd(&self, args: &str) -> String {
        match &self.kubeconfig {
            Some(k) => format!("{} --kubeconfig {} {args}", self.command, shell_quote(k)),
            None => format!("{} {args}", self.command),
        }
    }

    /// Run kubectl; a non-zero exit is a failure quoting its stderr.
    pub async fn run(
        &self,
        remote: &Remote,
        args: &str,
        stdin: &[u8],
    ) -> Result<ExecOutput, ModuleError> {
        let out = remote.exec(&self.cmd(args), stdin).await?;
        if out.status != 0 {
            let err = out.stderr_str();
            let err = if err.trim().is_empty() {
                out.stdout_str()
            } else {
                err
            };
            return Err(ModuleError::failed(format!(
                "kubectl {} failed (rc {}): {}",
                args.split_whitespace().next().unwrap_or(""),
                out.status,
                err.trim()
            )));
        }
        Ok(out)
    }
}

/// Helm's install order of kinds; unknown kinds come last.
pub const HELM_ORDER: &[&str] = &[
    "PriorityClass",
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "SecretList",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleList",
    "ClusterRoleBinding",
    "ClusterRoleBindingList",
    "Role",
    "RoleList",
    "RoleBinding",
    "RoleBindingList",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

/// Position of `kind` in Helm's order.
pub fn kind_rank(kind: &str) -> usize {
    HELM_ORDER
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(HELM_ORDER.len())
}

/// Kinds that live outside namespaces.
const CLUSTER_SCOPED: &[&str] = &[
    "Namespace",
    "Node",
    "PersistentVolume",
    "StorageClass",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PriorityClass",
    "PodSecurityPolicy",
    "IngressClass",
    "APIService",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
    "CSIDriver",
    "CSINode",
    "RuntimeClass",
    "VolumeAttachment",
    "CertificateSigningRequest",
];

/// Is `kind` cluster-scoped (as far as drover knows; custom kinds are
/// taken as namespaced unless their CRD in the same set says otherwise)?
pub fn is_cluster_scoped(kind: &str) -> bool {
    CLUSTER_SCOPED.contains(&kind)
}

/// Workload kinds: waited for, and ordered after what their pods use.
pub const WORKLOADS: &[&str] = &[
    "Pod",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "Job",
    "CronJob",
    "ReplicaSet",
];

/// Which object: kind, namespace (`None` when cluster-scoped), name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjKey {
    /// `Deployment`, `Namespace`, ...
    pub kind: String,
    /// Namespace, for namespaced objects.
    pub namespace: Option<String>,
    /// `metadata.name`.
    pub name: String,
}

impl fmt::Display for ObjKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{ns}/{}", self.kind, self.name),
            None => write!(f, "{}/{}", self.kind, self.name),
        }
    }
}

/// A string field at `path` in `v`.
pub fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(v, path)?.as_str()
}

/// The value at `path` in `v`.
pub fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(*k))
}

/// An integer field at `path`, 0 when absent.
fn int_at(v: &Value, path: &[&str]) -> i64 {
    at(v, path).and_then(Value::as_i64).unwrap_or(0)
}

/// Identity of an object. `cluster_kinds` are extra cluster-scoped kinds
/// (from CRDs in the same set); namespaced objects without a namespace are
/// in `default`, as kubectl would put them with a stock kubeconfig.
pub fn key_of(obj: &Value, cluster_kinds: &[String]) -> Option<ObjKey> {
    let kind = str_at(obj, &["kind"])?.to_string();
    let name = str_at(obj, &["metadata", "name"])?.to_string();
    let namespace = if is_cluster_scoped(&kind) || cluster_kinds.contains(&kind) {
        None
    } else {
        Some(
            str_at(obj, &["metadata", "namespace"])
                .unwrap_or("default")
                .to_string(),
        )
    };
    Some(ObjKey {
        kind,
        namespace,
        name,
    })
}

/// Kubernetes objects drover cannot order or read.
#[derive(Debug, thiserror::Error)]
pub enum K8sError {
    /// kubectl's output is not JSON.
    #[error("kubectl printed something that is not JSON: {0}")]
    NotJson(serde_json::Error),
    /// A `drover.dev/depends-on` entry that is not `Kind/name`.
    #[error("{annotation}: {0:?} is not Kind/name (comma separated)", annotation = DEPENDS_ON_ANNOTATION)]
    DependsOn(String),
    /// An error in the object named.
    #[error("{key}: {source}")]
    Object {
        /// The object.
        key: String,
        /// What is wrong with it.
        source: Box<K8sError>,
    },
    /// Objects that depend on each other.
    #[error("dependency cycle among {keys} (references and {annotation})", keys = .0.join(", "), annotation = DEPENDS_ON_ANNOTATION)]
    Cycle(Vec<String>),
}

/// The objects `kubectl get -o json` printed: nothing, one object, or a List.
pub fn parse_get_output(text: &str) -> Result<Vec<Value>, K8sError> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    // kubectl prints one JSON document per resource type in some versions;
    // read them all.
    let mut objs = Vec::new();
    for v in serde_json::Deserializer::from_str(text).into_iter::<Value>() {
        let v = v.map_err(K8sError::NotJson)?;
        let is_list = str_at(&v, &["kind"]).is_some_and(|k| k == "List" || k.ends_with("List"))
            && v.get("items").is_some();
        if is_list {
            if let Some(items) = v.get("items").and_then(Value::as_array) {
                objs.extend(items.iter().cloned());
            }
        } else if v.is_object() {
            objs.push(v);
        }
    }
    Ok(objs)
}

/// Objects as one JSON document for kubectl's stdin: one object or a `List`.
pub fn list_json<'a>(objs: impl IntoIterator<Item = &'a Value>) -> Vec<u8> {
    let items: Vec<&Value> = objs.into_iter().collect();
    let doc = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
    serde_json::to_vec(&doc).unwrap_or_default()
}

/// JSON with object keys sorted at every level, no spaces: the same object
/// always gives the same text, however its keys were ordered.
pub fn canonical_json(v: &Value) -> String {
    fn write(v: &Value, out: &mut String) {
        match v {
            Value::Object(m) => {
                let sorted: BTreeMap<&String, &Value> = m.iter().collect();
                out.push('{');
                for (i, (k, v)) in sorted.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push(':');
                    write(v, out);
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(v, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(v, &mut out);
    out
}

/// sha256 (hex) of the canonical JSON of `obj`.
pub fn object_hash(obj: &Value) -> String {
    let digest = Sha256::digest(canonical_json(obj).as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Set an annotation, creating `metadata.annotations` when needed.
pub fn set_annotation(obj: &mut Value, key: &str, value: &str) {
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let ann = meta
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    if !ann.is_object() {
        *ann = Value::Object(Map::new());
    }
    if let Some(a) = ann.as_object_mut() {
        a.insert(key.to_string(), Value::String(value.to_string()));
    }
}

/// An annotation's value.
pub fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    at(obj, &["metadata", "annotations", key])?.as_str()
}

/// The `Kind/name` entries of a `drover.dev/depends-on` annotation.
pub fn depends_on(obj: &Value) -> Result<Vec<(String, String)>, K8sError> {
    let Some(text) = annotation(obj, DEPENDS_ON_ANNOTATION) else {
        return Ok(Vec::new());
    };
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| match s.split_once('/') {
            Some((k, n)) if !k.is_empty() && !n.is_empty() && !n.contains('/') => {
                Ok((k.to_string(), n.to_string()))
            }
            _ => Err(K8sError::DependsOn(s.to_string())),
        })
        .collect()
}

/// The pod spec of a workload.
pub fn pod_spec(obj: &Value) -> Option<&Value> {
    match str_at(obj, &["kind"])? {
        "Pod" => obj.get("spec"),
        "Deployment" | "StatefulSet" | "DaemonSet" | "Job" | "ReplicaSet" => {
            at(obj, &["spec", "template", "spec"])
        }
        "CronJob" => at(obj, &["spec", "jobTemplate", "spec", "template", "spec"]),
        _ => None,
    }
}

/// `(kind, name)` of the ConfigMaps, Secrets, PVCs and ServiceAccount a pod
/// spec uses (volumes, envFrom, env valueFrom, imagePullSecrets, the
/// service account; init containers too).
pub fn pod_refs(spec: &Value) -> Vec<(&'static str, String)> {
    let mut refs: Vec<(&'static str, String)> = Vec::new();
    let mut add = |kind: &'static str, name: Option<&str>| {
        if let Some(n) = name {
            let r = (kind, n.to_string());
            if !refs.contains(&r) {
                refs.push(r);
            }
        }
    };
    let arr = |v: Option<&Value>| v.and_then(Value::as_array).cloned().unwrap_or_default();
    for vol in arr(spec.get("volumes")) {
        add("ConfigMap", str_at(&vol, &["configMap", "name"]));
        add("Secret", str_at(&vol, &["secret", "secretName"]));
        add(
            "PersistentVolumeClaim",
            str_at(&vol, &["persistentVolumeClaim", "claimName"]),
        );
        for src in arr(at(&vol, &["projected", "sources"])) {
            add("ConfigMap", str_at(&src, &["configMap", "name"]));
            add("Secret", str_at(&src, &["secret", "name"]));
        }
    }
    for c in arr(spec.get("containers"))
        .into_iter()
        .chain(arr(spec.get("initContainers")))
    {
        for e in arr(c.get("envFrom")) {
            add("ConfigMap", str_at(&e, &["configMapRef", "name"]));
            add("Secret", str_at(&e, &["secretRef", "name"]));
        }
        for e in arr(c.get("env")) {
            add(
                "ConfigMap",
                str_at(&e, &["valueFrom", "configMapKeyRef", "name"]),
            );
            add("Secret", str_at(&e, &["valueFrom", "secretKeyRef", "name"]));
        }
    }
    for s in arr(spec.get("imagePullSecrets")) {
        add("Secret", str_at(&s, &["name"]));
    }
    add(
        "ServiceAccount",
        str_at(spec, &["serviceAccountName"]).or_else(|| str_at(spec, &["serviceAccount"])),
    );
    refs
}

/// The objects `obj` must come after, as `(kind, name)`.
fn references(obj: &Value, crds: &HashMap<(String, String), String>) -> Vec<(String, String)> {
    let kind = str_at(obj, &["kind"]).unwrap_or("");
    let mut refs: Vec<(String, String)> = Vec::new();
    if let Some(spec) = pod_spec(obj) {
        refs.extend(pod_refs(spec).into_iter().map(|(k, n)| (k.to_string(), n)));
    }
    match kind {
        "PersistentVolumeClaim" => {
            if let Some(pv) = str_at(obj, &["spec", "volumeName"]) {
                refs.push(("PersistentVolume".into(), pv.into()));
            }
            if let Some(sc) = str_at(obj, &["spec", "storageClassName"]) {
                refs.push(("StorageClass".into(), sc.into()));
            }
        }
        "PersistentVolume" => {
            if let Some(sc) = str_at(obj, &["spec", "storageClassName"]) {
                refs.push(("StorageClass".into(), sc.into()));
            }
        }
        "RoleBinding" | "ClusterRoleBinding" => {
            if let (Some(k), Some(n)) = (
                str_at(obj, &["roleRef", "kind"]),
                str_at(obj, &["roleRef", "name"]),
            ) {
                refs.push((k.into(), n.into()));
            }
        }
        _ => {}
    }
    // A custom resource comes after its CRD.
    if let Some(api) = str_at(obj, &["apiVersion"]) {
        let group = api.split_once('/').map(|(g, _)| g).unwrap_or("");
        if let Some(crd) = crds.get(&(group.to_string(), kind.to_string())) {
            refs.push(("CustomResourceDefinition".into(), crd.clone()));
        }
    }
    refs
}

/// Split objects into dependency levels: each group holds the objects whose
/// dependencies (within the set) are all in earlier groups; within a group,
/// Helm's kind order, then input order. Errors name a dependency cycle or a
/// bad annotation.
pub fn group_objects(objs: &[Value], keys: &[ObjKey]) -> Result<Vec<Vec<usize>>, K8sError> {
    // CRDs in the set: (group, kind) -> CRD name.
    let mut crds = HashMap::new();
    for o in objs {
        if str_at(o, &["kind"]) == Some("CustomResourceDefinition") {
            if let (Some(g), Some(k), Some(n)) = (
                str_at(o, &["spec", "group"]),
                str_at(o, &["spec", "names", "kind"]),
                str_at(o, &["metadata", "name"]),
            ) {
                crds.insert((g.to_string(), k.to_string()), n.to_string());
            }
        }
    }
    let index: HashMap<&ObjKey, usize> = keys.iter().enumerate().map(|(i, k)| (k, i)).collect();
    let mut deps: Vec<Vec<usize>> = vec![Vec::new(); objs.len()];
    for (i, (obj, key)) in objs.iter().zip(keys).enumerate() {
        let mut targets = references(obj, &crds);
        targets.extend(depends_on(obj).map_err(|e| K8sError::Object {
            key: key.to_string(),
            source: Box::new(e),
        })?);
        let mut wanted: Vec<ObjKey> = targets
            .into_iter()
            .map(|(kind, name)| {
                // Cluster-scoped targets (built-in, or custom kinds the set
                // holds without a namespace) have no namespace; others are
                // in the referring object's.
                let cluster = is_cluster_scoped(&kind)
                    || keys.iter().any(|k| k.kind == kind && k.namespace.is_none());
                ObjKey {
                    namespace: if cluster { None } else { key.namespace.clone() },
                    kind,
                    name,
                }
            })
            .collect();
        if let Some(ns) = &key.namespace {
            wanted.push(ObjKey {
                kind: "Namespace".into(),
                namespace: None,
                name: ns.clone(),
            });
        }
        for w in wanted {
            if let Some(&j) = index.get(&w) {
                if j != i && !deps[i].contains(&j) {
                    deps[i].push(j);
                }
            }
        }
    }
    // Longest-path levels; a cycle leaves objects without a level.
    let mut level: Vec<Option<usize>> = vec![None; objs.len()];
    let mut progress = true;
    while progress {
        progress = false;
        for i in 0..objs.len() {
            if level[i].is_some() {
                continue;
            }
            let mut l = 0;
            let mut all = true;
            for &d in &deps[i] {
                match level[d] {
                    Some(dl) => l = l.max(dl + 1),
                    None => all = false,
                }
            }
            if all {
                level[i] = Some(l);
                progress = true;
            }
        }
    }
    let stuck: Vec<String> = (0..objs.len())
        .filter(|&i| level[i].is_none())
        .map(|i| keys[i].to_string())
        .collect();
    if !stuck.is_empty() {
        return Err(K8sError::Cycle(stuck));
    }
    let top = level.iter().flatten().max().map_or(0, |m| m + 1);
    let mut groups: Vec<Vec<usize>> = vec![Vec::new(); top];
    for (i, l) in level.iter().enumerate() {
        if let Some(l) = l {
            groups[*l].push(i);
        }
    }
    for g in &mut groups {
        g.sort_by_key(|&i| (kind_rank(&keys[i].kind), i));
    }
    Ok(groups)
}

/// Is a live object ready?
#[derive(Debug, Clone, PartialEq)]
pub enum Readiness {
    /// Ready (or a kind drover does not wait for).
    Ready,
    /// Not yet; why.
    NotReady(String),
    /// Will never be (a Failed Job); why.
    Failed(String),
}

/// Messages of conditions that are not `True` (`Available=False: ...`).
fn condition_messages(live: &Value) -> String {
    let conds = at(live, &["status", "conditions"])
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let msgs: Vec<String> = conds
        .iter()
        .filter(|c| str_at(c, &["status"]) != Some("True"))
        .map(|c| {
            let t = str_at(c, &["type"]).unwrap_or("?");
            let s = str_at(c, &["status"]).unwrap_or("?");
            match (str_at(c, &["reason"]), str_at(c, &["message"])) {
                (_, Some(m)) if !m.is_empty() => format!("{t}={s}: {m}"),
                (Some(r), _) => format!("{t}={s}: {r}"),
                _ => format!("{t}={s}"),
            }
        })
        .collect();
    if msgs.is_empty() {
        String::new()
    } else {
        format!("; {}", msgs.join("; "))
    }
}

/// A condition of type `t` with status True, and its message.
fn true_condition<'a>(live: &'a Value, t: &str) -> Option<&'a Value> {
    at(live, &["status", "conditions"])?
        .as_array()?
        .iter()
        .find(|c| str_at(c, &["type"]) == Some(t) && str_at(c, &["status"]) == Some("True"))
}

/// Has the controller seen the latest spec?
fn generation_seen(live: &Value) -> Option<String> {
    let generation = int_at(live, &["metadata", "generation"]);
    let observed = int_at(live, &["status", "observedGeneration"]);
    (generation > 0 && observed < generation)
        .then(|| format!("observedGeneration {observed} < generation {generation}"))
}

/// Readiness of a live object, from its status (kapp's rules).
pub fn readiness(live: &Value) -> Readiness {
    let kind = str_at(live, &["kind"]).unwrap_or("");
    let desired = || {
        at(live, &["spec", "replicas"])
            .and_then(Value::as_i64)
            .unwrap_or(1)
    };
    let not_ready = |why: String| Readiness::NotReady(format!("{why}{}", condition_messages(live)));
    match kind {
        "Deployment" => {
            if let Some(why) = generation_seen(live) {
                return not_ready(why);
            }
            let d = desired();
            let updated = int_at(live, &["status", "updatedReplicas"]);
            let available = int_at(live, &["status", "availableReplicas"]);
            if updated >= d && available >= d {
                Readiness::Ready
            } else {
                not_ready(format!("updated {updated}/{d}, available {available}/{d}"))
            }
        }
        "StatefulSet" | "ReplicaSet" => {
            if let Some(why) = generation_seen(live) {
                return not_ready(why);
            }
            let d = desired();
            let ready = int_at(live, &["status", "readyReplicas"]);
            if ready >= d {
                Readiness::Ready
            } else {
                not_ready(format!("ready {ready}/{d}"))
            }
        }
        "DaemonSet" => {
            if let Some(why) = generation_seen(live) {
                return not_ready(why);
            }
            let Some(d) = at(live, &["status", "desiredNumberScheduled"]).and_then(Value::as_i64)
            else {
                return not_ready("not scheduled yet (no desiredNumberScheduled)".into());
            };
            let unavailable = int_at(live, &["status", "numberUnavailable"]);
            let scheduled = at(live, &["status", "currentNumberScheduled"])
                .and_then(Value::as_i64)
                .unwrap_or(d);
            if unavailable == 0 && scheduled >= d {
                Readiness::Ready
            } else {
                not_ready(format!(
                    "unavailable {unavailable}, scheduled {scheduled}/{d}"
                ))
            }
        }
        "Job" => {
            if true_condition(live, "Complete").is_some() {
                return Readiness::Ready;
            }
            if let Some(c) = true_condition(live, "Failed") {
                let why = str_at(c, &["message"])
                    .or_else(|| str_at(c, &["reason"]))
                    .unwrap_or("Failed");
                return Readiness::Failed(format!("failed: {why}"));
            }
            not_ready(format!(
                "not complete (active {}, succeeded {}, failed {})",
                int_at(live, &["status", "active"]),
                int_at(live, &["status", "succeeded"]),
                int_at(live, &["status", "failed"])
            ))
        }
        "Pod" => match str_at(live, &["status", "phase"]) {
            Some("Succeeded") => Readiness::Ready,
            Some("Failed") => Readiness::Failed("pod failed".into()),
            Some("Running") if true_condition(live, "Ready").is_some() => Readiness::Ready,
            phase => not_ready(format!("phase {}", phase.unwrap_or("unknown"))),
        },
        _ => Readiness::Ready,
    }
}

/// Server-side fields that only add noise to a diff.
pub fn strip_server_fields(obj: &mut Value) {
    if let Some(m) = obj.as_object_mut() {
        m.remove("status");
    }
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in [
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "managedFields",
            "selfLink",
        ] {
            meta.remove(k);
        }
        if let Some(a) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
            a.remove("kubectl.kubernetes.io/last-applied-configuration");
            a.remove(HASH_ANNOTATION);
            if a.is_empty() {
                meta.remove("annotations");
            }
        }
    }
}

/// Replace every value under a Secret's `data` and `stringData` with a
/// marker; with `before` (the other side of a diff), values that differ
/// from it get [`REDACTED_CHANGED`]. Other kinds are left alone.
pub fn redact_secret(obj: &mut Value, before: Option<&Value>) {
    if str_at(obj, &["kind"]) != Some("Secret") {
        return;
    }
    for field in ["data", "stringData"] {
        let Some(m) = obj.get_mut(field).and_then(Value::as_object_mut) else {
            continue;
        };
        for (k, v) in m.iter_mut() {
            let same = match before {
                None => true,
                Some(b) => {
                    secret_value(b, k).is_some_and(|old| Some(old) == secret_value_of(field, v))
                }
            };
            *v = Value::String(if same { REDACTED } else { REDACTED_CHANGED }.into());
        }
    }
}

/// A Secret's value for `key` as bytes (data is base64, stringData plain).
fn secret_value(obj: &Value, key: &str) -> Option<Vec<u8>> {
    if let Some(v) = at(obj, &["stringData", key]) {
        return secret_value_of("stringData", v);
    }
    at(obj, &["data", key]).and_then(|v| secret_value_of("data", v))
}

fn secret_value_of(field: &str, v: &Value) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let s = v.as_str()?;
    if field == "data" {
        base64::engine::general_purpose::STANDARD.decode(s).ok()
    } else {
        Some(s.as_bytes().to_vec())
    }
}

/// YAML text of objects for a diff, as `---`-separated documents.
pub fn to_yaml_docs<'a>(objs: impl IntoIterator<Item = &'a Value>) -> String {
    let mut out = String::new();
    for o in objs {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(o).unwrap_or_else(|e| format!("# {e}\n")));
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn keys(objs: &[Value]) -> Vec<ObjKey> {
        objs.iter().map(|o| key_of(o, &[]).expect("key")).collect()
    }

    fn named_groups(objs: &[Value]) -> Vec<Vec<String>> {
        let k = keys(objs);
        group_objects(objs, &k)
            .expect("groups")
            .into_iter()
            .map(|g| g.into_iter().map(|i| k[i].to_string()).collect())
            .collect()
    }

    fn obj(kind: &str, name: &str, extra: Value) -> Value {
        let mut o = json!({"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": "airflow"}});
        if is_cluster_scoped(kind) {
            o["metadata"]
                .as_object_mut()
                .expect("meta")
                .remove("namespace");
        }
        if let (Some(m), Some(e)) = (o.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                if k == "annotations" {
                    m["metadata"]["annotations"] = v.clone();
                } else {
                    m.insert(k.clone(), v.clone());
                }
            }
        }
        o
    }

    /// A set like the airflow role's manifests, deliberately out of order.
    fn airflow_like() -> Vec<Value> {
        let pod = |extra: Value| {
            let mut spec = json!({
                "serviceAccountName": "airflow",
                "containers": [{"name": "c", "envFrom": [{"configMapRef": {"name": "airflow-config"}}],
                                "env": [{"name": "P", "valueFrom": {"secretKeyRef": {"name": "airflow-secrets", "key": "p"}}}]}],
                "volumes": [{"name": "dags", "persistentVolumeClaim": {"claimName": "airflow-dags"}}]
            });
            if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
                for (k, v) in e {
                    s.insert(k.clone(), v.clone());
                }
            }
            json!({"template": {"spec": spec}})
        };
        vec![
            obj(
                "Deployment",
                "airflow-webserver",
                json!({"spec": pod(json!({})),
                "annotations": {DEPENDS_ON_ANNOTATION: "Job/airflow-db-migrate"}}),
            ),
            obj(
                "Deployment",
                "airflow-scheduler-1",
                json!({"spec": pod(json!({})),
                "annotations": {DEPENDS_ON_ANNOTATION: "Job/airflow-db-migrate"}}),
            ),
            obj(
                "Job",
                "airflow-db-migrate",
                json!({"spec": pod(json!({})),
                "annotations": {DEPENDS_ON_ANNOTATION: "StatefulSet/airflow-postgres"}}),
            ),
            obj(
                "StatefulSet",
                "airflow-postgres",
                json!({"spec": {"template": {"spec": {
                "containers": [{"name": "pg", "env": [{"name": "PW", "valueFrom": {"secretKeyRef": {"name": "airflow-secrets", "key": "pw"}}}]}]}}}}),
            ),
            obj("Service", "airflow-postgres", json!({})),
            obj(
                "DaemonSet",
                "node-exporter",
                json!({"spec": {"template": {"spec": {"containers": []}}}}),
            ),
            obj(
                "RoleBinding",
                "airflow",
                json!({"roleRef": {"kind": "Role", "name": "airflow"}}),
            ),
            obj("Role", "airflow", json!({})),
            obj("ServiceAccount", "airflow", json!({})),
            obj(
                "PersistentVolumeClaim",
                "airflow-dags",
                json!({"spec": {"volumeName": "airflow-dags-pv", "storageClassName": ""}}),
            ),
            obj("PersistentVolume", "airflow-dags-pv", json!({})),
            obj(
                "Secret",
                "airflow-secrets",
                json!({"stringData": {"pw": "x"}}),
            ),
            obj("ConfigMap", "airflow-config", json!({})),
            obj("Namespace", "airflow", json!({})),
        ]
    }

    #[test]
    fn airflow_like_set_is_grouped_by_dependency_then_helm_order() {
        let g = named_groups(&airflow_like());
        assert_eq!(
            g,
            vec![
                vec!["Namespace/airflow", "PersistentVolume/airflow-dags-pv"],
                vec![
                    "ServiceAccount/airflow/airflow",
                    "Secret/airflow/airflow-secrets",
                    "ConfigMap/airflow/airflow-config",
                    "PersistentVolumeClaim/airflow/airflow-dags",
                    "Role/airflow/airflow",
                    "Service/airflow/airflow-postgres",
                    "DaemonSet/airflow/node-exporter",
                ],
                vec![
                    "RoleBinding/airflow/airflow",
                    "StatefulSet/airflow/airflow-postgres",
                ],
                vec!["Job/airflow/airflow-db-migrate"],
                vec![
                    "Deployment/airflow/airflow-webserver",
                    "Deployment/airflow/airflow-scheduler-1",
                ],
            ]
        );
    }

    #[test]
    fn references_outside_the_set_do_not_order_and_cycles_are_errors() {
        let objs = vec![obj(
            "Deployment",
            "d",
            json!({"spec": {"template": {"spec": {"serviceAccountName": "elsewhere"}}},
                   "annotations": {DEPENDS_ON_ANNOTATION: "Job/not-here"}}),
        )];
        assert_eq!(named_groups(&objs), vec![vec!["Deployment/airflow/d"]]);
        let cyc = vec![
            obj(
                "Job",
                "a",
                json!({"annotations": {DEPENDS_ON_ANNOTATION: "Job/b"}}),
            ),
            obj(
                "Job",
                "b",
                json!({"annotations": {DEPENDS_ON_ANNOTATION: "Job/a"}}),
            ),
        ];
        let err = group_objects(&cyc, &keys(&cyc))
            .expect_err("cycle")
            .to_string();
        assert!(
            err.contains("cycle") && err.contains("Job/airflow/a"),
            "{err}"
        );
        let bad = vec![obj(
            "Job",
            "a",
            json!({"annotations": {DEPENDS_ON_ANNOTATION: "a, b"}}),
        )];
        let err = group_objects(&bad, &keys(&bad))
            .expect_err("bad")
            .to_string();
        assert!(err.contains("\"a\" is not Kind/name"), "{err}");
    }

    #[test]
    fn custom_resources_come_after_their_crd_and_cronjob_refs_count() {
        let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "names": {"kind": "Widget"}}});
        let cr = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "airflow"}});
        let cm = obj("ConfigMap", "c", json!({}));
        let cron = obj(
            "CronJob",
            "cj",
            json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {
            "initContainers": [{"name": "i", "envFrom": [{"configMapRef": {"name": "c"}}]}]}}}}}}),
        );
        let objs = vec![cr, cron, crd, cm];
        assert_eq!(
            named_groups(&objs),
            vec![
                vec![
                    "ConfigMap/airflow/c",
                    "CustomResourceDefinition/widgets.example.com"
                ],
                vec!["CronJob/airflow/cj", "Widget/airflow/w"],
            ]
        );
    }

    #[test]
    fn readiness_of_each_kind() {
        let dep = |gen: i64, obs: i64, upd: i64, avail: i64| {
            json!({"kind": "Deployment", "metadata": {"generation": gen}, "spec": {"replicas": 2},
                   "status": {"observedGeneration": obs, "updatedReplicas": upd, "availableReplicas": avail,
                              "conditions": [{"type": "Available", "status": "False", "message": "ConfigMap airflow-config missing"}]}})
        };
        assert_eq!(readiness(&dep(2, 2, 2, 2)), Readiness::Ready);
        let Readiness::NotReady(why) = readiness(&dep(2, 1, 2, 2)) else {
            panic!("generation")
        };
        assert!(why.contains("observedGeneration 1 < generation 2"), "{why}");
        let Readiness::NotReady(why) = readiness(&dep(2, 2, 2, 1)) else {
            panic!("available")
        };
        assert!(
            why.contains("updated 2/2, available 1/2")
                && why.contains("Available=False: ConfigMap airflow-config missing"),
            "{why}"
        );

        let sts = |ready: i64| json!({"kind": "StatefulSet", "spec": {}, "status": {"readyReplicas": ready}});
        assert_eq!(readiness(&sts(1)), Readiness::Ready);
        assert_eq!(readiness(&sts(0)), Readiness::NotReady("ready 0/1".into()));

        let ds = |status: Value| json!({"kind": "DaemonSet", "status": status});
        assert_eq!(
            readiness(&ds(
                json!({"desiredNumberScheduled": 8, "numberUnavailable": 0})
            )),
            Readiness::Ready
        );
        assert_eq!(
            readiness(&ds(
                json!({"desiredNumberScheduled": 8, "numberUnavailable": 3, "currentNumberScheduled": 8})
            )),
            Readiness::NotReady("unavailable 3, scheduled 8/8".into())
        );
        assert!(
            matches!(readiness(&ds(json!({}))), Readiness::NotReady(w) if w.contains("not scheduled"))
        );

        let job =
            |conds: Value| json!({"kind": "Job", "status": {"active": 1, "conditions": conds}});
        assert_eq!(
            readiness(&job(json!([{"type": "Complete", "status": "True"}]))),
            Readiness::Ready
        );
        assert_eq!(
            readiness(&job(
                json!([{"type": "Failed", "status": "True", "message": "BackoffLimitExceeded"}])
            )),
            Readiness::Failed("failed: BackoffLimitExceeded".into())
        );
        assert_eq!(
            readiness(&job(json!([]))),
            Readiness::NotReady("not complete (active 1, succeeded 0, failed 0)".into())
        );

        let pod = json!({"kind": "Pod", "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}});
        assert_eq!(readiness(&pod), Readiness::Ready);
        assert_eq!(readiness(&json!({"kind": "ConfigMap"})), Readiness::Ready);
    }

    #[test]
    fn hash_ignores_key_order_and_sees_values() {
        let a =
            json!({"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}});
        let b =
            json!({"data": {"b": "2", "a": "1"}, "metadata": {"name": "c"}, "kind": "ConfigMap"});
        assert_eq!(object_hash(&a), object_hash(&b));
        assert_eq!(object_hash(&a).len(), 64);
        let c =
            json!({"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1", "b": "3"}});
        assert_ne!(object_hash(&a), object_hash(&c));
        assert_eq!(
            canonical_json(&b),
            r#"{"data":{"a":"1","b":"2"},"kind":"ConfigMap","metadata":{"name":"c"}}"#
        );
    }

    #[test]
    fn get_output_nothing_one_or_list() {
        assert!(parse_get_output("").expect("empty").is_empty());
        assert!(parse_get_output("\n").expect("empty").is_empty());
        let one =
            parse_get_output(r#"{"kind": "Namespace", "metadata": {"name": "a"}}"#).expect("one");
        assert_eq!(one.len(), 1);
        let list = parse_get_output(
            r#"{"apiVersion": "v1", "kind": "List", "items": [{"kind": "Namespace", "metadata": {"name": "a"}}, {"kind": "ConfigMap", "metadata": {"name": "b"}}]}"#,
        )
        .expect("list");
        assert_eq!(list.len(), 2);
        assert_eq!(str_at(&list[1], &["kind"]), Some("ConfigMap"));
        assert!(parse_get_output("Error").is_err());
    }

    #[test]
    fn secret_values_are_redacted_with_changes_marked() {
        let live = json!({"kind": "Secret", "data": {"a": "b2xk", "same": "c2FtZQ=="}});
        let mut desired =
            json!({"kind": "Secret", "stringData": {"a": "new", "same": "same", "added": "x"}});
        redact_secret(&mut desired, Some(&live));
        assert_eq!(desired["stringData"]["a"], REDACTED_CHANGED);
        assert_eq!(desired["stringData"]["same"], REDACTED);
        assert_eq!(desired["stringData"]["added"], REDACTED_CHANGED);
        let mut before = live.clone();
        redact_secret(&mut before, None);
        let text = to_yaml_docs([&before, &desired]);
        assert!(!text.contains("b2xk") && !text.contains("new"), "{text}");
        let mut cm = json!({"kind": "ConfigMap", "data": {"a": "visible"}});
        redact_secret(&mut cm, None);
        assert_eq!(cm["data"]["a"], "visible");
    }

    #[test]
    fn kubectl_command_line() {
        let k = Kubectl {
            command: "k3s kubectl".into(),
            kubeconfig: Some("/etc/rancher/k3s/k3s.yaml".into()),
        };
        assert_eq!(
            k.cmd("apply -f -"),
            "k3s kubectl --kubeconfig /etc/rancher/k3s/k3s.yaml apply -f -"
        );
    }
}
