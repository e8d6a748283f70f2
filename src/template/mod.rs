//! Jinja2 templating with minijinja, behaving like Ansible's for what
//! playbooks use: strict undefined variables (an error naming the variable),
//! variables that are themselves templates rendered lazily on use, a string
//! that is one `{{ expression }}` keeping the expression's type, and
//! Ansible's filters and tests ([`filters`]).

mod embedded;
pub mod filters;
mod jinja_rules;
mod lazy;
pub(crate) mod native;
pub(crate) mod percent;
pub mod trust;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use minijinja::value::{Enumerator, Object, ObjectRepr};
use minijinja::{Environment, ErrorKind, UndefinedBehavior};

use crate::{Map, Value};

/// How deep variables may refer to variables before we call it a loop.
const MAX_DEPTH: usize = 32;

/// A templating error, with the undefined variable named when that is the cause.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateError {
    /// What went wrong.
    pub msg: String,
    /// The variable that is undefined, if that is the problem.
    pub undefined: Option<String>,
    /// An undefined value deeper than a variable caused it (`list[1].foo`,
    /// `map(attribute=)` on an item without it): a template that tests or
    /// defaults values may still render with undefined values that chain.
    pub chainable: bool,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.undefined {
            Some(var) => write!(f, "'{var}' is undefined"),
            None => f.write_str(&self.msg),
        }
    }
}

impl std::error::Error for TemplateError {}

/// A template (or expression) that does not compile.
#[derive(Debug, thiserror::Error)]
pub enum SyntaxError {
    /// The engine refused it.
    #[error("{0}")]
    Compile(minijinja::Error),
    /// The engine's parser panicked on it (minijinja 2 did on `a }} b`).
    #[error("syntax error: the template engine could not parse this")]
    Panicked,
}

/// The template engine. Cheap to share; build one per run.
#[derive(Clone)]
pub struct Templar {
    env: Arc<Environment<'static>>,
    /// The same environment with undefined values that chain
    /// (`missing.attr` is undefined, not an error) but still fail when
    /// printed: Ansible's undefined, for the templates that test or default
    /// them.
    chain_env: Arc<Environment<'static>>,
}

impl Default for Templar {
    fn default() -> Self {
        Templar::new()
    }
}

/// Ansible's whitespace rules: `trim_blocks`, and a template's trailing
/// newline kept.
pub fn set_ansible_whitespace(env: &mut Environment<'_>) {
    let mut syntax = minijinja::syntax::SyntaxConfig::builder();
    syntax.trim_blocks(true).keep_trailing_newline(true);
    // Only custom delimiters can make `build` fail; these are the defaults.
    if let Ok(syntax) = syntax.build() {
        env.set_syntax(syntax);
    }
}

/// A template's own Jinja2 syntax (the template module's
/// `block_start_string`, ..., `trim_blocks`, `lstrip_blocks`).
#[derive(Debug, Clone, PartialEq)]
pub struct Syntax {
    /// `{%` and `%}`.
    pub block: (String, String),
    /// `{{` and `}}`.
    pub variable: (String, String),
    /// `{#` and `#}`.
    pub comment: (String, String),
    /// Drop the newline after a block tag.
    pub trim_blocks: bool,
    /// Drop the spaces before a block tag at the start of a line.
    pub lstrip_blocks: bool,
    /// Directories where `include`, `import` and `extends` find the
    /// templates they name, in order (the template module's search path).
    pub search: Vec<std::path::PathBuf>,
    /// Lines starting with this are statements (`: if x`); empty: none.
    pub line_statement_prefix: String,
    /// Lines starting with this are comments; empty: none.
    pub line_comment_prefix: String,
}

impl Default for Syntax {
    fn default() -> Syntax {
        let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
        Syntax {
            block: pair("{%", "%}"),
            variable: pair("{{", "}}"),
            comment: pair("{#", "#}"),
            trim_blocks: true,
            lstrip_blocks: false,
            search: Vec::new(),
            line_statement_prefix: String::new(),
            line_comment_prefix: String::new(),
        }
    }
}

/// The first line of a template that changes its syntax
/// (`#jinja2: trim_blocks: False, variable_start_string: '[%'`).
const OVERRIDE: &str = "#jinja2:";

impl Syntax {
    /// When `source` starts with a `#jinja2:` line: the rest of it, and
    /// this syntax with that line's changes, as Ansible reads them:
    /// comma-separated `key: value` pairs, each value a Python literal.
    pub fn overridden<'a>(&self, source: &'a str) -> Result<Option<(&'a str, Syntax)>, String> {
        let Some(rest) = source.strip_prefix(OVERRIDE) else {
            return Ok(None);
        };
        let Some((line, body)) = rest.split_once('\n') else {
            return Err(format!("Missing newline after '{OVERRIDE}' override."));
        };
        let mut syntax = self.clone();
        for pair in line.split(',') {
            if pair.trim().is_empty() {
                return Err(format!("Empty '{OVERRIDE}' override pair not allowed."));
            }
            let Some((key, value)) = pair.split_once(':') else {
                return Err(format!(
                    "Missing key-value separator `:` in '{OVERRIDE}' override pair '{pair}'."
                ));
            };
            let key = key.trim();
            let value = py_literal(value.trim()).ok_or_else(|| {
                format!("Invalid '{OVERRIDE}' override value for '{key}': {value}")
            })?;
            let text = |v: Override| match v {
                Override::Text(t) => Ok(t),
                Override::Bool(_) => Err(format!("'{OVERRIDE}' override '{key}' must be a string")),
            };
            let flag = |v: Override| match v {
                Override::Bool(b) => Ok(b),
                Override::Text(_) => {
                    Err(format!("'{OVERRIDE}' override '{key}' must be a boolean"))
                }
            };
            match key {
                "block_start_string" => syntax.block.0 = text(value)?,
                "block_end_string" => syntax.block.1 = text(value)?,
                "variable_start_string" => syntax.variable.0 = text(value)?,
                "variable_end_string" => syntax.variable.1 = text(value)?,
                "comment_start_string" => syntax.comment.0 = text(value)?,
                "comment_end_string" => syntax.comment.1 = text(value)?,
                "line_statement_prefix" => syntax.line_statement_prefix = text(value)?,
                "line_comment_prefix" => syntax.line_comment_prefix = text(value)?,
                "trim_blocks" => syntax.trim_blocks = flag(value)?,
                "lstrip_blocks" => syntax.lstrip_blocks = flag(value)?,
                "newline_sequence" | "keep_trailing_newline" => {
                    return Err(format!(
                        "'{OVERRIDE}' override '{key}' is not supported by drover (use the template module's argument)"
                    ))
                }
                _ => return Err(format!("Invalid '{OVERRIDE}' override key '{key}'.")),
            }
        }
        Ok(Some((body, syntax)))
    }
}

/// A `#jinja2:` override's value.
enum Override {
    Text(String),
    Bool(bool),
}

/// The Python literals a `#jinja2:` override takes: a quoted string (with
/// backslash escapes), `True`, `False`.
fn py_literal(v: &str) -> Option<Override> {
    match v {
        "True" => return Some(Override::Bool(true)),
        "False" => return Some(Override::Bool(false)),
        _ => {}
    }
    let quote = v.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let inner = v.strip_prefix(quote)?.strip_suffix(quote)?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == quote {
            return None;
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next()? {
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            other => other,
        });
    }
    Some(Override::Text(out))
}

impl Syntax {
    /// The environment `env` with this syntax.
    pub fn apply(&self, env: &Environment<'static>) -> Result<Environment<'static>, String> {
        let mut b = minijinja::syntax::SyntaxConfig::builder();
        b.block_delimiters(self.block.0.clone(), self.block.1.clone())
            .variable_delimiters(self.variable.0.clone(), self.variable.1.clone())
            .comment_delimiters(self.comment.0.clone(), self.comment.1.clone())
            .trim_blocks(self.trim_blocks)
            .lstrip_blocks(self.lstrip_blocks)
            .line_statement_prefix(self.line_statement_prefix.clone())
            .line_comment_prefix(self.line_comment_prefix.clone())
            .keep_trailing_newline(true);
        let config = b
            .build()
            .map_err(|e| format!("invalid template syntax: {e}"))?;
        let mut env = env.clone();
        env.set_syntax(config);
        if !self.search.is_empty() {
            let dirs = self.search.clone();
            env.set_loader(move |name| {
                let Some(path) = dirs.iter().map(|d| d.join(name)).find(|p| p.is_file()) else {
                    return Ok(None);
                };
                std::fs::read_to_string(&path).map(Some).map_err(|e| {
                    minijinja::Error::new(
                        minijinja::ErrorKind::InvalidOperation,
                        format!("{}: {e}", path.display()),
                    )
                })
            });
        }
        Ok(env)
    }
}

/// A template value holding serializable data (variables, facts, results).
pub fn to_value<T: serde::Serialize>(data: T) -> minijinja::Value {
    minijinja::Value::from(minijinja::value::Serde(data))
}

impl Templar {
    /// An environment with Ansible's settings, filters and tests.
    pub fn new() -> Templar {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        set_ansible_whitespace(&mut env);
        filters::register(&mut env);
        let mut chain_env = env.clone();
        chain_env.set_undefined_behavior(UndefinedBehavior::Chainable);
        chain_env.set_formatter(|out, state, value| {
            if value.is_undefined() {
                return Err(minijinja::Error::new(
                    ErrorKind::UndefinedError,
                    "undefined value printed",
                ));
            }
            minijinja::escape_formatter(out, state, value)
        });
        Templar {
            env: Arc::new(env),
            chain_env: Arc::new(chain_env),
        }
    }

    /// A scope over `vars`; `magic` adds objects such as `hostvars`.
    pub fn scope(&self, vars: Arc<Map>, magic: Vec<(String, minijinja::Value)>) -> Scope {
        self.layered(vec![vars], magic)
    }

    /// A scope over layers of variables, a later layer's value of a name
    /// taking precedence. Layers are shared, not copied: a play's vars or a
    /// host's inventory vars serve every task of every host as they are.
    pub fn layered(&self, layers: Vec<Arc<Map>>, magic: Vec<(String, minijinja::Value)>) -> Scope {
        Scope(Arc::new(ScopeInner {
            env: self.env.clone(),
            chain_env: self.chain_env.clone(),
            layers,
            magic,
            cache: Mutex::new(HashMap::new()),
            depth: Mutex::new(0),
            error: Mutex::new(None),
        }))
    }

    /// Top-level variables a template (or, with `expr`, a bare expression)
    /// reads, or why it does not compile.
    pub fn referenced(&self, source: &str, expr: bool) -> Result<Vec<String>, SyntaxError> {
        let names = if expr {
            let e = single_expression(source).unwrap_or(source);
            guarded(|| self.env.compile_expression(e))?.undeclared_variables(false)
        } else {
            guarded(|| self.env.template_from_str(source))?.undeclared_variables(false)
        };
        let mut v: Vec<String> = names.into_iter().collect();
        v.sort();
        Ok(v)
    }

    /// The syntax error in a template (or, with `expr`, a condition such as
    /// `when`), if any. Needs no variables: the loader calls it to point at
    /// the very value that is wrong.
    pub fn syntax_error(source: &str, expr: bool) -> Option<SyntaxError> {
        static ENV: OnceLock<Environment<'static>> = OnceLock::new();
        let env = ENV.get_or_init(|| {
            let mut env = Environment::new();
            set_ansible_whitespace(&mut env);
            env
        });
        let result = if expr {
            let e = single_expression(source.trim()).unwrap_or(source);
            guarded(|| env.compile_expression(e)).map(drop)
        } else {
            guarded(|| env.template_from_str(source)).map(drop)
        };
        result.err()
    }

    /// Does `s` contain template syntax?
    pub fn is_template(s: &str) -> bool {
        s.contains("{{") || s.contains("{%") || s.contains("{#")
    }

    /// Render every string inside `value`. A string that is exactly one
    /// `{{ expression }}` becomes the expression's value with its type.
    pub fn render_value(&self, value: &Value, scope: &Scope) -> Result<Value, TemplateError> {
        scope.0.render_value(value)
    }

    /// Render a string template to a string.
    pub fn render_string(&self, source: &str, scope: &Scope) -> Result<String, TemplateError> {
        scope.0.render_string(source)
    }

    /// Render a template written in its own [`Syntax`].
    pub fn render_string_syntax(
        &self,
        source: &str,
        scope: &Scope,
        syntax: &Syntax,
    ) -> Result<String, TemplateError> {
        let err = |msg: String| TemplateError {
            msg,
            undefined: None,
            chainable: false,
        };
        let overridden = syntax
            .overridden(source)
            .map_err(|e| err(format!("Syntax error in template: {e}")))?;
        let (source, syntax) = match &overridden {
            Some((body, changed)) => (*body, changed),
            None => (source, syntax),
        };
        let envs = (syntax.apply(&scope.0.env).map_err(err)?, {
            syntax.apply(&scope.0.chain_env).map_err(err)?
        });
        scope.0.render_in(source, &envs.0, &envs.1)
    }

    /// Evaluate a bare expression (`when`, `that`, `changed_when`).
    pub fn eval(&self, expr: &str, scope: &Scope) -> Result<Value, TemplateError> {
        scope.0.eval(expr)
    }

    /// Evaluate a condition (`when`, `changed_when`, `failed_when`,
    /// `until`) as Ansible 2.19 does: its result must be a boolean. A bare
    /// `{{ x }}` is accepted; when it gives a string, that string is the
    /// expression (indirection).
    pub fn truthy(&self, expr: &str, scope: &Scope) -> Result<bool, TemplateError> {
        self.condition_text(expr, &trust::Origin::Source, scope)
            .map(|v| v.value)
    }
}

/// The variables one template sees. Cloning is cheap.
#[derive(Clone)]
pub struct Scope(Arc<ScopeInner>);

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Scope")
    }
}

impl Scope {
    /// The scope as a minijinja value (for `hostvars[...]`).
    pub fn to_jinja(&self) -> minijinja::Value {
        minijinja::Value::from_dyn_object(self.0.clone())
    }

    /// A variable as written (not rendered), from the highest layer that
    /// has it.
    pub fn var(&self, name: &str) -> Option<&Value> {
        self.0.raw(name)
    }

    /// This scope with `layer` over its variables (same magic objects).
    pub fn with_layer(&self, templar: &Templar, layer: Arc<Map>) -> Scope {
        let mut layers = self.0.layers.clone();
        layers.push(layer);
        templar.layered(layers, self.0.magic.clone())
    }
}

struct ScopeInner {
    env: Arc<Environment<'static>>,
    chain_env: Arc<Environment<'static>>,
    /// Lowest precedence first.
    layers: Vec<Arc<Map>>,
    magic: Vec<(String, minijinja::Value)>,
    cache: Mutex<HashMap<String, minijinja::Value>>,
    depth: Mutex<usize>,
    /// An error met while rendering a variable lazily; minijinja's object
    /// lookups cannot fail, so it is kept here and reported afterwards.
    error: Mutex<Option<TemplateError>>,
}

impl fmt::Debug for ScopeInner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ScopeInner")
    }
}

/// The expression inside `{{ ... }}` when that is all the string holds.
pub(crate) fn single_expression(s: &str) -> Option<&str> {
    // No trimming: `"{{ x }} "` is text, not the value of x.
    let inner = s.strip_prefix("{{")?.strip_suffix("}}")?;
    // As Jinja's lexer: a `}}` inside brackets or a string literal does not
    // end the block (`{{ [{'a': {'b': 1}}] }}` is one list).
    let b = inner.as_bytes();
    let (mut depth, mut quote, mut i) = (0usize, None, 0);
    while i < b.len() {
        match (quote, b[i]) {
            (Some(_), b'\\') => i += 1,
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, c @ (b'\'' | b'"')) => quote = Some(c),
            (None, b'{') if depth == 0 && b.get(i + 1) == Some(&b'{') => return None,
            (None, b'(' | b'[' | b'{') => depth += 1,
            (None, b')' | b']' | b'}') => depth = depth.checked_sub(1)?,
            (None, _) => {}
        }
        i += 1;
    }
    (depth == 0 && quote.is_none()).then(|| inner.trim())
}

/// Compile a user-written string. minijinja 2 panicked in its lexer on
/// `a }} b`; should its parser ever panic again, the string is reported as
/// invalid instead of crashing drover.
fn guarded<T>(compile: impl FnOnce() -> Result<T, minijinja::Error>) -> Result<T, SyntaxError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(compile)) {
        Ok(result) => result.map_err(SyntaxError::Compile),
        Err(_) => Err(SyntaxError::Panicked),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ScopeInner {
    fn raw(&self, key: &str) -> Option<&Value> {
        self.layers.iter().rev().find_map(|l| l.get(key))
    }

    fn ctx(self: &Arc<Self>) -> minijinja::Value {
        minijinja::Value::from_dyn_object(self.clone())
    }

    fn take_error(&self) -> Option<TemplateError> {
        lock(&self.error).take()
    }

    fn enter(&self) -> Result<(), TemplateError> {
        let mut d = lock(&self.depth);
        if *d >= MAX_DEPTH {
            return Err(TemplateError {
                msg: "Recursive loop detected in template (a variable refers to itself)".into(),
                undefined: None,
                chainable: false,
            });
        }
        *d += 1;
        Ok(())
    }

    fn leave(&self) {
        let mut d = lock(&self.depth);
        *d = d.saturating_sub(1);
    }

    fn convert_error(self: &Arc<Self>, err: minijinja::Error, names: Vec<String>) -> TemplateError {
        if let Some(inner) = self.take_error() {
            return inner;
        }
        let undefined = err.kind() == ErrorKind::UndefinedError;
        if undefined {
            let missing = names.into_iter().find(|n| !self.resolves(n));
            if let Some(var) = missing {
                return TemplateError {
                    msg: format!("'{var}' is undefined"),
                    undefined: Some(var),
                    chainable: false,
                };
            }
        }
        // Python's words where Ansible's message is Python's exception.
        let msg = match filters::python_error(&err) {
            Some(python) => python.to_string(),
            None => {
                let mut msg = err.to_string();
                if let Some(detail) = err.detail() {
                    if !msg.contains(detail) {
                        msg = format!("{msg}: {detail}");
                    }
                }
                msg
            }
        };
        TemplateError {
            msg,
            undefined: None,
            chainable: undefined,
        }
    }

    /// Does a dotted name (`a.b.c`) resolve in this scope?
    fn resolves(self: &Arc<Self>, dotted: &str) -> bool {
        let mut parts = dotted.split('.');
        let Some(first) = parts.next() else {
            return true;
        };
        let Some(mut v) = self.lookup(first) else {
            return false;
        };
        for p in parts {
            match v.get_attr(p) {
                Ok(next) if !next.is_undefined() => v = next,
                _ => return false,
            }
        }
        true
    }

    fn lookup(self: &Arc<Self>, key: &str) -> Option<minijinja::Value> {
        if let Some((_, v)) = self.magic.iter().find(|(k, _)| k == key) {
            return Some(v.clone());
        }
        if let Some(v) = lock(&self.cache).get(key) {
            return Some(v.clone());
        }
        if lock(&self.error).is_some() {
            // A variable already failed to render: stop, report that one.
            return None;
        }
        let Some(raw) = self.raw(key) else {
            // Ansible's `vars`: every variable this template sees, unless
            // a variable of that name hides it.
            return (key == "vars").then(|| self.ctx());
        };
        if let Value::Object(map) = raw {
            if let Some(text) = crate::vault::marker_text(map) {
                let v = match crate::vault::reveal(text) {
                    Ok(plain) => minijinja::Value::from(plain),
                    // Only a use of the value fails (Ansible 2.19): the
                    // `unvault` filter may still open it with its own
                    // password.
                    Err(why) => minijinja::Value::from_object(Undecryptable {
                        text: text.to_string(),
                        why,
                        scope: Arc::downgrade(self),
                    }),
                };
                lock(&self.cache).insert(key.to_string(), v.clone());
                return Some(v);
            }
        }
        let v = match self.materialize(raw, key) {
            Ok(v) => v,
            Err(e) => {
                let mut slot = lock(&self.error);
                if slot.is_none() {
                    *slot = Some(TemplateError {
                        msg: format!("in variable '{key}': {e}"),
                        undefined: e.undefined.clone(),
                        chainable: e.chainable,
                    });
                }
                return None;
            }
        };
        lock(&self.cache).insert(key.to_string(), v.clone());
        Some(v)
    }

    fn render_value(self: &Arc<Self>, value: &Value) -> Result<Value, TemplateError> {
        match value {
            Value::String(s) if Templar::is_template(s) => {
                // Jinja drops one trailing newline when it compiles, so
                // `"{{ x }}\n"` (a folded `>` scalar) is still the value of
                // x in Ansible.
                let body = s.strip_suffix('\n').unwrap_or(s);
                match single_expression(body) {
                    Some(expr) if body.len() == s.len() => self.eval(expr),
                    // Only lists and mappings are taken as values here: a
                    // scalar keeps rendering as text with its newline, which
                    // e2e tests (`content: "{{ r.skipped }}\n"`) rely on.
                    Some(expr) => match self.eval(expr)? {
                        v @ (Value::Array(_) | Value::Object(_)) => Ok(v),
                        _ => self.render_string(s).map(Value::String),
                    },
                    // Macros and one expression: its value (Ansible 2.19).
                    None => match native::analyse(s, self.env.syntax()) {
                        Some(n) => self.eval_native(&n),
                        None => self.render_string(s).map(Value::String),
                    },
                }
            }
            Value::Array(items) => items
                .iter()
                .map(|v| self.render_value(v))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            Value::Object(map) if crate::vault::marker_text(map).is_some() => {
                // Decrypted text is the value: never rendered as a template.
                let text = crate::vault::marker_text(map).unwrap_or_default();
                crate::vault::reveal(text)
                    .map(Value::String)
                    .map_err(|why| undecryptable_error(&why))
            }
            Value::Object(map) => {
                let mut out = Map::new();
                for (k, v) in map {
                    let key = if Templar::is_template(k) {
                        self.render_string(k)?
                    } else {
                        k.clone()
                    };
                    out.insert(key, self.render_value(v)?);
                }
                Ok(Value::Object(out))
            }
            other => Ok(other.clone()),
        }
    }

    fn render_string(self: &Arc<Self>, source: &str) -> Result<String, TemplateError> {
        if !Templar::is_template(source) {
            return Ok(source.to_string());
        }
        let (env, chain_env) = (self.env.clone(), self.chain_env.clone());
        self.render_in(source, &env, &chain_env)
    }

    /// Render with these environments (the scope's own, or with another
    /// syntax).
    fn render_in(
        self: &Arc<Self>,
        source: &str,
        env: &Environment<'static>,
        chain_env: &Environment<'static>,
    ) -> Result<String, TemplateError> {
        self.enter()?;
        let render = |env: &Environment<'static>| {
            let compile_error = |e| TemplateError {
                msg: format!("template error: {e}"),
                undefined: None,
                chainable: false,
            };
            let rewritten = percent::rewrite(source, false, env.syntax());
            let text = rewritten.as_deref().unwrap_or(source);
            let tmpl = guarded(|| env.template_from_str(text)).map_err(compile_error)?;
            jinja_rules::check(source, false, env)?;
            let embedded = self.embedded(text, false, env.syntax())?;
            let (tmpl, ctx) = match &embedded {
                Some((text, ctx)) => (
                    guarded(|| env.template_from_str(text)).map_err(compile_error)?,
                    ctx.clone(),
                ),
                None => (tmpl, self.ctx()),
            };
            tmpl.render(ctx).map_err(|e| {
                let names = sorted(tmpl.undeclared_variables(true));
                self.convert_error(e, names)
            })
        };
        let mut result = render(env);
        if self.may_chain(&result, source) {
            if let Ok(out) = render(chain_env) {
                result = Ok(out);
            }
        }
        self.leave();
        if let Some(e) = self.take_error() {
            return Err(e);
        }
        result
    }

    fn eval(self: &Arc<Self>, expr: &str) -> Result<Value, TemplateError> {
        let v = self.eval_raw(expr)?;
        self.plain(&v, expr)
    }

    /// The value of a template of macros and one expression.
    fn eval_native(self: &Arc<Self>, n: &native::NativeTemplate) -> Result<Value, TemplateError> {
        self.enter()?;
        let result = n.eval(&self.env, self.ctx());
        self.leave();
        if let Some(e) = self.take_error() {
            return Err(e);
        }
        let v = result.map_err(|e| {
            let names = self
                .env
                .compile_expression(&n.expr)
                .map(|c| sorted(c.undeclared_variables(true)))
                .unwrap_or_default();
            self.convert_error(e, names)
        })?;
        self.plain(&v, &n.expr)
    }

    /// `v` (the value of `expr`) as plain data: lazy values rendered.
    fn plain(self: &Arc<Self>, v: &minijinja::Value, expr: &str) -> Result<Value, TemplateError> {
        let out = serde_json::to_value(v).map_err(|e| TemplateError {
            msg: format!("cannot convert result of '{expr}': {e}"),
            undefined: None,
            chainable: false,
        });
        match self.take_error() {
            Some(e) => Err(e),
            None => out,
        }
    }

    fn eval_raw(self: &Arc<Self>, expr: &str) -> Result<minijinja::Value, TemplateError> {
        self.enter()?;
        let mut result = self.eval_in(&self.env, expr);
        if self.may_chain(&result, expr) {
            if let Ok(v) = self.eval_in(&self.chain_env, expr) {
                result = Ok(v);
            }
        }
        self.leave();
        if let Some(e) = self.take_error() {
            return Err(e);
        }
        result
    }

    /// Should a template that failed on an undefined value be tried again
    /// with undefined values that chain? Only one that tests or defaults a
    /// value: Ansible's `missing.attr | default(x)` and `missing.attr is
    /// defined`; anything else keeps strict undefined errors.
    fn may_chain<T>(&self, result: &Result<T, TemplateError>, source: &str) -> bool {
        matches!(result, Err(e) if e.undefined.is_some() || e.chainable)
            && lock(&self.error).is_none()
            && (source.contains("default")
                || source.contains("defined")
                || source.contains("|d(")
                || source.contains("| d("))
    }

    fn eval_in(
        self: &Arc<Self>,
        env: &Environment<'static>,
        expr: &str,
    ) -> Result<minijinja::Value, TemplateError> {
        {
            // `text` is `expr` or a rewriting of it; errors name `expr`.
            fn compile<'s>(
                env: &'s Environment<'static>,
                text: &'s str,
                expr: &str,
            ) -> Result<minijinja::Expression<'s, 's>, TemplateError> {
                guarded(|| env.compile_expression(text)).map_err(|e| TemplateError {
                    msg: format!("template error in '{expr}': {e}"),
                    undefined: None,
                    chainable: false,
                })
            }
            // A `%` rewritten (only in an expression that parses: one that
            // does not is compiled as written, for its error).
            let rewritten = percent::rewrite(expr, true, env.syntax());
            let text = rewritten.as_deref().unwrap_or(expr);
            let compiled = compile(env, text, expr)?;
            jinja_rules::check(expr, true, env)?;
            let embedded = self.embedded(text, true, env.syntax())?;
            let (compiled, ctx) = match &embedded {
                Some((text, ctx)) => (compile(env, text, expr)?, ctx.clone()),
                None => (compiled, self.ctx()),
            };
            let names = || sorted(compiled.undeclared_variables(true));
            let v = compiled
                .eval(ctx)
                .map_err(|e| self.convert_error(e, names()))?;
            if v.is_undefined() {
                let var = names()
                    .into_iter()
                    .find(|n| !self.resolves(n))
                    .unwrap_or_else(|| expr.to_string());
                return Err(TemplateError {
                    msg: format!("'{var}' is undefined"),
                    undefined: Some(var),
                    chainable: false,
                });
            }
            Ok(v)
        }
    }
}

/// Text that must never be rendered as a template (`!unsafe` values,
/// module results, as Ansible 2.19 does not trust them): with template
/// syntax in it, it is wrapped in a raw block, which renders as the text
/// itself. Text starting with a newline (trim_blocks would eat it after
/// the tag) or holding `endraw` stays as it is.
pub fn literal_text(text: String) -> String {
    if Templar::is_template(&text) && !text.starts_with('\n') && !text.contains("endraw") {
        format!("{{% raw %}}{text}{{% endraw %}}")
    } else {
        text
    }
}

/// [`literal_text`] on every string inside a value (keys as they are).
pub fn literal_value(value: Value) -> Value {
    match value {
        Value::String(s) => Value::String(literal_text(s)),
        Value::Array(items) => Value::Array(items.into_iter().map(literal_value).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, literal_value(v)))
                .collect(),
        ),
        other => other,
    }
}

/// What using a vault value no password opens says.
fn undecryptable_error(why: &crate::vault::VaultError) -> TemplateError {
    TemplateError {
        msg: format!("Attempt to use undecryptable variable: {why}"),
        undefined: None,
        chainable: false,
    }
}

/// A `!vault` variable that none of the run's passwords opens. Using it
/// (printing it, serialising it) fails the template it is used in; the
/// `unvault` filter takes its envelope text to try its own password.
#[derive(Debug)]
pub struct Undecryptable {
    text: String,
    why: crate::vault::VaultError,
    scope: std::sync::Weak<ScopeInner>,
}

impl Undecryptable {
    /// The vault envelope.
    pub fn text(&self) -> &str {
        &self.text
    }
}

impl Object for Undecryptable {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn render(self: &Arc<Self>, _: &mut fmt::Formatter<'_>) -> fmt::Result
    where
        Self: Sized + 'static,
    {
        // A formatting error would panic in `to_string`: record the failure
        // where the template's result is checked instead.
        if let Some(scope) = self.scope.upgrade() {
            let mut slot = lock(&scope.error);
            if slot.is_none() {
                *slot = Some(undecryptable_error(&self.why));
            }
        }
        Ok(())
    }
}

fn sorted(set: std::collections::HashSet<String>) -> Vec<String> {
    let mut v: Vec<String> = set
        .into_iter()
        .filter(|n| !n.starts_with(embedded::PREFIX))
        .collect();
    // Longest (most nested) names first, so `a.b` is named rather than `a`
    // when `a` exists.
    v.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
    v.sort_by_key(|n| n.split('.').count() == 1);
    v.reverse();
    v
}

fn contains_template(v: &Value) -> bool {
    match v {
        Value::String(s) => Templar::is_template(s),
        Value::Array(items) => items.iter().any(contains_template),
        Value::Object(map) => {
            crate::vault::marker_text(map).is_some()
                || map
                    .iter()
                    .any(|(k, v)| Templar::is_template(k) || contains_template(v))
        }
        _ => false,
    }
}

impl Object for ScopeInner {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &minijinja::Value) -> Option<minijinja::Value> {
        self.lookup(key.as_str()?)
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let mut names = indexmap::IndexSet::new();
        for layer in &self.layers {
            // The trust marks are drover's, not a variable of the play.
            names.extend(
                layer
                    .keys()
                    .map(String::as_str)
                    .filter(|k| *k != trust::MARKS),
            );
        }
        let mut keys: Vec<minijinja::Value> =
            names.into_iter().map(minijinja::Value::from).collect();
        keys.extend(
            self.magic
                .iter()
                .map(|(k, _)| minijinja::Value::from(k.as_str())),
        );
        Enumerator::Values(keys)
    }
}

/// The variable through which a `with_<lookup>` loop tells the lookup its
/// task's file subdirectory (`vars`, `templates`, `files`), as Ansible
/// gives `first_found` the action's.
pub const LOOKUP_SUBDIR: &str = "__drover_lookup_subdir";

/// `ansible_search_path`: the directories a task's relative file names
/// (lookups, `src`) are looked up in, shared with the task rather than
/// copied into every scope.
#[derive(Debug)]
pub struct SearchPath(pub Arc<Vec<std::path::PathBuf>>);

impl SearchPath {
    /// The list as a template value.
    pub fn value(dirs: Arc<Vec<std::path::PathBuf>>) -> minijinja::Value {
        minijinja::Value::from_object(SearchPath(dirs))
    }
}

impl Object for SearchPath {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &minijinja::Value) -> Option<minijinja::Value> {
        let i = key.as_usize()?;
        self.0
            .get(i)
            .map(|p| minijinja::Value::from(p.display().to_string()))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Seq(self.0.len())
    }
}

/// `hostvars`: every host's variables, each rendered lazily in its own scope.
#[derive(Debug)]
pub struct HostVars {
    /// One scope per host.
    pub hosts: indexmap::IndexMap<String, Scope>,
}

impl Object for HostVars {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &minijinja::Value) -> Option<minijinja::Value> {
        self.hosts.get(key.as_str()?).map(Scope::to_jinja)
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(
            self.hosts
                .keys()
                .map(|k| minijinja::Value::from(k.as_str()))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn scope(t: &Templar, v: Value) -> Scope {
        let Value::Object(m) = v else {
            panic!("object expected")
        };
        t.scope(Arc::new(m), Vec::new())
    }

    fn map(v: Value) -> Arc<Map> {
        let Value::Object(m) = v else {
            panic!("object expected")
        };
        Arc::new(m)
    }

    #[test]
    fn a_later_layer_wins_and_templates_see_every_layer() {
        let t = Templar::new();
        let low = map(json!({"a": "low", "b": "{{ c }}", "c": "low c"}));
        let high = map(json!({"a": "high", "c": "high c"}));
        let s = t.layered(vec![low.clone(), high], Vec::new());
        assert_eq!(
            t.render_string("{{ a }} {{ b }}", &s).expect("render"),
            "high high c"
        );
        assert_eq!(s.var("b"), Some(&json!("{{ c }}")));
        let top = s.with_layer(&t, map(json!({"a": "top"})));
        assert_eq!(t.render_string("{{ a }}", &top).expect("render"), "top");
        // Layers are shared, not copied.
        assert_eq!(Arc::strong_count(&low), 3);
    }

    #[test]
    fn keeps_types_of_single_expressions() {
        let t = Templar::new();
        let s = scope(&t, json!({"ports": [1, 2], "n": 3}));
        assert_eq!(t.render_value(&json!("{{ ports }}"), &s), Ok(json!([1, 2])));
        assert_eq!(t.render_value(&json!("{{ n + 1 }}"), &s), Ok(json!(4)));
        assert_eq!(t.render_value(&json!("n={{ n }}"), &s), Ok(json!("n=3")));
        assert_eq!(t.render_value(&json!("{{ n }}\n"), &s), Ok(json!("3\n")));
    }

    /// A folded scalar (`v: >` then `{{ [x] + l }}`) ends in a newline: it
    /// rendered to text, so the loop-until target's next `+` on it failed
    /// ("unsupported types sequence and string"). Jinja drops that newline
    /// before rendering, and Ansible restores it only on a text result.
    /// `{{ [{'name': x, 'user': {'cluster': n}}] }}` rendered to text (a
    /// Python repr), not a list: the check for one expression took the
    /// inner `}}` for the end of the block. Jinja's lexer balances brackets.
    #[test]
    fn single_expression_with_closing_braces_inside_keeps_its_type() {
        let t = Templar::new();
        let s = scope(&t, json!({"n": "c"}));
        assert_eq!(
            t.render_value(&json!("{{ [{'a': {'b': n}}] }}"), &s),
            Ok(json!([{"a": {"b": "c"}}]))
        );
        assert_eq!(
            t.render_value(&json!("{{ {'a': '}}'} }}"), &s),
            Ok(json!({"a": "}}"}))
        );
        assert_eq!(
            t.render_value(&json!("{{ n }}{{ n }}"), &s),
            Ok(json!("cc"))
        );
        assert_eq!(
            t.render_value(&json!("{{ n }} and {{ [1] }}"), &s),
            Ok(json!("c and [1]"))
        );
    }

    #[test]
    fn single_expression_with_a_trailing_newline_keeps_its_type() {
        let t = Templar::new();
        let s = scope(&t, json!({"ports": [1, 2], "n": 3, "w": "x"}));
        assert_eq!(
            t.render_value(&json!("{{ ports }}\n"), &s),
            Ok(json!([1, 2]))
        );
        assert_eq!(t.render_value(&json!("{{ n }}\n"), &s), Ok(json!("3\n")));
        assert_eq!(t.render_value(&json!("{{ w }}\n"), &s), Ok(json!("x\n")));
        assert_eq!(
            t.render_value(&json!("{{ n }}\n\n"), &s),
            Ok(json!("3\n\n"))
        );
    }

    #[test]
    fn conditionals_must_have_a_boolean_result() {
        let t = Templar::new();
        let s = scope(
            &t,
            json!({"flag": true, "word": "yes", "items": [1], "expr": "flag and 1 == 1"}),
        );
        assert_eq!(t.truthy("flag", &s), Ok(true));
        assert_eq!(t.truthy("items | length > 0", &s), Ok(true));
        assert_eq!(t.truthy("{{ flag }}", &s), Ok(true));
        // A bare template giving a string names the expression to evaluate.
        assert_eq!(t.truthy("{{ expr }}", &s), Ok(true));
        for broken in ["word", "items", "1", "flag and word"] {
            let e = t.truthy(broken, &s).expect_err(broken);
            assert!(
                e.msg.contains("Conditionals must have a boolean result"),
                "{broken}: {e:?}"
            );
        }
        let e = t.truthy("word", &s).expect_err("str");
        assert!(
            e.msg
                .starts_with("Conditional result (True) was derived from value of type 'str'"),
            "{e:?}"
        );
        assert!(t.truthy("  ", &s).is_err(), "empty conditional");
    }

    #[test]
    fn variables_render_lazily_and_recursively() {
        let t = Templar::new();
        let s = scope(
            &t,
            json!({"base": "/srv", "dir": "{{ base }}/app", "conf": "{{ dir }}/c"}),
        );
        assert_eq!(t.render_string("{{ conf }}", &s), Ok("/srv/app/c".into()));
    }

    #[test]
    fn undefined_variable_is_named() {
        let t = Templar::new();
        let s = scope(&t, json!({"a": {"b": 1}, "x": "{{ nope }}"}));
        let e = t
            .render_string("v={{ missing }}", &s)
            .expect_err("undefined");
        assert_eq!(e.undefined.as_deref(), Some("missing"));
        let e = t.eval("a.c", &s).expect_err("undefined attr");
        assert_eq!(e.undefined.as_deref(), Some("a.c"));
        let e = t
            .render_string("{{ x }}", &s)
            .expect_err("nested undefined");
        assert_eq!(e.undefined.as_deref(), Some("nope"));
        assert!(t.truthy("missing is defined", &s).is_ok_and(|b| !b));
    }

    #[test]
    fn missing_attr_default_chains_like_ansible_undefined() {
        let t = Templar::new();
        let s = scope(&t, json!({"a": {"b": 1}}));
        let r = |src: &str| t.render_string(src, &s);
        assert_eq!(r("{{ missing.attr | default('x') }}"), Ok("x".into()));
        assert_eq!(r("{{ a.c.d | default('y') }}"), Ok("y".into()));
        assert_eq!(r("{{ missing['k'].j | d('z') }}"), Ok("z".into()));
        assert!(t.truthy("missing.attr is defined", &s).is_ok_and(|b| !b));
        assert!(t.truthy("missing.attr is undefined", &s).is_ok_and(|b| b));
        // Still an error when the undefined value is used.
        assert!(r("{{ missing.attr }}").is_err());
        assert!(r("{{ missing.attr }} {{ a.b | default(2) }}").is_err());
        assert!(t.eval("missing.attr", &s).is_err());
    }

    /// The template target's "Check that nested undefined values return
    /// Undefined": `list_var.1.foo is not defined` failed with "`list_var[1]`
    /// is undefined", as the index out of range is not a missing variable.
    #[test]
    fn nested_undefined_values_chain_through_an_index() {
        let t = Templar::new();
        let s = scope(
            &t,
            json!({"list_var": [{"foo": {}}], "dict_var": {"bar": {}}}),
        );
        for cond in [
            "list_var.1 is not defined",
            "list_var.1.foo is not defined",
            "list_var.1.foo | default('DEFAULT') == 'DEFAULT'",
            "list_var[1]['foo'] is not defined",
            "list_var.0.foo.bar is not defined",
            "dict_var['baz']['abc'] is not defined",
        ] {
            assert_eq!(t.truthy(cond, &s), Ok(true), "{cond}");
        }
        assert!(t.render_string("{{ list_var.1.foo }}", &s).is_err());
        assert!(t.eval("list_var[1].foo", &s).is_err());
    }

    #[test]
    fn percent_formats_strings_as_python_does_and_numbers_as_before() {
        let t = Templar::new();
        let s = scope(
            &t,
            json!({"d": "/tmp/x", "n": 5, "m": {"k": "v"}, "f": "%s=%s", "x": 2.5}),
        );
        let out = |src: &str| t.render_string(src, &s).expect(src);
        assert_eq!(out("{{ 'Failed %s/a.gbk' % (d) }}"), "Failed /tmp/x/a.gbk");
        assert_eq!(
            out("{{ '%s-%03d|%-4s|%5.1f' % ('a', n, 'b', 2.25) }}"),
            "a-005|b   |  2.2"
        );
        assert_eq!(out("{{ '%(k)s%%' % m }}"), "v%");
        assert_eq!(out("{{ '%x %+d %d' % (255, n, 3.9) }}"), "ff +5 3");
        assert_eq!(
            out("{% if n %}{{ '[%s]' % d | upper }}{% endif %}"),
            "[/TMP/X]"
        );
        assert_eq!(t.eval("'%s:%s' % (n, d)", &s), Ok(json!("5:/tmp/x")));
        // In a macro evaluated for its value, too.
        let native = "{% macro m(x) %}{{ ['%s!' % x] }}{% endmacro %}{{ m(d) }}";
        assert_eq!(t.render_value(&json!(native), &s), Ok(json!(["/tmp/x!"])));
        // A format held in a variable, too.
        assert_eq!(out("{{ f % ('k', n) }}"), "k=5");
        assert_eq!(t.truthy("f % (1, 2) == '1=2'", &s), Ok(true));
        // Arithmetic stays minijinja's (Python's floor remainder).
        assert_eq!(
            out("{{ n % 3 }}|{{ -7 % 3 }}|{{ x % 1 }}|{{ n * 3 % 4 }}"),
            "2|2|0.5|3"
        );
        assert_eq!(t.truthy("n % 2 == 1", &s), Ok(true));
        assert_eq!(
            t.render_string("{{ missing % 2 }}", &s)
                .expect_err("undefined")
                .msg,
            "'missing' is undefined"
        );
        let msg = |src: &str| t.render_string(src, &s).expect_err(src).msg;
        assert!(msg("{{ '%s' % (1, 2) }}").contains("not all arguments converted"));
        assert!(msg("{{ '%s %s' % (1,) }}").contains("not enough arguments"));
        assert!(msg("{{ '%d' % d }}").contains("a real number is required, not str"));
    }

    /// lookup_first_found's "check the result of the template error": Ansible
    /// words a division by zero as Python does.
    #[test]
    fn division_by_zero_is_worded_as_python_does() {
        let t = Templar::new();
        let s = scope(&t, json!({"n": 0}));
        let msg = |src: &str| t.render_string(src, &s).expect_err(src).msg;
        assert_eq!(msg("{{ 1 / 0 }}"), "division by zero");
        assert_eq!(msg("{{ 1 / n }}"), "division by zero");
        assert_eq!(msg("{{ 1.5 / 0 }}"), "float division by zero");
        assert_eq!(msg("{{ 7 // 0 }}"), "integer division or modulo by zero");
        assert_eq!(msg("{{ 7 % 0 }}"), "integer modulo by zero");
        assert_eq!(t.render_string("{{ 1 / 2 }}", &s), Ok("0.5".into()));
    }

    /// The undefined target: `things | map(attribute="name")` where an item
    /// has no `name` gave a list with a null in it; Ansible fails.
    #[test]
    fn map_attribute_an_item_lacks_is_an_error_unless_tested() {
        let t = Templar::new();
        let s = scope(
            &t,
            json!({"things": [{"name": "one"}, {"notname": "three"}]}),
        );
        let e = t
            .render_value(&json!("{{ things | map(attribute='name') }}"), &s)
            .expect_err("missing attribute");
        assert!(
            e.to_string()
                .contains("object of type 'dict' has no attribute 'name'"),
            "{e:?}"
        );
        let r = |src: &str| t.render_value(&json!(src), &s);
        assert_eq!(
            r("{{ things | map(attribute='name') | select('defined') | list }}"),
            Ok(json!(["one"]))
        );
        assert_eq!(
            r("{{ things | map(attribute='name', default='x') | list }}"),
            Ok(json!(["one", "x"]))
        );
        assert_eq!(
            r("{{ things | map(attribute='notname') | select('defined') | list }}"),
            Ok(json!(["three"]))
        );
    }

    /// The template target's override_separator.j2 and
    /// override_colon_value.j2: drover rendered a `#jinja2:` first line as
    /// text instead of reading it as syntax changes.
    #[test]
    fn jinja2_override_line_changes_the_syntax() {
        let t = Templar::new();
        let s = scope(&t, json!({"x": 1}));
        let r = |src: &str| t.render_string_syntax(src, &s, &Syntax::default());
        assert_eq!(
            r("#jinja2: line_statement_prefix:\":\"\n: if true\nfoo\n: endif\n"),
            Ok("foo\n".into())
        );
        assert_eq!(
            r("#jinja2:variable_start_string:'<<' , variable_end_string:'>>'\n<< x >> {{ x }}"),
            Ok("1 {{ x }}".into())
        );
        assert_eq!(
            r("#jinja2: trim_blocks: False\n{% if x %}\na{% endif %}"),
            Ok("\na".into())
        );
        let e = r("#jinja2: lstrip_blocks=True\nx").expect_err("no colon");
        assert_eq!(
            e.msg,
            "Syntax error in template: Missing key-value separator `:` in \
             '#jinja2:' override pair ' lstrip_blocks=True'."
        );
        assert!(r("#jinja2: bogus: True\nx").is_err());
        assert!(r("#jinja2: trim_blocks: 'yes'\nx").is_err());
        assert_eq!(r(" #jinja2: x\n"), Ok(" #jinja2: x\n".into()));
    }

    /// A scope of `vars` (a mapping) whose lookups search `dir`.
    fn scope_searching(t: &Templar, vars: Value, dir: &std::path::Path) -> Scope {
        let Value::Object(vars) = vars else {
            panic!("object expected")
        };
        t.scope(
            Arc::new(vars),
            vec![(
                "ansible_search_path".into(),
                SearchPath::value(Arc::new(vec![dir.to_path_buf()])),
            )],
        )
    }

    /// The template target's `data_converted: "{{ lookup('template',
    /// 'json_macro.j2') }}"`: the lookup looked up every variable, this one
    /// among them, which recursed until "recursive loop detected".
    #[test]
    fn template_lookup_in_a_variable_does_not_render_that_variable() {
        let t = Templar::new();
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(
            dir.path().join("m.j2"),
            "{% macro m() %}{{ x }}{% endmacro %}{{ m() }}",
        )
        .expect("write");
        let s = scope_searching(
            &t,
            json!({"x": "ex", "data": "{{ lookup('template', 'm.j2') }}"}),
            dir.path(),
        );
        assert_eq!(t.render_string("{{ data }}", &s), Ok("ex".into()));
    }

    /// template target: `data_converted['foo']` of json_macro.j2 was
    /// undefined: the lookup gave the macro's text. In Ansible 2.19 a
    /// template of one expression (macros aside) gives its value, a string
    /// keeping the file's trailing newline; so does a templated value.
    #[test]
    fn template_of_one_expression_gives_its_value() {
        let t = Templar::new();
        let dir = tempfile::tempdir().expect("tmp");
        let files = [
            (
                "json_macro.j2",
                "{% macro m() %}{{ {\"foo\":\"bar\"} }}{% endmacro %}\n{{ m() }}\n",
            ),
            ("n.j2", "{{ n }}\n"),
            ("s.j2", "{# c #}{{ 'abc' }}\n"),
            ("text.j2", "n={{ n }}\n"),
        ];
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).expect("write");
        }
        let vars = json!({
            "n": 42,
            "data_converted": "{{ lookup('template', 'json_macro.j2') }}",
            "inline": "{% macro m(k) %}{{ {k: n} }}{% endmacro %}{{ m('a') }}",
        });
        let s = scope_searching(&t, vars, dir.path());
        let eval = |e: &str| t.eval(e, &s).expect(e);
        assert_eq!(eval("data_converted['foo']"), json!("bar"));
        assert_eq!(eval("lookup('template', 'n.j2')"), json!(42));
        assert_eq!(eval("lookup('template', 's.j2')"), json!("abc\n"));
        assert_eq!(eval("lookup('template', 'text.j2')"), json!("n=42\n"));
        assert_eq!(eval("inline"), json!({"a": 42}));
    }

    #[test]
    fn self_reference_is_an_error_not_a_hang() {
        let t = Templar::new();
        let s = scope(&t, json!({"a": "{{ a }}"}));
        assert!(t.render_string("{{ a }}", &s).is_err());
    }

    #[test]
    fn hostvars_reach_other_hosts() {
        let t = Templar::new();
        let other = scope(&t, json!({"ip": "10.0.0.{{ n }}", "n": 5}));
        let hv = HostVars {
            hosts: [("b".to_string(), other)].into_iter().collect(),
        };
        let s = t.scope(
            Arc::new(Map::new()),
            vec![("hostvars".into(), minijinja::Value::from_object(hv))],
        );
        assert_eq!(
            t.render_string("{{ hostvars['b'].ip }}", &s),
            Ok("10.0.0.5".into())
        );
    }
}
