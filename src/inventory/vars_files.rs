//! `group_vars/` and `host_vars/` directories, found the way Ansible's
//! `host_group_vars` plugin finds them: for entity `NAME` the first of
//! `NAME` (a file, or a directory whose files are merged in name order,
//! recursively, skipping hidden and backup files), `NAME.yml`, `NAME.yaml`,
//! `NAME.json`.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use super::{file_error, Inventory, LOCALHOST_NAMES};
use crate::error::InputError;
use crate::error::Pos;
use crate::yaml::NodeKind;
use crate::Map;

const EXTENSIONS: [&str; 3] = [".yml", ".yaml", ".json"];

/// The variables of one directory's `group_vars/` and `host_vars/`.
#[derive(Debug, Clone, Default)]
pub(super) struct VarsDir {
    /// Group name to its variables.
    pub group: IndexMap<String, Map>,
    /// Host name to its variables.
    pub host: IndexMap<String, Map>,
}

impl VarsDir {
    /// Read `base/group_vars` for every group of `inv` and `base/host_vars`
    /// for every host (and the localhost names, for the implicit localhost).
    /// Files for names the inventory lacks are ignored, as in Ansible.
    pub(super) fn load(base: &Path, inv: &Inventory, errors: &mut Vec<InputError>) -> VarsDir {
        let mut dir = VarsDir::default();
        let group_dir = base.join("group_vars");
        if group_dir.is_dir() {
            for name in inv.groups.keys() {
                if let Some(vars) = load_entity(&group_dir, name, errors) {
                    dir.group.insert(name.clone(), vars);
                }
            }
        }
        let host_dir = base.join("host_vars");
        if host_dir.is_dir() {
            let names = inv.hosts.keys().map(String::as_str).chain(
                LOCALHOST_NAMES
                    .iter()
                    .copied()
                    .filter(|n| !inv.hosts.contains_key(*n)),
            );
            for name in names {
                if let Some(vars) = load_entity(&host_dir, name, errors) {
                    dir.host.insert(name.to_string(), vars);
                }
            }
        }
        dir
    }
}

/// The merged variables of entity `name` in `dir`, if it has any files.
fn load_entity(dir: &Path, name: &str, errors: &mut Vec<InputError>) -> Option<Map> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return None;
    }
    let files = find_vars_files(dir, name);
    if files.is_empty() {
        return None;
    }
    let mut vars = Map::new();
    for file in files {
        match load_vars_file(&file) {
            Ok(map) => {
                for (k, v) in map {
                    vars.insert(k, v);
                }
            }
            Err(e) => errors.push(e),
        }
    }
    Some(vars)
}

fn find_vars_files(dir: &Path, name: &str) -> Vec<PathBuf> {
    let candidates =
        std::iter::once(name.to_string()).chain(EXTENSIONS.iter().map(|e| format!("{name}{e}")));
    for candidate in candidates {
        let path = dir.join(&candidate);
        if path.is_dir() {
            let mut found = Vec::new();
            walk_dir(&path, &mut found);
            return found;
        }
        if path.exists() {
            return vec![path];
        }
    }
    Vec::new()
}

/// Files of a `NAME/` directory in name order, recursing into
/// subdirectories; only extension-less files and known extensions count.
fn walk_dir(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.') && !n.ends_with('~'))
        .collect();
    names.sort();
    for n in names {
        let path = dir.join(&n);
        let ext = Path::new(&n).extension().and_then(|e| e.to_str());
        if path.is_dir() && ext.is_none() {
            walk_dir(&path, found);
        } else if path.is_file()
            && ext.is_none_or(|e| EXTENSIONS.contains(&format!(".{e}").as_str()))
        {
            found.push(path);
        }
    }
}

/// One vars file: a mapping (or nothing) in YAML or JSON.
pub(super) fn load_vars_file(path: &Path) -> Result<Map, InputError> {
    if path.extension().and_then(|e| e.to_str()) == Some("json") {
        let text = std::fs::read_to_string(path).map_err(|e| {
            file_error(path, format!("cannot read vars file: {e}"))
                .with_kind(crate::error::InputErrorKind::Read)
        })?;
        if text.trim().is_empty() {
            return Ok(Map::new());
        }
        return match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(serde_json::Value::Object(map)) => Ok(map),
            Ok(serde_json::Value::Null) => Ok(Map::new()),
            Ok(_) => Err(file_error(
                path,
                "a vars file must hold a mapping of variables",
            )),
            Err(e) => Err(InputError::new(
                Pos {
                    file: std::sync::Arc::new(path.to_path_buf()),
                    line: e.line().max(1),
                    col: e.column().max(1),
                },
                format!("JSON syntax error: {e}"),
            )),
        };
    }
    let doc = crate::yaml::load_file(path)?;
    match &doc.kind {
        NodeKind::Null => Ok(Map::new()),
        NodeKind::Map(entries) => {
            let mut map = Map::new();
            for (k, v) in entries {
                match k.scalar_string() {
                    Some(key) if !key.is_empty() => {
                        map.insert(key, v.to_value());
                    }
                    _ => return Err(k.error("a variable name must be a non-empty string")),
                }
            }
            Ok(map)
        }
        NodeKind::Str(s) if s.starts_with("$ANSIBLE_VAULT") => Err(doc.error(
            "vault-encrypted vars files are not supported: keep secrets out of group_vars/host_vars or decrypt the file",
        )),
        _ => Err(doc.error("a vars file must hold a mapping of variables")),
    }
}
