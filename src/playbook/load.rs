//! From YAML nodes to typed plays and tasks.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::keywords::{self as kw, Level};
use super::{
    Action, FactGroups, HostOrder, Keywords, Loop, Meta, Play, Playbook, Role, Serial, Task,
};
use crate::error::{InputError, InputErrorKind, InputErrors};
use crate::modules;
use crate::modules::cmdargs::{parse_kv, KvError};
use crate::yaml::{self, Node, NodeKind};
use crate::{Map, Value};

/// What the loader carries while descending into blocks, roles and imports.
#[derive(Clone)]
struct Inherit {
    keywords: Keywords,
    when: Vec<String>,
    tags: Vec<String>,
    vars: Map,
    role: Option<Arc<Role>>,
    search: Arc<Vec<PathBuf>>,
    /// Directory that relative `import_tasks` names resolve against.
    base: PathBuf,
    /// Files being imported (to refuse import cycles).
    stack: Vec<PathBuf>,
    /// `notify` of the enclosing blocks (a task's own replaces it).
    notify: Vec<String>,
    /// Loading handlers (`listen` is allowed).
    handler: bool,
}

struct Loader {
    errors: Vec<InputError>,
    playbook_dir: PathBuf,
    /// The current play's `collections:`, where short module names are
    /// looked up first.
    collections: Vec<String>,
    /// Handlers of roles imported by tasks (`import_role`), for the play.
    role_handlers: Vec<Task>,
    /// `-e` variables, for names templated at load (`import_tasks`).
    extra_vars: Map,
    /// The current play's `vars`, for the same.
    play_vars: Map,
    /// Roles the current play uses directly (`roles:`, `import_role`,
    /// `include_role`) and through dependencies, in order.
    play_roles: Vec<String>,
    dep_roles: Vec<String>,
    /// Loading a role's dependencies.
    in_deps: bool,
    /// Where roles are looked up.
    role_paths: super::roles::RolePaths,
}

/// Load and validate a playbook with its roles and imports.
pub fn load_playbook(path: &Path) -> Result<Playbook, InputErrors> {
    load_playbook_with(path, &Map::new())
}

/// [`load_playbook`] with the run's `-e` variables, which names templated
/// at load (`import_tasks: "{{ x }}.yml"`) may use, as in Ansible.
pub fn load_playbook_with(path: &Path, extra_vars: &Map) -> Result<Playbook, InputErrors> {
    let root = yaml::load_file(path)?;
    playbook_from_node(root, path, extra_vars)
}

/// Load a playbook from text; `path` places it (roles, files) and names it
/// in errors.
pub fn load_playbook_str(text: &str, path: &Path) -> Result<Playbook, InputErrors> {
    let root = yaml::load_str(text, path)?;
    playbook_from_node(root, path, &Map::new())
}

/// The file of a free-form `include_tasks`/`import_tasks`: the text, or
/// the value of its one `file=...` (Ansible's key=value form).
fn free_form_file(raw: String) -> String {
    match crate::modules::cmdargs::parse_kv(&raw, true).as_deref() {
        Ok([(key, file)]) if key == "file" => file.clone(),
        _ => raw,
    }
}

fn playbook_dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn playbook_from_node(root: Node, path: &Path, extra_vars: &Map) -> Result<Playbook, InputErrors> {
    let dir = playbook_dir_of(path);
    let mut loader = Loader {
        errors: Vec::new(),
        playbook_dir: dir.clone(),
        collections: Vec::new(),
        role_handlers: Vec::new(),
        extra_vars: extra_vars.clone(),
        play_vars: Map::new(),
        play_roles: Vec::new(),
        dep_roles: Vec::new(),
        in_deps: false,
        role_paths: super::roles::RolePaths::from_env(&dir),
    };
    let mut plays = Vec::new();
    let mut stack = vec![std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())];
    loader.plays(&root, &mut plays, &mut stack);
    if plays.is_empty() && loader.errors.is_empty() {
        // ansible-playbook refuses an empty playbook too: running nothing
        // and reporting success hides a wrong path or a truncated file.
        loader
            .errors
            .push(root.error("the playbook has no plays (it is empty)"));
    }
    if loader.errors.is_empty() {
        Ok(Playbook {
            path: path.to_path_buf(),
            dir,
            plays,
        })
    } else {
        Err(InputErrors(loader.errors))
    }
}

fn bool_node(node: &Node) -> Result<bool, InputError> {
    match &node.kind {
        NodeKind::Bool(b) => Ok(*b),
        NodeKind::Int(i) => Ok(*i != 0),
        NodeKind::Str(s) => match s.to_ascii_lowercase().as_str() {
            "yes" | "true" | "on" | "1" | "y" => Ok(true),
            "no" | "false" | "off" | "0" | "n" | "" => Ok(false),
            _ => Err(node.error(format!("expected a boolean, found '{s}'"))),
        },
        _ => Err(node.error("expected a boolean")),
    }
}

fn string_node(node: &Node) -> Result<String, InputError> {
    node.scalar_string()
        .filter(|_| !node.is_null())
        .ok_or_else(|| node.error("expected a string"))
}

fn string_list(node: &Node) -> Result<Vec<String>, InputError> {
    match &node.kind {
        NodeKind::Seq(items) => items.iter().map(string_node).collect(),
        NodeKind::Null => Ok(Vec::new()),
        _ => Ok(vec![string_node(node)?]),
    }
}

/// `when`-style conditions: a string, a boolean or a list of them. `what`
/// names the keyword; a condition that is not a valid expression is refused
/// here, at its own position.
fn conditions(node: &Node, what: &str) -> Result<Vec<String>, InputError> {
    match &node.kind {
        NodeKind::Bool(b) => Ok(vec![b.to_string()]),
        NodeKind::Seq(items) => items
            .iter()
            .map(|i| conditions(i, what).map(|v| v.join(" and ")))
            .collect(),
        _ => {
            let cond = string_node(node)?;
            match crate::template::Templar::syntax_error(&cond, true) {
                Some(e) => Err(node
                    .error(format!("{what}: invalid expression '{cond}': {e}"))
                    .with_kind(InputErrorKind::Template)),
                None => Ok(vec![cond]),
            }
        }
    }
}

/// Give `task` (and the tasks under it) the tags and conditions of the
/// `import_playbook` that brought it.
fn imported_by(task: &mut Task, tags: &[String], when: &[String]) {
    for t in tags {
        if !task.tags.contains(t) {
            task.tags.push(t.clone());
        }
    }
    if !when.is_empty() {
        task.when.splice(0..0, when.iter().cloned());
    }
    if let Action::Block {
        block,
        rescue,
        always,
    } = &mut task.action
    {
        for t in block
            .iter_mut()
            .chain(rescue.iter_mut())
            .chain(always.iter_mut())
        {
            imported_by(t, tags, when);
        }
    }
}

/// Does the task loop (`loop` or any `with_*`)?
fn has_loop(node: &Node) -> bool {
    node.as_map().unwrap_or(&[]).iter().any(|(k, _)| {
        k.key_str()
            .is_some_and(|k| k == "loop" || k.starts_with("with_"))
    })
}

fn map_node(node: &Node, what: &str) -> Result<Map, InputError> {
    match node.to_value() {
        Value::Object(m) => Ok(m),
        Value::Null => Ok(Map::new()),
        _ => Err(node.error(format!("{what} must be a mapping"))),
    }
}

fn tags_of(node: &Node) -> Result<Vec<String>, InputError> {
    // `tags: a,b` is a comma-separated list.
    Ok(string_list(node)?
        .into_iter()
        .flat_map(|t| {
            t.split(',')
                .map(|s| s.trim().to_string())
                .collect::<Vec<_>>()
        })
        .filter(|t| !t.is_empty())
        .collect())
}

impl Loader {
    fn ok<T>(&mut self, r: Result<T, InputError>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.errors.push(e);
                None
            }
        }
    }

    /// Check every key of `node` against the keyword table for `level`:
    /// a key Ansible does not know there is refused, and so is a keyword
    /// (or a value of it) drover does not implement.
    fn check_keys(&mut self, node: &Node, level: Level) {
        for (k, v) in node.as_map().unwrap_or(&[]) {
            let name = k.scalar_string().unwrap_or_default();
            match kw::find(&name) {
                Some(keyword) if keyword.levels.contains(level) => {
                    self.check_keyword(&keyword, &name, k, v)
                }
                _ => self.errors.push(
                    k.error(format!(
                        "'{name}' is not a valid attribute for a {}",
                        level.noun()
                    ))
                    .with_kind(InputErrorKind::UnknownKeyword),
                ),
            }
        }
    }

    /// Refuse a keyword drover does not implement, or a value of it that
    /// drover does not honour (at the value).
    fn check_keyword(&mut self, keyword: &kw::Keyword, name: &str, key: &Node, value: &Node) {
        let literal = value.scalar_string();
        if let Some(msg) = kw::refusal(keyword, name, literal.as_deref()) {
            let at = match keyword.support {
                kw::Support::Unsupported(_) => key,
                _ => value,
            };
            self.errors
                .push(at.error(msg).with_kind(InputErrorKind::Unsupported));
        }
        if name == "collections" {
            for c in self.ok(string_list(value)).unwrap_or_default() {
                if !modules::known::is_collection(&c) {
                    self.errors.push(
                        value
                            .error(format!(
                                "`collections: {c}` is not supported by drover yet (drover knows the modules of the collections of Ansible's `ansible` package)"
                            ))
                            .with_kind(InputErrorKind::Unsupported),
                    );
                }
            }
        }
    }

    /// A keyword whose value is an integer or a template (`throttle`,
    /// `timeout`, `port`).
    fn int_or_template(&mut self, node: &Node, key: &str) -> Option<Value> {
        let n = node.get(key)?;
        match &n.kind {
            NodeKind::Int(i) if *i >= 0 => Some(Value::from(*i)),
            NodeKind::Str(s) if crate::template::Templar::is_template(s) => {
                Some(Value::from(s.clone()))
            }
            NodeKind::Str(s) if s.trim().parse::<u64>().is_ok() => {
                s.trim().parse::<u64>().ok().map(Value::from)
            }
            _ => {
                self.errors
                    .push(n.error(format!("{key} must be a whole number of 0 or more")));
                None
            }
        }
    }

    /// `retries` or `delay`: a number, or text (a template, or a number
    /// as text) the executor renders and reads; unset when null.
    fn number_or_template(&mut self, node: &Node, key: &str) -> Option<Value> {
        let n = node.get(key)?;
        match &n.kind {
            NodeKind::Null => None,
            NodeKind::Int(i) => Some(Value::from(*i)),
            NodeKind::Float(f) => Some(Value::from(*f)),
            NodeKind::Str(s) => Some(Value::from(s.clone())),
            _ => {
                self.errors
                    .push(n.error(format!("{key} must be a number or a template")));
                None
            }
        }
    }

    fn keywords(&mut self, node: &Node) -> Keywords {
        let mut kw = Keywords::default();
        // A template is rendered for each host when the task runs.
        let mut templated = Vec::new();
        for &key in super::FLAG_KEYWORDS {
            if let Some(NodeKind::Str(t)) = node.get(key).map(|n| &n.kind) {
                if crate::template::Templar::is_template(t) {
                    templated.push((key, t.clone()));
                }
            }
        }
        let b = |me: &mut Self, key: &str| {
            node.get(key)
                .filter(|_| !templated.iter().any(|(k, _)| *k == key))
                .and_then(|n| me.ok(bool_node(n)))
        };
        let s = |me: &mut Self, key: &str| node.get(key).and_then(|n| me.ok(string_node(n)));
        kw.become_ = b(self, "become");
        kw.no_log = b(self, "no_log");
        kw.check_mode = b(self, "check_mode");
        kw.diff = b(self, "diff");
        kw.ignore_errors = b(self, "ignore_errors");
        kw.ignore_unreachable = b(self, "ignore_unreachable");
        kw.run_once = b(self, "run_once");
        kw.any_errors_fatal = b(self, "any_errors_fatal");
        kw.become_user = s(self, "become_user");
        kw.become_method = s(self, "become_method");
        kw.delegate_to = s(self, "delegate_to");
        kw.remote_user = s(self, "remote_user");
        kw.connection = s(self, "connection");
        kw.delegate_facts = b(self, "delegate_facts");
        kw.port = self.int_or_template(node, "port");
        kw.throttle = self.int_or_template(node, "throttle");
        kw.timeout = self.int_or_template(node, "timeout");
        kw.async_ = self.int_or_template(node, "async");
        kw.poll = self.int_or_template(node, "poll");
        kw.templated = templated;
        if let Some(md) = node.get("module_defaults") {
            kw.module_defaults = self.module_defaults(md);
        }
        if let Some(env) = node.get("environment") {
            // Names are exported by the shell: one that is not a plain name
            // would be shell text. Templated names are checked at run time.
            for (k, _) in env.as_map().into_iter().flatten() {
                let name = k.scalar_string().unwrap_or_default();
                if !name.contains("{{") && !crate::transport::is_env_name(&name) {
                    self.errors.push(k.error(format!(
                        "environment variable name {name:?} is not valid: names are letters, digits and '_', not starting with a digit"
                    )));
                }
            }
            kw.environment = Some(env.to_value());
        }
        kw
    }

    /// `module_defaults`: a mapping of module names to argument mappings,
    /// or a list of such mappings (merged in order, as Ansible does).
    fn module_defaults(&mut self, node: &Node) -> Option<Map> {
        let maps: Vec<&Node> = match (node.as_map(), node.as_seq()) {
            (Some(_), _) => vec![node],
            (_, Some(items)) => items.iter().collect(),
            _ if node.is_null() => return None,
            _ => {
                self.errors.push(node.error(
                    "`module_defaults` must be a mapping of module names to arguments (a template as the whole value is not supported by drover yet)",
                ));
                return None;
            }
        };
        let mut out = Map::new();
        for m in maps {
            let Some(entries) = m.as_map() else {
                self.errors
                    .push(m.error("`module_defaults` items must be mappings"));
                continue;
            };
            for (k, v) in entries {
                let name = k.scalar_string().unwrap_or_default();
                let Value::Object(args) = v.to_value() else {
                    self.errors.push(v.error(format!(
                        "`module_defaults` for '{name}' must be a mapping of arguments"
                    )));
                    continue;
                };
                match out.get_mut(&name) {
                    Some(Value::Object(old)) => old.extend(args),
                    _ => {
                        out.insert(name, Value::Object(args));
                    }
                }
            }
        }
        Some(out)
    }

    /// The plays of a playbook file's root node, with `import_playbook`
    /// items replaced by the imported file's plays (relative to this file's
    /// directory; `stack` holds the files being imported, to refuse cycles).
    fn plays(&mut self, root: &Node, plays: &mut Vec<Play>, stack: &mut Vec<PathBuf>) {
        let Some(items) = root.as_seq() else {
            if !root.is_null() {
                self.errors
                    .push(root.error("a playbook must be a list of plays"));
            }
            return;
        };
        for item in items {
            let imp = item
                .get("import_playbook")
                .or_else(|| item.get("ansible.builtin.import_playbook"));
            match imp {
                Some(imp) => self.import_playbook(item, imp, plays, stack),
                None => {
                    if let Some(p) = self.play(item) {
                        plays.push(p);
                    }
                }
            }
        }
    }

    fn import_playbook(
        &mut self,
        item: &Node,
        imp: &Node,
        plays: &mut Vec<Play>,
        stack: &mut Vec<PathBuf>,
    ) {
        for (k, _) in item.as_map().unwrap_or(&[]) {
            let name = k.scalar_string().unwrap_or_default();
            if ![
                "import_playbook",
                "ansible.builtin.import_playbook",
                "name",
                "vars",
                "tags",
                "when",
            ]
            .contains(&name.as_str())
            {
                self.errors.push(k.error(format!(
                    "'{name}' is not a valid attribute for an import_playbook"
                )));
            }
        }
        let vars = item
            .get("vars")
            .and_then(|n| self.ok(map_node(n, "vars")))
            .unwrap_or_default();
        let tags = item
            .get("tags")
            .and_then(|n| self.ok(tags_of(n)))
            .unwrap_or_default();
        let when = item
            .get("when")
            .and_then(|n| self.ok(conditions(n, "when")))
            .unwrap_or_default();
        let first = plays.len();
        let Some(file) = self.ok(string_node(imp)) else {
            return;
        };
        let path = self.playbook_dir.join(&file);
        let abs = std::path::absolute(&path).unwrap_or_else(|_| path.clone());
        if stack.contains(&abs) {
            self.errors.push(
                imp.error(format!("import_playbook {file} imports itself (a cycle)"))
                    .with_kind(InputErrorKind::Include),
            );
            return;
        }
        let root = match yaml::load_file(&path) {
            Ok(root) => root,
            Err(e) => {
                self.errors
                    .push(imp.error(format!("import_playbook {file}: {e}")));
                return;
            }
        };
        let outer = std::mem::replace(&mut self.playbook_dir, playbook_dir_of(&path));
        stack.push(abs);
        self.plays(&root, plays, stack);
        stack.pop();
        self.playbook_dir = outer;
        // As Ansible: the import's vars override the plays' own, its tags
        // and `when` reach every task of the imported plays.
        for play in &mut plays[first..] {
            play.vars.extend(vars.clone());
            for t in play
                .pre_tasks
                .iter_mut()
                .chain(play.tasks.iter_mut())
                .chain(play.post_tasks.iter_mut())
            {
                imported_by(t, &tags, &when);
            }
        }
    }

    fn play(&mut self, node: &Node) -> Option<Play> {
        if node.as_map().is_none() {
            self.errors.push(node.error("a play must be a mapping"));
            return None;
        }
        self.check_keys(node, Level::Play);
        self.collections = node
            .get("collections")
            .and_then(|n| string_list(n).ok())
            .unwrap_or_default();
        let hosts = match node.get("hosts") {
            Some(h) => self
                .ok(string_list(h))
                .map(|v| v.join(":"))
                .unwrap_or_default(),
            None => {
                self.errors.push(node.error("a play needs 'hosts'"));
                String::new()
            }
        };
        let name = node
            .get("name")
            .and_then(|n| self.ok(string_node(n)))
            .unwrap_or_else(|| hosts.clone());
        let vars = node
            .get("vars")
            .and_then(|n| self.ok(map_node(n, "vars")))
            .unwrap_or_default();
        self.play_vars = vars.clone();
        self.play_roles.clear();
        self.dep_roles.clear();
        let vars_files = match node.get("vars_files") {
            Some(n) => match n.as_seq() {
                Some(items) => items
                    .iter()
                    .filter_map(|i| self.ok(string_node(i)).map(|s| (s, i.pos.clone())))
                    .collect(),
                None => self
                    .ok(string_node(n))
                    .map(|s| vec![(s, n.pos.clone())])
                    .unwrap_or_default(),
            },
            None => Vec::new(),
        };
        let keywords = self.keywords(node);
        let gather_facts = node
            .get("gather_facts")
            .and_then(|n| self.ok(bool_node(n)))
            .unwrap_or(true);
        let any_errors_fatal = keywords.any_errors_fatal.unwrap_or(false);
        let serial = node
            .get("serial")
            .map(|n| self.serial(n))
            .unwrap_or_default();
        let max_fail_percentage = node.get("max_fail_percentage").and_then(|n| {
            match n.to_value() {
                Value::Number(x) => x.as_f64(),
                Value::String(s) => s.trim_end_matches('%').parse().ok(),
                _ => None,
            }
            .or_else(|| {
                self.errors
                    .push(n.error("max_fail_percentage must be a number"));
                None
            })
        });
        let tags = node
            .get("tags")
            .and_then(|n| self.ok(tags_of(n)))
            .unwrap_or_default();
        let gather_subset = match node.get("gather_subset") {
            Some(n) => {
                let items = self.ok(string_list(n)).unwrap_or_default();
                // `gather_subset: "!all,network"` is a comma-separated list.
                let items: Vec<String> = items
                    .iter()
                    .flat_map(|i| i.split(','))
                    .map(|i| i.trim().to_string())
                    .filter(|i| !i.is_empty())
                    .collect();
                match FactGroups::from_subsets(&items) {
                    Ok(g) => g,
                    Err(e) => {
                        self.errors.push(n.error(e));
                        FactGroups::ALL
                    }
                }
            }
            None => FactGroups::ALL,
        };
        let gather_timeout = node.get("gather_timeout").and_then(|n| match n.kind {
            NodeKind::Int(i) if i > 0 => Some(i as u64),
            _ => {
                self.errors
                    .push(n.error("gather_timeout must be a whole number of seconds above 0"));
                None
            }
        });
        let order = match node.get("order") {
            Some(n) => match n.as_str().and_then(HostOrder::parse) {
                Some(o) => o,
                None => {
                    self.errors.push(n.error(
                        "order must be one of inventory, reverse_inventory, sorted, reverse_sorted, shuffle",
                    ));
                    HostOrder::Inventory
                }
            },
            None => HostOrder::Inventory,
        };
        let base_search = Arc::new(vec![
            self.playbook_dir.join("files"),
            self.playbook_dir.join("templates"),
            self.playbook_dir.clone(),
        ]);
        let inherit = Inherit {
            keywords: keywords.clone(),
            when: Vec::new(),
            tags,
            vars: Map::new(),
            role: None,
            search: base_search,
            base: self.playbook_dir.clone(),
            stack: Vec::new(),
            notify: Vec::new(),
            handler: false,
        };
        let handler_inherit = Inherit {
            handler: true,
            ..inherit.clone()
        };
        let pre_tasks = self.task_list(node.get("pre_tasks"), &inherit);
        let mut tasks = Vec::new();
        let mut handlers = Vec::new();
        if let Some(roles) = node.get("roles") {
            match roles.as_seq() {
                Some(items) => {
                    let mut seen = Vec::new();
                    for r in items {
                        self.role_use(
                            r,
                            &inherit,
                            &RoleFiles::default(),
                            &mut tasks,
                            &mut handlers,
                            &mut seen,
                        );
                    }
                }
                None => self.errors.push(roles.error("roles must be a list")),
            }
        }
        tasks.extend(self.task_list(node.get("tasks"), &inherit));
        let post_tasks = self.task_list(node.get("post_tasks"), &inherit);
        handlers.extend(self.task_list(node.get("handlers"), &handler_inherit));
        handlers.append(&mut self.role_handlers);
        self.check_notify(&[&pre_tasks, &tasks, &post_tasks, &handlers], &handlers);
        Some(Play {
            pos: node.pos.clone(),
            name,
            hosts,
            tags: inherit.tags.clone(),
            vars,
            vars_files,
            dir: self.playbook_dir.clone(),
            keywords,
            gather_facts,
            serial,
            any_errors_fatal,
            max_fail_percentage,
            gather_subset,
            gather_timeout,
            order,
            pre_tasks,
            tasks,
            post_tasks,
            handlers,
            role_names: std::mem::take(&mut self.play_roles),
            dependent_role_names: std::mem::take(&mut self.dep_roles),
        })
    }

    fn serial(&mut self, node: &Node) -> Vec<Serial> {
        let one = |n: &Node| -> Result<Serial, InputError> {
            match &n.kind {
                NodeKind::Int(i) if *i > 0 => Ok(Serial::Count(*i as usize)),
                NodeKind::Str(s) => match s.strip_suffix('%') {
                    Some(p) => p
                        .trim()
                        .parse::<f64>()
                        .map(Serial::Percent)
                        .map_err(|_| n.error("invalid serial percentage")),
                    None => s
                        .parse::<usize>()
                        .map(Serial::Count)
                        .map_err(|_| n.error("serial must be a number or a percentage")),
                },
                _ => Err(n.error("serial must be a positive number or a percentage")),
            }
        };
        let items: Vec<&Node> = match node.as_seq() {
            Some(s) => s.iter().collect(),
            None => vec![node],
        };
        items.into_iter().filter_map(|n| self.ok(one(n))).collect()
    }

    fn task_list(&mut self, node: Option<&Node>, inherit: &Inherit) -> Vec<Task> {
        let Some(node) = node else {
            return Vec::new();
        };
        match &node.kind {
            NodeKind::Null => Vec::new(),
            NodeKind::Seq(items) => items.iter().filter_map(|t| self.task(t, inherit)).collect(),
            _ => {
                self.errors.push(node.error("expected a list of tasks"));
                Vec::new()
            }
        }
    }

    fn load_task_file(&mut self, path: &Path, at: &Node, inherit: &Inherit) -> Vec<Task> {
        if inherit.stack.iter().any(|p| p == path) {
            self.errors.push(
                at.error(format!("{} imports itself", path.display()))
                    .with_kind(InputErrorKind::Include),
            );
            return Vec::new();
        }
        let doc = match yaml::load_file(path) {
            Ok(d) => d,
            Err(mut e) => {
                if e.kind == InputErrorKind::Read {
                    e = at.error(format!("cannot read {}: {}", path.display(), e.msg));
                    e.kind = InputErrorKind::Read;
                }
                self.errors.push(e);
                return Vec::new();
            }
        };
        let mut inner = inherit.clone();
        inner.stack.push(path.to_path_buf());
        inner.base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        inner.search = self.search_with_file(&inherit.search, &inner.base);
        self.task_list(Some(&doc), &inner)
    }

    /// The search path of tasks in a file of directory `dir`: as Ansible,
    /// after the role's directories come the file's own (with `files/` and
    /// `templates/` beside it, or beside the `tasks/` it is in), then the
    /// playbook's.
    fn search_with_file(&self, search: &Arc<Vec<PathBuf>>, dir: &Path) -> Arc<Vec<PathBuf>> {
        let pb = &self.playbook_dir;
        let top = if dir.file_name().is_some_and(|n| n == "tasks") {
            dir.parent().unwrap_or(dir)
        } else {
            dir
        };
        if top == pb.as_path() || search.iter().any(|d| d == dir) {
            return search.clone();
        }
        let playbook_own = [pb.join("files"), pb.join("templates"), pb.clone()];
        let mut out: Vec<PathBuf> = search
            .iter()
            .filter(|d| !playbook_own.contains(d))
            .cloned()
            .collect();
        out.extend([top.join("files"), top.join("templates"), dir.to_path_buf()]);
        if top != dir {
            out.push(top.to_path_buf());
        }
        out.extend(playbook_own);
        Arc::new(out)
    }

    fn task(&mut self, node: &Node, parent: &Inherit) -> Option<Task> {
        let entries = match node.as_map() {
            Some(e) => e,
            None => {
                self.errors.push(node.error("a task must be a mapping"));
                return None;
            }
        };
        // The module is the one key that is not a task keyword.
        let mut action_key: Option<(&Node, &Node)> = None;
        for (k, v) in entries {
            let name = k.scalar_string().unwrap_or_default();
            // A play's keyword that names a module too is that module in a
            // task (`gather_facts:`).
            let task_keyword = kw::find(&name).is_some_and(|k| {
                [Level::Task, Level::Block, Level::Handler]
                    .into_iter()
                    .any(|l| k.levels.contains(l))
                    || modules::known::resolve(&name, &[]).is_none()
            });
            if task_keyword && name != "action" && name != "local_action" {
                continue;
            }
            if let Some((first, _)) = action_key {
                self.errors.push(k.error(format!(
                    "conflicting action statements: '{}' and '{}'",
                    first.scalar_string().unwrap_or_default(),
                    name
                )));
                return None;
            }
            action_key = Some((k, v));
        }
        let level = if node.get("block").is_some() {
            Level::Block
        } else if parent.handler {
            Level::Handler
        } else {
            Level::Task
        };
        for (k, v) in entries {
            let name = k.scalar_string().unwrap_or_default();
            if action_key.is_some_and(|(a, _)| std::ptr::eq(a, k)) {
                continue;
            }
            match kw::find(&name) {
                Some(keyword) if keyword.levels.contains(level) => {
                    self.check_keyword(&keyword, &name, k, v)
                }
                _ => self.errors.push(
                    k.error(format!(
                        "'{name}' is not a valid attribute for a {}",
                        level.noun()
                    ))
                    .with_kind(InputErrorKind::UnknownKeyword),
                ),
            }
        }
        let keywords = self.keywords(node);
        let mut own_when = Vec::new();
        if let Some(w) = node.get("when") {
            own_when = self.ok(conditions(w, "when")).unwrap_or_default();
        }
        let mut tags = parent.tags.clone();
        if let Some(t) = node.get("tags") {
            for tag in self.ok(tags_of(t)).unwrap_or_default() {
                if !tags.contains(&tag) {
                    tags.push(tag);
                }
            }
        }
        let mut vars = parent.vars.clone();
        if let Some(v) = node.get("vars") {
            vars.extend(self.ok(map_node(v, "vars")).unwrap_or_default());
        }
        let mut keywords = parent.keywords.inherit(&keywords);
        if node.get("local_action").is_some() {
            keywords.delegate_to = Some("localhost".into());
        }
        let mut when = parent.when.clone();
        when.extend(own_when);
        let notify = match node.get("notify") {
            Some(n) => self.ok(string_list(n)).unwrap_or_default(),
            None => parent.notify.clone(),
        };
        let inherit = Inherit {
            keywords: keywords.clone(),
            when: when.clone(),
            tags: tags.clone(),
            vars: vars.clone(),
            notify: notify.clone(),
            ..parent.clone()
        };

        // Ansible reports `include_tasks` and `include_role` as tasks of
        // their own, also where drover loads the file before the run.
        let mut include = None;
        let action = if let Some(block) = node.get("block") {
            if let Some((k, _)) = action_key {
                self.errors.push(k.error(format!(
                    "'{}' cannot be used together with 'block'",
                    k.scalar_string().unwrap_or_default()
                )));
                return None;
            }
            // Children carry the block's conditions, tags and keywords.
            let block_tasks = self.task_list(Some(block), &inherit);
            let rescue = self.task_list(node.get("rescue"), &inherit);
            let always = self.task_list(node.get("always"), &inherit);
            Action::Block {
                block: block_tasks,
                rescue,
                always,
            }
        } else {
            let Some((key, value)) = action_key else {
                self.errors
                    .push(node.error("no module or action given in this task"));
                return None;
            };
            let mut name = key.scalar_string().unwrap_or_default();
            let mut value = value.clone();
            if name == "action" || name == "local_action" {
                // `action: module arg=1` or `action: {module: x, arg: 1}`.
                match &value.kind {
                    NodeKind::Str(s) => {
                        let s = s.trim();
                        // `action: "{{ ansible_facts.pkg_mgr }}"`: the name
                        // is a template, whole.
                        let (m, rest) = match s.find("}}") {
                            Some(end) if s.starts_with("{{") => {
                                (&s[..end + 2], s[end + 2..].trim_start())
                            }
                            _ => s.split_once(' ').unwrap_or((s, "")),
                        };
                        name = m.to_string();
                        value = Node {
                            pos: value.pos.clone(),
                            kind: NodeKind::Str(rest.to_string()),
                        };
                    }
                    NodeKind::Map(entries) => {
                        let module = entries.iter().find(|(k, _)| k.key_str() == Some("module"));
                        let Some((_, m)) = module else {
                            self.errors.push(value.error("action needs a 'module'"));
                            return None;
                        };
                        name = self.ok(string_node(m))?;
                        let rest: Vec<(Node, Node)> = entries
                            .iter()
                            .filter(|(k, _)| k.key_str() != Some("module"))
                            .cloned()
                            .collect();
                        value = Node {
                            pos: value.pos.clone(),
                            kind: NodeKind::Map(rest),
                        };
                    }
                    _ => {
                        self.errors.push(value.error("invalid action"));
                        return None;
                    }
                }
            }
            let short = name
                .strip_prefix("ansible.builtin.")
                .or_else(|| name.strip_prefix("ansible.legacy."))
                .unwrap_or(&name)
                .to_string();
            match short.as_str() {
                "import_tasks" | "include_tasks" | "include" => {
                    let file = match value.get("file") {
                        Some(f) => self.ok(string_node(f))?,
                        None => free_form_file(self.ok(string_node(&value))?),
                    };
                    let static_path = !crate::template::Templar::is_template(&file);
                    // An include with a loop or a `when` is dynamic, as all
                    // of Ansible's: a false `when` never loads the file.
                    if short == "import_tasks"
                        || (static_path && node.get("when").is_none() && !has_loop(node))
                    {
                        let file = match static_path {
                            true => file,
                            false => self.load_time_template(&file, &value, &inherit, &short)?,
                        };
                        let mut path = inherit.base.join(&file);
                        // In a role, Ansible also looks in the role's
                        // tasks/ (a handler including a task file).
                        if let (false, Some(role)) = (path.is_file(), &inherit.role) {
                            let in_tasks = role.dir.join("tasks").join(&file);
                            if in_tasks.is_file() {
                                path = in_tasks;
                            }
                        }
                        let tasks = self.load_task_file(&path, &value, &inherit);
                        if short != "import_tasks" {
                            include = Some("include_tasks");
                        }
                        Action::Block {
                            block: tasks,
                            rescue: Vec::new(),
                            always: Vec::new(),
                        }
                    } else {
                        Action::IncludeTasks {
                            file,
                            base: inherit.base.clone(),
                            role: inherit.role.clone(),
                        }
                    }
                }
                "include_vars" => {
                    // Free-form: the file name (a folded `>` value ends in a
                    // newline Ansible drops).
                    let (file, args) = match &value.kind {
                        NodeKind::Map(_) => {
                            let file = match value.get("file").or_else(|| value.get("_raw_params"))
                            {
                                Some(f) => self.ok(string_node(f))?,
                                None => String::new(),
                            };
                            if file.is_empty() && value.get("dir").is_none() {
                                self.errors
                                    .push(value.error("include_vars needs a file name or 'dir'"));
                                return None;
                            }
                            (file, value.to_value())
                        }
                        _ => (
                            self.ok(string_node(&value))?
                                .trim_end_matches('\n')
                                .to_string(),
                            Value::Object(Map::new()),
                        ),
                    };
                    let base = match &inherit.role {
                        Some(r) => r.dir.join("vars"),
                        None => inherit.base.clone(),
                    };
                    Action::IncludeVars {
                        file,
                        base,
                        args,
                        role_dir: inherit.role.as_ref().map(|r| r.dir.clone()),
                    }
                }
                "import_role" | "include_role" => {
                    let Some(role_name) = value
                        .get("name")
                        .or_else(|| value.get("role"))
                        .and_then(|n| self.ok(string_node(n)))
                    else {
                        self.errors
                            .push(value.error(format!("{short} needs 'name'")));
                        return None;
                    };
                    // drover loads roles before the run: a templated name
                    // takes the values known then, as Ansible's import_role.
                    let role_name = match crate::template::Templar::is_template(&role_name) {
                        true => self.load_time_template(&role_name, &value, &inherit, &short)?,
                        false => role_name,
                    };
                    let mut tasks = Vec::new();
                    let mut handlers = Vec::new();
                    let mut seen = Vec::new();
                    let role_node = Node {
                        pos: value.pos.clone(),
                        kind: NodeKind::Str(role_name),
                    };
                    let mut files = RoleFiles::default();
                    for (key, slot) in [
                        ("tasks_from", &mut files.tasks),
                        ("vars_from", &mut files.vars),
                        ("defaults_from", &mut files.defaults),
                        ("handlers_from", &mut files.handlers),
                    ] {
                        if let Some(n) = value.get(key) {
                            let name = self.ok(string_node(n))?;
                            *slot = Some(match crate::template::Templar::is_template(&name) {
                                true => self.load_time_template(&name, n, &inherit, &short)?,
                                false => name,
                            });
                        }
                    }
                    // As Ansible's include params: the roles this one is
                    // imported from, nearest first.
                    let mut inner = inherit.clone();
                    if let Some(parent) = &inherit.role {
                        let dir =
                            std::path::absolute(&parent.dir).unwrap_or_else(|_| parent.dir.clone());
                        for (key, first) in [
                            ("ansible_parent_role_names", parent.name.clone()),
                            ("ansible_parent_role_paths", dir.display().to_string()),
                        ] {
                            let mut list = match inner.vars.get(key) {
                                Some(Value::Array(a)) => a.clone(),
                                _ => Vec::new(),
                            };
                            list.insert(0, Value::from(first));
                            inner.vars.insert(key.into(), Value::Array(list));
                        }
                    }
                    let outer = std::mem::replace(&mut self.in_deps, false);
                    self.role_use(
                        &role_node,
                        &inner,
                        &files,
                        &mut tasks,
                        &mut handlers,
                        &mut seen,
                    );
                    self.in_deps = outer;
                    self.role_handlers.append(&mut handlers);
                    if short == "include_role" {
                        include = Some("include_role");
                    }
                    Action::Block {
                        block: tasks,
                        rescue: Vec::new(),
                        always: Vec::new(),
                    }
                }
                "meta" => {
                    let what = self.ok(string_node(&value))?;
                    let meta = match what.as_str() {
                        "flush_handlers" => Meta::FlushHandlers,
                        "end_play" => Meta::EndPlay,
                        "end_host" => Meta::EndHost,
                        "noop" | "refresh_inventory" | "reset_connection" => Meta::Noop,
                        "clear_facts" => Meta::ClearFacts,
                        other => {
                            self.errors
                                .push(value.error(format!("unknown meta action '{other}'")));
                            return None;
                        }
                    };
                    Action::Meta(meta)
                }
                _ if crate::template::Templar::is_template(&name) => {
                    // The module is known when the task runs.
                    let module = &modules::DYNAMIC;
                    let mut args =
                        self.module_args(module, &value, node.get("args"), false, Map::new())?;
                    if let Value::Object(m) = &mut args {
                        m.insert(modules::DYNAMIC_NAME.into(), Value::String(name.clone()));
                    }
                    Action::Module { module, args }
                }
                _ => match modules::lookup(&name) {
                    Some(module) => {
                        // Ansible refuses arguments when the task runs: a
                        // task that expects to fail (ignore_errors,
                        // failed_when) may test exactly that.
                        let expects_failure = keywords.ignore_errors == Some(true)
                            || node.get("ignore_errors").is_some_and(|n| {
                                matches!(&n.kind, NodeKind::Str(s) if crate::template::Templar::is_template(s))
                            })
                            || node.get("failed_when").is_some();
                        // `module_defaults` go under the task's own arguments.
                        let mut defaults = keywords.defaults_for(module);
                        // Ansible's `service` action then runs the service
                        // manager's module (systemd, for drover) with that
                        // module's defaults under what it has.
                        if module.name == "service" {
                            if let Some(systemd) = modules::lookup("systemd") {
                                let mut under = keywords.defaults_for(systemd);
                                under.extend(defaults);
                                defaults = under;
                            }
                        }
                        let args = self.module_args(
                            module,
                            &value,
                            node.get("args"),
                            expects_failure,
                            defaults,
                        )?;
                        Action::Module { module, args }
                    }
                    None => {
                        // An Ansible module drover lacks fails only where it
                        // runs (a branch for another distribution may never).
                        let found = modules::known::unimplemented(&name, &self.collections)
                            .or_else(|| self.own_plugin(&name, parent));
                        let Some((module, args)) = found else {
                            let hint = modules::known::suggest(&name)
                                .map(|s| format!("; did you mean '{s}'?"))
                                .unwrap_or_default();
                            self.errors.push(
                                key.error(format!(
                                    "unknown module '{name}' (or a misspelled task keyword){hint}"
                                ))
                                .with_kind(InputErrorKind::UnknownModule),
                            );
                            return None;
                        };
                        Action::Module { module, args }
                    }
                },
            }
        };

        let loop_ = self.task_loop(node);
        let register = node.get("register").and_then(|n| self.ok(string_node(n)));
        let listen = node
            .get("listen")
            .and_then(|n| self.ok(string_list(n)))
            .unwrap_or_default();
        let changed_when = node
            .get("changed_when")
            .and_then(|n| self.ok(conditions(n, "changed_when")));
        let failed_when = node
            .get("failed_when")
            .and_then(|n| self.ok(conditions(n, "failed_when")));
        let until = node
            .get("until")
            .and_then(|n| self.ok(conditions(n, "until")));
        // `retries` without `until` retries until the task does not fail.
        let retries = self.number_or_template(node, "retries");
        let until = (until.is_some() || retries.is_some()).then(|| crate::playbook::Retry {
            until: until.unwrap_or_default(),
            retries,
            delay: self.number_or_template(node, "delay"),
        });
        // `name:` with no value is an unnamed task, as in Ansible.
        let name = node
            .get("name")
            .filter(|n| !n.is_null())
            .and_then(|n| self.ok(string_node(n)));
        Some(Task {
            pos: node.pos.clone(),
            name,
            action,
            keywords,
            when,
            loop_,
            register,
            notify,
            listen,
            changed_when,
            failed_when,
            until,
            tags,
            vars,
            role: parent.role.clone(),
            search: parent.search.clone(),
            include,
        })
    }

    fn task_loop(&mut self, node: &Node) -> Option<Loop> {
        let mut lookup = None;
        let (items, flatten, dict) = if let Some(l) = node.get("loop") {
            (l.to_value(), false, false)
        } else if let Some(l) = node.get("with_list") {
            // The `list` lookup: a value that is not a list is one item.
            lookup = Some("list".to_string());
            (l.to_value(), false, false)
        } else if let Some(l) = node.get("with_items") {
            (l.to_value(), true, false)
        } else if let Some(l) = node.get("with_dict") {
            (l.to_value(), false, true)
        } else if let Some((name, l)) = super::WITH_LOOKUPS
            .iter()
            .find_map(|n| node.get(&format!("with_{n}")).map(|l| (n, l)))
        {
            lookup = Some(name.to_string());
            (l.to_value(), false, false)
        } else {
            return None;
        };
        let mut lp = Loop {
            items,
            flatten,
            dict,
            loop_var: "item".into(),
            index_var: None,
            label: None,
            lookup,
            break_when: Vec::new(),
            extended: false,
            extended_allitems: true,
            pause: 0.0,
        };
        if let Some(lc) = node.get("loop_control") {
            for (k, v) in lc.as_map().unwrap_or(&[]) {
                let name = k.scalar_string().unwrap_or_default();
                match name.as_str() {
                    "loop_var" | "index_var" | "label" => {}
                    "extended" | "extended_allitems" => {
                        let on = if v.is_null() {
                            Some(false)
                        } else {
                            self.ok(bool_node(v))
                        };
                        match on {
                            Some(on) if name == "extended" => lp.extended = on,
                            Some(on) => lp.extended_allitems = on,
                            None => {}
                        }
                    }
                    "break_when" => {
                        lp.break_when = self.ok(conditions(v, "break_when")).unwrap_or_default();
                    }
                    "pause" => {
                        let secs = match &v.kind {
                            NodeKind::Null => Some(0.0),
                            NodeKind::Int(i) => Some(*i as f64),
                            NodeKind::Float(f) => Some(*f),
                            NodeKind::Str(t) => t.trim().parse::<f64>().ok(),
                            _ => None,
                        };
                        match secs.filter(|s| s.is_finite() && *s >= 0.0) {
                            Some(s) => lp.pause = s,
                            None => self.errors.push(v.error(
                                "`loop_control.pause` must be a number of seconds of 0 or more",
                            )),
                        }
                    }
                    _ => self.errors.push(k.error(format!(
                        "'{name}' is not a valid attribute for a loop_control"
                    ))),
                }
            }
            if let Some(v) = lc.get("loop_var").and_then(|n| self.ok(string_node(n))) {
                lp.loop_var = v;
            }
            lp.index_var = lc.get("index_var").and_then(|n| self.ok(string_node(n)));
            lp.label = lc.get("label").and_then(|n| self.ok(string_node(n)));
        }
        Some(lp)
    }

    /// A module of the role's own `library/` or `action_plugins/` (or the
    /// playbook's): Python drover cannot run, known to exist. The task
    /// loads and fails where it runs.
    fn own_plugin(
        &self,
        name: &str,
        parent: &Inherit,
    ) -> Option<(&'static modules::ModuleInfo, Value)> {
        if name.contains('.') || name.contains('/') || name.is_empty() {
            return None;
        }
        let mut dirs: Vec<PathBuf> = Vec::new();
        if let Some(role) = &parent.role {
            dirs.push(role.dir.join("library"));
            dirs.push(role.dir.join("action_plugins"));
        }
        dirs.push(self.playbook_dir.join("library"));
        dirs.push(self.playbook_dir.join("action_plugins"));
        let found = dirs.iter().find_map(|d| {
            let entries = std::fs::read_dir(d).ok()?;
            entries.flatten().find_map(|e| {
                let file = e.file_name();
                let file = file.to_string_lossy();
                let stem = file.split_once('.').map_or(&*file, |(s, _)| s);
                (stem == name).then(|| {
                    let dir = d.file_name().map(|n| n.to_string_lossy().into_owned());
                    dir.unwrap_or_default()
                })
            })
        })?;
        Some(modules::known::own_plugin(name, &found))
    }

    /// Module arguments: a mapping, `key=value` text, or free-form text.
    /// With `expects_failure`, arguments the module refuses make a task
    /// that fails when it runs, with Ansible's message, instead of a load
    /// error.
    fn module_args(
        &mut self,
        module: &'static modules::ModuleInfo,
        value: &Node,
        extra: Option<&Node>,
        expects_failure: bool,
        defaults: Map,
    ) -> Option<Value> {
        if expects_failure {
            // Ansible finds a broken template when the task runs: one that
            // expects to fail may test exactly that.
            if let Some(e) =
                first_template_error(value).or_else(|| extra.and_then(first_template_error))
            {
                return Some(modules::refused(format!("Syntax error in template: {e}")));
            }
        }
        let before = self.errors.len();
        self.template_syntax(value, module.name);
        if let Some(extra) = extra {
            self.template_syntax(extra, module.name);
        }
        if self.errors.len() > before {
            return None;
        }
        // `module_defaults` first: the task's own arguments override them,
        // and the checks below see what the module will get.
        let mut args = defaults;
        let mut key_pos: Vec<(String, &Node)> = Vec::new();
        match &value.kind {
            NodeKind::Map(entries) => {
                for (k, v) in entries {
                    let name = k.scalar_string().unwrap_or_default();
                    args.insert(name.clone(), v.to_value());
                    key_pos.push((name, k));
                }
            }
            NodeKind::Null => {}
            NodeKind::Str(text) if !module.free_form && is_one_template(text) => {
                // `assert: '{{ item }}'`: the arguments are a template that
                // makes a mapping (Ansible's argument splat).
                args.insert(modules::SPLAT.into(), Value::String(text.clone()));
            }
            _ => {
                let text = value.scalar_string().unwrap_or_default();
                if module.free_form {
                    // The module takes its own `key=value` options out of
                    // free-form text (command: creates=, chdir=; set_fact).
                    args.insert("_raw_params".into(), Value::String(text));
                } else {
                    match parse_kv(&text, true) {
                        Ok(kv) => {
                            for (k, v) in kv {
                                key_pos.push((k.clone(), value));
                                args.insert(k, Value::String(v));
                            }
                        }
                        Err(KvError::NotKv(_)) if expects_failure && module.name == "add_host" => {
                            // Ansible's add_host takes text that is not
                            // key=value as raw parameters, and refuses them
                            // when it runs.
                            return Some(modules::refused(
                                "Invalid raw parameters passed, requires a dictionary/mapping got a string"
                                    .into(),
                            ));
                        }
                        Err(KvError::NotKv(_)) => {
                            self.errors.push(value.error(format!(
                                "module '{}' takes key=value arguments or a mapping",
                                module.name
                            )));
                            return None;
                        }
                        Err(e) => {
                            self.errors.push(
                                value
                                    .error(e.to_string())
                                    .with_kind(InputErrorKind::BadArgument),
                            );
                            return None;
                        }
                    }
                }
            }
        }
        if let Some(extra) = extra {
            if let Some(entries) = extra.as_map() {
                for (k, v) in entries {
                    let name = k.scalar_string().unwrap_or_default();
                    args.insert(name.clone(), v.to_value());
                    key_pos.push((name, k));
                }
            } else {
                self.errors.push(extra.error("args must be a mapping"));
            }
        }
        let mut unknown = false;
        let mut unsupported: Vec<&str> = Vec::new();
        if !module.args.contains(&"*") {
            for (name, at) in &key_pos {
                if !module.args.contains(&name.as_str()) && !module.pending.contains(&name.as_str())
                {
                    unknown = true;
                    if expects_failure {
                        unsupported.push(name);
                        continue;
                    }
                    let mut accepted: Vec<&str> = module
                        .args
                        .iter()
                        .copied()
                        .filter(|a| !a.starts_with('_'))
                        .collect();
                    accepted.sort_unstable();
                    self.errors.push(
                        at.error(format!(
                            "unknown argument '{name}' for module '{}' (accepted: {})",
                            module.name,
                            accepted.join(", ")
                        ))
                        .with_kind(InputErrorKind::BadArgument),
                    );
                }
            }
        }
        if !unsupported.is_empty() {
            return Some(modules::refused(modules::unsupported_message(
                module,
                &unsupported,
            )));
        }
        let args = Value::Object(args);
        // Values are checked once every name is known (serde would only
        // repeat an unknown name).
        let checked = if unknown {
            Ok(())
        } else {
            (module.check)(&args)
        };
        if let (Err(e), true) = (&checked, expects_failure) {
            return Some(modules::refused(modules::ansible_arg_message(e)));
        }
        if let Err(e) = checked {
            let at = e
                .arg
                .as_deref()
                .and_then(|a| key_pos.iter().rev().find(|(name, _)| name == a))
                .map_or(value, |(_, node)| *node);
            let msg = match &e.arg {
                Some(arg) => format!("module '{}', argument '{arg}': {}", module.name, e.msg),
                None => format!("module '{}': {}", module.name, e.msg),
            };
            self.errors
                .push(at.error(msg).with_kind(InputErrorKind::BadArgument));
            return None;
        }
        Some(args)
    }

    /// Refuse templates that cannot compile, at the string that holds them
    /// (the static check would only name the task).
    fn template_syntax(&mut self, node: &Node, module: &str) {
        match &node.kind {
            NodeKind::Str(s) if crate::template::Templar::is_template(s) => {
                if let Some(e) = crate::template::Templar::syntax_error(s, false) {
                    self.errors.push(
                        node.error(format!("module '{module}': invalid template: {e}"))
                            .with_kind(InputErrorKind::Template),
                    );
                }
            }
            NodeKind::Seq(items) => items.iter().for_each(|i| self.template_syntax(i, module)),
            NodeKind::Map(entries) => {
                for (k, v) in entries {
                    self.template_syntax(k, module);
                    self.template_syntax(v, module);
                }
            }
            _ => {}
        }
    }

    /// Refuse a static `notify` no handler of the play answers to, as
    /// Ansible does when it is notified; handlers included at run time (or
    /// with templated names) leave it to the run.
    fn check_notify(&mut self, sections: &[&Vec<Task>], handlers: &[Task]) {
        fn walk<'t>(tasks: &'t [Task], out: &mut Vec<&'t Task>) {
            for t in tasks {
                out.push(t);
                if let Action::Block {
                    block,
                    rescue,
                    always,
                } = &t.action
                {
                    for part in [block, rescue, always] {
                        walk(part, out);
                    }
                }
            }
        }
        let mut all_handlers = Vec::new();
        walk(handlers, &mut all_handlers);
        let mut known = Vec::new();
        for h in &all_handlers {
            if matches!(h.action, Action::IncludeTasks { .. })
                || h.name
                    .as_deref()
                    .is_some_and(crate::template::Templar::is_template)
            {
                return;
            }
            known.extend(h.listen.iter().cloned());
            if let Some(name) = &h.name {
                known.push(name.clone());
                if let Some(role) = &h.role {
                    known.push(format!("{} : {name}", role.name));
                }
            }
        }
        let mut tasks = Vec::new();
        for section in sections {
            walk(section, &mut tasks);
        }
        let mut reported: Vec<&str> = Vec::new();
        for t in tasks {
            for n in &t.notify {
                if crate::template::Templar::is_template(n)
                    || known.contains(n)
                    || reported.contains(&n.as_str())
                {
                    continue;
                }
                reported.push(n);
                self.errors.push(InputError::new(
                    t.pos.clone(),
                    super::missing_handler_msg(n),
                ));
            }
        }
    }

    /// A name templated where the loader needs it (`import_tasks`,
    /// `import_role`), rendered as Ansible does at that point: with the
    /// role's defaults, the play's vars, the role's vars, block and task
    /// vars and `-e`, lowest first, and `role_path`, `role_name` and
    /// `playbook_dir`; no host's variables or facts.
    fn load_time_template(
        &mut self,
        text: &str,
        at: &Node,
        inherit: &Inherit,
        what: &str,
    ) -> Option<String> {
        let mut magic = Map::new();
        let dir =
            std::path::absolute(&self.playbook_dir).unwrap_or_else(|_| self.playbook_dir.clone());
        magic.insert(
            "playbook_dir".into(),
            Value::from(dir.display().to_string()),
        );
        let mut layers = Vec::new();
        if let Some(role) = &inherit.role {
            layers.push(Arc::new(role.defaults.clone()));
        }
        layers.push(Arc::new(self.play_vars.clone()));
        if let Some(role) = &inherit.role {
            layers.push(Arc::new(role.vars.clone()));
            let dir = std::path::absolute(&role.dir).unwrap_or_else(|_| role.dir.clone());
            magic.insert("role_path".into(), Value::from(dir.display().to_string()));
            magic.insert("role_name".into(), Value::from(role.name.clone()));
            magic.insert("ansible_role_name".into(), Value::from(role.name.clone()));
        }
        layers.push(Arc::new(inherit.vars.clone()));
        layers.push(Arc::new(self.extra_vars.clone()));
        layers.push(Arc::new(magic));
        let templar = crate::template::Templar::new();
        let scope = templar.layered(layers, Vec::new());
        match templar.render_string(text, &scope) {
            Ok(s) => Some(s),
            Err(e) => {
                self.errors.push(at.error(format!(
                    "{what}: cannot template {text:?} when loading (only play, role, block and task vars and -e are known then; use include_tasks or include_role for values set at run time): {}",
                    e.msg
                )));
                None
            }
        }
    }

    /// Expand a role use (`- common`, `- role: x` with params) into tasks and
    /// handlers, dependencies first.
    fn role_use(
        &mut self,
        node: &Node,
        parent: &Inherit,
        files: &RoleFiles,
        tasks: &mut Vec<Task>,
        handlers: &mut Vec<Task>,
        seen: &mut Vec<String>,
    ) {
        let (name, params, kw_node) = match &node.kind {
            NodeKind::Str(s) => (s.clone(), Map::new(), None),
            NodeKind::Map(_) => {
                let Some(n) = node.get("role").or_else(|| node.get("name")) else {
                    self.errors.push(node.error("a role entry needs 'role'"));
                    return;
                };
                let Some(name) = self.ok(string_node(n)) else {
                    return;
                };
                let mut params = Map::new();
                for (k, v) in node.as_map().unwrap_or(&[]) {
                    let key = k.scalar_string().unwrap_or_default();
                    match kw::find(&key).filter(|r| r.levels.contains(Level::Role)) {
                        Some(_) if key == "vars" => {
                            if let Some(m) = self.ok(map_node(v, "vars")) {
                                params.extend(m);
                            }
                        }
                        Some(keyword) => self.check_keyword(&keyword, &key, k, v),
                        // Anything else is a role parameter, as in Ansible.
                        None => {
                            params.insert(key, v.to_value());
                        }
                    }
                }
                (name, params, Some(node))
            }
            _ => {
                self.errors
                    .push(node.error("a role entry must be a name or a mapping"));
                return;
            }
        };
        let key = format!("{name}{}", Value::Object(params.clone()));
        if seen.contains(&key) {
            return;
        }
        seen.push(key);
        let within = parent.role.as_ref().map(|r| r.dir.as_path());
        let dir = match self
            .role_paths
            .find(&name, &parent.base, &self.playbook_dir, within)
        {
            Ok(dir) => dir,
            Err(e) => {
                self.errors.push(node.error(e));
                return;
            }
        };
        let read_map = |me: &mut Self, sub: &str, from: &Option<String>| -> Map {
            let Some(path) = me.role_file(&dir, sub, from, node) else {
                return Map::new();
            };
            match yaml::load_file(&path) {
                Ok(doc) => me.ok(map_node(&doc, sub)).unwrap_or_default(),
                Err(e) => {
                    me.errors.push(e);
                    Map::new()
                }
            }
        };
        let defaults = read_map(self, "defaults", &files.defaults);
        let mut vars = read_map(self, "vars", &files.vars);
        vars.extend(params);
        // A role named by its path is called by its directory's name.
        let name = match name.contains('/') {
            true => dir
                .file_name()
                .map_or(name.clone(), |n| n.to_string_lossy().into_owned()),
            false => name,
        };
        match self.in_deps {
            true if !self.dep_roles.contains(&name) => self.dep_roles.push(name.clone()),
            true => {}
            false => self.play_roles.push(name.clone()),
        }
        let role = Arc::new(Role {
            name: name.clone(),
            dir: dir.clone(),
            defaults,
            vars,
        });
        let mut kw = parent.keywords.clone();
        let mut when = parent.when.clone();
        let mut tags = parent.tags.clone();
        if let Some(n) = kw_node {
            kw = kw.inherit(&self.keywords(n));
            if let Some(w) = n.get("when") {
                when.extend(self.ok(conditions(w, "when")).unwrap_or_default());
            }
            if let Some(t) = n.get("tags") {
                tags.extend(self.ok(tags_of(t)).unwrap_or_default());
            }
        }
        // Dependencies from meta/main.yml run first.
        if let Some(meta_path) = main_file(&dir.join("meta")) {
            if let Some(doc) = self.ok(yaml::load_file(&meta_path)) {
                if let Some(deps) = doc.get("dependencies").and_then(Node::as_seq) {
                    let dep_inherit = Inherit {
                        keywords: kw.clone(),
                        when: when.clone(),
                        tags: tags.clone(),
                        base: dir.parent().map(Path::to_path_buf).unwrap_or_default(),
                        ..parent.clone()
                    };
                    let outer = std::mem::replace(&mut self.in_deps, true);
                    for d in deps {
                        self.role_use(
                            d,
                            &dep_inherit,
                            &RoleFiles::default(),
                            tasks,
                            handlers,
                            seen,
                        );
                    }
                    self.in_deps = outer;
                }
            }
        }
        let search = Arc::new(vec![
            dir.join("files"),
            dir.join("templates"),
            dir.join("tasks"),
            dir.clone(),
            self.playbook_dir.join("files"),
            self.playbook_dir.join("templates"),
            self.playbook_dir.clone(),
        ]);
        let inherit = Inherit {
            keywords: kw,
            when,
            tags,
            vars: parent.vars.clone(),
            role: Some(role),
            search,
            base: dir.join("tasks"),
            stack: parent.stack.clone(),
            notify: Vec::new(),
            handler: parent.handler,
        };
        if let Some(p) = self.role_file(&dir, "tasks", &files.tasks, node) {
            let at = Node {
                pos: node.pos.clone(),
                kind: NodeKind::Null,
            };
            tasks.extend(self.load_task_file(&p, &at, &inherit));
        }
        if let Some(p) = self.role_file(&dir, "handlers", &files.handlers, node) {
            let at = Node {
                pos: node.pos.clone(),
                kind: NodeKind::Null,
            };
            let mut hinherit = inherit.clone();
            hinherit.when = Vec::new();
            hinherit.handler = true;
            handlers.extend(self.load_task_file(&p, &at, &hinherit));
        }
    }
}

/// The files of a role that `import_role`'s `tasks_from`, `vars_from`,
/// `defaults_from` and `handlers_from` load instead of `main`.
#[derive(Default)]
struct RoleFiles {
    tasks: Option<String>,
    vars: Option<String>,
    defaults: Option<String>,
    handlers: Option<String>,
}

impl Loader {
    /// The file of role subdirectory `sub` to load: `main`, or the one
    /// `from` names (with or without `.yml`, `.yaml` or `.json`, as
    /// Ansible looks them up); a named file that is missing is an error.
    fn role_file(
        &mut self,
        dir: &Path,
        sub: &str,
        from: &Option<String>,
        at: &Node,
    ) -> Option<PathBuf> {
        let Some(name) = from else {
            return main_file(&dir.join(sub));
        };
        let base = dir.join(sub).join(name);
        let found = ["", ".yml", ".yaml", ".json"]
            .iter()
            .map(|ext| PathBuf::from(format!("{}{ext}", base.display())))
            .find(|p| p.is_file());
        if found.is_none() {
            self.errors.push(
                at.error(format!(
                    "role '{}': no file '{name}' in {}",
                    dir.file_name().unwrap_or_default().to_string_lossy(),
                    dir.join(sub).display()
                ))
                .with_kind(InputErrorKind::Read),
            );
        }
        found
    }
}

/// `main.yml`, `main.yaml` or `main` in a role subdirectory.
fn main_file(dir: &Path) -> Option<PathBuf> {
    ["main.yml", "main.yaml", "main"]
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.is_file())
}

/// Load the file of an `include_tasks` reached at run time; its tasks inherit
/// the including task's conditions, tags, keywords and role.
pub fn load_included(
    path: &Path,
    parent: &Task,
    playbook_dir: &Path,
) -> Result<Vec<Task>, InputErrors> {
    let mut loader = Loader {
        errors: Vec::new(),
        playbook_dir: playbook_dir.to_path_buf(),
        collections: Vec::new(),
        role_handlers: Vec::new(),
        extra_vars: Map::new(),
        play_vars: Map::new(),
        play_roles: Vec::new(),
        dep_roles: Vec::new(),
        in_deps: false,
        role_paths: super::roles::RolePaths::from_env(playbook_dir),
    };
    let inherit = Inherit {
        keywords: parent.keywords.clone(),
        when: parent.when.clone(),
        tags: parent.tags.clone(),
        vars: parent.vars.clone(),
        role: parent.role.clone(),
        search: parent.search.clone(),
        base: path.parent().map(Path::to_path_buf).unwrap_or_default(),
        stack: Vec::new(),
        notify: Vec::new(),
        handler: false,
    };
    let at = Node {
        pos: parent.pos.clone(),
        kind: NodeKind::Null,
    };
    let tasks = loader.load_task_file(path, &at, &inherit);
    if loader.errors.is_empty() {
        Ok(tasks)
    } else {
        Err(InputErrors(loader.errors))
    }
}

/// Is `text` a single `{{ }}` expression from end to end (Ansible's argument
/// splat), rather than pairs such as `{{ k }}={{ v }}`?
fn is_one_template(text: &str) -> bool {
    let t = text.trim();
    if !t.starts_with("{{") || !t.ends_with("}}") {
        return false;
    }
    let bytes = t.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i + 1 < bytes.len() {
        match (bytes[i], bytes[i + 1]) {
            (b'{', b'{') => {
                depth += 1;
                i += 2;
            }
            (b'}', b'}') => {
                depth = depth.saturating_sub(1);
                i += 2;
                if depth == 0 {
                    return i == bytes.len();
                }
            }
            _ => i += 1,
        }
    }
    false
}

/// The first template in `node` that does not compile, and why.
fn first_template_error(node: &Node) -> Option<String> {
    match &node.kind {
        NodeKind::Str(s) if crate::template::Templar::is_template(s) => {
            crate::template::Templar::syntax_error(s, false).map(|e| e.to_string())
        }
        NodeKind::Seq(items) => items.iter().find_map(first_template_error),
        NodeKind::Map(entries) => entries
            .iter()
            .find_map(|(k, v)| first_template_error(k).or_else(|| first_template_error(v))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// copy target: `include_tasks: file=x.yml` was read as a file named
    /// "file=x.yml".
    #[test]
    fn free_form_include_in_key_value_form_names_its_file() {
        assert_eq!(free_form_file("file=a.yml".into()), "a.yml");
        assert_eq!(free_form_file("file='a b.yml'".into()), "a b.yml");
        assert_eq!(free_form_file("a.yml".into()), "a.yml");
        assert_eq!(free_form_file("x=a.yml".into()), "x=a.yml");
        assert_eq!(free_form_file("{{ f }}.yml".into()), "{{ f }}.yml");
    }

    #[test]
    fn environment_names_that_are_shell_text_are_refused() {
        let text = "- hosts: all\n  environment: { OK_1: a }\n  tasks:\n    - command: env\n      environment:\n        \"A=1; touch /tmp/x; B\": v\n        \"{{ templated }}\": v\n";
        let err = load_playbook_str(text, Path::new("p.yml"))
            .expect_err("refused")
            .to_string();
        assert!(err.contains("p.yml:6:9"), "{err}");
        assert!(
            err.contains("\"A=1; touch /tmp/x; B\" is not valid"),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }

    /// Each keyword drover does not implement used to be accepted and do
    /// nothing; at every level Ansible allows it, it is now refused with
    /// its position and name.
    #[test]
    fn unsupported_keywords_are_refused_at_every_level_with_their_position() {
        for k in kw::KEYWORDS {
            let kw::Support::Unsupported(_) = k.support else {
                continue;
            };
            let name = k.name;
            let mut cases = Vec::new();
            if k.levels.contains(Level::Play) {
                cases.push((format!("- hosts: all\n  {name}: x\n  tasks: []\n"), "2:3"));
            }
            if k.levels.contains(Level::Task) {
                cases.push((
                    format!("- hosts: all\n  tasks:\n    - command: id\n      {name}: x\n"),
                    "4:7",
                ));
            }
            if k.levels.contains(Level::Block) {
                cases.push((
                    format!("- hosts: all\n  tasks:\n    - block: []\n      {name}: x\n"),
                    "4:7",
                ));
            }
            assert!(!cases.is_empty(), "{name}");
            for (text, at) in cases {
                let err = load_playbook_str(&text, Path::new("p.yml"))
                    .expect_err(name)
                    .to_string();
                let want = format!("p.yml:{at}: `{name}` is not supported by drover yet");
                assert!(err.starts_with(&want), "{name}: {err}");
            }
        }
    }

    #[test]
    fn keywords_at_a_level_ansible_refuses_are_refused() {
        for (text, want) in [
            ("- hosts: all\n  when: x\n  tasks: []\n", "p.yml:2:3: 'when' is not a valid attribute for a Play"),
            ("- hosts: all\n  tasks:\n    - block: []\n      loop: [1]\n", "p.yml:4:7: 'loop' is not a valid attribute for a Block"),
            ("- hosts: all\n  tasks:\n    - command: id\n      listen: x\n", "p.yml:4:7: 'listen' is not a valid attribute for a Task"),
            ("- hosts: all\n  tasks:\n    - command: id\n      gather_subset: all\n", "p.yml:4:7: 'gather_subset' is not a valid attribute for a Task"),
            ("- hosts: all\n  strategy: free\n", "p.yml:2:13: `strategy: free` is not supported by drover yet"),
            ("- hosts: all\n  connection: paramiko\n", "p.yml:2:15: `connection: paramiko` is not supported by drover yet"),
            ("- hosts: all\n  collections: [acme.widgets]\n", "p.yml:2:16: `collections: acme.widgets` is not supported by drover yet"),
            ("- hosts: all\n  gather_subset: [virtual]\n", "p.yml:2:18: gather_subset 'virtual' is not supported by drover yet"),
            ("- hosts: all\n  tasks:\n    - command: id\n      loop: [1]\n      loop_control: {pause: soon}\n", "p.yml:5:29: `loop_control.pause` must be a number"),
            ("- hosts: all\n  tasks:\n    - command: id\n      throttle: many\n", "p.yml:4:17: throttle must be a whole number"),
        ] {
            let err = load_playbook_str(text, Path::new("p.yml")).expect_err(text).to_string();
            assert!(err.starts_with(want), "{text}\n{err}");
        }
    }

    #[test]
    fn implemented_keywords_load_and_reach_the_tasks_under_them() {
        let text = "- hosts: all\n  remote_user: admin\n  connection: ssh\n  strategy: linear\n  gather_subset: ['!all', network]\n  gather_timeout: 5\n  order: sorted\n  collections: [ansible.builtin]\n  timeout: 30\n  handlers:\n    - name: h\n      debug: msg=h\n      listen: x\n  tasks:\n    - block:\n        - command: id\n          timeout: 7\n        - command: id\n      throttle: 2\n      ignore_unreachable: true\n      delegate_to: other\n      delegate_facts: true\n      port: \"{{ p }}\"\n      notify: h\n";
        let pb = load_playbook_str(text, Path::new("p.yml")).expect("loads");
        let play = &pb.plays[0];
        assert_eq!(play.order, HostOrder::Sorted);
        assert_eq!(play.gather_timeout, Some(5));
        let g = play.gather_subset;
        assert!(g.contains(FactGroups::MIN) && g.contains(FactGroups::NETWORK));
        assert!(!g.contains(FactGroups::HARDWARE));
        let Action::Block { block, .. } = &play.tasks[0].action else {
            panic!("a block")
        };
        for (t, timeout) in block.iter().zip([7, 30]) {
            let k = &t.keywords;
            assert_eq!(k.remote_user.as_deref(), Some("admin"));
            assert_eq!(k.connection.as_deref(), Some("ssh"));
            assert_eq!(k.timeout, Some(Value::from(timeout)));
            assert_eq!(k.throttle, Some(Value::from(2)));
            assert_eq!(k.ignore_unreachable, Some(true));
            assert_eq!(k.delegate_facts, Some(true));
            assert_eq!(k.port, Some(Value::from("{{ p }}")));
            assert_eq!(t.notify, ["h"]);
        }
    }

    /// The table's `inherit` flag is what the loader does: each keyword it
    /// marks inherited, set on a block, reaches the task inside.
    #[test]
    fn keywords_the_table_marks_inherited_reach_tasks_in_a_block() {
        let sample = |name: &str| -> Option<&str> {
            Some(match name {
                "environment" => "{A: b}",
                "no_log" | "run_once" | "ignore_errors" | "ignore_unreachable" | "check_mode"
                | "diff" | "any_errors_fatal" | "become" | "delegate_facts" => "true",
                "throttle" | "timeout" | "port" => "3",
                "remote_user" | "become_user" | "delegate_to" | "tags" | "when" | "notify" => "x",
                "connection" => "local",
                "become_method" => "su",
                // drover resolves its modules whatever the list says.
                "collections" => return None,
                // Merged into the task's arguments, not kept as a keyword:
                // see module_defaults_go_under_task_arguments.
                "module_defaults" => return None,
                other => panic!("no sample value for inherited keyword '{other}'"),
            })
        };
        let child = |kw_line: &str| {
            let text =
                format!("- hosts: all\n  tasks:\n    - block:\n        - command: id\n{kw_line}  handlers:\n    - name: x\n      debug: msg=x\n");
            let pb = load_playbook_str(&text, Path::new("p.yml")).expect("loads");
            let Action::Block { block, .. } = &pb.plays[0].tasks[0].action else {
                panic!("a block")
            };
            let t = &block[0];
            format!("{:?} {:?} {:?} {:?}", t.keywords, t.when, t.tags, t.notify)
        };
        let plain = child("");
        for k in kw::KEYWORDS.iter().filter(|k| k.inherit) {
            let carried = matches!(
                k.support,
                kw::Support::Implemented | kw::Support::Only { run: true, .. }
            );
            if !carried || !k.levels.contains(Level::Block) {
                continue;
            }
            let Some(value) = sample(k.name) else {
                continue;
            };
            let with = child(&format!("      {}: {value}\n", k.name));
            assert_ne!(
                with, plain,
                "{} set on a block did not reach its task",
                k.name
            );
        }
    }

    #[test]
    fn inline_key_value_args_keep_templates_whole() {
        let pb = load_playbook_str(
            "- hosts: all\n  tasks:\n    - file: path={{ base }}/{{ 'a b' }} mode='0644' state=touch\n",
            Path::new("p.yml"),
        )
        .expect("loads");
        let Action::Module { args, .. } = &pb.plays[0].tasks[0].action else {
            panic!("module task expected")
        };
        assert_eq!(args["path"], "{{ base }}/{{ 'a b' }}");
        assert_eq!(args["mode"], "0644");
        assert_eq!(args["state"], "touch");
        for (text, msg) in [
            ("path='/x state=touch", "unbalanced quotes"),
            ("path=/x touch", "takes key=value arguments"),
        ] {
            let err = load_playbook_str(
                &format!("- hosts: all\n  tasks:\n    - file: {text}\n"),
                Path::new("p.yml"),
            )
            .expect_err(text);
            assert!(err.to_string().starts_with("p.yml:3:13: "), "{err}");
            assert!(err.to_string().contains(msg), "{err}");
        }
    }

    #[test]
    fn free_form_text_reaches_the_module_verbatim() {
        let pb = load_playbook_str(
            "- hosts: all\n  tasks:\n    - command: creates=/x touch \"/x  y\"\n",
            Path::new("p.yml"),
        )
        .expect("loads");
        let Action::Module { args, .. } = &pb.plays[0].tasks[0].action else {
            panic!("module task expected")
        };
        assert_eq!(args["_raw_params"], "creates=/x touch \"/x  y\"");
    }

    /// `a }} b` made minijinja 2's lexer panic (exit 101); each condition
    /// keyword must refuse it as an input error at the value itself.
    #[test]
    fn conditions_that_panicked_the_lexer_are_input_errors_at_the_value() {
        for key in ["when", "changed_when", "failed_when", "until"] {
            let text = format!(
                "- hosts: all\n  tasks:\n    - name: t\n      command: id\n      {key}: \"a }}}} b\"\n"
            );
            let err = load_playbook_str(&text, Path::new("p.yml")).expect_err(key);
            let msg = err.to_string();
            let col = 9 + key.len();
            assert!(msg.starts_with(&format!("p.yml:5:{col}: {key}:")), "{msg}");
            // In a list, the item's own position.
            let text = format!(
                "- hosts: all\n  tasks:\n    - command: id\n      {key}:\n        - x\n        - \"{{{{ a }}}} }}}}\"\n"
            );
            let err = load_playbook_str(&text, Path::new("p.yml")).expect_err(key);
            assert!(err.to_string().starts_with("p.yml:6:11:"), "{err}");
        }
    }

    /// `set_fact: "{{ k }}={{ v }}"` was kept as one text and templated
    /// whole, so a list value became `['b', 'c']` and split at its space
    /// ("set_fact takes key=value pairs, not \"'c']\""). Ansible splits the
    /// pairs first and templates each key and value.
    #[test]
    fn set_fact_key_value_text_is_split_before_templating() {
        let pb = load_playbook_str(
            "- hosts: all\n  tasks:\n    - set_fact: \"{{ k }}={{ v }} c='x y'\"\n    - set_fact: \"{{ k }}={{ v }}\"\n",
            Path::new("p.yml"),
        )
        .expect("loads");
        let Action::Module { args, .. } = &pb.plays[0].tasks[0].action else {
            panic!("module task expected")
        };
        assert_eq!(args["{{ k }}"], "{{ v }}");
        assert_eq!(args["c"], "x y");
        // Starting with `{{` and ending with `}}` is not yet one template.
        let Action::Module { args, .. } = &pb.plays[0].tasks[1].action else {
            panic!("module task expected")
        };
        assert_eq!(args["{{ k }}"], "{{ v }}");
    }

    fn task_error(task: &str) -> Option<String> {
        let text = format!("- hosts: all\n  tasks:\n    - {task}\n");
        load_playbook_str(&text, Path::new("p.yml"))
            .err()
            .map(|e| e.to_string())
    }

    /// Wrong types, values outside the choices and missing arguments used to
    /// reach the hosts and fail there in serde's words.
    #[test]
    fn argument_values_are_checked_at_load_with_the_argument_named() {
        let cases = [
            (
                "lineinfile: {path: /x, line: a, create: [1, 2]}",
                "p.yml:3:39: module 'lineinfile', argument 'create':",
            ),
            (
                "file: path=/x state=bogus",
                "p.yml:3:13: module 'file', argument 'state': unknown value `bogus`",
            ),
            (
                "copy: {dest: /x}",
                "p.yml:3:13: module 'copy': src (or content) is required",
            ),
            (
                "copy: {src: a}",
                "p.yml:3:13: module 'copy': dest is required",
            ),
            (
                "file: {path: /x, mode: [1]}",
                "p.yml:3:24: module 'file', argument 'mode':",
            ),
            // The attribute block is one for every file module, checked
            // at load (lineinfile's mode used to be read on the host).
            (
                "lineinfile: {path: /x, line: a, mode: 'q+z'}",
                "p.yml:3:39: module 'lineinfile', argument 'mode': bad symbolic permission for mode: q+z",
            ),
            (
                "copy: {dest: /x, content: a, mode: 10000}",
                "p.yml:3:36: module 'copy', argument 'mode': invalid mode 10000",
            ),
            (
                "file: {path: /x, mode: preserve}",
                "p.yml:3:24: module 'file', argument 'mode': mode 'preserve' is only for copy",
            ),
            (
                "get_url: {url: 'http://h/f', dest: /x, owner: [1]}",
                "p.yml:3:46: module 'get_url', argument 'owner': [1] is not a string",
            ),
        ];
        for (task, want) in cases {
            let err = task_error(task).unwrap_or_else(|| panic!("{task} loads"));
            assert!(err.starts_with(want), "{task}: {err}");
        }
        for task in [
            "copy: {dest: /x, src: a, mode: preserve, owner: 0, group: root}",
            "template: {dest: /x, src: a, mode: preserve}",
            "replace: {path: /x, regexp: a, mode: 'u=rw,g=r', owner: 1000}",
        ] {
            assert_eq!(task_error(task), None, "{task}");
        }
    }

    #[test]
    fn invalid_templates_in_arguments_are_refused_at_the_string() {
        let err = task_error("copy:\n        dest: /x\n        content: \"{{ a }} }} {% b\"")
            .expect("refused");
        assert!(
            err.starts_with("p.yml:5:18: module 'copy': invalid template"),
            "{err}"
        );
        let err = task_error("command: echo {{ a").expect("refused");
        assert!(err.starts_with("p.yml:3:16: module 'command'"), "{err}");
        // The templating target: a task that expects to fail fails when
        // it runs, as in Ansible.
        assert_eq!(
            task_error("raw: echo {{ {{ 1 }} }}\n      ignore_errors: true"),
            None
        );
    }

    #[test]
    fn templated_arguments_are_left_to_the_run() {
        for task in [
            "file: path=/x state=touch",
            "file: {path: /x, state: \"{{ s }}\"}",
            // Missing `src` may come from the templated args: not judged.
            "copy: {dest: /x, mode: \"{{ m }}\"}",
            "command: ls -l",
            "shell: \"{{ cmd }}\"",
            "set_fact: {a: 1}",
        ] {
            assert_eq!(task_error(task), None, "{task}");
        }
        // The untemplated arguments beside a templated one are still checked.
        let err = task_error("copy: {dest: \"{{ d }}\", content: x, force: [1]}").expect("refused");
        assert!(err.contains("argument 'force'"), "{err}");
    }

    #[test]
    fn import_playbook_splices_plays_and_refuses_cycles() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).expect("mkdir");
        std::fs::write(
            sub.join("inner.yml"),
            "- name: inner\n  hosts: all\n  tasks:\n    - debug: msg=x\n",
        )
        .expect("write");
        let outer = dir.path().join("outer.yml");
        std::fs::write(
            &outer,
            "- name: first\n  hosts: all\n  tasks: []\n- import_playbook: sub/inner.yml\n",
        )
        .expect("write");
        let pb = load_playbook(&outer).expect("loads");
        let names: Vec<_> = pb.plays.iter().map(|p| p.name.clone()).collect();
        assert_eq!(names, vec!["first".to_string(), "inner".to_string()]);

        std::fs::write(sub.join("loop.yml"), "- import_playbook: loop.yml\n").expect("write");
        let err = load_playbook(&sub.join("loop.yml")).expect_err("a cycle");
        assert!(err.to_string().contains("cycle"), "{err}");
        assert!(err.to_string().contains("loop.yml:1:"), "{err}");
    }

    fn module_of(task: &Task) -> &'static modules::ModuleInfo {
        match &task.action {
            Action::Module { module, .. } => module,
            other => panic!("not a module: {other:?}"),
        }
    }

    #[test]
    fn ansible_modules_drover_lacks_load_as_unimplemented_actions() {
        let text = "- hosts: all\n  collections: [community.general]\n  tasks:\n    - dnf: {name: httpd, state: present}\n      when: ansible_os_family == 'RedHat'\n    - pacman: name=x\n    - community.general.zypper: {whatever: \"{{ undefined_here }}\"}\n    - snap_alias: {name: x}\n    - ansible.builtin.dnf5: {name: x}\n";
        let pb = load_playbook_str(text, Path::new("p.yml")).expect("loads");
        let names: Vec<&str> = pb.plays[0]
            .tasks
            .iter()
            .map(|t| module_of(t).name)
            .collect();
        assert_eq!(
            names,
            [
                "ansible.builtin.dnf",
                "community.general.pacman",
                "community.general.zypper",
                "community.general.snap_alias",
                "ansible.builtin.dnf5",
            ]
        );
        for t in &pb.plays[0].tasks {
            assert!(modules::known::is_unimplemented(module_of(t)));
        }
        // Drover's own modules are still drover's.
        let pb = load_playbook_str(
            "- hosts: all\n  tasks:\n    - ansible.posix.mount: {path: /m, state: unmounted}\n",
            Path::new("p.yml"),
        )
        .expect("loads");
        assert!(!modules::known::is_unimplemented(module_of(
            &pb.plays[0].tasks[0]
        )));
    }

    #[test]
    fn a_module_name_in_no_list_is_a_load_error_with_a_suggestion() {
        for (task, want) in [
            ("lineinfle: {path: /x, line: y}", "p.yml:3:7: unknown module 'lineinfle' (or a misspelled task keyword); did you mean 'lineinfile'?"),
            ("community.general.pacmann: {name: x}", "did you mean 'community.general.pacman'?"),
            ("zyppr: {name: x}", "did you mean 'zypper'?"),
            ("xyzzy_frobnicate_everything: {}", "unknown module 'xyzzy_frobnicate_everything' (or a misspelled task keyword)\n"),
        ] {
            let text = format!("- hosts: all\n  tasks:\n    - {task}\n");
            let err = load_playbook_str(&text, Path::new("p.yml"))
                .expect_err(task)
                .to_string()
                + "\n";
            assert!(err.contains(want), "{task}: {err}");
        }
    }

    fn args_of(task: &Task) -> &Value {
        match &task.action {
            Action::Module { args, .. } => args,
            other => panic!("not a module: {other:?}"),
        }
    }

    /// file target (ansible-core): `file: {state: hard}` with ignore_errors,
    /// then an assertion on Ansible's message; copy target: `_diff_peek`
    /// refused when the task runs. Both were load errors.
    #[test]
    fn refused_arguments_of_a_task_that_expects_failure_fail_when_it_runs() {
        let text = "- hosts: all\n  tasks:\n    - file: {state: hard}\n      ignore_errors: yes\n    - copy: {content: x, dest: /x, _diff_peek: true}\n      failed_when: false\n    - action: slurp\n      ignore_errors: true\n";
        let pb = load_playbook_str(text, Path::new("p.yml")).expect("loads");
        let tasks = &pb.plays[0].tasks;
        assert_eq!(
            args_of(&tasks[0]),
            &modules::refused("missing required arguments: path".into())
        );
        let copy = args_of(&tasks[1])["_refused"].as_str().expect("refused");
        assert!(
            copy.starts_with("Unsupported parameters for (copy) module: _diff_peek. Supported parameters include: backup,"),
            "{copy}"
        );
        assert_eq!(
            args_of(&tasks[2]),
            &modules::refused("missing required arguments: src".into())
        );
        // add_host target: text that is not key=value fails when it runs.
        let text =
            "- hosts: all\n  tasks:\n    - add_host: namex groupsy\n      ignore_errors: true\n";
        let pb = load_playbook_str(text, Path::new("p.yml")).expect("loads");
        let msg = args_of(&pb.plays[0].tasks[0])["_refused"]
            .as_str()
            .expect("refused")
            .to_string();
        assert!(msg.starts_with("Invalid raw parameters passed"), "{msg}");
        // Without the expectation they stay load errors.
        let text = "- hosts: all\n  tasks:\n    - add_host: namex groupsy\n";
        assert!(load_playbook_str(text, Path::new("p.yml")).is_err());
        let text = "- hosts: all\n  tasks:\n    - file: {state: hard}\n";
        let err = load_playbook_str(text, Path::new("p.yml"))
            .expect_err("refused")
            .to_string();
        assert!(err.contains("argument 'path' is required"), "{err}");
    }

    /// assert target: `assert: '{{ item }}'` (the arguments as a template)
    /// was refused as not key=value; `- name:` with no value was "expected a
    /// string" (systemd target); `gather_facts:` in a task was "no module".
    #[test]
    fn argument_splats_empty_names_and_gather_facts_tasks_load() {
        let text = "- hosts: all\n  tasks:\n    - name:\n      assert: '{{ item }}'\n      args: {quiet: yes}\n      loop: [{that: 1 == 1}]\n    - gather_facts:\n        gather_subset: distribution\n";
        let pb = load_playbook_str(text, Path::new("p.yml")).expect("loads");
        let tasks = &pb.plays[0].tasks;
        assert_eq!(tasks[0].name, None);
        assert_eq!(
            args_of(&tasks[0])[modules::SPLAT],
            Value::from("{{ item }}")
        );
        assert_eq!(args_of(&tasks[0])["quiet"], Value::Bool(true));
        assert_eq!(module_of(&tasks[1]).name, "setup");
    }

    /// community.grafana.grafana role: `module_defaults` was refused at
    /// load. Defaults go under the task's own arguments, matched with or
    /// without `ansible.builtin.`, children winning key by key.
    #[test]
    fn module_defaults_go_under_task_arguments() {
        let text = "- hosts: all\n  module_defaults:\n    ansible.builtin.file: {mode: '0600', owner: root}\n    group/community.grafana.grafana: {url: x}\n  tasks:\n    - block:\n        - file: {path: /a, state: touch}\n        - ansible.builtin.file: {path: /b, mode: '0644'}\n        - copy: {dest: /c, content: x}\n      module_defaults:\n        - file: {owner: web}\n";
        let pb = load_playbook_str(text, Path::new("p.yml")).expect("loads");
        let Action::Block { block: tasks, .. } = &pb.plays[0].tasks[0].action else {
            panic!("not a block");
        };
        let a = args_of(&tasks[0]);
        assert_eq!(a["mode"], Value::from("0600"));
        assert_eq!(a["owner"], Value::from("web"));
        assert_eq!(a["path"], Value::from("/a"));
        assert_eq!(args_of(&tasks[1])["mode"], Value::from("0644"));
        assert_eq!(args_of(&tasks[1])["owner"], Value::from("web"));
        assert!(args_of(&tasks[2]).get("owner").is_none());
        let err = load_playbook_str(
            "- hosts: all\n  module_defaults: [1]\n  tasks: []\n",
            Path::new("p.yml"),
        )
        .expect_err("refused")
        .to_string();
        assert!(
            err.contains("p.yml:2:21: `module_defaults` items must be mappings"),
            "{err}"
        );
    }

    /// service target: `service` with no arguments of its own took only
    /// `service`'s defaults; Ansible's service action runs systemd with
    /// `systemd`'s defaults under what the task and `service`'s gave.
    #[test]
    fn service_takes_systemd_defaults_under_its_own() {
        let text = "- hosts: all\n  tasks:\n    - service:\n      module_defaults:\n        systemd: {name: a, enabled: true, masked: false}\n        sysvinit: {name: b}\n    - service: {state: started}\n      module_defaults:\n        service: {name: c}\n        systemd: {name: a, enabled: true}\n";
        let pb = load_playbook_str(text, Path::new("p.yml")).expect("loads");
        let tasks = &pb.plays[0].tasks;
        let a = args_of(&tasks[0]);
        assert_eq!(a["name"], Value::from("a"));
        assert_eq!(a["enabled"], Value::Bool(true));
        assert_eq!(a["masked"], Value::Bool(false));
        let a = args_of(&tasks[1]);
        assert_eq!(a["name"], Value::from("c"));
        assert_eq!(a["enabled"], Value::Bool(true));
        assert_eq!(a["state"], Value::from("started"));
    }

    /// group and user targets: a templated module name and arguments of
    /// Ansible's modules that drover lacks were load errors.
    #[test]
    fn templated_module_names_and_pending_arguments_load() {
        let text = "- hosts: all\n  tasks:\n    - action: \"{{ ansible_facts.pkg_mgr }}\"\n      args: {name: libuser, state: present}\n    - user: {name: x, expires: 1, ssh_key_file: k}\n    - group: {name: g, local: yes}\n    - package: {name: p, state: present, disable_gpg_check: true}\n";
        let pb = load_playbook_str(text, Path::new("p.yml")).expect("loads");
        let tasks = &pb.plays[0].tasks;
        assert!(std::ptr::eq(module_of(&tasks[0]), &modules::DYNAMIC));
        assert_eq!(
            args_of(&tasks[0])[modules::DYNAMIC_NAME],
            Value::from("{{ ansible_facts.pkg_mgr }}")
        );
        assert_eq!(args_of(&tasks[0])["name"], Value::from("libuser"));
        assert_eq!(module_of(&tasks[1]).name, "user");
        // A name that is no argument of Ansible's module still is refused.
        let text = "- hosts: all\n  tasks:\n    - user: {name: x, expirez: 1}\n";
        let err = load_playbook_str(text, Path::new("p.yml"))
            .expect_err("unknown")
            .to_string();
        assert!(err.contains("unknown argument 'expirez'"), "{err}");
    }

    /// shell target: `test_shell`, a module of the target's own
    /// action_plugins/, was an unknown module.
    #[test]
    fn a_module_of_the_roles_own_plugins_loads_and_fails_where_it_runs() {
        let dir = tempfile::tempdir().expect("tmp");
        let role = dir.path().join("roles/r");
        std::fs::create_dir_all(role.join("tasks")).expect("mkdir");
        std::fs::create_dir_all(role.join("action_plugins")).expect("mkdir");
        std::fs::write(role.join("action_plugins/test_shell.py"), "").expect("write");
        let main = role.join("tasks/main.yml");
        std::fs::write(&main, "- test_shell:\n  register: r\n").expect("write");
        let pb = dir.path().join("p.yml");
        std::fs::write(&pb, "- hosts: all\n  roles: [r]\n").expect("write");
        let loaded = load_playbook(&pb).expect("loads");
        let task = loaded.plays[0]
            .tasks
            .iter()
            .find(|t| matches!(t.action, Action::Module { .. }))
            .expect("task");
        assert_eq!(module_of(task).name, "test_shell");
        std::fs::write(&main, "- test_other:\n").expect("write");
        let err = load_playbook(&pb).expect_err("unknown").to_string();
        assert!(err.contains("unknown module 'test_other'"), "{err}");
    }

    /// service_facts target: a role handler's `include_tasks` named a file
    /// of the role's tasks/, and drover looked for it beside the handlers.
    #[test]
    fn a_role_handler_includes_a_file_of_the_roles_tasks() {
        let dir = tree(&[
            (
                "roles/r/tasks/main.yml",
                "- debug: msg=x\n  notify: clean\n",
            ),
            ("roles/r/tasks/cleanup.yml", "- debug: msg=cleaned\n"),
            (
                "roles/r/handlers/main.yml",
                "- name: clean\n  include_tasks: cleanup.yml\n",
            ),
            ("p.yml", "- hosts: all\n  roles: [r]\n"),
        ]);
        let pb = load_playbook(&dir.path().join("p.yml")).expect("loads");
        let Action::Block { block, .. } = &pb.plays[0].handlers[0].action else {
            panic!("a static include is a block");
        };
        assert_eq!(block.len(), 1);
    }

    #[test]
    fn implemented_modules_keep_their_argument_checks_at_load() {
        let text = "- hosts: all\n  tasks:\n    - copy: {dest: /x, content: y, nope: 1}\n";
        let err = load_playbook_str(text, Path::new("p.yml"))
            .expect_err("unknown argument")
            .to_string();
        assert!(err.contains("nope"), "{err}");
    }

    #[test]
    fn the_static_check_accepts_unimplemented_modules() {
        let text = "- hosts: all\n  tasks:\n    - community.general.pacman: {name: \"{{ pkgs_nobody_defines }}\"}\n      register: r\n    - debug: var=r\n";
        let pb = load_playbook_str(text, Path::new("p.yml")).expect("loads");
        crate::playbook::check::check(&pb, &crate::inventory::Inventory::default(), &Map::new())
            .expect("passes the static check");
    }

    /// Write `files` (path, text) under a fresh directory.
    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for (path, text) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, text).expect("write");
        }
        dir
    }

    /// The names of a play's tasks, blocks flattened.
    fn task_names(tasks: &[Task]) -> Vec<String> {
        let mut out = Vec::new();
        for t in tasks {
            match &t.action {
                Action::Block { block, .. } => out.extend(task_names(block)),
                _ => out.extend(t.name.clone()),
            }
        }
        out
    }

    #[test]
    fn import_tasks_names_are_templated_at_load_with_role_play_and_extra_vars() {
        let dir = tree(&[
            (
                "site.yml",
                "- hosts: all\n  vars:\n    which: b\n  roles: [r]\n  tasks:\n    - import_tasks: \"{{ which }}.yml\"\n    - import_tasks: \"{{ from_e }}.yml\"\n",
            ),
            ("a.yml", "- name: a\n  debug: msg=a\n"),
            ("b.yml", "- name: b\n  debug: msg=b\n"),
            ("roles/r/tasks/main.yml", "- import_tasks: \"{{ role_path }}/tests/t.yml\"\n"),
            ("roles/r/tests/t.yml", "- name: t\n  debug: msg=t\n"),
        ]);
        let mut extra = Map::new();
        extra.insert("from_e".into(), Value::from("a"));
        let pb = load_playbook_with(&dir.path().join("site.yml"), &extra).expect("loads");
        assert_eq!(task_names(&pb.plays[0].tasks), ["t", "b", "a"]);
        // A value only a run sets is an error at the import, not a guess.
        std::fs::write(
            dir.path().join("late.yml"),
            "- hosts: all\n  tasks:\n    - import_tasks: \"{{ set_later }}.yml\"\n",
        )
        .expect("write");
        let err = load_playbook(&dir.path().join("late.yml")).expect_err("undefined");
        assert!(
            err.to_string()
                .contains("late.yml:3:21: import_tasks: cannot template"),
            "{err}"
        );
    }

    #[test]
    fn import_role_of_the_same_role_with_tasks_from_is_not_a_cycle() {
        // special_vars: a role's task file imports another file of the
        // same role; drover loaded main.yml again and called it a cycle.
        let dir = tree(&[
            (
                "site.yml",
                "- hosts: all\n  tasks:\n    - import_role:\n        role: r\n        tasks_from: other.yml\n        vars_from: more\n",
            ),
            ("roles/r/tasks/main.yml", "- name: main\n  debug: msg=m\n"),
            (
                "roles/r/tasks/other.yml",
                "- name: other\n  debug: msg=o\n- import_role:\n    name: r\n    tasks_from: self\n",
            ),
            ("roles/r/tasks/self.yml", "- name: self\n  debug: msg=s\n"),
            ("roles/r/vars/main.yml", "v: main\n"),
            ("roles/r/vars/more.yml", "v: more\n"),
        ]);
        let pb = load_playbook(&dir.path().join("site.yml")).expect("loads");
        let tasks = &pb.plays[0].tasks;
        assert_eq!(task_names(tasks), ["other", "self"]);
        let Action::Block { block, .. } = &tasks[0].action else {
            panic!("a block");
        };
        let role = block[0].role.as_ref().expect("role");
        assert_eq!(role.vars["v"], "more");
        // Imported from a play's tasks: no parent role; the role's import
        // of itself has the role as its parent.
        assert!(!block[0].vars.contains_key("ansible_parent_role_names"));
        let Action::Block { block: inner, .. } = &block[1].action else {
            panic!("a block");
        };
        assert_eq!(
            inner[0].vars["ansible_parent_role_names"],
            serde_json::json!(["r"])
        );
        std::fs::write(
            dir.path().join("missing.yml"),
            "- hosts: all\n  tasks:\n    - import_role:\n        name: r\n        tasks_from: nope\n",
        )
        .expect("write");
        let err = load_playbook(&dir.path().join("missing.yml")).expect_err("missing");
        assert!(
            err.to_string().contains("role 'r': no file 'nope'"),
            "{err}"
        );
    }

    #[test]
    fn a_play_knows_the_roles_it_uses_and_those_it_depends_on() {
        let dir = tree(&[
            (
                "site.yml",
                "- hosts: all\n  roles: [a]\n  tasks:\n    - import_role:\n        name: b\n",
            ),
            ("roles/a/meta/main.yml", "dependencies: [c]\n"),
            ("roles/a/tasks/main.yml", "- debug: msg=a\n"),
            ("roles/b/tasks/main.yml", "- debug: msg=b\n"),
            ("roles/c/tasks/main.yml", "- debug: msg=c\n"),
        ]);
        let pb = load_playbook(&dir.path().join("site.yml")).expect("loads");
        assert_eq!(pb.plays[0].role_names, ["a", "b"]);
        assert_eq!(pb.plays[0].dependent_role_names, ["c"]);
    }

    #[test]
    fn include_role_by_a_templated_path_loads_the_role_named_by_its_directory() {
        let dir = tree(&[
            ("site.yml", "- hosts: all\n  roles: [outer]\n"),
            (
                "roles/outer/tasks/main.yml",
                "- include_role:\n    role: \"{{ role_path }}/roles/a\"\n",
            ),
            (
                "roles/outer/roles/a/tasks/main.yml",
                "- name: in a\n  debug: msg=a\n",
            ),
        ]);
        let pb = load_playbook(&dir.path().join("site.yml")).expect("loads");
        let Action::Block { block, .. } = &pb.plays[0].tasks[0].action else {
            panic!("a block");
        };
        assert_eq!(block[0].role.as_ref().expect("role").name, "a");
    }
}
