//! `copy` with `remote_src` and a directory as `src`: a tree copied on the
//! host, as Ansible's copy module does it.
//!
//! Ansible's rules, which this keeps: `src` ending in `/` copies the
//! directory's contents into `dest`, otherwise the directory itself (as
//! `dest/<name>`); a `dest` ending in `/` is made first (with
//! `directory_mode`, owner and group). A tree whose destination is missing
//! is copied whole (directories and files keep the source's modes, links
//! stay links unless `local_follow`); one that exists is merged: missing
//! entries are copied, files whose content differs are replaced, nothing is
//! removed and existing directories keep their modes. `owner` and `group`
//! apply to the whole destination tree, `mode` only to the destination
//! reported as `dest`.
//!
//! Reads: the copy's one declared read (the source is a directory), then a
//! second that lists both trees (kinds, modes, owners, link targets and the
//! SHA-1 of each file) in one exec. Nothing else reaches the host until the
//! planned change is applied.

use std::collections::BTreeMap;
use std::path::Path;

use super::{join, single_reads, Copy, CopyChange, PlannedData, PlannedWrite};
use crate::modules::fs::{ensure_attrs, mkdirs_script, Attrs, FileKind, FileState, Mode};
use crate::modules::{Decision, ModuleError, Observed, Plan, ReadSet, Scope};
use crate::transport::{shell_quote, ExecOutput};
use crate::{Map, Value};

/// Names Python's `filecmp.dircmp` leaves out when Ansible merges a tree
/// into an existing one (a whole new tree still copies them).
const MERGE_IGNORES: &[&str] = &[
    "RCS",
    "CVS",
    "tags",
    ".git",
    ".hg",
    ".bzr",
    "_darcs",
    "__pycache__",
];

/// One tree as the listing read found it, by path relative to its root.
#[derive(Debug, Default)]
struct Listing {
    /// Was the root a directory (was anything listed)?
    present: bool,
    entries: BTreeMap<String, FileState>,
}

/// The script listing the tree at `root` under `tag` (`A` or `B`): one
/// NUL-separated record per entry, then the SHA-1 of every file (or link
/// to one), then `E`; `ERR` when something could not be read.
///
/// Without `follow`, a link that leads nowhere (dangling, or a loop such as
/// `invalid -> invalid`) is listed as the link it is, as Ansible's
/// `copytree(symlinks=True)` copies it: the files to hash are picked by
/// `[ -f ]`, which is false for such a link, rather than by find's
/// `-xtype f`, which fails on a loop ("Too many levels of symbolic links").
/// With `follow`, such a link cannot be copied and the listing fails, as
/// Ansible's copy does.
fn listing_script(root: &str, tag: char, follow: bool) -> String {
    let q = shell_quote(root);
    let (opt, hash) = if follow {
        ("-L ", "-type f -exec sha1sum -z -- {} +")
    } else {
        (
            "",
            "\\( -type f -o -type l \\) -exec sh -c \
             'for p do shift; [ -f \"$p\" ] && set -- \"$@\" \"$p\"; done; \
             [ $# -eq 0 ] || exec sha1sum -z -- \"$@\"' sh {} +",
        )
    };
    format!(
        "if [ -d {q} ]; then ( cd -- {q} && printf '{tag}\\0' && \
         find {opt}. -mindepth 1 -printf 'R\\0%y\\0%m\\0%U\\0%G\\0%u\\0%g\\0%s\\0%P\\0%l\\0' && \
         printf 'S\\0' && find {opt}. -mindepth 1 {hash} && \
         printf 'E\\0' ) || printf 'ERR\\0'; fi\n"
    )
}

/// The second read: the source tree (through links with `local_follow`)
/// and the destination tree (never through links).
fn listing_reads(src: &str, tree_dest: &str, follow: bool) -> ReadSet {
    let script = format!(
        "{}{}:",
        listing_script(src.trim_end_matches('/'), 'A', follow),
        listing_script(tree_dest, 'B', false)
    );
    // What it lists is everything under two roots, through links: any
    // write makes it stale.
    ReadSet::one(script, Scope::Host)
}

/// Parse what [`listing_reads`] printed: the source's listing, then the
/// destination's.
fn parse_listings(
    out: &ExecOutput,
    src: &str,
    tree_dest: &str,
) -> Result<(Listing, Listing), ModuleError> {
    let stderr = out.stderr_str();
    let bad = |what: &str| {
        ModuleError::failed(format!(
            "reading the trees {src} and {tree_dest} failed: {what} {}",
            stderr.trim()
        ))
    };
    let mut tokens = out
        .stdout
        .split(|b| *b == 0)
        .map(|t| String::from_utf8_lossy(t).into_owned());
    let mut lists = (Listing::default(), Listing::default());
    while let Some(tok) = tokens.next() {
        let (list, root) = match tok.as_str() {
            "A" => (&mut lists.0, src.trim_end_matches('/')),
            "B" => (&mut lists.1, tree_dest),
            "ERR" => return Err(bad("find or sha1sum failed:")),
            "" => continue,
            other => return Err(bad(&format!("unexpected {other:?}"))),
        };
        list.present = true;
        let mut sums: BTreeMap<String, String> = BTreeMap::new();
        loop {
            let tok = tokens.next().ok_or_else(|| bad("listing cut short"))?;
            match tok.as_str() {
                "R" => {
                    let mut f = Vec::with_capacity(9);
                    for _ in 0..9 {
                        f.push(tokens.next().ok_or_else(|| bad("record cut short"))?);
                    }
                    let rel = f[7].clone();
                    let state = FileState {
                        kind: match f[0].as_str() {
                            "f" => FileKind::File,
                            "d" => FileKind::Directory,
                            "l" => FileKind::Link,
                            _ => FileKind::Other,
                        },
                        mode: u32::from_str_radix(&f[1], 8).unwrap_or(0) & 0o7777,
                        uid: f[2].parse().unwrap_or(0),
                        gid: f[3].parse().unwrap_or(0),
                        owner: f[4].clone(),
                        group: f[5].clone(),
                        size: f[6].parse().unwrap_or(0),
                        link_target: (f[0] == "l").then(|| f[8].clone()),
                        ..FileState::missing(join(root, &rel))
                    };
                    list.entries.insert(rel, state);
                }
                "S" => {}
                "E" => break,
                "ERR" => return Err(bad("find or sha1sum failed:")),
                line => {
                    // `sha1sum -z`: "<hex>  ./<path>", names unescaped.
                    let (sum, name) = line
                        .split_once("  ./")
                        .ok_or_else(|| bad(&format!("unexpected {line:?}")))?;
                    sums.insert(name.to_string(), sum.to_string());
                }
            }
        }
        for (rel, sum) in sums {
            if let Some(e) = list.entries.get_mut(&rel) {
                e.checksum = Some(sum);
            }
        }
    }
    Ok(lists)
}

/// `chown -h` of `path` (a link itself, not what it points to) to what
/// `attrs` asks, when `state` differs; empty when nothing differs.
pub(super) fn chown_script(
    state: &FileState,
    attrs: &Attrs,
    path: &str,
) -> Result<String, ModuleError> {
    let Some(fix) = ensure_attrs(state, attrs)? else {
        return Ok(String::new());
    };
    if state.kind != FileKind::Link {
        return Ok(format!("{}\n", fix.script(path)));
    }
    let who = match (&attrs.owner, &attrs.group) {
        (Some(o), Some(g)) => format!("{}:{}", shell_quote(o), shell_quote(g)),
        (Some(o), None) => shell_quote(o),
        (None, Some(g)) => format!(":{}", shell_quote(g)),
        (None, None) => return Ok(String::new()),
    };
    Ok(format!("chown -h -- {who} {}\n", shell_quote(path)))
}

/// The work of one tree copy, built up entry by entry.
struct Work<'a> {
    src_root: &'a str,
    dest_root: &'a str,
    owner: Attrs,
    prepare: String,
    writes: Vec<PlannedWrite>,
}

impl Work<'_> {
    /// Copy the source entry `rel` (and, for a directory, all below it)
    /// where nothing is, as Python's `copytree` does.
    fn copy_new(&mut self, src: &Listing, rel: &str, e: &FileState) -> Result<(), ModuleError> {
        let to = join(self.dest_root, rel);
        match e.kind {
            FileKind::Directory => {
                let q = shell_quote(&to);
                self.prepare.push_str(&format!("mkdir -- {q}\n"));
                self.prepare
                    .push_str(&chown_script(&missing(&to), &self.owner, &to)?);
                self.prepare
                    .push_str(&format!("chmod -- 0{:04o} {q}\n", e.mode));
                let prefix = format!("{rel}/");
                let below: Vec<(&String, &FileState)> = src
                    .entries
                    .range(prefix.clone()..)
                    .take_while(|(k, _)| k.starts_with(&prefix))
                    .filter(|(k, _)| !k[prefix.len()..].contains('/'))
                    .collect();
                for (k, child) in below {
                    self.copy_new(src, k, child)?;
                }
            }
            FileKind::File => self.writes.push(PlannedWrite {
                path: to,
                data: PlannedData::Remote(join(self.src_root, rel)),
                attrs: Attrs {
                    mode: Some(Mode::Bits(e.mode)),
                    owner: self.owner.owner.clone(),
                    group: self.owner.group.clone(),
                },
                backup: false,
            }),
            FileKind::Link => {
                let target = e.link_target.clone().unwrap_or_default();
                if target.is_empty() {
                    return Err(ModuleError::failed(format!(
                        "{}: a broken symbolic link cannot be followed",
                        e.path
                    )));
                }
                self.prepare.push_str(&format!(
                    "ln -s -- {} {}\n",
                    shell_quote(&target),
                    shell_quote(&to)
                ));
                let mut link = missing(&to);
                link.kind = FileKind::Link;
                self.prepare
                    .push_str(&chown_script(&link, &self.owner, &to)?);
            }
            // Devices, fifos and sockets are not copied.
            FileKind::Other | FileKind::Missing => {}
        }
        Ok(())
    }

    /// Merge the source directory `rel` into the existing destination
    /// directory of the same name: Ansible's `copy_diff_files`,
    /// `copy_left_only` and `copy_common_dirs`.
    fn merge(&mut self, src: &Listing, dest: &Listing, rel: &str) -> Result<(), ModuleError> {
        let prefix = if rel.is_empty() {
            String::new()
        } else {
            format!("{rel}/")
        };
        let children: Vec<(&String, &FileState)> = src
            .entries
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter(|(k, _)| !k[prefix.len()..].contains('/'))
            .collect();
        for (k, e) in children {
            if MERGE_IGNORES.contains(&&k[prefix.len()..]) {
                continue;
            }
            let Some(d) = dest.entries.get(k) else {
                self.copy_new(src, k, e)?;
                continue;
            };
            match (e.kind, d.kind) {
                (FileKind::Directory, FileKind::Directory) => self.merge(src, dest, k)?,
                (FileKind::File, FileKind::File) if e.checksum != d.checksum => {
                    self.writes.push(PlannedWrite {
                        path: d.path.clone(),
                        data: PlannedData::Remote(join(self.src_root, k)),
                        attrs: Attrs {
                            mode: Some(Mode::Bits(e.mode)),
                            owner: self.owner.owner.clone(),
                            group: self.owner.group.clone(),
                        },
                        backup: false,
                    })
                }
                (FileKind::Link, FileKind::Link) if e.link_target != d.link_target => {
                    let q = shell_quote(&d.path);
                    self.prepare.push_str(&format!(
                        "rm -f -- {q} && ln -s -- {} {q}\n",
                        shell_quote(e.link_target.as_deref().unwrap_or_default())
                    ));
                }
                // A link to a file, over a file: compared and copied
                // through the link, the file keeping its mode.
                (FileKind::Link, FileKind::File)
                    if e.checksum.is_some() && e.checksum != d.checksum =>
                {
                    self.writes.push(PlannedWrite {
                        path: d.path.clone(),
                        data: PlannedData::Remote(join(self.src_root, k)),
                        attrs: self.owner.clone(),
                        backup: false,
                    })
                }
                // Same content, or a file over a directory and the like,
                // which Ansible leaves alone.
                _ => {}
            }
        }
        Ok(())
    }
}

/// A missing path's state, for attributes of what a copy makes: no owner
/// yet, so any wanted owner or group is a change.
fn missing(path: &str) -> FileState {
    FileState {
        uid: u32::MAX,
        gid: u32::MAX,
        ..FileState::missing(path.to_string())
    }
}

/// Decide a `remote_src` copy whose source is a directory; `None` when the
/// source is not one (the single-file copy decides it).
pub(super) fn decide(
    copy: &Copy,
    src: &str,
    observed: &Observed,
    diff: bool,
) -> Result<Option<Decision<CopyChange>>, ModuleError> {
    let basename = Path::new(src.trim_end_matches('/'))
        .file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string);
    let dest = copy.dest.as_str();
    let reads = single_reads(dest, basename.as_deref(), Some(src), copy.follow, diff);
    let out = reads.batch.parse_exec(observed.output(0)?)?;
    let states = &out.states;
    let i_src = reads
        .src
        .ok_or_else(|| ModuleError::failed("internal error: source not read"))?;
    let src_state = &states[i_src];
    if src_state.kind != FileKind::Directory {
        return Ok(None);
    }
    let name = basename.unwrap_or_default();
    let src_slash = src.ends_with('/');
    let dest_slash = dest.ends_with('/');
    let dest_trim = match dest.trim_end_matches('/') {
        "" => "/",
        d => d,
    };
    let owner = Attrs {
        mode: None,
        owner: copy.attrs.owner.clone(),
        group: copy.attrs.group.clone(),
    };
    let dest_state = &states[reads.dest];
    let dest_followed = &states[reads.dest_followed];
    let mut prepare = String::new();

    // A dest ending in `/` is made first, with directory_mode.
    let made_dest = dest_slash && !dest_followed.exists();
    if made_dest {
        if dest_state.exists() {
            return Err(ModuleError::failed(format!(
                "{dest} exists and is not a directory"
            )));
        }
        let dir_attrs = Attrs {
            mode: copy.directory_mode.clone(),
            ..owner.clone()
        };
        prepare.push_str(&mkdirs_script(dest_trim, &dir_attrs)?);
    }
    let dest_is_dir = made_dest || dest_followed.kind == FileKind::Directory;
    let missing_state = missing(dest_trim);

    // Where Ansible reports the copy (and sets `mode`), and where the tree goes.
    let (final_dest, final_state) = match (dest_is_dir, src_slash) {
        (true, true) => (join(dest, ""), dest_followed),
        (true, false) if made_dest => (join(dest, &name), &missing_state),
        (true, false) => {
            let i = reads
                .inner
                .ok_or_else(|| ModuleError::failed("internal error: dest/name not read"))?;
            (join(dest, &name), &states[i])
        }
        (false, _) => (dest.to_string(), dest_state),
    };
    let tree_dest = if src_slash {
        dest_trim.to_string()
    } else {
        join(dest_trim, &name)
    };
    if final_state.exists() && !copy.force {
        let mut data = Map::new();
        data.insert("msg".into(), "file already exists".into());
        data.insert("dest".into(), Value::from(final_dest));
        data.insert("src".into(), Value::from(src.to_string()));
        return Ok(Some(Decision::Plan(Plan::Unchanged(data))));
    }
    if final_state.exists() && final_state.kind != FileKind::Directory {
        return Err(ModuleError::failed(format!(
            "cannot copy the directory {src} over {final_dest}: it is not a directory"
        )));
    }
    if !dest_is_dir && !dest_state.exists() && states[reads.parent].kind != FileKind::Directory {
        return Err(ModuleError::failed(format!(
            "Destination directory {} does not exist",
            crate::modules::fs::parent_dir(dest)
        )));
    }
    let tree_exists = dest_is_dir && (src_slash || final_state.exists());

    let follow = copy.local_follow == Some(true);
    if observed.len() < 2 {
        return Ok(Some(Decision::Read(listing_reads(src, &tree_dest, follow))));
    }
    let (src_list, dest_list) = parse_listings(observed.output(1)?, src, &tree_dest)?;
    if !src_list.present {
        return Err(ModuleError::failed(format!("Source {src} not found")));
    }
    let src_root = src.trim_end_matches('/');
    let mut work = Work {
        src_root,
        dest_root: &tree_dest,
        owner: owner.clone(),
        prepare: String::new(),
        writes: Vec::new(),
    };
    if tree_exists {
        // A dest just made (ending in `/`) is merged into as well: it
        // keeps directory_mode.
        work.merge(&src_list, &dest_list, "")?;
        // Owner and group of the whole destination tree, as it is.
        if !made_dest {
            let root_state = if src_slash {
                dest_followed
            } else {
                final_state
            };
            work.prepare
                .push_str(&chown_script(root_state, &owner, &tree_dest)?);
        }
        for d in dest_list.entries.values() {
            work.prepare.push_str(&chown_script(d, &owner, &d.path)?);
        }
    } else {
        // copytree: parents as `makedirs` makes them, the top directory
        // with the source's mode, then everything below.
        work.prepare.push_str(&mkdirs_script(&tree_dest, &owner)?);
        work.prepare.push_str(&format!(
            "chmod -- 0{:04o} {}\n",
            src_state.mode,
            shell_quote(&tree_dest)
        ));
        let top: Vec<(&String, &FileState)> = src_list
            .entries
            .iter()
            .filter(|(k, _)| !k.contains('/'))
            .collect();
        for (k, e) in top {
            work.copy_new(&src_list, k, e)?;
        }
    }
    prepare.push_str(&work.prepare);
    let writes = work.writes;

    // `mode` (or `preserve`: the source directory's), owner and group of
    // the reported destination.
    let attrs = copy.attrs.with_source_mode(Some(src_state.mode));
    let final_fix_state = if final_state.exists() && !made_dest {
        final_state.clone()
    } else {
        missing(&final_dest)
    };
    if let Some(fix) = ensure_attrs(&final_fix_state, &attrs)? {
        prepare.push_str(&fix.script(&final_dest));
        prepare.push('\n');
    }

    let mut data = Map::new();
    data.insert("dest".into(), Value::from(final_dest.clone()));
    data.insert("src".into(), Value::from(src.to_string()));
    if prepare.is_empty() && writes.is_empty() {
        return Ok(Some(Decision::Plan(Plan::Unchanged(data))));
    }
    Ok(Some(Decision::Plan(Plan::Change {
        change: CopyChange {
            prepare,
            writes,
            validate: None,
            single: false,
            touched: vec![dest_trim.to_string(), tree_dest],
            entries_only: false,
        },
        // Ansible's module shows no diff of a tree copied on the host.
        diff: None,
        data,
    })))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{symlink, PermissionsExt};
    use std::path::Path;

    use serde_json::json;

    use super::Value;
    use crate::modules::copy::Copy;
    use crate::modules::testutil::{mode_of, Harness};
    use crate::modules::Outcome;

    /// A source tree: a file, an empty and a deeper directory, a link.
    fn tree(h: &Harness) -> String {
        let src = h.path("src");
        std::fs::create_dir_all(format!("{src}/sub/deep")).expect("mkdir");
        std::fs::create_dir_all(format!("{src}/empty")).expect("mkdir");
        std::fs::write(format!("{src}/file1"), "one\n").expect("write");
        std::fs::write(format!("{src}/sub/deep/file2"), "two\n").expect("write");
        std::fs::set_permissions(
            format!("{src}/sub/deep/file2"),
            std::fs::Permissions::from_mode(0o750),
        )
        .expect("chmod");
        std::fs::set_permissions(format!("{src}/sub"), std::fs::Permissions::from_mode(0o700))
            .expect("chmod");
        symlink("sub/deep/file2", format!("{src}/link2")).expect("symlink");
        src
    }

    /// copy target: "remote_src with a directory as src is not supported";
    /// Copy `args` in check mode (changed, nothing written at `dest`), then
    /// for real (changed); the real run's output.
    async fn check_then_copy(h: &Harness, args: &Value, dest: &str, diff: bool) -> Outcome {
        let out = h
            .run::<Copy>(args.clone(), true, diff)
            .await
            .expect("check");
        assert!(out.changed);
        assert!(!Path::new(dest).exists(), "check mode writes nothing");
        let out = h
            .run::<Copy>(args.clone(), false, false)
            .await
            .expect("run");
        assert!(out.changed);
        out
    }

    /// Ansible copies the contents (src ending in `/`) into a dest it makes.
    #[tokio::test]
    async fn remote_dir_contents_into_a_new_dest_then_unchanged() {
        let h = Harness::new();
        let src = tree(&h);
        let dest = h.path("out/");
        let args = json!({"src": format!("{src}/"), "dest": dest, "remote_src": true,
                          "directory_mode": "0750"});
        let out = check_then_copy(&h, &args, &dest, true).await;
        assert_eq!(out.data["dest"], json!(dest));
        assert_eq!(
            std::fs::read_to_string(format!("{dest}sub/deep/file2")).expect("read"),
            "two\n"
        );
        assert_eq!(
            mode_of(&dest),
            0o750,
            "a dest made first has directory_mode"
        );
        assert_eq!(
            mode_of(&format!("{dest}sub")),
            0o700,
            "directories keep modes"
        );
        assert_eq!(mode_of(&format!("{dest}sub/deep/file2")), 0o750);
        assert!(Path::new(&format!("{dest}empty")).is_dir());
        let link = std::fs::read_link(format!("{dest}link2")).expect("a link stays a link");
        assert_eq!(link, Path::new("sub/deep/file2"));
        h.take_execs();
        let out = h
            .run::<Copy>(args.clone(), false, true)
            .await
            .expect("again");
        assert!(!out.changed, "{:?}", out.data);
        assert_eq!(
            h.take_execs(),
            2,
            "converged: the copy's read and one listing"
        );
    }

    /// Without a trailing slash the directory itself goes into dest (made
    /// when missing); `local_follow: yes` copies what links point to.
    #[tokio::test]
    async fn remote_dir_itself_and_links_followed() {
        let h = Harness::new();
        let src = tree(&h);
        let dest = h.path("missing");
        let args = json!({"src": src, "dest": dest, "remote_src": true, "local_follow": true});
        let out = h
            .run::<Copy>(args.clone(), false, false)
            .await
            .expect("run");
        assert!(out.changed);
        let link = format!("{dest}/src/link2");
        assert!(!Path::new(&link).is_symlink(), "followed: a file");
        assert_eq!(std::fs::read_to_string(&link).expect("read"), "two\n");
        assert!(
            !h.run::<Copy>(args, false, false)
                .await
                .expect("again")
                .changed
        );
        // Into an existing dir: dest/src, reported as dest.
        let into = h.path("into");
        std::fs::create_dir(&into).expect("mkdir");
        let args = json!({"src": src, "dest": into, "remote_src": true});
        let out = h
            .run::<Copy>(args.clone(), false, false)
            .await
            .expect("run");
        assert_eq!(out.data["dest"], json!(format!("{into}/src")));
        assert!(Path::new(&format!("{into}/src/link2")).is_symlink());
        assert!(
            !h.run::<Copy>(args, false, false)
                .await
                .expect("again")
                .changed
        );
    }

    /// An existing tree is merged: new and changed files are copied, files
    /// only in dest stay, an existing directory keeps its mode.
    #[tokio::test]
    async fn remote_dir_merged_into_an_existing_tree() {
        let h = Harness::new();
        let src = tree(&h);
        let dest = h.path("dest");
        let args = json!({"src": format!("{src}/"), "dest": dest, "remote_src": true});
        h.run::<Copy>(args.clone(), false, false)
            .await
            .expect("run");
        std::fs::write(format!("{dest}/extra"), "mine\n").expect("write");
        std::fs::set_permissions(
            format!("{dest}/sub"),
            std::fs::Permissions::from_mode(0o755),
        )
        .expect("chmod");
        std::fs::write(format!("{src}/sub/deep/file2"), "two, edited\n").expect("write");
        std::fs::write(format!("{src}/sub/new"), "new\n").expect("write");
        // Python's dircmp leaves these names out of a merge, as Ansible does.
        std::fs::create_dir(format!("{src}/.git")).expect("mkdir");
        let out = h
            .run::<Copy>(args.clone(), true, false)
            .await
            .expect("check");
        assert!(out.changed);
        assert_eq!(
            std::fs::read_to_string(format!("{dest}/sub/deep/file2")).expect("read"),
            "two\n",
            "check mode writes nothing"
        );
        h.run::<Copy>(args.clone(), false, false)
            .await
            .expect("run");
        assert_eq!(
            std::fs::read_to_string(format!("{dest}/sub/deep/file2")).expect("read"),
            "two, edited\n"
        );
        assert!(Path::new(&format!("{dest}/sub/new")).is_file());
        assert!(Path::new(&format!("{dest}/extra")).is_file());
        assert!(!Path::new(&format!("{dest}/.git")).exists());
        assert_eq!(mode_of(&format!("{dest}/sub")), 0o755);
        assert!(
            !h.run::<Copy>(args, false, false)
                .await
                .expect("again")
                .changed
        );
    }

    /// force: no leaves an existing destination alone; a file in the way
    /// is an error, not a partial copy.
    #[tokio::test]
    async fn remote_dir_force_no_and_file_in_the_way() {
        let h = Harness::new();
        let src = tree(&h);
        let into = h.path("into");
        std::fs::create_dir_all(format!("{into}/src")).expect("mkdir");
        let out = h
            .run::<Copy>(
                json!({"src": src, "dest": into, "remote_src": true, "force": false}),
                false,
                false,
            )
            .await
            .expect("force no");
        assert!(!out.changed);
        assert!(!Path::new(&format!("{into}/src/file1")).exists());
        let file = h.path("file");
        std::fs::write(&file, "x").expect("write");
        let err = h
            .run::<Copy>(
                json!({"src": format!("{src}/"), "dest": file, "remote_src": true}),
                false,
                false,
            )
            .await
            .expect_err("a file is in the way");
        assert!(err.to_string().contains("not a directory"), "{err}");
    }

    /// Names with spaces, newlines and quotes travel NUL-separated.
    #[tokio::test]
    async fn remote_dir_with_odd_names() {
        let h = Harness::new();
        let src = h.path("odd");
        // The directory's name ends in "  .": its file's sha1sum line
        // holds "  ./" twice.
        let name = "a b\n'c\\  .";
        std::fs::create_dir_all(format!("{src}/{name}")).expect("mkdir");
        std::fs::write(format!("{src}/{name}/d"), "x\n").expect("write");
        let dest = h.path("odd_out");
        let args = json!({"src": format!("{src}/"), "dest": dest, "remote_src": true});
        assert!(
            h.run::<Copy>(args.clone(), false, false)
                .await
                .expect("run")
                .changed
        );
        assert_eq!(
            std::fs::read_to_string(format!("{dest}/{name}/d")).expect("read"),
            "x\n"
        );
        assert!(
            !h.run::<Copy>(args, false, false)
                .await
                .expect("again")
                .changed
        );
    }

    /// copy target: a tree holding a link to itself (`invalid -> invalid`)
    /// and a dangling one failed to list ("Too many levels of symbolic
    /// links"); Ansible copies them as the links they are.
    #[tokio::test]
    async fn remote_dir_with_a_link_loop_copies_it_as_a_link() {
        let h = Harness::new();
        let src = tree(&h);
        symlink("loop", format!("{src}/sub/loop")).expect("symlink");
        symlink("../nowhere", format!("{src}/sub/dangling")).expect("symlink");
        let dest = h.path("looped/");
        let args = json!({"src": format!("{src}/"), "dest": dest, "remote_src": true,
                          "follow": true});
        check_then_copy(&h, &args, &dest, false).await;
        for (name, target) in [("loop", "loop"), ("dangling", "../nowhere")] {
            let link = format!("{dest}sub/{name}");
            assert_eq!(
                std::fs::read_link(&link).expect("a link"),
                Path::new(target),
                "{name}"
            );
        }
        assert!(
            !h.run::<Copy>(args, true, false)
                .await
                .expect("again")
                .changed,
            "merged into itself: nothing to do"
        );
    }

    /// With `local_follow: yes` a link that leads nowhere cannot be copied:
    /// a clear failure, not a panic or a half-made tree.
    #[tokio::test]
    async fn remote_dir_followed_through_a_link_loop_fails() {
        let h = Harness::new();
        let src = tree(&h);
        symlink("loop", format!("{src}/loop")).expect("symlink");
        let dest = h.path("followed");
        let args = json!({"src": src, "dest": dest, "remote_src": true, "local_follow": true});
        let err = h
            .run::<Copy>(args, false, false)
            .await
            .expect_err("a loop cannot be followed");
        assert!(err.to_string().contains("symbolic links"), "{err}");
        assert!(!Path::new(&dest).exists());
    }
}
