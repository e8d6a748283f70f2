//! Bad input is refused before anything runs, never a crash: alias bombs
//! under a memory cap, argument values checked before connecting, template
//! syntax that panicked the lexer, duplicate keys, empty playbooks and a
//! `--limit` that matches nothing. These run the binary; none needs a lab.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The address block this suite's listeners use (`DROVER_TEST_BLOCK`).
fn block() -> u8 {
    std::env::var("DROVER_TEST_BLOCK")
        .ok()
        .and_then(|b| b.parse().ok())
        .unwrap_or(180)
}

fn drover(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_drover"));
    cmd.args(args).env_remove("ANSIBLE_DUPLICATE_YAML_DICT_KEY");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("run drover")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(&p, body).expect("write");
    p
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8 path")
}

/// A host that is a listening socket: if drover connected, accept sees it.
struct Trap {
    listener: TcpListener,
    inventory: PathBuf,
}

impl Trap {
    fn new(dir: &Path) -> Trap {
        let addr = format!("127.0.{}.250", block());
        let listener = TcpListener::bind(format!("{addr}:0")).expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let inventory = write(
            dir,
            "inv.yml",
            &format!("all:\n  hosts:\n    target:\n      ansible_host: {addr}\n      ansible_port: {port}\n"),
        );
        Trap {
            listener,
            inventory,
        }
    }

    fn assert_untouched(&self, what: &str) {
        match self.listener.accept() {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Ok(_) => panic!("{what}: drover connected before refusing the input"),
            Err(e) => panic!("{what}: accept: {e}"),
        }
    }
}

/// Ten levels of nine aliases: about 600 bytes that expand to 9^10 nodes.
fn bomb_lines(indent: &str) -> String {
    let mut s = format!("{indent}a0: &a0 [x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 9].join(", ");
        s.push_str(&format!("{indent}a{i}: &a{i} [{refs}]\n"));
    }
    s
}

/// Does `err` name `file` with a line and a column?
fn located(err: &str, file: &str) -> bool {
    err.match_indices(file).any(|(i, _)| {
        let rest = &err[i + file.len()..];
        let mut parts = rest.splitn(4, ':');
        parts.next() == Some("")
            && parts.next().is_some_and(|l| l.parse::<usize>().is_ok())
            && parts.next().is_some_and(|c| c.parse::<usize>().is_ok())
    })
}

/// Run drover with its address space capped, so that expanding the bomb
/// (what the old loader did) dies instead of exhausting the machine.
fn capped(args: &[&str]) -> (Output, Duration) {
    let started = Instant::now();
    let out = Command::new("prlimit")
        .arg("--as=1073741824")
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_drover"))
        .args(args)
        .env_remove("ANSIBLE_DUPLICATE_YAML_DICT_KEY")
        .output()
        .expect("run prlimit");
    (out, started.elapsed())
}

#[test]
fn alias_bombs_are_refused_with_their_position_under_a_memory_cap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let trap = Trap::new(d);
    let ok_play = "- hosts: all\n  gather_facts: false\n  tasks:\n    - debug: msg=hi\n";

    // In the playbook itself.
    let pb = write(
        d,
        "bomb.yml",
        &format!(
            "- hosts: all\n  gather_facts: false\n  vars:\n{}  tasks:\n    - debug: msg=hi\n",
            bomb_lines("    ")
        ),
    );
    assert!(std::fs::metadata(&pb).expect("size").len() < 700);
    let plain = write(d, "ok.yml", ok_play);
    let vars = write(d, "bomb_vars.yml", &bomb_lines(""));
    let with_vars_file = write(
        d,
        "uses_vars.yml",
        "- hosts: all\n  gather_facts: false\n  vars_files: [bomb_vars.yml]\n  tasks:\n    - debug: msg=hi\n",
    );
    let inv_bomb = write(
        d,
        "inv_bomb.yml",
        &format!(
            "all:\n  vars:\n{}  hosts:\n    h: {{}}\n",
            bomb_lines("    ")
        ),
    );
    write(d, "gv/inv.yml", "all:\n  hosts:\n    h: {}\n");
    write(d, "gv/group_vars/all.yml", &bomb_lines(""));
    let inv_dir_gv = d.join("gv/inv.yml");
    let at_file = format!("@{}", s(&vars));

    let cases: Vec<(&str, Vec<&str>, String)> = vec![
        (
            "playbook",
            vec!["apply", s(&pb), "-i", s(&trap.inventory)],
            s(&pb).to_string(),
        ),
        (
            "vars_files",
            vec!["apply", s(&with_vars_file), "-i", s(&trap.inventory)],
            s(&vars).to_string(),
        ),
        (
            "inventory",
            vec!["apply", s(&plain), "-i", s(&inv_bomb)],
            s(&inv_bomb).to_string(),
        ),
        (
            "group_vars",
            vec!["apply", s(&plain), "-i", s(&inv_dir_gv)],
            "group_vars/all.yml".to_string(),
        ),
        (
            "extra vars file",
            vec!["apply", s(&plain), "-i", s(&trap.inventory), "-e", &at_file],
            s(&vars).to_string(),
        ),
    ];
    for (what, args, want) in cases {
        let (out, took) = capped(&args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{what}: {err}");
        assert!(
            located(&err, &want),
            "{what}: expected {want}:LINE:COL in {err}"
        );
        assert!(err.contains("alias"), "{what}: {err}");
        assert!(took < Duration::from_secs(10), "{what}: took {took:?}");
        trap.assert_untouched(what);
    }
}

#[test]
fn bad_argument_values_are_refused_before_connecting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let trap = Trap::new(dir.path());
    let cases = [
        (
            "type.yml",
            "- hosts: all\n  tasks:\n    - lineinfile:\n        path: /tmp/x\n        line: a\n        create: [1, 2]\n",
            "type.yml:6:9: module 'lineinfile', argument 'create'",
        ),
        (
            "choice.yml",
            "- hosts: all\n  tasks:\n    - file: path=/tmp/x state=bogus\n",
            "choice.yml:3:13: module 'file', argument 'state': unknown value `bogus`",
        ),
        (
            "missing.yml",
            "- hosts: all\n  tasks:\n    - copy:\n        dest: /tmp/x\n",
            "missing.yml:4:9: module 'copy': src (or content) is required",
        ),
    ];
    for (name, body, want) in cases {
        let pb = write(dir.path(), name, body);
        let out = drover(&["apply", s(&pb), "-i", s(&trap.inventory)], &[]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {err}");
        assert!(err.contains(want), "{name}: expected {want} in {err}");
        trap.assert_untouched(name);
    }
}

/// `a }} b` panicked minijinja 2's lexer (exit 101); the error now points at
/// the condition itself.
#[test]
fn conditions_that_panicked_the_template_lexer_are_input_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let trap = Trap::new(dir.path());
    for key in ["when", "changed_when", "failed_when", "until"] {
        let pb = write(
            dir.path(),
            &format!("{key}.yml"),
            &format!("- hosts: all\n  tasks:\n    - name: t\n      command: id\n      {key}: \"a }}}} b\"\n"),
        );
        let out = drover(&["apply", s(&pb), "-i", s(&trap.inventory)], &[]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{key}: {err}");
        let want = format!("{key}.yml:5:{}: {key}:", 9 + key.len());
        assert!(err.contains(&want), "{key}: expected {want} in {err}");
        assert!(!err.contains("panicked"), "{err}");
        trap.assert_untouched(key);
    }
}

fn local_inventory(dir: &Path) -> PathBuf {
    write(
        dir,
        "local.yml",
        "all:\n  hosts:\n    localhost:\n      ansible_connection: local\n",
    )
}

const DUPLICATE: &str = "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: dup\n      debug: msg=first\n      debug: msg=second\n";

#[test]
fn duplicate_keys_warn_naming_both_lines_before_anything_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inv = local_inventory(dir.path());
    let pb = write(dir.path(), "dup.yml", DUPLICATE);
    let out = drover(&["apply", s(&pb), "-i", s(&inv)], &[]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    let warning = stdout
        .find("[WARNING]")
        .unwrap_or_else(|| panic!("no warning in {stdout}"));
    let line = &stdout[warning
        ..stdout[warning..]
            .find('\n')
            .map_or(stdout.len(), |e| warning + e)];
    assert!(line.contains("dup.yml:6:7"), "{line}");
    assert!(line.contains("line 5 column 7"), "{line}");
    assert!(line.contains("'debug'"), "{line}");
    let task = stdout.find("TASK").expect("a task ran");
    assert!(warning < task, "warning after the run started: {stdout}");
    assert!(stdout.contains("second"), "the later value wins: {stdout}");

    let out = drover(
        &["apply", s(&pb), "-i", s(&inv)],
        &[("ANSIBLE_DUPLICATE_YAML_DICT_KEY", "error")],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("dup.yml:6:7"), "{err}");
    assert!(err.contains("line 5 column 7"), "{err}");
    assert!(!text(&out.stdout).contains("TASK"), "nothing may run");

    let out = drover(
        &["apply", s(&pb), "-i", s(&inv)],
        &[("ANSIBLE_DUPLICATE_YAML_DICT_KEY", "ignore")],
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(!text(&out.stdout).contains("[WARNING]"));

    let out = drover(
        &["apply", s(&pb), "-i", s(&inv)],
        &[("ANSIBLE_DUPLICATE_YAML_DICT_KEY", "sometimes")],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("ANSIBLE_DUPLICATE_YAML_DICT_KEY"));
}

#[test]
fn an_empty_playbook_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inv = local_inventory(dir.path());
    for (name, body) in [
        ("empty.yml", ""),
        ("comment.yml", "# nothing\n"),
        ("list.yml", "[]\n"),
    ] {
        let pb = write(dir.path(), name, body);
        let out = drover(&["apply", s(&pb), "-i", s(&inv)], &[]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {err}");
        assert!(err.contains(&format!("{name}:1:1")), "{name}: {err}");
        assert!(err.contains("no plays"), "{name}: {err}");
    }
}

#[test]
fn a_limit_that_matches_no_host_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let trap = Trap::new(dir.path());
    let pb = write(
        dir.path(),
        "p.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - debug: msg=hi\n",
    );
    for cmd in ["apply", "ping"] {
        let mut args = vec![cmd];
        if cmd == "apply" {
            args.push(s(&pb));
        }
        args.extend(["-i", s(&trap.inventory), "--limit", "tagret"]);
        let out = drover(&args, &[]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{cmd}: {err}");
        assert!(err.contains("--limit 'tagret'"), "{cmd}: {err}");
        trap.assert_untouched(cmd);
    }
}
