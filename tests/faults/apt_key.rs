//! `apt_key` on a lab node with a key made for the test (gpg, ed25519):
//! added from `data` and from a `url` into keyrings APT reads, found by
//! id, removed; a second run and `--check` change nothing, and root's own
//! gpg home on the node is never created.

use std::process::Command;

use crate::harness::Env;
use crate::new_modules::converges;
use crate::uri::Server;

/// An armored public key and its long id, made in a scratch gpg home.
fn make_key(dir: &std::path::Path, name: &str) -> (String, String) {
    let home = dir.join(format!("gnupg-{name}"));
    std::fs::create_dir_all(&home).expect("home");
    let gpg = |args: &[&str]| {
        let out = Command::new("gpg")
            .env("GNUPGHOME", &home)
            .args(["--batch", "--pinentry-mode", "loopback", "--passphrase", ""])
            .args(args)
            .output()
            .expect("gpg runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf8")
    };
    let uid = format!("{name} <{name}@lab.example>");
    gpg(&["--quick-gen-key", &uid, "ed25519", "sign", "never"]);
    let key = gpg(&["--armor", "--export", &uid]);
    let colons = gpg(&["--with-colons", "--list-keys", &uid]);
    let id = colons
        .lines()
        .find(|l| l.starts_with("pub:"))
        .and_then(|l| l.split(':').nth(4))
        .expect("pub line")
        .to_string();
    (key, id)
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn apt_key_adds_and_removes_keys_with_gpg_and_converges() {
    let env = Env::new(1);
    let (key_a, id_a) = make_key(env.dir.path(), "alpha");
    let (key_b, id_b) = make_key(env.dir.path(), "bravo");
    let www = env.path("www");
    std::fs::create_dir_all(&www).expect("www");
    std::fs::write(www.join("bravo.asc"), &key_b).expect("key");
    let address = env.lab.nodes()[0].address.to_string();
    let server = Server::start(&address, &www, &env.path("port"));
    let pb = env.write(
        "pb.yml",
        &format!(
            r#"- hosts: all
  gather_facts: false
  become: true
  tasks:
    - apt_key:
        data: "{data}"
        keyring: /etc/apt/trusted.gpg.d/alpha.gpg
      register: a
    - apt_key:
        url: "http://{address}:{port}/bravo.asc"
        keyring: /usr/share/keyrings/bravo.asc
      register: b
    - apt_key:
        id: "{id_b}"
        keyring: /usr/share/keyrings/bravo.asc
    - apt_key:
        id: "{id_a}"
        state: absent
        keyring: /etc/apt/trusted.gpg.d/nothing-here.gpg
    - assert:
        that:
          - a.fp == '{id_a}'
          - a.short_id == '{short_a}'
          - b.id == '{id_b}'
      when: not ansible_check_mode
"#,
            data = key_a.replace('\n', "\\n"),
            port = server.port,
            short_a = &id_a[8..],
        ),
    );
    let first = converges(&env, &pb);
    let node = &env.node_names()[0];
    let alpha = env.node_path(node, "/etc/apt/trusted.gpg.d/alpha.gpg");
    let bytes = std::fs::read(&alpha).expect("alpha keyring");
    assert_ne!(bytes.first(), Some(&b'-'), "a .gpg keyring is binary");
    let bravo = env
        .node_file(node, "/usr/share/keyrings/bravo.asc")
        .expect("bravo keyring");
    assert!(
        bravo.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----"),
        "{bravo}"
    );
    assert!(
        !env.node_path(node, "/root/.gnupg").exists(),
        "root's gpg home was created:\n{}",
        first.all()
    );
    // The key is found in the default keyring set and removed from it.
    let rm = env.write(
        "rm.yml",
        &format!("- hosts: all\n  gather_facts: false\n  become: true\n  tasks:\n    - apt_key:\n        id: \"{id_a}\"\n        state: absent\n"),
    );
    let run = env.apply(&rm, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(run.total("changed"), 1, "{}", run.all());
    assert!(!alpha.exists(), "the emptied keyring is removed");
    let again = env.apply(&rm, &[]);
    assert_eq!(again.total("changed"), 0, "{}", again.all());
    drop(server);
}
