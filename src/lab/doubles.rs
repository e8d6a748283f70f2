//! What a lab node has besides its systemd, sshd and accounts: the test
//! doubles of programs a Raspberry Pi cluster would run (the k3s binary and
//! install script, the NFS tools), the lab's local Debian repository built
//! from them, and the per-node files bind-mounted over /proc entries that
//! must not be shared with the host.
//!
//! The doubles live under `tests/doubles/` in the source tree and are
//! compiled into drover, so that `drover lab up` works from an installed
//! binary. The NFS server behind the `exportfs` double is the real
//! NFS-Ganesha, unpacked on the machine by `scripts/setup`; mount.nfs's
//! source-address shim is C, compiled here with the machine's cc.

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use sha2::{Digest, Sha256};

use super::{IoContext, LabError};

const K3S: &str = include_str!("../../tests/doubles/k3s/k3s");
const K3S_INSTALL: &str = include_str!("../../tests/doubles/k3s/install.sh");
const EXPORTFS: &str = include_str!("../../tests/doubles/nfs/exportfs");
const MOUNT_NFS: &str = include_str!("../../tests/doubles/nfs/mount.nfs");
const NFS_SERVER: &str = include_str!("../../tests/doubles/nfs/nfs-server");
/// The LD_PRELOAD shim mount.nfs runs libnfs with, compiled at lab start.
const SOURCE_ADDR_C: &str = include_str!("../../tests/doubles/nfs/source-addr.c");
/// Where the nfs-common package installs the compiled shim.
const SOURCE_ADDR_SO: &str = "usr/lib/drover-lab/source-addr.so";

/// The apt source line every node gets, and the only one it has.
pub(super) const APT_SOURCE: &str = "deb [trusted=yes] file:/var/lib/drover-lab/network/apt ./\n";
/// A fresh Raspberry Pi OS kernel command line.
pub(super) const CMDLINE: &str = "console=serial0,115200 console=tty1 root=PARTUUID=6c586e13-02 rootfstype=ext4 fsck.repair=yes rootwait quiet splash\n";

/// One file of a package: path in the package, content, mode.
type PkgFile = (&'static str, &'static str, u32);

/// The packages of the lab's repository: name, control file, maintainer
/// scripts, files.
const PACKAGES: [(&str, &str, &[PkgFile], &[PkgFile]); 3] = [
    (
        "nfs-kernel-server",
        include_str!("../../tests/doubles/packages/nfs-kernel-server/control"),
        &[(
            "postinst",
            include_str!("../../tests/doubles/packages/nfs-kernel-server/postinst"),
            0o755,
        )],
        &[
            ("usr/sbin/exportfs", EXPORTFS, 0o755),
            ("usr/lib/drover-lab/nfs-server", NFS_SERVER, 0o755),
            (
                "lib/systemd/system/nfs-kernel-server.service",
                include_str!(
                    "../../tests/doubles/packages/nfs-kernel-server/nfs-kernel-server.service"
                ),
                0o644,
            ),
            (
                "etc/exports",
                include_str!("../../tests/doubles/packages/nfs-kernel-server/exports"),
                0o644,
            ),
        ],
    ),
    (
        "drover-lab-hello",
        include_str!("../../tests/doubles/packages/drover-lab-hello/control"),
        &[],
        &[(
            "usr/bin/drover-lab-hello",
            include_str!("../../tests/doubles/packages/drover-lab-hello/drover-lab-hello"),
            0o755,
        )],
    ),
    (
        "nfs-common",
        include_str!("../../tests/doubles/packages/nfs-common/control"),
        &[],
        &[
            ("sbin/mount.nfs", MOUNT_NFS, 0o755),
            ("sbin/mount.nfs4", MOUNT_NFS, 0o755),
        ],
    ),
];

/// Create the lab-wide parts: `<dir>/network/{apt,nfs,k3s}` with the
/// repository built in `apt`, and `<dir>/k3s-airgap/{k3s,install.sh}`.
pub(super) fn write_lab_wide(dir: &Path) -> Result<(), LabError> {
    let network = dir.join("network");
    for sub in ["", "apt", "nfs", "k3s"] {
        make_dir_0755(&network.join(sub))?;
    }
    let airgap = dir.join("k3s-airgap");
    make_dir_0755(&airgap)?;
    write(&airgap.join("k3s"), K3S, 0o755)?;
    write(&airgap.join("install.sh"), K3S_INSTALL, 0o755)?;
    build_repo(&dir.join("build"), &network.join("apt"))
}

/// Build every package with dpkg-deb into `apt`, then its index.
fn build_repo(build: &Path, apt: &Path) -> Result<(), LabError> {
    make_dirs(build)?;
    let mut shim = compile_shim(build)?;
    let mut debs = Vec::new();
    for (name, control, scripts, files) in PACKAGES {
        let root = build.join(name);
        make_dirs(&root.join("DEBIAN"))?;
        if name == "nfs-common" {
            if let Some(shim) = shim.take() {
                add_shim(shim, &root)?;
            }
        }
        write(&root.join("DEBIAN/control"), control, 0o644)?;
        for (script, text, mode) in scripts {
            write(&root.join("DEBIAN").join(script), text, *mode)?;
        }
        let mut conffiles = String::new();
        for (rel, text, mode) in files {
            let path = root.join(rel);
            if let Some(parent) = path.parent() {
                make_dirs(parent)?;
            }
            write(&path, text, *mode)?;
            if rel.starts_with("etc/") {
                let _ = writeln!(conffiles, "/{rel}");
            }
        }
        if !conffiles.is_empty() {
            write(&root.join("DEBIAN/conffiles"), &conffiles, 0o644)?;
        }
        let deb = apt.join(format!("{name}_all.deb"));
        let child = Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zgzip", "--build"])
            .arg(&root)
            .arg(&deb)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .at(Path::new("dpkg-deb"))?;
        debs.push((control, deb, child));
    }
    // Built side by side, collected after.
    let debs: Vec<(&str, PathBuf)> = debs
        .into_iter()
        .map(|(control, deb, child)| super::finish("dpkg-deb", child).map(|_| (control, deb)))
        .collect::<Result<_, _>>()?;
    fs::remove_dir_all(build).at(build)?;
    let mut packages = String::new();
    for (control, deb) in &debs {
        let bytes = fs::read(deb).at(deb)?;
        let file = deb
            .file_name()
            .map(|f| f.to_string_lossy())
            .unwrap_or_default();
        packages.push_str(control.trim_end());
        let _ = write!(
            packages,
            "\nFilename: ./{file}\nSize: {}\nSHA256: {}\n\n",
            bytes.len(),
            hex(&Sha256::digest(&bytes))
        );
    }
    write(&apt.join("Packages"), &packages, 0o644)?;
    let release = format!(
        "Origin: drover-lab\nLabel: drover-lab\nSuite: lab\nCodename: lab\nDate: {}\n\
         Description: the drover lab's local repository (test doubles)\n\
         SHA256:\n {} {} Packages\n",
        rfc2822_now(),
        hex(&Sha256::digest(packages.as_bytes())),
        packages.len()
    );
    write(&apt.join("Release"), &release, 0o644)
}

/// mount.nfs's source-address shim, for the nfs-common package: compiled
/// once per version of its source and kept in [`SHIM_CACHE`] (compiling
/// takes longer than building the whole repository), or being compiled.
enum Shim {
    Cached(PathBuf),
    Compiling {
        so: PathBuf,
        cached: PathBuf,
        cc: Child,
    },
}

/// Where compiled shims are kept between labs (root's, as the lab is).
const SHIM_CACHE: &str = "/var/cache/drover-lab";

/// The cached shim, or its compilation started with the machine's cc if
/// there is one (without it, mount.nfs says why it cannot mount).
fn compile_shim(build: &Path) -> Result<Option<Shim>, LabError> {
    let digest = hex(&Sha256::digest(SOURCE_ADDR_C.as_bytes()));
    let cached = Path::new(SHIM_CACHE).join(format!("source-addr-{}.so", &digest[..16]));
    if cached.is_file() {
        return Ok(Some(Shim::Cached(cached)));
    }
    if !super::in_path("cc") {
        tracing::warn!("lab: no cc, so no source-address shim: NFS mounts in the lab will fail");
        return Ok(None);
    }
    let src = build.join("source-addr.c");
    let so = build.join("source-addr.so");
    write(&src, SOURCE_ADDR_C, 0o644)?;
    let cc = Command::new("cc")
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&so)
        .arg(&src)
        .arg("-ldl")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .at(Path::new("cc"))?;
    Ok(Some(Shim::Compiling { so, cached, cc }))
}

/// Put the shim into the package tree `root`, and a freshly compiled one
/// into the cache too. A failed compile is a warning: only NFS mounts need
/// the shim.
fn add_shim(shim: Shim, root: &Path) -> Result<(), LabError> {
    let so = match shim {
        Shim::Cached(so) => so,
        Shim::Compiling { so, cached, cc } => {
            if let Err(e) = super::finish("cc", cc) {
                tracing::warn!(error = %e, "lab: the source-address shim did not compile");
                return Ok(());
            }
            // Best effort: a lab without the cache only compiles again.
            let tmp = cached.with_extension(format!("{}.tmp", std::process::id()));
            if fs::create_dir_all(SHIM_CACHE).is_ok() && fs::copy(&so, &tmp).is_ok() {
                let _ = fs::rename(&tmp, &cached);
            }
            so
        }
    };
    let dest = root.join(SOURCE_ADDR_SO);
    if let Some(parent) = dest.parent() {
        make_dirs(parent)?;
    }
    fs::copy(&so, &dest).at(&dest)?;
    fs::set_permissions(&dest, fs::Permissions::from_mode(0o644)).at(&dest)
}

/// The current time as Release files date themselves
/// (`Sun, 22 Nov 2026 02:10:00 UTC`).
fn rfc2822_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    rfc2822(secs)
}

fn rfc2822(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} UTC",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Create node `nd`'s per-node /proc files: forwarding off. Each boot
/// writes its own boot_id and cgroups there (see [`super::init`]).
pub(super) fn write_proc_files(nd: &Path) -> Result<(), LabError> {
    let dir = nd.join("proc");
    make_dir_0755(&dir)?;
    write(&dir.join("ip_forward"), "0\n", 0o644)?;
    write(&dir.join("ipv6_forwarding"), "0\n", 0o644)
}

/// A random (version 4) UUID, as the kernel's boot_id prints it.
pub(super) fn new_uuid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// The node.json a node gets.
pub(super) fn node_json(name: &str, address: std::net::Ipv4Addr) -> String {
    let v = serde_json::json!({ "name": name, "address": address.to_string() });
    format!("{v}\n")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A directory owned by root, mode 0755 (as dpkg-deb and the nodes expect).
fn make_dir_0755(path: &Path) -> Result<(), LabError> {
    super::seed::make_dir(path, 0o755, (0, 0))
}

fn make_dirs(path: &Path) -> Result<(), LabError> {
    let mut p = PathBuf::new();
    for c in path.components() {
        p.push(c);
        if !p.is_dir() {
            make_dir_0755(&p)?;
        }
    }
    Ok(())
}

fn write(path: &Path, text: &str, mode: u32) -> Result<(), LabError> {
    fs::write(path, text).at(path)?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).at(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_dates_are_rfc2822() {
        assert_eq!(rfc2822(0), "Thu, 01 Jan 1970 00:00:00 UTC");
        assert_eq!(rfc2822(1_795_314_600), "Sun, 22 Nov 2026 02:30:00 UTC");
        assert_eq!(rfc2822(951_782_400), "Tue, 29 Feb 2000 00:00:00 UTC");
    }

    #[test]
    fn uuids_look_like_boot_ids() {
        let u = new_uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_ne!(u, new_uuid());
    }

    #[test]
    fn every_double_says_it_is_one() {
        for text in [EXPORTFS, MOUNT_NFS, NFS_SERVER, SOURCE_ADDR_C] {
            assert!(text
                .lines()
                .nth(1)
                .is_some_and(|l| l.contains("TEST DOUBLE")));
        }
    }
}
