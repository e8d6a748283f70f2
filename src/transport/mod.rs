//! Transports run shell commands on a host. A [`Transport`] starts processes;
//! [`Remote`] is the handle modules use, which adds privilege escalation
//! (sudo, with the password written to its stdin after its prompt) and
//! collects output. Modules never see SSH: they get a `Remote`.

pub mod known_hosts;
pub mod local;
pub mod prefetch;
pub mod shell;
pub mod ssh;

use std::sync::Arc;

use async_trait::async_trait;
use rand::Rng;

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
    /// The handle only records commands (read-ahead planning): nothing ran.
    #[error("command recorded for read-ahead, not run")]
    Recorded,
}

impl TransportError {
    /// Does this error mean the host cannot be reached (UNREACHABLE in the
    /// recap) rather than a task failure?
    pub fn is_unreachable(&self) -> bool {
        !matches!(self, TransportError::Become(_) | TransportError::Recorded)
    }
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
    /// Outputs of reads run ahead of time on this connection (see
    /// [`prefetch`]); transports without one run every command as asked.
    fn exec_cache(&self) -> Option<&prefetch::ExecCache> {
        None
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

/// Privilege escalation settings (sudo).
#[derive(Debug, Clone)]
pub struct Become {
    /// Target user (`ansible_become_user`, default root).
    pub user: String,
    /// Password for sudo's prompt, if sudo asks.
    pub password: Option<Secret>,
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
    /// Read-ahead planning: commands are recorded here, not run.
    recorder: Option<Arc<std::sync::Mutex<Vec<String>>>>,
}

impl Remote {
    /// A handle running commands as the connecting user, or through sudo.
    pub fn new(transport: Arc<dyn Transport>, become_: Option<Become>) -> Remote {
        Remote {
            transport,
            become_,
            env: Vec::new(),
            no_log: false,
            recorder: None,
        }
    }

    /// The same handle, recording into `into` the commands it is asked to
    /// run (stdin-less ones) instead of running them: each exec fails with
    /// [`TransportError::Recorded`].
    pub fn recording(mut self, into: Arc<std::sync::Mutex<Vec<String>>>) -> Remote {
        self.recorder = Some(into);
        self
    }

    /// Run `commands` (as recorded by [`Remote::recording`] on a handle
    /// with the same settings) in one exec and keep their outputs in the
    /// connection's cache, where the same commands run later find them.
    /// With `deferred`, the work the commands leave for the end of the
    /// batch is done there (see [`prefetch::Deferred`]). Returns how many
    /// were stored; none without a cache.
    pub async fn prefetch(
        &self,
        commands: &[String],
        deferred: Option<&dyn prefetch::Deferred>,
    ) -> Result<usize, TransportError> {
        let Some(cache) = self.transport.exec_cache() else {
            return Ok(0);
        };
        if commands.is_empty() {
            return Ok(0);
        }
        // The recorded commands carry their environment exports already.
        let runner = Remote {
            env: Vec::new(),
            recorder: None,
            ..self.clone()
        };
        let token = format!("@@drover-read-{:016x}", rand::rng().random::<u64>());
        let out = runner
            .exec_uncached(&prefetch::batch_script(commands, &token, deferred), b"")
            .await?;
        if out.status != 0 {
            return Ok(0);
        }
        let user = self.become_.as_ref().map(|b| b.user.as_str());
        let mut found = prefetch::parse_batch(&out.stdout, &token, commands.len());
        if let Some(d) = deferred {
            let tail = prefetch::tail(&out.stdout, &token).unwrap_or_default();
            let mut outputs: Vec<&mut ExecOutput> = found.iter_mut().map(|(_, o)| o).collect();
            if !d.complete(&mut outputs, tail, &token) {
                tracing::debug!("read-ahead: deferred work not completed, nothing stored");
                return Ok(0);
            }
        }
        let n = found.len();
        cache.insert(
            found
                .into_iter()
                .map(|(i, o)| (prefetch::key(user, &commands[i], b""), o)),
        );
        Ok(n)
    }

    /// Is nothing waiting in the connection's read-ahead cache?
    pub fn prefetch_idle(&self) -> bool {
        self.transport.exec_cache().is_some_and(|c| c.is_empty())
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
            recorder: self.recorder.clone(),
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
        if let Some(rec) = &self.recorder {
            if stdin.is_empty() {
                rec.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(self.with_env_exports(command));
            }
            return Err(TransportError::Recorded);
        }
        if let Some(cache) = self.transport.exec_cache() {
            let user = self.become_.as_ref().map(|b| b.user.as_str());
            let key = prefetch::key(user, &self.with_env_exports(command), stdin);
            if let Some(out) = cache.take_or_clear(&key) {
                tracing::debug!("exec answered by read-ahead");
                return Ok(out);
            }
        }
        self.exec_uncached(command, stdin).await
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
        stdin: &[u8],
    ) -> Result<ExecOutput, TransportError> {
        // Logged without the environment: its values may be secrets.
        if self.no_log {
            tracing::debug!("exec (command hidden: no_log)");
        } else {
            tracing::debug!(command, "exec");
        }
        let with_env;
        let command = if self.env.is_empty() {
            command
        } else {
            with_env = self.with_env_exports(command);
            &with_env
        };
        if let Some(result) = self.exec_in_shell(command, stdin).await {
            return result;
        }
        match &self.become_ {
            None => {
                let mut proc = self.transport.spawn(command).await?;
                if !stdin.is_empty() {
                    proc.write(stdin).await?;
                }
                proc.close_stdin().await?;
                collect(proc, ExecOutput::default()).await
            }
            Some(b) => self.exec_become(command, stdin, b).await,
        }
    }

    /// Run `command` in the connection's shell for this become user
    /// (starting it if need be); `None` where there is none to be had, or
    /// it is busy with another command: the command then gets a channel of
    /// its own.
    async fn exec_in_shell(
        &self,
        command: &str,
        stdin: &[u8],
    ) -> Option<Result<ExecOutput, TransportError>> {
        let shells = self.transport.shells()?;
        if command.len() > shell::MAX_SCRIPT || stdin.len() > shell::MAX_STDIN {
            return None;
        }
        let slot = shells
            .slot(self.become_.as_ref().map(|b| b.user.as_str()))
            .await?;
        let mut slot = slot.try_lock().ok()?;
        slot.drop_dead();
        if matches!(*slot, shell::Slot::Empty) {
            match self.start_shell().await {
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
        let result = sh.run(command, stdin).await;
        if result.is_err() {
            *slot = shell::Slot::Empty;
        }
        Some(result)
    }

    /// Start a shell (see [`shell`]) as this handle's become user.
    async fn start_shell(&self) -> Result<shell::Shell, TransportError> {
        let token = shell::token();
        let script = shell::script(&token);
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
        shell::Shell::ready(proc, token, seen).await
    }

    async fn exec_become(
        &self,
        command: &str,
        stdin: &[u8],
        b: &Become,
    ) -> Result<ExecOutput, TransportError> {
        let (mut proc, out) = self.spawn_become(command, b).await?;
        if !stdin.is_empty() {
            proc.write(stdin).await?;
        }
        proc.close_stdin().await?;
        collect(proc, out).await
    }

    /// Start `command` through sudo and answer its password prompt; the
    /// process once sudo let it run, with what it printed so far.
    async fn spawn_become(
        &self,
        command: &str,
        b: &Become,
    ) -> Result<(Box<dyn RemoteProcess>, ExecOutput), TransportError> {
        let token: u64 = rand::rng().random();
        let marker = format!("DROVER-BECOME-OK-{token:016x}");
        let prompt = format!("[drover-sudo-{token:016x}] ");
        let inner = format!("echo {marker}; {command}");
        let wrapped = format!(
            "LC_ALL=C sudo -H -S -p {} -u {} /bin/sh -c {}",
            shell_quote(&prompt),
            shell_quote(&b.user),
            shell_quote(&inner)
        );
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
                    let seen = count(&out.stderr, prompt.as_bytes());
                    if seen > prompts {
                        prompts = seen;
                        match (&b.password, prompts) {
                            (None, _) => {
                                return Err(TransportError::Become(
                                    "sudo asks for a password; give one with --ask-become-pass or ansible_become_password".into(),
                                ))
                            }
                            (Some(_), n) if n > 1 => {
                                return Err(TransportError::Become(
                                    "incorrect sudo password".into(),
                                ))
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
                    let err = strip_all(&out.stderr, prompt.as_bytes());
                    return Err(TransportError::Become(format!(
                        "sudo exited with status {status}: {}",
                        String::from_utf8_lossy(&err).trim()
                    )));
                }
                None => return Err(TransportError::Disconnected("sudo ended early".into())),
            }
        }
        out.stderr = strip_all(&out.stderr, prompt.as_bytes());
        Ok((proc, out))
    }
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
    let at = hay.windows(needle.len()).position(|w| w == needle)?;
    let nl = hay[at..].iter().position(|&c| c == b'\n')?;
    Some(at + nl + 1)
}

fn count(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
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

    #[test]
    fn marker_line() {
        assert_eq!(find_line_end(b"xx MARK\nrest", b"MARK"), Some(8));
        assert_eq!(find_line_end(b"xx MARK", b"MARK"), None);
    }
}
