//! Read-ahead: before a task runs on a host, the first reads of it and of
//! the tasks after it are recorded (each module plans against a recording
//! handle) and run together in one exec; the outputs wait in the
//! connection's cache until each task asks for exactly that read (see
//! `transport::prefetch`). A converged run then costs one round trip for a
//! whole stretch of file tasks instead of one per task. Results, check mode
//! and diffs do not change: a task sees the same bytes it would have read.
//!
//! Where tasks do change things, stored reads are dropped at the first
//! write, so the window shrinks after waste and grows back after use.

use std::sync::{Arc, Mutex};

use super::task::{strip_omit, TaskRender};
use super::{HostState, PlayCtx, RunCtx};
use crate::modules::fs_deferred::DeferredReads;
use crate::modules::ModuleCtx;
use crate::playbook::{Action, Task};
use crate::transport::{Become, Remote};

/// Most tasks read ahead at once.
pub(super) const MAX_WINDOW: usize = 64;

/// Can `task`'s first read be predicted and run early?
fn predictable(task: &Task) -> bool {
    matches!(&task.action, Action::Module { module, args } if (module.reads_first)(args))
        && task.loop_.is_none()
        && task.keywords.delegate_to.is_none()
        && !task.keywords.no_log.unwrap_or(false)
}

impl RunCtx<'_> {
    /// Read ahead for `task` and the tasks in `later` on `st`, if the
    /// connection has nothing stored and `task` is predictable.
    pub(super) async fn read_ahead(
        &self,
        ctx: &PlayCtx<'_>,
        task: &Task,
        later: &[Task],
        st: &mut HostState,
    ) {
        if self.opts.no_read_ahead || !predictable(task) {
            return;
        }
        let scope = self.host_scope(ctx, st, Some(task), Vec::new());
        let Ok(transport) = self.connection(&st.name, &scope).await else {
            return;
        };
        let Some(cache) = transport.exec_cache() else {
            return;
        };
        if !cache.is_empty() {
            return;
        }
        // Grow the window after a read-ahead that was used in full, shrink
        // it after one whose reads a change made worthless.
        st.read_ahead = if cache.take_dropped() > 0 {
            (st.read_ahead / 4).max(1)
        } else {
            (st.read_ahead * 2).min(MAX_WINDOW)
        };
        if st.read_ahead < 2 {
            return;
        }
        let mut groups: Vec<(Option<Become>, Vec<String>)> = Vec::new();
        let mut taken = 0;
        for t in std::iter::once(task).chain(later.iter()) {
            if taken >= st.read_ahead || !predictable(t) {
                break;
            }
            if !t.selected(&self.opts.tags, &self.opts.skip_tags) {
                continue;
            }
            let scope = self.host_scope(ctx, st, Some(t), Vec::new());
            match self.conditions_hold(t, &scope) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(_) => break,
            }
            let Action::Module { module, args } = &t.action else {
                break;
            };
            let Ok(mut args) = self.templar.render_value(args, &scope) else {
                break;
            };
            strip_omit(&mut args, &self.omit);
            let (Ok(become_), Ok(env)) = (self.become_for(t, &scope), self.task_env(t, &scope))
            else {
                break;
            };
            let recorded = Arc::new(Mutex::new(Vec::new()));
            let remote = Remote::new(transport.clone(), become_.clone())
                .with_env(env)
                .recording(recorded.clone());
            let render = TaskRender {
                templar: &self.templar,
                scope: &scope,
            };
            let mctx = ModuleCtx {
                host: &st.name,
                remote: &remote,
                // Always check mode: the engine then never calls `apply`, so
                // nothing but a plan's first read can ever be recorded. A
                // plan that reads differently outside check mode only
                // wastes its stored read (a miss).
                check: true,
                diff: t.keywords.diff.unwrap_or(self.opts.diff),
                render: &render,
                search: &t.search,
            };
            // The plan stops at its first command, which is recorded.
            let _ = (module.run)(args, &mctx).await;
            let commands = std::mem::take(&mut *recorded.lock().unwrap_or_else(|e| e.into_inner()));
            if commands.is_empty() {
                continue;
            }
            taken += 1;
            let user = become_.as_ref().map(|b| b.user.clone());
            match groups
                .iter_mut()
                .find(|(b, _)| b.as_ref().map(|b| &b.user) == user.as_ref())
            {
                Some((_, cmds)) => cmds.extend(commands),
                None => groups.push((become_, commands)),
            }
        }
        for (become_, commands) in groups {
            if commands.len() < 2 {
                continue;
            }
            let remote = Remote::new(transport.clone(), become_);
            if let Err(e) = remote.prefetch(&commands, Some(&DeferredReads)).await {
                tracing::debug!(host = %st.name, error = %e, "read-ahead failed");
            }
        }
    }
}
