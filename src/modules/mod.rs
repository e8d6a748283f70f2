//! Modules: one file each, registered once in [`MODULES`].
//!
//! A module learns the state it needs and answers with a [`Plan`]:
//! unchanged, a change it can make, or a command whose effect it cannot
//! predict. Most modules declare what they read ([`Module::reads`], see
//! [`reads`]) and decide from what was observed ([`Module::decide`], pure);
//! the others read and decide themselves ([`Module::run_imperative`]). The
//! engine ([`drive`]) owns the reads, check mode, diffs and the changed
//! flag: in check mode it stops at the plan, otherwise it calls `apply` with
//! exactly the change that was planned.

pub mod add_host;
pub mod alternatives;
pub mod apt;
mod apt_deb;
pub mod apt_key;
pub mod apt_repository;
pub mod args;
pub mod assert;
pub mod authorized_key;
pub mod blockinfile;
pub mod cmdargs;
pub mod command;
pub mod copy;
pub mod cron;
pub mod deb822_repository;
pub mod debug;
pub mod fail;
pub mod fetch;
pub mod file;
pub mod find;
pub mod fs;
pub mod fs_deferred;
pub mod get_url;
pub mod getent;
pub mod group;
pub mod group_by;
pub mod helm;
pub mod helm_repository;
pub mod hostname;
pub mod ini_file;
pub mod iptables;
pub mod k8s;
pub mod k8s_apply;
pub mod k8s_info;
pub mod k8s_node_labels;
pub mod k8s_object;
pub mod known;
pub mod lineinfile;
pub mod modprobe;
pub mod mount;
pub mod package;
pub mod package_facts;
pub mod pause;
pub mod ping;
pub mod raw;
pub mod reads;
pub mod reboot;
pub mod replace;
pub mod safe;
pub mod script;
pub mod service_facts;
pub mod set_fact;
pub mod setup;
pub mod slurp;
pub mod stat;
pub mod sysctl;
pub mod systemd;
pub mod tempfile;
pub mod template;
pub mod testutil;
mod textedit;
pub mod timezone;
pub mod ufw;
pub mod unarchive;
pub mod uri;
pub mod user;
pub mod wait_for;
pub mod wait_for_connection;

use std::path::PathBuf;

use async_trait::async_trait;
use futures::future::BoxFuture;
use serde::de::DeserializeOwned;

pub use reads::{Decision, Observed, Observer, Protocol, ReadSet, Scope, ScopePath, Touched};

use crate::transport::{Remote, TransportError};
use crate::{Map, Value};

/// Why a module did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    /// The task failed; `data` is still registered (rc, stdout, ...).
    #[error("{msg}")]
    Failed {
        /// What went wrong.
        msg: String,
        /// Result fields to register alongside the failure.
        data: Map,
    },
    /// The arguments (after templating) are not valid for the module.
    #[error("invalid arguments: {0}")]
    Args(String),
    /// The host could not be reached or the connection broke.
    #[error(transparent)]
    Transport(#[from] TransportError),
}

impl ModuleError {
    /// A failure with a message and no data.
    pub fn failed(msg: impl Into<String>) -> ModuleError {
        ModuleError::Failed {
            msg: msg.into(),
            data: Map::new(),
        }
    }
}

/// Add Ansible's result `warnings` (printed as `[WARNING]:` by the
/// engine) to a decision, failed or not: a module's warnings about what it
/// saw hold whatever it then decides.
pub fn with_warnings<C>(
    decided: Result<Decision<C>, ModuleError>,
    warnings: Vec<String>,
) -> Result<Decision<C>, ModuleError> {
    if warnings.is_empty() {
        return decided;
    }
    let add = |data: &mut Map| {
        let list = data
            .entry("warnings")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(l) = list {
            l.extend(warnings.iter().cloned().map(Value::from));
        }
    };
    match decided {
        Ok(Decision::Plan(Plan::Unchanged(mut data))) => {
            add(&mut data);
            Ok(Decision::Plan(Plan::Unchanged(data)))
        }
        Ok(Decision::Plan(Plan::Change {
            change,
            diff,
            mut data,
        })) => {
            add(&mut data);
            Ok(Decision::Plan(Plan::Change { change, diff, data }))
        }
        Err(ModuleError::Failed { msg, mut data }) => {
            add(&mut data);
            Err(ModuleError::Failed { msg, data })
        }
        other => other,
    }
}

/// A before/after pair for `--diff`.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
pub struct Diff {
    /// Label of the old state, usually the path.
    pub before_header: String,
    /// Label of the new state.
    pub after_header: String,
    /// Old content ("" for a new file).
    pub before: String,
    /// New content.
    pub after: String,
}

/// What a module found and would do.
pub enum Plan<C> {
    /// The host already matches; the map is the result to register.
    Unchanged(Map),
    /// The host differs: `change` makes it match. `data` is the result to
    /// register (also in check mode); `diff` is shown with `--diff`.
    Change {
        /// What `apply` will do.
        change: C,
        /// Old and new state, when it can be shown as text.
        diff: Option<Diff>,
        /// Result fields known before applying.
        data: Map,
    },
    /// An action whose effect cannot be known in advance (command, shell):
    /// skipped in check mode, run otherwise and reported changed unless
    /// `apply` answers `changed: false`.
    Run(C),
}

/// Renders templates and evaluates expressions with the task's variables.
pub trait Render: Send + Sync {
    /// Render a Jinja2 template (the `template` module's source, a string).
    fn render(&self, source: &str, name: &str) -> Result<String, ModuleError>;
    /// Render a template written in its own syntax (the template module's
    /// delimiters and whitespace options), with `vars` over the task's
    /// variables (the template module's `template_path`, ...).
    fn render_syntax(
        &self,
        source: &str,
        name: &str,
        syntax: &crate::template::Syntax,
        vars: &crate::Map,
    ) -> Result<String, ModuleError> {
        let plain = crate::template::Syntax {
            search: Vec::new(),
            ..syntax.clone()
        };
        if plain == crate::template::Syntax::default() && vars.is_empty() {
            return self.render(source, name);
        }
        Err(ModuleError::failed(format!(
            "{name}: templates in their own syntax cannot be rendered here"
        )))
    }
    /// Evaluate a bare Jinja2 expression (`assert`'s `that`, `debug`'s `var`).
    fn eval(&self, expr: &str) -> Result<Value, ModuleError>;
    /// Evaluate a conditional (`assert`'s `that`) as Ansible 2.19 does,
    /// its text trusted as `origin` says. By default a bare expression
    /// that must give a boolean.
    fn condition(
        &self,
        cond: &Value,
        origin: &crate::template::trust::Origin,
    ) -> Result<crate::template::trust::Verdict, crate::template::TemplateError> {
        let _ = origin;
        let broken = |msg: String| crate::template::TemplateError {
            msg,
            undefined: None,
            chainable: false,
        };
        let value = match cond {
            Value::Null => {
                return Err(broken(
                    "Empty conditional expressions are not allowed.".into(),
                ))
            }
            Value::String(s) => self.eval(s).map_err(|e| broken(e.to_string()))?,
            other => other.clone(),
        };
        match value {
            Value::Bool(value) => Ok(crate::template::trust::Verdict {
                value,
                deprecated: false,
            }),
            other => Err(broken(format!(
                "Conditionals must have a boolean result, not {other}"
            ))),
        }
    }
    /// Evaluate an expression; `None` when it is undefined (`debug`'s
    /// `var`, which reports that rather than failing).
    fn eval_defined(&self, expr: &str) -> Result<Option<Value>, ModuleError> {
        self.eval(expr).map(Some)
    }
}

/// What a module gets to do its work.
pub struct ModuleCtx<'a> {
    /// Inventory name of the host.
    pub host: &'a str,
    /// Runs commands and file operations on the host (become applied).
    pub remote: &'a Remote,
    /// Check mode: plan only.
    pub check: bool,
    /// Diff mode: diffs are wanted (modules may skip reading content when false).
    pub diff: bool,
    /// Templates and expressions with this host's variables.
    pub render: &'a dyn Render,
    /// Directories in which a relative `src` is looked up, in order (role
    /// `files/` or `templates/`, then the playbook's directory).
    pub search: &'a [PathBuf],
}

/// What a module may use to declare its reads and decide: the task's
/// settings and local files, never the host.
#[derive(Clone, Copy)]
pub struct ReadCtx<'a> {
    /// Inventory name of the host.
    pub host: &'a str,
    /// Check mode.
    pub check: bool,
    /// Diff mode: diffs are wanted.
    pub diff: bool,
    /// Templates and expressions with this host's variables.
    pub render: &'a dyn Render,
    /// Directories in which a relative `src` is looked up.
    pub search: &'a [PathBuf],
}

impl ReadCtx<'_> {
    /// Find a local source file (`src:`) along the search path.
    pub fn find_local(&self, src: &str) -> Result<PathBuf, ModuleError> {
        find_local(self.search, src)
    }
}

impl ModuleCtx<'_> {
    /// Find a local source file (`src:`) along the search path.
    pub fn find_local(&self, src: &str) -> Result<PathBuf, ModuleError> {
        find_local(self.search, src)
    }

    /// The part of the context that does not reach the host.
    pub fn reading(&self) -> ReadCtx<'_> {
        ReadCtx {
            host: self.host,
            check: self.check,
            diff: self.diff,
            render: self.render,
            search: self.search,
        }
    }
}

fn find_local(search: &[PathBuf], src: &str) -> Result<PathBuf, ModuleError> {
    let p = PathBuf::from(src);
    if p.is_absolute() {
        return if p.exists() {
            Ok(p)
        } else {
            Err(ModuleError::failed(format!("could not find src {src}")))
        };
    }
    search
        .iter()
        .map(|d| d.join(&p))
        .find(|c| c.exists())
        .ok_or_else(|| {
            ModuleError::failed(format!(
                "could not find src {src} in {}",
                search
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
}

/// A module: typed arguments plus planning and applying.
#[async_trait]
pub trait Module: DeserializeOwned + Send + Sync + 'static {
    /// Name as written in playbooks (without `ansible.builtin.`).
    const NAME: &'static str;
    /// Accepted argument names (with aliases), checked when the playbook is
    /// loaded. `_raw_params` is the free-form text of `command: ls -l`.
    const ARGS: &'static [&'static str];
    /// Arguments of Ansible's module that drover does not implement yet:
    /// accepted when the playbook loads (a role may pass them in a branch
    /// that never runs here), a failure of the task where one is given.
    const PENDING: &'static [&'static str] = &[];
    /// Does the module take free-form text (`shell: echo hi`)?
    const FREE_FORM: bool = false;
    /// Is the result itself what the user wants to see (`debug`)? It is
    /// then shown in full, without the `changed` flag.
    const SHOWS_RESULT: bool = false;
    /// Do the arguments name variables the module defines for the host
    /// (`set_fact`)? The static check then knows them.
    const DEFINES_VARS: bool = false;
    /// What `apply` needs to make the change.
    type Change: Send;

    /// Rules between arguments that their types cannot say (copy needs
    /// `src` or `content`). Checked when the playbook is loaded, if no
    /// argument is templated, and again before the module runs.
    fn validate(&self) -> Result<(), ArgError> {
        Ok(())
    }

    /// How the engine learns the state: the reads to make
    /// ([`Protocol::Declared`], then [`Module::decide`]), or
    /// [`Module::run_imperative`]. A module implements one of the two.
    fn reads(&self, _ctx: &ReadCtx<'_>) -> Result<Protocol, ModuleError> {
        Ok(Protocol::Imperative)
    }

    /// Decide from the outputs of the declared reads (every stage so far,
    /// in order). Pure: no host, no await.
    fn decide(
        &self,
        _observed: &Observed,
        _ctx: &ReadCtx<'_>,
    ) -> Result<Decision<Self::Change>, ModuleError> {
        Err(ModuleError::failed(format!(
            "internal error: {} declares no reads",
            Self::NAME
        )))
    }

    /// Read the host's state and decide, for modules whose state cannot be
    /// declared ([`Protocol::Imperative`] or [`Protocol::Local`]).
    async fn run_imperative(
        &self,
        _ctx: &ModuleCtx<'_>,
    ) -> Result<Plan<Self::Change>, ModuleError> {
        Err(ModuleError::failed(format!(
            "internal error: {} has no imperative path",
            Self::NAME
        )))
    }

    /// The arguments (aliases included) that name paths on the host, as
    /// Ansible's `type: path` does: a leading `~` and `$VAR`s in them are
    /// expanded on the host, in the task's environment and as its user,
    /// before the module gets them. Given the arguments, since some name a
    /// host path only with another set (copy's `src` with `remote_src`).
    fn host_paths(_args: &Map) -> &'static [&'static str] {
        &[]
    }

    /// What applying `change` may alter on the host; reads that overlap it
    /// are forgotten afterwards. Default: anything.
    fn touches(&self, _change: &Self::Change) -> Touched {
        Touched::Everything
    }

    /// Make the planned change; returns result fields to add.
    async fn apply(&self, ctx: &ModuleCtx<'_>, change: Self::Change) -> Result<Map, ModuleError>;

    /// The result fields of a [`Plan::Run`] skipped in check mode (command
    /// and shell say they would have run). Default: none.
    fn check_skipped(&self, _change: &Self::Change) -> Map {
        Map::new()
    }
}

/// The result of running a module on one host.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Did (or would, in check mode) the host change?
    pub changed: bool,
    /// Skipped, with the reason (command in check mode).
    pub skipped: Option<String>,
    /// Diff to show with `--diff`.
    pub diff: Option<Diff>,
    /// Result fields (registered with `register`).
    pub data: Map,
}

/// Run a module under the engine's rules for check mode and change
/// reporting, every declared read made on the host as it is asked for.
pub async fn drive<M: Module>(module: &M, ctx: &ModuleCtx<'_>) -> Result<Outcome, ModuleError> {
    drive_with(module, ctx, &reads::Direct).await
}

/// [`drive`], with declared reads answered by `observer`, which also hears
/// of every change made.
pub async fn drive_with<M: Module>(
    module: &M,
    ctx: &ModuleCtx<'_>,
    observer: &dyn Observer,
) -> Result<Outcome, ModuleError> {
    let rctx = ctx.reading();
    let plan = match module.reads(&rctx)? {
        Protocol::Declared(first) => {
            reads::observe_and_decide(first, ctx.remote, observer, |o| module.decide(o, &rctx))
                .await?
        }
        Protocol::Local => module.run_imperative(ctx).await?,
        Protocol::Imperative => {
            let plan = module.run_imperative(ctx).await;
            if !matches!(plan, Ok(Plan::Run(_))) {
                // It may have changed anything already (a wait, a reboot).
                observer.wrote(ctx.remote, &Touched::Everything);
            }
            plan?
        }
    };
    let apply = |change: M::Change| async move {
        let touched = module.touches(&change);
        let result = module.apply(ctx, change).await;
        // A failed apply may have done part of its work.
        let touched = if result.is_ok() {
            touched
        } else {
            Touched::Everything
        };
        observer.wrote(ctx.remote, &touched);
        result
    };
    match plan {
        // A module that decided to do nothing may say it skipped the task,
        // as Ansible's modules do with `skipped: true` (unarchive's creates).
        Plan::Unchanged(data) => Ok(Outcome {
            skipped: (data.get("skipped") == Some(&Value::Bool(true))).then(|| {
                data.get("msg")
                    .and_then(Value::as_str)
                    .unwrap_or("skipped")
                    .to_string()
            }),
            data,
            ..Outcome::default()
        }),
        Plan::Change { change, diff, data } => {
            let mut data = data;
            if !ctx.check {
                data.extend(apply(change).await?);
            }
            Ok(Outcome {
                changed: true,
                skipped: None,
                diff,
                data,
            })
        }
        Plan::Run(change) => {
            if ctx.check {
                return Ok(Outcome {
                    skipped: Some("running in check mode".into()),
                    data: module.check_skipped(&change),
                    ..Outcome::default()
                });
            }
            let data = apply(change).await?;
            // A run whose guard held (`creates:`) answers `changed: false`.
            let changed = data.get("changed") != Some(&Value::Bool(false));
            Ok(Outcome {
                changed,
                data,
                ..Outcome::default()
            })
        }
    }
}

/// A registered module: what the loader checks and how the engine runs it.
pub struct ModuleInfo {
    /// Short name.
    pub name: &'static str,
    /// Accepted argument names.
    pub args: &'static [&'static str],
    /// [`Module::PENDING`].
    pub pending: &'static [&'static str],
    /// Takes free-form text.
    pub free_form: bool,
    /// How a task with these (templated) arguments learns the host's state,
    /// for reading ahead of time; [`Protocol::Imperative`] for arguments
    /// the module refuses.
    pub reads: fn(Value, &ReadCtx<'_>) -> Protocol,
    /// Check untemplated arguments at load time: types, choices, required
    /// arguments and [`Module::validate`].
    pub check: fn(&Value) -> Result<(), ArgError>,
    /// Deserialize the (templated) arguments and drive the module, its
    /// declared reads answered by the observer.
    #[allow(clippy::type_complexity)]
    pub run: for<'a> fn(
        Value,
        &'a ModuleCtx<'a>,
        &'a dyn Observer,
    ) -> BoxFuture<'a, Result<Outcome, ModuleError>>,
    /// [`Module::SHOWS_RESULT`].
    pub shows_result: bool,
    /// [`Module::DEFINES_VARS`].
    pub defines_vars: bool,
}

/// The argument that holds a task's arguments written as one template
/// (`assert: '{{ item }}'`), merged in once rendered ([`unsplat`]).
pub const SPLAT: &str = "_splat";

/// The argument that holds why the loader refused a task's arguments, for
/// a task that expects to fail: it fails when it runs ([`refused`]).
const REFUSED: &str = "_refused";

/// Arguments that make the task fail with `msg` when it runs.
pub fn refused(msg: String) -> Value {
    let mut m = Map::new();
    m.insert(REFUSED.into(), Value::String(msg));
    Value::Object(m)
}

/// Modules that are action plugins in Ansible with a fixed list of options
/// (`_VALID_ARGS`), which word their refusal of another one differently.
const FIXED_ARG_ACTIONS: &[&str] = &[
    "fail",
    "group_by",
    "reboot",
    "set_stats",
    "wait_for_connection",
];

/// Ansible's message for arguments a module does not take.
pub fn unsupported_message(module: &ModuleInfo, names: &[&str]) -> String {
    if module.name == "shell" && names == ["expand_argument_vars"] {
        // Ansible's shell action refuses it itself, in these words.
        return "Unsupported parameters for (shell) module: expand_argument_vars".into();
    }
    let mut names: Vec<&str> = names.to_vec();
    names.sort_unstable();
    if FIXED_ARG_ACTIONS.contains(&module.name) {
        // Ansible's action plugins with a fixed list of options refuse the
        // others themselves, in these words.
        return format!("Invalid options for {}: {}", module.name, names.join(","));
    }
    let mut accepted: Vec<&str> = module
        .args
        .iter()
        .copied()
        .filter(|a| !a.starts_with('_'))
        .collect();
    accepted.sort_unstable();
    format!(
        "Unsupported parameters for ({}) module: {}. Supported parameters include: {}.",
        module.name,
        names.join(", "),
        accepted.join(", ")
    )
}

/// The failure of a task that gives an argument of [`Module::PENDING`].
pub fn pending_message(module: &str, arg: &str) -> String {
    format!("module '{module}': argument '{arg}' is not implemented by drover yet")
}

/// Ansible's wording of a refused argument (`missing required arguments:
/// path`), else drover's.
pub fn ansible_arg_message(e: &ArgError) -> String {
    match e
        .msg
        .strip_prefix("argument '")
        .and_then(|r| r.strip_suffix("' is required"))
    {
        Some(field) => format!("missing required arguments: {field}"),
        None => match &e.arg {
            Some(arg) => format!("argument '{arg}': {}", e.msg),
            None => e.msg.clone(),
        },
    }
}

/// The rendered arguments with a [`SPLAT`] mapping merged in (arguments
/// written out win) and the names checked, as the loader checks them when
/// no splat hides them; a [`refused`] task's failure.
fn unsplat<M: Module>(args: Value) -> Result<Value, ModuleError> {
    let Value::Object(mut map) = args else {
        return Ok(args);
    };
    if let Some(msg) = map.get(REFUSED) {
        return Err(ModuleError::failed(
            msg.as_str().unwrap_or("invalid arguments").to_string(),
        ));
    }
    let splat = map.remove(SPLAT);
    // Names the loader could not see are checked now.
    let check_names = splat.is_some();
    match splat {
        Some(Value::Object(inner)) => {
            for (k, v) in inner {
                map.entry(k).or_insert(v);
            }
        }
        Some(Value::Null) | None => {}
        Some(other) => {
            return Err(ModuleError::failed(format!(
                "the arguments of {} must be a mapping, not {other}",
                M::NAME
            )))
        }
    }
    if let Some(k) = M::PENDING
        .iter()
        .find(|k| map.get(**k).is_some_and(|v| !v.is_null()))
    {
        return Err(ModuleError::failed(pending_message(M::NAME, k)));
    }
    map.retain(|k, _| !M::PENDING.contains(&k.as_str()));
    if check_names && !M::ARGS.contains(&"*") {
        let unknown: Vec<&str> = map
            .keys()
            .map(String::as_str)
            .filter(|k| !M::ARGS.contains(k))
            .collect();
        if !unknown.is_empty() {
            return Err(ModuleError::failed(unsupported_message(
                &info::<M>(),
                &unknown,
            )));
        }
    }
    Ok(Value::Object(map))
}

/// Arguments a module refused when it was about to run. A mode that is
/// not one fails as Ansible's file attribute code fails, with its details.
fn args_error(msg: String) -> ModuleError {
    match msg.find(fs::BAD_SYMBOLIC) {
        Some(at) => {
            let mut data = Map::new();
            data.insert("details".into(), Value::from(msg[at..].to_string()));
            ModuleError::Failed {
                msg: "mode must be in octal or symbolic form".into(),
                data,
            }
        }
        None => ModuleError::Args(msg),
    }
}

fn run_json<'a, M: Module>(
    args: Value,
    ctx: &'a ModuleCtx<'a>,
    observer: &'a dyn Observer,
) -> BoxFuture<'a, Result<Outcome, ModuleError>> {
    Box::pin(async move {
        let args = unsplat::<M>(args)?;
        let args = expand_host_paths::<M>(args, ctx.remote).await?;
        let module: M = serde_json::from_value(args).map_err(|e| args_error(e.to_string()))?;
        module.validate().map_err(|e| ModuleError::Args(e.msg))?;
        drive_with(&module, ctx, observer).await
    })
}

fn reads_json<M: Module>(args: Value, ctx: &ReadCtx<'_>) -> Protocol {
    unsplat::<M>(args)
        .ok()
        // What the paths name is known only once the host expanded them:
        // nothing to read ahead.
        .filter(|args| unexpanded_paths::<M>(args).is_empty())
        .and_then(|args| serde_json::from_value::<M>(args).ok())
        .filter(|m| m.validate().is_ok())
        .and_then(|m| m.reads(ctx).ok())
        .unwrap_or(Protocol::Imperative)
}

/// Does `path` hold what Python's `expanduser(expandvars(path))` expands?
fn expands(path: &str) -> bool {
    path.starts_with('~') || path.contains('$')
}

/// The host path arguments (name, and index in a list) that need the
/// host to expand them.
fn unexpanded_paths<M: Module>(args: &Value) -> Vec<(String, Option<usize>)> {
    let Value::Object(map) = args else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for key in M::host_paths(map) {
        match map.get(*key) {
            Some(Value::String(s)) if expands(s) => out.push((key.to_string(), None)),
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    if item.as_str().is_some_and(expands) {
                        out.push((key.to_string(), Some(i)));
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// The arguments with their host paths expanded on the host (one exec,
/// only when a path needs it): `~`, `~user` and the set `$VAR`/`${VAR}`s,
/// each path quoted so that nothing else in it reaches the shell.
async fn expand_host_paths<M: Module>(args: Value, remote: &Remote) -> Result<Value, ModuleError> {
    let wanted = unexpanded_paths::<M>(&args);
    if wanted.is_empty() {
        return Ok(args);
    }
    let Value::Object(mut map) = args else {
        return Ok(args);
    };
    fn slot<'m>(map: &'m mut Map, key: &str, index: Option<usize>) -> Option<&'m mut Value> {
        let v = map.get_mut(key)?;
        match index {
            Some(i) => v.as_array_mut()?.get_mut(i),
            None => Some(v),
        }
    }
    let mut script = String::from("printf '%s\\0'");
    for (key, index) in &wanted {
        let path = slot(&mut map, key, *index)
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        script.push(' ');
        script.push_str(&command::quote_path(&path));
    }
    let out = remote.exec(&script, &[]).await?;
    let stdout = out.stdout_str();
    let expanded: Vec<&str> = stdout.split('\0').collect();
    if out.status != 0 || expanded.len() != wanted.len() + 1 {
        return Err(ModuleError::failed(format!(
            "could not expand the paths of {} on the host: {}",
            M::NAME,
            out.stderr_str().trim()
        )));
    }
    for ((key, index), path) in wanted.iter().zip(expanded) {
        if let Some(v) = slot(&mut map, key, *index) {
            *v = Value::from(path);
        }
    }
    Ok(Value::Object(map))
}

/// Output of a module's read script that the module cannot use: the host
/// printed something the script never prints (a truncated stream, another
/// tool answering).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutputError {
    /// The script's end marker never came.
    #[error("incomplete output")]
    Incomplete,
    /// A line or field that does not parse.
    #[error("{0}")]
    Malformed(String),
}

/// Arguments refused before anything ran.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{msg}")]
pub struct ArgError {
    /// The argument at fault, as the task wrote it; `None` when the problem
    /// concerns the arguments together (one missing, a rule between several).
    pub arg: Option<String>,
    /// What is wrong.
    pub msg: String,
}

/// A rule between arguments, not tied to one of them (what
/// [`Module::validate`] refuses).
impl From<&str> for ArgError {
    fn from(msg: &str) -> Self {
        ArgError {
            arg: None,
            msg: msg.to_string(),
        }
    }
}

impl From<String> for ArgError {
    fn from(msg: String) -> Self {
        ArgError { arg: None, msg }
    }
}

/// Does a value hold template syntax anywhere (keys included)?
fn templated(v: &Value) -> bool {
    match v {
        Value::String(s) => crate::template::Templar::is_template(s),
        Value::Array(items) => items.iter().any(templated),
        Value::Object(m) => m
            .iter()
            .any(|(k, v)| crate::template::Templar::is_template(k) || templated(v)),
        _ => false,
    }
}

/// Serde's wording, in the terms of a task's arguments.
fn arg_message(msg: &str) -> String {
    if let Some(field) = msg
        .strip_prefix("missing field `")
        .and_then(|r| r.strip_suffix('`'))
    {
        return format!("argument '{field}' is required");
    }
    msg.replace("unknown variant", "unknown value")
}

/// Deserialize the arguments the way the run will, leaving out those that
/// are templated (their value is known only on the host). A problem that
/// may depend on a left-out argument (a missing one, a rule between
/// several) is reported only when none was left out.
fn check_json<M: Module>(args: &Value) -> Result<(), ArgError> {
    let Value::Object(map) = args else {
        return Ok(());
    };
    let mut plain = Map::new();
    let mut partial = false;
    for (k, v) in map {
        if M::PENDING.contains(&k.as_str()) {
            continue;
        }
        if templated(v) || crate::template::Templar::is_template(k) {
            partial = true;
        } else {
            plain.insert(k.clone(), v.clone());
        }
    }
    let plain = Value::Object(plain);
    match serde_path_to_error::deserialize::<_, M>(&plain) {
        Ok(module) if !partial => module.validate(),
        Ok(_) => Ok(()),
        Err(e) => {
            let inner = e.inner().to_string();
            let arg = first_key(e.path()).or_else(|| file_attrs_arg(&plain, &inner));
            let msg = arg_message(&inner);
            match arg {
                Some(arg) => Err(ArgError {
                    arg: Some(arg),
                    msg,
                }),
                None if partial => Ok(()),
                None => Err(ArgError { arg: None, msg }),
            }
        }
    }
}

/// The argument a path names (its first map key).
fn first_key(path: &serde_path_to_error::Path) -> Option<String> {
    path.iter().next().and_then(|seg| match seg {
        serde_path_to_error::Segment::Map { key } => Some(key.clone()),
        _ => None,
    })
}

/// The argument of the flattened [`args::FileAttrs`] block that an error
/// came from: serde reads a flattened block after the whole map, so the
/// path is lost; reading the block alone finds it again.
fn file_attrs_arg(args: &Value, error: &str) -> Option<String> {
    fn locate<T: DeserializeOwned>(block: &Value, error: &str) -> Option<String> {
        let e = serde_path_to_error::deserialize::<_, T>(block.clone()).err()?;
        (e.inner().to_string() == error)
            .then(|| first_key(e.path()))
            .flatten()
    }
    let block = Value::Object(
        args.as_object()?
            .iter()
            .filter(|(k, _)| args::FileAttrs::<true>::ARGS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    );
    locate::<args::FileAttrs<true>>(&block, error)
        .or_else(|| locate::<args::FileAttrs<false>>(&block, error))
}

const fn info<M: Module>() -> ModuleInfo {
    ModuleInfo {
        name: M::NAME,
        args: M::ARGS,
        pending: M::PENDING,
        free_form: M::FREE_FORM,
        reads: reads_json::<M>,
        check: check_json::<M>,
        run: run_json::<M>,
        shows_result: M::SHOWS_RESULT,
        defines_vars: M::DEFINES_VARS,
    }
}

/// The argument that holds a templated module name (`action: "{{
/// ansible_facts.pkg_mgr }}"`), rendered when the task runs.
pub const DYNAMIC_NAME: &str = "_module";

/// The action of a task whose module name is a template: the rendered
/// name picks the module, which gets the other arguments.
pub static DYNAMIC: ModuleInfo = ModuleInfo {
    name: "action",
    args: &["*"],
    pending: &[],
    free_form: false,
    reads: |_, _: &ReadCtx<'_>| Protocol::Imperative,
    check: |_| Ok(()),
    run: run_dynamic,
    shows_result: false,
    defines_vars: false,
};

fn run_dynamic<'a>(
    args: Value,
    ctx: &'a ModuleCtx<'a>,
    observer: &'a dyn Observer,
) -> BoxFuture<'a, Result<Outcome, ModuleError>> {
    let Value::Object(mut map) = args else {
        return Box::pin(async { Err(ModuleError::failed("action: arguments expected")) });
    };
    let name = map
        .remove(DYNAMIC_NAME)
        .and_then(|v| v.as_str().map(|s| s.trim().to_string()))
        .unwrap_or_default();
    if let Some(info) = lookup(&name) {
        return (info.run)(Value::Object(map), ctx, observer);
    }
    if let Some((info, args)) = known::unimplemented(&name, &[]) {
        return (info.run)(args, ctx, observer);
    }
    Box::pin(async move {
        Err(ModuleError::failed(format!(
            "couldn't resolve module/action '{name}'"
        )))
    })
}

/// Every module drover has.
pub static MODULES: &[ModuleInfo] = &[
    info::<debug::Debug>(),
    info::<authorized_key::AuthorizedKey>(),
    info::<copy::Copy>(),
    info::<file::File>(),
    info::<slurp::Slurp>(),
    info::<stat::Stat>(),
    info::<template::Template>(),
    info::<command::Command>(),
    info::<command::Shell>(),
    info::<lineinfile::LineInFile>(),
    info::<replace::Replace>(),
    info::<blockinfile::BlockInFile>(),
    info::<set_fact::SetFact>(),
    info::<add_host::AddHost>(),
    info::<group_by::GroupBy>(),
    info::<assert::Assert>(),
    info::<fail::Fail>(),
    info::<wait_for::WaitFor>(),
    info::<sysctl::Sysctl>(),
    info::<group::Group>(),
    info::<hostname::Hostname>(),
    info::<user::User>(),
    info::<mount::Mount>(),
    info::<apt::Apt>(),
    info::<get_url::GetUrl>(),
    info::<reboot::Reboot>(),
    info::<unarchive::Unarchive>(),
    info::<systemd::Systemd>(),
    info::<systemd::Service>(),
    info::<k8s_apply::K8sApply>(),
    info::<k8s_node_labels::K8sNodeLabels>(),
    info::<ping::Ping>(),
    info::<raw::Raw>(),
    info::<script::Script>(),
    info::<fetch::Fetch>(),
    info::<find::Find>(),
    info::<ini_file::IniFile>(),
    info::<getent::Getent>(),
    info::<pause::Pause>(),
    info::<wait_for_connection::WaitForConnection>(),
    info::<package::Package>(),
    info::<package_facts::PackageFacts>(),
    info::<k8s_object::K8s>(),
    info::<k8s_info::K8sInfo>(),
    info::<helm::Helm>(),
    info::<helm_repository::HelmRepository>(),
    info::<alternatives::Alternatives>(),
    info::<tempfile::Tempfile>(),
    info::<setup::Setup>(),
    info::<service_facts::ServiceFacts>(),
    info::<cron::Cron>(),
    info::<timezone::Timezone>(),
    info::<modprobe::Modprobe>(),
    info::<uri::Uri>(),
    info::<apt_repository::AptRepository>(),
    info::<deb822_repository::Deb822Repository>(),
    info::<apt_key::AptKey>(),
    info::<iptables::Iptables>(),
    info::<ufw::Ufw>(),
];

/// The collections whose names drover's modules answer to (a task may
/// write `ansible.posix.mount` or list these under `collections:`).
pub const COLLECTIONS: &[&str] = &[
    "ansible.builtin",
    "ansible.legacy",
    "ansible.posix",
    "community.general",
    "kubernetes.core",
];

/// Look a module up by the name a task uses (`copy`, `ansible.builtin.copy`,
/// `ansible.posix.mount`).
pub fn lookup(name: &str) -> Option<&'static ModuleInfo> {
    let short = name
        .strip_prefix("ansible.builtin.")
        .or_else(|| name.strip_prefix("ansible.posix."))
        .or_else(|| name.strip_prefix("ansible.legacy."))
        .or_else(|| name.strip_prefix("community.general."))
        .or_else(|| name.strip_prefix("kubernetes.core."))
        .unwrap_or(name);
    // `systemd_service` is the systemd module's newer name; a
    // `gather_facts` task gathers with `setup`, as Ansible's does by default.
    let short = match short {
        "systemd_service" => "systemd",
        "gather_facts" => "setup",
        _ => short,
    };
    MODULES.iter().find(|m| m.name == short)
}

impl std::fmt::Debug for ModuleInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "module {}", self.name)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::testutil::Harness;
    use super::*;

    /// become target (setup_test_user): a `gather_facts:` task was "a
    /// module drover does not implement yet"; it gathers with `setup`.
    #[test]
    fn gather_facts_task_runs_setup() {
        for name in ["gather_facts", "ansible.builtin.gather_facts"] {
            assert_eq!(lookup(name).map(|m| m.name), Some("setup"), "{name}");
        }
    }

    async fn run_info(name: &str, args: Value) -> Result<Outcome, ModuleError> {
        let info = lookup(name).expect("module");
        let h = Harness::new();
        let ctx = h.ctx(false, false);
        (info.run)(args, &ctx, &reads::Direct).await
    }

    fn failure(r: Result<Outcome, ModuleError>) -> String {
        match r {
            Err(ModuleError::Failed { msg, .. }) => msg,
            other => panic!("expected a failure: {other:?}"),
        }
    }

    /// What the loader defers to the run (a refused task, a splat, a
    /// pending argument) fails or runs there as Ansible's module would.
    #[tokio::test]
    async fn deferred_arguments_fail_or_run_when_the_task_runs() {
        let msg =
            failure(run_info("file", refused("missing required arguments: path".into())).await);
        assert_eq!(msg, "missing required arguments: path");
        // assert target: `assert: '{{ item }}'` rendered to a mapping.
        let ok = run_info("assert", json!({SPLAT: {"that": "1 == 1"}, "quiet": true})).await;
        assert!(ok.is_ok(), "{ok:?}");
        let msg = failure(run_info("assert", json!({SPLAT: {"that": "1 == 1", "nope": 1}})).await);
        assert!(
            msg.starts_with("Unsupported parameters for (assert) module: nope."),
            "{msg}"
        );
        let msg = failure(run_info("assert", json!({SPLAT: "text"})).await);
        assert!(msg.contains("must be a mapping"), "{msg}");
        // user target: a pending argument loads, and fails where it is given.
        let msg = failure(run_info("user", json!({"name": "x", "seuser": "k"})).await);
        assert_eq!(
            msg,
            "module 'user': argument 'seuser' is not implemented by drover yet"
        );
        // community.sops.install: package with a dnf argument.
        let msg = failure(
            run_info(
                "package",
                json!({"name": "x", "state": "present", "disable_gpg_check": true}),
            )
            .await,
        );
        assert!(
            msg.contains("'disable_gpg_check' is not implemented"),
            "{msg}"
        );
    }

    /// group target: `action: "{{ ansible_facts.pkg_mgr }}"` picks the
    /// module by the rendered name.
    #[tokio::test]
    async fn a_templated_module_name_runs_the_module_it_renders_to() {
        let h = Harness::new();
        let ctx = h.ctx(false, false);
        let args = json!({DYNAMIC_NAME: "assert", "that": "1 == 2"});
        let msg = failure((DYNAMIC.run)(args, &ctx, &reads::Direct).await);
        assert_eq!(msg, "Assertion failed");
        let args = json!({DYNAMIC_NAME: "dnf", "name": "x"});
        let msg = failure((DYNAMIC.run)(args, &ctx, &reads::Direct).await);
        assert!(msg.contains("ansible.builtin.dnf"), "{msg}");
        let args = json!({DYNAMIC_NAME: "no_such_thing"});
        let msg = failure((DYNAMIC.run)(args, &ctx, &reads::Direct).await);
        assert!(
            msg.contains("couldn't resolve module/action 'no_such_thing'"),
            "{msg}"
        );
    }

    #[test]
    fn shell_refuses_expand_argument_vars_in_ansibles_words() {
        let shell = lookup("shell").expect("shell");
        assert_eq!(
            unsupported_message(shell, &["expand_argument_vars"]),
            "Unsupported parameters for (shell) module: expand_argument_vars"
        );
    }

    /// wait_for_connection target: an action plugin with a fixed option
    /// list refuses another option in its own words.
    #[test]
    fn fixed_option_actions_refuse_in_ansibles_words() {
        let wfc = lookup("wait_for_connection").expect("wait_for_connection");
        assert_eq!(
            unsupported_message(wfc, &["foo", "bar"]),
            "Invalid options for wait_for_connection: bar,foo"
        );
        let debug = lookup("debug").expect("debug");
        assert!(
            unsupported_message(debug, &["foo"]).starts_with("Unsupported parameters for (debug)")
        );
    }
}
