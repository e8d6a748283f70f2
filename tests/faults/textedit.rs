//! The text-edit modules and command/shell as Ansible's integration
//! targets test them (issue 11): what a rewrite keeps, what the result
//! registers, on real lab nodes with become.

use crate::harness::Env;

#[test]
#[ignore = "needs root: run scripts/test"]
fn lineinfile_keeps_the_acl_and_registers_its_diff_list() {
    let env = Env::new(1);
    let pb = env.write(
        "site.yml",
        r#"
- hosts: all
  gather_facts: false
  become: true
  tasks:
    - copy: { content: "TEST\n", dest: /opt/acl.txt, mode: "0644" }
    - command: setfacl -m u:nobody:rwx /opt/acl.txt
    - lineinfile: { path: /opt/acl.txt, regexp: TEST, line: UPDATE }
      diff: true
      register: edit
    - command: getfacl -p /opt/acl.txt
      register: acl
    - command: ls /dev/null
      args: { executable: /bogus }
      register: ignored
    - assert:
        that:
          - "'user:nobody:rwx' in acl.stdout_lines"
          - edit.diff | length == 2
          - edit.diff[0].before == 'TEST\n'
          - edit.diff[0].after == 'UPDATE\n'
          - edit.diff[1].before_header == '/opt/acl.txt (file attributes)'
          - ignored.warnings | length == 1
"#,
    );
    let run = env.apply(&pb, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
}
