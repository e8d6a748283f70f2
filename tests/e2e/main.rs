//! End-to-end tests: the `drover` binary against labs of real OpenSSH
//! servers (see `drover::lab`), each test on its own address block.

// A test binary has no outside users: `pub` in its modules only says what
// sibling modules use.
#![allow(unreachable_pub)]

mod arm64;
mod cluster;
mod harness;
mod manifests;
mod nfs;
mod readahead;

use std::io::BufRead;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use harness::{read_until, Env};

fn playbook(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/e2e/playbooks")
        .join(name)
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn every_module_converges_then_reports_no_change() {
    let env = Env::new(8);
    let pb = playbook("every_module.yml");
    let first = env.apply(&pb, &[]);
    assert_eq!(first.code, 0, "{}", first.all());
    let recap = first.recap();
    assert_eq!(recap.len(), 8);
    for (host, c) in &recap {
        assert!(
            c["changed"].as_u64() > Some(0),
            "{host} did not change: {c}"
        );
        assert_eq!(c["failed"], 0, "{host}: {c}");
    }
    for host in env.node_names() {
        let read = |p: &str| {
            env.node_file(&host, p)
                .unwrap_or_else(|| panic!("{host}:{p} missing"))
        };
        assert_eq!(read("/opt/app/app.conf"), format!("name={host}\n"));
        assert_eq!(read("/etc/motd.drover"), "Managed by drover.\n");
        assert_eq!(read("/opt/app/listen.conf"), "listen 0.0.0.0\n");
        assert_eq!(read("/opt/app/line.conf"), "port=8080\n");
        assert_eq!(
            read("/opt/app/block.conf"),
            "# BEGIN ANSIBLE MANAGED BLOCK\na=1\nb=2\n# END ANSIBLE MANAGED BLOCK\n"
        );
        assert_eq!(read("/opt/app/restarted"), "restarted\n");
        assert_eq!(read("/opt/app/shell.out").trim(), host);
        let hosts = read("/opt/app/hosts");
        assert_eq!(hosts.lines().count(), 9, "{hosts}");
        assert!(hosts.ends_with("# Ansible managed\n"), "{hosts}");
        assert!(hosts.contains(" pi-master\n"), "{hosts}");
        let keys = read("/home/admin/.ssh/authorized_keys");
        assert!(keys.contains("ops@example"), "{keys}");
        assert!(keys.lines().count() >= 2, "the lab's own key stays: {keys}");
        let link = std::fs::read_link(env.node_path(&host, "/opt/app/current.conf")).expect("link");
        assert_eq!(link, PathBuf::from("/opt/app/app.conf"));
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &str| {
            std::fs::metadata(env.node_path(&host, p))
                .expect("stat")
                .permissions()
                .mode()
                & 0o7777
        };
        assert_eq!(mode("/opt/app/hosts"), 0o640);
        assert_eq!(mode("/opt/app/line.conf"), 0o600);
        assert!(env.node_path(&host, "/opt/app/created").exists());
    }
    // Nothing was written outside the nodes: a temp file from an atomic
    // write would show up as a dot file.
    for host in env.node_names() {
        let dir = env.node_path(&host, "/opt/app");
        for e in std::fs::read_dir(dir).expect("ls").flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            assert!(!name.starts_with(".drover"), "temp file left: {name}");
        }
    }

    let second = env.apply(&pb, &[]);
    assert_eq!(second.code, 0, "{}", second.all());
    for (host, c) in second.recap() {
        assert_eq!(
            c["changed"], 0,
            "{host} changed on the second run: {}",
            second.stdout
        );
        assert_eq!(c["failed"], 0);
    }

    // --check after convergence changes nothing either.
    let before = env.snapshot();
    let check = env.apply(&pb, &["--check"]);
    assert_eq!(check.code, 0, "{}", check.all());
    assert_eq!(check.total("changed"), 0, "{}", check.stdout);
    assert_eq!(before, env.snapshot());
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn check_mode_on_a_fresh_lab_touches_nothing() {
    let env = Env::new(8);
    let before = env.snapshot();
    let run = env.apply(&playbook("every_module.yml"), &["--check"]);
    // In check mode the stat/assert pair sees no file: that task fails, as
    // in Ansible; what matters is that no node was written to.
    assert!(run.total("changed") > 0, "{}", run.all());
    let after = env.snapshot();
    let diff: Vec<_> = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(v))
        .map(|(k, _)| k.clone())
        .chain(before.keys().filter(|k| !after.contains_key(*k)).cloned())
        .collect();
    assert!(diff.is_empty(), "check mode changed files: {diff:?}");
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn diff_shows_the_change() {
    let env = Env::new(2);
    let pb = env.write(
        "diff.yml",
        "- hosts: all\n  gather_facts: false\n  become: true\n  tasks:\n    - copy:\n        content: \"alpha\\nbeta\\n\"\n        dest: /etc/diff-me\n    - copy: { content: \"alpha\\nbeta\\n\", dest: /etc/diff-too, force: false }\n    - lineinfile: { path: /etc/diff-too, regexp: '^beta', line: gamma }\n",
    );
    let run = env.apply(&pb, &["--diff", "--output", "human"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("+alpha"), "{}", run.stdout);
    assert!(run.stdout.contains("-beta\n+gamma"), "{}", run.stdout);
    let json = env.apply(&pb, &["--diff"]);
    assert_eq!(json.total("changed"), 0, "{}", json.stdout);
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn a_node_stopped_mid_play_is_unreachable_and_the_others_finish() {
    let mut env = Env::new(8);
    let pb = env.write(
        "slow.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: first\n      command: 'true'\n    - name: slow\n      command: sleep 2\n    - name: last\n      copy: { content: done, dest: /tmp/finished }\n",
    );
    let mut child = env.spawn(&pb, &[]);
    let (_, mut reader) = read_until(&mut child, "\"task\":\"slow\"");
    env.lab.stop_node("pi-worker-03").expect("stop node");
    let mut rest = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).expect("read") == 0 {
            break;
        }
        rest.push_str(&line);
    }
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(4), "{rest}");
    let recap: serde_json::Value = rest
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|v| v.get("recap").cloned())
        .expect("recap");
    assert_eq!(recap["pi-worker-03"]["unreachable"], 1, "{recap}");
    for host in env.node_names().into_iter().filter(|h| h != "pi-worker-03") {
        assert_eq!(recap[&host]["failed"], 0);
        assert_eq!(recap[&host]["unreachable"], 0);
        assert_eq!(
            env.node_file(&host, "/tmp/finished").as_deref(),
            Some("done"),
            "{host}"
        );
    }
    assert!(env.node_file("pi-worker-03", "/tmp/finished").is_none());
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn a_changed_host_key_is_refused_before_authentication() {
    let mut env = Env::new(2);
    let pb = env.write(
        "ok.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - command: 'true'\n",
    );
    assert_eq!(env.apply(&pb, &[]).code, 0);
    env.lab.wipe_node("pi-worker-01").expect("wipe");
    let sshd_log = |env: &Env| {
        env.lab
            .journal("pi-worker-01", Some("ssh.service"))
            .expect("journal")
    };
    let before = sshd_log(&env);
    assert!(before.contains("Server listening on"), "{before}");
    let run = env.apply(&pb, &[]);
    assert_eq!(run.code, 4, "{}", run.all());
    assert_eq!(run.recap()["pi-worker-01"]["unreachable"], 1);
    assert_eq!(run.recap()["pi-master"]["unreachable"], 0);
    let out = run.all();
    assert!(out.contains("known_hosts"), "{out}");
    assert!(
        out.contains("line"),
        "the message names the known_hosts line: {out}"
    );
    let after = sshd_log(&env);
    let new_log = after.strip_prefix(before.as_str()).unwrap_or(&after);
    assert!(
        !new_log.contains("Accepted"),
        "authenticated despite the changed key: {new_log}"
    );
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn a_failing_task_stops_only_that_host() {
    let env = Env::new(4);
    let pb = env.write(
        "fail.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - fail: { msg: broken }\n      when: inventory_hostname == 'pi-worker-02'\n    - copy: { content: ran, dest: /tmp/after }\n",
    );
    let run = env.apply(&pb, &[]);
    assert_eq!(run.code, 2, "{}", run.all());
    let recap = run.recap();
    assert_eq!(recap["pi-worker-02"]["failed"], 1);
    assert!(env.node_file("pi-worker-02", "/tmp/after").is_none());
    for h in ["pi-master", "pi-worker-01", "pi-worker-03"] {
        assert_eq!(recap[h]["failed"], 0);
        assert_eq!(env.node_file(h, "/tmp/after").as_deref(), Some("ran"));
    }
}

/// Bad input is reported with file:line:col and exit 1, and no connection
/// is made: the inventory's only host is a listener that must see nothing.
#[test]
fn bad_input_fails_before_any_connection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listener = TcpListener::bind("127.0.9.250:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    let inv = dir.path().join("inv.yml");
    std::fs::write(
        &inv,
        format!("all:\n  hosts:\n    target:\n      ansible_host: 127.0.9.250\n      ansible_port: {port}\n"),
    )
    .expect("inv");
    let cases = [
        (
            "yaml.yml",
            "- hosts: all\n  tasks:\n    - debug: [msg\n",
            "yaml.yml:",
        ),
        (
            "module.yml",
            "- hosts: all\n  tasks:\n    - name: x\n      no_such_module: {a: 1}\n",
            "module.yml:4:7",
        ),
        (
            "arg.yml",
            "- hosts: all\n  tasks:\n    - copy:\n        dest: /tmp/x\n        contnet: hi\n",
            "arg.yml:5:9",
        ),
    ];
    // An undefined variable is not bad input: as in Ansible, the task that
    // uses it fails when it runs (a warning names it before the run; see
    // faults::executor_semantics).
    for (name, text, want) in cases {
        let pb = dir.path().join(name);
        std::fs::write(&pb, text).expect("playbook");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_drover"))
            .args([
                "apply",
                pb.to_str().expect("utf8"),
                "-i",
                inv.to_str().expect("utf8"),
            ])
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {err}");
        assert!(err.contains(want), "{name}: expected {want} in: {err}");
        if name == "module.yml" {
            assert!(err.contains("no_such_module"), "{err}");
        }
        if name == "arg.yml" {
            assert!(err.contains("contnet"), "{err}");
        }
    }
    std::thread::sleep(Duration::from_millis(50));
    assert!(
        listener.accept().is_err(),
        "a connection was made despite bad input"
    );
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn secrets_never_reach_output() {
    let become_pw = "S3cret-become-pw";
    let env = Env::with(2, Some(become_pw));
    env.write(
        "group_vars/all.yml",
        &format!("ansible_become_password: {become_pw}\napi_token: tok-9f8e7d6c5b\n"),
    );
    let pb = env.write(
        "secret.yml",
        "- hosts: all\n  gather_facts: false\n  become: true\n  tasks:\n    - name: write the token\n      copy: { content: \"{{ api_token }}\\n\", dest: /root/token, mode: '0600' }\n      no_log: true\n    - name: echo the token\n      command: echo {{ api_token }}\n      no_log: true\n    - name: fail with it\n      fail: { msg: \"{{ api_token }}\" }\n      no_log: true\n      ignore_errors: true\n    - name: whoami\n      command: id -u\n      register: who\n      changed_when: false\n    - assert: { that: \"who.stdout == '0'\" }\n",
    );
    for format in ["human", "json"] {
        let run = env.apply(&pb, &["-vvv", "--output", format]);
        assert_eq!(run.code, 0, "{}", run.all());
        let all = run.all();
        assert!(
            !all.contains(become_pw),
            "become password in output:\n{all}"
        );
        assert!(
            !all.contains("tok-9f8e7d6c5b"),
            "no_log value in output:\n{all}"
        );
    }
    assert_eq!(
        env.node_file("pi-master", "/root/token").as_deref(),
        Some("tok-9f8e7d6c5b\n")
    );
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn play_and_task_keywords_behave_like_ansible() {
    let env = Env::new(3);
    env.write(
        "inc.yml",
        "- copy: { content: included, dest: /tmp/included }\n",
    );
    let pb = env.write(
        "keywords.yml",
        r#"- hosts: all
  gather_facts: false
  serial: 2
  tasks:
    - name: once per batch
      command: hostname
      run_once: true
      register: once
      changed_when: false
    - copy: { content: "{{ once.stdout }}", dest: /tmp/once }
    - name: delegated
      copy: { content: "from {{ inventory_hostname }}", dest: "/tmp/from-{{ inventory_hostname }}" }
      delegate_to: pi-master
    - include_tasks: inc.yml
    - name: who
      command: hostname
      register: who
      changed_when: false
    - name: another host's registered result through hostvars
      copy: { content: "{{ hostvars['pi-master'].who.stdout }}", dest: /tmp/master-name }
    - name: never runs
      copy: { content: tagged, dest: /tmp/tagged }
      tags: [never]
    - name: loop with register
      command: echo {{ item }}
      loop: [a, b]
      register: echoes
      changed_when: false
    - assert:
        that: "echoes.results | map(attribute='stdout') | list == ['a', 'b']"
    - name: the play's hosts, shared by every host's scope
      assert:
        that:
          - "ansible_play_hosts == ['pi-master', 'pi-worker-01', 'pi-worker-02']"
          - "inventory_hostname in play_hosts"
    - name: handler trigger
      copy: { content: x, dest: /tmp/trigger }
      notify: note
  handlers:
    - name: note
      copy: { content: "handled", dest: /tmp/handled }
"#,
    );
    let run = env.apply(&pb, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    let file = |h: &str, p: &str| env.node_file(h, p);
    assert_eq!(file("pi-master", "/tmp/once").as_deref(), Some("pi-master"));
    assert_eq!(
        file("pi-worker-01", "/tmp/once").as_deref(),
        Some("pi-master")
    );
    assert_eq!(
        file("pi-worker-02", "/tmp/once").as_deref(),
        Some("pi-worker-02")
    );
    for h in ["pi-master", "pi-worker-01", "pi-worker-02"] {
        assert_eq!(
            file("pi-master", &format!("/tmp/from-{h}")),
            Some(format!("from {h}"))
        );
        assert_eq!(file(h, "/tmp/included").as_deref(), Some("included"));
        assert_eq!(file(h, "/tmp/handled").as_deref(), Some("handled"));
        assert!(file(h, "/tmp/tagged").is_none());
        assert_eq!(file(h, "/tmp/master-name").as_deref(), Some("pi-master"));
    }
    assert!(file("pi-worker-01", "/tmp/from-pi-worker-01").is_none());
    let again = env.apply(&pb, &[]);
    assert_eq!(again.total("changed"), 0, "{}", again.stdout);
}
