//! The iptables module against the real iptables, in a private network
//! namespace of the test's own (`unshare --net`), with a local
//! connection: the host's own firewall is never touched. Each test keeps
//! one namespace alive (a `sleep` started by `unshare`, killed by its PID
//! at the end) and runs drover and `iptables -S` inside it with `nsenter`.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::harness::Run;
use crate::local::results;

/// A network namespace held open by a process of ours.
struct Netns {
    holder: Child,
}

impl Netns {
    fn new() -> Netns {
        let holder = Command::new("unshare")
            .args(["--net", "--", "sleep", "3600"])
            .stdin(Stdio::null())
            .spawn()
            .expect("unshare runs (needs root)");
        let ns = Netns { holder };
        // unshare enters the namespace, then execs sleep: wait for it.
        let own = std::fs::read_link("/proc/self/ns/net").expect("own netns");
        for _ in 0..500 {
            let theirs = std::fs::read_link(ns.path()).ok();
            if theirs.is_some_and(|t| t != own)
                && std::fs::read_to_string(format!("/proc/{}/comm", ns.holder.id()))
                    .is_ok_and(|c| c.trim() == "sleep")
            {
                return ns;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("the namespace holder never entered its network namespace");
    }

    fn path(&self) -> String {
        format!("/proc/{}/ns/net", self.holder.id())
    }

    /// `program args` inside the namespace.
    fn command(&self, program: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", self.path()))
            .arg("--")
            .arg(program);
        c
    }

    /// `iptables -S` (or ip6tables) of `table`, inside the namespace.
    fn rules(&self, tool: &str, table: &str) -> String {
        let out = self
            .command(tool)
            .args(["-t", table, "-S"])
            .output()
            .expect("iptables runs");
        assert!(out.status.success(), "{tool} -S failed: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Every table drover's playbooks here touch, as one text.
    fn all_rules(&self) -> String {
        ["filter", "nat", "mangle"]
            .iter()
            .map(|t| format!("# {t}\n{}", self.rules("iptables", t)))
            .chain(std::iter::once(format!(
                "# ip6 filter\n{}",
                self.rules("ip6tables", "filter")
            )))
            .collect()
    }

    /// drover with a local connection, inside the namespace.
    fn drover(&self, dir: &Path, playbook: &str, args: &[&str]) -> Run {
        let drover = self.command(env!("CARGO_BIN_EXE_drover"));
        crate::local::local_through(drover, dir, playbook, args)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

const FIREWALL: &str = r#"
- hosts: all
  gather_facts: false
  tasks:
    - name: chain
      iptables:
        chain: DROVER-IN
        chain_management: true
    - name: ssh
      iptables:
        chain: DROVER-IN
        protocol: tcp
        destination_port: 22
        ctstate: NEW
        syn: match
        comment: "ssh in"
        jump: ACCEPT
    - name: web
      iptables:
        chain: DROVER-IN
        protocol: tcp
        destination_ports: ["80", "443", "8081:8083"]
        source: "!10.0.0.0/8"
        jump: ACCEPT
    - name: log
      iptables:
        chain: DROVER-IN
        limit: 2/second
        limit_burst: 20
        log_prefix: "DROVER: "
        log_level: info
    - name: established first
      iptables:
        chain: INPUT
        ctstate: [ESTABLISHED, RELATED]
        jump: ACCEPT
        action: insert
        rule_num: 1
    - name: to the chain
      iptables:
        chain: INPUT
        in_interface: lo
        jump: DROVER-IN
        wait: 5
    - name: redirect
      iptables:
        table: nat
        chain: PREROUTING
        protocol: tcp
        match: tcp
        destination_port: 80
        jump: REDIRECT
        to_ports: 8600
    - name: dscp
      iptables:
        table: mangle
        chain: OUTPUT
        protocol: udp
        jump: DSCP
        set_dscp_mark_class: CS1
    - name: v6 ping
      iptables:
        ip_version: ipv6
        chain: INPUT
        protocol: ipv6-icmp
        icmp_type: echo-request
        jump: ACCEPT
    - name: policy
      iptables:
        chain: FORWARD
        policy: DROP
      register: pol
    - name: returned
      assert:
        that:
          - pol.chain == 'FORWARD'
          - pol.table == 'filter'
          - pol.ip_version == 'ipv4'
          - pol.rule == ''
          - pol.flush == false
"#;

const UNDO: &str = r#"
- hosts: all
  gather_facts: false
  tasks:
    - name: no established
      iptables:
        chain: INPUT
        ctstate: [ESTABLISHED, RELATED]
        jump: ACCEPT
        state: absent
    - name: no jump to the chain
      iptables:
        chain: INPUT
        in_interface: lo
        jump: DROVER-IN
        state: absent
@FLUSH@    - name: delete the chain
      iptables:
        chain: DROVER-IN
        chain_management: true
        state: absent
    - name: nat
      iptables:
        table: nat
        flush: true
    - name: mangle
      iptables:
        table: mangle
        chain: OUTPUT
        flush: true
    - name: v6
      iptables:
        ip_version: ipv6
        chain: INPUT
        protocol: ipv6-icmp
        icmp_type: echo-request
        jump: ACCEPT
        state: absent
    - name: policy back
      iptables:
        chain: FORWARD
        policy: ACCEPT
"#;

/// Emptying the chain before deleting it (a flush of a chain that is no
/// more fails, as Ansible's does).
const FLUSH_CHAIN: &str = "    - name: flush the chain
      iptables:
        chain: DROVER-IN
        flush: true
";

fn changed(run: &Run) -> u64 {
    run.total("changed")
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn iptables_rules_converge_in_a_private_namespace() {
    let ns = Netns::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let pristine = ns.all_rules();
    assert!(pristine.contains("-P FORWARD ACCEPT"), "{pristine}");

    // --check changes nothing, and says what would change.
    let check = ns.drover(dir.path(), FIREWALL, &["--check"]);
    assert_eq!(check.code, 0, "{}", check.all());
    assert_eq!(changed(&check), 10, "{}", check.all());
    assert_eq!(ns.all_rules(), pristine, "--check changed the tables");

    let first = ns.drover(dir.path(), FIREWALL, &[]);
    assert_eq!(first.code, 0, "{}", first.all());
    assert_eq!(changed(&first), 10, "{}", first.all());
    let filter = ns.rules("iptables", "filter");
    let want = [
        "-P FORWARD DROP",
        "-N DROVER-IN",
        "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "-A INPUT -i lo -j DROVER-IN",
        "-A DROVER-IN -p tcp -m tcp --dport 22 --tcp-flags FIN,SYN,RST,ACK SYN \
         -m conntrack --ctstate NEW -m comment --comment \"ssh in\" -j ACCEPT",
        "-A DROVER-IN ! -s 10.0.0.0/8 -p tcp -m multiport --dports 80,443,8081:8083 -j ACCEPT",
        "-A DROVER-IN -m limit --limit 2/sec --limit-burst 20 -j LOG \
         --log-prefix \"DROVER: \" --log-level 6",
    ];
    let lines: Vec<&str> = filter.lines().collect();
    for w in want {
        assert!(lines.contains(&w), "missing {w:?} in:\n{filter}");
    }
    // insert at 1 put the conntrack rule above the jump.
    let pos = |w: &str| lines.iter().position(|l| l.starts_with(w));
    assert!(
        pos("-A INPUT -m conntrack") < pos("-A INPUT -i lo"),
        "{filter}"
    );
    assert!(
        ns.rules("iptables", "nat")
            .contains("-A PREROUTING -p tcp -m tcp --dport 80 -j REDIRECT --to-ports 8600"),
        "{}",
        ns.rules("iptables", "nat")
    );
    assert!(
        ns.rules("iptables", "mangle")
            .contains("-A OUTPUT -p udp -j DSCP --set-dscp 0x08"),
        "{}",
        ns.rules("iptables", "mangle")
    );
    assert!(
        ns.rules("ip6tables", "filter")
            .contains("-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 128 -j ACCEPT"),
        "{}",
        ns.rules("ip6tables", "filter")
    );

    // Converged: a second run and a --check run change nothing.
    let converged = ns.all_rules();
    let second = ns.drover(dir.path(), FIREWALL, &[]);
    assert_eq!(second.code, 0, "{}", second.all());
    assert_eq!(changed(&second), 0, "{}", second.all());
    assert_eq!(ns.all_rules(), converged);

    // Undoing it: the flushes always report a change (as Ansible's do).
    let undo = ns.drover(dir.path(), &UNDO.replace("@FLUSH@", FLUSH_CHAIN), &[]);
    assert_eq!(undo.code, 0, "{}", undo.all());
    assert_eq!(changed(&undo), 8, "{}", undo.all());
    assert_eq!(ns.all_rules(), pristine);
    let again = ns.drover(dir.path(), &UNDO.replace("@FLUSH@", ""), &[]);
    assert_eq!(again.code, 0, "{}", again.all());
    assert_eq!(changed(&again), 2, "only the flushes: {}", again.all());
    assert_eq!(ns.all_rules(), pristine);
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn iptables_reports_a_bad_rule_with_the_tools_message() {
    let ns = Netns::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let run = ns.drover(
        dir.path(),
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: bad\n      iptables:\n        chain: NO-SUCH-CHAIN\n        jump: ACCEPT\n        source: 1.2.3.4\n",
        &[],
    );
    assert_eq!(run.code, 2, "{}", run.all());
    let r = results(&run, "bad");
    let msg = r[0]["msg"].as_str().unwrap_or("");
    assert!(msg.contains("No chain/target/match"), "{msg}");
    assert!(ns.rules("iptables", "filter").lines().count() == 3);
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn iptables_says_so_when_the_tool_is_missing() {
    // A private mount namespace where /usr/sbin (and /sbin through it, or
    // on its own) is an empty directory: no iptables anywhere.
    let dir = tempfile::tempdir().expect("tempdir");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    std::fs::write(
        dir.path().join("hosts"),
        "localhost ansible_connection=local\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("site.yml"),
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: rule\n      iptables:\n        chain: INPUT\n        jump: ACCEPT\n        source: 1.2.3.4\n",
    )
    .expect("write");
    let script = "for d in /usr/sbin /sbin /usr/local/sbin; do \
                  [ -d \"$d\" ] && [ ! -L \"$d\" ] || continue; mount --bind \"$1\" \"$d\" || exit 9; done; \
                  exec \"$2\" apply site.yml -i hosts --output json";
    let out = Command::new("unshare")
        .args(["--net", "--mount", "--", "sh", "-c", script, "sh"])
        .arg(&empty)
        .arg(env!("CARGO_BIN_EXE_drover"))
        .current_dir(dir.path())
        .env("HOME", dir.path())
        .output()
        .expect("unshare runs");
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert_eq!(run.code, 2, "{}", run.all());
    let r = results(&run, "rule");
    let msg = r[0]["msg"].as_str().unwrap_or("");
    assert!(
        msg.contains("\"iptables\"") && msg.contains("not installed"),
        "{msg}"
    );
}
