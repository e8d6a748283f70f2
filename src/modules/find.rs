//! `find`: list files on the host that match conditions, as Ansible's find
//! returns them (`files` with stat fields, `matched`, `examined`). One
//! declared read walks the paths with `find -printf` (metadata only); the
//! patterns, age, size, hidden and type tests run in `decide`. `contains`
//! and `get_checksum` need the candidates' content or checksum: a second
//! read, for the candidates only. Changes nothing.

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
    /// Add each file's SHA-1 as `checksum`.
    #[serde(default, deserialize_with = "bool_ish")]
    get_checksum: bool,
    /// Patterns are Python-style regexes (matched from the name's start).
    #[serde(default, deserialize_with = "bool_ish")]
    use_regex: bool,
    /// Permission bits to match (octal string).
    #[serde(default, deserialize_with = "opt_string_ish")]
    mode: Option<String>,
    /// `mode` must match exactly (default) or only the bits it sets.
    #[serde(default = "super::args::yes", deserialize_with = "bool_ish")]
    exact_mode: bool,
    /// Text encoding of `contains` (drover reads UTF-8, lossily).
    #[serde(default, rename = "encoding", deserialize_with = "opt_string_ish")]
    _encoding: Option<String>,
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

/// Per path, its entries (`None`: not a directory).
type Listing = Vec<Option<Vec<Entry>>>;

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
            let depth = if self.recurse {
                self.depth
                    .map(|d| format!(" -maxdepth {d}"))
                    .unwrap_or_default()
            } else {
                " -maxdepth 1".into()
            };
            s.push_str(&format!(
                "if [ -d {q} ]; then printf '@@dir\\0'; find {}{q} -mindepth 1{depth} -printf '{PRINTF}' 2>/dev/null; printf '@@end\\0'; else printf '@@missing\\0'; fi; ",
                if self.follow { "-L " } else { "" },
            ));
        }
        s
    }

    /// Parse the listing: the host's clock, then per path its entries
    /// (`None` for a path that is not a directory).
    fn parse_list(&self, out: &str) -> Result<(f64, Listing), ModuleError> {
        let bad = |what: &str| ModuleError::failed(format!("reading the listing failed: {what}"));
        let (now, rest) = out.split_once('\n').ok_or_else(|| bad("no clock"))?;
        let now: f64 = now.trim().parse().map_err(|_| bad("bad clock"))?;
        let mut fields = rest.split('\0');
        let mut per_path = Vec::new();
        for _ in &self.paths {
            match fields.next() {
                Some("@@missing") => per_path.push(None),
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
                    per_path.push(Some(entries));
                }
                _ => return Err(bad("unexpected output")),
            }
        }
        Ok((now, per_path))
    }

    /// The entries that pass every test but `contains`, in listing order.
    fn select(&self, now: f64, entries: &[Entry]) -> Result<Vec<Entry>, ModuleError> {
        let default = vec!["*".to_string()];
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
        let mode = self
            .mode
            .as_deref()
            .map(|m| {
                u32::from_str_radix(m.trim_start_matches("0o"), 8)
                    .map_err(|_| ModuleError::Args(format!("mode {m:?} is not octal")))
            })
            .transpose()?;
        let mut out = Vec::new();
        for e in entries {
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
                if (self.exact_mode && bits != m) || (!self.exact_mode && bits & m != m) {
                    continue;
                }
            }
            out.push(e.clone());
        }
        Ok(out)
    }

    /// The second read: content (`contains`) and SHA-1 of the candidates
    /// that are regular files.
    fn detail_script(&self, files: &[&Entry]) -> String {
        let mut s = String::new();
        for e in files {
            let q = shell_quote(&e.path);
            s.push_str("printf '@@f\\n'; ");
            if self.contains.is_some() {
                s.push_str(&format!("base64 -w0 < {q} 2>/dev/null; echo; "));
            }
            if self.get_checksum {
                s.push_str(&format!(
                    "sha1sum < {q} 2>/dev/null | cut -d' ' -f1 || echo; "
                ));
            }
        }
        s
    }

    fn needs_detail(&self) -> bool {
        self.contains.is_some() || self.get_checksum
    }

    fn contains_match(&self, re: &Regex, content: &str) -> bool {
        if self.read_whole_file {
            re.is_match(content)
        } else {
            content.lines().any(|l| re.is_match(l))
        }
    }

    fn result(&self, observed: &Observed) -> Result<Decision<()>, ModuleError> {
        let list = observed.output(0)?;
        if list.status != 0 {
            return Err(ModuleError::failed(format!(
                "reading the listing failed: {}",
                list.stderr_str().trim()
            )));
        }
        let (now, per_path) = self.parse_list(&list.stdout_str())?;
        let mut skipped = Map::new();
        let mut examined = 0u64;
        let mut candidates = Vec::new();
        for (p, entries) in self.paths.iter().zip(&per_path) {
            match entries {
                None => {
                    skipped.insert(
                        p.clone(),
                        Value::from(format!("{p} was skipped as it does not seem to be a valid directory or it cannot be accessed")),
                    );
                }
                Some(entries) => {
                    examined += entries.len() as u64;
                    candidates.extend(self.select(now, entries)?);
                }
            }
        }
        let regular: Vec<&Entry> = candidates.iter().filter(|e| e.kind == 'f').collect();
        let mut checksums = std::collections::HashMap::new();
        if self.needs_detail() && !regular.is_empty() {
            if observed.len() < 2 {
                return Ok(Decision::Read(ReadSet::one(
                    self.detail_script(&regular),
                    Scope::Host,
                )));
            }
            let detail = observed.output(1)?.stdout_str();
            let re = self
                .contains
                .as_deref()
                .map(|c| {
                    let pat = if self.read_whole_file {
                        format!("(?m){c}")
                    } else {
                        format!("^(?:{c})")
                    };
                    Regex::new(&pat)
                        .map_err(|e| ModuleError::Args(format!("bad contains {c:?}: {e}")))
                })
                .transpose()?;
            let mut blocks = detail.split("@@f\n").skip(1);
            let mut keep = std::collections::HashSet::new();
            for e in &regular {
                let block = blocks.next().unwrap_or_default();
                let mut lines = block.lines();
                let mut ok = true;
                if let Some(re) = &re {
                    let content = base64::engine::general_purpose::STANDARD
                        .decode(lines.next().unwrap_or_default().trim())
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default();
                    ok = self.contains_match(re, &content);
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
            if self.contains.is_some() {
                // Ansible's contains only ever matches regular files.
                candidates.retain(|e| keep.contains(&e.path));
            }
        } else if self.contains.is_some() {
            // No regular file among the candidates: nothing can contain it.
            candidates.clear();
        }
        if let Some(l) = self.limit {
            candidates.truncate(l as usize);
        }
        let files: Vec<Value> = candidates
            .iter()
            .map(|e| file_value(e, checksums.get(&e.path)))
            .collect();
        let mut m = Map::new();
        m.insert("matched".into(), Value::from(files.len()));
        m.insert("files".into(), Value::Array(files));
        m.insert("examined".into(), Value::from(examined));
        m.insert("msg".into(), Value::from("All paths examined"));
        m.insert("skipped_paths".into(), Value::Object(skipped));
        Ok(Decision::Plan(Plan::Unchanged(m)))
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
        "use_regex",
        "mode",
        "exact_mode",
        "encoding",
        "limit",
    ];
    type Change = ();

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
}
