//! Control flow as Ansible's integration targets `until`, `loop-until`,
//! `loops`, `failed_when`, `lookup_dict` and `lookup_together` check it
//! (issue 11, third pass): what `until`/`retries` count and register, how a
//! loop that cannot run fails, what a failed result carries. Each checked
//! against ansible-playbook 2.19 on the same tasks. They run on the control
//! machine (`ansible_connection=local`) and change nothing there but their
//! scratch directory.

use crate::local::{local, statuses};

#[test]
fn until_and_retries_count_attempts_as_ansible() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = local(
        dir.path(),
        r#"- hosts: all
  gather_facts: false
  tasks:
    - name: exhausted
      shell: echo run >> {{ playbook_dir }}/runs
      register: exhausted
      until: false
      retries: 2
      delay: 0
      ignore_errors: true
    - name: retries alone retry until the task succeeds
      shell: echo x >> {{ playbook_dir }}/count; test $(wc -l < {{ playbook_dir }}/count) -ge 2
      register: alone
      retries: 3
      delay: 0
    - name: attempts seen by failed_when, retries templated
      command: "true"
      register: seen
      until: false
      retries: "{{ n }}"
      delay: "{{ 0 }}"
      vars:
        n: 2
      failed_when: seen.attempts > 6
    - name: no retries at all
      command: "true"
      register: once
      until: false
      retries: 0
    - name: runs
      command: wc -l {{ playbook_dir }}/runs
      register: runs
    - assert:
        that:
          - exhausted is failed
          - exhausted.attempts == 2
          - runs.stdout.split()[0] == '3'
          - alone is not failed
          - alone.attempts == 2
          - seen.attempts == 2
          - seen.failed
          - seen.failed_when_result == false
          - once.attempts is undefined
"#,
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(statuses(&run, "exhausted"), ["failed"], "{}", run.all());
    // A false failed_when decides the outcome even when retries ran out.
    assert_eq!(
        statuses(&run, "attempts seen by failed_when, retries templated"),
        ["changed"],
        "{}",
        run.all()
    );
    assert_eq!(statuses(&run, "no retries at all"), ["changed"]);
}

#[test]
fn loop_errors_are_registered_and_ignorable_and_loop_var_may_be_templated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = local(
        dir.path(),
        r#"- hosts: all
  gather_facts: false
  vars:
    a_dict: {a: 1}
  tasks:
    - name: with_dict over a list
      debug: msg={{ item }}
      with_dict: [1, 2]
      register: over_list
      ignore_errors: true
    - name: a with_list value that is not a list is one item
      debug: var=item
      with_list: "{{ a_dict }}"
      register: one_item
    - name: templated loop_var
      debug: msg="{{ named }}"
      loop: [v]
      loop_control:
        loop_var: "{{ lv }}"
      vars:
        lv: named
      register: templated
    - name: with_together of nothing
      debug: msg={{ item }}
      with_together: []
      register: together
      ignore_errors: true
    - assert:
        that:
          - over_list is failed
          - "'lookup plugin expects a dictionary' in over_list.msg"
          - one_item.results[0].item == a_dict
          - templated.results[0].msg == 'v'
          - together is failed
          - together.msg is contains 'with_together requires at least one element'
"#,
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(statuses(&run, "with_dict over a list"), ["failed"]);
}

#[test]
fn failed_results_carry_exception_and_failed_when_errors_are_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = local(
        dir.path(),
        r#"- hosts: all
  gather_facts: false
  tasks:
    - name: fails
      command: "false"
      register: failing
      ignore_errors: true
    - name: excused
      command: "false"
      register: excused
      failed_when: false
    - name: succeeds
      command: "true"
      register: fine
    - name: bad condition
      command: echo foo
      register: bad
      failed_when: boomboomboom
      ignore_errors: true
    - assert:
        that:
          - failing.exception is defined
          - failing.failed_when_suppressed_exception is undefined
          - excused.exception is undefined
          - excused.failed_when_suppressed_exception is defined
          - fine.exception is undefined
          - bad is failed
          - bad.stdout is defined
          - bad.failed_when_result is contains('boomboomboom')
"#,
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.all());
}

#[test]
fn loop_label_sees_the_item_result_and_fails_the_item_when_undefined() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = local(
        dir.path(),
        r#"- hosts: all
  gather_facts: false
  tasks:
    - name: labelled
      command: "echo {{ item }}"
      register: r
      loop: [changed, skipped]
      loop_control:
        label: "{{ r.stdout }}"
        index_var: idx
      when: item == "changed"
      ignore_errors: true
    - assert:
        that:
          - r is failed
          - r.results[0].stdout == 'changed'
          - r.results[0].idx == 0
          - r.results[1].ansible_index_var == 'idx'
          - r.results[1].msg is contains("no attribute 'stdout'")
"#,
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(
        statuses(&run, "labelled"),
        ["changed", "failed"],
        "{}",
        run.all()
    );
}

#[test]
fn meta_actions_honour_when_and_report_the_hosts_they_skip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = local(
        dir.path(),
        r#"- hosts: all
  gather_facts: false
  tasks:
    - name: not the end of this host
      meta: end_host
      when: false
    - name: not the end of the play
      meta: end_play
      when: inventory_hostname == 'elsewhere'
    - name: facts kept
      meta: clear_facts
      when: false
    - name: still running
      debug: msg=here
    - name: the end of the play
      meta: end_play
      when: true
    - name: after the end
      debug: msg=gone
"#,
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    for name in [
        "not the end of this host",
        "not the end of the play",
        "facts kept",
    ] {
        assert_eq!(statuses(&run, name), ["skipped"], "{name}: {}", run.all());
    }
    assert_eq!(statuses(&run, "still running"), ["ok"], "{}", run.all());
    assert!(statuses(&run, "the end of the play").is_empty());
    assert!(statuses(&run, "after the end").is_empty(), "{}", run.all());
    // As in Ansible, a skipped meta task is not counted in the recap.
    assert!(run.stdout.contains("\"skipped\":0"), "{}", run.stdout);
}

/// service target: `meta: end_host` whose `when` is false left no result,
/// where Ansible reports the host skipped (and nothing for a host it ends).
#[test]
fn end_host_with_a_false_condition_is_reported_skipped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = local(
        dir.path(),
        r#"- hosts: all
  gather_facts: false
  tasks:
    - name: skip unsupported distros
      meta: end_host
      when: 1 == 2
    - name: still here
      command: "true"
    - name: the end
      meta: end_host
      when: 1 == 1
    - name: never
      command: "true"
"#,
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(
        statuses(&run, "skip unsupported distros"),
        ["skipped"],
        "{}",
        run.all()
    );
    assert_eq!(statuses(&run, "still here"), ["changed"]);
    assert!(statuses(&run, "the end").is_empty(), "{}", run.all());
    assert!(statuses(&run, "never").is_empty(), "{}", run.all());
}
