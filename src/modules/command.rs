//! `command` and `shell`: run a program on the host. Two module structs share
//! one implementation; `command` runs the words of its free form (split like
//! Python's `shlex`) without a shell, `shell` hands the text to `/bin/sh -c`
//! (or `executable -c`).
//!
//! The command runs in one exec: `chdir`, the `creates`/`removes` test and
//! the command itself, with the exit status and timestamps reported on a
//! marker line after the command's output. With `creates`/`removes`, the
//! plan first tests the guard alone (a pure read, which the engine batches
//! with other tasks' reads), so a satisfied guard costs no round trip of its
//! own.

use std::time::Instant;

use async_trait::async_trait;
use rand::Rng;
use serde::Deserialize;

use super::args::{opt_bool_ish, opt_string_ish, opt_strings_ish, parse_bool};
use super::cmdargs::extract_kv;
use super::{
    Decision, Module, ModuleCtx, ModuleError, Observed, Plan, Protocol, ReadCtx, ReadSet, Scope,
    ScopePath,
};
use crate::transport::{shell_quote, ExecOutput, Remote};
use crate::{Map, Value};

/// Arguments of `command` and `shell`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CmdArgs {
    /// The free-form text (`command: ls -l`).
    #[serde(default, rename = "_raw_params", deserialize_with = "opt_string_ish")]
    raw_params: Option<String>,
    /// The command as an argument instead of free form.
    #[serde(default, deserialize_with = "opt_string_ish")]
    cmd: Option<String>,
    /// The program and its arguments as a list (`command` only).
    #[serde(default, deserialize_with = "opt_strings_ish")]
    argv: Option<Vec<String>>,
    /// Directory to run in.
    #[serde(default, deserialize_with = "opt_string_ish")]
    chdir: Option<String>,
    /// Do not run when this path (a glob) exists.
    #[serde(default, deserialize_with = "opt_string_ish")]
    creates: Option<String>,
    /// Do not run unless this path (a glob) exists.
    #[serde(default, deserialize_with = "opt_string_ish")]
    removes: Option<String>,
    /// Shell to run the text with (`shell`; `command` ignores it as Ansible does).
    #[serde(default, deserialize_with = "opt_string_ish")]
    executable: Option<String>,
    /// Data for the command's standard input.
    #[serde(default, deserialize_with = "opt_string_ish")]
    stdin: Option<String>,
    /// Append a newline to `stdin` (default yes).
    #[serde(default, deserialize_with = "opt_bool_ish")]
    stdin_add_newline: Option<bool>,
    /// Strip trailing newlines from stdout and stderr (default yes).
    #[serde(default, deserialize_with = "opt_bool_ish")]
    strip_empty_ends: Option<bool>,
    /// Expand `~` and `$VARS` in the words of `command` (default yes).
    #[serde(default, deserialize_with = "opt_bool_ish")]
    expand_argument_vars: Option<bool>,
}

/// The `command` (`SHELL = false`) and `shell` (`SHELL = true`) modules:
/// the same arguments and the same plan, told apart by how the text runs.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct Cmd<const SHELL: bool>(CmdArgs);

/// The `command` module: the words run without a shell.
pub type Command = Cmd<false>;

/// The `shell` module: the text runs in `/bin/sh` (or `executable`).
pub type Shell = Cmd<true>;

/// Options Ansible takes out of the free-form text as `key=value` tokens.
const INLINE_KEYS: &[&str] = &[
    "creates",
    "removes",
    "chdir",
    "executable",
    "warn",
    "stdin",
    "stdin_add_newline",
    "strip_empty_ends",
];

/// A command ready to run.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// What the host's shell runs (after `exec`).
    line: String,
    /// What the result reports as `cmd`: the words, or the shell text.
    cmd: Value,
    /// Directory to change to first.
    chdir: Option<String>,
    /// Skip when this glob matches.
    creates: Option<String>,
    /// Skip unless this glob matches.
    removes: Option<String>,
    /// Bytes for the command's stdin (newline already added).
    stdin: Vec<u8>,
    /// Strip trailing newlines from the output.
    strip: bool,
    /// Ansible's warnings about the arguments, for the result.
    warnings: Vec<String>,
    /// `command`'s program, quoted for the host, and whether it is a path
    /// (else it is looked up in `$PATH`).
    program: Option<(String, bool)>,
}

impl Prepared {
    /// Add what every result of the command carries.
    fn annotate(&self, data: &mut Map) {
        if !self.warnings.is_empty() {
            let w = self.warnings.iter().cloned().map(Value::from).collect();
            data.insert("warnings".into(), Value::Array(w));
        }
    }
}

/// What `apply` does.
#[derive(Debug)]
pub enum CmdChange {
    /// Run the command (testing `creates`/`removes` in the same exec).
    Run(Prepared),
}

impl CmdArgs {
    fn prepare(&self, shell: bool) -> Result<Prepared, ModuleError> {
        let no_command = || fail_data("no command given", Map::new(), Some(256));
        if self.raw_params.as_deref().is_none_or(str::is_empty)
            && self.cmd.is_none()
            && self.argv.is_none()
        {
            return Err(fail_data(
                "one of the following is required: _raw_params, cmd, argv",
                Map::new(),
                None,
            ));
        }
        // Only the free form carries `key=value` options; `cmd:` is taken as is.
        let (inline, text) = match (&self.raw_params, &self.cmd) {
            (Some(_), Some(_)) => {
                return Err(ModuleError::Args(
                    "give the command as free form or as cmd, not both".into(),
                ))
            }
            (Some(t), None) => {
                let (opts, rest) = extract_kv(t, INLINE_KEYS);
                (opts, Some(rest))
            }
            (None, Some(t)) => (Vec::new(), Some(t.clone())),
            (None, None) => (Vec::new(), None),
        };
        let mut chdir = self.chdir.clone();
        let mut creates = self.creates.clone();
        let mut removes = self.removes.clone();
        let mut executable = self.executable.clone();
        let mut stdin = self.stdin.clone();
        let mut add_newline = self.stdin_add_newline;
        let mut strip = self.strip_empty_ends;
        for (k, v) in inline {
            let flag = || {
                parse_bool(&Value::from(v.as_str()))
                    .ok_or_else(|| ModuleError::Args(format!("{k}={v}: not a boolean")))
            };
            match k.as_str() {
                "creates" => creates = creates.or(Some(v)),
                "removes" => removes = removes.or(Some(v)),
                "chdir" => chdir = chdir.or(Some(v)),
                "executable" => executable = executable.or(Some(v)),
                "stdin" => stdin = stdin.or(Some(v)),
                "stdin_add_newline" => add_newline = add_newline.or(Some(flag()?)),
                "strip_empty_ends" => strip = strip.or(Some(flag()?)),
                // `warn` was removed from Ansible; old playbooks still carry it.
                _ => {}
            }
        }
        let text = text.filter(|t| !t.trim().is_empty());
        let argv = self.argv.as_ref().filter(|a| !a.is_empty());
        if text.is_some() && argv.is_some() {
            return Err(fail_data(
                "parameters are mutually exclusive: _raw_params|cmd|argv",
                Map::new(),
                None,
            ));
        }
        let mut program = None;
        let mut warnings = Vec::new();
        if let Some(exe) = executable.as_deref().filter(|e| !shell && !e.is_empty()) {
            warnings.push(format!(
                "As of Ansible 2.4, the parameter 'executable' is no longer supported with \
                 the 'command' module. Not using '{exe}'."
            ));
        }
        let (line, cmd) = if shell {
            if argv.is_some() {
                return Err(ModuleError::Args("shell takes no argv".into()));
            }
            let text = text.ok_or_else(no_command)?;
            let exe = executable.unwrap_or_else(|| "/bin/sh".into());
            (
                format!("{} -c {}", shell_quote(&exe), shell_quote(&text)),
                Value::from(text),
            )
        } else {
            let words = match (text, argv) {
                (Some(t), _) => {
                    crate::shlex::words(&t).map_err(|e| ModuleError::Args(e.to_string()))?
                }
                (None, Some(a)) => a.clone(),
                (None, None) => return Err(no_command()),
            };
            if words.is_empty() {
                return Err(no_command());
            }
            let expand = self.expand_argument_vars.unwrap_or(true);
            let line: Vec<String> = words
                .iter()
                .map(|w| {
                    if expand {
                        quote_word(w, Expand::VARS)
                    } else {
                        shell_quote(w)
                    }
                })
                .collect();
            program = Some((line[0].clone(), words[0].contains('/')));
            (line.join(" "), Value::from(words))
        };
        let mut stdin = stdin.map(String::into_bytes).unwrap_or_default();
        if !stdin.is_empty() && add_newline.unwrap_or(true) {
            stdin.push(b'\n');
        }
        Ok(Prepared {
            line,
            cmd,
            chdir,
            creates,
            removes,
            stdin,
            strip: strip.unwrap_or(true),
            warnings,
            program,
        })
    }
}

/// Which expansions a quoted word keeps.
#[derive(Clone, Copy)]
struct Expand {
    vars: bool,
    glob: bool,
}

impl Expand {
    const VARS: Expand = Expand {
        vars: true,
        glob: false,
    };
    const PATH: Expand = Expand {
        vars: true,
        glob: true,
    };
}

/// Quote `word` for the host's shell, keeping what Ansible expands on the
/// host: a leading `~` or `~user/` (Python's `expanduser`), `$NAME` and
/// `${NAME}` (Python's `expandvars`: an unset variable stays as written) and,
/// for `creates`/`removes`, glob characters.
fn quote_word(word: &str, expand: Expand) -> String {
    let mut out = String::new();
    let mut lit = String::new();
    let mut rest = word;
    if let Some(after) = word.strip_prefix('~') {
        let end = after.find('/').unwrap_or(after.len());
        let user = &after[..end];
        if user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            // The slash ends the tilde prefix only when it is unquoted.
            out.push('~');
            out.push_str(user);
            rest = &after[end..];
            if let Some(r) = rest.strip_prefix('/') {
                out.push('/');
                rest = r;
            }
        }
    }
    let flush = |lit: &mut String, out: &mut String| {
        if !lit.is_empty() {
            out.push_str(&shell_quote(&std::mem::take(lit)));
        }
    };
    let is_ident = |s: &str| {
        s.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    };
    let mut chars = rest.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if expand.vars && c == '$' {
            let after = &rest[i + 1..];
            if let Some(inner) = after.strip_prefix('{') {
                if let Some(close) = inner.find('}') {
                    let name = &inner[..close];
                    if is_ident(name) {
                        flush(&mut lit, &mut out);
                        out.push_str(&format!("\"${{{name}-\\${{{name}\\}}}}\""));
                        let skip = close + 2;
                        while chars.peek().is_some_and(|(j, _)| *j <= i + skip) {
                            chars.next();
                        }
                        continue;
                    }
                }
            } else {
                let len = after
                    .bytes()
                    .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                    .count();
                let name = &after[..len];
                if is_ident(name) {
                    flush(&mut lit, &mut out);
                    out.push_str(&format!("\"${{{name}-\\${name}}}\""));
                    while chars.peek().is_some_and(|(j, _)| *j <= i + len) {
                        chars.next();
                    }
                    continue;
                }
            }
        }
        if expand.glob && matches!(c, '*' | '?' | '[' | ']') {
            flush(&mut lit, &mut out);
            out.push(c);
            continue;
        }
        lit.push(c);
    }
    flush(&mut lit, &mut out);
    if out.is_empty() {
        out.push_str("''");
    }
    out
}

/// Quote a `creates`/`removes` path for the host's shell: `~`, `$VARS`
/// and glob characters expand there (the `script` module's guards).
pub(super) fn quote_glob(path: &str) -> String {
    quote_word(path, Expand::PATH)
}

/// Quote a path for the host's shell as Ansible's `type: path` expands it:
/// `~`, `~user/` and `$VARS` (set ones) are expanded there.
pub(super) fn quote_path(path: &str) -> String {
    quote_word(path, Expand::VARS)
}

/// Build the script: change directory, test `creates`/`removes`, then run
/// (or, for check mode, only say that it would run). Every outcome ends in a
/// line `\n<marker> <what>` on stdout.
fn script(p: &Prepared, marker: &str, run: bool) -> String {
    let say = |what: &str| format!("printf '\\n%s {what}\\n' {marker}");
    let mut s = String::new();
    if let Some(dir) = &p.chdir {
        // Physically, as Python's os.chdir: the shell's $PWD names the
        // directory a link leads to, not the link.
        s.push_str(&format!(
            "cd -P -- {} || {{ {}; exit 0; }}; ",
            quote_word(dir, Expand::VARS),
            say("nochdir")
        ));
    }
    if let Some(c) = &p.creates {
        s.push_str(&format!(
            "set -- {}; if [ -e \"$1\" ] || [ -L \"$1\" ]; then {}; exit 0; fi; ",
            quote_word(c, Expand::PATH),
            say("creates")
        ));
    }
    if let Some(r) = &p.removes {
        s.push_str(&format!(
            "set -- {}; if ! [ -e \"$1\" ] && ! [ -L \"$1\" ]; then {}; exit 0; fi; ",
            quote_word(r, Expand::PATH),
            say("removes")
        ));
    }
    if let Some((program, is_path)) = p.program.as_ref().filter(|_| run) {
        // Python cannot start a program that is not there: the task fails
        // without the shell's complaint on stderr.
        let found = if *is_path {
            format!("[ -e {program} ]")
        } else {
            format!(
                "f=; o=$IFS; IFS=:; for d in $PATH; do if [ -f \"${{d:-.}}\"/{program} ] && [ -x \"${{d:-.}}\"/{program} ]; then f=1; break; fi; done; IFS=$o; [ -n \"$f\" ]"
            )
        };
        s.push_str(&format!("{found} || {{ {}; exit 0; }}; ", say("notfound")));
    }
    if run {
        let date = "date '+%s.%N|%Y-%m-%d %H:%M:%S.%N'";
        s.push_str(&format!(
            "s=$({date}); ( exec {} ); rc=$?; e=$({date}); printf '\\n%s done %s|%s|%s\\n' {marker} \"$rc\" \"$s\" \"$e\"",
            p.line
        ));
    } else {
        s.push_str(&say("run"));
    }
    s
}

/// What the script reported.
#[derive(Debug, PartialEq)]
enum Report {
    /// `chdir` failed; its error.
    NoChdir(String),
    /// `command`'s program does not exist.
    NotFound,
    /// `creates` exists.
    Creates,
    /// `removes` does not exist.
    Removes,
    /// Check mode: the command would run.
    WouldRun,
    /// The command ran.
    Ran {
        rc: i64,
        stdout: Vec<u8>,
        stderr: Vec<u8>,
        /// Start and end as the host's clock gave them.
        times: Option<Times>,
    },
}

/// Start and end of a command: `date +%s.%N` and local time, each.
#[derive(Debug, PartialEq)]
struct Times {
    /// `date +%s.%N` before the command.
    start_epoch: String,
    /// Local time before the command.
    start_local: String,
    /// `date +%s.%N` after the command.
    end_epoch: String,
    /// Local time after the command.
    end_local: String,
}

fn parse_report(out: ExecOutput, marker: &str) -> Report {
    let needle = format!("\n{marker} ");
    let at = memchr::memmem::rfind(&out.stdout, needle.as_bytes());
    let Some(at) = at else {
        // The wrapper itself ended (a signal, or `exec` replaced it).
        return Report::Ran {
            rc: i64::from(out.status),
            stdout: out.stdout,
            stderr: out.stderr,
            times: None,
        };
    };
    let line_start = at + needle.len();
    let line_end = out.stdout[line_start..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(out.stdout.len(), |p| line_start + p);
    let line = String::from_utf8_lossy(&out.stdout[line_start..line_end]).into_owned();
    // Output of background processes after the marker still belongs to stdout.
    let mut stdout = out.stdout[..at].to_vec();
    stdout.extend_from_slice(out.stdout.get(line_end + 1..).unwrap_or_default());
    match line.split_once(' ') {
        None if line == "nochdir" => Report::NoChdir(out.stderr_str().trim().to_string()),
        None if line == "notfound" => Report::NotFound,
        None if line == "creates" => Report::Creates,
        None if line == "removes" => Report::Removes,
        None if line == "run" => Report::WouldRun,
        Some(("done", rest)) => {
            let f: Vec<&str> = rest.splitn(5, '|').collect();
            let rc = f.first().and_then(|r| r.trim().parse().ok()).unwrap_or(-1);
            let times = (f.len() == 5).then(|| Times {
                start_epoch: f[1].to_string(),
                start_local: f[2].to_string(),
                end_epoch: f[3].to_string(),
                end_local: f[4].to_string(),
            });
            Report::Ran {
                rc,
                stdout,
                stderr: out.stderr,
                times,
            }
        }
        _ => Report::Ran {
            rc: i64::from(out.status),
            stdout,
            stderr: out.stderr,
            times: None,
        },
    }
}

/// Nanoseconds since the epoch from `date +%s.%N`.
fn epoch_nanos(s: &str) -> Option<i128> {
    let (secs, nanos) = s.split_once('.')?;
    let secs: i128 = secs.parse().ok()?;
    let nanos: String = nanos
        .chars()
        .chain(std::iter::repeat('0'))
        .take(9)
        .collect();
    Some(secs * 1_000_000_000 + nanos.parse::<i128>().ok()?)
}

/// Python's `str(datetime)` precision: microseconds.
fn local_time(s: &str) -> String {
    match s.split_once('.') {
        Some((whole, frac)) if frac.len() > 6 && frac.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{whole}.{}", &frac[..6])
        }
        _ => s.to_string(),
    }
}

/// Python's `str(timedelta)`: `H:MM:SS[.ffffff]`, with days in front.
fn timedelta(nanos: i128) -> String {
    let micros = nanos.max(0) / 1000;
    let (days, rem) = (micros / 86_400_000_000, micros % 86_400_000_000);
    let (secs, frac) = (rem / 1_000_000, rem % 1_000_000);
    let mut out = match days {
        0 => String::new(),
        1 => "1 day, ".to_string(),
        d => format!("{d} days, "),
    };
    out.push_str(&format!(
        "{}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    ));
    if frac != 0 {
        out.push_str(&format!(".{frac:06}"));
    }
    out
}

fn text(bytes: &[u8], strip: bool) -> String {
    let s = String::from_utf8_lossy(bytes);
    if strip {
        s.trim_end_matches(['\r', '\n']).to_string()
    } else {
        s.into_owned()
    }
}

fn lines(s: &str) -> Value {
    Value::from(s.lines().map(str::to_string).collect::<Vec<_>>())
}

/// The result fields of a command that did not run.
fn not_run(p: &Prepared, msg: String) -> Map {
    let mut data = Map::new();
    data.insert("cmd".into(), p.cmd.clone());
    data.insert("rc".into(), Value::from(0));
    for k in ["stdout", "stderr"] {
        data.insert(k.into(), Value::from(""));
        data.insert(format!("{k}_lines"), Value::Array(Vec::new()));
    }
    for k in ["start", "end", "delta"] {
        data.insert(k.into(), Value::Null);
    }
    data.insert("msg".into(), Value::from(msg));
    p.annotate(&mut data);
    data
}

fn fail_data(msg: &str, mut data: Map, rc: Option<i64>) -> ModuleError {
    if let Some(rc) = rc {
        data.insert("rc".into(), Value::from(rc));
    }
    data.insert("msg".into(), Value::from(msg));
    ModuleError::Failed {
        msg: msg.into(),
        data,
    }
}

/// The message of a command check mode does not run.
const WOULD_RUN: &str = "Command would have run if not in check mode";

/// What running the script came to.
enum Finished {
    /// `creates`/`removes` said not to run; the result to register.
    Skipped(Map),
    /// It would run (check mode).
    WouldRun,
    /// It ran and exited 0; the result to register.
    Ran(Map),
}

async fn execute(
    remote: &Remote,
    p: &Prepared,
    run: bool,
    check: bool,
) -> Result<Finished, ModuleError> {
    // Testing the guard alone prints nothing of its own: a fixed marker keeps
    // that script the same from run to run, so a read-ahead can answer it.
    let marker = if run {
        format!("@@drover-{:016x}", rand::rng().random::<u64>())
    } else {
        GUARD_MARKER.to_string()
    };
    let started = Instant::now();
    let stdin: &[u8] = if run { &p.stdin } else { b"" };
    let out = remote.exec(&script(p, &marker, run), stdin).await?;
    finish(p, out, &marker, check, started.elapsed())
}

/// The marker of the guard's own script (see [`guard_script`]).
const GUARD_MARKER: &str = "@@drover-guard";

/// The script testing `creates`/`removes` alone: a pure read.
fn guard_script(p: &Prepared) -> String {
    script(p, GUARD_MARKER, false)
}

/// What `out`, the output of [`script`] with `marker`, says.
fn finish(
    p: &Prepared,
    out: crate::transport::ExecOutput,
    marker: &str,
    check: bool,
    elapsed: std::time::Duration,
) -> Result<Finished, ModuleError> {
    let shoulda = if check { "Would" } else { "Did" };
    match parse_report(out, marker) {
        Report::NotFound => {
            let mut data = not_run(p, String::new());
            data.insert("rc".into(), Value::from(2));
            Err(fail_data("Error executing command.", data, None))
        }
        Report::NoChdir(err) => {
            let mut data = not_run(p, String::new());
            data.insert("rc".into(), Value::Null);
            Err(fail_data(
                &format!("Unable to change directory before execution: {err}"),
                data,
                None,
            ))
        }
        Report::Creates => Ok(Finished::Skipped(not_run(
            p,
            format!(
                "{shoulda} not run command since '{}' exists",
                p.creates.as_deref().unwrap_or_default()
            ),
        ))),
        Report::Removes => Ok(Finished::Skipped(not_run(
            p,
            format!(
                "{shoulda} not run command since '{}' does not exist",
                p.removes.as_deref().unwrap_or_default()
            ),
        ))),
        Report::WouldRun => Ok(Finished::WouldRun),
        Report::Ran {
            rc,
            stdout,
            stderr,
            times,
        } => {
            let mut data = Map::new();
            p.annotate(&mut data);
            data.insert("cmd".into(), p.cmd.clone());
            data.insert("rc".into(), Value::from(rc));
            let (stdout, stderr) = (text(&stdout, p.strip), text(&stderr, p.strip));
            data.insert("stdout_lines".into(), lines(&stdout));
            data.insert("stderr_lines".into(), lines(&stderr));
            data.insert("stdout".into(), Value::from(stdout));
            data.insert("stderr".into(), Value::from(stderr));
            let (start, end, delta) = match &times {
                Some(t) => {
                    let nanos = match (epoch_nanos(&t.start_epoch), epoch_nanos(&t.end_epoch)) {
                        (Some(a), Some(b)) => b - a,
                        _ => elapsed.as_nanos() as i128,
                    };
                    (
                        Value::from(local_time(&t.start_local)),
                        Value::from(local_time(&t.end_local)),
                        Value::from(timedelta(nanos)),
                    )
                }
                None => (
                    Value::Null,
                    Value::Null,
                    Value::from(timedelta(elapsed.as_nanos() as i128)),
                ),
            };
            data.insert("start".into(), start);
            data.insert("end".into(), end);
            data.insert("delta".into(), delta);
            if rc != 0 {
                return Err(fail_data("non-zero return code", data, None));
            }
            data.insert("msg".into(), Value::from(""));
            Ok(Finished::Ran(data))
        }
    }
}

/// How a command learns the host's state: a `creates`/`removes` guard is
/// a declared read; without one there is nothing to read, and what the
/// command does cannot be declared.
fn cmd_reads(args: &CmdArgs, shell: bool) -> Result<Protocol, ModuleError> {
    let p = args.prepare(shell)?;
    let guards = [&p.creates, &p.removes, &p.chdir];
    if p.creates.is_none() && p.removes.is_none() {
        return Ok(Protocol::Imperative);
    }
    // A literal absolute path scopes the read; a glob or a relative path
    // (under `chdir`) could be anything.
    let literal = |g: &str| g.starts_with('/') && !g.contains(['*', '?', '[', '~', '$']);
    let scope = if guards.iter().all(|g| g.as_deref().is_none_or(literal)) {
        Scope::Paths(
            guards
                .iter()
                .filter_map(|g| (*g).clone())
                .map(ScopePath::from)
                .collect(),
        )
    } else {
        Scope::Host
    };
    Ok(Protocol::Declared(ReadSet::one(guard_script(&p), scope)))
}

/// Decide from the guard's output (see [`cmd_reads`]).
fn cmd_decide(
    args: &CmdArgs,
    shell: bool,
    observed: &Observed,
    check: bool,
) -> Result<Decision<CmdChange>, ModuleError> {
    let p = args.prepare(shell)?;
    // The guard alone first; apply tests it again with the command, in the
    // same exec, so nothing changes in between.
    let out = observed.output(0)?.clone();
    let plan = match finish(&p, out, GUARD_MARKER, check, std::time::Duration::ZERO)? {
        Finished::Skipped(data) => Plan::Unchanged(data),
        Finished::WouldRun | Finished::Ran(_) if check => Plan::Change {
            data: not_run(&p, WOULD_RUN.into()),
            change: CmdChange::Run(p),
            diff: None,
        },
        Finished::WouldRun | Finished::Ran(_) => Plan::Run(CmdChange::Run(p)),
    };
    Ok(Decision::Plan(plan))
}

async fn apply_cmd(ctx: &ModuleCtx<'_>, change: CmdChange) -> Result<Map, ModuleError> {
    match change {
        CmdChange::Run(p) => match execute(ctx.remote, &p, true, false).await? {
            Finished::Ran(data) => Ok(data),
            // `creates`/`removes` said no: drive() reports it unchanged.
            Finished::Skipped(mut data) => {
                data.insert("changed".into(), Value::Bool(false));
                Ok(data)
            }
            Finished::WouldRun => Ok(Map::new()),
        },
    }
}

/// Arguments of both modules.
const SHARED_ARGS: [&str; 9] = [
    "_raw_params",
    "cmd",
    "chdir",
    "creates",
    "removes",
    "executable",
    "stdin",
    "stdin_add_newline",
    "strip_empty_ends",
];

/// `command` also takes the words as a list, and expands variables in them.
const COMMAND_ARGS: [&str; 11] = {
    let mut all = [""; 11];
    let mut i = 0;
    while i < SHARED_ARGS.len() {
        all[i] = SHARED_ARGS[i];
        i += 1;
    }
    all[9] = "argv";
    all[10] = "expand_argument_vars";
    all
};

#[async_trait]
impl<const SHELL: bool> Module for Cmd<SHELL> {
    const NAME: &'static str = if SHELL { "shell" } else { "command" };
    const ARGS: &'static [&'static str] = if SHELL { &SHARED_ARGS } else { &COMMAND_ARGS };
    const FREE_FORM: bool = true;
    type Change = CmdChange;

    fn reads(&self, _ctx: &ReadCtx<'_>) -> Result<Protocol, ModuleError> {
        cmd_reads(&self.0, SHELL)
    }

    fn decide(
        &self,
        observed: &Observed,
        ctx: &ReadCtx<'_>,
    ) -> Result<Decision<CmdChange>, ModuleError> {
        cmd_decide(&self.0, SHELL, observed, ctx.check)
    }

    async fn run_imperative(&self, _ctx: &ModuleCtx<'_>) -> Result<Plan<CmdChange>, ModuleError> {
        let p = self.0.prepare(SHELL)?;
        Ok(Plan::Run(CmdChange::Run(p)))
    }

    fn check_skipped(&self, change: &CmdChange) -> Map {
        let CmdChange::Run(p) = change;
        not_run(p, WOULD_RUN.into())
    }

    async fn apply(&self, ctx: &ModuleCtx<'_>, change: CmdChange) -> Result<Map, ModuleError> {
        apply_cmd(ctx, change).await
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::modules::testutil::run;
    use crate::modules::Outcome;

    async fn command(args: Value, check: bool) -> Result<Outcome, ModuleError> {
        run::<Command>(args, check).await
    }

    async fn shell(args: Value, check: bool) -> Result<Outcome, ModuleError> {
        run::<Shell>(args, check).await
    }

    fn tmp() -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().to_str().expect("utf8").to_string();
        (dir, p)
    }

    #[tokio::test]
    async fn command_runs_words_without_a_shell() {
        let out = command(
            json!({"_raw_params": "printf '%s|' 'a b' c;ls $((1+1)) \"x y\""}),
            false,
        )
        .await
        .expect("runs");
        assert!(out.changed);
        assert_eq!(out.data["stdout"], "a b|c;ls|$((1+1))|x y|");
        assert_eq!(out.data["rc"], 0);
        assert_eq!(
            out.data["cmd"],
            json!(["printf", "%s|", "a b", "c;ls", "$((1+1))", "x y"])
        );
        assert_eq!(out.data["stdout_lines"], json!(["a b|c;ls|$((1+1))|x y|"]));
        assert!(out.data["delta"]
            .as_str()
            .is_some_and(|d| d.starts_with("0:00:")));
        assert!(
            out.data["start"].as_str().is_some_and(|d| d.len() == 26),
            "{:?}",
            out.data["start"]
        );
    }

    #[tokio::test]
    async fn command_expands_home_and_set_variables_only() {
        let home = std::env::var("HOME").expect("HOME");
        let out = command(
            json!({"cmd": "echo ~ ~/x $HOME ${HOME}/y $DROVER_UNSET_VAR ${DROVER_UNSET_VAR} $1 a$"}),
            false,
        )
        .await
        .expect("runs");
        assert_eq!(
            out.data["stdout"],
            format!(
                "{home} {home}/x {home} {home}/y $DROVER_UNSET_VAR ${{DROVER_UNSET_VAR}} $1 a$"
            )
        );
        let out = command(
            json!({"argv": ["echo", "$HOME"], "expand_argument_vars": false}),
            false,
        )
        .await
        .expect("runs");
        assert_eq!(out.data["stdout"], "$HOME");
    }

    #[tokio::test]
    async fn shell_runs_text_and_fails_on_nonzero() {
        match shell(
            json!({"_raw_params": "echo out; echo err >&2; exit 3"}),
            false,
        )
        .await
        {
            Err(ModuleError::Failed { msg, data }) => {
                assert_eq!(msg, "non-zero return code");
                assert_eq!(data["rc"], 3);
                assert_eq!(data["stdout"], "out");
                assert_eq!(data["stderr"], "err");
                assert_eq!(data["cmd"], "echo out; echo err >&2; exit 3");
            }
            other => panic!("{other:?}"),
        }
        let out = shell(
            json!({"_raw_params": "echo $0", "executable": "/bin/bash"}),
            false,
        )
        .await
        .expect("runs");
        assert_eq!(out.data["stdout"], "/bin/bash");
    }

    #[tokio::test]
    async fn stdin_and_strip() {
        let out = command(json!({"_raw_params": "od -c", "stdin": "hi"}), false)
            .await
            .expect("runs");
        assert!(out.data["stdout"]
            .as_str()
            .is_some_and(|s| s.contains("h   i  \\n")));
        let out = shell(
            json!({"_raw_params": "cat; printf '\\n\\n'", "stdin": "hi", "stdin_add_newline": "no", "strip_empty_ends": false}),
            false,
        )
        .await
        .expect("runs");
        assert_eq!(out.data["stdout"], "hi\n\n");
        assert_eq!(out.data["stdout_lines"], json!(["hi", ""]));
    }

    #[tokio::test]
    async fn a_satisfied_creates_skips_the_command() {
        let (_d, dir) = tmp();
        let args = json!({"_raw_params": format!("touch {dir}/made creates={dir}/m*")});
        let first = command(args.clone(), false).await.expect("first");
        assert!(first.changed);
        assert!(std::path::Path::new(&format!("{dir}/made")).exists());
        let second = command(args, false).await.expect("second");
        assert!(!second.changed);
        assert_eq!(
            second.data["msg"],
            format!("Did not run command since '{dir}/m*' exists")
        );
        assert_eq!(second.data["rc"], 0);
    }

    #[tokio::test]
    async fn cmd_argument_keeps_key_value_words() {
        let out = command(json!({"cmd": "echo creates=/x chdir=/"}), false)
            .await
            .expect("runs");
        assert_eq!(out.data["stdout"], "creates=/x chdir=/");
    }

    #[tokio::test]
    async fn removes_and_chdir() {
        let (_d, dir) = tmp();
        std::fs::write(format!("{dir}/gone"), "").expect("write");
        let args = json!({"_raw_params": "rm gone", "chdir": dir, "removes": "gone"});
        assert!(shell(args.clone(), false).await.expect("first").changed);
        let second = shell(args, false).await.expect("second");
        assert!(!second.changed);
        assert_eq!(
            second.data["msg"],
            "Did not run command since 'gone' does not exist"
        );
        let out = command(json!({"_raw_params": format!("chdir={dir} pwd")}), false)
            .await
            .expect("pwd");
        assert_eq!(out.data["stdout"], dir);
        match command(
            json!({"_raw_params": "pwd", "chdir": format!("{dir}/nope")}),
            false,
        )
        .await
        {
            Err(ModuleError::Failed { msg, .. }) => {
                assert!(
                    msg.starts_with("Unable to change directory before execution"),
                    "{msg}"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn chdir_through_a_link_is_physical() {
        let (_d, dir) = tmp();
        std::fs::create_dir_all(format!("{dir}/root/site")).expect("mkdir");
        std::os::unix::fs::symlink(format!("{dir}/root"), format!("{dir}/www")).expect("link");
        let out = shell(
            json!({"_raw_params": "dirname \"$PWD\"", "chdir": format!("{dir}/www/site")}),
            false,
        )
        .await
        .expect("ran");
        let parent = out.data["stdout"].as_str().expect("stdout").to_string();
        assert!(parent.ends_with("/root"), "{parent}");
    }

    #[tokio::test]
    async fn check_mode_runs_nothing() {
        let (_d, dir) = tmp();
        let made = format!("{dir}/made");
        let plain = shell(json!({"_raw_params": format!("touch {made}")}), true)
            .await
            .expect("check");
        assert_eq!(plain.skipped.as_deref(), Some("running in check mode"));
        // Ansible's result says why (its `skipped: true` comes from the engine).
        assert_eq!(plain.data["msg"], WOULD_RUN);
        assert_eq!(plain.data["rc"], 0);
        let with_creates = shell(
            json!({"_raw_params": format!("touch {made}"), "creates": made}),
            true,
        )
        .await
        .expect("check");
        assert!(with_creates.changed);
        assert_eq!(
            with_creates.data["msg"],
            "Command would have run if not in check mode"
        );
        assert!(!std::path::Path::new(&made).exists());
        std::fs::write(&made, "").expect("write");
        let exists = shell(json!({"_raw_params": "false", "creates": made}), true)
            .await
            .expect("check");
        assert!(!exists.changed);
        assert_eq!(
            exists.data["msg"],
            format!("Would not run command since '{made}' exists")
        );
    }

    #[tokio::test]
    async fn argument_errors() {
        for (args, want, rc) in [
            (json!({"_raw_params": "  "}), "no command given", Some(256)),
            (
                json!({"_raw_params": "ls", "argv": ["ls"]}),
                "parameters are mutually exclusive: _raw_params|cmd|argv",
                None,
            ),
            (
                json!({"chdir": "/"}),
                "one of the following is required: _raw_params, cmd, argv",
                None,
            ),
        ] {
            match command(args, false).await {
                Err(ModuleError::Failed { msg, data }) => {
                    assert_eq!(msg, want);
                    assert_eq!(data.get("rc"), rc.map(Value::from).as_ref());
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            command(json!({"_raw_params": "echo 'open"}), false).await,
            Err(ModuleError::Args(_))
        ));
        assert!(matches!(
            command(json!({"bogus": 1}), false).await,
            Err(ModuleError::Args(_))
        ));
    }

    #[tokio::test]
    async fn command_warns_that_executable_is_ignored() {
        let out = command(
            json!({"_raw_params": "echo $0 x", "executable": "/bogus"}),
            false,
        )
        .await
        .expect("ran without the executable");
        assert_eq!(out.data["stdout"], "$0 x");
        let warnings = out.data["warnings"].as_array().expect("warnings");
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0]
            .as_str()
            .is_some_and(|w| w.contains("no longer supported") && w.contains("'/bogus'")));
        let sh = shell(
            json!({"_raw_params": "true", "executable": "/bin/sh"}),
            false,
        )
        .await
        .expect("shell");
        assert!(sh.data.get("warnings").is_none());
    }

    #[tokio::test]
    async fn missing_program_is_a_failure() {
        for argv in [["drover-no-such-program", "x"], ["/no/such/program", "x"]] {
            match command(json!({ "argv": argv }), false).await {
                Err(ModuleError::Failed { msg, data }) => {
                    assert_eq!(msg, "Error executing command.");
                    assert_eq!(data["rc"], 2);
                    assert_eq!((&data["stdout"], &data["stderr"]), (&json!(""), &json!("")));
                }
                other => panic!("{other:?}"),
            }
        }
        // Found in $PATH: it runs.
        let out = command(json!({"argv": ["true"]}), false)
            .await
            .expect("true");
        assert_eq!(out.data["rc"], 0);
    }

    #[test]
    fn words_are_quoted_for_the_host() {
        assert_eq!(quote_word("plain", Expand::VARS), "plain");
        assert_eq!(quote_word("a b", Expand::VARS), "'a b'");
        assert_eq!(quote_word("", Expand::VARS), "''");
        assert_eq!(quote_word("~/a b", Expand::VARS), "~/'a b'");
        assert_eq!(quote_word("~root", Expand::VARS), "~root");
        assert_eq!(quote_word("x~/y", Expand::VARS), "'x~/y'");
        assert_eq!(quote_word("$HOME/x", Expand::VARS), "\"${HOME-\\$HOME}\"/x");
        assert_eq!(quote_word("/var/*.log", Expand::PATH), "/var/*.log");
        assert_eq!(quote_word("/a b/*", Expand::PATH), "'/a b/'*");
        assert_eq!(quote_word("it's", Expand::VARS), "'it'\\''s'");
    }

    #[test]
    fn python_timedelta() {
        assert_eq!(timedelta(3_456_000), "0:00:00.003456");
        assert_eq!(timedelta(61_000_000_000), "0:01:01");
        assert_eq!(timedelta(90_061_000_001_000), "1 day, 1:01:01.000001");
        assert_eq!(
            local_time("2024-05-01 12:00:00.123456789"),
            "2024-05-01 12:00:00.123456"
        );
        assert_eq!(epoch_nanos("12.5"), Some(12_500_000_000));
    }

    #[test]
    fn report_keeps_output_after_the_marker() {
        let out = ExecOutput {
            status: 0,
            stdout: b"a\n@@m done 0|1.0|x|2.0|y\nlate\n".to_vec(),
            stderr: Vec::new(),
        };
        match parse_report(out, "@@m") {
            Report::Ran {
                rc, stdout, times, ..
            } => {
                assert_eq!(rc, 0);
                assert_eq!(stdout, b"alate\n");
                assert_eq!(times.map(|t| t.end_local), Some("y".to_string()));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_guard_is_a_declared_read_and_decided_from_its_output() {
        let render = crate::modules::testutil::TestRender::new(json!({}));
        let ctx = render.read_ctx();
        let plain: Command =
            serde_json::from_value(json!({"_raw_params": "touch /x"})).expect("args");
        assert_eq!(plain.reads(&ctx).expect("reads"), Protocol::Imperative);
        let guarded: Command =
            serde_json::from_value(json!({"_raw_params": "touch /x", "creates": "/x"}))
                .expect("args");
        let Protocol::Declared(reads) = guarded.reads(&ctx).expect("reads") else {
            panic!("a guard is a declared read");
        };
        assert_eq!(reads.reads[0].scope, Scope::Paths(vec!["/x".into()]));
        let decide = |out: &str| {
            guarded
                .decide(&crate::modules::reads::observed_stdout(&[out]), &ctx)
                .expect("decides")
        };
        assert!(matches!(
            decide("\n@@drover-guard creates\n"),
            Decision::Plan(Plan::Unchanged(_))
        ));
        assert!(matches!(
            decide("\n@@drover-guard run\n"),
            Decision::Plan(Plan::Run(_))
        ));
        let globbed: Command =
            serde_json::from_value(json!({"_raw_params": "x", "creates": "/x/*.conf"}))
                .expect("args");
        let Ok(Protocol::Declared(reads)) = globbed.reads(&ctx) else {
            panic!("declared");
        };
        assert_eq!(
            reads.reads[0].scope,
            Scope::Host,
            "a glob could be any path"
        );
    }
}
