//! Connections: one per host for the whole run, opened on first use and
//! shared by every task (and by tasks delegated to that host).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::OnceCell;

use super::Options;
use crate::error::{InputError, InputErrors, Pos};
use crate::inventory::{ssh_args_options, Inventory, ProxyOpt, SshArgOptions};
use crate::secret::Secret;
use crate::template::{Scope, Templar, TemplateError};
use crate::transport::known_hosts::HostKeyChecking;
use crate::transport::local::{LocalIn, LocalTransport};
use crate::transport::ssh::{self, ConnectSpec, Proxy};
use crate::transport::ssh_config::{self, ConfigFile, Configs, HostConfig, Origin};
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
    /// The OpenSSH client configuration cannot be used.
    #[error("SSH client configuration: {0}")]
    Config(#[from] ssh_config::ConfigError),
}

type Slot = Arc<OnceCell<Result<Arc<dyn Transport>, ConnectError>>>;

/// The run's connections, keyed by inventory host name.
#[derive(Default)]
pub struct Pool {
    slots: Mutex<HashMap<String, Slot>>,
    /// Where local connections run commands (the playbook's directory).
    local_dir: Option<std::path::PathBuf>,
    /// The OpenSSH client configuration files, parsed once per run.
    ssh_configs: Configs,
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

    /// The run's OpenSSH client configuration files.
    pub(crate) fn ssh_configs(&self) -> &Configs {
        &self.ssh_configs
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

impl super::RunCtx<'_> {
    /// Before anything connects, once per targeted host: say which of its
    /// SSH arguments' options drover ignores, and check that the OpenSSH
    /// client configuration files it reads are usable (ssh refuses a bad
    /// one outright), reported as `file:line`.
    pub(super) fn check_ssh(&self, targets: &[Vec<String>]) -> Result<(), InputErrors> {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default();
        let mut seen = std::collections::HashSet::new();
        let mut errors = Vec::new();
        for host in targets.iter().flatten() {
            if !seen.insert(host.as_str()) {
                continue;
            }
            let Some(h) = self.inventory.get(host) else {
                continue;
            };
            let scope = self.templar.scope(Arc::new(h.vars.clone()), Vec::new());
            // A template that cannot render yet is judged when connecting.
            let Ok(opts) = ssh_args_of(&self.templar, &scope, self.opts.ssh_args.as_deref()) else {
                continue;
            };
            if !opts.ignored.is_empty() {
                self.emit(super::Event::Warning(format!(
                    "{host}: drover ignores these options of its SSH arguments: {}",
                    opts.ignored.join(", ")
                )));
            }
            let local = var_str(&self.templar, &scope, "ansible_connection")
                .ok()
                .flatten()
                .is_some_and(|c| c == "local");
            if local {
                continue;
            }
            if let Err(e) = self
                .pool
                .ssh_configs()
                .files_for(opts.config_file.as_deref(), &home)
            {
                let pos = match &e {
                    ssh_config::ConfigError::Syntax { at, .. } => Pos {
                        file: at.file.clone(),
                        line: at.line,
                        col: 1,
                    },
                    ssh_config::ConfigError::Read { path, .. } => Pos::file_start(path),
                };
                let msg = match &e {
                    ssh_config::ConfigError::Syntax { msg, .. } => msg.clone(),
                    ssh_config::ConfigError::Read { msg, .. } => format!("cannot read: {msg}"),
                };
                let err = InputError::new(pos, format!("SSH client configuration: {msg}"));
                if !errors
                    .iter()
                    .any(|x: &InputError| x.to_string() == err.to_string())
                {
                    errors.push(err);
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(InputErrors(errors))
        }
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

/// The OpenSSH options in a host's `ansible_ssh_args` (or ansible.cfg's
/// `ssh_args`, `config_ssh_args`, where the host sets none),
/// `ansible_ssh_common_args` and `ansible_ssh_extra_args`.
pub(crate) fn ssh_args_of(
    templar: &Templar,
    scope: &Scope,
    config_ssh_args: Option<&str>,
) -> Result<SshArgOptions, ConnectError> {
    let mut all = String::new();
    for n in [
        "ansible_ssh_args",
        "ansible_ssh_common_args",
        "ansible_ssh_extra_args",
    ] {
        let value = match var_str(templar, scope, n)? {
            None if n == "ansible_ssh_args" => config_ssh_args.map(str::to_string),
            v => v,
        };
        if let Some(a) = value {
            all.push(' ');
            all.push_str(&a);
        }
    }
    Ok(ssh_args_options(&all))
}

/// Where a connection setting came from, for `-vv`.
struct Sources {
    lines: Vec<String>,
}

impl Sources {
    fn add(&mut self, setting: &str, value: impl std::fmt::Display, from: impl std::fmt::Display) {
        self.lines.push(format!("  {setting} {value} ({from})"));
    }
}

fn from_file(keyword: &str, at: &Origin) -> String {
    format!("{keyword} at {at}")
}

/// Work out how to reach `host` from its variables and the command line.
/// Precedence, as in Ansible: drover's flags, then the host's `ansible_*`
/// variables, the play's keywords and its SSH arguments, then the OpenSSH
/// client configuration (looked up by `ansible_host`, which Ansible hands
/// to ssh), then the defaults.
pub(super) fn target_for(
    host: &str,
    inv: &Inventory,
    templar: &Templar,
    scope: &Scope,
    opts: &Options,
    keywords: &ConnKeywords,
    configs: &Configs,
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
    let ssh_opts = ssh_args_of(templar, scope, opts.ssh_args.as_deref())?;
    let mut src = Sources { lines: Vec::new() };
    let (lookup, lookup_from) = match get("ansible_host")? {
        Some(h) => (h, "inventory ansible_host"),
        None => match get("ansible_ssh_host").ok().flatten() {
            Some(h) => (h, "inventory ansible_ssh_host"),
            None => (host.to_string(), "inventory name"),
        },
    };
    let port_above = match get("ansible_port")?.or_else(|| get("ansible_ssh_port").ok().flatten()) {
        Some(p) => Some((
            p.parse::<u16>().map_err(|_| ConnectError::Port(p))?,
            "inventory ansible_port",
        )),
        None => keywords
            .port
            .map(|p| (p, "keyword port"))
            .or(ssh_opts.port.map(|p| (p, "SSH arguments"))),
    };
    // `-u` stays drover's override of everything; below it Ansible's
    // order: the host's variable, then the `remote_user` keyword.
    let user_above = match &opts.user {
        Some(u) => Some((u.clone(), "--user")),
        None => match get("ansible_user")? {
            Some(u) => Some((u, "inventory ansible_user")),
            None => get("ansible_ssh_user")
                .ok()
                .flatten()
                .map(|u| (u, "inventory ansible_ssh_user"))
                .or(keywords.user.clone().map(|u| (u, "keyword remote_user")))
                .or(ssh_opts.user.clone().map(|u| (u, "SSH arguments")))
                .or(opts
                    .remote_user
                    .clone()
                    .map(|u| (u, "ansible.cfg remote_user"))),
        },
    };
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let local_user = current_user();
    let files = configs.files_for(ssh_opts.config_file.as_deref(), &home)?;
    let cfg = ssh_config::resolve(
        &files,
        &ssh_config::Query {
            host: &lookup,
            user: user_above.as_ref().map(|(u, _)| u.as_str()),
            local_user: &local_user,
        },
    );
    for w in &cfg.warnings {
        if configs.first_time(w) {
            tracing::warn!("{w}");
        }
    }
    let address = match &cfg.host_name {
        Some(h) => {
            src.add("address", &h.value, from_file("HostName", &h.origin));
            h.value.clone()
        }
        None => {
            src.add("address", &lookup, lookup_from);
            lookup.clone()
        }
    };
    let port = match (port_above, &cfg.port) {
        (Some((p, from)), _) => {
            src.add("port", p, from);
            p
        }
        (None, Some(p)) => {
            src.add("port", p.value, from_file("Port", &p.origin));
            p.value
        }
        (None, None) => {
            src.add("port", 22, "default");
            22
        }
    };
    let user = match (user_above, &cfg.user) {
        (Some((u, from)), _) => {
            src.add("user", &u, from);
            u
        }
        (None, Some(u)) => {
            src.add("user", &u.value, from_file("User", &u.origin));
            u.value.clone()
        }
        (None, None) => {
            src.add("user", &local_user, "default: the local user");
            local_user.clone()
        }
    };
    // As ssh: an option on the command line comes before the files.
    let host_key_alias = match (&ssh_opts.host_key_alias, &cfg.host_key_alias) {
        (Some(a), _) => {
            src.add("host key alias", a, "SSH arguments");
            Some(a.clone())
        }
        (None, Some(a)) => {
            src.add(
                "host key alias",
                &a.value,
                from_file("HostKeyAlias", &a.origin),
            );
            Some(a.value.clone())
        }
        (None, None) => None,
    };
    let tokens = ssh_config::Tokens {
        host: &address,
        original: &lookup,
        port,
        user: &user,
        local_user: &local_user,
        home: &home,
        alias: host_key_alias.as_deref().unwrap_or(&address),
    };
    let mut private_keys = Vec::new();
    if let Some(k) = &opts.private_key {
        src.add("identity file", k.display(), "--private-key");
        private_keys.push(k.clone());
    }
    if let Some(k) = get("ansible_ssh_private_key_file")?
        .or_else(|| get("ansible_private_key_file").ok().flatten())
    {
        let k = expand_home(&k, &home);
        src.add("identity file", k.display(), "inventory private key file");
        private_keys.push(k);
    }
    if let Some(k) = &ssh_opts.identity {
        src.add("identity file", k.display(), "SSH arguments");
        private_keys.push(k.clone());
    }
    for f in &cfg.identity_files {
        let k = ssh_config::expand_path(&f.value, &tokens, &f.origin)?;
        src.add(
            "identity file",
            k.display(),
            from_file("IdentityFile", &f.origin),
        );
        private_keys.push(k);
    }
    if private_keys.is_empty() {
        for name in ["id_ed25519", "id_ecdsa", "id_rsa"] {
            let p = home.join(".ssh").join(name);
            if p.exists() {
                src.add("identity file", p.display(), "default");
                private_keys.push(p);
            }
        }
    }
    let identities_only = match (ssh_opts.identities_only, &cfg.identities_only) {
        (Some(i), _) => {
            src.add("identities only", i, "SSH arguments");
            i
        }
        (None, Some(i)) => {
            src.add(
                "identities only",
                i.value,
                from_file("IdentitiesOnly", &i.origin),
            );
            i.value
        }
        (None, None) => false,
    };
    let agent = match (&ssh_opts.identity_agent, &cfg.identity_agent) {
        (Some(a), _) => {
            let agent = agent_source(a, &tokens, &args_origin())?;
            src.add("agent", a, "SSH arguments");
            agent
        }
        (None, Some(a)) => {
            let agent = agent_source(&a.value, &tokens, &a.origin)?;
            src.add("agent", &a.value, from_file("IdentityAgent", &a.origin));
            agent
        }
        (None, None) => ssh::AgentSource::Env,
    };
    let password = match &opts.ssh_password {
        Some(p) => Some(p.clone()),
        None => get("ansible_password")?
            .or_else(|| get("ansible_ssh_pass").ok().flatten())
            .map(Secret::new),
    };
    let known_hosts = if let Some(k) = &opts.known_hosts {
        src.add("known_hosts", k.display(), "--known-hosts");
        k.clone()
    } else if let Some(k) = &ssh_opts.known_hosts {
        src.add("known_hosts", k.display(), "SSH arguments");
        k.clone()
    } else if let Some(k) = &cfg.known_hosts {
        let path = match &k.value {
            Some(f) => ssh_config::expand_path(f, &tokens, &k.origin)?,
            None => PathBuf::from("/dev/null"),
        };
        src.add(
            "known_hosts",
            path.display(),
            from_file("UserKnownHostsFile", &k.origin),
        );
        path
    } else {
        crate::transport::known_hosts::default_path(&home)
    };
    let strict_policy = |v: &str| match v {
        "accept-new" | "no" | "off" | "false" => HostKeyChecking::AcceptNew,
        _ => HostKeyChecking::Strict,
    };
    let checking = match (&opts.host_key_checking, &ssh_opts.strict, &cfg.strict) {
        (Some(c), _, _) => *c,
        (None, Some(s), _) => strict_policy(s.as_str()),
        (None, None, Some(s)) => {
            src.add(
                "host key checking",
                &s.value,
                from_file("StrictHostKeyChecking", &s.origin),
            );
            strict_policy(s.value.as_str())
        }
        (None, None, None) => HostKeyChecking::Strict,
    };
    let connect_timeout = match &cfg.connect_timeout {
        Some(t) if !opts.connect_timeout_set && t.value > 0 => {
            src.add(
                "connect timeout",
                format!("{}s", t.value),
                from_file("ConnectTimeout", &t.origin),
            );
            Duration::from_secs(t.value)
        }
        _ => opts.connect_timeout,
    };
    let keepalive = match &cfg.server_alive {
        Some(k) => {
            src.add(
                "keepalive",
                format!("{}s", k.value),
                from_file("ServerAliveInterval", &k.origin),
            );
            Duration::from_secs(k.value)
        }
        None => Duration::from_secs(15),
    };
    let mut spec = ConnectSpec {
        name: host.to_string(),
        address,
        port,
        user,
        private_keys,
        agent,
        identities_only,
        proxy: None,
        host_key_alias,
        password,
        known_hosts,
        checking,
        connect_timeout,
        keepalive,
    };
    let hops = Hops {
        files: &files,
        home: &home,
        local_user: &local_user,
    };
    spec.proxy = match (&ssh_opts.proxy, &cfg.proxy) {
        (Some(ProxyOpt::Command(cmd)), _) => {
            src.add("proxy command", cmd, "SSH arguments");
            Some(Proxy::Command(expand_tokens(cmd, host, &spec)))
        }
        (Some(ProxyOpt::Jump(j)), _) => {
            src.add("proxy jump", j, "SSH arguments");
            Some(Proxy::Jump(hops.resolve(j, &spec, 0)?))
        }
        (None, Some(p)) => hops.config_proxy(
            &p.value,
            &p.origin,
            &spec,
            &tokens_of(&spec, &lookup, &hops),
            0,
            Some(&mut src),
        )?,
        (None, None) => None,
    };
    if !cfg.ignored.is_empty() {
        let list: Vec<String> = cfg
            .ignored
            .iter()
            .map(|(k, at)| format!("{k} ({at})"))
            .collect();
        src.lines.push(format!(
            "  ignored (not supported by drover): {}",
            list.join(", ")
        ));
    }
    tracing::info!(
        target: "drover::ssh_config",
        "{host}: SSH settings:\n{}",
        src.lines.join("\n")
    );
    Ok(Target::Ssh(Box::new(spec)))
}

/// Where an option from `ansible_ssh_*_args` is said to come from in an
/// error about it (as a file and line are for the config files').
fn args_origin() -> Origin {
    Origin {
        file: std::sync::Arc::new(PathBuf::from("ansible_ssh_args")),
        line: 1,
    }
}

/// `IdentityAgent`: `none`, `SSH_AUTH_SOCK`, `$VAR` (the socket named by
/// that variable), or a socket path.
fn agent_source(
    value: &str,
    tokens: &ssh_config::Tokens<'_>,
    at: &Origin,
) -> Result<ssh::AgentSource, ConnectError> {
    Ok(if value.eq_ignore_ascii_case("none") {
        ssh::AgentSource::None
    } else if value == "SSH_AUTH_SOCK" {
        ssh::AgentSource::Env
    } else if let Some(var) = value.strip_prefix('$').filter(|v| !v.starts_with('{')) {
        match std::env::var_os(var) {
            Some(p) => ssh::AgentSource::Socket(PathBuf::from(p)),
            None => ssh::AgentSource::None,
        }
    } else {
        ssh::AgentSource::Socket(ssh_config::expand_path(value, tokens, at)?)
    })
}

/// The `%` token values of a resolved spec.
fn tokens_of<'a>(
    spec: &'a ConnectSpec,
    original: &'a str,
    hops: &Hops<'a>,
) -> ssh_config::Tokens<'a> {
    ssh_config::Tokens {
        host: &spec.address,
        original,
        port: spec.port,
        user: &spec.user,
        local_user: hops.local_user,
        home: hops.home,
        alias: spec.host_key_alias.as_deref().unwrap_or(&spec.address),
    }
}

/// Jump hosts through too many jump hosts: a loop in the configuration.
const MAX_HOP_DEPTH: usize = 8;

/// What resolving a jump host through the configuration needs.
struct Hops<'a> {
    files: &'a [Arc<ConfigFile>],
    home: &'a std::path::Path,
    local_user: &'a str,
}

impl Hops<'_> {
    /// A `ProxyJump`/`ProxyCommand` from the configuration, for `spec`.
    fn config_proxy(
        &self,
        value: &ssh_config::Value,
        at: &Origin,
        spec: &ConnectSpec,
        tokens: &ssh_config::Tokens<'_>,
        depth: usize,
        src: Option<&mut Sources>,
    ) -> Result<Option<Proxy>, ConnectError> {
        Ok(match value {
            ssh_config::Value::Jump(Some(j)) => {
                if let Some(src) = src {
                    src.add("proxy jump", j, from_file("ProxyJump", at));
                }
                Some(Proxy::Jump(self.resolve(j, spec, depth)?))
            }
            ssh_config::Value::Command(Some(cmd)) => {
                let cmd = ssh_config::expand_tokens(cmd, tokens, at)?;
                if let Some(src) = src {
                    src.add("proxy command", &cmd, from_file("ProxyCommand", at));
                }
                Some(Proxy::Command(cmd))
            }
            _ => None,
        })
    }

    /// The hops of a `ProxyJump` value (`[user@]host[:port]` or
    /// `ssh://[user@]host[:port]`, comma-separated), each looked up in the
    /// configuration as ssh does for a jump host: its own `HostName`,
    /// `User`, `Port`, `IdentityFile`...; the first one's own `ProxyJump`
    /// too. What the configuration does not say comes from the target:
    /// its keys (after the hop's own), agent, known_hosts and checking. A
    /// hop without a user logs in as the local user, as ssh does.
    fn resolve(
        &self,
        value: &str,
        target: &ConnectSpec,
        depth: usize,
    ) -> Result<Vec<ConnectSpec>, ConnectError> {
        let bad = || ConnectError::Jump(value.to_string());
        if depth >= MAX_HOP_DEPTH {
            return Err(ConnectError::Jump(format!(
                "{value}: more than {MAX_HOP_DEPTH} jump hosts deep (a loop in the SSH configuration?)"
            )));
        }
        let mut out = Vec::new();
        for (i, hop) in value.split(',').enumerate() {
            let hop = hop.trim();
            let hop = hop.strip_prefix("ssh://").unwrap_or(hop);
            let (user, rest) = match hop.rsplit_once('@') {
                Some((u, r)) if !u.is_empty() => (Some(u.to_string()), r),
                Some(_) => return Err(bad()),
                None => (None, hop),
            };
            let (name, port) = split_host_port_opt(rest).ok_or_else(bad)?;
            let cfg: HostConfig = ssh_config::resolve(
                self.files,
                &ssh_config::Query {
                    host: &name,
                    user: user.as_deref(),
                    local_user: self.local_user,
                },
            );
            let mut spec = ConnectSpec {
                name: name.clone(),
                address: cfg
                    .host_name
                    .as_ref()
                    .map_or(name.clone(), |h| h.value.clone()),
                port: port.or(cfg.port.as_ref().map(|p| p.value)).unwrap_or(22),
                user: user
                    .or(cfg.user.as_ref().map(|u| u.value.clone()))
                    .unwrap_or_else(|| self.local_user.to_string()),
                proxy: None,
                host_key_alias: cfg.host_key_alias.as_ref().map(|a| a.value.clone()),
                ..target.clone()
            };
            let tokens = tokens_of(&spec, &name, self);
            let mut keys = Vec::new();
            for f in &cfg.identity_files {
                keys.push(ssh_config::expand_path(&f.value, &tokens, &f.origin)?);
            }
            let mut agent = target.agent.clone();
            if let Some(a) = &cfg.identity_agent {
                agent = agent_source(&a.value, &tokens, &a.origin)?;
            }
            let mut known_hosts = target.known_hosts.clone();
            if let Some(k) = &cfg.known_hosts {
                known_hosts = match &k.value {
                    Some(f) => ssh_config::expand_path(f, &tokens, &k.origin)?,
                    None => PathBuf::from("/dev/null"),
                };
            }
            keys.extend(
                target
                    .private_keys
                    .iter()
                    .filter(|k| !keys.contains(k))
                    .cloned()
                    .collect::<Vec<_>>(),
            );
            spec.private_keys = keys;
            spec.agent = agent;
            spec.known_hosts = known_hosts;
            if let Some(i) = &cfg.identities_only {
                spec.identities_only = i.value;
            }
            if let Some(s) = &cfg.strict {
                spec.checking = match s.value.as_str() {
                    "accept-new" | "no" | "off" | "false" => HostKeyChecking::AcceptNew,
                    _ => HostKeyChecking::Strict,
                };
            }
            if let Some(k) = &cfg.server_alive {
                spec.keepalive = Duration::from_secs(k.value);
            }
            // Only the first hop is reached its own way: each next one is
            // reached through the hop before it, as `ssh -J a,b` does.
            if i == 0 {
                if let Some(p) = &cfg.proxy {
                    let tokens = tokens_of(&spec, &name, self);
                    let proxy =
                        self.config_proxy(&p.value, &p.origin, &spec, &tokens, depth + 1, None)?;
                    spec.proxy = proxy;
                }
            }
            out.push(spec);
        }
        Ok(out)
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`; the port when given (a
/// jump host's configuration may name it otherwise).
fn split_host_port_opt(s: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = split_host_port(s)?;
    let explicit = match s.strip_prefix('[') {
        Some(rest) => rest
            .split_once(']')
            .is_some_and(|(_, after)| !after.is_empty()),
        None => matches!(s.rsplit_once(':'), Some((h, _)) if !h.contains(':')),
    };
    Some((host, explicit.then_some(port)))
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
        match target_with("web1", vars, "") {
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
        spec_with("web1", vars, "")
    }

    /// How `host` is reached with these variables and this
    /// `~/.ssh/config` (the machine's own files are never read).
    fn target_with(
        host: &str,
        vars: &[(&str, &str)],
        config: &str,
    ) -> Result<Target, ConnectError> {
        let templar = Templar::new();
        let vars: Map = vars
            .iter()
            .map(|(k, v)| (k.to_string(), Value::from(*v)))
            .collect();
        let scope = templar.scope(Arc::new(vars), Vec::new());
        let (inv, opts) = (Inventory::default(), Options::default());
        let file = ConfigFile::parse(
            std::path::Path::new("/u/.ssh/config"),
            config,
            std::path::Path::new("/u/.ssh"),
            std::path::Path::new("/u"),
        )
        .expect("config parses");
        let configs = Configs::fixed(vec![Arc::new(file)]);
        let keywords = ConnKeywords::default();
        target_for(host, &inv, &templar, &scope, &opts, &keywords, &configs)
    }

    /// The SSH spec of `host`, as [`target_with`] finds it.
    fn spec_with(host: &str, vars: &[(&str, &str)], config: &str) -> ConnectSpec {
        match target_with(host, vars, config) {
            Ok(Target::Ssh(spec)) => *spec,
            Ok(Target::Local) => panic!("local"),
            Err(e) => panic!("{e}"),
        }
    }

    const PI_CONFIG: &str = "\
Host pi-master
  HostName 10.0.0.1
  User pi
  Port 2201
  IdentityFile /keys/%h-%r
  IdentityAgent none
  HostKeyAlias pi-master-key
  ServerAliveInterval 7
Host pi-worker-*
  ProxyJump pi-master,admin@inner:2
  IdentitiesOnly yes
  StrictHostKeyChecking accept-new
  UserKnownHostsFile /kh/%n
Host inner
  HostName 10.9.9.9
  Port 3
  ProxyJump unused
";

    #[test]
    fn a_host_alias_takes_its_settings_from_the_ssh_config() {
        let spec = spec_with("pi-master", &[], PI_CONFIG);
        assert_eq!(
            (spec.address.as_str(), spec.port, spec.user.as_str()),
            ("10.0.0.1", 2201, "pi")
        );
        assert_eq!(spec.private_keys, [PathBuf::from("/keys/10.0.0.1-pi")]);
        assert_eq!(spec.agent, ssh::AgentSource::None);
        assert_eq!(spec.host_key_alias.as_deref(), Some("pi-master-key"));
        assert_eq!(spec.keepalive, Duration::from_secs(7));
        assert!(spec.proxy.is_none());
    }

    #[test]
    fn inventory_variables_win_over_the_ssh_config() {
        // Looked up by ansible_host, as Ansible hands it to ssh.
        let spec = spec_with(
            "web1",
            &[
                ("ansible_host", "pi-master"),
                ("ansible_user", "admin"),
                ("ansible_port", "22"),
                ("ansible_ssh_private_key_file", "/k/inv"),
            ],
            PI_CONFIG,
        );
        assert_eq!(
            (spec.address.as_str(), spec.port, spec.user.as_str()),
            ("10.0.0.1", 22, "admin")
        );
        // The file's keys are tried after the inventory's, tokens expanded
        // with the user that won.
        assert_eq!(
            spec.private_keys,
            [
                PathBuf::from("/k/inv"),
                PathBuf::from("/keys/10.0.0.1-admin")
            ]
        );
        let spec = spec_with(
            "pi-worker-01",
            &[(
                "ansible_ssh_common_args",
                "-o UserKnownHostsFile=/inv/kh -o ProxyCommand='nc %h %p'",
            )],
            PI_CONFIG,
        );
        assert_eq!(spec.known_hosts, PathBuf::from("/inv/kh"));
        assert!(matches!(&spec.proxy, Some(Proxy::Command(c)) if c == "nc pi-worker-01 22"));
    }

    /// IdentitiesOnly, IdentityAgent and HostKeyAlias in the SSH
    /// arguments were warned about as ignored: they are honoured, before
    /// the ssh config's (as ssh takes the command line first).
    #[test]
    fn identities_only_agent_and_alias_from_the_ssh_arguments() {
        let args = "-o IdentitiesOnly=no -o IdentityAgent=/run/a.sock -o HostKeyAlias=%h-key";
        let spec = spec_with(
            "pi-worker-01",
            &[("ansible_ssh_extra_args", args)],
            PI_CONFIG,
        );
        assert!(
            !spec.identities_only,
            "the arguments' no beats the file's yes"
        );
        assert_eq!(
            spec.agent,
            ssh::AgentSource::Socket(PathBuf::from("/run/a.sock"))
        );
        assert_eq!(spec.host_key_alias.as_deref(), Some("%h-key"));
        let args = "-o IdentitiesOnly=yes -o IdentityAgent=none -o HostKeyAlias=pi";
        let spec = spec_with("web1", &[("ansible_ssh_common_args", args)], "");
        assert!(spec.identities_only);
        assert_eq!(spec.agent, ssh::AgentSource::None);
        assert_eq!(spec.host_key_alias.as_deref(), Some("pi"));
        let bad = "-o IdentityAgent=${DROVER_TEST_UNSET_AGENT}";
        let Err(err) = target_with("web1", &[("ansible_ssh_args", bad)], "") else {
            panic!("an unset variable in IdentityAgent is an error")
        };
        assert!(err.to_string().contains("DROVER_TEST_UNSET_AGENT"), "{err}");
    }

    #[test]
    fn jump_hops_are_resolved_through_the_ssh_config() {
        let spec = spec_with("pi-worker-01", &[("ansible_user", "w")], PI_CONFIG);
        assert!(spec.identities_only);
        assert_eq!(spec.checking, HostKeyChecking::AcceptNew);
        assert_eq!(spec.known_hosts, PathBuf::from("/kh/pi-worker-01"));
        let Some(Proxy::Jump(hops)) = &spec.proxy else {
            panic!("{:?}", spec.proxy)
        };
        let got: Vec<_> = hops
            .iter()
            .map(|h| (h.address.as_str(), h.port, h.user.as_str()))
            .collect();
        // The hop's own user and port win over its Host block's.
        assert_eq!(got, [("10.0.0.1", 2201, "pi"), ("10.9.9.9", 2, "admin")]);
        let master = &hops[0];
        assert_eq!(master.private_keys[0], PathBuf::from("/keys/10.0.0.1-pi"));
        assert_eq!(master.agent, ssh::AgentSource::None);
        assert_eq!(master.host_key_alias.as_deref(), Some("pi-master-key"));
        // The second hop is reached through the first, not its own way.
        assert!(hops[1].proxy.is_none());
    }

    #[test]
    fn a_proxy_jump_loop_in_the_ssh_config_is_an_error() {
        let templar = Templar::new();
        let scope = templar.scope(Arc::new(Map::new()), Vec::new());
        let file = ConfigFile::parse(
            std::path::Path::new("/c"),
            "Host a\n ProxyJump b\nHost b\n ProxyJump a\n",
            std::path::Path::new("/"),
            std::path::Path::new("/u"),
        )
        .expect("parses");
        let r = target_for(
            "a",
            &Inventory::default(),
            &templar,
            &scope,
            &Options::default(),
            &ConnKeywords::default(),
            &Configs::fixed(vec![Arc::new(file)]),
        );
        assert!(
            matches!(&r, Err(ConnectError::Jump(m)) if m.contains("loop")),
            "{:?}",
            r.as_ref().err()
        );
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
