//! `get_url` (ansible.builtin.get_url): download a file ON THE HOST with
//! curl (or wget) into a dot-named temp file beside the destination, verify
//! its checksum there, then rename it into place. A destination that exists
//! is left alone unless its checksum differs from the given one or `force`
//! is set, so a converged run downloads nothing.
//!
//! Headers and credentials go to curl in a config read from stdin (`-K -`),
//! never on a command line.

use async_trait::async_trait;
use serde::Deserialize;

use super::args::{bool_ish, opt_string_ish, opt_u64_ish, FileAttrs};
use super::fs::{ensure_attrs, not_regular_guard, Attrs, AttrsFix, FileKind, Read, ReadBatch};
use super::{Module, ModuleCtx, ModuleError, Plan};
use crate::transport::shell_quote;
use crate::{Map, Value};

/// Arguments of `get_url`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetUrl {
    /// http, https, ftp or file URL.
    url: String,
    /// File to write, or a directory to put the URL's file name in.
    dest: String,
    /// `<algorithm>:<hex digest>` (sha256, sha1, md5, sha512, sha224, sha384).
    #[serde(default, deserialize_with = "opt_string_ish")]
    checksum: Option<String>,
    /// Download even if `dest` exists (changed only if the content differs).
    #[serde(default, deserialize_with = "bool_ish")]
    force: bool,
    /// Seconds to wait for the connection and for stalled transfers.
    #[serde(default, deserialize_with = "opt_u64_ish")]
    timeout: Option<u64>,
    /// Extra request headers.
    #[serde(default)]
    headers: Option<Value>,
    /// User for HTTP basic authentication.
    #[serde(default, deserialize_with = "opt_string_ish")]
    url_username: Option<String>,
    /// Password for HTTP basic authentication.
    #[serde(default, deserialize_with = "opt_string_ish")]
    url_password: Option<String>,
    /// Verify TLS certificates.
    #[serde(default = "super::args::yes", deserialize_with = "bool_ish")]
    validate_certs: bool,
    /// Mode, owner and group of the file.
    #[serde(flatten)]
    attrs: FileAttrs,
}

/// What `apply` does.
#[derive(Debug, PartialEq)]
pub struct GetUrlChange {
    /// The file to write (dest, or dest/<name> for a directory).
    path: String,
    /// Download (false: only fix attributes).
    download: bool,
    /// The file's attributes to fix, when they differ.
    fix: Option<AttrsFix>,
    /// The checksum command and the digest the download must have.
    sum: Option<(&'static str, String)>,
}

/// The checksum command for an algorithm name.
fn sum_command(algo: &str) -> Option<&'static str> {
    Some(match algo.to_ascii_lowercase().as_str() {
        "md5" => "md5sum",
        "sha1" => "sha1sum",
        "sha224" => "sha224sum",
        "sha256" => "sha256sum",
        "sha384" => "sha384sum",
        "sha512" => "sha512sum",
        _ => return None,
    })
}

/// A checksum given as `<algorithm>:<URL of a checksum file>`: the
/// command and the URL.
fn checksum_url(s: &str) -> Result<Option<(&'static str, &str)>, ModuleError> {
    let Some((algo, rest)) = s.split_once(':') else {
        return Ok(None);
    };
    let rest = rest.trim();
    if !["http://", "https://", "ftp://", "file://"]
        .iter()
        .any(|p| rest.starts_with(p))
    {
        return Ok(None);
    }
    let cmd = sum_command(algo.trim())
        .ok_or_else(|| ModuleError::Args(format!("unsupported checksum algorithm {algo}")))?;
    Ok(Some((cmd, rest)))
}

/// The digest a checksum file (`sha256sum` output, or one bare digest)
/// gives for `file`, as Ansible picks it: a name's leading `*` and `./`
/// are dropped.
fn digest_for(text: &str, file: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if let [only] = lines.as_slice() {
        if only.split_whitespace().count() == 1 {
            return Some(only.trim().to_ascii_lowercase());
        }
    }
    lines.iter().find_map(|l| {
        let (sum, name) = l.trim().split_once(char::is_whitespace)?;
        let name = name.trim();
        let name = name.strip_prefix('*').unwrap_or(name);
        let name = name.strip_prefix("./").unwrap_or(name);
        (name.trim_matches(|c| c == '.' || c == '/') == file).then(|| sum.to_ascii_lowercase())
    })
}

/// `(command, lowercase hex)` of a `checksum:` argument.
fn parse_checksum(s: &str) -> Result<(&'static str, String), ModuleError> {
    let (algo, hex) = s
        .split_once(':')
        .ok_or_else(|| ModuleError::Args(format!("checksum must be <algorithm>:<hex>: {s}")))?;
    let cmd = sum_command(algo.trim())
        .ok_or_else(|| ModuleError::Args(format!("unsupported checksum algorithm {algo}")))?;
    let hex = hex.trim().to_ascii_lowercase();
    if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ModuleError::Args(format!(
            "checksum must be <algorithm>:<hex digest> or <algorithm>:<URL of a checksum file>: {s}"
        )));
    }
    Ok((cmd, hex))
}

/// The file name a URL names (its last path segment).
fn url_file_name(url: &str) -> Option<String> {
    let no_frag = url.split('#').next().unwrap_or(url);
    let path = no_frag.split('?').next().unwrap_or(no_frag);
    let after_scheme = path.split_once("://").map(|(_, r)| r).unwrap_or(path);
    // The host part is not a file name.
    let (_, p) = after_scheme.split_once('/')?;
    let name = p.rsplit('/').next()?;
    (!name.is_empty() && name != "." && name != "..").then(|| name.to_string())
}

/// A string for curl's config syntax (double-quoted, backslash escapes).
pub(super) fn curl_quote(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

impl GetUrl {
    fn attrs(&self) -> Attrs {
        self.attrs.attrs()
    }

    fn header_lines(&self) -> Result<Vec<String>, ModuleError> {
        match &self.headers {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Object(m)) => Ok(m
                .iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    format!("{k}: {v}")
                })
                .collect()),
            Some(other) => Err(ModuleError::Args(format!(
                "headers must be a mapping, not {other}"
            ))),
        }
    }

    /// curl's config (sent on stdin): URL, headers and credentials.
    fn curl_config(&self) -> Result<String, ModuleError> {
        self.curl_config_for(&self.url)
    }

    /// curl's config for `url`, with the task's headers and credentials
    /// (Ansible sends them for a checksum URL too).
    fn curl_config_for(&self, url: &str) -> Result<String, ModuleError> {
        let mut c = format!("url = {}\n", curl_quote(url));
        for h in self.header_lines()? {
            c.push_str(&format!("header = {}\n", curl_quote(&h)));
        }
        if let Some(u) = &self.url_username {
            let p = self.url_password.clone().unwrap_or_default();
            c.push_str(&format!("user = {}\n", curl_quote(&format!("{u}:{p}"))));
        }
        Ok(c)
    }

    /// The shell that reads the destination (after resolving a directory).
    fn read_batch(&self) -> Result<ReadBatch, ModuleError> {
        let name = url_file_name(&self.url);
        let mut b = ReadBatch::new();
        let mut s = format!("d={}\nif [ -d \"$d\" ]; then ", shell_quote(&self.dest));
        match &name {
            Some(n) => s.push_str(&format!("d=\"${{d%/}}\"/{}; ", shell_quote(n))),
            None => s.push_str("echo '@@x noname'; "),
        }
        s.push_str("fi\nprintf '@@x path %s\\n' \"$d\"\n");
        if let Some(c) = &self.checksum {
            let cmd = match checksum_url(c)? {
                Some((cmd, _)) => cmd,
                None => parse_checksum(c)?.0,
            };
            s.push_str(&format!(
                "if [ -f \"$d\" ] && [ -r \"$d\" ]; then printf '@@x sum %s\\n' \"$({cmd} < \"$d\" | cut -d' ' -f1)\"; fi\n"
            ));
        }
        b.shell(&s);
        b.expr("\"$d\"", Read::default(), true);
        Ok(b)
    }

    /// Shell that fetches the URL (its curl configuration on stdin) into
    /// `out`, or with `None` only asks for its headers (a HEAD request, as
    /// Ansible's check mode makes); exit 94 when the request fails, 95 when
    /// the host has no tool for it.
    fn fetch_script(&self, t: u64, out: Option<&str>) -> String {
        let plain = self.headers.is_none() && self.url_username.is_none();
        let (insecure, wget_insecure) = if self.validate_certs {
            ("", "")
        } else {
            (" -k", " --no-check-certificate")
        };
        let (curl_out, wget_out) = match out {
            Some(o) => (format!("-o {o}"), format!("-O {o}")),
            None => ("-I -o /dev/null".to_string(), "--spider".to_string()),
        };
        let mut s = format!(
            "if command -v curl >/dev/null 2>&1; then\n\
             curl -fsSL{insecure} --connect-timeout {t} --speed-time {t} --speed-limit 1 -K - {curl_out} || exit 94\n"
        );
        if plain {
            s.push_str(&format!(
                "elif command -v wget >/dev/null 2>&1; then\n\
                 wget -q{wget_insecure} -T {t} {wget_out} -- {} || exit 94\n",
                shell_quote(&self.url)
            ));
        }
        s.push_str("else echo 'get_url needs curl (or wget without headers or credentials) on the host' >&2; exit 95\nfi\n");
        s
    }

    fn download_script(&self, change: &GetUrlChange, compare: bool) -> Result<String, ModuleError> {
        let p = shell_quote(&change.path);
        let t = self.timeout.unwrap_or(10).max(1);
        // Found by the plan already; checked again right before the rename.
        let guard = not_regular_guard(&change.path, 99);
        let mut s = format!(
            "d={p}\n\
             t=\"$(dirname -- \"$d\")/.$(basename -- \"$d\").drover-get_url.$$\"\n\
             trap 'rm -f -- \"$t\"' EXIT\n"
        );
        s.push_str(&self.fetch_script(t, Some("\"$t\"")));
        if let Some((cmd, hex)) = &change.sum {
            s.push_str(&format!(
                "got=$({cmd} < \"$t\" | cut -d' ' -f1)\n\
                 if [ \"$got\" != {hex} ]; then echo \"The checksum for $d did not match {hex}; it was $got.\" >&2; exit 96; fi\n"
            ));
        }
        if compare {
            s.push_str(
                "if [ -f \"$d\" ] && cmp -s -- \"$t\" \"$d\"; then echo '@@same'; exit 0; fi\n",
            );
        }
        // A replaced file keeps its mode and owner unless others are asked for.
        s.push_str(
            "if [ -e \"$d\" ]; then chmod --reference=\"$d\" -- \"$t\"; chown --reference=\"$d\" -- \"$t\" 2>/dev/null; else chmod 0644 -- \"$t\"; fi\n",
        );
        // $t has dest's attributes now: fix those that differ.
        if let Some(fix) = &change.fix {
            s.push_str(&fix.script("$t").replace("'$t'", "\"$t\""));
            s.push_str(" || exit 97\n");
        }
        s.push_str(&guard);
        s.push_str("mv -f -- \"$t\" \"$d\" || exit 98\n");
        Ok(s)
    }

    /// The checksum command and digest: given, or read from the checksum
    /// file at a URL (fetched on the host, as the download is; also in
    /// check mode, since it changes nothing).
    async fn wanted_sum(
        &self,
        ctx: &ModuleCtx<'_>,
        checksum: &str,
    ) -> Result<(&'static str, String), ModuleError> {
        let Some((cmd, url)) = checksum_url(checksum)? else {
            return parse_checksum(checksum);
        };
        let t = self.timeout.unwrap_or(10).max(1);
        let insecure = if self.validate_certs { "" } else { " -k" };
        let script = format!(
            "command -v curl >/dev/null 2>&1 || {{ echo 'get_url needs curl on the host to read a checksum URL' >&2; exit 95; }}\n\
             curl -fsSL{insecure} --connect-timeout {t} --speed-time {t} --speed-limit 1 -K -\n"
        );
        let config = self.curl_config_for(url)?;
        let out = ctx.remote.exec(&script, config.as_bytes()).await?;
        if out.status != 0 {
            return Err(ModuleError::failed(format!(
                "Request failed for the checksum file {url}: {}",
                out.stderr_str().trim()
            )));
        }
        let file = url_file_name(&self.url).unwrap_or_default();
        let hex = digest_for(&out.stdout_str(), &file).ok_or_else(|| {
            ModuleError::failed(format!(
                "Unable to find a checksum for file '{file}' in '{url}'"
            ))
        })?;
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ModuleError::failed(format!(
                "the checksum for '{file}' in '{url}' is not a hex digest: {hex}"
            )));
        }
        Ok((cmd, hex))
    }

    /// What the task would do: read the destination (and a checksum
    /// URL's digest) and compare.
    async fn plan(&self, ctx: &ModuleCtx<'_>) -> Result<Plan<GetUrlChange>, ModuleError> {
        let sum = match &self.checksum {
            Some(c) => Some(self.wanted_sum(ctx, c).await?),
            None => None,
        };
        let want_sum = sum.as_ref().map(|(_, hex)| hex.clone());
        self.header_lines()?;
        let read = self.read_batch()?.run(ctx.remote).await?;
        if read.extra.iter().any(|l| l == "noname") {
            return Err(ModuleError::failed(format!(
                "{} is a directory and no file name can be taken from {}",
                self.dest, self.url
            )));
        }
        let path = read
            .extra
            .iter()
            .find_map(|l| l.strip_prefix("path "))
            .unwrap_or(&self.dest)
            .to_string();
        let have_sum = read.extra.iter().find_map(|l| l.strip_prefix("sum "));
        let state = read
            .states
            .into_iter()
            .next()
            .ok_or_else(|| ModuleError::failed("reading dest failed"))?;
        let data = self.data(&path);
        let fix = ensure_attrs(&state, &self.attrs())?;
        let change = |download| GetUrlChange {
            path: path.clone(),
            download,
            fix: fix.clone(),
            sum: sum.clone(),
        };
        match state.kind {
            FileKind::Missing => {
                return Ok(Plan::Change {
                    change: change(true),
                    diff: None,
                    data,
                })
            }
            FileKind::Directory => {
                return Err(ModuleError::failed(format!("{path} is a directory")))
            }
            // A rename over a device or FIFO would replace it.
            FileKind::Other => {
                return Err(ModuleError::failed(format!(
                    "{path} is not a regular file ({}): refusing to replace it",
                    state.type_name
                )))
            }
            _ => {}
        }
        if let Some(want) = &want_sum {
            if have_sum != Some(want.as_str()) {
                return Ok(Plan::Change {
                    change: change(true),
                    diff: None,
                    data,
                });
            }
        } else if self.force {
            // Changed only if the new content differs: known after download.
            return Ok(Plan::Run(change(true)));
        }
        if fix.is_none() {
            Ok(Plan::Unchanged(data))
        } else {
            Ok(Plan::Change {
                change: change(false),
                diff: None,
                data,
            })
        }
    }

    /// Check mode downloads nothing, but asks the server for the URL's
    /// headers as Ansible's check mode does, so an unreachable URL fails the
    /// check run where it would fail the real one.
    async fn probe(&self, ctx: &ModuleCtx<'_>) -> Result<(), ModuleError> {
        let t = self.timeout.unwrap_or(10).max(1);
        let config = self.curl_config()?;
        let out = ctx
            .remote
            .exec(&self.fetch_script(t, None), config.as_bytes())
            .await?;
        match out.status {
            0 => Ok(()),
            94 => Err(ModuleError::failed(format!(
                "Request failed for {}: {}",
                self.url,
                out.stderr_str().trim()
            ))),
            _ => Err(ModuleError::failed(out.stderr_str().trim().to_string())),
        }
    }

    fn data(&self, path: &str) -> Map {
        let mut m = Map::new();
        m.insert("dest".into(), Value::from(path.to_string()));
        m.insert("url".into(), Value::from(self.url.clone()));
        if let Some(c) = &self.checksum {
            m.insert("checksum".into(), Value::from(c.clone()));
        }
        m
    }
}

#[async_trait]
impl Module for GetUrl {
    const NAME: &'static str = "get_url";
    const ARGS: &'static [&'static str] = &[
        "url",
        "dest",
        "checksum",
        "force",
        "timeout",
        "headers",
        "url_username",
        "url_password",
        "validate_certs",
        "mode",
        "owner",
        "group",
    ];
    type Change = GetUrlChange;

    fn host_paths(_args: &Map) -> &'static [&'static str] {
        &["dest"]
    }

    async fn run_imperative(&self, ctx: &ModuleCtx<'_>) -> Result<Plan<GetUrlChange>, ModuleError> {
        let plan = self.plan(ctx).await?;
        let downloads =
            matches!(&plan, Plan::Change { change, .. } | Plan::Run(change) if change.download);
        if ctx.check && downloads {
            self.probe(ctx).await?;
        }
        Ok(plan)
    }

    async fn apply(&self, ctx: &ModuleCtx<'_>, change: GetUrlChange) -> Result<Map, ModuleError> {
        let mut data = self.data(&change.path);
        if !change.download {
            let script = change
                .fix
                .as_ref()
                .map(|f| f.script(&change.path))
                .unwrap_or_default();
            let out = ctx.remote.exec(&script, b"").await?;
            if out.status != 0 {
                return Err(ModuleError::failed(format!(
                    "setting attributes of {} failed: {}",
                    change.path,
                    out.stderr_str().trim()
                )));
            }
            return Ok(data);
        }
        let compare = self.force && self.checksum.is_none();
        let script = self.download_script(&change, compare)?;
        let config = self.curl_config()?;
        let out = ctx.remote.exec(&script, config.as_bytes()).await?;
        if out.status != 0 {
            let what = match out.status {
                94 => format!("Request failed for {}", self.url),
                96 => "Checksum mismatch".to_string(),
                97 => format!("setting attributes of {} failed", change.path),
                98 => format!("moving the download to {} failed", change.path),
                99 => format!("refusing to replace {}", change.path),
                _ => "get_url failed".to_string(),
            };
            data.insert("rc".into(), Value::from(out.status));
            return Err(ModuleError::Failed {
                msg: format!("{what}: {}", out.stderr_str().trim()),
                data,
            });
        }
        if out.stdout_str().lines().any(|l| l == "@@same") {
            data.insert("changed".into(), Value::Bool(false));
            data.insert("msg".into(), Value::from("file already exists"));
        } else {
            data.insert("msg".into(), Value::from("OK"));
        }
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::modules::testutil::{assert_args_complete, mode_of, Harness};

    /// The download tests run curl on this machine, as the host would.
    fn no_curl() -> bool {
        std::process::Command::new("curl")
            .arg("--version")
            .output()
            .is_err()
    }

    fn module(v: Value) -> GetUrl {
        serde_json::from_value(v).expect("args")
    }

    #[test]
    fn args() {
        assert_args_complete::<GetUrl>();
    }

    #[test]
    fn parses_checksums_and_names() {
        assert_eq!(
            parse_checksum("SHA256:ABcd").expect("ok"),
            ("sha256sum", "abcd".to_string())
        );
        assert!(parse_checksum("sha256").is_err());
        assert!(parse_checksum("crc32:00").is_err());
        assert!(parse_checksum("sha256:https://x/SHA256SUMS").is_err());
        assert_eq!(
            checksum_url("sha256:https://x/SHA256SUMS").expect("ok"),
            Some(("sha256sum", "https://x/SHA256SUMS"))
        );
        assert_eq!(checksum_url("sha256:abcd").expect("ok"), None);
        assert!(checksum_url("crc:https://x").is_err());
        assert_eq!(
            url_file_name("https://get.k3s.io/k3s-arm64?x=1#f").as_deref(),
            Some("k3s-arm64")
        );
        assert_eq!(
            url_file_name("file:///tmp/a/b.tar").as_deref(),
            Some("b.tar")
        );
        assert_eq!(url_file_name("https://get.k3s.io/"), None);
        assert_eq!(url_file_name("https://get.k3s.io"), None);
        assert_eq!(curl_quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }

    #[test]
    fn checksum_files_give_the_digest_of_the_url_file() {
        let sums = "aa11  k3s\nBB22 *./k3s-airgap-images-arm64.tar\ncc33  ./install.sh\n";
        assert_eq!(digest_for(sums, "k3s").as_deref(), Some("aa11"));
        assert_eq!(
            digest_for(sums, "k3s-airgap-images-arm64.tar").as_deref(),
            Some("bb22")
        );
        assert_eq!(digest_for(sums, "install.sh").as_deref(), Some("cc33"));
        assert_eq!(digest_for(sums, "k3s.exe"), None);
        assert_eq!(digest_for("dd44\n", "anything").as_deref(), Some("dd44"));
    }

    #[tokio::test]
    async fn checksum_urls_are_read_and_checked() {
        if no_curl() {
            return;
        }
        let h = Harness::new();
        let src = h.path("k3s");
        std::fs::write(&src, "payload\n").expect("write");
        let hex = "e2c5ab9a5b4ce4ad4ee9a1b4c3a8b0f0a6e0a2f8d2b3c4e5f60718293a4b5c6d";
        let real = String::from_utf8(
            std::process::Command::new("sha256sum")
                .arg(&src)
                .output()
                .expect("sha256sum")
                .stdout,
        )
        .expect("utf8");
        let real = real.split(' ').next().expect("hex").to_string();
        std::fs::write(
            h.path("SHA256SUMS"),
            format!("{hex}  install.sh\n{real}  k3s\n"),
        )
        .expect("sums");
        let args = json!({"url": format!("file://{src}"), "dest": h.path("out"),
            "checksum": format!("sha256:file://{}", h.path("SHA256SUMS"))});
        let out = h
            .run::<GetUrl>(args.clone(), false, false)
            .await
            .expect("get");
        assert!(out.changed);
        assert_eq!(
            std::fs::read_to_string(h.path("out")).expect("r"),
            "payload\n"
        );
        let out = h
            .run::<GetUrl>(args.clone(), false, false)
            .await
            .expect("again");
        assert!(!out.changed, "converged");
        let out = h.run::<GetUrl>(args, true, false).await.expect("check");
        assert!(!out.changed, "check mode converged");
        // The checksum file cannot be read.
        let err = h
            .run::<GetUrl>(
                json!({"url": format!("file://{src}"), "dest": h.path("out2"),
                    "checksum": format!("sha256:file://{}", h.path("nope"))}),
                false,
                false,
            )
            .await
            .expect_err("no sum");
        assert!(
            err.to_string()
                .contains("Request failed for the checksum file"),
            "{err}"
        );
        std::fs::write(h.path("SHA256SUMS"), format!("{hex}  install.sh\n")).expect("w");
        let err = h
            .run::<GetUrl>(
                json!({"url": format!("file://{src}"), "dest": h.path("out3"),
                    "checksum": format!("sha256:file://{}", h.path("SHA256SUMS"))}),
                false,
                false,
            )
            .await
            .expect_err("not listed");
        assert!(
            err.to_string()
                .contains("Unable to find a checksum for file 'k3s'"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn check_mode_asks_the_server_as_ansible_does() {
        if no_curl() {
            return;
        }
        let h = Harness::new();
        let src = h.path("src.bin");
        std::fs::write(&src, "payload\n").expect("write");
        let out = h
            .run::<GetUrl>(
                json!({"url": format!("file://{src}"), "dest": h.path("out")}),
                true,
                false,
            )
            .await
            .expect("reachable");
        assert!(out.changed, "would download");
        assert!(!std::path::Path::new(&h.path("out")).exists(), "check mode");
        let err = h
            .run::<GetUrl>(
                json!({"url": format!("file://{}", h.path("gone")), "dest": h.path("out")}),
                true,
                false,
            )
            .await
            .expect_err("unreachable");
        assert!(err.to_string().contains("Request failed"), "{err}");
    }

    #[test]
    fn secrets_stay_off_the_command_line() {
        let m = module(json!({
            "url": "https://x/y", "dest": "/tmp/y",
            "headers": {"Authorization": "Bearer s3cret"},
            "url_username": "u", "url_password": "pw"
        }));
        let c = GetUrlChange {
            path: "/tmp/y".into(),
            download: true,
            fix: None,
            sum: None,
        };
        let s = m.download_script(&c, false).expect("script");
        assert!(!s.contains("s3cret") && !s.contains("pw"), "{s}");
        assert!(
            !s.contains("wget -q"),
            "wget cannot take headers from stdin"
        );
        let cfg = m.curl_config().expect("config");
        assert!(cfg.contains("header = \"Authorization: Bearer s3cret\"\n"));
        assert!(cfg.contains("user = \"u:pw\"\n"));
    }

    #[tokio::test]
    async fn downloads_file_urls_once() {
        if no_curl() {
            return;
        }
        let h = Harness::new();
        let src = h.path("src.bin");
        std::fs::write(&src, "payload\n").expect("write");
        let url = format!("file://{src}");
        let sum = "sha256:e2c5ab9a5b4ce4ad4ee9a1b4c3a8b0f0a6e0a2f8d2b3c4e5f60718293a4b5c6d";
        let dir = h.path("d");
        std::fs::create_dir(&dir).expect("dir");
        // A wrong checksum fails and leaves nothing behind.
        let err = h
            .run::<GetUrl>(
                json!({"url": url, "dest": dir, "checksum": sum}),
                false,
                false,
            )
            .await
            .expect_err("mismatch");
        assert!(err.to_string().contains("Checksum mismatch"), "{err}");
        assert_eq!(std::fs::read_dir(&dir).expect("ls").count(), 0);

        let good = format!(
            "sha256:{}",
            String::from_utf8(
                std::process::Command::new("sha256sum")
                    .arg(&src)
                    .output()
                    .expect("sha256sum")
                    .stdout
            )
            .expect("utf8")
            .split(' ')
            .next()
            .expect("hex")
        );
        let args = json!({"url": url, "dest": dir, "checksum": good, "mode": "0600"});
        let out = h
            .run::<GetUrl>(args.clone(), true, false)
            .await
            .expect("check");
        assert!(out.changed);
        assert!(!std::path::Path::new(&h.path("d/src.bin")).exists());
        let out = h
            .run::<GetUrl>(args.clone(), false, false)
            .await
            .expect("download");
        assert!(out.changed);
        assert_eq!(out.data["dest"], json!(h.path("d/src.bin")));
        assert_eq!(
            std::fs::read_to_string(h.path("d/src.bin")).expect("r"),
            "payload\n"
        );
        assert_eq!(mode_of(&h.path("d/src.bin")), 0o600);
        h.take_execs();
        let out = h.run::<GetUrl>(args, false, false).await.expect("again");
        assert!(!out.changed);
        assert_eq!(h.take_execs(), 1, "one read, no download");

        // No checksum: an existing file is kept, unless forced.
        let dest = h.path("plain");
        std::fs::write(&dest, "old\n").expect("write");
        let out = h
            .run::<GetUrl>(json!({"url": url, "dest": dest}), false, false)
            .await
            .expect("kept");
        assert!(!out.changed);
        assert_eq!(std::fs::read_to_string(&dest).expect("r"), "old\n");
        let forced = json!({"url": url, "dest": dest, "force": true});
        let out = h
            .run::<GetUrl>(forced.clone(), false, false)
            .await
            .expect("forced");
        assert!(out.changed);
        assert_eq!(std::fs::read_to_string(&dest).expect("r"), "payload\n");
        let out = h.run::<GetUrl>(forced, false, false).await.expect("same");
        assert!(!out.changed, "same content is no change");
        let names: Vec<_> = std::fs::read_dir(h.root())
            .expect("ls")
            .map(|e| e.expect("e").file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("drover-get_url"))
            .collect();
        assert!(names.is_empty(), "temp files left: {names:?}");

        let err = h
            .run::<GetUrl>(
                json!({"url": format!("file://{}", h.path("missing")), "dest": h.path("m")}),
                false,
                false,
            )
            .await
            .expect_err("missing source");
        assert!(err.to_string().contains("Request failed"), "{err}");
    }
}
