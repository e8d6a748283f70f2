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

/// A path a read depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopePath {
    /// The literal path.
    pub path: String,
    /// Only what kind of thing is there (missing, file, directory...) is
    /// read, not its metadata or entries: making or changing entries inside
    /// it cannot change the answer.
    pub kind_only: bool,
}

impl From<&str> for ScopePath {
    fn from(path: &str) -> ScopePath {
        ScopePath::from(path.to_string())
    }
}

impl From<String> for ScopePath {
    fn from(path: String) -> ScopePath {
        ScopePath {
            path,
            kind_only: false,
        }
    }
}

impl ScopePath {
    /// Could writing the entry `w` (see [`Touched::Entries`]) change it?
    fn affected_by_entry(&self, w: &str) -> bool {
        if self.kind_only {
            path_within(w, &self.path) && path_within(&self.path, w)
        } else {
            path_within(w, &self.path)
        }
    }
}

/// What a read's answer depends on, for forgetting it after a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// These literal paths, not following a final link: a write to one of
    /// them, to a parent or to a child makes the read stale.
    Paths(Vec<ScopePath>),
    /// These paths, read through final links (or resolved on the host):
    /// until the read is answered, like [`Scope::Host`]; once answered,
    /// [`Scope::settle`] makes it [`Scope::Paths`] when the answer shows no
    /// link was followed (no `@@linked` line), and [`Scope::Host`] when one
    /// was (a write to the link's target would change it).
    Unlinked(Vec<ScopePath>),
    /// Anything: paths computed on the host, or state that is not a path
    /// (users, units, packages, sysctl). Any write makes the read stale.
    Host,
}

/// The line a file read prints when it followed a link (see
/// `fs::ReadBatch`): its answer depends on where the link points.
pub const LINKED_MARK: &str = "@@linked";

/// The line a file read prints when a path it resolves could not be
/// resolved because a directory on the way is missing (no link involved):
/// its answer changes when that directory is made.
pub const UNRESOLVED_MARK: &str = "@@unresolved";

impl Scope {
    /// Could a write that touched `touched` have changed what this read saw?
    pub fn stale_after(&self, touched: &Touched) -> bool {
        match (self, touched) {
            (_, Touched::Nothing) => false,
            (Scope::Host | Scope::Unlinked(_), _) | (_, Touched::Everything) => true,
            (Scope::Paths(read), Touched::Paths(wrote)) => read
                .iter()
                .any(|r| wrote.iter().any(|w| paths_overlap(&r.path, w))),
            (Scope::Paths(read), Touched::Entries(wrote)) => read
                .iter()
                .any(|r| wrote.iter().any(|w| r.affected_by_entry(w))),
        }
    }

    /// The scope of a read now that `out` answered it: an
    /// [`Scope::Unlinked`] read becomes [`Scope::Paths`] or [`Scope::Host`].
    pub fn settle(self, out: &ExecOutput) -> Scope {
        match self {
            Scope::Unlinked(mut paths) => {
                let has = |mark: &str| {
                    out.stdout
                        .split(|&b| b == b'\n')
                        .any(|line| line == mark.as_bytes())
                };
                if has(LINKED_MARK) || out.status != 0 {
                    return Scope::Host;
                }
                if has(UNRESOLVED_MARK) {
                    // Making the missing directory changes the answer: a
                    // write there touches (or is inside) some parent.
                    let parents: Vec<ScopePath> = paths
                        .iter()
                        .filter_map(|p| p.path.rsplit_once('/'))
                        .map(|(dir, _)| ScopePath::from(if dir.is_empty() { "/" } else { dir }))
                        .collect();
                    paths.extend(parents);
                }
                Scope::Paths(paths)
            }
            other => other,
        }
    }
}

/// The components of an absolute path without `.`; `None` for a relative
/// or odd path (`..`, `~`), which is taken to overlap everything.
fn plain_parts(p: &str) -> Option<Vec<&str>> {
    if !p.starts_with('/') {
        return None;
    }
    let parts: Vec<&str> = p
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    (!parts.contains(&"..")).then_some(parts)
}

/// Is `inner` the path `outer` or inside it? Odd paths are taken to be.
fn path_within(inner: &str, outer: &str) -> bool {
    match (plain_parts(inner), plain_parts(outer)) {
        (Some(i), Some(o)) => o.len() <= i.len() && i.iter().zip(&o).all(|(x, y)| x == y),
        _ => true,
    }
}

/// Are `a` and `b` the same path, or is one inside the other? Relative or
/// odd paths (`..`, `~`) are taken to overlap everything.
pub fn paths_overlap(a: &str, b: &str) -> bool {
    match (plain_parts(a), plain_parts(b)) {
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
    /// These entries only, not what is inside them: each was created where
    /// nothing was, or is a regular file. Reads of the entries and of the
    /// directories holding them are stale; reads below them are not (what
    /// was missing there is still missing).
    Entries(Vec<String>),
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
    fn writing_entries_makes_only_them_and_their_directories_stale() {
        let wrote = Touched::Entries(vec!["/opt/app".into()]);
        for r in ["/opt/app", "/opt", "/"] {
            assert!(Scope::Paths(vec![r.into()]).stale_after(&wrote), "{r}");
        }
        for r in [
            "/opt/app/conf",
            "/opt/app/conf/x",
            "/opt/other",
            "/opt/apps",
        ] {
            assert!(!Scope::Paths(vec![r.into()]).stale_after(&wrote), "{r}");
        }
        assert!(Scope::Paths(vec!["/opt/app/x".into()])
            .stale_after(&Touched::Entries(vec!["../x".into()])));
        assert!(Scope::Unlinked(vec!["/elsewhere".into()]).stale_after(&wrote));
        let kind = Scope::Paths(vec![ScopePath {
            path: "/opt".into(),
            kind_only: true,
        }]);
        assert!(
            !kind.stale_after(&wrote),
            "an entry made inside a directory"
        );
        assert!(kind.stale_after(&Touched::Entries(vec!["/opt/".into()])));
        assert!(kind.stale_after(&Touched::Paths(vec!["/opt/app".into()])));
    }

    #[test]
    fn a_read_through_links_settles_on_its_answer() {
        let out = |stdout: &str, status| ExecOutput {
            status,
            stdout: stdout.as_bytes().to_vec(),
            stderr: Vec::new(),
        };
        let scope = Scope::Unlinked(vec!["/a".into()]);
        assert_eq!(
            scope.clone().settle(&out("@@ missing\n@@path /a\n", 0)),
            Scope::Paths(vec!["/a".into()])
        );
        assert_eq!(
            scope.clone().settle(&out("@@ missing\n@@linked\n", 0)),
            Scope::Host
        );
        assert_eq!(
            Scope::Unlinked(vec!["/a/b/c".into()]).settle(&out("@@ missing\n@@unresolved\n", 0)),
            Scope::Paths(vec!["/a/b/c".into(), "/a/b".into()]),
            "making the missing directory changes what it resolves to"
        );
        assert_eq!(scope.settle(&out("", 1)), Scope::Host, "a failed read");
        assert_eq!(Scope::Host.settle(&out("", 0)), Scope::Host);
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
