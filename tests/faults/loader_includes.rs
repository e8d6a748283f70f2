//! Ansible integration targets of the loader and includes (issue 11):
//! failures `ignore_errors` must catch, role variables, and the messages
//! targets match on. Run on the control machine, checked against what
//! ansible-playbook 2.19 does with the same playbook.

use crate::local::{local, results};

#[test]
fn failures_before_the_module_runs_are_ignored_and_registered() {
    // lookup_first_found: a loop or an argument that does not render was a
    // failure ignore_errors did not catch, and `register` kept nothing.
    let dir = tempfile::tempdir().expect("tempdir");
    let run = local(
        dir.path(),
        r#"- hosts: all
  gather_facts: false
  tasks:
    - name: bad term
      debug:
      with_first_found:
        - 1
      ignore_errors: true
      register: a
    - name: undefined arg
      debug:
        msg: "{{ lookup('first_found', files=later) }}"
      vars:
        later: "{{ sorry_not_defined }}"
      ignore_errors: true
      register: b
    - assert:
        that:
          - a is failed
          - a.msg is contains "not 'int'"
          - b is failed
          - b.msg is search "Error while resolving value for 'msg'. 'sorry_not_defined' is undefined"
"#,
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    for name in ["bad term", "undefined arg"] {
        let r = results(&run, name);
        assert_eq!(r[0]["ignored"], true, "{name}: {r:?}");
    }
}

#[test]
fn include_vars_finds_role_files_and_says_could_not_find_file_for_none() {
    // include_vars: a file under the role's own directory was not found,
    // and a name rendering to None was looked for as a file "None".
    let dir = tempfile::tempdir().expect("tempdir");
    let role = dir.path().join("roles/r");
    std::fs::create_dir_all(role.join("tasks")).expect("mkdir");
    std::fs::create_dir_all(role.join("vars2")).expect("mkdir");
    std::fs::write(role.join("vars2/h.yml"), "from_role_dir: 1\n").expect("write");
    std::fs::write(
        role.join("tasks/main.yml"),
        r#"- include_vars:
    file: vars2/h.yml
- include_vars:
    file: "{{ lookup('first_found', ['absent.yml'], errors='ignore') }}"
  ignore_errors: true
  register: none_file
- assert:
    that:
      - from_role_dir == 1
      - "'Could not find file' in none_file.message"
"#,
    )
    .expect("write");
    let run = local(
        dir.path(),
        "- hosts: all\n  gather_facts: false\n  roles: [r]\n",
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.all());
}
