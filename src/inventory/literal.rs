//! INI inventory values as Ansible reads them: Python's `ast.literal_eval`
//! when the text is a Python literal (`22`, `1.5`, `True`, `None`, `'x'`,
//! `[1, 2]`, `{'a': 1}`), otherwise the text itself as a string.

use crate::{Map, Value};

/// The value of INI text `s`.
pub(super) fn parse_value(s: &str) -> Value {
    let mut p = Parser {
        s: s.as_bytes(),
        src: s,
        i: 0,
    };
    match p.value() {
        Some(v) => {
            p.ws();
            if p.i == p.s.len() {
                v
            } else {
                Value::String(s.to_string())
            }
        }
        None => Value::String(s.to_string()),
    }
}

struct Parser<'a> {
    s: &'a [u8],
    src: &'a str,
    i: usize,
}

impl Parser<'_> {
    /// Skip whitespace and a Python `#` comment (which runs to the end).
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
        if self.peek() == Some(b'#') {
            self.i = self.s.len();
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self) -> Option<Value> {
        self.ws();
        match self.peek()? {
            b'\'' | b'"' => self.string().map(Value::String),
            b'[' => {
                self.i += 1;
                self.seq(b']').map(Value::Array)
            }
            b'(' => {
                self.i += 1;
                // `(x)` is x, `(x,)` and `(x, y)` are tuples (lists in JSON).
                let start = self.i;
                if self.eat(b')') {
                    return Some(Value::Array(Vec::new()));
                }
                let first = self.value()?;
                if self.eat(b')') {
                    return Some(first);
                }
                self.i = start;
                self.seq(b')').map(Value::Array)
            }
            b'{' => {
                self.i += 1;
                self.dict()
            }
            b'-' | b'+' | b'0'..=b'9' | b'.' => self.number(),
            _ => self.word(),
        }
    }

    fn seq(&mut self, close: u8) -> Option<Vec<Value>> {
        let mut items = Vec::new();
        loop {
            if self.eat(close) {
                return Some(items);
            }
            items.push(self.value()?);
            if self.eat(close) {
                return Some(items);
            }
            if !self.eat(b',') {
                return None;
            }
        }
    }

    /// `{}` dict or `{a, b}` set (a list in JSON).
    fn dict(&mut self) -> Option<Value> {
        if self.eat(b'}') {
            return Some(Value::Object(Map::new()));
        }
        let first = self.value()?;
        if !self.eat(b':') {
            let mut items = vec![first];
            if self.eat(b'}') {
                return Some(Value::Array(items));
            }
            if !self.eat(b',') {
                return None;
            }
            items.extend(self.seq(b'}')?);
            return Some(Value::Array(items));
        }
        let mut map = Map::new();
        let mut key = first;
        loop {
            let v = self.value()?;
            map.insert(key_string(&key)?, v);
            if self.eat(b'}') {
                return Some(Value::Object(map));
            }
            if !self.eat(b',') {
                return None;
            }
            if self.eat(b'}') {
                return Some(Value::Object(map));
            }
            key = self.value()?;
            if !self.eat(b':') {
                return None;
            }
        }
    }

    fn word(&mut self) -> Option<Value> {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
        {
            self.i += 1;
        }
        match &self.src[start..self.i] {
            "True" => Some(Value::Bool(true)),
            "False" => Some(Value::Bool(false)),
            "None" => Some(Value::Null),
            _ => None,
        }
    }

    fn number(&mut self) -> Option<Value> {
        let start = self.i;
        let neg = match self.peek() {
            Some(b'-') => {
                self.i += 1;
                true
            }
            Some(b'+') => {
                self.i += 1;
                false
            }
            _ => false,
        };
        self.ws();
        let body_start = self.i;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'+' | b'-'))
        {
            // A sign belongs to the number only right after an exponent `e`.
            if matches!(self.peek(), Some(b'+' | b'-'))
                && !matches!(self.s.get(self.i.wrapping_sub(1)), Some(b'e' | b'E'))
            {
                break;
            }
            self.i += 1;
        }
        let body = &self.src[body_start..self.i];
        if body.is_empty() || start == self.i {
            return None;
        }
        let v = python_number(body)?;
        Some(if neg { negate(v)? } else { v })
    }

    fn string(&mut self) -> Option<String> {
        let quote = self.peek()?;
        self.i += 1;
        let mut out = String::new();
        let rest = &self.src[self.i..];
        let mut chars = rest.char_indices();
        while let Some((off, c)) = chars.next() {
            match c {
                c if c as u32 == u32::from(quote) => {
                    self.i += off + 1;
                    return Some(out);
                }
                '\n' => return None,
                '\\' => {
                    let (_, e) = chars.next()?;
                    match e {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        '0' => out.push('\0'),
                        '\\' | '\'' | '"' => out.push(e),
                        '\n' => {}
                        'x' | 'u' | 'U' => {
                            let n = match e {
                                'x' => 2,
                                'u' => 4,
                                _ => 8,
                            };
                            let mut code = 0u32;
                            for _ in 0..n {
                                let (_, h) = chars.next()?;
                                code = code * 16 + h.to_digit(16)?;
                            }
                            out.push(char::from_u32(code)?);
                        }
                        other => {
                            out.push('\\');
                            out.push(other);
                        }
                    }
                }
                c => out.push(c),
            }
        }
        None
    }
}

fn python_number(body: &str) -> Option<Value> {
    if body.starts_with('_') || body.ends_with('_') || body.contains("__") {
        return None;
    }
    let clean = body.replace('_', "");
    let lower = clean.to_ascii_lowercase();
    let radix = |prefix: &str, r: u32| {
        lower
            .strip_prefix(prefix)
            .and_then(|d| i64::from_str_radix(d, r).ok())
            .map(Value::from)
    };
    if lower.starts_with("0x") {
        return radix("0x", 16);
    }
    if lower.starts_with("0o") {
        return radix("0o", 8);
    }
    if lower.starts_with("0b") {
        return radix("0b", 2);
    }
    if lower.chars().all(|c| c.is_ascii_digit()) {
        // Python 3 rejects leading zeros (`0644`), so Ansible keeps the text.
        if lower.len() > 1 && lower.starts_with('0') && lower.chars().any(|c| c != '0') {
            return None;
        }
        return lower.parse::<i64>().ok().map(Value::from);
    }
    let float_chars = lower
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | '+' | '-'));
    if float_chars && lower.chars().any(|c| c.is_ascii_digit()) {
        let f: f64 = lower.parse().ok()?;
        return serde_json::Number::from_f64(f).map(Value::Number);
    }
    None
}

fn negate(v: Value) -> Option<Value> {
    match v {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Some(Value::from(-i))
            } else {
                n.as_f64()
                    .and_then(|f| serde_json::Number::from_f64(-f))
                    .map(Value::Number)
            }
        }
        _ => None,
    }
}

/// A Python dict key as a JSON object key.
fn key_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(if *b { "True" } else { "False" }.into()),
        Value::Null => Some("None".into()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn python_literals() {
        assert_eq!(parse_value("22"), json!(22));
        assert_eq!(parse_value("-3"), json!(-3));
        assert_eq!(parse_value("1.5"), json!(1.5));
        assert_eq!(parse_value("1e3"), json!(1000.0));
        assert_eq!(parse_value("0x1F"), json!(31));
        assert_eq!(parse_value("True"), json!(true));
        assert_eq!(parse_value("None"), Value::Null);
        assert_eq!(parse_value("'a b'"), json!("a b"));
        assert_eq!(parse_value(r#""x\ty""#), json!("x\ty"));
        assert_eq!(parse_value("[1, 'two', [3]]"), json!([1, "two", [3]]));
        assert_eq!(parse_value("(1,)"), json!([1]));
        assert_eq!(parse_value("(1)"), json!(1));
        assert_eq!(
            parse_value("{'a': 1, 2: [None]}"),
            json!({"a": 1, "2": [null]})
        );
        assert_eq!(parse_value("{1, 2}"), json!([1, 2]));
        assert_eq!(parse_value("1 # comment"), json!(1));
        assert_eq!(parse_value("'a#b' # c"), json!("a#b"));
    }

    #[test]
    fn everything_else_is_text() {
        for s in [
            "yes",
            "FALSE",
            "true",
            "0644",
            "192.168.1.240",
            "admin",
            "a=b",
            "x # c",
            "[1,",
            "'open",
            "1_000_",
            "3.4.5",
            "1j",
            "",
        ] {
            assert_eq!(parse_value(s), json!(s), "{s}");
        }
        assert_eq!(parse_value("1_000"), json!(1000));
    }
}
