//! `apt_repository` on a lab node: a source gets the file Ansible names
//! after its URL (or `filename`), a disabled copy is enabled in place, an
//! absent source's emptied file is deleted; a second run and `--check`
//! change nothing; the cache update runs against a flat file:// repository
//! (the lab's apt sources are local), and a failed update takes the new
//! source back.

use crate::harness::Env;
use crate::new_modules::converges;

#[test]
#[ignore = "needs root: run scripts/test"]
fn apt_repository_writes_the_files_ansible_names_and_converges() {
    let env = Env::new(1);
    let pb = env.write(
        "pb.yml",
        r#"- hosts: all
  gather_facts: false
  become: true
  tasks:
    - name: seed a disabled source and one to remove
      copy:
        dest: /etc/apt/sources.list.d/seeded.list
        force: false
        content: |
          # a comment
          #deb http://seed.example/debian bookworm main
          deb http://gone.example/debian bookworm main
    - apt_repository:
        repo: "deb [trusted=yes] file:///srv/repo ./"
        update_cache: false
      register: local
    - apt_repository:
        repo: deb http://archive.example.org/debian bookworm main contrib
        filename: lab-extra
        mode: "0600"
        update_cache: false
    - apt_repository:
        repo: deb http://seed.example/debian bookworm main
        update_cache: false
    - apt_repository:
        repo: deb http://gone.example/debian bookworm main
        state: absent
        update_cache: false
      register: gone
    - assert:
        that:
          - local.repo == "deb [trusted=yes] file:///srv/repo ./"
          - local.state == 'present'
      when: not ansible_check_mode
"#,
    );
    let first = converges(&env, &pb);
    let node = &env.node_names()[0];
    assert_eq!(
        env.node_file(node, "/etc/apt/sources.list.d/srv_repo.list")
            .as_deref(),
        Some("deb [trusted=yes] file:///srv/repo ./\n"),
        "{}",
        first.all()
    );
    let extra = env.node_path(node, "/etc/apt/sources.list.d/lab-extra.list");
    assert_eq!(
        std::fs::read_to_string(&extra).ok().as_deref(),
        Some("deb http://archive.example.org/debian bookworm main contrib\n")
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&extra)
        .expect("meta")
        .permissions()
        .mode()
        & 0o7777;
    assert_eq!(mode, 0o600);
    // The seeded file: the disabled source enabled, the absent one gone,
    // the comment kept as Ansible writes it.
    assert_eq!(
        env.node_file(node, "/etc/apt/sources.list.d/seeded.list")
            .as_deref(),
        Some("# a comment\ndeb http://seed.example/debian bookworm main\n"),
        "{}",
        first.all()
    );
    // --diff in check mode shows what a new source would add.
    let pb2 = env.write(
        "pb2.yml",
        "- hosts: all\n  gather_facts: false\n  become: true\n  tasks:\n    - apt_repository:\n        repo: deb http://new.example/debian bookworm main\n        update_cache: false\n",
    );
    let check = env.apply(&pb2, &["--check", "--diff"]);
    assert_eq!(check.code, 0, "{}", check.all());
    assert_eq!(check.total("changed"), 1, "{}", check.all());
    assert!(
        check.all().contains("new_example_debian.list"),
        "{}",
        check.all()
    );
    assert!(env
        .node_file(node, "/etc/apt/sources.list.d/new_example_debian.list")
        .is_none());
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn apt_repository_updates_the_cache_and_puts_sources_back_when_the_update_fails() {
    // The lab's apt sources point only at its local repository, so
    // apt-get update runs without the network.
    let env = Env::new(1);
    let pb = env.write(
        "pb.yml",
        r#"- hosts: all
  gather_facts: false
  become: true
  tasks:
    - file:
        path: /srv/flat
        state: directory
    - copy:
        dest: /srv/flat/Packages
        content: ""
    - apt_repository:
        repo: "deb [trusted=yes] file:///srv/flat ./"
        filename: flat
"#,
    );
    let first = converges(&env, &pb);
    let node = &env.node_names()[0];
    assert_eq!(
        env.node_file(node, "/etc/apt/sources.list.d/flat.list")
            .as_deref(),
        Some("deb [trusted=yes] file:///srv/flat ./\n"),
        "{}",
        first.all()
    );
    let bad = env.write(
        "bad.yml",
        r#"- hosts: all
  gather_facts: false
  become: true
  tasks:
    - apt_repository:
        repo: "deb http://127.0.0.1:9/nothing bookworm main"
        filename: broken
        update_cache_retries: 1
"#,
    );
    let run = env.apply(&bad, &[]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.all()
            .contains("Failed to update apt cache after 1 retries"),
        "{}",
        run.all()
    );
    assert!(
        env.node_file(node, "/etc/apt/sources.list.d/broken.list")
            .is_none(),
        "the new source was not taken back"
    );
}
