//! Keyword and executor semantics Ansible's integration targets rely on
//! (issue 11, second pass), each checked against what ansible-playbook 2.19
//! does on the same playbook. They run on the control machine
//! (`ansible_connection=local`) and change nothing there but their scratch
//! directory.

use serde_json::Value;

use crate::local::{local, statuses};

fn write(dir: &std::path::Path, name: &str, text: &str) {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(p, text).expect("write");
}

#[test]
fn include_tasks_and_include_role_are_reported_as_tasks() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "inc.yml", "- debug: msg=inside\n");
    write(dir.path(), "roles/r/tasks/main.yml", "- debug: msg=role\n");
    let run = local(
        dir.path(),
        r#"- hosts: all
  gather_facts: false
  tasks:
    - include_tasks: inc.yml
    - name: looped include
      include_tasks: inc.yml
      loop: [1, 2]
    - name: skipped include
      include_tasks: inc.yml
      when: false
    - import_tasks: inc.yml
    - name: role include
      include_role:
        name: r
"#,
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(statuses(&run, "include_tasks"), ["ok"], "{}", run.all());
    assert_eq!(statuses(&run, "looped include"), ["ok", "ok"]);
    assert_eq!(statuses(&run, "skipped include"), ["skipped"]);
    assert_eq!(statuses(&run, "role include"), ["ok"]);
    // Imports are not tasks: no event of their own.
    assert!(statuses(&run, "import_tasks").is_empty());
    // Ansible's recap: each included file counts ok once per host, and the
    // skipped include counts as skipped.
    let recap = run.recap();
    let c: &Value = &recap["localhost"];
    assert_eq!(c["ok"], 1 + 1 + 2 + 2 + 1 + 1 + 1, "{c}");
    assert_eq!(c["skipped"], 1, "{c}");
}

#[test]
fn an_undefined_variable_in_a_condition_fails_the_task_at_run_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = local(
        dir.path(),
        r#"- hosts: all
  gather_facts: false
  tasks:
    - name: invalid conditional
      command: "true"
      changed_when: boomboomboom
      ignore_errors: true
      register: r
    - assert:
        that: [r is failed]
"#,
        &[],
    );
    // Ansible runs the play; the task fails (ignored) when it is reached.
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(statuses(&run, "invalid conditional"), ["failed"]);
    assert_eq!(statuses(&run, "assert"), ["ok"], "{}", run.all());
    assert!(
        run.stderr.contains("boomboomboom"),
        "warned: {}",
        run.stderr
    );
}

#[test]
fn loop_control_extended_describes_the_loop_to_each_item() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = local(
        dir.path(),
        r#"- hosts: all
  gather_facts: false
  tasks:
    - name: extended
      assert:
        that:
          - ansible_loop.index == 3 and ansible_loop.index0 == 2
          - ansible_loop.revindex == 1 and ansible_loop.revindex0 == 0
          - not ansible_loop.first and ansible_loop.last
          - ansible_loop.length == 3
          - ansible_loop.previtem == 'b'
          - ansible_loop.nextitem is undefined
          - ansible_loop.allitems == ['a', 'b', 'c']
      loop: [a, b, c]
      loop_control:
        extended: true
      when: item == 'c'
    - name: without allitems
      assert:
        that:
          - ansible_loop.allitems is undefined
          - ansible_loop.first and ansible_loop.nextitem == 'y'
      loop: [x, y]
      loop_control:
        extended: true
        extended_allitems: false
      when: item == 'x'
"#,
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(statuses(&run, "extended"), ["skipped", "skipped", "ok"]);
    assert_eq!(statuses(&run, "without allitems"), ["ok", "skipped"]);
}

#[test]
fn async_with_poll_zero_runs_in_the_background_and_async_bounds_a_polled_task() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().display();
    let run = local(
        dir.path(),
        &format!(
            r#"- hosts: all
  gather_facts: false
  tasks:
    - name: fire and forget
      shell: sleep 2 && touch {d}/late
      async: 30
      poll: 0
      register: job
    - name: not there yet
      stat: {{path: "{d}/late"}}
      register: before
    - wait_for: {{path: "{d}/late", timeout: 20}}
    - assert:
        that:
          - job is changed and job.started == 1 and job.finished == 0
          - job.ansible_job_id is defined
          - not before.stat.exists
    - name: too slow
      command: sleep 5
      async: 1
      poll: 1
      ignore_errors: true
      register: slow
    - assert:
        that:
          - slow is failed
          - "'async task did not complete within the requested time - 1s' in slow.msg"
"#
        ),
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(statuses(&run, "fire and forget"), ["changed"]);
    assert_eq!(statuses(&run, "too slow"), ["failed"]);
}

/// script target: actions Ansible runs on the controller or that move
/// files refuse `async` (the task fails), while modules take it.
#[test]
fn actions_without_async_support_refuse_async() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().display();
    let run = local(
        dir.path(),
        &format!(
            r#"- hosts: all
  gather_facts: false
  tasks:
    - name: script with async
      script: /some/script.sh
      async: 2
      ignore_errors: true
      register: script_async
    - name: copy with async
      copy: {{content: "x", dest: "{d}/copied"}}
      async: 10
      ignore_errors: true
      register: copy_async
    - name: command with async
      command: touch {d}/touched
      async: 10
      register: command_async
    - assert:
        that:
          - script_async is failed
          - script_async.msg == "This action (script) does not support async."
          - copy_async is failed
          - copy_async.msg == "This action (copy) does not support async."
          - command_async is changed
"#
        ),
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(!dir.path().join("copied").exists(), "{}", run.all());
    assert!(dir.path().join("touched").exists(), "{}", run.all());
}

#[test]
fn a_successful_result_says_it_did_not_fail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = local(
        dir.path(),
        r#"- hosts: all
  gather_facts: false
  tasks:
    - shell: exit 0
      register: result
    - assert:
        that: ["'failed' in result and not result.failed"]
"#,
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.all());
}

#[test]
fn loop_control_pause_waits_between_items() {
    let dir = tempfile::tempdir().expect("tempdir");
    let start = std::time::Instant::now();
    let run = local(
        dir.path(),
        r#"- hosts: all
  gather_facts: false
  tasks:
    - debug: msg={{ item }}
      loop: [1, 2, 3]
      loop_control:
        pause: 0.6
"#,
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    // Two pauses between three items.
    assert!(
        start.elapsed().as_secs_f64() >= 1.2,
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn include_vars_dir_name_and_hash_behaviour_follow_ansible() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "vars/a.yml",
        "x: 1\nconfig: {k1: 1, k2: {a: 1}}\n",
    );
    write(dir.path(), "vars/sub/b.yml", "x: 2\n");
    write(dir.path(), "vars/noext", "y: 1\n");
    write(dir.path(), "more.yml", "config: {k2: {b: 2}}\n");
    let run = local(
        dir.path(),
        r#"- hosts: all
  gather_facts: false
  tasks:
    - include_vars:
        dir: vars
        ignore_unknown_extensions: true
      register: r
    - include_vars:
        dir: vars
        depth: 1
        extensions: ['', yml]
        name: top
    - include_vars:
        file: more.yml
        hash_behaviour: merge
    - name: unknown extension
      include_vars:
        dir: vars
      ignore_errors: true
      register: bad
    - assert:
        that:
          - x == 2
          - r.ansible_included_var_files | length == 2
          - top.x == 1 and top.y == 1
          - config.k1 == 1 and config.k2.a == 1 and config.k2.b == 2
          - "'does not have a valid extension' in bad.message"
"#,
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(statuses(&run, "include_vars").len(), 3, "{}", run.all());
    assert_eq!(statuses(&run, "unknown extension"), ["failed"]);
}

/// The templating target: a registered result's text and an `!unsafe`
/// value are data, never templates (they used to be rendered on use, so
/// `{{ foo }}` in stdout failed as an undefined variable), and a template
/// that does not compile fails its task when that task expects to fail.
#[test]
fn results_and_unsafe_values_are_not_templates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = local(
        dir.path(),
        r#"- hosts: all
  gather_facts: false
  tasks:
    - command: echo {% raw %}{{ foo }}{% endraw %}
      register: result
    - name: compared
      assert:
        that:
          - result.stdout_lines | first == expected
          - result.stdout == expected
      vars:
        expected: !unsafe '{{ foo }}'
    - name: broken
      raw: echo {{ {{ 1 }} }}
      ignore_errors: true
      register: broken
    - name: reported
      assert:
        that:
          - broken is failed
          - broken.msg is contains("Syntax error")
"#,
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    for task in ["compared", "reported"] {
        assert_eq!(statuses(&run, task), ["ok"], "{task}: {}", run.all());
    }
}

/// add_host target: the hostvars of a host `add_host` made, which no play
/// has targeted, hold its per-host magic variables (`group_names`).
#[test]
fn hostvars_of_an_added_host_have_its_group_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = local(
        dir.path(),
        r#"- hosts: all
  gather_facts: false
  tasks:
    - add_host: {hostname: lone.example, a_var: x}
    - add_host: {name: grouped, groups: newgroup}
    - assert:
        that:
          - hostvars['lone.example'].group_names == ['ungrouped']
          - hostvars['lone.example'].inventory_hostname_short == 'lone'
          - hostvars['lone.example'].a_var == 'x'
          - "'newgroup' in hostvars['grouped'].group_names"
"#,
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.all());
}

/// package_facts target: `environment: {PATH: "${PATH}:/dir"}` is taken
/// literally (Ansible quotes it), so the task's PATH names no real
/// directory; Ansible's package_facts reads apt's database through Python
/// and does not care, nor may drover's. (Needs dpkg: drover's hosts are
/// Debian-family.)
#[test]
fn package_facts_reads_packages_whatever_path_the_task_sets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = local(
        dir.path(),
        r#"- hosts: all
  gather_facts: false
  tasks:
    - name: facts
      package_facts:
        manager: [rpm, apt]
      environment:
        PATH: "${PATH}:/nowhere"
    - assert:
        that:
          - ansible_facts.packages | length > 0
          - "'dpkg' in ansible_facts.packages"
"#,
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(statuses(&run, "facts"), ["ok"]);
}
