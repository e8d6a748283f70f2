//! `user`'s `generate_ssh_key` on a real node, as Ansible's user target
//! uses it: the passphrase never reaches output (it goes to ssh-keygen on
//! stdin), an existing key is kept unless `force`, check mode writes
//! nothing, and the pair belongs to the account.

use std::os::unix::fs::MetadataExt;
use std::process::Command;

use crate::harness::Env;
use crate::local::statuses;

const PP: &str = "Key-pa55phrase-x7";

fn play(user_args: &str) -> String {
    format!(
        "- hosts: all
  gather_facts: false
  become: true
  tasks:
    - name: key
      user: {{name: keyuser, generate_ssh_key: true, ssh_key_file: .ssh/k, ssh_key_comment: c, {user_args}}}
      register: r
    - name: record
      copy:
        dest: /tmp/key-result
        content: \"{{{{ r.ssh_fingerprint | default('') }}}}|{{{{ r.ssh_key_file | default('') }}}}|{{{{ r.ssh_public_key | default('') }}}}\"
"
    )
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn user_ssh_key_with_passphrase_is_secret_owned_and_kept() {
    let env = Env::new(1);
    let node = env.node_names()[0].clone();
    let pass = format!("ssh_key_passphrase: {PP}");

    // Check mode on a new account: changed, nothing written.
    let pb = env.write("check.yml", &play(&pass));
    let run = env.apply(&pb, &["--check"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(statuses(&run, "key"), ["changed"], "{}", run.all());
    assert!(!env.node_path(&node, "/home/keyuser").exists());

    // The first run makes the pair; the passphrase shows nowhere, even at -vvvv.
    let pb = env.write("pb.yml", &play(&pass));
    let run = env.apply(&pb, &["-vvvv"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(statuses(&run, "key"), ["changed"], "{}", run.all());
    assert!(
        !run.all().contains(PP),
        "the passphrase leaked:\n{}",
        run.all()
    );
    let key = env.node_path(&node, "/home/keyuser/.ssh/k");
    let unlock = |pp: &str| {
        Command::new("ssh-keygen")
            .args(["-y", "-P", pp, "-f"])
            .arg(&key)
            .output()
            .expect("ssh-keygen runs")
            .status
            .success()
    };
    assert!(unlock(PP), "the key does not open with its passphrase");
    assert!(
        !unlock("wrong-passphrase"),
        "the key opens with any passphrase"
    );
    let uid = env
        .node_file(&node, "/etc/passwd")
        .expect("passwd")
        .lines()
        .find_map(|l| l.strip_prefix("keyuser:x:"))
        .and_then(|l| l.split(':').next())
        .and_then(|u| u.parse::<u32>().ok())
        .expect("keyuser's uid");
    for p in [".ssh", ".ssh/k", ".ssh/k.pub"] {
        let meta = std::fs::metadata(env.node_path(&node, &format!("/home/keyuser/{p}")))
            .expect("key file");
        assert_eq!(meta.uid(), uid, "{p} is not the account's");
    }
    let ssh_mode = std::fs::metadata(env.node_path(&node, "/home/keyuser/.ssh"))
        .expect(".ssh")
        .mode();
    assert_eq!(ssh_mode & 0o777, 0o700);
    let first = env.node_file(&node, "/tmp/key-result").expect("result");
    let public = std::fs::read_to_string(env.node_path(&node, "/home/keyuser/.ssh/k.pub"))
        .expect("public key");
    let parts: Vec<&str> = first.split('|').collect();
    assert!(
        parts[0].contains("SHA256:") && parts[0].ends_with("c (RSA)"),
        "{first}"
    );
    assert_eq!(parts[1], "/home/keyuser/.ssh/k");
    assert_eq!(parts[2], public.trim());

    // Again: the key is kept (ok), the same fingerprint reported.
    let run = env.apply(&pb, &[]);
    assert_eq!(statuses(&run, "key"), ["ok"], "{}", run.all());
    assert_eq!(
        env.node_file(&node, "/tmp/key-result").as_deref(),
        Some(first.as_str())
    );

    // force: a new pair, as Ansible does every time.
    let pb = env.write("force.yml", &play("force: true"));
    let run = env.apply(&pb, &[]);
    assert_eq!(statuses(&run, "key"), ["changed"], "{}", run.all());
    let forced = env.node_file(&node, "/tmp/key-result").expect("result");
    assert_ne!(
        forced.split('|').next(),
        Some(parts[0]),
        "the key was not replaced"
    );
    assert!(unlock(""), "the forced key has no passphrase");
}
