//! Python's string formatting operator, `"%s-%02d" % (name, n)`, which
//! Ansible's templates use and minijinja does not have (its `%` is the
//! remainder of numbers). The source is rewritten before it is compiled:
//! a string constant followed by `%` and an operand becomes a filter call,
//! `"%s-%02d" | __drover_percent((name, n))`. A filter binds tighter than
//! any operator, as `%`'s operand does in Python's grammar and Jinja's, so
//! the rewritten expression means what the original did. Only a constant
//! on the left is rewritten: `fmt % x` with a variable stays minijinja's.

use minijinja::machinery::{tokenize, Token};
use minijinja::syntax::SyntaxConfig;

/// The name of the filter a rewritten `%` calls.
pub(crate) const FILTER: &str = "__drover_percent";

/// `source` (a template, or with `expr` a bare expression) with each
/// string constant's `%` rewritten; None when it has none (nearly always,
/// decided without tokenizing when no `%` is outside the block tags).
pub(super) fn rewrite(source: &str, expr: bool, syntax: &SyntaxConfig) -> Option<String> {
    let (open, close) = syntax.block_delimiters();
    let tags = source.matches(open).count() * open.matches('%').count()
        + source.matches(close).count() * close.matches('%').count();
    if source.matches('%').count() <= tags {
        return None;
    }
    let mut tokens = Vec::new();
    for token in tokenize(source, expr, syntax.clone()) {
        tokens.push(token.ok()?);
    }
    // Edits: (offset, length replaced, text), applied in order.
    let mut edits: Vec<(usize, usize, &str)> = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let constant = matches!(tokens[i].0, Token::Str(_) | Token::String(_));
        if !constant || !matches!(tokens.get(i + 1), Some((Token::Mod, _))) {
            i += 1;
            continue;
        }
        // A chain (`"%s" % a % b`) groups to the left, as filters do.
        let mut at = i + 1;
        while let Some((Token::Mod, span)) = tokens.get(at) {
            let Some(end) = operand_end(&tokens, at + 1) else {
                break;
            };
            let start = span.start_offset as usize;
            let operand = tokens[at + 1].1.start_offset as usize;
            let stop = tokens[end - 1].1.end_offset as usize;
            edits.push((start, operand - start, "| __drover_percent("));
            edits.push((stop, 0, ")"));
            at = end;
        }
        i = at.max(i + 1);
    }
    if edits.is_empty() {
        return None;
    }
    edits.sort_by_key(|e| e.0);
    let mut out = String::with_capacity(source.len() + edits.len() * 12);
    let mut from = 0;
    for (offset, len, text) in edits {
        out.push_str(&source[from..offset]);
        out.push_str(text);
        from = offset + len;
    }
    out.push_str(&source[from..]);
    Some(out)
}

/// The index after the operand starting at `start`: a constant, a name or
/// a bracketed group, then any attributes, subscripts, calls and filters.
fn operand_end(tokens: &[(Token<'_>, minijinja::machinery::Span)], start: usize) -> Option<usize> {
    let mut i = start;
    match &tokens.get(i)?.0 {
        Token::Str(_)
        | Token::String(_)
        | Token::Int(_)
        | Token::Int128(_)
        | Token::Float(_)
        | Token::Ident(_) => i += 1,
        Token::ParenOpen | Token::BracketOpen | Token::BraceOpen => i = group_end(tokens, i)?,
        _ => return None,
    }
    loop {
        match tokens.get(i).map(|t| &t.0) {
            Some(Token::Dot) => match tokens.get(i + 1).map(|t| &t.0) {
                Some(Token::Ident(_) | Token::Int(_)) => i += 2,
                _ => return None,
            },
            Some(Token::BracketOpen | Token::ParenOpen) => i = group_end(tokens, i)?,
            Some(Token::Pipe) => {
                let Some(Token::Ident(_)) = tokens.get(i + 1).map(|t| &t.0) else {
                    return None;
                };
                i += 2;
                // A dotted filter name (`ansible.builtin.quote`).
                while let (Some(Token::Dot), Some(Token::Ident(_))) =
                    (tokens.get(i).map(|t| &t.0), tokens.get(i + 1).map(|t| &t.0))
                {
                    i += 2;
                }
                if let Some(Token::ParenOpen) = tokens.get(i).map(|t| &t.0) {
                    i = group_end(tokens, i)?;
                }
            }
            _ => return Some(i),
        }
    }
}

/// The index after the bracket closing the one opened at `open`.
fn group_end(tokens: &[(Token<'_>, minijinja::machinery::Span)], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, (token, _)) in tokens.iter().enumerate().skip(open) {
        match token {
            Token::ParenOpen | Token::BracketOpen | Token::BraceOpen => depth += 1,
            Token::ParenClose | Token::BracketClose | Token::BraceClose => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            Token::VariableEnd | Token::BlockEnd => return None,
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expr(s: &str) -> Option<String> {
        rewrite(s, true, &SyntaxConfig::default())
    }

    #[test]
    fn a_constant_left_of_percent_becomes_a_filter_call() {
        assert_eq!(
            expr("'%s/x' % (d)").as_deref(),
            Some("'%s/x' | __drover_percent((d))")
        );
        assert_eq!(
            expr("\"%s-%d\" % (a.b, c[0]) ~ 'z'").as_deref(),
            Some("\"%s-%d\" | __drover_percent((a.b, c[0])) ~ 'z'")
        );
        assert_eq!(
            expr("'%s' % x | upper + 'y'").as_deref(),
            Some("'%s' | __drover_percent(x | upper) + 'y'")
        );
        assert_eq!(
            expr("'%s%s' % 'a' % b").as_deref(),
            Some("'%s%s' | __drover_percent('a') | __drover_percent(b)")
        );
        assert_eq!(
            expr("f('%d' % n, 2)").as_deref(),
            Some("f('%d' | __drover_percent(n), 2)")
        );
    }

    #[test]
    fn arithmetic_and_block_tags_are_left_alone() {
        assert_eq!(expr("n % 2"), None);
        assert_eq!(expr("'50%'"), None);
        let t = "{% if a %}{{ '%s' % a }}{% endif %}";
        assert_eq!(
            rewrite(t, false, &SyntaxConfig::default()).as_deref(),
            Some("{% if a %}{{ '%s' | __drover_percent(a) }}{% endif %}")
        );
        assert_eq!(
            rewrite(
                "{% if a %}{{ a }}{% endif %}",
                false,
                &SyntaxConfig::default()
            ),
            None
        );
    }
}
