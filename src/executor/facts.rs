//! A small, fast fact set read in one round trip: hostname, OS release,
//! architecture, memory, CPUs and the default IPv4 address.

use crate::playbook::FactGroups;
use crate::transport::{Remote, TransportError};
use crate::{Map, Value};

/// One script part per fact group, each printing `key=value` lines.
const PLATFORM: &str = r#"h=$(hostname 2>/dev/null || cat /etc/hostname); echo "hostname=$h"
echo "fqdn=$(hostname -f 2>/dev/null || echo "$h")"
echo "machine=$(uname -m)"; echo "kernel=$(uname -r)"; echo "system=$(uname -s)"
"#;
const USER: &str = "echo \"user=$(id -un)\"\n";
const HARDWARE: &str = r#"echo "cpus=$(nproc 2>/dev/null || echo 1)"
awk '/^MemTotal:/{print "memtotal_kb=" $2} /^MemFree:/{print "memfree_kb=" $2}' /proc/meminfo 2>/dev/null
"#;
const DISTRIBUTION: &str =
    "[ -r /etc/os-release ] && sed -n 's/^\\([A-Z_]*\\)=/os_\\1=/p' /etc/os-release\n";
const NETWORK: &str = r#"i=$(awk '$2=="00000000"{print $1; exit}' /proc/net/route 2>/dev/null); echo "iface=$i"
if [ -n "$i" ] && command -v ip >/dev/null 2>&1; then echo "ipv4=$(ip -4 -o addr show dev "$i" 2>/dev/null | awk '{print $4; exit}')"; fi
echo "ips=$(hostname -I 2>/dev/null)"
"#;

/// Why facts could not be gathered.
#[derive(Debug, thiserror::Error)]
pub enum GatherError {
    /// The host could not be reached or the command failed to run.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// `gather_timeout` passed first.
    #[error("gathering facts took longer than gather_timeout ({0} s)")]
    TimedOut(u64),
}

impl GatherError {
    /// Does the host leave the play as unreachable (rather than failed)?
    pub fn is_unreachable(&self) -> bool {
        matches!(self, GatherError::Transport(e) if e.is_unreachable())
    }
}

/// The error for a gathering stopped by `gather_timeout`.
pub fn timed_out(secs: u64) -> GatherError {
    GatherError::TimedOut(secs)
}

/// The script gathering `groups`.
fn script(groups: FactGroups) -> String {
    [
        (FactGroups::PLATFORM, PLATFORM),
        (FactGroups::USER, USER),
        (FactGroups::HARDWARE, HARDWARE),
        (FactGroups::DISTRIBUTION, DISTRIBUTION),
        (FactGroups::NETWORK, NETWORK),
    ]
    .iter()
    .filter(|(g, _)| groups.contains(*g))
    .map(|(_, part)| *part)
    .collect()
}

/// Gather the fact groups `groups` (`gather_subset`) from a host; none at
/// all costs no command.
pub async fn gather(remote: &Remote, groups: FactGroups) -> Result<Map, GatherError> {
    if groups.is_empty() {
        return Ok(Map::new());
    }
    let out = remote.exec(&script(groups), b"").await?;
    Ok(parse(&out.stdout_str(), groups))
}

fn unquote(v: &str) -> String {
    v.trim().trim_matches('"').trim_matches('\'').to_string()
}

/// The group a fact belongs to.
fn group_of(fact: &str) -> FactGroups {
    match fact {
        "user_id" => FactGroups::USER,
        "default_ipv4" => FactGroups::NETWORK,
        f if f.starts_with("processor_") || f.starts_with("mem") => FactGroups::HARDWARE,
        f if f.starts_with("distribution") || f == "os_family" => FactGroups::DISTRIBUTION,
        _ => FactGroups::PLATFORM,
    }
}

/// Turn the script's `key=value` lines into Ansible-named facts, keeping
/// those of the groups gathered.
fn parse(text: &str, groups: FactGroups) -> Map {
    let mut f = parse_all(text);
    f.retain(|k, _| groups.contains(group_of(k)));
    f
}

fn parse_all(text: &str) -> Map {
    let mut raw = std::collections::HashMap::new();
    for line in text.lines() {
        if let Some((k, v)) = line.split_once('=') {
            raw.insert(k.to_string(), unquote(v));
        }
    }
    let get = |k: &str| raw.get(k).cloned().unwrap_or_default();
    let mut f = Map::new();
    let hostname = get("hostname");
    let short = hostname.split('.').next().unwrap_or_default().to_string();
    f.insert("hostname".into(), Value::from(short));
    f.insert("nodename".into(), Value::from(hostname.clone()));
    f.insert("fqdn".into(), Value::from(get("fqdn")));
    let machine = get("machine");
    f.insert("architecture".into(), Value::from(machine.clone()));
    f.insert("machine".into(), Value::from(machine));
    f.insert("kernel".into(), Value::from(get("kernel")));
    f.insert("system".into(), Value::from(get("system")));
    f.insert("user_id".into(), Value::from(get("user")));
    let cpus: u64 = get("cpus").parse().unwrap_or(1);
    f.insert("processor_vcpus".into(), Value::from(cpus));
    f.insert("processor_nproc".into(), Value::from(cpus));
    f.insert("processor_cores".into(), Value::from(cpus));
    let mb = |k: &str| get(k).parse::<u64>().unwrap_or(0) / 1024;
    f.insert("memtotal_mb".into(), Value::from(mb("memtotal_kb")));
    f.insert("memfree_mb".into(), Value::from(mb("memfree_kb")));
    let id = get("os_ID");
    let like = get("os_ID_LIKE");
    let distribution = match id.as_str() {
        "debian" => "Debian".to_string(),
        "ubuntu" => "Ubuntu".to_string(),
        "raspbian" => "Debian".to_string(),
        "" => "Unknown".to_string(),
        other => {
            let mut c = other.chars();
            c.next()
                .map(|first| first.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        }
    };
    let family = if id == "debian" || id == "ubuntu" || id == "raspbian" || like.contains("debian")
    {
        "Debian"
    } else if like.contains("rhel") || like.contains("fedora") {
        "RedHat"
    } else {
        distribution.as_str()
    };
    f.insert("os_family".into(), Value::from(family.to_string()));
    f.insert("distribution".into(), Value::from(distribution.clone()));
    let version = get("os_VERSION_ID");
    f.insert(
        "distribution_major_version".into(),
        Value::from(version.split('.').next().unwrap_or_default().to_string()),
    );
    f.insert("distribution_version".into(), Value::from(version));
    f.insert(
        "distribution_release".into(),
        Value::from(get("os_VERSION_CODENAME")),
    );
    let iface = get("iface");
    let mut address = get("ipv4")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    if address.is_empty() {
        address = get("ips")
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string();
    }
    let mut def = Map::new();
    if !address.is_empty() {
        def.insert("address".into(), Value::from(address));
    }
    if !iface.is_empty() {
        def.insert("interface".into(), Value::from(iface));
    }
    f.insert("default_ipv4".into(), Value::Object(def));
    f
}

/// Facts as variables: `ansible_X` for each fact plus `ansible_facts`.
pub fn as_vars(facts: &Map) -> Map {
    let mut vars: Map = facts
        .iter()
        .map(|(k, v)| (format!("ansible_{k}"), v.clone()))
        .collect();
    vars.insert("ansible_facts".into(), Value::Object(facts.clone()));
    vars
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_debian_facts() {
        let f = parse_all(
            "hostname=pi-master\nfqdn=pi-master\nmachine=aarch64\nmemtotal_kb=8000000\n\
             os_ID=debian\nos_VERSION_ID=\"12\"\nos_VERSION_CODENAME=bookworm\niface=eth0\nipv4=192.0.2.5/24\n",
        );
        assert_eq!(f["hostname"], "pi-master");
        assert_eq!(f["distribution"], "Debian");
        assert_eq!(f["os_family"], "Debian");
        assert_eq!(f["distribution_major_version"], "12");
        assert_eq!(f["memtotal_mb"], 7812);
        assert_eq!(f["default_ipv4"]["address"], "192.0.2.5");
    }

    #[test]
    fn gather_subset_picks_the_script_parts_and_the_facts() {
        let net = FactGroups::from_subsets(&["!all".into(), "!min".into(), "network".into()])
            .expect("valid");
        let s = script(net);
        assert!(s.contains("/proc/net/route") && !s.contains("os-release") && !s.contains("nproc"));
        let f = parse(
            "hostname=h\nos_ID=debian\ncpus=4\niface=eth0\nipv4=192.0.2.5/24\n",
            net,
        );
        let keys: Vec<&String> = f.keys().collect();
        assert_eq!(keys, ["default_ipv4"]);
        let min = parse("hostname=h\nos_ID=debian\ncpus=4\n", FactGroups::MIN);
        assert!(min.contains_key("distribution") && min.contains_key("hostname"));
        assert!(min.contains_key("user_id") && !min.contains_key("processor_vcpus"));
        assert!(script(FactGroups::NONE).is_empty());
    }
}
