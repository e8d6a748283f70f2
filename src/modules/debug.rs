//! `debug`: print a message or a variable's value. Changes nothing.

use async_trait::async_trait;
use serde::Deserialize;

use super::{Module, ModuleCtx, ModuleError, Plan, Protocol, ReadCtx};
use crate::{Map, Value};

/// Arguments of `debug`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Debug {
    /// Message to print (already templated).
    #[serde(default)]
    msg: Option<Value>,
    /// Name or expression of a variable to print.
    #[serde(default)]
    var: Option<String>,
    /// Minimum verbosity at which the message is shown.
    #[serde(default)]
    #[allow(dead_code)]
    verbosity: Option<u8>,
}

#[async_trait]
impl Module for Debug {
    const NAME: &'static str = "debug";
    const SHOWS_RESULT: bool = true;
    const ARGS: &'static [&'static str] = &["msg", "var", "verbosity"];
    type Change = ();

    fn validate(&self) -> Result<(), super::ArgError> {
        if self.msg.is_some() && self.var.is_some() {
            return Err("arguments 'msg' and 'var' are mutually exclusive".into());
        }
        Ok(())
    }

    /// Never reaches the host.
    fn reads(&self, _ctx: &ReadCtx<'_>) -> Result<Protocol, ModuleError> {
        Ok(Protocol::Local)
    }

    async fn run_imperative(&self, ctx: &ModuleCtx<'_>) -> Result<Plan<()>, ModuleError> {
        let mut data = Map::new();
        match (&self.msg, &self.var) {
            (Some(_), Some(_)) => {
                return Err(ModuleError::Args(
                    "'msg' and 'var' are mutually exclusive".into(),
                ))
            }
            (_, Some(var)) => {
                // Ansible prints this for an undefined variable and goes on.
                let value = ctx
                    .render
                    .eval_defined(var)?
                    .unwrap_or_else(|| Value::from("VARIABLE IS NOT DEFINED!"));
                data.insert(var.clone(), value);
            }
            (msg, None) => {
                data.insert(
                    "msg".into(),
                    msg.clone().unwrap_or_else(|| Value::from("Hello world!")),
                );
            }
        }
        Ok(Plan::Unchanged(data))
    }

    async fn apply(&self, _ctx: &ModuleCtx<'_>, _change: ()) -> Result<Map, ModuleError> {
        Ok(Map::new())
    }
}
