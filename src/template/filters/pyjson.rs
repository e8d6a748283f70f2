//! JSON text exactly as Python's `json.dumps` writes it, which is what
//! Ansible's `to_json` and `to_nice_json` produce: `", "`/`": "` separators
//! without indent, `\uXXXX` escapes for non-ASCII unless `ensure_ascii` is
//! off, floats as Python's `repr` (`1e+16`, `1e-05`, `2.0`), `NaN` and
//! `Infinity` for non-finite floats.

use std::fmt::Write as _;

use minijinja::value::{Value, ValueKind};
use minijinja::{Error, ErrorKind};

/// The `json.dumps` options Ansible's filters pass through.
#[derive(Debug, Clone)]
pub(super) struct JsonOpts {
    /// `None` for one line; otherwise the text of one indentation level.
    pub indent: Option<String>,
    /// Sort mapping keys.
    pub sort_keys: bool,
    /// Escape every non-ASCII character as `\uXXXX`.
    pub ensure_ascii: bool,
    /// Between items (`", "` on one line, `","` when indenting).
    pub item_sep: String,
    /// Between a key and its value.
    pub key_sep: String,
}

impl JsonOpts {
    /// Python's defaults for the given indent.
    pub(super) fn new(indent: Option<String>, sort_keys: bool) -> JsonOpts {
        let item_sep = if indent.is_some() { "," } else { ", " };
        JsonOpts {
            indent,
            sort_keys,
            ensure_ascii: true,
            item_sep: item_sep.into(),
            key_sep: ": ".into(),
        }
    }
}

/// Serialize `v` as `json.dumps(v, **opts)` would.
pub(super) fn dumps(v: &Value, opts: &JsonOpts) -> Result<String, Error> {
    let mut out = String::new();
    write_value(v, opts, 0, &mut out)?;
    Ok(out)
}

fn newline(opts: &JsonOpts, level: usize, out: &mut String) {
    if let Some(indent) = &opts.indent {
        out.push('\n');
        for _ in 0..level {
            out.push_str(indent);
        }
    }
}

fn write_value(v: &Value, opts: &JsonOpts, level: usize, out: &mut String) -> Result<(), Error> {
    match v.kind() {
        ValueKind::Undefined => {
            return Err(Error::new(
                ErrorKind::UndefinedError,
                "cannot serialize an undefined value to JSON",
            ))
        }
        ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if v.is_true() { "true" } else { "false" }),
        ValueKind::Number => out.push_str(&number_text(v)),
        ValueKind::String => write_str(v.as_str().unwrap_or_default(), opts.ensure_ascii, out),
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = v.try_iter()?.collect();
            if items.is_empty() {
                out.push_str("[]");
                return Ok(());
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(&opts.item_sep);
                }
                newline(opts, level + 1, out);
                write_value(item, opts, level + 1, out)?;
            }
            newline(opts, level, out);
            out.push(']');
        }
        ValueKind::Map => {
            let mut entries: Vec<(String, Value)> = Vec::new();
            for key in v.try_iter()? {
                let value = v.get_item(&key)?;
                entries.push((key_text(&key)?, value));
            }
            if opts.sort_keys {
                entries.sort_by(|a, b| a.0.cmp(&b.0));
            }
            if entries.is_empty() {
                out.push_str("{}");
                return Ok(());
            }
            out.push('{');
            for (i, (key, value)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(&opts.item_sep);
                }
                newline(opts, level + 1, out);
                write_str(key, opts.ensure_ascii, out);
                out.push_str(&opts.key_sep);
                write_value(value, opts, level + 1, out)?;
            }
            newline(opts, level, out);
            out.push('}');
        }
        ValueKind::Bytes => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                "cannot serialize bytes to JSON",
            ))
        }
        _ => write_str(&v.to_string(), opts.ensure_ascii, out),
    }
    Ok(())
}

/// A number as Python prints it: integers as they are, floats as `repr`,
/// non-finite floats as JSON's `NaN`/`Infinity`.
fn number_text(v: &Value) -> String {
    if v.is_integer() {
        return v.to_string();
    }
    match f64::try_from(v.clone()) {
        Ok(f) if f.is_nan() => "NaN".into(),
        Ok(f) if f.is_infinite() => if f > 0.0 { "Infinity" } else { "-Infinity" }.into(),
        Ok(f) => py_float_repr(f),
        Err(_) => v.to_string(),
    }
}

/// A mapping key: Python's json turns non-string keys into strings.
fn key_text(key: &Value) -> Result<String, Error> {
    Ok(match key.kind() {
        ValueKind::String => key.as_str().unwrap_or_default().to_string(),
        ValueKind::None => "null".into(),
        ValueKind::Bool => if key.is_true() { "true" } else { "false" }.into(),
        ValueKind::Number => number_text(key),
        _ => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!(
                    "JSON keys must be strings, numbers, booleans or null, not {}",
                    key.kind()
                ),
            ))
        }
    })
}

fn write_str(s: &str, ensure_ascii: bool, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (ensure_ascii && (c as u32) > 0x7e) => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Python's `repr(float)`: the shortest text that reads back to the same
/// float, in positional notation when the decimal exponent is in
/// `-4 < e <= 16`, scientific (`1e+16`, `1.5e-05`) otherwise.
pub(super) fn py_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    // Rust's `{:e}` gives the shortest round-trip digits: `d.ddde±x`.
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let decpt = exp + 1;
    let sign = if f < 0.0 { "-" } else { "" };
    if decpt <= -4 || decpt > 16 {
        let mut m = digits[..1].to_string();
        if digits.len() > 1 {
            m.push('.');
            m.push_str(&digits[1..]);
        }
        let e = decpt - 1;
        let esign = if e < 0 { '-' } else { '+' };
        return format!("{sign}{m}e{esign}{:02}", e.abs());
    }
    let n = digits.len() as i32;
    let body = if decpt <= 0 {
        format!("0.{}{digits}", "0".repeat((-decpt) as usize))
    } else if decpt >= n {
        format!("{digits}{}.0", "0".repeat((decpt - n) as usize))
    } else {
        format!(
            "{}.{}",
            &digits[..decpt as usize],
            &digits[decpt as usize..]
        )
    };
    format!("{sign}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_repr_like_python() {
        let cases = [
            (1.0, "1.0"),
            (2.5, "2.5"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (123456.789, "123456.789"),
            (-1.5e-7, "-1.5e-07"),
            (0.1, "0.1"),
            (1.2345e100, "1.2345e+100"),
            (-0.0, "-0.0"),
        ];
        for (f, want) in cases {
            assert_eq!(py_float_repr(f), want, "{f}");
        }
    }
}
