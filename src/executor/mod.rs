//! Runs plays: the play's hosts in parallel (bounded by `--forks`), tasks in
//! order with every host finishing a task before the next starts (Ansible's
//! linear strategy), handlers, `serial` batches and failure limits. A host
//! that fails or cannot be reached leaves the play; the others go on.

mod connect;
pub mod facts;
mod include_vars;
mod readahead;
mod task;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;
use tokio::sync::Semaphore;

use crate::error::InputErrors;
use crate::inventory::Inventory;
use crate::playbook::{Action, Meta, Play, Playbook, Role, Serial, Task};
use crate::report::{Counters, Event, EventSink, Status, TaskId};
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
    /// The user chose the connect timeout (`-T`): it wins over
    /// `ConnectTimeout` in the SSH client configuration.
    pub connect_timeout_set: bool,
    /// `--no-read-ahead`: every task reads the host on its own.
    pub no_read_ahead: bool,
    /// `--become`: become where no keyword or variable says otherwise.
    pub become_: bool,
    /// `--become-user`: the user to become where no keyword or variable names one.
    pub become_user: Option<String>,
    /// `--start-at-task`: tasks before the first one of this name are skipped.
    pub start_at_task: Option<String>,
    /// `--step`: asked before each task whether to run it.
    pub step: Option<Step>,
    /// `remote_user` of ansible.cfg: the user where no `-u`, variable or
    /// keyword names one.
    pub remote_user: Option<String>,
    /// `ssh_args` of ansible.cfg: a host's `ansible_ssh_args` where it
    /// sets none.
    pub ssh_args: Option<String>,
    /// `--become-method` (or ansible.cfg's): where no keyword or variable names one.
    pub become_method: Option<String>,
}

/// Asks, before a task runs, whether to run it (`--step`); given the
/// task's name, answers yes or no.
#[derive(Clone)]
pub struct Step(pub Arc<dyn Fn(&str) -> bool + Send + Sync>);

impl std::fmt::Debug for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Step")
    }
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

/// A host's place in [`Runner::hosts`], given when a play first targets it.
type HostId = usize;

/// A host's own variable layers, lowest precedence first. Each is shared
/// by every scope made from it until the host's values change.
#[derive(Clone)]
struct HostLayers {
    /// Inventory and group variables.
    inventory: Arc<Map>,
    /// Gathered facts as `ansible_*` variables.
    facts: Arc<Map>,
    /// Registered results, `set_fact` and `include_vars`.
    set_facts: Arc<Map>,
    /// `inventory_hostname`, `group_names` and the other per-host names
    /// that override everything.
    names: Arc<Map>,
}

/// Everything drover knows about one host during a run.
struct HostState {
    name: String,
    /// Gathered facts, as the modules report them.
    facts: Map,
    vars: HostLayers,
    notified: Vec<String>,
    standing: Standing,
    counters: Counters,
    /// Set when the host failed inside the block being run (for rescue).
    failed_in_block: bool,
    /// How many tasks the next read-ahead may cover (see `readahead`).
    read_ahead: usize,
    /// Reads riding on the command of the task about to run.
    ride: Option<readahead::Ride>,
    /// Facts this host's task set for the host it was delegated to
    /// (`delegate_facts`), handed over when the task ends.
    delegated_facts: Vec<(String, Map)>,
    /// The last task that failed on this host and its result, for
    /// `ansible_failed_task` and `ansible_failed_result` in `rescue`.
    last_failure: Option<(Value, Value)>,
}

impl HostState {
    fn active(&self) -> bool {
        self.standing == Standing::Active
    }

    /// Registered values, to change (copied first if a scope still shares
    /// them).
    fn set_facts_mut(&mut self) -> &mut Map {
        Arc::make_mut(&mut self.vars.set_facts)
    }

    fn set_gathered_facts(&mut self, facts: Map) {
        self.vars.facts = Arc::new(facts::as_vars(&facts));
        self.facts = facts;
    }
}

/// A role's variables as scope layers, made once per play.
struct RoleLayers {
    role: Arc<Role>,
    defaults: Arc<Map>,
    /// The role's vars with `role_name` and `role_path`.
    vars: Arc<Map>,
}

/// Play-wide values the tasks see.
struct PlayCtx<'p> {
    play: &'p Play,
    vars: Arc<Map>,
    hosts: Vec<HostId>,
    /// The play's host names as a template value, made once: every task of
    /// every host sees it (as `ansible_play_hosts`, ...), and cloning it is
    /// cheap.
    hosts_value: minijinja::Value,
    /// Defaults of every role in the play, merged in the order the roles
    /// appear: as in Ansible, a role's defaults are visible to the whole
    /// play (a role's tasks see the defaults of roles it imports or depends
    /// on), its own defaults taking precedence.
    role_defaults: Arc<Map>,
    /// Layers of the roles met so far (included roles join on first use).
    roles: std::sync::Mutex<Vec<RoleLayers>>,
}

impl PlayCtx<'_> {
    /// `role`'s layers, made on first use.
    fn role_layers(&self, role: &Arc<Role>) -> (Arc<Map>, Arc<Map>) {
        let mut roles = self.roles.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = roles.iter().find(|r| Arc::ptr_eq(&r.role, role)) {
            return (r.defaults.clone(), r.vars.clone());
        }
        let mut vars = role.vars.clone();
        vars.insert("role_name".into(), Value::from(role.name.clone()));
        vars.insert("ansible_role_name".into(), Value::from(role.name.clone()));
        // Absolute, as Ansible's: roles build paths from it.
        let dir = std::path::absolute(&role.dir).unwrap_or_else(|_| role.dir.clone());
        vars.insert("role_path".into(), Value::from(dir.display().to_string()));
        let layers = RoleLayers {
            role: role.clone(),
            defaults: Arc::new(role.defaults.clone()),
            vars: Arc::new(vars),
        };
        let out = (layers.defaults.clone(), layers.vars.clone());
        roles.push(layers);
        out
    }
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

/// What every host's task sees of the run; fixed while tasks run (only
/// `hostvars`, and the inventory `add_host`/`group_by` changed, are renewed
/// between tasks).
pub(crate) struct RunCtx<'a> {
    playbook: &'a Playbook,
    /// The inventory as of the last task: `add_host` and `group_by`
    /// change it between tasks.
    inventory: Arc<Inventory>,
    /// The inventory being changed by the running task (`add_host`,
    /// `group_by`), taken as the inventory when the task ends.
    inventory_changes: std::sync::Mutex<Option<Inventory>>,
    opts: &'a Options,
    templar: Templar,
    pool: Arc<Pool>,
    forks: Arc<Semaphore>,
    events: EventSink,
    /// The task running now (tasks run one at a time, on all their hosts).
    task_id: std::sync::atomic::AtomicU64,
    redactor: Redactor,
    groups: minijinja::Value,
    omit: String,
    /// The lowest layer of every scope (`ansible_managed`).
    base: Arc<Map>,
    /// `-e`: the highest layer but a host's names.
    extra_vars: Arc<Map>,
    /// `hostvars` as of the end of the last task: built once per task, not
    /// per host.
    hostvars: minijinja::Value,
    /// Every host's layers as of the end of the last task, for a task
    /// delegated to a host that is itself running.
    layers: IndexMap<String, HostLayers>,
    /// Reads observed on each host, kept until a write makes them stale.
    observations: readahead::Observations,
    /// Facts delegated (`delegate_facts`) to hosts no play has reached yet.
    outside_facts: std::sync::Mutex<IndexMap<String, Map>>,
}

/// Runs a playbook.
pub struct Runner<'a> {
    cx: RunCtx<'a>,
    /// Every host a play has targeted, in order of first appearance.
    hosts: Vec<HostState>,
    ids: HashMap<String, HostId>,
    /// `hosts` in inventory order (the recap's).
    recap_order: Vec<HostId>,
    /// The counters as of the last task every host finished, for a recap
    /// of a run stopped in the middle of one.
    progress: Arc<std::sync::Mutex<IndexMap<String, Counters>>>,
    /// Has the task `--start-at-task` names been reached (or is there none)?
    started: bool,
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

/// The mutable states of `ids`, in that order; each host once.
fn states_mut<'s>(hosts: &'s mut [HostState], ids: &[HostId]) -> Vec<&'s mut HostState> {
    let mut slots: Vec<Option<&mut HostState>> = hosts.iter_mut().map(Some).collect();
    ids.iter()
        .filter_map(|&i| slots.get_mut(i).and_then(Option::take))
        .collect()
}

impl<'a> Runner<'a> {
    /// A runner sending events to `events`; `redactor` knows the secrets.
    pub fn new(
        playbook: &'a Playbook,
        inventory: &'a Inventory,
        opts: &'a Options,
        events: EventSink,
        redactor: Redactor,
    ) -> Runner<'a> {
        let forks = opts.forks.unwrap_or(inventory.hosts.len().max(1)).max(1);
        let omit = format!("__omit_place_holder__{:016x}", rand::random::<u64>());
        let mut base = Map::new();
        // Ansible's default, so templates it rendered render the same.
        base.insert("ansible_managed".into(), Value::from("Ansible managed"));
        // The ansible-core release whose semantics drover follows.
        base.insert(
            "ansible_version".into(),
            serde_json::json!({"full": "2.19.0", "major": 2, "minor": 19, "revision": 0, "string": "2.19.0"}),
        );
        Runner {
            cx: RunCtx {
                playbook,
                inventory: Arc::new(inventory.clone()),
                inventory_changes: std::sync::Mutex::new(None),
                opts,
                templar: Templar::new(),
                pool: Arc::new(Pool::with_local_dir(playbook.dir.clone())),
                forks: Arc::new(Semaphore::new(forks)),
                events,
                task_id: Default::default(),
                redactor,
                groups: crate::template::to_value(Value::Object(inventory.groups_var())),
                omit,
                base: Arc::new(base),
                extra_vars: Arc::new(opts.extra_vars.clone()),
                hostvars: minijinja::Value::UNDEFINED,
                layers: IndexMap::new(),
                observations: readahead::Observations::default(),
                outside_facts: Default::default(),
            },
            hosts: Vec::new(),
            ids: HashMap::new(),
            recap_order: Vec::new(),
            progress: Arc::default(),
            started: opts.start_at_task.is_none(),
        }
    }

    /// The run's connections, to stop their commands when it is
    /// interrupted.
    pub fn pool(&self) -> Arc<Pool> {
        self.cx.pool.clone()
    }

    /// The counters as of the last task every host finished.
    pub fn progress(&self) -> Arc<std::sync::Mutex<IndexMap<String, Counters>>> {
        self.progress.clone()
    }

    /// Which hosts each play targets, checked before anything connects.
    pub fn resolve_hosts(&self) -> Result<Vec<Vec<String>>, InputErrors> {
        let mut all = Vec::new();
        for play in &self.cx.playbook.plays {
            let hosts = self
                .cx
                .inventory
                .select_limited(&play.hosts, self.cx.opts.limit.as_deref())
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
        self.cx.check_ssh(&targets)?;
        let loaded = self.cx.inventory.clone();
        for (play, hosts) in self.cx.playbook.plays.iter().zip(targets) {
            if crate::interrupt::interrupted() {
                break;
            }
            // Hosts and groups added by `add_host` and `group_by` are in
            // later plays' patterns (and are checked before connecting).
            let hosts = if Arc::ptr_eq(&loaded, &self.cx.inventory) {
                hosts
            } else {
                let now = self
                    .cx
                    .inventory
                    .select_limited(&play.hosts, self.cx.opts.limit.as_deref())
                    .unwrap_or(hosts);
                // Warnings only: plays have run, so an added host's bad
                // SSH configuration is its own failure when it connects.
                let _ = self.cx.check_ssh(std::slice::from_ref(&now));
                now
            };
            self.run_play(play, hosts).await?;
        }
        // An interrupted run's caller still needs the connections to
        // clean up on the hosts; it closes them.
        if !crate::interrupt::interrupted() {
            self.cx.pool.close_all().await;
        }
        self.cx.emit_yaml_warnings();
        let recap = self.recap();
        self.cx.emit(Event::Recap(recap.clone()));
        Ok(Summary { recap })
    }

    /// Every host's counters, in inventory order.
    fn recap(&self) -> IndexMap<String, Counters> {
        self.recap_order
            .iter()
            .map(|&i| (self.hosts[i].name.clone(), self.hosts[i].counters.clone()))
            .collect()
    }

    /// The ids of `names`, adding hosts met for the first time.
    fn host_ids(&mut self, names: &[String]) -> Vec<HostId> {
        let mut added = false;
        let ids = names
            .iter()
            .map(|h| {
                if let Some(&id) = self.ids.get(h) {
                    return id;
                }
                added = true;
                let id = self.hosts.len();
                let mut st = self.cx.new_host(h);
                if let Some(f) = self
                    .cx
                    .outside_facts
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .shift_remove(h)
                {
                    st.set_facts_mut().extend(f);
                }
                self.hosts.push(st);
                self.ids.insert(h.clone(), id);
                id
            })
            .collect();
        if added {
            let inventory = &self.cx.inventory;
            let hosts = &self.hosts;
            self.recap_order = (0..hosts.len()).collect();
            self.recap_order.sort_by_key(|&i| {
                inventory
                    .hosts
                    .get_index_of(&hosts[i].name)
                    .unwrap_or(usize::MAX)
            });
        }
        ids
    }

    async fn run_play(&mut self, play: &Play, hosts: Vec<String>) -> Result<(), InputErrors> {
        self.cx.emit(Event::PlayStart {
            name: play.name.clone(),
        });
        let mut vars = self.cx.play_vars(play)?;
        // Ansible's names of the play's roles.
        let mut all_roles: Vec<String> = Vec::new();
        for r in play.role_names.iter().chain(&play.dependent_role_names) {
            if !all_roles.contains(r) {
                all_roles.push(r.clone());
            }
        }
        for (key, names) in [
            ("ansible_play_role_names", &play.role_names),
            ("role_names", &play.role_names),
            ("ansible_dependent_role_names", &play.dependent_role_names),
            ("ansible_role_names", &all_roles),
        ] {
            vars.insert(key.into(), serde_json::json!(names));
        }
        self.cx.emit_yaml_warnings();
        let mut hosts = hosts;
        order_hosts(&mut hosts, play.order);
        let ids = self.host_ids(&hosts);
        for &id in &ids {
            let s = &mut self.hosts[id];
            if s.standing == Standing::Ended {
                s.standing = Standing::Active;
            }
        }
        let live: Vec<HostId> = ids
            .into_iter()
            .filter(|&id| self.hosts[id].active())
            .collect();
        if live.is_empty() {
            self.cx.emit(Event::Warning(format!(
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
        let names: Vec<&str> = live.iter().map(|&i| self.hosts[i].name.as_str()).collect();
        let ctx = PlayCtx {
            play,
            vars: Arc::new(vars),
            hosts_value: crate::template::to_value(&names),
            hosts: live.clone(),
            role_defaults: Arc::new(role_defaults),
            roles: Default::default(),
        };
        for &host in &live {
            let st = &self.hosts[host];
            self.cx
                .learn_secrets(&self.cx.host_scope(&ctx, st, None, Vec::new()));
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
                self.end_play(&live);
                break;
            }
        }
        Ok(())
    }

    /// Take the active hosts of `hosts` out of this play.
    fn end_play(&mut self, hosts: &[HostId]) {
        for &h in hosts {
            let s = &mut self.hosts[h];
            if s.active() {
                s.standing = Standing::Ended;
            }
        }
    }

    fn count_failed(&self, batch: &[HostId]) -> usize {
        batch
            .iter()
            .filter(|&&h| {
                matches!(
                    self.hosts[h].standing,
                    Standing::Failed | Standing::Unreachable
                )
            })
            .count()
    }

    /// Has `max_fail_percentage` been exceeded in this batch?
    fn play_aborted(&self, ctx: &PlayCtx<'_>, batch: &[HostId], before: usize) -> bool {
        let failed = self.count_failed(batch).saturating_sub(before);
        match ctx.play.max_fail_percentage {
            Some(pct) if !batch.is_empty() => (failed as f64) * 100.0 / (batch.len() as f64) > pct,
            _ => false,
        }
    }

    async fn gather_facts(&mut self, ctx: &PlayCtx<'_>, batch: &[HostId]) {
        let active = self.active_of(batch);
        if active.is_empty() {
            return;
        }
        self.cx
            .start_task("Gathering Facts".into(), &self.names(&active), false);
        let cx = &self.cx;
        let futs = states_mut(&mut self.hosts, &active)
            .into_iter()
            .map(|st| async move {
                let _permit = cx.forks.acquire().await;
                cx.gather_on_host(ctx, st).await;
                cx.host_done(&st.name);
            });
        futures::future::join_all(futs).await;
        self.task_done();
    }

    /// Hand the facts tasks set with `delegate_facts` to the hosts they
    /// were delegated to.
    fn hand_over_delegated_facts(&mut self, hosts: &[HostId]) {
        let mut moved = Vec::new();
        for &h in hosts {
            moved.append(&mut self.hosts[h].delegated_facts);
        }
        if moved.is_empty() {
            return;
        }
        for (to, facts) in moved {
            match self.ids.get(&to) {
                Some(&id) => self.hosts[id].set_facts_mut().extend(facts),
                None => self
                    .cx
                    .outside_facts
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(to)
                    .or_default()
                    .extend(facts),
            }
        }
        self.refresh_hostvars();
    }

    fn names(&self, ids: &[HostId]) -> Vec<String> {
        ids.iter().map(|&i| self.hosts[i].name.clone()).collect()
    }

    /// Every host has finished a task: renew `hostvars` and the progress.
    fn task_done(&mut self) {
        self.refresh_hostvars();
        let recap = self.recap();
        *self.progress.lock().unwrap_or_else(|e| e.into_inner()) = recap;
    }

    /// The hosts still in the play; none once the run is interrupted, so
    /// that no task starts after it.
    fn active_of(&self, hosts: &[HostId]) -> Vec<HostId> {
        if crate::interrupt::interrupted() {
            return Vec::new();
        }
        hosts
            .iter()
            .copied()
            .filter(|&h| self.hosts[h].active())
            .collect()
    }

    /// Run a list of tasks on `hosts` (linear: each task on all hosts first).
    fn run_tasks<'s>(
        &'s mut self,
        ctx: &'s PlayCtx<'s>,
        tasks: &'s [Task],
        hosts: &'s [HostId],
        handler: bool,
    ) -> futures::future::BoxFuture<'s, ()> {
        Box::pin(async move {
            for (i, task) in tasks.iter().enumerate() {
                let later = if handler { &[][..] } else { &tasks[i + 1..] };
                let active = self.active_of(hosts);
                if active.is_empty() {
                    return;
                }
                if !handler && !self.may_run(task) {
                    continue;
                }
                match &task.action {
                    Action::Block {
                        block,
                        rescue,
                        always,
                    } => {
                        if task.include.is_some()
                            && (handler
                                || task.selected(&self.cx.opts.tags, &self.cx.opts.skip_tags))
                        {
                            let included: Vec<(HostId, bool)> = active
                                .iter()
                                .map(|&h| (h, self.when_holds(ctx, task, h)))
                                .collect();
                            self.report_include(task, &included, handler);
                        }
                        self.run_block(ctx, [block, rescue, always], &active, handler)
                            .await;
                    }
                    Action::Meta(meta) => {
                        // Tags never filter notified handlers, as in Ansible.
                        if handler || task.selected(&self.cx.opts.tags, &self.cx.opts.skip_tags) {
                            self.run_meta(ctx, task, meta, &active, handler).await;
                        }
                    }
                    Action::IncludeTasks { .. } => {
                        self.run_include(ctx, task, &active, handler).await;
                    }
                    Action::Module { .. } | Action::IncludeVars { .. } => {
                        if handler || task.selected(&self.cx.opts.tags, &self.cx.opts.skip_tags) {
                            self.run_task(ctx, task, later, &active, handler).await;
                        }
                    }
                }
            }
        })
    }

    /// `--start-at-task` and `--step`: may this task run? A block is
    /// entered: its tasks are asked about one by one.
    fn may_run(&mut self, task: &Task) -> bool {
        if matches!(task.action, Action::Block { .. }) {
            return true;
        }
        if !self.started {
            match &self.cx.opts.start_at_task {
                Some(name) if task.is_named(name) => self.started = true,
                _ => return false,
            }
        }
        match &self.cx.opts.step {
            Some(step) if task.selected(&self.cx.opts.tags, &self.cx.opts.skip_tags) => {
                (step.0)(&task.display_name())
            }
            _ => true,
        }
    }

    /// `block`, then `rescue` for the hosts that failed in it, then
    /// `always` for all of them.
    async fn run_block(
        &mut self,
        ctx: &PlayCtx<'_>,
        [block, rescue, always]: [&Vec<Task>; 3],
        active: &[HostId],
        handler: bool,
    ) {
        for &h in active {
            self.hosts[h].failed_in_block = false;
        }
        self.run_tasks(ctx, block, active, handler).await;
        let failed: Vec<HostId> = active
            .iter()
            .copied()
            .filter(|&h| {
                let s = &self.hosts[h];
                s.standing == Standing::Failed && s.failed_in_block
            })
            .collect();
        if !rescue.is_empty() && !failed.is_empty() {
            for &h in &failed {
                let s = &mut self.hosts[h];
                if let Some((task, result)) = s.last_failure.clone() {
                    let vars = s.set_facts_mut();
                    vars.insert("ansible_failed_task".into(), task);
                    vars.insert("ansible_failed_result".into(), result);
                }
                s.standing = Standing::Active;
                s.counters.failed = s.counters.failed.saturating_sub(1);
                s.counters.rescued += 1;
            }
            self.run_tasks(ctx, rescue, &failed, handler).await;
        }
        if !always.is_empty() {
            // `always` runs for hosts that failed in the block too.
            let still_failed: Vec<HostId> = active
                .iter()
                .copied()
                .filter(|&h| self.hosts[h].standing == Standing::Failed)
                .collect();
            for &h in &still_failed {
                self.hosts[h].standing = Standing::Active;
            }
            self.run_tasks(ctx, always, active, handler).await;
            for &h in &still_failed {
                let s = &mut self.hosts[h];
                if s.standing == Standing::Active {
                    s.standing = Standing::Failed;
                }
            }
        }
    }

    /// A `meta` action acts for the hosts whose `when` holds (end_play,
    /// clear_facts: for the whole play once one does); as in Ansible, the
    /// others are reported skipped and nothing is counted.
    async fn run_meta(
        &mut self,
        ctx: &PlayCtx<'_>,
        task: &Task,
        meta: &Meta,
        active: &[HostId],
        handler: bool,
    ) {
        let (holds, skipped): (Vec<HostId>, Vec<HostId>) = active
            .iter()
            .partition(|&&h| task.when.is_empty() || self.when_holds(ctx, task, h));
        if !skipped.is_empty() {
            self.cx
                .start_task(task.display_name(), &self.names(&skipped), handler);
            for &h in &skipped {
                let name = &self.hosts[h].name;
                self.cx.emit(host_event(
                    self.cx.task_id(),
                    name,
                    Status::Skipped,
                    None,
                    None,
                    None,
                ));
                self.cx.host_done(name);
            }
            self.task_done();
        }
        if holds.is_empty() {
            return;
        }
        match meta {
            Meta::FlushHandlers => self.run_handlers(ctx, &holds).await,
            Meta::EndPlay => self.end_play(&ctx.hosts),
            Meta::EndHost => {
                for &h in &holds {
                    self.hosts[h].standing = Standing::Ended;
                }
            }
            Meta::ClearFacts => {
                for &h in active {
                    self.hosts[h].set_gathered_facts(Map::new());
                }
            }
            Meta::Noop => {}
        }
    }

    fn when_holds(&self, ctx: &PlayCtx<'_>, task: &Task, host: HostId) -> bool {
        let scope = self
            .cx
            .host_scope(ctx, &self.hosts[host], Some(task), Vec::new());
        task.when
            .iter()
            .all(|c| self.cx.templar.truthy(c, &scope).unwrap_or(false))
    }

    /// Report an include as Ansible does: a task of its own, ok on each
    /// host that includes the file (counted once per file included, as
    /// Ansible's recap counts it) and skipped on the others.
    fn report_include(&mut self, task: &Task, included: &[(HostId, bool)], handler: bool) {
        let hosts: Vec<HostId> = included.iter().map(|&(h, _)| h).collect();
        self.cx
            .start_task(task.display_name(), &self.names(&hosts), handler);
        self.include_results(included);
    }

    /// Per-host results of the include task started last.
    fn include_results(&mut self, included: &[(HostId, bool)]) {
        for &(h, yes) in included {
            let st = &mut self.hosts[h];
            let status = if yes {
                st.counters.ok += 1;
                Status::Ok
            } else {
                st.counters.skipped += 1;
                Status::Skipped
            };
            self.cx.emit(host_event(
                self.cx.task_id(),
                &st.name,
                status,
                None,
                None,
                None,
            ));
        }
        for &(h, _) in included {
            self.cx.host_done(&self.hosts[h].name);
        }
        self.task_done();
    }

    async fn run_include(
        &mut self,
        ctx: &PlayCtx<'_>,
        task: &Task,
        hosts: &[HostId],
        handler: bool,
    ) {
        let Action::IncludeTasks { file, base, .. } = &task.action else {
            return;
        };
        self.cx
            .start_task(task.display_name(), &self.names(hosts), handler);
        // Each host may include a different file, once per loop item;
        // group hosts by the file and the loop's variables, in the order
        // they first appear (as Ansible's included files).
        type Group = (Vec<(String, Value)>, Vec<HostId>);
        let mut groups: IndexMap<(PathBuf, String), Group> = IndexMap::new();
        for &h in hosts {
            let scope = self
                .cx
                .host_scope(ctx, &self.hosts[h], Some(task), Vec::new());
            let item_vars: Vec<Vec<(String, Value)>> = match &task.loop_ {
                None => vec![Vec::new()],
                Some(lp) => match self.cx.loop_items(task, lp, &scope) {
                    Ok(items) => {
                        let lp = self.cx.named_loop(lp, &scope);
                        (0..items.len()).map(|i| lp.item_vars(&items, i)).collect()
                    }
                    Err(e) => {
                        // The loop's error counts only when `when` holds.
                        match self.cx.conditions_hold(task, &scope) {
                            Ok(false) => {}
                            Ok(true) => {
                                let msg = format!("{}: {e}", task.pos);
                                self.cx.fail_host(&mut self.hosts[h], msg);
                            }
                            Err(c) => self.cx.fail_host(&mut self.hosts[h], c.to_string()),
                        }
                        continue;
                    }
                },
            };
            for extra in item_vars {
                let scope = self
                    .cx
                    .host_scope(ctx, &self.hosts[h], Some(task), extra.clone());
                let file = match self.cx.conditions_hold(task, &scope) {
                    Ok(false) => continue,
                    Ok(true) => self
                        .cx
                        .templar
                        .render_string(file, &scope)
                        .map_err(|e| format!("{}: {e}", task.pos)),
                    Err(e) => Err(e.to_string()),
                };
                match file {
                    Ok(name) => {
                        let path = include_path(task, base, &name, &self.cx.playbook.dir);
                        let key = serde_json::to_string(&extra).unwrap_or_default();
                        groups
                            .entry((path, key))
                            .or_insert_with(|| (extra, Vec::new()))
                            .1
                            .push(h);
                    }
                    Err(msg) => {
                        self.cx.fail_host(&mut self.hosts[h], msg);
                    }
                }
            }
        }
        // Hosts that failed were reported above; the others include each
        // of their files (ok once per file) or nothing (skipped).
        let mut included: Vec<(HostId, bool)> = Vec::new();
        for &h in hosts {
            if !self.hosts[h].active() {
                continue;
            }
            let n = groups.values().filter(|(_, g)| g.contains(&h)).count();
            if n == 0 {
                included.push((h, false));
            }
            included.extend(std::iter::repeat_n((h, true), n));
        }
        self.include_results(&included);
        for ((path, _), (extra, group)) in groups {
            // The loop's variables reach every task of the file.
            let mut parent = task.clone();
            parent.vars.extend(extra);
            match crate::playbook::load_included(&path, &parent, &self.cx.playbook.dir) {
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
                    for &h in &group {
                        self.cx.fail_host(&mut self.hosts[h], e.to_string());
                    }
                }
            }
        }
    }

    async fn run_handlers(&mut self, ctx: &PlayCtx<'_>, hosts: &[HostId]) {
        // Every handler named by a notification, or listening to its topic,
        // runs: a topic is consumed only once all its listeners have run.
        let mut consumed: Vec<(HostId, String)> = Vec::new();
        for handler in &ctx.play.handlers {
            let names = handler_names(handler);
            let notified: Vec<HostId> = self
                .active_of(hosts)
                .into_iter()
                .filter(|&h| self.hosts[h].notified.iter().any(|n| names.contains(n)))
                .collect();
            if notified.is_empty() {
                continue;
            }
            for &h in &notified {
                for n in &self.hosts[h].notified {
                    if names.contains(n) {
                        consumed.push((h, n.clone()));
                    }
                }
            }
            self.run_tasks(ctx, std::slice::from_ref(handler), &notified, true)
                .await;
        }
        for (h, n) in consumed {
            self.hosts[h].notified.retain(|x| *x != n);
        }
        // A notification no handler answers is an error, as in Ansible
        // (unless handlers are included at run time: their names are not
        // known).
        let dynamic = ctx
            .play
            .handlers
            .iter()
            .any(|t| matches!(t.action, Action::IncludeTasks { .. }));
        if dynamic {
            return;
        }
        let known: Vec<String> = ctx.play.handlers.iter().flat_map(handler_names).collect();
        for &h in &self.active_of(hosts) {
            let missing: Vec<String> = self.hosts[h]
                .notified
                .iter()
                .filter(|n| !known.contains(n))
                .cloned()
                .collect();
            if let Some(n) = missing.first() {
                self.hosts[h].notified.retain(|x| known.contains(x));
                let msg = crate::playbook::missing_handler_msg(n);
                self.cx.fail_host(&mut self.hosts[h], msg);
            }
        }
    }

    /// Rebuild `hostvars`: each host's inventory variables, facts and
    /// registered values.
    fn refresh_hostvars(&mut self) {
        self.cx.layers = self
            .hosts
            .iter()
            .map(|s| (s.name.clone(), s.vars.clone()))
            .collect();
        self.cx.hostvars = self.cx.build_hostvars();
    }
}

impl RunCtx<'_> {
    fn emit(&self, event: Event) {
        self.events.send(event);
    }

    /// Announce a task on `hosts`; results from now on belong to it.
    fn start_task(&self, name: String, hosts: &[String], handler: bool) {
        use std::sync::atomic::Ordering;
        let task_id = self.task_id.fetch_add(1, Ordering::Relaxed) + 1;
        self.emit(Event::TaskStart {
            task_id,
            name,
            hosts: hosts.to_vec(),
            handler,
        });
    }

    /// The task whose results are being reported.
    fn task_id(&self) -> TaskId {
        self.task_id.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// `host` is done with the running task (the live view stops waiting).
    fn host_done(&self, host: &str) {
        self.emit(Event::HostDone {
            task_id: self.task_id(),
            host: host.to_string(),
        });
    }

    /// Report what YAML reads warned about (duplicate keys in a vars file or
    /// an `include_vars` file read during the run).
    fn emit_yaml_warnings(&self) {
        for w in crate::yaml::take_warnings() {
            self.emit(Event::Warning(w));
        }
    }

    /// The magic variables that name a host: `inventory_hostname`, its
    /// short form and `group_names`.
    fn host_names(&self, name: &str) -> Map {
        let mut names = Map::new();
        names.insert("inventory_hostname".into(), Value::from(name));
        names.insert(
            "inventory_hostname_short".into(),
            Value::from(name.split('.').next().unwrap_or_default()),
        );
        names.insert(
            "group_names".into(),
            serde_json::json!(self.inventory.group_names(name)),
        );
        names
    }

    /// A host's state when a play first targets it.
    fn new_host(&self, name: &str) -> HostState {
        let inventory = self
            .inventory
            .get(name)
            .map(|c| c.into_owned())
            .unwrap_or_default();
        let mut names = self.host_names(name);
        names.insert(
            "playbook_dir".into(),
            Value::from(self.playbook.dir.display().to_string()),
        );
        names.insert("ansible_check_mode".into(), Value::Bool(self.opts.check));
        names.insert("ansible_diff_mode".into(), Value::Bool(self.opts.diff));
        let run_tags = if self.opts.tags.is_empty() {
            vec!["all".to_string()]
        } else {
            self.opts.tags.clone()
        };
        names.insert("ansible_run_tags".into(), serde_json::json!(run_tags));
        names.insert(
            "ansible_skip_tags".into(),
            serde_json::json!(self.opts.skip_tags),
        );
        names.insert("omit".into(), Value::from(self.omit.clone()));
        HostState {
            name: name.to_string(),
            facts: Map::new(),
            vars: HostLayers {
                inventory: Arc::new(inventory.vars),
                facts: Arc::new(facts::as_vars(&Map::new())),
                set_facts: Arc::default(),
                names: Arc::new(names),
            },
            notified: Vec::new(),
            standing: Standing::Active,
            counters: Counters::default(),
            failed_in_block: false,
            read_ahead: readahead::MAX_WINDOW / 2,
            ride: None,
            delegated_facts: Vec::new(),
            last_failure: None,
        }
    }

    fn play_vars(&self, play: &Play) -> Result<Map, InputErrors> {
        let mut vars = play.vars.clone();
        for (file, pos) in &play.vars_files {
            let scope = self.templar.layered(
                vec![Arc::new(vars.clone()), self.extra_vars.clone()],
                Vec::new(),
            );
            let name = self.templar.render_string(file, &scope).map_err(|e| {
                InputErrors::from(crate::error::InputError::new(pos.clone(), e.to_string()))
            })?;
            let path = play.dir.join(&name);
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

    async fn gather_on_host(&self, ctx: &PlayCtx<'_>, st: &mut HostState) {
        let play = ctx.play;
        let scope = self.host_scope(ctx, st, None, Vec::new());
        let conn = match self.conn_keywords(&play.keywords, &scope) {
            Ok(c) => self.connection_with(&st.name, &scope, &c).await,
            Err(e) => {
                self.fail_host(st, e.to_string());
                return;
            }
        };
        // The gathering is a task of the play: its `ignore_unreachable`
        // applies.
        let lost = |st: &mut HostState, msg: String| {
            if play.keywords.ignore_unreachable.unwrap_or(false) {
                self.unreachable_ignored(st, None, &msg);
            } else {
                self.unreachable(st, None, msg);
            }
        };
        // Facts are gathered as the play's become user, as in Ansible.
        let become_ = match self.become_with(&play.keywords, &scope) {
            Ok(b) => b,
            Err(e) => {
                self.fail_host(st, e.to_string());
                return;
            }
        };
        let remote = match conn {
            Ok(t) => crate::transport::Remote::new(t, become_),
            Err(e) => {
                lost(st, e.to_string());
                return;
            }
        };
        let gathered = facts::gather(&remote, play.gather_subset);
        let gathered = match play.gather_timeout {
            Some(secs) => tokio::time::timeout(Duration::from_secs(secs), gathered)
                .await
                .unwrap_or_else(|_| Err(facts::timed_out(secs))),
            None => gathered.await,
        };
        match gathered {
            Ok(f) => {
                st.set_gathered_facts(f);
                st.counters.ok += 1;
                self.emit(host_event(
                    self.task_id(),
                    &st.name,
                    Status::Ok,
                    None,
                    None,
                    None,
                ));
            }
            Err(e) if e.is_unreachable() => lost(st, e.to_string()),
            Err(e) => self.fail_host(st, e.to_string()),
        }
    }

    /// Mask the passwords a host's variables resolve to (templated ones
    /// too, e.g. from a vault variable) in all output from now on.
    fn learn_secrets(&self, scope: &Scope) {
        for key in crate::secret::SECRET_VARS {
            if let Some(v) = scope.var(key) {
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
        self.scope_of(ctx, &st.vars, task, extra)
    }

    /// The variables `task` sees on a host with layers `host`, lowest
    /// precedence first. Only the task's and the loop's own variables are
    /// copied; every other layer is shared.
    fn scope_of(
        &self,
        ctx: &PlayCtx<'_>,
        host: &HostLayers,
        task: Option<&Task>,
        extra: Vec<(String, Value)>,
    ) -> Scope {
        let role = task
            .and_then(|t| t.role.as_ref())
            .map(|r| ctx.role_layers(r));
        let mut layers = Vec::with_capacity(12);
        layers.push(self.base.clone());
        layers.push(ctx.role_defaults.clone());
        if let Some((defaults, _)) = &role {
            layers.push(defaults.clone());
        }
        layers.push(host.inventory.clone());
        layers.push(host.facts.clone());
        layers.push(ctx.vars.clone());
        if let Some((_, vars)) = &role {
            layers.push(vars.clone());
        }
        if let Some(task) = task.filter(|t| !t.vars.is_empty()) {
            layers.push(Arc::new(task.vars.clone()));
        }
        layers.push(host.set_facts.clone());
        layers.push(self.extra_vars.clone());
        if !extra.is_empty() {
            layers.push(Arc::new(extra.into_iter().collect()));
        }
        layers.push(host.names.clone());
        // Shared values, not copied into every host's variables: with
        // hundreds of hosts a list of them per host and task was most of
        // the client's work.
        let mut magic = vec![
            ("groups".to_string(), self.groups.clone()),
            ("hostvars".to_string(), self.hostvars.clone()),
            ("ansible_play_hosts".to_string(), ctx.hosts_value.clone()),
            (
                "ansible_play_hosts_all".to_string(),
                ctx.hosts_value.clone(),
            ),
            ("play_hosts".to_string(), ctx.hosts_value.clone()),
            ("ansible_play_batch".to_string(), ctx.hosts_value.clone()),
        ];
        if let Some(t) = task {
            magic.push((
                "ansible_search_path".to_string(),
                crate::template::SearchPath::value(t.search.clone()),
            ));
        }
        self.templar.layered(layers, magic)
    }

    /// A host's own variables without a play: inventory, facts, registered
    /// values and its names (for connecting).
    fn host_layers_scope(
        &self,
        host: &HostLayers,
        magic: Vec<(String, minijinja::Value)>,
    ) -> Scope {
        self.templar.layered(
            vec![
                host.inventory.clone(),
                host.facts.clone(),
                host.set_facts.clone(),
                host.names.clone(),
            ],
            magic,
        )
    }

    fn build_hostvars(&self) -> minijinja::Value {
        let hosts = self
            .inventory
            .hosts
            .iter()
            .map(|(name, h)| {
                let scope = match self.layers.get(name) {
                    Some(layers) => self.host_layers_scope(layers, Vec::new()),
                    None => {
                        let mut vars = h.vars.clone();
                        if let Some(f) = self
                            .outside_facts
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .get(name)
                        {
                            vars.extend(f.clone());
                        }
                        // A host no play has targeted yet (one `add_host`
                        // made) has the per-host magic variables too.
                        let names = self.host_names(name);
                        self.templar
                            .layered(vec![Arc::new(vars), Arc::new(names)], Vec::new())
                    }
                };
                (name.clone(), scope)
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
        self.connection_with(host, scope, &connect::ConnKeywords::default())
            .await
    }

    /// The connection to `host` for a task with its own `remote_user`,
    /// `port` or `connection`: one connection per distinct setting.
    async fn connection_with(
        &self,
        host: &str,
        scope: &Scope,
        keywords: &connect::ConnKeywords,
    ) -> Result<Arc<dyn crate::transport::Transport>, connect::ConnectError> {
        self.pool
            .get(&keywords.key(host), || {
                connect::target_for(
                    host,
                    &self.inventory,
                    &self.templar,
                    scope,
                    self.opts,
                    keywords,
                    self.pool.ssh_configs(),
                )
            })
            .await
    }

    /// A play's or task's `remote_user`, `port` and `connection`, rendered.
    fn conn_keywords(
        &self,
        keywords: &crate::playbook::Keywords,
        scope: &Scope,
    ) -> Result<connect::ConnKeywords, task::KeywordError> {
        use task::{int_keyword, str_keyword, KeywordError};
        let user = match &keywords.remote_user {
            Some(u) => Some(str_keyword(&self.templar, scope, "remote_user", u)?),
            None => None,
        };
        let port = match &keywords.port {
            Some(p) => {
                let n = int_keyword(&self.templar, scope, "port", p)?;
                Some(u16::try_from(n).map_err(|_| KeywordError::Port(n))?)
            }
            None => None,
        };
        let local = match &keywords.connection {
            Some(c) => match str_keyword(&self.templar, scope, "connection", c)?.as_str() {
                "local" => Some(true),
                "ssh" | "smart" => Some(false),
                other => return Err(KeywordError::Connection(other.to_string())),
            },
            None => None,
        };
        Ok(connect::ConnKeywords { user, port, local })
    }

    fn unreachable(&self, st: &mut HostState, delegated: Option<String>, msg: String) {
        st.standing = Standing::Unreachable;
        st.counters.unreachable = 1;
        self.pool.forget(&st.name);
        let mut ev = host_event(
            self.task_id(),
            &st.name,
            Status::Unreachable,
            Some(msg),
            None,
            None,
        );
        if let Event::HostResult { delegated: d, .. } = &mut ev {
            *d = delegated;
        }
        self.emit(ev);
    }

    /// Mark a host failed by something outside a module (a bad include).
    fn fail_host(&self, st: &mut HostState, msg: String) {
        st.standing = Standing::Failed;
        st.failed_in_block = true;
        st.counters.failed += 1;
        self.emit(host_event(
            self.task_id(),
            &st.name,
            Status::Failed,
            Some(msg),
            None,
            None,
        ));
    }
}

/// The names a handler answers to: its name (also as `role : name`) and
/// the topics it listens to.
fn handler_names(handler: &Task) -> Vec<String> {
    let mut names: Vec<String> = handler.listen.clone();
    if let Some(name) = &handler.name {
        names.push(name.clone());
        if let Some(role) = &handler.role {
            names.push(format!("{} : {name}", role.name));
        }
    }
    names
}

/// Where an `include_tasks` file is, as Ansible looks for it: in the
/// role's `tasks/`, next to the including file, then in the playbook's
/// directory. A name found nowhere stays next to the including file, so
/// that the error names the place Ansible would name.
fn include_path(task: &Task, base: &Path, name: &str, playbook_dir: &Path) -> PathBuf {
    let candidates = task
        .role
        .iter()
        .map(|r| r.dir.join("tasks").join(name))
        .chain([base.join(name), playbook_dir.join(name)]);
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| base.join(name))
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
    task_id: TaskId,
    host: &str,
    status: Status,
    msg: Option<String>,
    result: Option<Value>,
    item: Option<String>,
) -> Event {
    Event::HostResult {
        task_id,
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

/// Put a play's hosts in the order its `order` keyword asks for.
fn order_hosts(hosts: &mut [String], order: crate::playbook::HostOrder) {
    use crate::playbook::HostOrder;
    match order {
        HostOrder::Inventory => {}
        HostOrder::ReverseInventory => hosts.reverse(),
        HostOrder::Sorted => hosts.sort(),
        HostOrder::ReverseSorted => {
            hosts.sort();
            hosts.reverse();
        }
        HostOrder::Shuffle => {
            use rand::seq::SliceRandom;
            hosts.shuffle(&mut rand::rng());
        }
    }
}

/// Split hosts into `serial` batches (the last size repeats).
fn batches<T: Clone>(hosts: &[T], serial: &[Serial]) -> Vec<Vec<T>> {
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

    #[test]
    fn order_keyword_orders_the_play_hosts() {
        use crate::playbook::HostOrder;
        let hosts = |o| {
            let mut h: Vec<String> = ["b", "c", "a"].map(String::from).to_vec();
            order_hosts(&mut h, o);
            h.join("")
        };
        assert_eq!(hosts(HostOrder::Inventory), "bca");
        assert_eq!(hosts(HostOrder::ReverseInventory), "acb");
        assert_eq!(hosts(HostOrder::Sorted), "abc");
        assert_eq!(hosts(HostOrder::ReverseSorted), "cba");
        let mut shuffled: Vec<char> = hosts(HostOrder::Shuffle).chars().collect();
        shuffled.sort_unstable();
        assert_eq!(shuffled, ['a', 'b', 'c']);
    }
}
