//! Secrets (passwords) that must never reach output, logs or command lines.

use std::fmt;
use std::sync::{Arc, RwLock};

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

/// The variables whose values are passwords, whatever their source
/// (inventory, `-e`, play or task vars, templated from a vault variable).
pub const SECRET_VARS: &[&str] = &[
    "ansible_become_password",
    "ansible_become_pass",
    "ansible_password",
    "ansible_ssh_pass",
    "ansible_ssh_password",
];

/// The redactor of this process's run: the command line's output and logs
/// use it, and whatever learns a secret outside the executor (a decrypted
/// vault value) adds to it.
pub fn run_redactor() -> &'static Redactor {
    static RUN: std::sync::LazyLock<Redactor> = std::sync::LazyLock::new(Redactor::default);
    &RUN
}

/// Replaces every occurrence of known secrets in text bound for output.
/// Clones share one set of secrets: one learned while the run goes on (a
/// password templated for one host) is masked by every clone.
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    secrets: Arc<RwLock<Vec<Secret>>>,
}

impl Redactor {
    /// Remember a secret; empty and very short values are ignored so that
    /// redaction cannot mangle ordinary output.
    pub fn add(&self, secret: &Secret) {
        if secret.expose().len() < 3 {
            return;
        }
        let mut secrets = self.secrets.write().unwrap_or_else(|e| e.into_inner());
        if !secrets.contains(secret) {
            secrets.push(secret.clone());
            // Longest first, so a secret that contains another is masked
            // whole.
            secrets.sort_by_key(|s| std::cmp::Reverse(s.expose().len()));
        }
    }

    /// Remember the secret in a variable's value, if it is a string.
    pub fn add_value(&self, value: &crate::Value) {
        if let crate::Value::String(s) = value {
            self.add(&Secret::new(s.clone()));
        }
    }

    /// `text` with every known secret replaced by `********`.
    pub fn redact(&self, text: &str) -> String {
        let secrets = self.secrets.read().unwrap_or_else(|e| e.into_inner());
        let mut out = text.to_string();
        for s in secrets.iter() {
            if out.contains(s.expose()) {
                out = out.replace(s.expose(), "********");
            }
        }
        out
    }

    /// Redact every string inside a value (map keys too).
    pub fn redact_value(&self, value: &mut crate::Value) {
        let secrets = self.secrets.read().unwrap_or_else(|e| e.into_inner());
        if secrets.is_empty() {
            return;
        }
        redact_in(&secrets, value);
    }
}

fn redact_in(secrets: &[Secret], value: &mut crate::Value) {
    let hit = |s: &str| secrets.iter().any(|x| s.contains(x.expose()));
    let mask = |s: &str| {
        let mut out = s.to_string();
        for x in secrets {
            out = out.replace(x.expose(), "********");
        }
        out
    };
    match value {
        crate::Value::String(s) if hit(s) => *s = mask(s),
        crate::Value::Array(items) => items.iter_mut().for_each(|v| redact_in(secrets, v)),
        crate::Value::Object(map) => {
            if map.keys().any(|k| hit(k)) {
                let old = std::mem::take(map);
                for (k, mut v) in old {
                    redact_in(secrets, &mut v);
                    map.insert(mask(&k), v);
                }
            } else {
                map.values_mut().for_each(|v| redact_in(secrets, v));
            }
        }
        _ => {}
    }
}

/// A writer for logs that masks the secrets `redactor` knows in each write
/// (the log formatter writes one whole line at a time).
pub struct RedactingWriter<W> {
    redactor: Redactor,
    inner: W,
}

impl<W: std::io::Write> RedactingWriter<W> {
    /// Wrap `inner`.
    pub fn new(redactor: Redactor, inner: W) -> Self {
        RedactingWriter { redactor, inner }
    }
}

impl<W: std::io::Write> std::io::Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.inner
            .write_all(self.redactor.redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_learned_later_is_masked_by_every_clone() {
        let r = Redactor::default();
        let clone = r.clone();
        r.add(&Secret::new("hunter22"));
        assert_eq!(clone.redact("pw=hunter22!"), "pw=********!");
        let mut v = serde_json::json!({"a": ["x hunter22"], "hunter22": 1});
        clone.redact_value(&mut v);
        assert_eq!(v, serde_json::json!({"a": ["x ********"], "********": 1}));
    }

    #[test]
    fn a_longer_secret_is_masked_whole() {
        let r = Redactor::default();
        r.add(&Secret::new("abc"));
        r.add(&Secret::new("abcdef"));
        assert_eq!(r.redact("abcdef abc"), "******** ********");
    }

    #[test]
    fn logs_are_masked_on_their_way_out() {
        use std::io::Write as _;
        let r = Redactor::default();
        r.add(&Secret::new("s3cret!"));
        let mut w = RedactingWriter::new(r, Vec::new());
        w.write_all(b"DEBUG exec password=s3cret!\n")
            .expect("write");
        assert_eq!(w.inner, b"DEBUG exec password=********\n");
    }
}
