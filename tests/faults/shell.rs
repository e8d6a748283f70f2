//! The kept shell and what drover leaves on the nodes: an interrupted run
//! stops its remote commands and removes its directories; a full /dev/shm
//! is not a lost host; a killed run's temporary files are removed by the
//! next one.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::Env;

/// The node's processes: those whose root is the node's merged overlay
/// (the lab chroots every node's sshd there), with their command lines.
fn node_procs(env: &Env, node: &str) -> Vec<(u32, String)> {
    let merged = env.lab.dir().join("nodes").join(node).join("merged");
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(root) = std::fs::read_link(format!("/proc/{pid}/root")) else {
            continue;
        };
        if root != merged {
            continue;
        }
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .unwrap_or_default();
        out.push((pid, cmd.trim().to_string()));
    }
    out
}

/// The node's /dev/shm (a tmpfs of its own, in its mount namespace), as
/// seen through its sshd's root.
fn node_shm(env: &Env, node: &str) -> PathBuf {
    let sshd = node_procs(env, node)
        .into_iter()
        .find(|(_, c)| c.contains("sshd -D"))
        .map(|(p, _)| p)
        .expect("the node's sshd");
    PathBuf::from(format!("/proc/{sshd}/root/dev/shm"))
}

fn entries_named(dir: &Path, prefix: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default()
}

fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    cond()
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .expect("kill runs")
        .success();
    assert!(ok, "kill -{sig} {pid}");
}

#[test]
fn sigint_mid_command_stops_the_remote_command_and_cleans_up() {
    let env = Env::new(2);
    let pb = env.write(
        "sleep.yml",
        r#"
- hosts: all
  gather_facts: false
  tasks:
    - name: first
      command: "true"
    - name: long
      command: sleep 30
      become: true
    - name: never
      command: touch /tmp/after-the-interrupt
"#,
    );
    let mut child = env.spawn(&pb, &[]);
    let nodes = env.node_names();
    let sleeping = |env: &Env| -> Vec<u32> {
        nodes
            .iter()
            .flat_map(|n| node_procs(env, n))
            .filter(|(_, c)| c == "sleep 30")
            .map(|(p, _)| p)
            .collect()
    };
    assert!(
        wait_for(Duration::from_secs(30), || sleeping(&env).len() == 2),
        "the sleeps never started"
    );
    let sleeps = sleeping(&env);
    for n in &nodes {
        assert!(
            !entries_named(&node_shm(&env, n), ".drover-sh.").is_empty(),
            "{n}: the shell's directory is where this test looks"
        );
    }
    let interrupted = Instant::now();
    signal(child.id(), "INT");
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            interrupted.elapsed() < Duration::from_secs(10),
            "drover still runs 10 s after SIGINT"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let took = interrupted.elapsed();
    let out = child.wait_with_output().expect("output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(status.code(), Some(130), "{stdout}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(stdout.contains("\"recap\""), "a recap: {stdout}");
    assert!(
        wait_for(Duration::from_secs(3), || sleeps
            .iter()
            .all(|p| !Path::new(&format!("/proc/{p}")).exists())),
        "the remote sleeps outlived the interrupt"
    );
    for n in &nodes {
        let left = entries_named(&node_shm(&env, n), ".drover-sh.");
        assert!(left.is_empty(), "{n}: left {left:?}");
        assert!(
            !env.node_path(n, "/tmp/after-the-interrupt").exists(),
            "{n}: a task ran after the interrupt"
        );
    }
}
