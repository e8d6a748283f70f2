//! Semantics real roles rely on (issue 11, part 3 and the loop items of
//! part 6), each checked against what ansible-playbook 2.19 does on the
//! same playbook. These run on the control machine (`ansible_connection:
//! local`): what is tested is the engine, not the transport.

use crate::local::Local;

#[test]
fn a_false_when_skips_a_task_whose_loop_is_undefined() {
    let l = Local::new();
    let pb = l.write(
        "pb.yml",
        r#"- hosts: all
  gather_facts: false
  tasks:
    - name: undefined loop, false when
      debug: msg=x
      loop: "{{ nothere }}"
      when: false
      register: r
    - copy:
        dest: "@D@/out"
        content: "{{ r.skipped }}\n"
"#,
    );
    l.ok(&pb, &[]);
    assert_eq!(l.read("out"), "True\n");
    // With a true `when`, the undefined loop is the error it is in Ansible.
    let pb = l.write(
        "pb2.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - debug: msg=x\n      loop: \"{{ nothere }}\"\n      when: true\n",
    );
    let run = l.apply(&pb, &[]);
    assert_ne!(run.code, 0, "{}", run.all());
    assert!(run.all().contains("nothere"), "{}", run.all());
}

#[test]
fn include_tasks_with_a_false_when_never_loads_its_file() {
    let l = Local::new();
    let pb = l.write(
        "pb.yml",
        r#"- hosts: all
  gather_facts: false
  tasks:
    - include_tasks: absent.yml
      when: false
    - include_tasks: also-absent.yml
      loop: "{{ nothere }}"
      when: false
    - copy: {dest: "@D@/out", content: "ran\n"}
"#,
    );
    l.ok(&pb, &[]);
    assert_eq!(l.read("out"), "ran\n");
}

#[test]
fn loop_variables_are_bound_inside_looped_includes() {
    let l = Local::new();
    l.write(
        "inc/item.yml",
        r#"- copy:
    dest: "@D@/out-{{ thing }}"
    content: "{{ thing }} {{ idx }}\n"
- block:
    - copy:
        dest: "@D@/block-{{ thing }}"
        content: "{{ thing }}\n"
      when: thing != 'b'
"#,
    );
    let pb = l.write(
        "pb.yml",
        r#"- hosts: all
  gather_facts: false
  tasks:
    - include_tasks: "inc/{{ 'item' }}.yml"
      loop: [a, b]
      loop_control: {loop_var: thing, index_var: idx}
    - include_tasks: inc/item.yml
      with_items: [c]
      loop_control: {loop_var: thing, index_var: idx}
"#,
    );
    l.ok(&pb, &[]);
    assert_eq!(l.read("out-a"), "a 0\n");
    assert_eq!(l.read("out-b"), "b 1\n");
    assert_eq!(l.read("out-c"), "c 0\n");
    assert_eq!(l.read("block-a"), "a\n");
    assert!(!l.path("block-b").exists());
}

#[test]
fn templated_keyword_values_are_rendered_per_host_as_booleans() {
    let l = Local::new();
    let pb = l.write(
        "pb.yml",
        r#"- hosts: all
  gather_facts: false
  vars:
    k3s_become: false
    ign: "yes"
    quiet: "True"
    dry: 1
  become: "{{ k3s_become }}"
  tasks:
    - fail: msg=x
      ignore_errors: "{{ ign }}"
    - fail: msg=y
      ignore_errors: "{{ ansible_check_mode }}"
      when: ansible_check_mode
    - copy: {dest: "@D@/dry", content: "x\n"}
      check_mode: "{{ dry }}"
    - copy: {dest: "@D@/wet", content: "x\n"}
      check_mode: "{{ not dry }}"
    - debug: msg="secret-{{ 40 + 2 }}"
      no_log: "{{ quiet }}"
    - command: echo "{{ 'on' }}"
      become: "{{ k3s_become | bool }}"
      run_once: "{{ 'y' }}"
"#,
    );
    let run = l.ok(&pb, &[]);
    assert!(!l.path("dry").exists(), "check_mode from a template");
    assert!(l.path("wet").exists());
    assert!(!run.stdout.contains("secret-42"), "{}", run.stdout);
    assert_eq!(run.total("ignored"), 1, "{}", run.all());
    let run = l.ok(&pb, &["--check"]);
    assert_eq!(run.total("ignored"), 2, "{}", run.all());

    // A value Ansible's boolean() refuses fails the task, naming the keyword.
    let pb = l.write(
        "bad.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - command: /bin/true\n      ignore_errors: \"{{ 'maybe' }}\"\n",
    );
    let run = l.apply(&pb, &[]);
    assert_ne!(run.code, 0, "{}", run.all());
    assert!(run.all().contains("ignore_errors"), "{}", run.all());
}

#[test]
fn files_are_found_along_ansibles_search_path() {
    let l = Local::new();
    l.write("roles/r/files/in-role.txt", "role file\n");
    l.write("roles/r/templates/t.j2", "role template {{ who }}\n");
    l.write("roles/r/vars/Debian.yml", "os_var: from-role-vars\n");
    l.write(
        "roles/r/tasks/main.yml",
        r#"- include_vars: "{{ item }}"
  with_first_found:
    - "Nope.yml"
    - "Debian.yml"
- include_tasks: sub/more.yml
- copy:
    dest: "@D@/role-out"
    content: "{{ lookup('file', 'in-role.txt') }}|{{ lookup('template', 't.j2') | trim }}|{{ os_var }}|{{ role_path is abs }}\n"
"#,
    );
    l.write(
        "roles/r/tasks/sub/more.yml",
        "- copy: {dest: \"@D@/sub-out\", content: \"from sub\\n\"}\n",
    );
    l.write("sub/files/next-to-include.txt", "beside the file\n");
    l.write(
        "sub/tasks/inc.yml",
        "- copy: {src: next-to-include.txt, dest: \"@D@/inc-out\"}\n",
    );
    l.write("sub/vars.yml", "imported_var: sub-dir\n");
    l.write(
        "sub/play.yml",
        "- hosts: all\n  gather_facts: false\n  vars_files: [vars.yml]\n  tasks:\n    - copy: {dest: \"@D@/imp-out\", content: \"{{ imported_var }}\\n\"}\n",
    );
    let pb = l.write(
        "pb.yml",
        r#"- hosts: all
  gather_facts: false
  vars: {who: me}
  roles: [r]
  tasks:
    - include_tasks: sub/tasks/inc.yml
- import_playbook: sub/play.yml
"#,
    );
    l.ok(&pb, &[]);
    assert_eq!(
        l.read("role-out"),
        "role file|role template me|from-role-vars|True\n"
    );
    assert_eq!(l.read("sub-out"), "from sub\n");
    assert_eq!(l.read("inc-out"), "beside the file\n");
    assert_eq!(l.read("imp-out"), "sub-dir\n");
}

#[test]
fn lookup_loops_follow_ansible() {
    let l = Local::new();
    l.write("files/a.conf", "A");
    l.write("files/b.conf", "B");
    l.write("files/c.txt", "C");
    let pb = l.write(
        "pb.yml",
        r#"- hosts: all
  gather_facts: false
  vars:
    xs: [1, 2, 3]
    ys: [a, b]
  tasks:
    - set_fact: {seq: [], tog: [], globbed: [], nest: [], stopped: []}
    - set_fact: {seq: "{{ seq + [item] }}"}
      with_sequence: start=1 end=9 stride=3 format=n%02d
    - set_fact: {seq: "{{ seq + [item] }}"}
      with_sequence: count=2
    - set_fact: {seq: "{{ seq + [item] }}"}
      with_sequence: start=10 end=6 stride=-2
    - set_fact: {tog: "{{ tog + [item] }}"}
      with_together: ["{{ xs }}", "{{ ys }}"]
    - set_fact: {globbed: "{{ globbed + [item | basename] }}"}
      with_fileglob: ["*.conf"]
    - set_fact: {nest: "{{ nest + [item | join('')] }}"}
      with_nested: [[x, y], [1, 2]]
    - command: echo {{ item }}
      register: echoed
      loop: [1, 2, 3, 4]
      loop_control:
        break_when: echoed.stdout == '2'
    - set_fact:
        found: "{{ lookup('first_found', {'files': ['missing.conf', 'b.conf'], 'paths': ['@D@/files']}) | basename }}"
        nothing: "{{ query('first_found', 'missing.conf', skip=True) }}"
        piped: "{{ lookup('pipe', 'echo one; echo two') }}"
        globs: "{{ lookup('fileglob', 'files/*.conf') | split(',') | map('basename') | list }}"
    - copy:
        dest: "@D@/out"
        content: |
          {{ seq | join(',') }}
          {{ tog | to_json }}
          {{ globbed | join(',') }}
          {{ nest | join(',') }}
          {{ echoed.results | length }}
          {{ found }} {{ nothing | length }} {{ piped | replace('\n', '/') }}
          {{ globs | join(',') }}
"#,
    );
    l.ok(&pb, &[]);
    assert_eq!(
        l.read("out"),
        "n01,n04,n07,1,2,10,8,6\n\
         [[1, \"a\"], [2, \"b\"], [3, null]]\n\
         a.conf,b.conf\n\
         x1,x2,y1,y2\n\
         2\n\
         b.conf 0 one/two\n\
         a.conf,b.conf\n"
    );
}

#[test]
fn import_playbook_takes_vars_tags_and_when() {
    let l = Local::new();
    l.write(
        "sub/one.yml",
        r#"- hosts: all
  gather_facts: false
  vars: {greeting: own}
  tasks:
    - copy: {dest: "@D@/one-{{ greeting }}", content: "x\n"}
    - copy: {dest: "@D@/one-untagged", content: "x\n"}
      tags: [other]
"#,
    );
    l.write(
        "sub/two.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - copy: {dest: \"@D@/two\", content: \"x\\n\"}\n",
    );
    let pb = l.write(
        "pb.yml",
        r#"- import_playbook: sub/one.yml
  vars: {greeting: imported}
  tags: [mine]
- import_playbook: sub/two.yml
  when: greeting is not defined and false
"#,
    );
    l.ok(&pb, &["--tags", "mine"]);
    assert!(l.path("one-imported").exists());
    assert!(
        l.path("one-untagged").exists(),
        "the import's tag reaches every task"
    );
    assert!(!l.path("one-own").exists());
    l.ok(&pb, &[]);
    assert!(!l.path("two").exists(), "the import's when skips its tasks");
}
