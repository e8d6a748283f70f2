//! Path arguments are expanded on the host as Ansible's `type: path`
//! expands them (`expanduser(expandvars(...))`): a leading `~` and the set
//! `$VAR`/`${VAR}`s, in the task's environment; the rest of the path stays
//! literal. copy's `Duplicate authorized_keys` task (`src:
//! $HOME/.ssh/authorized_keys`, `remote_src: yes`) failed with "not found".
//! These run on the control machine (`ansible_connection: local`).

use crate::local::Local;

#[test]
fn tilde_and_env_vars_in_path_arguments_expand_on_the_host() {
    let l = Local::new();
    let pb = l.write(
        "pb.yml",
        r#"- hosts: all
  gather_facts: false
  environment: {HOME: "@D@/home", HF_SUB: sub}
  tasks:
    - file: {path: "~/$HF_SUB", state: directory}
    - copy: {dest: "~/${HF_SUB}/a.txt", content: "a\n"}
    - name: Duplicate with remote_src
      copy: {src: "$HOME/sub/a.txt", dest: "~/b.txt", remote_src: true}
    - stat: {path: "~/b.txt"}
      register: st
    - copy: {dest: "@D@/out", content: "{{ st.stat.exists }} {{ st.stat.path }}\n"}
    - name: an unset variable stays as written; quotes stay literal
      copy: {dest: "$HOME/$HF_UNSET_X 'q'", content: "u\n"}
"#,
    );
    let first = l.apply(&pb, &[]);
    assert_eq!(first.code, 0, "first run:\n{}", first.all());
    let home = l.path("home");
    assert_eq!(
        std::fs::read_to_string(home.join("b.txt")).expect("b.txt"),
        "a\n"
    );
    assert_eq!(
        std::fs::read_to_string(l.path("out")).expect("out"),
        format!("True {}\n", home.join("b.txt").display())
    );
    assert!(home.join("$HF_UNSET_X 'q'").is_file());
    // Converged, and --check changes nothing.
    let again = l.apply(&pb, &[]);
    assert_eq!(again.code, 0, "second run:\n{}", again.all());
    assert_eq!(again.total("changed"), 0, "second run:\n{}", again.all());
    let check = l.apply(&pb, &["--check"]);
    assert_eq!(check.code, 0, "check run:\n{}", check.all());
    assert_eq!(check.total("changed"), 0, "check run:\n{}", check.all());
}
