//! Ansible 2.19's native results for templates made of macros and one
//! expression: a template whose whole output is one `{{ expr }}` yields
//! that expression's value, and so does a macro whose body is one
//! `{{ expr }}` (`{% macro m() %}{{ {"a": 1} }}{% endmacro %}{{ m() }}` is
//! a mapping, not its text). minijinja's macros always return their output
//! as text; such a template is evaluated here instead, its macros as
//! functions evaluating their body's expression.
//!
//! Only this shape is recognised: at the top level, macro definitions whose
//! bodies are each one `{{ expr }}`, and one `{{ expr }}`, with no text
//! between them (after `trim_blocks`; comments are none). Anything else is
//! rendered as text, as before, though Ansible decides by what a template
//! emits when it runs (`{% if x %}{{ d }}{% endif %}` gives d's value
//! there). A value being templated is only parsed here when it holds the
//! word `macro`; the `template` lookup's file always is.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use minijinja::machinery::ast::{Expr, Stmt};
use minijinja::syntax::SyntaxConfig;
use minijinja::value::{merge_maps, Kwargs, Rest};
use minijinja::{Environment, Error, ErrorKind, State, Value};

/// How deep native macros may call each other (or themselves).
const MAX_CALLS: usize = 64;

/// A template of native macros and one expression.
#[derive(Debug, Clone)]
pub(crate) struct NativeTemplate {
    /// The lone top-level expression.
    pub(crate) expr: String,
    macros: Vec<NativeMacro>,
}

/// A macro whose body is one expression.
#[derive(Debug, Clone)]
struct NativeMacro {
    name: String,
    /// Parameter names, in order.
    params: Vec<String>,
    /// The default expressions of the last parameters.
    defaults: Vec<String>,
    /// The body's expression.
    body: String,
}

/// The shape of `source` when it is macros and one expression; `None` for
/// anything else (most templates: checked without parsing when the source
/// has no macro).
pub(crate) fn analyse(source: &str, syntax: &SyntaxConfig) -> Option<NativeTemplate> {
    if !source.contains("macro") {
        return None;
    }
    shape(source, syntax).filter(|n| !n.macros.is_empty())
}

/// The shape of `source` when it is macros (maybe none) and one expression,
/// comments aside; parsed whatever it holds.
pub(crate) fn shape(source: &str, syntax: &SyntaxConfig) -> Option<NativeTemplate> {
    // Jinja drops one trailing newline (Ansible's keep_trailing_newline
    // is off; drover's environment keeps it, and pads text results).
    let source = source.strip_suffix('\n').unwrap_or(source);
    let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        minijinja::machinery::parse(source, "<template>", syntax.clone())
    }))
    .ok()?
    .ok()?;
    let Stmt::Template(t) = parsed else {
        return None;
    };
    // Each expression's text, with Python's `%` on strings rewritten as
    // the templar rewrites it everywhere else.
    let text = |span: minijinja::machinery::Span| {
        let expr = source.get(span.start_offset as usize..span.end_offset as usize)?;
        Some(super::percent::rewrite(expr, true, syntax).unwrap_or_else(|| expr.to_string()))
    };
    let mut expr = None;
    let mut macros = Vec::new();
    for stmt in &t.children {
        match stmt {
            Stmt::EmitExpr(e) if expr.is_none() => expr = Some(text(e.span())?),
            Stmt::EmitRaw(r) if r.raw.is_empty() => {}
            Stmt::Macro(m) => {
                let [Stmt::EmitExpr(body)] = m.body.as_slice() else {
                    return None;
                };
                let params = m
                    .args
                    .iter()
                    .map(|a| match a {
                        Expr::Var(v) => Some(v.id.to_string()),
                        _ => None,
                    })
                    .collect::<Option<Vec<_>>>()?;
                let defaults = m
                    .defaults
                    .iter()
                    .map(|d| text(d.span()))
                    .collect::<Option<Vec<_>>>()?;
                let body = text(body.span())?;
                // `caller`, `varargs` and `kwargs` are a real macro's.
                if ["caller", "varargs", "kwargs"]
                    .iter()
                    .any(|w| body.contains(w))
                {
                    return None;
                }
                macros.push(NativeMacro {
                    name: m.name.to_string(),
                    params,
                    defaults,
                    body,
                });
            }
            _ => return None,
        }
    }
    Some(NativeTemplate {
        expr: expr?,
        macros,
    })
}

/// What the macro functions of one evaluation share: the context they
/// evaluate in (set once all are made; held weakly, as it holds them) and
/// how deep the calls are.
struct Shared {
    ctx: OnceLock<Value>,
    depth: AtomicUsize,
}

impl NativeTemplate {
    /// Evaluate the template's expression in `ctx`, its macros callable.
    pub(crate) fn eval(&self, env: &Environment<'_>, ctx: Value) -> Result<Value, Error> {
        let shared = Arc::new(Shared {
            ctx: OnceLock::new(),
            depth: AtomicUsize::new(0),
        });
        let funcs: std::collections::BTreeMap<String, Value> = self
            .macros
            .iter()
            .map(|m| (m.name.clone(), m.function(Arc::downgrade(&shared))))
            .collect();
        let full = merge_maps([ctx, Value::from(funcs)]);
        let _ = shared.ctx.set(full.clone());
        let compiled = compile(env, &self.expr)?;
        compiled.eval(full)
    }
}

/// Compile an expression, a parser panic reported as an error.
fn compile<'e, 's>(
    env: &'e Environment<'s>,
    expr: &str,
) -> Result<minijinja::Expression<'e, 's>, Error> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        env.compile_expression_owned(expr.to_string())
    }))
    .unwrap_or_else(|_| {
        Err(Error::new(
            ErrorKind::SyntaxError,
            format!("cannot parse {expr:?}"),
        ))
    })
}

impl NativeMacro {
    /// The macro as a function: arguments bound as a macro binds them,
    /// its body's expression evaluated with them.
    fn function(&self, shared: Weak<Shared>) -> Value {
        let m = self.clone();
        Value::from_function(move |state: &State, args: Rest<Value>, kwargs: Kwargs| {
            let shared = shared.upgrade().ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidOperation,
                    format!("macro {} called after its template", m.name),
                )
            })?;
            let Some(ctx) = shared.ctx.get().cloned() else {
                return Err(Error::new(ErrorKind::InvalidOperation, "macro not ready"));
            };
            if shared.depth.fetch_add(1, Ordering::SeqCst) >= MAX_CALLS {
                shared.depth.fetch_sub(1, Ordering::SeqCst);
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!("macro {} calls itself too deeply", m.name),
                ));
            }
            let result = m.call(state.env(), ctx, &args.0, &kwargs);
            shared.depth.fetch_sub(1, Ordering::SeqCst);
            result
        })
    }

    fn call(
        &self,
        env: &Environment<'_>,
        ctx: Value,
        args: &[Value],
        kwargs: &Kwargs,
    ) -> Result<Value, Error> {
        if args.len() > self.params.len() {
            return Err(Error::new(
                ErrorKind::TooManyArguments,
                format!("macro {} takes {} arguments", self.name, self.params.len()),
            ));
        }
        let first_default = self.params.len() - self.defaults.len();
        let mut bound = std::collections::BTreeMap::new();
        for (i, name) in self.params.iter().enumerate() {
            let given = match args.get(i) {
                Some(v) => Some(v.clone()),
                None if kwargs.has(name) => Some(kwargs.get::<Value>(name)?),
                None => None,
            };
            let value = match given {
                Some(v) => v,
                None if i >= first_default => {
                    compile(env, &self.defaults[i - first_default])?.eval(ctx.clone())?
                }
                None => Value::UNDEFINED,
            };
            bound.insert(name.clone(), value);
        }
        kwargs.assert_all_used()?;
        compile(env, &self.body)?.eval(merge_maps([ctx, Value::from(bound)]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Environment<'static> {
        let mut env = Environment::new();
        crate::template::set_ansible_whitespace(&mut env);
        env
    }

    fn native(source: &str, ctx: Value) -> Option<Value> {
        let env = env();
        let n = analyse(source, env.syntax())?;
        Some(n.eval(&env, ctx).expect("evaluates"))
    }

    /// template target: json_macro.j2, a macro whose body is one mapping,
    /// called alone: Ansible 2.19 gives the mapping.
    #[test]
    fn macro_of_one_expression_gives_its_value() {
        let src = "{% macro m() %}{{ {\"foo\":\"bar\"} }}{% endmacro %}\n{{ m() }}\n";
        let v = native(src, Value::UNDEFINED).expect("native");
        assert_eq!(v.get_attr("foo").expect("foo").as_str(), Some("bar"));
    }

    #[test]
    fn arguments_defaults_keywords_and_context() {
        let ctx = minijinja::context! { base => 10 };
        let src = "{% macro add(a, b=base) %}{{ a + b }}{% endmacro %}\
                   {% macro pair(x) %}{{ [x, add(x)] }}{% endmacro %}{{ pair(1) + [add(1, b=2)] }}";
        let v = native(src, ctx).expect("native");
        assert_eq!(v.to_string(), "[1, 11, 3]");
    }

    #[test]
    fn comments_are_no_output() {
        let env = env();
        let n = shape("{# note #}{{ [1] }}{# more #}\n", env.syntax()).expect("shape");
        assert_eq!(
            n.eval(&env, Value::UNDEFINED).expect("eval").to_string(),
            "[1]"
        );
        assert!(
            analyse("{# note #}{{ [1] }}", env.syntax()).is_none(),
            "no macro"
        );
    }

    #[test]
    fn other_shapes_stay_text() {
        let syntax = env().syntax().clone();
        for src in [
            "{{ x }}",
            "{% macro m() %}a{{ 1 }}{% endmacro %}{{ m() }}",
            "{% macro m() %} {{ 1 }} {% endmacro %}{{ m() }}",
            "{% macro m() %}{{ 1 }}{% endmacro %}x {{ m() }}",
            "{% macro m() %}{{ 1 }}{% endmacro %}\n\n{{ m() }}",
            "{% macro m() %}{{ 1 }}{% endmacro %}{{ m() }}{{ m() }}",
            "{% macro m() %}{{ caller() }}{% endmacro %}{{ m() }}",
            "{% macro m() %}{{ 1 }}{% endmacro %}{% set y = 1 %}{{ m() }}",
            "{% macro m( %}",
        ] {
            assert!(analyse(src, &syntax).is_none(), "{src:?}");
        }
    }

    #[test]
    fn runaway_recursion_is_an_error_not_a_crash() {
        let env = env();
        let src = "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}";
        let n = analyse(src, env.syntax()).expect("native");
        let err = n.eval(&env, Value::UNDEFINED).expect_err("too deep");
        assert!(err.to_string().contains("too deeply"), "{err}");
    }
}
