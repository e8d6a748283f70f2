//! The shipped cluster playbooks against an eight-node lab (real systemd,
//! real reboots) with the test doubles of tests/doubles (k3s and its
//! kubectl, NFS):
//! site.yml from fresh nodes to Airflow applied, converged re-run, --check;
//! then recovery of a wiped node and bootstrap of a ninth one. One lab for
//! the whole story, as a user's cluster lives through it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::harness::{Env, Run};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

const AGENT_TOKEN: &str = "/etc/rancher/k3s/token";
const SERVER_TOKEN: &str = "/var/lib/rancher/k3s/server/token";
const SECRETS: &str = "/var/lib/drover/airflow/secrets.yml";

/// The k3s double's datastore: what the API server on pi-master holds.
fn datastore(env: &Env) -> PathBuf {
    let master = env.lab.node("pi-master").expect("pi-master");
    env.lab
        .dir()
        .join("network/k3s")
        .join(master.address.to_string())
}

fn object(env: &Env, kind: &str, ns: &str, name: &str) -> Option<Value> {
    let p = datastore(env)
        .join("objects")
        .join(kind)
        .join(ns)
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(p).ok()?;
    serde_json::from_str(&text).ok()
}

fn node_labels(env: &Env, node: &str) -> Value {
    object(env, "Node", "_", node).unwrap_or_else(|| panic!("no Node {node} in the datastore"))
        ["metadata"]["labels"]
        .clone()
}

fn apply_log(env: &Env) -> Vec<String> {
    std::fs::read_to_string(datastore(env).join("apply.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn mode(env: &Env, node: &str, path: &str) -> u32 {
    std::fs::metadata(env.node_path(node, path))
        .unwrap_or_else(|e| panic!("{node}:{path}: {e}"))
        .permissions()
        .mode()
        & 0o7777
}

/// Mount points of a node, from its systemd's mount namespace.
fn mounts(env: &Env, node: &str) -> String {
    let pid = env.lab.init_pid(node).expect("node").expect("running");
    std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).expect("mountinfo")
}

fn assert_ok(run: &Run, what: &str) {
    assert_eq!(run.code, 0, "{what} failed:\n{}", run.all());
    for (host, c) in run.recap() {
        assert_eq!(c["failed"], 0, "{what}: {host}: {c}");
        assert_eq!(c["unreachable"], 0, "{what}: {host}: {c}");
    }
}

fn assert_unchanged(run: &Run, what: &str, except: &[&str]) {
    for (host, c) in run.recap() {
        if !except.contains(&host.as_str()) {
            assert_eq!(
                c["changed"],
                0,
                "{what}: {host} changed: {c}\n{}",
                run.all()
            );
        }
    }
}

/// What every provisioned node must hold, read from its own files.
fn assert_node_provisioned(env: &Env, node: &str, agent: bool) {
    let lab_key = std::fs::read_to_string(env.lab.key_path().with_extension("pub")).expect("key");
    let keys = env
        .node_file(node, "/home/admin/.ssh/authorized_keys")
        .unwrap_or_default();
    assert!(
        keys.contains(lab_key.trim()),
        "{node}: control key not authorized"
    );
    let cmdline = env
        .node_file(node, "/boot/firmware/cmdline.txt")
        .expect("cmdline.txt");
    assert_eq!(cmdline.lines().count(), 1, "{node}: {cmdline:?}");
    for flag in ["cgroup_memory=1", "cgroup_enable=memory"] {
        assert_eq!(
            cmdline.split_whitespace().filter(|f| *f == flag).count(),
            1,
            "{node}: {flag} not exactly once: {cmdline}"
        );
    }
    assert!(
        cmdline.contains("rootwait"),
        "{node}: original flags lost: {cmdline}"
    );
    assert_eq!(
        env.node_file(node, "/etc/hostname").as_deref(),
        Some(&*format!("{node}\n"))
    );
    if agent {
        assert_eq!(
            mode(env, node, AGENT_TOKEN),
            0o600,
            "{node}: token file mode"
        );
        let config = env
            .node_file(node, "/etc/rancher/k3s/config.yaml")
            .expect("agent config");
        assert!(
            config.contains("token-file: /etc/rancher/k3s/token"),
            "{config}"
        );
        assert!(!config.contains("K10"), "{node}: token inside config.yaml");
        let fstab = env.node_file(node, "/etc/fstab").unwrap_or_default();
        for share in ["dags", "logs"] {
            let line = format!(":/srv/nfs/airflow/{share} /mnt/airflow/{share} nfs ");
            assert!(fstab.contains(&line), "{node}: fstab lacks {line}: {fstab}");
            assert!(
                mounts(env, node).contains(&format!(" /mnt/airflow/{share} ")),
                "{node}: /mnt/airflow/{share} not mounted"
            );
        }
        assert!(
            env.node_file(node, "/var/lib/dpkg/info/nfs-common.list")
                .is_some(),
            "{node}: nfs-common not installed by apt"
        );
    }
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn cluster_converges_recovers_a_node_and_bootstraps_another() {
    let mut env = Env::new(8);
    let site = repo("playbooks/site.yml");

    // Fresh nodes to Airflow.
    let first = env.apply(&site, &["-vv"]);
    assert_ok(&first, "site.yml, first run");
    let token = env
        .node_file("pi-master", SERVER_TOKEN)
        .expect("server token");
    let token = token.trim();
    assert!(token.starts_with("K10"), "{token}");
    assert_eq!(mode(&env, "pi-master", SERVER_TOKEN), 0o600);
    assert!(
        !first.all().contains(token),
        "the join token appeared in output"
    );
    for node in env.node_names() {
        let agent = node != "pi-master";
        assert_node_provisioned(&env, &node, agent);
        if agent {
            let t = env.node_file(&node, AGENT_TOKEN).expect("agent token");
            assert_eq!(t.trim(), token, "{node}: wrong token");
        }
        // k3s runs as a unit of the node's systemd, started by install.sh.
        let (unit, up) = if agent {
            ("k3s-agent.service", "k3s agent is up and running")
        } else {
            ("k3s.service", "k3s is up and running")
        };
        let journal = env.lab.journal(&node, Some(unit)).expect("journal");
        assert!(journal.contains(up), "{node}: {unit}: {journal}");
        // Nodes share the machine's network: what site.yml installed must
        // listen on the node's own address only.
        assert_eq!(
            env.lab.foreign_listeners(&node).expect("node"),
            Vec::<String>::new(),
            "{node} listens outside its address"
        );
    }
    let exports = env.node_file("pi-master", "/etc/exports").expect("exports");
    for share in ["dags", "logs"] {
        assert!(
            exports.contains(&format!("/srv/nfs/airflow/{share} ")),
            "{exports}"
        );
    }
    assert_eq!(
        node_labels(&env, "pi-master")["node-role.kubernetes.io/airflow"],
        "management"
    );
    assert_eq!(
        node_labels(&env, "pi-worker-01")["node-role.kubernetes.io/airflow"],
        "scheduler-1"
    );
    assert_eq!(
        node_labels(&env, "pi-worker-02")["node-role.kubernetes.io/airflow"],
        "scheduler-2"
    );
    assert!(node_labels(&env, "pi-worker-03")["node-role.kubernetes.io/airflow"].is_null());
    let config = env
        .node_file("pi-worker-01", "/etc/rancher/k3s/config.yaml")
        .expect("config");
    assert!(
        config.contains("drover.dev/airflow-role=scheduler-1"),
        "{config}"
    );
    assert!(
        !config.contains("node-role.kubernetes.io"),
        "kubelet refuses these labels at registration: {config}"
    );

    // Airflow: applied in an order the API server double accepted.
    let log = apply_log(&env);
    let pos = |kind: &str, name: &str| {
        log.iter()
            .position(|l| l.contains(&format!(" {kind} ")) && l.ends_with(&format!(" {name}")))
            .unwrap_or_else(|| panic!("{kind}/{name} never applied:\n{}", log.join("\n")))
    };
    assert!(pos("Namespace", "airflow") < pos("ConfigMap", "airflow-config"));
    assert!(pos("StatefulSet", "airflow-postgres") < pos("Deployment", "airflow-webserver"));
    let job = log
        .iter()
        .position(|l| l.contains(" Job "))
        .expect("migration Job applied");
    assert!(job < pos("Deployment", "airflow-scheduler-1"));
    let secrets = env
        .node_file("pi-master", SECRETS)
        .expect("generated secrets");
    assert_eq!(mode(&env, "pi-master", SECRETS), 0o600);
    let secret_obj = object(&env, "Secret", "airflow", "airflow-env").expect("Secret applied");
    for value in secrets.lines().filter_map(|l| l.split('\'').nth(1)) {
        assert!(
            !first.all().contains(value),
            "a generated secret appeared in output"
        );
    }

    // Converged: nothing changes, and --check changes nothing either.
    let second = env.apply(&site, &[]);
    assert_ok(&second, "site.yml, second run");
    assert_unchanged(&second, "site.yml, second run", &[]);
    assert_eq!(
        env.node_file("pi-master", SECRETS).as_deref(),
        Some(&*secrets)
    );
    assert_eq!(
        object(&env, "Secret", "airflow", "airflow-env").map(|o| o["data"].clone()),
        Some(secret_obj["data"].clone()),
        "Secrets regenerated on re-run"
    );
    let before = env.snapshot();
    let log_len = apply_log(&env).len();
    let check = env.apply(&site, &["--check"]);
    assert_ok(&check, "site.yml --check");
    assert_unchanged(&check, "site.yml --check", &[]);
    assert_eq!(env.snapshot(), before, "--check changed a node");
    assert_eq!(apply_log(&env).len(), log_len, "--check applied manifests");

    // Recovery: pi-worker-03 dies and comes back reinstalled.
    env.lab.wipe_node("pi-worker-03").expect("wipe");
    let addr = env
        .lab
        .node("pi-worker-03")
        .expect("node")
        .address
        .to_string();
    let kh = env.lab.known_hosts_path();
    let forget = env.run(&[
        "known-hosts",
        "forget",
        &addr,
        "--known-hosts",
        kh.to_str().expect("utf8"),
    ]);
    assert_eq!(forget.code, 0, "{}", forget.all());
    let recover = repo("playbooks/recover-node.yml");
    let run = env.apply(&recover, &["--host-key-checking", "accept-new"]);
    assert_ok(&run, "recover-node.yml");
    assert_unchanged(&run, "recover-node.yml", &["pi-worker-03"]);
    assert!(run.recap()["pi-worker-03"]["changed"].as_u64() > Some(0));
    assert_node_provisioned(&env, "pi-worker-03", true);
    assert!(
        object(&env, "Node", "_", "pi-worker-03").is_some(),
        "pi-worker-03 did not rejoin"
    );
    assert!(
        !run.all().contains(token),
        "the join token appeared in output"
    );
    let again = env.apply(&recover, &[]);
    assert_ok(&again, "recover-node.yml, again");
    assert_unchanged(&again, "recover-node.yml, again", &[]);

    // Bootstrap: a ninth Pi joins with --limit, nothing else changes.
    // Fresh out of the box it takes only the password: its authorized_keys
    // is emptied first.
    let new = env.lab.add_node().expect("ninth node");
    assert_eq!(new.name, "pi-worker-08");
    let strip = env.write(
        "strip-keys.yml",
        "- hosts: pi-worker-08\n  gather_facts: false\n  tasks:\n    - copy:\n        content: ''\n        dest: /home/admin/.ssh/authorized_keys\n",
    );
    assert_ok(&env.apply(&strip, &[]), "emptying authorized_keys");
    let inventory = env.lab.inventory_path();
    let inventory = inventory.to_str().expect("utf8");
    let ping = env.run(&["ping", "-i", inventory, "--limit", "pi-worker-08"]);
    assert_ne!(
        ping.code,
        0,
        "the key should no longer work:\n{}",
        ping.all()
    );
    let password = env.write("password.yml", "ansible_password: admin\n");
    let password = format!("@{}", password.display());
    let before = env.snapshot();
    let boot = env.apply(
        &repo("playbooks/bootstrap-node.yml"),
        &["--limit", "pi-worker-08", "-e", &password],
    );
    assert_ok(&boot, "bootstrap-node.yml");
    assert_eq!(
        boot.recap().keys().collect::<Vec<_>>(),
        vec!["pi-worker-08"]
    );
    assert_node_provisioned(&env, "pi-worker-08", true);
    assert!(
        object(&env, "Node", "_", "pi-worker-08").is_some(),
        "pi-worker-08 did not join"
    );
    assert!(
        !boot.all().contains(token),
        "the join token appeared in output"
    );
    let ping = env.run(&["ping", "-i", inventory, "--limit", "pi-worker-08"]);
    assert_eq!(
        ping.code,
        0,
        "reached by key after ssh_keys:\n{}",
        ping.all()
    );
    let after = env.snapshot();
    for (path, desc) in &before {
        if !path.starts_with("pi-worker-08:") {
            assert_eq!(after.get(path), Some(desc), "bootstrap touched {path}");
        }
    }
    // The next full run tells every other node about the new one (/etc/hosts),
    // and nothing else; then the cluster is converged again.
    let site_again = env.apply(&site, &[]);
    assert_ok(&site_again, "site.yml after bootstrap");
    for (host, c) in site_again.recap() {
        assert!(c["changed"].as_u64() <= Some(1), "{host}: {c}");
    }
    let hosts = env.node_file("pi-master", "/etc/hosts").expect("hosts");
    assert!(hosts.contains(" pi-worker-08\n"), "{hosts}");
    let converged = env.apply(&site, &[]);
    assert_ok(&converged, "site.yml, converged with nine nodes");
    assert_unchanged(&converged, "site.yml, converged with nine nodes", &[]);
}
