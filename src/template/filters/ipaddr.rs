//! The IP address filters of the `ansible.utils` collection (`ipaddr`,
//! `ipv4`, `ipv6`, `ipwrap`, `ipsubnet`, `ipmath`, `nthhost`,
//! `network_in_usable`, `network_in_network`, `next_nth_usable`,
//! `previous_nth_usable`), as they behave on top of Python's netaddr 1.x:
//! the same parsing (`addr`, `addr/prefix`, `addr/netmask`, integers),
//! the same queries and the same odd results (`False` for what is not an
//! address, `None` where a query has nothing to say), so k3s-ansible's
//! `{{ api_endpoint | ansible.utils.ipwrap }}` renders as it does there.
//! No Python is needed: in Ansible these need netaddr on the controller.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use minijinja::value::{Value, ValueKind};
use minijinja::{Error, State};

use super::{err, text, Args, Params};

/// An address with a prefix length, as netaddr's `IPNetwork`: `ip` keeps
/// the host bits it was written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Net {
    v6: bool,
    ip: u128,
    prefix: u32,
}

/// Whether a value was written as an address or as a network (`/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Address,
    Network,
}

const MAPPED: u128 = 0xFFFF_0000_0000;

impl Net {
    fn width(self) -> u32 {
        if self.v6 {
            128
        } else {
            32
        }
    }

    fn max(self) -> u128 {
        if self.v6 {
            u128::MAX
        } else {
            u128::from(u32::MAX)
        }
    }

    fn host_bits(self) -> u32 {
        self.width() - self.prefix
    }

    fn hostmask(self) -> u128 {
        match self.host_bits() {
            0 => 0,
            128 => u128::MAX,
            n => (1u128 << n) - 1,
        }
    }

    fn netmask(self) -> u128 {
        !self.hostmask() & self.max()
    }

    fn first(self) -> u128 {
        self.ip & self.netmask()
    }

    fn last(self) -> u128 {
        self.first() | self.hostmask()
    }

    /// netaddr has no broadcast address for /31 and /32 (/127, /128).
    fn broadcast(self) -> Option<u128> {
        (self.host_bits() > 1).then(|| self.last())
    }

    /// The number of addresses, unless it is 2**128.
    fn size(self) -> Option<u128> {
        1u128.checked_shl(self.host_bits())
    }

    fn addr(self, value: u128) -> String {
        format_addr(self.v6, value)
    }

    /// `str(IPNetwork)`: the address as written, with its prefix.
    fn text(self) -> String {
        format!("{}/{}", self.addr(self.ip), self.prefix)
    }

    /// netaddr's `.cidr`: host bits cleared.
    fn cidr(self) -> Net {
        Net {
            ip: self.first(),
            ..self
        }
    }

    /// netaddr's `network[i]`: the i-th address from the first, or from
    /// the last when negative (`-1` is the last).
    fn nth(self, i: i128) -> Option<u128> {
        if i < 0 {
            let back = u128::try_from(-i)
                .ok()
                .filter(|b| *b - 1 <= self.hostmask())?;
            Some(self.last() - (back - 1))
        } else {
            let n = u128::try_from(i).ok().filter(|n| *n <= self.hostmask())?;
            Some(self.first() + n)
        }
    }

    fn contains(self, other: Net) -> bool {
        self.v6 == other.v6 && other.first() >= self.first() && other.last() <= self.last()
    }

    fn contains_addr(self, value: u128) -> bool {
        value >= self.first() && value <= self.last()
    }
}

fn format_addr(v6: bool, value: u128) -> String {
    if !v6 {
        return Ipv4Addr::from(value as u32).to_string();
    }
    // glibc's inet_ntop, which netaddr uses, writes an IPv4 tail for
    // IPv4-compatible addresses (`::1.2.3.4`) as well as mapped ones.
    if value >> 32 == 0 && value > 0xFFFF {
        return format!("::{}", Ipv4Addr::from(value as u32));
    }
    Ipv6Addr::from(value).to_string()
}

fn parse_addr(s: &str) -> Option<(bool, u128)> {
    if let Ok(a) = s.parse::<Ipv4Addr>() {
        return Some((false, u128::from(u32::from(a))));
    }
    s.parse::<Ipv6Addr>().ok().map(|a| (true, u128::from(a)))
}

/// A prefix length the way Python's `int()` reads one.
fn py_int(s: &str) -> Option<i128> {
    let s = s.trim().replace('_', "");
    s.parse::<i128>().ok()
}

/// netaddr's `IPNetwork(text)`: `addr`, `addr/len`, `addr/netmask` or
/// `addr/hostmask`.
fn parse_net(s: &str) -> Option<Net> {
    let (addr, suffix) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let (v6, ip) = parse_addr(addr)?;
    let width: u32 = if v6 { 128 } else { 32 };
    let prefix = match suffix {
        None => width,
        Some(p) => match py_int(p) {
            Some(n) => u32::try_from(n).ok().filter(|n| *n <= width)?,
            None => mask_prefix(v6, p)?,
        },
    };
    Some(Net { v6, ip, prefix })
}

/// The prefix length of a netmask (`255.255.255.0`) or hostmask
/// (`0.0.0.255`) of the same family.
fn mask_prefix(v6: bool, s: &str) -> Option<u32> {
    let (mv6, m) = parse_addr(s)?;
    if mv6 != v6 {
        return None;
    }
    let width: u32 = if v6 { 128 } else { 32 };
    let host = m ^ Net {
        v6,
        ip: 0,
        prefix: 0,
    }
    .max();
    if is_contiguous_low(host) {
        return Some(width - host.count_ones());
    }
    is_contiguous_low(m).then(|| width - m.count_ones())
}

/// `x` is a run of low one bits (or zero): `x + 1` is a power of two.
fn is_contiguous_low(x: u128) -> bool {
    x.wrapping_add(1) & x == 0
}

/// The subset of IANA's special-purpose ranges that are not globally
/// reachable, with their exceptions, as netaddr 1.x's `is_global`.
const V4_NOT_GLOBAL: &[(u32, u32)] = &[
    (0x0000_0000, 8),
    (0x0A00_0000, 8),
    (0x6440_0000, 10),
    (0x7F00_0000, 8),
    (0xA9FE_0000, 16),
    (0xAC10_0000, 12),
    (0xC000_0000, 24),
    (0xC000_00AA, 31),
    (0xC000_0200, 24),
    (0xC0A8_0000, 16),
    (0xC612_0000, 15),
    (0xC633_6400, 24),
    (0xCB00_7100, 24),
    (0xF000_0000, 4),
    (0xFFFF_FFFF, 32),
];
const V4_GLOBAL_EXCEPTIONS: &[(u32, u32)] = &[(0xC000_0009, 32), (0xC000_000A, 32)];
const V6_NOT_GLOBAL: &[(u128, u32)] = &[
    (1, 128),
    (0, 128),
    (MAPPED, 96),
    (0x0064_ff9b_0001 << 80, 48),
    (0x0100 << 112, 64),
    (0x2001 << 112, 23),
    (0x2001_0db8 << 96, 32),
    (0x2002 << 112, 16),
    (0xfc00 << 112, 7),
    (0xfe80 << 112, 10),
];
const V6_GLOBAL_EXCEPTIONS: &[(u128, u32)] = &[
    ((0x2001_0001 << 96) | 1, 128),
    ((0x2001_0001 << 96) | 2, 128),
    (0x2001_0003 << 96, 32),
    (0x2001_0004_0112 << 80, 48),
    (0x2001_0020 << 96, 28),
    (0x2001_0030 << 96, 28),
];

fn within(v6: bool, value: u128, nets: impl IntoIterator<Item = (u128, u32)>) -> bool {
    nets.into_iter()
        .any(|(ip, prefix)| Net { v6, ip, prefix }.contains_addr(value))
}

fn v4_nets(list: &[(u32, u32)]) -> impl Iterator<Item = (u128, u32)> + '_ {
    list.iter().map(|(ip, p)| (u128::from(*ip), *p))
}

fn is_global(v6: bool, value: u128) -> bool {
    if v6 {
        !within(true, value, V6_NOT_GLOBAL.iter().copied())
            || within(true, value, V6_GLOBAL_EXCEPTIONS.iter().copied())
    } else {
        !within(false, value, v4_nets(V4_NOT_GLOBAL))
            || within(false, value, v4_nets(V4_GLOBAL_EXCEPTIONS))
    }
}

fn multicast_net(v6: bool) -> Net {
    if v6 {
        Net {
            v6,
            ip: 0xff << 120,
            prefix: 8,
        }
    } else {
        Net {
            v6,
            ip: 0xE000_0000,
            prefix: 4,
        }
    }
}

fn is_loopback(v6: bool, value: u128) -> bool {
    if v6 {
        value == 1
    } else {
        value >> 24 == 127
    }
}

fn is_link_local(v6: bool, value: u128) -> bool {
    if v6 {
        value >> 118 == 0xfe80 >> 6
    } else {
        value >> 16 == 0xA9FE
    }
}

/// A query's answer: Python's `False` and `None` are kept apart, because
/// templates print them differently and lists drop both.
#[derive(Debug, Clone, PartialEq)]
enum Out {
    False,
    None,
    True,
    Text(String),
    Int(u128),
}

impl Out {
    fn truthy(&self) -> bool {
        match self {
            Out::False | Out::None => false,
            Out::True => true,
            Out::Text(s) => !s.is_empty(),
            Out::Int(n) => *n != 0,
        }
    }

    fn into_value(self) -> Value {
        match self {
            Out::False => Value::from(false),
            Out::None => Value::from(()),
            Out::True => Value::from(true),
            Out::Text(s) => Value::from(s),
            Out::Int(n) => Value::from(n),
        }
    }
}

/// The input of an ipaddr query after netaddr has read it: the value as
/// the filter returns it when a query says "yes", the network, and how it
/// was written.
struct Input {
    value: String,
    net: Net,
    kind: Kind,
}

/// Read `value` as ipaddr does: a number is an address (IPv4 if it fits,
/// unless `version` is 6), text is `IPNetwork(text)`, and `int/len` is a
/// numeric network.
fn read_input(value: &str, version: Option<u32>) -> Option<Input> {
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        let n: u128 = value.parse().ok()?;
        let v6 = version == Some(6) || n > u128::from(u32::MAX);
        let net = Net {
            v6,
            ip: n,
            prefix: if v6 { 128 } else { 32 },
        };
        return Some(Input {
            value: net.text(),
            net,
            kind: Kind::Address,
        });
    }
    if let Some(net) = parse_net(value) {
        let kind = if value.split('/').count() == 2 {
            Kind::Network
        } else {
            Kind::Address
        };
        return Some(Input {
            value: value.to_string(),
            net,
            kind,
        });
    }
    let (addr, prefix) = value.split_once('/')?;
    if prefix.contains('/') {
        return None;
    }
    let addr = py_int(addr).and_then(|n| u128::try_from(n).ok())?;
    let prefix = py_int(prefix).and_then(|n| u32::try_from(n).ok())?;
    let net = if addr <= u128::from(u32::MAX) && prefix <= 32 {
        Net {
            v6: false,
            ip: addr,
            prefix,
        }
    } else if prefix <= 128 {
        Net {
            v6: true,
            ip: addr,
            prefix,
        }
    } else {
        return None;
    };
    Some(Input {
        value: net.text(),
        net,
        kind: Kind::Network,
    })
}

/// The queries ipaddr knows by name.
const QUERIES: &[&str] = &[
    "",
    "6to4",
    "address",
    "address/prefix",
    "bool",
    "broadcast",
    "cidr",
    "cidr_lookup",
    "first_usable",
    "gateway",
    "gw",
    "host",
    "host/prefix",
    "hostmask",
    "hostnet",
    "int",
    "ip",
    "ip/prefix",
    "ip_netmask",
    "ipv4",
    "ipv6",
    "last_usable",
    "link-local",
    "lo",
    "loopback",
    "multicast",
    "net",
    "next_usable",
    "netmask",
    "network",
    "network_id",
    "network/prefix",
    "network_netmask",
    "network_wildcard",
    "peer",
    "prefix",
    "previous_usable",
    "private",
    "public",
    "range_usable",
    "revdns",
    "router",
    "size",
    "size_usable",
    "subnet",
    "type",
    "unicast",
    "v4",
    "v6",
    "version",
    "wildcard",
    "wrap",
];

/// One value through ipaddr (`alias` names the filter in errors).
fn ipaddr_one(value: &Value, query: &str, version: Option<u32>, alias: &str) -> Result<Out, Error> {
    let written = match value.kind() {
        ValueKind::None | ValueKind::Undefined => return Ok(Out::False),
        ValueKind::Bool => return Ok(Out::False),
        ValueKind::Number => match value.as_i64() {
            Some(0) => return Ok(Out::False),
            Some(n) if n < 0 => return Ok(Out::False),
            _ => value.to_string(),
        },
        _ => text(value),
    };
    if written.is_empty() {
        return Ok(Out::False);
    }
    let Some(input) = read_input(&written, version) else {
        return Ok(Out::False);
    };
    let mut query = query.to_string();
    let mut lookup = None;
    if !query.is_empty()
        && (!QUERIES.contains(&query.as_str()) || query == "cidr_lookup")
        && !query.bytes().all(|b| b.is_ascii_digit())
    {
        if let Some(q) = read_input(&query, None) {
            if network_query(q.net).truthy() {
                lookup = Some(q.net.cidr());
                query = "cidr_lookup".to_string();
            }
        }
    }
    if version.is_some_and(|want| want != if input.net.v6 { 6 } else { 4 }) {
        return Ok(Out::False);
    }
    query_one(&input, &query, lookup, alias)
}

fn network_query(v: Net) -> Out {
    Out::Text(v.addr(v.first()))
}

fn query_one(input: &Input, query: &str, lookup: Option<Net>, alias: &str) -> Result<Out, Error> {
    let v = input.net;
    let hb = v.host_bits();
    let yes = || Out::Text(input.value.clone());
    let not_a_network = || Err(err("Not a network address"));
    let ip_is_net = v.ip == v.first();
    Ok(match query {
        "" => match input.kind {
            Kind::Address => Out::Text(v.addr(v.ip)),
            Kind::Network => Out::Text(v.text()),
        },
        "6to4" => six_to_four(input)?,
        "address" | "ip" => {
            if hb == 0 || !ip_is_net || v.broadcast().is_none() || v.v6 {
                Out::Text(v.addr(v.ip))
            } else {
                Out::None
            }
        }
        "address/prefix" | "gateway" | "gw" | "host/prefix" | "hostnet" | "router" => {
            if hb >= 2 && (ip_is_net || Some(v.ip) == v.broadcast()) {
                Out::False
            } else {
                Out::Text(v.text())
            }
        }
        "bool" => Out::True,
        "broadcast" => match (hb >= 2, v.broadcast()) {
            (true, Some(b)) => Out::Text(v.addr(b)),
            _ => Out::None,
        },
        "cidr" => Out::Text(v.text()),
        "cidr_lookup" => match lookup {
            Some(net) if net.contains(v) => yes(),
            Some(_) => Out::None,
            None => nth_query(input, query, alias)?,
        },
        "first_usable" => match input.kind {
            Kind::Address => return not_a_network(),
            Kind::Network => match hb {
                0 => Out::None,
                1 => Out::Text(v.addr(v.first())),
                _ => Out::Text(v.addr(v.first() + 1)),
            },
        },
        "host" => {
            if hb == 0 || !ip_is_net || v.broadcast().is_none() {
                Out::Text(v.text())
            } else {
                Out::None
            }
        }
        "hostmask" | "wildcard" => Out::Text(v.addr(v.hostmask())),
        "int" => match input.kind {
            Kind::Address => Out::Int(v.ip),
            Kind::Network => Out::Text(format!("{}/{}", v.ip, v.prefix)),
        },
        "ip/prefix" => {
            if hb == 1 || (hb >= 2 && !ip_is_net) {
                Out::Text(v.text())
            } else {
                Out::None
            }
        }
        "ip_netmask" => {
            if hb == 1 || (hb >= 2 && !ip_is_net) {
                Out::Text(format!("{} {}", v.addr(v.ip), v.addr(v.netmask())))
            } else {
                Out::None
            }
        }
        "ipv4" | "v4" => {
            if !v.v6 {
                yes()
            } else {
                to_v4(v).map_or(Out::False, |n| Out::Text(n.text()))
            }
        }
        "ipv6" | "v6" => {
            if v.v6 {
                yes()
            } else {
                Out::Text(
                    Net {
                        v6: true,
                        ip: MAPPED + v.ip,
                        prefix: v.prefix + 96,
                    }
                    .text(),
                )
            }
        }
        "last_usable" => match input.kind {
            Kind::Address => return not_a_network(),
            Kind::Network => match hb {
                0 => Out::None,
                1 => Out::Text(v.addr(v.last())),
                _ => Out::Text(v.addr(v.last() - 1)),
            },
        },
        "link-local" => {
            if is_link_local(v.v6, v.ip) {
                yes()
            } else {
                Out::None
            }
        }
        "lo" | "loopback" => {
            if is_loopback(v.v6, v.ip) {
                yes()
            } else {
                Out::None
            }
        }
        "multicast" => {
            if multicast_net(v.v6).contains(v) {
                yes()
            } else {
                Out::None
            }
        }
        "unicast" => {
            if multicast_net(v.v6).contains(v) {
                Out::None
            } else {
                yes()
            }
        }
        "net" => {
            if hb >= 1 && ip_is_net {
                Out::Text(v.cidr().text())
            } else {
                Out::None
            }
        }
        "next_usable" | "previous_usable" => match input.kind {
            Kind::Address => return not_a_network(),
            Kind::Network if hb == 0 => Out::None,
            Kind::Network => {
                let (first, last) = usable(v);
                let next = if query == "next_usable" {
                    v.ip.checked_add(1)
                } else {
                    v.ip.checked_sub(1)
                };
                match next {
                    Some(n) if n >= first && n <= last => Out::Text(v.addr(n)),
                    _ => Out::None,
                }
            }
        },
        "netmask" => Out::Text(v.addr(v.netmask())),
        "network" | "network_id" => network_query(v),
        "network/prefix" | "subnet" => Out::Text(v.cidr().text()),
        "network_netmask" => Out::Text(format!("{} {}", v.addr(v.first()), v.addr(v.netmask()))),
        "network_wildcard" => Out::Text(format!("{} {}", v.addr(v.first()), v.addr(v.hostmask()))),
        "peer" => match input.kind {
            Kind::Address => return not_a_network(),
            Kind::Network => match hb {
                1 => Out::Text(v.addr(v.ip ^ 1)),
                2 if v.ip.is_multiple_of(4) => {
                    return Err(err("Network address of /30 has no peer"))
                }
                2 if v.ip % 4 == 3 => return Err(err("Broadcast address of /30 has no peer")),
                2 => Out::Text(v.addr(v.ip ^ 3)),
                _ => return Err(err("Not a point-to-point network")),
            },
        },
        "prefix" => Out::Int(u128::from(v.prefix)),
        "private" => {
            if is_global(v.v6, v.ip) {
                Out::None
            } else {
                yes()
            }
        }
        "public" => {
            if is_public(v.v6, v.ip) {
                yes()
            } else {
                Out::None
            }
        }
        "range_usable" => match input.kind {
            Kind::Address => return not_a_network(),
            Kind::Network if hb == 0 => Out::None,
            Kind::Network => {
                let (first, last) = usable(v);
                Out::Text(format!("{}-{}", v.addr(first), v.addr(last)))
            }
        },
        "revdns" => Out::Text(revdns(v)),
        "size" => match v.size() {
            Some(n) => Out::Int(n),
            None => Out::Text("340282366920938463463374607431768211456".to_string()),
        },
        "size_usable" => match (hb, v.size()) {
            (0, _) => Out::Int(0),
            (1, _) => Out::Int(2),
            (_, Some(n)) => Out::Int(n - 2),
            (_, None) => Out::Int(u128::MAX - 1),
        },
        "type" => {
            if hb == 0 || !ip_is_net {
                Out::Text("address".to_string())
            } else {
                Out::Text("network".to_string())
            }
        }
        "version" => Out::Int(if v.v6 { 6 } else { 4 }),
        "wrap" => {
            if !v.v6 {
                yes()
            } else {
                match input.kind {
                    Kind::Address => Out::Text(format!("[{}]", v.addr(v.ip))),
                    Kind::Network => Out::Text(format!("[{}]/{}", v.addr(v.ip), v.prefix)),
                }
            }
        }
        other => nth_query(input, other, alias)?,
    })
}

/// A numeric query is an index into the network (`-1` is its last
/// address); anything else is an unknown query.
fn nth_query(input: &Input, query: &str, alias: &str) -> Result<Out, Error> {
    let unknown = || err(format!("{alias}: unknown filter type: {query}"));
    let trimmed = query.trim().replace('_', "");
    let float_ok = trimmed.parse::<f64>().is_ok()
        || matches!(
            trimmed.to_ascii_lowercase().trim_start_matches(['+', '-']),
            "inf" | "infinity" | "nan"
        );
    if !float_ok {
        return Err(unknown());
    }
    let v = input.net;
    if v.host_bits() == 0 {
        return Ok(match input.kind {
            Kind::Address => Out::Text(v.addr(v.ip)),
            Kind::Network => Out::Text(v.text()),
        });
    }
    let Some(i) = py_int(query) else {
        return Ok(Out::False);
    };
    Ok(match v.nth(i) {
        Some(a) => Out::Text(format!("{}/{}", v.addr(a), v.prefix)),
        None => Out::False,
    })
}

fn usable(v: Net) -> (u128, u128) {
    if v.host_bits() == 1 {
        (v.first(), v.last())
    } else {
        (v.first() + 1, v.last() - 1)
    }
}

fn to_v4(v: Net) -> Option<Net> {
    let ip = if v.ip <= u128::from(u32::MAX) {
        v.ip
    } else if v.ip <= 0xFFFF_FFFF_FFFF {
        v.ip - MAPPED
    } else {
        return None;
    };
    let prefix = v.prefix.checked_sub(96)?;
    Some(Net {
        v6: false,
        ip,
        prefix,
    })
}

fn is_public(v6: bool, ip: u128) -> bool {
    let max = if v6 { u128::MAX } else { u128::from(u32::MAX) };
    !multicast_net(v6).contains_addr(ip)
        && is_global(v6, ip)
        && !is_loopback(v6, ip)
        && !is_contiguous_low(ip ^ max)
        && !is_contiguous_low(ip)
}

fn six_to_four(input: &Input) -> Result<Out, Error> {
    let v = input.net;
    if !v.v6 {
        if v.host_bits() > 0 && v.ip == v.first() {
            return Ok(Out::False);
        }
        if !is_public(false, v.ip) && is_global(false, v.ip) {
            return Ok(Out::False);
        }
        let b = (v.ip as u32).to_be_bytes();
        return Ok(Out::Text(format!(
            "2002:{:02x}{:02x}:{:02x}{:02x}::1/48",
            b[0], b[1], b[2], b[3]
        )));
    }
    let six_to_four = Net {
        v6: true,
        ip: 0x2002 << 112,
        prefix: 16,
    };
    let host = Net { prefix: 128, ..v };
    let inside = match input.kind {
        Kind::Address => six_to_four.contains(v),
        Kind::Network => v.ip != v.first() && six_to_four.contains(host),
    };
    Ok(if inside {
        Out::Text(input.value.clone())
    } else {
        Out::False
    })
}

fn revdns(v: Net) -> String {
    let mut out = String::new();
    if v.v6 {
        for i in 0..32 {
            let _ = write!(out, "{:x}.", (v.ip >> (4 * i)) & 0xF);
        }
        out.push_str("ip6.arpa.");
    } else {
        for b in (v.ip as u32).to_le_bytes() {
            let _ = write!(out, "{b}.");
        }
        out.push_str("in-addr.arpa.");
    }
    out
}

/// ipaddr over a value or a list (a list keeps the truthy answers).
fn ipaddr_value(
    value: &Value,
    query: &Value,
    version: Option<u32>,
    alias: &str,
) -> Result<Value, Error> {
    let query = query_text(query);
    match value.kind() {
        ValueKind::Seq | ValueKind::Iterable => {
            let mut out = Vec::new();
            for item in value.try_iter()? {
                let got = ipaddr_one(&item, &query, version, "ipaddr")?;
                if got.truthy() {
                    out.push(got.into_value());
                }
            }
            Ok(Value::from(out))
        }
        ValueKind::Undefined => Err(super::undefined_error(alias)),
        ValueKind::String | ValueKind::Number | ValueKind::Bool => {
            Ok(ipaddr_one(value, &query, version, alias)?.into_value())
        }
        _ => Err(err(format!(
            "Unrecognized type <{}> for {alias} filter <value>",
            super::py_type(value)
        ))),
    }
}

fn query_text(query: &Value) -> String {
    if query.is_none() || query.is_undefined() {
        String::new()
    } else {
        text(query)
    }
}

/// `ipaddr(query='', version=None)`.
pub(super) fn ipaddr(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    let p = Params::bind("ipaddr", &args, &["query", "version", "alias"])?;
    let version = match p.some("version") {
        None => None,
        Some(v) => Some(
            v.as_i64()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| *n == 4 || *n == 6 || *n == 0)
                .ok_or_else(|| err(format!("ipaddr: version must be 4 or 6, not {v}")))?,
        )
        .filter(|n| *n != 0),
    };
    let alias = p.string("alias", "ipaddr");
    ipaddr_value(
        &value,
        p.get("query").unwrap_or(&Value::from("")),
        version,
        &alias,
    )
}

/// `ipv4(query='')`: ipaddr for IPv4 values only.
pub(super) fn ipv4(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    let p = Params::bind("ipv4", &args, &["query"])?;
    ipaddr_value(
        &value,
        p.get("query").unwrap_or(&Value::from("")),
        Some(4),
        "ipv4",
    )
}

/// `ipv6(query='')`: ipaddr for IPv6 values only.
pub(super) fn ipv6(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    let p = Params::bind("ipv6", &args, &["query"])?;
    ipaddr_value(
        &value,
        p.get("query").unwrap_or(&Value::from("")),
        Some(6),
        "ipv6",
    )
}

/// `ipwrap(query='')`: IPv6 addresses in brackets; anything else as it was.
/// A positional query is dropped, as ansible.utils' argument binding drops
/// it; only `query=` reaches the filter.
pub(super) fn ipwrap(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    let (_, p) = super::varargs("ipwrap", &args, &["query"])?;
    let query = query_text(p.get("query").unwrap_or(&Value::from("")));
    let wrap_one = |item: &Value| -> Value {
        match ipaddr_one(item, &query, None, "ipwrap") {
            Ok(got) if got.truthy() => {
                let got = got.into_value();
                match ipaddr_one(&got, "wrap", None, "ipwrap") {
                    Ok(w) => w.into_value(),
                    Err(_) => item.clone(),
                }
            }
            _ => item.clone(),
        }
    };
    match value.kind() {
        ValueKind::Seq | ValueKind::Iterable => {
            let mut out = Vec::new();
            for item in value.try_iter()? {
                out.push(match ipaddr_one(&item, &query, None, "ipwrap") {
                    Ok(got) if got.truthy() => match ipaddr_one(&item, "wrap", None, "ipwrap") {
                        Ok(w) => w.into_value(),
                        Err(_) => item.clone(),
                    },
                    _ => item.clone(),
                });
            }
            Ok(Value::from(out))
        }
        ValueKind::String | ValueKind::Bool => Ok(wrap_one(&value)),
        _ => Err(err(format!(
            "Unrecognized type <{}> for ipwrap filter <value>",
            super::py_type(&value)
        ))),
    }
}

/// The network a value names (an address is its /32 or /128), as
/// ipsubnet, nthhost and friends normalise their input.
fn as_network(value: &Value) -> Option<Net> {
    let written = match value.kind() {
        ValueKind::String | ValueKind::Number => text(value),
        _ => return None,
    };
    let input = read_input(&written, None)?;
    let v = input.net;
    Some(if v.host_bits() == 0 || v.ip != v.first() {
        // "cidr" of an address keeps its host bits, then `.cidr` clears them.
        v.cidr()
    } else {
        v
    })
}

/// `ipsubnet(query='', index=None)`.
pub(super) fn ipsubnet(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    let p = Params::bind("ipsubnet", &args, &["query", "index"])?;
    let Some(written) = read_input(&text(&value), None) else {
        return Ok(Value::from(false));
    };
    let net = written.net.cidr();
    let kind_address = net.host_bits() == 0;
    let query = query_text(p.get("query").unwrap_or(&Value::from("")));
    if query.is_empty() {
        return Ok(Value::from(net.text()));
    }
    let total = net.width();
    if query.bytes().all(|b| b.is_ascii_digit()) {
        let Some(q) = query.parse::<u32>().ok().filter(|q| *q <= total) else {
            return Ok(Value::from(false));
        };
        let index = match p.some("index") {
            None => None,
            Some(i) => Some(
                py_int(&text(i))
                    .ok_or_else(|| err(format!("ipsubnet: index must be an integer, not {i}")))?,
            ),
        };
        return Ok(match (index, kind_address) {
            (None, true) => {
                supernet(net, q, 0).map_or(Value::from(false), |n| Value::from(n.text()))
            }
            (None, false) => {
                if q < net.prefix {
                    return Err(err(format!("Requested subnet size of {q} is invalid")));
                }
                match 1u128.checked_shl(q - net.prefix) {
                    Some(n) => Value::from(n.to_string()),
                    None => Value::from("340282366920938463463374607431768211456"),
                }
            }
            (Some(i), true) => {
                if i > i128::from(total) + 1 - i || i < i128::from(q) - i128::from(total) {
                    Value::from(false)
                } else {
                    supernet(net, q, i).map_or(Value::from(false), |n| Value::from(n.text()))
                }
            }
            (Some(i), false) => {
                if q < net.prefix {
                    return Ok(Value::from(false));
                }
                let Some(count) = 1u128.checked_shl(q - net.prefix) else {
                    return Ok(Value::from(false));
                };
                let count = i128::try_from(count).unwrap_or(i128::MAX);
                let i = if i < 0 { i + count } else { i };
                if i < 0 || i >= count {
                    return Ok(Value::from(false));
                }
                let step = (i as u128).checked_shl(total - q).unwrap_or(0);
                let sub = Net {
                    ip: net.first() + step,
                    prefix: q,
                    ..net
                };
                Value::from(sub.text())
            }
        });
    }
    let Some(outer) = read_input(&query, None).map(|q| q.net.cidr()) else {
        return Err(err(format!(
            "You must pass a valid subnet or IP address; {query} is invalid"
        )));
    };
    let shift = total - outer.prefix;
    let same = outer.v6 == net.v6
        && net.ip.checked_shr(shift).unwrap_or(0) == outer.ip.checked_shr(shift).unwrap_or(0);
    if !same {
        return Err(err(format!(
            "{} is not in the subnet {}",
            net.text(),
            outer.text()
        )));
    }
    // The 1-based position of `net` among the subnets of its size in `outer`.
    let bits = net.prefix.saturating_sub(outer.prefix);
    let mask = 1u128.checked_shl(bits).map_or(u128::MAX, |n| n - 1);
    let position = (net.ip.checked_shr(total - net.prefix).unwrap_or(0) & mask) + 1;
    Ok(Value::from(position.to_string()))
}

/// netaddr's `supernet(prefix)[index]` of an address's /32 (/128).
fn supernet(net: Net, prefix: u32, index: i128) -> Option<Net> {
    let count = i128::from(net.prefix) - i128::from(prefix);
    let i = if index < 0 { index + count } else { index };
    if i < 0 || i >= count {
        return None;
    }
    let p = prefix + u32::try_from(i).ok()?;
    Some(Net { prefix: p, ..net }.cidr())
}

/// `ipmath(amount)`: an address moved by `amount`.
pub(super) fn ipmath(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    let p = Params::bind("ipmath", &args, &["amount"])?;
    let written = text(&value);
    let parsed = if written.contains('/') {
        parse_net(&written)
    } else {
        parse_addr(&written).map(|(v6, ip)| Net {
            v6,
            ip,
            prefix: if v6 { 128 } else { 32 },
        })
    };
    let Some(net) = parsed else {
        return Err(err(format!(
            "You must pass a valid IP address; {written} is invalid"
        )));
    };
    let amount = p
        .some("amount")
        .filter(|a| a.kind() == ValueKind::Number)
        .and_then(Value::as_i64)
        .ok_or_else(|| {
            let shown = p.get("amount").map_or_else(|| "None".to_string(), text);
            err(format!(
                "You must pass an integer for arithmetic; {shown} is not a valid integer"
            ))
        })?;
    let moved = if amount < 0 {
        net.ip.checked_sub(u128::from(amount.unsigned_abs()))
    } else {
        net.ip.checked_add(u128::from(amount.unsigned_abs()))
    };
    match moved.filter(|m| *m <= net.max()) {
        Some(m) => Ok(Value::from(net.addr(m))),
        None => Err(err(format!(
            "You must pass a valid IP address; {written} {amount:+} is out of range"
        ))),
    }
}

/// `nthhost(n)`: the n-th address of a network.
pub(super) fn nthhost(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    let p = Params::bind("nthhost", &args, &["query"])?;
    let Some(net) = as_network(&value) else {
        return Ok(Value::from(false));
    };
    let query = query_text(p.get("query").unwrap_or(&Value::from("")));
    let Some(n) = py_int(&query) else {
        return Ok(Value::from(false));
    };
    Ok(net
        .nth(n)
        .map_or(Value::from(false), |a| Value::from(net.addr(a))))
}

/// The range network_in_usable and network_in_network compare: the ends
/// ipaddr's queries give (a /31's or /32's "broadcast" is its first
/// address), compared as numbers whatever their family, as Python does.
fn in_range(value: &Value, test: &Value, usable_only: bool) -> Value {
    let (Some(v), Some(w)) = (as_network(value), as_network(test)) else {
        return Value::from(false);
    };
    let top = |n: Net| {
        if n.host_bits() <= 1 {
            n.first()
        } else {
            n.last()
        }
    };
    let (first, last) = if usable_only && v.host_bits() > 0 {
        usable(v)
    } else {
        (v.first(), top(v))
    };
    Value::from(w.first() >= first && top(w) <= last)
}

/// `network_in_usable(test)`: `test` lies within `value`'s usable range.
pub(super) fn network_in_usable(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    let p = Params::bind("network_in_usable", &args, &["test"])?;
    Ok(in_range(
        &value,
        p.get("test").unwrap_or(&Value::from(())),
        true,
    ))
}

/// `network_in_network(test)`: `test` lies within `value`.
pub(super) fn network_in_network(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    let p = Params::bind("network_in_network", &args, &["test"])?;
    Ok(in_range(
        &value,
        p.get("test").unwrap_or(&Value::from(())),
        false,
    ))
}

fn nth_usable(what: &str, value: &Value, args: &Args, forward: bool) -> Result<Value, Error> {
    let p = Params::bind(what, args, &["offset"])?;
    let Some(written) = read_input(&text(value), None) else {
        return Ok(Value::from(false));
    };
    // The address keeps its host bits: counting starts from it.
    let net = written.net;
    let offset = p
        .some("offset")
        .filter(|o| o.kind() == ValueKind::Number)
        .and_then(Value::as_i64)
        .ok_or_else(|| err("Must pass in an integer"))?;
    if net.host_bits() == 0 {
        return Ok(Value::from(()));
    }
    let (first, last) = usable(net);
    let step = u128::from(offset.unsigned_abs());
    let at = if (offset >= 0) == forward {
        net.ip.checked_add(step)
    } else {
        net.ip.checked_sub(step)
    };
    Ok(match at {
        Some(a) if a >= first && a <= last => Value::from(net.addr(a)),
        _ => Value::from(()),
    })
}

/// `next_nth_usable(offset)`.
pub(super) fn next_nth_usable(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    nth_usable("next_nth_usable", &value, &args, true)
}

/// `previous_nth_usable(offset)`.
pub(super) fn previous_nth_usable(_: &State, value: Value, args: Args) -> Result<Value, Error> {
    nth_usable("previous_nth_usable", &value, &args, false)
}
