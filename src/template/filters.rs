//! Ansible's filters and tests on top of minijinja's builtins, with the
//! semantics of ansible-core (checked against 2.19): `bool`, `int`, `float`
//! and `default` behave as in Ansible/Jinja2 rather than minijinja; JSON and
//! YAML come out byte-for-byte as Python writes them; regexes take Python
//! syntax where the `regex` crate allows. Every name is also registered as
//! `ansible.builtin.NAME`. [`pycompat`] adds the Python string, dict and list
//! methods templates call (`x.split(',')`, `d.items()`).
//!
//! Not provided: `shuffle`, `human_readable`,
//! `human_to_bytes`, `comment`, `strftime`, `to_datetime`, `urlsplit`, vault
//! filters, and the `pep440` version type. [`ipaddr`] carries the
//! `ansible.utils` IP filters.

mod crypt;
mod datetime;
mod ipaddr;
mod joiner;
mod lookup;
mod pycompat;
mod pyjson;
mod pyre;
mod pyyaml;
mod version;

use std::path::{Path, PathBuf};

use base64::Engine as _;
use minijinja::value::{from_args, ArgType, Kwargs, Rest, Value, ValueKind, ValueOrKwargs};
use minijinja::{Environment, Error, ErrorKind, State};
use sha1::Digest as _;

pub use pycompat::pycompat;

/// Register Ansible's filters and tests, and [`pycompat`] as the unknown
/// method callback, on `env`.
pub fn register(env: &mut Environment<'static>) {
    macro_rules! filters {
        ($($name:literal => $f:expr),+ $(,)?) => {
            $(
                env.add_filter($name, $f);
                env.add_filter(concat!("ansible.builtin.", $name), $f);
            )+
        };
    }
    macro_rules! tests {
        ($($name:literal => $f:expr),+ $(,)?) => {
            $(
                env.add_test($name, $f);
                env.add_test(concat!("ansible.builtin.", $name), $f);
            )+
        };
    }
    // Every `%` operation, which the templar rewrites (`a % b` to
    // `(a) | __drover_percent(b)`): Python's formatting on a string,
    // minijinja's own remainder otherwise.
    env.add_filter(crate::template::percent::FILTER, percent_filter);
    filters! {
        "bool" => bool_filter,
        "int" => int_filter,
        "float" => float_filter,
        "default" => default_filter,
        "d" => default_filter,
        "mandatory" => mandatory,
        "password_hash" => crypt::password_hash,
        "to_json" => to_json,
        "vault" => vault_filter,
        "unvault" => unvault_filter,
        "select" => select,
        "reject" => reject,
        "selectattr" => selectattr,
        "rejectattr" => rejectattr,
        "to_nice_json" => to_nice_json,
        "to_yaml" => to_yaml,
        "to_nice_yaml" => to_nice_yaml,
        "from_json" => from_json,
        "from_yaml" => from_yaml,
        "from_yaml_all" => from_yaml_all,
        "b64encode" => b64encode,
        "b64decode" => b64decode,
        "regex_replace" => regex_replace,
        "regex_search" => regex_search,
        "regex_findall" => regex_findall,
        "regex_escape" => regex_escape,
        "basename" => basename,
        "dirname" => dirname,
        "splitext" => splitext,
        "expanduser" => expanduser,
        "realpath" => realpath,
        "normpath" => normpath,
        "path_join" => path_join,
        "quote" => quote,
        "combine" => combine,
        "dict2items" => dict2items,
        "items2dict" => items2dict,
        "flatten" => flatten,
        "zip_longest" => zip_longest,
        "product" => product,
        "unique" => unique,
        "difference" => difference,
        "intersect" => intersect,
        "union" => union,
        "symmetric_difference" => symmetric_difference,
        "ternary" => ternary,
        "type_debug" => type_debug,
        "hash" => hash,
        "sha1" => sha1_filter,
        "checksum" => sha1_filter,
        "md5" => md5_filter,
        "to_uuid" => to_uuid,
        "extract" => extract,
        "subelements" => subelements,
        "log" => log,
        "pow" => pow,
        "root" => root,
        "split" => split_filter,
        "random" => random_filter,
        "map" => map_filter,
    }
    tests! {
        "match" => test_match,
        "search" => test_search,
        "regex" => test_regex,
        "truthy" => test_truthy,
        "falsy" => test_falsy,
        "succeeded" => test_succeeded,
        "success" => test_succeeded,
        "successful" => test_succeeded,
        "failed" => test_failed,
        "failure" => test_failed,
        "changed" => test_changed,
        "change" => test_changed,
        "skipped" => test_skipped,
        "skip" => test_skipped,
        "reachable" => test_reachable,
        "unreachable" => test_unreachable,
        "finished" => test_finished,
        "started" => test_started,
        "version" => test_version,
        "version_compare" => test_version,
        "subset" => test_subset,
        "issubset" => test_subset,
        "superset" => test_superset,
        "issuperset" => test_superset,
        "contains" => test_contains,
        "any" => test_any,
        "all" => test_all,
        "nan" => test_nan,
        "isnan" => test_nan,
        "file" => test_file,
        "is_file" => test_file,
        "directory" => test_directory,
        "is_dir" => test_directory,
        "exists" => test_exists,
        "link" => test_link,
        "is_link" => test_link,
        "link_exists" => test_link_exists,
        "abs" => test_abs,
        "is_abs" => test_abs,
        "same_file" => test_same_file,
        "is_same_file" => test_same_file,
        "mount" => test_mount,
        "is_mount" => test_mount,
    }
    // ansible.utils' IP filters, by their full names only: ansible-core
    // 2.19 resolves neither bare `ipaddr` nor `ansible.netcommon.ipaddr`.
    macro_rules! ip_filters {
        ($($name:literal => $f:expr),+ $(,)?) => {
            $(
                env.add_filter(concat!("ansible.utils.", $name), $f);
            )+
        };
    }
    ip_filters! {
        "ipaddr" => ipaddr::ipaddr,
        "ipv4" => ipaddr::ipv4,
        "ipv6" => ipaddr::ipv6,
        "ipwrap" => ipaddr::ipwrap,
        "ipsubnet" => ipaddr::ipsubnet,
        "ipmath" => ipaddr::ipmath,
        "nthhost" => ipaddr::nthhost,
        "network_in_usable" => ipaddr::network_in_usable,
        "network_in_network" => ipaddr::network_in_network,
        "next_nth_usable" => ipaddr::next_nth_usable,
        "previous_nth_usable" => ipaddr::previous_nth_usable,
    }
    for name in ["defined", "undefined", "none"] {
        if let Some(test) = builtin_test(name) {
            env.add_test(format!("ansible.builtin.{name}"), test);
        }
    }
    for name in ["lookup", "ansible.builtin.lookup"] {
        env.add_function(name, lookup::lookup);
    }
    env.add_function("now", datetime::now);
    env.add_function("joiner", joiner::joiner);
    for name in ["query", "q"] {
        env.add_function(name, lookup::query);
    }
    env.set_unknown_method_callback(pycompat);
}

/// minijinja's own `defined`/`undefined`/`none`, for the FQCN aliases.
fn builtin_test(name: &str) -> Option<fn(&State, &Value) -> bool> {
    match name {
        "defined" => Some(|_, v| !v.is_undefined()),
        "undefined" => Some(|_, v| v.is_undefined()),
        "none" => Some(|_, v| v.is_none()),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Arguments

fn err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

/// A filter's or test's arguments after its input, keyword arguments
/// included (as the last value). minijinja's `Rest<Value>` refuses keyword
/// arguments; Ansible's filters take them, and [`Params`] binds them.
pub(super) struct Args(Vec<Value>);

impl std::ops::Deref for Args {
    type Target = [Value];
    fn deref(&self) -> &[Value] {
        &self.0
    }
}

impl From<Rest<ValueOrKwargs>> for Args {
    fn from(rest: Rest<ValueOrKwargs>) -> Args {
        Args(rest.0.into_iter().map(ValueOrKwargs::into_value).collect())
    }
}

// Delegates to `Rest<ValueOrKwargs>`, overriding each conversion `Rest` does.
impl<'a> ArgType<'a> for Args {
    type Output = Args;

    fn from_value(value: Option<&'a Value>) -> Result<Args, Error> {
        Rest::<ValueOrKwargs>::from_value(value).map(Args::from)
    }

    fn from_state_and_values(
        state: Option<&'a State>,
        values: &'a [Value],
        offset: usize,
    ) -> Result<(Args, usize), Error> {
        Rest::<ValueOrKwargs>::from_state_and_values(state, values, offset)
            .map(|(rest, n)| (Args::from(rest), n))
    }

    fn from_state_and_values_mut(
        state: Option<&State>,
        values: &'a [Value],
        offset: usize,
    ) -> Result<(Args, usize), Error> {
        Rest::<ValueOrKwargs>::from_state_and_values_mut(state, values, offset)
            .map(|(rest, n)| (Args::from(rest), n))
    }
}

/// Arguments bound to Python parameter names: positional first, then
/// keywords; unknown or repeated keywords are errors.
struct Params {
    names: &'static [&'static str],
    values: Vec<Option<Value>>,
}

impl Params {
    fn bind(what: &str, args: &[Value], names: &'static [&'static str]) -> Result<Params, Error> {
        let (pos, kwargs): (&[Value], Kwargs) = from_args(args)?;
        if pos.len() > names.len() {
            return Err(err(format!(
                "{what} takes at most {} argument(s) ({} given)",
                names.len(),
                pos.len()
            )));
        }
        let mut values: Vec<Option<Value>> = vec![None; names.len()];
        for (slot, v) in values.iter_mut().zip(pos) {
            *slot = Some(v.clone());
        }
        bind_kwargs(what, &kwargs, names, &mut values)?;
        Ok(Params { names, values })
    }

    fn get(&self, name: &str) -> Option<&Value> {
        let i = self.names.iter().position(|n| *n == name)?;
        self.values[i].as_ref()
    }

    /// The argument unless missing or `None`.
    fn some(&self, name: &str) -> Option<&Value> {
        self.get(name).filter(|v| !v.is_none())
    }

    fn truthy(&self, name: &str, default: bool) -> bool {
        self.get(name).map_or(default, Value::is_true)
    }

    fn string(&self, name: &str, default: &str) -> String {
        self.some(name).map_or_else(|| default.to_string(), text)
    }

    fn int(&self, name: &str, default: i64) -> Result<i64, Error> {
        match self.some(name) {
            None => Ok(default),
            Some(v) => v
                .as_i64()
                .ok_or_else(|| err(format!("`{name}` must be an integer, not {v}"))),
        }
    }
}

fn bind_kwargs(
    what: &str,
    kwargs: &Kwargs,
    names: &[&str],
    values: &mut [Option<Value>],
) -> Result<(), Error> {
    let keys: Vec<String> = kwargs.args().map(str::to_string).collect();
    for key in keys {
        let Some(i) = names.iter().position(|n| *n == key) else {
            return Err(err(format!(
                "{what} got an unexpected keyword argument `{key}`"
            )));
        };
        if values[i].is_some() {
            return Err(err(format!(
                "{what} got multiple values for argument `{key}`"
            )));
        }
        values[i] = Some(kwargs.get::<Value>(&key)?);
    }
    Ok(())
}

/// `*args` plus named keywords.
fn varargs(
    what: &str,
    args: &[Value],
    names: &'static [&'static str],
) -> Result<(Vec<Value>, Params), Error> {
    let (pos, kwargs): (&[Value], Kwargs) = from_args(args)?;
    let mut values = vec![None; names.len()];
    bind_kwargs(what, &kwargs, names, &mut values)?;
    Ok((pos.to_vec(), Params { names, values }))
}

/// A value as Python's `str()` would show a string argument.
fn text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

fn items(v: &Value) -> Result<Vec<Value>, Error> {
    Ok(v.try_iter()?.collect())
}

fn expect_map(what: &str, v: &Value) -> Result<(), Error> {
    if v.kind() == ValueKind::Map {
        Ok(())
    } else {
        Err(err(format!(
            "{what} expects a dictionary, got {}",
            py_type(v)
        )))
    }
}

fn is_sequence(v: &Value) -> bool {
    matches!(v.kind(), ValueKind::Seq | ValueKind::Iterable)
}

/// Python's type name for `type_debug` and messages.
pub(crate) fn py_type(v: &Value) -> &'static str {
    match v.kind() {
        ValueKind::Undefined => "AnsibleUndefined",
        ValueKind::None => "NoneType",
        ValueKind::Bool => "bool",
        ValueKind::Number if v.is_integer() => "int",
        ValueKind::Number => "float",
        ValueKind::String => "str",
        ValueKind::Bytes => "bytes",
        ValueKind::Seq | ValueKind::Iterable => "list",
        ValueKind::Map => "dict",
        _ => "object",
    }
}

/// `left % right` as Jinja2 evaluates it in Ansible: Python's string
/// formatting when `left` is a string, minijinja's remainder (its own
/// operator, so its errors) for anything else.
fn percent_filter(state: &State, left: Value, right: Value) -> Result<Value, Error> {
    if left.is_undefined() || right.is_undefined() {
        return Err(Error::from(ErrorKind::UndefinedError));
    }
    if let Some(fmt) = left.as_str() {
        return pycompat::py_percent(fmt, &right).map(Value::from);
    }
    state
        .env()
        .compile_expression("left % right")?
        .eval(minijinja::context! { left, right })
}

/// Python's message for an error minijinja words its own way, where
/// Ansible's message is Python's exception: a division by zero ("Error
/// rendering template: division by zero").
pub(crate) fn python_error(err: &Error) -> Option<&'static str> {
    if err.kind() != ErrorKind::InvalidOperation {
        return None;
    }
    // minijinja: "unable to calculate {lhs} {op} {rhs}".
    let calc = err.detail()?.strip_prefix("unable to calculate ")?;
    let mut parts = calc.rsplitn(3, ' ');
    let (rhs, op, lhs) = (parts.next()?, parts.next()?, parts.next()?);
    if rhs != "0" && rhs != "0.0" {
        return None;
    }
    let float = rhs.contains('.') || lhs.contains('.');
    Some(match (op, float) {
        ("/", false) => "division by zero",
        ("/", true) => "float division by zero",
        ("//", false) => "integer division or modulo by zero",
        ("//", true) => "float floor division by zero",
        ("%", false) => "integer modulo by zero",
        ("%", true) => "float modulo",
        _ => return None,
    })
}

/// `map`: minijinja's, except that mapping an attribute some item lacks
/// (and no `default=`) is an error where undefined values are strict, as
/// Ansible's finalization of such a list is ("object of type 'dict' has no
/// attribute 'name'"). Where they chain (a template that tests or defaults
/// values, `map(attribute='x') | select('defined')`), the items stay
/// undefined.
fn map_filter(
    state: &mut State,
    value: Value,
    args: Rest<ValueOrKwargs>,
) -> Result<Vec<Value>, Error> {
    let strict = matches!(
        state.undefined_behavior(),
        minijinja::UndefinedBehavior::Strict
    );
    let attribute = match args.0.last() {
        Some(last) if strict && last.is_kwargs() => {
            let kw = <Kwargs as ArgType>::from_value(Some(last))?;
            match kw.has("default") {
                true => None,
                false => kw.peek::<Value>("attribute").ok(),
            }
        }
        _ => None,
    };
    let items = if attribute.is_some() {
        Some(value.clone())
    } else {
        None
    };
    let out = minijinja::filters::map(state, value, args)?;
    if let (Some(attr), Some(items)) = (attribute, items) {
        if let Some(i) = out.iter().position(Value::is_undefined) {
            let item = items.get_item_by_index(i).unwrap_or_default();
            return Err(Error::new(
                ErrorKind::UndefinedError,
                format!(
                    "object of type '{}' has no attribute '{attr}'",
                    py_type(&item)
                ),
            ));
        }
    }
    Ok(out)
}

/// Python truthiness; an undefined value is an error unless the environment
/// is lenient about undefined values.
fn truth(state: &State, v: &Value) -> Result<bool, Error> {
    use minijinja::UndefinedBehavior as U;
    if v.is_undefined() && matches!(state.undefined_behavior(), U::Strict | U::SemiStrict) {
        return Err(Error::from(ErrorKind::UndefinedError));
    }
    Ok(v.is_true())
}

pub(super) fn undefined_error(what: &str) -> Error {
    Error::new(
        ErrorKind::UndefinedError,
        format!("{what}: the value is undefined"),
    )
}

// ---------------------------------------------------------------------------
// Conversions

/// Ansible's `bool`: `yes`/`on`/`true`/`1` (any case) and 1 are true.
fn bool_filter(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    Params::bind("bool", &args, &[])?;
    Ok(Value::from(match value.kind() {
        ValueKind::Undefined => return Err(undefined_error("bool")),
        ValueKind::Bool => value.is_true(),
        ValueKind::String => matches!(
            value.as_str().unwrap_or_default().to_lowercase().as_str(),
            "yes" | "on" | "true" | "1"
        ),
        ValueKind::Number => f64::try_from(value.clone()).is_ok_and(|f| f == 1.0),
        _ => false,
    }))
}

/// Python's `int(text, base)`: whitespace around, `_` between digits, an
/// optional sign and (for bases 2, 8, 16) prefix.
fn parse_py_int(s: &str, base: u32) -> Option<i128> {
    let t = s.trim();
    let (neg, body) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let lower = body.to_ascii_lowercase();
    let body = match base {
        16 => lower.strip_prefix("0x").unwrap_or(&lower),
        8 => lower.strip_prefix("0o").unwrap_or(&lower),
        2 => lower.strip_prefix("0b").unwrap_or(&lower),
        _ => &lower,
    };
    if body.is_empty() || body.starts_with('_') || body.ends_with('_') || body.contains("__") {
        return None;
    }
    let n = i128::from_str_radix(&body.replace('_', ""), base).ok()?;
    Some(if neg { -n } else { n })
}

/// Python's `float(text)`.
fn parse_py_float(s: &str) -> Option<f64> {
    let t = s.trim().to_ascii_lowercase();
    match t.trim_start_matches(['+', '-']) {
        "inf" | "infinity" | "nan" => return t.parse().ok(),
        _ => {}
    }
    if t.starts_with('_')
        || t.ends_with('_')
        || t.contains("__")
        || t.contains("_.")
        || t.contains("._")
    {
        return None;
    }
    let clean = t.replace('_', "");
    if clean.is_empty()
        || !clean
            .chars()
            .all(|c| c.is_ascii_digit() || "+-.e".contains(c))
    {
        return None;
    }
    clean.parse().ok()
}

/// Jinja2's `int(default=0, base=10)`: `"42.7"` is 42, junk is the default.
fn int_filter(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    let p = Params::bind("int", &args, &["default", "base"])?;
    let default = p.get("default").cloned().unwrap_or(Value::from(0));
    let base = p.int("base", 10)?;
    if !(2..=36).contains(&base) {
        return Err(err("int() base must be between 2 and 36"));
    }
    Ok(match value.kind() {
        ValueKind::Undefined => return Err(undefined_error("int")),
        ValueKind::Bool => Value::from(i64::from(value.is_true())),
        ValueKind::Number if value.is_integer() => value,
        ValueKind::Number => match f64::try_from(value.clone()) {
            Ok(f) if f.is_finite() => Value::from(f.trunc() as i128),
            _ => return Err(err("cannot convert a non-finite float to an integer")),
        },
        ValueKind::String => {
            let s = value.as_str().unwrap_or_default();
            match parse_py_int(s, base as u32) {
                Some(n) => Value::from(n),
                None => match parse_py_float(s) {
                    Some(f) if f.is_finite() => Value::from(f.trunc() as i128),
                    _ => default,
                },
            }
        }
        _ => default,
    })
}

/// Jinja2's `float(default=0.0)`.
fn float_filter(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    let p = Params::bind("float", &args, &["default"])?;
    let default = p.get("default").cloned().unwrap_or(Value::from(0.0));
    Ok(match value.kind() {
        ValueKind::Undefined => return Err(undefined_error("float")),
        ValueKind::Bool => Value::from(if value.is_true() { 1.0 } else { 0.0 }),
        ValueKind::Number => f64::try_from(value).map(Value::from).unwrap_or(default),
        ValueKind::String => parse_py_float(value.as_str().unwrap_or_default())
            .map(Value::from)
            .unwrap_or(default),
        _ => default,
    })
}

/// `default(value='', boolean=False)`; `boolean` also by keyword.
fn default_filter(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    let p = Params::bind("default", &args, &["default_value", "boolean"])?;
    let fallback = p.get("default_value").cloned().unwrap_or(Value::from(""));
    if value.is_undefined() || (p.truthy("boolean", false) && !value.is_true()) {
        Ok(fallback)
    } else {
        Ok(value)
    }
}

fn mandatory(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    let p = Params::bind("mandatory", &args, &["msg"])?;
    if value.is_undefined() {
        let msg = p
            .some("msg")
            .map_or_else(|| "Mandatory variable not defined.".to_string(), text);
        return Err(Error::new(ErrorKind::UndefinedError, msg));
    }
    Ok(value)
}

fn ternary(state: &State, value: Value, args: Args) -> Result<Value, Error> {
    let p = Params::bind("ternary", &args, &["true_val", "false_val", "none_val"])?;
    let (Some(t), Some(f)) = (p.get("true_val"), p.get("false_val")) else {
        return Err(err("ternary needs a true value and a false value"));
    };
    if value.is_none() {
        if let Some(n) = p.some("none_val") {
            return Ok(n.clone());
        }
    }
    Ok(if truth(state, &value)? {
        t.clone()
    } else {
        f.clone()
    })
}

fn type_debug(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    Params::bind("type_debug", &args, &[])?;
    Ok(Value::from(py_type(&value)))
}

// ---------------------------------------------------------------------------
// JSON and YAML

fn json_text(
    value: &Value,
    p: &Params,
    indent_default: Option<i64>,
    sort_default: bool,
) -> Result<Value, Error> {
    let indent = match p.some("indent") {
        None => indent_default.map(|n| " ".repeat(n.max(0) as usize)),
        Some(v) if v.kind() == ValueKind::String => Some(text(v)),
        Some(v) => Some(
            " ".repeat(
                v.as_i64()
                    .ok_or_else(|| err("indent must be an integer"))?
                    .max(0) as usize,
            ),
        ),
    };
    let mut opts = pyjson::JsonOpts::new(indent, p.truthy("sort_keys", sort_default));
    opts.ensure_ascii = p.truthy("ensure_ascii", true);
    if let Some(seps) = p.some("separators") {
        let seps = items(seps)?;
        if let [item, key] = seps.as_slice() {
            opts.item_sep = text(item);
            opts.key_sep = text(key);
        } else {
            return Err(err(
                "separators must be an (item_separator, key_separator) pair",
            ));
        }
    }
    pyjson::dumps(value, &opts).map(Value::from)
}

/// minijinja's error for a test that does not exist does not name it;
/// Ansible's does (the templating target checks it).
fn name_unknown_test(e: Error, test: Option<&str>) -> Error {
    match (e.kind(), test) {
        (ErrorKind::UnknownTest, Some(name)) => {
            Error::new(ErrorKind::UnknownTest, format!("No test named '{name}'."))
        }
        _ => e,
    }
}

/// minijinja's `select` family, the unknown test named as Ansible names it.
macro_rules! naming_unknown_tests {
    ($($name:ident($($arg:ident: $ty:ty),*);)+) => {
        $(
            fn $name(
                state: &mut State,
                value: Value,
                $($arg: $ty,)*
                test: Option<std::borrow::Cow<'_, str>>,
                args: Rest<ValueOrKwargs>,
            ) -> Result<Vec<Value>, Error> {
                let name = test.clone();
                minijinja::filters::$name(state, value, $($arg,)* test, args)
                    .map_err(|e| name_unknown_test(e, name.as_deref()))
            }
        )+
    };
}

naming_unknown_tests! {
    select();
    reject();
    selectattr(attr: std::borrow::Cow<'_, str>);
    rejectattr(attr: std::borrow::Cow<'_, str>);
}

/// Ansible's `vault` filter: `data` encrypted with `secret` (vault id
/// `filter_default`, so a 1.2 envelope, as Ansible writes it).
fn vault_filter(_: &State, data: Value, args: Args) -> Result<Value, Error> {
    let p = Params::bind(
        "vault",
        &args,
        &["secret", "salt", "vault_id", "wrap_object", "vaultid"],
    )?;
    let Some(secret) = p.some("secret").and_then(Value::as_str) else {
        return Err(err("vault: the secret must be a string"));
    };
    let Some(data) = data.as_str() else {
        return Err(err("vault: can only vault strings"));
    };
    let id = p.string("vault_id", "filter_default");
    let secret = crate::secret::Secret::new(secret);
    let out = match p.some("salt") {
        Some(salt) => crate::vault::encrypt_with_salt(
            data.as_bytes(),
            &secret,
            Some(&id),
            text(salt).as_bytes(),
        ),
        None => crate::vault::encrypt(data.as_bytes(), &secret, Some(&id)),
    };
    Ok(Value::from(out))
}

/// Ansible's `unvault` filter: a vault value (a `!vault` variable or
/// envelope text) decrypted with `secret`; other strings as they are.
fn unvault_filter(_: &State, vault: Value, args: Args) -> Result<Value, Error> {
    let p = Params::bind("unvault", &args, &["secret", "vault_id", "vaultid"])?;
    let Some(secret) = p.some("secret").and_then(Value::as_str) else {
        return Err(err("unvault: the secret must be a string"));
    };
    let text = match vault.downcast_object_ref::<super::Undecryptable>() {
        Some(u) => u.text().to_string(),
        None => match vault.as_str() {
            Some(s) => s.to_string(),
            None => return Err(err("unvault: the vault must be a string")),
        },
    };
    if !crate::vault::is_encrypted(&text) {
        return Ok(Value::from(text));
    }
    let secrets = [crate::vault::VaultSecret {
        id: p.string("vault_id", "filter_default"),
        password: crate::secret::Secret::new(secret),
    }];
    let plain = crate::vault::decrypt(&text, &secrets)
        .map_err(|e| err(format!("Unable to decrypt: {e}")))?;
    let plain = String::from_utf8_lossy(&plain).into_owned();
    crate::vault::remember(&plain);
    Ok(Value::from(plain))
}

fn to_json(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    let p = Params::bind(
        "to_json",
        &args,
        &["indent", "sort_keys", "ensure_ascii", "separators"],
    )?;
    json_text(&value, &p, None, false)
}

fn to_nice_json(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    let p = Params::bind(
        "to_nice_json",
        &args,
        &["indent", "sort_keys", "ensure_ascii"],
    )?;
    json_text(&value, &p, Some(4), true)
}

fn yaml_text(value: &Value, p: &Params, nice: bool) -> Result<Value, Error> {
    let mut opts = pyyaml::YamlOpts {
        indent: if nice { 4 } else { 2 },
        default_flow_style: if nice { Some(false) } else { None },
        ..pyyaml::YamlOpts::default()
    };
    if let Some(v) = p.get("default_flow_style") {
        opts.default_flow_style = if v.is_none() { None } else { Some(v.is_true()) };
    }
    if p.some("indent").is_some() {
        opts.indent = p.int("indent", 2)?.max(0) as usize;
    }
    if p.some("width").is_some() {
        opts.width = p.int("width", 80)?.max(0) as usize;
    }
    opts.sort_keys = p.truthy("sort_keys", true);
    opts.allow_unicode = p.truthy("allow_unicode", true);
    opts.explicit_start = p.truthy("explicit_start", false);
    pyyaml::dump(value, &opts).map(Value::from)
}

const YAML_PARAMS: &[&str] = &[
    "indent",
    "default_flow_style",
    "width",
    "sort_keys",
    "allow_unicode",
    "explicit_start",
];

fn to_yaml(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    yaml_text(&value, &Params::bind("to_yaml", &args, YAML_PARAMS)?, false)
}

fn to_nice_yaml(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    yaml_text(
        &value,
        &Params::bind("to_nice_yaml", &args, YAML_PARAMS)?,
        true,
    )
}

fn from_json(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    Params::bind("from_json", &args, &[])?;
    let s = value.as_str().ok_or_else(|| {
        err(format!(
            "from_json expects a string, got {}",
            py_type(&value)
        ))
    })?;
    serde_json::from_str::<serde_json::Value>(s)
        .map(crate::template::to_value)
        .map_err(|e| err(format!("from_json: invalid JSON: {e}")))
}

fn parse_yaml_doc(s: &str) -> Result<Value, Error> {
    crate::yaml::load_str(s, Path::new("<from_yaml>"))
        .map(|node| crate::template::to_value(node.to_value()))
        .map_err(|e| err(format!("from_yaml: {e}")))
}

fn from_yaml(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    Params::bind("from_yaml", &args, &[])?;
    match value.kind() {
        ValueKind::None => Ok(value),
        ValueKind::String => parse_yaml_doc(value.as_str().unwrap_or_default()),
        ValueKind::Undefined => Err(undefined_error("from_yaml")),
        // Ansible passes non-strings through unchanged.
        _ => Ok(value),
    }
}

/// Split a YAML stream at `---` and `...` lines into documents.
fn yaml_documents(s: &str) -> Vec<String> {
    let mut docs: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut started = false;
    let has_content = |d: &str| {
        d.lines().any(|l| {
            !l.trim().is_empty() && !l.trim_start().starts_with('#') && !l.starts_with('%')
        })
    };
    for line in s.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\n', '\r']);
        let is_start = bare == "---" || bare.starts_with("--- ") || bare.starts_with("---\t");
        if is_start {
            if started || has_content(&cur) {
                docs.push(std::mem::take(&mut cur));
            }
            cur.clear();
            started = true;
            cur.push_str(&bare[3..]);
            cur.push('\n');
        } else if bare == "..." {
            if started || has_content(&cur) {
                docs.push(std::mem::take(&mut cur));
            }
            cur.clear();
            started = false;
        } else if !line.starts_with('%') {
            cur.push_str(line);
        }
    }
    if started || has_content(&cur) {
        docs.push(cur);
    }
    docs
}

fn from_yaml_all(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    Params::bind("from_yaml_all", &args, &[])?;
    match value.kind() {
        ValueKind::None => Ok(Value::from(Vec::<Value>::new())),
        ValueKind::String => {
            let docs = yaml_documents(value.as_str().unwrap_or_default())
                .iter()
                .map(|d| parse_yaml_doc(d))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Value::from(docs))
        }
        ValueKind::Undefined => Err(undefined_error("from_yaml_all")),
        _ => Ok(value),
    }
}

// ---------------------------------------------------------------------------
// Encodings and hashes

fn encode_text(s: &str, encoding: &str) -> Result<Vec<u8>, Error> {
    match encoding.to_ascii_lowercase().replace('_', "-").as_str() {
        "utf-8" | "utf8" => Ok(s.as_bytes().to_vec()),
        "utf-16-le" | "utf-16le" => Ok(s.encode_utf16().flat_map(u16::to_le_bytes).collect()),
        "utf-16-be" | "utf-16be" => Ok(s.encode_utf16().flat_map(u16::to_be_bytes).collect()),
        "latin-1" | "latin1" | "iso-8859-1" | "ascii" => s
            .chars()
            .map(|c| {
                let limit = if encoding.eq_ignore_ascii_case("ascii") {
                    0x7f
                } else {
                    0xff
                };
                u8::try_from(c as u32)
                    .ok()
                    .filter(|b| u32::from(*b) <= limit)
                    .ok_or_else(|| err(format!("'{encoding}' codec can't encode character {c:?}")))
            })
            .collect(),
        other => Err(err(format!("unsupported encoding `{other}`"))),
    }
}

fn decode_text(b: &[u8], encoding: &str) -> Result<String, Error> {
    match encoding.to_ascii_lowercase().replace('_', "-").as_str() {
        "utf-8" | "utf8" => String::from_utf8(b.to_vec())
            .map_err(|e| err(format!("'utf-8' codec can't decode: {e}"))),
        "utf-16-le" | "utf-16le" | "utf-16-be" | "utf-16be" => {
            if !b.len().is_multiple_of(2) {
                return Err(err("truncated UTF-16 data"));
            }
            let le = encoding.to_ascii_lowercase().contains("le");
            let units: Vec<u16> = b
                .chunks(2)
                .map(|c| {
                    if le {
                        u16::from_le_bytes([c[0], c[1]])
                    } else {
                        u16::from_be_bytes([c[0], c[1]])
                    }
                })
                .collect();
            String::from_utf16(&units).map_err(|e| err(format!("invalid UTF-16: {e}")))
        }
        "latin-1" | "latin1" | "iso-8859-1" => Ok(b.iter().map(|&c| char::from(c)).collect()),
        "ascii" => {
            if b.is_ascii() {
                Ok(b.iter().map(|&c| char::from(c)).collect())
            } else {
                Err(err("'ascii' codec can't decode a byte above 127"))
            }
        }
        other => Err(err(format!("unsupported encoding `{other}`"))),
    }
}

fn b64encode(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    let p = Params::bind("b64encode", &args, &["encoding", "urlsafe"])?;
    let bytes = encode_text(&text(&value), &p.string("encoding", "utf-8"))?;
    Ok(Value::from(if p.truthy("urlsafe", false) {
        base64::engine::general_purpose::URL_SAFE.encode(bytes)
    } else {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }))
}

fn b64decode(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    let p = Params::bind("b64decode", &args, &["encoding", "urlsafe"])?;
    let urlsafe = p.truthy("urlsafe", false);
    // Like Python's non-validating decoder, characters outside the alphabet
    // (line breaks, spaces) are skipped.
    let clean: String = text(&value)
        .chars()
        .map(|c| match (urlsafe, c) {
            (true, '-') => '+',
            (true, '_') => '/',
            (_, c) => c,
        })
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '='))
        .collect();
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    let bytes = engine
        .decode(clean.trim_end_matches('='))
        .map_err(|e| err(format!("b64decode: invalid base64: {e}")))?;
    Ok(Value::from(decode_text(
        &bytes,
        &p.string("encoding", "utf-8"),
    )?))
}

fn hex_digest(algorithm: &str, data: &[u8]) -> Result<String, Error> {
    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
    Ok(match algorithm {
        "sha1" => hex(&sha1::Sha1::digest(data)),
        "sha224" => hex(&sha2::Sha224::digest(data)),
        "sha256" => hex(&sha2::Sha256::digest(data)),
        "sha384" => hex(&sha2::Sha384::digest(data)),
        "sha512" => hex(&sha2::Sha512::digest(data)),
        "md5" => format!("{:x}", md5::compute(data)),
        other => {
            return Err(err(format!(
                "unsupported hash type `{other}`: use sha1, sha224, sha256, sha384 or sha512"
            )))
        }
    })
}

fn hash(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    let p = Params::bind("hash", &args, &["hashtype"])?;
    hex_digest(&p.string("hashtype", "sha1"), text(&value).as_bytes()).map(Value::from)
}

fn sha1_filter(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    Params::bind("sha1", &args, &[])?;
    hex_digest("sha1", text(&value).as_bytes()).map(Value::from)
}

fn md5_filter(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    Params::bind("md5", &args, &[])?;
    hex_digest("md5", text(&value).as_bytes()).map(Value::from)
}

/// Ansible's default `to_uuid` namespace.
const UUID_NAMESPACE_ANSIBLE: [u8; 16] = [
    0x36, 0x1e, 0x6d, 0x51, 0xfa, 0xec, 0x44, 0x4a, 0x90, 0x79, 0x34, 0x13, 0x86, 0xda, 0x8e, 0x2e,
];

fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let hex: String = s
        .trim_start_matches("urn:")
        .trim_start_matches("uuid:")
        .chars()
        .filter(|c| !matches!(c, '-' | '{' | '}'))
        .collect();
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// UUID version 5 (SHA-1 of namespace and name), as Python's `uuid.uuid5`.
fn to_uuid(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    let p = Params::bind("to_uuid", &args, &["namespace"])?;
    let ns = match p.some("namespace") {
        None => UUID_NAMESPACE_ANSIBLE,
        Some(v) => parse_uuid(&text(v))
            .ok_or_else(|| err(format!("invalid value '{v}' for 'namespace'")))?,
    };
    let mut h = sha1::Sha1::new();
    h.update(ns);
    h.update(text(&value).as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(Value::from(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )))
}

// ---------------------------------------------------------------------------
// Regular expressions

fn regex_replace(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    let p = Params::bind(
        "regex_replace",
        &args,
        &[
            "pattern",
            "replacement",
            "ignorecase",
            "multiline",
            "count",
            "mandatory_count",
        ],
    )?;
    let pattern = p.string("pattern", "");
    let re = pyre::compile(
        &pattern,
        p.truthy("ignorecase", false),
        p.truthy("multiline", false),
        false,
    )?;
    let count = p.int("count", 0)?.max(0) as usize;
    let (out, n) = pyre::sub(&re, &p.string("replacement", ""), &text(&value), count)?;
    let mandatory = p.int("mandatory_count", 0)?;
    if mandatory != 0 && mandatory != n as i64 {
        return Err(err(format!(
            "'{pattern}' should match {mandatory} times, but matches {n} times in '{value}'"
        )));
    }
    Ok(Value::from(out))
}

fn regex_search(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    let (groups, p) = varargs("regex_search", &args, &["ignorecase", "multiline"])?;
    let Some((pattern, groups)) = groups.split_first() else {
        return Err(err("regex_search needs a pattern"));
    };
    let re = pyre::compile(
        &text(pattern),
        p.truthy("ignorecase", false),
        p.truthy("multiline", false),
        false,
    )?;
    let s = text(&value);
    let Some(caps) = re.captures(s.as_str()).map_err(|e| pyre::failed(&re, e))? else {
        return Ok(Value::from(()));
    };
    if groups.is_empty() {
        return Ok(Value::from(caps.get(0).map_or("", |m| m.as_str())));
    }
    groups
        .iter()
        .map(|g| pyre::group_of(&caps, &text(g)))
        .collect::<Result<Vec<_>, _>>()
        .map(Value::from)
}

fn regex_findall(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    let p = Params::bind(
        "regex_findall",
        &args,
        &["regex", "multiline", "ignorecase"],
    )?;
    let re = pyre::compile(
        &p.string("regex", ""),
        p.truthy("ignorecase", false),
        p.truthy("multiline", false),
        false,
    )?;
    pyre::findall(&re, &text(&value))
}

fn regex_escape(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    let p = Params::bind("regex_escape", &args, &["re_type"])?;
    let s = text(&value);
    match p.string("re_type", "python").as_str() {
        "python" => Ok(Value::from(pyre::escape(&s))),
        "posix_basic" => {
            let mut out = String::new();
            for c in s.chars() {
                if "].[^$*\\".contains(c) {
                    out.push('\\');
                }
                out.push(c);
            }
            Ok(Value::from(out))
        }
        other => Err(err(format!("regex type `{other}` is not supported"))),
    }
}

// ---------------------------------------------------------------------------
// Paths (on the control machine)

/// Python's `os.path.basename`.
fn py_basename(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

/// Python's `os.path.dirname`.
fn py_dirname(p: &str) -> String {
    let head = match p.rfind('/') {
        Some(i) => &p[..=i],
        None => "",
    };
    if !head.is_empty() && head.chars().any(|c| c != '/') {
        head.trim_end_matches('/').to_string()
    } else {
        head.to_string()
    }
}

/// Python's `os.path.splitext`.
fn py_splitext(p: &str) -> (String, String) {
    let base_start = p.rfind('/').map_or(0, |i| i + 1);
    let base = &p[base_start..];
    let Some(dot) = base.rfind('.') else {
        return (p.to_string(), String::new());
    };
    // Leading dots do not start an extension (`.bashrc`).
    if base[..dot].chars().all(|c| c == '.') {
        return (p.to_string(), String::new());
    }
    let at = base_start + dot;
    (p[..at].to_string(), p[at..].to_string())
}

/// Python's `os.path.normpath`.
fn py_normpath(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let initial = if p.starts_with("//") && !p.starts_with("///") {
        "//"
    } else if p.starts_with('/') {
        "/"
    } else {
        ""
    };
    let mut parts: Vec<&str> = Vec::new();
    for comp in p.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if initial.is_empty() {
                    parts.push("..");
                }
            }
            c => parts.push(c),
        }
    }
    let joined = parts.join("/");
    let out = format!("{initial}{joined}");
    if out.is_empty() {
        ".".into()
    } else {
        out
    }
}

fn home_expand(p: &str) -> String {
    let home = std::env::var("HOME").unwrap_or_default();
    if home.is_empty() {
        return p.to_string();
    }
    if p == "~" {
        home
    } else if let Some(rest) = p.strip_prefix("~/") {
        format!("{}/{rest}", home.trim_end_matches('/'))
    } else {
        p.to_string()
    }
}

fn basename(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    Params::bind("basename", &args, &[])?;
    Ok(Value::from(py_basename(&text(&value))))
}

fn dirname(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    Params::bind("dirname", &args, &[])?;
    Ok(Value::from(py_dirname(&text(&value))))
}

fn splitext(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    Params::bind("splitext", &args, &[])?;
    let (root, ext) = py_splitext(&text(&value));
    Ok(Value::from(vec![Value::from(root), Value::from(ext)]))
}

fn expanduser(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    Params::bind("expanduser", &args, &[])?;
    Ok(Value::from(home_expand(&text(&value))))
}

fn normpath(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    Params::bind("normpath", &args, &[])?;
    Ok(Value::from(py_normpath(&text(&value))))
}

/// `os.path.realpath`: symlinks resolved where the path exists.
fn realpath(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    Params::bind("realpath", &args, &[])?;
    let p = text(&value);
    if let Ok(real) = std::fs::canonicalize(&p) {
        return Ok(Value::from(real.to_string_lossy().into_owned()));
    }
    let abs = if p.starts_with('/') {
        p
    } else {
        let cwd = std::env::current_dir().map_err(|e| err(format!("realpath: {e}")))?;
        format!("{}/{p}", cwd.display())
    };
    Ok(Value::from(py_normpath(&abs)))
}

/// `os.path.join(*paths)`: an absolute part restarts the path.
fn path_join(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    Params::bind("path_join", &args, &[])?;
    let parts: Vec<String> = match value.kind() {
        ValueKind::String => vec![text(&value)],
        ValueKind::Seq | ValueKind::Iterable => items(&value)?.iter().map(text).collect(),
        _ => {
            return Err(err(format!(
                "path_join expects string or sequence, got {}",
                py_type(&value)
            )))
        }
    };
    let mut out = String::new();
    for part in parts {
        if part.starts_with('/') || out.is_empty() {
            out = part;
        } else {
            if !out.ends_with('/') {
                out.push('/');
            }
            out.push_str(&part);
        }
    }
    Ok(Value::from(out))
}

fn quote(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    Params::bind("quote", &args, &[])?;
    let s = if value.is_none() {
        String::new()
    } else {
        text(&value)
    };
    Ok(Value::from(crate::shlex::quote(&s)))
}

// ---------------------------------------------------------------------------
// Data structures

fn to_data(v: &Value) -> Result<serde_json::Value, Error> {
    serde_json::to_value(v).map_err(|e| err(format!("cannot convert {v}: {e}")))
}

/// Ansible's `merge_hash(x, y, recursive, list_merge)`: `y` wins.
fn merge_hash(
    x: &serde_json::Map<String, serde_json::Value>,
    y: &serde_json::Map<String, serde_json::Value>,
    recursive: bool,
    list_merge: &str,
) -> serde_json::Map<String, serde_json::Value> {
    use serde_json::Value as J;
    let mut out = x.clone();
    for (k, yv) in y {
        let merged = match (out.get(k), yv) {
            (Some(J::Object(a)), J::Object(b)) if recursive => {
                J::Object(merge_hash(a, b, recursive, list_merge))
            }
            (Some(J::Array(a)), J::Array(b)) => J::Array(match list_merge {
                "keep" => a.clone(),
                "append" => a.iter().chain(b).cloned().collect(),
                "prepend" => b.iter().chain(a).cloned().collect(),
                "append_rp" => a
                    .iter()
                    .filter(|v| !b.contains(v))
                    .chain(b)
                    .cloned()
                    .collect(),
                "prepend_rp" => b
                    .iter()
                    .chain(a.iter().filter(|v| !b.contains(v)))
                    .cloned()
                    .collect(),
                _ => b.clone(),
            }),
            _ => yv.clone(),
        };
        out.insert(k.clone(), merged);
    }
    out
}

fn combine(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    let (terms, p) = varargs("combine", &args, &["recursive", "list_merge"])?;
    let list_merge = p.string("list_merge", "replace");
    if ![
        "replace",
        "keep",
        "append",
        "prepend",
        "append_rp",
        "prepend_rp",
    ]
    .contains(&list_merge.as_str())
    {
        return Err(err(
            "list_merge must be one of 'replace', 'keep', 'append', 'prepend', 'append_rp' or 'prepend_rp'",
        ));
    }
    let mut dicts = Vec::new();
    for term in std::iter::once(&value).chain(&terms) {
        if is_sequence(term) {
            dicts.extend(items(term)?);
        } else {
            dicts.push(term.clone());
        }
    }
    let mut out = serde_json::Map::new();
    for d in &dicts {
        match to_data(d)? {
            serde_json::Value::Object(m) => {
                out = merge_hash(&out, &m, p.truthy("recursive", false), &list_merge)
            }
            _ => {
                return Err(err(format!(
                    "failed to combine variables, expected dicts but got {}",
                    py_type(d)
                )))
            }
        }
    }
    Ok(crate::template::to_value(serde_json::Value::Object(out)))
}

fn dict2items(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    let p = Params::bind("dict2items", &args, &["key_name", "value_name"])?;
    expect_map("dict2items", &value)?;
    let (kn, vn) = (p.string("key_name", "key"), p.string("value_name", "value"));
    let mut out = Vec::new();
    for k in value.try_iter()? {
        let v = value.get_item(&k)?;
        out.push(Value::from_pairs([(kn.clone(), k), (vn.clone(), v)]));
    }
    Ok(Value::from(out))
}

fn items2dict(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    let p = Params::bind("items2dict", &args, &["key_name", "value_name"])?;
    if !is_sequence(&value) {
        return Err(err(format!(
            "items2dict requires a list, got {} instead.",
            py_type(&value)
        )));
    }
    let (kn, vn) = (p.string("key_name", "key"), p.string("value_name", "value"));
    let mut pairs = Vec::new();
    for item in items(&value)? {
        let (k, v) = (item.get_attr(&kn)?, item.get_attr(&vn)?);
        if k.is_undefined() || v.is_undefined() {
            return Err(err(format!(
                "items2dict requires each dictionary in the list to contain the keys '{kn}' and '{vn}', got {item} instead."
            )));
        }
        pairs.push((k, v));
    }
    Ok(Value::from_pairs(pairs))
}

fn flatten_into(
    list: &Value,
    levels: Option<i64>,
    skip_nulls: bool,
    out: &mut Vec<Value>,
) -> Result<(), Error> {
    for el in list.try_iter()? {
        let null_like = el.is_none() || matches!(el.as_str(), Some("None" | "null"));
        if skip_nulls && null_like {
            continue;
        }
        match levels {
            _ if !is_sequence(&el) => out.push(el),
            None => flatten_into(&el, None, skip_nulls, out)?,
            Some(n) if n >= 1 => flatten_into(&el, Some(n - 1), skip_nulls, out)?,
            Some(_) => out.push(el),
        }
    }
    Ok(())
}

fn flatten(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    let p = Params::bind("flatten", &args, &["levels", "skip_nulls"])?;
    let levels = match p.some("levels") {
        None => None,
        Some(_) => Some(p.int("levels", 0)?),
    };
    let mut out = Vec::new();
    flatten_into(&value, levels, p.truthy("skip_nulls", true), &mut out)?;
    Ok(Value::from(out))
}

fn zip_longest(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    let (others, p) = varargs("zip_longest", &args, &["fillvalue"])?;
    let fill = p.get("fillvalue").cloned().unwrap_or(Value::from(()));
    let lists: Vec<Vec<Value>> = std::iter::once(&value)
        .chain(&others)
        .map(items)
        .collect::<Result<_, _>>()?;
    let len = lists.iter().map(Vec::len).max().unwrap_or(0);
    Ok(Value::from(
        (0..len)
            .map(|i| {
                Value::from(
                    lists
                        .iter()
                        .map(|l| l.get(i).cloned().unwrap_or_else(|| fill.clone()))
                        .collect::<Vec<_>>(),
                )
            })
            .collect::<Vec<_>>(),
    ))
}

fn product(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    let (others, p) = varargs("product", &args, &["repeat"])?;
    let repeat = p.int("repeat", 1)?.max(0) as usize;
    let lists: Vec<Vec<Value>> = std::iter::once(&value)
        .chain(&others)
        .map(items)
        .collect::<Result<_, _>>()?;
    let mut pools = Vec::new();
    for _ in 0..repeat {
        pools.extend(lists.iter().cloned());
    }
    let mut out: Vec<Vec<Value>> = vec![Vec::new()];
    for pool in pools {
        out = out
            .into_iter()
            .flat_map(|prefix| {
                pool.iter().map(move |x| {
                    let mut next = prefix.clone();
                    next.push(x.clone());
                    next
                })
            })
            .collect();
    }
    Ok(Value::from(
        out.into_iter().map(Value::from).collect::<Vec<_>>(),
    ))
}

/// Order-keeping uniqueness (Python `==`, so `1` and `1.0` are equal).
fn dedup(list: impl IntoIterator<Item = Value>) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for v in list {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

/// Ansible's `unique`: Jinja2's (case-insensitive unless `case_sensitive`,
/// optional `attribute`), first occurrences in order.
fn unique(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    let p = Params::bind("unique", &args, &["case_sensitive", "attribute"])?;
    let case_sensitive = p.truthy("case_sensitive", false);
    let attr = p.some("attribute").map(text);
    let mut seen: Vec<Value> = Vec::new();
    let mut out = Vec::new();
    if value.is_undefined() {
        return Err(undefined_error("unique"));
    }
    for item in value.try_iter()? {
        let mut key = match &attr {
            Some(a) => item.get_attr(a)?,
            None => item.clone(),
        };
        if !case_sensitive {
            if let Some(s) = key.as_str() {
                key = Value::from(s.to_lowercase());
            }
        }
        if !seen.contains(&key) {
            seen.push(key);
            out.push(item);
        }
    }
    Ok(Value::from(out))
}

fn two_lists(what: &str, value: &Value, args: &[Value]) -> Result<(Vec<Value>, Vec<Value>), Error> {
    let (rest, _) = varargs(what, args, &[])?;
    let [other] = rest.as_slice() else {
        return Err(err(format!("{what} takes exactly one list argument")));
    };
    Ok((items(value)?, items(other)?))
}

// Ansible computes these with Python sets, whose order is arbitrary; drover
// keeps the order of the first list, then the second.
fn difference(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    let (a, b) = two_lists("difference", &value, &args)?;
    Ok(Value::from(dedup(a.into_iter().filter(|x| !b.contains(x)))))
}

fn intersect(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    let (a, b) = two_lists("intersect", &value, &args)?;
    Ok(Value::from(dedup(a.into_iter().filter(|x| b.contains(x)))))
}

fn union(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    let (a, b) = two_lists("union", &value, &args)?;
    Ok(Value::from(dedup(a.into_iter().chain(b))))
}

fn symmetric_difference(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    let (a, b) = two_lists("symmetric_difference", &value, &args)?;
    let both: Vec<Value> = a.iter().filter(|x| b.contains(x)).cloned().collect();
    Ok(Value::from(dedup(
        a.into_iter().chain(b).filter(|x| !both.contains(x)),
    )))
}

/// `extract(container, morekeys=None)`: `container[item][morekeys...]`.
fn extract(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    let p = Params::bind("extract", &args, &["container", "morekeys"])?;
    let Some(container) = p.get("container") else {
        return Err(err("extract needs a container"));
    };
    let mut keys = vec![value];
    match p.some("morekeys") {
        None => {}
        Some(more) if more.kind() == ValueKind::Seq => keys.extend(items(more)?),
        Some(more) => keys.push(more.clone()),
    }
    let mut cur = container.clone();
    for k in keys {
        cur = cur.get_item(&k).unwrap_or(Value::UNDEFINED);
    }
    Ok(cur)
}

fn subelements(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    let p = Params::bind("subelements", &args, &["subelements", "skip_missing"])?;
    let elements: Vec<Value> = match value.kind() {
        ValueKind::Map => value
            .try_iter()?
            .map(|k| value.get_item(&k))
            .collect::<Result<_, _>>()?,
        ValueKind::Seq | ValueKind::Iterable => items(&value)?,
        _ => return Err(err("obj must be a list of dicts or a nested dict")),
    };
    let path: Vec<String> = match p.get("subelements") {
        Some(v) if v.kind() == ValueKind::String => {
            text(v).split('.').map(str::to_string).collect()
        }
        Some(v) if is_sequence(v) => items(v)?.iter().map(text).collect(),
        _ => return Err(err("subelements must be a list or a string")),
    };
    let skip_missing = p.truthy("skip_missing", false);
    let mut out = Vec::new();
    for el in elements {
        let mut cur = el.clone();
        let mut missing = false;
        for key in &path {
            if cur.kind() != ValueKind::Map {
                return Err(err(format!(
                    "the key {key} should point to a dictionary, got '{cur}'"
                )));
            }
            let next = cur.get_attr(key)?;
            if next.is_undefined() {
                if skip_missing {
                    missing = true;
                    break;
                }
                return Err(err(format!(
                    "could not find '{key}' key in iterated item '{cur}'"
                )));
            }
            cur = next;
        }
        if missing {
            continue;
        }
        if cur.kind() != ValueKind::Seq {
            return Err(err(format!(
                "the key {} should point to a list, got '{cur}'",
                path.join(".")
            )));
        }
        for sub in items(&cur)? {
            out.push(Value::from(vec![el.clone(), sub]));
        }
    }
    Ok(Value::from(out))
}

fn number(what: &str, v: &Value) -> Result<f64, Error> {
    f64::try_from(v.clone()).map_err(|_| err(format!("{what}() can only be used on numbers")))
}

fn log(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    let p = Params::bind("log", &args, &["base"])?;
    let x = number("log", &value)?;
    Ok(Value::from(match p.some("base") {
        None => x.ln(),
        Some(b) if number("log", b)? == 10.0 => x.log10(),
        Some(b) => x.ln() / number("log", b)?.ln(),
    }))
}

fn pow(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    let p = Params::bind("pow", &args, &["y"])?;
    let y = p.get("y").ok_or_else(|| err("pow needs an exponent"))?;
    Ok(Value::from(number("pow", &value)?.powf(number("pow", y)?)))
}

fn root(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    let p = Params::bind("root", &args, &["base"])?;
    let x = number("root", &value)?;
    Ok(Value::from(match p.some("base") {
        None => x.sqrt(),
        Some(b) => {
            let b = number("root", b)?;
            if b == 2.0 {
                x.sqrt()
            } else {
                x.powf(1.0 / b)
            }
        }
    }))
}

/// Ansible's `random(start=None, step=None, seed=None)`: on an integer N a
/// number from `range(start, N, step)`, on a sequence one of its elements.
/// With `seed` the choice is deterministic (the same seed always gives the
/// same result, as playbooks rely on for stable host-specific values), though
/// not the number Python's Mersenne Twister would draw.
fn random_filter(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    use rand::{Rng as _, SeedableRng as _};
    let p = Params::bind("random", &args, &["start", "step", "seed"])?;
    let mut rng = match p.some("seed") {
        None => rand::rngs::StdRng::from_os_rng(),
        Some(seed) => {
            let digest = sha2::Sha256::digest(text(seed).as_bytes());
            rand::rngs::StdRng::from_seed(digest.into())
        }
    };
    if value.kind() == ValueKind::Number && value.is_integer() {
        let end = value
            .as_i64()
            .ok_or_else(|| err(format!("random: {value} is out of range")))?;
        // Python's `if not start` / `if not step`: 0 and None mean the default.
        let start = p.int("start", 0)?;
        let step = match p.int("step", 1)? {
            0 => 1,
            s => s,
        };
        // Python's randrange: the number of values in range(start, end, step).
        let (span, stride) = if step > 0 {
            (i128::from(end) - i128::from(start), i128::from(step))
        } else {
            (i128::from(start) - i128::from(end), -i128::from(step))
        };
        let count = (span + stride - 1).div_euclid(stride);
        if count <= 0 {
            return Err(err(format!(
                "random: empty range in randrange({start}, {end}, {step})"
            )));
        }
        let pick = rng.random_range(0..count);
        let n = i128::from(start) + i128::from(step) * pick;
        return i64::try_from(n)
            .map(Value::from)
            .map_err(|_| err("random: result out of range"));
    }
    if value.is_none() || value.is_undefined() || value.kind() == ValueKind::Number {
        return Err(err("random can only be used on sequences and integers"));
    }
    if p.some("start").is_some_and(Value::is_true) || p.some("step").is_some_and(Value::is_true) {
        return Err(err("start and step can only be used with integer values"));
    }
    let choices: Vec<Value> = match value.as_str() {
        Some(s) => s.chars().map(|c| Value::from(c.to_string())).collect(),
        None => items(&value)?,
    };
    if choices.is_empty() {
        return Err(err("random: cannot choose from an empty sequence"));
    }
    let i = rng.random_range(0..choices.len());
    Ok(choices[i].clone())
}

/// Python's `str.split(sep=None, maxsplit=-1)`.
fn split_filter(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    let p = Params::bind("split", &args, &["sep", "maxsplit"])?;
    let sep = p.some("sep").map(text);
    let parts = pycompat::py_split(&text(&value), sep.as_deref(), p.int("maxsplit", -1)?)?;
    Ok(Value::from(
        parts.into_iter().map(Value::from).collect::<Vec<_>>(),
    ))
}

// ---------------------------------------------------------------------------
// Tests

fn regex_test(value: &Value, args: &[Value], default_type: &str) -> Result<bool, Error> {
    let p = Params::bind(
        "regex",
        args,
        &["pattern", "ignorecase", "multiline", "match_type"],
    )?;
    let match_type = p.string("match_type", default_type);
    let anchored = match match_type.as_str() {
        "match" => true,
        "search" => false,
        other => {
            return Err(err(format!(
                "match_type must be 'match' or 'search', not '{other}'"
            )))
        }
    };
    let re = pyre::compile(
        &p.string("pattern", ""),
        p.truthy("ignorecase", false),
        p.truthy("multiline", false),
        anchored,
    )?;
    re.is_match(&text(value)).map_err(|e| pyre::failed(&re, e))
}

fn test_match(_: &State, value: Value, args: Args) -> Result<bool, Error> {
    regex_test(&value, &args, "match")
}

fn test_search(_: &State, value: Value, args: Args) -> Result<bool, Error> {
    regex_test(&value, &args, "search")
}

fn test_regex(_: &State, value: Value, args: Args) -> Result<bool, Error> {
    regex_test(&value, &args, "search")
}

/// Ansible's `boolean()` for `convert_bool`: only boolean-like values.
fn convert_bool(v: &Value) -> Option<bool> {
    match v.kind() {
        ValueKind::Bool => Some(v.is_true()),
        ValueKind::String => match v.as_str().unwrap_or_default().to_lowercase().as_str() {
            "y" | "yes" | "on" | "1" | "true" | "t" | "1.0" => Some(true),
            "n" | "no" | "off" | "0" | "false" | "f" | "0.0" => Some(false),
            _ => None,
        },
        ValueKind::Number => f64::try_from(v.clone()).ok().and_then(|f| {
            if f == 1.0 {
                Some(true)
            } else if f == 0.0 {
                Some(false)
            } else {
                None
            }
        }),
        _ => None,
    }
}

fn truthy(state: &State, value: &Value, args: &[Value]) -> Result<bool, Error> {
    let p = Params::bind("truthy", args, &["convert_bool"])?;
    if p.truthy("convert_bool", false) {
        if let Some(b) = convert_bool(value) {
            return Ok(b);
        }
    }
    truth(state, value)
}

fn test_truthy(state: &State, value: Value, args: Args) -> Result<bool, Error> {
    truthy(state, &value, &args)
}

fn test_falsy(state: &State, value: Value, args: Args) -> Result<bool, Error> {
    truthy(state, &value, &args).map(|t| !t)
}

/// A registered task result's key, as Ansible's result tests read it.
fn result_key(what: &str, value: &Value, key: &str) -> Result<Option<Value>, Error> {
    if value.kind() != ValueKind::Map {
        return Err(err(format!("The '{what}' test expects a dictionary")));
    }
    let v = value.get_attr(key)?;
    Ok((!v.is_undefined()).then_some(v))
}

fn result_flag(what: &str, value: &Value, key: &str) -> Result<bool, Error> {
    Ok(result_key(what, value, key)?.is_some_and(|v| v.is_true()))
}

fn test_failed(_: &State, value: Value) -> Result<bool, Error> {
    result_flag("failed", &value, "failed")
}

fn test_succeeded(_: &State, value: Value) -> Result<bool, Error> {
    result_flag("succeeded", &value, "failed").map(|f| !f)
}

fn test_skipped(_: &State, value: Value) -> Result<bool, Error> {
    result_flag("skipped", &value, "skipped")
}

fn test_unreachable(_: &State, value: Value) -> Result<bool, Error> {
    result_flag("unreachable", &value, "unreachable")
}

fn test_reachable(_: &State, value: Value) -> Result<bool, Error> {
    result_flag("reachable", &value, "unreachable").map(|u| !u)
}

/// `changed`, or, without that key, any changed item of a loop's `results`.
fn test_changed(_: &State, value: Value) -> Result<bool, Error> {
    if let Some(c) = result_key("changed", &value, "changed")? {
        return Ok(c.is_true());
    }
    let Some(results) = result_key("changed", &value, "results")? else {
        return Ok(false);
    };
    if results.kind() != ValueKind::Seq {
        return Ok(false);
    }
    for r in results.try_iter()? {
        if r.kind() == ValueKind::Map && r.get_attr("changed")?.is_true() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Async status tests: without the key, the task counts as done.
fn test_finished(_: &State, value: Value) -> Result<bool, Error> {
    Ok(result_key("finished", &value, "finished")?.is_none_or(|v| v.is_true()))
}

fn test_started(_: &State, value: Value) -> Result<bool, Error> {
    Ok(result_key("started", &value, "started")?.is_none_or(|v| v.is_true()))
}

fn test_version(_: &State, value: Value, args: Args) -> Result<bool, Error> {
    let p = Params::bind(
        "version",
        &args,
        &["version", "operator", "strict", "version_type"],
    )?;
    if p.some("strict").is_some() && p.some("version_type").is_some() {
        return Err(err("Cannot specify both 'strict' and 'version_type'"));
    }
    let a = text(&value);
    let b = p.string("version", "");
    if a.is_empty() || value.is_none() {
        return Err(err("Input version value cannot be empty"));
    }
    if b.is_empty() {
        return Err(err("Version parameter to compare against cannot be empty"));
    }
    let vtype = if p.truthy("strict", false) {
        "strict".to_string()
    } else {
        p.string("version_type", "loose")
    };
    let op = p.string("operator", "eq");
    let ord = version::compare(&a, &b, &vtype)
        .map_err(|e| err(format!("Version comparison failed: {e}")))?;
    version::satisfies(ord, &op).map_err(|e| err(e.to_string()))
}

fn test_subset(_: &State, value: Value, args: Args) -> Result<bool, Error> {
    let (a, b) = two_lists("subset", &value, &args)?;
    Ok(a.iter().all(|x| b.contains(x)))
}

fn test_superset(_: &State, value: Value, args: Args) -> Result<bool, Error> {
    let (a, b) = two_lists("superset", &value, &args)?;
    Ok(b.iter().all(|x| a.contains(x)))
}

fn test_contains(_: &State, value: Value, args: Args) -> Result<bool, Error> {
    let p = Params::bind("contains", &args, &["item"])?;
    let item = p.get("item").cloned().unwrap_or_default();
    // Python's `item in value`: a substring for text, a key for a mapping.
    if let Some(s) = value.as_str() {
        return Ok(item.as_str().is_some_and(|i| s.contains(i)));
    }
    Ok(items(&value)?.contains(&item))
}

fn test_any(_: &State, value: Value) -> Result<bool, Error> {
    Ok(items(&value)?.iter().any(Value::is_true))
}

fn test_all(_: &State, value: Value) -> Result<bool, Error> {
    Ok(items(&value)?.iter().all(Value::is_true))
}

fn test_nan(_: &State, value: Value) -> Result<bool, Error> {
    Ok(f64::try_from(value).is_ok_and(f64::is_nan))
}

fn local_path(v: &Value) -> PathBuf {
    PathBuf::from(home_expand(&text(v)))
}

fn test_file(_: &State, value: Value) -> bool {
    local_path(&value).is_file()
}

fn test_directory(_: &State, value: Value) -> bool {
    local_path(&value).is_dir()
}

fn test_exists(_: &State, value: Value) -> bool {
    local_path(&value).exists()
}

fn test_link(_: &State, value: Value) -> bool {
    local_path(&value).is_symlink()
}

fn test_link_exists(_: &State, value: Value) -> bool {
    std::fs::symlink_metadata(local_path(&value)).is_ok()
}

fn test_abs(_: &State, value: Value) -> bool {
    text(&value).starts_with('/')
}

fn test_same_file(_: &State, value: Value, args: Args) -> Result<bool, Error> {
    use std::os::unix::fs::MetadataExt as _;
    let p = Params::bind("same_file", &args, &["other"])?;
    let other = p
        .get("other")
        .ok_or_else(|| err("same_file needs another path"))?;
    let (Ok(a), Ok(b)) = (
        std::fs::metadata(local_path(&value)),
        std::fs::metadata(local_path(other)),
    ) else {
        return Ok(false);
    };
    Ok(a.dev() == b.dev() && a.ino() == b.ino())
}

/// A mount point: a directory on another device than its parent, or `/`.
fn test_mount(_: &State, value: Value) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    let path = local_path(&value);
    let Ok(meta) = std::fs::symlink_metadata(&path) else {
        return false;
    };
    if !meta.is_dir() {
        return false;
    }
    let parent = path.join("..");
    match std::fs::metadata(&parent) {
        Ok(p) => p.dev() != meta.dev() || p.ino() == meta.ino(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests;
