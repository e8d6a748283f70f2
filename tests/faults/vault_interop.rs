//! Ansible Vault both ways with the real `ansible-vault` (issue 12): vault
//! ids (1.2 files and `!vault` strings, several `--vault-id`s in one run),
//! `drover vault edit` and `rekey` results that ansible-vault reads, and a
//! wrong password or an altered file refused naming the file.
//!
//! ansible-vault comes from the compat venv (`scripts/compat --venv`).
//! Without it a test says so and passes; under CI (`CI` set) it fails
//! instead, so that the interoperability is never silently untested.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::local::local;

/// The real ansible-vault, or `None` (with a message) when it is missing
/// outside CI.
// The skip must be visible in the test output: cargo test shows a test's
// stderr.
#[allow(clippy::print_stderr)]
pub fn ansible_vault() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/compat/bin/ansible-vault");
    if p.exists() {
        return Some(p);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{} is missing under CI: the ansible-vault interoperability tests need it \
         (scripts/compat --venv installs it)",
        p.display()
    );
    eprintln!(
        "SKIPPED: {} is missing (scripts/compat --venv installs it)",
        p.display()
    );
    None
}

/// A scratch directory and the two programs, run from it.
struct Both {
    dir: tempfile::TempDir,
    av: PathBuf,
}

impl Both {
    fn new() -> Option<Both> {
        Some(Both {
            av: ansible_vault()?,
            dir: tempfile::tempdir().expect("tempdir"),
        })
    }

    fn d(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.d().join(name), text).expect("write");
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.d().join(name)).expect("read")
    }

    /// ansible-vault, which must succeed; its standard output.
    fn av(&self, args: &[&str]) -> String {
        let out = Command::new(&self.av)
            .args(args)
            .current_dir(self.d())
            .env("HOME", self.d())
            .output()
            .expect("ansible-vault runs");
        assert!(
            out.status.success(),
            "ansible-vault {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn av_fails(&self, args: &[&str]) -> bool {
        !Command::new(&self.av)
            .args(args)
            .current_dir(self.d())
            .env("HOME", self.d())
            .output()
            .expect("ansible-vault runs")
            .status
            .success()
    }

    /// `drover vault ...` with extra environment.
    fn drover_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_drover"))
            .arg("vault")
            .args(args)
            .current_dir(self.d())
            .env("HOME", self.d())
            .envs(env.iter().copied())
            .output()
            .expect("drover runs")
    }

    /// `drover vault ...`, which must succeed; its standard output.
    fn drover(&self, args: &[&str]) -> String {
        let out = self.drover_env(args, &[]);
        assert!(
            out.status.success(),
            "drover vault {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// `key: !vault |` block lines of encrypt_string output, indented under
/// `vars:`.
fn indented(block: &str) -> String {
    block
        .lines()
        .map(|l| format!("    {l}\n"))
        .collect::<String>()
}

/// Vault 1.2 files and strings with ids, and a 1.1 string, all written by
/// ansible-vault, open in one drover run given several `--vault-id`s and a
/// password file; none of the plaintexts reaches `-vvvv` human output or
/// JSON output.
#[test]
fn ansible_vault_ids_open_in_drover_with_several_vault_ids_and_stay_masked() {
    let Some(b) = Both::new() else { return };
    b.write("pw_a", "alpha pass\n");
    b.write("pw_b", "bravo pass\n");
    b.write("pw_d", "default pass\n");
    b.write("a.yml", "from_a: Alpha-file-plain\n");
    b.write("b.yml", "from_b: Bravo-file-plain\n");
    b.av(&["encrypt", "--vault-id", "a@pw_a", "a.yml"]);
    b.av(&["encrypt", "--vault-id", "b@pw_b", "b.yml"]);
    assert!(b.read("a.yml").starts_with("$ANSIBLE_VAULT;1.2;AES256;a\n"));
    let s12 = b.av(&[
        "encrypt_string",
        "--vault-id",
        "b@pw_b",
        "--name",
        "str_b",
        "Bravo-string-plain",
    ]);
    assert!(s12.contains("$ANSIBLE_VAULT;1.2;AES256;b"), "{s12}");
    let s11 = b.av(&[
        "encrypt_string",
        "--vault-password-file",
        "pw_d",
        "--name",
        "str_d",
        "Default-string-plain",
    ]);
    let pb = format!(
        "- hosts: all\n  gather_facts: false\n  vars_files: [a.yml, b.yml]\n  vars:\n{}{}  tasks:\n    - debug:\n        msg: \"{{{{ from_a }}}} {{{{ from_b }}}} {{{{ str_b }}}} {{{{ str_d }}}}\"\n    - copy:\n        content: \"{{{{ from_a }}}} {{{{ from_b }}}} {{{{ str_b }}}} {{{{ str_d }}}}\"\n        dest: \"{{{{ playbook_dir }}}}/plain.txt\"\n",
        indented(&s12),
        indented(&s11)
    );
    let ids = [
        "--vault-id",
        "b@pw_b",
        "--vault-id",
        "a@pw_a",
        "--vault-password-file",
        "pw_d",
    ];
    let plains = [
        "Alpha-file-plain",
        "Bravo-file-plain",
        "Bravo-string-plain",
        "Default-string-plain",
    ];
    let mut args = ids.to_vec();
    args.push("-vvvv");
    let run = local(b.d(), &pb, &args);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(b.read("plain.txt"), plains.join(" "));
    for p in plains {
        assert!(!run.all().contains(p), "{p} leaked in JSON:\n{}", run.all());
    }
    // The same, human output at -vvvv (the file now exists: ok, not changed).
    let out = Command::new(env!("CARGO_BIN_EXE_drover"))
        .args(["apply", "site.yml", "-i", "hosts", "-vvvv"])
        .args(ids)
        .current_dir(b.d())
        .env("HOME", b.d())
        .output()
        .expect("drover runs");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{all}");
    assert!(all.contains("********"), "{all}");
    for p in plains {
        assert!(!all.contains(p), "{p} leaked at -vvvv:\n{all}");
    }

    // `drover vault view` with both ids opens both labelled files.
    assert_eq!(
        b.drover(&[
            "view",
            "--vault-id",
            "a@pw_a",
            "--vault-id",
            "b@pw_b",
            "a.yml",
            "b.yml"
        ]),
        "from_a: Alpha-file-plain\nfrom_b: Bravo-file-plain\n"
    );

    // Without b's password: exit 1 naming b.yml, before the first task.
    let run = local(b.d(), &pb, &["--vault-id", "a@pw_a"]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stderr.contains("b.yml"), "{}", run.all());
    assert!(
        !run.events().iter().any(|e| e["event"] == "task_start"),
        "a task started: {}",
        run.all()
    );
}

/// `drover vault edit`: the editor sees a 0600 file in a 0700 directory,
/// which is gone afterwards; an unchanged text leaves the file's bytes as
/// they were; a change is encrypted again under the same vault id and
/// mode, and ansible-vault reads it; a failing editor changes nothing.
#[test]
fn drover_vault_edit_keeps_the_vault_id_and_ansible_vault_reads_the_result() {
    let Some(b) = Both::new() else { return };
    b.write("pw", "edit pass\n");
    b.write("other", "other pass\n");
    b.write("s.yml", "token: before-edit\n");
    b.av(&["encrypt", "--vault-id", "lab@pw", "s.yml"]);
    let file = b.d().join("s.yml");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let before = b.read("s.yml");
    let log = b.d().join("editor.log");
    let editor = b.d().join("ed.sh");
    std::fs::write(
        &editor,
        format!(
            "#!/bin/sh\nstat -c '%a %n' \"$1\" \"$(dirname \"$1\")\" >> {log}\n\
             case \"$MODE\" in\n  change) sed -i 's/before-edit/after-edit/' \"$1\" ;;\n  fail) sed -i 's/before-edit/lost/' \"$1\"; exit 1 ;;\nesac\n",
            log = log.display()
        ),
    )
    .expect("write");
    std::fs::set_permissions(&editor, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let ed = editor.to_str().expect("utf8");
    // The wrong password first in the list: the label picks the right one.
    let ids = [
        "edit",
        "--vault-id",
        "other@other",
        "--vault-id",
        "lab@pw",
        "s.yml",
    ];

    let out = b.drover_env(&ids, &[("EDITOR", ed), ("MODE", "same")]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(b.read("s.yml"), before, "unchanged text: file rewritten");
    let seen = std::fs::read_to_string(&log).expect("the editor ran");
    let mut lines = seen.lines();
    let (f, d) = (lines.next().expect("file"), lines.next().expect("dir"));
    assert!(f.starts_with("600 ") && f.ends_with(".yml"), "{seen}");
    assert!(d.starts_with("700 "), "{seen}");
    let scratch = d.split_once(' ').expect("path").1;
    assert!(!Path::new(scratch).exists(), "{scratch} left behind");

    let out = b.drover_env(&ids, &[("EDITOR", ed), ("MODE", "fail")]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(b.read("s.yml"), before, "a failed edit was saved");

    let out = b.drover_env(&ids, &[("EDITOR", ed), ("MODE", "change")]);
    assert!(out.status.success(), "{out:?}");
    let after = b.read("s.yml");
    assert!(
        after.starts_with("$ANSIBLE_VAULT;1.2;AES256;lab\n"),
        "{after}"
    );
    assert!(!after.contains("after-edit"));
    let mode = std::fs::metadata(&file).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
    assert_eq!(
        b.av(&["view", "--vault-id", "lab@pw", "s.yml"]),
        "token: after-edit\n"
    );

    // A wrong password: exit 1 naming the file; the editor never runs.
    std::fs::remove_file(&log).expect("rm");
    let out = b.drover_env(
        &["edit", "--vault-password-file", "other", "s.yml"],
        &[("EDITOR", ed)],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("s.yml"));
    assert!(!log.exists(), "the editor ran without a password");
}

/// `drover vault rekey` to a new vault id and to a plain password file:
/// ansible-vault opens the result with the new password only; what
/// ansible-vault rekeyed, drover opens; a wrong old password or an altered
/// file is exit 1 naming the file, and no file is changed.
#[test]
fn drover_vault_rekey_results_open_in_ansible_vault_and_refusals_name_the_file() {
    let Some(b) = Both::new() else { return };
    b.write("old", "old pass\n");
    b.write("new", "new pass\n");
    b.write("newer", "newer pass\n");
    b.write("x.yml", "x: rekeyed-plain\n");
    b.write("y.yml", "y: second-plain\n");
    b.av(&["encrypt", "--vault-password-file", "old", "x.yml", "y.yml"]);
    std::fs::set_permissions(b.d().join("x.yml"), std::fs::Permissions::from_mode(0o644))
        .expect("chmod");

    b.drover(&[
        "rekey",
        "--vault-password-file",
        "old",
        "--new-vault-id",
        "prod@new",
        "x.yml",
        "y.yml",
    ]);
    assert!(b
        .read("x.yml")
        .starts_with("$ANSIBLE_VAULT;1.2;AES256;prod\n"));
    let mode = std::fs::metadata(b.d().join("x.yml"))
        .expect("stat")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o644, "rekey changed the mode");
    assert_eq!(
        b.av(&["view", "--vault-id", "prod@new", "x.yml", "y.yml"]),
        "x: rekeyed-plain\ny: second-plain\n"
    );
    assert!(b.av_fails(&["view", "--vault-password-file", "old", "x.yml"]));

    b.drover(&[
        "rekey",
        "--vault-id",
        "prod@new",
        "--new-vault-password-file",
        "newer",
        "x.yml",
    ]);
    assert!(b.read("x.yml").starts_with("$ANSIBLE_VAULT;1.1;AES256\n"));
    assert_eq!(
        b.av(&["view", "--vault-password-file", "newer", "x.yml"]),
        "x: rekeyed-plain\n"
    );

    // Two passwords and no --encrypt-vault-id: both tools refuse to pick.
    b.write("z.yml", "z: 1\n");
    let two = [
        "encrypt",
        "--vault-id",
        "one@old",
        "--vault-id",
        "two@new",
        "z.yml",
    ];
    assert!(b.av_fails(&two));
    let out = b.drover_env(&two, &[]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--encrypt-vault-id"),
        "{out:?}"
    );
    assert_eq!(b.read("z.yml"), "z: 1\n");
    let mut chosen = two.to_vec();
    chosen.extend(["--encrypt-vault-id", "two"]);
    b.drover(&chosen);
    assert!(b
        .read("z.yml")
        .starts_with("$ANSIBLE_VAULT;1.2;AES256;two\n"));
    assert_eq!(b.av(&["view", "--vault-id", "two@new", "z.yml"]), "z: 1\n");

    // ansible-vault's rekey, read by drover.
    b.av(&[
        "rekey",
        "--vault-password-file",
        "newer",
        "--new-vault-id",
        "back@old",
        "x.yml",
    ]);
    assert_eq!(
        b.drover(&["view", "--vault-id", "back@old", "x.yml"]),
        "x: rekeyed-plain\n"
    );

    // A wrong old password for one of two files: both stay as they were.
    let (x, y) = (b.read("x.yml"), b.read("y.yml"));
    let out = b.drover_env(
        &[
            "rekey",
            "--vault-id",
            "back@old",
            "--new-vault-password-file",
            "newer",
            "x.yml",
            "y.yml",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("y.yml") && !err.contains("x.yml"), "{err}");
    assert_eq!((b.read("x.yml"), b.read("y.yml")), (x.clone(), y));

    // An altered file: exit 1 naming it, for view as for rekey.
    b.write("x.yml", &x.replacen("3", "4", 1));
    for args in [
        &["view", "--vault-id", "back@old", "x.yml"][..],
        &[
            "rekey",
            "--vault-id",
            "back@old",
            "--new-vault-password-file",
            "newer",
            "x.yml",
        ],
    ] {
        let out = b.drover_env(args, &[]);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("x.yml"),
            "{out:?}"
        );
    }
    assert!(!b.read("x.yml").is_empty());
}
