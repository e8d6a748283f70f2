//! The one test harness for modules: a [`ModuleCtx`] on the local
//! transport, a minijinja renderer with fixed variables, a scratch
//! directory ([`Harness`], or [`run`] for tests that need none), and checks
//! that a module's `ARGS` list matches what its argument struct accepts.
#![cfg(test)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;

use super::{drive, Module, ModuleCtx, ModuleError, Outcome, Render};
use crate::transport::local::LocalTransport;
use crate::transport::{Remote, RemoteProcess, Transport, TransportError};
use crate::Value;

/// Renders with minijinja and a fixed set of variables.
pub struct TestRender {
    env: minijinja::Environment<'static>,
    vars: Value,
}

impl TestRender {
    /// A renderer that knows `vars`.
    pub fn new(vars: Value) -> TestRender {
        let mut env = minijinja::Environment::new();
        // Ansible's defaults.
        crate::template::set_ansible_whitespace(&mut env);
        TestRender { env, vars }
    }

    /// A read context for host `h` with this renderer: not in check or
    /// diff mode, no search path.
    pub fn read_ctx(&self) -> crate::modules::ReadCtx<'_> {
        crate::modules::ReadCtx {
            host: "h",
            check: false,
            diff: false,
            render: self,
            search: &[],
        }
    }
}

impl Render for TestRender {
    fn render(&self, source: &str, name: &str) -> Result<String, ModuleError> {
        self.env
            .render_named_str(name, source, crate::template::to_value(&self.vars))
            .map_err(|e| ModuleError::failed(format!("{name}: {e}")))
    }

    fn render_syntax(
        &self,
        source: &str,
        name: &str,
        syntax: &crate::template::Syntax,
        vars: &crate::Map,
    ) -> Result<String, ModuleError> {
        let env = syntax.apply(&self.env).map_err(ModuleError::failed)?;
        let mut all = self.vars.clone();
        if let Value::Object(m) = &mut all {
            m.extend(vars.clone());
        }
        env.render_named_str(name, source, crate::template::to_value(&all))
            .map_err(|e| ModuleError::failed(format!("{name}: {e}")))
    }

    fn eval(&self, expr: &str) -> Result<Value, ModuleError> {
        let e = self
            .env
            .compile_expression(expr)
            .map_err(|e| ModuleError::failed(e.to_string()))?;
        let v = e
            .eval(crate::template::to_value(&self.vars))
            .map_err(|e| ModuleError::failed(e.to_string()))?;
        if v.is_undefined() {
            return Ok(Value::Null);
        }
        serde_json::to_value(&v).map_err(|e| ModuleError::failed(e.to_string()))
    }
}

/// The local transport, counting the commands it starts (round trips).
struct Counting {
    execs: Arc<AtomicUsize>,
}

#[async_trait]
impl Transport for Counting {
    async fn spawn(&self, command: &str) -> Result<Box<dyn RemoteProcess>, TransportError> {
        self.execs.fetch_add(1, Ordering::SeqCst);
        LocalTransport.spawn(command).await
    }

    async fn close(&self) {}
}

/// A scratch directory plus what a [`ModuleCtx`] borrows.
pub struct Harness {
    /// The scratch directory (removed on drop).
    pub dir: tempfile::TempDir,
    execs: Arc<AtomicUsize>,
    remote: Remote,
    render: TestRender,
    search: Vec<PathBuf>,
}

impl Default for Harness {
    fn default() -> Harness {
        Harness::new()
    }
}

impl Harness {
    /// A harness whose local files are looked up in `<dir>/files`, then `<dir>`.
    pub fn new() -> Harness {
        Harness::with_vars(serde_json::json!({}))
    }

    /// The same, rendering templates with `vars`.
    pub fn with_vars(vars: Value) -> Harness {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = dir.path().join("files");
        std::fs::create_dir(&files).expect("files dir");
        let search = vec![files, dir.path().to_path_buf()];
        let execs = Arc::new(AtomicUsize::new(0));
        Harness {
            dir,
            remote: Remote::new(
                Arc::new(Counting {
                    execs: execs.clone(),
                }),
                None,
            ),
            execs,
            render: TestRender::new(vars),
            search,
        }
    }

    /// A context; `check` and `diff` as the CLI flags.
    pub fn ctx(&self, check: bool, diff: bool) -> ModuleCtx<'_> {
        ModuleCtx {
            host: "localhost",
            remote: &self.remote,
            check,
            diff,
            render: &self.render,
            search: &self.search,
        }
    }

    /// `dir/rel` as a string.
    pub fn path(&self, rel: &str) -> String {
        self.dir.path().join(rel).to_string_lossy().into_owned()
    }

    /// The scratch directory.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Commands run on the "host" since the last call (round trips).
    pub fn take_execs(&self) -> usize {
        self.execs.swap(0, Ordering::SeqCst)
    }

    /// Deserialize `args` as module `M` and drive it.
    pub async fn run<M: Module>(
        &self,
        args: Value,
        check: bool,
        diff: bool,
    ) -> Result<Outcome, ModuleError> {
        let module: M =
            serde_json::from_value(args).map_err(|e| ModuleError::Args(e.to_string()))?;
        drive(&module, &self.ctx(check, diff)).await
    }
}

/// The local transport, for tests that run scripts of their own.
pub fn remote() -> Remote {
    Remote::new(Arc::new(LocalTransport), None)
}

/// Deserialize `args` as module `M` and drive it on the local host, with
/// diffs wanted (for tests that need no scratch directory of the harness).
pub async fn run<M: Module>(args: Value, check: bool) -> Result<Outcome, ModuleError> {
    Harness::new().run::<M>(args, check, true).await
}

/// Like [`run`], with template variables.
pub async fn run_with<M: Module>(
    args: Value,
    check: bool,
    vars: Value,
) -> Result<Outcome, ModuleError> {
    Harness::with_vars(vars).run::<M>(args, check, true).await
}

/// Deserialize `args` as `M` with its required arguments filled in (as
/// `"x"`): a struct with a flattened block checks unknown names only once
/// every required field is there.
fn probe<M: Module>(args: Value) -> Result<M, String> {
    let mut args = args;
    loop {
        let err = match serde_json::from_value::<M>(args.clone()) {
            Ok(m) => return Ok(m),
            Err(e) => e.to_string(),
        };
        let missing = err
            .strip_prefix("missing field `")
            .and_then(|r| r.strip_suffix('`'));
        match (missing, args.as_object_mut()) {
            (Some(field), Some(map)) if !map.contains_key(field) => {
                map.insert(field.to_string(), Value::from("x"));
            }
            _ => return Err(err),
        }
    }
}

/// Assert that `M::ARGS` names exactly the fields (and aliases) its
/// argument struct accepts, using serde's "expected one of" list. A struct
/// with a flattened block ([`FileAttrs`](super::args::FileAttrs)) has no
/// such list: then every name in `ARGS` must be accepted, the block's
/// included.
pub fn assert_args_complete<M: Module>() {
    let err = match probe::<M>(serde_json::json!({"__no_such_arg__": 1})) {
        Ok(_) => panic!("{}: unknown arguments are accepted", M::NAME),
        Err(e) => e,
    };
    let Some((_, listed)) = err
        .split_once("expected one of ")
        .or_else(|| err.split_once("expected "))
    else {
        assert_eq!(err, "unknown field `__no_such_arg__`", "{}", M::NAME);
        for name in super::args::FileAttrs::<true>::ARGS {
            assert!(M::ARGS.contains(&name), "{}: {name} not in ARGS", M::NAME);
        }
        assert_args_accepted::<M>();
        return;
    };
    let mut accepted: Vec<String> = listed
        .replace("` or `", "`, `")
        .split(", ")
        .map(|s| s.trim_matches(|c| c == '`' || c == ' ').to_string())
        .collect();
    accepted.sort();
    let mut args: Vec<String> = M::ARGS.iter().map(|s| s.to_string()).collect();
    args.sort();
    assert_eq!(args, accepted, "{}: ARGS differs from the struct", M::NAME);
}

/// Assert that every name in `M::ARGS` is a field serde knows (with a
/// value of some type), and that a name outside it is refused.
pub fn assert_args_accepted<M: Module>() {
    for name in M::ARGS {
        let known = [
            serde_json::json!("x"),
            serde_json::json!(1),
            serde_json::json!(true),
            serde_json::json!(["x"]),
        ]
        .into_iter()
        .any(|v| match probe::<M>(serde_json::json!({ *name: v })) {
            Ok(_) => true,
            Err(e) => !e.contains("unknown field"),
        });
        assert!(known, "{}: {name} in ARGS but not accepted", M::NAME);
    }
    let unknown = probe::<M>(serde_json::json!({"drover_bogus": 1}));
    assert!(
        unknown.is_err_and(|e| e.contains("unknown field `drover_bogus`")),
        "{}",
        M::NAME
    );
}

/// Mode bits of a local path (not following links).
pub fn mode_of(path: &str) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o7777
}

/// uid and gid of a local path (not following links).
pub fn owner_of(path: &str) -> (u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(path).expect("metadata");
    (m.uid(), m.gid())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::lookup;

    #[tokio::test]
    async fn file_modules_are_registered_and_run_through_the_table() {
        for name in [
            "copy",
            "ansible.builtin.template",
            "file",
            "stat",
            "slurp",
            "ansible.posix.authorized_key",
        ] {
            assert!(lookup(name).is_some(), "{name} is not registered");
        }
        let h = Harness::new();
        let dest = h.path("x");
        let info = lookup("ansible.builtin.copy").expect("copy");
        let ctx = h.ctx(false, false);
        let out = (info.run)(
            serde_json::json!({ "content": "x", "dest": dest }),
            &ctx,
            &crate::modules::reads::Direct,
        )
        .await
        .expect("run");
        assert!(out.changed);
        let err = (info.run)(
            serde_json::json!({ "content": "x", "dset": dest }),
            &ctx,
            &crate::modules::reads::Direct,
        )
        .await
        .expect_err("typo");
        // dest may be left out (copy then refuses it as Ansible does): the typo is named.
        assert!(err.to_string().contains("unknown field `dset`"), "{err}");
        let args = serde_json::json!({ "content": "x", "dest": dest, "mode": "0644", "mdoe": 1 });
        let err = (info.run)(args, &ctx, &crate::modules::reads::Direct)
            .await
            .expect_err("typo");
        assert!(err.to_string().contains("unknown field `mdoe`"), "{err}");
    }
}
