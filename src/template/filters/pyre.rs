//! Python `re` semantics on top of the `fancy-regex` crate, for the regex filters
//! and tests: pattern translation (`\Z`, a literal `{`, `[` inside a class),
//! `re.match` anchoring, `re.sub` replacement templates (`\1`, `\g<1>`,
//! `\g<name>`, `\n`), `re.findall` results.
//!
//! Backreferences inside a pattern and look-around work as in Python
//! (`fancy-regex` backtracks for them only). Python's `$` also matches before a
//! final newline; here it matches only at the very end (or at line ends with
//! `multiline`).

use fancy_regex::{Captures, Regex};
use minijinja::value::Value;
use minijinja::{Error, ErrorKind};

fn err(msg: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg)
}

/// Compile a Python pattern; `anchored` gives `re.match` semantics.
pub(super) fn compile(
    pattern: &str,
    ignorecase: bool,
    multiline: bool,
    anchored: bool,
) -> Result<Regex, Error> {
    let translated = translate(pattern);
    let source = if anchored {
        format!(r"\A(?:{translated})")
    } else {
        translated
    };
    let flags = match (ignorecase, multiline) {
        (false, false) => "",
        (true, false) => "(?i)",
        (false, true) => "(?m)",
        (true, true) => "(?im)",
    };
    Regex::new(&format!("{flags}{source}"))
        .map_err(|e| err(format!("invalid regular expression `{pattern}`: {e}")))
}

/// A match that gave up (backtracking limit): an error naming the pattern,
/// as Python would not give up.
pub(super) fn failed(re: &Regex, e: fancy_regex::Error) -> Error {
    err(format!("regular expression `{}` failed: {e}", re.as_str()))
}

/// Rewrite the Python-only spellings of a pattern.
fn translate(p: &str) -> String {
    let chars: Vec<char> = p.chars().collect();
    let mut out = String::with_capacity(p.len());
    let mut i = 0;
    let mut in_class = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' if i + 1 < chars.len() => {
                let n = chars[i + 1];
                if n == 'Z' && !in_class {
                    out.push_str(r"\z");
                } else {
                    out.push('\\');
                    out.push(n);
                }
                i += 2;
                continue;
            }
            '[' if !in_class => {
                in_class = true;
                out.push('[');
                // A `]` (after an optional `^`) first in a class is literal.
                if chars.get(i + 1) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                if chars.get(i + 1) == Some(&']') {
                    out.push_str(r"\]");
                    i += 1;
                }
            }
            '[' | '&' | '~' if in_class => {
                out.push('\\');
                out.push(c);
            }
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            '{' if !in_class => {
                // A quantifier is copied whole; any other brace is literal
                // in Python, so escape it for `regex`.
                if is_repetition(&chars[i..]) {
                    while i < chars.len() && chars[i] != '}' {
                        out.push(chars[i]);
                        i += 1;
                    }
                    out.push('}');
                } else {
                    out.push_str(r"\{");
                }
            }
            '}' if !in_class => out.push_str(r"\}"),
            c => out.push(c),
        }
        i += 1;
    }
    out
}

/// Is `s` (starting at `{`) a `{m}`, `{m,}`, `{,n}` or `{m,n}` quantifier?
fn is_repetition(s: &[char]) -> bool {
    let Some(end) = s.iter().position(|c| *c == '}') else {
        return false;
    };
    let inner: String = s[1..end].iter().collect();
    let (a, b) = match inner.split_once(',') {
        Some((a, b)) => (a, Some(b)),
        None => (inner.as_str(), None),
    };
    let digits = |x: &str| x.chars().all(|c| c.is_ascii_digit());
    match b {
        None => !a.is_empty() && digits(a),
        Some(b) => digits(a) && digits(b) && !(a.is_empty() && b.is_empty()),
    }
}

/// One piece of a replacement template.
#[derive(Debug, PartialEq, Eq)]
enum Piece {
    Lit(String),
    Index(usize),
    Name(String),
}

/// Parse a Python `re.sub` replacement template against `re`'s groups.
fn parse_template(t: &str, re: &Regex) -> Result<Vec<Piece>, Error> {
    let chars: Vec<char> = t.chars().collect();
    let mut pieces = Vec::new();
    let mut lit = String::new();
    let mut i = 0;
    let groups = re.captures_len() - 1;
    let check = |n: usize| {
        if n > groups {
            Err(err(format!(
                "invalid group reference {n} in replacement `{t}`"
            )))
        } else {
            Ok(n)
        }
    };
    while i < chars.len() {
        let c = chars[i];
        if c != '\\' || i + 1 == chars.len() {
            lit.push(c);
            i += 1;
            continue;
        }
        let n = chars[i + 1];
        i += 2;
        let group = match n {
            'g' => {
                if chars.get(i) != Some(&'<') {
                    return Err(err(format!("missing `<` after \\g in replacement `{t}`")));
                }
                let Some(close) = chars[i..].iter().position(|c| *c == '>') else {
                    return Err(err(format!("missing `>` after \\g< in replacement `{t}`")));
                };
                let name: String = chars[i + 1..i + close].iter().collect();
                i += close + 1;
                if let Ok(n) = name.parse::<usize>() {
                    Piece::Index(check(n)?)
                } else if re.capture_names().flatten().any(|g| g == name) {
                    Piece::Name(name)
                } else {
                    return Err(err(format!(
                        "unknown group name `{name}` in replacement `{t}`"
                    )));
                }
            }
            '1'..='9' => {
                let mut num = n.to_digit(10).unwrap_or(0) as usize;
                if let Some(d) = chars.get(i).and_then(|c| c.to_digit(10)) {
                    num = num * 10 + d as usize;
                    i += 1;
                }
                Piece::Index(check(num)?)
            }
            '0' => {
                // `\0` and up to two more octal digits: a character code.
                let mut code = 0u32;
                let mut taken = 0;
                while taken < 2 {
                    match chars.get(i).and_then(|c| c.to_digit(8)) {
                        Some(d) => {
                            code = code * 8 + d;
                            i += 1;
                            taken += 1;
                        }
                        None => break,
                    }
                }
                lit.push(char::from_u32(code).unwrap_or('\0'));
                continue;
            }
            'n' | 't' | 'r' | 'f' | 'v' | 'a' | 'b' | '\\' => {
                lit.push(match n {
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    'f' => '\u{c}',
                    'v' => '\u{b}',
                    'a' => '\u{7}',
                    'b' => '\u{8}',
                    _ => '\\',
                });
                continue;
            }
            c if c.is_ascii_alphabetic() => {
                return Err(err(format!("bad escape \\{c} in replacement `{t}`")));
            }
            c => {
                lit.push('\\');
                lit.push(c);
                continue;
            }
        };
        if !lit.is_empty() {
            pieces.push(Piece::Lit(std::mem::take(&mut lit)));
        }
        pieces.push(group);
    }
    if !lit.is_empty() {
        pieces.push(Piece::Lit(lit));
    }
    Ok(pieces)
}

fn expand(pieces: &[Piece], caps: &Captures<'_, str>, out: &mut String) {
    for p in pieces {
        match p {
            Piece::Lit(s) => out.push_str(s),
            Piece::Index(n) => out.push_str(caps.get(*n).map_or("", |m| m.as_str())),
            Piece::Name(n) => out.push_str(caps.name(n).map_or("", |m| m.as_str())),
        }
    }
}

/// `re.subn(pattern, template, text, count)`: the result and how many
/// replacements were made (`count` 0 means all).
pub(super) fn sub(
    re: &Regex,
    template: &str,
    text: &str,
    count: usize,
) -> Result<(String, usize), Error> {
    let pieces = parse_template(template, re)?;
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    let mut n = 0;
    for caps in re.captures_iter(text) {
        let caps = caps.map_err(|e| failed(re, e))?;
        if count > 0 && n == count {
            break;
        }
        let Some(m) = caps.get(0) else { continue };
        out.push_str(&text[last..m.start()]);
        expand(&pieces, &caps, &mut out);
        last = m.end();
        n += 1;
    }
    out.push_str(&text[last..]);
    Ok((out, n))
}

/// `re.findall`: whole matches without groups, the group with one, lists
/// of all groups with several (unmatched groups are empty strings).
pub(super) fn findall(re: &Regex, text: &str) -> Result<Value, Error> {
    let groups = re.captures_len() - 1;
    let text_of =
        |caps: &Captures<'_, str>, i: usize| Value::from(caps.get(i).map_or("", |m| m.as_str()));
    let items: Vec<Value> = re
        .captures_iter(text)
        .map(|caps| {
            let caps = caps.map_err(|e| failed(re, e))?;
            Ok(match groups {
                0 => text_of(&caps, 0),
                1 => text_of(&caps, 1),
                _ => Value::from((1..=groups).map(|i| text_of(&caps, i)).collect::<Vec<_>>()),
            })
        })
        .collect::<Result<_, Error>>()?;
    Ok(Value::from(items))
}

/// A group reference as `regex_search` takes it: `\1` or `\g<name>`.
pub(super) fn group_of<'t>(caps: &Captures<'t, str>, spec: &str) -> Result<Value, Error> {
    let m = if let Some(name) = spec.strip_prefix("\\g<").and_then(|s| s.strip_suffix('>')) {
        match name.parse::<usize>() {
            Ok(n) => caps.get(n),
            Err(_) => caps.name(name),
        }
    } else if let Some(num) = spec
        .strip_prefix('\\')
        .and_then(|s| s.parse::<usize>().ok())
    {
        caps.get(num)
    } else {
        return Err(err(format!(
            "regex_search: unknown argument `{spec}`: expected a group such as '\\\\1' or '\\\\g<name>'"
        )));
    };
    Ok(m.map_or(Value::from(()), |m| Value::from(m.as_str())))
}

/// Python 3.7+ `re.escape`: a backslash before each special character.
pub(super) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "()[]{}?*+-|^$\\.&~# \t\n\r\u{b}\u{c}".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translation() {
        assert_eq!(translate(r"a\Z"), r"a\z");
        assert_eq!(translate(r"{{ x }}"), r"\{\{ x \}\}");
        assert_eq!(translate(r"a{2,3}b{2}"), r"a{2,3}b{2}");
        assert_eq!(translate(r"[[]"), r"[\[]");
        assert_eq!(translate(r"[]a]"), r"[\]a]");
        assert_eq!(translate(r"[^]a]"), r"[^\]a]");
        assert!(compile(r"(a)\1", false, false, false).is_ok());
        assert!(compile(r"(?<=a)b", false, false, false).is_ok());
    }

    #[test]
    fn replacement_templates() {
        let re = compile(r"(?P<first>\w+) (\w+)", false, false, false).expect("re");
        let (s, n) = sub(&re, r"\2 \g<first> \g<2>\\n\n\.", "foo bar", 0).expect("sub");
        assert_eq!(s, "bar foo bar\\n\n\\.");
        assert_eq!(n, 1);
        assert!(sub(&re, r"\3", "x", 0).is_err());
        assert!(sub(&re, r"\q", "x", 0).is_err());
        let re = compile("o", false, false, false).expect("re");
        assert_eq!(
            sub(&re, "0", "foo boo", 2).expect("sub"),
            ("f00 boo".to_string(), 2)
        );
    }
}
