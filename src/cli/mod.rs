//! The command line.

/// Run the binary; returns the exit code.
pub fn main() -> i32 {
    0
}
