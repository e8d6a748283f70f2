//! ansible.cfg and the ANSIBLE_* variables change what a run does: each
//! setting drover reads is shown to act (an inventory without `-i`, the
//! user, the key, forks, timeout, roles path, become, the vault password
//! file, host key checking off), a variable wins over the file and a flag
//! over both, an output callback drover does not have is refused, and a
//! world-writable directory's ansible.cfg is ignored with a warning.
//!
//! drover runs with a scratch current directory and HOME: the machine's
//! own ~/.ansible.cfg and /etc/ansible are never read or written (a file
//! found in the scratch directory comes first).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::{Env, Run};

/// Every variable drover reads as Ansible's: cleared so that the caller's
/// environment cannot change a test.
const ANSIBLE_VARS: &[&str] = &[
    "ANSIBLE_CONFIG",
    "ANSIBLE_INVENTORY",
    "ANSIBLE_REMOTE_USER",
    "ANSIBLE_PRIVATE_KEY_FILE",
    "ANSIBLE_HOST_KEY_CHECKING",
    "ANSIBLE_SSH_HOST_KEY_CHECKING",
    "ANSIBLE_FORKS",
    "ANSIBLE_TIMEOUT",
    "ANSIBLE_SSH_TIMEOUT",
    "ANSIBLE_ROLES_PATH",
    "ANSIBLE_VAULT_PASSWORD_FILE",
    "ANSIBLE_VAULT_IDENTITY_LIST",
    "ANSIBLE_STDOUT_CALLBACK",
    "ANSIBLE_BECOME",
    "ANSIBLE_BECOME_USER",
    "ANSIBLE_BECOME_METHOD",
    "ANSIBLE_SSH_ARGS",
    "ANSIBLE_PIPELINING",
    "ANSIBLE_SSH_PIPELINING",
];

/// Run drover in `cwd` with HOME `home` and the given variables.
fn drover(cwd: &Path, home: &Path, vars: &[(&str, &str)], args: &[&str]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_drover"));
    cmd.args(args)
        .current_dir(cwd)
        .env("HOME", home)
        .env_remove("SSH_AUTH_SOCK");
    for v in ANSIBLE_VARS {
        cmd.env_remove(v);
    }
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("drover runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// An inventory of the lab's nodes with their addresses and ports only:
/// the user, key and known_hosts file come from elsewhere.
fn bare_inventory(env: &Env) -> PathBuf {
    let mut s = String::from("all:\n  hosts:\n");
    for n in env.lab.nodes() {
        s.push_str(&format!(
            "    {}:\n      ansible_host: {}\n      ansible_port: {}\n",
            n.name, n.address, n.port
        ));
    }
    env.write("inv/hosts.yml", &s)
}

/// Trust the lab's host keys in the scratch HOME's ~/.ssh/known_hosts.
fn trust_lab(env: &Env) {
    let text = std::fs::read_to_string(env.lab.known_hosts_path()).expect("lab known_hosts");
    env.write(".ssh/known_hosts", &text);
}

fn key(env: &Env) -> String {
    env.lab.key_path().to_string_lossy().into_owned()
}

fn apply(env: &Env, vars: &[(&str, &str)], args: &[&str]) -> Run {
    let mut all = vec!["apply", "site.yml", "--output", "json"];
    all.extend(args);
    drover(env.dir.path(), env.dir.path(), vars, &all)
}

const WHOAMI: &str = "- hosts: all\n  gather_facts: false\n  tasks:\n    - command: whoami\n      register: who\n      changed_when: false\n    - assert:\n        that: who.stdout == expected\n";

#[test]
#[ignore = "needs root: run scripts/test"]
fn ansible_cfg_inventory_remote_user_and_private_key_file_connect_without_flags() {
    let env = Env::new(2);
    trust_lab(&env);
    bare_inventory(&env);
    env.write("site.yml", WHOAMI);
    let k = key(&env);
    let cfg = |lines: &str| env.write("ansible.cfg", &format!("[defaults]\n{lines}"));
    // Without ansible.cfg there is no inventory to read.
    let run = apply(&env, &[], &["-e", "expected=admin"]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.all().contains("inventory/hosts.yml"), "{}", run.all());
    cfg(&format!(
        "inventory = inv/hosts.yml\nremote_user = admin\nprivate_key_file = {k}\n"
    ));
    let run = apply(&env, &[], &["-e", "expected=admin"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(run.total("ok"), 4, "{}", run.all());
    // Each of user and key is needed: without one, the nodes refuse us.
    cfg(&format!(
        "inventory = inv/hosts.yml\nprivate_key_file = {k}\n"
    ));
    let run = apply(&env, &[], &["-e", "expected=admin"]);
    assert_eq!(run.total("unreachable"), 2, "{}", run.all());
    cfg("inventory = inv/hosts.yml\nremote_user = admin\n");
    let run = apply(&env, &[], &["-e", "expected=admin"]);
    assert_eq!(run.total("unreachable"), 2, "{}", run.all());
    // The variable wins over the file, the flag over both.
    cfg(&format!(
        "inventory = inv/hosts.yml\nremote_user = admin\nprivate_key_file = {k}\n"
    ));
    let nobody = [("ANSIBLE_REMOTE_USER", "nobody")];
    let run = apply(&env, &nobody, &["-e", "expected=admin"]);
    assert_eq!(run.total("unreachable"), 2, "{}", run.all());
    let run = apply(&env, &nobody, &["-e", "expected=admin", "-u", "admin"]);
    assert_eq!(run.code, 0, "{}", run.all());
    // ANSIBLE_INVENTORY names the inventory as well.
    std::fs::remove_file(env.path("ansible.cfg")).expect("rm");
    let inv = env.path("inv/hosts.yml");
    let vars = [
        ("ANSIBLE_INVENTORY", inv.to_str().expect("utf8")),
        ("ANSIBLE_REMOTE_USER", "admin"),
        ("ANSIBLE_PRIVATE_KEY_FILE", k.as_str()),
    ];
    let run = apply(&env, &vars, &["-e", "expected=admin"]);
    assert_eq!(run.code, 0, "{}", run.all());
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn ansible_cfg_become_and_forks_act() {
    let env = Env::new(3);
    trust_lab(&env);
    bare_inventory(&env);
    env.write("site.yml", WHOAMI);
    let k = key(&env);
    let base = format!(
        "[defaults]\ninventory = inv/hosts.yml\nremote_user = admin\nprivate_key_file = {k}\n"
    );
    env.write(
        "ansible.cfg",
        &format!("{base}[privilege_escalation]\nbecome = True\nbecome_user = nobody\n"),
    );
    let run = apply(&env, &[], &["-e", "expected=nobody"]);
    assert_eq!(run.code, 0, "become_user from ansible.cfg: {}", run.all());
    let run = apply(
        &env,
        &[("ANSIBLE_BECOME_USER", "root")],
        &["-e", "expected=root"],
    );
    assert_eq!(run.code, 0, "ANSIBLE_BECOME_USER: {}", run.all());
    env.write("ansible.cfg", &format!("{base}forks = 1\n"));
    // Each host writes when its sleep began and ended; with forks = 1 no
    // two intervals overlap, with all hosts at once they do.
    env.write(
        "site.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - command: 'true'\n    \
         - shell: date +%s.%N > ~/start; sleep 1; date +%s.%N > ~/end\n",
    );
    let spans = |run: &Run| -> Vec<(f64, f64)> {
        assert_eq!(run.code, 0, "{}", run.all());
        let read = |n: &str, f: &str| -> f64 {
            env.node_file(n, &format!("/home/admin/{f}"))
                .expect("written")
                .trim()
                .parse()
                .expect("a time")
        };
        let mut s: Vec<(f64, f64)> = env
            .node_names()
            .iter()
            .map(|n| (read(n, "start"), read(n, "end")))
            .collect();
        s.sort_by(|a, b| a.0.total_cmp(&b.0));
        s
    };
    let overlaps = |s: &[(f64, f64)]| s.windows(2).any(|w| w[1].0 < w[0].1);
    let serial = spans(&apply(&env, &[], &[]));
    assert!(
        !overlaps(&serial),
        "forks = 1 ran hosts together: {serial:?}"
    );
    let parallel = spans(&apply(&env, &[("ANSIBLE_FORKS", "3")], &[]));
    assert!(
        overlaps(&parallel),
        "ANSIBLE_FORKS=3 ran hosts one by one: {parallel:?}"
    );
    let flag = spans(&apply(&env, &[("ANSIBLE_FORKS", "3")], &["-f", "1"]));
    assert!(!overlaps(&flag), "-f 1 did not win: {flag:?}");
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn host_key_checking_false_learns_new_hosts_and_still_refuses_a_changed_key() {
    let env = Env::new(2);
    bare_inventory(&env);
    env.write(
        "site.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - command: 'true'\n",
    );
    let k = key(&env);
    let base = format!(
        "[defaults]\ninventory = inv/hosts.yml\nremote_user = admin\nprivate_key_file = {k}\n"
    );
    let known = env.path(".ssh/known_hosts");
    // Checking on (the default): an unknown host is refused.
    env.write("ansible.cfg", &base);
    let run = apply(&env, &[], &[]);
    assert_eq!(run.total("unreachable"), 2, "{}", run.all());
    assert!(!known.exists());
    // Off in the file: learned, as accept-new.
    env.write("ansible.cfg", &format!("{base}host_key_checking = False\n"));
    let run = apply(&env, &[], &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    let learned = std::fs::read_to_string(&known).expect("learned");
    assert_eq!(learned.lines().count(), 2, "{learned}");
    // A changed key is still refused, said once per host with the fix.
    let other = std::fs::read_to_string(env.lab.key_path().with_extension("pub")).expect("pub");
    let other_key: Vec<&str> = other.split_whitespace().take(2).collect();
    let changed: String = learned
        .lines()
        .map(|l| {
            let host = l.split_whitespace().next().unwrap_or_default();
            format!("{host} {}\n", other_key.join(" "))
        })
        .collect();
    std::fs::write(&known, &changed).expect("write");
    let run = apply(&env, &[], &[]);
    assert_eq!(run.total("unreachable"), 2, "{}", run.all());
    let all = run.all();
    assert_eq!(all.matches("REMOTE HOST KEY CHANGED").count(), 2, "{all}");
    assert!(all.contains("drover known-hosts forget"), "{all}");
    assert_eq!(std::fs::read_to_string(&known).expect("read"), changed);
    // The variable alone does it too, and wins over the file.
    std::fs::remove_file(&known).expect("rm");
    env.write("ansible.cfg", &format!("{base}host_key_checking = True\n"));
    let run = apply(&env, &[("ANSIBLE_HOST_KEY_CHECKING", "False")], &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(
        std::fs::read_to_string(&known)
            .expect("learned")
            .lines()
            .count(),
        2
    );
    // So does `-o StrictHostKeyChecking=no` in ssh_args; with
    // UserKnownHostsFile=/dev/null nothing is written anywhere, run after run.
    std::fs::remove_file(&known).expect("rm");
    env.write(
        "ansible.cfg",
        &format!(
            "{base}[ssh_connection]\nssh_args = -o StrictHostKeyChecking=no\n    -o UserKnownHostsFile=/dev/null\n"
        ),
    );
    for _ in 0..2 {
        let run = apply(&env, &[], &[]);
        assert_eq!(run.code, 0, "{}", run.all());
    }
    assert!(!known.exists());
    let null = std::fs::metadata("/dev/null").expect("stat");
    assert!(std::os::unix::fs::FileTypeExt::is_char_device(
        &null.file_type()
    ));
}

#[test]
fn timeout_from_the_environment_wins_over_the_file() {
    // A server that accepts and never speaks: only the timeout ends the wait.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming() {
            held.push(s);
        }
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::write(
        d.join("hosts"),
        format!("silent ansible_host=127.0.0.1 ansible_port={port} ansible_user=x\n"),
    )
    .expect("write");
    std::fs::write(
        d.join("site.yml"),
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - command: 'true'\n",
    )
    .expect("write");
    std::fs::write(
        d.join("ansible.cfg"),
        "[defaults]\ninventory = hosts\ntimeout = 2\nhost_key_checking = no\n",
    )
    .expect("write");
    let timed = |vars: &[(&str, &str)]| {
        let start = Instant::now();
        let run = drover(d, d, vars, &["apply", "site.yml", "--output", "json"]);
        (start.elapsed(), run)
    };
    let (took, run) = timed(&[]);
    assert!(run.all().contains("timed out after 2s"), "{}", run.all());
    assert!(took >= Duration::from_secs(2), "{took:?}");
    let (_, run) = timed(&[("ANSIBLE_TIMEOUT", "1")]);
    assert!(run.all().contains("timed out after 1s"), "{}", run.all());
}

#[test]
fn roles_path_from_ansible_cfg_finds_roles() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let role = d.join("shared/greet/tasks");
    std::fs::create_dir_all(&role).expect("mkdir");
    std::fs::write(role.join("main.yml"), "- debug: msg=hi\n").expect("write");
    let play = d.join("play");
    std::fs::create_dir(&play).expect("mkdir");
    std::fs::write(
        play.join("site.yml"),
        "- hosts: all\n  gather_facts: false\n  roles: [greet]\n",
    )
    .expect("write");
    let check =
        |vars: &[(&str, &str)]| drover(d, d, vars, &["apply", "play/site.yml", "--syntax-check"]);
    let run = check(&[]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.all().contains("the role 'greet' was not found"),
        "{}",
        run.all()
    );
    // Relative to the file's directory, as Ansible resolves it.
    std::fs::write(
        d.join("ansible.cfg"),
        "[defaults]\nroles_path = ./elsewhere:shared\n",
    )
    .expect("write");
    let run = check(&[]);
    assert_eq!(run.code, 0, "{}", run.all());
    // The variable wins over the file.
    let run = check(&[("ANSIBLE_ROLES_PATH", "/nonexistent")]);
    assert_eq!(run.code, 1, "{}", run.all());
}

#[test]
fn vault_password_file_from_ansible_cfg_opens_vaulted_vars() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::write(d.join("pw"), "s3cret\n").expect("write");
    std::fs::write(d.join("secret.yml"), "token: from-the-vault\n").expect("write");
    let enc = drover(
        d,
        d,
        &[],
        &[
            "vault",
            "encrypt",
            "--vault-password-file",
            "pw",
            "secret.yml",
        ],
    );
    assert_eq!(enc.code, 0, "{}", enc.all());
    std::fs::write(d.join("hosts"), "localhost ansible_connection=local\n").expect("write");
    std::fs::write(
        d.join("site.yml"),
        "- hosts: all\n  gather_facts: false\n  vars_files: [secret.yml]\n  tasks:\n    \
         - assert:\n        that: token == 'from-the-vault'\n",
    )
    .expect("write");
    let run_it = || drover(d, d, &[], &["apply", "site.yml", "--output", "json"]);
    std::fs::write(d.join("ansible.cfg"), "[defaults]\ninventory = hosts\n").expect("write");
    let run = run_it();
    assert_eq!(run.code, 1, "no password: {}", run.all());
    std::fs::write(
        d.join("ansible.cfg"),
        "[defaults]\ninventory = hosts\nvault_password_file = pw\n",
    )
    .expect("write");
    let run = run_it();
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(!run.all().contains("from-the-vault"), "{}", run.all());
}

#[test]
fn an_output_callback_drover_lacks_is_refused_where_it_is_set() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::write(d.join("hosts"), "localhost ansible_connection=local\n").expect("write");
    std::fs::write(
        d.join("site.yml"),
        format!(
            "- hosts: all\n  gather_facts: false\n  tasks:\n    - file: path={} state=touch\n",
            d.join("ran").display()
        ),
    )
    .expect("write");
    std::fs::write(
        d.join("ansible.cfg"),
        "# mine\n[defaults]\ninventory = hosts\nstdout_callback = yaml\n",
    )
    .expect("write");
    let run = drover(d, d, &[], &["apply", "site.yml"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let cfg = d.join("ansible.cfg");
    assert!(
        run.stderr
            .contains(&format!("{}:4: stdout_callback = yaml", cfg.display())),
        "{}",
        run.all()
    );
    assert!(!d.join("ran").exists(), "ran before refusing");
    // `default` is drover's own output; the variable is read the same way.
    let run = drover(
        d,
        d,
        &[("ANSIBLE_STDOUT_CALLBACK", "default")],
        &["apply", "site.yml"],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    let run = drover(d, d, &[("ANSIBLE_STDOUT_CALLBACK", "json")], &["config"]);
    assert!(
        run.stderr
            .contains("env ANSIBLE_STDOUT_CALLBACK: stdout_callback = json"),
        "{}",
        run.all()
    );
    let refused = "[privilege_escalation]\nbecome_method = doas\n";
    std::fs::write(&cfg, refused).expect("write");
    let run = drover(d, d, &[], &["config"]);
    assert!(
        run.stderr.contains(":2: become_method = doas"),
        "{}",
        run.all()
    );
}

#[test]
fn a_world_writable_directorys_ansible_cfg_is_ignored_with_one_warning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    let cwd = dir.path().join("mnt-c-project");
    std::fs::create_dir_all(&home).expect("mkdir");
    std::fs::create_dir_all(&cwd).expect("mkdir");
    let cfg = cwd.join("ansible.cfg");
    std::fs::write(&cfg, "[defaults]\nforks = 4\n").expect("write");
    let run = drover(&cwd, &home, &[], &["config"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stdout.contains(&format!("({}:2)", cfg.display())),
        "{}",
        run.all()
    );
    std::fs::set_permissions(&cwd, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let run = drover(&cwd, &home, &[], &["config", "--output", "json"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(run.stderr.matches("[WARNING]").count(), 1, "{}", run.all());
    assert!(run.stderr.contains("is world-writable"), "{}", run.all());
    assert!(
        run.stderr
            .contains(&format!("ANSIBLE_CONFIG={}", cfg.display())),
        "{}",
        run.all()
    );
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    assert_eq!(doc["file"], serde_json::Value::Null);
    assert_eq!(doc["settings"]["forks"]["origin"]["kind"], "default");
    // Named with ANSIBLE_CONFIG it is read, without a warning.
    let named = [("ANSIBLE_CONFIG", cfg.to_str().expect("utf8"))];
    let run = drover(&cwd, &home, &named, &["config", "--output", "json"]);
    assert!(!run.stderr.contains("[WARNING]"), "{}", run.all());
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    assert_eq!(doc["settings"]["forks"]["value"], "4");
    assert_eq!(doc["settings"]["forks"]["origin"]["line"], 2);
}
