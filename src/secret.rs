//! Secrets (passwords) that must never reach output, logs or command lines.

use std::fmt;

/// A secret string. `Debug` and `Display` print a placeholder; the value is
/// only reachable through [`Secret::expose`], at the place it is sent.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself: call only where it is written to its destination.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(********)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("********")
    }
}

/// Replaces every occurrence of known secrets in text bound for output.
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    secrets: Vec<Secret>,
}

impl Redactor {
    /// Remember a secret; empty and very short values are ignored so that
    /// redaction cannot mangle ordinary output.
    pub fn add(&mut self, secret: &Secret) {
        if secret.expose().len() >= 3 && !self.secrets.contains(secret) {
            self.secrets.push(secret.clone());
        }
    }

    /// `text` with every known secret replaced by `********`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            if out.contains(s.expose()) {
                out = out.replace(s.expose(), "********");
            }
        }
        out
    }

    /// Redact every string inside a value.
    pub fn redact_value(&self, value: &mut crate::Value) {
        if self.secrets.is_empty() {
            return;
        }
        match value {
            crate::Value::String(s) if self.secrets.iter().any(|x| s.contains(x.expose())) => {
                *s = self.redact(s);
            }
            crate::Value::Array(items) => items.iter_mut().for_each(|v| self.redact_value(v)),
            crate::Value::Object(map) => map.values_mut().for_each(|v| self.redact_value(v)),
            _ => {}
        }
    }
}
