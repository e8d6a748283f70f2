//! Ansible Vault, byte-compatible with `ansible-vault`: the 1.1 and 1.2
//! envelopes (`$ANSIBLE_VAULT;1.2;AES256;label`), AES256 payloads
//! (PBKDF2-HMAC-SHA256 key derivation, HMAC-SHA256 checked in constant time
//! before anything is decrypted, AES-256-CTR, PKCS#7 padding), the run's
//! vault passwords, and the `{"__ansible_vault": ...}` value a `!vault`
//! scalar loads as until it is used.
//!
//! Decrypted text is secret: everything [`reveal`] returns is remembered by
//! the run's redactor ([`crate::secret::run_redactor`]), so it is masked in
//! all output and logs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use aes::Aes256;
use ctr::cipher::{KeyIvInit, StreamCipher};
use hmac::{Hmac, KeyInit, Mac};
use pbkdf2::sha2::Sha256;

use crate::secret::Secret;

/// What every vault envelope starts with.
pub const HEADER: &str = "$ANSIBLE_VAULT";

/// The key a `!vault` value is kept under until it is used (Ansible's own
/// JSON form of a vaulted value).
pub const MARKER: &str = "__ansible_vault";

/// PBKDF2 rounds of ansible-vault's AES256 format.
const ROUNDS: u32 = 10_000;
/// Salt length ansible-vault writes.
const SALT_LEN: usize = 32;
/// AES-256 key, HMAC key, CTR initial counter.
const KEY_LEN: usize = 32;
const IV_LEN: usize = 16;
/// Hex digits per line in an envelope, as ansible-vault formats them.
const LINE: usize = 80;
/// The vault id of a password given without a label.
pub const DEFAULT_ID: &str = "default";

type Aes256Ctr = ctr::Ctr128BE<Aes256>;
type HmacSha256 = Hmac<Sha256>;

/// Why vault text could not be read, decrypted or written. Never holds a
/// password or plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    /// The text is not an ansible-vault envelope.
    #[error("not vault-encrypted data (no `$ANSIBLE_VAULT;` header)")]
    NotVault,
    /// The envelope or its payload is malformed.
    #[error("malformed vault data: {0}")]
    Format(&'static str),
    /// A cipher other than AES256.
    #[error("vault cipher '{0}' is not supported (only AES256)")]
    Cipher(String),
    /// No password was given to the run.
    #[error(
        "no vault password was given (use --vault-password-file, --vault-id or --ask-vault-pass)"
    )]
    NoSecret,
    /// No password given opens it: wrong password, or the data was altered.
    #[error("decryption failed: no vault password given opens it (wrong password, or the data was altered)")]
    Mismatch,
    /// The plaintext is not UTF-8 where text was needed.
    #[error("the decrypted data is not UTF-8 text")]
    NotText,
}

/// A vault password and the vault id it belongs to.
#[derive(Clone, Debug)]
pub struct VaultSecret {
    /// The vault id (`label` of `--vault-id label@source`), `default`
    /// without one.
    pub id: String,
    /// The password.
    pub password: Secret,
}

/// A parsed envelope: its header fields and its decoded payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// `1.1` or `1.2`.
    pub version: String,
    /// The vault id of a 1.2 envelope.
    pub id: Option<String>,
    salt: Vec<u8>,
    hmac: Vec<u8>,
    ciphertext: Vec<u8>,
}

/// Does `text` start as ansible-vault output?
pub fn is_encrypted(text: &str) -> bool {
    text.trim_start().starts_with(HEADER)
}

/// Does a local file start as ansible-vault output? (Only its start is
/// read.)
pub fn is_encrypted_file(path: &Path) -> bool {
    use std::io::Read as _;
    let mut head = Vec::with_capacity(64);
    std::fs::File::open(path)
        .and_then(|f| f.take(64).read_to_end(&mut head))
        .is_ok()
        && is_encrypted_bytes(&head)
}

/// Does raw file content start as ansible-vault output?
pub fn is_encrypted_bytes(data: &[u8]) -> bool {
    let start = data
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(data.len());
    data[start..].starts_with(HEADER.as_bytes())
}

fn unhex(text: &[u8]) -> Result<Vec<u8>, VaultError> {
    let digit = |c: u8| -> Result<u8, VaultError> {
        match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(VaultError::Format(
                "a non-hexadecimal character in the payload",
            )),
        }
    };
    if !text.len().is_multiple_of(2) {
        return Err(VaultError::Format("an odd number of hexadecimal digits"));
    }
    text.chunks(2)
        .map(|p| Ok(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

fn hex(data: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(data.len() * 2);
    for b in data {
        let _ = write!(s, "{b:02x}");
    }
    s
}

impl Envelope {
    /// Parse an envelope as ansible-vault writes it: the header line, then
    /// the hexlified payload over any number of lines.
    pub fn parse(text: &str) -> Result<Envelope, VaultError> {
        let text = text.trim_start();
        let mut lines = text.lines();
        let header = lines.next().ok_or(VaultError::NotVault)?.trim();
        let fields: Vec<&str> = header.split(';').map(str::trim).collect();
        if fields.first() != Some(&HEADER) {
            return Err(VaultError::NotVault);
        }
        if fields.len() < 3 {
            return Err(VaultError::Format("the header has no version or cipher"));
        }
        let version = fields[1].to_string();
        if fields[2] != "AES256" {
            return Err(VaultError::Cipher(fields[2].to_string()));
        }
        let id = fields.get(3).map(|s| s.to_string());
        let body: Vec<u8> = lines.flat_map(|l| l.trim().bytes()).collect();
        let inner = unhex(&body)?;
        let mut parts = inner.splitn(3, |b| *b == b'\n');
        let (Some(salt), Some(hmac), Some(ciphertext)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(VaultError::Format(
                "the payload is not salt, HMAC and ciphertext",
            ));
        };
        Ok(Envelope {
            version,
            id,
            salt: unhex(salt)?,
            hmac: unhex(hmac)?,
            ciphertext: unhex(ciphertext)?,
        })
    }

    /// Decrypt with one password: `None` when the HMAC does not match.
    fn open(&self, password: &Secret) -> Option<Vec<u8>> {
        let keys = derive(password, &self.salt);
        let (aes_key, rest) = keys.split_at(KEY_LEN);
        let (mac_key, iv) = rest.split_at(KEY_LEN);
        let mut mac = HmacSha256::new_from_slice(mac_key).ok()?;
        mac.update(&self.ciphertext);
        // Constant-time comparison, before any byte is decrypted.
        mac.verify_slice(&self.hmac).ok()?;
        let mut data = self.ciphertext.clone();
        Aes256Ctr::new_from_slices(aes_key, iv)
            .ok()?
            .apply_keystream(&mut data);
        unpad(data)
    }

    /// Decrypt with the first of `secrets` that opens it; the one whose id
    /// matches the envelope's is tried first, as ansible-vault does.
    pub fn decrypt(&self, secrets: &[VaultSecret]) -> Result<Vec<u8>, VaultError> {
        self.decrypt_with(secrets).map(|(plain, _)| plain)
    }

    /// [`Envelope::decrypt`], also giving the password that opened it
    /// (`vault edit` encrypts the edited text again with it).
    ///
    /// ansible-vault's outcome is the same: its HMAC lets only the right
    /// password through, whatever the order; trying the labelled one first
    /// saves the other PBKDF2 rounds.
    pub fn decrypt_with<'a>(
        &self,
        secrets: &'a [VaultSecret],
    ) -> Result<(Vec<u8>, &'a VaultSecret), VaultError> {
        if secrets.is_empty() {
            return Err(VaultError::NoSecret);
        }
        let first = secrets.iter().filter(|s| Some(&s.id) == self.id.as_ref());
        let rest = secrets.iter().filter(|s| Some(&s.id) != self.id.as_ref());
        first
            .chain(rest)
            .find_map(|s| self.open(&s.password).map(|plain| (plain, s)))
            .ok_or(VaultError::Mismatch)
    }
}

fn derive(password: &Secret, salt: &[u8]) -> [u8; 2 * KEY_LEN + IV_LEN] {
    let mut out = [0u8; 2 * KEY_LEN + IV_LEN];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.expose().as_bytes(), salt, ROUNDS, &mut out);
    out
}

fn unpad(mut data: Vec<u8>) -> Option<Vec<u8>> {
    let n = usize::from(*data.last()?);
    if n == 0 || n > 16 || n > data.len() {
        return None;
    }
    if !data[data.len() - n..].iter().all(|b| usize::from(*b) == n) {
        return None;
    }
    data.truncate(data.len() - n);
    Some(data)
}

/// Decrypt an envelope with any of `secrets`.
pub fn decrypt(text: &str, secrets: &[VaultSecret]) -> Result<Vec<u8>, VaultError> {
    Envelope::parse(text)?.decrypt(secrets)
}

/// Encrypt `plaintext` as ansible-vault does, with a random salt; a vault
/// id other than `default` makes a 1.2 envelope.
pub fn encrypt(plaintext: &[u8], password: &Secret, id: Option<&str>) -> String {
    let mut salt = [0u8; SALT_LEN];
    rand::Rng::fill(&mut rand::rng(), &mut salt[..]);
    encrypt_with_salt(plaintext, password, id, &salt)
}

/// [`encrypt`] with a given salt (tests, and reproducible output).
pub fn encrypt_with_salt(
    plaintext: &[u8],
    password: &Secret,
    id: Option<&str>,
    salt: &[u8],
) -> String {
    let keys = derive(password, salt);
    let (aes_key, rest) = keys.split_at(KEY_LEN);
    let (mac_key, iv) = rest.split_at(KEY_LEN);
    let pad = 16 - plaintext.len() % 16;
    let mut data = plaintext.to_vec();
    data.extend(std::iter::repeat_n(pad as u8, pad));
    // Both lengths are the constants above: these cannot fail.
    if let Ok(mut c) = Aes256Ctr::new_from_slices(aes_key, iv) {
        c.apply_keystream(&mut data);
    }
    let tag = match HmacSha256::new_from_slice(mac_key) {
        Ok(mut mac) => {
            mac.update(&data);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    };
    let inner = format!("{}\n{}\n{}", hex(salt), hex(&tag), hex(&data));
    let body = hex(inner.as_bytes());
    let mut out = match id.filter(|i| *i != DEFAULT_ID) {
        Some(id) => format!("{HEADER};1.2;AES256;{id}"),
        None => format!("{HEADER};1.1;AES256"),
    };
    for chunk in body.as_bytes().chunks(LINE) {
        out.push('\n');
        out.push_str(&String::from_utf8_lossy(chunk));
    }
    out.push('\n');
    out
}

/// The passwords of this run, set once by the command line before
/// anything is loaded.
static SECRETS: RwLock<Vec<VaultSecret>> = RwLock::new(Vec::new());

/// Decryptions already done, by envelope text: PBKDF2 is slow on purpose
/// and a `!vault` variable is used by every host and task.
static CACHE: Mutex<Option<HashMap<String, String>>> = Mutex::new(None);

/// Set the run's vault passwords.
pub fn set_secrets(secrets: Vec<VaultSecret>) {
    for s in &secrets {
        crate::secret::run_redactor().add(&s.password);
    }
    *SECRETS.write().unwrap_or_else(|e| e.into_inner()) = secrets;
}

/// The run's vault passwords.
pub fn secrets() -> Vec<VaultSecret> {
    SECRETS.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Decrypt vault text with the run's passwords, as text, remembering the
/// plaintext as a secret.
pub fn reveal(text: &str) -> Result<String, VaultError> {
    let key = text.trim().to_string();
    if let Some(hit) = CACHE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .and_then(|c| c.get(&key))
    {
        return Ok(hit.clone());
    }
    let plain = String::from_utf8(decrypt(text, &secrets())?).map_err(|_| VaultError::NotText)?;
    remember(&plain);
    CACHE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashMap::new)
        .insert(key, plain.clone());
    Ok(plain)
}

/// Mask `plain` in all output from now on: the whole text, and each of
/// its longer lines (output may show a multi-line secret line by line;
/// short lines such as `---` would mask ordinary output).
pub fn remember(plain: &str) {
    let r = crate::secret::run_redactor();
    let whole = plain.trim_end_matches(['\n', '\r']);
    r.add(&Secret::new(whole));
    if whole.contains('\n') {
        for line in whole.lines().map(str::trim).filter(|l| l.len() >= 6) {
            r.add(&Secret::new(line));
        }
    }
}

/// Mask every string inside a value that came out of a decrypted file
/// (and numbers long enough to be a PIN; never `true` or `null`).
pub fn remember_value(value: &crate::Value) {
    match value {
        crate::Value::String(s) => remember(s),
        crate::Value::Array(items) => items.iter().for_each(remember_value),
        crate::Value::Object(map) => map.values().for_each(remember_value),
        crate::Value::Number(n) if n.to_string().len() >= 4 => remember(&n.to_string()),
        _ => {}
    }
}

/// The envelope text of a `!vault` value as it was loaded.
pub fn marker_text(map: &crate::Map) -> Option<&str> {
    if map.len() != 1 {
        return None;
    }
    map.get(MARKER)?.as_str()
}

/// Why a vault password could not be had from its source.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The password file could not be read.
    #[error("cannot read vault password file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The password script could not be run or failed.
    #[error("vault password script {} {why}", path.display())]
    Script {
        /// The script.
        path: PathBuf,
        /// What happened (never its output).
        why: String,
    },
    /// The file or script gave an empty password.
    #[error("invalid vault password: {} gave an empty password", path.display())]
    Empty {
        /// The file or script.
        path: PathBuf,
    },
}

/// The password in a file, or printed by it when it is executable (called
/// with `--vault-id ID` when its name ends in `-client`, as Ansible does).
/// A file's surrounding whitespace is dropped, a script's line endings.
pub fn password_from(path: &Path, id: &str) -> Result<VaultSecret, PasswordError> {
    use std::os::unix::fs::PermissionsExt as _;
    let read_err = |source| PasswordError::Read {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read_err)?;
    let executable = meta.is_file() && meta.permissions().mode() & 0o111 != 0;
    let password = if executable {
        let script = |why: String| PasswordError::Script {
            path: path.to_path_buf(),
            why,
        };
        let mut cmd = std::process::Command::new(path);
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        if stem.ends_with("-client") {
            cmd.arg("--vault-id").arg(id);
        }
        // stderr is left to the terminal: a script may prompt on it.
        let out = cmd
            .stdin(std::process::Stdio::inherit())
            .stderr(std::process::Stdio::inherit())
            .output()
            .map_err(|e| script(format!("could not be run: {e}")))?;
        if !out.status.success() {
            return Err(script(format!("failed ({})", out.status)));
        }
        let text = String::from_utf8(out.stdout)
            .map_err(|_| script("printed a password that is not UTF-8".into()))?;
        text.trim_matches(['\r', '\n']).to_string()
    } else {
        let data = std::fs::read(path).map_err(read_err)?;
        let text = String::from_utf8(data).map_err(|_| {
            read_err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "not UTF-8 text",
            ))
        })?;
        text.trim().to_string()
    };
    if password.is_empty() {
        return Err(PasswordError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(VaultSecret {
        id: id.to_string(),
        password: Secret::new(password),
    })
}

/// A `--vault-id` value split into its id and source: `label@source`, or a
/// source alone (id `default`).
pub fn split_vault_id(arg: &str) -> (&str, &str) {
    match arg.split_once('@') {
        Some((id, source)) if !id.is_empty() => (id, source),
        Some((_, source)) => (DEFAULT_ID, source),
        None => (DEFAULT_ID, arg),
    }
}

/// A vault-encrypted file that could not be decrypted: in Ansible's words
/// where Ansible has them (copy's and template's tests check them).
#[derive(Debug, Clone)]
pub struct FileError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub source: VaultError,
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = self.path.display();
        match &self.source {
            VaultError::NoSecret => write!(
                f,
                "A vault password or secret must be specified to decrypt {path}"
            ),
            VaultError::Mismatch => write!(
                f,
                "Decryption failed (no vault secrets were found that could decrypt) on {path}"
            ),
            other => write!(f, "{path}: cannot decrypt this ansible-vault file: {other}"),
        }
    }
}

impl std::error::Error for FileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// The content of a local file, decrypted when it is vault-encrypted.
pub fn read_file(path: &Path) -> std::io::Result<Result<Vec<u8>, FileError>> {
    let data = std::fs::read(path)?;
    Ok(decrypt_file_content(data, path))
}

/// `data` (a file's bytes) decrypted when it is vault-encrypted, as is
/// otherwise. Decrypted text is remembered as a secret.
pub fn decrypt_file_content(data: Vec<u8>, path: &Path) -> Result<Vec<u8>, FileError> {
    if !is_encrypted_bytes(&data) {
        return Ok(data);
    }
    let err = |source| FileError {
        path: path.to_path_buf(),
        source,
    };
    let text = std::str::from_utf8(&data).map_err(|_| err(VaultError::Format("not ASCII")))?;
    let plain = decrypt(text, &secrets()).map_err(err)?;
    if let Ok(s) = std::str::from_utf8(&plain) {
        remember(s);
    }
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pw(p: &str) -> Vec<VaultSecret> {
        vec![VaultSecret {
            id: DEFAULT_ID.into(),
            password: Secret::new(p),
        }]
    }

    /// Made by ansible-vault 2.19 (`ansible-vault encrypt
    /// --vault-password-file pw` of `drover vault vector`, password
    /// `correct horse`).
    const V11: &str = "$ANSIBLE_VAULT;1.1;AES256\n\
        66663565656265326363346438636663353037313037623532336161323364383164666338653634\n\
        3562663464643062623965333533633963663730373131390a616433323864306162306464633461\n\
        37393834623963623862303566313635306535323565333061383838363962633832373130323834\n\
        3434303764346366610a653736363362663932323938336165383939386266363831376562663263\n\
        66373731343335656339646239363964353863633766383961636338343931663137\n";

    /// Made by ansible-vault 2.19 with `--vault-id lab@pw` (1.2, label lab).
    const V12: &str = "$ANSIBLE_VAULT;1.2;AES256;lab\n\
        63646162336330326132663762396236323563376662613032343063626631326465653236313031\n\
        6634653636356263366531393662363235616361643538320a663038333735363136396437613864\n\
        64303566383662633836363934376661376265316538373263373337346334303264626236653538\n\
        6430383562393064330a613162353933316430316430663663386335626638613336613538303633\n\
        30363961613333656261356230303533626164383332383932666338376662646431\n";

    #[test]
    fn ansible_vault_1_1_vector_decrypts() {
        let plain = decrypt(V11, &pw("correct horse")).expect("decrypts");
        assert_eq!(plain, b"drover vault vector");
    }

    #[test]
    fn ansible_vault_1_2_vector_decrypts_and_names_its_id() {
        let env = Envelope::parse(V12).expect("parses");
        assert_eq!(env.version, "1.2");
        assert_eq!(env.id.as_deref(), Some("lab"));
        assert_eq!(
            env.decrypt(&pw("correct horse")).expect("decrypts"),
            b"drover vault vector"
        );
    }

    #[test]
    fn templating_target_vector_decrypts() {
        // The templating target's value, `{{ "not trusted" }}` under
        // password `blarblar`.
        let text = "$ANSIBLE_VAULT;1.1;AES256\n\
            36306639316132393663356162643765396231396462623962373832643539306635356639366633\n\
            6234303731383636623165633330653435336130613361370a373931613335353762376433636263\n\
            35363536613933396532636430646337393932393166396133613666386433353932373063356235\n\
            3666336365616535610a636534333332633930326331353533626332363263363666373730386264\n\
            31643561353465613030343632663036313963363634663231393665316437646530\n";
        let plain = decrypt(text, &pw("blarblar")).expect("decrypts");
        assert_eq!(plain, b"{{ \"not trusted\" }}");
    }

    #[test]
    fn wrong_password_and_tampering_are_refused() {
        assert_eq!(decrypt(V11, &pw("wrong")), Err(VaultError::Mismatch));
        assert_eq!(decrypt(V11, &[]), Err(VaultError::NoSecret));
        // Flip one hex digit of the ciphertext's hexlified form.
        let mut t = V11.to_string();
        let at = t.len() - 3;
        let c = if &t[at..at + 1] == "1" { "2" } else { "1" };
        t.replace_range(at..at + 1, c);
        assert!(decrypt(&t, &pw("correct horse")).is_err());
        assert_eq!(decrypt("hello", &pw("x")), Err(VaultError::NotVault));
        assert_eq!(
            decrypt("$ANSIBLE_VAULT;1.1;AES128\n6161\n", &pw("x")),
            Err(VaultError::Cipher("AES128".into()))
        );
        assert!(matches!(
            decrypt("$ANSIBLE_VAULT;1.1;AES256\nzz\n", &pw("x")),
            Err(VaultError::Format(_))
        ));
    }

    #[test]
    fn the_matching_vault_id_is_tried_first_and_any_other_still_opens() {
        let secrets = vec![
            VaultSecret {
                id: "other".into(),
                password: Secret::new("nope"),
            },
            VaultSecret {
                id: "x".into(),
                password: Secret::new("correct horse"),
            },
        ];
        assert!(decrypt(V12, &secrets).is_ok());
    }

    #[test]
    fn a_labelled_envelope_is_opened_with_its_own_label_first() {
        let secrets = vec![
            VaultSecret {
                id: "other".into(),
                password: Secret::new("correct horse"),
            },
            VaultSecret {
                id: "lab".into(),
                password: Secret::new("correct horse"),
            },
        ];
        let env = Envelope::parse(V12).expect("parses");
        let (_, used) = env.decrypt_with(&secrets).expect("opens");
        assert_eq!(used.id, "lab");
        let env = Envelope::parse(V11).expect("parses");
        let (_, used) = env.decrypt_with(&secrets).expect("opens");
        assert_eq!(used.id, "other", "no label: the order given");
    }

    #[test]
    fn encrypt_round_trips_and_formats_as_ansible_vault() {
        for plain in [&b""[..], b"a", b"0123456789abcdef", b"multi\nline\n"] {
            let text = encrypt(plain, &Secret::new("pw"), None);
            assert!(text.starts_with("$ANSIBLE_VAULT;1.1;AES256\n"));
            assert!(text.lines().skip(1).all(|l| l.len() <= LINE));
            assert!(text.ends_with('\n'));
            assert_eq!(decrypt(&text, &pw("pw")).expect("round trip"), plain);
        }
        let text = encrypt(b"x", &Secret::new("pw"), Some("lab"));
        assert!(text.starts_with("$ANSIBLE_VAULT;1.2;AES256;lab\n"));
    }

    #[test]
    fn password_files_and_scripts_are_read_as_ansible_reads_them() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("pw");
        std::fs::write(&file, "  correct horse \n\n").expect("write");
        let s = password_from(&file, "default").expect("file");
        assert_eq!(s.password.expose(), "correct horse");
        let script = dir.path().join("pw.sh");
        std::fs::write(&script, "#!/bin/sh\nprintf ' spaced \\r\\n'\n").expect("write");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let s = password_from(&script, "lab").expect("script");
        assert_eq!((s.id.as_str(), s.password.expose()), ("lab", " spaced "));
        let client = dir.path().join("pw-client.sh");
        std::fs::write(&client, "#!/bin/sh\necho \"$1=$2\"\n").expect("write");
        std::fs::set_permissions(&client, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let s = password_from(&client, "lab").expect("client");
        assert_eq!(s.password.expose(), "--vault-id=lab");
        let failing = dir.path().join("fail.sh");
        std::fs::write(&failing, "#!/bin/sh\necho hunter22; exit 3\n").expect("write");
        std::fs::set_permissions(&failing, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let e = password_from(&failing, "default")
            .expect_err("fails")
            .to_string();
        assert!(e.contains("fail.sh") && !e.contains("hunter22"), "{e}");
        std::fs::write(&file, "\n").expect("write");
        assert!(matches!(
            password_from(&file, "default"),
            Err(PasswordError::Empty { .. })
        ));
        assert_eq!(split_vault_id("lab@prompt"), ("lab", "prompt"));
        assert_eq!(split_vault_id("/x/pw"), ("default", "/x/pw"));
    }

    #[test]
    fn errors_never_hold_the_password_or_plaintext() {
        let text = encrypt(b"plain secret", &Secret::new("hunter22"), None);
        let e = decrypt(&text, &pw("hunter2")).expect_err("wrong");
        let msg = e.to_string();
        assert!(
            !msg.contains("hunter") && !msg.contains("plain secret"),
            "{msg}"
        );
    }
}
