//! Host entries as inventories write them: `name`, `name:port`,
//! `[ipv6]:port`, and ranges such as `pi-worker-[01:07]`, `db-[a:c]` or
//! `node[0:10:2]` (inclusive ends, zero padding kept, several ranges expand
//! as a product).

use std::net::Ipv6Addr;

/// A host entry that is not a name, `name:port` or a valid range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum HostEntryError {
    /// A `:` outside brackets that does not start a port.
    #[error("invalid host `{0}`: `:` may only separate a port")]
    Colon(String),
    /// A port that is not 0-65535.
    #[error("invalid port in host `{0}`: must be 0-65535")]
    Port(String),
    /// A `[` that never closes.
    #[error("invalid host range in `{0}`: `[` without `]`")]
    Unclosed(String),
    /// A range whose bounds or step are wrong.
    #[error("invalid host range `[{inner}]` in `{name}`: {why}")]
    Range {
        /// The text between the brackets.
        inner: String,
        /// The whole entry.
        name: String,
        /// What is wrong.
        why: &'static str,
    },
}

/// Split a host entry into host names and an optional port.
pub(super) fn parse_host_pattern(
    pattern: &str,
) -> Result<(Vec<String>, Option<u16>), HostEntryError> {
    let pattern = pattern.trim();
    if pattern.parse::<Ipv6Addr>().is_ok() {
        return Ok((vec![pattern.to_string()], None));
    }
    if let Some(rest) = pattern.strip_prefix('[') {
        if let Some((addr, port)) = rest.split_once("]:") {
            if addr.parse::<Ipv6Addr>().is_ok() {
                return Ok((vec![addr.to_string()], Some(parse_port(port, pattern)?)));
            }
        }
    }
    let (name, port) = match pattern.rsplit_once(':') {
        Some((h, p))
            if !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) && colons_bracketed(h) =>
        {
            (h, Some(parse_port(p, pattern)?))
        }
        _ => (pattern, None),
    };
    if !colons_bracketed(name) {
        return Err(HostEntryError::Colon(pattern.to_string()));
    }
    Ok((expand(name)?, port))
}

fn parse_port(port: &str, pattern: &str) -> Result<u16, HostEntryError> {
    port.parse::<u16>()
        .map_err(|_| HostEntryError::Port(pattern.to_string()))
}

/// Are all `:` of `s` inside `[...]`?
fn colons_bracketed(s: &str) -> bool {
    let mut depth = 0usize;
    for c in s.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            ':' if depth == 0 => return false,
            _ => {}
        }
    }
    true
}

/// Expand every `[begin:end]` or `[begin:end:step]` range in `name`.
pub(super) fn expand(name: &str) -> Result<Vec<String>, HostEntryError> {
    let Some(open) = name.find('[') else {
        return Ok(vec![name.to_string()]);
    };
    let Some(close_rel) = name[open..].find(']') else {
        return Err(HostEntryError::Unclosed(name.to_string()));
    };
    let close = open + close_rel;
    let (head, inner, tail) = (&name[..open], &name[open + 1..close], &name[close + 1..]);
    if !inner.contains(':') {
        return Err(HostEntryError::Range {
            inner: inner.to_string(),
            name: name.to_string(),
            why: "write it as [begin:end] or [begin:end:step]",
        });
    }
    let mut out = Vec::new();
    for item in range_items(inner, name)? {
        for rest in expand(tail)? {
            out.push(format!("{head}{item}{rest}"));
        }
    }
    Ok(out)
}

fn range_items(inner: &str, name: &str) -> Result<Vec<String>, HostEntryError> {
    let bad = |why: &'static str| HostEntryError::Range {
        inner: inner.to_string(),
        name: name.to_string(),
        why,
    };
    let parts: Vec<&str> = inner.split(':').collect();
    let (beg, end, step) = match parts.as_slice() {
        [b, e] => (*b, *e, "1"),
        [b, e, s] => (*b, *e, *s),
        _ => return Err(bad("write it as [begin:end] or [begin:end:step]")),
    };
    let beg = if beg.is_empty() { "0" } else { beg };
    if end.is_empty() {
        return Err(bad("the end is missing"));
    }
    let step: usize = step
        .parse()
        .ok()
        .filter(|s| *s > 0)
        .ok_or_else(|| bad("the step must be a positive integer"))?;
    let alpha = |s: &str| s.len() == 1 && s.chars().all(|c| c.is_ascii_alphabetic());
    if alpha(beg) && alpha(end) {
        // Ansible orders letters as string.ascii_letters: a-z then A-Z.
        const LETTERS: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
        let (Some(b), Some(e)) = (LETTERS.find(beg), LETTERS.find(end)) else {
            return Err(bad("not a letter range"));
        };
        if b > e {
            return Err(bad("the beginning is after the end"));
        }
        return Ok(LETTERS[b..=e]
            .chars()
            .step_by(step)
            .map(String::from)
            .collect());
    }
    let b: u64 = beg
        .parse()
        .map_err(|_| bad("the bounds must be numbers or single letters"))?;
    let e: u64 = end
        .parse()
        .map_err(|_| bad("the bounds must be numbers or single letters"))?;
    if b > e {
        return Err(bad("the beginning is after the end"));
    }
    let width = if beg.len() > 1 && beg.starts_with('0') {
        if beg.len() != end.len() {
            return Err(bad("zero-padded bounds must have the same width"));
        }
        beg.len()
    } else {
        0
    };
    Ok((b..=e)
        .step_by(step)
        .map(|i| format!("{i:0width$}"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_host_entries_say_which_part_is_wrong() {
        let port = parse_host_pattern("a:99999").expect_err("port");
        assert_eq!(port, HostEntryError::Port("a:99999".into()));
        assert_eq!(
            port.to_string(),
            "invalid port in host `a:99999`: must be 0-65535"
        );
        let range = expand("w[3:1]").expect_err("range");
        assert!(
            matches!(&range, HostEntryError::Range { inner, why, .. } if inner == "3:1" && why.contains("after the end")),
            "{range:?}"
        );
        assert_eq!(
            expand("w[1").expect_err("open"),
            HostEntryError::Unclosed("w[1".into())
        );
    }

    #[test]
    fn numeric_range_keeps_padding() {
        let (names, port) = parse_host_pattern("pi-worker-[01:03]").expect("range");
        assert_eq!(names, ["pi-worker-01", "pi-worker-02", "pi-worker-03"]);
        assert_eq!(port, None);
    }

    #[test]
    fn step_letters_and_products() {
        assert_eq!(expand("n[0:6:3]").expect("ok"), ["n0", "n3", "n6"]);
        assert_eq!(expand("db-[a:c]").expect("ok"), ["db-a", "db-b", "db-c"]);
        assert_eq!(
            expand("r[1:2]-[a:b]").expect("ok"),
            ["r1-a", "r1-b", "r2-a", "r2-b"]
        );
        assert_eq!(expand("x[:1]").expect("ok"), ["x0", "x1"]);
    }

    #[test]
    fn ports_and_ipv6() {
        assert_eq!(
            parse_host_pattern("web[1:2]:2222").expect("ok"),
            (vec!["web1".to_string(), "web2".to_string()], Some(2222))
        );
        assert_eq!(
            parse_host_pattern("[::1]:22").expect("ok"),
            (vec!["::1".to_string()], Some(22))
        );
        assert_eq!(
            parse_host_pattern("fe80::1").expect("ok"),
            (vec!["fe80::1".to_string()], None)
        );
        assert_eq!(
            parse_host_pattern("192.168.1.240").expect("ok"),
            (vec!["192.168.1.240".to_string()], None)
        );
    }

    #[test]
    fn bad_ranges() {
        assert!(expand("w[3:1]").is_err());
        assert!(expand("w[01:7]").is_err());
        assert!(expand("w[1:]").is_err());
        assert!(expand("w[1").is_err());
        assert!(parse_host_pattern("a:b:c").is_err());
        assert!(parse_host_pattern("a:99999").is_err());
    }
}
