//! Lab tests. Those that start nodes need root, sshd, sudo, python3,
//! dpkg-deb and the ssh client; each uses its own address block (127.0.61.x
//! to 127.0.65.x, 127.0.90.x to 127.0.99.x) so that they run in parallel
//! with each other and with other suites' labs.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::*;

fn config(tmp: &TempDir, block: &str, nodes: usize) -> LabConfig {
    LabConfig {
        dir: tmp.path().join("lab"),
        block: block.to_string(),
        nodes,
        authorize_caller_keys: false,
        ..LabConfig::default()
    }
}

fn start(tmp: &TempDir, block: &str, nodes: usize) -> Lab {
    Lab::start(config(tmp, block, nodes)).expect("lab starts")
}

/// The system ssh client, strict about host keys, with the lab's key.
fn ssh_cmd(lab: &Lab, node: &Node, cmd: &str) -> Command {
    let mut c = Command::new("ssh");
    c.args(["-F", "/dev/null", "-o", "BatchMode=yes"])
        .args(["-o", "StrictHostKeyChecking=yes"])
        .args(["-o", "GlobalKnownHostsFile=/dev/null"])
        .args(["-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=10"])
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            lab.known_hosts_path().display()
        ))
        .arg("-i")
        .arg(lab.key_path())
        .arg(format!("admin@{}", node.address))
        .arg(cmd)
        .stdin(Stdio::null());
    c
}

pub(super) fn ssh(lab: &Lab, node: &Node, cmd: &str) -> Output {
    ssh_cmd(lab, node, cmd).output().expect("ssh runs")
}

pub(super) fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "ssh failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(super) fn node(lab: &Lab, name: &str) -> Node {
    lab.node(name).expect("node exists").clone()
}

/// A session that stays open: returns once the remote shell has started.
fn open_session(lab: &Lab, n: &Node) -> Child {
    let mut child = ssh_cmd(lab, n, "echo started; exec sleep 600")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("ssh runs");
    let out = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line).expect("read");
    assert_eq!(line, "started\n");
    child
}

/// Wait (bounded) for a child to exit.
fn exits_within(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn refuses(n: &Node) -> bool {
    TcpStream::connect_timeout(&n.socket_addr(), Duration::from_secs(2)).is_err()
}

/// Every process in the cgroups `cgs` (the lab's nodes').
fn processes_in(cgs: &[String]) -> Vec<u32> {
    cgs.iter().flat_map(|cg| init::members(cg)).collect()
}

fn cgroups(lab: &Lab) -> Vec<String> {
    lab.nodes()
        .iter()
        .map(|n| init::cgroup_of(n.address))
        .collect()
}

/// `DROVER_LAB_BLESS=1 cargo test default_inventory` rewrites the committed
/// file from the generator.
#[test]
fn default_inventory_is_the_committed_file() {
    let rendered = render_inventory(&LabConfig::default()).expect("renders");
    if std::env::var_os("DROVER_LAB_BLESS").is_some() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lab/inventory.yml");
        fs::write(path, &rendered).expect("bless");
        return;
    }
    assert_eq!(rendered, include_str!("../../tests/lab/inventory.yml"));
    let v: serde_yaml::Value = serde_yaml::from_str(&rendered).expect("YAML");
    let agents = &v["all"]["children"]["k3s_agents"]["hosts"];
    assert_eq!(agents.as_mapping().map(|m| m.len()), Some(7));
    assert_eq!(
        agents["pi-worker-07"]["ansible_host"].as_str(),
        Some("127.0.2.8")
    );
    let groups = &v["all"]["children"];
    assert_eq!(
        groups["management"]["vars"]["airflow_role"].as_str(),
        Some("management")
    );
    assert_eq!(
        groups["schedulers"]["hosts"]["pi-worker-02"]["airflow_role"].as_str(),
        Some("scheduler-2")
    );
    assert!(groups["nfs_server"]["hosts"]
        .as_mapping()
        .is_some_and(|m| m.len() == 1 && m.contains_key("pi-master")));
    assert!(groups["nfs_clients"]["children"]
        .as_mapping()
        .is_some_and(|m| m.contains_key("k3s_agents")));
    assert_eq!(
        v["all"]["vars"]["k3s_airgap_dir"].as_str(),
        Some("/tmp/drover-lab/k3s-airgap")
    );
}

#[test]
fn node_names_follow_the_cluster() {
    assert_eq!(node_name(1), "pi-master");
    assert_eq!(node_name(2), "pi-worker-01");
    assert_eq!(node_name(8), "pi-worker-07");
    assert_eq!(node_name(12), "pi-worker-11");
}

#[test]
fn blocks_outside_loopback_and_bad_counts_are_refused() {
    assert_eq!(parse_block("127.0.3").ok(), Some([127, 0, 3]));
    for bad in ["192.168.1", "127.0", "127.0.2.1", "127.0.x", ""] {
        assert!(
            matches!(parse_block(bad), Err(LabError::Config(_))),
            "{bad}"
        );
    }
    assert!(check_count(0).is_err() && check_count(MAX_NODES + 1).is_err());
    assert!(
        check_count(256).is_ok(),
        "the fan-out benchmark's largest lab"
    );
    // The blocks after the first must exist for a full lab.
    assert!(parse_block("127.0.253").is_err());
    assert!(parse_block("127.0.252").is_ok());
}

#[test]
fn nodes_past_254_take_the_next_block() {
    assert_eq!(node_addr([127, 0, 46], 1), Ipv4Addr::new(127, 0, 46, 1));
    assert_eq!(node_addr([127, 0, 46], 254), Ipv4Addr::new(127, 0, 46, 254));
    assert_eq!(node_addr([127, 0, 46], 255), Ipv4Addr::new(127, 0, 47, 1));
    assert_eq!(node_addr([127, 0, 46], 256), Ipv4Addr::new(127, 0, 47, 2));
    let last = u16::try_from(MAX_NODES).expect("fits");
    assert_eq!(
        node_addr([127, 0, 252], last),
        Ipv4Addr::new(127, 0, 255, 254)
    );
    assert!(check_dir_name(Path::new("/tmp/a,b")).is_err());
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn nodes_answer_ssh_with_their_hostname_and_sudo() {
    let tmp = TempDir::new().expect("tempdir");
    let lab = start(&tmp, "127.0.91", 2);
    let master = node(&lab, "pi-master");
    let worker = node(&lab, "pi-worker-01");
    assert_eq!(master.address, Ipv4Addr::new(127, 0, 91, 1));
    assert_eq!(worker.address, Ipv4Addr::new(127, 0, 91, 2));

    assert_eq!(
        stdout(&ssh(&lab, &master, "hostname; sudo -n id -u")),
        "pi-master\n0\n"
    );
    assert_eq!(
        stdout(&ssh(&lab, &worker, "hostname; id -un")),
        "pi-worker-01\nadmin\n"
    );

    let out = ssh(
        &lab,
        &master,
        "echo hello > note && sudo -n sh -c 'echo probe > /etc/drover-probe'",
    );
    stdout(&out);
    let root = lab.node_root("pi-master");
    assert_eq!(
        fs::read_to_string(root.join("home/admin/note")).expect("note"),
        "hello\n"
    );
    assert_eq!(
        fs::read_to_string(root.join("etc/drover-probe")).expect("probe"),
        "probe\n"
    );
    assert!(!lab
        .node_root("pi-worker-01")
        .join("etc/drover-probe")
        .exists());
    assert!(
        !Path::new("/etc/drover-probe").exists(),
        "the host is untouched"
    );

    let kh = fs::read_to_string(lab.known_hosts_path()).expect("known_hosts");
    assert_eq!(kh.lines().count(), 4);
    assert!(kh
        .lines()
        .any(|l| l.starts_with("127.0.91.2 ssh-ed25519 AAAA")));
    let inv = fs::read_to_string(lab.inventory_path()).expect("inventory");
    assert!(inv.contains("        pi-worker-01:\n          ansible_host: 127.0.91.2\n"));
    assert!(inv.contains(&format!(
        "ansible_ssh_private_key_file: {}",
        lab.key_path().display()
    )));
    lab.stop().expect("lab stops");
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn stop_node_kills_its_sessions_and_start_node_brings_it_back() {
    let tmp = TempDir::new().expect("tempdir");
    let mut lab = start(&tmp, "127.0.92", 2);
    let master = node(&lab, "pi-master");
    let worker = node(&lab, "pi-worker-01");
    stdout(&ssh(&lab, &worker, "echo kept > kept"));
    let mut session = open_session(&lab, &worker);

    lab.stop_node("pi-worker-01").expect("stops");
    assert!(refuses(&worker), "a stopped node refuses connections");
    assert_eq!(lab.node("pi-worker-01").and_then(|n| n.pid), None);
    let status = exits_within(&mut session, Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| !s.success()),
        "the open session died: {status:?}"
    );
    assert_eq!(stdout(&ssh(&lab, &master, "hostname")), "pi-master\n");

    lab.stop_node("pi-worker-01")
        .expect("stopping twice is fine");
    lab.start_node("pi-worker-01").expect("starts");
    assert_eq!(
        stdout(&ssh(&lab, &worker, "hostname; cat kept")),
        "pi-worker-01\nkept\n"
    );
    assert!(matches!(
        lab.stop_node("pi-worker-99"),
        Err(LabError::UnknownNode(_))
    ));
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn wipe_node_gives_new_host_keys_and_forgets_files() {
    let tmp = TempDir::new().expect("tempdir");
    let mut lab = start(&tmp, "127.0.93", 1);
    let master = node(&lab, "pi-master");
    stdout(&ssh(&lab, &master, "echo old > old"));
    stdout(&root(
        &lab,
        &master,
        "echo changed > /boot/firmware/cmdline.txt \
         && c=$(sed 's/\t0$/\t1/' /proc/cgroups) && echo \"$c\" > /proc/cgroups",
    ));
    let old_boot = stdout(&ssh(&lab, &master, "cat /proc/sys/kernel/random/boot_id"));
    let old_keys = lab.host_keys("pi-master").expect("keys");

    lab.wipe_node("pi-master").expect("wipes");
    let new_keys = lab.host_keys("pi-master").expect("keys");
    assert_eq!(new_keys.len(), old_keys.len());
    for (old, new) in old_keys.iter().zip(&new_keys) {
        assert_ne!(old, new);
    }
    assert!(!lab.node_root("pi-master").join("home/admin/old").exists());

    let out = ssh(&lab, &master, "true");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("REMOTE HOST IDENTIFICATION HAS CHANGED"),
        "{err}"
    );

    lab.rewrite_known_hosts().expect("rewrites");
    assert_eq!(stdout(&ssh(&lab, &master, "hostname; ls")), "pi-master\n");
    assert_eq!(
        stdout(&ssh(&lab, &master, "cat /boot/firmware/cmdline.txt")),
        doubles::CMDLINE
    );
    let cg = stdout(&ssh(&lab, &master, "grep ^memory /proc/cgroups"));
    assert!(cg.trim_end().ends_with("\t0"), "{cg:?}");
    assert_ne!(
        stdout(&ssh(&lab, &master, "cat /proc/sys/kernel/random/boot_id")),
        old_boot
    );
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn dropping_a_lab_leaves_no_process_and_no_mount() {
    let tmp = TempDir::new().expect("tempdir");
    let lab = start(&tmp, "127.0.94", 2);
    let dir = lab.dir().to_path_buf();
    let cgs = cgroups(&lab);
    let worker = node(&lab, "pi-worker-01");
    let mut session = open_session(&lab, &worker);
    assert!(processes_in(&cgs).len() >= 3, "listeners and a session");
    assert_eq!(procs::mounts_at(&dir), ["tmpfs"]);

    // A test that panics drops its lab while unwinding.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _lab = lab;
        panic!("test failure");
    }));
    assert!(result.is_err());

    assert_eq!(processes_in(&cgs), Vec::<u32>::new());
    assert!(procs::mounts_at(&dir).is_empty());
    assert!(!dir.exists(), "the lab removes the directory it made");
    assert!(refuses(&worker));
    assert!(exits_within(&mut session, Duration::from_secs(10)).is_some());
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn a_kept_lab_is_found_and_stopped_from_its_state() {
    let tmp = TempDir::new().expect("tempdir");
    let cfg = LabConfig {
        background: true,
        ..config(&tmp, "127.0.95", 2)
    };
    let lab = Lab::start(cfg.clone()).expect("starts");
    let cgs = cgroups(&lab);
    let dir = lab.keep_running();
    let master_addr = SocketAddr::from((Ipv4Addr::new(127, 0, 95, 1), 22));
    assert!(TcpStream::connect_timeout(&master_addr, Duration::from_secs(2)).is_ok());

    match Lab::start(cfg) {
        Err(e @ LabError::AlreadyRunning { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(": pi-master, pi-worker-01;"), "{msg}");
            let down = format!("`drover lab down --dir {}`", dir.display());
            assert!(msg.contains(&down), "{msg}");
        }
        other => panic!("expected AlreadyRunning, got {other:?}"),
    }

    let attached = Lab::attach(&dir).expect("attaches");
    assert!(attached.nodes().iter().all(|n| n.pid.is_some()));
    drop(attached);
    assert!(
        processes_in(&cgs).len() >= 2,
        "dropping an attached lab leaves it running"
    );

    Lab::attach(&dir).expect("attaches").stop().expect("stops");
    assert_eq!(processes_in(&cgs), Vec::<u32>::new());
    assert!(procs::mounts_at(&dir).is_empty());
    assert!(matches!(Lab::attach(&dir), Err(LabError::NoLab(_))));
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn sudo_asks_for_the_configured_password() {
    let tmp = TempDir::new().expect("tempdir");
    let lab = Lab::start(LabConfig {
        sudo_password: Some(Secret::new("s3cret")),
        ..config(&tmp, "127.0.96", 1)
    })
    .expect("starts");
    let master = node(&lab, "pi-master");
    let out = ssh(&lab, &master, "sudo -n true");
    assert!(!out.status.success(), "sudo -n needs a password");
    let out = ssh(&lab, &master, "echo s3cret | sudo -S -p '' id -u");
    assert_eq!(stdout(&out), "0\n");

    // Password authentication with the same password (first contact).
    let askpass = tmp.path().join("askpass");
    fs::write(&askpass, "#!/bin/sh\necho s3cret\n").expect("write");
    fs::set_permissions(
        &askpass,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .expect("chmod");
    let out = Command::new("ssh")
        .args(["-F", "/dev/null", "-o", "StrictHostKeyChecking=yes"])
        .args(["-o", "GlobalKnownHostsFile=/dev/null"])
        .args([
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "PreferredAuthentications=password",
        ])
        .args(["-o", "NumberOfPasswordPrompts=1", "-o", "ConnectTimeout=10"])
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            lab.known_hosts_path().display()
        ))
        .arg("admin@127.0.96.1")
        .arg("hostname")
        .env("SSH_ASKPASS", &askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .stdin(Stdio::null())
        .output()
        .expect("ssh runs");
    assert_eq!(stdout(&out), "pi-master\n");
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn add_node_joins_known_hosts_and_inventory() {
    let tmp = TempDir::new().expect("tempdir");
    let mut lab = start(&tmp, "127.0.97", 1);
    let added = lab.add_node().expect("adds");
    assert_eq!(added.name, "pi-worker-01");
    assert_eq!(added.address, Ipv4Addr::new(127, 0, 97, 2));
    assert_eq!(stdout(&ssh(&lab, &added, "hostname")), "pi-worker-01\n");
    assert_eq!(
        stdout(&ssh(
            &lab,
            &added,
            "cat /etc/drover-lab/node.json; ls /var/lib/drover-lab/network; \
             test -d /run/systemd/system && grep -c ^memory /proc/cgroups"
        )),
        "{\"name\":\"pi-worker-01\",\"address\":\"127.0.97.2\"}\napt\nk3s\nnfs\n1\n"
    );
    let inv = fs::read_to_string(lab.inventory_path()).expect("inventory");
    assert!(inv.contains("    k3s_agents:\n      hosts:\n        pi-worker-01:\n          ansible_host: 127.0.97.2\n"));
    let attached = Lab::attach(lab.dir()).expect("attaches");
    assert_eq!(attached.nodes().len(), 2);
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn start_refuses_a_directory_with_files() {
    let tmp = TempDir::new().expect("tempdir");
    let cfg = LabConfig {
        dir: tmp.path().to_path_buf(),
        ..config(&tmp, "127.0.98", 1)
    };
    fs::write(tmp.path().join("precious"), "x").expect("write");
    assert!(matches!(Lab::start(cfg), Err(LabError::Config(m)) if m.contains("not empty")));
    assert!(tmp.path().join("precious").exists());
}

#[test]
#[allow(clippy::print_stderr)]
#[ignore = "needs root: run scripts/test"]
fn eight_nodes_start_and_answer() {
    let tmp = TempDir::new().expect("tempdir");
    let t0 = Instant::now();
    let lab = start(&tmp, "127.0.99", 8);
    let started = t0.elapsed();
    eprintln!("lab: 8 nodes started in {started:?}");
    for n in lab.nodes() {
        assert_eq!(stdout(&ssh(&lab, n, "hostname")), format!("{}\n", n.name));
    }
    let t1 = Instant::now();
    lab.stop().expect("stops");
    eprintln!("lab: 8 nodes stopped in {:?}", t1.elapsed());
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn a_failed_start_leaves_nothing_behind() {
    let tmp = TempDir::new().expect("tempdir");
    // Something else holds node 2's address.
    let squatter = std::net::TcpListener::bind("127.0.90.2:22").expect("bind");
    let cfg = config(&tmp, "127.0.90", 3);
    let dir = cfg.dir.clone();
    match Lab::start(cfg) {
        Err(LabError::AddressInUse(addr)) => assert_eq!(addr.to_string(), "127.0.90.2:22"),
        other => panic!("expected AddressInUse, got {other:?}"),
    }
    drop(squatter);
    assert!(TcpStream::connect_timeout(
        &"127.0.90.1:22".parse().expect("addr"),
        Duration::from_secs(2)
    )
    .is_err());
    assert!(procs::mounts_at(&dir).is_empty());
    assert!(!dir.exists());
}

/// Run `cmd` as root on `n` through sudo.
fn root(lab: &Lab, n: &Node, cmd: &str) -> Output {
    ssh(lab, n, &format!("sudo -n sh -c {}", shell_quote(cmd)))
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The node answers ssh again within `limit`.
fn answers_within(lab: &Lab, n: &Node, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if ssh(lab, n, "true").status.success() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn nodes_have_their_own_identity_proc_files_and_a_shared_network() {
    let tmp = TempDir::new().expect("tempdir");
    let lab = start(&tmp, "127.0.61", 2);
    let master = node(&lab, "pi-master");
    let worker = node(&lab, "pi-worker-01");
    assert_eq!(
        stdout(&ssh(&lab, &master, "cat /etc/drover-lab/node.json")),
        "{\"name\":\"pi-master\",\"address\":\"127.0.61.1\"}\n"
    );
    assert!(stdout(&ssh(&lab, &worker, "cat /etc/drover-lab/node.json"))
        .contains("\"address\":\"127.0.61.2\""));
    assert_eq!(
        stdout(&ssh(&lab, &master, "cat /boot/firmware/cmdline.txt")),
        doubles::CMDLINE
    );

    // The network directory is one for the whole lab.
    stdout(&root(
        &lab,
        &master,
        "echo hi > /var/lib/drover-lab/network/nfs/probe",
    ));
    assert_eq!(
        stdout(&ssh(
            &lab,
            &worker,
            "cat /var/lib/drover-lab/network/nfs/probe"
        )),
        "hi\n"
    );
    assert!(lab.dir().join("network/nfs/probe").exists());

    // Per-node proc files: memory controller off, own boot id, forwarding
    // set in one node only, never on the host.
    let cg = stdout(&ssh(&lab, &master, "grep ^memory /proc/cgroups"));
    assert!(cg.trim_end().ends_with("\t0"), "{cg:?}");
    let host_boot = fs::read_to_string("/proc/sys/kernel/random/boot_id").expect("boot_id");
    let b1 = stdout(&ssh(&lab, &master, "cat /proc/sys/kernel/random/boot_id"));
    let b2 = stdout(&ssh(&lab, &worker, "cat /proc/sys/kernel/random/boot_id"));
    assert!(
        b1 != b2 && b1 != host_boot && b1.len() == 37,
        "{b1:?} {b2:?}"
    );
    let host_fwd = fs::read_to_string("/proc/sys/net/ipv4/ip_forward").expect("fwd");
    let host_fwd6 = fs::read_to_string("/proc/sys/net/ipv6/conf/all/forwarding").ok();
    stdout(&root(
        &lab,
        &master,
        "echo 1 > /proc/sys/net/ipv4/ip_forward && echo 1 > /proc/sys/net/ipv6/conf/all/forwarding",
    ));
    assert_eq!(
        stdout(&ssh(
            &lab,
            &master,
            "cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv6/conf/all/forwarding"
        )),
        "1\n1\n"
    );
    assert_eq!(
        stdout(&ssh(&lab, &worker, "cat /proc/sys/net/ipv4/ip_forward")),
        "0\n"
    );
    assert_eq!(
        fs::read_to_string("/proc/sys/net/ipv4/ip_forward").expect("fwd"),
        host_fwd
    );
    assert_eq!(
        fs::read_to_string("/proc/sys/net/ipv6/conf/all/forwarding").ok(),
        host_fwd6
    );
    assert!(
        !ssh(&lab, &master, "echo 1 > /proc/sys/net/ipv4/ip_forward")
            .status
            .success()
    );

    // systemd is the nodes' init, sshd one of its units; nothing listens
    // outside the node's address. k3s's doubles are ready for an air-gapped
    // install.
    assert_eq!(
        stdout(&ssh(
            &lab,
            &worker,
            "ps -o comm= -p 1; systemctl is-active ssh; systemctl is-system-running --wait"
        )),
        "systemd\nactive\nrunning\n"
    );
    for n in lab.nodes() {
        assert_eq!(
            lab.foreign_listeners(&n.name).expect("node"),
            Vec::<String>::new()
        );
    }
    // The clock is the host's: a node cannot set it, nor the kernel's
    // timezone (whose first setting shifts the clock).
    let out = root(&lab, &master, "date -s @0");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Operation not permitted"));
    for f in ["k3s", "install.sh"] {
        let m = fs::metadata(lab.dir().join("k3s-airgap").join(f)).expect("airgap file");
        assert_eq!(m.permissions().mode() & 0o777, 0o755);
    }
    let inv = fs::read_to_string(lab.inventory_path()).expect("inventory");
    assert!(inv.contains("    k3s_install_mode: airgap\n"));
    lab.stop().expect("lab stops");
}

/// A unit whose ExecStart writes the node's boot id to /var/tmp/demo.
const DEMO_UNIT: &str =
    "[Unit]\nDescription=demo\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\n\
Environment=WHO=demo\n\
ExecStart=/bin/sh -c 'echo $WHO $(cat /proc/sys/kernel/random/boot_id) > /var/tmp/demo'\n\n\
[Install]\nWantedBy=multi-user.target\n";

#[test]
#[ignore = "needs root: run scripts/test"]
fn systemd_enables_starts_restarts_and_shows_units() {
    let tmp = TempDir::new().expect("tempdir");
    let lab = start(&tmp, "127.0.62", 1);
    let master = node(&lab, "pi-master");
    let put = format!(
        "printf %s {} > /etc/systemd/system/demo.service",
        shell_quote(DEMO_UNIT)
    );
    stdout(&root(&lab, &master, &put));
    stdout(&root(
        &lab,
        &master,
        "systemctl daemon-reload && systemctl enable --now demo",
    ));
    assert_eq!(
        stdout(&ssh(
            &lab,
            &master,
            "systemctl is-active demo; systemctl is-enabled demo.service; \
             systemctl show -p Id,LoadState,ActiveState,SubState,UnitFileState demo; cut -d' ' -f1 /var/tmp/demo"
        )),
        "active\nenabled\nId=demo.service\nLoadState=loaded\nActiveState=active\n\
         SubState=exited\nUnitFileState=enabled\ndemo\n"
    );
    assert!(lab
        .node_root("pi-master")
        .join("etc/systemd/system/multi-user.target.wants/demo.service")
        .is_symlink());

    let out = ssh(
        &lab,
        &master,
        "systemctl show -p LoadState --value nope; sudo -n systemctl start nope",
    );
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "not-found\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Unit nope.service not found."));

    // A failing start fails the unit; its output is in the journal.
    let bad = "printf '[Service]\\nType=oneshot\\nExecStart=/bin/sh -c \"echo boom >&2; exit 3\"\\n' > /etc/systemd/system/bad.service";
    stdout(&root(&lab, &master, bad));
    let out = root(&lab, &master, "systemctl start bad");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Job for bad.service failed"));
    assert_eq!(
        stdout(&root(
            &lab,
            &master,
            "systemctl is-failed bad; journalctl -u bad -o cat --no-pager | grep -x boom"
        )),
        "failed\nboom\n"
    );
    // Restart=on-failure: a daemon that dies is started again.
    let flaky = "printf '[Service]\\nExecStart=/bin/sleep 600\\nRestart=on-failure\\nRestartSec=100ms\\n' \
                 > /etc/systemd/system/flaky.service && systemctl daemon-reload && systemctl start flaky \
                 && systemctl kill -s KILL flaky && sleep 1 && systemctl is-active flaky \
                 && systemctl show -p NRestarts --value flaky";
    assert_eq!(stdout(&root(&lab, &master, flaky)), "active\n1\n");
    // A daemon on another address than the node's is found.
    assert_eq!(
        lab.foreign_listeners("pi-master").expect("node"),
        Vec::<String>::new()
    );
    stdout(&root(
        &lab,
        &master,
        "systemd-run --quiet --unit=leak python3 -m http.server --bind 127.0.0.1 0",
    ));
    let deadline = Instant::now() + Duration::from_secs(20);
    let found = loop {
        let found = lab.foreign_listeners("pi-master").expect("node");
        if !found.is_empty() || Instant::now() > deadline {
            break found;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        found.len() == 1
            && found[0].starts_with("tcp 127.0.0.1:")
            && found[0].ends_with(" (python3)"),
        "{found:?}"
    );
    stdout(&root(&lab, &master, "systemctl stop leak"));
    assert_eq!(
        lab.foreign_listeners("pi-master").expect("node"),
        Vec::<String>::new()
    );
    // A loaded unit changed on disk: systemd's warning until daemon-reload.
    let out = root(
        &lab,
        &master,
        "echo '# edited' >> /etc/systemd/system/demo.service && systemctl restart demo",
    );
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("systemctl daemon-reload"));
    let out = root(
        &lab,
        &master,
        "systemctl daemon-reload && systemctl restart demo",
    );
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    stdout(&root(&lab, &master, "systemctl disable --now demo"));
    assert_eq!(
        String::from_utf8_lossy(
            &ssh(
                &lab,
                &master,
                "systemctl is-enabled demo; systemctl is-active demo"
            )
            .stdout
        ),
        "disabled\ninactive\n"
    );
    lab.stop().expect("lab stops");
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn reboot_boots_the_node_again_with_the_cgroup_flag_of_its_cmdline() {
    let tmp = TempDir::new().expect("tempdir");
    let lab = start(&tmp, "127.0.63", 2);
    let master = node(&lab, "pi-master");
    let worker = node(&lab, "pi-worker-01");
    let worker_boot = stdout(&ssh(&lab, &worker, "cat /proc/sys/kernel/random/boot_id"));
    let put = format!(
        "printf %s {} > /etc/systemd/system/demo.service && systemctl enable demo \
         && sed -i 's/$/ cgroup_memory=1 cgroup_enable=memory/' /boot/firmware/cmdline.txt",
        shell_quote(DEMO_UNIT)
    );
    stdout(&root(&lab, &master, &put));
    let before = stdout(&ssh(
        &lab,
        &master,
        "cat /proc/sys/kernel/random/boot_id; grep ^memory /proc/cgroups | cut -f4",
    ));
    assert!(before.ends_with("\n0\n"), "{before}");
    let mut session = open_session(&lab, &master);

    let t0 = Instant::now();
    stdout(&root(&lab, &master, "reboot"));
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "reboot returns at once"
    );
    assert!(
        exits_within(&mut session, Duration::from_secs(10)).is_some(),
        "the open session is dropped"
    );
    assert!(answers_within(&lab, &master, Duration::from_secs(30)));
    let after = stdout(&ssh(
        &lab,
        &master,
        "cat /proc/sys/kernel/random/boot_id; grep ^memory /proc/cgroups | cut -f4; \
         systemctl is-active demo; cut -d' ' -f2 /var/tmp/demo; journalctl --list-boots --no-pager | wc -l",
    ));
    let lines: Vec<&str> = after.lines().collect();
    assert_eq!(lines.len(), 5, "{after}");
    assert_ne!(lines[0], before.lines().next().unwrap_or_default());
    assert_eq!(
        lines[1], "1",
        "cmdline.txt's cgroup flags took effect at boot"
    );
    assert_eq!(lines[2], "active");
    assert_eq!(lines[3], lines[0], "the enabled unit ran during the boot");
    assert_eq!(lines[4], "3", "the journal has both boots (and its header)");
    // Only the node's own enabled units: none of the host's.
    assert_eq!(
        stdout(&ssh(
            &lab,
            &master,
            "ls /etc/systemd/system/multi-user.target.wants/"
        )),
        "demo.service\nssh.service\n"
    );
    // Only the rebooted node was touched; the lab still runs it.
    assert_eq!(
        stdout(&ssh(&lab, &worker, "cat /proc/sys/kernel/random/boot_id")),
        worker_boot
    );
    let i = lab.index_of("pi-master").expect("index");
    assert!(lab.is_running(i));

    // shutdown -r works too; a non-root reboot is refused.
    assert!(!ssh(&lab, &worker, "reboot").status.success());
    stdout(&root(&lab, &worker, "shutdown -r now"));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = ssh(&lab, &worker, "cat /proc/sys/kernel/random/boot_id");
        if out.status.success() && String::from_utf8_lossy(&out.stdout) != worker_boot {
            break;
        }
        assert!(Instant::now() < deadline, "the worker did not reboot");
        std::thread::sleep(Duration::from_millis(200));
    }
    // A poweroff from inside stays off.
    let _ = root(&lab, &worker, "poweroff");
    let deadline = Instant::now() + Duration::from_secs(30);
    while lab.nodes()[1].pid.is_some_and(procs::alive) {
        assert!(Instant::now() < deadline, "the worker did not power off");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(refuses(&worker));
    let cgs = cgroups(&lab);
    lab.stop().expect("lab stops");
    assert_eq!(processes_in(&cgs), Vec::<u32>::new());
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn apt_installs_from_the_lab_repository_into_one_node() {
    let tmp = TempDir::new().expect("tempdir");
    let lab = start(&tmp, "127.0.64", 2);
    let master = node(&lab, "pi-master");
    let worker = node(&lab, "pi-worker-01");
    let out = root(
        &lab,
        &master,
        "apt-get update 2>&1 && apt-get install -y drover-lab-hello nfs-common 2>&1",
    );
    let text = stdout(&out);
    assert!(!text.contains("W: "), "apt warned:\n{text}");
    assert_eq!(
        stdout(&ssh(
            &lab,
            &master,
            "drover-lab-hello; dpkg-query -W -f '${Status}\\n' drover-lab-hello; ls -l /sbin/mount.nfs | cut -c1-10"
        )),
        "hello from the drover lab\ninstall ok installed\n-rwxr-xr-x\n"
    );
    let other = ssh(&lab, &worker, "dpkg-query -W drover-lab-hello");
    assert!(!other.status.success());
    assert!(!Path::new("/usr/bin/drover-lab-hello").exists());
    // apt's sandbox user read the repository (no "as root" fallback note).
    assert!(!text.contains("unsandboxed"), "{text}");
    lab.stop().expect("lab stops");
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn nfs_exports_of_one_node_mount_on_another() {
    let tmp = TempDir::new().expect("tempdir");
    let lab = start(&tmp, "127.0.65", 3);
    let master = node(&lab, "pi-master");
    let worker = node(&lab, "pi-worker-01");
    let other = node(&lab, "pi-worker-02");
    stdout(&root(
        &lab,
        &master,
        "apt-get update -qq && apt-get install -y -qq nfs-kernel-server >/dev/null \
         && systemctl is-active nfs-kernel-server && mkdir -p /srv/share /srv/one \
         && echo before > /srv/share/old \
         && printf '/srv/share 127.0.65.0/24(rw,sync,no_subtree_check)\\n/srv/one 127.0.65.3(ro) pi-none(rw)\\n' >> /etc/exports \
         && exportfs -ra && echo shared > /srv/share/file",
    ));
    // The real NFS server (Ganesha) listens on the server node's address.
    assert!(TcpStream::connect("127.0.65.1:2049").is_ok());
    let published =
        fs::read_to_string(lab.dir().join("network/nfs/127.0.65.1/exports")).expect("exports");
    assert!(published.contains("/srv/share\t127.0.65.0/24(rw,sync,no_subtree_check)\n"));

    for n in [&worker, &other] {
        stdout(&root(
            &lab,
            n,
            "apt-get update -qq && apt-get install -y -qq nfs-common >/dev/null && mkdir -p /mnt/share /mnt/one",
        ));
    }
    assert_eq!(
        stdout(&root(
            &lab,
            &worker,
            "mount -t nfs pi-master:/srv/share /mnt/share && cat /mnt/share/old /mnt/share/file \
             && echo back > /mnt/share/back && umount /mnt/share && ls /mnt/share"
        )),
        "before\nshared\n"
    );
    assert_eq!(stdout(&ssh(&lab, &master, "cat /srv/share/back")), "back\n");
    // /srv/one is only for 127.0.65.3.
    let out = root(&lab, &worker, "mount 127.0.65.1:/srv/one /mnt/one -t nfs4");
    assert_eq!(out.status.code(), Some(32));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("mount.nfs4: access denied by server while mounting 127.0.65.1:/srv/one"));
    stdout(&root(
        &lab,
        &other,
        "mount -t nfs 127.0.65.1:/srv/one /mnt/one && umount /mnt/one",
    ));
    // A path the server does not export.
    let out = root(&lab, &worker, "mount -t nfs pi-master:/srv/none /mnt/one");
    assert_eq!(out.status.code(), Some(32));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "mount.nfs: mounting pi-master:/srv/none failed, reason given by server: No such file or directory\n"
    );
    // As the mount module does it: an fstab entry, then `mount DIR`.
    assert_eq!(
        stdout(&root(
            &lab,
            &other,
            "echo 'pi-master:/srv/share /mnt/share nfs defaults,_netdev 0 0' >> /etc/fstab \
             && mount /mnt/share && mountpoint -q /mnt/share && cat /mnt/share/back"
        )),
        "back\n"
    );

    // Bad lines are rejected as exportfs does.
    for bad in ["srv/rel *(rw)", "/srv/share *(rw,bogus)"] {
        let out = root(
            &lab,
            &master,
            &format!(
                "mkdir -p /etc/exports.d; echo {} > /etc/exports.d/bad.exports; exportfs -r",
                shell_quote(bad)
            ),
        );
        assert_eq!(out.status.code(), Some(1), "{bad}");
        assert!(String::from_utf8_lossy(&out.stderr)
            .starts_with("exportfs: /etc/exports.d/bad.exports:1: "));
    }
    stdout(&root(&lab, &master, "rm /etc/exports.d/bad.exports"));

    // A stopped server: refused connections until retry= (minutes) runs out.
    stdout(&root(&lab, &master, "systemctl stop nfs-kernel-server"));
    assert!(TcpStream::connect("127.0.65.1:2049").is_err());
    let out = root(&lab, &other, "mount -o retry=0 pi-master:/srv/one /mnt/one");
    assert_eq!(out.status.code(), Some(32));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "mount.nfs: Connection timed out\n"
    );
    stdout(&root(&lab, &master, "systemctl start nfs-kernel-server"));
    assert!(TcpStream::connect("127.0.65.1:2049").is_ok());
    // Stopping the lab stops the server with its node.
    lab.stop().expect("lab stops");
    assert!(TcpStream::connect("127.0.65.1:2049").is_err());
}

#[test]
fn the_down_command_names_a_directory_other_than_the_default() {
    assert_eq!(down_command(Path::new(DEFAULT_DIR)), "drover lab down");
    assert_eq!(
        down_command(Path::new("/tmp/my lab")),
        "drover lab down --dir '/tmp/my lab'"
    );
}
