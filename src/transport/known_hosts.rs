//! known_hosts checking: strict by default, `accept-new` learns unknown hosts
//! atomically; a changed key (or a key of another algorithm for a pinned
//! host) is a hard error naming the known_hosts line.

/// How unknown host keys are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum HostKeyChecking {
    /// Unknown hosts are refused.
    #[default]
    Strict,
    /// Unknown hosts are learned; changed keys are still refused.
    AcceptNew,
}

/// Placeholder until the known_hosts implementation lands.
pub fn forget(path: &std::path::Path, host: &str, port: u16) -> std::io::Result<usize> {
    let _ = (path, host, port);
    Ok(0)
}
