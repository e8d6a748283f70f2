//! `copy`: put content, a local file, a local directory tree, or a file
//! already on the host (`remote_src`) at a destination, with mode and owner.
//!
//! The planning here is shared with `template` ([`plan_copy`] and
//! [`apply_copy`]): one exec reads every destination (checksums, and
//! contents only when a diff is wanted), the comparison happens locally, and
//! one exec creates directories, fixes attributes and writes the files that
//! differ.

use std::path::{Path, PathBuf};

mod remote_tree;

use async_trait::async_trait;
use rayon::prelude::*;
use serde::Deserialize;

use super::args::{bool_ish, opt_bool_ish, opt_mode, yes, FileAttrs};
use super::fs::{
    content_for_diff, ensure_attrs, mkdirs_script, parent_dir, resolved_word, sha1_hex,
    write_files, Attrs, FileKind, FileState, FileWrite, Mode, Read, ReadBatch, ReadOutput,
    WriteSource, MAX_DIFF_SIZE,
};
use super::{
    Decision, Diff, Module, ModuleCtx, ModuleError, Observed, Plan, Protocol, ReadCtx, ReadSet,
    Touched,
};
use crate::transport::shell_quote;
use crate::{Map, Value};

/// Arguments of `copy`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Copy {
    /// Content to write instead of a source file (a mapping or list is
    /// written as JSON, as Ansible does).
    #[serde(default)]
    content: Option<Value>,
    /// Local file or directory (searched in the role's `files/`, then the
    /// playbook's directory), or a path on the host with `remote_src`. A
    /// directory ending in `/` copies its contents, otherwise itself.
    #[serde(default)]
    src: Option<String>,
    /// Destination file, or directory to copy into (existing, or ending in `/`).
    #[serde(default)]
    dest: String,
    /// Mode (or `preserve`: the source's), owner and group of the file(s);
    /// owner and group also of directories created.
    #[serde(flatten)]
    attrs: FileAttrs<true>,
    /// Keep a timestamped copy of a file that is replaced.
    #[serde(default, deserialize_with = "bool_ish")]
    backup: bool,
    /// Replace a file whose content differs; with `no`, only create it.
    #[serde(default = "yes", deserialize_with = "bool_ish")]
    force: bool,
    /// Mode of directories the copy creates.
    #[serde(default, deserialize_with = "opt_mode")]
    directory_mode: Option<Mode>,
    /// Write through a destination symlink instead of replacing it.
    #[serde(default, deserialize_with = "bool_ish")]
    follow: bool,
    /// `src` is a file on the host.
    #[serde(default, deserialize_with = "bool_ish")]
    remote_src: bool,
    /// Command checking the new file before it is put in place (`%s` is its path).
    #[serde(default)]
    validate: Option<String>,
    /// Expected SHA-1 of the source.
    #[serde(default)]
    checksum: Option<String>,
    /// Follow symlinks in the source: a local source always is (the
    /// default); a directory on the host (`remote_src`) copies its links
    /// as links unless this is `yes`.
    #[serde(default, deserialize_with = "opt_bool_ish")]
    local_follow: Option<bool>,
    /// Accepted for compatibility; writes are always atomic.
    #[serde(default, deserialize_with = "bool_ish")]
    #[allow(dead_code)]
    unsafe_writes: bool,
    /// Decrypt a vault-encrypted local source (default yes).
    #[serde(default = "yes", deserialize_with = "bool_ish")]
    decrypt: bool,
}

/// Local files this large or larger are not read into memory: hashed by
/// streaming them once when planned, and streamed again when written.
/// Smaller ones are read whole, and batched through the kept shell.
const STREAM_FROM: u64 = 1 << 20;

/// Size of the pieces a large local file is hashed in.
const HASH_CHUNK: usize = 256 * 1024;

/// New content known locally.
#[derive(Debug, Clone)]
pub(crate) enum Content {
    /// In memory: `content`, a rendered template, a small local file.
    Bytes(Vec<u8>),
    /// A large local file, left on disk.
    File {
        /// The local file.
        path: PathBuf,
        /// Its size when hashed.
        len: u64,
        /// Its SHA-1 (hex) when hashed.
        sha1: String,
    },
}

impl Content {
    /// SHA-1 hex, as `sha1sum` prints it.
    fn sha1(&self) -> String {
        match self {
            Content::Bytes(d) => sha1_hex(d),
            Content::File { sha1, .. } => sha1.clone(),
        }
    }

    fn len(&self) -> u64 {
        match self {
            Content::Bytes(d) => d.len() as u64,
            Content::File { len, .. } => *len,
        }
    }

    /// The content as diff text (a note for large files, which are never
    /// read whole).
    fn for_diff(&self) -> String {
        match self {
            Content::Bytes(d) => content_for_diff(d),
            Content::File { len, .. } => {
                format!("(content not shown: {len} bytes, more than {MAX_DIFF_SIZE})\n")
            }
        }
    }

    fn write_source(&self) -> WriteSource<'_> {
        match self {
            Content::Bytes(d) => WriteSource::Bytes(d),
            Content::File { path, len, sha1 } => WriteSource::LocalFile {
                path,
                len: *len,
                sha1,
            },
        }
    }

    /// A local file's content: read whole when small, else hashed by
    /// streaming it and left on disk. A large file is hashed once per run
    /// while it stays the same (same inode, size and modification time):
    /// every host copying it, and the read-ahead pass before each, use
    /// that hash; the hash is checked again as the file is sent.
    fn of_local(path: &Path, size: u64, decrypt: bool) -> std::io::Result<Content> {
        use std::os::unix::fs::MetadataExt as _;
        if size < STREAM_FROM {
            // One read serves both: a vault file is decrypted whole (the
            // error names the file), any other is its bytes.
            let data = std::fs::read(path)?;
            if !decrypt {
                return Ok(Content::Bytes(data));
            }
            return crate::vault::decrypt_file_content(data, path)
                .map(Content::Bytes)
                .map_err(std::io::Error::other);
        }
        if decrypt && crate::vault::is_encrypted_file(path) {
            return crate::vault::read_file(path)?
                .map(Content::Bytes)
                .map_err(std::io::Error::other);
        }
        let meta = std::fs::metadata(path)?;
        let key = (
            path.to_path_buf(),
            meta.dev(),
            meta.ino(),
            meta.len(),
            meta.mtime(),
            meta.mtime_nsec(),
        );
        // Held while hashing: hosts asking for the same file wait for the
        // one hash instead of each reading the file.
        let mut hashes = LARGE_FILE_HASHES.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((len, sha1)) = hashes.get(&key) {
            return Ok(Content::File {
                path: path.to_path_buf(),
                len: *len,
                sha1: sha1.clone(),
            });
        }
        let (len, sha1) = hash_file(path)?;
        hashes.insert(key, (len, sha1.clone()));
        Ok(Content::File {
            path: path.to_path_buf(),
            len,
            sha1,
        })
    }
}

/// A large local file's identity: path, device, inode, size, mtime.
type FileKey = (PathBuf, u64, u64, u64, i64, i64);

/// Hashes of the large local files read in this run (see [`Content::of_local`]).
static LARGE_FILE_HASHES: std::sync::LazyLock<
    std::sync::Mutex<std::collections::HashMap<FileKey, (u64, String)>>,
> = std::sync::LazyLock::new(Default::default);

/// Length and SHA-1 (hex) of a file, read in pieces.
fn hash_file(path: &Path) -> std::io::Result<(u64, String)> {
    use sha1::Digest as _;
    use std::io::Read as _;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = sha1::Sha1::new();
    let mut buf = vec![0u8; HASH_CHUNK];
    let mut len = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        len += n as u64;
    }
    let sha1 = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((len, sha1))
}

/// Where the new content comes from.
pub(crate) enum Source {
    /// Content known locally: `content`, a local file, a rendered template.
    Bytes {
        /// The content.
        data: Content,
        /// Name used when the destination is a directory.
        basename: Option<String>,
        /// The source's mode, for `mode: preserve`.
        mode: Option<u32>,
    },
    /// A file on the host.
    Remote(String),
    /// A local directory tree.
    Tree {
        /// Name of the directory to create under `dest`; `None` copies the
        /// contents straight into `dest` (src ended in `/`).
        root: Option<String>,
        /// Directories, relative, parents first.
        dirs: Vec<String>,
        /// Files, relative.
        files: Vec<TreeFile>,
        /// Links copied as links: relative path and target.
        links: Vec<(String, String)>,
    },
}

/// A file of a local tree.
pub(crate) struct TreeFile {
    rel: String,
    data: Content,
    mode: u32,
}

/// Everything `copy` and `template` need to plan.
pub(crate) struct CopySpec {
    /// The content.
    pub source: Source,
    /// `src` as given, for the result and the diff header.
    pub src_label: Option<String>,
    /// Destination as given.
    pub dest: String,
    /// Wanted mode, owner and group.
    pub attrs: FileAttrs<true>,
    /// Back up replaced files.
    pub backup: bool,
    /// Replace differing files.
    pub force: bool,
    /// Write through destination symlinks.
    pub follow: bool,
    /// Mode for new directories.
    pub directory_mode: Option<Mode>,
    /// Validation command.
    pub validate: Option<String>,
}

/// What `apply_copy` does, in one exec.
pub struct CopyChange {
    /// Directory creation and attribute fixes, run first.
    prepare: String,
    /// Files to write.
    writes: Vec<PlannedWrite>,
    /// Validation command for each write.
    validate: Option<String>,
    /// Report `backup_file` (a single-file copy).
    single: bool,
    /// Paths the change writes (directories include what they hold).
    touched: Vec<String>,
    /// It writes one file that was missing or a regular file, and makes
    /// missing directories: nothing inside what it touched changes.
    entries_only: bool,
}

impl CopyChange {
    /// What the change writes.
    pub(crate) fn touched(&self) -> Touched {
        if self.entries_only {
            Touched::Entries(self.touched.clone())
        } else {
            Touched::Paths(self.touched.clone())
        }
    }
}

struct PlannedWrite {
    path: String,
    data: PlannedData,
    attrs: Attrs,
    backup: bool,
}

enum PlannedData {
    Local(Content),
    Remote(String),
}

#[async_trait]
impl Module for Copy {
    const NAME: &'static str = "copy";
    const ARGS: &'static [&'static str] = &[
        "content",
        "src",
        "dest",
        "mode",
        "owner",
        "group",
        "backup",
        "force",
        "directory_mode",
        "follow",
        "remote_src",
        "validate",
        "checksum",
        "local_follow",
        "unsafe_writes",
        "decrypt",
    ];
    type Change = CopyChange;

    fn host_paths(args: &Map) -> &'static [&'static str] {
        let remote_src = args
            .get("remote_src")
            .and_then(super::args::parse_bool)
            .unwrap_or(false);
        if remote_src {
            &["src", "dest"]
        } else {
            &["dest"]
        }
    }

    fn validate(&self) -> Result<(), super::ArgError> {
        // The checks and words of Ansible's copy action; an empty src or
        // dest counts as none.
        let src = self.src.as_deref().filter(|s| !s.is_empty());
        match (&self.content, src) {
            (None, None) => Err("src (or content) is required".into()),
            _ if self.dest.is_empty() => Err("dest is required".into()),
            (Some(_), Some(_)) => Err("src and content are mutually exclusive".into()),
            (Some(_), None) if self.dest.ends_with('/') => {
                Err("can not use content with a dir as dest".into())
            }
            _ => Ok(()),
        }
    }

    fn reads(&self, ctx: &ReadCtx<'_>) -> Result<Protocol, ModuleError> {
        let shape = match (&self.content, &self.src) {
            (None, Some(src)) if !self.remote_src => local_shape(
                &ctx.find_local(src)?,
                src.ends_with('/'),
                self.local_follow.unwrap_or(true),
            )?,
            _ => self.source(ctx)?.shape(),
        };
        Ok(Protocol::Declared(copy_reads(
            &shape,
            &self.dest,
            self.follow,
            ctx.diff,
        )))
    }

    fn decide(
        &self,
        observed: &Observed,
        ctx: &ReadCtx<'_>,
    ) -> Result<Decision<CopyChange>, ModuleError> {
        if let (true, None, Some(src)) = (self.remote_src, &self.content, &self.src) {
            if let Some(decision) = remote_tree::decide(self, src, observed, ctx.diff)? {
                return Ok(decision);
            }
        }
        let source = self.source(ctx)?;
        if let (Some(want), Source::Bytes { data, .. }) = (&self.checksum, &source) {
            let have = data.sha1();
            if !want.eq_ignore_ascii_case(&have) {
                return Err(ModuleError::failed(format!(
                    "the source's SHA-1 {have} does not match the expected checksum {want}"
                )));
            }
        }
        let spec = CopySpec {
            source,
            src_label: self.src.clone(),
            dest: self.dest.clone(),
            attrs: self.attrs.clone(),
            backup: self.backup,
            force: self.force,
            follow: self.follow,
            directory_mode: self.directory_mode.clone(),
            validate: self.validate.clone(),
        };
        decide_copy(spec, observed, ctx.diff).map(Decision::Plan)
    }

    fn touches(&self, change: &CopyChange) -> Touched {
        change.touched()
    }

    async fn apply(&self, ctx: &ModuleCtx<'_>, change: CopyChange) -> Result<Map, ModuleError> {
        apply_copy(ctx, change).await
    }
}

impl Copy {
    /// Where the new content comes from, local files read (and hashed).
    fn source(&self, ctx: &ReadCtx<'_>) -> Result<Source, ModuleError> {
        Ok(match (&self.content, &self.src) {
            (Some(_), Some(_)) => {
                return Err(ModuleError::Args(
                    "src and content are mutually exclusive".into(),
                ))
            }
            (None, None) => return Err(ModuleError::Args("src (or content) is required".into())),
            (Some(content), None) => {
                if self.dest.ends_with('/') {
                    return Err(ModuleError::failed(
                        "can not use content with a dir as dest",
                    ));
                }
                Source::Bytes {
                    data: Content::Bytes(content_bytes(content)),
                    basename: None,
                    mode: None,
                }
            }
            (None, Some(src)) if self.remote_src => Source::Remote(src.clone()),
            (None, Some(src)) => load_local_blocking(
                &ctx.find_local(src)?,
                src.ends_with('/'),
                self.local_follow.unwrap_or(true),
                self.decrypt,
            )?,
        })
    }
}

/// `content:` as bytes: strings as they are, mappings and lists as JSON.
fn content_bytes(content: &Value) -> Vec<u8> {
    match content {
        Value::String(s) => s.clone().into_bytes(),
        Value::Null => Vec::new(),
        other => other.to_string().into_bytes(),
    }
}

/// The shape of a local source, without reading any content.
fn local_shape(path: &Path, contents_only: bool, follow: bool) -> Result<Shape, ModuleError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| ModuleError::failed(format!("{}: {e}", path.display())))?;
    if !meta.is_dir() {
        return Ok(Shape::Single {
            basename: Some(file_name(path)?),
            remote_src: None,
        });
    }
    let walked = Walked::of(path, follow)?;
    Ok(Shape::Tree {
        root: if contents_only {
            None
        } else {
            Some(file_name(path)?)
        },
        dirs: walked.dirs,
        files: walked.files.into_iter().map(|(rel, _)| rel).collect(),
        links: walked.links,
    })
}

/// The last component of a local path, which must be UTF-8.
fn file_name(p: &Path) -> Result<String, ModuleError> {
    p.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .ok_or_else(|| ModuleError::failed(format!("{}: name is not UTF-8", p.display())))
}

/// Read a local source file or directory tree (directory trees are read and
/// hashed in parallel).
fn load_local_blocking(
    path: &Path,
    contents_only: bool,
    follow: bool,
    decrypt: bool,
) -> Result<Source, ModuleError> {
    use std::os::unix::fs::PermissionsExt;
    let io = |p: &Path, e: std::io::Error| ModuleError::failed(format!("{}: {e}", p.display()));
    let meta = std::fs::metadata(path).map_err(|e| io(path, e))?;
    let name = file_name;
    if !meta.is_dir() {
        let data = Content::of_local(path, meta.len(), decrypt).map_err(|e| io(path, e))?;
        return Ok(Source::Bytes {
            data,
            basename: Some(name(path)?),
            mode: Some(meta.permissions().mode() & 0o7777),
        });
    }
    let walked = Walked::of(path, follow)?;
    let rels: Vec<String> = walked.files.iter().map(|(rel, _)| rel.clone()).collect();
    let loaded = walked
        .files
        .into_par_iter()
        .map(|(rel, full)| {
            let meta = std::fs::metadata(&full).map_err(|e| io(&full, e))?;
            let data = Content::of_local(&full, meta.len(), decrypt).map_err(|e| io(&full, e))?;
            let mode = meta.permissions().mode() & 0o7777;
            Ok(TreeFile { rel, data, mode })
        })
        .collect::<Vec<Result<TreeFile, ModuleError>>>();
    // The failure Ansible reports is the first in its walk's order: a
    // directory's files before what is in its subdirectories.
    let walk_order = |rel: &str| -> Vec<(bool, String)> {
        let parts: Vec<&str> = rel.split('/').collect();
        let last = parts.len() - 1;
        parts
            .iter()
            .enumerate()
            .map(|(i, p)| (i != last, p.to_string()))
            .collect()
    };
    let mut files = Vec::with_capacity(rels.len());
    let mut first_err: Option<(Vec<(bool, String)>, ModuleError)> = None;
    for (rel, result) in rels.iter().zip(loaded) {
        match result {
            Ok(f) => files.push(f),
            Err(e) => {
                let key = walk_order(rel);
                if first_err.as_ref().is_none_or(|(k, _)| key < *k) {
                    first_err = Some((key, e));
                }
            }
        }
    }
    if let Some((_, e)) = first_err {
        return Err(e);
    }
    Ok(Source::Tree {
        root: if contents_only {
            None
        } else {
            Some(name(path)?)
        },
        dirs: walked.dirs,
        files,
        links: walked.links,
    })
}

/// A local directory tree: what is copied as directories, files and links.
#[derive(Debug, Default)]
struct Walked {
    /// Directories, relative, parents first.
    dirs: Vec<String>,
    /// Files, relative, with the local path read.
    files: Vec<(String, PathBuf)>,
    /// Links copied as links: relative path and target.
    links: Vec<(String, String)>,
}

impl Walked {
    /// Walk `top`, as Ansible's copy action does: with `follow`
    /// (`local_follow`, the default) a link to a file is copied as the
    /// file and a link to a directory as the directory, except a link back
    /// to a directory being copied (a loop), which stays a link, as do
    /// broken links; without it every link stays a link.
    fn of(top: &Path, follow: bool) -> Result<Walked, ModuleError> {
        use std::os::unix::fs::MetadataExt as _;
        let meta = std::fs::metadata(top)
            .map_err(|e| ModuleError::failed(format!("{}: {e}", top.display())))?;
        let mut walked = Walked::default();
        let mut chain = vec![(meta.dev(), meta.ino())];
        walked.walk(top, "", follow, &mut chain)?;
        Ok(walked)
    }

    /// Collect what is below `dir`, sorted; `chain` holds the directories
    /// being copied from the top down to `dir` (device and inode).
    fn walk(
        &mut self,
        dir: &Path,
        rel: &str,
        follow: bool,
        chain: &mut Vec<(u64, u64)>,
    ) -> Result<(), ModuleError> {
        use std::os::unix::fs::MetadataExt as _;
        if chain.len() > 64 {
            return Err(ModuleError::failed(format!(
                "{}: directories nested too deep",
                dir.display()
            )));
        }
        let io = |e: std::io::Error| ModuleError::failed(format!("{}: {e}", dir.display()));
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map_err(io)?
            .collect::<Result<_, _>>()
            .map_err(io)?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name().into_string().map_err(|n| {
                ModuleError::failed(format!("{}: name {n:?} is not UTF-8", dir.display()))
            })?;
            let child_rel = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let full = entry.path();
            let err = |e: std::io::Error| ModuleError::failed(format!("{}: {e}", full.display()));
            let own = std::fs::symlink_metadata(&full).map_err(err)?;
            if own.file_type().is_symlink() {
                let target = std::fs::read_link(&full).map_err(err)?;
                let target = target.to_str().map(str::to_string).ok_or_else(|| {
                    ModuleError::failed(format!("{}: link target is not UTF-8", full.display()))
                })?;
                match std::fs::metadata(&full) {
                    Ok(m) if follow && m.is_dir() && !chain.contains(&(m.dev(), m.ino())) => {
                        self.dirs.push(child_rel.clone());
                        chain.push((m.dev(), m.ino()));
                        self.walk(&full, &child_rel, follow, chain)?;
                        chain.pop();
                    }
                    Ok(m) if follow && m.is_file() => self.files.push((child_rel, full)),
                    _ => self.links.push((child_rel, target)),
                }
            } else if own.is_dir() {
                self.dirs.push(child_rel.clone());
                chain.push((own.dev(), own.ino()));
                self.walk(&full, &child_rel, follow, chain)?;
                chain.pop();
            } else {
                self.files.push((child_rel, full));
            }
        }
        Ok(())
    }
}

/// `a` joined with `b` by exactly one `/`.
fn join(a: &str, b: &str) -> String {
    let a = a.trim_end_matches('/');
    if a.is_empty() && !b.is_empty() {
        return format!("/{b}");
    }
    format!("{a}/{b}")
}

/// What is read of each destination: its checksum, and (see
/// [`small_content`]) for a diff its content.
const CHECKSUM: Read = Read {
    checksum: true,
    content: false,
};

/// Read a literal path's checksum, and with `diff` its content if small.
fn read_path(batch: &mut ReadBatch, diff: bool, path: &str, follow: bool) -> usize {
    let i = batch.path(path, CHECKSUM, follow);
    if diff {
        small_content(batch, &shell_quote(path), i);
    }
    i
}

/// Read the checksum of what `path` resolves to, and with `diff` its
/// content if small.
fn read_resolved(batch: &mut ReadBatch, diff: bool, path: &str) -> usize {
    let i = batch.resolved(path, CHECKSUM, false);
    if diff {
        small_content(batch, &resolved_word(path), i);
    }
    i
}

/// For a diff, the content of the file at `word` (the read numbered `i`),
/// only when it is small enough to be shown: a large file would otherwise
/// be read whole into memory, to print a note that it is not shown.
fn small_content(batch: &mut ReadBatch, word: &str, i: usize) {
    batch.shell(&format!(
        "if [ -f {word} ] && [ -r {word} ] && [ \"$(wc -c < {word})\" -le {MAX_DIFF_SIZE} ]; then printf '@@x content {i} '; base64 -w0 < {word}; echo; fi"
    ));
}

/// Put the contents [`small_content`] read into their states.
fn take_small_contents(out: &mut ReadOutput) -> Result<(), ModuleError> {
    use base64::Engine as _;
    for line in &out.extra {
        let Some((i, data)) = line
            .strip_prefix("content ")
            .and_then(|rest| rest.split_once(' '))
        else {
            continue;
        };
        let data = base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .map_err(|e| ModuleError::failed(format!("bad file data: {e}")))?;
        if let Some(state) = i.parse::<usize>().ok().and_then(|i| out.states.get_mut(i)) {
            state.content = Some(data);
        }
    }
    Ok(())
}

/// What the reads of a copy depend on: where files go, not what they hold.
pub(crate) enum Shape {
    /// One file.
    Single {
        /// Name used when the destination is a directory.
        basename: Option<String>,
        /// The source on the host (`remote_src`).
        remote_src: Option<String>,
    },
    /// A local directory tree.
    Tree {
        /// See [`Source::Tree`].
        root: Option<String>,
        /// Directories, relative.
        dirs: Vec<String>,
        /// Files, relative.
        files: Vec<String>,
        /// Links: relative path and target.
        links: Vec<(String, String)>,
    },
}

impl Source {
    /// The shape of this source.
    pub(crate) fn shape(&self) -> Shape {
        match self {
            Source::Bytes { basename, .. } => Shape::Single {
                basename: basename.clone(),
                remote_src: None,
            },
            Source::Remote(src) => Shape::Single {
                basename: Path::new(src.trim_end_matches('/'))
                    .file_name()
                    .and_then(|n| n.to_str())
                    .map(str::to_string),
                remote_src: Some(src.clone()),
            },
            Source::Tree {
                root,
                dirs,
                files,
                links,
            } => Shape::Tree {
                root: root.clone(),
                dirs: dirs.clone(),
                files: files.iter().map(|f| f.rel.clone()).collect(),
                links: links.clone(),
            },
        }
    }
}

/// The one read of a single-file copy, and where each state is in it.
struct SingleReads {
    batch: ReadBatch,
    dest: usize,
    dest_followed: usize,
    inner: Option<usize>,
    parent: usize,
    real: Option<usize>,
    inner_real: Option<usize>,
    src: Option<usize>,
}

fn single_reads(
    dest: &str,
    basename: Option<&str>,
    remote_src: Option<&str>,
    follow: bool,
    diff: bool,
) -> SingleReads {
    let mut batch = ReadBatch::new();
    let i_dest = read_path(&mut batch, diff, dest, false);
    let dest_followed = batch.path(dest, Read::default(), true);
    let inner = basename.map(|b| read_path(&mut batch, diff, &join(dest, b), false));
    let parent = batch.path_kind(&parent_dir(dest), true);
    let (real, inner_real) = if follow {
        let real = read_resolved(&mut batch, diff, dest);
        let inner = basename.map(|b| read_resolved(&mut batch, diff, &join(dest, b)));
        (Some(real), inner)
    } else {
        (None, None)
    };
    let src = remote_src.map(|s| read_path(&mut batch, diff, s, true));
    // Who a new file will belong to: the user the task runs as. Asked
    // only when a file would be made (a converged run forks nothing).
    let q = shell_quote(dest);
    let missing = match basename {
        Some(b) => format!(
            "[ ! -e {q} ] || {{ [ -d {q} ] && [ ! -e {} ]; }}",
            shell_quote(&join(dest, b))
        ),
        None => format!("[ ! -e {q} ]"),
    };
    batch.shell_within(
        &format!("if {missing}; then printf '@@x id %s\\n' \"$(id)\"; fi"),
        &[],
    );
    SingleReads {
        batch,
        dest: i_dest,
        dest_followed,
        inner,
        parent,
        real,
        inner_real,
        src,
    }
}

/// Where a tree is copied to.
fn tree_base(dest: &str, root: Option<&str>) -> String {
    let base = match root {
        Some(name) => join(dest, name),
        None => dest.trim_end_matches('/').to_string(),
    };
    if base.is_empty() {
        "/".into()
    } else {
        base
    }
}

/// The one read of a tree copy, and where each state is in it.
struct TreeReads {
    batch: ReadBatch,
    base: usize,
    dirs: Vec<usize>,
    files: Vec<usize>,
    links: Vec<usize>,
}

fn tree_reads<'a>(
    base: &str,
    dirs: &[String],
    files: impl Iterator<Item = &'a str>,
    links: &[(String, String)],
    diff: bool,
) -> TreeReads {
    let mut batch = ReadBatch::new();
    let i_base = batch.path(base, Read::default(), true);
    let dirs = dirs
        .iter()
        .map(|d| batch.path(&join(base, d), Read::default(), false))
        .collect();
    let files = files
        .map(|f| read_path(&mut batch, diff, &join(base, f), false))
        .collect();
    let links = links
        .iter()
        .map(|(l, _)| batch.path(&join(base, l), Read::default(), false))
        .collect();
    TreeReads {
        batch,
        base: i_base,
        dirs,
        files,
        links,
    }
}

/// The reads of a copy of a source of this shape; `copy` and `template`
/// both declare them here.
pub(crate) fn copy_reads(shape: &Shape, dest: &str, follow: bool, diff: bool) -> ReadSet {
    let batch = match shape {
        Shape::Single {
            basename,
            remote_src,
        } => {
            single_reads(
                dest,
                basename.as_deref(),
                remote_src.as_deref(),
                follow,
                diff,
            )
            .batch
        }
        Shape::Tree {
            root,
            dirs,
            files,
            links,
        } => {
            let base = tree_base(dest, root.as_deref());
            tree_reads(&base, dirs, files.iter().map(String::as_str), links, diff).batch
        }
    };
    ReadSet {
        reads: vec![batch.declare()],
    }
}

/// Decide a copy of `spec` from what its reads ([`copy_reads`]) observed;
/// `copy` and `template` both end here.
pub(crate) fn decide_copy(
    spec: CopySpec,
    observed: &Observed,
    diff: bool,
) -> Result<Plan<CopyChange>, ModuleError> {
    match spec.source {
        Source::Tree { .. } => decide_tree(spec, observed, diff),
        _ => decide_single(spec, observed, diff),
    }
}

/// Apply a planned copy in one exec.
pub(crate) async fn apply_copy(
    ctx: &ModuleCtx<'_>,
    change: CopyChange,
) -> Result<Map, ModuleError> {
    let files: Vec<FileWrite<'_>> = change
        .writes
        .iter()
        .map(|w| FileWrite {
            path: &w.path,
            source: match &w.data {
                PlannedData::Local(c) => c.write_source(),
                PlannedData::Remote(p) => WriteSource::RemoteFile(p),
            },
            attrs: w.attrs.clone(),
            backup: w.backup,
            validate: change.validate.as_deref(),
        })
        .collect();
    let backups = write_files(ctx.remote, &change.prepare, &files).await?;
    let mut data = Map::new();
    if change.single {
        if let Some(Some(b)) = backups.into_iter().next() {
            data.insert("backup_file".into(), Value::from(b));
        }
    }
    Ok(data)
}

/// One file to compare and maybe write.
struct Target<'a> {
    path: String,
    state: &'a FileState,
    data: PlannedData,
    checksum: Option<String>,
    new_content: Option<&'a Content>,
    source_mode: Option<u32>,
}

/// What was decided for one target.
struct Verdict {
    write: Option<PlannedWrite>,
    fix: Option<String>,
    diff_before: String,
    diff_after: String,
    mode: Option<u32>,
}

/// Compare one destination with its new content and attributes.
fn decide_target(
    spec: &CopySpec,
    t: Target<'_>,
    allow_diff: bool,
) -> Result<Option<Verdict>, ModuleError> {
    let st = t.state;
    match st.kind {
        FileKind::Directory => {
            return Err(ModuleError::failed(format!(
                "{} is a directory, cannot copy a file over it",
                t.path
            )))
        }
        FileKind::Missing => {}
        _ if !spec.force => return Ok(None),
        _ => {}
    }
    let base = if st.kind == FileKind::File {
        st.mode
    } else {
        0o644
    };
    let attrs = spec
        .attrs
        .with_source_mode(t.source_mode)
        .resolved(base, false)?;
    let final_mode = match &attrs.mode {
        Some(Mode::Bits(b)) => Some(*b),
        _ if st.kind == FileKind::File => Some(st.mode),
        _ => Some(0o644),
    };
    // A symlink is replaced by a file (follow: no), even with equal content.
    let same = st.kind == FileKind::File && t.checksum.is_some() && st.checksum == t.checksum;
    if same {
        let Some(fix) = ensure_attrs(st, &attrs)? else {
            return Ok(Some(Verdict {
                write: None,
                fix: None,
                diff_before: String::new(),
                diff_after: String::new(),
                mode: final_mode,
            }));
        };
        let mut before = format!("path: {}\n", t.path);
        let mut after = before.clone();
        for (k, b, a) in &fix.changes {
            before.push_str(&format!("{k}: {b}\n"));
            after.push_str(&format!("{k}: {a}\n"));
        }
        return Ok(Some(Verdict {
            write: None,
            fix: Some(fix.script(&t.path)),
            diff_before: before,
            diff_after: after,
            mode: final_mode,
        }));
    }
    let (diff_before, diff_after) = if allow_diff {
        let before = match (&st.kind, &st.content) {
            (FileKind::Missing, _) => String::new(),
            (FileKind::Link, _) => format!(
                "(symlink to {})\n",
                st.link_target.clone().unwrap_or_default()
            ),
            (_, Some(c)) => content_for_diff(c),
            (_, None) if st.size > MAX_DIFF_SIZE as u64 => format!(
                "(content not shown: {} bytes, more than {MAX_DIFF_SIZE})\n",
                st.size
            ),
            (_, None) => "(content not readable)\n".into(),
        };
        let after = t
            .new_content
            .map(Content::for_diff)
            .unwrap_or_else(|| "(content of the remote source not read)\n".into());
        (before, after)
    } else {
        (String::new(), String::new())
    };
    Ok(Some(Verdict {
        write: Some(PlannedWrite {
            path: t.path,
            data: t.data,
            attrs,
            backup: spec.backup,
        }),
        fix: None,
        diff_before,
        diff_after,
        mode: final_mode,
    }))
}

fn decide_single(
    spec: CopySpec,
    observed: &Observed,
    diff: bool,
) -> Result<Plan<CopyChange>, ModuleError> {
    let (basename, new_data, source_mode, remote_src) = match &spec.source {
        Source::Bytes {
            data,
            basename,
            mode,
        } => (basename.clone(), Some(data), *mode, None),
        Source::Remote(src) => (
            Path::new(src.trim_end_matches('/'))
                .file_name()
                .and_then(|n| n.to_str())
                .map(str::to_string),
            None,
            None,
            Some(src.clone()),
        ),
        Source::Tree { .. } => return Err(ModuleError::failed("not a single file")),
    };
    let dest = spec.dest.clone();
    let into_dir = dest.ends_with('/');
    let reads = single_reads(
        &dest,
        basename.as_deref(),
        remote_src.as_deref(),
        spec.follow,
        diff,
    );
    let (i_dest, i_dest_followed, i_inner, i_parent, i_real, i_inner_real, i_src) = (
        reads.dest,
        reads.dest_followed,
        reads.inner,
        reads.parent,
        reads.real,
        reads.inner_real,
        reads.src,
    );
    let mut out = reads.batch.parse_exec(observed.output(0)?)?;
    take_small_contents(&mut out)?;
    let states = &out.states;

    // The source on the host, for remote_src.
    let (remote_checksum, remote_content, remote_mode, remote_size) = match i_src {
        Some(i) => {
            let s = &states[i];
            match s.kind {
                FileKind::Missing => {
                    return Err(ModuleError::failed(format!(
                        "Source {} not found",
                        remote_src.unwrap_or_default()
                    )))
                }
                FileKind::Directory => {
                    return Err(ModuleError::failed(
                        "remote_src with a directory as src is not supported",
                    ))
                }
                // A device, fifo or socket: Ansible's words.
                FileKind::Other => {
                    return Err(ModuleError::failed(format!(
                        "Cannot copy invalid source '{}': not a file",
                        remote_src.unwrap_or_default()
                    )))
                }
                _ => {}
            }
            if s.checksum.is_none() {
                return Err(ModuleError::failed(format!(
                    "Source {} not readable",
                    remote_src.unwrap_or_default()
                )));
            }
            (
                s.checksum.clone(),
                s.content.clone().map(Content::Bytes),
                Some(s.mode),
                Some(s.size),
            )
        }
        None => (None, None, None, None),
    };
    let checksum = match new_data {
        Some(d) => Some(d.sha1()),
        None => remote_checksum,
    };
    let source_mode = source_mode.or(remote_mode);
    let mut touched = vec![dest.trim_end_matches('/').to_string()];

    // Where the file goes.
    let dest_is_dir = states[i_dest_followed].kind == FileKind::Directory;
    let mut prepare = String::new();
    let (mut path, mut state_i, real_i) = if into_dir || dest_is_dir {
        let inner = i_inner.ok_or_else(|| {
            ModuleError::failed("can not use content with a dir as dest".to_string())
        })?;
        if into_dir && !dest_is_dir {
            if states[i_dest].exists() {
                return Err(ModuleError::failed(format!(
                    "{dest} exists and is not a directory"
                )));
            }
            let dir_attrs = Attrs {
                mode: spec.directory_mode.clone(),
                owner: spec.attrs.owner.clone(),
                group: spec.attrs.group.clone(),
            };
            prepare.push_str(&mkdirs_script(dest.trim_end_matches('/'), &dir_attrs)?);
        }
        (
            join(&dest, basename.as_deref().unwrap_or_default()),
            inner,
            i_inner_real,
        )
    } else {
        if !states[i_dest].exists() && states[i_parent].kind != FileKind::Directory {
            return Err(ModuleError::failed(format!(
                "Destination directory {} does not exist",
                parent_dir(&dest)
            )));
        }
        (dest.clone(), i_dest, i_real)
    };
    if !spec.force && states[state_i].exists() {
        let mut data = Map::new();
        data.insert("msg".into(), "file already exists".into());
        data.insert("dest".into(), Value::from(path));
        if let Some(src) = &spec.src_label {
            data.insert("src".into(), Value::from(src.clone()));
        }
        return Ok(Plan::Unchanged(data));
    }
    if let (true, Some(r)) = (states[state_i].kind == FileKind::Link, real_i) {
        // follow: write the file the link points to.
        path = states[r].path.clone();
        state_i = r;
        if path.is_empty() {
            return Err(ModuleError::failed(format!(
                "cannot resolve the symlink {dest}"
            )));
        }
    }
    let state = &states[state_i];
    let planned_data = match (&spec.source, &remote_src) {
        (Source::Bytes { data, .. }, _) => PlannedData::Local(data.clone()),
        (_, Some(src)) => PlannedData::Remote(src.clone()),
        _ => return Err(ModuleError::failed("no source")),
    };
    let new_content = new_data.or(remote_content.as_ref());
    let decision = decide_target(
        &spec,
        Target {
            path: path.clone(),
            state,
            data: planned_data,
            checksum: checksum.clone(),
            new_content,
            source_mode,
        },
        diff,
    )?
    .ok_or_else(|| ModuleError::failed("unexpected: nothing decided"))?;

    let mut data = Map::new();
    data.insert("dest".into(), Value::from(path.clone()));
    if let Some(src) = &spec.src_label {
        data.insert("src".into(), Value::from(src.clone()));
    }
    if let Some(c) = &checksum {
        data.insert("checksum".into(), Value::from(c.clone()));
    }
    let size = new_data.map(Content::len).or(remote_size);
    if let Some(size) = size {
        data.insert("size".into(), Value::from(size));
    }
    data.insert("state".into(), "file".into());
    if let Some(m) = decision.mode {
        data.insert("mode".into(), Value::from(format!("0{m:03o}")));
    }
    if let Some(Content::Bytes(d)) = new_data {
        data.insert(
            "md5sum".into(),
            Value::from(format!("{:x}", md5::compute(d))),
        );
    }
    let keeps_file = state.kind == FileKind::File;
    // A new file belongs to the task's user and that user's group.
    let creator = out
        .extra
        .iter()
        .find_map(|l| l.strip_prefix("id "))
        .and_then(parse_id);
    match (&spec.attrs.owner, &creator) {
        (Some(o), _) => {
            data.insert("owner".into(), Value::from(o.clone()));
        }
        (None, _) if keeps_file => {
            data.insert("owner".into(), Value::from(state.owner.clone()));
            data.insert("uid".into(), Value::from(state.uid));
        }
        (None, Some(id)) => {
            data.insert("owner".into(), Value::from(id.user.clone()));
            data.insert("uid".into(), Value::from(id.uid));
        }
        (None, None) => {}
    }
    match (&spec.attrs.group, &creator) {
        (Some(g), _) => {
            data.insert("group".into(), Value::from(g.clone()));
        }
        (None, _) if keeps_file => {
            data.insert("group".into(), Value::from(state.group.clone()));
            data.insert("gid".into(), Value::from(state.gid));
        }
        (None, Some(id)) => {
            data.insert("group".into(), Value::from(id.group.clone()));
            data.insert("gid".into(), Value::from(id.gid));
        }
        (None, None) => {}
    }

    if decision.write.is_none() && decision.fix.is_none() && prepare.is_empty() {
        return Ok(Plan::Unchanged(data));
    }
    if let Some(fix) = &decision.fix {
        prepare.push_str(fix);
        prepare.push('\n');
    }
    // As Ansible's copy: `content` is labelled with the destination.
    let shown = diff.then(|| Diff {
        before_header: path.clone(),
        after_header: spec.src_label.clone().unwrap_or_else(|| path.clone()),
        before: decision.diff_before,
        after: decision.diff_after,
    });
    if let (Some(d), true) = (&shown, decision.write.is_some()) {
        data.insert(
            "diff".into(),
            Value::Array(vec![registered_diff(d, state.exists())]),
        );
    }
    touched.push(path);
    let entries_only = matches!(states[state_i].kind, FileKind::Missing | FileKind::File);
    Ok(Plan::Change {
        change: CopyChange {
            prepare,
            writes: decision.write.into_iter().collect(),
            validate: spec.validate.clone(),
            single: true,
            touched,
            entries_only,
        },
        diff: shown,
        data,
    })
}

/// A content diff as Ansible's copy registers it (`result.diff[0]`): no
/// `before_header` for a file that did not exist.
fn registered_diff(d: &Diff, existed: bool) -> Value {
    let mut m = Map::new();
    if existed {
        m.insert("before_header".into(), Value::from(d.before_header.clone()));
    }
    m.insert("before".into(), Value::from(d.before.clone()));
    m.insert("after_header".into(), Value::from(d.after_header.clone()));
    m.insert("after".into(), Value::from(d.after.clone()));
    Value::Object(m)
}

/// The user and primary group `id` names.
struct Identity {
    uid: u64,
    user: String,
    gid: u64,
    group: String,
}

/// `id`'s first two fields: `uid=0(root) gid=0(root) ...`.
fn parse_id(line: &str) -> Option<Identity> {
    let field = |key: &str| -> Option<(u64, String)> {
        let rest = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))?;
        let (num, name) = rest.split_once('(')?;
        Some((num.parse().ok()?, name.strip_suffix(')')?.to_string()))
    };
    let (uid, user) = field("uid")?;
    let (gid, group) = field("gid")?;
    Some(Identity {
        uid,
        user,
        gid,
        group,
    })
}

fn decide_tree(
    spec: CopySpec,
    observed: &Observed,
    diff: bool,
) -> Result<Plan<CopyChange>, ModuleError> {
    let Source::Tree {
        root,
        dirs,
        files,
        links,
    } = &spec.source
    else {
        return Err(ModuleError::failed("not a directory tree"));
    };
    let base = tree_base(&spec.dest, root.as_deref());
    let reads = tree_reads(
        &base,
        dirs,
        files.iter().map(|f| f.rel.as_str()),
        links,
        diff,
    );
    let (i_base, dir_is, file_is) = (reads.base, &reads.dirs, &reads.files);
    let mut out = reads.batch.parse_exec(observed.output(0)?)?;
    take_small_contents(&mut out)?;
    let states = &out.states;

    let mut prepare = String::new();
    let dir_attrs = Attrs {
        mode: spec.directory_mode.clone(),
        owner: spec.attrs.owner.clone(),
        group: spec.attrs.group.clone(),
    };
    let owner_attrs = Attrs {
        mode: None,
        owner: spec.attrs.owner.clone(),
        group: spec.attrs.group.clone(),
    };
    let mut before = String::new();
    let mut after = String::new();
    let mut note = |path: &str, b: &str, a: &str| {
        before.push_str(&format!("==> {path} <==\n{b}"));
        after.push_str(&format!("==> {path} <==\n{a}"));
    };
    let mut dir_paths = vec![(base.clone(), &states[i_base])];
    for (d, i) in dirs.iter().zip(dir_is) {
        dir_paths.push((join(&base, d), &states[*i]));
    }
    for (n, (path, st)) in dir_paths.iter().enumerate() {
        // With `src: dir/` the contents go into dest, which is left as it is.
        if n == 0 && root.is_none() && st.exists() {
            continue;
        }
        match st.kind {
            FileKind::Missing => {
                prepare.push_str(&mkdirs_script(path, &dir_attrs)?);
                note(path, "(absent)\n", "(directory)\n");
            }
            FileKind::Directory => {
                // Ansible sets directory_mode on new directories only.
                if let Some(fix) = ensure_attrs(st, &owner_attrs)? {
                    prepare.push_str(&fix.script(path));
                    prepare.push('\n');
                    let (b, a): (Vec<String>, Vec<String>) = fix
                        .changes
                        .into_iter()
                        .map(|(k, b, a)| (format!("{k}: {b}\n"), format!("{k}: {a}\n")))
                        .unzip();
                    note(path, &b.concat(), &a.concat());
                }
            }
            _ => {
                return Err(ModuleError::failed(format!(
                    "{path} exists and is not a directory"
                )))
            }
        }
    }
    let mut writes = Vec::new();
    for (f, i) in files.iter().zip(file_is) {
        let path = join(&base, &f.rel);
        let decision = decide_target(
            &spec,
            Target {
                path: path.clone(),
                state: &states[*i],
                data: PlannedData::Local(f.data.clone()),
                checksum: Some(f.data.sha1()),
                new_content: Some(&f.data),
                source_mode: Some(f.mode),
            },
            diff,
        )?;
        let Some(decision) = decision else { continue };
        if let Some(fix) = decision.fix {
            prepare.push_str(&fix);
            prepare.push('\n');
        }
        if decision.write.is_some() || !decision.diff_before.is_empty() {
            note(&path, &decision.diff_before, &decision.diff_after);
        }
        writes.extend(decision.write);
    }
    // Links as links (Ansible's `file: state=link force=yes`), after the
    // directories they go in.
    for ((l, target), i) in links.iter().zip(&reads.links) {
        let path = join(&base, l);
        let st = &states[*i];
        let q = shell_quote(&path);
        match st.kind {
            FileKind::Link if st.link_target.as_deref() == Some(target.as_str()) => {
                prepare.push_str(&remote_tree::chown_script(st, &owner_attrs, &path)?);
                continue;
            }
            FileKind::Missing => {
                prepare.push_str(&format!("ln -s -- {} {q}\n", shell_quote(target)));
            }
            FileKind::Directory => {
                return Err(ModuleError::failed(format!(
                    "{path} is a directory, cannot make it a link to {target}"
                )))
            }
            _ => prepare.push_str(&format!("ln -sfn -- {} {q}\n", shell_quote(target))),
        }
        if spec.attrs.owner.is_some() || spec.attrs.group.is_some() {
            let mut link = st.clone();
            link.kind = FileKind::Link;
            link.uid = u32::MAX;
            link.gid = u32::MAX;
            link.owner.clear();
            link.group.clear();
            prepare.push_str(&remote_tree::chown_script(&link, &owner_attrs, &path)?);
        }
        let before = match st.kind {
            FileKind::Missing => "(absent)\n".to_string(),
            FileKind::Link => format!(
                "(symlink to {})\n",
                st.link_target.clone().unwrap_or_default()
            ),
            _ => "(file)\n".to_string(),
        };
        note(&path, &before, &format!("(symlink to {target})\n"));
    }
    let mut data = Map::new();
    data.insert("dest".into(), Value::from(base.clone()));
    if let Some(src) = &spec.src_label {
        data.insert("src".into(), Value::from(src.clone()));
    }
    if prepare.is_empty() && writes.is_empty() {
        return Ok(Plan::Unchanged(data));
    }
    let shown = diff.then(|| Diff {
        before_header: base.clone(),
        after_header: spec.src_label.clone().unwrap_or_default(),
        before,
        after,
    });
    Ok(Plan::Change {
        change: CopyChange {
            prepare,
            writes,
            validate: spec.validate.clone(),
            single: false,
            touched: vec![base],
            entries_only: false,
        },
        diff: shown,
        data,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::modules::testutil::{assert_args_complete, mode_of, owner_of, Harness};

    #[test]
    fn args() {
        assert_args_complete::<Copy>();
    }

    #[test]
    fn creator_of_a_new_file_from_id() {
        let id = parse_id("uid=1001(u x) gid=1002(g) groups=1002(g),27(sudo)");
        assert!(id.is_none(), "a name with a space is not id's output");
        let id = parse_id("uid=1001(ux) gid=1002(g) groups=1002(g),27(sudo)").expect("id");
        assert_eq!((id.uid, id.user.as_str()), (1001, "ux"));
        assert_eq!((id.gid, id.group.as_str()), (1002, "g"));
    }

    /// copy target: `src: ''` passed, and the refusals' words were not
    /// Ansible's (its asserts look for them).
    #[test]
    fn empty_src_is_refused_in_ansibles_words() {
        for (args, want) in [
            (
                json!({"src": "", "dest": "/x"}),
                "src (or content) is required",
            ),
            (json!({"dest": "/x"}), "src (or content) is required"),
            (json!({"src": "a"}), "dest is required"),
            (
                json!({"src": "a", "content": "b", "dest": "/x"}),
                "src and content are mutually exclusive",
            ),
            (
                json!({"content": "b", "dest": "/x/"}),
                "can not use content with a dir as dest",
            ),
        ] {
            let c: Copy = serde_json::from_value(args).expect("args");
            assert_eq!(c.validate().expect_err(want).msg, want);
        }
    }

    #[test]
    fn paths() {
        assert_eq!(join("/etc/", "x"), "/etc/x");
        assert_eq!(join("/", "x"), "/x");
        assert_eq!(parent_dir("/etc/x"), "/etc");
        assert_eq!(parent_dir("/x"), "/");
        assert_eq!(parent_dir("/"), "/");
        assert_eq!(parent_dir("x"), ".");
    }

    #[tokio::test]
    #[ignore = "needs root: run scripts/test"]
    async fn content_create_then_unchanged_then_modify() {
        let h = Harness::new();
        let dest = h.path("conf");
        let args = json!({ "content": "a=1\n", "dest": dest, "mode": "0640" });

        // Check mode: reports the change, touches nothing.
        let out = h
            .run::<Copy>(args.clone(), true, true)
            .await
            .expect("check");
        assert!(out.changed);
        assert!(!Path::new(&dest).exists());
        let diff = out.diff.expect("diff");
        assert_eq!((diff.before.as_str(), diff.after.as_str()), ("", "a=1\n"));

        h.take_execs();
        let out = h
            .run::<Copy>(args.clone(), false, false)
            .await
            .expect("run");
        assert!(out.changed);
        // One exec to read, one to write.
        assert_eq!(h.take_execs(), 2);
        assert_eq!(std::fs::read_to_string(&dest).expect("read"), "a=1\n");
        assert_eq!(mode_of(&dest), 0o640);
        assert_eq!(out.data["checksum"], json!(sha1_hex(b"a=1\n")));
        assert_eq!(out.data["mode"], json!("0640"));
        assert_eq!(out.data["dest"], json!(dest));

        let out = h.run::<Copy>(args, false, true).await.expect("again");
        assert!(!out.changed);
        assert_eq!(h.take_execs(), 1);
        assert!(out.diff.is_none());
        assert_eq!(out.data["owner"], json!("root"));

        // New content: a diff with the old text; backup kept.
        let args = json!({ "content": "a=2\n", "dest": dest, "backup": "yes" });
        let out = h
            .run::<Copy>(args.clone(), true, true)
            .await
            .expect("check");
        let diff = out.diff.expect("diff");
        assert_eq!(
            (diff.before.as_str(), diff.after.as_str()),
            ("a=1\n", "a=2\n")
        );
        assert_eq!(std::fs::read_to_string(&dest).expect("read"), "a=1\n");
        let out = h.run::<Copy>(args, false, false).await.expect("run");
        assert!(out.changed);
        let backup = out.data["backup_file"].as_str().expect("backup_file");
        assert_eq!(std::fs::read_to_string(backup).expect("backup"), "a=1\n");
        assert_eq!(std::fs::read_to_string(&dest).expect("read"), "a=2\n");
        // The mode of the replaced file is kept.
        assert_eq!(mode_of(&dest), 0o640);
    }

    #[tokio::test]
    #[ignore = "needs root: run scripts/test"]
    async fn attributes_only_change() {
        let h = Harness::new();
        let dest = h.path("f");
        std::fs::write(&dest, "same\n").expect("write");
        let args = json!({ "content": "same\n", "dest": dest, "mode": "u=rw,g=,o=", "owner": "nobody", "group": "daemon" });
        let out = h
            .run::<Copy>(args.clone(), true, true)
            .await
            .expect("check");
        assert!(out.changed);
        let diff = out.diff.expect("diff");
        assert!(diff.before.contains("mode: 0644"), "{}", diff.before);
        assert!(diff.after.contains("mode: 0600"), "{}", diff.after);
        assert!(diff.after.contains("owner: nobody"), "{}", diff.after);
        assert_eq!(owner_of(&dest), (0, 0));
        let out = h
            .run::<Copy>(args.clone(), false, false)
            .await
            .expect("run");
        assert!(out.changed);
        assert_eq!(mode_of(&dest), 0o600);
        assert_eq!(owner_of(&dest), (65534, 1));
        let out = h.run::<Copy>(args, false, false).await.expect("again");
        assert!(!out.changed);
        // Numeric ids are compared with the file's ids.
        let out = h
            .run::<Copy>(
                json!({ "content": "same\n", "dest": dest, "owner": 65534, "group": "1" }),
                false,
                false,
            )
            .await
            .expect("numeric");
        assert!(!out.changed);
    }

    #[tokio::test]
    #[ignore = "needs root: run scripts/test"]
    async fn local_src_into_directory_and_force_no() {
        let h = Harness::new();
        std::fs::write(h.root().join("files/app.conf"), "x\n").expect("write");
        let d = h.path("etc");
        std::fs::create_dir(&d).expect("mkdir");
        // An existing directory: copy into it with src's basename.
        let out = h
            .run::<Copy>(json!({ "src": "app.conf", "dest": d }), false, false)
            .await
            .expect("run");
        assert!(out.changed);
        assert_eq!(out.data["dest"], json!(format!("{d}/app.conf")));
        assert_eq!(out.data["src"], json!("app.conf"));
        assert_eq!(
            std::fs::read_to_string(format!("{d}/app.conf")).expect("read"),
            "x\n"
        );
        // A dest ending in / is created, with directory_mode and owner.
        let nd = h.path("new/sub/");
        let args =
            json!({ "src": "app.conf", "dest": nd, "directory_mode": "0750", "owner": "daemon" });
        let out = h
            .run::<Copy>(args.clone(), true, false)
            .await
            .expect("check");
        assert!(out.changed);
        assert!(!Path::new(&h.path("new")).exists());
        h.run::<Copy>(args.clone(), false, false)
            .await
            .expect("run");
        assert_eq!(mode_of(&h.path("new/sub")), 0o750);
        assert_eq!(owner_of(&h.path("new/sub")).0, 1);
        assert_eq!(owner_of(&h.path("new/sub/app.conf")).0, 1);
        assert!(
            !h.run::<Copy>(args, false, false)
                .await
                .expect("again")
                .changed
        );
        // force: no leaves an existing file alone.
        let out = h
            .run::<Copy>(
                json!({ "content": "other\n", "dest": format!("{d}/app.conf"), "force": "no" }),
                false,
                false,
            )
            .await
            .expect("force no");
        assert!(!out.changed);
        assert_eq!(
            std::fs::read_to_string(format!("{d}/app.conf")).expect("read"),
            "x\n"
        );
        // A missing parent fails like Ansible.
        let err = h
            .run::<Copy>(
                json!({ "content": "x", "dest": h.path("nope/file") }),
                false,
                false,
            )
            .await
            .expect_err("no parent");
        assert!(err.to_string().contains("does not exist"), "{err}");
        let err = h
            .run::<Copy>(json!({ "content": "x", "dest": d }), false, false)
            .await
            .expect_err("content into dir");
        assert!(err.to_string().contains("dir as dest"), "{err}");
    }

    #[tokio::test]
    async fn large_local_file_is_streamed_not_held() {
        let h = Harness::new();
        let big: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
        std::fs::write(h.root().join("files/big.bin"), &big).expect("write");
        let dest = h.path("big.bin");
        let args = json!({ "src": "big.bin", "dest": dest });
        let out = h
            .run::<Copy>(args.clone(), true, true)
            .await
            .expect("check");
        assert!(out.changed);
        let diff = out.diff.expect("diff");
        assert!(diff.after.contains("content not shown"), "{}", diff.after);
        let out = h
            .run::<Copy>(args.clone(), false, false)
            .await
            .expect("run");
        assert!(out.changed);
        assert_eq!(out.data["checksum"], json!(sha1_hex(&big)));
        assert_eq!(out.data["size"], json!(big.len()));
        assert!(std::fs::read(&dest).expect("read") == big);
        assert!(
            !h.run::<Copy>(args.clone(), false, false)
                .await
                .expect("again")
                .changed
        );
        // A diff against a large destination does not read it.
        let mut other = big.clone();
        other[0] ^= 1;
        std::fs::write(h.root().join("files/big.bin"), &other).expect("write");
        let out = h.run::<Copy>(args, true, true).await.expect("check");
        assert!(out.changed);
        let diff = out.diff.expect("diff");
        assert_eq!(
            diff.before,
            format!(
                "(content not shown: {} bytes, more than {MAX_DIFF_SIZE})\n",
                big.len()
            )
        );
        // The expected checksum is checked against the streamed hash.
        let err = h
            .run::<Copy>(
                json!({ "src": "big.bin", "dest": dest, "checksum": "00" }),
                false,
                false,
            )
            .await
            .expect_err("mismatch");
        assert!(err.to_string().contains("does not match"), "{err}");
    }

    #[tokio::test]
    async fn symlink_dest_replaced_or_followed() {
        let h = Harness::new();
        let target = h.path("target");
        std::fs::write(&target, "same").expect("write");
        let link = h.path("link");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        // follow: equal content through the link is unchanged.
        let out = h
            .run::<Copy>(
                json!({ "content": "same", "dest": link, "follow": true }),
                false,
                false,
            )
            .await
            .expect("follow");
        assert!(!out.changed);
        let out = h
            .run::<Copy>(
                json!({ "content": "new", "dest": link, "follow": true }),
                false,
                false,
            )
            .await
            .expect("follow");
        assert!(out.changed);
        assert_eq!(out.data["dest"], json!(target));
        assert_eq!(std::fs::read_to_string(&target).expect("read"), "new");
        assert!(std::fs::symlink_metadata(&link).expect("meta").is_symlink());
        // follow: no (default) replaces the link by a file.
        let out = h
            .run::<Copy>(json!({ "content": "new", "dest": link }), false, false)
            .await
            .expect("replace");
        assert!(out.changed);
        assert!(std::fs::symlink_metadata(&link).expect("meta").is_file());
        assert_eq!(std::fs::read_to_string(&target).expect("read"), "new");
    }

    #[tokio::test]
    async fn remote_src_and_validate() {
        let h = Harness::new();
        let src = h.path("k3s.yaml");
        std::fs::write(&src, "server: x\n").expect("write");
        std::process::Command::new("chmod")
            .args(["0600", &src])
            .status()
            .expect("chmod");
        let dest = h.path("config");
        let args = json!({ "src": src, "dest": dest, "remote_src": true, "mode": "preserve" });
        let out = h
            .run::<Copy>(args.clone(), true, true)
            .await
            .expect("check");
        assert!(out.changed);
        assert_eq!(out.diff.expect("diff").after, "server: x\n");
        assert!(!Path::new(&dest).exists());
        h.run::<Copy>(args.clone(), false, false)
            .await
            .expect("run");
        assert_eq!(std::fs::read_to_string(&dest).expect("read"), "server: x\n");
        assert_eq!(mode_of(&dest), 0o600);
        assert!(
            !h.run::<Copy>(args, false, false)
                .await
                .expect("again")
                .changed
        );

        let err = h
            .run::<Copy>(
                json!({ "content": "bad\n", "dest": dest, "validate": "grep -q server %s" }),
                false,
                false,
            )
            .await
            .expect_err("invalid");
        assert!(err.to_string().contains("validate"), "{err}");
        assert_eq!(std::fs::read_to_string(&dest).expect("read"), "server: x\n");
    }

    #[tokio::test]
    async fn directory_tree() {
        let h = Harness::new();
        let src = h.root().join("files/dags");
        std::fs::create_dir_all(src.join("sub/empty")).expect("mkdir");
        std::fs::write(src.join("a.py"), "a\n").expect("write");
        std::fs::write(src.join("sub/b.py"), "b\n").expect("write");
        let dest = h.path("opt");
        // Without a trailing slash the directory itself is copied.
        let args = json!({ "src": "dags", "dest": dest, "mode": "0644", "directory_mode": "0755" });
        let out = h
            .run::<Copy>(args.clone(), true, true)
            .await
            .expect("check");
        assert!(out.changed);
        assert!(!Path::new(&dest).exists());
        h.take_execs();
        let out = h
            .run::<Copy>(args.clone(), false, false)
            .await
            .expect("run");
        assert!(out.changed);
        // The whole tree: one exec to read, one to write.
        assert_eq!(h.take_execs(), 2);
        assert_eq!(out.data["dest"], json!(format!("{dest}/dags")));
        assert_eq!(
            std::fs::read_to_string(format!("{dest}/dags/sub/b.py")).expect("read"),
            "b\n"
        );
        assert!(Path::new(&format!("{dest}/dags/sub/empty")).is_dir());
        assert!(
            !h.run::<Copy>(args.clone(), false, true)
                .await
                .expect("again")
                .changed
        );
        // One file changes: only it is written, and the diff names it.
        std::fs::write(src.join("a.py"), "a2\n").expect("write");
        let out = h
            .run::<Copy>(args.clone(), false, true)
            .await
            .expect("update");
        assert!(out.changed);
        let diff = out.diff.expect("diff");
        assert!(
            diff.before.contains("dags/a.py <==\na\n"),
            "{}",
            diff.before
        );
        assert!(diff.after.contains("dags/a.py <==\na2\n"), "{}", diff.after);
        assert!(!diff.after.contains("b.py"), "{}", diff.after);
        // With a trailing slash the contents go straight into dest.
        let flat = h.path("flat");
        h.run::<Copy>(json!({ "src": "dags/", "dest": flat }), false, false)
            .await
            .expect("contents");
        assert!(Path::new(&format!("{flat}/a.py")).is_file());
    }

    /// copy target: `local_follow: no` was refused, and a link back up
    /// the tree ("circles: ../") was followed until "nested too deep".
    /// Ansible keeps links as links without local_follow, and with it
    /// (the default) keeps a link to a directory being copied.
    #[tokio::test]
    async fn local_tree_links_kept_or_followed() {
        use std::os::unix::fs::symlink;
        let h = Harness::new();
        let src = h.root().join("files/tree");
        std::fs::create_dir_all(src.join("sub")).expect("mkdir");
        std::fs::write(src.join("sub/f"), "f\n").expect("write");
        symlink("../", src.join("sub/circles")).expect("symlink");
        symlink("f", src.join("sub/to_f")).expect("symlink");
        symlink("missing", src.join("sub/broken")).expect("symlink");
        for (follow, to_f_is_link) in [(false, true), (true, false)] {
            let dest = h.path(&format!("out-{follow}"));
            let args = json!({"src": "tree", "dest": dest, "local_follow": follow});
            let out = h
                .run::<Copy>(args.clone(), false, false)
                .await
                .expect("run");
            assert!(out.changed);
            let sub = format!("{dest}/tree/sub");
            let circles =
                std::fs::read_link(format!("{sub}/circles")).expect("a loop stays a link");
            assert_eq!(circles, Path::new("../"));
            assert!(Path::new(&format!("{sub}/broken")).is_symlink());
            assert_eq!(Path::new(&format!("{sub}/to_f")).is_symlink(), to_f_is_link);
            assert_eq!(
                std::fs::read_to_string(format!("{sub}/to_f")).expect("read"),
                "f\n"
            );
            let again = h.run::<Copy>(args, false, false).await.expect("again");
            assert!(!again.changed, "links already right: {:?}", again.data);
        }
    }

    /// copy target: a vault-encrypted source was copied as ciphertext;
    /// Ansible refuses it without a vault password, naming the first such
    /// file of its walk (a directory's files before its subdirectories').
    #[tokio::test]
    async fn vault_encrypted_source_no_password_opens_fails_naming_the_first_file() {
        let h = Harness::new();
        let vault = h.root().join("files/vault");
        std::fs::create_dir_all(vault.join("a_folder")).expect("mkdir");
        // Encrypted with a password this run does not have.
        let secret = crate::vault::encrypt(
            b"s3cret\n",
            &crate::secret::Secret::new("not-the-runs-password"),
            None,
        );
        std::fs::write(vault.join("a_folder/nested"), &secret).expect("write");
        std::fs::write(vault.join("z_file"), &secret).expect("write");
        let dest = h.path("out");
        for src in ["vault/z_file", "vault"] {
            let err = h
                .run::<Copy>(json!({"src": src, "dest": dest}), false, false)
                .await
                .expect_err("encrypted");
            // As Ansible's walk: a directory's files before its subdirectories'.
            let named = format!(
                "no vault secrets were found that could decrypt) on {}",
                vault.join("z_file").display()
            );
            let none_given = format!(
                "A vault password or secret must be specified to decrypt {}",
                vault.join("z_file").display()
            );
            let err = err.to_string();
            assert!(
                err.ends_with(&named) || err.ends_with(&none_given),
                "{src}: {err}"
            );
        }
        assert!(!Path::new(&dest).exists());
        let out = h
            .run::<Copy>(
                json!({"src": "vault/z_file", "dest": dest, "decrypt": false}),
                false,
                false,
            )
            .await
            .expect("decrypt: no copies the file as it is");
        assert!(out.changed);
    }

    fn reading<'a>(render: &'a crate::modules::testutil::TestRender) -> ReadCtx<'a> {
        ReadCtx {
            host: "h",
            check: false,
            diff: false,
            render,
            search: &[],
        }
    }

    #[test]
    fn decides_from_canned_reads_without_a_host() {
        let render = crate::modules::testutil::TestRender::new(json!({}));
        let ctx = reading(&render);
        let copy: Copy =
            serde_json::from_value(json!({"content": "x", "dest": "/etc/x", "mode": "0644"}))
                .expect("args");
        let Protocol::Declared(reads) = copy.reads(&ctx).expect("reads") else {
            panic!("copy declares its reads");
        };
        assert_eq!(reads.reads.len(), 1);
        assert_eq!(
            reads.reads[0].scope,
            crate::modules::Scope::Unlinked(vec![
                "/etc/x".into(),
                "/etc/x".into(),
                crate::modules::ScopePath {
                    path: "/etc".into(),
                    kind_only: true
                },
            ]),
            "dest is also read through links: its scope waits for the answer"
        );
        // The file, the file through links, its directory: as `_dr` prints them.
        let file = "@@ regular file|644|root|root|1|0|0|1|1|2049|0|0|0|2026-01-01 00:00:00.0 +0000|2026-01-01 00:00:00.0 +0000|2026-01-01 00:00:00.0 +0000\n";
        let dir = "@@ directory|755|root|root|4096|0|0|1|1|2049|0|0|0|2026-01-01 00:00:00.0 +0000|2026-01-01 00:00:00.0 +0000|2026-01-01 00:00:00.0 +0000\n";
        let same = format!("{file}@@sum 11f6ad8ec52a2984abaafd7c3b516503785c2072  -\n{file}{dir}");
        let decided = copy
            .decide(&crate::modules::reads::observed_stdout(&[&same]), &ctx)
            .expect("decides");
        assert!(matches!(decided, Decision::Plan(Plan::Unchanged(_))));
        let other = same.replace("11f6ad8e", "00000000");
        let Decision::Plan(Plan::Change { change, .. }) = copy
            .decide(&crate::modules::reads::observed_stdout(&[&other]), &ctx)
            .expect("decides")
        else {
            panic!("other content is a change");
        };
        assert_eq!(
            copy.touches(&change),
            Touched::Entries(vec!["/etc/x".into(), "/etc/x".into()]),
            "a regular file rewritten: nothing below it changes"
        );
    }

    /// copy target: `diff: yes` registered no `diff`; Ansible's copy
    /// registers a list of one diff per written file, `content` labelled
    /// with the destination, and none when nothing is written.
    #[tokio::test]
    async fn registered_diff_of_content_in_diff_mode() {
        let h = Harness::new();
        let dest = h.path("file.txt");
        let args = json!({"content": "Ansible managed\n", "dest": dest});
        let out = h.run::<Copy>(args.clone(), false, true).await.expect("run");
        assert_eq!(
            out.data["diff"],
            json!([{"before": "", "after": "Ansible managed\n", "after_header": dest}])
        );
        let again = h
            .run::<Copy>(args.clone(), false, true)
            .await
            .expect("again");
        assert!(!again.changed && again.data.get("diff").is_none());
        std::fs::write(&dest, "old\n").expect("write");
        let out = h
            .run::<Copy>(args.clone(), true, true)
            .await
            .expect("check");
        assert_eq!(out.data["diff"][0]["before_header"], json!(dest));
        assert_eq!(out.data["diff"][0]["before"], json!("old\n"));
        let plain = h
            .run::<Copy>(args, true, false)
            .await
            .expect("no diff mode");
        assert!(plain.changed && plain.data.get("diff").is_none());
    }

    /// copy target: `src: /dev/null` with `remote_src` was read as an empty
    /// file; Ansible refuses a source that is neither file nor directory.
    #[tokio::test]
    async fn remote_src_device_is_not_a_file() {
        let h = Harness::new();
        let dest = h.path("whocares");
        let args = json!({"src": "/dev/null", "dest": dest, "remote_src": true});
        let err = h
            .run::<Copy>(args, false, false)
            .await
            .expect_err("a device is refused");
        assert!(err.to_string().contains("not a file"), "{err}");
        assert!(!Path::new(&dest).exists());
    }
}
