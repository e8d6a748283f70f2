//! `ping`: prove drover can log in to the host and run a command there.
//! Ansible's ping tests that Python runs; drover needs only a shell, so a
//! shell answering is the proof. Changes nothing.

use async_trait::async_trait;
use serde::Deserialize;

use super::args::opt_string_ish;
use super::{
    Decision, Module, ModuleCtx, ModuleError, Observed, Plan, Protocol, ReadCtx, ReadSet, Scope,
};
use crate::{Map, Value};

/// Arguments of `ping`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ping {
    /// What to answer with (default `pong`); `crash` fails the task, as in
    /// Ansible.
    #[serde(default, deserialize_with = "opt_string_ish")]
    data: Option<String>,
}

/// The read: a shell that answers.
const PROBE: &str = "echo pong";

#[async_trait]
impl Module for Ping {
    const NAME: &'static str = "ping";
    const ARGS: &'static [&'static str] = &["data"];
    type Change = ();

    fn reads(&self, _ctx: &ReadCtx<'_>) -> Result<Protocol, ModuleError> {
        Ok(Protocol::Declared(ReadSet::one(PROBE.into(), Scope::Host)))
    }

    fn decide(&self, observed: &Observed, _ctx: &ReadCtx<'_>) -> Result<Decision<()>, ModuleError> {
        let out = observed.output(0)?;
        if out.status != 0 || out.stdout_str().trim() != "pong" {
            return Err(ModuleError::failed(format!(
                "the host's shell did not answer: {}",
                out.stderr_str().trim()
            )));
        }
        let data = self.data.clone().unwrap_or_else(|| "pong".into());
        if data == "crash" {
            // Ansible's ping raises an exception; Ansible reports the crash
            // of a module in these words.
            return Err(ModuleError::failed("Task failed: Module failed: boom"));
        }
        let mut m = Map::new();
        m.insert("ping".into(), Value::from(data));
        Ok(Decision::Plan(Plan::Unchanged(m)))
    }

    async fn apply(&self, _ctx: &ModuleCtx<'_>, _change: ()) -> Result<Map, ModuleError> {
        Ok(Map::new())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::modules::reads::observed_stdout;
    use crate::modules::testutil::{assert_args_complete, run, TestRender};

    #[test]
    fn args() {
        assert_args_complete::<Ping>();
    }

    #[test]
    fn answers_pong_or_the_data_and_crash_fails() {
        let render = TestRender::new(json!({}));
        let ctx = render.read_ctx();
        let m: Ping = serde_json::from_value(json!({})).expect("args");
        let Decision::Plan(Plan::Unchanged(d)) =
            m.decide(&observed_stdout(&["pong\n"]), &ctx).expect("ok")
        else {
            panic!("unchanged expected")
        };
        assert_eq!(d["ping"], json!("pong"));
        let m: Ping = serde_json::from_value(json!({"data": "hi"})).expect("args");
        let Decision::Plan(Plan::Unchanged(d)) =
            m.decide(&observed_stdout(&["pong\n"]), &ctx).expect("ok")
        else {
            panic!("unchanged expected")
        };
        assert_eq!(d["ping"], json!("hi"));
        let m: Ping = serde_json::from_value(json!({"data": "crash"})).expect("args");
        let Err(ModuleError::Failed { msg, .. }) = m.decide(&observed_stdout(&["pong\n"]), &ctx)
        else {
            panic!("crash fails")
        };
        assert_eq!(msg, "Task failed: Module failed: boom");
        assert!(m.decide(&observed_stdout(&["nope"]), &ctx).is_err());
    }

    #[tokio::test]
    async fn pings_the_local_host_in_check_mode_too() {
        for check in [false, true] {
            let out = run::<Ping>(json!({}), check).await.expect("ping");
            assert!(!out.changed);
            assert_eq!(out.data["ping"], json!("pong"));
        }
    }
}
