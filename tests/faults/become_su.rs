//! `become_method: su` on a real node, as Ansible's become target uses it:
//! su's password prompt is answered over the SSH session (the password on
//! su's stdin, never on a command line nor in output), a wrong password
//! fails the task, and variables win over keywords (`ansible_become: no`
//! in a `become: true` play).

use std::process::Command;

use crate::harness::Env;
use crate::local::statuses;

const PW: &str = "Su-pa55word-q9";

#[test]
#[ignore = "needs root: run scripts/test"]
fn become_su_answers_the_password_prompt_and_hides_it() {
    let env = Env::new(1);
    let node = env.node_names()[0].clone();
    let hash = Command::new("openssl")
        .args(["passwd", "-6", PW])
        .output()
        .expect("openssl runs");
    let hash = String::from_utf8_lossy(&hash.stdout).trim().to_string();
    let pb = env.write(
        "pb.yml",
        &format!(
            "- hosts: all
  gather_facts: false
  become: true
  tasks:
    - user: {{name: sutarget, password: '{hash}', shell: /bin/sh}}
    - name: connecting user
      command: whoami
      register: me
      vars: {{ansible_become: no}}
    - name: as sutarget
      command: whoami
      register: who
      become_user: sutarget
      become_method: su
      vars: {{ansible_become_password: {PW}}}
    - name: record
      copy: {{dest: /tmp/who, content: '{{{{ me.stdout }}}} {{{{ who.stdout }}}}'}}
"
        ),
    );
    // A run of its own: a connection keeps the shell su started for it.
    let wrong = env.write(
        "wrong.yml",
        "- hosts: all
  gather_facts: false
  tasks:
    - name: wrong password
      command: whoami
      become: true
      become_user: sutarget
      vars: {ansible_become_method: su, ansible_become_password: not-it}
      ignore_errors: true
",
    );
    let run = env.apply(&pb, &["-vvvv"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        !run.all().contains(PW),
        "the su password leaked:\n{}",
        run.all()
    );
    assert_eq!(statuses(&run, "as sutarget"), ["changed"], "{}", run.all());
    assert_eq!(
        env.node_file(&node, "/tmp/who").as_deref(),
        Some("admin sutarget")
    );
    let run = env.apply(&wrong, &[]);
    assert_eq!(
        statuses(&run, "wrong password"),
        ["failed"],
        "{}",
        run.all()
    );
    assert!(
        run.all().contains("Authentication failure") || run.all().contains("incorrect su password"),
        "{}",
        run.all()
    );
}

/// become target: its tasks are named `... ({{ become_test }})`, from the
/// including task's loop; drover showed the names unrendered.
#[test]
fn task_names_render_with_the_include_loop_variables() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("inc.yml"),
        "- name: \"as {{ cfg.method }} ({{ label }})\"\n  debug: {msg: hi}\n- name: \"{{ undefined_thing }}\"\n  debug: {msg: hi}\n",
    )
    .expect("write");
    let run = crate::local::local(
        dir.path(),
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n    - include_tasks: inc.yml\n      vars: {label: \"{{ cfg.method }}-x\"}\n      loop: [{method: su}]\n      loop_control: {loop_var: cfg}\n",
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(statuses(&run, "as su (su-x)"), ["ok"], "{}", run.all());
    // A name that does not render is shown as written, as Ansible does.
    assert_eq!(
        statuses(&run, "{{ undefined_thing }}"),
        ["ok"],
        "{}",
        run.all()
    );
}
