//! `wait_for_connection`: wait until drover can log in to the host again
//! and run a command there (after a network change or a reboot started
//! elsewhere). Each try reconnects and runs a probe; changes nothing, and
//! runs in check mode too, as in Ansible.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Deserialize;

use super::args::opt_u64_ish;
use super::{Module, ModuleCtx, ModuleError, Plan, Protocol, ReadCtx};
use crate::transport::TransportError;
use crate::{Map, Value};

/// Arguments of `wait_for_connection`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitForConnection {
    /// Give up after this many seconds (default 600).
    #[serde(default, deserialize_with = "opt_u64_ish")]
    timeout: Option<u64>,
    /// Seconds to wait before the first try (default 0).
    #[serde(default, deserialize_with = "opt_u64_ish")]
    delay: Option<u64>,
    /// Seconds between tries (default 1).
    #[serde(default, deserialize_with = "opt_u64_ish")]
    sleep: Option<u64>,
    /// Seconds one try may take (default 5).
    #[serde(default, deserialize_with = "opt_u64_ish")]
    connect_timeout: Option<u64>,
}

#[async_trait]
impl Module for WaitForConnection {
    const NAME: &'static str = "wait_for_connection";
    const ARGS: &'static [&'static str] = &["timeout", "delay", "sleep", "connect_timeout"];
    type Change = ();

    fn reads(&self, _ctx: &ReadCtx<'_>) -> Result<Protocol, ModuleError> {
        Ok(Protocol::Imperative)
    }

    async fn run_imperative(&self, ctx: &ModuleCtx<'_>) -> Result<Plan<()>, ModuleError> {
        let started = Instant::now();
        let limit = Duration::from_secs(self.timeout.unwrap_or(600));
        let per_try = Duration::from_secs(self.connect_timeout.unwrap_or(5).max(1));
        let pause = Duration::from_secs(self.sleep.unwrap_or(1));
        tokio::time::sleep(Duration::from_secs(self.delay.unwrap_or(0))).await;
        let mut first = true;
        let mut last_error = String::from("the host did not answer");
        loop {
            let left = limit.saturating_sub(started.elapsed());
            if left.is_zero() && !first {
                let mut data = Map::new();
                data.insert("elapsed".into(), Value::from(started.elapsed().as_secs()));
                return Err(ModuleError::Failed {
                    msg: format!(
                        "timed out waiting for connection ({}s): {last_error}",
                        limit.as_secs()
                    ),
                    data,
                });
            }
            let attempt = async {
                // The first try uses the connection as it is; later ones start anew.
                if !first {
                    ctx.remote.reconnect().await?;
                }
                ctx.remote.exec("true", b"").await
            };
            match tokio::time::timeout(per_try.min(left.max(Duration::from_secs(1))), attempt).await
            {
                Err(_) => last_error = "connection attempt timed out".into(),
                Ok(Err(e @ TransportError::HostKey { .. })) => return Err(e.into()),
                Ok(Err(e)) => last_error = e.to_string(),
                Ok(Ok(out)) if out.status == 0 => {
                    let mut data = Map::new();
                    data.insert("elapsed".into(), Value::from(started.elapsed().as_secs()));
                    return Ok(Plan::Unchanged(data));
                }
                Ok(Ok(out)) => last_error = format!("the probe failed (rc {})", out.status),
            }
            first = false;
            tokio::time::sleep(pause.min(limit.saturating_sub(started.elapsed()))).await;
        }
    }

    async fn apply(&self, _ctx: &ModuleCtx<'_>, _change: ()) -> Result<Map, ModuleError> {
        Ok(Map::new())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::modules::testutil::{assert_args_complete, run};

    #[test]
    fn args() {
        assert_args_complete::<WaitForConnection>();
    }

    #[tokio::test]
    async fn answers_at_once_when_the_host_is_there() {
        for check in [false, true] {
            let out = run::<WaitForConnection>(json!({"timeout": 5}), check)
                .await
                .expect("wait");
            assert!(!out.changed);
            assert_eq!(out.data["elapsed"], json!(0));
        }
    }
}
