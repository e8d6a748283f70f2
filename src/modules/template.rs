//! `template`: render a local Jinja2 template with the host's variables and
//! put the result at `dest`, exactly as `copy` would put content there (the
//! planning is `copy`'s).

use async_trait::async_trait;
use serde::Deserialize;

use super::args::{bool_ish, yes, FileAttrs};
use super::copy::{
    apply_copy, copy_reads, decide_copy, Content, CopyChange, CopySpec, Shape, Source,
};
use super::{Decision, Module, ModuleCtx, ModuleError, Observed, Protocol, ReadCtx, Touched};
use crate::{Map, Value};

/// Arguments of `template`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// Local template (searched in the role's `templates/`, then the
    /// playbook's directory).
    src: String,
    /// Destination file, or a directory to render into (with src's name).
    dest: String,
    /// Mode (or `preserve`: the template file's), owner and group.
    #[serde(flatten)]
    attrs: FileAttrs<true>,
    /// Keep a timestamped copy of a file that is replaced.
    #[serde(default, deserialize_with = "bool_ish")]
    backup: bool,
    /// Replace a file whose content differs; with `no`, only create it.
    #[serde(default = "yes", deserialize_with = "bool_ish")]
    force: bool,
    /// Write through a destination symlink instead of replacing it.
    #[serde(default, deserialize_with = "bool_ish")]
    follow: bool,
    /// Command checking the new file before it is put in place (`%s` is its path).
    #[serde(default)]
    validate: Option<String>,
    /// Line ending of the output: `\n` (default), `\r\n` or `\r`.
    #[serde(default)]
    newline_sequence: Option<String>,
    /// Only `utf-8` is supported.
    #[serde(default)]
    output_encoding: Option<String>,
    /// Drop the newline after a block tag (default yes, as in Ansible).
    #[serde(default = "yes", deserialize_with = "bool_ish")]
    trim_blocks: bool,
    /// Drop the spaces before a block tag that starts a line.
    #[serde(default, deserialize_with = "bool_ish")]
    lstrip_blocks: bool,
    /// Jinja2 delimiters in place of `{%`, `%}`, `{{`, `}}`, `{#`, `#}`.
    #[serde(default)]
    block_start_string: Option<String>,
    #[serde(default)]
    block_end_string: Option<String>,
    #[serde(default)]
    variable_start_string: Option<String>,
    #[serde(default)]
    variable_end_string: Option<String>,
    #[serde(default)]
    comment_start_string: Option<String>,
    #[serde(default)]
    comment_end_string: Option<String>,
    /// Accepted for compatibility; writes are always atomic.
    #[serde(default, deserialize_with = "bool_ish")]
    #[allow(dead_code)]
    unsafe_writes: bool,
}

/// The encodings `output_encoding` may name.
enum Encoding {
    Utf8,
    Cp1252,
}

/// Windows-1252 bytes of `text`; a character it lacks fails, as Python's
/// strict encoder does.
fn to_cp1252(text: &str) -> Result<Vec<u8>, ModuleError> {
    // The characters of 0x80..=0x9F (0 where the code page has none).
    const HIGH: [u16; 32] = [
        0x20AC, 0, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039,
        0x0152, 0, 0x017D, 0, 0, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC,
        0x2122, 0x0161, 0x203A, 0x0153, 0, 0x017E, 0x0178,
    ];
    text.chars()
        .map(|c| {
            let code = c as u32;
            if code < 0x80 || (0xA0..=0xFF).contains(&code) {
                return u8::try_from(code).ok();
            }
            HIGH.iter()
                .position(|&h| h != 0 && u32::from(h) == code)
                .and_then(|i| u8::try_from(0x80 + i).ok())
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(|| {
            ModuleError::failed("the rendered template has characters windows-1252 lacks")
        })
}

/// Give the output as many trailing newlines as the template has, as
/// Ansible does (`trim_blocks` eats the one after a closing tag).
fn pad_trailing_newlines(template: &str, rendered: &mut String) {
    let count = |s: &str| s.len() - s.trim_end_matches('\n').len();
    let (want, have) = (count(template), count(rendered));
    if want > have {
        rendered.push_str(&"\n".repeat(want - have));
    }
}

/// Where a template's `include`s and `import`s are found, as Ansible's
/// template action looks: each search directory's `templates/`, then the
/// directory itself, then the template's own directory.
fn include_search(
    search: &[std::path::PathBuf],
    template: &std::path::Path,
) -> Vec<std::path::PathBuf> {
    let mut dirs: Vec<std::path::PathBuf> = search
        .iter()
        .flat_map(|d| [d.join("templates"), d.clone()])
        .collect();
    if let Some(own) = template.parent() {
        dirs.push(own.to_path_buf());
    }
    dirs
}

impl Template {
    /// The template's Jinja2 syntax: Ansible's, with the task's changes.
    fn syntax(&self) -> crate::template::Syntax {
        let d = crate::template::Syntax::default();
        let pick = |given: &Option<String>, default: &str| {
            given.clone().unwrap_or_else(|| default.to_string())
        };
        crate::template::Syntax {
            block: (
                pick(&self.block_start_string, &d.block.0),
                pick(&self.block_end_string, &d.block.1),
            ),
            variable: (
                pick(&self.variable_start_string, &d.variable.0),
                pick(&self.variable_end_string, &d.variable.1),
            ),
            comment: (
                pick(&self.comment_start_string, &d.comment.0),
                pick(&self.comment_end_string, &d.comment.1),
            ),
            trim_blocks: self.trim_blocks,
            lstrip_blocks: self.lstrip_blocks,
            ..d
        }
    }

    /// The name the file gets in a destination directory.
    fn basename(&self) -> Option<String> {
        std::path::Path::new(&self.src)
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string)
    }
}

/// The variables Ansible's template action adds about the template file:
/// `template_path` as given, `template_fullpath`, `template_destpath`, its
/// owner, modification time, the controller's host name and the run's
/// date (times as Python prints a datetime).
fn template_vars(src: &str, full: &std::path::Path, dest: &str) -> crate::Map {
    use std::os::unix::fs::MetadataExt;
    let mut out = crate::Map::new();
    let stamp = |t: chrono::DateTime<chrono::Local>| t.format("%Y-%m-%d %H:%M:%S%.6f").to_string();
    let meta = std::fs::metadata(full).ok();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    out.insert("template_host".into(), Value::from(host));
    out.insert("template_path".into(), Value::from(src));
    let full = std::path::absolute(full).unwrap_or_else(|_| full.to_path_buf());
    out.insert(
        "template_fullpath".into(),
        Value::from(full.display().to_string()),
    );
    out.insert("template_destpath".into(), Value::from(dest));
    if let Some(meta) = meta {
        let uid = meta.uid();
        // The owner's name, as Python's pwd module finds it, else the uid.
        let name = std::fs::read_to_string("/etc/passwd").ok().and_then(|p| {
            p.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 2 && f[2] == uid.to_string()).then(|| f[0].to_string())
            })
        });
        out.insert(
            "template_uid".into(),
            name.map_or(Value::from(uid), Value::from),
        );
        if let Ok(m) = meta.modified() {
            out.insert("template_mtime".into(), Value::from(stamp(m.into())));
        }
    }
    out.insert(
        "template_run_date".into(),
        Value::from(stamp(chrono::Local::now())),
    );
    out
}

#[async_trait]
impl Module for Template {
    const NAME: &'static str = "template";
    const ARGS: &'static [&'static str] = &[
        "src",
        "dest",
        "mode",
        "owner",
        "group",
        "backup",
        "force",
        "follow",
        "validate",
        "newline_sequence",
        "output_encoding",
        "trim_blocks",
        "lstrip_blocks",
        "unsafe_writes",
        "block_start_string",
        "block_end_string",
        "variable_start_string",
        "variable_end_string",
        "comment_start_string",
        "comment_end_string",
    ];
    type Change = CopyChange;

    fn host_paths(_args: &Map) -> &'static [&'static str] {
        &["dest"]
    }

    fn reads(&self, ctx: &ReadCtx<'_>) -> Result<Protocol, ModuleError> {
        let shape = Shape::Single {
            basename: self.basename(),
            remote_src: None,
        };
        Ok(Protocol::Declared(copy_reads(
            &shape,
            &self.dest,
            self.follow,
            ctx.diff,
        )))
    }

    fn decide(
        &self,
        observed: &Observed,
        ctx: &ReadCtx<'_>,
    ) -> Result<Decision<CopyChange>, ModuleError> {
        // An empty output_encoding is the default, as in Ansible.
        let encoding = match self.output_encoding.as_deref() {
            None | Some("") => Encoding::Utf8,
            Some(enc) => match enc.to_ascii_lowercase().replace('_', "-").as_str() {
                "utf-8" | "utf8" => Encoding::Utf8,
                "windows-1252" | "cp1252" => Encoding::Cp1252,
                _ => {
                    return Err(ModuleError::Args(format!(
                        "output_encoding {enc} is not supported (only utf-8 and windows-1252)"
                    )))
                }
            },
        };
        let newline = match self.newline_sequence.as_deref() {
            None | Some("\n") | Some("\\n") => "\n",
            Some("\r\n") | Some("\\r\\n") => "\r\n",
            Some("\r") | Some("\\r") => "\r",
            Some(other) => {
                return Err(ModuleError::Args(format!(
                    "newline_sequence must be \\n, \\r\\n or \\r, not {other:?}"
                )))
            }
        };
        let path = ctx.find_local(&self.src)?;
        let (text, mode) = {
            use std::os::unix::fs::PermissionsExt;
            // A vault-encrypted template is decrypted, as Ansible does.
            let text = crate::vault::read_file(&path)
                .map_err(|e| ModuleError::failed(format!("{}: {e}", path.display())))?
                .map_err(|e| ModuleError::failed(e.to_string()))?;
            let text = String::from_utf8(text).map_err(|_| {
                ModuleError::failed(format!("{}: the template is not UTF-8", path.display()))
            })?;
            let mode = std::fs::metadata(&path)
                .map_err(|e| ModuleError::failed(format!("{}: {e}", path.display())))?
                .permissions()
                .mode()
                & 0o7777;
            (text, mode)
        };
        let vars = template_vars(&self.src, &path, &self.dest);
        let syntax = crate::template::Syntax {
            search: include_search(ctx.search, &path),
            ..self.syntax()
        };
        let mut rendered = ctx.render.render_syntax(&text, &self.src, &syntax, &vars)?;
        pad_trailing_newlines(&text, &mut rendered);
        if newline != "\n" {
            rendered = rendered.replace("\r\n", "\n").replace('\n', newline);
        }
        let data = match encoding {
            Encoding::Utf8 => rendered.into_bytes(),
            Encoding::Cp1252 => to_cp1252(&rendered)?,
        };
        let basename = self.basename();
        let spec = CopySpec {
            source: Source::Bytes {
                data: Content::Bytes(data),
                basename,
                mode: Some(mode),
            },
            src_label: Some(self.src.clone()),
            dest: self.dest.clone(),
            attrs: self.attrs.clone(),
            backup: self.backup,
            force: self.force,
            follow: self.follow,
            directory_mode: None,
            validate: self.validate.clone(),
        };
        decide_copy(spec, observed, ctx.diff).map(Decision::Plan)
    }

    fn touches(&self, change: &CopyChange) -> Touched {
        change.touched()
    }

    async fn apply(&self, ctx: &ModuleCtx<'_>, change: CopyChange) -> Result<Map, ModuleError> {
        apply_copy(ctx, change).await
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::modules::fs::sha1_hex;
    use crate::modules::testutil::{assert_args_complete, mode_of, owner_of, Harness};

    #[test]
    fn args() {
        assert_args_complete::<Template>();
    }

    /// template target: `comment_start_string` and the other delimiters
    /// were unknown arguments; lstrip_blocks and trim_blocks: no refused.
    #[test]
    fn template_vars_describe_the_template_file() {
        // special_vars: templates using `template_uid` failed as undefined.
        let dir = tempfile::tempdir().expect("tmp");
        let src = dir.path().join("foo.j2");
        std::fs::write(&src, "x").expect("write");
        let vars = template_vars("foo.j2", &src, "/tmp/out");
        assert_eq!(vars["template_path"], "foo.j2");
        assert_eq!(vars["template_destpath"], "/tmp/out");
        assert_eq!(
            vars["template_fullpath"],
            Value::from(src.display().to_string())
        );
        for key in [
            "template_host",
            "template_uid",
            "template_mtime",
            "template_run_date",
        ] {
            assert!(vars.contains_key(key), "{key}");
        }
        use crate::modules::Render;
        let r = crate::modules::testutil::TestRender::new(json!({}));
        let out = r
            .render_syntax(
                "{{ template_path }}",
                "t",
                &crate::template::Syntax::default(),
                &vars,
            )
            .expect("renders");
        assert_eq!(out, "foo.j2");
    }

    #[test]
    fn own_delimiters_and_whitespace_options_render() {
        use crate::modules::testutil::TestRender;
        use crate::modules::Render;
        let t: Template = serde_json::from_value(json!({
            "src": "a", "dest": "b",
            "comment_start_string": "[#", "comment_end_string": "#]",
            "variable_start_string": "[%", "variable_end_string": "%]",
            "lstrip_blocks": true, "trim_blocks": false,
        }))
        .expect("args");
        let r = TestRender::new(json!({"x": 1}));
        let out = r
            .render_syntax(
                "[# c #]v=[% x %] {{ y }}\n  {% if true %}\nz\n  {% endif %}\n",
                "t",
                &t.syntax(),
                &crate::Map::new(),
            )
            .expect("renders");
        assert_eq!(out, "v=1 {{ y }}\n\nz\n\n");
        let bad: Template = serde_json::from_value(json!({
            "src": "a", "dest": "b", "block_start_string": "{{",
        }))
        .expect("args");
        assert!(r
            .render_syntax("x", "t", &bad.syntax(), &crate::Map::new())
            .is_err());
    }

    /// template target: output_encoding '' and windows-1252 were refused.
    #[test]
    fn windows_1252_output() {
        assert_eq!(
            to_cp1252("a€Ÿ\u{a0}ÿ").expect("encodes"),
            vec![b'a', 0x80, 0x9F, 0xA0, 0xFF]
        );
        assert!(to_cp1252("\u{0100}").is_err());
        let t: Template =
            serde_json::from_value(json!({"src": "a", "dest": "b", "output_encoding": ""}))
                .expect("args");
        assert!(t.output_encoding.as_deref() == Some(""));
    }

    /// template target: lstrip_blocks.j2 ends in `{% endfor %}\n`, whose
    /// newline trim_blocks ate; Ansible gives it back.
    #[test]
    fn trailing_newlines_of_the_template_are_kept() {
        let mut out = "    ".to_string();
        pad_trailing_newlines("{% endfor %}\n", &mut out);
        assert_eq!(out, "    \n");
        let mut out = "x\n\n".to_string();
        pad_trailing_newlines("{{ x }}\n", &mut out);
        assert_eq!(out, "x\n\n");
    }

    /// template target (issue 20494 case): `{% import 'qux' %}` and
    /// `{% include 'bar' %}` found nothing: no loader was set.
    #[test]
    fn include_and_import_find_templates_beside_the_template() {
        use crate::modules::testutil::TestRender;
        use crate::modules::Render;
        let dir = tempfile::tempdir().expect("tempdir");
        let tdir = dir.path().join("templates");
        std::fs::create_dir(&tdir).expect("mkdir");
        std::fs::write(tdir.join("qux"), "{% set wibble = 'WIBBLE' %}").expect("write");
        std::fs::write(tdir.join("bar"), "Goodbye {{ x }}").expect("write");
        let t: Template =
            serde_json::from_value(json!({"src": "main.j2", "dest": "b"})).expect("args");
        let syntax = crate::template::Syntax {
            search: include_search(&[dir.path().to_path_buf()], &tdir.join("main.j2")),
            ..t.syntax()
        };
        let r = TestRender::new(json!({"x": 1}));
        let out = r
            .render_syntax(
                "{% import 'qux' as qux with context %}{{ qux.wibble }} {% include 'bar' %}",
                "main.j2",
                &syntax,
                &crate::Map::new(),
            )
            .expect("renders");
        assert_eq!(out, "WIBBLE Goodbye 1");
    }

    #[tokio::test]
    #[ignore = "needs root: run scripts/test"]
    async fn renders_then_unchanged_and_diffs() {
        let h = Harness::with_vars(json!({ "port": 8080, "hosts": ["a", "b"] }));
        std::fs::write(
            h.root().join("app.conf.j2"),
            "port={{ port }}\n{% for x in hosts %}\nhost={{ x }}\n{% endfor %}\n",
        )
        .expect("write");
        let dest = h.path("app.conf");
        let args = json!({ "src": "app.conf.j2", "dest": dest, "mode": "0600", "owner": "nobody" });
        let want = "port=8080\nhost=a\nhost=b\n";

        let out = h
            .run::<Template>(args.clone(), true, true)
            .await
            .expect("check");
        assert!(out.changed);
        assert!(!std::path::Path::new(&dest).exists());
        assert_eq!(out.diff.expect("diff").after, want);

        let out = h
            .run::<Template>(args.clone(), false, false)
            .await
            .expect("run");
        assert!(out.changed);
        assert_eq!(std::fs::read_to_string(&dest).expect("read"), want);
        assert_eq!(mode_of(&dest), 0o600);
        assert_eq!(owner_of(&dest).0, 65534);
        assert_eq!(out.data["checksum"], json!(sha1_hex(want.as_bytes())));
        assert_eq!(out.data["src"], json!("app.conf.j2"));

        h.take_execs();
        let out = h.run::<Template>(args, false, true).await.expect("again");
        assert!(!out.changed);
        assert_eq!(h.take_execs(), 1);

        // The same template with other variables: a diff of the text.
        let h2 = Harness::with_vars(json!({ "port": 9090, "hosts": ["a"] }));
        std::fs::write(
            h2.root().join("files/t.j2"),
            "port={{ port }}\n{% for x in hosts %}\nhost={{ x }}\n{% endfor %}\n",
        )
        .expect("write");
        let out = h2
            .run::<Template>(json!({ "src": "t.j2", "dest": dest }), true, true)
            .await
            .expect("check");
        let diff = out.diff.expect("diff");
        assert_eq!(diff.before, want);
        assert_eq!(diff.after, "port=9090\nhost=a\n");
        assert_eq!(diff.before_header, dest);
    }

    #[tokio::test]
    async fn newline_sequence_and_errors() {
        let h = Harness::new();
        std::fs::write(h.root().join("t.j2"), "a\nb\n").expect("write");
        let dest = h.path("out");
        h.run::<Template>(
            json!({ "src": "t.j2", "dest": dest, "newline_sequence": "\r\n" }),
            false,
            false,
        )
        .await
        .expect("run");
        assert_eq!(std::fs::read(&dest).expect("read"), b"a\r\nb\r\n");
        let err = h
            .run::<Template>(json!({ "src": "missing.j2", "dest": dest }), false, false)
            .await
            .expect_err("missing");
        assert!(err.to_string().contains("could not find src"), "{err}");
        std::fs::write(h.root().join("bad.j2"), "{{ nope(").expect("write");
        assert!(h
            .run::<Template>(json!({ "src": "bad.j2", "dest": dest }), false, false)
            .await
            .is_err());
    }
}
