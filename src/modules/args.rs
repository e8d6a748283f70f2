//! Serde helpers for module arguments as Ansible accepts them: booleans
//! written as `yes`/`no`/`"True"`/`1`, numbers and names given as strings or
//! integers, modes as octal integers, octal strings or symbolic strings.
//!
//! Use them with `#[serde(default, deserialize_with = "...")]`. The `opt_`
//! variants read `null` as absent, which is what `{{ omit }}`-less templating
//! leaves for unset values.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

use super::fs::Mode;
use crate::Value;

/// Ansible's truthy and falsy spellings of a boolean argument.
pub fn parse_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_i64() {
            Some(1) => Some(true),
            Some(0) => Some(false),
            _ => None,
        },
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "yes" | "y" | "true" | "t" | "on" | "1" | "1.0" => Some(true),
            "no" | "n" | "false" | "f" | "off" | "0" | "0.0" | "" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// A boolean argument (`force: yes`, `backup: "True"`, `recurse: 1`).
pub fn bool_ish<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let v = Value::deserialize(d)?;
    parse_bool(&v).ok_or_else(|| D::Error::custom(format!("{v} is not a valid boolean")))
}

/// An optional boolean argument; `null` is absent.
pub fn opt_bool_ish<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    let v = Value::deserialize(d)?;
    if v.is_null() {
        return Ok(None);
    }
    parse_bool(&v)
        .map(Some)
        .ok_or_else(|| D::Error::custom(format!("{v} is not a valid boolean")))
}

/// A string argument that may be written as a number or boolean
/// (`owner: 1000`, `group: 0`).
pub fn string_ish<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let v = Value::deserialize(d)?;
    value_to_string(&v).ok_or_else(|| D::Error::custom(format!("expected a string, got {v}")))
}

/// An optional string argument that may be written as a number; `null` is
/// absent.
pub fn opt_string_ish<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Value::deserialize(d)?;
    if v.is_null() {
        return Ok(None);
    }
    value_to_string(&v)
        .map(Some)
        .ok_or_else(|| D::Error::custom(format!("expected a string, got {v}")))
}

fn value_to_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        // Python's str(True) is what Ansible would pass on.
        Value::Bool(true) => Some("True".into()),
        Value::Bool(false) => Some("False".into()),
        _ => None,
    }
}

/// An optional `mode:` argument (`0644`, `'0644'`, `'u=rw,g=r'`); `null` is
/// absent.
pub fn opt_mode<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Mode>, D::Error> {
    let v = Value::deserialize(d)?;
    if v.is_null() {
        return Ok(None);
    }
    Mode::parse(&v).map(Some).map_err(|e| match e {
        super::ModuleError::Args(msg) => D::Error::custom(msg),
        other => D::Error::custom(other),
    })
}

/// An optional non-negative integer that may be written as a string
/// (`timeout: "30"`); `null` is absent.
pub fn opt_u64_ish<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let v = Value::deserialize(d)?;
    match &v {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| D::Error::custom(format!("{n} is not a non-negative integer"))),
        Value::String(s) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| D::Error::custom(format!("{s:?} is not a non-negative integer"))),
        other => Err(D::Error::custom(format!(
            "{other} is not a non-negative integer"
        ))),
    }
}

/// `#[serde(default = "yes")]` for booleans that default to true.
pub fn yes() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct A {
        #[serde(default = "yes", deserialize_with = "bool_ish")]
        force: bool,
        #[serde(default, deserialize_with = "opt_bool_ish")]
        backup: Option<bool>,
        #[serde(default, deserialize_with = "opt_string_ish")]
        owner: Option<String>,
        #[serde(default, deserialize_with = "opt_mode")]
        mode: Option<Mode>,
        #[serde(default, deserialize_with = "opt_u64_ish")]
        n: Option<u64>,
    }

    fn a(v: Value) -> Result<A, serde_json::Error> {
        serde_json::from_value(v)
    }

    #[test]
    fn loose_types() {
        let x = a(serde_json::json!({"force": "no", "backup": "True", "owner": 1000, "mode": "0640", "n": "30"}))
            .expect("parses");
        assert!(!x.force);
        assert_eq!(x.backup, Some(true));
        assert_eq!(x.owner.as_deref(), Some("1000"));
        assert_eq!(x.mode, Some(Mode::Bits(0o640)));
        assert_eq!(x.n, Some(30));
        let d = a(serde_json::json!({"backup": null, "mode": 420})).expect("parses");
        assert!(d.force);
        assert_eq!(d.backup, None);
        assert_eq!(d.mode, Some(Mode::Bits(0o644)));
        for yes in ["yes", "Yes", "TRUE", "on", "1", "y"] {
            assert!(a(serde_json::json!({ "force": yes })).expect("bool").force);
        }
        assert!(a(serde_json::json!({"force": 1})).expect("bool").force);
        assert!(a(serde_json::json!({"force": "maybe"})).is_err());
        assert!(a(serde_json::json!({"mode": "q+z"})).is_err());
        assert!(a(serde_json::json!({"bogus": 1})).is_err());
    }
}
