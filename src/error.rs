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

/// Everything that ends a `drover` command other than success, and the
/// exit code each maps to: the one place the CLI contract is written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line did not parse; the parser has shown why.
    #[error("invalid command line")]
    Usage,
    /// Help or the version was asked for and shown: not a failure.
    #[error("help shown")]
    Help,
    /// Input errors found before anything ran.
    #[error(transparent)]
    Input(#[from] InputErrors),
    /// An option, environment variable or argument that is invalid, found
    /// before anything ran.
    #[error("{0}")]
    Invalid(String),
    /// A password prompt could not be read.
    #[error("cannot read {what}: {source}")]
    Prompt {
        /// What was asked for.
        what: String,
        /// Why reading failed.
        source: std::io::Error,
    },
    /// The async runtime could not start.
    #[error("cannot start runtime: {0}")]
    Runtime(std::io::Error),
    /// A `known-hosts` file could not be read or rewritten.
    #[error("{}: {source}", path.display())]
    KnownHosts {
        /// The known_hosts file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A `drover lab` command failed.
    #[error(transparent)]
    Lab(#[from] crate::lab::LabError),
    /// The run finished and some host failed (the recap says which).
    #[error("some host failed")]
    Failed,
    /// The run finished, some host was unreachable and none failed.
    #[error("some host was unreachable")]
    Unreachable,
    /// The run was stopped by SIGINT or SIGTERM.
    #[error("interrupted")]
    Interrupted,
}

impl Error {
    /// The process exit code for this outcome.
    pub fn code(&self) -> i32 {
        match self {
            Error::Help => exit::OK,
            Error::Usage
            | Error::Input(_)
            | Error::Invalid(_)
            | Error::Prompt { .. }
            | Error::Runtime(_)
            | Error::KnownHosts { .. }
            | Error::Lab(_) => exit::INVALID,
            Error::Failed => exit::FAILED,
            Error::Unreachable => exit::UNREACHABLE,
            Error::Interrupted => exit::INTERRUPTED,
        }
    }

    /// Whether the error still needs to be shown to the user: the parser
    /// shows its own errors and the recap shows a run's outcome.
    pub fn needs_message(&self) -> bool {
        !matches!(
            self,
            Error::Usage | Error::Help | Error::Failed | Error::Unreachable | Error::Interrupted
        )
    }
}

impl From<InputError> for Error {
    fn from(e: InputError) -> Self {
        Error::Input(e.into())
    }
}

/// Process exit codes (the CLI contract); [`Error::code`] picks one.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_maps_to_the_documented_exit_code() {
        let io = || std::io::Error::other("x");
        let cases = [
            (Error::Help, 0),
            (Error::Usage, 1),
            (Error::Input(InputErrors::default()), 1),
            (Error::Invalid("x".into()), 1),
            (
                Error::Prompt {
                    what: "x".into(),
                    source: io(),
                },
                1,
            ),
            (Error::Runtime(io()), 1),
            (
                Error::KnownHosts {
                    path: "x".into(),
                    source: io(),
                },
                1,
            ),
            (Error::Lab(crate::lab::LabError::NotRoot), 1),
            (Error::Failed, 2),
            (Error::Unreachable, 4),
            (Error::Interrupted, 130),
        ];
        for (e, code) in cases {
            assert_eq!(e.code(), code, "{e:?}");
        }
    }
}
