//! Injection through arguments (issue "Hardening", items 0, 1 and 3): no
//! argument value may become shell text, an option, an extra config line,
//! or a rename over something that is not a regular file, on a real node
//! with become.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Value};

use crate::harness::Env;

/// Arguments that are commands by design (Ansible runs them too), and a
/// module that would reboot the node: left out of the sweep.
const BY_DESIGN: &[(&str, &str)] = &[
    ("command", "_raw_params"),
    ("command", "cmd"),
    ("shell", "_raw_params"),
    ("shell", "cmd"),
    ("k8s_apply", "kubectl"),
    ("k8s_node_labels", "kubectl"),
];

/// Arguments whose value is file content: a line break there is the point.
const CONTENT: &[(&str, &str)] = &[
    ("copy", "content"),
    ("lineinfile", "line"),
    ("lineinfile", "value"),
    ("blockinfile", "block"),
    ("blockinfile", "content"),
    ("replace", "replace"),
    ("uri", "body"),
    ("apt_key", "data"),
    // Key text: every line is indented as a continuation of Signed-By.
    ("deb822_repository", "signed_by"),
];

/// Names for one argument: giving one, the others are left out.
const ALIASES: &[&[&str]] = &[
    &["path", "dest", "destfile", "name"],
    &["name", "key"],
    &["value", "val"],
    &["name", "pkg", "package"],
    &["src", "path"],
    &["name", "unit", "service"],
    &["block", "content"],
    &["line", "value"],
    &["regexp", "regex"],
];

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE3bGKVRRzV5+3V3lk5iAkeW4X6fP4H3fV8gq2p4wD8n sweep";

/// Valid arguments for module `m`, task `n` (own files under /tmp/sweep).
fn base(m: &str, n: usize) -> Option<Value> {
    let f = format!("/tmp/sweep/f{n}");
    Some(match m {
        "authorized_key" => json!({"user": "root", "key": KEY, "path": f}),
        "copy" => json!({"content": "x", "dest": f}),
        "file" => json!({"path": f, "state": "touch"}),
        "slurp" => json!({"src": "/etc/hostname"}),
        "stat" => json!({"path": "/tmp/sweep"}),
        "template" => json!({"src": "t.j2", "dest": f}),
        "command" | "shell" => json!({"_raw_params": "true"}),
        "lineinfile" => json!({"path": f, "line": "x", "create": true}),
        "replace" => json!({"path": "/tmp/sweep/base", "regexp": "a", "replace": "a"}),
        "blockinfile" => json!({"path": f, "block": "x", "create": true}),
        "wait_for" => json!({"path": "/tmp", "timeout": 1}),
        "sysctl" => {
            json!({"name": "kernel.sweep", "value": "1", "sysctl_file": f, "reload": false})
        }
        "group" => json!({"name": "sweepgrp"}),
        "hostname" => json!({"name": "sweephost"}),
        "user" => json!({"name": "sweepusr"}),
        "mount" => json!({"path": "/mnt/sweep", "src": "tmpfs", "fstype": "tmpfs",
                          "state": "present", "fstab": f}),
        "apt" => json!({"name": "drover-sweep-pkg"}),
        "get_url" => json!({"url": "http://127.0.0.1:9/x", "dest": f, "timeout": 1}),
        "systemd" | "service" => json!({"name": "sweep.service", "state": "started"}),
        "k8s_apply" => json!({"kubectl": "/nonexistent/kubectl", "definition":
                              {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}}),
        "k8s_node_labels" => {
            json!({"kubectl": "/nonexistent/kubectl", "name": "n1", "labels": {"a": "b"}})
        }
        "uri" => json!({"url": "http://127.0.0.1:9/", "timeout": 1, "dest": f}),
        "apt_repository" => {
            json!({"repo": format!("deb http://127.0.0.1:9/sweep{n} s main"), "update_cache": false})
        }
        "deb822_repository" => json!({"name": format!("sweep{n}"), "uris": "http://127.0.0.1:9/",
                                      "suites": "s", "components": "main"}),
        "apt_key" => json!({"id": "8D81803C0EBFCD88", "state": "absent", "keyring": f}),
        _ => return None,
    })
}

/// Breaks out of no quoting, of single quotes written without escaping, and
/// of double quotes: any of these run `touch` where quoting is missing.
fn shell_payload(n: usize) -> String {
    let t = format!("touch /tmp/PWNED_{n}");
    format!("x';{t};'$({t})`{t}`\"$({t})\";{t}")
}

/// A second line, for config files, and a command after a line break.
fn line_payload(n: usize) -> String {
    format!("a\nPWNED_LINE_{n} x\ntouch /tmp/PWNED_{n}")
}

#[derive(Clone, Copy, PartialEq)]
enum Payload {
    Shell,
    Line,
    /// A word a tool would take as an option (it then complains of an
    /// unknown one, or prints its help where the payload was `--help`).
    Option,
}

/// Every file under `dir`, recursively.
fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => files(&p, out),
            Ok(t) if t.is_file() => out.push(p),
            _ => {}
        }
    }
}

/// For every module and each of its arguments, a task with a payload in
/// that argument, run with become on a lab node: no payload may run a
/// command, add a line to a file it writes, or reach a tool as an option.
#[test]
#[ignore = "needs root: run scripts/test"]
fn no_module_argument_becomes_shell_text_or_a_config_line() {
    let env = Env::new(1);
    env.write("t.j2", "x\n");
    let mut tasks = vec![
        json!({"file": {"path": "/tmp/sweep", "state": "directory"}}),
        json!({"copy": {"content": "a\n", "dest": "/tmp/sweep/base"}}),
    ];
    let mut what: BTreeMap<usize, (String, String)> = BTreeMap::new();
    for info in drover::modules::MODULES {
        for &arg in info.args {
            if BY_DESIGN.contains(&(info.name, arg)) {
                continue;
            }
            for kind in [Payload::Shell, Payload::Line, Payload::Option] {
                let n = what.len();
                let Some(mut args) = base(info.name, n) else {
                    continue;
                };
                if kind == Payload::Line && CONTENT.contains(&(info.name, arg)) {
                    continue;
                }
                let obj = args.as_object_mut().expect("object");
                for group in ALIASES.iter().filter(|g| g.contains(&arg)) {
                    for other in group.iter().filter(|o| **o != arg) {
                        obj.remove(*other);
                    }
                }
                let payload = match kind {
                    Payload::Shell => shell_payload(n),
                    Payload::Line => line_payload(n),
                    Payload::Option => format!("--drover-opt-{n}"),
                };
                // Through a variable: a literal value of the wrong type is
                // refused when the playbook loads, and the sweep is about
                // what reaches the host.
                obj.insert(arg.to_string(), Value::from("{{ payload }}"));
                what.insert(n, (info.name.to_string(), arg.to_string()));
                tasks.push(json!({"name": format!("sweep {n}"), info.name: args,
                                  "vars": {"payload": payload},
                                  "ignore_errors": true}));
            }
        }
    }
    // A templated environment name, found only when the task runs.
    let n = what.len();
    what.insert(n, ("environment".into(), "name".into()));
    tasks.push(
        json!({"name": format!("sweep {n}"), "command": "true", "ignore_errors": true,
                      "vars": {"evil": format!("A=1; touch /tmp/PWNED_{n}; B")},
                      "environment": {"{{ evil }}": "v"}}),
    );
    let play = json!([{"hosts": "all", "gather_facts": false, "become": true, "tasks": tasks}]);
    let pb = env.write(
        "sweep.yml",
        &serde_json::to_string_pretty(&play).expect("json"),
    );
    let run = env.apply(&pb, &[]);
    assert_ne!(run.code, 1, "{}", run.all());
    let recap = run.recap();
    let host = env.node_names().remove(0);
    assert_eq!(recap[&host]["unreachable"], 0, "{}", run.all());

    let mut ran = Vec::new();
    for e in std::fs::read_dir(env.node_path(&host, "/tmp"))
        .expect("node /tmp")
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(id) = name
            .strip_prefix("PWNED_")
            .and_then(|i| i.parse::<usize>().ok())
        {
            ran.push(what[&id].clone());
        }
    }
    let mut lines = Vec::new();
    let mut found = Vec::new();
    for dir in ["/tmp", "/etc", "/root", "/home"] {
        files(&env.node_path(&host, dir), &mut found);
    }
    for f in found {
        let text = std::fs::read(&f).unwrap_or_default();
        for l in String::from_utf8_lossy(&text).lines() {
            if let Some(id) = l
                .strip_prefix("PWNED_LINE_")
                .and_then(|r| r.split(' ').next())
                .and_then(|i| i.parse::<usize>().ok())
            {
                lines.push((what[&id].clone(), f.display().to_string()));
            }
        }
    }
    // What tools say of an option they do not know, with the task's number.
    let mut options = std::collections::BTreeSet::new();
    for e in run.events() {
        let text = e.to_string();
        for (i, _) in text.match_indices("--drover-opt-") {
            let id: String = text[i + 13..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            let said = [
                "unrecognized option",
                "invalid option",
                "unknown option",
                "not understood",
            ];
            if said.iter().any(|w| text.contains(w)) {
                options.insert(what[&id.parse::<usize>().expect("id")].clone());
            }
        }
    }
    // The environment task failed before running.
    let env_failed = run
        .events()
        .windows(2)
        .any(|w| w[0]["task"] == format!("sweep {n}") && w[1]["failed"] == true);
    assert!(
        ran.is_empty() && lines.is_empty() && options.is_empty() && env_failed,
        "payloads ran as commands through: {ran:?}\npayloads added lines through: {lines:?}\npayloads read as options through: {options:?}\nbad environment name refused: {env_failed}"
    );
    assert!(what.len() > 200, "only {} cases", what.len());
}

/// A rename onto a device or FIFO replaced it with a regular file (as
/// root, `/dev/null` itself). Such a dest fails the task and stays as it is.
#[test]
#[ignore = "needs root: run scripts/test"]
fn a_device_or_fifo_dest_is_refused_and_left_as_it_is() {
    let env = Env::new(1);
    let host = env.node_names().remove(0);
    // Made from outside, in the node's overlay: its own /tmp.
    let dev = env.node_path(&host, "/tmp/nulldev");
    let fifo = env.node_path(&host, "/tmp/fifo");
    std::fs::create_dir_all(env.node_path(&host, "/tmp")).expect("node /tmp");
    for (cmd, args) in [
        ("mknod", vec![dev.to_str().expect("utf8"), "c", "1", "3"]),
        ("mkfifo", vec![fifo.to_str().expect("utf8")]),
    ] {
        let ok = std::process::Command::new(cmd)
            .args(&args)
            .status()
            .expect(cmd);
        assert!(ok.success(), "{cmd}");
    }
    env.write("t.j2", "x\n");
    let mut tasks = Vec::new();
    for dest in ["/tmp/nulldev", "/tmp/fifo"] {
        tasks.push(json!({"copy": {"content": "x", "dest": dest}, "ignore_errors": true}));
        tasks.push(json!({"template": {"src": "t.j2", "dest": dest}, "ignore_errors": true}));
        tasks.push(json!({"lineinfile": {"path": dest, "line": "x"}, "ignore_errors": true}));
        tasks.push(
            json!({"get_url": {"url": "http://127.0.0.1:9/x", "dest": dest, "force": true},
                          "ignore_errors": true}),
        );
    }
    let play = json!([{"hosts": "all", "gather_facts": false, "become": true, "tasks": tasks}]);
    let pb = env.write(
        "dest.yml",
        &serde_json::to_string_pretty(&play).expect("json"),
    );
    let run = env.apply(&pb, &[]);
    let results: Vec<Value> = run
        .events()
        .into_iter()
        .filter(|e| e["event"] == "host_result")
        .collect();
    assert_eq!(results.len(), 8, "{}", run.all());
    for r in &results {
        assert_eq!(r["failed"], true, "{r}");
        let msg = r["msg"].as_str().unwrap_or_default();
        assert!(msg.contains("not a regular file"), "{msg}");
    }
    use std::os::unix::fs::FileTypeExt;
    let t = |p: &Path| {
        std::fs::symlink_metadata(p)
            .expect("still there")
            .file_type()
    };
    assert!(t(&dev).is_char_device(), "the device was replaced");
    assert!(t(&fifo).is_fifo(), "the FIFO was replaced");

    // Only now, the node's /dev/null (the host's, bind-mounted): refused too.
    let pb = env.write(
        "null.yml",
        "- hosts: all\n  gather_facts: false\n  become: true\n  tasks:\n    - copy: { content: x, dest: /dev/null }\n",
    );
    let run = env.apply(&pb, &[]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.all().contains("not a regular file"), "{}", run.all());
    assert!(t(Path::new("/dev/null")).is_char_device());
}

/// `copy: dest: --help` ran `mv -f TMP --help`: mv printed its help and the
/// task reported changed. A relative path starting with `-` is a file in
/// the login directory, as with Ansible (relative to the module's working
/// directory); `file` with `recurse` (find has no `--`) likewise.
#[test]
#[ignore = "needs root: run scripts/test"]
fn a_dest_starting_with_a_dash_is_a_file_not_an_option() {
    let env = Env::new(1);
    let host = env.node_names().remove(0);
    let pb = env.write(
        "dash.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - copy: { content: dash, dest: --help }\n    - file: { path: -r, state: directory }\n    - copy: { content: x, dest: -r/--f }\n    - file: { path: -r, state: directory, recurse: true, mode: '0700' }\n",
    );
    let run = env.apply(&pb, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(
        env.node_file(&host, "/home/admin/--help").as_deref(),
        Some("dash")
    );
    assert_eq!(
        env.node_file(&host, "/home/admin/-r/--f").as_deref(),
        Some("x")
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(env.node_path(&host, "/home/admin/-r/--f"))
        .expect("file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
}
