//! Files saved by a Windows editor (WSL users, a repository on `/mnt/c`):
//! playbooks, inventories (INI and YAML), group_vars and vars files with
//! CRLF line endings load as their LF twins do, and no value keeps a
//! stray `\r` (issue 12).

use std::process::Command;

fn crlf(text: &str) -> String {
    text.replace('\n', "\r\n")
}

#[test]
fn crlf_playbooks_inventories_and_vars_files_load_without_stray_carriage_returns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let write = |name: &str, text: &str| {
        let p = d.join(name);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, crlf(text)).expect("write");
    };
    write(
        "hosts.ini",
        "[boxes]\nlocalhost ansible_connection=local from_ini=ini-value\n\n[boxes:vars]\ngroup_ini=group-ini-value\n",
    );
    write(
        "hosts.yml",
        "all:\n  hosts:\n    localhost:\n      ansible_connection: local\n      from_ini: yaml-value\n      group_ini: yaml-group-value\n  children:\n    boxes:\n      hosts:\n        localhost:\n",
    );
    write("group_vars/boxes.yml", "from_group_vars: gv-value\n");
    write("vars.yml", "from_vars_file: vf-value\n");
    write(
        "site.yml",
        "- hosts: boxes\n  gather_facts: false\n  vars_files: [vars.yml]\n  vars:\n    block: |\n      one\n      two\n  tasks:\n    - name: values written\n      copy:\n        content: \"{{ [from_ini, group_ini, from_group_vars, from_vars_file, block] | to_json }}\"\n        dest: \"{{ playbook_dir }}/out-{{ inv }}.json\"\n",
    );
    for inv in ["hosts.ini", "hosts.yml"] {
        let out = Command::new(env!("CARGO_BIN_EXE_drover"))
            .args(["apply", "site.yml", "-i", inv, "-e"])
            .arg(format!("inv={inv}"))
            .current_dir(d)
            .env("HOME", d)
            .output()
            .expect("drover runs");
        assert!(
            out.status.success(),
            "{inv}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let written = std::fs::read_to_string(d.join(format!("out-{inv}.json"))).expect("out");
        let values: Vec<String> = serde_json::from_str(&written).expect("json");
        let first = if inv == "hosts.ini" {
            ["ini-value", "group-ini-value"]
        } else {
            ["yaml-value", "yaml-group-value"]
        };
        assert_eq!(
            values,
            [first[0], first[1], "gv-value", "vf-value", "one\ntwo\n"],
            "{inv}"
        );
    }
}
