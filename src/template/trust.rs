//! Ansible 2.19's trust model for conditionals (`when`, `that`,
//! `failed_when`, ...). Text written in the playbook, its roles and the
//! inventory is trusted: it may be an expression. Text that rendering
//! produced (a template's output, a computed string, a loop item's rendered
//! string) is data: used as a conditional it is refused, never evaluated.
//!
//! Trust is not stored with every value (that would cost a copy per
//! variable lookup); it is traced back when a conditional needs it, which is
//! rare: only a conditional template (`'{{ x }}'`) that gives a string, or
//! an `assert` whose `that` came from a templated argument mapping, ask.
//! A value passed through a variable (`{{ item }}`, `{{ a.b[0] }}`) keeps
//! the trust of the text it was written as; a loop item's strings that its
//! loop rendered are listed under [`MARKS`] in the item's scope.

use std::borrow::Cow;

use minijinja::value::ValueKind;

use super::{filters, single_expression, Scope, Templar, TemplateError};
use crate::Value;

/// The hidden variable that lists a loop item's rendered strings (as
/// variable paths such as `item.that`): they are untrusted.
pub const MARKS: &str = "__drover_untrusted";

/// What evaluating an untrusted text as a conditional fails with (Ansible's
/// words).
pub const UNTRUSTED: &str = "Encountered untrusted template or expression.";

/// The deprecation of a conditional written as a template that does not
/// give an expression (`that: '{{ x == 1 }}'`).
pub const AS_TEMPLATE: &str =
    "Conditionals should not be surrounded by templating delimiters such as {{ }} or {% %}.";

/// Where a conditional's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Written as it is in a playbook, a role or the inventory.
    Source,
    /// Read through this variable path (`item.that`, `thats[1]`).
    Var(String),
    /// Produced by rendering or computing: never trusted.
    Computed,
}

/// A conditional's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// What it evaluated to.
    pub value: bool,
    /// It was written as a template giving a value rather than an
    /// expression ([`AS_TEMPLATE`]).
    pub deprecated: bool,
}

fn broken(msg: impl Into<String>) -> TemplateError {
    TemplateError {
        msg: msg.into(),
        undefined: None,
        chainable: false,
    }
}

impl Templar {
    /// Evaluate a conditional as Ansible 2.19 does. An expression must be
    /// trusted text and give a boolean; its quoted string constants that
    /// hold a template are rendered first. A conditional entirely inside
    /// `{{ }}` is a template: when it gives a string, that string is the
    /// expression (only if it is trusted text passed through a variable);
    /// any other value is the result, deprecated.
    pub fn condition(
        &self,
        cond: &Value,
        origin: &Origin,
        scope: &Scope,
    ) -> Result<Verdict, TemplateError> {
        let text = match cond {
            Value::Bool(b) => {
                return Ok(Verdict {
                    value: *b,
                    deprecated: false,
                })
            }
            Value::Null => return Err(broken("Empty conditional expressions are not allowed.")),
            Value::String(s) => s,
            _ => return Err(broken("Conditional expressions must be strings.")),
        };
        self.condition_text(text, origin, scope)
    }

    /// [`Templar::condition`] of a text.
    pub fn condition_text(
        &self,
        text: &str,
        origin: &Origin,
        scope: &Scope,
    ) -> Result<Verdict, TemplateError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(broken("Empty conditional expressions are not allowed."));
        }
        if !trusted(origin, scope) {
            return Err(broken(UNTRUSTED));
        }
        if !all_template(text) {
            return self.expression(text, text, scope).map(|value| Verdict {
                value,
                deprecated: false,
            });
        }
        let (value, from) = match whole_expression(text) {
            Some(inner) => {
                let v = scope.0.eval_raw(inner)?;
                let from = match path(inner) {
                    Some(p) => Origin::Var(p.canonical()),
                    None => Origin::Computed,
                };
                (v, from)
            }
            // `{{ a }} == {{ b }}`: text made by rendering, never an
            // expression (meta-templating). A template whose only output is
            // one boolean (`{% set a = 1 %}{{ a == 1 }}`) gives that boolean,
            // as Jinja's native rendering returns a lone output's value.
            None => {
                let out = scope.0.render_string(text)?;
                let value = match out.trim() {
                    "True" => minijinja::Value::from(true),
                    "False" => minijinja::Value::from(false),
                    _ => minijinja::Value::from(out),
                };
                (value, Origin::Computed)
            }
        };
        if value.kind() != ValueKind::String {
            return judge(&value, text).map(|value| Verdict {
                value,
                deprecated: true,
            });
        }
        let expr = value.as_str().unwrap_or_default().trim();
        if expr.is_empty() {
            return Err(broken("Empty conditional expressions are not allowed."));
        }
        if !trusted(&from, scope) {
            return Err(broken(UNTRUSTED));
        }
        self.expression(expr, text, scope).map(|value| Verdict {
            value,
            deprecated: false,
        })
    }

    /// A trusted conditional expression: its template string constants
    /// rendered, then evaluated; `at` names it in the error.
    fn expression(&self, expr: &str, at: &str, scope: &Scope) -> Result<bool, TemplateError> {
        let expr = render_constants(expr, scope)?;
        let v = scope.0.eval_raw(&expr)?;
        judge(&v, at)
    }
}

/// A conditional's result must be a boolean (Ansible 2.19).
fn judge(v: &minijinja::Value, at: &str) -> Result<bool, TemplateError> {
    if v.kind() == ValueKind::Bool {
        return Ok(v.is_true());
    }
    Err(broken(format!(
        "Conditional result ({}) was derived from value of type '{}' at '{at}'. \
         Conditionals must have a boolean result.",
        if v.is_true() { "True" } else { "False" },
        filters::py_type(v)
    )))
}

/// Does the text start and end with template delimiters (Ansible's
/// "possibly all template")?
pub fn all_template(s: &str) -> bool {
    (s.starts_with("{{") || s.starts_with("{%")) && (s.ends_with("}}") || s.ends_with("%}"))
}

/// The expression of a `{{ expression }}` that is the whole text, also when
/// a string constant in it holds `}}` (`{{ "a}}" == x }}`).
pub fn whole_expression(s: &str) -> Option<&str> {
    if let Some(e) = single_expression(s) {
        return Some(e);
    }
    let inner = s.strip_prefix("{{")?.strip_suffix("}}")?;
    let inner = inner.trim();
    // Every `}}` and `{{` must sit inside a string constant.
    let outside = strings_removed(inner);
    if outside.contains("{{") || outside.contains("}}") {
        return None;
    }
    Some(inner)
}

/// The text with its quoted string constants blanked out.
fn strings_removed(expr: &str) -> String {
    let mut out = String::with_capacity(expr.len());
    let mut at = 0;
    for (start, end) in scan(expr) {
        out.push_str(&expr[at..start]);
        out.push_str("''");
        at = end;
    }
    out.push_str(&expr[at..]);
    out
}

/// The byte ranges of the quoted string constants of an expression,
/// quotes included. An unterminated one runs to the end.
fn scan(expr: &str) -> Vec<(usize, usize)> {
    let bytes = expr.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let q = bytes[i];
        if q != b'"' && q != b'\'' {
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        while i < bytes.len() && bytes[i] != q {
            i += if bytes[i] == b'\\' { 2 } else { 1 };
        }
        i = (i + 1).min(bytes.len());
        out.push((start, i));
    }
    out
}

/// The value of a quoted string constant (quotes included).
fn unquote(lit: &str) -> String {
    let body = &lit[1..lit.len().saturating_sub(1).max(1)];
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// A conditional expression with each quoted string constant that holds a
/// template replaced by its rendering (`x == "{{ y }}"`): the constant is
/// text of the playbook, so trusted, and Ansible renders it. Nothing is
/// copied when no constant holds one.
pub fn render_constants<'e>(expr: &'e str, scope: &Scope) -> Result<Cow<'e, str>, TemplateError> {
    if !Templar::is_template(expr) {
        return Ok(Cow::Borrowed(expr));
    }
    let mut out = String::with_capacity(expr.len());
    let mut at = 0;
    for (start, end) in scan(expr) {
        let lit = &expr[start..end];
        if !Templar::is_template(lit) || end - start < 2 {
            continue;
        }
        let rendered = scope.0.render_string(&unquote(lit))?;
        out.push_str(&expr[at..start]);
        out.push_str(&serde_json::to_string(&rendered).unwrap_or_else(|_| "''".into()));
        at = end;
    }
    if at == 0 {
        return Ok(Cow::Borrowed(expr));
    }
    out.push_str(&expr[at..]);
    Ok(Cow::Owned(out))
}

/// One step of a variable path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// A variable path: a name and the steps into its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarPath {
    name: String,
    steps: Vec<Step>,
}

impl VarPath {
    /// The path written one way whatever way it was written (`a.b[0]`),
    /// to compare with [`MARKS`].
    pub fn canonical(&self) -> String {
        let mut s = self.name.clone();
        for step in &self.steps {
            match step {
                Step::Key(k) => {
                    s.push('.');
                    s.push_str(k);
                }
                Step::Index(i) => s.push_str(&format!("[{i}]")),
            }
        }
        s
    }

    fn with(&self, more: &[Step]) -> VarPath {
        let mut p = self.clone();
        p.steps.extend_from_slice(more);
        p
    }
}

/// The expression as a plain variable path (`item`, `a.b`, `a['b'][0]`),
/// which passes a value through unchanged; `None` for anything computed.
pub fn path(expr: &str) -> Option<VarPath> {
    let s = expr.trim();
    let ident_end = |s: &str| {
        s.char_indices()
            .find(|&(i, c)| !(c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
            .map_or(s.len(), |(i, _)| i)
    };
    let n = ident_end(s);
    if n == 0 {
        return None;
    }
    let mut p = VarPath {
        name: s[..n].to_string(),
        steps: Vec::new(),
    };
    let mut rest = s[n..].trim_start();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let r = r.trim_start();
            let n = ident_end(r);
            if n == 0 {
                return None;
            }
            p.steps.push(Step::Key(r[..n].to_string()));
            rest = r[n..].trim_start();
        } else if let Some(r) = rest.strip_prefix('[') {
            let close = r.find(']')?;
            let key = r[..close].trim();
            if let Ok(i) = key.parse::<usize>() {
                p.steps.push(Step::Index(i));
            } else if key.len() >= 2
                && (key.starts_with('"') && key.ends_with('"')
                    || key.starts_with('\'') && key.ends_with('\''))
                && !key[1..key.len() - 1].contains(['"', '\'', '\\'])
            {
                p.steps.push(Step::Key(key[1..key.len() - 1].to_string()));
            } else {
                return None;
            }
            rest = r[close + 1..].trim_start();
        } else {
            return None;
        }
    }
    Some(p)
}

impl Templar {
    /// `assert`'s arguments as Ansible's action takes them: `that` is not
    /// rendered with the others, as each conditional is evaluated on its
    /// own; a `that` written as one template that gives a list is that
    /// list as written. A `that` from a templated argument mapping
    /// (`assert: '{{ item }}'`) is rendered with it and keeps where it came
    /// from in [`THAT_FROM`](crate::modules::assert::THAT_FROM).
    pub fn assert_args(&self, raw: &Value, rendered: &mut Value, scope: &Scope) {
        let (Value::Object(raw), Value::Object(out)) = (raw, rendered) else {
            return;
        };
        if let Some(that) = raw.get("that") {
            let that = self.listed(that, scope).unwrap_or_else(|| that.clone());
            out.insert("that".into(), that);
            return;
        }
        let Some(Value::String(splat)) = raw.get(crate::modules::SPLAT) else {
            return;
        };
        let from = whole_expression(splat.trim())
            .and_then(path)
            .map(|p| format!("{}.that", p.canonical()))
            .unwrap_or_default();
        if let Some(Value::Object(m)) = out.get(crate::modules::SPLAT) {
            if m.contains_key("that") {
                out.insert(crate::modules::assert::THAT_FROM.into(), Value::from(from));
            }
        }
    }

    /// The list a `that: '{{ x }}'` gives, its elements as written when x
    /// is a variable holding a list (Ansible resolves it to the container
    /// only).
    fn listed(&self, that: &Value, scope: &Scope) -> Option<Value> {
        let expr = whole_expression(that.as_str()?.trim())?;
        if let Some(v @ Value::Array(_)) = path(expr).and_then(|p| written(&p, scope, 0)) {
            return Some(v.clone());
        }
        match self.eval(expr, scope) {
            Ok(v @ Value::Array(_)) => Some(v),
            _ => None,
        }
    }
}

/// The value at a variable path as written, following variables written as
/// `{{ other.path }}`.
fn written<'s>(p: &VarPath, scope: &'s Scope, depth: usize) -> Option<&'s Value> {
    if depth > 8 {
        return None;
    }
    let mut v = scope.var(&p.name)?;
    for (i, step) in p.steps.iter().enumerate() {
        if let Value::String(s) = v {
            let q = single_expression(s.strip_suffix('\n').unwrap_or(s)).and_then(path)?;
            return written(&q.with(&p.steps[i..]), scope, depth + 1);
        }
        v = match (step, v) {
            (Step::Key(k), Value::Object(m)) => m.get(k)?,
            (Step::Index(n), Value::Array(a)) => a.get(*n)?,
            _ => return None,
        };
    }
    match v {
        Value::String(s) if Templar::is_template(s) => {
            let q = single_expression(s.strip_suffix('\n').unwrap_or(s)).and_then(path)?;
            written(&q, scope, depth + 1)
        }
        v => Some(v),
    }
}

/// Is a conditional from `origin` trusted text?
fn trusted(origin: &Origin, scope: &Scope) -> bool {
    match origin {
        Origin::Source => true,
        Origin::Computed => false,
        Origin::Var(p) => path(p).is_some_and(|p| path_trusted(&p, scope, 0)),
    }
}

/// Is the string at this path text as written (not rendered)? Follows
/// variables written as `{{ other.path }}`, which pass values through.
fn path_trusted(p: &VarPath, scope: &Scope, depth: usize) -> bool {
    if depth > 8 || marked(p, scope) {
        return false;
    }
    let Some(mut v) = scope.var(&p.name) else {
        return false;
    };
    for (i, step) in p.steps.iter().enumerate() {
        if let Value::String(s) = v {
            return template_trusted(s, &p.steps[i..], scope, depth);
        }
        let next = match (step, v) {
            (Step::Key(k), Value::Object(m)) => m.get(k),
            (Step::Index(n), Value::Array(a)) => a.get(*n),
            _ => None,
        };
        let Some(next) = next else {
            return false;
        };
        v = next;
    }
    match v {
        Value::String(s) if Templar::is_template(s) => template_trusted(s, &[], scope, depth),
        _ => true,
    }
}

/// A variable written as a template: trusted only when it is one variable
/// path, whose value it passes through.
fn template_trusted(s: &str, rest: &[Step], scope: &Scope, depth: usize) -> bool {
    let body = s.strip_suffix('\n').unwrap_or(s);
    match single_expression(body).and_then(path) {
        Some(p) => path_trusted(&p.with(rest), scope, depth + 1),
        None => false,
    }
}

/// Is the path, or a value it is inside, one of the scope's rendered
/// strings ([`MARKS`])?
fn marked(p: &VarPath, scope: &Scope) -> bool {
    let Some(Value::Array(marks)) = scope.var(MARKS) else {
        return false;
    };
    let at = p.canonical();
    marks.iter().filter_map(Value::as_str).any(|m| {
        at == m
            || at
                .strip_prefix(m)
                .is_some_and(|r| r.starts_with(['.', '[']))
    })
}

/// The strings of a loop's items that its rendering produced, as paths
/// under the loop variable, per item: `raw` is the loop as written. Only a
/// loop written as a list is traced (its items are its elements).
pub fn rendered_marks(raw: &Value, items: &[Value], loop_var: &str) -> Vec<Vec<String>> {
    let Value::Array(written) = raw else {
        return Vec::new();
    };
    if written.len() != items.len() || !super::contains_template(raw) {
        return Vec::new();
    }
    written
        .iter()
        .zip(items)
        .map(|(w, item)| {
            let mut marks = Vec::new();
            mark(w, item, loop_var.to_string(), &mut marks);
            marks
        })
        .collect()
}

fn mark(written: &Value, rendered: &Value, at: String, out: &mut Vec<String>) {
    match (written, rendered) {
        (Value::String(s), _) if Templar::is_template(s) => {
            // A variable passed through keeps its value's trust.
            let body = s.strip_suffix('\n').unwrap_or(s);
            if single_expression(body).and_then(path).is_none() {
                out.push(at);
            }
        }
        (Value::Array(w), Value::Array(r)) => {
            for (i, (w, r)) in w.iter().zip(r).enumerate() {
                mark(w, r, format!("{at}[{i}]"), out);
            }
        }
        (Value::Object(w), Value::Object(r)) => {
            for (k, w) in w {
                if let Some(r) = r.get(k) {
                    mark(w, r, format!("{at}.{k}"), out);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;

    fn scope(vars: Value) -> (Templar, Scope) {
        let t = Templar::new();
        let map = match vars {
            Value::Object(m) => m,
            _ => crate::Map::new(),
        };
        let s = t.scope(Arc::new(map), Vec::new());
        (t, s)
    }

    fn cond(vars: Value, c: Value, origin: Origin) -> Result<Verdict, TemplateError> {
        let (t, s) = scope(vars);
        t.condition(&c, &origin, &s)
    }

    fn holds(vars: Value, c: &str) -> bool {
        cond(vars, json!(c), Origin::Source)
            .expect("evaluates")
            .value
    }

    #[test]
    fn string_constants_holding_templates_render_in_expressions() {
        assert!(holds(json!({}), r#""dude" == "du{{'de'}}""#));
        assert!(holds(json!({"x": "de"}), r#""dude" == 'du{{ x }}'"#));
        assert!(holds(
            json!({}),
            r#"dict({"dude": "{{ 'dude' }}"})["dude"] == "dude""#
        ));
        assert!(holds(
            json!({}),
            r#"{{ dict({"dude": "{{ 'dude' }}"})["dude"] == "{" + "{ 'dude' }}" }}"#
        ));
    }

    #[test]
    fn string_constants_stay_text_in_conditional_templates() {
        assert!(holds(
            json!({}),
            r#"{{ "du{" + "{'de'}}" == "du{{'de'}}" }}"#
        ));
    }

    #[test]
    fn conditional_template_giving_a_value_is_deprecated() {
        let v = cond(json!({}), json!("{{ true }}"), Origin::Source).expect("evaluates");
        assert!(v.value && v.deprecated);
        let v = cond(json!({}), json!("1 == 1"), Origin::Source).expect("evaluates");
        assert!(v.value && !v.deprecated);
    }

    #[test]
    fn conditional_template_of_a_written_string_is_its_expression() {
        let vars = json!({"e": "1 == 2", "f": "{{ e }}", "items": ["2 == 2"]});
        assert!(!holds(vars.clone(), "{{ e }}"));
        assert!(!holds(vars.clone(), "{{ f }}"));
        assert!(holds(vars, "{{ items[0] }}"));
    }

    #[test]
    fn rendered_text_is_not_evaluated_as_an_expression() {
        for c in [
            "{{ 'hello' }} == {{ 'world' }}",
            "{{ '1 == ' ~ '1' }}",
            "{{ g }}",
        ] {
            let e = cond(json!({"g": "{{ 1 }} == 1"}), json!(c), Origin::Source)
                .expect_err("untrusted");
            assert_eq!(e.msg, UNTRUSTED, "{c}");
        }
        let e = cond(json!({}), json!("1 == 1"), Origin::Computed).expect_err("untrusted");
        assert_eq!(e.msg, UNTRUSTED);
    }

    #[test]
    fn loop_rendered_strings_are_untrusted() {
        let raw = json!([{"that": "x == '{{ 1 }}'"}, {"that": "1 == 1"}]);
        let items = vec![json!({"that": "x == '1'"}), json!({"that": "1 == 1"})];
        let marks = rendered_marks(&raw, &items, "item");
        assert_eq!(marks, vec![vec!["item.that".to_string()], vec![]]);
        // Drover's marks are not among the play's variable names.
        let (_, s) = scope(json!({"item": items[0], MARKS: marks[0]}));
        let names: Vec<String> = s
            .to_jinja()
            .try_iter()
            .expect("a mapping")
            .map(|k| k.to_string())
            .collect();
        assert_eq!(names, vec!["item".to_string()]);
        let vars = json!({"item": items[0], MARKS: marks[0]});
        let e =
            cond(vars, json!("x == '1'"), Origin::Var("item.that".into())).expect_err("untrusted");
        assert_eq!(e.msg, UNTRUSTED);
        let vars = json!({"item": items[1]});
        assert!(
            cond(vars, json!("1 == 1"), Origin::Var("item['that']".into()))
                .expect("trusted")
                .value
        );
    }

    #[test]
    fn empty_and_non_string_conditionals_fail() {
        for c in [json!(null), json!("  "), json!("{{ '' }}")] {
            let e = cond(json!({}), c.clone(), Origin::Source).expect_err("empty");
            assert!(
                e.msg.contains("Empty conditional expression"),
                "{c}: {}",
                e.msg
            );
        }
        let e = cond(json!({}), json!([1]), Origin::Source).expect_err("not a string");
        assert!(e.msg.contains("must be strings"));
    }

    #[test]
    fn a_template_conditional_whose_only_output_is_a_boolean_gives_it() {
        let text = "{% set a = '{{ 1 }}' %}\n{% set b = '{{ 2 }}' %}\n\
                    {{ a + b == (\"{\" ~ \"{ 1 }}{\" ~ \"{ 2 }}\") }}";
        let v = cond(json!({}), json!(text), Origin::Source).expect("a boolean");
        assert!(v.value);
        let e = cond(json!({}), json!("{{ 'a' }} == {{ 'b' }}"), Origin::Source)
            .expect_err("meta-templating");
        assert!(e.msg.contains("untrusted"), "{}", e.msg);
    }

    #[test]
    fn conditionals_must_give_booleans() {
        let e = cond(json!({"n": [1]}), json!("n"), Origin::Source).expect_err("a list");
        assert!(
            e.msg.contains("Conditionals must have a boolean result"),
            "{}",
            e.msg
        );
    }

    #[test]
    fn template_lookup_terms_render_but_not_the_lookup_name_or_a_concatenation() {
        let (t, s) = scope(json!({"x": "dude"}));
        // Part of a concatenation: text (Ansible looks up `x{{ '' }}`).
        t.render_string("{{ lookup('vars', 'x' ~ '{{ \\'\\' }}') }}", &s)
            .expect_err("no variable named x{{ '' }}");
        let out = t
            .render_string("{{ query('vars', '{{ \"x\" }}') | first }}", &s)
            .expect("renders");
        assert_eq!(out, "dude");
        // The lookup's name is not a term: text.
        t.render_string("{{ lookup('{{ \"vars\" }}', 'x') }}", &s)
            .expect_err("no such lookup");
        // Not a lookup term: text.
        let out = t.render_string("{{ 'a{{ x }}' }}", &s).expect("renders");
        assert_eq!(out, "a{{ x }}");
        // Untrusted text (a result, in a raw block) is left alone.
        let raw = crate::template::literal_text("{{ lookup('vars', '{{ x }}') }}".into());
        assert_eq!(
            t.render_string(&raw, &s).expect("renders"),
            "{{ lookup('vars', '{{ x }}') }}"
        );
    }

    #[test]
    fn assert_that_written_as_a_list_variable_is_that_list_as_written() {
        let (t, s) = scope(json!({"thats": ["{{ 1 == 1 }}"], "alias": "{{ thats }}"}));
        for written in ["{{ thats }}", "{{ alias }}"] {
            let raw = json!({"that": written, "msg": "m"});
            let mut out = json!({"msg": "m"});
            t.assert_args(&raw, &mut out, &s);
            assert_eq!(
                out,
                json!({"that": ["{{ 1 == 1 }}"], "msg": "m"}),
                "{written}"
            );
        }
        // Not a list: the conditional as written.
        let raw = json!({"that": "{{ 1 == 1 }}"});
        let mut out = json!({});
        t.assert_args(&raw, &mut out, &s);
        assert_eq!(out, json!({"that": "{{ 1 == 1 }}"}));
    }

    #[test]
    fn assert_that_from_a_templated_mapping_keeps_its_variable() {
        let (t, s) = scope(json!({}));
        let raw = json!({crate::modules::SPLAT: "{{ item }}"});
        let mut out = json!({crate::modules::SPLAT: {"that": "1 == 1"}});
        t.assert_args(&raw, &mut out, &s);
        assert_eq!(out[crate::modules::assert::THAT_FROM], "item.that");
        let raw = json!({crate::modules::SPLAT: "{{ {'that': '1 == 1'} }}"});
        let mut out = json!({crate::modules::SPLAT: {"that": "1 == 1"}});
        t.assert_args(&raw, &mut out, &s);
        assert_eq!(out[crate::modules::assert::THAT_FROM], "");
    }

    #[test]
    fn variable_paths_parse_one_way() {
        let p = path(" a.b ['c'] [2] ").expect("a path");
        assert_eq!(p.canonical(), "a.b.c[2]");
        for computed in ["a ~ b", "a()", "a[b]", "'x'", "a | d"] {
            assert!(path(computed).is_none(), "{computed}");
        }
    }
}
