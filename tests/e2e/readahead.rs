//! Read-ahead (batched state reads): a converged run reads each host in a
//! handful of round trips whatever the number of tasks, and a task still
//! sees what an earlier task of the same run wrote.

use std::path::Path;

use crate::harness::Env;

fn mixed() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/playbooks/mixed.yml")
}

/// Commands sent to hosts, from drover's debug log (one line per exec).
fn execs(log: &str) -> usize {
    log.lines()
        .filter(|l| l.contains(" exec ") && l.contains("command"))
        .count()
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn a_converged_run_needs_few_round_trips_per_host() {
    let env = Env::new(2);
    let first = env.apply(&mixed(), &[]);
    assert_eq!(first.code, 0, "{}", first.all());
    let run = env.apply(&mixed(), &["-vvvv", "--output", "human"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let tasks = 30;
    let per_host = execs(&run.all()) / 2;
    assert!(
        per_host <= 10,
        "{per_host} round trips per host for {tasks} tasks:\n{}",
        run.stderr
    );
    let plain = env.apply(&mixed(), &["-vvvv", "--output", "human", "--no-read-ahead"]);
    assert_eq!(plain.code, 0, "{}", plain.all());
    assert!(
        execs(&plain.all()) / 2 >= tasks,
        "without read-ahead every task reads on its own"
    );
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn a_task_sees_what_an_earlier_task_wrote() {
    let env = Env::new(1);
    let pb = env.write(
        "rw.yml",
        r#"- hosts: all
  gather_facts: false
  become: true
  tasks:
    - file: {path: /opt/ra, state: directory, mode: "0755"}
    - copy: {content: "one\n", dest: /opt/ra/f, mode: "0644"}
      register: w1
    - slurp: {src: /opt/ra/f}
      register: r1
    - lineinfile: {path: /opt/ra/f, line: two}
    - slurp: {src: /opt/ra/f}
      register: r2
    - stat: {path: /opt/ra/f}
      register: s2
    - assert:
        that:
          - r1.content | b64decode == "one\n"
          - r2.content | b64decode == "one\ntwo\n"
          - s2.stat.size == 8
"#,
    );
    // The second round starts from "one\ntwo\n": its read-ahead sees that,
    // and the reads after the copy must not be served from it.
    for round in ["first", "second"] {
        let run = env.apply(&pb, &[]);
        assert_eq!(run.code, 0, "{round} run:\n{}", run.all());
    }
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn plays_and_loops_do_not_end_the_read_window() {
    let env = Env::new(2);
    let pb = env.write(
        "plays.yml",
        r#"- hosts: all
  gather_facts: false
  become: true
  tasks:
    - file: {path: /opt/rw, state: directory, mode: "0755"}
    - copy: {content: "{{ item }}\n", dest: "/opt/rw/{{ item }}", mode: "0644"}
      loop: "{{ groups['all'] }}"
    - lineinfile: {path: /opt/rw/list, line: "{{ item }}", create: true}
      loop: [a, b, c]
- hosts: all
  gather_facts: false
  become: true
  tasks:
    - file: {path: /opt/rw/two, state: directory, mode: "0750"}
    - copy: {content: "two\n", dest: /opt/rw/two/f}
"#,
    );
    let first = env.apply(&pb, &[]);
    assert_eq!(first.code, 0, "{}", first.all());
    let run = env.apply(&pb, &["-vvvv", "--output", "human"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("changed=0"), "{}", run.stdout);
    let per_host = execs(&run.all()) / 2;
    assert_eq!(
        per_host, 1,
        "one read for both plays and every loop item:\n{}",
        run.stderr
    );
}

/// A command may change anything, so what follows it is read after it;
/// that read rides on the command itself: one exec per command, plus the
/// first read.
#[test]
#[ignore = "needs root: run scripts/test"]
fn reads_after_a_command_ride_on_it() {
    let env = Env::new(2);
    let pb = env.write(
        "ride.yml",
        r#"- hosts: all
  gather_facts: false
  become: true
  tasks:
    - file: {path: /opt/ride, state: directory, mode: "0755"}
    - copy: {content: "0\n", dest: /opt/ride/0}
    - command: uname -r
      changed_when: false
    - copy: {content: "{{ item }}\n", dest: "/opt/ride/{{ item }}", mode: "0644"}
      loop: [a, b]
- hosts: all
  gather_facts: false
  become: true
  tasks:
    - lineinfile: {path: /opt/ride/list, line: x, create: true}
    - command: "cat /opt/ride/a"
      register: seen
      changed_when: false
    - copy: {content: "seen\n", dest: /opt/ride/seen}
    - assert: {that: seen.stdout == 'a'}
"#,
    );
    let first = env.apply(&pb, &[]);
    assert_eq!(first.code, 0, "{}", first.all());
    let run = env.apply(&pb, &["-vvvv", "--output", "human"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("changed=0"), "{}", run.stdout);
    assert_eq!(
        execs(&run.all()) / 2,
        3,
        "a read, then two commands carrying the reads after them:\n{}",
        run.stderr
    );
    // What rode on a command was read after it: a command that changes a
    // file is seen by the next task.
    let pb = env.write(
        "after.yml",
        r#"- hosts: all
  gather_facts: false
  become: true
  tasks:
    - copy: {content: "one\n", dest: /opt/ride/after}
    - command: "sh -c 'echo two >/opt/ride/after'"
      changed_when: false
    - copy: {content: "one\n", dest: /opt/ride/after}
      register: again
    - assert: {that: again is changed}
"#,
    );
    let run = env.apply(&pb, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
}

/// A first run reads ahead too: a write forgets only the reads it can
/// change (the entries it made or rewrote, the directories holding them,
/// and what could not be resolved before a directory was made), so the
/// tasks after it are not read again one by one.
#[test]
#[ignore = "needs root: run scripts/test"]
fn a_first_run_reads_ahead_past_its_writes() {
    let env = Env::new(2);
    let pb = env.write(
        "first.yml",
        r#"- hosts: all
  gather_facts: false
  become: true
  tasks:
    - file: {path: /opt/first, state: directory, mode: "0755"}
    - copy: {content: "a\n", dest: /opt/first/a, mode: "0644"}
    - copy: {content: "b\n", dest: /opt/first/b, mode: "0644"}
    - lineinfile: {path: /opt/first/list, line: x, create: true, mode: "0644"}
    - file: {path: /opt/first/sub, state: directory, mode: "0755"}
    - copy: {content: "c\n", dest: /opt/first/sub/c, mode: "0644"}
    - template: {src: /dev/null, dest: /opt/first/sub/d, mode: "0644"}
"#,
    );
    let first = env.apply(&pb, &["-vvvv", "--output", "human"]);
    assert_eq!(first.code, 0, "{}", first.all());
    assert!(first.stdout.contains("changed=7"), "{}", first.stdout);
    // Seven writes; a read before them all, again after each directory is
    // made (what is in it could not be resolved before). Each task read
    // on its own would be seven more.
    assert_eq!(
        execs(&first.all()) / 2,
        7 + 3,
        "one read per directory made, then writes:\n{}",
        first.stderr
    );
    let again = env.apply(&pb, &["-vvvv", "--output", "human"]);
    assert!(again.stdout.contains("changed=0"), "{}", again.stdout);
    assert_eq!(execs(&again.all()) / 2, 1, "{}", again.stderr);
}
