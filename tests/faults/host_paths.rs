//! Path arguments are expanded on the host as Ansible's `type: path`
//! expands them (`expanduser(expandvars(...))`): a leading `~` and the set
//! `$VAR`/`${VAR}`s, in the task's environment; the rest of the path stays
//! literal. copy's `Duplicate authorized_keys` task (`src:
//! $HOME/.ssh/authorized_keys`, `remote_src: yes`) failed with "not found".
//! These run on the control machine (`ansible_connection: local`).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::Run;

/// A scratch directory with an inventory of the control machine.
struct Local {
    dir: tempfile::TempDir,
}

impl Local {
    fn new() -> Local {
        let dir = tempfile::tempdir().expect("tempdir");
        let l = Local { dir };
        l.write(
            "inventory.yml",
            "all:\n  hosts:\n    localhost: {ansible_connection: local}\n",
        );
        l
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Write a file under the scratch directory, `@D@` standing for it.
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        let text = text.replace("@D@", self.dir.path().to_str().expect("utf8"));
        std::fs::write(&p, text).expect("write");
        p
    }

    fn apply(&self, playbook: &Path, args: &[&str]) -> Run {
        let out = Command::new(env!("CARGO_BIN_EXE_drover"))
            .arg("apply")
            .arg(playbook)
            .arg("-i")
            .arg(self.path("inventory.yml"))
            .args(["--output", "json"])
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("run drover");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

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
