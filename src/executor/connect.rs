//! Connections: one per host for the whole run, opened on first use and
//! shared by every task (and by tasks delegated to that host).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::OnceCell;

use super::Options;
use crate::inventory::{ssh_args_options, Inventory, ProxyOpt, SshArgOptions};
use crate::secret::Secret;
use crate::template::{Scope, Templar, TemplateError};
use crate::transport::known_hosts::HostKeyChecking;
use crate::transport::local::{LocalIn, LocalTransport};
use crate::transport::ssh::{self, ConnectSpec, Proxy};
use crate::transport::{Transport, TransportError};
use crate::Value;

/// Why a host's connection could not be had: the reason it is unreachable.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConnectError {
    /// A connection variable (`ansible_host`, `ansible_user`...) did not
    /// render.
    #[error("{name}: {source}")]
    Var {
        /// The variable.
        name: String,
        /// Why it did not render.
        source: TemplateError,
    },
    /// `ansible_port` is not a port number.
    #[error("ansible_port is not a port number: {0}")]
    Port(String),
    /// Connecting failed. Shared: every task waiting on the host's
    /// connection gets the same error.
    #[error(transparent)]
    Transport(Arc<TransportError>),
    /// A `ProxyJump` value that names no host.
    #[error("ProxyJump: not a [user@]host[:port] list: {0}")]
    Jump(String),
}

type Slot = Arc<OnceCell<Result<Arc<dyn Transport>, ConnectError>>>;

/// The run's connections, keyed by inventory host name.
#[derive(Default)]
pub struct Pool {
    slots: Mutex<HashMap<String, Slot>>,
    /// Where local connections run commands (the playbook's directory).
    local_dir: Option<std::path::PathBuf>,
    /// Jump host connections, shared by every host behind them.
    jumps: Arc<ssh::Jumps>,
}

impl Pool {
    /// A pool whose local connections run commands in `dir`.
    pub fn with_local_dir(dir: std::path::PathBuf) -> Pool {
        Pool {
            local_dir: Some(dir),
            ..Pool::default()
        }
    }

    /// The connection to `host`, opening it on first use. The error is
    /// the reason the host is unreachable.
    pub async fn get(
        &self,
        host: &str,
        spec: impl FnOnce() -> Result<Target, ConnectError>,
    ) -> Result<Arc<dyn Transport>, ConnectError> {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            slots.entry(host.to_string()).or_default().clone()
        };
        let local_dir = self.local_dir.clone();
        let jumps = self.jumps.clone();
        slot.get_or_init(|| async move {
            match spec()? {
                Target::Local => Ok(match local_dir {
                    Some(dir) => Arc::new(LocalIn(dir)) as Arc<dyn Transport>,
                    None => Arc::new(LocalTransport) as Arc<dyn Transport>,
                }),
                Target::Ssh(spec) => ssh::connect_in(&spec, jumps)
                    .await
                    .map(|t| Arc::new(t) as Arc<dyn Transport>)
                    .map_err(|e| ConnectError::Transport(Arc::new(e))),
            }
        })
        .await
        .clone()
    }

    /// Forget a host's connections (after one was found dead), those
    /// opened for tasks' own `remote_user`, `port` or `connection` too.
    pub fn forget(&self, host: &str) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.retain(|key, _| key != host && !key.starts_with(&format!("{host}{KEY_SEP}")));
    }

    /// Stop the commands running on every connected host and remove
    /// their temporary directories (an interrupted run).
    pub async fn stop_remote(&self) {
        let transports: Vec<Arc<dyn Transport>> = {
            let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            slots
                .values()
                .filter_map(|s| s.get().and_then(|t| t.as_ref().ok()).cloned())
                .collect()
        };
        futures::future::join_all(transports.into_iter().map(crate::transport::stop_shells)).await;
    }

    /// Close every connection.
    pub async fn close_all(&self) {
        let slots: Vec<Slot> = {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            slots.drain().map(|(_, s)| s).collect()
        };
        for s in slots {
            if let Some(Ok(t)) = s.get() {
                t.close().await;
            }
        }
        self.jumps.close_all().await;
    }
}

/// Separates a host's name from the task settings in a pool key.
const KEY_SEP: char = '\u{1f}';

/// What a task's (or play's) `remote_user`, `port` and `connection`
/// keywords ask of the connection, rendered. The host's variables
/// (`ansible_user`, `ansible_port`, `ansible_connection`) win over them,
/// as in Ansible.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ConnKeywords {
    /// `remote_user`.
    pub(crate) user: Option<String>,
    /// `port`.
    pub(crate) port: Option<u16>,
    /// `connection: local` (true) or `ssh`/`smart` (false).
    pub(crate) local: Option<bool>,
}

impl ConnKeywords {
    /// The pool key of `host`'s connection with these settings: the host's
    /// name alone when there are none, so that tasks without them share
    /// one connection.
    pub(crate) fn key(&self, host: &str) -> String {
        if *self == ConnKeywords::default() {
            return host.to_string();
        }
        format!(
            "{host}{KEY_SEP}{}{KEY_SEP}{}{KEY_SEP}{}",
            self.user.as_deref().unwrap_or(""),
            self.port.map(|p| p.to_string()).unwrap_or_default(),
            match self.local {
                Some(true) => "local",
                Some(false) => "ssh",
                None => "",
            }
        )
    }
}

/// How to reach a host.
pub enum Target {
    /// Run commands on the control machine.
    Local,
    /// Over SSH.
    Ssh(Box<ConnectSpec>),
}

fn var_str(templar: &Templar, scope: &Scope, name: &str) -> Result<Option<String>, ConnectError> {
    match scope.var(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match templar.render_value(v, scope) {
            Ok(Value::String(s)) => Ok(Some(s)),
            Ok(Value::Null) => Ok(None),
            Ok(other) => Ok(Some(other.to_string())),
            Err(source) => Err(ConnectError::Var {
                name: name.to_string(),
                source,
            }),
        },
    }
}

/// The OpenSSH options in a host's `ansible_ssh_args`,
/// `ansible_ssh_common_args` and `ansible_ssh_extra_args`.
pub(crate) fn ssh_args_of(templar: &Templar, scope: &Scope) -> Result<SshArgOptions, ConnectError> {
    let mut all = String::new();
    for n in [
        "ansible_ssh_args",
        "ansible_ssh_common_args",
        "ansible_ssh_extra_args",
    ] {
        if let Some(a) = var_str(templar, scope, n)? {
            all.push(' ');
            all.push_str(&a);
        }
    }
    Ok(ssh_args_options(&all))
}

/// Work out how to reach `host` from its variables and the command line.
pub(super) fn target_for(
    host: &str,
    inv: &Inventory,
    templar: &Templar,
    scope: &Scope,
    opts: &Options,
    keywords: &ConnKeywords,
) -> Result<Target, ConnectError> {
    let get = |n: &str| var_str(templar, scope, n);
    let connection = get("ansible_connection")?;
    let is_local_name =
        inv.hosts.get(host).is_none() && matches!(host, "localhost" | "127.0.0.1" | "::1");
    let local = match connection.as_deref() {
        Some(c) => c == "local",
        None => keywords.local.unwrap_or(is_local_name),
    };
    if local {
        return Ok(Target::Local);
    }
    let ssh_opts = ssh_args_of(templar, scope)?;
    let address = get("ansible_host")?
        .or_else(|| get("ansible_ssh_host").ok().flatten())
        .unwrap_or_else(|| host.to_string());
    let port = match get("ansible_port")?.or_else(|| get("ansible_ssh_port").ok().flatten()) {
        Some(p) => p.parse::<u16>().map_err(|_| ConnectError::Port(p))?,
        None => keywords.port.or(ssh_opts.port).unwrap_or(22),
    };
    // `-u` stays drover's override of everything; below it Ansible's
    // order: the host's variable, then the `remote_user` keyword.
    let user = match &opts.user {
        Some(u) => u.clone(),
        None => get("ansible_user")?
            .or_else(|| get("ansible_ssh_user").ok().flatten())
            .or(keywords.user.clone())
            .or(ssh_opts.user.clone())
            .unwrap_or_else(current_user),
    };
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let mut private_keys = Vec::new();
    if let Some(k) = &opts.private_key {
        private_keys.push(k.clone());
    }
    if let Some(k) = get("ansible_ssh_private_key_file")?
        .or_else(|| get("ansible_private_key_file").ok().flatten())
    {
        private_keys.push(expand_home(&k, &home));
    }
    if let Some(k) = &ssh_opts.identity {
        private_keys.push(k.clone());
    }
    if private_keys.is_empty() {
        for name in ["id_ed25519", "id_ecdsa", "id_rsa"] {
            let p = home.join(".ssh").join(name);
            if p.exists() {
                private_keys.push(p);
            }
        }
    }
    let password = match &opts.ssh_password {
        Some(p) => Some(p.clone()),
        None => get("ansible_password")?
            .or_else(|| get("ansible_ssh_pass").ok().flatten())
            .map(Secret::new),
    };
    let known_hosts = opts
        .known_hosts
        .clone()
        .or(ssh_opts.known_hosts.clone())
        .unwrap_or_else(|| crate::transport::known_hosts::default_path(&home));
    let checking = opts
        .host_key_checking
        .unwrap_or(match ssh_opts.strict.as_deref() {
            Some("accept-new") | Some("no") | Some("off") => HostKeyChecking::AcceptNew,
            _ => HostKeyChecking::Strict,
        });
    let mut spec = ConnectSpec {
        name: host.to_string(),
        address,
        port,
        user,
        private_keys,
        agent: ssh::AgentSource::Env,
        identities_only: false,
        proxy: None,
        host_key_alias: None,
        password,
        known_hosts,
        checking,
        connect_timeout: opts.connect_timeout,
        keepalive: Duration::from_secs(15),
    };
    spec.proxy = match &ssh_opts.proxy {
        None => None,
        Some(ProxyOpt::Command(cmd)) => Some(Proxy::Command(expand_tokens(cmd, host, &spec))),
        Some(ProxyOpt::Jump(hops)) => Some(Proxy::Jump(jump_hops(hops, &spec)?)),
    };
    Ok(Target::Ssh(Box::new(spec)))
}

/// The hops of a `ProxyJump` value (`[user@]host[:port]` or
/// `ssh://[user@]host[:port]`, comma-separated). Each hop is connected to
/// with the target's keys, agent, known_hosts and checking; a hop without
/// a user logs in as the local user, as ssh does.
fn jump_hops(value: &str, target: &ConnectSpec) -> Result<Vec<ConnectSpec>, ConnectError> {
    let bad = || ConnectError::Jump(value.to_string());
    value
        .split(',')
        .map(|hop| {
            let hop = hop.trim();
            let hop = hop.strip_prefix("ssh://").unwrap_or(hop);
            let (user, rest) = match hop.rsplit_once('@') {
                Some((u, r)) if !u.is_empty() => (Some(u.to_string()), r),
                Some(_) => return Err(bad()),
                None => (None, hop),
            };
            let (address, port) = split_host_port(rest).ok_or_else(bad)?;
            Ok(ConnectSpec {
                name: address.clone(),
                address,
                port,
                user: user.unwrap_or_else(current_user),
                proxy: None,
                host_key_alias: None,
                ..target.clone()
            })
        })
        .collect()
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn split_host_port(s: &str) -> Option<(String, u16)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => 22,
            None => return None,
        };
        return (!host.is_empty()).then(|| (host.to_string(), port));
    }
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, p.parse().ok()?),
        Some(_) => (s, 22),
        None => (s, 22),
    };
    let ok = !host.is_empty() && !host.contains(char::is_whitespace);
    ok.then(|| (host.to_string(), port))
}

/// ssh's `%` tokens in a `ProxyCommand`: `%h` the address, `%p` the port,
/// `%r` the user, `%n` the name as given (the inventory name), `%%`.
/// Unknown tokens are kept as written.
fn expand_tokens(cmd: &str, name: &str, spec: &ConnectSpec) -> String {
    let mut out = String::with_capacity(cmd.len());
    let mut chars = cmd.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('h') => out.push_str(&spec.address),
            Some('p') => out.push_str(&spec.port.to_string()),
            Some('r') => out.push_str(&spec.user),
            Some('n') => out.push_str(name),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

fn expand_home(path: &str, home: &std::path::Path) -> PathBuf {
    match path.strip_prefix("~/") {
        Some(rest) => home.join(rest),
        None => PathBuf::from(path),
    }
}

fn current_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "root".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Map;

    fn target_error(vars: &[(&str, &str)]) -> ConnectError {
        let templar = Templar::new();
        let vars: Map = vars
            .iter()
            .map(|(k, v)| (k.to_string(), Value::from(*v)))
            .collect();
        let scope = templar.scope(Arc::new(vars), Vec::new());
        let (inv, opts) = (Inventory::default(), Options::default());
        match target_for(
            "web1",
            &inv,
            &templar,
            &scope,
            &opts,
            &ConnKeywords::default(),
        ) {
            Ok(_) => panic!("expected an error"),
            Err(e) => e,
        }
    }

    #[test]
    fn connection_variable_errors_stay_typed() {
        let e = target_error(&[("ansible_port", "http")]);
        assert!(matches!(&e, ConnectError::Port(p) if p == "http"), "{e:?}");
        assert_eq!(e.to_string(), "ansible_port is not a port number: http");
        let e = target_error(&[("ansible_host", "{{ nowhere }}")]);
        assert!(
            matches!(&e, ConnectError::Var { name, source } if name == "ansible_host" && source.undefined.as_deref() == Some("nowhere")),
            "{e:?}"
        );
    }

    fn spec_of(vars: &[(&str, &str)]) -> ConnectSpec {
        let templar = Templar::new();
        let vars: Map = vars
            .iter()
            .map(|(k, v)| (k.to_string(), Value::from(*v)))
            .collect();
        let scope = templar.scope(Arc::new(vars), Vec::new());
        let (inv, opts) = (Inventory::default(), Options::default());
        let keywords = ConnKeywords::default();
        match target_for("web1", &inv, &templar, &scope, &opts, &keywords) {
            Ok(Target::Ssh(spec)) => *spec,
            Ok(Target::Local) => panic!("local"),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn proxy_jump_hops_inherit_the_targets_keys_and_checking() {
        let spec = spec_of(&[
            ("ansible_host", "10.1.1.5"),
            ("ansible_user", "pi"),
            ("ansible_ssh_private_key_file", "/k/pi"),
            (
                "ansible_ssh_common_args",
                "-o ProxyJump=admin@gw:2222,ssh://[::1]:23,inner",
            ),
        ]);
        let Some(Proxy::Jump(hops)) = &spec.proxy else {
            panic!("{:?}", spec.proxy)
        };
        let got: Vec<_> = hops
            .iter()
            .map(|h| (h.address.as_str(), h.port, h.user == "admin"))
            .collect();
        assert_eq!(
            got,
            [("gw", 2222, true), ("::1", 23, false), ("inner", 22, false)]
        );
        assert!(hops.iter().all(|h| h.private_keys == spec.private_keys));
        assert!(hops.iter().all(|h| h.proxy.is_none()));
        let e = target_error(&[("ansible_ssh_common_args", "-J 'a b'")]);
        assert!(matches!(e, ConnectError::Jump(_)), "{e:?}");
        let e = target_error(&[("ansible_ssh_common_args", "-J @gw")]);
        assert!(matches!(e, ConnectError::Jump(_)), "{e:?}");
    }

    #[test]
    fn proxy_command_tokens_are_expanded() {
        let spec = spec_of(&[
            ("ansible_host", "10.1.1.5"),
            ("ansible_user", "pi"),
            (
                "ansible_ssh_common_args",
                "-o 'ProxyCommand=nc -x %%h %h %p # %r %n %z'",
            ),
        ]);
        let Some(Proxy::Command(cmd)) = &spec.proxy else {
            panic!("{:?}", spec.proxy)
        };
        assert_eq!(cmd, "nc -x %h 10.1.1.5 22 # pi web1 %z");
    }

    #[tokio::test]
    async fn the_pool_hands_every_waiter_the_same_typed_transport_error() {
        let pool = Pool::default();
        let spec = || {
            Err(ConnectError::Transport(Arc::new(TransportError::Timeout {
                addr: "127.0.0.1:22".into(),
                secs: 1,
            })))
        };
        for _ in 0..2 {
            match pool.get("web1", spec).await {
                Err(ConnectError::Transport(t)) => assert!(t.is_unreachable()),
                Err(e) => panic!("{e:?}"),
                Ok(_) => panic!("expected an error"),
            }
        }
    }
}
