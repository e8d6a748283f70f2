//! `kubernetes.core.helm`: install, upgrade or uninstall a Helm release with
//! the helm CLI on the node, as Ansible's module does.
//!
//! One declared read gathers what Ansible's module looks at: the release
//! (`helm list -o json --filter ^NAME$`), its user-supplied values (`helm get
//! values -o json`), the chart the reference resolves to (`helm show
//! chart`) and the `values_files` on the node. A release is unchanged when
//! it is deployed from the same chart name and version with the same values
//! (the files' values merged in order, then `values`). Installing and
//! upgrading are one `helm upgrade --install`; `values` go to helm through a
//! temporary file fed from stdin, never on a command line.

use async_trait::async_trait;
use base64::Engine as _;
use serde::Deserialize;

use super::args::Presence as State;
use super::args::{bool_ish, opt_string_ish, yes};
use super::{
    ArgError, Decision, Diff, Module, ModuleCtx, ModuleError, Observed, Plan, Protocol, ReadCtx,
    ReadSet, Scope,
};
use crate::transport::shell_quote;
use crate::{Map, Value};

/// Arguments of `kubernetes.core.helm` (Ansible's names).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Helm {
    /// The release name.
    #[serde(alias = "name", deserialize_with = "super::args::string_ish")]
    release_name: String,
    /// The release namespace.
    #[serde(alias = "namespace", deserialize_with = "super::args::string_ish")]
    release_namespace: String,
    /// `repo/chart`, a chart directory on the node, or a chart URL.
    #[serde(default, deserialize_with = "opt_string_ish")]
    chart_ref: Option<String>,
    /// The chart version (default: the latest).
    #[serde(default, deserialize_with = "opt_string_ish")]
    chart_version: Option<String>,
    /// `present` or `absent`.
    #[serde(default, alias = "release_state")]
    state: State,
    /// Values (a mapping), applied after `values_files`.
    #[serde(default, alias = "release_values")]
    values: Option<Value>,
    /// Values files on the node, in order.
    #[serde(default)]
    values_files: Vec<String>,
    /// Create the namespace if it is missing.
    #[serde(default, deserialize_with = "bool_ish")]
    create_namespace: bool,
    /// Wait until the release's resources are ready.
    #[serde(default, deserialize_with = "bool_ish")]
    wait: bool,
    /// helm's `--timeout` (a Go duration, `5m0s`).
    #[serde(default, deserialize_with = "opt_string_ish")]
    wait_timeout: Option<String>,
    /// Reset values to the chart's before applying these (helm's
    /// `--reset-values`; Ansible's default).
    #[serde(default = "yes", deserialize_with = "bool_ish")]
    reset_values: bool,
    /// The helm program (default `helm` on PATH).
    #[serde(default, deserialize_with = "opt_string_ish")]
    binary_path: Option<String>,
    /// helm's `--kubeconfig`.
    #[serde(
        default,
        alias = "kubeconfig_path",
        deserialize_with = "opt_string_ish"
    )]
    kubeconfig: Option<String>,
}

/// What applying does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelmChange {
    /// `helm upgrade --install` with these values.
    Install(Value),
    /// `helm uninstall`.
    Uninstall,
}

/// What the read found.
#[derive(Debug, PartialEq)]
struct Found {
    /// The release as `helm list -o json` shows it.
    release: Option<Value>,
    /// Its user-supplied values.
    values: Value,
    /// `name-version` of the chart the reference resolves to, or helm's
    /// error.
    chart: Result<String, String>,
    /// The values files' contents (None: missing).
    files: Vec<(String, Option<String>)>,
}

/// The helm command: a program on the node, with `--kubeconfig`.
pub(super) fn helm_cmd(binary: Option<&str>, kubeconfig: Option<&str>) -> String {
    let bin = shell_quote(binary.unwrap_or("helm"));
    match kubeconfig {
        Some(k) => format!("{bin} --kubeconfig {}", shell_quote(k)),
        None => bin,
    }
}

/// The read's preamble: helm's absence is exit 127.
pub(super) fn need_helm(binary: Option<&str>) -> String {
    format!(
        "command -v {} >/dev/null 2>&1 || {{ echo 'helm: command not found' >&2; exit 127; }}\n",
        shell_quote(binary.unwrap_or("helm"))
    )
}

/// The failure when helm is not on the node.
pub(super) fn no_helm(module: &str, binary: Option<&str>) -> ModuleError {
    ModuleError::failed(format!(
        "helm was not found on the target ({}): {module} runs the helm CLI on the node; \
         install helm there first (https://helm.sh/docs/intro/install/) or set binary_path",
        binary.unwrap_or("helm")
    ))
}

/// Merge `b` into `a` as helm merges values: maps key by key, anything
/// else replaced.
fn merge(a: &mut Value, b: &Value) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                match a.get_mut(k) {
                    Some(av) if av.is_object() && v.is_object() => merge(av, v),
                    _ => {
                        a.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (a, b) => *a = b.clone(),
    }
}

/// Parse the read's output (sections after `@@` markers).
fn parse_found(text: &str) -> Result<Found, String> {
    let mut found = Found {
        release: None,
        values: Value::Object(Map::new()),
        chart: Err("not read".into()),
        files: Vec::new(),
    };
    let mut section = String::new();
    let mut body = String::new();
    let mut done = false;
    let mut finish = |section: &str, body: &str, found: &mut Found| -> Result<(), String> {
        match section
            .split_once(' ')
            .map_or((section, ""), |(a, b)| (a, b))
        {
            ("@@list", _) => {
                let list: Vec<Value> = serde_json::from_str(body.trim())
                    .map_err(|e| format!("helm list -o json: {e}"))?;
                found.release = list.into_iter().next();
            }
            ("@@values", _) => {
                let v: Value = serde_json::from_str(body.trim()).unwrap_or(Value::Null);
                if v.is_object() {
                    found.values = v;
                }
            }
            ("@@chart", _) => {
                let name = yaml_field(body, "name");
                let version = yaml_field(body, "version");
                found.chart = match (name, version) {
                    (Some(n), Some(v)) => Ok(format!("{n}-{v}")),
                    _ => Err("helm show chart printed no name and version".into()),
                };
            }
            ("@@charterr", _) => found.chart = Err(body.trim().to_string()),
            ("@@file", path) => {
                let content = base64::engine::general_purpose::STANDARD
                    .decode(body.split_whitespace().collect::<String>())
                    .map_err(|e| format!("{path}: {e}"))?;
                found.files.push((
                    path.to_string(),
                    Some(String::from_utf8_lossy(&content).into_owned()),
                ));
            }
            ("@@nofile", path) => found.files.push((path.to_string(), None)),
            ("@@end", _) => done = true,
            _ => {}
        }
        Ok(())
    };
    for line in text.lines() {
        if line.starts_with("@@") {
            if !section.is_empty() {
                finish(&section, &body, &mut found)?;
            }
            section = line.to_string();
            body.clear();
        } else {
            body.push_str(line);
            body.push('\n');
        }
    }
    if !section.is_empty() {
        finish(&section, &body, &mut found)?;
    }
    if !done {
        return Err("incomplete output".into());
    }
    Ok(found)
}

/// A top-level scalar of `helm show chart`'s YAML.
fn yaml_field(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == key).then(|| v.trim().trim_matches(|c| c == '"' || c == '\'').to_string())
    })
}

impl Helm {
    fn helm(&self) -> String {
        helm_cmd(self.binary_path.as_deref(), self.kubeconfig.as_deref())
    }

    fn ns(&self) -> String {
        shell_quote(&self.release_namespace)
    }

    fn read_script(&self) -> String {
        let h = self.helm();
        let name = shell_quote(&self.release_name);
        let mut s = need_helm(self.binary_path.as_deref());
        s.push_str(&format!(
            "echo @@list\n{h} list -o json -n {ns} --filter {filter} || exit $?\n\
             echo @@values\n{h} get values {name} -n {ns} -o json 2>/dev/null || echo null\n",
            ns = self.ns(),
            filter = shell_quote(&format!("^{}$", regex::escape(&self.release_name))),
        ));
        if let (State::Present, Some(chart)) = (self.state, &self.chart_ref) {
            let version = self
                .chart_version
                .as_ref()
                .map(|v| format!(" --version {}", shell_quote(v)))
                .unwrap_or_default();
            s.push_str(&format!(
                "if chart=$({h} show chart {c}{version} 2>&1); then echo @@chart; else echo @@charterr; fi\n\
                 printf '%s\\n' \"$chart\"\n",
                c = shell_quote(chart),
            ));
        }
        if self.state == State::Present {
            for f in &self.values_files {
                let q = shell_quote(f);
                s.push_str(&format!(
                    "if [ -r {q} ]; then echo @@file {p}; base64 < {q} || exit 1; else echo @@nofile {p}; fi\n",
                    p = shell_quote(f.replace('\n', " ").as_str()),
                ));
            }
        }
        s.push_str("echo @@end\n");
        s
    }

    /// The values helm would record: the files merged in order, then `values`.
    fn wanted_values(&self, found: &Found) -> Result<Value, ModuleError> {
        let mut all = Value::Object(Map::new());
        for (path, content) in &found.files {
            let content = content.as_ref().ok_or_else(|| {
                ModuleError::failed(format!("values file {path} not found on the target"))
            })?;
            let v: Value = serde_yaml::from_str(content)
                .map_err(|e| ModuleError::failed(format!("values file {path}: {e}")))?;
            if !v.is_null() {
                merge(&mut all, &v);
            }
        }
        if let Some(v) = &self.values {
            merge(&mut all, v);
        }
        Ok(all)
    }

    fn decide_found(&self, found: &Found, check: bool) -> Result<Plan<HelmChange>, ModuleError> {
        let mut data = Map::new();
        if let Some(r) = &found.release {
            let mut status = r.clone();
            if let Some(m) = status.as_object_mut() {
                m.insert("values".into(), found.values.clone());
            }
            data.insert("status".into(), status);
        }
        match self.state {
            State::Absent => match found.release {
                None => Ok(Plan::Unchanged(data)),
                Some(_) => Ok(Plan::Change {
                    change: HelmChange::Uninstall,
                    diff: None,
                    data,
                }),
            },
            State::Present => {
                let want = self.wanted_values(found)?;
                let chart = match &found.chart {
                    Ok(c) => Some(c.clone()),
                    // The repository may be added by an earlier task that
                    // check mode did not run.
                    Err(_) if check => None,
                    Err(e) => return Err(ModuleError::failed(e.clone())),
                };
                let same = found.release.as_ref().is_some_and(|r| {
                    r.get("status").and_then(Value::as_str) == Some("deployed")
                        && chart.is_some()
                        && r.get("chart").and_then(Value::as_str) == chart.as_deref()
                        && found.values == want
                });
                if same {
                    return Ok(Plan::Unchanged(data));
                }
                let before = found.release.as_ref().map(|r| {
                    format!(
                        "chart: {}\nvalues:\n{}",
                        r.get("chart").and_then(Value::as_str).unwrap_or(""),
                        serde_yaml::to_string(&found.values).unwrap_or_default()
                    )
                });
                let diff = Diff {
                    before_header: format!("release {}", self.release_name),
                    after_header: format!("release {}", self.release_name),
                    before: before.unwrap_or_default(),
                    after: format!(
                        "chart: {}\nvalues:\n{}",
                        chart
                            .as_deref()
                            .unwrap_or("(unknown until its repository is added)"),
                        serde_yaml::to_string(&want).unwrap_or_default()
                    ),
                };
                Ok(Plan::Change {
                    change: HelmChange::Install(want),
                    diff: Some(diff),
                    data,
                })
            }
        }
    }

    fn install_command(&self) -> String {
        let mut c = format!(
            "{} upgrade {} {} --install -n {}",
            self.helm(),
            shell_quote(&self.release_name),
            shell_quote(self.chart_ref.as_deref().unwrap_or_default()),
            self.ns()
        );
        if let Some(v) = &self.chart_version {
            c.push_str(&format!(" --version {}", shell_quote(v)));
        }
        if self.create_namespace {
            c.push_str(" --create-namespace");
        }
        if self.reset_values {
            c.push_str(" --reset-values");
        }
        if self.wait {
            c.push_str(" --wait");
        }
        if let Some(t) = &self.wait_timeout {
            c.push_str(&format!(" --timeout {}", shell_quote(t)));
        }
        for f in &self.values_files {
            c.push_str(&format!(" -f {}", shell_quote(f)));
        }
        c
    }
}

#[async_trait]
impl Module for Helm {
    const NAME: &'static str = "helm";
    const ARGS: &'static [&'static str] = &[
        "release_name",
        "name",
        "release_namespace",
        "namespace",
        "chart_ref",
        "chart_version",
        "state",
        "release_state",
        "values",
        "release_values",
        "values_files",
        "create_namespace",
        "wait",
        "wait_timeout",
        "reset_values",
        "binary_path",
        "kubeconfig",
        "kubeconfig_path",
    ];
    type Change = HelmChange;

    fn validate(&self) -> Result<(), ArgError> {
        // A value helm would take for an option.
        for (arg, v) in [
            ("release_name", Some(&self.release_name)),
            ("release_namespace", Some(&self.release_namespace)),
            ("chart_ref", self.chart_ref.as_ref()),
            ("chart_version", self.chart_version.as_ref()),
            ("wait_timeout", self.wait_timeout.as_ref()),
        ] {
            if v.is_some_and(|v| v.starts_with('-') || v.is_empty()) {
                return Err(ArgError {
                    arg: Some(arg.into()),
                    msg: format!("{arg} must not be empty or start with '-'"),
                });
            }
        }
        if self.values_files.iter().any(|f| f.starts_with('-')) {
            return Err(ArgError {
                arg: Some("values_files".into()),
                msg: "values_files must not start with '-'".into(),
            });
        }
        if self.state == State::Present && self.chart_ref.is_none() {
            return Err("state is present but all of the following are missing: chart_ref".into());
        }
        if self
            .values
            .as_ref()
            .is_some_and(|v| !v.is_object() && !v.is_null())
        {
            return Err(ArgError {
                arg: Some("values".into()),
                msg: "values must be a mapping".into(),
            });
        }
        Ok(())
    }

    fn reads(&self, _ctx: &ReadCtx<'_>) -> Result<Protocol, ModuleError> {
        Ok(Protocol::Declared(ReadSet::one(
            self.read_script(),
            Scope::Host,
        )))
    }

    fn decide(
        &self,
        observed: &Observed,
        ctx: &ReadCtx<'_>,
    ) -> Result<Decision<HelmChange>, ModuleError> {
        let out = observed.output(0)?;
        if out.status == 127 {
            if ctx.check && self.state == State::Present {
                return Ok(Decision::Plan(Plan::Change {
                    change: HelmChange::Install(Value::Null),
                    diff: None,
                    data: Map::new(),
                }));
            }
            return Err(no_helm("kubernetes.core.helm", self.binary_path.as_deref()));
        }
        let found = super::reads::parse_read(out, "the helm release", parse_found)?;
        self.decide_found(&found, ctx.check).map(Decision::Plan)
    }

    async fn apply(&self, ctx: &ModuleCtx<'_>, change: HelmChange) -> Result<Map, ModuleError> {
        let (script, stdin, command) = match &change {
            HelmChange::Install(values) => {
                let cmd = self.install_command();
                let script = format!(
                    "tmp=$(mktemp) || exit 1\ncat > \"$tmp\"\n{cmd} -f \"$tmp\"\nrc=$?\nrm -f \"$tmp\"\nexit $rc\n"
                );
                let stdin = serde_json::to_vec(values).unwrap_or_default();
                (script, stdin, format!("{cmd} -f <values>"))
            }
            HelmChange::Uninstall => {
                let mut cmd = format!(
                    "{} uninstall {} -n {}",
                    self.helm(),
                    shell_quote(&self.release_name),
                    self.ns()
                );
                if self.wait {
                    cmd.push_str(" --wait");
                }
                (cmd.clone(), Vec::new(), cmd)
            }
        };
        let out = ctx.remote.exec(&script, &stdin).await?;
        let mut data = Map::new();
        data.insert("command".into(), Value::String(command));
        data.insert("stdout".into(), Value::String(out.stdout_str()));
        data.insert("stderr".into(), Value::String(out.stderr_str()));
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
        if let HelmChange::Install(values) = change {
            let list = ctx
                .remote
                .exec(
                    &format!(
                        "{} list -o json -n {} --filter {}",
                        self.helm(),
                        self.ns(),
                        shell_quote(&format!("^{}$", regex::escape(&self.release_name)))
                    ),
                    b"",
                )
                .await?;
            let rel = serde_json::from_slice::<Vec<Value>>(&list.stdout)
                .ok()
                .and_then(|l| l.into_iter().next());
            if let Some(mut rel) = rel {
                if let Some(m) = rel.as_object_mut() {
                    m.insert("values".into(), values);
                }
                data.insert("status".into(), rel);
            }
        } else {
            data.remove("status");
        }
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::modules::testutil::assert_args_complete;

    fn module(v: Value) -> Helm {
        serde_json::from_value(v).expect("args")
    }

    fn airflow(extra: Value) -> Helm {
        let mut args = json!({"name": "airflow", "namespace": "airflow",
            "chart_ref": "apache-airflow/airflow"});
        merge(&mut args, &extra);
        module(args)
    }

    const LISTED: &str = r#"[{"name":"airflow","namespace":"airflow","revision":"1","updated":"x","status":"deployed","chart":"airflow-1.15.0","app_version":"2.9.3"}]"#;

    fn read(list: &str, values: &str, chart: &str, files: &[(&str, Option<&str>)]) -> String {
        let mut s = format!("@@list\n{list}\n@@values\n{values}\n{chart}\n");
        for (p, c) in files {
            match c {
                Some(c) => s.push_str(&format!(
                    "@@file {p}\n{}\n",
                    base64::engine::general_purpose::STANDARD.encode(c)
                )),
                None => s.push_str(&format!("@@nofile {p}\n")),
            }
        }
        s.push_str("@@end\n");
        s
    }

    const CHART: &str = "@@chart\napiVersion: v2\nname: airflow\nversion: 1.15.0";

    #[test]
    fn args() {
        assert_args_complete::<Helm>();
        assert!(module(json!({"name": "a", "namespace": "n"}))
            .validate()
            .is_err());
        assert!(
            module(json!({"name": "a", "namespace": "n", "state": "absent"}))
                .validate()
                .is_ok()
        );
        for bad in [
            json!({"name": "--set=x", "namespace": "n", "chart_ref": "a/b"}),
            json!({"name": "a", "namespace": "-n", "chart_ref": "a/b"}),
            json!({"name": "a", "namespace": "n", "chart_ref": "--x"}),
            json!({"name": "a", "namespace": "n", "chart_ref": "a/b", "values_files": ["-"]}),
        ] {
            assert!(module(bad.clone()).validate().is_err(), "{bad}");
        }
    }

    #[test]
    fn installs_upgrades_or_keeps_like_ansible() {
        let m = airflow(json!({"values": {"executor": "KubernetesExecutor"}}));
        let found = parse_found(&read("[]", "null", CHART, &[])).expect("parse");
        assert!(matches!(
            m.decide_found(&found, false),
            Ok(Plan::Change { change: HelmChange::Install(v), .. }) if v == json!({"executor": "KubernetesExecutor"})
        ));
        let found = parse_found(&read(
            LISTED,
            r#"{"executor":"KubernetesExecutor"}"#,
            CHART,
            &[],
        ))
        .expect("parse");
        let Ok(Plan::Unchanged(data)) = m.decide_found(&found, false) else {
            panic!("unchanged")
        };
        assert_eq!(data["status"]["revision"], "1");
        assert_eq!(data["status"]["values"]["executor"], "KubernetesExecutor");
        // Other values, or a newer chart: upgrade.
        let found =
            parse_found(&read(LISTED, r#"{"executor":"Celery"}"#, CHART, &[])).expect("parse");
        assert!(matches!(
            m.decide_found(&found, false),
            Ok(Plan::Change { .. })
        ));
        let newer = "@@chart\nname: airflow\nversion: 1.16.0";
        let found = parse_found(&read(
            LISTED,
            r#"{"executor":"KubernetesExecutor"}"#,
            newer,
            &[],
        ))
        .expect("parse");
        assert!(matches!(
            m.decide_found(&found, false),
            Ok(Plan::Change { .. })
        ));
    }

    #[test]
    fn values_files_merge_before_values() {
        let m = airflow(json!({"values_files": ["/v.yaml"], "values": {"web": {"port": 8080}}}));
        let found = parse_found(&read(
            LISTED,
            r#"{"web":{"replicas":2,"port":8080},"executor":"K"}"#,
            CHART,
            &[(
                "/v.yaml",
                Some("executor: K\nweb:\n  replicas: 2\n  port: 1\n"),
            )],
        ))
        .expect("parse");
        assert!(matches!(
            m.decide_found(&found, false),
            Ok(Plan::Unchanged(_))
        ));
        let found = parse_found(&read(LISTED, "null", CHART, &[("/v.yaml", None)])).expect("parse");
        let err = m.decide_found(&found, false).err().expect("missing file");
        assert!(
            err.to_string().contains("/v.yaml not found on the target"),
            "{err}"
        );
    }

    #[test]
    fn unknown_charts_fail_except_in_check_mode() {
        let m = airflow(json!({}));
        let chart_err = "@@charterr\nError: repo apache-airflow not found";
        let found = parse_found(&read("[]", "null", chart_err, &[])).expect("parse");
        let err = m.decide_found(&found, false).err().expect("fails");
        assert!(
            err.to_string().contains("repo apache-airflow not found"),
            "{err}"
        );
        assert!(matches!(
            m.decide_found(&found, true),
            Ok(Plan::Change { .. })
        ));
    }

    #[test]
    fn absent_uninstalls_only_a_listed_release() {
        let m = airflow(json!({"state": "absent"}));
        let found = parse_found(&read("[]", "null", "", &[])).expect("parse");
        assert!(matches!(
            m.decide_found(&found, false),
            Ok(Plan::Unchanged(_))
        ));
        let found = parse_found(&read(LISTED, "null", "", &[])).expect("parse");
        assert!(matches!(
            m.decide_found(&found, false),
            Ok(Plan::Change {
                change: HelmChange::Uninstall,
                ..
            })
        ));
    }

    #[test]
    fn truncated_output_is_refused() {
        assert!(parse_found("@@list\n[]\n").is_err());
    }

    #[test]
    fn the_command_names_no_values() {
        let m = airflow(
            json!({"values": {"password": "hunter2"}, "chart_version": "1.15.0",
            "create_namespace": true, "wait": true, "wait_timeout": "10m"}),
        );
        let c = m.install_command();
        assert_eq!(
            c,
            "helm upgrade airflow apache-airflow/airflow --install -n airflow --version 1.15.0 \
             --create-namespace --reset-values --wait --timeout 10m"
        );
        assert!(!m.read_script().contains("hunter2"));
    }
}
