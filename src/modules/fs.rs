//! File operations on a host, each in one round trip: read the state (and
//! optionally checksum or content) of several paths at once, and write files
//! atomically (dot-named temp file in the destination's directory, mode and
//! owner set, then renamed over the destination).
//!
//! Reading: [`read_files`] for a list of literal paths, or a [`ReadBatch`]
//! when one exec must also follow links, read paths computed on the host
//! (`"$h/.ssh"` after `getent passwd`) or run a small probe (`find`).
//! Writing: [`write_file_atomic`] for one file, [`write_files`] for several
//! (their contents travel on stdin, one after the other).

use base64::Engine as _;

use super::reads::{ReadCmd, ReadSet, Scope, ScopePath};
use super::ModuleError;
use crate::transport::{shell_quote, ExecOutput, Remote, StdinPart};
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
    /// The path asked for (for paths computed on the host: what it expanded to).
    pub path: String,
    /// What is there.
    pub kind: FileKind,
    /// `stat`'s name for the type ("regular file", "fifo", ...), empty when missing.
    pub type_name: String,
    /// Permission bits (e.g. 0o644).
    pub mode: u32,
    /// Owner name (`UNKNOWN` when the uid has no name).
    pub owner: String,
    /// Group name (`UNKNOWN` when the gid has no name).
    pub group: String,
    /// Owner's uid.
    pub uid: u32,
    /// Group's gid.
    pub gid: u32,
    /// Size in bytes.
    pub size: u64,
    /// Number of hard links.
    pub nlink: u64,
    /// Inode number.
    pub inode: u64,
    /// Device number.
    pub dev: u64,
    /// Last access, seconds since the epoch.
    pub atime: f64,
    /// Last modification, seconds since the epoch.
    pub mtime: f64,
    /// Last status change, seconds since the epoch.
    pub ctime: f64,
    /// Target of a symbolic link.
    pub link_target: Option<String>,
    /// SHA-1 of a regular file's content, hex (when asked for and readable).
    pub checksum: Option<String>,
    /// A regular file's content (when asked for and readable).
    pub content: Option<Vec<u8>>,
}

impl FileState {
    /// Does anything exist at the path?
    pub fn exists(&self) -> bool {
        self.kind != FileKind::Missing
    }

    /// The mode as Ansible prints it (`"0644"`).
    pub fn mode_string(&self) -> String {
        format!("{:04o}", self.mode)
    }

    /// The state of a path that does not exist.
    pub(crate) fn missing(path: String) -> FileState {
        FileState {
            path,
            kind: FileKind::Missing,
            type_name: String::new(),
            mode: 0,
            owner: String::new(),
            group: String::new(),
            uid: 0,
            gid: 0,
            size: 0,
            nlink: 0,
            inode: 0,
            dev: 0,
            atime: 0.0,
            mtime: 0.0,
            ctime: 0.0,
            link_target: None,
            checksum: None,
            content: None,
        }
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
    /// Wanted owner (name or numeric uid).
    pub owner: Option<String>,
    /// Wanted group (name or numeric gid).
    pub group: Option<String>,
}

impl Attrs {
    /// Are no attributes asked for?
    pub fn is_empty(&self) -> bool {
        self.mode.is_none() && self.owner.is_none() && self.group.is_none()
    }

    /// The same attributes with a symbolic mode turned into bits, as it would
    /// apply to a file that now has `current` (a directory if `is_dir`).
    pub fn resolved(&self, current: u32, is_dir: bool) -> Result<Attrs, ModuleError> {
        Ok(Attrs {
            mode: match &self.mode {
                Some(m) => Some(Mode::Bits(m.resolve(current, is_dir)?)),
                None => None,
            },
            owner: self.owner.clone(),
            group: self.group.clone(),
        })
    }
}

/// A mode as Ansible accepts it.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// Octal bits (from `0644`, `'0644'`, `'644'`).
    Bits(u32),
    /// Symbolic (`u=rw,g=r,o=r`, `u+x`).
    Symbolic(String),
}

/// The umask assumed for symbolic modes without a `who` (`+x`): Ansible uses
/// the host's umask; drover does not read it and takes the usual 022.
const ASSUMED_UMASK: u32 = 0o022;

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

/// How Ansible words a symbolic mode it cannot read (its details).
pub const BAD_SYMBOLIC: &str = "bad symbolic permission for mode: ";

/// Apply a symbolic mode (`u=rw,g+r,o-w,a+X`, `g=u`, `u+r-w`) to `current`
/// the way Ansible does: clauses left to right, each `who` in turn, `X` and
/// the copy forms (`g=u`) looking at the mode as changed so far.
fn apply_symbolic(spec: &str, current: u32, is_dir: bool) -> Result<u32, ModuleError> {
    let mut mode = current & 0o7777;
    for clause in spec.split(',') {
        // Ansible names the clause it could not read.
        let bad = || ModuleError::Args(format!("{BAD_SYMBOLIC}{clause}"));
        let who_end = clause.find(|c: char| !"ugoa".contains(c)).ok_or_else(bad)?;
        let (who, mut rest) = clause.split_at(who_end);
        let use_umask = who.is_empty();
        // `a` stands alone: `ao=r` is refused, as Ansible refuses it.
        let users: Vec<char> = if who.is_empty() || who == "a" {
            vec!['u', 'g', 'o']
        } else if who.contains('a') {
            return Err(bad());
        } else {
            who.chars().collect()
        };
        if rest.is_empty() {
            return Err(bad());
        }
        while let Some(op) = rest.chars().next() {
            if !"=+-".contains(op) {
                return Err(bad());
            }
            let after = &rest[1..];
            let end = after.find(['=', '+', '-']).unwrap_or(after.len());
            let perms = &after[..end];
            rest = &after[end..];
            if !perms.chars().all(|c| "rwxXstugo".contains(c)) {
                return Err(bad());
            }
            for &user in &users {
                let bits = symbolic_bits(user, perms, mode, is_dir, use_umask);
                mode = match op {
                    '=' => {
                        let mask = match user {
                            'u' => 0o4700,
                            'g' => 0o2070,
                            _ => 0o1007,
                        };
                        (mode & !mask) | bits
                    }
                    '+' => mode | bits,
                    _ => mode & !bits,
                };
            }
        }
    }
    Ok(mode)
}

/// The bits `perms` stand for, for one of `u`, `g`, `o`, given the mode so far.
fn symbolic_bits(user: char, perms: &str, prev: u32, is_dir: bool, use_umask: bool) -> u32 {
    // Shift from the "other" position to this user's position.
    let shift = match user {
        'u' => 6,
        'g' => 3,
        _ => 0,
    };
    let keep = if use_umask { !ASSUMED_UMASK } else { 0o7777 };
    let x_applies = is_dir || prev & 0o111 != 0;
    let mut bits = 0;
    for c in perms.chars() {
        bits |= match c {
            'r' => (0o4 << shift) & keep,
            'w' => (0o2 << shift) & keep,
            'x' => (0o1 << shift) & keep,
            'X' if x_applies => 0o1 << shift,
            'X' => 0,
            's' => match user {
                'u' => 0o4000,
                'g' => 0o2000,
                _ => 0,
            },
            't' if user == 'o' => 0o1000,
            't' => 0,
            'u' => ((prev >> 6) & 0o7) << shift,
            'g' => ((prev >> 3) & 0o7) << shift,
            _ => (prev & 0o7) << shift,
        };
    }
    bits
}

/// Format mode bits for `chmod`: five digits, so that `chmod` also clears
/// the set-id bits of directories (GNU keeps them for four digits).
pub fn chmod_bits(bits: u32) -> String {
    format!("0{bits:04o}")
}

/// What `stat -c` prints for each read (see `parse_head`).
pub(crate) const STAT_FORMAT: &str = "%F|%a|%U|%G|%s|%u|%g|%h|%i|%d|%X|%Y|%Z|%x|%y|%z";

/// The shell functions behind every read. `_dr` reads; arguments: path, `P` (do not
/// follow a final link) or `L` (follow it), checksum 0/1, content 0/1, print
/// the expanded path 0/1, and optionally the literal path a resolved path
/// came from. After a read that went through a link (a followed final link,
/// or a resolved path that is not its literal one) it prints `@@linked`
/// ([`super::reads::LINKED_MARK`]); after a path that could not be resolved
/// for a missing directory on the way, and no link, `@@unresolved`
/// ([`super::reads::UNRESOLVED_MARK`]). Both settle the read's scope. Output
/// lines all start with `@@`. It starts as few
/// processes as it can (one `stat`, one `sha1sum`): on a Raspberry Pi each
/// costs about a millisecond, and trees have many files. In a read-ahead
/// batch, `_drq` (see `fs_deferred`) takes the read instead and leaves it
/// for one `stat` of every file at the end of the batch. `_drl` prints what
/// `readlink -f` would, starting it only where a link, a missing parent or
/// a `.`/`..` makes that needed (`_drlk`: a link on the way, or a path
/// too odd to tell); `_drn` says whether a directory has any
/// entry (`ls -A`), without starting a process.
const READ_FN: &str = r#"_dr() {
if [ -n "${__drover_q-}" ] && _drq "$@"; then return; fi
if [ -e "$1" ] || { [ "$2" = P ] && [ -L "$1" ]; }; then
printf '@@ '
if [ "$2" = L ]; then stat -L -c '%F|%a|%U|%G|%s|%u|%g|%h|%i|%d|%X|%Y|%Z|%x|%y|%z' -- "$1" 2>&1; else stat -c '%F|%a|%U|%G|%s|%u|%g|%h|%i|%d|%X|%Y|%Z|%x|%y|%z' -- "$1" 2>&1; fi
if [ "$2" = P ] && [ -L "$1" ]; then printf '@@lnk '; readlink -- "$1"; fi
if [ "$3" = 1 ] && [ -f "$1" ] && [ -r "$1" ]; then printf '@@sum '; sha1sum < "$1"; fi
if [ "$4" = 1 ] && [ -f "$1" ] && [ -r "$1" ]; then printf '@@data '; base64 -w0 < "$1"; echo; fi
else echo '@@ missing'; fi
if [ "$5" = 1 ]; then printf '@@path %s\n' "$1"; fi
if [ -n "${6-}" ] && [ "$1" != "$6" ]; then
if [ -z "$1" ] && ! _drlk "$6"; then echo '@@unresolved'; else echo '@@linked'; fi
elif [ "$2" = L ] && [ -L "$1" ]; then echo '@@linked'; fi
}
_drlk() {
case $1 in /*) ;; *) return 0 ;; esac
case $1 in */./*|*/../*|*/.|*/..|*//*) return 0 ;; esac
__p=$1
while [ -n "$__p" ]; do
if [ -L "$__p" ]; then return 0; fi
__p=${__p%/*}
done
return 1
}
_drl() {
case $1 in */) readlink -f -- "$1"; return ;; esac
if _drlk "$1"; then readlink -f -- "$1"; return; fi
__p=${1%/*}
if [ -d "${__p:-/}" ]; then printf '%s\n' "$1"; else readlink -f -- "$1"; fi
}
_drn() {
for __f in "$1"/* "$1"/.[!.]* "$1"/..?*; do
if [ -e "$__f" ] || [ -L "$__f" ]; then return 0; fi
done
return 1
}
"#;

/// Several reads (and probes) done in one exec.
#[derive(Debug, Clone, Default)]
pub struct ReadBatch {
    script: String,
    paths: Vec<String>,
    /// The paths its answer depends on (see [`ReadBatch::declare`]).
    scope_paths: Vec<ScopePath>,
    /// Does any read follow a final link or resolve a path? Then its scope
    /// is settled by its answer ([`Scope::Unlinked`]).
    follows: bool,
    /// Does any read use a path computed on the host (other than a
    /// resolved literal path), or run a snippet whose reads are not
    /// declared? Then its scope is the whole host.
    wide: bool,
}

/// What a [`ReadBatch`] found.
#[derive(Debug, Clone, Default)]
pub struct ReadOutput {
    /// One state per `path`/`expr` call, in call order.
    pub states: Vec<FileState>,
    /// Lines that `shell` snippets printed with the `@@x ` prefix (prefix removed).
    pub extra: Vec<String>,
}

impl ReadBatch {
    /// An empty batch.
    pub fn new() -> ReadBatch {
        ReadBatch::default()
    }

    /// Read a literal path; `follow` reads what a final symlink points to.
    /// Returns the index of its state in [`ReadOutput::states`].
    pub fn path(&mut self, path: &str, read: Read, follow: bool) -> usize {
        self.scope_paths.push(path.into());
        self.follows |= follow;
        self.add(
            &shell_quote(path),
            path.to_string(),
            read,
            follow,
            false,
            "",
        )
    }

    /// [`ReadBatch::path`] for a caller that uses only what kind of thing
    /// is there (a directory a file goes into): entries made inside it do
    /// not make the read stale.
    pub fn path_kind(&mut self, path: &str, follow: bool) -> usize {
        self.scope_paths.push(ScopePath {
            path: path.to_string(),
            kind_only: true,
        });
        self.follows |= follow;
        self.add(
            &shell_quote(path),
            path.to_string(),
            Read::default(),
            follow,
            false,
            "",
        )
    }

    /// Make the batch's answer depend on what kind of thing `path` is,
    /// without reading it: for a snippet whose answer changes when a
    /// directory on the way becomes a file (ENOTDIR where ENOENT was).
    pub fn scope_kind(&mut self, path: &str) -> &mut ReadBatch {
        self.scope_paths.push(ScopePath {
            path: path.to_string(),
            kind_only: true,
        });
        self
    }

    /// Read what `path` resolves to (`readlink -f`, through every link):
    /// [`ReadBatch::expr`] of [`resolved_word`], but scoped to `path` once
    /// the answer shows no link on the way.
    pub fn resolved(&mut self, path: &str, read: Read, follow: bool) -> usize {
        self.scope_paths.push(path.into());
        self.follows = true;
        let literal = format!(" {}", shell_quote(path));
        self.add(
            &resolved_word(path),
            String::new(),
            read,
            follow,
            true,
            &literal,
        )
    }

    /// Read a path the host computes: `word` is a shell word such as
    /// `"$h/.ssh"` or `"$(readlink -f -- /etc/x)"`. The state's `path` is
    /// what the word expanded to.
    pub fn expr(&mut self, word: &str, read: Read, follow: bool) -> usize {
        self.wide = true;
        self.add(word, String::new(), read, follow, true, "")
    }

    /// Run a shell snippet at this point (it may set variables that later
    /// `expr` reads use). Lines it prints starting with `@@x ` come back in
    /// [`ReadOutput::extra`]; other output is ignored, so keep it quiet.
    pub fn shell(&mut self, snippet: &str) -> &mut ReadBatch {
        self.wide = true;
        self.script.push_str(snippet);
        self.script.push('\n');
        self
    }

    /// [`ReadBatch::shell`] for a snippet that reads nothing but `paths`
    /// and what is inside them (a directory's entries, the files under
    /// it), as it finds them without following a final link, or through
    /// the link a [`ReadBatch::resolved`] read of the same path reports.
    pub fn shell_within(&mut self, snippet: &str, paths: &[&str]) -> &mut ReadBatch {
        self.scope_paths
            .extend(paths.iter().map(|p| ScopePath::from(*p)));
        self.script.push_str(snippet);
        self.script.push('\n');
        self
    }

    fn add(
        &mut self,
        word: &str,
        path: String,
        read: Read,
        follow: bool,
        print: bool,
        literal: &str,
    ) -> usize {
        self.script.push_str(&format!(
            "_dr {word} {} {} {} {}{literal}\n",
            if follow { 'L' } else { 'P' },
            u8::from(read.checksum),
            u8::from(read.content),
            u8::from(print)
        ));
        self.paths.push(path);
        self.paths.len() - 1
    }

    /// The whole script (for tests and debugging).
    pub fn script(&self) -> String {
        format!("{READ_FN}{}:", self.script)
    }

    /// Parse what the script printed (for tests that run it themselves).
    #[cfg(test)]
    pub(super) fn parse(&self, stdout: &str) -> Result<ReadOutput, super::OutputError> {
        parse_output(&self.paths, stdout)
    }

    /// The batch as a declared read, scoped to its literal paths when it
    /// neither follows links nor computes paths on the host; when it
    /// follows links, to its paths once its answer shows it followed none.
    pub fn declare(&self) -> ReadCmd {
        ReadCmd {
            script: self.script(),
            scope: if self.wide {
                Scope::Host
            } else if self.follows {
                Scope::Unlinked(self.scope_paths.clone())
            } else {
                Scope::Paths(self.scope_paths.clone())
            },
        }
    }

    /// Add the batch to `set`; returns its index there.
    pub fn declare_in(&self, set: &mut ReadSet) -> usize {
        set.reads.push(self.declare());
        set.reads.len() - 1
    }

    /// Run the batch in one exec.
    pub async fn run(&self, remote: &Remote) -> Result<ReadOutput, ModuleError> {
        let out = exec_script(remote, &self.script(), &[]).await?;
        self.parse_exec(&out)
    }

    /// What the batch found, from the output of its script (run on its own
    /// or declared and observed).
    pub fn parse_exec(&self, out: &ExecOutput) -> Result<ReadOutput, ModuleError> {
        let what = || {
            self.paths
                .iter()
                .filter(|p| !p.is_empty())
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        };
        if out.status != 0 {
            return Err(ModuleError::failed(format!(
                "reading {} failed: {}",
                what(),
                out.stderr_str().trim()
            )));
        }
        parse_output(&self.paths, &out.stdout_str()).map_err(|e| {
            ModuleError::failed(format!(
                "reading {} failed: {e}; {}",
                what(),
                out.stderr_str().trim()
            ))
        })
    }
}

/// A shell word for what `path` resolves to (`readlink -f`), for
/// [`ReadBatch::expr`] and the batch's own snippets.
pub fn resolved_word(path: &str) -> String {
    format!("\"$(_drl {})\"", shell_quote(path))
}

/// A shell condition: `path` is a directory with entries, found without
/// starting a process, for [`ReadBatch::shell`] snippets.
pub fn nonempty_dir_test(path: &str) -> String {
    let q = shell_quote(path);
    format!("[ -d {q} ] && [ ! -L {q} ] && _drn {q}")
}

/// Read the state of `paths` in one exec (final symlinks are not followed).
pub async fn read_files(
    remote: &Remote,
    paths: &[&str],
    read: Read,
) -> Result<Vec<FileState>, ModuleError> {
    let mut batch = ReadBatch::new();
    for p in paths {
        batch.path(p, read, false);
    }
    Ok(batch.run(remote).await?.states)
}

fn parse_output(paths: &[String], text: &str) -> Result<ReadOutput, super::OutputError> {
    let mut out = ReadOutput::default();
    for line in text.lines() {
        if let Some(x) = line.strip_prefix("@@x ") {
            out.extra.push(x.to_string());
        } else if let Some(sum) = line.strip_prefix("@@sum ") {
            if let Some(s) = out.states.last_mut() {
                // `sha1sum < file` prints "<hex>  -".
                let sum = sum.split_whitespace().next().unwrap_or_default();
                s.checksum = (sum.len() == 40).then(|| sum.to_string());
            }
        } else if let Some(data) = line.strip_prefix("@@data ") {
            if let Some(s) = out.states.last_mut() {
                s.content = Some(
                    base64::engine::general_purpose::STANDARD
                        .decode(data.trim())
                        .map_err(|e| {
                            super::OutputError::Malformed(format!("bad file data: {e}"))
                        })?,
                );
            }
        } else if let Some(target) = line.strip_prefix("@@lnk ") {
            if let Some(s) = out.states.last_mut() {
                s.link_target = Some(target.to_string());
            }
        } else if let Some(path) = line.strip_prefix("@@path ") {
            if let Some(s) = out.states.last_mut() {
                s.path = path.to_string();
            }
        } else if let Some(head) = line.strip_prefix("@@ ") {
            let path = paths
                .get(out.states.len())
                .ok_or_else(|| super::OutputError::Malformed("unexpected output".into()))?
                .clone();
            out.states.push(parse_head(path, head)?);
        }
    }
    if out.states.len() != paths.len() {
        return Err(super::OutputError::Incomplete);
    }
    Ok(out)
}

fn parse_head(path: String, head: &str) -> Result<FileState, super::OutputError> {
    let mut state = FileState::missing(path);
    if head == "missing" {
        return Ok(state);
    }
    let f: Vec<&str> = head.split('|').collect();
    if f.len() != 16 {
        return Err(super::OutputError::Malformed(format!(
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
    state.type_name = f[0].to_string();
    state.mode = u32::from_str_radix(f[1], 8).unwrap_or(0);
    state.owner = f[2].to_string();
    state.group = f[3].to_string();
    state.size = f[4].parse().unwrap_or(0);
    state.uid = f[5].parse().unwrap_or(0);
    state.gid = f[6].parse().unwrap_or(0);
    state.nlink = f[7].parse().unwrap_or(0);
    state.inode = f[8].parse().unwrap_or(0);
    state.dev = f[9].parse().unwrap_or(0);
    state.atime = timestamp(f[10], f[13]);
    state.mtime = timestamp(f[11], f[14]);
    state.ctime = timestamp(f[12], f[15]);
    Ok(state)
}

/// Seconds since the epoch from `%Y` plus the fraction `%y` shows
/// (`2024-05-01 10:00:00.123456789 +0000`); `%.9Y` is not in older coreutils.
fn timestamp(secs: &str, human: &str) -> f64 {
    let whole: f64 = secs.parse().unwrap_or(0.0);
    let frac = human
        .split_whitespace()
        .nth(1)
        .and_then(|t| t.split_once('.'))
        .and_then(|(_, f)| format!("0.{f}").parse::<f64>().ok())
        .unwrap_or(0.0);
    if whole < 0.0 {
        whole - frac
    } else {
        whole + frac
    }
}

/// `chown`/`chgrp` then `chmod` of a shell word (ownership first: `chown`
/// clears set-id bits, which `chmod` then sets). `mode` is already a chmod
/// argument. Each command ends with `&&`-chaining; the result ends in `true`.
fn attr_commands(
    word: &str,
    owner: Option<&str>,
    group: Option<&str>,
    mode: Option<&str>,
) -> String {
    let mut s = String::new();
    match (owner, group) {
        (Some(o), Some(g)) => s.push_str(&format!(
            "chown -- {}:{} {word} && ",
            shell_quote(o),
            shell_quote(g)
        )),
        (Some(o), None) => s.push_str(&format!("chown -- {} {word} && ", shell_quote(o))),
        (None, Some(g)) => s.push_str(&format!("chgrp -- {} {word} && ", shell_quote(g))),
        (None, None) => {}
    }
    if let Some(m) = mode {
        s.push_str(&format!("chmod -- {m} {word} && "));
    }
    s.push_str("true");
    s
}

/// What it takes to give a path the wanted mode, owner and group.
#[derive(Debug, Clone, PartialEq)]
pub struct AttrsFix {
    /// `(name, before, after)` of each attribute that differs (`mode` as
    /// `"0644"`), for diffs and results.
    pub changes: Vec<(&'static str, String, String)>,
    /// The wanted attributes, a symbolic mode resolved against the path's.
    resolved: Attrs,
}

impl AttrsFix {
    /// Shell commands that give `target` (the path, or a temp file standing
    /// in for it) the wanted attributes; they end in `true`.
    pub fn script(&self, target: &str) -> String {
        let mode = match &self.resolved.mode {
            Some(Mode::Bits(b)) => Some(chmod_bits(*b)),
            _ => None,
        };
        attr_commands(
            &shell_quote(target),
            self.resolved.owner.as_deref(),
            self.resolved.group.as_deref(),
            mode.as_deref(),
        )
    }
}

/// The one way modules make a path's attributes right: compare what was
/// read (`state`) with `attrs`; `None` when nothing differs.
pub fn ensure_attrs(state: &FileState, attrs: &Attrs) -> Result<Option<AttrsFix>, ModuleError> {
    let changes = attrs_changes(state, attrs)?;
    if changes.is_empty() {
        return Ok(None);
    }
    Ok(Some(AttrsFix {
        changes,
        resolved: attrs.resolved(state.mode, state.kind == FileKind::Directory)?,
    }))
}

/// Does a wanted owner or group (name or numeric id) match what is there?
fn id_matches(wanted: &str, name: &str, id: u32) -> bool {
    if !wanted.is_empty() && wanted.bytes().all(|b| b.is_ascii_digit()) {
        wanted.parse::<u32>().ok() == Some(id)
    } else {
        wanted == name
    }
}

/// The attributes that differ, as `(name, before, after)` (`mode` as
/// `"0644"`), for diffs and results.
fn attrs_changes(
    state: &FileState,
    attrs: &Attrs,
) -> Result<Vec<(&'static str, String, String)>, ModuleError> {
    let mut changes = Vec::new();
    if let Some(o) = &attrs.owner {
        if !id_matches(o, &state.owner, state.uid) {
            changes.push(("owner", state.owner.clone(), o.clone()));
        }
    }
    if let Some(g) = &attrs.group {
        if !id_matches(g, &state.group, state.gid) {
            changes.push(("group", state.group.clone(), g.clone()));
        }
    }
    if let Some(mode) = &attrs.mode {
        let want = mode.resolve(state.mode, state.kind == FileKind::Directory)?;
        if want != state.mode {
            changes.push(("mode", state.mode_string(), format!("{want:04o}")));
        }
    }
    Ok(changes)
}

/// Shell commands creating directory `path` and its missing parents (like
/// `mkdir -p`), giving every directory it creates the attributes `attrs`
/// (as Ansible's `file: state=directory` does). A symbolic mode applies to
/// a new directory's 0755.
pub fn mkdirs_script(path: &str, attrs: &Attrs) -> Result<String, ModuleError> {
    let attrs = attrs.resolved(0o755 & !ASSUMED_UMASK, true)?;
    let mode = match attrs.mode {
        Some(Mode::Bits(b)) => Some(chmod_bits(b)),
        _ => None,
    };
    let mut script = String::new();
    let mut prefix = if path.starts_with('/') {
        String::from("/")
    } else {
        String::new()
    };
    for part in path.split('/').filter(|p| !p.is_empty() && *p != ".") {
        if !prefix.is_empty() && !prefix.ends_with('/') {
            prefix.push('/');
        }
        prefix.push_str(part);
        let q = shell_quote(&prefix);
        script.push_str(&format!(
            "if [ ! -d {q} ]; then mkdir -- {q} && {}; fi\n",
            attr_commands(
                &q,
                attrs.owner.as_deref(),
                attrs.group.as_deref(),
                mode.as_deref()
            )
        ));
    }
    Ok(script)
}

/// Where the bytes of a file to write come from.
#[derive(Debug, Clone, Copy)]
pub enum WriteSource<'a> {
    /// These bytes (sent on stdin).
    Bytes(&'a [u8]),
    /// A local file of `len` bytes with SHA-1 `sha1` (hex), streamed from
    /// disk on stdin: large files never sit in memory whole.
    LocalFile {
        /// The local file.
        path: &'a std::path::Path,
        /// Its size when planned.
        len: u64,
        /// Its SHA-1 when planned; the bytes sent are checked against it.
        sha1: &'a str,
    },
    /// A file already on the host (`copy: remote_src=yes`).
    RemoteFile(&'a str),
}

/// One file for [`write_files`].
#[derive(Debug, Clone)]
pub struct FileWrite<'a> {
    /// Destination path.
    pub path: &'a str,
    /// The new content.
    pub source: WriteSource<'a>,
    /// Attributes to set; an existing file otherwise keeps its mode and
    /// owner, a new one gets 0644. A symbolic mode is applied by `chmod` to
    /// what the file has.
    pub attrs: Attrs,
    /// Copy the old file aside first (`path.PID.YYYY-MM-DD@HH:MM:SS~`).
    pub backup: bool,
    /// Command validating the new file before it replaces the old one; `%s`
    /// is the temp file's path (`visudo -cf %s`).
    pub validate: Option<&'a str>,
}

/// Write several files in one exec, each atomically, after running the
/// shell snippet `prepare` (e.g. [`mkdirs_script`]; `set -e` is in force).
/// Returns the backup path of each file, when one was made.
pub async fn write_files(
    remote: &Remote,
    prepare: &str,
    files: &[FileWrite<'_>],
) -> Result<Vec<Option<String>>, ModuleError> {
    for v in files.iter().filter_map(|f| f.validate) {
        super::textedit::validate_command(v)?;
    }
    let header = "set -e\numask 077\nt=\ntrap 'if [ -n \"$t\" ]; then rm -f \"$t\"; fi' EXIT\n";
    let fragments: Vec<String> = files
        .iter()
        .enumerate()
        .map(|(i, f)| write_fragment(i, f))
        .collect();
    // Usually one exec. A script too long for one command line is split
    // between files (each file stays atomic).
    let mut chunks: Vec<(String, Vec<StdinPart<'_>>, Vec<usize>)> = Vec::new();
    let mut script = format!("{header}{prepare}\n");
    let mut stdin = Vec::new();
    let mut members = Vec::new();
    for (i, fragment) in fragments.iter().enumerate() {
        // Split before this file when the chunk so far (directories to
        // create, earlier files) would make the script too long.
        if script.len() > header.len() + 1 && script.len() + fragment.len() > MAX_COMMAND {
            chunks.push((
                std::mem::take(&mut script),
                std::mem::take(&mut stdin),
                std::mem::take(&mut members),
            ));
            script.push_str(header);
        }
        script.push_str(fragment);
        match files[i].source {
            WriteSource::Bytes(data) => stdin.push(StdinPart::Bytes(data)),
            WriteSource::LocalFile { path, len, sha1 } => stdin.push(StdinPart::File {
                path,
                len,
                sha1: Some(sha1),
            }),
            WriteSource::RemoteFile(_) => {}
        }
        if !matches!(files[i].source, WriteSource::RemoteFile(_)) {
            stdin.push(StdinPart::Bytes(SENTINEL_LINE));
        }
        members.push(i);
    }
    chunks.push((script, stdin, members));
    let mut backups = vec![None; files.len()];
    for (script, stdin, members) in chunks {
        let out = exec_script(remote, &script, &stdin).await?;
        if out.status != 0 {
            let names: Vec<&str> = members.iter().map(|i| files[*i].path).collect();
            let what = if names.is_empty() {
                "preparing directories".to_string()
            } else {
                format!("writing {}", names.join(", "))
            };
            return Err(ModuleError::failed(format!(
                "{what} failed: {}",
                out.stderr_str().trim()
            )));
        }
        for line in out.stdout_str().lines() {
            if let Some(path) = line.strip_prefix("@@stale ") {
                tracing::info!(target: "drover::cleanup", "removed {path}, left by an earlier run");
            }
            if let Some(rest) = line.strip_prefix("@@backup ") {
                if let Some((i, path)) = rest.split_once(' ') {
                    if let Some(slot) = i.parse::<usize>().ok().and_then(|i| backups.get_mut(i)) {
                        *slot = Some(path.to_string());
                    }
                }
            }
        }
    }
    Ok(backups)
}

/// The script writing file number `i` (its bytes, if any, come on stdin).
fn write_fragment(i: usize, f: &FileWrite<'_>) -> String {
    let q = operand(f.path);
    // The temp file's name starts with its directory's: `./` keeps it from
    // reading as an option to the commands given "$t".
    let dir = operand(&parent_dir(f.path));
    let mut script = temp_file_script(&dir);
    let len = match f.source {
        WriteSource::Bytes(bytes) => Some(bytes.len() as u64),
        WriteSource::LocalFile { len, .. } => Some(len),
        WriteSource::RemoteFile(_) => None,
    };
    match (f.source, len) {
        (_, Some(n)) => {
            // The sentinel after the bytes proves they all arrived; `read`
            // is a builtin and reads no further than its line.
            script.push_str(&format!(
                "head -c {n} > \"$t\"\nIFS= read -r s && [ \"$s\" = {WRITE_SENTINEL} ] || {{ echo 'short input for file {i}' >&2; exit 1; }}\n"
            ));
        }
        (WriteSource::RemoteFile(src), None) => {
            script.push_str(&format!("cat -- {} > \"$t\"\n", shell_quote(src)));
        }
        (_, None) => {}
    }
    let keep_mode = !matches!(f.attrs.mode, Some(Mode::Bits(_)));
    let keep_owner = f.attrs.owner.is_none() || f.attrs.group.is_none();
    let mut existing = String::new();
    if keep_mode {
        existing.push_str(&format!("chmod --reference={q} \"$t\"; "));
    }
    if keep_owner {
        existing.push_str(&format!(
            "chown --reference={q} \"$t\" 2>/dev/null || true; "
        ));
    }
    if !existing.is_empty() {
        script.push_str(&format!("if [ -e {q} ]; then {existing}"));
        script.push_str(if keep_mode {
            "else chmod 0644 \"$t\"; fi\n"
        } else {
            "fi\n"
        });
    }
    // Ansible's atomic_move copies the old file's extended attributes, POSIX
    // ACLs among them, to the new one; where the acl tools are installed,
    // so does drover. Explicit attributes are applied after.
    script.push_str(&format!(
        "if [ -e {q} ] && command -v getfacl >/dev/null 2>&1; then getfacl -p -- {q} 2>/dev/null | setfacl --set-file=- \"$t\" 2>/dev/null || true; fi\n"
    ));
    if f.backup {
        script.push_str(&format!(
            "if [ -f {q} ]; then b={q}.$$.$(date +%Y-%m-%d@%H:%M:%S)~; cp -p -- {q} \"$b\"; printf '@@backup {i} %s\\n' \"$b\"; fi\n"
        ));
    }
    if !f.attrs.is_empty() {
        let mode = match &f.attrs.mode {
            Some(Mode::Bits(b)) => Some(chmod_bits(*b)),
            // GNU chmod reads a clause without `who` as Ansible does
            // (umask applied), so a symbolic mode passes through.
            Some(Mode::Symbolic(s)) => Some(shell_quote(s)),
            None => None,
        };
        script.push_str(&attr_commands(
            "\"$t\"",
            f.attrs.owner.as_deref(),
            f.attrs.group.as_deref(),
            mode.as_deref(),
        ));
        script.push('\n');
    }
    if let Some(cmd) = f.validate {
        // Words run without a shell, as Ansible runs them; checked by
        // write_files, so the fallback is never used.
        let cmd = super::textedit::validate_command(cmd).unwrap_or_else(|_| "false".into());
        script.push_str(&format!(
            "if ! ( {cmd} ) >&2; then echo 'failed to validate {}' >&2; exit 3; fi\n",
            f.path.replace('\'', "")
        ));
    }
    // Renaming over a device, FIFO, socket or directory would replace it
    // (as root, `/dev/null` would become a regular file). Checked once this
    // file's bytes are read, so that nothing is left unread on stdin; the
    // temp file goes with the trap. A symlink is replaced, as before.
    script.push_str(&not_regular_guard(f.path, 4));
    script.push_str(&format!("mv -f -- \"$t\" {q}\nt=\n"));
    script
}

/// The start of a write into `dir` (quoted): remove what earlier writes
/// left there (a killed run): temp files whose writer is gone (their name
/// carries its pid) or untouched for an hour, each named on a line
/// `@@stale PATH`; then make this write's temp file `$t`. Only a write
/// pays for this, and a glob finds nothing when nothing was left.
fn temp_file_script(dir: &str) -> String {
    format!(
        "for o in {dir}/.drover.*; do\n\
         [ -f \"$o\" ] || continue\n\
         p=${{o##*/.drover.}}; p=${{p%%.*}}\n\
         case $p in *[!0-9]*) p=;; esac\n\
         if [ -n \"$p\" ] && [ ! -d /proc/$p ] || [ -n \"$(find \"$o\" -maxdepth 0 -mmin +60 2>/dev/null)\" ]; then\n\
         if rm -f -- \"$o\" 2>/dev/null; then printf '@@stale %s\\n' \"$o\"; fi\n\
         fi\n\
         done\n\
         t=$(mktemp -- {dir}/.drover.$$.XXXXXXXX)\n"
    )
}

/// `path` quoted as a command's operand: a relative path starting with `-`
/// gets `./` before it, so that no command (nor `find`, which has no `--`)
/// reads it as an option.
pub fn operand(path: &str) -> String {
    if path.starts_with('-') {
        shell_quote(&format!("./{path}"))
    } else {
        shell_quote(path)
    }
}

/// A shell line exiting with `code` and a message naming `path` when `path`
/// exists and is neither a regular file nor a symlink: what a rename onto it
/// would destroy (a device, FIFO, socket or directory).
pub fn not_regular_guard(path: &str, code: u8) -> String {
    let q = operand(path);
    format!(
        "if [ -e {q} ] && [ ! -L {q} ] && [ ! -f {q} ]; then printf '%s is not a regular file (%s): refusing to replace it\\n' {q} \"$(stat -c %F -- {q})\" >&2; exit {code}; fi\n"
    )
}

/// Follows each file's bytes on stdin.
const WRITE_SENTINEL: &str = "@@end";
/// The sentinel's line, as sent.
const SENTINEL_LINE: &[u8] = b"@@end\n";

/// Longest script passed as a command line: Linux limits one argument to
/// 128 KiB, and the script is one argument of `sh -c` (or of sudo's).
const MAX_COMMAND: usize = 96 * 1024;

/// Run a script; one too long for a command line is fed to `sh -s` on stdin
/// (possible only when the script itself needs no stdin).
/// Run a declared read on its own (see `reads::Direct`).
pub async fn exec_read(remote: &Remote, script: &str) -> Result<ExecOutput, ModuleError> {
    exec_script(remote, script, &[]).await
}

async fn exec_script(
    remote: &Remote,
    script: &str,
    stdin: &[StdinPart<'_>],
) -> Result<crate::transport::ExecOutput, ModuleError> {
    if script.len() <= MAX_COMMAND {
        return Ok(remote.exec_parts(script, stdin).await?);
    }
    if stdin.is_empty() {
        return Ok(remote.exec("sh -s", script.as_bytes()).await?);
    }
    Err(ModuleError::failed(format!(
        "internal error: a script of {} bytes that also reads stdin",
        script.len()
    )))
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
    let file = FileWrite {
        path,
        source: WriteSource::Bytes(content),
        attrs: attrs.clone(),
        backup,
        validate: None,
    };
    Ok(write_files(remote, "", &[file]).await?.pop().flatten())
}

/// The directory part of a path (`/` for `/x`, `.` for a bare name).
pub fn parent_dir(path: &str) -> String {
    let p = path.trim_end_matches('/');
    match p.rfind('/') {
        Some(0) => "/".into(),
        Some(i) => p[..i].to_string(),
        None if path.starts_with('/') => "/".into(),
        None => ".".into(),
    }
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

/// Largest content shown in a diff (Ansible's default `max_diff_size`).
pub const MAX_DIFF_SIZE: usize = 104_448;

/// A file's content as diff text: the text itself, or a one-line note for
/// binary or very large content.
pub fn content_for_diff(data: &[u8]) -> String {
    if data.len() > MAX_DIFF_SIZE {
        return format!(
            "(content not shown: {} bytes, more than {MAX_DIFF_SIZE})\n",
            data.len()
        );
    }
    match std::str::from_utf8(data) {
        Ok(text) if !text.contains('\0') => text.to_string(),
        _ => format!(
            "(binary content: {} bytes, sha1 {})\n",
            data.len(),
            sha1_hex(data)
        ),
    }
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
        assert!(Mode::parse(&Value::from("u")).is_err());
        assert!(Mode::parse(&Value::from("u=rq")).is_err());
    }

    #[test]
    fn symbolic_like_ansible() {
        let r = |spec: &str, cur: u32, dir: bool| {
            Mode::Symbolic(spec.into())
                .resolve(cur, dir)
                .expect("valid")
        };
        // X: directories, or files with some execute bit.
        assert_eq!(r("u=rwX,g=rX,o=rX", 0o600, false), 0o644);
        assert_eq!(r("u=rwX,g=rX,o=rX", 0o700, false), 0o755);
        assert_eq!(r("u=rwX,g=rX,o=rX", 0o700, true), 0o755);
        // '=' clears the set-id bit of its class.
        assert_eq!(r("u=rw", 0o4755, false), 0o655);
        // Several operators in one clause; copy forms.
        assert_eq!(r("u+r-w", 0o200, false), 0o400);
        assert_eq!(r("g=u", 0o750, false), 0o770);
        assert_eq!(r("o+t,g+s", 0o755, true), 0o3755);
        // No who: the umask (022) applies.
        assert_eq!(r("+w", 0o444, false), 0o644);
        assert_eq!(r("a+w", 0o444, false), 0o666);
    }

    #[test]
    fn mkdirs_applies_attrs_to_new_dirs() {
        let s = mkdirs_script(
            "/a/b c",
            &Attrs {
                mode: Some(Mode::Bits(0o750)),
                owner: Some("nobody".into()),
                group: None,
            },
        )
        .expect("script");
        assert_eq!(
            s,
            "if [ ! -d /a ]; then mkdir -- /a && chown -- nobody /a && chmod -- 00750 /a && true; fi\n\
             if [ ! -d '/a/b c' ]; then mkdir -- '/a/b c' && chown -- nobody '/a/b c' && chmod -- 00750 '/a/b c' && true; fi\n"
        );
    }

    #[test]
    fn numeric_owner_matches_uid() {
        let mut st = FileState::missing("/x".into());
        st.kind = FileKind::File;
        st.owner = "root".into();
        st.group = "root".into();
        st.mode = 0o644;
        let attrs = Attrs {
            mode: Some(Mode::Bits(0o644)),
            owner: Some("0".into()),
            group: Some("root".into()),
        };
        assert_eq!(ensure_attrs(&st, &attrs).expect("match"), None);
        let other = Attrs {
            owner: Some("65534".into()),
            ..attrs
        };
        assert_eq!(
            attrs_changes(&st, &other).expect("changes"),
            vec![("owner", "root".to_string(), "65534".to_string())]
        );
    }

    fn remote() -> Remote {
        Remote::new(Arc::new(LocalTransport), None)
    }

    #[tokio::test]
    async fn write_then_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f.txt");
        let p = path.to_str().expect("utf8");
        let remote = remote();
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
        assert!(states[0].mtime > 1_000_000_000.0);
        assert_eq!(states[1].kind, FileKind::Missing);
        // No temp file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn resolving_and_emptiness_match_readlink_and_ls() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let d = tmp.path().to_str().expect("utf8").to_string();
        for dir in ["sub", "empty", "dots", "dotdot", "sub/deeper"] {
            std::fs::create_dir(format!("{d}/{dir}")).expect("mkdir");
        }
        for file in ["file", "sub/x", "dots/.hidden", "dotdot/..x"] {
            std::fs::write(format!("{d}/{file}"), "x").expect("write");
        }
        std::os::unix::fs::symlink(format!("{d}/sub"), format!("{d}/link")).expect("symlink");
        std::os::unix::fs::symlink("nowhere", format!("{d}/dangling")).expect("symlink");
        let sh = |script: String| {
            let out = std::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(format!("{READ_FN}{script}; echo \"rc=$?\""))
                .output()
                .expect("sh");
            String::from_utf8_lossy(&out.stdout).to_string()
        };
        for rel in [
            "file",
            "sub",
            "sub/",
            "sub/deeper",
            "missing",
            "missing/child",
            "link",
            "link/x",
            "link/deeper/../x",
            "dangling",
            "./file",
            "sub/../file",
            "sub//x",
            ".",
        ] {
            let path = format!("{d}/{rel}");
            let q = shell_quote(&path);
            assert_eq!(
                sh(format!("_drl {q}")),
                sh(format!("readlink -f -- {q}")),
                "{rel}"
            );
        }
        for path in ["/", "relative/path", "/nonexistent-drover/x"] {
            let q = shell_quote(path);
            assert_eq!(
                sh(format!("_drl {q}")),
                sh(format!("readlink -f -- {q}")),
                "{path}"
            );
        }
        for rel in ["sub", "empty", "dots", "dotdot", "file", "missing", "link"] {
            let path = format!("{d}/{rel}");
            let q = shell_quote(&path);
            assert_eq!(
                sh(format!("if {}; then echo yes; fi", nonempty_dir_test(&path))),
                sh(format!(
                    "if [ -d {q} ] && [ ! -L {q} ] && [ -n \"$(ls -A -- {q} 2>/dev/null)\" ]; then echo yes; fi"
                )),
                "{rel}"
            );
        }
    }

    #[tokio::test]
    async fn rewriting_a_file_keeps_its_acl() {
        let has_tools = ["getfacl", "setfacl"].iter().all(|t| {
            std::process::Command::new("sh")
                .args(["-c", &format!("command -v {t}")])
                .output()
                .is_ok_and(|o| o.status.success())
        });
        if !has_tools {
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f.txt");
        let p = path.to_str().expect("utf8");
        std::fs::write(&path, "old\n").expect("write");
        let set = std::process::Command::new("setfacl")
            .args(["-m", "u:nobody:rwx", p])
            .status()
            .expect("setfacl");
        if !set.success() {
            // A file system without ACLs.
            return;
        }
        write_file_atomic(&remote(), p, b"new\n", &Attrs::default(), false)
            .await
            .expect("write");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "new\n");
        let acl = std::process::Command::new("getfacl")
            .args(["-p", p])
            .output()
            .expect("getfacl");
        let acl = String::from_utf8_lossy(&acl.stdout);
        assert!(acl.contains("user:nobody:rwx"), "{acl}");
    }

    #[tokio::test]
    async fn batch_follows_links_and_expands_words() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("target");
        std::fs::write(&target, "x").expect("write");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        let d = dir.path().to_str().expect("utf8");
        let l = link.to_str().expect("utf8");
        let mut batch = ReadBatch::new();
        let plain = batch.path(l, Read::default(), false);
        let followed = batch.path(l, Read::default(), true);
        batch.shell(&format!("d={}; echo '@@x hello'", shell_quote(d)));
        let computed = batch.expr("\"$d/target\"", Read::default(), false);
        let out = batch.run(&remote()).await.expect("read");
        assert_eq!(out.states[plain].kind, FileKind::Link);
        assert_eq!(out.states[plain].link_target.as_deref(), target.to_str());
        assert_eq!(out.states[followed].kind, FileKind::File);
        assert_eq!(out.states[computed].kind, FileKind::File);
        assert_eq!(out.states[computed].path, target.to_str().expect("utf8"));
        assert_eq!(out.extra, vec!["hello".to_string()]);
    }

    #[tokio::test]
    async fn long_scripts_are_split_or_fed_on_stdin() {
        // Paths near NAME_MAX make scripts longer than one command line may
        // be with few files (each file costs processes, which are slow here).
        let dir = tempfile::tempdir().expect("tempdir");
        let long = "d".repeat(250);
        let base = dir.path().join(&long);
        let base = base.to_str().expect("utf8");
        let remote = remote();
        let names: Vec<String> = (0..100).map(|i| format!("{base}/{long}-{i}")).collect();
        let datas: Vec<Vec<u8>> = (0..100).map(|i| format!("{i}\n").into_bytes()).collect();
        let files: Vec<FileWrite<'_>> = names
            .iter()
            .zip(&datas)
            .map(|(n, d)| FileWrite {
                path: n,
                source: WriteSource::Bytes(d),
                attrs: Attrs::default(),
                backup: false,
                validate: None,
            })
            .collect();
        let fragments: usize = files.iter().map(|f| write_fragment(0, f).len()).sum();
        assert!(fragments > MAX_COMMAND, "the test must need several execs");
        // A long preparation runs on its own, fed on stdin.
        let prepare = format!(
            "# {}\n{}",
            "x".repeat(MAX_COMMAND),
            mkdirs_script(base, &Attrs::default()).expect("mkdirs")
        );
        write_files(&remote, &prepare, &files).await.expect("write");
        assert_eq!(std::fs::read(&names[99]).expect("read"), b"99\n");
        // Missing paths cost no process: many of them make a long read.
        let mut paths: Vec<String> = names.clone();
        paths.extend((0..200).map(|i| format!("{base}/{long}-missing-{i}")));
        let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
        let mut batch = ReadBatch::new();
        for p in &paths {
            batch.path(
                p,
                Read {
                    checksum: true,
                    content: false,
                },
                false,
            );
        }
        assert!(batch.script().len() > MAX_COMMAND);
        let states = batch.run(&remote).await.expect("read").states;
        assert_eq!(states.len(), 300);
        assert_eq!(
            states[7].checksum.as_deref(),
            Some(sha1_hex(b"7\n").as_str())
        );
        assert_eq!(states[299].kind, FileKind::Missing);
    }

    #[tokio::test]
    async fn several_writes_backup_and_validate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("sub/a");
        let b = dir.path().join("b");
        std::fs::write(&b, "old").expect("write");
        let remote = remote();
        let prepare = mkdirs_script(
            dir.path().join("sub").to_str().expect("utf8"),
            &Attrs::default(),
        )
        .expect("mkdirs");
        let files = [
            FileWrite {
                path: a.to_str().expect("utf8"),
                source: WriteSource::Bytes(b"AAA"),
                attrs: Attrs::default(),
                backup: true,
                validate: None,
            },
            FileWrite {
                path: b.to_str().expect("utf8"),
                source: WriteSource::Bytes(b"BBBB"),
                attrs: Attrs {
                    mode: Some(Mode::Symbolic("u=rw,go=".into())),
                    ..Attrs::default()
                },
                backup: true,
                validate: Some("grep -q B %s"),
            },
        ];
        let backups = write_files(&remote, &prepare, &files).await.expect("write");
        assert_eq!(std::fs::read(&a).expect("a"), b"AAA");
        assert_eq!(std::fs::read(&b).expect("b"), b"BBBB");
        assert!(backups[0].is_none());
        let backup = backups[1].clone().expect("backup made");
        assert_eq!(std::fs::read(&backup).expect("backup"), b"old");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&b).expect("meta").permissions().mode();
        assert_eq!(mode & 0o7777, 0o600);

        let bad = [FileWrite {
            path: b.to_str().expect("utf8"),
            source: WriteSource::Bytes(b"no match"),
            attrs: Attrs::default(),
            backup: false,
            validate: Some("grep -q B %s"),
        }];
        let err = write_files(&remote, "", &bad).await.expect_err("invalid");
        assert!(err.to_string().contains("failed to validate"), "{err}");
        assert_eq!(std::fs::read(&b).expect("b"), b"BBBB");
        // Only sub/, b and b's backup: no temp files left.
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 3);
    }
}
