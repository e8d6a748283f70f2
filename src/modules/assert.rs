//! `assert`: check that conditionals hold; fail the host on the first that
//! does not. Each is a conditional as Ansible 2.19 evaluates it
//! ([`crate::template::trust`]): trusted text, a boolean result.

use async_trait::async_trait;
use serde::Deserialize;

use super::args::opt_bool_ish;
use super::fail::message_text;
use super::{Module, ModuleCtx, ModuleError, Plan, Protocol, ReadCtx};
use crate::template::trust::{Origin, AS_TEMPLATE};
use crate::{Map, Value};

/// The argument through which the executor tells where a `that` taken from
/// a templated argument mapping (`assert: '{{ item }}'`) came from: a
/// variable path, or empty when it was computed.
pub const THAT_FROM: &str = "_that_from";

/// A present argument, even when null (`that:` is empty, not missing).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// Arguments of `assert`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assert {
    /// One conditional or a list of them.
    #[serde(default, deserialize_with = "present")]
    that: Option<Value>,
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
    /// [`THAT_FROM`].
    #[serde(default, rename = "_that_from")]
    that_from: Option<String>,
}

#[async_trait]
impl Module for Assert {
    const NAME: &'static str = "assert";
    const ARGS: &'static [&'static str] =
        &["that", "fail_msg", "msg", "success_msg", "quiet", THAT_FROM];
    type Change = ();

    /// Never reaches the host.
    fn reads(&self, _ctx: &ReadCtx<'_>) -> Result<Protocol, ModuleError> {
        Ok(Protocol::Local)
    }

    async fn run_imperative(&self, ctx: &ModuleCtx<'_>) -> Result<Plan<()>, ModuleError> {
        let Some(that) = &self.that else {
            return Err(ModuleError::Args("missing required arguments: that".into()));
        };
        let (items, listed) = match that {
            Value::Array(items) => (items.as_slice(), true),
            one => (std::slice::from_ref(one), false),
        };
        let mut deprecations = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let origin = match self.that_from.as_deref() {
                None => Origin::Source,
                Some("") => Origin::Computed,
                Some(p) if listed => Origin::Var(format!("{p}[{i}]")),
                Some(p) => Origin::Var(p.to_string()),
            };
            let verdict = ctx.render.condition(item, &origin).map_err(|e| {
                let text = match item {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                ModuleError::failed(format!(
                    "The conditional check '{text}' failed. The error was: {e}"
                ))
            })?;
            if verdict.deprecated {
                deprecations.push(serde_json::json!({"msg": AS_TEMPLATE, "version": "2.23"}));
            }
            if !verdict.value {
                let msg = self
                    .fail_msg
                    .clone()
                    .filter(|m| !m.is_null())
                    .unwrap_or_else(|| Value::from("Assertion failed"));
                let mut data = Map::new();
                data.insert("assertion".into(), item.clone());
                data.insert("evaluated_to".into(), Value::Bool(false));
                data.insert("msg".into(), msg.clone());
                if !deprecations.is_empty() {
                    data.insert("deprecations".into(), Value::Array(deprecations));
                }
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
        if !deprecations.is_empty() {
            data.insert("deprecations".into(), Value::Array(deprecations));
        }
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
        let out = run_with::<Assert>(
            json!({"that": "nodes | length > 0", "success_msg": "ok"}),
            false,
            vars(),
        )
        .await
        .expect("passes");
        assert_eq!(out.data["msg"], "ok");
    }

    #[tokio::test]
    async fn first_false_fails_with_its_assertion() {
        match run_with::<Assert>(
            json!({"that": ["mem > 80", "empty | length > 0", "mem > 100"]}),
            false,
            vars(),
        )
        .await
        {
            Err(ModuleError::Failed { msg, data }) => {
                assert_eq!(msg, "Assertion failed");
                assert_eq!(data["assertion"], "empty | length > 0");
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
    async fn conditionals_must_give_booleans() {
        match run_with::<Assert>(json!({"that": "nodes"}), false, vars()).await {
            Err(ModuleError::Failed { msg, .. }) => {
                assert!(msg.contains("must have a boolean result"), "{msg}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn missing_that_is_a_missing_argument_and_empty_that_an_empty_conditional() {
        match run_with::<Assert>(json!({}), false, vars()).await {
            Err(ModuleError::Args(msg)) => assert_eq!(msg, "missing required arguments: that"),
            other => panic!("{other:?}"),
        }
        match run_with::<Assert>(json!({"that": null}), false, vars()).await {
            Err(ModuleError::Failed { msg, .. }) => {
                assert!(msg.contains("Empty conditional expression"), "{msg}")
            }
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
