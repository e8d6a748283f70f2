//! A small, fast fact set read in one round trip: hostname, OS release,
//! architecture, memory, CPUs and the default IPv4 address.

use crate::transport::{Remote, TransportError};
use crate::{Map, Value};

const SCRIPT: &str = r#"h=$(hostname 2>/dev/null || cat /etc/hostname); echo "hostname=$h"
echo "fqdn=$(hostname -f 2>/dev/null || echo "$h")"
echo "machine=$(uname -m)"; echo "kernel=$(uname -r)"; echo "system=$(uname -s)"
echo "user=$(id -un)"; echo "cpus=$(nproc 2>/dev/null || echo 1)"
awk '/^MemTotal:/{print "memtotal_kb=" $2} /^MemFree:/{print "memfree_kb=" $2}' /proc/meminfo 2>/dev/null
[ -r /etc/os-release ] && sed -n 's/^\([A-Z_]*\)=/os_\1=/p' /etc/os-release
i=$(awk '$2=="00000000"{print $1; exit}' /proc/net/route 2>/dev/null); echo "iface=$i"
if [ -n "$i" ] && command -v ip >/dev/null 2>&1; then echo "ipv4=$(ip -4 -o addr show dev "$i" 2>/dev/null | awk '{print $4; exit}')"; fi
echo "ips=$(hostname -I 2>/dev/null)"
"#;

/// Gather facts from a host.
pub async fn gather(remote: &Remote) -> Result<Map, TransportError> {
    let out = remote.exec(SCRIPT, b"").await?;
    Ok(parse(&out.stdout_str()))
}

fn unquote(v: &str) -> String {
    v.trim().trim_matches('"').trim_matches('\'').to_string()
}

/// Turn the script's `key=value` lines into Ansible-named facts.
fn parse(text: &str) -> Map {
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
        let f = parse(
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
}
