//! Transports run shell commands on a host. A [`Transport`] starts processes;
//! [`Remote`] is the handle modules use, which adds privilege escalation
//! (sudo, with the password written to its stdin after its prompt) and
//! collects output. Modules never see SSH: they get a `Remote`.

pub(crate) mod keys;
pub mod known_hosts;
pub mod local;
pub mod prefetch;
pub mod proxy;
pub mod shell;
pub mod ssh;
pub mod ssh_config;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use rand::Rng;
use tokio::io::AsyncReadExt as _;

use crate::secret::Secret;

/// Errors while connecting to a host or running a command on it.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// TCP connection could not be made.
    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        /// host:port
        addr: String,
        /// why
        reason: String,
    },
    /// Connecting, or the key exchange, took too long.
    #[error("connection to {addr} timed out after {secs}s")]
    Timeout {
        /// host:port
        addr: String,
        /// the limit
        secs: u64,
    },
    /// The host key is unknown (strict checking) or changed.
    #[error("host key verification failed for {host}: {detail}")]
    HostKey {
        /// inventory host or address
        host: String,
        /// what is wrong and how to fix it
        detail: String,
    },
    /// No offered credential was accepted.
    #[error("authentication failed for {user}@{host}: {detail}")]
    Auth {
        /// remote user
        user: String,
        /// host address
        host: String,
        /// methods tried
        detail: String,
    },
    /// The connection broke or the peer misbehaved.
    #[error("connection lost: {0}")]
    Disconnected(String),
    /// sudo refused or needed a password we do not have.
    #[error("privilege escalation failed: {0}")]
    Become(String),
    /// A local I/O error (key files, known_hosts, local processes).
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The host had no room for drover's temporary files.
    #[error("{0}")]
    Storage(String),
    /// The run was interrupted (SIGINT or SIGTERM): the command was
    /// stopped, or not started.
    #[error("interrupted")]
    Interrupted,
    /// A local file being sent on a command's stdin could not be read, or
    /// changed since it was planned with: the command was given short
    /// input (so the write it feeds fails) and the host is still there.
    #[error("{path}: {reason}")]
    LocalSource {
        /// the local file
        path: String,
        /// what went wrong
        reason: String,
    },
}

impl TransportError {
    /// Does this error mean the host cannot be reached (UNREACHABLE in the
    /// recap) rather than a task failure?
    pub fn is_unreachable(&self) -> bool {
        !matches!(
            self,
            TransportError::Become(_)
                | TransportError::Storage(_)
                | TransportError::Interrupted
                | TransportError::LocalSource { .. }
        )
    }
}

/// One piece of a command's stdin.
#[derive(Debug, Clone, Copy)]
pub enum StdinPart<'a> {
    /// These bytes.
    Bytes(&'a [u8]),
    /// The first `len` bytes of a local file, read from disk as they are
    /// sent, so that a file of any size costs a bounded amount of memory.
    /// With `sha1` (hex), the bytes sent must hash to it: a file that
    /// changed since it was planned with is not sent in full.
    File {
        /// The local file.
        path: &'a Path,
        /// How many bytes to send.
        len: u64,
        /// The SHA-1 those bytes must have.
        sha1: Option<&'a str>,
    },
}

impl StdinPart<'_> {
    fn len(&self) -> u64 {
        match self {
            StdinPart::Bytes(b) => b.len() as u64,
            StdinPart::File { len, .. } => *len,
        }
    }
}

/// Size of the pieces stdin is read and written in: far below the SSH
/// window (2 MiB), so that memory stays bounded whatever the file size.
const STREAM_CHUNK: usize = 256 * 1024;

/// Why sending stdin stopped.
enum SendError {
    /// The command (or the connection) stopped taking input.
    Remote(TransportError),
    /// A local file could not be read as planned.
    Local(TransportError),
}

/// Write `parts` to a process's stdin, in pieces of at most
/// [`STREAM_CHUNK`], local files read as they go.
async fn send_parts(
    proc: &mut dyn RemoteProcess,
    parts: &[StdinPart<'_>],
) -> Result<(), SendError> {
    for part in parts {
        match part {
            StdinPart::Bytes(b) => {
                for chunk in b.chunks(STREAM_CHUNK) {
                    proc.write(chunk).await.map_err(SendError::Remote)?;
                }
            }
            StdinPart::File { path, len, sha1 } => {
                use sha1::Digest as _;
                let local = |reason: String| {
                    SendError::Local(TransportError::LocalSource {
                        path: path.display().to_string(),
                        reason,
                    })
                };
                let mut file = tokio::fs::File::open(path)
                    .await
                    .map_err(|e| local(e.to_string()))?;
                let mut hasher = sha1::Sha1::new();
                let mut buf = vec![0u8; STREAM_CHUNK];
                let mut left = *len;
                while left > 0 {
                    let want = usize::try_from(left)
                        .unwrap_or(STREAM_CHUNK)
                        .min(STREAM_CHUNK);
                    let n = file
                        .read(&mut buf[..want])
                        .await
                        .map_err(|e| local(e.to_string()))?;
                    if n == 0 {
                        return Err(local(format!(
                            "the file is shorter than the {len} bytes it had when planned"
                        )));
                    }
                    hasher.update(&buf[..n]);
                    proc.write(&buf[..n]).await.map_err(SendError::Remote)?;
                    left -= n as u64;
                }
                if let Some(want) = sha1 {
                    let got: String = hasher
                        .finalize()
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect();
                    if !got.eq_ignore_ascii_case(want) {
                        return Err(local(
                            "the file changed while it was being sent".to_string(),
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

/// `parts` in one buffer (for the kept shell, which takes stdin whole;
/// only small inputs go there).
async fn gather(parts: &[StdinPart<'_>]) -> Result<Vec<u8>, TransportError> {
    let mut all = Vec::new();
    for part in parts {
        match part {
            StdinPart::Bytes(b) => all.extend_from_slice(b),
            StdinPart::File { path, len, sha1 } => {
                let local = |reason: String| TransportError::LocalSource {
                    path: path.display().to_string(),
                    reason,
                };
                let file = tokio::fs::File::open(path)
                    .await
                    .map_err(|e| local(e.to_string()))?;
                let start = all.len();
                file.take(*len)
                    .read_to_end(&mut all)
                    .await
                    .map_err(|e| local(e.to_string()))?;
                let got = &all[start..];
                if (got.len() as u64) < *len {
                    return Err(local(format!(
                        "the file is shorter than the {len} bytes it had when planned"
                    )));
                }
                if sha1.is_some_and(|want| {
                    !crate::modules::fs::sha1_hex(got).eq_ignore_ascii_case(want)
                }) {
                    return Err(local("the file changed since it was read".to_string()));
                }
            }
        }
    }
    Ok(all)
}

/// Output of one process on a host.
#[derive(Debug, Clone)]
pub enum ProcessEvent {
    /// Bytes on stdout.
    Stdout(Vec<u8>),
    /// Bytes on stderr.
    Stderr(Vec<u8>),
    /// The process ended with this status; a signal is reported as 128+N or
    /// -1 when the signal number is unknown.
    Exit(i32),
}

/// A running process on a host.
#[async_trait]
pub trait RemoteProcess: Send {
    /// Write to the process's stdin.
    async fn write(&mut self, data: &[u8]) -> Result<(), TransportError>;
    /// Close stdin (EOF).
    async fn close_stdin(&mut self) -> Result<(), TransportError>;
    /// The next output or the exit; `None` once the process is gone and all
    /// output has been delivered.
    async fn next(&mut self) -> Option<ProcessEvent>;
}

/// A way to run shell commands on one host.
#[async_trait]
pub trait Transport: Send + Sync {
    /// Start `command` with the remote user's shell (`sh -c` semantics).
    async fn spawn(&self, command: &str) -> Result<Box<dyn RemoteProcess>, TransportError>;
    /// Close the connection; further spawns fail.
    async fn close(&self);
    /// Replace the connection by a new one to the same host, with the same
    /// credentials and host key checking (after a reboot). Transports
    /// without a connection have nothing to do.
    async fn reconnect(&self) -> Result<(), TransportError> {
        Ok(())
    }
    /// Shells kept open to run commands in (see [`shell`]); transports
    /// without them start a process per command.
    fn shells(&self) -> Option<&shell::Shells> {
        None
    }
}

/// The collected result of a command.
#[derive(Debug, Clone, Default)]
pub struct ExecOutput {
    /// Exit status (128+N for signal N).
    pub status: i32,
    /// All of stdout.
    pub stdout: Vec<u8>,
    /// All of stderr.
    pub stderr: Vec<u8>,
}

impl ExecOutput {
    /// stdout as (lossy) UTF-8.
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// stderr as (lossy) UTF-8.
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Privilege escalation settings (sudo or su).
#[derive(Debug, Clone)]
pub struct Become {
    /// Target user (`ansible_become_user`, default root).
    pub user: String,
    /// Password for sudo's or su's prompt, if it asks.
    pub password: Option<Secret>,
    /// How to become (`become_method`).
    pub method: BecomeMethod,
}

/// The become methods drover has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BecomeMethod {
    /// `sudo -u USER`: the connecting user's password.
    #[default]
    Sudo,
    /// `su USER`: the target user's password.
    Su,
}

impl BecomeMethod {
    /// The method named `name` (`become_method`), if drover has it.
    pub fn parse(name: &str) -> Option<BecomeMethod> {
        match name {
            "sudo" => Some(BecomeMethod::Sudo),
            "su" => Some(BecomeMethod::Su),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            BecomeMethod::Sudo => "sudo",
            BecomeMethod::Su => "su",
        }
    }
}

impl Become {
    /// The key of this user's kept shell: a shell started through su is
    /// not one started through sudo (each proves its own password).
    fn shell_key(&self) -> String {
        match self.method {
            BecomeMethod::Sudo => self.user.clone(),
            BecomeMethod::Su => format!("su\0{}", self.user),
        }
    }
}

/// Quote a string for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"@%+=:,./-_".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Is `name` a name a POSIX shell can export (`[A-Za-z_][A-Za-z0-9_]*`)?
/// Anything else would be shell text in `export NAME=...`.
pub fn is_env_name(name: &str) -> bool {
    let mut b = name.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// The handle modules use to reach a host: a transport plus the become
/// settings of the current task.
#[derive(Clone)]
pub struct Remote {
    transport: Arc<dyn Transport>,
    become_: Option<Become>,
    env: Vec<(String, String)>,
    no_log: bool,
    trailer: Option<Arc<Trailer>>,
}

/// Pure reads that ride on the next command of a handle: sent in the same
/// write, run right after it in the same kept shell, answered without a
/// round trip of their own. After an imperative task (a `command`), which
/// makes every earlier read stale, this is the fresh read of the tasks
/// that follow. Their outputs count only when that command was the
/// handle's last: any later command spoils them.
pub struct Trailer {
    commands: Vec<String>,
    deferred: Option<&'static dyn prefetch::Deferred>,
    state: std::sync::Mutex<TrailerState>,
}

enum TrailerState {
    /// No command sent yet.
    Waiting,
    /// Sent with a command; its outputs once answered.
    Sent(Option<Vec<Option<ExecOutput>>>),
    /// Another command came after, or none could carry it.
    Spoiled,
}

impl Trailer {
    /// The next command's turn: the batch script to send after it, with
    /// its token, if it is the first; any later command spoils the reads.
    fn claim(&self) -> Option<(String, String)> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if !matches!(*state, TrailerState::Waiting) {
            *state = TrailerState::Spoiled;
            return None;
        }
        *state = TrailerState::Sent(None);
        let token = format!("@@drover-read-{:016x}", rand::rng().random::<u64>());
        let script = prefetch::batch_script(&self.commands, &token, self.deferred);
        Some((script, token))
    }

    fn answered(&self, out: Option<ExecOutput>, token: &str) {
        let found = out.map(|o| batch_outputs(&o, token, self.commands.len(), self.deferred));
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        *state = match found {
            Some(found) if matches!(*state, TrailerState::Sent(None)) => {
                TrailerState::Sent(Some(found))
            }
            _ => TrailerState::Spoiled,
        };
    }

    /// The reads' outputs (`None` for those not answered), if they rode on
    /// the last command the handle ran.
    pub fn outputs(&self) -> Option<Vec<Option<ExecOutput>>> {
        match &*self.state.lock().unwrap_or_else(|e| e.into_inner()) {
            TrailerState::Sent(Some(found)) => Some(found.clone()),
            _ => None,
        }
    }
}

/// The outputs of a [`prefetch::batch_script`] run with `token`.
fn batch_outputs(
    out: &ExecOutput,
    token: &str,
    count: usize,
    deferred: Option<&dyn prefetch::Deferred>,
) -> Vec<Option<ExecOutput>> {
    let mut outputs = vec![None; count];
    if out.status != 0 {
        return outputs;
    }
    let mut found = prefetch::parse_batch(&out.stdout, token, count);
    if let Some(d) = deferred {
        let tail = prefetch::tail(&out.stdout, token).unwrap_or_default();
        let mut outs: Vec<&mut ExecOutput> = found.iter_mut().map(|(_, o)| o).collect();
        if !d.complete(&mut outs, tail, token) {
            tracing::debug!("read-ahead: deferred work not completed, nothing kept");
            return outputs;
        }
    }
    for (i, o) in found {
        outputs[i] = Some(o);
    }
    outputs
}

impl Remote {
    /// A handle running commands as the connecting user, or through sudo.
    pub fn new(transport: Arc<dyn Transport>, become_: Option<Become>) -> Remote {
        Remote {
            transport,
            become_,
            env: Vec::new(),
            no_log: false,
            trailer: None,
        }
    }

    /// A [`Trailer`] of the pure reads `scripts`, each as this handle would
    /// run it, to ride on another handle's next command (one with the same
    /// become user: they share its kept shell).
    pub fn trailer(
        &self,
        scripts: &[String],
        deferred: Option<&'static dyn prefetch::Deferred>,
    ) -> Trailer {
        Trailer {
            commands: scripts.iter().map(|s| self.with_env_exports(s)).collect(),
            deferred,
            state: std::sync::Mutex::new(TrailerState::Waiting),
        }
    }

    /// The same handle, sending `trailer` with its next command.
    pub fn with_trailer(mut self, trailer: Arc<Trailer>) -> Remote {
        self.trailer = Some(trailer);
        self
    }

    /// The key under which the output of the pure read `script`, run
    /// through this handle (its become user and environment), is kept.
    pub fn read_key(&self, script: &str) -> String {
        let user = self.become_.as_ref().map(|b| b.user.as_str());
        prefetch::key(user, &self.with_env_exports(script), b"")
    }

    /// Run the pure reads `scripts` in one exec (see
    /// [`prefetch::batch_script`]); each as this handle would run it. With
    /// `deferred`, the work they leave for the end of the batch is done
    /// there (see [`prefetch::Deferred`]). Returns an output per script,
    /// `None` for those the batch did not answer (run them on their own);
    /// all `None` when the batch as a whole failed.
    pub async fn exec_batch(
        &self,
        scripts: &[String],
        deferred: Option<&dyn prefetch::Deferred>,
    ) -> Result<Vec<Option<ExecOutput>>, TransportError> {
        if scripts.is_empty() {
            return Ok(Vec::new());
        }
        let commands: Vec<String> = scripts.iter().map(|s| self.with_env_exports(s)).collect();
        // The commands carry their environment exports already.
        let runner = Remote {
            env: Vec::new(),
            ..self.clone()
        };
        let token = format!("@@drover-read-{:016x}", rand::rng().random::<u64>());
        let out = runner
            .exec_uncached(&prefetch::batch_script(&commands, &token, deferred), &[])
            .await?;
        Ok(batch_outputs(&out, &token, commands.len(), deferred))
    }

    /// The same handle, never logging its commands (`no_log` tasks).
    pub fn with_no_log(mut self, no_log: bool) -> Remote {
        self.no_log = no_log;
        self
    }

    /// The same handle exporting `env` to every command (`environment:`).
    pub fn with_env(mut self, env: Vec<(String, String)>) -> Remote {
        self.env = env;
        self
    }

    /// The same transport with other become settings.
    pub fn with_become(&self, become_: Option<Become>) -> Remote {
        Remote {
            transport: self.transport.clone(),
            become_,
            env: self.env.clone(),
            no_log: self.no_log,
            trailer: self.trailer.clone(),
        }
    }

    /// Connect to the host anew (see [`Transport::reconnect`]); become
    /// settings apply to later commands as before.
    pub async fn reconnect(&self) -> Result<(), TransportError> {
        self.transport.reconnect().await
    }

    /// The become settings in force.
    pub fn become_settings(&self) -> Option<&Become> {
        self.become_.as_ref()
    }

    /// Run a shell command, feeding `stdin` to it, and collect its output.
    /// With become, the command runs through `sudo ... /bin/sh -c`.
    pub async fn exec(&self, command: &str, stdin: &[u8]) -> Result<ExecOutput, TransportError> {
        self.exec_parts(command, &[StdinPart::Bytes(stdin)]).await
    }

    /// [`Remote::exec`] with stdin made of `parts`: local files among them
    /// are streamed from disk, never held in memory whole (unless small
    /// enough for the kept shell). A command that exits before reading all
    /// of its stdin is not a lost connection: its status and output are
    /// returned as they are.
    pub async fn exec_parts(
        &self,
        command: &str,
        parts: &[StdinPart<'_>],
    ) -> Result<ExecOutput, TransportError> {
        self.exec_uncached(command, parts).await
    }

    /// `command` preceded by the exports of this handle's environment.
    fn with_env_exports(&self, command: &str) -> String {
        let mut s = String::new();
        for (k, v) in &self.env {
            // The executor refuses such names before anything runs; never
            // let one through as shell text regardless.
            if !is_env_name(k) {
                continue;
            }
            s.push_str(&format!("export {k}={}; ", shell_quote(v)));
        }
        s.push_str(command);
        s
    }

    async fn exec_uncached(
        &self,
        command: &str,
        parts: &[StdinPart<'_>],
    ) -> Result<ExecOutput, TransportError> {
        // Logged without the environment: its values may be secrets.
        if self.no_log {
            tracing::debug!("exec (command hidden: no_log)");
        } else {
            tracing::debug!("exec command: {}", LogText(command));
        }
        let with_env;
        let command = if self.env.is_empty() {
            command
        } else {
            with_env = self.with_env_exports(command);
            &with_env
        };
        if crate::interrupt::interrupted() {
            return Err(TransportError::Interrupted);
        }
        let total: u64 = parts.iter().map(StdinPart::len).sum();
        // Small inputs go whole through the kept shell, as one buffer.
        let buf;
        let whole;
        let parts = match parts {
            [] | [StdinPart::Bytes(_)] => parts,
            _ if total <= shell::MAX_STDIN as u64 && self.transport.shells().is_some() => {
                buf = gather(parts).await?;
                whole = [StdinPart::Bytes(&buf)];
                &whole[..]
            }
            _ => parts,
        };
        let stdin = match parts {
            [] => Some(&b""[..]),
            [StdinPart::Bytes(b)] => Some(*b),
            _ => None,
        };
        let then = self.trailer.as_ref().and_then(|t| t.claim());
        if let Some(stdin) = stdin {
            if let Some(result) = self.exec_in_shell(command, stdin, then.as_ref()).await {
                return result;
            }
        }
        if let (Some(t), Some((_, token))) = (&self.trailer, &then) {
            t.answered(None, token);
        }
        self.exec_on_channel(command, parts).await
    }

    /// Run `command` on a channel of its own, its stdin sent in parts.
    async fn exec_on_channel(
        &self,
        command: &str,
        parts: &[StdinPart<'_>],
    ) -> Result<ExecOutput, TransportError> {
        let (mut proc, out) = match &self.become_ {
            None => (self.transport.spawn(command).await?, ExecOutput::default()),
            Some(b) => self.spawn_become(command, b).await?,
        };
        let sent = send_parts(&mut *proc, parts).await;
        // A command that already exited is not an error here.
        let _ = proc.close_stdin().await;
        match sent {
            Ok(()) => collect(proc, out).await,
            // The command stopped reading (it failed early: a full disk, a
            // refused permission): what it says is the answer. Only when
            // it has no exit status was the connection lost.
            Err(SendError::Remote(e)) => match collect(proc, out).await {
                Ok(out) => {
                    tracing::debug!(error = %e, status = out.status, "stdin not read in full");
                    Ok(out)
                }
                Err(_) => Err(e),
            },
            Err(SendError::Local(e)) => {
                // The command saw its input end early and fails on it;
                // the local cause is the one to report.
                let _ = collect(proc, out).await;
                Err(e)
            }
        }
    }

    /// Run `command` in the connection's shell for this become user
    /// (starting it if need be); `None` where there is none to be had, or
    /// it is busy with another command: the command then gets a channel of
    /// its own.
    /// With `then` (a [`Trailer`]'s batch and its token), that batch rides
    /// on the command.
    async fn exec_in_shell(
        &self,
        command: &str,
        stdin: &[u8],
        then: Option<&(String, String)>,
    ) -> Option<Result<ExecOutput, TransportError>> {
        let shells = self.transport.shells()?;
        if command.len() > shell::MAX_SCRIPT || stdin.len() > shell::MAX_STDIN {
            return None;
        }
        let key = self.become_.as_ref().map(Become::shell_key);
        let slot = shells.slot(key.as_deref()).await?;
        let mut slot = slot.try_lock().ok()?;
        slot.drop_dead();
        if matches!(*slot, shell::Slot::Empty) {
            match self.start_shell(shells).await {
                Ok(sh) => *slot = shell::Slot::Ready(sh),
                // A command on a channel would meet the same refusal.
                Err(e @ TransportError::Become(_)) => return Some(Err(e)),
                Err(e) => {
                    tracing::debug!(error = %e, "no shell: one channel per command");
                    *slot = shell::Slot::Unavailable;
                }
            }
        }
        let shell::Slot::Ready(sh) = &mut *slot else {
            return None;
        };
        let then = then.filter(|(script, _)| command.len() + script.len() <= shell::MAX_SCRIPT);
        let result = sh
            .run_then(command, stdin, then.map(|(script, _)| script.as_str()))
            .await;
        let dir = sh.dir().to_string();
        if let (Some(t), Some((_, token))) = (&self.trailer, then) {
            let second = result.as_ref().ok().and_then(|(_, second)| second.clone());
            t.answered(second, token);
        }
        match result {
            Ok((out, _)) => Some(Ok(out)),
            Err(e) => {
                *slot = shell::Slot::Empty;
                match e {
                    // Nothing ran: a channel needs no room on the host.
                    shell::RunError::Unstored => {
                        tracing::debug!(dir, "the shell had no room for a command");
                        shells.no_room_in(&dir);
                        None
                    }
                    shell::RunError::Lost => {
                        shells.no_room_in(&dir);
                        Some(Err(TransportError::Storage(format!(
                            "the command ran, but the host had no room for its output in {dir}"
                        ))))
                    }
                    shell::RunError::Transport(_) if crate::interrupt::interrupted() => {
                        Some(Err(TransportError::Interrupted))
                    }
                    shell::RunError::Transport(e) => Some(Err(e)),
                }
            }
        }
    }

    /// Start a shell (see [`shell`]) as this handle's become user.
    async fn start_shell(&self, shells: &shell::Shells) -> Result<shell::Shell, TransportError> {
        let token = shell::token();
        let script = shell::script(&token, shells.avoid_shm());
        let (proc, seen) = match &self.become_ {
            None => {
                let proc = self
                    .transport
                    .spawn(&format!("exec /bin/sh -c {}", shell_quote(&script)))
                    .await?;
                (proc, Vec::new())
            }
            Some(b) => {
                let (proc, out) = self.spawn_become(&script, b).await?;
                (proc, out.stdout)
            }
        };
        shell::Shell::ready(proc, token, seen, shells, self.become_.clone()).await
    }

    /// Start `command` through sudo (or su) and answer its password
    /// prompt; the process once sudo let it run, with what it printed so
    /// far.
    async fn spawn_become(
        &self,
        command: &str,
        b: &Become,
    ) -> Result<(Box<dyn RemoteProcess>, ExecOutput), TransportError> {
        let token: u64 = rand::rng().random();
        let marker = format!("DROVER-BECOME-OK-{token:016x}");
        let inner = format!("echo {marker}; {command}");
        let (wrapped, prompt) = match b.method {
            BecomeMethod::Sudo => {
                let prompt = format!("[drover-sudo-{token:016x}] ");
                let wrapped = format!(
                    "LC_ALL=C sudo -H -S -p {} -u {} /bin/sh -c {}",
                    shell_quote(&prompt),
                    shell_quote(&b.user),
                    shell_quote(&inner)
                );
                (wrapped, prompt)
            }
            // su has no prompt of our choosing: with no terminal it asks
            // on stderr ("Password: ") and reads the answer from stdin.
            BecomeMethod::Su => {
                let wrapped = format!(
                    "LC_ALL=C su {} -c {}",
                    shell_quote(&b.user),
                    shell_quote(&format!("/bin/sh -c {}", shell_quote(&inner)))
                );
                (wrapped, String::new())
            }
        };
        let method = b.method.name();
        let mut proc = self.transport.spawn(&wrapped).await?;
        let mut out = ExecOutput::default();
        let mut prompts = 0usize;
        // Until the marker shows, stdout belongs to sudo's handshake and stdin
        // must not be written: sudo would read it as the password.
        loop {
            match proc.next().await {
                Some(ProcessEvent::Stdout(d)) => {
                    out.stdout.extend_from_slice(&d);
                    if let Some(end) = find_line_end(&out.stdout, marker.as_bytes()) {
                        out.stdout.drain(..end);
                        break;
                    }
                }
                Some(ProcessEvent::Stderr(d)) => {
                    out.stderr.extend_from_slice(&d);
                    let seen = if prompt.is_empty() {
                        su_prompts(&out.stderr)
                    } else {
                        count(&out.stderr, prompt.as_bytes())
                    };
                    if seen > prompts {
                        prompts = seen;
                        match (&b.password, prompts) {
                            (None, _) => {
                                return Err(TransportError::Become(format!(
                                    "{method} asks for a password; give one with --ask-become-pass or ansible_become_password"
                                )))
                            }
                            (Some(_), n) if n > 1 => {
                                return Err(TransportError::Become(format!(
                                    "incorrect {method} password"
                                )))
                            }
                            (Some(pw), _) => {
                                let mut line = pw.expose().as_bytes().to_vec();
                                line.push(b'\n');
                                proc.write(&line).await?;
                            }
                        }
                    }
                }
                Some(ProcessEvent::Exit(status)) => {
                    let err = strip_prompts(&out.stderr, &prompt);
                    return Err(TransportError::Become(format!(
                        "{method} exited with status {status}: {}",
                        String::from_utf8_lossy(&err).trim()
                    )));
                }
                None => {
                    return Err(TransportError::Disconnected(format!(
                        "{method} ended early"
                    )))
                }
            }
        }
        out.stderr = strip_prompts(&out.stderr, &prompt);
        Ok((proc, out))
    }
}

/// Stop the shells running on `transport` (an interrupted run), from a
/// channel of its own as each shell's user: TERM to the shell's process
/// group (the shell and its command, of that channel's session alone),
/// KILL after two seconds, then remove its directory.
pub async fn stop_shells(transport: Arc<dyn Transport>) {
    let Some(shells) = transport.shells() else {
        return;
    };
    let stops = shells.live().into_iter().map(|live| {
        let remote = Remote::new(transport.clone(), live.become_.clone());
        async move {
            let script = stop_script(live.pid, &live.dir);
            if let Err(e) = remote.exec_on_channel(&script, &[]).await {
                tracing::debug!(error = %e, dir = live.dir, "stopping a shell");
            }
        }
    });
    futures::future::join_all(stops).await;
}

/// The script stopping the shell `pid` whose directory is `dir`. The pid
/// file proves the pid still names that shell; its process group is
/// field 5 of /proc/PID/stat.
fn stop_script(pid: u32, dir: &str) -> String {
    let d = shell_quote(dir);
    format!(
        "if [ -f {d}/pid ] && read -r q <{d}/pid && [ \"$q\" = {pid} ]; then\n\
         g=; if read -r s </proc/{pid}/stat; then set -- $s; g=$5; fi\n\
         case $g in ''|*[!0-9]*|0|1) g=;; esac\n\
         if [ -n \"$g\" ]; then kill -TERM -$g 2>/dev/null; else kill -TERM {pid} 2>/dev/null; fi\n\
         i=0; while [ $i -lt 20 ] && kill -0 {pid} 2>/dev/null; do sleep 0.1; i=$((i + 1)); done\n\
         if [ -n \"$g\" ]; then kill -KILL -$g 2>/dev/null; fi\n\
         rm -rf -- {d}\n\
         fi"
    )
}

async fn collect(
    mut proc: Box<dyn RemoteProcess>,
    mut out: ExecOutput,
) -> Result<ExecOutput, TransportError> {
    let mut status = None;
    while let Some(ev) = proc.next().await {
        match ev {
            ProcessEvent::Stdout(d) => out.stdout.extend_from_slice(&d),
            ProcessEvent::Stderr(d) => out.stderr.extend_from_slice(&d),
            ProcessEvent::Exit(s) => status = Some(s),
        }
    }
    match status {
        Some(s) => {
            out.status = s;
            Ok(out)
        }
        None => Err(TransportError::Disconnected(
            "the command ended without an exit status".into(),
        )),
    }
}

/// Index just past the line holding `needle`, once that line is complete.
fn find_line_end(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let at = memchr::memmem::find(hay, needle)?;
    let nl = memchr::memchr(b'\n', &hay[at..])?;
    Some(at + nl + 1)
}

/// su's password prompt as PAM words it in the C locale.
const SU_PROMPT: &[u8] = b"Password: ";

/// How many password prompts su printed on `stderr` (it prints none
/// when the connecting user may become the target without one).
fn su_prompts(stderr: &[u8]) -> usize {
    count(stderr, SU_PROMPT)
}

/// `stderr` without the become prompts (`prompt`: sudo's own; empty: su's).
fn strip_prompts(stderr: &[u8], prompt: &str) -> Vec<u8> {
    if prompt.is_empty() {
        strip_all(stderr, SU_PROMPT)
    } else {
        strip_all(stderr, prompt.as_bytes())
    }
}

fn count(hay: &[u8], needle: &[u8]) -> usize {
    memchr::memmem::find_iter(hay, needle).count()
}

fn strip_all(hay: &[u8], needle: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(needle) {
            i += needle.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

/// A command as `-vvv` logs it: on one line, as written (a field would
/// show it escaped, a batched read script as one huge quoted string), its
/// line breaks marked and cut after [`LOG_COMMAND_MAX`] bytes.
struct LogText<'a>(&'a str);

/// How much of a command `-vvv` shows.
const LOG_COMMAND_MAX: usize = 300;

impl std::fmt::Display for LogText<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = self.0.trim_end();
        let mut cut = text.len().min(LOG_COMMAND_MAX);
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        f.write_str(&text[..cut].replace('\n', " \u{21b5} "))?;
        if cut < text.len() {
            write!(
                f,
                " \u{2026} [{} lines, {} bytes]",
                text.lines().count(),
                text.len()
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_are_plain_names_and_never_shell_text() {
        for ok in ["A", "_x", "PATH_2"] {
            assert!(is_env_name(ok), "{ok}");
        }
        for bad in [
            "",
            "1A",
            "A=1; touch /tmp/x; B",
            "A B",
            "A-B",
            "$(x)",
            "\u{e9}",
        ] {
            assert!(!is_env_name(bad), "{bad}");
        }
        let r = Remote::new(std::sync::Arc::new(local::LocalTransport), None).with_env(vec![
            ("A=1; touch /tmp/x; B".into(), "v".into()),
            ("OK".into(), "a'b".into()),
        ]);
        assert_eq!(r.with_env_exports("true"), "export OK='a'\\''b'; true");
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("abc/def"), "abc/def");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    /// become target "test becoming user (su from admin to ...)": su was
    /// refused; its prompt is PAM's, counted to tell a wrong password.
    #[test]
    fn su_prompts_are_counted_and_stripped() {
        assert_eq!(su_prompts(b""), 0);
        assert_eq!(su_prompts(b"Password: "), 1);
        assert_eq!(
            su_prompts(b"Password: \nsu: Authentication failure\nPassword: "),
            2
        );
        assert_eq!(
            strip_prompts(b"Password: su: Authentication failure\n", ""),
            b"su: Authentication failure\n"
        );
        assert_eq!(strip_prompts(b"[p] x", "[p] "), b"x");
        let su = |user: &str| Become {
            user: user.into(),
            password: None,
            method: BecomeMethod::Su,
        };
        let sudo = Become {
            method: BecomeMethod::Sudo,
            ..su("u")
        };
        assert_ne!(su("u").shell_key(), sudo.shell_key());
        assert_eq!(sudo.shell_key(), "u");
        assert_eq!(BecomeMethod::parse("su"), Some(BecomeMethod::Su));
        assert_eq!(BecomeMethod::parse("doas"), None);
    }

    #[test]
    fn marker_line() {
        assert_eq!(find_line_end(b"xx MARK\nrest", b"MARK"), Some(8));
        assert_eq!(find_line_end(b"xx MARK", b"MARK"), None);
    }

    #[test]
    fn vvv_logs_a_long_script_unescaped_on_one_line_and_cut() {
        let script = format!("printf 'a\\n'\n{}", "x".repeat(5000));
        let shown = LogText(&script).to_string();
        assert!(shown.starts_with("printf 'a\\n' \u{21b5} xxx"), "{shown}");
        assert!(!shown.contains('\n'), "{shown}");
        assert!(shown.len() < LOG_COMMAND_MAX + 100, "{shown}");
        assert!(shown.ends_with("[2 lines, 5013 bytes]"), "{shown}");
        assert_eq!(LogText("umask 077\n").to_string(), "umask 077");
    }
}
