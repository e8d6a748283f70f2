//! ansible.cfg on the command line: the settings of the file and the
//! `ANSIBLE_*` variables fill in what the command's flags leave unset (a
//! flag wins over both), and `drover config` shows the effective settings
//! and where each came from.

use std::path::Path;

use clap::Args;

use super::{say, say_err, Command, ConnArgs, OutputArg, VaultArgs};
use crate::config::{Context, Origin, Settings};
use crate::error::Error;

/// `drover config`.
#[derive(Args, Debug)]
pub(super) struct ConfigArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputArg::Human)]
    output: OutputArg,
}

/// Find and read the configuration of this run, for the commands that use
/// it; the warnings finding it gave are said here, once.
pub(super) fn load(cmd: &Command) -> Result<Option<Settings>, Error> {
    if !matches!(
        cmd,
        Command::Apply(_) | Command::Ping(_) | Command::Inventory(_) | Command::Config(_)
    ) {
        return Ok(None);
    }
    let cx = Context::process();
    let found = crate::config::find(&cx);
    for w in &found.warnings {
        say_err(&format!("[WARNING]: {w}"));
    }
    Settings::load(&cx, found.path.as_deref())
        .map(Some)
        .map_err(|e| Error::Invalid(e.to_string()))
}

/// Fill in the command's arguments from the settings where no flag set them.
pub(super) fn complete(cmd: &mut Command, s: &Settings) {
    match cmd {
        Command::Apply(a) => {
            complete_conn(&mut a.conn, s);
            if s.become_.as_ref().is_some_and(|b| b.value) {
                a.become_ = true;
            }
            if a.become_user.is_none() {
                a.become_user = s.become_user.as_ref().map(|u| u.value.clone());
            }
            if a.become_method.is_none() {
                a.become_method = s.become_method.as_ref().map(|m| m.value.clone());
            }
            if let Some(r) = &s.roles_path {
                crate::playbook::roles::set_roles_path(&r.value);
            }
            if let Some(c) = &s.collections_path {
                crate::playbook::roles::set_collections_path(&c.value);
            }
        }
        Command::Ping(p) => complete_conn(&mut p.conn, s),
        Command::Inventory(i) => {
            if i.inventory.is_none() {
                i.inventory = s.inventory.as_ref().map(|p| p.value.clone());
            }
            complete_vault(&mut i.vault, s);
        }
        _ => {}
    }
}

fn complete_conn(conn: &mut ConnArgs, s: &Settings) {
    if conn.inventory.is_none() {
        conn.inventory = s.inventory.as_ref().map(|p| p.value.clone());
    }
    if conn.forks.is_none() {
        conn.forks = s.forks.as_ref().map(|f| f.value);
    }
    if conn.private_key.is_none() {
        conn.private_key = s.private_key_file.as_ref().map(|p| p.value.clone());
    }
    if conn.timeout.is_none() {
        conn.timeout = s.timeout.as_ref().map(|t| t.value);
    }
    // Off means ssh's StrictHostKeyChecking=no, which drover takes as
    // accept-new: a changed key is still refused.
    if conn.host_key_checking.is_none() && s.host_key_checking.as_ref().is_some_and(|h| !h.value) {
        conn.host_key_checking = Some(super::HostKeyCheckingArg::AcceptNew);
    }
    conn.remote_user = s.remote_user.as_ref().map(|u| u.value.clone());
    conn.ssh_args = s.ssh_args.as_ref().map(|a| a.value.clone());
    complete_vault(&mut conn.vault, s);
}

/// As ansible-playbook: `vault_identity_list` comes before the `--vault-id`s,
/// ansible.cfg's `vault_password_file` after the `--vault-password-file`s.
/// `ANSIBLE_VAULT_PASSWORD_FILE` is the flag's own environment variable
/// (so that `drover vault` reads it too): taken there, not again here.
fn complete_vault(vault: &mut VaultArgs, s: &Settings) {
    if let Some(ids) = &s.vault_identity_list {
        let mut all = ids.value.clone();
        all.append(&mut vault.vault_id);
        vault.vault_id = all;
    }
    if let Some(p) = s
        .vault_password_file
        .as_ref()
        .filter(|p| matches!(p.origin, Origin::File { .. }))
    {
        if !vault.vault_password_file.contains(&p.value) {
            vault.vault_password_file.push(p.value.clone());
        }
    }
}

/// `drover config`: each setting, its value and where it came from.
pub(super) fn show(args: &ConfigArgs, s: &Settings) -> Result<(), Error> {
    let rows = s.rows();
    match args.output {
        OutputArg::Json => {
            let settings: serde_json::Map<String, serde_json::Value> = rows
                .iter()
                .map(|(name, value, origin)| {
                    (
                        (*name).to_string(),
                        serde_json::json!({ "value": value, "origin": origin_json(origin) }),
                    )
                })
                .collect();
            let doc = serde_json::json!({
                "file": s.file.as_deref().map(Path::display).map(|d| d.to_string()),
                "settings": settings,
            });
            say(&serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
        OutputArg::Human => {
            say(&format!(
                "config file: {}",
                s.file
                    .as_deref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "(none found)".into())
            ));
            let width = rows.iter().map(|(n, _, _)| n.len()).max().unwrap_or(0);
            for (name, value, origin) in rows {
                // A value continued over several lines reads as one.
                let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
                say(&format!("{name:width$} = {value}  ({origin})"));
            }
        }
    }
    Ok(())
}

fn origin_json(o: &Origin) -> serde_json::Value {
    match o {
        Origin::Default => serde_json::json!({ "kind": "default" }),
        Origin::File { path, line } => {
            serde_json::json!({ "kind": "file", "path": path.display().to_string(), "line": line })
        }
        Origin::Env(name) => serde_json::json!({ "kind": "env", "name": name }),
    }
}
