//! Private key files as OpenSSH treats them: a key other users can read is
//! refused, a key with a passphrase is unlocked with a passphrase asked
//! once per run on the terminal (never echoed, never logged), and the
//! public half of a configured key is what `IdentitiesOnly` lets through
//! from an agent.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use russh::keys::ssh_key::{PrivateKey, PublicKey};

use crate::secret::Secret;

/// Passphrases given this run, by key file: every host using the key
/// shares the one answer. The lock is held while asking, so hosts that
/// connect at once ask once.
static PASSPHRASES: LazyLock<tokio::sync::Mutex<HashMap<PathBuf, Secret>>> =
    LazyLock::new(|| tokio::sync::Mutex::new(HashMap::new()));

/// How many times a wrong passphrase is asked again, as ssh does.
const ATTEMPTS: usize = 3;

/// Why `path` may not be used as a private key: other users can read it
/// (OpenSSH ignores such a key), or `None`.
pub(super) fn too_open(path: &Path) -> Option<String> {
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    if mode & 0o077 == 0 {
        return None;
    }
    Some(format!(
        "UNPROTECTED PRIVATE KEY FILE: permissions {mode:04o} for '{}' are too open; \
         private keys must not be accessible by others, so it is ignored (as ssh does). \
         Fix: chmod 600 it. Under WSL every file on /mnt/c looks 0777: copy the key into \
         ~/.ssh and chmod 600 it there, or mount /mnt/c with the `metadata` option \
         (/etc/wsl.conf: [automount] options = \"metadata\")",
        path.display()
    ))
}

/// The public key of a key file: its `.pub` file, else the public half
/// stored in the (possibly encrypted) OpenSSH private key.
pub(super) fn public_of(path: &Path) -> Option<PublicKey> {
    let mut public = path.as_os_str().to_owned();
    public.push(".pub");
    if let Ok(k) = russh::keys::load_public_key(PathBuf::from(public)) {
        return Some(k);
    }
    let text = std::fs::read_to_string(path).ok()?;
    PrivateKey::from_openssh(text.trim())
        .ok()
        .map(|k| k.public_key().clone())
}

/// An encrypted key file decrypted with this run's passphrase for it,
/// asked on the terminal if not yet known. The error says why not (no
/// terminal, wrong passphrases), naming the key.
pub(super) async fn unlock(path: &Path) -> Result<PrivateKey, String> {
    let mut known = PASSPHRASES.lock().await;
    if let Some(pass) = known.get(path) {
        if let Ok(key) = russh::keys::load_secret_key(path, Some(pass.expose())) {
            return Ok(key);
        }
    }
    for _ in 0..ATTEMPTS {
        let prompt = format!("Enter passphrase for key '{}': ", path.display());
        let answer = tokio::task::spawn_blocking(move || rpassword::prompt_password(prompt))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
        let pass = match answer {
            Ok(p) => Secret::new(p),
            Err(e) => {
                return Err(format!(
                    "it has a passphrase, no ssh-agent holds it, and there is no terminal to ask for it ({e}); \
                     add it to an agent (ssh-add {}) or run drover from a terminal",
                    path.display()
                ))
            }
        };
        match russh::keys::load_secret_key(path, Some(pass.expose())) {
            Ok(key) => {
                known.insert(path.to_path_buf(), pass);
                return Ok(key);
            }
            Err(e) => tracing::debug!("key {}: passphrase not accepted: {e}", path.display()),
        }
    }
    Err(format!("{ATTEMPTS} wrong passphrases"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_others_can_read_is_refused_with_the_wsl_fix() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("id");
        std::fs::write(&key, "x").expect("write");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert_eq!(too_open(&key), None);
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let why = too_open(&key).expect("refused");
        assert!(why.contains("UNPROTECTED PRIVATE KEY FILE"), "{why}");
        assert!(why.contains("permissions 0777"), "{why}");
        assert!(why.contains("/mnt/c") && why.contains("metadata"), "{why}");
    }
}
