use std::sync::{Arc, Mutex};

use super::*;

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("buffer").extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buf {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().expect("buffer").clone()).expect("utf8")
    }
}

fn at(ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(1_764_730_000_000 + ms)
}

#[derive(Default)]
struct More {
    ignored: bool,
    item: Option<String>,
    msg: Option<String>,
    delegated: Option<String>,
    result: Option<Value>,
    diff: Option<Box<Diff>>,
}

fn result(task_id: TaskId, host: &str, status: Status) -> Event {
    result_with(task_id, host, status, More::default())
}

fn result_with(task_id: TaskId, host: &str, status: Status, more: More) -> Event {
    Event::HostResult {
        task_id,
        host: host.into(),
        status,
        ignored: more.ignored,
        item: more.item,
        msg: more.msg,
        delegated: more.delegated,
        result: more.result,
        diff: more.diff,
        show: false,
    }
}

fn task(task_id: TaskId, name: &str, hosts: &[&str], handler: bool) -> Event {
    Event::TaskStart {
        task_id,
        name: name.into(),
        hosts: hosts.iter().map(|h| h.to_string()).collect(),
        handler,
    }
}

/// A run with every kind of line: ok, changed with a diff, skipped, a
/// retried then failed task, an ignored failure, a loop, an unreachable
/// host, a handler, a warning and the recap.
fn representative() -> Vec<Stamped> {
    let hosts = ["node1", "node2", "node3"];
    let mut counters = IndexMap::new();
    for (h, ok, changed, failed, unreachable) in [
        ("node1", 5, 2, 0, 0),
        ("node2", 3, 1, 1, 0),
        ("node3", 0, 0, 0, 1),
    ] {
        counters.insert(
            h.to_string(),
            Counters {
                ok,
                changed,
                failed,
                unreachable,
                skipped: 1,
                ignored: usize::from(h == "node1"),
                ..Counters::default()
            },
        );
    }
    let events = vec![
        Event::PlayStart { name: "web".into() },
        task(1, "Gathering Facts", &hosts, false),
        result(1, "node1", Status::Ok),
        result(1, "node2", Status::Ok),
        result_with(
            1,
            "node3",
            Status::Unreachable,
            More {
                msg: Some("ssh: connect to 127.0.9.3:22: connection refused".into()),
                ..More::default()
            },
        ),
        task(2, "motd", &hosts[..2], false),
        result_with(
            2,
            "node1",
            Status::Changed,
            More {
                diff: Some(Box::new(Diff {
                    before_header: "/etc/motd".into(),
                    after_header: "/etc/motd".into(),
                    before: "old\n".into(),
                    after: "new\n".into(),
                })),
                ..More::default()
            },
        ),
        result(2, "node2", Status::Ok),
        task(3, "only on debian", &hosts[..2], false),
        result(3, "node1", Status::Skipped),
        result(3, "node2", Status::Skipped),
        task(4, "wait for the port", &hosts[..2], false),
        Event::Retry {
            task_id: 4,
            host: "node2".into(),
            retries_left: 2,
        },
        result(4, "node1", Status::Ok),
        Event::Retry {
            task_id: 4,
            host: "node2".into(),
            retries_left: 1,
        },
        result_with(
            4,
            "node2",
            Status::Failed,
            More {
                msg: Some("Retries exceeded".into()),
                result: Some(
                    serde_json::json!({"attempts": 3, "failed": true, "msg": "Retries exceeded"}),
                ),
                ..More::default()
            },
        ),
        task(5, "packages", &hosts[..1], false),
        result_with(
            5,
            "node1",
            Status::Changed,
            More {
                item: Some("git".into()),
                ..More::default()
            },
        ),
        result_with(
            5,
            "node1",
            Status::Ok,
            More {
                item: Some("vim".into()),
                ..More::default()
            },
        ),
        task(6, "optional", &hosts[..1], false),
        result_with(
            6,
            "node1",
            Status::Failed,
            More {
                ignored: true,
                msg: Some("non-zero return code".into()),
                result: Some(
                    serde_json::json!({"rc": 1, "failed": true, "msg": "non-zero return code"}),
                ),
                ..More::default()
            },
        ),
        task(7, "restart web", &hosts[..1], true),
        result_with(
            7,
            "node1",
            Status::Changed,
            More {
                delegated: Some("lb".into()),
                ..More::default()
            },
        ),
        Event::Warning("a warning".into()),
        Event::Recap(counters),
    ];
    events
        .into_iter()
        .enumerate()
        .map(|(i, event)| Stamped {
            event,
            time: at(i as u64 * 250),
        })
        .collect()
}

fn render(format: Format, view: View, events: &[Stamped]) -> String {
    let buf = Buf::default();
    let mut r = Reporter::to_writer(format, view, Redactor::default(), Box::new(buf.clone()));
    for e in events {
        r.handle(e);
    }
    buf.text()
}

#[test]
fn human_output_of_a_representative_run() {
    let view = View {
        diff: true,
        ..View::default()
    };
    insta::assert_snapshot!(render(Format::Human, view, &representative()));
}

#[test]
fn timings_list_the_slowest_tasks_after_the_recap() {
    let view = View {
        timings: true,
        ..View::default()
    };
    let text = render(Format::Human, view, &representative());
    let start = text.find("TASK TIMINGS").expect("a timings section");
    let summary = &text[start..];
    insta::assert_snapshot!(summary);
}

#[test]
fn json_lines_are_the_events_serialised_with_ids_and_times() {
    let text = render(Format::Json, View::default(), &representative());
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    insta::assert_snapshot!(text);
    // The fields scripts read before ids and times were added are all there.
    let failed = lines
        .iter()
        .find(|l| l["event"] == "host_result" && l["failed"] == true)
        .expect("a failure");
    for key in [
        "host",
        "status",
        "changed",
        "skipped",
        "unreachable",
        "ignored",
        "item",
        "msg",
        "delegated_to",
        "result",
        "diff",
        "task_id",
        "time",
    ] {
        assert!(failed.get(key).is_some(), "{key} missing: {failed}");
    }
    assert!(lines.last().expect("recap")["recap"]["node2"]["failed"] == 1);
}

#[test]
fn colours_only_when_asked() {
    let plain = render(Format::Human, View::default(), &representative());
    assert!(!plain.contains('\x1b'), "{plain}");
    let view = View {
        color: true,
        ..View::default()
    };
    let colored = render(Format::Human, view, &representative());
    assert!(
        colored.contains("\x1b[0;33mchanged: [node1]\x1b[0m"),
        "{colored}"
    );
    assert!(
        colored.contains("\x1b[0;32mok: [node2]\x1b[0m"),
        "{colored}"
    );
    assert!(
        colored.contains("\x1b[0;36mskipping: [node1]\x1b[0m"),
        "{colored}"
    );
    assert!(
        colored.contains("\x1b[0;31mfatal: [node3]: UNREACHABLE!"),
        "{colored}"
    );
}

#[test]
fn no_color_turns_colour_off() {
    // Only the decision: the environment is the process's, so not set here.
    assert!(!color_wanted(false));
}

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
