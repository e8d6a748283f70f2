//! kubernetes.core modules (`k8s`, `k8s_info`, `helm`, `helm_repository`)
//! against a lab node running the k3s double (and the helm double): a run,
//! a converged re-run that changes nothing, and a `--check` run that
//! changes nothing on the node or in the cluster.

use std::path::Path;

use crate::harness::{Env, Run};

/// Install the k3s double (server) on every node, as the k3s role does
/// in air-gapped mode.
const K3S_SETUP: &str = r#"
- hosts: all
  become: true
  gather_facts: false
  tasks:
    - copy: {src: "{{ k3s_airgap_dir }}/k3s", dest: /usr/local/bin/k3s, mode: "0755"}
    - copy: {src: "{{ k3s_airgap_dir }}/install.sh", dest: /usr/local/bin/k3s-install.sh, mode: "0755"}
    - command: /usr/local/bin/k3s-install.sh
      environment: {INSTALL_K3S_SKIP_DOWNLOAD: "true", INSTALL_K3S_EXEC: server}
"#;

fn ok(run: &Run, what: &str) {
    assert_eq!(run.code, 0, "{what} failed:\n{}", run.all());
}

fn changed(run: &Run) -> u64 {
    run.total("changed")
}

fn datastore_file(env: &Env, rel: &str) -> Option<String> {
    let master = env.lab.node("pi-master").expect("pi-master");
    let p = env
        .lab
        .dir()
        .join("network/k3s")
        .join(master.address.to_string())
        .join(rel);
    std::fs::read_to_string(p).ok()
}

/// Run, re-run, --check: the second and third change nothing.
fn converges(env: &Env, play: &Path, what: &str) -> Run {
    let first = env.apply(play, &[]);
    ok(&first, what);
    assert!(changed(&first) > 0, "{what}: first run changed nothing");
    let second = env.apply(play, &[]);
    ok(&second, &format!("{what}, re-run"));
    assert_eq!(
        changed(&second),
        0,
        "{what}: re-run changed:\n{}",
        second.all()
    );
    let before = env.snapshot();
    let check = env.apply(play, &["--check", "--diff"]);
    ok(&check, &format!("{what}, --check"));
    assert_eq!(
        changed(&check),
        0,
        "{what}: --check changed:\n{}",
        check.all()
    );
    assert_eq!(env.snapshot(), before, "{what}: --check changed a node");
    first
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn kubernetes_core_k8s_and_k8s_info_converge_on_the_k3s_double() {
    let env = Env::new(1);
    let setup = env.write("setup.yml", K3S_SETUP);
    ok(&env.apply(&setup, &[]), "k3s setup");
    env.write(
        "files/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-src\n  labels: {app: airflow}\ndata:\n  k: v\n",
    );
    let play = env.write(
        "k8s.yml",
        r#"
- hosts: all
  become: true
  gather_facts: false
  tasks:
    - kubernetes.core.k8s: {kind: Namespace, name: airflow, api_version: v1, state: present}
    - kubernetes.core.k8s:
        namespace: airflow
        definition:
          apiVersion: v1
          kind: Secret
          metadata: {name: airflow-pw, labels: {app: airflow}}
          stringData: {password: hunter2}
    - kubernetes.core.k8s: {src: cm.yaml, namespace: airflow, apply: true}
    - kubernetes.core.k8s:
        state: absent
        kind: ConfigMap
        name: never-there
        namespace: airflow
    - kubernetes.core.k8s_info: {kind: ConfigMap, namespace: airflow, label_selectors: ["app=airflow"]}
      register: cms
    - kubernetes.core.k8s_info: {kind: ConfigMap}
      register: all_cms
    - kubernetes.core.k8s_info: {kind: Namespace, name: airflow}
      register: ns
    - debug: {msg: "cms={{ cms.resources | map(attribute='metadata.name') | list }} all={{ all_cms.resources | map(attribute='metadata.name') | list }} ns={{ ns.resources[0].status.phase }} found={{ cms.api_found }}"}
"#,
    );
    let first = converges(&env, &play, "k8s play");
    let out = first.all();
    assert!(out.contains("cms=['from-src']"), "{out}");
    assert!(out.contains("all=['from-src']"), "{out}");
    assert!(out.contains("ns=Active"), "{out}");
    assert!(out.contains("found=True"), "{out}");
    assert!(
        !out.contains("hunter2"),
        "a Secret value appeared in output"
    );
    assert!(datastore_file(&env, "objects/ConfigMap/airflow/from-src.json").is_some());

    // Deleting: then the re-run and --check change nothing.
    let absent = env.write(
        "absent.yml",
        r#"
- hosts: all
  become: true
  gather_facts: false
  tasks:
    - kubernetes.core.k8s: {state: absent, src: cm.yaml, namespace: airflow, wait: true, wait_sleep: 0.2}
"#,
    );
    converges(&env, &absent, "k8s absent");
    assert!(datastore_file(&env, "objects/ConfigMap/airflow/from-src.json").is_none());
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn kubernetes_core_k8s_says_kubectl_is_missing() {
    let env = Env::new(1);
    let play = env.write(
        "k8s.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - kubernetes.core.k8s: {kind: Namespace, name: x}\n      environment: {PATH: /nonexistent}\n",
    );
    let check = env.apply(&play, &["--check"]);
    ok(&check, "--check without kubectl");
    let run = env.apply(&play, &[]);
    assert_ne!(run.code, 0);
    assert!(
        run.all().contains("kubectl was not found on the target"),
        "{}",
        run.all()
    );
}

/// The helm double in the lab's "network": the Airflow chart repository.
fn helm_network(env: &Env) {
    let dir = env.lab.dir().join("network/helm");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(
        dir.join("index.json"),
        r#"{"https://airflow.apache.org": {"airflow": {"1.14.0": "2.8.4", "1.15.0": "2.9.3"}}}"#,
    )
    .expect("index");
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn kubernetes_core_helm_deploys_airflow_and_converges() {
    let env = Env::new(1);
    helm_network(&env);
    let double = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/doubles/helm/helm");
    let play = env.write(
        "helm.yml",
        &format!(
            r#"
- hosts: all
  become: true
  gather_facts: false
  tasks:
    - copy: {{src: "{double}", dest: /usr/local/bin/helm, mode: "0755"}}
    - copy:
        dest: /etc/airflow-values.yaml
        content: '{{ "executor": "KubernetesExecutor", "webserver": {{ "replicas": 1 }} }}'
    - kubernetes.core.helm_repository: {{name: apache-airflow, repo_url: "https://airflow.apache.org"}}
    - kubernetes.core.helm:
        name: airflow
        chart_ref: apache-airflow/airflow
        chart_version: 1.15.0
        release_namespace: airflow
        create_namespace: true
        values_files: [/etc/airflow-values.yaml]
        values:
          webserver: {{defaultUser: {{password: hunter2}}}}
      register: airflow
    - kubernetes.core.helm: {{name: old, chart_ref: apache-airflow/airflow, namespace: airflow, state: absent}}
    - debug: {{msg: "chart={{{{ airflow.status.chart }}}} status={{{{ airflow.status.status }}}}"}}
"#,
            double = double.display()
        ),
    );
    let missing = env.write(
        "missing.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - kubernetes.core.helm_repository: {name: a, repo_url: 'https://airflow.apache.org'}\n",
    );
    let run = env.apply(&missing, &[]);
    assert_ne!(run.code, 0);
    assert!(
        run.all().contains("helm was not found on the target"),
        "{}",
        run.all()
    );
    let first = converges(&env, &play, "helm play");
    assert!(
        first.all().contains("chart=airflow-1.15.0 status=deployed"),
        "{}",
        first.all()
    );
    // The release's values were sent on stdin, not on helm's command line.
    let state = env
        .node_file("pi-master", "/var/lib/helm-double/state.json")
        .expect("helm state");
    assert!(state.contains("hunter2"), "{state}");
    assert!(state.contains("\"replicas\": 1"), "{state}");

    // Another chart version is an upgrade; an unknown chart is helm's error.
    let upgrade = env.write(
        "upgrade.yml",
        r#"
- hosts: all
  become: true
  gather_facts: false
  tasks:
    - kubernetes.core.helm:
        name: airflow
        chart_ref: apache-airflow/airflow
        chart_version: 1.14.0
        release_namespace: airflow
        values_files: [/etc/airflow-values.yaml]
        values:
          webserver: {defaultUser: {password: hunter2}}
      register: airflow
    - debug: {msg: "rev={{ airflow.status.revision }}"}
    - kubernetes.core.helm: {name: x, chart_ref: apache-airflow/nope, namespace: airflow}
      register: nope
      ignore_errors: true
    - assert: {that: ["'not found in apache-airflow index' in nope.msg"]}
"#,
    );
    let run = env.apply(&upgrade, &[]);
    ok(&run, "upgrade");
    assert!(run.all().contains("rev=2"), "{}", run.all());
    assert_eq!(changed(&run), 1, "{}", run.all());

    // Uninstalling and removing the repository converge too.
    let absent = env.write(
        "absent.yml",
        r#"
- hosts: all
  become: true
  gather_facts: false
  tasks:
    - kubernetes.core.helm: {name: airflow, namespace: airflow, state: absent}
    - kubernetes.core.helm_repository: {name: apache-airflow, repo_state: absent}
"#,
    );
    converges(&env, &absent, "helm absent");
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn community_general_alternatives_converges() {
    let env = Env::new(1);
    let play = env.write(
        "alt.yml",
        r##"
- hosts: all
  become: true
  gather_facts: false
  tasks:
    - copy: {dest: /usr/local/bin/drover-alt-a, content: "#!/bin/sh\necho a\n", mode: "0755"}
    - copy: {dest: /usr/local/bin/drover-alt-b, content: "#!/bin/sh\necho b\n", mode: "0755"}
    - community.general.alternatives: {name: drover-alt, link: /usr/local/bin/drover-alt, path: /usr/local/bin/drover-alt-a, priority: 10, state: present}
    - community.general.alternatives: {name: drover-alt, link: /usr/local/bin/drover-alt, path: /usr/local/bin/drover-alt-b, priority: 20}
    - command: /usr/local/bin/drover-alt
      register: which
      changed_when: false
      check_mode: false
    - assert: {that: ["which.stdout == 'b'"]}
"##,
    );
    converges(&env, &play, "alternatives");
}
