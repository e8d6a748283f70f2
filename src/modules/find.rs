//! `find`: list files on the host that match conditions, as Ansible's find
//! returns them (`files` with stat fields, `matched`, `examined`). One
//! declared read walks the paths with `find -printf` (metadata only); the
//! patterns, age, size, hidden and type tests run in `decide`. `contains`
//! and `get_checksum` need the candidates' content or checksum: a second
//! read, for the candidates only. Changes nothing.
//!
//! As Ansible's: a directory that cannot be read is reported in
//! `skipped_paths` with Python's words for the error; a path that is no
//! directory, or a file that its `encoding` cannot decode, skips that path
//! with a warning; `contains` is a Python regular expression (`$` also
//! matches before a final newline) matched from the start of each line, or
//! searched in the whole file with `read_whole_file`.

use async_trait::async_trait;
use base64::Engine as _;
use regex::Regex;
use serde::Deserialize;

use super::args::{bool_ish, opt_string_ish, opt_strings_ish, opt_u64_ish};
use super::{
    Decision, Module, ModuleCtx, ModuleError, Observed, Plan, Protocol, ReadCtx, ReadSet, Scope,
};
use crate::transport::shell_quote;
use crate::{Map, Value};

/// Arguments of `find`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Find {
    /// Directories to search.
    #[serde(alias = "name", alias = "path", deserialize_with = "strings")]
    paths: Vec<String>,
    /// Base names to match (globs, or regexes with `use_regex`); default all.
    #[serde(default, alias = "pattern", deserialize_with = "opt_strings_ish")]
    patterns: Option<Vec<String>>,
    /// Base names to leave out.
    #[serde(default, alias = "exclude", deserialize_with = "opt_strings_ish")]
    excludes: Option<Vec<String>>,
    /// A regex a line of the file must match (from its start), or the whole
    /// file with `read_whole_file`.
    #[serde(default, deserialize_with = "opt_string_ish")]
    contains: Option<String>,
    /// Match `contains` against the whole file (search, multi-line).
    #[serde(default, deserialize_with = "bool_ish")]
    read_whole_file: bool,
    /// `file` (default), `directory`, `link` or `any`.
    #[serde(default)]
    file_type: FileType,
    /// Descend into subdirectories.
    #[serde(default, deserialize_with = "bool_ish")]
    recurse: bool,
    /// How deep to descend with `recurse`.
    #[serde(default, deserialize_with = "opt_u64_ish")]
    depth: Option<u64>,
    /// Minimum age (`2d`, `-1w`: at most), seconds without a unit.
    #[serde(default, deserialize_with = "opt_string_ish")]
    age: Option<String>,
    /// Which time `age` looks at: `mtime` (default), `atime`, `ctime`.
    #[serde(default)]
    age_stamp: Stamp,
    /// Minimum size (`10m`, `-1k`: at most), bytes without a unit.
    #[serde(default, deserialize_with = "opt_string_ish")]
    size: Option<String>,
    /// Include names starting with a dot.
    #[serde(default, deserialize_with = "bool_ish")]
    hidden: bool,
    /// Follow symlinks.
    #[serde(default, deserialize_with = "bool_ish")]
    follow: bool,
    /// Add each regular file's checksum as `checksum`.
    #[serde(default, deserialize_with = "bool_ish")]
    get_checksum: bool,
    /// The checksum's algorithm (default `sha1`).
    #[serde(default, alias = "checksum", alias = "checksum_algo")]
    checksum_algorithm: Algorithm,
    /// Patterns are Python-style regexes (matched from the name's start).
    #[serde(default, deserialize_with = "bool_ish")]
    use_regex: bool,
    /// Permission bits to match (octal or symbolic, as `file`'s mode).
    #[serde(default, deserialize_with = "opt_string_ish")]
    mode: Option<String>,
    /// `mode` must match exactly (default), or any of the bits it sets.
    #[serde(default = "super::args::yes", deserialize_with = "bool_ish")]
    exact_mode: bool,
    /// The files' text encoding for `contains` (Python's name; default
    /// UTF-8). A file it cannot decode skips its path.
    #[serde(default, deserialize_with = "opt_string_ish")]
    encoding: Option<String>,
    /// Stop after this many matches.
    #[serde(default, deserialize_with = "opt_u64_ish")]
    limit: Option<u64>,
}

fn strings<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(opt_strings_ish(d)?.unwrap_or_default())
}

/// Which entries count.
#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum FileType {
    #[default]
    File,
    Directory,
    Link,
    Any,
}

/// `checksum_algorithm` values.
#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Algorithm {
    Md5,
    #[default]
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl Algorithm {
    /// The coreutils tool that prints it.
    fn tool(self) -> &'static str {
        match self {
            Algorithm::Md5 => "md5sum",
            Algorithm::Sha1 => "sha1sum",
            Algorithm::Sha224 => "sha224sum",
            Algorithm::Sha256 => "sha256sum",
            Algorithm::Sha384 => "sha384sum",
            Algorithm::Sha512 => "sha512sum",
        }
    }
}

/// How a file's bytes become text for `contains`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Decode {
    /// UTF-8, decoded here (Python's default for the hosts drover manages).
    Utf8,
    /// Latin-1: every byte is its own code point.
    Latin1,
    /// ASCII, decoded here.
    Ascii,
    /// Any other: `iconv` converts to UTF-8 on the host.
    Iconv(String),
}

impl Decode {
    fn of(encoding: Option<&str>) -> Decode {
        let Some(e) = encoding else {
            return Decode::Utf8;
        };
        let norm = e.to_ascii_lowercase().replace(['_', ' '], "-");
        match norm.as_str() {
            "utf-8" | "utf8" | "u8" | "utf" => Decode::Utf8,
            "latin-1" | "latin1" | "iso-8859-1" | "iso8859-1" | "l1" | "8859" | "cp819" => {
                Decode::Latin1
            }
            "ascii" | "us-ascii" | "646" => Decode::Ascii,
            _ => Decode::Iconv(norm),
        }
    }

    /// Text from the bytes read (already UTF-8 after `iconv`), with
    /// Python's universal newlines; `None` when they do not decode.
    fn text(&self, bytes: &[u8]) -> Option<String> {
        let text = match self {
            Decode::Utf8 | Decode::Iconv(_) => String::from_utf8(bytes.to_vec()).ok()?,
            Decode::Ascii if bytes.is_ascii() => String::from_utf8(bytes.to_vec()).ok()?,
            Decode::Ascii => return None,
            Decode::Latin1 => bytes.iter().map(|&b| char::from(b)).collect(),
        };
        Some(text.replace("\r\n", "\n").replace('\r', "\n"))
    }
}

/// Python's `$` without MULTILINE also matches before a final newline:
/// spelled as a look-ahead (outside classes; `\$` stays literal).
fn python_dollar(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut chars = pattern.chars().peekable();
    let mut in_class = false;
    let mut class_start = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                out.push(c);
                if let Some(n) = chars.next() {
                    out.push(n);
                }
                class_start = false;
                continue;
            }
            '[' if !in_class => {
                in_class = true;
                class_start = true;
                out.push(c);
                if chars.peek() == Some(&'^') {
                    out.push('^');
                    chars.next();
                }
                continue;
            }
            ']' if in_class && !class_start => in_class = false,
            '$' if !in_class => {
                out.push_str("(?=\\n?\\z)");
                continue;
            }
            _ => {}
        }
        class_start = false;
        out.push(c);
    }
    out
}

/// A walk error as Python's `OSError` words it (`[Errno 13] Permission
/// denied: '/d'`), from GNU find's `find: '/d': Permission denied`; the
/// path and the text, or `None` for lines of another kind.
fn walk_error(line: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix("find: ")?;
    let (quoted, what) = rest.rsplit_once(": ")?;
    let path = quoted
        .strip_prefix('\'')
        .and_then(|q| q.strip_suffix('\''))
        .unwrap_or(quoted);
    let errno = match what {
        "Operation not permitted" => 1,
        "No such file or directory" => 2,
        "Permission denied" => 13,
        _ => return None,
    };
    Some((
        path.to_string(),
        format!("[Errno {errno}] {what}: {}", super::args::py_repr(path)),
    ))
}

/// Which timestamp `age` compares.
#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Stamp {
    #[default]
    Mtime,
    Atime,
    Ctime,
}

/// One entry `find -printf` reported.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    kind: char,
    mode: u32,
    size: u64,
    uid: u64,
    gid: u64,
    owner: String,
    group: String,
    mtime: f64,
    atime: f64,
    ctime: f64,
    inode: u64,
    dev: u64,
    nlink: u64,
    depth: u64,
    path: String,
}

/// One path as the listing found it.
#[derive(Debug, Clone, PartialEq)]
struct Walked {
    /// The path, as the host's shell gave it back.
    path: String,
    /// Its entries; `None` when it is not a directory.
    entries: Option<Vec<Entry>>,
    /// Directories below it that could not be read: path → Python's words.
    errors: Vec<(String, String)>,
}

/// Per path, what the listing found.
type Listing = Vec<Walked>;

/// Fields per entry, each ended by NUL (names may hold anything but NUL).
const FIELDS: usize = 15;
const PRINTF: &str =
    "%y\\0%m\\0%s\\0%U\\0%G\\0%u\\0%g\\0%T@\\0%A@\\0%C@\\0%i\\0%D\\0%n\\0%d\\0%p\\0";

/// A number with an optional unit letter: `(sign, value)`.
fn with_unit(text: &str, units: &[(char, f64)]) -> Result<f64, ModuleError> {
    let t = text.trim();
    let (num, mult) = match t.chars().last() {
        Some(c) if c.is_ascii_alphabetic() => {
            let lc = c.to_ascii_lowercase();
            let m = units
                .iter()
                .find(|(u, _)| *u == lc)
                .map(|(_, m)| *m)
                .ok_or_else(|| ModuleError::Args(format!("unknown unit in {t:?}")))?;
            (&t[..t.len() - 1], m)
        }
        _ => (t, 1.0),
    };
    num.trim()
        .parse::<f64>()
        .map(|n| n * mult)
        .map_err(|_| ModuleError::Args(format!("not a number with a unit: {t:?}")))
}

const AGE_UNITS: &[(char, f64)] = &[
    ('s', 1.0),
    ('m', 60.0),
    ('h', 3600.0),
    ('d', 86400.0),
    ('w', 604800.0),
];
const SIZE_UNITS: &[(char, f64)] = &[
    ('b', 1.0),
    ('k', 1024.0),
    ('m', 1048576.0),
    ('g', 1073741824.0),
    ('t', 1099511627776.0),
];

/// A compiled name filter.
struct Names(Vec<Regex>);

impl Names {
    fn new(pats: &[String], regex: bool) -> Result<Names, ModuleError> {
        pats.iter()
            .map(|p| {
                let re = if regex {
                    format!("^(?:{p})")
                } else {
                    crate::inventory::glob_to_regex(p)
                };
                Regex::new(&re).map_err(|e| ModuleError::Args(format!("bad pattern {p:?}: {e}")))
            })
            .collect::<Result<_, _>>()
            .map(Names)
    }

    fn any(&self, name: &str) -> bool {
        self.0.iter().any(|r| r.is_match(name))
    }
}

impl Find {
    fn list_script(&self) -> String {
        let mut s = String::from("date +%s; ");
        for p in &self.paths {
            let q = shell_quote(p);
            // With `depth`, Ansible still looks at (and counts) the entries
            // one level deeper before it stops descending.
            let depth = if self.recurse {
                self.depth
                    .filter(|d| *d > 0)
                    .map(|d| format!(" -maxdepth {}", d + 1))
                    .unwrap_or_default()
            } else {
                " -maxdepth 1".into()
            };
            // find's errors (directories it cannot read) are kept apart
            // from the listing: stderr is captured, stdout goes on.
            s.push_str(&format!(
                "d={q}; if [ -d \"$d\" ]; then printf '@@dir\\0%s\\0' \"$d\"; {{ e=$(LC_ALL=C find {}\"$d\" -mindepth 1{depth} -printf '{PRINTF}' 2>&1 >&3 3>&-); }} 3>&1; printf '@@end\\0%s\\0' \"$e\"; else printf '@@missing\\0%s\\0' \"$d\"; fi; ",
                if self.follow { "-L " } else { "" },
            ));
        }
        s
    }

    /// Parse the listing: the host's clock, then per path its entries
    /// and the directories below it that could not be read.
    fn parse_list(&self, out: &str) -> Result<(f64, Listing), ModuleError> {
        let bad = |what: &str| ModuleError::failed(format!("reading the listing failed: {what}"));
        let (now, rest) = out.split_once('\n').ok_or_else(|| bad("no clock"))?;
        let now: f64 = now.trim().parse().map_err(|_| bad("bad clock"))?;
        let mut fields = rest.split('\0');
        let mut per_path = Vec::new();
        for _ in &self.paths {
            let marker = fields.next();
            let path = fields.next().ok_or_else(|| bad("truncated"))?.to_string();
            match marker {
                Some("@@missing") => per_path.push(Walked {
                    path,
                    entries: None,
                    errors: Vec::new(),
                }),
                Some("@@dir") => {
                    let mut entries = Vec::new();
                    loop {
                        let first = fields.next().ok_or_else(|| bad("truncated"))?;
                        if first == "@@end" {
                            break;
                        }
                        let mut f = vec![first];
                        for _ in 1..FIELDS {
                            f.push(fields.next().ok_or_else(|| bad("truncated entry"))?);
                        }
                        let n = |i: usize| f[i].parse::<u64>().map_err(|_| bad(f[i]));
                        let t = |i: usize| f[i].parse::<f64>().map_err(|_| bad(f[i]));
                        entries.push(Entry {
                            kind: f[0].chars().next().unwrap_or('?'),
                            mode: u32::from_str_radix(f[1], 8).map_err(|_| bad(f[1]))?,
                            size: n(2)?,
                            uid: n(3)?,
                            gid: n(4)?,
                            owner: f[5].to_string(),
                            group: f[6].to_string(),
                            mtime: t(7)?,
                            atime: t(8)?,
                            ctime: t(9)?,
                            inode: n(10)?,
                            dev: n(11)?,
                            nlink: n(12)?,
                            depth: n(13)?,
                            path: f[14].to_string(),
                        });
                    }
                    let errors = fields
                        .next()
                        .ok_or_else(|| bad("truncated"))?
                        .lines()
                        .filter_map(walk_error)
                        .collect();
                    per_path.push(Walked {
                        path,
                        entries: Some(entries),
                        errors,
                    });
                }
                _ => return Err(bad("unexpected output")),
            }
        }
        Ok((now, per_path))
    }

    /// The entries that pass every test but `contains`, in listing order.
    fn select(&self, now: f64, entries: &[Entry]) -> Result<Vec<Entry>, ModuleError> {
        // Ansible's default: every name, as a glob or as a regex.
        let default = vec![if self.use_regex { ".*" } else { "*" }.to_string()];
        let pats = self
            .patterns
            .as_ref()
            .filter(|p| !p.is_empty())
            .unwrap_or(&default);
        let names = Names::new(pats, self.use_regex)?;
        let excludes = Names::new(self.excludes.as_deref().unwrap_or_default(), self.use_regex)?;
        let age = self
            .age
            .as_deref()
            .map(|a| with_unit(a, AGE_UNITS))
            .transpose()?;
        let size = self
            .size
            .as_deref()
            .map(|s| with_unit(s, SIZE_UNITS))
            .transpose()?;
        let mode = self.mode_bits()?;
        let depth = self.depth.filter(|d| *d > 0 && self.recurse);
        let mut out = Vec::new();
        for e in entries {
            // Looked at (examined), not matched: one level too deep.
            if depth.is_some_and(|d| e.depth > d) {
                continue;
            }
            let base = e.path.rsplit('/').next().unwrap_or_default();
            let type_ok = match self.file_type {
                FileType::Any => true,
                FileType::File => e.kind == 'f',
                FileType::Directory => e.kind == 'd',
                FileType::Link => e.kind == 'l',
            };
            if !type_ok
                || (!self.hidden && base.starts_with('.'))
                || !names.any(base)
                || excludes.any(base)
            {
                continue;
            }
            if let Some(a) = age {
                let stamp = match self.age_stamp {
                    Stamp::Mtime => e.mtime,
                    Stamp::Atime => e.atime,
                    Stamp::Ctime => e.ctime,
                };
                let old = now - stamp;
                if (a >= 0.0 && old < a) || (a < 0.0 && old > a.abs()) {
                    continue;
                }
            }
            if let (Some(s), 'f') = (size, e.kind) {
                let n = e.size as f64;
                if (s >= 0.0 && n < s) || (s < 0.0 && n > s.abs()) {
                    continue;
                }
            }
            if let Some(m) = mode {
                let bits = e.mode & 0o7777;
                // Not exact: any of the bits, as Ansible tests them.
                if (self.exact_mode && bits != m) || (!self.exact_mode && bits & m == 0) {
                    continue;
                }
            }
            out.push(e.clone());
        }
        Ok(out)
    }

    /// `mode` as bits: octal, or symbolic applied to no bits at all, as
    /// Ansible reads it.
    fn mode_bits(&self) -> Result<Option<u32>, ModuleError> {
        self.mode
            .as_deref()
            .map(|m| {
                let m = m.trim_start_matches("0o");
                super::fs::Mode::parse(&Value::from(m))?.resolve(0, false)
            })
            .transpose()
            .map(|b| b.map(|b| b & 0o7777))
    }

    /// Does `contains` apply? Ansible tests content for `file_type: file` only.
    fn tests_content(&self) -> bool {
        self.contains.is_some() && self.file_type == FileType::File
    }

    /// The second read: content (`contains`) and checksum of the candidates
    /// that are regular files. An encoding other than UTF-8, Latin-1 or
    /// ASCII is converted by `iconv` on the host (`@@unknown` when it has no
    /// such encoding, `@@undecodable` for a file it cannot convert).
    fn detail_script(&self, files: &[&Entry]) -> String {
        let decode = Decode::of(self.encoding.as_deref());
        let mut s = String::new();
        if let (true, Decode::Iconv(enc)) = (self.tests_content(), &decode) {
            s.push_str(&format!(
                "iconv -f {} -t UTF-8 </dev/null >/dev/null 2>&1 || {{ echo '@@unknown'; exit 0; }}; ",
                shell_quote(enc)
            ));
        }
        for e in files {
            let q = shell_quote(&e.path);
            s.push_str("printf '@@f\\n'; ");
            if self.tests_content() {
                match &decode {
                    Decode::Iconv(enc) => {
                        let enc = shell_quote(enc);
                        s.push_str(&format!(
                            "if iconv -f {enc} -t UTF-8 < {q} >/dev/null 2>&1; then iconv -f {enc} -t UTF-8 < {q} | base64 -w0; echo; else echo '@@undecodable'; fi; "
                        ));
                    }
                    _ => s.push_str(&format!("base64 -w0 < {q} 2>/dev/null; echo; ")),
                }
            }
            if self.get_checksum {
                s.push_str(&format!(
                    "{} < {q} 2>/dev/null | cut -d' ' -f1 || echo; ",
                    self.checksum_algorithm.tool()
                ));
            }
        }
        s
    }

    fn needs_detail(&self) -> bool {
        self.tests_content() || self.get_checksum
    }

    /// The `contains` pattern, compiled as Python's `re` reads it.
    fn contains_regex(&self) -> Result<Option<super::textedit::PyRegex>, ModuleError> {
        let Some(c) = self.contains.as_deref().filter(|_| self.tests_content()) else {
            return Ok(None);
        };
        let pattern = python_dollar(c);
        let pattern = if self.read_whole_file {
            pattern
        } else {
            // `re.match`: from the start of the line.
            format!("\\A(?:{pattern})")
        };
        super::textedit::py_regex(&pattern, super::textedit::ReFlags::default()).map(Some)
    }

    /// Does the text hold a match: searched in the whole text, or matched
    /// from the start of each line (its newline included, as Python reads
    /// lines)?
    fn contains_match(&self, re: &super::textedit::PyRegex, content: &str) -> bool {
        if self.read_whole_file {
            re.is_match(content.as_bytes())
        } else {
            content
                .split_inclusive('\n')
                .any(|l| re.is_match(l.as_bytes()))
        }
    }

    fn result(&self, observed: &Observed) -> Result<Decision<()>, ModuleError> {
        if self.limit == Some(0) {
            return Err(ModuleError::failed(
                "limit cannot be 0 (use None for unlimited)",
            ));
        }
        let list = observed.output(0)?;
        if list.status != 0 {
            return Err(ModuleError::failed(format!(
                "reading the listing failed: {}",
                list.stderr_str().trim()
            )));
        }
        let (now, per_path) = self.parse_list(&list.stdout_str())?;
        let mut skipped = Map::new();
        let mut warnings = Vec::new();
        let mut examined = 0u64;
        // Candidates, with the index of the path they were found under.
        let mut candidates: Vec<(usize, Entry)> = Vec::new();
        for (i, walked) in per_path.iter().enumerate() {
            match &walked.entries {
                None => {
                    let why = format!("{} is not a directory", super::args::py_repr(&walked.path));
                    warnings.push(format!(
                        "Skipped '{}' path due to this access issue: {why}\n",
                        walked.path
                    ));
                    skipped.insert(walked.path.clone(), Value::from(why));
                }
                Some(entries) => {
                    examined += entries.len() as u64;
                    candidates.extend(self.select(now, entries)?.into_iter().map(|e| (i, e)));
                    // Ansible records these and goes on: no warning.
                    for (path, why) in &walked.errors {
                        skipped.insert(path.clone(), Value::from(why.clone()));
                    }
                }
            }
        }
        let regular: Vec<(usize, &Entry)> = candidates
            .iter()
            .map(|(i, e)| (*i, e))
            .filter(|(_, e)| e.kind == 'f')
            .collect();
        let mut checksums = std::collections::HashMap::new();
        if self.needs_detail() && !regular.is_empty() {
            if observed.len() < 2 {
                let files: Vec<&Entry> = regular.iter().map(|(_, e)| *e).collect();
                return Ok(Decision::Read(ReadSet::one(
                    self.detail_script(&files),
                    Scope::Host,
                )));
            }
            let detail = observed.output(1)?.stdout_str();
            let re = self.contains_regex()?;
            let decode = Decode::of(self.encoding.as_deref());
            let encoding = self.encoding.clone().unwrap_or_else(|| {
                "None (default determined by the Python built-in function \"open\")".into()
            });
            let unknown = detail.lines().next() == Some("@@unknown");
            let mut blocks = detail.split("@@f\n").skip(1);
            let mut keep = std::collections::HashSet::new();
            // A path whose files cannot be read in its encoding is given
            // up at the first such file (Ansible's walk stops there).
            let mut given_up = std::collections::HashSet::new();
            let mut dropped = std::collections::HashSet::new();
            for &(at, e) in &regular {
                if given_up.contains(&at) {
                    dropped.insert(e.path.clone());
                    continue;
                }
                let block = if unknown {
                    ""
                } else {
                    blocks.next().unwrap_or_default()
                };
                let mut lines = block.lines();
                let mut ok = true;
                if let Some(re) = &re {
                    let why = if unknown {
                        Some(format!(
                            "unknown encoding: {}",
                            self.encoding.as_deref().unwrap_or_default()
                        ))
                    } else {
                        let raw = lines.next().unwrap_or_default().trim();
                        let text = (raw != "@@undecodable")
                            .then(|| base64::engine::general_purpose::STANDARD.decode(raw).ok())
                            .flatten()
                            .and_then(|b| decode.text(&b));
                        match text {
                            Some(t) => {
                                ok = self.contains_match(re, &t);
                                None
                            }
                            None => Some(format!(
                                "Failed to read the file {} due to an encoding error. current encoding: {encoding}",
                                e.path
                            )),
                        }
                    };
                    if let Some(why) = why {
                        let path = per_path[at].path.clone();
                        warnings.push(format!(
                            "Skipped '{path}' path due to this access issue: {why}\n"
                        ));
                        skipped.insert(path, Value::from(why));
                        given_up.insert(at);
                        dropped.insert(e.path.clone());
                        continue;
                    }
                }
                if self.get_checksum {
                    checksums.insert(
                        e.path.clone(),
                        lines.next().unwrap_or_default().trim().to_string(),
                    );
                }
                if ok {
                    keep.insert(e.path.clone());
                }
            }
            if self.tests_content() {
                candidates.retain(|(_, e)| keep.contains(&e.path));
            } else {
                candidates.retain(|(_, e)| !dropped.contains(&e.path));
            }
        } else if self.tests_content() {
            // No regular file among the candidates: nothing can contain it.
            candidates.clear();
        }
        let mut msg = if warnings.is_empty() {
            "All paths examined"
        } else {
            "Not all paths examined, check warnings for details"
        };
        if let Some(l) = self.limit {
            if candidates.len() as u64 >= l {
                candidates.truncate(l as usize);
                if warnings.is_empty() {
                    msg = "Limit of matches reached";
                }
            }
        }
        let files: Vec<Value> = candidates
            .iter()
            .map(|(_, e)| file_value(e, checksums.get(&e.path)))
            .collect();
        let mut m = Map::new();
        m.insert("matched".into(), Value::from(files.len()));
        m.insert("files".into(), Value::Array(files));
        m.insert("examined".into(), Value::from(examined));
        m.insert("msg".into(), Value::from(msg));
        m.insert("skipped_paths".into(), Value::Object(skipped));
        super::with_warnings(Ok(Decision::Plan(Plan::Unchanged(m))), warnings)
    }
}

/// One file as Ansible's find lists it (its stat fields).
fn file_value(e: &Entry, checksum: Option<&String>) -> Value {
    let bit = |b: u32| Value::Bool(e.mode & b != 0);
    let mut m = Map::new();
    m.insert("path".into(), Value::from(e.path.clone()));
    m.insert(
        "mode".into(),
        Value::from(format!("{:04o}", e.mode & 0o7777)),
    );
    m.insert("isdir".into(), Value::Bool(e.kind == 'd'));
    m.insert("ischr".into(), Value::Bool(e.kind == 'c'));
    m.insert("isblk".into(), Value::Bool(e.kind == 'b'));
    m.insert("isreg".into(), Value::Bool(e.kind == 'f'));
    m.insert("isfifo".into(), Value::Bool(e.kind == 'p'));
    m.insert("islnk".into(), Value::Bool(e.kind == 'l'));
    m.insert("issock".into(), Value::Bool(e.kind == 's'));
    m.insert("uid".into(), Value::from(e.uid));
    m.insert("gid".into(), Value::from(e.gid));
    m.insert("size".into(), Value::from(e.size));
    m.insert("inode".into(), Value::from(e.inode));
    m.insert("dev".into(), Value::from(e.dev));
    m.insert("nlink".into(), Value::from(e.nlink));
    m.insert("atime".into(), Value::from(e.atime));
    m.insert("mtime".into(), Value::from(e.mtime));
    m.insert("ctime".into(), Value::from(e.ctime));
    m.insert("pw_name".into(), Value::from(e.owner.clone()));
    m.insert("gr_name".into(), Value::from(e.group.clone()));
    for (name, b) in [
        ("rusr", 0o400),
        ("wusr", 0o200),
        ("xusr", 0o100),
        ("rgrp", 0o40),
        ("wgrp", 0o20),
        ("xgrp", 0o10),
        ("roth", 0o4),
        ("woth", 0o2),
        ("xoth", 0o1),
        ("isuid", 0o4000),
        ("isgid", 0o2000),
    ] {
        m.insert(name.into(), bit(b));
    }
    if let Some(c) = checksum {
        m.insert("checksum".into(), Value::from(c.clone()));
    }
    Value::Object(m)
}

#[async_trait]
impl Module for Find {
    const NAME: &'static str = "find";
    const ARGS: &'static [&'static str] = &[
        "paths",
        "name",
        "path",
        "patterns",
        "pattern",
        "excludes",
        "exclude",
        "contains",
        "read_whole_file",
        "file_type",
        "recurse",
        "depth",
        "age",
        "age_stamp",
        "size",
        "hidden",
        "follow",
        "get_checksum",
        "checksum_algorithm",
        "checksum",
        "checksum_algo",
        "use_regex",
        "mode",
        "exact_mode",
        "encoding",
        "limit",
    ];
    type Change = ();

    /// Ansible's `paths` are `path`s: `~` and `$VAR`s expand on the host.
    fn host_paths(_args: &Map) -> &'static [&'static str] {
        &["paths", "name", "path"]
    }

    fn validate(&self) -> Result<(), super::ArgError> {
        if self.paths.is_empty() {
            return Err("argument 'paths' is required".into());
        }
        Ok(())
    }

    fn reads(&self, _ctx: &ReadCtx<'_>) -> Result<Protocol, ModuleError> {
        Ok(Protocol::Declared(ReadSet::one(
            self.list_script(),
            Scope::Host,
        )))
    }

    fn decide(&self, observed: &Observed, _ctx: &ReadCtx<'_>) -> Result<Decision<()>, ModuleError> {
        self.result(observed)
    }

    async fn apply(&self, _ctx: &ModuleCtx<'_>, _change: ()) -> Result<Map, ModuleError> {
        Ok(Map::new())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::modules::testutil::{assert_args_complete, Harness};

    fn module(v: Value) -> Find {
        serde_json::from_value(v).expect("args")
    }

    #[test]
    fn args() {
        assert_args_complete::<Find>();
    }

    fn entry(kind: char, path: &str, size: u64, mtime: f64) -> Entry {
        Entry {
            kind,
            mode: 0o644,
            size,
            uid: 0,
            gid: 0,
            owner: "root".into(),
            group: "root".into(),
            mtime,
            atime: mtime,
            ctime: mtime,
            inode: 1,
            dev: 1,
            nlink: 1,
            depth: 1,
            path: path.into(),
        }
    }

    fn names(found: Vec<Entry>) -> Vec<String> {
        found.into_iter().map(|e| e.path).collect()
    }

    #[test]
    fn selects_like_ansible() {
        let all = vec![
            entry('f', "/d/a.log", 10, 1000.0),
            entry('f', "/d/b.txt", 5000, 100.0),
            entry('f', "/d/.hidden.log", 1, 1000.0),
            entry('d', "/d/sub", 0, 1000.0),
            entry('l', "/d/ln.log", 0, 1000.0),
        ];
        let m = module(json!({"paths": "/d", "patterns": "*.log"}));
        assert_eq!(names(m.select(1000.0, &all).expect("ok")), ["/d/a.log"]);
        let m = module(json!({"paths": "/d", "patterns": ["*.log"], "hidden": true}));
        assert_eq!(
            names(m.select(1000.0, &all).expect("ok")),
            ["/d/a.log", "/d/.hidden.log"]
        );
        let m = module(json!({"paths": "/d", "file_type": "any", "excludes": "*.log"}));
        assert_eq!(
            names(m.select(1000.0, &all).expect("ok")),
            ["/d/b.txt", "/d/sub"]
        );
        let m = module(json!({"paths": "/d", "age": "10m"}));
        assert_eq!(names(m.select(1000.0, &all).expect("ok")), ["/d/b.txt"]);
        let m = module(json!({"paths": "/d", "age": "-1m"}));
        assert_eq!(names(m.select(1000.0, &all).expect("ok")), ["/d/a.log"]);
        let m = module(json!({"paths": "/d", "size": "4k"}));
        assert_eq!(names(m.select(1000.0, &all).expect("ok")), ["/d/b.txt"]);
        let m = module(json!({"paths": "/d", "size": "-1k"}));
        assert_eq!(names(m.select(1000.0, &all).expect("ok")), ["/d/a.log"]);
        let m = module(json!({"paths": "/d", "patterns": "[ab]\\.", "use_regex": true}));
        assert_eq!(
            names(m.select(1000.0, &all).expect("ok")),
            ["/d/a.log", "/d/b.txt"]
        );
        let m = module(json!({"paths": "/d", "use_regex": true, "excludes": ".*\\.log"}));
        assert_eq!(names(m.select(1000.0, &all).expect("ok")), ["/d/b.txt"]);
        let m = module(json!({"paths": "/d", "file_type": "directory"}));
        assert_eq!(names(m.select(1000.0, &all).expect("ok")), ["/d/sub"]);
        assert!(module(json!({"paths": "/d", "size": "3q"}))
            .select(0.0, &all)
            .is_err());
    }

    #[tokio::test]
    async fn finds_on_the_local_host_with_contains_and_checksum() {
        let h = Harness::new();
        let d = h.path("tree");
        std::fs::create_dir_all(format!("{d}/sub")).expect("mkdir");
        std::fs::write(format!("{d}/a.conf"), "x=1\nport=22\n").expect("w");
        std::fs::write(format!("{d}/b.conf"), "x=2\n").expect("w");
        std::fs::write(format!("{d}/sub/c.conf"), "port=80\n").expect("w");
        let out = h
            .run::<Find>(
                json!({"paths": [d.clone(), h.path("nope")], "patterns": "*.conf"}),
                true,
                false,
            )
            .await
            .expect("find");
        assert!(!out.changed);
        assert_eq!(out.data["matched"], json!(2));
        assert_eq!(out.data["examined"], json!(3));
        assert!(out.data["skipped_paths"]
            .as_object()
            .expect("map")
            .contains_key(&h.path("nope")));
        let out = h
            .run::<Find>(
                json!({"paths": d.clone(), "recurse": true, "contains": "port=", "get_checksum": true}),
                false,
                false,
            )
            .await
            .expect("find");
        let mut paths: Vec<String> = out.data["files"]
            .as_array()
            .expect("files")
            .iter()
            .map(|f| f["path"].as_str().expect("path").to_string())
            .collect();
        paths.sort();
        assert_eq!(paths, [format!("{d}/a.conf"), format!("{d}/sub/c.conf")]);
        let f = &out.data["files"][0];
        assert_eq!(f["checksum"].as_str().expect("sum").len(), 40);
        assert_eq!(f["isreg"], json!(true));
        assert_eq!(f["mode"], json!("0644"));
    }

    /// find target: `contains` with `read_whole_file` was compiled
    /// multi-line, so `KO$` matched the end of any line; Python's `$`
    /// matches at the end, or before a final newline. Line by line, the
    /// pattern is matched from the line's start.
    #[test]
    fn contains_reads_dollar_and_lines_as_python_does() {
        let log = "01/01- OK\n01/02- OK\n01/03- KO\n01/04- OK\n";
        let whole = |c: &str| {
            let m = module(json!({"paths": "/d", "contains": c, "read_whole_file": true}));
            let re = m.contains_regex().expect("compiles").expect("a pattern");
            m.contains_match(&re, log)
        };
        assert!(!whole("KO$"));
        assert!(whole("OK$"));
        assert!(whole("OK\n$"));
        assert!(whole("has\\$|KO"));
        let lines = |c: &str, text: &str| {
            let m = module(json!({"paths": "/d", "contains": c}));
            let re = m.contains_regex().expect("compiles").expect("a pattern");
            m.contains_match(&re, text)
        };
        assert!(lines(".*KO$", log));
        assert!(!lines("KO", log), "matched from the line's start");
        assert!(!lines("has\na few", "this has\na few lines\n"));
        assert_eq!(python_dollar(r"a$|[$]\$"), r"a(?=\n?\z)|[$]\$");
        // contains is for files only: with file_type any it tests nothing.
        let m = module(json!({"paths": "/d", "contains": "x", "file_type": "any"}));
        assert!(m.contains_regex().expect("ok").is_none());
    }

    #[test]
    fn walk_errors_and_encodings_read_as_python_words_them() {
        assert_eq!(
            walk_error("find: '/t/r/1-unreadable': Permission denied"),
            Some((
                "/t/r/1-unreadable".to_string(),
                "[Errno 13] Permission denied: '/t/r/1-unreadable'".to_string()
            ))
        );
        assert_eq!(walk_error("find: warning: something else"), None);
        assert_eq!(Decode::of(None), Decode::Utf8);
        assert_eq!(Decode::of(Some("UTF_8")), Decode::Utf8);
        assert_eq!(Decode::of(Some("gbk")), Decode::Iconv("gbk".into()));
        assert_eq!(Decode::Utf8.text(b"\xc4\xe3"), None);
        assert_eq!(
            Decode::Latin1.text(b"\xe9\r\n").as_deref(),
            Some("\u{e9}\n")
        );
        assert_eq!(Decode::Ascii.text(b"\xe9"), None);
    }

    /// find target (mode.yml): a symbolic mode was refused, and a mode
    /// that is not exact needed all its bits where Ansible needs any.
    #[test]
    fn modes_match_as_ansible_tests_them() {
        let mut all = Vec::new();
        for (name, mode) in [("a", 0o644), ("b", 0o400), ("c", 0o700), ("d", 0o240)] {
            let mut e = entry('f', &format!("/d/{name}"), 1, 0.0);
            e.mode = mode;
            all.push(e);
        }
        let m = module(json!({"paths": "/d", "mode": "u=rw,g=r,o=r"}));
        assert_eq!(names(m.select(0.0, &all).expect("ok")), ["/d/a"]);
        let m = module(json!({"paths": "/d", "mode": "0440", "exact_mode": false}));
        assert_eq!(
            names(m.select(0.0, &all).expect("ok")),
            ["/d/a", "/d/b", "/d/c", "/d/d"]
        );
        let m = module(json!({"paths": "/d", "mode": "o=r", "exact_mode": false}));
        assert_eq!(names(m.select(0.0, &all).expect("ok")), ["/d/a"]);
        assert!(module(json!({"paths": "/d", "mode": "u=q"}))
            .select(0.0, &all)
            .is_err());
    }

    /// find target: with `depth`, Ansible counts the entries one level
    /// deeper as examined (it looks at them before it stops); a directory
    /// it cannot read, a missing path and a file its encoding cannot read
    /// land in `skipped_paths`; `~` is the task user's home.
    #[tokio::test]
    async fn depth_skipped_paths_encodings_and_checksums_on_the_local_host() {
        let h = Harness::new();
        let d = h.path("tree");
        std::fs::create_dir_all(format!("{d}/a/b/c")).expect("mkdir");
        for f in ["x.txt", "a/y.txt", "a/b/z.txt", "a/b/c/w.txt"] {
            std::fs::write(format!("{d}/{f}"), "data\n").expect("w");
        }
        let out = h
            .run::<Find>(
                json!({"paths": d.clone(), "recurse": true, "depth": 2, "file_type": "any"}),
                false,
                false,
            )
            .await
            .expect("find");
        // depth 1: x.txt, a; depth 2: a/y.txt, a/b; looked at: a/b/z.txt, a/b/c.
        assert_eq!(out.data["matched"], json!(4));
        assert_eq!(out.data["examined"], json!(6));
        std::fs::write(format!("{d}/hello.gbk"), b"\xc4\xe3\xba\xc3\n").expect("w");
        let gbk = |enc: &str| json!({"paths": d.clone(), "patterns": "*.gbk", "contains": "你好", "encoding": enc});
        let out = h
            .run::<Find>(gbk("utf-8"), false, false)
            .await
            .expect("find");
        assert_eq!(out.data["matched"], json!(0));
        assert_eq!(
            out.data["msg"],
            json!("Not all paths examined, check warnings for details")
        );
        assert_eq!(
            out.data["skipped_paths"][&d],
            json!(format!("Failed to read the file {d}/hello.gbk due to an encoding error. current encoding: utf-8"))
        );
        let out = h.run::<Find>(gbk("gbk"), false, false).await.expect("find");
        assert_eq!(out.data["matched"], json!(1));
        assert_eq!(out.data["msg"], json!("All paths examined"));
        let out = h
            .run::<Find>(gbk("idontexist"), false, false)
            .await
            .expect("find");
        assert_eq!(
            out.data["skipped_paths"][&d],
            json!("unknown encoding: idontexist")
        );
        let out = h
            .run::<Find>(
                json!({"paths": [d.clone(), h.path("nope")], "patterns": "x.txt", "get_checksum": true, "checksum_algorithm": "md5"}),
                false,
                false,
            )
            .await
            .expect("find");
        assert_eq!(
            out.data["files"][0]["checksum"],
            json!(format!("{:x}", md5::compute(b"data\n")))
        );
        assert_eq!(
            out.data["skipped_paths"][&h.path("nope")],
            json!(format!("'{}' is not a directory", h.path("nope")))
        );
        assert_eq!(
            out.data["msg"],
            json!("Not all paths examined, check warnings for details")
        );
        // `~/` is the home directory, not a directory named `~`: the
        // engine expands the paths on the host first.
        assert_eq!(
            <Find as Module>::host_paths(&Map::new()),
            &["paths", "name", "path"]
        );
    }
}
