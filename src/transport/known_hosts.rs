//! known_hosts checking: strict by default, `accept-new` learns unknown hosts
//! atomically; a changed key (or a key of another algorithm for a pinned
//! host) is a hard error naming the known_hosts line.
//!
//! The file format is OpenSSH's: `[marker] patterns keytype base64 [comment]`,
//! where patterns are comma-separated host names (`host`, or `[host]:port`
//! for ports other than 22), `*`/`?` wildcards, `!negations` and hashed
//! entries (`|1|salt|hmac`). `@revoked` lines are honoured; `@cert-authority`
//! lines are skipped (host certificates are not trusted through a CA yet).
//!
//! The parser is ours rather than `russh::keys::known_hosts`: that one skips
//! comment lines without counting them (its line numbers drift), splits on
//! single spaces only, fails the whole lookup on one bad line and treats a
//! key of another algorithm as "unknown".
//!
//! Writes (learning a host, forgetting one) rewrite the whole file: a temp
//! file in the same directory, then a rename, under an exclusive lock on a
//! sibling `.lock` file plus an in-process mutex, so hosts learned in
//! parallel (threads or processes) all land and readers never see half a
//! file.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use base64::Engine;
use russh::keys::ssh_key::{HashAlg, PublicKey};
use sha1::{Digest, Sha1};

use crate::localfs;
use crate::transport::shell_quote;

/// How unknown host keys are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HostKeyChecking {
    /// Unknown hosts are refused.
    #[default]
    Strict,
    /// Unknown hosts are learned; changed keys are still refused.
    AcceptNew,
}

/// One key recorded for a host in a known_hosts file.
#[derive(Debug, Clone)]
pub struct KnownKey {
    /// 1-based line number in the file.
    pub line: usize,
    /// The recorded key.
    pub key: PublicKey,
    /// The line is marked `@revoked`.
    pub revoked: bool,
}

/// What a known_hosts file says about the key a host presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The key is recorded for the host, at this line.
    Known {
        /// 1-based line number.
        line: usize,
    },
    /// The file has no entry for the host.
    Unknown,
    /// The host is pinned to other keys: (line, algorithm name) of each.
    Changed {
        /// The entries the presented key contradicts.
        pinned: Vec<(usize, String)>,
    },
    /// The key is marked `@revoked` at this line.
    Revoked {
        /// 1-based line number.
        line: usize,
    },
}

/// The name a host is recorded under: `host` for port 22, `[host]:port`
/// otherwise, lowercased like OpenSSH does.
pub fn host_entry_name(host: &str, port: u16) -> String {
    let host = host.to_ascii_lowercase();
    if port == 22 {
        host
    } else {
        format!("[{host}]:{port}")
    }
}

/// The keys recorded for `host`:`port` in `path`, in file order. A missing
/// file has no keys; unparsable lines are skipped.
pub fn lookup(path: &Path, host: &str, port: u16) -> io::Result<Vec<KnownKey>> {
    let text = read_or_empty(path)?;
    Ok(lookup_in(&text, &host_entry_name(host, port)))
}

/// Check the key `host`:`port` presented against `path`.
pub fn check(path: &Path, host: &str, port: u16, key: &PublicKey) -> io::Result<Verdict> {
    Ok(verdict(&lookup(path, host, port)?, key))
}

/// Record `key` for `host`:`port` in `path` unless the file already says
/// something about the host; returns what the file said before (so
/// `Verdict::Unknown` means the key was added). The check and the write
/// happen under one lock, so a key learned concurrently is not overwritten.
pub fn learn(path: &Path, host: &str, port: u16, key: &PublicKey) -> io::Result<Verdict> {
    let name = host_entry_name(host, port);
    let mut before = Verdict::Unknown;
    rewrite_locked(path, |text| {
        before = verdict(&lookup_in(text, &name), key);
        if before != Verdict::Unknown {
            return Ok(None);
        }
        let mut out = text.to_string();
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&name);
        out.push(' ');
        out.push_str(&key_text(key)?);
        out.push('\n');
        Ok(Some(out))
    })?;
    Ok(before)
}

/// Remove the entries for `host`:`port` from `path` (plain and hashed
/// names; wildcard patterns are left alone, as they name other hosts too).
/// A line naming several hosts keeps the others. Returns how many entries
/// were removed; the file is rewritten atomically only if that is not 0.
pub fn forget(path: &Path, host: &str, port: u16) -> io::Result<usize> {
    let name = host_entry_name(host, port);
    let mut removed = 0;
    rewrite_locked(path, |text| {
        let mut out = String::with_capacity(text.len());
        for raw in text.split_inclusive('\n') {
            match forget_in_line(raw, &name) {
                None => out.push_str(raw),
                Some((n, kept)) => {
                    removed += n;
                    out.push_str(&kept);
                }
            }
        }
        Ok((removed > 0).then_some(out))
    })?;
    Ok(removed)
}

/// Accepted host keys, as [`verify`] reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// Recorded at this line.
    Known {
        /// 1-based line number.
        line: usize,
    },
    /// Unknown before, now recorded (accept-new).
    Learned,
}

/// Why a host key was not accepted; each message says how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostKeyError {
    /// The known_hosts file could not be read.
    #[error("cannot read {}: {reason}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },
    /// A new key could not be recorded (accept-new).
    #[error("cannot record the host key in {}: {reason}", path.display())]
    Record {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },
    /// The key is unknown (strict checking), revoked or changed: the
    /// explanation names the file, the lines and the fix.
    #[error("{0}")]
    Refused(String),
    /// The check itself did not complete.
    #[error("host key check failed: {0}")]
    Check(String),
}

/// The host key decision used when connecting: `Ok` to go on, `Err` says
/// what is wrong and how to fix it.
pub fn verify(
    path: &Path,
    host: &str,
    port: u16,
    key: &PublicKey,
    checking: HostKeyChecking,
) -> Result<Accepted, HostKeyError> {
    let io_err = |e: io::Error| HostKeyError::Read {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let mut v = check(path, host, port, key).map_err(io_err)?;
    if v == Verdict::Unknown && checking == HostKeyChecking::AcceptNew {
        v = learn(path, host, port, key).map_err(|e| HostKeyError::Record {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        if v == Verdict::Unknown {
            tracing::info!(
                "learned host key {} {} for {} into {}",
                key.algorithm().as_str(),
                key.fingerprint(HashAlg::Sha256),
                host_entry_name(host, port),
                path.display()
            );
            return Ok(Accepted::Learned);
        }
    }
    match v {
        Verdict::Known { line } => Ok(Accepted::Known { line }),
        other => Err(HostKeyError::Refused(explain(
            &other, path, host, port, key,
        ))),
    }
}

/// The known_hosts file used when none is given: `~/.ssh/known_hosts`.
pub fn default_path(home: &Path) -> PathBuf {
    home.join(".ssh").join("known_hosts")
}

/// The command that removes a host's entries from `path` (the `drover
/// known-hosts forget` subcommand calls [`forget`]); it names the file
/// unless it is the default one.
pub fn forget_hint(host: &str, port: u16, path: &Path) -> String {
    let mut hint = format!("drover known-hosts forget {}", shell_quote(host));
    if port != 22 {
        hint.push_str(&format!(" --port {port}"));
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    if path != default_path(&home) {
        hint.push_str(&format!(
            " --known-hosts {}",
            shell_quote(&path.to_string_lossy())
        ));
    }
    hint
}

/// A message for a refused verdict: what is wrong, where, and the fix.
pub fn explain(v: &Verdict, path: &Path, host: &str, port: u16, key: &PublicKey) -> String {
    let file = path.display();
    let name = host_entry_name(host, port);
    let offered = format!(
        "{} key {}",
        key.algorithm().as_str(),
        key.fingerprint(HashAlg::Sha256)
    );
    match v {
        Verdict::Known { line } => format!("{name} is known ({file}:{line})"),
        Verdict::Unknown => format!(
            "{name} is not in {file} (it offers the {offered}). If that fingerprint \
             is right, run with `--host-key-checking accept-new` to record it, or add \
             the key to {file} yourself"
        ),
        Verdict::Revoked { line } => format!(
            "{name} offers the {offered}, which {file}:{line} marks as @revoked; \
             refusing to connect"
        ),
        Verdict::Changed { pinned } => {
            let at: Vec<String> = pinned
                .iter()
                .map(|(line, alg)| format!("{file}:{line} ({alg})"))
                .collect();
            let same_alg = pinned
                .iter()
                .any(|(_, alg)| alg == key.algorithm().as_str());
            let what = if same_alg {
                "REMOTE HOST KEY CHANGED"
            } else {
                "the host now offers a key of another algorithm than the one pinned"
            };
            format!(
                "{what}: {name} offers the {offered}, which does not match the key \
                 recorded at {}. Someone may be intercepting the connection, or the host \
                 was reinstalled. If the change is expected, remove the old entry with \
                 `{}` (or edit {file}) and connect again",
                at.join(", "),
                forget_hint(host, port, path)
            )
        }
    }
}

fn verdict(entries: &[KnownKey], key: &PublicKey) -> Verdict {
    if let Some(e) = entries
        .iter()
        .find(|e| e.revoked && e.key.key_data() == key.key_data())
    {
        return Verdict::Revoked { line: e.line };
    }
    let pins: Vec<&KnownKey> = entries.iter().filter(|e| !e.revoked).collect();
    if let Some(e) = pins.iter().find(|e| e.key.key_data() == key.key_data()) {
        return Verdict::Known { line: e.line };
    }
    if pins.is_empty() {
        return Verdict::Unknown;
    }
    Verdict::Changed {
        pinned: pins
            .iter()
            .map(|e| (e.line, e.key.algorithm().as_str().to_string()))
            .collect(),
    }
}

/// A parsed known_hosts line (only the parts we use).
struct Line<'a> {
    marker: Option<&'a str>,
    patterns: &'a str,
    key_b64: &'a str,
}

fn parse_line(raw: &str) -> Option<Line<'_>> {
    let line = raw.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let mut fields = line.split_ascii_whitespace();
    let mut first = fields.next()?;
    let mut marker = None;
    if first.starts_with('@') {
        marker = Some(first);
        first = fields.next()?;
    }
    let _key_type = fields.next()?;
    let key_b64 = fields.next()?;
    Some(Line {
        marker,
        patterns: first,
        key_b64,
    })
}

fn lookup_in(text: &str, name: &str) -> Vec<KnownKey> {
    let mut found = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let Some(line) = parse_line(raw) else {
            continue;
        };
        let revoked = match line.marker {
            None => false,
            Some("@revoked") => true,
            Some(other) => {
                tracing::debug!("known_hosts line {}: {other} entries are not used", i + 1);
                continue;
            }
        };
        if !patterns_match(line.patterns, name) {
            continue;
        }
        match russh::keys::parse_public_key_base64(line.key_b64) {
            Ok(key) => found.push(KnownKey {
                line: i + 1,
                key,
                revoked,
            }),
            Err(e) => tracing::debug!("known_hosts line {}: unreadable key: {e}", i + 1),
        }
    }
    found
}

/// OpenSSH's rule: the line applies if some pattern matches and no negated
/// pattern does.
fn patterns_match(patterns: &str, name: &str) -> bool {
    let mut hit = false;
    for p in patterns.split(',') {
        if let Some(neg) = p.strip_prefix('!') {
            if glob(&neg.to_ascii_lowercase(), name) {
                return false;
            }
        } else if p.starts_with("|1|") {
            hit |= hashed_match(p, name);
        } else {
            hit |= glob(&p.to_ascii_lowercase(), name);
        }
    }
    hit
}

/// `|1|base64(salt)|base64(hmac_sha1(salt, name))`
fn hashed_match(pattern: &str, name: &str) -> bool {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut parts = pattern.split('|').skip(2);
    let (Some(salt), Some(hash)) = (parts.next(), parts.next()) else {
        return false;
    };
    match (b64.decode(salt), b64.decode(hash)) {
        (Ok(salt), Ok(hash)) => hmac_sha1(&salt, name.as_bytes()).as_slice() == hash.as_slice(),
        _ => false,
    }
}

fn hmac_sha1(key: &[u8], msg: &[u8]) -> [u8; 20] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..20].copy_from_slice(&Sha1::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |x: u8| block.map(|b| b ^ x);
    let inner = Sha1::new()
        .chain_update(pad(0x36))
        .chain_update(msg)
        .finalize();
    Sha1::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// `*` and `?` wildcards, as in OpenSSH's `match_pattern`.
fn glob(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.as_bytes(), name.as_bytes());
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// For a line that names `name` exactly (plain or hashed), the number of
/// such patterns and the line without them (empty if nothing is left).
fn forget_in_line(raw: &str, name: &str) -> Option<(usize, String)> {
    let line = parse_line(raw)?;
    let exact = |p: &str| {
        if p.starts_with("|1|") {
            hashed_match(p, name)
        } else {
            p.eq_ignore_ascii_case(name)
        }
    };
    let all: Vec<&str> = line.patterns.split(',').collect();
    let kept: Vec<&str> = all.iter().copied().filter(|p| !exact(p)).collect();
    let removed = all.len() - kept.len();
    if removed == 0 {
        return None;
    }
    if kept.is_empty() || kept.iter().all(|p| p.starts_with('!')) {
        return Some((removed, String::new()));
    }
    let at = raw.find(line.patterns)?;
    let mut out = String::with_capacity(raw.len());
    out.push_str(&raw[..at]);
    out.push_str(&kept.join(","));
    out.push_str(&raw[at + line.patterns.len()..]);
    Some((removed, out))
}

fn key_text(key: &PublicKey) -> io::Result<String> {
    let mut key = key.clone();
    key.set_comment("");
    key.to_openssh()
        .map(|s| s.trim_end().to_string())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
}

fn read_or_empty(path: &Path) -> io::Result<String> {
    localfs::read_to_string(path)
}

/// Serialises rewrites inside this process; the file lock serialises
/// processes (and would suffice on Linux, where flock conflicts between two
/// opens in one process too, but not every platform agrees).
static REWRITE: Mutex<()> = Mutex::new(());

/// Read `path`, let `edit` compute new contents (`None`: leave it), and
/// replace the file atomically, all under the locks. A symlinked
/// known_hosts is rewritten through its target; `/dev/null` remembers
/// nothing (the edit sees an empty file and its result is dropped).
fn rewrite_locked(
    path: &Path,
    edit: impl FnOnce(&str) -> io::Result<Option<String>>,
) -> io::Result<()> {
    let _guard = REWRITE.lock().unwrap_or_else(|p| p.into_inner());
    let path = match localfs::target(path)? {
        localfs::Target::Null => {
            edit("")?;
            return Ok(());
        }
        localfs::Target::File(p) => p,
    };
    let dir = localfs::parent(&path);
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "known_hosts path has no name"))?
        .to_string_lossy()
        .into_owned();
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
    }
    let lock = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(dir.join(format!(".{file_name}.lock")))?;
    lock.lock()?;

    let text = read_or_empty(&path)?;
    let Some(new) = edit(&text)? else {
        return Ok(());
    };
    localfs::write_file_atomic(&path, new.as_bytes(), 0o644)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const ED_A: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";
    const ED_B: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIA6rWI3G1sz07DnfFlrouTcysQlj2P+jpNSOEWD9OJ3X";
    const ED_C: &str = "AAAAC3NzaC1lZDI1NTE5AAAAILIG2T/B0l0gaqj3puu510tu9N1OkQ4znY3LYuEm5zCF";
    const ECDSA: &str = "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBNGQ2ehL153JCI8TzhAwCGb/78xbAMJnU9XLDRWeqQN8tjLCEpzhAzpdyd7wy/poLhDJXBxpTUYOgUa35gkhG/I=";

    fn key(b64: &str) -> PublicKey {
        russh::keys::parse_public_key_base64(b64).expect("test key")
    }

    fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("known_hosts");
        fs::write(&path, text).expect("write");
        (dir, path)
    }

    #[test]
    fn hmac_sha1_rfc2202_case_1() {
        let mac = hmac_sha1(&[0x0b; 20], b"Hi There");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "b617318655057264e28bc0b6fb378c8ef146be00");
    }

    #[test]
    fn globbing() {
        assert!(glob("*.example.com", "a.example.com"));
        assert!(glob("192.168.1.?", "192.168.1.7"));
        assert!(!glob("192.168.1.?", "192.168.1.17"));
        assert!(glob("*", "x"));
        assert!(glob("a*b*c", "aXbYbZc"));
        assert!(!glob("a*b", "ac"));
    }

    #[test]
    fn line_numbers_count_comments_and_blank_lines() {
        let text = format!(
            "# a comment\n\nother ssh-ed25519 {ED_B}\n  10.0.0.1,pi\tssh-ed25519   {ED_A} c\n"
        );
        let (_d, path) = file(&text);
        let v = check(&path, "pi", 22, &key(ED_A)).expect("check");
        assert_eq!(v, Verdict::Known { line: 4 });
        let v = check(&path, "10.0.0.1", 22, &key(ED_B)).expect("check");
        assert_eq!(
            v,
            Verdict::Changed {
                pinned: vec![(4, "ssh-ed25519".into())]
            }
        );
    }

    #[test]
    fn other_algorithm_for_pinned_host_is_a_change() {
        let (_d, path) = file(&format!("[pi]:2222 ecdsa-sha2-nistp256 {ECDSA}\n"));
        let v = check(&path, "pi", 2222, &key(ED_A)).expect("check");
        assert_eq!(
            v,
            Verdict::Changed {
                pinned: vec![(1, "ecdsa-sha2-nistp256".into())]
            }
        );
        let msg = explain(&v, &path, "pi", 2222, &key(ED_A));
        assert!(msg.contains("another algorithm"), "{msg}");
        assert!(msg.contains(&format!("{}:1", path.display())), "{msg}");
        assert!(
            msg.contains(&format!(
                "drover known-hosts forget pi --port 2222 --known-hosts {}",
                path.display()
            )),
            "the hint names the file the key is pinned in: {msg}"
        );
    }

    #[test]
    fn the_forget_hint_names_the_file_unless_it_is_the_default() {
        let home = PathBuf::from(std::env::var_os("HOME").unwrap_or_default());
        assert_eq!(
            forget_hint("pi", 22, &default_path(&home)),
            "drover known-hosts forget pi"
        );
        assert_eq!(
            forget_hint("pi", 22, Path::new("/tmp/lab/known hosts")),
            "drover known-hosts forget pi --known-hosts '/tmp/lab/known hosts'"
        );
    }

    #[test]
    fn port_entries_and_unknown() {
        let (_d, path) = file(&format!("[pi]:2222 ssh-ed25519 {ED_A}\n"));
        assert_eq!(
            check(&path, "pi", 22, &key(ED_A)).expect("check"),
            Verdict::Unknown
        );
        assert_eq!(
            check(&path, "PI", 2222, &key(ED_A)).expect("check"),
            Verdict::Known { line: 1 }
        );
        let missing = path.with_file_name("nope");
        assert_eq!(
            check(&missing, "pi", 22, &key(ED_A)).expect("check"),
            Verdict::Unknown
        );
    }

    #[test]
    fn hashed_negated_revoked_and_ca_lines() {
        // The hashed entry is for example.com (from russh's own tests).
        let text = format!(
            "|1|O33ESRMWPVkMYIwJ1Uw+n877jTo=|nuuC5vEqXlEZ/8BXQR7m619W6Ak= ssh-ed25519 {ED_C}\n\
             *.lan,!evil.lan ssh-ed25519 {ED_A}\n\
             @revoked * ssh-ed25519 {ED_B}\n\
             @cert-authority * ssh-ed25519 {ED_A}\n"
        );
        let (_d, path) = file(&text);
        assert_eq!(
            check(&path, "example.com", 22, &key(ED_C)).expect("check"),
            Verdict::Known { line: 1 }
        );
        assert_eq!(
            check(&path, "pi.lan", 22, &key(ED_A)).expect("check"),
            Verdict::Known { line: 2 }
        );
        assert_eq!(
            check(&path, "evil.lan", 22, &key(ED_A)).expect("check"),
            Verdict::Unknown
        );
        assert_eq!(
            check(&path, "anything", 22, &key(ED_B)).expect("check"),
            Verdict::Revoked { line: 3 }
        );
    }

    #[test]
    fn accept_new_learns_once_and_strict_refuses() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub").join("known_hosts");
        let err = verify(&path, "pi", 22, &key(ED_A), HostKeyChecking::Strict)
            .expect_err("strict refuses unknown")
            .to_string();
        assert!(err.contains("--host-key-checking accept-new"), "{err}");
        assert!(!path.exists());
        assert_eq!(
            verify(&path, "pi", 22, &key(ED_A), HostKeyChecking::AcceptNew),
            Ok(Accepted::Learned)
        );
        assert_eq!(
            verify(&path, "pi", 22, &key(ED_A), HostKeyChecking::Strict),
            Ok(Accepted::Known { line: 1 })
        );
        let err = verify(&path, "pi", 22, &key(ED_B), HostKeyChecking::AcceptNew)
            .expect_err("changed key refused even with accept-new")
            .to_string();
        assert!(err.contains("REMOTE HOST KEY CHANGED"), "{err}");
        assert!(err.contains(&format!("{}:1", path.display())), "{err}");
        let text = fs::read_to_string(&path).expect("read");
        assert_eq!(text, format!("pi ssh-ed25519 {ED_A}\n"));
    }

    #[test]
    fn learning_keeps_existing_lines_and_mode() {
        let (_d, path) = file("# keep me\nother ssh-ed25519 AAAA-broken");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
        assert_eq!(
            learn(&path, "pi", 2200, &key(ED_A)).expect("learn"),
            Verdict::Unknown
        );
        let text = fs::read_to_string(&path).expect("read");
        assert_eq!(
            text,
            format!("# keep me\nother ssh-ed25519 AAAA-broken\n[pi]:2200 ssh-ed25519 {ED_A}\n")
        );
        let mode = fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn accept_new_with_dev_null_remembers_nothing_and_keeps_the_device() {
        use std::os::unix::fs::FileTypeExt;
        let null = Path::new("/dev/null");
        for _ in 0..2 {
            assert_eq!(
                verify(null, "pi", 22, &key(ED_A), HostKeyChecking::AcceptNew),
                Ok(Accepted::Learned),
                "unknown every time, as with OpenSSH"
            );
        }
        assert!(verify(null, "pi", 22, &key(ED_A), HostKeyChecking::Strict).is_err());
        assert_eq!(forget(null, "pi", 22).expect("forget"), 0);
        let meta = fs::metadata(null).expect("stat");
        assert!(
            meta.file_type().is_char_device(),
            "/dev/null is still a device"
        );
        assert!(
            !Path::new("/dev/.null.lock").exists(),
            "no lock file in /dev"
        );
    }

    #[test]
    fn a_known_hosts_that_is_a_fifo_or_directory_is_refused_not_replaced() {
        use std::os::unix::fs::FileTypeExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo")
            .success());
        let err = verify(&fifo, "pi", 22, &key(ED_A), HostKeyChecking::AcceptNew)
            .expect_err("refused")
            .to_string();
        assert!(err.contains("a FIFO, not a regular file"), "{err}");
        assert!(fs::metadata(&fifo).expect("stat").file_type().is_fifo());
        let err = verify(dir.path(), "pi", 22, &key(ED_A), HostKeyChecking::AcceptNew)
            .expect_err("refused")
            .to_string();
        assert!(err.contains("a directory"), "{err}");
    }

    #[test]
    fn a_symlinked_known_hosts_is_written_through_its_target() {
        let dir = tempfile::tempdir().expect("tempdir");
        let real = dir.path().join("real_known_hosts");
        fs::write(&real, format!("old ssh-ed25519 {ED_B}\n")).expect("write");
        let link = dir.path().join("known_hosts");
        std::os::unix::fs::symlink(&real, &link).expect("symlink");
        assert_eq!(
            verify(&link, "pi", 22, &key(ED_A), HostKeyChecking::AcceptNew),
            Ok(Accepted::Learned)
        );
        assert!(fs::symlink_metadata(&link)
            .expect("lstat")
            .file_type()
            .is_symlink());
        assert_eq!(
            fs::read_to_string(&real).expect("read"),
            format!("old ssh-ed25519 {ED_B}\npi ssh-ed25519 {ED_A}\n")
        );
    }

    #[test]
    fn parallel_learning_loses_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("known_hosts");
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let host = format!("node-{i}");
                    verify(&path, &host, 22, &key(ED_A), HostKeyChecking::AcceptNew)
                })
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().expect("thread"), Ok(Accepted::Learned));
        }
        for i in 0..8 {
            assert!(matches!(
                check(&path, &format!("node-{i}"), 22, &key(ED_A)).expect("check"),
                Verdict::Known { .. }
            ));
        }
        let names: Vec<String> = fs::read_dir(dir.path())
            .expect("ls")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.iter().all(|n| !n.contains("drover-")),
            "temp files left: {names:?}"
        );
    }

    #[test]
    fn forget_removes_exact_and_hashed_entries_only() {
        let text = format!(
            "# c\n\
             pi ssh-ed25519 {ED_A}\n\
             pi,10.0.0.1 ssh-ed25519 {ED_B} comment\n\
             |1|O33ESRMWPVkMYIwJ1Uw+n877jTo=|nuuC5vEqXlEZ/8BXQR7m619W6Ak= ssh-ed25519 {ED_C}\n\
             p* ssh-ed25519 {ED_A}\n\
             [pi]:2222 ssh-ed25519 {ED_A}\n"
        );
        let (_d, path) = file(&text);
        assert_eq!(forget(&path, "pi", 22).expect("forget"), 2);
        assert_eq!(forget(&path, "example.com", 22).expect("forget"), 1);
        assert_eq!(forget(&path, "nothing", 22).expect("forget"), 0);
        let after = fs::read_to_string(&path).expect("read");
        assert_eq!(
            after,
            format!(
                "# c\n\
                 10.0.0.1 ssh-ed25519 {ED_B} comment\n\
                 p* ssh-ed25519 {ED_A}\n\
                 [pi]:2222 ssh-ed25519 {ED_A}\n"
            )
        );
        assert_eq!(forget(&path, "pi", 2222).expect("forget"), 1);
    }
}
