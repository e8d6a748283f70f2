//! `add_host` and `group_by` change the run's inventory (issue 11): hosts
//! and groups they add are in later plays' host patterns, `groups`,
//! `hostvars` and `group_names`; an added host is reached through the
//! variables it was given. `add_host` runs once, not once per host; both
//! say `changed` only when the inventory changed. They were refused as
//! modules drover does not implement.

use serde_json::Value;

use crate::harness::{Env, Run};

/// The `msg` of every debug result, in order (other modules' empty ones
/// left out).
fn messages(run: &Run) -> Vec<String> {
    run.events()
        .into_iter()
        .filter(|e| e["event"] == "host_result")
        .filter_map(|e| e["result"]["msg"].as_str().map(str::to_string))
        .filter(|m| !m.is_empty())
        .collect()
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn added_hosts_and_groups_are_targets_of_later_plays() {
    let env = Env::new(2);
    let pb = env.write(
        "site.yml",
        r#"- hosts: all
  gather_facts: false
  tasks:
    - name: add
      add_host:
        name: added
        groups: [newgroup, other]
        ansible_host: "{{ hostvars['pi-worker-01'].ansible_host }}"
        ansible_user: "{{ ansible_user }}"
        marker: 42
      register: ah
    - group_by:
        key: "by {{ inventory_hostname }}"
        parents: parentgrp
      register: gb
    - group_by:
        key: "by {{ inventory_hostname }}"
        parents: parentgrp
      register: gb2
    - debug:
        msg: "{{ inventory_hostname }} {{ (ah is changed) if inventory_hostname == 'pi-master' else (ah is defined) }} {{ gb is changed }} {{ gb2 is changed }} {{ groups['newgroup'] }} {{ groups['parentgrp'] | length }} {{ hostvars['added'].marker }}"
- hosts: newgroup
  gather_facts: false
  tasks:
    - command: hostname
      register: h
    - debug:
        msg: "{{ inventory_hostname }} {{ h.stdout }} {{ marker }} {{ group_names }}"
- hosts: parentgrp
  gather_facts: false
  tasks:
    - debug:
        msg: "{{ inventory_hostname }} {{ group_names | select('match', 'by|parent') | list }}"
"#,
    );
    let run = env.apply(&pb, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    let added: Vec<Value> = run
        .events()
        .into_iter()
        .filter(|e| e["event"] == "host_result" && e["task_id"] == 1)
        .collect();
    assert_eq!(added.len(), 1, "add_host ran once: {added:?}");
    assert_eq!(added[0]["host"], "pi-master");
    assert_eq!(added[0]["status"], "changed");
    assert_eq!(
        messages(&run),
        [
            "pi-master True True False ['added'] 2 42",
            "pi-worker-01 False True False ['added'] 2 42",
            "added pi-worker-01 42 ['newgroup', 'other']",
            "pi-master ['by-pi-master', 'parentgrp']",
            "pi-worker-01 ['by-pi-worker-01', 'parentgrp']",
        ],
        "{}",
        run.all()
    );
}

/// Looped `add_host` and `group_by` run per item, `changed_when` judged
/// after the inventory said whether it changed; an error in `changed_when`
/// is kept as `changed_when_result`, as Ansible keeps it. A host put in a
/// group leaves `ungrouped`.
#[test]
fn looped_changes_are_judged_per_item() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pb = r#"- hosts: all
  gather_facts: false
  tasks:
    - add_host:
        name: "h{{ item }}"
      loop: [1, 2, 1]
      register: a
    - group_by:
        key: "g{{ item }}"
      loop: [1, 2]
      changed_when: item == 2
      register: g
    - command: "true"
      changed_when: no_such_var
      register: bad
      ignore_errors: true
    - debug:
        msg: "{{ a.results | map(attribute='changed') | list }} {{ g.results | map(attribute='changed') | list }} {{ groups['ungrouped'] | sort }} {{ bad.changed_when_result is search('no_such_var') }}"
"#;
    let run = crate::local::local(dir.path(), pb, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(
        messages(&run).last().map(String::as_str),
        Some("[True, True, False] [False, True] ['h1', 'h2'] True"),
        "{}",
        run.all()
    );
}
