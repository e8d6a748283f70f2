//! Playbooks and roles. Loading goes in two steps: YAML nodes (with
//! positions) are checked against the keywords Ansible accepts and turned
//! into typed [`Play`]s and [`Task`]s; roles and `import_tasks` are expanded
//! statically. Every problem is reported with file:line:col before anything
//! runs.

pub mod check;
pub mod keywords;
mod load;
pub mod roles;

use std::path::PathBuf;
use std::sync::Arc;

pub use load::{load_included, load_playbook, load_playbook_str, load_playbook_with};

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
    /// The play's own `tags` (its tasks carry them too).
    pub tags: Vec<String>,
    /// Play variables (`vars`).
    pub vars: Map,
    /// `vars_files`, relative to `dir`.
    pub vars_files: Vec<(String, Pos)>,
    /// The directory of the playbook file the play is written in (an
    /// imported playbook's own).
    pub dir: PathBuf,
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
    /// `gather_subset`: the fact groups gathered.
    pub gather_subset: FactGroups,
    /// `gather_timeout`, in seconds.
    pub gather_timeout: Option<u64>,
    /// `order`: the order hosts run in.
    pub order: HostOrder,
    /// `pre_tasks`.
    pub pre_tasks: Vec<Task>,
    /// Roles' tasks followed by `tasks`.
    pub tasks: Vec<Task>,
    /// `post_tasks`.
    pub post_tasks: Vec<Task>,
    /// Handlers of the play and its roles.
    pub handlers: Vec<Task>,
    /// Roles the play uses itself (`roles:`, `import_role`,
    /// `include_role`), in order: `ansible_play_role_names`.
    pub role_names: Vec<String>,
    /// Roles reached as dependencies: `ansible_dependent_role_names`.
    pub dependent_role_names: Vec<String>,
}

/// Keywords a play, block or task can set and its children inherit.
#[derive(Debug, Clone, Default)]
pub struct Keywords {
    /// `become`.
    pub become_: Option<bool>,
    /// `become_user`.
    pub become_user: Option<String>,
    /// `become_method` (may be templated).
    pub become_method: Option<String>,
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
    /// `connection` (`ssh`, `smart` or `local`; may be templated).
    pub connection: Option<String>,
    /// `port` (may be templated).
    pub port: Option<Value>,
    /// `throttle`: at most this many hosts run the task at once (an
    /// integer or a template).
    pub throttle: Option<Value>,
    /// `timeout`: the task's time limit in seconds (an integer or a
    /// template).
    pub timeout: Option<Value>,
    /// `delegate_facts`: facts a delegated task sets go to the host it
    /// was delegated to.
    pub delegate_facts: Option<bool>,
    /// `async`: the task runs for at most this many seconds (an integer
    /// or a template); a task's own, never inherited.
    pub async_: Option<Value>,
    /// `poll`: 0 leaves an `async` task running in the background.
    pub poll: Option<Value>,
    /// `module_defaults`: module name (as written) → default arguments,
    /// merged under a task's own arguments at load.
    pub module_defaults: Option<Map>,
    /// Boolean keywords written as a template (`become: "{{ k3s_become }}"`):
    /// (keyword, template), rendered for each host when the task runs and
    /// taking precedence over the literal field of the same keyword.
    pub templated: Vec<(&'static str, String)>,
}

/// Ansible's `module_defaults` of a parent and a child: per module, the
/// child's arguments win key by key.
fn merge_module_defaults(parent: &Option<Map>, child: &Option<Map>) -> Option<Map> {
    match (parent, child) {
        (Some(p), Some(c)) => {
            let mut out = p.clone();
            for (name, args) in c {
                match (out.get_mut(name), args) {
                    (Some(Value::Object(old)), Value::Object(new)) => {
                        old.extend(new.clone());
                    }
                    _ => {
                        out.insert(name.clone(), args.clone());
                    }
                }
            }
            Some(out)
        }
        (p, c) => c.clone().or_else(|| p.clone()),
    }
}

impl Keywords {
    /// The defaults `module_defaults` gives a module (`info`'s name or a
    /// name that resolves to it, with or without `ansible.builtin.`),
    /// in the order written, later ones winning. `group/...` names (action
    /// groups of collections) name no module drover implements.
    pub fn defaults_for(&self, info: &'static ModuleInfo) -> Map {
        let mut out = Map::new();
        let short = |n: &str| {
            n.strip_prefix("ansible.builtin.")
                .or_else(|| n.strip_prefix("ansible.legacy."))
                .map(str::to_string)
                .unwrap_or_else(|| n.to_string())
        };
        for (name, args) in self.module_defaults.iter().flatten() {
            let same = match crate::modules::lookup(name) {
                Some(m) => std::ptr::eq(m, info),
                None => short(name) == short(info.name),
            };
            if let (true, Value::Object(args)) = (same, args) {
                out.extend(args.clone());
            }
        }
        out
    }

    /// Does the task ask for a connection of its own (`remote_user`,
    /// `port` or `connection`) rather than the host's usual one?
    pub fn own_connection(&self) -> bool {
        self.remote_user.is_some() || self.port.is_some() || self.connection.is_some()
    }

    /// `self` with `child`'s settings taking precedence.
    pub fn inherit(&self, child: &Keywords) -> Keywords {
        Keywords {
            become_: child.become_.or(self.become_),
            become_user: child
                .become_user
                .clone()
                .or_else(|| self.become_user.clone()),
            become_method: child
                .become_method
                .clone()
                .or_else(|| self.become_method.clone()),
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
            connection: child.connection.clone().or_else(|| self.connection.clone()),
            port: child.port.clone().or_else(|| self.port.clone()),
            throttle: child.throttle.clone().or_else(|| self.throttle.clone()),
            timeout: child.timeout.clone().or_else(|| self.timeout.clone()),
            delegate_facts: child.delegate_facts.or(self.delegate_facts),
            module_defaults: merge_module_defaults(&self.module_defaults, &child.module_defaults),
            async_: child.async_.clone(),
            poll: child.poll.clone(),
            templated: self
                .templated
                .iter()
                .filter(|(k, _)| child.flag(k).is_none() && !child.is_templated(k))
                .chain(&child.templated)
                .cloned()
                .collect(),
        }
    }

    /// Is `keyword` set by a template?
    pub fn is_templated(&self, keyword: &str) -> bool {
        self.templated.iter().any(|(k, _)| *k == keyword)
    }

    /// The literal value of a boolean keyword.
    pub fn flag(&self, keyword: &str) -> Option<bool> {
        self.flag_field(keyword).and_then(|f| *f)
    }

    /// The field of a boolean keyword (`None` for other names).
    fn flag_field(&self, keyword: &str) -> Option<&Option<bool>> {
        Some(match keyword {
            "become" => &self.become_,
            "no_log" => &self.no_log,
            "check_mode" => &self.check_mode,
            "diff" => &self.diff,
            "ignore_errors" => &self.ignore_errors,
            "ignore_unreachable" => &self.ignore_unreachable,
            "run_once" => &self.run_once,
            "any_errors_fatal" => &self.any_errors_fatal,
            "delegate_facts" => &self.delegate_facts,
            _ => return None,
        })
    }

    /// Set a boolean keyword (a rendered template).
    pub fn set_flag(&mut self, keyword: &str, value: bool) {
        let field = match keyword {
            "become" => &mut self.become_,
            "no_log" => &mut self.no_log,
            "check_mode" => &mut self.check_mode,
            "diff" => &mut self.diff,
            "ignore_errors" => &mut self.ignore_errors,
            "ignore_unreachable" => &mut self.ignore_unreachable,
            "run_once" => &mut self.run_once,
            "any_errors_fatal" => &mut self.any_errors_fatal,
            "delegate_facts" => &mut self.delegate_facts,
            _ => return,
        };
        *field = Some(value);
    }
}

/// The boolean keywords, which may also be written as a template.
pub const FLAG_KEYWORDS: &[&str] = &[
    "become",
    "no_log",
    "check_mode",
    "diff",
    "ignore_errors",
    "ignore_unreachable",
    "run_once",
    "any_errors_fatal",
    "delegate_facts",
];

/// A rendered keyword value as a boolean, as Ansible's `boolean()`:
/// yes/no, true/false, on/off, y/n, t/f, 1/0 in any case, numbers, null.
pub fn to_flag(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Null => Some(false),
        Value::Number(n) => n.as_f64().map(|f| f != 0.0),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "yes" | "true" | "on" | "1" | "y" | "t" | "1.0" => Some(true),
            "no" | "false" | "off" | "0" | "n" | "f" | "0.0" | "" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// The order a play's hosts run in (`order`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HostOrder {
    /// As the inventory lists them.
    #[default]
    Inventory,
    /// The inventory's order reversed.
    ReverseInventory,
    /// By name.
    Sorted,
    /// By name, reversed.
    ReverseSorted,
    /// Shuffled for each play.
    Shuffle,
}

impl HostOrder {
    /// The `order` keyword's value.
    pub fn parse(s: &str) -> Option<HostOrder> {
        Some(match s {
            "inventory" => HostOrder::Inventory,
            "reverse_inventory" => HostOrder::ReverseInventory,
            "sorted" => HostOrder::Sorted,
            "reverse_sorted" => HostOrder::ReverseSorted,
            "shuffle" => HostOrder::Shuffle,
            _ => return None,
        })
    }
}

/// The fact groups drover gathers, as chosen by `gather_subset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FactGroups(u8);

impl FactGroups {
    /// Nothing.
    pub const NONE: FactGroups = FactGroups(0);
    /// Host name, kernel, system, architecture (`ansible_hostname`, ...).
    pub const PLATFORM: FactGroups = FactGroups(1);
    /// OS release (`ansible_distribution`, `ansible_os_family`, ...).
    pub const DISTRIBUTION: FactGroups = FactGroups(2);
    /// The remote user (`ansible_user_id`).
    pub const USER: FactGroups = FactGroups(4);
    /// CPUs and memory.
    pub const HARDWARE: FactGroups = FactGroups(8);
    /// The default IPv4 address and interface.
    pub const NETWORK: FactGroups = FactGroups(16);
    /// Ansible's `min` subset, as far as drover gathers it.
    pub const MIN: FactGroups = FactGroups(1 | 2 | 4);
    /// Everything drover gathers.
    pub const ALL: FactGroups = FactGroups(31);

    /// Does this hold every group of `other`?
    pub fn contains(self, other: FactGroups) -> bool {
        self.0 & other.0 == other.0
    }

    /// Is nothing gathered?
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    fn with(self, other: FactGroups) -> FactGroups {
        FactGroups(self.0 | other.0)
    }

    fn without(self, other: FactGroups) -> FactGroups {
        FactGroups(self.0 & !other.0)
    }

    /// The groups a `gather_subset` list selects, with Ansible's rules:
    /// `min` always, plus what is named (everything when nothing is
    /// named), less what is excluded with `!` unless named too. Naming a
    /// subset drover does not gather is an error; excluding one is not.
    pub fn from_subsets(subsets: &[String]) -> Result<FactGroups, String> {
        let subsets: Vec<&str> = if subsets.is_empty() {
            vec!["all"]
        } else {
            subsets.iter().map(|s| s.trim()).collect()
        };
        let mut added = FactGroups::MIN;
        let mut excluded = FactGroups::NONE;
        let mut named = FactGroups::NONE;
        for s in subsets {
            match s.strip_prefix('!') {
                Some("all") => excluded = excluded.with(FactGroups::ALL.without(FactGroups::MIN)),
                Some("min") => excluded = excluded.with(FactGroups::MIN),
                Some(other) => excluded = excluded.with(fact_group(other)?.unwrap_or(FactGroups::NONE)),
                None if s == "all" => {
                    added = added.with(FactGroups::ALL);
                }
                None if s == "min" => {}
                None => match fact_group(s)? {
                    Some(g) => {
                        added = added.with(g);
                        named = named.with(g);
                    }
                    None => {
                        return Err(format!(
                            "gather_subset '{s}' is not supported by drover yet: drover gathers all, min, platform, distribution, user, hardware and network"
                        ))
                    }
                },
            }
        }
        Ok(added.without(excluded.without(named)))
    }
}

/// The drover group an Ansible fact subset falls in: `Some` for the ones
/// drover gathers, `None` for Ansible subsets it does not gather, an
/// error for names Ansible does not know either.
fn fact_group(name: &str) -> Result<Option<FactGroups>, String> {
    Ok(Some(match name {
        "platform" | "architecture" | "kernel" | "machine" | "system" => FactGroups::PLATFORM,
        "distribution"
        | "distribution_major_version"
        | "distribution_release"
        | "distribution_version"
        | "os_family" => FactGroups::DISTRIBUTION,
        "user" | "user_id" => FactGroups::USER,
        // `systemd` (the version fact) is read with the hardware part.
        "hardware" | "processor" | "processor_cores" | "processor_count" | "systemd" => {
            FactGroups::HARDWARE
        }
        "network" | "default_ipv4" => FactGroups::NETWORK,
        "all_ipv4_addresses" | "all_ipv6_addresses" | "apparmor" | "caps" | "chroot"
        | "cmdline" | "date_time" | "default_ipv6" | "devices" | "dns" | "effective_group_ids"
        | "effective_user_id" | "env" | "facter" | "fips" | "interfaces" | "is_chroot"
        | "iscsi" | "local" | "lsb" | "machine_id" | "mounts" | "ohai" | "pkg_mgr"
        | "python" | "python_version" | "real_user_id" | "selinux" | "service_mgr"
        | "ssh_host_pub_keys" | "ssh_pub_keys" | "system_capabilities"
        | "system_capabilities_enforced" | "user_dir" | "user_gecos"
        | "user_gid" | "user_shell" | "user_uid" | "virtual" | "virtualization_role"
        | "virtualization_type" | "loadavg" | "nvme" | "fibre_channel_wwn" | "dmi" => {
            return Ok(None)
        }
        other => {
            return Err(format!(
                "'{other}' is not a fact subset (gather_subset takes all, min, hardware, network, virtual, ... with an optional '!')"
            ))
        }
    }))
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
    /// `with_<lookup>` (other than items, list, dict): the items are what
    /// `query('<lookup>', *terms)` returns.
    pub lookup: Option<String>,
    /// `loop_control.break_when`: conditions checked after each item, with
    /// the item's result registered; the loop stops when they hold.
    pub break_when: Vec<String>,
    /// `loop_control.extended`: `ansible_loop` describes the loop to each item.
    pub extended: bool,
    /// `loop_control.extended_allitems` (default true): `ansible_loop.allitems`.
    pub extended_allitems: bool,
    /// `loop_control.pause`: seconds to wait between two items.
    pub pause: f64,
}

impl Loop {
    /// The variables one item of the loop sees: the loop variable, the
    /// index variable, `ansible_loop_var` and, with `extended`,
    /// `ansible_loop` as Ansible builds it.
    pub fn item_vars(&self, items: &[Value], index: usize) -> Vec<(String, Value)> {
        let item = items.get(index).cloned().unwrap_or(Value::Null);
        let mut extra = vec![(self.loop_var.clone(), item)];
        if let Some(iv) = &self.index_var {
            extra.push((iv.clone(), Value::from(index)));
        }
        extra.push((
            "ansible_loop_var".into(),
            Value::from(self.loop_var.clone()),
        ));
        if self.extended {
            let len = items.len();
            let mut l = Map::new();
            l.insert("index".into(), Value::from(index + 1));
            l.insert("index0".into(), Value::from(index));
            l.insert("first".into(), Value::Bool(index == 0));
            l.insert("last".into(), Value::Bool(index + 1 == len));
            l.insert("length".into(), Value::from(len));
            l.insert("revindex".into(), Value::from(len - index));
            l.insert("revindex0".into(), Value::from(len - index - 1));
            if self.extended_allitems {
                l.insert("allitems".into(), Value::Array(items.to_vec()));
            }
            if let Some(next) = items.get(index + 1) {
                l.insert("nextitem".into(), next.clone());
            }
            if index > 0 {
                l.insert("previtem".into(), items[index - 1].clone());
            }
            extra.push(("ansible_loop".into(), Value::Object(l)));
        }
        extra
    }
}

/// The `with_<lookup>` loops drover runs through its lookup plugins.
pub const WITH_LOOKUPS: &[&str] = &[
    "first_found",
    "fileglob",
    "sequence",
    "together",
    "nested",
    "indexed_items",
    "file",
    "template",
    "pipe",
    "lines",
    "env",
    "unvault",
];

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
        /// File name (template), relative to `base`; empty with `dir`.
        file: String,
        /// Directory the name is relative to.
        base: PathBuf,
        /// The other arguments as written (`dir`, `depth`, `files_matching`,
        /// `ignore_files`, `extensions`, `ignore_unknown_extensions`,
        /// `name`, `hash_behaviour`): an empty mapping for the plain form.
        args: Value,
        /// The directory of the role the task belongs to, if any.
        role_dir: Option<PathBuf>,
    },
    /// `meta`.
    Meta(Meta),
}

/// Ansible's words for a notification no handler answers to.
pub fn missing_handler_msg(name: &str) -> String {
    format!(
        "The requested handler '{name}' was not found in either the main handlers list nor in the listening handlers list"
    )
}

/// `until`, `retries` and `delay` of a task.
#[derive(Debug, Clone)]
pub struct Retry {
    /// The `until` conditions; empty when only `retries` is set, which
    /// retries until the task does not fail (as Ansible does).
    pub until: Vec<String>,
    /// `retries`: a number or a template rendered per host and item;
    /// unset means 3.
    pub retries: Option<Value>,
    /// `delay` in seconds: a number or a template; unset means 5.
    pub delay: Option<Value>,
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
    /// `until` / `retries` / `delay`: run the task again until it is done.
    pub until: Option<Retry>,
    /// Tags of this task and its parents.
    pub tags: Vec<String>,
    /// `vars` of this task and its parents.
    pub vars: Map,
    /// The role this task comes from.
    pub role: Option<Arc<Role>>,
    /// Directories to look up `src` files and templates in.
    pub search: Arc<Vec<PathBuf>>,
    /// `include_tasks` or `include_role` loaded before the run (a block
    /// here): reported as a task of its own, as Ansible reports includes.
    pub include: Option<&'static str>,
}

impl Task {
    /// The name shown in output: `name`, or `role : module`.
    pub fn display_name(&self) -> String {
        let base = match (&self.name, &self.action) {
            (Some(n), _) => n.clone(),
            (None, Action::Module { module, .. }) => module.name.to_string(),
            (None, Action::Block { .. }) => self.include.unwrap_or("block").into(),
            (None, Action::IncludeTasks { .. }) => "include_tasks".into(),
            (None, Action::IncludeVars { .. }) => "include_vars".into(),
            (None, Action::Meta(_)) => "meta".into(),
        };
        match &self.role {
            Some(r) => format!("{} : {}", r.name, base),
            None => base,
        }
    }

    /// Is this the task `--start-at-task NAME` names (by its `name`, or
    /// as `role : name`)?
    pub fn is_named(&self, name: &str) -> bool {
        self.name.as_deref() == Some(name) || (self.name.is_some() && self.display_name() == name)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(list: &[&str]) -> Result<FactGroups, String> {
        FactGroups::from_subsets(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn gather_subset_follows_ansible() {
        assert_eq!(groups(&[]), Ok(FactGroups::ALL));
        assert_eq!(groups(&["all"]), Ok(FactGroups::ALL));
        assert_eq!(groups(&["!all"]), Ok(FactGroups::MIN));
        assert_eq!(groups(&["!all", "!min"]), Ok(FactGroups::NONE));
        let net = groups(&["!all", "!min", "network"]).expect("ok");
        assert_eq!(net, FactGroups::NETWORK);
        // Naming a subset adds it to min, as in Ansible.
        let hw = groups(&["hardware"]).expect("ok");
        assert!(hw.contains(FactGroups::HARDWARE) && hw.contains(FactGroups::MIN));
        assert!(!hw.contains(FactGroups::NETWORK));
        // Excluding what drover never gathers is fine; asking for it is not.
        assert_eq!(groups(&["all", "!virtual", "!facter"]), Ok(FactGroups::ALL));
        let err = groups(&["virtual"]).expect_err("not gathered");
        assert!(err.contains("not supported by drover yet"), "{err}");
        let err = groups(&["bogus"]).expect_err("unknown");
        assert!(err.contains("not a fact subset"), "{err}");
    }
}
