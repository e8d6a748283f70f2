//! Jinja's `joiner(sep)` global: a callable that gives nothing the first
//! time and the separator every time after, to join items in a loop.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use minijinja::value::{Object, Value};
use minijinja::{Error, ErrorKind, State};

/// The state of one `joiner()`: has it been called yet?
#[derive(Debug)]
struct Joiner {
    sep: Value,
    used: AtomicBool,
}

impl Object for Joiner {
    fn call(self: &Arc<Self>, _: &mut State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        if !args.is_empty() {
            return Err(Error::new(
                ErrorKind::TooManyArguments,
                "joiner() takes no arguments",
            ));
        }
        if self.used.swap(true, Ordering::Relaxed) {
            Ok(self.sep.clone())
        } else {
            Ok(Value::from(""))
        }
    }
}

/// `joiner(sep=", ")`. The separator is text as written: a template in it
/// stays text (Ansible renders templates only in lookup arguments).
pub(super) fn joiner(sep: Option<Value>) -> Value {
    Value::from_object(Joiner {
        sep: sep.unwrap_or_else(|| Value::from(", ")),
        used: AtomicBool::new(false),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn joiner_gives_the_separator_from_its_second_call() {
        let mut env = minijinja::Environment::new();
        env.add_function("joiner", super::joiner);
        let out = env
            .render_str(
                "{% set j = joiner('{{ x }}') %}{% for i in [1, 2, 3] %}{{ j() }}{{ i }}{% endfor %}",
                (),
            )
            .expect("renders");
        assert_eq!(out, "1{{ x }}2{{ x }}3");
        let out = env
            .render_str("{% set j = joiner() %}{{ j() }}a{{ j() }}b", ())
            .expect("renders");
        assert_eq!(out, "a, b");
    }
}
