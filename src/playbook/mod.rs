//! Playbooks and roles. Loading goes in two steps: YAML nodes (with
//! positions) are checked against the keywords Ansible accepts and turned
//! into typed [`Play`]s and [`Task`]s; roles and `import_tasks` are expanded
//! statically. Every problem is reported with file:line:col before anything
//! runs.

pub mod check;
mod load;

use std::path::PathBuf;
use std::sync::Arc;

pub use load::{load_included, load_playbook, load_playbook_str, parse_kv};

use crate::error::Pos;
use crate::modules::ModuleInfo;
use crate::{Map, Value};

/// A loaded playbook.
#[derive(Debug)]
pub struct Playbook {
    /// The playbook file.
    pub path: PathBuf,
    /// Its directory (roles/, files/, templates/, group_vars/ are found here).
    pub dir: PathBuf,
    /// Plays in order.
    pub plays: Vec<Play>,
}

/// How many hosts run a play at once (`serial`).
#[derive(Debug, Clone, PartialEq)]
pub enum Serial {
    /// A number of hosts.
    Count(usize),
    /// A percentage of the play's hosts.
    Percent(f64),
}

/// One play.
#[derive(Debug)]
pub struct Play {
    /// Where the play starts.
    pub pos: Pos,
    /// `name`, or the host pattern.
    pub name: String,
    /// Host pattern.
    pub hosts: String,
    /// Play variables (`vars`).
    pub vars: Map,
    /// `vars_files`, relative to the playbook's directory.
    pub vars_files: Vec<(String, Pos)>,
    /// Shared task keywords set on the play (become, environment, ...).
    pub keywords: Keywords,
    /// `gather_facts` (default true).
    pub gather_facts: bool,
    /// `serial` batches; empty means all hosts at once. The last entry
    /// repeats.
    pub serial: Vec<Serial>,
    /// `any_errors_fatal`.
    pub any_errors_fatal: bool,
    /// `max_fail_percentage`.
    pub max_fail_percentage: Option<f64>,
    /// `pre_tasks`.
    pub pre_tasks: Vec<Task>,
    /// Roles' tasks followed by `tasks`.
    pub tasks: Vec<Task>,
    /// `post_tasks`.
    pub post_tasks: Vec<Task>,
    /// Handlers of the play and its roles.
    pub handlers: Vec<Task>,
}

/// Keywords a play, block or task can set and its children inherit.
#[derive(Debug, Clone, Default)]
pub struct Keywords {
    /// `become`.
    pub become_: Option<bool>,
    /// `become_user`.
    pub become_user: Option<String>,
    /// `environment`, a mapping (may be templated).
    pub environment: Option<Value>,
    /// `no_log`.
    pub no_log: Option<bool>,
    /// `check_mode`: force check mode on (true) or off (false).
    pub check_mode: Option<bool>,
    /// `diff`.
    pub diff: Option<bool>,
    /// `ignore_errors`.
    pub ignore_errors: Option<bool>,
    /// `ignore_unreachable`.
    pub ignore_unreachable: Option<bool>,
    /// `run_once`.
    pub run_once: Option<bool>,
    /// `delegate_to`.
    pub delegate_to: Option<String>,
    /// `remote_user`.
    pub remote_user: Option<String>,
    /// `any_errors_fatal` on a block or task.
    pub any_errors_fatal: Option<bool>,
}

impl Keywords {
    /// `self` with `child`'s settings taking precedence.
    pub fn inherit(&self, child: &Keywords) -> Keywords {
        Keywords {
            become_: child.become_.or(self.become_),
            become_user: child
                .become_user
                .clone()
                .or_else(|| self.become_user.clone()),
            environment: match (&self.environment, &child.environment) {
                (Some(Value::Object(a)), Some(Value::Object(b))) => {
                    let mut m = a.clone();
                    m.extend(b.clone());
                    Some(Value::Object(m))
                }
                (a, b) => b.clone().or_else(|| a.clone()),
            },
            no_log: child.no_log.or(self.no_log),
            check_mode: child.check_mode.or(self.check_mode),
            diff: child.diff.or(self.diff),
            ignore_errors: child.ignore_errors.or(self.ignore_errors),
            ignore_unreachable: child.ignore_unreachable.or(self.ignore_unreachable),
            run_once: child.run_once.or(self.run_once),
            delegate_to: child
                .delegate_to
                .clone()
                .or_else(|| self.delegate_to.clone()),
            remote_user: child
                .remote_user
                .clone()
                .or_else(|| self.remote_user.clone()),
            any_errors_fatal: child.any_errors_fatal.or(self.any_errors_fatal),
        }
    }
}

/// A role as its tasks see it.
#[derive(Debug)]
pub struct Role {
    /// Role name.
    pub name: String,
    /// The role's directory.
    pub dir: PathBuf,
    /// `defaults/main.yml`.
    pub defaults: Map,
    /// `vars/main.yml`, plus the parameters given where the role is used.
    pub vars: Map,
}

/// A loop over items.
#[derive(Debug, Clone)]
pub struct Loop {
    /// The list, or a template producing it.
    pub items: Value,
    /// `with_items` flattens one level; `loop` does not.
    pub flatten: bool,
    /// `with_dict`: a mapping turned into `{key, value}` items.
    pub dict: bool,
    /// `loop_control.loop_var` (default `item`).
    pub loop_var: String,
    /// `loop_control.index_var`.
    pub index_var: Option<String>,
    /// `loop_control.label`.
    pub label: Option<String>,
}

/// `meta:` actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meta {
    /// Run notified handlers now.
    FlushHandlers,
    /// Stop the play for all hosts.
    EndPlay,
    /// Stop the play for this host.
    EndHost,
    /// Nothing.
    Noop,
    /// Forget gathered facts.
    ClearFacts,
}

/// What a task does.
#[derive(Debug, Clone)]
pub enum Action {
    /// Run a module with arguments (strings may be templates).
    Module {
        /// The module.
        module: &'static ModuleInfo,
        /// Its arguments.
        args: Value,
    },
    /// `block` with `rescue` and `always`.
    Block {
        /// Tasks tried first.
        block: Vec<Task>,
        /// Run on hosts that failed in `block`.
        rescue: Vec<Task>,
        /// Run on every host that entered the block.
        always: Vec<Task>,
    },
    /// `include_tasks`: a file loaded when reached (its name may be a template).
    IncludeTasks {
        /// File name (template), relative to `base`.
        file: String,
        /// Directory the name is relative to.
        base: PathBuf,
        /// The role the include belongs to, if any.
        role: Option<Arc<Role>>,
    },
    /// `include_vars`: a YAML file of variables loaded on the host.
    IncludeVars {
        /// File name (template), relative to `base`.
        file: String,
        /// Directory the name is relative to.
        base: PathBuf,
    },
    /// `meta`.
    Meta(Meta),
}

/// One task (or block).
#[derive(Debug, Clone)]
pub struct Task {
    /// Where the task starts.
    pub pos: Pos,
    /// `name`.
    pub name: Option<String>,
    /// What it does.
    pub action: Action,
    /// Inherited and own keywords, already merged.
    pub keywords: Keywords,
    /// `when` conditions of this task and its parents (all must hold).
    pub when: Vec<String>,
    /// `loop` / `with_*`.
    pub loop_: Option<Loop>,
    /// `register`.
    pub register: Option<String>,
    /// `notify`.
    pub notify: Vec<String>,
    /// `listen` (handlers).
    pub listen: Vec<String>,
    /// `changed_when`.
    pub changed_when: Option<Vec<String>>,
    /// `failed_when`.
    pub failed_when: Option<Vec<String>>,
    /// `until` with `retries` and `delay`.
    pub until: Option<(Vec<String>, u32, f64)>,
    /// Tags of this task and its parents.
    pub tags: Vec<String>,
    /// `vars` of this task and its parents.
    pub vars: Map,
    /// The role this task comes from.
    pub role: Option<Arc<Role>>,
    /// Directories to look up `src` files and templates in.
    pub search: Arc<Vec<PathBuf>>,
}

impl Task {
    /// The name shown in output: `name`, or `role : module`.
    pub fn display_name(&self) -> String {
        let base = match (&self.name, &self.action) {
            (Some(n), _) => n.clone(),
            (None, Action::Module { module, .. }) => module.name.to_string(),
            (None, Action::Block { .. }) => "block".into(),
            (None, Action::IncludeTasks { file, .. }) => format!("include_tasks {file}"),
            (None, Action::IncludeVars { file, .. }) => format!("include_vars {file}"),
            (None, Action::Meta(_)) => "meta".into(),
        };
        match &self.role {
            Some(r) => format!("{} : {}", r.name, base),
            None => base,
        }
    }

    /// Is this task selected by `--tags`/`--skip-tags`?
    pub fn selected(&self, tags: &[String], skip: &[String]) -> bool {
        let has = |t: &str| self.tags.iter().any(|x| x == t);
        if skip
            .iter()
            .any(|s| has(s) || (s == "all" && !has("always")))
        {
            return false;
        }
        if has("never") && !tags.iter().any(|t| has(t) && t != "never") {
            return false;
        }
        if tags.is_empty() || tags.iter().any(|t| t == "all") {
            return true;
        }
        has("always")
            || tags.iter().any(|t| {
                has(t)
                    || (t == "tagged" && !self.tags.is_empty())
                    || (t == "untagged" && self.tags.is_empty())
            })
    }
}
