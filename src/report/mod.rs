//! Events and the reporters that render them. Workers never print: they send
//! [`Event`]s through an [`EventSink`], which stamps each with the time, and
//! one reporter turns them into Ansible-like lines (plain when stdout is not
//! a terminal, coloured and with a live progress line when it is) or JSON
//! lines, each the event's own serialisation.

mod live;
mod timings;

use std::io::{IsTerminal, Write};
use std::time::{Duration, SystemTime};

use indexmap::IndexMap;
use serde::{Serialize, Serializer};

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

/// Which run of a task an event belongs to: numbered from 1 in the order the
/// tasks start (a task run again in a later `serial` batch gets a new id).
pub type TaskId = u64;

/// Something that happened during a run. Serialised as one JSON object with
/// an `"event"` field naming the kind.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A play begins.
    PlayStart {
        /// Play name.
        #[serde(rename = "play")]
        name: String,
    },
    /// A task begins.
    TaskStart {
        /// This run of the task.
        task_id: TaskId,
        /// Task name as displayed.
        #[serde(rename = "task")]
        name: String,
        /// The hosts it runs on (a count in JSON).
        #[serde(serialize_with = "count")]
        hosts: Vec<String>,
        /// Is this a handler?
        handler: bool,
    },
    /// A task finished on one host (or one loop item).
    HostResult {
        /// The task run this result belongs to.
        task_id: TaskId,
        /// Inventory name.
        host: String,
        /// Outcome (in JSON also as `changed`, `failed`, ... flags).
        #[serde(flatten, serialize_with = "status_fields")]
        status: Status,
        /// `ignore_errors` turned a failure into "...ignoring".
        ignored: bool,
        /// Loop item label, if this is one item of a loop.
        item: Option<String>,
        /// Message (failures, debug).
        msg: Option<String>,
        /// Delegated to this host.
        #[serde(rename = "delegated_to")]
        delegated: Option<String>,
        /// Result data shown with -v (or always for failures and debug).
        result: Option<Value>,
        /// Diff to show with --diff.
        diff: Option<Box<Diff>>,
        /// Show the result in human output even without -v (debug).
        #[serde(skip)]
        show: bool,
    },
    /// An `until` condition did not hold yet; the task runs again.
    Retry {
        /// The task run.
        task_id: TaskId,
        /// Inventory name.
        host: String,
        /// Attempts left after this one.
        retries_left: u32,
    },
    /// A host is done with a task (after its last result, loops included):
    /// drives the live view; not part of the JSON stream.
    HostDone {
        /// The task run.
        task_id: TaskId,
        /// Inventory name.
        host: String,
    },
    /// A warning.
    #[serde(serialize_with = "warning")]
    Warning(String),
    /// The run is over; final counters.
    #[serde(serialize_with = "recap")]
    Recap(IndexMap<String, Counters>),
}

fn count<S: Serializer>(hosts: &[String], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(hosts.len() as u64)
}

/// `status` and the flags scripts test, as the JSON stream always had them.
fn status_fields<S: Serializer>(status: &Status, s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Fields {
        status: Status,
        changed: bool,
        failed: bool,
        skipped: bool,
        unreachable: bool,
    }
    Fields {
        status: *status,
        changed: *status == Status::Changed,
        failed: *status == Status::Failed,
        skipped: *status == Status::Skipped,
        unreachable: *status == Status::Unreachable,
    }
    .serialize(s)
}

fn warning<S: Serializer>(msg: &str, s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Warning<'a> {
        msg: &'a str,
    }
    Warning { msg }.serialize(s)
}

fn recap<S: Serializer>(recap: &IndexMap<String, Counters>, s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Recap<'a> {
        recap: &'a IndexMap<String, Counters>,
    }
    Recap { recap }.serialize(s)
}

/// An event with the time it happened.
#[derive(Debug, Clone, Serialize)]
pub struct Stamped {
    /// What happened.
    #[serde(flatten)]
    pub event: Event,
    /// When: seconds since the Unix epoch, to the microsecond.
    #[serde(serialize_with = "unix_seconds")]
    pub time: SystemTime,
}

impl Stamped {
    /// `event`, happening now.
    pub fn now(event: Event) -> Stamped {
        Stamped {
            event,
            time: SystemTime::now(),
        }
    }
}

fn unix_seconds<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    let micros = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros();
    s.serialize_f64(micros as f64 / 1e6)
}

/// Where workers send events: stamps each with the time it is sent.
#[derive(Debug, Clone)]
pub struct EventSink {
    tx: std::sync::mpsc::Sender<Stamped>,
}

impl EventSink {
    /// Send `event`, stamped now. A reporter that has gone away (the run is
    /// being torn down) loses it.
    pub fn send(&self, event: Event) {
        let _ = self.tx.send(Stamped::now(event));
    }
}

/// A sink and the receiving end a reporter reads.
pub fn channel() -> (EventSink, std::sync::mpsc::Receiver<Stamped>) {
    let (tx, rx) = std::sync::mpsc::channel();
    (EventSink { tx }, rx)
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

/// What the human output shows besides the results.
#[derive(Debug, Clone, Copy, Default)]
pub struct View {
    /// `-v` count: results of ok and changed tasks from 1.
    pub verbosity: u8,
    /// `--diff`: show the diffs.
    pub diff: bool,
    /// `--timings`: the slowest tasks after the recap.
    pub timings: bool,
    /// Colour the statuses (a terminal without `NO_COLOR`).
    pub color: bool,
}

/// Should output to a terminal be coloured? Not when `NO_COLOR` is set to
/// anything but the empty string (<https://no-color.org>).
pub fn color_wanted(tty: bool) -> bool {
    tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Renders events to stdout.
pub struct Reporter {
    format: Format,
    view: View,
    redactor: Redactor,
    live: Option<live::Live>,
    timings: timings::Timings,
    /// The name of each task run seen, for the retry lines.
    task_names: IndexMap<TaskId, String>,
    out: Box<dyn Write + Send>,
}

impl Reporter {
    /// A reporter writing to stdout. On a terminal, the human format is
    /// coloured (unless `NO_COLOR`) and shows a live progress line.
    pub fn stdout(format: Format, mut view: View, redactor: Redactor) -> Reporter {
        let tty = std::io::stdout().is_terminal();
        view.color = format == Format::Human && color_wanted(tty);
        let mut r = Reporter::to_writer(format, view, redactor, Box::new(std::io::stdout()));
        if tty && format == Format::Human {
            r.live = Some(live::Live::new(view.color));
        }
        r
    }

    /// A reporter writing to any sink, without a live line (tests).
    pub fn to_writer(
        format: Format,
        view: View,
        redactor: Redactor,
        out: Box<dyn Write + Send>,
    ) -> Reporter {
        Reporter {
            format,
            view,
            redactor,
            live: None,
            timings: timings::Timings::default(),
            task_names: IndexMap::new(),
            out,
        }
    }

    fn line(&mut self, text: &str) {
        let text = self.redactor.redact(text);
        match &self.live {
            Some(live) => live.suspend(|| {
                let _ = writeln!(self.out, "{text}");
            }),
            None => {
                let _ = writeln!(self.out, "{text}");
            }
        }
    }

    /// Render one event.
    pub fn handle(&mut self, stamped: &Stamped) {
        self.timings.observe(stamped);
        match self.format {
            Format::Json => self.json(stamped),
            Format::Human => self.human(stamped),
        }
        let _ = self.out.flush();
    }

    fn json(&mut self, stamped: &Stamped) {
        if matches!(stamped.event, Event::HostDone { .. }) {
            return;
        }
        let Ok(mut v) = serde_json::to_value(stamped) else {
            return;
        };
        self.redactor.redact_value(&mut v);
        let _ = writeln!(self.out, "{v}");
    }

    fn paint(&self, color: Color, text: &str) -> String {
        if self.view.color {
            format!("\x1b[{}m{text}\x1b[0m", color.code())
        } else {
            text.to_string()
        }
    }

    fn colored_line(&mut self, color: Color, text: &str) {
        // Redact before colouring: an escape inside a secret would hide it.
        let text = self.redactor.redact(text);
        let text = self.paint(color, &text);
        self.line(&text);
    }

    fn human(&mut self, stamped: &Stamped) {
        if let Some(live) = &mut self.live {
            live.observe(&stamped.event);
        }
        match &stamped.event {
            Event::PlayStart { name } => {
                self.line("");
                self.line(&banner(&format!("PLAY [{name}]")));
            }
            Event::TaskStart {
                task_id,
                name,
                handler,
                ..
            } => {
                self.task_names.insert(*task_id, name.clone());
                let kind = if *handler { "RUNNING HANDLER" } else { "TASK" };
                self.line("");
                self.line(&banner(&format!("{kind} [{name}]")));
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
                ..
            } => {
                if self.view.diff {
                    if let Some(d) = diff {
                        self.diff(d);
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
                        if *show || self.view.verbosity > 0 {
                            if let Some(r) = result {
                                // Ansible's output leaves out the `failed:
                                // false` every registered result carries.
                                let mut r = r.clone();
                                if let Value::Object(m) = &mut r {
                                    if m.get("failed") == Some(&Value::Bool(false)) {
                                        m.remove("failed");
                                    }
                                }
                                text.push_str(&format!(
                                    " => {}",
                                    serde_json::to_string_pretty(&r).unwrap_or_default()
                                ));
                            }
                        }
                    }
                }
                self.colored_line(Color::of(*status), &text);
                if *ignored {
                    self.colored_line(Color::Cyan, "...ignoring");
                }
            }
            Event::Retry {
                task_id,
                host,
                retries_left,
            } => {
                let name = self.task_names.get(task_id).cloned().unwrap_or_default();
                self.colored_line(
                    Color::Red,
                    &format!("FAILED - RETRYING: [{host}]: {name} ({retries_left} retries left)."),
                );
            }
            Event::HostDone { .. } => {}
            Event::Warning(w) => self.colored_line(Color::Magenta, &format!("[WARNING]: {w}")),
            Event::Recap(map) => {
                if let Some(live) = self.live.take() {
                    live.finish();
                }
                self.line("");
                self.line(&banner("PLAY RECAP"));
                let width = map.keys().map(String::len).max().unwrap_or(0).max(10);
                for (host, c) in map {
                    self.recap_line(host, c, width);
                }
                if self.view.timings {
                    let lines = self.timings.summary(timings::SHOWN);
                    if !lines.is_empty() {
                        self.line("");
                        self.line(&banner("TASK TIMINGS"));
                        for l in lines {
                            self.line(&l);
                        }
                    }
                }
            }
        }
    }

    fn recap_line(&mut self, host: &str, c: &Counters, width: usize) {
        let host_color = if c.failed > 0 || c.unreachable > 0 {
            Color::Red
        } else if c.changed > 0 {
            Color::Yellow
        } else {
            Color::Green
        };
        let field = |name: &str, n: usize, color: Color, last: bool| {
            let text = if last {
                format!("{name}={n}")
            } else {
                format!("{name}={n:<4}")
            };
            if n > 0 {
                self.paint(color, &text)
            } else {
                text
            }
        };
        let fields = [
            field("ok", c.ok, Color::Green, false),
            field("changed", c.changed, Color::Yellow, false),
            field("unreachable", c.unreachable, Color::Red, false),
            field("failed", c.failed, Color::Red, false),
            field("skipped", c.skipped, Color::Cyan, false),
            field("rescued", c.rescued, Color::Green, false),
            field("ignored", c.ignored, Color::Magenta, true),
        ];
        let name = format!("{host:<width$}");
        let text = format!("{} : {}", self.paint(host_color, &name), fields.join(" "));
        self.line(&text);
    }

    fn diff(&mut self, d: &Diff) {
        let text = unified_diff(d);
        for l in text.trim_end().lines() {
            let color = if l.starts_with("+++") || l.starts_with("---") {
                None
            } else if l.starts_with('+') {
                Some(Color::Green)
            } else if l.starts_with('-') {
                Some(Color::Red)
            } else if l.starts_with("@@") {
                Some(Color::Cyan)
            } else {
                None
            };
            match color {
                Some(c) => self.colored_line(c, l),
                None => self.line(l),
            }
        }
    }
}

/// The colours Ansible gives each kind of line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Color {
    Green,
    Yellow,
    Red,
    Cyan,
    Magenta,
}

impl Color {
    fn of(status: Status) -> Color {
        match status {
            Status::Ok => Color::Green,
            Status::Changed => Color::Yellow,
            Status::Skipped => Color::Cyan,
            Status::Failed | Status::Unreachable => Color::Red,
        }
    }

    fn code(self) -> &'static str {
        match self {
            Color::Green => "0;32",
            Color::Yellow => "0;33",
            Color::Red => "0;31",
            Color::Cyan => "0;36",
            Color::Magenta => "1;35",
        }
    }
}

fn detail(msg: &Option<String>, result: &Option<Value>) -> String {
    match result {
        // Like Ansible's default output, without the error summary that
        // repeats `msg`.
        Some(Value::Object(r)) if r.contains_key("exception") => {
            let mut r = r.clone();
            r.remove("exception");
            serde_json::to_string(&r).unwrap_or_default()
        }
        Some(r) => serde_json::to_string(r).unwrap_or_default(),
        None => serde_json::json!({ "msg": msg.clone().unwrap_or_default() }).to_string(),
    }
}

fn banner(title: &str) -> String {
    let stars = 78usize.saturating_sub(title.len() + 1).max(3);
    format!("{title} {}", "*".repeat(stars))
}

/// `d` as `1.23s`, or `1m02s` from a minute on.
fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 60.0 {
        format!("{s:.2}s")
    } else {
        format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
    }
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
mod tests;
