//! `copy` of a directory already on the host (`remote_src`), and of a local
//! file a delegated task made with a relative path: both failed under
//! Ansible's own copy target ("remote_src with a directory as src is not
//! supported"; "could not find src").

use crate::harness::Env;
use crate::local::statuses;

const PLAY: &str = r#"- hosts: all
  become: true
  gather_facts: false
  tasks:
    - name: make a tree
      shell: mkdir -p /srv/src/sub && echo one > /srv/src/sub/f && ln -sfn sub/f /srv/src/l
    - name: copy the contents
      copy: { src: /srv/src/, dest: /srv/out/, remote_src: true, directory_mode: "0750" }
    - name: copy the directory itself
      copy: { src: /srv/src, dest: /srv/out, remote_src: true, local_follow: true }
    - name: make a local file with a relative path
      copy: { content: "made here\n", dest: made_here.txt }
      delegate_to: localhost
      become: false
      run_once: true
    - name: copy the local file
      copy: { src: made_here.txt, dest: /srv/made.txt }
"#;

#[test]
#[ignore = "needs root: run scripts/test"]
fn remote_dir_copied_then_converged_and_a_relative_local_file_found() {
    let env = Env::new(1);
    // The playbook is not in drover's working directory: local tasks run
    // in the playbook's.
    let play = env.write("play/site.yml", PLAY);
    let run = env.apply(&play, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(statuses(&run, "copy the contents"), ["changed"]);
    assert_eq!(statuses(&run, "copy the directory itself"), ["changed"]);
    assert_eq!(statuses(&run, "copy the local file"), ["changed"]);
    let node = env.node_names()[0].clone();
    assert_eq!(
        env.node_file(&node, "/srv/out/sub/f").as_deref(),
        Some("one\n")
    );
    assert!(
        env.node_path(&node, "/srv/out/l").is_symlink(),
        "links stay links"
    );
    assert!(
        !env.node_path(&node, "/srv/out/src/l").is_symlink(),
        "local_follow: yes copies what a link points to"
    );
    assert_eq!(
        env.node_file(&node, "/srv/out/src/l").as_deref(),
        Some("one\n")
    );
    assert!(env.path("play/made_here.txt").is_file());
    assert_eq!(
        env.node_file(&node, "/srv/made.txt").as_deref(),
        Some("made here\n")
    );

    let again = env.apply(&play, &[]);
    assert_eq!(again.code, 0, "{}", again.all());
    assert_eq!(statuses(&again, "copy the contents"), ["ok"]);
    assert_eq!(statuses(&again, "copy the directory itself"), ["ok"]);
    assert_eq!(statuses(&again, "copy the local file"), ["ok"]);

    // A source file edited: --check reports the copy, writes nothing.
    std::fs::write(env.node_path(&node, "/srv/src/sub/f"), "two\n").expect("edit");
    let check = env.apply(&play, &["--check"]);
    assert_eq!(
        statuses(&check, "copy the contents"),
        ["changed"],
        "{}",
        check.all()
    );
    assert_eq!(
        env.node_file(&node, "/srv/out/sub/f").as_deref(),
        Some("one\n")
    );
}
