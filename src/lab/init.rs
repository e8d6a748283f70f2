//! A node's init: real systemd as PID 1 of the node's own PID namespace.
//!
//! Each node has a supervisor: a shell in the host's namespaces that puts
//! itself in the node's cgroup (in the `name=systemd` v1 hierarchy and in the
//! cgroup2 one: this needs the host's hybrid cgroup layout) and boots the
//! node with `unshare --pid --fork --mount --uts --cgroup`. In there,
//! [`NODE_BOOT`] mounts the node's overlay and its kernel file systems and
//! becomes `/lib/systemd/systemd` (`container=lab`), which starts the node's
//! units, sshd among them.
//!
//! A `reboot` in a node ends its systemd the way the kernel ends the init of
//! a PID namespace that reboots: with SIGHUP (a poweroff, with SIGINT). The
//! supervisor then boots the node again on the same upper directory; on any
//! other end it exits. Every boot has a new boot id and a `/proc/cgroups`
//! whose memory line follows the node's `/boot/firmware/cmdline.txt`: the
//! lab's stand-in for the Raspberry Pi kernel's `cgroup_memory=1
//! cgroup_enable=memory` flags (nothing is really limited: the node gets no
//! delegated controllers, so memory limits are not enforced).
//!
//! A node's processes are found through its cgroup, which they cannot leave
//! (their cgroup namespace is rooted there).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::LabError;

/// The v1 hierarchy systemd keeps its own tree in, and the cgroup2 one.
const NAMED_HIERARCHY: &str = "/sys/fs/cgroup/systemd";
const UNIFIED_HIERARCHY: &str = "/sys/fs/cgroup/unified";
/// Where the lab's node cgroups live in both hierarchies.
const CGROUP_PARENT: &str = "drover-lab";

/// Marks the supervisor's command line (see [`is_supervisor`]).
pub(super) const SUPERVISOR_NAME: &str = "drover-lab-supervisor";

/// The supervisor, run by `sh -c` in the host's namespaces. Arguments: the
/// node's cgroup (relative to a hierarchy's root), then [`NODE_BOOT`]'s
/// arguments. `$NODE_BOOT` holds that script. Exits with the status of the
/// last boot (129: rebooted while nothing could boot it again). Before each
/// boot it writes the node's /proc files, which the boot mounts.
pub(super) const SUPERVISOR: &str = r#"cg=$1
shift
for h in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified; do
    mkdir -p "$h/$cg" && echo $$ > "$h/$cg/cgroup.procs" || exit 1
done
while :; do
    # This boot's /proc files: a new boot id, and /proc/cgroups' memory line
    # from cmdline.txt (the node's, always in its upper directory), as the
    # Pi kernel reads its flags at boot.
    cat /proc/sys/kernel/random/uuid > "$5/proc/boot_id"
    mem=0
    if [ -f "$1/boot/firmware/cmdline.txt" ]; then
        mem=$(awk '{ for (i = 1; i <= NF; i++) { if ($i == "cgroup_memory=1") a = 1; if ($i == "cgroup_enable=memory") b = 1 } }
                   END { print (a && b) ? 1 : 0 }' "$1/boot/firmware/cmdline.txt")
    fi
    awk -v m="$mem" 'BEGIN { FS = OFS = "\t" } $1 == "memory" && NF == 4 { $4 = m; s = 1 } { print }
                     END { if (!s) print "memory", 0, 1, m }' /proc/cgroups > "$5/proc/cgroups"
    unshare --pid --fork --mount --uts --cgroup --propagation private -- \
        sh -c "$NODE_BOOT" drover-lab-node "$@"
    rc=$?
    # SIGHUP is how a reboot ends the init of a PID namespace.
    [ "$rc" -eq 129 ] || exit "$rc"
    echo "drover lab: $4 reboots"
    # The previous boot's processes die with its init; let them go and
    # drop the cgroups its systemd made.
    for i in 1 2 3 4 5 6 7 8 9 10; do
        find "/sys/fs/cgroup/systemd/$cg" "/sys/fs/cgroup/unified/$cg" -mindepth 1 -depth \
            -type d -exec rmdir {} + 2>/dev/null && break
        sleep 0.1
    done
done
"#;

/// One boot, as PID 1 of the node's fresh namespaces: mount its overlay,
/// mount /proc with
/// /proc/sys read-only (so systemd leaves the host's sysctls alone) and
/// those files over it (regular files bind-mounted over proc files, as lxcfs
/// does), /sys read-only with the node's cgroups, a minimal /dev, /run and
/// the shared network directory, set the hostname, then become systemd,
/// without the capabilities to set the clock (the kernel's clock and
/// timezone are the host's: the first `timedatectl set-timezone` after the
/// kernel booted would shift the host's clock by the zone's offset) or to
/// load kernel modules. Arguments: upper, work, merged, hostname, node
/// directory, network directory.
pub(super) const NODE_BOOT: &str = r#"set -e
r=$3
nd=$5
mount -t overlay drover-lab-node -o "lowerdir=/,upperdir=$1,workdir=$2,index=off" "$r"
mount -t proc -o nosuid,nodev,noexec proc "$r/proc"
mount --bind "$r/proc/sys" "$r/proc/sys"
mount -o remount,bind,ro "$r/proc/sys"
mount --bind "$nd/proc/cgroups" "$r/proc/cgroups"
mount --bind "$nd/proc/boot_id" "$r/proc/sys/kernel/random/boot_id"
mount --bind "$nd/proc/ip_forward" "$r/proc/sys/net/ipv4/ip_forward"
if [ -e "$r/proc/sys/net/ipv6/conf/all/forwarding" ]; then
    mount --bind "$nd/proc/ipv6_forwarding" "$r/proc/sys/net/ipv6/conf/all/forwarding"
fi
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$r/sys"
mount -t tmpfs -o mode=0755,nosuid,nodev,noexec cgroup "$r/sys/fs/cgroup"
mkdir "$r/sys/fs/cgroup/systemd" "$r/sys/fs/cgroup/unified"
mount -t cgroup -o none,name=systemd,nosuid,nodev,noexec cgroup "$r/sys/fs/cgroup/systemd"
mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 "$r/sys/fs/cgroup/unified"
mount -t tmpfs -o mode=0755,nosuid dev "$r/dev"
mknod -m 666 "$r/dev/null" c 1 3
mknod -m 666 "$r/dev/zero" c 1 5
mknod -m 666 "$r/dev/full" c 1 7
mknod -m 666 "$r/dev/random" c 1 8
mknod -m 666 "$r/dev/urandom" c 1 9
mknod -m 666 "$r/dev/tty" c 5 0
mkdir "$r/dev/pts" "$r/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts "$r/dev/pts"
ln -s pts/ptmx "$r/dev/ptmx"
ln -s /proc/self/fd "$r/dev/fd"
ln -s /proc/self/fd/0 "$r/dev/stdin"
ln -s /proc/self/fd/1 "$r/dev/stdout"
ln -s /proc/self/fd/2 "$r/dev/stderr"
mount -t tmpfs -o mode=1777,nosuid,nodev shm "$r/dev/shm"
mount -t tmpfs -o mode=0755,nosuid,nodev run "$r/run"
mount --bind "$6" "$r/var/lib/drover-lab/network"
printf '%s' "$4" > /proc/sys/kernel/hostname
exec setpriv --bounding-set -sys_time,-sys_module \
    chroot "$r" /usr/bin/env -i container=lab /lib/systemd/systemd --system
"#;

/// The node's cgroup, relative to a hierarchy's root: named by its address,
/// which no two running labs share.
pub(super) fn cgroup_of(address: std::net::Ipv4Addr) -> String {
    format!("{CGROUP_PARENT}/{address}")
}

/// The host must have what a node's systemd needs: systemd itself and the
/// hybrid cgroup layout (the `name=systemd` v1 hierarchy and cgroup2).
pub(super) fn require_host() -> Result<(), LabError> {
    if !Path::new("/lib/systemd/systemd").exists() {
        return Err(LabError::Missing {
            what: "/lib/systemd/systemd".into(),
            hint: "install it: apt-get install -y systemd".into(),
        });
    }
    for h in [NAMED_HIERARCHY, UNIFIED_HIERARCHY] {
        if !Path::new(h).join("cgroup.procs").exists() {
            return Err(LabError::Missing {
                what: format!("the cgroup hierarchy {h}"),
                hint: "lab nodes boot systemd in their own cgroups and need the hybrid \
                       cgroup layout (a name=systemd v1 hierarchy and cgroup2 at \
                       /sys/fs/cgroup/unified), as Debian 12 hosts without systemd as \
                       PID 1 have"
                    .into(),
            });
        }
    }
    Ok(())
}

/// Every process in the node's cgroup (and the cgroups its systemd made
/// below it), in both hierarchies.
pub(super) fn members(cgroup: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for h in [NAMED_HIERARCHY, UNIFIED_HIERARCHY] {
        collect(&Path::new(h).join(cgroup), &mut pids);
    }
    pids.sort_unstable();
    pids.dedup();
    pids
}

fn collect(dir: &Path, pids: &mut Vec<u32>) {
    if let Ok(text) = fs::read_to_string(dir.join("cgroup.procs")) {
        pids.extend(text.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            collect(&e.path(), pids);
        }
    }
}

/// The node's init (its systemd, PID 1 of its namespace) seen from here.
pub(super) fn init_pid(cgroup: &str) -> Option<u32> {
    members(cgroup).into_iter().find(|&pid| {
        fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("NSpid:"))
                .is_some_and(|ids| {
                    let ids: Vec<&str> = ids.split_whitespace().collect();
                    ids.len() == 2 && ids[1] == "1"
                })
        })
    })
}

/// Ask the node's systemd to power off (SIGRTMIN+4, as `systemctl
/// poweroff` does from outside). Whether a signal was sent.
pub(super) fn request_poweroff(cgroup: &str) -> bool {
    let Some(pid) = init_pid(cgroup) else {
        return false;
    };
    let status = Command::new("kill")
        .args(["-s", "RTMIN+4", "--"])
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    tracing::debug!(pid, ?status, "lab: SIGRTMIN+4 (poweroff)");
    status.is_ok_and(|s| s.success())
}

/// Remove the node's (empty) cgroups, innermost first. Best effort: a
/// cgroup that still has processes stays.
pub(super) fn remove_cgroups(cgroup: &str) {
    for h in [NAMED_HIERARCHY, UNIFIED_HIERARCHY] {
        remove_tree(&Path::new(h).join(cgroup));
        // Only empty when no other lab runs.
        let _ = fs::remove_dir(Path::new(h).join(CGROUP_PARENT));
    }
}

fn remove_tree(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        let subs: Vec<PathBuf> = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect();
        for s in subs {
            remove_tree(&s);
        }
    }
    let _ = fs::remove_dir(dir);
}

/// Listening TCP sockets and bound UDP sockets of the node's processes
/// whose address is not the node's own (`proto address:port (command)`).
/// Nodes share the host's network: a daemon a package starts on 127.0.0.1
/// or 0.0.0.0 in one node collides with the same daemon in another.
pub(super) fn foreign_listeners(cgroup: &str, own: std::net::Ipv4Addr) -> Vec<String> {
    let mut inodes: Vec<(u64, String)> = Vec::new();
    for pid in members(cgroup) {
        let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = fs::read_link(fd.path()) else {
                continue;
            };
            let t = target.to_string_lossy();
            if let Some(n) = t
                .strip_prefix("socket:[")
                .and_then(|s| s.strip_suffix(']'))
                .and_then(|s| s.parse().ok())
            {
                inodes.push((n, comm.trim().to_string()));
            }
        }
    }
    let mut out = Vec::new();
    for (table, proto, state) in [
        ("/proc/net/tcp", "tcp", "0A"),
        ("/proc/net/tcp6", "tcp6", "0A"),
        ("/proc/net/udp", "udp", "07"),
        ("/proc/net/udp6", "udp6", "07"),
    ] {
        let Ok(text) = fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 || f[3] != state {
                continue;
            }
            let Ok(inode) = f[9].parse::<u64>() else {
                continue;
            };
            let Some((_, comm)) = inodes.iter().find(|(n, _)| *n == inode) else {
                continue;
            };
            let Some((addr, port)) = parse_socket(f[1]) else {
                continue;
            };
            if addr != own.to_string() {
                let line = format!("{proto} {addr}:{port} ({comm})");
                if !out.contains(&line) {
                    out.push(line);
                }
            }
        }
    }
    out
}

/// `0100007F:0016` (as /proc/net/tcp prints it) as `127.0.0.1`, 22; IPv6
/// addresses as their hex, except the IPv4-mapped ones.
fn parse_socket(field: &str) -> Option<(String, u16)> {
    let (hex, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let v4 = |h: &str| -> Option<String> {
        let n = u32::from_str_radix(h, 16).ok()?;
        Some(std::net::Ipv4Addr::from(n.swap_bytes()).to_string())
    };
    let addr = match hex.len() {
        8 => v4(hex)?,
        32 if &hex[..24] == "0000000000000000FFFF0000" => v4(&hex[24..])?,
        32 => format!("[{hex}]"),
        _ => return None,
    };
    Some((addr, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_addresses_are_read_in_host_order() {
        assert_eq!(
            parse_socket("0100007F:0016"),
            Some(("127.0.0.1".to_string(), 22))
        );
        assert_eq!(
            parse_socket("0000000000000000FFFF00000102007F:0050"),
            Some(("127.0.2.1".to_string(), 80))
        );
        assert_eq!(
            parse_socket("00000000000000000000000000000000:0019"),
            Some(("[00000000000000000000000000000000]".to_string(), 25))
        );
        assert_eq!(parse_socket("nonsense"), None);
    }

    #[test]
    fn cgroups_are_named_by_address() {
        assert_eq!(
            cgroup_of(std::net::Ipv4Addr::new(127, 0, 2, 7)),
            "drover-lab/127.0.2.7"
        );
    }
}
