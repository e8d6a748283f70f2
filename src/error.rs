//! Errors of the input layer and the exit codes the binary maps errors to.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where a node starts: file, 1-based line and 1-based column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pos {
    /// The file the node was read from (or a pseudo-name such as `<extra-vars>`).
    pub file: Arc<PathBuf>,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
}

impl Pos {
    /// A position at the start of `file`, for errors that concern a whole file.
    pub fn file_start(file: &Path) -> Pos {
        Pos {
            file: Arc::new(file.to_path_buf()),
            line: 1,
            col: 1,
        }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
    }
}

/// What kind of mistake an [`InputError`] is, for code that reacts to it
/// (tests, a caller rewording a read error) without matching message text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputErrorKind {
    /// A file could not be read.
    Read,
    /// Not well-formed YAML (or an alias bomb, or several documents).
    Syntax,
    /// A key written twice in one mapping, refused by
    /// `ANSIBLE_DUPLICATE_YAML_DICT_KEY=error`.
    DuplicateKey,
    /// A keyword that is not valid where it is written.
    UnknownKeyword,
    /// A task names no module drover knows.
    UnknownModule,
    /// A module argument that is unknown or has an invalid value.
    BadArgument,
    /// A template or condition that does not compile.
    Template,
    /// A variable no source defines (the static check).
    Undefined,
    /// An import or include that cannot be followed (a cycle).
    Include,
    /// Inventory structure: sections, host patterns, groups.
    Inventory,
    /// Something drover does not support (yet).
    Unsupported,
    /// A value of the wrong type or form: the kind of [`InputError::new`].
    BadValue,
}

/// An error in user input (inventory, playbook, role, template syntax, CLI
/// arguments), always located at file:line:col. Reported before any
/// connection is opened.
#[derive(Debug, Clone)]
pub struct InputError {
    /// Where the problem is.
    pub pos: Pos,
    /// What kind of mistake it is.
    pub kind: InputErrorKind,
    /// What is wrong, and where useful how to fix it.
    pub msg: String,
}

impl InputError {
    /// A [`InputErrorKind::BadValue`] error at `pos`.
    pub fn new(pos: Pos, msg: impl Into<String>) -> InputError {
        InputError::of(InputErrorKind::BadValue, pos, msg)
    }

    /// An error of `kind` at `pos`.
    pub fn of(kind: InputErrorKind, pos: Pos, msg: impl Into<String>) -> InputError {
        InputError {
            pos,
            kind,
            msg: msg.into(),
        }
    }

    /// The same error, of `kind`.
    pub fn with_kind(mut self, kind: InputErrorKind) -> InputError {
        self.kind = kind;
        self
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

    fn kinds_of(playbook: &str) -> Vec<InputErrorKind> {
        match crate::playbook::load_playbook_str(playbook, Path::new("p.yml")) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.iter().map(|e| e.kind).collect(),
        }
    }

    #[test]
    fn input_errors_carry_the_kind_of_mistake() {
        let task = |t: &str| format!("- hosts: all\n  tasks:\n    - {t}\n");
        let cases = [
            ("- hosts: [all\n".to_string(), InputErrorKind::Syntax),
            ("- *nowhere\n".to_string(), InputErrorKind::Syntax),
            (
                "- hosts: all\n  bogus_keyword: 1\n".to_string(),
                InputErrorKind::UnknownKeyword,
            ),
            (task("no_such_module: {}"), InputErrorKind::UnknownModule),
            (task("command: {bogus: 1}"), InputErrorKind::BadArgument),
            (task("debug: {msg: '{{ a }'}"), InputErrorKind::Template),
            (
                task("{command: id, when: 'a ==='}"),
                InputErrorKind::Template,
            ),
            (
                task("{command: id, become: true, become_method: doas}"),
                InputErrorKind::Unsupported,
            ),
            (
                task("{command: id, become: maybe}"),
                InputErrorKind::BadValue,
            ),
            (
                task("import_tasks: /nonexistent/tasks.yml"),
                InputErrorKind::Read,
            ),
        ];
        for (text, kind) in cases {
            assert_eq!(kinds_of(&text), vec![kind], "{text}");
        }
    }
}
