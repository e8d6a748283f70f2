//! The lab: machines on loopback addresses, one per node, each booting real
//! systemd and its OpenSSH server.
//!
//! Node K boots `/lib/systemd/systemd` as PID 1 of its own PID, mount, UTS
//! and cgroup namespaces (see [`init`]), on an overlay of the host's root
//! file system; its `ssh.service` listens on `<block>.K:22` (127.0.2.K by
//! default) only. The overlay's upper directory belongs to the node:
//! everything the node writes lands there, where tests can inspect it
//! ([`Lab::node_root`]). `reboot` in a node powers it off and its supervisor
//! boots it again on the same files.
//!
//! Nodes share the host's kernel and network. Units enabled on the host are
//! hidden from them and kernel-facing units masked; memory limits are not
//! enforced (no controller is delegated to a node); a daemon a node starts
//! on another address than its own collides with the same daemon elsewhere
//! ([`Lab::foreign_listeners`] finds them).
//!
//! Layout of a lab directory (a tmpfs mounted by the lab: overlayfs refuses
//! an upper directory on the file system of its lower `/`):
//!
//! ```text
//! <dir>/id_ed25519, id_ed25519.pub   the lab's client key, authorized on every node
//! <dir>/known_hosts                  every node's host keys, for strict checking
//! <dir>/inventory.yml                Ansible inventory (k3s_server, k3s_agents, k3s_cluster)
//! <dir>/state.json                   what `Lab::attach` needs to find the nodes again
//! <dir>/nodes/<name>/{upper,work,merged,console.log}
//! <dir>/nodes/<name>/proc/           files bind-mounted over the node's /proc/cgroups,
//!                                    boot_id (both rewritten at each boot), ip_forward,
//!                                    ipv6 forwarding
//! <dir>/network/                     shared by all nodes at /var/lib/drover-lab/network:
//!                                    apt/ (the lab's Debian repository), nfs/, k3s/
//! <dir>/k3s-airgap/{k3s,install.sh}  the k3s doubles, for an air-gapped install
//! ```
//!
//! Each node also has /etc/drover-lab/node.json (its name and address),
//! /boot/firmware/cmdline.txt, its own machine id, a drop-in making
//! ssh.service use the lab's sshd configuration, and apt sources naming
//! only the lab's repository (see [`doubles`] and [`seed`]).
//!
//! With [`LabConfig::arch`] set to [`Arch::Arm64`] the overlay's lower
//! layer is a Debian arm64 root run under qemu-user instead of the host's
//! `/`, and sshd serves the node from outside it (see [`arm64`]).
//!
//! Node 1 is `pi-master`, node K ≥ 2 is `pi-worker-(K-1)`, as on the real
//! cluster. Every node has the user `admin` (sudo, password `admin` unless
//! configured otherwise), fresh host keys and its own hostname.
//!
//! A node's processes are found through its cgroup: stopping a node powers
//! it off (SIGRTMIN+4 to its systemd), then kills whatever is left, its open
//! sessions with it.
//!
//! Everything here blocks (it waits for processes and ports): from async
//! code, call it through `tokio::task::spawn_blocking` or before the runtime
//! starts. Root is required. Labs that run at the same time need their own
//! directory and address block:
//!
//! ```no_run
//! use drover::lab::{Lab, LabConfig};
//!
//! let lab = Lab::start(LabConfig {
//!     dir: std::env::temp_dir().join("my-test-lab"),
//!     block: "127.0.3".into(),
//!     nodes: 2,
//!     authorize_caller_keys: false,
//!     ..LabConfig::default()
//! })?;
//! let master = lab.node("pi-master").map(|n| n.socket_addr());
//! // … connect with lab.key_path() and lab.known_hosts_path() …
//! lab.stop()?; // or just drop it
//! # Ok::<(), drover::lab::LabError>(())
//! ```

pub mod arm64;
mod doubles;
mod init;
mod inventory;
mod procs;
mod seed;

use std::fs;
use std::io::{self, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

pub use arm64::Arch;

/// The lab directory used when none is given.
pub const DEFAULT_DIR: &str = "/tmp/drover-lab";
/// The first three octets of node addresses when none are given.
pub const DEFAULT_BLOCK: &str = "127.0.2";
/// Number of nodes when none is given: the size of the real cluster.
pub const DEFAULT_NODES: usize = 8;
/// admin's password when none is given.
pub const DEFAULT_PASSWORD: &str = "admin";

const KEY_FILE: &str = "id_ed25519";
const KNOWN_HOSTS_FILE: &str = "known_hosts";
const INVENTORY_FILE: &str = "inventory.yml";
const STATE_FILE: &str = "state.json";
const AUTHORIZED_KEYS_FILE: &str = "authorized_keys";
/// Marks a tmpfs as made by the lab, so a crashed lab's mount can be cleaned.
const MARKER_FILE: &str = ".drover-lab";
const STATE_VERSION: u32 = 2;

/// How long a node may take to accept TCP connections (2 slow cores, tests
/// in parallel).
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a node's processes may take to die after SIGKILL.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a node's systemd may take to power off before it is killed.
const POWEROFF_TIMEOUT: Duration = Duration::from_secs(10);
/// A node's console: what its supervisor and systemd print.
const CONSOLE_LOG: &str = "console.log";

/// Errors of the lab.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The lab mounts file systems and creates namespaces.
    #[error("the lab needs root: it mounts file systems and boots systemd in namespaces")]
    NotRoot,
    /// This machine cannot run arm64 nodes (no binfmt_misc, no qemu, the
    /// Debian archive out of reach for the first build…).
    #[error("arm64 lab nodes cannot run on this machine: {0}")]
    Arm64Unavailable(String),
    /// A program or file the lab relies on is absent.
    #[error("{what} not found; {hint}")]
    Missing {
        /// The program or file.
        what: String,
        /// How to get it.
        hint: String,
    },
    /// The configuration cannot work.
    #[error("lab configuration: {0}")]
    Config(String),
    /// `start` found live nodes of an earlier lab in the directory.
    #[error("a lab is already running in {}: {nodes}; stop it first (`{}`)", dir.display(), down_command(dir))]
    AlreadyRunning {
        /// The lab directory.
        dir: PathBuf,
        /// Its live nodes.
        nodes: String,
    },
    /// `attach` found no lab state.
    #[error("no lab in {} (no {STATE_FILE}); start one with `drover lab up`", .0.display())]
    NoLab(PathBuf),
    /// The state file is not what the lab writes.
    #[error("lab state {}: {msg}", path.display())]
    State {
        /// The state file.
        path: PathBuf,
        /// What is wrong with it.
        msg: String,
    },
    /// No node has this name.
    #[error("no lab node named {0:?}")]
    UnknownNode(String),
    /// Something else already accepts connections on a node's address.
    #[error(
        "{0} already accepts connections (another sshd?); choose another address block or port"
    )]
    AddressInUse(SocketAddr),
    /// A node did not boot (its sshd did not come up).
    #[error("lab node {node} did not start: {reason}; end of {}:\n{tail}", log.display())]
    NodeStart {
        /// The node.
        node: String,
        /// What went wrong.
        reason: String,
        /// Its console log.
        log: PathBuf,
        /// The last lines of that log.
        tail: String,
    },
    /// Processes of a node survived SIGKILL for ten seconds.
    #[error("lab node {node}: processes {pids:?} are still alive after SIGKILL")]
    Unkillable {
        /// The node.
        node: String,
        /// The survivors.
        pids: Vec<u32>,
    },
    /// A helper program failed.
    #[error("{cmd} failed ({status}): {stderr}")]
    Command {
        /// The program.
        cmd: String,
        /// Its exit status.
        status: String,
        /// What it wrote to stderr.
        stderr: String,
    },
    /// A file system operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or program concerned.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

/// Attach a path to I/O errors.
trait IoContext<T> {
    fn at(self, path: &Path) -> Result<T, LabError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: &Path) -> Result<T, LabError> {
        self.map_err(|source| LabError::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// The command that stops the lab in `dir`: `--dir` is named unless it is
/// the default directory.
pub fn down_command(dir: &Path) -> String {
    if dir == Path::new(DEFAULT_DIR) {
        "drover lab down".to_string()
    } else {
        format!(
            "drover lab down --dir {}",
            crate::shlex::quote(&dir.to_string_lossy())
        )
    }
}

/// How to build a lab.
#[derive(Debug, Clone)]
pub struct LabConfig {
    /// Lab directory; a tmpfs is mounted on it. Must be absent or empty.
    pub dir: PathBuf,
    /// First three octets of the node addresses, `127.x.y`: node K listens
    /// on `<block>.K` (past 254 nodes, on the blocks after it). Labs running
    /// at the same time need distinct blocks.
    pub block: String,
    /// Number of nodes (1 to [`MAX_NODES`]).
    pub nodes: usize,
    /// Port every node's sshd listens on.
    pub port: u16,
    /// admin's account password: SSH password authentication accepts it.
    pub password: Secret,
    /// When set, sudo asks admin for a password and this becomes admin's
    /// password (replacing `password`: one account has one password). When
    /// unset, admin has passwordless sudo.
    pub sudo_password: Option<Secret>,
    /// Also authorize the caller's `~/.ssh/*.pub` keys for admin.
    pub authorize_caller_keys: bool,
    /// Put node processes in their own process group, so that a Ctrl-C or
    /// hang-up of the starting terminal does not stop them (`drover lab
    /// up`). Tests leave it off so that interrupting them stops their nodes.
    pub background: bool,
    /// The nodes' architecture: this machine's own, or arm64 under qemu
    /// (see [`arm64`]; registers an interpreter machine-wide).
    pub arch: Arch,
}

impl Default for LabConfig {
    fn default() -> Self {
        LabConfig {
            dir: PathBuf::from(DEFAULT_DIR),
            block: DEFAULT_BLOCK.to_string(),
            nodes: DEFAULT_NODES,
            port: 22,
            password: Secret::new(DEFAULT_PASSWORD),
            sudo_password: None,
            authorize_caller_keys: true,
            background: false,
            arch: Arch::Native,
        }
    }
}

/// One lab node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// Inventory name and hostname: `pi-master`, `pi-worker-01`, …
    pub name: String,
    /// Position in the lab, from 1 (see [`node_addr`] for its address).
    pub index: u16,
    /// The address its sshd listens on.
    pub address: Ipv4Addr,
    /// The port its sshd listens on.
    pub port: u16,
    /// PID of its supervisor (which boots its systemd) while it runs.
    pub pid: Option<u32>,
    /// Its overlay's upper directory: every file the node has written.
    pub upper: PathBuf,
}

impl Node {
    /// Address and port of its sshd.
    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::from((self.address, self.port))
    }
}

/// The name of node `index` (from 1): `pi-master`, then `pi-worker-01`, …
pub fn node_name(index: usize) -> String {
    if index <= 1 {
        "pi-master".to_string()
    } else {
        format!("pi-worker-{:02}", index - 1)
    }
}

/// The inventory a lab built from `cfg` writes to `<dir>/inventory.yml`.
pub fn render_inventory(cfg: &LabConfig) -> Result<String, LabError> {
    let block = parse_block(&cfg.block)?;
    check_count(cfg.nodes)?;
    let dir = std::path::absolute(&cfg.dir).at(&cfg.dir)?;
    let hosts: Vec<_> = (1..=cfg.nodes)
        .map(|k| (node_name(k), node_addr(block, k as u16)))
        .collect();
    Ok(inventory::render(&dir, cfg.port, &hosts))
}

/// What a lab keeps about itself, in its state file.
#[derive(Clone, Serialize, Deserialize)]
struct Settings {
    block: [u8; 3],
    port: u16,
    /// crypt(3) hash of admin's password, to seed nodes added or wiped later.
    password_hash: String,
    sudo_nopasswd: bool,
    background: bool,
    /// The lab created its directory, so removes it when it stops.
    created_dir: bool,
    /// The arm64 root, the lower layer of every node of an arm64 lab.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    arm64_root: Option<PathBuf>,
}

#[derive(Serialize, Deserialize)]
struct State {
    version: u32,
    settings: Settings,
    nodes: Vec<NodeRecord>,
}

#[derive(Serialize, Deserialize)]
struct NodeRecord {
    node: Node,
    /// Start time of its supervisor, which with the PID identifies it.
    start: Option<u64>,
}

/// What the lab knows about a node's processes.
#[derive(Debug, Default)]
struct Proc {
    start: Option<u64>,
    /// The supervisor, when this process spawned it.
    child: Option<Child>,
}

/// A running lab. Dropping a lab made by [`Lab::start`] stops it (unless
/// [`Lab::keep_running`] was called); dropping an attached lab leaves it
/// running.
pub struct Lab {
    dir: PathBuf,
    settings: Settings,
    nodes: Vec<Node>,
    procs: Vec<Proc>,
    /// Stop everything on drop.
    owned: bool,
    /// Already stopped.
    done: bool,
}

impl Lab {
    /// Build and start a fresh lab. Fails if a lab already runs in
    /// `cfg.dir`; the leftovers of a lab that died are cleaned first. Returns
    /// once every node accepts TCP connections.
    pub fn start(cfg: LabConfig) -> Result<Lab, LabError> {
        let block = parse_block(&cfg.block)?;
        check_count(cfg.nodes)?;
        if cfg.port == 0 {
            return Err(LabError::Config("port 0".into()));
        }
        require_root()?;
        require_tools()?;
        init::require_host()?;
        let dir = std::path::absolute(&cfg.dir).at(&cfg.dir)?;
        check_dir_name(&dir)?;
        let password = cfg.sudo_password.as_ref().unwrap_or(&cfg.password);
        let password_hash = hash_password(password)?;
        let arm64_root = match cfg.arch {
            Arch::Arm64 => Some(arm64::prepare()?),
            Arch::Native => None,
        };

        let created_dir = prepare_dir(&dir)?;
        let dir = dir.canonicalize().at(&dir)?;
        run(Command::new("mount")
            .args(["-t", "tmpfs", "-o", "mode=0755", "drover-lab"])
            .arg(&dir))?;
        // From here on, dropping `lab` undoes everything.
        let mut lab = Lab {
            dir,
            settings: Settings {
                block,
                port: cfg.port,
                password_hash,
                sudo_nopasswd: cfg.sudo_password.is_none(),
                background: cfg.background,
                created_dir,
                arm64_root,
            },
            nodes: Vec::new(),
            procs: Vec::new(),
            owned: true,
            done: false,
        };
        let t0 = Instant::now();
        lab.write_lab_files(cfg.authorize_caller_keys)?;
        for k in 1..=cfg.nodes {
            lab.push_node(k as u16)?;
        }
        let all: Vec<usize> = (0..lab.nodes.len()).collect();
        lab.seed_nodes(&all)?;
        let seeded = t0.elapsed();
        lab.boot(&all)?;
        lab.rewrite_known_hosts()?;
        lab.write_inventory()?;
        lab.save_state()?;
        tracing::info!(
            dir = %lab.dir.display(),
            nodes = lab.nodes.len(),
            ?seeded,
            total = ?t0.elapsed(),
            "lab started"
        );
        Ok(lab)
    }

    /// Find the lab running in `dir` from its state file (for `drover lab
    /// down` and `status` in another process). A node whose supervisor is no
    /// longer the one the lab started (it was stopped or powered itself off)
    /// shows `pid: None`. Dropping the result leaves the lab running; call
    /// [`Lab::stop`] to stop it.
    pub fn attach(dir: &Path) -> Result<Lab, LabError> {
        let dir = std::path::absolute(dir).at(dir)?;
        let path = dir.join(STATE_FILE);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(LabError::NoLab(dir)),
            Err(e) => return Err(LabError::Io { path, source: e }),
        };
        let state: State = serde_json::from_str(&text).map_err(|e| LabError::State {
            path: path.clone(),
            msg: e.to_string(),
        })?;
        if state.version != STATE_VERSION {
            return Err(LabError::State {
                path,
                msg: format!(
                    "version {} (this drover writes {STATE_VERSION})",
                    state.version
                ),
            });
        }
        let dir = dir.canonicalize().at(&dir)?;
        let mut nodes = Vec::new();
        let mut procs = Vec::new();
        for rec in state.nodes {
            let mut node = rec.node;
            node.pid = match (node.pid, rec.start) {
                (Some(pid), Some(start)) if is_supervisor(pid, start) => Some(pid),
                _ => None,
            };
            nodes.push(node);
            procs.push(Proc {
                start: rec.start,
                child: None,
            });
        }
        Ok(Lab {
            dir,
            settings: state.settings,
            nodes,
            procs,
            owned: false,
            done: false,
        })
    }

    /// The lab directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every node, in index order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The node named `name`.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The upper directory of node `name`: every file it has written, at its
    /// path inside the node (`node_root(n).join("etc/hostname")`). Files it
    /// only read come from the host and are not there. The path is computed,
    /// not checked: an unknown name gives a path that does not exist.
    pub fn node_root(&self, name: &str) -> PathBuf {
        self.node_dir(name).join("upper")
    }

    /// The lab's private key, authorized for admin on every node.
    pub fn key_path(&self) -> PathBuf {
        self.dir.join(KEY_FILE)
    }

    /// The lab's known_hosts file (plain, not hashed).
    pub fn known_hosts_path(&self) -> PathBuf {
        self.dir.join(KNOWN_HOSTS_FILE)
    }

    /// The lab's Ansible inventory.
    pub fn inventory_path(&self) -> PathBuf {
        self.dir.join(INVENTORY_FILE)
    }

    /// The public host keys node `name` has now, as `algorithm base64`.
    pub fn host_keys(&self, name: &str) -> Result<Vec<String>, LabError> {
        self.index_of(name)?;
        seed::public_host_keys(&self.node_root(name))
    }

    /// What node `name`'s processes listen on (TCP) or are bound to (UDP)
    /// outside the node's own address, as `proto address:port (command)`.
    /// Nodes share the machine's network, so such a daemon collides with
    /// the same daemon in another node; a lab's nodes should have none.
    pub fn foreign_listeners(&self, name: &str) -> Result<Vec<String>, LabError> {
        let i = self.index_of(name)?;
        let n = &self.nodes[i];
        Ok(init::foreign_listeners(
            &init::cgroup_of(n.address),
            n.address,
        ))
    }

    /// The PID, seen from here, of node `name`'s systemd (PID 1 inside the
    /// node) while it runs: its /proc entry shows the node's mounts.
    pub fn init_pid(&self, name: &str) -> Result<Option<u32>, LabError> {
        let i = self.index_of(name)?;
        Ok(init::init_pid(&init::cgroup_of(self.nodes[i].address)))
    }

    /// What node `name`'s journal holds for `unit` (all units when `None`),
    /// message text only, read from its upper directory with the host's
    /// journalctl. Empty when the node has written no journal yet.
    pub fn journal(&self, name: &str, unit: Option<&str>) -> Result<String, LabError> {
        self.index_of(name)?;
        let dir = self.node_root(name).join("var/log/journal");
        if !dir.exists() {
            return Ok(String::new());
        }
        let mut cmd = Command::new("journalctl");
        cmd.arg("--directory")
            .arg(&dir)
            .args(["--output=cat", "--no-pager", "--quiet"]);
        if let Some(unit) = unit {
            cmd.arg("--unit").arg(unit);
        }
        let out = cmd
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .at(Path::new("journalctl"))?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Power node `name` off: its systemd stops its units (sshd and the
    /// open sessions with it) and ends; whatever is left after
    /// [`POWEROFF_TIMEOUT`] is killed. Its files stay. Stopping a stopped
    /// node does nothing.
    pub fn stop_node(&mut self, name: &str) -> Result<(), LabError> {
        let i = self.index_of(name)?;
        let result = self.stop_proc(i, true);
        self.save_state()?;
        result
    }

    /// Boot node `name` again on the files it had (its /run is fresh, its
    /// boot id new). Starting a running node does nothing.
    pub fn start_node(&mut self, name: &str) -> Result<(), LabError> {
        let i = self.index_of(name)?;
        if self.is_running(i) {
            return Ok(());
        }
        self.stop_proc(i, false)?;
        let result = self.boot(&[i]);
        self.save_state()?;
        result
    }

    /// Replace node `name` by a fresh machine of the same name and address:
    /// stop it, delete everything it wrote, seed it again with new host keys
    /// and start it. The lab's known_hosts keeps the old keys (as a client's
    /// would) until [`Lab::rewrite_known_hosts`].
    pub fn wipe_node(&mut self, name: &str) -> Result<(), LabError> {
        let i = self.index_of(name)?;
        self.stop_proc(i, false)?;
        let nd = self.node_dir(name);
        for sub in ["upper", "work"] {
            let p = nd.join(sub);
            fs::remove_dir_all(&p).at(&p)?;
            fs::create_dir(&p).at(&p)?;
        }
        self.seed_nodes(&[i])?;
        let result = self.boot(&[i]);
        self.save_state()?;
        result
    }

    /// Add and start one more node (the ninth is `pi-worker-08`, an agent).
    /// Its keys are appended to the lab's known_hosts and it joins the
    /// inventory. Nodes seeded earlier do not get it in their /etc/hosts.
    pub fn add_node(&mut self) -> Result<Node, LabError> {
        let k = self.nodes.iter().map(|n| n.index).max().unwrap_or(0);
        check_count(usize::from(k) + 1)?;
        self.push_node(k + 1)?;
        let i = self.nodes.len() - 1;
        self.seed_nodes(&[i])?;
        if let Err(e) = self.boot(&[i]) {
            let _ = self.save_state();
            return Err(e);
        }
        let path = self.known_hosts_path();
        let mut f = fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .at(&path)?;
        f.write_all(self.known_hosts_lines(i)?.as_bytes())
            .at(&path)?;
        self.write_inventory()?;
        self.save_state()?;
        Ok(self.nodes[i].clone())
    }

    /// Rewrite the lab's known_hosts from the host keys every node has now
    /// (after [`Lab::wipe_node`], to trust the new keys).
    pub fn rewrite_known_hosts(&self) -> Result<(), LabError> {
        let mut text = String::new();
        for i in 0..self.nodes.len() {
            text.push_str(&self.known_hosts_lines(i)?);
        }
        write_atomic(&self.known_hosts_path(), &text)
    }

    /// Stop every node, unmount the lab's tmpfs (which holds all its state)
    /// and remove the lab directory if the lab created it.
    pub fn stop(mut self) -> Result<(), LabError> {
        self.shutdown()
    }

    /// Leave the lab running when this value is dropped (`drover lab up`
    /// exits while its nodes live on); `drover lab down` stops it later
    /// through [`Lab::attach`]. Returns the lab directory.
    pub fn keep_running(mut self) -> PathBuf {
        self.owned = false;
        self.dir.clone()
    }

    fn shutdown(&mut self) -> Result<(), LabError> {
        if self.done {
            return Ok(());
        }
        self.done = true;
        let mut first_err = None;
        for i in 0..self.nodes.len() {
            // The lab goes with its files: no need for a clean poweroff.
            if let Err(e) = self.stop_proc(i, false) {
                tracing::warn!(node = %self.nodes[i].name, error = %e, "lab: stopping node");
                first_err.get_or_insert(e);
            }
        }
        if first_err.is_none() {
            if let Err(e) = unmount(&self.dir) {
                first_err.get_or_insert(e);
            } else if self.settings.created_dir {
                if let Err(e) = fs::remove_dir(&self.dir) {
                    tracing::warn!(dir = %self.dir.display(), error = %e, "lab: removing directory");
                }
            }
        }
        match first_err {
            None => {
                tracing::info!(dir = %self.dir.display(), "lab stopped");
                Ok(())
            }
            Some(e) => Err(e),
        }
    }

    /// The lower layer of every node's overlay.
    fn lower(&self) -> &Path {
        self.settings
            .arm64_root
            .as_deref()
            .unwrap_or(Path::new("/"))
    }

    fn node_dir(&self, name: &str) -> PathBuf {
        self.dir.join("nodes").join(name)
    }

    fn index_of(&self, name: &str) -> Result<usize, LabError> {
        self.nodes
            .iter()
            .position(|n| n.name == name)
            .ok_or_else(|| LabError::UnknownNode(name.to_string()))
    }

    fn is_running(&self, i: usize) -> bool {
        match (self.nodes[i].pid, self.procs[i].start) {
            (Some(pid), Some(start)) => is_supervisor(pid, start),
            _ => false,
        }
    }

    /// Lab-wide files: marker, client key, the authorized_keys every node gets.
    fn write_lab_files(&self, caller_keys: bool) -> Result<(), LabError> {
        fs::write(self.dir.join(MARKER_FILE), "drover lab\n").at(&self.dir)?;
        let key = self.key_path();
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "drover-lab", "-f"])
            .arg(&key))?;
        let pubkey = key.with_extension("pub");
        let mut keys = fs::read_to_string(&pubkey).at(&pubkey)?;
        if caller_keys {
            keys.push_str(&caller_public_keys());
        }
        fs::write(self.dir.join(AUTHORIZED_KEYS_FILE), keys).at(&self.dir)?;
        doubles::write_lab_wide(&self.dir)?;
        fs::create_dir(self.dir.join("nodes")).at(&self.dir)
    }

    /// Register node `k` and create its directories.
    fn push_node(&mut self, k: u16) -> Result<(), LabError> {
        let name = node_name(k.into());
        let nd = self.node_dir(&name);
        for sub in ["upper", "work", "merged"] {
            let p = nd.join(sub);
            fs::create_dir_all(&p).at(&p)?;
        }
        self.nodes.push(Node {
            upper: nd.join("upper"),
            name,
            index: k,
            address: node_addr(self.settings.block, k),
            port: self.settings.port,
            pid: None,
        });
        self.procs.push(Proc::default());
        Ok(())
    }

    /// Write the seeds of nodes `idx` (their upper directories are empty),
    /// four per core: most of the time goes to waiting for ssh-keygen and
    /// mknod, whose start-up dominates on a busy machine.
    fn seed_nodes(&self, idx: &[usize]) -> Result<(), LabError> {
        let hosts: Vec<(String, Ipv4Addr)> = self
            .nodes
            .iter()
            .map(|n| (n.name.clone(), n.address))
            .collect();
        let ak_path = self.dir.join(AUTHORIZED_KEYS_FILE);
        let authorized_keys = fs::read_to_string(&ak_path).at(&ak_path)?;
        let seed_one = |i: usize| {
            let n = &self.nodes[i];
            doubles::write_proc_files(&self.node_dir(&n.name))?;
            seed::write(&seed::Seed {
                upper: &n.upper,
                lower: self.lower(),
                name: &n.name,
                listen: n.socket_addr(),
                hosts: &hosts,
                password_hash: &self.settings.password_hash,
                sudo_nopasswd: self.settings.sudo_nopasswd,
                authorized_keys: &authorized_keys,
            })?;
            if self.settings.arm64_root.is_some() {
                arm64::seed(&n.upper, &n.name, n.socket_addr())?;
            }
            Ok(())
        };
        let seed_one = &seed_one;
        let workers = thread::available_parallelism().map_or(2, |n| n.get()) * 4;
        for chunk in idx.chunks(workers) {
            thread::scope(|s| {
                let handles: Vec<_> = chunk
                    .iter()
                    .map(|&i| s.spawn(move || seed_one(i)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|_| Err(panicked("seeding"))))
                    .collect::<Result<Vec<()>, LabError>>()
            })?;
        }
        Ok(())
    }

    /// Start nodes `idx` and wait until each accepts TCP connections. On
    /// failure the nodes of `idx` are stopped again.
    fn boot(&mut self, idx: &[usize]) -> Result<(), LabError> {
        let result = idx
            .iter()
            .try_for_each(|&i| self.spawn(i))
            .and_then(|()| self.await_ready(idx));
        if result.is_err() {
            for &i in idx {
                if let Err(e) = self.stop_proc(i, false) {
                    tracing::warn!(node = %self.nodes[i].name, error = %e, "lab: cleaning up a failed start");
                }
            }
        }
        result
    }

    fn spawn(&mut self, i: usize) -> Result<(), LabError> {
        let node = &self.nodes[i];
        let addr = node.socket_addr();
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Err(LabError::AddressInUse(addr));
        }
        let nd = self.node_dir(&node.name);
        let log_path = nd.join(CONSOLE_LOG);
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .at(&log_path)?;
        let log2 = log.try_clone().at(&log_path)?;
        // Every node runs under the supervisor, in its own cgroup and
        // namespaces; a native node boots systemd, an arm64 node runs the
        // host's sshd chrooted into its tree (its arguments also name the
        // arm64 root and the sshd configuration).
        let (boot, arm64_args) = match &self.settings.arm64_root {
            Some(root) => (
                arm64::NODE_BOOT,
                vec![root.clone(), PathBuf::from(seed::SSHD_CONFIG)],
            ),
            None => (init::NODE_BOOT, Vec::new()),
        };
        let mut cmd = Command::new("sh");
        cmd.args(["-c", init::SUPERVISOR, init::SUPERVISOR_NAME])
            .arg(init::cgroup_of(node.address))
            .arg(nd.join("upper"))
            .arg(nd.join("work"))
            .arg(nd.join("merged"))
            .arg(&node.name)
            .arg(&nd)
            .arg(self.dir.join("network"))
            .args(&arm64_args)
            .env_clear()
            .env("NODE_BOOT", boot)
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        if self.settings.background {
            cmd.process_group(0);
        }
        let child = cmd.spawn().at(Path::new("sh"))?;
        tracing::debug!(node = %node.name, pid = child.id(), %addr, "lab: node spawned");
        self.nodes[i].pid = Some(child.id());
        self.procs[i] = Proc {
            start: None,
            child: Some(child),
        };
        Ok(())
    }

    fn await_ready(&mut self, idx: &[usize]) -> Result<(), LabError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut pending = idx.to_vec();
        while !pending.is_empty() {
            let mut still = Vec::new();
            for &i in &pending {
                let name = self.nodes[i].name.clone();
                let addr = self.nodes[i].socket_addr();
                let proc = &mut self.procs[i];
                let Some(child) = proc.child.as_mut() else {
                    return Err(self.start_error(i, "it was not spawned".into()));
                };
                let pid = child.id();
                match child.try_wait() {
                    Ok(Some(status)) => {
                        return Err(self.start_error(i, format!("its process exited ({status})")))
                    }
                    Ok(None) => {}
                    Err(e) => {
                        return Err(LabError::Io {
                            path: name.into(),
                            source: e,
                        })
                    }
                }
                if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
                    still.push(i);
                    continue;
                }
                // Something accepts connections: it must be the sshd of the
                // node's own systemd.
                let cgroup = init::cgroup_of(self.nodes[i].address);
                if init::init_pid(&cgroup).is_none() {
                    return Err(self.start_error(
                        i,
                        format!("{addr} accepts connections but the node's systemd does not run"),
                    ));
                }
                proc.start = procs::start_time(pid);
                tracing::debug!(node = %name, pid, "lab: node ready");
            }
            pending = still;
            if pending.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                return Err(self.start_error(
                    pending[0],
                    format!("it did not accept connections within {READY_TIMEOUT:?}"),
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    fn start_error(&self, i: usize, reason: String) -> LabError {
        let name = &self.nodes[i].name;
        let log = self.node_dir(name).join(CONSOLE_LOG);
        let text = fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(15)..].join("\n");
        LabError::NodeStart {
            node: name.clone(),
            reason,
            log,
            tail,
        }
    }

    /// Stop node `i`: its supervisor first (so that nothing boots it
    /// again), then, if `poweroff`, ask its systemd to power off and give it
    /// [`POWEROFF_TIMEOUT`]; then SIGKILL whatever is left in its cgroup,
    /// until nothing is, and remove its cgroups.
    fn stop_proc(&mut self, i: usize, poweroff: bool) -> Result<(), LabError> {
        let name = self.nodes[i].name.clone();
        let cgroup = init::cgroup_of(self.nodes[i].address);
        let pid = self.nodes[i].pid.take();
        let mut proc = std::mem::take(&mut self.procs[i]);
        if let Some(child) = proc.child.as_mut() {
            let _ = child.kill();
        } else if let (Some(pid), Some(start)) = (pid, proc.start) {
            if is_supervisor(pid, start) {
                procs::kill(&[pid]);
            }
        }
        if poweroff && init::request_poweroff(&cgroup) {
            let deadline = Instant::now() + POWEROFF_TIMEOUT;
            while init::init_pid(&cgroup).is_some() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(20));
            }
        }
        let deadline = Instant::now() + KILL_TIMEOUT;
        loop {
            let pids = init::members(&cgroup);
            if pids.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                return Err(LabError::Unkillable { node: name, pids });
            }
            procs::kill(&pids);
            thread::sleep(Duration::from_millis(10));
        }
        if let Some(mut child) = proc.child {
            child.wait().at(Path::new("sh"))?;
        } else if let Some(pid) = pid {
            while proc
                .start
                .is_some_and(|s| procs::start_time(pid) == Some(s))
                && procs::alive(pid)
            {
                if Instant::now() > deadline {
                    return Err(LabError::Unkillable {
                        node: name,
                        pids: vec![pid],
                    });
                }
                thread::sleep(Duration::from_millis(10));
            }
        }
        init::remove_cgroups(&cgroup);
        if pid.is_some() {
            tracing::debug!(node = %name, "lab: node stopped");
        }
        Ok(())
    }

    fn known_hosts_lines(&self, i: usize) -> Result<String, LabError> {
        let n = &self.nodes[i];
        let host = if n.port == 22 {
            n.address.to_string()
        } else {
            format!("[{}]:{}", n.address, n.port)
        };
        Ok(seed::public_host_keys(&n.upper)?
            .iter()
            .map(|k| format!("{host} {k}\n"))
            .collect())
    }

    fn write_inventory(&self) -> Result<(), LabError> {
        let hosts: Vec<_> = self
            .nodes
            .iter()
            .map(|n| (n.name.clone(), n.address))
            .collect();
        let text = inventory::render(&self.dir, self.settings.port, &hosts);
        write_atomic(&self.inventory_path(), &text)
    }

    fn save_state(&self) -> Result<(), LabError> {
        if self.done {
            return Ok(());
        }
        let state = State {
            version: STATE_VERSION,
            settings: self.settings.clone(),
            nodes: self
                .nodes
                .iter()
                .zip(&self.procs)
                .map(|(n, p)| NodeRecord {
                    node: n.clone(),
                    start: p.start,
                })
                .collect(),
        };
        let path = self.dir.join(STATE_FILE);
        let text = serde_json::to_string_pretty(&state).map_err(|e| LabError::State {
            path: path.clone(),
            msg: e.to_string(),
        })?;
        write_atomic(&path, &text)?;
        // It holds admin's password hash.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).at(&path)
    }
}

impl std::fmt::Debug for Lab {
    // By hand: the settings hold admin's password hash.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lab")
            .field("dir", &self.dir)
            .field("nodes", &self.nodes)
            .field("owned", &self.owned)
            .finish_non_exhaustive()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.owned && !self.done {
            if let Err(e) = self.shutdown() {
                tracing::error!(dir = %self.dir.display(), error = %e, "lab: stopping on drop");
            }
        }
    }
}

/// Whether `pid` is still the node supervisor the lab started at `start`.
fn is_supervisor(pid: u32, start: u64) -> bool {
    procs::alive(pid)
        && procs::start_time(pid) == Some(start)
        && procs::cmdline(pid).is_some_and(|c| c.contains(init::SUPERVISOR_NAME))
}

/// Most nodes a lab has: 254 to an address block, and the nodes past the
/// first 254 take the blocks after it (`127.x.y+1.1`, …).
pub const MAX_NODES: usize = 4 * 254;

/// Address of node `k` (from 1): `<block>.k` for the first 254, then on
/// into the next blocks, so that a lab of 256 nodes on `127.0.42` ends at
/// `127.0.43.2`.
fn node_addr(block: [u8; 3], k: u16) -> Ipv4Addr {
    let spill = (k - 1) / 254;
    let last = (k - 1) % 254 + 1;
    // check_count keeps k within MAX_NODES and parse_block keeps the third
    // octet low enough for it.
    Ipv4Addr::new(block[0], block[1], block[2] + spill as u8, last as u8)
}

fn parse_block(block: &str) -> Result<[u8; 3], LabError> {
    let bad = || {
        LabError::Config(format!(
            "address block {block:?} is not of the form 127.x.y"
        ))
    };
    let octets: Vec<u8> = block
        .split('.')
        .map(|o| o.parse::<u8>().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let spare = (MAX_NODES / 254 - 1) as u8;
    match octets[..] {
        [127, b, c] if c <= u8::MAX - spare => Ok([127, b, c]),
        _ => Err(bad()),
    }
}

fn check_count(nodes: usize) -> Result<(), LabError> {
    if (1..=MAX_NODES).contains(&nodes) {
        Ok(())
    } else {
        Err(LabError::Config(format!(
            "{nodes} nodes: a lab has 1 to {MAX_NODES}"
        )))
    }
}

/// Overlay mount options cannot carry these characters.
fn check_dir_name(dir: &Path) -> Result<(), LabError> {
    let s = dir.to_string_lossy();
    if s.chars()
        .any(|c| c == ',' || c == ':' || c == '\\' || c.is_control())
    {
        return Err(LabError::Config(format!(
            "lab directory {s:?}: overlay options cannot hold ',', ':', '\\' or control characters"
        )));
    }
    Ok(())
}

fn require_root() -> Result<(), LabError> {
    // The owner of /proc/self is our effective uid.
    match fs::metadata("/proc/self") {
        Ok(m) if m.uid() == 0 => Ok(()),
        _ => Err(LabError::NotRoot),
    }
}

fn require_tools() -> Result<(), LabError> {
    let apt = "install it: apt-get install -y openssh-server sudo python3";
    for file in ["/usr/sbin/sshd", "/usr/bin/sudo", "/usr/bin/python3"] {
        if !Path::new(file).exists() {
            return Err(LabError::Missing {
                what: file.into(),
                hint: apt.into(),
            });
        }
    }
    for prog in [
        "unshare",
        "mount",
        "umount",
        "chroot",
        "kill",
        "ssh-keygen",
        "openssl",
        "dpkg-deb",
        "mknod",
    ] {
        if !in_path(prog) {
            let hint = match prog {
                "ssh-keygen" => "install it: apt-get install -y openssh-client",
                "openssl" => "install it: apt-get install -y openssl",
                "dpkg-deb" => "install it: apt-get install -y dpkg",
                _ => "install it: apt-get install -y util-linux coreutils procps",
            };
            return Err(LabError::Missing {
                what: prog.into(),
                hint: hint.into(),
            });
        }
    }
    Ok(())
}

fn in_path(prog: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(prog).is_file()))
        .unwrap_or(false)
}

/// Make sure `dir` can take the lab's tmpfs: stop a dead lab left there,
/// unmount a tmpfs the lab left, refuse anything else. Returns whether the
/// directory was created.
fn prepare_dir(dir: &Path) -> Result<bool, LabError> {
    if dir.join(STATE_FILE).exists() {
        let old = Lab::attach(dir)?;
        let live: Vec<&str> = old
            .nodes
            .iter()
            .filter(|n| n.pid.is_some())
            .map(|n| n.name.as_str())
            .collect();
        if !live.is_empty() {
            return Err(LabError::AlreadyRunning {
                dir: dir.to_path_buf(),
                nodes: live.join(", "),
            });
        }
        tracing::info!(dir = %dir.display(), "lab: cleaning up a lab that died");
        old.stop()?;
    }
    for _ in 0..8 {
        if procs::mounts_at(dir).is_empty() {
            break;
        }
        if !dir.join(MARKER_FILE).exists() {
            return Err(LabError::Config(format!(
                "{} is a mount point the lab did not make",
                dir.display()
            )));
        }
        unmount(dir)?;
    }
    match fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(LabError::Config(format!(
                    "{} is not empty; the lab mounts a tmpfs on its directory",
                    dir.display()
                )));
            }
            Ok(false)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(dir).at(dir)?;
            Ok(true)
        }
        Err(e) => Err(LabError::Io {
            path: dir.to_path_buf(),
            source: e,
        }),
    }
}

/// Unmount the lab's tmpfs; lazily if something still uses it.
fn unmount(dir: &Path) -> Result<(), LabError> {
    if procs::mounts_at(dir).is_empty() {
        return Ok(());
    }
    if let Err(e) = run(Command::new("umount").arg(dir)) {
        tracing::warn!(dir = %dir.display(), error = %e, "lab: unmount failed, detaching lazily");
        run(Command::new("umount").arg("--lazy").arg(dir))?;
    }
    Ok(())
}

/// admin's password as a SHA-512 crypt(3) hash. The password goes to
/// openssl's stdin, never on a command line.
fn hash_password(password: &Secret) -> Result<String, LabError> {
    let mut child = Command::new("openssl")
        .args(["passwd", "-6", "-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .at(Path::new("openssl"))?;
    if let Some(mut stdin) = child.stdin.take() {
        writeln!(stdin, "{}", password.expose()).at(Path::new("openssl"))?;
    }
    let out = finish("openssl passwd", child)?;
    let hash = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !hash.starts_with("$6$") {
        return Err(LabError::Command {
            cmd: "openssl passwd".into(),
            status: "ok".into(),
            stderr: "did not print a SHA-512 crypt hash".into(),
        });
    }
    Ok(hash)
}

/// The caller's `~/.ssh/*.pub` keys, in file name order.
fn caller_public_keys() -> String {
    let Some(home) = std::env::var_os("HOME") else {
        return String::new();
    };
    let Ok(entries) = fs::read_dir(Path::new(&home).join(".ssh")) else {
        return String::new();
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "pub"))
        .collect();
    files.sort();
    let mut keys = String::new();
    for f in files {
        let Ok(text) = fs::read_to_string(&f) else {
            continue;
        };
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with("ssh-") || line.starts_with("ecdsa-") || line.starts_with("sk-") {
                keys.push_str(line);
                keys.push('\n');
            }
        }
    }
    keys
}

/// The lab's own files (inventory, known_hosts), written as every file on
/// the control machine is (see [`crate::localfs`]).
fn write_atomic(path: &Path, text: &str) -> Result<(), LabError> {
    crate::localfs::write_atomic(path, text.as_bytes(), 0o644)
        .map(|_| ())
        .at(path)
}

fn panicked(what: &str) -> LabError {
    LabError::Io {
        path: PathBuf::from(what),
        source: io::Error::other("a lab thread panicked"),
    }
}

/// Run a helper program to completion; fail on a non-zero exit.
fn run(cmd: &mut Command) -> Result<Output, LabError> {
    let name = cmd.get_program().to_string_lossy().into_owned();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .at(Path::new(&name))?;
    finish(&name, child)
}

/// Wait for a spawned helper; fail on a non-zero exit.
fn finish(what: &str, child: Child) -> Result<Output, LabError> {
    let out = child.wait_with_output().at(Path::new(what))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(LabError::Command {
            cmd: what.to_string(),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

#[cfg(test)]
mod arm64_tests;
#[cfg(test)]
mod tests;
