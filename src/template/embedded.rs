//! Templates written as string constants among a lookup's terms
//! (`lookup('pipe', 'echo {{ name }}')`, `query('list', ['{{ 1 }}'])`):
//! Ansible 2.19 still renders those (a deprecated behaviour it keeps for
//! compatibility), with the types of single expressions kept. A template
//! constant anywhere else (`{{ "{{ 1 }}" }}`, `{% set a = '{{ 1 }}' %}`)
//! and any value computed at run time stay text.

use std::ops::Range;
use std::sync::Arc;

use minijinja::machinery::{tokenize, Token};
use minijinja::syntax::SyntaxConfig;

use super::{ScopeInner, Templar, TemplateError};
use crate::Value;

/// The names the rendered constants take in the rewritten template.
pub(super) const PREFIX: &str = "__drover_embedded_";

/// Where the template constants among lookup terms are in `source` (a
/// template, or with `expr` a bare expression), with their text.
fn constants_in_lookup_terms(
    source: &str,
    expr: bool,
    syntax: &SyntaxConfig,
) -> Vec<(Range<usize>, String)> {
    let mut found = Vec::new();
    // A template constant in an expression: at least two openings.
    let openings = source.matches("{{").count() + source.matches("{%").count();
    if openings < 2 - usize::from(expr)
        || !(source.contains("lookup") || source.contains("query") || source.contains("q("))
    {
        return found;
    }
    // One entry per open bracket: is it a lookup call's parentheses, and
    // is its current argument past the first (the lookup's name)?
    let mut tokens = Vec::new();
    for token in tokenize(source, expr, syntax.clone()) {
        let Ok(token) = token else {
            return Vec::new();
        };
        tokens.push(token);
    }
    let mut open: Vec<(bool, usize)> = Vec::new();
    for (i, (token, span)) in tokens.iter().enumerate() {
        let text = match token {
            Token::Str(s) => Some(*s),
            Token::String(s) => Some(&**s),
            _ => None,
        };
        match token {
            Token::ParenOpen => {
                let lookup =
                    i > 0 && matches!(tokens[i - 1].0, Token::Ident("lookup" | "query" | "q"));
                open.push((lookup, 0));
            }
            Token::BracketOpen | Token::BraceOpen => open.push((false, 0)),
            Token::ParenClose | Token::BracketClose | Token::BraceClose => {
                open.pop();
            }
            Token::Comma => {
                if let Some(top) = open.last_mut() {
                    top.1 += 1;
                }
            }
            Token::VariableEnd | Token::BlockEnd => open.clear(),
            _ => {}
        }
        let Some(text) = text else { continue };
        // A term's whole value (not part of a concatenation, not a
        // keyword argument's value), inside a lookup's terms.
        let before = i.checked_sub(1).map(|j| &tokens[j].0);
        let after = tokens.get(i + 1).map(|t| &t.0);
        let whole = matches!(
            before,
            Some(Token::ParenOpen | Token::Comma | Token::BracketOpen | Token::Colon)
        ) && matches!(
            after,
            Some(Token::Comma | Token::ParenClose | Token::BracketClose | Token::BraceClose)
        );
        let in_terms = open
            .iter()
            .rposition(|(lookup, _)| *lookup)
            .is_some_and(|at| open[at].1 >= 1 || at + 1 < open.len());
        if whole && in_terms && Templar::is_template(text) {
            let range = span.start_offset as usize..span.end_offset as usize;
            found.push((range, text.to_string()));
        }
    }
    found
}

impl ScopeInner {
    /// `source` with the template constants among its lookup terms
    /// rendered: the rewritten source, which names each rendered value
    /// (`__drover_embedded_0`), and the context that holds them. None when
    /// there are none (nearly always; the check is a substring search).
    pub(super) fn embedded(
        self: &Arc<Self>,
        source: &str,
        expr: bool,
        syntax: &SyntaxConfig,
    ) -> Result<Option<(String, minijinja::Value)>, TemplateError> {
        let found = constants_in_lookup_terms(source, expr, syntax);
        if found.is_empty() {
            return Ok(None);
        }
        let mut rewritten = String::with_capacity(source.len());
        let mut values = std::collections::BTreeMap::new();
        let mut at = 0;
        for (i, (range, text)) in found.into_iter().enumerate() {
            let name = format!("{PREFIX}{i}");
            let value = self.render_value(&Value::String(text))?;
            rewritten.push_str(&source[at..range.start]);
            rewritten.push_str(&name);
            at = range.end;
            values.insert(name, super::to_value(value));
        }
        rewritten.push_str(&source[at..]);
        let ctx = minijinja::value::merge_maps([self.ctx(), minijinja::Value::from(values)]);
        Ok(Some((rewritten, ctx)))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;

    #[test]
    fn template_constants_in_lookup_terms_are_found_and_nowhere_else() {
        let syntax = SyntaxConfig::default();
        let texts = |s: &str, expr: bool| -> Vec<String> {
            constants_in_lookup_terms(s, expr, &syntax)
                .into_iter()
                .map(|(r, t)| {
                    assert_eq!(&s[r.start + 1..r.end - 1], t);
                    t
                })
                .collect()
        };
        assert_eq!(
            texts("{{ lookup('list', ['{{ 1 }}']) }}", false),
            ["{{ 1 }}"]
        );
        assert_eq!(
            texts(
                "{{ query('dict', {'key': \"{{ x }}\"}) }} {{ q('a', '{{ y }}') }}",
                false
            ),
            ["{{ x }}", "{{ y }}"]
        );
        assert_eq!(
            texts("lookup('pipe', 'echo {{ a }}')", true),
            ["echo {{ a }}"]
        );
        for none in [
            "{{ \"{{ 1 }}\" }}",
            "{% set a = '{{ 1 }}' %}{{ lookup('vars', a) }}",
            "{{ lookup('vars', 'x') ~ '{{ 1 }}' }}",
            "{{ lookup('pipe', cmd) }}",
        ] {
            assert!(texts(none, false).is_empty(), "{none}");
        }
    }

    #[test]
    fn delimiters_in_string_constants_keep_one_expression() {
        use super::super::single_expression as one;
        assert!(one("{{ lookup('list', ['{{ 1 }}', \"}}\"]) }}").is_some());
        assert!(one("{{ 'it\\'s {{' }}").is_some());
        assert!(one("{{ a }} {{ b }}").is_none());
        assert!(one("{{ a }}'s {{ b }}").is_none());
        assert!(one("{{ 'open }}").is_none());
    }

    #[test]
    fn template_constants_in_lookup_terms_render_with_their_types() {
        let t = Templar::new();
        let vars = json!({"echo_me": "hi mom"});
        let serde_json::Value::Object(vars) = vars else {
            unreachable!()
        };
        let s = t.scope(Arc::new(vars), Vec::new());
        assert_eq!(
            t.eval("lookup('list', ['{{ 1 }}'])", &s).expect("a value"),
            json!([1])
        );
        assert_eq!(
            t.render_value(&json!("{{ lookup('dict', {'key': '{{ 1 }}'}) }}"), &s)
                .expect("a value"),
            json!({"key": "key", "value": 1})
        );
        assert_eq!(
            t.render_string("{{ lookup('pipe', 'echo \"{{ echo_me }}\"') }}", &s)
                .expect("a value"),
            "hi mom"
        );
        assert_eq!(
            t.render_string("{{ '{{ 1 }}' }}", &s).expect("a value"),
            "{{ 1 }}"
        );
    }
}
