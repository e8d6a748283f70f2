//! INI inventories, as Ansible's `ini` inventory plugin reads them:
//! `[group]` sections of `host key=value ...` lines (hosts before any section
//! are `ungrouped`), `[group:vars]` sections of `key=value` lines and
//! `[group:children]` sections of group names. Values are Python literals
//! when they parse as one (`22`, `True`), text otherwise.

use std::path::PathBuf;
use std::sync::Arc;

use indexmap::IndexMap;

use super::builder::Builder;
use super::{literal, range};
use crate::error::Pos;
use crate::error::{InputError, InputErrorKind};
use crate::shlex;

enum State {
    Hosts(String),
    Vars(String),
    Children(String),
    /// After a bad section header: skip lines until the next one.
    Skip,
}

/// Read INI inventory `text` (from `file`) into `b`.
pub(super) fn parse(text: &str, file: Arc<PathBuf>, b: &mut Builder) {
    let pos = |line: usize, col: usize| Pos {
        file: file.clone(),
        line,
        col,
    };
    let mut state = State::Hosts("ungrouped".into());
    // Groups declared by `[g]` or `[g:children]` in this file.
    let mut declared: Vec<String> = vec!["all".into(), "ungrouped".into()];
    // Groups only referenced (by `[g:vars]` or in a `:children` section),
    // with where and how; each must be declared somewhere in the file.
    let mut referenced: IndexMap<String, (Pos, String)> = IndexMap::new();

    for (n, raw) in text.lines().enumerate() {
        let line_no = n + 1;
        let line = raw.trim();
        let col = raw.len() - raw.trim_start().len() + 1;
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let at = pos(line_no, col);
        if line.starts_with('[') {
            match section(line) {
                Ok((group, kind)) => {
                    b.add_group(&group, Some(&at));
                    match kind {
                        "vars" => {
                            if !declared.contains(&group) {
                                referenced.entry(group.clone()).or_insert_with(|| {
                                    (
                                        at.clone(),
                                        format!(
                                            "section [{group}:vars] is for group `{group}`, which no [{group}] or [{group}:children] section declares"
                                        ),
                                    )
                                });
                            }
                            state = State::Vars(group);
                        }
                        "children" | "hosts" => {
                            declared.push(group.clone());
                            referenced.shift_remove(&group);
                            state = if kind == "children" {
                                State::Children(group)
                            } else {
                                State::Hosts(group)
                            };
                        }
                        other => {
                            b.errors.push(InputError::of(
                                InputErrorKind::Inventory,
                                at,
                                format!("unknown section type `:{other}` in `{line}`: expected [{group}], [{group}:vars] or [{group}:children]"),
                            ));
                            state = State::Skip;
                        }
                    }
                }
                Err(e) => {
                    b.errors
                        .push(InputError::of(InputErrorKind::Inventory, at, e.to_string()));
                    state = State::Skip;
                }
            }
            continue;
        }
        match &state {
            State::Skip => {}
            State::Hosts(group) => host_line(group, line, line_no, col, &pos, b),
            State::Vars(group) => match line.split_once('=') {
                Some((k, v)) if !k.trim().is_empty() => {
                    b.set_group_var(
                        group,
                        k.trim().to_string(),
                        literal::parse_value(v.trim()),
                        &at,
                    );
                }
                _ => b.errors.push(InputError::of(
                    InputErrorKind::Inventory,
                    at,
                    format!("expected `key=value` in [{group}:vars], got `{line}`"),
                )),
            },
            State::Children(group) => match child_name(line) {
                Some(child) => {
                    if !declared.iter().any(|d| d == child) {
                        referenced.entry(child.to_string()).or_insert_with(|| {
                            (
                                at.clone(),
                                format!(
                                    "[{group}:children] names group `{child}`, which no [{child}] or [{child}:children] section declares"
                                ),
                            )
                        });
                    }
                    b.add_child(group, child, &at);
                }
                None => b.errors.push(InputError::of(
                    InputErrorKind::Inventory,
                    at,
                    format!("expected a group name in [{group}:children], got `{line}`"),
                )),
            },
        }
    }
    for (_, (at, msg)) in referenced {
        b.errors
            .push(InputError::of(InputErrorKind::Inventory, at, msg));
    }
}

/// A section header that is not `[name]` or `[name:kind]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid section header `{0}`: write [group], [group:vars] or [group:children], without spaces"
)]
struct BadSection(String);

/// `[name]` or `[name:kind]`, with an optional trailing comment.
fn section(line: &str) -> Result<(String, &str), BadSection> {
    let invalid = || BadSection(line.to_string());
    let close = line.find(']').ok_or_else(invalid)?;
    let after = line[close + 1..].trim();
    if !(after.is_empty() || after.starts_with('#') || after.starts_with(';')) {
        return Err(invalid());
    }
    let inner = &line[1..close];
    let (name, kind) = match inner.split_once(':') {
        Some((n, k)) => (n, k),
        None => (inner, "hosts"),
    };
    let name_ok = !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '[');
    let kind_ok = !kind.is_empty() && kind.chars().all(|c| c.is_alphanumeric() || c == '_');
    if !name_ok || !kind_ok {
        return Err(invalid());
    }
    Ok((name.to_string(), kind))
}

/// A child group name, with an optional trailing comment.
fn child_name(line: &str) -> Option<&str> {
    let name = line.split(['#', ';']).next()?.trim();
    let ok = !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, ':' | ']' | '['));
    ok.then_some(name)
}

fn host_line(
    group: &str,
    line: &str,
    line_no: usize,
    col: usize,
    pos: &dyn Fn(usize, usize) -> Pos,
    b: &mut Builder,
) {
    let words = match shlex::split(line, true) {
        Ok(words) => words,
        Err(e) => {
            b.errors.push(InputError::of(
                InputErrorKind::Inventory,
                pos(line_no, col + e.offset),
                format!("cannot parse host line: {e}"),
            ));
            return;
        }
    };
    let Some((first, rest)) = words.split_first() else {
        return;
    };
    let host_pos = pos(line_no, col + first.offset);
    let (names, port) = match range::parse_host_pattern(&first.text) {
        Ok(v) => v,
        Err(e) => {
            b.errors.push(InputError::of(
                InputErrorKind::Inventory,
                host_pos,
                e.to_string(),
            ));
            return;
        }
    };
    let mut vars = Vec::new();
    for w in rest {
        match w.text.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                vars.push((k.to_string(), literal::parse_value(v)));
            }
            _ => {
                b.errors.push(InputError::of(
                    InputErrorKind::Inventory,
                    pos(line_no, col + w.offset),
                    format!(
                        "expected `key=value` host variable after host `{}`, got `{}`",
                        first.text, w.text
                    ),
                ));
                return;
            }
        }
    }
    for name in names {
        b.add_host(group, &name, &host_pos);
        if let Some(port) = port {
            b.set_host_var(&name, "ansible_port".into(), port.into());
        }
        for (k, v) in &vars {
            b.set_host_var(&name, k.clone(), v.clone());
        }
    }
}
