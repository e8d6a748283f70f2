//! `delegate_to` rendered to the omit placeholder (community.sops.install:
//! `delegate_to: "{{ sops_delegate | default(omit) }}"`) means no delegation,
//! as in Ansible; drover tried to connect to a host named
//! `__omit_place_holder__...`.

use crate::local::local;

#[test]
fn delegate_to_omit_runs_on_the_host_itself() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pb = r#"- hosts: all
  gather_facts: false
  tasks:
    - command: echo here
      delegate_to: "{{ nowhere | default(omit) }}"
      register: r
    - debug:
        msg: "{{ r.stdout }}"
"#;
    let run = local(dir.path(), pb, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        !run.all().contains("__omit_place_holder__"),
        "{}",
        run.all()
    );
}
