//! known_hosts paths that are not regular files: `/dev/null` (or any null
//! device node) remembers nothing and stays a device, a symlink is written
//! through, a FIFO or another device is refused without blocking; the hint
//! for a changed key names the file it was pinned in, and following it
//! removes the key from that file.

use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::process::Command;

use crate::harness::Env;

fn ok_playbook(env: &Env) -> std::path::PathBuf {
    env.write(
        "ok.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - command: 'true'\n",
    )
}

/// Apply `pb` learning host keys into `known_hosts`.
fn apply_learning(env: &Env, pb: &Path, known_hosts: &Path) -> crate::harness::Run {
    env.apply(
        pb,
        &[
            "--known-hosts",
            known_hosts.to_str().expect("utf8"),
            "--host-key-checking",
            "accept-new",
        ],
    )
}

fn mknod(path: &Path, kind: &str, major_minor: &[&str]) {
    let ok = Command::new("mknod")
        .arg(path)
        .arg(kind)
        .args(major_minor)
        .status()
        .expect("mknod")
        .success();
    assert!(ok, "mknod {}", path.display());
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn known_hosts_as_a_null_device_learns_nothing_and_stays_a_device() {
    let env = Env::new(2);
    let null = env.path("null");
    mknod(&null, "c", &["1", "3"]);
    let pb = ok_playbook(&env);
    for _ in 0..2 {
        let run = apply_learning(&env, &pb, &null);
        assert_eq!(run.code, 0, "{}", run.all());
    }
    let meta = std::fs::metadata(&null).expect("stat");
    assert!(meta.file_type().is_char_device(), "replaced by a file");
    assert!(!env.path(".null.lock").exists());
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn known_hosts_as_another_device_or_a_fifo_is_refused() {
    let env = Env::new(1);
    let zero = env.path("zero");
    mknod(&zero, "c", &["1", "5"]);
    let fifo = env.path("fifo");
    mknod(&fifo, "p", &[]);
    let pb = ok_playbook(&env);
    for (path, what) in [(&zero, "a character device"), (&fifo, "a FIFO")] {
        let run = apply_learning(&env, &pb, path);
        assert_eq!(run.code, 1, "refused before connecting: {}", run.all());
        assert!(run.all().contains(what), "{}", run.all());
        assert!(run.all().contains("not a regular file"), "{}", run.all());
    }
    assert!(std::fs::metadata(&zero)
        .expect("stat")
        .file_type()
        .is_char_device());
    assert!(std::fs::metadata(&fifo)
        .expect("stat")
        .file_type()
        .is_fifo());
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn known_hosts_as_a_symlink_is_written_through_its_target() {
    let env = Env::new(1);
    let real = env.write("real_known_hosts", "");
    let link = env.path("known_hosts_link");
    std::os::unix::fs::symlink(&real, &link).expect("symlink");
    let pb = ok_playbook(&env);
    let run = apply_learning(&env, &pb, &link);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(std::fs::symlink_metadata(&link)
        .expect("lstat")
        .file_type()
        .is_symlink());
    let learned = std::fs::read_to_string(&real).expect("read");
    assert!(learned.contains("ssh-ed25519"), "{learned}");
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn forget_follows_the_hint_into_the_file_that_pinned_the_key() {
    let mut env = Env::new(1);
    let pb = ok_playbook(&env);
    assert_eq!(env.apply(&pb, &[]).code, 0);
    env.lab.wipe_node("pi-master").expect("wipe");
    let run = env.apply(&pb, &[]);
    assert_eq!(run.code, 4, "{}", run.all());
    let out = run.all();
    let kh = env.lab.known_hosts_path();
    let hint_at = out
        .find("drover known-hosts forget ")
        .unwrap_or_else(|| panic!("no hint: {out}"));
    let hint: String = out[hint_at..].chars().take_while(|&c| c != '`').collect();
    assert!(
        hint.contains(&format!("--known-hosts {}", kh.display())),
        "the hint names the lab's known_hosts: {hint}"
    );
    let words: Vec<&str> = hint.split_whitespace().skip(1).collect();
    let forget = env.run(&words);
    assert_eq!(forget.code, 0, "{}", forget.all());
    assert!(forget.stdout.contains("removed "), "{}", forget.all());
    assert!(!forget.stdout.contains("removed 0"), "{}", forget.all());
    let again = env.apply(&pb, &["--host-key-checking", "accept-new"]);
    assert_eq!(again.code, 0, "{}", again.all());
}
