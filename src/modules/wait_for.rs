//! `wait_for`: wait until a port accepts connections (or stops, or drains),
//! or a file appears (optionally containing a match) or goes away. The whole
//! wait is one exec: a polling loop in POSIX sh on the host. It never changes
//! anything.
//!
//! Ports are probed with bash's `/dev/tcp` when bash is there, else `nc -z`,
//! else by looking for a listening socket in `/proc/net/tcp{,6}` (which only
//! sees the host's own ports). `search_regex` is matched on the host with
//! `grep -P` (Perl syntax, close to Python's) or `grep -E` where grep has no
//! `-P`, line by line.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::args::{opt_f64_ish, opt_string_ish, opt_strings_ish, opt_u64_ish};
use super::command::quote_path;
use super::safe;
use super::textedit::{py_regex, ReFlags};
use super::{Module, ModuleCtx, ModuleError, Plan};
use crate::transport::shell_quote;
use crate::{Map, Value};

/// What to wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// The port accepts connections / the file exists (the default).
    #[default]
    Started,
    /// Same as `started`.
    Present,
    /// The port refuses connections.
    Stopped,
    /// The file is gone (for a port: same as `stopped`).
    Absent,
    /// No active connections remain on the port.
    Drained,
}

/// Arguments of `wait_for`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitFor {
    /// Host whose port to probe, as seen from the managed host (default 127.0.0.1).
    #[serde(default, deserialize_with = "opt_string_ish")]
    host: Option<String>,
    /// Port to probe.
    #[serde(default, deserialize_with = "opt_u64_ish")]
    port: Option<u64>,
    /// File to wait for.
    #[serde(default, deserialize_with = "opt_string_ish")]
    path: Option<String>,
    /// What to wait for (default `started`).
    #[serde(default)]
    state: Option<State>,
    /// Seconds to wait in all (default 300), counted from the start, delay included.
    #[serde(default, deserialize_with = "opt_u64_ish")]
    timeout: Option<u64>,
    /// Seconds to wait before the first check (default 0).
    #[serde(default, deserialize_with = "opt_u64_ish")]
    delay: Option<u64>,
    /// Seconds between checks (default 1).
    #[serde(default, deserialize_with = "opt_f64_ish")]
    sleep: Option<f64>,
    /// Seconds one connection attempt may take (default 5).
    #[serde(default, deserialize_with = "opt_u64_ish")]
    connect_timeout: Option<u64>,
    /// Expression the file (or what the port sends) must match.
    #[serde(default, deserialize_with = "opt_string_ish")]
    search_regex: Option<String>,
    /// Peers whose connections `drained` ignores (IPv4 addresses).
    #[serde(default, deserialize_with = "opt_strings_ish")]
    exclude_hosts: Option<Vec<String>>,
    /// Connection states `drained` counts as active.
    #[serde(default, deserialize_with = "opt_strings_ish")]
    active_connection_states: Option<Vec<String>>,
    /// Message on timeout instead of the default one.
    #[serde(default, deserialize_with = "opt_string_ish")]
    msg: Option<String>,
}

/// TCP states as `/proc/net/tcp` numbers them.
const TCP_STATES: &[(&str, &str)] = &[
    ("ESTABLISHED", "01"),
    ("SYN_SENT", "02"),
    ("SYN_RECV", "03"),
    ("FIN_WAIT1", "04"),
    ("FIN_WAIT2", "05"),
    ("TIME_WAIT", "06"),
    ("CLOSE", "07"),
    ("CLOSE_WAIT", "08"),
    ("LAST_ACK", "09"),
    ("LISTEN", "0A"),
    ("CLOSING", "0B"),
];

const ACTIVE_DEFAULT: &[&str] = &[
    "ESTABLISHED",
    "FIN_WAIT1",
    "FIN_WAIT2",
    "SYN_RECV",
    "SYN_SENT",
    "TIME_WAIT",
];

/// What the loop on the host waits for.
#[derive(Debug, Clone, PartialEq)]
enum Target {
    /// Nothing: just sleep `timeout` seconds (locally).
    Sleep,
    /// The port accepts connections (and sends a match of the regex).
    PortOpen(String, u16, Option<String>),
    /// The port refuses connections.
    PortClosed(String, u16),
    /// No active connection on the port.
    PortDrained(u16, Vec<String>, Vec<String>),
    /// The file exists (and has a line matching the regex).
    FileThere(String, Option<String>),
    /// The file is gone.
    FileGone(String),
}

/// `a.b.c.d` as `/proc/net/tcp` writes it (little-endian hex), plain and
/// IPv4-mapped in IPv6.
fn proc_hex(ip: &str) -> Result<[String; 2], ModuleError> {
    let addr: std::net::Ipv4Addr = ip.parse().map_err(|_| {
        ModuleError::Args(format!(
            "exclude_hosts: {ip} is not an IPv4 address (host names are not resolved)"
        ))
    })?;
    let [a, b, c, d] = addr.octets();
    let hex = format!("{d:02X}{c:02X}{b:02X}{a:02X}");
    Ok([hex.clone(), format!("0000000000000000FFFF0000{hex}")])
}

fn seconds(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{}", x as u64)
    } else {
        format!("{x}")
    }
}

/// The condition (a shell command list) that ends the wait successfully,
/// and what to print once it holds.
fn condition(target: &Target, connect_timeout: u64) -> (String, String) {
    let grep_flavour = "if echo | grep -qP '' 2>/dev/null; then G=-P; else G=-E; fi; ";
    match target {
        Target::Sleep => ("true".into(), String::new()),
        Target::PortOpen(host, port, None) | Target::PortClosed(host, port) => {
            let (h, p) = (shell_quote(host), port);
            let probe = format!(
                "if command -v timeout >/dev/null 2>&1; then T=\"timeout {connect_timeout}\"; else T=; fi; \
                 if command -v bash >/dev/null 2>&1; then \
                 probe() {{ $T bash -c 'exec 3<>\"/dev/tcp/$1/$2\"' _ {h} {p} >/dev/null 2>&1; }}; \
                 elif command -v nc >/dev/null 2>&1; then \
                 probe() {{ nc -z -w {connect_timeout} {h} {p} >/dev/null 2>&1; }}; \
                 else probe() {{ grep -qiE '^ *[0-9]+: [0-9A-F]+:{port:04X} [0-9A-F]+:[0-9A-F]+ 0A ' /proc/net/tcp /proc/net/tcp6 2>/dev/null; }}; fi; "
            );
            let cond = if matches!(target, Target::PortClosed(..)) {
                "! probe"
            } else {
                "probe"
            };
            (format!("{probe}{cond}"), String::new())
        }
        Target::PortOpen(host, port, Some(re)) => {
            let setup = format!(
                "{grep_flavour}command -v bash >/dev/null 2>&1 || {{ echo 'search_regex on a port needs bash on the host' >&2; exit 3; }}; "
            );
            // grep reads the connection until a line matches or time is up.
            let cond = format!(
                "{setup}left=$((end - $(date +%s))); [ \"$left\" -gt 0 ] && timeout \"$left\" bash -c 'exec 3<>\"/dev/tcp/$1/$2\" && grep -q \"$4\" -e \"$3\" <&3' _ {} {port} {} \"$G\" 2>/dev/null",
                shell_quote(host),
                shell_quote(re)
            );
            (cond, String::new())
        }
        Target::PortDrained(port, states, excluded) => {
            let cond = format!(
                "! {{ cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk -v p={port:04X} -v st=' {} ' -v ex=' {} ' \
                 '$1 ~ /^[0-9]+:$/ {{ n = split($2, l, \":\"); split($3, r, \":\"); \
                 if (toupper(l[n]) == p && index(st, \" \" toupper($4) \" \") && !index(ex, \" \" toupper(r[1]) \" \")) c++ }} \
                 END {{ exit c > 0 ? 0 : 1 }}'; }}",
                states.join(" "),
                excluded.join(" ")
            );
            (cond, String::new())
        }
        Target::FileThere(path, None) => (format!("[ -e {} ]", quote_path(path)), String::new()),
        Target::FileThere(path, Some(re)) => (
            format!(
                "{grep_flavour}[ -e {p} ] && m=$(grep -m1 \"$G\" -e {} -- {p} 2>/dev/null)",
                shell_quote(re),
                p = quote_path(path)
            ),
            "printf '%s\\n' \"$m\"".into(),
        ),
        Target::FileGone(path) => (format!("! [ -e {} ]", quote_path(path)), String::new()),
    }
}

/// The polling loop. It prints `<marker> ok <elapsed>` (then what the
/// condition found) or `<marker> timeout <elapsed>`.
fn script(target: &Target, marker: &str, timeout: u64, delay: u64, sleep: f64, ct: u64) -> String {
    let (cond, found) = condition(target, ct);
    let found = if found.is_empty() {
        found
    } else {
        format!("{found}; ")
    };
    // `elapsed` is whole seconds of the time that passed, as Ansible's
    // timedelta gives it (not a difference of clock seconds, which says 1
    // for a few milliseconds across a second's edge); in nanoseconds where
    // date has %N.
    let mut s = format!(
        "__ns() {{ __n=$(date +%s%N); case $__n in *[!0-9]*) echo $(($(date +%s) * 1000000000));; \
         *) echo \"$__n\";; esac; }}; t0=$(__ns); \
         start=$(date +%s); end=$((start + {timeout})); "
    );
    if delay > 0 {
        s.push_str(&format!("sleep {delay}; "));
    }
    s.push_str(&format!(
        "while [ \"$(date +%s)\" -lt \"$end\" ]; do \
         if {cond}; then echo \"{marker} ok $((($(__ns) - t0) / 1000000000))\"; {found}exit 0; fi; \
         sleep {}; done; echo \"{marker} timeout $((($(__ns) - t0) / 1000000000))\"",
        seconds(sleep)
    ));
    s
}

impl WaitFor {
    fn target(&self) -> Result<Target, ModuleError> {
        let state = self.state.unwrap_or_default();
        let fail = |m: &str| Err(ModuleError::failed(m));
        if self.port.is_some() && self.path.is_some() {
            return fail("port and path parameter can not both be passed to wait_for");
        }
        if self.path.is_some() && state == State::Stopped {
            return fail(
                "state=stopped should only be used for checking a port in the wait_for module",
            );
        }
        if self.path.is_some() && state == State::Drained {
            return fail(
                "state=drained should only be used for checking a port in the wait_for module",
            );
        }
        if self.exclude_hosts.is_some() && state != State::Drained {
            return fail("exclude_hosts should only be with state=drained");
        }
        let mut states = Vec::new();
        for name in self
            .active_connection_states
            .clone()
            .unwrap_or_else(|| ACTIVE_DEFAULT.iter().map(|s| s.to_string()).collect())
        {
            match TCP_STATES.iter().find(|(n, _)| *n == name) {
                Some((_, hex)) => states.push(hex.to_string()),
                None => {
                    return Err(ModuleError::failed(format!(
                        "unknown active_connection_state ({name}) defined"
                    )))
                }
            }
        }
        if let Some(re) = &self.search_regex {
            py_regex(re, ReFlags::default())?;
        }
        let port = match self.port {
            Some(p) => Some(
                u16::try_from(p)
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| ModuleError::Args(format!("invalid port {p}")))?,
            ),
            None => None,
        };
        let host = self.host.clone().unwrap_or_else(|| "127.0.0.1".into());
        // One word to nc or bash: a leading '-' would be an option to nc
        // (traditional netcat runs `-e PROGRAM`).
        safe::name("host", &host)?;
        let re = self.search_regex.clone();
        Ok(match (port, &self.path, state) {
            (Some(p), _, State::Drained) => {
                let mut excluded = Vec::new();
                for h in self.exclude_hosts.iter().flatten() {
                    excluded.extend(proc_hex(h)?);
                }
                Target::PortDrained(p, states, excluded)
            }
            (None, None, State::Drained) => {
                return Err(ModuleError::failed("state=drained needs a port"))
            }
            (Some(p), _, State::Started | State::Present) => Target::PortOpen(host, p, re),
            (Some(p), _, State::Stopped | State::Absent) => Target::PortClosed(host, p),
            (None, Some(path), State::Started | State::Present) => {
                Target::FileThere(path.clone(), re)
            }
            (None, Some(path), _) => Target::FileGone(path.clone()),
            (None, None, _) => Target::Sleep,
        })
    }

    fn timeout_msg(&self, target: &Target) -> String {
        if let Some(m) = &self.msg {
            return m.clone();
        }
        match target {
            Target::Sleep => String::new(),
            Target::PortOpen(h, p, Some(re)) => {
                format!("Timeout when waiting for search string {re} in {h}:{p}")
            }
            Target::PortOpen(h, p, None) => format!("Timeout when waiting for {h}:{p}"),
            Target::PortClosed(h, p) => format!("Timeout when waiting for {h}:{p} to stop."),
            Target::PortDrained(p, ..) => format!(
                "Timeout when waiting for {}:{p} to drain",
                self.host.as_deref().unwrap_or("127.0.0.1")
            ),
            Target::FileThere(path, Some(re)) => {
                format!("Timeout when waiting for search string {re} in {path}")
            }
            Target::FileThere(path, None) => format!("Timeout when waiting for file {path}"),
            Target::FileGone(path) => format!("Timeout when waiting for {path} to be absent."),
        }
    }

    /// The result fields Ansible returns.
    fn result(&self, elapsed: u64, found: Option<&str>) -> Map {
        let mut data = Map::new();
        let state = serde_json::to_value(self.state.unwrap_or_default()).unwrap_or(Value::Null);
        data.insert("elapsed".into(), Value::from(elapsed));
        data.insert("state".into(), state);
        data.insert("port".into(), self.port.map_or(Value::Null, Value::from));
        data.insert(
            "path".into(),
            self.path.clone().map_or(Value::Null, Value::from),
        );
        data.insert(
            "search_regex".into(),
            self.search_regex.clone().map_or(Value::Null, Value::from),
        );
        let mut groups = Vec::new();
        let mut named = Map::new();
        if let (Some(re), Some(line)) = (&self.search_regex, found) {
            if let Ok(re) = py_regex(
                re,
                ReFlags {
                    multi_line: true,
                    dot_all: false,
                },
            ) {
                if let Some(caps) = re.captures(line.as_bytes()) {
                    let text = |i: usize| {
                        caps.bytes(i).map_or(Value::Null, |m| {
                            Value::from(String::from_utf8_lossy(m).into_owned())
                        })
                    };
                    groups = (1..caps.len()).map(text).collect();
                    for (i, name) in re.capture_names().into_iter().enumerate() {
                        if let Some(name) = name {
                            named.insert(name.to_string(), text(i));
                        }
                    }
                }
            }
        }
        data.insert("match_groups".into(), Value::Array(groups));
        data.insert("match_groupdict".into(), Value::Object(named));
        data
    }
}

#[async_trait]
impl Module for WaitFor {
    const NAME: &'static str = "wait_for";
    const ARGS: &'static [&'static str] = &[
        "host",
        "port",
        "path",
        "state",
        "timeout",
        "delay",
        "sleep",
        "connect_timeout",
        "search_regex",
        "exclude_hosts",
        "active_connection_states",
        "msg",
    ];
    type Change = ();

    async fn run_imperative(&self, ctx: &ModuleCtx<'_>) -> Result<Plan<()>, ModuleError> {
        let target = self.target()?;
        let timeout = self.timeout.unwrap_or(300);
        let delay = self.delay.unwrap_or(0);
        if target == Target::Sleep {
            // Nothing to look at on the host: the wait is the same from here.
            let started = Instant::now();
            tokio::time::sleep(Duration::from_secs(delay.saturating_add(timeout))).await;
            return Ok(Plan::Unchanged(
                self.result(started.elapsed().as_secs(), None),
            ));
        }
        let marker = format!("@@drover-wait-{:016x}", rand::rng().random::<u64>());
        let sleep = self.sleep.unwrap_or(1.0);
        let ct = self.connect_timeout.unwrap_or(5);
        let out = ctx
            .remote
            .exec(&script(&target, &marker, timeout, delay, sleep, ct), b"")
            .await?;
        let stdout = out.stdout_str();
        let mut report = stdout.lines().skip_while(|l| !l.starts_with(&marker));
        let head = report.next().and_then(|l| l.strip_prefix(&marker));
        let found = report.next();
        let (what, elapsed) = match head.and_then(|h| h.trim().split_once(' ')) {
            Some((what, n)) => (what, n.parse().unwrap_or(0)),
            None => {
                return Err(ModuleError::failed(format!(
                    "wait_for failed on the host: {}",
                    out.stderr_str().trim()
                )))
            }
        };
        if what == "ok" {
            return Ok(Plan::Unchanged(self.result(elapsed, found)));
        }
        let mut data = Map::new();
        data.insert("elapsed".into(), Value::from(elapsed));
        let msg = self.timeout_msg(&target);
        data.insert("msg".into(), Value::from(msg.clone()));
        Err(ModuleError::Failed { msg, data })
    }

    async fn apply(&self, _ctx: &ModuleCtx<'_>, _change: ()) -> Result<Map, ModuleError> {
        Ok(Map::new())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::net::TcpListener;

    use serde_json::json;

    use super::*;
    use crate::modules::testutil::{remote, run};

    fn timed_out(r: Result<crate::modules::Outcome, ModuleError>) -> String {
        match r {
            Err(ModuleError::Failed { msg, data }) => {
                assert!(data["elapsed"].as_u64().is_some());
                msg
            }
            other => panic!("expected a timeout, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn file_appears() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("ready");
        let p2 = p.clone();
        let writer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(700)).await;
            std::fs::write(p2, "booted\nlistening on port 8080\n").expect("write");
        });
        let path = p.to_str().expect("utf8");
        let out = run::<WaitFor>(
            json!({"path": path, "search_regex": "port (?P<port>\\d+)", "timeout": 10, "sleep": 0.2}),
            false,
        )
        .await
        .expect("appears");
        writer.await.expect("writer");
        assert!(!out.changed);
        assert_eq!(out.data["match_groups"], json!(["8080"]));
        assert_eq!(out.data["match_groupdict"], json!({"port": "8080"}));
        assert_eq!(out.data["path"], path);
        let gone = run::<WaitFor>(
            json!({"path": format!("{path}.nope"), "state": "absent"}),
            false,
        )
        .await
        .expect("absent");
        assert_eq!(gone.data["elapsed"], 0);
    }

    #[tokio::test]
    async fn home_is_expanded_in_path() {
        let home = std::env::var("HOME").expect("HOME");
        let dir = tempfile::tempdir_in(&home).expect("tempdir in home");
        let name = dir
            .path()
            .file_name()
            .and_then(|n| n.to_str())
            .expect("name");
        run::<WaitFor>(json!({"path": format!("~/{name}"), "timeout": 2}), false)
            .await
            .expect("found under ~");
    }

    #[tokio::test]
    async fn file_timeout_has_ansibles_message() {
        let msg = timed_out(
            run::<WaitFor>(
                json!({"path": "/nonexistent/drover", "timeout": 1, "sleep": 0.2}),
                false,
            )
            .await,
        );
        assert_eq!(msg, "Timeout when waiting for file /nonexistent/drover");
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("log");
        std::fs::write(&p, "nothing\n").expect("write");
        let p = p.to_str().expect("utf8");
        let msg = timed_out(
            run::<WaitFor>(
                json!({"path": p, "search_regex": "ready", "timeout": 1, "sleep": 0.2}),
                false,
            )
            .await,
        );
        assert_eq!(
            msg,
            format!("Timeout when waiting for search string ready in {p}")
        );
        let msg = timed_out(
            run::<WaitFor>(
                json!({"path": p, "state": "absent", "timeout": 1, "msg": "still there"}),
                false,
            )
            .await,
        );
        assert_eq!(msg, "still there");
    }

    #[tokio::test]
    async fn ports_open_closed_and_drained() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let out = run::<WaitFor>(json!({"port": port, "timeout": 5}), false)
            .await
            .expect("open");
        assert_eq!(out.data["port"], port);
        assert_eq!(out.data["state"], "started");
        let msg = timed_out(
            run::<WaitFor>(
                json!({"port": port, "state": "stopped", "timeout": 1, "sleep": 0.3}),
                false,
            )
            .await,
        );
        assert_eq!(
            msg,
            format!("Timeout when waiting for 127.0.0.1:{port} to stop.")
        );
        drop(listener);
        run::<WaitFor>(
            json!({"port": port, "state": "stopped", "timeout": 5}),
            false,
        )
        .await
        .expect("stopped");
        let msg = timed_out(
            run::<WaitFor>(
                json!({"port": port, "timeout": 1, "sleep": 0.3, "host": "localhost"}),
                false,
            )
            .await,
        );
        assert_eq!(msg, format!("Timeout when waiting for localhost:{port}"));
        run::<WaitFor>(
            json!({"port": port, "state": "drained", "timeout": 5, "exclude_hosts": ["10.0.0.1"]}),
            false,
        )
        .await
        .expect("drained");
    }

    #[tokio::test]
    async fn port_sends_a_banner() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = std::thread::spawn(move || {
            if let Ok((mut s, _)) = listener.accept() {
                let _ = s.write_all(b"SSH-2.0-OpenSSH_9.6\r\n");
            }
        });
        run::<WaitFor>(
            json!({"port": port, "search_regex": "OpenSSH", "timeout": 5}),
            false,
        )
        .await
        .expect("banner");
        server.join().expect("server");
    }

    #[tokio::test]
    async fn argument_checks() {
        for (args, want) in [
            (
                json!({"port": 22, "path": "/x"}),
                "port and path parameter can not both be passed to wait_for",
            ),
            (
                json!({"path": "/x", "state": "stopped"}),
                "state=stopped should only be used for checking a port in the wait_for module",
            ),
            (
                json!({"port": 22, "exclude_hosts": ["1.2.3.4"]}),
                "exclude_hosts should only be with state=drained",
            ),
            (
                json!({"port": 22, "state": "drained", "active_connection_states": ["BOGUS"]}),
                "unknown active_connection_state (BOGUS) defined",
            ),
        ] {
            match run::<WaitFor>(args, false).await {
                Err(ModuleError::Failed { msg, .. }) => assert_eq!(msg, want),
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            run::<WaitFor>(json!({"port": 70000}), false).await,
            Err(ModuleError::Args(_))
        ));
        assert!(matches!(
            run::<WaitFor>(
                json!({"port": 22, "state": "drained", "exclude_hosts": "gw.local"}),
                false
            )
            .await,
            Err(ModuleError::Args(_))
        ));
    }

    #[tokio::test]
    async fn plain_sleep_is_local() {
        let started = Instant::now();
        let out = run::<WaitFor>(json!({"timeout": 1}), false)
            .await
            .expect("sleep");
        assert!(started.elapsed() >= Duration::from_secs(1));
        assert_eq!(out.data["elapsed"], 1);
    }

    #[tokio::test]
    async fn proc_fallback_sees_listening_sockets() {
        // The fallback used when neither bash nor nc exists, run directly.
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let check = |port: u16| {
            format!("grep -qiE '^ *[0-9]+: [0-9A-F]+:{port:04X} [0-9A-F]+:[0-9A-F]+ 0A ' /proc/net/tcp /proc/net/tcp6")
        };
        let out = remote().exec(&check(port), b"").await.expect("exec");
        assert_eq!(out.status, 0);
        drop(listener);
        let out = remote().exec(&check(port), b"").await.expect("exec");
        assert_ne!(out.status, 0);
        assert_eq!(proc_hex("192.168.1.240").expect("ip")[0], "F001A8C0");
    }

    #[tokio::test]
    async fn whole_loop_without_bash_or_nc() {
        // `command -v` finds nothing: the loop must fall back to /proc/net/tcp.
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let target = Target::PortOpen("127.0.0.1".into(), port, None);
        let s = format!(
            "command() {{ return 1; }}; {}",
            script(&target, "@@m", 3, 0, 0.2, 1)
        );
        let out = remote().exec(&s, b"").await.expect("exec");
        assert!(out.stdout_str().starts_with("@@m ok "), "{out:?}");
        drop(listener);
        let closed = Target::PortClosed("127.0.0.1".into(), port);
        let s = format!(
            "command() {{ return 1; }}; {}",
            script(&closed, "@@m", 3, 0, 0.2, 1)
        );
        let out = remote().exec(&s, b"").await.expect("exec");
        assert!(out.stdout_str().starts_with("@@m ok "), "{out:?}");
    }
}
