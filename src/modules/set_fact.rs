//! `set_fact`: set host variables. Changes nothing on the host; the result's
//! `ansible_facts` are merged into the host's variables by the engine.
//!
//! Any argument name is a fact name, so the module's `ARGS` is `["*"]`, which
//! the loader reads as "any name".

use async_trait::async_trait;
use serde::Deserialize;

use super::cmdargs::{parse_kv, KvError};
use super::{Module, ModuleCtx, ModuleError, Plan, Protocol, ReadCtx};
use crate::{Map, Value};

/// Arguments of `set_fact`: the facts themselves (plus `cacheable`, ignored).
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct SetFact(Map);

const PYTHON_KEYWORDS: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
    "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
    "with", "yield",
];

/// Can `name` be a variable (Ansible's `isidentifier`)?
fn valid_name(name: &str) -> bool {
    name.bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !PYTHON_KEYWORDS.contains(&name)
}

/// Ansible turns the strings `yes`/`no`/`true`/`false` (any case) given to
/// `set_fact` into booleans.
fn convert(value: Value) -> Value {
    match &value {
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "yes" => Value::Bool(true),
            "false" | "no" => Value::Bool(false),
            _ => value,
        },
        _ => value,
    }
}

impl SetFact {
    /// The facts to set, checked and converted.
    fn facts(&self) -> Result<Map, ModuleError> {
        let mut pairs: Vec<(String, Value)> = Vec::new();
        for (k, v) in &self.0 {
            match k.as_str() {
                "cacheable" => {}
                "_raw_params" => {
                    let text = v.as_str().unwrap_or_default();
                    let kv = parse_kv(text, false).map_err(|e| match e {
                        KvError::NotKv(t) => {
                            ModuleError::Args(format!("set_fact takes key=value pairs, not {t:?}"))
                        }
                        e => ModuleError::Args(e.to_string()),
                    })?;
                    pairs.extend(kv.into_iter().map(|(k, v)| (k, Value::from(v))));
                }
                _ => pairs.push((k.clone(), v.clone())),
            }
        }
        let mut facts = Map::new();
        for (k, v) in pairs {
            if !valid_name(&k) {
                return Err(ModuleError::failed(format!(
                    "The variable name '{k}' is not valid. Variables must start with a letter or underscore character, and contain only letters, numbers and underscores."
                )));
            }
            facts.insert(k, convert(v));
        }
        if facts.is_empty() {
            return Err(ModuleError::failed(
                "No key/value pairs provided, at least one is required for this action to succeed",
            ));
        }
        Ok(facts)
    }
}

#[async_trait]
impl Module for SetFact {
    const NAME: &'static str = "set_fact";
    const DEFINES_VARS: bool = true;
    const ARGS: &'static [&'static str] = &["*"];
    // Not free-form: `a={{ x }} b=c` is split into pairs before templating
    // (as Ansible's parser does), so each value renders to its own native
    // type and a value that templates to text with spaces stays one value.
    const FREE_FORM: bool = false;
    type Change = ();

    /// Never reaches the host.
    fn reads(&self, _ctx: &ReadCtx<'_>) -> Result<Protocol, ModuleError> {
        Ok(Protocol::Local)
    }

    async fn run_imperative(&self, _ctx: &ModuleCtx<'_>) -> Result<Plan<()>, ModuleError> {
        let mut data = Map::new();
        data.insert("ansible_facts".into(), Value::Object(self.facts()?));
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
    async fn facts_are_returned_unchanged() {
        let out = run::<SetFact>(
            json!({"a": 1, "b": "Yes", "c": "no", "d": {"x": [1]}, "e": "text", "cacheable": true}),
            true,
        )
        .await
        .expect("set_fact");
        assert!(!out.changed);
        assert_eq!(
            out.data["ansible_facts"],
            json!({"a": 1, "b": true, "c": false, "d": {"x": [1]}, "e": "text"})
        );
    }

    #[tokio::test]
    async fn free_form_pairs() {
        let out = run::<SetFact>(json!({"_raw_params": "a=1 b='two words' c=yes"}), false)
            .await
            .expect("set_fact");
        assert_eq!(
            out.data["ansible_facts"],
            json!({"a": "1", "b": "two words", "c": true})
        );
    }

    #[tokio::test]
    async fn bad_names_and_nothing_to_set() {
        for args in [
            json!({"1x": 1}),
            json!({"a-b": 1}),
            json!({"class": 1}),
            json!({}),
            json!({"cacheable": true}),
        ] {
            assert!(
                matches!(
                    run::<SetFact>(args.clone(), false).await,
                    Err(ModuleError::Failed { .. })
                ),
                "{args}"
            );
        }
        assert!(matches!(
            run::<SetFact>(json!({"_raw_params": "novalue"}), false).await,
            Err(ModuleError::Args(_))
        ));
    }
}
