//! Errors of the input layer and the exit codes the binary maps errors to.

use std::fmt;

use crate::yaml::Pos;

/// An error in user input (inventory, playbook, role, template syntax, CLI
/// arguments), always located at file:line:col. Reported before any
/// connection is opened.
#[derive(Debug, Clone)]
pub struct InputError {
    /// Where the problem is.
    pub pos: Pos,
    /// What is wrong, and where useful how to fix it.
    pub msg: String,
}

impl InputError {
    /// An error at `pos`.
    pub fn new(pos: Pos, msg: impl Into<String>) -> InputError {
        InputError {
            pos,
            msg: msg.into(),
        }
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.pos, self.msg)
    }
}

impl std::error::Error for InputError {}

/// Several input errors found in one pass; all are reported.
#[derive(Debug, Clone, Default)]
pub struct InputErrors(pub Vec<InputError>);

impl fmt::Display for InputErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for InputErrors {}

impl From<InputError> for InputErrors {
    fn from(e: InputError) -> Self {
        InputErrors(vec![e])
    }
}

/// Process exit codes (the CLI contract).
pub mod exit {
    /// Every host ok.
    pub const OK: i32 = 0;
    /// Invalid input or usage; nothing was run.
    pub const INVALID: i32 = 1;
    /// Some host failed.
    pub const FAILED: i32 = 2;
    /// Some host unreachable and none failed.
    pub const UNREACHABLE: i32 = 4;
    /// Interrupted by SIGINT or SIGTERM (as a shell reports SIGINT).
    pub const INTERRUPTED: i32 = 130;
}
