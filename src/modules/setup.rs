//! `setup` (ansible.builtin.setup): gather facts as a task. The fact
//! gathering is the play's own (`executor::facts`), in one exec, plus the
//! local facts of `fact_path` (`ansible_local`) when the `local` subset is
//! gathered, as in Ansible's `min` subset.

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use serde::Deserialize;

use super::args::{opt_strings_ish, opt_u64_ish};
use super::{Module, ModuleCtx, ModuleError, Plan, Protocol, ReadCtx};
use crate::executor::facts;
use crate::playbook::FactGroups;
use crate::transport::shell_quote;
use crate::{Map, Value};

/// Arguments of `setup`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Setup {
    /// Fact subsets (`all`, `min`, `network`, `!hardware`, ...).
    #[serde(default, deserialize_with = "opt_strings_ish")]
    gather_subset: Option<Vec<String>>,
    /// Seconds the gathering may take (Ansible's default: 10).
    #[serde(default, deserialize_with = "opt_u64_ish")]
    gather_timeout: Option<u64>,
    /// Globs on the facts' names (`ansible_eth*`, `distribution*`): only
    /// those facts are returned.
    #[serde(default, deserialize_with = "opt_strings_ish")]
    filter: Option<Vec<String>>,
    /// Directory of local facts (`*.fact`: JSON or INI, or a program
    /// printing either).
    #[serde(default)]
    fact_path: Option<String>,
    /// `gather_facts`'s choice of running several fact modules at once:
    /// drover runs only this one, so there is nothing to parallelise.
    #[serde(default)]
    #[allow(dead_code)]
    parallel: Option<Value>,
}

const DEFAULT_FACT_PATH: &str = "/etc/ansible/facts.d";

impl Setup {
    /// drover's fact groups, and whether local facts are read: `local` is
    /// in Ansible's `min` subset, gathered unless `!local` or `!min`.
    fn subsets(&self) -> Result<(FactGroups, bool), ModuleError> {
        let all = self.gather_subset.clone().unwrap_or_default();
        let local = !all.iter().any(|s| matches!(s.trim(), "!local" | "!min"))
            || all.iter().any(|s| s.trim() == "local");
        let rest: Vec<String> = all
            .into_iter()
            .filter(|s| !matches!(s.trim(), "local" | "!local"))
            .collect();
        // Only `local` named: the `min` subset plus local facts.
        let rest = if rest.is_empty() && self.gather_subset.as_ref().is_some_and(|s| !s.is_empty())
        {
            vec!["min".to_string()]
        } else {
            rest
        };
        let groups = FactGroups::from_subsets(&rest).map_err(ModuleError::Args)?;
        Ok((groups, local))
    }
}

/// Prints `@local NAME CONTENT` (both base64) per `*.fact` file of `dir`:
/// the file itself, or what it prints when it is executable.
fn local_script(dir: &str) -> String {
    format!(
        "\nd={}\nif [ -d \"$d\" ]; then for f in \"$d\"/*.fact; do [ -f \"$f\" ] || continue; \
         n=${{f##*/}}; n=${{n%.fact}}; \
         if [ -x \"$f\" ]; then o=$(\"$f\" 2>/dev/null | base64 -w0); else o=$(base64 -w0 < \"$f\"); fi; \
         printf '@local %s %s\\n' \"$(printf %s \"$n\" | base64 -w0)\" \"$o\"; done; fi\n",
        shell_quote(dir)
    )
}

/// The local facts from the script's `@local` lines, and the rest of the
/// output.
fn split_local(out: &str, dir: &str) -> (Map, String) {
    let b64 = |s: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(s.trim())
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    };
    let mut local = Map::new();
    let mut rest = String::with_capacity(out.len());
    for line in out.split_inclusive('\n') {
        let Some(l) = line.strip_prefix("@local ") else {
            rest.push_str(line);
            continue;
        };
        let mut w = l.trim_end().splitn(2, ' ');
        let (Some(name), content) = (w.next().and_then(b64), w.next().and_then(b64)) else {
            continue;
        };
        let value = parse_local(&content.unwrap_or_default()).unwrap_or_else(|| {
            Value::from(format!(
                "error loading facts as JSON or ini - please check content: {dir}/{name}.fact"
            ))
        });
        local.insert(name, value);
    }
    (local, rest)
}

/// A local fact file's content: JSON, else INI (sections of `key=value`).
fn parse_local(text: &str) -> Option<Value> {
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        return Some(v);
    }
    let mut sections = Map::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with(['#', ';']) {
            continue;
        }
        if let Some(s) = t.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            sections
                .entry(s.trim().to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            current = Some(s.trim().to_string());
            continue;
        }
        let (k, v) = t.split_once('=').or_else(|| t.split_once(':'))?;
        let sec = sections.get_mut(current.as_ref()?)?.as_object_mut()?;
        sec.insert(k.trim().to_string(), Value::from(v.trim()));
    }
    (!sections.is_empty()).then_some(Value::Object(sections))
}

/// Shell-style glob match (`*`, `?`, `[...]`), as Python's fnmatch.
fn glob(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    fn class(p: &[char], c: char) -> Option<(bool, usize)> {
        // p starts after '['; returns (matched, length of the class body + ']').
        let mut i = 0;
        let negate = matches!(p.first(), Some('!'));
        if negate {
            i += 1;
        }
        let start = i;
        let mut hit = false;
        while i < p.len() && (p[i] != ']' || i == start) {
            if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
                hit |= p[i] <= c && c <= p[i + 2];
                i += 3;
            } else {
                hit |= p[i] == c;
                i += 1;
            }
        }
        (i < p.len()).then_some((hit != negate, i + 1))
    }
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).any(|k| go(&p[1..], &n[k..])),
            Some('?') => !n.is_empty() && go(&p[1..], &n[1..]),
            Some('[') => match (
                n.first(),
                class(&p[1..], n.first().copied().unwrap_or('\0')),
            ) {
                (Some(_), Some((true, len))) => go(&p[1 + len..], &n[1..]),
                (Some(c), None) => *c == '[' && go(&p[1..], &n[1..]),
                _ => false,
            },
            Some(c) => n.first() == Some(c) && go(&p[1..], &n[1..]),
        }
    }
    go(&p, &n)
}

impl Setup {
    /// The facts as the module returns them: `ansible_`-prefixed names,
    /// only those a `filter` glob matches (with or without the prefix).
    fn result(&self, gathered: Map) -> Map {
        let filters: Vec<&String> = self
            .filter
            .iter()
            .flatten()
            .filter(|f| !f.is_empty())
            .collect();
        let mut facts = Map::new();
        for (k, v) in gathered {
            let name = format!("ansible_{k}");
            if filters.is_empty() || filters.iter().any(|f| glob(f, &name) || glob(f, &k)) {
                facts.insert(name, v);
            }
        }
        let mut data = Map::new();
        data.insert("ansible_facts".into(), Value::Object(facts));
        data
    }
}

#[async_trait]
impl Module for Setup {
    const NAME: &'static str = "setup";
    const ARGS: &'static [&'static str] = &[
        "gather_subset",
        "gather_timeout",
        "filter",
        "fact_path",
        "parallel",
    ];
    type Change = ();

    fn reads(&self, _ctx: &ReadCtx<'_>) -> Result<Protocol, ModuleError> {
        Ok(Protocol::Imperative)
    }

    async fn run_imperative(&self, ctx: &ModuleCtx<'_>) -> Result<Plan<()>, ModuleError> {
        let (groups, local) = self.subsets()?;
        let dir = self.fact_path.as_deref().unwrap_or(DEFAULT_FACT_PATH);
        super::safe::one_line("fact_path", dir)?;
        let mut script = if groups.is_empty() {
            String::new()
        } else {
            facts::script(groups)
        };
        if local {
            script.push_str(&local_script(dir));
        }
        let mut gathered = Map::new();
        if !script.is_empty() {
            let secs = self.gather_timeout.unwrap_or(10).max(1);
            let out =
                tokio::time::timeout(Duration::from_secs(secs), ctx.remote.exec(&script, b""))
                    .await
                    .map_err(|_| {
                        ModuleError::failed(format!(
                            "gathering facts took longer than gather_timeout ({secs} s)"
                        ))
                    })??;
            let (locals, rest) = split_local(&out.stdout_str(), dir);
            if !groups.is_empty() {
                gathered = facts::parse(&rest, groups);
            }
            if local {
                gathered.insert("local".into(), Value::Object(locals));
            }
        }
        Ok(Plan::Unchanged(self.result(gathered)))
    }

    async fn apply(&self, _ctx: &ModuleCtx<'_>, _change: ()) -> Result<Map, ModuleError> {
        Ok(Map::new())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::modules::testutil::{assert_args_complete, run};

    fn setup(args: Value) -> Setup {
        serde_json::from_value(args).expect("args")
    }

    #[test]
    fn args() {
        assert_args_complete::<Setup>();
    }

    #[test]
    fn filter_globs_match_names_with_or_without_the_prefix() {
        let s = setup(json!({"filter": ["ansible_distribution*", "host?ame", "ansible_eth[0-2]"]}));
        let mut g = Map::new();
        for k in [
            "distribution",
            "distribution_release",
            "hostname",
            "eth1",
            "eth3",
            "kernel",
        ] {
            g.insert(k.into(), json!(1));
        }
        let out = s.result(g);
        let mut names: Vec<&String> = out["ansible_facts"]
            .as_object()
            .expect("facts")
            .keys()
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "ansible_distribution",
                "ansible_distribution_release",
                "ansible_eth1",
                "ansible_hostname"
            ]
        );
        assert!(glob("[!a]x", "bx") && !glob("[!a]x", "ax") && glob("a*", "a"));
    }

    #[test]
    fn local_is_gathered_unless_excluded() {
        let sub = |v: Value| {
            setup(json!({"gather_subset": v}))
                .subsets()
                .expect("subsets")
        };
        assert_eq!(sub(json!(["all"])), (FactGroups::ALL, true));
        assert_eq!(sub(json!(["!all"])), (FactGroups::MIN, true));
        assert_eq!(sub(json!(["!all", "!min"])), (FactGroups::NONE, false));
        assert!(!sub(json!(["!all", "!local"])).1);
        assert_eq!(sub(json!(["local"])), (FactGroups::MIN, true));
        assert!(setup(json!({"gather_subset": ["bogus"]}))
            .subsets()
            .is_err());
    }

    #[test]
    fn local_facts_are_json_or_ini() {
        let b = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let out = format!(
            "hostname=x\n@local {} {}\n@local {} {}\n@local {} {}\n",
            b("app"),
            b("{\"v\": 2}"),
            b("ini"),
            b("[general]\nk = v\n"),
            b("bad"),
            b("not facts")
        );
        let (local, rest) = split_local(&out, "/etc/ansible/facts.d");
        assert_eq!(rest, "hostname=x\n");
        assert_eq!(local["app"], json!({"v": 2}));
        assert_eq!(local["ini"], json!({"general": {"k": "v"}}));
        assert!(local["bad"]
            .as_str()
            .is_some_and(|s| s.contains("bad.fact")));
    }

    #[tokio::test]
    async fn gathers_facts_and_local_facts_on_the_local_host() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("app.fact"), "{\"ver\": \"1.2\"}").expect("write");
        let out = run::<Setup>(
            json!({"gather_subset": ["!all"], "fact_path": dir.path().to_str()}),
            false,
        )
        .await
        .expect("setup");
        assert!(!out.changed);
        let f = &out.data["ansible_facts"];
        assert!(
            f["ansible_hostname"]
                .as_str()
                .is_some_and(|h| !h.is_empty()),
            "{f}"
        );
        assert_eq!(f["ansible_local"]["app"]["ver"], json!("1.2"));
    }
}
