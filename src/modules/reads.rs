//! Declared reads: what a module needs to know about a host, as data.
//!
//! A module that can declare its state answers [`super::Module::reads`] with
//! [`Protocol::Declared`] and a [`ReadSet`]: pure shell reads (a
//! `fs::ReadBatch` script, `getent`, `systemctl show`), each saying which
//! paths it covers. The engine answers them ([`Observer`]), from reads it
//! ran ahead of time for a window of tasks or by reading the host, and the
//! module decides from what was observed with a pure function
//! ([`super::Module::decide`]): no transport, no await, testable with
//! canned outputs. A decision may ask for more reads that depend on the
//! first ones (the destination is a directory, a link must be resolved):
//! [`Decision::Read`]; the engine reads them and calls `decide` again with
//! every output so far, in order.
//!
//! After a change, the engine forgets what the change may have made stale:
//! the module says what `apply` touched ([`Touched`]), and reads whose
//! [`Scope`] overlaps it are dropped.

use async_trait::async_trait;

use super::{ModuleError, Plan};
use crate::transport::{ExecOutput, Remote};

/// What a read's answer depends on, for forgetting it after a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// These literal paths, not following a final link: a write to one of
    /// them, to a parent or to a child makes the read stale.
    Paths(Vec<String>),
    /// Anything: paths followed through links or computed on the host, or
    /// state that is not a path (users, units, packages, sysctl). Any write
    /// makes the read stale.
    Host,
}

impl Scope {
    /// Could a write that touched `touched` have changed what this read saw?
    pub fn stale_after(&self, touched: &Touched) -> bool {
        match (self, touched) {
            (_, Touched::Nothing) => false,
            (Scope::Host, _) | (_, Touched::Everything) => true,
            (Scope::Paths(read), Touched::Paths(wrote)) => read
                .iter()
                .any(|r| wrote.iter().any(|w| paths_overlap(r, w))),
        }
    }
}

/// Are `a` and `b` the same path, or is one inside the other? Relative or
/// odd paths (`..`, `~`) are taken to overlap everything.
pub fn paths_overlap(a: &str, b: &str) -> bool {
    fn plain(p: &str) -> Option<Vec<&str>> {
        if !p.starts_with('/') {
            return None;
        }
        let parts: Vec<&str> = p
            .split('/')
            .filter(|s| !s.is_empty() && *s != ".")
            .collect();
        (!parts.contains(&"..")).then_some(parts)
    }
    match (plain(a), plain(b)) {
        (Some(a), Some(b)) => a.iter().zip(&b).all(|(x, y)| x == y),
        _ => true,
    }
}

/// One pure read of the host: a shell script that changes nothing and reads
/// no stdin. Its key is its text (with the task's environment exports) and
/// the become user it runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadCmd {
    /// The script.
    pub script: String,
    /// What its answer depends on.
    pub scope: Scope,
}

/// The reads a module needs, in order; [`Observed`] answers them in the same
/// order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadSet {
    /// The reads.
    pub reads: Vec<ReadCmd>,
}

impl ReadSet {
    /// No reads.
    pub fn new() -> ReadSet {
        ReadSet::default()
    }

    /// One read.
    pub fn one(script: String, scope: Scope) -> ReadSet {
        ReadSet {
            reads: vec![ReadCmd { script, scope }],
        }
    }

    /// Add a read; returns its index among this set's reads.
    pub fn push(&mut self, script: String, scope: Scope) -> usize {
        self.reads.push(ReadCmd { script, scope });
        self.reads.len() - 1
    }
}

/// The outputs of every read asked for so far, in order: the first
/// [`ReadSet`]'s, then those of each [`Decision::Read`].
#[derive(Debug, Clone, Default)]
pub struct Observed {
    outputs: Vec<ExecOutput>,
}

impl Observed {
    /// Outputs in the order the reads were asked for.
    pub fn new(outputs: Vec<ExecOutput>) -> Observed {
        Observed { outputs }
    }

    /// The output of read `i`, counting over every stage.
    pub fn get(&self, i: usize) -> Option<&ExecOutput> {
        self.outputs.get(i)
    }

    /// [`Observed::get`], or an internal error naming the read.
    pub fn output(&self, i: usize) -> Result<&ExecOutput, ModuleError> {
        self.get(i)
            .ok_or_else(|| ModuleError::failed(format!("internal error: read {i} not observed")))
    }

    /// How many reads were answered.
    pub fn len(&self) -> usize {
        self.outputs.len()
    }

    /// Nothing answered?
    pub fn is_empty(&self) -> bool {
        self.outputs.is_empty()
    }

    fn extend(&mut self, more: Vec<ExecOutput>) {
        self.outputs.extend(more);
    }
}

/// What `decide` concluded.
pub enum Decision<C> {
    /// More must be known first: read these too, then decide again.
    Read(ReadSet),
    /// Decided.
    Plan(Plan<C>),
}

/// How the engine learns a task's state on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protocol {
    /// These reads, then [`super::Module::decide`]; they may be read ahead,
    /// batched with other tasks' reads, and answered from earlier reads.
    Declared(ReadSet),
    /// [`super::Module::run_imperative`] reads and decides itself (command,
    /// reboot, wait_for, k8s): its effect on the host cannot be declared,
    /// so everything read before is forgotten after it.
    Imperative,
    /// [`super::Module::run_imperative`] never reaches the host (debug,
    /// assert, set_fact, fail): nothing read, nothing forgotten.
    Local,
}

/// What `apply` may have changed on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Touched {
    /// Nothing.
    Nothing,
    /// These paths (and what is inside them).
    Paths(Vec<String>),
    /// Anything.
    Everything,
}

/// Answers declared reads and hears about writes: the engine's per-host
/// cache, or [`Direct`].
#[async_trait]
pub trait Observer: Send + Sync {
    /// The outputs of `reads`, each run (or read ahead earlier) as `remote`
    /// would run it.
    async fn observe(
        &self,
        remote: &Remote,
        reads: &ReadSet,
    ) -> Result<Vec<ExecOutput>, ModuleError>;
    /// The host was changed through `remote`: forget what may be stale.
    fn wrote(&self, remote: &Remote, touched: &Touched);
}

/// Reads the host for every read, one exec each; remembers nothing.
pub struct Direct;

#[async_trait]
impl Observer for Direct {
    async fn observe(
        &self,
        remote: &Remote,
        reads: &ReadSet,
    ) -> Result<Vec<ExecOutput>, ModuleError> {
        let mut out = Vec::with_capacity(reads.reads.len());
        for r in &reads.reads {
            out.push(super::fs::exec_read(remote, &r.script).await?);
        }
        Ok(out)
    }

    fn wrote(&self, _remote: &Remote, _touched: &Touched) {}
}

/// Run a declared module's reads and decisions until it has a plan.
pub(super) async fn observe_and_decide<C>(
    first: ReadSet,
    remote: &Remote,
    observer: &dyn Observer,
    mut decide: impl FnMut(&Observed) -> Result<Decision<C>, ModuleError>,
) -> Result<Plan<C>, ModuleError> {
    /// More stages than any module needs: a decision that keeps asking is a bug.
    const MAX_STAGES: usize = 8;
    let mut observed = Observed::new(observer.observe(remote, &first).await?);
    for _ in 0..MAX_STAGES {
        match decide(&observed)? {
            Decision::Plan(plan) => return Ok(plan),
            Decision::Read(more) => observed.extend(observer.observe(remote, &more).await?),
        }
    }
    Err(ModuleError::failed(
        "internal error: the module kept asking for more reads",
    ))
}

/// What a module's one read printed, parsed: a read that failed (non-zero
/// status) or printed what `parse` refuses is "reading WHAT failed: why".
pub(crate) fn parse_read<T, E: std::fmt::Display>(
    out: &ExecOutput,
    what: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<T, ModuleError> {
    if out.status != 0 {
        return Err(ModuleError::failed(format!(
            "reading {what} failed: {}",
            out.stderr_str().trim()
        )));
    }
    parse(&out.stdout_str()).map_err(|e| ModuleError::failed(format!("reading {what} failed: {e}")))
}

/// Canned outputs for `decide` tests: status 0 and this stdout.
#[cfg(test)]
pub fn observed_stdout(stdouts: &[&str]) -> Observed {
    Observed::new(
        stdouts
            .iter()
            .map(|s| ExecOutput {
                status: 0,
                stdout: s.as_bytes().to_vec(),
                stderr: Vec::new(),
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_make_reads_of_the_same_parent_or_child_paths_stale() {
        let read = Scope::Paths(vec!["/opt/app/conf".into()]);
        for w in ["/opt/app/conf", "/opt/app", "/opt/app/conf/x", "/", "rel"] {
            assert!(
                read.stale_after(&Touched::Paths(vec![w.into()])),
                "{w} overlaps"
            );
        }
        for w in ["/opt/app/config", "/opt/other", "/opt/app/log/x"] {
            assert!(
                !read.stale_after(&Touched::Paths(vec![w.into()])),
                "{w} does not overlap"
            );
        }
        assert!(read.stale_after(&Touched::Everything));
        assert!(!read.stale_after(&Touched::Nothing));
        assert!(Scope::Host.stale_after(&Touched::Paths(vec!["/x".into()])));
        assert!(!Scope::Host.stale_after(&Touched::Nothing));
    }

    #[test]
    fn odd_paths_overlap_everything() {
        assert!(paths_overlap("/a/../b", "/c"));
        assert!(paths_overlap("~/x", "/c"));
        assert!(paths_overlap("/a/./b", "/a/b/c"));
        assert!(paths_overlap("/a//b/", "/a/b"));
        assert!(!paths_overlap("/a/b", "/a/bc"));
    }
}
