//! Read-ahead: the state reads of many upcoming tasks, run in one exec.
//!
//! The executor asks each upcoming task's module to plan against a
//! recording [`super::Remote`]: the module's first command (a read, for the
//! modules that declare it) is recorded instead of run. The recorded
//! commands then run together in one exec ([`batch_script`]), and their
//! outputs wait in the connection's [`ExecCache`]. When a task later runs
//! the very same command with the same privileges, it gets the stored
//! output without a round trip.
//!
//! The cache is only an accelerator, never a source of stale answers: an
//! entry is used at most once, and any command that is not a hit (a write,
//! a command, a read nobody predicted) empties the cache first, since it may
//! change what the stored reads saw.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use super::{shell_quote, ExecOutput};

/// Outputs of commands run ahead of time on one connection, by key (see
/// [`key`]).
#[derive(Debug, Default)]
pub struct ExecCache {
    /// Several tasks may read the same thing (two lines of one file): one
    /// output each, in order.
    entries: Mutex<HashMap<String, VecDeque<ExecOutput>>>,
    /// Entries dropped unused by a miss, since the last [`ExecCache::take_dropped`].
    dropped: std::sync::atomic::AtomicUsize,
}

impl ExecCache {
    /// An empty cache.
    pub fn new() -> ExecCache {
        ExecCache::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<ExecOutput>>> {
        // A panic while holding the lock leaves a map that is still valid.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Take the stored output for `key`; on a miss, forget everything
    /// stored (the command about to run may change what those reads saw).
    pub fn take_or_clear(&self, key: &str) -> Option<ExecOutput> {
        let mut map = self.lock();
        let hit = map.get_mut(key).and_then(VecDeque::pop_front);
        if map.get(key).is_some_and(VecDeque::is_empty) {
            map.remove(key);
        }
        if hit.is_none() && !map.is_empty() {
            let n = map.values().map(VecDeque::len).sum::<usize>();
            self.dropped
                .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            map.clear();
        }
        hit
    }

    /// A command that cannot have been read ahead is about to run: forget
    /// everything stored, as a miss does.
    pub fn miss(&self) {
        self.take_or_clear("");
    }

    /// How many stored reads were dropped unused since the last call.
    pub fn take_dropped(&self) -> usize {
        self.dropped.swap(0, std::sync::atomic::Ordering::Relaxed)
    }

    /// Store outputs.
    pub fn insert(&self, entries: impl IntoIterator<Item = (String, ExecOutput)>) {
        let mut map = self.lock();
        for (k, v) in entries {
            map.entry(k).or_default().push_back(v);
        }
    }

    /// Nothing stored?
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Forget everything (the connection was replaced).
    pub fn clear(&self) {
        self.lock().clear();
    }
}

/// The key of `command` (environment exports included) run with stdin
/// `stdin` as `become_user` (`None`: the connecting user): all of it, as
/// one string (hashing it with a digest cost more than the map's own hash).
pub fn key(become_user: Option<&str>, command: &str, stdin: &[u8]) -> String {
    let user = become_user.unwrap_or("");
    let mut k = String::with_capacity(user.len() + command.len() + stdin.len() + 8);
    k.push_str(if become_user.is_some() { "u:" } else { "-:" });
    k.push_str(user);
    k.push('\0');
    k.push_str(command);
    k.push('\0');
    k.push_str(&String::from_utf8_lossy(stdin));
    k
}

/// Work that the commands of a batch may leave for its end, where it is
/// done once for all of them (`modules::fs` defers its `stat`s this way:
/// one `stat` process for every file of a stretch of tasks instead of one
/// per file). The commands' texts stay as they are, so their keys do too:
/// a command run on its own does its work itself.
pub trait Deferred: Sync {
    /// Shell code run before the first command, in the batch's shell (so
    /// the commands' subshells see what it defines). `token` is the
    /// batch's own random marker.
    fn prologue(&self, token: &str) -> String;
    /// Shell code run after the last command; what it prints is handed to
    /// [`Deferred::complete`].
    fn epilogue(&self) -> &str;
    /// Complete the outputs of the commands (all of them, in order) from
    /// what the epilogue printed. `false`: they cannot be completed, and
    /// none may be used.
    fn complete(&self, outputs: &mut [&mut ExecOutput], tail: &[u8], token: &str) -> bool;
}

/// One shell script running `commands` one after the other, each in a
/// subshell (`eval`, so no new shell is started) with stdin from
/// /dev/null. Each command's stdout goes straight out between marker lines
/// carrying `token`; its stderr passes through a private temporary file (in
/// /dev/shm when possible, so nothing lands on disk), removed at the end.
/// With `deferred`, its prologue runs first and its epilogue last, after a
/// `<token> T` line (see [`tail`]).
pub fn batch_script(commands: &[String], token: &str, deferred: Option<&dyn Deferred>) -> String {
    let mut s = String::from(
        "umask 077\n\
         __drover_d=$(mktemp -d /dev/shm/.drover-read.XXXXXX 2>/dev/null || mktemp -d) || exit 97\n",
    );
    if let Some(d) = deferred {
        s.push_str(&d.prologue(token));
        s.push('\n');
    }
    for (i, c) in commands.iter().enumerate() {
        s.push_str(&format!(
            "__drover_c={}\n\
             printf '%s O {i}\\n' {token}\n\
             ( eval \"$__drover_c\" ) </dev/null 2>\"$__drover_d/e\"; __drover_s=$?\n\
             printf '\\n%s E\\n' {token}; [ -s \"$__drover_d/e\" ] && cat \"$__drover_d/e\"\n\
             printf '\\n%s S %s\\n' {token} \"$__drover_s\"\n",
            shell_quote(c)
        ));
    }
    if let Some(d) = deferred {
        s.push_str(&format!("printf '%s T\\n' {token}\n"));
        s.push_str(d.epilogue());
        s.push('\n');
    }
    s.push_str("rm -rf \"$__drover_d\"\n");
    s
}

/// What a [`batch_script`] with a [`Deferred`] printed after its last
/// command: the epilogue's output.
pub fn tail<'a>(out: &'a [u8], token: &str) -> Option<&'a [u8]> {
    let mark = format!("{token} T\n");
    let at = out
        .windows(mark.len())
        .rposition(|w| w == mark.as_bytes())?;
    Some(&out[at + mark.len()..])
}

/// Where `needle` first occurs in `hay` at or after `from`.
pub(super) fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// Parse what [`batch_script`] printed: one output per command, by index.
/// Commands whose block is missing or garbled are left out (they simply
/// run again when their task asks).
pub fn parse_batch(out: &[u8], token: &str, count: usize) -> Vec<(usize, ExecOutput)> {
    let mut found = Vec::new();
    let open = format!("{token} O ");
    let err_mark = format!("\n{token} E\n");
    let status_mark = format!("\n{token} S ");
    let mut pos = 0;
    while let Some(start) = find(out, open.as_bytes(), pos) {
        let Some(eol) = find(out, b"\n", start) else {
            break;
        };
        let index = std::str::from_utf8(&out[start + open.len()..eol])
            .ok()
            .and_then(|t| t.trim().parse::<usize>().ok());
        let Some(e) = find(out, err_mark.as_bytes(), eol + 1) else {
            break;
        };
        let Some(st) = find(out, status_mark.as_bytes(), e + err_mark.len() - 1) else {
            break;
        };
        let Some(st_end) = find(out, b"\n", st + status_mark.len()) else {
            break;
        };
        let status = std::str::from_utf8(&out[st + status_mark.len()..st_end])
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok());
        if let (Some(i), Some(status)) = (index, status) {
            if i < count {
                found.push((
                    i,
                    ExecOutput {
                        status,
                        stdout: out[eol + 1..e].to_vec(),
                        stderr: out[e + err_mark.len()..st].to_vec(),
                    },
                ));
            }
        }
        pos = st_end + 1;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_miss_clears_and_a_hit_is_used_once() {
        let c = ExecCache::new();
        let out = |s: &str| ExecOutput {
            status: 0,
            stdout: s.as_bytes().to_vec(),
            stderr: Vec::new(),
        };
        c.insert([("a".to_string(), out("1")), ("b".to_string(), out("2"))]);
        assert_eq!(c.take_or_clear("a").map(|o| o.stdout), Some(b"1".to_vec()));
        assert!(
            c.take_or_clear("a").is_none(),
            "used once; and the miss clears"
        );
        assert!(c.is_empty(), "b was dropped by the miss");
        assert_eq!(c.take_dropped(), 1);
        assert_eq!(c.take_dropped(), 0);
        c.insert([("a".to_string(), out("1")), ("a".to_string(), out("2"))]);
        assert_eq!(c.take_or_clear("a").map(|o| o.stdout), Some(b"1".to_vec()));
        assert_eq!(
            c.take_or_clear("a").map(|o| o.stdout),
            Some(b"2".to_vec()),
            "same read twice"
        );
        assert!(c.is_empty());
    }

    #[test]
    fn keys_differ_by_user_command_and_stdin() {
        let k = key(Some("root"), "cat /x", b"");
        assert_ne!(k, key(None, "cat /x", b""));
        assert_ne!(k, key(Some("root"), "cat /y", b""));
        assert_ne!(k, key(Some("root"), "cat /x", b"in"));
        assert_eq!(k, key(Some("root"), "cat /x", b""));
    }

    #[test]
    fn the_batch_script_runs_each_command_and_reports_it() {
        let cmds = vec![
            "echo out; echo err >&2; exit 3".to_string(),
            "printf 'a b\\n'; cat".to_string(),
            "exit 0".to_string(),
            "printf 'no newline'; f() { echo in-f; }; f; set -- a b; echo $#".to_string(),
        ];
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(batch_script(&cmds, "TOK123", None))
            .output()
            .expect("sh runs");
        assert!(out.status.success());
        let got = parse_batch(&out.stdout, "TOK123", cmds.len());
        assert_eq!(got.len(), 4);
        assert_eq!(got[0].1.status, 3);
        assert_eq!(got[0].1.stdout, b"out\n");
        assert_eq!(got[0].1.stderr, b"err\n");
        assert_eq!(got[1].1.stdout, b"a b\n", "stdin is /dev/null");
        assert_eq!(got[2].1.stdout, b"");
        assert_eq!(got[2].1.status, 0);
        assert_eq!(got[3].1.stdout, b"no newlinein-f\n2\n");
        assert_eq!(got[3].1.stderr, b"");
    }
}
