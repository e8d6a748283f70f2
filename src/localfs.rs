//! Files drover writes on the control machine (known_hosts, the lab's
//! inventory and keys): where a write may go, and the atomic write itself.
//!
//! An atomic write renames a temp file over its path, which replaces
//! whatever the path was: as root, `--known-hosts /dev/null` would turn the
//! machine's `/dev/null` into a regular file. So a write first resolves its
//! path: a symlink is written through to its target (the link stays), a
//! null device means "remember nothing" (as OpenSSH reads
//! `UserKnownHostsFile /dev/null`), and anything else that is not a regular
//! file is refused.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Where a write to a path lands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A regular file, existing or not (after following symlinks).
    File(PathBuf),
    /// A null device: reads are empty, writes are discarded.
    Null,
}

/// Resolve `path` for reading or writing: follow symlinks, and refuse
/// anything that exists and is neither a regular file nor a null device.
pub fn target(path: &Path) -> io::Result<Target> {
    let resolved = match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => match fs::canonicalize(path) {
            Ok(p) => p,
            // A dangling link: write where it points.
            Err(e) if e.kind() == io::ErrorKind::NotFound => dangling_target(path)?,
            Err(e) => return Err(e),
        },
        _ => path.to_path_buf(),
    };
    let meta = match fs::metadata(&resolved) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Target::File(resolved)),
        Err(e) => return Err(e),
    };
    let ft = meta.file_type();
    if ft.is_file() {
        return Ok(Target::File(resolved));
    }
    if ft.is_char_device() && is_null_device(meta.rdev()) {
        return Ok(Target::Null);
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "{} is {}, not a regular file: drover writes only regular files there \
             (use /dev/null to keep nothing)",
            path.display(),
            describe(&ft)
        ),
    ))
}

/// The target of a symlink whose target does not exist (yet).
fn dangling_target(link: &Path) -> io::Result<PathBuf> {
    let to = fs::read_link(link)?;
    Ok(match link.parent() {
        Some(dir) if to.is_relative() => dir.join(to),
        _ => to,
    })
}

/// Linux's null device is character device 1:3 (glibc's encoding of
/// major and minor numbers in a `dev_t`).
fn is_null_device(rdev: u64) -> bool {
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    major == 1 && minor == 3
}

/// What a file type is, in words.
pub fn describe(ft: &fs::FileType) -> &'static str {
    if ft.is_dir() {
        "a directory"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_symlink() {
        "a symbolic link"
    } else {
        "a regular file"
    }
}

/// The contents of `path`: empty when it does not exist or is a null
/// device; an error for anything that is not a regular file (a FIFO would
/// block the reader).
pub fn read_to_string(path: &Path) -> io::Result<String> {
    match target(path)? {
        Target::Null => Ok(String::new()),
        Target::File(p) => match fs::read_to_string(p) {
            Ok(t) => Ok(t),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(String::new()),
            Err(e) => Err(e),
        },
    }
}

/// Write `data` to `path` atomically (a temp file in the same directory,
/// synced, then renamed over the target). An existing file keeps its mode;
/// a new one gets `mode`. Returns the file written, or `None` when the path
/// is a null device and nothing was written.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> io::Result<Option<PathBuf>> {
    let Target::File(file) = target(path)? else {
        return Ok(None);
    };
    write_file_atomic(&file, data, mode)?;
    Ok(Some(file))
}

/// [`write_atomic`] for a path already resolved by [`target`].
pub fn write_file_atomic(file: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = parent(file);
    let name = file
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name"))?
        .to_string_lossy()
        .into_owned();
    let mode = fs::metadata(file)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(mode);
    let tmp = dir.join(format!(
        ".{name}.drover-{}-{:016x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    let written = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, file)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written?;
    // Make the rename durable; not every filesystem lets a directory be synced.
    if let Ok(d) = fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The directory holding `file` (`.` for a bare name).
pub fn parent(file: &Path) -> PathBuf {
    match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{symlink, FileTypeExt, PermissionsExt};

    use super::*;

    fn is_root() -> bool {
        // The owner of /proc/self is the effective user.
        fs::metadata("/proc/self")
            .map(|m| m.uid() == 0)
            .unwrap_or(false)
    }

    #[test]
    fn dev_null_is_kept_and_nothing_is_written() {
        assert_eq!(
            write_atomic(Path::new("/dev/null"), b"x", 0o644).expect("ok"),
            None
        );
        let meta = fs::metadata("/dev/null").expect("stat");
        assert!(
            meta.file_type().is_char_device(),
            "/dev/null stays a device"
        );
        assert_eq!(read_to_string(Path::new("/dev/null")).expect("read"), "");
    }

    #[test]
    fn a_null_device_node_elsewhere_is_null_and_other_devices_are_refused() {
        if !is_root() {
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let null = dir.path().join("null");
        let zero = dir.path().join("zero");
        let mk = |p: &Path, minor: &str| {
            let ok = std::process::Command::new("mknod")
                .arg(p)
                .args(["c", "1", minor])
                .status()
                .expect("mknod")
                .success();
            assert!(ok, "mknod");
        };
        mk(&null, "3");
        mk(&zero, "5");
        assert_eq!(write_atomic(&null, b"x", 0o644).expect("null"), None);
        assert!(fs::metadata(&null)
            .expect("stat")
            .file_type()
            .is_char_device());
        let err = write_atomic(&zero, b"x", 0o644).expect_err("refused");
        assert!(err.to_string().contains("a character device"), "{err}");
        assert!(fs::metadata(&zero)
            .expect("stat")
            .file_type()
            .is_char_device());
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("fifo");
        let ok = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo")
            .success();
        assert!(ok);
        let err = read_to_string(&fifo).expect_err("refused");
        assert!(err.to_string().contains("a FIFO"), "{err}");
        assert!(write_atomic(&fifo, b"x", 0o644).is_err());
        assert!(fs::metadata(&fifo).expect("stat").file_type().is_fifo());
        let d = dir.path().join("d");
        fs::create_dir(&d).expect("mkdir");
        assert!(write_atomic(&d, b"x", 0o644).is_err());
    }

    #[test]
    fn a_symlink_is_written_through_and_stays_a_link() {
        let dir = tempfile::tempdir().expect("tempdir");
        let real = dir.path().join("real");
        fs::write(&real, "old").expect("write");
        fs::set_permissions(&real, fs::Permissions::from_mode(0o600)).expect("chmod");
        let link = dir.path().join("link");
        symlink(&real, &link).expect("symlink");
        assert_eq!(
            write_atomic(&link, b"new", 0o644).expect("write"),
            Some(fs::canonicalize(&real).expect("real"))
        );
        assert!(fs::symlink_metadata(&link)
            .expect("lstat")
            .file_type()
            .is_symlink());
        assert_eq!(fs::read_to_string(&real).expect("read"), "new");
        let mode = fs::metadata(&real).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the existing mode is kept");
        // A dangling link creates its target.
        let dangling = dir.path().join("dangling");
        symlink("made", &dangling).expect("symlink");
        write_atomic(&dangling, b"x", 0o600).expect("write");
        assert_eq!(
            fs::read_to_string(dir.path().join("made")).expect("read"),
            "x"
        );
    }
}
