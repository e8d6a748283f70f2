//! Ansible-style inventories: YAML (`all`, `children`, `hosts`, `vars`) and
//! INI (`[group]`, `[group:vars]`, `[group:children]`) files or directories of
//! them, `group_vars/` and `host_vars/` beside the inventory and the playbook
//! with Ansible's precedence, host patterns (`a:b`, `a:&b`, `a:!b`, globs,
//! `~regex`, subscripts), and the views `ansible-inventory` prints.
//!
//! Loading happens in two steps: the parsers (`yaml_inv.rs`, `ini.rs`) fill a
//! `Builder` that records groups, hosts and inventory-file variables as
//! written; `Builder::finish` then closes the group graph (implicit `all`
//! and `ungrouped`, depths, ancestors), and the variable layers are merged
//! into every host's variables.

mod added;
mod builder;
mod ini;
mod literal;
mod pattern;
pub(crate) use pattern::glob_to_regex;
mod range;
mod ssh_args;
mod vars_files;
mod yaml_inv;

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use crate::error::Pos;
use crate::error::{InputError, InputErrors};
use crate::{Map, Value};

use builder::Builder;
pub use pattern::PatternError;
pub use ssh_args::{ssh_args_options, ProxyOpt, SshArgOptions};
use vars_files::VarsDir;

/// The names Ansible treats as the control machine when they are not in the
/// inventory (`hosts: localhost` then runs locally).
pub const LOCALHOST_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// A loaded inventory.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// Hosts in the order they first appear.
    pub hosts: IndexMap<String, Host>,
    /// Groups in the order they first appear (`all` first, `ungrouped` second).
    pub groups: IndexMap<String, Group>,
    /// The inventory sources (files, directories or `a,b,` host lists) as
    /// given, in load order.
    pub sources: Vec<PathBuf>,
    /// Variable layers kept so that [`Inventory::add_playbook_vars`] can
    /// recompute every host's variables.
    layers: Layers,
}

/// One host.
#[derive(Debug, Clone, Default)]
pub struct Host {
    /// Inventory name.
    pub name: String,
    /// Every group the host belongs to, ancestors included: `all` first, then
    /// the others in the order their variables apply (depth, then
    /// `ansible_group_priority`, then name). Empty for the implicit localhost.
    pub groups: Vec<String>,
    /// Variables from the inventory with Ansible's precedence applied
    /// (inventory files, `group_vars/`, `host_vars/`; no magic variables).
    pub vars: Map,
    /// Where the host first appears (None for the implicit localhost).
    pub defined_at: Option<Pos>,
}

/// One group.
#[derive(Debug, Clone, Default)]
pub struct Group {
    /// Group name.
    pub name: String,
    /// Hosts listed directly in the group.
    pub hosts: Vec<String>,
    /// Child groups.
    pub children: Vec<String>,
    /// The group's own variables from the inventory file (not `group_vars/`).
    pub vars: Map,
    /// Parent groups (`all` for top-level groups; empty for `all`).
    pub parents: Vec<String>,
    /// Longest distance from `all` (`all` is 0, its children 1, ...).
    pub depth: usize,
    /// `ansible_group_priority` (default 1): among groups of equal depth, a
    /// higher priority applies later and so wins.
    pub priority: i64,
    /// Where the group first appears (None for implicit `all`/`ungrouped`).
    pub defined_at: Option<Pos>,
}

/// The variable layers other than inventory-file group variables (those live
/// in [`Group::vars`]).
#[derive(Debug, Clone, Default)]
struct Layers {
    /// Host variables written in the inventory files.
    host_file: IndexMap<String, Map>,
    /// `group_vars/` and `host_vars/` beside each inventory source.
    inventory: Vec<VarsDir>,
    /// `group_vars/` and `host_vars/` beside the playbook.
    playbook: Option<VarsDir>,
}

impl Inventory {
    /// Load an inventory source plus `group_vars/` and `host_vars/` beside it.
    ///
    /// The source is a YAML or INI file, a directory of them (loaded in name
    /// order, `group_vars/` and `host_vars/` inside it), or, when no such
    /// path exists and it contains a comma, a host list such as `a,b,`.
    pub fn load(path: &Path) -> Result<Inventory, InputErrors> {
        Inventory::load_sources(&[path.to_path_buf()])
    }

    /// Load several inventory sources into one inventory, like repeated `-i`.
    /// Every error of every source is reported.
    pub fn load_sources(paths: &[PathBuf]) -> Result<Inventory, InputErrors> {
        let mut builder = Builder::new();
        let mut var_dirs = Vec::new();
        for path in paths {
            builder.load_source(path);
            if path.exists() {
                let base = if path.is_dir() {
                    path.clone()
                } else {
                    path.parent().map(Path::to_path_buf).unwrap_or_default()
                };
                var_dirs.push(base);
            }
        }
        let mut errors = std::mem::take(&mut builder.errors);
        let mut inv = builder.finish();
        inv.sources = paths.to_vec();
        for base in var_dirs {
            let dir = VarsDir::load(&base, &inv, &mut errors);
            inv.layers.inventory.push(dir);
        }
        if !errors.is_empty() {
            return Err(InputErrors(errors));
        }
        inv.recompute_vars();
        Ok(inv)
    }

    /// Parse inventory text as if it were the file `path` (the format comes
    /// from its extension or, without one, the content); no `group_vars/`
    /// are read. Meant for tests
    /// and for inventories given inline.
    pub fn from_str(text: &str, path: &Path) -> Result<Inventory, InputErrors> {
        let mut builder = Builder::new();
        builder.load_text(text, path, path.extension().and_then(|e| e.to_str()));
        let errors = std::mem::take(&mut builder.errors);
        let mut inv = builder.finish();
        if !errors.is_empty() {
            return Err(InputErrors(errors));
        }
        inv.sources = vec![path.to_path_buf()];
        inv.recompute_vars();
        Ok(inv)
    }

    /// Read `group_vars/` and `host_vars/` beside the playbook in `dir`; they
    /// take precedence over the inventory's. Replaces the layer of an earlier
    /// call, so calling it again for the same directory changes nothing.
    pub fn add_playbook_vars(&mut self, dir: &Path) -> Result<(), InputErrors> {
        let mut errors = Vec::new();
        let layer = VarsDir::load(dir, self, &mut errors);
        if !errors.is_empty() {
            return Err(InputErrors(errors));
        }
        self.layers.playbook = Some(layer);
        self.recompute_vars();
        Ok(())
    }

    /// Recompute [`Host::vars`] of every host from the layers.
    fn recompute_vars(&mut self) {
        let names: Vec<String> = self.hosts.keys().cloned().collect();
        for name in names {
            let groups = self.hosts.get(&name).map(|h| h.groups.clone());
            let vars = self.merged_vars(&name, &groups.unwrap_or_default(), None);
            if let Some(host) = self.hosts.get_mut(&name) {
                host.vars = vars;
            }
        }
    }

    /// The variables of host `name`, a member of `groups` (`all` first, the
    /// rest sorted as [`Host::groups`] is), with Ansible's precedence, lowest
    /// first: inventory-file group vars (`all`, then the others), inventory
    /// `group_vars/all`, playbook `group_vars/all`, inventory `group_vars/*`,
    /// playbook `group_vars/*`, inventory-file host vars, inventory
    /// `host_vars/*`, playbook `host_vars/*`. Values replace whole (Ansible's
    /// default `hash_behaviour=replace`).
    /// `own` stands in for the inventory-file host variables of a host the
    /// files do not list (the implicit localhost).
    fn merged_vars(&self, name: &str, groups: &[String], own: Option<&Map>) -> Map {
        let others: Vec<&str> = groups
            .iter()
            .map(String::as_str)
            .filter(|g| *g != "all")
            .collect();
        let mut vars = Map::new();
        let mut merge = |layer: Option<&Map>| {
            if let Some(layer) = layer {
                for (k, v) in layer {
                    vars.insert(k.clone(), v.clone());
                }
            }
        };
        merge(self.groups.get("all").map(|g| &g.vars));
        for g in &others {
            merge(self.groups.get(*g).map(|g| &g.vars));
        }
        for dir in &self.layers.inventory {
            merge(dir.group.get("all"));
        }
        merge(
            self.layers
                .playbook
                .as_ref()
                .and_then(|d| d.group.get("all")),
        );
        for dir in &self.layers.inventory {
            for g in &others {
                merge(dir.group.get(*g));
            }
        }
        if let Some(dir) = &self.layers.playbook {
            for g in &others {
                merge(dir.group.get(*g));
            }
        }
        merge(own.or(self.layers.host_file.get(name)));
        for dir in &self.layers.inventory {
            merge(dir.host.get(name));
        }
        merge(self.layers.playbook.as_ref().and_then(|d| d.host.get(name)));
        vars
    }

    /// The host `name`: an inventory host, or the implicit localhost when
    /// `name` is one of [`LOCALHOST_NAMES`] and not in the inventory.
    pub fn get(&self, name: &str) -> Option<Cow<'_, Host>> {
        if let Some(host) = self.hosts.get(name) {
            return Some(Cow::Borrowed(host));
        }
        if LOCALHOST_NAMES.contains(&name) {
            return Some(Cow::Owned(self.implicit_host(name)));
        }
        None
    }

    /// The implicit `localhost` Ansible uses when a play targets it and the
    /// inventory does not list it: `ansible_connection=local`, in no group,
    /// but with `all`'s variables and any `host_vars/localhost`.
    pub fn implicit_localhost(&self) -> Host {
        self.implicit_host("localhost")
    }

    fn implicit_host(&self, name: &str) -> Host {
        // Ansible sets this as an inventory-file host variable, so
        // `host_vars/localhost` may still override it.
        let mut own = Map::new();
        own.insert("ansible_connection".into(), Value::from("local"));
        Host {
            name: name.to_string(),
            groups: Vec::new(),
            vars: self.merged_vars(name, &["all".to_string()], Some(&own)),
            defined_at: None,
        }
    }

    /// The `group_names` magic variable: the host's groups except `all`,
    /// sorted. Like Ansible, a host in no group gets `["ungrouped"]`.
    pub fn group_names(&self, host: &str) -> Vec<String> {
        let mut names: Vec<String> = self
            .hosts
            .get(host)
            .map(|h| h.groups.iter().filter(|g| *g != "all").cloned().collect())
            .unwrap_or_default();
        names.sort();
        names
    }

    /// The hosts of group `name`, its descendants' included, in inventory order.
    pub fn group_hosts(&self, name: &str) -> Vec<String> {
        self.hosts
            .values()
            .filter(|h| h.groups.iter().any(|g| g == name))
            .map(|h| h.name.clone())
            .collect()
    }

    /// The `groups` magic variable: every group (`all` and `ungrouped`
    /// included) to its hosts, descendants' included, in inventory order.
    pub fn groups_var(&self) -> Map {
        let mut lists: IndexMap<&str, Vec<Value>> = self
            .groups
            .keys()
            .map(|g| (g.as_str(), Vec::new()))
            .collect();
        for host in self.hosts.values() {
            for g in &host.groups {
                if let Some(list) = lists.get_mut(g.as_str()) {
                    list.push(Value::from(host.name.clone()));
                }
            }
        }
        lists
            .into_iter()
            .map(|(g, hosts)| (g.to_string(), Value::Array(hosts)))
            .collect()
    }

    /// The hosts `pattern` selects, in the order Ansible evaluates them:
    /// unions in pattern order (each group's hosts in inventory order), then
    /// intersections, then exclusions.
    ///
    /// Terms are separated by `,` (or, without a comma, by `:`); each is
    /// `all`/`*`, a host or group name, a glob (`pi-worker-0*`, `web?`,
    /// `db[12]`, `n[0-3]`), or a regex after `~` (anchored at the start),
    /// optionally with a subscript (`agents[0]`, `[-1]`, `[0:2]` inclusive,
    /// `[1:]`); `&term` intersects and `!term` excludes. A pattern that names
    /// nothing selects nothing; a malformed one (empty, bad regex, unbalanced
    /// `[`, index out of range) is an error. `localhost` selects the implicit
    /// localhost when the inventory lacks it.
    pub fn select(&self, pattern: &str) -> Result<Vec<String>, PatternError> {
        pattern::select(self, pattern)
    }

    /// [`Inventory::select`] restricted by a `--limit` value, which may name
    /// `@file`s holding one pattern per line (such as `.retry` files).
    pub fn select_limited(
        &self,
        pattern: &str,
        limit: Option<&str>,
    ) -> Result<Vec<String>, PatternError> {
        let hosts = self.select(pattern)?;
        match limit {
            None => Ok(hosts),
            Some(limit) => {
                let allowed = pattern::select_limit(self, limit)?;
                Ok(hosts.into_iter().filter(|h| allowed.contains(h)).collect())
            }
        }
    }

    /// The tree `ansible-inventory --graph [group]` prints, from `group`
    /// (`all` by default); None if there is no such group.
    pub fn graph(&self, group: &str) -> Option<String> {
        self.groups.get(group)?;
        let mut out = String::new();
        self.graph_group(group, 0, &mut out);
        Some(out)
    }

    fn graph_group(&self, name: &str, depth: usize, out: &mut String) {
        let Some(group) = self.groups.get(name) else {
            return;
        };
        push_graph_line(out, &format!("@{name}:"), depth);
        for child in &group.children {
            self.graph_group(child, depth + 1, out);
        }
        if name != "all" {
            for host in &group.hosts {
                push_graph_line(out, host, depth + 1);
            }
        }
    }

    /// What `ansible-inventory --host NAME` prints: the host's variables,
    /// keys sorted. None for a host that is neither in the inventory nor a
    /// localhost name.
    pub fn host_vars_json(&self, host: &str) -> Option<Value> {
        self.get(host)
            .map(|h| sorted_keys(&Value::Object(h.vars.clone())))
    }

    /// What `ansible-inventory --list` prints: `_meta.hostvars` (hosts with
    /// variables only), then each non-empty group with its `hosts` and
    /// `children` (`all` lists only children), every key sorted as
    /// ansible-inventory sorts them.
    pub fn to_json(&self) -> Value {
        let mut hostvars = Map::new();
        for host in self.hosts.values() {
            if !host.vars.is_empty() {
                hostvars.insert(host.name.clone(), Value::Object(host.vars.clone()));
            }
        }
        let mut meta = Map::new();
        meta.insert("hostvars".into(), Value::Object(hostvars));
        let mut out = Map::new();
        out.insert("_meta".into(), Value::Object(meta));
        for group in self.groups.values() {
            let mut entry = Map::new();
            if group.name != "all" && !group.hosts.is_empty() {
                let hosts = group.hosts.iter().cloned().map(Value::from).collect();
                entry.insert("hosts".into(), Value::Array(hosts));
            }
            if !group.children.is_empty() {
                let children = group.children.iter().cloned().map(Value::from).collect();
                entry.insert("children".into(), Value::Array(children));
            }
            if !entry.is_empty() {
                out.insert(group.name.clone(), Value::Object(entry));
            }
        }
        sorted_keys(&Value::Object(out))
    }
}

/// `value` with the keys of every mapping in it sorted (lists keep order).
fn sorted_keys(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted_keys(&map[k])))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted_keys).collect()),
        other => other.clone(),
    }
}

fn push_graph_line(out: &mut String, text: &str, depth: usize) {
    for _ in 0..depth {
        out.push_str("  |");
    }
    if depth > 0 {
        out.push_str("--");
    }
    out.push_str(text);
    out.push('\n');
}

/// `ansible-inventory --graph`: the tree from `all`.
impl fmt::Display for Inventory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.graph("all").unwrap_or_default())
    }
}

/// An error at the start of `path`, for problems with a whole file.
fn file_error(path: &Path, msg: impl Into<String>) -> InputError {
    InputError::new(Pos::file_start(path), msg)
}

#[cfg(test)]
mod tests;
