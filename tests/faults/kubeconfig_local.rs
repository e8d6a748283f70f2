//! From the control machine to the cluster (issue 12): the k3s_server
//! role's opt-in `k3s_kubeconfig_local` merges the server's k3s.yaml into
//! the control machine's kubeconfig, pointed at the server's inventory
//! address and renamed, keeping the file's other contexts; a second run and
//! a `--check` run change nothing. HOME is the lab's scratch directory.

use std::os::unix::fs::PermissionsExt as _;

use crate::harness::Env;

/// What the k3s double (tests/doubles/k3s) writes as
/// /etc/rancher/k3s/k3s.yaml, with recognisable key data.
const K3S_YAML: &str = "apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: Q0EtREFUQS1TRUNSRVQ=
    server: https://127.0.0.1:6443
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
kind: Config
preferences: {}
users:
- name: default
  user:
    client-certificate-data: Q0VSVC1EQVRB
    client-key-data: S0VZLURBVEEtU0VDUkVU
";

/// The user's own kubeconfig, as kubectl writes it.
const EXISTING: &str = "apiVersion: v1
clusters:
- cluster:
    server: https://work.example:443
  name: work
contexts:
- context:
    cluster: work
    user: work
  name: work
current-context: work
kind: Config
preferences: {}
users:
- name: work
  user:
    token: work-token
";

fn named<'a>(doc: &'a serde_yaml::Value, list: &str, name: &str) -> &'a serde_yaml::Value {
    doc[list]
        .as_sequence()
        .and_then(|s| s.iter().find(|e| e["name"].as_str() == Some(name)))
        .unwrap_or_else(|| panic!("no {list} entry {name} in {doc:?}"))
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn k3s_kubeconfig_merges_into_the_local_kubeconfig_keeping_other_contexts_and_converges() {
    let env = Env::new(1);
    let node = &env.node_names()[0];
    let k3s_yaml = env.node_path(node, "/etc/rancher/k3s/k3s.yaml");
    std::fs::create_dir_all(k3s_yaml.parent().expect("parent")).expect("mkdir");
    std::fs::write(&k3s_yaml, K3S_YAML).expect("write");
    std::fs::set_permissions(&k3s_yaml, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let local = env.write(".kube/config", EXISTING);
    std::fs::set_permissions(&local, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let role = concat!(env!("CARGO_MANIFEST_DIR"), "/roles/k3s_server");
    let pb = env.write(
        "kubeconfig.yml",
        &format!(
            "- hosts: all\n  become: true\n  gather_facts: false\n  tasks:\n    - include_role:\n        name: {role}\n        tasks_from: kubeconfig\n      vars:\n        k3s_kubeconfig_local: ~/.kube/config\n        k3s_kubeconfig_name: lab-k3s\n"
        ),
    );
    let secrets = ["S0VZLURBVEEtU0VDUkVU", "work-token"];

    // --check first: reports the change, writes nothing.
    let check = env.apply(&pb, &["--check"]);
    assert_eq!(check.code, 0, "{}", check.all());
    assert_eq!(check.total("changed"), 1, "{}", check.all());
    assert_eq!(std::fs::read_to_string(&local).expect("read"), EXISTING);

    let first = env.apply(&pb, &["-vvvv"]);
    assert_eq!(first.code, 0, "{}", first.all());
    assert_eq!(first.total("changed"), 1, "{}", first.all());
    for s in secrets {
        assert!(
            !first.all().contains(s),
            "{s} in the output:\n{}",
            first.all()
        );
    }
    let text = std::fs::read_to_string(&local).expect("read");
    let mode = std::fs::metadata(&local)
        .expect("stat")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "kubeconfig mode");
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("kubeconfig is YAML");
    assert_eq!(doc["current-context"].as_str(), Some("work"), "{text}");
    assert_eq!(
        named(&doc, "clusters", "work")["cluster"]["server"].as_str(),
        Some("https://work.example:443")
    );
    assert_eq!(
        named(&doc, "users", "work")["user"]["token"].as_str(),
        Some("work-token")
    );
    named(&doc, "contexts", "work");
    let server = named(&doc, "clusters", "lab-k3s")["cluster"]["server"]
        .as_str()
        .expect("server")
        .to_string();
    assert!(
        server.starts_with("https://127.0.") && server.ends_with(":6443"),
        "{server}"
    );
    assert!(!server.contains("127.0.0.1"), "{server}");
    assert_eq!(
        named(&doc, "clusters", "lab-k3s")["cluster"]["certificate-authority-data"].as_str(),
        Some("Q0EtREFUQS1TRUNSRVQ=")
    );
    assert_eq!(
        named(&doc, "users", "lab-k3s")["user"]["client-key-data"].as_str(),
        Some("S0VZLURBVEEtU0VDUkVU")
    );
    let ctx = &named(&doc, "contexts", "lab-k3s")["context"];
    assert_eq!(
        (ctx["cluster"].as_str(), ctx["user"].as_str()),
        (Some("lab-k3s"), Some("lab-k3s"))
    );
    assert!(!text.contains("name: default"), "{text}");

    // Converged: a second run and a --check run change nothing.
    for args in [&[][..], &["--check"]] {
        let again = env.apply(&pb, args);
        assert_eq!(again.code, 0, "{}", again.all());
        assert_eq!(again.total("changed"), 0, "{args:?}: {}", again.all());
    }
    assert_eq!(std::fs::read_to_string(&local).expect("read"), text);

    // No kubeconfig yet: the file (and ~/.kube) is made, its context
    // current.
    std::fs::remove_dir_all(env.path(".kube")).expect("rm");
    let fresh = env.apply(&pb, &[]);
    assert_eq!(fresh.code, 0, "{}", fresh.all());
    let doc: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&local).expect("read")).expect("YAML");
    assert_eq!(doc["current-context"].as_str(), Some("lab-k3s"));
    assert_eq!(doc["contexts"].as_sequence().map(Vec::len), Some(1));
}
