//! The OpenSSH client configuration on real sshd nodes: an inventory that
//! names only a `Host` alias reaches the node through the alias's
//! HostName, Port, User, IdentityFile and UserKnownHostsFile; `-F` in the
//! SSH arguments replaces `~/.ssh/config`; the inventory's variables win
//! over the file; `ping -vv` says where each setting came from. HOME is
//! the test's scratch directory: the machine's own `~/.ssh` is never read.

use std::path::{Path, PathBuf};

use crate::harness::{Env, Run};

/// The lab's sshd port: not 22, so that only a `Port` line reaches it.
const PORT: u16 = 2222;

fn check_user_playbook(env: &Env) -> PathBuf {
    env.write(
        "whoami.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - command: id -un\n      register: me\n      changed_when: false\n    - assert:\n        that: me.stdout == 'admin'\n",
    )
}

fn apply(env: &Env, pb: &Path, inv: &Path, extra: &[&str]) -> Run {
    let mut args = vec![
        "apply",
        pb.to_str().expect("utf8"),
        "-i",
        inv.to_str().expect("utf8"),
        "--output",
        "json",
    ];
    args.extend(extra);
    env.run(&args)
}

/// The lines of a config that reach node 1 of `env`.
fn node_lines(env: &Env) -> String {
    let node = &env.lab.nodes()[0];
    format!(
        "  HostName {}\n  Port {}\n  User admin\n  IdentityFile {}\n  UserKnownHostsFile \"{}\"\n",
        node.address,
        node.port,
        env.lab.key_path().display(),
        env.lab.known_hosts_path().display(),
    )
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn a_host_alias_in_ssh_config_is_honoured_on_a_real_sshd() {
    let env = Env::with_port(1, PORT);
    let pb = check_user_playbook(&env);
    let inv = env.write("hosts.yml", "all:\n  hosts:\n    pi:\n");
    // Without a configuration the alias names no machine.
    let run = apply(&env, &pb, &inv, &["-T", "3"]);
    assert_eq!(run.total("unreachable"), 1, "{}", run.all());

    env.write(
        ".ssh/config",
        &format!(
            "# the cluster\nHost other\n  Port 1\nHost pi\n{}Host *\n  User nobody\n  ForwardAgent no\n",
            node_lines(&env)
        ),
    );
    let run = apply(&env, &pb, &inv, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(run.total("ok"), 2, "{}", run.all());

    // `ping -vv` says where each setting came from.
    let run = env.run(&["ping", "-i", inv.to_str().expect("utf8"), "-vv"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let config = env.path(".ssh/config");
    let at = |line: usize| format!("{}:{line}", config.display());
    for want in [
        format!("address 127.0.80.1 (HostName at {})", at(5)),
        format!("port {PORT} (Port at {})", at(6)),
        format!("user admin (User at {})", at(7)),
        format!("ForwardAgent ({})", at(12)),
    ] {
        let want = want.replace("127.0.80.1", &env.lab.nodes()[0].address.to_string());
        assert!(
            run.stderr.contains(&want),
            "no {want:?} in:\n{}",
            run.stderr
        );
    }

    // `-F FILE` in the SSH arguments is the only file read.
    env.write(".ssh/config", "Host *\n  Port 1\n");
    env.write("alt_config", &format!("Host pi\n{}", node_lines(&env)));
    let alt = env.path("alt_config");
    let inv = env.write(
        "hosts-f.yml",
        &format!(
            "all:\n  hosts:\n    pi:\n      ansible_ssh_common_args: -F {}\n",
            alt.display()
        ),
    );
    let run = apply(&env, &pb, &inv, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn inventory_variables_win_over_ssh_config() {
    let env = Env::with_port(1, PORT);
    let pb = check_user_playbook(&env);
    let node = &env.lab.nodes()[0];
    // The file is looked up by ansible_host; its User and Port are wrong
    // and must lose, its IdentityFile is the only key given.
    env.write(
        ".ssh/config",
        &format!(
            "Host {}\n  User nobody\n  Port 1\n  IdentityFile {}\n  UserKnownHostsFile {}\n",
            node.address,
            env.lab.key_path().display(),
            env.lab.known_hosts_path().display(),
        ),
    );
    let inv = env.write(
        "hosts.yml",
        &format!(
            "all:\n  hosts:\n    node:\n      ansible_host: {}\n      ansible_user: admin\n      ansible_port: {}\n",
            node.address, node.port
        ),
    );
    let run = apply(&env, &pb, &inv, &["-vv"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(run.total("ok"), 2, "{}", run.all());
    for want in [
        "user admin (inventory ansible_user)",
        &format!("port {PORT} (inventory ansible_port)"),
        "(IdentityFile at ",
    ] {
        assert!(run.stderr.contains(want), "no {want:?} in:\n{}", run.stderr);
    }
    // Without the inventory's port, the file's wins over the default.
    let inv = env.write(
        "hosts-noport.yml",
        &format!(
            "all:\n  hosts:\n    node:\n      ansible_host: {}\n      ansible_user: admin\n",
            node.address
        ),
    );
    let run = apply(&env, &pb, &inv, &["-T", "3"]);
    assert_eq!(run.total("unreachable"), 1, "{}", run.all());
    let refused = format!("{}:1", node.address);
    assert!(run.all().contains(&refused), "{}", run.all());
}

#[test]
fn a_bad_line_in_ssh_config_is_an_error_before_any_connection() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join(".ssh")).expect("mkdir");
    let config = dir.path().join(".ssh/config");
    std::fs::write(&config, "Host pi\n  HostName 127.0.80.250\n  Port http\n").expect("write");
    std::fs::write(dir.path().join("hosts.yml"), "all:\n  hosts:\n    pi:\n").expect("write");
    std::fs::write(
        dir.path().join("pb.yml"),
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - command: 'true'\n",
    )
    .expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_drover"))
        .args(["apply", "pb.yml", "-i", "hosts.yml"])
        .current_dir(dir.path())
        .env("HOME", dir.path())
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .expect("drover runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let want = format!("{}:3:1", config.display());
    assert!(stderr.contains(&want), "no {want} in {stderr}");
    assert!(stderr.contains("Port: not a port number: http"), "{stderr}");
}
