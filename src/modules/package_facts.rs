//! `package_facts`: the installed packages as the fact `packages`, shaped
//! as Ansible shapes it: name → list of `{name, version, arch, source}`
//! (a list, since several versions or architectures may be installed).
//! One declared read of dpkg's database; changes nothing.

use async_trait::async_trait;
use serde::Deserialize;

use super::args::opt_strings_ish;
use super::{
    Decision, Module, ModuleCtx, ModuleError, Observed, Plan, Protocol, ReadCtx, ReadSet, Scope,
};
use crate::{Map, Value};

/// Arguments of `package_facts`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageFacts {
    /// Managers to ask (`auto`, `apt`); drover reads dpkg's database.
    #[serde(default, deserialize_with = "opt_strings_ish")]
    manager: Option<Vec<String>>,
    /// Ansible's choice of how to treat several managers (ignored: one here).
    #[serde(default, rename = "strategy")]
    _strategy: Option<Value>,
}

/// The manager names Ansible's package_facts takes (its managers and
/// their aliases).
const MANAGERS: &[&str] = &[
    "apk",
    "apt",
    "pacman",
    "pkg",
    "pkg_info",
    "portage",
    "rpm",
    "dnf",
    "dnf5",
    "yum",
    "zypper",
    "pkg5",
    "pkgng",
    "openbsd_pkg",
];

/// Installed packages, one per line: name, version, architecture. dpkg's
/// own directories follow the task's `PATH`, since Ansible's module reads
/// apt's database through Python, whatever `PATH` a task's `environment`
/// gives (package_facts target: `PATH: "${PATH}:/dir"`, taken literally).
const READ: &str =
    "PATH=\"$PATH:/usr/bin:/bin\" dpkg-query -W -f='${db:Status-Abbrev}\\t${Package}\\t${Version}\\t${Architecture}\\n'";

/// The `packages` fact from the read's output.
fn packages(out: &str) -> Map {
    let mut m = Map::new();
    for line in out.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let [status, name, version, arch] = f[..] else {
            continue;
        };
        // Only what is installed (`ii`, or half-configured states dpkg lists).
        if !status.starts_with('i') {
            continue;
        }
        let mut p = Map::new();
        p.insert("name".into(), Value::from(name));
        p.insert("version".into(), Value::from(version));
        p.insert("arch".into(), Value::from(arch));
        p.insert("source".into(), Value::from("apt"));
        match m.get_mut(name) {
            Some(Value::Array(list)) => list.push(Value::Object(p)),
            _ => {
                m.insert(name.to_string(), Value::Array(vec![Value::Object(p)]));
            }
        }
    }
    m
}

#[async_trait]
impl Module for PackageFacts {
    const NAME: &'static str = "package_facts";
    const ARGS: &'static [&'static str] = &["manager", "strategy"];
    type Change = ();

    fn reads(&self, _ctx: &ReadCtx<'_>) -> Result<Protocol, ModuleError> {
        let asked: Vec<String> = match &self.manager {
            Some(list) if !list.is_empty() => list.iter().map(|m| m.to_lowercase()).collect(),
            _ => vec!["auto".into()],
        };
        let mut unsupported: Vec<&str> = asked
            .iter()
            .map(String::as_str)
            .filter(|m| *m != "auto" && !MANAGERS.contains(m))
            .collect();
        if !unsupported.is_empty() {
            unsupported.sort_unstable();
            unsupported.dedup();
            return Err(ModuleError::failed(format!(
                "Unsupported package managers requested: {}",
                unsupported.join(", ")
            )));
        }
        // Other managers (rpm on a Debian host) are taken to list nothing,
        // as Ansible finds them there: apt's list is the answer.
        if !asked.iter().any(|m| m == "auto" || m == "apt") {
            return Err(ModuleError::failed(format!(
                "package_facts: drover reads apt's (dpkg's) packages only, not {}",
                asked.join(", ")
            )));
        }
        Ok(Protocol::Declared(ReadSet::one(READ.into(), Scope::Host)))
    }

    fn decide(&self, observed: &Observed, _ctx: &ReadCtx<'_>) -> Result<Decision<()>, ModuleError> {
        let out = observed.output(0)?;
        let pkgs = super::reads::parse_read(out, "the installed packages", |s| {
            Ok::<_, std::convert::Infallible>(packages(s))
        })?;
        let mut facts = Map::new();
        facts.insert("packages".into(), Value::Object(pkgs));
        let mut data = Map::new();
        data.insert("ansible_facts".into(), Value::Object(facts));
        Ok(Decision::Plan(Plan::Unchanged(data)))
    }

    async fn apply(&self, _ctx: &ModuleCtx<'_>, _change: ()) -> Result<Map, ModuleError> {
        Ok(Map::new())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::modules::testutil::assert_args_complete;

    #[test]
    fn args() {
        assert_args_complete::<PackageFacts>();
    }

    #[test]
    fn shapes_packages_like_ansible() {
        let m = packages(
            "ii \tsudo\t1.9.13p3-1\tamd64\nii \tlibc6\t2.36-9\tamd64\nii \tlibc6\t2.36-9\ti386\nrc \told\t1\tall\n",
        );
        assert_eq!(
            Value::Object(m.clone())["sudo"],
            json!([{"name": "sudo", "version": "1.9.13p3-1", "arch": "amd64", "source": "apt"}])
        );
        assert_eq!(m["libc6"].as_array().map(Vec::len), Some(2));
        assert!(!m.contains_key("old"), "removed packages are not listed");
    }

    #[test]
    fn takes_ansibles_manager_names() {
        let render = crate::modules::testutil::TestRender::new(json!({}));
        let ctx = render.read_ctx();
        let reads = |v: Value| {
            serde_json::from_value::<PackageFacts>(v)
                .expect("args")
                .reads(&ctx)
                .map_err(|e| e.to_string())
        };
        // package_facts target: rpm tried first finds nothing on a Debian host.
        assert!(reads(json!({"manager": ["rpm", "apt"]})).is_ok());
        assert!(reads(json!({"manager": "auto"})).is_ok());
        assert!(reads(json!({})).is_ok());
        let err = reads(json!({"manager": ["apt", "nope"]})).expect_err("unknown");
        assert_eq!(err, "Unsupported package managers requested: nope");
        let err = reads(json!({"manager": "rpm"})).expect_err("rpm only");
        assert!(err.contains("apt's (dpkg's) packages only"), "{err}");
    }
}
