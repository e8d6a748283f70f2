//! `unarchive` on a lab node: a local tar.gz and zip travel to the node,
//! unpack with the node's tar and unzip, converge (a second run changes
//! nothing, `--check` changes nothing) and honour `creates`, `mode` and
//! `list_files`; a file changed on the node is unpacked again.

use std::process::Command;

use crate::harness::Env;
use crate::new_modules::converges;

/// Build `files/t.tgz` and `files/t.zip` holding `a.txt` and `sub/b.txt`.
fn archives(env: &Env) {
    env.write("src/a.txt", "alpha\n");
    env.write("src/sub/b.txt", "beta\n");
    std::fs::create_dir_all(env.path("files")).expect("files dir");
    let src = env.path("src");
    let tar = Command::new("tar")
        .args(["czf", "../files/t.tgz", "a.txt", "sub"])
        .current_dir(&src)
        .status()
        .expect("tar runs");
    assert!(tar.success());
    let zip = Command::new("zip")
        .args(["-qr", "../files/t.zip", "a.txt", "sub"])
        .current_dir(&src)
        .status()
        .expect("zip runs");
    assert!(zip.success());
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn unarchive_tar_and_zip_from_the_control_machine_converge() {
    let env = Env::new(1);
    archives(&env);
    let pb = env.write(
        "pb.yml",
        r#"- hosts: all
  become: true
  gather_facts: false
  tasks:
    - file: path=/srv/t state=directory
    - file: path=/srv/z state=directory
    - unarchive: src=t.tgz dest=/srv/t list_files=true
      register: t
    # In check mode a tar archive is skipped, as Ansible's is.
    - assert:
        that:
          - t.handler == 'TgzArchive'
          - "'sub/b.txt' in t.files"
      when: not ansible_check_mode
    - unarchive: src=t.zip dest=/srv/z mode=0640
    - unarchive: src=t.tgz dest=/srv/elsewhere creates=/srv/t/a.txt
"#,
    );
    converges(&env, &pb);
    let node = &env.node_names()[0];
    assert_eq!(
        env.node_file(node, "/srv/t/sub/b.txt").as_deref(),
        Some("beta\n")
    );
    assert_eq!(
        env.node_file(node, "/srv/z/a.txt").as_deref(),
        Some("alpha\n")
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(env.node_path(node, "/srv/z/a.txt"))
        .expect("unzipped")
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o640);

    // A file changed on the node is unpacked again, from either archive.
    std::fs::write(env.node_path(node, "/srv/t/a.txt"), "changed\n").expect("edit");
    std::fs::write(env.node_path(node, "/srv/z/sub/b.txt"), "changed\n").expect("edit");
    let again = env.apply(&pb, &[]);
    assert_eq!(again.code, 0, "{}", again.all());
    assert_eq!(again.total("changed"), 2, "{}", again.all());
    assert_eq!(
        env.node_file(node, "/srv/t/a.txt").as_deref(),
        Some("alpha\n")
    );
    assert_eq!(
        env.node_file(node, "/srv/z/sub/b.txt").as_deref(),
        Some("beta\n")
    );
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn unarchive_refuses_a_missing_dest_and_a_file_that_is_no_archive() {
    let env = Env::new(1);
    env.write("files/plain.txt", "not an archive\n");
    archives(&env);
    let pb = env.write(
        "pb.yml",
        r#"- hosts: all
  become: true
  gather_facts: false
  tasks:
    - unarchive: src=t.tgz dest=/srv/missing
      ignore_errors: true
      register: nodest
    - file: path=/srv/p state=directory
    - unarchive: src=plain.txt dest=/srv/p
      ignore_errors: true
      register: plain
    - assert:
        that:
          - nodest is failed
          - "nodest.msg == \"dest '/srv/missing' must be an existing dir\""
          - plain is failed
          - "'Failed to find handler for' in plain.msg"
"#,
    );
    let run = env.apply(&pb, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    // The temporary copies are gone.
    let node = &env.node_names()[0];
    let tmp = std::fs::read_dir(env.node_path(node, "/tmp"))
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with("drover-unarchive")
                })
                .count()
        })
        .unwrap_or(0);
    assert_eq!(tmp, 0, "temporary archives left on the node");
}
