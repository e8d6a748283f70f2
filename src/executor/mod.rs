//! Runs plays: the play's hosts in parallel (bounded by `--forks`), tasks in
//! order with every host finishing a task before the next starts (Ansible's
//! linear strategy), handlers, `serial` batches and failure limits. A host
//! that fails or cannot be reached leaves the play; the others go on.

mod connect;
pub mod facts;
mod readahead;
mod task;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;
use tokio::sync::Semaphore;

use crate::error::InputErrors;
use crate::inventory::Inventory;
use crate::playbook::{Action, Meta, Play, Playbook, Serial, Task};
use crate::report::{Counters, Event, Status};
use crate::secret::{Redactor, Secret};
use crate::template::{HostVars, Scope, Templar};
use crate::transport::known_hosts::HostKeyChecking;
use crate::{Map, Value};

pub use connect::Pool;

/// Run-wide settings from the command line.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--check`.
    pub check: bool,
    /// `--diff`.
    pub diff: bool,
    /// `--forks` (default: all hosts).
    pub forks: Option<usize>,
    /// `--limit`.
    pub limit: Option<String>,
    /// `--tags`.
    pub tags: Vec<String>,
    /// `--skip-tags`.
    pub skip_tags: Vec<String>,
    /// `-e`.
    pub extra_vars: Map,
    /// `-u`.
    pub user: Option<String>,
    /// `--private-key`.
    pub private_key: Option<PathBuf>,
    /// `--known-hosts`.
    pub known_hosts: Option<PathBuf>,
    /// `--host-key-checking`.
    pub host_key_checking: Option<HostKeyChecking>,
    /// `--ask-become-pass`.
    pub become_password: Option<Secret>,
    /// `--ask-pass`.
    pub ssh_password: Option<Secret>,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// `--no-read-ahead`: every task reads the host on its own.
    pub no_read_ahead: bool,
}

/// Where a host stands in the current play.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    Active,
    Failed,
    Unreachable,
    /// `meta: end_host`/`end_play` or `any_errors_fatal`: out of this play only.
    Ended,
}

/// Everything drover knows about one host during a run.
struct HostState {
    name: String,
    inventory_vars: Arc<Map>,
    facts: Map,
    /// Registered results, `set_fact` and `include_vars`.
    set_facts: Map,
    notified: Vec<String>,
    standing: Standing,
    counters: Counters,
    /// Set when the host failed inside the block being run (for rescue).
    failed_in_block: bool,
    /// How many tasks the next read-ahead may cover (see `readahead`).
    read_ahead: usize,
}

impl HostState {
    fn active(&self) -> bool {
        self.standing == Standing::Active
    }
}

/// Play-wide values the tasks see.
struct PlayCtx<'p> {
    play: &'p Play,
    vars: Map,
    hosts: Vec<String>,
    /// `hosts` as a template value, made once: every task of every host
    /// sees it (as `ansible_play_hosts`, ...), and cloning it is cheap.
    hosts_value: minijinja::Value,
    /// Defaults of every role in the play, merged in the order the roles
    /// appear: as in Ansible, a role's defaults are visible to the whole
    /// play (a role's tasks see the defaults of roles it imports or depends
    /// on), its own defaults taking precedence.
    role_defaults: Map,
}

/// The defaults of every role whose tasks appear in `tasks` (blocks
/// included), merged in order of first appearance.
fn collect_role_defaults(tasks: &[Task], seen: &mut Vec<PathBuf>, out: &mut Map) {
    for task in tasks {
        if let Some(role) = &task.role {
            if !seen.contains(&role.dir) {
                seen.push(role.dir.clone());
                out.extend(role.defaults.clone());
            }
        }
        if let Action::Block {
            block,
            rescue,
            always,
        } = &task.action
        {
            for part in [block, rescue, always] {
                collect_role_defaults(part, seen, out);
            }
        }
    }
}

/// Runs a playbook.
pub struct Runner<'a> {
    playbook: &'a Playbook,
    inventory: &'a Inventory,
    opts: &'a Options,
    templar: Templar,
    pool: Arc<Pool>,
    /// The counters as of the last task every host finished, for a recap
    /// of a run stopped in the middle of one.
    progress: Arc<std::sync::Mutex<IndexMap<String, Counters>>>,
    forks: Arc<Semaphore>,
    events: std::sync::mpsc::Sender<Event>,
    redactor: Redactor,
    groups: minijinja::Value,
    omit: String,
    states: IndexMap<String, HostState>,
    /// `hostvars` as of the end of the last task: built once per task, not
    /// per host, and while every state is in the table.
    hostvars: minijinja::Value,
}

/// The outcome of a run.
pub struct Summary {
    /// Per-host counters.
    pub recap: IndexMap<String, Counters>,
}

impl Summary {
    /// The run's outcome: failed if any host failed, else unreachable if
    /// any host was unreachable, else success.
    pub fn outcome(&self) -> Result<(), crate::error::Error> {
        use crate::error::Error;
        if self.recap.values().any(|c| c.failed > 0) {
            Err(Error::Failed)
        } else if self.recap.values().any(|c| c.unreachable > 0) {
            Err(Error::Unreachable)
        } else {
            Ok(())
        }
    }
}

impl<'a> Runner<'a> {
    /// A runner sending events to `events`; `redactor` knows the secrets.
    pub fn new(
        playbook: &'a Playbook,
        inventory: &'a Inventory,
        opts: &'a Options,
        events: std::sync::mpsc::Sender<Event>,
        redactor: Redactor,
    ) -> Runner<'a> {
        let forks = opts.forks.unwrap_or(inventory.hosts.len().max(1)).max(1);
        let omit = format!("__omit_place_holder__{:016x}", rand::random::<u64>());
        Runner {
            playbook,
            inventory,
            opts,
            templar: Templar::new(),
            pool: Arc::new(Pool::default()),
            progress: Arc::default(),
            forks: Arc::new(Semaphore::new(forks)),
            events,
            redactor,
            groups: crate::template::to_value(Value::Object(inventory.groups_var())),
            omit,
            states: IndexMap::new(),
            hostvars: minijinja::Value::UNDEFINED,
        }
    }

    /// The run's connections, to stop their commands when it is
    /// interrupted.
    pub fn pool(&self) -> Arc<Pool> {
        self.pool.clone()
    }

    /// The counters as of the last task every host finished.
    pub fn progress(&self) -> Arc<std::sync::Mutex<IndexMap<String, Counters>>> {
        self.progress.clone()
    }

    fn emit(&self, event: Event) {
        let _ = self.events.send(event);
    }

    /// Report what YAML reads warned about (duplicate keys in a vars file or
    /// an `include_vars` file read during the run).
    fn emit_yaml_warnings(&self) {
        for w in crate::yaml::take_warnings() {
            self.emit(Event::Warning(w));
        }
    }

    /// Which hosts each play targets, checked before anything connects.
    pub fn resolve_hosts(&self) -> Result<Vec<Vec<String>>, InputErrors> {
        let mut all = Vec::new();
        for play in &self.playbook.plays {
            let hosts = self
                .inventory
                .select_limited(&play.hosts, self.opts.limit.as_deref())
                .map_err(|e| {
                    InputErrors::from(crate::error::InputError::new(
                        play.pos.clone(),
                        e.to_string(),
                    ))
                })?;
            all.push(hosts);
        }
        Ok(all)
    }

    /// Run every play; returns the recap.
    pub async fn run(mut self) -> Result<Summary, InputErrors> {
        let targets = self.resolve_hosts()?;
        for (play, hosts) in self.playbook.plays.iter().zip(targets) {
            if crate::interrupt::interrupted() {
                break;
            }
            self.run_play(play, hosts).await?;
        }
        // An interrupted run's caller still needs the connections to
        // clean up on the hosts; it closes them.
        if !crate::interrupt::interrupted() {
            self.pool.close_all().await;
        }
        self.emit_yaml_warnings();
        let recap: IndexMap<String, Counters> = self
            .states
            .iter()
            .map(|(k, s)| (k.clone(), s.counters.clone()))
            .collect();
        self.emit(Event::Recap(recap.clone()));
        Ok(Summary { recap })
    }

    fn play_vars(&self, play: &Play) -> Result<Map, InputErrors> {
        let mut vars = play.vars.clone();
        for (file, pos) in &play.vars_files {
            let scope = self.templar.scope(Arc::new(self.merged(&vars)), Vec::new());
            let name = self.templar.render_string(file, &scope).map_err(|e| {
                InputErrors::from(crate::error::InputError::new(pos.clone(), e.to_string()))
            })?;
            let path = self.playbook.dir.join(&name);
            let doc = crate::yaml::load_file(&path)?;
            match doc.to_value() {
                Value::Object(m) => vars.extend(m),
                Value::Null => {}
                _ => {
                    return Err(doc.error("a vars file must be a mapping").into());
                }
            }
        }
        Ok(vars)
    }

    fn merged(&self, vars: &Map) -> Map {
        let mut m = vars.clone();
        m.extend(self.opts.extra_vars.clone());
        m
    }

    async fn run_play(&mut self, play: &Play, hosts: Vec<String>) -> Result<(), InputErrors> {
        self.emit(Event::PlayStart {
            name: play.name.clone(),
        });
        let vars = self.play_vars(play)?;
        self.emit_yaml_warnings();
        for h in &hosts {
            if !self.states.contains_key(h) {
                let host = self
                    .inventory
                    .get(h)
                    .map(|c| c.into_owned())
                    .unwrap_or_default();
                self.states.insert(
                    h.clone(),
                    HostState {
                        name: h.clone(),
                        inventory_vars: Arc::new(host.vars),
                        facts: Map::new(),
                        set_facts: Map::new(),
                        notified: Vec::new(),
                        standing: Standing::Active,
                        counters: Counters::default(),
                        failed_in_block: false,
                        read_ahead: readahead::MAX_WINDOW / 2,
                    },
                );
            }
            if let Some(s) = self.states.get_mut(h) {
                if s.standing == Standing::Ended {
                    s.standing = Standing::Active;
                }
            }
        }
        let live: Vec<String> = hosts
            .iter()
            .filter(|h| self.states.get(*h).is_some_and(HostState::active))
            .cloned()
            .collect();
        if live.is_empty() {
            self.emit(Event::Warning(format!(
                "no hosts matched the pattern '{}' (or all have failed)",
                play.hosts
            )));
            return Ok(());
        }
        self.refresh_hostvars();
        let mut role_defaults = Map::new();
        let mut seen = Vec::new();
        for section in [
            &play.pre_tasks,
            &play.tasks,
            &play.post_tasks,
            &play.handlers,
        ] {
            collect_role_defaults(section, &mut seen, &mut role_defaults);
        }
        let ctx = PlayCtx {
            play,
            vars,
            hosts_value: crate::template::to_value(&live),
            hosts: live.clone(),
            role_defaults,
        };
        for host in &live {
            if let Some(st) = self.states.get(host) {
                self.learn_secrets(&self.host_scope(&ctx, st, None, Vec::new()));
            }
        }
        for batch in batches(&live, &play.serial) {
            let before_failed = self.count_failed(&batch);
            if play.gather_facts {
                self.gather_facts(&ctx, &batch).await;
            }
            for section in [&play.pre_tasks, &play.tasks, &play.post_tasks] {
                self.run_tasks(&ctx, section, &batch, false).await;
                self.run_handlers(&ctx, &batch).await;
                if self.play_aborted(&ctx, &batch, before_failed) {
                    break;
                }
            }
            if self.play_aborted(&ctx, &batch, before_failed) {
                // The remaining batches do not run.
                for h in &live {
                    if let Some(s) = self.states.get_mut(h) {
                        if s.active() {
                            s.standing = Standing::Ended;
                        }
                    }
                }
                break;
            }
        }
        Ok(())
    }

    fn count_failed(&self, batch: &[String]) -> usize {
        batch
            .iter()
            .filter(|h| {
                self.states
                    .get(*h)
                    .is_some_and(|s| matches!(s.standing, Standing::Failed | Standing::Unreachable))
            })
            .count()
    }

    /// Has `max_fail_percentage` been exceeded in this batch?
    fn play_aborted(&self, ctx: &PlayCtx<'_>, batch: &[String], before: usize) -> bool {
        let failed = self.count_failed(batch).saturating_sub(before);
        match ctx.play.max_fail_percentage {
            Some(pct) if !batch.is_empty() => (failed as f64) * 100.0 / (batch.len() as f64) > pct,
            _ => false,
        }
    }

    async fn gather_facts(&mut self, ctx: &PlayCtx<'_>, batch: &[String]) {
        let active: Vec<String> = self.active_of(batch);
        if active.is_empty() {
            return;
        }
        self.emit(Event::TaskStart {
            name: "Gathering Facts".into(),
            hosts: active.len(),
            handler: false,
        });
        let mut states = self.take_states(&active);
        {
            let me = &*self;
            let futs = states.iter_mut().map(|st| async move {
                let _permit = me.forks.acquire().await;
                let scope = me.host_scope(ctx, st, None, Vec::new());
                let remote = match me.connection(&st.name, &scope).await {
                    Ok(t) => crate::transport::Remote::new(t, None),
                    Err(e) => {
                        me.unreachable(st, None, e.to_string());
                        return;
                    }
                };
                match facts::gather(&remote).await {
                    Ok(f) => {
                        st.facts = f;
                        st.counters.ok += 1;
                        me.emit(host_event(&st.name, Status::Ok, None, None, None));
                    }
                    Err(e) => me.unreachable(st, None, e.to_string()),
                }
            });
            futures::future::join_all(futs).await;
        }
        self.put_back(states);
    }

    /// Take hosts' states out of the table so that each host's future can own
    /// its state while the runner is shared.
    fn take_states(&mut self, hosts: &[String]) -> Vec<HostState> {
        hosts
            .iter()
            .filter_map(|h| self.states.shift_remove(h))
            .collect()
    }

    /// Return states taken with [`Runner::take_states`], keeping the table
    /// in inventory order (the order of the recap).
    fn put_back(&mut self, states: Vec<HostState>) {
        for st in states {
            self.states.insert(st.name.clone(), st);
        }
        let inventory = self.inventory;
        self.states
            .sort_by_cached_key(|name, _| inventory.hosts.get_index_of(name).unwrap_or(usize::MAX));
        self.refresh_hostvars();
        *self.progress.lock().unwrap_or_else(|e| e.into_inner()) = self
            .states
            .iter()
            .map(|(k, s)| (k.clone(), s.counters.clone()))
            .collect();
    }

    /// The hosts still in the play; none once the run is interrupted, so
    /// that no task starts after it.
    fn active_of(&self, hosts: &[String]) -> Vec<String> {
        if crate::interrupt::interrupted() {
            return Vec::new();
        }
        hosts
            .iter()
            .filter(|h| self.states.get(*h).is_some_and(HostState::active))
            .cloned()
            .collect()
    }

    /// Run a list of tasks on `hosts` (linear: each task on all hosts first).
    fn run_tasks<'s>(
        &'s mut self,
        ctx: &'s PlayCtx<'s>,
        tasks: &'s [Task],
        hosts: &'s [String],
        handler: bool,
    ) -> futures::future::BoxFuture<'s, ()> {
        Box::pin(async move {
            for (i, task) in tasks.iter().enumerate() {
                let later = if handler { &[][..] } else { &tasks[i + 1..] };
                let active = self.active_of(hosts);
                if active.is_empty() {
                    return;
                }
                match &task.action {
                    Action::Block {
                        block,
                        rescue,
                        always,
                    } => {
                        for h in &active {
                            if let Some(s) = self.states.get_mut(h) {
                                s.failed_in_block = false;
                            }
                        }
                        self.run_tasks(ctx, block, &active, handler).await;
                        let failed: Vec<String> = active
                            .iter()
                            .filter(|h| {
                                self.states.get(*h).is_some_and(|s| {
                                    s.standing == Standing::Failed && s.failed_in_block
                                })
                            })
                            .cloned()
                            .collect();
                        if !rescue.is_empty() && !failed.is_empty() {
                            for h in &failed {
                                if let Some(s) = self.states.get_mut(h) {
                                    s.standing = Standing::Active;
                                    s.counters.failed = s.counters.failed.saturating_sub(1);
                                    s.counters.rescued += 1;
                                }
                            }
                            self.run_tasks(ctx, rescue, &failed, handler).await;
                        }
                        if !always.is_empty() {
                            // `always` runs for hosts that failed in the block too.
                            let still_failed: Vec<String> = active
                                .iter()
                                .filter(|h| {
                                    self.states
                                        .get(*h)
                                        .is_some_and(|s| s.standing == Standing::Failed)
                                })
                                .cloned()
                                .collect();
                            for h in &still_failed {
                                if let Some(s) = self.states.get_mut(h) {
                                    s.standing = Standing::Active;
                                }
                            }
                            self.run_tasks(ctx, always, &active, handler).await;
                            for h in &still_failed {
                                if let Some(s) = self.states.get_mut(h) {
                                    if s.standing == Standing::Active {
                                        s.standing = Standing::Failed;
                                    }
                                }
                            }
                        }
                    }
                    Action::Meta(meta) => {
                        if !task.selected(&self.opts.tags, &self.opts.skip_tags) {
                            continue;
                        }
                        match meta {
                            Meta::FlushHandlers => self.run_handlers(ctx, &active).await,
                            Meta::EndPlay => {
                                for h in &ctx.hosts {
                                    if let Some(s) = self.states.get_mut(h) {
                                        if s.active() {
                                            s.standing = Standing::Ended;
                                        }
                                    }
                                }
                            }
                            Meta::EndHost => {
                                for h in &active {
                                    let cond = self.when_holds(ctx, task, h);
                                    if let Some(s) = self.states.get_mut(h) {
                                        if cond {
                                            s.standing = Standing::Ended;
                                        }
                                    }
                                }
                            }
                            Meta::ClearFacts => {
                                for h in &active {
                                    if let Some(s) = self.states.get_mut(h) {
                                        s.facts.clear();
                                    }
                                }
                            }
                            Meta::Noop => {}
                        }
                    }
                    Action::IncludeTasks { .. } => {
                        self.run_include(ctx, task, &active, handler).await;
                    }
                    Action::Module { .. } | Action::IncludeVars { .. } => {
                        if !task.selected(&self.opts.tags, &self.opts.skip_tags) {
                            continue;
                        }
                        self.run_task(ctx, task, later, &active, handler).await;
                    }
                }
            }
        })
    }

    fn when_holds(&self, ctx: &PlayCtx<'_>, task: &Task, host: &str) -> bool {
        let Some(st) = self.states.get(host) else {
            return false;
        };
        let scope = self.host_scope(ctx, st, Some(task), Vec::new());
        task.when
            .iter()
            .all(|c| self.templar.truthy(c, &scope).unwrap_or(false))
    }

    async fn run_include(
        &mut self,
        ctx: &PlayCtx<'_>,
        task: &Task,
        hosts: &[String],
        handler: bool,
    ) {
        let Action::IncludeTasks { file, base, .. } = &task.action else {
            return;
        };
        // Each host may include a different file; group hosts by the file.
        let mut groups: IndexMap<PathBuf, Vec<String>> = IndexMap::new();
        for h in hosts {
            let Some(st) = self.states.get(h) else {
                continue;
            };
            let scope = self.host_scope(ctx, st, Some(task), Vec::new());
            let when = task.when.iter().try_fold(true, |acc, c| {
                self.templar.truthy(c, &scope).map(|b| acc && b)
            });
            match when {
                Ok(false) => continue,
                Ok(true) => {}
                Err(e) => {
                    let msg = format!("{}: {e}", task.pos);
                    if let Some(st) = self.states.get_mut(h) {
                        fail_host(st, &self.events, msg);
                    }
                    continue;
                }
            }
            match self.templar.render_string(file, &scope) {
                Ok(name) => groups.entry(base.join(name)).or_default().push(h.clone()),
                Err(e) => {
                    let msg = format!("{}: {e}", task.pos);
                    if let Some(st) = self.states.get_mut(h) {
                        fail_host(st, &self.events, msg);
                    }
                }
            }
        }
        for (path, group) in groups {
            match crate::playbook::load_included(&path, task, &self.playbook.dir) {
                Ok(tasks) => {
                    // The include's own `when` was evaluated above.
                    let tasks: Vec<Task> = tasks
                        .into_iter()
                        .map(|mut t| {
                            strip_when_prefix(&mut t, task.when.len());
                            t
                        })
                        .collect();
                    self.run_tasks(ctx, &tasks, &group, handler).await;
                }
                Err(e) => {
                    for h in &group {
                        if let Some(st) = self.states.get_mut(h) {
                            fail_host(st, &self.events, e.to_string());
                        }
                    }
                }
            }
        }
    }

    async fn run_handlers(&mut self, ctx: &PlayCtx<'_>, hosts: &[String]) {
        for handler in &ctx.play.handlers {
            let names: Vec<String> = handler
                .name
                .iter()
                .cloned()
                .chain(handler.listen.iter().cloned())
                .collect();
            let notified: Vec<String> = self
                .active_of(hosts)
                .into_iter()
                .filter(|h| {
                    self.states
                        .get(h)
                        .is_some_and(|s| s.notified.iter().any(|n| names.contains(n)))
                })
                .collect();
            if notified.is_empty() {
                continue;
            }
            for h in &notified {
                if let Some(s) = self.states.get_mut(h) {
                    s.notified.retain(|n| !names.contains(n));
                }
            }
            self.run_tasks(ctx, std::slice::from_ref(handler), &notified, true)
                .await;
        }
    }

    /// Mask the passwords a host's variables resolve to (templated ones
    /// too, e.g. from a vault variable) in all output from now on.
    fn learn_secrets(&self, scope: &Scope) {
        for key in crate::secret::SECRET_VARS {
            if let Some(v) = scope.vars().get(*key) {
                if let Ok(v) = self.templar.render_value(v, scope) {
                    self.redactor.add_value(&v);
                }
            }
        }
    }

    /// The variables `task` sees on `st`, lowest precedence first.
    fn host_scope(
        &self,
        ctx: &PlayCtx<'_>,
        st: &HostState,
        task: Option<&Task>,
        extra: Vec<(String, Value)>,
    ) -> Scope {
        let mut vars = Map::new();
        // Ansible's default, so templates it rendered render the same.
        vars.insert("ansible_managed".into(), Value::from("Ansible managed"));
        vars.extend(ctx.role_defaults.clone());
        if let Some(role) = task.and_then(|t| t.role.as_ref()) {
            vars.extend(role.defaults.clone());
        }
        vars.extend(
            st.inventory_vars
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        vars.extend(facts::as_vars(&st.facts));
        vars.extend(ctx.vars.clone());
        if let Some(task) = task {
            if let Some(role) = &task.role {
                vars.extend(role.vars.clone());
                vars.insert("role_name".into(), Value::from(role.name.clone()));
                vars.insert(
                    "role_path".into(),
                    Value::from(role.dir.display().to_string()),
                );
            }
            vars.extend(task.vars.clone());
        }
        vars.extend(st.set_facts.clone());
        vars.extend(self.opts.extra_vars.clone());
        vars.extend(extra);
        let name = st.name.clone();
        vars.insert("inventory_hostname".into(), Value::from(name.clone()));
        vars.insert(
            "inventory_hostname_short".into(),
            Value::from(name.split('.').next().unwrap_or_default().to_string()),
        );
        vars.insert(
            "group_names".into(),
            serde_json::json!(self.inventory.group_names(&name)),
        );
        vars.insert(
            "playbook_dir".into(),
            Value::from(self.playbook.dir.display().to_string()),
        );
        vars.insert("ansible_check_mode".into(), Value::Bool(self.opts.check));
        vars.insert("ansible_diff_mode".into(), Value::Bool(self.opts.diff));
        vars.insert("omit".into(), Value::from(self.omit.clone()));
        // Shared values, not copied into every host's variables: with
        // hundreds of hosts a list of them per host and task was most of
        // the client's work.
        let magic = vec![
            ("groups".to_string(), self.groups.clone()),
            ("hostvars".to_string(), self.hostvars.clone()),
            ("ansible_play_hosts".to_string(), ctx.hosts_value.clone()),
            ("play_hosts".to_string(), ctx.hosts_value.clone()),
            ("ansible_play_batch".to_string(), ctx.hosts_value.clone()),
        ];
        self.templar.scope(Arc::new(vars), magic)
    }

    /// Rebuild `hostvars`: each host's inventory variables, facts and
    /// registered values.
    fn refresh_hostvars(&mut self) {
        self.hostvars = self.build_hostvars();
    }

    fn build_hostvars(&self) -> minijinja::Value {
        let hosts = self
            .inventory
            .hosts
            .keys()
            .map(|name| {
                let mut vars = Map::new();
                match self.states.get(name) {
                    Some(st) => {
                        vars.extend(
                            st.inventory_vars
                                .iter()
                                .map(|(k, v)| (k.clone(), v.clone())),
                        );
                        vars.extend(facts::as_vars(&st.facts));
                        vars.extend(st.set_facts.clone());
                    }
                    None => {
                        if let Some(h) = self.inventory.hosts.get(name) {
                            vars.extend(h.vars.clone());
                        }
                    }
                }
                vars.insert("inventory_hostname".into(), Value::from(name.clone()));
                (name.clone(), self.templar.scope(Arc::new(vars), Vec::new()))
            })
            .collect();
        minijinja::Value::from_object(HostVars { hosts })
    }

    /// The connection to `host`, opened on first use.
    async fn connection(
        &self,
        host: &str,
        scope: &Scope,
    ) -> Result<Arc<dyn crate::transport::Transport>, connect::ConnectError> {
        self.pool
            .get(host, || {
                connect::target_for(host, self.inventory, &self.templar, scope, self.opts)
            })
            .await
    }

    fn unreachable(&self, st: &mut HostState, delegated: Option<String>, msg: String) {
        st.standing = Standing::Unreachable;
        st.counters.unreachable = 1;
        self.pool.forget(&st.name);
        let mut ev = host_event(&st.name, Status::Unreachable, Some(msg), None, None);
        if let Event::HostResult { delegated: d, .. } = &mut ev {
            *d = delegated;
        }
        self.emit(ev);
    }
}

/// Mark a host failed by something outside a module (a bad include).
fn fail_host(st: &mut HostState, events: &std::sync::mpsc::Sender<Event>, msg: String) {
    st.standing = Standing::Failed;
    st.failed_in_block = true;
    st.counters.failed += 1;
    let _ = events.send(host_event(&st.name, Status::Failed, Some(msg), None, None));
}

/// Tasks loaded by an include carry the include's `when` first; it has been
/// checked already.
fn strip_when_prefix(task: &mut Task, n: usize) {
    if task.when.len() >= n {
        task.when.drain(..n);
    }
    if let Action::Block {
        block,
        rescue,
        always,
    } = &mut task.action
    {
        for t in block
            .iter_mut()
            .chain(rescue.iter_mut())
            .chain(always.iter_mut())
        {
            strip_when_prefix(t, n);
        }
    }
}

fn host_event(
    host: &str,
    status: Status,
    msg: Option<String>,
    result: Option<Value>,
    item: Option<String>,
) -> Event {
    Event::HostResult {
        host: host.to_string(),
        status,
        item,
        msg,
        result,
        diff: None,
        ignored: false,
        delegated: None,
        show: false,
    }
}

/// Split hosts into `serial` batches (the last size repeats).
fn batches(hosts: &[String], serial: &[Serial]) -> Vec<Vec<String>> {
    if serial.is_empty() {
        return vec![hosts.to_vec()];
    }
    let mut out = Vec::new();
    let mut i = 0;
    let mut k = 0;
    while i < hosts.len() {
        let spec = &serial[k.min(serial.len() - 1)];
        let n = match spec {
            Serial::Count(n) => *n,
            Serial::Percent(p) => ((hosts.len() as f64) * p / 100.0).floor() as usize,
        }
        .max(1);
        let end = (i + n).min(hosts.len());
        out.push(hosts[i..end].to_vec());
        i = end;
        k += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_batches() {
        let hosts: Vec<String> = (1..=5).map(|i| format!("h{i}")).collect();
        let b = batches(&hosts, &[Serial::Count(1), Serial::Count(2)]);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), vec![1, 2, 2]);
        let b = batches(&hosts, &[Serial::Percent(50.0)]);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 2, 1]);
        assert_eq!(batches(&hosts, &[]).len(), 1);
    }
}
