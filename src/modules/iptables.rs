//! `iptables` (ansible.builtin.iptables): one rule, a chain's policy, a
//! flush, or a user chain, in the kernel's live tables (nothing is saved).
//!
//! The rule is built from the arguments in Ansible's order (the `rule` it
//! returns is the same text). One read per task finds `iptables` (and
//! `ip6tables` for `ip_version: ipv6|both`), its version, and asks the
//! tool what is there: `-C` for a rule, `-L` for a chain or its policy.
//! `decide` turns the answers into the commands to run (`-A`, `-I`, `-D`,
//! `-N`, `-X`, `-P`, `-F`), each argument quoted.
//!
//! Ansible's quirks are kept, since roles depend on the changed flag:
//! a flush always reports a change; `state: absent` with no rule reports a
//! change whenever the chain exists and deletes it only with
//! `chain_management`, and `state: present` with no rule reports one
//! whenever the chain is missing and creates it only with
//! `chain_management`. Listing is always numeric (`-n`): drover reads only
//! the exit status and the policy header, so `numeric` has nothing to
//! change.

use async_trait::async_trait;
use base64::Engine as _;
use serde::Deserialize;

use super::args::{bool_ish, opt_string_ish, opt_strings_ish, Presence};
use super::{
    Decision, Module, ModuleCtx, ModuleError, Observed, Plan, Protocol, ReadCtx, ReadSet, Scope,
    Touched,
};
use crate::transport::shell_quote;
use crate::{Map, Value};

/// Where Ansible looks for a tool besides `PATH` (`get_bin_path`).
const SBIN: &str = "/sbin:/usr/sbin:/usr/local/sbin";

/// Arguments of `iptables`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Iptables {
    /// The table: filter, nat, mangle, raw or security.
    #[serde(default)]
    table: Table,
    /// Whether the rule (or, with no rule, the chain) should exist.
    #[serde(default)]
    state: Presence,
    /// Append a missing rule at the end, or insert it (at `rule_num`).
    #[serde(default)]
    action: Action,
    /// Where `action: insert` puts the rule (1 is the top).
    #[serde(default, deserialize_with = "opt_string_ish")]
    rule_num: Option<String>,
    /// ipv4 (iptables), ipv6 (ip6tables) or both.
    #[serde(default)]
    ip_version: IpVersion,
    /// The chain (required unless `flush`).
    #[serde(default, deserialize_with = "opt_string_ish")]
    chain: Option<String>,
    /// `-p`: the protocol (`!` first inverts).
    #[serde(default, deserialize_with = "opt_string_ish")]
    protocol: Option<String>,
    /// `-w`: seconds to wait for the xtables lock.
    #[serde(default, deserialize_with = "opt_string_ish")]
    wait: Option<String>,
    /// `-s`: source address (`!` first inverts).
    #[serde(default, deserialize_with = "opt_string_ish")]
    source: Option<String>,
    /// `--to-source` (SNAT).
    #[serde(default, deserialize_with = "opt_string_ish")]
    to_source: Option<String>,
    /// `-d`: destination address (`!` first inverts).
    #[serde(default, deserialize_with = "opt_string_ish")]
    destination: Option<String>,
    /// `--to-destination` (DNAT).
    #[serde(default, deserialize_with = "opt_string_ish")]
    to_destination: Option<String>,
    /// `-m`: match extensions, in order (`!` first inverts).
    #[serde(default, rename = "match", deserialize_with = "opt_strings_ish")]
    matches: Option<Vec<String>>,
    /// `--tcp-flags FLAGS FLAGS_SET`.
    #[serde(default)]
    tcp_flags: Option<TcpFlags>,
    /// `-j`: the target.
    #[serde(default, deserialize_with = "opt_string_ish")]
    jump: Option<String>,
    /// `--gateway` (only with `jump: TEE`).
    #[serde(default, deserialize_with = "opt_string_ish")]
    gateway: Option<String>,
    /// `--log-prefix` (implies `jump: LOG`).
    #[serde(default, deserialize_with = "opt_string_ish")]
    log_prefix: Option<String>,
    /// `--log-level`: 0-7 or a syslog level name (implies `jump: LOG`).
    #[serde(default, deserialize_with = "opt_string_ish")]
    log_level: Option<String>,
    /// `-g`: continue in this chain.
    #[serde(default, deserialize_with = "opt_string_ish")]
    goto: Option<String>,
    /// `-i`: incoming interface.
    #[serde(default, deserialize_with = "opt_string_ish")]
    in_interface: Option<String>,
    /// `-o`: outgoing interface.
    #[serde(default, deserialize_with = "opt_string_ish")]
    out_interface: Option<String>,
    /// `-f`: fragments.
    #[serde(default, deserialize_with = "opt_string_ish")]
    fragment: Option<String>,
    /// `-c`: initial packet and byte counters.
    #[serde(default, deserialize_with = "opt_string_ish")]
    set_counters: Option<String>,
    /// `--source-port`.
    #[serde(default, deserialize_with = "opt_string_ish")]
    source_port: Option<String>,
    /// `--destination-port`.
    #[serde(default, deserialize_with = "opt_string_ish")]
    destination_port: Option<String>,
    /// `-m multiport --dports` (ports or ranges).
    #[serde(default, deserialize_with = "opt_strings_ish")]
    destination_ports: Option<Vec<String>>,
    /// `--to-ports` (REDIRECT, MASQUERADE).
    #[serde(default, deserialize_with = "opt_string_ish")]
    to_ports: Option<String>,
    /// `--set-dscp` (implies `-j DSCP`).
    #[serde(default, deserialize_with = "opt_string_ish")]
    set_dscp_mark: Option<String>,
    /// `--set-dscp-class` (implies `-j DSCP`).
    #[serde(default, deserialize_with = "opt_string_ish")]
    set_dscp_mark_class: Option<String>,
    /// `-m comment --comment`.
    #[serde(default, deserialize_with = "opt_string_ish")]
    comment: Option<String>,
    /// Connection states (`-m conntrack --ctstate`, or `--state` with
    /// `match: state`).
    #[serde(default, deserialize_with = "opt_strings_ish")]
    ctstate: Option<Vec<String>>,
    /// `-m iprange --src-range`.
    #[serde(default, deserialize_with = "opt_string_ish")]
    src_range: Option<String>,
    /// `-m iprange --dst-range`.
    #[serde(default, deserialize_with = "opt_string_ish")]
    dst_range: Option<String>,
    /// `-m set --match-set NAME FLAGS` (`!` first inverts).
    #[serde(default, deserialize_with = "opt_string_ish")]
    match_set: Option<String>,
    /// The flags of `match_set`: src, dst, src,dst, dst,src, src,src, dst,dst.
    #[serde(default, deserialize_with = "opt_string_ish")]
    match_set_flags: Option<String>,
    /// `-m limit --limit`.
    #[serde(default, deserialize_with = "opt_string_ish")]
    limit: Option<String>,
    /// `-m limit --limit-burst`.
    #[serde(default, deserialize_with = "opt_string_ish")]
    limit_burst: Option<String>,
    /// `-m owner --uid-owner` (`!` first inverts).
    #[serde(default, deserialize_with = "opt_string_ish")]
    uid_owner: Option<String>,
    /// `-m owner --gid-owner` (`!` first inverts).
    #[serde(default, deserialize_with = "opt_string_ish")]
    gid_owner: Option<String>,
    /// `--reject-with` (implies `jump: REJECT`).
    #[serde(default, deserialize_with = "opt_string_ish")]
    reject_with: Option<String>,
    /// `--icmp-type` (ipv4) or `--icmpv6-type` (ipv6).
    #[serde(default, deserialize_with = "opt_string_ish")]
    icmp_type: Option<String>,
    /// `--syn`: ignore, match or negate.
    #[serde(default)]
    syn: Syn,
    /// Flush the chain (every chain of the table without `chain`); always
    /// a change.
    #[serde(default, deserialize_with = "bool_ish")]
    flush: bool,
    /// The chain's policy: ACCEPT, DROP, QUEUE or RETURN.
    #[serde(default)]
    policy: Option<Policy>,
    /// Create (present) or delete (absent) the chain when no rule is given.
    #[serde(default, deserialize_with = "bool_ish")]
    chain_management: bool,
    /// List without name lookups: drover always does (it reads only the
    /// exit status and the policy header), so the value changes nothing.
    #[serde(default, rename = "numeric", deserialize_with = "bool_ish")]
    _numeric: bool,
}

/// `tcp_flags` suboptions.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TcpFlags {
    /// The flags examined.
    #[serde(default, deserialize_with = "opt_strings_ish")]
    flags: Option<Vec<String>>,
    /// Those of them that must be set.
    #[serde(default, deserialize_with = "opt_strings_ish")]
    flags_set: Option<Vec<String>>,
}

/// `table` values.
#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Table {
    #[default]
    Filter,
    Nat,
    Mangle,
    Raw,
    Security,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Filter => "filter",
            Table::Nat => "nat",
            Table::Mangle => "mangle",
            Table::Raw => "raw",
            Table::Security => "security",
        }
    }
}

/// `action` values.
#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Action {
    #[default]
    Append,
    Insert,
}

/// `ip_version` values.
#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum IpVersion {
    #[default]
    Ipv4,
    Ipv6,
    Both,
}

impl IpVersion {
    fn name(self) -> &'static str {
        match self {
            IpVersion::Ipv4 => "ipv4",
            IpVersion::Ipv6 => "ipv6",
            IpVersion::Both => "both",
        }
    }

    /// The tools to run, in Ansible's order.
    fn tools(self) -> &'static [&'static str] {
        match self {
            IpVersion::Ipv4 => &["iptables"],
            IpVersion::Ipv6 => &["ip6tables"],
            IpVersion::Both => &["iptables", "ip6tables"],
        }
    }
}

/// `syn` values.
#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Syn {
    #[default]
    Ignore,
    Match,
    Negate,
}

/// `policy` values.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
enum Policy {
    #[serde(rename = "ACCEPT")]
    Accept,
    #[serde(rename = "DROP")]
    Drop,
    #[serde(rename = "QUEUE")]
    Queue,
    #[serde(rename = "RETURN")]
    Return,
}

impl Policy {
    fn name(self) -> &'static str {
        match self {
            Policy::Accept => "ACCEPT",
            Policy::Drop => "DROP",
            Policy::Queue => "QUEUE",
            Policy::Return => "RETURN",
        }
    }
}

const LOG_LEVELS: &[&str] = &[
    "0", "1", "2", "3", "4", "5", "6", "7", "emerg", "alert", "crit", "error", "warning", "notice",
    "info", "debug",
];
const MATCH_SET_FLAGS: &[&str] = &["src", "dst", "src,dst", "dst,src", "dst,dst", "src,src"];

/// What the task does, once the arguments are known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `-F`.
    Flush,
    /// `-L` for the policy, then `-P`.
    Policy(Policy),
    /// `-L` for the chain, then `-N` or `-X` (with chain_management).
    Chain,
    /// `-C`, then `-A`/`-I` or `-D`.
    Rule,
}

/// What one tool's read found.
#[derive(Debug, Default, PartialEq, Eq)]
struct Found {
    /// Where the tool is; `None` when it is missing.
    path: Option<String>,
    /// `--version`'s first line.
    version: String,
    /// Exit status of the check (`-C` or `-L`).
    rc: Option<i32>,
    /// The check's output (`-L`: its first line holds the policy).
    out: String,
}

/// What `apply` runs: whole command lines, one per tool and step.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct IptablesChange {
    commands: Vec<Vec<String>>,
}

/// Add `flag value` (or `! flag rest` for a value starting with `!`).
fn param(rule: &mut Vec<String>, value: Option<&str>, flag: &str) {
    if let Some(v) = value {
        match v.strip_prefix('!') {
            Some(rest) => rule.extend(["!".into(), flag.into(), rest.into()]),
            None => rule.extend([flag.into(), v.into()]),
        }
    }
}

/// `--flag` when `value` is `match`, `! --flag` when it is `negate`.
fn match_flag(rule: &mut Vec<String>, value: Option<&str>, flag: &str) {
    match value {
        Some("match") => rule.push(flag.into()),
        Some("negate") => rule.extend(["!".into(), flag.into()]),
        _ => {}
    }
}

fn csv(rule: &mut Vec<String>, values: &[String], flag: &str) {
    if !values.is_empty() {
        rule.extend([flag.into(), values.join(",")]);
    }
}

fn module(rule: &mut Vec<String>, on: bool, name: &str) {
    if on {
        rule.extend(["-m".into(), name.into()]);
    }
}

impl Iptables {
    fn matches(&self) -> &[String] {
        self.matches.as_deref().unwrap_or(&[])
    }

    fn has_match(&self, name: &str) -> bool {
        self.matches().iter().any(|m| m == name)
    }

    fn logs(&self) -> bool {
        self.log_prefix.is_some() || self.log_level.is_some()
    }

    /// The jump the commands use: LOG when only logging options say so.
    fn effective_jump(&self) -> Option<&str> {
        match self.jump.as_deref() {
            None if self.logs() => Some("LOG"),
            j => j,
        }
    }

    /// The rule's words, in Ansible's order, with `jump` as the target.
    fn rule_with(&self, jump: Option<&str>) -> Vec<String> {
        let mut r = Vec::new();
        let r_ = &mut r;
        param(r_, self.protocol.as_deref(), "-p");
        param(r_, self.source.as_deref(), "-s");
        param(r_, self.destination.as_deref(), "-d");
        for m in self.matches() {
            param(r_, Some(m.as_str()), "-m");
        }
        if let Some(TcpFlags {
            flags: Some(f),
            flags_set: Some(s),
        }) = &self.tcp_flags
        {
            r_.extend(["--tcp-flags".into(), f.join(","), s.join(",")]);
        }
        param(r_, jump, "-j");
        if jump.is_some_and(|j| j.eq_ignore_ascii_case("tee")) {
            param(r_, self.gateway.as_deref(), "--gateway");
        }
        param(r_, self.log_prefix.as_deref(), "--log-prefix");
        param(r_, self.log_level.as_deref(), "--log-level");
        param(r_, self.to_destination.as_deref(), "--to-destination");
        let dports = self.destination_ports.as_deref().unwrap_or(&[]);
        module(r_, !dports.is_empty(), "multiport");
        csv(r_, dports, "--dports");
        param(r_, self.to_source.as_deref(), "--to-source");
        param(r_, self.goto.as_deref(), "-g");
        param(r_, self.in_interface.as_deref(), "-i");
        param(r_, self.out_interface.as_deref(), "-o");
        param(r_, self.fragment.as_deref(), "-f");
        param(r_, self.set_counters.as_deref(), "-c");
        param(r_, self.source_port.as_deref(), "--source-port");
        param(r_, self.destination_port.as_deref(), "--destination-port");
        param(r_, self.to_ports.as_deref(), "--to-ports");
        let not_dscp = !jump.is_some_and(|j| j.eq_ignore_ascii_case("dscp"));
        param(r_, self.set_dscp_mark.as_deref(), "--set-dscp");
        if self.set_dscp_mark.is_some() && not_dscp && jump.is_some() {
            r_.extend(["-j".into(), "DSCP".into()]);
        }
        param(r_, self.set_dscp_mark_class.as_deref(), "--set-dscp-class");
        if self.set_dscp_mark_class.is_some() && not_dscp && jump.is_some() {
            r_.extend(["-j".into(), "DSCP".into()]);
        }
        match self.syn {
            Syn::Match => r_.push("--syn".into()),
            Syn::Negate => r_.extend(["!".into(), "--syn".into()]),
            Syn::Ignore => {}
        }
        let ctstate = self.ctstate.as_deref().unwrap_or(&[]);
        if self.has_match("conntrack") {
            csv(r_, ctstate, "--ctstate");
        } else if self.has_match("state") {
            csv(r_, ctstate, "--state");
        } else if !ctstate.is_empty() {
            module(r_, true, "conntrack");
            csv(r_, ctstate, "--ctstate");
        }
        let ranged = self.src_range.is_some() || self.dst_range.is_some();
        module(r_, !self.has_match("iprange") && ranged, "iprange");
        param(r_, self.src_range.as_deref(), "--src-range");
        param(r_, self.dst_range.as_deref(), "--dst-range");
        if self.has_match("set") || self.match_set.is_some() {
            module(r_, !self.has_match("set"), "set");
            param(r_, self.match_set.as_deref(), "--match-set");
            // validate() makes sure the flags are there.
            r_.extend(self.match_set_flags.iter().cloned());
        }
        module(
            r_,
            self.limit.is_some() || self.limit_burst.is_some(),
            "limit",
        );
        param(r_, self.limit.as_deref(), "--limit");
        param(r_, self.limit_burst.as_deref(), "--limit-burst");
        for (owner, flag) in [
            (&self.uid_owner, "--uid-owner"),
            (&self.gid_owner, "--gid-owner"),
        ] {
            module(r_, owner.is_some(), "owner");
            // Ansible's own quirk: the words match/negate are also flags.
            match_flag(r_, owner.as_deref(), flag);
            param(r_, owner.as_deref(), flag);
        }
        if jump.is_none() {
            if self.reject_with.is_some() {
                r_.extend(["-j".into(), "REJECT".into()]);
            }
            if self.set_dscp_mark_class.is_some() || self.set_dscp_mark.is_some() {
                r_.extend(["-j".into(), "DSCP".into()]);
            }
        }
        param(r_, self.reject_with.as_deref(), "--reject-with");
        let icmp_flag = match self.ip_version {
            IpVersion::Ipv6 => "--icmpv6-type",
            _ => "--icmp-type",
        };
        param(r_, self.icmp_type.as_deref(), icmp_flag);
        module(r_, self.comment.is_some(), "comment");
        param(r_, self.comment.as_deref(), "--comment");
        r
    }

    /// The `rule` Ansible returns: built before a logging option implies
    /// `-j LOG`.
    fn rule_text(&self) -> String {
        self.rule_with(self.jump.as_deref()).join(" ")
    }

    fn mode(&self) -> Mode {
        if self.flush {
            Mode::Flush
        } else if let Some(p) = self.policy {
            Mode::Policy(p)
        } else if self.rule_with(self.jump.as_deref()).is_empty() {
            Mode::Chain
        } else {
            Mode::Rule
        }
    }

    /// A command line: `TOOL -t TABLE ACTION [CHAIN] [RULE_NUM] [-w W] [RULE]`.
    fn command(&self, tool: &str, action: &str, rule: bool, wait: bool) -> Vec<String> {
        let mut cmd = vec![
            tool.to_string(),
            "-t".into(),
            self.table.name().into(),
            action.into(),
        ];
        cmd.extend(self.chain.iter().cloned());
        if action == "-I" {
            cmd.extend(self.rule_num.iter().cloned());
        }
        if wait {
            if let Some(w) = self.wait.as_deref().filter(|w| !w.is_empty()) {
                cmd.extend(["-w".into(), w.into()]);
            }
        }
        if rule {
            cmd.extend(self.rule_with(self.effective_jump()));
        }
        cmd
    }

    /// The read of one tool: where it is, its version, and the check of
    /// this mode (with `-w` when `wait`).
    fn read_tool(&self, tool: &str, wait: bool) -> String {
        let check = match self.mode() {
            Mode::Flush => None,
            Mode::Rule => Some(self.command("\"$p\"", "-C", true, wait)),
            Mode::Policy(_) | Mode::Chain => {
                let mut c = self.command("\"$p\"", "-L", false, wait);
                c.push("-n".into());
                Some(c)
            }
        };
        let mut s = format!(
            "if p=$(command -v {tool}); then\n\
             printf '@@path {tool} %s\\n' \"$(printf %s \"$p\" | base64 -w0)\"\n\
             printf '@@version {tool} %s\\n' \"$(\"$p\" --version 2>&1 | head -n1 | base64 -w0)\"\n"
        );
        if let Some(check) = check {
            let words: Vec<String> = check
                .iter()
                .enumerate()
                .map(|(i, w)| if i == 0 { w.clone() } else { shell_quote(w) })
                .collect();
            s.push_str(&format!(
                "o=$({} 2>&1 </dev/null); printf '@@rc {tool} %s %s\\n' $? \"$(printf %s \"$o\" | base64 -w0)\"\n",
                words.join(" ")
            ));
        }
        s.push_str(&format!("else echo '@@missing {tool}'; fi\n"));
        s
    }

    fn read_script(&self, wait: bool) -> String {
        let mut s = format!("PATH=\"$PATH:{SBIN}\"\n");
        for tool in self.ip_version.tools() {
            s.push_str(&self.read_tool(tool, wait));
        }
        s.push_str("echo @@end\n");
        s
    }

    fn data(&self) -> Map {
        let mut d = Map::new();
        d.insert("ip_version".into(), Value::from(self.ip_version.name()));
        d.insert("table".into(), Value::from(self.table.name()));
        d.insert(
            "chain".into(),
            self.chain.clone().map_or(Value::Null, Value::from),
        );
        d.insert("flush".into(), Value::Bool(self.flush));
        d.insert("rule".into(), Value::from(self.rule_text()));
        d.insert(
            "state".into(),
            Value::from(match self.state {
                Presence::Present => "present",
                Presence::Absent => "absent",
            }),
        );
        d.insert(
            "chain_management".into(),
            Value::Bool(self.chain_management),
        );
        d.insert(
            "wait".into(),
            self.wait.clone().map_or(Value::Null, Value::from),
        );
        d
    }

    /// The plan from what each tool's read found (in `tools()` order).
    fn plan(&self, found: &[Found]) -> Result<Plan<IptablesChange>, ModuleError> {
        let mut change = IptablesChange::default();
        let mut changed = false;
        for (tool, f) in self.ip_version.tools().iter().zip(found) {
            let Some(path) = f.path.as_deref() else {
                return Err(missing(tool));
            };
            if self.logs() && self.jump.as_deref().is_some_and(|j| j != "LOG") {
                return Err(ModuleError::failed(
                    "Logging options can only be used with the LOG jump target.",
                ));
            }
            let wait = wait_supported(&f.version);
            let rc = f.rc.unwrap_or(0);
            match self.mode() {
                Mode::Flush => {
                    changed = true;
                    change.commands.push(self.command(path, "-F", false, wait));
                }
                Mode::Policy(p) => {
                    if rc != 0 {
                        return Err(tool_failed(
                            &self.command(path, "-L", false, wait),
                            rc,
                            None,
                            &f.out,
                        ));
                    }
                    let current = policy_of(&f.out)
                        .ok_or_else(|| ModuleError::failed("Can't detect current policy"))?;
                    if current != p.name() {
                        changed = true;
                        let mut cmd = self.command(path, "-P", false, wait);
                        cmd.push(p.name().into());
                        change.commands.push(cmd);
                    }
                }
                Mode::Chain => {
                    let present = rc == 0;
                    let absent = self.state == Presence::Absent;
                    if present == absent {
                        changed = true;
                        if self.chain_management {
                            let action = if absent { "-X" } else { "-N" };
                            change
                                .commands
                                .push(self.command(path, action, false, wait));
                        }
                    }
                }
                Mode::Rule => {
                    let present = rc == 0;
                    let wanted = self.state == Presence::Present;
                    if present != wanted {
                        changed = true;
                        let action = match (wanted, self.action) {
                            (false, _) => "-D",
                            (true, Action::Insert) => "-I",
                            (true, Action::Append) => "-A",
                        };
                        change.commands.push(self.command(path, action, true, wait));
                    }
                }
            }
        }
        let data = self.data();
        Ok(if changed {
            Plan::Change {
                change,
                diff: None,
                data,
            }
        } else {
            Plan::Unchanged(data)
        })
    }
}

/// The failure when a tool is not on the host.
fn missing(tool: &str) -> ModuleError {
    ModuleError::failed(format!(
        "Failed to find required executable \"{tool}\" on the host (searched PATH and {}): \
         {tool} is not installed there (Debian: the iptables package)",
        SBIN.replace(':', ", ")
    ))
}

/// A command that failed, as Ansible's `run_command(check_rc=True)` fails.
/// `stdout` when the command's own output was kept apart.
fn tool_failed(cmd: &[String], rc: i32, stdout: Option<&str>, output: &str) -> ModuleError {
    let mut data = Map::new();
    data.insert("cmd".into(), Value::from(cmd.join(" ")));
    data.insert("rc".into(), Value::from(rc));
    if let Some(stdout) = stdout {
        data.insert("stdout".into(), Value::from(stdout));
    }
    data.insert("stderr".into(), Value::from(output));
    ModuleError::Failed {
        msg: output.trim_end().to_string(),
        data,
    }
}

/// Does this `--version` line (`iptables v1.8.9 (nf_tables)`) take
/// `-w SECONDS` (1.6.0 and later)? Older versions get no `-w`, as
/// Ansible gives them none.
fn wait_supported(version: &str) -> bool {
    let Some((_, v)) = version.split_once('v') else {
        return true;
    };
    let nums: Vec<u64> = v
        .split(|c: char| !c.is_ascii_digit())
        .take_while(|p| !p.is_empty())
        .filter_map(|p| p.parse().ok())
        .take(3)
        .collect();
    // A version drover cannot read is taken to be a current one.
    nums.is_empty() || nums.as_slice() >= [1u64, 6, 0].as_slice()
}

/// The policy in `-L CHAIN`'s header (`Chain INPUT (policy DROP)`).
fn policy_of(listing: &str) -> Option<&str> {
    let header = listing.lines().next()?;
    let rest = &header[header.find("(policy ")? + "(policy ".len()..];
    let word = &rest[..rest.find(|c: char| !c.is_ascii_uppercase())?];
    (!word.is_empty() && rest[word.len()..].starts_with(')')).then_some(word)
}

fn parse(out: &str, tools: &[&str]) -> Result<Vec<Found>, super::OutputError> {
    let b64 = |s: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(s.trim())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|e| super::OutputError::Malformed(format!("bad output: {e}")))
    };
    let mut found: Vec<Found> = tools.iter().map(|_| Found::default()).collect();
    let mut ended = false;
    for line in out.lines() {
        if line == "@@end" {
            ended = true;
            continue;
        }
        let mut words = line.splitn(3, ' ');
        let (Some(tag), Some(tool)) = (words.next(), words.next()) else {
            continue;
        };
        let rest = words.next().unwrap_or("");
        let Some(i) = tools.iter().position(|t| *t == tool) else {
            continue;
        };
        let f = &mut found[i];
        match tag {
            "@@path" => f.path = Some(b64(rest)?),
            "@@version" => f.version = b64(rest)?,
            "@@rc" => {
                let (rc, text) = rest.split_once(' ').unwrap_or((rest, ""));
                f.rc = Some(rc.parse().map_err(|_| {
                    super::OutputError::Malformed(format!("bad exit status {rc:?}"))
                })?);
                f.out = b64(text)?;
            }
            "@@missing" => f.path = None,
            _ => {}
        }
    }
    if !ended {
        return Err(super::OutputError::Incomplete);
    }
    Ok(found)
}

/// An argument that is given but empty: Ansible's module breaks on it.
fn not_empty(name: &str, v: &Option<String>) -> Result<(), super::ArgError> {
    match v {
        Some(s) if s.is_empty() => Err(super::ArgError {
            arg: Some(name.into()),
            msg: format!("{name} cannot be empty"),
        }),
        _ => Ok(()),
    }
}

#[async_trait]
impl Module for Iptables {
    const NAME: &'static str = "iptables";
    const ARGS: &'static [&'static str] = &[
        "table",
        "state",
        "action",
        "rule_num",
        "ip_version",
        "chain",
        "protocol",
        "wait",
        "source",
        "to_source",
        "destination",
        "to_destination",
        "match",
        "tcp_flags",
        "jump",
        "gateway",
        "log_prefix",
        "log_level",
        "goto",
        "in_interface",
        "out_interface",
        "fragment",
        "set_counters",
        "source_port",
        "destination_port",
        "destination_ports",
        "to_ports",
        "set_dscp_mark",
        "set_dscp_mark_class",
        "comment",
        "ctstate",
        "src_range",
        "dst_range",
        "match_set",
        "match_set_flags",
        "limit",
        "limit_burst",
        "uid_owner",
        "gid_owner",
        "reject_with",
        "icmp_type",
        "syn",
        "flush",
        "policy",
        "chain_management",
        "numeric",
    ];
    type Change = IptablesChange;

    fn validate(&self) -> Result<(), super::ArgError> {
        if self.set_dscp_mark.is_some() && self.set_dscp_mark_class.is_some() {
            return Err(
                "parameters are mutually exclusive: set_dscp_mark|set_dscp_mark_class".into(),
            );
        }
        if self.flush && self.policy.is_some() {
            return Err("parameters are mutually exclusive: flush|policy".into());
        }
        for (name, v) in [
            ("set_dscp_mark", &self.set_dscp_mark),
            ("set_dscp_mark_class", &self.set_dscp_mark_class),
        ] {
            if v.is_some() && self.jump.is_none() {
                return Err(format!("missing parameter(s) required by '{name}': jump").into());
            }
        }
        if let Some(j) = self.jump.as_deref().filter(|j| *j == "TEE" || *j == "tee") {
            if self.gateway.is_none() {
                return Err(
                    format!("jump is {j} but all of the following are missing: gateway").into(),
                );
            }
        }
        if !self.flush && self.chain.is_none() {
            return Err("flush is False but all of the following are missing: chain".into());
        }
        for (name, v, choices) in [
            ("log_level", &self.log_level, LOG_LEVELS),
            ("match_set_flags", &self.match_set_flags, MATCH_SET_FLAGS),
        ] {
            if let Some(v) = v.as_deref().filter(|v| !choices.contains(v)) {
                return Err(super::ArgError {
                    arg: Some(name.into()),
                    msg: format!(
                        "value of {name} must be one of: {}, got: {v}",
                        choices.join(", ")
                    ),
                });
            }
        }
        if let Some(t) = &self.tcp_flags {
            if t.flags.is_none() || t.flags_set.is_none() {
                return Err(super::ArgError {
                    arg: Some("tcp_flags".into()),
                    msg: "tcp_flags needs both flags and flags_set".into(),
                });
            }
        }
        if (self.match_set.is_some() || self.has_match("set")) && self.match_set_flags.is_none() {
            return Err(super::ArgError {
                arg: Some("match_set_flags".into()),
                msg: "match_set (or match: set) needs match_set_flags".into(),
            });
        }
        if self.icmp_type.is_some() && self.ip_version == IpVersion::Both {
            return Err(super::ArgError {
                arg: Some("icmp_type".into()),
                msg: "icmp_type cannot be used with ip_version: both (iptables takes \
                      --icmp-type, ip6tables --icmpv6-type): write one task per version"
                    .into(),
            });
        }
        for (name, v) in [
            ("chain", &self.chain),
            ("rule_num", &self.rule_num),
            ("protocol", &self.protocol),
            ("source", &self.source),
            ("to_source", &self.to_source),
            ("destination", &self.destination),
            ("to_destination", &self.to_destination),
            ("jump", &self.jump),
            ("gateway", &self.gateway),
            ("log_prefix", &self.log_prefix),
            ("goto", &self.goto),
            ("in_interface", &self.in_interface),
            ("out_interface", &self.out_interface),
            ("fragment", &self.fragment),
            ("set_counters", &self.set_counters),
            ("source_port", &self.source_port),
            ("destination_port", &self.destination_port),
            ("to_ports", &self.to_ports),
            ("set_dscp_mark", &self.set_dscp_mark),
            ("set_dscp_mark_class", &self.set_dscp_mark_class),
            ("comment", &self.comment),
            ("src_range", &self.src_range),
            ("dst_range", &self.dst_range),
            ("match_set", &self.match_set),
            ("limit", &self.limit),
            ("limit_burst", &self.limit_burst),
            ("uid_owner", &self.uid_owner),
            ("gid_owner", &self.gid_owner),
            ("reject_with", &self.reject_with),
            ("icmp_type", &self.icmp_type),
        ] {
            not_empty(name, v)?;
        }
        Ok(())
    }

    fn reads(&self, _ctx: &ReadCtx<'_>) -> Result<Protocol, ModuleError> {
        Ok(Protocol::Declared(ReadSet::one(
            self.read_script(true),
            Scope::Host,
        )))
    }

    fn decide(
        &self,
        observed: &Observed,
        _ctx: &ReadCtx<'_>,
    ) -> Result<Decision<IptablesChange>, ModuleError> {
        let tools = self.ip_version.tools();
        let read = |i| {
            super::reads::parse_read(observed.output(i)?, "the iptables rules", |o| {
                parse(o, tools)
            })
        };
        let found = read(0)?;
        // An iptables older than 1.6.0 takes no `-w SECONDS`: check again
        // without it (read 1), as Ansible runs it.
        let old = self.wait.is_some()
            && found
                .iter()
                .any(|f| f.path.is_some() && !wait_supported(&f.version));
        if old {
            if observed.len() < 2 {
                return Ok(Decision::Read(ReadSet::one(
                    self.read_script(false),
                    Scope::Host,
                )));
            }
            return self.plan(&read(1)?).map(Decision::Plan);
        }
        self.plan(&found).map(Decision::Plan)
    }

    fn touches(&self, change: &IptablesChange) -> Touched {
        if change.commands.is_empty() {
            Touched::Nothing
        } else {
            // No file changes; reads of the host's state (Scope::Host,
            // other iptables tasks among them) are forgotten.
            Touched::Paths(Vec::new())
        }
    }

    async fn apply(&self, ctx: &ModuleCtx<'_>, change: IptablesChange) -> Result<Map, ModuleError> {
        for cmd in change.commands {
            let line: Vec<String> = cmd.iter().map(|w| shell_quote(w)).collect();
            let out = ctx.remote.exec(&line.join(" "), b"").await?;
            if out.status != 0 {
                return Err(tool_failed(
                    &cmd,
                    out.status,
                    Some(&out.stdout_str()),
                    &out.stderr_str(),
                ));
            }
        }
        Ok(Map::new())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::modules::reads::observed_stdout;
    use crate::modules::testutil::{assert_args_complete, TestRender};

    fn m(v: Value) -> Iptables {
        let m: Iptables = serde_json::from_value(v).expect("args");
        m.validate().expect("valid");
        m
    }

    fn invalid(v: Value) -> String {
        let m: Iptables = serde_json::from_value(v).expect("args");
        m.validate().expect_err("invalid").msg
    }

    fn b(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    /// A tool, and what its read saw (`None`: missing): version, status, output.
    type Seen<'a> = (&'a str, Option<(&'a str, i32, &'a str)>);

    /// A read's output: per tool, its path, `--version` line, check status
    /// and output.
    fn read(tools: &[Seen<'_>]) -> String {
        let mut s = String::new();
        for (tool, seen) in tools {
            match seen {
                Some((version, rc, out)) => {
                    s += &format!("@@path {tool} {}\n", b(&format!("/usr/sbin/{tool}")));
                    s += &format!("@@version {tool} {}\n", b(version));
                    s += &format!("@@rc {tool} {rc} {}\n", b(out));
                }
                None => s += &format!("@@missing {tool}\n"),
            }
        }
        s + "@@end\n"
    }

    fn decide(args: Value, out: &[String]) -> Result<Decision<IptablesChange>, ModuleError> {
        let out: Vec<&str> = out.iter().map(String::as_str).collect();
        let render = TestRender::new(json!({}));
        let ctx = render.read_ctx();
        m(args).decide(&observed_stdout(&out), &ctx)
    }

    /// The commands of the plan, and its result; `None` when unchanged.
    fn planned(args: Value, out: &str) -> (Option<Vec<String>>, Map) {
        match decide(args, &[out.to_string()]) {
            Ok(Decision::Plan(Plan::Change { change, data, .. })) => (
                Some(change.commands.iter().map(|c| c.join(" ")).collect()),
                data,
            ),
            Ok(Decision::Plan(Plan::Unchanged(data))) => (None, data),
            Ok(_) => panic!("unexpected decision"),
            Err(e) => panic!("failed: {e}"),
        }
    }

    const V189: &str = "iptables v1.8.9 (nf_tables)";

    #[test]
    fn args() {
        assert_args_complete::<Iptables>();
    }

    #[test]
    fn builds_rules_in_ansibles_order() {
        let r = m(json!({
            "chain": "INPUT", "protocol": "tcp", "source": "!10.0.0.0/8",
            "destination_port": 22, "ctstate": "NEW,ESTABLISHED", "syn": "match",
            "jump": "ACCEPT", "comment": "ssh in", "in_interface": "eth0",
        }));
        assert_eq!(
            r.rule_text(),
            "-p tcp ! -s 10.0.0.0/8 -j ACCEPT -i eth0 --destination-port 22 --syn \
             -m conntrack --ctstate NEW,ESTABLISHED -m comment --comment ssh in"
        );
        let nat = m(json!({
            "table": "nat", "chain": "PREROUTING", "protocol": "tcp", "match": "tcp",
            "destination_port": "80", "jump": "REDIRECT", "to_ports": 8600,
        }));
        assert_eq!(
            nat.rule_text(),
            "-p tcp -m tcp -j REDIRECT --destination-port 80 --to-ports 8600"
        );
        let ports = m(json!({
            "chain": "INPUT", "protocol": "tcp", "destination_ports": ["80", 443, "8081:8083"],
            "jump": "ACCEPT", "match": ["state"], "ctstate": ["NEW"],
        }));
        assert_eq!(
            ports.rule_text(),
            "-p tcp -m state -j ACCEPT -m multiport --dports 80,443,8081:8083 --state NEW"
        );
        let misc = m(json!({
            "chain": "OUTPUT", "jump": "DROP", "protocol": "tcp",
            "tcp_flags": {"flags": "ALL", "flags_set": ["ACK", "RST"]},
            "src_range": "192.168.1.100-192.168.1.199", "match_set": "!admins",
            "match_set_flags": "src", "limit": "2/second", "limit_burst": 20,
            "uid_owner": "!1000", "gid_owner": "adm",
        }));
        assert_eq!(
            misc.rule_text(),
            "-p tcp --tcp-flags ALL ACK,RST -j DROP -m iprange --src-range \
             192.168.1.100-192.168.1.199 -m set ! --match-set admins src -m limit --limit \
             2/second --limit-burst 20 -m owner ! --uid-owner 1000 -m owner --gid-owner adm"
        );
        let reject = m(json!({"chain": "INPUT", "protocol": "tcp", "reject_with": "tcp-reset"}));
        assert_eq!(
            reject.rule_text(),
            "-p tcp -j REJECT --reject-with tcp-reset"
        );
        let dscp = m(json!({"chain": "OUTPUT", "table": "mangle", "jump": "DSCP",
                            "set_dscp_mark_class": "CS1"}));
        assert_eq!(dscp.rule_text(), "-j DSCP --set-dscp-class CS1");
        let icmp6 = m(
            json!({"chain": "INPUT", "ip_version": "ipv6", "protocol": "ipv6-icmp",
                             "icmp_type": "echo-request", "jump": "ACCEPT"}),
        );
        assert_eq!(
            icmp6.rule_text(),
            "-p ipv6-icmp -j ACCEPT --icmpv6-type echo-request"
        );
        let snat = m(
            json!({"table": "nat", "chain": "POSTROUTING", "out_interface": "eth0",
                            "jump": "SNAT", "to_source": "1.2.3.4", "goto": "X"}),
        );
        assert_eq!(snat.rule_text(), "-j SNAT --to-source 1.2.3.4 -g X -o eth0");
    }

    #[test]
    fn logging_options_imply_log_in_the_commands_not_in_the_returned_rule() {
        let args = json!({"chain": "LOGGING", "limit": "2/second", "log_prefix": "IPT: ",
                          "log_level": "info"});
        assert_eq!(
            m(args.clone()).rule_text(),
            "--log-prefix IPT:  --log-level info -m limit --limit 2/second"
        );
        let (cmds, data) = planned(args, &read(&[("iptables", Some((V189, 1, "")))]));
        assert_eq!(
            cmds.expect("change"),
            vec![
                "/usr/sbin/iptables -t filter -A LOGGING -j LOG --log-prefix IPT:  \
                  --log-level info -m limit --limit 2/second"
            ]
        );
        assert_eq!(
            data["rule"],
            json!("--log-prefix IPT:  --log-level info -m limit --limit 2/second")
        );
        let err = decide(
            json!({"chain": "X", "jump": "DROP", "log_prefix": "p"}),
            &[read(&[("iptables", Some((V189, 1, "")))])],
        )
        .err()
        .expect("refused");
        assert!(err.to_string().contains("LOG jump target"), "{err}");
    }

    #[test]
    fn a_rule_is_appended_inserted_or_deleted_only_when_the_check_says_so() {
        let rule = json!({"chain": "INPUT", "source": "8.8.8.8", "jump": "DROP"});
        let absent = read(&[("iptables", Some((V189, 1, "iptables: Bad rule")))]);
        let present = read(&[("iptables", Some((V189, 0, "")))]);
        let (cmds, data) = planned(rule.clone(), &absent);
        assert_eq!(
            cmds.expect("change"),
            vec!["/usr/sbin/iptables -t filter -A INPUT -s 8.8.8.8 -j DROP"]
        );
        assert_eq!(data["rule"], json!("-s 8.8.8.8 -j DROP"));
        assert_eq!(data["chain"], json!("INPUT"));
        assert_eq!(data["wait"], Value::Null);
        assert!(planned(rule.clone(), &present).0.is_none(), "converged");
        let insert = json!({"chain": "INPUT", "source": "8.8.8.8", "jump": "DROP",
                            "action": "insert", "rule_num": 5, "wait": 10});
        assert_eq!(
            planned(insert, &absent).0.expect("change"),
            vec!["/usr/sbin/iptables -t filter -I INPUT 5 -w 10 -s 8.8.8.8 -j DROP"]
        );
        let gone = json!({"chain": "INPUT", "source": "8.8.8.8", "jump": "DROP",
                          "state": "absent"});
        assert!(planned(gone.clone(), &absent).0.is_none());
        assert_eq!(
            planned(gone, &present).0.expect("change"),
            vec!["/usr/sbin/iptables -t filter -D INPUT -s 8.8.8.8 -j DROP"]
        );
    }

    #[test]
    fn both_versions_run_each_tool_that_differs() {
        let args = json!({"chain": "INPUT", "protocol": "tcp", "destination_port": 22,
                          "jump": "ACCEPT", "ip_version": "both"});
        let out = read(&[
            ("iptables", Some((V189, 0, ""))),
            ("ip6tables", Some(("ip6tables v1.8.9 (nf_tables)", 1, ""))),
        ]);
        assert_eq!(
            planned(args, &out).0.expect("change"),
            vec!["/usr/sbin/ip6tables -t filter -A INPUT -p tcp -j ACCEPT --destination-port 22"]
        );
    }

    #[test]
    fn chains_policies_and_flushes_follow_ansibles_changed_rules() {
        let missing = read(&[("iptables", Some((V189, 1, "No chain")))]);
        let there = read(&[(
            "iptables",
            Some((V189, 0, "Chain FOO (0 references)\ntarget prot\n")),
        )]);
        let create = json!({"chain": "FOO", "chain_management": true});
        assert_eq!(
            planned(create.clone(), &missing).0.expect("change"),
            vec!["/usr/sbin/iptables -t filter -N FOO"]
        );
        assert!(planned(create, &there).0.is_none());
        // Without chain_management: reported, not done.
        assert_eq!(
            planned(json!({"chain": "FOO"}), &missing).0,
            Some(Vec::new())
        );
        let delete = json!({"chain": "FOO", "chain_management": true, "state": "absent"});
        assert_eq!(
            planned(delete.clone(), &there).0.expect("change"),
            vec!["/usr/sbin/iptables -t filter -X FOO"]
        );
        assert!(planned(delete, &missing).0.is_none());
        let policy = json!({"chain": "INPUT", "policy": "DROP"});
        let accept = read(&[(
            "iptables",
            Some((V189, 0, "Chain INPUT (policy ACCEPT)\ntarget\n")),
        )]);
        let drop = read(&[("iptables", Some((V189, 0, "Chain INPUT (policy DROP)\n")))]);
        assert_eq!(
            planned(policy.clone(), &accept).0.expect("change"),
            vec!["/usr/sbin/iptables -t filter -P INPUT DROP"]
        );
        assert!(planned(policy.clone(), &drop).0.is_none());
        let err = decide(policy, &[there]).err().expect("no policy");
        assert_eq!(err.to_string(), "Can't detect current policy");
        let flush = read(&[("iptables", Some((V189, 0, "")))]);
        assert_eq!(
            planned(json!({"chain": "FOO", "flush": true}), &flush)
                .0
                .expect("change"),
            vec!["/usr/sbin/iptables -t filter -F FOO"]
        );
        assert_eq!(
            planned(json!({"table": "nat", "flush": true}), &flush)
                .0
                .expect("change"),
            vec!["/usr/sbin/iptables -t nat -F"]
        );
    }

    #[test]
    fn a_missing_tool_is_named() {
        let err = decide(
            json!({"chain": "INPUT", "jump": "ACCEPT", "ip_version": "ipv6"}),
            &[read(&[("ip6tables", None)])],
        )
        .err()
        .expect("missing");
        let msg = err.to_string();
        assert!(
            msg.contains("\"ip6tables\"") && msg.contains("not installed"),
            "{msg}"
        );
    }

    #[test]
    fn an_old_iptables_is_checked_again_without_wait() {
        let args = json!({"chain": "INPUT", "jump": "ACCEPT", "source": "1.2.3.4", "wait": 5});
        let old = read(&[("iptables", Some(("iptables v1.4.21", 0, "")))]);
        match decide(args.clone(), std::slice::from_ref(&old)) {
            Ok(Decision::Read(more)) => {
                assert!(m(args.clone()).read_script(true).contains(" -w 5 "));
                assert!(!more.reads[0].script.contains(" -w 5 "));
            }
            _ => panic!("expected a second read"),
        }
        let again = read(&[("iptables", Some(("iptables v1.4.21", 1, "")))]);
        match decide(args, &[old, again]) {
            Ok(Decision::Plan(Plan::Change { change, .. })) => assert_eq!(
                change.commands[0].join(" "),
                "/usr/sbin/iptables -t filter -A INPUT -s 1.2.3.4 -j ACCEPT"
            ),
            _ => panic!("expected a change"),
        }
        assert!(wait_supported(V189));
        assert!(wait_supported("iptables v1.6.0"));
        assert!(!wait_supported("iptables v1.4.21"));
    }

    #[test]
    fn the_read_quotes_every_argument() {
        let r = m(json!({"chain": "INPUT", "comment": "it's $(reboot)", "jump": "ACCEPT"}));
        let s = r.read_script(true);
        assert!(s.contains("'it'\\''s $(reboot)'"), "{s}");
        assert!(s.contains("\"$p\" -t filter -C INPUT"), "{s}");
        assert!(s.contains(SBIN), "{s}");
        let c = m(json!({"chain": "FOO"})).read_script(true);
        assert!(c.contains("-L FOO -n"), "{c}");
    }

    #[test]
    fn refuses_what_ansible_refuses_or_breaks_on() {
        for (args, want) in [
            (json!({"jump": "ACCEPT"}), "missing: chain"),
            (
                json!({"flush": true, "policy": "DROP"}),
                "mutually exclusive",
            ),
            (
                json!({"chain": "X", "set_dscp_mark": 8, "set_dscp_mark_class": "CS1",
                       "jump": "DSCP"}),
                "mutually exclusive",
            ),
            (json!({"chain": "X", "set_dscp_mark": 8}), "required by"),
            (json!({"chain": "X", "jump": "TEE"}), "gateway"),
            (json!({"chain": "X", "log_level": "loud"}), "must be one of"),
            (json!({"chain": "X", "match_set": "s"}), "match_set_flags"),
            (
                json!({"chain": "X", "tcp_flags": {"flags": "ALL"}}),
                "flags_set",
            ),
            (
                json!({"chain": "X", "source": ""}),
                "source cannot be empty",
            ),
            (
                json!({"chain": "X", "icmp_type": "8", "ip_version": "both"}),
                "icmp_type",
            ),
        ] {
            let msg = invalid(args.clone());
            assert!(msg.contains(want), "{args}: {msg}");
        }
        assert!(
            serde_json::from_value::<Iptables>(json!({"chain": "X", "table": "nope"})).is_err()
        );
        assert!(serde_json::from_value::<Iptables>(json!({"chain": "X", "to_port": 1})).is_err());
    }

    #[test]
    fn parses_the_read() {
        let out = read(&[("iptables", Some((V189, 0, "x"))), ("ip6tables", None)]);
        let f = parse(&out, &["iptables", "ip6tables"]).expect("parse");
        assert_eq!(f[0].path.as_deref(), Some("/usr/sbin/iptables"));
        assert_eq!(f[0].version, V189);
        assert_eq!((f[0].rc, f[0].out.as_str()), (Some(0), "x"));
        assert_eq!(f[1].path, None);
        assert!(parse("@@missing iptables\n", &["iptables"]).is_err());
        assert_eq!(policy_of("Chain INPUT (policy DROP 0 packets)"), None);
        assert_eq!(policy_of("Chain INPUT (policy DROP)"), Some("DROP"));
    }
}
