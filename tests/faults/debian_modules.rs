//! Modules Debian and Raspberry Pi OS roles use (issue 11, second pass):
//! each runs on a lab node, converges (a second run changes nothing) and a
//! `--check` run afterwards changes nothing, on the node or in the report.

use std::path::Path;

use crate::harness::{Env, Run};

/// A first run that succeeds, a second with nothing changed, then
/// `--check` with nothing changed and no file on any node touched.
fn converges(env: &Env, playbook: &Path) -> Run {
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

#[test]
#[ignore = "needs root: run scripts/test"]
fn setup_and_service_facts_set_facts_as_ansible_does() {
    let env = Env::new(1);
    let pb = env.write(
        "pb.yml",
        r#"- hosts: all
  gather_facts: false
  become: true
  tasks:
    - file:
        path: /etc/ansible/facts.d
        state: directory
    - copy:
        dest: /etc/ansible/facts.d/app.fact
        content: '{"release": "1.4"}'
    - copy:
        dest: /etc/systemd/system/lab-facts.service
        content: |
          [Unit]
          Description=facts test
          [Service]
          ExecStart=/bin/true
          [Install]
          WantedBy=multi-user.target
    - systemd:
        name: lab-facts
        state: started
        enabled: true
        daemon_reload: true
    - setup:
        filter: ["ansible_host*", "ansible_distribution", "ansible_local"]
      register: s
    - assert:
        that:
          - ansible_facts.hostname == ansible_hostname
          - ansible_facts.local.app.release == '1.4'
          - ansible_local.app.release == '1.4'
          - ansible_kernel is not defined
          - s is not changed
    - setup:
        gather_subset: ["!all", "network"]
    - assert:
        that: ansible_facts.all_ipv4_addresses is defined
    - service_facts:
    - assert:
        that:
          - ansible_facts.services['lab-facts.service'].state == 'running'
          - ansible_facts.services['lab-facts.service'].status == 'enabled'
          - ansible_facts.services['lab-facts.service'].source == 'systemd'
          - services['lab-facts.service'].name == 'lab-facts.service'
"#,
    );
    converges(&env, &pb);
}
