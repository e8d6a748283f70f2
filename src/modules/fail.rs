//! `fail`: fail the host with a message.

use async_trait::async_trait;
use serde::Deserialize;

use super::{Module, ModuleCtx, ModuleError, Plan, Protocol, ReadCtx};
use crate::{Map, Value};

/// Arguments of `fail`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fail {
    /// The message (default 'Failed as requested from task').
    #[serde(default)]
    msg: Option<Value>,
}

/// A message value as text: strings as they are, anything else as JSON.
pub fn message_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[async_trait]
impl Module for Fail {
    const NAME: &'static str = "fail";
    const ARGS: &'static [&'static str] = &["msg"];
    type Change = ();

    /// Never reaches the host.
    fn reads(&self, _ctx: &ReadCtx<'_>) -> Result<Protocol, ModuleError> {
        Ok(Protocol::Local)
    }

    async fn run_imperative(&self, _ctx: &ModuleCtx<'_>) -> Result<Plan<()>, ModuleError> {
        let msg = self
            .msg
            .clone()
            .filter(|m| !m.is_null())
            .unwrap_or_else(|| Value::from("Failed as requested from task"));
        let mut data = Map::new();
        data.insert("msg".into(), msg.clone());
        Err(ModuleError::Failed {
            msg: message_text(&msg),
            data,
        })
    }

    async fn apply(&self, _ctx: &ModuleCtx<'_>, _change: ()) -> Result<Map, ModuleError> {
        Ok(Map::new())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::modules::testutil::run;

    #[tokio::test]
    async fn always_fails() {
        match run::<Fail>(json!({}), true).await {
            Err(ModuleError::Failed { msg, .. }) => {
                assert_eq!(msg, "Failed as requested from task")
            }
            other => panic!("{other:?}"),
        }
        match run::<Fail>(json!({"msg": "no k3s token"}), false).await {
            Err(ModuleError::Failed { msg, data }) => {
                assert_eq!(msg, "no k3s token");
                assert_eq!(data["msg"], "no k3s token");
            }
            other => panic!("{other:?}"),
        }
        match run::<Fail>(json!({"msg": ["a", "b"]}), false).await {
            Err(ModuleError::Failed { msg, data }) => {
                assert_eq!(msg, r#"["a","b"]"#);
                assert_eq!(data["msg"], json!(["a", "b"]));
            }
            other => panic!("{other:?}"),
        }
    }
}
