//! The become password never reaches output, at any verbosity, in human or
//! JSON form, wherever it came from: `-e`, or a variable templated from
//! another one (as from a vault file).

use crate::harness::Env;

const PW: &str = "Sud0-pa55word";

const TASKS: &str = "  tasks:
    - debug: var=ansible_become_password
    - debug:
        msg: \"the password is {{ ansible_become_password }}\"
    - command: echo {{ ansible_become_password }}
      register: echoed
    - debug: var=echoed
";

fn assert_hidden(env: &Env, pb: &std::path::Path, extra: &[&str]) {
    for output in ["human", "json"] {
        let mut args = vec!["-vvvv", "--output", output];
        args.extend(extra);
        let run = env.apply(pb, &args);
        assert_eq!(run.code, 0, "{}", run.all());
        assert!(
            !run.all().contains(PW),
            "the become password leaked ({output}):\n{}",
            run.all()
        );
        assert!(run.all().contains("********"), "{}", run.all());
    }
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn the_become_password_given_with_e_is_masked_at_vvvv() {
    let env = Env::with(1, Some(PW));
    let pb = env.write(
        "pb.yml",
        &format!("- hosts: all\n  gather_facts: false\n  become: true\n{TASKS}"),
    );
    let e = format!("ansible_become_password={PW}");
    assert_hidden(&env, &pb, &["-e", &e]);
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn a_become_password_templated_from_another_variable_is_masked_at_vvvv() {
    let env = Env::with(1, Some(PW));
    env.write("secrets.yml", &format!("vault_pw: {PW}\n"));
    let pb = env.write(
        "pb.yml",
        &format!(
            "- hosts: all\n  gather_facts: false\n  become: true\n  vars_files: [secrets.yml]\n  vars:\n    ansible_become_password: \"{{{{ vault_pw }}}}\"\n{TASKS}    - debug: var=vault_pw\n"
        ),
    );
    assert_hidden(&env, &pb, &[]);
}
