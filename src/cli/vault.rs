//! `drover vault encrypt|decrypt|view|edit|encrypt_string|rekey`:
//! ansible-vault's everyday commands, writing what ansible-vault reads and
//! reading what it writes.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use super::{prompt, vault_secrets, VaultArgs};
use crate::error::Error;
use crate::secret::Secret;
use crate::vault::{self, VaultSecret, DEFAULT_ID};

/// A `drover vault` command.
#[derive(Subcommand, Debug)]
pub(super) enum VaultAction {
    /// Encrypt files in place (or to --output; `-` is standard input).
    Encrypt(FilesArgs),
    /// Decrypt files in place (or to --output).
    Decrypt(FilesArgs),
    /// Print the decrypted content of files.
    View(FilesArgs),
    /// Edit encrypted files in $EDITOR; re-encrypted (same vault id) only
    /// when changed.
    Edit(EditArgs),
    /// Encrypt files again with a new password.
    Rekey(RekeyArgs),
    /// Encrypt strings as `!vault` YAML values.
    #[command(name = "encrypt_string", visible_alias = "encrypt-string")]
    EncryptString(StringArgs),
}

/// Files and where the result goes.
#[derive(Args, Debug)]
pub(super) struct FilesArgs {
    /// The files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Write here instead of in place (`-` is standard output).
    #[arg(long)]
    output: Option<PathBuf>,
    /// The vault id whose password encrypts.
    #[arg(long = "encrypt-vault-id", value_name = "ID")]
    encrypt_vault_id: Option<String>,
    #[command(flatten)]
    vault: VaultArgs,
}

/// Files to edit.
#[derive(Args, Debug)]
pub(super) struct EditArgs {
    /// The files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    #[command(flatten)]
    vault: VaultArgs,
}

/// Files to rekey, and the new password.
#[derive(Args, Debug)]
pub(super) struct RekeyArgs {
    /// The files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// The new password's file (or script); the files become vault 1.1.
    #[arg(long = "new-vault-password-file", value_name = "FILE")]
    new_vault_password_file: Option<PathBuf>,
    /// The new vault id and its password's source: LABEL@FILE,
    /// LABEL@SCRIPT or LABEL@prompt.
    #[arg(long = "new-vault-id", value_name = "ID")]
    new_vault_id: Option<String>,
    #[command(flatten)]
    vault: VaultArgs,
}

/// Strings to encrypt.
#[derive(Args, Debug)]
pub(super) struct StringArgs {
    /// The strings (standard input when none is given).
    strings: Vec<String>,
    /// The variable name for each string, in order.
    #[arg(short = 'n', long = "name")]
    name: Vec<String>,
    /// The vault id whose password encrypts.
    #[arg(long = "encrypt-vault-id", value_name = "ID")]
    encrypt_vault_id: Option<String>,
    #[command(flatten)]
    vault: VaultArgs,
}

/// Run a `drover vault` command.
pub(super) fn run(action: VaultAction) -> Result<(), Error> {
    match action {
        VaultAction::Encrypt(a) => {
            let secret = encrypting_secret(&a.vault, a.encrypt_vault_id.as_deref())?;
            for file in &a.files {
                let data = read(file)?;
                if vault::is_encrypted_bytes(&data) {
                    return Err(Error::Invalid(format!(
                        "{}: input is already encrypted",
                        file.display()
                    )));
                }
                let text = vault::encrypt(&data, &secret.password, Some(&secret.id));
                write(a.output.as_deref().unwrap_or(file), text.as_bytes())?;
            }
            super::say_err("Encryption successful");
            Ok(())
        }
        VaultAction::Decrypt(a) | VaultAction::View(a) if a.files.is_empty() => {
            Err(Error::Invalid("no file given".into()))
        }
        VaultAction::Decrypt(a) => {
            let secrets = opening_secrets(&a.vault)?;
            for file in &a.files {
                let plain = open(file, &secrets)?;
                write(a.output.as_deref().unwrap_or(file), &plain)?;
            }
            super::say_err("Decryption successful");
            Ok(())
        }
        VaultAction::View(a) => {
            let secrets = opening_secrets(&a.vault)?;
            for file in &a.files {
                let plain = open(file, &secrets)?;
                write(Path::new("-"), &plain)?;
            }
            Ok(())
        }
        VaultAction::Edit(a) => {
            let secrets = opening_secrets(&a.vault)?;
            for file in &a.files {
                edit(file, &secrets)?;
            }
            Ok(())
        }
        VaultAction::Rekey(a) => {
            let secrets = opening_secrets(&a.vault)?;
            let new = new_secret(&a)?;
            // Every file is opened before any is written: a wrong password
            // leaves all of them as they were.
            let mut plain = Vec::new();
            for file in &a.files {
                let path = real(file)?;
                let text = open(&path, &secrets)?;
                plain.push((path, text));
            }
            for (path, text) in plain {
                let out = vault::encrypt(&text, &new.password, Some(&new.id));
                write(&path, out.as_bytes())?;
            }
            super::say_err("Rekey successful");
            Ok(())
        }
        VaultAction::EncryptString(a) => {
            let secret = encrypting_secret(&a.vault, a.encrypt_vault_id.as_deref())?;
            let strings = if a.strings.is_empty() {
                let data = read(Path::new("-"))?;
                vec![String::from_utf8(data)
                    .map_err(|_| Error::Invalid("standard input is not UTF-8 text".into()))?]
            } else {
                a.strings.clone()
            };
            let mut out = String::new();
            for (i, s) in strings.iter().enumerate() {
                let text = vault::encrypt(s.as_bytes(), &secret.password, Some(&secret.id));
                match a.name.get(i) {
                    Some(name) => out.push_str(&format!("{name}: !vault |\n")),
                    None => out.push_str("!vault |\n"),
                }
                for line in text.lines() {
                    out.push_str("          ");
                    out.push_str(line);
                    out.push('\n');
                }
            }
            write(Path::new("-"), out.as_bytes())?;
            super::say_err("Encryption successful");
            Ok(())
        }
    }
}

/// The password that encrypts: the one of `--encrypt-vault-id`, else the
/// only one given, else asked for twice. Several without
/// `--encrypt-vault-id` are refused, as ansible-vault refuses them.
fn encrypting_secret(args: &VaultArgs, id: Option<&str>) -> Result<VaultSecret, Error> {
    let secrets = vault_secrets(args)?;
    if let Some(id) = id {
        return secrets
            .into_iter()
            .find(|s| s.id == id)
            .ok_or_else(|| Error::Invalid(format!("no vault password given for vault id '{id}'")));
    }
    if secrets.len() > 1 {
        let ids: Vec<&str> = secrets.iter().map(|s| s.id.as_str()).collect();
        return Err(Error::Invalid(format!(
            "the vault ids {} can all encrypt: choose one with --encrypt-vault-id",
            ids.join(",")
        )));
    }
    if let Some(first) = secrets.into_iter().next() {
        return Ok(first);
    }
    ask_new(DEFAULT_ID)
}

/// A new password, asked for twice.
fn ask_new(id: &str) -> Result<VaultSecret, Error> {
    let a = prompt("New Vault password")?;
    let b = prompt("Confirm New Vault password")?;
    if a != b {
        return Err(Error::Invalid("the passwords do not match".into()));
    }
    if a.expose().is_empty() {
        return Err(Error::Invalid("invalid vault password: empty".into()));
    }
    Ok(VaultSecret {
        id: id.into(),
        password: a,
    })
}

/// The password `rekey` encrypts with: `--new-vault-id`, else
/// `--new-vault-password-file`, else asked for (as ansible-vault).
fn new_secret(a: &RekeyArgs) -> Result<VaultSecret, Error> {
    let from_file = |path: &Path, id: &str| {
        vault::password_from(path, id).map_err(|e| Error::Invalid(e.to_string()))
    };
    if let Some(arg) = &a.new_vault_id {
        let (id, source) = vault::split_vault_id(arg);
        return if source == "prompt" {
            ask_new(id)
        } else {
            from_file(Path::new(source), id)
        };
    }
    match &a.new_vault_password_file {
        Some(path) => from_file(path, DEFAULT_ID),
        None => ask_new(DEFAULT_ID),
    }
}

/// A symlinked vault file is edited or rekeyed where it points, as
/// ansible-vault does, not replaced by a plain file.
fn real(file: &Path) -> Result<PathBuf, Error> {
    std::fs::canonicalize(file)
        .map_err(|e| Error::Invalid(format!("cannot read {}: {e}", file.display())))
}

/// `vault edit` of one file: the plaintext goes to a 0600 file in a new
/// 0700 directory, $EDITOR (else `vi`) runs on it, and the file is
/// encrypted again, with the password that opened it and the vault id of
/// its header, only when the text changed. The plaintext copy is
/// overwritten and removed whatever happens.
fn edit(file: &Path, secrets: &[VaultSecret]) -> Result<(), Error> {
    let path = real(file)?;
    let data = read(&path)?;
    let not_vault = || {
        Error::Invalid(format!(
            "{}: input is not vault encrypted data",
            file.display()
        ))
    };
    let text = std::str::from_utf8(&data)
        .ok()
        .filter(|t| vault::is_encrypted(t))
        .ok_or_else(not_vault)?;
    let failed = |source| {
        Error::Invalid(
            vault::FileError {
                path: file.to_path_buf(),
                source,
            }
            .to_string(),
        )
    };
    let envelope = vault::Envelope::parse(text).map_err(failed)?;
    let (plain, used) = envelope.decrypt_with(secrets).map_err(failed)?;
    let scratch = Scratch::new()?;
    // The same extension, for the editor's syntax highlighting.
    let name = match path.extension().and_then(|e| e.to_str()) {
        Some(ext) => format!("edit.{ext}"),
        None => "edit".to_string(),
    };
    let tmp = scratch.0.join(name);
    scratch.create(&tmp, &plain)?;
    let editor = std::env::var("EDITOR")
        .ok()
        .filter(|e| !e.trim().is_empty())
        .unwrap_or_else(|| "vi".to_string());
    let mut words = crate::shlex::words(&editor)
        .map_err(|e| Error::Invalid(format!("EDITOR ({editor}): {e}")))?
        .into_iter();
    let program = words
        .next()
        .ok_or_else(|| Error::Invalid("EDITOR is empty".into()))?;
    let status = std::process::Command::new(&program)
        .args(words)
        .arg(&tmp)
        .status()
        .map_err(|e| Error::Invalid(format!("cannot run the editor {program}: {e}")))?;
    // An editor that fails (vi's `:cq`) means "do not save", as for git.
    if !status.success() {
        return Err(Error::Invalid(format!(
            "the editor {program} failed ({status}): {} left unchanged",
            file.display()
        )));
    }
    let edited = std::fs::read(&tmp)
        .map_err(|e| Error::Invalid(format!("cannot read the edited text: {e}")))?;
    if edited != plain {
        let id = envelope.id.as_deref().unwrap_or(DEFAULT_ID);
        let out = vault::encrypt(&edited, &used.password, Some(id));
        write(&path, out.as_bytes())?;
    }
    Ok(())
}

/// A private directory (0700) for a plaintext copy; on drop, each file in
/// it is overwritten with zeros and the directory removed.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Scratch, Error> {
        use std::os::unix::fs::DirBuilderExt as _;
        let base = std::env::temp_dir();
        for n in 0..100u32 {
            let dir = base.join(format!("drover-vault-{}-{n}", std::process::id()));
            match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => return Ok(Scratch(dir)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(Error::Invalid(format!(
                        "cannot create a private directory in {}: {e}",
                        base.display()
                    )))
                }
            }
        }
        Err(Error::Invalid(format!(
            "cannot create a private directory in {}",
            base.display()
        )))
    }

    /// A new 0600 file holding `data`.
    fn create(&self, path: &Path, data: &[u8]) -> Result<(), Error> {
        use std::os::unix::fs::OpenOptionsExt as _;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .and_then(|mut f| f.write_all(data))
            .map_err(|e| Error::Invalid(format!("cannot write {}: {e}", path.display())))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Ok(entries) = std::fs::read_dir(&self.0) {
            for entry in entries.flatten() {
                let p = entry.path();
                if let Ok(len) = std::fs::metadata(&p).map(|m| m.len()) {
                    let zeros = vec![0u8; usize::try_from(len).unwrap_or(0)];
                    let _ = std::fs::write(&p, zeros);
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The passwords that may open: those given, else one asked for.
fn opening_secrets(args: &VaultArgs) -> Result<Vec<VaultSecret>, Error> {
    let secrets = vault_secrets(args)?;
    if !secrets.is_empty() {
        return Ok(secrets);
    }
    Ok(vec![VaultSecret {
        id: DEFAULT_ID.into(),
        password: prompt("Vault password").map(|p| Secret::new(p.expose()))?,
    }])
}

fn open(file: &Path, secrets: &[VaultSecret]) -> Result<Vec<u8>, Error> {
    let data = read(file)?;
    let text = std::str::from_utf8(&data)
        .ok()
        .filter(|t| vault::is_encrypted(t))
        .ok_or_else(|| {
            Error::Invalid(format!(
                "{}: input is not vault encrypted data",
                file.display()
            ))
        })?;
    vault::decrypt(text, secrets).map_err(|e| {
        Error::Invalid(
            vault::FileError {
                path: file.to_path_buf(),
                source: e,
            }
            .to_string(),
        )
    })
}

fn read(file: &Path) -> Result<Vec<u8>, Error> {
    let mut data = Vec::new();
    let result = if file == Path::new("-") {
        std::io::stdin().read_to_end(&mut data).map(drop)
    } else {
        std::fs::read(file).map(|d| data = d)
    };
    result.map_err(|e| Error::Invalid(format!("cannot read {}: {e}", file.display())))?;
    Ok(data)
}

/// Write `data` to `file` (`-`: standard output); a file is replaced
/// whole, keeping its permissions (0600 when new, as ansible-vault).
fn write(file: &Path, data: &[u8]) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt as _;
    let fail = |e: std::io::Error| Error::Invalid(format!("cannot write {}: {e}", file.display()));
    if file == Path::new("-") {
        let mut out = std::io::stdout().lock();
        return out.write_all(data).and_then(|()| out.flush()).map_err(fail);
    }
    let mode = std::fs::metadata(file).map_or(0o600, |m| m.permissions().mode() & 0o7777);
    let dir = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile_in(dir).map_err(fail)?;
    tmp.1.write_all(data).map_err(fail)?;
    std::fs::set_permissions(&tmp.0, std::fs::Permissions::from_mode(mode)).map_err(fail)?;
    std::fs::rename(&tmp.0, file).map_err(fail)
}

/// A new file next to the target, created 0600.
fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    use std::os::unix::fs::OpenOptionsExt as _;
    for n in 0..100u32 {
        let path = dir.join(format!(".drover-vault-{}-{n}", std::process::id()));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(f) => return Ok((path, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("cannot create a temporary file"))
}
