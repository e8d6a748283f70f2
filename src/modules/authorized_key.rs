//! `authorized_key`: add or remove SSH public keys in a user's
//! `authorized_keys`. Keys are the same key when their type and base64 blob
//! are; options and comment are then brought in line.
//!
//! One exec looks the user up (`getent passwd`) and reads the `.ssh`
//! directory and the key file under the home it found; one exec writes the
//! file (mode 0600, owned by the user) and fixes the directory.

use async_trait::async_trait;
use serde::Deserialize;

use super::args::{bool_ish, opt_string_ish, yes};
use super::fs::{
    content_for_diff, ensure_attrs, mkdirs_script, parent_dir, write_files, Attrs, FileKind,
    FileWrite, Mode, Read, ReadBatch, WriteSource,
};
use super::safe;
use super::{
    Decision, Diff, Module, ModuleCtx, ModuleError, Observed, Plan, Protocol, ReadCtx, ReadSet,
    Touched,
};
use crate::transport::shell_quote;
use crate::{Map, Value};

/// Whether the keys should be in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Add the keys (or bring their options and comment in line).
    #[default]
    Present,
    /// Remove the keys.
    Absent,
}

/// Arguments of `authorized_key`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizedKey {
    /// The user whose keys these are.
    #[serde(deserialize_with = "super::args::string_ish")]
    user: String,
    /// One or more public keys, one per line (blank and `#` lines skipped).
    key: String,
    /// Key file; default `~user/.ssh/authorized_keys`.
    #[serde(default)]
    path: Option<String>,
    /// Create the key file's directory and keep it 0700, owned by the user.
    #[serde(default = "yes", deserialize_with = "bool_ish")]
    manage_dir: bool,
    /// `present` or `absent`.
    #[serde(default)]
    state: KeyState,
    /// Options put before each key (`no-pty,from="10.0.0.0/8"`).
    #[serde(default, deserialize_with = "opt_string_ish")]
    key_options: Option<String>,
    /// Remove every other key from the file.
    #[serde(default, deserialize_with = "bool_ish")]
    exclusive: bool,
    /// Comment for the keys; without it an existing comment is kept.
    #[serde(default, deserialize_with = "opt_string_ish")]
    comment: Option<String>,
    /// Write through a symlinked key file instead of replacing it.
    #[serde(default, deserialize_with = "bool_ish")]
    follow: bool,
    /// Accepted for compatibility (keys from URLs are not supported).
    #[serde(default = "yes", deserialize_with = "bool_ish")]
    #[allow(dead_code)]
    validate_certs: bool,
}

/// What `apply` does: prepare the directory, write the file.
pub struct KeyChange {
    prepare: String,
    write: Option<(String, Vec<u8>, Attrs)>,
    /// The key directory and file.
    touched: Vec<String>,
}

const KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ssh-dss",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "ssh-ed25519-cert-v01@openssh.com",
    "ssh-rsa-cert-v01@openssh.com",
    "ssh-dss-cert-v01@openssh.com",
    "ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "ecdsa-sha2-nistp384-cert-v01@openssh.com",
    "ecdsa-sha2-nistp521-cert-v01@openssh.com",
    "sk-ssh-ed25519-cert-v01@openssh.com",
    "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
];

/// One key line of an authorized_keys file.
#[derive(Debug, Clone, PartialEq)]
struct KeyLine {
    /// Options as written before the type (empty: none).
    options: String,
    ktype: String,
    blob: String,
    comment: String,
}

impl KeyLine {
    fn id(&self) -> (&str, &str) {
        (&self.ktype, &self.blob)
    }

    fn render(&self) -> String {
        let mut s = String::new();
        if !self.options.is_empty() {
            s.push_str(&self.options);
            s.push(' ');
        }
        s.push_str(&self.ktype);
        s.push(' ');
        s.push_str(&self.blob);
        if !self.comment.is_empty() {
            s.push(' ');
            s.push_str(&self.comment);
        }
        s
    }
}

/// Parse a key line: `[options] type blob [comment]`. `None` for comments,
/// blank and unparseable lines.
fn parse_key(line: &str) -> Option<KeyLine> {
    let line = line.trim().replace(r"\#", "#");
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    // Token spans, so that options and comment keep their own spacing.
    let mut spans = Vec::new();
    let mut start = None;
    for (i, c) in line.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                spans.push((s, i));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        spans.push((s, line.len()));
    }
    let t = spans
        .iter()
        .position(|&(a, b)| KEY_TYPES.contains(&&line[a..b]))?;
    let &(blob_a, blob_b) = spans.get(t + 1)?;
    let (type_a, type_b) = spans[t];
    Some(KeyLine {
        options: normalize_options(line[..type_a].trim()),
        ktype: line[type_a..type_b].to_string(),
        blob: line[blob_a..blob_b].to_string(),
        comment: line[blob_b..].trim().to_string(),
    })
}

/// Options split at commas outside double quotes and joined again, so that
/// `a, b` and `a,b` compare equal.
fn normalize_options(options: &str) -> String {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in options.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ',' if !quoted => parts.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    parts.push(cur);
    parts
        .iter()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(",")
}

/// The wanted form of a key: options always, comment when one is known.
struct Wanted {
    line: KeyLine,
    comment: Option<String>,
}

/// A line of the existing file.
enum Line {
    Key(KeyLine),
    Other(String),
}

impl AuthorizedKey {
    fn wanted(&self) -> Result<Vec<Wanted>, ModuleError> {
        if self.key.trim_start().starts_with("http") {
            return Err(ModuleError::Args(
                "keys from URLs are not supported: pass the key text (e.g. with a file lookup)"
                    .into(),
            ));
        }
        safe::name("user", &self.user)?;
        // One key per line: a line break here would add a key line.
        if let Some(o) = &self.key_options {
            safe::one_line("key_options", o)?;
        }
        if let Some(c) = &self.comment {
            safe::one_line("comment", c)?;
        }
        let options = self.key_options.as_deref().map(normalize_options);
        let mut out = Vec::new();
        for raw in self.key.lines() {
            let raw = raw.trim();
            if raw.is_empty() || raw.starts_with('#') {
                continue;
            }
            let mut line = parse_key(raw)
                .ok_or_else(|| ModuleError::failed(format!("invalid key specified: {raw}")))?;
            if let Some(o) = &options {
                line.options = o.clone();
            }
            let comment = match &self.comment {
                Some(c) => Some(c.clone()),
                None if line.comment.is_empty() => None,
                None => Some(line.comment.clone()),
            };
            if let Some(c) = &comment {
                line.comment = c.clone();
            }
            out.push(Wanted { line, comment });
        }
        Ok(out)
    }

    /// The new file content, or `None` when the keys already are as wanted.
    fn edit(&self, existing: &str, wanted: &[Wanted]) -> Option<String> {
        let mut lines: Vec<Line> = existing
            .lines()
            .map(|l| match parse_key(l) {
                Some(k) => Line::Key(k),
                None => Line::Other(l.to_string()),
            })
            .collect();
        let mut changed = false;
        match self.state {
            KeyState::Absent => {
                let before = lines.len();
                lines.retain(|l| match l {
                    Line::Key(k) => !wanted.iter().any(|w| w.line.id() == k.id()),
                    Line::Other(_) => true,
                });
                changed = lines.len() != before;
            }
            KeyState::Present => {
                for w in wanted {
                    let found = lines.iter_mut().find_map(|l| match l {
                        Line::Key(k) if k.id() == w.line.id() => Some(k),
                        _ => None,
                    });
                    match found {
                        Some(k) => {
                            let mut new = w.line.clone();
                            if w.comment.is_none() {
                                new.comment = k.comment.clone();
                            }
                            if *k != new {
                                *k = new;
                                changed = true;
                            }
                        }
                        None => {
                            lines.push(Line::Key(w.line.clone()));
                            changed = true;
                        }
                    }
                }
                if self.exclusive {
                    let mut seen: Vec<(String, String)> = Vec::new();
                    let before = lines.len();
                    lines.retain(|l| match l {
                        Line::Key(k) => {
                            let id = (k.ktype.clone(), k.blob.clone());
                            let keep =
                                wanted.iter().any(|w| w.line.id() == k.id()) && !seen.contains(&id);
                            seen.push(id);
                            keep
                        }
                        Line::Other(_) => false,
                    });
                    changed |= lines.len() != before;
                }
            }
        }
        if !changed {
            return None;
        }
        let mut text = String::new();
        for l in &lines {
            match l {
                Line::Key(k) => text.push_str(&k.render()),
                Line::Other(o) => text.push_str(o),
            }
            text.push('\n');
        }
        Some(text)
    }
}

#[async_trait]
impl Module for AuthorizedKey {
    const NAME: &'static str = "authorized_key";
    const ARGS: &'static [&'static str] = &[
        "user",
        "key",
        "path",
        "manage_dir",
        "state",
        "key_options",
        "exclusive",
        "comment",
        "follow",
        "validate_certs",
    ];
    type Change = KeyChange;

    fn reads(&self, _ctx: &ReadCtx<'_>) -> Result<Protocol, ModuleError> {
        self.wanted()?;
        Ok(Protocol::Declared(ReadSet {
            reads: vec![self.batch().0.declare()],
        }))
    }

    fn decide(
        &self,
        observed: &Observed,
        ctx: &ReadCtx<'_>,
    ) -> Result<Decision<KeyChange>, ModuleError> {
        self.decide_key(observed, ctx).map(Decision::Plan)
    }

    fn touches(&self, change: &KeyChange) -> Touched {
        Touched::Paths(change.touched.clone())
    }

    async fn apply(&self, ctx: &ModuleCtx<'_>, change: KeyChange) -> Result<Map, ModuleError> {
        let files: Vec<FileWrite<'_>> = change
            .write
            .iter()
            .map(|(path, data, attrs)| FileWrite {
                path,
                source: WriteSource::Bytes(data),
                attrs: attrs.clone(),
                backup: false,
                validate: None,
            })
            .collect();
        write_files(ctx.remote, &change.prepare, &files).await?;
        Ok(Map::new())
    }
}

impl AuthorizedKey {
    /// The one read: the user's entry, the key directory and file; and
    /// where the directory and the file are in it.
    fn batch(&self) -> (ReadBatch, usize, usize) {
        let mut batch = ReadBatch::new();
        batch.shell(&format!(
            "if e=$(getent passwd {}); then printf '@@x pw %s\\n' \"$e\"; h=$(printf '%s\\n' \"$e\" | cut -d: -f6); else h=; fi",
            shell_quote(&self.user)
        ));
        let (dir_word, file_word) = match &self.path {
            Some(p) => (shell_quote(&parent_dir(p)), shell_quote(p)),
            None => (
                "\"$h/.ssh\"".to_string(),
                "\"$h/.ssh/authorized_keys\"".to_string(),
            ),
        };
        let file_word = if self.follow {
            format!("\"$(readlink -m -- {file_word})\"")
        } else {
            file_word
        };
        let i_dir = batch.expr(&dir_word, Read::default(), true);
        let i_file = batch.expr(
            &file_word,
            Read {
                checksum: false,
                content: true,
            },
            false,
        );
        (batch, i_dir, i_file)
    }

    fn decide_key(
        &self,
        observed: &Observed,
        ctx: &ReadCtx<'_>,
    ) -> Result<Plan<KeyChange>, ModuleError> {
        let wanted = self.wanted()?;
        let (batch, i_dir, i_file) = self.batch();
        let out = batch.parse_exec(observed.output(0)?)?;
        let pw: Option<Vec<String>> = out
            .extra
            .iter()
            .find_map(|l| l.strip_prefix("pw "))
            .map(|e| e.split(':').map(str::to_string).collect());
        let ids = match &pw {
            Some(f) if f.len() >= 7 => Some((f[2].clone(), f[3].clone())),
            Some(_) => return Err(ModuleError::failed("unexpected getent passwd output")),
            None if ctx.check && self.path.is_some() => None,
            None if self.path.is_some() => {
                return Err(ModuleError::failed(format!(
                    "Failed to lookup user {}",
                    self.user
                )))
            }
            None => {
                return Err(ModuleError::failed(format!(
                    "Failed to lookup user {}: it must exist, or give the key file's full path",
                    self.user
                )))
            }
        };
        let dir = &out.states[i_dir];
        let file = &out.states[i_file];
        let keyfile = file.path.clone();
        if matches!(file.kind, FileKind::Directory | FileKind::Other) {
            return Err(ModuleError::failed(format!(
                "{keyfile} is not a regular file"
            )));
        }
        let existing = match (&file.kind, &file.content) {
            (FileKind::Missing, _) => String::new(),
            (_, Some(c)) => String::from_utf8_lossy(c).into_owned(),
            (FileKind::Link, None) => String::new(),
            (_, None) => return Err(ModuleError::failed(format!("cannot read {keyfile}"))),
        };
        // Owner by id when the user is known (as Ansible chowns to the uid).
        let (owner, group) = match &ids {
            Some((uid, gid)) => (uid.clone(), gid.clone()),
            None => (self.user.clone(), self.user.clone()),
        };
        let file_attrs = Attrs {
            mode: Some(Mode::Bits(0o600)),
            owner: Some(owner.clone()),
            group: Some(group.clone()),
        };
        let dir_attrs = Attrs {
            mode: Some(Mode::Bits(0o700)),
            owner: Some(owner),
            group: Some(group),
        };

        let mut data = Map::new();
        for (k, v) in [
            ("user", Value::from(self.user.clone())),
            ("key", Value::from(self.key.clone())),
            ("keyfile", Value::from(keyfile.clone())),
            (
                "state",
                Value::from(match self.state {
                    KeyState::Present => "present",
                    KeyState::Absent => "absent",
                }),
            ),
            ("exclusive", Value::from(self.exclusive)),
            ("manage_dir", Value::from(self.manage_dir)),
            ("key_options", Value::from(self.key_options.clone())),
            ("comment", Value::from(self.comment.clone())),
            ("path", Value::from(self.path.clone())),
            ("follow", Value::from(self.follow)),
        ] {
            data.insert(k.into(), v);
        }

        let new_content = self.edit(&existing, &wanted);
        let mut prepare = String::new();
        let mut before = String::new();
        let mut after = String::new();
        let writing = new_content.is_some();
        // Directory and file attributes are kept right whenever keys are
        // wanted here, and whenever the file is written.
        let enforce = writing || self.state == KeyState::Present;
        if enforce && self.manage_dir {
            let dir_path = dir.path.clone();
            match dir.kind {
                FileKind::Missing => {
                    prepare.push_str(&mkdirs_script(&dir_path, &dir_attrs)?);
                    before.push_str(&format!("{dir_path}: absent\n"));
                    after.push_str(&format!("{dir_path}: directory 0700\n"));
                }
                FileKind::Directory => {
                    if let Some(fix) = ensure_attrs(dir, &dir_attrs)? {
                        prepare.push_str(&fix.script(&dir_path));
                        prepare.push('\n');
                        for (k, b, a) in fix.changes {
                            before.push_str(&format!("{dir_path} {k}: {b}\n"));
                            after.push_str(&format!("{dir_path} {k}: {a}\n"));
                        }
                    }
                }
                _ => {
                    return Err(ModuleError::failed(format!(
                        "{dir_path} is not a directory"
                    )))
                }
            }
        } else if writing && !dir.exists() {
            prepare.push_str(&mkdirs_script(&dir.path, &Attrs::default())?);
        }
        let mut write = None;
        match new_content {
            Some(text) => {
                before.push_str(&content_for_diff(existing.as_bytes()));
                after.push_str(&content_for_diff(text.as_bytes()));
                write = Some((keyfile.clone(), text.into_bytes(), file_attrs));
            }
            None if enforce && file.kind == FileKind::File => {
                if let Some(fix) = ensure_attrs(file, &file_attrs)? {
                    prepare.push_str(&fix.script(&keyfile));
                    prepare.push('\n');
                    for (k, b, a) in fix.changes {
                        before.push_str(&format!("{keyfile} {k}: {b}\n"));
                        after.push_str(&format!("{keyfile} {k}: {a}\n"));
                    }
                }
            }
            None => {}
        }
        if prepare.is_empty() && write.is_none() {
            return Ok(Plan::Unchanged(data));
        }
        Ok(Plan::Change {
            change: KeyChange {
                prepare,
                write,
                touched: vec![dir.path.clone(), keyfile.clone()],
            },
            diff: Some(Diff {
                before_header: keyfile.clone(),
                after_header: keyfile,
                before,
                after,
            }),
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::modules::testutil::{assert_args_complete, mode_of, owner_of, Harness};

    const A: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa alice@laptop";
    const B: &str =
        "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb bob@desk";
    const C: &str =
        "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYccccc carol";

    #[test]
    fn args() {
        assert_args_complete::<AuthorizedKey>();
    }

    #[test]
    fn parses_options_and_comments() {
        let k =
            parse_key(r#"no-pty, command="echo a, b" ssh-ed25519 AAAA the  comment"#).expect("key");
        assert_eq!(k.options, r#"no-pty,command="echo a, b""#);
        assert_eq!(k.ktype, "ssh-ed25519");
        assert_eq!(k.blob, "AAAA");
        assert_eq!(k.comment, "the  comment");
        assert_eq!(
            k.render(),
            r#"no-pty,command="echo a, b" ssh-ed25519 AAAA the  comment"#
        );
        assert!(parse_key("# ssh-rsa AAAA").is_none());
        assert!(parse_key("garbage").is_none());
    }

    fn keyfile(h: &Harness) -> String {
        h.path("home/.ssh/authorized_keys")
    }

    #[tokio::test]
    #[ignore = "needs root: run scripts/test"]
    async fn adds_then_unchanged_with_dir_and_file_attrs() {
        let h = Harness::new();
        std::fs::create_dir(h.path("home")).expect("mkdir");
        let kf = keyfile(&h);
        let args = json!({ "user": "nobody", "key": A, "path": kf });
        let out = h
            .run::<AuthorizedKey>(args.clone(), true, true)
            .await
            .expect("check");
        assert!(out.changed);
        assert!(!std::path::Path::new(&h.path("home/.ssh")).exists());
        assert!(out.diff.expect("diff").after.contains(A));

        h.take_execs();
        let out = h
            .run::<AuthorizedKey>(args.clone(), false, false)
            .await
            .expect("run");
        assert!(out.changed);
        assert_eq!(h.take_execs(), 2);
        assert_eq!(
            std::fs::read_to_string(&kf).expect("read"),
            format!("{A}\n")
        );
        assert_eq!(mode_of(&kf), 0o600);
        assert_eq!(owner_of(&kf), (65534, 65534));
        assert_eq!(mode_of(&h.path("home/.ssh")), 0o700);
        assert_eq!(owner_of(&h.path("home/.ssh")), (65534, 65534));
        assert_eq!(out.data["keyfile"], json!(kf));

        let out = h
            .run::<AuthorizedKey>(args.clone(), false, false)
            .await
            .expect("again");
        assert!(!out.changed);
        assert_eq!(h.take_execs(), 1);

        // Another key is appended; the first one is kept.
        let out = h
            .run::<AuthorizedKey>(
                json!({ "user": "nobody", "key": B, "path": kf }),
                false,
                true,
            )
            .await
            .expect("add");
        assert!(out.changed);
        let diff = out.diff.expect("diff");
        assert_eq!(diff.before, format!("{A}\n"));
        assert_eq!(diff.after, format!("{A}\n{B}\n"));

        // Same key, other comment in the file: kept when no comment is asked.
        let bare = A.rsplit_once(' ').expect("comment").0;
        let out = h
            .run::<AuthorizedKey>(
                json!({ "user": "nobody", "key": bare, "path": kf }),
                false,
                false,
            )
            .await
            .expect("bare");
        assert!(!out.changed);

        // Drift in the file's mode is repaired.
        std::process::Command::new("chmod")
            .args(["0644", &kf])
            .status()
            .expect("chmod");
        let out = h
            .run::<AuthorizedKey>(args, false, false)
            .await
            .expect("mode");
        assert!(out.changed);
        assert_eq!(mode_of(&kf), 0o600);
    }

    #[tokio::test]
    #[ignore = "needs root: run scripts/test"]
    async fn options_comment_exclusive_and_absent() {
        let h = Harness::new();
        std::fs::create_dir_all(h.path("home/.ssh")).expect("mkdir");
        let kf = keyfile(&h);
        std::fs::write(&kf, format!("# managed by hand\n{A}\n{B}\n{C}\n")).expect("write");

        // key_options and comment rewrite the line in place.
        let args = json!({ "user": "nobody", "key": B, "path": kf,
                           "key_options": "no-pty,from=\"10.0.0.0/8\"", "comment": "bob" });
        let out = h
            .run::<AuthorizedKey>(args.clone(), false, false)
            .await
            .expect("options");
        assert!(out.changed);
        let bob = "no-pty,from=\"10.0.0.0/8\" ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb bob";
        assert_eq!(
            std::fs::read_to_string(&kf).expect("read"),
            format!("# managed by hand\n{A}\n{bob}\n{C}\n")
        );
        assert!(
            !h.run::<AuthorizedKey>(args, false, false)
                .await
                .expect("again")
                .changed
        );

        // Exclusive: only the given keys stay, comments go too (as in Ansible).
        let args = json!({ "user": "nobody", "key": format!("{C}\n\n{A}\n"), "path": kf,
                           "exclusive": "yes" });
        let out = h
            .run::<AuthorizedKey>(args.clone(), true, true)
            .await
            .expect("check");
        assert!(out.changed);
        assert!(std::fs::read_to_string(&kf).expect("read").contains("bob"));
        h.run::<AuthorizedKey>(args.clone(), false, false)
            .await
            .expect("run");
        assert_eq!(
            std::fs::read_to_string(&kf).expect("read"),
            format!("{A}\n{C}\n")
        );
        assert!(
            !h.run::<AuthorizedKey>(args, false, false)
                .await
                .expect("again")
                .changed
        );

        // Absent removes by (type, blob), whatever the options or comment.
        let other_comment = format!("{} someone-else", A.rsplit_once(' ').expect("c").0);
        let args = json!({ "user": "nobody", "key": other_comment, "path": kf, "state": "absent" });
        let out = h
            .run::<AuthorizedKey>(args.clone(), false, true)
            .await
            .expect("absent");
        assert!(out.changed);
        assert_eq!(
            std::fs::read_to_string(&kf).expect("read"),
            format!("{C}\n")
        );
        assert!(
            !h.run::<AuthorizedKey>(args, false, false)
                .await
                .expect("again")
                .changed
        );
    }

    #[tokio::test]
    async fn default_path_from_passwd_in_check_mode() {
        let h = Harness::new();
        // daemon's home is /usr/sbin: check mode only reads.
        let out = h
            .run::<AuthorizedKey>(json!({ "user": "daemon", "key": A }), true, false)
            .await
            .expect("check");
        assert!(out.changed);
        assert_eq!(out.data["keyfile"], json!("/usr/sbin/.ssh/authorized_keys"));
        assert!(!std::path::Path::new("/usr/sbin/.ssh").exists());
        let err = h
            .run::<AuthorizedKey>(json!({ "user": "no-such-user-x", "key": A }), true, false)
            .await
            .expect_err("no user");
        assert!(err.to_string().contains("Failed to lookup user"), "{err}");
        let err = h
            .run::<AuthorizedKey>(
                json!({ "user": "nobody", "key": "not a key", "path": keyfile(&h) }),
                true,
                false,
            )
            .await
            .expect_err("bad key");
        assert!(err.to_string().contains("invalid key"), "{err}");
    }
}
