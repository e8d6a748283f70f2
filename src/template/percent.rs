//! Python's `%` on strings, `"%s-%02d" % (name, n)` or `fmt % args`,
//! which Ansible's templates use and minijinja does not have (its `%` is
//! only the remainder of numbers). Before a template or expression that
//! holds one is compiled, each `a % b` is rewritten from the parsed
//! expression tree as `(a) | __drover_percent(b)`: a filter that formats
//! when `a` is a string and takes minijinja's own remainder otherwise. The
//! tree gives each operation's extent, so precedence is kept (`a * b % c`
//! is `(a * b) | __drover_percent(c)`, `'%s' % x | upper` formats
//! `x | upper`, as Jinja2 reads them).

use minijinja::machinery::ast::{BinOpKind, CallArg, Expr, Stmt};
use minijinja::machinery::{parse, parse_expr, tokenize, Token};
use minijinja::syntax::SyntaxConfig;

/// The name of the filter a rewritten `%` calls.
pub(crate) const FILTER: &str = "__drover_percent";

/// `source` (a template, or with `expr` a bare expression) with each `%`
/// operation rewritten; None when it has none (nearly always, decided
/// without parsing when no `%` is outside the block tags) or does not
/// parse (its compilation reports that).
pub(super) fn rewrite(source: &str, expr: bool, syntax: &SyntaxConfig) -> Option<String> {
    let (open, close) = syntax.block_delimiters();
    let tags = source.matches(open).count() * open.matches('%').count()
        + source.matches(close).count() * close.matches('%').count();
    if source.matches('%').count() <= tags {
        return None;
    }
    // Each `%` operation: where it starts, where its left operand ends,
    // where it ends.
    let mut ops = Vec::new();
    if expr {
        expr_ops(&parse_expr(source).ok()?, &mut ops);
    } else {
        let tree = std::panic::catch_unwind(|| parse(source, "<template>", syntax.clone()))
            .ok()?
            .ok()?;
        stmt_ops(&tree, &mut ops);
    }
    if ops.is_empty() {
        return None;
    }
    // The operators: the first `%` token after each left operand.
    let mut operators = Vec::new();
    for token in tokenize(source, expr, syntax.clone()) {
        if let (Token::Mod, span) = token.ok()? {
            operators.push(span.start_offset as usize..span.end_offset as usize);
        }
    }
    // Edits: (offset, order at one offset, length replaced, text).
    let mut edits: Vec<(usize, u8, usize, &str)> = Vec::new();
    for (start, left_end, end) in ops {
        let op = operators.iter().find(|r| r.start >= left_end)?;
        edits.push((start, 1, 0, "("));
        edits.push((op.start, 1, op.len(), ") | __drover_percent("));
        edits.push((end, 0, 0, ")"));
    }
    edits.sort_by_key(|e| (e.0, e.1));
    let mut out = String::with_capacity(source.len() + edits.len() * 8);
    let mut from = 0;
    for (offset, _, len, text) in edits {
        out.push_str(source.get(from..offset)?);
        out.push_str(text);
        from = offset + len;
    }
    out.push_str(source.get(from..)?);
    Some(out)
}

type Ops = Vec<(usize, usize, usize)>;

fn stmts_ops(stmts: &[Stmt<'_>], ops: &mut Ops) {
    for s in stmts {
        stmt_ops(s, ops);
    }
}

fn stmt_ops(stmt: &Stmt<'_>, ops: &mut Ops) {
    match stmt {
        Stmt::Template(t) => stmts_ops(&t.children, ops),
        Stmt::EmitExpr(e) => expr_ops(&e.expr, ops),
        Stmt::ForLoop(f) => {
            expr_ops(&f.iter, ops);
            if let Some(e) = &f.filter_expr {
                expr_ops(e, ops);
            }
            stmts_ops(&f.body, ops);
            stmts_ops(&f.else_body, ops);
        }
        Stmt::IfCond(c) => {
            expr_ops(&c.expr, ops);
            stmts_ops(&c.true_body, ops);
            stmts_ops(&c.false_body, ops);
        }
        Stmt::WithBlock(w) => {
            for (_, value) in &w.assignments {
                expr_ops(value, ops);
            }
            stmts_ops(&w.body, ops);
        }
        Stmt::Set(set) => expr_ops(&set.expr, ops),
        Stmt::SetBlock(b) => {
            if let Some(e) = &b.filter {
                expr_ops(e, ops);
            }
            stmts_ops(&b.body, ops);
        }
        Stmt::AutoEscape(a) => stmts_ops(&a.body, ops),
        Stmt::FilterBlock(f) => {
            expr_ops(&f.filter, ops);
            stmts_ops(&f.body, ops);
        }
        Stmt::Block(b) => stmts_ops(&b.body, ops),
        Stmt::Include(i) => expr_ops(&i.name, ops),
        Stmt::Macro(m) => {
            for d in &m.defaults {
                expr_ops(d, ops);
            }
            stmts_ops(&m.body, ops);
        }
        Stmt::CallBlock(c) => {
            args_ops(&c.call.args, ops);
            stmts_ops(&c.macro_decl.body, ops);
        }
        Stmt::Do(d) => {
            expr_ops(&d.call.expr, ops);
            args_ops(&d.call.args, ops);
        }
        _ => {}
    }
}

fn args_ops(args: &[CallArg<'_>], ops: &mut Ops) {
    for a in args {
        match a {
            CallArg::Pos(e)
            | CallArg::Kwarg(_, e)
            | CallArg::PosSplat(e)
            | CallArg::KwargSplat(e) => expr_ops(e, ops),
        }
    }
}

fn exprs_ops(exprs: &[Expr<'_>], ops: &mut Ops) {
    for e in exprs {
        expr_ops(e, ops);
    }
}

fn expr_ops(expr: &Expr<'_>, ops: &mut Ops) {
    match expr {
        Expr::BinOp(b) => {
            if matches!(b.op, BinOpKind::Rem) {
                let span = expr.span();
                ops.push((
                    span.start_offset as usize,
                    b.left.span().end_offset as usize,
                    span.end_offset as usize,
                ));
            }
            expr_ops(&b.left, ops);
            expr_ops(&b.right, ops);
        }
        Expr::Slice(s) => {
            expr_ops(&s.expr, ops);
            for e in [&s.start, &s.stop, &s.step].into_iter().flatten() {
                expr_ops(e, ops);
            }
        }
        Expr::UnaryOp(u) => expr_ops(&u.expr, ops),
        Expr::Compare(c) => {
            expr_ops(&c.expr, ops);
            for op in &c.ops {
                expr_ops(&op.expr, ops);
            }
        }
        Expr::IfExpr(i) => {
            expr_ops(&i.test_expr, ops);
            expr_ops(&i.true_expr, ops);
            if let Some(e) = &i.false_expr {
                expr_ops(e, ops);
            }
        }
        Expr::Filter(f) => {
            if let Some(e) = &f.expr {
                expr_ops(e, ops);
            }
            args_ops(&f.args, ops);
        }
        Expr::Test(t) => {
            expr_ops(&t.expr, ops);
            args_ops(&t.args, ops);
        }
        Expr::GetAttr(g) => expr_ops(&g.expr, ops),
        Expr::GetItem(g) => {
            expr_ops(&g.expr, ops);
            expr_ops(&g.subscript_expr, ops);
        }
        Expr::Call(c) => {
            expr_ops(&c.expr, ops);
            args_ops(&c.args, ops);
        }
        Expr::List(l) => exprs_ops(&l.items, ops),
        Expr::Tuple(t) => exprs_ops(&t.items, ops),
        Expr::Map(m) => {
            exprs_ops(&m.keys, ops);
            exprs_ops(&m.values, ops);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expr(s: &str) -> Option<String> {
        rewrite(s, true, &SyntaxConfig::default())
    }

    #[test]
    fn each_percent_operation_becomes_a_filter_call_on_its_left_operand() {
        let f = "| __drover_percent(";
        for (source, want) in [
            ("'%s/x' % (d)", format!("('%s/x' ) {f} (d))")),
            (
                "fmt % (a.b, c[0]) ~ 'z'",
                format!("(fmt ) {f} (a.b, c[0])) ~ 'z'"),
            ),
            (
                "'%s' % x | upper + 'y'",
                format!("('%s' ) {f} x | upper) + 'y'"),
            ),
            ("a * b % c", format!("(a * b ) {f} c)")),
            ("a % b % c", format!("((a ) {f} b) ) {f} c)")),
            ("1 + (a) % -b", format!("1 + ((a) ) {f} -b)")),
            ("f('%d' % n, 2)", format!("f(('%d' ) {f} n), 2)")),
            ("x | f('%') % 2", format!("(x | f('%') ) {f} 2)")),
        ] {
            assert_eq!(expr(source).as_deref(), Some(want.as_str()), "{source}");
        }
    }

    #[test]
    fn templates_are_rewritten_in_every_statement_and_left_alone_without_percent() {
        let syntax = SyntaxConfig::default();
        let t = "{% if n % 2 %}{{ '%s' % a }}{% endif %}{% set x = f % y %}";
        assert_eq!(
            rewrite(t, false, &syntax).as_deref(),
            Some(
                "{% if (n ) | __drover_percent( 2) %}{{ ('%s' ) | __drover_percent( a) }}\
                 {% endif %}{% set x = (f ) | __drover_percent( y) %}"
            )
        );
        assert_eq!(
            rewrite("{% if a %}{{ a }}{% endif %}", false, &syntax),
            None
        );
        assert_eq!(rewrite("100% {{ a }}", false, &syntax), None);
        assert_eq!(expr("'50%'"), None);
        // A template that does not parse is left to its compilation.
        assert_eq!(rewrite("{{ a % }}", false, &syntax), None);
    }
}
