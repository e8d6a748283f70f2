//! ansible-playbook's command-line habits: `--syntax-check`, the listings,
//! `--start-at-task`, `--step`, `-b`/`--become-user`/`--become-method`,
//! `drover inventory --list` and `--version`. The first ones run the
//! binary against a host that is only a listening socket, to see that
//! nothing connects; the last test runs on the lab.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::harness::Env;

fn block() -> u8 {
    std::env::var("DROVER_TEST_BLOCK")
        .ok()
        .and_then(|b| b.parse().ok())
        .unwrap_or(180)
}

fn drover(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_drover"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run drover")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(&p, body).expect("write");
    p
}

/// An inventory whose two hosts are one listening socket.
fn trap(dir: &Path) -> TcpListener {
    let addr = format!("127.0.{}.251", block());
    let listener = TcpListener::bind(format!("{addr}:0")).expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    write(
        dir,
        "inventory/hosts.yml",
        &format!("all:\n  vars:\n    ansible_host: {addr}\n    ansible_port: {port}\n  children:\n    web:\n      hosts:\n        w1:\n          role: front\n        w2:\n"),
    );
    listener
}

fn untouched(listener: &TcpListener, what: &str) {
    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        Ok(_) => panic!("{what}: drover connected"),
        Err(e) => panic!("{what}: accept: {e}"),
    }
}

const SITE: &str = "- hosts: web\n  tags: [site]\n  tasks:\n    - name: first\n      debug: msg=a\n      tags: [one]\n    - name: second\n      dnf: {name: httpd}\n      when: false\n";

#[test]
fn syntax_check_loads_and_checks_without_connecting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listener = trap(dir.path());
    write(dir.path(), "site.yml", SITE);
    let out = drover(dir.path(), &["apply", "site.yml", "--syntax-check"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(stdout, "\nplaybook: site.yml\n");
    write(
        dir.path(),
        "bad.yml",
        "- hosts: web\n  tasks:\n    - debug: msg=\"{{ nobody_defines_this }}\"\n    - lineinfle: {path: /x}\n",
    );
    let out = drover(dir.path(), &["apply", "bad.yml", "--syntax-check"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("bad.yml:4:7"), "{stderr}");
    assert!(stderr.contains("did you mean 'lineinfile'?"), "{stderr}");
    untouched(&listener, "--syntax-check");
    // Without an inventory: loaded, variables left unchecked, said so.
    let bare = tempfile::tempdir().expect("tempdir");
    write(bare.path(), "site.yml", SITE);
    let out = drover(bare.path(), &["apply", "site.yml", "--syntax-check"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stderr.contains("undefined variables not checked"),
        "{stderr}"
    );
}

#[test]
fn list_hosts_tasks_and_tags_print_without_connecting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listener = trap(dir.path());
    write(dir.path(), "site.yml", SITE);
    let out = drover(
        dir.path(),
        &[
            "apply",
            "site.yml",
            "--list-hosts",
            "--list-tasks",
            "--list-tags",
            "-l",
            "w2",
        ],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(
        stdout,
        "\nplaybook: site.yml\n\n  play #1 (web): web\tTAGS: [site]\n    pattern: ['web']\n    hosts (1):\n      w2\n    tasks:\n      first\tTAGS: [one, site]\n      second\tTAGS: [site]\n      TASK TAGS: [one, site]\n"
    );
    let out = drover(
        dir.path(),
        &["apply", "site.yml", "--list-tasks", "-t", "one"],
    );
    let (stdout, _) = text(&out);
    assert!(
        stdout.contains("      first\tTAGS: [one, site]\n"),
        "{stdout}"
    );
    assert!(!stdout.contains("second"), "{stdout}");
    untouched(&listener, "--list-*");
}

#[test]
fn step_start_at_task_and_become_method_are_refused_before_connecting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listener = trap(dir.path());
    write(dir.path(), "site.yml", SITE);
    for (args, want) in [
        (
            &["--step"][..],
            "--step asks before each task and needs a terminal",
        ),
        (
            &["--start-at-task", "third"],
            "--start-at-task: no task named 'third'",
        ),
        (
            &["--become-method", "doas"],
            "--become-method doas is not supported",
        ),
    ] {
        let mut all = vec!["apply", "site.yml"];
        all.extend(args);
        let out = drover(dir.path(), &all);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stdout}{stderr}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
    }
    untouched(&listener, "refused options");
}

/// `--step` on a terminal (a pty from util-linux `script`): "n" skips the
/// first task, "c" runs the rest without asking again.
#[test]
fn step_asks_before_each_task_on_a_terminal() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "inv.yml",
        "all:\n  hosts:\n    localhost:\n      ansible_connection: local\n",
    );
    let mut tasks = String::new();
    for name in ["one", "two", "three"] {
        tasks.push_str(&format!(
            "    - name: {name}\n      copy: {{dest: \"{{{{ playbook_dir }}}}/{name}\", content: x}}\n"
        ));
    }
    write(
        dir.path(),
        "site.yml",
        &format!("- hosts: all\n  gather_facts: false\n  tasks:\n{tasks}"),
    );
    let command = format!(
        "{} apply site.yml -i inv.yml --step --output json",
        env!("CARGO_BIN_EXE_drover")
    );
    let mut child = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("util-linux script runs");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"n\nc\n").expect("answers");
    }
    let out = child.wait_with_output().expect("finishes");
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("Perform task: TASK: one (N)o/(y)es/(c)ontinue:"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("TASK: three"),
        "asked again after c: {stdout}"
    );
    assert!(!dir.path().join("one").exists(), "{stdout}");
    assert!(dir.path().join("two").exists(), "{stdout}");
    assert!(dir.path().join("three").exists(), "{stdout}");
}

#[test]
fn inventory_list_prints_ansible_inventorys_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _listener = trap(dir.path());
    let out = drover(dir.path(), &["inventory", "--list"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    let children = v["all"]["children"].as_array().expect("all's children");
    assert!(children.contains(&serde_json::json!("web")), "{stdout}");
    assert_eq!(v["web"]["hosts"], serde_json::json!(["w1", "w2"]));
    assert_eq!(v["_meta"]["hostvars"]["w1"]["role"], "front");
}

#[test]
fn version_names_the_ansible_core_release_it_follows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = drover(dir.path(), &["--version"]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout.starts_with("drover "), "{stdout}");
    assert!(stdout.contains("ansible-core 2.19"), "{stdout}");
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn start_at_task_and_become_options_take_effect_on_the_lab() {
    let env = Env::new(1);
    let pb = env.write(
        "site.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: before\n      copy: {dest: /tmp/habits-before, content: \"x\\n\"}\n    - block:\n        - name: start here\n          command: id -un\n          register: who\n    - name: as whom\n      copy: {dest: /tmp/habits-who, content: \"{{ who.stdout }}\\n\"}\n      become: false\n",
    );
    let node = &env.node_names()[0];
    let run = env.apply(
        &pb,
        &[
            "--start-at-task",
            "start here",
            "-b",
            "--become-user",
            "nobody",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(
        env.node_file(node, "/tmp/habits-before"),
        None,
        "{}",
        run.all()
    );
    assert_eq!(
        env.node_file(node, "/tmp/habits-who").as_deref(),
        Some("nobody\n"),
        "{}",
        run.all()
    );
    let run = env.apply(&pb, &["--become"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(env.node_file(node, "/tmp/habits-before").is_some());
    assert_eq!(
        env.node_file(node, "/tmp/habits-who").as_deref(),
        Some("root\n")
    );
}
