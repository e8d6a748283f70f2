//! `stat`: report facts about a path (result key `stat`). Changes nothing.
//! Everything, including the access checks and a non-SHA-1 checksum, comes
//! from one exec.

use async_trait::async_trait;
use serde::Deserialize;

use super::args::{bool_ish, yes};
use super::fs::{FileKind, Read, ReadBatch, ReadOutput};
use super::{Decision, Module, ModuleCtx, ModuleError, Observed, Plan, Protocol, ReadCtx, ReadSet};
use crate::transport::shell_quote;
use crate::{Map, Value};

/// Arguments of `stat`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stat {
    /// The path to look at.
    #[serde(alias = "dest", alias = "name")]
    path: String,
    /// Report on what a symlink points to instead of the link.
    #[serde(default, deserialize_with = "bool_ish")]
    follow: bool,
    /// Compute a checksum of a regular file.
    #[serde(default = "yes", deserialize_with = "bool_ish")]
    get_checksum: bool,
    /// md5, sha1 (default), sha224, sha256, sha384 or sha512.
    #[serde(default = "sha1", alias = "checksum", alias = "checksum_algo")]
    checksum_algorithm: String,
    /// Report `mimetype` and `charset` (from the host's `file`; `unknown`
    /// when it has none).
    #[serde(
        default = "yes",
        alias = "mime",
        alias = "mime_type",
        alias = "mime-type",
        deserialize_with = "bool_ish"
    )]
    get_mime: bool,
    /// Report `attributes`, `attr_flags` and `version` (from the host's
    /// `lsattr`; empty when it has none or the filesystem keeps none).
    #[serde(
        default = "yes",
        alias = "attr",
        alias = "attributes",
        deserialize_with = "bool_ish"
    )]
    get_attributes: bool,
}

fn sha1() -> String {
    "sha1".into()
}

const ALGORITHMS: &[&str] = &["md5", "sha1", "sha224", "sha256", "sha384", "sha512"];

#[async_trait]
impl Module for Stat {
    const NAME: &'static str = "stat";
    const ARGS: &'static [&'static str] = &[
        "path",
        "dest",
        "name",
        "follow",
        "get_checksum",
        "checksum_algorithm",
        "checksum",
        "checksum_algo",
        "get_mime",
        "mime",
        "mime_type",
        "mime-type",
        "get_attributes",
        "attr",
        "attributes",
    ];
    type Change = ();

    fn host_paths(_args: &Map) -> &'static [&'static str] {
        &["path", "dest", "name"]
    }

    fn reads(&self, _ctx: &ReadCtx<'_>) -> Result<Protocol, ModuleError> {
        Ok(Protocol::Declared(ReadSet {
            reads: vec![self.batch()?.declare()],
        }))
    }

    fn decide(&self, observed: &Observed, _ctx: &ReadCtx<'_>) -> Result<Decision<()>, ModuleError> {
        let alg = self.checksum_algorithm.to_ascii_lowercase();
        let out = self.batch()?.parse_exec(observed.output(0)?)?;
        self.found(&alg, out).map(Decision::Plan)
    }

    async fn apply(&self, _ctx: &ModuleCtx<'_>, _change: ()) -> Result<Map, ModuleError> {
        Ok(Map::new())
    }
}

impl Stat {
    /// The one read: the path, access as the task's user, and a checksum.
    fn batch(&self) -> Result<ReadBatch, ModuleError> {
        let alg = self.checksum_algorithm.to_ascii_lowercase();
        if !ALGORITHMS.contains(&alg.as_str()) {
            return Err(ModuleError::Args(format!(
                "checksum_algorithm must be one of {}, not {alg}",
                ALGORITHMS.join(", ")
            )));
        }
        let q = shell_quote(&self.path);
        let mut batch = ReadBatch::new();
        batch.path(
            &self.path,
            Read {
                checksum: self.get_checksum && alg == "sha1",
                content: false,
            },
            self.follow,
        );
        // Access is checked as the user the task runs as, like os.access.
        let mut probe = format!(
            "if [ -r {q} ]; then echo '@@x r'; fi; if [ -w {q} ]; then echo '@@x w'; fi; \
             if [ -x {q} ]; then echo '@@x x'; fi; \
             if [ -L {q} ]; then printf '@@x src %s\\n' \"$(readlink -f -- {q})\"; fi"
        );
        if self.get_checksum && alg != "sha1" {
            probe.push_str(&format!(
                "; if [ -f {q} ] && [ -r {q} ]; then printf '@@x sum %s\\n' \"$({alg}sum < {q} | cut -d' ' -f1)\"; fi"
            ));
        }
        // Ansible runs `file` and `lsattr` on the path as given, whatever `follow` says.
        if self.get_mime {
            probe.push_str(&format!(
                "; if [ -e {q} ] || [ -L {q} ]; then if command -v file >/dev/null 2>&1 && \
                 m=\"$(file --mime-type --mime-encoding -- {q} 2>/dev/null)\"; then \
                 printf '@@x mime %s\\n' \"$m\"; fi; fi"
            ));
        }
        if self.get_attributes {
            probe.push_str(&format!(
                "; if [ -e {q} ] || [ -L {q} ]; then if command -v lsattr >/dev/null 2>&1 && \
                 a=\"$(lsattr -vd -- {q} 2>/dev/null)\"; then \
                 printf '@@x attr %s\\n' \"$a\"; fi; fi"
            ));
        }
        batch.shell(&probe);
        Ok(batch)
    }

    /// The result, from what the read found.
    fn found(&self, alg: &str, out: ReadOutput) -> Result<Plan<()>, ModuleError> {
        let st = out
            .states
            .first()
            .ok_or_else(|| ModuleError::failed("no state read"))?;
        let mut s = Map::new();
        if !st.exists() {
            s.insert("exists".into(), Value::Bool(false));
            let mut data = Map::new();
            data.insert("stat".into(), Value::Object(s));
            return Ok(Plan::Unchanged(data));
        }
        let flag = |f: &str| out.extra.iter().any(|l| l == f);
        let t = st.type_name.as_str();
        let m = st.mode;
        let isreg = st.kind == FileKind::File;
        let readable = flag("r");
        let entries: Vec<(&str, Value)> = vec![
            ("exists", true.into()),
            ("path", self.path.clone().into()),
            ("mode", st.mode_string().into()),
            ("isdir", (st.kind == FileKind::Directory).into()),
            ("ischr", (t == "character special file").into()),
            ("isblk", (t == "block special file").into()),
            ("isreg", isreg.into()),
            ("isfifo", (t == "fifo").into()),
            ("islnk", (st.kind == FileKind::Link).into()),
            ("issock", (t == "socket").into()),
            ("uid", st.uid.into()),
            ("gid", st.gid.into()),
            ("size", st.size.into()),
            ("inode", st.inode.into()),
            ("dev", st.dev.into()),
            ("nlink", st.nlink.into()),
            ("atime", st.atime.into()),
            ("mtime", st.mtime.into()),
            ("ctime", st.ctime.into()),
            ("wusr", (m & 0o200 != 0).into()),
            ("rusr", (m & 0o400 != 0).into()),
            ("xusr", (m & 0o100 != 0).into()),
            ("wgrp", (m & 0o020 != 0).into()),
            ("rgrp", (m & 0o040 != 0).into()),
            ("xgrp", (m & 0o010 != 0).into()),
            ("woth", (m & 0o002 != 0).into()),
            ("roth", (m & 0o004 != 0).into()),
            ("xoth", (m & 0o001 != 0).into()),
            ("isuid", (m & 0o4000 != 0).into()),
            ("isgid", (m & 0o2000 != 0).into()),
            ("readable", readable.into()),
            ("writeable", flag("w").into()),
            ("executable", flag("x").into()),
            ("pw_name", st.owner.clone().into()),
            ("gr_name", st.group.clone().into()),
        ];
        for (k, v) in entries {
            s.insert(k.into(), v);
        }
        if self.get_checksum && isreg && readable {
            let sum = if alg == "sha1" {
                st.checksum.clone()
            } else {
                out.extra
                    .iter()
                    .find_map(|l| l.strip_prefix("sum ").map(str::to_string))
            };
            if let Some(sum) = sum {
                s.insert("checksum".into(), sum.into());
            }
        }
        let extra = |key: &str| {
            out.extra
                .iter()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
        };
        if self.get_mime {
            let (mime, charset) = extra("mime")
                .and_then(parse_mime)
                .unwrap_or_else(|| ("unknown".to_string(), "unknown".to_string()));
            s.insert("mimetype".into(), mime.into());
            s.insert("charset".into(), charset.into());
        }
        if self.get_attributes {
            let (version, flags) = match extra("attr").and_then(parse_lsattr) {
                Some((v, f)) => (Value::from(v), f),
                None => (Value::Null, String::new()),
            };
            let names: Vec<Value> = flags
                .chars()
                .filter_map(attribute_name)
                .map(Value::from)
                .collect();
            s.insert("version".into(), version);
            s.insert("attributes".into(), Value::Array(names));
            s.insert("attr_flags".into(), flags.into());
        }
        if st.kind == FileKind::Link {
            if let Some(src) = out.extra.iter().find_map(|l| l.strip_prefix("src ")) {
                s.insert("lnk_source".into(), src.into());
            }
            if let Some(target) = &st.link_target {
                s.insert("lnk_target".into(), target.clone().into());
            }
        }
        let mut data = Map::new();
        data.insert("stat".into(), Value::Object(s));
        Ok(Plan::Unchanged(data))
    }
}

/// `file --mime-type --mime-encoding` output (`path: text/plain;
/// charset=us-ascii`): the type and the charset, split after the last colon
/// as Ansible does (the path may hold colons).
fn parse_mime(line: &str) -> Option<(String, String)> {
    let (_, rest) = line.rsplit_once(':')?;
    let (mime, charset) = rest.split_once(';')?;
    if charset.contains(';') {
        return None;
    }
    let charset = charset.split('=').nth(1)?;
    Some((mime.trim().to_string(), charset.trim().to_string()))
}

/// `lsattr -vd` output (`version flags path`): the version and the flags
/// without their dashes.
fn parse_lsattr(line: &str) -> Option<(String, String)> {
    let mut words = line.split_whitespace();
    let version = words.next()?.to_string();
    let flags = words.next()?.replace('-', "");
    Some((version, flags))
}

/// The name Ansible gives a file attribute flag.
fn attribute_name(flag: char) -> Option<&'static str> {
    Some(match flag {
        'A' => "noatime",
        'a' => "append",
        'c' => "compressed",
        'C' => "nocow",
        'd' => "nodump",
        'D' => "dirsync",
        'e' => "extents",
        'E' => "encrypted",
        'h' => "blocksize",
        'i' => "immutable",
        'I' => "indexed",
        'j' => "journalled",
        'N' => "inline",
        's' => "zero",
        'S' => "synchronous",
        't' => "notail",
        'T' => "blockroot",
        'u' => "undelete",
        'X' => "compressedraw",
        'Z' => "compresseddirty",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::modules::fs::sha1_hex;
    use crate::modules::testutil::{assert_args_complete, Harness};

    #[test]
    fn args() {
        assert_args_complete::<Stat>();
    }

    #[test]
    fn mimetype_and_attributes_parse_like_ansible() {
        assert_eq!(
            parse_mime("/tmp/foo:bar.txt: text/plain; charset=us-ascii"),
            Some(("text/plain".into(), "us-ascii".into()))
        );
        assert_eq!(parse_mime("/x: cannot open"), None);
        assert_eq!(
            parse_lsattr("0          -----------I--e------- /tmp"),
            Some(("0".into(), "Ie".into()))
        );
        let names: Vec<_> = "Ie".chars().filter_map(attribute_name).collect();
        assert_eq!(names, ["indexed", "extents"]);
    }

    #[tokio::test]
    #[ignore = "needs root: run scripts/test"]
    async fn file_dir_link_and_missing() {
        let h = Harness::new();
        let f = h.path("f");
        std::fs::write(&f, "hello\n").expect("write");
        std::process::Command::new("chmod")
            .args(["0640", &f])
            .status()
            .expect("chmod");
        let link = h.path("l");
        std::os::unix::fs::symlink(&f, &link).expect("symlink");

        let out = h
            .run::<Stat>(json!({ "path": f }), false, false)
            .await
            .expect("stat");
        assert!(!out.changed);
        let s = &out.data["stat"];
        assert_eq!(s["exists"], json!(true));
        assert_eq!(s["isreg"], json!(true));
        assert_eq!(s["isdir"], json!(false));
        assert_eq!(s["mode"], json!("0640"));
        assert_eq!(s["size"], json!(6));
        assert_eq!(s["pw_name"], json!("root"));
        assert_eq!(s["uid"], json!(0));
        assert_eq!(s["rgrp"], json!(true));
        assert_eq!(s["roth"], json!(false));
        assert_eq!(s["checksum"], json!(sha1_hex(b"hello\n")));
        assert!(s["mtime"].as_f64().expect("mtime") > 1.0e9);

        let out = h
            .run::<Stat>(
                json!({ "path": link, "checksum_algorithm": "sha256" }),
                false,
                false,
            )
            .await
            .expect("stat");
        let s = &out.data["stat"];
        assert_eq!(s["islnk"], json!(true));
        assert_eq!(s["isreg"], json!(false));
        assert_eq!(s["lnk_target"], json!(f));
        assert_eq!(s["lnk_source"], json!(f));
        assert!(s.get("checksum").is_none());

        let out = h
            .run::<Stat>(
                json!({ "path": link, "follow": "yes", "checksum_algorithm": "sha256" }),
                false,
                false,
            )
            .await
            .expect("stat");
        let s = &out.data["stat"];
        assert_eq!(s["islnk"], json!(false));
        assert_eq!(s["isreg"], json!(true));
        assert_eq!(
            s["checksum"],
            json!("5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03")
        );

        let out = h
            .run::<Stat>(
                json!({ "path": h.path(""), "get_checksum": false }),
                true,
                false,
            )
            .await
            .expect("stat");
        assert_eq!(out.data["stat"]["isdir"], json!(true));

        let out = h
            .run::<Stat>(json!({ "path": h.path("nope") }), false, false)
            .await
            .expect("stat");
        assert_eq!(out.data["stat"], json!({ "exists": false }));
    }
}
