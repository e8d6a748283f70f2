//! Processes seen through /proc: identifying, killing, and the lab's mounts.
//! (A node's processes are found through its cgroup: see [`super::init`].)

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

/// Start time of `pid` in clock ticks since boot (field 22 of
/// /proc/PID/stat); with the PID it identifies a process uniquely.
pub(super) fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces: fields after it are
    // counted from its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether `pid` exists and has not yet exited (zombies count as gone).
pub(super) fn alive(pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().next());
    !matches!(state, None | Some("Z") | Some("X"))
}

/// The command line of `pid`, arguments joined by spaces.
pub(super) fn cmdline(pid: u32) -> Option<String> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        String::from_utf8_lossy(&raw)
            .replace('\0', " ")
            .trim()
            .to_string(),
    )
}

/// Send SIGKILL to `pids` (with the `kill` utility: the crate has no unsafe
/// code). PIDs that are already gone are ignored.
pub(super) fn kill(pids: &[u32]) {
    if pids.is_empty() {
        return;
    }
    let status = Command::new("kill")
        .arg("-KILL")
        .arg("--")
        .args(pids.iter().map(u32::to_string))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    // A process may exit between the scan and the kill; kill then fails for
    // it and the next scan confirms it is gone.
    tracing::debug!(?pids, ?status, "lab: SIGKILL");
}

/// Mount points in our namespace at exactly `dir`, with their file system
/// types, innermost last.
pub(super) fn mounts_at(dir: &Path) -> Vec<String> {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    info.lines()
        .filter_map(|line| {
            let mut halves = line.splitn(2, " - ");
            let left = halves.next()?;
            let fstype = halves.next()?.split_whitespace().next()?;
            let point = left.split_whitespace().nth(4)?;
            (Path::new(&crate::modules::mount::unescape_field(point)) == dir)
                .then(|| fstype.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_process_is_alive_and_has_a_start_time() {
        let me = std::process::id();
        assert!(alive(me));
        assert!(start_time(me).is_some());
    }
}
