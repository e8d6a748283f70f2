//! The shipped Airflow manifests, rendered by drover's own template engine
//! with the role's defaults (for both executors): every container and
//! initContainer has cpu and memory requests and limits, pods are pinned
//! where DESIGN.md puts them, and no secret value is written in a template.
//! (`scripts/validate-manifests` checks the same files against the real
//! Kubernetes schemas with kubernetes-validate.)

use std::path::{Path, PathBuf};
use std::sync::Arc;

use drover::template::Templar;
use drover::{Map, Value};

fn role_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("roles/airflow")
}

/// The role's defaults with sample secrets and a literal NFS server.
fn vars(executor: &str) -> Map {
    let text = std::fs::read_to_string(role_dir().join("defaults/main.yml")).expect("defaults");
    let defaults: serde_json::Value = serde_yaml::from_str(&text).expect("defaults parse");
    let mut vars = defaults.as_object().cloned().expect("a mapping");
    vars.insert("nfs_server".into(), "nfs.lab.invalid".into());
    vars.insert("airflow_executor".into(), executor.into());
    vars.insert(
        "airflow_secrets".into(),
        serde_json::json!({
            "fernet_key": "SAMPLE-fernet-key-sample-fernet-key-sample=",
            "webserver_secret_key": "sample-webserver-secret",
            "postgres_password": "sample-postgres-password",
            "admin_password": "sample-admin-password",
            "grafana_admin_password": "sample-grafana-password",
        }),
    );
    vars
}

/// Every object of every template, rendered.
fn objects(executor: &str) -> Vec<(String, Value)> {
    let templar = Templar::new();
    let scope = templar.scope(Arc::new(vars(executor)), Vec::new());
    let mut files: Vec<_> = std::fs::read_dir(role_dir().join("templates"))
        .expect("templates")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let name = f.file_name().expect("name").to_string_lossy().into_owned();
        let src = std::fs::read_to_string(&f).expect("read");
        let text = templar
            .render_string(&src, &scope)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let v: Value = serde::Deserialize::deserialize(doc)
                .unwrap_or_else(|e| panic!("{name}: rendered YAML does not parse: {e}\n{text}"));
            if !v.is_null() {
                out.push((name.clone(), v));
            }
        }
    }
    out
}

/// Pod specs inside an object: workloads, and the pod template that the
/// KubernetesExecutor reads from a ConfigMap.
fn pod_specs(obj: &Value) -> Vec<Value> {
    let spec = &obj["spec"];
    match obj["kind"].as_str().unwrap_or("") {
        "Pod" => vec![spec.clone()],
        "Deployment" | "StatefulSet" | "DaemonSet" | "Job" | "ReplicaSet" => {
            vec![spec["template"]["spec"].clone()]
        }
        "CronJob" => vec![spec["jobTemplate"]["spec"]["template"]["spec"].clone()],
        "ConfigMap" => obj["data"]
            .as_object()
            .into_iter()
            .flat_map(|d| d.values())
            .filter_map(Value::as_str)
            .filter_map(|s| serde_yaml::from_str::<Value>(s).ok())
            .filter(|v| v["kind"] == "Pod")
            .map(|v| v["spec"].clone())
            .collect(),
        _ => Vec::new(),
    }
}

#[test]
fn every_airflow_container_has_requests_and_limits() {
    for executor in ["LocalExecutor", "KubernetesExecutor"] {
        let objs = objects(executor);
        assert!(objs.len() >= 25, "{executor}: only {} objects", objs.len());
        let mut containers = 0;
        for (file, obj) in &objs {
            for spec in pod_specs(obj) {
                for list in ["containers", "initContainers"] {
                    for c in spec[list].as_array().into_iter().flatten() {
                        containers += 1;
                        let what = format!(
                            "{executor}: {file}: {} {} container {}",
                            obj["kind"], obj["metadata"]["name"], c["name"]
                        );
                        for kind in ["requests", "limits"] {
                            for res in ["cpu", "memory"] {
                                assert!(
                                    c["resources"][kind][res].is_string()
                                        || c["resources"][kind][res].is_number(),
                                    "{what} has no {kind}.{res}"
                                );
                            }
                        }
                    }
                }
            }
        }
        assert!(
            containers >= 10,
            "{executor}: only {containers} containers found"
        );
    }
}

#[test]
fn schedulers_and_webserver_are_pinned_by_label() {
    let objs = objects("LocalExecutor");
    let find = |name: &str| {
        objs.iter()
            .find(|(_, o)| o["kind"] == "Deployment" && o["metadata"]["name"] == name)
            .map(|(_, o)| o.clone())
            .unwrap_or_else(|| panic!("no Deployment {name}"))
    };
    let selector = |o: &Value| o["spec"]["template"]["spec"]["nodeSelector"].clone();
    let key = "node-role.kubernetes.io/airflow";
    assert_eq!(selector(&find("airflow-scheduler-1"))[key], "scheduler-1");
    assert_eq!(selector(&find("airflow-scheduler-2"))[key], "scheduler-2");
    assert_eq!(selector(&find("airflow-webserver"))[key], "management");
    let anti =
        &find("airflow-scheduler-1")["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"];
    assert!(
        anti["requiredDuringSchedulingIgnoredDuringExecution"].is_array(),
        "schedulers need required anti-affinity: {anti}"
    );
}

#[test]
fn templates_hold_no_literal_secret() {
    let text: String = std::fs::read_dir(role_dir().join("templates"))
        .expect("templates")
        .map(|e| std::fs::read_to_string(e.expect("entry").path()).expect("read"))
        .collect();
    for (_, obj) in objects("LocalExecutor") {
        if obj["kind"] != "Secret" {
            continue;
        }
        for field in ["data", "stringData"] {
            for v in obj[field].as_object().into_iter().flatten().map(|(_, v)| v) {
                let v = v.as_str().unwrap_or_default();
                assert!(
                    v.is_empty() || !text.contains(v),
                    "a Secret value is written literally in a template"
                );
            }
        }
    }
}
