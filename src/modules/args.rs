//! Serde helpers for module arguments as Ansible accepts them: booleans
//! written as `yes`/`no`/`"True"`/`1`, numbers and names given as strings or
//! integers, modes as octal integers, octal strings or symbolic strings.
//!
//! Use them with `#[serde(default, deserialize_with = "...")]`. The `opt_`
//! variants read `null` as absent, which is what `{{ omit }}`-less templating
//! leaves for unset values.
//!
//! [`FileAttrs`] is the one `mode`/`owner`/`group` block of the modules
//! that manage a file.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

use super::fs::{Attrs, Mode};
use crate::Value;

/// A `mode:` argument: a mode, or `preserve` (the source file's mode).
#[derive(Debug, Clone, PartialEq)]
pub enum ModeArg {
    /// Give the file this mode.
    Mode(Mode),
    /// Give the file the source file's mode (copy, template).
    Preserve,
}

/// The file-attribute arguments of every module that manages a file,
/// flattened into its argument struct: `#[serde(flatten)] attrs:
/// FileAttrs`. `None` leaves the attribute as it is. With `PRESERVE` (copy,
/// template) `mode: preserve` is accepted; elsewhere it is refused.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct FileAttrs<const PRESERVE: bool = false> {
    /// Mode: octal (`0644`, `'0644'`), symbolic (`u=rw,g=r`), or `preserve`.
    #[serde(default, deserialize_with = "opt_mode_arg::<_, PRESERVE>")]
    pub mode: Option<ModeArg>,
    /// Owner (name or uid); also of directories the module creates.
    #[serde(default, deserialize_with = "opt_string_ish")]
    pub owner: Option<String>,
    /// Group (name or gid); also of directories the module creates.
    #[serde(default, deserialize_with = "opt_string_ish")]
    pub group: Option<String>,
}

impl<const PRESERVE: bool> FileAttrs<PRESERVE> {
    /// The block's argument names, as the modules' `ARGS` list them.
    pub const ARGS: [&'static str; 3] = ["mode", "owner", "group"];

    /// The attributes to give a file made from a source with `source_mode`
    /// (what `preserve` takes; without a source the mode is left alone).
    pub fn with_source_mode(&self, source_mode: Option<u32>) -> Attrs {
        Attrs {
            mode: match &self.mode {
                Some(ModeArg::Mode(m)) => Some(m.clone()),
                Some(ModeArg::Preserve) => source_mode.map(Mode::Bits),
                None => None,
            },
            owner: self.owner.clone(),
            group: self.group.clone(),
        }
    }
}

impl FileAttrs {
    /// The attributes to give the file.
    pub fn attrs(&self) -> Attrs {
        self.with_source_mode(None)
    }
}

/// Ansible's truthy and falsy spellings of a boolean argument.
pub fn parse_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_f64() {
            Some(1.0) => Some(true),
            Some(0.0) => Some(false),
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
    parse_bool(&v)
        .ok_or_else(|| D::Error::custom(format!("{} is not a valid boolean", describe(&v))))
}

/// An optional boolean argument; `null` is absent.
pub fn opt_bool_ish<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    let v = Value::deserialize(d)?;
    if v.is_null() {
        return Ok(None);
    }
    parse_bool(&v)
        .map(Some)
        .ok_or_else(|| D::Error::custom(format!("{} is not a valid boolean", describe(&v))))
}

/// A string argument that may be written as a number or boolean
/// (`owner: 1000`, `group: 0`).
pub fn string_ish<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let v = Value::deserialize(d)?;
    loose_string(&v).ok_or_else(|| D::Error::custom(format!("{} is not a string", describe(&v))))
}

/// An optional string argument that may be written as a number; `null` is
/// absent.
pub fn opt_string_ish<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Value::deserialize(d)?;
    if v.is_null() {
        return Ok(None);
    }
    loose_string(&v)
        .map(Some)
        .ok_or_else(|| D::Error::custom(format!("{} is not a string", describe(&v))))
}

/// Ansible's string conversion: numbers and booleans become their text.
pub fn loose_string(v: &Value) -> Option<String> {
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
    parse_mode(&v).map(Some)
}

/// The `mode:` of [`FileAttrs`]: [`opt_mode`], and `preserve` if `PRESERVE`.
fn opt_mode_arg<'de, D: Deserializer<'de>, const PRESERVE: bool>(
    d: D,
) -> Result<Option<ModeArg>, D::Error> {
    let v = Value::deserialize(d)?;
    match v.as_str() {
        _ if v.is_null() => Ok(None),
        Some("preserve") if PRESERVE => Ok(Some(ModeArg::Preserve)),
        Some("preserve") => Err(D::Error::custom(
            "mode 'preserve' is only for copy and template (it takes the source file's mode)",
        )),
        _ => parse_mode(&v).map(|m| Some(ModeArg::Mode(m))),
    }
}

fn parse_mode<E: serde::de::Error>(v: &Value) -> Result<Mode, E> {
    Mode::parse(v).map_err(|e| match e {
        super::ModuleError::Args(msg) => E::custom(msg),
        other => E::custom(other),
    })
}

/// `str(value)` as Python writes it: a string as is, anything else in
/// Python's literal notation (`{'path': '/tmp/a', 'isdir': False}`).
pub fn py_str(value: &Value) -> String {
    fn repr(v: &Value, out: &mut String) {
        match v {
            Value::Null => out.push_str("None"),
            Value::Bool(true) => out.push_str("True"),
            Value::Bool(false) => out.push_str("False"),
            Value::Number(n) => out.push_str(&n.to_string()),
            Value::String(s) => {
                let q = if s.contains('\'') && !s.contains('"') {
                    '"'
                } else {
                    '\''
                };
                out.push(q);
                for c in s.chars() {
                    match c {
                        '\\' => out.push_str("\\\\"),
                        '\n' => out.push_str("\\n"),
                        '\t' => out.push_str("\\t"),
                        c if c == q => {
                            out.push('\\');
                            out.push(c);
                        }
                        c => out.push(c),
                    }
                }
                out.push(q);
            }
            Value::Array(items) => {
                out.push('[');
                for (i, x) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    repr(x, out);
                }
                out.push(']');
            }
            Value::Object(m) => {
                out.push('{');
                for (i, (k, x)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    repr(&Value::String(k.clone()), out);
                    out.push_str(": ");
                    repr(x, out);
                }
                out.push('}');
            }
        }
    }
    match value {
        Value::String(s) => s.clone(),
        other => {
            let mut out = String::new();
            repr(other, &mut out);
            out
        }
    }
}

/// `repr(text)` as Python writes it (`'a b'`, `"it's"`): how Ansible's
/// messages quote a value (`got {prefix!r}`).
pub fn py_repr(text: &str) -> String {
    let list = py_str(&Value::Array(vec![Value::from(text)]));
    list[1..list.len() - 1].to_string()
}

/// A `path`-typed argument: Ansible turns whatever it is given into a
/// string with `str()`, so a mapping (a `find` result's file entry passed
/// whole as `path: "{{ item }}"`) names a path that does not exist rather
/// than failing.
pub fn path_ish<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let v = Value::deserialize(d)?;
    if v.is_null() {
        return Err(D::Error::custom("path must not be null"));
    }
    Ok(py_str(&v))
}

/// A number given as a number or as a string.
pub fn loose_f64(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A value for an error message, cut short.
fn describe(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 60 {
        format!("{}...", text.chars().take(60).collect::<String>())
    } else {
        text
    }
}

/// An optional non-negative whole number that may be written as a string
/// (`timeout: "30"`); `null` is absent.
pub fn opt_u64_ish<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let v = Value::deserialize(d)?;
    if v.is_null() {
        return Ok(None);
    }
    match loose_f64(&v) {
        Some(x) if x.is_finite() && x >= 0.0 && x.fract() == 0.0 && x <= u64::MAX as f64 => {
            Ok(Some(x as u64))
        }
        _ => Err(D::Error::custom(format!(
            "{} is not a whole number",
            describe(&v)
        ))),
    }
}

/// An optional non-negative number (`delay: 0.5`); `null` is absent.
pub fn opt_f64_ish<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let v = Value::deserialize(d)?;
    if v.is_null() {
        return Ok(None);
    }
    match loose_f64(&v) {
        Some(x) if x.is_finite() && x >= 0.0 => Ok(Some(x)),
        _ => Err(D::Error::custom(format!(
            "{} is not a non-negative number",
            describe(&v)
        ))),
    }
}

/// An optional list of strings, from a list of scalars or a comma-separated
/// string (Ansible's `type: list` conversion); `null` is absent.
pub fn opt_strings_ish<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    let v = Value::deserialize(d)?;
    match &v {
        Value::Null => Ok(None),
        Value::Array(items) => items
            .iter()
            .map(|i| {
                loose_string(i)
                    .ok_or_else(|| D::Error::custom(format!("{} is not a string", describe(i))))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Value::String(s) => Ok(Some(
            s.split(',')
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect(),
        )),
        other => loose_string(other)
            .map(|s| Some(vec![s]))
            .ok_or_else(|| D::Error::custom(format!("{} is not a list", describe(other)))),
    }
}

/// `#[serde(default = "yes")]` for booleans that default to true.
pub fn yes() -> bool {
    true
}

#[cfg(test)]
mod py_str_tests {
    use super::*;

    /// user target "Remove temp files": `file: path="{{ item }}"` over
    /// `find` results failed where Ansible's str() of the mapping is ok.
    #[test]
    fn py_str_writes_python_literals() {
        let v: Value =
            serde_json::json!({"path": "/tmp/a", "isdir": false, "n": 1, "x": null, "l": ["it's"]});
        assert_eq!(
            py_str(&v),
            r#"{'path': '/tmp/a', 'isdir': False, 'n': 1, 'x': None, 'l': ["it's"]}"#
        );
        assert_eq!(py_str(&Value::from("plain")), "plain");
        assert_eq!(py_str(&Value::from(5)), "5");
    }
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

    #[test]
    fn loose_booleans() {
        for yes in [
            serde_json::json!(true),
            serde_json::json!("yes"),
            serde_json::json!("True"),
            serde_json::json!(1),
            serde_json::json!("on"),
        ] {
            assert_eq!(parse_bool(&yes), Some(true), "{yes}");
        }
        for no in [
            serde_json::json!(false),
            serde_json::json!("no"),
            serde_json::json!("FALSE"),
            serde_json::json!(0),
            serde_json::json!("off"),
        ] {
            assert_eq!(parse_bool(&no), Some(false), "{no}");
        }
        assert_eq!(parse_bool(&serde_json::json!("maybe")), None);
        assert_eq!(parse_bool(&serde_json::json!(2)), None);
    }

    #[derive(Debug, Deserialize)]
    struct Loose {
        #[serde(default, deserialize_with = "opt_bool_ish")]
        b: Option<bool>,
        #[serde(default, deserialize_with = "opt_string_ish")]
        s: Option<String>,
        #[serde(default, deserialize_with = "opt_u64_ish")]
        n: Option<u64>,
        #[serde(default, deserialize_with = "opt_strings_ish")]
        l: Option<Vec<String>>,
    }

    #[test]
    fn loose_fields() {
        let l: Loose = serde_json::from_value(
            serde_json::json!({"b": "yes", "s": 8080, "n": "30", "l": "a, b"}),
        )
        .expect("loose");
        assert_eq!(l.b, Some(true));
        assert_eq!(l.s.as_deref(), Some("8080"));
        assert_eq!(l.n, Some(30));
        assert_eq!(l.l, Some(vec!["a".to_string(), "b".to_string()]));
        let none: Loose = serde_json::from_value(serde_json::json!({"b": null})).expect("null");
        assert_eq!(none.b, None);
        assert!(serde_json::from_value::<Loose>(serde_json::json!({"b": "maybe"})).is_err());
        assert!(serde_json::from_value::<Loose>(serde_json::json!({"n": 1.5})).is_err());
    }
}

/// `state: present|absent`, present by default: the wanted existence of
/// the one thing a module manages (a release, a repository, an object).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Presence {
    /// It exists as the arguments describe it.
    #[default]
    Present,
    /// It does not exist.
    Absent,
}
