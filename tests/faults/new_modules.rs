//! Modules added for content written for Ansible (issue 11, point 2): each
//! runs on the lab nodes, converges (a second run changes nothing) and a
//! `--check` run afterwards changes nothing either, on the nodes or in the
//! report.

use std::path::Path;

use crate::harness::{Env, Run};

/// Run `playbook` three times: a first run that succeeds, a converged
/// re-run with nothing changed, then `--check` with nothing changed and no
/// file on any node touched. Returns the first run.
pub fn converges(env: &Env, playbook: &Path) -> Run {
    let first = env.apply(playbook, &[]);
    assert_eq!(first.code, 0, "first run:\n{}", first.all());
    let again = env.apply(playbook, &[]);
    assert_eq!(again.code, 0, "second run:\n{}", again.all());
    assert_eq!(again.total("changed"), 0, "second run:\n{}", again.all());
    let before = env.snapshot();
    let check = env.apply(playbook, &["--check"]);
    assert_eq!(check.code, 0, "check run:\n{}", check.all());
    assert_eq!(check.total("changed"), 0, "check run:\n{}", check.all());
    assert_eq!(before, env.snapshot(), "--check changed a node");
    first
}

/// The registered results a `debug: var=NAME` task printed, one per host.
fn shown(run: &Run, var: &str) -> Vec<serde_json::Value> {
    run.events()
        .into_iter()
        .filter_map(|e| e.get("result").and_then(|r| r.get(var)).cloned())
        .collect()
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn ping_raw_and_script_run_and_converge() {
    let env = Env::new(1);
    env.write(
        "files/mark.sh",
        "#!/bin/sh\nset -e\necho \"$1\" > \"$2\"\npwd >> \"$2\"\n",
    );
    let pb = env.write(
        "pb.yml",
        r#"- hosts: all
  gather_facts: false
  tasks:
    - ping:
      register: p
    - assert:
        that: p.ping == 'pong'
    - raw: echo raw-out
      register: r
      changed_when: false
      check_mode: false
    - assert:
        that:
          - r.rc == 0
          - "'raw-out' in r.stdout"
    - name: script with creates
      become: true
      script: mark.sh hello /srv/marked creates=/srv/marked
      args:
        chdir: /srv
      register: s
    - debug: var=s
"#,
    );
    let first = converges(&env, &pb);
    let node = &env.node_names()[0];
    assert_eq!(
        env.node_file(node, "/srv/marked").as_deref(),
        Some("hello\n/srv\n"),
        "{}",
        first.all()
    );
    let s = shown(&first, "s");
    assert_eq!(s[0]["rc"], 0, "{}", first.all());
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn fetch_and_find_converge_and_fetch_lays_out_host_dirs() {
    let env = Env::new(2);
    let pb = env.write(
        "pb.yml",
        r#"- hosts: all
  gather_facts: false
  become: true
  tasks:
    - file:
        path: /srv/f
        state: directory
    - copy:
        dest: "/srv/f/{{ item }}"
        content: "{{ inventory_hostname }} {{ item }}\n"
      loop: [a.conf, b.conf, c.txt]
    - fetch:
        src: /srv/f/a.conf
        dest: fetched
    - fetch:
        src: /srv/f/b.conf
        dest: "flat/{{ inventory_hostname }}.conf"
        flat: true
    - fetch:
        src: /srv/f/none
        dest: fetched
        fail_on_missing: false
    - find:
        paths: /srv/f
        patterns: "*.conf"
      register: found
    - assert:
        that:
          - found.matched == 2
          - found.files | map(attribute='path') | sort | list == ['/srv/f/a.conf', '/srv/f/b.conf']
          - found.files[0].size > 0
    - find:
        paths: [/srv/f]
        contains: "{{ inventory_hostname }} c"
      register: found
    - assert:
        that: found.files | map(attribute='path') | list == ['/srv/f/c.txt']
    # As in Ansible, contains only filters regular files of file_type file.
    - find:
        paths: [/srv/f]
        contains: "{{ inventory_hostname }} c"
        file_type: any
      register: found
    - assert:
        that: found.matched == 3
"#,
    );
    let first = converges(&env, &pb);
    for node in env.node_names() {
        let local = env.path(&format!("fetched/{node}/srv/f/a.conf"));
        assert_eq!(
            std::fs::read_to_string(&local).unwrap_or_default(),
            format!("{node} a.conf\n"),
            "{}",
            first.all()
        );
        let flat = env.path(&format!("flat/{node}.conf"));
        assert_eq!(
            std::fs::read_to_string(&flat).unwrap_or_default(),
            format!("{node} b.conf\n")
        );
    }
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn ini_file_and_getent_converge() {
    let env = Env::new(1);
    let pb = env.write(
        "pb.yml",
        r#"- hosts: all
  gather_facts: false
  become: true
  tasks:
    - community.general.ini_file:
        path: /etc/drover-test.ini
        section: drinks
        option: fav
        value: lemonade
        mode: "0600"
    - ini_file:
        path: /etc/drover-test.ini
        section: drinks
        option: cold
        value: "yes"
        no_extra_spaces: true
    - ini_file:
        path: /etc/drover-test.ini
        section: old
        state: absent
    - getent:
        database: passwd
        key: root
    - assert:
        that:
          - getent_passwd.root[4] == '/root'
"#,
    );
    let first = converges(&env, &pb);
    let node = &env.node_names()[0];
    assert_eq!(
        env.node_file(node, "/etc/drover-test.ini").as_deref(),
        Some("[drinks]\nfav = lemonade\ncold=yes\n"),
        "{}",
        first.all()
    );
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn pause_and_wait_for_connection_converge() {
    let env = Env::new(1);
    let pb = env.write(
        "pb.yml",
        r#"- hosts: all
  gather_facts: false
  tasks:
    - pause:
        seconds: 1
    - pause:
        prompt: "Not answered without a terminal"
      register: answer
    - assert:
        that: answer.user_input == ''
    - wait_for_connection:
        timeout: 20
        delay: 0
      register: w
    - assert:
        that: w.elapsed < 20
"#,
    );
    let started = std::time::Instant::now();
    converges(&env, &pb);
    assert!(started.elapsed() >= std::time::Duration::from_secs(3));
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn package_dispatches_to_apt_and_package_facts_lists_it() {
    let env = Env::new(1);
    let pb = env.write(
        "pb.yml",
        r#"- hosts: all
  become: true
  tasks:
    - package:
        name: [sudo, openssh-server]
        state: present
    - package_facts:
    - assert:
        that:
          - packages['sudo'][0].source == 'apt'
          - packages['openssh-server'] | length >= 1
"#,
    );
    converges(&env, &pb);
}
