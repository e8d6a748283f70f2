//! Helpers shared by the command, text-editing and control modules: serde
//! deserializers for Ansible's loose argument types (`yes`/`no` booleans,
//! numbers given as strings, strings given as numbers), Ansible's `key=value`
//! splitting of free-form text, Python's `shlex.split`, and Jinja truthiness.

use super::ModuleError;
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
/// honouring backslash escapes (so `\"` does not open a quote).
pub fn tokens(text: &str) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match (quote, c) {
            (_, '\\') => {
                start.get_or_insert(i);
                escaped = true;
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => {
                start.get_or_insert(i);
                quote = Some(c);
            }
            (None, c) if c.is_whitespace() => {
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
    out
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

/// Take the `key=value` tokens whose key is in `keys` out of free-form text
/// (Ansible does this for command and shell). Returns the options found and
/// the rest of the text, whitespace between the remaining tokens preserved.
pub fn extract_kv(text: &str, keys: &[&str]) -> (Vec<(String, String)>, String) {
    let mut options = Vec::new();
    let mut rest = String::new();
    let mut copied = 0;
    for token in tokens(text) {
        let Some((k, v)) = split_kv(token.text) else {
            continue;
        };
        if !keys.contains(&k) {
            continue;
        }
        options.push((k.to_string(), unquote(v.trim()).to_string()));
        rest.push_str(&text[copied..token.start]);
        copied = token.start + token.text.len();
    }
    rest.push_str(&text[copied..]);
    (options, rest.trim().to_string())
}

/// Python's `shlex.split(text)` (POSIX mode, no comments): words separated
/// by whitespace, single quotes literal, backslash escaping everything outside
/// quotes and only `\` and `"` inside double quotes.
pub fn shlex_split(text: &str) -> Result<Vec<String>, ModuleError> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\\' => {
                let next = chars
                    .next()
                    .ok_or_else(|| ModuleError::Args("No escaped character".into()))?;
                word.push(next);
                in_word = true;
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err(ModuleError::Args("No closing quotation".into())),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err(ModuleError::Args("No escaped character".into())),
                        },
                        Some(c) => word.push(c),
                        None => return Err(ModuleError::Args("No closing quotation".into())),
                    }
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
pub(crate) mod testing {
    //! A module context for unit tests: the local transport and a minijinja
    //! environment over a map of variables.

    use std::sync::Arc;

    use crate::modules::{Module, ModuleCtx, ModuleError, Outcome, Render};
    use crate::transport::local::LocalTransport;
    use crate::transport::Remote;
    use crate::{Map, Value};

    /// Renders with plain minijinja over `vars`.
    pub struct TestRender {
        pub env: minijinja::Environment<'static>,
        pub vars: Map,
    }

    impl TestRender {
        pub fn new(vars: Value) -> TestRender {
            TestRender {
                env: minijinja::Environment::new(),
                vars: match vars {
                    Value::Object(m) => m,
                    _ => Map::new(),
                },
            }
        }
    }

    impl Render for TestRender {
        fn render(&self, source: &str, _name: &str) -> Result<String, ModuleError> {
            self.env
                .render_str(source, crate::template::to_value(&self.vars))
                .map_err(|e| ModuleError::failed(e.to_string()))
        }

        fn eval(&self, expr: &str) -> Result<Value, ModuleError> {
            let compiled = self
                .env
                .compile_expression(expr)
                .map_err(|e| ModuleError::failed(e.to_string()))?;
            let value = compiled
                .eval(crate::template::to_value(&self.vars))
                .map_err(|e| ModuleError::failed(e.to_string()))?;
            if value.is_undefined() {
                return Ok(Value::Null);
            }
            serde_json::to_value(&value).map_err(|e| ModuleError::failed(e.to_string()))
        }
    }

    /// A local remote.
    pub fn remote() -> Remote {
        Remote::new(Arc::new(LocalTransport), None)
    }

    /// Deserialize `args` into `M` and drive it on the local host.
    pub async fn run<M: Module>(args: Value, check: bool) -> Result<Outcome, ModuleError> {
        run_with::<M>(args, check, Value::Null).await
    }

    /// Like [`run`], with template variables.
    pub async fn run_with<M: Module>(
        args: Value,
        check: bool,
        vars: Value,
    ) -> Result<Outcome, ModuleError> {
        let module: M =
            serde_json::from_value(args).map_err(|e| ModuleError::Args(e.to_string()))?;
        let remote = remote();
        let render = TestRender::new(vars);
        let ctx = ModuleCtx {
            host: "localhost",
            remote: &remote,
            check,
            diff: true,
            render: &render,
            search: &[],
        };
        crate::modules::drive(&module, &ctx).await
    }
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
    fn shlex_like_python() {
        let split = |s: &str| shlex_split(s).expect("split");
        assert_eq!(split("ls -l  /tmp"), ["ls", "-l", "/tmp"]);
        assert_eq!(split("echo 'a b' \"c d\""), ["echo", "a b", "c d"]);
        assert_eq!(
            split(r#"a\ b "x\"y" "p\q" 'r\s'"#),
            ["a b", "x\"y", "p\\q", "r\\s"]
        );
        assert_eq!(split("a '' b"), ["a", "", "b"]);
        assert_eq!(split("pre'mid'\"post\""), ["premidpost"]);
        assert!(shlex_split("echo 'open").is_err());
        assert!(shlex_split("echo \\").is_err());
    }
}

#[cfg(test)]
mod registry_tests {
    use serde_json::json;

    use crate::modules::{assert, blockinfile, command, fail, lineinfile, replace, set_fact};
    use crate::modules::{lookup, wait_for, Module};

    /// Every name in ARGS is a field serde knows (with a value of some
    /// type), and a name outside ARGS is refused.
    fn args_agree<M: Module>() {
        for name in M::ARGS {
            let known = [json!("x"), json!(1), json!(true), json!(["x"])]
                .into_iter()
                .any(|v| match serde_json::from_value::<M>(json!({ *name: v })) {
                    Ok(_) => true,
                    Err(e) => !e.to_string().contains("unknown field"),
                });
            assert!(known, "{}: {name} in ARGS but not accepted", M::NAME);
        }
        let unknown = serde_json::from_value::<M>(json!({"drover_bogus": 1}));
        assert!(
            unknown.is_err_and(|e| e.to_string().contains("unknown field")),
            "{}",
            M::NAME
        );
    }

    #[test]
    fn module_args_match_their_structs() {
        args_agree::<command::Command>();
        args_agree::<command::Shell>();
        args_agree::<lineinfile::LineInFile>();
        args_agree::<replace::Replace>();
        args_agree::<blockinfile::BlockInFile>();
        args_agree::<assert::Assert>();
        args_agree::<fail::Fail>();
        args_agree::<wait_for::WaitFor>();
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
            ("set_fact", true),
            ("assert", false),
            ("fail", false),
            ("wait_for", false),
        ] {
            let info = lookup(name).unwrap_or_else(|| panic!("{name} not registered"));
            assert_eq!(info.free_form, free_form, "{name}");
        }
    }
}
