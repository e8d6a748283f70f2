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
    /// Generate an SSH key pair for the account (an existing one is kept
    /// unless `force`).
    #[serde(default, deserialize_with = "bool_ish")]
    generate_ssh_key: bool,
    /// Bits of the generated key (`ssh-keygen -b`; ssh-keygen's default
    /// when absent or 0).
    #[serde(default, deserialize_with = "opt_u64_ish")]
    ssh_key_bits: Option<u64>,
    /// Type of the generated key (`ssh-keygen -t`, default `rsa`).
    #[serde(default, deserialize_with = "opt_string_ish")]
    ssh_key_type: Option<String>,
    /// Private key path, relative to the account's home unless absolute
    /// (default `.ssh/id_<type>`).
    #[serde(default, deserialize_with = "opt_string_ish")]
    ssh_key_file: Option<String>,
    /// Comment of the generated key (default `ansible-generated on
    /// <hostname>`).
    #[serde(default, deserialize_with = "opt_string_ish")]
    ssh_key_comment: Option<String>,
    /// Passphrase of the generated key: a secret, fed to ssh-keygen on
    /// stdin, never on a command line.
    #[serde(default, deserialize_with = "opt_string_ish")]
    ssh_key_passphrase: Option<String>,
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
    /// Manage the account in the local files with libuser's `luseradd`,
    /// `lusermod`, `luserdel`, `lgroupmod` and `lchage`, as Ansible does.
    #[serde(default, deserialize_with = "bool_ish")]
    local: bool,
    /// Observed, not an argument: a group named as the account exists
    /// (a new local account then gets `luseradd -n`).
    #[serde(skip)]
    name_group_exists: bool,
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
        // `groups: "{{ gid }}"` renders to a number.
        Value::Number(n) => n.to_string(),
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
    /// The SSH key files, when `generate_ssh_key` asked for them.
    pub key: Option<KeyState>,
    /// Groups listing the account as a member (`local`), primary included.
    pub members_of: Option<Vec<String>>,
}

/// The SSH key pair of an account as read from the host.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct KeyState {
    /// The private key's absolute path.
    pub path: String,
    /// Whether the directory holding it exists.
    pub dir: bool,
    /// Whether the private key exists.
    pub private: bool,
    /// Whether the public key (`<path>.pub`) exists.
    pub public: bool,
    /// `ssh-keygen -l` of the private key, when it exists.
    pub fingerprint: String,
    /// The public key's text, when it exists.
    pub public_key: Option<String>,
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

#[cfg(test)]
fn read_script(name: &str, shadow: bool, key_file: Option<&str>) -> String {
    read_script_with(name, shadow, key_file, false, &[], None)
}

/// The read of an account; `local`: only an account of /etc/passwd counts,
/// with its memberships in the group database and whether a group of its
/// name exists; `gids`: numeric group arguments to name (`@@gn`);
/// `primary`: a group name to number (`@@gi`: libuser takes gids).
fn read_script_with(
    name: &str,
    shadow: bool,
    key_file: Option<&str>,
    local: bool,
    gids: &[&str],
    primary: Option<&str>,
) -> String {
    let mut pre = String::new();
    for g in gids {
        pre.push_str(&format!(
            "printf '@@gn %s %s\\n' {g} \"$(getent group {g} | cut -d: -f1)\"\n",
            g = shell_quote(g)
        ));
    }
    if let Some(g) = primary {
        pre.push_str(&format!(
            "printf '@@gi %s\\n' \"$(getent group {} | cut -d: -f3)\"\n",
            shell_quote(g)
        ));
    }
    let (found, local_lines) = if local {
        (
            " && awk -F: -v n=\"$n\" '$1 == n {f = 1} END {exit !f}' /etc/passwd",
            "printf '@@lm %s\\n' \"$(getent group | awk -F: -v n=\"$n\" '{c = split($4, m, \",\"); for (i = 1; i <= c; i++) if (m[i] == n) printf \"%s \", $1}')\"; ",
        )
    } else {
        ("", "")
    };
    let absent = if local {
        "if getent group \"$n\" >/dev/null; then echo '@@ug'; fi; "
    } else {
        ""
    };
    format!(
        "n={}\n{pre}printf '@@hm %s\\n' \"$HOME\"\n\
         if p=$(getent passwd \"$n\"){found}; then printf '@@pw %s\\n' \"$p\"; {local_lines}\
         printf '@@pg %s\\n' \"$(id -gn \"$n\")\"; printf '@@gs %s\\n' \"$(id -Gn \"$n\")\"; \
         if [ -e \"$(printf '%s' \"$p\" | cut -d: -f6)\" ]; then echo '@@hx 1'; else echo '@@hx 0'; fi; {}{}\
         else {absent}echo '@@none'; fi\n",
        shell_quote(name),
        if shadow {
            "printf '@@sh %s\\n' \"$(getent shadow \"$n\" | cut -d: -f2-)\"; "
        } else {
            ""
        },
        key_file.map(key_read_script).unwrap_or_default(),
    )
}

/// Sets `$kf` to the key path `file` as Ansible resolves it: absolute as
/// given, `~` as the home of the user the module runs as, else below the
/// account's home `$h`.
fn key_path_script(file: &str) -> String {
    format!(
        "kf={}; case $kf in /*) ;; '~') kf=$HOME ;; '~/'*) kf=$HOME/${{kf#'~/'}} ;; *) kf=$h/$kf ;; esac; ",
        shell_quote(file)
    )
}

/// What the read prints about the key pair at `file` (run where `$p` is
/// the account's passwd line): its path, whether its directory, private
/// and public files exist, the fingerprint and the public key.
fn key_read_script(file: &str) -> String {
    format!(
        "h=$(printf '%s' \"$p\" | cut -d: -f6); {}printf '@@kf %s\\n' \"$kf\"; \
         if [ -e \"$(dirname -- \"$kf\")\" ]; then echo '@@kd'; fi; \
         if [ -e \"$kf\" ]; then echo '@@kk'; printf '@@kF %s\\n' \"$(ssh-keygen -l -f \"$kf\" </dev/null 2>/dev/null | head -n 1)\"; fi; \
         if [ -e \"$kf.pub\" ]; then echo '@@kp'; printf '@@kP %s\\n' \"$(head -n 1 -- \"$kf.pub\")\"; fi; ",
        key_path_script(file)
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
        } else if let Some(m) = line.strip_prefix("@@lm ") {
            if let Some(a) = acct.as_mut() {
                a.members_of = Some(m.split_whitespace().map(String::from).collect());
            }
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
    a.key = parse_key_lines(out);
    Ok(Some(a))
}

/// The key pair as [`key_read_script`] printed it (`None`: not read).
fn parse_key_lines(out: &str) -> Option<KeyState> {
    let mut key: Option<KeyState> = None;
    for line in out.lines() {
        if let Some(path) = line.strip_prefix("@@kf ") {
            key = Some(KeyState {
                path: path.to_string(),
                ..KeyState::default()
            });
            continue;
        }
        let Some(k) = key.as_mut() else {
            continue;
        };
        match line {
            "@@kd" => k.dir = true,
            "@@kk" => k.private = true,
            "@@kp" => k.public = true,
            _ => {
                if let Some(f) = line.strip_prefix("@@kF ") {
                    k.fingerprint = f.trim().to_string();
                } else if let Some(t) = line.strip_prefix("@@kP ") {
                    k.public_key = Some(t.trim().to_string());
                }
            }
        }
    }
    key
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

/// Append `warnings` to a result's `warnings` list.
fn add_warnings(data: &mut Map, warnings: Vec<String>) {
    if warnings.is_empty() {
        return;
    }
    let mut all = match data.remove("warnings") {
        Some(Value::Array(a)) => a,
        _ => Vec::new(),
    };
    all.extend(warnings.into_iter().map(Value::from));
    data.insert("warnings".into(), Value::Array(all));
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
    /// Generate the SSH key pair (`generate_ssh_key`, where no key is
    /// kept).
    keygen: bool,
    /// Commands run after `argv` (`local`: `lchage`, `lgroupmod`).
    after: Vec<Vec<String>>,
}

impl std::fmt::Debug for UserChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserChange")
            .field("argv", &self.argv)
            .field("password", &self.password.as_ref().map(|_| "********"))
            .field("parent", &self.parent)
            .field("chage", &self.chage)
            .field("mkhome", &self.mkhome)
            .field("keygen", &self.keygen)
            .field("after", &self.after)
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
        for (arg, v) in [
            ("ssh_key_file", &self.ssh_key_file),
            ("ssh_key_comment", &self.ssh_key_comment),
        ] {
            if let Some(v) = v {
                safe::one_line(arg, v)?;
            }
        }
        if let Some(t) = &self.ssh_key_type {
            if t.is_empty()
                || !t
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-@.".contains(c))
            {
                return Err(ModuleError::Args(format!("invalid ssh_key_type {t:?}")));
            }
        }
        // ssh-keygen reads the passphrase as a line.
        if self
            .ssh_key_passphrase
            .as_deref()
            .is_some_and(|p| p.contains(['\n', '\r', '\0']))
        {
            return Err(ModuleError::Args(
                "ssh_key_passphrase cannot contain a line break".into(),
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
                let mut v = vec![s(if self.local { "luserdel" } else { "userdel" })];
                if self.remove {
                    v.push(s("-r"));
                }
                if self.force && !self.local {
                    v.push(s("-f"));
                }
                v.push(self.name.clone());
                Some(UserChange {
                    argv: Some(v),
                    password: None,
                    parent: None,
                    chage: None,
                    mkhome: None,
                    keygen: false,
                    after: Vec::new(),
                })
            }
            (State::Present, None) => {
                let mut v = vec![s(if self.local { "luseradd" } else { "useradd" })];
                let mut after = Vec::new();
                if let Some(uid) = self.uid {
                    v.extend([s("-u"), uid.to_string()]);
                }
                if let Some(g) = &self.group {
                    v.extend([s("-g"), g.clone()]);
                } else if self.local && self.name_group_exists {
                    // luseradd would try to make the group of that name.
                    v.push(s("-n"));
                }
                if let Some(gs) = self.wanted_groups(self.group.as_deref().unwrap_or_default()) {
                    if self.local {
                        for g in gs {
                            after.push(vec![s("lgroupmod"), s("-M"), self.name.clone(), g]);
                        }
                    } else if !gs.is_empty() {
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
                    if self.local {
                        after.insert(0, self.lchage(e));
                    } else {
                        v.extend([s("-e"), expiry_date(e).unwrap_or_default()]);
                    }
                }
                if let Some(f) = self.password_expire_account_disable {
                    v.extend([s("-f"), (f as i64).to_string()]);
                }
                if self.create_home {
                    if !self.local {
                        v.push(s("-m"));
                    }
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
                    password: self.password.clone().map(|p| self.lock_hash(p)),
                    parent,
                    chage: self.chage_argv(None),
                    mkhome: None,
                    keygen: self.generate_ssh_key,
                    after,
                })
            }
            (State::Present, Some(a)) => {
                let mut v = Vec::new();
                let mut after = Vec::new();
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
                if let (true, Some(want)) = (self.local, &self.groups) {
                    after.extend(self.lgroupmod(want, a.members_of.as_deref().unwrap_or_default()));
                } else if let Some(want) = self.wanted_groups(&primary) {
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
                    let set = match expiry_date(e) {
                        None if current >= 0 => Some(String::new()),
                        Some(d) if current < 0 || days_date(current) != d => Some(d),
                        _ => None,
                    };
                    match set {
                        Some(_) if self.local => after.insert(0, self.lchage(e)),
                        Some(d) => v.extend([s("-e"), d]),
                        None => {}
                    }
                }
                if let Some(f) = self.password_expire_account_disable {
                    if aging[3] != Some(f as i64) {
                        v.extend([s("-f"), (f as i64).to_string()]);
                    }
                }
                // As Ansible: hashes compare without a lock's '!'; a new
                // hash is set locked or not as asked, in place of -L/-U.
                let current = a.hash.as_deref().unwrap_or_default();
                let password = self
                    .password
                    .clone()
                    .filter(|_| self.update_password == UpdatePassword::Always)
                    .filter(|p| current.trim_start_matches('!') != p.trim_start_matches('!'))
                    .map(|p| self.lock_hash(p));
                let locked = current.starts_with('!');
                match self.password_lock {
                    _ if password.is_some() => {}
                    Some(true) if !locked => v.push(s("-L")),
                    Some(false) if locked => v.push(s("-U")),
                    _ => {}
                }
                let argv = (!v.is_empty()).then(|| {
                    let mut full = vec![s(if self.local { "lusermod" } else { "usermod" })];
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
                let keygen = self.generate_ssh_key && self.key_wanted(a.key.as_ref());
                (argv.is_some()
                    || password.is_some()
                    || chage.is_some()
                    || mkhome.is_some()
                    || keygen
                    || !after.is_empty())
                .then_some(UserChange {
                    argv,
                    password,
                    parent: None,
                    chage,
                    mkhome,
                    keygen,
                    after,
                })
            }
        }
    }

    /// `lchage -E` for `expires` (seconds; negative: never), in days.
    fn lchage(&self, expires: f64) -> Vec<String> {
        let days = if expires < 0.0 {
            -1
        } else {
            (expires.floor() as i64).div_euclid(86_400)
        };
        vec![
            "lchage".into(),
            "-E".into(),
            days.to_string(),
            self.name.clone(),
        ]
    }

    /// `lgroupmod -M/-m` to make the account's memberships `want` (added
    /// to with `append`), from those it has (`current`), as Ansible's
    /// local mode compares them: by name, the primary group included.
    fn lgroupmod(&self, want: &[String], current: &[String]) -> Vec<Vec<String>> {
        let differs = |g: &String| !current.contains(g);
        let needed = if want.is_empty() {
            !current.is_empty() && !self.append
        } else if self.append {
            want.iter().any(differs)
        } else {
            want.iter().any(differs) || current.iter().any(|g| !want.contains(g))
        };
        if !needed {
            return Vec::new();
        }
        let cmd = |flag: &str, g: &String| {
            vec![
                "lgroupmod".to_string(),
                flag.to_string(),
                self.name.clone(),
                g.clone(),
            ]
        };
        let mut out: Vec<Vec<String>> = Vec::new();
        for g in want.iter().filter(|g| differs(g)) {
            if !out.iter().any(|c| c[3] == *g) {
                out.push(cmd("-M", g));
            }
        }
        if !self.append {
            for g in current.iter().filter(|g| !want.contains(g)) {
                out.push(cmd("-m", g));
            }
        }
        out
    }

    /// The hash to set: locked (`!` first) with `password_lock: true`.
    fn lock_hash(&self, hash: String) -> String {
        if self.password_lock == Some(true) {
            format!("!{hash}")
        } else {
            hash
        }
    }

    /// Whether to run ssh-keygen, as Ansible decides: when the key's
    /// directory is missing, or neither key file exists (or `force`).
    fn key_wanted(&self, key: Option<&KeyState>) -> bool {
        key.is_none_or(|k| !k.dir || self.force || (!k.private && !k.public))
    }

    /// The warnings Ansible gives about key files that exist.
    fn key_warnings(&self, k: &KeyState) -> Vec<String> {
        let mut out = Vec::new();
        if !k.dir {
            return out;
        }
        for (exists, what, path) in [
            (k.private, "private", k.path.clone()),
            (k.public, "public", format!("{}.pub", k.path)),
        ] {
            if !exists {
                continue;
            }
            if self.force {
                out.push(format!(
                    "Overwriting existing ssh key {what} file \"{path}\""
                ));
            } else {
                out.push(format!(
                    "Found existing ssh key {what} file \"{path}\", no force, so skipping ssh-keygen generation"
                ));
                break;
            }
        }
        out
    }

    /// The key path argument: `ssh_key_file`, else `.ssh/id_<type>`.
    fn key_file(&self) -> Option<String> {
        self.generate_ssh_key.then(|| {
            self.ssh_key_file
                .clone()
                .unwrap_or_else(|| format!(".ssh/id_{}", self.key_type()))
        })
    }

    fn key_type(&self) -> &str {
        self.ssh_key_type.as_deref().unwrap_or("rsa")
    }

    /// The script generating the key pair as Ansible does (run after the
    /// account exists): the directory made 0700 and owned by the account
    /// when missing, existing files kept unless `force`, both files owned
    /// by the account. The passphrase is in `$pp` (read from stdin), never
    /// on a command line. It prints the pair as [`key_read_script`] does,
    /// with `@@kw` warnings.
    fn keygen_script(&self, file: &str) -> String {
        let mut kg = vec![
            "ssh-keygen".to_string(),
            "-q".into(),
            "-t".into(),
            shell_quote(self.key_type()),
        ];
        if let Some(bits) = self.ssh_key_bits.filter(|b| *b > 0) {
            kg.extend(["-b".into(), bits.to_string()]);
        }
        kg.extend(["-C".into(), "\"$c\"".into(), "-f".into(), "\"$kf\"".into()]);
        let feed = if self.ssh_key_passphrase.is_some() {
            "printf '%s\\n%s\\n' \"$pp\" \"$pp\""
        } else {
            kg.extend(["-N".into(), "''".into()]);
            ":"
        };
        let comment = match &self.ssh_key_comment {
            Some(c) => shell_quote(c),
            None => "\"ansible-generated on $(uname -n)\"".into(),
        };
        let relative = !file.starts_with('/') && file != "~" && !file.starts_with("~/");
        let force = if self.force { "true" } else { "false" };
        format!(
            "{{ n={n}; p=$(getent passwd \"$n\") || exit 1; h=$(printf '%s' \"$p\" | cut -d: -f6); \
             o=$(printf '%s' \"$p\" | cut -d: -f3,4); {path}\
             if {relative} && [ ! -e \"$h\" ]; then printf 'User %s home directory does not exist\\n' \"$n\" >&2; exit 1; fi; \
             d=$(dirname -- \"$kf\"); go=1; \
             if [ ! -e \"$d\" ]; then mkdir -m 700 -- \"$d\" && chown \"$o\" \"$d\" || exit 1; fi; \
             for x in private:\"$kf\" public:\"$kf.pub\"; do w=${{x%%:*}}; f=${{x#*:}}; \
             if [ $go = 1 ] && [ -e \"$f\" ]; then if {force}; then \
             printf '@@kw Overwriting existing ssh key %s file \"%s\"\\n' \"$w\" \"$f\"; rm -f -- \"$f\" || exit 1; \
             else printf '@@kw Found existing ssh key %s file \"%s\", no force, so skipping ssh-keygen generation\\n' \"$w\" \"$f\"; go=0; fi; fi; done; \
             if [ $go = 1 ]; then c={comment}; \
             if ! e=$({feed} | {kg} 2>&1 >/dev/null); then printf '%s\\n' \"$e\" | sed 's/Enter [^:]*: //g' >&2; exit 1; fi; \
             chown \"$o\" -- \"$kf\" \"$kf.pub\" || exit 1; echo '@@kg'; fi; \
             {read}}}",
            n = shell_quote(&self.name),
            path = key_path_script(file),
            relative = if relative { "true" } else { "false" },
            kg = kg.join(" "),
            read = key_read_script(file),
        )
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
        if self.append && self.groups.is_none() {
            add_warnings(
                &mut m,
                vec![
                    "'append' is set, but no 'groups' are specified. Use 'groups' for \
                      appending new groups.This will change to an error in Ansible 2.14."
                        .into(),
                ],
            );
        }
        if let Some(p) = &self.password {
            m.insert("password".into(), Value::from("NOT_LOGGING_PASSWORD"));
            if !looks_hashed(p) {
                add_warnings(
                    &mut m,
                    vec!["The input password appears not to have been hashed. \
                          The 'password' argument must be encrypted for this module to work properly."
                        .into()],
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
        if let Some(k) = acct
            .and_then(|a| a.key.as_ref())
            .filter(|_| self.generate_ssh_key)
        {
            // Ansible reports ssh-keygen's stderr (empty) for a missing key.
            let fingerprint = if k.private {
                k.fingerprint.clone()
            } else {
                String::new()
            };
            m.insert("ssh_fingerprint".into(), Value::from(fingerprint));
            m.insert("ssh_key_file".into(), Value::from(k.path.clone()));
            m.insert(
                "ssh_public_key".into(),
                k.public_key.clone().map(Value::from).unwrap_or(Value::Null),
            );
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
        let text = out.stdout_str();
        if let Some(home) = remote_home(&text) {
            me.home = me.home.map(|h| expand_tilde(&h, home));
            me.shell = me.shell.map(|s| expand_tilde(&s, home));
        }
        me.name_group_exists = text.lines().any(|l| l == "@@ug");
        if let Some(gid) = text
            .lines()
            .find_map(|l| l.strip_prefix("@@gi "))
            .filter(|g| !g.is_empty() && me.local)
        {
            me.group = Some(gid.to_string());
        }
        // Groups given by gid compare by name, as Ansible resolves them.
        let names: Vec<(&str, &str)> = text
            .lines()
            .filter_map(|l| l.strip_prefix("@@gn "))
            .filter_map(|l| l.split_once(' '))
            .filter(|(_, n)| !n.is_empty())
            .collect();
        if let Some(gs) = me.groups.as_mut() {
            for g in gs.iter_mut() {
                if let Some((_, n)) = names.iter().find(|(gid, _)| *gid == g.as_str()) {
                    *g = n.to_string();
                }
            }
        }
        let mut data = me.data(current.as_ref());
        if let Some(k) = current
            .as_ref()
            .and_then(|a| a.key.as_ref())
            .filter(|_| me.generate_ssh_key && me.state == State::Present)
        {
            add_warnings(&mut data, me.key_warnings(k));
        }
        match me.decide(current.as_ref()) {
            None => Ok(Plan::Unchanged(data)),
            Some(change) => Ok(Plan::Change {
                change,
                diff: None,
                data,
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
        "ssh_key_file",
        "ssh_key_passphrase",
        "ssh_key_type",
        "ssh_key_bits",
        "ssh_key_comment",
        "expires",
        "password_expire_account_disable",
        "password_expire_min",
        "password_expire_max",
        "password_expire_warn",
        "skeleton",
        "umask",
        "uid_min",
        "uid_max",
        "local",
    ];
    // Ansible's user arguments not implemented yet (fail where given).
    const PENDING: &'static [&'static str] = &[
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
        if self.local {
            for (arg, given) in [
                ("umask", self.umask.is_some()),
                ("uid_min", self.uid_min.is_some()),
                ("uid_max", self.uid_max.is_some()),
            ] {
                if given {
                    return Err(ModuleError::failed(format!(
                        "'{arg}' can not be used with 'local'"
                    )));
                }
            }
        }
        let key_file = self.key_file().filter(|_| self.state == State::Present);
        let gids: Vec<&str> = self
            .groups
            .iter()
            .flatten()
            .filter(|g| g.bytes().all(|b| b.is_ascii_digit()))
            .map(String::as_str)
            .collect();
        Ok(Protocol::Declared(ReadSet::one(
            read_script_with(
                &self.name,
                shadow,
                key_file.as_deref(),
                self.local,
                &gids,
                self.group
                    .as_deref()
                    .filter(|g| self.local && !g.bytes().all(|b| b.is_ascii_digit())),
            ),
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
        for argv in change.argv.iter().chain(&change.after) {
            parts.push(
                argv.iter()
                    .map(|a| shell_quote(a))
                    .collect::<Vec<_>>()
                    .join(" "),
            );
        }
        let mut stdin = Vec::new();
        // The passphrase comes first on stdin, read into a variable of the
        // script's own shell before chpasswd takes the rest.
        if let Some(pp) = self.ssh_key_passphrase.as_ref().filter(|_| change.keygen) {
            parts.insert(0, "IFS= read -r pp".into());
            stdin.extend_from_slice(pp.as_bytes());
            stdin.push(b'\n');
        }
        if let Some(p) = &change.password {
            parts.push("chpasswd -e".into());
            stdin.extend_from_slice(format!("{}:{p}\n", self.name).as_bytes());
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
        if let Some(file) = self.key_file().filter(|_| change.keygen) {
            parts.push(self.keygen_script(&file));
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
                .unwrap_or_else(|| {
                    if change.password.is_some() || !change.keygen {
                        "chpasswd".into()
                    } else {
                        "ssh-keygen".into()
                    }
                });
            let mut data = Map::new();
            data.insert("rc".into(), Value::from(out.status));
            return Err(ModuleError::Failed {
                msg: format!("{what} failed: {}", out.stderr_str().trim()),
                data,
            });
        }
        let stdout = out.stdout_str();
        let mut acct = stdout
            .lines()
            .filter(|l| !l.starts_with("@@"))
            .filter_map(parse_passwd_line)
            .find(|(n, _)| *n == self.name)
            .map(|(_, a)| a);
        let mut warnings = Vec::new();
        if change.keygen {
            if let Some(a) = acct.as_mut() {
                a.key = parse_key_lines(&stdout);
            }
            warnings = stdout
                .lines()
                .filter_map(|l| l.strip_prefix("@@kw "))
                .map(String::from)
                .collect();
        }
        let mut data = self.data(acct.as_ref());
        add_warnings(&mut data, warnings);
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
            key: None,
            members_of: None,
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
        assert!(read_script("k3s", false, None).contains("getent passwd"));
        assert!(!read_script("k3s", false, None).contains("shadow"));
        assert!(read_script("k3s", true, None).contains("getent shadow"));
        assert!(!read_script("k3s", false, None).contains("ssh-keygen"));
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

    /// user target "Create user with ssh key": `generate_ssh_key` and the
    /// `ssh_key_*` arguments were refused as not implemented.
    #[test]
    fn generates_a_key_only_where_ansible_would() {
        let key = |dir, private, public| KeyState {
            path: "/home/k3s/.ssh/id_rsa".into(),
            dir,
            private,
            public,
            fingerprint: "3072 SHA256:abc c (RSA)".into(),
            public_key: public.then(|| "ssh-rsa AAAA c".into()),
        };
        let with = |k: KeyState| Account {
            key: Some(k),
            ..k3s()
        };
        let m = module(json!({"name": "k3s", "generate_ssh_key": true}));
        assert_eq!(m.key_file().as_deref(), Some(".ssh/id_rsa"));
        assert!(m.decide(None).expect("create").keygen);
        // Missing directory or no key: generate; the account itself is as asked.
        let c = m
            .decide(Some(&with(key(false, false, false))))
            .expect("change");
        assert!(c.keygen && c.argv.is_none() && c.password.is_none());
        assert!(m.decide(Some(&with(key(true, false, false)))).is_some());
        // An existing private or public key is kept, with Ansible's warning.
        for (private, public) in [(true, true), (true, false), (false, true)] {
            let k = key(true, private, public);
            assert_eq!(m.decide(Some(&with(k.clone()))), None);
            let w = m.key_warnings(&k);
            assert_eq!(w.len(), 1, "{w:?}");
            assert!(w[0].contains("no force, so skipping"), "{w:?}");
        }
        // force: regenerated every time, as Ansible does.
        let f = module(json!({"name": "k3s", "generate_ssh_key": true, "force": true}));
        assert!(
            f.decide(Some(&with(key(true, true, true))))
                .expect("c")
                .keygen
        );
        assert_eq!(
            f.key_warnings(&key(true, true, true)),
            vec![
                "Overwriting existing ssh key private file \"/home/k3s/.ssh/id_rsa\"".to_string(),
                "Overwriting existing ssh key public file \"/home/k3s/.ssh/id_rsa.pub\""
                    .to_string(),
            ]
        );
        // Results: fingerprint, path, public key; an empty fingerprint for
        // a missing key, as Ansible's ssh-keygen stderr.
        let d = m.data(Some(&with(key(true, true, true))));
        assert_eq!(d["ssh_fingerprint"], json!("3072 SHA256:abc c (RSA)"));
        assert_eq!(d["ssh_key_file"], json!("/home/k3s/.ssh/id_rsa"));
        assert_eq!(d["ssh_public_key"], json!("ssh-rsa AAAA c"));
        let d = m.data(Some(&with(key(false, false, false))));
        assert_eq!(
            (&d["ssh_fingerprint"], &d["ssh_public_key"]),
            (&json!(""), &Value::Null)
        );
        assert!(!module(json!({"name": "k3s"}))
            .data(Some(&with(key(true, true, true))))
            .contains_key("ssh_key_file"));
        // The read's lines.
        let out = "@@pw k3s:x:1001:1001:K3s:/home/k3s:/bin/bash\n@@pg k3s\n@@gs k3s\n@@kf /home/k3s/.ssh/id_rsa\n@@kd\n@@kk\n@@kF 3072 SHA256:abc c (RSA)\n@@kp\n@@kP ssh-rsa AAAA c\n";
        let a = parse_observed("k3s", out).expect("ok").expect("account");
        assert_eq!(a.key, Some(key(true, true, true)));
        assert!(read_script("k3s", false, Some(".ssh/x")).contains("ssh-keygen -l"));
    }

    /// The passphrase is a secret: it reaches ssh-keygen on stdin through
    /// a shell variable, never as text of the script (a command line, a
    /// log line).
    #[test]
    fn the_key_passphrase_is_never_script_text() {
        let m = module(json!({
            "name": "k3s", "generate_ssh_key": true, "ssh_key_passphrase": "s3cret-pp",
            "ssh_key_bits": 2048, "ssh_key_type": "ed25519", "ssh_key_comment": "it's me",
            "ssh_key_file": "~/keys/k"
        }));
        let script = m.keygen_script(&m.key_file().expect("file"));
        assert!(!script.contains("s3cret-pp"), "{script}");
        assert!(script.contains("\"$pp\""), "{script}");
        assert!(!script.contains("-N"), "{script}");
        assert!(
            script.contains("ssh-keygen -q -t ed25519 -b 2048 -C \"$c\" -f \"$kf\""),
            "{script}"
        );
        assert!(script.contains("c='it'\\''s me'"), "{script}");
        let plain = module(json!({"name": "k3s", "generate_ssh_key": true}));
        let script = plain.keygen_script(&plain.key_file().expect("file"));
        assert!(script.contains("-N ''") && script.contains("ansible-generated on $(uname -n)"));
    }

    /// user target test_local.yml: `local` was refused as not
    /// implemented; Ansible runs libuser's tools and manages memberships
    /// with lgroupmod.
    #[test]
    fn local_accounts_use_libuser() {
        let all = |c: &UserChange| {
            c.argv
                .iter()
                .chain(&c.after)
                .map(|a| a.join(" "))
                .collect::<Vec<_>>()
        };
        let mut m = module(
            json!({"name": "lu", "local": true, "groups": ["g1", "g2"], "expires": 2_529_881_062u64}),
        );
        m.name_group_exists = true;
        let c = m.decide(None).expect("create");
        assert_eq!(
            all(&c),
            [
                "luseradd -n lu",
                "lchage -E 29281 lu",
                "lgroupmod -M lu g1",
                "lgroupmod -M lu g2"
            ]
        );
        let a = Account {
            members_of: Some(vec!["g1".into(), "old".into()]),
            ..k3s()
        };
        let m = module(json!({"name": "k3s", "local": true, "groups": ["g1", "g3"]}));
        assert_eq!(
            all(&m.decide(Some(&a)).expect("change")),
            ["lgroupmod -M k3s g3", "lgroupmod -m k3s old"]
        );
        let m = module(json!({"name": "k3s", "local": true, "groups": ["g1"], "append": true}));
        assert_eq!(m.decide(Some(&a)), None);
        let m = module(json!({"name": "k3s", "local": true, "group": "1002", "expires": -1}));
        assert_eq!(
            all(&m.decide(Some(&a)).expect("change")),
            ["lusermod -g 1002 k3s", "lchage -E -1 k3s"]
        );
        let m = module(
            json!({"name": "k3s", "local": true, "state": "absent", "remove": true, "force": true}),
        );
        assert_eq!(
            argv(&m.decide(Some(&a))).as_deref(),
            Some("luserdel -r k3s")
        );
        // The read: only /etc/passwd counts; memberships and gids are read.
        let script = read_script_with("lu", false, None, true, &["1005"], Some("g5"));
        assert!(
            script.contains("/etc/passwd") && script.contains("@@lm") && script.contains("@@ug")
        );
        assert!(script.contains("getent group 1005") && script.contains("getent group g5"));
        let out = "@@pw lu:x:5:5::/home/lu:/bin/sh\n@@lm g1 g2 \n@@pg lu\n@@gs lu g1 g2\n";
        let a = parse_observed("lu", out).expect("ok").expect("account");
        assert_eq!(a.members_of, Some(vec!["g1".into(), "g2".into()]));
    }

    /// user target "Append groups ... using group id": `groups: 1005` (a
    /// number) was refused, and a gid never matched the names the host
    /// reports; "Test append without groups": Ansible's warning was missing.
    #[test]
    fn groups_by_gid_and_the_append_warning() {
        let m = module(json!({"name": "k3s", "groups": 1005, "append": true}));
        assert_eq!(m.groups, Some(vec!["1005".into()]));
        let out = crate::transport::ExecOutput {
            status: 0,
            stdout: b"@@gn 1005 docker\n@@hm /root\n@@pw k3s:x:1001:1001::/home/k3s:/bin/sh\n@@pg k3s\n@@gs k3s docker\n@@hx 1\n".to_vec(),
            stderr: Vec::new(),
        };
        assert!(matches!(
            m.plan_from(&out).expect("plan"),
            Plan::Unchanged(_)
        ));
        let d = module(json!({"name": "k3s", "append": true})).data(None);
        assert!(
            d["warnings"][0]
                .as_str()
                .is_some_and(|w| w.contains("'append' is set, but no 'groups'")),
            "{d:?}"
        );
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

    /// user target "Lock account with password parameter": password and
    /// password_lock together were refused; Ansible sets the hash locked
    /// (or only locks, when the hash is the same).
    #[test]
    fn password_and_password_lock_together() {
        let both = |lock: bool, pw: &str| {
            module(json!({"name": "k3s", "password_lock": lock, "password": pw}))
        };
        let plain = k3s();
        let locked = Account {
            hash: Some("!$6$old".into()),
            ..k3s()
        };
        both(true, "$6$old").validate().expect("valid");
        let c = both(true, "$6$old").decide(Some(&plain)).expect("lock");
        assert_eq!((argv(&Some(c)).as_deref()), Some("usermod -L k3s"));
        assert_eq!(both(true, "$6$old").decide(Some(&locked)), None);
        assert_eq!(
            argv(&both(false, "$6$old").decide(Some(&locked))).as_deref(),
            Some("usermod -U k3s")
        );
        assert_eq!(both(false, "$6$old").decide(Some(&plain)), None);
        let c = both(true, "$6$new").decide(Some(&plain)).expect("new hash");
        assert_eq!(
            (c.argv.clone(), c.password.as_deref()),
            (None, Some("!$6$new"))
        );
        // A new account: created with the locked hash.
        let c = both(true, "$6$new").decide(None).expect("create");
        assert_eq!(c.password.as_deref(), Some("!$6$new"));
        // The same hash as a locked one, no lock asked: unchanged, as Ansible.
        let m = module(json!({"name": "k3s", "password": "$6$old"}));
        assert_eq!(m.decide(Some(&locked)), None);
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
            .is_ok());
        for bad in [
            json!({"name": "a", "ssh_key_type": "rsa; id"}),
            json!({"name": "a", "ssh_key_file": "k\nx"}),
            json!({"name": "a", "ssh_key_passphrase": "pass\nphrase"}),
        ] {
            assert!(module(bad.clone()).validate().is_err(), "{bad}");
        }
    }

    /// user target "Create user with setting both umask and local": it
    /// must fail as Ansible's module does, at run time, not at load.
    #[tokio::test]
    async fn local_refuses_umask_and_uid_ranges_when_run() {
        let h = Harness::new();
        for (arg, v) in [
            ("umask", json!("077")),
            ("uid_min", json!(1000)),
            ("uid_max", json!(2000)),
        ] {
            let mut args = json!({"name": "drover-no-such-user-x9", "local": true});
            args[arg] = v;
            module(args.clone()).validate().expect("loads");
            let Err(err) = h.run::<User>(args, true, false).await else {
                panic!("{arg} with local ran");
            };
            assert_eq!(
                err.to_string(),
                format!("'{arg}' can not be used with 'local'")
            );
        }
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
