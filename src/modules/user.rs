//! `user` (ansible.builtin.user): create, change or remove a local account
//! with `useradd`, `usermod` and `userdel`. The account (`getent passwd`),
//! its groups (`id -gn`, `id -Gn`) and, only when a password or lock is
//! asked for, its shadow hash are read in one exec. A password (an already
//! hashed crypt string) goes to `chpasswd -e` on stdin, never on a command
//! line, and never into results or errors.

use async_trait::async_trait;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

use super::args::{bool_ish, loose_f64, opt_bool_ish, opt_string_ish, opt_u64_ish, yes};
use super::safe;
use super::{Decision, Module, ModuleCtx, ModuleError, Plan, Protocol, ReadCtx, ReadSet, Scope};
use crate::transport::shell_quote;
use crate::{Map, Value};

/// Arguments of `user`.
#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// Account name.
    name: String,
    /// Wanted numeric id.
    #[serde(default, deserialize_with = "opt_u64_ish")]
    uid: Option<u64>,
    /// Primary group (name or gid).
    #[serde(default, deserialize_with = "opt_string_ish")]
    group: Option<String>,
    /// Supplementary groups (list or comma-separated string); `""` removes
    /// all unless `append`.
    #[serde(default, deserialize_with = "opt_groups")]
    groups: Option<Vec<String>>,
    /// Add to `groups` without removing other memberships.
    #[serde(default, deserialize_with = "bool_ish")]
    append: bool,
    /// Login shell.
    #[serde(default, deserialize_with = "opt_string_ish")]
    shell: Option<String>,
    /// Home directory (set, not moved, on an existing account).
    #[serde(default, deserialize_with = "opt_string_ish")]
    home: Option<String>,
    /// Create the home directory when creating the account.
    #[serde(default = "yes", alias = "createhome", deserialize_with = "bool_ish")]
    create_home: bool,
    /// Create a system account (only when creating it).
    #[serde(default, deserialize_with = "bool_ish")]
    system: bool,
    /// `present` or `absent`.
    #[serde(default)]
    state: State,
    /// With `state: absent`, remove the home directory and mail spool.
    #[serde(default, deserialize_with = "bool_ish")]
    remove: bool,
    /// With `state: absent`, `userdel --force`.
    #[serde(default, deserialize_with = "bool_ish")]
    force: bool,
    /// GECOS field.
    #[serde(default, deserialize_with = "opt_string_ish")]
    comment: Option<String>,
    /// Crypted password (as in /etc/shadow).
    #[serde(default, deserialize_with = "opt_string_ish")]
    password: Option<String>,
    /// `always` (default) or `on_create`.
    #[serde(default)]
    update_password: UpdatePassword,
    /// Lock (`usermod -L`) or unlock (`usermod -U`) the password.
    #[serde(default, deserialize_with = "opt_bool_ish")]
    password_lock: Option<bool>,
    /// Not supported: accepted only as false.
    #[serde(default, deserialize_with = "opt_bool_ish")]
    generate_ssh_key: Option<bool>,
    /// Account expiry, seconds since the epoch (negative: never).
    #[serde(default, deserialize_with = "opt_signed")]
    expires: Option<f64>,
    /// Days after password expiry before the account is disabled (`-f`).
    #[serde(default, deserialize_with = "opt_signed")]
    password_expire_account_disable: Option<f64>,
    /// Minimum days between password changes (`chage -m`).
    #[serde(default, deserialize_with = "opt_signed")]
    password_expire_min: Option<f64>,
    /// Maximum days a password is valid (`chage -M`).
    #[serde(default, deserialize_with = "opt_signed")]
    password_expire_max: Option<f64>,
    /// Days of warning before the password expires (`chage -W`).
    #[serde(default, deserialize_with = "opt_signed")]
    password_expire_warn: Option<f64>,
    /// Skeleton directory copied into a new home (`useradd -k`).
    #[serde(default, deserialize_with = "opt_string_ish")]
    skeleton: Option<String>,
    /// Umask of a new home directory (`useradd -K UMASK=`).
    #[serde(default, deserialize_with = "opt_string_ish")]
    umask: Option<String>,
    /// Lowest uid for a new account (`useradd -K UID_MIN=`).
    #[serde(default, deserialize_with = "opt_u64_ish")]
    uid_min: Option<u64>,
    /// Highest uid for a new account (`useradd -K UID_MAX=`).
    #[serde(default, deserialize_with = "opt_u64_ish")]
    uid_max: Option<u64>,
}

/// Whether the account should exist.
#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum State {
    #[default]
    Present,
    Absent,
}

/// When to set the password.
#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum UpdatePassword {
    #[default]
    Always,
    OnCreate,
}

/// `groups:` as a list or a comma-separated string; `null` is absent.
fn opt_groups<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    let v = Value::deserialize(d)?;
    let joined = match &v {
        Value::Null => return Ok(None),
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                other => Err(D::Error::custom(format!("invalid group {other}"))),
            })
            .collect::<Result<Vec<_>, _>>()?
            .join(","),
        other => return Err(D::Error::custom(format!("invalid groups {other}"))),
    };
    Ok(Some(
        joined
            .split(',')
            .map(str::trim)
            .filter(|g| !g.is_empty())
            .map(String::from)
            .collect(),
    ))
}

/// A number that may be negative (`expires: -1`, aging days), written as a
/// number or a string; `null` is absent.
fn opt_signed<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let v = Value::deserialize(d)?;
    if v.is_null() {
        return Ok(None);
    }
    match loose_f64(&v) {
        Some(x) if x.is_finite() => Ok(Some(x)),
        _ => Err(D::Error::custom(format!("{v} is not a number"))),
    }
}

/// An account as read from the host.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Account {
    /// Numeric id.
    pub uid: u64,
    /// Primary gid.
    pub gid: u64,
    /// Primary group's name.
    pub group: String,
    /// Supplementary group names (primary excluded).
    pub groups: Vec<String>,
    /// GECOS.
    pub comment: String,
    /// Home directory.
    pub home: String,
    /// Login shell.
    pub shell: String,
    /// Shadow hash, when it was read.
    pub hash: Option<String>,
    /// Whether the passwd home directory exists.
    pub home_exists: Option<bool>,
    /// The shadow aging fields, when read: min, max, warn, inactive,
    /// expire (days; `None` where empty).
    pub aging: Option<[Option<i64>; 5]>,
}

/// `name:x:uid:gid:gecos:home:shell` → (name, account without groups).
pub fn parse_passwd_line(line: &str) -> Option<(String, Account)> {
    let f: Vec<&str> = line.trim_end_matches('\n').split(':').collect();
    if f.len() < 7 {
        return None;
    }
    Some((
        f[0].to_string(),
        Account {
            uid: f[2].parse().ok()?,
            gid: f[3].parse().ok()?,
            comment: f[4].to_string(),
            home: f[5].to_string(),
            shell: f[6].to_string(),
            ..Account::default()
        },
    ))
}

fn read_script(name: &str, shadow: bool) -> String {
    format!(
        "n={}\nprintf '@@hm %s\\n' \"$HOME\"\n\
         if p=$(getent passwd \"$n\"); then printf '@@pw %s\\n' \"$p\"; \
         printf '@@pg %s\\n' \"$(id -gn \"$n\")\"; printf '@@gs %s\\n' \"$(id -Gn \"$n\")\"; \
         if [ -e \"$(printf '%s' \"$p\" | cut -d: -f6)\" ]; then echo '@@hx 1'; else echo '@@hx 0'; fi; {}\
         else echo '@@none'; fi\n",
        shell_quote(name),
        if shadow {
            "printf '@@sh %s\\n' \"$(getent shadow \"$n\" | cut -d: -f2-)\"; "
        } else {
            ""
        }
    )
}

/// Parse the read script's output (`None`: no such account).
fn parse_observed(name: &str, out: &str) -> Result<Option<Account>, super::OutputError> {
    let mut acct: Option<Account> = None;
    let mut all_groups = Vec::new();
    let mut hash = None;
    let mut aging = None;
    for line in out.lines() {
        if line.starts_with("@@hm ") {
            continue;
        } else if line == "@@none" {
            return Ok(None);
        } else if let Some(p) = line.strip_prefix("@@pw ") {
            let (n, a) = parse_passwd_line(p)
                .ok_or_else(|| super::OutputError::Malformed(format!("bad passwd line {p:?}")))?;
            if n != name {
                // `getent passwd 1000` looks up a uid.
                return Ok(None);
            }
            acct = Some(a);
        } else if let Some(g) = line.strip_prefix("@@pg ") {
            if let Some(a) = acct.as_mut() {
                a.group = g.trim().to_string();
            }
        } else if let Some(gs) = line.strip_prefix("@@gs ") {
            all_groups = gs.split_whitespace().map(String::from).collect();
        } else if let Some(x) = line.strip_prefix("@@hx ") {
            if let Some(a) = acct.as_mut() {
                a.home_exists = Some(x.trim() == "1");
            }
        } else if let Some(h) = line.strip_prefix("@@sh ") {
            // hash:lastchg:min:max:warn:inactive:expire:reserved
            let f: Vec<&str> = h.split(':').collect();
            hash = f.first().map(|s| s.to_string());
            if f.len() >= 7 {
                let n = |i: usize| f[i].trim().parse::<i64>().ok();
                aging = Some([n(2), n(3), n(4), n(5), n(6)]);
            }
        }
    }
    let mut a = acct.ok_or(super::OutputError::Incomplete)?;
    a.groups = all_groups.into_iter().filter(|g| *g != a.group).collect();
    a.hash = hash.filter(|h| !h.is_empty());
    a.aging = aging;
    Ok(Some(a))
}

/// Whether `password` looks like a crypt hash (or a lock marker) rather
/// than a clear-text password, judged as Ansible does, to warn about it.
fn looks_hashed(password: &str) -> bool {
    if ["*", "!", "*************"].contains(&password) {
        return true;
    }
    if password.contains([':', '*', '!']) {
        return false;
    }
    let fields: Vec<&str> = password.split('$').collect();
    if fields.len() < 3 {
        return false;
    }
    let last = fields[fields.len() - 1];
    if !last
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "./=".contains(c))
    {
        return false;
    }
    let want = match fields[1] {
        "1" => Some(22),
        "5" | "y" => Some(43),
        "6" => Some(86),
        _ => None,
    };
    want.is_none_or(|n| last.len() == n)
}

/// Create a missing home as Ansible does: a copy of the skeleton (or an
/// empty directory), its mode from login.defs (HOME_MODE, else 0777 less
/// UMASK, else 0755), owned by the account (symlinks themselves, not their
/// targets).
fn mkhome_script(home: &str, skeleton: &str, uid: u64, gid: u64) -> String {
    format!(
        "{{ h={h}; sk={sk}; if [ \"$sk\" != /dev/null ] && [ -e \"$sk\" ]; then \
         mkdir -p -- \"$(dirname -- \"$h\")\" && cp -a -- \"$sk\" \"$h\"; \
         else mkdir -p -- \"$h\"; fi && \
         m=$(awk '/^HOME_MODE[ \t]+[0-9]+$/ {{ m = \"H\" $2; exit }} /^UMASK[ \t]+[0-9]+$/ {{ m = \"U\" $2 }} END {{ print m }}' /etc/login.defs 2>/dev/null); \
         case \"$m\" in H*) mode=${{m#H}} ;; U*) mode=$(printf '%o' $(( 0777 & ~0${{m#U}} ))) ;; *) mode=755 ;; esac; \
         chmod \"$mode\" \"$h\" && chown -R {uid}:{gid} \"$h\"; }}",
        h = shell_quote(home),
        sk = shell_quote(skeleton),
    )
}

/// `expires` (seconds since the epoch) as useradd's `YYYY-MM-DD` in UTC;
/// `None` for a negative value (never expires).
fn expiry_date(secs: f64) -> Option<String> {
    if secs < 0.0 {
        return None;
    }
    chrono::DateTime::from_timestamp(secs.floor() as i64, 0)
        .map(|d| d.date_naive().format("%Y-%m-%d").to_string())
}

/// A shadow day count (days since the epoch) as `YYYY-MM-DD`.
fn days_date(days: i64) -> String {
    expiry_date((days * 86_400) as f64).unwrap_or_default()
}

/// The home directory of the user the module runs as (`$HOME` in the
/// read), which `~` in a path argument stands for, as Ansible's `path`
/// type expands it on the host.
fn remote_home(out: &str) -> Option<&str> {
    out.lines()
        .find_map(|l| l.strip_prefix("@@hm "))
        .filter(|h| h.starts_with('/'))
}

/// `~` or `~/x` with the home directory `home`.
fn expand_tilde(path: &str, home: &str) -> String {
    let home = home.trim_end_matches('/');
    if path == "~" {
        home.to_string()
    } else if let Some(rest) = path.strip_prefix("~/") {
        format!("{home}/{rest}")
    } else {
        path.to_string()
    }
}

/// What `apply` does. The password is kept out of `Debug`.
#[derive(PartialEq)]
pub struct UserChange {
    /// `useradd`/`usermod`/`userdel` argument vector, if any.
    argv: Option<Vec<String>>,
    /// Hash to set with `chpasswd -e`.
    password: Option<String>,
    /// Parent directories of a new home to create first, as Ansible does.
    parent: Option<String>,
    /// `chage` argument vector (password aging), if any.
    chage: Option<Vec<String>>,
    /// A missing home of an existing account to create (path, uid, gid).
    mkhome: Option<(String, u64, u64)>,
}

impl std::fmt::Debug for UserChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserChange")
            .field("argv", &self.argv)
            .field("password", &self.password.as_ref().map(|_| "********"))
            .field("parent", &self.parent)
            .field("chage", &self.chage)
            .field("mkhome", &self.mkhome)
            .finish()
    }
}

impl User {
    fn validate(&self) -> Result<(), ModuleError> {
        let bad = |s: &str| s.is_empty() || s.starts_with('-') || s.contains([':', '\n', ',']);
        if bad(&self.name) {
            return Err(ModuleError::Args(format!(
                "invalid user name {:?}",
                self.name
            )));
        }
        safe::name("name", &self.name)?;
        if let Some(g) = self.groups.iter().flatten().find(|g| bad(g)) {
            return Err(ModuleError::Args(format!("invalid group name {g:?}")));
        }
        if let Some(g) = self.group.as_deref().filter(|g| bad(g)) {
            return Err(ModuleError::Args(format!("invalid group name {g:?}")));
        }
        // Fields of a passwd line: a ':' or a line break would shift or add fields.
        for (arg, v) in [
            ("comment", &self.comment),
            ("home", &self.home),
            ("shell", &self.shell),
        ] {
            if let Some(v) = v {
                safe::one_line(arg, v)?;
                if v.contains(':') {
                    return Err(ModuleError::Args(format!(
                        "{arg} cannot contain ':' ({v:?})"
                    )));
                }
            }
        }
        if self
            .password
            .as_deref()
            .is_some_and(|p| p.contains([':', '\n']))
        {
            return Err(ModuleError::Args(
                "password must be a crypted hash (no ':' or newline)".into(),
            ));
        }
        if self.password.is_some() && self.password_lock.is_some() {
            return Err(ModuleError::Args(
                "password and password_lock cannot be used together".into(),
            ));
        }
        if self.generate_ssh_key == Some(true) {
            return Err(ModuleError::Args(
                "generate_ssh_key is not supported by drover".into(),
            ));
        }
        Ok(())
    }

    /// Wanted supplementary groups, without the primary group.
    fn wanted_groups(&self, primary: &str) -> Option<Vec<String>> {
        self.groups.as_ref().map(|gs| {
            let mut out: Vec<String> = Vec::new();
            for g in gs {
                if g != primary && !out.contains(g) {
                    out.push(g.clone());
                }
            }
            out
        })
    }

    fn decide(&self, current: Option<&Account>) -> Option<UserChange> {
        let s = |v: &str| v.to_string();
        match (self.state, current) {
            (State::Absent, None) => None,
            (State::Absent, Some(_)) => {
                let mut v = vec![s("userdel")];
                if self.remove {
                    v.push(s("-r"));
                }
                if self.force {
                    v.push(s("-f"));
                }
                v.push(self.name.clone());
                Some(UserChange {
                    argv: Some(v),
                    password: None,
                    parent: None,
                    chage: None,
                    mkhome: None,
                })
            }
            (State::Present, None) => {
                let mut v = vec![s("useradd")];
                if let Some(uid) = self.uid {
                    v.extend([s("-u"), uid.to_string()]);
                }
                if let Some(g) = &self.group {
                    v.extend([s("-g"), g.clone()]);
                }
                if let Some(gs) = self.wanted_groups(self.group.as_deref().unwrap_or_default()) {
                    if !gs.is_empty() {
                        v.extend([s("-G"), gs.join(",")]);
                    }
                }
                if let Some(c) = &self.comment {
                    v.extend([s("-c"), c.clone()]);
                }
                if let Some(h) = &self.home {
                    v.extend([s("-d"), h.clone()]);
                }
                if let Some(sh) = &self.shell {
                    v.extend([s("-s"), sh.clone()]);
                }
                if let Some(e) = self.expires {
                    v.extend([s("-e"), expiry_date(e).unwrap_or_default()]);
                }
                if let Some(f) = self.password_expire_account_disable {
                    v.extend([s("-f"), (f as i64).to_string()]);
                }
                if self.create_home {
                    v.push(s("-m"));
                    if let Some(k) = &self.skeleton {
                        v.extend([s("-k"), k.clone()]);
                    }
                    if let Some(u) = &self.umask {
                        v.extend([s("-K"), format!("UMASK={u}")]);
                    }
                } else {
                    v.push(s("-M"));
                }
                if self.system {
                    v.push(s("-r"));
                }
                if let Some(n) = self.uid_min {
                    v.extend([s("-K"), format!("UID_MIN={n}")]);
                }
                if let Some(n) = self.uid_max {
                    v.extend([s("-K"), format!("UID_MAX={n}")]);
                }
                v.push(self.name.clone());
                let parent = self
                    .home
                    .as_deref()
                    .filter(|_| self.create_home)
                    .and_then(|h| std::path::Path::new(h).parent())
                    .map(|p| p.to_string_lossy().into_owned())
                    .filter(|p| p.starts_with('/') && p != "/");
                Some(UserChange {
                    argv: Some(v),
                    password: self.password.clone(),
                    parent,
                    chage: self.chage_argv(None),
                    mkhome: None,
                })
            }
            (State::Present, Some(a)) => {
                let mut v = Vec::new();
                if let Some(uid) = self.uid.filter(|u| *u != a.uid) {
                    v.extend([s("-u"), uid.to_string()]);
                }
                let primary = match &self.group {
                    Some(g) => {
                        let same = match g.parse::<u64>() {
                            Ok(gid) => gid == a.gid,
                            Err(_) => *g == a.group,
                        };
                        if !same {
                            v.extend([s("-g"), g.clone()]);
                        }
                        g.clone()
                    }
                    None => a.group.clone(),
                };
                if let Some(want) = self.wanted_groups(&primary) {
                    if self.append {
                        if want.iter().any(|g| !a.groups.contains(g)) {
                            v.extend([s("-a"), s("-G"), want.join(",")]);
                        }
                    } else {
                        let mut w = want.clone();
                        let mut c = a.groups.clone();
                        w.sort();
                        c.sort();
                        c.dedup();
                        if w != c {
                            v.extend([s("-G"), want.join(",")]);
                        }
                    }
                }
                if let Some(c) = self.comment.as_ref().filter(|c| **c != a.comment) {
                    v.extend([s("-c"), c.clone()]);
                }
                if let Some(h) = self.home.as_ref().filter(|h| **h != a.home) {
                    v.extend([s("-d"), h.clone()]);
                }
                if let Some(sh) = self.shell.as_ref().filter(|sh| **sh != a.shell) {
                    v.extend([s("-s"), sh.clone()]);
                }
                let aging = a.aging.unwrap_or_default();
                if let Some(e) = self.expires {
                    // No shadow entry at all counts as day 0, so `-e ''`
                    // creates one (as Ansible's run does); an empty field
                    // is "never".
                    let current = match a.aging {
                        None => 0,
                        Some(ag) => ag[4].unwrap_or(-1),
                    };
                    match expiry_date(e) {
                        None if current >= 0 => v.extend([s("-e"), s("")]),
                        Some(d) if current < 0 || days_date(current) != d => {
                            v.extend([s("-e"), d]);
                        }
                        _ => {}
                    }
                }
                if let Some(f) = self.password_expire_account_disable {
                    if aging[3] != Some(f as i64) {
                        v.extend([s("-f"), (f as i64).to_string()]);
                    }
                }
                let locked = a.hash.as_deref().is_some_and(|h| h.starts_with('!'));
                match self.password_lock {
                    Some(true) if !locked => v.push(s("-L")),
                    Some(false) if locked => v.push(s("-U")),
                    _ => {}
                }
                let password = self
                    .password
                    .clone()
                    .filter(|_| self.update_password == UpdatePassword::Always)
                    .filter(|p| a.hash.as_deref() != Some(p.as_str()));
                let argv = (!v.is_empty()).then(|| {
                    let mut full = vec![s("usermod")];
                    full.extend(v);
                    full.push(self.name.clone());
                    full
                });
                let chage = self.chage_argv(Some(&aging));
                // Ansible creates a missing home of an existing account.
                let mkhome = (self.create_home
                    && a.home_exists == Some(false)
                    && a.home.starts_with('/')
                    && self.home.as_ref().is_none_or(|h| *h == a.home))
                .then(|| (a.home.clone(), a.uid, a.gid));
                (argv.is_some() || password.is_some() || chage.is_some() || mkhome.is_some())
                    .then_some(UserChange {
                        argv,
                        password,
                        parent: None,
                        chage,
                        mkhome,
                    })
            }
        }
    }

    /// `chage -m/-M/-W` for the aging values that differ from `current`
    /// (min, max, warn, ...; `None`: a new account, all given ones).
    fn chage_argv(&self, current: Option<&[Option<i64>; 5]>) -> Option<Vec<String>> {
        let mut v = Vec::new();
        for (i, flag, want) in [
            (0, "-m", self.password_expire_min),
            (1, "-M", self.password_expire_max),
            (2, "-W", self.password_expire_warn),
        ] {
            let Some(want) = want.map(|w| w as i64) else {
                continue;
            };
            if current.is_none_or(|c| c[i] != Some(want)) {
                v.extend([flag.to_string(), want.to_string()]);
            }
        }
        (!v.is_empty()).then(|| {
            let mut full = vec!["chage".to_string()];
            full.extend(v);
            full.push(self.name.clone());
            full
        })
    }

    fn state_str(&self) -> &'static str {
        match self.state {
            State::Present => "present",
            State::Absent => "absent",
        }
    }

    /// Result fields; `acct` is the account as it is (or will be, as far as known).
    fn data(&self, acct: Option<&Account>) -> Map {
        let mut m = Map::new();
        m.insert("name".into(), Value::from(self.name.clone()));
        m.insert("state".into(), Value::from(self.state_str()));
        if self.state == State::Absent {
            m.insert("remove".into(), Value::from(self.remove));
            m.insert("force".into(), Value::from(self.force));
            return m;
        }
        m.insert("system".into(), Value::from(self.system));
        m.insert("append".into(), Value::from(self.append));
        if let Some(gs) = &self.groups {
            m.insert("groups".into(), Value::from(gs.join(",")));
        }
        if let Some(p) = &self.password {
            m.insert("password".into(), Value::from("NOT_LOGGING_PASSWORD"));
            if !looks_hashed(p) {
                m.insert(
                    "warnings".into(),
                    Value::from(vec![Value::from(
                        "The input password appears not to have been hashed. \
                         The 'password' argument must be encrypted for this module to work properly.",
                    )]),
                );
            }
        }
        if let Some(a) = acct {
            m.insert("uid".into(), Value::from(a.uid));
            m.insert("group".into(), Value::from(a.gid));
            m.insert("comment".into(), Value::from(a.comment.clone()));
            m.insert("home".into(), Value::from(a.home.clone()));
            m.insert("shell".into(), Value::from(a.shell.clone()));
        }
        for (k, v) in [
            ("comment", &self.comment),
            ("home", &self.home),
            ("shell", &self.shell),
        ] {
            if let Some(v) = v {
                m.insert(k.into(), Value::from(v.clone()));
            }
        }
        if let Some(uid) = self.uid {
            m.insert("uid".into(), Value::from(uid));
        }
        m
    }
}

impl User {
    /// The plan, from what the module's read printed.
    fn plan_from(
        &self,
        out: &crate::transport::ExecOutput,
    ) -> Result<Plan<UserChange>, ModuleError> {
        let current = super::reads::parse_read(out, &format!("user {}", self.name), |text| {
            parse_observed(&self.name, text)
        })?;
        let mut me = self.clone();
        if let Some(home) = remote_home(&out.stdout_str()) {
            me.home = me.home.map(|h| expand_tilde(&h, home));
            me.shell = me.shell.map(|s| expand_tilde(&s, home));
        }
        match me.decide(current.as_ref()) {
            None => Ok(Plan::Unchanged(me.data(current.as_ref()))),
            Some(change) => Ok(Plan::Change {
                change,
                diff: None,
                data: me.data(current.as_ref()),
            }),
        }
    }
}

#[async_trait]
impl Module for User {
    const NAME: &'static str = "user";
    const ARGS: &'static [&'static str] = &[
        "name",
        "uid",
        "group",
        "groups",
        "append",
        "shell",
        "home",
        "create_home",
        "createhome",
        "system",
        "state",
        "remove",
        "force",
        "comment",
        "password",
        "update_password",
        "password_lock",
        "generate_ssh_key",
        "expires",
        "password_expire_account_disable",
        "password_expire_min",
        "password_expire_max",
        "password_expire_warn",
        "skeleton",
        "umask",
        "uid_min",
        "uid_max",
    ];
    // Ansible's user arguments not implemented yet (fail where given).
    const PENDING: &'static [&'static str] = &[
        "ssh_key_file",
        "ssh_key_passphrase",
        "ssh_key_type",
        "ssh_key_bits",
        "ssh_key_comment",
        "local",
        "non_unique",
        "seuser",
        "login_class",
        "move_home",
        "hidden",
        "profile",
        "authorization",
        "role",
    ];
    type Change = UserChange;

    fn reads(&self, _ctx: &ReadCtx<'_>) -> Result<Protocol, ModuleError> {
        self.validate()?;
        let shadow = self.state == State::Present
            && (self.password.is_some()
                || self.password_lock.is_some()
                || self.expires.is_some()
                || self.password_expire_account_disable.is_some()
                || self.password_expire_min.is_some()
                || self.password_expire_max.is_some()
                || self.password_expire_warn.is_some());
        Ok(Protocol::Declared(ReadSet::one(
            read_script(&self.name, shadow),
            Scope::Host,
        )))
    }

    fn decide(
        &self,
        observed: &super::Observed,
        _ctx: &ReadCtx<'_>,
    ) -> Result<Decision<UserChange>, ModuleError> {
        let out = observed.output(0)?;
        self.plan_from(out).map(Decision::Plan)
    }

    async fn apply(&self, ctx: &ModuleCtx<'_>, change: UserChange) -> Result<Map, ModuleError> {
        let mut parts = Vec::new();
        if let Some(dir) = &change.parent {
            parts.push(format!("mkdir -p -- {}", shell_quote(dir)));
        }
        if let Some(argv) = &change.argv {
            parts.push(
                argv.iter()
                    .map(|a| shell_quote(a))
                    .collect::<Vec<_>>()
                    .join(" "),
            );
        }
        let mut stdin = Vec::new();
        if let Some(p) = &change.password {
            parts.push("chpasswd -e".into());
            stdin = format!("{}:{p}\n", self.name).into_bytes();
        }
        if let Some(argv) = &change.chage {
            parts.push(
                argv.iter()
                    .map(|a| shell_quote(a))
                    .collect::<Vec<_>>()
                    .join(" "),
            );
        }
        if let Some((home, uid, gid)) = &change.mkhome {
            parts.push(mkhome_script(
                home,
                self.skeleton.as_deref().unwrap_or("/etc/skel"),
                *uid,
                *gid,
            ));
        }
        if self.state == State::Present {
            parts.push(format!("getent passwd {}", shell_quote(&self.name)));
        }
        let out = ctx.remote.exec(&parts.join(" && "), &stdin).await?;
        if out.status != 0 {
            let what = change
                .argv
                .as_ref()
                .and_then(|a| a.first().cloned())
                .unwrap_or_else(|| "chpasswd".into());
            let mut data = Map::new();
            data.insert("rc".into(), Value::from(out.status));
            return Err(ModuleError::Failed {
                msg: format!("{what} failed: {}", out.stderr_str().trim()),
                data,
            });
        }
        let stdout = out.stdout_str();
        let acct = stdout
            .lines()
            .filter_map(parse_passwd_line)
            .find(|(n, _)| *n == self.name)
            .map(|(_, a)| a);
        let mut data = self.data(acct.as_ref());
        data.remove("name");
        data.remove("state");
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::modules::testutil::{assert_args_complete, Harness};

    fn module(v: Value) -> User {
        serde_json::from_value(v).expect("args")
    }

    fn argv(c: &Option<UserChange>) -> Option<String> {
        c.as_ref()
            .and_then(|c| c.argv.as_ref())
            .map(|a| a.join(" "))
    }

    fn k3s() -> Account {
        Account {
            uid: 1001,
            gid: 1001,
            group: "k3s".into(),
            groups: vec!["docker".into(), "sudo".into()],
            comment: "K3s".into(),
            home: "/home/k3s".into(),
            shell: "/bin/bash".into(),
            hash: Some("$6$old".into()),
            aging: None,
            home_exists: None,
        }
    }

    #[test]
    fn args() {
        assert_args_complete::<User>();
    }

    #[test]
    fn parses_read_output() {
        let out = "@@pw k3s:x:1001:1001:K3s:/home/k3s:/bin/bash\n@@pg k3s\n@@gs k3s docker sudo\n@@sh $6$old\n";
        assert_eq!(parse_observed("k3s", out).expect("ok"), Some(k3s()));
        assert_eq!(parse_observed("k3s", "@@none\n").expect("ok"), None);
        let out = "@@pw root:x:0:0:root:/root:/bin/bash\n@@pg root\n@@gs root\n";
        assert_eq!(parse_observed("0", out).expect("ok"), None, "uid lookup");
        let a = parse_observed("root", out).expect("ok").expect("root");
        assert!(a.groups.is_empty());
        assert_eq!(a.hash, None);
        assert!(parse_observed("k3s", "").is_err());
        assert!(read_script("k3s", false).contains("getent passwd"));
        assert!(!read_script("k3s", false).contains("shadow"));
        assert!(read_script("k3s", true).contains("getent shadow"));
        let out = "@@hm /root\n@@pw root:x:0:0:root:/root:/bin/bash\n@@pg root\n@@gs root\n";
        assert!(parse_observed("root", out).expect("ok").is_some());
        assert_eq!(remote_home(out), Some("/root"));
    }

    /// user target: skeleton, umask, uid_min/uid_max, expires and the
    /// password aging options were refused as not implemented.
    #[test]
    fn plans_expiry_aging_skeleton_and_uid_range() {
        let m = module(json!({
            "name": "t", "expires": 1_700_000_000.5, "password_expire_account_disable": 15,
            "skeleton": "/dev/null", "umask": "0077", "uid_min": 1200, "uid_max": 1299,
            "home": "/home/deep/t", "password_expire_min": 5, "password_expire_max": 30
        }));
        let c = m.decide(None).expect("change");
        assert_eq!(
            c.argv.as_ref().map(|a| a.join(" ")).as_deref(),
            Some("useradd -d /home/deep/t -e 2023-11-14 -f 15 -m -k /dev/null -K UMASK=0077 -K UID_MIN=1200 -K UID_MAX=1299 t")
        );
        assert_eq!(c.parent.as_deref(), Some("/home/deep"));
        assert_eq!(
            c.chage.map(|a| a.join(" ")).as_deref(),
            Some("chage -m 5 -M 30 t")
        );
        // Existing account: only what differs; an empty expire field is "never".
        let shadow = |expire: &str| {
            Account {
            aging: parse_observed(
                "k3s",
                &format!("@@pw k3s:x:1001:1001:K3s:/home/k3s:/bin/bash\n@@pg k3s\n@@gs k3s\n@@sh $6$x:19000:5:30:7:15:{expire}:\n"),
            )
            .expect("ok")
            .expect("account")
            .aging,
            ..k3s()
        }
        };
        let never = module(json!({"name": "k3s", "expires": -1}));
        assert_eq!(never.decide(Some(&shadow(""))), None);
        // user target test_expires_no_shadow: an account without a shadow entry.
        assert_eq!(
            argv(&never.decide(Some(&k3s()))).as_deref(),
            Some("usermod -e  k3s")
        );
        assert_eq!(
            argv(&never.decide(Some(&shadow("19675")))).as_deref(),
            Some("usermod -e  k3s")
        );
        let m = module(
            json!({"name": "k3s", "expires": 1_700_000_000, "password_expire_account_disable": 15,
                              "password_expire_min": 5, "password_expire_max": 30, "password_expire_warn": 7}),
        );
        assert_eq!(
            m.decide(Some(&shadow("19675"))),
            None,
            "19675 days is 2023-11-14"
        );
        let c = m.decide(Some(&shadow(""))).expect("change");
        assert_eq!(
            c.argv.map(|a| a.join(" ")).as_deref(),
            Some("usermod -e 2023-11-14 k3s")
        );
        assert_eq!(c.chage, None);
        let m = module(json!({"name": "k3s", "password_expire_warn": 9}));
        let c = m.decide(Some(&shadow(""))).expect("change");
        assert_eq!(
            (c.argv, c.chage.map(|a| a.join(" "))),
            (None, Some("chage -W 9 k3s".into()))
        );
    }

    /// user target "validate that user home dir is created": a missing
    /// home of an existing account was left missing (Ansible creates it).
    #[test]
    fn creates_a_missing_home_of_an_existing_account() {
        let gone = Account {
            home_exists: Some(false),
            ..k3s()
        };
        let c = module(json!({"name": "k3s"}))
            .decide(Some(&gone))
            .expect("change");
        assert_eq!(c.argv, None);
        assert_eq!(c.mkhome, Some(("/home/k3s".into(), 1001, 1001)));
        assert_eq!(
            module(json!({"name": "k3s", "create_home": false})).decide(Some(&gone)),
            None
        );
        let there = Account {
            home_exists: Some(true),
            ..k3s()
        };
        assert_eq!(module(json!({"name": "k3s"})).decide(Some(&there)), None);
        let out = "@@pw k3s:x:1001:1001:K3s:/home/k3s:/bin/bash\n@@pg k3s\n@@gs k3s\n@@hx 0\n";
        assert_eq!(
            parse_observed("k3s", out)
                .expect("ok")
                .expect("a")
                .home_exists,
            Some(false)
        );
        let script = mkhome_script("/home/k s", "/etc/skel", 5, 6);
        assert!(
            script.contains("h='/home/k s'") && script.contains("chown -R 5:6"),
            "{script}"
        );
    }

    /// user target "there should be a warning complains that the password
    /// is plaintext": the result carried no warning.
    #[test]
    fn warns_about_passwords_that_are_not_hashes() {
        let sha512 = "$6$rounds=656000$TT4O7jz2M57npccl$33LF6FcUMSW11qrESXL1HX0BS.bsiT6aenFLLiVpsQh6hDtI9pJh5iY7x8J7ePkN4fP8hmElidHXaeD51pbGS.";
        assert!(looks_hashed(sha512));
        assert!(looks_hashed("*") && looks_hashed("!"));
        assert!(!looks_hashed("plaintextpassword"));
        assert!(!looks_hashed(&sha512.replace("GS.", "G++")));
        assert!(!looks_hashed("$6$salt$short"));
        let data = module(json!({"name": "a", "password": "plaintext"})).data(None);
        assert!(data.contains_key("warnings"));
        assert!(!serde_json::to_string(&data)
            .expect("json")
            .contains("plaintext\""));
        let data = module(json!({"name": "a", "password": sha512})).data(None);
        assert!(!data.contains_key("warnings"));
    }

    /// user target "Create a new user with custom shell to test ~
    /// expansion": `shell: ~/custom_shell` went to useradd unexpanded.
    #[test]
    fn tilde_in_shell_and_home_is_the_remote_home() {
        assert_eq!(
            expand_tilde("~/custom_shell", "/root"),
            "/root/custom_shell"
        );
        assert_eq!(expand_tilde("~", "/home/a/"), "/home/a");
        assert_eq!(expand_tilde("/bin/~x", "/root"), "/bin/~x");
        assert_eq!(expand_tilde("~bob/x", "/root"), "~bob/x");
        let m = module(json!({"name": "t", "shell": "~/custom_shell"}));
        let out = crate::transport::ExecOutput {
            status: 0,
            stdout: b"@@hm /root\n@@none\n".to_vec(),
            stderr: Vec::new(),
        };
        match m.plan_from(&out).expect("plan") {
            Plan::Change { change, .. } => assert_eq!(
                change.argv.map(|a| a.join(" ")).as_deref(),
                Some("useradd -s /root/custom_shell -m t")
            ),
            _ => panic!("expected a change"),
        }
        let out = crate::transport::ExecOutput {
            status: 0,
            stdout: b"@@hm /root\n@@pw t:x:5:5::/home/t:/root/custom_shell\n@@pg t\n@@gs t\n"
                .to_vec(),
            stderr: Vec::new(),
        };
        assert!(matches!(
            m.plan_from(&out).expect("plan"),
            Plan::Unchanged(_)
        ));
    }

    #[test]
    fn groups_as_list_or_string() {
        let m = module(json!({"name": "a", "groups": "docker, sudo,"}));
        assert_eq!(m.groups, Some(vec!["docker".into(), "sudo".into()]));
        let m = module(json!({"name": "a", "groups": ["docker", "sudo,adm"]}));
        assert_eq!(
            m.groups,
            Some(vec!["docker".into(), "sudo".into(), "adm".into()])
        );
        let m = module(json!({"name": "a", "groups": ""}));
        assert_eq!(m.groups, Some(vec![]));
        assert_eq!(module(json!({"name": "a", "groups": null})).groups, None);
    }

    #[test]
    fn plans_useradd() {
        let m = module(json!({
            "name": "k3s", "uid": 1001, "group": "k3s", "groups": ["docker", "k3s"],
            "shell": "/bin/bash", "system": true, "createhome": "no",
            "comment": "K3s service", "password": "$6$new"
        }));
        m.validate().expect("valid");
        let c = m.decide(None);
        assert_eq!(
            argv(&c).as_deref(),
            Some("useradd -u 1001 -g k3s -G docker -c K3s service -s /bin/bash -M -r k3s")
        );
        let c = c.expect("change");
        assert_eq!(c.password.as_deref(), Some("$6$new"));
        assert!(
            !format!("{c:?}").contains("$6$new"),
            "password not in Debug"
        );
        let data = m.data(None);
        assert_eq!(data["password"], json!("NOT_LOGGING_PASSWORD"));
        assert_eq!(
            argv(&module(json!({"name": "bob"})).decide(None)).as_deref(),
            Some("useradd -m bob")
        );
    }

    #[test]
    fn plans_usermod_only_for_differences() {
        let a = k3s();
        let same = module(json!({
            "name": "k3s", "uid": "1001", "group": 1001, "groups": "sudo,docker",
            "shell": "/bin/bash", "home": "/home/k3s", "comment": "K3s", "password": "$6$old"
        }));
        assert_eq!(same.decide(Some(&a)), None);
        let m = module(json!({"name": "k3s", "groups": ["docker"]}));
        assert_eq!(
            argv(&m.decide(Some(&a))).as_deref(),
            Some("usermod -G docker k3s")
        );
        let m = module(json!({"name": "k3s", "groups": ["docker"], "append": true}));
        assert_eq!(m.decide(Some(&a)), None);
        let m = module(json!({"name": "k3s", "groups": ["adm"], "append": true}));
        assert_eq!(
            argv(&m.decide(Some(&a))).as_deref(),
            Some("usermod -a -G adm k3s")
        );
        let m = module(json!({"name": "k3s", "groups": ""}));
        assert_eq!(
            argv(&m.decide(Some(&a))).as_deref(),
            Some("usermod -G  k3s")
        );
        let m = module(json!({"name": "k3s", "uid": 1002, "group": "users", "shell": "/bin/sh"}));
        assert_eq!(
            argv(&m.decide(Some(&a))).as_deref(),
            Some("usermod -u 1002 -g users -s /bin/sh k3s")
        );
        let m = module(json!({"name": "k3s", "password": "$6$new"}));
        let c = m.decide(Some(&a)).expect("change");
        assert_eq!(c.argv, None);
        assert_eq!(c.password.as_deref(), Some("$6$new"));
        let m =
            module(json!({"name": "k3s", "password": "$6$new", "update_password": "on_create"}));
        assert_eq!(m.decide(Some(&a)), None);
        let m = module(json!({"name": "k3s", "password_lock": true}));
        assert_eq!(argv(&m.decide(Some(&a))).as_deref(), Some("usermod -L k3s"));
        let locked = Account {
            hash: Some("!$6$old".into()),
            ..k3s()
        };
        assert_eq!(m.decide(Some(&locked)), None);
        let m = module(json!({"name": "k3s", "password_lock": false}));
        assert_eq!(
            argv(&m.decide(Some(&locked))).as_deref(),
            Some("usermod -U k3s")
        );
    }

    #[test]
    fn plans_userdel_and_rejects_bad_args() {
        let a = k3s();
        let m = module(json!({"name": "k3s", "state": "absent", "remove": "yes"}));
        assert_eq!(argv(&m.decide(Some(&a))).as_deref(), Some("userdel -r k3s"));
        assert_eq!(m.decide(None), None);
        assert!(module(json!({"name": "-o"})).validate().is_err());
        assert!(module(json!({"name": "a", "password": "x:y"}))
            .validate()
            .is_err());
        assert!(module(json!({"name": "a", "generate_ssh_key": true}))
            .validate()
            .is_err());
        assert!(module(json!({"name": "a", "generate_ssh_key": false}))
            .validate()
            .is_ok());
    }

    #[tokio::test]
    async fn check_mode_reads_the_host_and_changes_nothing() {
        // Read-only: check mode stops after planning.
        let h = Harness::new();
        let name = "drover-no-such-user-x9";
        let out = h
            .run::<User>(json!({"name": name}), true, false)
            .await
            .expect("plan");
        assert!(out.changed, "a missing user would be created");
        assert_eq!(h.take_execs(), 1, "one read");
        let out = h
            .run::<User>(json!({"name": name, "state": "absent"}), true, false)
            .await
            .expect("plan");
        assert!(!out.changed);
        let out = h
            .run::<User>(json!({"name": "root", "state": "present"}), true, false)
            .await
            .expect("plan");
        assert!(!out.changed, "root exists");
    }
}
