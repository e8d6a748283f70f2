//! `systemd` (ansible.builtin.systemd_service) and its plain `service` alias:
//! start, stop, restart or reload a unit, enable or disable it, mask it.
//! The unit's state is read in one exec (`systemctl show -p ...`, after a
//! `daemon-reload` when asked) and only the needed `systemctl` commands run,
//! in one more exec.

use async_trait::async_trait;
use serde::Deserialize;

use super::args::{bool_ish, opt_bool_ish};
use super::safe;
use super::{
    Decision, Module, ModuleCtx, ModuleError, Observed, Plan, Protocol, ReadCtx, ReadSet, Scope,
};
use crate::transport::shell_quote;
use crate::transport::ExecOutput;
use crate::{Map, Value};

/// Arguments of `systemd`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Systemd {
    /// Unit name (`.service` is implied without a suffix).
    #[serde(default, alias = "unit", alias = "service")]
    name: Option<String>,
    /// Wanted run state.
    #[serde(default)]
    state: Option<RunState>,
    /// Start at boot.
    #[serde(default, deserialize_with = "opt_bool_ish")]
    enabled: Option<bool>,
    /// Run `systemctl daemon-reload` first (not counted as a change).
    #[serde(default, alias = "daemon-reload", deserialize_with = "bool_ish")]
    daemon_reload: bool,
    /// Mask (true) or unmask (false) the unit.
    #[serde(default, deserialize_with = "opt_bool_ish")]
    masked: Option<bool>,
}

/// Arguments of `service`. Ansible's `service` action runs the host's
/// service manager's module; drover manages systemd hosts, so it runs as
/// `systemd` and takes `systemd`'s arguments too, as Ansible passes them
/// on. The arguments only other managers use are left out with Ansible's
/// warning.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// Unit name.
    #[serde(default, deserialize_with = "super::args::opt_string_ish")]
    name: Option<String>,
    /// Wanted run state.
    #[serde(default)]
    state: Option<RunState>,
    /// Start at boot.
    #[serde(default, deserialize_with = "opt_bool_ish")]
    enabled: Option<bool>,
    /// `systemd`'s: run `systemctl daemon-reload` first.
    #[serde(default, alias = "daemon-reload", deserialize_with = "bool_ish")]
    daemon_reload: bool,
    /// `systemd`'s: mask (true) or unmask (false) the unit.
    #[serde(default, deserialize_with = "opt_bool_ish")]
    masked: Option<bool>,
    /// Which service manager's module to run: `auto` (default) or
    /// `systemd`, the one drover has.
    #[serde(
        default,
        rename = "use",
        deserialize_with = "super::args::opt_string_ish"
    )]
    use_: Option<String>,
    /// Other managers' (a process name to look for): unused with systemd.
    #[serde(default)]
    pattern: Option<Value>,
    /// Other managers' (seconds between stop and start): unused with systemd.
    #[serde(default)]
    sleep: Option<Value>,
    /// Other managers' (the runlevel): unused with systemd.
    #[serde(default)]
    runlevel: Option<Value>,
    /// Other managers' (the init script's arguments): unused with systemd.
    #[serde(default, alias = "args")]
    arguments: Option<Value>,
}

/// The run state a task asks for.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// Running (started when not).
    Started,
    /// Not running.
    Stopped,
    /// Restarted (always a change).
    Restarted,
    /// Reloaded, or started when not running (always a change).
    Reloaded,
}

impl RunState {
    fn as_str(self) -> &'static str {
        match self {
            RunState::Started => "started",
            RunState::Stopped => "stopped",
            RunState::Restarted => "restarted",
            RunState::Reloaded => "reloaded",
        }
    }
}

/// The `systemctl` verbs to run, in order.
#[derive(Debug, PartialEq)]
pub struct SystemdChange {
    verbs: Vec<&'static str>,
}

/// Printed to stderr between the `systemctl` calls of one apply, to tell
/// the failing call's message from the earlier ones'.
const VERB_MARK: &str = "@drover-next-verb\n";

/// Properties read with `systemctl show`.
const PROPS: &str = "Id,LoadState,ActiveState,SubState,UnitFileState";

/// The read's key for the first enablement symlink `systemctl is-enabled
/// -l` lists (not a property of the unit: taken out of its status).
const LINKS: &str = "@enabled-by";

/// `systemctl show` output (`Key=value` lines) as a map.
fn parse_show(out: &str) -> Map {
    let mut m = Map::new();
    for line in out.lines() {
        if let Some((k, v)) = line.split_once('=') {
            if !k.is_empty() && !k.contains(' ') {
                m.insert(k.to_string(), Value::from(v.to_string()));
            }
        }
    }
    m
}

fn prop<'a>(status: &'a Map, key: &str) -> &'a str {
    status.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Is the unit running (or on its way)?
fn is_running(status: &Map) -> bool {
    matches!(
        prop(status, "ActiveState"),
        "active" | "activating" | "reloading"
    )
}

/// Does the unit count as enabled? What `systemctl is-enabled` answers 0
/// for, except the states Ansible enables anyway (runtime-only, indirect,
/// alias) unless enablement symlinks are listed for them (`linked`).
fn is_enabled(status: &Map, linked: bool) -> bool {
    match prop(status, "UnitFileState") {
        "enabled" | "static" | "generated" | "transient" => true,
        "indirect" | "enabled-runtime" | "alias" => linked,
        _ => false,
    }
}

impl Systemd {
    /// Decide from the unit's properties.
    fn decide(&self, status: &Map, linked: bool) -> Result<Option<SystemdChange>, ModuleError> {
        let Some(name) = &self.name else {
            return Ok(None);
        };
        let not_found = prop(status, "LoadState") == "not-found";
        let mut verbs = Vec::new();
        match self.masked {
            // systemctl masks units that do not exist too.
            Some(true) if prop(status, "UnitFileState") != "masked" => verbs.push("mask"),
            Some(false) if prop(status, "UnitFileState") == "masked" => verbs.push("unmask"),
            _ => {}
        }
        if not_found && (self.state.is_some() || self.enabled.is_some()) {
            return Err(ModuleError::failed(format!(
                "Could not find the requested service {name}: host"
            )));
        }
        if let Some(want) = self.enabled {
            if want != is_enabled(status, linked) {
                // `static` units cannot be disabled; systemctl says so.
                verbs.push(if want { "enable" } else { "disable" });
            }
        }
        let running = is_running(status);
        match self.state {
            Some(RunState::Started) if !running => verbs.push("start"),
            Some(RunState::Stopped) if running || prop(status, "ActiveState") == "deactivating" => {
                verbs.push("stop")
            }
            Some(RunState::Restarted) => verbs.push("restart"),
            Some(RunState::Reloaded) => verbs.push(if running { "reload" } else { "start" }),
            _ => {}
        }
        Ok((!verbs.is_empty()).then_some(SystemdChange { verbs }))
    }

    fn read_script(&self, reload: bool) -> String {
        let mut s = String::new();
        if reload {
            s.push_str(
                "systemctl daemon-reload >&2 || { echo 'daemon-reload failed' >&2; exit 90; }\n",
            );
        }
        let Some(name) = &self.name else {
            return s;
        };
        let name = shell_quote(name);
        if self.enabled.is_none() {
            s.push_str(&format!("systemctl show -p {PROPS} {name}\n"));
            return s;
        }
        // Ansible asks `systemctl is-enabled -l` and counts `indirect`,
        // `enabled-runtime` and `alias` as not enabled only when no
        // enablement symlink is listed under the state: read them then.
        s.push_str(&format!(
            "s=$(systemctl show -p {PROPS} {name}) || exit $?\nprintf '%s\\n' \"$s\"\n\
             case \"$s\" in *UnitFileState=indirect*|*UnitFileState=enabled-runtime*|*UnitFileState=alias*) \
             systemctl is-enabled -l {name} 2>/dev/null | {{ read -r _; read -r l && echo \"{LINKS}=$l\"; }};; esac\ntrue\n"
        ));
        s
    }

    /// The verbs in order, each as its own `systemctl` call; the first
    /// that fails ends the script with 100 + its index, and each call's
    /// stderr starts after a `VERB_MARK` line.
    fn apply_script(&self, change: &SystemdChange) -> String {
        let name = shell_quote(self.name.as_deref().unwrap_or_default());
        let mut s = String::new();
        for (i, v) in change.verbs.iter().enumerate() {
            if i > 0 {
                s.push_str(&format!("echo {} >&2; ", VERB_MARK.trim_end()));
            }
            s.push_str(&format!("systemctl {v} {name} || exit {}\n", 100 + i));
        }
        s
    }

    /// Ansible's message for a failed `systemctl` call: masking names the
    /// unit in parentheses, enabling shows the command's whole output,
    /// the run state its stderr.
    fn apply_failure(&self, change: &SystemdChange, out: &ExecOutput) -> ModuleError {
        let unit = self.name.as_deref().unwrap_or("");
        let stderr = out.stderr_str();
        let index = usize::try_from(out.status - 100).ok();
        let Some(verb) = index.and_then(|i| change.verbs.get(i)) else {
            return ModuleError::failed(format!(
                "Unable to {} service {unit}: {}",
                change.verbs.join("/"),
                stderr.trim()
            ));
        };
        let err = stderr.rsplit(VERB_MARK).next().unwrap_or_default();
        let msg = match *verb {
            "mask" | "unmask" => format!("Failed to {verb} the service ({unit}): {}", err.trim()),
            "enable" | "disable" => {
                format!("Unable to {verb} service {unit}: {}{err}", out.stdout_str())
            }
            _ => format!("Unable to {verb} service {unit}: {err}"),
        };
        let mut data = Map::new();
        data.insert("rc".into(), Value::from(out.status));
        ModuleError::Failed { msg, data }
    }

    fn data(&self, status: Map) -> Map {
        let mut m = Map::new();
        if let Some(n) = &self.name {
            m.insert("name".into(), Value::from(n.clone()));
        }
        if let Some(s) = self.state {
            // A restarted or reloaded unit is, afterwards, started.
            let after = match s {
                RunState::Restarted | RunState::Reloaded => "started",
                other => other.as_str(),
            };
            m.insert("state".into(), Value::from(after));
        }
        if let Some(e) = self.enabled {
            m.insert("enabled".into(), Value::Bool(e));
        }
        if !status.is_empty() {
            m.insert("status".into(), Value::Object(status));
        }
        m
    }
}

impl Systemd {
    fn check_name(&self) -> Result<(), ModuleError> {
        if self.name.is_none()
            && (self.state.is_some() || self.enabled.is_some() || self.masked.is_some())
        {
            return Err(ModuleError::Args(
                "name is required with state, enabled or masked".into(),
            ));
        }
        if let Some(n) = &self.name {
            safe::name("name", n)?;
        }
        Ok(())
    }

    /// The plan, from what the read script printed.
    fn plan_from(&self, out: &ExecOutput) -> Result<Plan<SystemdChange>, ModuleError> {
        if out.status != 0 {
            let what = if out.status == 90 {
                "systemctl daemon-reload".to_string()
            } else {
                format!("systemctl show {}", self.name.as_deref().unwrap_or(""))
            };
            let mut data = Map::new();
            data.insert("rc".into(), Value::from(out.status));
            return Err(ModuleError::Failed {
                msg: format!("{what} failed: {}", out.stderr_str().trim()),
                data,
            });
        }
        let mut status = parse_show(&out.stdout_str());
        let linked = status.remove(LINKS).is_some();
        match self.decide(&status, linked)? {
            None => Ok(Plan::Unchanged(self.data(status))),
            Some(change) => Ok(Plan::Change {
                change,
                diff: None,
                data: self.data(status),
            }),
        }
    }
}

#[async_trait]
impl Module for Systemd {
    const NAME: &'static str = "systemd";
    const ARGS: &'static [&'static str] = &[
        "name",
        "unit",
        "service",
        "state",
        "enabled",
        "daemon_reload",
        "daemon-reload",
        "masked",
    ];
    type Change = SystemdChange;

    fn validate(&self) -> Result<(), super::ArgError> {
        if self.name.is_none()
            && (self.state.is_some() || self.enabled.is_some() || self.masked.is_some())
        {
            return Err("argument 'name' is required with state, enabled or masked".into());
        }
        Ok(())
    }

    fn reads(&self, ctx: &ReadCtx<'_>) -> Result<Protocol, ModuleError> {
        self.check_name()?;
        // Ansible does not reload in check mode: it changes the host, so
        // the read that starts with it is no pure read.
        if self.daemon_reload && !ctx.check {
            return Ok(Protocol::Imperative);
        }
        let script = self.read_script(false);
        Ok(Protocol::Declared(if script.is_empty() {
            ReadSet::new()
        } else {
            ReadSet::one(script, Scope::Host)
        }))
    }

    fn decide(
        &self,
        observed: &Observed,
        _ctx: &ReadCtx<'_>,
    ) -> Result<Decision<SystemdChange>, ModuleError> {
        match observed.get(0) {
            None => Ok(Decision::Plan(Plan::Unchanged(self.data(Map::new())))),
            Some(out) => self.plan_from(out).map(Decision::Plan),
        }
    }

    /// With `daemon_reload` (outside check mode): reload, then read.
    async fn run_imperative(
        &self,
        ctx: &ModuleCtx<'_>,
    ) -> Result<Plan<SystemdChange>, ModuleError> {
        self.check_name()?;
        let out = ctx.remote.exec(&self.read_script(true), b"").await?;
        self.plan_from(&out)
    }

    async fn apply(&self, ctx: &ModuleCtx<'_>, change: SystemdChange) -> Result<Map, ModuleError> {
        let out = ctx.remote.exec(&self.apply_script(&change), b"").await?;
        if out.status != 0 {
            return Err(self.apply_failure(&change, &out));
        }
        Ok(Map::new())
    }
}

impl Service {
    fn as_systemd(&self) -> Systemd {
        Systemd {
            name: self.name.clone(),
            state: self.state,
            enabled: self.enabled,
            daemon_reload: self.daemon_reload,
            masked: self.masked,
        }
    }

    /// Ansible's warnings for the arguments systemd does not use, in its
    /// order.
    fn warnings(&self) -> Vec<String> {
        [
            ("pattern", &self.pattern),
            ("runlevel", &self.runlevel),
            ("sleep", &self.sleep),
            ("arguments", &self.arguments),
        ]
        .into_iter()
        .filter(|(_, v)| v.is_some())
        .map(|(arg, _)| format!("Ignoring \"{arg}\" as it is not used in \"systemd\""))
        .collect()
    }
}

#[async_trait]
impl Module for Service {
    const NAME: &'static str = "service";
    const ARGS: &'static [&'static str] = &[
        "name",
        "state",
        "enabled",
        "daemon_reload",
        "daemon-reload",
        "masked",
        "use",
        "pattern",
        "sleep",
        "runlevel",
        "arguments",
        "args",
    ];
    type Change = SystemdChange;

    fn validate(&self) -> Result<(), super::ArgError> {
        self.as_systemd().validate()
    }

    fn reads(&self, ctx: &ReadCtx<'_>) -> Result<Protocol, ModuleError> {
        // Refused where it runs, not at load: a task for another service
        // manager may sit behind a `when` that never holds here.
        match self.use_.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("auto" | "systemd" | "ansible.builtin.systemd" | "ansible.legacy.systemd") => {}
            Some(other) => {
                return Err(ModuleError::Args(format!(
                    "use: {other:?} is a service manager drover does not drive (it runs service as systemd: use auto or systemd)"
                )))
            }
        }
        self.as_systemd().reads(ctx)
    }

    fn decide(
        &self,
        observed: &Observed,
        ctx: &ReadCtx<'_>,
    ) -> Result<Decision<SystemdChange>, ModuleError> {
        super::with_warnings(
            Module::decide(&self.as_systemd(), observed, ctx),
            self.warnings(),
        )
    }

    async fn run_imperative(
        &self,
        ctx: &ModuleCtx<'_>,
    ) -> Result<Plan<SystemdChange>, ModuleError> {
        self.as_systemd().run_imperative(ctx).await
    }

    async fn apply(&self, ctx: &ModuleCtx<'_>, change: SystemdChange) -> Result<Map, ModuleError> {
        self.as_systemd().apply(ctx, change).await
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::modules::testutil::assert_args_complete;

    fn module(v: Value) -> Systemd {
        serde_json::from_value(v).expect("args")
    }

    fn status(active: &str, file: &str) -> Map {
        parse_show(&format!(
            "Id=k3s.service\nLoadState=loaded\nActiveState={active}\nSubState=x\nUnitFileState={file}\n"
        ))
    }

    fn verbs(m: &Systemd, s: &Map) -> Vec<&'static str> {
        m.decide(s, false)
            .expect("ok")
            .map(|c| c.verbs)
            .unwrap_or_default()
    }

    #[test]
    fn args() {
        assert_args_complete::<Systemd>();
        assert_args_complete::<Service>();
    }

    #[test]
    fn system_modules_are_registered() {
        for name in [
            "ansible.builtin.systemd",
            "ansible.builtin.systemd_service",
            "service",
            "ansible.builtin.apt",
            "ansible.posix.mount",
            "get_url",
            "ansible.builtin.reboot",
        ] {
            assert!(crate::modules::lookup(name).is_some(), "{name}");
        }
        assert_eq!(
            crate::modules::lookup("systemd_service").map(|m| m.name),
            Some("systemd")
        );
    }

    #[test]
    fn parses_show() {
        let s = parse_show("Id=a.service\nLoadState=not-found\nActiveState=inactive\nExecStart={ path=/x ; argv[]=/x a=b }\n");
        assert_eq!(prop(&s, "Id"), "a.service");
        assert_eq!(prop(&s, "LoadState"), "not-found");
        assert_eq!(prop(&s, "ExecStart"), "{ path=/x ; argv[]=/x a=b }");
        assert_eq!(prop(&s, "Missing"), "");
    }

    #[test]
    fn decides_like_ansible() {
        let m = module(json!({"name": "k3s", "state": "started", "enabled": true}));
        assert!(verbs(&m, &status("active", "enabled")).is_empty());
        assert_eq!(
            verbs(&m, &status("inactive", "disabled")),
            vec!["enable", "start"]
        );
        assert_eq!(verbs(&m, &status("failed", "enabled")), vec!["start"]);
        assert!(verbs(&m, &status("activating", "static")).is_empty());
        let m = module(json!({"name": "k3s", "state": "stopped", "enabled": "no"}));
        assert_eq!(
            verbs(&m, &status("active", "enabled")),
            vec!["disable", "stop"]
        );
        assert!(verbs(&m, &status("inactive", "disabled")).is_empty());
        let m = module(json!({"name": "k3s", "state": "restarted"}));
        assert_eq!(verbs(&m, &status("active", "enabled")), vec!["restart"]);
        assert_eq!(verbs(&m, &status("inactive", "enabled")), vec!["restart"]);
        let m = module(json!({"name": "k3s", "state": "reloaded"}));
        assert_eq!(verbs(&m, &status("active", "enabled")), vec!["reload"]);
        assert_eq!(verbs(&m, &status("inactive", "enabled")), vec!["start"]);
        let m = module(json!({"name": "k3s", "masked": true}));
        assert_eq!(verbs(&m, &status("inactive", "enabled")), vec!["mask"]);
        assert!(verbs(&m, &status("inactive", "masked")).is_empty());
        let m = module(json!({"name": "k3s", "masked": false, "enabled": true}));
        assert_eq!(
            verbs(&m, &status("inactive", "masked")),
            vec!["unmask", "enable"]
        );
        let m = module(json!({"daemon_reload": true}));
        assert!(
            verbs(&m, &Map::new()).is_empty(),
            "reload alone is no change"
        );
    }

    #[test]
    fn indirect_units_count_as_enabled_once_is_enabled_lists_their_links() {
        let m = module(json!({"name": "dummy", "enabled": true}));
        let unlinked = status("inactive", "indirect");
        assert_eq!(verbs(&m, &unlinked), vec!["enable"]);
        assert!(m.decide(&unlinked, true).expect("ok").is_none());
        let off = module(json!({"name": "dummy", "enabled": false}));
        assert!(verbs(&off, &unlinked).is_empty());
        assert_eq!(
            off.decide(&status("inactive", "enabled-runtime"), true)
                .expect("ok")
                .map(|c| c.verbs),
            Some(vec!["disable"])
        );
        let out = ExecOutput {
            status: 0,
            stdout: format!(
                "Id=dummy.service\nLoadState=loaded\nActiveState=inactive\nUnitFileState=indirect\n{LINKS}=/etc/systemd/system/sockets.target.wants/dummy.socket\n"
            )
            .into_bytes(),
            stderr: Vec::new(),
        };
        match m.plan_from(&out).expect("plan") {
            Plan::Unchanged(data) => assert!(data["status"].get(LINKS).is_none(), "{data:?}"),
            Plan::Change { change, .. } => panic!("changed: {change:?}"),
            Plan::Run(_) => panic!("no plan"),
        }
        assert!(m.read_script(false).contains("is-enabled -l dummy"));
        let no_enable = module(json!({"name": "dummy", "state": "started"}));
        assert!(!no_enable.read_script(false).contains("is-enabled"));
    }

    #[test]
    fn unknown_units_fail_like_ansible() {
        let s = parse_show("Id=nope.service\nLoadState=not-found\nActiveState=inactive\n");
        let err = module(json!({"name": "nope", "state": "started"}))
            .decide(&s, false)
            .expect_err("unknown");
        assert!(
            err.to_string()
                .contains("Could not find the requested service nope"),
            "{err}"
        );
        assert!(module(json!({"name": "nope", "enabled": false}))
            .decide(&s, false)
            .is_err());
    }

    #[test]
    fn failures_name_the_failing_call_as_ansible_does() {
        let m = module(json!({"name": "mask_me.service", "masked": true, "enabled": true}));
        let change = SystemdChange {
            verbs: vec!["mask", "enable"],
        };
        let out = |status, stderr: &str| ExecOutput {
            status,
            stdout: Vec::new(),
            stderr: stderr.as_bytes().to_vec(),
        };
        let err = m.apply_failure(&change, &out(100, "Failed to mask unit: File exists\n"));
        assert_eq!(
            err.to_string(),
            "Failed to mask the service (mask_me.service): Failed to mask unit: File exists"
        );
        let err = m.apply_failure(
            &change,
            &out(101, "Created symlink x\n@drover-next-verb\nno such unit\n"),
        );
        assert_eq!(
            err.to_string(),
            "Unable to enable service mask_me.service: no such unit\n"
        );
        let err = m.apply_failure(&change, &out(255, "lost\n"));
        assert!(err.to_string().contains("mask/enable"), "{err}");
    }

    #[test]
    fn scripts() {
        let m = module(json!({"name": "k3s-agent", "state": "started", "daemon-reload": "yes"}));
        assert!(m.daemon_reload);
        let r = m.read_script(true);
        assert!(r.starts_with("systemctl daemon-reload"), "{r}");
        assert!(r.ends_with(&format!("systemctl show -p {PROPS} k3s-agent\n")));
        assert!(!m.read_script(false).contains("daemon-reload"));
        assert_eq!(
            m.apply_script(&SystemdChange {
                verbs: vec!["enable", "start"]
            }),
            "systemctl enable k3s-agent || exit 100\n\
             echo @drover-next-verb >&2; systemctl start k3s-agent || exit 101\n"
        );
        let s: Service =
            serde_json::from_value(json!({"name": "ssh", "state": "restarted"})).expect("args");
        assert_eq!(s.as_systemd().state, Some(RunState::Restarted));
    }

    /// service target: `pattern` and `sleep` (other service managers'
    /// arguments) were refused, `daemon-reload` too, and a restarted unit
    /// reported `state: restarted` where Ansible reports `started`.
    #[test]
    fn service_passes_systemd_arguments_and_warns_of_the_others() {
        let s: Service = serde_json::from_value(json!({
            "name": "ansible_test", "state": "restarted", "sleep": 2,
            "pattern": "ansible_test_ser", "daemon-reload": true, "use": "auto"
        }))
        .expect("args");
        assert!(s.validate().is_ok());
        let d = s.as_systemd();
        assert!(d.daemon_reload);
        assert_eq!(
            s.warnings(),
            [
                "Ignoring \"pattern\" as it is not used in \"systemd\"",
                "Ignoring \"sleep\" as it is not used in \"systemd\""
            ]
        );
        assert_eq!(d.data(Map::new())["state"], json!("started"));
        let observed = crate::modules::reads::observed_stdout(&[
            "Id=ansible_test.service\nLoadState=loaded\nActiveState=active\nSubState=running\nUnitFileState=enabled\n",
        ]);
        let render = crate::modules::testutil::TestRender::new(json!({}));
        let ctx = render.read_ctx();
        let warned = s.warnings();
        match Module::decide(&s, &observed, &ctx) {
            Ok(Decision::Plan(Plan::Change { data, .. })) => {
                assert_eq!(data["warnings"], json!(warned));
                assert_eq!(data["state"], json!("started"));
            }
            other => panic!("a restart expected: {:?}", other.err()),
        }
        let s: Service =
            serde_json::from_value(json!({"name": "x", "use": "sysvinit"})).expect("args");
        assert!(s.validate().is_ok(), "refused where it runs only");
        assert!(s.reads(&ctx).is_err());
        let err = serde_json::from_value::<Service>(json!({"name": "x", "stat": "started"}))
            .expect_err("an unknown argument");
        assert!(err.to_string().contains("stat"), "{err}");
        let s: Service = serde_json::from_value(json!({"name": "x"})).expect("args");
        assert!(s.warnings().is_empty());
    }
}
