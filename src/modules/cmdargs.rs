//! Ansible's splitting of free-form arguments, the one copy in drover:
//! tokens of `command: creates=/x ls`, `key=value` pairs of inline
//! arguments (`file: path=/x mode=0644`, `set_fact: a=1`, `-e a=1`); and
//! Jinja truthiness. Python's `shlex.split` is [`crate::shlex`].

use crate::Value;

/// Jinja's (and Python's) truthiness of a value.
pub fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|x| x != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// One whitespace-separated token of free-form text, as Ansible's
/// `split_args` sees it: quotes keep spaces inside a token.
#[derive(Debug, Clone, PartialEq)]
pub struct Token<'a> {
    /// Byte offset of the token in the text.
    pub start: usize,
    /// The token as written.
    pub text: &'a str,
}

/// Split free-form text into tokens, keeping quoted parts together and
/// honouring backslash escapes (so `\"` does not open a quote). With
/// `jinja`, text not yet templated, whitespace inside `{{ }}`, `{% %}` and
/// `{# #}` does not split either. The flag says whether every quote closed.
fn scan(text: &str, jinja: bool) -> (Vec<Token<'_>>, bool) {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut depth = 0usize;
    let bytes = text.as_bytes();
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        if jinja {
            // Counted inside quotes too, as Ansible does.
            match (c, bytes.get(i + 1)) {
                ('{', Some(b'{' | b'%' | b'#')) => depth += 1,
                ('}' | '%' | '#', Some(b'}')) if depth > 0 => depth -= 1,
                _ => {}
            }
        }
        match (quote, c) {
            (_, '\\') => {
                start.get_or_insert(i);
                escaped = true;
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') if depth == 0 => {
                start.get_or_insert(i);
                quote = Some(c);
            }
            (None, c) if c.is_whitespace() && depth == 0 => {
                if let Some(s) = start.take() {
                    out.push(Token {
                        start: s,
                        text: &text[s..i],
                    });
                }
            }
            (None, _) => {
                start.get_or_insert(i);
            }
        }
    }
    if let Some(s) = start {
        out.push(Token {
            start: s,
            text: &text[s..],
        });
    }
    (out, quote.is_none())
}

/// Split templated free-form text into tokens (see [`scan`]); an open quote
/// runs to the end.
pub fn tokens(text: &str) -> Vec<Token<'_>> {
    scan(text, false).0
}

/// Remove one pair of matching quotes around a value (Ansible's `unquote`).
pub fn unquote(s: &str) -> &str {
    for q in ['"', '\''] {
        if s.len() >= 2 && s.starts_with(q) && s.ends_with(q) {
            return &s[1..s.len() - 1];
        }
    }
    s
}

/// Split a `key=value` token at its first unescaped `=` after the first
/// character; `None` when it is not one.
pub fn split_kv(token: &str) -> Option<(&str, &str)> {
    let bytes = token.as_bytes();
    (1..bytes.len())
        .find(|&i| bytes[i] == b'=' && bytes[i - 1] != b'\\')
        .map(|i| (&token[..i], &token[i + 1..]))
}

/// Free-form text that is not `key=value` pairs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    /// A quote opened and never closed.
    #[error("unbalanced quotes")]
    Unbalanced,
    /// A token without `=`.
    #[error("expected key=value, got {0:?}")]
    NotKv(String),
}

/// Ansible's `parse_kv`: the `key=value` pairs of inline arguments
/// (`file: path=/x mode=0644`, `set_fact: a=1`, `-e a=1`), values unquoted.
/// With `jinja`, the text is not templated yet and `{{ a b }}` is one value.
pub fn parse_kv(text: &str, jinja: bool) -> Result<Vec<(String, String)>, KvError> {
    let (tokens, balanced) = scan(text, jinja);
    if !balanced {
        return Err(KvError::Unbalanced);
    }
    tokens
        .into_iter()
        .map(|t| {
            // Ansible decodes the escapes of the whole token first (its
            // `_decode_escapes`), then splits and unquotes.
            let decoded = decode_escapes(t.text);
            match split_kv(&decoded) {
                Some((k, v)) => Ok((k.to_string(), unquote(v).to_string())),
                None => Err(KvError::NotKv(t.text.to_string())),
            }
        })
        .collect()
}

/// Python's backslash escapes as Ansible's `parse_kv` decodes them:
/// `\\ \' \" \a \b \f \n \r \t \v`, `\xHH`, `\uHHHH` and `\UHHHHHHHH`;
/// any other backslash stays as written.
pub fn decode_escapes(text: &str) -> String {
    if !text.contains('\\') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let simple = match after.chars().next() {
            Some('\\') => Some('\\'),
            Some('\'') => Some('\''),
            Some('"') => Some('"'),
            Some('a') => Some('\u{7}'),
            Some('b') => Some('\u{8}'),
            Some('f') => Some('\u{c}'),
            Some('n') => Some('\n'),
            Some('r') => Some('\r'),
            Some('t') => Some('\t'),
            Some('v') => Some('\u{b}'),
            _ => None,
        };
        if let Some(c) = simple {
            out.push(c);
            rest = &after[1..];
            continue;
        }
        let width = match after.as_bytes().first() {
            Some(b'x') => 2,
            Some(b'u') => 4,
            Some(b'U') => 8,
            _ => 0,
        };
        let code = after
            .get(1..1 + width)
            .filter(|h| width > 0 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .and_then(char::from_u32);
        match code {
            Some(c) => {
                out.push(c);
                rest = &after[1 + width..];
            }
            None => {
                out.push('\\');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The quote still open after `token`, given the one open before it
/// (a quote preceded by a backslash does not count).
fn quote_after(token: &str, mut open: Option<char>) -> Option<char> {
    let mut prev = None;
    for c in token.chars() {
        if matches!(c, '"' | '\'') && prev != Some('\\') {
            match open {
                Some(q) if q == c => open = None,
                Some(_) => {}
                None => open = Some(c),
            }
        }
        prev = Some(c);
    }
    open
}

/// Ansible's `split_args` of templated text: words split at single spaces
/// and newlines, each split remembered in the words (a run of spaces
/// stays on the word before it, a newline ends its word) so that
/// [`join_args`] gives the text back; a quoted part spans spaces and lines;
/// a lone `\` outside quotes is dropped and joins its line to the next.
fn split_args(text: &str) -> Vec<String> {
    let mut params: Vec<String> = Vec::new();
    let lines: Vec<&str> = text.split('\n').collect();
    let mut quote: Option<char> = None;
    for (li, line) in lines.iter().enumerate() {
        let mut continued = false;
        for (ti, token) in line.split(' ').enumerate() {
            if token.is_empty() && ti != 0 {
                match params.last_mut() {
                    Some(p) => p.push(' '),
                    None => params.push(" ".into()),
                }
                continue;
            }
            if token == "\\" && quote.is_none() {
                continued = true;
                continue;
            }
            let was_inside = quote.is_some();
            quote = quote_after(token, quote);
            match params.last_mut() {
                Some(p) if was_inside => {
                    if ti > 0 {
                        p.push(' ');
                    }
                    p.push_str(token);
                }
                _ if !token.is_empty() => params.push(token.to_string()),
                _ => {}
            }
        }
        if li + 1 != lines.len() && !continued {
            match params.last_mut() {
                Some(p) => p.push('\n'),
                None => params.push("\n".into()),
            }
        }
    }
    params
}

/// Ansible's `join_args`: the words of [`split_args`] back into text.
fn join_args(params: &[String]) -> String {
    let mut out = String::new();
    for p in params {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push(' ');
        }
        out.push_str(p);
    }
    out
}

/// Take the `key=value` words whose key is in `keys` out of free-form text
/// as Ansible's `parse_kv` does for command, shell and script: the text is
/// split as [`split_args`] does, the options taken out (escapes decoded,
/// values unquoted) and the rest joined back, its spacing, newlines and
/// quoted parts kept, line continuations (` \` at a line's end) joined.
pub fn extract_kv(text: &str, keys: &[&str]) -> (Vec<(String, String)>, String) {
    let mut options = Vec::new();
    let mut raw = Vec::new();
    for param in split_args(text) {
        let decoded = decode_escapes(&param);
        match split_kv(&decoded) {
            Some((k, v)) if keys.contains(&k) => {
                options.push((k.to_string(), unquote(v.trim()).to_string()));
            }
            Some(_) => raw.push(param),
            // Every `=` escaped: the word stays, its escapes undone.
            None if decoded.contains('=') => raw.push(decoded.replace("\\=", "=")),
            None => raw.push(param),
        }
    }
    (options, join_args(&raw))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn truthiness() {
        assert!(!truthy(&json!(null)));
        assert!(!truthy(&json!("")));
        assert!(!truthy(&json!(0)));
        assert!(!truthy(&json!([])));
        assert!(truthy(&json!("false")));
        assert!(truthy(&json!({"a": 1})));
    }

    #[test]
    fn key_value_escapes_are_decoded_as_ansible_parse_kv() {
        let kv = |s: &str| parse_kv(s, true).expect("kv");
        assert_eq!(
            kv(r#"content="a\nb\tc" dest=/tmp/x"#),
            [
                ("content".to_string(), "a\nb\tc".to_string()),
                ("dest".to_string(), "/tmp/x".to_string()),
            ]
        );
        assert_eq!(kv(r"msg=a\\b\x41\u00e9")[0].1, "a\\bAé");
        // Unknown escapes stay as written.
        assert_eq!(kv(r"regexp=^\d+\s")[0].1, r"^\d+\s");
        assert_eq!(kv(r#"msg='it\'s'"#)[0].1, "it's");
    }

    #[test]
    fn kv_pairs_are_unquoted_and_jinja_stays_whole() {
        let kv = |s: &str, jinja| parse_kv(s, jinja).expect("kv");
        assert_eq!(
            kv("path=/tmp/x mode='0755' msg=\"a b\" x=a=b", true),
            [
                ("path".to_string(), "/tmp/x".to_string()),
                ("mode".to_string(), "0755".to_string()),
                ("msg".to_string(), "a b".to_string()),
                ("x".to_string(), "a=b".to_string()),
            ]
        );
        assert_eq!(
            kv(
                "dest={{ base }}/x{{ '/y z' }} n={% if a in b %}1{% endif %}",
                true
            ),
            [
                ("dest".to_string(), "{{ base }}/x{{ '/y z' }}".to_string()),
                ("n".to_string(), "{% if a in b %}1{% endif %}".to_string()),
            ]
        );
        // Templated text: braces are plain characters.
        assert_eq!(
            parse_kv("a={{ b }}", false),
            Err(KvError::NotKv("b".into()))
        );
        assert_eq!(parse_kv("a='b", true), Err(KvError::Unbalanced));
        assert_eq!(
            parse_kv("a=1 free", true),
            Err(KvError::NotKv("free".into()))
        );
        assert!(kv("", true).is_empty());
    }

    #[test]
    fn kv_extraction_keeps_the_rest() {
        let (opts, rest) = extract_kv(
            "creates=/etc/x chdir='/a b' echo a=b \"creates=/no\"  done",
            &["creates", "chdir"],
        );
        assert_eq!(
            opts,
            vec![
                ("creates".to_string(), "/etc/x".to_string()),
                ("chdir".to_string(), "/a b".to_string())
            ]
        );
        assert_eq!(rest, "echo a=b \"creates=/no\"  done");
        let (opts, rest) = extract_kv("ls removes=/tmp/y", &["removes"]);
        assert_eq!(opts, vec![("removes".to_string(), "/tmp/y".to_string())]);
        assert_eq!(rest, "ls");
    }

    #[test]
    fn kv_extraction_joins_continued_lines_and_keeps_newlines() {
        let text = "echo this is a \\\n\"multiline echo\" \\\n\"with a new line\nin quotes\" \\\n| sha1sum\necho \"second\"\n";
        let (opts, rest) = extract_kv(text, &["creates"]);
        assert!(opts.is_empty());
        assert_eq!(
            rest,
            "echo this is a \"multiline echo\" \"with a new line\nin quotes\" | sha1sum\necho \"second\"\n"
        );
        let (opts, rest) = extract_kv(
            "executable=\"/bin/bash\"\ncreates=/tmp/a\necho \"test\"\n",
            &["creates", "executable"],
        );
        assert_eq!(
            opts,
            vec![
                ("executable".to_string(), "/bin/bash".to_string()),
                ("creates".to_string(), "/tmp/a".to_string())
            ]
        );
        assert_eq!(rest, "echo \"test\"\n");
        let (_, rest) = extract_kv("  cat <<EOF\n  x  y\nEOF", &["creates"]);
        assert_eq!(rest, "  cat <<EOF\n  x  y\nEOF");
    }
}

#[cfg(test)]
mod registry_tests {
    use crate::modules::testutil::assert_args_accepted;
    use crate::modules::{assert, blockinfile, command, fail, lineinfile, replace, set_fact};
    use crate::modules::{lookup, wait_for, Module};

    #[test]
    fn module_args_match_their_structs() {
        assert_args_accepted::<command::Command>();
        assert_args_accepted::<command::Shell>();
        assert_args_accepted::<lineinfile::LineInFile>();
        assert_args_accepted::<replace::Replace>();
        assert_args_accepted::<blockinfile::BlockInFile>();
        assert_args_accepted::<assert::Assert>();
        assert_args_accepted::<fail::Fail>();
        assert_args_accepted::<wait_for::WaitFor>();
        assert_eq!(set_fact::SetFact::ARGS, &["*"]);
    }

    #[test]
    fn registered_under_their_names() {
        for (name, free_form) in [
            ("ansible.builtin.command", true),
            ("shell", true),
            ("lineinfile", false),
            ("ansible.builtin.replace", false),
            ("blockinfile", false),
            ("set_fact", false),
            ("assert", false),
            ("fail", false),
            ("wait_for", false),
        ] {
            let info = lookup(name).unwrap_or_else(|| panic!("{name} not registered"));
            assert_eq!(info.free_form, free_form, "{name}");
        }
    }
}
