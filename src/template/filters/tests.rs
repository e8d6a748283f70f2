//! Filters and tests rendered through an Environment. Expected outputs were
//! taken from ansible-core 2.19 (its filter functions called directly).

use minijinja::{Environment, UndefinedBehavior, Value};
use serde_json::json;

use super::register;

fn env() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    register(&mut env);
    env
}

fn render_with(template: &str, ctx: serde_json::Value) -> String {
    env()
        .render_str(template, crate::template::to_value(ctx))
        .unwrap_or_else(|e| panic!("{template}: {e:#}"))
}

fn render(template: &str) -> String {
    render_with(template, json!({}))
}

fn render_err(template: &str, ctx: serde_json::Value) -> String {
    match env().render_str(template, crate::template::to_value(ctx)) {
        Ok(out) => panic!("{template} rendered {out:?}, expected an error"),
        Err(e) => format!("{e:#}"),
    }
}

/// Evaluate an expression to JSON.
fn eval(expr: &str, ctx: serde_json::Value) -> serde_json::Value {
    let env = env();
    let compiled = env
        .compile_expression(expr)
        .unwrap_or_else(|e| panic!("{expr}: {e:#}"));
    let v: Value = compiled
        .eval(crate::template::to_value(ctx))
        .unwrap_or_else(|e| panic!("{expr}: {e:#}"));
    serde_json::to_value(&v).expect("json")
}

fn e(expr: &str) -> serde_json::Value {
    eval(expr, json!({}))
}

#[test]
fn bool_like_ansible() {
    assert_eq!(
        e("['Yes', 'on', '1', 'TRUE', 'no', 1, 0, true, 'off', 'maybe', 2, 1.0, none] | map('bool') | list"),
        json!([true, true, true, true, false, true, false, true, false, false, false, true, false])
    );
    assert_eq!(e("'yes' | ansible.builtin.bool"), json!(true));
}

#[test]
fn int_and_float_like_jinja() {
    assert_eq!(
        e("['42', ' 7 ', '42.9', 'abc', '-3', true, 3.99, '1_000', none] | map('int') | list"),
        json!([42, 7, 42, 0, -3, 1, 3, 1000, 0])
    );
    assert_eq!(e("'abc' | int(5)"), json!(5));
    assert_eq!(e("'ff' | int(base=16)"), json!(255));
    assert_eq!(e("'0x1f' | int(base=16)"), json!(31));
    assert_eq!(
        e("['1.5', '1e3', 'x', 2] | map('float') | list"),
        json!([1.5, 1000.0, 0.0, 2.0])
    );
    assert_eq!(e("'x' | float(default=1.5)"), json!(1.5));
}

#[test]
fn default_with_boolean() {
    assert_eq!(render("{{ missing | default('d') }}"), "d");
    assert_eq!(render("{{ '' | default('d') }}"), "");
    assert_eq!(render("{{ '' | default('d', true) }}"), "d");
    assert_eq!(render("{{ '' | default('d', boolean=true) }}"), "d");
    assert_eq!(render("{{ 'x' | d('d', boolean=true) }}"), "x");
    assert_eq!(render("{{ missing | d }}"), "");
}

#[test]
fn mandatory_and_ternary_and_type_debug() {
    assert_eq!(render_with("{{ x | mandatory }}", json!({"x": 1})), "1");
    let msg = render_err("{{ x | mandatory }}", json!({}));
    assert!(msg.contains("Mandatory variable not defined."), "{msg}");
    let msg = render_err("{{ x | mandatory('set x please') }}", json!({}));
    assert!(msg.contains("set x please"), "{msg}");
    assert_eq!(render("{{ (1 > 0) | ternary('yes', 'no') }}"), "yes");
    assert_eq!(render("{{ '' | ternary('yes', 'no') }}"), "no");
    assert_eq!(render("{{ none | ternary('yes', 'no', 'null') }}"), "null");
    assert_eq!(
        e("[{}, [], 's', 1, 1.5, none, true] | map('type_debug') | list"),
        json!(["dict", "list", "str", "int", "float", "NoneType", "bool"])
    );
}

#[test]
fn json_like_python() {
    let ctx = json!({"d": {"b": [1, 2.5, {"x": null}], "a": "héllo \"q\"\n", "c": true, "e": 1e16, "f": 1e-5, "g": {}, "h": []}});
    assert_eq!(
        render_with("{{ d | to_json }}", ctx.clone()),
        r#"{"b": [1, 2.5, {"x": null}], "a": "h\u00e9llo \"q\"\n", "c": true, "e": 1e+16, "f": 1e-05, "g": {}, "h": []}"#
    );
    assert_eq!(
        render_with("{{ d | to_nice_json }}", ctx.clone()),
        "{\n    \"a\": \"h\\u00e9llo \\\"q\\\"\\n\",\n    \"b\": [\n        1,\n        2.5,\n        {\n            \"x\": null\n        }\n    ],\n    \"c\": true,\n    \"e\": 1e+16,\n    \"f\": 1e-05,\n    \"g\": {},\n    \"h\": []\n}"
    );
    assert_eq!(
        render("{{ {'b': 1, 'a': 'é'} | to_json(sort_keys=true, ensure_ascii=false) }}"),
        r#"{"a": "é", "b": 1}"#
    );
    assert_eq!(
        render("{{ [1, 2] | to_nice_json(indent=2) }}"),
        "[\n  1,\n  2\n]"
    );
    assert_eq!(
        render("{{ {'a': [1]} | to_json(separators=[',', ':']) }}"),
        r#"{"a":[1]}"#
    );
    assert_eq!(
        e(r#"'{"a": [1, 2.5, null]}' | from_json"#),
        json!({"a": [1, 2.5, null]})
    );
    assert!(render_err("{{ 'nope' | from_json }}", json!({})).contains("invalid JSON"));
}

#[test]
fn yaml_like_ansible() {
    let ctx = json!({"d": {"b": [1, 2.5, {"x": null}], "a": "héllo \"q\"\n", "c": true, "e": 1e16, "f": 1e-5, "g": {}, "h": []}});
    assert_eq!(
        render_with("{{ d | to_yaml }}", ctx.clone()),
        "a: 'héllo \"q\"\n\n  '\nb:\n- 1\n- 2.5\n- {x: null}\nc: true\ne: 1.0e+16\nf: 1.0e-05\ng: {}\nh: []\n"
    );
    assert_eq!(
        render_with("{{ d | to_nice_yaml }}", ctx),
        "a: 'héllo \"q\"\n\n    '\nb:\n- 1\n- 2.5\n-   x: null\nc: true\ne: 1.0e+16\nf: 1.0e-05\ng: {}\nh: []\n"
    );
    assert_eq!(render("{{ 'abc' | to_yaml }}"), "abc\n");
    assert_eq!(render("{{ 5 | to_yaml }}"), "5\n");
    assert_eq!(
        render("{{ ['a', {'k': [1, 2]}, [3, [4]]] | to_nice_yaml }}"),
        "- a\n-   k:\n    - 1\n    - 2\n-   - 3\n    -   - 4\n"
    );
    assert_eq!(
        render("{{ {'a': [1, {'b': 2}], 'c': [1, 2], 'd': {'e': 'f'}} | to_yaml }}"),
        "a:\n- 1\n- {b: 2}\nc: [1, 2]\nd: {e: f}\n"
    );
    let scalars = json!({"v": {"z": 1, "a": {"y": "yes", "n": "null", "i": "123", "o": "0644", "t": "~", "e": "", "s": " lead", "c": "a: b", "h": "a #b", "d": "-x", "q": "it's", "l": format!("{} {}", "x".repeat(100), "y".repeat(10))}}});
    assert_eq!(
        render_with("{{ v | to_nice_yaml }}", scalars),
        format!(
            "a:\n    c: 'a: b'\n    d: -x\n    e: ''\n    h: 'a #b'\n    i: '123'\n    l: {}\n        yyyyyyyyyy\n    n: 'null'\n    o: '0644'\n    q: it's\n    s: ' lead'\n    t: '~'\n    y: 'yes'\nz: 1\n",
            "x".repeat(100)
        )
    );
    assert_eq!(
        render("{{ {'b': 1, 'a': 2} | to_nice_yaml(indent=2, sort_keys=false) }}"),
        "b: 1\na: 2\n"
    );
    assert_eq!(
        render("{{ {'a': 1} | to_yaml(explicit_start=true) }}"),
        "--- {a: 1}\n"
    );
    assert_eq!(
        render("{{ {'a': 1} | to_nice_yaml(explicit_start=true) }}"),
        "---\na: 1\n"
    );
    assert_eq!(render("{{ 'tab\there' | to_yaml }}"), "\"tab\\there\"\n");
}

#[test]
fn from_yaml_uses_yaml_1_1() {
    assert_eq!(
        e("'a: yes\nb: 0644\nc: [1, x]\n' | from_yaml"),
        json!({"a": true, "b": 420, "c": [1, "x"]})
    );
    assert_eq!(
        e("'a: 1\n---\nb: 2\n...\n---\n- x\n' | from_yaml_all"),
        json!([{"a": 1}, {"b": 2}, ["x"]])
    );
    assert_eq!(e("'' | from_yaml_all"), json!([]));
    assert_eq!(e("'--- 5\n' | from_yaml_all"), json!([5]));
    assert!(render_err("{{ 'a: [1' | from_yaml }}", json!({})).contains("from_yaml"));
}

#[test]
fn base64_hashes_and_uuid() {
    assert_eq!(render("{{ 'héllo' | b64encode }}"), "aMOpbGxv");
    assert_eq!(render("{{ 'aMOpbGxv' | b64decode }}"), "héllo");
    assert_eq!(render("{{ 'aMOp\nbGxv' | b64decode }}"), "héllo");
    assert_eq!(render("{{ 'aGk' | b64decode }}"), "hi");
    assert_eq!(render("{{ '??>' | b64encode(urlsafe=true) }}"), "Pz8-");
    assert_eq!(render("{{ 'Pz8-' | b64decode(urlsafe=true) }}"), "??>");
    assert_eq!(
        render("{{ 'hi' | b64encode(encoding='utf-16-le') }}"),
        "aABpAA=="
    );
    assert_eq!(
        render("{{ 'abc' | hash }}"),
        "a9993e364706816aba3e25717850c26c9cd0d89d"
    );
    assert_eq!(
        render("{{ 'abc' | sha1 }}"),
        "a9993e364706816aba3e25717850c26c9cd0d89d"
    );
    assert_eq!(
        render("{{ 'abc' | hash('sha256') }}"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    // copy's "legacy md5sum" check: `'foo.txt\n' | hash('md5')`.
    assert_eq!(
        render("{{ 'abc' | hash('md5') }} {{ 'abc' | md5 }}"),
        "900150983cd24fb0d6963f7d28e17f72 900150983cd24fb0d6963f7d28e17f72"
    );
    assert_eq!(
        render("{{ 'pi-master' | to_uuid }}"),
        "ac30a486-0dd1-58cf-ab65-dbe83198037f"
    );
}

#[test]
fn regex_filters() {
    assert_eq!(
        render(r"{{ 'foo bar' | regex_replace('(\\w+) (\\w+)', '\\2 \\g<1>') }}"),
        "bar foo"
    );
    assert_eq!(
        render("{{ 'ABC' | regex_replace('b', 'x', ignorecase=true) }}"),
        "AxC"
    );
    assert_eq!(
        render("{{ 'a\nb' | regex_replace('^', '> ', multiline=true) }}"),
        "> a\n> b"
    );
    assert_eq!(
        render("{{ 'aaa' | regex_replace('a', 'b', count=2) }}"),
        "bba"
    );
    assert!(render_err(
        "{{ 'aaa' | regex_replace('a', 'b', mandatory_count=2) }}",
        json!({})
    )
    .contains("should match 2 times"));
    assert_eq!(
        e(r"'abc123def' | regex_search('(\\d)(\\d)', '\\2', '\\1')"),
        json!(["2", "1"])
    );
    assert_eq!(
        e(r"'k3s v1.30' | regex_search('v(?P<ver>[\\d.]+)', '\\g<ver>')"),
        json!(["1.30"])
    );
    assert_eq!(e(r"'abc123' | regex_search('\\d+')"), json!("123"));
    assert_eq!(e("'abc' | regex_search('x')"), json!(null));
    assert_eq!(
        e(r"'a1b2' | regex_findall('([a-z])(\\d)')"),
        json!([["a", "1"], ["b", "2"]])
    );
    assert_eq!(e(r"'a1b2' | regex_findall('\\d')"), json!(["1", "2"]));
    assert_eq!(
        e(r"'a1b2' | regex_findall('[a-z](\\d)')"),
        json!(["1", "2"])
    );
    assert_eq!(
        e("'A1a2' | regex_findall('a\\\\d', ignorecase=true)"),
        json!(["A1", "a2"])
    );
    assert_eq!(
        render("{{ 'a.b*c[d] e-f_g/h#' | regex_escape }}"),
        r"a\.b\*c\[d\]\ e\-f_g/h\#"
    );
    assert_eq!(
        render("{{ 'a.b*' | regex_escape('posix_basic') }}"),
        r"a\.b\*"
    );
}

#[test]
fn regular_expressions_have_pythons_look_around_and_backreferences() {
    // A backreference inside the pattern.
    assert_eq!(render(r"{{ 'aab' | regex_replace('(a)\\1', 'X') }}"), "Xb");
    // Negative look-ahead, as the Raspberry Pi cmdline.txt edits use it.
    assert_eq!(
        render(
            r"{{ 'console=tty1 rootwait' | regex_replace('^((?!.*cgroup_enable).*)$', '\\1 cgroup_enable=memory') }}"
        ),
        "console=tty1 rootwait cgroup_enable=memory"
    );
    assert_eq!(
        render(
            r"{{ 'a cgroup_enable=memory' | regex_replace('^((?!.*cgroup_enable).*)$', '\\1 x') }}"
        ),
        "a cgroup_enable=memory"
    );
    // Look-behind in a search and a test.
    assert_eq!(
        render(r"{{ 'token=abc' | regex_search('(?<=token=)\\w+') }}"),
        "abc"
    );
    assert_eq!(render(r"{{ 'foobar' is search('(?<!x)bar') }}"), "True");
}

#[test]
fn paths() {
    assert_eq!(
        e("['/a/b', '/a/b/', 'a'] | map('basename') | list"),
        json!(["b", "", "a"])
    );
    assert_eq!(
        e("['/a/b', 'a', '/a', '/a/b/', '//a'] | map('dirname') | list"),
        json!(["/a", "", "/", "/a/b", "//"])
    );
    assert_eq!(
        e("['a.tar.gz', '.bashrc', 'dir.d/file', 'x.'] | map('splitext') | list"),
        json!([
            ["a.tar", ".gz"],
            [".bashrc", ""],
            ["dir.d/file", ""],
            ["x", "."]
        ])
    );
    assert_eq!(
        e("['/etc', 'k3s', 'config.yaml'] | path_join"),
        json!("/etc/k3s/config.yaml")
    );
    assert_eq!(e("['a', '/b', 'c'] | path_join"), json!("/b/c"));
    assert_eq!(
        e("['/a/./b/../c/', 'a//b', '../x', '//x', '///x', ''] | map('normpath') | list"),
        json!(["/a/c", "a/b", "../x", "//x", "/x", "."])
    );
    assert_eq!(render("{{ '/' | realpath }}"), "/");
    let home = std::env::var("HOME").unwrap_or_default();
    if !home.is_empty() {
        assert_eq!(
            render("{{ '~/x' | expanduser }}"),
            format!("{}/x", home.trim_end_matches('/'))
        );
    }
    assert_eq!(render("{{ \"it's ok\" | quote }}"), r#"'it'"'"'s ok'"#);
    assert_eq!(render("{{ '' | quote }}"), "''");
    assert_eq!(render("{{ 'abc-/.:,=+@%_1' | quote }}"), "abc-/.:,=+@%_1");
    assert_eq!(render("{{ 'héllo' | quote }}"), "'héllo'");
    assert_eq!(render("{{ none | quote }}"), "''");
}

#[test]
fn path_tests_on_the_control_machine() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("f");
    std::fs::write(&file, "x").expect("write");
    let link = dir.path().join("l");
    std::os::unix::fs::symlink(&file, &link).expect("symlink");
    let ctx = json!({"d": dir.path(), "f": file, "l": link, "n": dir.path().join("nope")});
    let t = "{{ [d is directory, f is file, d is file, f is exists, n is exists, l is link, f is link, l is link_exists, f is abs, 'x' is abs, f is same_file(l), f is same_file(d), '/' is mount, d is mount] | to_json }}";
    assert_eq!(
        render_with(t, ctx),
        "[true, true, false, true, false, true, false, true, true, false, true, false, true, false]"
    );
}

#[test]
fn data_structure_filters() {
    assert_eq!(
        e("{'a': {'x': 1, 'l': [1]}, 'b': 1} | combine({'a': {'y': 2, 'l': [2]}}, recursive=true, list_merge='append')"),
        json!({"a": {"x": 1, "l": [1, 2], "y": 2}, "b": 1})
    );
    assert_eq!(
        e("{'a': {'x': 1}} | combine({'a': {'y': 2}})"),
        json!({"a": {"y": 2}})
    );
    assert_eq!(
        e("[{'a': 1}, {'b': 2}, {'a': 3}] | combine"),
        json!({"a": 3, "b": 2})
    );
    assert_eq!(
        e("{'a': 1} | combine({'b': 2}, {'a': 0})"),
        json!({"a": 0, "b": 2})
    );
    assert!(render_err("{{ {'a': 1} | combine([1]) }}", json!({})).contains("expected dicts"));
    assert_eq!(
        e("{'a': 1, 'b': 2} | dict2items"),
        json!([{"key": "a", "value": 1}, {"key": "b", "value": 2}])
    );
    assert_eq!(
        e("{'a': 1} | dict2items(key_name='k', value_name='v')"),
        json!([{"k": "a", "v": 1}])
    );
    assert_eq!(
        e("[{'key': 'a', 'value': 1}] | items2dict"),
        json!({"a": 1})
    );
    assert_eq!(
        e("[{'n': 'a', 'v': 1}] | items2dict(key_name='n', value_name='v')"),
        json!({"a": 1})
    );
    assert!(
        render_err("{{ [{'x': 1}] | items2dict }}", json!({})).contains("requires each dictionary")
    );
    assert_eq!(
        e("[1, [2, [3, none, 'null']], 'None'] | flatten(levels=1)"),
        json!([1, 2, [3, null, "null"]])
    );
    assert_eq!(e("[1, [2, [3, none]]] | flatten"), json!([1, 2, 3]));
    assert_eq!(
        e("[1, [none]] | flatten(skip_nulls=false)"),
        json!([1, null])
    );
    assert_eq!(
        e("[1, 2] | zip(['a', 'b']) | list"),
        json!([[1, "a"], [2, "b"]])
    );
    assert_eq!(
        e("[1, 2, 3] | zip_longest(['a'], fillvalue='-')"),
        json!([[1, "a"], [2, "-"], [3, "-"]])
    );
    assert_eq!(
        e("[1, 2] | product(['a', 'b'])"),
        json!([[1, "a"], [1, "b"], [2, "a"], [2, "b"]])
    );
    assert_eq!(e("[3, 1, 2] | difference([2])"), json!([3, 1]));
    assert_eq!(e("[3, 1, 2, 3] | intersect([2, 3])"), json!([3, 2]));
    assert_eq!(e("[1, 2] | union([2, 3])"), json!([1, 2, 3]));
    assert_eq!(e("[1, 2] | symmetric_difference([2, 3])"), json!([1, 3]));
    assert_eq!(e("['a', 'A', 'b'] | unique"), json!(["a", "b"]));
    assert_eq!(
        e("['a', 'A', 'b'] | unique(case_sensitive=true)"),
        json!(["a", "A", "b"])
    );
    assert_eq!(
        e("['w1', 'w2'] | map('extract', {'w1': {'ip': 1}, 'w2': {'ip': 2}}, 'ip') | list"),
        json!([1, 2])
    );
    assert_eq!(e("0 | extract(['x', 'y'])"), json!("x"));
    assert_eq!(
        e("[{'name': 'alice', 'groups': ['wheel', 'adm']}, {'name': 'bob', 'groups': []}] | subelements('groups') | map('last') | list"),
        json!(["wheel", "adm"])
    );
    assert_eq!(
        e("[{'name': 'a'}] | subelements('groups', skip_missing=true)"),
        json!([])
    );
    assert_eq!(
        e("[100 | log(10), 8 | pow(2) | int, 27 | root(3) | round(6), 16 | root]"),
        json!([2.0, 64, 3.0, 4.0])
    );
    assert_eq!(e("'a b  c' | split"), json!(["a", "b", "c"]));
    assert_eq!(e("'a,b,c' | split(',', 1)"), json!(["a", "b,c"]));
}

#[test]
fn unknown_arguments_are_errors() {
    let msg = render_err("{{ 'x' | regex_replace('a', 'b', bogus=1) }}", json!({}));
    assert!(msg.contains("unexpected keyword argument `bogus`"), "{msg}");
    let msg = render_err("{{ 1 | ternary(1, 2, 3, 4) }}", json!({}));
    assert!(msg.contains("at most 3"), "{msg}");
}

#[test]
fn regex_tests() {
    assert_eq!(
        render("{{ ['pi-master' is match('pi-'), 'pi-master' is match('master'), 'pi-master' is search('master'), 'PI' is match('pi', ignorecase=true), 'a\nb' is search('^b', multiline=true), 'ab' is regex('b'), 'ab' is regex('b', match_type='match')] | to_json }}"),
        "[true, false, true, true, true, true, false]"
    );
    assert_eq!(
        e("['pi-worker-01', 'pi-master', 'pi-worker-02'] | select('match', 'pi-worker') | list"),
        json!(["pi-worker-01", "pi-worker-02"])
    );
}

#[test]
fn truthiness_tests() {
    assert_eq!(
        render("{{ ['false' is truthy, 'false' is truthy(convert_bool=true), '' is falsy, 'no' is falsy(convert_bool=true), 1 is truthy] | to_json }}"),
        "[true, false, true, true, true]"
    );
}

#[test]
fn result_tests() {
    let ctx = json!({
        "ok": {"changed": false, "rc": 0},
        "bad": {"failed": true, "msg": "x"},
        "chg": {"changed": true},
        "skip": {"skipped": true, "changed": false},
        "loop": {"results": [{"changed": false}, {"changed": true}]},
        "gone": {"unreachable": true},
        "job": {"finished": 0, "started": 1},
    });
    let t = "{{ [ok is succeeded, ok is success, ok is failed, bad is failed, bad is failure, bad is successful, \
             chg is changed, ok is changed, chg is change, loop is changed, {} is changed, skip is skipped, skip is skip, ok is skipped, \
             gone is unreachable, gone is reachable, ok is reachable, job is finished, job is started, ok is finished] | to_json }}";
    assert_eq!(
        render_with(t, ctx),
        "[true, true, false, true, true, false, true, false, true, true, false, true, true, false, true, false, true, false, true, true]"
    );
    let msg = render_err("{{ 'x' is failed }}", json!({}));
    assert!(msg.contains("expects a dictionary"), "{msg}");
    assert_eq!(
        e("[{'failed': true, 'item': 1}, {'failed': false, 'item': 2}] | selectattr('failed') | map(attribute='item') | list"),
        json!([1])
    );
    assert_eq!(
        e("[{'failed': true, 'item': 1}, {'item': 2}] | reject('failed') | map(attribute='item') | list"),
        json!([2])
    );
}

#[test]
fn version_tests() {
    assert_eq!(
        render("{{ ['1.10' is version('1.9', 'gt'), '2.0' is version('10.0', '<'), 'v1.30.0+k3s1' is version('v1.29.9+k3s2', '>='), '1.2.3' is version_compare('1.2.3'), '1.2.3-rc.1' is version('1.2.3', 'lt', version_type='semver'), '1.2' is version('1.10', 'lt', strict=true)] | to_json }}"),
        "[true, true, true, true, true, true]"
    );
    let msg = render_err("{{ '1.0' is version('1.0', 'between') }}", json!({}));
    assert!(msg.contains("invalid operator"), "{msg}");
    let msg = render_err("{{ '1.a' is version('1.1', 'lt') }}", json!({}));
    assert!(msg.contains("Version comparison failed"), "{msg}");
}

#[test]
fn set_and_misc_tests() {
    assert_eq!(
        render("{{ [[1, 2] is subset([1, 2, 3]), [1, 4] is subset([1, 2]), [1, 2, 3] is superset([3]), [1, 2] is contains(2), [1, 2] is contains(5), [0, 1] is any, [0, 1] is all, [] is all, (0.0 / 0.0 if false else 1.0) is nan] | to_json }}"),
        "[true, false, true, true, false, true, false, true, false]"
    );
    assert_eq!(
        render_with("{{ x is ansible.builtin.defined }}", json!({"x": 1})),
        "True"
    );
    assert_eq!(render("{{ x is ansible.builtin.undefined }}"), "True");
    assert_eq!(render("{{ 'a:b' is ansible.builtin.match('a') }}"), "True");
}

#[test]
fn python_methods_on_strings() {
    let t = "{{ [s.split(','), s.split(',', 1), '  x y '.split(), s.rsplit(',', 1), s.upper(), 'AbC'.lower(), '  pad  '.strip(), 'xxhixx'.strip('x'), \
             '  l'.lstrip(), 'r  '.rstrip(), s.startswith('a'), s.startswith(['z', 'a,']), s.endswith('c'), s.replace(',', ';'), s.replace(',', ';', 1), \
             s.find('b'), s.find('z'), s.count(','), '-'.join(['a', 'b']), 'hello world'.title(), 'hello'.capitalize(), '5'.zfill(3), \
             'ab'.center(6, '*'), 'x'.ljust(3, '.'), 'x'.rjust(3), 'a=b=c'.partition('='), 'a=b=c'.rpartition('='), '123'.isdigit(), 'ab'.isalpha(), \
             'a\\nb'.splitlines(), 'v1.2'.removeprefix('v'), '{}-{:02d}-{name}'.format('w', 7, name='x')] | to_json }}";
    assert_eq!(
        render_with(t, json!({"s": "a,b,c"})),
        r#"[["a", "b", "c"], ["a", "b,c"], ["x", "y"], ["a,b", "c"], "A,B,C", "abc", "pad", "hi", "l", "r", true, true, true, "a;b;c", "a;b,c", 2, -1, 2, "a-b", "Hello World", "Hello", "005", "**ab**", "x..", "  x", ["a", "=", "b=c"], ["a=b", "=", "c"], true, true, ["a", "b"], "1.2", "w-07-x"]"#
    );
    let msg = render_err("{{ 'x'.nosuchmethod() }}", json!({}));
    assert!(msg.contains("nosuchmethod"), "{msg}");
}

#[test]
fn python_methods_on_dicts_and_lists() {
    let ctx = json!({"d": {"b": 1, "a": 2}, "l": [1, 2, 2]});
    assert_eq!(
        render_with("{{ [d.keys() | list, d.values() | list, d.items() | list, d.get('a'), d.get('z'), d.get('z', 9), l.index(2), l.count(2)] | to_json }}", ctx.clone()),
        r#"[["b", "a"], [1, 2], [["b", 1], ["a", 2]], 2, null, 9, 1, 2]"#
    );
    assert_eq!(
        render_with(
            "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}",
            ctx
        ),
        "b=1;a=2;"
    );
}

/// Regression: libyaml (which Ansible uses) differs from pure-Python PyYAML
/// on empty keys, `\r`, characters beyond the BMP and double-quoted folding.
#[test]
fn yaml_follows_libyaml_not_pure_python() {
    let ctx = json!({
        "a": {"": [1], "cr\rlf": "x", "\u{1F600}": "é"},
        "b": ["a  b ".repeat(12) + "tab\tend"],
        "c": {"k": "word ".repeat(30)},
    });
    assert_eq!(
        render_with("{{ a | to_nice_yaml(width=30) }}", ctx.clone()),
        "'':\n- 1\n? \"cr\\rlf\"\n: x\n\"\\U0001F600\": é\n"
    );
    assert_eq!(
        render_with("{{ b | to_nice_yaml(width=30) }}", ctx.clone()),
        "- \"a  b a  b a  b a  b a  b a  b\n    a  b a  b a  b a  b a  b a  b\n    tab\\tend\"\n"
    );
    assert_eq!(
        render_with("{{ c | to_nice_yaml(width=30) }}", ctx),
        format!(
            "k: '{}'\n",
            ["word word word word word word"; 5].join("\n    ") + " "
        )
    );
}

/// `from_yaml` reads through drover's loader, so an alias bomb in a
/// variable is refused as in a file, not expanded.
#[test]
fn from_yaml_refuses_an_alias_bomb() {
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 9].join(", ");
        bomb.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    let msg = render_err("{{ bomb | from_yaml }}", json!({ "bomb": bomb }));
    assert!(msg.contains("<from_yaml>:"), "{msg}");
    assert!(msg.contains("alias"), "{msg}");
}

/// `random` was missing: the user and group targets pick a name with
/// `stdout_lines | random` and failed on an unknown filter.
#[test]
fn random_filter_picks_from_a_list_or_a_range() {
    let ctx = json!({ "names": ["a", "b", "c"] });
    for _ in 0..20 {
        let v = eval("names | random", ctx.clone());
        assert!(["a", "b", "c"].contains(&v.as_str().unwrap_or("")), "{v}");
        let n = eval("10 | random", json!({})).as_i64().unwrap_or(-1);
        assert!((0..10).contains(&n), "{n}");
        let n = eval("20 | random(start=5, step=5)", json!({}))
            .as_i64()
            .unwrap_or(-1);
        assert!([5, 10, 15].contains(&n), "{n}");
        let n = eval("0 | random(start=9, step=-3)", json!({}))
            .as_i64()
            .unwrap_or(-1);
        assert!([9, 6, 3].contains(&n), "{n}");
        let c = eval("'xy' | random", json!({}));
        assert!(c == json!("x") || c == json!("y"), "{c}");
    }
    assert_eq!(eval("1 | random", json!({})), json!(0));
}

/// With `seed` the result is the same on every call (Ansible's `Random(seed)`).
#[test]
fn random_filter_with_seed_is_deterministic() {
    let ctx = json!({ "names": (0..100).collect::<Vec<i32>>() });
    let first = eval("names | random(seed='host1')", ctx.clone());
    let first_n = eval("1000000 | random(seed=42)", json!({}));
    for _ in 0..10 {
        assert_eq!(eval("names | random(seed='host1')", ctx.clone()), first);
        assert_eq!(eval("1000000 | random(seed=42)", json!({})), first_n);
    }
}

#[test]
fn random_filter_refuses_what_ansible_refuses() {
    let msg = render_err("{{ [] | random }}", json!({}));
    assert!(msg.contains("empty sequence"), "{msg}");
    let msg = render_err("{{ 0 | random }}", json!({}));
    assert!(msg.contains("empty range"), "{msg}");
    let msg = render_err("{{ [1] | random(start=1) }}", json!({}));
    assert!(msg.contains("start and step"), "{msg}");
    let msg = render_err("{{ 1.5 | random }}", json!({}));
    assert!(msg.contains("sequences and integers"), "{msg}");
}

#[test]
fn first_found_refuses_a_term_that_is_no_name() {
    let msg = render_err("{{ lookup('first_found', [1]) }}", json!({}));
    assert!(
        msg.contains("A string, dict or list is required, not 'int'"),
        "{msg}"
    );
}

#[test]
fn with_first_found_looks_under_the_actions_subdirectory_first() {
    // A role's include_vars loop over `{{ os_family }}.yml` finds
    // vars/Debian.yml, not the tasks/Debian.yml beside the task, as
    // Ansible's first_found does for include_vars.
    let tmp = tempfile::tempdir().expect("tmp");
    let role = tmp.path().join("zabbix_repo");
    for d in ["tasks", "vars"] {
        std::fs::create_dir_all(role.join(d)).expect("mkdir");
        std::fs::write(role.join(d).join("Debian.yml"), "x: 1\n").expect("write");
    }
    let search: Vec<String> = ["files", "templates", "tasks", ""]
        .iter()
        .map(|d| {
            role.join(d)
                .display()
                .to_string()
                .trim_end_matches('/')
                .to_string()
        })
        .collect();
    let found = |subdir: Option<&str>| {
        let mut ctx = json!({"ansible_search_path": search});
        if let Some(s) = subdir {
            ctx[crate::template::LOOKUP_SUBDIR] = json!(s);
        }
        render_with(
            "{{ lookup('first_found', ['Debian-12.yml', 'Debian.yml']) }}",
            ctx,
        )
    };
    assert_eq!(
        found(Some("vars")),
        role.join("vars/Debian.yml").display().to_string()
    );
    // A file the action's subdirectory lacks is still found beside the task.
    assert_eq!(
        found(Some("templates")),
        role.join("tasks/Debian.yml").display().to_string()
    );
}

#[test]
fn contains_test_is_a_substring_check_on_text() {
    // The assert target checks `result.msg is contains("Assertion failed")`.
    assert_eq!(
        render("{{ 'Assertion failed' is contains('Assertion failed') }}"),
        "True"
    );
    assert_eq!(
        render("{{ 'a_var != \"one\"' is contains('a_var') }}"),
        "True"
    );
    assert_eq!(render("{{ 'abc' is contains('x') }}"), "False");
    // An item of a list is not looked for inside the list's strings.
    assert_eq!(render("{{ ['ab'] is contains 'a' }}"), "False");
    assert_eq!(render("{{ {'k': 1} is contains('k') }}"), "True");
    assert_eq!(render("{{ [1, 2] is contains(2) }}"), "True");
}

// ansible.utils' IP filters (expected values from ansible-playbook with
// netaddr 1.3.0; `scripts/compat filters` checks many more side by side).

#[test]
fn ipaddr_queries_like_ansible_utils() {
    assert_eq!(
        e("'192.168.1.5/24' | ansible.utils.ipaddr('network')"),
        json!("192.168.1.0")
    );
    assert_eq!(
        e("'192.168.1.5/24' | ansible.utils.ipaddr('address')"),
        json!("192.168.1.5")
    );
    // A network address asked for its address has none: Python's None.
    assert_eq!(
        e("'192.168.1.0/24' | ansible.utils.ipaddr('address')"),
        json!(null)
    );
    assert_eq!(e("'abc' | ansible.utils.ipaddr"), json!(false));
    assert_eq!(e("3232235777 | ansible.utils.ipaddr"), json!("192.168.1.1"));
    assert_eq!(
        e("'192.168.1.5/0.0.0.255' | ansible.utils.ipaddr('network/prefix')"),
        json!("192.168.1.0/24")
    );
    assert_eq!(
        e("'192.168.1.0/24' | ansible.utils.ipaddr(-1)"),
        json!("192.168.1.255/24")
    );
    assert_eq!(
        e("'::ffff:192.168.1.5' | ansible.utils.ipaddr('ipv4')"),
        json!("192.168.1.5/32")
    );
    assert_eq!(e("'::1.2.3.4' | ansible.utils.ipaddr"), json!("::1.2.3.4"));
    assert_eq!(
        e("'2001:db8::5' | ansible.utils.ipaddr('revdns')"),
        json!("5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.")
    );
    assert_eq!(
        e("['192.168.1.5', 'x', '10.0.0.1/8', 'fe80::1'] | ansible.utils.ipv4('address')"),
        json!(["192.168.1.5", "10.0.0.1"])
    );
    assert_eq!(
        e("['192.168.1.5', '8.8.8.8', '100.64.1.1', '224.0.0.1', '192.0.0.9'] | ansible.utils.ipaddr('public')"),
        json!(["8.8.8.8", "192.0.0.9"])
    );
    let unknown = render_err("{{ '1.2.3.4' | ansible.utils.ipaddr('bogus') }}", json!({}));
    assert!(
        unknown.contains("ipaddr: unknown filter type: bogus"),
        "{unknown}"
    );
}

#[test]
fn ipwrap_brackets_ipv6_only_and_ignores_a_positional_query() {
    assert_eq!(e("'fe80::1' | ansible.utils.ipwrap"), json!("[fe80::1]"));
    assert_eq!(
        e("'fe80::1/64' | ansible.utils.ipwrap"),
        json!("[fe80::1]/64")
    );
    assert_eq!(
        e("'fe80::1/64' | ansible.utils.ipwrap('address')"),
        json!("[fe80::1]/64")
    );
    assert_eq!(
        e("'fe80::1/64' | ansible.utils.ipwrap(query='address')"),
        json!("[fe80::1]")
    );
    assert_eq!(
        e("'example.com' | ansible.utils.ipwrap"),
        json!("example.com")
    );
    assert_eq!(
        e("['fe80::1', '1.2.3.4', 'host'] | ansible.utils.ipwrap"),
        json!(["[fe80::1]", "1.2.3.4", "host"])
    );
}

#[test]
fn ipsubnet_nthhost_and_ranges_like_ansible_utils() {
    assert_eq!(
        e("'192.168.0.0/16' | ansible.utils.ipsubnet(20)"),
        json!("16")
    );
    assert_eq!(
        e("'192.168.0.0/16' | ansible.utils.ipsubnet(20, -1)"),
        json!("192.168.240.0/20")
    );
    assert_eq!(
        e("'192.168.144.5' | ansible.utils.ipsubnet(18, 1)"),
        json!("192.168.128.0/19")
    );
    assert_eq!(
        e("'192.168.144.0/20' | ansible.utils.ipsubnet('192.168.0.0/16')"),
        json!("10")
    );
    assert_eq!(
        e("'192.168.1.5' | ansible.utils.ipmath(-10)"),
        json!("192.168.0.251")
    );
    assert_eq!(
        e("'192.168.1.7/24' | ansible.utils.nthhost(5)"),
        json!("192.168.1.5")
    );
    assert_eq!(
        e("'192.168.1.0/24' | ansible.utils.network_in_usable('192.168.1.255')"),
        json!(false)
    );
    assert_eq!(
        e("'192.168.1.0/24' | ansible.utils.network_in_network('192.168.1.255')"),
        json!(true)
    );
    assert_eq!(
        e("'192.168.122.1/24' | ansible.utils.next_nth_usable(2)"),
        json!("192.168.122.3")
    );
    assert_eq!(
        e("'192.168.122.1/24' | ansible.utils.previous_nth_usable(2)"),
        json!(null)
    );
}

/// The template target's macro_using_globals.j2 calls `lookup('lines', ...)`,
/// which drover did not have.
#[test]
fn lines_lookup_gives_a_commands_output_lines() {
    assert_eq!(
        render("{{ lookup('lines', 'echo lookedup_bar') }}"),
        "lookedup_bar"
    );
    assert_eq!(
        eval("query('lines', 'printf \"a\\nb\\n\"')", json!({})),
        json!(["a", "b"])
    );
    assert!(render_err("{{ lookup('lines', 'exit 3') }}", json!({}))
        .contains("lookup_plugin.lines(exit 3) returned 3"));
}

/// lookup_first_found's "test legacy formats": `paths: not/a/path:/etc`
/// was taken as one directory; Ansible splits paths on `:` too.
#[test]
fn first_found_splits_paths_on_colons() {
    let tmp = tempfile::tempdir().expect("tmp");
    std::fs::write(tmp.path().join("hosts"), "x").expect("write");
    let dir = tmp.path().display().to_string();
    let out = eval(
        "q('first_found', {'files': 'not/a/file.yaml;hosts', 'paths': 'not/a/path:' + dir})",
        json!({"dir": dir}),
    );
    assert_eq!(out, json!([format!("{dir}/hosts")]));
}

/// The templating target: a select/selectattr test that does not exist is
/// named in the error, as Ansible names it.
#[test]
fn an_unknown_select_test_is_named() {
    let err = render_err(
        r#"{{ [{}] | selectattr("failed", "asdf ", true) }}"#,
        serde_json::json!({}),
    );
    assert!(err.contains("No test named 'asdf '"), "{err}");
    assert_eq!(
        render(r#"{{ [{"failed": false}] | selectattr("failed", "==", true) | list }}"#),
        "[]"
    );
    assert_eq!(render("{{ [1, 2, 3] | select('odd') | list }}"), "[1, 3]");
}
