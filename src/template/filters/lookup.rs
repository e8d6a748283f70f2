//! `lookup()` and `query()`/`q()`: Ansible's lookup plugins that read the
//! control machine (templates render there): `file`, `env`, `template`,
//! `first_found`, `fileglob`, `pipe`, `lines`, `password`, `sequence`, `together`, `nested`,
//! `indexed_items`, `items`, `list`, `dict` and `vars`. Relative file names are looked up
//! along the task's `ansible_search_path` (the role's directories, the
//! including file's, the playbook's), as Ansible does.

use std::path::{Path, PathBuf};

use minijinja::value::{Kwargs, Rest, Value, ValueKind};
use minijinja::{Error, ErrorKind, State};

use super::home_expand;

fn err(msg: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg)
}

/// The task's search path (empty outside a task).
fn search_path(state: &State) -> Vec<PathBuf> {
    let Some(v) = state.lookup("ansible_search_path") else {
        return Vec::new();
    };
    match v.try_iter() {
        Ok(it) => it.map(|d| PathBuf::from(d.to_string())).collect(),
        Err(_) => Vec::new(),
    }
}

/// Where a file a lookup names is: absolute as written, else the first
/// directory of the search path holding it (also under its `vars/` and
/// `tasks/`, where `first_found` finds role files), else relative to the
/// working directory.
fn find_file(search: &[PathBuf], name: &str) -> Option<PathBuf> {
    let name = home_expand(name);
    let p = Path::new(&name);
    if p.is_absolute() {
        return p.exists().then(|| p.to_path_buf());
    }
    search
        .iter()
        .flat_map(|d| [d.join(p), d.join("vars").join(p), d.join("tasks").join(p)])
        .chain([p.to_path_buf()])
        .find(|c| c.is_file())
}

/// Where a file a `with_first_found` loop names is: as Ansible looks along
/// the task's search path, in each directory under the action's `subdir`
/// (`vars` for include_vars, `templates`, `files`) first, then in the
/// directory itself; a role's `tasks/` directory has the subdirectory beside
/// it. (The search path's own `files/` and `templates/` entries stand for
/// those subdirectories and are skipped here.)
fn find_file_under(search: &[PathBuf], subdir: &str, name: &str) -> Option<PathBuf> {
    let name = home_expand(name);
    let p = Path::new(&name);
    if p.is_absolute() {
        return p.exists().then(|| p.to_path_buf());
    }
    let is = |d: &Path, n: &str| d.file_name().is_some_and(|f| f == n);
    search
        .iter()
        .filter(|d| !is(d, "files") && !is(d, "templates"))
        .flat_map(|d| {
            let top = if is(d, "tasks") {
                d.parent().unwrap_or(d)
            } else {
                d
            };
            [top.join(subdir).join(p), d.join(p)]
        })
        .chain([p.to_path_buf()])
        .find(|c| c.is_file())
}

/// Where `first_found` splits a string of file names, and of paths (a
/// `PATH`-like `a:b` too), as Ansible does.
const FILE_SEPS: &[char] = &[',', ';'];
const PATH_SEPS: &[char] = &[',', ':', ';'];

/// Split `a.yml,b.yml;c.yml` as `first_found` does for its `files`/`paths`.
fn split_names(v: &Value, seps: &[char], out: &mut Vec<String>) {
    if v.kind() == ValueKind::Seq {
        for x in v.try_iter().into_iter().flatten() {
            split_names(&x, seps, out);
        }
        return;
    }
    if v.is_undefined() || v.is_none() {
        return;
    }
    out.extend(
        v.to_string()
            .split(seps)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string),
    );
}

/// `first_found`: the first existing file among the terms (strings, lists,
/// or mappings of `files`/`paths`/`skip`). `None` when nothing exists and
/// `skip` is set.
fn first_found(state: &State, terms: &[Value], kwargs: &Kwargs) -> Result<Option<String>, Error> {
    let mut skip: bool = kwargs.get::<Option<bool>>("skip")?.unwrap_or(false);
    let kw_files: Option<Value> = kwargs.get("files")?;
    let kw_paths: Option<Value> = kwargs.get("paths")?;
    let mut candidates: Vec<String> = Vec::new();
    let mut add = |files: &[String], paths: &[String]| {
        if paths.is_empty() {
            candidates.extend(files.iter().cloned());
        } else {
            for path in paths {
                for f in files {
                    candidates.push(Path::new(path).join(f).display().to_string());
                }
            }
        }
    };
    let mut flat = Vec::new();
    for t in terms {
        match t.kind() {
            ValueKind::Seq => flat.extend(t.try_iter().into_iter().flatten()),
            _ => flat.push(t.clone()),
        }
    }
    let (mut files, mut paths) = (Vec::new(), Vec::new());
    if let Some(f) = &kw_files {
        split_names(f, FILE_SEPS, &mut files);
    }
    if let Some(p) = &kw_paths {
        split_names(p, PATH_SEPS, &mut paths);
    }
    for t in &flat {
        if t.kind() == ValueKind::Map {
            let attr = |k: &str| t.get_attr(k).unwrap_or_default();
            let (mut f, mut p) = (Vec::new(), Vec::new());
            split_names(&attr("files"), FILE_SEPS, &mut f);
            split_names(&attr("paths"), PATH_SEPS, &mut p);
            let s = attr("skip");
            if !s.is_undefined() && !s.is_none() {
                skip = s.is_true();
            }
            add(&f, &p);
            continue;
        }
        if t.kind() != ValueKind::String {
            // As Ansible: a number or boolean is no file name.
            let kind = match t.kind() {
                ValueKind::Bool => "bool",
                ValueKind::Number if t.as_i64().is_some() => "int",
                ValueKind::Number => "float",
                ValueKind::None => "NoneType",
                _ => "object",
            };
            return Err(err(format!(
                "Invalid term supplied. A string, dict or list is required, not '{kind}')."
            )));
        }
        add(&[t.to_string()], &paths);
    }
    if flat.is_empty() {
        add(&files, &paths);
    }
    let search = search_path(state);
    let subdir = state.lookup(crate::template::LOOKUP_SUBDIR);
    let subdir = subdir.as_ref().and_then(|v| v.as_str());
    for c in &candidates {
        let found = match subdir {
            Some(sub) => find_file_under(&search, sub, c),
            None => find_file(&search, c),
        };
        if let Some(found) = found {
            let abs = std::path::absolute(&found).unwrap_or(found);
            return Ok(Some(abs.display().to_string()));
        }
    }
    if skip {
        return Ok(None);
    }
    Err(err(format!(
        "No file was found when using first_found (looked for {})",
        candidates.join(", ")
    )))
}

/// Python's `fnmatch` for one path component: `*`, `?` and `[...]`.
fn fnmatch(pattern: &str, name: &str) -> bool {
    let mut re = String::from("^");
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            '[' => {
                let mut class = String::new();
                let mut closed = false;
                for n in chars.by_ref() {
                    if n == ']' && !class.is_empty() {
                        closed = true;
                        break;
                    }
                    class.push(n);
                }
                if closed {
                    let class = match class.strip_prefix('!') {
                        Some(rest) => format!("^{rest}"),
                        None => class,
                    };
                    re.push('[');
                    re.push_str(&class.replace('\\', "\\\\"));
                    re.push(']');
                } else {
                    re.push_str(&regex::escape(&format!("[{class}")));
                }
            }
            other => re.push_str(&regex::escape(&other.to_string())),
        }
    }
    re.push('$');
    // Hidden files match only a pattern that starts with a dot, as glob.
    if name.starts_with('.') && !pattern.starts_with('.') {
        return false;
    }
    regex::Regex::new(&re).is_ok_and(|r| r.is_match(name))
}

/// `fileglob`: the files (not directories) matching each term's last
/// component, in the term's directory found along the search path.
fn fileglob(state: &State, term: &str) -> Vec<Value> {
    let term = home_expand(term);
    let p = Path::new(&term);
    let (dir, pattern) = match (p.parent(), p.file_name()) {
        (Some(d), Some(f)) => (d.to_path_buf(), f.to_string_lossy().into_owned()),
        _ => return Vec::new(),
    };
    let dirs: Vec<PathBuf> = if dir.is_absolute() {
        vec![dir]
    } else {
        let search = search_path(state);
        let found = search
            .iter()
            .map(|d| d.join(&dir))
            .find(|d| d.is_dir() && has_match(d, &pattern));
        found.into_iter().collect()
    };
    let mut out = Vec::new();
    for d in dirs {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut names: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| fnmatch(&pattern, &n.to_string_lossy()))
            })
            .collect();
        names.sort();
        out.extend(names.into_iter().map(|p| {
            let abs = std::path::absolute(&p).unwrap_or(p);
            Value::from(abs.display().to_string())
        }));
    }
    out
}

fn has_match(dir: &Path, pattern: &str) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.path().is_file() && fnmatch(pattern, &e.file_name().to_string_lossy()))
    })
}

/// `template`: the file rendered with the task's variables.
fn template(state: &State, term: &str) -> Result<Value, Error> {
    let search = search_path(state);
    let path = find_file(&search, term)
        .or_else(|| find_file(&search, &format!("templates/{term}")))
        .ok_or_else(|| err(format!("lookup('template'): could not find {term}")))?;
    let text = std::fs::read_to_string(&path).map_err(|e| {
        err(format!(
            "lookup('template'): could not read {}: {e}",
            path.display()
        ))
    })?;
    let tmpl = state.env().template_from_str(&text)?;
    // Only the variables the template reads (and those lookups inside it
    // read): looking up every variable rendered each one, the variable
    // holding this very lookup included, which then recursed.
    let mut ctx = std::collections::BTreeMap::new();
    let read_by_lookups = [
        "ansible_search_path",
        "playbook_dir",
        crate::template::LOOKUP_SUBDIR,
    ];
    let names = tmpl.undeclared_variables(false);
    for name in names.iter().map(String::as_str).chain(read_by_lookups) {
        if let Some(v) = state.lookup(name) {
            ctx.insert(name.to_string(), v);
        }
    }
    let ctx = Value::from(ctx);
    // Ansible 2.19: a template whose output is one expression, or macros
    // and one expression, gives that expression's value, a string padded
    // with the template's trailing newlines.
    let body = text.strip_suffix('\n').unwrap_or(&text);
    let native = match crate::template::single_expression(body) {
        Some(expr) => Some(
            state
                .env()
                .compile_expression_owned(expr.to_string())?
                .eval(ctx.clone())?,
        ),
        None => crate::template::native::shape(&text, state.env().syntax())
            .map(|n| n.eval(state.env(), ctx.clone()))
            .transpose()?,
    };
    match native {
        // Undefined: rendering it gives the error.
        Some(v) if v.is_undefined() => tmpl.render(ctx).map(Value::from),
        Some(v) => Ok(match v.as_str() {
            Some(s) => {
                let trailing = |s: &str| s.len() - s.trim_end_matches('\n').len();
                let pad = trailing(&text).saturating_sub(trailing(s));
                Value::from(format!("{s}{}", "\n".repeat(pad)))
            }
            None => v,
        }),
        None => tmpl.render(ctx).map(Value::from),
    }
}

/// `pipe`: a command run by the shell on the control machine, in the
/// playbook's directory, its output without the trailing newline. The
/// term is shell text by definition (as in Ansible): nothing else is put
/// into it.
fn pipe(state: &State, term: &str) -> Result<Value, Error> {
    let text = shell_output(state, "pipe", term)?;
    Ok(Value::from(text.trim_end_matches('\n')))
}

/// A `pipe` or `lines` term's standard output, run by `/bin/sh` in the
/// playbook's directory; a non-zero exit is an error.
fn shell_output(state: &State, lookup: &str, term: &str) -> Result<String, Error> {
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.arg("-c").arg(term);
    if let Some(dir) = state.lookup("playbook_dir").filter(|d| !d.is_undefined()) {
        cmd.current_dir(dir.to_string());
    }
    let out = cmd
        .output()
        .map_err(|e| err(format!("lookup('{lookup}'): could not run {term:?}: {e}")))?;
    if !out.status.success() {
        return Err(err(format!(
            "lookup_plugin.{lookup}({term}) returned {}",
            out.status.code().unwrap_or(-1)
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A number option of `sequence`. Ansible reads these as integers through
/// Python's Decimal: "3", "0600" (600) and "3.0" pass; "A" and "0x10" do not.
fn seq_number(option: &str, v: &Value) -> Result<i64, Error> {
    let n = match v.as_i64() {
        Some(n) => Some(n),
        None => {
            let t = v.to_string();
            let t = t.trim();
            t.parse::<i64>().ok().or_else(|| {
                t.parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15)
                    .map(|f| f as i64)
            })
        }
    };
    n.ok_or_else(|| {
        err(format!(
            "Config '{option}' for 'sequence' lookup plugin from 'Direct' has an invalid value."
        ))
    })
}

/// Python's `%` with one integer, for `sequence`'s `format`.
fn percent_format(fmt: &str, n: i64) -> Result<String, Error> {
    let mut out = String::new();
    let mut chars = fmt.chars().peekable();
    let mut used = false;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'%') {
            chars.next();
            out.push('%');
            continue;
        }
        let mut flags = String::new();
        while let Some(&f) = chars.peek() {
            if f.is_ascii_digit() || f == '-' || f == '0' || f == '.' || f == '+' || f == ' ' {
                flags.push(f);
                chars.next();
            } else {
                break;
            }
        }
        let conv = chars
            .next()
            .ok_or_else(|| err(format!("bad formatting string: {fmt}")))?;
        let body = match conv {
            'd' | 'i' | 'u' | 's' => n.abs().to_string(),
            'x' => format!("{:x}", n.abs()),
            'X' => format!("{:X}", n.abs()),
            'o' => format!("{:o}", n.abs()),
            _ => return Err(err(format!("bad formatting string: {fmt}"))),
        };
        let body = if n < 0 { format!("-{body}") } else { body };
        let left = flags.contains('-');
        let zero = flags.starts_with('0') && !left;
        let width: usize = flags
            .trim_start_matches(['-', '0', '+', ' '])
            .split('.')
            .next()
            .and_then(|w| w.parse().ok())
            .unwrap_or(0);
        let pad = width.saturating_sub(body.chars().count());
        if left {
            out.push_str(&body);
            out.push_str(&" ".repeat(pad));
        } else if zero {
            let (sign, digits) = body.split_at(usize::from(body.starts_with('-')));
            out.push_str(sign);
            out.push_str(&"0".repeat(pad));
            out.push_str(digits);
        } else {
            out.push_str(&" ".repeat(pad));
            out.push_str(&body);
        }
        used = true;
    }
    if !used {
        return Err(err(format!("bad formatting string: {fmt}")));
    }
    Ok(out)
}

/// The options of `sequence`.
const FIELDS: [&str; 5] = ["start", "end", "count", "stride", "format"];

/// The shortcut form of a `sequence` term, `[start-]end[/stride][:format]`,
/// as Ansible's pattern reads it (the numbers are checked afterwards).
fn sequence_shortcut(term: &str) -> Option<Vec<(&'static str, &str)>> {
    static SHORTCUT: std::sync::LazyLock<Option<regex::Regex>> = std::sync::LazyLock::new(|| {
        let num = "(0?x?[0-9a-f]+)";
        regex::Regex::new(&format!("(?i)^({num}-)?{num}(/{num})?(:(.+))?$")).ok()
    });
    let caps = SHORTCUT.as_ref()?.captures(term)?;
    let mut out = Vec::new();
    for (key, group) in [("start", 2), ("end", 3), ("stride", 5), ("format", 7)] {
        if let Some(m) = caps.get(group) {
            out.push((key, m.as_str()));
        }
    }
    Some(out)
}

/// `sequence`: `start=1 end=10 stride=2 format=x%02d`, `count=N`, or the
/// shortcut `[start-]end[/stride][:format]`; keyword arguments are the
/// defaults of every term. Checks and messages follow Ansible's plugin.
fn sequence(term: &str, kwargs: &Kwargs) -> Result<Vec<Value>, Error> {
    let mut opts: Vec<(&str, Value)> = vec![
        ("start", Value::from(1)),
        ("stride", Value::from(1)),
        ("format", Value::from("%d")),
    ];
    let mut set = |k: &'static str, v: Value| {
        opts.retain(|(o, _)| *o != k);
        opts.push((k, v));
    };
    for k in FIELDS {
        if let Some(v) = kwargs.get::<Option<Value>>(k)?.filter(|v| !v.is_none()) {
            set(k, v);
        }
    }
    if let Some(fields) = sequence_shortcut(term) {
        for (k, v) in fields {
            set(k, Value::from(v));
        }
    } else {
        let mut unknown = Vec::new();
        for part in term.split_whitespace() {
            let Some((k, v)) = part.split_once('=') else {
                unknown.push("'_raw_params'".to_string());
                continue;
            };
            match FIELDS.into_iter().find(|f| *f == k) {
                Some(f) => set(f, Value::from(v.trim_matches(['"', '\'']))),
                None => unknown.push(format!("'{k}'")),
            }
        }
        if !unknown.is_empty() {
            unknown.dedup();
            return Err(err(format!(
                "unrecognized arguments to with_sequence: [{}]",
                unknown.join(", ")
            )));
        }
    }
    let get = |k: &str| opts.iter().find(|(o, _)| *o == k).map(|(_, v)| v.clone());
    let number = |k: &str| get(k).map(|v| seq_number(k, &v)).transpose();
    let start = number("start")?.unwrap_or(1);
    let stride = number("stride")?.unwrap_or(1);
    let count = number("count")?;
    let format = get("format").map(|v| v.to_string()).unwrap_or_default();
    let end = match (count, number("end")?) {
        (None, None) => return Err(err("must specify count or end in with_sequence".into())),
        (Some(_), Some(_)) => {
            return Err(err(
                "can't specify both count and end in with_sequence".into()
            ))
        }
        (Some(0), None) => return Ok(Vec::new()),
        (Some(c), None) => start
            .saturating_add(c.saturating_mul(stride))
            .saturating_sub(1),
        (None, Some(e)) => e,
    };
    if stride > 0 && end < start {
        return Err(err("to count backwards make stride negative".into()));
    }
    if stride < 0 && end > start {
        return Err(err("to count forward don't make stride negative".into()));
    }
    if stride == 0 {
        return Ok(Vec::new());
    }
    if format.matches('%').count() != 1 {
        return Err(err(format!("bad formatting string: {format}")));
    }
    let mut out = Vec::new();
    let mut i = start;
    while (stride > 0 && i <= end) || (stride < 0 && i >= end) {
        let text = percent_format(&format, i)
            .map_err(|_| err(format!("problem formatting {i} with '{format}'")))?;
        out.push(Value::from(text));
        if out.len() > 1_000_000 {
            return Err(err("with_sequence: more than a million items".into()));
        }
        i = match i.checked_add(stride) {
            Some(n) => n,
            None => break,
        };
    }
    Ok(out)
}

fn list_of(v: &Value) -> Vec<Value> {
    match v.kind() {
        ValueKind::Seq => v.try_iter().into_iter().flatten().collect(),
        _ => vec![v.clone()],
    }
}

/// A local file's text, decrypted when it is vault-encrypted.
fn read_text(path: &Path, lookup: &str) -> Result<String, Error> {
    let data = crate::vault::read_file(path)
        .map_err(|e| {
            err(format!(
                "lookup('{lookup}'): could not read {}: {e}",
                path.display()
            ))
        })?
        .map_err(|e| err(format!("lookup('{lookup}'): {e}")))?;
    String::from_utf8(data).map_err(|_| {
        err(format!(
            "lookup('{lookup}'): {} is not UTF-8 text",
            path.display()
        ))
    })
}

/// The values of lookup `name` for `terms`.
fn run(state: &State, name: &str, terms: &[Value], kwargs: &Kwargs) -> Result<Vec<Value>, Error> {
    let plugin = name.strip_prefix("ansible.builtin.").unwrap_or(name);
    let mut out = Vec::with_capacity(terms.len());
    match plugin {
        "file" => {
            let rstrip: Option<bool> = kwargs.get("rstrip")?;
            let lstrip: Option<bool> = kwargs.get("lstrip")?;
            let search = search_path(state);
            for term in terms {
                let name = term.to_string();
                let path =
                    find_file(&search, &name).unwrap_or_else(|| PathBuf::from(home_expand(&name)));
                // Vault-encrypted files are decrypted, as Ansible's loader does.
                let text = read_text(&path, "file")?;
                let text = if rstrip.unwrap_or(true) {
                    text.trim_end()
                } else {
                    &text
                };
                let text = if lstrip.unwrap_or(false) {
                    text.trim_start()
                } else {
                    text
                };
                out.push(Value::from(text));
            }
        }
        "unvault" => {
            let search = search_path(state);
            for term in terms {
                let name = term.to_string();
                let path = find_file(&search, &name).ok_or_else(|| {
                    err(format!(
                        "lookup('unvault'): unable to find file matching \"{name}\""
                    ))
                })?;
                out.push(Value::from(read_text(&path, "unvault")?));
            }
        }
        "env" => {
            let default: Option<Value> = kwargs.get("default")?;
            for term in terms {
                match std::env::var(term.to_string()) {
                    Ok(v) => out.push(Value::from(v)),
                    Err(_) => out.push(default.clone().unwrap_or_else(|| Value::from(""))),
                }
            }
        }
        "template" => {
            for term in terms {
                out.push(template(state, &term.to_string())?);
            }
        }
        "pipe" => {
            for term in terms {
                out.push(pipe(state, &term.to_string())?);
            }
        }
        "lines" => {
            for term in terms {
                let text = shell_output(state, "lines", &term.to_string())?;
                out.extend(text.lines().map(Value::from));
            }
        }
        "password" => {
            for term in terms {
                out.push(super::crypt::password_lookup(
                    state,
                    &term.to_string(),
                    kwargs,
                )?);
            }
        }
        "first_found" => out.extend(first_found(state, terms, kwargs)?.map(Value::from)),
        "fileglob" => {
            for term in terms {
                out.extend(fileglob(state, &term.to_string()));
            }
        }
        "sequence" => {
            // Keyword arguments alone make one sequence; nothing at all, none.
            if terms.is_empty() && kwargs.args().next().is_some() {
                out.extend(sequence("", kwargs)?);
            }
            for term in terms {
                out.extend(sequence(&term.to_string(), kwargs)?);
            }
        }
        "items" => {
            for t in terms {
                out.extend(list_of(t));
            }
        }
        "list" => out.extend(terms.iter().cloned()),
        "indexed_items" => {
            for (i, t) in terms.iter().flat_map(list_of).enumerate() {
                out.push(Value::from(vec![Value::from(i), t]));
            }
        }
        "together" => {
            if terms.is_empty() {
                return Err(err(
                    "with_together requires at least one element in each list".into(),
                ));
            }
            let lists: Vec<Vec<Value>> = terms.iter().map(list_of).collect();
            let longest = lists.iter().map(Vec::len).max().unwrap_or(0);
            for i in 0..longest {
                out.push(Value::from(
                    lists
                        .iter()
                        .map(|l| l.get(i).cloned().unwrap_or(Value::from(())))
                        .collect::<Vec<_>>(),
                ));
            }
        }
        "nested" => {
            let mut acc: Vec<Vec<Value>> = vec![Vec::new()];
            for t in terms {
                let list = list_of(t);
                acc = acc
                    .into_iter()
                    .flat_map(|prefix| {
                        list.iter().map(move |x| {
                            let mut p = prefix.clone();
                            p.push(x.clone());
                            p
                        })
                    })
                    .collect();
            }
            if !terms.is_empty() {
                out.extend(acc.into_iter().map(Value::from));
            }
        }
        "dict" => {
            for term in terms {
                if term.kind() != ValueKind::Map {
                    return Err(err(format!(
                        "the 'dict' lookup plugin expects a dictionary, got '{term}' of type {}",
                        term.kind()
                    )));
                }
                for key in term.try_iter().into_iter().flatten() {
                    let value = term.get_item(&key).unwrap_or_default();
                    let mut pair = std::collections::BTreeMap::new();
                    pair.insert("key", key.clone());
                    pair.insert("value", value);
                    out.push(Value::from(pair));
                }
            }
        }
        "vars" => {
            let default: Option<Value> = kwargs.get("default")?;
            for term in terms {
                let Some(name) = term.as_str() else {
                    return Err(err(format!(
                        "Variable name must be 'str' not {:?}.",
                        term.kind().to_string()
                    )));
                };
                match state.lookup(name).filter(|v| !v.is_undefined()) {
                    Some(v) => out.push(v),
                    None => match default.clone().filter(|d| !d.is_none()) {
                        Some(d) => out.push(d),
                        None => return Err(err(format!("No variable named '{name}' was found."))),
                    },
                }
            }
        }
        // Ansible's words, which playbooks test for.
        other => {
            return Err(err(format!(
                "The lookup plugin '{other}' was not found (drover has no such lookup)."
            )))
        }
    }
    kwargs.assert_all_used()?;
    Ok(out)
}

/// `lookup('file', a, b)`: one value as it is, several texts joined with
/// commas, anything else as a list, as Ansible does unless `wantlist=True`.
pub(super) fn lookup(
    state: &State,
    name: String,
    terms: Rest<Value>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let wantlist: Option<bool> = kwargs.get("wantlist")?;
    let Some(values) = run_or_ignore(state, &name, &terms, &kwargs)? else {
        return Ok(Value::from(()));
    };
    if values.len() == 1 && !wantlist.unwrap_or(false) {
        return Ok(values.into_iter().next().unwrap_or_default());
    }
    // Ansible joins only text; other values (`dict`'s pairs) stay a list.
    if wantlist.unwrap_or(false) || values.iter().any(|v| v.as_str().is_none()) || values.is_empty()
    {
        return Ok(Value::from(values));
    }
    let joined: Vec<&str> = values.iter().filter_map(Value::as_str).collect();
    Ok(Value::from(joined.join(",")))
}

/// `query('file', ...)` / `q(...)`: always a list.
pub(super) fn query(
    state: &State,
    name: String,
    terms: Rest<Value>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let _: Option<bool> = kwargs.get("wantlist")?;
    Ok(Value::from(
        run_or_ignore(state, &name, &terms, &kwargs)?.unwrap_or_default(),
    ))
}

/// [`run`] under the lookup's `errors` argument: `strict` (the default)
/// fails; `warn` and `ignore` give nothing (None) instead, as Ansible's.
fn run_or_ignore(
    state: &State,
    name: &str,
    terms: &[Value],
    kwargs: &Kwargs,
) -> Result<Option<Vec<Value>>, Error> {
    let errors: Option<String> = kwargs.get("errors")?;
    let lenient = match errors.as_deref() {
        None | Some("strict") => false,
        Some("warn" | "ignore") => true,
        Some(other) => {
            return Err(err(format!(
                "the lookup's errors argument must be strict, warn or ignore, not {other:?}"
            )))
        }
    };
    match run(state, name, terms, kwargs) {
        Ok(v) => Ok(Some(v)),
        Err(_) if lenient => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use crate::template::Templar;

    fn render(src: &str) -> Result<String, crate::template::TemplateError> {
        let t = Templar::new();
        let scope = t.scope(std::sync::Arc::new(crate::Map::new()), Vec::new());
        t.render_string(src, &scope)
    }

    #[test]
    fn file_lookup_reads_and_strips() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("k.pub");
        std::fs::write(&p, "ssh-ed25519 AAAA me\n\n").expect("write");
        let out =
            render(&format!("[{{{{ lookup('file', '{}') }}}}]", p.display())).expect("renders");
        assert_eq!(out, "[ssh-ed25519 AAAA me]");
        let out = render(&format!(
            "{{{{ query('file', '{}') | length }}}}",
            p.display()
        ))
        .expect("renders");
        assert_eq!(out, "1");
    }

    #[test]
    fn lookups_accept_errors_and_wantlist() {
        let out =
            render("{{ lookup('first_found', ['/nonexistent/a'], errors='ignore') is none }}")
                .expect("renders");
        assert_eq!(out, "True");
        let out = render("{{ query('file', '/nonexistent/a', errors='warn', wantlist=True) }}")
            .expect("renders");
        assert_eq!(out, "[]");
        assert!(render("{{ lookup('file', '/nonexistent/a', errors='strict') }}").is_err());
    }

    #[test]
    fn dict_lookup_gives_key_value_items() {
        let out = render("{{ lookup('dict', {'a': 1, 'b': 2}, wantlist=True) | map(attribute='key') | join(',') }}")
            .expect("renders");
        assert_eq!(out, "a,b");
    }

    #[test]
    fn missing_file_names_the_path() {
        let e = render("{{ lookup('file', '/nonexistent/x.pub') }}").expect_err("fails");
        assert!(e.to_string().contains("/nonexistent/x.pub"), "{e}");
    }

    #[test]
    fn lookup_keeps_a_list_of_non_text_values() {
        // lookup_dict: `lookup('dict', users) | sort(attribute='key')`.
        let out = render("{{ lookup('dict', {'b': 1, 'a': 2}) | sort(attribute='key') | map(attribute='key') | join(',') }}")
            .expect("renders");
        assert_eq!(out, "a,b");
        assert_eq!(
            render("{{ lookup('items', ['x', 'y']) }}").expect("renders"),
            "x,y"
        );
        assert_eq!(
            render("{{ lookup('items', []) | length }}").expect("renders"),
            "0"
        );
        assert_eq!(
            render("{{ lookup('items', [3]) + 1 }}").expect("renders"),
            "4"
        );
    }

    #[test]
    fn vars_lookup_reads_variables_by_name() {
        let t = Templar::new();
        let mut vars = crate::Map::new();
        vars.insert("path_0".into(), serde_json::json!("/tmp/x"));
        vars.insert("name".into(), serde_json::json!("path_0"));
        let scope = t.scope(std::sync::Arc::new(vars), Vec::new());
        let r = |src: &str| t.render_string(src, &scope);
        assert_eq!(r("{{ lookup('vars', name) }}").expect("renders"), "/tmp/x");
        assert_eq!(
            r("{{ lookup('vars', 'nope', default='d') }}").expect("renders"),
            "d"
        );
        let e = r("{{ lookup('vars', 'nope') }}").expect_err("fails");
        assert!(e.to_string().contains("No variable named 'nope'"), "{e}");
        assert!(r("{{ lookup('vars', 1) }}").is_err());
    }

    #[test]
    fn together_of_nothing_is_an_error() {
        let e = render("{{ query('together') }}").expect_err("fails");
        assert!(
            e.to_string()
                .contains("with_together requires at least one element in each list"),
            "{e}"
        );
    }

    #[test]
    fn sequence_follows_ansible() {
        let q = |args: &str| {
            render(&format!("{{{{ query('sequence', {args}) | join(',') }}}}"))
                .unwrap_or_else(|e| format!("ERR {e}"))
        };
        assert_eq!(q("count=5, start=10"), "10,11,12,13,14");
        assert_eq!(q("'count=5 start=0', stride=-1"), "0,-1,-2,-3,-4,-5,-6");
        assert_eq!(
            q("'count=5 start=0', 'count=5', start=20"),
            "0,1,2,3,4,20,21,22,23,24"
        );
        assert_eq!(q("'count=5 start=0', stride=0"), "");
        assert_eq!(q("'2-6/2'"), "2,4,6");
        assert_eq!(q("'7-8:host%02d'"), "host07,host08");
        assert_eq!(q("'count=0'"), "");
        assert_eq!(render("{{ query('sequence') }}").expect("renders"), "[]");
        for (args, msg) in [
            (
                "'start=A end=3'",
                "'start' for 'sequence' lookup plugin from 'Direct' has an invalid value",
            ),
            ("'A-4/2'", "has an invalid value"),
            ("'1-4/C'", "has an invalid value"),
            (
                "'start=0 junk=3'",
                "unrecognized arguments to with_sequence: ['junk']",
            ),
            ("'start=1'", "must specify count or end in with_sequence"),
            (
                "'start=1 end=4 count=2'",
                "can't specify both count and end in with_sequence",
            ),
            (
                "'start=4 end=1 stride=2'",
                "to count backwards make stride negative",
            ),
            (
                "'start=1 end=4 stride=-2'",
                "to count forward don't make stride negative",
            ),
            ("'start=1 end=4 format=d'", "bad formatting string: d"),
        ] {
            let out = q(args);
            assert!(out.starts_with("ERR") && out.contains(msg), "{args}: {out}");
        }
    }
}
