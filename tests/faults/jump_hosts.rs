//! The control machine's ways to reach a host, against real OpenSSH: jump
//! hosts (`ProxyJump`) and proxy commands to targets that only the jump
//! host can reach (a network namespace of the test's own), ssh-agent keys
//! (`IdentityAgent`, `IdentitiesOnly`, an agent that refuses to sign), a
//! key's passphrase asked on a terminal (a pty), and a private key other
//! users can read (refused with the WSL hint).

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use drover::transport::known_hosts::HostKeyChecking;
use drover::transport::ssh::{AgentSource, ConnectSpec};

use crate::harness::{require_root, Env, Run};

/// This test run's address block (`DROVER_TEST_BLOCK`); the jump hosts
/// listen on .200 and up, where no lab node is.
fn block() -> String {
    let b = std::env::var("DROVER_TEST_BLOCK")
        .ok()
        .and_then(|b| b.parse::<u8>().ok())
        .unwrap_or(20);
    format!("127.0.{b}")
}

fn keygen(path: &Path, passphrase: &str) {
    let ok = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-C",
            "drover-test",
            "-N",
            passphrase,
            "-f",
        ])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .expect("ssh-keygen runs")
        .success();
    assert!(ok, "ssh-keygen failed");
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A network namespace of our own with only `lo` up, held by a `sleep`
/// that is killed (by PID) on drop.
struct Netns {
    holder: Child,
}

impl Netns {
    fn new() -> Netns {
        require_root();
        let holder = Command::new("unshare")
            .args(["--net", "sleep", "3600"])
            .spawn()
            .expect("unshare runs");
        let ours = fs::read_link("/proc/self/ns/net").expect("our netns");
        let pid = holder.id();
        wait_for("the network namespace", || {
            fs::read_link(format!("/proc/{pid}/ns/net")).is_ok_and(|n| n != ours)
        });
        let ns = Netns { holder };
        let ok = Command::new("nsenter")
            .arg(ns.flag())
            .args(["ip", "link", "set", "lo", "up"])
            .status()
            .expect("nsenter runs")
            .success();
        assert!(ok, "cannot bring lo up in the namespace");
        ns
    }

    fn flag(&self) -> String {
        format!("--net=/proc/{}/ns/net", self.holder.id())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// The keys and sshd configurations of a jump host and its targets.
struct Site {
    dir: tempfile::TempDir,
    ns: Netns,
}

impl Site {
    fn new() -> Site {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        keygen(&d.join("id_ed25519"), "");
        keygen(&d.join("host_ed25519"), "");
        fs::copy(d.join("id_ed25519.pub"), d.join("authorized_keys")).expect("copy");
        fs::create_dir_all("/run/sshd").expect("mkdir /run/sshd");
        Site {
            dir,
            ns: Netns::new(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn config(&self, name: &str, listen: &[String]) -> PathBuf {
        let listen: String = listen
            .iter()
            .map(|a| format!("ListenAddress {a}:22\n"))
            .collect();
        let config = format!(
            "{listen}HostKey {d}/host_ed25519\nAuthorizedKeysFile {d}/authorized_keys\n\
             PidFile none\nUsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nLogLevel INFO\n",
            d = self.dir.path().display()
        );
        let path = self.path(&format!("{name}.conf"));
        fs::write(&path, config).expect("write config");
        path
    }

    /// known_hosts naming every address with the one host key.
    fn known_hosts(&self, addrs: &[&str]) -> PathBuf {
        let public = fs::read_to_string(self.path("host_ed25519.pub")).expect("read");
        let mut fields = public.split_whitespace();
        let (alg, b64) = (fields.next().expect("alg"), fields.next().expect("key"));
        let text: String = addrs.iter().map(|a| format!("{a} {alg} {b64}\n")).collect();
        let path = self.path("known_hosts");
        fs::write(&path, text).expect("write known_hosts");
        path
    }

    /// sshd inside the namespace on `addrs` (port 22): unreachable from
    /// here.
    fn start_targets(&self, addrs: &[String]) -> Daemon {
        let config = self.config("targets", addrs);
        let log = self.path("targets.log");
        let child = Command::new("nsenter")
            .arg(self.ns.flag())
            .args(["/usr/sbin/sshd", "-D", "-e", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).expect("log"))
            .spawn()
            .expect("sshd starts");
        let daemon = Daemon { child, log };
        wait_for("the targets' sshd", || {
            daemon.log().matches("Server listening on").count() >= addrs.len()
        });
        daemon
    }

    /// A jump host on `addr:22` here, whose sshd runs inside the
    /// namespace: one `sshd -i` per connection, its log appended to
    /// `jump.log`.
    fn start_jump(&self, addr: &str) -> Jump {
        let listener = TcpListener::bind((addr, 22)).expect("bind the jump host's address");
        let config = self.config("jump", &[]);
        let log = self.path("jump.log");
        fs::write(&log, "").expect("log");
        let stop = Arc::new(AtomicBool::new(false));
        let children = Arc::new(Mutex::new(Vec::new()));
        let (flag, stop2, kids, log2) =
            (self.ns.flag(), stop.clone(), children.clone(), log.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let Ok(out) = conn.try_clone() else { continue };
                let err = fs::OpenOptions::new()
                    .append(true)
                    .open(&log2)
                    .expect("log");
                let child = Command::new("nsenter")
                    .arg(&flag)
                    .args(["/usr/sbin/sshd", "-i", "-e", "-f"])
                    .arg(&config)
                    .stdin(Stdio::from(OwnedFd::from(conn)))
                    .stdout(Stdio::from(OwnedFd::from(out)))
                    .stderr(err)
                    .spawn()
                    .expect("sshd -i starts");
                kids.lock().expect("lock").push(child);
            }
        });
        Jump {
            addr: addr.to_string(),
            stop,
            thread: Some(thread),
            children,
            log,
        }
    }
}

struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Jump {
    addr: String,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    children: Arc<Mutex<Vec<Child>>>,
    log: PathBuf,
}

impl Jump {
    fn logins(&self) -> usize {
        fs::read_to_string(&self.log)
            .unwrap_or_default()
            .matches("Accepted publickey for root")
            .count()
    }
}

impl Drop for Jump {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect((self.addr.as_str(), 22));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        for mut c in self.children.lock().expect("lock").drain(..) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// drover with HOME in `dir` and no agent unless `agent` is given.
fn drover(dir: &Path, args: &[&str], agent: Option<&Path>) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_drover"));
    cmd.args(args)
        .current_dir(dir)
        .env("HOME", dir)
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::null());
    if let Some(sock) = agent {
        cmd.env("SSH_AUTH_SOCK", sock);
    }
    let out = cmd.output().expect("drover runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

const CONVERGE: &str = "- hosts: all\n  gather_facts: false\n  tasks:\n    - copy:\n        content: \"converged {{ inventory_hostname }}\\n\"\n        dest: \"{{ out_dir }}/{{ inventory_hostname }}.txt\"\n";

#[test]
#[ignore = "needs root: run scripts/test"]
fn targets_only_a_jump_host_reaches_are_converged_through_its_one_connection() {
    let site = Site::new();
    let b = block();
    let (jump_addr, web1, web2) = (format!("{b}.200"), format!("{b}.210"), format!("{b}.211"));
    let _targets = site.start_targets(&[web1.clone(), web2.clone()]);
    let jump = site.start_jump(&jump_addr);
    // Only through: nothing here answers on the targets' addresses.
    for addr in [&web1, &web2] {
        let direct = TcpStream::connect_timeout(
            &format!("{addr}:22").parse().expect("addr"),
            Duration::from_secs(2),
        );
        assert!(direct.is_err(), "{addr} is reachable directly");
    }
    let kh = site.known_hosts(&[&jump_addr, &web1, &web2]);
    let out = site.path("out");
    fs::create_dir_all(&out).expect("mkdir");
    let inventory = format!(
        "all:\n  vars:\n    ansible_user: root\n    out_dir: {out}\n    ansible_ssh_private_key_file: {key}\n    \
         ansible_ssh_common_args: '-o ProxyJump=root@{jump_addr} -o UserKnownHostsFile={kh}'\n  \
         hosts:\n    web1:\n      ansible_host: {web1}\n    web2:\n      ansible_host: {web2}\n",
        out = out.display(),
        key = site.path("id_ed25519").display(),
        kh = kh.display(),
    );
    fs::write(site.path("hosts.yml"), inventory).expect("write");
    fs::write(site.path("site.yml"), CONVERGE).expect("write");
    let args = ["apply", "site.yml", "-i", "hosts.yml", "--output", "json"];
    let run = drover(site.dir.path(), &args, None);
    assert_eq!(
        run.code,
        0,
        "{}\njump log:\n{}",
        run.all(),
        fs::read_to_string(&jump.log).unwrap_or_default()
    );
    assert_eq!(run.total("changed"), 2, "{}", run.all());
    for host in ["web1", "web2"] {
        let text = fs::read_to_string(out.join(format!("{host}.txt"))).expect("converged");
        assert_eq!(text, format!("converged {host}\n"));
    }
    // Both targets went through one connection to the jump host.
    assert_eq!(
        jump.logins(),
        1,
        "{}",
        fs::read_to_string(&jump.log).unwrap_or_default()
    );

    // The same inventory without the ProxyJump reaches nothing.
    let direct = fs::read_to_string(site.path("hosts.yml"))
        .expect("read")
        .replace(&format!("-o ProxyJump=root@{jump_addr} "), "");
    fs::write(site.path("direct.yml"), direct).expect("write");
    let run = drover(
        site.dir.path(),
        &["apply", "site.yml", "-i", "direct.yml", "--output", "json"],
        None,
    );
    assert_ne!(run.code, 0, "{}", run.all());
    assert_eq!(run.total("unreachable"), 2, "{}", run.all());

    // The same inventory, with the way in written once in ~/.ssh/config
    // (the jump host under an alias, looked up in the file too).
    let ssh_dir = site.dir.path().join(".ssh");
    fs::create_dir_all(&ssh_dir).expect("mkdir");
    fs::write(
        ssh_dir.join("config"),
        format!(
            "Host jumpbox\n  HostName {jump_addr}\n  User root\n\
             Host {b}.21?\n  ProxyJump jumpbox\n"
        ),
    )
    .expect("write");
    let run = drover(
        site.dir.path(),
        &["apply", "site.yml", "-i", "direct.yml", "--output", "json"],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(run.total("unreachable"), 0, "{}", run.all());
    assert_eq!(run.total("ok"), 2, "converged already: {}", run.all());
    assert_eq!(
        jump.logins(),
        2,
        "one more jump connection, for both targets: {}",
        fs::read_to_string(&jump.log).unwrap_or_default()
    );
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn a_proxy_command_carries_the_connection_and_its_early_exit_is_explained() {
    let site = Site::new();
    let b = block();
    let web = format!("{b}.212");
    let _target = site.start_targets(std::slice::from_ref(&web));
    let kh = site.known_hosts(&[&web]);
    let out = site.path("out");
    fs::create_dir_all(&out).expect("mkdir");
    let nc = Path::new("/usr/bin/nc").exists() || Path::new("/bin/nc").exists();
    assert!(
        nc || std::env::var_os("CI").is_none(),
        "nc is missing (scripts/setup installs netcat-openbsd)"
    );
    // nc run inside the namespace, as a bastion's `ssh -W` or `nc` would.
    let proxy = match nc {
        true => format!("nsenter {} nc %h %p", site.ns.flag()),
        false => format!(
            "nsenter {} /usr/sbin/sshd -i -f {}",
            site.ns.flag(),
            site.path("targets.conf").display()
        ),
    };
    let inventory = |proxy: &str| {
        format!(
            "all:\n  vars:\n    ansible_user: root\n    out_dir: {out}\n    ansible_ssh_private_key_file: {key}\n    \
             ansible_ssh_common_args: \"-o 'ProxyCommand={proxy}' -o UserKnownHostsFile={kh}\"\n  \
             hosts:\n    web:\n      ansible_host: {web}\n",
            out = out.display(),
            key = site.path("id_ed25519").display(),
            kh = kh.display(),
        )
    };
    fs::write(site.path("hosts.yml"), inventory(&proxy)).expect("write");
    fs::write(site.path("site.yml"), CONVERGE).expect("write");
    let run = drover(
        site.dir.path(),
        &["apply", "site.yml", "-i", "hosts.yml", "--output", "json"],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(
        fs::read_to_string(out.join("web.txt")).expect("converged"),
        "converged web\n"
    );

    fs::write(
        site.path("broken.yml"),
        inventory("echo no route to pi-master >&2; exit 3"),
    )
    .expect("write");
    let run = drover(
        site.dir.path(),
        &["apply", "site.yml", "-i", "broken.yml", "--output", "json"],
        None,
    );
    assert_ne!(run.code, 0, "{}", run.all());
    assert!(run.all().contains("no route to pi-master"), "{}", run.all());
    assert!(
        run.all().contains("exited (exit status: 3)"),
        "{}",
        run.all()
    );
}

/// A real ssh-agent on its own socket, killed (by PID) on drop.
struct Agent {
    child: Child,
    sock: PathBuf,
}

impl Agent {
    fn start(dir: &Path) -> Agent {
        let sock = dir.join("agent.sock");
        let child = Command::new("ssh-agent")
            .args(["-D", "-a"])
            .arg(&sock)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ssh-agent starts");
        wait_for("ssh-agent's socket", || sock.exists());
        Agent { child, sock }
    }

    fn add(&self, key: &Path, extra: &[&str]) {
        let ok = Command::new("ssh-add")
            .args(extra)
            .arg(key)
            .env("SSH_AUTH_SOCK", &self.sock)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("ssh-add runs")
            .success();
        assert!(ok, "ssh-add failed");
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lab_spec(env: &Env) -> ConnectSpec {
    let node = env.lab.node("pi-master").expect("pi-master");
    ConnectSpec {
        name: "pi-master".into(),
        address: node.address.to_string(),
        port: node.port,
        user: "admin".into(),
        private_keys: Vec::new(),
        agent: AgentSource::None,
        identities_only: false,
        proxy: None,
        host_key_alias: None,
        password: None,
        known_hosts: env.lab.known_hosts_path(),
        checking: HostKeyChecking::Strict,
        connect_timeout: Duration::from_secs(20),
        keepalive: Duration::from_secs(30),
    }
}

fn connect(spec: &ConnectSpec) -> Result<(), String> {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let t = drover::transport::ssh::connect(spec)
            .await
            .map_err(|e| e.to_string())?;
        drover::transport::Transport::close(&t).await;
        Ok(())
    })
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn agent_keys_identity_agent_identities_only_and_refusals() {
    let env = Env::new(1);
    let agent = Agent::start(env.dir.path());
    agent.add(&env.lab.key_path(), &[]);
    let mut spec = lab_spec(&env);

    // IdentityAgent pointing at the agent's socket.
    spec.agent = AgentSource::Socket(agent.sock.clone());
    connect(&spec).expect("the agent's key is accepted");

    // IdentitiesOnly: the agent's key is offered only when a configured
    // key file's .pub names it.
    let other = env.path("other");
    keygen(&other, "");
    spec.identities_only = true;
    spec.private_keys = vec![other.clone()];
    let err = connect(&spec).expect_err("the agent key is not offered");
    assert!(err.contains("ssh-agent (0 keys, IdentitiesOnly"), "{err}");
    let only_pub = env.path("labkey");
    fs::copy(
        env.lab.key_path().with_extension("pub"),
        env.path("labkey.pub"),
    )
    .expect("copy");
    spec.private_keys = vec![only_pub];
    connect(&spec).expect("the agent key matching labkey.pub is offered");

    // A socket that is not there is named.
    spec.identities_only = false;
    spec.private_keys = Vec::new();
    spec.agent = AgentSource::Socket(env.path("no-such-agent.sock"));
    let err = connect(&spec).expect_err("no agent");
    assert!(err.contains("no-such-agent.sock does not exist"), "{err}");

    // An agent that will not sign (a key added with -c needs a
    // confirmation nobody can give here) is said to have refused.
    fs::create_dir_all(env.path("strict")).expect("mkdir");
    let strict = Agent::start(&env.path("strict"));
    strict.add(&env.lab.key_path(), &["-c"]);
    spec.agent = AgentSource::Socket(strict.sock.clone());
    let err = connect(&spec).expect_err("the agent refuses");
    assert!(err.contains("the agent refused to sign"), "{err}");
}

/// `-o IdentityAgent`, `-o IdentitiesOnly` and `-o HostKeyAlias` in
/// `ansible_ssh_common_args` were warned about as ignored (and the agent
/// of SSH_AUTH_SOCK used); they are honoured as ~/.ssh/config's are.
#[test]
#[ignore = "needs root: run scripts/test"]
fn identity_agent_identities_only_and_host_key_alias_from_the_ssh_arguments() {
    let env = Env::new(1);
    let agent = Agent::start(env.dir.path());
    agent.add(&env.lab.key_path(), &[]);
    let node = &env.lab.nodes()[0];
    let play = env.write(
        "id.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - command: id\n",
    );
    let apply = |options: &str| {
        let inv = env.write(
            "args.yml",
            &format!(
                "all:\n  vars:\n    ansible_user: admin\n    ansible_ssh_common_args: '-o UserKnownHostsFile={} -o IdentityAgent={} {options}'\n  hosts:\n    {}:\n      ansible_host: {}\n",
                env.lab.known_hosts_path().display(),
                agent.sock.display(),
                node.name,
                node.address
            ),
        );
        let args = [
            "apply",
            play.to_str().expect("utf8"),
            "-i",
            inv.to_str().expect("utf8"),
        ];
        drover(env.dir.path(), &args, None)
    };
    let run = apply("");
    assert_eq!(run.code, 0, "the named agent's key is used:\n{}", run.all());
    assert!(!run.all().contains("drover ignores"), "{}", run.all());
    let run = apply("-o IdentitiesOnly=yes");
    assert_ne!(run.code, 0, "{}", run.all());
    assert!(run.all().contains("IdentitiesOnly"), "{}", run.all());
    let run = apply("-o HostKeyAlias=elsewhere");
    assert_ne!(
        run.code,
        0,
        "no key is known under the alias:\n{}",
        run.all()
    );
    assert!(run.all().contains("elsewhere"), "{}", run.all());
}

fn lab_inventory(env: &Env, key: &Path) -> PathBuf {
    let mut text = format!(
        "all:\n  vars:\n    ansible_user: admin\n    ansible_ssh_private_key_file: {}\n    ansible_ssh_common_args: '-o UserKnownHostsFile={}'\n  hosts:\n",
        key.display(),
        env.lab.known_hosts_path().display()
    );
    for n in env.lab.nodes() {
        text.push_str(&format!(
            "    {}:\n      ansible_host: {}\n",
            n.name, n.address
        ));
    }
    env.write("keyed.yml", &text)
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn a_key_others_can_read_is_refused_naming_the_wsl_fix() {
    let env = Env::new(1);
    let key = env.path("open_key");
    fs::copy(env.lab.key_path(), &key).expect("copy");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).expect("chmod");
    let inv = lab_inventory(&env, &key);
    let play = env.write(
        "ping.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - command: id\n",
    );
    let apply = || {
        let args = [
            "apply",
            play.to_str().expect("utf8"),
            "-i",
            inv.to_str().expect("utf8"),
        ];
        drover(env.dir.path(), &args, None)
    };
    let run = apply();
    assert_ne!(run.code, 0, "{}", run.all());
    for want in [
        "UNPROTECTED PRIVATE KEY FILE",
        "permissions 0644",
        "WSL",
        "metadata",
        "chmod 600",
    ] {
        assert!(run.all().contains(want), "{want}:\n{}", run.all());
    }
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).expect("chmod");
    let run = apply();
    assert_eq!(run.code, 0, "{}", run.all());
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn a_key_passphrase_is_asked_once_on_the_terminal_for_all_hosts() {
    let env = Env::new(2);
    let key = env.path("locked_key");
    fs::copy(env.lab.key_path(), &key).expect("copy");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).expect("chmod");
    let pass = "correct horse 7";
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-p", "-P", "", "-N", pass, "-f"])
        .arg(&key)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .expect("ssh-keygen")
        .success();
    assert!(ok, "cannot set the passphrase");
    let inv = lab_inventory(&env, &key);
    let play = env.write(
        "ping.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - command: id\n",
    );
    let drover_cmd = format!(
        "{} apply {} -i {} --output json",
        env!("CARGO_BIN_EXE_drover"),
        play.display(),
        inv.display()
    );

    // Without a terminal: a clear error naming the key.
    let out = Command::new("setsid")
        .args(["-w", "sh", "-c", &drover_cmd])
        .current_dir(env.dir.path())
        .env("HOME", env.dir.path())
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::null())
        .output()
        .expect("setsid runs");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{all}");
    assert!(
        all.contains(&format!(
            "key {} (skipped: it has a passphrase",
            key.display()
        )),
        "{all}"
    );
    assert!(all.contains("no terminal to ask for it"), "{all}");

    // On a terminal (a pty from script(1)): asked once, for both hosts.
    let mut child = Command::new("script")
        .args(["-qfec", &drover_cmd, "/dev/null"])
        .current_dir(env.dir.path())
        .env("HOME", env.dir.path())
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script runs");
    let mut stdout = child.stdout.take().expect("stdout");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let seen = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.lock().expect("lock").extend_from_slice(&buf[..n]);
            }
        })
    };
    let text = || String::from_utf8_lossy(&seen.lock().expect("lock")).into_owned();
    wait_for("the passphrase prompt", || {
        text().contains("Enter passphrase for key")
    });
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(format!("{pass}\n").as_bytes())
        .expect("answer");
    let status = child.wait().expect("wait");
    drop(stdin);
    let _ = reader.join();
    let all = text();
    assert!(status.success(), "{all}");
    assert_eq!(all.matches("Enter passphrase for key").count(), 1, "{all}");
    assert!(
        !all.contains(pass),
        "the passphrase was echoed or logged:\n{all}"
    );
    assert!(all.contains("pi-worker-01"), "{all}");
}

fn root_spec(site: &Site, addr: &str, known_hosts: &Path) -> ConnectSpec {
    ConnectSpec {
        name: addr.to_string(),
        address: addr.to_string(),
        port: 22,
        user: "root".into(),
        private_keys: vec![site.path("id_ed25519")],
        agent: AgentSource::None,
        identities_only: false,
        proxy: None,
        host_key_alias: None,
        password: None,
        known_hosts: known_hosts.to_path_buf(),
        checking: HostKeyChecking::Strict,
        connect_timeout: Duration::from_secs(20),
        keepalive: Duration::from_secs(30),
    }
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn a_reconnection_goes_through_the_jump_host_again_and_each_hop_key_is_checked() {
    use drover::transport::ssh::Proxy;
    use drover::transport::Remote;

    let site = Site::new();
    let b = block();
    let (jump_addr, web) = (format!("{b}.201"), format!("{b}.213"));
    let targets = site.start_targets(std::slice::from_ref(&web));
    let jump = site.start_jump(&jump_addr);
    let kh = site.known_hosts(&[&jump_addr, &web]);
    let mut spec = root_spec(&site, &web, &kh);
    spec.proxy = Some(Proxy::Jump(vec![root_spec(&site, &jump_addr, &kh)]));
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let t = drover::transport::ssh::connect(&spec)
            .await
            .expect("connects through the jump host");
        let remote = Remote::new(Arc::new(t) as Arc<dyn drover::transport::Transport>, None);
        let out = remote.exec("echo one", b"").await.expect("runs");
        assert_eq!(out.stdout_str(), "one\n");
        // After a reboot the target is connected to anew, through the
        // jump host's connection, which is still up.
        remote.reconnect().await.expect("reconnects");
        let out = remote.exec("echo two", b"").await.expect("runs");
        assert_eq!(out.stdout_str(), "two\n");
    });
    let target_logins = targets.log().matches("Accepted publickey for root").count();
    assert_eq!(target_logins, 2, "{}", targets.log());
    assert_eq!(jump.logins(), 1);

    // The jump host's key is checked like the target's, under its name.
    let other = site.path("other_host");
    keygen(&other, "");
    let public = fs::read_to_string(other.with_extension("pub")).expect("read");
    let good = fs::read_to_string(&kh).expect("read");
    let bad: String = good
        .lines()
        .map(|l| match l.starts_with(&format!("{jump_addr} ")) {
            true => format!("{jump_addr} {}\n", public.trim()),
            false => format!("{l}\n"),
        })
        .collect();
    fs::write(&kh, bad).expect("write");
    let err = rt
        .block_on(drover::transport::ssh::connect(&spec))
        .expect_err("a changed jump host key is refused");
    let err = err.to_string();
    assert!(
        err.contains(&format!("host key verification failed for {jump_addr}")),
        "{err}"
    );
}
