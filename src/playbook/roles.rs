//! Where a role named in a play is found, in Ansible's order: a role of a
//! collection (`ns.col.role`) under the collection paths, a plain name on the
//! roles path, a path as written.

use std::path::{Path, PathBuf};

/// The directories roles and collections are looked up in.
#[derive(Debug, Clone, Default)]
pub struct RolePaths {
    /// `ANSIBLE_ROLES_PATH`, or Ansible's default roles path.
    roles: Vec<PathBuf>,
    /// Directories holding `ansible_collections/NS/COL` trees: the playbook's
    /// `collections/`, then `ANSIBLE_COLLECTIONS_PATH` or Ansible's default.
    collections: Vec<PathBuf>,
}

/// The roles path of ansible.cfg or `ANSIBLE_ROLES_PATH` as the CLI
/// resolved it (relative entries made absolute); when unset, the variable
/// is read as it stands.
static CONFIGURED_ROLES_PATH: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Set the run's roles path (`roles_path` of ansible.cfg, or
/// `ANSIBLE_ROLES_PATH`), once, before playbooks load.
pub fn set_roles_path(paths: &[PathBuf]) {
    let joined: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    let _ = CONFIGURED_ROLES_PATH.set(joined.join(":"));
}

/// The collections path of ansible.cfg or `ANSIBLE_COLLECTIONS_PATH` as
/// the CLI resolved it; when unset, the variables are read as they stand.
static CONFIGURED_COLLECTIONS_PATH: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Set the run's collections path (`collections_path` of ansible.cfg, or
/// `ANSIBLE_COLLECTIONS_PATH`), once, before playbooks load.
pub fn set_collections_path(paths: &[PathBuf]) {
    let joined: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    let _ = CONFIGURED_COLLECTIONS_PATH.set(joined.join(":"));
}

impl RolePaths {
    /// The search paths for a playbook in `playbook_dir`, from the
    /// configured roles path or the environment as Ansible reads it.
    pub fn from_env(playbook_dir: &Path) -> RolePaths {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let var = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
        };
        let roles_path = CONFIGURED_ROLES_PATH
            .get()
            .cloned()
            .or_else(|| var(&["ANSIBLE_ROLES_PATH"]));
        RolePaths::new(
            playbook_dir,
            roles_path.as_deref(),
            CONFIGURED_COLLECTIONS_PATH
                .get()
                .cloned()
                .or_else(|| var(&["ANSIBLE_COLLECTIONS_PATH", "ANSIBLE_COLLECTIONS_PATHS"]))
                .as_deref(),
            home.as_deref(),
        )
    }

    /// The search paths from the values of the two variables (`:`-separated,
    /// `~` is the home directory), Ansible's defaults where unset.
    pub fn new(
        playbook_dir: &Path,
        roles_path: Option<&str>,
        collections_path: Option<&str>,
        home: Option<&Path>,
    ) -> RolePaths {
        let split = |value: &str| -> Vec<PathBuf> {
            value
                .split(':')
                .filter(|p| !p.is_empty())
                .map(|p| match (p.strip_prefix("~/"), home) {
                    (Some(rest), Some(h)) => h.join(rest),
                    _ if p == "~" => home.map(Path::to_path_buf).unwrap_or_else(|| p.into()),
                    _ => PathBuf::from(p),
                })
                .collect()
        };
        let roles = split(
            roles_path.unwrap_or("~/.ansible/roles:/usr/share/ansible/roles:/etc/ansible/roles"),
        );
        let mut collections = vec![playbook_dir.join("collections")];
        collections.extend(split(
            collections_path.unwrap_or("~/.ansible/collections:/usr/share/ansible/collections"),
        ));
        RolePaths { roles, collections }
    }

    /// The directory of role `name`, used from a file in `base` (a role's
    /// directory or an including file's) in a play from `playbook_dir`;
    /// `within` is the directory of the role using it, whose collection is
    /// searched first for a plain name. The error lists where it looked.
    pub fn find(
        &self,
        name: &str,
        base: &Path,
        playbook_dir: &Path,
        within: Option<&Path>,
    ) -> Result<PathBuf, String> {
        let mut tried: Vec<PathBuf> = Vec::new();
        if let Some((ns, col, role)) = fqcn(name) {
            for root in &self.collections {
                let dir = collection_dir(root, ns, col).join("roles").join(role);
                if dir.is_dir() {
                    return Ok(dir);
                }
            }
        } else if let Some(dir) = within
            .and_then(collection_of)
            .map(|col| col.join("roles").join(name))
            .filter(|d| d.is_dir())
        {
            return Ok(dir);
        }
        let mut candidates = vec![
            base.join("roles"),
            playbook_dir.join("roles"),
            playbook_dir.join("..").join("roles"),
        ];
        candidates.extend(self.roles.iter().cloned());
        candidates.push(playbook_dir.to_path_buf());
        for dir in candidates {
            let role = dir.join(name);
            if role.is_dir() {
                return Ok(role);
            }
            tried.push(dir);
        }
        // A path names the role's directory itself.
        if name.contains('/') {
            let path = playbook_dir.join(name);
            if path.is_dir() {
                return Ok(path);
            }
        }
        let searched: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
        let what = if fqcn(name).is_some() {
            format!(
                " nor in the collections under {}",
                self.collections
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(":")
            )
        } else {
            String::new()
        };
        Err(format!(
            "the role '{name}' was not found in {}{what}",
            searched.join(":")
        ))
    }
}

/// `(namespace, collection, role)` of a collection role's name.
fn fqcn(name: &str) -> Option<(&str, &str, &str)> {
    let mut parts = name.split('.');
    let (ns, col, role) = (parts.next()?, parts.next()?, parts.next()?);
    let ident = |s: &str| {
        !s.is_empty()
            && !s.starts_with(|c: char| c.is_ascii_digit())
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    (parts.next().is_none() && ident(ns) && ident(col) && ident(role)).then_some((ns, col, role))
}

/// A collection's directory under a collections root (which may name the
/// `ansible_collections` directory itself).
fn collection_dir(root: &Path, ns: &str, col: &str) -> PathBuf {
    let tree = if root.file_name().is_some_and(|n| n == "ansible_collections") {
        root.to_path_buf()
    } else {
        root.join("ansible_collections")
    };
    tree.join(ns).join(col)
}

/// The collection a role directory belongs to
/// (`…/ansible_collections/NS/COL/roles/ROLE`), if any.
fn collection_of(role_dir: &Path) -> Option<PathBuf> {
    let roles = role_dir.parent()?;
    let col = roles.parent()?;
    let tree = col.parent()?.parent()?;
    (roles.file_name()? == "roles" && tree.file_name()? == "ansible_collections")
        .then(|| col.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(root: &Path, dirs: &[&str]) {
        for d in dirs {
            std::fs::create_dir_all(root.join(d)).expect("mkdir");
        }
    }

    #[test]
    fn collection_roles_are_found_under_the_collection_paths() {
        let tmp = tempfile::tempdir().expect("tmp");
        let t = tmp.path();
        tree(
            t,
            &[
                "play",
                "cols/ansible_collections/community/zabbix/roles/zabbix_agent/tasks",
                "cols/ansible_collections/community/zabbix/roles/zabbix_repo/tasks",
                "play/collections/ansible_collections/my/col/roles/web/tasks",
                "home/.ansible/roles/plain/tasks",
            ],
        );
        let cols = t.join("cols");
        let paths = RolePaths::new(
            &t.join("play"),
            None,
            Some(cols.to_str().expect("utf-8")),
            Some(&t.join("home")),
        );
        let play = t.join("play");
        let agent = paths
            .find("community.zabbix.zabbix_agent", &play, &play, None)
            .expect("found");
        assert!(agent.ends_with("community/zabbix/roles/zabbix_agent"));
        // A plain name used inside a collection role: its own collection first.
        let repo = paths
            .find("zabbix_repo", &agent, &play, Some(&agent))
            .expect("found");
        assert!(repo.ends_with("community/zabbix/roles/zabbix_repo"));
        // The playbook's own collections/ directory.
        assert!(paths.find("my.col.web", &play, &play, None).is_ok());
        // The default roles path, with ~ as the home directory.
        assert!(paths.find("plain", &play, &play, None).is_ok());
        // A root may name the ansible_collections directory itself.
        let direct = RolePaths::new(
            &play,
            Some(""),
            Some(cols.join("ansible_collections").to_str().expect("utf-8")),
            None,
        );
        assert!(direct
            .find("community.zabbix.zabbix_repo", &play, &play, None)
            .is_ok());
        let err = paths
            .find("community.zabbix.nope", &play, &play, None)
            .expect_err("missing");
        assert!(
            err.contains("the role 'community.zabbix.nope' was not found in")
                && err.contains(cols.to_str().expect("utf-8")),
            "{err}"
        );
    }

    #[test]
    fn a_dotted_role_name_on_the_roles_path_is_still_found() {
        // Roles installed alone keep dotted names (geerlingguy.docker).
        let tmp = tempfile::tempdir().expect("tmp");
        let t = tmp.path();
        tree(t, &["play/roles/geerlingguy.docker/tasks"]);
        let paths = RolePaths::new(&t.join("play"), Some(""), Some(""), None);
        let play = t.join("play");
        assert!(paths.find("geerlingguy.docker", &play, &play, None).is_ok());
        assert!(fqcn("geerlingguy.docker").is_none());
        assert!(fqcn("a.b.c").is_some());
        assert!(fqcn("a.b.c.d").is_none());
    }
}
