//! `pause`: wait a number of seconds or minutes, or for an answer to a
//! prompt. drover never reads the terminal during a run, so a prompt
//! without a time is answered at once with an empty input — what Ansible
//! does when its standard input is not a terminal. Never reaches the host.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Deserialize;

use super::args::{opt_bool_ish, opt_f64_ish, opt_string_ish};
use super::{Module, ModuleCtx, ModuleError, Plan, Protocol, ReadCtx};
use crate::{Map, Value};

/// Arguments of `pause`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pause {
    /// Minutes to wait.
    #[serde(default, deserialize_with = "opt_f64_ish")]
    minutes: Option<f64>,
    /// Seconds to wait.
    #[serde(default, deserialize_with = "opt_f64_ish")]
    seconds: Option<f64>,
    /// Text to show while waiting.
    #[serde(default, deserialize_with = "opt_string_ish")]
    prompt: Option<String>,
    /// Show what is typed at the prompt (default yes).
    #[serde(default, deserialize_with = "opt_bool_ish")]
    echo: Option<bool>,
}

impl Pause {
    /// How long to wait: `None` means "until answered", which without a
    /// terminal is not at all.
    fn wait(&self) -> Option<Duration> {
        match (self.seconds, self.minutes) {
            (Some(s), _) => Some(Duration::from_secs_f64(s)),
            (None, Some(m)) => Some(Duration::from_secs_f64(m * 60.0)),
            (None, None) => None,
        }
    }

    fn result(&self, waited: Duration) -> Map {
        let mut m = Map::new();
        m.insert("echo".into(), Value::Bool(self.echo.unwrap_or(true)));
        m.insert("user_input".into(), Value::from(""));
        m.insert("delta".into(), Value::from(waited.as_secs()));
        let stdout = match self.wait() {
            Some(d) if self.minutes.is_some() && self.seconds.is_none() => {
                format!("Paused for {} minutes", d.as_secs_f64() / 60.0)
            }
            Some(d) => format!("Paused for {} seconds", d.as_secs_f64()),
            None => format!(
                "{}: not waiting for response to prompt as stdin is not interactive",
                self.prompt.as_deref().unwrap_or("[pause]")
            ),
        };
        m.insert("stdout".into(), Value::from(stdout));
        m
    }
}

#[async_trait]
impl Module for Pause {
    const NAME: &'static str = "pause";
    const ARGS: &'static [&'static str] = &["minutes", "seconds", "prompt", "echo"];
    type Change = ();

    fn reads(&self, _ctx: &ReadCtx<'_>) -> Result<Protocol, ModuleError> {
        Ok(Protocol::Local)
    }

    async fn run_imperative(&self, _ctx: &ModuleCtx<'_>) -> Result<Plan<()>, ModuleError> {
        let started = Instant::now();
        if let Some(d) = self.wait() {
            tokio::time::sleep(d).await;
        }
        Ok(Plan::Unchanged(self.result(started.elapsed())))
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
        assert_args_complete::<Pause>();
    }

    #[tokio::test]
    async fn waits_and_does_not_wait_for_a_prompt_without_a_terminal() {
        let started = Instant::now();
        let out = run::<Pause>(json!({"seconds": "0.3"}), true)
            .await
            .expect("pause");
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert!(!out.changed);
        assert_eq!(out.data["stdout"], json!("Paused for 0.3 seconds"));
        let started = Instant::now();
        let out = run::<Pause>(json!({"prompt": "Press enter"}), false)
            .await
            .expect("prompt");
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(out.data["user_input"], json!(""));
        assert!(run::<Pause>(json!({"seconds": -1}), false).await.is_err());
    }
}
