//! `raw`: run a command line through the host's shell as it is, with no
//! module machinery on the host (bootstrapping a host without Python, or
//! network gear). Its effect cannot be known in advance: skipped in check
//! mode and reported changed, as in Ansible.

use async_trait::async_trait;
use serde::Deserialize;

use super::args::opt_string_ish;
use super::{Module, ModuleCtx, ModuleError, Plan, Protocol, ReadCtx};
use crate::transport::{shell_quote, ExecOutput};
use crate::{Map, Value};

/// Arguments of `raw`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    /// The command line (free form: `raw: apt-get install -y python3`).
    #[serde(default, rename = "_raw_params", deserialize_with = "opt_string_ish")]
    raw_params: Option<String>,
    /// Shell to run it with (`executable -c LINE`); default the login shell's
    /// `/bin/sh`.
    #[serde(default, deserialize_with = "opt_string_ish")]
    executable: Option<String>,
}

impl Raw {
    /// The line the host runs.
    fn line(&self) -> Result<String, ModuleError> {
        let text = self
            .raw_params
            .as_deref()
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| ModuleError::Args("raw needs a command line".into()))?;
        Ok(match &self.executable {
            Some(sh) => format!("{} -c {}", shell_quote(sh), shell_quote(text)),
            None => text.to_string(),
        })
    }
}

/// The result fields of a finished command, as Ansible's raw returns them.
pub(crate) fn result_of(out: &ExecOutput) -> Map {
    let lines = |s: &str| {
        Value::Array(
            s.lines()
                .map(|l| Value::from(l.to_string()))
                .collect::<Vec<_>>(),
        )
    };
    let stdout = out.stdout_str();
    let stderr = out.stderr_str();
    let mut m = Map::new();
    m.insert("rc".into(), Value::from(out.status));
    m.insert("stdout_lines".into(), lines(&stdout));
    m.insert("stderr_lines".into(), lines(&stderr));
    m.insert("stdout".into(), Value::from(stdout));
    m.insert("stderr".into(), Value::from(stderr));
    m
}

#[async_trait]
impl Module for Raw {
    const NAME: &'static str = "raw";
    const ARGS: &'static [&'static str] = &["_raw_params", "executable"];
    const FREE_FORM: bool = true;
    type Change = String;

    fn validate(&self) -> Result<(), super::ArgError> {
        self.line().map(|_| ()).map_err(|e| match e {
            ModuleError::Args(m) => m.into(),
            other => other.to_string().into(),
        })
    }

    fn reads(&self, _ctx: &ReadCtx<'_>) -> Result<Protocol, ModuleError> {
        Ok(Protocol::Imperative)
    }

    async fn run_imperative(&self, _ctx: &ModuleCtx<'_>) -> Result<Plan<String>, ModuleError> {
        Ok(Plan::Run(self.line()?))
    }

    async fn apply(&self, ctx: &ModuleCtx<'_>, line: String) -> Result<Map, ModuleError> {
        let out = ctx.remote.exec(&line, b"").await?;
        let data = result_of(&out);
        if out.status != 0 {
            return Err(ModuleError::Failed {
                msg: "non-zero return code".into(),
                data,
            });
        }
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
        assert_args_complete::<Raw>();
    }

    #[test]
    fn the_line_runs_as_written_or_through_the_executable() {
        let m: Raw =
            serde_json::from_value(json!({"_raw_params": "echo $HOME | tr a b"})).expect("args");
        assert_eq!(m.line().expect("line"), "echo $HOME | tr a b");
        let m: Raw =
            serde_json::from_value(json!({"_raw_params": "echo 'x'", "executable": "/bin/bash"}))
                .expect("args");
        assert_eq!(m.line().expect("line"), "/bin/bash -c 'echo '\\''x'\\'''");
        let m: Raw = serde_json::from_value(json!({"_raw_params": " "})).expect("args");
        assert!(m.validate().is_err());
    }

    #[tokio::test]
    async fn runs_reports_and_is_skipped_in_check_mode() {
        let out = run::<Raw>(json!({"_raw_params": "echo a; echo b >&2"}), false)
            .await
            .expect("raw");
        assert!(out.changed);
        assert_eq!(out.data["rc"], json!(0));
        assert_eq!(out.data["stdout_lines"], json!(["a"]));
        assert_eq!(out.data["stderr"], json!("b\n"));
        let out = run::<Raw>(json!({"_raw_params": "echo a"}), true)
            .await
            .expect("check");
        assert!(out.skipped.is_some());
        let err = run::<Raw>(json!({"_raw_params": "exit 3"}), false)
            .await
            .expect_err("fails");
        let ModuleError::Failed { data, .. } = err else {
            panic!("failed expected")
        };
        assert_eq!(data["rc"], json!(3));
    }
}
