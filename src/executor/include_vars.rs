//! `include_vars` with its directory form (`dir`, `depth`, `files_matching`,
//! `ignore_files`, `extensions`, `ignore_unknown_extensions`) and
//! `hash_behaviour: merge`, with Ansible's rules: directories walked in
//! order of their path, files in order of their name, later files
//! overriding earlier ones; a role's `vars/main.yml` is never read again.

use std::path::{Path, PathBuf};

use regex::Regex;

use crate::{Map, Value};

/// Arguments that belong to the directory form only.
const DIR_ARGS: &[&str] = &[
    "dir",
    "depth",
    "files_matching",
    "ignore_files",
    "extensions",
    "ignore_unknown_extensions",
];
/// Arguments that belong to the file form only.
const FILE_ARGS: &[&str] = &["file", "_raw_params"];
/// Arguments of both forms.
const BOTH: &[&str] = &["name", "hash_behaviour"];

/// Refuse unknown arguments and a mix of both forms, as Ansible does.
pub(super) fn check_args(args: &Map) -> Result<(), String> {
    let (mut dirs, mut files) = (0, 0);
    for k in args.keys() {
        if DIR_ARGS.contains(&k.as_str()) {
            dirs += 1;
        } else if FILE_ARGS.contains(&k.as_str()) {
            files += 1;
        } else if !BOTH.contains(&k.as_str()) {
            return Err(format!("{k} is not a valid option in include_vars"));
        }
    }
    if dirs > 0 && files > 0 {
        return Err(
            "You are mixing file only and dir only arguments, these are incompatible".into(),
        );
    }
    Ok(())
}

/// A vars file: a mapping (an empty file is an empty one).
pub(super) fn load(path: &Path) -> Result<Map, String> {
    match crate::yaml::load_file(path).map(|n| n.to_value()) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(Value::Null) => Ok(Map::new()),
        Ok(_) => Err(format!(
            "{} must be stored as a dictionary/hash",
            path.display()
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// A list argument written as a list or as words.
fn words(v: Option<&Value>) -> Option<Vec<String>> {
    match v? {
        Value::Array(a) => Some(
            a.iter()
                .map(|x| match x {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect(),
        ),
        Value::String(s) => Some(s.split_whitespace().map(str::to_string).collect()),
        Value::Null => Some(Vec::new()),
        _ => None,
    }
}

/// The directory form: every file under `dir` (relative to the role's
/// `vars/`, or to the including file's directory), merged in order.
/// Returns the variables and the files read.
pub(super) fn from_dir(
    args: &Map,
    base: &Path,
    role_dir: Option<&Path>,
) -> Result<(Map, Vec<String>), String> {
    check_args(args)?;
    let dir = match args.get("dir") {
        Some(Value::String(s)) => s.clone(),
        _ => return Err("include_vars: 'dir' must be a string".into()),
    };
    let root = match role_dir {
        // In a role: `vars/...` from the role's directory if it exists
        // there, anything else under the role's vars/.
        Some(r) if dir.split('/').next() == Some("vars") && r.join(&dir).exists() => r.join(&dir),
        Some(r) => r.join("vars").join(&dir),
        None => base.join(&dir),
    };
    if !root.exists() {
        return Err(format!("{dir} directory does not exist"));
    }
    if !root.is_dir() {
        return Err(format!("{dir} is not a directory"));
    }
    let depth = match args.get("depth") {
        None | Some(Value::Null) => 0,
        Some(v) => match v {
            Value::Number(n) => n.as_u64().unwrap_or(0) as usize,
            Value::String(s) => s
                .trim()
                .parse()
                .map_err(|_| format!("depth: not a number: {s}"))?,
            _ => return Err("depth must be a number".into()),
        },
    };
    let matcher = match args.get("files_matching").and_then(Value::as_str) {
        Some(p) => Some(Regex::new(p).map_err(|e| format!("files_matching: {e}"))?),
        None => None,
    };
    let ignore: Vec<Regex> = words(args.get("ignore_files").or(Some(&Value::Null)))
        .ok_or("ignore_files must be a list")?
        .iter()
        .map(|p| {
            Regex::new(&format!("(?:{p})$")).map_err(|_| format!("Invalid regular expression: {p}"))
        })
        .collect::<Result<_, _>>()?;
    let extensions = match args.get("extensions") {
        None => vec!["yaml".into(), "yml".into(), "json".into()],
        Some(Value::Array(_)) => words(args.get("extensions")).unwrap_or_default(),
        Some(_) => return Err("Invalid type for \"extensions\" option, it must be a list".into()),
    };
    let skip_unknown = args
        .get("ignore_unknown_extensions")
        .and_then(crate::playbook::to_flag)
        .unwrap_or(false);
    let mut dirs = Vec::new();
    walk(&root, 0, &mut dirs);
    dirs.sort_by(|a, b| a.0.cmp(&b.0));
    let role_main = role_dir.map(|r| r.join("vars").join("main.yml"));
    let mut vars = Map::new();
    let mut read = Vec::new();
    for (d, mut files) in dirs {
        let level = d.strip_prefix(&root).map_or(0, |p| p.components().count()) + 1;
        if depth != 0 && level > depth {
            continue;
        }
        files.sort();
        for name in files {
            let path = d.join(&name);
            if role_main.as_deref() == Some(path.as_path()) {
                continue;
            }
            if matcher.as_ref().is_some_and(|m| !m.is_match(&name))
                || ignore.iter().any(|re| re.is_match(&name))
            {
                continue;
            }
            let ext = Path::new(&name)
                .extension()
                .map(|e| e.to_string_lossy().into_owned())
                .unwrap_or_default();
            if !extensions.contains(&ext) {
                if skip_unknown {
                    continue;
                }
                return Err(format!(
                    "{} does not have a valid extension: {}",
                    path.display(),
                    extensions.join(", ")
                ));
            }
            vars.extend(load(&path)?);
            read.push(path.display().to_string());
        }
    }
    Ok((vars, read))
}

/// Every directory under `dir` (following links, to a sane depth) with
/// the names of its files.
fn walk(dir: &Path, level: usize, out: &mut Vec<(PathBuf, Vec<String>)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files = Vec::new();
    let mut subdirs = Vec::new();
    for e in entries.flatten() {
        let path = e.path();
        match std::fs::metadata(&path) {
            Ok(m) if m.is_dir() => subdirs.push(path),
            Ok(_) => files.push(e.file_name().to_string_lossy().into_owned()),
            Err(_) => {}
        }
    }
    out.push((dir.to_path_buf(), files));
    if level < 32 {
        for s in subdirs {
            walk(&s, level + 1, out);
        }
    }
}

/// `hash_behaviour: merge`: mappings merged key by key, recursively; any
/// other value replaced.
pub(super) fn merged(old: &Value, new: Value) -> Value {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut m = a.clone();
            for (k, v) in b {
                let v = match m.get(&k) {
                    Some(prev) => merged(prev, v),
                    None => v,
                };
                m.insert(k, v);
            }
            Value::Object(m)
        }
        (_, new) => new,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }

    fn args(yaml: &str) -> Map {
        match crate::yaml::load_str(yaml, Path::new("a.yml")).map(|n| n.to_value()) {
            Ok(Value::Object(m)) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn include_vars_dir_reads_files_in_path_order_to_the_depth_asked() {
        let d = tempfile::tempdir().expect("tempdir");
        write(d.path(), "v/a.yml", "x: 1\nfrom_a: true\n");
        write(d.path(), "v/b.yml", "x: 2\n");
        write(d.path(), "v/sub/c.yml", "x: 3\n");
        write(d.path(), "v/sub/deeper/d.yml", "x: 4\n");
        write(d.path(), "v/noext", "y: 1\n");
        let (vars, files) = from_dir(
            &args("dir: v\nignore_unknown_extensions: true\n"),
            d.path(),
            None,
        )
        .expect("loads");
        assert_eq!(vars["x"], 4);
        assert_eq!(files.len(), 4, "{files:?}");
        let (vars, files) = from_dir(
            &args("dir: v\ndepth: 2\nextensions: ['', yml]\n"),
            d.path(),
            None,
        )
        .expect("loads");
        assert_eq!(vars["x"], 3);
        assert_eq!(vars["y"], 1);
        assert_eq!(files.len(), 4, "{files:?}");
        let (vars, _) = from_dir(
            &args("dir: v\nfiles_matching: '^[ab]'\nignore_files: [b.yml]\n"),
            d.path(),
            None,
        )
        .expect("loads");
        assert_eq!(vars["x"], 1);
        let err = from_dir(&args("dir: v\n"), d.path(), None).expect_err("noext");
        assert!(err.contains("does not have a valid extension"), "{err}");
        let err = check_args(&args("dir: v\nfile: x.yml\n")).expect_err("mixed");
        assert!(err.contains("mixing"), "{err}");
    }

    #[test]
    fn hash_behaviour_merge_merges_mappings_recursively() {
        let old = serde_json::json!({"k0": 0, "k2": {"a": 1}});
        let new = serde_json::json!({"k2": {"b": 2}, "k3": 3});
        assert_eq!(
            merged(&old, new),
            serde_json::json!({"k0": 0, "k2": {"a": 1, "b": 2}, "k3": 3})
        );
    }
}
