//! `assert`: check that expressions are true; fail the host on the first
//! that is not. Expressions are bare Jinja2 (no braces), evaluated with the
//! host's variables and judged by Jinja truthiness.

use async_trait::async_trait;
use serde::Deserialize;

use super::args::opt_bool_ish;
use super::cmdargs::truthy;
use super::fail::message_text;
use super::{Module, ModuleCtx, ModuleError, Plan, Protocol, ReadCtx};
use crate::{Map, Value};

/// Arguments of `assert`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assert {
    /// One expression or a list of them.
    that: Value,
    /// Message when an assertion fails (default 'Assertion failed').
    #[serde(default, alias = "msg")]
    fail_msg: Option<Value>,
    /// Message when all pass (default 'All assertions passed').
    #[serde(default)]
    success_msg: Option<Value>,
    /// Less output on success; accepted, the reporter decides.
    #[serde(default, deserialize_with = "opt_bool_ish")]
    #[allow(dead_code)]
    quiet: Option<bool>,
}

#[async_trait]
impl Module for Assert {
    const NAME: &'static str = "assert";
    const ARGS: &'static [&'static str] = &["that", "fail_msg", "msg", "success_msg", "quiet"];
    type Change = ();

    /// Never reaches the host.
    fn reads(&self, _ctx: &ReadCtx<'_>) -> Result<Protocol, ModuleError> {
        Ok(Protocol::Local)
    }

    async fn run_imperative(&self, ctx: &ModuleCtx<'_>) -> Result<Plan<()>, ModuleError> {
        let items = match &self.that {
            Value::Array(items) => items.clone(),
            Value::Null => {
                return Err(ModuleError::Args(
                    "conditional required in \"that\" string".into(),
                ))
            }
            one => vec![one.clone()],
        };
        for item in items {
            let value = match &item {
                Value::String(expr) => ctx.render.eval(expr).map_err(|e| {
                    ModuleError::failed(format!(
                        "The conditional check '{expr}' failed. The error was: {e}"
                    ))
                })?,
                other => other.clone(),
            };
            if !truthy(&value) {
                let msg = self
                    .fail_msg
                    .clone()
                    .filter(|m| !m.is_null())
                    .unwrap_or_else(|| Value::from("Assertion failed"));
                let mut data = Map::new();
                data.insert("assertion".into(), item);
                data.insert("evaluated_to".into(), Value::Bool(false));
                data.insert("msg".into(), msg.clone());
                return Err(ModuleError::Failed {
                    msg: message_text(&msg),
                    data,
                });
            }
        }
        let mut data = Map::new();
        data.insert(
            "msg".into(),
            self.success_msg
                .clone()
                .filter(|m| !m.is_null())
                .unwrap_or_else(|| Value::from("All assertions passed")),
        );
        Ok(Plan::Unchanged(data))
    }

    async fn apply(&self, _ctx: &ModuleCtx<'_>, _change: ()) -> Result<Map, ModuleError> {
        Ok(Map::new())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::modules::testutil::run_with;

    fn vars() -> Value {
        json!({"mem": 92, "nodes": ["a", "b"], "name": "pi-master", "empty": ""})
    }

    #[tokio::test]
    async fn passes_when_all_are_true() {
        let out = run_with::<Assert>(
            json!({"that": ["mem > 80", "nodes | length == 2", "name is string", "'pi' in name", true]}),
            false,
            vars(),
        )
        .await
        .expect("passes");
        assert!(!out.changed);
        assert_eq!(out.data["msg"], "All assertions passed");
        let out = run_with::<Assert>(json!({"that": "nodes", "success_msg": "ok"}), false, vars())
            .await
            .expect("passes");
        assert_eq!(out.data["msg"], "ok");
    }

    #[tokio::test]
    async fn first_false_fails_with_its_assertion() {
        match run_with::<Assert>(
            json!({"that": ["mem > 80", "empty", "mem > 100"]}),
            false,
            vars(),
        )
        .await
        {
            Err(ModuleError::Failed { msg, data }) => {
                assert_eq!(msg, "Assertion failed");
                assert_eq!(data["assertion"], "empty");
                assert_eq!(data["evaluated_to"], false);
            }
            other => panic!("{other:?}"),
        }
        match run_with::<Assert>(
            json!({"that": "mem < 50", "msg": "too much memory"}),
            false,
            vars(),
        )
        .await
        {
            Err(ModuleError::Failed { msg, .. }) => assert_eq!(msg, "too much memory"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn broken_expressions_fail() {
        match run_with::<Assert>(json!({"that": "mem >"}), false, vars()).await {
            Err(ModuleError::Failed { msg, .. }) => {
                assert!(
                    msg.starts_with("The conditional check 'mem >' failed"),
                    "{msg}"
                )
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            run_with::<Assert>(json!({"fail_msg": "x"}), false, vars()).await,
            Err(ModuleError::Args(_))
        ));
    }
}
