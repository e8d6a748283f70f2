//! The first loading step: groups, hosts and inventory-file variables as the
//! sources write them, then [`Builder::finish`] closes the graph the way
//! Ansible's `reconcile_inventory` does.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use indexmap::IndexMap;

use super::{file_error, ini, yaml_inv, Group, Host, Inventory, Layers};
use crate::error::Pos;
use crate::error::{InputError, InputErrorKind};
use crate::{Map, Value};

/// Groups and hosts as written, in the order they appear.
pub(super) struct Builder {
    pub groups: IndexMap<String, Group>,
    /// Every host, with where it first appears.
    pub hosts: IndexMap<String, Option<Pos>>,
    /// Host variables written in inventory files.
    pub host_vars: IndexMap<String, Map>,
    /// Every problem found so far.
    pub errors: Vec<InputError>,
}

/// Inventory file names Ansible skips when reading a directory.
fn ignored_in_dir(name: &str) -> bool {
    const EXTS: [&str; 12] = [
        ".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md", ".txt", ".rst", ".orig", ".cfg",
        ".retry",
    ];
    name.starts_with('.')
        || matches!(name, "group_vars" | "host_vars" | "vars_plugins")
        || EXTS.iter().any(|e| name.ends_with(e))
}

impl Builder {
    pub(super) fn new() -> Builder {
        let mut b = Builder {
            groups: IndexMap::new(),
            hosts: IndexMap::new(),
            host_vars: IndexMap::new(),
            errors: Vec::new(),
        };
        b.add_group("all", None);
        b.add_group("ungrouped", None);
        b.link("all", "ungrouped");
        b
    }

    /// Load one `-i` source: a file, a directory of files, or a host list.
    pub(super) fn load_source(&mut self, path: &Path) {
        if path.is_dir() {
            self.load_dir(path);
        } else if path.exists() {
            match std::fs::read_to_string(path) {
                Ok(text) => self.load_text(&text, path, path.extension().and_then(|e| e.to_str())),
                Err(e) => self.errors.push(
                    file_error(path, format!("cannot read inventory: {e}"))
                        .with_kind(InputErrorKind::Read),
                ),
            }
        } else if let Some(list) = path.to_str().filter(|s| s.contains(',')) {
            self.load_host_list(list, path);
        } else {
            self.errors.push(file_error(
                path,
                "inventory not found: no such file or directory",
            ));
        }
    }

    fn load_dir(&mut self, dir: &Path) {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => {
                self.errors.push(file_error(
                    dir,
                    format!("cannot read inventory directory: {e}"),
                ));
                return;
            }
        };
        let mut names: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .filter_map(|n| n.into_string().ok())
            .filter(|n| !ignored_in_dir(n))
            .collect();
        names.sort();
        for name in names {
            self.load_source(&dir.join(name));
        }
    }

    /// A comma-separated host list such as `-i web1,web2,` (Ansible's
    /// `host_list` source): the hosts land in `ungrouped`.
    fn load_host_list(&mut self, list: &str, path: &Path) {
        let pos = Pos::file_start(path);
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            self.add_host("ungrouped", name, &pos);
        }
    }

    /// Parse inventory text. `ext` picks the format (`yml`/`yaml`/`json` for
    /// YAML, anything else for INI); without one, YAML is tried first and
    /// INI is the fallback, as Ansible's plugin chain does.
    pub(super) fn load_text(&mut self, text: &str, path: &Path, ext: Option<&str>) {
        match ext {
            Some("yml" | "yaml" | "json") => match crate::yaml::load_str(text, path) {
                Ok(doc) => yaml_inv::parse(&doc, self),
                Err(e) => self.errors.push(e),
            },
            Some(_) => ini::parse(text, Arc::new(path.to_path_buf()), self),
            None => match crate::yaml::load_str(text, path) {
                Ok(doc) if doc.as_map().is_some() => yaml_inv::parse(&doc, self),
                Err(e) if looks_like_yaml(text) => self.errors.push(e),
                _ => ini::parse(text, Arc::new(path.to_path_buf()), self),
            },
        }
    }

    /// Create group `name` if it does not exist yet.
    pub(super) fn add_group(&mut self, name: &str, pos: Option<&Pos>) {
        if !self.groups.contains_key(name) {
            self.groups.insert(
                name.to_string(),
                Group {
                    name: name.to_string(),
                    priority: 1,
                    defined_at: pos.cloned(),
                    ..Group::default()
                },
            );
        }
    }

    /// Add host `name` to `group` (both created as needed).
    pub(super) fn add_host(&mut self, group: &str, name: &str, pos: &Pos) {
        self.hosts
            .entry(name.to_string())
            .or_insert_with(|| Some(pos.clone()));
        self.add_group(group, Some(pos));
        if let Some(g) = self.groups.get_mut(group) {
            if !g.hosts.iter().any(|h| h == name) {
                g.hosts.push(name.to_string());
            }
        }
    }

    /// Set an inventory-file variable of host `name`; later writes win.
    pub(super) fn set_host_var(&mut self, name: &str, key: String, value: Value) {
        self.host_vars
            .entry(name.to_string())
            .or_default()
            .insert(key, value);
    }

    /// Set an inventory-file variable of `group`; later writes win.
    /// `ansible_group_priority` sets the group's priority instead, as in
    /// Ansible, and is not a variable; a bad value is an error at `pos`.
    pub(super) fn set_group_var(&mut self, group: &str, key: String, value: Value, pos: &Pos) {
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        if key != "ansible_group_priority" {
            g.vars.insert(key, value);
            return;
        }
        match priority_value(&value) {
            Some(p) => g.priority = p,
            None => self.errors.push(InputError::of(
                InputErrorKind::Inventory,
                pos.clone(),
                format!(
                    "ansible_group_priority of group `{group}` must be an integer, not {value}"
                ),
            )),
        }
    }

    /// Make `child` a child group of `parent`; a loop is an error at `pos`.
    pub(super) fn add_child(&mut self, parent: &str, child: &str, pos: &Pos) {
        if child == "all" {
            self.errors.push(InputError::of(InputErrorKind::Inventory,
                pos.clone(),
                format!("group `all` cannot be a child of `{parent}`: every group is already under `all`"),
            ));
            return;
        }
        if child == parent || self.is_descendant(parent, child) {
            self.errors.push(InputError::of(InputErrorKind::Inventory,
                pos.clone(),
                format!(
                    "adding group `{child}` as a child of `{parent}` creates a loop: `{parent}` is already under `{child}`"
                ),
            ));
            return;
        }
        self.add_group(child, Some(pos));
        self.link(parent, child);
    }

    fn link(&mut self, parent: &str, child: &str) {
        if let Some(g) = self.groups.get_mut(parent) {
            if !g.children.iter().any(|c| c == child) {
                g.children.push(child.to_string());
            }
        }
    }

    /// Is `group` under `ancestor` (at any depth)?
    pub(super) fn is_descendant(&self, group: &str, ancestor: &str) -> bool {
        let mut stack = vec![ancestor];
        let mut seen = Vec::new();
        while let Some(g) = stack.pop() {
            if seen.contains(&g) {
                continue;
            }
            seen.push(g);
            if let Some(node) = self.groups.get(g) {
                for c in &node.children {
                    if c == group {
                        return true;
                    }
                    stack.push(c);
                }
            }
        }
        false
    }

    /// Close the graph: parentless groups go under `all`, hosts in no group
    /// but `all` go to `ungrouped` (and leave it once in another group),
    /// depths and ancestors are computed. Host variables are not merged yet.
    pub(super) fn finish(mut self) -> Inventory {
        let names: Vec<String> = self.groups.keys().cloned().collect();
        let mut parents: HashMap<String, Vec<String>> = HashMap::new();
        for g in self.groups.values() {
            for c in &g.children {
                parents.entry(c.clone()).or_default().push(g.name.clone());
            }
        }
        for name in &names {
            if name != "all" && !parents.contains_key(name) {
                self.link("all", name);
                parents.entry(name.clone()).or_default().push("all".into());
            }
        }
        for (name, list) in &parents {
            if let Some(g) = self.groups.get_mut(name) {
                g.parents = list.clone();
            }
        }
        // Keep parent lists in group order, for stable output.
        let order: HashMap<String, usize> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect();
        for g in self.groups.values_mut() {
            g.parents
                .sort_by_key(|p| order.get(p).copied().unwrap_or(usize::MAX));
        }

        let mut depths: HashMap<String, usize> = HashMap::new();
        for name in &names {
            let d = depth_of(&self.groups, name, &mut depths);
            if let Some(g) = self.groups.get_mut(name) {
                g.depth = d;
            }
        }
        // Direct memberships, then `ungrouped` reconciled.
        let mut direct: IndexMap<String, Vec<String>> =
            self.hosts.keys().map(|h| (h.clone(), Vec::new())).collect();
        for g in self.groups.values() {
            for h in &g.hosts {
                if let Some(list) = direct.get_mut(h) {
                    list.push(g.name.clone());
                }
            }
        }
        let mut to_ungrouped = Vec::new();
        let mut from_ungrouped = Vec::new();
        for (host, groups) in &direct {
            let real = groups.iter().any(|g| g != "all" && g != "ungrouped");
            let in_ungrouped = groups.iter().any(|g| g == "ungrouped");
            if real && in_ungrouped {
                from_ungrouped.push(host.clone());
            } else if !real && !in_ungrouped {
                to_ungrouped.push(host.clone());
            }
        }
        if let Some(u) = self.groups.get_mut("ungrouped") {
            u.hosts.retain(|h| !from_ungrouped.contains(h));
            u.hosts.extend(to_ungrouped.iter().cloned());
        }
        for h in &to_ungrouped {
            if let Some(list) = direct.get_mut(h) {
                list.push("ungrouped".into());
            }
        }
        for h in &from_ungrouped {
            if let Some(list) = direct.get_mut(h) {
                list.retain(|g| g != "ungrouped");
            }
        }

        let mut hosts = IndexMap::new();
        for (name, pos) in &self.hosts {
            let mut member: Vec<String> = Vec::new();
            let mut stack: Vec<String> = direct.get(name).cloned().unwrap_or_default();
            while let Some(g) = stack.pop() {
                if member.contains(&g) {
                    continue;
                }
                if let Some(group) = self.groups.get(&g) {
                    stack.extend(group.parents.iter().cloned());
                }
                member.push(g);
            }
            if !member.iter().any(|g| g == "all") {
                member.push("all".into());
            }
            member.sort_by(|a, b| {
                let key = |n: &String| {
                    let g = self.groups.get(n);
                    (
                        n != "all",
                        g.map_or(0, |g| g.depth),
                        g.map_or(1, |g| g.priority),
                        n.clone(),
                    )
                };
                key(a).cmp(&key(b))
            });
            hosts.insert(
                name.clone(),
                Host {
                    name: name.clone(),
                    groups: member,
                    vars: Map::new(),
                    defined_at: pos.clone(),
                },
            );
        }
        Inventory {
            hosts,
            groups: self.groups,
            sources: Vec::new(),
            layers: Layers {
                host_file: self.host_vars,
                inventory: Vec::new(),
                playbook: None,
            },
        }
    }
}

/// Longest path from `all` (the graph is acyclic: `add_child` refuses loops).
fn depth_of(
    groups: &IndexMap<String, Group>,
    name: &str,
    memo: &mut HashMap<String, usize>,
) -> usize {
    if let Some(d) = memo.get(name) {
        return *d;
    }
    let parents = groups
        .get(name)
        .map(|g| g.parents.clone())
        .unwrap_or_default();
    let d = parents
        .iter()
        .map(|p| depth_of(groups, p, memo) + 1)
        .max()
        .unwrap_or(0);
    memo.insert(name.to_string(), d);
    d
}

fn priority_value(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Does extension-less inventory text look like YAML (so that a YAML syntax
/// error should be reported as such rather than retried as INI)?
fn looks_like_yaml(text: &str) -> bool {
    let first = text
        .lines()
        .map(str::trim_end)
        .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    match first {
        Some(l) => {
            l.starts_with("---")
                || (l.ends_with(':')
                    && !l.starts_with('[')
                    && !l.contains('=')
                    && !l.trim().contains(' '))
        }
        None => false,
    }
}
