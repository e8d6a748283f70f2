//! Python methods that Ansible templates call on values (`x.split(',')`,
//! `name.startswith('pi-')`, `d.items()`, `d.get('k', 1)`), implemented as
//! minijinja's unknown-method callback. Methods that mutate in Python
//! (`append`, `update`, `pop`) are not offered: minijinja values are
//! immutable.

use minijinja::value::{from_args, Kwargs, Value, ValueKind};
use minijinja::{Error, ErrorKind, State};

fn err(msg: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg)
}

/// The callback for `Environment::set_unknown_method_callback`.
pub fn pycompat(
    state: &mut State,
    value: &Value,
    method: &str,
    args: &[Value],
) -> Result<Value, Error> {
    match value.kind() {
        ValueKind::String => string_method(value.as_str().unwrap_or_default(), method, args),
        ValueKind::Map => map_method(state, value, method, args),
        ValueKind::Seq => seq_method(value, method, args),
        _ => Err(Error::from(ErrorKind::UnknownMethod)),
    }
}

/// Positional arguments only, at most `max` of them.
fn positional<'a>(method: &str, args: &'a [Value], max: usize) -> Result<&'a [Value], Error> {
    let (pos, kwargs): (&[Value], Kwargs) = from_args(args)?;
    if let Some(k) = kwargs.args().next() {
        return Err(err(format!(
            "{method}() got an unexpected keyword argument '{k}'"
        )));
    }
    if pos.len() > max {
        return Err(err(format!(
            "{method}() takes at most {max} arguments ({} given)",
            pos.len()
        )));
    }
    Ok(pos)
}

fn opt_str(v: Option<&Value>) -> Option<String> {
    v.filter(|v| !v.is_none() && !v.is_undefined())
        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
}

fn opt_int(v: Option<&Value>, default: i64) -> i64 {
    v.and_then(Value::as_i64).unwrap_or(default)
}

fn strs(items: impl IntoIterator<Item = String>) -> Value {
    Value::from(items.into_iter().map(Value::from).collect::<Vec<_>>())
}

/// Python's `str.split(sep=None, maxsplit=-1)`.
pub(super) fn py_split(s: &str, sep: Option<&str>, maxsplit: i64) -> Result<Vec<String>, Error> {
    let limit = if maxsplit < 0 {
        usize::MAX
    } else {
        maxsplit as usize
    };
    match sep {
        Some("") => Err(err("empty separator".into())),
        Some(sep) => {
            let mut out = Vec::new();
            let mut rest = s;
            while out.len() < limit {
                match rest.find(sep) {
                    Some(i) => {
                        out.push(rest[..i].to_string());
                        rest = &rest[i + sep.len()..];
                    }
                    None => break,
                }
            }
            out.push(rest.to_string());
            Ok(out)
        }
        None => {
            let mut out = Vec::new();
            let mut rest = s.trim_start();
            while !rest.is_empty() {
                if out.len() == limit {
                    out.push(rest.to_string());
                    break;
                }
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                out.push(rest[..end].to_string());
                rest = rest[end..].trim_start();
            }
            Ok(out)
        }
    }
}

fn py_rsplit(s: &str, sep: Option<&str>, maxsplit: i64) -> Result<Vec<String>, Error> {
    if maxsplit < 0 {
        return py_split(s, sep, maxsplit);
    }
    // Split the reversed text with the reversed separator, then undo.
    let rev: String = s.chars().rev().collect();
    let rsep: Option<String> = sep.map(|p| p.chars().rev().collect());
    let mut parts = py_split(&rev, rsep.as_deref(), maxsplit)?;
    parts.reverse();
    Ok(parts
        .into_iter()
        .map(|p| p.chars().rev().collect())
        .collect())
}

fn strip_set<'a>(s: &'a str, chars: Option<&str>, left: bool, right: bool) -> &'a str {
    let matcher = |c: char| match chars {
        Some(set) => set.contains(c),
        None => c.is_whitespace(),
    };
    let s = if left {
        s.trim_start_matches(matcher)
    } else {
        s
    };
    if right {
        s.trim_end_matches(matcher)
    } else {
        s
    }
}

/// Python's `str.title()`: each run of letters starts upper-case.
pub(super) fn py_title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_cased = false;
    for c in s.chars() {
        if prev_cased {
            out.extend(c.to_lowercase());
        } else {
            out.extend(c.to_uppercase());
        }
        prev_cased = c.is_alphabetic();
    }
    out
}

fn prefixes(v: &Value) -> Result<Vec<String>, Error> {
    match v.kind() {
        ValueKind::String => Ok(vec![v.as_str().unwrap_or_default().to_string()]),
        ValueKind::Seq => v
            .try_iter()?
            .map(|p| {
                p.as_str().map(str::to_string).ok_or_else(|| {
                    err("startswith/endswith take a string or a list of strings".into())
                })
            })
            .collect(),
        _ => Err(err(
            "startswith/endswith take a string or a list of strings".into(),
        )),
    }
}

fn pad(s: &str, width: usize, fill: char, align: char) -> String {
    let len = s.chars().count();
    if len >= width {
        return s.to_string();
    }
    let total = width - len;
    let left = match align {
        '<' => 0,
        '>' => total,
        // `str.center` rounds the left margin up when both the margin and
        // the width are odd; format's `^` always rounds it down.
        'c' => total / 2 + (total & width & 1),
        _ => total / 2,
    };
    let right = total - left;
    let f = |n: usize| std::iter::repeat_n(fill, n).collect::<String>();
    format!("{}{s}{}", f(left), f(right))
}

fn fill_char(v: Option<&Value>) -> Result<char, Error> {
    match opt_str(v) {
        None => Ok(' '),
        Some(s) if s.chars().count() == 1 => Ok(s.chars().next().unwrap_or(' ')),
        Some(_) => Err(err(
            "the fill character must be exactly one character long".into()
        )),
    }
}

fn string_method(s: &str, method: &str, args: &[Value]) -> Result<Value, Error> {
    let pos = |max| positional(method, args, max);
    Ok(match method {
        "lower" | "casefold" => {
            pos(0)?;
            Value::from(s.to_lowercase())
        }
        "upper" => {
            pos(0)?;
            Value::from(s.to_uppercase())
        }
        "title" => {
            pos(0)?;
            Value::from(py_title(s))
        }
        "capitalize" => {
            pos(0)?;
            let mut chars = s.chars();
            Value::from(match chars.next() {
                Some(first) => first
                    .to_uppercase()
                    .chain(chars.flat_map(char::to_lowercase))
                    .collect(),
                None => String::new(),
            })
        }
        "swapcase" => {
            pos(0)?;
            Value::from(
                s.chars()
                    .flat_map(|c| {
                        if c.is_uppercase() {
                            c.to_lowercase().collect::<Vec<_>>()
                        } else {
                            c.to_uppercase().collect()
                        }
                    })
                    .collect::<String>(),
            )
        }
        "strip" | "lstrip" | "rstrip" => {
            let a = pos(1)?;
            let chars = opt_str(a.first());
            let (l, r) = match method {
                "strip" => (true, true),
                "lstrip" => (true, false),
                _ => (false, true),
            };
            Value::from(strip_set(s, chars.as_deref(), l, r))
        }
        "split" | "rsplit" => {
            let a = pos(2)?;
            let sep = opt_str(a.first());
            let max = opt_int(a.get(1), -1);
            let parts = if method == "split" {
                py_split(s, sep.as_deref(), max)?
            } else {
                py_rsplit(s, sep.as_deref(), max)?
            };
            strs(parts)
        }
        "splitlines" => {
            let a = pos(1)?;
            let keep = a.first().is_some_and(Value::is_true);
            let mut out = Vec::new();
            let mut rest = s;
            while !rest.is_empty() {
                let end = rest.find(['\n', '\r']).unwrap_or(rest.len());
                let brk = if rest[end..].starts_with("\r\n") {
                    2
                } else if end < rest.len() {
                    1
                } else {
                    0
                };
                out.push(rest[..if keep { end + brk } else { end }].to_string());
                rest = &rest[end + brk..];
            }
            strs(out)
        }
        "startswith" | "endswith" => {
            let a = pos(1)?;
            let Some(p) = a.first() else {
                return Err(err(format!("{method}() takes at least 1 argument")));
            };
            let ps = prefixes(p)?;
            Value::from(if method == "startswith" {
                ps.iter().any(|p| s.starts_with(p.as_str()))
            } else {
                ps.iter().any(|p| s.ends_with(p.as_str()))
            })
        }
        "replace" => {
            let a = pos(3)?;
            let (Some(old), Some(new)) = (opt_str(a.first()), opt_str(a.get(1))) else {
                return Err(err("replace() takes at least 2 arguments".into()));
            };
            let count = opt_int(a.get(2), -1);
            Value::from(if count < 0 {
                s.replace(&old, &new)
            } else {
                s.replacen(&old, &new, count as usize)
            })
        }
        "find" | "rfind" | "index" | "rindex" => {
            let a = pos(1)?;
            let sub = opt_str(a.first()).unwrap_or_default();
            let found = if method.starts_with('r') {
                s.rfind(&sub)
            } else {
                s.find(&sub)
            };
            match found {
                Some(byte) => Value::from(s[..byte].chars().count() as i64),
                None if method.ends_with("index") => return Err(err("substring not found".into())),
                None => Value::from(-1),
            }
        }
        "count" => {
            let a = pos(1)?;
            let sub = opt_str(a.first()).unwrap_or_default();
            Value::from(if sub.is_empty() {
                s.chars().count() as i64 + 1
            } else {
                s.matches(&sub).count() as i64
            })
        }
        "join" => {
            let a = pos(1)?;
            let Some(items) = a.first() else {
                return Err(err("join() takes exactly one argument".into()));
            };
            let parts: Vec<String> = items
                .try_iter()?
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                .collect();
            Value::from(parts.join(s))
        }
        "format" => Value::from(py_format(s, args)?),
        "zfill" => {
            let a = pos(1)?;
            let width = opt_int(a.first(), 0).max(0) as usize;
            let len = s.chars().count();
            if len >= width {
                Value::from(s)
            } else {
                let (sign, body) = match s.chars().next() {
                    Some(c @ ('+' | '-')) => (c.to_string(), &s[1..]),
                    _ => (String::new(), s),
                };
                Value::from(format!("{sign}{}{body}", "0".repeat(width - len)))
            }
        }
        "center" | "ljust" | "rjust" => {
            let a = pos(2)?;
            let width = opt_int(a.first(), 0).max(0) as usize;
            let fill = fill_char(a.get(1))?;
            let align = match method {
                "ljust" => '<',
                "rjust" => '>',
                _ => 'c',
            };
            Value::from(pad(s, width, fill, align))
        }
        "partition" | "rpartition" => {
            let a = pos(1)?;
            let sep = opt_str(a.first()).unwrap_or_default();
            if sep.is_empty() {
                return Err(err("empty separator".into()));
            }
            let found = if method == "partition" {
                s.find(&sep)
            } else {
                s.rfind(&sep)
            };
            let parts = match found {
                Some(i) => [
                    s[..i].to_string(),
                    sep.clone(),
                    s[i + sep.len()..].to_string(),
                ],
                None if method == "partition" => [s.to_string(), String::new(), String::new()],
                None => [String::new(), String::new(), s.to_string()],
            };
            strs(parts)
        }
        "removeprefix" | "removesuffix" => {
            let a = pos(1)?;
            let affix = opt_str(a.first()).unwrap_or_default();
            let out = if method == "removeprefix" {
                s.strip_prefix(affix.as_str())
            } else {
                s.strip_suffix(affix.as_str())
            };
            Value::from(out.unwrap_or(s))
        }
        "isdigit" | "isdecimal" | "isnumeric" | "isalpha" | "isalnum" | "isspace" | "islower"
        | "isupper" | "istitle" => {
            pos(0)?;
            let nonempty = !s.is_empty();
            let cased = s.chars().any(|c| c.is_lowercase() || c.is_uppercase());
            Value::from(match method {
                // Approximations: Rust has no Unicode "decimal" category.
                "isdecimal" => nonempty && s.chars().all(|c| c.is_ascii_digit()),
                "isdigit" => nonempty && s.chars().all(char::is_numeric),
                "isnumeric" => nonempty && s.chars().all(char::is_numeric),
                "isalpha" => nonempty && s.chars().all(char::is_alphabetic),
                "isalnum" => nonempty && s.chars().all(char::is_alphanumeric),
                "isspace" => nonempty && s.chars().all(char::is_whitespace),
                "islower" => cased && !s.chars().any(char::is_uppercase),
                "isupper" => cased && !s.chars().any(char::is_lowercase),
                _ => cased && py_title(s) == s,
            })
        }
        _ => return Err(Error::from(ErrorKind::UnknownMethod)),
    })
}

fn map_method(
    state: &mut State,
    value: &Value,
    method: &str,
    args: &[Value],
) -> Result<Value, Error> {
    let pos = |max| positional(method, args, max);
    Ok(match method {
        "items" => {
            pos(0)?;
            state.apply_filter("items", std::slice::from_ref(value))?
        }
        "keys" => {
            pos(0)?;
            Value::from(value.try_iter()?.collect::<Vec<_>>())
        }
        "values" => {
            pos(0)?;
            let mut out = Vec::new();
            for k in value.try_iter()? {
                out.push(value.get_item(&k)?);
            }
            Value::from(out)
        }
        "get" => {
            let a = pos(2)?;
            let Some(key) = a.first() else {
                return Err(err("get() takes at least 1 argument".into()));
            };
            let found = value.get_item(key)?;
            if found.is_undefined() {
                a.get(1).cloned().unwrap_or(Value::from(()))
            } else {
                found
            }
        }
        "copy" => {
            pos(0)?;
            value.clone()
        }
        _ => return Err(Error::from(ErrorKind::UnknownMethod)),
    })
}

fn seq_method(value: &Value, method: &str, args: &[Value]) -> Result<Value, Error> {
    let pos = |max| positional(method, args, max);
    Ok(match method {
        "index" => {
            let a = pos(1)?;
            let needle = a.first().cloned().unwrap_or_default();
            match value.try_iter()?.position(|v| v == needle) {
                Some(i) => Value::from(i as i64),
                None => return Err(err(format!("{needle} is not in list"))),
            }
        }
        "count" => {
            let a = pos(1)?;
            let needle = a.first().cloned().unwrap_or_default();
            Value::from(value.try_iter()?.filter(|v| *v == needle).count() as i64)
        }
        "copy" => {
            pos(0)?;
            value.clone()
        }
        _ => return Err(Error::from(ErrorKind::UnknownMethod)),
    })
}

/// A subset of Python's `str.format`: `{}`, `{0}`, `{name}`, `{{`/`}}`, and
/// format specs `[[fill]align][sign][0][width][.precision][type]` with
/// types `s d f e x X o b %`.
pub(super) fn py_format(template: &str, args: &[Value]) -> Result<String, Error> {
    let (pos, kwargs): (&[Value], Kwargs) = from_args(args)?;
    let mut out = String::new();
    let mut auto = 0usize;
    let chars: Vec<char> = template.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '{' && chars.get(i + 1) == Some(&'{') {
            out.push('{');
            i += 2;
            continue;
        }
        if c == '}' && chars.get(i + 1) == Some(&'}') {
            out.push('}');
            i += 2;
            continue;
        }
        if c != '{' {
            out.push(c);
            i += 1;
            continue;
        }
        let Some(close) = chars[i..].iter().position(|c| *c == '}') else {
            return Err(err("Single '{' encountered in format string".into()));
        };
        let field: String = chars[i + 1..i + close].iter().collect();
        i += close + 1;
        let (name, spec) = field.split_once(':').unwrap_or((field.as_str(), ""));
        let (name, conversion) = name.split_once('!').unwrap_or((name, ""));
        let value = if name.is_empty() {
            let v = pos.get(auto).cloned();
            auto += 1;
            v
        } else if let Ok(n) = name.parse::<usize>() {
            pos.get(n).cloned()
        } else {
            kwargs.get::<Option<Value>>(name)?
        };
        let Some(value) = value else {
            return Err(err(format!("format(): no argument for field {{{field}}}")));
        };
        let value = if conversion == "r" {
            Value::from(format!("'{value}'"))
        } else {
            value
        };
        out.push_str(&format_spec(&value, spec)?);
    }
    Ok(out)
}

/// Python's `%` on a string (`"%s-%02d" % (name, n)`, `"%(a)s" % d`):
/// `args` is a tuple (a sequence), a mapping for `%(key)` fields, or one
/// value. Each field is formatted as `format()` would with the same flags.
pub(super) fn py_percent(template: &str, args: &Value) -> Result<String, Error> {
    let positional: Vec<Value> = match args.kind() {
        ValueKind::Seq => args.try_iter()?.collect(),
        _ => vec![args.clone()],
    };
    let mut next = positional.iter();
    let mut out = String::new();
    let mut chars = template.chars().peekable();
    let mut keyed = false;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut key = None;
        if chars.peek() == Some(&'(') {
            chars.next();
            let name: String = chars.by_ref().take_while(|c| *c != ')').collect();
            key = Some(name);
        }
        let mut flags = String::new();
        while let Some(&f) = chars.peek().filter(|f| "-+ 0#".contains(**f)) {
            flags.push(f);
            chars.next();
        }
        let mut width = String::new();
        while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit() || **d == '.') {
            width.push(d);
            chars.next();
        }
        let conv = chars
            .next()
            .ok_or_else(|| err("incomplete format".into()))?;
        if conv == '%' && key.is_none() {
            out.push('%');
            continue;
        }
        let value = match &key {
            Some(name) => {
                keyed = true;
                if args.kind() != ValueKind::Map {
                    return Err(err("format requires a mapping".into()));
                }
                let v = args.get_item(&Value::from(name.as_str()))?;
                if v.is_undefined() {
                    return Err(err(format!("KeyError: '{name}'")));
                }
                v
            }
            None => next
                .next()
                .cloned()
                .ok_or_else(|| err("not enough arguments for format string".into()))?,
        };
        out.push_str(&percent_field(&value, &flags, &width, conv)?);
    }
    if !keyed && next.next().is_some() {
        return Err(err(
            "not all arguments converted during string formatting".into()
        ));
    }
    Ok(out)
}

/// One `%` field: `value` with the field's flags, width and precision and
/// its conversion, as Python formats it (right-aligned unless `-`).
fn percent_field(value: &Value, flags: &str, width: &str, conv: char) -> Result<String, Error> {
    let left = flags.contains('-');
    let align = if left { "<" } else { ">" };
    match conv {
        's' | 'r' | 'a' => {
            let text = match (conv, value.as_str()) {
                ('s', Some(s)) => s.to_string(),
                (_, Some(s)) => format!("'{s}'"),
                _ => value.to_string(),
            };
            format_spec(&Value::from(text), &format!("{align}{width}"))
        }
        'd' | 'i' | 'u' | 'x' | 'X' | 'o' | 'f' | 'F' | 'e' | 'E' => {
            if !matches!(value.kind(), ValueKind::Number | ValueKind::Bool) {
                return Err(err(format!(
                    "%{conv} format: a real number is required, not {}",
                    super::py_type(value)
                )));
            }
            let integral = matches!(conv, 'd' | 'i' | 'u' | 'x' | 'X' | 'o');
            let value = match f64::try_from(value.clone()) {
                Ok(f) if integral && value.as_i64().is_none() => Value::from(f.trunc() as i64),
                _ => value.clone(),
            };
            let sign = ["+", " "]
                .into_iter()
                .find(|s| flags.contains(s))
                .unwrap_or("");
            let zero = flags.contains('0') && !left;
            let spec = match (left, zero) {
                (true, _) => format!("<{sign}{width}"),
                (false, true) => format!("{sign}0{width}"),
                (false, false) => format!(">{sign}{width}"),
            };
            let ty = if matches!(conv, 'i' | 'u') { 'd' } else { conv };
            format_spec(&value, &format!("{spec}{ty}"))
        }
        other => Err(err(format!("unsupported format character '{other}'"))),
    }
}

/// The largest width or precision a format takes (1 MiB of padding).
const MAX_WIDTH: usize = 1 << 20;

fn format_spec(v: &Value, spec: &str) -> Result<String, Error> {
    let mut chars: Vec<char> = spec.chars().collect();
    let mut fill = ' ';
    let mut align = None;
    if chars.len() >= 2 && "<>^=".contains(chars[1]) {
        fill = chars[0];
        align = Some(chars[1]);
        chars.drain(..2);
    } else if !chars.is_empty() && "<>^=".contains(chars[0]) {
        align = Some(chars[0]);
        chars.remove(0);
    }
    let mut sign = '-';
    if let Some(&c) = chars.first() {
        if "+- ".contains(c) {
            sign = c;
            chars.remove(0);
        }
    }
    if chars.first() == Some(&'0') {
        fill = '0';
        align = align.or(Some('='));
        chars.remove(0);
    }
    let rest: String = chars.iter().collect();
    let ty = rest
        .chars()
        .last()
        .filter(|c| c.is_alphabetic() || *c == '%');
    let body = match ty {
        Some(c) => &rest[..rest.len() - c.len_utf8()],
        None => rest.as_str(),
    };
    let (width, precision) = match body.split_once('.') {
        Some((w, p)) => (
            w,
            Some(
                p.parse::<usize>()
                    .map_err(|_| err(format!("bad format spec '{spec}'")))?,
            ),
        ),
        None => (body, None),
    };
    let width: usize = if width.is_empty() {
        0
    } else {
        width
            .parse()
            .map_err(|_| err(format!("bad format spec '{spec}'")))?
    };
    // A width or precision that would fill memory is refused, as Python
    // refuses what it cannot allocate (MemoryError), instead of aborting.
    if width.max(precision.unwrap_or(0)) > MAX_WIDTH {
        return Err(err(format!("width or precision too big in '{spec}'")));
    }
    let num =
        || f64::try_from(v.clone()).map_err(|_| err(format!("cannot format {v} with '{spec}'")));
    let int = || {
        v.as_i64()
            .or_else(|| {
                f64::try_from(v.clone())
                    .ok()
                    .filter(|f| f.fract() == 0.0)
                    .map(|f| f as i64)
            })
            .ok_or_else(|| err(format!("cannot format {v} with '{spec}'")))
    };
    let (neg, digits) = match ty {
        Some('d') => {
            let n = int()?;
            (n < 0, n.unsigned_abs().to_string())
        }
        Some('x') | Some('X') | Some('o') | Some('b') => {
            let n = int()?;
            let a = n.unsigned_abs();
            let s = match ty {
                Some('x') => format!("{a:x}"),
                Some('X') => format!("{a:X}"),
                Some('o') => format!("{a:o}"),
                _ => format!("{a:b}"),
            };
            (n < 0, s)
        }
        Some('f') | Some('F') => {
            let f = num()?;
            (f < 0.0, format!("{:.*}", precision.unwrap_or(6), f.abs()))
        }
        Some('e') | Some('E') => {
            let f = num()?;
            let s = format!("{:.*e}", precision.unwrap_or(6), f.abs());
            let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
            let e: i32 = e.parse().unwrap_or(0);
            let s = format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs());
            (f < 0.0, if ty == Some('E') { s.to_uppercase() } else { s })
        }
        Some('%') => {
            let f = num()?;
            (
                f < 0.0,
                format!("{:.*}%", precision.unwrap_or(6), f.abs() * 100.0),
            )
        }
        Some('s') | None => {
            let s = v.as_str().map_or_else(|| v.to_string(), str::to_string);
            let s = match precision {
                Some(p) if v.kind() == ValueKind::String || ty == Some('s') => {
                    s.chars().take(p).collect()
                }
                _ => s,
            };
            if v.kind() == ValueKind::Number && ty.is_none() {
                let n = num().unwrap_or(0.0);
                (n < 0.0, s.trim_start_matches('-').to_string())
            } else {
                return Ok(pad(&s, width, fill, align.unwrap_or('<')));
            }
        }
        Some(other) => return Err(err(format!("unknown format code '{other}'"))),
    };
    let sign_text = match (neg, sign) {
        (true, _) => "-",
        (false, '+') => "+",
        (false, ' ') => " ",
        _ => "",
    };
    let len = sign_text.chars().count() + digits.chars().count();
    if align == Some('=') && len < width {
        let zeros: String = std::iter::repeat_n(fill, width - len).collect();
        return Ok(format!("{sign_text}{zeros}{digits}"));
    }
    Ok(pad(
        &format!("{sign_text}{digits}"),
        width,
        fill,
        align.unwrap_or('>'),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_split_semantics() {
        assert_eq!(
            py_split("  a  b c ", None, -1).expect("ok"),
            ["a", "b", "c"]
        );
        assert_eq!(py_split("a,,b", Some(","), -1).expect("ok"), ["a", "", "b"]);
        assert_eq!(py_split("a b c", None, 1).expect("ok"), ["a", "b c"]);
        assert_eq!(py_split("", Some(","), -1).expect("ok"), [""]);
        assert_eq!(py_split("", None, -1).expect("ok"), Vec::<String>::new());
        assert_eq!(py_rsplit("a.b.c", Some("."), 1).expect("ok"), ["a.b", "c"]);
        assert!(py_split("a", Some(""), -1).is_err());
    }

    #[test]
    fn formats_that_cannot_be_made_are_errors_not_crashes() {
        let one = [Value::from(1)];
        assert!(py_format("{:é}", &one).is_err());
        assert!(py_format("{:99999999}", &one).is_err());
        assert!(py_format("{:.99999999f}", &one).is_err());
        assert!(py_percent("%99999999d", &Value::from(1)).is_err());
        assert_eq!(py_format("{:>6}", &one).expect("fits"), "     1");
    }

    #[test]
    fn padding_like_python() {
        assert_eq!(pad("ab", 5, '*', 'c'), "**ab*");
        assert_eq!(pad("abc", 6, '*', 'c'), "*abc**");
        assert_eq!(pad("a", 4, '-', 'c'), "-a--");
        assert_eq!(pad("mid", 6, ' ', '^'), " mid  ");
        let args = [
            Value::from(12.3456),
            Value::from(-2.5),
            Value::from(5),
            Value::from(255),
            Value::from("mid"),
            Value::from(-42),
            Value::from("abcdef"),
            Value::from(1.5),
            Value::from(12345.678),
            Value::from(0.256),
            Value::from(7),
        ];
        assert_eq!(
            py_format(
                "{:>8.2f}|{:08.3f}|{:+d}|{:x}|{:^7}|{:05d}|{:.3}|{}|{:e}|{:.1%}|{:<6}|",
                &args
            )
            .expect("format"),
            "   12.35|-002.500|+5|ff|  mid  |-0042|abc|1.5|1.234568e+04|25.6%|7     |"
        );
        assert_eq!(py_title("hello wORLD o'neil"), "Hello World O'Neil");
    }
}
