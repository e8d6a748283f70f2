//! Read-ahead and the per-host cache of observed reads.
//!
//! Modules declare their reads (`modules::reads`). Before a task runs on a
//! host whose answers to the task's reads are not known yet, the engine
//! gathers the reads of a window of upcoming tasks (arguments templated per
//! loop item, `when` true, tags selected) and runs them in one exec, with
//! the file reads' stats left for one `stat` at the end
//! ([`DeferredReads`]). Their outputs are kept per host ([`Observations`])
//! and answer every task that declares the same read (same script, same
//! become user) until a write makes them stale: a module's change forgets
//! the reads overlapping the paths it touched, an imperative task (command,
//! reboot) forgets everything. So a converged run reads each host in a few
//! round trips, and a first run batches its reads too.
//!
//! The window adapts: it shrinks when reads were forgotten unused (a run
//! that changes a lot), and grows back when they were used.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::task::{strip_omit, TaskRender};
use super::{HostState, PlayCtx, RunCtx};
use crate::modules::fs_deferred::DeferredReads;
use crate::modules::reads::{Observer, Protocol, ReadSet, Scope, Touched};
use crate::modules::{ModuleError, ReadCtx};
use crate::playbook::{Action, Task};
use crate::transport::{ExecOutput, Remote, Trailer};
use crate::{Map, Value};

/// Most tasks read ahead at once.
pub(super) const MAX_WINDOW: usize = 64;

/// One kept read.
struct Entry {
    out: ExecOutput,
    scope: Scope,
    used: bool,
}

/// The reads kept for one host.
#[derive(Default)]
struct HostCache {
    entries: HashMap<String, Entry>,
    /// Entries forgotten unused since the last read-ahead.
    wasted: usize,
}

/// Reads observed on each host (by inventory name), kept until a write
/// makes them stale.
#[derive(Default)]
pub(super) struct Observations {
    hosts: Mutex<HashMap<String, HostCache>>,
}

impl Observations {
    fn with<T>(&self, host: &str, f: impl FnOnce(&mut HostCache) -> T) -> T {
        // A panic while holding the lock leaves a map that is still valid.
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        f(hosts.entry(host.to_string()).or_default())
    }

    fn get(&self, host: &str, key: &str) -> Option<ExecOutput> {
        self.with(host, |c| {
            c.entries.get_mut(key).map(|e| {
                e.used = true;
                e.out.clone()
            })
        })
    }

    fn has(&self, host: &str, key: &str) -> bool {
        self.with(host, |c| c.entries.contains_key(key))
    }

    fn insert(&self, host: &str, key: String, out: ExecOutput, scope: Scope, used: bool) {
        let scope = scope.settle(&out);
        self.with(host, |c| {
            c.entries.insert(key, Entry { out, scope, used });
        });
    }

    /// Forget what a write that touched `touched` on `host` may have made
    /// stale.
    pub(super) fn forget(&self, host: &str, touched: &Touched) {
        self.with(host, |c| {
            let before = c.entries.len();
            let mut unused = 0;
            c.entries.retain(|_, e| {
                let stale = e.scope.stale_after(touched);
                unused += usize::from(stale && !e.used);
                !stale
            });
            if c.entries.len() != before {
                tracing::debug!(
                    host,
                    forgotten = before - c.entries.len(),
                    "reads forgotten"
                );
            }
            c.wasted += unused;
        });
    }

    fn take_wasted(&self, host: &str) -> usize {
        self.with(host, |c| std::mem::take(&mut c.wasted))
    }
}

/// Answers one task's reads on one host from [`Observations`], reading the
/// host for what is not kept.
pub(super) struct HostObserver<'r> {
    pub(super) observations: &'r Observations,
    /// The host the task's commands run on (the delegate, if any).
    pub(super) host: String,
}

#[async_trait]
impl Observer for HostObserver<'_> {
    async fn observe(
        &self,
        remote: &Remote,
        reads: &ReadSet,
    ) -> Result<Vec<ExecOutput>, ModuleError> {
        let keys: Vec<String> = reads
            .reads
            .iter()
            .map(|r| remote.read_key(&r.script))
            .collect();
        let mut outs: Vec<Option<ExecOutput>> = keys
            .iter()
            .map(|k| self.observations.get(&self.host, k))
            .collect();
        let missing: Vec<usize> = (0..outs.len()).filter(|i| outs[*i].is_none()).collect();
        if missing.len() > 1 {
            let scripts: Vec<String> = missing
                .iter()
                .map(|i| reads.reads[*i].script.clone())
                .collect();
            let found = remote.exec_batch(&scripts, Some(&DeferredReads)).await?;
            for (i, o) in missing.iter().zip(found) {
                outs[*i] = o;
            }
        }
        let mut answered = Vec::with_capacity(outs.len());
        for (i, out) in outs.into_iter().enumerate() {
            let out = match out {
                Some(o) => o,
                None => crate::modules::fs::exec_read(remote, &reads.reads[i].script).await?,
            };
            if missing.contains(&i) {
                self.observations.insert(
                    &self.host,
                    keys[i].clone(),
                    out.clone(),
                    reads.reads[i].scope.clone(),
                    true,
                );
            }
            answered.push(out);
        }
        Ok(answered)
    }

    fn wrote(&self, _remote: &Remote, touched: &Touched) {
        self.observations.forget(&self.host, touched);
    }
}

/// The reads of one task on one host, grouped by who runs them.
struct TaskReads {
    remote: Remote,
    reads: ReadSet,
}

/// Reads run together as one user: scripts, and their keys and scopes.
type Batch = (Remote, Vec<String>, Vec<(String, Scope)>);

/// What reading ahead found out about a task.
enum Ahead {
    /// Its reads (none when it is skipped or reaches no host).
    Reads(Vec<TaskReads>),
    /// It runs an imperative module once, through this handle: what
    /// follows it can only be read after it, but its command can carry
    /// those reads (see [`Ride`]).
    Imperative(Remote),
    /// It cannot be read ahead, and what follows it would be forgotten.
    Stop,
}

/// The reads of the tasks after an imperative one, riding on its command
/// (see [`crate::transport::Trailer`]): kept once the task is done, if its
/// command was its last.
pub(super) struct Ride {
    trailer: Arc<Trailer>,
    keys: Vec<(String, Scope)>,
}

impl Ride {
    /// What the task's handle sends with its command.
    pub(super) fn trailer(&self) -> Arc<Trailer> {
        self.trailer.clone()
    }
}

impl RunCtx<'_> {
    /// Read ahead for `task` and the tasks in `later` on `st`, unless the
    /// current task's reads are all known already.
    pub(super) async fn read_ahead(
        &self,
        ctx: &PlayCtx<'_>,
        task: &Task,
        later: &[Task],
        st: &mut HostState,
    ) {
        if self.opts.no_read_ahead {
            return;
        }
        let first = match self.task_reads(ctx, task, st).await {
            Ahead::Reads(first) => first,
            Ahead::Imperative(remote) => {
                st.ride = self.ride(ctx, later, st, &remote).await;
                return;
            }
            Ahead::Stop => return,
        };
        let host = st.name.clone();
        let known = |t: &TaskReads| {
            t.reads
                .reads
                .iter()
                .all(|r| self.observations.has(&host, &t.remote.read_key(&r.script)))
        };
        if first.iter().all(known) {
            return;
        }
        let gathered = self.window(ctx, first, later, st).await;
        for (remote, scripts, keys) in self.batches(&host, gathered) {
            if scripts.len() < 2 {
                continue;
            }
            match remote.exec_batch(&scripts, Some(&DeferredReads)).await {
                Ok(found) => self.keep(&host, keys, found),
                Err(e) => tracing::debug!(host = %host, error = %e, "read-ahead failed"),
            }
        }
    }

    /// The reads of the tasks after the imperative one about to run on
    /// `st` through `remote`, to ride on its command: those run as the same
    /// user (they share its shell).
    async fn ride(
        &self,
        ctx: &PlayCtx<'_>,
        later: &[Task],
        st: &mut HostState,
        remote: &Remote,
    ) -> Option<Ride> {
        let user = |r: &Remote| r.become_settings().map(|b| b.user.clone());
        let gathered = self.window(ctx, Vec::new(), later, st).await;
        let (reads, scripts, keys) = self
            .batches(&st.name, gathered)
            .into_iter()
            .find(|(r, scripts, _)| user(r) == user(remote) && !scripts.is_empty())?;
        Some(Ride {
            trailer: Arc::new(reads.trailer(&scripts, Some(&DeferredReads))),
            keys,
        })
    }

    /// Keep what a task's command carried back (see [`Ride`]): read after
    /// it, so after it forgot what it made stale.
    pub(super) fn keep_ride(&self, st: &mut HostState) {
        let Some(ride) = st.ride.take() else {
            return;
        };
        if let Some(found) = ride.trailer.outputs() {
            self.keep(&st.name, ride.keys, found);
        }
    }

    /// Keep the outputs `found` of a batch of reads under their keys.
    fn keep(&self, host: &str, keys: Vec<(String, Scope)>, found: Vec<Option<ExecOutput>>) {
        for ((key, scope), out) in keys.into_iter().zip(found) {
            if let Some(out) = out {
                self.observations.insert(host, key, out, scope, false);
            }
        }
    }

    /// `first`, then the reads of the tasks in `later` and in the plays
    /// after this one, as far as the window of `st` goes.
    async fn window(
        &self,
        ctx: &PlayCtx<'_>,
        first: Vec<TaskReads>,
        later: &[Task],
        st: &mut HostState,
    ) -> Vec<TaskReads> {
        // Grow the window after a read-ahead that was used in full, shrink
        // it after one whose reads a change made worthless.
        st.read_ahead = if self.observations.take_wasted(&st.name) > 0 {
            (st.read_ahead / 4).max(1)
        } else {
            (st.read_ahead * 2).min(MAX_WINDOW)
        };
        let mut gathered = first;
        let mut taken = 1;
        // The rest of this task list, then the tasks of the plays after
        // this one that target the host: a play boundary need not end the
        // window (any write in between forgets what it makes stale).
        if self.gather(ctx, later, st, &mut gathered, &mut taken).await {
            let at = self
                .playbook
                .plays
                .iter()
                .position(|p| std::ptr::eq(p, ctx.play));
            let next = at.map_or(&[][..], |i| &self.playbook.plays[i + 1..]);
            for play in next {
                // Facts change what the tasks see: their reads are not
                // known before the facts are.
                if play.gather_facts || taken >= st.read_ahead {
                    break;
                }
                let Ok(hosts) = self
                    .inventory
                    .select_limited(&play.hosts, self.opts.limit.as_deref())
                else {
                    break;
                };
                if !hosts.contains(&st.name) {
                    continue;
                }
                let Ok(vars) = self.play_vars(play) else {
                    break;
                };
                let mut role_defaults = Map::new();
                let mut seen = Vec::new();
                for section in [&play.pre_tasks, &play.tasks, &play.post_tasks] {
                    super::collect_role_defaults(section, &mut seen, &mut role_defaults);
                }
                let next_ctx = PlayCtx {
                    play,
                    vars: std::sync::Arc::new(vars),
                    hosts_value: crate::template::to_value(&hosts),
                    // Only names are seen by templates; ids are for
                    // ending the play, which reading ahead never does.
                    hosts: Vec::new(),
                    role_defaults: std::sync::Arc::new(role_defaults),
                    roles: Default::default(),
                };
                let mut go_on = true;
                for section in [&play.pre_tasks, &play.tasks, &play.post_tasks] {
                    go_on = self
                        .gather(&next_ctx, section, st, &mut gathered, &mut taken)
                        .await;
                    if !go_on {
                        break;
                    }
                }
                if !go_on {
                    break;
                }
            }
        }
        gathered
    }

    /// The reads of `gathered` not known on `host` yet, one batch per
    /// become user and environment.
    fn batches(&self, host: &str, gathered: Vec<TaskReads>) -> Vec<Batch> {
        // One batch per become user and environment: the key of an empty
        // read says both.
        let mut groups: Vec<Batch> = Vec::new();
        for t in gathered {
            let who = t.remote.read_key("");
            let at = match groups.iter().position(|(r, _, _)| r.read_key("") == who) {
                Some(at) => at,
                None => {
                    groups.push((t.remote.clone(), Vec::new(), Vec::new()));
                    groups.len() - 1
                }
            };
            let (_, scripts, keys) = &mut groups[at];
            for r in t.reads.reads {
                let key = t.remote.read_key(&r.script);
                if self.observations.has(host, &key) || keys.iter().any(|(k, _)| *k == key) {
                    continue;
                }
                scripts.push(r.script);
                keys.push((key, r.scope));
            }
        }
        groups
    }

    /// Add the reads of `tasks` on `st` to `gathered`, up to the window;
    /// `false` when the window ends here.
    async fn gather(
        &self,
        ctx: &PlayCtx<'_>,
        tasks: &[Task],
        st: &HostState,
        gathered: &mut Vec<TaskReads>,
        taken: &mut usize,
    ) -> bool {
        for t in tasks {
            if *taken >= st.read_ahead {
                return false;
            }
            match self.task_reads(ctx, t, st).await {
                Ahead::Stop | Ahead::Imperative(_) => return false,
                Ahead::Reads(r) if r.is_empty() => {}
                Ahead::Reads(r) => {
                    *taken += 1;
                    gathered.extend(r);
                }
            }
        }
        true
    }

    /// The reads `task` will declare on `st` (one set per loop item).
    async fn task_reads(&self, ctx: &PlayCtx<'_>, task: &Task, st: &HostState) -> Ahead {
        let Action::Module { module, args } = &task.action else {
            return match task.action {
                Action::IncludeVars { .. } | Action::Meta(_) => Ahead::Reads(Vec::new()),
                _ => Ahead::Stop,
            };
        };
        let resolved;
        let task = if task.keywords.templated.is_empty() {
            task
        } else {
            let scope = self.host_scope(ctx, st, Some(task), Vec::new());
            match self.resolve_keywords(task, &scope) {
                Ok(t) => {
                    resolved = t.into_owned();
                    &resolved
                }
                Err(_) => return Ahead::Stop,
            }
        };
        if task.keywords.own_connection() {
            // Its own login (remote_user, port, connection): reads made
            // over the host's usual connection may not be what it sees.
            return Ahead::Stop;
        }
        if !task.selected(&self.opts.tags, &self.opts.skip_tags)
            || runs_a_command_here(task)
            || task.keywords.delegate_to.is_some()
            || task.keywords.no_log.unwrap_or(false)
        {
            return Ahead::Reads(Vec::new());
        }
        let scope = self.host_scope(ctx, st, Some(task), Vec::new());
        let scopes = match &task.loop_ {
            None => vec![scope],
            Some(lp) => {
                let Ok(items) = self.loop_items(task, lp, &scope) else {
                    return Ahead::Stop;
                };
                items
                    .into_iter()
                    .enumerate()
                    .map(|(index, item)| {
                        let mut extra = vec![(lp.loop_var.clone(), item)];
                        if let Some(iv) = &lp.index_var {
                            extra.push((iv.clone(), Value::from(index)));
                        }
                        extra.push(("ansible_loop_var".into(), Value::from(lp.loop_var.clone())));
                        self.host_scope(ctx, st, Some(task), extra)
                    })
                    .collect()
            }
        };
        let mut out = Vec::new();
        for scope in &scopes {
            match self.conditions_hold(task, scope) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(_) => return Ahead::Stop,
            }
            let Ok(mut args) = self.templar.render_value(args, scope) else {
                return Ahead::Stop;
            };
            strip_omit(&mut args, &self.omit);
            let (Ok(become_), Ok(env)) = (self.become_for(task, scope), self.task_env(task, scope))
            else {
                return Ahead::Stop;
            };
            let render = TaskRender {
                templar: &self.templar,
                scope,
            };
            let rctx = ReadCtx {
                host: &st.name,
                check: task.keywords.check_mode.unwrap_or(self.opts.check),
                diff: task.keywords.diff.unwrap_or(self.opts.diff),
                render: &render,
                search: &task.search,
            };
            match (module.reads)(args, &rctx) {
                Protocol::Declared(reads) => {
                    let Ok(transport) = self.connection(&st.name, scope).await else {
                        return Ahead::Stop;
                    };
                    out.push(TaskReads {
                        remote: Remote::new(transport, become_).with_env(env),
                        reads,
                    });
                }
                Protocol::Local => {}
                Protocol::Imperative if task.loop_.is_none() && task.until.is_none() => {
                    let Ok(transport) = self.connection(&st.name, scope).await else {
                        return Ahead::Stop;
                    };
                    return Ahead::Imperative(Remote::new(transport, become_).with_env(env));
                }
                Protocol::Imperative => return Ahead::Stop,
            }
        }
        Ahead::Reads(out)
    }
}

/// Does rendering `task` run a command on the control machine (a `pipe`
/// or `lines` lookup, or a `with_pipe`/`with_lines` loop)? Reading ahead
/// would run it twice.
fn runs_a_command_here(task: &Task) -> bool {
    fn has_pipe(v: &Value) -> bool {
        match v {
            Value::String(s) => s.contains("pipe") || s.contains("lines"),
            Value::Array(a) => a.iter().any(has_pipe),
            Value::Object(m) => m.values().any(has_pipe),
            _ => false,
        }
    }
    let looped = task.loop_.as_ref().is_some_and(|lp| {
        matches!(lp.lookup.as_deref(), Some("pipe" | "lines")) || has_pipe(&lp.items)
    });
    looped || matches!(&task.action, Action::Module { args, .. } if has_pipe(args))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(s: &str) -> ExecOutput {
        ExecOutput {
            status: 0,
            stdout: s.as_bytes().to_vec(),
            stderr: Vec::new(),
        }
    }

    #[test]
    fn a_write_forgets_only_the_reads_it_may_have_made_stale() {
        let o = Observations::default();
        let paths = |p: &[&str]| Scope::Paths(p.iter().map(|s| (*s).into()).collect());
        o.insert(
            "h",
            "conf".into(),
            out("1"),
            paths(&["/opt/app/conf"]),
            true,
        );
        o.insert(
            "h",
            "log".into(),
            out("2"),
            paths(&["/opt/app/log/x"]),
            false,
        );
        o.insert("h", "user".into(), out("3"), Scope::Host, false);
        o.insert(
            "other",
            "conf".into(),
            out("4"),
            paths(&["/opt/app/conf"]),
            false,
        );
        o.forget("h", &Touched::Paths(vec!["/opt/app/conf".into()]));
        assert!(!o.has("h", "conf"), "the path written");
        assert!(o.has("h", "log"), "another path");
        assert!(!o.has("h", "user"), "not a path: any write");
        assert!(o.has("other", "conf"), "another host");
        assert_eq!(o.take_wasted("h"), 1, "the getent read was never used");
        o.forget("h", &Touched::Nothing);
        assert!(o.has("h", "log"));
        o.forget("h", &Touched::Paths(vec!["/opt".into()]));
        assert!(!o.has("h", "log"), "a parent directory");
        assert_eq!(
            o.get("other", "conf").map(|o| o.stdout),
            Some(b"4".to_vec())
        );
        o.forget("other", &Touched::Everything);
        assert!(!o.has("other", "conf"));
        assert_eq!(o.take_wasted("other"), 0, "it was used");
    }
}
