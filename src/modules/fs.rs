//! File operations on a host, each in one round trip: read the state (and
//! optionally checksum or content) of several paths at once, and write a file
//! atomically (dot-named temp file in the destination's directory, mode and
//! owner set, then renamed over the destination).

use base64::Engine as _;
use rand::Rng;

use super::ModuleError;
use crate::transport::{shell_quote, Remote};
use crate::Value;

/// What kind of thing is at a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// Nothing there.
    Missing,
    /// A regular file.
    File,
    /// A directory.
    Directory,
    /// A symbolic link (not followed).
    Link,
    /// A device, socket or fifo.
    Other,
}

/// The state of one path on the host.
#[derive(Debug, Clone, PartialEq)]
pub struct FileState {
    /// The path asked for.
    pub path: String,
    /// What is there.
    pub kind: FileKind,
    /// Permission bits (e.g. 0o644).
    pub mode: u32,
    /// Owner name.
    pub owner: String,
    /// Group name.
    pub group: String,
    /// Size in bytes.
    pub size: u64,
    /// Target of a symbolic link.
    pub link_target: Option<String>,
    /// SHA-1 of a regular file's content, hex (when asked for).
    pub checksum: Option<String>,
    /// A regular file's content (when asked for).
    pub content: Option<Vec<u8>>,
}

impl FileState {
    /// Does anything exist at the path?
    pub fn exists(&self) -> bool {
        self.kind != FileKind::Missing
    }
}

/// What to read besides the metadata.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Read {
    /// SHA-1 of regular files.
    pub checksum: bool,
    /// Whole content of regular files.
    pub content: bool,
}

/// Mode, owner and group a file should have; `None` leaves it as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attrs {
    /// Wanted mode.
    pub mode: Option<Mode>,
    /// Wanted owner.
    pub owner: Option<String>,
    /// Wanted group.
    pub group: Option<String>,
}

/// A mode as Ansible accepts it.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// Octal bits (from `0644`, `'0644'`, `'644'`).
    Bits(u32),
    /// Symbolic (`u=rw,g=r,o=r`, `u+x`).
    Symbolic(String),
}

impl Mode {
    /// Parse a `mode:` argument. An integer is taken as the bits themselves
    /// (YAML reads `0644` as octal); a string of digits is octal.
    pub fn parse(value: &Value) -> Result<Mode, ModuleError> {
        match value {
            Value::Number(n) => n
                .as_u64()
                .filter(|b| *b <= 0o7777)
                .map(|b| Mode::Bits(b as u32))
                .ok_or_else(|| ModuleError::Args(format!("invalid mode {n}"))),
            Value::String(s) if !s.is_empty() && s.bytes().all(|b| (b'0'..=b'7').contains(&b)) => {
                u32::from_str_radix(s, 8)
                    .ok()
                    .filter(|b| *b <= 0o7777)
                    .map(Mode::Bits)
                    .ok_or_else(|| ModuleError::Args(format!("invalid mode {s}")))
            }
            Value::String(s) => {
                // Validate now so that apply cannot fail on it.
                apply_symbolic(s, 0, false)?;
                Ok(Mode::Symbolic(s.clone()))
            }
            other => Err(ModuleError::Args(format!("invalid mode {other}"))),
        }
    }

    /// The bits this mode gives a file that now has `current`.
    pub fn resolve(&self, current: u32, is_dir: bool) -> Result<u32, ModuleError> {
        match self {
            Mode::Bits(b) => Ok(*b),
            Mode::Symbolic(s) => apply_symbolic(s, current, is_dir),
        }
    }
}

/// Apply a symbolic mode (`u=rw,g+r,o-w,a+X`) to `current`.
fn apply_symbolic(spec: &str, current: u32, is_dir: bool) -> Result<u32, ModuleError> {
    let bad = || ModuleError::Args(format!("invalid symbolic mode {spec:?}"));
    let mut mode = current & 0o7777;
    for clause in spec.split(',') {
        let op_at = clause.find(['=', '+', '-']).ok_or_else(bad)?;
        let (who, rest) = clause.split_at(op_at);
        let mut mask = 0u32;
        for c in who.chars() {
            mask |= match c {
                'u' => 0o4700,
                'g' => 0o2070,
                'o' => 0o1007,
                'a' => 0o7777,
                _ => return Err(bad()),
            };
        }
        if who.is_empty() {
            mask = 0o7777;
        }
        let mut chars = rest.chars();
        let op = chars.next().ok_or_else(bad)?;
        let mut perm = 0u32;
        for c in chars {
            perm |= match c {
                'r' => 0o444,
                'w' => 0o222,
                'x' => 0o111,
                'X' if is_dir || current & 0o111 != 0 => 0o111,
                'X' => 0,
                's' => 0o6000,
                't' => 0o1000,
                _ => return Err(bad()),
            };
        }
        let bits = perm & mask;
        mode = match op {
            '=' => (mode & !(mask & 0o777)) | bits,
            '+' => mode | bits,
            '-' => mode & !bits,
            _ => return Err(bad()),
        };
    }
    Ok(mode)
}

/// Read the state of `paths` in one exec.
pub async fn read_files(
    remote: &Remote,
    paths: &[&str],
    read: Read,
) -> Result<Vec<FileState>, ModuleError> {
    let mut script = String::from("for p in");
    for p in paths {
        script.push(' ');
        script.push_str(&shell_quote(p));
    }
    script.push_str(
        "; do if [ -L \"$p\" ] || [ -e \"$p\" ]; then \
         printf '@@ %s|%s\\n' \"$(stat -c '%F|%a|%U|%G|%s' -- \"$p\" 2>&1)\" \"$(readlink -- \"$p\" 2>/dev/null)\"; ",
    );
    if read.checksum {
        script.push_str(
            "if [ -f \"$p\" ]; then printf '@@sum %s\\n' \"$(sha1sum < \"$p\" 2>/dev/null | cut -c1-40)\"; fi; ",
        );
    }
    if read.content {
        script.push_str("if [ -f \"$p\" ]; then printf '@@data '; base64 -w0 < \"$p\"; echo; fi; ");
    }
    script.push_str("else echo '@@ missing'; fi; done");
    let out = remote.exec(&script, b"").await?;
    if out.status != 0 {
        return Err(ModuleError::failed(format!(
            "reading {} failed: {}",
            paths.join(", "),
            out.stderr_str().trim()
        )));
    }
    parse_states(paths, &out.stdout_str())
}

fn parse_states(paths: &[&str], text: &str) -> Result<Vec<FileState>, ModuleError> {
    let mut states: Vec<FileState> = Vec::with_capacity(paths.len());
    for line in text.lines() {
        if let Some(sum) = line.strip_prefix("@@sum ") {
            if let Some(s) = states.last_mut() {
                s.checksum = Some(sum.trim().to_string());
            }
        } else if let Some(data) = line.strip_prefix("@@data ") {
            if let Some(s) = states.last_mut() {
                s.content = Some(
                    base64::engine::general_purpose::STANDARD
                        .decode(data.trim())
                        .map_err(|e| ModuleError::failed(format!("bad file data: {e}")))?,
                );
            }
        } else if let Some(head) = line.strip_prefix("@@ ") {
            let path = paths
                .get(states.len())
                .ok_or_else(|| ModuleError::failed("unexpected output while reading files"))?
                .to_string();
            states.push(parse_head(path, head)?);
        }
    }
    if states.len() != paths.len() {
        return Err(ModuleError::failed("incomplete output while reading files"));
    }
    Ok(states)
}

fn parse_head(path: String, head: &str) -> Result<FileState, ModuleError> {
    let mut state = FileState {
        path,
        kind: FileKind::Missing,
        mode: 0,
        owner: String::new(),
        group: String::new(),
        size: 0,
        link_target: None,
        checksum: None,
        content: None,
    };
    if head == "missing" {
        return Ok(state);
    }
    let f: Vec<&str> = head.splitn(6, '|').collect();
    if f.len() < 6 {
        return Err(ModuleError::failed(format!(
            "cannot stat {}: {head}",
            state.path
        )));
    }
    state.kind = match f[0] {
        "regular file" | "regular empty file" => FileKind::File,
        "directory" => FileKind::Directory,
        "symbolic link" => FileKind::Link,
        _ => FileKind::Other,
    };
    state.mode = u32::from_str_radix(f[1], 8).unwrap_or(0);
    state.owner = f[2].to_string();
    state.group = f[3].to_string();
    state.size = f[4].parse().unwrap_or(0);
    if state.kind == FileKind::Link {
        state.link_target = Some(f[5].to_string());
    }
    Ok(state)
}

/// Shell commands that give `target` the wanted attributes.
pub fn attrs_script(
    target: &str,
    attrs: &Attrs,
    current_mode: u32,
    is_dir: bool,
) -> Result<String, ModuleError> {
    let mut s = String::new();
    if let Some(mode) = &attrs.mode {
        let bits = mode.resolve(current_mode, is_dir)?;
        s.push_str(&format!("chmod {:04o} {} && ", bits, shell_quote(target)));
    }
    match (&attrs.owner, &attrs.group) {
        (Some(o), Some(g)) => s.push_str(&format!(
            "chown {}:{} {} && ",
            shell_quote(o),
            shell_quote(g),
            shell_quote(target)
        )),
        (Some(o), None) => s.push_str(&format!(
            "chown {} {} && ",
            shell_quote(o),
            shell_quote(target)
        )),
        (None, Some(g)) => s.push_str(&format!(
            "chgrp {} {} && ",
            shell_quote(g),
            shell_quote(target)
        )),
        (None, None) => {}
    }
    s.push_str("true");
    Ok(s)
}

/// Does `state` already have the wanted attributes?
pub fn attrs_match(state: &FileState, attrs: &Attrs) -> Result<bool, ModuleError> {
    if let Some(mode) = &attrs.mode {
        if mode.resolve(state.mode, state.kind == FileKind::Directory)? != state.mode {
            return Ok(false);
        }
    }
    Ok(attrs.owner.as_ref().is_none_or(|o| *o == state.owner)
        && attrs.group.as_ref().is_none_or(|g| *g == state.group))
}

/// Write `content` to `path` atomically. An existing file keeps its mode and
/// owner unless `attrs` says otherwise; a new one gets 0644. With `backup`,
/// the old file is copied aside first and the backup's path returned.
pub async fn write_file_atomic(
    remote: &Remote,
    path: &str,
    content: &[u8],
    attrs: &Attrs,
    backup: bool,
) -> Result<Option<String>, ModuleError> {
    let q = shell_quote(path);
    let stamp: u32 = rand::rng().random();
    let backup_path = format!("{path}.{stamp:08x}~");
    let mut script = format!(
        "set -e; umask 077; d=$(dirname -- {q}); t=$(mktemp \"$d/.drover.XXXXXXXX\"); \
         trap 'rm -f \"$t\"' EXIT; cat > \"$t\"; \
         if [ -e {q} ]; then chmod --reference={q} \"$t\"; chown --reference={q} \"$t\" 2>/dev/null || true; else chmod 0644 \"$t\"; fi; "
    );
    if backup {
        script.push_str(&format!(
            "if [ -f {q} ]; then cp -p {q} {}; echo BACKUP; fi; ",
            shell_quote(&backup_path)
        ));
    }
    if attrs.mode.is_some() || attrs.owner.is_some() || attrs.group.is_some() {
        // Symbolic modes apply to what the file has now (or 0644 when new).
        let script_attrs = attrs_script("$t", attrs, 0o644, false)?.replace("'$t'", "\"$t\"");
        script.push_str(&script_attrs);
        script.push_str("; ");
    }
    script.push_str(&format!("mv -f \"$t\" {q}; trap - EXIT"));
    let out = remote.exec(&script, content).await?;
    if out.status != 0 {
        return Err(ModuleError::failed(format!(
            "writing {path} failed: {}",
            out.stderr_str().trim()
        )));
    }
    Ok(out.stdout_str().contains("BACKUP").then_some(backup_path))
}

/// Run a shell snippet that must succeed, failing the task with its stderr.
pub async fn run_checked(remote: &Remote, script: &str, what: &str) -> Result<(), ModuleError> {
    let out = remote.exec(script, b"").await?;
    if out.status != 0 {
        return Err(ModuleError::failed(format!(
            "{what} failed: {}",
            out.stderr_str().trim()
        )));
    }
    Ok(())
}

/// SHA-1 hex of bytes, as `sha1sum` prints it.
pub fn sha1_hex(data: &[u8]) -> String {
    use sha1::Digest;
    let digest = sha1::Sha1::digest(data);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::transport::local::LocalTransport;

    #[test]
    fn modes() {
        assert_eq!(Mode::parse(&Value::from(420)).ok(), Some(Mode::Bits(0o644)));
        assert_eq!(
            Mode::parse(&Value::from("0755")).ok(),
            Some(Mode::Bits(0o755))
        );
        let m = Mode::parse(&Value::from("u=rw,g=r,o=")).expect("symbolic");
        assert_eq!(m.resolve(0o777, false).ok(), Some(0o640));
        let x = Mode::parse(&Value::from("a+X")).expect("symbolic");
        assert_eq!(x.resolve(0o644, true).ok(), Some(0o755));
        assert!(Mode::parse(&Value::from("q=x")).is_err());
    }

    #[tokio::test]
    async fn write_then_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f.txt");
        let p = path.to_str().expect("utf8");
        let remote = Remote::new(Arc::new(LocalTransport), None);
        let attrs = Attrs {
            mode: Some(Mode::Bits(0o600)),
            ..Attrs::default()
        };
        write_file_atomic(&remote, p, b"one\ntwo\n", &attrs, false)
            .await
            .expect("write");
        let missing = dir.path().join("nope");
        let states = read_files(
            &remote,
            &[p, missing.to_str().expect("utf8")],
            Read {
                checksum: true,
                content: true,
            },
        )
        .await
        .expect("read");
        assert_eq!(states[0].kind, FileKind::File);
        assert_eq!(states[0].mode, 0o600);
        assert_eq!(states[0].content.as_deref(), Some(&b"one\ntwo\n"[..]));
        assert_eq!(
            states[0].checksum.as_deref(),
            Some(sha1_hex(b"one\ntwo\n").as_str())
        );
        assert_eq!(states[1].kind, FileKind::Missing);
        // No temp file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names.len(), 1);
    }
}
