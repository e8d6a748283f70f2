//! Variables rendered only as far as a template uses them, as Ansible 2.19
//! renders them: a list or mapping variable holding templates is a lazy
//! container whose items are rendered when they are read, and a variable
//! that is one `{{ expression }}` is that expression's value as it is (a
//! lazy container stays lazy through any number of such indirections).
//! Whatever leaves the template engine (a task's argument, a registered
//! value) is serialised, which renders everything it holds then.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use minijinja::value::{Enumerator, Object, ObjectRepr};

use super::{contains_template, lock, single_expression, ScopeInner, Templar, TemplateError};
use crate::Value;

/// A list or mapping variable with templates in it, rendered item by item.
#[derive(Debug)]
pub(super) struct Lazy {
    /// The container as written.
    raw: Value,
    /// Where it came from (`var.key[1]`), for errors.
    name: String,
    /// Weak: the scope caches its variables, this among them.
    scope: Weak<ScopeInner>,
    /// Items already rendered, by key (or index).
    done: Mutex<HashMap<String, minijinja::Value>>,
}

impl ScopeInner {
    /// The template value of `raw`, a variable (or a lazy container's
    /// item) as written, named `name`.
    pub(super) fn materialize(
        self: &Arc<Self>,
        raw: &Value,
        name: &str,
    ) -> Result<minijinja::Value, TemplateError> {
        match raw {
            Value::String(s) if Templar::is_template(s) => match single_expression(s) {
                Some(expr) => {
                    // An indirection to a lazy container is that container;
                    // any other value is plain data, as it always was.
                    let v = self.eval_raw(expr)?;
                    if v.downcast_object_ref::<Lazy>().is_some() {
                        Ok(v)
                    } else {
                        self.plain(&v, expr).map(super::to_value)
                    }
                }
                None => self.render_value(raw).map(super::to_value),
            },
            Value::Array(_) | Value::Object(_) if !contains_template(raw) => {
                Ok(super::to_value(raw))
            }
            // Vault envelopes and mappings with templated keys: rendered
            // whole, as before.
            Value::Object(map)
                if crate::vault::marker_text(map).is_some()
                    || map.keys().any(|k| Templar::is_template(k)) =>
            {
                self.render_value(raw).map(super::to_value)
            }
            Value::Array(_) | Value::Object(_) => Ok(minijinja::Value::from_object(Lazy {
                raw: raw.clone(),
                name: name.to_string(),
                scope: Arc::downgrade(self),
                done: Mutex::new(HashMap::new()),
            })),
            other => Ok(super::to_value(other)),
        }
    }
}

impl Lazy {
    /// The item at `key` as written, with its cache key and its name.
    fn item(&self, key: &minijinja::Value) -> Option<(String, &Value, String)> {
        match &self.raw {
            Value::Object(map) => {
                let k = key.as_str()?;
                Some((k.to_string(), map.get(k)?, format!("{}.{k}", self.name)))
            }
            Value::Array(items) => {
                let i = key.as_i64()?;
                let len = i64::try_from(items.len()).ok()?;
                let i = usize::try_from(if i < 0 { len + i } else { i }).ok()?;
                Some((i.to_string(), items.get(i)?, format!("{}[{i}]", self.name)))
            }
            _ => None,
        }
    }
}

impl Object for Lazy {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        match self.raw {
            Value::Array(_) => ObjectRepr::Seq,
            _ => ObjectRepr::Map,
        }
    }

    fn get_value(self: &Arc<Self>, key: &minijinja::Value) -> Option<minijinja::Value> {
        let (cache_key, raw, name) = self.item(key)?;
        if let Some(v) = lock(&self.done).get(&cache_key) {
            return Some(v.clone());
        }
        let Some(scope) = self.scope.upgrade() else {
            return Some(super::to_value(raw));
        };
        if lock(&scope.error).is_some() {
            return None;
        }
        match scope.materialize(raw, &name) {
            Ok(v) => {
                lock(&self.done).insert(cache_key, v.clone());
                Some(v)
            }
            Err(e) => {
                let mut slot = lock(&scope.error);
                if slot.is_none() {
                    *slot = Some(TemplateError {
                        msg: format!("in variable '{name}': {e}"),
                        undefined: e.undefined.clone(),
                        chainable: e.chainable,
                    });
                }
                None
            }
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        match &self.raw {
            Value::Array(items) => Enumerator::Seq(items.len()),
            Value::Object(map) => Enumerator::Values(
                map.keys()
                    .map(|k| minijinja::Value::from(k.as_str()))
                    .collect(),
            ),
            _ => Enumerator::Empty,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use crate::template::Templar;

    fn scope(t: &Templar, v: serde_json::Value) -> crate::template::Scope {
        let serde_json::Value::Object(map) = v else {
            panic!("vars must be a mapping")
        };
        t.scope(Arc::new(map), Vec::new())
    }

    #[test]
    fn nested_templates_render_only_where_read() {
        let t = Templar::new();
        let s = scope(
            &t,
            json!({
                "top": "{{ middle }}",
                "middle": "{{ lowest }}",
                "lowest": {"used": "static", "deeper": {"unused": "{{ undefined_var }}"}},
                "list": ["{{ 1 + 1 }}", "{{ nope }}"],
            }),
        );
        assert_eq!(t.eval("top.used", &s).expect("a value"), json!("static"));
        assert_eq!(
            t.eval("top.deeper | length", &s).expect("a value"),
            json!(1)
        );
        assert_eq!(t.eval("list[0]", &s).expect("a value"), json!(2));
        assert_eq!(t.eval("list[-2] + 1", &s).expect("a value"), json!(3));
        assert_eq!(
            t.eval("top | type_debug", &s).expect("a value"),
            json!("dict")
        );
        // Whatever leaves the engine is rendered whole.
        let err = t.eval("top", &s).expect_err("an error");
        assert!(err.to_string().contains("undefined_var"), "{err}");
        let err = t.render_string("{{ list[1] }}", &s).expect_err("an error");
        assert_eq!(err.undefined.as_deref(), Some("nope"));
    }

    #[test]
    fn lazy_containers_compare_equal_to_their_rendered_values() {
        let t = Templar::new();
        let s = scope(
            &t,
            json!({
                "scalar": "i am a scalar",
                "dict_yaml": {"scalar_ref": "{{ scalar }}"},
                "list_yaml": ["{{ scalar }}"],
                "dict_jinja": "{{ {'scalar_ref': scalar} }}",
            }),
        );
        for cond in [
            "dict_yaml == {'scalar_ref': 'i am a scalar'}",
            "dict_jinja == dict_yaml",
            "list_yaml == ['i am a scalar']",
            "'scalar_ref' in dict_yaml",
            "'i am a scalar' in list_yaml",
            "dict_yaml | dict2items | length == 1",
        ] {
            assert!(t.truthy(cond, &s).expect("a value"), "{cond}");
        }
        assert_eq!(
            t.eval("dict_yaml", &s).expect("a value"),
            json!({"scalar_ref": "i am a scalar"})
        );
    }

    #[test]
    fn vars_is_every_variable_unless_one_is_named_vars() {
        let t = Templar::new();
        let s = scope(&t, json!({"a": 1, "b": "{{ a + 1 }}"}));
        assert_eq!(
            t.eval("vars", &s).expect("a value"),
            json!({"a": 1, "b": 2})
        );
        assert_eq!(t.eval("vars.b", &s).expect("a value"), json!(2));
        let s = scope(&t, json!({"vars": "mine"}));
        assert_eq!(t.eval("vars", &s).expect("a value"), json!("mine"));
    }

    #[test]
    fn recursion_error_is_worded_as_ansible_words_it() {
        let t = Templar::new();
        let s = scope(&t, json!({"cycle": "{{ cycle }}"}));
        let err = t.render_string("x {{ cycle }}", &s).expect_err("an error");
        assert!(
            err.msg.contains("Recursive loop detected in template"),
            "{err}"
        );
    }
}
