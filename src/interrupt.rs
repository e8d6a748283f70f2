//! Whether the run was interrupted (SIGINT or SIGTERM). Once it was, no
//! new command starts on any host, and the plays stop at the next task.

use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Mark the run as interrupted.
pub fn interrupt() {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Has the run been interrupted?
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}
