//! A shell kept open on a connection, running one command after another.
//!
//! Each command on a channel of its own costs the host a session process,
//! the user's shell, sudo (some 5 ms of CPU by itself) and another shell,
//! and the client one more round trip to open the channel. A play runs tens
//! of commands per host, so a connection keeps one shell per become user:
//! started once (through the same sudo handshake as any command), then fed
//! each command and its stdin as counted bytes (`dd` reads exactly that
//! many, and a token after them proves they all arrived), answering with
//! the command's stdout, stderr and status between lines that carry a
//! random token. Each command runs in a shell of its own, `/bin/sh script
//! <stdin`, so `exit`, `cd`, `umask`, variables and `$$` are its own, as
//! with `sh -c`. Its output goes through files of its own, so that a
//! process it leaves running in the background cannot garble a later
//! answer (nor keep the command from ending, as it would keep a channel).
//!
//! Anything unexpected (the shell gone, an answer cut short, a caller that
//! stopped waiting for its answer) discards the shell; the next command
//! starts a new one. A shell that cannot start at all is not tried again on
//! that connection: commands then get channels of their own, as before.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex as StdMutex};

use futures::FutureExt as _;
use rand::Rng;
use tokio::sync::Mutex;

use super::prefetch::find;
use super::{Become, ExecOutput, ProcessEvent, RemoteProcess, TransportError};

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
    /// /dev/shm refused a frame or an output: later shells live elsewhere.
    avoid_shm: AtomicBool,
    /// Every running shell, for [`super::stop_shells`].
    live: Arc<StdMutex<Vec<Live>>>,
}

/// A running shell as an interrupted run needs it to stop it: who runs
/// it, its process and its directory.
#[derive(Clone)]
pub(super) struct Live {
    id: u64,
    /// The become settings it was started with.
    pub(super) become_: Option<Become>,
    /// The shell's process on the host.
    pub(super) pid: u32,
    /// Its private directory.
    pub(super) dir: String,
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

    /// Should new shells keep out of /dev/shm?
    pub(super) fn avoid_shm(&self) -> bool {
        self.avoid_shm.load(Ordering::Relaxed)
    }

    /// Keep later shells out of /dev/shm, when `dir` is there.
    pub(super) fn no_room_in(&self, dir: &str) {
        if dir.starts_with("/dev/shm/") {
            self.avoid_shm.store(true, Ordering::Relaxed);
        }
    }

    /// The shells running now.
    pub(super) fn live(&self) -> Vec<Live> {
        self.live.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// One running shell.
pub(super) struct Shell {
    proc: Box<dyn RemoteProcess>,
    token: String,
    /// A command was sent and its answer not read in full: its caller
    /// stopped waiting. What comes next belongs to that command.
    busy: bool,
    /// Its private directory on the host.
    dir: String,
    /// Where it is listed as running, and under which id.
    listed: (Arc<StdMutex<Vec<Live>>>, u64),
}

impl Drop for Shell {
    fn drop(&mut self) {
        let (list, id) = &self.listed;
        list.lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|l| l.id != *id);
    }
}

/// Why a command sent to a shell gave no answer.
pub(super) enum RunError {
    /// The shell could not store the frame: nothing ran.
    Unstored,
    /// The command ran but its output could not be stored.
    Lost,
    /// The shell or the connection failed.
    Transport(TransportError),
}

/// The loop the shell runs: `count-of-script count-of-stdin` on a line,
/// then the script, the stdin and the token on a line of its own; the
/// answer is `<token> O`, stdout, `<token> E`, stderr, `<token> S status`.
///
/// A frame runs only when every byte of it arrived: `dd` returns a short
/// block with status 0 at the end of its input, so the token after the
/// body is what proves the body complete. A frame cut short (the
/// connection dropped mid-send) ends the shell with nothing run.
///
/// The shell's private directory is the first of /dev/shm (unless
/// `avoid_shm`), /tmp, /var/tmp and $HOME where a file can be written
/// (and where `dd` reads exactly: `iflag=fullblock`, GNU and recent
/// BusyBox); with none there is no shell, and commands get channels. A
/// frame it cannot store is answered `<token> F` (nothing ran: the caller
/// runs the command on a channel); output it cannot store, `<token> L`.
/// Each file of output ends with a `.` the shell appends after the
/// command: tmpfs fills a file's last page before it refuses a write, so
/// an append that fails means output was lost. Output files are emptied
/// once sent (a process the command left in the background may still
/// hold them, so they are removed only every [`SWEEP_EVERY`] commands).
///
/// It says `<token> READY <pid> <dir>` once ready, after a line
/// `<token> STALE <dir>` for each directory of an earlier shell whose
/// process is gone (or, without a pid file, older than an hour) that it
/// removed. The shell and its commands are the process group of their
/// channel's session: [`super::stop_shells`] stops them all at once, and
/// the shell removes its directory as it ends (on TERM, HUP, or a closed
/// stdout too).
pub(super) fn script(token: &str, avoid_shm: bool) -> String {
    let bases = if avoid_shm {
        r#"/tmp /var/tmp "$HOME""#
    } else {
        r#"/dev/shm /tmp /var/tmp "$HOME""#
    };
    format!(
        r#"__t={token}
__d=
for __b in {bases}; do
[ -n "$__b" ] && [ -d "$__b" ] || continue
__o=
for __x in "$__b"/.drover-sh.*; do
[ -d "$__x" ] && [ -O "$__x" ] || continue
__p=
if [ -f "$__x/pid" ]; then read -r __p <"$__x/pid" || __p=; fi
if [ -z "$__p" ]; then __o=1; continue; fi
kill -0 "$__p" 2>/dev/null && continue
rm -rf "$__x" && printf '%s STALE %s\n' "$__t" "$__x"
done
if [ -n "$__o" ]; then
for __x in $(find "$__b" -maxdepth 1 -name '.drover-sh.??????' -mmin +60 2>/dev/null); do
[ -O "$__x" ] && [ ! -f "$__x/pid" ] && rm -rf "$__x" && printf '%s STALE %s\n' "$__t" "$__x"
done
fi
__d=$(mktemp -d "$__b/.drover-sh.XXXXXX" 2>/dev/null) || {{ __d=; continue; }}
printf ab | dd bs=2 count=1 iflag=fullblock of="$__d/s" 2>/dev/null && [ -s "$__d/s" ] && echo $$ >"$__d/pid" && break
rm -rf "$__d"; __d=
done
[ -n "$__d" ] || exit 97
trap 'rm -rf "$__d"' EXIT
trap 'exit 129' HUP
trap 'exit 141' PIPE
trap 'exit 143' TERM
printf '\n%s E\n' "$__t" >"$__d/m" || exit 97
__n=0
printf '%s READY %s %s\n' "$__t" "$$" "$__d"
while IFS=' ' read -r __ns __ni; do
__n=$((__n + 1))
if [ $((__n % {SWEEP_EVERY})) = 0 ]; then rm -f "$__d"/o* "$__d"/e*; fi
dd bs="$__ns" count=1 iflag=fullblock of="$__d/s" 2>/dev/null || {{ printf '%s F\n' "$__t"; exit 98; }}
__in=/dev/null
if [ "$__ni" -gt 0 ]; then dd bs="$__ni" count=1 iflag=fullblock of="$__d/i" 2>/dev/null || {{ printf '%s F\n' "$__t"; exit 98; }}; __in=$__d/i; fi
IFS= read -r __e && [ "$__e" = "$__t" ] || exit 95
/bin/sh "$__d/s" <"$__in" >"$__d/o$__n" 2>"$__d/e$__n"
__st=$?
if [ "$__ni" -gt 0 ]; then : >"$__d/i"; fi
{{ printf . >>"$__d/o$__n" && printf . >>"$__d/e$__n"; }} 2>/dev/null || {{ printf '%s L\n' "$__t"; continue; }}
printf '%s O\n' "$__t"
cat "$__d/o$__n" "$__d/m" "$__d/e$__n"
printf '\n%s S %s\n' "$__t" "$__st"
: >"$__d/o$__n"; : >"$__d/e$__n"
done"#
    )
}

/// A fresh token for a shell's marker lines.
pub(super) fn token() -> String {
    format!("DROVER-SH-{:016x}", rand::rng().random::<u64>())
}

impl Shell {
    /// Wait for a just started shell (`proc`, running [`script`] with
    /// `token` for `become_`) to say it is ready; `seen` is stdout already
    /// read from it. It is listed in `shells` while it runs.
    pub(super) async fn ready(
        mut proc: Box<dyn RemoteProcess>,
        token: String,
        mut seen: Vec<u8>,
        shells: &Shells,
        become_: Option<Become>,
    ) -> Result<Shell, TransportError> {
        let ready = format!("{token} READY ");
        let mut stderr = Vec::new();
        loop {
            if let Some(at) = find(&seen, ready.as_bytes(), 0) {
                if let Some(end) = find(&seen, b"\n", at) {
                    if end + 1 != seen.len() {
                        break;
                    }
                    report_stale(&seen[..at], &token);
                    let line = String::from_utf8_lossy(&seen[at + ready.len()..end]);
                    let Some((pid, dir)) = line
                        .split_once(' ')
                        .and_then(|(p, d)| Some((p.parse::<u32>().ok()?, d.to_string())))
                    else {
                        break;
                    };
                    let id = rand::rng().random::<u64>();
                    shells
                        .live
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(Live {
                            id,
                            become_,
                            pid,
                            dir: dir.clone(),
                        });
                    return Ok(Shell {
                        proc,
                        token,
                        busy: false,
                        dir,
                        listed: (shells.live.clone(), id),
                    });
                }
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

    /// Its private directory on the host.
    pub(super) fn dir(&self) -> &str {
        &self.dir
    }

    /// Is the shell still there, with nothing unasked for on its way?
    fn alive(&mut self) -> bool {
        !self.busy && self.proc.next().now_or_never().is_none()
    }

    /// Run `command` with `stdin` and collect its answer; with `then`, send that script (no stdin) in the
    /// same write, so that it runs right after `command` without another
    /// round trip. Its answer is `None` when it could not be had; the shell
    /// is then not used again.
    pub(super) async fn run_then(
        &mut self,
        command: &str,
        stdin: &[u8],
        then: Option<&str>,
    ) -> Result<(ExecOutput, Option<ExecOutput>), RunError> {
        let mut msg = self.frame(command, stdin);
        if let Some(t) = then {
            msg.extend_from_slice(&self.frame(t, b""));
        }
        self.busy = true;
        let mut buf = Vec::new();
        if let Err(e) = self.proc.write(&msg).await {
            // A shell that could not store the frame answers before it
            // has read all of it, and ends.
            let drain = async {
                while let Some(ev) = self.proc.next().await {
                    if let ProcessEvent::Stdout(d) = ev {
                        buf.extend_from_slice(&d);
                    }
                }
            };
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), drain).await;
            return Err(match parse_first(&buf, &self.token) {
                Answer::Unstored => RunError::Unstored,
                _ => RunError::Transport(e),
            });
        }
        let first = self.answer(&mut buf, then.is_some()).await?;
        let second = match then {
            None => None,
            Some(_) => self.answer(&mut buf, false).await.ok(),
        };
        // A lost second answer leaves the shell busy: it is discarded.
        self.busy = then.is_some() && second.is_none();
        Ok((first, second))
    }

    /// One frame of the loop in [`script`].
    fn frame(&self, command: &str, stdin: &[u8]) -> Vec<u8> {
        let mut msg = format!("{} {}\n", command.len(), stdin.len()).into_bytes();
        msg.extend_from_slice(command.as_bytes());
        msg.extend_from_slice(stdin);
        msg.extend_from_slice(self.token.as_bytes());
        msg.push(b'\n');
        msg
    }

    /// Read the next answer, starting with what is in `buf` already; what
    /// follows it stays in `buf` when `more` (another answer is on its way),
    /// and is garbage otherwise.
    async fn answer(&mut self, buf: &mut Vec<u8>, more: bool) -> Result<ExecOutput, RunError> {
        let mut stderr = Vec::new();
        loop {
            if !buf.is_empty() {
                match parse_first(buf, &self.token) {
                    Answer::Partial => {}
                    Answer::Done(out, used) if more || used == buf.len() => {
                        buf.drain(..used);
                        return Ok(out);
                    }
                    Answer::Done(..) | Answer::Garbled => {
                        return Err(RunError::Transport(TransportError::Disconnected(
                            "the remote shell's answer was garbled".into(),
                        )))
                    }
                    Answer::Unstored => return Err(RunError::Unstored),
                    Answer::Lost => return Err(RunError::Lost),
                }
            }
            match self.proc.next().await {
                Some(ProcessEvent::Stdout(d)) => buf.extend_from_slice(&d),
                Some(ProcessEvent::Stderr(d)) => stderr.extend_from_slice(&d),
                Some(ProcessEvent::Exit(_)) | None => {
                    return Err(RunError::Transport(TransportError::Disconnected(format!(
                        "the remote shell ended during a command{}",
                        match String::from_utf8_lossy(&stderr).trim() {
                            "" => String::new(),
                            e => format!(": {e}"),
                        }
                    ))))
                }
            }
        }
    }
}

/// Say at -v which directories of earlier shells a new one removed.
fn report_stale(lines: &[u8], token: &str) {
    let stale = format!("{token} STALE ");
    for line in String::from_utf8_lossy(lines).lines() {
        if let Some(dir) = line.strip_prefix(&stale) {
            tracing::info!(
                target: "drover::cleanup",
                "removed {dir}, left by an earlier run whose shell is gone"
            );
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
    /// The output, and how many bytes of the buffer the answer took.
    Done(ExecOutput, usize),
    /// `F`: the frame could not be stored, nothing ran.
    Unstored,
    /// `L`: the command ran, its output could not be stored.
    Lost,
    Garbled,
}

/// Split a shell's answer into stdout, stderr and status, once complete;
/// nothing may follow it.
#[cfg(test)]
fn parse_answer(buf: &[u8], token: &str) -> Answer {
    match parse_first(buf, token) {
        Answer::Done(_, used) if used != buf.len() => Answer::Garbled,
        a => a,
    }
}

/// The first answer in `buf`, which may be followed by more.
fn parse_first(buf: &[u8], token: &str) -> Answer {
    let open = format!("{token} O\n");
    let err_mark = format!("\n{token} E\n");
    let status_mark = format!("\n{token} S ");
    let unstored = format!("{token} F\n");
    let lost = format!("{token} L\n");
    if buf.len() < open.len() {
        return if [&open, &unstored, &lost]
            .iter()
            .any(|l| l.as_bytes().starts_with(buf))
        {
            Answer::Partial
        } else {
            Answer::Garbled
        };
    }
    if buf.starts_with(unstored.as_bytes()) {
        return Answer::Unstored;
    }
    if buf.starts_with(lost.as_bytes()) {
        return Answer::Lost;
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
    let Some(status) = std::str::from_utf8(&buf[s + status_mark.len()..end])
        .ok()
        .and_then(|t| t.trim().parse::<i32>().ok())
    else {
        return Answer::Garbled;
    };
    // Each output ends with the shell's `.`, proof that it was stored whole.
    let (Some(stdout), Some(stderr)) = (
        buf[open.len()..e].strip_suffix(b"."),
        buf[e + err_mark.len()..s].strip_suffix(b"."),
    ) else {
        return Answer::Garbled;
    };
    Answer::Done(
        ExecOutput {
            status,
            stdout: stdout.to_vec(),
            stderr: stderr.to_vec(),
        },
        end + 1,
    )
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

    /// Local shells whose PATH finds `script` as `dd` first (a broken or
    /// size-limited dd); the directory lives as long as the first value.
    fn with_fake_dd(script: &str) -> (tempfile::TempDir, Arc<LocalShells>) {
        let bin = tempfile::tempdir().expect("tempdir");
        let dd = bin.path().join("dd");
        std::fs::write(&dd, script).expect("write");
        std::fs::set_permissions(&dd, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        let t = Arc::new(LocalShells {
            path: Some(bin.path().to_str().expect("utf8").to_string()),
            ..LocalShells::default()
        });
        (bin, t)
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
    async fn reads_riding_on_a_command_run_after_it_in_the_same_shell() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("f");
        let f = f.to_str().expect("utf8");
        let r = remote();
        let pid = run(&r, "echo $PPID").await.stdout_str();
        let reads = vec![format!("cat {f}"), "echo $PPID".to_string()];
        let trailer = Arc::new(r.trailer(&reads, None));
        let cmd = r.clone().with_trailer(trailer.clone());
        assert!(trailer.outputs().is_none(), "nothing sent yet");
        let out = cmd
            .exec(&format!("echo written >{f}; echo ran"), b"")
            .await
            .expect("runs");
        assert_eq!(out.stdout_str(), "ran\n");
        let found = trailer.outputs().expect("answered with the command");
        let found: Vec<String> = found
            .iter()
            .map(|o| o.as_ref().expect("each read").stdout_str())
            .collect();
        assert_eq!(found, ["written\n", pid.as_str()], "after it, same shell");
        // The shell goes on answering one command at a time.
        assert_eq!(run(&r, "echo next").await.stdout_str(), "next\n");
        assert_eq!(run(&r, "echo $PPID").await.stdout_str(), pid);
    }

    #[tokio::test]
    async fn a_later_command_spoils_the_reads_that_rode_on_an_earlier_one() {
        let r = remote();
        let trailer = Arc::new(r.trailer(&["echo read".to_string()], None));
        let cmd = r.with_trailer(trailer.clone());
        run(&cmd, "true").await;
        assert!(trailer.outputs().is_some());
        run(&cmd, "echo changes things").await;
        assert!(trailer.outputs().is_none(), "read before the last command");
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
        let (_bin, t) = with_fake_dd("#!/bin/sh\necho 'dd: invalid input flag' >&2\nexit 1\n");
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

    /// Feed the shell loop, run by a local `sh`, these bytes and end its
    /// input; its exit status and stdout.
    fn feed_shell(token: &str, input: &[u8]) -> (Option<i32>, String) {
        use std::io::Write as _;
        let mut child = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(script(token, false))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("sh starts");
        let mut stdin = child.stdin.take().expect("piped");
        stdin.write_all(input).expect("write");
        drop(stdin);
        let out = child.wait_with_output().expect("sh ends");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    #[test]
    fn a_truncated_frame_runs_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().to_str().expect("utf8");
        let token = token();
        // The whole script would create `whole`; its first bytes alone
        // create `who`.
        let cmd = format!("touch {d}/who");
        let whole = format!("{cmd}le");
        let mut frame = format!("{} 0\n{cmd}", whole.len()).into_bytes();
        let (status, out) = feed_shell(&token, &frame);
        assert!(!dir.path().join("who").exists(), "a prefix ran: {out}");
        assert!(!out.contains(&format!("{token} S ")), "{out}");
        assert_ne!(status, Some(0));
        // All of it but the end marker: still nothing runs.
        frame = format!("{} 0\n{whole}", whole.len()).into_bytes();
        feed_shell(&token, &frame);
        assert!(!dir.path().join("whole").exists());
        // Stdin cut short: the command does not run on part of it.
        let cmd = format!("cat >{d}/copy");
        frame = format!("{} 100\n{cmd}", cmd.len()).into_bytes();
        frame.extend_from_slice(&[b'x'; 60]);
        feed_shell(&token, &frame);
        assert!(
            !dir.path().join("copy").exists(),
            "ran on part of its stdin"
        );
        // The same frames whole run.
        frame = format!("{} 0\n{whole}{token}\n", whole.len()).into_bytes();
        let (_, out) = feed_shell(&token, &frame);
        assert!(dir.path().join("whole").exists(), "{out}");
        frame = format!("{} 100\n{cmd}", cmd.len()).into_bytes();
        frame.extend_from_slice(&[b'x'; 100]);
        frame.extend_from_slice(format!("{token}\n").as_bytes());
        feed_shell(&token, &frame);
        assert_eq!(
            std::fs::read(dir.path().join("copy")).expect("copied"),
            vec![b'x'; 100]
        );
    }

    #[tokio::test]
    async fn a_frame_the_shell_cannot_store_runs_on_a_channel() {
        // A dd that cannot write more than a few bytes, as on a full
        // /dev/shm.
        let (_bin, t) = with_fake_dd(
            "#!/bin/sh\ncase \"$1\" in bs=[0-9]|bs=[0-9][0-9]|bs=[0-9][0-9][0-9]) exec /bin/dd \"$@\";; esac\n\
             echo 'dd: No space left on device' >&2\nexit 1\n",
        );
        let r = Remote::new(t.clone(), None);
        let shell_pid = run(&r, "echo $PPID").await.stdout_str();
        let data = vec![b'y'; 5000];
        let out = r.exec("wc -c; echo $PPID", &data).await.expect("runs");
        let text = out.stdout_str();
        assert_eq!(text.lines().next().map(str::trim), Some("5000"), "{text}");
        assert_ne!(text.lines().nth(1), Some(shell_pid.trim()), "on a channel");
        assert_eq!(run(&r, "echo again").await.stdout, b"again\n");
    }

    #[tokio::test]
    async fn a_new_shell_removes_directories_whose_shell_is_gone() {
        let shm = std::path::Path::new("/dev/shm");
        let dead = std::process::Command::new("true")
            .spawn()
            .and_then(|mut c| c.wait().map(|_| c.id()))
            .expect("true runs");
        let name = |tag: &str| {
            shm.join(format!(
                ".drover-sh.{tag}{:06x}",
                rand::rng().random::<u32>() & 0xffffff
            ))
        };
        let gone = name("g");
        let alive = name("a");
        for (dir, pid) in [(&gone, dead), (&alive, std::process::id())] {
            std::fs::create_dir(dir).expect("mkdir");
            std::fs::write(dir.join("pid"), format!("{pid}\n")).expect("pid");
        }
        let r = remote();
        assert_eq!(run(&r, "echo ok").await.stdout, b"ok\n");
        assert!(!gone.exists(), "its shell is gone: removed");
        assert!(alive.exists(), "its shell runs: kept");
        std::fs::remove_dir_all(&alive).expect("cleanup");
    }

    #[test]
    fn answers_are_split_at_their_markers() {
        let t = "TOK";
        let done = |b: &[u8]| match parse_answer(b, t) {
            Answer::Done(o, _) => Some((o.stdout, o.stderr, o.status)),
            _ => None,
        };
        assert_eq!(
            done(b"TOK O\nout\n.\nTOK E\nerr.\nTOK S 3\n"),
            Some((b"out\n".to_vec(), b"err".to_vec(), 3))
        );
        assert_eq!(
            done(b"TOK O\n.\nTOK E\n.\nTOK S 0\n"),
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
