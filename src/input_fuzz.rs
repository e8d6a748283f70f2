//! Property tests over everything that reads user input before a run: the
//! YAML loader, inventories, the playbook loader and the static check. Any
//! input may be refused, none may panic. Inputs are generated playbook-like
//! (plays, tasks, module arguments, conditions) with random scalars, template
//! fragments (`{{ }} {% %} {# #}` in any order), anchors and aliases, and
//! also as raw token soup. The normal test run tries 256 cases of each;
//! `PROPTEST_CASES=100000 cargo test --lib input_fuzz` runs longer.

use std::path::Path;

use proptest::prelude::*;
use proptest::sample::select;

use crate::inventory::Inventory;
use crate::playbook::{check, load_playbook_str};
use crate::template::Templar;
use crate::Map;

const KEYS: &[&str] = &[
    "hosts",
    "name",
    "tasks",
    "vars",
    "roles",
    "pre_tasks",
    "post_tasks",
    "handlers",
    "block",
    "rescue",
    "always",
    "when",
    "changed_when",
    "failed_when",
    "until",
    "retries",
    "delay",
    "loop",
    "with_items",
    "with_dict",
    "loop_control",
    "loop_var",
    "register",
    "notify",
    "listen",
    "tags",
    "become",
    "environment",
    "vars_files",
    "serial",
    "gather_facts",
    "max_fail_percentage",
    "args",
    "action",
    "local_action",
    "module",
    "children",
    "all",
    "<<",
];

const MODULES: &[&str] = &[
    "copy",
    "file",
    "command",
    "shell",
    "lineinfile",
    "blockinfile",
    "replace",
    "debug",
    "set_fact",
    "assert",
    "fail",
    "template",
    "stat",
    "slurp",
    "sysctl",
    "user",
    "group",
    "mount",
    "apt",
    "systemd",
    "service",
    "get_url",
    "wait_for",
    "k8s_apply",
    "meta",
    "include_tasks",
    "import_tasks",
    "include_vars",
    "import_role",
    "ansible.builtin.copy",
    "no_such_module",
];

const ARGS: &[&str] = &[
    "src",
    "dest",
    "path",
    "content",
    "state",
    "mode",
    "owner",
    "line",
    "regexp",
    "create",
    "backup",
    "force",
    "msg",
    "var",
    "that",
    "name",
    "value",
    "file",
    "definition",
    "enabled",
    "_raw_params",
    "creates",
    "chdir",
    "key",
];

const SCALARS: &[&str] = &[
    "",
    "~",
    "null",
    "yes",
    "no",
    "on",
    "off",
    "True",
    "0644",
    "0o17",
    "0x1F",
    "08",
    "1e3",
    "1.5",
    ".inf",
    "-.inf",
    ".nan",
    "9223372036854775808",
    "-0",
    "1_000",
    "present",
    "absent",
    "touch",
    "directory",
    "bogus",
    "all",
    "localhost",
    "web[1:3]",
    "/tmp/x",
    "a=1 b=2",
    "creates=/x ls -l",
    "flush_handlers",
    "x is defined",
    "item",
    "50%",
];

const TEMPLATE_BITS: &[&str] = &[
    "{{",
    "}}",
    "{%",
    "%}",
    "{#",
    "#}",
    " x ",
    "a",
    "item",
    "|default(1)",
    "| int",
    " if ",
    " else ",
    " for i in x ",
    "endfor",
    "endif",
    "(",
    ")",
    "'",
    "\"",
    "[",
    "]",
    ".",
    "~",
    "-",
    "+",
    "%",
    "*",
    "is defined",
    "not",
    " and ",
    "lookup('env', 'HOME')",
    "range(3)",
    "\n",
    "\\",
    "é\u{0}",
];

const RAW_BITS: &[&str] = &[
    "\n",
    "  ",
    "    ",
    "- ",
    ": ",
    ":",
    "hosts",
    "tasks",
    "all",
    "debug",
    "msg",
    "when",
    "&a ",
    "&b ",
    "*a",
    "*b",
    "<<: *a",
    "{{ ",
    " }}",
    "{% ",
    "%}",
    "#}",
    "[",
    "]",
    "{",
    "}",
    ", ",
    "'",
    "\"",
    "|\n",
    ">-\n",
    "!!str ",
    "!unsafe ",
    "!vault ",
    "!!binary ",
    "? ",
    "---\n",
    "...\n",
    "# c",
    "%YAML 1.1\n",
    "\t",
    "\u{feff}",
    "é",
    "0644",
    "yes",
    "~",
    "=",
    "-",
    "x",
];

/// A YAML tree to print, with the choices of style that reach the parser.
#[derive(Debug, Clone)]
enum Tree {
    Scalar(String, bool),
    Alias(u8),
    Seq(Vec<Tree>, Option<u8>, bool),
    Map(Vec<(String, Tree)>, Option<u8>, bool),
}

fn template() -> impl Strategy<Value = String> {
    prop::collection::vec(select(TEMPLATE_BITS), 0..8).prop_map(|v| v.concat())
}

fn scalar() -> impl Strategy<Value = Tree> {
    // Words may be plain or quoted; templates and random text are quoted
    // (mostly: unquoted they rarely get past the YAML parser).
    let word = prop_oneof![
        3 => select(SCALARS).prop_map(str::to_string),
        1 => select(MODULES).prop_map(str::to_string),
    ];
    let text = prop_oneof![3 => template(), 1 => "[ -~]{0,12}"];
    prop_oneof![
        (word, any::<bool>()).prop_map(|(s, quoted)| Tree::Scalar(s, quoted)),
        (text, prop::bool::weighted(0.9)).prop_map(|(s, quoted)| Tree::Scalar(s, quoted)),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => select(KEYS).prop_map(str::to_string),
        2 => select(ARGS).prop_map(str::to_string),
        1 => select(MODULES).prop_map(str::to_string),
        1 => "[a-z_]{1,6}",
    ]
}

fn tree() -> impl Strategy<Value = Tree> {
    let leaf = prop_oneof![12 => scalar(), 1 => (0u8..3).prop_map(Tree::Alias)];
    leaf.prop_recursive(4, 40, 6, |inner| {
        let anchor = prop::option::weighted(0.3, 0u8..3);
        prop_oneof![
            (
                prop::collection::vec(inner.clone(), 0..5),
                anchor.clone(),
                any::<bool>()
            )
                .prop_map(|(items, a, flow)| Tree::Seq(items, a, flow)),
            (
                prop::collection::vec((key(), inner), 0..5),
                anchor,
                any::<bool>()
            )
                .prop_map(|(entries, a, flow)| Tree::Map(entries, a, flow)),
        ]
    })
}

/// A task: one module with arguments, plus a few task keywords.
fn task() -> impl Strategy<Value = Tree> {
    let args = prop_oneof![
        scalar(),
        prop::collection::vec((select(ARGS).prop_map(str::to_string), tree()), 0..4)
            .prop_map(|e| Tree::Map(e, None, false)),
    ];
    (
        select(MODULES),
        args,
        prop::collection::vec((select(KEYS).prop_map(str::to_string), tree()), 0..3),
        prop::option::weighted(0.2, 0u8..3),
    )
        .prop_map(|(module, args, mut rest, anchor)| {
            rest.insert(0, (module.to_string(), args));
            Tree::Map(rest, anchor, false)
        })
}

fn play() -> impl Strategy<Value = Tree> {
    (
        scalar(),
        prop::collection::vec(task(), 0..4),
        prop::collection::vec((select(KEYS).prop_map(str::to_string), tree()), 0..2),
    )
        .prop_map(|(hosts, tasks, mut rest)| {
            rest.insert(0, ("hosts".into(), hosts));
            rest.push(("tasks".into(), Tree::Seq(tasks, None, false)));
            Tree::Map(rest, None, false)
        })
}

fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn anchor(a: Option<u8>) -> String {
    a.map(|a| format!("&a{a} ")).unwrap_or_default()
}

/// Print in flow style (one line).
fn flow(t: &Tree, out: &mut String, known: &mut Vec<u8>) {
    match t {
        Tree::Scalar(s, true) => out.push_str(&quote(s)),
        Tree::Scalar(s, false) => out.push_str(s),
        // Mostly aliases to anchors already printed; an unknown one now and
        // then.
        Tree::Alias(a) => match known.iter().rev().nth(usize::from(*a)) {
            Some(k) => out.push_str(&format!("*a{k}")),
            None if *a == 0 => out.push_str("*a0"),
            None => out.push('x'),
        },
        Tree::Seq(items, a, _) => {
            out.push_str(&anchor(*a));
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                flow(item, out, known);
            }
            out.push(']');
            known.extend(*a);
        }
        Tree::Map(entries, a, _) => {
            out.push_str(&anchor(*a));
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(k);
                out.push_str(": ");
                flow(v, out, known);
            }
            out.push('}');
            known.extend(*a);
        }
    }
}

fn is_block(t: &Tree) -> bool {
    match t {
        Tree::Seq(items, _, f) => !f && !items.is_empty(),
        Tree::Map(entries, _, f) => !f && !entries.is_empty(),
        _ => false,
    }
}

/// Print in block style at `indent`, starting on a fresh line.
fn block(t: &Tree, indent: usize, out: &mut String, known: &mut Vec<u8>) {
    let pad = " ".repeat(indent);
    match t {
        Tree::Seq(items, _, false) if !items.is_empty() => {
            for item in items {
                out.push_str(&pad);
                out.push('-');
                value(item, indent + 2, out, known);
            }
        }
        Tree::Map(entries, _, false) if !entries.is_empty() => {
            for (k, v) in entries {
                out.push_str(&pad);
                out.push_str(k);
                out.push(':');
                value(v, indent + 2, out, known);
            }
        }
        other => {
            out.push_str(&pad);
            flow(other, out, known);
            out.push('\n');
        }
    }
}

/// Print a value after `key:` or `-`.
fn value(t: &Tree, indent: usize, out: &mut String, known: &mut Vec<u8>) {
    if is_block(t) {
        let a = match t {
            Tree::Seq(_, a, _) | Tree::Map(_, a, _) => *a,
            _ => None,
        };
        if let Some(a) = a {
            out.push_str(&format!(" &a{a}"));
        }
        out.push('\n');
        block(t, indent, out, known);
        known.extend(a);
    } else {
        out.push(' ');
        flow(t, out, known);
        out.push('\n');
    }
}

fn render(t: &Tree) -> String {
    let mut out = String::new();
    block(t, 0, &mut out, &mut Vec::new());
    out
}

fn small_inventory() -> Inventory {
    Inventory::from_str(
        "all:\n  hosts:\n    h1: {}\n    localhost: {ansible_connection: local}\n",
        Path::new("fuzz/hosts.yml"),
    )
    .unwrap_or_default()
}

/// Everything that reads `text` before a run: may refuse it, never panic.
fn read_everything(text: &str) {
    let _ = crate::yaml::load_str(text, Path::new("fuzz/any.yml"));
    let _ = Inventory::from_str(text, Path::new("fuzz/hosts.yml"));
    let _ = Inventory::from_str(text, Path::new("fuzz/hosts"));
    if let Ok(pb) = load_playbook_str(text, Path::new("fuzz/play.yml")) {
        let inv = small_inventory();
        let _ = check::check(&pb, &inv, &Map::new());
    }
    crate::yaml::take_warnings();
}

proptest! {
    #[test]
    fn playbook_like_yaml_never_panics(plays in prop::collection::vec(play(), 0..3)) {
        read_everything(&render(&Tree::Seq(plays, None, false)));
    }

    #[test]
    fn random_yaml_trees_never_panic(t in tree()) {
        read_everything(&render(&t));
    }

    #[test]
    fn token_soup_never_panics(bits in prop::collection::vec(select(RAW_BITS), 0..40)) {
        read_everything(&bits.concat());
    }

    #[test]
    fn template_syntax_checks_never_panic(source in template()) {
        let _ = Templar::syntax_error(&source, true);
        let _ = Templar::syntax_error(&source, false);
        let _ = Templar::new().referenced(&source, false);
    }
}

#[test]
fn generated_playbooks_are_mostly_valid_yaml() {
    // The generator is only useful if most of what it prints gets past the
    // YAML parser into the loader and the check.
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = prop::collection::vec(play(), 1..3);
    let mut parsed = 0;
    for _ in 0..200 {
        let Ok(tree) = strategy.new_tree(&mut runner) else {
            continue;
        };
        let text = render(&Tree::Seq(tree.current(), None, false));
        if crate::yaml::parse(
            &text,
            Path::new("g.yml"),
            crate::yaml::DuplicateKeys::Ignore,
        )
        .is_ok()
        {
            parsed += 1;
        }
    }
    assert!(
        parsed > 100,
        "only {parsed} of 200 generated playbooks parse"
    );
}
