//! `group_by`: put the host in a group named by `key` (made as needed),
//! under `parents`. Changes nothing on the host: the result's `add_group`
//! is applied by the engine, which then says whether the inventory changed.

use async_trait::async_trait;
use serde::Deserialize;

use super::{Module, ModuleCtx, ModuleError, Plan, Protocol, ReadCtx};
use crate::{Map, Value};

/// Arguments of `group_by`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupBy {
    /// The group's name (spaces become dashes, as in Ansible).
    key: Option<Value>,
    /// Parent groups (default `all`).
    #[serde(default)]
    parents: Option<Value>,
}

/// A name as Ansible's action makes it: spaces become dashes.
fn group_name(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    s.replace(' ', "-")
}

#[async_trait]
impl Module for GroupBy {
    const NAME: &'static str = "group_by";
    const ARGS: &'static [&'static str] = &["key", "parents"];
    type Change = ();

    /// Never reaches the host.
    fn reads(&self, _ctx: &ReadCtx<'_>) -> Result<Protocol, ModuleError> {
        Ok(Protocol::Local)
    }

    async fn run_imperative(&self, _ctx: &ModuleCtx<'_>) -> Result<Plan<()>, ModuleError> {
        let key = self.key.as_ref().filter(|k| !k.is_null()).ok_or_else(|| {
            ModuleError::failed("the 'key' param is required when using group_by")
        })?;
        let parents: Vec<Value> = match &self.parents {
            None | Some(Value::Null) => vec![Value::from("all")],
            Some(Value::Array(list)) => list.clone(),
            Some(one) => vec![one.clone()],
        };
        let mut data = Map::new();
        data.insert("add_group".into(), Value::from(group_name(key)));
        data.insert(
            "parent_groups".into(),
            Value::Array(parents.iter().map(|p| Value::from(group_name(p))).collect()),
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
    use crate::modules::testutil::run;

    #[tokio::test]
    async fn the_request_names_group_and_parents() {
        let out = run::<GroupBy>(json!({"key": "os Debian"}), false)
            .await
            .expect("group_by");
        assert_eq!(out.data["add_group"], json!("os-Debian"));
        assert_eq!(out.data["parent_groups"], json!(["all"]));
        let out = run::<GroupBy>(json!({"key": "k", "parents": "p q"}), false)
            .await
            .expect("parents");
        assert_eq!(out.data["parent_groups"], json!(["p-q"]));
        let err = run::<GroupBy>(json!({"parents": ["p"]}), false)
            .await
            .expect_err("no key");
        assert!(err.to_string().contains("'key' param is required"), "{err}");
    }
}
