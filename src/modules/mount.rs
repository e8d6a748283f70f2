//! `mount` (ansible.posix.mount): keep a filesystem's line in fstab and,
//! depending on `state`, mount, remount or unmount it. The fstab file and the
//! mount table entry for the path (`/proc/self/mountinfo`) are read in one
//! exec; fstab is edited locally and written atomically.
//!
//! A mounted path is matched by its mount point only: the kernel reports
//! `nfs4` for an `nfs` line and a bind mount for some doubles, so comparing
//! the live source or type with the arguments would remount for nothing.

use async_trait::async_trait;
use base64::Engine as _;
use serde::Deserialize;

use super::args::{bool_ish, opt_string_ish, string_ish, yes};
use super::fs::{write_file_atomic, Attrs};
use super::{
    Decision, Diff, Module, ModuleCtx, ModuleError, Plan, Protocol, ReadCtx, ReadSet, Scope,
};
use crate::transport::shell_quote;
use crate::{Map, Value};

/// Arguments of `mount`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mount {
    /// The mount point.
    #[serde(alias = "name")]
    path: String,
    /// Device, `server:/export` or other source (present/mounted).
    #[serde(default, deserialize_with = "opt_string_ish")]
    src: Option<String>,
    /// Filesystem type (present/mounted).
    #[serde(default, deserialize_with = "opt_string_ish")]
    fstype: Option<String>,
    /// Mount options (`defaults` when not given).
    #[serde(default, deserialize_with = "opt_string_ish")]
    opts: Option<String>,
    /// fstab's dump field.
    #[serde(default = "zero", deserialize_with = "string_ish")]
    dump: String,
    /// fstab's pass field.
    #[serde(default = "zero", deserialize_with = "string_ish")]
    passno: String,
    /// What to do.
    state: State,
    /// The fstab file.
    #[serde(default = "default_fstab")]
    fstab: String,
    /// Mount at boot; false adds `noauto` to the options.
    #[serde(default = "yes", deserialize_with = "bool_ish")]
    boot: bool,
    /// Keep a copy of fstab before changing it.
    #[serde(default, deserialize_with = "bool_ish")]
    backup: bool,
}

fn zero() -> String {
    "0".into()
}

fn default_fstab() -> String {
    "/etc/fstab".into()
}

/// The wanted state of the mount.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum State {
    /// In fstab and mounted.
    Mounted,
    /// In fstab; the live mount is left alone.
    Present,
    /// Not mounted; fstab is left alone.
    Unmounted,
    /// Neither in fstab nor mounted (the empty mount point is removed).
    Absent,
    /// Remount now (always a change).
    Remounted,
    /// Mount without fstab (not supported by drover).
    Ephemeral,
}

/// Live operations, run in this order by `apply`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `mkdir -p PATH`.
    Mkdir,
    /// `mount PATH` (from fstab).
    Mount,
    /// `mount -o remount PATH`, falling back to unmount and mount.
    Remount,
    /// `umount PATH` then `mount PATH` (source or type changed).
    Replace,
    /// `umount PATH`.
    Umount,
    /// Remove the mount point when it is an empty directory.
    Rmdir,
}

/// What `apply` does.
#[derive(Debug, PartialEq)]
pub struct MountChange {
    /// New fstab content, when fstab changes.
    fstab: Option<String>,
    /// Live operations.
    actions: Vec<Action>,
}

/// One fstab entry, fields as written (escaped).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    src: String,
    path: String,
    fstype: String,
    opts: String,
    dump: String,
    passno: String,
}

impl Entry {
    fn line(&self) -> String {
        format!(
            "{} {} {} {} {} {}",
            self.src, self.path, self.fstype, self.opts, self.dump, self.passno
        )
    }
}

/// Escape a field as fstab(5) wants it (octal for blanks and backslash).
pub fn escape_field(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            ' ' => out.push_str("\\040"),
            '\t' => out.push_str("\\011"),
            '\n' => out.push_str("\\012"),
            '\\' => out.push_str("\\134"),
            c => out.push(c),
        }
    }
    out
}

/// Undo `\NNN` octal escapes (fstab and mountinfo use them).
pub fn unescape_field(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 4 <= b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            if let Ok(v) = u8::try_from(v) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A mount point without trailing slashes (`/` stays `/`).
fn normalize_path(p: &str) -> String {
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        "/".into()
    } else {
        t.into()
    }
}

/// The entry of fstab line `line`, if it is one.
fn parse_entry(line: &str) -> Option<Entry> {
    let t = line.trim();
    if t.is_empty() || t.starts_with('#') {
        return None;
    }
    let f: Vec<&str> = t.split_whitespace().collect();
    if f.len() < 3 {
        return None;
    }
    let get = |i: usize, d: &str| f.get(i).map(|s| s.to_string()).unwrap_or(d.into());
    Some(Entry {
        src: f[0].into(),
        path: f[1].into(),
        fstype: f[2].into(),
        opts: get(3, "defaults"),
        dump: get(4, "0"),
        passno: get(5, "0"),
    })
}

/// The last fstab entry for `path` (mount uses the last one).
fn find_entry(content: &str, path: &str) -> Option<Entry> {
    let want = normalize_path(path);
    content
        .lines()
        .filter_map(parse_entry)
        .rfind(|e| normalize_path(&unescape_field(&e.path)) == want)
}

/// fstab with the entries for `path` replaced by `entry` (at the first
/// one's place, or appended), or removed (`None`).
fn edit_fstab(content: &str, path: &str, entry: Option<&Entry>) -> String {
    let want = normalize_path(path);
    let mut out = String::new();
    let mut done = false;
    for line in content.lines() {
        let matches = parse_entry(line)
            .map(|e| normalize_path(&unescape_field(&e.path)) == want)
            .unwrap_or(false);
        if matches {
            if let (Some(e), false) = (entry, done) {
                out.push_str(&e.line());
                out.push('\n');
                done = true;
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    if let (Some(e), false) = (entry, done) {
        out.push_str(&e.line());
        out.push('\n');
    }
    out
}

/// A line of `/proc/self/mountinfo`: the live mount at a path.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Live {
    /// Mount point (unescaped).
    path: String,
    /// Filesystem type as the kernel reports it.
    fstype: String,
    /// Source as the kernel reports it.
    src: String,
}

fn parse_mountinfo_line(line: &str) -> Option<Live> {
    let f: Vec<&str> = line.split_whitespace().collect();
    let sep = f.iter().position(|x| *x == "-")?;
    if sep < 5 {
        return None;
    }
    Some(Live {
        path: unescape_field(f.get(4)?),
        fstype: f.get(sep + 1)?.to_string(),
        src: unescape_field(f.get(sep + 2).unwrap_or(&"")),
    })
}

/// What was read from the host.
#[derive(Debug, Default, PartialEq)]
struct Observed {
    /// fstab content (`None`: no file).
    fstab: Option<String>,
    /// The live mount on the path, if any.
    live: Option<Live>,
}

fn read_script(fstab: &str, path: &str) -> String {
    // awk compares the escaped form mountinfo uses; the path comes through
    // the environment because `awk -v` would interpret its backslashes.
    format!(
        "f={}\n\
         if [ -f \"$f\" ]; then printf '@@fstab '; base64 -w0 < \"$f\" || exit 1; echo; else echo '@@nofstab'; fi\n\
         P={} awk '$5 == ENVIRON[\"P\"] {{ print \"@@mnt \" $0 }}' /proc/self/mountinfo || exit 1\n\
         echo '@@end'\n",
        shell_quote(fstab),
        shell_quote(&escape_field(&normalize_path(path)))
    )
}

fn parse_observed(out: &str) -> Result<Observed, super::OutputError> {
    let mut o = Observed::default();
    let mut seen = (false, false);
    for line in out.lines() {
        if let Some(d) = line.strip_prefix("@@fstab ") {
            let b = base64::engine::general_purpose::STANDARD
                .decode(d.trim())
                .map_err(|e| super::OutputError::Malformed(format!("bad output: {e}")))?;
            o.fstab = Some(String::from_utf8_lossy(&b).into_owned());
            seen.0 = true;
        } else if line == "@@fstab" || line == "@@nofstab" {
            o.fstab = (line == "@@fstab").then(String::new);
            seen.0 = true;
        } else if let Some(m) = line.strip_prefix("@@mnt ") {
            // The last mount on a path is the one visible there.
            if let Some(l) = parse_mountinfo_line(m) {
                o.live = Some(l);
            }
        } else if line == "@@end" {
            seen.1 = true;
        }
    }
    if seen != (true, true) {
        return Err(super::OutputError::Incomplete);
    }
    Ok(o)
}

impl Mount {
    fn state_name(&self) -> &'static str {
        match self.state {
            State::Mounted => "mounted",
            State::Present => "present",
            State::Unmounted => "unmounted",
            State::Absent => "absent",
            State::Remounted => "remounted",
            State::Ephemeral => "ephemeral",
        }
    }

    fn opts(&self) -> String {
        let opts = self
            .opts
            .clone()
            .filter(|o| !o.trim().is_empty())
            .unwrap_or_else(|| "defaults".into());
        let has_noauto = opts.split(',').any(|o| o == "noauto");
        if !self.boot && !has_noauto {
            // Ansible drops a plain `defaults` in favour of `noauto`.
            if opts == "defaults" {
                "noauto".into()
            } else {
                format!("{opts},noauto")
            }
        } else {
            opts
        }
    }

    /// The fstab entry the arguments describe.
    fn wanted(&self) -> Result<Entry, ModuleError> {
        let need = |v: &Option<String>, n: &str| {
            v.clone().filter(|s| !s.is_empty()).ok_or_else(|| {
                ModuleError::Args(format!("{n} is required with state={}", self.state_name()))
            })
        };
        Ok(Entry {
            src: escape_field(&need(&self.src, "src")?),
            path: escape_field(&normalize_path(&self.path)),
            fstype: escape_field(&need(&self.fstype, "fstype")?),
            opts: escape_field(&self.opts()),
            dump: self.dump.clone(),
            passno: self.passno.clone(),
        })
    }

    /// Decide from what was read.
    fn decide(&self, obs: &Observed) -> Result<Option<MountChange>, ModuleError> {
        let current = obs.fstab.as_deref().unwrap_or("");
        let mounted = obs.live.is_some();
        let mut actions = Vec::new();
        let fstab = match self.state {
            State::Ephemeral => {
                return Err(ModuleError::Args(
                    "state=ephemeral is not supported by drover".into(),
                ))
            }
            State::Present | State::Mounted => {
                let want = self.wanted()?;
                let old = find_entry(current, &self.path);
                let changed = old.as_ref() != Some(&want);
                if self.state == State::Mounted {
                    if !mounted {
                        actions.extend([Action::Mkdir, Action::Mount]);
                    } else if changed {
                        // A new source or type cannot be remounted in place.
                        let moved = old
                            .as_ref()
                            .map(|o| o.src != want.src || o.fstype != want.fstype)
                            .unwrap_or(true);
                        actions.push(if moved {
                            Action::Replace
                        } else {
                            Action::Remount
                        });
                    }
                }
                changed.then(|| edit_fstab(current, &self.path, Some(&want)))
            }
            State::Unmounted => {
                if mounted {
                    actions.push(Action::Umount);
                }
                None
            }
            State::Absent => {
                let present = find_entry(current, &self.path).is_some();
                if mounted {
                    actions.push(Action::Umount);
                }
                if present || mounted {
                    actions.push(Action::Rmdir);
                }
                present.then(|| edit_fstab(current, &self.path, None))
            }
            State::Remounted => {
                if !mounted {
                    return Err(ModuleError::failed(format!("{} is not mounted", self.path)));
                }
                actions.push(Action::Remount);
                None
            }
        };
        Ok((fstab.is_some() || !actions.is_empty()).then_some(MountChange { fstab, actions }))
    }

    fn data(&self) -> Map {
        let mut m = Map::new();
        m.insert("name".into(), Value::from(self.path.clone()));
        if let Some(s) = &self.src {
            m.insert("src".into(), Value::from(s.clone()));
        }
        if let Some(s) = &self.fstype {
            m.insert("fstype".into(), Value::from(s.clone()));
        }
        m.insert("opts".into(), Value::from(self.opts()));
        m.insert("dump".into(), Value::from(self.dump.clone()));
        m.insert("passno".into(), Value::from(self.passno.clone()));
        m.insert("fstab".into(), Value::from(self.fstab.clone()));
        m.insert("boot".into(), Value::Bool(self.boot));
        m
    }

    /// The shell commands for the live operations.
    fn script(&self, actions: &[Action]) -> String {
        let p = shell_quote(&normalize_path(&self.path));
        // util-linux reads another fstab with -T.
        let t = if self.fstab == "/etc/fstab" {
            String::new()
        } else {
            format!("-T {} ", shell_quote(&self.fstab))
        };
        let remount = match (&self.opts, self.state) {
            (Some(o), State::Remounted) if !o.is_empty() => {
                format!("remount,{}", o)
            }
            _ => "remount".into(),
        };
        let mut s = String::from("set -e\n");
        for a in actions {
            s.push_str(&match a {
                Action::Mkdir => format!("mkdir -p -- {p}\n"),
                Action::Mount => format!("mount {t}{p}\n"),
                Action::Remount => format!(
                    "mount {t}-o {} {p} || {{ umount {p} && mount {t}{p}; }}\n",
                    shell_quote(&remount)
                ),
                Action::Replace => format!("umount {p}\nmount {t}{p}\n"),
                Action::Umount => format!("umount {p}\n"),
                Action::Rmdir => format!("if [ -d {p} ]; then rmdir -- {p}; fi\n"),
            });
        }
        s
    }
}

impl Mount {
    /// The plan, from what the module's read printed.
    fn plan_from(
        &self,
        out: &crate::transport::ExecOutput,
    ) -> Result<Plan<MountChange>, ModuleError> {
        let obs = super::reads::parse_read(out, &self.fstab, parse_observed)?;
        match self.decide(&obs)? {
            None => Ok(Plan::Unchanged(self.data())),
            Some(change) => {
                let diff = change.fstab.as_ref().map(|new| Diff {
                    before_header: self.fstab.clone(),
                    after_header: self.fstab.clone(),
                    before: obs.fstab.clone().unwrap_or_default(),
                    after: new.clone(),
                });
                Ok(Plan::Change {
                    change,
                    diff,
                    data: self.data(),
                })
            }
        }
    }
}

#[async_trait]
impl Module for Mount {
    const NAME: &'static str = "mount";
    const ARGS: &'static [&'static str] = &[
        "path", "name", "src", "fstype", "opts", "dump", "passno", "state", "fstab", "boot",
        "backup",
    ];
    type Change = MountChange;

    fn reads(&self, _ctx: &ReadCtx<'_>) -> Result<Protocol, ModuleError> {
        if !self.path.starts_with('/') {
            return Err(ModuleError::Args(format!(
                "path must be absolute: {}",
                self.path
            )));
        }
        // A line starting with '#' is a comment: fstab(5) has no escape for it.
        if let Some(src) = self.src.as_deref().filter(|s| s.starts_with('#')) {
            return Err(ModuleError::Args(format!(
                "src cannot start with '#' ({src:?} would make the fstab line a comment)"
            )));
        }
        // The other fields are escaped as fstab(5) does; these two are
        // written as given, so a newline in them would add an fstab line.
        for (arg, v) in [("dump", &self.dump), ("passno", &self.passno)] {
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ModuleError::Args(format!(
                    "{arg} must be a number, not {v:?}"
                )));
            }
        }
        Ok(Protocol::Declared(ReadSet::one(
            read_script(&self.fstab, &self.path),
            Scope::Host,
        )))
    }

    fn decide(
        &self,
        observed: &super::Observed,
        _ctx: &ReadCtx<'_>,
    ) -> Result<Decision<MountChange>, ModuleError> {
        let out = observed.output(0)?;
        self.plan_from(out).map(Decision::Plan)
    }

    async fn apply(&self, ctx: &ModuleCtx<'_>, change: MountChange) -> Result<Map, ModuleError> {
        if let Some(content) = &change.fstab {
            write_file_atomic(
                ctx.remote,
                &self.fstab,
                content.as_bytes(),
                &Attrs::default(),
                self.backup,
            )
            .await?;
        }
        if !change.actions.is_empty() {
            let out = ctx.remote.exec(&self.script(&change.actions), b"").await?;
            if out.status != 0 {
                let mut data = Map::new();
                data.insert("rc".into(), Value::from(out.status));
                data.insert("stderr".into(), Value::from(out.stderr_str()));
                return Err(ModuleError::Failed {
                    msg: format!("Error mounting {}: {}", self.path, out.stderr_str().trim()),
                    data,
                });
            }
        }
        Ok(Map::new())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::modules::testutil::{assert_args_complete, Harness};

    fn module(v: Value) -> Mount {
        serde_json::from_value(v).expect("args")
    }

    fn live(path: &str) -> Option<Live> {
        Some(Live {
            path: path.into(),
            fstype: "nfs4".into(),
            src: "127.0.2.1:/srv/nfs".into(),
        })
    }

    #[test]
    fn args() {
        assert_args_complete::<Mount>();
    }

    #[test]
    fn escapes_like_fstab() {
        assert_eq!(escape_field("/mnt/a b\\c"), "/mnt/a\\040b\\134c");
        assert_eq!(unescape_field("/mnt/a\\040b\\134c"), "/mnt/a b\\c");
        assert_eq!(unescape_field("a\\04"), "a\\04", "short escape kept");
        assert_eq!(normalize_path("/mnt/x/"), "/mnt/x");
        assert_eq!(normalize_path("/"), "/");
    }

    #[test]
    fn parses_fstab_and_mountinfo() {
        let f = "# c\nUUID=1 / ext4 defaults 0 1\n10.0.0.1:/d /mnt/d\\040x nfs rw\n";
        let e = find_entry(f, "/mnt/d x/").expect("found");
        assert_eq!(e.src, "10.0.0.1:/d");
        assert_eq!(e.opts, "rw");
        assert_eq!((e.dump.as_str(), e.passno.as_str()), ("0", "0"));
        assert!(find_entry(f, "/mnt").is_none());
        let l = parse_mountinfo_line(
            "36 35 98:0 / /mnt/d\\040x rw,noatime master:1 - nfs4 10.0.0.1:/d rw,vers=4.2",
        )
        .expect("line");
        assert_eq!(l.path, "/mnt/d x");
        assert_eq!(l.fstype, "nfs4");
        assert_eq!(l.src, "10.0.0.1:/d");
        let o = parse_observed(
            "@@fstab YQo=\n@@mnt 36 35 98:0 /x /mnt/d rw - ext4 /dev/sda1 rw\n@@end\n",
        )
        .expect("ok");
        assert_eq!(o.fstab.as_deref(), Some("a\n"));
        assert_eq!(o.live.expect("live").src, "/dev/sda1");
        assert_eq!(
            parse_observed("@@nofstab\n@@end\n").expect("ok"),
            Observed::default()
        );
        assert!(parse_observed("@@nofstab\n").is_err());
    }

    #[test]
    fn edits_fstab() {
        let e = Entry {
            src: "s".into(),
            path: "/m".into(),
            fstype: "nfs".into(),
            opts: "defaults".into(),
            dump: "0".into(),
            passno: "0".into(),
        };
        assert_eq!(edit_fstab("", "/m", Some(&e)), "s /m nfs defaults 0 0\n");
        assert_eq!(
            edit_fstab(
                "a / ext4 x 0 1\nold /m/ nfs ro\n#x\nold2 /m nfs ro",
                "/m",
                Some(&e)
            ),
            "a / ext4 x 0 1\ns /m nfs defaults 0 0\n#x\n"
        );
        assert_eq!(
            edit_fstab("a / e d 0 0\nb /m e d 0 0\n", "/m", None),
            "a / e d 0 0\n"
        );
    }

    #[test]
    fn decides_like_ansible() {
        let nfs = json!({"path": "/mnt/d", "src": "h:/d", "fstype": "nfs", "state": "mounted"});
        let line = "h:/d /mnt/d nfs defaults 0 0\n";
        let obs = |f: &str, l: Option<Live>| Observed {
            fstab: Some(f.into()),
            live: l,
        };
        let m = module(nfs.clone());
        assert_eq!(m.decide(&obs(line, live("/mnt/d"))).expect("ok"), None);
        assert_eq!(
            m.decide(&obs("", None)).expect("ok"),
            Some(MountChange {
                fstab: Some(line.into()),
                actions: vec![Action::Mkdir, Action::Mount]
            })
        );
        assert_eq!(
            m.decide(&obs(line, None)).expect("ok"),
            Some(MountChange {
                fstab: None,
                actions: vec![Action::Mkdir, Action::Mount]
            }),
            "in fstab but not mounted"
        );
        assert_eq!(
            m.decide(&obs("h:/d /mnt/d nfs ro 0 0\n", live("/mnt/d")))
                .expect("ok"),
            Some(MountChange {
                fstab: Some(line.into()),
                actions: vec![Action::Remount]
            })
        );
        assert_eq!(
            m.decide(&obs("other:/d /mnt/d nfs defaults 0 0\n", live("/mnt/d")))
                .expect("ok")
                .expect("change")
                .actions,
            vec![Action::Replace]
        );
        let mut present = nfs.clone();
        present["state"] = json!("present");
        present["boot"] = json!(false);
        assert_eq!(
            module(present).decide(&obs("", None)).expect("ok"),
            Some(MountChange {
                fstab: Some("h:/d /mnt/d nfs noauto 0 0\n".into()),
                actions: vec![]
            })
        );
        let un = module(json!({"path": "/mnt/d", "state": "unmounted"}));
        assert_eq!(un.decide(&obs(line, None)).expect("ok"), None);
        assert_eq!(
            un.decide(&obs(line, live("/mnt/d"))).expect("ok"),
            Some(MountChange {
                fstab: None,
                actions: vec![Action::Umount]
            })
        );
        let ab = module(json!({"path": "/mnt/d", "state": "absent"}));
        assert_eq!(ab.decide(&obs("", None)).expect("ok"), None);
        assert_eq!(
            ab.decide(&obs(line, live("/mnt/d"))).expect("ok"),
            Some(MountChange {
                fstab: Some(String::new()),
                actions: vec![Action::Umount, Action::Rmdir]
            })
        );
        assert!(module(json!({"path": "/m", "state": "mounted"}))
            .decide(&obs("", None))
            .is_err());
        assert!(module(json!({"path": "/m", "state": "remounted"}))
            .decide(&obs("", None))
            .is_err());
    }

    #[test]
    fn scripts() {
        let m = module(
            json!({"path": "/mnt/a b", "src": "x", "fstype": "ext4", "state": "mounted", "fstab": "/tmp/f"}),
        );
        assert_eq!(
            m.script(&[Action::Mkdir, Action::Mount]),
            "set -e\nmkdir -p -- '/mnt/a b'\nmount -T /tmp/f '/mnt/a b'\n"
        );
    }

    #[tokio::test]
    async fn edits_a_temp_fstab_present_and_absent() {
        let h = Harness::new();
        let f = h.path("fstab");
        std::fs::write(&f, "# static\nUUID=1 / ext4 defaults 0 1\n").expect("write");
        let mp = h.path("no-such-mount");
        let args = json!({
            "path": mp, "src": "127.0.2.1:/srv/nfs", "fstype": "nfs", "opts": "rw,hard",
            "state": "present", "fstab": f
        });
        let out = h
            .run::<Mount>(args.clone(), true, true)
            .await
            .expect("check");
        assert!(out.changed);
        assert!(out.diff.expect("diff").after.ends_with("nfs rw,hard 0 0\n"));
        assert!(!std::fs::read_to_string(&f).expect("r").contains("nfs"));
        h.take_execs();
        let out = h
            .run::<Mount>(args.clone(), false, false)
            .await
            .expect("run");
        assert!(out.changed);
        assert_eq!(h.take_execs(), 2, "one read, one write");
        assert_eq!(
            std::fs::read_to_string(&f).expect("r"),
            format!(
                "# static\nUUID=1 / ext4 defaults 0 1\n127.0.2.1:/srv/nfs {mp} nfs rw,hard 0 0\n"
            )
        );
        let out = h.run::<Mount>(args, false, false).await.expect("again");
        assert!(!out.changed);
        let out = h
            .run::<Mount>(
                json!({"path": mp, "state": "absent", "fstab": f}),
                false,
                false,
            )
            .await
            .expect("absent");
        assert!(out.changed);
        assert_eq!(
            std::fs::read_to_string(&f).expect("r"),
            "# static\nUUID=1 / ext4 defaults 0 1\n"
        );
    }
}
