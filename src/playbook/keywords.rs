//! The one table of playbook keywords (Ansible's, as of ansible-core 2.19):
//! where each may be written (play, block, role entry, task, handler),
//! whether drover implements it or refuses it, and whether a block's or a
//! play's value reaches the tasks under it. The loader checks every key of
//! a play, block, role entry and task against [`KEYWORDS`]; a keyword that
//! drover does not implement is a load error naming it, never a silent
//! no-op.

/// Where a keyword may be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Levels(u8);

impl Levels {
    /// A play.
    pub const PLAY: Levels = Levels(1);
    /// A block (a task with `block:`).
    pub const BLOCK: Levels = Levels(2);
    /// A role entry in `roles:`.
    pub const ROLE: Levels = Levels(4);
    /// A task (handlers are tasks too).
    pub const TASK: Levels = Levels(8);
    /// A handler only (`listen`).
    pub const HANDLER: Levels = Levels(16);
    /// Every level a task-like keyword of Ansible's `Base` class reaches.
    pub const ALL: Levels = Levels(1 | 2 | 4 | 8 | 16);
    /// Blocks, role entries and tasks (`when`, `delegate_to`).
    pub const BRT: Levels = Levels(2 | 4 | 8 | 16);
    /// Tasks and handlers.
    pub const TASKS: Levels = Levels(8 | 16);

    /// Both sets.
    pub const fn or(self, other: Levels) -> Levels {
        Levels(self.0 | other.0)
    }

    /// Is `level` one of these?
    pub const fn contains(self, level: Level) -> bool {
        self.0 & level.bit() != 0
    }
}

/// One place a keyword is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// A play.
    Play,
    /// A block.
    Block,
    /// A role entry.
    Role,
    /// A task.
    Task,
    /// A handler.
    Handler,
}

impl Level {
    const fn bit(self) -> u8 {
        match self {
            Level::Play => 1,
            Level::Block => 2,
            Level::Role => 4,
            Level::Task => 8,
            Level::Handler => 16,
        }
    }

    /// The word Ansible uses in "not a valid attribute for a …".
    pub fn noun(self) -> &'static str {
        match self {
            Level::Play => "Play",
            Level::Block => "Block",
            Level::Role => "Role",
            Level::Task => "Task",
            Level::Handler => "Handler",
        }
    }
}

/// What drover does with a keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// Honoured with Ansible's meaning.
    Implemented,
    /// Honoured for these values only (the ones drover behaves as for);
    /// others are refused. A templated value is judged when it is rendered
    /// if `run` is set, and refused otherwise.
    Only {
        /// The values drover honours.
        values: &'static [&'static str],
        /// Is the value rendered and checked at run time?
        run: bool,
    },
    /// Refused at load, with the reason shown to the user.
    Unsupported(&'static str),
}

/// One keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keyword {
    /// The name as written.
    pub name: &'static str,
    /// Where it may be written.
    pub levels: Levels,
    /// Implemented or refused.
    pub support: Support,
    /// Does a play's or block's (or role entry's) value reach the tasks
    /// under it (Ansible's inheritable attributes)? `vars` are scoped
    /// rather than inherited, and play-only keywords reach nothing.
    pub inherit: bool,
}

const fn kw(name: &'static str, levels: Levels, support: Support, inherit: bool) -> Keyword {
    Keyword {
        name,
        levels,
        support,
        inherit,
    }
}

use Support::{Implemented as Yes, Unsupported as No};

const P: Levels = Levels::PLAY;
const B: Levels = Levels::BLOCK;
const R: Levels = Levels::ROLE;
const T: Levels = Levels::TASKS;

/// Every keyword Ansible knows, with what drover does with it.
pub static KEYWORDS: &[Keyword] = &[
    // Every play, block, role entry and task (Ansible's `Base`).
    kw("name", Levels::ALL, Yes, false),
    kw("vars", Levels::ALL, Yes, false),
    kw("environment", Levels::ALL, Yes, true),
    kw("no_log", Levels::ALL, Yes, true),
    kw("run_once", Levels::ALL, Yes, true),
    kw("ignore_errors", Levels::ALL, Yes, true),
    kw("ignore_unreachable", Levels::ALL, Yes, true),
    kw("check_mode", Levels::ALL, Yes, true),
    kw("diff", Levels::ALL, Yes, true),
    kw("any_errors_fatal", Levels::ALL, Yes, true),
    kw("throttle", Levels::ALL, Yes, true),
    kw("timeout", Levels::ALL, Yes, true),
    kw("remote_user", Levels::ALL, Yes, true),
    kw("port", Levels::ALL, Yes, true),
    kw(
        "connection",
        Levels::ALL,
        Support::Only {
            values: &["ssh", "smart", "local"],
            run: true,
        },
        true,
    ),
    kw("become", Levels::ALL, Yes, true),
    kw("become_user", Levels::ALL, Yes, true),
    kw(
        "become_method",
        Levels::ALL,
        Support::Only {
            values: &["sudo", "su"],
            run: true,
        },
        true,
    ),
    kw(
        "become_flags",
        Levels::ALL,
        No("drover runs sudo with its own fixed flags"),
        true,
    ),
    kw(
        "become_exe",
        Levels::ALL,
        No("drover runs the sudo found on the host's PATH"),
        true,
    ),
    kw(
        "debugger",
        Levels::ALL,
        Support::Only {
            values: &["never"],
            run: false,
        },
        true,
    ),
    kw("module_defaults", Levels::ALL, Yes, true),
    kw("tags", Levels::ALL, Yes, true),
    kw("collections", Levels::ALL, Yes, true),
    // Blocks, role entries and tasks.
    kw("when", Levels::BRT, Yes, true),
    kw("delegate_to", Levels::BRT, Yes, true),
    kw("delegate_facts", Levels::BRT, Yes, true),
    kw("notify", B.or(T), Yes, true),
    // Plays.
    kw("hosts", P, Yes, false),
    kw("gather_facts", P, Yes, false),
    kw("gather_subset", P, Yes, false),
    kw("gather_timeout", P, Yes, false),
    kw(
        "fact_path",
        P,
        No("drover gathers no local facts (facts.d)"),
        false,
    ),
    kw("vars_files", P, Yes, false),
    kw(
        "vars_prompt",
        P,
        No("drover does not prompt; pass the values with -e"),
        false,
    ),
    kw("roles", P, Yes, false),
    kw("pre_tasks", P, Yes, false),
    kw("tasks", P, Yes, false),
    kw("post_tasks", P, Yes, false),
    kw("handlers", P, Yes, false),
    kw(
        "force_handlers",
        P,
        No("handlers of a failed host do not run"),
        false,
    ),
    kw("max_fail_percentage", P, Yes, false),
    kw("serial", P, Yes, false),
    kw(
        "strategy",
        P,
        Support::Only {
            values: &["linear"],
            run: false,
        },
        false,
    ),
    kw("order", P, Yes, false),
    // Blocks.
    kw("block", B, Yes, false),
    kw("rescue", B, Yes, false),
    kw("always", B, Yes, false),
    // Role entries.
    kw("role", R, Yes, false),
    // Tasks.
    kw("action", T, Yes, false),
    kw("local_action", T, Yes, false),
    kw("args", T, Yes, false),
    kw("register", T, Yes, false),
    kw("changed_when", T, Yes, false),
    kw("failed_when", T, Yes, false),
    kw("until", T, Yes, false),
    kw("retries", T, Yes, false),
    kw("delay", T, Yes, false),
    kw("loop", T, Yes, false),
    kw("loop_control", T, Yes, false),
    kw("with_items", T, Yes, false),
    kw("with_list", T, Yes, false),
    kw("with_dict", T, Yes, false),
    kw("with_first_found", T, Yes, false),
    kw("with_fileglob", T, Yes, false),
    kw("with_sequence", T, Yes, false),
    kw("with_together", T, Yes, false),
    kw("with_nested", T, Yes, false),
    kw("with_indexed_items", T, Yes, false),
    kw("with_file", T, Yes, false),
    kw("with_template", T, Yes, false),
    kw("with_pipe", T, Yes, false),
    kw("with_env", T, Yes, false),
    kw("async", T, Yes, false),
    kw("poll", T, Yes, false),
    // Handlers.
    kw("listen", Levels::HANDLER, Yes, false),
];

/// Reason given for a `with_<lookup>` loop drover lacks.
const WITH_LOOKUP: Keyword = kw(
    "with_",
    T,
    No("use `loop` with a list, or with_items, with_list, with_dict, with_first_found, with_fileglob, with_sequence, with_together, with_nested, with_indexed_items, with_file, with_template, with_pipe or with_env"),
    false,
);

/// The keyword `name`, if Ansible has one by that name (every `with_*`
/// is a loop keyword).
pub fn find(name: &str) -> Option<Keyword> {
    if let Some(k) = KEYWORDS.iter().find(|k| k.name == name) {
        return Some(*k);
    }
    name.starts_with("with_").then_some(WITH_LOOKUP)
}

/// Why `value` (a literal) of keyword `k` is refused, if it is.
pub fn refusal(k: &Keyword, name: &str, value: Option<&str>) -> Option<String> {
    match k.support {
        Support::Implemented => None,
        Support::Unsupported(why) => {
            Some(format!("`{name}` is not supported by drover yet ({why})"))
        }
        Support::Only { values, run } => match value {
            Some(v) if crate::template::Templar::is_template(v) => {
                (!run).then(|| format!("`{name}` must be written without a template here"))
            }
            Some(v) if values.contains(&v) => None,
            Some(v) => Some(format!(
                "`{name}: {v}` is not supported by drover yet (drover supports {})",
                values.join(", ")
            )),
            None => Some(format!("`{name}` must be one of {}", values.join(", "))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_keyword_is_listed_once_at_some_level() {
        for (i, k) in KEYWORDS.iter().enumerate() {
            assert!(k.levels.0 != 0, "{} has no level", k.name);
            assert!(
                KEYWORDS[i + 1..].iter().all(|o| o.name != k.name),
                "{} listed twice",
                k.name
            );
        }
    }

    #[test]
    fn levels_follow_ansible() {
        let at = |name: &str, level: Level| find(name).is_some_and(|k| k.levels.contains(level));
        // A play has no `when`, `notify` or `delegate_to`.
        for name in ["when", "notify", "delegate_to", "register", "block"] {
            assert!(!at(name, Level::Play), "{name}");
        }
        assert!(at("when", Level::Role) && at("when", Level::Block));
        assert!(!at("notify", Level::Role));
        assert!(at("listen", Level::Handler) && !at("listen", Level::Task));
        assert!(at("gather_subset", Level::Play) && !at("gather_subset", Level::Task));
        assert!(at("remote_user", Level::Task) && at("remote_user", Level::Play));
    }

    #[test]
    fn with_lookups_are_keywords_and_refused_unless_drover_has_them() {
        assert_eq!(
            find("with_items").map(|k| k.support),
            Some(Support::Implemented)
        );
        let k = find("with_subelements").expect("a loop keyword");
        let msg = refusal(&k, "with_subelements", None).expect("refused");
        assert!(
            msg.starts_with("`with_subelements` is not supported by drover yet"),
            "{msg}"
        );
        assert!(find("copy").is_none());
    }

    #[test]
    fn only_values_refuse_others_and_leave_templates_to_the_run() {
        let k = find("strategy").expect("strategy");
        assert_eq!(refusal(&k, "strategy", Some("linear")), None);
        assert!(refusal(&k, "strategy", Some("{{ s }}")).is_some());
        let c = find("connection").expect("connection");
        assert_eq!(refusal(&c, "connection", Some("{{ c }}")), None);
        let msg = refusal(&k, "strategy", Some("free")).expect("refused");
        assert!(
            msg.contains("`strategy: free` is not supported by drover yet"),
            "{msg}"
        );
    }
}
