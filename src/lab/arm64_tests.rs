//! Lab tests of arm64 nodes (address block 127.0.66.x). They need root and
//! what `drover lab up --arch arm64` needs; where this machine cannot run
//! arm64 nodes they pass after saying why on stderr.

use std::process::Output;

use tempfile::TempDir;

use super::tests::stdout;
use super::*;

/// The lab tests' ssh, by node name.
fn ssh(lab: &Lab, name: &str, cmd: &str) -> Output {
    super::tests::ssh(lab, &super::tests::node(lab, name), cmd)
}

#[test]
#[ignore = "needs root: run scripts/test"]
// A skip says why, on the test's stderr.
#[allow(clippy::print_stderr)]
fn arm64_nodes_run_aarch64_programs_and_live_like_native_ones() {
    let tmp = TempDir::new().expect("tempdir");
    let host_files =
        ["/etc/passwd", "/etc/shadow", "/etc/group", "/var/log/wtmp"].map(|f| fs::read(f).ok());
    let mut lab = match Lab::start(LabConfig {
        dir: tmp.path().join("lab"),
        block: "127.0.66".into(),
        nodes: 2,
        authorize_caller_keys: false,
        arch: Arch::Arm64,
        ..LabConfig::default()
    }) {
        Ok(lab) => lab,
        Err(LabError::Arm64Unavailable(why)) => {
            eprintln!("SKIPPED arm64 lab test: {why}");
            return;
        }
        Err(e) => panic!("arm64 lab starts: {e}"),
    };

    assert_eq!(
        stdout(&ssh(
            &lab,
            "pi-worker-01",
            "uname -m; dpkg --print-architecture; hostname; sudo -n id -u; echo kept > kept"
        )),
        "aarch64\narm64\npi-worker-01\n0\n"
    );
    // sshd sees the node's accounts and writes its login records into the
    // node, never into the host's files.
    let after =
        ["/etc/passwd", "/etc/shadow", "/etc/group", "/var/log/wtmp"].map(|f| fs::read(f).ok());
    assert!(
        host_files == after,
        "the host's account files or wtmp changed"
    );

    let out = ssh(&lab, "pi-master", "systemctl restart ssh");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("runs no init system"));

    lab.stop_node("pi-worker-01").expect("stops");
    lab.start_node("pi-worker-01").expect("starts again");
    assert_eq!(
        stdout(&ssh(&lab, "pi-worker-01", "uname -m; cat kept")),
        "aarch64\nkept\n"
    );

    let old_keys = lab.host_keys("pi-master").expect("keys");
    lab.wipe_node("pi-master").expect("wipes");
    assert_ne!(lab.host_keys("pi-master").expect("keys"), old_keys);
    lab.rewrite_known_hosts().expect("known_hosts");
    assert_eq!(stdout(&ssh(&lab, "pi-master", "uname -m")), "aarch64\n");

    let dir = lab.dir().to_path_buf();
    lab.stop().expect("lab stops");
    assert!(procs::mounts_at(&dir).is_empty());
}
