//! `ufw` (community.general.ufw): the Uncomplicated Firewall's state,
//! default policies, logging and rules, driven through the `ufw` program.
//!
//! Whether a ufw command changes anything is known only to ufw: it
//! normalises rules (`22/tcp`, `from any`, app profiles, v4 and v6 twins)
//! and skips the ones it already has. So drover decides as Ansible's module
//! does, from what ufw itself shows:
//! - the declared reads are `ufw status verbose` and the `### tuple` lines
//!   of the user rules files (plus `ufw --version`, and `ufw status
//!   numbered` for a relative `insert`);
//! - in check mode the decision is Ansible's check-mode one, from those
//!   reads and, for a rule, from a second read: the same rule with
//!   `--dry-run`, which prints the rules files ufw would write;
//! - otherwise the commands always run (as Ansible runs them: `ufw -f
//!   enable` on an enabled firewall reloads it) in one exec that also
//!   takes the state before and after, and the task changed when
//!   `ufw status verbose` or the rules differ (or it reloaded or reset).
//!
//! The result carries Ansible's `commands` (each command as Ansible's
//! module prints it) and, after a run, `msg`: the status ufw reports.

use async_trait::async_trait;
use base64::Engine as _;
use serde::Deserialize;

use super::args::{opt_bool_ish, opt_string_ish, opt_u64_ish};
use super::safe;
use super::{
    ArgError, Decision, Module, ModuleCtx, ModuleError, Observed, Plan, Protocol, ReadCtx, ReadSet,
    Scope, Touched,
};
use crate::transport::{shell_quote, ExecOutput};
use crate::{Map, Value};

/// Directories searched after `$PATH`, as Ansible's `get_bin_path` does.
const SBIN: &str = "/sbin:/usr/sbin:/usr/local/sbin";

/// Where ufw keeps its user rules (old, current and other layouts), in
/// the order Ansible's module reads them.
const USER_RULES: &[&str] = &[
    "/lib/ufw/user.rules",
    "/lib/ufw/user6.rules",
    "/etc/ufw/user.rules",
    "/etc/ufw/user6.rules",
    "/var/lib/ufw/user.rules",
    "/var/lib/ufw/user6.rules",
];

/// What ufw's commands may change on the host (iptables aside).
const UFW_PATHS: &[&str] = &[
    "/etc/ufw",
    "/etc/default/ufw",
    "/lib/ufw",
    "/var/lib/ufw",
    "/proc/sys/net",
    "/run",
];

/// Arguments of `ufw`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ufw {
    /// enabled, disabled, reloaded or reset.
    #[serde(default)]
    state: Option<State>,
    /// The default policy (for `direction`, incoming when none).
    #[serde(default, alias = "policy")]
    default: Option<Policy>,
    /// Logging level (or on/off).
    #[serde(default)]
    logging: Option<Logging>,
    /// Direction of a rule (in, out) or of a default policy (incoming,
    /// outgoing, routed).
    #[serde(default)]
    direction: Option<Direction>,
    /// Delete the rule instead of adding it.
    #[serde(default, deserialize_with = "opt_bool_ish")]
    delete: Option<bool>,
    /// A route (forwarding) rule.
    #[serde(default, deserialize_with = "opt_bool_ish")]
    route: Option<bool>,
    /// Insert the rule as this number (counted from `insert_relative_to`).
    #[serde(default, deserialize_with = "opt_u64_ish")]
    insert: Option<u64>,
    /// What `insert` counts from.
    #[serde(default)]
    insert_relative_to: Option<RelativeTo>,
    /// allow, deny, limit or reject: add (or delete) a rule.
    #[serde(default)]
    rule: Option<RuleKind>,
    /// The interface of the rule (with `direction`).
    #[serde(default, alias = "if", deserialize_with = "opt_string_ish")]
    interface: Option<String>,
    /// Incoming interface.
    #[serde(default, alias = "if_in", deserialize_with = "opt_string_ish")]
    interface_in: Option<String>,
    /// Outgoing interface.
    #[serde(default, alias = "if_out", deserialize_with = "opt_string_ish")]
    interface_out: Option<String>,
    /// Log new connections matching the rule.
    #[serde(default, deserialize_with = "opt_bool_ish")]
    log: Option<bool>,
    /// Source address (`any` when none).
    #[serde(
        default,
        alias = "from",
        alias = "src",
        deserialize_with = "opt_string_ish"
    )]
    from_ip: Option<String>,
    /// Source port.
    #[serde(default, deserialize_with = "opt_string_ish")]
    from_port: Option<String>,
    /// Destination address (`any` when none).
    #[serde(
        default,
        alias = "dest",
        alias = "to",
        deserialize_with = "opt_string_ish"
    )]
    to_ip: Option<String>,
    /// Destination port.
    #[serde(default, alias = "port", deserialize_with = "opt_string_ish")]
    to_port: Option<String>,
    /// Protocol.
    #[serde(default, alias = "protocol")]
    proto: Option<Proto>,
    /// An application profile (`OpenSSH`).
    #[serde(default, alias = "app", deserialize_with = "opt_string_ish")]
    name: Option<String>,
    /// A comment stored with the rule.
    #[serde(default, deserialize_with = "opt_string_ish")]
    comment: Option<String>,
}

/// `state` values.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum State {
    Enabled,
    Disabled,
    Reloaded,
    Reset,
}

/// `default` (`policy`) values.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Policy {
    Allow,
    Deny,
    Reject,
}

/// `logging` values.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Logging {
    Full,
    High,
    Low,
    Medium,
    Off,
    On,
}

/// `direction` values.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Direction {
    In,
    Incoming,
    Out,
    Outgoing,
    Routed,
}

/// `insert_relative_to` values.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
enum RelativeTo {
    #[default]
    Zero,
    FirstIpv4,
    LastIpv4,
    FirstIpv6,
    LastIpv6,
}

/// `rule` values.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum RuleKind {
    Allow,
    Deny,
    Limit,
    Reject,
}

/// `proto` values.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Proto {
    Ah,
    Any,
    Esp,
    Ipv6,
    Tcp,
    Udp,
    Gre,
    Igmp,
    Vrrp,
}

/// The lowercase name serde knows a unit variant by.
fn word<T: std::fmt::Debug>(v: T) -> String {
    format!("{v:?}").to_ascii_lowercase()
}

impl State {
    fn verb(self) -> &'static str {
        match self {
            State::Enabled => "enable",
            State::Disabled => "disable",
            State::Reloaded => "reload",
            State::Reset => "reset",
        }
    }
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Incoming => "incoming",
            Direction::Out => "out",
            Direction::Outgoing => "outgoing",
            Direction::Routed => "routed",
        }
    }
}

/// One ufw command: how Ansible's module prints it, and its words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    /// The command as Ansible's `commands` result shows it.
    shown: String,
    /// The words it runs with.
    argv: Vec<String>,
    /// A failure of the command does not fail the task (the rules grep,
    /// whose files may not all exist).
    may_fail: bool,
}

impl Cmd {
    /// Build from Ansible-style pieces: each piece is shown as written and
    /// split into its words.
    fn new(pieces: &[Piece]) -> Cmd {
        Cmd {
            shown: pieces
                .iter()
                .map(|p| p.shown.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            argv: pieces.iter().flat_map(|p| p.words.clone()).collect(),
            may_fail: false,
        }
    }

    /// The command as shell text, every word quoted.
    fn script(&self) -> String {
        self.argv
            .iter()
            .map(|w| shell_quote(w))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A piece of a command line: its text as shown, and its words.
#[derive(Debug, Clone)]
struct Piece {
    shown: String,
    words: Vec<String>,
}

impl Piece {
    /// Words shown as they are, space-separated.
    fn words(words: &[&str]) -> Piece {
        Piece {
            shown: words.join(" "),
            words: words.iter().map(|w| w.to_string()).collect(),
        }
    }

    /// A keyword and a quoted value (`app 'OpenSSH'`, `comment 'k3s'`).
    fn quoted(keyword: &str, value: &str) -> Piece {
        Piece {
            shown: format!("{keyword} '{value}'"),
            words: vec![keyword.to_string(), value.to_string()],
        }
    }
}

/// What a run does: the commands in order, and whether the task changes
/// whatever the state shows (reload, reset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UfwRun {
    ufw: String,
    grep: String,
    /// The ufw commands of the task (state, default, rule, logging), with
    /// `ufw --version` before a rule, as Ansible runs them.
    commands: Vec<Cmd>,
    /// reloaded or reset: changed whatever the state shows.
    forced: bool,
    /// The logging level set: Ansible's module calls it a change when the
    /// status before shows another (or none, ufw being inactive).
    logging: Option<Logging>,
}

impl UfwRun {
    /// The steps of the run, in order: the state before, the commands,
    /// the state after.
    fn steps(&self) -> Vec<Cmd> {
        let status = Ufw::status_cmd(&self.ufw);
        let rules = Ufw::rules_cmd(&self.grep);
        let mut steps = vec![status.clone(), rules.clone()];
        steps.extend(self.commands.iter().cloned());
        steps.extend([status, rules]);
        steps
    }
}

/// The executables found on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Bins {
    ufw: String,
    grep: String,
}

/// Read indexes of the first stage.
const LOCATE: usize = 0;
const STATUS: usize = 1;
const RULES: usize = 2;
const VERSION: usize = 3;
const NUMBERED: usize = 4;

/// The environment every ufw command runs in: sbin directories searched,
/// and the C locale, whose words the module parses.
fn env_prefix() -> String {
    format!("export PATH=\"$PATH:{SBIN}\" LANG=C LC_ALL=C; ")
}

/// The regex of an IPv4 address anywhere, as Ansible's module writes it.
fn ipv4_re() -> &'static regex::Regex {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| regex::Regex::new(IPV4).expect("ipv4 regex"))
}

fn ipv6_re() -> &'static regex::Regex {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| regex::Regex::new(IPV6).expect("ipv6 regex"))
}

/// An IPv4 address: four dot-separated numbers of at most 255.
const IPV4: &str =
    r"((25[0-5]|(2[0-4]|1{0,1}[0-9]){0,1}[0-9])\.){3,3}(25[0-5]|(2[0-4]|1{0,1}[0-9]){0,1}[0-9])";

/// An IPv6 address in any of its abbreviated forms (with a zone, or an
/// embedded IPv4 address).
const IPV6: &str = concat!(
    r"(([0-9a-fA-F]{1,4}:){7,7}[0-9a-fA-F]{1,4}|([0-9a-fA-F]{1,4}:){1,7}:",
    r"|([0-9a-fA-F]{1,4}:){1,6}:[0-9a-fA-F]{1,4}|([0-9a-fA-F]{1,4}:){1,5}",
    r"(:[0-9a-fA-F]{1,4}){1,2}|([0-9a-fA-F]{1,4}:){1,4}(:[0-9a-fA-F]{1,4})",
    r"{1,3}|([0-9a-fA-F]{1,4}:){1,3}(:[0-9a-fA-F]{1,4}){1,4}|([0-9a-fA-F]",
    r"{1,4}:){1,2}(:[0-9a-fA-F]{1,4}){1,5}|[0-9a-fA-F]{1,4}:((:[0-9a-fA-F]",
    r"{1,4}){1,6})|:((:[0-9a-fA-F]{1,4}){1,7}|:)|fe80:(:[0-9a-fA-F]{0,4})",
    r"{0,4}%[0-9a-zA-Z]{1,}|::(ffff(:0{1,4}){0,1}:){0,1}((25[0-5]|(2[0-4]",
    r"|1{0,1}[0-9]){0,1}[0-9])\.){3,3}(25[0-5]|(2[0-4]|1{0,1}[0-9]){0,1}",
    r"[0-9])|([0-9a-fA-F]{1,4}:){1,4}:((25[0-5]|(2[0-4]|1{0,1}[0-9]){0,1}",
    r"[0-9])\.){3,3}(25[0-5]|(2[0-4]|1{0,1}[0-9]){0,1}[0-9]))"
);

/// Does `s` start with an IPv4 (or IPv6) address, as Python's `re.match`
/// of Ansible's pattern finds one?
fn starts_with_address(s: &str, v6: bool) -> bool {
    static V4: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    static V6: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let (cell, pattern) = if v6 { (&V6, IPV6) } else { (&V4, IPV4) };
    cell.get_or_init(|| regex::Regex::new(&format!("^(?:{pattern})")).expect("anchored regex"))
        .is_match(s)
}

/// The lines of `text` (line ends kept) that `keep` accepts.
fn lines_where(text: &str, keep: impl Fn(&str) -> bool) -> String {
    text.split_inclusive('\n').filter(|l| keep(l)).collect()
}

/// A command's failure as Ansible's module reports it: stderr, else stdout.
fn failure(out: &ExecOutput, commands: &[String]) -> ModuleError {
    let err = out.stderr_str();
    let msg = if err.is_empty() {
        out.stdout_str()
    } else {
        err
    };
    ModuleError::Failed {
        msg,
        data: commands_data(commands),
    }
}

fn commands_data(commands: &[String]) -> Map {
    let mut data = Map::new();
    data.insert(
        "commands".into(),
        Value::Array(commands.iter().cloned().map(Value::from).collect()),
    );
    data
}

/// The major and minor version in `ufw --version`'s first line, read as
/// Ansible's module reads it.
fn parse_version(out: &str) -> Option<(u64, u64)> {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(r"^ufw.+(\d+)\.(\d+)(?:\.(\d+))?.*$").expect("version regex")
    });
    let first = out.split('\n').find(|l| !l.trim().is_empty())?;
    let c = re.captures(first)?;
    Some((c[1].parse().ok()?, c[2].parse().ok()?))
}

/// The numbered rules of `ufw status numbered`: number and whether v6.
fn parse_numbered(out: &str) -> Vec<(u64, bool)> {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| regex::Regex::new(r"^\[ *([0-9]+)\] ").expect("numbered regex"));
    out.lines()
        .filter_map(|l| {
            let c = re.captures(l)?;
            Some((c[1].parse().ok()?, l.contains("(v6)")))
        })
        .collect()
}

impl Ufw {
    fn delete(&self) -> bool {
        self.delete.unwrap_or(false)
    }

    fn route(&self) -> bool {
        self.route.unwrap_or(false)
    }

    fn source(&self) -> &str {
        self.from_ip.as_deref().unwrap_or("any")
    }

    fn destination(&self) -> &str {
        self.to_ip.as_deref().unwrap_or("any")
    }

    fn relative_to(&self) -> RelativeTo {
        self.insert_relative_to.unwrap_or_default()
    }

    /// Does the rule need `ufw status numbered` to place an insert?
    fn needs_numbered(&self) -> bool {
        self.rule.is_some()
            && self.insert.is_some()
            && !self.delete()
            && self.relative_to() != RelativeTo::Zero
    }

    /// Checks that need no host, made before anything is read: what
    /// Ansible's module refuses while it runs, and values that would not
    /// reach ufw as the one word they are.
    fn check_values(&self) -> Result<(), ModuleError> {
        if self.default.is_some()
            && !matches!(
                self.direction,
                None | Some(Direction::Incoming | Direction::Outgoing | Direction::Routed)
            )
        {
            return Err(ModuleError::failed(
                "For default, direction must be one of \"outgoing\", \"incoming\" and \"routed\", or direction must not be specified.",
            ));
        }
        if self.rule.is_some() {
            if !matches!(self.direction, None | Some(Direction::In | Direction::Out)) {
                return Err(ModuleError::failed(
                    "For rules, direction must be one of \"in\" and \"out\", or direction must not be specified.",
                ));
            }
            if !self.route() && self.interface_in.is_some() && self.interface_out.is_some() {
                return Err(ModuleError::failed(
                    "Only route rules can combine interface_in and interface_out",
                ));
            }
        }
        for (arg, value) in [
            ("interface", &self.interface),
            ("interface_in", &self.interface_in),
            ("interface_out", &self.interface_out),
            ("from_ip", &self.from_ip),
            ("from_port", &self.from_port),
            ("to_ip", &self.to_ip),
            ("to_port", &self.to_port),
        ] {
            if let Some(v) = value {
                safe::name(arg, v)?;
            }
        }
        for (arg, value) in [("name", &self.name), ("comment", &self.comment)] {
            if let Some(v) = value {
                safe::not_option(arg, v)?;
                safe::one_line(arg, v)?;
            }
        }
        Ok(())
    }

    /// The first reads: where ufw and grep are, the status, the user
    /// rules; ufw's version and numbered rules when a rule needs them.
    fn first_reads(&self) -> ReadSet {
        let env = env_prefix();
        let mut set = ReadSet::new();
        set.push(
            format!(
                "p=\"$PATH:{SBIN}\"; u=$(PATH=$p; command -v ufw) || u=; \
                 g=$(PATH=$p; command -v grep) || g=; printf '%s\\n%s\\n%s\\n' \"$u\" \"$g\" \"$p\""
            ),
            Scope::Host,
        );
        set.push(format!("{env}ufw status verbose"), Scope::Host);
        set.push(
            format!(
                "{env}grep -h '^### tuple' {} 2>/dev/null",
                USER_RULES.join(" ")
            ),
            Scope::Host,
        );
        if self.rule.is_some() {
            set.push(format!("{env}ufw --version"), Scope::Host);
            if self.needs_numbered() {
                set.push(format!("{env}ufw status numbered"), Scope::Host);
            }
        }
        set
    }

    /// The `insert N` of the rule, placed as Ansible's module places it.
    fn insert_to(&self, numbered: &[(u64, bool)]) -> Option<u64> {
        let insert = self.insert?;
        if self.delete() {
            return None;
        }
        let relative = self.relative_to();
        if relative == RelativeTo::Zero {
            return Some(insert);
        }
        let last = numbered.iter().map(|(n, _)| *n).max().unwrap_or(0);
        let v4_max = numbered.iter().filter(|(_, v6)| !v6).map(|(n, _)| *n).max();
        let has_v6 = numbered.iter().any(|(_, v6)| *v6);
        let base = match relative {
            RelativeTo::Zero => 0,
            RelativeTo::FirstIpv4 => 1,
            RelativeTo::LastIpv4 => v4_max.unwrap_or(1),
            RelativeTo::FirstIpv6 => v4_max.map_or(1, |m| m + 1),
            RelativeTo::LastIpv6 => {
                if has_v6 {
                    last
                } else {
                    last + 1
                }
            }
        };
        let at = insert + base;
        // ufw refuses a number past its last rule.
        (at <= last).then_some(at)
    }

    /// The rule command (`ufw [--dry-run] [route] [delete|insert N] allow
    /// ...`), as Ansible's module builds it.
    fn rule_cmd(&self, ufw: &str, dry_run: bool, numbered: &[(u64, bool)], comments: bool) -> Cmd {
        let mut p = vec![Piece::words(&[ufw])];
        if dry_run {
            p.push(Piece::words(&["--dry-run"]));
        }
        if self.route() {
            p.push(Piece::words(&["route"]));
        }
        if self.delete() {
            p.push(Piece::words(&["delete"]));
        }
        if let Some(n) = self.insert_to(numbered) {
            p.push(Piece::words(&["insert", &n.to_string()]));
        }
        if let Some(rule) = self.rule {
            p.push(Piece::words(&[&word(rule)]));
        }
        if let Some(d) = self.direction {
            p.push(Piece::words(&[d.as_str()]));
        }
        if let Some(i) = &self.interface {
            p.push(Piece::words(&["on", i]));
        }
        if let Some(i) = &self.interface_in {
            p.push(Piece::words(&["in", "on", i]));
        }
        if let Some(i) = &self.interface_out {
            p.push(Piece::words(&["out", "on", i]));
        }
        if self.log.unwrap_or(false) {
            p.push(Piece::words(&["log"]));
        }
        p.push(Piece::words(&["from", self.source()]));
        if let Some(port) = &self.from_port {
            p.push(Piece::words(&["port", port]));
        }
        p.push(Piece::words(&["to", self.destination()]));
        if let Some(port) = &self.to_port {
            p.push(Piece::words(&["port", port]));
        }
        if let Some(proto) = self.proto {
            p.push(Piece::words(&["proto", &word(proto)]));
        }
        if let Some(name) = &self.name {
            p.push(Piece::quoted("app", name));
        }
        if comments {
            if let Some(c) = &self.comment {
                p.push(Piece::quoted("comment", c));
            }
        }
        Cmd::new(&p)
    }

    /// The task's ufw commands for a run, in Ansible's order: state,
    /// default, rule (after `ufw --version`), logging.
    fn run_commands(&self, ufw: &str, numbered: &[(u64, bool)], comments: bool) -> Vec<Cmd> {
        let mut cmds = Vec::new();
        if let Some(state) = self.state {
            cmds.push(Cmd::new(&[Piece::words(&[ufw, "-f", state.verb()])]));
        }
        if let Some(policy) = self.default {
            let mut p = vec![Piece::words(&[ufw, "default", &word(policy)])];
            if let Some(d) = self.direction {
                p.push(Piece::words(&[d.as_str()]));
            }
            cmds.push(Cmd::new(&p));
        }
        if self.rule.is_some() {
            cmds.push(Cmd::new(&[Piece::words(&[ufw, "--version"])]));
            cmds.push(self.rule_cmd(ufw, false, numbered, comments));
        }
        if let Some(level) = self.logging {
            cmds.push(Cmd::new(&[Piece::words(&[ufw, "logging", &word(level)])]));
        }
        cmds
    }

    /// `ufw status verbose`, run before and after the commands.
    fn status_cmd(ufw: &str) -> Cmd {
        Cmd::new(&[Piece::words(&[ufw, "status", "verbose"])])
    }

    fn rules_cmd(grep: &str) -> Cmd {
        let mut p = vec![Piece {
            shown: format!("{grep} -h '^### tuple'"),
            words: vec![grep.into(), "-h".into(), "^### tuple".into()],
        }];
        p.extend(USER_RULES.iter().map(|f| Piece::words(&[*f])));
        Cmd {
            may_fail: true,
            ..Cmd::new(&p)
        }
    }

    /// Where ufw and grep are, or why the module cannot run.
    fn bins(observed: &Observed) -> Result<Bins, ModuleError> {
        let out = observed.output(LOCATE)?;
        let text = out.stdout_str();
        let mut lines = text.split('\n');
        let ufw = lines.next().unwrap_or("").trim().to_string();
        let grep = lines.next().unwrap_or("").trim().to_string();
        let path = lines.next().unwrap_or("").trim().to_string();
        for (name, found) in [("ufw", &ufw), ("grep", &grep)] {
            if found.is_empty() {
                let hint = if name == "ufw" {
                    " (ufw is not installed on this host: install the ufw package first)"
                } else {
                    ""
                };
                return Err(ModuleError::failed(format!(
                    "Failed to find required executable \"{name}\" in paths: {path}{hint}"
                )));
            }
        }
        Ok(Bins { ufw, grep })
    }

    /// Whether a rule may carry a comment (ufw 0.35 and later), from
    /// `ufw --version`.
    fn comments(observed: &Observed, shown: &[String]) -> Result<bool, ModuleError> {
        let out = observed.output(VERSION)?;
        if out.status != 0 {
            return Err(failure(out, shown));
        }
        let (major, minor) = parse_version(&out.stdout_str()).ok_or_else(|| {
            let mut data = commands_data(shown);
            data.insert("rc".into(), Value::from(0));
            data.insert("out".into(), Value::from(out.stdout_str()));
            ModuleError::Failed {
                msg: "Failed to get ufw version.".into(),
                data,
            }
        })?;
        Ok(major > 0 || minor >= 35)
    }

    /// Check mode, as Ansible's module decides it: from the status, and
    /// for a rule from what `ufw --dry-run` would write.
    fn decide_check(
        &self,
        observed: &Observed,
        bins: &Bins,
    ) -> Result<Decision<UfwRun>, ModuleError> {
        let mut shown = vec![
            Self::status_cmd(&bins.ufw).shown,
            Self::rules_cmd(&bins.grep).shown,
        ];
        let status = observed.output(STATUS)?;
        if status.status != 0 {
            return Err(failure(status, &shown[..1]));
        }
        let pre_state = status.stdout_str();
        let pre_rules = observed.output(RULES)?.stdout_str();
        let mut changed = false;
        if let Some(state) = self.state {
            match state {
                State::Reloaded | State::Reset => changed = true,
                State::Enabled | State::Disabled => {
                    // " active" and not "inactive".
                    let enabled = pre_state.contains(" active");
                    if (state == State::Disabled) == enabled {
                        changed = true;
                    }
                }
            }
        }
        if let Some(policy) = self.default {
            changed |= default_would_change(&pre_state, policy, self.direction);
        }
        if self.rule.is_some() {
            shown.push(format!("{} --version", bins.ufw));
            let comments = Self::comments(observed, &shown)?;
            let numbered = self.numbered(observed)?;
            let cmd = self.rule_cmd(&bins.ufw, true, &numbered, comments);
            shown.push(cmd.shown.clone());
            let dry_at = if self.needs_numbered() {
                NUMBERED + 1
            } else {
                NUMBERED
            };
            let Some(dry) = observed.get(dry_at) else {
                let mut more = ReadSet::new();
                more.push(format!("{}{}", env_prefix(), cmd.script()), Scope::Host);
                return Ok(Decision::Read(more));
            };
            if dry.status != 0 {
                return Err(failure(dry, &shown));
            }
            changed |= self.rule_would_change(&pre_rules, &dry.stdout_str());
        }
        if let Some(level) = self.logging {
            changed |= logging_would_change(&pre_state, level);
        }
        let data = commands_data(&shown);
        let run = UfwRun {
            ufw: bins.ufw.clone(),
            grep: bins.grep.clone(),
            commands: Vec::new(),
            forced: false,
            logging: None,
        };
        Ok(Decision::Plan(if changed {
            Plan::Change {
                change: run,
                diff: None,
                data,
            }
        } else {
            Plan::Unchanged(data)
        }))
    }

    fn numbered(&self, observed: &Observed) -> Result<Vec<(u64, bool)>, ModuleError> {
        if !self.needs_numbered() {
            return Ok(Vec::new());
        }
        Ok(parse_numbered(&observed.output(NUMBERED)?.stdout_str()))
    }

    /// Would the dry run's rules differ from the rules now? Lines that
    /// only say ufw skips the rule mean no; otherwise the `### tuple`
    /// lines are compared (only the IPv4 or IPv6 ones when the rule names
    /// such an address, since a dry run prints only that family's file).
    fn rule_would_change(&self, pre_rules: &str, dry: &str) -> bool {
        let total = dry.split_inclusive('\n').count();
        let skipping = dry
            .split_inclusive('\n')
            .filter(|l| l.contains("Skipping"))
            .count();
        if skipping > 0 && skipping == total {
            return false;
        }
        let dry_rules = lines_where(dry, |l| l.starts_with("### tuple"));
        let (from, to) = (self.source(), self.destination());
        let (v4, v6) = (ipv4_re(), ipv6_re());
        if starts_with_address(from, false) || starts_with_address(to, false) {
            let only = |t: &str| lines_where(t, |l| v4.is_match(l));
            only(pre_rules) != only(&dry_rules)
        } else if starts_with_address(from, true) || starts_with_address(to, true) {
            let only = |t: &str| lines_where(t, |l| v6.is_match(l));
            only(pre_rules) != only(&dry_rules)
        } else {
            pre_rules != dry_rules
        }
    }
}

/// Check mode's answer for `default`: the status's `Default:` line names
/// another policy for the direction (incoming when none); a routed policy
/// shown as `disabled` counts as set. A status without the line (ufw
/// inactive) counts as a change.
fn default_would_change(pre_state: &str, policy: Policy, direction: Option<Direction>) -> bool {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(
            r"Default: (deny|allow|reject) \(incoming\), (deny|allow|reject) \(outgoing\), (deny|allow|reject|disabled) \(routed\)",
        )
        .expect("default regex")
    });
    let Some(c) = re.captures(pre_state) else {
        return true;
    };
    let now = match direction {
        Some(Direction::Outgoing) => &c[2],
        Some(Direction::Routed) => &c[3],
        _ => &c[1],
    };
    now != word(policy) && now != "disabled"
}

/// Ansible's module's answer for `logging` (in check mode and before a
/// run alike), from the status's `Logging:` line
/// (none, as when ufw is inactive, counts as a change).
fn logging_would_change(pre_state: &str, level: Logging) -> bool {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(r"Logging: (on|off)(?: \(([a-z]+)\))?").expect("logging regex")
    });
    let Some(c) = re.captures(pre_state) else {
        return true;
    };
    let on_off = &c[1];
    let current = c.get(2).map(|m| m.as_str());
    match level {
        Logging::Off => on_off != "off",
        Logging::On => on_off == "off",
        other => on_off == "off" || current != Some(word(other).as_str()),
    }
}

/// The marker of each step's output in a run's script.
const STEP: &str = "@@step ";
const END: &str = "@@end";

/// The script of a run: the state before, the commands, the state after;
/// each step printed as `@@step RC STDOUT STDERR` (base64), stopping at the
/// first command that fails (the rules grep may).
fn run_script(run: &UfwRun) -> String {
    let mut s = String::from("(\n");
    s.push_str(&env_prefix());
    s.push_str(
        "\ne=$(mktemp) || exit 1\n\
         trap 'rm -f \"$e\"' EXIT\n\
         step() { o=$(\"$@\" </dev/null 2>\"$e\"; r=$?; echo .; exit $r); r=$?; \
         printf '@@step %s %s %s\\n' \"$r\" \"$(printf %s \"${o%.}\" | base64 -w0)\" \"$(base64 -w0 < \"$e\")\"; return $r; }\n\
         end() { echo @@end; exit 0; }\n",
    );
    let mut line = |cmd: &Cmd| {
        s.push_str("step ");
        s.push_str(&cmd.script());
        if !cmd.may_fail {
            s.push_str(" || end");
        }
        s.push('\n');
    };
    for c in &run.steps() {
        line(c);
    }
    s.push_str("end\n)");
    s
}

/// The steps a run's script printed.
fn parse_steps(out: &str) -> Result<Vec<ExecOutput>, super::OutputError> {
    let b64 = |s: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(s.trim())
            .map_err(|e| super::OutputError::Malformed(format!("bad output: {e}")))
    };
    let mut steps = Vec::new();
    let mut ended = false;
    for line in out.lines() {
        if line == END {
            ended = true;
        } else if let Some(rest) = line.strip_prefix(STEP) {
            let mut f = rest.splitn(3, ' ');
            let rc = f.next().unwrap_or("");
            let status = rc
                .parse()
                .map_err(|_| super::OutputError::Malformed(format!("bad status {rc:?}")))?;
            let stdout = b64(f.next().unwrap_or(""))?;
            let stderr = b64(f.next().unwrap_or(""))?;
            steps.push(ExecOutput {
                status,
                stdout,
                stderr,
            });
        }
    }
    if !ended {
        return Err(super::OutputError::Incomplete);
    }
    Ok(steps)
}

/// The result of a run from its steps, as Ansible's module reports it.
fn run_result(run: &UfwRun, steps: &[ExecOutput]) -> Result<Map, ModuleError> {
    let cmds = run.steps();
    let mut shown: Vec<String> = Vec::new();
    for (cmd, out) in cmds.iter().zip(steps) {
        shown.push(cmd.shown.clone());
        if out.status != 0 && !cmd.may_fail {
            return Err(failure(out, &shown));
        }
    }
    let n = 2 + run.commands.len();
    if steps.len() < n + 2 {
        return Err(ModuleError::failed(
            "the ufw commands' output ended early".to_string(),
        ));
    }
    let pre_state = &steps[0].stdout;
    let pre_rules = &steps[1].stdout;
    let post_state = &steps[n].stdout;
    let post_rules = &steps[n + 1].stdout;
    let mut changed = run.forced
        || run
            .logging
            .is_some_and(|l| logging_would_change(&String::from_utf8_lossy(pre_state), l));
    if !changed {
        changed = pre_state != post_state || pre_rules != post_rules;
    } else {
        // Ansible reads the rules again only when nothing said changed yet.
        shown.pop();
    }
    let mut data = commands_data(&shown);
    data.insert("changed".into(), Value::Bool(changed));
    data.insert(
        "msg".into(),
        Value::from(String::from_utf8_lossy(post_state).trim_end().to_string()),
    );
    Ok(data)
}

#[async_trait]
impl Module for Ufw {
    const NAME: &'static str = "ufw";
    const ARGS: &'static [&'static str] = &[
        "state",
        "default",
        "policy",
        "logging",
        "direction",
        "delete",
        "route",
        "insert",
        "insert_relative_to",
        "rule",
        "interface",
        "if",
        "interface_in",
        "if_in",
        "interface_out",
        "if_out",
        "log",
        "from_ip",
        "from",
        "src",
        "from_port",
        "to_ip",
        "dest",
        "to",
        "to_port",
        "port",
        "proto",
        "protocol",
        "name",
        "app",
        "comment",
    ];
    type Change = UfwRun;

    fn validate(&self) -> Result<(), ArgError> {
        let exclusive = [
            ("name", self.name.is_some()),
            ("proto", self.proto.is_some()),
            ("logging", self.logging.is_some()),
        ];
        if exclusive.iter().filter(|(_, set)| *set).count() > 1 {
            return Err("parameters are mutually exclusive: name|proto|logging".into());
        }
        if self.direction.is_some() && self.interface_in.is_some() {
            return Err("parameters are mutually exclusive: direction|interface_in".into());
        }
        if self.direction.is_some() && self.interface_out.is_some() {
            return Err("parameters are mutually exclusive: direction|interface_out".into());
        }
        if self.state.is_none()
            && self.default.is_none()
            && self.rule.is_none()
            && self.logging.is_none()
        {
            return Err("one of the following is required: state, default, rule, logging".into());
        }
        if self.interface.is_some() && self.direction.is_none() {
            return Err("missing parameter(s) required by 'interface': direction".into());
        }
        Ok(())
    }

    fn reads(&self, _ctx: &ReadCtx<'_>) -> Result<Protocol, ModuleError> {
        self.check_values()?;
        Ok(Protocol::Declared(self.first_reads()))
    }

    fn decide(
        &self,
        observed: &Observed,
        ctx: &ReadCtx<'_>,
    ) -> Result<Decision<UfwRun>, ModuleError> {
        let bins = Self::bins(observed)?;
        if ctx.check {
            return self.decide_check(observed, &bins);
        }
        let status = observed.output(STATUS)?;
        if status.status != 0 {
            return Err(failure(status, &[Self::status_cmd(&bins.ufw).shown]));
        }
        let (comments, numbered) = if self.rule.is_some() {
            let shown = [
                Self::status_cmd(&bins.ufw).shown,
                Self::rules_cmd(&bins.grep).shown,
                format!("{} --version", bins.ufw),
            ];
            (Self::comments(observed, &shown)?, self.numbered(observed)?)
        } else {
            (true, Vec::new())
        };
        Ok(Decision::Plan(Plan::Run(UfwRun {
            commands: self.run_commands(&bins.ufw, &numbered, comments),
            forced: matches!(self.state, Some(State::Reloaded | State::Reset)),
            logging: self.logging,
            ufw: bins.ufw,
            grep: bins.grep,
        })))
    }

    fn touches(&self, _change: &UfwRun) -> Touched {
        Touched::Paths(UFW_PATHS.iter().map(|p| p.to_string()).collect())
    }

    async fn apply(&self, ctx: &ModuleCtx<'_>, run: UfwRun) -> Result<Map, ModuleError> {
        let out = ctx.remote.exec(&run_script(&run), b"").await?;
        let steps = super::reads::parse_read(&out, "the output of ufw", parse_steps)?;
        run_result(&run, &steps)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::modules::testutil::assert_args_complete;

    fn m(v: Value) -> Ufw {
        serde_json::from_value(v).expect("args")
    }

    fn out(status: i32, stdout: &str, stderr: &str) -> ExecOutput {
        ExecOutput {
            status,
            stdout: stdout.as_bytes().to_vec(),
            stderr: stderr.as_bytes().to_vec(),
        }
    }

    const LOCATED: &str =
        "/usr/sbin/ufw\n/usr/bin/grep\n/usr/bin:/bin:/sbin:/usr/sbin:/usr/local/sbin\n";
    const INACTIVE: &str = "Status: inactive\n";
    const ACTIVE: &str = "Status: active\nLogging: on (low)\nDefault: deny (incoming), allow (outgoing), disabled (routed)\nNew profiles: skip\n\nTo                         Action      From\n--                         ------      ----\n22/tcp                     ALLOW IN    Anywhere\n22/tcp (v6)                ALLOW IN    Anywhere (v6)\n\n";
    const RULES_22: &str = "### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in\n### tuple ### allow tcp 22 ::/0 any ::/0 in\n";

    fn observed(outs: Vec<ExecOutput>) -> Observed {
        Observed::new(outs)
    }

    fn first(status: &str, rules: &str, rule: bool) -> Vec<ExecOutput> {
        let mut v = vec![
            out(0, LOCATED, ""),
            out(0, status, ""),
            out(if rules.is_empty() { 1 } else { 0 }, rules, ""),
        ];
        if rule {
            v.push(out(
                0,
                "ufw 0.36.2\nCopyright 2008-2023 Canonical Ltd.\n",
                "",
            ));
        }
        v
    }

    fn ctx_check<R>(check: bool, f: impl FnOnce(&ReadCtx<'_>) -> R) -> R {
        let h = crate::modules::testutil::Harness::new();
        let ctx = h.ctx(check, false);
        f(&ctx.reading())
    }

    fn decide(
        u: &Ufw,
        outs: Vec<ExecOutput>,
        check: bool,
    ) -> Result<Decision<UfwRun>, ModuleError> {
        ctx_check(check, |ctx| u.decide(&observed(outs), ctx))
    }

    fn plan(d: Result<Decision<UfwRun>, ModuleError>) -> Plan<UfwRun> {
        match d {
            Ok(Decision::Plan(p)) => p,
            Ok(Decision::Read(_)) => panic!("asked for more reads"),
            Err(e) => panic!("failed: {e}"),
        }
    }

    fn changed(p: &Plan<UfwRun>) -> bool {
        matches!(p, Plan::Change { .. })
    }

    fn shown(p: &Plan<UfwRun>) -> Vec<String> {
        let data = match p {
            Plan::Change { data, .. } | Plan::Unchanged(data) => data,
            Plan::Run(_) => panic!("a run"),
        };
        data["commands"]
            .as_array()
            .expect("commands")
            .iter()
            .map(|v| v.as_str().expect("str").to_string())
            .collect()
    }

    #[test]
    fn args() {
        assert_args_complete::<Ufw>();
    }

    #[test]
    fn rules_are_built_as_ansible_builds_them() {
        let u = m(json!({"rule": "allow", "port": "6443", "proto": "tcp", "comment": "k3s api"}));
        let c = u.rule_cmd("/usr/sbin/ufw", false, &[], true);
        assert_eq!(
            c.shown,
            "/usr/sbin/ufw allow from any to any port 6443 proto tcp comment 'k3s api'"
        );
        assert_eq!(
            c.script(),
            "/usr/sbin/ufw allow from any to any port 6443 proto tcp comment 'k3s api'"
        );
        let u = m(
            json!({"rule": "limit", "direction": "in", "interface": "eth0", "log": true,
            "src": "10.0.0.0/8", "from_port": "53", "delete": "yes", "insert": 2}),
        );
        let c = u.rule_cmd("/usr/sbin/ufw", true, &[], false);
        assert_eq!(
            c.shown,
            "/usr/sbin/ufw --dry-run delete limit in on eth0 log from 10.0.0.0/8 port 53 to any"
        );
        let u = m(
            json!({"rule": "allow", "route": true, "if_in": "wg0", "if_out": "eth0",
            "app": "Nginx Full", "insert": 1}),
        );
        let c = u.rule_cmd("ufw", false, &[], true);
        assert_eq!(
            c.shown,
            "ufw route insert 1 allow in on wg0 out on eth0 from any to any app 'Nginx Full'"
        );
        assert_eq!(
            c.argv.last().map(String::as_str),
            Some("Nginx Full"),
            "one word"
        );
        // No comment before ufw 0.35.
        let u = m(json!({"rule": "allow", "port": "22", "comment": "ssh"}));
        assert!(!u
            .rule_cmd("ufw", false, &[], false)
            .shown
            .contains("comment"));
    }

    #[test]
    fn a_comment_that_would_break_out_of_its_quotes_stays_one_word() {
        let u = m(json!({"rule": "allow", "port": "22", "comment": "it's; rm -rf /"}));
        let c = u.rule_cmd("ufw", false, &[], true);
        assert_eq!(c.argv.last().map(String::as_str), Some("it's; rm -rf /"));
        assert!(
            c.script().ends_with(r"comment 'it'\''s; rm -rf /'"),
            "{}",
            c.script()
        );
        let bad = m(json!({"rule": "allow", "port": "22 ; reboot"}));
        assert!(bad.check_values().is_err());
        let bad = m(json!({"rule": "allow", "from": "-h"}));
        assert!(bad.check_values().is_err());
    }

    #[test]
    fn run_commands_follow_ansibles_order() {
        let u = m(json!({"state": "enabled", "policy": "deny", "logging": "on"}));
        let shown: Vec<String> = u
            .run_commands("/usr/sbin/ufw", &[], true)
            .into_iter()
            .map(|c| c.shown)
            .collect();
        assert_eq!(
            shown,
            vec![
                "/usr/sbin/ufw -f enable",
                "/usr/sbin/ufw default deny",
                "/usr/sbin/ufw logging on"
            ]
        );
        let u = m(json!({"default": "allow", "rule": "allow", "port": "22"}));
        let shown: Vec<String> = u
            .run_commands("ufw", &[], true)
            .into_iter()
            .map(|c| c.shown)
            .collect();
        assert_eq!(
            shown,
            vec![
                "ufw default allow",
                "ufw --version",
                "ufw allow from any to any port 22"
            ]
        );
    }

    #[test]
    fn arguments_are_checked_as_ansible_checks_them() {
        let e = m(json!({"direction": "in"})).validate().expect_err("none");
        assert_eq!(
            e.msg,
            "one of the following is required: state, default, rule, logging"
        );
        let e = m(json!({"rule": "allow", "name": "OpenSSH", "proto": "tcp"}))
            .validate()
            .expect_err("exclusive");
        assert_eq!(
            e.msg,
            "parameters are mutually exclusive: name|proto|logging"
        );
        let e = m(json!({"rule": "allow", "interface": "eth0"}))
            .validate()
            .expect_err("required by");
        assert_eq!(
            e.msg,
            "missing parameter(s) required by 'interface': direction"
        );
        let e = m(json!({"rule": "allow", "direction": "in", "interface_in": "eth0"}))
            .validate()
            .expect_err("direction and interface_in");
        assert!(e.msg.contains("direction|interface_in"));
        assert!(m(json!({"default": "deny", "direction": "in"}))
            .check_values()
            .is_err());
        assert!(m(json!({"rule": "deny", "direction": "routed"}))
            .check_values()
            .is_err());
        assert!(m(json!({"rule": "allow", "if_in": "a", "if_out": "b"}))
            .check_values()
            .is_err());
        assert!(serde_json::from_value::<Ufw>(json!({"state": "on"})).is_err());
    }

    #[test]
    fn a_host_without_ufw_is_told_so() {
        let u = m(json!({"state": "enabled"}));
        let outs = vec![
            out(0, "\n/usr/bin/grep\n/usr/bin:/bin:/sbin\n", ""),
            out(127, "", "sh: ufw: not found"),
            out(1, "", ""),
        ];
        for check in [false, true] {
            let Err(e) = decide(&u, outs.clone(), check) else {
                panic!("no ufw: must fail");
            };
            let msg = e.to_string();
            assert!(
                msg.starts_with(
                    "Failed to find required executable \"ufw\" in paths: /usr/bin:/bin:/sbin"
                ),
                "{msg}"
            );
            assert!(msg.contains("ufw is not installed"), "{msg}");
        }
    }

    #[test]
    fn check_mode_state_and_default_read_the_status() {
        let enable = m(json!({"state": "enabled", "policy": "deny"}));
        let p = plan(decide(&enable, first(INACTIVE, "", false), true));
        assert!(changed(&p), "inactive: enabling changes");
        assert_eq!(
            shown(&p),
            vec![
                "/usr/sbin/ufw status verbose",
                "/usr/bin/grep -h '^### tuple' /lib/ufw/user.rules /lib/ufw/user6.rules /etc/ufw/user.rules /etc/ufw/user6.rules /var/lib/ufw/user.rules /var/lib/ufw/user6.rules"
            ]
        );
        let p = plan(decide(&enable, first(ACTIVE, RULES_22, false), true));
        assert!(!changed(&p), "active with deny incoming");
        let allow = m(json!({"state": "enabled", "policy": "allow"}));
        assert!(changed(&plan(decide(
            &allow,
            first(ACTIVE, RULES_22, false),
            true
        ))));
        // A routed policy that ufw shows as disabled counts as set.
        let routed = m(json!({"default": "allow", "direction": "routed"}));
        assert!(!changed(&plan(decide(
            &routed,
            first(ACTIVE, "", false),
            true
        ))));
        let disable = m(json!({"state": "disabled"}));
        assert!(changed(&plan(decide(
            &disable,
            first(ACTIVE, "", false),
            true
        ))));
        assert!(!changed(&plan(decide(
            &disable,
            first(INACTIVE, "", false),
            true
        ))));
        let reset = m(json!({"state": "reset"}));
        assert!(changed(&plan(decide(
            &reset,
            first(INACTIVE, "", false),
            true
        ))));
    }

    #[test]
    fn check_mode_logging() {
        assert!(!logging_would_change(ACTIVE, Logging::On));
        assert!(!logging_would_change(ACTIVE, Logging::Low));
        assert!(logging_would_change(ACTIVE, Logging::Medium));
        assert!(logging_would_change(ACTIVE, Logging::Off));
        assert!(!logging_would_change("Logging: off\n", Logging::Off));
        assert!(logging_would_change(INACTIVE, Logging::Off));
    }

    #[test]
    fn check_mode_rules_compare_a_dry_run() {
        let u = m(json!({"rule": "allow", "port": "22", "proto": "tcp"}));
        // First a dry run is asked for.
        let asked = decide(&u, first(INACTIVE, RULES_22, true), true);
        let Ok(Decision::Read(more)) = asked else {
            panic!("a dry run must be read");
        };
        assert_eq!(
            more.reads[0].script,
            format!(
                "{}/usr/sbin/ufw --dry-run allow from any to any port 22 proto tcp",
                env_prefix()
            )
        );
        let mut outs = first(INACTIVE, RULES_22, true);
        outs.push(out(
            0,
            "Skipping adding existing rule\nSkipping adding existing rule (v6)\n",
            "",
        ));
        let p = plan(decide(&u, outs, true));
        assert!(!changed(&p));
        assert_eq!(shown(&p).len(), 4);
        assert_eq!(
            shown(&p)[3],
            "/usr/sbin/ufw --dry-run allow from any to any port 22 proto tcp"
        );
        // A new rule: the dry run prints files with one more tuple.
        let dry = "*filter\n### RULES ###\n\n### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in\n-A ufw-user-input -p tcp --dport 22 -j ACCEPT\n\n### END RULES ###\n### tuple ### allow tcp 22 ::/0 any ::/0 in\nRules updated\n";
        let mut outs = first(INACTIVE, "", true);
        outs.push(out(0, dry, ""));
        assert!(changed(&plan(decide(&u, outs, true))));
        // The same tuples: unchanged (deleting a rule that is not there).
        let mut outs = first(INACTIVE, "", true);
        outs.push(out(
            0,
            "*filter\n### RULES ###\n### END RULES ###\nCould not delete non-existent rule\n",
            "",
        ));
        assert!(!changed(&plan(decide(&u, outs, true))));
        // A failing dry run fails the task with ufw's words.
        let mut outs = first(INACTIVE, "", true);
        outs.push(out(1, "", "ERROR: Bad port\n"));
        let Err(ModuleError::Failed { msg, data }) = decide(&u, outs, true) else {
            panic!("must fail");
        };
        assert_eq!(msg, "ERROR: Bad port\n");
        assert_eq!(data["commands"].as_array().map(Vec::len), Some(4));
    }

    #[test]
    fn an_ipv4_rule_compares_only_ipv4_tuples() {
        let u = m(json!({"rule": "allow", "from": "192.0.2.7", "port": "22"}));
        let pre = "### tuple ### allow any 22 0.0.0.0/0 any 192.0.2.7 in\n### tuple ### allow any 80 ::/0 any ::/0 in\n";
        let dry = "### tuple ### allow any 22 0.0.0.0/0 any 192.0.2.7 in\n";
        assert!(!u.rule_would_change(pre, dry));
        let any = m(json!({"rule": "allow", "port": "22"}));
        assert!(any.rule_would_change(pre, dry));
        assert!(starts_with_address("2001:db8::1", true));
        assert!(!starts_with_address("any", false));
        assert!(!starts_with_address("x192.0.2.7", false));
        assert!(starts_with_address("192.0.2.0/24", false));
    }

    #[test]
    fn versions_are_read_as_ansible_reads_them() {
        // Ansible's pattern is greedy: 0.36.2 reads as 6.2 (comments on).
        assert_eq!(parse_version("ufw 0.36.2\nCopyright\n"), Some((6, 2)));
        assert_eq!(parse_version("ufw 0.34\n"), Some((0, 34)));
        assert_eq!(parse_version("nothing\n"), None);
    }

    #[test]
    fn inserts_are_placed_relative_to_the_numbered_rules() {
        let numbered = parse_numbered(
            "Status: active\n\n     To   Action  From\n[ 1] 22/tcp ALLOW IN Anywhere\n[ 2] 80 ALLOW IN Anywhere\n[ 3] 22/tcp (v6) ALLOW IN Anywhere (v6)\n[ 4] 80 (v6) ALLOW IN Anywhere (v6)\n",
        );
        assert_eq!(numbered, vec![(1, false), (2, false), (3, true), (4, true)]);
        let at = |rel: &str, n: u64| {
            m(json!({"rule": "allow", "port": "1", "insert": n, "insert_relative_to": rel}))
                .insert_to(&numbered)
        };
        assert_eq!(at("zero", 7), Some(7));
        assert_eq!(at("first-ipv4", 0), Some(1));
        assert_eq!(at("last-ipv4", 0), Some(2));
        assert_eq!(at("first-ipv6", 0), Some(3));
        assert_eq!(at("last-ipv6", 0), Some(4));
        assert_eq!(at("last-ipv6", 1), None, "past the last rule");
        let del = m(json!({"rule": "allow", "port": "1", "insert": 1, "delete": true}));
        assert_eq!(del.insert_to(&numbered), None);
    }

    #[test]
    fn a_run_always_runs_the_commands_and_compares_before_and_after() {
        let u = m(json!({"state": "enabled", "policy": "deny"}));
        let p = plan(decide(&u, first(ACTIVE, RULES_22, false), false));
        let Plan::Run(run) = p else {
            panic!("a run");
        };
        assert_eq!(run.commands.len(), 2);
        assert!(!run.forced);
        let script = run_script(&run);
        assert!(
            script.contains("step /usr/sbin/ufw -f enable || end\n"),
            "{script}"
        );
        assert!(
            script.contains("step /usr/bin/grep -h '^### tuple' /lib/ufw/user.rules"),
            "{script}"
        );
        // Same before and after: unchanged, both rule reads shown.
        let same = vec![
            out(0, ACTIVE, ""),
            out(0, RULES_22, ""),
            out(0, "Firewall is active and enabled on system startup\n", ""),
            out(0, "Default incoming policy changed to 'deny'\n", ""),
            out(0, ACTIVE, ""),
            out(0, RULES_22, ""),
        ];
        let data = run_result(&run, &same).expect("result");
        assert_eq!(data["changed"], Value::Bool(false));
        assert_eq!(data["commands"].as_array().map(Vec::len), Some(6));
        assert_eq!(data["msg"], Value::from(ACTIVE.trim_end()));
        // Enabled from inactive: changed.
        let mut moved = same.clone();
        moved[0] = out(0, INACTIVE, "");
        let data = run_result(&run, &moved).expect("result");
        assert_eq!(data["changed"], Value::Bool(true));
        // A failing command stops the run and fails with what ufw said.
        let failed = vec![
            out(0, ACTIVE, ""),
            out(0, RULES_22, ""),
            out(1, "", "ERROR: problem running\n"),
        ];
        let Err(ModuleError::Failed { msg, data }) = run_result(&run, &failed) else {
            panic!("must fail");
        };
        assert_eq!(msg, "ERROR: problem running\n");
        assert_eq!(data["commands"].as_array().map(Vec::len), Some(3));
    }

    /// Ansible's module calls `logging` a change when ufw is inactive
    /// (its status shows no level), whatever ufw then does.
    #[test]
    fn logging_on_an_inactive_firewall_is_a_change() {
        let u = m(json!({"logging": "low"}));
        let Plan::Run(run) = plan(decide(&u, first(INACTIVE, "", false), false)) else {
            panic!("a run");
        };
        let steps = |before: &str| {
            vec![
                out(0, before, ""),
                out(1, "", ""),
                out(0, "Logging enabled\n", ""),
                out(0, before, ""),
                out(1, "", ""),
            ]
        };
        let data = run_result(&run, &steps(INACTIVE)).expect("result");
        assert_eq!(data["changed"], Value::Bool(true));
        let data = run_result(&run, &steps(ACTIVE)).expect("result");
        assert_eq!(data["changed"], Value::Bool(false), "already low");
    }

    #[test]
    fn reset_is_always_a_change() {
        let u = m(json!({"state": "reset"}));
        let Plan::Run(run) = plan(decide(&u, first(INACTIVE, "", false), false)) else {
            panic!("a run");
        };
        assert!(run.forced);
        let steps = vec![
            out(0, INACTIVE, ""),
            out(1, "", ""),
            out(0, "Backing up 'user.rules' to ...\n", ""),
            out(0, INACTIVE, ""),
            out(1, "", ""),
        ];
        let data = run_result(&run, &steps).expect("result");
        assert_eq!(data["changed"], Value::Bool(true));
        // The rules are not read again once the task changed.
        assert_eq!(data["commands"].as_array().map(Vec::len), Some(4));
    }

    #[test]
    fn steps_parse() {
        let b = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let text = format!("@@step 0 {} \n@@step 1  {}\n@@end\n", b("a\n"), b("err"));
        let steps = parse_steps(&text).expect("parse");
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[0].stdout, b"a\n");
        assert_eq!(steps[1].status, 1);
        assert_eq!(steps[1].stderr, b"err");
        assert!(parse_steps("@@step 0  \n").is_err());
    }
}
