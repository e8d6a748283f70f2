//! `ansible.cfg` and the `ANSIBLE_*` environment variables, found and read
//! as ansible-core 2.19 reads them: the first file of `ANSIBLE_CONFIG`,
//! `./ansible.cfg` (unless the current directory is world-writable),
//! `~/.ansible.cfg` and `/etc/ansible/ansible.cfg`, parsed with Python
//! `configparser`'s rules; an environment variable wins over the file, a
//! command-line flag (applied by the CLI) over both.
//!
//! Only the settings drover acts on are read; other keys are ignored, as
//! Ansible ignores keys it does not know. A value drover cannot honour
//! (`stdout_callback = yaml`, `become_method = doas`) is refused with the
//! place it was set, before anything runs.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Nothing set it: drover's default.
    Default,
    /// A line of the configuration file.
    File {
        /// The file.
        path: PathBuf,
        /// 1-based line of the key.
        line: usize,
    },
    /// An environment variable.
    Env(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::File { path, line } => write!(f, "{}:{line}", path.display()),
            Origin::Env(name) => write!(f, "env {name}"),
        }
    }
}

/// A configuration file that cannot be read, or a value drover refuses.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read the configuration file: {reason}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Not an ini file as Python's configparser reads it.
    #[error("{}:{line}: {msg}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        msg: String,
    },
    /// A setting's value is not one drover can use.
    #[error("{origin}: {msg}")]
    Value {
        /// Where the value was set.
        origin: Origin,
        /// What is wrong, naming the setting.
        msg: String,
    },
}

/// One `key = value` of an ini file, continuation lines joined with `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IniValue {
    /// The value, stripped.
    pub value: String,
    /// 1-based line of the key.
    pub line: usize,
}

/// An ini file as Python's `configparser.ConfigParser(inline_comment_prefixes=(';',))`
/// reads it with `raw=True` (Ansible's way): keys are lower-cased, section
/// names are not; `[DEFAULT]` keys apply to every section.
#[derive(Debug, Clone, Default)]
pub struct Ini {
    /// The file (for messages).
    pub path: PathBuf,
    sections: HashMap<String, HashMap<String, IniValue>>,
    defaults: HashMap<String, IniValue>,
}

/// The section name configparser gives the keys shared by all sections.
const DEFAULT_SECTION: &str = "DEFAULT";

impl Ini {
    /// Parse `text`; `path` names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Ini, ConfigError> {
        let err = |line: usize, msg: String| ConfigError::Syntax {
            path: path.to_path_buf(),
            line,
            msg,
        };
        let mut ini = Ini {
            path: path.to_path_buf(),
            ..Ini::default()
        };
        // The section being read (None before the first header) and the
        // key whose value continuation lines extend, with its lines.
        let mut section: Option<String> = None;
        let mut current: Option<(String, Vec<String>, usize)> = None;
        let mut indent_level = 0usize;
        let mut seen_sections: HashSet<String> = HashSet::new();
        let mut seen_keys: HashSet<(String, String)> = HashSet::new();
        let flush =
            |ini: &mut Ini, section: &Option<String>, cur: Option<(String, Vec<String>, usize)>| {
                if let (Some(s), Some((key, lines, line))) = (section, cur) {
                    let value = IniValue {
                        value: lines.join("\n").trim_end().to_string(),
                        line,
                    };
                    if s == DEFAULT_SECTION {
                        ini.defaults.insert(key, value);
                    } else {
                        ini.sections
                            .entry(s.clone())
                            .or_default()
                            .insert(key, value);
                    }
                }
            };
        for (n, raw) in text.lines().enumerate() {
            let lineno = n + 1;
            let comment_start = comment_start(raw);
            let value = raw[..comment_start.unwrap_or(raw.len())].trim();
            if value.is_empty() {
                // configparser keeps an empty line inside a value (it
                // joins the lines later and strips the end), unless the
                // line held a comment.
                if comment_start.is_none() {
                    if let Some((_, lines, _)) = current.as_mut() {
                        lines.push(String::new());
                    }
                }
                continue;
            }
            let indent = raw.len() - raw.trim_start().len();
            if current.is_some() && indent > indent_level {
                if let Some((_, lines, _)) = current.as_mut() {
                    lines.push(value.to_string());
                }
                continue;
            }
            indent_level = indent;
            if let Some(name) = value.strip_prefix('[').and_then(header_name) {
                flush(&mut ini, &section, current.take());
                if name != DEFAULT_SECTION && !seen_sections.insert(name.to_string()) {
                    return Err(err(lineno, format!("section '{name}' already exists")));
                }
                if name != DEFAULT_SECTION {
                    ini.sections.entry(name.to_string()).or_default();
                }
                section = Some(name.to_string());
                continue;
            }
            let Some(sect) = &section else {
                return Err(err(
                    lineno,
                    format!("a key before any [section] header: {}", raw.trim()),
                ));
            };
            let Some(at) = value.find(['=', ':']) else {
                return Err(err(
                    lineno,
                    format!(
                        "not a section header, a `key = value` line or a comment: {}",
                        raw.trim()
                    ),
                ));
            };
            let key = value[..at].trim_end().to_lowercase();
            if key.is_empty() {
                return Err(err(
                    lineno,
                    format!("a value without a key: {}", raw.trim()),
                ));
            }
            if !seen_keys.insert((sect.clone(), key.clone())) {
                return Err(err(
                    lineno,
                    format!("option '{key}' in section '{sect}' already exists"),
                ));
            }
            flush(&mut ini, &section, current.take());
            current = Some((key, vec![value[at + 1..].trim().to_string()], lineno));
        }
        flush(&mut ini, &section, current.take());
        Ok(ini)
    }

    /// The value of `key` in `section` (or in `[DEFAULT]` when the section
    /// exists without it), as configparser's `get(..., fallback=None)`.
    pub fn get(&self, section: &str, key: &str) -> Option<&IniValue> {
        let keys = self.sections.get(section)?;
        keys.get(key).or_else(|| self.defaults.get(key))
    }
}

/// Where a line's comment starts: the whole line when its first
/// non-blank character is `#` or `;`, else an inline `;` at the start or
/// after whitespace (`inline_comment_prefixes=(';',)`).
fn comment_start(line: &str) -> Option<usize> {
    let trimmed = line.trim();
    if trimmed.starts_with('#') || trimmed.starts_with(';') {
        return Some(0);
    }
    let mut prev_space = true;
    for (i, c) in line.char_indices() {
        if c == ';' && prev_space {
            return Some(i);
        }
        prev_space = c.is_whitespace();
    }
    None
}

/// The name of a `[name]` header (given the text after `[`).
fn header_name(rest: &str) -> Option<&str> {
    let name = rest.strip_suffix(']')?;
    (!name.is_empty()).then_some(name)
}

/// One setting: where Ansible reads it from, lowest precedence first within
/// each list (a later entry that is set wins, as in ansible-core).
struct Def {
    /// `[section] key` entries.
    ini: &'static [(&'static str, &'static str)],
    /// Environment variables.
    env: &'static [&'static str],
}

const INVENTORY: Def = Def {
    ini: &[("defaults", "inventory")],
    env: &["ANSIBLE_INVENTORY"],
};
const REMOTE_USER: Def = Def {
    ini: &[("defaults", "remote_user")],
    env: &["ANSIBLE_REMOTE_USER"],
};
const PRIVATE_KEY_FILE: Def = Def {
    ini: &[("defaults", "private_key_file")],
    env: &["ANSIBLE_PRIVATE_KEY_FILE"],
};
const HOST_KEY_CHECKING: Def = Def {
    ini: &[
        ("defaults", "host_key_checking"),
        ("ssh_connection", "host_key_checking"),
    ],
    env: &["ANSIBLE_HOST_KEY_CHECKING", "ANSIBLE_SSH_HOST_KEY_CHECKING"],
};
const FORKS: Def = Def {
    ini: &[("defaults", "forks")],
    env: &["ANSIBLE_FORKS"],
};
const TIMEOUT: Def = Def {
    ini: &[("defaults", "timeout"), ("ssh_connection", "timeout")],
    env: &["ANSIBLE_TIMEOUT", "ANSIBLE_SSH_TIMEOUT"],
};
const ROLES_PATH: Def = Def {
    ini: &[("defaults", "roles_path")],
    env: &["ANSIBLE_ROLES_PATH"],
};
const COLLECTIONS_PATH: Def = Def {
    ini: &[
        ("defaults", "collections_path"),
        ("defaults", "collections_paths"),
    ],
    env: &["ANSIBLE_COLLECTIONS_PATH", "ANSIBLE_COLLECTIONS_PATHS"],
};
const VAULT_PASSWORD_FILE: Def = Def {
    ini: &[("defaults", "vault_password_file")],
    env: &["ANSIBLE_VAULT_PASSWORD_FILE"],
};
const VAULT_IDENTITY_LIST: Def = Def {
    ini: &[("defaults", "vault_identity_list")],
    env: &["ANSIBLE_VAULT_IDENTITY_LIST"],
};
const STDOUT_CALLBACK: Def = Def {
    ini: &[("defaults", "stdout_callback")],
    env: &["ANSIBLE_STDOUT_CALLBACK"],
};
const BECOME: Def = Def {
    ini: &[("privilege_escalation", "become")],
    env: &["ANSIBLE_BECOME"],
};
const BECOME_USER: Def = Def {
    ini: &[("privilege_escalation", "become_user")],
    env: &["ANSIBLE_BECOME_USER"],
};
const BECOME_METHOD: Def = Def {
    ini: &[("privilege_escalation", "become_method")],
    env: &["ANSIBLE_BECOME_METHOD"],
};
const SSH_ARGS: Def = Def {
    ini: &[("ssh_connection", "ssh_args")],
    env: &["ANSIBLE_SSH_ARGS"],
};
const PIPELINING: Def = Def {
    ini: &[
        ("defaults", "pipelining"),
        ("connection", "pipelining"),
        ("ssh_connection", "pipelining"),
    ],
    env: &["ANSIBLE_PIPELINING", "ANSIBLE_SSH_PIPELINING"],
};

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting<T> {
    /// The value, typed.
    pub value: T,
    /// Where it was set.
    pub origin: Origin,
}

/// The settings drover takes from ansible.cfg and the environment; `None`
/// where neither sets one (drover's default applies).
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// The configuration file read, if any.
    pub file: Option<PathBuf>,
    /// `inventory` / `ANSIBLE_INVENTORY`.
    pub inventory: Option<Setting<PathBuf>>,
    /// `remote_user` / `ANSIBLE_REMOTE_USER`: the user where no variable,
    /// keyword or `-u` names one.
    pub remote_user: Option<Setting<String>>,
    /// `private_key_file` / `ANSIBLE_PRIVATE_KEY_FILE`.
    pub private_key_file: Option<Setting<PathBuf>>,
    /// `host_key_checking` / `ANSIBLE_HOST_KEY_CHECKING`.
    pub host_key_checking: Option<Setting<bool>>,
    /// `forks` / `ANSIBLE_FORKS`.
    pub forks: Option<Setting<usize>>,
    /// `timeout` / `ANSIBLE_TIMEOUT`, in seconds.
    pub timeout: Option<Setting<u64>>,
    /// `roles_path` / `ANSIBLE_ROLES_PATH`.
    pub roles_path: Option<Setting<Vec<PathBuf>>>,
    /// `collections_path` / `ANSIBLE_COLLECTIONS_PATH`.
    pub collections_path: Option<Setting<Vec<PathBuf>>>,
    /// `vault_password_file` / `ANSIBLE_VAULT_PASSWORD_FILE`.
    pub vault_password_file: Option<Setting<PathBuf>>,
    /// `vault_identity_list` / `ANSIBLE_VAULT_IDENTITY_LIST`: `label@source` entries.
    pub vault_identity_list: Option<Setting<Vec<String>>>,
    /// `stdout_callback` / `ANSIBLE_STDOUT_CALLBACK` (only `default`).
    pub stdout_callback: Option<Setting<String>>,
    /// `[privilege_escalation] become` / `ANSIBLE_BECOME`.
    pub become_: Option<Setting<bool>>,
    /// `become_user` / `ANSIBLE_BECOME_USER`.
    pub become_user: Option<Setting<String>>,
    /// `become_method` / `ANSIBLE_BECOME_METHOD` (`sudo` or `su`).
    pub become_method: Option<Setting<String>>,
    /// `[ssh_connection] ssh_args` / `ANSIBLE_SSH_ARGS`.
    pub ssh_args: Option<Setting<String>>,
    /// `pipelining` / `ANSIBLE_PIPELINING` (accepted; drover's way of
    /// running modules does not change with it).
    pub pipelining: Option<Setting<bool>>,
}

/// What the process sees: environment, current directory and home, given
/// to [`find`] and [`Settings::resolve`] so tests can supply their own.
pub struct Context<'a> {
    /// An environment variable's value.
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// The current directory.
    pub cwd: Option<PathBuf>,
    /// `$HOME`.
    pub home: Option<PathBuf>,
}

impl Context<'_> {
    /// The process's own environment, directory and home.
    pub fn process() -> Context<'static> {
        Context {
            env: &|name| std::env::var(name).ok(),
            cwd: std::env::current_dir().ok(),
            home: std::env::var_os("HOME").map(PathBuf::from),
        }
    }

    fn var(&self, name: &str) -> Option<String> {
        (self.env)(name).filter(|v| !v.is_empty())
    }

    /// A path as Ansible resolves one (`unfrackpath`): `$VARS` and `~`
    /// expanded, a relative path taken from `base` (the configuration
    /// file's directory, or the current directory).
    fn resolve_path(&self, raw: &str, base: Option<&Path>) -> PathBuf {
        let expanded = self.expand_vars(raw);
        let p = match (expanded.strip_prefix('~'), &self.home) {
            (Some(""), Some(h)) => h.clone(),
            (Some(rest), Some(h)) if rest.starts_with('/') => h.join(&rest[1..]),
            _ => PathBuf::from(&expanded),
        };
        if p.is_absolute() {
            return p;
        }
        match base.or(self.cwd.as_deref()) {
            Some(b) => b.join(p),
            None => p,
        }
    }

    /// `$NAME` and `${NAME}` replaced by their values; unknown names stay
    /// as written (Python's `os.path.expandvars`).
    fn expand_vars(&self, s: &str) -> String {
        let mut out = String::new();
        let mut rest = s;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            let (name, consumed) = if let Some(inner) = after.strip_prefix('{') {
                match inner.find('}') {
                    Some(end) => (&inner[..end], end + 2),
                    None => ("", 0),
                }
            } else {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..end], end)
            };
            match (self.env)(name).filter(|_| !name.is_empty()) {
                Some(v) => {
                    out.push_str(&v);
                    rest = &after[consumed..];
                }
                None => {
                    out.push('$');
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }
}

/// The configuration file to read and the warnings finding it gave.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    /// The file, if one exists.
    pub path: Option<PathBuf>,
    /// Said once to the user: a world-writable current directory's
    /// ansible.cfg ignored, an `ANSIBLE_CONFIG` that names nothing.
    pub warnings: Vec<String>,
}

fn readable_file(p: &Path) -> bool {
    p.is_file() && std::fs::File::open(p).is_ok()
}

/// Find the configuration file where Ansible looks, first found wins:
/// `ANSIBLE_CONFIG` (a file, or a directory holding ansible.cfg),
/// `./ansible.cfg` (skipped in a world-writable directory),
/// `~/.ansible.cfg`, `/etc/ansible/ansible.cfg`.
pub fn find(cx: &Context<'_>) -> Found {
    find_in(cx, Path::new("/etc/ansible/ansible.cfg"))
}

fn find_in(cx: &Context<'_>, system: &Path) -> Found {
    use std::os::unix::fs::PermissionsExt;
    let mut found = Found::default();
    let mut candidates: Vec<PathBuf> = Vec::new();
    let from_env = (cx.env)("ANSIBLE_CONFIG").map(|v| {
        let p = cx.resolve_path(&v, None);
        if p.is_dir() {
            p.join("ansible.cfg")
        } else {
            p
        }
    });
    if let Some(p) = &from_env {
        candidates.push(p.clone());
    }
    let mut skipped_cwd: Option<(PathBuf, PathBuf)> = None;
    if let Some(cwd) = &cx.cwd {
        let cfg = cwd.join("ansible.cfg");
        match std::fs::metadata(cwd) {
            Ok(m) if m.permissions().mode() & 0o002 != 0 => {
                if cfg.exists() {
                    skipped_cwd = Some((cwd.clone(), cfg));
                }
            }
            Ok(_) => candidates.push(cfg),
            Err(_) => {}
        }
    }
    if let Some(home) = &cx.home {
        candidates.push(home.join(".ansible.cfg"));
    }
    candidates.push(system.to_path_buf());
    found.path = candidates.into_iter().find(|p| readable_file(p));
    if let Some(p) = &from_env {
        if found.path.as_ref() != Some(p) {
            found.warnings.push(format!(
                "ANSIBLE_CONFIG names {}, which is not a readable file: not used",
                p.display()
            ));
        }
    }
    if let Some((dir, cfg)) = skipped_cwd {
        if from_env.is_none() || found.path != from_env {
            found.warnings.push(format!(
                "the current directory {} is world-writable (as all of /mnt/c is under WSL): \
                 {} is ignored, as Ansible ignores it, because anyone could have put it there. \
                 If it is yours, name it with ANSIBLE_CONFIG={} (or move the project into \
                 the Linux file system)",
                dir.display(),
                cfg.display(),
                cfg.display()
            ));
        }
    }
    found
}

/// A raw value and where it came from; `base` is the directory relative
/// paths are taken from (the file's, `None` for the current directory).
struct Raw {
    text: String,
    origin: Origin,
    base: Option<PathBuf>,
}

impl Raw {
    fn bad(&self, msg: String) -> ConfigError {
        ConfigError::Value {
            origin: self.origin.clone(),
            msg,
        }
    }

    fn setting<T>(self, value: T) -> Setting<T> {
        Setting {
            value,
            origin: self.origin,
        }
    }

    /// A string value: quotes around an ini value are removed, as Ansible does.
    fn string(&self) -> String {
        match self.origin {
            Origin::File { .. } => unquote(&self.text).to_string(),
            _ => self.text.clone(),
        }
    }
}

/// `"x"` or `'x'` → `x` (Ansible's `unquote`).
fn unquote(s: &str) -> &str {
    let b = s.as_bytes();
    if b.len() > 1
        && b[0] == b[b.len() - 1]
        && (b[0] == b'"' || b[0] == b'\'')
        && b[b.len() - 2] != b'\\'
    {
        &s[1..s.len() - 1]
    } else {
        s
    }
}

/// Ansible's boolean spellings (`module_utils.parsing.convert_bool`).
/// Ansible reads anything else as false; drover refuses it, so that a typo
/// does not turn host key checking off.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_lowercase().as_str() {
        "y" | "yes" | "on" | "1" | "true" | "t" | "1.0" => Some(true),
        "n" | "no" | "off" | "0" | "false" | "f" | "0.0" => Some(false),
        _ => None,
    }
}

/// The values of `stdout_callback` drover's output is.
const DEFAULT_CALLBACKS: [&str; 2] = ["default", "ansible.builtin.default"];

impl Settings {
    /// Read `found`'s file (if any) and the environment.
    pub fn load(cx: &Context<'_>, file: Option<&Path>) -> Result<Settings, ConfigError> {
        let ini = match file {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| ConfigError::Read {
                    path: p.to_path_buf(),
                    reason: e.to_string(),
                })?;
                Some(Ini::parse(&text, p)?)
            }
            None => None,
        };
        Settings::resolve(cx, ini.as_ref())
    }

    /// The settings from a parsed file (if any) and the environment.
    pub fn resolve(cx: &Context<'_>, ini: Option<&Ini>) -> Result<Settings, ConfigError> {
        let raw = |def: &Def| -> Option<Raw> {
            let from_env = def.env.iter().rev().find_map(|name| {
                cx.var(name).map(|text| Raw {
                    text,
                    origin: Origin::Env(name),
                    base: None,
                })
            });
            from_env.or_else(|| {
                let ini = ini?;
                def.ini.iter().rev().find_map(|(section, key)| {
                    ini.get(section, key).map(|v| Raw {
                        text: v.value.clone(),
                        origin: Origin::File {
                            path: ini.path.clone(),
                            line: v.line,
                        },
                        base: ini.path.parent().map(Path::to_path_buf),
                    })
                })
            })
        };
        let path = |r: Raw| {
            let p = cx.resolve_path(&r.text, r.base.as_deref());
            r.setting(p)
        };
        let boolean = |name: &str, r: Raw| -> Result<Setting<bool>, ConfigError> {
            match parse_bool(&r.text) {
                Some(b) => Ok(r.setting(b)),
                None => Err(r.bad(format!(
                    "{name} = {}: not a boolean (yes/no, true/false, on/off, 1/0)",
                    r.text
                ))),
            }
        };
        let number = |name: &str, r: Raw| -> Result<Setting<u64>, ConfigError> {
            match r.text.trim().parse::<u64>() {
                Ok(n) if n > 0 => Ok(r.setting(n)),
                _ => Err(r.bad(format!("{name} = {}: not a whole number above 0", r.text))),
            }
        };
        let string = |r: Raw| {
            let s = r.string();
            r.setting(s)
        };
        let mut s = Settings {
            file: ini.map(|i| i.path.clone()),
            ..Settings::default()
        };
        if let Some(r) = raw(&INVENTORY) {
            let sources: Vec<&str> = r
                .text
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .collect();
            if sources.len() != 1 {
                return Err(r.bad(format!(
                    "inventory = {}: drover reads one inventory (a file or a directory), this names {}",
                    r.text,
                    sources.len()
                )));
            }
            let p = cx.resolve_path(sources[0], r.base.as_deref());
            s.inventory = Some(r.setting(p));
        }
        s.remote_user = raw(&REMOTE_USER).map(string);
        s.private_key_file = raw(&PRIVATE_KEY_FILE).map(path);
        s.host_key_checking = raw(&HOST_KEY_CHECKING)
            .map(|r| boolean("host_key_checking", r))
            .transpose()?;
        s.forks = raw(&FORKS)
            .map(|r| number("forks", r))
            .transpose()?
            .map(|n| Setting {
                value: usize::try_from(n.value).unwrap_or(usize::MAX),
                origin: n.origin,
            });
        s.timeout = raw(&TIMEOUT).map(|r| number("timeout", r)).transpose()?;
        let path_list = |r: Raw| {
            let paths = r
                .text
                .split(':')
                .filter(|p| !p.is_empty())
                .map(|p| cx.resolve_path(p, r.base.as_deref()))
                .collect();
            r.setting(paths)
        };
        s.roles_path = raw(&ROLES_PATH).map(path_list);
        s.collections_path = raw(&COLLECTIONS_PATH).map(path_list);
        s.vault_password_file = raw(&VAULT_PASSWORD_FILE).map(path);
        s.vault_identity_list = raw(&VAULT_IDENTITY_LIST).map(|r| {
            let ids = r
                .text
                .split(',')
                .map(|x| unquote(x.trim()).to_string())
                .filter(|x| !x.is_empty())
                .collect();
            r.setting(ids)
        });
        if let Some(r) = raw(&STDOUT_CALLBACK) {
            let name = r.string();
            if !DEFAULT_CALLBACKS.contains(&name.as_str()) {
                return Err(r.bad(format!(
                    "stdout_callback = {name}: drover has one output, Ansible's default \
                     callback (and `--output json` for machines); remove the setting or \
                     set it to default"
                )));
            }
            s.stdout_callback = Some(r.setting(name));
        }
        s.become_ = raw(&BECOME).map(|r| boolean("become", r)).transpose()?;
        s.become_user = raw(&BECOME_USER).map(string);
        if let Some(r) = raw(&BECOME_METHOD) {
            let m = r.string();
            if crate::transport::BecomeMethod::parse(&m).is_none() {
                return Err(r.bad(format!(
                    "become_method = {m}: drover becomes with sudo or su only"
                )));
            }
            s.become_method = Some(r.setting(m));
        }
        s.ssh_args = raw(&SSH_ARGS).map(string);
        s.pipelining = raw(&PIPELINING)
            .map(|r| boolean("pipelining", r))
            .transpose()?;
        Ok(s)
    }

    /// Every setting as `(name, value, origin)`, drover's default spelled
    /// out where nothing set one; for `drover config`.
    pub fn rows(&self) -> Vec<(&'static str, String, Origin)> {
        fn row<T>(
            name: &'static str,
            s: &Option<Setting<T>>,
            show: impl Fn(&T) -> String,
            default: &str,
        ) -> (&'static str, String, Origin) {
            match s {
                Some(s) => (name, show(&s.value), s.origin.clone()),
                None => (name, default.to_string(), Origin::Default),
            }
        }
        let path = |p: &PathBuf| p.display().to_string();
        let yes_no = |b: &bool| if *b { "True" } else { "False" }.to_string();
        let text = |s: &String| s.clone();
        vec![
            row("inventory", &self.inventory, path, "inventory/hosts.yml"),
            row("remote_user", &self.remote_user, text, "(the local user)"),
            row(
                "private_key_file",
                &self.private_key_file,
                path,
                "(~/.ssh/id_ed25519, id_ecdsa, id_rsa)",
            ),
            row("host_key_checking", &self.host_key_checking, yes_no, "True"),
            row(
                "forks",
                &self.forks,
                |n| n.to_string(),
                "(all hosts at once)",
            ),
            row("timeout", &self.timeout, |n| n.to_string(), "10"),
            row(
                "roles_path",
                &self.roles_path,
                |v| {
                    v.iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(":")
                },
                "~/.ansible/roles:/usr/share/ansible/roles:/etc/ansible/roles",
            ),
            row(
                "collections_path",
                &self.collections_path,
                |v| {
                    v.iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(":")
                },
                "~/.ansible/collections:/usr/share/ansible/collections",
            ),
            row(
                "vault_password_file",
                &self.vault_password_file,
                path,
                "(none)",
            ),
            row(
                "vault_identity_list",
                &self.vault_identity_list,
                |v| v.join(","),
                "(none)",
            ),
            row("stdout_callback", &self.stdout_callback, text, "default"),
            row("become", &self.become_, yes_no, "False"),
            row("become_user", &self.become_user, text, "root"),
            row("become_method", &self.become_method, text, "sudo"),
            row("ssh_args", &self.ssh_args, text, "(none)"),
            row(
                "pipelining",
                &self.pipelining,
                yes_no,
                "False (no effect in drover)",
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ini(text: &str) -> Ini {
        Ini::parse(text, Path::new("/p/ansible.cfg")).expect("parses")
    }

    fn val<'a>(i: &'a Ini, s: &str, k: &str) -> Option<&'a str> {
        i.get(s, k).map(|v| v.value.as_str())
    }

    #[test]
    fn ini_comments_delimiters_and_key_case_are_configparsers() {
        let i = ini(
            "# a comment\n; another\n[defaults]\nRemote_User = pi ; inline comment\n\
             forks: 7\ninventory=hosts;not a comment\n  # indented comment\n\
             [privilege_escalation]\nbecome = yes\n",
        );
        assert_eq!(val(&i, "defaults", "remote_user"), Some("pi"));
        assert_eq!(i.get("defaults", "remote_user").map(|v| v.line), Some(4));
        assert_eq!(val(&i, "defaults", "forks"), Some("7"));
        assert_eq!(
            val(&i, "defaults", "inventory"),
            Some("hosts;not a comment")
        );
        assert_eq!(val(&i, "privilege_escalation", "become"), Some("yes"));
        // Section names keep their case.
        assert_eq!(val(&i, "Defaults", "forks"), None);
    }

    #[test]
    fn ini_continuation_lines_join_with_newlines() {
        let i =
            ini("[ssh_connection]\nssh_args = -o A=1\n    -o B=2\n\n    -o C=3\n\ntimeout = 5\n");
        assert_eq!(
            val(&i, "ssh_connection", "ssh_args"),
            Some("-o A=1\n-o B=2\n\n-o C=3")
        );
        assert_eq!(val(&i, "ssh_connection", "timeout"), Some("5"));
    }

    #[test]
    fn ini_default_section_applies_to_existing_sections() {
        let i = ini("[DEFAULT]\nforks = 3\n[defaults]\n");
        assert_eq!(val(&i, "defaults", "forks"), Some("3"));
        assert_eq!(val(&i, "missing", "forks"), None);
    }

    #[test]
    fn ini_errors_name_the_line() {
        let bad = |text: &str| {
            Ini::parse(text, Path::new("a.cfg"))
                .expect_err("refused")
                .to_string()
        };
        assert!(bad("forks = 3\n").starts_with("a.cfg:1: a key before any [section]"));
        assert!(bad("[defaults]\njust words\n").starts_with("a.cfg:2: not a section header"));
        assert!(bad("[defaults]\nforks=1\nFORKS=2\n").contains("a.cfg:3: option 'forks'"));
        assert!(bad("[a]\n[b]\n[a]\n").starts_with("a.cfg:3: section 'a' already exists"));
    }

    fn cx<'a>(env: &'a dyn Fn(&str) -> Option<String>) -> Context<'a> {
        Context {
            env,
            cwd: Some(PathBuf::from("/work")),
            home: Some(PathBuf::from("/home/u")),
        }
    }

    #[test]
    fn booleans_take_ansibles_spellings_and_refuse_others() {
        for (s, b) in [
            ("yes", true),
            ("True", true),
            ("on", true),
            ("1", true),
            ("t", true),
        ] {
            assert_eq!(parse_bool(s), Some(b), "{s}");
        }
        for s in ["no", "False", "off", "0", "f", "N"] {
            assert_eq!(parse_bool(s), Some(false), "{s}");
        }
        let none = |_: &str| None;
        let i = ini("[defaults]\nhost_key_checking = Flase\n");
        let err = Settings::resolve(&cx(&none), Some(&i)).expect_err("typo refused");
        assert_eq!(
            err.to_string(),
            "/p/ansible.cfg:2: host_key_checking = Flase: not a boolean (yes/no, true/false, on/off, 1/0)"
        );
    }

    #[test]
    fn environment_wins_over_the_file_and_origins_say_where() {
        let i = ini(
            "[defaults]\nforks = 3\nremote_user = \"pi\"\nprivate_key_file = keys/pi\n\
             inventory = inv/hosts.yml\nroles_path = roles:~/more\n\
             collections_paths = cols\n\
             [ssh_connection]\nhost_key_checking = no\ntimeout = 30\n",
        );
        let env = |n: &str| match n {
            "ANSIBLE_FORKS" => Some("9".to_string()),
            "ANSIBLE_REMOTE_USER" => Some(String::new()),
            "ANSIBLE_SSH_TIMEOUT" => Some("4".to_string()),
            _ => None,
        };
        let s = Settings::resolve(&cx(&env), Some(&i)).expect("resolves");
        let forks = s.forks.expect("forks");
        assert_eq!(
            (forks.value, forks.origin),
            (9, Origin::Env("ANSIBLE_FORKS"))
        );
        // An empty variable is unset; quotes of an ini value go.
        let user = s.remote_user.expect("user");
        assert_eq!(user.value, "pi");
        assert_eq!(user.origin.to_string(), "/p/ansible.cfg:3");
        // Relative paths are the file's directory's, `~` is home.
        assert_eq!(
            s.private_key_file.expect("key").value,
            PathBuf::from("/p/keys/pi")
        );
        assert_eq!(
            s.inventory.expect("inv").value,
            PathBuf::from("/p/inv/hosts.yml")
        );
        assert_eq!(
            s.roles_path.expect("roles").value,
            [PathBuf::from("/p/roles"), PathBuf::from("/home/u/more")]
        );
        // The old plural spelling counts.
        let cols = s.collections_path.expect("collections");
        assert_eq!(cols.value, [PathBuf::from("/p/cols")]);
        assert_eq!(cols.origin.to_string(), "/p/ansible.cfg:7");
        // The [ssh_connection] spelling, and the later env name, count.
        assert_eq!(s.host_key_checking.map(|h| h.value), Some(false));
        assert_eq!(s.timeout.map(|t| t.value), Some(4));
    }

    #[test]
    fn env_paths_are_the_current_directorys() {
        let env = |n: &str| match n {
            "ANSIBLE_VAULT_PASSWORD_FILE" => Some("$SECRETS/pass".to_string()),
            "SECRETS" => Some("s".to_string()),
            "ANSIBLE_INVENTORY" => Some("~/inv".to_string()),
            _ => None,
        };
        let s = Settings::resolve(&cx(&env), None).expect("resolves");
        assert_eq!(
            s.vault_password_file.expect("vault").value,
            PathBuf::from("/work/s/pass")
        );
        assert_eq!(
            s.inventory.expect("inv").value,
            PathBuf::from("/home/u/inv")
        );
        assert!(s.file.is_none());
    }

    #[test]
    fn unsupported_values_are_refused_where_set() {
        let none = |_: &str| None;
        let refused = |text: &str| {
            Settings::resolve(&cx(&none), Some(&ini(text)))
                .expect_err("refused")
                .to_string()
        };
        let e = refused("[defaults]\nstdout_callback = yaml\n");
        assert!(
            e.starts_with("/p/ansible.cfg:2: stdout_callback = yaml: drover has one output"),
            "{e}"
        );
        let e = refused("[privilege_escalation]\nbecome_method = doas\n");
        assert!(e.contains(":2: become_method = doas"), "{e}");
        let e = refused("[defaults]\ninventory = a.yml, b.yml\n");
        assert!(e.contains("drover reads one inventory"), "{e}");
        let e = refused("[defaults]\nforks = five\n");
        assert!(e.contains("forks = five: not a whole number"), "{e}");
        let env = |n: &str| (n == "ANSIBLE_STDOUT_CALLBACK").then(|| "json".to_string());
        let e = Settings::resolve(&cx(&env), None)
            .expect_err("refused")
            .to_string();
        assert!(
            e.starts_with("env ANSIBLE_STDOUT_CALLBACK: stdout_callback = json"),
            "{e}"
        );
        let ok = ini("[defaults]\nstdout_callback = default\nunknown_key = 1\n[privilege_escalation]\nbecome_method = su\n");
        let s = Settings::resolve(&cx(&none), Some(&ok)).expect("accepted");
        assert_eq!(s.become_method.map(|m| m.value).as_deref(), Some("su"));
    }

    #[test]
    fn discovery_order_is_ansibles() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().expect("tempdir");
        let home = root.path().join("home");
        let cwd = root.path().join("cwd");
        let envdir = root.path().join("envdir");
        let system = root.path().join("etc.cfg");
        for d in [&home, &cwd, &envdir] {
            std::fs::create_dir_all(d).expect("mkdir");
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        let find_with = |config: Option<&Path>| {
            let config = config.map(|p| p.to_string_lossy().into_owned());
            let env = move |n: &str| (n == "ANSIBLE_CONFIG").then(|| config.clone()).flatten();
            let cx = Context {
                env: &env,
                cwd: Some(cwd.clone()),
                home: Some(home.clone()),
            };
            find_in(&cx, &system)
        };
        assert_eq!(find_with(None), Found::default());
        std::fs::write(&system, "").expect("write");
        assert_eq!(find_with(None).path, Some(system.clone()));
        std::fs::write(home.join(".ansible.cfg"), "").expect("write");
        assert_eq!(find_with(None).path, Some(home.join(".ansible.cfg")));
        std::fs::write(cwd.join("ansible.cfg"), "").expect("write");
        assert_eq!(find_with(None).path, Some(cwd.join("ansible.cfg")));
        // ANSIBLE_CONFIG: a directory holding ansible.cfg, or a file.
        std::fs::write(envdir.join("ansible.cfg"), "").expect("write");
        assert_eq!(
            find_with(Some(&envdir)).path,
            Some(envdir.join("ansible.cfg"))
        );
        let named = root.path().join("named.cfg");
        std::fs::write(&named, "").expect("write");
        assert_eq!(find_with(Some(&named)).path, Some(named.clone()));
        // One that names nothing is said, and the search goes on.
        let f = find_with(Some(&root.path().join("missing.cfg")));
        assert_eq!(f.path, Some(cwd.join("ansible.cfg")));
        assert!(
            f.warnings[0].contains("missing.cfg, which is not a readable file"),
            "{f:?}"
        );
    }

    #[test]
    fn a_world_writable_directorys_ansible_cfg_is_ignored_with_a_warning() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().expect("tempdir");
        let cwd = root.path().join("mnt-c");
        std::fs::create_dir(&cwd).expect("mkdir");
        std::fs::set_permissions(&cwd, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let cfg = cwd.join("ansible.cfg");
        std::fs::write(&cfg, "[defaults]\n").expect("write");
        let system = root.path().join("none");
        let run = |config: Option<String>| {
            let env = move |n: &str| (n == "ANSIBLE_CONFIG").then(|| config.clone()).flatten();
            let cx = Context {
                env: &env,
                cwd: Some(cwd.clone()),
                home: None,
            };
            find_in(&cx, &system)
        };
        let f = run(None);
        assert_eq!(f.path, None);
        assert_eq!(f.warnings.len(), 1, "{f:?}");
        assert!(f.warnings[0].contains("is world-writable"), "{f:?}");
        assert!(
            f.warnings[0].contains(&format!("ANSIBLE_CONFIG={}", cfg.display())),
            "{f:?}"
        );
        // Named with ANSIBLE_CONFIG, it is read without a word.
        let f = run(Some(cfg.to_string_lossy().into_owned()));
        assert_eq!(
            f,
            Found {
                path: Some(cfg.clone()),
                warnings: vec![]
            }
        );
    }
}
