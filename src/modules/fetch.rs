//! `fetch`: copy a file from the host to the control machine, into
//! `dest/HOST/SRC` (or exactly `dest` with `flat`). The host's file is read
//! as metadata and SHA-1 (a declared read); the local copy is compared in
//! `decide` (local files are the task's own), so a copy whose checksum
//! matches is left alone and costs no transfer.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde::Deserialize;

use super::args::{bool_ish, yes};
use super::fs::{sha1_hex, FileKind, Read, ReadBatch};
use super::{Decision, Module, ModuleCtx, ModuleError, Observed, Plan, Protocol, ReadCtx, ReadSet};
use crate::transport::shell_quote;
use crate::{Map, Value};

/// Arguments of `fetch`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fetch {
    /// The file on the host.
    src: String,
    /// Local directory (or, with `flat`, file) to save it in.
    dest: String,
    /// Save to `dest` itself (a directory when it ends in `/`), not
    /// `dest/HOST/SRC`.
    #[serde(default, deserialize_with = "bool_ish")]
    flat: bool,
    /// Fail when the file is missing or unreadable (else report and go on).
    #[serde(default = "yes", deserialize_with = "bool_ish")]
    fail_on_missing: bool,
    /// Compare checksums after the transfer.
    #[serde(default = "yes", deserialize_with = "bool_ish")]
    validate_checksum: bool,
}

/// What `apply` does: copy the host's file to this local path.
#[derive(Debug, PartialEq)]
pub struct FetchChange {
    dest: PathBuf,
    /// The host's SHA-1, to validate the transfer.
    checksum: String,
}

impl Fetch {
    fn batch(&self) -> ReadBatch {
        let mut b = ReadBatch::new();
        b.path(
            &self.src,
            Read {
                checksum: true,
                content: false,
            },
            true,
        );
        b
    }

    /// Where the copy goes; relative paths are taken from the playbook's
    /// directory (the last search directory), `~` from `$HOME`.
    fn local_dest(&self, host: &str, search: &[PathBuf]) -> PathBuf {
        let expanded = match self.dest.strip_prefix("~/") {
            Some(rest) => std::env::var("HOME")
                .map(|h| format!("{h}/{rest}"))
                .unwrap_or_else(|_| self.dest.clone()),
            None => self.dest.clone(),
        };
        let base = match search.last() {
            Some(dir) if !expanded.starts_with('/') => dir.join(&expanded),
            _ => PathBuf::from(&expanded),
        };
        if self.flat {
            if self.dest.ends_with('/') {
                let name = Path::new(&self.src)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                return base.join(name);
            }
            return base;
        }
        base.join(host).join(self.src.trim_start_matches('/'))
    }

    fn data(&self, dest: &Path, checksum: Option<&str>) -> Map {
        let mut m = Map::new();
        m.insert("dest".into(), Value::from(dest.display().to_string()));
        m.insert("file".into(), Value::from(self.src.clone()));
        if let Some(c) = checksum {
            m.insert("checksum".into(), Value::from(c.to_string()));
            m.insert("remote_checksum".into(), Value::from(c.to_string()));
        }
        // drover does not compute MD5 (Ansible reports null on FIPS hosts).
        m.insert("md5sum".into(), Value::Null);
        m.insert("remote_md5sum".into(), Value::Null);
        m
    }

    fn missing(&self, msg: String) -> Result<Plan<FetchChange>, ModuleError> {
        if self.fail_on_missing {
            return Err(ModuleError::failed(msg));
        }
        let mut m = Map::new();
        m.insert("msg".into(), Value::from(msg));
        m.insert("file".into(), Value::from(self.src.clone()));
        Ok(Plan::Unchanged(m))
    }

    /// The plan, given what the host has and the local copy's content.
    fn plan(
        &self,
        kind: FileKind,
        remote_sum: Option<String>,
        dest: PathBuf,
        local: Option<&[u8]>,
    ) -> Result<Plan<FetchChange>, ModuleError> {
        match kind {
            FileKind::Missing => {
                return self.missing("the remote file does not exist, not transferring".into())
            }
            FileKind::Directory => {
                return self
                    .missing("remote file is a directory, fetch cannot work on directories".into())
            }
            _ => {}
        }
        let Some(sum) = remote_sum else {
            return self.missing("unable to read the remote file: permission denied".into());
        };
        if local.map(sha1_hex).as_deref() == Some(sum.as_str()) {
            return Ok(Plan::Unchanged(self.data(&dest, Some(&sum))));
        }
        Ok(Plan::Change {
            data: self.data(&dest, Some(&sum)),
            change: FetchChange {
                dest,
                checksum: sum,
            },
            diff: None,
        })
    }
}

#[async_trait]
impl Module for Fetch {
    const NAME: &'static str = "fetch";
    const ARGS: &'static [&'static str] = &[
        "src",
        "dest",
        "flat",
        "fail_on_missing",
        "validate_checksum",
    ];

    // Ansible's fetch expands a leading `~` (`~user`) of `src` on the host.
    fn host_paths(_args: &Map) -> &'static [&'static str] {
        &["src"]
    }
    type Change = FetchChange;

    fn reads(&self, _ctx: &ReadCtx<'_>) -> Result<Protocol, ModuleError> {
        if self.src.is_empty() || self.dest.is_empty() {
            return Err(ModuleError::Args("src and dest are required".into()));
        }
        Ok(Protocol::Declared(ReadSet {
            reads: vec![self.batch().declare()],
        }))
    }

    fn decide(
        &self,
        observed: &Observed,
        ctx: &ReadCtx<'_>,
    ) -> Result<Decision<FetchChange>, ModuleError> {
        let state = self
            .batch()
            .parse_exec(observed.output(0)?)?
            .states
            .pop()
            .ok_or_else(|| ModuleError::failed("no state read"))?;
        let dest = self.local_dest(ctx.host, ctx.search);
        if dest.is_dir() {
            return Err(ModuleError::failed(format!(
                "dest {} is an existing directory, use a trailing slash for a flat fetch into it",
                dest.display()
            )));
        }
        let local = std::fs::read(&dest).ok();
        self.plan(state.kind, state.checksum, dest, local.as_deref())
            .map(Decision::Plan)
    }

    fn touches(&self, _change: &FetchChange) -> super::Touched {
        super::Touched::Nothing
    }

    async fn apply(&self, ctx: &ModuleCtx<'_>, change: FetchChange) -> Result<Map, ModuleError> {
        let out = ctx
            .remote
            .exec(&format!("cat -- {}", shell_quote(&self.src)), b"")
            .await?;
        if out.status != 0 {
            return Err(ModuleError::failed(format!(
                "reading {} failed: {}",
                self.src,
                out.stderr_str().trim()
            )));
        }
        if self.validate_checksum && sha1_hex(&out.stdout) != change.checksum {
            return Err(ModuleError::failed(
                "checksum mismatch: the file changed on the host during the transfer",
            ));
        }
        let parent = crate::localfs::parent(&change.dest);
        std::fs::create_dir_all(&parent).map_err(|e| {
            ModuleError::failed(format!("creating {} failed: {e}", parent.display()))
        })?;
        crate::localfs::write_atomic(&change.dest, &out.stdout, 0o644).map_err(|e| {
            ModuleError::failed(format!("writing {} failed: {e}", change.dest.display()))
        })?;
        Ok(Map::new())
    }
}

#[cfg(test)]
mod tests {

    use serde_json::json;

    use super::*;
    use crate::modules::testutil::{assert_args_complete, Harness};

    fn module(v: Value) -> Fetch {
        serde_json::from_value(v).expect("args")
    }

    /// become target "fetch a file": `src: ~user/...` was looked up
    /// literally; Ansible expands it on the host.
    #[test]
    fn src_is_a_host_path_expanded_there() {
        assert_eq!(<Fetch as Module>::host_paths(&Map::new()), &["src"]);
    }

    #[test]
    fn args() {
        assert_args_complete::<Fetch>();
    }

    #[test]
    fn lays_out_dest_like_ansible() {
        let search = [PathBuf::from("/pb/files"), PathBuf::from("/pb")];
        let m = module(json!({"src": "/etc/hosts", "dest": "out"}));
        assert_eq!(
            m.local_dest("web1", &search),
            PathBuf::from("/pb/out/web1/etc/hosts")
        );
        let m = module(json!({"src": "/etc/hosts", "dest": "/b/", "flat": true}));
        assert_eq!(m.local_dest("web1", &search), PathBuf::from("/b/hosts"));
        let m = module(json!({"src": "/etc/hosts", "dest": "/b/h-{{x}}", "flat": "yes"}));
        assert_eq!(m.local_dest("web1", &search), PathBuf::from("/b/h-{{x}}"));
    }

    #[test]
    fn decides_by_checksum() {
        let m = module(json!({"src": "/f", "dest": "/d", "flat": true}));
        let sum = sha1_hex(b"hi\n");
        let d = PathBuf::from("/d");
        assert!(matches!(
            m.plan(FileKind::File, Some(sum.clone()), d.clone(), Some(b"hi\n")),
            Ok(Plan::Unchanged(_))
        ));
        assert!(matches!(
            m.plan(FileKind::File, Some(sum.clone()), d.clone(), Some(b"old\n")),
            Ok(Plan::Change { .. })
        ));
        assert!(matches!(
            m.plan(FileKind::File, Some(sum), d.clone(), None),
            Ok(Plan::Change { .. })
        ));
        assert!(m.plan(FileKind::Missing, None, d.clone(), None).is_err());
        assert!(m.plan(FileKind::Directory, None, d.clone(), None).is_err());
        let m = module(json!({"src": "/f", "dest": "/d", "fail_on_missing": false}));
        let Ok(Plan::Unchanged(r)) = m.plan(FileKind::Missing, None, d, None) else {
            panic!("unchanged expected")
        };
        assert!(r["msg"].as_str().expect("msg").contains("does not exist"));
    }

    #[tokio::test]
    async fn fetches_once_and_check_mode_writes_nothing() {
        let h = Harness::new();
        let src = h.path("remote.txt");
        std::fs::write(&src, "data\n").expect("write");
        let args = json!({"src": src, "dest": h.path("out")});
        let out = h
            .run::<Fetch>(args.clone(), true, false)
            .await
            .expect("check");
        assert!(out.changed);
        let dest = h.path(&format!("out/localhost/{}", src.trim_start_matches('/')));
        assert!(!Path::new(&dest).exists(), "check mode writes nothing");
        let out = h
            .run::<Fetch>(args.clone(), false, false)
            .await
            .expect("run");
        assert!(out.changed);
        assert_eq!(out.data["dest"], json!(dest));
        assert_eq!(std::fs::read_to_string(&dest).expect("copy"), "data\n");
        let out = h.run::<Fetch>(args, false, false).await.expect("again");
        assert!(!out.changed);
    }
}
