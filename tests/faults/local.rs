//! Running a playbook on the control machine itself
//! (`ansible_connection=local`), for tests of playbook semantics that need
//! no lab node.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::Run;

/// Run `playbook` (text) against localhost with a local connection, from
/// `dir` (also its HOME), with JSON output.
pub fn local(dir: &Path, playbook: &str, args: &[&str]) -> Run {
    local_through(
        Command::new(env!("CARGO_BIN_EXE_drover")),
        dir,
        playbook,
        args,
    )
}

/// [`local`] with `drover` the command that starts drover (inside a
/// namespace, say).
pub fn local_through(mut drover: Command, dir: &Path, playbook: &str, args: &[&str]) -> Run {
    std::fs::write(dir.join("hosts"), "localhost ansible_connection=local\n").expect("write");
    std::fs::write(dir.join("site.yml"), playbook).expect("write");
    let out = drover
        .args(["apply", "site.yml", "-i", "hosts", "--output", "json"])
        .args(args)
        .current_dir(dir)
        .env("HOME", dir)
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .expect("drover runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The results (`host_result` events) of the tasks named `name`, in order.
pub fn results(run: &Run, name: &str) -> Vec<serde_json::Value> {
    let events = run.events();
    let ids: Vec<u64> = events
        .iter()
        .filter(|e| e["event"] == "task_start" && e["task"] == name)
        .filter_map(|e| e["task_id"].as_u64())
        .collect();
    events
        .into_iter()
        .filter(|e| e["event"] == "host_result")
        .filter(|e| e["task_id"].as_u64().is_some_and(|i| ids.contains(&i)))
        .collect()
}

/// Outcomes of the tasks named `name`, in order (one per host result).
pub fn statuses(run: &Run, name: &str) -> Vec<String> {
    results(run, name)
        .iter()
        .map(|e| e["status"].as_str().unwrap_or("?").to_string())
        .collect()
}

/// A scratch directory with an inventory of the control machine.
pub struct Local {
    dir: tempfile::TempDir,
}

impl Local {
    pub fn new() -> Local {
        let dir = tempfile::tempdir().expect("tempdir");
        let l = Local { dir };
        l.write(
            "inventory.yml",
            "all:\n  hosts:\n    localhost: {ansible_connection: local}\n",
        );
        l
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        // `@D@` stands for the scratch directory.
        let text = text.replace("@D@", self.dir.path().to_str().expect("utf8"));
        std::fs::write(&p, text).expect("write");
        p
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    pub fn apply(&self, playbook: &Path, args: &[&str]) -> Run {
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

    /// Apply and insist on success.
    pub fn ok(&self, playbook: &Path, args: &[&str]) -> Run {
        let run = self.apply(playbook, args);
        assert_eq!(run.code, 0, "drover failed:\n{}", run.all());
        run
    }
}
