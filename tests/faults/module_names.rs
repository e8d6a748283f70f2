//! Ansible modules drover does not implement: a task naming one loads,
//! is skipped like any other task where its `when` is false, and fails
//! only the host it runs on, with a message naming the module (which
//! `failed_when` cannot turn into success: nothing was done).

use crate::harness::Env;

/// A role written for several distributions: on the lab's Debian nodes
/// only the Debian branch runs.
const ROLE_TASKS: &str = r#"- name: install on Red Hat
  dnf:
    name: httpd
    state: present
  when: ansible_os_family == 'RedHat'
- name: install on Arch
  community.general.pacman:
    name: apache
  when: ansible_os_family == 'Archlinux'
- name: configure on Debian
  copy:
    dest: /tmp/multi-distro
    content: "{{ ansible_os_family }}\n"
  when: ansible_os_family == 'Debian'
- name: only for the firewall tag
  ansible.posix.firewalld:
    service: http
    state: enabled
  tags: [firewall]
"#;

#[test]
#[ignore = "needs root: run scripts/test"]
fn a_multi_distro_role_runs_its_debian_branch_on_the_lab() {
    let env = Env::new(2);
    env.write("roles/web/tasks/main.yml", ROLE_TASKS);
    let pb = env.write("site.yml", "- hosts: all\n  roles: [web]\n");
    for args in [
        &["--check", "--skip-tags", "firewall"][..],
        &["--skip-tags", "firewall"],
    ] {
        let run = env.apply(&pb, args);
        assert_eq!(run.code, 0, "{args:?}: {}", run.all());
        assert_eq!(run.total("failed"), 0, "{}", run.all());
        assert!(!run.all().contains("does not implement"), "{}", run.all());
    }
    for node in env.node_names() {
        assert_eq!(
            env.node_file(&node, "/tmp/multi-distro").as_deref(),
            Some("Debian\n"),
            "{node}"
        );
    }
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn an_unimplemented_module_fails_only_the_host_it_runs_on() {
    let env = Env::new(2);
    let nodes = env.node_names();
    let pb = env.write(
        "site.yml",
        &format!(
            "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: arch only\n      pacman: {{name: apache}}\n      when: inventory_hostname == '{}'\n      failed_when: false\n    - name: after\n      copy: {{dest: /tmp/after, content: \"x\\n\"}}\n",
            nodes[0]
        ),
    );
    for args in [&["--check"][..], &[]] {
        let run = env.apply(&pb, args);
        assert_ne!(run.code, 0, "{args:?}: {}", run.all());
        let recap = run.recap();
        assert_eq!(recap[&nodes[0]]["failed"], 1, "{args:?}: {}", run.all());
        assert_eq!(recap[&nodes[1]]["failed"], 0, "{args:?}: {}", run.all());
        assert!(
            run.stdout.contains(
                "`community.general.pacman` is an Ansible module drover does not implement yet"
            ),
            "{args:?}: {}",
            run.all()
        );
    }
    // The failed host left the play; the other went on.
    assert_eq!(env.node_file(&nodes[0], "/tmp/after"), None);
    assert_eq!(
        env.node_file(&nodes[1], "/tmp/after").as_deref(),
        Some("x\n")
    );
}
