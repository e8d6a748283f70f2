//! `add_host`: add a host (or groups and variables of one) to the run's
//! inventory. Changes nothing on any host: the result's `add_host` is
//! applied by the engine, which then says whether the inventory changed.
//!
//! As Ansible's action, it runs once per task (or loop item), not per host.
//! Every argument but the name and groups is a host variable, so `ARGS` is
//! `["*"]`.

use async_trait::async_trait;
use serde::Deserialize;

use super::{Module, ModuleCtx, ModuleError, Plan, Protocol, ReadCtx};
use crate::{Map, Value};

/// Arguments of `add_host`: `name` (or `host`, `hostname`), `groups` (or
/// `group`, `groupname`), and host variables.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct AddHost(Map);

const NAMES: [&str; 3] = ["name", "hostname", "host"];
const GROUPS: [&str; 3] = ["groups", "group", "groupname"];

/// Text of a scalar argument (numbers as written).
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl AddHost {
    /// The result Ansible's action returns: `add_host` with the host's
    /// name, groups and variables (a `name:port` sets `ansible_ssh_port`).
    fn request(&self) -> Result<Map, ModuleError> {
        let raw = NAMES
            .iter()
            .find_map(|k| self.0.get(*k))
            .ok_or_else(|| ModuleError::failed("name, host or hostname needs to be provided"))?;
        let raw = text(raw).ok_or_else(|| ModuleError::failed("name must be a string"))?;
        let (name, port) = split_port(&raw);
        let groups: Vec<String> = match GROUPS.iter().find_map(|k| self.0.get(*k)) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(list)) => list.iter().filter_map(text).collect(),
            Some(Value::String(s)) => s.split(',').map(str::to_string).collect(),
            Some(_) => return Err(ModuleError::failed("Groups must be specified as a list.")),
        };
        let mut unique: Vec<String> = Vec::new();
        for g in groups.iter().map(|g| g.trim()).filter(|g| !g.is_empty()) {
            if !unique.iter().any(|u| u == g) {
                unique.push(g.to_string());
            }
        }
        let mut vars: Map = self
            .0
            .iter()
            .filter(|(k, _)| !NAMES.contains(&k.as_str()) && !GROUPS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let Some(p) = port {
            vars.insert("ansible_ssh_port".into(), Value::from(p));
        }
        let mut req = Map::new();
        req.insert("host_name".into(), Value::from(name));
        req.insert(
            "groups".into(),
            Value::Array(unique.into_iter().map(Value::from).collect()),
        );
        req.insert("host_vars".into(), Value::Object(vars));
        let mut data = Map::new();
        data.insert("add_host".into(), Value::Object(req));
        Ok(data)
    }
}

/// `host:port` (not an IPv6 address) as name and port.
fn split_port(raw: &str) -> (String, Option<u16>) {
    if let Some(rest) = raw.strip_prefix('[') {
        if let Some((addr, port)) = rest.split_once("]:") {
            if let Ok(p) = port.parse() {
                return (addr.to_string(), Some(p));
            }
        }
        return (raw.to_string(), None);
    }
    match raw.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') => match port.parse() {
            Ok(p) => (name.to_string(), Some(p)),
            Err(_) => (raw.to_string(), None),
        },
        _ => (raw.to_string(), None),
    }
}

#[async_trait]
impl Module for AddHost {
    const NAME: &'static str = "add_host";
    const ARGS: &'static [&'static str] = &["*"];
    const FREE_FORM: bool = false;
    type Change = ();

    /// Never reaches a host.
    fn reads(&self, _ctx: &ReadCtx<'_>) -> Result<Protocol, ModuleError> {
        Ok(Protocol::Local)
    }

    async fn run_imperative(&self, _ctx: &ModuleCtx<'_>) -> Result<Plan<()>, ModuleError> {
        Ok(Plan::Unchanged(self.request()?))
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
    async fn the_request_names_host_groups_and_vars() {
        let out = run::<AddHost>(
            json!({"name": "web9:2222", "groups": "a, b,a", "ansible_user": "u", "x": {"y": 1}}),
            false,
        )
        .await
        .expect("add_host");
        assert!(!out.changed);
        assert_eq!(
            out.data["add_host"],
            json!({"host_name": "web9", "groups": ["a", "b"],
                   "host_vars": {"ansible_user": "u", "x": {"y": 1}, "ansible_ssh_port": 2222}})
        );
        let out = run::<AddHost>(json!({"hostname": "h", "group": ["g"]}), false)
            .await
            .expect("aliases");
        assert_eq!(out.data["add_host"]["groups"], json!(["g"]));
        let err = run::<AddHost>(json!({"groups": "g"}), false)
            .await
            .expect_err("no name");
        assert!(err.to_string().contains("name, host or hostname"), "{err}");
    }
}
