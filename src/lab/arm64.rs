//! arm64 lab nodes (`drover lab up --arch arm64`): the Raspberry Pis'
//! architecture on this machine. A node's overlay has a Debian bookworm
//! arm64 root as its lower layer instead of the host's `/`; its programs run
//! under `qemu-user-static` through a binfmt_misc registration, so `uname -m`
//! says `aarch64` and `dpkg --print-architecture` says `arm64`.
//!
//! sshd is the host's own (native, fast), started in the node's mount
//! namespace outside the arm64 tree, with `ChrootDirectory` into it: every
//! session runs arm64 programs. sshd insists that each component of the
//! chroot path be a root-owned directory nobody else may write, which a lab
//! directory under `/tmp` is not; so inside the node's namespace sshd's root
//! is a private view of the host's `/` with a fresh tmpfs on `/run`, and the
//! node's tree is mounted at [`CHROOT`] in it. That view also shows sshd the
//! node's own account files and `/var/log` (login records), never the host's.
//!
//! An arm64 node runs no init system, only sshd: `systemctl` there says so
//! and fails, and package scripts start no services (`policy-rc.d`). The
//! reboot double works as on native nodes.
//!
//! The arm64 root is built once with `mmdebstrap` from the Debian archive
//! and kept in [`CACHE_DIR`] (`arm64-bookworm-<recipe hash>/root`), reused by
//! every later lab; delete the directory to rebuild it. Registering the
//! interpreter is machine-wide and needs root, hence opt-in: the lab mounts
//! binfmt_misc if it is not mounted and leaves it (and its entry) in place.

use std::fmt;
use std::fs;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{seed, IoContext, LabError};

/// Which machines a lab's nodes are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// This machine's own userland (an overlay of its `/`).
    #[default]
    Native,
    /// Debian bookworm arm64 under qemu-user, as on the Raspberry Pis.
    Arm64,
}

impl FromStr for Arch {
    type Err = LabError;

    fn from_str(s: &str) -> Result<Arch, LabError> {
        match s {
            "native" => Ok(Arch::Native),
            "arm64" | "aarch64" => Ok(Arch::Arm64),
            _ => Err(LabError::Config(format!(
                "architecture {s:?}: the lab knows native and arm64"
            ))),
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Arch::Native => "native",
            Arch::Arm64 => "arm64",
        })
    }
}

/// Where arm64 roots are kept between labs (root only: setuid programs
/// there must not be reachable by other users, see [`register_binfmt`]).
pub const CACHE_DIR: &str = "/var/cache/drover-lab";

/// Debian release of the root: Raspberry Pi OS 12 is bookworm.
const SUITE: &str = "bookworm";
/// Packages beyond `minbase`: what a Raspberry Pi OS node has that the
/// roles and the lab use (sudo for become, sysctl, ip for facts, python3
/// for the reboot double, openssh-server for its user and configuration).
const INCLUDE: &str = "sudo,procps,iproute2,python3,openssh-server";
/// Bump when the build changes in a way the options above do not show.
const RECIPE_VERSION: u32 = 1;

/// Where the node's tree is, inside its sshd's view (root-owned all the way).
const CHROOT: &str = "/run/drover-lab-node";

/// The name of the lab's binfmt_misc entry.
const BINFMT_NAME: &str = "drover-lab-aarch64";
const BINFMT_DIR: &str = "/proc/sys/fs/binfmt_misc";
/// Debian's qemu-user-static interpreter for argv[0]-preserving entries.
const QEMU: &str = "/usr/libexec/qemu-binfmt/aarch64-binfmt-P";
/// ELF header of a 64-bit little-endian aarch64 executable, and its mask
/// (as qemu registers it).
const MAGIC: &str =
    r"\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00";
const MASK: &str =
    r"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff";
/// P: argv[0] preserved (the `-binfmt-P` name tells qemu); O, C: setuid
/// programs (sudo) run with the credentials of the program, not the
/// caller's; F: the interpreter is opened now, so it works in chroots.
const BINFMT_FLAGS: &str = "POCF";

/// `systemctl` on an arm64 node: no init system runs there. The reboot
/// double calls it with `--drover-lab-boot` to start enabled units: none.
const NO_INIT: &str = r#"#!/bin/sh
# drover lab arm64 node: no init system runs here (sshd only, arm64
# programs under qemu-user). Not a stand-in: it refuses, saying why.
[ "$1" = --drover-lab-boot ] && exit 0
echo "systemctl: this drover lab arm64 node runs no init system (sshd only): services cannot be managed here; use a native lab node (drover lab up without --arch) for services" >&2
exit 1
"#;

/// The reboot double: an arm64 node has no init to reboot it.
const REBOOT: &str = include_str!("../../tests/doubles/arm64/reboot");

/// Install the reboot double in an arm64 node's upper directory, also over
/// the real programs (reboot and shutdown in /usr/sbin), for callers that
/// use an absolute path or a PATH without /usr/local/sbin; with the
/// directories [`seed`] writes the no-init `systemctl` in.
pub(super) fn install_reboot_double(lower: &Path, upper: &Path) -> Result<(), LabError> {
    for dir in ["usr/local/sbin", "usr/sbin", "usr/bin"] {
        seed::mkdir_like_host(lower, upper, dir)?;
    }
    for rel in [
        "usr/local/sbin/reboot",
        "usr/local/sbin/shutdown",
        "usr/sbin/reboot",
        "usr/sbin/shutdown",
    ] {
        let path = upper.join(rel);
        // The root's may be a symlink (reboot -> /bin/systemctl): replace it.
        let _ = fs::remove_file(&path);
        seed::write_file(&path, REBOOT, 0o755, (0, 0))?;
    }
    Ok(())
}

/// Package scripts on an arm64 node start no services (there is no init to
/// run them).
const POLICY_RC_D: &str = "#!/bin/sh\n# drover lab arm64 node: no init system, so package scripts start no services.\nexit 101\n";

/// One boot of an arm64 node, as PID 1 of its fresh namespaces under the
/// node's supervisor (see [`super::init`]). Arguments: those of the native
/// boot (upper, work, merged, hostname, node directory, network
/// directory), then the arm64 root and the sshd configuration. `merged`
/// becomes sshd's view of the host, the node's tree is at
/// `$3/run/drover-lab-node`, and the host's sshd, chrooted into it for
/// sessions, is the namespace's PID 1. The supervisor writes its /proc
/// files before the boot; the reboot double rewrites them at its reboots.
pub(super) const NODE_BOOT: &str = r#"set -e
mount --rbind / "$3"
mount -t tmpfs -o mode=0755,nosuid,nodev drover-lab-view "$3/run"
mkdir -m 0755 "$3/run/sshd" "$3/run/drover-lab-node"
r="$3/run/drover-lab-node"
mount -t overlay drover-lab-node -o "lowerdir=$7,upperdir=$1,workdir=$2,index=off" "$r"
mount -t proc proc "$r/proc"
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$r/sys"
mount --rbind /dev "$r/dev"
mount -t tmpfs -o mode=1777,nosuid,nodev shm "$r/dev/shm"
mount -t tmpfs -o mode=0755,nosuid,nodev run "$r/run"
mount --bind "$6" "$r/var/lib/drover-lab/network"
mount --bind "$5/proc/cgroups" "$r/proc/cgroups"
mount --bind "$5/proc/boot_id" "$r/proc/sys/kernel/random/boot_id"
mount --bind "$5/proc/ip_forward" "$r/proc/sys/net/ipv4/ip_forward"
if [ -e "$r/proc/sys/net/ipv6/conf/all/forwarding" ]; then
    mount --bind "$5/proc/ipv6_forwarding" "$r/proc/sys/net/ipv6/conf/all/forwarding"
fi
mkdir -p "$r/run/sshd" "$r/run/lock"
chmod 1777 "$r/run/lock"
for f in passwd group shadow; do mount --bind "$r/etc/$f" "$3/etc/$f"; done
mount --bind "$r/var/log" "$3/var/log"
printf '%s' "$4" > /proc/sys/kernel/hostname
exec chroot "$3" /usr/sbin/sshd -D -e -f "/run/drover-lab-node$8"
"#;

/// Get this machine ready for arm64 nodes and return the arm64 root: the
/// tools are there, the interpreter is registered, the root is built (once)
/// and runs. [`LabError::Arm64Unavailable`] when the machine cannot.
pub(super) fn prepare() -> Result<PathBuf, LabError> {
    require_tools()?;
    register_binfmt(false)?;
    let root = build_root()?;
    if !probe(&root)? {
        // An aarch64 entry without the C flag was registered after the
        // lab's and takes precedence: register the lab's again, newest.
        tracing::info!(
            "lab: another aarch64 binfmt entry took precedence; registering {BINFMT_NAME} again"
        );
        register_binfmt(true)?;
        if !probe(&root)? {
            return Err(unavailable(format!(
                "setuid arm64 programs (sudo) do not get root even with {BINFMT_DIR}/{BINFMT_NAME} registered last"
            )));
        }
    }
    Ok(root)
}

/// The arm64 root this drover uses, whether built yet or not.
pub fn root_path() -> PathBuf {
    Path::new(CACHE_DIR)
        .join(format!("arm64-{SUITE}-{}", recipe_key()))
        .join("root")
}

/// Whether the arm64 root is built (else the next arm64 lab builds it, for
/// a few minutes).
pub fn root_is_built() -> bool {
    root_path().join("etc/debian_version").is_file()
}

fn recipe_key() -> String {
    let recipe = format!("{RECIPE_VERSION} {SUITE} minbase {INCLUDE}");
    let hash = Sha256::digest(recipe.as_bytes());
    hash.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

fn unavailable(msg: impl Into<String>) -> LabError {
    LabError::Arm64Unavailable(msg.into())
}

fn require_tools() -> Result<(), LabError> {
    let hint =
        "install them: apt-get install -y qemu-user-static binfmt-support mmdebstrap arch-test";
    if !Path::new(QEMU).exists() {
        return Err(unavailable(format!("{QEMU} not found; {hint}")));
    }
    for prog in ["mmdebstrap", "arch-test"] {
        if !super::in_path(prog) {
            return Err(unavailable(format!("{prog} not found; {hint}")));
        }
    }
    Ok(())
}

/// Register qemu for aarch64 executables, machine-wide, unless the lab's
/// entry is there already (`renew`: register it again all the same, so that
/// it is the newest). binfmt_misc is mounted for that if it is not,
/// and stays mounted: the kernel drops its entries with the mount (as
/// systemd's automount would leave it).
///
/// The entry has the C flag, which Debian's own `qemu-aarch64` entry lacks:
/// without it sudo runs with the caller's credentials. With it, a setuid
/// arm64 program gets its owner's rights through qemu, whose environment
/// variables its caller controls: only root may reach the arm64 root
/// ([`CACHE_DIR`] is 0700) and a node's users have sudo anyway. Entries
/// registered later take precedence: if qemu-user-static's is registered
/// again after ours, [`probe`] finds sudo broken and ours is renewed.
fn register_binfmt(renew: bool) -> Result<(), LabError> {
    let dir = Path::new(BINFMT_DIR);
    if !dir.join("register").exists() {
        super::run(Command::new("mount").args(["-t", "binfmt_misc", "binfmt_misc", BINFMT_DIR]))
            .map_err(|e| unavailable(format!("binfmt_misc cannot be mounted ({e}): this kernel or container cannot run foreign executables")))?;
        tracing::info!("lab: binfmt_misc mounted on {BINFMT_DIR}");
    }
    ensure_entry(dir, renew)
}

fn ensure_entry(dir: &Path, renew: bool) -> Result<(), LabError> {
    let entry = dir.join(BINFMT_NAME);
    if let Ok(text) = fs::read_to_string(&entry) {
        let flags = text
            .lines()
            .find_map(|l| l.strip_prefix("flags: "))
            .unwrap_or("");
        let fine = text.lines().next() == Some("enabled")
            && ['O', 'C', 'F'].iter().all(|f| flags.contains(*f));
        if fine && !renew {
            return Ok(());
        }
        // Ours, but not as this drover registers it, or to be renewed.
        fs::write(&entry, "-1").at(&entry)?;
    }
    let line = format!(":{BINFMT_NAME}:M::{MAGIC}:{MASK}:{QEMU}:{BINFMT_FLAGS}");
    let register = dir.join("register");
    match fs::write(&register, line) {
        Ok(()) => {
            tracing::info!(entry = %entry.display(), "lab: qemu registered for aarch64 executables");
            Ok(())
        }
        // Another lab starting at the same time registered it first.
        Err(_) if entry.exists() => Ok(()),
        Err(e) => Err(unavailable(format!(
            "registering qemu for aarch64 in {} failed: {e}",
            register.display()
        ))),
    }
}

/// Build the arm64 root unless it is there. One build at a time (labs
/// starting together, as tests do, wait for the first one's root), built
/// beside its final place and renamed into it, so that a build cut short
/// leaves no half root behind.
fn build_root() -> Result<PathBuf, LabError> {
    let root = root_path();
    if root_is_built() {
        return Ok(root);
    }
    let cache = Path::new(CACHE_DIR);
    fs::create_dir_all(cache).at(cache)?;
    fs::set_permissions(cache, fs::Permissions::from_mode(0o700)).at(cache)?;
    let lock_path = cache.join("arm64-build.lock");
    let lock = fs::File::create(&lock_path).at(&lock_path)?;
    lock.lock().at(&lock_path)?;
    if root_is_built() {
        return Ok(root);
    }
    let home = root.parent().map(Path::to_path_buf).unwrap_or_default();
    remove_dead_builds(&home)?;
    let partial = home.with_extension(format!("partial-{}", std::process::id()));
    remove_build(&partial)?;
    fs::create_dir(&partial).at(&partial)?;
    tracing::info!(root = %root.display(), "lab: building the arm64 root (once; a few minutes)");
    let built = super::run(
        Command::new("mmdebstrap")
            .args([
                "--quiet",
                "--mode=root",
                "--format=directory",
                "--arch=arm64",
            ])
            .args(["--variant=minbase", "--include", INCLUDE, SUITE])
            .arg(partial.join("root")),
    );
    if let Err(e) = built {
        if let Err(e) = remove_build(&partial) {
            tracing::warn!(error = %e, "lab: removing a failed arm64 build");
        }
        return Err(match e {
            LabError::Command { stderr, .. } if archive_unreachable(&stderr) => {
                unavailable(format!(
                    "the Debian archive is not reachable, so the arm64 root cannot be built: {}",
                    last_lines(&stderr, 5)
                ))
            }
            LabError::Command {
                cmd,
                status,
                stderr,
            } => LabError::Command {
                cmd,
                status,
                stderr: last_lines(&stderr, 15),
            },
            other => other,
        });
    }
    match fs::rename(&partial, &home) {
        Ok(()) => Ok(root),
        // Another lab finished first: use its root.
        Err(_) if root_is_built() => {
            remove_build(&partial)?;
            Ok(root)
        }
        Err(e) => Err(LabError::Io {
            path: home,
            source: e,
        }),
    }
}

/// Remove the partial builds of `home` whose builder is gone (a lab killed
/// while building).
fn remove_dead_builds(home: &Path) -> Result<(), LabError> {
    let (Some(parent), Some(name)) = (home.parent(), home.file_name()) else {
        return Ok(());
    };
    let prefix = format!("{}.partial-", name.to_string_lossy());
    let Ok(entries) = fs::read_dir(parent) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = n.strip_prefix(&prefix).and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !super::procs::alive(pid) {
            remove_build(&e.path())?;
        }
    }
    Ok(())
}

/// Remove a partial build, unless something is still mounted in it
/// (mmdebstrap mounts /proc, /sys and /dev there; a builder killed outright
/// leaves them): deleting through those would delete the host's files.
fn remove_build(partial: &Path) -> Result<(), LabError> {
    if !partial.exists() {
        return Ok(());
    }
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let inside = info.lines().any(|l| {
        l.split_whitespace().nth(4).is_some_and(|p| {
            Path::new(&crate::modules::mount::unescape_field(p)).starts_with(partial)
        })
    });
    if inside {
        return Err(LabError::Config(format!(
            "{} is a cut-short arm64 build with file systems still mounted in it; unmount them (umount -R) and remove it",
            partial.display()
        )));
    }
    fs::remove_dir_all(partial).at(partial)
}

fn archive_unreachable(stderr: &str) -> bool {
    [
        "Temporary failure resolving",
        "Could not resolve",
        "Unable to connect",
        "Could not connect",
        "Connection timed out",
        "Network is unreachable",
    ]
    .iter()
    .any(|m| stderr.contains(m))
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Run the root's `uname -m`, and its sudo as an ordinary user (`-V` only
/// prints the version, writing nothing). Whether setuid programs get root:
/// not when another aarch64 registration without the C flag took
/// precedence over the lab's.
fn probe(root: &Path) -> Result<bool, LabError> {
    let out = super::run(Command::new("chroot").arg(root).args(["uname", "-m"]))
        .map_err(|e| unavailable(format!("arm64 programs do not run under qemu here: {e}")))?;
    let machine = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if machine != "aarch64" {
        return Err(unavailable(format!(
            "the arm64 root's uname -m says {machine:?}, not aarch64"
        )));
    }
    let sudo = Command::new("chroot")
        .args(["--userspec=65534:65534"])
        .arg(root)
        .args(["sudo", "-V"])
        .output()
        .at(Path::new("chroot"))?;
    let stderr = String::from_utf8_lossy(&sudo.stderr);
    Ok(!stderr.contains("effective uid is not 0"))
}

/// What an arm64 node's seed has on top of a native node's: the sshd
/// configuration for the host's sshd outside the node's tree, the
/// no-init `systemctl` and the policy that starts no services.
pub(super) fn seed(upper: &Path, name: &str, listen: SocketAddr) -> Result<(), LabError> {
    let root = (0, 0);
    seed::write_file(
        &upper.join(seed::SSHD_CONFIG.trim_start_matches('/')),
        &sshd_config(name, listen),
        0o644,
        root,
    )?;
    for rel in ["usr/bin/systemctl", "usr/local/sbin/systemctl"] {
        let path = upper.join(rel);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(LabError::Io { path, source: e })
            }
            _ => {}
        }
        seed::write_file(&path, NO_INIT, 0o755, root)?;
    }
    seed::write_file(
        &upper.join("usr/sbin/policy-rc.d"),
        POLICY_RC_D,
        0o755,
        root,
    )
}

/// The node's sshd configuration: a native node's, with every path seen
/// from sshd's view and the chroot into the node's tree.
fn sshd_config(name: &str, listen: SocketAddr) -> String {
    let native = seed::sshd_config(name, listen);
    let mut s = String::new();
    for line in native.lines() {
        match line.split_once(' ') {
            Some(("HostKey", path)) => s.push_str(&format!("HostKey {CHROOT}{path}\n")),
            Some(("AuthorizedKeysFile", _)) => s.push_str(&format!(
                "AuthorizedKeysFile {CHROOT}/home/%u/.ssh/authorized_keys\n"
            )),
            _ => {
                s.push_str(line);
                s.push('\n');
            }
        }
    }
    s.push_str(&format!(
        "# The host's sshd serves this arm64 node from outside its tree.\nChrootDirectory {CHROOT}\n"
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arch_parses_its_names_and_refuses_others() {
        assert_eq!("arm64".parse::<Arch>().ok(), Some(Arch::Arm64));
        assert_eq!("aarch64".parse::<Arch>().ok(), Some(Arch::Arm64));
        assert_eq!("native".parse::<Arch>().ok(), Some(Arch::Native));
        let err = "armhf".parse::<Arch>().err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("native and arm64")));
        assert_eq!(Arch::Arm64.to_string(), "arm64");
    }

    #[test]
    fn sshd_config_chroots_and_reads_keys_from_the_node_tree() {
        let c = sshd_config("pi-master", "127.0.2.1:22".parse().expect("addr"));
        assert!(c.contains("\nListenAddress 127.0.2.1:22\n"));
        assert!(c.contains("\nHostKey /run/drover-lab-node/etc/ssh/ssh_host_ed25519_key\n"));
        assert!(
            c.contains("\nAuthorizedKeysFile /run/drover-lab-node/home/%u/.ssh/authorized_keys\n")
        );
        assert!(c.ends_with("ChrootDirectory /run/drover-lab-node\n"));
        assert!(!c.contains("HostKey /etc/"));
    }

    #[test]
    fn the_node_script_chroots_where_the_config_says() {
        assert!(NODE_BOOT.contains(&format!("r=\"$3{CHROOT}\"")));
        assert!(NODE_BOOT.contains(&format!("-f \"{CHROOT}$8\"")));
    }

    #[test]
    fn builds_of_dead_builders_are_removed_and_live_ones_kept() {
        let tmp = tempfile::TempDir::new().expect("tempdir");
        let home = tmp.path().join("arm64-bookworm-0123");
        // PIDs stay below 2^22 on Linux.
        let dead = home.with_extension("partial-4294967");
        let live = home.with_extension(format!("partial-{}", std::process::id()));
        let other = tmp.path().join("arm64-bookworm-4567.partial-4294967");
        for d in [&dead, &live, &other] {
            fs::create_dir_all(d.join("root/etc")).expect("mkdir");
        }
        remove_dead_builds(&home).expect("removes");
        assert!(!dead.exists());
        assert!(live.exists() && other.exists());
    }

    #[test]
    fn the_root_path_names_the_recipe() {
        let p = root_path();
        assert!(p.starts_with(CACHE_DIR));
        assert!(p.ends_with("root"));
        let dir = p
            .parent()
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned());
        assert!(dir.is_some_and(|d| d.starts_with("arm64-bookworm-") && d.len() == 27));
    }
}
