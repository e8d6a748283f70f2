//! The local transport: runs commands on the control machine with `/bin/sh -c`.
//! Used for `localhost`/`delegate_to: localhost` and for offline tests of
//! modules.

use std::process::Stdio;

use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{ChildStdin, Command};
use tokio::sync::mpsc;

use super::{ProcessEvent, RemoteProcess, Transport, TransportError};

/// How long output is still read after the process exited.
const OUTPUT_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// Runs commands as local processes.
#[derive(Debug, Default, Clone)]
pub struct LocalTransport;

/// Runs commands as local processes in a directory: a play's local tasks
/// run in the playbook's directory, as Ansible runs modules of a local
/// connection (relative paths they write are found there by `copy`'s src).
#[derive(Debug, Clone)]
pub struct LocalIn(pub std::path::PathBuf);

struct LocalProcess {
    stdin: Option<ChildStdin>,
    events: mpsc::Receiver<ProcessEvent>,
}

#[async_trait]
impl Transport for LocalTransport {
    async fn spawn(&self, command: &str) -> Result<Box<dyn RemoteProcess>, TransportError> {
        spawn_local(command, None).await
    }

    async fn close(&self) {}
}

#[async_trait]
impl Transport for LocalIn {
    async fn spawn(&self, command: &str) -> Result<Box<dyn RemoteProcess>, TransportError> {
        spawn_local(command, Some(&self.0)).await
    }

    async fn close(&self) {}
}

/// Start `command` with `/bin/sh -c`, in `dir` when given.
async fn spawn_local(
    command: &str,
    dir: Option<&std::path::Path>,
) -> Result<Box<dyn RemoteProcess>, TransportError> {
    let mut cmd = Command::new("/bin/sh");
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    let mut child = cmd
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
        let status = match child.wait().await {
            Ok(s) => s.code().unwrap_or_else(|| {
                use std::os::unix::process::ExitStatusExt;
                s.signal().map(|n| 128 + n).unwrap_or(-1)
            }),
            Err(_) => -1,
        };
        // A process it left in the background may hold the pipes open:
        // like Ansible's run_command, stop reading once the output has
        // been quiet for a moment after the exit.
        let mut readers: Vec<_> = readers.into_iter().flatten().collect();
        let drained = async {
            for r in readers.iter_mut() {
                let _ = r.await;
            }
        };
        if tokio::time::timeout(OUTPUT_GRACE, drained).await.is_err() {
            for r in &readers {
                r.abort();
            }
        }
        let _ = tx.send(ProcessEvent::Exit(status)).await;
    });
    Ok(Box::new(LocalProcess { stdin, events: rx }))
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

    #[tokio::test]
    async fn a_background_child_holding_the_pipes_does_not_hang_the_exec() {
        let remote = Remote::new(Arc::new(LocalTransport), None);
        let started = std::time::Instant::now();
        let out = remote
            .exec("echo before; sleep 4 & exit 0", b"")
            .await
            .expect("exec");
        assert!(started.elapsed() < std::time::Duration::from_millis(3500));
        assert_eq!(out.stdout, b"before\n");
        assert_eq!(out.status, 0);
    }

    /// copy target: a file a local task made with a relative path was not
    /// found by copy's src: Ansible runs local modules in the playbook's
    /// directory.
    #[tokio::test]
    async fn local_tasks_run_in_the_playbook_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let remote = Remote::new(Arc::new(LocalIn(dir.path().to_path_buf())), None);
        let out = remote.exec("pwd -P", b"").await.expect("exec");
        let want = dir.path().canonicalize().expect("canonical");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            want.to_string_lossy()
        );
    }
}
