//! Keywords drover used to accept and then ignore: `remote_user`,
//! `connection`, `ignore_unreachable`, `throttle`, `strategy`, `timeout`,
//! `delegate_facts`, `gather_subset`, `vars_prompt`, a `!vault` value and a
//! ProxyJump in the SSH arguments. Each now either works, seen on the lab
//! nodes, or is refused before anything runs, at its file:line:col.

use std::path::Path;
use std::process::Command;

use crate::harness::{Env, Run};

/// The lab's inventory without its `ansible_user`, so that `remote_user`
/// decides (the inventory variable wins over the keyword, as in Ansible),
/// plus SSH options drover does not use.
fn inventory_without_user(env: &Env) -> std::path::PathBuf {
    let text = std::fs::read_to_string(env.lab.inventory_path()).expect("lab inventory");
    let mut out = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("ansible_user:") {
            out.push_str("    ansible_ssh_extra_args: \"-C -o ServerAliveInterval=5\"\n");
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    env.write("inventory.yml", &out)
}

const WORKS: &str = r#"- hosts: all
  remote_user: admin
  strategy: linear
  gather_subset: ['!all', '!min', network]
  gather_timeout: 30
  tasks:
    - name: who am I
      command: id -un
      register: who
    - name: what was gathered
      copy:
        dest: /tmp/kw-facts
        content: "{{ who.stdout }} net={{ ansible_default_ipv4 is defined }} dist={{ ansible_distribution is defined }}\n"
    - name: one host at a time
      shell: date +%s.%N > /tmp/kw-t0; sleep 0.4; date +%s.%N > /tmp/kw-t1
      throttle: 1
    - name: a user the nodes lack
      command: id
      remote_user: nosuchuser
      ignore_unreachable: true
      register: gone
    - name: still in the play
      copy:
        dest: /tmp/kw-after
        content: "unreachable={{ gone.unreachable }}\n"
    - name: on the control machine
      copy:
        dest: "{{ playbook_dir }}/local-{{ inventory_hostname }}"
        content: "here\n"
      connection: local
    - name: slow
      command: sleep 30
      timeout: 2
      ignore_errors: true
      register: slow
    - name: why it stopped
      copy:
        dest: /tmp/kw-timeout
        content: "{{ slow.msg }}\n"
    - name: is it still running (seen from the control machine)
      shell: >-
        for p in /proc/[0-9]*; do
        [ "$(readlink $p/root)" = "{{ lab_dir }}/nodes/{{ inventory_hostname }}/merged" ] &&
        tr '\0' ' ' <$p/cmdline && echo; done | grep -c '^sleep 30 $' || true
      connection: local
      register: still
    - name: the answer
      copy:
        dest: /tmp/kw-still
        content: "{{ still.stdout }}\n"
    - name: tell the second node
      set_fact:
        told: "by {{ inventory_hostname }}"
      delegate_to: pi-worker-01
      delegate_facts: true
      run_once: true
    - name: who was told
      copy:
        dest: /tmp/kw-told
        content: "{{ told | default('nothing') }}\n"
- name: the play's own gathering
  hosts: all
  remote_user: nosuchuser
  ignore_unreachable: true
  tasks: []
"#;

#[test]
#[ignore = "needs root: run scripts/test"]
fn formerly_ignored_keywords_take_effect_on_the_lab_nodes() {
    let env = Env::new(3);
    let inv = inventory_without_user(&env);
    let pb = env.write("works.yml", WORKS);
    let started = std::time::Instant::now();
    let run = env.run(&[
        "apply",
        pb.to_str().expect("utf8"),
        "-i",
        inv.to_str().expect("utf8"),
        "--output",
        "json",
        "-e",
        &format!("lab_dir={}", env.lab.dir().display()),
    ]);
    let took = started.elapsed();
    assert_eq!(run.code, 0, "{}", run.all());
    let nodes = env.node_names();
    assert_eq!(nodes.len(), 3);
    let recap = run.recap();
    for node in &nodes {
        let c = &recap[node];
        // ignore_unreachable: counted ok and ignored, the host stays.
        assert_eq!(c["unreachable"], 0, "{node}: {}", run.all());
        assert_eq!(c["failed"], 0, "{node}: {}", run.all());
        // The unreachable task, the timed-out one and the second play's
        // gathering, which the play's ignore_unreachable covers.
        assert_eq!(c["ignored"], 3, "{node}: {}", run.all());
        let after = env.node_file(node, "/tmp/kw-after").expect("after");
        assert_eq!(after.to_lowercase(), "unreachable=true\n", "{node}");
        // remote_user chose the login; gather_subset the facts.
        let facts = env.node_file(node, "/tmp/kw-facts").expect("facts file");
        assert_eq!(
            facts.to_lowercase(),
            "admin net=true dist=false\n",
            "{node}"
        );
        // connection: local wrote on the control machine, not the node.
        assert!(env.path(&format!("local-{node}")).is_file(), "{node}");
        assert!(env
            .node_file(node, &format!("{}/local-{node}", env.dir.path().display()))
            .is_none());
        // timeout: Ansible's message, long before the command's end.
        assert_eq!(
            env.node_file(node, "/tmp/kw-timeout").as_deref(),
            Some("The command action failed to execute in the expected time frame (2) and was terminated\n"),
            "{node}"
        );
    }
    assert!(
        took.as_secs() < 25,
        "timeout did not stop the task: {took:?}"
    );
    // ...and the command it stopped was not left running on the nodes.
    for node in &nodes {
        assert_eq!(
            env.node_file(node, "/tmp/kw-still").as_deref(),
            Some("0\n"),
            "{node}: the timed-out command was still running"
        );
    }
    // throttle: 1: no two hosts ran the task at the same time.
    let mut spans: Vec<(f64, f64)> = nodes
        .iter()
        .map(|n| {
            let t = |f: &str| -> f64 {
                env.node_file(n, f)
                    .and_then(|s| s.trim().parse().ok())
                    .unwrap_or_else(|| panic!("{n}:{f}"))
            };
            (t("/tmp/kw-t0"), t("/tmp/kw-t1"))
        })
        .collect();
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    for w in spans.windows(2) {
        assert!(w[1].0 >= w[0].1, "throttle 1 overlapped: {spans:?}");
    }
    // delegate_facts: the fact went to the delegate only.
    for node in &nodes {
        let told = env.node_file(node, "/tmp/kw-told").expect("told");
        let want = if node == "pi-worker-01" {
            "by pi-master\n"
        } else {
            "nothing\n"
        };
        assert_eq!(told, want, "{node}");
    }
    // The SSH options drover does not use are named, for each host.
    for node in &nodes {
        let warned = run.events().iter().any(|e| {
            e.to_string().contains(&format!(
                "{node}: drover ignores these options of its SSH arguments: -o ServerAliveInterval=5"
            ))
        });
        assert!(warned, "no warning for {node}:\n{}", run.all());
    }
}

/// drover run on files that need no lab: each is refused before any
/// connection is tried.
fn refused(dir: &Path, playbook: &str, inventory: &str) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_drover"))
        .args(["apply", playbook, "-i", inventory])
        .current_dir(dir)
        .env("HOME", dir)
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .expect("drover runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn unsupported_keywords_and_vault_are_refused_at_their_position_jump_hosts_are_used() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    // 127.0.0.1 port 9 would refuse a connection: none may be tried.
    std::fs::write(
        d.join("hosts.yml"),
        "all:\n  hosts:\n    web:\n      ansible_host: 127.0.0.1\n      ansible_port: 9\n",
    )
    .expect("write");
    std::fs::write(
        d.join("kw.yml"),
        "- hosts: all\n  strategy: free\n  vars_prompt:\n    - name: pw\n  tasks:\n    - command: id\n      connection: paramiko\n",
    )
    .expect("write");
    let run = refused(d, "kw.yml", "hosts.yml");
    assert_eq!(run.code, 1, "{}", run.all());
    for want in [
        "kw.yml:2:13: `strategy: free` is not supported by drover yet",
        "kw.yml:3:3: `vars_prompt` is not supported by drover yet",
        "kw.yml:7:19: `connection: paramiko` is not supported by drover yet",
    ] {
        assert!(run.stderr.contains(want), "{want}\n{}", run.all());
    }

    // A `!vault` value is now decrypted when used (tests/faults/vault.rs);
    // a vault file no password opens still stops the run before any
    // connection, naming the file.
    std::fs::write(
        d.join("secrets.yml"),
        "$ANSIBLE_VAULT;1.1;AES256\n61626364656667\n",
    )
    .expect("write");
    std::fs::write(
        d.join("files.yml"),
        "- hosts: all\n  vars_files: [secrets.yml]\n  tasks:\n    - debug: msg=x\n",
    )
    .expect("write");
    let run = refused(d, "files.yml", "hosts.yml");
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr
            .contains("secrets.yml:1:1: cannot decrypt this ansible-vault file"),
        "{}",
        run.all()
    );
    assert!(!run.all().contains("UNREACHABLE"), "{}", run.all());

    // A jump host is no longer refused up front: the connection goes
    // through it (here a jump host that refuses connections; the target's
    // name does not resolve, so a direct connection would fail otherwise).
    std::fs::write(
        d.join("jump.yml"),
        "all:\n  hosts:\n    web:\n      ansible_host: web.invalid\n      ansible_ssh_common_args: '-o ProxyJump=127.0.0.1:9'\n",
    )
    .expect("write");
    std::fs::write(
        d.join("ok.yml"),
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - command: id\n",
    )
    .expect("write");
    let run = refused(d, "ok.yml", "jump.yml");
    assert_ne!(run.code, 0, "{}", run.all());
    assert!(
        !run.all().contains("not supported by drover yet"),
        "{}",
        run.all()
    );
    assert!(run.all().contains("127.0.0.1:9"), "{}", run.all());
}
