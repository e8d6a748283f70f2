//! The names of Ansible's modules, implemented by drover or not.
//!
//! A playbook written for Ansible may name modules drover lacks in tasks
//! that never run here (the `dnf` branch of a multi-distro role). Such a
//! task loads as an action that fails only when it runs on a host; a name
//! that is no Ansible module at all stays a load error, with a suggestion.
//! The list is generated from Ansible's packages by
//! `scripts/gen-module-names` (see `known_names.txt`).

use std::collections::HashMap;
use std::sync::OnceLock;

use futures::future::BoxFuture;

use super::{ModuleCtx, ModuleError, ModuleInfo, Observer, Outcome, Protocol, ReadCtx};
use crate::Value;

/// The collections whose module names drover knows (a play may list
/// them under `collections:`).
pub const COLLECTIONS: &[&str] = &[
    "ansible.builtin",
    "ansible.legacy",
    "ansible.posix",
    "community.general",
    "kubernetes.core",
];

/// Per collection (`ns.col:`), its modules' short names, a line each; then
/// redirected names (`name target`).
const NAMES: &str = include_str!("known_names.txt");

/// Names as a task may write them, mapped to the module's full name.
struct Known {
    /// Full names and redirects (`ansible.posix.mount`, `pacman`,
    /// `community.general.cisco_spark`) to a full name.
    names: HashMap<&'static str, &'static str>,
    /// One action per full name.
    actions: HashMap<&'static str, ModuleInfo>,
}

/// Built on first use: only a playbook naming a module drover lacks (or
/// a misspelled one) pays for it.
static KNOWN: OnceLock<Known> = OnceLock::new();

fn known() -> &'static Known {
    KNOWN.get_or_init(|| {
        let mut names: HashMap<&'static str, &'static str> = HashMap::new();
        let mut actions = HashMap::new();
        let mut redirects = Vec::new();
        let mut collection = "";
        for line in NAMES
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            if let Some((alias, target)) = line.split_once(' ') {
                redirects.push((alias, target));
            } else if let Some(c) = line.strip_suffix(':') {
                collection = c;
            } else {
                // Built once for the life of the process, like the table.
                let full: &'static str = Box::leak(format!("{collection}.{line}").into_boxed_str());
                names.insert(full, full);
                actions.insert(full, unimplemented_info(full));
            }
        }
        for (alias, target) in redirects {
            // A two-part target is the collection of the alias's own name.
            let full = if target.matches('.').count() == 1 {
                let short = alias.rsplit('.').next().unwrap_or(alias);
                format!("{target}.{short}")
            } else {
                target.to_string()
            };
            if let Some(&full) = names.get(full.as_str()) {
                names.insert(alias, full);
            }
        }
        Known { names, actions }
    })
}

/// Is `name` a collection whose module names drover knows (one of the
/// `ansible` package's)?
pub fn is_collection(name: &str) -> bool {
    COLLECTIONS.contains(&name)
        || NAMES
            .lines()
            .any(|l| l.strip_suffix(':').is_some_and(|c| c == name))
}

/// The full name of the Ansible module a task names, as Ansible resolves
/// it: a short name in the play's `collections` first, then among
/// `ansible.builtin` and the names Ansible redirects.
pub fn resolve(name: &str, collections: &[String]) -> Option<&'static str> {
    let k = known();
    if !name.contains('.') {
        for c in collections {
            if let Some(full) = k.names.get(format!("{c}.{name}").as_str()) {
                return Some(full);
            }
        }
    }
    let short = name
        .strip_prefix("ansible.builtin.")
        .or_else(|| name.strip_prefix("ansible.legacy."))
        .unwrap_or(name);
    if !short.contains('.') {
        if let Some(full) = k.names.get(format!("ansible.builtin.{short}").as_str()) {
            return Some(full);
        }
    }
    k.names.get(short).copied()
}

/// The action for a task naming an Ansible module drover does not
/// implement (`None` when the name is no known module). Its arguments are
/// the module's full name: drover does not know the module's own.
pub fn unimplemented(name: &str, collections: &[String]) -> Option<(&'static ModuleInfo, Value)> {
    let full = resolve(name, collections)?;
    let info = known().actions.get(full)?;
    Some((info, Value::String(full.to_string())))
}

/// Is this the action of a module drover does not implement? Cheap when
/// no such action was ever made.
pub fn is_unimplemented(info: &ModuleInfo) -> bool {
    KNOWN.get().is_some_and(|k| {
        k.actions
            .get(info.name)
            .is_some_and(|i| std::ptr::eq(i, info))
    })
}

fn unimplemented_info(name: &'static str) -> ModuleInfo {
    ModuleInfo {
        name,
        args: &[],
        pending: &[],
        free_form: true,
        reads: |_, _: &ReadCtx<'_>| Protocol::Imperative,
        check: |_| Ok(()),
        run: run_unimplemented,
        shows_result: false,
        defines_vars: false,
    }
}

/// The action of a task naming a module of its role's (or playbook's)
/// own `dir` (`library`, `action_plugins`): Python that drover does not
/// run. Its arguments are the message the task fails with when it runs.
pub fn own_plugin(name: &str, dir: &str) -> (&'static ModuleInfo, Value) {
    static OWN: OnceLock<std::sync::Mutex<HashMap<String, &'static ModuleInfo>>> = OnceLock::new();
    let mut own = OWN
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // One leaked entry per distinct name, for the life of the process.
    let info = *own.entry(name.to_string()).or_insert_with(|| {
        let name: &'static str = Box::leak(name.to_string().into_boxed_str());
        Box::leak(Box::new(unimplemented_info(name)))
    });
    let msg = format!(
        "`{name}` is a module of the play's own {dir}/ (Python, which drover does not run)"
    );
    (info, Value::String(msg))
}

/// The message of a task whose module drover lacks, when it runs.
pub fn message(full_name: &str) -> String {
    format!("`{full_name}` is an Ansible module drover does not implement yet")
}

fn run_unimplemented<'a>(
    args: Value,
    _ctx: &'a ModuleCtx<'a>,
    _observer: &'a dyn Observer,
) -> BoxFuture<'a, Result<Outcome, ModuleError>> {
    let name = args.as_str().unwrap_or("this module").to_string();
    // An own plugin's action carries its whole message.
    let msg = if name.contains(' ') {
        name
    } else {
        message(&name)
    };
    Box::pin(async move { Err(ModuleError::failed(msg)) })
}

/// The name closest to a misspelled one: drover's own modules first, then
/// every known Ansible module; `None` when nothing is close.
pub fn suggest(name: &str) -> Option<String> {
    let limit = (name.chars().count() / 4).max(2);
    let closest = |candidates: &mut dyn Iterator<Item = String>| {
        candidates
            .map(|c| (edit_distance(name, &c), c))
            .filter(|(d, _)| *d <= limit)
            .min()
            .map(|(_, c)| c)
    };
    let dotted = name.contains('.');
    let mut own = super::MODULES.iter().map(|m| {
        if dotted {
            format!("ansible.builtin.{}", m.name)
        } else {
            m.name.to_string()
        }
    });
    closest(&mut own).or_else(|| {
        let mut all = known().names.keys().filter_map(|n| {
            let short = n.strip_prefix("ansible.builtin.");
            match (dotted, short) {
                (false, Some(s)) => Some(s.to_string()),
                (false, None) if !n.contains('.') => Some(n.to_string()),
                (true, _) if n.contains('.') => Some(n.to_string()),
                _ => None,
            }
        });
        closest(&mut all)
    })
}

/// Levenshtein distance in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if ca == *cb {
                diag
            } else {
                1 + diag.min(above).min(row[j])
            };
            diag = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_as_ansible_resolves_them() {
        let none: &[String] = &[];
        assert_eq!(resolve("dnf", none), Some("ansible.builtin.dnf"));
        assert_eq!(
            resolve("ansible.legacy.dnf", none),
            Some("ansible.builtin.dnf")
        );
        // Redirected by ansible-core's own routing table.
        assert_eq!(resolve("pacman", none), Some("community.general.pacman"));
        assert_eq!(resolve("firewalld", none), Some("ansible.posix.firewalld"));
        assert_eq!(resolve("k8s", none), Some("kubernetes.core.k8s"));
        assert_eq!(
            resolve("community.general.pacman", none),
            Some("community.general.pacman")
        );
        let cols = vec!["community.general".to_string()];
        assert_eq!(resolve("zypper", &cols), Some("community.general.zypper"));
        assert_eq!(resolve("no_such_module", &cols), None);
        assert_eq!(resolve("community.general.nope", none), None);
    }

    #[test]
    fn every_module_line_gets_an_action_and_every_redirect_a_module() {
        let k = known();
        assert!(k.actions.len() > 600, "{}", k.actions.len());
        for target in k.names.values() {
            assert!(k.actions.contains_key(target), "{target}");
        }
        let (info, args) = unimplemented("pacman", &[]).expect("known");
        assert!(is_unimplemented(info));
        assert_eq!(args, Value::from("community.general.pacman"));
        assert!(!is_unimplemented(&super::super::MODULES[0]));
    }

    #[test]
    fn every_collection_of_the_ansible_package_is_known() {
        let none: &[String] = &[];
        // Once unknown-module load errors (community.grafana roles).
        assert_eq!(
            resolve("community.grafana.grafana_silence", none),
            Some("community.grafana.grafana_silence")
        );
        // A redirect that keeps its name (`ns.col` shorthand in the table).
        assert_eq!(resolve("aci_aep", none), Some("cisco.aci.aci_aep"));
        let cols = vec!["community.grafana".to_string()];
        assert_eq!(
            resolve("grafana_datasource", &cols),
            Some("community.grafana.grafana_datasource")
        );
        assert!(is_collection("community.zabbix"));
        assert!(!is_collection("no.such"));
        // A collection's module is not taken for drover's builtin of the
        // same short name.
        assert!(super::super::lookup("community.grafana.grafana_datasource").is_none());
    }

    #[test]
    fn own_plugins_fail_when_they_run_with_their_message() {
        let (info, args) = own_plugin("test_shell", "action_plugins");
        assert_eq!(info.name, "test_shell");
        let (again, _) = own_plugin("test_shell", "library");
        assert!(std::ptr::eq(info, again));
        let msg = args.as_str().expect("message");
        assert!(msg.contains("own action_plugins/"), "{msg}");
    }

    #[test]
    fn suggestions_prefer_drovers_modules() {
        assert_eq!(suggest("lineinfle").as_deref(), Some("lineinfile"));
        assert_eq!(
            suggest("ansible.builtin.cpoy").as_deref(),
            Some("ansible.builtin.copy")
        );
        assert_eq!(suggest("pacmn").as_deref(), Some("pacman"));
        assert_eq!(
            suggest("community.general.pacmann").as_deref(),
            Some("community.general.pacman")
        );
        assert_eq!(suggest("qqqqqqqqqqqqqq"), None);
    }

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("copy", "copy"), 0);
    }
}
