//! The inventory a run changes: `add_host` and `group_by` add hosts,
//! groups and memberships between tasks, as Ansible's strategy does, and
//! the group graph is closed again (`ungrouped`, depths, ancestors) so that
//! later plays' host patterns, `groups` and `hostvars` see them.

use super::builder::Builder;
use super::Inventory;
use crate::Map;

impl Inventory {
    /// `add_host`: add host `name` (or update it) with `vars` over its
    /// inventory host variables, in `groups` (made as needed). Returns
    /// whether anything changed, as Ansible's `changed`.
    pub fn add_host(&mut self, name: &str, groups: &[String], vars: &Map) -> bool {
        let mut b = self.builder();
        let mut changed = !b.hosts.contains_key(name);
        b.hosts.entry(name.to_string()).or_insert(None);
        let own = b.host_vars.entry(name.to_string()).or_default();
        for (k, v) in vars {
            if own.get(k) != Some(v) {
                own.insert(k.clone(), v.clone());
                changed = true;
            }
        }
        for g in groups {
            changed |= join(&mut b, g, name);
        }
        if changed {
            self.rebuild(b);
        }
        changed
    }

    /// `group_by`: put `host` in group `group` (made as needed) under each
    /// of `parents` (made as needed). Returns whether anything changed; a
    /// parent below the group is a loop, refused as Ansible refuses it.
    pub fn add_to_group(
        &mut self,
        host: &str,
        group: &str,
        parents: &[String],
    ) -> Result<bool, String> {
        let mut b = self.builder();
        b.add_group(group, None);
        let mut changed = false;
        for p in parents {
            if p == group || b.is_descendant(p, group) {
                return Err(format!(
                    "Adding group '{group}' as child to '{p}' creates a recursive dependency loop."
                ));
            }
            if !b.groups.contains_key(p) {
                b.add_group(p, None);
                changed = true;
            }
            if let Some(parent) = b.groups.get_mut(p) {
                if !parent.children.iter().any(|c| c == group) {
                    parent.children.push(group.to_string());
                    changed = true;
                }
            }
        }
        if b.hosts.contains_key(host) {
            changed |= join(&mut b, group, host);
        }
        if changed {
            self.rebuild(b);
        }
        Ok(changed)
    }

    /// The inventory as written, to change and close again.
    fn builder(&self) -> Builder {
        let mut b = Builder::new();
        b.groups = self.groups.clone();
        b.hosts = self
            .hosts
            .iter()
            .map(|(n, h)| (n.clone(), h.defined_at.clone()))
            .collect();
        b.host_vars = self.layers.host_file.clone();
        b
    }

    /// Close `b`'s graph and take it, with this inventory's sources and
    /// `group_vars/`/`host_vars/` layers.
    fn rebuild(&mut self, b: Builder) {
        let mut inv = b.finish();
        inv.sources = std::mem::take(&mut self.sources);
        inv.layers.inventory = std::mem::take(&mut self.layers.inventory);
        inv.layers.playbook = self.layers.playbook.take();
        inv.recompute_vars();
        *self = inv;
    }
}

/// Make `host` a direct member of `group` (made as needed); true when it
/// was not.
fn join(b: &mut Builder, group: &str, host: &str) -> bool {
    b.add_group(group, None);
    match b.groups.get_mut(group) {
        Some(g) if !g.hosts.iter().any(|h| h == host) => {
            g.hosts.push(host.to_string());
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::json;

    use super::*;

    fn inv() -> Inventory {
        Inventory::from_str(
            "[web]\nw1 ansible_host=10.0.0.1\n[db]\nd1\n",
            Path::new("hosts.ini"),
        )
        .expect("inventory")
    }

    #[test]
    fn add_host_joins_groups_and_keeps_the_graph_closed() {
        let mut inv = inv();
        let vars: Map = json!({"ansible_host": "127.0.0.9", "x": 1})
            .as_object()
            .cloned()
            .expect("map");
        assert!(inv.add_host("new", &["blah".into(), "web".into()], &vars));
        assert_eq!(inv.select("blah").expect("select"), ["new"]);
        assert_eq!(inv.select("web").expect("select"), ["w1", "new"]);
        assert_eq!(inv.hosts["new"].vars["ansible_host"], json!("127.0.0.9"));
        assert_eq!(inv.group_names("new"), ["blah", "web"]);
        assert_eq!(inv.groups_var()["blah"], json!(["new"]));
        // The same again changes nothing; a host in no group is ungrouped.
        assert!(!inv.add_host("new", &["blah".into()], &vars));
        assert!(inv.add_host("lone", &[], &Map::new()));
        assert_eq!(inv.group_names("lone"), ["ungrouped"]);
        // The inventory's own variables stay.
        assert_eq!(inv.hosts["w1"].vars["ansible_host"], json!("10.0.0.1"));
    }

    #[test]
    fn add_to_group_makes_groups_under_their_parents() {
        let mut inv = inv();
        assert_eq!(inv.add_to_group("d1", "by_os", &["os".into()]), Ok(true));
        assert_eq!(inv.select("os").expect("select"), ["d1"]);
        assert_eq!(inv.group_names("d1"), ["by_os", "db", "os"]);
        assert_eq!(inv.add_to_group("d1", "by_os", &["os".into()]), Ok(false));
        assert!(inv
            .add_to_group("d1", "os", &["by_os".into()])
            .expect_err("loop")
            .contains("recursive dependency loop"));
    }
}
