//! The lab's Ansible inventory: the real cluster's groups (`k3s_server`,
//! `k3s_agents`, `k3s_cluster`, `management`, `schedulers`, `nfs_server`,
//! `nfs_clients`) with the lab's loopback addresses, key, known_hosts file
//! and the air-gapped k3s install from the lab's k3s doubles.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::Path;

/// Render the inventory for nodes `(name, address)`; node 1 (`pi-master`)
/// is the k3s server, every other node an agent.
pub(super) fn render(dir: &Path, port: u16, nodes: &[(String, Ipv4Addr)]) -> String {
    let key = dir.join(super::KEY_FILE);
    let known_hosts = dir.join(super::KNOWN_HOSTS_FILE);
    let mut s = String::new();
    s.push_str("# drover lab inventory, written by the lab: every host is an OpenSSH\n");
    s.push_str("# server on a loopback address of this machine.\n");
    s.push_str("all:\n  vars:\n");
    let _ = writeln!(s, "    ansible_user: {}", super::seed::USER);
    if port != 22 {
        let _ = writeln!(s, "    ansible_port: {port}");
    }
    let _ = writeln!(
        s,
        "    ansible_ssh_private_key_file: {}",
        scalar(&key.to_string_lossy())
    );
    let args = format!("-o UserKnownHostsFile={}", known_hosts.to_string_lossy());
    let _ = writeln!(s, "    ansible_ssh_common_args: {}", quoted(&args));
    s.push_str("    k3s_install_mode: airgap\n");
    let airgap = dir.join("k3s-airgap");
    let _ = writeln!(
        s,
        "    k3s_airgap_dir: {}",
        scalar(&airgap.to_string_lossy())
    );
    let _ = writeln!(
        s,
        "    ssh_keys_public_key_file: {}",
        scalar(&key.with_extension("pub").to_string_lossy())
    );
    s.push_str("  children:\n");
    let (server, agents): (Vec<_>, Vec<_>) = nodes.iter().partition(|(n, _)| n == "pi-master");
    group(&mut s, "k3s_server", &server);
    group(&mut s, "k3s_agents", &agents);
    s.push_str("    k3s_cluster:\n      children:\n        k3s_server:\n        k3s_agents:\n");
    if server.is_empty() {
        s.push_str("    management: {}\n");
    } else {
        s.push_str("    management:\n      hosts:\n        pi-master:\n");
        s.push_str("      vars:\n        airflow_role: management\n");
    }
    // The real cluster's two scheduler hosts, when the lab has them.
    let schedulers: Vec<&str> = ["pi-worker-01", "pi-worker-02"]
        .into_iter()
        .filter(|h| nodes.iter().any(|(n, _)| n == h))
        .collect();
    if schedulers.is_empty() {
        s.push_str("    schedulers: {}\n");
    } else {
        s.push_str("    schedulers:\n      hosts:\n");
        for (k, h) in schedulers.iter().enumerate() {
            let _ = writeln!(
                s,
                "        {h}:\n          airflow_role: scheduler-{}",
                k + 1
            );
        }
    }
    if server.is_empty() {
        s.push_str("    nfs_server: {}\n");
    } else {
        s.push_str("    nfs_server:\n      hosts:\n        pi-master:\n");
    }
    s.push_str("    nfs_clients:\n      children:\n        k3s_agents:\n");
    s
}

fn group(s: &mut String, name: &str, hosts: &[&(String, Ipv4Addr)]) {
    if hosts.is_empty() {
        let _ = writeln!(s, "    {name}: {{}}");
        return;
    }
    let _ = writeln!(s, "    {name}:\n      hosts:");
    for (host, addr) in hosts {
        let _ = writeln!(s, "        {host}:\n          ansible_host: {addr}");
    }
}

/// A YAML scalar: plain when that is unambiguous, double-quoted otherwise.
fn scalar(v: &str) -> String {
    let plain = !v.is_empty()
        && v.starts_with('/')
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+".contains(c));
    if plain {
        v.to_string()
    } else {
        quoted(v)
    }
}

/// A double-quoted YAML scalar (JSON string syntax is valid YAML).
fn quoted(v: &str) -> String {
    serde_json::Value::String(v.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_paths_are_quoted() {
        assert_eq!(
            scalar("/tmp/drover-lab/id_ed25519"),
            "/tmp/drover-lab/id_ed25519"
        );
        assert_eq!(scalar("/tmp/a b: c"), "\"/tmp/a b: c\"");
    }

    #[test]
    fn a_single_node_lab_has_an_empty_agent_group_and_parses() {
        let inv = render(
            Path::new("/l"),
            2222,
            &[("pi-master".to_string(), Ipv4Addr::new(127, 0, 5, 1))],
        );
        assert!(inv.contains("    k3s_agents: {}\n"));
        assert!(inv.contains("    ansible_port: 2222\n"));
        let v: serde_yaml::Value = serde_yaml::from_str(&inv).expect("valid YAML");
        assert_eq!(
            v["all"]["children"]["k3s_server"]["hosts"]["pi-master"]["ansible_host"].as_str(),
            Some("127.0.5.1")
        );
        assert!(inv.contains("    schedulers: {}\n"));
        assert_eq!(
            v["all"]["children"]["management"]["vars"]["airflow_role"].as_str(),
            Some("management")
        );
    }

    #[test]
    fn schedulers_are_only_the_workers_the_lab_has() {
        let inv = render(
            Path::new("/l"),
            22,
            &[
                ("pi-master".to_string(), Ipv4Addr::new(127, 0, 5, 1)),
                ("pi-worker-01".to_string(), Ipv4Addr::new(127, 0, 5, 2)),
            ],
        );
        let v: serde_yaml::Value = serde_yaml::from_str(&inv).expect("valid YAML");
        let sched = &v["all"]["children"]["schedulers"]["hosts"];
        assert_eq!(sched.as_mapping().map(|m| m.len()), Some(1));
        assert_eq!(
            sched["pi-worker-01"]["airflow_role"].as_str(),
            Some("scheduler-1")
        );
        assert_eq!(
            v["all"]["vars"]["ssh_keys_public_key_file"].as_str(),
            Some("/l/id_ed25519.pub")
        );
    }
}
