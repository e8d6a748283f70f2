//! `service_facts` (ansible.builtin.service_facts): the host's systemd
//! services as the fact `services`, keyed and shaped as Ansible does
//! (`name.service` → `{name, state, status, source: systemd}`). One
//! declared read: `systemctl list-units`, `list-unit-files`, and the
//! `ActiveState` of the unit files no loaded unit stands for.

use async_trait::async_trait;
use serde::Deserialize;

use super::{
    Decision, Module, ModuleCtx, ModuleError, Observed, Plan, Protocol, ReadCtx, ReadSet, Scope,
};
use crate::{Map, Value};

/// Arguments of `service_facts`: none.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceFacts {}

/// Lists units and unit files between markers; the unit files no listed
/// unit stands for get their `ActiveState` from one `systemctl show`.
const READ: &str = r#"if ! command -v systemctl >/dev/null 2>&1; then echo '@nosystemctl'; exit 0; fi
u=$(systemctl list-units --no-pager --type service --all --plain --no-legend 2>/dev/null)
echo '@units'; printf '%s\n' "$u"
f=$(systemctl list-unit-files --no-pager --type service --all --no-legend 2>/dev/null)
echo '@files'; printf '%s\n' "$f"
l=" $(printf '%s\n' "$u" | awk '{printf "%s ", $1}')"
m=$(printf '%s\n' "$f" | while read -r n s rest; do case "$n" in *.service) case "$l" in *" $n "*) ;; *) printf '%s\n' "$n";; esac;; esac; done)
echo '@show'; if [ -n "$m" ]; then systemctl show --property=Id --property=ActiveState $m 2>/dev/null; fi
echo '@end'
"#;

/// States that name what is wrong with a unit, kept as its status.
const BAD_STATES: [&str; 3] = ["not-found", "masked", "failed"];

fn service(name: &str, state: &str, status: &str) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), Value::from(name));
    m.insert("state".into(), Value::from(state));
    m.insert("status".into(), Value::from(status));
    m.insert("source".into(), Value::from("systemd"));
    Value::Object(m)
}

/// The `services` fact from the read's output; `None` when the host has
/// no systemctl.
fn services(out: &str) -> Result<Option<Map>, super::OutputError> {
    if out.lines().any(|l| l == "@nosystemctl") {
        return Ok(None);
    }
    if !out.lines().any(|l| l == "@end") {
        return Err(super::OutputError::Incomplete);
    }
    let mut part = "";
    let mut services = Map::new();
    let mut shown: Vec<(String, String)> = Vec::new();
    let mut files: Vec<(String, String)> = Vec::new();
    for line in out.lines() {
        if line.starts_with('@') {
            part = line;
            continue;
        }
        match part {
            "@units" if line.contains(".service") => {
                let f: Vec<&str> = line.split_whitespace().collect();
                let [name, _load, active, sub, ..] = f[..] else {
                    return Err(super::OutputError::Malformed(format!(
                        "unexpected list-units line {line:?}"
                    )));
                };
                // A bad state anywhere but the description is the status.
                let status = BAD_STATES
                    .iter()
                    .find(|b| f[..f.len() - 1].contains(b))
                    .copied()
                    .unwrap_or(active);
                let state = if sub == "running" {
                    "running"
                } else {
                    "stopped"
                };
                services.insert(name.to_string(), service(name, state, status));
            }
            "@files" if line.contains(".service") => {
                let mut w = line.split_whitespace();
                match (w.next(), w.next()) {
                    (Some(n), Some(s)) => files.push((n.to_string(), s.to_string())),
                    _ => {
                        return Err(super::OutputError::Malformed(format!(
                            "Malformed output discovered from systemd list-unit-files: {line}"
                        )))
                    }
                }
            }
            "@show" => {
                if let Some(id) = line.strip_prefix("Id=") {
                    shown.push((id.to_string(), "unknown".into()));
                } else if let (Some(s), Some(last)) =
                    (line.strip_prefix("ActiveState="), shown.last_mut())
                {
                    last.1 = s.to_string();
                }
            }
            _ => {}
        }
    }
    for (name, status) in files {
        match services.get_mut(&name).and_then(Value::as_object_mut) {
            Some(s) => {
                if !BAD_STATES.contains(&s["status"].as_str().unwrap_or_default()) {
                    s.insert("status".into(), Value::from(status));
                }
            }
            None => {
                let state = shown
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map_or("unknown", |(_, s)| s.as_str());
                services.insert(name.clone(), service(&name, state, &status));
            }
        }
    }
    Ok(Some(services))
}

#[async_trait]
impl Module for ServiceFacts {
    const NAME: &'static str = "service_facts";
    const ARGS: &'static [&'static str] = &[];
    type Change = ();

    fn reads(&self, _ctx: &ReadCtx<'_>) -> Result<Protocol, ModuleError> {
        Ok(Protocol::Declared(ReadSet::one(READ.into(), Scope::Host)))
    }

    fn decide(&self, observed: &Observed, _ctx: &ReadCtx<'_>) -> Result<Decision<()>, ModuleError> {
        let out = observed.output(0)?;
        let found = super::reads::parse_read(out, "the services", services)?;
        let mut data = Map::new();
        match found.filter(|s| !s.is_empty()) {
            Some(s) => {
                let mut facts = Map::new();
                facts.insert("services".into(), Value::Object(s));
                data.insert("ansible_facts".into(), Value::Object(facts));
            }
            // Ansible's answer when no service manager lists anything.
            None => {
                data.insert("skipped".into(), Value::Bool(true));
                data.insert(
                    "msg".into(),
                    Value::from("Failed to find any services. This can be due to privileges or some other configuration issue."),
                );
            }
        }
        Ok(Decision::Plan(Plan::Unchanged(data)))
    }

    async fn apply(&self, _ctx: &ModuleCtx<'_>, _change: ()) -> Result<Map, ModuleError> {
        Ok(Map::new())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn takes_no_arguments() {
        assert!(serde_json::from_value::<ServiceFacts>(json!({"x": 1})).is_err());
    }

    #[test]
    fn shapes_services_like_ansible() {
        let out = "@units\n\
            ssh.service loaded active running OpenBSD Secure Shell server\n\
            cron.service loaded failed failed Regular background program\n\
            gone.service not-found inactive dead gone.service\n\
            @files\n\
            ssh.service enabled enabled\n\
            cron.service enabled enabled\n\
            nginx.service disabled enabled\n\
            @show\nId=nginx.service\nActiveState=inactive\n@end\n";
        let s = Value::Object(services(out).expect("parse").expect("systemd"));
        assert_eq!(
            s["ssh.service"],
            json!({"name": "ssh.service", "state": "running", "status": "enabled", "source": "systemd"})
        );
        assert_eq!(s["cron.service"]["status"], "failed");
        assert_eq!(s["cron.service"]["state"], "stopped");
        assert_eq!(s["gone.service"]["status"], "not-found");
        assert_eq!(
            s["nginx.service"],
            json!({"name": "nginx.service", "state": "inactive", "status": "disabled", "source": "systemd"})
        );
    }

    #[test]
    fn no_systemctl_is_skipped_and_cut_output_is_an_error() {
        assert_eq!(services("@nosystemctl\n"), Ok(None));
        assert_eq!(
            services("@units\n"),
            Err(crate::modules::OutputError::Incomplete)
        );
    }
}
