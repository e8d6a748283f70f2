//! A small, fast fact set read in one round trip: hostname, OS release,
//! architecture, memory, CPUs, the service and package managers, the
//! environment, Python, virtualization, the user, and the addresses of
//! every interface.

use crate::playbook::FactGroups;
use crate::transport::{Remote, TransportError};
use crate::{Map, Value};

/// One script part per fact group, each printing `key=value` lines.
const PLATFORM: &str = r#"h=$(hostname 2>/dev/null || cat /etc/hostname); echo "hostname=$h"
echo "fqdn=$(hostname -f 2>/dev/null || echo "$h")"
echo "machine=$(uname -m)"; echo "kernel=$(uname -r)"; echo "system=$(uname -s)"
if [ -d /run/systemd/system ]; then echo "service_mgr=systemd"; elif read -r c </proc/1/comm; then echo "service_mgr=$c"; fi
for m in apt-get:apt dnf:dnf yum:yum apk:apk pacman:pacman zypper:zypper; do if command -v "${m%%:*}" >/dev/null 2>&1; then echo "pkg_mgr=${m#*:}"; break; fi; done
if [ -f /.dockerenv ]; then echo "virt_docker=1"; fi; if [ -f /run/.containerenv ]; then echo "virt_podman=1"; fi
if [ -r /proc/sys/crypto/fips_enabled ] && read -r x </proc/sys/crypto/fips_enabled && [ "$x" = 1 ]; then echo "fips=1"; fi
for v in product_name sys_vendor; do if [ -r /sys/class/dmi/id/$v ] && read -r x </sys/class/dmi/id/$v; then echo "dmi_$v=$x"; fi; done
{ for p in python3 python; do if x=$(command -v $p 2>/dev/null); then echo "py_exe=$x"; echo "py_ver=$($x --version 2>&1)"; break; fi; done; } &
"#;
/// Printed last, after the background commands are done, between markers:
/// values may hold newlines, so entries are NUL-separated.
const ENV: &str = "wait; printf '@env\\n'; env -0 2>/dev/null; printf '\\n@endenv\\n'\n";
const USER: &str = r#"ids=$(id); u=${ids#*(}; u=${u%%)*}; echo "user=$u"; echo "ids=$ids"; echo "pw=$(getent passwd "$u" 2>/dev/null)"; echo "home=$HOME"
"#;
const HARDWARE: &str = r#"echo "cpus=$(nproc 2>/dev/null || echo 1)"
if [ -d /run/systemd/system ] && v=$(systemctl --version 2>/dev/null); then l=${v%%"
"*}; r=${v#*"
"}; echo "systemd_ver=$l"; echo "systemd_features=${r%%"
"*}"; fi
awk '/^MemTotal:/{print "memtotal_kb=" $2} /^MemFree:/{print "memfree_kb=" $2} /^(Buffers|Cached|SwapTotal|SwapFree|SwapCached):/{sub(":","",$1); print "kb_" $1 "=" $2}' /proc/meminfo 2>/dev/null
"#;
const DISTRIBUTION: &str = r#"[ -r /etc/os-release ] && sed -n 's/^\([A-Z_]*\)=/os_\1=/p' /etc/os-release
if [ -r /etc/lsb-release ]; then sed -n 's/^DISTRIB_ID=/lsb_id=/p; s/^DISTRIB_RELEASE=/lsb_release=/p; s/^DISTRIB_CODENAME=/lsb_codename=/p; s/^DISTRIB_DESCRIPTION=/lsb_description=/p' /etc/lsb-release; elif command -v lsb_release >/dev/null 2>&1; then echo "lsb_from_os=1"; fi
"#;
const NETWORK: &str = r#"awk 'FILENAME=="/proc/net/route" && $2=="00000000" && !a {print "iface=" $1; a=1} FILENAME!="/proc/net/route" && $1=="00000000000000000000000000000000" && $2=="00" && !b {print "iface6=" $10; b=1}' /proc/net/route /proc/net/ipv6_route 2>/dev/null
if command -v ip >/dev/null 2>&1; then ip -o addr show 2>/dev/null; ip -o link show 2>/dev/null; else echo "ips=$(hostname -I 2>/dev/null)"; fi
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
pub fn script(groups: FactGroups) -> String {
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
    // Python answers in the background while the rest runs.
    .chain(groups.contains(FactGroups::PLATFORM).then_some(ENV))
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
fn group_of(fact: &str, value: &Value) -> FactGroups {
    match fact {
        "user_id" | "user_dir" | "user_shell" | "user_uid" | "user_gid" | "user_gecos" => {
            FactGroups::USER
        }
        "default_ipv4" | "default_ipv6" | "all_ipv4_addresses" | "all_ipv6_addresses"
        | "interfaces" => FactGroups::NETWORK,
        // An interface's own facts (`ansible_eth0`).
        _ if value.get("device").is_some() => FactGroups::NETWORK,
        f if f.starts_with("processor_")
            || f.starts_with("mem")
            || f.starts_with("swap")
            || f == "systemd" =>
        {
            FactGroups::HARDWARE
        }
        f if f.starts_with("distribution") || f == "os_family" || f == "lsb" => {
            FactGroups::DISTRIBUTION
        }
        _ => FactGroups::PLATFORM,
    }
}

/// Turn the script's `key=value` lines into Ansible-named facts, keeping
/// those of the groups gathered.
pub fn parse(text: &str, groups: FactGroups) -> Map {
    let mut f = parse_all(text);
    f.retain(|k, v| groups.contains(group_of(k, v)));
    f
}

fn parse_all(text: &str) -> Map {
    let mut raw = std::collections::HashMap::new();
    let mut env = Map::new();
    let mut addrs = Vec::new();
    let mut links = Vec::new();
    let mut text = text.to_string();
    if let Some(start) = text.find("@env\n") {
        let body_start = start + "@env\n".len();
        let end = text[body_start..]
            .find("\n@endenv")
            .map_or(text.len(), |e| body_start + e);
        for entry in text[body_start..end].split('\0') {
            if let Some((k, v)) = entry.split_once('=') {
                env.insert(k.to_string(), Value::from(v));
            }
        }
        text.replace_range(start..(end + "\n@endenv".len()).min(text.len()), "");
    }
    for line in text.lines() {
        // `ip -o` lines: `2: eth0    inet 192.0.2.5/24 ...` and
        // `2: eth0@if5: <UP,...> mtu 1500 ...`.
        let mut w = line.split_whitespace();
        let is_ip = w
            .next()
            .and_then(|n| n.strip_suffix(':'))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if is_ip {
            match (w.next(), w.next()) {
                (Some(dev), Some(_)) if dev.ends_with(':') => links.push(line.to_string()),
                (Some(_), Some("inet" | "inet6")) => addrs.push(line.to_string()),
                _ => {}
            }
        } else if let Some((k, v)) = line.split_once('=') {
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
    // The default interface's first IPv4 address, from the `ip -o addr`
    // lines (`hostname -I` where there is no `ip`).
    if !raw.contains_key("ipv4") {
        let first = addrs.iter().find_map(|a| {
            let w: Vec<&str> = a.split_whitespace().collect();
            (w.get(1).map(|d| d.split('@').next().unwrap_or_default()) == Some(iface.as_str())
                && w.get(2) == Some(&"inet"))
            .then(|| w.get(3).map(|c| c.to_string()))
            .flatten()
        });
        if let Some(c) = first {
            raw.insert("ipv4".into(), c);
        }
    }
    let get = |k: &str| raw.get(k).cloned().unwrap_or_default();
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
    let mut def = Value::Object(def);
    other_facts(&mut f, &get, env);
    network_facts(&mut f, &mut def, &get("iface6"), &addrs, &links);
    f.insert("default_ipv4".into(), def);
    f
}

/// Memory, user, service and package manager, virtualization, Python,
/// LSB and the environment.
fn other_facts(f: &mut Map, get: &dyn Fn(&str) -> String, env: Map) {
    let mb = |k: &str| get(k).parse::<u64>().unwrap_or(0) / 1024;
    let (total, free) = (mb("memtotal_kb"), mb("memfree_kb"));
    let nocache_free = free + mb("kb_Buffers") + mb("kb_Cached");
    let (swap_total, swap_free) = (mb("kb_SwapTotal"), mb("kb_SwapFree"));
    f.insert("swaptotal_mb".into(), Value::from(swap_total));
    f.insert("swapfree_mb".into(), Value::from(swap_free));
    f.insert(
        "memory_mb".into(),
        serde_json::json!({
            "real": {"total": total, "free": free, "used": total.saturating_sub(free)},
            "nocache": {"free": nocache_free, "used": total.saturating_sub(nocache_free)},
            "swap": {"total": swap_total, "free": swap_free,
                     "used": swap_total.saturating_sub(swap_free), "cached": mb("kb_SwapCached")},
        }),
    );
    let pw = get("pw");
    let fields: Vec<&str> = pw.split(':').collect();
    let home = fields
        .get(5)
        .map(|s| s.to_string())
        .unwrap_or_else(|| get("home"));
    f.insert("user_dir".into(), Value::from(home));
    f.insert(
        "user_shell".into(),
        Value::from(fields.get(6).copied().unwrap_or_default()),
    );
    f.insert(
        "user_gecos".into(),
        Value::from(fields.get(4).copied().unwrap_or_default()),
    );
    // `uid=0(root) gid=0(root) groups=...`
    let ids = get("ids");
    let id_of = |key: &str| -> u64 {
        ids.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .and_then(|v| v.split('(').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    f.insert("user_uid".into(), Value::from(id_of("uid=")));
    f.insert("user_gid".into(), Value::from(id_of("gid=")));
    f.insert("service_mgr".into(), Value::from(get("service_mgr")));
    // Ansible's `systemd` fact: `systemctl --version`'s number (the
    // first line's second word) and its feature line.
    if let Some(version) = get("systemd_ver")
        .split(' ')
        .nth(1)
        .and_then(|v| v.parse::<u64>().ok())
    {
        f.insert(
            "systemd".into(),
            serde_json::json!({"version": version, "features": get("systemd_features")}),
        );
    }
    // Ansible's `fips`: the kernel runs in FIPS mode.
    f.insert("fips".into(), Value::Bool(get("fips") == "1"));
    let pkg = get("pkg_mgr");
    f.insert(
        "pkg_mgr".into(),
        Value::from(if pkg.is_empty() {
            "unknown".into()
        } else {
            pkg
        }),
    );
    // Read as Ansible reads it: container marker files, then the DMI
    // product and vendor names (no command started).
    let (product, vendor) = (get("dmi_product_name"), get("dmi_sys_vendor"));
    let vm = |p: &str, v: &str| -> Option<&'static str> {
        Some(match () {
            _ if p.contains("KVM") || p.contains("Standard PC") || v == "QEMU" => "kvm",
            _ if p.contains("VMware") || v.contains("VMware") => "VMware",
            _ if p == "VirtualBox" || v == "innotek GmbH" => "virtualbox",
            _ if v == "Microsoft Corporation" && p == "Virtual Machine" => "VirtualPC",
            _ if v == "Xen" => "xen",
            _ if v == "Amazon EC2" => "amazon",
            _ if v == "Google" => "kvm",
            _ if p == "RHEV Hypervisor" => "RHEV",
            _ => return None,
        })
    };
    let (vtype, role) = if !get("virt_docker").is_empty() {
        ("docker", "guest")
    } else if !get("virt_podman").is_empty() {
        ("podman", "guest")
    } else {
        match vm(&product, &vendor) {
            Some(t) => (t, "guest"),
            None => ("NA", "NA"),
        }
    };
    f.insert("virtualization_type".into(), Value::from(vtype));
    f.insert("virtualization_role".into(), Value::from(role));
    let version = get("py_ver");
    if let Some(v) = version.strip_prefix("Python ") {
        let v = v.trim().to_string();
        let mut parts = v.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
        let (major, minor, micro) = (
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
        );
        f.insert("python_version".into(), Value::from(v));
        f.insert(
            "python".into(),
            serde_json::json!({"executable": get("py_exe"), "type": "cpython",
                "version": {"major": major, "minor": minor, "micro": micro,
                            "releaselevel": "final", "serial": 0}}),
        );
    }
    let mut lsb = Map::new();
    for k in ["id", "release", "codename", "description"] {
        let v = get(&format!("lsb_{k}"));
        if !v.is_empty() {
            lsb.insert(k.into(), Value::from(v));
        }
    }
    // `lsb_release` (a Python program on Debian) prints what os-release
    // holds: read that rather than start it.
    if !get("lsb_from_os").is_empty() {
        let name = get("os_NAME");
        let id = name
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string();
        for (k, v) in [
            ("id", id),
            ("description", get("os_PRETTY_NAME")),
            ("release", get("os_VERSION_ID")),
            ("codename", get("os_VERSION_CODENAME")),
        ] {
            if !v.is_empty() {
                lsb.insert(k.into(), Value::from(v));
            }
        }
    }
    if let Some(r) = lsb.get("release").and_then(Value::as_str) {
        let major = r.split('.').next().unwrap_or_default().to_string();
        lsb.insert("major_release".into(), Value::from(major));
    }
    f.insert("lsb".into(), Value::Object(lsb));
    if !env.is_empty() {
        f.insert("env".into(), Value::Object(env));
    }
}

/// A prefix length's dotted netmask and the network of `address`.
fn ipv4_net(address: &str, prefix: u32) -> (String, String) {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix.min(32))
    };
    let addr: u32 = address
        .parse::<std::net::Ipv4Addr>()
        .map(u32::from)
        .unwrap_or(0);
    (
        std::net::Ipv4Addr::from(mask).to_string(),
        std::net::Ipv4Addr::from(addr & mask).to_string(),
    )
}

/// Per-interface facts (`ansible_eth0`), `interfaces`, every address, and
/// the details of the default IPv4 and IPv6 interfaces, from `ip -o addr`
/// lines and `/sys/class/net`.
fn network_facts(f: &mut Map, def4: &mut Value, iface6: &str, addrs: &[String], links: &[String]) {
    let mut ifaces: indexmap::IndexMap<String, Map> = indexmap::IndexMap::new();
    for l in links {
        let w: Vec<&str> = l.split_whitespace().collect();
        let Some(name) = w.get(1) else { continue };
        let name = name.trim_end_matches(':');
        let name = name.split('@').next().unwrap_or(name);
        let after = |key: &str| {
            w.iter()
                .position(|x| *x == key)
                .and_then(|i| w.get(i + 1))
                .copied()
        };
        let mut m = Map::new();
        m.insert("device".into(), Value::from(name));
        if let Some(mtu) = after("mtu").and_then(|x| x.parse::<u64>().ok()) {
            m.insert("mtu".into(), Value::from(mtu));
        }
        let flags = w.get(2).copied().unwrap_or_default();
        m.insert("active".into(), Value::Bool(flags.contains("UP")));
        let link = w.iter().find(|x| x.starts_with("link/")).copied();
        let kind = match link {
            Some("link/loopback") => "loopback",
            Some("link/ether") => "ether",
            _ => "unknown",
        };
        m.insert("type".into(), Value::from(kind));
        if let Some(mac) = link.and_then(after) {
            m.insert("macaddress".into(), Value::from(mac));
        }
        ifaces.insert(name.to_string(), m);
    }
    let (mut all4, mut all6) = (Vec::new(), Vec::new());
    for a in addrs {
        // `2: eth0    inet 192.0.2.5/24 brd 192.0.2.255 scope global eth0\ ...`
        let w: Vec<&str> = a.split_whitespace().collect();
        let (Some(dev), Some(fam), Some(cidr)) = (w.get(1), w.get(2), w.get(3)) else {
            continue;
        };
        let dev = dev.split('@').next().unwrap_or_default().to_string();
        let (ip, prefix) = cidr.split_once('/').unwrap_or((cidr, "32"));
        let prefix_n: u32 = prefix.parse().unwrap_or(0);
        let after = |key: &str| {
            w.iter()
                .position(|x| *x == key)
                .and_then(|i| w.get(i + 1))
                .map(|x| x.to_string())
        };
        let entry = ifaces.entry(dev.clone()).or_insert_with(|| {
            let mut m = Map::new();
            m.insert("device".into(), Value::from(dev.clone()));
            m
        });
        if *fam == "inet" {
            if !ip.starts_with("127.") {
                all4.push(Value::from(ip));
            }
            let (netmask, network) = ipv4_net(ip, prefix_n);
            let mut v4 = serde_json::json!({"address": ip, "netmask": netmask,
                "network": network, "prefix": prefix});
            if let Some(b) = after("brd") {
                v4["broadcast"] = Value::from(b);
            }
            if entry.contains_key("ipv4") {
                if let Value::Array(list) = entry
                    .entry("ipv4_secondaries")
                    .or_insert_with(|| Value::Array(Vec::new()))
                {
                    list.push(v4);
                }
            } else {
                entry.insert("ipv4".into(), v4);
            }
        } else if *fam == "inet6" {
            if ip != "::1" {
                all6.push(Value::from(ip));
            }
            let v6 = serde_json::json!({"address": ip, "prefix": prefix,
                "scope": after("scope").unwrap_or_default()});
            if let Value::Array(list) = entry
                .entry("ipv6")
                .or_insert_with(|| Value::Array(Vec::new()))
            {
                list.push(v6);
            }
        }
    }
    f.insert("all_ipv4_addresses".into(), Value::Array(all4));
    f.insert("all_ipv6_addresses".into(), Value::Array(all6));
    // The default IPv4 interface's details join `default_ipv4`.
    let iface4 = def4
        .get("interface")
        .and_then(Value::as_str)
        .map(str::to_string);
    if let (Some(i), Value::Object(d)) = (iface4, &mut *def4) {
        if let Some(m) = ifaces.get(&i) {
            for k in ["macaddress", "mtu", "type"] {
                if let Some(v) = m.get(k) {
                    d.insert(k.into(), v.clone());
                }
            }
            if let Some(Value::Object(v4)) = m.get("ipv4") {
                for (k, v) in v4 {
                    d.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
        }
    }
    let mut def6 = Map::new();
    if let Some(m) = ifaces.get(iface6) {
        let global = m
            .get("ipv6")
            .and_then(Value::as_array)
            .and_then(|l| l.iter().find(|a| a["scope"] == "global"));
        if let Some(Value::Object(a)) = global {
            def6.extend(a.clone());
            def6.insert("interface".into(), Value::from(iface6));
            for k in ["macaddress", "mtu", "type"] {
                if let Some(v) = m.get(k) {
                    def6.insert(k.into(), v.clone());
                }
            }
        }
    }
    f.insert("default_ipv6".into(), Value::Object(def6));
    let names: Vec<Value> = ifaces.keys().map(|k| Value::from(k.as_str())).collect();
    f.insert("interfaces".into(), Value::Array(names));
    for (name, m) in ifaces {
        // Ansible's fact names have `_` for `-` (and `.`, `:`).
        let key = name.replace(['-', '.', ':'], "_");
        f.entry(key).or_insert(Value::Object(m));
    }
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
    fn interfaces_memory_env_python_and_managers_are_facts() {
        let f = parse_all(concat!(
            "hostname=h\nmemtotal_kb=2048000\nmemfree_kb=1024000\nkb_Cached=102400\nkb_SwapTotal=0\n",
            "service_mgr=systemd\npkg_mgr=apt\ndmi_product_name=Standard PC (Q35 + ICH9, 2009)\npy_exe=/usr/bin/python3\npy_ver=Python 3.11.2\n",
            "pw=root:x:0:0:root:/root:/bin/bash\nids=uid=0(root) gid=0(root) groups=0(root)\n",
            "lsb_id=Debian\nlsb_release=12\niface=eth0\niface6=eth0\n",
            "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever\n",
            "2: eth0    inet 192.0.2.5/24 brd 192.0.2.255 scope global eth0\\ x\n",
            "2: eth0    inet6 fd00::5/64 scope global \\ x\n",
            "2: eth0    inet6 fe80::1/64 scope link \\ x\n",
            "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN\\    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00\n",
            "2: eth0@if5: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP\\    link/ether 02:00:00:00:00:05 brd ff:ff:ff:ff:ff:ff\n",
            "3: br-lan: <BROADCAST,MULTICAST> mtu 1500 qdisc noop state DOWN\\    link/ether 02:00:00:00:00:06 brd ff:ff:ff:ff:ff:ff\n",
            "@env\nPATH=/usr/bin\0MULTI=a\nb\0\n@endenv\nos_ID=debian\n",
        ));
        assert_eq!(f["eth0"]["ipv4"]["address"], "192.0.2.5");
        assert_eq!(f["eth0"]["ipv4"]["netmask"], "255.255.255.0");
        assert_eq!(f["eth0"]["ipv4"]["network"], "192.0.2.0");
        assert_eq!(f["eth0"]["ipv6"][0]["address"], "fd00::5");
        assert_eq!(f["eth0"]["macaddress"], "02:00:00:00:00:05");
        assert_eq!(f["lo"]["type"], "loopback");
        assert_eq!(f["br_lan"]["active"], false);
        assert_eq!(f["all_ipv4_addresses"], serde_json::json!(["192.0.2.5"]));
        assert_eq!(
            f["all_ipv6_addresses"],
            serde_json::json!(["fd00::5", "fe80::1"])
        );
        assert_eq!(f["default_ipv4"]["address"], "192.0.2.5");
        assert_eq!(f["default_ipv4"]["netmask"], "255.255.255.0");
        assert_eq!(f["default_ipv6"]["address"], "fd00::5");
        assert_eq!(f["memory_mb"]["real"]["total"], 2000);
        assert_eq!(f["memory_mb"]["nocache"]["free"], 1100);
        assert_eq!(f["service_mgr"], "systemd");
        assert!(
            f.get("systemd").is_none(),
            "no systemctl --version, no fact"
        );
        let sd = parse(
            "systemd_ver=systemd 252 (252.39-1~deb12u1)\nsystemd_features=+PAM +AUDIT -APPARMOR\n",
            FactGroups::ALL,
        );
        assert_eq!(sd["systemd"]["version"], 252);
        assert_eq!(sd["systemd"]["features"], "+PAM +AUDIT -APPARMOR");
        assert!(parse("systemd_ver=systemd 252\n", FactGroups::MIN)
            .get("systemd")
            .is_none());
        assert_eq!(f["pkg_mgr"], "apt");
        assert_eq!(f["virtualization_type"], "kvm");
        assert_eq!(f["python_version"], "3.11.2");
        assert_eq!(f["python"]["version"]["minor"], 11);
        assert_eq!(f["user_dir"], "/root");
        assert_eq!(f["user_shell"], "/bin/bash");
        assert_eq!(f["user_uid"], 0);
        assert_eq!(f["distribution"], "Debian");
        assert_eq!(f["lsb"]["major_release"], "12");
        assert_eq!(f["env"]["PATH"], "/usr/bin");
        assert_eq!(f["env"]["MULTI"], "a\nb");
        // copy's md5sum check runs `when: ansible_fips|bool != True`.
        assert_eq!(f["fips"], false);
        assert_eq!(parse_all("fips=1\n")["fips"], true);
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
        let mut keys: Vec<&String> = f.keys().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "all_ipv4_addresses",
                "all_ipv6_addresses",
                "default_ipv4",
                "default_ipv6",
                "interfaces"
            ]
        );
        let min = parse("hostname=h\nos_ID=debian\ncpus=4\n", FactGroups::MIN);
        assert!(min.contains_key("distribution") && min.contains_key("hostname"));
        assert!(min.contains_key("user_id") && !min.contains_key("processor_vcpus"));
        assert!(script(FactGroups::NONE).is_empty());
    }
}
