//! OpenSSH's client configuration (`~/.ssh/config`, `-F FILE`,
//! `/etc/ssh/ssh_config`), read as `ssh` reads it: `Host` and `Match`
//! blocks, `Include`, keywords in any case, `Key Value` and `Key=Value`,
//! the first value of each keyword wins. Files are parsed once per run
//! ([`Configs`]); looking a host up ([`resolve`]) walks the parsed lines.
//!
//! Only the keywords drover's SSH client can honour are kept (see
//! [`Keyword`]); every other one is reported as ignored, with its place.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The system-wide file, read after the user's (as ssh does).
pub const SYSTEM_CONFIG: &str = "/etc/ssh/ssh_config";

/// ssh's limit on nested `Include`s.
const MAX_INCLUDE_DEPTH: usize = 16;

/// Where a setting was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The file.
    pub file: Arc<PathBuf>,
    /// 1-based line.
    pub line: usize,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// A configuration file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A line ssh would refuse too.
    #[error("{at}: {msg}")]
    Syntax {
        /// Where.
        at: Origin,
        /// What is wrong.
        msg: String,
    },
    /// A file that exists but cannot be read.
    #[error("{}: cannot read: {msg}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The system's reason.
        msg: String,
    },
}

/// The keywords drover applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Keyword {
    /// `HostName`.
    HostName,
    /// `User`.
    User,
    /// `Port`.
    Port,
    /// `IdentityFile` (accumulates: every one is tried, in order).
    IdentityFile,
    /// `IdentitiesOnly`.
    IdentitiesOnly,
    /// `IdentityAgent`.
    IdentityAgent,
    /// `ProxyJump` and `ProxyCommand` share one slot: whichever comes
    /// first wins over later ones of either (ssh_config(5)).
    Proxy,
    /// `UserKnownHostsFile`.
    UserKnownHostsFile,
    /// `StrictHostKeyChecking`.
    StrictHostKeyChecking,
    /// `ConnectTimeout`.
    ConnectTimeout,
    /// `ServerAliveInterval`.
    ServerAliveInterval,
    /// `HostKeyAlias`.
    HostKeyAlias,
}

impl Keyword {
    fn of(lower: &str) -> Option<Keyword> {
        Some(match lower {
            "hostname" => Keyword::HostName,
            "user" => Keyword::User,
            "port" => Keyword::Port,
            "identityfile" => Keyword::IdentityFile,
            "identitiesonly" => Keyword::IdentitiesOnly,
            "identityagent" => Keyword::IdentityAgent,
            "proxyjump" | "proxycommand" => Keyword::Proxy,
            "userknownhostsfile" => Keyword::UserKnownHostsFile,
            "stricthostkeychecking" => Keyword::StrictHostKeyChecking,
            "connecttimeout" => Keyword::ConnectTimeout,
            "serveraliveinterval" => Keyword::ServerAliveInterval,
            "hostkeyalias" => Keyword::HostKeyAlias,
            _ => return None,
        })
    }
}

/// One parsed setting line.
#[derive(Debug, Clone)]
struct Opt {
    key: Option<Keyword>,
    /// The keyword as written (for messages).
    name: String,
    value: Value,
    line: usize,
}

/// A value, already checked as ssh checks it when it reads the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A word (a host name, a user, a path not yet expanded).
    Text(String),
    /// `Port`.
    Port(u16),
    /// `IdentitiesOnly`.
    Flag(bool),
    /// `ConnectTimeout`, `ServerAliveInterval` in seconds.
    Secs(u64),
    /// `ProxyJump` hops as written, or `None` for `none`.
    Jump(Option<String>),
    /// `ProxyCommand` as written (tokens unexpanded), or `None` for `none`.
    Command(Option<String>),
    /// `UserKnownHostsFile`: the files, unexpanded (`none`: no file).
    Files(Vec<String>),
    /// A keyword drover does not apply: its words.
    Other,
}

/// A list of patterns (`Host a b !c`, `Match host a,!b`).
#[derive(Debug, Clone)]
struct Patterns(Vec<(bool, String)>);

impl Patterns {
    /// ssh's rule: a negated pattern that matches excludes; otherwise
    /// any positive match includes.
    fn matches(&self, s: &str, fold_case: bool) -> bool {
        let mut hit = false;
        for (negated, p) in &self.0 {
            let m = if fold_case {
                wildcard(&p.to_ascii_lowercase(), &s.to_ascii_lowercase())
            } else {
                wildcard(p, s)
            };
            if m && *negated {
                return false;
            }
            hit |= m;
        }
        hit
    }

    fn parse(words: impl Iterator<Item = String>) -> Patterns {
        Patterns(
            words
                .filter(|w| !w.is_empty())
                .map(|w| match w.strip_prefix('!') {
                    Some(p) => (true, p.to_string()),
                    None => (false, w),
                })
                .collect(),
        )
    }
}

/// `*` any run of characters, `?` one character.
fn wildcard(pattern: &str, s: &str) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = (pattern.chars().collect(), s.chars().collect());
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// One criterion of a `Match` line.
#[derive(Debug, Clone)]
enum Criterion {
    All,
    Canonical,
    Final,
    Host(Patterns),
    OriginalHost(Patterns),
    User(Patterns),
    LocalUser(Patterns),
    /// `exec`: drover does not run commands to read a configuration; the
    /// command is taken as failed.
    Exec(String),
    /// `localnetwork`, `tagged`, `version`, `sessiontype`, `command`:
    /// not evaluated, taken as not matching.
    Unsupported(String),
}

#[derive(Debug, Clone)]
enum Cond {
    Host(Patterns),
    Match(Vec<(bool, Criterion)>),
}

#[derive(Debug, Clone)]
enum Item {
    /// A `Host` or `Match` line: the block it starts.
    Block(Cond, usize),
    Opt(Opt),
    /// The files an `Include` line named, in glob order.
    Include(Vec<ConfigFile>),
}

/// One parsed file (with the files it includes).
#[derive(Debug, Clone)]
pub struct ConfigFile {
    path: Arc<PathBuf>,
    items: Vec<Item>,
}

impl ConfigFile {
    /// Parse `text` as the file `path`; relative `Include`s are looked up
    /// in `include_dir` (`~/.ssh` for a user's file, `/etc/ssh` for the
    /// system's).
    pub fn parse(
        path: &Path,
        text: &str,
        include_dir: &Path,
        home: &Path,
    ) -> Result<ConfigFile, ConfigError> {
        parse_file(path, text, include_dir, home, 0)
    }

    /// Read and parse `path`; `None` when it does not exist.
    pub fn load(
        path: &Path,
        include_dir: &Path,
        home: &Path,
    ) -> Result<Option<ConfigFile>, ConfigError> {
        load_file(path, include_dir, home, 0)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn load_file(
    path: &Path,
    include_dir: &Path,
    home: &Path,
    depth: usize,
) -> Result<Option<ConfigFile>, ConfigError> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            parse_file(path, &text, include_dir, home, depth).map(Some)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ConfigError::Read {
            path: path.to_path_buf(),
            msg: e.to_string(),
        }),
    }
}

fn parse_file(
    path: &Path,
    text: &str,
    include_dir: &Path,
    home: &Path,
    depth: usize,
) -> Result<ConfigFile, ConfigError> {
    let file = Arc::new(path.to_path_buf());
    let mut items = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let at = Origin {
            file: file.clone(),
            line: n + 1,
        };
        let bad = |msg: String| ConfigError::Syntax {
            at: at.clone(),
            msg,
        };
        let line = raw.trim_end_matches('\r').trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key_end = line
            .find(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or(line.len());
        let name = &line[..key_end];
        // `Key Value`, `Key=Value`, `Key = Value`: one `=` at most.
        let rest = line[key_end..].trim_start();
        let rest = rest.strip_prefix('=').unwrap_or(rest).trim_start();
        let lower = name.to_ascii_lowercase();
        match lower.as_str() {
            "host" => {
                let words = split_words(rest).map_err(bad)?;
                if words.is_empty() {
                    return Err(bad("Host without a pattern".into()));
                }
                items.push(Item::Block(
                    Cond::Host(Patterns::parse(words.into_iter())),
                    n + 1,
                ));
            }
            "match" => {
                let cond = parse_match(rest).map_err(bad)?;
                items.push(Item::Block(cond, n + 1));
            }
            "include" => {
                if depth >= MAX_INCLUDE_DEPTH {
                    return Err(bad("Include nested too deeply".into()));
                }
                let words = split_words(rest).map_err(bad)?;
                if words.is_empty() {
                    return Err(bad("Include without a file".into()));
                }
                let mut files = Vec::new();
                for w in words {
                    let pattern = match tilde(&w, home) {
                        Some(p) => p,
                        None => include_dir.join(&w),
                    };
                    for p in glob(&pattern) {
                        if let Some(f) = load_file(&p, include_dir, home, depth + 1)? {
                            files.push(f);
                        }
                    }
                }
                items.push(Item::Include(files));
            }
            _ => {
                let key = Keyword::of(&lower);
                let value = parse_value(&lower, rest).map_err(bad)?;
                items.push(Item::Opt(Opt {
                    key,
                    name: name.to_string(),
                    value,
                    line: n + 1,
                }));
            }
        }
    }
    Ok(ConfigFile { path: file, items })
}

/// A value checked as ssh checks it.
fn parse_value(key: &str, rest: &str) -> Result<Value, String> {
    // The command keywords take the rest of the line as written.
    if key == "proxycommand" {
        if rest.is_empty() {
            return Err("ProxyCommand without a command".into());
        }
        return Ok(Value::Command(
            (!rest.eq_ignore_ascii_case("none")).then(|| rest.to_string()),
        ));
    }
    let words = split_words(rest)?;
    let Some(first) = words.first().cloned() else {
        if Keyword::of(key).is_some() {
            return Err(format!("{key} without a value"));
        }
        return Ok(Value::Other);
    };
    let one = || -> Result<String, String> {
        if words.len() > 1 {
            Err(format!(
                "{key}: one value expected, got '{}'",
                words.join(" ")
            ))
        } else {
            Ok(first.clone())
        }
    };
    Ok(match key {
        "hostname" | "user" | "identityfile" | "identityagent" | "hostkeyalias" => {
            Value::Text(one()?)
        }
        "port" => match one()?.parse::<u16>() {
            Ok(p) if p > 0 => Value::Port(p),
            _ => return Err(format!("Port: not a port number: {first}")),
        },
        "identitiesonly" => match one()?.to_ascii_lowercase().as_str() {
            "yes" | "true" => Value::Flag(true),
            "no" | "false" => Value::Flag(false),
            _ => return Err(format!("IdentitiesOnly: yes or no, not '{first}'")),
        },
        "stricthostkeychecking" => {
            let v = one()?.to_ascii_lowercase();
            match v.as_str() {
                "yes" | "no" | "ask" | "accept-new" | "off" | "true" | "false" => Value::Text(v),
                _ => return Err(format!("StrictHostKeyChecking: unknown value '{first}'")),
            }
        }
        "connecttimeout" | "serveraliveinterval" => match one()?.parse::<u64>() {
            Ok(s) => Value::Secs(s),
            Err(_) => return Err(format!("{key}: not a number of seconds: {first}")),
        },
        "proxyjump" => {
            let v = one()?;
            Value::Jump((!v.eq_ignore_ascii_case("none")).then_some(v))
        }
        "userknownhostsfile" => {
            if first.eq_ignore_ascii_case("none") {
                Value::Files(Vec::new())
            } else {
                Value::Files(words)
            }
        }
        _ => Value::Other,
    })
}

fn parse_match(rest: &str) -> Result<Cond, String> {
    let words = split_words(rest)?;
    if words.is_empty() {
        return Err("Match without criteria".into());
    }
    let mut out = Vec::new();
    let mut it = words.into_iter();
    while let Some(w) = it.next() {
        let (negated, name) = match w.strip_prefix('!') {
            Some(n) => (true, n.to_ascii_lowercase()),
            None => (false, w.to_ascii_lowercase()),
        };
        let mut arg = || {
            it.next()
                .ok_or_else(|| format!("Match {name} without an argument"))
        };
        let c = match name.as_str() {
            "all" => Criterion::All,
            "canonical" => Criterion::Canonical,
            "final" => Criterion::Final,
            "host" => Criterion::Host(Patterns::parse(arg()?.split(',').map(String::from))),
            "originalhost" => {
                Criterion::OriginalHost(Patterns::parse(arg()?.split(',').map(String::from)))
            }
            "user" => Criterion::User(Patterns::parse(arg()?.split(',').map(String::from))),
            "localuser" => {
                Criterion::LocalUser(Patterns::parse(arg()?.split(',').map(String::from)))
            }
            "exec" => Criterion::Exec(arg()?),
            "localnetwork" | "tagged" | "version" | "sessiontype" | "command" => {
                let a = arg()?;
                Criterion::Unsupported(format!("{name} {a}"))
            }
            _ => return Err(format!("Match: unknown criterion '{w}'")),
        };
        out.push((negated, c));
    }
    let all_alone = out.iter().any(|(_, c)| matches!(c, Criterion::All))
        && out
            .iter()
            .any(|(_, c)| !matches!(c, Criterion::All | Criterion::Canonical | Criterion::Final));
    if all_alone {
        return Err("Match all cannot be combined with other criteria".into());
    }
    Ok(Cond::Match(out))
}

/// Split a value into words as ssh does: whitespace separates, `"..."`
/// and `'...'` quote, a word starting with `#` ends the line.
fn split_words(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&c) = chars.peek() else { break };
        if c == '#' {
            break;
        }
        let mut word = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            chars.next();
            match c {
                '"' | '\'' => {
                    let mut closed = false;
                    for q in chars.by_ref() {
                        if q == c {
                            closed = true;
                            break;
                        }
                        word.push(q);
                    }
                    if !closed {
                        return Err(format!("unbalanced quote in '{s}'"));
                    }
                }
                '\\' => match chars.next() {
                    Some(n) if matches!(n, '\\' | '"' | '\'' | ' ') => word.push(n),
                    Some(n) => {
                        word.push('\\');
                        word.push(n);
                    }
                    None => word.push('\\'),
                },
                c => word.push(c),
            }
        }
        words.push(word);
    }
    Ok(words)
}

/// `~` and `~/...` with `home`; `None` for a relative path.
fn tilde(path: &str, home: &Path) -> Option<PathBuf> {
    if path == "~" {
        return Some(home.to_path_buf());
    }
    if let Some(rest) = path.strip_prefix("~/") {
        return Some(home.join(rest));
    }
    Path::new(path).is_absolute().then(|| PathBuf::from(path))
}

/// The files a glob names (`*`, `?` within a path component), sorted as
/// glob(3) sorts them; a path without wildcards names itself.
fn glob(pattern: &Path) -> Vec<PathBuf> {
    let mut found = vec![PathBuf::new()];
    for c in pattern.components() {
        let part = c.as_os_str().to_string_lossy();
        if !part.contains(['*', '?']) {
            found = found.into_iter().map(|p| p.join(&*part)).collect();
            continue;
        }
        let mut next = Vec::new();
        for dir in &found {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut names: Vec<String> = entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| (part.starts_with('.') || !n.starts_with('.')) && wildcard(&part, n))
                .collect();
            names.sort();
            next.extend(names.into_iter().map(|n| dir.join(n)));
        }
        found = next;
    }
    found
}

/// A setting and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting<T> {
    /// The value as written (tokens not expanded).
    pub value: T,
    /// Where.
    pub origin: Origin,
}

/// What a host's configuration says, first value of each keyword.
#[derive(Debug, Clone, Default)]
pub struct HostConfig {
    /// `HostName`, with `%h` and `%%` expanded.
    pub host_name: Option<Setting<String>>,
    /// `User`.
    pub user: Option<Setting<String>>,
    /// `Port`.
    pub port: Option<Setting<u16>>,
    /// Every `IdentityFile`, in order (unexpanded).
    pub identity_files: Vec<Setting<String>>,
    /// `IdentitiesOnly`.
    pub identities_only: Option<Setting<bool>>,
    /// `IdentityAgent` (unexpanded).
    pub identity_agent: Option<Setting<String>>,
    /// `ProxyJump` or `ProxyCommand`, whichever came first.
    pub proxy: Option<Setting<Value>>,
    /// `UserKnownHostsFile` (the first file; `None` inside for `none`).
    pub known_hosts: Option<Setting<Option<String>>>,
    /// `StrictHostKeyChecking`, lower case.
    pub strict: Option<Setting<String>>,
    /// `ConnectTimeout` in seconds.
    pub connect_timeout: Option<Setting<u64>>,
    /// `ServerAliveInterval` in seconds.
    pub server_alive: Option<Setting<u64>>,
    /// `HostKeyAlias`.
    pub host_key_alias: Option<Setting<String>>,
    /// Keywords drover does not apply, as written, with their place (in
    /// blocks that applied to the host).
    pub ignored: Vec<(String, Origin)>,
    /// Things the user should know (`Match exec` taken as false).
    pub warnings: Vec<String>,
}

/// What a lookup is about.
#[derive(Debug, Clone)]
pub struct Query<'a> {
    /// The name ssh is given (`ansible_host`, or the inventory name).
    pub host: &'a str,
    /// The user given above the configuration (command line, inventory),
    /// which `Match user` sees.
    pub user: Option<&'a str>,
    /// The local user.
    pub local_user: &'a str,
}

/// Look `query.host` up in `files`, in order (first value wins across
/// them, as ssh reads its user file before the system one).
pub fn resolve(files: &[Arc<ConfigFile>], query: &Query<'_>) -> HostConfig {
    let mut out = HostConfig::default();
    let mut st = Walk {
        query,
        host: query.host.to_string(),
        final_pass: false,
        wants_final: false,
    };
    for f in files {
        st.file(f, true, &mut out);
    }
    // `Match final` asks ssh for a second pass, with the host name as
    // HostName made it; values set in the first pass stay (first wins).
    if st.wants_final {
        st.final_pass = true;
        if let Some(h) = &out.host_name {
            st.host = h.value.clone();
        }
        let ignored = std::mem::take(&mut out.ignored);
        for f in files {
            st.file(f, true, &mut out);
        }
        out.ignored = dedup_ignored(ignored, std::mem::take(&mut out.ignored));
    }
    out
}

fn dedup_ignored(
    mut first: Vec<(String, Origin)>,
    more: Vec<(String, Origin)>,
) -> Vec<(String, Origin)> {
    for i in more {
        if !first.contains(&i) {
            first.push(i);
        }
    }
    first
}

struct Walk<'a> {
    query: &'a Query<'a>,
    /// The name `Host` patterns are matched against.
    host: String,
    final_pass: bool,
    wants_final: bool,
}

impl Walk<'_> {
    fn file(&mut self, f: &ConfigFile, outer: bool, out: &mut HostConfig) {
        let mut active = outer;
        for item in &f.items {
            match item {
                Item::Block(cond, line) => {
                    let at = Origin {
                        file: f.path.clone(),
                        line: *line,
                    };
                    active = outer && self.cond(cond, &at, out);
                }
                Item::Include(files) => {
                    for inc in files {
                        self.file(inc, active, out);
                    }
                }
                Item::Opt(o) if active => {
                    let at = Origin {
                        file: f.path.clone(),
                        line: o.line,
                    };
                    self.apply(o, at, out);
                }
                Item::Opt(_) => {}
            }
        }
    }

    fn cond(&mut self, cond: &Cond, at: &Origin, out: &mut HostConfig) -> bool {
        match cond {
            Cond::Host(p) => p.matches(&self.host, true),
            Cond::Match(criteria) => {
                for (negated, c) in criteria {
                    let hit = match c {
                        Criterion::All => true,
                        Criterion::Canonical => false,
                        Criterion::Final => {
                            self.wants_final = true;
                            self.final_pass
                        }
                        Criterion::Host(p) => {
                            let h = out.host_name.as_ref().map_or(&self.host, |s| &s.value);
                            p.matches(h, true)
                        }
                        Criterion::OriginalHost(p) => p.matches(self.query.host, true),
                        Criterion::User(p) => {
                            let u = self
                                .query
                                .user
                                .or(out.user.as_ref().map(|s| s.value.as_str()))
                                .unwrap_or(self.query.local_user);
                            p.matches(u, false)
                        }
                        Criterion::LocalUser(p) => p.matches(self.query.local_user, false),
                        Criterion::Exec(cmd) => {
                            let w = format!(
                                "{at}: Match exec {cmd}: drover does not run commands to read the SSH configuration; taken as a command that failed"
                            );
                            if !out.warnings.contains(&w) {
                                out.warnings.push(w);
                            }
                            false
                        }
                        Criterion::Unsupported(what) => {
                            let w = format!(
                                "{at}: Match {what}: not supported by drover; taken as not matching"
                            );
                            if !out.warnings.contains(&w) {
                                out.warnings.push(w);
                            }
                            false
                        }
                    };
                    // ssh stops at the first criterion that fails.
                    if hit == *negated {
                        return false;
                    }
                }
                true
            }
        }
    }

    fn apply(&self, o: &Opt, at: Origin, out: &mut HostConfig) {
        fn first<T>(slot: &mut Option<Setting<T>>, value: T, origin: Origin) {
            if slot.is_none() {
                *slot = Some(Setting { value, origin });
            }
        }
        let Some(key) = o.key else {
            let entry = (o.name.clone(), at);
            if !out.ignored.contains(&entry) {
                out.ignored.push(entry);
            }
            return;
        };
        match (key, &o.value) {
            (Keyword::HostName, Value::Text(t)) => {
                let h = expand_host_name(t, &self.host);
                first(&mut out.host_name, h, at);
            }
            (Keyword::User, Value::Text(t)) => first(&mut out.user, t.clone(), at),
            (Keyword::Port, Value::Port(p)) => first(&mut out.port, *p, at),
            (Keyword::IdentityFile, Value::Text(t)) => {
                let s = Setting {
                    value: t.clone(),
                    origin: at,
                };
                // The final pass reads the same lines again.
                if !out.identity_files.contains(&s) {
                    out.identity_files.push(s);
                }
            }
            (Keyword::IdentitiesOnly, Value::Flag(b)) => first(&mut out.identities_only, *b, at),
            (Keyword::IdentityAgent, Value::Text(t)) => {
                first(&mut out.identity_agent, t.clone(), at)
            }
            (Keyword::Proxy, v) => first(&mut out.proxy, v.clone(), at),
            (Keyword::UserKnownHostsFile, Value::Files(f)) => {
                first(&mut out.known_hosts, f.first().cloned(), at)
            }
            (Keyword::StrictHostKeyChecking, Value::Text(t)) => {
                first(&mut out.strict, t.clone(), at)
            }
            (Keyword::ConnectTimeout, Value::Secs(s)) => first(&mut out.connect_timeout, *s, at),
            (Keyword::ServerAliveInterval, Value::Secs(s)) => first(&mut out.server_alive, *s, at),
            (Keyword::HostKeyAlias, Value::Text(t)) => {
                first(&mut out.host_key_alias, t.clone(), at)
            }
            // parse_value gives each keyword its own kind of value.
            _ => {}
        }
    }
}

/// `HostName`'s tokens: `%h` (the name given) and `%%`.
fn expand_host_name(value: &str, host: &str) -> String {
    let mut out = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match (c, c == '%') {
            (_, false) => out.push(c),
            (_, true) => match chars.next() {
                Some('h') => out.push_str(host),
                Some('%') => out.push('%'),
                Some(o) => {
                    out.push('%');
                    out.push(o);
                }
                None => out.push('%'),
            },
        }
    }
    out
}

/// The values ssh's `%` tokens stand for, once the connection's settings
/// are known.
#[derive(Debug, Clone)]
pub struct Tokens<'a> {
    /// `%h`: the address connected to.
    pub host: &'a str,
    /// `%n`: the name given (before `HostName`).
    pub original: &'a str,
    /// `%p`.
    pub port: u16,
    /// `%r`: the remote user.
    pub user: &'a str,
    /// `%u`: the local user.
    pub local_user: &'a str,
    /// `%d`: the local home directory.
    pub home: &'a Path,
    /// `%k`: the host key alias, or the host.
    pub alias: &'a str,
}

/// Expand `%` tokens in `value` (written at `at`); an unknown token is an
/// error, as in ssh.
pub fn expand_tokens(value: &str, t: &Tokens<'_>, at: &Origin) -> Result<String, ConfigError> {
    let mut out = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('h') => out.push_str(t.host),
            Some('n') => out.push_str(t.original),
            Some('p') => out.push_str(&t.port.to_string()),
            Some('r') => out.push_str(t.user),
            Some('u') => out.push_str(t.local_user),
            Some('d') => out.push_str(&t.home.to_string_lossy()),
            Some('k') => out.push_str(t.alias),
            Some('%') => out.push('%'),
            other => {
                let tok = other.map(|c| format!("%{c}")).unwrap_or_else(|| "%".into());
                return Err(ConfigError::Syntax {
                    at: at.clone(),
                    msg: format!(
                        "the token {tok} in '{value}' is not supported by drover (it knows %h %n %p %r %u %d %k %%)"
                    ),
                });
            }
        }
    }
    Ok(out)
}

/// A path value: `${VAR}` from the environment, `%` tokens, then `~`.
pub fn expand_path(value: &str, t: &Tokens<'_>, at: &Origin) -> Result<PathBuf, ConfigError> {
    let mut env = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        env.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(ConfigError::Syntax {
                at: at.clone(),
                msg: format!("unterminated ${{ in '{value}'"),
            });
        };
        let name = &after[..end];
        match std::env::var(name) {
            Ok(v) => env.push_str(&v),
            Err(_) => {
                return Err(ConfigError::Syntax {
                    at: at.clone(),
                    msg: format!("the environment variable {name} in '{value}' is not set"),
                })
            }
        }
        rest = &after[end + 1..];
    }
    env.push_str(rest);
    let expanded = expand_tokens(&env, t, at)?;
    Ok(tilde(&expanded, t.home).unwrap_or_else(|| PathBuf::from(expanded)))
}

/// A file as loaded: absent (`None`), parsed, or why it cannot be used.
type Loaded = Result<Option<Arc<ConfigFile>>, ConfigError>;

/// The run's parsed configuration files, each read once.
#[derive(Debug, Default)]
pub struct Configs {
    files: Mutex<HashMap<PathBuf, Loaded>>,
    /// Replaces [`SYSTEM_CONFIG`] (tests).
    system: Option<PathBuf>,
    /// The files every host gets, whatever `-F` and `HOME` say (tests).
    fixed: Option<Vec<Arc<ConfigFile>>>,
    /// Warnings already given: each is given once per run, not per host.
    warned: Mutex<std::collections::HashSet<String>>,
}

impl Configs {
    /// A cache whose system-wide file is `system` instead of
    /// [`SYSTEM_CONFIG`].
    pub fn with_system(system: PathBuf) -> Configs {
        Configs {
            system: Some(system),
            ..Configs::default()
        }
    }

    /// Every lookup reads `files` and nothing else.
    pub fn fixed(files: Vec<Arc<ConfigFile>>) -> Configs {
        Configs {
            fixed: Some(files),
            ..Configs::default()
        }
    }

    /// True the first time `warning` is given in this run.
    pub fn first_time(&self, warning: &str) -> bool {
        let mut warned = self.warned.lock().unwrap_or_else(|e| e.into_inner());
        warned.insert(warning.to_string())
    }

    /// The files ssh reads for a host: `-F FILE` alone (none for `-F
    /// none`), or `~/.ssh/config` then the system file.
    pub fn files_for(
        &self,
        explicit: Option<&Path>,
        home: &Path,
    ) -> Result<Vec<Arc<ConfigFile>>, ConfigError> {
        if let Some(files) = &self.fixed {
            return Ok(files.clone());
        }
        let user_dir = home.join(".ssh");
        let system = self
            .system
            .clone()
            .unwrap_or_else(|| PathBuf::from(SYSTEM_CONFIG));
        let system_dir = system
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/etc/ssh"));
        let wanted: Vec<(PathBuf, PathBuf)> = match explicit {
            Some(p) if p.as_os_str() == "none" => Vec::new(),
            Some(p) => {
                let p = tilde(&p.to_string_lossy(), home).unwrap_or_else(|| p.to_path_buf());
                vec![(p, user_dir)]
            }
            None => vec![(user_dir.join("config"), user_dir), (system, system_dir)],
        };
        let mut out = Vec::new();
        for (path, dir) in wanted {
            if let Some(f) = self.file(&path, &dir, home)? {
                out.push(f);
            }
        }
        Ok(out)
    }

    fn file(
        &self,
        path: &Path,
        include_dir: &Path,
        home: &Path,
    ) -> Result<Option<Arc<ConfigFile>>, ConfigError> {
        let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        files
            .entry(path.to_path_buf())
            .or_insert_with(|| ConfigFile::load(path, include_dir, home).map(|f| f.map(Arc::new)))
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Arc<ConfigFile> {
        Arc::new(
            ConfigFile::parse(
                Path::new("/home/u/.ssh/config"),
                text,
                Path::new("/home/u/.ssh"),
                Path::new("/home/u"),
            )
            .expect("parses"),
        )
    }

    fn lookup(text: &str, host: &str) -> HostConfig {
        resolve(
            &[parse(text)],
            &Query {
                host,
                user: None,
                local_user: "me",
            },
        )
    }

    fn parse_error(text: &str) -> String {
        match ConfigFile::parse(Path::new("/c"), text, Path::new("/"), Path::new("/home/u")) {
            Ok(_) => panic!("expected an error for {text:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn host_patterns_wildcards_negation_and_several() {
        let text = "Host web? *.lan !db.lan\n  User w\nHost *\n  User fallback\n";
        let user = |h: &str| lookup(text, h).user.map(|s| s.value);
        assert_eq!(user("web1").as_deref(), Some("w"));
        assert_eq!(user("WEB2").as_deref(), Some("w"));
        assert_eq!(user("web10").as_deref(), Some("fallback"));
        assert_eq!(user("x.lan").as_deref(), Some("w"));
        assert_eq!(user("db.lan").as_deref(), Some("fallback"));
        assert!(wildcard("a*b*c", "aXXbYc"));
        assert!(!wildcard("a*b", "ab c"));
        assert!(wildcard("*", ""));
    }

    #[test]
    fn first_value_wins_and_identity_files_accumulate() {
        let text = "\
# comment
Host pi
  port=2222
  IdentityFile ~/.ssh/pi
  USER = pi
Host *
  Port 22
  User root
  IdentityFile \"/keys/with space\"  # trailing comment
";
        let c = lookup(text, "pi");
        assert_eq!(c.port.as_ref().map(|s| s.value), Some(2222));
        assert_eq!(c.port.as_ref().map(|s| s.origin.line), Some(3));
        assert_eq!(c.user.map(|s| s.value).as_deref(), Some("pi"));
        let ids: Vec<_> = c.identity_files.iter().map(|s| s.value.as_str()).collect();
        assert_eq!(ids, ["~/.ssh/pi", "/keys/with space"]);
        assert_eq!(
            c.port.map(|s| s.origin.to_string()).as_deref(),
            Some("/home/u/.ssh/config:3")
        );
    }

    #[test]
    fn proxy_jump_and_command_share_one_slot() {
        let c = lookup(
            "Host a\n ProxyCommand ssh -W %h:%p gw\nHost *\n ProxyJump x\n",
            "a",
        );
        assert_eq!(
            c.proxy.map(|s| s.value),
            Some(Value::Command(Some("ssh -W %h:%p gw".into())))
        );
        let c = lookup("Host a\n ProxyJump none\nHost *\n ProxyJump x,y\n", "a");
        assert_eq!(c.proxy.map(|s| s.value), Some(Value::Jump(None)));
        let c = lookup("Host *\n ProxyJump x,y\n", "a");
        assert_eq!(
            c.proxy.map(|s| s.value),
            Some(Value::Jump(Some("x,y".into())))
        );
    }

    #[test]
    fn match_host_user_originalhost_and_all() {
        let text = "\
Host alias
  HostName 10.0.0.%h
Match host 10.0.0.* user admin
  Port 1
Match originalhost alias !user admin
  Port 2
Match all
  IdentitiesOnly yes
";
        let q = |user: Option<&'static str>| {
            resolve(
                &[parse(text)],
                &Query {
                    host: "alias",
                    user,
                    local_user: "me",
                },
            )
        };
        let c = q(Some("admin"));
        assert_eq!(
            c.host_name.map(|s| s.value).as_deref(),
            Some("10.0.0.alias")
        );
        assert_eq!(c.port.map(|s| s.value), Some(1));
        assert_eq!(c.identities_only.map(|s| s.value), Some(true));
        assert_eq!(q(None).port.map(|s| s.value), Some(2));
    }

    #[test]
    fn match_exec_is_taken_as_failed_with_a_warning() {
        let c = lookup(
            "Match exec \"test -e /x\"\n  Port 1\nMatch !exec true\n  Port 2\n",
            "h",
        );
        assert_eq!(c.port.map(|s| s.value), Some(2));
        assert!(
            c.warnings[0].contains("Match exec test -e /x"),
            "{:?}",
            c.warnings
        );
        // Not reached: the host criterion failed first.
        let c = lookup("Match host other exec true\n  Port 1\n", "h");
        assert!(c.warnings.is_empty());
    }

    #[test]
    fn match_final_applies_in_a_second_pass() {
        let text =
            "Match final host real\n  User late\nHost nick\n  HostName real\nHost *\n  Port 5\n";
        let c = lookup(text, "nick");
        assert_eq!(c.user.map(|s| s.value).as_deref(), Some("late"));
        assert_eq!(c.port.map(|s| s.value), Some(5));
    }

    #[test]
    fn unknown_keywords_are_listed_once_with_their_place() {
        let c = lookup("Host *\n  ForwardAgent yes\n  ControlMaster auto\n", "h");
        let names: Vec<_> = c
            .ignored
            .iter()
            .map(|(n, o)| format!("{n}@{}", o.line))
            .collect();
        assert_eq!(names, ["ForwardAgent@2", "ControlMaster@3"]);
        // Inactive blocks are not reported.
        assert!(lookup("Host other\n  ForwardAgent yes\n", "h")
            .ignored
            .is_empty());
    }

    #[test]
    fn bad_lines_are_errors_with_file_and_line() {
        assert_eq!(
            parse_error("Host a\n  Port http\n"),
            "/c:2: Port: not a port number: http"
        );
        assert!(parse_error("Host\n").starts_with("/c:1: Host without"));
        assert!(parse_error("User \"x\n").contains("unbalanced quote"));
        assert!(parse_error("Match nope x\n").contains("unknown criterion 'nope'"));
        assert!(parse_error("Match all host x\n").contains("Match all"));
        assert!(parse_error("IdentitiesOnly maybe\n").contains("yes or no"));
    }

    #[test]
    fn include_globs_relative_to_dot_ssh_and_inside_blocks() {
        let home = tempfile::tempdir().expect("tempdir");
        let ssh = home.path().join(".ssh");
        std::fs::create_dir_all(ssh.join("conf.d")).expect("mkdir");
        std::fs::write(ssh.join("conf.d/b.conf"), "Host b\n  Port 2\n").expect("write");
        std::fs::write(ssh.join("conf.d/a.conf"), "Host a b\n  Port 1\n  User ua\n")
            .expect("write");
        std::fs::write(ssh.join("only-c"), "User from-c\n").expect("write");
        std::fs::write(
            ssh.join("config"),
            "Include conf.d/*.conf\nHost c\n  Include only-c\nHost *\n  Include missing\n  User last\n",
        )
        .expect("write");
        let configs = Configs::with_system(home.path().join("no-system"));
        let files = configs.files_for(None, home.path()).expect("loads");
        let q = |host| {
            resolve(
                &files,
                &Query {
                    host,
                    user: None,
                    local_user: "me",
                },
            )
        };
        // a.conf before b.conf: glob order.
        assert_eq!(q("b").port.map(|s| s.value), Some(1));
        assert_eq!(q("a").user.map(|s| s.value).as_deref(), Some("ua"));
        let c = q("c");
        assert_eq!(c.user.as_ref().map(|s| s.value.as_str()), Some("from-c"));
        assert!(c
            .user
            .is_some_and(|s| s.origin.file.ends_with(".ssh/only-c")));
        // The include inside `Host c` does not apply to other hosts.
        assert_eq!(q("d").user.map(|s| s.value).as_deref(), Some("last"));
        // Parsed once: a second lookup shares the same file.
        let again = configs.files_for(None, home.path()).expect("loads");
        assert!(Arc::ptr_eq(&files[0], &again[0]));
        // -F names the only file read; -F none reads none.
        let f = configs
            .files_for(Some(&ssh.join("only-c")), home.path())
            .expect("loads");
        assert_eq!(f.len(), 1);
        assert!(configs
            .files_for(Some(Path::new("none")), home.path())
            .expect("none")
            .is_empty());
    }

    #[test]
    fn the_system_file_comes_after_the_users() {
        let home = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(home.path().join(".ssh")).expect("mkdir");
        std::fs::write(home.path().join(".ssh/config"), "Host h\n Port 7\n").expect("write");
        let sys = home.path().join("ssh_config");
        std::fs::write(&sys, "Host *\n Port 9\n User sys\n").expect("write");
        let files = Configs::with_system(sys)
            .files_for(None, home.path())
            .expect("loads");
        let c = resolve(
            &files,
            &Query {
                host: "h",
                user: None,
                local_user: "me",
            },
        );
        assert_eq!(c.port.map(|s| s.value), Some(7));
        assert_eq!(c.user.map(|s| s.value).as_deref(), Some("sys"));
    }

    #[test]
    fn tokens_and_tilde_in_paths() {
        let at = Origin {
            file: Arc::new(PathBuf::from("/c")),
            line: 4,
        };
        let t = Tokens {
            host: "10.0.0.5",
            original: "pi",
            port: 2222,
            user: "admin",
            local_user: "me",
            home: Path::new("/home/me"),
            alias: "pi-key",
        };
        let p = expand_path("~/.ssh/%n-%r@%h:%p_%u_%k%%", &t, &at).expect("expands");
        assert_eq!(
            p,
            PathBuf::from("/home/me/.ssh/pi-admin@10.0.0.5:2222_me_pi-key%")
        );
        assert_eq!(
            expand_path("%d/x", &t, &at).expect("expands"),
            PathBuf::from("/home/me/x")
        );
        let e = expand_path("~/.ssh/%C", &t, &at).expect_err("unknown token");
        assert!(e.to_string().starts_with("/c:4: the token %C"), "{e}");
        assert_eq!(expand_host_name("%h.lan%%", "pi"), "pi.lan%");
    }

    #[test]
    fn words_split_like_ssh() {
        assert_eq!(
            split_words(r#"a "b c" 'd e'f g\ h # rest"#).expect("splits"),
            ["a", "b c", "d ef", "g h"]
        );
    }
}
