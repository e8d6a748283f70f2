//! `unarchive`: unpack a tar (plain, gzip, bzip2, xz, zstd) or zip archive
//! into an existing directory on the host, as Ansible's module does it and
//! with its tools there: GNU tar's `--diff` and `unzip`/`zipinfo` say
//! whether the archive is already unpacked, then `tar --extract` or
//! `unzip -o` unpack it and mode/owner/group are set on what it holds.
//!
//! A local `src` travels with the first exec (as stdin, into a temporary
//! directory on the host), which also picks the handler and reads the
//! state; the second exec unpacks (when needed) and removes the temporary
//! copy: two round trips, converged or not. What tar would do cannot be
//! declared, so reads made before are forgotten after it (imperative).
//! As in Ansible, a tar archive in check mode is skipped (Ansible's tar
//! handler does not support check mode) and a zip archive is compared.

use async_trait::async_trait;
use serde::Deserialize;

use super::args::{bool_ish, opt_bool_ish, opt_string_ish, opt_strings_ish, path_ish, FileAttrs};
use super::fs::Mode;
use super::{Module, ModuleCtx, ModuleError, Plan, Protocol, ReadCtx};
use crate::transport::{shell_quote, StdinPart};
use crate::{Map, Value};

/// Arguments of `unarchive`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unarchive {
    /// The archive: a local file (searched in `files/`), or a path on the
    /// host with `remote_src`.
    #[serde(deserialize_with = "path_ish")]
    src: String,
    /// The existing directory to unpack into.
    #[serde(deserialize_with = "path_ish")]
    dest: String,
    /// `src` is on the host.
    #[serde(default, deserialize_with = "opt_bool_ish")]
    remote_src: Option<bool>,
    /// The old spelling of `remote_src: false` (`copy: no` is remote).
    #[serde(default, deserialize_with = "opt_bool_ish")]
    copy: Option<bool>,
    /// Do nothing when this path exists on the host.
    #[serde(default, deserialize_with = "opt_string_ish")]
    creates: Option<String>,
    /// Return the archive's entries as `files`.
    #[serde(default, deserialize_with = "bool_ish")]
    list_files: bool,
    /// Do not replace files newer than the archive's.
    #[serde(default, deserialize_with = "bool_ish")]
    keep_newer: bool,
    /// Entries not to unpack (shell patterns).
    #[serde(default, deserialize_with = "opt_strings_ish")]
    exclude: Option<Vec<String>>,
    /// The only entries to unpack.
    #[serde(default, deserialize_with = "opt_strings_ish")]
    include: Option<Vec<String>>,
    /// More options for tar or unzip.
    #[serde(default, deserialize_with = "opt_strings_ish")]
    extra_opts: Option<Vec<String>>,
    /// Mode, owner and group of every unpacked entry.
    #[serde(flatten)]
    attrs: FileAttrs,
    /// Check the server's certificate when `src` is a URL.
    #[serde(default, deserialize_with = "opt_bool_ish")]
    validate_certs: Option<bool>,
    /// Accepted: tar and unzip choose their buffers.
    #[serde(default, rename = "io_buffer_size")]
    _io_buffer_size: Option<Value>,
    /// Accepted: local sources are read as they are.
    #[serde(default, rename = "decrypt")]
    _decrypt: Option<Value>,
}

const HANDLER_TAR: &str = "tar";
const HANDLER_ZIP: &str = "zip";

/// The compression flags GNU tar is tried with, in Ansible's order, with
/// the handler names Ansible reports.
const TAR_FLAGS: &[(&str, &str)] = &[
    ("-z", "TgzArchive"),
    ("", "TarArchive"),
    ("-j", "TarBzipArchive"),
    ("-J", "TarXzArchive"),
    ("--use-compress-program=zstd", "TarZstdArchive"),
];

impl Unarchive {
    fn remote_src(&self) -> Result<bool, ModuleError> {
        match (self.copy, self.remote_src) {
            (Some(_), Some(_)) => Err(ModuleError::Args(
                "parameters are mutually exclusive: ('copy', 'remote_src')".into(),
            )),
            (Some(copy), None) => Ok(!copy),
            (None, r) => Ok(r.unwrap_or(false)),
        }
    }

    fn validate_certs(&self) -> bool {
        self.validate_certs.unwrap_or(true)
    }

    fn excludes(&self) -> Vec<String> {
        self.exclude
            .iter()
            .flatten()
            .map(|e| e.trim_end_matches('/').to_string())
            .collect()
    }

    fn includes(&self) -> &[String] {
        self.include.as_deref().unwrap_or_default()
    }

    fn opts(&self) -> &[String] {
        self.extra_opts.as_deref().unwrap_or_default()
    }
}

fn words(list: &[String]) -> String {
    list.iter()
        .map(|w| shell_quote(w))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The part of a tar command line after the operation, as Ansible builds
/// it for `--list`, `--diff` and `--extract` alike.
fn tar_args(u: &Unarchive, zflag: &str, with_attrs: bool) -> String {
    let mut a = String::from("-C \"$dest\"");
    if !zflag.is_empty() {
        a.push(' ');
        a.push_str(&shell_quote(zflag));
    }
    if !u.opts().is_empty() {
        a.push_str(" --show-transformed-names ");
        a.push_str(&words(u.opts()));
    }
    if with_attrs {
        if let Some(o) = &u.attrs.owner {
            a.push(' ');
            a.push_str(&shell_quote(&format!("--owner={o}")));
        }
        if let Some(g) = &u.attrs.group {
            a.push(' ');
            a.push_str(&shell_quote(&format!("--group={g}")));
        }
        if u.keep_newer {
            a.push_str(" --keep-newer-files");
        }
    }
    for e in u.excludes() {
        a.push(' ');
        a.push_str(&shell_quote(&format!("--exclude={e}")));
    }
    a.push_str(" -f \"$src\"");
    if !u.includes().is_empty() {
        a.push(' ');
        a.push_str(&words(u.includes()));
    }
    a
}

/// Where the archive the read script looks at comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Source {
    /// Sent from the control machine on stdin.
    Upload,
    /// A path on the host.
    Host,
    /// Downloaded on the host (curl's config, with the URL, on stdin).
    Url,
}

/// The file name a download keeps: the URL path's last part (Ansible
/// keeps its extension too), or `archive`.
fn download_name(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or_default();
    let last = path.rsplit('/').next().unwrap_or_default();
    if !last.is_empty()
        && last != "."
        && last != ".."
        && last
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-+".contains(&b))
    {
        last.to_string()
    } else {
        "archive".to_string()
    }
}

/// The first exec: put the archive in place (sent, or downloaded), check
/// `dest` and `src`, pick the handler and read what it needs to decide.
fn read_script(u: &Unarchive, source: Source, check: bool) -> String {
    let mut s = String::from("export LANG=C LC_ALL=C LC_MESSAGES=C LANGUAGE=C\n");
    s.push_str(&format!("dest={}\n", shell_quote(&u.dest)));
    let tmp = "t=$(mktemp -d \"${TMPDIR:-/tmp}/drover-unarchive.XXXXXXXX\") || exit 1; echo \"@@tmp $t\"\n";
    match source {
        Source::Upload => {
            s.push_str(tmp);
            s.push_str("src=\"$t/source\"; cat > \"$src\" || exit 1\n");
        }
        Source::Host => s.push_str(&format!("src={}\n", shell_quote(&u.src))),
        Source::Url => {
            // As Ansible's fetch_file: downloaded into a temporary file
            // before anything else, in check mode too. curl reads the URL
            // from its config on stdin, so it is on no command line.
            let insecure = if u.validate_certs() { "" } else { " -k" };
            s.push_str(tmp);
            s.push_str(&format!(
                "src=\"$t\"/{name}\n\
                 if command -v curl >/dev/null 2>&1; then\n\
                 \x20 e=$(curl -fsSL{insecure} --connect-timeout 10 -K - -o \"$src\" 2>&1) || {{ echo \"@@download-failed $(printf %s \"$e\" | tr '\\n' ' ')\"; exit 0; }}\n\
                 else echo '@@download-failed unarchive needs curl on the host to download a URL'; exit 0; fi\n",
                name = shell_quote(&download_name(&u.src)),
            ));
        }
    }
    s.push_str(
        "if [ ! -d \"$dest\" ]; then echo @@dest-not-dir; exit 0; fi\n\
         case $dest in /*) ;; *) dest=\"$PWD/$dest\"; echo \"@@absdest $dest\";; esac\n\
         case $src in /*) ;; *) src=\"$PWD/$src\";; esac\n\
         if [ ! -e \"$src\" ]; then echo @@src-missing; exit 0; fi\n\
         if [ ! -r \"$src\" ]; then echo @@src-unreadable; exit 0; fi\n\
         if [ ! -s \"$src\" ]; then echo @@src-empty; exit 0; fi\n\
         echo \"@@src $src\"\n\
         echo \"@@who $(id -un) $(id -gn) $(id -u) $(umask)\"\n",
    );
    // The zip side: each entry's zipinfo line, then what is at its path.
    let mut zip = String::from("zipinfo -T -s \"$src\"");
    if !u.excludes().is_empty() {
        zip.push_str(" -x ");
        zip.push_str(&words(&u.excludes()));
    }
    if !u.includes().is_empty() {
        zip.push(' ');
        zip.push_str(&words(u.includes()));
    }
    s.push_str(&format!(
        "if command -v unzip >/dev/null 2>&1 && command -v zipinfo >/dev/null 2>&1; then\n\
         if unzip -l \"$src\" >/dev/null 2>&1; then\n\
         echo '@@handler {HANDLER_ZIP} ZipArchive'; echo @@zipinfo\n\
         {zip} 2>/dev/null | while IFS= read -r line; do\n\
         \x20 echo \"Z $line\"\n\
         \x20 case $line in [-dl?][-rwxstah]*) ;; *) continue;; esac\n\
         \x20 p=$(printf '%s\\n' \"$line\" | sed 's/^[^ ]*  *[^ ]*  *[^ ]*  *[^ ]*  *[^ ]*  *[^ ]*  *[^ ]*  *//')\n\
         \x20 f=\"$dest/$p\"\n\
         \x20 if [ -L \"$f\" ] || [ -e \"$f\" ]; then\n\
         \x20   same=-\n\
         \x20   if [ -f \"$f\" ] && [ ! -L \"$f\" ]; then\n\
         \x20     if unzip -p \"$src\" \"$p\" 2>/dev/null | cmp -s - \"$f\"; then same=y; else same=n; fi\n\
         \x20   fi\n\
         \x20   echo \"S $(stat -c '%F|%s|%.9Y|%a|%U|%G' -- \"$f\")|$(date -d \"@$(stat -c %Y -- \"$f\")\" +%Y%m%d.%H%M%S)|$same\"\n\
         \x20 else echo S-; fi\n\
         done\n\
         exit 0\n\
         fi\n\
         echo \"@@reason Command \\\"$(command -v unzip)\\\" could not handle archive: not a zip file\"\n\
         else echo \"@@reason Unable to find required 'unzip' or 'zipinfo' binary in the path.\"; fi\n"
    ));
    if check {
        // Ansible's tar handler refuses check mode before it looks.
        s.push_str("echo @@tar-check; exit 0\n");
        return s;
    }
    s.push_str(
        "tar=$(command -v gtar || command -v tar)\n\
         if [ -z \"$tar\" ]; then echo \"@@reason Unable to find required 'gtar' or 'tar' binary in the path\"; exit 0; fi\n\
         if ! \"$tar\" --version 2>/dev/null | head -n 1 | grep -q GNU; then\n\
         \x20 echo \"@@reason Command \\\"$tar\\\" detected as tar type bsd. GNU tar required.\"; exit 0; fi\n\
         echo \"@@tar $tar\"\n",
    );
    for (flag, name) in TAR_FLAGS {
        let list = tar_args(u, flag, false);
        let diff = tar_args(u, flag, true);
        s.push_str(&format!(
            "if l=$(cd \"$dest\" && \"$tar\" --list {list} 2>/dev/null) && [ -n \"$l\" ]; then\n\
             \x20 echo '@@handler {HANDLER_TAR} {name} {flag}'; echo @@list; printf '%s\\n' \"$l\"\n\
             \x20 d=$(cd \"$dest\" && \"$tar\" --diff {diff} 2>&1)\n\
             \x20 echo @@diff; [ -z \"$d\" ] || printf '%s\\n' \"$d\"\n\
             \x20 exit 0\n\
             fi\n\
             e=$(cd \"$dest\" && \"$tar\" --list {list} 2>&1 >/dev/null | head -n 1)\n\
             echo \"@@reason Command \\\"$tar\\\" could not handle archive: Unable to list files in the archive: $e\"\n"
        ));
    }
    s
}

/// What the first exec found.
#[derive(Debug, Default)]
struct Read {
    tmp: Option<String>,
    /// `dest` made absolute, when it was relative.
    absdest: Option<String>,
    problem: Option<&'static str>,
    src: String,
    who: Who,
    handler: Option<String>,
    handler_name: String,
    zflag: String,
    tar_check: bool,
    reasons: Vec<String>,
    list: Vec<String>,
    diff: Vec<String>,
    zip: Vec<(String, Option<String>)>,
}

#[derive(Debug, Default, Clone)]
struct Who {
    user: String,
    group: String,
    uid: u32,
    umask: u32,
}

fn parse_read(out: &str) -> Read {
    let mut r = Read::default();
    let mut section = "";
    for line in out.lines() {
        if let Some(rest) = line.strip_prefix("@@") {
            let (key, val) = rest.split_once(' ').unwrap_or((rest, ""));
            match key {
                "tmp" => r.tmp = Some(val.to_string()),
                "absdest" => r.absdest = Some(val.to_string()),
                "dest-not-dir" => r.problem = Some("dest-not-dir"),
                "src-missing" => r.problem = Some("src-missing"),
                "src-unreadable" => r.problem = Some("src-unreadable"),
                "src-empty" => r.problem = Some("src-empty"),
                "download-failed" => {
                    r.problem = Some("download-failed");
                    r.reasons.push(val.to_string());
                }
                "src" => r.src = val.to_string(),
                "who" => {
                    let f: Vec<&str> = val.split_whitespace().collect();
                    r.who = Who {
                        user: f.first().unwrap_or(&"").to_string(),
                        group: f.get(1).unwrap_or(&"").to_string(),
                        uid: f.get(2).and_then(|u| u.parse().ok()).unwrap_or(0),
                        umask: f
                            .get(3)
                            .and_then(|m| u32::from_str_radix(m, 8).ok())
                            .unwrap_or(0o022),
                    }
                }
                "handler" => {
                    let mut f = val.splitn(3, ' ');
                    let h = f.next().unwrap_or("").to_string();
                    r.handler_name = f
                        .next()
                        .map(str::to_string)
                        .unwrap_or_else(|| "ZipArchive".to_string());
                    r.zflag = f.next().unwrap_or("").to_string();
                    r.handler = Some(h);
                }
                "tar-check" => r.tar_check = true,
                "reason" => r.reasons.push(val.to_string()),
                "list" | "diff" | "zipinfo" => section = key,
                _ => {}
            }
            continue;
        }
        match section {
            "list" => r.list.push(line.to_string()),
            "diff" => r.diff.push(line.to_string()),
            "zipinfo" => {
                if let Some(z) = line.strip_prefix("Z ") {
                    r.zip.push((z.to_string(), None));
                } else if let Some(st) = line.strip_prefix('S') {
                    if let Some(last) = r.zip.last_mut() {
                        last.1 = Some(st.trim_start().to_string());
                    }
                }
            }
            _ => {}
        }
    }
    r
}

/// The tar `--diff` lines that mean the archive is not unpacked, given the
/// attributes the task sets anyway (Ansible's list, in its order).
fn tar_differs(diff: &[String], u: &Unarchive, root: bool) -> bool {
    diff.iter().any(|line| {
        if line.ends_with(": : Warning: Cannot stat: No such file or directory") {
            return false;
        }
        (root && u.attrs.owner.is_none() && line.ends_with(": Uid differs"))
            || (root && u.attrs.group.is_none() && line.ends_with(": Gid differs"))
            || (u.attrs.mode.is_none() && line.ends_with(": Mode differs"))
            || line.ends_with(": Mod time differs")
            || line.ends_with(": Warning: Cannot stat: No such file or directory")
            || line.contains(": Invalid owner")
            || line.contains(": Invalid group")
            || line.ends_with(": Symlink differs")
            || line.ends_with(": Contents differ")
            || line.ends_with(": Size differs")
    })
}

/// A zip entry from `zipinfo -T -s`: type, permission string, size,
/// timestamp (`YYYYMMDD.HHMMSS`, local time) and path.
#[derive(Debug, PartialEq)]
struct ZipEntry {
    ztype: char,
    perms: String,
    size: u64,
    stamp: String,
    path: String,
}

fn zip_entry(line: &str) -> Option<ZipEntry> {
    // Seven blank-separated fields, then the path (which may hold blanks).
    let mut f = Vec::with_capacity(8);
    let mut rest = line;
    for _ in 0..7 {
        rest = rest.trim_start();
        let end = rest.find(char::is_whitespace)?;
        f.push(&rest[..end]);
        rest = &rest[end..];
    }
    f.push(rest.trim_start());
    let (perm, size, stamp, path) = (f[0], f[3], f[6], f[7]);
    if ![7, 8, 10].contains(&perm.len()) || stamp.len() != 15 || path.is_empty() {
        return None;
    }
    let mut chars = perm.chars();
    let ztype = chars.next()?;
    if !"dl-?".contains(ztype) || !chars.clone().all(|c| "rwxstah-".contains(c)) {
        return None;
    }
    Some(ZipEntry {
        ztype,
        perms: chars.collect(),
        size: size.parse().ok()?,
        stamp: stamp.to_string(),
        path: path.to_string(),
    })
}

/// Ansible's `_permstr_to_octal`: `rwxr-xr-x` → 0o755, minus `umask`.
fn permstr_to_octal(perms: &str, umask: u32) -> u32 {
    let mut mode = 0;
    for (i, c) in perms.chars().rev().enumerate().take(9) {
        if "rwxst".contains(c) {
            mode |= 1 << i;
        }
    }
    mode & !umask
}

/// Does a zip entry differ from what is on the host? (`stat` is
/// `type|size|mtime|mode|user|group|localstamp|same` or `-`: missing.)
fn zip_entry_differs(
    e: &ZipEntry,
    stat: &str,
    u: &Unarchive,
    who: &Who,
) -> Result<bool, ModuleError> {
    if stat == "-" {
        return Ok(true);
    }
    let f: Vec<&str> = stat.split('|').collect();
    if f.len() < 8 {
        return Ok(true);
    }
    let (kind, size, mtime, mode, user, group, stamp, same) =
        (f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7]);
    let is_dir = kind == "directory";
    let is_link = kind == "symbolic link";
    let is_reg = kind.starts_with("regular");
    let ftype = if e.path.ends_with('/') {
        'd'
    } else if e.ztype == 'l' {
        'L'
    } else {
        'f'
    };
    match ftype {
        'd' if !is_dir => return Ok(true),
        'f' if !is_reg => return Ok(true),
        'L' if !is_link => return Ok(true),
        _ => {}
    }
    let mut differs = false;
    if is_reg {
        let whole = !mtime.contains('.')
            || mtime
                .split('.')
                .nth(1)
                .is_some_and(|n| n.bytes().all(|b| b == b'0'));
        let stamp_ok = whole && stamp == e.stamp;
        if u.keep_newer {
            if stamp.as_bytes() < e.stamp.as_bytes() {
                differs = true;
            } else if stamp.as_bytes() > e.stamp.as_bytes() {
                return Ok(false);
            }
        } else if !stamp_ok {
            differs = true;
        }
        if size.parse::<u64>().ok() != Some(e.size) || same != "y" {
            differs = true;
        }
    }
    if ftype != 'L' {
        let (perms, umask) = match e.perms.len() {
            6 if e.path.ends_with('/') || e.perms == "rwx---" => {
                ("rwxrwxrwx".to_string(), who.umask)
            }
            6 => ("rw-rw-rw-".to_string(), who.umask),
            7 if e.perms == "rwxa---" => ("rwxrwxrwx".to_string(), who.umask),
            7 => ("rw-rw-rw-".to_string(), who.umask),
            _ => (e.perms.clone(), 0),
        };
        let current = u32::from_str_radix(mode, 8).unwrap_or(0);
        let want = match &u.attrs.mode {
            Some(super::args::ModeArg::Mode(m)) => m.resolve(current, is_dir)?,
            _ if e.ztype == '?' => permstr_to_octal(&perms, 0),
            _ => permstr_to_octal(&perms, umask),
        };
        if want != current {
            differs = true;
        }
    }
    let want_user = u.attrs.owner.clone().unwrap_or_else(|| who.user.clone());
    let want_group = u.attrs.group.clone().unwrap_or_else(|| who.group.clone());
    if user != want_user || group != want_group {
        differs = true;
    }
    Ok(differs)
}

/// What the second exec does.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    tmp: Option<String>,
    /// The absolute destination.
    dest: String,
    src: String,
    extract: Option<String>,
    /// The entries to give mode/owner/group (none: nothing asked).
    attr_files: Vec<String>,
    result: Map,
}

/// Set mode/owner/group on each unpacked entry and its top folder,
/// printing `@@attr` for each one that changed.
fn attrs_script(u: &Unarchive, dest: &str, files: &[String]) -> String {
    let mut s = String::new();
    let mut paths: Vec<String> = files.to_vec();
    for f in files {
        if let Some((top, _)) = f.split_once('/') {
            if !paths.iter().any(|p| p == top) {
                paths.push(top.to_string());
            }
        }
    }
    for p in paths {
        let f = shell_quote(&format!("{}/{}", dest.trim_end_matches('/'), p));
        s.push_str(&format!("b=$(stat -c '%a %U %G' -- {f} 2>/dev/null)\n"));
        if let Some(o) = &u.attrs.owner {
            s.push_str(&format!("chown -h -- {} {f} || exit 1\n", shell_quote(o)));
        }
        if let Some(g) = &u.attrs.group {
            s.push_str(&format!("chgrp -h -- {} {f} || exit 1\n", shell_quote(g)));
        }
        if let Some(super::args::ModeArg::Mode(m)) = &u.attrs.mode {
            let m = match m {
                Mode::Bits(b) => format!("{b:o}"),
                Mode::Symbolic(s) => s.clone(),
            };
            s.push_str(&format!(
                "[ -L {f} ] || chmod -- {} {f} || exit 1\n",
                shell_quote(&m)
            ));
        }
        s.push_str(&format!(
            "[ \"$b\" = \"$(stat -c '%a %U %G' -- {f} 2>/dev/null)\" ] || echo @@attr\n"
        ));
    }
    s
}

async fn cleanup(ctx: &ModuleCtx<'_>, tmp: &Option<String>) {
    if let Some(t) = tmp {
        let _ = ctx
            .remote
            .exec(&format!("rm -rf {}", shell_quote(t)), b"")
            .await;
    }
}

#[async_trait]
impl Module for Unarchive {
    const NAME: &'static str = "unarchive";
    const ARGS: &'static [&'static str] = &[
        "src",
        "dest",
        "remote_src",
        "copy",
        "creates",
        "list_files",
        "keep_newer",
        "exclude",
        "include",
        "extra_opts",
        "validate_certs",
        "io_buffer_size",
        "decrypt",
        "mode",
        "owner",
        "group",
    ];
    const PENDING: &'static [&'static str] = &[
        "seuser",
        "serole",
        "setype",
        "selevel",
        "attributes",
        "unsafe_writes",
    ];
    type Change = Change;

    fn validate(&self) -> Result<(), super::ArgError> {
        self.remote_src().map_err(|e| e.to_string())?;
        if self.exclude.as_ref().is_some_and(|e| !e.is_empty())
            && self.include.as_ref().is_some_and(|i| !i.is_empty())
        {
            return Err("parameters are mutually exclusive: include|exclude".into());
        }
        Ok(())
    }

    fn reads(&self, _ctx: &ReadCtx<'_>) -> Result<Protocol, ModuleError> {
        Ok(Protocol::Imperative)
    }

    fn host_paths(args: &Map) -> &'static [&'static str] {
        let remote = args
            .get("remote_src")
            .and_then(super::args::parse_bool)
            .or_else(|| {
                args.get("copy")
                    .and_then(super::args::parse_bool)
                    .map(|c| !c)
            })
            .unwrap_or(false);
        if remote {
            &["src", "dest", "creates"]
        } else {
            &["dest", "creates"]
        }
    }

    async fn run_imperative(&self, ctx: &ModuleCtx<'_>) -> Result<Plan<Change>, ModuleError> {
        let remote_src = self.remote_src()?;
        if let Some(c) = &self.creates {
            let out = ctx
                .remote
                .exec(
                    &format!("[ -e {0} ] || [ -L {0} ] && echo @@exists", shell_quote(c)),
                    b"",
                )
                .await?;
            if out.stdout_str().contains("@@exists") {
                let mut data = Map::new();
                data.insert("skipped".into(), Value::Bool(true));
                data.insert(
                    "msg".into(),
                    Value::from(format!("skipped, since {c} exists")),
                );
                return Ok(Plan::Unchanged(data));
            }
        }
        if self.src.contains("://") && !remote_src {
            return Err(ModuleError::failed(format!(
                "Unsupported option, an URI src ({}) is only supported when remote_src is True",
                self.src
            )));
        }
        let source = if self.src.contains("://") {
            Source::Url
        } else if remote_src {
            Source::Host
        } else {
            Source::Upload
        };
        let script = read_script(self, source, ctx.check);
        let out = match source {
            Source::Url => {
                let config = format!("url = {}\n", super::get_url::curl_quote(&self.src));
                ctx.remote.exec(&script, config.as_bytes()).await?
            }
            Source::Host => ctx.remote.exec(&script, b"").await?,
            Source::Upload => {
                let local = ctx.find_local(&self.src)?;
                let len = std::fs::metadata(&local)
                    .map_err(|e| {
                        ModuleError::failed(format!("Could not read {}: {e}", local.display()))
                    })?
                    .len();
                ctx.remote
                    .exec_parts(
                        &script,
                        &[StdinPart::File {
                            path: &local,
                            len,
                            sha1: None,
                        }],
                    )
                    .await?
            }
        };
        let read = parse_read(&out.stdout_str());
        let tmp = read.tmp.clone();
        let shown_src = if remote_src {
            self.src.clone()
        } else {
            read.src.clone()
        };
        let problem = match read.problem {
            Some("dest-not-dir") => Some(format!("dest '{}' must be an existing dir", self.dest)),
            Some("src-missing") if remote_src => {
                Some(format!("Source '{}' does not exist", self.src))
            }
            Some("src-missing") => Some(format!("Source '{}' failed to transfer", self.src)),
            Some("src-unreadable") => Some(format!("Source '{shown_src}' not readable")),
            Some("download-failed") => Some(format!(
                "Failure downloading {}, {}",
                self.src,
                read.reasons.join(" ").trim()
            )),
            Some(_) => Some(format!(
                "Invalid archive '{shown_src}', the file is 0 bytes"
            )),
            None if out.status != 0 => Some(format!(
                "reading the archive on the host failed: {}",
                out.stderr_str().trim()
            )),
            None => None,
        };
        if let Some(msg) = problem {
            cleanup(ctx, &tmp).await;
            return Err(ModuleError::failed(msg));
        }
        let mut result = Map::new();
        result.insert("dest".into(), Value::from(self.dest.clone()));
        if let Some(abs) = &read.absdest {
            result.insert(
                "warnings".into(),
                Value::Array(vec![Value::from(format!(
                    "Relative destination path '{}' was resolved to absolute path '{abs}'.",
                    self.dest
                ))]),
            );
        }
        result.insert("src".into(), Value::from(shown_src.clone()));
        if read.tar_check {
            cleanup(ctx, &tmp).await;
            let mut data = Map::new();
            data.insert("skipped".into(), Value::Bool(true));
            data.insert(
                "msg".into(),
                Value::from(
                    "remote module (unarchive) does not support check mode when using gtar",
                ),
            );
            return Ok(Plan::Unchanged(data));
        }
        let Some(handler) = read.handler.clone() else {
            cleanup(ctx, &tmp).await;
            return Err(ModuleError::failed(format!(
                "Failed to find handler for \"{shown_src}\". Make sure the required command to extract the file is installed.\n{}",
                read.reasons.join("\n")
            )));
        };
        let root = read.who.uid == 0;
        let (unarchived, files, extract) = if handler == HANDLER_ZIP {
            let mut files = Vec::new();
            let mut differs = false;
            for (line, stat) in &read.zip {
                let Some(e) = zip_entry(line) else { continue };
                files.push(e.path.clone());
                if self.excludes().contains(&e.path) {
                    continue;
                }
                if zip_entry_differs(&e, stat.as_deref().unwrap_or("-"), self, &read.who)? {
                    differs = true;
                }
            }
            let mut cmd = String::from("unzip -o");
            if !self.opts().is_empty() {
                cmd.push(' ');
                cmd.push_str(&words(self.opts()));
            }
            cmd.push_str(" \"$src\"");
            if !self.excludes().is_empty() {
                cmd.push_str(" -x ");
                cmd.push_str(&words(&self.excludes()));
            }
            if !self.includes().is_empty() {
                cmd.push(' ');
                cmd.push_str(&words(self.includes()));
            }
            cmd.push_str(" -d \"$dest\"");
            (!differs, files, cmd)
        } else {
            let files: Vec<String> = read
                .list
                .iter()
                .map(|f| unescape_tar(f).trim_start_matches('/').to_string())
                .filter(|f| !self.excludes().iter().any(|e| glob_match(e, f)))
                .collect();
            let tar = format!(
                "cd \"$dest\" && \"$(command -v gtar || command -v tar)\" --extract {}",
                tar_args(self, &read.zflag, true)
            );
            (!tar_differs(&read.diff, self, root), files, tar)
        };
        result.insert("handler".into(), Value::from(read.handler_name.clone()));
        if self.list_files {
            result.insert(
                "files".into(),
                Value::Array(files.iter().cloned().map(Value::from).collect()),
            );
        }
        if ctx.check {
            cleanup(ctx, &tmp).await;
            return Ok(if unarchived {
                Plan::Unchanged(result)
            } else {
                Plan::Change {
                    change: Change {
                        tmp: None,
                        dest: self.dest.clone(),
                        src: shown_src,
                        extract: None,
                        attr_files: Vec::new(),
                        result: Map::new(),
                    },
                    diff: None,
                    data: result,
                }
            });
        }
        let attr_files = if self.attrs.attrs().is_empty() {
            Vec::new()
        } else {
            files
        };
        // Unpacked or not, the attribute pass decides the rest in apply.
        Ok(Plan::Run(Change {
            tmp,
            dest: read.absdest.clone().unwrap_or_else(|| self.dest.clone()),
            src: read.src.clone(),
            extract: (!unarchived).then_some(extract),
            attr_files,
            result,
        }))
    }

    async fn apply(&self, ctx: &ModuleCtx<'_>, change: Change) -> Result<Map, ModuleError> {
        let mut result = change.result;
        let mut script = String::from("export LANG=C LC_ALL=C LC_MESSAGES=C LANGUAGE=C\n");
        script.push_str(&format!(
            "dest={}; src={}\n",
            shell_quote(&change.dest),
            shell_quote(&change.src)
        ));
        if let Some(cmd) = &change.extract {
            script.push_str(&format!(
                "x=$( ( {cmd} ) 2>&1 ); rc=$?\n\
                 echo \"@@rc $rc\"; echo @@out; [ -z \"$x\" ] || printf '%s\\n' \"$x\"; echo @@end\n\
                 if [ \"$rc\" != 0 ]; then {cleanup}exit 0; fi\n",
                cleanup = change.tmp.as_ref().map(|t| format!("rm -rf {}; ", shell_quote(t))).unwrap_or_default()
            ));
        }
        if !change.attr_files.is_empty() {
            script.push_str("(\n");
            script.push_str(&attrs_script(self, &change.dest, &change.attr_files));
            script.push_str(") || echo @@attr-failed\n");
        }
        if let Some(t) = &change.tmp {
            script.push_str(&format!("rm -rf {}\n", shell_quote(t)));
        }
        let out = ctx.remote.exec(&script, b"").await?;
        let text = out.stdout_str();
        let mut changed = false;
        if let Some(cmd) = &change.extract {
            let rc: i64 = text
                .lines()
                .find_map(|l| l.strip_prefix("@@rc "))
                .and_then(|r| r.trim().parse().ok())
                .unwrap_or(-1);
            let body: String = text
                .split("@@out\n")
                .nth(1)
                .and_then(|r| r.split("@@end").next())
                .unwrap_or("")
                .to_string();
            // The command as run, with the real paths in place of the
            // script's variables.
            let shown = cmd
                .replace(
                    "cd \"$dest\" && \"$(command -v gtar || command -v tar)\"",
                    "tar",
                )
                .replace("\"$dest\"", &shell_quote(&change.dest))
                .replace("\"$src\"", &shell_quote(&change.src));
            let mut x = Map::new();
            x.insert("cmd".into(), Value::from(shown));
            x.insert("rc".into(), Value::from(rc));
            x.insert("out".into(), Value::from(body.clone()));
            x.insert("err".into(), Value::from(""));
            result.insert("extract_results".into(), Value::Object(x));
            if rc != 0 {
                return Err(ModuleError::Failed {
                    msg: format!("failed to unpack {} to {}", change.src, self.dest),
                    data: result,
                });
            }
            changed = true;
        }
        if text.contains("@@attr-failed") {
            return Err(ModuleError::Failed {
                msg: "Unexpected error when accessing exploded file.".into(),
                data: result,
            });
        }
        if text.contains("@@attr") {
            changed = true;
        }
        result.insert("changed".into(), Value::Bool(changed));
        Ok(result)
    }
}

/// A name as GNU tar lists it, its escapes decoded (`\303\244` is `ä`), as
/// Ansible decodes them (`codecs.escape_decode`).
fn unescape_tar(name: &str) -> String {
    let b = name.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' || i + 1 >= b.len() {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let octal = b[i + 1..]
            .iter()
            .take(3)
            .take_while(|c| (b'0'..=b'7').contains(c))
            .count();
        if octal > 0 {
            let v = b[i + 1..i + 1 + octal]
                .iter()
                .fold(0u32, |v, c| v * 8 + u32::from(c - b'0'));
            out.push((v & 0xFF) as u8);
            i += 1 + octal;
            continue;
        }
        out.push(match b[i + 1] {
            b'n' => b'\n',
            b't' => b'\t',
            b'r' => b'\r',
            b'a' => 0x07,
            b'b' => 0x08,
            b'f' => 0x0C,
            b'v' => 0x0B,
            other => other,
        });
        i += 2;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Python's `fnmatch`: `*`, `?` and `[...]` over the whole name.
fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).any(|i| go(&p[1..], &n[i..])),
            Some('?') => !n.is_empty() && go(&p[1..], &n[1..]),
            Some('[') => {
                let Some(end) = p.iter().skip(1).position(|c| *c == ']').map(|e| e + 1) else {
                    return !n.is_empty() && n[0] == '[' && go(&p[1..], &n[1..]);
                };
                let Some(c) = n.first() else { return false };
                let set = &p[1..end];
                let (neg, set) = match set.first() {
                    Some('!') => (true, &set[1..]),
                    _ => (false, set),
                };
                let mut hit = false;
                let mut i = 0;
                while i < set.len() {
                    if i + 2 < set.len() && set[i + 1] == '-' {
                        hit |= set[i] <= *c && *c <= set[i + 2];
                        i += 3;
                    } else {
                        hit |= set[i] == *c;
                        i += 1;
                    }
                }
                hit != neg && go(&p[end + 1..], &n[1..])
            }
            Some(c) => n.first() == Some(c) && go(&p[1..], &n[1..]),
        }
    }
    go(&p, &n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downloads_keep_the_url_file_name_when_it_is_plain() {
        assert_eq!(
            download_name("https://h/a/helm-v3.tar.gz?x=1"),
            "helm-v3.tar.gz"
        );
        assert_eq!(download_name("https://h/a/"), "archive");
        assert_eq!(download_name("https://h/a/b c;.zip"), "archive");
        assert_eq!(download_name("https://h/.."), "archive");
        let u: Unarchive = serde_json::from_value(serde_json::json!({
            "src": "https://h/x.tgz", "dest": "/srv", "remote_src": true, "validate_certs": "no"
        }))
        .expect("args");
        let s = read_script(&u, Source::Url, false);
        assert!(
            s.contains("curl -fsSL -k --connect-timeout 10 -K - -o"),
            "{s}"
        );
        assert!(
            !s.contains("https://h"),
            "the URL stays off the command line: {s}"
        );
    }

    #[test]
    fn zipinfo_lines_parse_as_ansible_reads_them() {
        let e = zip_entry("-rw-r--r--  3.0 unx       12 tx defN 20170511.153000 foo bar.txt")
            .expect("entry");
        assert_eq!(e.ztype, '-');
        assert_eq!(e.perms, "rw-r--r--");
        assert_eq!(e.size, 12);
        assert_eq!(e.stamp, "20170511.153000");
        assert_eq!(e.path, "foo bar.txt");
        assert!(zip_entry("Archive:  x.zip").is_none());
        assert!(zip_entry("2 files, 24 bytes uncompressed, 20 bytes compressed:  16.7%").is_none());
    }

    #[test]
    fn permission_strings_become_modes() {
        assert_eq!(permstr_to_octal("rwxr-xr-x", 0), 0o755);
        assert_eq!(permstr_to_octal("rw-rw-rw-", 0o022), 0o644);
    }

    #[test]
    fn tar_diff_lines_that_matter() {
        let u: Unarchive =
            serde_json::from_value(serde_json::json!({"src": "a.tgz", "dest": "/d"}))
                .expect("args");
        let d = |l: &str| tar_differs(&[l.to_string()], &u, true);
        assert!(d("foo: Mod time differs"));
        assert!(d("foo: Warning: Cannot stat: No such file or directory"));
        assert!(!d("foo: : Warning: Cannot stat: No such file or directory"));
        assert!(d("foo: Mode differs"));
        let with_mode: Unarchive = serde_json::from_value(
            serde_json::json!({"src": "a.tgz", "dest": "/d", "mode": "0600"}),
        )
        .expect("args");
        assert!(!tar_differs(
            &["foo: Mode differs".into()],
            &with_mode,
            true
        ));
        assert!(!d("something else entirely"));
    }

    #[test]
    fn tar_listing_escapes_are_decoded() {
        assert_eq!(unescape_tar("caf\\303\\251.txt"), "café.txt");
        assert_eq!(unescape_tar("a\\\\b"), "a\\b");
        assert_eq!(unescape_tar("tab\\there"), "tab\there");
    }

    #[test]
    fn fnmatch_like_python() {
        assert!(glob_match("*.txt", "a/b.txt"));
        assert!(glob_match("ex?lude", "exclude"));
        assert!(glob_match("[a-c]x", "bx"));
        assert!(!glob_match("[!a-c]x", "bx"));
        assert!(!glob_match("a", "ab"));
    }
}
