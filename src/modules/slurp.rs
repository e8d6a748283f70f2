//! `slurp`: fetch a file's content from the host, base64-encoded. Changes
//! nothing.

use async_trait::async_trait;
use base64::Engine as _;
use serde::Deserialize;

use super::fs::{FileKind, Read, ReadBatch};
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
    /// The one read: the file's content, through a link.
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
        batch
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
        let state = self
            .batch()
            .parse_exec(observed.output(0)?)?
            .states
            .pop()
            .ok_or_else(|| ModuleError::failed("no state read"))?;
        let content = match (state.kind, state.content) {
            (FileKind::Missing, _) => {
                return Err(ModuleError::failed(format!("file not found: {}", self.src)))
            }
            (FileKind::Directory, _) => {
                return Err(ModuleError::failed(format!(
                    "source is a directory and must be a file: {}",
                    self.src
                )))
            }
            (_, Some(content)) => content,
            (_, None) => {
                return Err(ModuleError::failed(format!(
                    "file is not readable: {}",
                    self.src
                )))
            }
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
        assert!(err.to_string().contains("file not found"), "{err}");
        let err = h
            .run::<Slurp>(json!({ "src": h.path("") }), false, false)
            .await
            .expect_err("dir");
        assert!(err.to_string().contains("is a directory"), "{err}");
    }
}
