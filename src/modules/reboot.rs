//! `reboot` (ansible.builtin.reboot): reboot the host, wait until it is back
//! (a new boot id and a passing test command), and carry on.
//!
//! One exec reads the boot id and starts the reboot detached (so the exec
//! returns before the host goes down). Then the transport reconnects (a new
//! SSH connection, same host key checking and credentials; become applies
//! as before) until the host answers with another boot id, within
//! `reboot_timeout`. Always a change; in check mode nothing happens.

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use tokio::time::Instant;

use super::args::{opt_string_ish, opt_u64_ish};
use super::{Module, ModuleCtx, ModuleError, Plan};
use crate::transport::{shell_quote, TransportError};
use crate::{Map, Value};

/// Arguments of `reboot`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reboot {
    /// Seconds to wait for the host to come back (default 600).
    #[serde(
        default,
        alias = "reboot_timeout_sec",
        deserialize_with = "opt_u64_ish"
    )]
    reboot_timeout: Option<u64>,
    /// Seconds one connection attempt may take (default 10).
    #[serde(
        default,
        alias = "connect_timeout_sec",
        deserialize_with = "opt_u64_ish"
    )]
    connect_timeout: Option<u64>,
    /// Seconds to wait before rebooting.
    #[serde(
        default,
        alias = "pre_reboot_delay_sec",
        deserialize_with = "opt_delay"
    )]
    pre_reboot_delay: Option<u64>,
    /// Seconds to wait after the host is back.
    #[serde(
        default,
        alias = "post_reboot_delay_sec",
        deserialize_with = "opt_delay"
    )]
    post_reboot_delay: Option<u64>,
    /// Command that must succeed once the host is back.
    #[serde(default, deserialize_with = "opt_string_ish")]
    test_command: Option<String>,
    /// Message for logged-in users.
    #[serde(default, deserialize_with = "opt_string_ish")]
    msg: Option<String>,
    /// Command printing something that changes with every boot.
    #[serde(default, deserialize_with = "opt_string_ish")]
    boot_time_command: Option<String>,
    /// Command that reboots (default `shutdown -r 0 "<msg>"`, else `reboot`).
    #[serde(default, deserialize_with = "opt_string_ish")]
    reboot_command: Option<String>,
    /// Directories where `shutdown` is looked for, in order (Ansible's
    /// default: /sbin, /bin, /usr/sbin, /usr/bin, /usr/local/sbin).
    #[serde(default, deserialize_with = "opt_paths")]
    search_paths: Option<Vec<String>>,
}

/// A delay in seconds: a negative one is no delay, as in Ansible.
fn opt_delay<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    use serde::de::Error as _;
    let v = Value::deserialize(d)?;
    if v.is_null() {
        return Ok(None);
    }
    match super::args::loose_f64(&v) {
        Some(x) if x.is_finite() && x <= u64::MAX as f64 => Ok(Some(x.max(0.0).trunc() as u64)),
        _ => Err(D::Error::custom(format!("{v} is not a number of seconds"))),
    }
}

/// `search_paths`: one directory or a flat list of them.
fn opt_paths<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    use serde::de::Error as _;
    let v = Value::deserialize(d)?;
    let one = |v: &Value| {
        super::args::loose_string(v).ok_or_else(|| {
            D::Error::custom(format!(
                "'search_paths' must be a string or flat list of strings, got {v}"
            ))
        })
    };
    match &v {
        Value::Null => Ok(None),
        Value::Array(items) => items.iter().map(one).collect::<Result<_, _>>().map(Some),
        other => one(other).map(|p| Some(vec![p])),
    }
}

const DEFAULT_MSG: &str = "Reboot initiated by drover";
const DEFAULT_BOOT_TIME: &str = "cat /proc/sys/kernel/random/boot_id";

/// What the probe after a reconnect found.
#[derive(Debug, PartialEq, Eq)]
struct Probe {
    boot: Option<String>,
    test_rc: Option<i32>,
}

fn parse_probe(out: &str) -> Probe {
    let mut p = Probe {
        boot: None,
        test_rc: None,
    };
    for line in out.lines() {
        if let Some(b) = line.strip_prefix("@@boot ") {
            let b = b.trim();
            if !b.is_empty() {
                p.boot = Some(b.to_string());
            }
        } else if let Some(rc) = line.strip_prefix("@@test ") {
            p.test_rc = rc.trim().parse().ok();
        }
    }
    p
}

/// Is the host back from its reboot?
fn is_back(before: &str, probe: &Probe) -> bool {
    matches!(&probe.boot, Some(b) if b != before) && probe.test_rc == Some(0)
}

impl Reboot {
    fn boot_time_command(&self) -> &str {
        self.boot_time_command
            .as_deref()
            .filter(|c| !c.trim().is_empty())
            .unwrap_or(DEFAULT_BOOT_TIME)
    }

    /// Read the boot id, pick the reboot command and start it detached.
    fn start_script(&self) -> String {
        let msg = self.msg.as_deref().unwrap_or(DEFAULT_MSG);
        let choose = match (&self.reboot_command, &self.search_paths) {
            (Some(c), _) if !c.trim().is_empty() => format!("c={}\n", shell_quote(c)),
            (_, Some(paths)) => {
                let dirs: Vec<String> = paths.iter().map(|p| shell_quote(p)).collect();
                let err = format!(
                    "Unable to find command \"shutdown\" in search paths: {}",
                    paths.join(", ")
                );
                format!(
                    "c=; for d in {}; do if [ -x \"$d/shutdown\" ]; then c=\"$d/shutdown -r 0 \"{}; break; fi; done\n\
                     [ -n \"$c\" ] || {{ echo {} >&2; exit 91; }}\n",
                    dirs.join(" "),
                    shell_quote(&shell_quote(msg)),
                    shell_quote(&err)
                )
            }
            _ => format!(
                "if command -v shutdown >/dev/null 2>&1; then c={}\n\
                 elif command -v reboot >/dev/null 2>&1; then c=reboot\n\
                 else echo 'neither shutdown nor reboot was found' >&2; exit 91; fi\n",
                shell_quote(&format!("shutdown -r 0 {}", shell_quote(msg)))
            ),
        };
        // The delay lets this exec return (and its channel close) before the
        // host starts going down; setsid keeps sudo's pty hangup away.
        let delay = 1 + self.pre_reboot_delay.unwrap_or(0);
        format!(
            "PATH=\"$PATH:/usr/local/sbin:/usr/sbin:/sbin\"; export PATH\n\
             b=$({}) || {{ echo 'the boot time command failed' >&2; exit 90; }}\n\
             printf '@@boot %s\\n' \"$b\"\n\
             {choose}\
             s=; if command -v setsid >/dev/null 2>&1; then s=setsid; fi\n\
             $s nohup sh -c \"sleep {delay}; $c\" >/dev/null 2>&1 </dev/null &\n\
             echo @@started\n",
            self.boot_time_command()
        )
    }

    /// Read the boot id and run the test command.
    fn probe_script(&self) -> String {
        let test = self
            .test_command
            .as_deref()
            .filter(|c| !c.trim().is_empty())
            .unwrap_or("whoami");
        format!(
            "printf '@@boot %s\\n' \"$({} 2>/dev/null)\"\n\
             ( {test} ) >/dev/null 2>&1 </dev/null; echo \"@@test $?\"\n",
            self.boot_time_command()
        )
    }

    /// Reconnect and probe until the host is back or time runs out.
    async fn wait_for_boot(
        &self,
        ctx: &ModuleCtx<'_>,
        before: &str,
        started: Instant,
    ) -> Result<(), ModuleError> {
        let limit = Duration::from_secs(self.reboot_timeout.unwrap_or(600));
        let per_try = Duration::from_secs(self.connect_timeout.unwrap_or(10).max(1));
        let mut last_error = String::from("the host did not answer");
        let mut pause = Duration::from_secs(1);
        loop {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(5));
            let left = limit.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Err(ModuleError::failed(format!(
                    "Timed out waiting for the host to come back after reboot ({}s): {last_error}",
                    limit.as_secs()
                )));
            }
            let attempt = async {
                ctx.remote.reconnect().await?;
                ctx.remote.exec(&self.probe_script(), b"").await
            };
            match tokio::time::timeout(per_try.min(left), attempt).await {
                Err(_) => last_error = "connection attempt timed out".into(),
                // A changed host key will not fix itself by waiting.
                Ok(Err(e @ TransportError::HostKey { .. })) => return Err(e.into()),
                Ok(Err(e)) => last_error = e.to_string(),
                Ok(Ok(out)) => {
                    let probe = parse_probe(&out.stdout_str());
                    if is_back(before, &probe) {
                        return Ok(());
                    }
                    last_error = match probe.boot {
                        Some(b) if b == before => "the host has not rebooted yet".into(),
                        _ => format!("test command failed (rc {})", probe.test_rc.unwrap_or(-1)),
                    };
                }
            }
        }
    }
}

#[async_trait]
impl Module for Reboot {
    const NAME: &'static str = "reboot";
    const ARGS: &'static [&'static str] = &[
        "reboot_timeout",
        "reboot_timeout_sec",
        "connect_timeout",
        "connect_timeout_sec",
        "pre_reboot_delay",
        "pre_reboot_delay_sec",
        "post_reboot_delay",
        "post_reboot_delay_sec",
        "test_command",
        "msg",
        "boot_time_command",
        "reboot_command",
        "search_paths",
    ];
    type Change = ();

    async fn run_imperative(&self, ctx: &ModuleCtx<'_>) -> Result<Plan<()>, ModuleError> {
        // The wall message follows shutdown's options: a leading '-' would
        // be read as one.
        if let Some(m) = self.msg.as_deref().filter(|m| m.starts_with('-')) {
            return Err(ModuleError::Args(format!(
                "msg cannot start with '-' ({m:?} would be read as an option to shutdown)"
            )));
        }
        if ctx.host == "localhost" {
            // As Ansible: never reboot the control machine.
            return Err(ModuleError::failed(
                "refusing to reboot the control machine (localhost)",
            ));
        }
        let mut data = Map::new();
        data.insert("rebooted".into(), Value::Bool(true));
        data.insert("elapsed".into(), Value::from(0));
        Ok(Plan::Change {
            change: (),
            diff: None,
            data,
        })
    }

    async fn apply(&self, ctx: &ModuleCtx<'_>, _change: ()) -> Result<Map, ModuleError> {
        let started = Instant::now();
        let out = ctx.remote.exec(&self.start_script(), b"").await?;
        let probe = parse_probe(&out.stdout_str());
        let before = match (out.status, probe.boot) {
            (0, Some(b)) if out.stdout_str().contains("@@started") => b,
            _ => {
                let mut data = Map::new();
                data.insert("rc".into(), Value::from(out.status));
                data.insert("rebooted".into(), Value::Bool(false));
                return Err(ModuleError::Failed {
                    msg: format!("Reboot command failed: {}", out.stderr_str().trim()),
                    data,
                });
            }
        };
        self.wait_for_boot(ctx, &before, started).await?;
        if let Some(d) = self.post_reboot_delay.filter(|d| *d > 0) {
            tokio::time::sleep(Duration::from_secs(d)).await;
        }
        let mut data = Map::new();
        data.insert("rebooted".into(), Value::Bool(true));
        data.insert("elapsed".into(), Value::from(started.elapsed().as_secs()));
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::modules::testutil::{assert_args_complete, Harness};
    use crate::modules::{drive, ModuleCtx};

    fn module(v: Value) -> Reboot {
        serde_json::from_value(v).expect("args")
    }

    /// reboot target: `search_paths` was an unknown argument and a negative
    /// delay (`post_reboot_delay: -0.5`) "not a whole number".
    #[test]
    fn search_paths_find_shutdown_and_negative_delays_are_none() {
        let m = module(
            json!({"search_paths": "/lib/molly-guard", "post_reboot_delay": -0.5, "pre_reboot_delay": -61}),
        );
        assert_eq!(m.post_reboot_delay, Some(0));
        assert_eq!(m.pre_reboot_delay, Some(0));
        let script = m.start_script();
        assert!(script.contains("for d in /lib/molly-guard; do"), "{script}");
        assert!(script.contains("Unable to find command"), "{script}");
        let dir = tempfile::tempdir().expect("tmp");
        let bin = dir.path().join("shutdown");
        std::fs::write(&bin, "#!/bin/sh\n").expect("write");
        std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        let m = module(json!({"search_paths": ["/nonexistent", dir.path()], "msg": "it's time"}));
        let line = m
            .start_script()
            .lines()
            .find(|l| l.starts_with("c=; for d in"))
            .expect("search line")
            .to_string();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{line}\nprintf '%s' \"$c\""))
            .output()
            .expect("sh");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{}/shutdown -r 0 'it'\\''s time'", dir.path().display())
        );
        assert!(serde_json::from_value::<Reboot>(json!({"search_paths": {"a": 1}})).is_err());
    }

    #[test]
    fn args() {
        assert_args_complete::<Reboot>();
    }

    #[test]
    fn probes() {
        let p = parse_probe("@@boot abc\n@@test 0\n");
        assert!(is_back("old", &p));
        assert!(!is_back("abc", &p), "same boot");
        assert!(!is_back("old", &parse_probe("@@boot abc\n@@test 1\n")));
        assert!(!is_back("old", &parse_probe("@@boot \n@@test 0\n")));
        assert_eq!(
            parse_probe("junk\n@@boot x\n"),
            Probe {
                boot: Some("x".into()),
                test_rc: None
            }
        );
    }

    #[test]
    fn scripts() {
        let m = module(json!({"msg": "it's time", "pre_reboot_delay": 4}));
        let s = m.start_script();
        assert!(
            s.contains("b=$(cat /proc/sys/kernel/random/boot_id)"),
            "{s}"
        );
        // The message survives two levels of quoting.
        let c = s
            .lines()
            .find_map(|l| l.strip_prefix("if command -v shutdown >/dev/null 2>&1; then c="))
            .expect("shutdown line");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("c={c}; sh -c \"printf '%s|' $c\""))
            .output()
            .expect("sh");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "shutdown|-r|0|it's time|"
        );
        assert!(s.contains("elif command -v reboot"));
        assert!(s.contains("nohup sh -c \"sleep 5; $c\""));
        let m = module(json!({"reboot_command": "systemctl reboot", "test_command": "uptime"}));
        assert!(m.start_script().contains("c='systemctl reboot'\n"));
        assert!(m.probe_script().contains("( uptime ) >/dev/null"));
    }

    /// Through real SSH: the "reboot" kills the connection's sshd (as a
    /// reboot drops every session) and the module reconnects.
    #[tokio::test]
    #[ignore = "needs root: run scripts/test"]
    async fn reconnects_over_ssh() {
        use crate::modules::testutil::TestRender;
        use crate::transport::ssh::tests_support::Sshd;
        use crate::transport::{Remote, Transport};

        let sshd = Sshd::start("");
        let t = sshd.connect().await;
        let remote = Remote::new(t.clone(), None);
        let dir = tempfile::tempdir().expect("tempdir");
        let id = dir.path().join("boot_id").to_string_lossy().into_owned();
        std::fs::write(&id, "one\n").expect("write");
        let conn_pid = remote
            .exec("echo $PPID", b"")
            .await
            .expect("pid")
            .stdout_str();
        let m = module(json!({
            "boot_time_command": format!("cat {id}"),
            "reboot_command": format!("echo two > {id}; kill -9 {}", conn_pid.trim()),
            "reboot_timeout": 30
        }));
        let render = TestRender::new(json!({}));
        let ctx = ModuleCtx {
            host: "node",
            remote: &remote,
            check: false,
            diff: false,
            render: &render,
            search: &[],
        };
        let out = drive(&m, &ctx).await.expect("reboot");
        assert!(out.changed);
        let now = remote
            .exec("echo $PPID", b"")
            .await
            .expect("after")
            .stdout_str();
        assert_ne!(now, conn_pid, "a new connection");
        t.close().await;
        sshd.stop().await;
    }

    /// The whole flow on this machine: the "reboot" rewrites a file that
    /// stands for the boot id (the local transport's reconnect does nothing).
    #[tokio::test]
    async fn waits_for_a_new_boot_id() {
        let h = Harness::new();
        let id = h.path("boot_id");
        std::fs::write(&id, "one\n").expect("write");
        let m = module(json!({
            "boot_time_command": format!("cat {id}"),
            "reboot_command": format!("echo two > {id}"),
            "test_command": "true",
            "reboot_timeout": 20
        }));
        let ctx = ModuleCtx {
            host: "node",
            ..h.ctx(true, false)
        };
        let out = drive(&m, &ctx).await.expect("check");
        assert!(out.changed);
        assert_eq!(std::fs::read_to_string(&id).expect("r"), "one\n");
        let ctx = ModuleCtx {
            host: "node",
            ..h.ctx(false, false)
        };
        let out = drive(&m, &ctx).await.expect("reboot");
        assert!(out.changed);
        assert_eq!(out.data["rebooted"], json!(true));
        assert_eq!(std::fs::read_to_string(&id).expect("r"), "two\n");

        // A host that never comes back times out.
        let m = module(json!({
            "boot_time_command": format!("cat {id}"),
            "reboot_command": "true",
            "reboot_timeout": 2
        }));
        let err = drive(&m, &ctx).await.expect_err("timeout");
        assert!(err.to_string().contains("Timed out"), "{err}");
        let err = h
            .run::<Reboot>(json!({}), true, false)
            .await
            .expect_err("localhost");
        assert!(err.to_string().contains("control machine"), "{err}");
    }
}
