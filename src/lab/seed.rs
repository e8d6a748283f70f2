//! A node's seed: the files written into its overlay's upper directory
//! before the overlay is mounted (editing an upper directory under a live
//! overlay is undefined). Users, sudoers, authorized_keys, hostname, hosts,
//! fresh host keys, the node's own sshd configuration, and the lab's node
//! environment: node.json, cmdline.txt, its systemd setup (host units
//! hidden, sshd as ssh.service) and apt sources naming only the lab's
//! repository.
//!
//! The account files are edited as text by pure functions so that they can
//! be unit-tested without root.

use std::fmt::Write as _;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::{chown, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use super::{doubles, IoContext, LabError};

/// The lab's user on every node.
pub(super) const USER: &str = "admin";

/// Path, inside a node, of the sshd configuration the lab writes.
pub(super) const SSHD_CONFIG: &str = "/etc/ssh/sshd_config.drover-lab";

/// Host key algorithms each node gets, as ssh-keygen `-t` values.
const HOST_KEY_TYPES: [&str; 2] = ["ed25519", "ecdsa"];

/// Everything one node's seed depends on.
pub(super) struct Seed<'a> {
    /// The node's upper directory (created by the caller, empty).
    pub upper: &'a Path,
    /// Its overlay's lower layer (`/`, or the arm64 root): the seed edits
    /// its account files and copies its modes.
    pub lower: &'a Path,
    /// Hostname.
    pub name: &'a str,
    /// Where its sshd listens.
    pub listen: SocketAddr,
    /// Every lab node known when this one is seeded, for /etc/hosts.
    pub hosts: &'a [(String, Ipv4Addr)],
    /// crypt(3) hash of admin's password.
    pub password_hash: &'a str,
    /// sudo without a password.
    pub sudo_nopasswd: bool,
    /// Content of admin's authorized_keys.
    pub authorized_keys: &'a str,
}

impl Seed<'_> {
    /// A node on this machine's userland boots its systemd; an arm64 node
    /// (another lower layer) runs sshd only.
    fn boots_systemd(&self) -> bool {
        self.lower == Path::new("/")
    }
}

/// Write the whole seed of one node.
pub(super) fn write(seed: &Seed<'_>) -> Result<(), LabError> {
    let (up, lo) = (seed.upper, seed.lower);
    let passwd = read_host(lo, "etc/passwd")?;
    let group = read_host(lo, "etc/group")?;
    let id = free_id(&passwd, &group);

    for rel in ["etc/ssh", "etc/sudoers.d", "home"] {
        mkdir_like_host(lo, up, rel)?;
    }

    write_like_host(lo, up, "etc/passwd", &edit_passwd(&passwd, id))?;
    write_like_host(lo, up, "etc/group", &edit_group(&group, id))?;
    let gshadow = read_host(lo, "etc/gshadow")?;
    write_like_host(lo, up, "etc/gshadow", &edit_gshadow(&gshadow))?;
    let shadow = read_host(lo, "etc/shadow")?;
    let day = days_since_epoch();
    write_like_host(
        lo,
        up,
        "etc/shadow",
        &edit_shadow(&shadow, seed.password_hash, day),
    )?;

    let rule = if seed.sudo_nopasswd {
        format!("{USER} ALL=(ALL:ALL) NOPASSWD: ALL\n")
    } else {
        format!("{USER} ALL=(ALL:ALL) ALL\n")
    };
    write_file(&up.join("etc/sudoers.d").join(USER), &rule, 0o440, (0, 0))?;

    write_file(
        &up.join("etc/hostname"),
        &format!("{}\n", seed.name),
        0o644,
        (0, 0),
    )?;
    write_file(
        &up.join("etc/hosts"),
        &hosts_file(seed.name, seed.hosts),
        0o644,
        (0, 0),
    )?;

    let home = up.join("home").join(USER);
    make_dir(&home, 0o755, (id, id))?;
    make_dir(&home.join(".ssh"), 0o700, (id, id))?;
    write_file(
        &home.join(".ssh/authorized_keys"),
        seed.authorized_keys,
        0o600,
        (id, id),
    )?;

    write_node_environment(seed)?;
    new_host_keys(up, seed.name)?;
    write_file(
        &up.join(SSHD_CONFIG.trim_start_matches('/')),
        &sshd_config(seed.name, seed.listen),
        0o644,
        (0, 0),
    )?;
    Ok(())
}

/// The lab's additions to a node (see [`super::doubles`]): node.json, the
/// mount point of the shared network directory, a fresh cmdline.txt, its
/// systemd setup, and apt sources naming only the lab's repository.
fn write_node_environment(seed: &Seed<'_>) -> Result<(), LabError> {
    let (up, lo) = (seed.upper, seed.lower);
    let root = (0, 0);
    for rel in [
        "etc/drover-lab",
        "var/lib/drover-lab/network",
        "boot/firmware",
        "etc/apt/sources.list.d",
    ] {
        mkdir_like_host(lo, up, rel)?;
    }
    let addr = match seed.listen.ip() {
        std::net::IpAddr::V4(a) => a,
        std::net::IpAddr::V6(_) => Ipv4Addr::LOCALHOST,
    };
    write_file(
        &up.join("etc/drover-lab/node.json"),
        &doubles::node_json(seed.name, addr),
        0o644,
        root,
    )?;
    write_file(
        &up.join("boot/firmware/cmdline.txt"),
        doubles::CMDLINE,
        0o755,
        root,
    )?;
    if seed.boots_systemd() {
        write_systemd_config(seed)?;
    } else {
        super::arm64::install_reboot_double(lo, up)?;
    }

    // Only the lab's repository, and none of the host's enabled units (nodes
    // share the host's network: its postgresql, cron, timers would run once
    // more in every node): the host's files are hidden by overlay whiteouts.
    write_file(&up.join("etc/apt/sources.list"), "", 0o644, root)?;
    // apt reads only these two suffixes; other files need no hiding.
    let mut hide = host_entries(lo, "etc/apt/sources.list.d", |n| {
        n.ends_with(".list") || n.ends_with(".sources")
    });
    if seed.boots_systemd() {
        let wants = host_entries(lo, "etc/systemd/system", |n| {
            n.ends_with(".wants") || n.ends_with(".requires")
        });
        for dir in &wants {
            let rel = dir.to_string_lossy();
            hide.extend(host_entries(lo, &rel, |n| {
                !(rel.as_ref() == WANTS && n == "ssh.service")
            }));
            mkdir_like_host(lo, up, &rel)?;
        }
        // A fresh machine's /tmp is empty (systemd-tmpfiles would otherwise
        // empty it at every boot, one copy-up at a time).
        hide.extend(host_entries(lo, "tmp", |_| true));
        mkdir_like_host(lo, up, "tmp")?;
        // A container image's policy-rc.d forbids package scripts to start
        // services; a node is a whole machine.
        if lo.join(POLICY_RC_D).exists() {
            mkdir_like_host(lo, up, "usr/sbin")?;
            hide.push(PathBuf::from(POLICY_RC_D));
        }
    } else {
        // No init runs there: no unit is started, and policy-rc.d stays.
        hide.extend(host_entries(lo, WANTS, |_| true));
        mkdir_like_host(lo, up, WANTS)?;
    }
    // Nor the host's package lists: a node starts with none, last updated
    // at the epoch, so that `apt: update_cache` with a `cache_valid_time`
    // reads the lab's repository whenever the host itself updated lately
    // (as CI's setup does).
    let lists: Vec<PathBuf> = host_entries(lo, APT_LISTS, |n| {
        !matches!(n, "lock" | "partial" | "auxfiles")
    })
    .into_iter()
    .chain(host_entries(lo, APT_PERIODIC, |n| {
        n == "update-success-stamp"
    }))
    .collect();
    hide.extend(lists);
    for dir in [APT_LISTS, APT_PERIODIC] {
        mkdir_like_host(lo, up, dir)?;
    }
    if !hide.is_empty() {
        whiteouts(up, &hide)?;
    }
    super::run(
        Command::new("touch")
            .args(["-d", "@0"])
            .arg(up.join(APT_LISTS)),
    )?;
    write_file(
        &up.join("etc/apt/sources.list.d/drover-lab.list"),
        doubles::APT_SOURCE,
        0o644,
        root,
    )
}

/// Where systemd finds the units enabled for multi-user.target.
const WANTS: &str = "etc/systemd/system/multi-user.target.wants";

/// A container image's veto on service starts in package scripts.
const POLICY_RC_D: &str = "usr/sbin/policy-rc.d";

/// Units a node never runs: they would act on the host (its clock, kernel
/// modules and file systems, binfmt registrations, consoles) through the
/// kernel the nodes share, or have nothing to do (the root is the lab's
/// overlay, not an fstab entry).
const MASKED_UNITS: [&str; 21] = [
    "systemd-timesyncd.service",
    "systemd-remount-fs.service",
    "binfmt-support.service",
    "modprobe@.service",
    "systemd-modules-load.service",
    "kmod-static-nodes.service",
    "dev-hugepages.mount",
    "dev-mqueue.mount",
    "sys-kernel-debug.mount",
    "sys-kernel-tracing.mount",
    "sys-kernel-config.mount",
    "sys-fs-fuse-connections.mount",
    "systemd-pcrphase.service",
    "systemd-pcrphase-sysinit.service",
    "systemd-binfmt.service",
    "proc-sys-fs-binfmt_misc.automount",
    "console-getty.service",
    "container-getty@.service",
    "getty@.service",
    "serial-getty@.service",
    "systemd-networkd.service",
];

/// Generators a node does without: what they look for (encrypted or
/// verity volumes, GPT partitions, hibernation images, the host's
/// PostgreSQL clusters) is the host's, and each costs every boot a process.
const MASKED_GENERATORS: [&str; 9] = [
    "postgresql-generator",
    "systemd-cryptsetup-generator",
    "systemd-gpt-auto-generator",
    "systemd-hibernate-resume-generator",
    "systemd-integritysetup-generator",
    "systemd-veritysetup-generator",
    "systemd-debug-generator",
    "systemd-system-update-generator",
    "systemd-getty-generator",
];

/// The node's sshd is the distribution's ssh.service, on the lab's
/// configuration (its address only, the lab's keys).
fn ssh_dropin() -> String {
    format!(
        "# drover lab: the node's sshd uses the lab's configuration.\n\
         [Service]\n\
         ExecStartPre=\n\
         ExecStartPre=/usr/sbin/sshd -t -f {SSHD_CONFIG}\n\
         ExecStart=\n\
         ExecStart=/usr/sbin/sshd -D -e -f {SSHD_CONFIG}\n\
         ExecReload=\n\
         ExecReload=/usr/sbin/sshd -t -f {SSHD_CONFIG}\n\
         ExecReload=/bin/kill -HUP $MAINPID\n"
    )
}

/// The node's systemd setup: its own machine id, the masked units and
/// generators, sshd's drop-in.
fn write_systemd_config(seed: &Seed<'_>) -> Result<(), LabError> {
    let up = seed.upper;
    let root = (0, 0);
    let id = doubles::new_uuid().replace('-', "");
    write_file(&up.join("etc/machine-id"), &format!("{id}\n"), 0o444, root)?;
    let units = up.join("etc/systemd/system");
    mkdir_like_host(seed.lower, up, "etc/systemd/system")?;
    for unit in MASKED_UNITS {
        let link = units.join(unit);
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink("/dev/null", &link).at(&link)?;
    }
    mkdir_like_host(seed.lower, up, "etc/systemd/system-generators")?;
    for g in MASKED_GENERATORS {
        let link = up.join("etc/systemd/system-generators").join(g);
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink("/dev/null", &link).at(&link)?;
    }
    let dropin = units.join("ssh.service.d");
    make_dir(&dropin, 0o755, root)?;
    write_file(&dropin.join("drover-lab.conf"), &ssh_dropin(), 0o644, root)?;
    // Eight journals in the lab's memory: small ones.
    mkdir_like_host(seed.lower, up, "etc/systemd/journald.conf.d")?;
    write_file(
        &up.join("etc/systemd/journald.conf.d/drover-lab.conf"),
        "# drover lab: nodes keep their journals in the lab's memory.\n\
         [Journal]\nSystemMaxUse=8M\nSystemMaxFileSize=2M\nRuntimeMaxUse=8M\nRuntimeMaxFileSize=2M\n",
        0o644,
        root,
    )
}

/// apt's package lists, and the directory of its update-success stamp.
const APT_LISTS: &str = "var/lib/apt/lists";
const APT_PERIODIC: &str = "var/lib/apt/periodic";

/// The entries of the lower layer's directory `rel` whose names pass
/// `keep`, as relative paths.
fn host_entries(lower: &Path, rel: &str, keep: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(lower.join(rel)) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| keep(&e.file_name().to_string_lossy()))
        .map(|e| Path::new(rel).join(e.file_name()))
        .collect()
}

/// Hide the host's files `rels` in the node: an overlay whiteout is a
/// character device 0/0 in the upper directory. One shell makes them all
/// (std has no mknod, and the crate has no unsafe code).
fn whiteouts(upper: &Path, rels: &[PathBuf]) -> Result<(), LabError> {
    super::run(
        Command::new("sh")
            .args([
                "-c",
                r#"for f do mknod "$f" c 0 0 || exit 1; done"#,
                "drover-lab-whiteouts",
            ])
            .args(rels.iter().map(|r| upper.join(r))),
    )
    .map(|_| ())
}

/// Generate the node's host keys into upper/etc/ssh, replacing old ones.
pub(super) fn new_host_keys(upper: &Path, name: &str) -> Result<(), LabError> {
    let mut children = Vec::new();
    for t in HOST_KEY_TYPES {
        let key = host_key_path(upper, t);
        for p in [key.clone(), key.with_extension("pub")] {
            match fs::remove_file(&p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(LabError::Io { path: p, source: e });
                }
                _ => {}
            }
        }
        let mut cmd = Command::new("ssh-keygen");
        cmd.args(["-q", "-t", t, "-N", "", "-C"])
            .arg(format!("root@{name}"))
            .arg("-f")
            .arg(&key)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let child = cmd.spawn().at(Path::new("ssh-keygen"))?;
        children.push(child);
    }
    // Run the generators side by side, then collect them all.
    for child in children {
        super::finish("ssh-keygen", child)?;
    }
    Ok(())
}

/// Where the host key of algorithm `t` (ssh-keygen name) lives in an upper dir.
fn host_key_path(upper: &Path, t: &str) -> PathBuf {
    upper.join(format!("etc/ssh/ssh_host_{t}_key"))
}

/// The node's public host keys as `algorithm base64` pairs.
pub(super) fn public_host_keys(upper: &Path) -> Result<Vec<String>, LabError> {
    let mut keys = Vec::new();
    for t in HOST_KEY_TYPES {
        let path = host_key_path(upper, t).with_extension("pub");
        let text = fs::read_to_string(&path).at(&path)?;
        let mut fields = text.split_whitespace();
        match (fields.next(), fields.next()) {
            (Some(alg), Some(b64)) => keys.push(format!("{alg} {b64}")),
            _ => {
                return Err(LabError::Io {
                    path,
                    source: std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "not an OpenSSH public key",
                    ),
                })
            }
        }
    }
    Ok(keys)
}

/// The node's sshd configuration. Limits (MaxSessions, MaxStartups,
/// PerSourcePenalties) stay at OpenSSH's defaults on purpose: drover must
/// cope with them as it does on the real cluster.
pub(super) fn sshd_config(name: &str, listen: SocketAddr) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# drover lab node {name}: written by the lab before the node started."
    );
    let _ = writeln!(s, "ListenAddress {listen}");
    for t in HOST_KEY_TYPES {
        let _ = writeln!(s, "HostKey /etc/ssh/ssh_host_{t}_key");
    }
    s.push_str(
        "PidFile none\n\
         UsePAM no\n\
         PermitRootLogin no\n\
         PubkeyAuthentication yes\n\
         PasswordAuthentication yes\n\
         KbdInteractiveAuthentication no\n\
         AuthorizedKeysFile .ssh/authorized_keys\n\
         StrictModes no\n\
         PrintMotd no\n\
         LogLevel VERBOSE\n\
         AcceptEnv LANG LC_*\n\
         Subsystem sftp internal-sftp\n",
    );
    s
}

/// /etc/hosts: loopback names and every lab node known at seed time.
pub(super) fn hosts_file(own: &str, hosts: &[(String, Ipv4Addr)]) -> String {
    let mut s = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    if !hosts.iter().any(|(n, _)| n == own) {
        let _ = writeln!(s, "127.0.1.1\t{own}");
    }
    for (n, a) in hosts {
        let _ = writeln!(s, "{a}\t{n}");
    }
    s
}

/// The smallest id ≥ 1000 free both as a uid and as a gid (ignoring an
/// existing `admin`, which the seed replaces).
pub(super) fn free_id(passwd: &str, group: &str) -> u32 {
    let used = |text: &str, field: usize| -> Vec<u32> {
        text.lines()
            .filter(|l| l.split(':').next() != Some(USER))
            .filter_map(|l| l.split(':').nth(field)?.parse().ok())
            .collect()
    };
    let uids = used(passwd, 2);
    let gids = used(group, 2);
    let mut id = 1000;
    while uids.contains(&id) || gids.contains(&id) {
        id += 1;
    }
    id
}

/// Lines of `text` except the one for `admin`.
fn without_admin(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .filter(|l| !l.is_empty() && l.split(':').next() != Some(USER))
}

/// Add `admin` to the member list in field `field` of `line`, if `line`
/// describes group `group`.
fn add_member(line: &str, group: &str, field: usize) -> String {
    let mut fields: Vec<String> = line.split(':').map(str::to_string).collect();
    if fields.first().map(String::as_str) != Some(group) || fields.len() <= field {
        return line.to_string();
    }
    let members = &mut fields[field];
    if !members.split(',').any(|m| m == USER) {
        if !members.is_empty() {
            members.push(',');
        }
        members.push_str(USER);
    }
    fields.join(":")
}

/// /etc/passwd with `admin` (uid = gid = `id`, home /home/admin, bash).
pub(super) fn edit_passwd(host: &str, id: u32) -> String {
    let mut s: String = without_admin(host).map(|l| format!("{l}\n")).collect();
    let _ = writeln!(
        s,
        "{USER}:x:{id}:{id}:drover lab admin:/home/{USER}:/bin/bash"
    );
    s
}

/// /etc/group with group `admin` and `admin` in `sudo`.
pub(super) fn edit_group(host: &str, id: u32) -> String {
    let mut s: String = without_admin(host)
        .map(|l| format!("{}\n", add_member(l, "sudo", 3)))
        .collect();
    let _ = writeln!(s, "{USER}:x:{id}:");
    s
}

/// /etc/gshadow with group `admin` and `admin` in `sudo`.
pub(super) fn edit_gshadow(host: &str) -> String {
    let mut s: String = without_admin(host)
        .map(|l| format!("{}\n", add_member(l, "sudo", 3)))
        .collect();
    let _ = writeln!(s, "{USER}:!::");
    s
}

/// /etc/shadow with admin's password hash, last changed on `day` (days
/// since the epoch: 0 would force a password change at login).
pub(super) fn edit_shadow(host: &str, hash: &str, day: u64) -> String {
    let mut s: String = without_admin(host).map(|l| format!("{l}\n")).collect();
    let _ = writeln!(s, "{USER}:{hash}:{day}:0:99999:7:::");
    s
}

fn days_since_epoch() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() / 86_400)
        .unwrap_or(0)
}

fn read_host(lower: &Path, rel: &str) -> Result<String, LabError> {
    let path = lower.join(rel);
    fs::read_to_string(&path).at(&path)
}

/// Create `upper/rel` and its parents with the mode and owner of the lower
/// layer's `rel` (root 0755 when it has none), so that the merged view keeps
/// the lower layer's permissions.
pub(super) fn mkdir_like_host(lower: &Path, upper: &Path, rel: &str) -> Result<(), LabError> {
    let mut host = lower.to_path_buf();
    let mut dir = upper.to_path_buf();
    for part in Path::new(rel).components() {
        host.push(part);
        dir.push(part);
        if dir.is_dir() {
            continue;
        }
        let (mode, owner) = match fs::metadata(&host) {
            Ok(m) => (m.mode() & 0o7777, (m.uid(), m.gid())),
            Err(_) => (0o755, (0, 0)),
        };
        make_dir(&dir, mode, owner)?;
    }
    Ok(())
}

/// Write `upper/rel` with the mode and owner of the lower layer's `rel`.
fn write_like_host(lower: &Path, upper: &Path, rel: &str, text: &str) -> Result<(), LabError> {
    let host = lower.join(rel);
    let m = fs::metadata(&host).at(&host)?;
    write_file(
        &upper.join(rel),
        text,
        m.mode() & 0o7777,
        (m.uid(), m.gid()),
    )
}

pub(super) fn make_dir(path: &Path, mode: u32, owner: (u32, u32)) -> Result<(), LabError> {
    match fs::create_dir(path) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            return Err(LabError::Io {
                path: path.to_path_buf(),
                source: e,
            })
        }
        _ => {}
    }
    set_meta(path, mode, owner)
}

pub(super) fn write_file(
    path: &Path,
    text: &str,
    mode: u32,
    owner: (u32, u32),
) -> Result<(), LabError> {
    fs::write(path, text).at(path)?;
    set_meta(path, mode, owner)
}

fn set_meta(path: &Path, mode: u32, (uid, gid): (u32, u32)) -> Result<(), LabError> {
    chown(path, Some(uid), Some(gid)).at(path)?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).at(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\nbob:x:1000:1000::/home/bob:/bin/sh\nadmin:x:1001:1001::/x:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nsudo:x:27:\nwheel:x:10:bob\nbob:x:1000:\nusers:x:1002:\n";

    #[test]
    fn free_id_skips_used_uids_and_gids_but_not_an_old_admin() {
        assert_eq!(free_id(PASSWD, GROUP), 1001);
        assert_eq!(free_id("root:x:0:0::/:/bin/sh\n", "root:x:0:\n"), 1000);
    }

    #[test]
    fn passwd_replaces_an_existing_admin() {
        let out = edit_passwd(PASSWD, 1001);
        assert_eq!(out.lines().filter(|l| l.starts_with("admin:")).count(), 1);
        assert!(out.ends_with("admin:x:1001:1001:drover lab admin:/home/admin:/bin/bash\n"));
        assert!(out.starts_with("root:x:0:0:root:/root:/bin/bash\nbob:"));
    }

    #[test]
    fn group_adds_admin_to_sudo_once() {
        let out = edit_group(GROUP, 1001);
        assert!(out.contains("\nsudo:x:27:admin\n"));
        assert!(out.contains("\nwheel:x:10:bob\n"));
        assert!(out.ends_with("admin:x:1001:\n"));
        let again = edit_group(&out, 1001);
        assert!(again.contains("\nsudo:x:27:admin\n"));
        assert_eq!(
            add_member("sudo:x:27:bob", "sudo", 3),
            "sudo:x:27:bob,admin"
        );
    }

    #[test]
    fn gshadow_adds_admin_to_sudo_members() {
        let out = edit_gshadow("root:*::\nsudo:*::\n");
        assert_eq!(out, "root:*::\nsudo:*::admin\nadmin:!::\n");
    }

    #[test]
    fn shadow_has_a_current_change_date() {
        let out = edit_shadow("root:*:19000:0:99999:7:::\n", "$6$s$h", 20000);
        assert_eq!(
            out,
            "root:*:19000:0:99999:7:::\nadmin:$6$s$h:20000:0:99999:7:::\n"
        );
    }

    #[test]
    fn sshd_config_listens_on_the_node_address_only() {
        let c = sshd_config("pi-master", "127.0.2.1:22".parse().expect("addr"));
        assert!(c.contains("\nListenAddress 127.0.2.1:22\n"));
        assert!(c.contains("\nHostKey /etc/ssh/ssh_host_ed25519_key\n"));
        assert!(!c.contains("MaxSessions") && !c.contains("MaxStartups"));
    }

    #[test]
    fn hosts_names_every_node() {
        let hosts = vec![
            ("pi-master".to_string(), Ipv4Addr::new(127, 0, 2, 1)),
            ("pi-worker-01".to_string(), Ipv4Addr::new(127, 0, 2, 2)),
        ];
        let h = hosts_file("pi-worker-01", &hosts);
        assert!(h.contains("127.0.2.1\tpi-master\n127.0.2.2\tpi-worker-01\n"));
        assert!(!h.contains("127.0.1.1"));
    }
}
