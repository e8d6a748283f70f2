//! `slurp`: fetch a file's content from the host, base64-encoded. Changes
//! nothing.

use async_trait::async_trait;
use base64::Engine as _;
use serde::Deserialize;

use super::fs::{FileKind, Read, ReadBatch};
use crate::transport::shell_quote;

use super::{Decision, Module, ModuleCtx, ModuleError, Observed, Plan, Protocol, ReadCtx, ReadSet};
use crate::{Map, Value};

/// Arguments of `slurp`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Slurp {
    /// The file to read (a symlink is followed).
    #[serde(alias = "path")]
    src: String,
}

impl Slurp {
    /// The one read: the file's content, through a link, and why Python's
    /// `open()` would refuse it (a test of what the read user may do, so a
    /// become user's "not readable" is not taken for "not found").
    fn batch(&self) -> ReadBatch {
        let mut batch = ReadBatch::new();
        batch.path(
            &self.src,
            Read {
                checksum: false,
                content: true,
            },
            true,
        );
        let q = shell_quote(&self.src);
        batch.shell_within(
            &format!(
                "if [ -e {q} ]; then if [ ! -r {q} ]; then echo '@@x noread'; \
                 elif [ -d {q} ]; then echo '@@x isdir'; fi; \
                 else case $(LC_ALL=C stat -L -c %F -- {q} 2>&1) in \
                 *'Permission denied'*) echo '@@x noread' ;; \
                 *'Not a directory'*) echo '@@x notdir' ;; \
                 *) echo '@@x missing' ;; esac; fi"
            ),
            &[&self.src],
        );
        // What is missing below a path that becomes a file is no longer
        // "not found" but "not a directory".
        let mut dir = self.src.as_str();
        while let Some((parent, _)) = dir.rsplit_once('/') {
            if parent.is_empty() {
                break;
            }
            batch.scope_kind(parent);
            dir = parent;
        }
        batch
    }

    /// Ansible's message for a source `open()` refuses (`why` as the read
    /// script classified it, after Python's errno).
    fn refusal(&self, why: &str) -> String {
        let src = &self.src;
        match why {
            "missing" => format!("File not found: {src}"),
            "noread" => format!("File is not readable: {src}"),
            "isdir" => format!("Source is a directory and must be a file: {src}"),
            _ => format!("Unable to slurp file: {src}: not a directory on the way"),
        }
    }
}

#[async_trait]
impl Module for Slurp {
    const NAME: &'static str = "slurp";
    const ARGS: &'static [&'static str] = &["src", "path"];
    type Change = ();

    fn host_paths(_args: &Map) -> &'static [&'static str] {
        &["src", "path"]
    }

    fn reads(&self, _ctx: &ReadCtx<'_>) -> Result<Protocol, ModuleError> {
        Ok(Protocol::Declared(ReadSet {
            reads: vec![self.batch().declare()],
        }))
    }

    fn decide(&self, observed: &Observed, _ctx: &ReadCtx<'_>) -> Result<Decision<()>, ModuleError> {
        let mut read = self.batch().parse_exec(observed.output(0)?)?;
        if let Some(why) = read.extra.first() {
            return Err(ModuleError::failed(self.refusal(why)));
        }
        let state = read
            .states
            .pop()
            .ok_or_else(|| ModuleError::failed("no state read"))?;
        let content = match (state.kind, state.content) {
            (FileKind::Missing, _) => return Err(ModuleError::failed(self.refusal("missing"))),
            (FileKind::Directory, _) => return Err(ModuleError::failed(self.refusal("isdir"))),
            (_, Some(content)) => content,
            (_, None) => return Err(ModuleError::failed(self.refusal("noread"))),
        };
        let mut data = Map::new();
        data.insert(
            "content".into(),
            Value::from(base64::engine::general_purpose::STANDARD.encode(content)),
        );
        data.insert("encoding".into(), Value::from("base64"));
        data.insert("source".into(), Value::from(self.src.clone()));
        Ok(Decision::Plan(Plan::Unchanged(data)))
    }

    async fn apply(&self, _ctx: &ModuleCtx<'_>, _change: ()) -> Result<Map, ModuleError> {
        Ok(Map::new())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::modules::testutil::{assert_args_complete, Harness};

    #[test]
    fn args() {
        assert_args_complete::<Slurp>();
    }

    #[tokio::test]
    async fn reads_base64_and_fails_like_ansible() {
        let h = Harness::new();
        let f = h.path("f.bin");
        std::fs::write(&f, b"hi\x00there\n").expect("write");
        for check in [false, true] {
            let out = h
                .run::<Slurp>(json!({ "path": f }), check, false)
                .await
                .expect("slurp");
            assert!(!out.changed);
            assert_eq!(out.data["content"], json!("aGkAdGhlcmUK"));
            assert_eq!(out.data["encoding"], json!("base64"));
            assert_eq!(out.data["source"], json!(f));
        }
        let err = h
            .run::<Slurp>(json!({ "src": h.path("nope") }), false, false)
            .await
            .expect_err("missing");
        assert!(err.to_string().contains("File not found: "), "{err}");
        let err = h
            .run::<Slurp>(json!({ "src": h.path("") }), false, false)
            .await
            .expect_err("dir");
        assert!(
            err.to_string()
                .contains("Source is a directory and must be a file: "),
            "{err}"
        );
    }

    /// A path through a regular file (ENOTDIR to Python) was "file not found".
    #[tokio::test]
    async fn path_through_a_file_is_unable_to_slurp() {
        let h = Harness::new();
        let f = h.path("f");
        std::fs::write(&f, b"x").expect("write");
        let err = h
            .run::<Slurp>(json!({ "src": format!("{f}/sub") }), false, false)
            .await
            .expect_err("notdir");
        assert!(err.to_string().contains("Unable to slurp file: "), "{err}");
    }

    /// A read-ahead "missing" answer outlived the copy that made a directory
    /// on the way a file: slurp then said "File not found".
    #[test]
    fn read_is_stale_when_a_directory_on_the_way_is_written() {
        let slurp: Slurp = serde_json::from_value(json!({ "src": "/d/f.txt/sub" })).expect("args");
        let answered = crate::transport::ExecOutput {
            status: 0,
            stdout: b"@@ missing\n@@x missing\n".to_vec(),
            stderr: Vec::new(),
        };
        let scope = slurp.batch().declare().scope.settle(&answered);
        let wrote = |p: &str| crate::modules::Touched::Entries(vec![p.to_string()]);
        assert!(scope.stale_after(&wrote("/d/f.txt")));
        assert!(scope.stale_after(&wrote("/d")));
        assert!(!scope.stale_after(&wrote("/d/other")));
    }
}
