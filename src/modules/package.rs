//! `package`: install or remove packages with the host's package manager.
//! drover's hosts are Debian-family, so it hands the task to `apt` (reads,
//! decision, check mode and diff are apt's); `use:` or the `pkg_mgr` fact
//! naming another manager is refused with a clear message.

use async_trait::async_trait;
use serde::Deserialize;

use super::apt::{Apt, AptChange};
use super::args::{opt_string_ish, opt_strings_ish};
use super::{Decision, Module, ModuleCtx, ModuleError, Observed, Protocol, ReadCtx};
use crate::{Map, Value};

/// Arguments of `package`: its own, and those of the backend (apt), which
/// Ansible passes on to it (`update_cache`, `cache_valid_time`, ...).
#[derive(Debug, Deserialize)]
#[serde(try_from = "WithBackend")]
pub struct Package {
    /// Packages (with a version as the manager writes it: `name=1.2*`).
    /// Documented as required, but Ansible's action hands the task to the
    /// backend as written (`package: {update_cache: true}` is apt's), and
    /// `name` may come from the backend's `module_defaults`.
    #[serde(default, deserialize_with = "strings")]
    name: Vec<String>,
    /// `present`/`installed`, `absent`/`removed` or `latest`. Documented as
    /// required, but Ansible's action hands the task to the backend as
    /// written, so the backend's default (apt's `present`) applies.
    #[serde(default, deserialize_with = "opt_string_ish")]
    state: Option<String>,
    /// The manager to use; `auto` (default) follows the `pkg_mgr` fact.
    #[serde(default, rename = "use", deserialize_with = "opt_string_ish")]
    use_: Option<String>,
    /// The backend's own arguments, passed on.
    #[serde(skip)]
    backend: Map,
}

/// `package`'s arguments as written: its own, and the rest for the backend.
#[derive(Deserialize)]
struct WithBackend {
    #[serde(default, deserialize_with = "strings")]
    name: Vec<String>,
    #[serde(default, deserialize_with = "opt_string_ish")]
    state: Option<String>,
    #[serde(default, rename = "use", deserialize_with = "opt_string_ish")]
    use_: Option<String>,
    #[serde(flatten)]
    backend: Map,
}

impl TryFrom<WithBackend> for Package {
    type Error = String;

    fn try_from(w: WithBackend) -> Result<Package, String> {
        if let Some(k) = w
            .backend
            .keys()
            .find(|k| !Package::ARGS.contains(&k.as_str()))
        {
            let listed: Vec<String> = Package::ARGS.iter().map(|a| format!("`{a}`")).collect();
            return Err(format!(
                "unknown field `{k}`, expected one of {}",
                listed.join(", ")
            ));
        }
        Ok(Package {
            name: w.name,
            state: w.state,
            use_: w.use_,
            backend: w.backend,
        })
    }
}

fn strings<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(opt_strings_ish(d)?.unwrap_or_default())
}

impl Package {
    /// The manager, as Ansible's action picks it: `use`, else the variable
    /// `ansible_package_use`, else the `pkg_mgr` fact when gathered, else apt.
    fn manager(&self, ctx: &ReadCtx<'_>) -> String {
        let named = |expr: &str| {
            ctx.render
                .eval(expr)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .filter(|m| !m.is_empty() && m != "auto" && m != "unknown")
        };
        match self.use_.as_deref() {
            Some(u) if u != "auto" => u.to_string(),
            _ => named("ansible_package_use | default('')")
                .or_else(|| named("ansible_facts['pkg_mgr'] | default('auto')"))
                .unwrap_or_else(|| "apt".into()),
        }
    }

    /// The `apt` task this one stands for.
    fn apt(&self, ctx: &ReadCtx<'_>) -> Result<Apt, ModuleError> {
        let manager = self.manager(ctx);
        if manager != "apt" {
            // Ansible's words for a manager that is no module at all.
            return Err(ModuleError::failed(
                if super::known::resolve(&manager, &[]).is_none() {
                    format!(
                        "Could not find a matching action for the \"{manager}\" package manager."
                    )
                } else {
                    format!(
                        "package: drover manages packages with apt only; this host's manager is {manager:?}"
                    )
                },
            ));
        }
        let mut args = self.backend.clone();
        if !self.name.is_empty() {
            args.insert("name".into(), serde_json::json!(self.name));
        }
        if let Some(state) = &self.state {
            args.insert("state".into(), Value::from(state.clone()));
        }
        serde_json::from_value(Value::Object(args)).map_err(|e| ModuleError::Args(e.to_string()))
    }
}

#[async_trait]
impl Module for Package {
    const NAME: &'static str = "package";
    // Its own, then apt's (see `Apt::ARGS`), which it passes on.
    const ARGS: &'static [&'static str] = &[
        "name",
        "state",
        "use",
        "update_cache",
        "update-cache",
        "cache_valid_time",
        "purge",
        "install_recommends",
        "install-recommends",
        "lock_timeout",
        "allow_downgrade",
        "allow-downgrade",
        "allow_downgrades",
        "allow-downgrades",
    ];
    // Arguments of package's other backends (dnf, yum): Ansible passes them on
    // and apt refuses them; they fail where given.
    const PENDING: &'static [&'static str] = &[
        "allowerasing",
        "autoremove",
        "best",
        "bugfix",
        "cacheonly",
        "conf_file",
        "disable_excludes",
        "disable_gpg_check",
        "disable_plugin",
        "disablerepo",
        "download_only",
        "download_dir",
        "enable_plugin",
        "enablerepo",
        "exclude",
        "installroot",
        "install_repoquery",
        "install_weak_deps",
        "list",
        "nobest",
        "releasever",
        "security",
        "skip_broken",
        "update_only",
        "validate_certs",
        "sslverify",
    ];
    type Change = AptChange;

    fn reads(&self, ctx: &ReadCtx<'_>) -> Result<Protocol, ModuleError> {
        self.apt(ctx)?.reads(ctx)
    }

    fn decide(
        &self,
        observed: &Observed,
        ctx: &ReadCtx<'_>,
    ) -> Result<Decision<AptChange>, ModuleError> {
        self.apt(ctx)?.decide(observed, ctx)
    }

    fn touches(&self, change: &AptChange) -> super::Touched {
        // apt's own answer; the context is not needed to say what it touches.
        match serde_json::from_value::<Apt>(serde_json::json!({"name": self.name})) {
            Ok(apt) => apt.touches(change),
            Err(_) => super::Touched::Everything,
        }
    }

    async fn apply(&self, ctx: &ModuleCtx<'_>, change: AptChange) -> Result<Map, ModuleError> {
        let mut data = self.apt(&ctx.reading())?.apply(ctx, change).await?;
        data.insert("use".into(), Value::from("apt"));
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::modules::testutil::{assert_args_complete, Harness};

    #[test]
    fn args() {
        assert_args_complete::<Package>();
    }

    #[test]
    fn dispatches_to_apt_and_refuses_other_managers() {
        let h = Harness::with_vars(json!({"ansible_facts": {"pkg_mgr": "dnf"}}));
        let ctx = h.ctx(false, false);
        let m: Package =
            serde_json::from_value(json!({"name": "vim", "state": "present"})).expect("args");
        let err = m.apt(&ctx.reading()).expect_err("dnf");
        assert!(err.to_string().contains("apt only"), "{err}");
        let h = Harness::new();
        let ctx = h.ctx(false, false);
        assert!(m.apt(&ctx.reading()).is_ok(), "no facts: apt");
        let m: Package = serde_json::from_value(
            json!({"name": ["vim", "git"], "state": "installed", "use": "apt"}),
        )
        .expect("args");
        assert!(matches!(m.reads(&ctx.reading()), Ok(Protocol::Declared(_))));
        let m: Package =
            serde_json::from_value(json!({"name": "vim", "state": "present", "use": "yum"}))
                .expect("args");
        assert!(m.apt(&ctx.reading()).is_err());
        // package target: a manager that is no module at all, named by
        // the variable Ansible reads.
        let lola = Harness::with_vars(json!({"ansible_package_use": "lola"}));
        let lctx = lola.ctx(false, false);
        let m: Package = serde_json::from_value(json!({"name": "x"})).expect("args");
        let err = m.apt(&lctx.reading()).expect_err("lola");
        assert!(
            err.to_string()
                .contains("Could not find a matching action for the \"lola\" package manager."),
            "{err}"
        );
        let m: Package = serde_json::from_value(json!({"name": "vim"})).expect("args");
        let apt = m.apt(&ctx.reading()).expect("apt");
        assert_eq!(
            format!("{apt:?}"),
            format!(
                "{:?}",
                serde_json::from_value::<Apt>(json!({"name": ["vim"], "state": "present"}))
                    .expect("args")
            ),
            "without state, apt's default (present) applies, as Ansible hands the task on"
        );
    }

    #[test]
    fn the_backends_arguments_are_passed_on_to_apt() {
        let h = Harness::new();
        let ctx = h.ctx(false, false);
        let m: Package = serde_json::from_value(
            json!({"name": "vim", "state": "present", "update_cache": true, "cache_valid_time": 3600}),
        )
        .expect("apt's arguments are package's too");
        let apt = format!("{:?}", m.apt(&ctx.reading()).expect("apt"));
        assert!(apt.contains("3600"), "{apt}");
        // package target: no name (it may come from the backend's
        // module_defaults) loads, and apt gets the task as written.
        let m: Package = serde_json::from_value(json!({"update_cache": true})).expect("no name");
        let apt = format!("{:?}", m.apt(&ctx.reading()).expect("apt"));
        let want = format!(
            "{:?}",
            serde_json::from_value::<Apt>(json!({"update_cache": true})).expect("apt args")
        );
        assert_eq!(apt, want);
        let err = serde_json::from_value::<Package>(
            json!({"name": "vim", "state": "present", "enablerepo": "x"}),
        )
        .expect_err("not apt's");
        assert!(
            err.to_string().contains("unknown field `enablerepo`"),
            "{err}"
        );
    }
}
