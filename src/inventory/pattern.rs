//! Host patterns, as play `hosts:` and `--limit` use them, evaluated the way
//! Ansible's inventory manager does.
//!
//! A pattern is a list of terms separated by `,` (or, when there is no
//! comma, by `:` or whitespace outside `[...]`). A term is `all` or `*`, a
//! host or group name, a glob (`pi-worker-0*`, `web?`, `db[12]`, `web[!0]`),
//! or a regex after `~` (matched at the start of names). A term may end in a
//! subscript: `[2]`, `[-1]`, `[0:2]` (inclusive) or `[1:]`. `&term`
//! intersects, `!term` excludes. All unions apply first (in pattern order),
//! then intersections, then exclusions; a pattern of only `&`/`!` terms
//! starts from `all`. Unlike Ansible, `[x-y]` is a glob character class, not
//! the removed `[x-y]` subscript, and a subscript on a name that matches
//! nothing (`pi-worker-0[12]`) is read as a glob instead of failing.

use std::collections::HashSet;

use regex::Regex;

use super::{Inventory, LOCALHOST_NAMES};

/// A host pattern that cannot be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid host pattern `{pattern}`: {msg}")]
pub struct PatternError {
    /// The pattern (or the offending part of it).
    pub pattern: String,
    /// What is wrong.
    pub msg: String,
}

fn err(pattern: &str, msg: impl Into<String>) -> PatternError {
    PatternError {
        pattern: pattern.to_string(),
        msg: msg.into(),
    }
}

/// The hosts `pattern` selects.
pub(super) fn select(inv: &Inventory, pattern: &str) -> Result<Vec<String>, PatternError> {
    let terms = split(pattern)?;
    evaluate(inv, &terms)
}

/// The hosts a `--limit` value allows; `@file` terms read one pattern per
/// line. An empty limit file allows no host (Ansible would allow all).
pub(super) fn select_limit(inv: &Inventory, limit: &str) -> Result<HashSet<String>, PatternError> {
    let mut terms = Vec::new();
    for term in split(limit)? {
        match term.strip_prefix('@') {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| err(&term, format!("cannot read limit file: {e}")))?;
                for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
                    terms.extend(split(line)?);
                }
            }
            None => terms.push(term),
        }
    }
    if terms.is_empty() {
        return Ok(HashSet::new());
    }
    Ok(evaluate(inv, &terms)?.into_iter().collect())
}

/// Split a pattern into terms.
fn split(pattern: &str) -> Result<Vec<String>, PatternError> {
    let trimmed = pattern.trim();
    if trimmed.is_empty() {
        return Err(err(pattern, "the pattern is empty"));
    }
    let terms: Vec<String> = if trimmed.contains(',') {
        trimmed
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(String::from)
            .collect()
    } else if trimmed.parse::<std::net::Ipv6Addr>().is_ok() {
        vec![trimmed.to_string()]
    } else {
        let mut terms = Vec::new();
        let mut cur = String::new();
        let mut depth = 0usize;
        for c in trimmed.chars() {
            match c {
                '[' => {
                    depth += 1;
                    cur.push(c);
                }
                ']' => {
                    if depth == 0 {
                        return Err(err(pattern, "`]` without `[`"));
                    }
                    depth -= 1;
                    cur.push(c);
                }
                c if depth == 0 && (c == ':' || c.is_whitespace()) => {
                    if !cur.is_empty() {
                        terms.push(std::mem::take(&mut cur));
                    }
                }
                c => cur.push(c),
            }
        }
        if depth > 0 {
            return Err(err(pattern, "`[` without `]`"));
        }
        if !cur.is_empty() {
            terms.push(cur);
        }
        terms
    };
    if terms.is_empty() {
        return Err(err(pattern, "the pattern names no hosts or groups"));
    }
    Ok(terms)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Union,
    Intersect,
    Exclude,
}

fn evaluate(inv: &Inventory, terms: &[String]) -> Result<Vec<String>, PatternError> {
    let mut ordered: Vec<(Op, &str)> = Vec::new();
    for op in [Op::Union, Op::Intersect, Op::Exclude] {
        for t in terms {
            let (o, body) = match (t.strip_prefix('&'), t.strip_prefix('!')) {
                (Some(b), _) => (Op::Intersect, b),
                (_, Some(b)) => (Op::Exclude, b),
                _ => (Op::Union, t.as_str()),
            };
            if o == op {
                if body.is_empty() {
                    return Err(err(t, "`&` and `!` must be followed by a host or group"));
                }
                ordered.push((o, body));
            }
        }
    }
    if !ordered.iter().any(|(o, _)| *o == Op::Union) {
        ordered.insert(0, (Op::Union, "all"));
    }
    let mut hosts: Vec<String> = Vec::new();
    for (op, body) in ordered {
        if op == Op::Union && inv.hosts.contains_key(body) {
            if !hosts.iter().any(|h| h == body) {
                hosts.push(body.to_string());
            }
            continue;
        }
        let matched = match_term(inv, body)?;
        match op {
            Op::Union => {
                for h in matched {
                    if !hosts.contains(&h) {
                        hosts.push(h);
                    }
                }
            }
            Op::Intersect => {
                let set: HashSet<String> = matched.into_iter().collect();
                hosts.retain(|h| set.contains(h));
            }
            Op::Exclude => {
                let set: HashSet<String> = matched.into_iter().collect();
                hosts.retain(|h| !set.contains(h));
            }
        }
    }
    Ok(hosts)
}

enum Subscript {
    Index(i64),
    /// Inclusive range; `None` end means to the last host.
    Range(usize, Option<usize>),
}

/// The hosts one term (without `&`/`!`) matches.
fn match_term(inv: &Inventory, term: &str) -> Result<Vec<String>, PatternError> {
    let (expr, subscript) = split_subscript(term);
    let hosts = enumerate(inv, expr)?;
    // `pi-worker-0[12]` names no group `pi-worker-0`: read it as a glob
    // rather than failing on an index, as Ansible would.
    if subscript.is_some() && hosts.is_empty() {
        return enumerate(inv, term);
    }
    match subscript {
        None => Ok(hosts),
        Some(Subscript::Index(i)) => {
            let len = hosts.len() as i64;
            let idx = if i < 0 { len + i } else { i };
            if idx < 0 || idx >= len {
                return Err(err(
                    term,
                    format!("no host at index {i}: `{expr}` matches {len} host(s)"),
                ));
            }
            Ok(vec![hosts[idx as usize].clone()])
        }
        Some(Subscript::Range(start, end)) => {
            let last = end.unwrap_or(usize::MAX).min(hosts.len().saturating_sub(1));
            if start >= hosts.len() || start > last {
                return Ok(Vec::new());
            }
            Ok(hosts[start..=last].to_vec())
        }
    }
}

/// `web[1]`, `web[-1]`, `web[0:2]` and `web[1:]`; regexes take none.
fn split_subscript(term: &str) -> (&str, Option<Subscript>) {
    if term.starts_with('~') || !term.ends_with(']') {
        return (term, None);
    }
    let Some(open) = term.rfind('[') else {
        return (term, None);
    };
    if open == 0 {
        return (term, None);
    }
    let inner = &term[open + 1..term.len() - 1];
    let expr = &term[..open];
    if let Ok(i) = inner.parse::<i64>() {
        if inner.chars().all(|c| c.is_ascii_digit() || c == '-') {
            return (expr, Some(Subscript::Index(i)));
        }
    }
    if let Some((a, b)) = inner.split_once(':') {
        let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
        if !a.is_empty() && digits(a) && digits(b) {
            if let Ok(start) = a.parse::<usize>() {
                let end = if b.is_empty() { None } else { b.parse().ok() };
                if b.is_empty() || end.is_some() {
                    return (expr, Some(Subscript::Range(start, end)));
                }
            }
        }
    }
    (term, None)
}

enum Matcher {
    Exact(String),
    Regex(Regex),
}

impl Matcher {
    fn new(expr: &str) -> Result<Matcher, PatternError> {
        if let Some(re) = expr.strip_prefix('~') {
            return Regex::new(&format!("^(?:{re})"))
                .map(Matcher::Regex)
                .map_err(|e| err(expr, format!("invalid regular expression: {e}")));
        }
        if expr.contains(['*', '?', '[']) {
            return Regex::new(&glob_to_regex(expr))
                .map(Matcher::Regex)
                .map_err(|e| err(expr, format!("invalid glob: {e}")));
        }
        Ok(Matcher::Exact(expr.to_string()))
    }

    fn matches(&self, name: &str) -> bool {
        match self {
            Matcher::Exact(s) => s == name,
            Matcher::Regex(re) => re.is_match(name),
        }
    }
}

/// Hosts of the groups `expr` matches, then (when no group matched, or the
/// expression is a regex or has `.?*[`) the hosts it matches, then the
/// implicit localhost.
fn enumerate(inv: &Inventory, expr: &str) -> Result<Vec<String>, PatternError> {
    let m = Matcher::new(expr)?;
    let mut out: Vec<String> = Vec::new();
    let groups: Vec<&String> = inv.groups.keys().filter(|g| m.matches(g)).collect();
    if !groups.is_empty() {
        for host in inv.hosts.values() {
            if host.groups.iter().any(|g| groups.contains(&g)) {
                out.push(host.name.clone());
            }
        }
    }
    if groups.is_empty() || expr.starts_with('~') || expr.contains(['.', '?', '*', '[']) {
        for name in inv.hosts.keys() {
            if m.matches(name) && !out.contains(name) {
                out.push(name.clone());
            }
        }
    }
    if out.is_empty() && LOCALHOST_NAMES.contains(&expr) {
        out.push(expr.to_string());
    }
    Ok(out)
}

/// Python's `fnmatch.translate`: `*`, `?`, `[seq]`, `[!seq]`; a `[` without
/// a closing `]` is literal. Anchored at both ends, case-sensitive.
pub(crate) fn glob_to_regex(glob: &str) -> String {
    let chars: Vec<char> = glob.chars().collect();
    let mut re = String::from("^(?:");
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            '[' => {
                let mut j = i;
                if j < chars.len() && chars[j] == '!' {
                    j += 1;
                }
                if j < chars.len() && chars[j] == ']' {
                    j += 1;
                }
                while j < chars.len() && chars[j] != ']' {
                    j += 1;
                }
                if j >= chars.len() {
                    re.push_str("\\[");
                    continue;
                }
                let mut class = String::from("[");
                let mut k = i;
                if chars[k] == '!' {
                    class.push('^');
                    k += 1;
                }
                while k < j {
                    let ch = chars[k];
                    if matches!(ch, '\\' | '[' | ']' | '^' | '&' | '~') {
                        class.push('\\');
                    }
                    class.push(ch);
                    k += 1;
                }
                class.push(']');
                re.push_str(&class);
                i = j + 1;
            }
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push_str(")$");
    re
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_translate_like_fnmatch() {
        let m = |g: &str, s: &str| Regex::new(&glob_to_regex(g)).expect("regex").is_match(s);
        assert!(m("pi-worker-0*", "pi-worker-07"));
        assert!(!m("pi-worker-0*", "pi-master"));
        assert!(m("web?", "web1"));
        assert!(!m("web?", "web10"));
        assert!(m("db[12]", "db2"));
        assert!(!m("db[12]", "db3"));
        assert!(m("db[!12]", "db3"));
        assert!(m("n[0-3]", "n2"));
        assert!(m("a[", "a["));
        assert!(m("a.b", "a.b"));
        assert!(!m("a.b", "axb"));
    }

    #[test]
    fn splitting() {
        assert_eq!(split("a:b:&c:!d").expect("ok"), ["a", "b", "&c", "!d"]);
        assert_eq!(split("a, b ,!c").expect("ok"), ["a", "b", "!c"]);
        assert_eq!(split("web[0:2]:db").expect("ok"), ["web[0:2]", "db"]);
        assert_eq!(split("fe80::1").expect("ok"), ["fe80::1"]);
        assert!(split("").is_err());
        assert!(split(":").is_err());
        assert!(split("web[0").is_err());
        assert!(split("web]").is_err());
    }
}
