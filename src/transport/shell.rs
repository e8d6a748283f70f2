//! A shell kept open on a connection, running one command after another.
//!
//! Each command on a channel of its own costs the host a session process,
//! the user's shell, sudo (some 5 ms of CPU by itself) and another shell,
//! and the client one more round trip to open the channel. A play runs tens
//! of commands per host, so a connection keeps one shell per become user:
//! started once (through the same sudo handshake as any command), then fed
//! each command and its stdin as counted bytes (`dd` reads exactly that
//! many), answering with the command's stdout, stderr and status between
//! lines that carry a random token. Each command runs in a shell of its
//! own, `/bin/sh script <stdin`, so `exit`, `cd`, `umask`, variables and
//! `$$` are its own, as with `sh -c`. Its output goes through files of its
//! own, so that a
//! process it leaves running in the background cannot garble a later
//! answer (nor keep the command from ending, as it would keep a channel).
//!
//! Anything unexpected (the shell gone, an answer cut short, a caller that
//! stopped waiting for its answer) discards the shell; the next command
//! starts a new one. A shell that cannot start at all is not tried again on
//! that connection: commands then get channels of their own, as before.

use std::collections::HashMap;
use std::sync::Arc;

use futures::FutureExt as _;
use rand::Rng;
use tokio::sync::Mutex;

use super::prefetch::find;
use super::{ExecOutput, ProcessEvent, RemoteProcess, TransportError};

/// Largest command sent through a shell; a larger one gets a channel.
pub const MAX_SCRIPT: usize = 1 << 20;
/// Largest stdin sent through a shell (`dd` holds it in memory at once).
pub const MAX_STDIN: usize = 4 << 20;

/// Most shells one connection keeps (one per become user): each holds one
/// of the connection's few channels for good, and commands need the rest.
const MAX_SHELLS: usize = 3;

/// After this many commands a shell deletes the output files of the
/// earlier ones (one `rm` for many commands).
const SWEEP_EVERY: u32 = 64;

/// The shells of one connection, by become user (`None`: the connecting
/// user).
#[derive(Default)]
pub struct Shells {
    slots: Mutex<HashMap<Option<String>, Arc<Mutex<Slot>>>>,
}

/// The shell of one become user.
#[derive(Default)]
pub(super) enum Slot {
    /// None started yet (or the last one was discarded).
    #[default]
    Empty,
    /// Ready for a command.
    Ready(Shell),
    /// It could not start: commands get channels of their own.
    Unavailable,
}

impl Shells {
    /// No shells yet.
    pub fn new() -> Shells {
        Shells::default()
    }

    /// The slot of `user`'s shell; `None` when the connection keeps as
    /// many shells as it may, for other users.
    pub(super) async fn slot(&self, user: Option<&str>) -> Option<Arc<Mutex<Slot>>> {
        let mut slots = self.slots.lock().await;
        let key = user.map(str::to_string);
        if !slots.contains_key(&key) && slots.len() >= MAX_SHELLS {
            return None;
        }
        Some(slots.entry(key).or_default().clone())
    }

    /// Forget every shell (the connection was replaced).
    pub async fn clear(&self) {
        self.slots.lock().await.clear();
    }
}

/// One running shell.
pub(super) struct Shell {
    proc: Box<dyn RemoteProcess>,
    token: String,
    /// A command was sent and its answer not read in full: its caller
    /// stopped waiting. What comes next belongs to that command.
    busy: bool,
}

/// The loop the shell runs: `count-of-script count-of-stdin` on a line,
/// then the script and the stdin; the answer is `<token> O`, stdout,
/// `<token> E`, stderr, `<token> S status`. It says READY only once it has
/// a private directory and a `dd` that reads exactly (`iflag=fullblock`,
/// GNU and recent BusyBox): without them there is no shell, and commands
/// get channels.
pub(super) fn script(token: &str) -> String {
    format!(
        r#"__t={token}
__d=$(mktemp -d /dev/shm/.drover-sh.XXXXXX 2>/dev/null || mktemp -d) || exit 97
trap 'rm -rf "$__d"' EXIT
trap 'exit 129' HUP
trap 'exit 143' TERM
printf '\n%s E\n' "$__t" >"$__d/m"
printf ab | dd bs=2 count=1 iflag=fullblock of="$__d/s" 2>/dev/null && [ -s "$__d/s" ] || exit 96
__n=0
printf '%s READY\n' "$__t"
while IFS=' ' read -r __ns __ni; do
__n=$((__n + 1))
if [ $((__n % {SWEEP_EVERY})) = 0 ]; then rm -f "$__d"/o* "$__d"/e*; fi
dd bs="$__ns" count=1 iflag=fullblock of="$__d/s" 2>/dev/null || exit 98
__in=/dev/null
if [ "$__ni" -gt 0 ]; then dd bs="$__ni" count=1 iflag=fullblock of="$__d/i" 2>/dev/null || exit 98; __in=$__d/i; fi
/bin/sh "$__d/s" <"$__in" >"$__d/o$__n" 2>"$__d/e$__n"
__st=$?
if [ "$__ni" -gt 0 ]; then : >"$__d/i"; fi
printf '%s O\n' "$__t"
cat "$__d/o$__n" "$__d/m" "$__d/e$__n"
printf '\n%s S %s\n' "$__t" "$__st"
done"#
    )
}

/// A fresh token for a shell's marker lines.
pub(super) fn token() -> String {
    format!("DROVER-SH-{:016x}", rand::rng().random::<u64>())
}

impl Shell {
    /// Wait for a just started shell (`proc`, running [`script`] with
    /// `token`) to say it is ready; `seen` is stdout already read from it.
    pub(super) async fn ready(
        mut proc: Box<dyn RemoteProcess>,
        token: String,
        mut seen: Vec<u8>,
    ) -> Result<Shell, TransportError> {
        let ready = format!("{token} READY\n");
        let mut stderr = Vec::new();
        loop {
            if let Some(at) = find(&seen, ready.as_bytes(), 0) {
                if at + ready.len() == seen.len() {
                    return Ok(Shell {
                        proc,
                        token,
                        busy: false,
                    });
                }
                break;
            }
            match proc.next().await {
                Some(ProcessEvent::Stdout(d)) => seen.extend_from_slice(&d),
                Some(ProcessEvent::Stderr(d)) => stderr.extend_from_slice(&d),
                Some(ProcessEvent::Exit(_)) | None => break,
            }
        }
        Err(TransportError::Disconnected(format!(
            "the remote shell did not start: {}",
            String::from_utf8_lossy(&stderr).trim()
        )))
    }

    /// Is the shell still there, with nothing unasked for on its way?
    fn alive(&mut self) -> bool {
        !self.busy && self.proc.next().now_or_never().is_none()
    }

    /// Run `command` with `stdin` and collect its answer.
    pub(super) async fn run(
        &mut self,
        command: &str,
        stdin: &[u8],
    ) -> Result<ExecOutput, TransportError> {
        let mut msg = format!("{} {}\n", command.len(), stdin.len()).into_bytes();
        msg.extend_from_slice(command.as_bytes());
        msg.extend_from_slice(stdin);
        self.busy = true;
        self.proc.write(&msg).await?;
        let mut buf = Vec::new();
        let mut stderr = Vec::new();
        loop {
            match self.proc.next().await {
                Some(ProcessEvent::Stdout(d)) => {
                    buf.extend_from_slice(&d);
                    match parse_answer(&buf, &self.token) {
                        Answer::Partial => {}
                        Answer::Done(out) => {
                            self.busy = false;
                            return Ok(out);
                        }
                        Answer::Garbled => {
                            return Err(TransportError::Disconnected(
                                "the remote shell's answer was garbled".into(),
                            ))
                        }
                    }
                }
                Some(ProcessEvent::Stderr(d)) => stderr.extend_from_slice(&d),
                Some(ProcessEvent::Exit(_)) | None => {
                    return Err(TransportError::Disconnected(format!(
                        "the remote shell ended during a command{}",
                        match String::from_utf8_lossy(&stderr).trim() {
                            "" => String::new(),
                            e => format!(": {e}"),
                        }
                    )))
                }
            }
        }
    }
}

impl Slot {
    /// Discard a shell that died or still owes an answer to a caller who
    /// gave up.
    pub(super) fn drop_dead(&mut self) {
        if let Slot::Ready(shell) = self {
            if !shell.alive() {
                *self = Slot::Empty;
            }
        }
    }
}

enum Answer {
    Partial,
    Done(ExecOutput),
    Garbled,
}

/// Split a shell's answer into stdout, stderr and status, once complete.
fn parse_answer(buf: &[u8], token: &str) -> Answer {
    let open = format!("{token} O\n");
    let err_mark = format!("\n{token} E\n");
    let status_mark = format!("\n{token} S ");
    if buf.len() < open.len() {
        return if open.as_bytes().starts_with(buf) {
            Answer::Partial
        } else {
            Answer::Garbled
        };
    }
    if !buf.starts_with(open.as_bytes()) {
        return Answer::Garbled;
    }
    let Some(e) = find(buf, err_mark.as_bytes(), open.len() - 1) else {
        return Answer::Partial;
    };
    let Some(s) = find(buf, status_mark.as_bytes(), e + err_mark.len() - 1) else {
        return Answer::Partial;
    };
    let Some(end) = find(buf, b"\n", s + status_mark.len()) else {
        return Answer::Partial;
    };
    if end + 1 != buf.len() {
        return Answer::Garbled;
    }
    let Some(status) = std::str::from_utf8(&buf[s + status_mark.len()..end])
        .ok()
        .and_then(|t| t.trim().parse::<i32>().ok())
    else {
        return Answer::Garbled;
    };
    Answer::Done(ExecOutput {
        status,
        stdout: buf[open.len()..e].to_vec(),
        stderr: buf[e + err_mark.len()..s].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use async_trait::async_trait;

    use super::*;
    use crate::transport::local::LocalTransport;
    use crate::transport::{Remote, Transport};

    /// The local transport, with shells as an SSH connection has them;
    /// `path` goes before PATH (to stand in a broken tool).
    #[derive(Default)]
    struct LocalShells {
        local: LocalTransport,
        shells: Shells,
        path: Option<String>,
    }

    #[async_trait]
    impl Transport for LocalShells {
        async fn spawn(&self, command: &str) -> Result<Box<dyn RemoteProcess>, TransportError> {
            match &self.path {
                Some(p) => {
                    let cmd = format!("PATH={p}:$PATH; export PATH; {command}");
                    self.local.spawn(&cmd).await
                }
                None => self.local.spawn(command).await,
            }
        }
        async fn close(&self) {}
        fn shells(&self) -> Option<&Shells> {
            Some(&self.shells)
        }
    }

    fn remote() -> Remote {
        Remote::new(Arc::new(LocalShells::default()), None)
    }

    async fn run(r: &Remote, cmd: &str) -> ExecOutput {
        r.exec(cmd, b"").await.expect("runs")
    }

    #[tokio::test]
    async fn commands_share_one_shell_and_keep_their_own_state() {
        let r = remote();
        let first = run(
            &r,
            "echo $PPID; echo oops >&2; cd /; umask 077; X=1; exit 7",
        )
        .await;
        assert_eq!(first.status, 7);
        assert_eq!(first.stderr, b"oops\n");
        let second = run(&r, "echo $PPID; pwd; umask; echo ${X-unset}").await;
        let (a, b) = (first.stdout_str(), second.stdout_str());
        assert_eq!(a.lines().next(), b.lines().next(), "the same shell");
        assert_ne!(b.lines().nth(1), Some("/"), "cd stayed with its command");
        assert_ne!(b.lines().nth(2), Some("0077"), "umask too");
        assert_eq!(b.lines().nth(3), Some("unset"), "and variables");
        assert_eq!(second.status, 0);
        assert!(second.stderr.is_empty());
    }

    #[tokio::test]
    async fn stdin_arrives_byte_for_byte() {
        let r = remote();
        let data: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
        let out = r.exec("cat; printf end", &data).await.expect("runs");
        assert_eq!(&out.stdout[..data.len()], &data[..]);
        assert_eq!(&out.stdout[data.len()..], b"end");
        let none = run(&r, "cat; echo eof").await;
        assert_eq!(none.stdout, b"eof\n", "no stdin: end of file at once");
    }

    #[tokio::test]
    async fn a_background_process_neither_holds_nor_garbles_the_shell() {
        let r = remote();
        let started = Instant::now();
        let out = run(&r, "(sleep 0.4; echo late; echo late >&2) & echo now").await;
        assert_eq!(out.stdout, b"now\n");
        assert!(started.elapsed() < Duration::from_millis(350));
        tokio::time::sleep(Duration::from_millis(600)).await;
        let next = run(&r, "echo next").await;
        assert_eq!(next.stdout, b"next\n");
        assert!(next.stderr.is_empty());
    }

    #[tokio::test]
    async fn a_dead_shell_fails_its_command_and_is_replaced() {
        let r = remote();
        let pid = run(&r, "echo $PPID").await.stdout_str();
        assert_eq!(run(&r, "kill -TERM $$").await.status, 128 + 15, "as sh -c");
        assert_eq!(
            run(&r, "echo $PPID").await.stdout_str(),
            pid,
            "the shell lives"
        );
        assert!(
            r.exec("kill -9 $PPID", b"").await.is_err(),
            "the shell died under it"
        );
        let again = run(&r, "echo $PPID").await.stdout_str();
        assert_ne!(pid, again, "a new shell");
        // One killed between two commands is noticed before the next is sent.
        run(&r, "(sleep 0.1; kill -9 $PPID) &").await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(run(&r, "echo fine").await.stdout, b"fine\n");
    }

    #[tokio::test]
    async fn a_command_whose_caller_gave_up_takes_its_shell_with_it() {
        let r = remote();
        let gave_up = tokio::time::timeout(
            Duration::from_millis(100),
            r.exec("sleep 0.5; echo slow", b""),
        )
        .await;
        assert!(gave_up.is_err());
        assert_eq!(run(&r, "echo quick").await.stdout, b"quick\n");
    }

    #[tokio::test]
    async fn without_an_exact_dd_commands_get_channels() {
        let bin = tempfile::tempdir().expect("tempdir");
        let dd = bin.path().join("dd");
        std::fs::write(
            &dd,
            "#!/bin/sh\necho 'dd: invalid input flag' >&2\nexit 1\n",
        )
        .expect("write");
        std::fs::set_permissions(&dd, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        let t = Arc::new(LocalShells {
            path: Some(bin.path().to_str().expect("utf8").to_string()),
            ..LocalShells::default()
        });
        let r = Remote::new(t.clone(), None);
        let out = r.exec("cat; echo done", b"in ").await.expect("runs");
        assert_eq!(out.stdout, b"in done\n");
        assert_eq!(run(&r, "echo again").await.stdout, b"again\n");
        let slot = t.shells.slot(None).await.expect("slot");
        assert!(matches!(*slot.lock().await, Slot::Unavailable));
    }

    #[tokio::test]
    async fn a_connection_keeps_a_few_shells_at_most() {
        let t = Arc::new(LocalShells::default());
        for i in 0..=MAX_SHELLS {
            let slot = t.shells.slot(Some(&format!("user{i}"))).await;
            assert_eq!(slot.is_some(), i < MAX_SHELLS, "{i}");
        }
        assert!(t.shells.slot(Some("user0")).await.is_some(), "kept");
        // One more user's commands get channels of their own.
        let r = Remote::new(t.clone(), None);
        assert_eq!(run(&r, "echo ok").await.stdout, b"ok\n");
        assert!(t.shells.slot(None).await.is_none());
    }

    #[tokio::test]
    async fn a_command_too_large_for_the_shell_gets_a_channel() {
        let r = remote();
        let shell_pid = run(&r, "echo $PPID").await.stdout_str();
        let big = vec![b'x'; MAX_STDIN + 1];
        let out = r
            .exec("cat >/dev/null; echo $PPID", &big)
            .await
            .expect("runs");
        assert_ne!(out.stdout_str(), shell_pid);
    }

    #[test]
    fn answers_are_split_at_their_markers() {
        let t = "TOK";
        let done = |b: &[u8]| match parse_answer(b, t) {
            Answer::Done(o) => Some((o.stdout, o.stderr, o.status)),
            _ => None,
        };
        assert_eq!(
            done(b"TOK O\nout\n\nTOK E\nerr\nTOK S 3\n"),
            Some((b"out\n".to_vec(), b"err".to_vec(), 3))
        );
        assert_eq!(
            done(b"TOK O\n\nTOK E\n\nTOK S 0\n"),
            Some((Vec::new(), Vec::new(), 0)),
            "nothing on either"
        );
        assert!(matches!(parse_answer(b"TOK", t), Answer::Partial));
        assert!(matches!(
            parse_answer(b"TOK O\nout\n\nTOK E\nerr\nTOK S 3", t),
            Answer::Partial
        ));
        assert!(matches!(
            parse_answer(b"stray\nTOK O\n", t),
            Answer::Garbled
        ));
        assert!(matches!(
            parse_answer(b"TOK O\n\nTOK E\n\nTOK S 0\nmore", t),
            Answer::Garbled
        ));
    }
}
