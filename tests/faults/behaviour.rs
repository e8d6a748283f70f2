//! Behaviour a user trips on (issue 11, point 5): places where drover used
//! to differ silently from ansible-playbook. Each test is named after the
//! behaviour. They run on the control machine (`ansible_connection=local`)
//! and change nothing there but their scratch directory.

use crate::local::{local, results};

const HANDLERS: &str = r#"- hosts: all
  gather_facts: false
  tasks:
    - name: configure
      command: "true"
      tags: config
      notify: [restart, reload topic]
  handlers:
    - name: restart
      debug: msg=restarted
    - name: first listener
      debug: msg=one
      listen: reload topic
    - name: second listener
      debug: msg=two
      listen: reload topic
"#;

#[test]
fn tags_never_filter_notified_handlers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = local(dir.path(), HANDLERS, &["--tags", "config"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let restart = results(&run, "restart");
    assert_eq!(restart.len(), 1, "{}", run.all());
    assert_eq!(restart[0]["result"]["msg"], "restarted");
}

#[test]
fn every_handler_listening_to_a_topic_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = local(dir.path(), HANDLERS, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(results(&run, "first listener").len(), 1, "{}", run.all());
    assert_eq!(results(&run, "second listener").len(), 1, "{}", run.all());
    assert_eq!(run.total("ok"), 4, "{}", run.all());
}

#[test]
fn notifying_a_handler_that_does_not_exist_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pb = "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: configure\n      command: \"true\"\n      notify: restart nginx\n  handlers:\n    - name: restart apache\n      debug: msg=x\n";
    let run = local(dir.path(), pb, &[]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr.contains(
            "site.yml:4:7: The requested handler 'restart nginx' was not found in either the main handlers list nor in the listening handlers list"
        ),
        "{}",
        run.all()
    );
    // Nothing ran.
    assert!(run.events().is_empty(), "{}", run.all());
}

#[test]
fn debug_var_of_an_undefined_variable_prints_variable_is_not_defined() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pb = "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: show\n      debug: var=nope\n    - name: after\n      debug: var=nope.deeper\n";
    let run = local(dir.path(), pb, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    let shown = results(&run, "show");
    assert_eq!(shown[0]["result"]["nope"], "VARIABLE IS NOT DEFINED!");
    let after = results(&run, "after");
    assert_eq!(
        after[0]["result"]["nope.deeper"],
        "VARIABLE IS NOT DEFINED!"
    );
    assert_eq!(run.total("failed"), 0);
}

#[test]
fn missing_attr_with_default_chains_like_ansible_undefined() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pb = "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: chained\n      debug:\n        msg: \"{{ missing.attr | default('x') }} {{ (missing.a.b is defined) | string }}\"\n";
    let run = local(dir.path(), pb, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(results(&run, "chained")[0]["result"]["msg"], "x False");
}

#[test]
fn key_value_escapes_are_decoded_as_ansible_parse_kv_does() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pb = "- hosts: all\n  gather_facts: false\n  tasks:\n    - copy: content=\"a\\nb\\tc\" dest={{ playbook_dir }}/out\n";
    let run = local(dir.path(), pb, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    let out = std::fs::read_to_string(dir.path().join("out")).expect("written");
    assert_eq!(out, "a\nb\tc");
}

#[test]
fn an_unquoted_template_value_is_refused_with_the_quote_hint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pb = "- hosts: all\n  gather_facts: false\n  tasks:\n    - debug:\n        msg: {{ greeting }}\n";
    let run = local(dir.path(), pb, &[]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr.contains("site.yml:5:14: ")
            && run
                .stderr
                .contains("missing quotes around a template block"),
        "{}",
        run.all()
    );
}
