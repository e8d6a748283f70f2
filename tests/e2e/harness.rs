//! A small harness: a lab of real OpenSSH nodes on its own address block, a
//! scratch directory for playbooks, and a way to run the `drover` binary
//! against them and read its JSON events.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};

use drover::lab::{Arch, Lab, LabConfig, LabError};
use drover::secret::Secret;
use serde_json::Value;

/// Each test's lab gets its own 127.0.N.x block so tests run in parallel.
/// `DROVER_TEST_BLOCK` moves the first block (two checkouts testing on one
/// machine at once); 0 means the default.
static NEXT_BLOCK: AtomicU8 = AtomicU8::new(0);

fn next_block() -> u8 {
    let first = std::env::var("DROVER_TEST_BLOCK")
        .ok()
        .and_then(|b| b.parse::<u8>().ok())
        .unwrap_or(20);
    let _ = NEXT_BLOCK.compare_exchange(0, first, Ordering::SeqCst, Ordering::SeqCst);
    NEXT_BLOCK.fetch_add(1, Ordering::SeqCst)
}

pub fn require_root() {
    // SAFETY-free check through the environment of the process owner.
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .unwrap_or_default();
    assert_eq!(
        uid, "0",
        "the end-to-end tests start real sshd nodes and need root (CI runs them as root)"
    );
}

pub struct Env {
    pub lab: Lab,
    pub dir: tempfile::TempDir,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The JSON events (with `--output json`).
    pub fn events(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The recap: host → counters.
    pub fn recap(&self) -> BTreeMap<String, Value> {
        self.events()
            .into_iter()
            .rev()
            .find_map(|e| e.get("recap").and_then(Value::as_object).cloned())
            .map(|m| m.into_iter().collect())
            .unwrap_or_else(|| panic!("no recap in output:\n{}\n{}", self.stdout, self.stderr))
    }

    /// Sum of one counter over all hosts.
    pub fn total(&self, counter: &str) -> u64 {
        self.recap()
            .values()
            .map(|c| c[counter].as_u64().unwrap_or(0))
            .sum()
    }

    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

impl Env {
    pub fn new(nodes: usize) -> Env {
        Env::with(nodes, None)
    }

    pub fn with(nodes: usize, sudo_password: Option<&str>) -> Env {
        Env::start(nodes, sudo_password, 22)
    }

    /// A lab whose nodes' sshd listen on `port` instead of 22.
    #[allow(dead_code)] // used by the fault tests only
    pub fn with_port(nodes: usize, port: u16) -> Env {
        Env::start(nodes, None, port)
    }

    fn start(nodes: usize, sudo_password: Option<&str>, port: u16) -> Env {
        let cfg = LabConfig {
            sudo_password: sudo_password.map(Secret::new),
            port,
            ..LabConfig::default()
        };
        Env::try_start(nodes, cfg).expect("lab starts")
    }

    /// A lab of arm64 nodes (Debian arm64 under qemu), or why this machine
    /// cannot run one: the caller then skips, saying so.
    pub fn arm64(nodes: usize) -> Result<Env, String> {
        let cfg = LabConfig {
            arch: Arch::Arm64,
            ..LabConfig::default()
        };
        match Env::try_start(nodes, cfg) {
            Ok(env) => Ok(env),
            Err(LabError::Arm64Unavailable(why)) => Err(why),
            Err(e) => panic!("arm64 lab starts: {e}"),
        }
    }

    /// `cfg` with this test's directory, block and node count.
    fn try_start(nodes: usize, cfg: LabConfig) -> Result<Env, LabError> {
        require_root();
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = LabConfig {
            dir: dir.path().join("lab"),
            block: format!("127.0.{}", next_block()),
            nodes,
            authorize_caller_keys: false,
            ..cfg
        };
        Lab::start(cfg).map(|lab| Env { lab, dir })
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Write a file under the scratch directory.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, text).expect("write");
        p
    }

    /// A file as a node sees it (from its overlay's upper directory).
    pub fn node_file(&self, node: &str, path: &str) -> Option<String> {
        let p = self.lab.node_root(node).join(path.trim_start_matches('/'));
        std::fs::read_to_string(p).ok()
    }

    pub fn node_path(&self, node: &str, path: &str) -> PathBuf {
        self.lab.node_root(node).join(path.trim_start_matches('/'))
    }

    pub fn node_names(&self) -> Vec<String> {
        self.lab.nodes().iter().map(|n| n.name.clone()).collect()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_drover"));
        cmd.args(args)
            .current_dir(self.dir.path())
            .env_remove("SSH_AUTH_SOCK")
            .env("HOME", self.dir.path());
        cmd
    }

    /// `drover apply -i <lab inventory> PLAYBOOK --output json ARGS...`
    pub fn apply(&self, playbook: &Path, args: &[&str]) -> Run {
        let inv = self.lab.inventory_path();
        let mut all = vec![
            "apply",
            playbook.to_str().expect("utf8"),
            "-i",
            inv.to_str().expect("utf8"),
        ];
        if !args.contains(&"--output") {
            all.extend(["--output", "json"]);
        }
        all.extend(args);
        self.run(&all)
    }

    pub fn run(&self, args: &[&str]) -> Run {
        let out: Output = self.command(args).output().expect("drover runs");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Start drover and hand back the child with its stdout piped.
    pub fn spawn(&self, playbook: &Path, args: &[&str]) -> Child {
        let inv = self.lab.inventory_path();
        let mut all = vec![
            "apply",
            playbook.to_str().expect("utf8"),
            "-i",
            inv.to_str().expect("utf8"),
            "--output",
            "json",
        ];
        all.extend(args);
        self.command(&all)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("drover starts")
    }

    /// Every file under each node's upper directory with its content hash,
    /// leaving out what sshd and sudo write themselves on each login.
    pub fn snapshot(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for name in self.node_names() {
            let root = self.lab.node_root(&name);
            walk(&root, &root, &name, &mut out);
        }
        out
    }
}

fn walk(root: &Path, dir: &Path, node: &str, out: &mut BTreeMap<String, String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let rel = p
            .strip_prefix(root)
            .expect("under root")
            .display()
            .to_string();
        if rel.starts_with("var/log")
            || rel.starts_with("var/lib/sudo")
            || rel.ends_with(".sudo_as_admin_successful")
            || rel.starts_with("run")
        {
            continue;
        }
        let meta = match std::fs::symlink_metadata(&p) {
            Ok(m) => m,
            Err(_) => continue,
        };
        use std::os::unix::fs::MetadataExt;
        let desc = if meta.is_dir() {
            walk(root, &p, node, out);
            format!("dir {:o} {}:{}", meta.mode(), meta.uid(), meta.gid())
        } else {
            let content = std::fs::read(&p).unwrap_or_default();
            format!(
                "file {:o} {}:{} {}",
                meta.mode(),
                meta.uid(),
                meta.gid(),
                drover::modules::fs::sha1_hex(&content)
            )
        };
        out.insert(format!("{node}:/{rel}"), desc);
    }
}

/// Read a child's stdout lines until one contains `needle`; returns the
/// lines read so far and the reader to go on with.
pub fn read_until(
    child: &mut Child,
    needle: &str,
) -> (Vec<String>, BufReader<std::process::ChildStdout>) {
    let stdout = child.stdout.take().expect("piped");
    let mut reader = BufReader::new(stdout);
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line).expect("read");
        if n == 0 {
            panic!("drover ended before '{needle}':\n{}", lines.join(""));
        }
        let found = line.contains(needle);
        lines.push(line);
        if found {
            return (lines, reader);
        }
    }
}
