//! `community.general.ufw` against the real ufw, never on this machine's
//! firewall: tests/ufw/scenario.sh runs drover (`ansible_connection=local`)
//! inside scripts/in-firewall-ns, a private network namespace whose
//! /etc/ufw, /etc/default, /lib/ufw and /run are scratch copies. The
//! scenario (a k3s node's rules, ufw enabled with a default deny, then
//! the same again, check mode, a delete and a reset) runs once; each test
//! reads its steps. scripts/compare-ufw runs the same scenario with
//! ansible-playbook: the statuses asserted here are the ones it reports.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::harness::Run;
use crate::local::statuses;

const TASKS: [&str; 10] = [
    "allow ssh",
    "allow the k3s api",
    "allow flannel vxlan",
    "allow the kubelet from the lab net",
    "allow nfs",
    "allow the OpenSSH profile",
    "logging low",
    "enable with default deny",
    "allow outgoing",
    "deny a host first",
];

/// This machine's firewall and ufw files, to show the scenario left them
/// alone.
fn host_firewall() -> String {
    let rules = Command::new("iptables")
        .arg("-S")
        .output()
        .expect("iptables");
    let mut seen = String::from_utf8_lossy(&rules.stdout).into_owned();
    for f in [
        "/etc/ufw/user.rules",
        "/etc/ufw/ufw.conf",
        "/etc/default/ufw",
    ] {
        seen.push_str(&std::fs::read_to_string(f).unwrap_or_default());
    }
    seen
}

/// The scenario's output directory, run once for every test.
fn scenario() -> &'static Path {
    static RAN: OnceLock<tempfile::TempDir> = OnceLock::new();
    RAN.get_or_init(|| {
        assert!(
            Path::new("/usr/sbin/ufw").exists(),
            "ufw is not installed here: run scripts/setup"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let before = host_firewall();
        let status = Command::new(root.join("scripts/in-firewall-ns"))
            .arg(dir.path().join("state"))
            .arg("sh")
            .arg(root.join("tests/ufw/scenario.sh"))
            .arg("drover")
            .arg(dir.path().join("out"))
            .env("DROVER", env!("CARGO_BIN_EXE_drover"))
            .status()
            .expect("the scenario runs");
        assert!(status.success(), "scenario: {status}");
        assert_eq!(
            host_firewall(),
            before,
            "this machine's firewall or ufw files changed"
        );
        dir
    })
    .path()
}

fn out(step: &str, what: &str) -> String {
    let p: PathBuf = scenario().join("out").join(format!("{step}.{what}"));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn run(step: &str) -> Run {
    Run {
        code: out(step, "rc").trim().parse().expect("rc"),
        stdout: out(step, "json"),
        stderr: out(step, "err"),
    }
}

/// Each task's status in a step, in playbook order.
fn steps(step: &str, tasks: &[&str]) -> Vec<String> {
    let r = run(step);
    tasks
        .iter()
        .map(|t| statuses(&r, t).join(","))
        .collect::<Vec<_>>()
}

fn all(status: &str, n: usize) -> Vec<String> {
    vec![status.to_string(); n]
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn ufw_enables_with_default_deny_and_allows_the_k3s_ports() {
    let mut want = all("changed", TASKS.len());
    // The outgoing default was allow already.
    want[8] = "ok".into();
    assert_eq!(steps("apply", &TASKS), want, "{}", run("apply").stderr);
    let status = out("apply", "status");
    assert!(status.contains("Status: active"), "{status}");
    assert!(
        status.contains("Default: deny (incoming), allow (outgoing)"),
        "{status}"
    );
    assert!(status.contains("Logging: on (low)"), "{status}");
    for port in ["22/tcp", "6443/tcp", "8472/udp", "2049/tcp", "OpenSSH"] {
        assert!(status.contains(port), "{port}: {status}");
    }
    assert!(status.contains("# k3s apiserver"), "{status}");
    let iptables = out("apply", "iptables");
    assert!(iptables.contains("-P INPUT DROP"), "{iptables}");
    assert!(iptables.contains("--dport 6443"), "{iptables}");
    assert!(iptables.contains("-s 127.0.160.0/24"), "{iptables}");
    // The inserted deny is the first rule.
    let rules = out("apply", "rules");
    assert!(
        rules.starts_with("### tuple ### deny any any 0.0.0.0/0 any 127.0.161.5 in\n"),
        "{rules}"
    );
    // What Ansible's module returns: the commands it ran, the status.
    let r = crate::local::results(&run("apply"), "enable with default deny");
    let result = &r[0]["result"];
    assert_eq!(result["commands"][2], "/usr/sbin/ufw -f enable", "{result}");
    assert_eq!(result["commands"][3], "/usr/sbin/ufw default deny");
    assert!(
        result["msg"]
            .as_str()
            .is_some_and(|m| m.starts_with("Status: active")),
        "{result}"
    );
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn ufw_second_run_changes_nothing() {
    assert_eq!(steps("again", &TASKS), all("ok", TASKS.len()));
    assert_eq!(run("again").code, 0);
    assert_eq!(out("again", "rules"), out("apply", "rules"));
    assert_eq!(out("again", "status"), out("apply", "status"));
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn ufw_check_mode_changes_nothing() {
    // A fresh host: every task would change; the insert fails as
    // Ansible's dry run fails (no rule 1 to insert before).
    let mut want = all("changed", TASKS.len());
    want[9] = "failed".into();
    assert_eq!(steps("check-fresh", &TASKS), want);
    assert_eq!(out("check-fresh", "status").trim(), "Status: inactive");
    assert_eq!(out("check-fresh", "rules"), "");
    assert!(!out("check-fresh", "iptables").contains("ufw-user-input"));
    let r = crate::local::results(&run("check-fresh"), "deny a host first");
    assert_eq!(r[0]["msg"], "ERROR: Invalid position '1'\n", "{:?}", r[0]);
    // Converged: nothing would change.
    assert_eq!(steps("check-converged", &TASKS), all("ok", TASKS.len()));
    assert_eq!(out("check-converged", "rules"), out("apply", "rules"));
    // A delete and a reset, checked: reported, not made.
    assert_eq!(
        steps("check-delete", &["delete the k3s api rule"]),
        ["changed"]
    );
    assert!(out("check-delete", "rules").contains(" 6443 "));
    assert_eq!(steps("check-reset", &["reset ufw"]), ["changed"]);
    assert!(out("check-reset", "status").contains("Status: active"));
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn ufw_deletes_a_rule() {
    let task = ["delete the k3s api rule"];
    assert_eq!(steps("delete", &task), ["changed"]);
    let rules = out("delete", "rules");
    assert!(!rules.contains(" 6443 "), "{rules}");
    assert!(rules.contains(" 8472 "), "{rules}");
    assert!(!out("delete", "iptables").contains("--dport 6443"));
    assert_eq!(steps("delete-again", &task), ["ok"]);
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn ufw_reset_disables_and_forgets_the_rules() {
    // Ansible's module reports every reset as a change.
    assert_eq!(steps("reset", &["reset ufw"]), ["changed"]);
    assert_eq!(steps("reset-again", &["reset ufw"]), ["changed"]);
    assert_eq!(out("reset", "status").trim(), "Status: inactive");
    assert_eq!(out("reset", "rules"), "");
    assert!(!out("reset", "iptables").contains("--dport 22"));
}
