//! Hosts that are not reached by a direct TCP connection: through jump
//! hosts (`ProxyJump`, SSH `direct-tcpip` channels) or through a local
//! command's stdin and stdout (`ProxyCommand`).
//!
//! A jump host's connection is opened once and shared by every target
//! behind it for the whole run ([`Jumps`]); it stays open while any of them
//! uses it and is opened again when it has died (a target reconnecting
//! after its reboot goes through the jump again).

use std::collections::{HashMap, VecDeque};
use std::io;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, BufReader, ReadBuf};
use tokio::process::{Child, ChildStdin, ChildStdout};

use super::ssh::{Conn, ConnectSpec, Proxy};
use super::TransportError;

/// How much of a proxy command's stderr is kept for an error message.
const STDERR_TAIL: usize = 2048;

/// The run's jump host connections, keyed by the hop's chain
/// (`user@host:port` of it and of every hop before it).
#[derive(Default)]
pub struct Jumps {
    hops: Mutex<HashMap<String, HopSlot>>,
}

/// One hop's connection; the lock makes the targets that need it at the
/// same time wait for one connection instead of each opening its own.
type HopSlot = Arc<tokio::sync::Mutex<Option<Arc<Conn>>>>;

impl std::fmt::Debug for Jumps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jumps").finish_non_exhaustive()
    }
}

impl Jumps {
    /// The connection to the last of `hops`, through the ones before it,
    /// each opened on first use (or again if it has died since).
    pub(super) async fn through(&self, hops: &[ConnectSpec]) -> Result<Arc<Conn>, TransportError> {
        let mut key = String::new();
        let mut prev: Option<Arc<Conn>> = None;
        for hop in hops {
            if !key.is_empty() {
                key.push('>');
            }
            key.push_str(&hop_key(hop));
            let slot = {
                let mut map = self.hops.lock().unwrap_or_else(|p| p.into_inner());
                map.entry(key.clone()).or_default().clone()
            };
            let mut held = slot.lock().await;
            let conn = match held.as_ref().filter(|c| !c.handle.is_closed()) {
                Some(c) => c.clone(),
                None => {
                    let agent = hop.agent.socket();
                    let conn = Arc::new(match &prev {
                        None => Box::pin(super::ssh::open_via(hop, agent.as_deref(), self)).await,
                        Some(p) => {
                            let started = tokio::time::Instant::now();
                            let stream = tunnel(p, hop).await?;
                            let via = Via::Hop(p.clone());
                            super::ssh::open_over(hop, agent.as_deref(), stream, via, started).await
                        }
                    }?);
                    tracing::debug!("{}: jump host connected", hop.addr());
                    *held = Some(conn.clone());
                    conn
                }
            };
            prev = Some(conn);
        }
        prev.ok_or_else(|| TransportError::Connect {
            addr: String::new(),
            reason: "ProxyJump names no host".into(),
        })
    }

    /// Close every jump host connection (after the targets').
    pub async fn close_all(&self) {
        let slots: Vec<HopSlot> = {
            let mut map = self.hops.lock().unwrap_or_else(|p| p.into_inner());
            // Innermost hops first: their connections run through the
            // outer ones.
            let mut all: Vec<(String, HopSlot)> = map.drain().collect();
            all.sort_by_key(|(k, _)| std::cmp::Reverse(k.matches('>').count()));
            all.into_iter().map(|(_, s)| s).collect()
        };
        for slot in slots {
            if let Some(conn) = slot.lock().await.take() {
                conn.close().await;
            }
        }
    }
}

fn hop_key(hop: &ConnectSpec) -> String {
    let own = match &hop.proxy {
        None => String::new(),
        Some(Proxy::Command(c)) => format!(" via command {c}"),
        Some(Proxy::Jump(hops)) => {
            let names: Vec<String> = hops.iter().map(hop_key).collect();
            format!(" via {}", names.join(">"))
        }
    };
    format!("{}@{}{own}", hop.user, hop.addr())
}

/// A `direct-tcpip` channel from `hop` to `to`'s address, as a stream.
pub(super) async fn tunnel(
    hop: &Conn,
    to: &ConnectSpec,
) -> Result<russh::ChannelStream<russh::client::Msg>, TransportError> {
    match hop
        .handle
        .channel_open_direct_tcpip(to.address.clone(), u32::from(to.port), "127.0.0.1", 0)
        .await
    {
        Ok(channel) => Ok(channel.into_stream()),
        Err(e) => Err(TransportError::Connect {
            addr: to.addr(),
            reason: match e {
                russh::Error::ChannelOpenFailure(reason) => format!(
                    "the jump host {} cannot reach it ({reason:?}; is the address right from there, and does its sshd allow TCP forwarding?)",
                    hop.addr
                ),
                e => format!("through the jump host {}: {e}", hop.addr),
            },
        }),
    }
}

/// What a connection runs through, kept as long as the connection: the
/// jump host's connection, or the proxy command.
pub(super) enum Via {
    /// A direct TCP connection.
    Direct,
    /// A channel of this jump host connection (held, not read: it keeps
    /// the jump host's connection open while this one uses it).
    Hop(#[allow(dead_code)] Arc<Conn>),
    /// This proxy command's stdio.
    Command(Box<CommandGuard>),
}

/// A running proxy command: its process group is killed when the
/// connection it carries is dropped.
pub(super) struct CommandGuard {
    child: Child,
    /// The command's process group (its own PID).
    group: Option<u32>,
    /// The end of its stderr, for an error message.
    tail: Arc<Mutex<VecDeque<u8>>>,
    command: String,
}

impl Drop for CommandGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.group.and_then(|p| i32::try_from(p).ok()) {
            // Commands it started (nc, ssh -W) die with it.
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pgid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let _ = self.child.start_kill();
    }
}

impl CommandGuard {
    /// Why the connection failed if the command is the reason: it exited
    /// (its status and the end of its stderr).
    pub(super) async fn failure(&mut self) -> Option<String> {
        // The handshake fails when the stream ends, which is usually just
        // before the command's exit is seen.
        let status = tokio::time::timeout(Duration::from_secs(1), self.child.wait())
            .await
            .ok()?
            .ok()?;
        // Let the stderr reader take what is left.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let tail = self.tail.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let tail = String::from_utf8_lossy(&Vec::from(tail)).trim().to_string();
        let said = match tail.is_empty() {
            true => "nothing on stderr".to_string(),
            false => format!("its stderr ends: {tail}"),
        };
        Some(format!(
            "ProxyCommand `{}` exited ({status}) before the SSH handshake ended; {said}",
            self.command
        ))
    }
}

/// Start `command` with `sh -c` in its own process group; its stdin and
/// stdout carry the connection, its stderr goes to the debug log.
pub(super) fn spawn_command(
    command: &str,
    addr: &str,
) -> Result<(CommandStream, CommandGuard), TransportError> {
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| TransportError::Connect {
            addr: addr.to_string(),
            reason: format!("cannot start ProxyCommand `{command}`: {e}"),
        })?;
    let tail = Arc::new(Mutex::new(VecDeque::new()));
    if let Some(stderr) = child.stderr.take() {
        let (tail, addr) = (tail.clone(), addr.to_string());
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::debug!("{addr}: ProxyCommand: {line}");
                let mut t = tail.lock().unwrap_or_else(|p| p.into_inner());
                t.extend(line.bytes().chain(std::iter::once(b'\n')));
                let excess = t.len().saturating_sub(STDERR_TAIL);
                t.drain(..excess);
            }
        });
    }
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(TransportError::Connect {
            addr: addr.to_string(),
            reason: format!("ProxyCommand `{command}`: no stdin/stdout pipe"),
        });
    };
    let guard = CommandGuard {
        group: child.id(),
        child,
        tail,
        command: command.to_string(),
    };
    Ok((CommandStream { stdin, stdout }, guard))
}

/// A proxy command's stdout (read) and stdin (write) as one stream.
pub(super) struct CommandStream {
    stdin: ChildStdin,
    stdout: ChildStdout,
}

impl AsyncRead for CommandStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stdout).poll_read(cx, buf)
    }
}

impl AsyncWrite for CommandStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stdin).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stdin).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stdin).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::ssh::tests_support::test_spec;

    #[test]
    fn hop_keys_name_the_chain() {
        let mut hop = test_spec("10.0.0.1", 2222, "/nonexistent".into());
        hop.user = "pi".into();
        assert_eq!(hop_key(&hop), "pi@10.0.0.1:2222");
        hop.proxy = Some(Proxy::Command("nc %h %p".into()));
        assert_eq!(hop_key(&hop), "pi@10.0.0.1:2222 via command nc %h %p");
    }

    #[tokio::test]
    async fn a_proxy_command_that_exits_early_names_its_stderr() {
        let (_stream, mut guard) =
            spawn_command("echo 'no route to pi-master' >&2; exit 3", "web:22").expect("spawns");
        let why = guard.failure().await.expect("it exited");
        assert!(why.contains("exit status: 3"), "{why}");
        assert!(why.contains("no route to pi-master"), "{why}");
    }
}
