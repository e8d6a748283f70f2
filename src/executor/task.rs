//! One task on many hosts: conditions, loops, templated arguments, become,
//! delegation, the module run, `changed_when`/`failed_when`, `register`,
//! `notify` and the result events.

use std::sync::Arc;
use std::time::Duration;

use super::include_vars;
use super::{host_event, states_mut, HostId, HostState, PlayCtx, RunCtx, Runner, Standing};
use crate::error::Pos;
use crate::modules::{ModuleCtx, ModuleError, ModuleInfo, Outcome, Render};
use crate::playbook::{Action, Task};
use crate::report::{Event, Status};
use crate::secret::Secret;
use crate::template::{Scope, Templar, TemplateError};
use crate::transport::{Become, BecomeMethod, Remote};
use crate::{Map, Value};

/// Why a task could not start on a host (before its module ran): the
/// task fails there.
#[derive(Debug, thiserror::Error)]
pub(super) enum TaskError {
    /// A `when` condition did not evaluate.
    #[error("task '{task}' at {pos}: error in condition '{cond}': {source}")]
    Condition {
        /// The task's name.
        task: String,
        /// Where the task is.
        pos: Pos,
        /// The condition.
        cond: String,
        /// Why it did not evaluate (boxed: a task's error stays small).
        source: Box<TemplateError>,
    },
    /// The loop's items did not render.
    #[error("error in loop: {0}")]
    Loop(TemplateError),
    /// The loop's terms did not render for another reason than an undefined
    /// variable (Ansible: "Error rendering template: division by zero").
    #[error("Error rendering template: {0}")]
    LoopTerms(TemplateError),
    /// `with_dict` over something else than a mapping.
    #[error("the 'dict' lookup plugin expects a dictionary")]
    DictNotMapping,
    /// `loop` over something else than a list.
    #[error("Invalid data passed to 'loop', it requires a list, got: {0}")]
    NotAList(Value),
    /// `become_user` did not render.
    #[error("{0}")]
    BecomeUser(TemplateError),
    /// An `environment` name that would be shell text.
    #[error("environment variable name {0:?} is not valid: names are letters, digits and '_', not starting with a digit")]
    EnvName(String),
    /// `environment` rendered to something else than a mapping.
    #[error("environment must be a mapping")]
    EnvNotMapping,
    /// `environment` did not render.
    #[error("environment: {0}")]
    Env(TemplateError),
    /// A templated boolean keyword did not render to a boolean.
    #[error("{keyword}: {msg}")]
    Keyword {
        /// The keyword.
        keyword: &'static str,
        /// What went wrong.
        msg: String,
    },
}

const NO_LOG_MSG: &str =
    "the output has been hidden due to the fact that 'no_log: true' was specified for this result";

/// Renders for modules with the task's scope.
pub(super) struct TaskRender<'a> {
    pub(super) templar: &'a Templar,
    pub(super) scope: &'a Scope,
}

impl Render for TaskRender<'_> {
    fn render(&self, source: &str, name: &str) -> Result<String, ModuleError> {
        self.templar
            .render_string(source, self.scope)
            .map_err(|e| ModuleError::failed(format!("{name}: {e}")))
    }

    fn render_syntax(
        &self,
        source: &str,
        name: &str,
        syntax: &crate::template::Syntax,
        vars: &crate::Map,
    ) -> Result<String, ModuleError> {
        let scope = match vars.is_empty() {
            true => self.scope.clone(),
            false => self
                .scope
                .with_layer(self.templar, std::sync::Arc::new(vars.clone())),
        };
        self.templar
            .render_string_syntax(source, &scope, syntax)
            .map_err(|e| ModuleError::failed(format!("{name}: {e}")))
    }

    fn eval(&self, expr: &str) -> Result<Value, ModuleError> {
        self.templar
            .eval(expr, self.scope)
            .map_err(|e| ModuleError::failed(e.to_string()))
    }

    fn condition(
        &self,
        cond: &Value,
        origin: &crate::template::trust::Origin,
    ) -> Result<crate::template::trust::Verdict, crate::template::TemplateError> {
        self.templar.condition(cond, origin, self.scope)
    }

    fn eval_defined(&self, expr: &str) -> Result<Option<Value>, ModuleError> {
        match self.templar.eval(expr, self.scope) {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.undefined.is_some() || e.chainable => Ok(None),
            Err(e) => Err(ModuleError::failed(e.to_string())),
        }
    }
}

/// The result of one run of the module (one loop item).
struct ItemResult {
    status: Status,
    data: Map,
    msg: Option<String>,
    diff: Option<crate::modules::Diff>,
    ignored: bool,
    facts: Option<Map>,
    /// The host a delegated task ran on (`delegate_to`, rendered).
    delegated: Option<String>,
}

impl ItemResult {
    fn failed(msg: String) -> ItemResult {
        let mut data = Map::new();
        data.insert("failed".into(), Value::Bool(true));
        data.insert("msg".into(), Value::from(msg.clone()));
        ItemResult {
            status: Status::Failed,
            data,
            msg: Some(msg),
            diff: None,
            ignored: false,
            facts: None,
            delegated: None,
        }
    }

    fn skipped(reason: &str) -> ItemResult {
        let mut data = Map::new();
        data.insert("changed".into(), Value::Bool(false));
        data.insert("skipped".into(), Value::Bool(true));
        data.insert("skip_reason".into(), Value::from(reason));
        ItemResult {
            status: Status::Skipped,
            data,
            msg: None,
            diff: None,
            ignored: false,
            facts: None,
            delegated: None,
        }
    }
}

/// Modules that are action plugins in Ansible which refuse `async` (their
/// work is done by the controller, or they move files): the task fails.
const NO_ASYNC_ACTIONS: &[&str] = &[
    "add_host",
    "assemble",
    "assert",
    "copy",
    "debug",
    "fail",
    "fetch",
    "gather_facts",
    "group_by",
    "pause",
    "raw",
    "reboot",
    "script",
    "set_fact",
    "set_stats",
    "template",
    "unarchive",
    "validate_argument_spec",
    "wait_for_connection",
];

/// An `async` task still running when its time is up, in Ansible's words.
fn async_timed_out(secs: u64) -> ModuleError {
    let mut data = Map::new();
    data.insert("finished".into(), Value::from(0));
    ModuleError::Failed {
        msg: format!("async task did not complete within the requested time - {secs}s"),
        data,
    }
}

/// What an `async` task with `poll: 0` needs to run on its own once the
/// play has moved on: owned copies of the task's context.
struct Background {
    templar: Templar,
    scope: Scope,
    remote: Remote,
    host: String,
    search: Arc<Vec<std::path::PathBuf>>,
    diff: bool,
}

/// Numbers the background jobs of a run (`ansible_job_id`).
static JOBS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Background {
    /// Start the module in the background, bounded by `secs`; answers at
    /// once as Ansible's fire-and-forget does: started, not finished,
    /// changed. The job runs on the host's connection while the play goes
    /// on and ends with drover at the latest (Ansible's would outlive it).
    fn start(self, module: &'static ModuleInfo, args: Value, secs: u64) -> Outcome {
        let n = JOBS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let jid = format!("j{}.{n}", std::process::id());
        let job = jid.clone();
        tokio::spawn(async move {
            let render = TaskRender {
                templar: &self.templar,
                scope: &self.scope,
            };
            let mctx = ModuleCtx {
                host: &self.host,
                remote: &self.remote,
                check: false,
                diff: self.diff,
                render: &render,
                search: &self.search,
            };
            let run = (module.run)(args, &mctx, &crate::modules::reads::Direct);
            let outcome = tokio::time::timeout(Duration::from_secs(secs), run).await;
            tracing::debug!(job, finished = outcome.is_ok(), "background job ended");
        });
        let mut data = Map::new();
        data.insert("ansible_job_id".into(), Value::from(jid.clone()));
        data.insert("started".into(), Value::from(1));
        data.insert("finished".into(), Value::from(0));
        data.insert(
            "results_file".into(),
            Value::from(format!("~/.ansible_async/{jid}")),
        );
        Outcome {
            changed: true,
            skipped: None,
            diff: None,
            data,
        }
    }
}

/// A module run stopped by the task's `timeout`, in Ansible's words.
fn timed_out(module: &str, secs: u64) -> ModuleError {
    let mut data = Map::new();
    data.insert("timedout".into(), serde_json::json!({ "period": secs }));
    ModuleError::Failed {
        msg: format!(
            "The {module} action failed to execute in the expected time frame ({secs}) and was terminated"
        ),
        data,
    }
}

fn results_empty(agg: &Map) -> bool {
    agg.get("results")
        .and_then(Value::as_array)
        .is_some_and(Vec::is_empty)
}

/// A boolean variable or result field as Ansible reads it (`yes`, `"True"`, 1).
/// The directory a `with_<lookup>` loop's files are looked for under in
/// each search path entry, from the task's action as Ansible picks it:
/// `templates` for template actions, `vars` for include_vars, else `files`.
fn lookup_subdir(task: &Task) -> &'static str {
    let action = match &task.action {
        Action::Module { module, args } => args
            .get(crate::modules::DYNAMIC_NAME)
            .and_then(Value::as_str)
            .unwrap_or(module.name),
        Action::IncludeVars { .. } => "include_vars",
        _ => "",
    };
    if action.contains("template") {
        "templates"
    } else if action.contains("var") {
        "vars"
    } else {
        "files"
    }
}

fn truthy_value(v: Option<&Value>) -> bool {
    v.and_then(crate::modules::args::parse_bool)
        .unwrap_or(false)
}

pub(super) fn strip_omit(v: &mut Value, omit: &str) {
    match v {
        Value::Object(m) => {
            m.retain(|_, x| x.as_str() != Some(omit));
            m.values_mut().for_each(|x| strip_omit(x, omit));
        }
        Value::Array(items) => {
            items.retain(|x| x.as_str() != Some(omit));
            items.iter_mut().for_each(|x| strip_omit(x, omit));
        }
        _ => {}
    }
}

/// A task keyword whose rendered value drover cannot use.
#[derive(Debug, thiserror::Error)]
pub(super) enum KeywordError {
    /// The template did not render.
    #[error("{keyword}: {msg}")]
    Template {
        /// The keyword.
        keyword: &'static str,
        /// The template error.
        msg: String,
    },
    /// Not a whole number.
    #[error("{keyword} must be a whole number of 0 or more, not '{value}'")]
    NotANumber {
        /// The keyword.
        keyword: &'static str,
        /// What it rendered to.
        value: String,
    },
    /// A `port` beyond 65535.
    #[error("port {0} is not a port number")]
    Port(u64),
    /// A `connection` drover has no transport for.
    #[error(
        "`connection: {0}` is not supported by drover yet (drover supports ssh, smart, local)"
    )]
    Connection(String),
}

/// A string keyword (`remote_user`, `connection`), rendered.
pub(super) fn str_keyword(
    templar: &Templar,
    scope: &Scope,
    keyword: &'static str,
    value: &str,
) -> Result<String, KeywordError> {
    templar
        .render_string(value, scope)
        .map_err(|e| KeywordError::Template {
            keyword,
            msg: e.to_string(),
        })
}

/// How many times a task with `until`/`retries` runs at most (Ansible's
/// `retries + 1`, 4 when only `until` is set; 1 means no retrying) and
/// the seconds between tries.
fn retry_plan(
    templar: &Templar,
    scope: &Scope,
    retry: &crate::playbook::Retry,
) -> Result<(u32, f64), KeywordError> {
    let number = |keyword: &'static str, v: &Value| -> Result<f64, KeywordError> {
        let rendered = match v {
            Value::String(s) => str_keyword(templar, scope, keyword, s)?,
            other => other.to_string(),
        };
        rendered
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .ok_or(KeywordError::NotANumber {
                keyword,
                value: rendered,
            })
    };
    let retries = match &retry.retries {
        Some(v) => number("retries", v)?.trunc().clamp(0.0, 100_000.0) as u32,
        None => 3,
    };
    let delay = match &retry.delay {
        Some(v) => number("delay", v)?,
        None => 5.0,
    };
    Ok((retries + 1, if delay < 0.0 { 1.0 } else { delay }))
}

/// An integer keyword (`throttle`, `timeout`, `port`): a number, or a
/// template rendering to one.
pub(super) fn int_keyword(
    templar: &Templar,
    scope: &Scope,
    keyword: &'static str,
    value: &Value,
) -> Result<u64, KeywordError> {
    let rendered = match value {
        Value::String(s) => str_keyword(templar, scope, keyword, s)?,
        other => other.to_string(),
    };
    rendered
        .trim()
        .parse()
        .map_err(|_| KeywordError::NotANumber {
            keyword,
            value: rendered,
        })
}

impl Runner<'_> {
    /// Run a module task (or `include_vars`) on `hosts`.
    pub(super) async fn run_task(
        &mut self,
        ctx: &PlayCtx<'_>,
        task: &Task,
        later: &[Task],
        hosts: &[HostId],
        handler: bool,
    ) {
        // Keywords that decide for all hosts at once are rendered with the
        // first host's variables.
        let first_scope = hosts
            .first()
            .filter(|_| !task.keywords.templated.is_empty())
            .map(|&h| {
                self.cx
                    .host_scope(ctx, &self.hosts[h], Some(task), Vec::new())
            });
        let flag = |k: &'static str| match &first_scope {
            Some(scope) => self.cx.keyword_flag(task, k, scope).ok().flatten(),
            None => task.keywords.flag(k),
        };
        let run_once = flag("run_once").unwrap_or(false);
        let any_errors_fatal = flag("any_errors_fatal");
        // As Ansible's action: `add_host` runs once (per loop item), on
        // the first host, without making its result every host's.
        let bypass = matches!(&task.action,
            Action::Module { module, .. } if module.name == "add_host");
        let targets: Vec<HostId> = if run_once || bypass {
            hosts.iter().take(1).copied().collect()
        } else {
            hosts.to_vec()
        };
        // Ansible shows a templated name rendered (an included file's
        // `{{ item }}`), with the first host's variables; as written when
        // it does not render.
        let mut name = task.display_name();
        if name.contains("{{") {
            if let Some(&h) = targets.first() {
                let scope = self
                    .cx
                    .host_scope(ctx, &self.hosts[h], Some(task), Vec::new());
                if let Ok(r) = self.cx.templar.render_string(&name, &scope) {
                    name = r;
                }
            }
        }
        self.cx.start_task(name, &self.names(&targets), handler);
        let throttle = self.cx.throttle(
            ctx,
            task,
            targets.first().map(|&h| &self.hosts[h]),
            targets.len(),
        );
        let cx = &self.cx;
        let throttle = &throttle;
        let futs = states_mut(&mut self.hosts, &targets)
            .into_iter()
            .map(|st| async move {
                // The task's own limit first, so that hosts waiting on it
                // hold no fork.
                let _throttled = match throttle {
                    Some(t) => t.acquire().await.ok(),
                    None => None,
                };
                let _permit = cx.forks.acquire().await;
                cx.read_ahead(ctx, task, later, st).await;
                cx.run_on_host(ctx, task, st).await;
                cx.keep_ride(st);
                cx.host_done(&st.name);
            });
        futures::future::join_all(futs).await;
        let any_failed = targets.iter().any(|&h| {
            matches!(
                self.hosts[h].standing,
                Standing::Failed | Standing::Unreachable
            )
        });
        // run_once: the one host's registered result is every host's.
        self.hand_over_delegated_facts(&targets);
        if let (Some(name), true, Some(&first)) = (&task.register, run_once, targets.first()) {
            if let Some(value) = self.hosts[first].vars.set_facts.get(name).cloned() {
                for &h in hosts.iter().skip(1) {
                    self.hosts[h]
                        .set_facts_mut()
                        .insert(name.clone(), value.clone());
                }
            }
        }
        self.take_inventory_changes();
        self.task_done();
        let fatal = any_errors_fatal.unwrap_or(ctx.play.any_errors_fatal);
        if any_failed && fatal {
            self.end_play(&ctx.hosts);
        }
    }
}

impl Runner<'_> {
    /// The inventory the task changed (`add_host`, `group_by`) becomes the
    /// run's: `groups`, each host's inventory variables and `group_names`
    /// follow (hostvars are rebuilt when the task is done).
    fn take_inventory_changes(&mut self) {
        let changed = self
            .cx
            .inventory_changes
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let Some(inventory) = changed else {
            return;
        };
        self.cx.inventory = Arc::new(inventory);
        self.cx.groups = crate::template::to_value(Value::Object(self.cx.inventory.groups_var()));
        for st in &mut self.hosts {
            let fresh = self.cx.new_host(&st.name);
            st.vars.inventory = fresh.vars.inventory;
            if let Some(g) = fresh.vars.names.get("group_names") {
                Arc::make_mut(&mut st.vars.names).insert("group_names".into(), g.clone());
            }
        }
    }
}

impl RunCtx<'_> {
    /// `add_host` and `group_by`: apply the result's request to the
    /// inventory the next tasks see, and say whether it changed it, as
    /// Ansible's strategy does before `changed_when` and `failed_when`.
    fn change_inventory(
        &self,
        host: &str,
        outcome: Result<crate::modules::Outcome, ModuleError>,
    ) -> Result<crate::modules::Outcome, ModuleError> {
        let Ok(mut o) = outcome else {
            return outcome;
        };
        let add_host = o.data.get("add_host").and_then(Value::as_object).cloned();
        let add_group = o
            .data
            .get("add_group")
            .and_then(Value::as_str)
            .map(str::to_string);
        if add_host.is_none() && add_group.is_none() {
            return Ok(o);
        }
        let strings = |v: Option<&Value>| -> Vec<String> {
            v.and_then(Value::as_array)
                .map(|l| {
                    l.iter()
                        .filter_map(|g| g.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut pending = self
            .inventory_changes
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let inventory = pending.get_or_insert_with(|| (*self.inventory).clone());
        if let Some(req) = add_host {
            let name = req
                .get("host_name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let vars = req
                .get("host_vars")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            o.changed = inventory.add_host(name, &strings(req.get("groups")), &vars);
        } else if let Some(group) = add_group {
            let parents = strings(o.data.get("parent_groups"));
            o.changed = inventory
                .add_to_group(host, &group, &parents)
                .map_err(ModuleError::failed)?;
        }
        Ok(o)
    }

    /// `throttle`: a semaphore letting that many hosts run the task at
    /// once (none when it is 0 or lets all of them). A template is
    /// rendered with the first host's variables.
    fn throttle(
        &self,
        ctx: &PlayCtx<'_>,
        task: &Task,
        first: Option<&HostState>,
        targets: usize,
    ) -> Option<tokio::sync::Semaphore> {
        let value = task.keywords.throttle.as_ref()?;
        let st = first?;
        let scope = self.host_scope(ctx, st, Some(task), Vec::new());
        let n = match int_keyword(&self.templar, &scope, "throttle", value) {
            Ok(n) => n as usize,
            Err(e) => {
                self.emit(Event::Warning(format!("{}: {e}; not throttled", task.pos)));
                return None;
            }
        };
        (n > 0 && n < targets).then(|| tokio::sync::Semaphore::new(n))
    }

    /// An unreachable result: the host leaves the play, unless the task
    /// says `ignore_unreachable`, which Ansible counts as ok and ignored
    /// and registers.
    fn unreachable_result(&self, task: &Task, st: &mut HostState, r: ItemResult) {
        if !task.keywords.ignore_unreachable.unwrap_or(false) {
            self.unreachable(st, r.delegated.clone(), r.msg.unwrap_or_default());
            return;
        }
        let msg = r.msg.clone().unwrap_or_default();
        self.unreachable_ignored(st, r.delegated, &msg);
        let mut data = Map::new();
        data.insert("unreachable".into(), Value::Bool(true));
        data.insert("changed".into(), Value::Bool(false));
        data.insert("msg".into(), Value::from(msg));
        self.register(task, st, Value::Object(data), None);
    }

    /// Report an unreachable host that `ignore_unreachable` keeps in the
    /// play, counted as Ansible does: ok and ignored.
    pub(super) fn unreachable_ignored(
        &self,
        st: &mut HostState,
        delegated: Option<String>,
        msg: &str,
    ) {
        // The next task tries to connect again.
        self.pool.forget(delegated.as_deref().unwrap_or(&st.name));
        st.counters.ok += 1;
        st.counters.ignored += 1;
        let mut ev = host_event(
            self.task_id(),
            &st.name,
            Status::Unreachable,
            Some(self.redactor.redact(msg)),
            None,
            None,
        );
        if let Event::HostResult {
            ignored,
            delegated: d,
            ..
        } = &mut ev
        {
            *ignored = true;
            *d = delegated;
        }
        self.emit(ev);
    }

    /// Keep the facts a task set: the host's own, or with `delegate_facts`
    /// the host it was delegated to (handed over when the task ends).
    fn keep_facts(&self, task: &Task, st: &mut HostState, delegated: Option<&str>, facts: Map) {
        match delegated {
            Some(d) if task.keywords.delegate_facts.unwrap_or(false) && d != st.name => {
                st.delegated_facts.push((d.to_string(), facts))
            }
            _ => {
                let mut facts = facts;
                // `set_fact: {ansible_facts: {x: 1}}` adds the fact `x`
                // (ansible_facts.x, ansible_x), not a variable `x`.
                if let Some(Value::Object(more)) = facts.remove("ansible_facts") {
                    let mut all = st.facts.clone();
                    all.extend(more);
                    st.set_gathered_facts(all);
                }
                st.set_facts_mut().extend(facts)
            }
        }
    }

    async fn run_on_host(&self, ctx: &PlayCtx<'_>, task: &Task, st: &mut HostState) {
        let scope = self.host_scope(ctx, st, Some(task), Vec::new());
        let task = match self.resolve_keywords(task, &scope) {
            Ok(t) => t,
            Err(e) => {
                let r = ItemResult::failed(format!(
                    "task '{}' at {}: {e}",
                    task.display_name(),
                    task.pos
                ));
                self.record(task, st, &r, None, false);
                return;
            }
        };
        let task = &*task;
        let no_log = task.keywords.no_log.unwrap_or(false);
        let Some(lp) = &task.loop_ else {
            let Some(result) = self.attempt(ctx, task, st, &scope).await else {
                return;
            };
            let data = result.data.clone();
            self.record(task, st, &result, None, no_log);
            if let Some(f) = result.facts {
                self.keep_facts(task, st, result.delegated.as_deref(), f);
            }
            self.register(task, st, Value::Object(data), None);
            return;
        };
        let lp = &*self.named_loop(lp, &scope);
        let items = match self.loop_items(task, lp, &scope) {
            Ok(items) => items,
            Err(e) => {
                // As Ansible: a loop that does not render is only an error
                // once the task's `when` (without the loop variable) holds.
                let mut r = match self.conditions_hold(task, &scope) {
                    Ok(false) => ItemResult::skipped("Conditional result was False"),
                    Err(c) => ItemResult::failed(c.to_string()),
                    Ok(true) => ItemResult::failed(e.to_string()),
                };
                // The failure is the task's: ignore_errors applies, and
                // `register` keeps it, as in Ansible.
                r.ignored =
                    r.status == Status::Failed && task.keywords.ignore_errors.unwrap_or(false);
                self.record(task, st, &r, None, no_log);
                self.register(task, st, Value::Object(r.data), None);
                return;
            }
        };
        // Strings the loop rendered are data, not expressions.
        let marks = match (&lp.lookup, lp.flatten, lp.dict) {
            (None, false, false) => {
                crate::template::trust::rendered_marks(&lp.items, &items, &lp.loop_var)
            }
            _ => Vec::new(),
        };
        let mut results = Vec::new();
        let (mut changed, mut failed, mut all_skipped) = (false, false, true);
        // As Ansible, the registered name holds the last item's result
        // while the loop runs (for the label and the next items).
        let mut previous: Option<Value> = None;
        for (index, item) in items.iter().cloned().enumerate() {
            if index > 0 && lp.pause > 0.0 {
                tokio::time::sleep(Duration::from_secs_f64(lp.pause)).await;
            }
            let mut extra = lp.item_vars(&items, index);
            if let Some(m) = marks.get(index).filter(|m| !m.is_empty()) {
                extra.push((crate::template::trust::MARKS.into(), Value::from(m.clone())));
            }
            let loop_info = extra
                .iter()
                .find(|(k, _)| k == "ansible_loop")
                .map(|(_, v)| v.clone());
            if let (Some(name), Some(prev)) = (&task.register, previous.take()) {
                extra.push((name.clone(), prev));
            }
            let item_scope = self.host_scope(ctx, st, Some(task), extra);
            let Some(mut r) = self.attempt(ctx, task, st, &item_scope).await else {
                return;
            };
            let label = match &lp.label {
                Some(l) => {
                    let mut layer = Map::new();
                    if let Some(name) = &task.register {
                        layer.insert(name.clone(), Value::Object(r.data.clone()));
                    }
                    let s = item_scope.with_layer(&self.templar, Arc::new(layer));
                    match self.templar.render_string(l, &s) {
                        Ok(text) => text,
                        Err(e) if e.undefined.is_some() => {
                            // Ansible names the missing attribute of a
                            // defined mapping (`r.stdout` of a skipped item).
                            let why = match e.undefined.as_deref().and_then(|v| v.rsplit_once('.'))
                            {
                                Some((parent, attr))
                                    if self
                                        .templar
                                        .truthy(&format!("{parent} is mapping"), &s)
                                        .unwrap_or(false) =>
                                {
                                    format!("object of type 'dict' has no attribute '{attr}'")
                                }
                                _ => e.to_string(),
                            };
                            let msg = format!("Failed to template loop_control.label: {why}");
                            r.status = Status::Failed;
                            r.ignored = task.keywords.ignore_errors.unwrap_or(false);
                            r.data.insert("failed".into(), Value::Bool(true));
                            r.data.insert("msg".into(), Value::from(msg.clone()));
                            r.msg = Some(msg);
                            l.clone()
                        }
                        Err(_) => l.clone(),
                    }
                }
                None => match &item {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                },
            };
            r.data.insert(lp.loop_var.clone(), item.clone());
            r.data
                .insert("ansible_loop_var".into(), Value::from(lp.loop_var.clone()));
            if let Some(iv) = &lp.index_var {
                r.data.insert(iv.clone(), Value::from(index));
                r.data
                    .insert("ansible_index_var".into(), Value::from(iv.clone()));
            }
            if let Some(l) = loop_info {
                r.data.insert("ansible_loop".into(), l);
            }
            changed |= r.status == Status::Changed;
            failed |= r.status == Status::Failed && !r.ignored;
            all_skipped &= r.status == Status::Skipped;
            if let Some(f) = r.facts.take() {
                self.keep_facts(task, st, r.delegated.as_deref(), f);
            }
            let shown = if no_log { "None".to_string() } else { label };
            self.emit_item(task, st, &r, Some(shown), no_log);
            let stop =
                !lp.break_when.is_empty() && self.loop_breaks(task, lp, &item_scope, &r.data);
            if task.register.is_some() {
                previous = Some(Value::Object(r.data.clone()));
            }
            results.push(Value::Object(r.data));
            if stop {
                break;
            }
        }
        self.finish_loop(task, st, results, changed, failed, all_skipped);
    }

    /// The task, or one item of its loop, on `st` if its conditions hold.
    /// `None` when the host (or the one delegated to) could not be reached:
    /// it has then left the play.
    async fn attempt(
        &self,
        ctx: &PlayCtx<'_>,
        task: &Task,
        st: &mut HostState,
        scope: &Scope,
    ) -> Option<ItemResult> {
        let mut r = match self.conditions_hold(task, scope) {
            Err(e) => ItemResult::failed(e.to_string()),
            Ok(false) => ItemResult::skipped("Conditional result was False"),
            Ok(true) => self.run_item(ctx, task, st, scope).await,
        };
        r.delegated = self.delegate_name(task, scope);
        // Failures before the module ran (arguments, conditions) are the
        // task's too: ignore_errors applies to them.
        r.ignored |= r.status == Status::Failed && task.keywords.ignore_errors.unwrap_or(false);
        if r.status == Status::Unreachable {
            self.unreachable_result(task, st, r);
            return None;
        }
        Some(r)
    }

    /// `loop_control.break_when` after an item, with the item's result
    /// under the task's `register` name (a condition that does not
    /// evaluate stops the loop too, as Ansible's error would).
    fn loop_breaks(
        &self,
        task: &Task,
        lp: &crate::playbook::Loop,
        scope: &Scope,
        data: &Map,
    ) -> bool {
        let mut layer = Map::new();
        if let Some(name) = &task.register {
            layer.insert(name.clone(), Value::Object(data.clone()));
        }
        let s = scope.with_layer(&self.templar, Arc::new(layer));
        lp.break_when
            .iter()
            .all(|c| self.templar.truthy(c, &s).unwrap_or(true))
    }

    /// Count, report and register a loop's results as one.
    fn finish_loop(
        &self,
        task: &Task,
        st: &mut HostState,
        results: Vec<Value>,
        changed: bool,
        failed: bool,
        all_skipped: bool,
    ) {
        // An ignored item failure still marks the registered result
        // failed (`result is failed`), as in Ansible; only the outcome
        // (`failed`) leaves ignored ones out.
        let any_failed = failed
            || results
                .iter()
                .any(|r| r.get("failed") == Some(&Value::Bool(true)));
        let mut agg = Map::new();
        agg.insert("changed".into(), Value::Bool(changed));
        agg.insert(
            "msg".into(),
            Value::from(if any_failed {
                "One or more items failed"
            } else if all_skipped && !results.is_empty() {
                "All items skipped"
            } else {
                "All items completed"
            }),
        );
        if any_failed {
            agg.insert("failed".into(), Value::Bool(true));
        }
        if all_skipped {
            agg.insert("skipped".into(), Value::Bool(true));
        }
        agg.insert("results".into(), Value::Array(results));
        let status = if failed {
            Status::Failed
        } else if all_skipped {
            Status::Skipped
        } else if changed {
            Status::Changed
        } else {
            Status::Ok
        };
        let summary = ItemResult {
            status,
            data: agg.clone(),
            msg: failed.then(|| "One or more items failed".to_string()),
            diff: None,
            ignored: false,
            facts: None,
            delegated: None,
        };
        self.count(task, st, &summary);
        if results_empty(&agg) {
            self.emit(host_event(
                self.task_id(),
                &st.name,
                Status::Skipped,
                None,
                None,
                None,
            ));
        }
        if failed {
            self.emit(host_event(
                self.task_id(),
                &st.name,
                Status::Failed,
                Some("One or more items failed".into()),
                Some(serde_json::json!({"msg": "One or more items failed", "changed": changed})),
                None,
            ));
        }
        self.register(task, st, Value::Object(agg), None);
    }

    /// A boolean keyword of `task` on the host of `scope`: its template
    /// rendered and read as Ansible's `boolean()`, or its literal value.
    pub(super) fn keyword_flag(
        &self,
        task: &Task,
        keyword: &'static str,
        scope: &Scope,
    ) -> Result<Option<bool>, TaskError> {
        let Some((_, t)) = task.keywords.templated.iter().find(|(k, _)| *k == keyword) else {
            return Ok(task.keywords.flag(keyword));
        };
        let v = self
            .templar
            .render_value(&Value::from(t.as_str()), scope)
            .map_err(|e| TaskError::Keyword {
                keyword,
                msg: e.to_string(),
            })?;
        crate::playbook::to_flag(&v)
            .map(Some)
            .ok_or_else(|| TaskError::Keyword {
                keyword,
                msg: format!("the value {v} is not a valid boolean"),
            })
    }

    /// `task` with its templated boolean keywords rendered for the host of
    /// `scope` (borrowed as it is when it has none).
    pub(super) fn resolve_keywords<'t>(
        &self,
        task: &'t Task,
        scope: &Scope,
    ) -> Result<std::borrow::Cow<'t, Task>, TaskError> {
        if task.keywords.templated.is_empty() {
            return Ok(std::borrow::Cow::Borrowed(task));
        }
        let mut owned = task.clone();
        for (k, _) in &task.keywords.templated {
            if let Some(b) = self.keyword_flag(task, k, scope)? {
                owned.keywords.set_flag(k, b);
            }
        }
        owned.keywords.templated.clear();
        Ok(std::borrow::Cow::Owned(owned))
    }

    pub(super) fn conditions_hold(&self, task: &Task, scope: &Scope) -> Result<bool, TaskError> {
        for c in &task.when {
            match self.templar.truthy(c, scope) {
                Ok(true) => {}
                Ok(false) => return Ok(false),
                Err(source) => {
                    return Err(TaskError::Condition {
                        task: task.display_name(),
                        pos: task.pos.clone(),
                        cond: c.clone(),
                        source: Box::new(source),
                    })
                }
            }
        }
        Ok(true)
    }

    /// `lp` with a templated `loop_var` or `index_var` rendered for the
    /// host of `scope` (borrowed as it is when neither is a template).
    pub(super) fn named_loop<'l>(
        &self,
        lp: &'l crate::playbook::Loop,
        scope: &Scope,
    ) -> std::borrow::Cow<'l, crate::playbook::Loop> {
        let templated = |n: &str| Templar::is_template(n);
        if !templated(&lp.loop_var) && !lp.index_var.as_deref().is_some_and(templated) {
            return std::borrow::Cow::Borrowed(lp);
        }
        let render = |n: &String| {
            self.templar
                .render_string(n, scope)
                .unwrap_or_else(|_| n.clone())
        };
        let mut owned = lp.clone();
        owned.loop_var = render(&lp.loop_var);
        owned.index_var = lp.index_var.as_ref().map(render);
        std::borrow::Cow::Owned(owned)
    }

    /// `value` rendered, leaving out the strings (in lists and mappings, at
    /// any depth) that are undefined; `None` when `value` itself is.
    fn render_defined_terms(
        &self,
        value: &Value,
        scope: &Scope,
    ) -> Result<Option<Value>, TemplateError> {
        match value {
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.extend(self.render_defined_terms(item, scope)?);
                }
                Ok(Some(Value::Array(out)))
            }
            Value::Object(map) => {
                let mut out = Map::new();
                for (k, v) in map {
                    if let Some(v) = self.render_defined_terms(v, scope)? {
                        out.insert(k.clone(), v);
                    }
                }
                Ok(Some(Value::Object(out)))
            }
            other => match self.templar.render_value(other, scope) {
                Ok(v) => Ok(Some(v)),
                // A term naming a list or mapping variable: Ansible's
                // lazy containers drop just its undefined items.
                Err(e) if e.undefined.is_some() => match other
                    .as_str()
                    .and_then(|s| s.strip_prefix("{{")?.strip_suffix("}}"))
                    .map(str::trim)
                    .and_then(|name| scope.var(name))
                {
                    Some(inner @ (Value::Array(_) | Value::Object(_))) => {
                        self.render_defined_terms(inner, scope)
                    }
                    _ => Ok(None),
                },
                Err(e) => Err(e),
            },
        }
    }

    pub(super) fn loop_items(
        &self,
        task: &Task,
        lp: &crate::playbook::Loop,
        scope: &Scope,
    ) -> Result<Vec<Value>, TaskError> {
        let loop_error = |e: TemplateError| match e.undefined {
            Some(_) => TaskError::Loop(e),
            None => TaskError::LoopTerms(e),
        };
        let value = if lp.lookup.as_deref() == Some("first_found") {
            // Ansible drops `with_first_found` terms that are undefined.
            self.render_defined_terms(&lp.items, scope)
                .map_err(loop_error)?
                .unwrap_or(Value::Array(Vec::new()))
        } else {
            self.templar
                .render_value(&lp.items, scope)
                .map_err(loop_error)?
        };
        if let Some(name) = &lp.lookup {
            // `with_<lookup>: terms` is `query('<lookup>', *terms)`.
            let terms = match value {
                Value::Array(a) => a,
                other => vec![other],
            };
            let mut layer = Map::new();
            layer.insert("__drover_lookup".into(), Value::from(name.as_str()));
            layer.insert(
                crate::template::LOOKUP_SUBDIR.into(),
                Value::from(lookup_subdir(task)),
            );
            layer.insert("__drover_terms".into(), Value::Array(terms));
            let s = scope.with_layer(&self.templar, Arc::new(layer));
            return match self
                .templar
                .eval("query(__drover_lookup, *__drover_terms)", &s)
                .map_err(TaskError::Loop)?
            {
                Value::Array(items) => Ok(items),
                other => Err(TaskError::NotAList(other)),
            };
        }
        let value = match value {
            // `loop: "{{ x }}"` where x renders to a string holding a list.
            Value::String(s) if s.trim_start().starts_with('[') => {
                serde_json::from_str(&s).unwrap_or(Value::String(s))
            }
            v => v,
        };
        if lp.dict {
            return match value {
                Value::Object(m) => Ok(m
                    .into_iter()
                    .map(|(k, v)| serde_json::json!({"key": k, "value": v}))
                    .collect()),
                _ => Err(TaskError::DictNotMapping),
            };
        }
        match value {
            Value::Array(items) if lp.flatten => Ok(items
                .into_iter()
                .flat_map(|i| match i {
                    Value::Array(inner) => inner,
                    other => vec![other],
                })
                .collect()),
            Value::Array(items) => Ok(items),
            Value::Null => Ok(Vec::new()),
            other if lp.flatten => Ok(vec![other]),
            other => Err(TaskError::NotAList(other)),
        }
    }

    pub(super) fn become_for(
        &self,
        task: &Task,
        scope: &Scope,
    ) -> Result<Option<Become>, TaskError> {
        self.become_with(&task.keywords, scope)
    }

    /// `become` from a task's or play's keywords and the host's variables.
    pub(super) fn become_with(
        &self,
        keywords: &crate::playbook::Keywords,
        scope: &Scope,
    ) -> Result<Option<Become>, TaskError> {
        let var = |n: &str| -> Option<Value> {
            scope
                .var(n)
                .map(|v| self.templar.render_value(v, scope).unwrap_or(Value::Null))
        };
        // Variables win over keywords, as in Ansible: `vars:
        // {ansible_become: no}` on a task of a `become: true` play runs it
        // as the connecting user.
        let on = match var("ansible_become") {
            Some(v) => truthy_value(Some(&v)),
            None => keywords.become_.unwrap_or(self.opts.become_),
        };
        if !on {
            return Ok(None);
        }
        let user = keywords
            .become_user
            .as_ref()
            .map(|u| {
                self.templar
                    .render_string(u, scope)
                    .map_err(TaskError::BecomeUser)
            })
            .transpose()?
            .or_else(|| var("ansible_become_user").and_then(|v| v.as_str().map(str::to_string)))
            .or_else(|| self.opts.become_user.clone())
            .unwrap_or_else(|| "root".into());
        let password = match &self.opts.become_password {
            Some(p) => Some(p.clone()),
            None => var("ansible_become_password")
                .or_else(|| var("ansible_become_pass"))
                .and_then(|v| v.as_str().map(|s| Secret::new(s.to_string()))),
        };
        if let Some(p) = &password {
            self.redactor.add(p);
        }
        let method = keywords
            .become_method
            .as_ref()
            .map(|m| {
                self.templar
                    .render_string(m, scope)
                    .map_err(TaskError::BecomeUser)
            })
            .transpose()?
            .or_else(|| var("ansible_become_method").and_then(|v| v.as_str().map(str::to_string)))
            .or_else(|| self.opts.become_method.clone())
            .unwrap_or_else(|| "sudo".into());
        let method = BecomeMethod::parse(&method).ok_or_else(|| TaskError::Keyword {
            keyword: "become_method",
            msg: format!("`become_method: {method}` is not supported by drover yet (drover supports sudo, su)"),
        })?;
        Ok(Some(Become {
            user,
            password,
            method,
        }))
    }

    /// `async` (seconds, when above 0) and `poll` (Ansible's default 15)
    /// of a task, rendered for this host.
    fn async_of(&self, task: &Task, scope: &Scope) -> Result<(Option<u64>, u64), KeywordError> {
        let kw = &task.keywords;
        let secs = match &kw.async_ {
            Some(v) => Some(int_keyword(&self.templar, scope, "async", v)?).filter(|n| *n > 0),
            None => None,
        };
        let poll = match &kw.poll {
            Some(v) => int_keyword(&self.templar, scope, "poll", v)?,
            None => 15,
        };
        Ok((secs, poll))
    }

    async fn run_item(
        &self,
        ctx: &PlayCtx<'_>,
        task: &Task,
        st: &HostState,
        scope: &Scope,
    ) -> ItemResult {
        match &task.action {
            Action::IncludeVars {
                file,
                base,
                args,
                role_dir,
            } => {
                let mut r = self.include_vars(file, base, args, role_dir.as_deref(), scope);
                r.ignored =
                    r.status == Status::Failed && task.keywords.ignore_errors.unwrap_or(false);
                return r;
            }
            Action::Module { .. } => {}
            _ => return ItemResult::skipped("not a module"),
        }
        let Action::Module { module, args } = &task.action else {
            return ItemResult::skipped("not a module");
        };
        let args_written = args;
        let is_assert =
            module.name == <crate::modules::assert::Assert as crate::modules::Module>::NAME;
        // `assert` evaluates each `that` itself, as a conditional.
        let untemplated;
        let args = match args {
            Value::Object(m) if is_assert && m.contains_key("that") => {
                let mut m = m.clone();
                m.remove("that");
                untemplated = Value::Object(m);
                &untemplated
            }
            _ => args,
        };
        let mut args = match self.templar.render_value(args, scope) {
            Ok(a) => a,
            Err(e) => {
                // Name the argument, as Ansible's "Error while resolving
                // value for 'msg'" does (tests match on it).
                let key = args.as_object().and_then(|m| {
                    m.iter()
                        .find(|(_, v)| self.templar.render_value(v, scope).is_err())
                        .map(|(k, _)| k.clone())
                });
                let what = match key {
                    Some(k) => format!("Error while resolving value for '{k}': "),
                    None => String::new(),
                };
                return ItemResult::failed(format!(
                    "task '{}' at {}: {what}{e}",
                    task.display_name(),
                    task.pos
                ));
            }
        };
        if is_assert {
            self.templar.assert_args(args_written, &mut args, scope);
        }
        strip_omit(&mut args, &self.omit);
        let become_ = match self.become_for(task, scope) {
            Ok(b) => b,
            Err(e) => return ItemResult::failed(e.to_string()),
        };
        let env = match self.task_env(task, scope) {
            Ok(env) => env,
            Err(e) => return ItemResult::failed(e.to_string()),
        };
        // Delegation: run on another host's connection with this host's vars.
        let delegate = match &task.keywords.delegate_to {
            // `delegate_to: "{{ omit }}"` means no delegation, as in Ansible.
            Some(d) => match self.templar.render_string(d, scope) {
                Ok(d) if d == self.omit => None,
                Ok(d) => Some(d),
                Err(e) => return ItemResult::failed(format!("delegate_to: {e}")),
            },
            None => None,
        };
        let conn_kw = match self.conn_keywords(&task.keywords, scope) {
            Ok(c) => c,
            Err(e) => return ItemResult::failed(e.to_string()),
        };
        let conn = match &delegate {
            Some(d) if d != &st.name => {
                let dscope = match self.layers.get(d) {
                    Some(layers) => self.scope_of(ctx, layers, None, Vec::new()),
                    None => {
                        let mut vars = self
                            .inventory
                            .get(d)
                            .map(|h| h.into_owned().vars)
                            .unwrap_or_default();
                        vars.insert("inventory_hostname".into(), Value::from(d.clone()));
                        self.templar.scope(Arc::new(vars), Vec::new())
                    }
                };
                self.connection_with(d, &dscope, &conn_kw).await
            }
            _ => self.connection_with(&st.name, scope, &conn_kw).await,
        };
        let timeout = match &task.keywords.timeout {
            Some(v) => match int_keyword(&self.templar, scope, "timeout", v) {
                Ok(n) => Some(n).filter(|n| *n > 0),
                Err(e) => return ItemResult::failed(e.to_string()),
            },
            None => None,
        };
        let (async_secs, poll) = match self.async_of(task, scope) {
            Ok(a) => a,
            Err(e) => return ItemResult::failed(e.to_string()),
        };
        if async_secs.is_some() && NO_ASYNC_ACTIONS.contains(&module.name) {
            return ItemResult::failed(format!(
                "This action ({}) does not support async.",
                module.name
            ));
        }
        // Check mode plans without running anything in the background.
        let check = task.keywords.check_mode.unwrap_or(self.opts.check);
        let background = async_secs.is_some() && poll == 0 && !check;
        // `async` with polling bounds the run, as Ansible's job would be.
        let timeout = match async_secs {
            Some(a) if !background => Some(timeout.map_or(a, |t| t.min(a))),
            _ => timeout,
        };
        let transport = match conn {
            Ok(t) => t,
            Err(e) => {
                let mut r = ItemResult::failed(e.to_string());
                r.status = Status::Unreachable;
                return r;
            }
        };
        let mut remote = Remote::new(transport.clone(), become_)
            .with_env(env)
            .with_no_log(task.keywords.no_log.unwrap_or(false));
        if let Some(ride) = &st.ride {
            remote = remote.with_trailer(ride.trailer());
        }
        let diff = task.keywords.diff.unwrap_or(self.opts.diff);
        if let (true, Some(secs)) = (background, async_secs) {
            let job = Background {
                templar: self.templar.clone(),
                scope: scope.clone(),
                remote,
                host: st.name.clone(),
                search: task.search.clone(),
                diff,
            };
            let outcome = job.start(module, args, secs);
            return self.judge(task, scope, Ok(outcome));
        }
        let render = TaskRender {
            templar: &self.templar,
            scope,
        };
        let mctx = ModuleCtx {
            host: &st.name,
            remote: &remote,
            check,
            diff,
            render: &render,
            search: &task.search,
        };
        let observer = super::readahead::HostObserver {
            observations: &self.observations,
            host: delegate.clone().unwrap_or_else(|| st.name.clone()),
        };
        let observer: &dyn crate::modules::Observer = if self.opts.no_read_ahead {
            &crate::modules::reads::Direct
        } else {
            &observer
        };
        let (tries, delay) = match task
            .until
            .as_ref()
            .map(|r| retry_plan(&self.templar, scope, r))
        {
            None => (1, 0.0),
            Some(Ok(plan)) => plan,
            Some(Err(e)) => return ItemResult::failed(e.to_string()),
        };
        let mut attempts = 0u32;
        loop {
            let run = (module.run)(args.clone(), &mctx, observer);
            let outcome = match timeout {
                None => run.await,
                Some(secs) => match tokio::time::timeout(Duration::from_secs(secs), run).await {
                    Ok(outcome) => outcome,
                    Err(_) => {
                        // Stop what the module left running on the host
                        // (the shell running it, with its process group);
                        // on a delegate, the shell may be another host's.
                        if delegate.as_ref().is_none_or(|d| d == &st.name) {
                            crate::transport::stop_shells(transport.clone()).await;
                        }
                        match async_secs {
                            Some(a) if a == secs => Err(async_timed_out(a)),
                            _ => Err(timed_out(module.name, secs)),
                        }
                    }
                },
            };
            let outcome = self.change_inventory(&st.name, outcome);
            attempts += 1;
            // Ansible counts attempts only when it may retry, and shows the
            // count to changed_when and failed_when too.
            let counted = (tries > 1).then_some(attempts);
            let mut r = self.judge_attempt(task, scope, outcome, counted);
            if r.status == Status::Unreachable {
                return r;
            }
            let Some(retry) = task.until.as_ref().filter(|_| tries > 1) else {
                return r;
            };
            let done = if retry.until.is_empty() {
                r.status != Status::Failed
            } else {
                self.with_result(task, scope, &r.data, |s| {
                    retry
                        .until
                        .iter()
                        .all(|c| self.templar.truthy(c, s).unwrap_or(false))
                })
            };
            if done {
                return r;
            }
            if attempts >= tries {
                // Ansible's count after the last try is one short of the
                // runs (`retries`, not `retries + 1`); targets test that.
                r.data
                    .insert("attempts".into(), Value::from(attempts.saturating_sub(1)));
                r.data.insert("failed".into(), Value::Bool(true));
                // A false failed_when still decides the outcome (Ansible
                // judges by `failed_when_result` when there is one).
                let excused = r.data.get("failed_when_result") == Some(&Value::Bool(false));
                if r.status != Status::Failed && !excused {
                    r.status = Status::Failed;
                    r.msg = Some("Retries exceeded".into());
                    r.data.insert("failed".into(), Value::Bool(true));
                    // The failure is the task's: `ignore_errors` applies.
                    r.ignored = task.keywords.ignore_errors.unwrap_or(false);
                }
                return r;
            }
            self.emit(Event::Retry {
                task_id: self.task_id(),
                host: st.name.clone(),
                retries_left: tries - attempts,
            });
            tokio::time::sleep(std::time::Duration::from_secs_f64(delay)).await;
            // The retry waits for the host to change: read it afresh.
            observer.wrote(&remote, &crate::modules::Touched::Everything);
        }
    }

    /// Evaluate with the registered name bound to `data` (for changed_when,
    /// failed_when and until).
    fn with_result<T>(
        &self,
        task: &Task,
        scope: &Scope,
        data: &Map,
        f: impl FnOnce(&Scope) -> T,
    ) -> T {
        let layer: Map = match &task.register {
            Some(name) => std::iter::once((
                name.clone(),
                crate::template::literal_value(Value::Object(data.clone())),
            ))
            .collect(),
            // Result fields (rc, stdout) are visible directly too.
            None => match crate::template::literal_value(Value::Object(data.clone())) {
                Value::Object(m) => m,
                _ => Map::new(),
            },
        };
        f(&scope.with_layer(&self.templar, Arc::new(layer)))
    }

    /// Turn a module's outcome into a result, applying changed_when,
    /// failed_when and ignore_errors.
    fn judge(
        &self,
        task: &Task,
        scope: &Scope,
        outcome: Result<Outcome, ModuleError>,
    ) -> ItemResult {
        self.judge_attempt(task, scope, outcome, None)
    }

    /// [`Self::judge`] for try `attempt` of a task that retries: the
    /// result carries `attempts` before changed_when and failed_when see it.
    fn judge_attempt(
        &self,
        task: &Task,
        scope: &Scope,
        outcome: Result<Outcome, ModuleError>,
        attempt: Option<u32>,
    ) -> ItemResult {
        let (mut status, mut data, mut msg, diff) = match outcome {
            Ok(o) => {
                if let Some(reason) = o.skipped {
                    let mut r = ItemResult::skipped(&reason);
                    r.data.extend(o.data);
                    return r;
                }
                let status = if o.changed {
                    Status::Changed
                } else {
                    Status::Ok
                };
                (status, o.data, None, o.diff)
            }
            Err(ModuleError::Transport(e)) if e.is_unreachable() => {
                let mut r = ItemResult::failed(e.to_string());
                r.status = Status::Unreachable;
                return r;
            }
            Err(ModuleError::Failed { msg, data }) => (Status::Failed, data, Some(msg), None),
            Err(e) => (Status::Failed, Map::new(), Some(e.to_string()), None),
        };
        // `debug: var=ansible_facts` shows the facts; it sets none.
        let shows = matches!(&task.action, Action::Module { module, .. } if module.shows_result);
        let facts = data
            .get("ansible_facts")
            .filter(|_| !shows)
            .and_then(Value::as_object)
            .cloned();
        let facts = match &task.action {
            Action::Module { module, .. } if !module.defines_vars => facts.map(module_facts),
            _ => facts,
        };
        data.insert("changed".into(), Value::Bool(status == Status::Changed));
        if let Some(n) = attempt {
            data.insert("attempts".into(), Value::from(n));
        }
        if let Some(m) = &msg {
            data.insert("msg".into(), Value::from(m.clone()));
            data.insert("failed".into(), Value::Bool(true));
            // Ansible 2.19 gives every failed module result its error
            // summary under `exception`; targets test that it is there.
            data.entry("exception")
                .or_insert_with(|| Value::from(m.clone()));
        }
        if let Some(cw) = &task.changed_when {
            let r = self.with_result(task, scope, &data, |s| {
                cw.iter()
                    .try_fold(true, |acc, c| self.templar.truthy(c, s).map(|b| acc && b))
            });
            match r {
                Ok(changed) if status != Status::Failed => {
                    status = if changed { Status::Changed } else { Status::Ok };
                    data.insert("changed".into(), Value::Bool(changed));
                }
                Ok(_) => {}
                Err(e) => {
                    status = Status::Failed;
                    msg = Some(format!("error in changed_when: {e}"));
                    // As failed_when's: Ansible keeps the error in the result.
                    data.insert("changed_when_result".into(), Value::from(e.to_string()));
                }
            }
        }
        // A module drover lacks did nothing: `failed_when` may not pass it off as done.
        let unimplemented = matches!(&task.action,
            Action::Module { module, .. } if crate::modules::known::is_unimplemented(module));
        if let Some(fw) = task.failed_when.as_ref().filter(|_| !unimplemented) {
            let r = self.with_result(task, scope, &data, |s| {
                fw.iter()
                    .try_fold(true, |acc, c| self.templar.truthy(c, s).map(|b| acc && b))
            });
            match r {
                Ok(true) => {
                    status = Status::Failed;
                    if msg.is_none() {
                        msg = Some("failed_when condition was true".into());
                    }
                    data.insert("failed".into(), Value::Bool(true));
                    data.insert("failed_when_result".into(), Value::Bool(true));
                }
                Ok(false) => {
                    if let Some(e) = data.remove("exception") {
                        data.insert("failed_when_suppressed_exception".into(), e);
                    }
                    if status == Status::Failed {
                        status = if truthy_value(data.get("changed")) {
                            Status::Changed
                        } else {
                            Status::Ok
                        };
                        msg = None;
                    }
                    data.insert("failed".into(), Value::Bool(false));
                    data.insert("failed_when_result".into(), Value::Bool(false));
                }
                Err(e) => {
                    status = Status::Failed;
                    msg = Some(format!("error in failed_when: {e}"));
                    data.insert("failed_when_result".into(), Value::from(e.to_string()));
                }
            }
        }
        if let (Status::Failed, Some(m)) = (status, &msg) {
            data.insert("msg".into(), Value::from(m.clone()));
            data.insert("failed".into(), Value::Bool(true));
        }
        // Ansible's results always say whether they failed.
        if status != Status::Skipped {
            data.entry("failed")
                .or_insert(Value::Bool(status == Status::Failed));
        }
        let ignored = status == Status::Failed && task.keywords.ignore_errors.unwrap_or(false);
        ItemResult {
            status,
            data,
            msg,
            diff,
            ignored,
            facts,
            delegated: None,
        }
    }

    fn include_vars(
        &self,
        file: &str,
        base: &std::path::Path,
        args: &Value,
        role_dir: Option<&std::path::Path>,
        scope: &Scope,
    ) -> ItemResult {
        let args = match self.templar.render_value(args, scope) {
            Ok(Value::Object(m)) => m,
            Ok(_) => Map::new(),
            Err(e) => return ItemResult::failed(format!("include_vars: {e}")),
        };
        let loaded = if args.contains_key("dir") {
            include_vars::from_dir(&args, base, role_dir)
        } else {
            // A name that renders to None (`lookup(..., errors='ignore')`)
            // is no file, as in Ansible, not a file called "None".
            let name = match self.templar.render_value(&Value::from(file), scope) {
                Ok(Value::Null) => String::new(),
                Ok(Value::String(n)) => n,
                Ok(other) => other.to_string(),
                Err(e) => return ItemResult::failed(format!("include_vars: {e}")),
            };
            include_vars::check_args(&args)
                .and_then(|()| self.include_vars_file(&name, base, role_dir))
        };
        let (mut vars, files) = match loaded {
            Ok(l) => l,
            Err(msg) => {
                let mut r = ItemResult::failed(msg.clone());
                r.data.insert("message".into(), Value::from(msg));
                return r;
            }
        };
        if args.get("hash_behaviour").and_then(Value::as_str) == Some("merge") {
            for (k, v) in vars.iter_mut() {
                if let Some(old) = scope.var(k) {
                    *v = include_vars::merged(old, std::mem::take(v));
                }
            }
        }
        if let Some(name) = args.get("name").and_then(Value::as_str) {
            let mut wrapped = Map::new();
            wrapped.insert(name.to_string(), Value::Object(vars));
            vars = wrapped;
        }
        let mut data = Map::new();
        data.insert("ansible_facts".into(), Value::Object(vars.clone()));
        data.insert(
            "ansible_included_var_files".into(),
            Value::Array(files.into_iter().map(Value::from).collect()),
        );
        data.insert("changed".into(), Value::Bool(false));
        ItemResult {
            status: Status::Ok,
            data,
            msg: None,
            diff: None,
            ignored: false,
            facts: Some(vars),
            delegated: None,
        }
    }

    /// `include_vars: FILE`, looked up as Ansible does: the role's vars/
    /// (the base of a role's include_vars), the including file's directory
    /// and its vars/, then the playbook's directory and its vars/.
    fn include_vars_file(
        &self,
        name: &str,
        base: &std::path::Path,
        role_dir: Option<&std::path::Path>,
    ) -> Result<(Map, Vec<String>), String> {
        let pb = &self.playbook.dir;
        let mut candidates = vec![base.join(name), base.join("vars").join(name)];
        // As Ansible's search: the role's own directory after its vars/.
        candidates.extend(role_dir.map(|d| d.join(name)));
        candidates.extend([pb.join("vars").join(name), pb.join(name)]);
        let Some(path) = candidates.iter().find(|p| p.is_file()).cloned() else {
            // Ansible's words for a file not found.
            if name.is_empty() {
                return Err("Could not find file".into());
            }
            let searched: Vec<String> =
                candidates.iter().map(|p| p.display().to_string()).collect();
            return Err(format!(
                "Could not find or access '{name}'\nSearched in:\n\t{}",
                searched.join("\n\t")
            ));
        };
        let vars = include_vars::load(&path)?;
        Ok((vars, vec![path.display().to_string()]))
    }

    /// The task's `environment:`, rendered.
    pub(super) fn task_env(
        &self,
        task: &Task,
        scope: &Scope,
    ) -> Result<Vec<(String, String)>, TaskError> {
        match &task.keywords.environment {
            Some(env) => match self.templar.render_value(env, scope) {
                Ok(Value::Object(m)) => m
                    .into_iter()
                    .map(|(k, v)| {
                        if !crate::transport::is_env_name(&k) {
                            return Err(TaskError::EnvName(k));
                        }
                        let s = match v {
                            Value::String(s) => s,
                            other => other.to_string(),
                        };
                        Ok((k, s))
                    })
                    .collect(),
                Ok(_) => Err(TaskError::EnvNotMapping),
                Err(e) => Err(TaskError::Env(e)),
            },
            None => Ok(Vec::new()),
        }
    }

    /// `delegate_to` rendered for this host (as written if it cannot be).
    fn delegate_name(&self, task: &Task, scope: &Scope) -> Option<String> {
        task.keywords
            .delegate_to
            .as_ref()
            .map(|d| {
                self.templar
                    .render_string(d, scope)
                    .unwrap_or_else(|_| d.clone())
            })
            .filter(|d| d != &self.omit)
    }

    /// Count, notify and emit the result of a task without a loop.
    fn record(
        &self,
        task: &Task,
        st: &mut HostState,
        r: &ItemResult,
        item: Option<String>,
        no_log: bool,
    ) {
        self.count(task, st, r);
        self.emit_item(task, st, r, item, no_log);
    }

    fn count(&self, task: &Task, st: &mut HostState, r: &ItemResult) {
        match r.status {
            Status::Ok => st.counters.ok += 1,
            Status::Changed => {
                st.counters.ok += 1;
                st.counters.changed += 1;
                for n in &task.notify {
                    if !st.notified.contains(n) {
                        st.notified.push(n.clone());
                    }
                }
            }
            Status::Skipped => st.counters.skipped += 1,
            Status::Failed if r.ignored => st.counters.ignored += 1,
            Status::Failed => {
                let action = match &task.action {
                    Action::Module { module, .. } => module.name,
                    _ => "",
                };
                st.last_failure = Some((
                    serde_json::json!({"name": task.name.clone().unwrap_or_else(|| action.to_string()), "action": action}),
                    Value::Object(r.data.clone()),
                ));
                st.counters.failed += 1;
                st.standing = Standing::Failed;
                st.failed_in_block = true;
            }
            Status::Unreachable => {}
        }
    }

    fn emit_item(
        &self,
        task: &Task,
        st: &HostState,
        r: &ItemResult,
        item: Option<String>,
        no_log: bool,
    ) {
        if r.status == Status::Unreachable {
            return;
        }
        let is_debug = matches!(&task.action, Action::Module { module, .. } if module.shows_result);
        let (msg, result, diff) = if no_log {
            (
                (r.status == Status::Failed).then(|| NO_LOG_MSG.to_string()),
                Some(
                    serde_json::json!({"censored": NO_LOG_MSG, "changed": r.status == Status::Changed}),
                ),
                None,
            )
        } else {
            let mut shown = r.data.clone();
            if !is_debug {
                shown.remove("ansible_facts");
            }
            if is_debug {
                shown.remove("changed");
            }
            (
                r.msg.clone(),
                Some(Value::Object(shown)),
                r.diff.clone().map(Box::new),
            )
        };
        let mut redacted = result;
        if let Some(v) = redacted.as_mut() {
            self.redactor.redact_value(v);
        }
        self.emit(Event::HostResult {
            task_id: self.task_id(),
            host: st.name.clone(),
            status: r.status,
            item,
            msg: msg.map(|m| self.redactor.redact(&m)),
            result: redacted,
            diff,
            ignored: r.ignored,
            delegated: r.delegated.clone(),
            show: is_debug && !no_log,
        });
        // A module's result `warnings` are printed as Ansible prints them,
        // after the host's result.
        if let (false, Some(Value::Array(ws))) = (no_log, r.data.get("warnings")) {
            for w in ws.iter().filter_map(Value::as_str) {
                self.emit(Event::Warning(self.redactor.redact(w)));
            }
        }
    }

    fn register(&self, task: &Task, st: &mut HostState, data: Value, facts: Option<Map>) {
        if let Some(f) = facts {
            st.set_facts_mut().extend(f);
        }
        // As Ansible: the registered result keeps the facts the task
        // returned (`include_vars`' `r.ansible_facts.x`, `setup`'s).
        if let Some(name) = &task.register {
            // A result's text is data: `{{ x }}` in stdout stays as it is.
            st.set_facts_mut()
                .insert(name.clone(), crate::template::literal_value(data));
        }
    }
}

/// As Ansible: the facts a module returns (`setup`, `service_facts`,
/// `getent`) are the host's facts, named without the `ansible_` prefix
/// (`ansible_facts.hostname`, `ansible_facts.services`), and, injected as
/// variables, also under the name the module gave them (`services`).
fn module_facts(returned: Map) -> Map {
    let mut vars = Map::new();
    let mut facts = Map::new();
    for (k, v) in returned {
        match k.strip_prefix("ansible_") {
            Some(short) if !short.is_empty() => {
                facts.insert(short.to_string(), v);
            }
            _ => {
                vars.insert(k.clone(), v.clone());
                facts.insert(k, v);
            }
        }
    }
    vars.insert("ansible_facts".into(), Value::Object(facts));
    vars
}
