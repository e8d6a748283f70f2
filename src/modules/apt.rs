//! `apt` (ansible.builtin.apt): install, upgrade or remove Debian packages
//! and refresh the package lists. One exec reads the cache's age, the dpkg
//! status of every named package (`dpkg-query -W`) and, for `latest`, the
//! candidates (`apt-cache policy`); nothing runs when the host already
//! matches. Installs run non-interactively and keep changed config files.
//!
//! The cache update is not a change by itself when packages are named (as in
//! Ansible); alone (`update_cache: true` without names) it is a change only
//! when the lists in `/var/lib/apt/lists` changed.

use async_trait::async_trait;
use serde::Deserialize;

use super::apt_deb;
use super::args::{bool_ish, opt_bool_ish, opt_string_ish, opt_strings_ish, opt_u64_ish};
use super::safe;
use super::{
    Decision, Diff, Module, ModuleCtx, ModuleError, Plan, Protocol, ReadCtx, ReadSet, Scope,
};
use crate::transport::shell_quote;
use crate::{Map, Value};

/// Arguments of `apt`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Apt {
    /// Packages (`name`, `name=version`, `name=1.2*`, `name:arch`).
    #[serde(
        default,
        alias = "pkg",
        alias = "package",
        deserialize_with = "opt_strings_ish"
    )]
    name: Option<Vec<String>>,
    /// present (installed), absent (removed) or latest.
    #[serde(default)]
    state: State,
    /// Run `apt-get update` first.
    #[serde(default, alias = "update-cache", deserialize_with = "bool_ish")]
    update_cache: bool,
    /// Update only when the last successful update is older (seconds).
    #[serde(default, deserialize_with = "opt_u64_ish")]
    cache_valid_time: Option<u64>,
    /// Remove config files too (absent).
    #[serde(default, deserialize_with = "bool_ish")]
    purge: bool,
    /// Install recommended packages (apt's own default when not given).
    #[serde(
        default,
        alias = "install-recommends",
        deserialize_with = "opt_bool_ish"
    )]
    install_recommends: Option<bool>,
    /// Seconds to wait for the dpkg lock.
    #[serde(default, deserialize_with = "opt_u64_ish")]
    lock_timeout: Option<u64>,
    /// Let a named version older than the installed one replace it.
    #[serde(
        default,
        alias = "allow-downgrade",
        alias = "allow_downgrades",
        alias = "allow-downgrades",
        deserialize_with = "bool_ish"
    )]
    allow_downgrade: bool,
    /// .deb files to install: paths on the target or URLs the target
    /// downloads (see [`super::apt_deb`]).
    #[serde(default, deserialize_with = "opt_strings_ish")]
    deb: Option<Vec<String>>,
    /// `--force-yes` (which apt deprecates; as Ansible passes it).
    #[serde(default, deserialize_with = "bool_ish")]
    force: bool,
    /// Install packages that cannot be authenticated.
    #[serde(
        default,
        alias = "allow-unauthenticated",
        deserialize_with = "bool_ish"
    )]
    allow_unauthenticated: bool,
    /// Let held packages be installed, upgraded or removed.
    #[serde(default, deserialize_with = "bool_ish")]
    allow_change_held_packages: bool,
    /// Fail rather than remove packages as a side effect (`--no-remove`).
    #[serde(default, deserialize_with = "bool_ish")]
    fail_on_autoremove: bool,
    /// The release packages are taken from (`-t`).
    #[serde(
        default,
        alias = "default-release",
        deserialize_with = "opt_string_ish"
    )]
    default_release: Option<String>,
    /// dpkg options, comma-separated (Ansible's default keeps changed
    /// configuration files: `force-confdef,force-confold`).
    #[serde(default, deserialize_with = "opt_strings_ish")]
    dpkg_options: Option<Vec<String>>,
    /// Only upgrade packages that are installed; install none.
    #[serde(default, alias = "only-upgrade", deserialize_with = "bool_ish")]
    only_upgrade: bool,
    /// Remove packages nothing needs any more (alone: `apt-get autoremove`).
    #[serde(default, deserialize_with = "bool_ish")]
    autoremove: bool,
    /// Remove downloaded packages that can no longer be downloaded.
    #[serde(default, deserialize_with = "bool_ish")]
    autoclean: bool,
    /// Empty the cache of downloaded packages (always a change, as in Ansible).
    #[serde(default, deserialize_with = "bool_ish")]
    clean: bool,
    /// Upgrade the installed packages: `no`, `yes`/`safe`, `full`/`dist`.
    #[serde(default, deserialize_with = "upgrade_mode")]
    upgrade: Upgrade,
    /// Ansible's choice of apt-get over aptitude; drover always uses apt-get.
    #[serde(default, rename = "force_apt_get", deserialize_with = "bool_ish")]
    _force_apt_get: bool,
    /// Attempts of `apt-get update` (default 5, as Ansible).
    #[serde(default, deserialize_with = "opt_u64_ish")]
    update_cache_retries: Option<u64>,
    /// Longest wait between two attempts of the update (default 12 s).
    #[serde(default, deserialize_with = "opt_u64_ish")]
    update_cache_retry_max_delay: Option<u64>,
}

/// `upgrade:` of apt.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Upgrade {
    #[default]
    No,
    /// `yes` or `safe`: `apt-get upgrade --with-new-pkgs` (Ansible's choice
    /// where aptitude is missing or apt-get is forced).
    Safe,
    /// `full` or `dist`: `apt-get dist-upgrade`.
    Dist,
}

impl Upgrade {
    /// The apt-get subcommand.
    fn command(self) -> Option<&'static str> {
        match self {
            Upgrade::No => None,
            Upgrade::Safe => Some("upgrade --with-new-pkgs"),
            Upgrade::Dist => Some("dist-upgrade"),
        }
    }
}

fn upgrade_mode<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Upgrade, D::Error> {
    let v = Value::deserialize(d)?;
    let word = v.as_str().map(|s| s.trim().to_ascii_lowercase());
    match (word.as_deref(), super::args::parse_bool(&v)) {
        (Some("safe"), _) | (_, Some(true)) => Ok(Upgrade::Safe),
        (Some("full" | "dist"), _) => Ok(Upgrade::Dist),
        (_, Some(false)) => Ok(Upgrade::No),
        _ if v.is_null() => Ok(Upgrade::No),
        _ => Err(serde::de::Error::custom(format!(
            "value of upgrade must be one of: dist, full, no, safe, yes, got: {v}"
        ))),
    }
}

/// The wanted package state.
#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum State {
    #[default]
    #[serde(alias = "installed")]
    Present,
    #[serde(alias = "removed")]
    Absent,
    Latest,
}

/// One package as dpkg knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PkgStatus {
    arch: String,
    /// `db:Status-Abbrev`, e.g. `ii `, `rc `, `un `.
    abbrev: String,
    version: String,
}

impl PkgStatus {
    /// Unpacked and configured (triggers pending count as installed).
    fn installed(&self) -> bool {
        matches!(self.abbrev.as_bytes().get(1), Some(b'i' | b'W' | b't'))
    }

    /// Removed but its config files are kept.
    fn config_files(&self) -> bool {
        self.abbrev.as_bytes().get(1) == Some(&b'c')
    }
}

/// What was read from the host.
#[derive(Debug, Default, PartialEq)]
struct Observed {
    /// `date +%s` on the host.
    now: u64,
    /// When the lists were last updated (epoch seconds), if known.
    stamp: Option<u64>,
    /// dpkg's records, by package name.
    dpkg: Vec<(String, PkgStatus)>,
    /// Candidate versions from `apt-cache policy` (`None`: no candidate).
    candidates: Vec<(String, Option<String>)>,
    /// Packages an upgrade would install or remove (simulated).
    upgrades: u64,
    /// Packages `autoremove` would remove (simulated).
    autoremovable: u64,
    /// Files `autoclean` would delete (simulated).
    autocleanable: u64,
}

/// A requested package split into name, optional arch and optional version.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Wanted {
    spec: String,
    name: String,
    arch: Option<String>,
    version: Option<String>,
}

fn parse_wanted(spec: &str) -> Wanted {
    let (pkg, version) = match spec.split_once('=') {
        Some((p, v)) => (p, Some(v.to_string())),
        None => (spec, None),
    };
    let (name, arch) = match pkg.split_once(':') {
        Some((n, a)) => (n.to_string(), Some(a.to_string())),
        None => (pkg.to_string(), None),
    };
    Wanted {
        spec: spec.to_string(),
        name,
        arch,
        version,
    }
}

/// Does an installed version satisfy `name=version` (a trailing `*` is a prefix)?
fn version_matches(installed: &str, wanted: &str) -> bool {
    match wanted.strip_suffix('*') {
        Some(prefix) => installed.starts_with(prefix),
        None => installed == wanted,
    }
}

/// Parse `dpkg-query -W -f='${Package}\t${Architecture}\t${db:Status-Abbrev}\t${Version}\n'`.
fn parse_dpkg(out: &str) -> Vec<(String, PkgStatus)> {
    out.lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            let name = f.next()?.to_string();
            let arch = f.next()?.to_string();
            let abbrev = f.next()?.to_string();
            let version = f.next().unwrap_or("").to_string();
            (!name.is_empty()).then_some((
                name,
                PkgStatus {
                    arch,
                    abbrev,
                    version,
                },
            ))
        })
        .collect()
}

/// Parse `apt-cache policy A B ...` (LC_ALL=C): each block starts with
/// `name:` at column 0 and holds `  Candidate: version` or `(none)`.
fn parse_policy(out: &str) -> Vec<(String, Option<String>)> {
    let mut res: Vec<(String, Option<String>)> = Vec::new();
    for line in out.lines() {
        if !line.starts_with(' ') && line.ends_with(':') {
            res.push((line.trim_end_matches(':').to_string(), None));
        } else if let Some(c) = line.trim().strip_prefix("Candidate:") {
            let c = c.trim();
            if let Some(last) = res.last_mut() {
                last.1 = (c != "(none)" && !c.is_empty()).then(|| c.to_string());
            }
        }
    }
    res
}

/// The names after `@@provides NAME` lines that some package provides
/// (`apt-cache showpkg`'s lines after `Reverse Provides:`).
fn parse_provided(out: &str) -> Vec<&str> {
    out.split("@@provides ")
        .filter_map(|block| {
            let (name, providers) = block.split_once('\n').unwrap_or((block, ""));
            let name = name.trim();
            (!name.is_empty() && providers.lines().any(|l| !l.trim().is_empty())).then_some(name)
        })
        .collect()
}

fn parse_observed(out: &str) -> Result<Observed, super::OutputError> {
    let mut o = Observed::default();
    let mut section = "";
    let mut dpkg = String::new();
    let mut policy = String::new();
    let mut end = false;
    for line in out.lines() {
        if let Some(n) = line.strip_prefix("@@now ") {
            o.now = n
                .trim()
                .parse()
                .map_err(|_| super::OutputError::Malformed(format!("bad date {n}")))?;
        } else if let Some(s) = line.strip_prefix("@@stamp") {
            o.stamp = s.trim().parse().ok();
        } else if let Some(n) = line.strip_prefix("@@upgrades ") {
            o.upgrades = n.trim().parse().unwrap_or(0);
        } else if let Some(n) = line.strip_prefix("@@autoremovable ") {
            o.autoremovable = n.trim().parse().unwrap_or(0);
        } else if let Some(n) = line.strip_prefix("@@autocleanable ") {
            o.autocleanable = n.trim().parse().unwrap_or(0);
        } else if line == "@@dpkg" || line == "@@policy" {
            section = if line == "@@dpkg" { "dpkg" } else { "policy" };
        } else if line == "@@end" {
            end = true;
            section = "";
        } else if section == "dpkg" {
            dpkg.push_str(line);
            dpkg.push('\n');
        } else if section == "policy" {
            policy.push_str(line);
            policy.push('\n');
        }
    }
    if !end || o.now == 0 {
        return Err(super::OutputError::Incomplete);
    }
    o.dpkg = parse_dpkg(&dpkg);
    o.candidates = parse_policy(&policy);
    Ok(o)
}

/// What `apply` does.
#[derive(Debug, PartialEq, Default)]
pub struct AptChange {
    /// Run `apt-get update` first.
    update: bool,
    /// Package specs to install (or upgrade).
    install: Vec<String>,
    /// Packages to remove.
    remove: Vec<String>,
    /// Packages are satisfied before the update; `latest` ones are
    /// installed after it and the result is changed only if apt did something.
    after_update: bool,
    /// Directory of downloaded .deb files, removed after the install.
    cleanup: Option<String>,
    /// The upgrade to run (`apt-get` subcommand).
    upgrade: Option<&'static str>,
    /// Run `apt-get autoremove`.
    autoremove: bool,
    /// Run `apt-get autoclean`.
    autoclean: bool,
    /// Run `apt-get clean`.
    clean: bool,
}

/// Lists' names, sizes and times: compared around `apt-get update`.
const LISTS_SIG: &str = "find /var/lib/apt/lists -maxdepth 1 -type f ! -name lock -printf '%f %s %T@\\n' 2>/dev/null | sort | cksum";

/// apt-get's summary when it did nothing.
const NOTHING_DONE: &str = "0 upgraded, 0 newly installed, 0 to remove";

impl Apt {
    /// Is there anything to do but install .deb files? (`clean` and
    /// `autoclean` alone count, as Ansible's documented `clean: true` task.)
    fn has_work(&self) -> bool {
        !self.names().is_empty()
            || self.update_cache
            || self.upgrade != Upgrade::No
            || self.autoremove
            || self.autoclean
            || self.clean
    }

    fn names(&self) -> Vec<Wanted> {
        self.name
            .iter()
            .flatten()
            .filter(|n| !n.trim().is_empty())
            .map(|n| parse_wanted(n.trim()))
            .collect()
    }

    fn read_script(&self) -> String {
        let wanted = self.names();
        let names: Vec<String> = wanted
            .iter()
            .map(|w| match &w.arch {
                Some(a) => shell_quote(&format!("{}:{a}", w.name)),
                None => shell_quote(&w.name),
            })
            .collect();
        let mut s = String::from(
            "export LC_ALL=C\n\
             echo \"@@now $(date +%s)\"\n\
             st=/var/lib/apt/periodic/update-success-stamp\n\
             if [ -e \"$st\" ]; then echo \"@@stamp $(stat -c %Y \"$st\")\"; \
             else echo \"@@stamp $(find /var/lib/apt/lists -maxdepth 1 ! -name lock ! -name partial -printf '%T@\\n' 2>/dev/null | sort -n | tail -n1 | cut -d. -f1)\"; fi\n\
             echo @@dpkg\n",
        );
        if !names.is_empty() {
            s.push_str(&format!(
                "dpkg-query -W -f='${{Package}}\\t${{Architecture}}\\t${{db:Status-Abbrev}}\\t${{Version}}\\n' -- {} 2>/dev/null\n",
                names.join(" ")
            ));
            if self.state == State::Latest {
                s.push_str(&format!(
                    "echo @@policy\napt-cache policy -- {} 2>/dev/null\n",
                    names.join(" ")
                ));
            }
        }
        // What an upgrade, autoremove or autoclean would do, simulated.
        let sim = |what: &str, cmd: &str, pattern: &str| {
            format!(
                "echo \"@@{what} $({} -s {cmd} 2>/dev/null | grep -c '{pattern}')\"\n",
                self.apt_get()
            )
        };
        if let Some(cmd) = self.upgrade.command() {
            s.push_str(&sim("upgrades", cmd, "^\\(Inst\\|Remv\\) "));
        }
        if self.autoremove && wanted.is_empty() {
            s.push_str(&sim("autoremovable", "autoremove", "^Remv "));
        }
        if self.autoclean {
            s.push_str(&sim("autocleanable", "autoclean", "^Del "));
        }
        s.push_str("echo @@end\n");
        s
    }

    fn status_of<'a>(&self, obs: &'a Observed, w: &Wanted) -> Vec<&'a PkgStatus> {
        obs.dpkg
            .iter()
            .filter(|(n, st)| *n == w.name && w.arch.as_ref().is_none_or(|a| *a == st.arch))
            .map(|(_, st)| st)
            .collect()
    }

    /// Is the cache older than allowed? The age is that of Debian's
    /// update-success stamp (which `apply` also touches after an update),
    /// else of the newest entry in the lists directory.
    fn update_needed(&self, obs: &Observed) -> bool {
        if !self.update_cache {
            return false;
        }
        match (self.cache_valid_time, obs.stamp) {
            (Some(valid), Some(stamp)) => obs.now.saturating_sub(stamp) > valid,
            _ => true,
        }
    }

    /// The packages to install and to remove.
    fn package_changes(&self, obs: &Observed) -> (Vec<String>, Vec<String>) {
        let mut install = Vec::new();
        let mut remove = Vec::new();
        for w in self.names() {
            let st = self.status_of(obs, &w);
            let installed: Vec<&PkgStatus> = st.iter().copied().filter(|s| s.installed()).collect();
            match self.state {
                State::Absent => {
                    if !installed.is_empty() || (self.purge && st.iter().any(|s| s.config_files()))
                    {
                        // `name=version` removes the package whatever its version.
                        remove.push(match &w.arch {
                            Some(a) => format!("{}:{a}", w.name),
                            None => w.name.clone(),
                        });
                    }
                }
                // Only what is installed is upgraded: a missing one stays so.
                State::Present | State::Latest if self.only_upgrade && installed.is_empty() => {}
                State::Present | State::Latest => {
                    let ok = match (&w.version, self.state) {
                        (Some(v), _) => installed.iter().any(|s| version_matches(&s.version, v)),
                        (None, State::Latest) => {
                            let key = match &w.arch {
                                Some(a) => format!("{}:{a}", w.name),
                                None => w.name.clone(),
                            };
                            let cand = obs
                                .candidates
                                .iter()
                                .find(|(n, _)| *n == key || *n == w.name)
                                .and_then(|(_, c)| c.clone());
                            match cand {
                                // No candidate: what is installed is the latest.
                                None => !installed.is_empty(),
                                Some(c) => installed.iter().any(|s| s.version == c),
                            }
                        }
                        (None, _) => !installed.is_empty(),
                    };
                    if !ok {
                        install.push(w.spec.clone());
                    }
                }
            }
        }
        (install, remove)
    }

    /// Decide from what was read; `check` is the engine's check mode.
    fn decide(&self, obs: &Observed, check: bool) -> Plan<AptChange> {
        let update = self.update_needed(obs);
        let (install, remove) = self.package_changes(obs);
        let upgrade = self.upgrade.command().filter(|_| obs.upgrades > 0);
        let autoremove = self.autoremove && self.names().is_empty() && obs.autoremovable > 0;
        let autoclean = self.autoclean && obs.autocleanable > 0;
        let other_work = upgrade.is_some() || autoremove || autoclean || self.clean;
        if install.is_empty() && remove.is_empty() && !other_work {
            // Whether the update changes anything (and what an upgrade
            // after it does) is known only after it.
            if update && !check {
                return Plan::Run(AptChange {
                    update,
                    after_update: true,
                    upgrade: self.upgrade.command(),
                    ..AptChange::default()
                });
            }
            return Plan::Unchanged(self.data(obs, false));
        }
        let mut install = install;
        if update && self.state == State::Latest {
            // Candidates may move with the update: ask for every name.
            install = self.names().into_iter().map(|w| w.spec).collect();
        }
        let mut lines = String::new();
        if let Some(cmd) = upgrade {
            let n = obs.upgrades;
            lines.push_str(&format!("{cmd}: {n} package(s)\n"));
        }
        for p in &install {
            lines.push_str(&format!("install {p}\n"));
        }
        for p in &remove {
            lines.push_str(&format!(
                "{} {p}\n",
                if self.purge { "purge" } else { "remove" }
            ));
        }
        if autoremove {
            let n = obs.autoremovable;
            lines.push_str(&format!("autoremove: {n} package(s)\n"));
        }
        if autoclean {
            let n = obs.autocleanable;
            lines.push_str(&format!("autoclean: {n} file(s)\n"));
        }
        if self.clean {
            lines.push_str("clean\n");
        }
        let mut data = self.data(obs, false);
        if check {
            data.insert(
                "msg".into(),
                Value::from(format!("would {}", lines.trim_end().replace('\n', ", "))),
            );
        }
        Plan::Change {
            change: AptChange {
                update,
                install,
                remove,
                upgrade,
                autoremove,
                autoclean,
                clean: self.clean,
                ..AptChange::default()
            },
            diff: Some(Diff {
                before_header: "packages".into(),
                after_header: "packages".into(),
                before: String::new(),
                after: lines,
            }),
            data,
        }
    }

    fn data(&self, obs: &Observed, updated: bool) -> Map {
        let mut m = Map::new();
        m.insert("cache_updated".into(), Value::Bool(updated));
        let time = if updated { Some(obs.now) } else { obs.stamp };
        if let Some(t) = time {
            m.insert("cache_update_time".into(), Value::from(t));
        }
        m
    }

    fn apt_get(&self) -> String {
        let mut s = format!(
            "DEBIAN_FRONTEND=noninteractive apt-get -y -q -o DPkg::Lock::Timeout={}",
            self.lock_timeout.unwrap_or(60)
        );
        let default_options = ["force-confdef".to_string(), "force-confold".to_string()];
        let options = self.dpkg_options.as_deref().unwrap_or(&default_options);
        for o in options.iter().flat_map(|o| o.split(',')).map(str::trim) {
            if !o.is_empty() {
                s.push_str(&format!(" -o Dpkg::Options::=--{}", shell_quote(o)));
            }
        }
        let flags = [
            (self.allow_downgrade, " --allow-downgrades"),
            (self.force, " --force-yes"),
            (self.allow_unauthenticated, " --allow-unauthenticated"),
            (
                self.allow_change_held_packages,
                " --allow-change-held-packages",
            ),
            (self.fail_on_autoremove, " --no-remove"),
        ];
        for (on, flag) in flags {
            if on {
                s.push_str(flag);
            }
        }
        if let Some(r) = self.default_release.as_ref().filter(|r| !r.is_empty()) {
            s.push_str(&format!(" -t {}", shell_quote(r)));
        }
        s
    }

    fn apply_script(&self, change: &AptChange) -> String {
        let mut s = String::from("export LC_ALL=C\n");
        if change.update {
            // Retried as Ansible retries it: up to `update_cache_retries`
            // attempts, waiting 1, 2, 4... seconds (at most the max delay).
            s.push_str(&format!(
                "b=$({LISTS_SIG})\n\
                 i=1; w=1\n\
                 until {} update; do [ $i -ge {} ] && exit 91; sleep $w; i=$((i+1)); w=$((w*2)); [ $w -gt {} ] && w={}; done\n\
                 touch /var/lib/apt/periodic/update-success-stamp 2>/dev/null\n\
                 a=$({LISTS_SIG})\n\
                 [ \"$a\" = \"$b\" ] || echo @@cache-changed\n\
                 echo \"@@now $(date +%s)\"\n",
                self.apt_get(),
                self.update_cache_retries.unwrap_or(5).max(1),
                self.update_cache_retry_max_delay.unwrap_or(12).max(1),
                self.update_cache_retry_max_delay.unwrap_or(12).max(1),
            ));
        }
        let auto_remove = if self.autoremove {
            " --auto-remove"
        } else {
            ""
        };
        if let Some(cmd) = change.upgrade {
            s.push_str(&format!(
                "{} {cmd}{auto_remove} || exit 94\n",
                self.apt_get()
            ));
        }
        let quote = |v: &[String]| {
            v.iter()
                .map(|p| shell_quote(p))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let mut install = change.install.clone();
        if change.after_update && self.state == State::Latest {
            install = self.names().into_iter().map(|w| w.spec).collect();
        }
        if !install.is_empty() {
            let rec = match self.install_recommends {
                Some(true) => " -o APT::Install-Recommends=yes",
                Some(false) => " --no-install-recommends",
                None => "",
            };
            let only = if self.only_upgrade {
                " --only-upgrade"
            } else {
                ""
            };
            s.push_str(&format!(
                "{}{rec}{only}{auto_remove} install -- {} || exit 92\n",
                self.apt_get(),
                quote(&install)
            ));
        }
        if !change.remove.is_empty() {
            s.push_str(&format!(
                "{} remove{}{auto_remove} -- {} || exit 93\n",
                self.apt_get(),
                if self.purge { " --purge" } else { "" },
                quote(&change.remove)
            ));
        }
        for (on, what, code) in [
            (change.autoremove, "autoremove", 95),
            (change.autoclean, "autoclean", 96),
            (change.clean, "clean", 97),
        ] {
            if on {
                s.push_str(&format!("{} {what} || exit {code}\n", self.apt_get()));
            }
        }
        s
    }
}

impl Apt {
    /// The plan, from what the module's read printed.
    fn plan_from(
        &self,
        out: &crate::transport::ExecOutput,
        ctx: &ReadCtx<'_>,
    ) -> Result<Plan<AptChange>, ModuleError> {
        let obs = parse_observed(&out.stdout_str()).map_err(|e| {
            ModuleError::failed(format!(
                "reading package state failed: {e}: {}",
                out.stderr_str().trim()
            ))
        })?;
        Ok(self.decide(&obs, ctx.check))
    }
}

#[async_trait]
impl Module for Apt {
    const NAME: &'static str = "apt";
    const ARGS: &'static [&'static str] = &[
        "name",
        "pkg",
        "package",
        "state",
        "update_cache",
        "update-cache",
        "cache_valid_time",
        "purge",
        "install_recommends",
        "install-recommends",
        "lock_timeout",
        "allow_downgrade",
        "allow-downgrade",
        "allow_downgrades",
        "allow-downgrades",
        "deb",
        "force",
        "allow_unauthenticated",
        "allow-unauthenticated",
        "allow_change_held_packages",
        "fail_on_autoremove",
        "default_release",
        "default-release",
        "dpkg_options",
        "only_upgrade",
        "only-upgrade",
        "autoremove",
        "autoclean",
        "clean",
        "upgrade",
        "force_apt_get",
        "update_cache_retries",
        "update_cache_retry_max_delay",
    ];
    // Ansible writes a policy-rc.d that holds service starts during the run.
    const PENDING: &'static [&'static str] = &["policy_rc_d"];
    type Change = AptChange;

    fn validate(&self) -> Result<(), super::ArgError> {
        if !self.has_work() && self.deb.is_none() {
            return Err(
                "one of the following is required: autoremove, deb, package, update_cache, upgrade"
                    .into(),
            );
        }
        let exclusive = [
            self.deb.is_some(),
            !self.names().is_empty(),
            self.upgrade != Upgrade::No,
        ];
        if exclusive.iter().filter(|b| **b).count() > 1 {
            return Err("parameters are mutually exclusive: deb|package|upgrade".into());
        }
        if self.deb.is_some() && self.state != State::Present {
            return Err("deb only supports state=present".into());
        }
        Ok(())
    }

    fn reads(&self, _ctx: &ReadCtx<'_>) -> Result<Protocol, ModuleError> {
        if let Some(debs) = &self.deb {
            for d in debs {
                safe::one_line("deb", d)?;
            }
            // A download is no pure read: it runs (in check mode too, as
            // in Ansible) before anything can be decided.
            return Ok(Protocol::Imperative);
        }
        for n in self.name.iter().flatten().filter(|n| !n.trim().is_empty()) {
            safe::name("name", n.trim())?;
        }
        if !self.has_work() {
            return Err(ModuleError::Args(
                "one of the following is required: autoremove, deb, package, update_cache, upgrade"
                    .into(),
            ));
        }
        Ok(Protocol::Declared(ReadSet::one(
            self.read_script(),
            Scope::Host,
        )))
    }

    fn decide(
        &self,
        observed: &super::Observed,
        ctx: &ReadCtx<'_>,
    ) -> Result<Decision<AptChange>, ModuleError> {
        let out = observed.output(0)?;
        let plan = self.plan_from(out, ctx)?;
        // In check mode nothing is installed, so a name apt does not know
        // would pass as a change: ask apt about the names first, and fail
        // as Ansible does. (A virtual package apt knows passes, as a
        // provider may install it.)
        let Plan::Change { change, .. } = &plan else {
            return Ok(Decision::Plan(plan));
        };
        // A cache update is not made in check mode, so the names are asked
        // of the cache as it is, as Ansible's check run does.
        if !ctx.check || change.install.is_empty() || self.state == State::Latest {
            return Ok(Decision::Plan(plan));
        }
        let names: Vec<&str> = change
            .install
            .iter()
            .map(|spec| spec.split('=').next().unwrap_or(spec))
            .collect();
        let Some(policy) = observed.get(1) else {
            let quoted: Vec<String> = names.iter().map(|n| shell_quote(n)).collect();
            let quoted = quoted.join(" ");
            // A name with no version apt could install is still installable
            // when a package provides it (a virtual package).
            return Ok(Decision::Read(ReadSet::one(
                format!(
                    "export LC_ALL=C\napt-cache policy -- {quoted} 2>/dev/null\n\
                     for n in {quoted}; do printf '@@provides %s\\n' \"$n\"; \
                     apt-cache showpkg \"$n\" 2>/dev/null | sed '1,/^Reverse Provides:/d'; done\n"
                ),
                Scope::Host,
            )));
        };
        let policy = policy.stdout_str();
        let (policy, provides) = policy.split_once("@@provides ").unwrap_or((&policy, ""));
        let candidates = parse_policy(policy);
        let provided = parse_provided(provides);
        for name in names {
            let installable = candidates.iter().any(|(n, candidate)| {
                (n == name || n.split(':').next() == Some(name)) && candidate.is_some()
            });
            if !installable && !provided.contains(&name) {
                return Err(ModuleError::failed(format!(
                    "No package matching '{name}' is available"
                )));
            }
        }
        Ok(Decision::Plan(plan))
    }

    async fn run_imperative(&self, ctx: &ModuleCtx<'_>) -> Result<Plan<AptChange>, ModuleError> {
        let debs: Vec<String> = self.deb.iter().flatten().cloned().collect();
        if debs.is_empty() {
            return Err(ModuleError::Args("deb cannot be empty".into()));
        }
        let out = ctx.remote.exec(&apt_deb::read_script(&debs), b"").await?;
        let (read, tmp) = super::reads::parse_read(&out, "the .deb files", apt_deb::parse)?;
        let clean = |tmp: &Option<String>| {
            let tmp = tmp.clone();
            async move {
                if let Some(t) = tmp {
                    ctx.remote.exec(&apt_deb::cleanup_script(&t), b"").await?;
                }
                Ok::<_, ModuleError>(())
            }
        };
        let files = match read {
            apt_deb::DebRead::Files(f) => f,
            apt_deb::DebRead::DownloadFailed(url, why) => {
                return Err(ModuleError::failed(format!(
                    "Failure downloading {url}, {why}"
                )))
            }
            apt_deb::DebRead::NoDownloader(url) => {
                return Err(ModuleError::failed(format!(
                    "Failure downloading {url}, neither curl nor wget is installed on the target"
                )))
            }
            apt_deb::DebRead::Missing(f) => {
                return Err(ModuleError::failed(format!(
                    "Unable to install package: {f} is not a file on the target"
                )))
            }
            apt_deb::DebRead::NotADeb(f, why) => {
                return Err(ModuleError::failed(format!(
                    "Unable to install package: {f}: {why}"
                )))
            }
        };
        let todo: Vec<&apt_deb::DebFile> = files.iter().filter(|f| !f.same).collect();
        let data = Map::new();
        if todo.is_empty() {
            clean(&tmp).await?;
            return Ok(Plan::Unchanged(data));
        }
        let lines: String = todo
            .iter()
            .map(|f| match &f.installed {
                Some(v) => format!("install {} {} (replacing {v})\n", f.package, f.version),
                None => format!("install {} {}\n", f.package, f.version),
            })
            .collect();
        let install = todo
            .iter()
            .map(|f| {
                // apt-get takes a path (not a package name) only with a slash.
                if f.path.contains('/') {
                    f.path.clone()
                } else {
                    format!("./{}", f.path)
                }
            })
            .collect();
        let cleanup = if ctx.check {
            clean(&tmp).await?;
            None
        } else {
            tmp
        };
        Ok(Plan::Change {
            change: AptChange {
                update: self.update_cache,
                install,
                cleanup,
                ..AptChange::default()
            },
            diff: Some(Diff {
                before_header: "packages".into(),
                after_header: "packages".into(),
                before: String::new(),
                after: lines,
            }),
            data,
        })
    }

    async fn apply(&self, ctx: &ModuleCtx<'_>, change: AptChange) -> Result<Map, ModuleError> {
        let script = match &change.cleanup {
            Some(t) => format!(
                "( {} ); rc=$?\n{}exit $rc\n",
                self.apply_script(&change),
                apt_deb::cleanup_script(t)
            ),
            None => self.apply_script(&change),
        };
        let out = ctx.remote.exec(&script, b"").await?;
        let raw = out.stdout_str();
        let mut stdout = String::new();
        let mut cache_changed = false;
        let mut now = None;
        for line in raw.lines() {
            if line == "@@cache-changed" {
                cache_changed = true;
            } else if let Some(n) = line.strip_prefix("@@now ") {
                now = n.trim().parse::<u64>().ok();
            } else {
                stdout.push_str(line);
                stdout.push('\n');
            }
        }
        let mut data = Map::new();
        data.insert("cache_updated".into(), Value::Bool(change.update));
        if let Some(t) = now {
            data.insert("cache_update_time".into(), Value::from(t));
        }
        data.insert("stdout".into(), Value::from(stdout.clone()));
        data.insert("stderr".into(), Value::from(out.stderr_str()));
        if out.status != 0 {
            let what = match out.status {
                91 => "apt-get update",
                92 => "apt-get install",
                93 => "apt-get remove",
                94 => "apt-get upgrade",
                95 => "apt-get autoremove",
                96 => "apt-get autoclean",
                97 => "apt-get clean",
                _ => "apt",
            };
            data.insert("rc".into(), Value::from(out.status));
            return Err(ModuleError::Failed {
                msg: format!("{what} failed: {}", out.stderr_str().trim()),
                data,
            });
        }
        if change.after_update {
            let changed = if change.upgrade.is_some() {
                !stdout.contains(NOTHING_DONE)
            } else if self.names().is_empty() {
                cache_changed
            } else {
                // Only a `latest` install can have run; did apt do anything?
                self.state == State::Latest
                    && stdout.contains("newly installed")
                    && !stdout.contains(NOTHING_DONE)
            };
            data.insert("changed".into(), Value::Bool(changed));
        }
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::modules::testutil::assert_args_complete;

    fn module(v: Value) -> Apt {
        serde_json::from_value(v).expect("args")
    }

    fn obs(dpkg: &str, policy: &str) -> Observed {
        Observed {
            now: 1000,
            stamp: Some(900),
            dpkg: parse_dpkg(dpkg),
            candidates: parse_policy(policy),
            ..Observed::default()
        }
    }

    fn change(p: Plan<AptChange>) -> Option<AptChange> {
        match p {
            Plan::Unchanged(_) => None,
            Plan::Change { change, .. } | Plan::Run(change) => Some(change),
        }
    }

    #[test]
    fn a_deb_file_loads_and_fails_where_it_runs_and_downgrades_are_allowed_on_request() {
        let m = module(json!({"deb": "https://example.invalid/x_1.0_arm64.deb"}));
        assert!(m.validate().is_ok(), "loads, as a role's task must");
        let h = crate::modules::testutil::Harness::new();
        let ctx = h.ctx(false, false);
        assert_eq!(m.reads(&ctx.reading()).ok(), Some(Protocol::Imperative));
        let both = module(json!({"deb": "/tmp/x.deb", "name": "x"}));
        assert!(both.validate().is_err());
        let absent = module(json!({"deb": "/tmp/x.deb", "state": "absent"}));
        assert!(absent.validate().is_err());
        let m = module(json!({"name": "sops=3.7.0", "allow_downgrade": true}));
        assert!(
            m.apt_get().ends_with(" --allow-downgrades"),
            "{}",
            m.apt_get()
        );
        assert!(!module(json!({"name": "sops"}))
            .apt_get()
            .contains("downgrade"));
    }

    const DPKG: &str = "nfs-common\tarm64\tii \t1:2.6.2-4\n\
                        nfs-kernel-server\tarm64\trc \t1:2.6.2-4\n\
                        curl\tarm64\tun \t\n";

    const POLICY: &str = "nfs-common:\n  Installed: 1:2.6.2-4\n  Candidate: 1:2.6.2-5\n  Version table:\n *** 1:2.6.2-4 500\n        500 file:/x ./ Packages\ncurl:\n  Installed: (none)\n  Candidate: (none)\n";

    #[test]
    fn args() {
        assert_args_complete::<Apt>();
        let m = module(json!({"pkg": "a, b=1.0", "state": "installed", "update-cache": "yes"}));
        assert_eq!(m.state, State::Present);
        assert!(m.update_cache);
        assert_eq!(m.names()[1].version.as_deref(), Some("1.0"));
        assert_eq!(
            module(json!({"name": "a", "state": "removed"})).state,
            State::Absent
        );
    }

    #[test]
    fn parses_dpkg_and_policy() {
        let d = parse_dpkg(DPKG);
        assert_eq!(d.len(), 3);
        assert!(d[0].1.installed());
        assert!(!d[1].1.installed() && d[1].1.config_files());
        assert!(!d[2].1.installed());
        let p = parse_policy(POLICY);
        assert_eq!(
            p,
            vec![
                ("nfs-common".into(), Some("1:2.6.2-5".into())),
                ("curl".into(), None)
            ]
        );
        assert_eq!(
            parse_wanted("libc6:arm64=2.36*"),
            Wanted {
                spec: "libc6:arm64=2.36*".into(),
                name: "libc6".into(),
                arch: Some("arm64".into()),
                version: Some("2.36*".into())
            }
        );
        assert!(version_matches("2.36-9", "2.36*"));
        assert!(!version_matches("2.36-9", "2.36"));
        let o = parse_observed("@@now 1000\n@@stamp 900\n@@dpkg\nnfs-common\tarm64\tii \t1\n@@policy\nnfs-common:\n  Candidate: 2\n@@end\n").expect("ok");
        assert_eq!(o.stamp, Some(900));
        assert_eq!(o.dpkg.len(), 1);
        assert_eq!(o.candidates[0].1.as_deref(), Some("2"));
        let o = parse_observed("@@now 5\n@@stamp \n@@dpkg\n@@end\n").expect("ok");
        assert_eq!(o.stamp, None);
        assert!(parse_observed("@@now 5\n").is_err());
    }

    #[test]
    fn check_mode_fails_a_package_apt_does_not_know_as_ansible_does() {
        use crate::modules::reads::observed_stdout;
        use crate::modules::{Decision, Module};
        let render = crate::modules::testutil::TestRender::new(serde_json::json!({}));
        let ctx = |check| ReadCtx {
            host: "h",
            check,
            diff: false,
            render: &render,
            search: &[],
        };
        let apt: Apt =
            serde_json::from_value(serde_json::json!({"name": ["gnupg2", "nope"]})).expect("args");
        let state = "@@now 1000\n@@stamp 900\n@@dpkg\n@@end\n";
        let Ok(Decision::Read(_)) = Module::decide(&apt, &observed_stdout(&[state]), &ctx(true))
        else {
            panic!("check mode asks apt about the names");
        };
        let known = "gnupg2:\n  Installed: (none)\n  Candidate: 2.2\n";
        let Err(e) = Module::decide(&apt, &observed_stdout(&[state, known]), &ctx(true)) else {
            panic!("an unknown name fails");
        };
        assert!(
            e.to_string()
                .contains("No package matching 'nope' is available"),
            "{e}"
        );
        // A name apt has heard of but has no version of (gnupg2 where no
        // repository carries it) fails as Ansible's does...
        let both = format!("{known}nope:\n  Installed: (none)\n  Candidate: (none)\n");
        let Err(e) = Module::decide(&apt, &observed_stdout(&[state, &both]), &ctx(true)) else {
            panic!("a name with no candidate fails");
        };
        assert!(e.to_string().contains("'nope'"), "{e}");
        // ...unless a package provides it (a virtual package).
        let provided = format!("{both}@@provides gnupg2\n@@provides nope\nmawk 1.3 (= )\n");
        assert!(matches!(
            Module::decide(&apt, &observed_stdout(&[state, &provided]), &ctx(true)),
            Ok(Decision::Plan(Plan::Change { .. }))
        ));
        // A cache update is not made in check mode: the names are asked too.
        let updating: Apt =
            serde_json::from_value(serde_json::json!({"name": ["nope"], "update_cache": true}))
                .expect("args");
        assert!(matches!(
            Module::decide(&updating, &observed_stdout(&[state]), &ctx(true)),
            Ok(Decision::Read(_))
        ));
        assert!(
            matches!(
                Module::decide(&apt, &observed_stdout(&[state]), &ctx(false)),
                Ok(Decision::Plan(Plan::Change { .. }))
            ),
            "a real run lets apt-get say it"
        );
    }

    #[test]
    fn upgrade_autoremove_and_cleaning_follow_what_apt_simulates() {
        let m = module(json!({"upgrade": "dist", "autoremove": true, "clean": true}));
        let read = m.read_script();
        assert!(
            read.contains("-s dist-upgrade 2>/dev/null | grep -c"),
            "{read}"
        );
        assert!(
            read.contains("-s autoremove 2>/dev/null | grep -c '^Remv '"),
            "{read}"
        );
        let o = parse_observed("@@now 1000\n@@stamp 900\n@@upgrades 3\n@@autoremovable 0\n@@end\n")
            .expect("ok");
        let Some(c) = change(m.decide(&o, false)) else {
            panic!("3 upgrades pending");
        };
        assert_eq!(c.upgrade, Some("dist-upgrade"));
        assert!(!c.autoremove && c.clean);
        let s = m.apply_script(&c);
        assert!(s.contains(" dist-upgrade --auto-remove || exit 94"), "{s}");
        assert!(s.contains(" clean || exit 97"), "{s}");
        // Nothing pending and no clean: converged.
        let m = module(json!({"upgrade": true, "autoremove": true}));
        let o = parse_observed("@@now 1000\n@@stamp 900\n@@upgrades 0\n@@autoremovable 0\n@@end\n")
            .expect("ok");
        assert!(matches!(m.decide(&o, false), Plan::Unchanged(_)));
        assert_eq!(m.upgrade, Upgrade::Safe);
        assert!(serde_json::from_value::<Apt>(json!({"upgrade": "sideways"})).is_err());
        let o = parse_observed("@@now 1000\n@@stamp 900\n@@upgrades 0\n@@autoremovable 2\n@@end\n")
            .expect("ok");
        let Some(c) = change(m.decide(&o, true)) else {
            panic!("2 packages to autoremove");
        };
        assert!(c.autoremove && c.upgrade.is_none());
    }

    #[test]
    fn options_become_apt_get_flags() {
        let m = module(
            json!({"name": "gnupg", "force": true, "default_release": "bookworm-backports",
            "allow_unauthenticated": true, "only_upgrade": true, "dpkg_options": "force-confnew",
            "fail_on_autoremove": true, "allow_change_held_packages": true, "force_apt_get": true}),
        );
        let s = m.apply_script(&AptChange {
            install: vec!["gnupg".into()],
            ..AptChange::default()
        });
        for flag in [
            "-o Dpkg::Options::=--force-confnew --force-yes --allow-unauthenticated --allow-change-held-packages --no-remove -t bookworm-backports",
            " --only-upgrade install -- gnupg",
        ] {
            assert!(s.contains(flag), "{flag}: {s}");
        }
        assert!(!s.contains("confold"), "{s}");
        // A package that is not installed stays so with only_upgrade.
        let o = obs("", "");
        assert!(matches!(m.decide(&o, false), Plan::Unchanged(_)));
    }

    #[test]
    fn decides_packages_like_ansible() {
        let o = obs(DPKG, POLICY);
        let m = module(json!({"name": ["nfs-common"]}));
        assert!(change(m.decide(&o, false)).is_none());
        let m = module(json!({"name": ["nfs-common", "nfs-kernel-server", "curl"]}));
        let c = change(m.decide(&o, true)).expect("change");
        assert_eq!(c.install, vec!["nfs-kernel-server", "curl"]);
        assert!(c.remove.is_empty());
        let m = module(json!({"name": "nfs-common=1:2.6.2-4"}));
        assert!(change(m.decide(&o, false)).is_none());
        let m = module(json!({"name": "nfs-common=1:2.6.2-5"}));
        assert_eq!(
            change(m.decide(&o, false)).expect("c").install,
            vec!["nfs-common=1:2.6.2-5"]
        );
        let m = module(json!({"name": "nfs-common", "state": "latest"}));
        assert_eq!(
            change(m.decide(&o, false)).expect("c").install,
            vec!["nfs-common"]
        );
        let m = module(json!({"name": "nfs-common", "state": "absent"}));
        assert_eq!(
            change(m.decide(&o, false)).expect("c").remove,
            vec!["nfs-common"]
        );
        let m = module(json!({"name": ["curl", "nfs-kernel-server"], "state": "absent"}));
        assert!(
            change(m.decide(&o, false)).is_none(),
            "rc without purge is absent"
        );
        let m = module(
            json!({"name": ["curl", "nfs-kernel-server"], "state": "absent", "purge": true}),
        );
        assert_eq!(
            change(m.decide(&o, false)).expect("c").remove,
            vec!["nfs-kernel-server"]
        );
    }

    #[test]
    fn decides_cache_updates() {
        let o = obs(DPKG, POLICY);
        let m = module(json!({"update_cache": true, "cache_valid_time": 3600}));
        assert!(change(m.decide(&o, false)).is_none(), "cache is fresh");
        let m = module(json!({"update_cache": true, "cache_valid_time": 50}));
        assert!(matches!(
            m.decide(&o, false),
            Plan::Run(AptChange {
                update: true,
                after_update: true,
                ..
            })
        ));
        assert!(
            matches!(m.decide(&o, true), Plan::Unchanged(_)),
            "no update in check mode"
        );
        let m = module(json!({"update_cache": true, "name": "nfs-common"}));
        assert!(matches!(m.decide(&o, false), Plan::Run(_)));
        let m = module(json!({"update_cache": true, "name": ["nfs-common", "curl"]}));
        match m.decide(&o, true) {
            Plan::Change { change, data, .. } => {
                assert!(change.update);
                assert_eq!(change.install, vec!["curl"]);
                assert_eq!(data["msg"], json!("would install curl"));
            }
            _ => panic!("change expected"),
        }
        let mut o2 = obs(DPKG, POLICY);
        o2.stamp = None;
        assert!(module(json!({"update_cache": true, "cache_valid_time": 50})).update_needed(&o2));
    }

    #[test]
    fn scripts() {
        let m = module(json!({"name": ["a", "b:arm64=1"], "state": "latest"}));
        let r = m.read_script();
        assert!(r.contains("dpkg-query -W -f='${Package}\\t${Architecture}\\t${db:Status-Abbrev}\\t${Version}\\n' -- a b:arm64 2>/dev/null"), "{r}");
        assert!(r.contains("apt-cache policy -- a b:arm64"));
        let s = m.apply_script(&AptChange {
            update: false,
            install: vec!["b:arm64=1".into()],
            remove: vec![],
            after_update: false,
            cleanup: None,
            ..AptChange::default()
        });
        assert!(s.contains("DEBIAN_FRONTEND=noninteractive apt-get -y -q -o DPkg::Lock::Timeout=60 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold install -- b:arm64=1 || exit 92"), "{s}");
        let m = module(
            json!({"name": "a", "state": "absent", "purge": true, "install_recommends": false}),
        );
        let s = m.apply_script(&AptChange {
            update: true,
            install: vec![],
            remove: vec!["a".into()],
            after_update: false,
            cleanup: None,
            ..AptChange::default()
        });
        assert!(
            s.contains("until DEBIAN_FRONTEND=noninteractive apt-get"),
            "{s}"
        );
        assert!(s.contains(" update; do [ $i -ge 5 ] && exit 91; "), "{s}");
        assert!(s.contains("remove --purge -- a || exit 93"));
    }

    #[tokio::test]
    async fn read_script_runs_here_when_dpkg_exists() {
        if !std::path::Path::new("/usr/bin/dpkg-query").exists() {
            return;
        }
        let h = crate::modules::testutil::Harness::new();
        // Check mode: reads only.
        let out = h
            .run::<Apt>(
                json!({"name": ["dpkg", "no-such-package-x"], "state": "latest"}),
                true,
                false,
            )
            .await
            .expect("plan");
        assert!(out.changed, "the unknown package would be installed");
        assert_eq!(h.take_execs(), 1, "one read");
    }
}
