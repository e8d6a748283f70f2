//! The live line under the output on a terminal: a spinner that keeps
//! turning, the running task, how many of its hosts are done, the hosts it
//! is still waiting on and for how long, and the run's counts so far.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{Event, Status};

/// How many waited-on hosts the line names before `+N more`.
const NAMED: usize = 4;

pub(super) struct Live {
    pb: ProgressBar,
    task: String,
    waiting: Vec<String>,
    ok: usize,
    changed: usize,
    failed: usize,
    color: bool,
}

impl Live {
    pub(super) fn new(color: bool) -> Live {
        // Hidden until the first task: an empty line says nothing.
        let pb = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
        let template = if color {
            "{spinner:.cyan} {prefix:.bold} [{pos}/{len} done, {elapsed}] {wide_msg}"
        } else {
            "{spinner} {prefix} [{pos}/{len} done, {elapsed}] {wide_msg}"
        };
        pb.set_style(
            ProgressStyle::with_template(template)
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        // Turns while a task runs, so a slow host does not look like a hang.
        pb.enable_steady_tick(Duration::from_millis(120));
        Live {
            pb,
            task: String::new(),
            waiting: Vec::new(),
            ok: 0,
            changed: 0,
            failed: 0,
            color,
        }
    }

    /// Print above the live line.
    pub(super) fn suspend(&self, f: impl FnOnce()) {
        self.pb.suspend(f);
    }

    pub(super) fn observe(&mut self, event: &Event) {
        match event {
            Event::TaskStart { name, hosts, .. } => {
                if self.pb.is_hidden() {
                    self.pb.set_draw_target(ProgressDrawTarget::stderr());
                }
                self.task = name.clone();
                self.waiting = hosts.clone();
                self.pb.set_length(hosts.len() as u64);
                self.pb.set_position(0);
                self.pb.reset_elapsed();
                self.pb.set_prefix(self.task.clone());
            }
            Event::HostResult {
                status,
                item: None,
                ignored,
                ..
            } => match status {
                Status::Ok => self.ok += 1,
                Status::Failed if *ignored => self.ok += 1,
                Status::Changed => self.changed += 1,
                Status::Failed | Status::Unreachable => self.failed += 1,
                Status::Skipped => {}
            },
            Event::HostDone { host, .. } => {
                if let Some(i) = self.waiting.iter().position(|h| h == host) {
                    self.waiting.remove(i);
                    self.pb.inc(1);
                }
            }
            _ => return,
        }
        self.pb.set_message(self.message());
    }

    fn message(&self) -> String {
        let mut waiting = String::new();
        if !self.waiting.is_empty() {
            let named: Vec<&str> = self
                .waiting
                .iter()
                .take(NAMED)
                .map(String::as_str)
                .collect();
            waiting = format!("waiting on {}", named.join(", "));
            if self.waiting.len() > NAMED {
                waiting.push_str(&format!(" +{} more", self.waiting.len() - NAMED));
            }
            waiting.push_str("  ");
        }
        let counts = [
            ("ok", self.ok, "32"),
            ("changed", self.changed, "33"),
            ("failed", self.failed, "31"),
        ]
        .map(|(name, n, code)| {
            if self.color && n > 0 {
                format!("\x1b[{code}m{name}={n}\x1b[0m")
            } else {
                format!("{name}={n}")
            }
        })
        .join(" ");
        format!("{waiting}{counts}")
    }

    pub(super) fn finish(self) {
        self.pb.finish_and_clear();
    }
}
