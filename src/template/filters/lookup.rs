//! `lookup()` and `query()`/`q()`: Ansible's lookup plugins that read the
//! control machine (templates render there). Supported: `file` (contents,
//! trailing whitespace stripped as Ansible's `rstrip` default) and `env`.

use minijinja::value::{Kwargs, Value};
use minijinja::{Error, ErrorKind};

use super::home_expand;

fn err(msg: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg)
}

/// The values of lookup `name` for `terms`, one per term.
fn run(name: &str, terms: &[Value], kwargs: &Kwargs) -> Result<Vec<Value>, Error> {
    let plugin = name.strip_prefix("ansible.builtin.").unwrap_or(name);
    let mut out = Vec::with_capacity(terms.len());
    match plugin {
        "file" => {
            let rstrip: Option<bool> = kwargs.get("rstrip")?;
            let lstrip: Option<bool> = kwargs.get("lstrip")?;
            for term in terms {
                let path = home_expand(&term.to_string());
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| err(format!("lookup('file'): could not read {path}: {e}")))?;
                let text = if rstrip.unwrap_or(true) {
                    text.trim_end()
                } else {
                    &text
                };
                let text = if lstrip.unwrap_or(false) {
                    text.trim_start()
                } else {
                    text
                };
                out.push(Value::from(text));
            }
        }
        "env" => {
            let default: Option<Value> = kwargs.get("default")?;
            for term in terms {
                match std::env::var(term.to_string()) {
                    Ok(v) => out.push(Value::from(v)),
                    Err(_) => out.push(default.clone().unwrap_or_else(|| Value::from(""))),
                }
            }
        }
        other => return Err(err(format!("lookup plugin '{other}' is not supported"))),
    }
    kwargs.assert_all_used()?;
    Ok(out)
}

/// `lookup('file', a, b)`: the values joined with commas, as Ansible does
/// unless `wantlist=True`.
pub(super) fn lookup(name: String, terms: super::Args, kwargs: Kwargs) -> Result<Value, Error> {
    let wantlist: Option<bool> = kwargs.get("wantlist")?;
    let values = run(&name, &terms, &kwargs)?;
    if wantlist.unwrap_or(false) {
        return Ok(Value::from(values));
    }
    if values.len() == 1 {
        return Ok(values.into_iter().next().unwrap_or_default());
    }
    let joined: Vec<String> = values.iter().map(|v| v.to_string()).collect();
    Ok(Value::from(joined.join(",")))
}

/// `query('file', ...)` / `q(...)`: always a list.
pub(super) fn query(name: String, terms: super::Args, kwargs: Kwargs) -> Result<Value, Error> {
    Ok(Value::from(run(&name, &terms, &kwargs)?))
}

#[cfg(test)]
mod tests {
    use crate::template::Templar;

    fn render(src: &str) -> Result<String, crate::template::TemplateError> {
        let t = Templar::new();
        let scope = t.scope(std::sync::Arc::new(crate::Map::new()), Vec::new());
        t.render_string(src, &scope)
    }

    #[test]
    fn file_lookup_reads_and_strips() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("k.pub");
        std::fs::write(&p, "ssh-ed25519 AAAA me\n\n").expect("write");
        let out =
            render(&format!("[{{{{ lookup('file', '{}') }}}}]", p.display())).expect("renders");
        assert_eq!(out, "[ssh-ed25519 AAAA me]");
        let out = render(&format!(
            "{{{{ query('file', '{}') | length }}}}",
            p.display()
        ))
        .expect("renders");
        assert_eq!(out, "1");
    }

    #[test]
    fn missing_file_names_the_path() {
        let e = render("{{ lookup('file', '/nonexistent/x.pub') }}").expect_err("fails");
        assert!(e.to_string().contains("/nonexistent/x.pub"), "{e}");
    }
}
