//! YAML inventories, as Ansible's `yaml` inventory plugin reads them:
//! top-level keys are groups (usually just `all`), each with optional
//! `hosts`, `vars` and `children`, nested to any depth. Unlike Ansible, an
//! unknown key in a group is an error rather than a warning.

use super::builder::Builder;
use super::range;
use crate::error::Pos;
use crate::yaml::{Node, NodeKind};

/// Read the inventory document `doc` into `b`.
pub(super) fn parse(doc: &Node, b: &mut Builder) {
    match &doc.kind {
        NodeKind::Null => {}
        NodeKind::Map(entries) => {
            for (key, value) in entries {
                if let Some(name) = name_of(key, "group", b) {
                    parse_group(&name, &key.pos, value, b);
                }
            }
        }
        _ => b.errors.push(doc.error(
            "a YAML inventory must be a mapping of groups, for example `all:` with `hosts:` under it",
        )),
    }
}

/// A group or host name from a mapping key (numbers are accepted as text).
fn name_of(key: &Node, what: &str, b: &mut Builder) -> Option<String> {
    match key.scalar_string() {
        Some(s) if !s.is_empty() => Some(s),
        _ => {
            b.errors
                .push(key.error(format!("a {what} name must be a non-empty string")));
            None
        }
    }
}

fn parse_group(name: &str, pos: &Pos, node: &Node, b: &mut Builder) {
    b.add_group(name, Some(pos));
    let entries = match &node.kind {
        NodeKind::Null => return,
        NodeKind::Map(entries) => entries,
        _ => {
            b.errors.push(node.error(format!(
                "group `{name}` must be a mapping with `hosts`, `vars` or `children` (or empty)"
            )));
            return;
        }
    };
    for (key, value) in entries {
        match key.key_str() {
            Some("hosts") => parse_hosts(name, value, b),
            Some("vars") => parse_group_vars(name, value, b),
            Some("children") => parse_children(name, value, b),
            _ => b.errors.push(key.error(format!(
                "unknown key `{}` in group `{name}`: a group holds only `hosts`, `vars` and `children` (a group nested without `children:`?)",
                key.scalar_string().unwrap_or_default()
            ))),
        }
    }
}

fn parse_hosts(group: &str, node: &Node, b: &mut Builder) {
    match &node.kind {
        NodeKind::Null => {}
        NodeKind::Str(s) => add_hosts(group, s, &node.pos, None, b),
        NodeKind::Map(entries) => {
            for (key, value) in entries {
                if let Some(pattern) = name_of(key, "host", b) {
                    add_hosts(group, &pattern, &key.pos, Some(value), b);
                }
            }
        }
        NodeKind::Seq(_) => b.errors.push(node.error(format!(
            "`hosts` of group `{group}` must be a mapping: write each host as `name:` on its own line, not as a `- name` list item"
        ))),
        _ => b.errors.push(node.error(format!(
            "`hosts` of group `{group}` must be a mapping of host names"
        ))),
    }
}

/// Add the hosts of one `hosts` key (a name, `name:port` or a range such as
/// `web-[01:03]`) with their variables.
fn add_hosts(group: &str, pattern: &str, pos: &Pos, vars: Option<&Node>, b: &mut Builder) {
    let (names, port) = match range::parse_host_pattern(pattern) {
        Ok(v) => v,
        Err(e) => {
            b.errors.push(crate::error::InputError::of(
                crate::error::InputErrorKind::Inventory,
                pos.clone(),
                e.to_string(),
            ));
            return;
        }
    };
    let var_entries = match vars.map(|v| &v.kind) {
        None | Some(NodeKind::Null) => &[][..],
        Some(NodeKind::Map(entries)) => entries.as_slice(),
        Some(_) => {
            if let Some(v) = vars {
                b.errors.push(v.error(format!(
                    "host `{pattern}` must have a mapping of variables or nothing"
                )));
            }
            return;
        }
    };
    for name in names {
        b.add_host(group, &name, pos);
        if let Some(port) = port {
            b.set_host_var(&name, "ansible_port".into(), port.into());
        }
        for (k, v) in var_entries {
            if let Some(key) = var_name(k, b) {
                b.set_host_var(&name, key, v.to_value());
            }
        }
    }
}

fn var_name(key: &Node, b: &mut Builder) -> Option<String> {
    match key.scalar_string() {
        Some(s) if !s.is_empty() => Some(s),
        _ => {
            b.errors
                .push(key.error("a variable name must be a non-empty string"));
            None
        }
    }
}

fn parse_group_vars(group: &str, node: &Node, b: &mut Builder) {
    match &node.kind {
        NodeKind::Null => {}
        NodeKind::Map(entries) => {
            for (k, v) in entries {
                if let Some(key) = var_name(k, b) {
                    b.set_group_var(group, key, v.to_value(), &v.pos);
                }
            }
        }
        _ => b.errors.push(node.error(format!(
            "`vars` of group `{group}` must be a mapping of variable names to values"
        ))),
    }
}

fn parse_children(group: &str, node: &Node, b: &mut Builder) {
    match &node.kind {
        NodeKind::Null => {}
        NodeKind::Str(s) => {
            b.add_child(group, s, &node.pos);
        }
        NodeKind::Map(entries) => {
            for (key, value) in entries {
                if let Some(child) = name_of(key, "group", b) {
                    // Create the child first so its position is where it is
                    // written under this parent.
                    b.add_group(&child, Some(&key.pos));
                    parse_group(&child, &key.pos, value, b);
                    b.add_child(group, &child, &key.pos);
                }
            }
        }
        NodeKind::Seq(_) => b.errors.push(node.error(format!(
            "`children` of group `{group}` must be a mapping: write each child group as `name:` on its own line, not as a `- name` list item"
        ))),
        _ => b.errors.push(node.error(format!(
            "`children` of group `{group}` must be a mapping of group names"
        ))),
    }
}
