//! A module's result `warnings` (Ansible's `module.warn`) are registered
//! and printed as `[WARNING]:` lines; they used to stay in the result only,
//! and `file` in check mode had none for an owner the host does not know.

use crate::local::local;

#[test]
fn module_warnings_are_registered_and_printed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("absent");
    let pb = format!(
        "- hosts: all\n  gather_facts: false\n  tasks:\n\
         \x20   - file: path={} owner=no-such-user-drover\n      check_mode: true\n      register: r\n      ignore_errors: true\n\
         \x20   - assert:\n        that: r.warnings[0] is search('failed to look up user no-such-user-drover')\n",
        path.display()
    );
    let run = local(dir.path(), &pb, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    let warned: Vec<_> = run
        .events()
        .into_iter()
        .filter(|e| e["event"] == "warning")
        .filter_map(|e| e["msg"].as_str().map(str::to_string))
        .collect();
    assert_eq!(
        warned,
        ["failed to look up user no-such-user-drover. Create user up to this point in real play"],
        "{}",
        run.all()
    );
}
