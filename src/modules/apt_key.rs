//! `apt_key` (ansible.builtin.apt_key, deprecated there but widely used):
//! add or remove an OpenPGP key in APT's keyrings with gpg, the way
//! `apt-key` did (which newer Debian no longer ships): keyrings are read
//! and rewritten as plain exported keys (binary, or armored for `.asc`)
//! in a throw-away GNUPGHOME, so root's own gpg home is never touched.
//!
//! The key (from `url`, `data`, `file` or a keyserver) has to be read on
//! the host to learn its id, so the module reads and decides itself
//! (imperative protocol); the read changes nothing, so check mode is exact.

use async_trait::async_trait;
use base64::Engine as _;
use serde::Deserialize;

use super::args::{bool_ish, opt_string_ish, yes, Presence};
use super::get_url::curl_quote;
use super::{Module, ModuleCtx, ModuleError, Plan};
use crate::transport::shell_quote;
use crate::{Map, Value};

/// The keyring `apt-key add` writes without `--keyring`.
const DEFAULT_KEYRING: &str = "/etc/apt/trusted.gpg";
/// The keyrings APT reads besides it.
const KEYRING_DIR: &str = "/etc/apt/trusted.gpg.d";

/// Arguments of `apt_key`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AptKey {
    /// Key id: 8, 16 or more hex digits (optional `0x`).
    #[serde(default, deserialize_with = "opt_string_ish")]
    id: Option<String>,
    /// URL to download the key from (on the host).
    #[serde(default, deserialize_with = "opt_string_ish")]
    url: Option<String>,
    /// The key itself.
    #[serde(default, deserialize_with = "opt_string_ish")]
    data: Option<String>,
    /// A key file on the host.
    #[serde(default, deserialize_with = "opt_string_ish")]
    file: Option<String>,
    /// The keyring to add to or remove from.
    #[serde(default, deserialize_with = "opt_string_ish")]
    keyring: Option<String>,
    /// Keyserver to receive `id` from.
    #[serde(default, deserialize_with = "opt_string_ish")]
    keyserver: Option<String>,
    /// Verify TLS certificates of `url`.
    #[serde(default = "yes", deserialize_with = "bool_ish")]
    validate_certs: bool,
    /// `present` or `absent`.
    #[serde(default)]
    state: Presence,
}

/// A key id split as Ansible splits it: last 8, last 16, all (upper case).
fn parse_key_id(id: &str) -> Result<(String, String, String), ModuleError> {
    let up = id.trim().to_ascii_uppercase();
    let up = up.strip_prefix("0X").unwrap_or(&up).to_string();
    if up.is_empty() || !up.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ModuleError::failed(format!("Invalid key_id: {id}")));
    }
    let n = up.len();
    if n != 8 && n != 16 && n <= 16 {
        return Err(ModuleError::failed(format!(
            "Invalid key_id: key_id must be 8, 16, or 16+ hexadecimal characters in length ({id})"
        )));
    }
    let short = up[n - 8..].to_string();
    let fp = if n > 16 {
        up[n - 16..].to_string()
    } else {
        up.clone()
    };
    Ok((short, fp, up))
}

/// What the host has.
#[derive(Debug, Default, PartialEq)]
struct Seen {
    /// The id of the given key (first `pub` of `gpg --show-keys`).
    key_id: Option<String>,
    /// The key's bytes (url, data or file), for `apply`.
    key: Option<Vec<u8>>,
    /// Keyring file → long ids of the keys in it (not expired or revoked).
    rings: Vec<(String, Vec<String>)>,
}

fn parse_seen(out: &str) -> Result<Seen, super::OutputError> {
    let b64 = |s: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(s.trim())
            .map_err(|e| super::OutputError::Malformed(format!("bad output: {e}")))
    };
    let mut seen = Seen::default();
    let mut done = false;
    for line in out.lines() {
        if line == "@@end" {
            done = true;
        } else if let Some(k) = line.strip_prefix("@@key ") {
            seen.key = Some(b64(k)?);
        } else if let Some(l) = line.strip_prefix("@@given ") {
            if seen.key_id.is_none() {
                seen.key_id = colon_key(l);
            }
        } else if let Some(r) = line.strip_prefix("@@ring ") {
            let name = String::from_utf8_lossy(&b64(r)?).into_owned();
            seen.rings.push((name, Vec::new()));
        } else if let Some(l) = line.strip_prefix("@@in ") {
            if let (Some(k), Some((_, ids))) = (colon_key(l), seen.rings.last_mut()) {
                ids.push(k);
            }
        }
    }
    if !done {
        return Err(super::OutputError::Incomplete);
    }
    Ok(seen)
}

/// The long key id of a `pub`/`sub` line of `gpg --with-colons`, unless
/// the key is expired or revoked.
fn colon_key(line: &str) -> Option<String> {
    let f: Vec<&str> = line.split(':').collect();
    let kind = *f.first()?;
    if kind != "pub" && kind != "sub" {
        return None;
    }
    if matches!(f.get(1), Some(&"e") | Some(&"r")) {
        return None;
    }
    f.get(4)
        .filter(|k| !k.is_empty())
        .map(|k| k.to_ascii_uppercase())
}

/// What `apply` does.
#[derive(Debug, PartialEq)]
pub enum KeyChange {
    /// Import into this keyring: the key's bytes, or receive from a keyserver.
    Add {
        /// The keyring file.
        keyring: String,
        /// The key (None: from the keyserver).
        key: Option<Vec<u8>>,
    },
    /// Remove the key from these keyrings.
    Remove {
        /// The keyring files that hold it.
        keyrings: Vec<String>,
    },
}

const GPG_HOME: &str = "command -v gpg >/dev/null 2>&1 || { echo 'apt_key needs gpg on the host (install gnupg)' >&2; exit 95; }\n\
umask 022\nw=$(mktemp -d) || exit 1\ntrap 'rm -rf -- \"$w\"' EXIT\nexport GNUPGHOME=\"$w/home\"\nmkdir -m 0700 \"$GNUPGHOME\"\n";

impl AptKey {
    fn check_args(&self) -> Result<(), ModuleError> {
        let sources = [&self.data, &self.file, &self.keyserver, &self.url]
            .iter()
            .filter(|v| v.is_some())
            .count();
        if sources > 1 {
            return Err(ModuleError::Args(
                "parameters are mutually exclusive: data|file|keyserver|url".into(),
            ));
        }
        if self.keyserver.is_some() && self.id.is_none() {
            return Err(ModuleError::Args(
                "Missing key_id, required with keyserver.".into(),
            ));
        }
        if self.id.is_none() && sources == 0 {
            return Err(ModuleError::Args(
                "one of id, url, data or file is required".into(),
            ));
        }
        if let Some(id) = &self.id {
            parse_key_id(id).map_err(|e| ModuleError::Args(e.to_string()))?;
        }
        for (arg, v) in [
            ("url", &self.url),
            ("file", &self.file),
            ("keyring", &self.keyring),
            ("keyserver", &self.keyserver),
        ] {
            if let Some(v) = v {
                super::safe::one_line(arg, v)?;
            }
        }
        if let Some(k) = &self.keyserver {
            super::safe::not_option("keyserver", k)?;
        }
        Ok(())
    }

    /// Reads the given key and every keyring that counts.
    fn read_script(&self) -> String {
        let mut s = String::from(GPG_HOME);
        if self.url.is_some() {
            let insecure = if self.validate_certs { "" } else { " -k" };
            s.push_str(&format!(
                "command -v curl >/dev/null 2>&1 || {{ echo 'apt_key needs curl on the host for url' >&2; exit 95; }}\n\
                 curl -fsSL{insecure} --max-time 30 -K - -o \"$w/key\" || {{ echo 'Failed to download key' >&2; exit 94; }}\n"
            ));
        } else if self.data.is_some() {
            s.push_str("cat > \"$w/key\"\n");
        } else if let Some(f) = &self.file {
            s.push_str(&format!("cp -- {} \"$w/key\" || exit 93\n", shell_quote(f)));
        }
        s.push_str(
            "if [ -f \"$w/key\" ]; then printf '@@key '; base64 -w0 < \"$w/key\"; echo\n\
             gpg --batch --with-colons --show-keys \"$w/key\" 2>/dev/null | sed 's/^/@@given /' || exit 92; fi\n",
        );
        let rings = match &self.keyring {
            Some(k) => shell_quote(k),
            None => format!(
                "{} {}/*.gpg {}/*.asc",
                shell_quote(DEFAULT_KEYRING),
                shell_quote(KEYRING_DIR),
                shell_quote(KEYRING_DIR)
            ),
        };
        s.push_str(&format!(
            "for r in {rings}; do [ -f \"$r\" ] || continue\n\
             printf '@@ring %s\\n' \"$(printf %s \"$r\" | base64 -w0)\"\n\
             gpg --batch --with-colons --show-keys \"$r\" 2>/dev/null | sed 's/^/@@in /'\n\
             done\necho '@@end'\n"
        ));
        s
    }

    fn keyring(&self) -> String {
        self.keyring
            .clone()
            .unwrap_or_else(|| DEFAULT_KEYRING.into())
    }

    fn decide(&self, seen: &Seen) -> Result<Plan<KeyChange>, ModuleError> {
        let id = match (&self.id, &seen.key_id) {
            (Some(id), _) => id.clone(),
            (None, Some(k)) => k.clone(),
            (None, None) => {
                return Err(ModuleError::failed(
                    "Unable to extract key from the given key (no public key in it)",
                ))
            }
        };
        let mut data = Map::new();
        data.insert("id".into(), Value::from(id.clone()));
        let (short, fp, key_id) = parse_key_id(&id)?;
        data.insert("short_id".into(), Value::from(short.clone()));
        data.insert("fp".into(), Value::from(fp.clone()));
        data.insert("key_id".into(), Value::from(key_id.clone()));
        let short_format = key_id.len() == 8;
        let norm = |k: &str| {
            if short_format {
                k[k.len().saturating_sub(8)..].to_string()
            } else {
                k.to_string()
            }
        };
        let want = if short_format { &short } else { &fp };
        let before: Vec<String> = seen
            .rings
            .iter()
            .flat_map(|(_, ids)| ids.iter().map(|k| norm(k)))
            .collect();
        data.insert("before".into(), Value::from(before.clone()));
        let present = before.contains(want);
        match self.state {
            Presence::Present if present => Ok(Plan::Unchanged(data)),
            Presence::Present => Ok(Plan::Change {
                change: KeyChange::Add {
                    keyring: self.keyring(),
                    key: seen.key.clone(),
                },
                diff: None,
                data,
            }),
            Presence::Absent => {
                let keyrings: Vec<String> = seen
                    .rings
                    .iter()
                    .filter(|(_, ids)| ids.iter().any(|k| norm(k) == *want))
                    .map(|(r, _)| r.clone())
                    .collect();
                if keyrings.is_empty() {
                    Ok(Plan::Unchanged(data))
                } else {
                    Ok(Plan::Change {
                        change: KeyChange::Remove { keyrings },
                        diff: None,
                        data,
                    })
                }
            }
        }
    }

    /// Rebuild `ring` with the keys now in the temp home (`.asc` armored).
    fn export(ring: &str) -> String {
        let armor = if ring.ends_with(".asc") {
            " --armor"
        } else {
            ""
        };
        format!(
            "r={r}\nt=\"$(dirname -- \"$r\")/.$(basename -- \"$r\").drover-apt_key.$$\"\n\
             gpg --batch{armor} --export > \"$t\" || {{ rm -f -- \"$t\"; exit 1; }}\n\
             if [ -s \"$t\" ]; then chmod 0644 -- \"$t\" && mv -f -- \"$t\" \"$r\" || {{ rm -f -- \"$t\"; exit 1; }}\n\
             else rm -f -- \"$t\" \"$r\"; fi\n",
            r = shell_quote(ring)
        )
    }

    fn fingerprint(&self, id: &str) -> Result<String, ModuleError> {
        Ok(parse_key_id(id)?.2)
    }
}

#[async_trait]
impl Module for AptKey {
    const NAME: &'static str = "apt_key";
    const ARGS: &'static [&'static str] = &[
        "id",
        "url",
        "data",
        "file",
        "keyring",
        "keyserver",
        "validate_certs",
        "state",
    ];
    type Change = KeyChange;

    fn validate(&self) -> Result<(), super::ArgError> {
        self.check_args()
            .map_err(|e| super::ArgError::from(e.to_string()))
    }

    async fn run_imperative(&self, ctx: &ModuleCtx<'_>) -> Result<Plan<KeyChange>, ModuleError> {
        self.check_args()?;
        let stdin = match (&self.url, &self.data) {
            (Some(u), _) => format!("url = {}\n", curl_quote(u)),
            (None, Some(d)) => d.clone(),
            _ => String::new(),
        };
        let out = ctx
            .remote
            .exec(&self.read_script(), stdin.as_bytes())
            .await?;
        let why = match out.status {
            0 => None,
            95 => Some(String::new()),
            94 => Some(format!(
                "Failed to download key at {}: ",
                self.url.as_deref().unwrap_or("")
            )),
            93 => Some(format!(
                "Unable to read key file {}: ",
                self.file.as_deref().unwrap_or("")
            )),
            _ => Some("reading the keys failed: ".into()),
        };
        if let Some(why) = why {
            return Err(ModuleError::failed(format!(
                "{why}{}",
                out.stderr_str().trim()
            )));
        }
        let seen = super::reads::parse_read(&out, "the APT keys", parse_seen)?;
        self.decide(&seen)
    }

    async fn apply(&self, ctx: &ModuleCtx<'_>, change: KeyChange) -> Result<Map, ModuleError> {
        let mut s = String::from(GPG_HOME);
        let mut stdin = Vec::new();
        match &change {
            KeyChange::Add { keyring, key } => {
                s.push_str(&format!(
                    "r={}\nif [ -f \"$r\" ]; then gpg --batch --import \"$r\" 2>/dev/null || {{ echo \"cannot read keyring $r\" >&2; exit 1; }}; fi\n\
                     mkdir -p -- \"$(dirname -- \"$r\")\" || exit 1\n",
                    shell_quote(keyring)
                ));
                match (key, &self.keyserver, &self.id) {
                    (Some(k), _, _) => {
                        stdin = k.clone();
                        s.push_str("gpg --batch --import 2>\"$w/err\" || { cat \"$w/err\" >&2; echo 'Unable to add a key' >&2; exit 1; }\n");
                    }
                    (None, Some(ks), Some(id)) => {
                        s.push_str(&format!(
                            "i=0; until gpg --batch --keyserver {} --recv-keys {} 2>\"$w/err\"; do i=$((i+1)); if [ $i -ge 5 ]; then cat \"$w/err\" >&2; exit 1; fi; done\n",
                            shell_quote(ks),
                            shell_quote(&self.fingerprint(id)?)
                        ));
                    }
                    _ => return Err(ModuleError::failed("No key to add")),
                }
                s.push_str(&Self::export(keyring));
            }
            KeyChange::Remove { keyrings } => {
                let id = match &self.id {
                    Some(id) => self.fingerprint(id)?,
                    None => return Err(ModuleError::failed("key is required to remove a key")),
                };
                for r in keyrings {
                    s.push_str(&format!(
                        "rm -rf -- \"$GNUPGHOME\"; mkdir -m 0700 \"$GNUPGHOME\"\n\
                         gpg --batch --import {r} 2>/dev/null || exit 1\n\
                         for f in $(gpg --batch --with-colons --list-keys {id} 2>/dev/null | awk -F: '$1==\"fpr\"{{print $10; exit}}'); do gpg --batch --yes --delete-keys \"$f\" || exit 1; done\n",
                        r = shell_quote(r),
                        id = shell_quote(&id)
                    ));
                    s.push_str(&Self::export(r));
                }
            }
        }
        let out = ctx.remote.exec(&s, &stdin).await?;
        if out.status != 0 {
            return Err(ModuleError::failed(format!(
                "apt_key failed: {}",
                out.stderr_str().trim()
            )));
        }
        Ok(Map::new())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::modules::testutil::assert_args_complete;

    fn module(v: Value) -> AptKey {
        serde_json::from_value(v).expect("args")
    }

    #[test]
    fn args() {
        assert_args_complete::<AptKey>();
    }

    #[test]
    fn key_ids_split_as_ansible_splits_them() {
        assert_eq!(
            parse_key_id("0x9dc858229fc7dd38854ae2d88d81803c0ebfcd88").expect("ok"),
            (
                "0EBFCD88".to_string(),
                "8D81803C0EBFCD88".to_string(),
                "9DC858229FC7DD38854AE2D88D81803C0EBFCD88".to_string()
            )
        );
        assert_eq!(parse_key_id("0ebfcd88").expect("ok").1, "0EBFCD88");
        assert!(parse_key_id("12345").is_err());
        assert!(parse_key_id("0EBFCD8Z").is_err());
        assert!(parse_key_id("1234567890").is_err());
    }

    #[test]
    fn colon_lines_give_long_ids_of_live_keys() {
        assert_eq!(
            colon_key("pub:u:255:22:8D81803C0EBFCD88:1700000000:::u:::scESC:::::ed25519:::0:")
                .as_deref(),
            Some("8D81803C0EBFCD88")
        );
        assert_eq!(colon_key("pub:e:255:22:AAAA:::"), None);
        assert_eq!(colon_key("uid:u::::::::x"), None);
    }

    fn seen(rings: &[(&str, &[&str])]) -> Seen {
        Seen {
            key_id: Some("8D81803C0EBFCD88".into()),
            key: Some(b"k".to_vec()),
            rings: rings
                .iter()
                .map(|(r, ids)| (r.to_string(), ids.iter().map(|s| s.to_string()).collect()))
                .collect(),
        }
    }

    #[test]
    fn a_missing_key_is_added_and_a_present_one_is_not() {
        let m = module(json!({"data": "k", "keyring": "/etc/apt/trusted.gpg.d/lab.gpg"}));
        let Ok(Plan::Change { change, data, .. }) = m.decide(&seen(&[])) else {
            panic!("add");
        };
        assert_eq!(
            change,
            KeyChange::Add {
                keyring: "/etc/apt/trusted.gpg.d/lab.gpg".into(),
                key: Some(b"k".to_vec())
            }
        );
        assert_eq!(data["fp"], json!("8D81803C0EBFCD88"));
        let have = seen(&[("/etc/apt/trusted.gpg.d/lab.gpg", &["8D81803C0EBFCD88"])]);
        assert!(matches!(m.decide(&have), Ok(Plan::Unchanged(_))));
        // A short id compares by its last 8 digits.
        let m = module(json!({"id": "0EBFCD88", "keyserver": "hkp://k"}));
        assert!(matches!(m.decide(&have), Ok(Plan::Unchanged(_))));
    }

    #[test]
    fn absent_removes_from_every_keyring_that_holds_it() {
        let m = module(json!({"id": "8D81803C0EBFCD88", "state": "absent"}));
        let have = seen(&[
            ("/etc/apt/trusted.gpg", &["1111111111111111"]),
            ("/etc/apt/trusted.gpg.d/x.gpg", &["8D81803C0EBFCD88"]),
        ]);
        let Ok(Plan::Change { change, .. }) = m.decide(&have) else {
            panic!("remove");
        };
        assert_eq!(
            change,
            KeyChange::Remove {
                keyrings: vec!["/etc/apt/trusted.gpg.d/x.gpg".into()]
            }
        );
        assert!(matches!(m.decide(&seen(&[])), Ok(Plan::Unchanged(_))));
    }

    #[test]
    fn refuses_conflicting_sources() {
        assert!(module(json!({"url": "http://x", "data": "k"}))
            .check_args()
            .is_err());
        assert!(module(json!({"keyserver": "k"})).check_args().is_err());
        assert!(module(json!({"state": "absent"})).check_args().is_err());
        assert!(module(json!({"id": "xyz"})).check_args().is_err());
    }
}
