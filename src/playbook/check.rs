//! Static checks before any connection: template syntax (an error), and
//! variables that nothing in the inventory, the playbook, its roles or the
//! command line could define (a warning: Ansible runs such a playbook and
//! fails the task only if it is reached with the variable still undefined,
//! and playbooks rely on that, e.g. a condition expected to fail under
//! `ignore_errors`). A variable guarded by `is defined` or `default` is never
//! reported; anything that may define variables dynamically (`include_vars`,
//! a templated `vars_files` name) turns the undefined-variable check off.

use std::collections::HashSet;

use regex::Regex;

use super::{Action, Playbook, Task};
use crate::error::{InputError, InputErrorKind, InputErrors};
use crate::inventory::Inventory;
use crate::template::Templar;
use crate::{Map, Value};

/// Names Ansible (and drover) define for every task.
const MAGIC: &[&str] = &[
    "hostvars",
    "vars",
    "groups",
    "group_names",
    "inventory_hostname",
    "inventory_hostname_short",
    "play_hosts",
    "ansible_play_hosts",
    "ansible_play_batch",
    "ansible_play_hosts_all",
    "playbook_dir",
    "role_path",
    "role_name",
    "ansible_check_mode",
    "ansible_diff_mode",
    "omit",
    "item",
    "ansible_loop_var",
    "ansible_loop",
    "ansible_facts",
    "environment",
    "lookup",
    "query",
    "q",
    "range",
    "dict",
    "lipsum",
    "cycler",
    "joiner",
    "namespace",
    "true",
    "false",
    "none",
    "True",
    "False",
    "None",
    "ansible_version",
    "ansible_verbosity",
    "inventory_dir",
    "inventory_file",
    "ansible_run_tags",
    "ansible_skip_tags",
];

struct Checker<'a> {
    templar: &'a Templar,
    known: HashSet<String>,
    dynamic: bool,
    errors: Vec<InputError>,
    warnings: Vec<String>,
}

/// Check every template in the playbook; `extra_vars` are `-e` values.
/// Returns warnings (variables nothing seems to define), or the errors.
pub fn check(
    playbook: &Playbook,
    inventory: &Inventory,
    extra_vars: &Map,
) -> Result<Vec<String>, InputErrors> {
    let templar = Templar::new();
    let mut known: HashSet<String> = MAGIC.iter().map(|s| s.to_string()).collect();
    known.extend(extra_vars.keys().cloned());
    for h in inventory.hosts.values() {
        known.extend(h.vars.keys().cloned());
    }
    for g in inventory.groups.values() {
        known.extend(g.vars.keys().cloned());
    }
    let mut c = Checker {
        templar: &templar,
        known,
        dynamic: false,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    for play in &playbook.plays {
        c.known.extend(play.vars.keys().cloned());
        for (file, _) in &play.vars_files {
            if Templar::is_template(file) {
                c.dynamic = true;
                continue;
            }
            let path = play.dir.join(file);
            match crate::yaml::load_file(&path) {
                Ok(doc) => {
                    if let Value::Object(m) = doc.to_value() {
                        c.known.extend(m.keys().cloned());
                    }
                }
                // A vault file no password opens stops the run here,
                // before any connection, rather than at its play.
                Err(e) if crate::vault::is_encrypted_file(&path) => c.errors.push(e),
                Err(_) => {}
            }
        }
        let all = play
            .pre_tasks
            .iter()
            .chain(&play.tasks)
            .chain(&play.post_tasks)
            .chain(&play.handlers);
        for t in all.clone() {
            c.collect(t);
        }
        for t in all {
            c.check_task(t);
        }
    }
    if c.errors.is_empty() {
        Ok(c.warnings)
    } else {
        Err(InputErrors(c.errors))
    }
}

impl Checker<'_> {
    /// Gather every name the tasks may define.
    fn collect(&mut self, task: &Task) {
        self.known.extend(task.vars.keys().cloned());
        if let Some(r) = &task.register {
            self.known.insert(r.clone());
        }
        if let Some(role) = &task.role {
            self.known.extend(role.defaults.keys().cloned());
            self.known.extend(role.vars.keys().cloned());
        }
        if let Some(lp) = &task.loop_ {
            self.known.insert(lp.loop_var.clone());
            if let Some(i) = &lp.index_var {
                self.known.insert(i.clone());
            }
        }
        match &task.action {
            Action::Module { module, args } if module.defines_vars => {
                if let Some(m) = args.as_object() {
                    self.known.extend(m.keys().cloned());
                    // `set_fact: a=1 b=2` comes as free-form text.
                    if let Some(text) = m.get("_raw_params").and_then(Value::as_str) {
                        if let Ok(kv) = crate::modules::cmdargs::parse_kv(text, true) {
                            self.known.extend(kv.into_iter().map(|(k, _)| k));
                        }
                    }
                }
            }
            Action::IncludeVars { .. } | Action::IncludeTasks { .. } => self.dynamic = true,
            Action::Block {
                block,
                rescue,
                always,
            } => {
                for t in block.iter().chain(rescue).chain(always) {
                    self.collect(t);
                }
            }
            _ => {}
        }
    }

    fn check_task(&mut self, task: &Task) {
        let guards = task.when.join(" ");
        let mut exprs: Vec<&str> = task.when.iter().map(String::as_str).collect();
        for list in [&task.changed_when, &task.failed_when]
            .into_iter()
            .flatten()
        {
            exprs.extend(list.iter().map(String::as_str));
        }
        if let Some(retry) = &task.until {
            exprs.extend(retry.until.iter().map(String::as_str));
        }
        for e in exprs {
            self.check_source(task, e, true, &guards);
        }
        let mut strings = Vec::new();
        if let Some(n) = &task.name {
            strings.push(n.clone());
        }
        match &task.action {
            Action::Module { args, .. } => collect_strings(args, &mut strings),
            Action::IncludeTasks { file, .. } | Action::IncludeVars { file, .. } => {
                strings.push(file.clone())
            }
            Action::Block {
                block,
                rescue,
                always,
            } => {
                for t in block.iter().chain(rescue).chain(always) {
                    self.check_task(t);
                }
            }
            Action::Meta(_) => {}
        }
        // Ansible evaluates `when` before the loop: a loop over something
        // undefined is no error when the task is skipped.
        if let Some(lp) = task.loop_.as_ref().filter(|_| task.when.is_empty()) {
            collect_strings(&lp.items, &mut strings);
        }
        // Keywords rendered at run time.
        let kw = &task.keywords;
        strings.extend(kw.remote_user.iter().chain(&kw.connection).cloned());
        for v in [&kw.port, &kw.throttle, &kw.timeout].into_iter().flatten() {
            collect_strings(v, &mut strings);
        }
        for s in strings.iter().filter(|s| Templar::is_template(s)) {
            self.check_source(task, s, false, &guards);
        }
    }

    fn check_source(&mut self, task: &Task, source: &str, expr: bool, guards: &str) {
        let names = match self.templar.referenced(source, expr) {
            Ok(n) => n,
            Err(e) => {
                self.errors.push(InputError::of(
                    InputErrorKind::Template,
                    task.pos.clone(),
                    format!(
                        "template syntax error in task '{}': {e}",
                        task.display_name()
                    ),
                ));
                return;
            }
        };
        if self.dynamic {
            return;
        }
        for name in names {
            if self.known.contains(&name)
                || name.starts_with("ansible_")
                || guarded(&name, source)
                || guarded(&name, guards)
            {
                continue;
            }
            let warning = format!(
                "{}: undefined variable '{name}' in task '{}': nothing in the inventory, the playbook, its roles or -e defines it (the task fails if it runs with it undefined)",
                task.pos,
                task.display_name()
            );
            if !self.warnings.contains(&warning) {
                self.warnings.push(warning);
            }
        }
    }
}

fn collect_strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|i| collect_strings(i, out)),
        Value::Object(m) => m.values().for_each(|i| collect_strings(i, out)),
        _ => {}
    }
}

/// Is `name` used behind `is defined`/`is undefined`/`default` in `source`?
fn guarded(name: &str, source: &str) -> bool {
    let n = regex::escape(name);
    let patterns = [
        format!(r"\b{n}\b(\.\w+|\[[^\]]*\])*\s+is\s+(not\s+)?(defined|undefined|none)\b"),
        format!(r"\b{n}\b(\.\w+|\[[^\]]*\])*\s*\|\s*(default|d)\b"),
    ];
    patterns
        .iter()
        .any(|p| Regex::new(p).is_ok_and(|re| re.is_match(source)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templated_keyword_values_are_checked_like_arguments() {
        let pb = crate::playbook::load_playbook_str(
            "- hosts: all\n  tasks:\n    - command: id\n      remote_user: \"{{ nobody_defines_me }}\"\n      timeout: \"{{ t | default(5) }}\"\n",
            std::path::Path::new("p.yml"),
        )
        .expect("loads");
        let inv = Inventory::default();
        let warnings = check(&pb, &inv, &Map::new())
            .expect("a warning only")
            .join("\n");
        assert!(
            warnings.contains("undefined variable 'nobody_defines_me'"),
            "{warnings}"
        );
        assert!(!warnings.contains("'t'"), "{warnings}");
    }

    /// Ansible runs a playbook whose condition uses an undefined variable
    /// and fails that task when it runs (the changed_when and failed_when
    /// targets expect exactly that): the static check must not refuse it.
    #[test]
    fn an_undefined_variable_in_a_condition_does_not_refuse_the_playbook() {
        let pb = crate::playbook::load_playbook_str(
            "- hosts: all\n  tasks:\n    - command: id\n      changed_when: boomboomboom\n      ignore_errors: true\n",
            std::path::Path::new("p.yml"),
        )
        .expect("loads");
        let warnings = check(&pb, &Inventory::default(), &Map::new()).expect("runs");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("'boomboomboom'"), "{warnings:?}");
    }

    #[test]
    fn set_fact_key_value_form_defines_its_variables() {
        let pb = crate::playbook::load_playbook_str(
            "- hosts: all\n  tasks:\n    - set_fact: a=1 b=\"x y\"\n    - debug: msg=\"{{ a }} {{ b }}\"\n",
            std::path::Path::new("p.yml"),
        )
        .expect("loads");
        let inv = Inventory::default();
        assert_eq!(check(&pb, &inv, &Map::new()).ok(), Some(Vec::new()));
    }

    #[test]
    fn guards() {
        assert!(guarded("x", "x is defined and x"));
        assert!(guarded("x", "{{ x.y | default('a') }}"));
        assert!(!guarded("x", "{{ x }}"));
        assert!(!guarded("x", "xx is defined"));
    }
}
