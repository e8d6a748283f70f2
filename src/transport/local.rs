//! The local transport: runs commands on the control machine with `/bin/sh -c`.
//! Used for `localhost`/`delegate_to: localhost` and for offline tests of
//! modules.

use std::process::Stdio;

use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{ChildStdin, Command};
use tokio::sync::mpsc;

use super::{ProcessEvent, RemoteProcess, Transport, TransportError};

/// Runs commands as local processes.
#[derive(Debug, Default, Clone)]
pub struct LocalTransport;

struct LocalProcess {
    stdin: Option<ChildStdin>,
    events: mpsc::Receiver<ProcessEvent>,
}

#[async_trait]
impl Transport for LocalTransport {
    async fn spawn(&self, command: &str) -> Result<Box<dyn RemoteProcess>, TransportError> {
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let (tx, rx) = mpsc::channel(16);
        let stdin = child.stdin.take();
        let readers = [
            child
                .stdout
                .take()
                .map(|s| pump(Box::new(s), tx.clone(), ProcessEvent::Stdout)),
            child
                .stderr
                .take()
                .map(|s| pump(Box::new(s), tx.clone(), ProcessEvent::Stderr)),
        ];
        tokio::spawn(async move {
            for r in readers.into_iter().flatten() {
                let _ = r.await;
            }
            let status = match child.wait().await {
                Ok(s) => s.code().unwrap_or_else(|| {
                    use std::os::unix::process::ExitStatusExt;
                    s.signal().map(|n| 128 + n).unwrap_or(-1)
                }),
                Err(_) => -1,
            };
            let _ = tx.send(ProcessEvent::Exit(status)).await;
        });
        Ok(Box::new(LocalProcess { stdin, events: rx }))
    }

    async fn close(&self) {}
}

fn pump(
    mut reader: Box<dyn tokio::io::AsyncRead + Unpin + Send>,
    tx: mpsc::Sender<ProcessEvent>,
    wrap: fn(Vec<u8>) -> ProcessEvent,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send(wrap(buf[..n].to_vec())).await.is_err() {
                        break;
                    }
                }
            }
        }
    })
}

#[async_trait]
impl RemoteProcess for LocalProcess {
    async fn write(&mut self, data: &[u8]) -> Result<(), TransportError> {
        match &mut self.stdin {
            Some(stdin) => Ok(stdin.write_all(data).await?),
            None => Err(TransportError::Disconnected("stdin already closed".into())),
        }
    }

    async fn close_stdin(&mut self) -> Result<(), TransportError> {
        if let Some(mut stdin) = self.stdin.take() {
            // A process that exits without reading its stdin is not an error.
            let _ = stdin.shutdown().await;
        }
        Ok(())
    }

    async fn next(&mut self) -> Option<ProcessEvent> {
        self.events.recv().await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::transport::Remote;

    #[tokio::test]
    async fn runs_and_feeds_stdin() {
        let remote = Remote::new(Arc::new(LocalTransport), None);
        let out = remote
            .exec("cat; echo err >&2; exit 3", b"hello")
            .await
            .expect("exec");
        assert_eq!(out.stdout, b"hello");
        assert_eq!(out.stderr, b"err\n");
        assert_eq!(out.status, 3);
    }
}
