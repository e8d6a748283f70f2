//! Ansible Vault (issue 12): what ansible-vault writes, drover reads, and
//! the reverse; a decrypted value never reaches output or logs at any
//! verbosity; a file no password opens stops the run before any
//! connection, naming the file.
//!
//! The interoperability tests run the real `ansible-vault` of the compat
//! venv (`.venv/compat`, which `scripts/compat --venv` installs); without
//! it they say so and pass, except under CI, where they fail.

use std::process::Command;

use crate::harness::Env;
use crate::local::{local, results, statuses};
use crate::vault_interop::ansible_vault;

/// `secrets.yml` (`vault_secret: Vault-s3cret-value`) as ansible-vault
/// 2.19 encrypted it with password `correct horse`.
const SECRETS_YML: &str = "$ANSIBLE_VAULT;1.1;AES256\n\
32343664306633303062353539366230643838356637613133613831333734343234363137373637\n\
3365626237396234623463346236656461363938656532620a333135326537653039646637636231\n\
66646661623263616264653361373834663163346439646338366638306337623562623135353835\n\
3562643331346564370a666233643934646362633865663963363931343236346332646139303635\n\
39653933366235343864383630663933393237343363623334643661343832653031373364373233\n\
3065323832366532636134313366653336326362373164663438\n\
";

/// `Inline-s3cret-value` from `ansible-vault encrypt_string`, same password.
const INLINE: &str = "$ANSIBLE_VAULT;1.1;AES256\n          31333162383863656665396339666663633334366439386465663035343565393265633065646132\n          3061356136313563613334663431336235326432663037370a626562316633623966316137336563\n          62346362646233663037303038663936633734643161653834353661613364326263336431313733\n          3036313163353431370a653435306463316430386561343238353830323935363335393032363538\n          61313132653764633865333036333130343439666531636564353837656237313237";

fn playbook(tasks: &str) -> String {
    format!(
        "- hosts: all\n  gather_facts: false\n  vars_files: [secrets.yml]\n  vars:\n    inline: !vault |\n          {INLINE}\n  tasks:\n{tasks}"
    )
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn vault_values_are_masked_at_vvvv_and_an_unopened_vault_file_stops_before_connecting() {
    let env = Env::new(1);
    env.write("secrets.yml", SECRETS_YML);
    let pw = env.write("pw", "correct horse\n");
    let tasks = "    - debug: var=vault_secret
    - debug:
        msg: \"{{ inline }} and {{ vault_secret }}\"
    - command: echo {{ inline }} {{ vault_secret }}
      register: echoed
    - debug: var=echoed
    - copy:
        content: \"{{ inline }}/{{ vault_secret }}\"
        dest: /tmp/vaulted
";
    let pb = env.write("pb.yml", &playbook(tasks));
    for output in ["human", "json"] {
        let run = env.apply(
            &pb,
            &[
                "-vvvv",
                "--output",
                output,
                "--vault-password-file",
                pw.to_str().expect("utf8"),
            ],
        );
        assert_eq!(run.code, 0, "{}", run.all());
        for plain in ["Vault-s3cret-value", "Inline-s3cret-value"] {
            assert!(
                !run.all().contains(plain),
                "{plain} leaked ({output}):\n{}",
                run.all()
            );
        }
        assert!(run.all().contains("********"), "{}", run.all());
    }
    let node = &env.node_names()[0];
    assert_eq!(
        env.node_file(node, "/tmp/vaulted").as_deref(),
        Some("Inline-s3cret-value/Vault-s3cret-value")
    );

    // A wrong password, and a tampered file: exit 1 naming the file, and
    // nothing ran (the first task would have made a file).
    let pb = env.write(
        "first.yml",
        &playbook("    - file: {path: /tmp/ran, state: touch}\n"),
    );
    let wrong = env.write("wrong", "not the password\n");
    let run = env.apply(
        &pb,
        &["--vault-password-file", wrong.to_str().expect("utf8")],
    );
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stderr.contains("secrets.yml"), "{}", run.all());
    assert!(run.events().is_empty(), "{}", run.all());
    let tampered = SECRETS_YML.replacen("3234", "3235", 1);
    env.write("secrets.yml", &tampered);
    let run = env.apply(&pb, &["--vault-password-file", pw.to_str().expect("utf8")]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stderr.contains("secrets.yml"), "{}", run.all());
    let run = env.apply(&pb, &[]);
    assert_eq!(run.code, 1, "no password: {}", run.all());
    assert_eq!(env.node_file(node, "/tmp/ran"), None, "a task ran");
}

/// A `!vault` value no password opens fails only where it is used.
#[test]
fn an_undecryptable_vault_value_fails_only_when_used() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("secrets.yml"), "vault_secret: plain\n").expect("write");
    let pb = playbook(
        "    - name: unused
      debug: msg=unused
    - name: used
      debug: var=inline
      ignore_errors: true
    - name: opened
      copy:
        content: \"{{ inline | unvault('correct horse') }}\"
        dest: \"{{ playbook_dir }}/opened.txt\"
",
    );
    let run = local(dir.path(), &pb, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(statuses(&run, "unused"), ["ok"], "{}", run.all());
    let used = results(&run, "used");
    assert_eq!(used[0]["ignored"], true, "{}", run.all());
    assert!(
        run.all().contains("undecryptable variable"),
        "{}",
        run.all()
    );
    assert_eq!(statuses(&run, "opened"), ["changed"], "{}", run.all());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("opened.txt")).expect("opened"),
        "Inline-s3cret-value"
    );
}

/// Files and values ansible-vault wrote decrypt in drover, and what
/// drover's `vault` filter wrote, ansible-vault decrypts.
#[test]
fn drover_reads_what_ansible_vault_writes_and_the_reverse() {
    let Some(av) = ansible_vault() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::write(d.join("pw"), "s3same pw\n").expect("write");
    std::fs::write(d.join("secrets.yml"), "vault_secret: from-ansible-file\n").expect("write");
    let ok = |args: &[&str]| {
        let out = Command::new(&av)
            .args(args)
            .current_dir(d)
            .output()
            .expect("ansible-vault runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    ok(&["encrypt", "--vault-id", "lab@pw", "secrets.yml"]);
    let inline = ok(&[
        "encrypt_string",
        "--vault-password-file",
        "pw",
        "from-ansible-string",
        "--name",
        "inline",
    ]);
    let pb = format!(
        "- hosts: all\n  gather_facts: false\n  vars_files: [secrets.yml]\n  vars:\n{}\n  tasks:\n    - copy:\n        content: \"{{{{ inline }}}} {{{{ vault_secret }}}}\"\n        dest: \"{{{{ playbook_dir }}}}/plain.txt\"\n    - copy:\n        content: \"{{{{ 'from-drover' | vault('s3same pw') }}}}\"\n        dest: \"{{{{ playbook_dir }}}}/drover.vault\"\n",
        inline
            .lines()
            .map(|l| format!("    {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let run = local(d, &pb, &["--vault-id", "lab@pw"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(
        std::fs::read_to_string(d.join("plain.txt")).expect("plain.txt"),
        "from-ansible-string from-ansible-file"
    );
    assert_eq!(
        ok(&["view", "--vault-password-file", "pw", "drover.vault"]).trim_end(),
        "from-drover"
    );

    // `drover vault`: each reads what the other wrote.
    let drover = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_drover"))
            .arg("vault")
            .args(args)
            .current_dir(d)
            .output()
            .expect("drover runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(
        drover(&["view", "--vault-id", "lab@pw", "secrets.yml"]),
        "vault_secret: from-ansible-file\n"
    );
    std::fs::write(d.join("mine.yml"), "mine: 1\n").expect("write");
    drover(&["encrypt", "--vault-id", "lab@pw", "mine.yml"]);
    let text = std::fs::read_to_string(d.join("mine.yml")).expect("mine");
    assert!(
        text.starts_with("$ANSIBLE_VAULT;1.2;AES256;lab\n"),
        "{text}"
    );
    ok(&["decrypt", "--vault-password-file", "pw", "mine.yml"]);
    assert_eq!(
        std::fs::read_to_string(d.join("mine.yml")).expect("mine"),
        "mine: 1\n"
    );
    let block = drover(&[
        "encrypt_string",
        "--vault-password-file",
        "pw",
        "--name",
        "s",
        "from-drover-string",
    ]);
    assert!(
        block.starts_with("s: !vault |\n          $ANSIBLE_VAULT;1.1;AES256\n"),
        "{block}"
    );
    let envelope: String = block
        .lines()
        .skip(1)
        .map(|l| format!("{}\n", l.trim()))
        .collect();
    std::fs::write(d.join("s.vault"), envelope).expect("write");
    assert_eq!(
        ok(&["view", "--vault-password-file", "pw", "s.vault"]).trim_end(),
        "from-drover-string"
    );
}
