//! Ansible's templating semantics at the task level (loop terms), checked
//! against ansible-playbook 2.19 on the same playbooks: the lookup_first_found
//! integration target's cases.

use crate::local::{local, results};

/// lookup_first_found's "undefined values should be ignored": a
/// `with_first_found` term that is undefined failed the loop; Ansible drops
/// it and looks at the next.
#[test]
fn with_first_found_drops_undefined_terms() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("files")).expect("mkdir");
    std::fs::write(dir.path().join("files/bar1"), "x").expect("write");
    let run = local(
        dir.path(),
        r#"- hosts: all
  gather_facts: false
  tasks:
    - name: found
      debug: {msg: "{{ item }}"}
      with_first_found:
        - "{{ missing_var }}foo1"
        - files: ["{{ missing_var }}", bar1]
    - name: lazy
      debug: {msg: "{{ item }}"}
      with_first_found:
        - files: "{{ files }}"
      vars:
        files: ["{{ missing_var }}foo1", bar1]
"#,
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    let r = results(&run, "found");
    assert!(
        r[0]["item"]
            .as_str()
            .is_some_and(|m| m.ends_with("/files/bar1")),
        "{r:?}"
    );
    let r = results(&run, "lazy");
    assert!(
        r[0]["item"]
            .as_str()
            .is_some_and(|m| m.ends_with("/files/bar1")),
        "{r:?}"
    );
}

/// lookup_first_found's "check the result of the template error": a term
/// that does not render for another reason than an undefined variable fails
/// with Ansible's words.
#[test]
fn with_first_found_term_error_is_an_error_rendering_template() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = local(
        dir.path(),
        r#"- hosts: all
  gather_facts: false
  tasks:
    - name: broken
      debug:
      with_first_found:
        - "{{ 1 / 0 }}"
      ignore_errors: true
"#,
        &[],
    );
    let r = results(&run, "broken");
    assert_eq!(
        r[0]["msg"],
        "Error rendering template: division by zero",
        "{}",
        run.all()
    );
}

/// `debug: var=` of an index past a list's end (`list_var.1.foo`) failed the
/// task; as for any undefined value, Ansible prints that it is not defined.
#[test]
fn debug_var_of_a_nested_undefined_value_is_not_defined() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = local(
        dir.path(),
        r#"- hosts: all
  gather_facts: false
  vars:
    list_var: [{foo: {}}]
  tasks:
    - name: show
      debug: {var: list_var.1.foo}
"#,
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    let r = results(&run, "show");
    assert_eq!(
        r[0]["result"]["list_var.1.foo"], "VARIABLE IS NOT DEFINED!",
        "{r:?}"
    );
}
