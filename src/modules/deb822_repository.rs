//! `deb822_repository` (ansible.builtin.deb822_repository): keep an APT
//! source as `/etc/apt/sources.list.d/<slug>.sources` in deb822 format,
//! with the fields Ansible writes (sorted by argument name, booleans as
//! yes/no, lists space-separated, multi-line values indented), and its
//! `signed_by` key: a path on the host is used as it is, key text is
//! written inline, a URL is downloaded on the host (curl) into
//! `/etc/apt/keyrings/<slug>.asc` or `.gpg`.
//!
//! The key URL has to be fetched to know whether it changed, so the
//! module reads and decides itself (imperative protocol); the fetch
//! changes nothing, so check mode stays exact.

use async_trait::async_trait;
use base64::Engine as _;
use serde::Deserialize;

use super::args::{opt_bool_ish, opt_string_ish, opt_strings_ish, opt_u64_ish, Presence};
use super::fs::{write_file_atomic, Attrs, Mode};
use super::get_url::curl_quote;
use super::{Diff, Module, ModuleCtx, ModuleError, Plan};
use crate::transport::shell_quote;
use crate::{Map, Value};

const KEYRINGS_DIR: &str = "/etc/apt/keyrings";

/// Arguments of `deb822_repository`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deb822Repository {
    /// Name of the repository; the file is named after it.
    name: String,
    /// `present` or `absent`.
    #[serde(default)]
    state: Presence,
    /// Mode of the .sources file.
    #[serde(default)]
    mode: Option<Value>,
    /// `Types`: deb and/or deb-src.
    #[serde(default, deserialize_with = "opt_strings_ish")]
    types: Option<Vec<String>>,
    /// `URIs`.
    #[serde(default, deserialize_with = "opt_strings_ish")]
    uris: Option<Vec<String>>,
    /// `Suites`.
    #[serde(default, deserialize_with = "opt_strings_ish")]
    suites: Option<Vec<String>>,
    /// `Components`.
    #[serde(default, deserialize_with = "opt_strings_ish")]
    components: Option<Vec<String>>,
    /// `Signed-By`: a key file on the host, key text, or a URL to download.
    #[serde(default, deserialize_with = "opt_string_ish")]
    signed_by: Option<String>,
    /// `Architectures`.
    #[serde(default, deserialize_with = "opt_strings_ish")]
    architectures: Option<Vec<String>>,
    /// `Languages`.
    #[serde(default, deserialize_with = "opt_strings_ish")]
    languages: Option<Vec<String>>,
    /// `Targets`.
    #[serde(default, deserialize_with = "opt_strings_ish")]
    targets: Option<Vec<String>>,
    /// `Enabled`.
    #[serde(default, deserialize_with = "opt_bool_ish")]
    enabled: Option<bool>,
    /// `Trusted`.
    #[serde(default, deserialize_with = "opt_bool_ish")]
    trusted: Option<bool>,
    /// `Allow-Insecure`.
    #[serde(default, deserialize_with = "opt_bool_ish")]
    allow_insecure: Option<bool>,
    /// `Allow-Weak`.
    #[serde(default, deserialize_with = "opt_bool_ish")]
    allow_weak: Option<bool>,
    /// `Allow-Downgrade-To-Insecure`.
    #[serde(default, deserialize_with = "opt_bool_ish")]
    allow_downgrade_to_insecure: Option<bool>,
    /// `By-Hash`.
    #[serde(default, deserialize_with = "opt_bool_ish")]
    by_hash: Option<bool>,
    /// `Check-Date`.
    #[serde(default, deserialize_with = "opt_bool_ish")]
    check_date: Option<bool>,
    /// `Check-Valid-Until`.
    #[serde(default, deserialize_with = "opt_bool_ish")]
    check_valid_until: Option<bool>,
    /// `Date-Max-Future`.
    #[serde(default, deserialize_with = "opt_u64_ish")]
    date_max_future: Option<u64>,
    /// `Inrelease-Path`.
    #[serde(default, deserialize_with = "opt_string_ish")]
    inrelease_path: Option<String>,
    /// `Pdiffs`.
    #[serde(default, deserialize_with = "opt_bool_ish")]
    pdiffs: Option<bool>,
}

/// The file's slug, as Ansible makes it: lower case, runs of `_` and
/// whitespace as `-`, then anything but `a-z0-9-` dropped.
fn slug(name: &str) -> String {
    let lower = name.to_lowercase();
    let mut dashed = String::new();
    let mut in_run = false;
    for c in lower.chars() {
        if c == '_' || c.is_whitespace() {
            if !in_run {
                dashed.push('-');
            }
            in_run = true;
        } else {
            dashed.push(c);
            in_run = false;
        }
    }
    dashed
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')
        .collect()
}

/// A multi-line value as deb822 continues it: each line indented, empty
/// lines as ` .`.
fn multiline(v: &str) -> String {
    let body: Vec<String> = v
        .trim()
        .lines()
        .map(|l| {
            let t = l.trim();
            format!("    {}", if t.is_empty() { "." } else { t })
        })
        .collect();
    format!("\n{}", body.join("\n"))
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.into()
}

/// Where the signed_by value points, as the host answered.
#[derive(Debug, Clone, PartialEq)]
enum KeySource {
    /// No signed_by.
    None,
    /// A file on the host: its path goes into the file.
    HostFile(String),
    /// Key text (or anything else that is no file nor URL): inline.
    Text(String),
    /// Downloaded from a URL: these bytes.
    Downloaded(Vec<u8>),
}

/// What the host has.
#[derive(Debug, Default, PartialEq)]
struct Seen {
    /// The .sources file: mode and content.
    sources: Option<(u32, String)>,
    /// `<slug>.asc` and `<slug>.gpg` in the keyrings dir: ext, mode, content.
    keys: Vec<(String, u32, Vec<u8>)>,
    /// Is signed_by a regular file on the host?
    signed_by_file: bool,
    /// The key downloaded from signed_by's URL.
    downloaded: Option<Vec<u8>>,
    /// Does the keyrings dir exist?
    keyrings_dir: bool,
}

fn parse_seen(out: &str) -> Result<Seen, super::OutputError> {
    let b64 = |s: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(s.trim())
            .map_err(|e| super::OutputError::Malformed(format!("bad output: {e}")))
    };
    let mode = |s: &str| {
        u32::from_str_radix(s, 8)
            .map_err(|_| super::OutputError::Malformed(format!("bad mode {s:?}")))
    };
    let mut seen = Seen::default();
    let mut done = false;
    for line in out.lines() {
        let mut w = line.splitn(4, ' ');
        match w.next() {
            Some("@@src") => {
                let m = mode(w.next().unwrap_or(""))?;
                let c = b64(w.next().unwrap_or(""))?;
                seen.sources = Some((m, String::from_utf8_lossy(&c).into_owned()));
            }
            Some("@@key") => {
                let ext = w.next().unwrap_or("").to_string();
                let m = mode(w.next().unwrap_or(""))?;
                seen.keys.push((ext, m, b64(w.next().unwrap_or(""))?));
            }
            Some("@@sbfile") => seen.signed_by_file = true,
            Some("@@kdir") => seen.keyrings_dir = true,
            Some("@@dl") => seen.downloaded = Some(b64(w.next().unwrap_or(""))?),
            Some("@@end") => done = true,
            _ => {}
        }
    }
    if !done {
        return Err(super::OutputError::Incomplete);
    }
    Ok(seen)
}

/// What `apply` does.
#[derive(Debug, PartialEq)]
pub struct Deb822Change {
    /// Write the .sources file with this text.
    sources: Option<String>,
    /// Set the .sources file's mode.
    sources_mode: Option<u32>,
    /// Create the keyrings dir.
    keyrings_dir: bool,
    /// Write this key file.
    key: Option<(String, Vec<u8>)>,
    /// Set this key file's mode to 0644.
    key_mode: Option<String>,
    /// Delete these files.
    remove: Vec<String>,
}

impl Deb822Repository {
    fn slug(&self) -> String {
        slug(&self.name)
    }

    fn sources_path(&self) -> String {
        format!("/etc/apt/sources.list.d/{}.sources", self.slug())
    }

    fn key_path(&self, ext: &str) -> String {
        format!("{KEYRINGS_DIR}/{}.{ext}", self.slug())
    }

    fn signed_by_url(&self) -> Option<&str> {
        self.signed_by
            .as_deref()
            .filter(|s| !s.contains('\n'))
            .filter(|s| {
                s.split_once("://").is_some_and(|(scheme, _)| {
                    !scheme.is_empty()
                        && scheme
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                })
            })
    }

    fn mode_bits(&self) -> Result<u32, ModuleError> {
        let m = match &self.mode {
            None | Some(Value::Null) => Mode::Bits(0o644),
            Some(v) => Mode::parse(v)?,
        };
        match m {
            Mode::Bits(b) => Ok(b),
            Mode::Symbolic(_) => m.resolve(0o644, false),
        }
    }

    fn check_args(&self) -> Result<(), ModuleError> {
        super::safe::one_line("name", &self.name)?;
        if self.slug().is_empty() {
            return Err(ModuleError::Args(format!(
                "name {:?} leaves no file name (letters, digits and '-' are kept)",
                self.name
            )));
        }
        for t in self.types.iter().flatten() {
            if t != "deb" && t != "deb-src" {
                return Err(ModuleError::Args(format!(
                    "types: value must be one of: deb, deb-src, got: {t}"
                )));
            }
        }
        let lists = [
            &self.uris,
            &self.suites,
            &self.components,
            &self.architectures,
            &self.languages,
            &self.targets,
        ];
        for v in lists.into_iter().flatten().flatten() {
            super::safe::one_line("a list value", v)?;
        }
        for v in [&self.inrelease_path].into_iter().flatten() {
            super::safe::one_line("inrelease_path", v)?;
        }
        if let Some(u) = self.signed_by_url() {
            super::safe::one_line("signed_by", u)?;
        }
        self.mode_bits()?;
        Ok(())
    }

    /// The deb822 text, with `signed_by` as it will be written.
    fn render(&self, signed_by: Option<&str>) -> String {
        let list = |v: &Option<Vec<String>>| v.as_ref().map(|l| l.join(" "));
        let types = list(&self.types).unwrap_or_else(|| "deb".into());
        // Sorted by argument name, as Ansible adds them.
        let fields: Vec<(&str, Option<String>)> = vec![
            (
                "Allow-Downgrade-To-Insecure",
                self.allow_downgrade_to_insecure.map(yes_no),
            ),
            ("Allow-Insecure", self.allow_insecure.map(yes_no)),
            ("Allow-Weak", self.allow_weak.map(yes_no)),
            ("Architectures", list(&self.architectures)),
            ("By-Hash", self.by_hash.map(yes_no)),
            ("Check-Date", self.check_date.map(yes_no)),
            ("Check-Valid-Until", self.check_valid_until.map(yes_no)),
            ("Components", list(&self.components)),
            (
                "Date-Max-Future",
                self.date_max_future.map(|n| n.to_string()),
            ),
            ("Enabled", self.enabled.map(yes_no)),
            ("Inrelease-Path", self.inrelease_path.clone()),
            ("Languages", list(&self.languages)),
            ("X-Repolib-Name", Some(self.name.clone())),
            ("Pdiffs", self.pdiffs.map(yes_no)),
            ("Signed-By", signed_by.map(str::to_string)),
            ("Suites", list(&self.suites)),
            ("Targets", list(&self.targets)),
            ("Trusted", self.trusted.map(yes_no)),
            ("Types", Some(types)),
            ("URIs", list(&self.uris)),
        ];
        let mut out = String::new();
        for (k, v) in fields {
            let Some(v) = v else { continue };
            let v = if v.contains('\n') { multiline(&v) } else { v };
            if v.is_empty() || v.starts_with('\n') {
                out.push_str(&format!("{k}:{v}\n"));
            } else {
                out.push_str(&format!("{k}: {v}\n"));
            }
        }
        out
    }

    fn read_script(&self) -> String {
        let mut s = format!(
            "s={}\nif [ -f \"$s\" ]; then printf '@@src %s ' \"$(stat -c %a -- \"$s\")\"; base64 -w0 < \"$s\"; echo; fi\n",
            shell_quote(&self.sources_path())
        );
        for ext in ["asc", "gpg"] {
            s.push_str(&format!(
                "k={}\nif [ -f \"$k\" ]; then printf '@@key {ext} %s ' \"$(stat -c %a -- \"$k\")\"; base64 -w0 < \"$k\"; echo; fi\n",
                shell_quote(&self.key_path(ext))
            ));
        }
        s.push_str(&format!(
            "[ -d {} ] && echo '@@kdir'\n",
            shell_quote(KEYRINGS_DIR)
        ));
        s.push_str("sbfile=\n");
        if let Some(sb) = self.signed_by.as_deref().filter(|s| !s.contains('\n')) {
            s.push_str(&format!(
                "if [ -f {} ]; then echo '@@sbfile'; sbfile=1; fi\n",
                shell_quote(sb)
            ));
        }
        if self.signed_by_url().is_some() {
            // The URL goes to curl on stdin, as get_url sends it.
            s.push_str(
                "if [ -z \"$sbfile\" ]; then command -v curl >/dev/null 2>&1 || { echo 'deb822_repository needs curl on the host to download signed_by' >&2; exit 95; }\n\
                 k=$(curl -fsSL --max-time 30 -K - | base64 -w0) || { echo \"Could not fetch signed_by key\" >&2; exit 94; }\n\
                 printf '@@dl %s\\n' \"$k\"; fi\n",
            );
        }
        s.push_str("echo '@@end'\n");
        s
    }

    fn decide(&self, seen: &Seen) -> Result<(Plan<Deb822Change>, Map), ModuleError> {
        let path = self.sources_path();
        let mut data = Map::new();
        data.insert("dest".into(), Value::from(path.clone()));
        let mut change = Deb822Change {
            sources: None,
            sources_mode: None,
            keyrings_dir: false,
            key: None,
            key_mode: None,
            remove: Vec::new(),
        };
        if self.state == Presence::Absent {
            data.insert("repo".into(), Value::Null);
            data.insert("key_filename".into(), Value::from(self.key_path("gpg")));
            if seen.sources.is_some() {
                change.remove.push(path);
            }
            for (ext, _, _) in &seen.keys {
                change.remove.push(self.key_path(ext));
            }
            if change.remove.is_empty() {
                return Ok((Plan::Unchanged(data.clone()), data));
            }
            let diff = seen.sources.as_ref().map(|(_, t)| Diff {
                before_header: self.sources_path(),
                after_header: "/dev/null".into(),
                before: t.clone(),
                after: String::new(),
            });
            return Ok((
                Plan::Change {
                    change,
                    diff,
                    data: data.clone(),
                },
                data,
            ));
        }
        let source = match &self.signed_by {
            None => KeySource::None,
            Some(sb) if seen.signed_by_file => KeySource::HostFile(sb.clone()),
            Some(sb) => match &seen.downloaded {
                Some(bytes) if self.signed_by_url().is_some() => {
                    KeySource::Downloaded(bytes.clone())
                }
                _ => KeySource::Text(sb.clone()),
            },
        };
        let signed_by = match &source {
            KeySource::None => None,
            KeySource::HostFile(p) => Some(p.clone()),
            KeySource::Text(t) => Some(t.clone()),
            KeySource::Downloaded(bytes) => {
                let armored =
                    String::from_utf8_lossy(bytes).contains("-----BEGIN PGP PUBLIC KEY BLOCK-----");
                let ext = if armored { "asc" } else { "gpg" };
                let key_path = self.key_path(ext);
                match seen.keys.iter().find(|(e, _, _)| e == ext) {
                    Some((_, m, have)) => {
                        if have != bytes {
                            change.key = Some((key_path.clone(), bytes.clone()));
                        } else if *m != 0o644 {
                            change.key_mode = Some(key_path.clone());
                        }
                    }
                    None => change.key = Some((key_path.clone(), bytes.clone())),
                }
                change.keyrings_dir = change.key.is_some() && !seen.keyrings_dir;
                data.insert("key_filename".into(), Value::from(key_path.clone()));
                Some(key_path)
            }
        };
        if !data.contains_key("key_filename") {
            data.insert("key_filename".into(), Value::Null);
        }
        let text = self.render(signed_by.as_deref());
        data.insert("repo".into(), Value::from(text.clone()));
        let mode = self.mode_bits()?;
        let before = seen.sources.as_ref().map(|(_, t)| t.clone());
        match &seen.sources {
            Some((m, t)) => {
                if *t != text {
                    change.sources = Some(text.clone());
                }
                if *m != mode {
                    change.sources_mode = Some(mode);
                }
            }
            None => change.sources = Some(text.clone()),
        }
        let unchanged = change.sources.is_none()
            && change.sources_mode.is_none()
            && change.key.is_none()
            && change.key_mode.is_none();
        if unchanged {
            return Ok((Plan::Unchanged(data.clone()), data));
        }
        let diff = change.sources.as_ref().map(|t| Diff {
            before_header: if before.is_some() {
                path.clone()
            } else {
                "/dev/null".into()
            },
            after_header: path.clone(),
            before: before.unwrap_or_default(),
            after: t.clone(),
        });
        Ok((
            Plan::Change {
                change,
                diff,
                data: data.clone(),
            },
            data,
        ))
    }
}

#[async_trait]
impl Module for Deb822Repository {
    const NAME: &'static str = "deb822_repository";
    const ARGS: &'static [&'static str] = &[
        "name",
        "state",
        "mode",
        "types",
        "uris",
        "suites",
        "components",
        "signed_by",
        "architectures",
        "languages",
        "targets",
        "enabled",
        "trusted",
        "allow_insecure",
        "allow_weak",
        "allow_downgrade_to_insecure",
        "by_hash",
        "check_date",
        "check_valid_until",
        "date_max_future",
        "inrelease_path",
        "pdiffs",
    ];
    type Change = Deb822Change;

    fn validate(&self) -> Result<(), super::ArgError> {
        self.check_args()
            .map_err(|e| super::ArgError::from(e.to_string()))
    }

    async fn run_imperative(&self, ctx: &ModuleCtx<'_>) -> Result<Plan<Deb822Change>, ModuleError> {
        self.check_args()?;
        let stdin = self
            .signed_by_url()
            .map(|u| format!("url = {}\n", curl_quote(u)))
            .unwrap_or_default();
        let out = ctx
            .remote
            .exec(&self.read_script(), stdin.as_bytes())
            .await?;
        if out.status == 94 || out.status == 95 {
            return Err(ModuleError::failed(format!(
                "Could not fetch signed_by key: {}",
                out.stderr_str().trim()
            )));
        }
        let seen = super::reads::parse_read(&out, "the APT source", parse_seen)?;
        Ok(self.decide(&seen)?.0)
    }

    fn touches(&self, change: &Deb822Change) -> super::Touched {
        let mut paths = vec![self.sources_path()];
        paths.extend(change.key.iter().map(|(p, _)| p.clone()));
        paths.extend(change.key_mode.iter().cloned());
        paths.extend(change.remove.iter().cloned());
        if change.keyrings_dir {
            paths.push(KEYRINGS_DIR.into());
        }
        super::Touched::Paths(paths)
    }

    async fn apply(&self, ctx: &ModuleCtx<'_>, change: Deb822Change) -> Result<Map, ModuleError> {
        let mut script = String::new();
        if change.keyrings_dir {
            script.push_str(&format!(
                "mkdir -p -m 0755 -- {d} && chown root:root -- {d} || exit 1\n",
                d = shell_quote(KEYRINGS_DIR)
            ));
        }
        if let Some(p) = &change.key_mode {
            script.push_str(&format!("chmod 0644 -- {} || exit 1\n", shell_quote(p)));
        }
        if let Some(m) = change.sources_mode.filter(|_| change.sources.is_none()) {
            script.push_str(&format!(
                "chmod {m:04o} -- {} || exit 1\n",
                shell_quote(&self.sources_path())
            ));
        }
        if !change.remove.is_empty() {
            let q: Vec<String> = change.remove.iter().map(|p| shell_quote(p)).collect();
            script.push_str(&format!("rm -f -- {} || exit 1\n", q.join(" ")));
        }
        if !script.is_empty() {
            let out = ctx.remote.exec(&script, b"").await?;
            if out.status != 0 {
                return Err(ModuleError::failed(format!(
                    "deb822_repository failed: {}",
                    out.stderr_str().trim()
                )));
            }
        }
        if let Some((path, bytes)) = &change.key {
            let attrs = Attrs {
                mode: Some(Mode::Bits(0o644)),
                ..Attrs::default()
            };
            write_file_atomic(ctx.remote, path, bytes, &attrs, false).await?;
        }
        if let Some(text) = &change.sources {
            let attrs = Attrs {
                mode: Some(Mode::Bits(self.mode_bits()?)),
                ..Attrs::default()
            };
            write_file_atomic(
                ctx.remote,
                &self.sources_path(),
                text.as_bytes(),
                &attrs,
                false,
            )
            .await?;
        }
        Ok(Map::new())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::modules::testutil::assert_args_complete;

    fn module(v: Value) -> Deb822Repository {
        serde_json::from_value(v).expect("args")
    }

    #[test]
    fn args() {
        assert_args_complete::<Deb822Repository>();
    }

    #[test]
    fn slugs_are_made_as_ansible_makes_them() {
        assert_eq!(slug("Docker CE_stable"), "docker-ce-stable");
        assert_eq!(slug("Grafana  (OSS)"), "grafana-oss");
        assert_eq!(slug("!!"), "");
    }

    #[test]
    fn fields_are_written_in_ansible_order_and_form() {
        let m = module(
            json!({"name": "docker", "types": "deb", "uris": "https://download.docker.com/linux/debian",
            "suites": ["bookworm"], "components": ["stable"], "architectures": ["arm64", "amd64"],
            "enabled": true, "date_max_future": 10}),
        );
        assert_eq!(
            m.render(Some("/etc/apt/keyrings/docker.asc")),
            "Architectures: arm64 amd64\nComponents: stable\nDate-Max-Future: 10\nEnabled: yes\n\
             X-Repolib-Name: docker\nSigned-By: /etc/apt/keyrings/docker.asc\nSuites: bookworm\n\
             Types: deb\nURIs: https://download.docker.com/linux/debian\n"
        );
        assert_eq!(
            m.render(Some("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nabc\n-----END PGP PUBLIC KEY BLOCK-----\n")),
            "Architectures: arm64 amd64\nComponents: stable\nDate-Max-Future: 10\nEnabled: yes\n\
             X-Repolib-Name: docker\nSigned-By:\n    -----BEGIN PGP PUBLIC KEY BLOCK-----\n    .\n    abc\n    -----END PGP PUBLIC KEY BLOCK-----\n\
             Suites: bookworm\nTypes: deb\nURIs: https://download.docker.com/linux/debian\n"
        );
    }

    #[test]
    fn a_downloaded_key_is_written_once_and_the_file_converges() {
        let m = module(
            json!({"name": "Lab Repo", "uris": "http://x/debian", "suites": "bookworm",
            "components": "main", "signed_by": "http://x/key.asc"}),
        );
        let key = b"-----BEGIN PGP PUBLIC KEY BLOCK-----\nk\n".to_vec();
        let seen = Seen {
            downloaded: Some(key.clone()),
            ..Seen::default()
        };
        let (plan, data) = m.decide(&seen).expect("plan");
        let Plan::Change { change, .. } = plan else {
            panic!("new");
        };
        assert_eq!(
            change.key,
            Some(("/etc/apt/keyrings/lab-repo.asc".to_string(), key.clone()))
        );
        assert!(change.keyrings_dir);
        assert_eq!(
            data["key_filename"],
            json!("/etc/apt/keyrings/lab-repo.asc")
        );
        let text = change.sources.expect("sources");
        assert!(
            text.contains("Signed-By: /etc/apt/keyrings/lab-repo.asc\n"),
            "{text}"
        );
        let seen = Seen {
            downloaded: Some(key.clone()),
            sources: Some((0o644, text)),
            keys: vec![("asc".into(), 0o644, key)],
            keyrings_dir: true,
            ..Seen::default()
        };
        assert!(matches!(
            m.decide(&seen).expect("plan").0,
            Plan::Unchanged(_)
        ));
    }

    #[test]
    fn absent_removes_the_file_and_its_keys() {
        let m = module(json!({"name": "lab", "state": "absent"}));
        let seen = Seen {
            sources: Some((0o644, "Types: deb\n".into())),
            keys: vec![("gpg".into(), 0o644, vec![1])],
            ..Seen::default()
        };
        let Plan::Change { change, .. } = m.decide(&seen).expect("plan").0 else {
            panic!("change");
        };
        assert_eq!(
            change.remove,
            vec![
                "/etc/apt/sources.list.d/lab.sources".to_string(),
                "/etc/apt/keyrings/lab.gpg".to_string()
            ]
        );
        assert!(matches!(
            m.decide(&Seen::default()).expect("plan").0,
            Plan::Unchanged(_)
        ));
    }

    #[test]
    fn refuses_bad_types_and_names() {
        assert!(module(json!({"name": "x", "types": ["rpm"]}))
            .check_args()
            .is_err());
        assert!(module(json!({"name": "!!"})).check_args().is_err());
        assert!(
            module(json!({"name": "x", "uris": ["http://a\nTrusted: yes"]}))
                .check_args()
                .is_err()
        );
    }
}
