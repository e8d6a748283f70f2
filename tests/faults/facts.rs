//! Facts and magic variables (issue 11, points 4 and 6): what Ansible
//! defines and drover left undefined or got wrong. Most run on the control
//! machine (`ansible_connection=local`); the become test needs the lab.

use serde_json::Value;

use crate::harness::{Env, Run};
use crate::local::local;

/// The `msg` of every debug result, in order.
fn messages(run: &Run) -> Vec<Value> {
    run.events()
        .into_iter()
        .filter(|e| e["event"] == "host_result")
        .filter_map(|e| e["result"].get("msg").cloned())
        .collect()
}

#[test]
fn magic_variables_ansible_defines_are_set() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::create_dir_all(d.join("roles/web/tasks")).expect("mkdir");
    std::fs::write(
        d.join("roles/web/tasks/main.yml"),
        "- debug: msg=\"{{ role_name }}\"\n  tags: t\n",
    )
    .expect("write");
    let pb = r#"- hosts: all
  gather_facts: false
  roles: [web]
  tasks:
    - debug:
        msg: "{{ ansible_version.major }}.{{ ansible_version.minor }} {{ ansible_version.full is version('2.19', '>=') }} {{ ansible_run_tags }} {{ ansible_skip_tags }} {{ ansible_play_hosts_all }} {{ ansible_check_mode }} {{ ansible_diff_mode }}"
      tags: t
"#;
    let run = local(d, pb, &["--tags", "t", "--skip-tags", "x", "--diff"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(
        messages(&run),
        ["web", "2.19 True ['t'] ['x'] ['localhost'] False True"],
        "{}",
        run.all()
    );
}

#[test]
fn failed_task_and_result_are_set_in_rescue() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pb = "- hosts: all\n  gather_facts: false\n  tasks:\n    - block:\n        - name: boom\n          command: \"false\"\n      rescue:\n        - debug: msg=\"{{ ansible_failed_task.name }} rc={{ ansible_failed_result.rc }}\"\n";
    let run = local(dir.path(), pb, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(messages(&run).last(), Some(&Value::from("boom rc=1")));
}

#[test]
fn gathered_facts_include_managers_memory_env_user_and_interfaces() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pb = r#"- hosts: all
  tasks:
    - debug:
        msg: >-
          {{ ansible_service_mgr | length > 0 }}
          {{ ansible_pkg_mgr | length > 0 }}
          {{ ansible_memory_mb.real.total > 0 }}
          {{ ansible_env.PATH | length > 0 }}
          {{ ansible_user_dir | length > 0 }}
          {{ ansible_all_ipv4_addresses is sequence }}
          {{ ansible_all_ipv6_addresses is sequence }}
          {{ ansible_lsb is mapping }}
          {{ ansible_virtualization_type | length > 0 }}
          {{ ansible_default_ipv6 is mapping }}
          {{ ansible_facts['lo']['ipv4']['address'] }}
          {{ ansible_interfaces is sequence }}
    - debug: var=ansible_facts
"#;
    let run = local(dir.path(), pb, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    let msgs = messages(&run);
    assert_eq!(
        msgs[0],
        "True True True True True True True True True True 127.0.0.1 True",
        "{}",
        run.all()
    );
    // debug: var=ansible_facts prints the facts (it printed `{}`).
    let facts = run
        .events()
        .into_iter()
        .filter(|e| e["event"] == "host_result")
        .filter_map(|e| e["result"].get("ansible_facts").cloned())
        .next()
        .unwrap_or_else(|| panic!("no facts shown:\n{}", run.all()));
    assert!(facts["hostname"].is_string(), "{facts}");
    assert!(facts["memory_mb"]["real"]["total"].is_u64(), "{facts}");
}

#[test]
fn until_with_ignore_errors_does_not_fail_the_host() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pb = "- hosts: all\n  gather_facts: false\n  tasks:\n    - command: \"true\"\n      register: r\n      until: r.rc == 5\n      retries: 1\n      delay: 0\n      ignore_errors: true\n    - debug: msg=after\n";
    let run = local(dir.path(), pb, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(run.total("failed"), 0, "{}", run.all());
    assert_eq!(run.total("ignored"), 1, "{}", run.all());
    assert_eq!(messages(&run).last(), Some(&Value::from("after")));
}

#[test]
fn set_fact_of_ansible_facts_sets_facts_not_a_variable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pb = "- hosts: all\n  gather_facts: false\n  tasks:\n    - set_fact:\n        ansible_facts: {x: 1}\n    - debug: msg=\"{{ ansible_facts.x }} {{ ansible_x }} {{ x is defined }}\"\n";
    let run = local(dir.path(), pb, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(messages(&run).last(), Some(&Value::from("1 1 False")));
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn facts_are_gathered_as_the_become_user() {
    let env = Env::new(1);
    let pb = env.write(
        "site.yml",
        "- hosts: all\n  become: true\n  tasks:\n    - debug: msg=\"{{ ansible_user_id }} {{ ansible_user_dir }}\"\n",
    );
    let run = env.apply(&pb, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(messages(&run), ["root /root"], "{}", run.all());
}

/// `register` on `include_vars` (or `set_fact`) dropped `ansible_facts`
/// from the registered result; Ansible keeps it.
#[test]
fn registered_results_keep_their_ansible_facts() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("v.yml"), "foo: bar\n").expect("write");
    let pb = "- hosts: all\n  gather_facts: false\n  tasks:\n    - include_vars: v.yml\n      register: iv\n    - set_fact: x=1\n      register: sf\n    - debug: msg=\"{{ iv.ansible_facts.foo }} {{ sf.ansible_facts.x }} {{ foo }}\"\n";
    let run = local(dir.path(), pb, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(messages(&run).last(), Some(&Value::from("bar 1 bar")));
}
