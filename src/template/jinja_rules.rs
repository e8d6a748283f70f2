//! Rules Jinja2 enforces when it compiles a template and minijinja does
//! not: Jinja2 turns a template into Python source, so Python's compiler
//! refuses what Python refuses. Ansible reports these as template errors of
//! the task that renders the template, not as errors of the playbook.

use std::collections::HashSet;

use minijinja::machinery::{tokenize, Token};
use minijinja::syntax::SyntaxConfig;
use minijinja::Environment;

use super::TemplateError;

/// Refuse what Jinja2's compiler would in a template (or, with `expr`, a
/// bare expression) that minijinja compiled.
pub(super) fn check(source: &str, expr: bool, env: &Environment<'_>) -> Result<(), TemplateError> {
    match repeated_keyword(source, expr, env.syntax()) {
        Some(name) => Err(TemplateError {
            msg: format!("Syntax error in template: keyword argument repeated: {name}"),
            undefined: None,
            chainable: false,
        }),
        None => Ok(()),
    }
}

/// The first keyword argument given twice to one call
/// (`lookup('vars', 'x', default='', default='')`), which Python's
/// compiler refuses ("keyword argument repeated"). `expr`: `source` is a
/// bare expression, not a template.
pub(super) fn repeated_keyword(source: &str, expr: bool, syntax: &SyntaxConfig) -> Option<String> {
    // Two assignments and a call at the least: most templates (and every
    // comparison) need no tokenizing.
    if !source.contains('(') || assignments(source) < 2 {
        return None;
    }
    // One entry per open bracket: the keywords seen in it when it is a
    // call's (or a macro's) parentheses.
    let mut open: Vec<Option<HashSet<&str>>> = Vec::new();
    let mut previous: Option<&str> = None;
    for token in tokenize(source, expr, syntax.clone()) {
        // A template that does not lex is the compiler's to report.
        let Ok((token, _)) = token else {
            return None;
        };
        match token {
            Token::ParenOpen => open.push(Some(HashSet::new())),
            Token::BracketOpen | Token::BraceOpen => open.push(None),
            Token::ParenClose | Token::BracketClose | Token::BraceClose => {
                open.pop();
            }
            Token::Assign => {
                if let (Some(name), Some(Some(seen))) = (previous, open.last_mut()) {
                    if !seen.insert(name) {
                        return Some(name.to_string());
                    }
                }
            }
            // A block's end closes what it left open, if anything.
            Token::VariableEnd | Token::BlockEnd => open.clear(),
            _ => {}
        }
        previous = match token {
            Token::Ident(name) => Some(name),
            _ => None,
        };
    }
    None
}

/// How many `=` in `source` are not part of `==`, `!=`, `<=` or `>=`.
fn assignments(source: &str) -> usize {
    let b = source.as_bytes();
    (0..b.len())
        .filter(|&i| {
            b[i] == b'='
                && !matches!(
                    i.checked_sub(1).map(|j| b[j]),
                    Some(b'=' | b'!' | b'<' | b'>')
                )
                && b.get(i + 1) != Some(&b'=')
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::Templar;
    use serde_json::json;

    fn syntax() -> SyntaxConfig {
        SyntaxConfig::default()
    }

    #[test]
    fn repeated_keyword_argument_is_refused_like_jinja2() {
        let t = "{{ lookup('vars', 'v1', default='', default='') }}";
        assert_eq!(
            repeated_keyword(t, false, &syntax()).as_deref(),
            Some("default")
        );
        let e = "f(a=1, b=g(a=2), a=3)";
        assert_eq!(repeated_keyword(e, true, &syntax()).as_deref(), Some("a"));
        // Distinct calls, assignments, comparisons and text are not calls
        // repeating a keyword.
        for ok in [
            "{{ f(a=1) ~ g(a=2) }}",
            "{% set a = f(x=1) %}{% set a = 2 %}{{ a == 2 }}",
            "f(a=1) and g(a=1)",
            "f(a == 1, a == 2, b != 3)",
            "text f(a=1, a=2) {{ x }} (",
        ] {
            assert_eq!(
                repeated_keyword(ok, !ok.contains('{'), &syntax()),
                None,
                "{ok}"
            );
        }

        let templar = Templar::new();
        let scope = templar.scope(
            std::sync::Arc::new(crate::Map::from_iter([("v1".to_string(), json!(1))])),
            Vec::new(),
        );
        let err = templar
            .render_string(
                "x {{ lookup('vars', 'v1', default='', default='') }}",
                &scope,
            )
            .expect_err("an error");
        assert!(
            err.msg.contains("keyword argument repeated: default"),
            "{err}"
        );
        let err = templar
            .eval("[1] | map('default', a=1, a=1)", &scope)
            .expect_err("an error");
        assert!(err.msg.contains("keyword argument repeated: a"), "{err}");
    }
}
