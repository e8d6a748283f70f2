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
#[ignore = "needs root: run scripts/test"]
fn sigint_mid_command_stops_the_remote_command_and_cleans_up() {
    interrupt_mid_command(true);
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn sigint_mid_command_without_become_stops_it_too() {
    interrupt_mid_command(false);
}

/// SIGINT to drover while `sleep 30` runs on two nodes (through sudo
/// with `become`).
fn interrupt_mid_command(with_become: bool) {
    let env = Env::new(2);
    let pb = env.write(
        "sleep.yml",
        &format!(
            r#"
- hosts: all
  gather_facts: false
  tasks:
    - name: first
      command: "true"
    - name: long
      command: sleep 30
      become: {with_become}
    - name: never
      command: touch /tmp/after-the-interrupt
"#
        ),
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

#[test]
#[ignore = "needs root: run scripts/test"]
fn a_second_sigint_exits_at_once() {
    let env = Env::new(1);
    let pb = env.write(
        "sleep.yml",
        r#"
- hosts: all
  gather_facts: false
  tasks:
    - command: sleep 30
"#,
    );
    let node = env.node_names()[0].clone();
    let mut child = env.spawn(&pb, &[]);
    assert!(
        wait_for(Duration::from_secs(30), || node_procs(&env, &node)
            .iter()
            .any(|(_, c)| c == "sleep 30")),
        "the sleep never started"
    );
    let start = Instant::now();
    signal(child.id(), "INT");
    signal(child.id(), "INT");
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(130));
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

/// The mount on /dev/shm as this process sees it.
fn host_shm_mount() -> String {
    std::fs::read_to_string("/proc/self/mountinfo")
        .expect("mountinfo")
        .lines()
        .filter(|l| l.split(' ').nth(4) == Some("/dev/shm"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn a_full_dev_shm_is_neither_a_lost_host_nor_a_silent_truncation() {
    let env = Env::new(1);
    let host_before = host_shm_mount();
    // A tiny /dev/shm with little room left, inside the node's own mount
    // namespace.
    let setup = env.write(
        "fill.yml",
        r#"
- hosts: all
  gather_facts: false
  become: true
  tasks:
    - shell: (sleep 0.5; mount -t tmpfs -o size=64k,mode=1777 tiny /dev/shm && dd if=/dev/zero of=/dev/shm/fill bs=1k count=24) >/dev/null 2>&1 &
"#,
    );
    // (Mounted after the run: its shell's directory would vanish under
    // the mount.)
    let run = env.apply(&setup, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    let node = &env.node_names()[0];
    assert!(
        wait_for(Duration::from_secs(10), || node_shm(&env, node)
            .join("fill")
            .exists()),
        "the node's /dev/shm was not filled"
    );
    assert_eq!(
        host_shm_mount(),
        host_before,
        "the mount stayed in the node"
    );
    assert!(!Path::new("/dev/shm/fill").exists());

    let pb = env.write(
        "normal.yml",
        r#"
- hosts: all
  gather_facts: false
  tasks:
    - name: more output than /dev/shm holds
      command: seq 1 40000
      ignore_errors: true
    - name: a file larger than /dev/shm
      copy:
        content: "{{ 'x' * 200000 }}"
        dest: /tmp/large
      become: true
    - name: the same output again
      command: seq 1 40000
    - name: small
      command: echo done
      become: true
"#,
    );
    let run = env.apply(&pb, &[]);
    let results: Vec<serde_json::Value> = run
        .events()
        .into_iter()
        .filter(|e| e["event"] == "host_result")
        .collect();
    assert_eq!(results.len(), 4, "{}", run.all());
    assert_eq!(run.total("unreachable"), 0, "{}", run.all());
    // The output that did not fit is a failure that says so, not a
    // short stdout.
    let msg = results[0]["msg"].as_str().unwrap_or_default();
    assert!(
        results[0]["failed"] == true && msg.contains("no room"),
        "{}",
        results[0]
    );
    assert_eq!(results[1]["status"], "changed", "{}", results[1]);
    assert_eq!(
        env.node_file(node, "/tmp/large").map(|s| s.len()),
        Some(200000)
    );
    assert_eq!(
        results[2]["result"]["stdout_lines"]
            .as_array()
            .map(Vec::len),
        Some(40000),
        "the shell now lives out of /dev/shm"
    );
    assert_eq!(results[3]["status"], "changed");
    assert_eq!(run.code, 0, "{}", run.all());
}

/// A 64 MiB local file and a playbook copying it to /opt/big.bin with
/// become.
fn big_copy(env: &Env) -> PathBuf {
    let src = env.path("big.bin");
    {
        use std::io::Write as _;
        let mut f = std::fs::File::create(&src).expect("create");
        let block: Vec<u8> = (0..=255u8).cycle().take(1 << 20).collect();
        for _ in 0..64 {
            f.write_all(&block).expect("write");
        }
    }
    env.write(
        "copy.yml",
        &format!(
            r#"
- hosts: all
  gather_facts: false
  become: true
  tasks:
    - copy:
        src: {}
        dest: /opt/big.bin
"#,
            src.display()
        ),
    )
}

/// Start copying a large file to the node's /opt and wait until its temp
/// file shows there: the playbook, the node's /opt, and the running drover.
fn start_big_copy(env: &Env) -> (PathBuf, PathBuf, std::process::Child) {
    let node = env.node_names()[0].clone();
    let pb = big_copy(env);
    let opt = env.node_path(&node, "/opt");
    let child = env.spawn(&pb, &[]);
    assert!(
        wait_for(Duration::from_secs(60), || !entries_named(&opt, ".drover.")
            .is_empty()),
        "the copy never started"
    );
    (pb, opt, child)
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn sigint_mid_copy_exits_within_seconds_and_leaves_no_temp_file() {
    let env = Env::new(1);
    let (_, opt, mut child) = start_big_copy(&env);
    let temps = || entries_named(&opt, ".drover.");
    let start = Instant::now();
    signal(child.id(), "INT");
    let status = child.wait().expect("wait");
    let took = start.elapsed();
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().expect("piped"), &mut stdout)
        .expect("read");
    assert_eq!(status.code(), Some(130), "{stdout}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(stdout.contains("\"recap\""), "a recap: {stdout}");
    // The node removes the temp file itself once the dropped connection
    // reaches the writing shell (sshd, sudo, sh, each a hop): seconds on a
    // loaded machine, where the suite's nodes share two cores with it.
    assert!(
        wait_for(Duration::from_secs(30), || temps().is_empty()),
        "left {:?}",
        temps()
    );
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn sigkill_mid_copy_then_the_next_run_leaves_no_temp_files() {
    let env = Env::new(1);
    let (pb, opt, mut child) = start_big_copy(&env);
    let temps = || entries_named(&opt, ".drover.");
    signal(child.id(), "KILL");
    let _ = child.wait();
    // What the killed run left (its remote shell may still be removing it).
    std::thread::sleep(Duration::from_secs(2));
    let left = temps();
    let run = env.apply(&pb, &["-v"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(temps(), Vec::<String>::new(), "left before: {left:?}");
    if !left.is_empty() {
        assert!(
            run.stderr.contains("left by an earlier run"),
            "-v says what it removed: {}",
            run.stderr
        );
    }
    assert_eq!(
        std::fs::metadata(opt.join("big.bin")).map(|m| m.len()).ok(),
        Some(64 << 20)
    );
}
