//! `getent`: look entries up in a name-service database (`passwd`, `group`,
//! `hosts`, `services`...) and set them as the fact `getent_<database>`:
//! key → the entry's other fields. One declared read; changes nothing.

use async_trait::async_trait;
use serde::Deserialize;

use super::args::{bool_ish, opt_string_ish, yes};
use super::{
    safe, Decision, Module, ModuleCtx, ModuleError, Observed, Plan, Protocol, ReadCtx, ReadSet,
    Scope,
};
use crate::transport::shell_quote;
use crate::{Map, Value};

/// Arguments of `getent`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Getent {
    /// The database (`passwd`, `group`, `hosts`, ...).
    database: String,
    /// One key to look up; without it the whole database.
    #[serde(default, deserialize_with = "opt_string_ish")]
    key: Option<String>,
    /// Field separator; default `:` for passwd, shadow, group and gshadow,
    /// whitespace otherwise.
    #[serde(default, deserialize_with = "opt_string_ish")]
    split: Option<String>,
    /// Fail when the key is not found (default yes).
    #[serde(default = "yes", deserialize_with = "bool_ish")]
    fail_key: bool,
    /// Name service to use (`getent -s`).
    #[serde(default, deserialize_with = "opt_string_ish")]
    service: Option<String>,
}

/// Databases whose fields `:` separates.
const COLON: &[&str] = &["passwd", "shadow", "group", "gshadow"];

impl Getent {
    fn script(&self) -> String {
        let mut s = String::from("getent");
        if let Some(svc) = &self.service {
            s.push_str(&format!(" -s {}", shell_quote(svc)));
        }
        s.push(' ');
        s.push_str(&shell_quote(&self.database));
        if let Some(k) = &self.key {
            s.push_str(" -- ");
            s.push_str(&shell_quote(k));
        }
        s
    }

    /// The fact from `getent`'s status and output.
    fn plan(&self, status: i32, stdout: &str, stderr: &str) -> Result<Plan<()>, ModuleError> {
        let fact = format!("getent_{}", self.database);
        let mut entries = Map::new();
        match status {
            0 => {
                let split = self
                    .split
                    .clone()
                    .or_else(|| COLON.contains(&self.database.as_str()).then(|| ":".into()));
                for line in stdout.lines().filter(|l| !l.trim().is_empty()) {
                    let fields: Vec<String> = match &split {
                        Some(sep) => line.split(sep.as_str()).map(str::to_string).collect(),
                        None => line.split_whitespace().map(str::to_string).collect(),
                    };
                    let mut it = fields.into_iter();
                    let Some(first) = it.next() else { continue };
                    let rest: Vec<Value> = it.map(Value::from).collect();
                    // A repeated key (hosts): the last entry wins, as in Ansible.
                    entries.insert(first, Value::Array(rest));
                }
            }
            2 if !self.fail_key => {
                if let Some(k) = &self.key {
                    entries.insert(k.clone(), Value::Null);
                }
            }
            2 => {
                return Err(ModuleError::failed(
                    "One or more supplied key could not be found in the database.",
                ))
            }
            1 => {
                return Err(ModuleError::failed(
                    "Missing arguments, or database unknown.",
                ))
            }
            3 => {
                return Err(ModuleError::failed(
                    "Enumeration not supported on this database.",
                ))
            }
            other => {
                return Err(ModuleError::failed(format!(
                    "getent failed (rc {other}): {}",
                    stderr.trim()
                )))
            }
        }
        let mut facts = Map::new();
        facts.insert(fact, Value::Object(entries));
        let mut data = Map::new();
        data.insert("ansible_facts".into(), Value::Object(facts));
        Ok(Plan::Unchanged(data))
    }
}

#[async_trait]
impl Module for Getent {
    const NAME: &'static str = "getent";
    const ARGS: &'static [&'static str] = &["database", "key", "split", "fail_key", "service"];
    type Change = ();

    fn reads(&self, _ctx: &ReadCtx<'_>) -> Result<Protocol, ModuleError> {
        safe::name("database", &self.database)?;
        if !self
            .database
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(ModuleError::Args(format!(
                "database {:?} is not a database name",
                self.database
            )));
        }
        Ok(Protocol::Declared(ReadSet::one(self.script(), Scope::Host)))
    }

    fn decide(&self, observed: &Observed, _ctx: &ReadCtx<'_>) -> Result<Decision<()>, ModuleError> {
        let out = observed.output(0)?;
        self.plan(out.status, &out.stdout_str(), &out.stderr_str())
            .map(Decision::Plan)
    }

    async fn apply(&self, _ctx: &ModuleCtx<'_>, _change: ()) -> Result<Map, ModuleError> {
        Ok(Map::new())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::modules::testutil::{assert_args_complete, run};

    fn module(v: Value) -> Getent {
        serde_json::from_value(v).expect("args")
    }

    #[test]
    fn args() {
        assert_args_complete::<Getent>();
    }

    #[test]
    fn parses_entries_into_the_fact() {
        let m = module(json!({"database": "passwd", "key": "root"}));
        assert_eq!(m.script(), "getent passwd -- root");
        let Plan::Unchanged(d) = m
            .plan(0, "root:x:0:0:root:/root:/bin/bash\n", "")
            .expect("ok")
        else {
            panic!("unchanged expected")
        };
        assert_eq!(
            d["ansible_facts"]["getent_passwd"]["root"],
            json!(["x", "0", "0", "root", "/root", "/bin/bash"])
        );
        let m = module(json!({"database": "hosts"}));
        let Plan::Unchanged(d) = m.plan(0, "127.0.0.1       localhost\n", "").expect("ok") else {
            panic!("unchanged expected")
        };
        assert_eq!(
            d["ansible_facts"]["getent_hosts"]["127.0.0.1"],
            json!(["localhost"])
        );
        let m = module(json!({"database": "passwd", "key": "nobody-x"}));
        assert!(m.plan(2, "", "").is_err());
        let m = module(json!({"database": "passwd", "key": "nobody-x", "fail_key": false}));
        let Plan::Unchanged(d) = m.plan(2, "", "").expect("ok") else {
            panic!("unchanged expected")
        };
        assert_eq!(d["ansible_facts"]["getent_passwd"]["nobody-x"], json!(null));
        let m = module(json!({"database": "group", "split": ":"}));
        assert!(m.plan(1, "", "").is_err());
    }

    #[tokio::test]
    async fn looks_up_root_on_the_local_host() {
        let out = run::<Getent>(json!({"database": "passwd", "key": "root"}), true)
            .await
            .expect("getent");
        assert!(!out.changed);
        assert_eq!(
            out.data["ansible_facts"]["getent_passwd"]["root"][1],
            json!("0")
        );
    }
}
