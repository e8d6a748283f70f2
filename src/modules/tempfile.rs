//! `tempfile`: make a new temporary file or directory on the host with
//! `mktemp` (readable by its creator only) and return its path. Every run
//! makes a new one, so it always reports a change; it has no check mode
//! (skipped in `--check`), as in Ansible.

use async_trait::async_trait;
use serde::Deserialize;

use super::args::opt_string_ish;
use super::{Module, ModuleCtx, ModuleError, Plan, Protocol, ReadCtx};
use crate::transport::shell_quote;
use crate::{Map, Value};

/// Arguments of `tempfile`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tempfile {
    /// Directory to make it in; default the host's temporary directory.
    #[serde(default, deserialize_with = "opt_string_ish")]
    path: Option<String>,
    /// Start of its name (default `ansible.`).
    #[serde(default, deserialize_with = "opt_string_ish")]
    prefix: Option<String>,
    /// End of its name.
    #[serde(default, deserialize_with = "opt_string_ish")]
    suffix: Option<String>,
    /// `file` (default) or `directory`.
    #[serde(default, deserialize_with = "opt_string_ish")]
    state: Option<String>,
}

impl Tempfile {
    /// The `mktemp` command that makes it and prints its path.
    fn script(&self) -> Result<String, ModuleError> {
        let dir_flag = match self.state.as_deref().unwrap_or("file") {
            "file" => "",
            "directory" => " -d",
            other => {
                return Err(ModuleError::Args(format!(
                    "value of state must be one of: directory, file, got: {other}"
                )))
            }
        };
        let prefix = self.prefix.as_deref().unwrap_or("ansible.");
        let suffix = self.suffix.as_deref().unwrap_or("");
        // Ansible's words (the task's tests look for them): a name part
        // that is not its own base name holds a '/'.
        for (arg, part) in [("prefix", prefix), ("suffix", suffix)] {
            if part.contains('/') {
                return Err(ModuleError::Args(format!(
                    "{arg} must be a valid file name component, got {}",
                    super::args::py_repr(part)
                )));
            }
        }
        let dir = match &self.path {
            Some(p) => shell_quote(p),
            None => "\"${TMPDIR:-/tmp}\"".to_string(),
        };
        Ok(format!(
            "mktemp{dir_flag} -p {dir} --suffix={} {}",
            shell_quote(suffix),
            shell_quote(&format!("{prefix}XXXXXXXX"))
        ))
    }
}

#[async_trait]
impl Module for Tempfile {
    const NAME: &'static str = "tempfile";
    const ARGS: &'static [&'static str] = &["path", "prefix", "suffix", "state"];
    type Change = String;

    fn host_paths(_args: &Map) -> &'static [&'static str] {
        &["path"]
    }

    fn validate(&self) -> Result<(), super::ArgError> {
        self.script().map(|_| ()).map_err(|e| match e {
            ModuleError::Args(m) => m.into(),
            other => other.to_string().into(),
        })
    }

    fn reads(&self, _ctx: &ReadCtx<'_>) -> Result<Protocol, ModuleError> {
        Ok(Protocol::Imperative)
    }

    async fn run_imperative(&self, _ctx: &ModuleCtx<'_>) -> Result<Plan<String>, ModuleError> {
        Ok(Plan::Run(self.script()?))
    }

    async fn apply(&self, ctx: &ModuleCtx<'_>, script: String) -> Result<Map, ModuleError> {
        let out = ctx.remote.exec(&script, b"").await?;
        let path = out.stdout_str().trim_end_matches('\n').to_string();
        if out.status != 0 || path.is_empty() {
            return Err(ModuleError::failed(format!(
                "could not make a temporary {}: {}",
                self.state.as_deref().unwrap_or("file"),
                out.stderr_str().trim()
            )));
        }
        let mut data = Map::new();
        data.insert("path".into(), Value::from(path));
        data.insert(
            "state".into(),
            Value::from(self.state.clone().unwrap_or_else(|| "file".into())),
        );
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::modules::testutil::{assert_args_complete, run};

    #[test]
    fn args() {
        assert_args_complete::<Tempfile>();
    }

    #[test]
    fn names_are_quoted_and_refused_with_a_slash() {
        let m: Tempfile = serde_json::from_value(
            json!({"path": "/tmp/a b", "prefix": "x'y", "state": "directory"}),
        )
        .expect("args");
        assert_eq!(
            m.script().expect("script"),
            "mktemp -d -p '/tmp/a b' --suffix='' 'x'\\''yXXXXXXXX'"
        );
        let m: Tempfile = serde_json::from_value(json!({"suffix": "../x"})).expect("args");
        assert_eq!(
            m.validate().expect_err("a path in suffix").msg,
            "suffix must be a valid file name component, got '../x'"
        );
        let m: Tempfile =
            serde_json::from_value(json!({"prefix": "a/", "suffix": "/b"})).expect("args");
        assert_eq!(
            m.validate().expect_err("a path in prefix").msg,
            "prefix must be a valid file name component, got 'a/'"
        );
        let m: Tempfile = serde_json::from_value(json!({"state": "link"})).expect("args");
        assert!(m.validate().is_err());
    }

    #[tokio::test]
    async fn makes_a_new_one_each_run_readable_by_its_creator_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().to_str().expect("utf8");
        let args = json!({"path": p, "prefix": "t.", "suffix": ".d", "state": "directory"});
        let first = run::<Tempfile>(args.clone(), false).await.expect("runs");
        let second = run::<Tempfile>(args.clone(), false).await.expect("runs");
        assert!(first.changed && second.changed);
        let path = first.data["path"].as_str().expect("path").to_string();
        assert_ne!(Some(path.as_str()), second.data["path"].as_str());
        let name = path.rsplit('/').next().expect("name");
        assert!(name.starts_with("t.") && name.ends_with(".d"), "{name}");
        let meta = std::fs::metadata(&path).expect("made");
        assert!(meta.is_dir());
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(meta.permissions().mode() & 0o777, 0o700);
        let checked = run::<Tempfile>(args, true).await.expect("runs");
        assert!(checked.skipped.is_some(), "no check mode, as in Ansible");
    }
}
