//! The SSH transport (russh): one connection per host for the whole run,
//! channels multiplexed on it and closed after use.
//!
//! Round trips are the cost that matters: connecting takes TCP + key
//! exchange + authentication; each command then costs one round trip to
//! open its channel and one for the command itself (the `exec` request,
//! stdin and EOF are sent without waiting for the server's replies).
//!
//! OpenSSH allows 10 sessions per connection (`MaxSessions`) and frees a
//! slot only a little after the channel is closed, so at most
//! [`MAX_OPEN_SESSIONS`] channels are open at once and further spawns wait
//! for a slot. A refused channel open (a server configured lower, or slots
//! still held by abandoned commands) waits for one of our channels to close
//! and retries, or backs off and retries for up to 10 s if none is open.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use russh::client::{self, AuthResult, KeyboardInteractiveAuthResponse};
use russh::keys::agent::client::AgentClient;
use russh::keys::agent::AgentIdentity;
use russh::keys::ssh_key::{Algorithm, HashAlg};
use russh::keys::{PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{ChannelMsg, ChannelOpenFailure, ChannelReadHalf, ChannelWriteHalf, MethodKind, Sig};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch, Notify, OwnedSemaphorePermit, Semaphore};

use super::keys;
use super::known_hosts::{self, HostKeyChecking};
pub use super::proxy::Jumps;
use super::proxy::{self, Via};
use super::{ProcessEvent, RemoteProcess, Transport, TransportError};
use crate::secret::Secret;

/// Channels open at once on one connection; below OpenSSH's default
/// `MaxSessions` 10, because the server frees a closed session's slot only
/// after it has processed packets that may already carry the next opens.
pub const MAX_OPEN_SESSIONS: usize = 8;

/// How long a refused channel open is retried before giving up.
const OPEN_RETRY_FOR: Duration = Duration::from_secs(10);

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
    /// Which ssh-agent to try keys from.
    pub agent: AgentSource,
    /// Only the keys of `private_keys` (and agent keys matching them) may
    /// be offered (`IdentitiesOnly yes`).
    pub identities_only: bool,
    /// The host is reached through another one (`ProxyJump`,
    /// `ProxyCommand`); `None`: a direct TCP connection.
    pub proxy: Option<Proxy>,
    /// The name the host key is looked up and learnt under in known_hosts
    /// instead of the address (`HostKeyAlias`).
    pub host_key_alias: Option<String>,
    /// Password for password authentication (first contact).
    pub password: Option<Secret>,
    /// known_hosts file to check and learn into.
    pub known_hosts: PathBuf,
    /// How unknown hosts are treated.
    pub checking: HostKeyChecking,
    /// Limit for TCP connect + key exchange + auth (zero: no limit).
    pub connect_timeout: Duration,
    /// Interval of SSH keepalives (zero: none); the connection is dropped
    /// after 3 unanswered ones.
    pub keepalive: Duration,
}

/// Where the keys of an ssh-agent come from (`IdentityAgent`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AgentSource {
    /// No agent (`IdentityAgent none`).
    None,
    /// The socket named by `SSH_AUTH_SOCK`, if it is set (ssh's default).
    #[default]
    Env,
    /// This socket.
    Socket(PathBuf),
}

impl AgentSource {
    /// The socket to use, if any.
    pub fn socket(&self) -> Option<PathBuf> {
        match self {
            AgentSource::None => None,
            AgentSource::Env => std::env::var_os("SSH_AUTH_SOCK").map(PathBuf::from),
            AgentSource::Socket(p) => Some(p.clone()),
        }
    }
}

/// How a host that is not reached directly is reached.
#[derive(Debug, Clone)]
pub enum Proxy {
    /// Through these jump hosts, in order (`ProxyJump a,b`): the first is
    /// connected to as this spec says (it may have its own proxy), each
    /// next one and the target through a `direct-tcpip` channel of the one
    /// before.
    Jump(Vec<ConnectSpec>),
    /// A local command whose stdin and stdout carry the connection
    /// (`ProxyCommand`), its `%` tokens already expanded; run with `sh -c`.
    Command(String),
}

impl ConnectSpec {
    /// `address:port` (`[address]:port` for IPv6), for messages.
    pub fn addr(&self) -> String {
        if self.address.contains(':') {
            format!("[{}]:{}", self.address, self.port)
        } else {
            format!("{}:{}", self.address, self.port)
        }
    }
}

/// An authenticated SSH connection to one host, which can be replaced by a
/// new one to the same host (after a reboot).
pub struct SshTransport {
    conn: Mutex<Arc<Conn>>,
    /// How the connection was made, to make it again.
    spec: ConnectSpec,
    agent: Option<PathBuf>,
    /// The run's jump host connections, for a reconnection.
    jumps: Arc<Jumps>,
    addr: String,
    closed: AtomicBool,
    /// Shells kept open on this connection.
    shells: super::shell::Shells,
}

/// One SSH connection and its session slots.
pub(super) struct Conn {
    pub(super) handle: client::Handle<Client>,
    sessions: Arc<Semaphore>,
    /// Signalled whenever one of our channels has been closed.
    freed: Arc<Notify>,
    pub(super) addr: String,
    /// What carries the connection, kept alive with it.
    _via: Via,
}

impl std::fmt::Debug for SshTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshTransport")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// Connect, check the host key and authenticate, all within
/// `spec.connect_timeout`.
pub async fn connect(spec: &ConnectSpec) -> Result<SshTransport, TransportError> {
    connect_in(spec, Arc::new(Jumps::default())).await
}

/// [`connect`], sharing the jump host connections of `jumps` with the
/// run's other hosts.
pub async fn connect_in(
    spec: &ConnectSpec,
    jumps: Arc<Jumps>,
) -> Result<SshTransport, TransportError> {
    let agent = spec.agent.socket();
    connect_with(spec, agent.as_deref(), jumps).await
}

/// [`connect`], with the ssh-agent socket given instead of read from the
/// environment (`None`: no agent).
pub async fn connect_with_agent(
    spec: &ConnectSpec,
    agent: Option<&Path>,
) -> Result<SshTransport, TransportError> {
    connect_with(spec, agent, Arc::new(Jumps::default())).await
}

async fn connect_with(
    spec: &ConnectSpec,
    agent: Option<&Path>,
    jumps: Arc<Jumps>,
) -> Result<SshTransport, TransportError> {
    let conn = open(spec, agent, &jumps).await?;
    Ok(SshTransport {
        addr: conn.addr.clone(),
        conn: Mutex::new(Arc::new(conn)),
        spec: spec.clone(),
        agent: agent.map(Path::to_path_buf),
        jumps,
        closed: AtomicBool::new(false),
        shells: super::shell::Shells::new(),
    })
}

/// One connection, within `spec.connect_timeout`.
async fn open(
    spec: &ConnectSpec,
    agent: Option<&Path>,
    jumps: &Jumps,
) -> Result<Conn, TransportError> {
    if spec.connect_timeout.is_zero() {
        return open_via(spec, agent, jumps).await;
    }
    match tokio::time::timeout(spec.connect_timeout, open_via(spec, agent, jumps)).await {
        Ok(result) => result,
        Err(_) => Err(TransportError::Timeout {
            addr: spec.addr(),
            secs: spec.connect_timeout.as_secs_f64().ceil() as u64,
        }),
    }
}

/// One connection, directly or through the spec's proxy.
pub(super) async fn open_via(
    spec: &ConnectSpec,
    agent: Option<&Path>,
    jumps: &Jumps,
) -> Result<Conn, TransportError> {
    match &spec.proxy {
        None => connect_inner(spec, agent).await,
        Some(Proxy::Jump(hops)) => {
            let started = tokio::time::Instant::now();
            let hop = jumps.through(hops).await?;
            let stream = proxy::tunnel(&hop, spec).await?;
            open_over(spec, agent, stream, Via::Hop(hop), started).await
        }
        Some(Proxy::Command(cmd)) => {
            let started = tokio::time::Instant::now();
            let (stream, guard) = proxy::spawn_command(cmd, &spec.addr())?;
            open_over(spec, agent, stream, Via::Command(Box::new(guard)), started).await
        }
    }
}

async fn connect_inner(spec: &ConnectSpec, agent: Option<&Path>) -> Result<Conn, TransportError> {
    let addr = spec.addr();
    let started = tokio::time::Instant::now();
    let stream = TcpStream::connect((spec.address.as_str(), spec.port))
        .await
        .map_err(|e| TransportError::Connect {
            addr: addr.clone(),
            reason: e.to_string(),
        })?;
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!("{addr}: cannot set TCP_NODELAY: {e}");
    }
    let tcp = started.elapsed();
    handshake(spec, agent, QuickAck(stream), Via::Direct, started, tcp).await
}

/// Key exchange and authentication over a stream a proxy provides
/// (obtained since `started`: the jump hosts' connections and channel).
pub(super) async fn open_over<S>(
    spec: &ConnectSpec,
    agent: Option<&Path>,
    stream: S,
    via: Via,
    started: tokio::time::Instant,
) -> Result<Conn, TransportError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let proxied = started.elapsed();
    handshake(spec, agent, stream, via, started, proxied).await
}

async fn handshake<S>(
    spec: &ConnectSpec,
    agent: Option<&Path>,
    stream: S,
    mut via: Via,
    started: tokio::time::Instant,
    tcp: Duration,
) -> Result<Conn, TransportError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let addr = spec.addr();
    let refusal = Arc::new(Mutex::new(None));
    let handler = Client {
        // `HostKeyAlias`: the key is looked up and learnt under the alias.
        host: spec
            .host_key_alias
            .clone()
            .unwrap_or_else(|| spec.address.clone()),
        port: spec.port,
        known_hosts: spec.known_hosts.clone(),
        checking: spec.checking,
        refusal: refusal.clone(),
    };
    let mut handle =
        match client::connect_stream(Arc::new(client_config(spec)), stream, handler).await {
            Ok(h) => h,
            Err(e) => {
                let refused = refusal.lock().unwrap_or_else(|p| p.into_inner()).take();
                if let (None, Via::Command(guard)) = (&refused, &mut via) {
                    if let Some(why) = guard.failure().await {
                        return Err(TransportError::Connect { addr, reason: why });
                    }
                }
                return Err(match refused {
                    Some(detail) => TransportError::HostKey {
                        host: spec.name.clone(),
                        detail,
                    },
                    None => TransportError::Disconnected(format!(
                        "SSH handshake with {addr} failed: {e}"
                    )),
                });
            }
        };
    let kex = started.elapsed();
    authenticate(&mut handle, spec, agent).await?;
    tracing::debug!(
        "{addr}: connected as {} in {:?} (TCP {tcp:?}, key exchange {:?}, authentication {:?})",
        spec.user,
        started.elapsed(),
        kex - tcp,
        started.elapsed() - kex
    );
    Ok(Conn {
        handle,
        sessions: Arc::new(Semaphore::new(MAX_OPEN_SESSIONS)),
        freed: Arc::new(Notify::new()),
        addr,
        _via: via,
    })
}

/// A TCP stream that acknowledges at once what it receives. OpenSSH leaves
/// Nagle's algorithm on until the first session starts, so a reply that
/// follows another small packet of its (the host key announcement after
/// authentication, say) waits for our ACK, which Linux delays by up to
/// 40 ms when we have nothing to send. `TCP_QUICKACK` does not stick, so it
/// is set again before each read.
struct QuickAck(TcpStream);

impl tokio::io::AsyncRead for QuickAck {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let _ = self.0.set_quickack(true);
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for QuickAck {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

fn client_config(spec: &ConnectSpec) -> client::Config {
    let mut preferred = russh::Preferred::default();
    // Like OpenSSH, ask first for the host key algorithms already pinned
    // for this host, so a host that also has keys of other types does not
    // look changed.
    let pinned: Vec<Algorithm> = known_hosts::lookup(&spec.known_hosts, &spec.address, spec.port)
        .map(|keys| keys.iter().map(|k| k.key.algorithm()).collect())
        .unwrap_or_default();
    if !pinned.is_empty() {
        let mut algs = preferred.key.to_vec();
        algs.sort_by_key(|a| !pinned.iter().any(|p| p == a || (is_rsa(p) && is_rsa(a))));
        preferred.key = algs.into();
    }
    client::Config {
        keepalive_interval: (!spec.keepalive.is_zero()).then_some(spec.keepalive),
        keepalive_max: 3,
        inactivity_timeout: None,
        nodelay: true,
        preferred,
        ..Default::default()
    }
}

/// The russh handler: checks the host key; a refusal is kept for
/// [`connect`] to report, since russh only says "unknown key".
pub(super) struct Client {
    host: String,
    port: u16,
    known_hosts: PathBuf,
    checking: HostKeyChecking,
    refusal: Arc<Mutex<Option<String>>>,
}

impl Client {
    fn refuse(&self, detail: String) -> bool {
        *self.refusal.lock().unwrap_or_else(|p| p.into_inner()) = Some(detail);
        false
    }
}

impl client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let key = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            PublicKeyOrCertificate::Certificate(_) => {
                return Ok(self.refuse(
                    "the host presented a certificate; host certificates are not supported".into(),
                ));
            }
        };
        let (path, host, port, checking) = (
            self.known_hosts.clone(),
            self.host.clone(),
            self.port,
            self.checking,
        );
        // Learning takes a file lock: keep it off the reactor.
        let verdict = tokio::task::spawn_blocking(move || {
            known_hosts::verify(&path, &host, port, &key, checking)
        })
        .await
        .unwrap_or_else(|e| Err(known_hosts::HostKeyError::Check(e.to_string())));
        match verdict {
            Ok(accepted) => {
                tracing::debug!(
                    "{}:{}: host key accepted: {accepted:?}",
                    self.host,
                    self.port
                );
                Ok(true)
            }
            Err(e) => Ok(self.refuse(e.to_string())),
        }
    }
}

/// Try the key files, then the agent, then the password; the error lists
/// what was tried and what the server accepts. Never logs secrets.
async fn authenticate(
    handle: &mut client::Handle<Client>,
    spec: &ConnectSpec,
    agent: Option<&Path>,
) -> Result<(), TransportError> {
    let mut auth = Auth {
        handle,
        user: &spec.user,
        tried: Vec::new(),
        accepts: None,
        rsa_hash: None,
    };
    // Keys with a passphrase wait until the agent has been tried: it may
    // hold them, and then nothing is asked.
    let mut locked = Vec::new();
    for path in &spec.private_keys {
        if !auth.allows(MethodKind::PublicKey) {
            break;
        }
        match auth.key_file(path).await? {
            KeyFile::Accepted => return Ok(()),
            KeyFile::Locked => locked.push(path),
            KeyFile::Unused => {}
        }
    }
    let mut held = Vec::new();
    if let Some(sock) = agent {
        if auth.allows(MethodKind::PublicKey) && auth.agent(sock, spec, &mut held).await? {
            return Ok(());
        }
    }
    for path in locked {
        if !auth.allows(MethodKind::PublicKey) {
            break;
        }
        let offered = keys::public_of(path)
            .is_some_and(|p| held.iter().any(|h| h.key_data() == p.key_data()));
        if !offered && auth.locked_key(path).await? {
            return Ok(());
        }
    }
    if let Some(password) = &spec.password {
        if auth.allows(MethodKind::Password) && auth.password(password).await? {
            return Ok(());
        }
        if auth.allows(MethodKind::KeyboardInteractive) && auth.keyboard(password).await? {
            return Ok(());
        }
    }
    Err(auth.failure(spec))
}

/// What became of one key file.
enum KeyFile {
    Accepted,
    /// It has a passphrase: tried after the agent.
    Locked,
    /// Refused, unreadable, or not accepted.
    Unused,
}

struct Auth<'a> {
    handle: &'a mut client::Handle<Client>,
    user: &'a str,
    /// Human descriptions of the attempts, for the error.
    tried: Vec<String>,
    /// What the server said it accepts, once it said it.
    accepts: Option<Vec<MethodKind>>,
    /// The server's best RSA signature hash, once asked.
    rsa_hash: Option<Option<HashAlg>>,
}

impl Auth<'_> {
    fn allows(&self, method: MethodKind) -> bool {
        self.accepts.as_ref().is_none_or(|m| m.contains(&method))
    }

    /// Record a reply; true on success.
    fn outcome(&mut self, result: AuthResult) -> bool {
        match result {
            AuthResult::Success => true,
            AuthResult::Failure {
                remaining_methods, ..
            } => {
                self.accepts = Some(remaining_methods.to_vec());
                false
            }
        }
    }

    fn lost(&self, e: impl std::fmt::Display) -> TransportError {
        TransportError::Disconnected(format!("during authentication: {e}"))
    }

    async fn hash_for(&mut self, alg: &Algorithm) -> Result<Option<HashAlg>, TransportError> {
        if !is_rsa(alg) {
            return Ok(None);
        }
        if let Some(h) = self.rsa_hash {
            return Ok(h);
        }
        // No server-sig-algs extension: fall back to ssh-rsa (SHA-1) like
        // OpenSSH does; servers that send it name their best hash.
        let h = self
            .handle
            .best_supported_rsa_hash()
            .await
            .map_err(|e| self.lost(e))?
            .flatten();
        self.rsa_hash = Some(h);
        Ok(h)
    }

    async fn key_file(&mut self, path: &Path) -> Result<KeyFile, TransportError> {
        let shown = path.display();
        if let Some(why) = keys::too_open(path) {
            tracing::debug!("skipping key {shown}: {why}");
            self.tried.push(format!("key {shown} (refused: {why})"));
            return Ok(KeyFile::Unused);
        }
        let key = match russh::keys::load_secret_key(path, None) {
            Ok(k) => k,
            Err(russh::keys::Error::KeyIsEncrypted) => return Ok(KeyFile::Locked),
            Err(e) => {
                tracing::debug!("skipping key {shown}: {e}");
                self.tried.push(format!("key {shown} (skipped: {e})"));
                return Ok(KeyFile::Unused);
            }
        };
        Ok(match self.offer_key(key, path).await? {
            true => KeyFile::Accepted,
            false => KeyFile::Unused,
        })
    }

    /// A key with a passphrase, unlocked with the run's passphrase for it
    /// (asked on the terminal once).
    async fn locked_key(&mut self, path: &Path) -> Result<bool, TransportError> {
        match keys::unlock(path).await {
            Ok(key) => self.offer_key(key, path).await,
            Err(why) => {
                self.tried
                    .push(format!("key {} (skipped: {why})", path.display()));
                Ok(false)
            }
        }
    }

    async fn offer_key(
        &mut self,
        key: russh::keys::PrivateKey,
        path: &Path,
    ) -> Result<bool, TransportError> {
        let hash = self.hash_for(&key.algorithm()).await?;
        let key = PrivateKeyWithHashAlg::new(Arc::new(key), hash);
        let result = self
            .handle
            .authenticate_publickey(self.user, key)
            .await
            .map_err(|e| self.lost(e))?;
        self.tried.push(format!("key {}", path.display()));
        Ok(self.outcome(result))
    }

    /// The agent's keys (only those of `spec`'s key files with
    /// `IdentitiesOnly`); `held` gets every key it offered.
    async fn agent(
        &mut self,
        sock: &Path,
        spec: &ConnectSpec,
        held: &mut Vec<russh::keys::PublicKey>,
    ) -> Result<bool, TransportError> {
        if !sock.exists() {
            self.tried.push(format!(
                "ssh-agent (its socket {} does not exist: SSH_AUTH_SOCK or IdentityAgent names no running agent; under WSL, is the agent bridge running?)",
                sock.display()
            ));
            return Ok(false);
        }
        let mut agent = match AgentClient::connect_uds(sock).await {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!("ssh-agent at {} unusable: {e}", sock.display());
                self.tried.push(format!("ssh-agent (unusable: {e})"));
                return Ok(false);
            }
        };
        if let Some(binding) = self.handle.agent_session_binding() {
            // Agents before OpenSSH 8.9 do not know session binding.
            if let Err(e) = agent.bind_session(binding, false).await {
                tracing::debug!("ssh-agent: session-bind refused: {e}");
            }
        }
        let identities = match agent.request_identities().await {
            Ok(ids) => ids,
            Err(e) => {
                self.tried.push(format!("ssh-agent (unusable: {e})"));
                return Ok(false);
            }
        };
        let only: Option<Vec<russh::keys::PublicKey>> = spec.identities_only.then(|| {
            spec.private_keys
                .iter()
                .filter_map(|p| keys::public_of(p))
                .collect()
        });
        let mut offered = 0;
        let mut refusals = Vec::new();
        for id in identities {
            let AgentIdentity::PublicKey { key, comment } = id else {
                continue;
            };
            if let Some(only) = &only {
                if !only.iter().any(|k| k.key_data() == key.key_data()) {
                    continue;
                }
            }
            if !self.allows(MethodKind::PublicKey) {
                break;
            }
            offered += 1;
            held.push(key.clone());
            let hash = self.hash_for(&key.algorithm()).await?;
            match self
                .handle
                .authenticate_publickey_with(self.user, key, hash, &mut agent)
                .await
            {
                Ok(result) => {
                    if self.outcome(result) {
                        return Ok(true);
                    }
                }
                Err(e) => {
                    tracing::debug!("ssh-agent could not sign with {comment}: {e}");
                    refusals.push(format!(
                        "the agent refused to sign with key '{comment}' ({e}; is the agent locked, or waiting for a confirmation?)"
                    ));
                }
            }
        }
        let filtered = match &only {
            Some(_) => ", IdentitiesOnly: only those of the key files",
            None => "",
        };
        match refusals.is_empty() {
            true => self
                .tried
                .push(format!("ssh-agent ({offered} keys{filtered})")),
            false => self.tried.push(format!(
                "ssh-agent ({offered} keys{filtered}; {})",
                refusals.join("; ")
            )),
        }
        Ok(false)
    }

    async fn password(&mut self, password: &Secret) -> Result<bool, TransportError> {
        let result = self
            .handle
            .authenticate_password(self.user, password.expose())
            .await
            .map_err(|e| self.lost(e))?;
        self.tried.push("password".into());
        Ok(self.outcome(result))
    }

    /// keyboard-interactive, answering the password to the one round of
    /// hidden prompts; a second round means it was wrong, and is not
    /// answered (no repeated failures that could lock the account).
    async fn keyboard(&mut self, password: &Secret) -> Result<bool, TransportError> {
        self.tried.push("keyboard-interactive".into());
        let mut reply = self
            .handle
            .authenticate_keyboard_interactive_start(self.user, None)
            .await
            .map_err(|e| self.lost(e))?;
        let mut answered = false;
        for _ in 0..8 {
            match reply {
                KeyboardInteractiveAuthResponse::Success => return Ok(true),
                KeyboardInteractiveAuthResponse::Failure {
                    remaining_methods, ..
                } => {
                    self.accepts = Some(remaining_methods.to_vec());
                    return Ok(false);
                }
                KeyboardInteractiveAuthResponse::InfoRequest { prompts, .. } => {
                    let hidden = prompts.iter().any(|p| !p.echo);
                    if hidden && answered {
                        return Ok(false);
                    }
                    answered |= hidden;
                    let answers = prompts
                        .iter()
                        .map(|p| match p.echo {
                            false => password.expose().to_string(),
                            true => String::new(),
                        })
                        .collect();
                    reply = self
                        .handle
                        .authenticate_keyboard_interactive_respond(answers)
                        .await
                        .map_err(|e| self.lost(e))?;
                }
            }
        }
        Ok(false)
    }

    fn failure(&self, spec: &ConnectSpec) -> TransportError {
        let tried = match self.tried.is_empty() {
            true => "nothing to try (no private key, no ssh-agent, no password)".to_string(),
            false => format!("tried {}", self.tried.join(", ")),
        };
        let accepts = match &self.accepts {
            None => String::new(),
            Some(m) if m.is_empty() => "; the server accepts no further attempts".to_string(),
            Some(m) => {
                let names: Vec<&str> = m.iter().map(<&str>::from).collect();
                format!("; the server accepts {}", names.join(", "))
            }
        };
        TransportError::Auth {
            user: spec.user.clone(),
            host: spec.addr(),
            detail: format!("{tried}{accepts}"),
        }
    }
}

impl SshTransport {
    /// The `host:port` this transport is connected to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The connection in use now.
    fn current(&self) -> Arc<Conn> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Conn {
    /// Are channels other than the caller's open?
    fn others_open(&self) -> bool {
        MAX_OPEN_SESSIONS - self.sessions.available_permits() > 1
    }

    fn gone(&self) -> TransportError {
        TransportError::Disconnected(format!("the connection to {} is closed", self.addr))
    }

    /// Open a session channel, retrying while the server refuses for lack
    /// of session slots (`MaxSessions`; OpenSSH reports it as "connect
    /// failed"): after one of our other channels closes if there are any,
    /// else with backoff for up to [`OPEN_RETRY_FOR`].
    async fn open_session(&self) -> Result<russh::Channel<client::Msg>, TransportError> {
        let started = tokio::time::Instant::now();
        let mut delay = Duration::from_millis(5);
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            match self.handle.channel_open_session().await {
                Ok(channel) => return Ok(channel),
                Err(russh::Error::ChannelOpenFailure(
                    reason @ (ChannelOpenFailure::AdministrativelyProhibited
                    | ChannelOpenFailure::ConnectFailed
                    | ChannelOpenFailure::ResourceShortage),
                )) if self.others_open() || started.elapsed() < OPEN_RETRY_FOR => {
                    tracing::debug!("{}: session refused ({reason:?}), retrying", self.addr);
                    if self.others_open() {
                        // The safety timeout covers a close that raced the
                        // refusal.
                        let _ = tokio::time::timeout(Duration::from_secs(1), freed).await;
                    } else {
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_millis(250));
                    }
                }
                Err(e) => {
                    if self.handle.is_closed() {
                        return Err(self.gone());
                    }
                    return Err(TransportError::Disconnected(format!(
                        "cannot open a session on {}: {e}",
                        self.addr
                    )));
                }
            }
        }
    }
}

#[async_trait]
impl Transport for SshTransport {
    async fn spawn(&self, command: &str) -> Result<Box<dyn RemoteProcess>, TransportError> {
        let conn = self.current();
        if self.closed.load(Ordering::Acquire) || conn.handle.is_closed() {
            return Err(conn.gone());
        }
        let permit = conn
            .sessions
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| conn.gone())?;
        let slot = Slot {
            _permit: permit,
            freed: conn.freed.clone(),
        };
        let (read, writer) = conn.open_session().await?.split();
        let (tx, events) = mpsc::unbounded_channel();
        let (closed_tx, closed) = watch::channel(false);
        tokio::spawn(pump(read, tx, closed_tx));
        // Built before `exec` so that an error, or this future being
        // dropped, closes the channel (through `Drop`).
        let process = SshProcess {
            writer: Some(writer),
            events,
            closed,
            slot: Some(slot),
            exit: None,
            eof_sent: false,
            done: false,
        };
        // Not waiting for the reply saves a round trip; a refusal arrives
        // as `Failure` and ends the process.
        if let Some(writer) = &process.writer {
            writer.exec(true, command.as_bytes()).await.map_err(|e| {
                TransportError::Disconnected(format!(
                    "cannot start a command on {}: {e}",
                    self.addr
                ))
            })?;
        }
        Ok(Box::new(process))
    }

    async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.current().close().await;
    }

    fn shells(&self) -> Option<&super::shell::Shells> {
        Some(&self.shells)
    }

    async fn reconnect(&self) -> Result<(), TransportError> {
        // A rebooted host is another host as far as open shells go.
        self.shells.clear().await;
        if self.closed.load(Ordering::Acquire) {
            return Err(self.current().gone());
        }
        let new = Arc::new(open(&self.spec, self.agent.as_deref(), &self.jumps).await?);
        let old = std::mem::replace(
            &mut *self.conn.lock().unwrap_or_else(|p| p.into_inner()),
            new,
        );
        // Usually dead already (the host rebooted); say goodbye if not.
        old.close().await;
        Ok(())
    }
}

impl Conn {
    pub(super) async fn close(&self) {
        self.sessions.close();
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }
}

/// Moves a channel's messages into an unbounded queue. russh hands messages
/// to a channel from its one connection task and waits when the channel's
/// buffer is full, which would stall every channel of the connection (and
/// deadlock a caller still writing stdin) while one consumer is not reading.
async fn pump(
    mut read: ChannelReadHalf,
    tx: mpsc::UnboundedSender<ChannelMsg>,
    closed: watch::Sender<bool>,
) {
    loop {
        tokio::select! {
            msg = read.wait() => {
                let Some(msg) = msg else { break };
                if matches!(msg, ChannelMsg::Close) {
                    closed.send_replace(true);
                }
                if tx.send(msg).is_err() {
                    break;
                }
            }
            () = tx.closed() => break,
        }
    }
    closed.send_replace(true);
}

/// One of the connection's session slots, taken while a channel is open.
struct Slot {
    _permit: OwnedSemaphorePermit,
    freed: Arc<Notify>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.freed.notify_waiters();
    }
}

/// A command running on its own channel.
struct SshProcess {
    writer: Option<ChannelWriteHalf<client::Msg>>,
    events: mpsc::UnboundedReceiver<ChannelMsg>,
    /// Becomes true when the server has closed the channel.
    closed: watch::Receiver<bool>,
    /// The session slot, held until the channel is closed.
    slot: Option<Slot>,
    /// The exit status, reported after all output.
    exit: Option<i32>,
    eof_sent: bool,
    done: bool,
}

impl SshProcess {
    /// Stop using the channel. `close` sends CHANNEL_CLOSE (after a TERM
    /// signal if `kill`); it is not needed once the server closed it, as
    /// russh answers that itself. The session slot is released after the
    /// close has been queued, so the next open reaches the server after it.
    fn finish(&mut self, close: bool, kill: bool) {
        self.done = true;
        self.events.close();
        let writer = self.writer.take();
        let slot = self.slot.take();
        let (Some(writer), true) = (writer, close) else {
            return;
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        rt.spawn(async move {
            if kill {
                let _ = writer.signal(Sig::TERM).await;
            }
            let _ = writer.eof().await;
            let _ = writer.close().await;
            drop(slot);
        });
    }
}

#[async_trait]
impl RemoteProcess for SshProcess {
    async fn write(&mut self, data: &[u8]) -> Result<(), TransportError> {
        let writer = match (&self.writer, self.eof_sent) {
            (Some(w), false) => w,
            _ => return Err(TransportError::Disconnected("stdin already closed".into())),
        };
        let mut closed = self.closed.clone();
        tokio::select! {
            biased;
            sent = writer.data_bytes(data.to_vec()) => sent.map_err(|e| {
                TransportError::Disconnected(format!("writing to the command's stdin: {e}"))
            }),
            // A command that exits without reading its input leaves the
            // window shut: do not wait for it forever.
            _ = closed.wait_for(|c| *c) => Err(TransportError::Disconnected(
                "the command ended before reading all of its stdin".into(),
            )),
        }
    }

    async fn close_stdin(&mut self) -> Result<(), TransportError> {
        if let (Some(w), false) = (&self.writer, self.eof_sent) {
            self.eof_sent = true;
            // A command that already exited is not an error.
            let _ = w.eof().await;
        }
        Ok(())
    }

    async fn next(&mut self) -> Option<ProcessEvent> {
        while !self.done {
            match self.events.recv().await {
                Some(ChannelMsg::Data { data }) => {
                    return Some(ProcessEvent::Stdout(data.to_vec()))
                }
                Some(ChannelMsg::ExtendedData { data, ext: 1 }) => {
                    return Some(ProcessEvent::Stderr(data.to_vec()))
                }
                Some(ChannelMsg::ExitStatus { exit_status }) => {
                    self.exit = Some(i32::try_from(exit_status).unwrap_or(-1));
                }
                Some(ChannelMsg::ExitSignal { signal_name, .. }) => {
                    self.exit = Some(signal_number(&signal_name).map_or(-1, |n| 128 + n));
                }
                Some(ChannelMsg::Failure) => {
                    // The only request we make is `exec`.
                    self.finish(true, false);
                    return Some(ProcessEvent::Stderr(
                        b"drover: the server refused to run the command\n".to_vec(),
                    ));
                }
                Some(ChannelMsg::Close) | None => {
                    self.finish(false, false);
                    return self.exit.take().map(ProcessEvent::Exit);
                }
                Some(_) => {}
            }
        }
        None
    }
}

impl Drop for SshProcess {
    fn drop(&mut self) {
        if !self.done {
            // Abandoned mid-run (an error or a timeout upstream): stop the
            // command, since without a tty it would outlive its channel and
            // keep its session slot on the server.
            let kill = self.exit.is_none();
            self.finish(true, kill);
        }
    }
}

fn is_rsa(alg: &Algorithm) -> bool {
    matches!(alg, Algorithm::Rsa { .. })
}

/// Linux signal numbers (the targets are Linux), for 128+N statuses.
fn signal_number(sig: &Sig) -> Option<i32> {
    Some(match sig {
        Sig::HUP => 1,
        Sig::INT => 2,
        Sig::QUIT => 3,
        Sig::ILL => 4,
        Sig::ABRT => 6,
        Sig::FPE => 8,
        Sig::KILL => 9,
        Sig::USR1 => 10,
        Sig::SEGV => 11,
        Sig::PIPE => 13,
        Sig::ALRM => 14,
        Sig::TERM => 15,
        Sig::Custom(name) => match name.as_str() {
            "TRAP" => 5,
            "BUS" => 7,
            "USR2" => 12,
            "STKFLT" => 16,
            "CHLD" => 17,
            "CONT" => 18,
            "STOP" => 19,
            "TSTP" => 20,
            "TTIN" => 21,
            "TTOU" => 22,
            "URG" => 23,
            "XCPU" => 24,
            "XFSZ" => 25,
            "VTALRM" => 26,
            "PROF" => 27,
            "WINCH" => 28,
            "IO" => 29,
            "PWR" => 30,
            "SYS" => 31,
            _ => return None,
        },
    })
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::process::{Child, Command, Stdio};
    use std::time::Instant;

    use super::tests_support::*;
    use super::*;
    use crate::transport::{Become, BecomeMethod, Remote};

    #[test]
    fn signals_map_to_shell_statuses() {
        assert_eq!(signal_number(&Sig::TERM), Some(15));
        assert_eq!(signal_number(&Sig::KILL), Some(9));
        assert_eq!(signal_number(&Sig::Custom("USR2".into())), Some(12));
        assert_eq!(signal_number(&Sig::Custom("NOPE".into())), None);
    }

    #[test]
    fn ipv6_addresses_are_bracketed() {
        let mut spec = test_spec("::1", 22, PathBuf::from("/nonexistent"));
        assert_eq!(spec.addr(), "[::1]:22");
        spec.address = "pi".into();
        assert_eq!(spec.addr(), "pi:22");
    }

    #[test]
    fn pinned_algorithms_are_asked_for_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kh = dir.path().join("known_hosts");
        fs::write(
            &kh,
            "[pi]:2222 ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBNGQ2ehL153JCI8TzhAwCGb/78xbAMJnU9XLDRWeqQN8tjLCEpzhAzpdyd7wy/poLhDJXBxpTUYOgUa35gkhG/I=\n",
        )
        .expect("write");
        let config = client_config(&test_spec("pi", 2222, kh.clone()));
        assert_eq!(config.preferred.key[0].as_str(), "ecdsa-sha2-nistp256");
        assert_eq!(config.keepalive_max, 3);
        assert!(config.inactivity_timeout.is_none());
        let config = client_config(&test_spec("other", 2222, kh));
        assert_eq!(config.preferred.key[0], Algorithm::Ed25519);
    }

    async fn run(remote: &Remote, command: &str, stdin: &[u8]) -> crate::transport::ExecOutput {
        match remote.exec(command, stdin).await {
            Ok(out) => out,
            Err(e) => panic!("{command}: {e}"),
        }
    }

    #[tokio::test]
    #[ignore = "needs root: run scripts/test"]
    async fn exec_output_status_signals_and_stdin() {
        let sshd = Sshd::start("");
        let t = sshd.connect().await;
        let remote = Remote::new(t.clone(), None);
        let out = run(&remote, "echo hello", b"").await;
        assert_eq!((out.status, out.stdout_str().as_str()), (0, "hello\n"));
        let out = run(&remote, "echo out; echo err >&2; exit 3", b"").await;
        assert_eq!(out.status, 3);
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
        let out = run(&remote, "kill -TERM $$", b"").await;
        assert_eq!(out.status, 128 + 15);
        let out = run(&remote, "cat", b"piped\0bytes").await;
        assert_eq!(out.stdout, b"piped\0bytes");
        assert_eq!(run(&remote, "whoami", b"").await.stdout, b"root\n");
        // More than russh's channel buffer and both windows, echoed back
        // while we are still writing: must not deadlock.
        let big: Vec<u8> = (0..8 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
        let out = run(&remote, "cat", &big).await;
        assert_eq!(out.stdout.len(), big.len());
        assert!(out.stdout == big);
        // Output only after stdin is closed.
        let out = run(&remote, "wc -c", &big).await;
        assert_eq!(out.stdout_str().trim(), big.len().to_string());
        // A command that exits without reading its input must not leave the
        // writer waiting forever for window space, and is answered with its
        // own status and output, not as a lost connection.
        let unread = tokio::time::timeout(Duration::from_secs(10), remote.exec("true", &big))
            .await
            .expect("no hang")
            .expect("not a lost connection");
        assert_eq!(unread.status, 0);
        let failed = tokio::time::timeout(
            Duration::from_secs(10),
            remote.exec(
                "head -c 10 >/dev/null; echo 'No space left on device' >&2; exit 1",
                &big,
            ),
        )
        .await
        .expect("no hang")
        .expect("not a lost connection");
        assert_eq!(failed.status, 1);
        assert_eq!(failed.stderr_str(), "No space left on device\n");
        // A local file is streamed: what arrives is the file.
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("big");
        fs::write(&file, &big).expect("write");
        let sha1 = crate::modules::fs::sha1_hex(&big);
        let parts = [
            crate::transport::StdinPart::Bytes(b"head:"),
            crate::transport::StdinPart::File {
                path: &file,
                len: big.len() as u64,
                sha1: Some(&sha1),
            },
        ];
        let out = remote
            .exec_parts("sha1sum", &parts)
            .await
            .expect("streamed");
        let mut want = b"head:".to_vec();
        want.extend_from_slice(&big);
        assert_eq!(
            out.stdout_str().split_whitespace().next(),
            Some(crate::modules::fs::sha1_hex(&want).as_str())
        );
        // A file that is not what was planned is a local failure, not an
        // unreachable host.
        let parts = [crate::transport::StdinPart::File {
            path: &file,
            len: big.len() as u64,
            sha1: Some("0000000000000000000000000000000000000000"),
        }];
        let err = remote
            .exec_parts("cat >/dev/null", &parts)
            .await
            .expect_err("changed");
        assert!(matches!(err, TransportError::LocalSource { .. }), "{err}");
        assert!(!err.is_unreachable());
        t.close().await;
        let err = t
            .spawn("true")
            .await
            .err()
            .expect("closed transport refuses");
        assert!(matches!(err, TransportError::Disconnected(_)), "{err}");
        sshd.stop().await;
    }

    #[tokio::test]
    #[ignore = "needs root: run scripts/test"]
    async fn many_commands_share_one_connection() {
        let sshd = Sshd::start("MaxSessions 10");
        let t = sshd.connect().await;
        let remote = Remote::new(t.clone(), None);
        for i in 0..30 {
            let out = run(&remote, &format!("echo {i}"), b"").await;
            assert_eq!(out.stdout_str(), format!("{i}\n"));
        }
        let jobs = (0..20).map(|i| {
            let remote = remote.clone();
            async move {
                let out = run(&remote, &format!("sleep 0.2; echo {i}"), b"").await;
                (i, out)
            }
        });
        for (i, out) in futures::future::join_all(jobs).await {
            assert_eq!(out.stdout_str(), format!("{i}\n"), "{}", sshd.log());
        }
        for i in 0..20 {
            assert_eq!(run(&remote, &format!("echo {i}"), b"").await.status, 0);
        }
        t.close().await;
        sshd.stop().await;
    }

    #[tokio::test]
    #[ignore = "needs root: run scripts/test"]
    async fn refused_channel_opens_are_retried() {
        // A server allowing fewer sessions than we open at once.
        let sshd = Sshd::start("MaxSessions 2");
        let t = sshd.connect().await;
        let remote = Remote::new(t.clone(), None);
        let jobs = (0..12).map(|i| {
            let remote = remote.clone();
            async move { run(&remote, &format!("sleep 0.05; echo {i}"), b"").await }
        });
        let outs = futures::future::join_all(jobs).await;
        for (i, out) in outs.iter().enumerate() {
            assert_eq!(out.stdout_str(), format!("{i}\n"));
        }
        t.close().await;
        sshd.stop().await;
    }

    #[tokio::test]
    #[ignore = "needs root: run scripts/test"]
    async fn abandoned_commands_are_signalled_and_closed() {
        let sshd = Sshd::start("MaxSessions 10\nLogLevel DEBUG");
        let t = sshd.connect().await;
        // More abandoned commands than the server has session slots: the
        // slots of the running ones are waited for.
        for _ in 0..12 {
            let mut p = t.spawn("sleep 0.4").await.expect("spawn");
            p.write(b"x").await.expect("write");
            drop(p);
        }
        let remote = Remote::new(t.clone(), None);
        let out = run(&remote, "echo still here", b"").await;
        assert_eq!(out.stdout_str(), "still here\n");
        t.close().await;
        // Each abandoned command got a TERM signal request. (OpenSSH acts on
        // it only for non-root users: root sessions run without post-auth
        // privilege separation, which signalling requires.)
        let log = sshd.log();
        assert_eq!(log.matches("req signal").count(), 12, "{log}");
        sshd.stop().await;
    }

    #[tokio::test]
    #[ignore = "needs root: run scripts/test"]
    async fn become_through_real_sudo() {
        let sshd = Sshd::start("");
        let t = sshd.connect().await;
        let root = Become {
            user: "root".into(),
            password: None,
            method: BecomeMethod::Sudo,
        };
        let remote = Remote::new(t.clone(), Some(root));
        let out = run(&remote, "id -u; cat", b"via sudo").await;
        assert_eq!(
            out.stdout_str(),
            "0\nvia sudo",
            "stderr: {}",
            out.stderr_str()
        );
        let nobody = remote.with_become(Some(Become {
            user: "nobody".into(),
            password: None,
            method: BecomeMethod::Sudo,
        }));
        let out = run(&nobody, "id -un; exit 4", b"").await;
        assert_eq!((out.status, out.stdout_str().as_str()), (4, "nobody\n"));
        t.close().await;
        sshd.stop().await;
    }

    #[tokio::test]
    #[ignore = "needs root: run scripts/test"]
    async fn reconnect_replaces_a_dead_connection_and_keeps_become() {
        let sshd = Sshd::start("");
        let t = sshd.connect().await;
        let root = Become {
            user: "root".into(),
            password: None,
            method: BecomeMethod::Sudo,
        };
        let remote = Remote::new(t.clone(), Some(root));
        let plain = remote.with_become(None);
        // A session's shell is a child of its connection's sshd process.
        let first = run(&plain, "echo $PPID", b"").await.stdout_str();
        assert_eq!(run(&plain, "echo $PPID", b"").await.stdout_str(), first);
        // Kill that connection's sshd, as a reboot would: the nearest
        // sshd above the command (its shell's parent, or the parent of the
        // connection's kept shell).
        let _ = plain
            .exec(
                "p=$PPID; while ! grep -qx 'sshd\\|sshd-session' /proc/$p/comm; do \
                 p=$(cut -d' ' -f4 /proc/$p/stat); done; kill -9 $p",
                b"",
            )
            .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            remote.exec("true", b"").await.is_err(),
            "old connection is dead"
        );
        remote.reconnect().await.expect("reconnect");
        assert_eq!(
            run(&remote, "id -u", b"").await.stdout_str(),
            "0\n",
            "become still applies"
        );
        assert_ne!(
            run(&plain, "echo $PPID", b"").await.stdout_str(),
            first,
            "a new connection"
        );
        t.close().await;
        assert!(
            t.reconnect().await.is_err(),
            "a closed transport stays closed"
        );
        sshd.stop().await;
    }

    #[tokio::test]
    #[ignore = "needs root: run scripts/test"]
    async fn host_key_alias_names_the_known_hosts_entry() {
        let sshd = Sshd::start("");
        let mut spec = sshd.spec();
        // The key is known only under the alias.
        let line = sshd.host_key_line();
        let aliased = line.replacen(&format!("[{}]", sshd.address), "[pi-alias]", 1);
        fs::write(&spec.known_hosts, &aliased).expect("write known_hosts");
        assert!(connect(&spec).await.is_err(), "not known under the address");
        spec.host_key_alias = Some("pi-alias".into());
        let t = connect(&spec).await.expect("known under the alias");
        t.close().await;
        sshd.stop().await;
    }

    #[tokio::test]
    #[ignore = "needs root: run scripts/test"]
    async fn host_key_checking_strict_accept_new_and_changed() {
        let sshd = Sshd::start("");
        let mut spec = sshd.spec();
        let kh = sshd.path("known_hosts");
        fs::remove_file(&kh).expect("rm");

        // Strict: unknown host refused, nothing written.
        let err = connect(&spec).await.expect_err("unknown host refused");
        let msg = err.to_string();
        assert!(matches!(err, TransportError::HostKey { .. }), "{msg}");
        assert!(msg.contains("--host-key-checking accept-new"), "{msg}");
        assert!(!kh.exists());

        // accept-new learns it; strict accepts it afterwards.
        spec.checking = HostKeyChecking::AcceptNew;
        connect(&spec).await.expect("accept-new").close().await;
        assert_eq!(fs::read_to_string(&kh).expect("read"), sshd.host_key_line());
        spec.checking = HostKeyChecking::Strict;
        connect(&spec).await.expect("now known").close().await;

        // A changed key is refused in both modes, naming the line.
        keygen(&sshd.path("other"), "ed25519", "");
        let other = fs::read_to_string(sshd.path("other.pub")).expect("read");
        let other: Vec<&str> = other.split_whitespace().collect();
        let entry = format!("[{}]:{}", sshd.address, sshd.port);
        fs::write(
            &kh,
            format!("# pinned\n{entry} {} {}\n", other[0], other[1]),
        )
        .expect("write");
        for checking in [HostKeyChecking::Strict, HostKeyChecking::AcceptNew] {
            spec.checking = checking;
            let err = connect(&spec).await.expect_err("changed key refused");
            let msg = err.to_string();
            assert!(matches!(err, TransportError::HostKey { .. }), "{msg}");
            assert!(msg.contains(&format!("{}:2", kh.display())), "{msg}");
            assert!(msg.contains("REMOTE HOST KEY CHANGED"), "{msg}");
            assert!(msg.contains("drover known-hosts forget"), "{msg}");
        }

        // A pinned key of another algorithm is refused too.
        keygen(&sshd.path("ecdsa"), "ecdsa", "");
        let ecdsa = fs::read_to_string(sshd.path("ecdsa.pub")).expect("read");
        let ecdsa: Vec<&str> = ecdsa.split_whitespace().collect();
        fs::write(&kh, format!("{entry} {} {}\n", ecdsa[0], ecdsa[1])).expect("write");
        let err = connect(&spec).await.expect_err("other algorithm refused");
        assert!(err.to_string().contains("another algorithm"), "{err}");
        assert!(
            err.to_string().contains(&format!("{}:1", kh.display())),
            "{err}"
        );

        // After forgetting, accept-new learns the real key again.
        assert_eq!(
            known_hosts::forget(&kh, &sshd.address, sshd.port).expect("forget"),
            1
        );
        spec.checking = HostKeyChecking::AcceptNew;
        connect(&spec).await.expect("relearned").close().await;
        sshd.stop().await;
    }

    #[tokio::test]
    #[ignore = "needs root: run scripts/test"]
    async fn parallel_first_contacts_all_land_in_known_hosts() {
        // One sshd answering on eight more addresses: eight hosts to learn.
        let port = lab_port();
        let mut extra: String = (1..=8)
            .map(|i| format!("ListenAddress 127.0.8.{i}:{port}\n"))
            .collect();
        // Eleven handshakes at once: beyond the default MaxStartups 10:30:100
        // sshd drops some (drover opens one connection per host, so real
        // hosts do not see this).
        extra.push_str("MaxStartups 30\n");
        let sshd = Sshd::start(&extra);
        // Eight different hosts, and the same unknown host three times.
        let mut addresses: Vec<String> = (1..=8).map(|i| format!("127.0.8.{i}")).collect();
        addresses.extend(std::iter::repeat_n(sshd.address.clone(), 3));
        let specs: Vec<ConnectSpec> = addresses
            .iter()
            .map(|address| {
                let mut spec = sshd.spec();
                spec.address = address.clone();
                spec.checking = HostKeyChecking::AcceptNew;
                spec
            })
            .collect();
        let kh = sshd.path("known_hosts");
        fs::remove_file(&kh).expect("rm");
        let jobs = specs.iter().map(connect);
        for r in futures::future::join_all(jobs).await {
            r.expect("connect").close().await;
        }
        let text = fs::read_to_string(&kh).expect("read");
        assert_eq!(text.lines().count(), 9, "{text}");
        for address in &addresses {
            let entry = format!("[{address}]:{port} ");
            assert_eq!(text.matches(&entry).count(), 1, "{entry} in {text}");
        }
        sshd.stop().await;
    }

    #[tokio::test]
    #[ignore = "needs root: run scripts/test"]
    async fn authentication_failures_and_key_choices() {
        let sshd = Sshd::start("");
        let mut spec = sshd.spec();

        // A key the server does not know: Auth error naming what was tried.
        keygen(&sshd.path("stranger"), "ed25519", "");
        spec.private_keys = vec![sshd.path("stranger")];
        let err = connect(&spec).await.expect_err("unknown key refused");
        let msg = err.to_string();
        assert!(matches!(err, TransportError::Auth { .. }), "{msg}");
        assert!(msg.contains("stranger"), "{msg}");
        assert!(msg.contains("the server accepts publickey"), "{msg}");

        // Nothing to try at all.
        spec.private_keys.clear();
        let err = connect(&spec).await.expect_err("nothing to try");
        assert!(err.to_string().contains("nothing to try"), "{err}");

        // An encrypted key and a missing one are skipped; an RSA key works
        // (signed with the server's best RSA hash).
        keygen(&sshd.path("locked"), "ed25519", "secret passphrase");
        keygen(&sshd.path("id_rsa"), "rsa", "");
        let rsa = fs::read_to_string(sshd.path("id_rsa.pub")).expect("read");
        fs::write(sshd.path("authorized_keys"), rsa).expect("write");
        spec.private_keys = vec![
            sshd.path("missing"),
            sshd.path("locked"),
            sshd.path("id_rsa"),
        ];
        let t = Arc::new(connect(&spec).await.expect("rsa key"));
        let out = Remote::new(t.clone(), None)
            .exec("echo rsa", b"")
            .await
            .expect("exec");
        assert_eq!(out.stdout, b"rsa\n");
        t.close().await;
        sshd.stop().await;
    }

    #[tokio::test]
    #[ignore = "needs root: run scripts/test"]
    async fn agent_keys_are_used() {
        let sshd = Sshd::start("");
        let sock = sshd.path("agent.sock");
        let agent = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&sock)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ssh-agent");
        struct Kill(Child);
        impl Drop for Kill {
            fn drop(&mut self) {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
        let guard = Kill(agent);
        for _ in 0..100 {
            if sock.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let added = Command::new("ssh-add")
            .arg(sshd.path("id_ed25519"))
            .env("SSH_AUTH_SOCK", &sock)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("ssh-add");
        assert!(added.success());
        let mut spec = sshd.spec();
        spec.private_keys.clear();
        spec.agent = AgentSource::Socket(sock.clone());
        let t = connect_with_agent(&spec, Some(&sock))
            .await
            .expect("agent auth");
        t.close().await;
        drop(guard);
        sshd.stop().await;
    }

    #[tokio::test]
    async fn connection_refused_fails_fast() {
        let started = Instant::now();
        let dir = tempfile::tempdir().expect("tempdir");
        // Nothing listens on this port at this address.
        let spec = test_spec("127.0.7.250", 9, dir.path().join("known_hosts"));
        let err = connect(&spec).await.expect_err("refused");
        assert!(matches!(err, TransportError::Connect { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test]
    async fn silent_server_times_out() {
        let listener = tokio::net::TcpListener::bind("127.0.7.251:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        let dir = tempfile::tempdir().expect("tempdir");
        let mut spec = test_spec("127.0.7.251", port, dir.path().join("known_hosts"));
        spec.connect_timeout = Duration::from_millis(300);
        let started = Instant::now();
        let err = connect(&spec).await.expect_err("timeout");
        assert!(matches!(err, TransportError::Timeout { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(2));
        hold.abort();
    }

    /// An in-process russh server offering only the given password
    /// methods (the lab sshd runs without PAM, so it has no
    /// keyboard-interactive, and root may not use passwords there).
    struct PasswordServer {
        password: &'static str,
        /// russh's server asks the handler even for methods it does not offer.
        allow_password: bool,
        /// keyboard-interactive rounds answered, to check we answer once.
        rounds: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl russh::server::Handler for PasswordServer {
        type Error = russh::Error;

        async fn auth_password(
            &mut self,
            _user: &str,
            password: &str,
        ) -> Result<russh::server::Auth, Self::Error> {
            Ok(match self.allow_password && password == self.password {
                true => russh::server::Auth::Accept,
                false => russh::server::Auth::reject(),
            })
        }

        async fn auth_keyboard_interactive<'a>(
            &'a mut self,
            _user: &str,
            _submethods: &str,
            response: Option<russh::server::Response<'a>>,
        ) -> Result<russh::server::Auth, Self::Error> {
            let Some(mut response) = response else {
                return Ok(russh::server::Auth::Partial {
                    name: "".into(),
                    instructions: "".into(),
                    prompts: vec![("Password: ".into(), false)].into(),
                });
            };
            self.rounds.fetch_add(1, Ordering::SeqCst);
            let ok = response
                .next()
                .is_some_and(|answer| answer.as_ref() == self.password.as_bytes());
            Ok(match ok {
                true => russh::server::Auth::Accept,
                false => russh::server::Auth::reject(),
            })
        }
    }

    /// Serve `connections` connections with `methods`; returns the port and
    /// the keyboard-interactive round counter.
    async fn password_server(
        dir: &Path,
        methods: &[MethodKind],
        connections: usize,
    ) -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
        let key_path = dir.join("russh_host");
        keygen(&key_path, "ed25519", "");
        let host_key = russh::keys::load_secret_key(&key_path, None).expect("host key");
        let config = Arc::new(russh::server::Config {
            methods: russh::MethodSet::from(methods),
            auth_rejection_time: Duration::from_millis(1),
            keys: vec![host_key],
            ..Default::default()
        });
        let listener = tokio::net::TcpListener::bind("127.0.7.252:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let rounds = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = rounds.clone();
        let allow_password = methods.contains(&MethodKind::Password);
        tokio::spawn(async move {
            for _ in 0..connections {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let handler = PasswordServer {
                    password: "correct horse",
                    allow_password,
                    rounds: counter.clone(),
                };
                let config = config.clone();
                tokio::spawn(async move {
                    if let Ok(session) = russh::server::run_stream(config, socket, handler).await {
                        let _ = session.await;
                    }
                });
            }
        });
        (port, rounds)
    }

    #[tokio::test]
    async fn password_and_keyboard_interactive() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kh = dir.path().join("known_hosts");
        let (port, _) = password_server(dir.path(), &[MethodKind::Password], 3).await;
        let mut spec = test_spec("127.0.7.252", port, kh.clone());
        spec.checking = HostKeyChecking::AcceptNew;
        // A key first (refused: the server wants passwords), then the password.
        keygen(&dir.path().join("id"), "ed25519", "");
        spec.private_keys = vec![dir.path().join("id")];
        spec.password = Some(Secret::new("correct horse"));
        connect(&spec).await.expect("password auth").close().await;

        // A wrong password: the error says what was tried, never the secret.
        spec.password = Some(Secret::new("wrong battery"));
        let err = connect(&spec).await.expect_err("wrong password");
        let msg = format!("{err} {err:?}");
        assert!(matches!(err, TransportError::Auth { .. }), "{msg}");
        assert!(msg.contains("password"), "{msg}");
        assert!(!msg.contains("wrong battery"), "{msg}");

        // Nothing to try against a password server: say so.
        spec.password = None;
        spec.private_keys.clear();
        let err = connect(&spec).await.expect_err("no password");
        assert!(err.to_string().contains("nothing to try"), "{err}");

        // A server offering only keyboard-interactive gets the password
        // as the answer to its hidden prompt, once.
        let dir = tempfile::tempdir().expect("tempdir");
        let (port, rounds) =
            password_server(dir.path(), &[MethodKind::KeyboardInteractive], 2).await;
        let mut spec = test_spec("127.0.7.252", port, dir.path().join("known_hosts"));
        spec.checking = HostKeyChecking::AcceptNew;
        spec.password = Some(Secret::new("correct horse"));
        connect(&spec)
            .await
            .expect("keyboard-interactive")
            .close()
            .await;
        assert_eq!(rounds.load(Ordering::SeqCst), 1);
        spec.password = Some(Secret::new("wrong battery"));
        let err = connect(&spec).await.expect_err("wrong answer");
        let msg = format!("{err} {err:?}");
        assert!(msg.contains("keyboard-interactive"), "{msg}");
        assert!(!msg.contains("wrong battery"), "{msg}");
        assert_eq!(rounds.load(Ordering::SeqCst), 2);
    }
}

/// A real OpenSSH server for tests, and specs to reach it.
#[cfg(test)]
pub(crate) mod tests_support {
    use std::fs;
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};
    use std::sync::atomic::{AtomicU8, Ordering};
    use std::sync::{Arc, OnceLock};
    use std::time::{Duration, Instant};

    use super::{connect, AgentSource, ConnectSpec, HostKeyChecking, SshTransport};

    pub(crate) fn test_spec(address: &str, port: u16, known_hosts: PathBuf) -> ConnectSpec {
        ConnectSpec {
            name: "lab".into(),
            address: address.into(),
            port,
            user: "root".into(),
            private_keys: Vec::new(),
            agent: AgentSource::None,
            identities_only: false,
            proxy: None,
            host_key_alias: None,
            password: None,
            known_hosts,
            checking: HostKeyChecking::Strict,
            connect_timeout: Duration::from_secs(10),
            keepalive: Duration::from_secs(30),
        }
    }

    /// Each sshd gets its own address in 127.0.7.0/24; the port depends on
    /// the process so two test runs at once do not collide.
    static NEXT_HOST: AtomicU8 = AtomicU8::new(1);

    pub(crate) fn lab_port() -> u16 {
        20000 + (std::process::id() % 30000) as u16
    }

    pub(crate) fn keygen(path: &Path, kind: &str, passphrase: &str) {
        let status = Command::new("ssh-keygen")
            .args([
                "-q",
                "-t",
                kind,
                "-N",
                passphrase,
                "-C",
                "drover-test",
                "-f",
            ])
            .arg(path)
            .stdin(Stdio::null())
            .status()
            .expect("ssh-keygen runs");
        assert!(status.success(), "ssh-keygen failed");
    }

    /// A real OpenSSH server on a loopback address, killed (by PID) on drop.
    pub(crate) struct Sshd {
        child: Child,
        dir: tempfile::TempDir,
        pub address: String,
        pub port: u16,
    }

    impl Sshd {
        pub(crate) fn start(extra_config: &str) -> Sshd {
            let dir = tempfile::tempdir().expect("tempdir");
            let d = dir.path();
            let address = format!("127.0.7.{}", NEXT_HOST.fetch_add(1, Ordering::Relaxed));
            let port = lab_port();
            keygen(&d.join("host_ed25519"), "ed25519", "");
            keygen(&d.join("id_ed25519"), "ed25519", "");
            fs::copy(d.join("id_ed25519.pub"), d.join("authorized_keys")).expect("copy");
            // sshd's privilege separation directory.
            fs::create_dir_all("/run/sshd").expect("mkdir /run/sshd");
            let config = format!(
                "ListenAddress {address}:{port}\n\
                 HostKey {dir}/host_ed25519\n\
                 AuthorizedKeysFile {dir}/authorized_keys\n\
                 PidFile none\n\
                 UsePAM no\n\
                 StrictModes no\n\
                 PermitRootLogin prohibit-password\n\
                 PasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\n\
                 {extra_config}\n",
                dir = d.display()
            );
            fs::write(d.join("sshd_config"), config).expect("write config");
            let log = fs::File::create(d.join("sshd.log")).expect("log");
            let mut command = sshd_command(d);
            let mut child = command
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("sshd starts");
            let target: std::net::SocketAddr =
                format!("{address}:{port}").parse().expect("address");
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if std::net::TcpStream::connect_timeout(&target, Duration::from_millis(200)).is_ok()
                {
                    break;
                }
                let exited = child.try_wait().expect("try_wait");
                if exited.is_some() || Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    let log = fs::read_to_string(d.join("sshd.log")).unwrap_or_default();
                    panic!("sshd did not start ({exited:?}): {log}");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Sshd {
                child,
                dir,
                address,
                port,
            }
        }

        pub(crate) fn path(&self, name: &str) -> PathBuf {
            self.dir.path().join(name)
        }

        pub(crate) fn host_key_line(&self) -> String {
            let public = fs::read_to_string(self.path("host_ed25519.pub")).expect("read");
            let mut fields = public.split_whitespace();
            let (alg, b64) = (fields.next().expect("alg"), fields.next().expect("key"));
            format!("[{}]:{} {alg} {b64}\n", self.address, self.port)
        }

        /// A spec with the client key and its own known_hosts, where the
        /// host key is pinned.
        pub(crate) fn spec(&self) -> ConnectSpec {
            let kh = self.path("known_hosts");
            fs::write(&kh, self.host_key_line()).expect("write known_hosts");
            let mut spec = test_spec(&self.address, self.port, kh);
            spec.private_keys = vec![self.path("id_ed25519")];
            spec
        }

        pub(crate) fn log(&self) -> String {
            fs::read_to_string(self.path("sshd.log")).unwrap_or_default()
        }

        pub(crate) async fn connect(&self) -> Arc<SshTransport> {
            match connect(&self.spec()).await {
                Ok(t) => Arc::new(t),
                Err(e) => panic!("connect: {e}\nsshd log:\n{}", self.log()),
            }
        }
    }

    impl Sshd {
        /// Stop after the per-connection processes have gone, so that the
        /// listener reaps them (orphans would be left as zombies where
        /// PID 1 does not reap). Close transports first.
        pub(crate) async fn stop(self) {
            let pid = self.child.id();
            for _ in 0..150 {
                if !has_children(pid) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    impl Drop for Sshd {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    fn has_children(pid: u32) -> bool {
        let Ok(entries) = fs::read_dir("/proc") else {
            return false;
        };
        entries.flatten().any(|e| {
            let stat = fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            // pid (comm) state ppid ...; comm may contain spaces.
            let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
            after.split_whitespace().nth(1) == Some(pid.to_string().as_str())
        })
    }

    /// `sshd -D -e -f <dir>/sshd_config`. When mount namespaces are allowed
    /// (root, as in CI), it runs in its own with an empty file over
    /// /root/.bashrc: Debian's bash reads ~/.bashrc for every command sshd
    /// starts, and a development machine's (pyenv init, ...) would add a
    /// quarter of a second to each exec and swamp what the tests measure.
    fn sshd_command(dir: &Path) -> Command {
        static UNSHARE: OnceLock<bool> = OnceLock::new();
        let config = dir.join("sshd_config");
        let unshare = *UNSHARE.get_or_init(|| {
            Command::new("unshare")
                .args(["--mount", "--propagation", "private", "true"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        if !unshare {
            let mut c = Command::new("/usr/sbin/sshd");
            c.args(["-D", "-e", "-f"]).arg(config);
            return c;
        }
        let empty = dir.join("empty-bashrc");
        fs::write(&empty, "").expect("write");
        let script = format!(
            "[ -f /root/.bashrc ] && mount --bind '{}' /root/.bashrc; exec /usr/sbin/sshd -D -e -f '{}'",
            empty.display(),
            config.display()
        );
        let mut c = Command::new("unshare");
        c.args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c"])
            .arg(script);
        c
    }
}

#[cfg(test)]
mod measure {
    use std::time::Instant;

    use super::tests_support::*;
    use crate::transport::{Remote, Transport};

    /// Loopback timings; run with
    /// `cargo test --release --lib measure_loopback -- --ignored --nocapture`.
    #[tokio::test]
    #[ignore]
    #[allow(clippy::print_stderr)]
    async fn measure_loopback() {
        let sshd = Sshd::start("");
        let spec = sshd.spec();
        let mut connects = Vec::new();
        for _ in 0..10 {
            let started = Instant::now();
            let t = super::connect(&spec).await.expect("connect");
            connects.push(started.elapsed());
            t.close().await;
        }
        let t = sshd.connect().await;
        let remote = Remote::new(t.clone(), None);
        let started = Instant::now();
        for _ in 0..100 {
            remote.exec("true", b"").await.expect("exec");
        }
        let sequential = started.elapsed();
        let started = Instant::now();
        let jobs = (0..100).map(|_| remote.exec("true", b""));
        for r in futures::future::join_all(jobs).await {
            r.expect("exec");
        }
        let concurrent = started.elapsed();
        connects.sort();
        eprintln!(
            "connect+auth: median {:?} min {:?} max {:?}; 100 sequential `true`: {:?} ({:?} each); 100 concurrent: {:?}",
            connects[5],
            connects[0],
            connects[9],
            sequential,
            sequential / 100,
            concurrent
        );
        t.close().await;
        sshd.stop().await;
    }
}
