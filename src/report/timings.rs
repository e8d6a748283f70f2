//! `--timings`: how long each task run took, from the stamps of its events
//! (its start to its last host's result), listed slowest first after the
//! recap, as Ansible's profile_tasks callback does.

use std::time::{Duration, SystemTime};

use indexmap::IndexMap;

use super::{seconds, Event, Stamped, TaskId};

/// How many tasks the summary lists.
pub(super) const SHOWN: usize = 20;

/// Width of a summary line, as the banners.
const WIDTH: usize = 79;

#[derive(Debug)]
struct TaskTime {
    name: String,
    start: SystemTime,
    end: SystemTime,
}

/// The start and last result of every task run.
#[derive(Debug, Default)]
pub(super) struct Timings {
    tasks: IndexMap<TaskId, TaskTime>,
}

impl Timings {
    pub(super) fn observe(&mut self, stamped: &Stamped) {
        match &stamped.event {
            Event::TaskStart { task_id, name, .. } => {
                self.tasks.insert(
                    *task_id,
                    TaskTime {
                        name: name.clone(),
                        start: stamped.time,
                        end: stamped.time,
                    },
                );
            }
            Event::HostResult { task_id, .. }
            | Event::HostDone { task_id, .. }
            | Event::Retry { task_id, .. } => {
                if let Some(t) = self.tasks.get_mut(task_id) {
                    t.end = t.end.max(stamped.time);
                }
            }
            _ => {}
        }
    }

    /// The `limit` slowest task runs, slowest first (ties in run order),
    /// then the total of all of them.
    pub(super) fn summary(&self, limit: usize) -> Vec<String> {
        if self.tasks.is_empty() {
            return Vec::new();
        }
        let mut all: Vec<(&str, Duration)> = self
            .tasks
            .values()
            .map(|t| {
                (
                    t.name.as_str(),
                    t.end.duration_since(t.start).unwrap_or_default(),
                )
            })
            .collect();
        let total: Duration = all.iter().map(|(_, d)| *d).sum();
        all.sort_by_key(|t| std::cmp::Reverse(t.1));
        let mut lines: Vec<String> = all
            .into_iter()
            .take(limit)
            .map(|(name, d)| dotted(name, &seconds(d)))
            .collect();
        lines.push(dotted("total", &seconds(total)));
        lines
    }
}

/// `name ----- value`, filling the line.
fn dotted(name: &str, value: &str) -> String {
    let dashes = WIDTH
        .saturating_sub(name.chars().count() + value.len() + 2)
        .max(3);
    format!("{name} {} {value}", "-".repeat(dashes))
}
