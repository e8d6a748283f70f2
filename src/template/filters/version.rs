//! Version comparison as Ansible's `version` test does it: `loose` (the
//! default: numbers and letter runs compared in turn, as distutils'
//! LooseVersion), `strict` (`1.2`, `1.2.3`, `1.2a1`) and `semver`.

use std::cmp::Ordering;
use std::sync::OnceLock;

use regex::Regex;

/// Why two versions could not be compared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum VersionError {
    /// Ansible's `pep440` type.
    #[error("the pep440 version type is not supported by drover")]
    Pep440,
    /// A `version_type` that does not exist.
    #[error("invalid version type `{0}`: must be one of 'loose', 'strict', 'semver', 'semantic'")]
    Type(String),
    /// An operator that does not exist.
    #[error(
        "invalid operator `{0}`: must be one of eq, ne, lt, le, gt, ge (or ==, !=, <, <=, >, >=)"
    )]
    Operator(String),
    /// Loose versions whose parts at one place are a number and text.
    #[error("cannot compare a number with text in loose versions (try version_type='semver')")]
    NumberWithText,
    /// Not a strict version.
    #[error("invalid version number '{0}'")]
    Strict(String),
    /// Not a semantic version.
    #[error("invalid semantic version '{0}'")]
    Semver(String),
    /// A built-in pattern did not compile (a bug).
    #[error("{0}")]
    Pattern(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Num(u128),
    Text(String),
}

/// Compare `a` with `b` under `version_type` (`loose`, `strict`, `semver`
/// or `semantic`).
pub(super) fn compare(a: &str, b: &str, version_type: &str) -> Result<Ordering, VersionError> {
    match version_type {
        "loose" => loose_cmp(&loose(a), &loose(b)),
        "strict" => Ok(strict(a)?.cmp(&strict(b)?)),
        "semver" | "semantic" => Ok(semver_cmp(&semver(a)?, &semver(b)?)),
        "pep440" => Err(VersionError::Pep440),
        other => Err(VersionError::Type(other.to_string())),
    }
}

/// Does `ord` satisfy operator `op` (`eq`, `==`, `=`, `ne`, `!=`, `<>`,
/// `lt`, `<`, `le`, `<=`, `gt`, `>`, `ge`, `>=`)?
pub(super) fn satisfies(ord: Ordering, op: &str) -> Result<bool, VersionError> {
    Ok(match op {
        "eq" | "==" | "=" => ord == Ordering::Equal,
        "ne" | "!=" | "<>" => ord != Ordering::Equal,
        "lt" | "<" => ord == Ordering::Less,
        "le" | "<=" => ord != Ordering::Greater,
        "gt" | ">" => ord == Ordering::Greater,
        "ge" | ">=" => ord != Ordering::Less,
        other => return Err(VersionError::Operator(other.to_string())),
    })
}

/// LooseVersion's parts: runs of digits, runs of lowercase letters, and
/// any other text between them; dots are dropped.
fn loose(v: &str) -> Vec<Part> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    let Some(re) = RE.get_or_init(|| Regex::new(r"\d+|[a-z]+|\.").ok()) else {
        return Vec::new();
    };
    let mut parts = Vec::new();
    let mut push = |s: &str| {
        if s.is_empty() || s == "." {
            return;
        }
        match s.parse::<u128>() {
            Ok(n) if s.chars().all(|c| c.is_ascii_digit()) => parts.push(Part::Num(n)),
            _ => parts.push(Part::Text(s.to_string())),
        }
    };
    let mut last = 0;
    for m in re.find_iter(v) {
        push(&v[last..m.start()]);
        push(m.as_str());
        last = m.end();
    }
    push(&v[last..]);
    parts
}

/// Python compares lists element-wise and fails on a number against text.
fn loose_cmp(a: &[Part], b: &[Part]) -> Result<Ordering, VersionError> {
    for (x, y) in a.iter().zip(b) {
        let ord = match (x, y) {
            (Part::Num(p), Part::Num(q)) => p.cmp(q),
            (Part::Text(p), Part::Text(q)) => p.cmp(q),
            _ => return Err(VersionError::NumberWithText),
        };
        if ord != Ordering::Equal {
            return Ok(ord);
        }
    }
    Ok(a.len().cmp(&b.len()))
}

/// StrictVersion: `major.minor[.patch][a|bN]`; a pre-release sorts before
/// the release.
/// (major, minor, patch, (is_release, pre-release letter, number)).
type Strict = (u64, u64, u64, (u8, char, u64));

fn strict(v: &str) -> Result<Strict, VersionError> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    let re = RE
        .get_or_init(|| Regex::new(r"^(\d+)\.(\d+)(?:\.(\d+))?(?:([ab])(\d+))?$").ok())
        .as_ref()
        .ok_or(VersionError::Pattern("strict version pattern"))?;
    let c = re
        .captures(v)
        .ok_or_else(|| VersionError::Strict(v.to_string()))?;
    let num = |i: usize| -> u64 { c.get(i).and_then(|m| m.as_str().parse().ok()).unwrap_or(0) };
    let pre = match c.get(4) {
        Some(letter) => (0, letter.as_str().chars().next().unwrap_or('a'), num(5)),
        None => (1, ' ', 0),
    };
    Ok((num(1), num(2), num(3), pre))
}

struct SemVer {
    core: (u64, u64, u64),
    pre: Vec<Part>,
}

fn semver(v: &str) -> Result<SemVer, VersionError> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    let re = RE
        .get_or_init(|| {
            Regex::new(
                r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$",
            )
            .ok()
        })
        .as_ref()
        .ok_or(VersionError::Pattern("semver pattern"))?;
    let c = re
        .captures(v)
        .ok_or_else(|| VersionError::Semver(v.to_string()))?;
    let num = |i: usize| -> u64 { c.get(i).and_then(|m| m.as_str().parse().ok()).unwrap_or(0) };
    let pre = c
        .get(4)
        .map(|m| {
            m.as_str()
                .split('.')
                .map(|id| match id.parse::<u128>() {
                    Ok(n) if id.chars().all(|c| c.is_ascii_digit()) => Part::Num(n),
                    _ => Part::Text(id.to_string()),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(SemVer {
        core: (num(1), num(2), num(3)),
        pre,
    })
}

fn semver_cmp(a: &SemVer, b: &SemVer) -> Ordering {
    a.core
        .cmp(&b.core)
        .then_with(|| match (a.pre.is_empty(), b.pre.is_empty()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => {
                for (x, y) in a.pre.iter().zip(&b.pre) {
                    let ord = match (x, y) {
                        (Part::Num(p), Part::Num(q)) => p.cmp(q),
                        (Part::Num(_), Part::Text(_)) => Ordering::Less,
                        (Part::Text(_), Part::Num(_)) => Ordering::Greater,
                        (Part::Text(p), Part::Text(q)) => p.cmp(q),
                    };
                    if ord != Ordering::Equal {
                        return ord;
                    }
                }
                a.pre.len().cmp(&b.pre.len())
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_errors_are_typed() {
        assert_eq!(compare("1", "2", "pep440"), Err(VersionError::Pep440));
        assert_eq!(compare("1", "2", "x"), Err(VersionError::Type("x".into())));
        assert_eq!(
            compare("1.a", "1.1", "loose"),
            Err(VersionError::NumberWithText)
        );
        assert_eq!(
            compare("1", "1.0", "strict"),
            Err(VersionError::Strict("1".into()))
        );
        assert_eq!(
            satisfies(Ordering::Less, "~"),
            Err(VersionError::Operator("~".into()))
        );
    }

    fn cmp(a: &str, b: &str, t: &str) -> Ordering {
        compare(a, b, t).expect("comparable")
    }

    #[test]
    fn loose_versions() {
        assert_eq!(cmp("1.10", "1.9", "loose"), Ordering::Greater);
        assert_eq!(cmp("2.0", "10.0", "loose"), Ordering::Less);
        assert_eq!(cmp("1.0a", "1.0", "loose"), Ordering::Greater);
        assert_eq!(
            cmp("v1.30.0+k3s1", "v1.29.9+k3s2", "loose"),
            Ordering::Greater
        );
        assert_eq!(cmp("1.2.3", "1.2.3", "loose"), Ordering::Equal);
        assert!(compare("1.a", "1.1", "loose").is_err());
    }

    #[test]
    fn strict_and_semver() {
        assert_eq!(cmp("1.2", "1.10", "strict"), Ordering::Less);
        assert_eq!(cmp("1.2a1", "1.2", "strict"), Ordering::Less);
        assert_eq!(cmp("1.2.0", "1.2", "strict"), Ordering::Equal);
        assert!(compare("1.2.3.4", "1", "strict").is_err());
        assert_eq!(cmp("1.2.3-rc.1", "1.2.3", "semver"), Ordering::Less);
        assert_eq!(
            cmp("1.2.3-alpha.1", "1.2.3-alpha.beta", "semver"),
            Ordering::Less
        );
        assert_eq!(cmp("1.2.3+build", "1.2.3", "semver"), Ordering::Equal);
        assert!(compare("1.2", "1.2.0", "semver").is_err());
        assert!(satisfies(Ordering::Less, "<=").expect("op"));
        assert!(satisfies(Ordering::Less, "bogus").is_err());
    }
}
