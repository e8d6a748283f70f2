//! `drover apply --list-hosts / --list-tasks / --list-tags`: what a run
//! would touch, shaped like ansible-playbook's listing so that scripts and
//! habits built on it keep working. Nothing connects.

use std::fmt::Write;

use crate::error::{InputError, InputErrors};
use crate::inventory::Inventory;
use crate::playbook::{Action, Playbook, Task};

/// What to list.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Listing {
    /// `--list-hosts`.
    pub hosts: bool,
    /// `--list-tasks`.
    pub tasks: bool,
    /// `--list-tags`.
    pub tags: bool,
}

/// The tag filter of the run being listed.
pub(super) struct Filter<'a> {
    /// `--tags`.
    pub tags: &'a [String],
    /// `--skip-tags`.
    pub skip: &'a [String],
    /// `--limit`.
    pub limit: Option<&'a str>,
}

/// The listing of every play of `pb`, as ansible-playbook prints it.
pub(super) fn listing(
    pb: &Playbook,
    inv: &Inventory,
    what: Listing,
    filter: &Filter<'_>,
) -> Result<String, InputErrors> {
    let mut out = format!("\nplaybook: {}\n", pb.path.display());
    for (i, play) in pb.plays.iter().enumerate() {
        let mut play_tags = play.tags.clone();
        play_tags.sort();
        play_tags.dedup();
        let _ = write!(
            out,
            "\n  play #{} ({}): {}\tTAGS: [{}]\n",
            i + 1,
            play.hosts,
            play.name,
            play_tags.join(",")
        );
        if what.hosts {
            let hosts = inv
                .select_limited(&play.hosts, filter.limit)
                .map_err(|e| InputErrors::from(InputError::new(play.pos.clone(), e.to_string())))?;
            let _ = write!(
                out,
                "    pattern: ['{}']\n    hosts ({}):\n",
                play.hosts,
                hosts.len()
            );
            for h in &hosts {
                let _ = writeln!(out, "      {h}");
            }
        }
        if what.tasks || what.tags {
            if what.tasks {
                out.push_str("    tasks:\n");
            }
            let mut all_tags = play_tags.clone();
            for list in [&play.pre_tasks, &play.tasks, &play.post_tasks] {
                list_tasks(list, what.tasks, filter, &mut all_tags, &mut out);
            }
            if what.tags {
                all_tags.sort();
                all_tags.dedup();
                let _ = writeln!(out, "      TASK TAGS: [{}]", all_tags.join(", "));
            }
        }
    }
    Ok(out)
}

fn list_tasks(
    tasks: &[Task],
    show: bool,
    filter: &Filter<'_>,
    all_tags: &mut Vec<String>,
    out: &mut String,
) {
    for task in tasks {
        if let Action::Block {
            block,
            rescue,
            always,
        } = &task.action
        {
            for list in [block, rescue, always] {
                list_tasks(list, show, filter, all_tags, out);
            }
            continue;
        }
        if !task.selected(filter.tags, filter.skip) {
            continue;
        }
        all_tags.extend(task.tags.iter().cloned());
        if show {
            let mut tags = task.tags.clone();
            tags.sort();
            tags.dedup();
            let _ = writeln!(
                out,
                "      {}\tTAGS: [{}]",
                task.display_name(),
                tags.join(", ")
            );
        }
    }
}

/// Does any task of the playbook answer to `--start-at-task NAME`? Only
/// tasks known before the run count (not those of `include_tasks`), as in
/// Ansible.
pub(super) fn has_task_named(pb: &Playbook, name: &str) -> bool {
    fn any(tasks: &[Task], name: &str) -> bool {
        tasks.iter().any(|t| {
            t.is_named(name)
                || matches!(&t.action, Action::Block { block, rescue, always }
                    if any(block, name) || any(rescue, name) || any(always, name))
        })
    }
    pb.plays.iter().any(|p| {
        [&p.pre_tasks, &p.tasks, &p.post_tasks]
            .into_iter()
            .any(|l| any(l, name))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const PLAYBOOK: &str = "- name: web servers\n  hosts: web\n  tags: [site]\n  pre_tasks:\n    - name: first\n      debug: msg=a\n  tasks:\n    - block:\n        - name: in a block\n          command: id\n          tags: [cfg, b]\n    - debug: msg=b\n      tags: [never, debug]\n  handlers:\n    - name: a handler\n      debug: msg=h\n- hosts: all\n  tasks:\n    - name: everywhere\n      debug: msg=c\n";

    fn setup() -> (Playbook, Inventory, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        let inv_path = dir.path().join("hosts.yml");
        std::fs::write(
            &inv_path,
            "all:\n  children:\n    web:\n      hosts:\n        w1:\n        w2:\n    db:\n      hosts:\n        d1:\n",
        )
        .expect("write");
        let inv = Inventory::load(&inv_path).expect("inventory");
        let pb =
            crate::playbook::load_playbook_str(PLAYBOOK, Path::new("site.yml")).expect("playbook");
        (pb, inv, dir)
    }

    const NONE: Filter<'static> = Filter {
        tags: &[],
        skip: &[],
        limit: None,
    };

    #[test]
    fn list_hosts_is_shaped_like_ansible_playbooks() {
        let (pb, inv, _dir) = setup();
        let what = Listing {
            hosts: true,
            ..Listing::default()
        };
        let out = listing(&pb, &inv, what, &NONE).expect("lists");
        assert_eq!(
            out,
            "\nplaybook: site.yml\n\n  play #1 (web): web servers\tTAGS: [site]\n    pattern: ['web']\n    hosts (2):\n      w1\n      w2\n\n  play #2 (all): all\tTAGS: []\n    pattern: ['all']\n    hosts (3):\n      w1\n      w2\n      d1\n"
        );
        let limit = Filter {
            limit: Some("w2"),
            ..NONE
        };
        let out = listing(&pb, &inv, what, &limit).expect("lists");
        assert!(out.contains("    hosts (1):\n      w2\n"), "{out}");
    }

    #[test]
    fn list_tasks_and_tags_follow_the_tag_filter() {
        let (pb, inv, _dir) = setup();
        let what = Listing {
            tasks: true,
            tags: true,
            ..Listing::default()
        };
        let out = listing(&pb, &inv, what, &NONE).expect("lists");
        assert_eq!(
            out,
            "\nplaybook: site.yml\n\n  play #1 (web): web servers\tTAGS: [site]\n    tasks:\n      first\tTAGS: [site]\n      in a block\tTAGS: [b, cfg, site]\n      TASK TAGS: [b, cfg, site]\n\n  play #2 (all): all\tTAGS: []\n    tasks:\n      everywhere\tTAGS: []\n      TASK TAGS: []\n"
        );
        let debug = ["debug".to_string()];
        let only = Filter {
            tags: &debug,
            ..NONE
        };
        let out = listing(&pb, &inv, what, &only).expect("lists");
        assert!(
            out.contains("      debug\tTAGS: [debug, never, site]\n"),
            "{out}"
        );
        assert!(!out.contains("in a block"), "{out}");
    }

    #[test]
    fn start_at_task_finds_tasks_in_blocks_only_by_name() {
        let (pb, _inv, _dir) = setup();
        assert!(has_task_named(&pb, "in a block"));
        assert!(has_task_named(&pb, "everywhere"));
        assert!(!has_task_named(&pb, "a handler"));
        assert!(!has_task_named(&pb, "debug"));
    }
}
