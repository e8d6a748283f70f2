//! File reads deferred to the end of a read-ahead batch.
//!
//! A read-ahead batch runs the first reads of many tasks in one exec (see
//! `transport::prefetch`). Each of them is a [`super::fs::ReadBatch`]
//! script whose `_dr` calls would start a `stat` (and a `sha1sum`, a
//! `base64`) per file: on a converged run of 30 file tasks, some hundred
//! processes per host, which cost the node far more CPU than the SSH
//! connection itself. In the batch, `_dr` hands each read to `_drq`
//! instead: it notes the read (its path and what the shell's own tests
//! say about it) and prints a placeholder line. After the last command, one
//! `stat` reads every noted path, one `stat -L` every followed one, one
//! `readlink`, one `sha1sum` and one `cat | base64` do the rest, and
//! [`DeferredReads::complete`] puts into each placeholder's place exactly
//! the lines `_dr` would have printed.
//!
//! Anything unexpected (a path with a newline, a file that vanished between
//! the two steps, a count that does not add up) makes `_drq` decline the
//! read, so `_dr` does it itself, or makes `complete` refuse the whole
//! batch, whose commands then simply run again when their tasks ask.

use base64::Engine as _;

use super::fs::STAT_FORMAT;
use crate::transport::prefetch::Deferred;
use crate::transport::ExecOutput;

/// The [`Deferred`] of file reads; pass it to `Remote::exec_batch`.
pub struct DeferredReads;

/// Defines `_drq`, which `_dr` calls in a batch. It notes the read as a
/// line of flags (`P` or `L`, then checksum, content, print, exists, link,
/// regular and readable, went through a link) followed by the path, adds the path to the
/// argument list of each tool that will need it (files of `set -- "$@"
/// 'path'` lines, which the end of the batch sources: the shell's `read`
/// takes one system call per byte), and prints the placeholder. It declines
/// (status 1) paths with a newline or a single quote, and content reads of
/// an unfollowed link (the content would be the target's but the size the
/// link's).
const PROLOGUE: &str = r#"__drover_q=$__drover_d/q
__drover_nl='
'
for __s in Q P L K S D; do : >"$__drover_q.$__s"; done
_drq() {
case $1 in *"$__drover_nl"*|*"'"*) return 1 ;; esac
__dre=0; __drl=0; __drf=0
if [ -e "$1" ]; then __dre=1; fi
if [ -L "$1" ]; then __drl=1; fi
if [ -f "$1" ] && [ -r "$1" ]; then __drf=1; fi
if [ "$2$__drl$4" = P11 ]; then return 1; fi
__drk=0
if [ -n "${6-}" ] && [ "$1" != "$6" ]; then
if [ -z "$1" ] && ! _drlk "$6"; then __drk=u; else __drk=1; fi
elif [ "$2" = L ] && [ "$__drl" = 1 ]; then __drk=1; fi
printf '%s %s %s %s %s %s %s %s %s
' "$2" "$3" "$4" "$5" "$__dre" "$__drl" "$__drf" "$__drk" "$1" >>"$__drover_q.Q"
__dra="set -- \"\$@\" '$1'"
if [ "$2" = P ]; then
if [ "$__dre$__drl" != 00 ]; then printf '%s
' "$__dra" >>"$__drover_q.P"; fi
if [ "$__drl" = 1 ]; then printf '%s
' "$__dra" >>"$__drover_q.K"; fi
elif [ "$__dre" = 1 ]; then printf '%s
' "$__dra" >>"$__drover_q.L"; fi
if [ "$3$__drf" = 11 ]; then printf '%s
' "$__dra" >>"$__drover_q.S"; fi
if [ "$4$__drf" = 11 ]; then printf '%s
' "$__dra" >>"$__drover_q.D"; fi
printf '%s
' "$__drover_r"
}"#;

/// Prints the noted reads (section Q), then each tool's output over the
/// paths that need it, in note order: `@@sec K`, the output, `@@end STATUS`.
const EPILOGUE: &str = r#"_drsec() {
__k=$1; set --
. "$__drover_q.$__k"
if [ $# -gt 0 ]; then
case $__k in
P) stat -c "$__drover_sf" -- "$@" ;;
L) stat -L -c "$__drover_sf" -- "$@" ;;
K) readlink -- "$@" ;;
S) sha1sum -- "$@" ;;
D) cat -- "$@" | base64 -w0 ;;
esac 2>/dev/null
fi
}
printf '@@sec Q
'; cat "$__drover_q.Q"; printf '
@@end %s
' "$?"
for __s in P L K S D; do printf '@@sec %s
' "$__s"; _drsec "$__s"; printf '
@@end %s
' "$?"; done"#;

impl Deferred for DeferredReads {
    fn prologue(&self, token: &str) -> String {
        format!(
            "{PROLOGUE}\n__drover_r='{}'\n__drover_sf='{STAT_FORMAT}'",
            placeholder(token)
        )
    }

    fn epilogue(&self) -> &str {
        EPILOGUE
    }

    fn complete(&self, outputs: &mut [&mut ExecOutput], tail: &[u8], token: &str) -> bool {
        let Some(blocks) = blocks(tail) else {
            return false;
        };
        let mut placeholder_line = placeholder(token).into_bytes();
        placeholder_line.push(b'\n');
        let mut next = blocks.into_iter();
        for out in outputs.iter_mut() {
            let mut stdout = Vec::with_capacity(out.stdout.len());
            for line in out.stdout.split_inclusive(|&b| b == b'\n') {
                if line == placeholder_line.as_slice() {
                    let Some(block) = next.next() else {
                        return false;
                    };
                    stdout.extend_from_slice(block.as_bytes());
                } else {
                    stdout.extend_from_slice(line);
                }
            }
            out.stdout = stdout;
        }
        // Every noted read had its placeholder.
        next.next().is_none()
    }
}

/// The line `_drq` prints in place of a read.
fn placeholder(token: &str) -> String {
    format!("{token}-ref")
}

/// One noted read.
struct Note<'a> {
    follow: bool,
    checksum: bool,
    content: bool,
    print: bool,
    exists: bool,
    link: bool,
    regular: bool,
    /// Went through a link (`_dr` prints `@@linked`), or found a missing
    /// directory on the way (`@@unresolved`).
    linked: Option<&'static str>,
    path: &'a str,
}

impl<'a> Note<'a> {
    fn parse(line: &'a str) -> Option<Note<'a>> {
        let mut f = line.splitn(9, ' ');
        let follow = match f.next()? {
            "L" => true,
            "P" => false,
            _ => return None,
        };
        let mut flags = [false; 6];
        for flag in &mut flags {
            *flag = match f.next()? {
                "1" => true,
                "0" => false,
                _ => return None,
            };
        }
        let [checksum, content, print, exists, link, regular] = flags;
        let linked = match f.next()? {
            "0" => None,
            "1" => Some(crate::modules::reads::LINKED_MARK),
            "u" => Some(crate::modules::reads::UNRESOLVED_MARK),
            _ => return None,
        };
        Some(Note {
            follow,
            checksum,
            content,
            print,
            exists,
            link,
            regular,
            linked,
            path: f.next()?,
        })
    }

    /// Does `_dr` find something there (and print its metadata)?
    fn found(&self) -> bool {
        self.exists || (!self.follow && self.link)
    }
}

/// The epilogue's sections by name, each with its status.
fn sections(tail: &str) -> Option<Vec<(&str, &str, i32)>> {
    let mut out = Vec::new();
    let mut rest = tail;
    while let Some(body) = rest.strip_prefix("@@sec ") {
        let (name, body) = body.split_once('\n')?;
        let end = body.find("\n@@end ")?;
        let (text, after) = (&body[..end], &body[end + "\n@@end ".len()..]);
        let (status, after) = after.split_once('\n')?;
        out.push((name, text, status.trim().parse().ok()?));
        rest = after;
    }
    Some(out)
}

/// The lines `_dr` would have printed, one block per noted read, in order;
/// `None` if the tools' outputs do not fit the notes.
fn blocks(tail: &[u8]) -> Option<Vec<String>> {
    let tail = std::str::from_utf8(tail).ok()?;
    let sections = sections(tail)?;
    let section = |name: &str| -> Option<&str> {
        let (_, text, status) = sections.iter().find(|(n, _, _)| *n == name)?;
        (*status == 0).then_some(*text)
    };
    let lines = |name: &str| -> Option<Vec<&str>> {
        let text = section(name)?;
        let text = text.strip_suffix('\n').unwrap_or(text);
        Some(if text.is_empty() {
            Vec::new()
        } else {
            text.split('\n').collect()
        })
    };
    let notes: Vec<Note> = lines("Q")?
        .into_iter()
        .map(Note::parse)
        .collect::<Option<_>>()?;
    let mut stat = lines("P")?.into_iter();
    let mut stat_l = lines("L")?.into_iter();
    let mut links = lines("K")?.into_iter();
    let mut sums = lines("S")?.into_iter();
    let data = base64::engine::general_purpose::STANDARD
        .decode(section("D")?.trim())
        .ok()?;
    let mut data_at = 0usize;
    let mut blocks = Vec::with_capacity(notes.len());
    for n in &notes {
        let mut b = String::new();
        if n.found() {
            let head = if n.follow {
                stat_l.next()?
            } else {
                stat.next()?
            };
            b.push_str(&format!("@@ {head}\n"));
            if !n.follow && n.link {
                b.push_str(&format!("@@lnk {}\n", links.next()?));
            }
            if n.checksum && n.regular {
                // `sha1sum FILE` prints "<hex>  FILE", with a `\` first
                // when the name needed escaping.
                let sum = sums.next()?.trim_start_matches('\\');
                b.push_str(&format!("@@sum {}  -\n", sum.get(..40)?));
            }
            if n.content && n.regular {
                let size: usize = head.split('|').nth(4)?.parse().ok()?;
                let bytes = data.get(data_at..data_at.checked_add(size)?)?;
                data_at += size;
                b.push_str(&format!(
                    "@@data {}\n",
                    base64::engine::general_purpose::STANDARD.encode(bytes)
                ));
            }
        } else {
            b.push_str("@@ missing\n");
        }
        if n.print {
            b.push_str(&format!("@@path {}\n", n.path));
        }
        if let Some(mark) = n.linked {
            b.push_str(mark);
            b.push('\n');
        }
        blocks.push(b);
    }
    let used_up = stat.next().is_none()
        && stat_l.next().is_none()
        && links.next().is_none()
        && sums.next().is_none()
        && data_at == data.len();
    used_up.then_some(blocks)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;
    use crate::modules::fs::{FileState, Read, ReadBatch};
    use crate::transport::prefetch::{batch_script, parse_batch, tail};
    use crate::transport::shell_quote;

    const TOKEN: &str = "@@drover-read-0123456789abcdef";

    fn sh(script: &str) -> Vec<u8> {
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(script)
            .output()
            .expect("sh runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Run `scripts` as one deferred batch; their completed outputs, or
    /// `None` where `complete` refused; and how many reads were deferred.
    fn batched(scripts: &[String]) -> (Option<Vec<Vec<u8>>>, usize) {
        let out = sh(&batch_script(scripts, TOKEN, Some(&DeferredReads)));
        let deferred = String::from_utf8_lossy(&out)
            .lines()
            .filter(|l| *l == placeholder(TOKEN))
            .count();
        let mut found = parse_batch(&out, TOKEN, scripts.len());
        assert_eq!(found.len(), scripts.len());
        let tail = tail(&out, TOKEN).expect("tail");
        let mut outputs: Vec<&mut ExecOutput> = found.iter_mut().map(|(_, o)| o).collect();
        let done = DeferredReads.complete(&mut outputs, tail, TOKEN);
        (
            done.then(|| found.into_iter().map(|(_, o)| o.stdout).collect()),
            deferred,
        )
    }

    /// States as compared: reading a file's content may move its atime.
    fn states(batch: &ReadBatch, stdout: &[u8]) -> Vec<FileState> {
        let out = batch
            .parse(std::str::from_utf8(stdout).expect("utf8"))
            .expect("parses");
        out.states
            .into_iter()
            .map(|s| FileState { atime: 0.0, ..s })
            .collect()
    }

    #[test]
    fn deferred_reads_find_what_each_read_finds_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = |name: &str| dir.path().join(name).to_str().expect("utf8").to_string();
        std::fs::write(p("data"), b"line 1\nline 2\n\xff\x00binary").expect("write");
        std::fs::write(p("empty"), b"").expect("write");
        std::fs::write(p("with space | bar"), b"spaced\n").expect("write");
        std::fs::write(p("back\\slash"), b"escaped name\n").expect("write");
        std::fs::write(p("new\nline"), b"declined\n").expect("write");
        std::fs::write(p("it's"), b"declined too\n").expect("write");
        std::fs::create_dir(p("sub")).expect("mkdir");
        symlink(p("data"), p("link")).expect("symlink");
        symlink(p("nowhere"), p("dangling")).expect("symlink");
        let sum = Read {
            checksum: true,
            content: false,
        };
        let all = Read {
            checksum: true,
            content: true,
        };
        let mut batches = Vec::new();
        let mut b = ReadBatch::new();
        b.path(&p("data"), all, false);
        b.path(&p("missing"), all, false);
        b.path(&p("empty"), all, true);
        b.path(&p("sub"), sum, false);
        batches.push(b);
        let mut b = ReadBatch::new();
        b.path(&p("link"), all, false); // declined: content of an unfollowed link
        b.path(&p("link"), all, true);
        b.path(&p("link"), sum, false);
        b.path(&p("dangling"), Read::default(), false);
        b.path(&p("dangling"), all, true);
        batches.push(b);
        let mut b = ReadBatch::new();
        b.path(&p("with space | bar"), all, false);
        b.path(&p("back\\slash"), all, false);
        b.path(&p("new\nline"), all, false); // declined: newline
        b.path(&p("it's"), all, true); // declined: a quote
        b.shell(&format!("d={}", shell_quote(&p(""))));
        b.expr("\"$(_drl \"$d/link\")\"", all, true);
        b.path(&p("data"), Read::default(), false); // the same file again
        batches.push(b);
        let scripts: Vec<String> = batches.iter().map(ReadBatch::script).collect();
        let (together, deferred) = batched(&scripts);
        let together = together.expect("completed");
        assert_eq!(deferred, 12, "all 15 reads but the three declined ones");
        for ((batch, script), deferred) in batches.iter().zip(&scripts).zip(&together) {
            assert_eq!(
                states(batch, &sh(script)),
                states(batch, deferred),
                "{script}"
            );
        }
    }

    #[test]
    fn reads_through_links_settle_alike_alone_and_deferred() {
        use crate::modules::reads::Scope;
        let dir = tempfile::tempdir().expect("tempdir");
        let p = |name: &str| dir.path().join(name).to_str().expect("utf8").to_string();
        std::fs::write(p("data"), b"x").expect("write");
        std::fs::create_dir(p("sub")).expect("mkdir");
        symlink(p("data"), p("link")).expect("symlink");
        symlink(p("sub"), p("dirlink")).expect("symlink");
        let cases: Vec<(ReadBatch, bool)> = vec![
            (followed(&p("data")), false),
            (followed(&p("link")), true),
            (resolving(&p("sub/f")), false),
            (resolving(&p("dirlink/f")), true),
            (resolving(&p("nowhere/deeper")), false),
            (resolving(&p("dirlink/nowhere/deeper")), true),
        ];
        let scripts: Vec<String> = cases.iter().map(|(b, _)| b.script()).collect();
        let (together, _) = batched(&scripts);
        let together = together.expect("completed");
        for ((batch, linked), deferred) in cases.iter().zip(together) {
            let alone = sh(&batch.script());
            for out in [alone, deferred] {
                let out = ExecOutput {
                    status: 0,
                    stdout: out,
                    stderr: Vec::new(),
                };
                let settled = batch.declare().scope.settle(&out);
                assert_eq!(
                    matches!(settled, Scope::Host),
                    *linked,
                    "{}: {settled:?}",
                    batch.script()
                );
            }
        }
    }

    fn followed(path: &str) -> ReadBatch {
        let mut b = ReadBatch::new();
        b.path(path, Read::default(), true);
        b
    }

    fn resolving(path: &str) -> ReadBatch {
        let mut b = ReadBatch::new();
        b.resolved(path, Read::default(), false);
        b
    }

    #[test]
    fn a_file_that_changes_under_the_batch_spoils_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("f").to_str().expect("utf8").to_string();
        std::fs::write(&f, "x").expect("write");
        let mut b = ReadBatch::new();
        b.path(&f, Read::default(), false);
        // The file goes between the note and the stat at the end.
        let scripts = vec![b.script(), format!("rm -f {}", shell_quote(&f))];
        assert!(batched(&scripts).0.is_none());
    }

    #[test]
    fn a_read_whose_output_is_captured_spoils_the_count() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().to_str().expect("utf8").to_string();
        let mut b = ReadBatch::new();
        b.path(&f, Read::default(), false);
        // A placeholder that never reaches the output.
        let captured = format!("{} x=$(_dr {} P 0 0 0)", b.script(), shell_quote(&f));
        assert!(batched(&[b.script(), captured]).0.is_none());
    }

    #[test]
    fn the_read_function_prints_the_stat_format() {
        assert!(ReadBatch::new().script().contains(STAT_FORMAT));
    }
}
