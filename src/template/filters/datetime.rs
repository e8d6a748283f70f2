//! Ansible's `now(utc=False, fmt=None)` global: the current time, as a
//! string formatted with Python's `strftime` codes when `fmt` is given, else
//! as a value with Python `datetime`'s attributes and its `strftime`,
//! `timestamp` and `isoformat` methods.

use std::fmt;
use std::sync::Arc;

use chrono::format::{Item, StrftimeItems};
use chrono::{Datelike as _, Local, NaiveDateTime, TimeZone as _, Timelike as _, Utc};
use minijinja::value::{Object, ObjectRepr, Value};
use minijinja::{Error, State};

use super::{err, Args, Params};

/// A naive `datetime`, as Python's `datetime.now()` returns.
#[derive(Debug)]
struct DateTime(NaiveDateTime);

/// `now(utc=False, fmt=None)`.
pub(super) fn now(_: &State, args: Args) -> Result<Value, Error> {
    let p = Params::bind("now", &args, &["utc", "fmt"])?;
    let t = if p.truthy("utc", false) {
        Utc::now().naive_utc()
    } else {
        Local::now().naive_local()
    };
    match p.some("fmt").filter(|f| f.is_true()) {
        Some(f) => strftime(&t, &super::text(f)).map(Value::from),
        None => Ok(Value::from_object(DateTime(t))),
    }
}

/// Python's `strftime`: chrono's codes are the C ones Python passes on, but
/// its `%f` is nanoseconds where Python's is microseconds.
fn strftime(t: &NaiveDateTime, fmt: &str) -> Result<String, Error> {
    let mut chrono_fmt = String::with_capacity(fmt.len());
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        chrono_fmt.push(c);
        if c == '%' {
            match chars.next() {
                Some('f') => chrono_fmt.push_str("6f"),
                Some(n) => chrono_fmt.push(n),
                None => {}
            }
        }
    }
    let items: Vec<Item> = StrftimeItems::new(&chrono_fmt).collect();
    if items.iter().any(|i| matches!(i, Item::Error)) {
        return Err(err(format!("strftime: invalid format {fmt:?}")));
    }
    Ok(t.format_with_items(items.into_iter()).to_string())
}

impl DateTime {
    /// Python's `timestamp()`: a naive datetime is taken as local time.
    fn timestamp(&self) -> f64 {
        let local = Local
            .from_local_datetime(&self.0)
            .earliest()
            .map_or_else(|| self.0.and_utc().timestamp(), |d| d.timestamp());
        local as f64 + f64::from(self.0.and_utc().timestamp_subsec_micros()) / 1e6
    }
}

impl Object for DateTime {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let t = &self.0;
        Some(Value::from(match key.as_str()? {
            "year" => t.year(),
            "month" => i32::try_from(t.month()).ok()?,
            "day" => i32::try_from(t.day()).ok()?,
            "hour" => i32::try_from(t.hour()).ok()?,
            "minute" => i32::try_from(t.minute()).ok()?,
            "second" => i32::try_from(t.second()).ok()?,
            "microsecond" => i32::try_from(t.and_utc().timestamp_subsec_micros()).ok()?,
            _ => return None,
        }))
    }

    fn call_method(
        self: &Arc<Self>,
        _: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let args = Args(args.to_vec());
        match method {
            "strftime" => {
                let p = Params::bind("strftime", &args, &["format"])?;
                let f = p
                    .some("format")
                    .ok_or_else(|| err("strftime needs a format"))?;
                strftime(&self.0, &super::text(f)).map(Value::from)
            }
            "timestamp" => {
                Params::bind("timestamp", &args, &[])?;
                Ok(Value::from(self.timestamp()))
            }
            "isoformat" => {
                Params::bind("isoformat", &args, &[])?;
                Ok(Value::from(self.iso('T')))
            }
            _ => Err(Error::from(minijinja::ErrorKind::UnknownMethod)),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.iso(' '))
    }
}

impl DateTime {
    /// Python's `isoformat(sep)`: microseconds only when not zero.
    fn iso(&self, sep: char) -> String {
        let micros = self.0.and_utc().timestamp_subsec_micros();
        let base = self.0.format(&format!("%Y-%m-%d{sep}%H:%M:%S")).to_string();
        if micros == 0 {
            base
        } else {
            format!("{base}.{micros:06}")
        }
    }
}

#[cfg(test)]
mod tests {
    use minijinja::Environment;

    fn render(template: &str) -> String {
        let mut env = Environment::new();
        super::super::register(&mut env);
        env.render_str(template, ())
            .unwrap_or_else(|e| panic!("{template}: {e:#}"))
    }

    /// `now` was an unknown function: the loops target times its pauses
    /// with `now(fmt='%s.%f')`.
    #[test]
    fn now_formats_with_python_strftime_codes() {
        let out = render("{{ now(fmt='%s.%f') }}");
        let (secs, micros) = out.split_once('.').unwrap_or(("", ""));
        assert!(
            secs.parse::<i64>().is_ok_and(|s| s > 1_600_000_000),
            "{out}"
        );
        assert_eq!(micros.len(), 6, "{out}");
        assert!(render("{{ now(true, '%Y') }}").parse::<i32>().is_ok());
        assert!(render("{{ now(utc=true, fmt='%Y-%m-%d') }}").len() == 10);
    }

    #[test]
    fn now_without_fmt_is_a_datetime() {
        let out = render("{{ now().year }} {{ now(utc=True).strftime('%H:%M') | length }}");
        let (year, len) = out.split_once(' ').unwrap_or(("", ""));
        assert!(year.parse::<i32>().is_ok_and(|y| y >= 2024), "{out}");
        assert_eq!(len, "5");
        let ts: f64 = render("{{ now().timestamp() }}").parse().unwrap_or(0.0);
        assert!(ts > 1.6e9, "{ts}");
        let shown = render("{{ now() }}");
        assert_eq!(&shown[4..5], "-", "{shown}");
        assert_eq!(&shown[10..11], " ", "{shown}");
    }
}
