//! `script`: copy a local script to a temporary directory on the host, run
//! it there and remove it. `creates`/`removes` are a declared read (so a
//! satisfied guard costs no round trip of its own and holds in check mode);
//! otherwise what the script does cannot be known: skipped in check mode,
//! reported changed, as in Ansible.

use async_trait::async_trait;
use serde::Deserialize;

use super::args::opt_string_ish;
use super::cmdargs::extract_kv;
use super::command::{quote_glob, Shell};
use super::{
    Decision, Module, ModuleCtx, ModuleError, Observed, Plan, Protocol, ReadCtx, ReadSet, Scope,
};
use crate::transport::shell_quote;
use crate::{Map, Value};

/// Arguments of `script`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    /// `path/to/script args...` (free form).
    #[serde(default, rename = "_raw_params", deserialize_with = "opt_string_ish")]
    raw_params: Option<String>,
    /// The same, as an argument.
    #[serde(default, deserialize_with = "opt_string_ish")]
    cmd: Option<String>,
    /// Do not run when this path (a glob) exists on the host.
    #[serde(default, deserialize_with = "opt_string_ish")]
    creates: Option<String>,
    /// Do not run unless this path (a glob) exists on the host.
    #[serde(default, deserialize_with = "opt_string_ish")]
    removes: Option<String>,
    /// Directory on the host to run in.
    #[serde(default, deserialize_with = "opt_string_ish")]
    chdir: Option<String>,
    /// Interpreter to run the script with (`executable script args`).
    #[serde(default, deserialize_with = "opt_string_ish")]
    executable: Option<String>,
    /// Vault decryption of the source (drover's sources are plain files).
    #[serde(default, rename = "decrypt")]
    _decrypt: Option<Value>,
}

/// Options Ansible takes out of the free-form text.
const INLINE_KEYS: &[&str] = &["creates", "removes", "chdir", "executable", "decrypt"];

/// The script and how to run it, settled from the arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    /// The local path as written (looked up along the search path).
    src: String,
    /// The rest of the command line, as written (the host's shell reads it).
    args: String,
    creates: Option<String>,
    removes: Option<String>,
    chdir: Option<String>,
    executable: Option<String>,
}

impl Script {
    fn prepare(&self) -> Result<Prepared, ModuleError> {
        let (inline, text) = match (&self.raw_params, &self.cmd) {
            (Some(_), Some(_)) => {
                return Err(ModuleError::Args(
                    "parameters are mutually exclusive: _raw_params|cmd".into(),
                ))
            }
            (Some(t), None) => extract_kv(t, INLINE_KEYS),
            (None, Some(t)) => (Vec::new(), t.clone()),
            (None, None) => (Vec::new(), String::new()),
        };
        let text = text.trim();
        // The script is the first shell word (`'space path/s.sh' a b`, as
        // Ansible's shlex.split takes it); the rest is passed on as written.
        let words = crate::shlex::split(text, false).map_err(|e| {
            ModuleError::Args(format!("cannot split the script's command line: {e}"))
        })?;
        let src = words
            .first()
            .map(|w| w.text.clone())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                ModuleError::Args("one of the following is required: _raw_params, cmd".into())
            })?;
        let rest = words.get(1).map_or("", |w| &text[w.offset..]);
        let mut p = Prepared {
            src,
            args: rest.to_string(),
            creates: self.creates.clone(),
            removes: self.removes.clone(),
            chdir: self.chdir.clone(),
            executable: self.executable.clone(),
        };
        for (k, v) in inline {
            match k.as_str() {
                "creates" => p.creates = p.creates.or(Some(v)),
                "removes" => p.removes = p.removes.or(Some(v)),
                "chdir" => p.chdir = p.chdir.or(Some(v)),
                "executable" => p.executable = p.executable.or(Some(v)),
                _ => {}
            }
        }
        Ok(p)
    }
}

/// The guard read: which of `creates`/`removes` says not to run.
fn guard_script(p: &Prepared) -> String {
    let mut s = String::new();
    if let Some(d) = &p.chdir {
        s.push_str(&format!("cd {} 2>/dev/null || true\n", quote_glob(d)));
    }
    let test = |glob: &str, hit: &str, miss: &str| {
        format!(
            "r={miss}; for f in {}; do if [ -e \"$f\" ] || [ -L \"$f\" ]; then r={hit}; break; fi; done; echo \"$r\"\n",
            quote_glob(glob)
        )
    };
    if let Some(c) = &p.creates {
        s.push_str(&test(c, "@@creates", "@@ok"));
    }
    if let Some(r) = &p.removes {
        s.push_str(&test(r, "@@ok", "@@removes"));
    }
    s
}

/// The result of a run the guard ruled out: skipped, as Ansible's action
/// skips it, with its reason.
fn skipped(msg: String) -> Map {
    let mut m = Map::new();
    m.insert("msg".into(), Value::from(msg));
    m.insert("skipped".into(), Value::Bool(true));
    m.insert("changed".into(), Value::Bool(false));
    m
}

/// The plan from the guard's output (`None`: no guard was read). In check
/// mode a script the guard lets run is reported changed, not run (Ansible:
/// with `creates`/`removes` check mode is supported that far).
fn plan_from(p: Prepared, guard: Option<&str>, check: bool) -> Result<Plan<Prepared>, ModuleError> {
    if let Some(out) = guard {
        for line in out.lines().map(str::trim) {
            match line {
                "@@creates" => {
                    let c = p.creates.clone().unwrap_or_default();
                    return Ok(Plan::Unchanged(skipped(format!(
                        "{c} exists, matching creates option"
                    ))));
                }
                "@@removes" => {
                    let r = p.removes.clone().unwrap_or_default();
                    return Ok(Plan::Unchanged(skipped(format!(
                        "{r} does not exist, matching removes option"
                    ))));
                }
                "@@ok" => {}
                other => {
                    return Err(ModuleError::failed(format!(
                        "reading creates/removes failed: unexpected output {other:?}"
                    )))
                }
            }
        }
        if check {
            return Ok(Plan::Change {
                change: p,
                diff: None,
                data: Map::new(),
            });
        }
    }
    Ok(Plan::Run(p))
}

#[async_trait]
impl Module for Script {
    const NAME: &'static str = "script";
    const ARGS: &'static [&'static str] = &[
        "_raw_params",
        "cmd",
        "creates",
        "removes",
        "chdir",
        "executable",
        "decrypt",
    ];
    const FREE_FORM: bool = true;
    type Change = Prepared;

    fn validate(&self) -> Result<(), super::ArgError> {
        self.prepare().map(|_| ()).map_err(|e| match e {
            ModuleError::Args(m) => m.into(),
            other => other.to_string().into(),
        })
    }

    fn reads(&self, ctx: &ReadCtx<'_>) -> Result<Protocol, ModuleError> {
        let p = self.prepare()?;
        ctx.find_local(&p.src)?;
        if p.creates.is_none() && p.removes.is_none() {
            return Ok(Protocol::Imperative);
        }
        Ok(Protocol::Declared(ReadSet::one(
            guard_script(&p),
            Scope::Host,
        )))
    }

    fn decide(
        &self,
        observed: &Observed,
        ctx: &ReadCtx<'_>,
    ) -> Result<Decision<Prepared>, ModuleError> {
        let p = self.prepare()?;
        let out = observed.output(0)?;
        plan_from(p, Some(&out.stdout_str()), ctx.check).map(Decision::Plan)
    }

    async fn run_imperative(&self, ctx: &ModuleCtx<'_>) -> Result<Plan<Prepared>, ModuleError> {
        plan_from(self.prepare()?, None, ctx.check)
    }

    async fn apply(&self, ctx: &ModuleCtx<'_>, p: Prepared) -> Result<Map, ModuleError> {
        let local = ctx.find_local(&p.src)?;
        let body = std::fs::read(&local)
            .map_err(|e| ModuleError::failed(format!("Could not read {}: {e}", local.display())))?;
        let name = local
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "script".into());
        let up = format!(
            "d=$(mktemp -d \"${{TMPDIR:-/tmp}}/drover-script.XXXXXXXX\") && cat > \"$d\"/{n} && chmod 0700 \"$d\"/{n} && echo \"$d\"",
            n = shell_quote(&name)
        );
        let out = ctx.remote.exec(&up, &body).await?;
        let dir = out.stdout_str().trim().to_string();
        if out.status != 0 || !dir.starts_with('/') {
            return Err(ModuleError::failed(format!(
                "copying the script to the host failed: {}",
                out.stderr_str().trim()
            )));
        }
        let path = shell_quote(&format!("{dir}/{name}"));
        let mut line = match &p.executable {
            Some(x) => format!("{} {path}", shell_quote(x)),
            None => path,
        };
        if !p.args.is_empty() {
            line.push(' ');
            line.push_str(&p.args);
        }
        let mut args = serde_json::json!({ "cmd": line });
        if let Some(d) = &p.chdir {
            args["chdir"] = Value::from(d.clone());
        }
        let shell: Shell =
            serde_json::from_value(args).map_err(|e| ModuleError::Args(e.to_string()))?;
        let result = match shell.run_imperative(ctx).await {
            Ok(Plan::Run(change)) => shell.apply(ctx, change).await,
            Ok(_) => Err(ModuleError::failed(
                "internal error: the script did not run",
            )),
            Err(e) => Err(e),
        };
        let cleanup = ctx
            .remote
            .exec(&format!("rm -rf {}", shell_quote(&dir)), b"")
            .await;
        let mut data = result?;
        cleanup?;
        // Ansible's script reports the run, not the temporary path.
        for k in ["cmd", "start", "end", "delta", "msg"] {
            data.remove(k);
        }
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::modules::testutil::{assert_args_complete, Harness};

    #[test]
    fn args() {
        assert_args_complete::<Script>();
    }

    fn prepared(v: Value) -> Prepared {
        serde_json::from_value::<Script>(v)
            .expect("args")
            .prepare()
            .expect("prepare")
    }

    #[test]
    fn splits_the_free_form_like_ansible() {
        let p = prepared(json!({"_raw_params": "files/s.sh 'a b' c creates=/x chdir=/tmp"}));
        assert_eq!(p.src, "files/s.sh");
        assert_eq!(p.args, "'a b' c");
        assert_eq!(p.creates.as_deref(), Some("/x"));
        assert_eq!(p.chdir.as_deref(), Some("/tmp"));
        let p = prepared(json!({"cmd": "s.sh", "removes": "/y"}));
        assert_eq!((p.src.as_str(), p.args.as_str()), ("s.sh", ""));
        // A quoted script path with a space is one word.
        let p = prepared(json!({"_raw_params": "'space path/test.sh' -a \"b c\""}));
        assert_eq!(p.src, "space path/test.sh");
        assert_eq!(p.args, "-a \"b c\"");
        let refused = |v: Value| {
            serde_json::from_value::<Script>(v)
                .expect("args")
                .validate()
                .expect_err("refused")
                .to_string()
        };
        assert!(refused(json!({})).contains("one of the following is required: _raw_params, cmd"));
        assert!(refused(json!({"_raw_params": "a.sh", "cmd": "b.sh"}))
            .contains("parameters are mutually exclusive: _raw_params|cmd"));
    }

    #[test]
    fn decides_from_the_guard() {
        let p = prepared(json!({"_raw_params": "s.sh", "creates": "/x*"}));
        assert!(
            guard_script(&p).contains("for f in /x*;"),
            "{}",
            guard_script(&p)
        );
        // A satisfied guard skips the task, in both modes, as Ansible does.
        for check in [false, true] {
            let Plan::Unchanged(d) =
                plan_from(p.clone(), Some("@@creates\n"), check).expect("plan")
            else {
                panic!("unchanged expected")
            };
            assert_eq!(d["skipped"], json!(true));
            assert_eq!(d["msg"], json!("/x* exists, matching creates option"));
        }
        assert!(matches!(
            plan_from(p.clone(), Some("@@ok\n"), false).expect("plan"),
            Plan::Run(_)
        ));
        // In check mode a guarded script that would run is reported changed.
        assert!(matches!(
            plan_from(p.clone(), Some("@@ok\n"), true).expect("plan"),
            Plan::Change { .. }
        ));
        assert!(plan_from(p, Some("junk\n"), false).is_err());
        let p = prepared(json!({"_raw_params": "s.sh", "removes": "/y"}));
        let Plan::Unchanged(d) = plan_from(p, Some("@@removes\n"), true).expect("plan") else {
            panic!("unchanged expected")
        };
        assert_eq!(
            d["msg"],
            json!("/y does not exist, matching removes option")
        );
    }

    #[tokio::test]
    async fn copies_runs_in_chdir_and_cleans_up() {
        let h = Harness::new();
        std::fs::write(
            h.root().join("files/s.sh"),
            "#!/bin/sh\necho \"$1|$2|$(pwd)|$0\"\n",
        )
        .expect("write");
        let run_dir = h.path("");
        let marker = h.path("made");
        let args = json!({
            "_raw_params": format!("s.sh 'a b' c"),
            "chdir": run_dir,
            "creates": marker,
        });
        let out = h
            .run::<Script>(args.clone(), true, false)
            .await
            .expect("check");
        assert!(
            out.changed && out.skipped.is_none(),
            "check mode reports a guarded script that would run as changed"
        );
        let out = h
            .run::<Script>(json!({"_raw_params": "s.sh 'a b' c"}), true, false)
            .await
            .expect("check, unguarded");
        assert!(
            out.skipped.is_some() && !out.changed,
            "check mode skips a script without creates/removes"
        );
        let out = h
            .run::<Script>(args.clone(), false, false)
            .await
            .expect("run");
        assert!(out.changed);
        let stdout = out.data["stdout"].as_str().expect("stdout").to_string();
        let parts: Vec<&str> = stdout.trim().split('|').collect();
        assert_eq!(&parts[..2], ["a b", "c"]);
        assert_eq!(parts[2], run_dir.trim_end_matches('/'));
        assert!(
            !std::path::Path::new(parts[3]).exists(),
            "the temporary copy is removed"
        );
        std::fs::write(&marker, "").expect("marker");
        let out = h.run::<Script>(args, false, false).await.expect("again");
        assert!(
            !out.changed && out.skipped.is_some(),
            "creates met: skipped"
        );
        let err = h
            .run::<Script>(json!({"_raw_params": "nope.sh"}), false, false)
            .await
            .expect_err("missing");
        assert!(err.to_string().contains("could not find src"), "{err}");
    }
}
