//! `slurp`'s failures say what Python's `open()` said, as Ansible's tests
//! assert them: a file the user may not read is not "not found", and a path
//! through a file made earlier in the run is not "not found" either.

use crate::harness::Env;

#[test]
#[ignore = "needs root: run scripts/test"]
fn slurp_failures_name_their_cause() {
    let env = Env::new(1);
    let pb = env.write(
        "site.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n\
         \x20   - file: path=/tmp/sl state=directory mode=0700\n      become: true\n\
         \x20   - copy: content=hi dest=/tmp/sl/secret mode=0600\n      become: true\n\
         \x20   - slurp: src=/tmp/sl/secret\n      register: unreadable\n      ignore_errors: true\n\
         \x20   - slurp: src=/tmp/sl/secret/sub\n      register: notdir\n      become: true\n      ignore_errors: true\n\
         \x20   - slurp: src=/tmp/sl/none\n      register: missing\n      become: true\n      ignore_errors: true\n\
         \x20   - slurp: src=/tmp/sl\n      register: isdir\n      become: true\n      ignore_errors: true\n\
         \x20   - debug: msg=\"{{ [unreadable.msg, notdir.msg, missing.msg, isdir.msg] }}\"\n",
    );
    let run = env.apply(&pb, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    let msgs: Vec<_> = run
        .events()
        .into_iter()
        .filter_map(|e| e["result"]["msg"].as_array().cloned())
        .collect();
    let msgs: Vec<String> = msgs
        .last()
        .expect("debug printed")
        .iter()
        .map(|m| m.as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        msgs,
        [
            "File is not readable: /tmp/sl/secret",
            "Unable to slurp file: /tmp/sl/secret/sub: not a directory on the way",
            "File not found: /tmp/sl/none",
            "Source is a directory and must be a file: /tmp/sl",
        ],
        "{}",
        run.all()
    );
}
