//! An arm64 node (`drover lab up --arch arm64`): site.yml's plays up to the
//! Raspberry Pi prerequisites (the control machine's key, base
//! configuration, the cgroup flags with their reboot, swap, sysctls) on
//! Debian arm64 under qemu-user, then its facts, apt installing a package
//! of the lab's repository for arm64, and a converged re-run. Skipped, with
//! the reason, where this machine cannot run arm64 nodes (no binfmt_misc,
//! no qemu, the Debian archive out of reach for the first build).

use std::path::{Path, PathBuf};

use serde_yaml::Value;

use crate::harness::{Env, Run};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The roles of site.yml's prerequisite plays.
const PREREQUISITE_ROLES: [&str; 3] = ["ssh_keys", "common", "pi_prereq"];

/// site.yml's plays up to the first that is not a prerequisite, as written
/// there, and the arm64 checks after them.
fn playbook() -> String {
    let site = std::fs::read_to_string(repo("playbooks/site.yml")).expect("site.yml");
    let plays: Vec<Value> = serde_yaml::from_str(&site).expect("site.yml parses");
    let roles = |play: &Value| -> Vec<String> {
        play["roles"]
            .as_sequence()
            .map(|r| {
                r.iter()
                    .filter_map(|x| x.as_str().or_else(|| x["role"].as_str()))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut chosen: Vec<Value> = plays
        .into_iter()
        .take_while(|p| {
            let r = roles(p);
            !r.is_empty() && r.iter().all(|x| PREREQUISITE_ROLES.contains(&x.as_str()))
        })
        .collect();
    let names: Vec<String> = chosen.iter().flat_map(roles).collect();
    assert_eq!(
        names, PREREQUISITE_ROLES,
        "site.yml no longer starts with the prerequisite plays this test runs"
    );
    let checks = std::fs::read_to_string(repo("tests/e2e/playbooks/arm64_checks.yml"))
        .expect("arm64_checks.yml");
    let checks: Vec<Value> = serde_yaml::from_str(&checks).expect("arm64_checks.yml parses");
    chosen.extend(checks);
    serde_yaml::to_string(&chosen).expect("playbook serializes")
}

fn assert_ok(run: &Run, what: &str) {
    assert_eq!(run.code, 0, "{what} failed:\n{}", run.all());
    for (host, c) in run.recap() {
        assert_eq!(c["failed"], 0, "{what}: {host}: {c}");
        assert_eq!(c["unreachable"], 0, "{what}: {host}: {c}");
    }
}

#[test]
#[ignore = "needs root: run scripts/test"]
// A skip says why, on the test's stderr (shown with --nocapture).
#[allow(clippy::print_stderr)]
fn site_prerequisites_and_facts_on_an_arm64_node() {
    let env = match Env::arm64(1) {
        Ok(env) => env,
        Err(why) => {
            eprintln!("SKIPPED site_prerequisites_and_facts_on_an_arm64_node: {why}");
            return;
        }
    };
    let pb = env.write("arm64.yml", &playbook());
    std::os::unix::fs::symlink(repo("roles"), env.path("roles")).expect("roles link");

    let first = env.apply(&pb, &[]);
    assert_ok(&first, "prerequisites on arm64, first run");
    assert!(first.total("changed") > 0, "{}", first.all());
    let cmdline = env
        .node_file("pi-master", "/boot/firmware/cmdline.txt")
        .expect("cmdline.txt");
    assert!(
        cmdline
            .trim_end()
            .ends_with(" cgroup_memory=1 cgroup_enable=memory"),
        "{cmdline}"
    );
    let reboots = env
        .node_file("pi-master", "/var/log/drover-lab/reboot.log")
        .unwrap_or_default();
    assert!(reboots.contains("reboot: booted"), "no reboot: {reboots}");
    let status = env
        .node_file("pi-master", "/var/lib/dpkg/status")
        .expect("dpkg status written by the node");
    let hello = status
        .split("\n\n")
        .find(|p| p.starts_with("Package: drover-lab-hello\n"))
        .expect("drover-lab-hello installed");
    assert!(
        hello.contains("\nStatus: install ok installed\n"),
        "{hello}"
    );
    // The node's dpkg database is arm64's: its own packages say so.
    assert!(status.contains("\nArchitecture: arm64\n"));

    let second = env.apply(&pb, &[]);
    assert_ok(&second, "prerequisites on arm64, second run");
    for (host, c) in second.recap() {
        assert_eq!(
            c["changed"],
            0,
            "converged re-run changed {host}: {}",
            second.all()
        );
    }
}
