//! What a person watching a run sees: the human output of the real binary
//! against lab nodes (plain, as stdout is a pipe here), snapshotted, with
//! addresses, times and scratch paths filtered out.

use crate::harness::Env;

const PLAYBOOK: &str = r#"
- name: representative
  hosts: all
  gather_facts: false
  tasks:
    - name: write the motd
      copy: { content: "hello\n", dest: /tmp/drover-motd }
      notify: motd changed
    - name: write the motd again
      copy: { content: "hello\n", dest: /tmp/drover-motd }
    - name: only on the first node
      command: 'true'
      changed_when: false
      when: inventory_hostname == 'pi-master'
    - name: files
      copy: { content: "{{ item }}\n", dest: "/tmp/drover-{{ item }}" }
      loop: [a, b]
    - name: optional
      command: 'false'
      ignore_errors: true
      when: inventory_hostname == 'pi-master'
    - name: wait for a file that never comes
      command: test -e /tmp/never
      register: probe
      until: probe.rc == 0
      retries: 2
      delay: 0
      changed_when: false
      when: inventory_hostname == 'pi-worker-01'
  handlers:
    - name: motd changed
      command: 'true'
"#;

fn filtered(text: &str, env: &Env) -> String {
    let dir = env.dir.path().display().to_string();
    let text = text.replace(&dir, "[DIR]");
    let addr = regex::Regex::new(r"127\.0\.\d+\.\d+").expect("regex");
    let date = regex::Regex::new(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+").expect("regex");
    let delta = regex::Regex::new(r"\d+:\d\d:\d\d\.\d+").expect("regex");
    let secs = regex::Regex::new(r"\d+\.\d\ds\b").expect("regex");
    let text = addr.replace_all(&text, "[ADDR]");
    let text = date.replace_all(&text, "[DATE]");
    let text = delta.replace_all(&text, "[DELTA]");
    secs.replace_all(&text, "[TIME]").into_owned()
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn human_output_of_a_representative_run() {
    let mut env = Env::new(3);
    env.lab.stop_node("pi-worker-02").expect("stop node");
    let pb = env.write("site.yml", PLAYBOOK);
    // One fork: results print in inventory order, as the snapshot needs.
    let run = env.apply(&pb, &["--output", "human", "--diff", "-f", "1"]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        !run.stdout.contains('\x1b'),
        "escapes in a pipe:\n{}",
        run.stdout
    );
    insta::assert_snapshot!(filtered(&run.stdout, &env));
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn vvv_into_a_pipe_has_no_escapes() {
    let env = Env::new(1);
    let pb = env.write(
        "site.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - copy: { content: x, dest: /tmp/drover-x }\n    - copy: { content: y, dest: /tmp/drover-y }\n",
    );
    let run = env.apply(&pb, &["--output", "human", "-vvv"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stderr.contains("exec command: "), "{}", run.stderr);
    assert!(!run.all().contains('\x1b'), "{}", run.all());
    // Commands are logged as written, not as one escaped string.
    assert!(!run.stderr.contains("command=\""), "{}", run.stderr);
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn timings_list_each_task_after_the_recap() {
    let env = Env::new(1);
    let pb = env.write(
        "site.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: short\n      command: 'true'\n    - name: long\n      command: sleep 1\n",
    );
    let run = env.apply(&pb, &["--output", "human", "--timings"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let summary = run
        .stdout
        .split_once("TASK TIMINGS")
        .map(|(_, s)| s)
        .unwrap_or_else(|| panic!("no timings:\n{}", run.stdout));
    let lines: Vec<&str> = summary.lines().skip(1).collect();
    assert!(lines[0].starts_with("long ---"), "{summary}");
    assert!(lines[1].starts_with("short ---"), "{summary}");
    assert!(lines[2].starts_with("total ---"), "{summary}");
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn json_events_carry_task_ids_and_times() {
    let env = Env::new(1);
    let pb = env.write(
        "site.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - command: 'true'\n    - command: 'true'\n",
    );
    let run = env.apply(&pb, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    let events = run.events();
    let ids: Vec<u64> = events
        .iter()
        .filter(|e| e["event"] == "host_result")
        .map(|e| e["task_id"].as_u64().expect("task_id"))
        .collect();
    assert_eq!(ids, vec![1, 2]);
    let times: Vec<f64> = events
        .iter()
        .map(|e| e["time"].as_f64().expect("time"))
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
}
