//! `timezone` (community.general.timezone): the system time zone and
//! whether the hardware clock keeps UTC, the Debian way. With systemd
//! running, `timedatectl`; otherwise (a container, the lab) the files:
//! `/etc/timezone`, the `/etc/localtime` link (then `dpkg-reconfigure
//! tzdata`, as Ansible does), `/etc/adjtime` and `hwclock --systohc`. One
//! declared read.

use async_trait::async_trait;
use serde::Deserialize;

use super::args::opt_string_ish;
use super::safe;
use super::{
    Decision, Diff, Module, ModuleCtx, ModuleError, Observed, Plan, Protocol, ReadCtx, ReadSet,
    Scope,
};
use crate::transport::shell_quote;
use crate::{Map, Value};

/// Arguments of `timezone`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timezone {
    /// The zone (`Europe/Paris`, `Etc/UTC`), a file under /usr/share/zoneinfo.
    #[serde(default, deserialize_with = "opt_string_ish")]
    name: Option<String>,
    /// `UTC` or `local`: what the hardware clock keeps.
    #[serde(default, deserialize_with = "opt_string_ish")]
    hwclock: Option<String>,
}

/// What the read found.
#[derive(Debug, Default, PartialEq, Eq)]
struct Found {
    /// Is systemd running (timedatectl answers)?
    systemd: bool,
    /// The zone now (`n/a` when the files disagree).
    zone: Option<String>,
    /// `UTC` or `local`.
    hwclock: Option<String>,
    /// Is the wanted zone a file of /usr/share/zoneinfo?
    valid: bool,
}

/// What `apply` does.
#[derive(Debug, PartialEq, Eq)]
pub struct TzChange {
    /// Set the zone.
    zone: Option<String>,
    /// Set the hardware clock's mode.
    hwclock: Option<String>,
    /// With timedatectl (else the files).
    systemd: bool,
}

impl Timezone {
    fn hw(&self) -> Result<Option<&'static str>, ModuleError> {
        match self
            .hwclock
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None => Ok(None),
            Some("utc") => Ok(Some("UTC")),
            Some("local") => Ok(Some("local")),
            Some(other) => Err(ModuleError::Args(format!(
                "value of hwclock must be one of: local, UTC, got: {other}"
            ))),
        }
    }

    fn read_script(&self) -> String {
        let name = self.name.clone().unwrap_or_default();
        format!(
            "export LC_ALL=C; n={}\n\
             if [ -n \"$n\" ] && [ -f \"/usr/share/zoneinfo/$n\" ]; then echo @@valid; fi\n\
             if command -v timedatectl >/dev/null 2>&1 && s=$(timedatectl status 2>/dev/null); then\n\
             echo @@systemd; printf '%s\\n' \"$s\" | sed -n 's/^ *Time zone: \\([^ ]*\\).*/@@zone \\1/p; s/^ *RTC in local TZ: \\(.*\\)/@@rtclocal \\1/p'\n\
             else\n\
             t=$(head -n1 /etc/timezone 2>/dev/null)\n\
             if [ -L /etc/localtime ]; then l=$(readlink /etc/localtime); l=${{l#*/zoneinfo/}}\n\
             elif [ -n \"$n\" ] && [ -f /etc/localtime ] && cmp -s /etc/localtime \"/usr/share/zoneinfo/$n\"; then l=$n\n\
             else l=n/a; fi\n\
             printf '@@etc %s\\n@@link %s\\n' \"$t\" \"$l\"\n\
             printf '@@adjtime %s\\n' \"$(sed -n 3p /etc/adjtime 2>/dev/null)\"\n\
             fi\necho @@end\n",
            shell_quote(&name)
        )
    }
}

fn parse(out: &str) -> Result<Found, super::OutputError> {
    if !out.lines().any(|l| l == "@@end") {
        return Err(super::OutputError::Incomplete);
    }
    let mut f = Found::default();
    let (mut etc, mut link) = (None, None);
    for line in out.lines() {
        let (k, v) = line.split_once(' ').unwrap_or((line, ""));
        let v = v.trim();
        match k {
            "@@valid" => f.valid = true,
            "@@systemd" => f.systemd = true,
            "@@zone" => f.zone = Some(v.to_string()),
            "@@rtclocal" => f.hwclock = Some(if v == "yes" { "local" } else { "UTC" }.to_string()),
            "@@etc" => etc = Some(v.to_string()),
            "@@link" => link = Some(v.to_string()),
            "@@adjtime" => f.hwclock = Some(if v == "LOCAL" { "local" } else { "UTC" }.to_string()),
            _ => {}
        }
    }
    if !f.systemd {
        // /etc/timezone says the zone, provided /etc/localtime agrees.
        f.zone = match (etc.filter(|e| !e.is_empty()), link) {
            (Some(e), Some(l)) if e == l => Some(e),
            (None, Some(l)) => Some(l),
            _ => Some("n/a".into()),
        };
    }
    Ok(f)
}

impl Timezone {
    fn plan(&self, f: &Found) -> Result<Plan<TzChange>, ModuleError> {
        if let Some(n) = &self.name {
            if !f.valid {
                return Err(ModuleError::failed(format!(
                    "given timezone \"{n}\" is not available"
                )));
            }
        }
        let want_hw = self.hw()?;
        let zone = self
            .name
            .clone()
            .filter(|n| f.zone.as_deref() != Some(n.as_str()));
        let hwclock = want_hw
            .filter(|h| f.hwclock.as_deref() != Some(*h))
            .map(str::to_string);
        let show = |zone: Option<&str>, hw: Option<&str>| {
            let mut s = String::new();
            if self.name.is_some() {
                s.push_str(&format!("name: {}\n", zone.unwrap_or("n/a")));
            }
            if want_hw.is_some() {
                s.push_str(&format!("hwclock: {}\n", hw.unwrap_or("n/a")));
            }
            s
        };
        let mut data = Map::new();
        if let Some(n) = &self.name {
            data.insert("name".into(), Value::from(n.clone()));
        }
        if let Some(h) = want_hw {
            data.insert("hwclock".into(), Value::from(h));
        }
        if zone.is_none() && hwclock.is_none() {
            return Ok(Plan::Unchanged(data));
        }
        Ok(Plan::Change {
            diff: Some(Diff {
                before_header: "timezone".into(),
                after_header: "timezone".into(),
                before: show(f.zone.as_deref(), f.hwclock.as_deref()),
                after: show(self.name.as_deref(), want_hw),
            }),
            change: TzChange {
                zone,
                hwclock,
                systemd: f.systemd,
            },
            data,
        })
    }
}

fn apply_script(c: &TzChange) -> String {
    let mut s = String::from("set -e\n");
    if let Some(z) = &c.zone {
        let q = shell_quote(z);
        if c.systemd {
            s.push_str(&format!("timedatectl set-timezone {q}\n"));
        } else {
            s.push_str(&format!(
                "printf '%s\\n' {q} > /etc/timezone\n\
                 ln -sf /usr/share/zoneinfo/{q} /etc/localtime\n\
                 if command -v dpkg-reconfigure >/dev/null 2>&1; then dpkg-reconfigure --frontend noninteractive tzdata >/dev/null; fi\n"
            ));
        }
    }
    if let Some(h) = &c.hwclock {
        if c.systemd {
            let v = if h == "local" { "yes" } else { "no" };
            s.push_str(&format!("timedatectl set-local-rtc {v}\n"));
        } else {
            let v = if h == "local" { "--localtime" } else { "--utc" };
            s.push_str(&format!("hwclock --systohc {v}\n"));
        }
    }
    s
}

#[async_trait]
impl Module for Timezone {
    const NAME: &'static str = "timezone";
    const ARGS: &'static [&'static str] = &["name", "hwclock"];
    type Change = TzChange;

    fn validate(&self) -> Result<(), super::ArgError> {
        if self.name.is_none() && self.hwclock.is_none() {
            return Err("one of the following is required: name, hwclock".into());
        }
        Ok(())
    }

    fn reads(&self, _ctx: &ReadCtx<'_>) -> Result<Protocol, ModuleError> {
        self.hw()?;
        if let Some(n) = &self.name {
            safe::one_line("name", n)?;
            if n.contains("..") || n.starts_with('/') {
                return Err(ModuleError::failed(format!(
                    "given timezone \"{n}\" is not available"
                )));
            }
        }
        Ok(Protocol::Declared(ReadSet::one(
            self.read_script(),
            Scope::Host,
        )))
    }

    fn decide(
        &self,
        observed: &Observed,
        _ctx: &ReadCtx<'_>,
    ) -> Result<Decision<TzChange>, ModuleError> {
        let out = observed.output(0)?;
        let found = super::reads::parse_read(out, "the time zone", parse)?;
        self.plan(&found).map(Decision::Plan)
    }

    async fn apply(&self, ctx: &ModuleCtx<'_>, change: TzChange) -> Result<Map, ModuleError> {
        let out = ctx.remote.exec(&apply_script(&change), b"").await?;
        if out.status != 0 {
            return Err(ModuleError::failed(format!(
                "setting the time zone failed: {}",
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

    fn tz(v: Value) -> Timezone {
        serde_json::from_value(v).expect("args")
    }

    #[test]
    fn args() {
        assert_args_complete::<Timezone>();
    }

    #[test]
    fn reads_the_files_and_agrees_only_when_both_say_the_zone() {
        let f =
            parse("@@valid\n@@etc Etc/UTC\n@@link Etc/UTC\n@@adjtime \n@@end\n").expect("parse");
        assert_eq!(f.zone.as_deref(), Some("Etc/UTC"));
        assert_eq!(f.hwclock.as_deref(), Some("UTC"));
        let f = parse("@@valid\n@@etc Europe/Paris\n@@link Etc/UTC\n@@adjtime LOCAL\n@@end\n")
            .expect("parse");
        assert_eq!(
            f.zone.as_deref(),
            Some("n/a"),
            "files that disagree are no zone"
        );
        assert_eq!(f.hwclock.as_deref(), Some("local"));
        let f = parse("@@systemd\n@@zone Europe/Paris\n@@rtclocal no\n@@end\n").expect("parse");
        assert!(f.systemd && !f.valid);
        assert!(parse("@@valid\n").is_err());
    }

    #[test]
    fn plans_only_what_differs() {
        let f =
            parse("@@valid\n@@etc Etc/UTC\n@@link Etc/UTC\n@@adjtime UTC\n@@end\n").expect("parse");
        assert!(matches!(
            tz(json!({"name": "Etc/UTC"})).plan(&f),
            Ok(Plan::Unchanged(_))
        ));
        match tz(json!({"name": "Europe/Paris", "hwclock": "UTC"})).plan(&f) {
            Ok(Plan::Change { change, diff, .. }) => {
                assert_eq!(change.zone.as_deref(), Some("Europe/Paris"));
                assert_eq!(change.hwclock, None);
                let d = diff.expect("diff");
                assert_eq!(d.before, "name: Etc/UTC\nhwclock: UTC\n");
                assert_eq!(d.after, "name: Europe/Paris\nhwclock: UTC\n");
            }
            _ => panic!("a change"),
        }
        let bad = Found {
            valid: false,
            ..Found::default()
        };
        let e = tz(json!({"name": "Mars/Olympus"}))
            .plan(&bad)
            .err()
            .expect("refused");
        assert!(e.to_string().contains("is not available"), "{e}");
        assert!(tz(json!({"hwclock": "rtc"})).hw().is_err());
        assert!(tz(json!({})).validate().is_err());
    }

    #[test]
    fn applies_the_debian_way_without_systemd() {
        let s = apply_script(&TzChange {
            zone: Some("Europe/Paris".into()),
            hwclock: None,
            systemd: false,
        });
        assert!(s.contains("> /etc/timezone"), "{s}");
        assert!(
            s.contains("ln -sf /usr/share/zoneinfo/Europe/Paris /etc/localtime"),
            "{s}"
        );
        let s = apply_script(&TzChange {
            zone: Some("Europe/Paris".into()),
            hwclock: Some("local".into()),
            systemd: true,
        });
        assert!(
            s.contains("timedatectl set-timezone Europe/Paris") && s.contains("set-local-rtc yes"),
            "{s}"
        );
    }
}
