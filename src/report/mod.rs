//! Events and the reporters that render them. Workers never print: they send
//! [`Event`]s, and one reporter turns them into Ansible-like lines (plain
//! when stdout is not a terminal, with a live progress line when it is) or
//! JSON lines.

use std::io::{IsTerminal, Write};

use indexmap::IndexMap;
use serde::Serialize;

use crate::modules::Diff;
use crate::secret::Redactor;
use crate::Value;

/// How a task ended on one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Nothing changed.
    Ok,
    /// The host changed (or would, in check mode).
    Changed,
    /// Not run (condition false, check mode, tags).
    Skipped,
    /// The task failed.
    Failed,
    /// The host could not be reached.
    Unreachable,
}

/// Something that happened during a run.
#[derive(Debug, Clone)]
pub enum Event {
    /// A play begins.
    PlayStart {
        /// Play name.
        name: String,
    },
    /// A task begins.
    TaskStart {
        /// Task name as displayed.
        name: String,
        /// Number of hosts it runs on.
        hosts: usize,
        /// Is this a handler?
        handler: bool,
    },
    /// A task finished on one host (or one loop item).
    HostResult {
        /// Inventory name.
        host: String,
        /// Outcome.
        status: Status,
        /// Loop item label, if this is one item of a loop.
        item: Option<String>,
        /// Message (failures, debug).
        msg: Option<String>,
        /// Result data shown with -v (or always for failures and debug).
        result: Option<Value>,
        /// Diff to show with --diff.
        diff: Option<Diff>,
        /// `ignore_errors` turned a failure into "...ignoring".
        ignored: bool,
        /// Delegated to this host.
        delegated: Option<String>,
        /// Show the result in human output even without -v (debug).
        show: bool,
    },
    /// A warning.
    Warning(String),
    /// The run is over; final counters.
    Recap(IndexMap<String, Counters>),
}

/// The PLAY RECAP counters of one host.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Counters {
    /// Tasks that were ok or changed.
    pub ok: usize,
    /// Tasks that changed the host.
    pub changed: usize,
    /// 1 when the host could not be reached.
    pub unreachable: usize,
    /// Tasks that failed (not ignored).
    pub failed: usize,
    /// Tasks that were skipped.
    pub skipped: usize,
    /// Failures that were rescued.
    pub rescued: usize,
    /// Failures that were ignored.
    pub ignored: usize,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Ansible-like lines.
    #[default]
    Human,
    /// One JSON object per event.
    Json,
}

/// Renders events to stdout.
pub struct Reporter {
    format: Format,
    verbosity: u8,
    show_diff: bool,
    redactor: Redactor,
    progress: Option<indicatif::ProgressBar>,
    out: Box<dyn Write + Send>,
}

impl Reporter {
    /// A reporter writing to stdout; a progress line is shown when stdout is
    /// a terminal and the format is human.
    pub fn stdout(format: Format, verbosity: u8, show_diff: bool, redactor: Redactor) -> Reporter {
        let tty = std::io::stdout().is_terminal();
        let progress = (tty && format == Format::Human).then(|| {
            let pb = indicatif::ProgressBar::new(0);
            pb.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {msg} [{pos}/{len}]")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            pb
        });
        Reporter {
            format,
            verbosity,
            show_diff,
            redactor,
            progress,
            out: Box::new(std::io::stdout()),
        }
    }

    /// A reporter writing to any sink (tests).
    pub fn to_writer(
        format: Format,
        verbosity: u8,
        show_diff: bool,
        redactor: Redactor,
        out: Box<dyn Write + Send>,
    ) -> Reporter {
        Reporter {
            format,
            verbosity,
            show_diff,
            redactor,
            progress: None,
            out,
        }
    }

    fn line(&mut self, text: &str) {
        let text = self.redactor.redact(text);
        match &self.progress {
            Some(pb) => pb.suspend(|| {
                let _ = writeln!(self.out, "{text}");
            }),
            None => {
                let _ = writeln!(self.out, "{text}");
            }
        }
    }

    /// Render one event.
    pub fn handle(&mut self, event: &Event) {
        match self.format {
            Format::Json => self.json(event),
            Format::Human => self.human(event),
        }
        let _ = self.out.flush();
    }

    fn json(&mut self, event: &Event) {
        let mut v = match event {
            Event::PlayStart { name } => serde_json::json!({"event": "play_start", "play": name}),
            Event::TaskStart {
                name,
                hosts,
                handler,
            } => serde_json::json!({
                "event": "task_start", "task": name, "hosts": hosts, "handler": handler
            }),
            Event::HostResult {
                host,
                status,
                item,
                msg,
                result,
                diff,
                ignored,
                delegated,
                ..
            } => serde_json::json!({
                "event": "host_result",
                "host": host,
                "status": status,
                "changed": *status == Status::Changed,
                "failed": *status == Status::Failed,
                "skipped": *status == Status::Skipped,
                "unreachable": *status == Status::Unreachable,
                "ignored": ignored,
                "item": item,
                "msg": msg,
                "delegated_to": delegated,
                "result": result,
                "diff": diff.as_ref().map(|d| serde_json::json!({
                    "before_header": d.before_header, "after_header": d.after_header,
                    "before": d.before, "after": d.after,
                })),
            }),
            Event::Warning(w) => serde_json::json!({"event": "warning", "msg": w}),
            Event::Recap(map) => {
                let recap: serde_json::Map<String, Value> = map
                    .iter()
                    .map(|(h, c)| {
                        (
                            h.clone(),
                            serde_json::json!({
                                "ok": c.ok, "changed": c.changed, "unreachable": c.unreachable,
                                "failed": c.failed, "skipped": c.skipped,
                                "rescued": c.rescued, "ignored": c.ignored,
                            }),
                        )
                    })
                    .collect();
                serde_json::json!({ "recap": recap })
            }
        };
        self.redactor.redact_value(&mut v);
        let _ = writeln!(self.out, "{v}");
    }

    fn human(&mut self, event: &Event) {
        match event {
            Event::PlayStart { name } => {
                self.line("");
                self.line(&banner(&format!("PLAY [{name}]")));
            }
            Event::TaskStart {
                name,
                hosts,
                handler,
            } => {
                let kind = if *handler { "RUNNING HANDLER" } else { "TASK" };
                self.line("");
                self.line(&banner(&format!("{kind} [{name}]")));
                if let Some(pb) = &self.progress {
                    pb.set_length(*hosts as u64);
                    pb.set_position(0);
                    pb.set_message(name.clone());
                }
            }
            Event::HostResult {
                host,
                status,
                item,
                msg,
                result,
                diff,
                ignored,
                delegated,
                show,
            } => {
                if let Some(pb) = &self.progress {
                    if item.is_none() {
                        pb.inc(1);
                    }
                }
                if self.show_diff {
                    if let Some(d) = diff {
                        let text = unified_diff(d);
                        self.line(text.trim_end());
                    }
                }
                let word = match status {
                    Status::Ok => "ok",
                    Status::Changed => "changed",
                    Status::Skipped => "skipping",
                    Status::Failed => "fatal",
                    Status::Unreachable => "fatal",
                };
                let target = match delegated {
                    Some(d) => format!("[{host} -> {d}]"),
                    None => format!("[{host}]"),
                };
                let item_part = item
                    .as_ref()
                    .map(|i| format!(" => (item={i})"))
                    .unwrap_or_default();
                let mut text = format!("{word}: {target}{item_part}");
                match status {
                    Status::Failed if item.is_none() => {
                        text = format!("fatal: {target}: FAILED! => {}", detail(msg, result));
                    }
                    Status::Failed => {
                        text = format!("failed: {target}{item_part} => {}", detail(msg, result));
                    }
                    Status::Unreachable => {
                        text = format!("fatal: {target}: UNREACHABLE! => {}", detail(msg, result));
                    }
                    _ => {
                        if *show || self.verbosity > 0 {
                            if let Some(r) = result {
                                text.push_str(&format!(
                                    " => {}",
                                    serde_json::to_string_pretty(r).unwrap_or_default()
                                ));
                            }
                        }
                    }
                }
                self.line(&text);
                if *ignored {
                    self.line("...ignoring");
                }
            }
            Event::Warning(w) => self.line(&format!("[WARNING]: {w}")),
            Event::Recap(map) => {
                if let Some(pb) = self.progress.take() {
                    pb.finish_and_clear();
                }
                self.line("");
                self.line(&banner("PLAY RECAP"));
                let width = map.keys().map(String::len).max().unwrap_or(0).max(10);
                for (host, c) in map {
                    self.line(&format!(
                        "{host:<width$} : ok={:<4} changed={:<4} unreachable={:<4} failed={:<4} skipped={:<4} rescued={:<4} ignored={}",
                        c.ok, c.changed, c.unreachable, c.failed, c.skipped, c.rescued, c.ignored
                    ));
                }
            }
        }
    }
}

fn detail(msg: &Option<String>, result: &Option<Value>) -> String {
    match result {
        Some(r) => serde_json::to_string(r).unwrap_or_default(),
        None => serde_json::json!({ "msg": msg.clone().unwrap_or_default() }).to_string(),
    }
}

fn banner(title: &str) -> String {
    let stars = 78usize.saturating_sub(title.len() + 1).max(3);
    format!("{title} {}", "*".repeat(stars))
}

/// A unified diff of a [`Diff`], as `--diff` shows it.
pub fn unified_diff(d: &Diff) -> String {
    let diff = similar::TextDiff::from_lines(&d.before, &d.after);
    let mut out = String::new();
    out.push_str(&format!(
        "--- {}\n+++ {}\n",
        d.before_header, d.after_header
    ));
    for hunk in diff.unified_diff().context_radius(3).iter_hunks() {
        out.push_str(&hunk.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_is_unified() {
        let d = Diff {
            before_header: "before: /etc/x".into(),
            after_header: "after: /etc/x".into(),
            before: "a\nb\n".into(),
            after: "a\nc\n".into(),
        };
        let text = unified_diff(&d);
        assert!(text.contains("-b\n+c\n"), "{text}");
        assert!(text.starts_with("--- before: /etc/x\n+++ after: /etc/x\n"));
    }
}
