//! Read-ahead: the declared reads of many upcoming tasks (see
//! `modules::reads`), run in one exec ([`batch_script`]) by
//! [`super::Remote::exec_batch`]. The executor keeps their outputs per host,
//! under [`key`], until a write makes them stale.

use super::{shell_quote, ExecOutput};

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
    let at = memchr::memmem::rfind(out, mark.as_bytes())?;
    Some(&out[at + mark.len()..])
}

/// Where `needle` first occurs in `hay` at or after `from`.
pub(super) fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    memchr::memmem::find(hay.get(from..)?, needle).map(|p| p + from)
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
