//! The SSH transport (russh): one connection per host for the whole run,
//! channels multiplexed on it and closed after use.

use std::path::PathBuf;
use std::time::Duration;

use super::known_hosts::HostKeyChecking;
use crate::secret::Secret;

/// Everything needed to open a connection to one host.
#[derive(Debug, Clone)]
pub struct ConnectSpec {
    /// Inventory name, for messages.
    pub name: String,
    /// Address to connect to (`ansible_host`).
    pub address: String,
    /// Port (`ansible_port`, default 22).
    pub port: u16,
    /// Remote user (`ansible_user`).
    pub user: String,
    /// Private key files to try, in order.
    pub private_keys: Vec<PathBuf>,
    /// Try keys from ssh-agent (`SSH_AUTH_SOCK`).
    pub use_agent: bool,
    /// Password for password authentication (first contact).
    pub password: Option<Secret>,
    /// known_hosts file to check and learn into.
    pub known_hosts: PathBuf,
    /// How unknown hosts are treated.
    pub checking: HostKeyChecking,
    /// Limit for TCP connect + key exchange + auth.
    pub connect_timeout: Duration,
    /// Interval of SSH keepalives.
    pub keepalive: Duration,
}

/// Placeholder until the russh transport lands.
pub async fn connect(
    spec: &ConnectSpec,
) -> Result<std::sync::Arc<dyn super::Transport>, super::TransportError> {
    Err(super::TransportError::Connect {
        addr: format!("{}:{}", spec.address, spec.port),
        reason: "ssh transport not built yet".into(),
    })
}
