//! Password hashing and generation on the control machine: the
//! `password_hash` filter (SHA-256 and SHA-512 crypt, the `$5$`/`$6$`
//! strings /etc/shadow holds, with passlib's defaults as Ansible uses them:
//! a 16-character salt and 535000/656000 rounds) and the `password` lookup
//! (a random password, kept in a file on the control machine so a second
//! run gets the same one; `/dev/null` keeps nothing).

use std::path::{Path, PathBuf};

use minijinja::value::{Kwargs, Value};
use minijinja::{Error, ErrorKind, State};
use rand::{Rng, SeedableRng};
use sha2::Digest as _;

fn err(msg: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg)
}

/// The characters of crypt's base-64 alphabet, which are also the salt's.
const CRYPT64: &[u8] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A SHA-2 crypt scheme: its `$id$`, the rounds passlib uses when none
/// are given, and the order crypt writes the digest's bytes in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Scheme {
    Sha256,
    Sha512,
}

impl Scheme {
    /// `sha512`/`sha512_crypt` (the filter's and the lookup's names).
    fn parse(name: &str) -> Result<Self, Error> {
        match name {
            "sha256" | "sha256_crypt" => Ok(Self::Sha256),
            "sha512" | "sha512_crypt" => Ok(Self::Sha512),
            other => Err(err(format!(
                "password hash type {other:?} is not supported by drover (sha256, sha512)"
            ))),
        }
    }

    fn id(self) -> &'static str {
        match self {
            Self::Sha256 => "5",
            Self::Sha512 => "6",
        }
    }

    fn default_rounds(self) -> u32 {
        match self {
            Self::Sha256 => 535_000,
            Self::Sha512 => 656_000,
        }
    }

    /// The digest of `parts` joined. Padded here and fed to sha2's
    /// compression function: SHA-crypt runs this hundreds of thousands of
    /// times, and the generic digest wrappers cost seconds unoptimised.
    fn digest(self, parts: &[&[u8]]) -> Vec<u8> {
        use sha2::digest::generic_array::GenericArray;
        let (block, len_bytes) = match self {
            Self::Sha256 => (64, 8),
            Self::Sha512 => (128, 16),
        };
        let mut msg = parts.concat();
        let bits = (msg.len() as u128) * 8;
        msg.push(0x80);
        let padded = (msg.len() + len_bytes).next_multiple_of(block);
        msg.resize(padded - len_bytes, 0);
        msg.extend_from_slice(&bits.to_be_bytes()[16 - len_bytes..]);
        match self {
            Self::Sha256 => {
                let mut st: [u32; 8] = [
                    0x6a09_e667,
                    0xbb67_ae85,
                    0x3c6e_f372,
                    0xa54f_f53a,
                    0x510e_527f,
                    0x9b05_688c,
                    0x1f83_d9ab,
                    0x5be0_cd19,
                ];
                for chunk in msg.chunks_exact(block) {
                    sha2::compress256(
                        &mut st,
                        std::slice::from_ref(GenericArray::from_slice(chunk)),
                    );
                }
                st.iter().flat_map(|w| w.to_be_bytes()).collect()
            }
            Self::Sha512 => {
                let mut st: [u64; 8] = [
                    0x6a09_e667_f3bc_c908,
                    0xbb67_ae85_84ca_a73b,
                    0x3c6e_f372_fe94_f82b,
                    0xa54f_f53a_5f1d_36f1,
                    0x510e_527f_ade6_82d1,
                    0x9b05_688c_2b3e_6c1f,
                    0x1f83_d9ab_fb41_bd6b,
                    0x5be0_cd19_137e_2179,
                ];
                for chunk in msg.chunks_exact(block) {
                    sha2::compress512(
                        &mut st,
                        std::slice::from_ref(GenericArray::from_slice(chunk)),
                    );
                }
                st.iter().flat_map(|w| w.to_be_bytes()).collect()
            }
        }
    }

    /// The digest's bytes in the order crypt encodes them, three at a time
    /// (the last group shorter).
    fn groups(self, d: &[u8]) -> Vec<Vec<u8>> {
        let (third, tail): (usize, Vec<u8>) = match self {
            Self::Sha256 => (10, vec![0, d[31], d[30]]),
            Self::Sha512 => (21, vec![0, 0, d[63]]),
        };
        let mut out = Vec::new();
        for k in 0..third {
            let (a, b, c) = (d[k], d[k + third], d[k + 2 * third]);
            out.push(match (k % 3, self) {
                (0, _) => vec![a, b, c],
                (1, Self::Sha512) | (2, Self::Sha256) => vec![b, c, a],
                _ => vec![c, a, b],
            });
        }
        out.push(tail);
        out
    }
}

/// `len` bytes of `block` repeated.
fn repeat_to(block: &[u8], len: usize) -> Vec<u8> {
    block.iter().copied().cycle().take(len).collect()
}

/// SHA-crypt of `password` with `salt` (at most 16 characters are used)
/// and `rounds` (`None`: 5000, not written into the result).
pub(super) fn sha_crypt(
    scheme: Scheme,
    password: &[u8],
    salt: &str,
    rounds: Option<u32>,
) -> String {
    let salt = &salt.as_bytes()[..salt.len().min(16)];
    let n = rounds.unwrap_or(5000) as usize;
    let p = password;
    let b = scheme.digest(&[p, salt, p]);
    let mut a_in: Vec<u8> = [p, salt].concat();
    a_in.extend(repeat_to(&b, p.len()));
    let mut len = p.len();
    while len > 0 {
        a_in.extend_from_slice(if len & 1 == 1 { &b } else { p });
        len >>= 1;
    }
    let a = scheme.digest(&[&a_in]);
    let dp = scheme.digest(&[&p.repeat(p.len())]);
    let p_seq = repeat_to(&dp, p.len());
    let ds = scheme.digest(&[&salt.repeat(16 + usize::from(a[0]))]);
    let s_seq = repeat_to(&ds, salt.len());
    let mut c = a;
    for i in 0..n {
        let odd = i % 2 == 1;
        let mut parts: [&[u8]; 4] = [&[]; 4];
        parts[0] = if odd { &p_seq } else { &c };
        if i % 3 != 0 {
            parts[1] = &s_seq;
        }
        if i % 7 != 0 {
            parts[2] = &p_seq;
        }
        parts[3] = if odd { &c } else { &p_seq };
        c = scheme.digest(&parts);
    }
    let mut out = format!("${}$", scheme.id());
    if let Some(r) = rounds {
        out.push_str(&format!("rounds={r}$"));
    }
    out.push_str(&String::from_utf8_lossy(salt));
    out.push('$');
    for g in scheme.groups(&c) {
        let w = (u32::from(g[0]) << 16) | (u32::from(g[1]) << 8) | u32::from(g[2]);
        for k in 0..4 {
            out.push(char::from(CRYPT64[((w >> (6 * k)) & 0x3f) as usize]));
        }
    }
    // The last group encodes one (SHA-512) or two (SHA-256) bytes only.
    let extra = match scheme {
        Scheme::Sha256 => 1,
        Scheme::Sha512 => 2,
    };
    out.truncate(out.len() - extra);
    out
}

/// `count` random characters from `chars` (`seed`: the same ones each time).
fn random_chars(chars: &[char], count: usize, seed: Option<&str>) -> String {
    if chars.is_empty() {
        return String::new();
    }
    let mut rng: rand::rngs::StdRng = match seed {
        Some(s) => {
            let d = sha2::Sha256::digest(s.as_bytes());
            let mut key = [0u8; 32];
            key.copy_from_slice(&d);
            rand::rngs::StdRng::from_seed(key)
        }
        None => rand::rngs::StdRng::from_os_rng(),
    };
    (0..count)
        .map(|_| chars[rng.random_range(0..chars.len())])
        .collect()
}

fn random_salt(len: usize) -> String {
    let chars: Vec<char> = CRYPT64.iter().map(|b| char::from(*b)).collect();
    random_chars(&chars, len, None)
}

/// A hash of `password` as passlib makes it for Ansible.
fn hash(
    scheme: Scheme,
    password: &str,
    salt: Option<&str>,
    rounds: Option<u32>,
) -> Result<String, Error> {
    let salt = match salt {
        Some(s) => {
            if s.len() > 16 || !s.bytes().all(|b| CRYPT64.contains(&b)) {
                return Err(err(
                    "password_hash: the salt must be at most 16 characters of [./0-9A-Za-z]".into(),
                ));
            }
            s.to_string()
        }
        None => random_salt(16),
    };
    let rounds = rounds.unwrap_or(scheme.default_rounds());
    if !(1000..=999_999_999).contains(&rounds) {
        return Err(err(format!(
            "password_hash: rounds must be between 1000 and 999999999, not {rounds}"
        )));
    }
    // crypt leaves the default count of 5000 out of the string.
    let written = (rounds != 5000).then_some(rounds);
    Ok(sha_crypt(scheme, password.as_bytes(), &salt, written))
}

/// `password | password_hash('sha512', salt, rounds=...)`.
pub(super) fn password_hash(
    value: Value,
    hashtype: Option<String>,
    salt: Option<Value>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let salt_kw: Option<Value> = kwargs.get("salt")?;
    let rounds: Option<u32> = kwargs.get("rounds")?;
    let salt_size: Option<usize> = kwargs.get("salt_size")?;
    let ident: Option<Value> = kwargs.get("ident")?;
    let hashtype_kw: Option<String> = kwargs.get("hashtype")?;
    kwargs.assert_all_used()?;
    if ident.as_ref().is_some_and(|i| !i.is_none()) {
        return Err(err("password_hash: ident applies to bcrypt only".into()));
    }
    let scheme = Scheme::parse(hashtype.or(hashtype_kw).as_deref().unwrap_or("sha512"))?;
    let salt = salt
        .or(salt_kw)
        .filter(|s| !s.is_none() && !s.is_undefined())
        .map(|s| s.to_string());
    let salt = match (salt, salt_size) {
        (Some(s), _) => Some(s),
        (None, Some(n)) => Some(random_salt(n)),
        (None, None) => None,
    };
    let password = match value.as_str() {
        Some(s) => s.to_string(),
        None => value.to_string(),
    };
    hash(scheme, &password, salt.as_deref(), rounds).map(Value::from)
}

/// The `password` lookup's parameters.
#[derive(Debug, PartialEq)]
struct PasswordParams {
    path: String,
    length: usize,
    chars: Vec<String>,
    encrypt: Option<String>,
    seed: Option<String>,
}

/// `chars=ascii_letters,digits,,` → the specs (`,,` is a literal comma).
fn split_chars(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    if s.contains(",,") {
        out.push(",".to_string());
    }
    out.extend(
        s.replace(",,", ",")
            .split(',')
            .filter(|c| !c.is_empty())
            .map(str::to_string),
    );
    out
}

/// The candidate characters: each spec a name from Python's `string`
/// module or literal characters; quotes are never used.
fn candidate_chars(specs: &[String]) -> Vec<char> {
    const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
    const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    const DIGITS: &str = "0123456789";
    const PUNCT: &str = r##"!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~"##;
    let mut all = String::new();
    for spec in specs {
        match spec.as_str() {
            "ascii_letters" => {
                all.push_str(LOWER);
                all.push_str(UPPER);
            }
            "ascii_lowercase" => all.push_str(LOWER),
            "ascii_uppercase" => all.push_str(UPPER),
            "digits" => all.push_str(DIGITS),
            "hexdigits" => all.push_str("0123456789abcdefABCDEF"),
            "octdigits" => all.push_str("01234567"),
            "punctuation" => all.push_str(PUNCT),
            "whitespace" => all.push_str(" \t\n\r\x0b\x0c"),
            "printable" => {
                all.push_str(DIGITS);
                all.push_str(LOWER);
                all.push_str(UPPER);
                all.push_str(PUNCT);
                all.push_str(" \t\n\r\x0b\x0c");
            }
            literal => all.push_str(literal),
        }
    }
    all.chars().filter(|c| *c != '"' && *c != '\'').collect()
}

/// Split `path key=value ...` and merge the keyword arguments.
fn password_params(term: &str, kwargs: &Kwargs) -> Result<PasswordParams, Error> {
    let mut p = PasswordParams {
        path: term.to_string(),
        length: 20,
        chars: ["ascii_letters", "digits", ".,:-_"]
            .map(String::from)
            .to_vec(),
        encrypt: None,
        seed: None,
    };
    let mut set = |key: &str, v: String| -> Result<(), Error> {
        match key {
            "length" => {
                p.length = v.parse().map_err(|_| {
                    err(format!(
                        "password lookup: length must be a number, not {v:?}"
                    ))
                })?
            }
            "chars" => p.chars = split_chars(&v),
            "encrypt" => p.encrypt = Some(v),
            "seed" => p.seed = Some(v),
            "ident" => {
                return Err(err(
                    "password lookup: ident applies to bcrypt, which drover does not hash".into(),
                ))
            }
            other => {
                return Err(err(format!(
                    "Unrecognized parameter(s) given to password lookup: {other}"
                )))
            }
        }
        Ok(())
    };
    for key in ["length", "chars", "encrypt", "seed", "ident"] {
        let v: Option<Value> = kwargs.get(key)?;
        let Some(v) = v.filter(|v| !v.is_none()) else {
            continue;
        };
        let text = match (key, v.as_str()) {
            ("chars", None) => v
                .try_iter()
                .map(|it| it.map(|c| c.to_string()).collect::<Vec<_>>().join(","))
                .unwrap_or_else(|_| v.to_string()),
            (_, Some(s)) => s.to_string(),
            _ => v.to_string(),
        };
        set(key, text)?;
    }
    // Words after the path are key=value pairs; the path is what precedes
    // the first of them.
    let mut words = term.split(' ');
    let mut path = words.next().unwrap_or_default().to_string();
    let mut pairs = Vec::new();
    for w in words {
        match w.split_once('=') {
            Some((k, v)) => pairs.push((k.to_string(), v.to_string())),
            None if pairs.is_empty() => {
                path.push(' ');
                path.push_str(w);
            }
            None => {
                return Err(err(
                    "Unrecognized value after key=value parameters given to password lookup".into(),
                ))
            }
        }
    }
    for (k, v) in pairs {
        set(&k, v)?;
    }
    p.path = path;
    Ok(p)
}

/// `password ` ` salt=...` as the file holds it.
fn parse_content(content: &str) -> (String, Option<String>) {
    match content.rfind(" salt=") {
        Some(i) => {
            let rest = &content[i + " salt=".len()..];
            let salt = rest.rsplit_once(" ident=").map_or(rest, |(s, _)| s);
            (content[..i].to_string(), Some(salt.to_string()))
        }
        None => (content.to_string(), None),
    }
}

/// Where a relative password file lives: next to the playbook.
fn password_path(state: &State, path: &str) -> PathBuf {
    let p = PathBuf::from(super::home_expand(path));
    if p.is_absolute() {
        return p;
    }
    match state
        .lookup("playbook_dir")
        .and_then(|d| d.as_str().map(PathBuf::from))
    {
        Some(dir) => dir.join(p),
        None => p,
    }
}

fn write_password_file(path: &Path, content: &str) -> Result<(), Error> {
    use std::io::Write as _;
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
    let io = |e: std::io::Error| {
        err(format!(
            "password lookup: could not write {}: {e}",
            path.display()
        ))
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    f.write_all(format!("{content}\n").as_bytes()).map_err(io)
}

/// The `password` lookup for one term.
pub(super) fn password_lookup(state: &State, term: &str, kwargs: &Kwargs) -> Result<Value, Error> {
    let p = password_params(term, kwargs)?;
    let scheme = p.encrypt.as_deref().map(Scheme::parse).transpose()?;
    let path = password_path(state, &p.path);
    let discard = path == Path::new("/dev/null");
    let stored = if discard {
        None
    } else {
        match std::fs::read_to_string(&path) {
            Ok(text) => Some(text.trim_end().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(err(format!(
                    "password lookup: could not read {}: {e}",
                    path.display()
                )))
            }
        }
    };
    let mut changed = stored.is_none();
    let (password, mut salt) = match stored {
        Some(text) => parse_content(&text),
        None => (
            random_chars(&candidate_chars(&p.chars), p.length, p.seed.as_deref()),
            None,
        ),
    };
    if scheme.is_some() && salt.is_none() {
        salt = Some(random_salt(16));
        changed = true;
    }
    if changed && !discard {
        let content = match &salt {
            Some(s) => format!("{password} salt={s}"),
            None => password.clone(),
        };
        write_password_file(&path, &content)?;
    }
    match scheme {
        Some(scheme) => hash(scheme, &password, salt.as_deref(), None).map(Value::from),
        None => Ok(Value::from(password)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha_crypt_matches_the_reference_vectors() {
        // The examples of the SHA-crypt specification.
        assert_eq!(
            sha_crypt(Scheme::Sha512, b"Hello world!", "saltstring", None),
            "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"
        );
        assert_eq!(
            sha_crypt(Scheme::Sha256, b"Hello world!", "saltstring", None),
            "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"
        );
        assert_eq!(
            sha_crypt(Scheme::Sha512, b"Hello world!", "saltstringsaltstring", Some(10000)),
            "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v."
        );
        // As passlib makes them (the filter: 5000 rounds are not written).
        assert_eq!(
            hash(Scheme::Sha256, "pw", Some("abc"), Some(5000)).expect("hash"),
            "$5$abc$/LKlXd6vuvdFX3oWbf2vGk3DgflzzsvOtMZsiOxqqY5"
        );
        assert_eq!(
            hash(Scheme::Sha512, "", Some("abc"), Some(1000)).expect("hash"),
            "$6$rounds=1000$abc$noBronbzNMcAtG61/dMHzc1H.fuLjHArF9.wCx8LbkVDMMEuChQCPee28tiPcXHL/CMNpCqo6OPTyoEpoCMsY/"
        );
        assert!(hash(Scheme::Sha512, "pw", Some("bad salt"), None).is_err());
        assert!(hash(Scheme::Sha512, "pw", None, Some(10)).is_err());
    }

    fn render(
        src: &str,
        vars: serde_json::Value,
    ) -> Result<String, crate::template::TemplateError> {
        let t = crate::template::Templar::new();
        let vars: crate::Map = serde_json::from_value(vars).expect("map");
        let scope = t.scope(std::sync::Arc::new(vars), Vec::new());
        t.render_string(src, &scope)
    }

    #[test]
    fn password_hash_filter_defaults_to_sha512_with_passlib_rounds() {
        let h = render(
            "{{ 'secret' | password_hash('sha512') }}",
            serde_json::json!({}),
        )
        .expect("render");
        assert!(h.starts_with("$6$rounds=656000$"), "{h}");
        assert_eq!(h.split('$').nth(3).map(str::len), Some(16), "salt");
        let h = render(
            "{{ 'pw' | password_hash('sha256', 'abc', rounds=5000) }}",
            serde_json::json!({}),
        )
        .expect("render");
        assert_eq!(h, "$5$abc$/LKlXd6vuvdFX3oWbf2vGk3DgflzzsvOtMZsiOxqqY5");
        assert!(render(
            "{{ 'pw' | password_hash('blowfish') }}",
            serde_json::json!({})
        )
        .is_err());
    }

    #[test]
    fn password_lookup_generates_and_keeps_passwords() {
        // /dev/null: a fresh default password (20 of letters, digits, .,:-_) each time.
        let a = render(
            "{{ lookup('password', '/dev/null') }}",
            serde_json::json!({}),
        )
        .expect("render");
        let b = render(
            "{{ lookup('password', '/dev/null') }}",
            serde_json::json!({}),
        )
        .expect("render");
        assert_eq!(a.chars().count(), 20);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".,:-_".contains(c)));
        assert_ne!(a, b);
        let d = render(
            "{{ lookup('password', '/dev/null length=8 chars=digits') }}",
            serde_json::json!({}),
        )
        .expect("render");
        assert_eq!(d.len(), 8);
        assert!(d.chars().all(|c| c.is_ascii_digit()), "{d}");
        let d = render(
            "{{ lookup('password', '/dev/null', length=5, chars=['ascii_lowercase']) }}",
            serde_json::json!({}),
        )
        .expect("render");
        assert!(
            d.len() == 5 && d.chars().all(|c| c.is_ascii_lowercase()),
            "{d}"
        );
        // A file: written once (0600, in a new 0700 directory), then read back.
        let dir = tempfile::tempdir().expect("tempdir");
        let vars = serde_json::json!({"playbook_dir": dir.path().to_str()});
        let first = render(
            "{{ lookup('password', 'creds/db length=12') }}",
            vars.clone(),
        )
        .expect("render");
        let again = render(
            "{{ lookup('password', 'creds/db length=12') }}",
            vars.clone(),
        )
        .expect("render");
        assert_eq!(first, again);
        let file = dir.path().join("creds/db");
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).expect("file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            std::fs::read_to_string(&file).expect("read"),
            format!("{first}\n")
        );
        // encrypt: the salt is kept beside the password, so the hash is stable.
        let h1 = render(
            "{{ lookup('password', 'creds/db encrypt=sha512_crypt') }}",
            vars.clone(),
        )
        .expect("render");
        let h2 = render(
            "{{ lookup('password', 'creds/db encrypt=sha512_crypt') }}",
            vars.clone(),
        )
        .expect("render");
        assert_eq!(h1, h2);
        assert!(h1.starts_with("$6$rounds=656000$"));
        let text = std::fs::read_to_string(&file).expect("read");
        assert!(text.starts_with(&format!("{first} salt=")), "{text}");
        assert!(render("{{ lookup('password', '/dev/null bogus=1') }}", vars).is_err());
    }
}
