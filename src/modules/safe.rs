//! Checks on argument values that end up inside a command line or a
//! line-based config file, where quoting alone cannot keep their meaning:
//! a name a tool would read as an option (`-r`, `--now`), or a newline that
//! starts a second line in `/etc/fstab` or a sysctl file. Each check names
//! the argument it refuses.

use super::ModuleError;

/// Refuse `value` when it holds a line break or another control character
/// (a tab is allowed: it stays inside its line), as it would add lines to
/// the file it is written into.
pub fn one_line(arg: &str, value: &str) -> Result<(), ModuleError> {
    match value.chars().find(|c| c.is_control() && *c != '\t') {
        Some(c) => Err(ModuleError::Args(format!(
            "{arg} must be a single line without control characters, found {c:?} in {value:?}"
        ))),
        None => Ok(()),
    }
}

/// Refuse `value` when a command would read it as an option (a leading
/// `-`), or when it is empty.
pub fn not_option(arg: &str, value: &str) -> Result<(), ModuleError> {
    if value.is_empty() {
        return Err(ModuleError::Args(format!("{arg} cannot be empty")));
    }
    if value.starts_with('-') {
        return Err(ModuleError::Args(format!(
            "{arg} cannot start with '-' ({value:?} would be read as an option)"
        )));
    }
    Ok(())
}

/// A name passed as one word to a tool and written into its files (user,
/// group, package, unit, sysctl key): one line, no whitespace, not an
/// option.
pub fn name(arg: &str, value: &str) -> Result<(), ModuleError> {
    not_option(arg, value)?;
    one_line(arg, value)?;
    if value.chars().any(char::is_whitespace) {
        return Err(ModuleError::Args(format!(
            "{arg} cannot contain whitespace ({value:?})"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::FileTypeExt;

    use serde_json::json;

    use super::*;
    use crate::modules::testutil::Harness;
    use crate::modules::{
        apt, authorized_key, blockinfile, copy, group, lineinfile, mount, reboot, sysctl, systemd,
        template, user, wait_for, Module,
    };
    use crate::Value;

    /// Run `M` (in check mode when `check`) and expect an argument error
    /// naming `arg`, found before any command ran.
    async fn refused<M: Module>(args: Value, check: bool, arg: &str) {
        let h = Harness::new();
        let err = h
            .run::<M>(args.clone(), check, false)
            .await
            .err()
            .unwrap_or_else(|| panic!("{}: {args} was accepted", M::NAME))
            .to_string();
        assert!(err.contains(arg), "{}: {err}", M::NAME);
        assert_eq!(h.take_execs(), 0, "{}: {args} ran a command", M::NAME);
    }

    #[test]
    fn refuses_line_breaks_and_options() {
        assert!(one_line("value", "1\t2 3").is_ok());
        for bad in ["1\nkernel.x=1", "1\r", "a\0b"] {
            let e = one_line("value", bad).expect_err(bad).to_string();
            assert!(e.contains("value must be a single line"), "{e}");
        }
        assert!(not_option("name", "--now").is_err());
        assert!(not_option("name", "").is_err());
        assert!(not_option("name", "nginx").is_ok());
        assert!(name("name", "a b").is_err());
        assert!(name("name", "-r").is_err());
        assert!(name("name", "www-data").is_ok());
    }

    #[tokio::test]
    async fn sysctl_newline_in_value_or_name_is_refused() {
        let h = Harness::new();
        let file = h.path("sysctl.conf");
        std::fs::write(&file, "a.b=1\n").expect("write");
        for (args, arg) in [
            (
                json!({"name": "vm.swappiness", "value": "10\nkernel.modprobe=/tmp/x"}),
                "value",
            ),
            (
                json!({"name": "vm.swappiness\nkernel.modprobe", "value": "1"}),
                "name",
            ),
            (
                json!({"name": "vm.swappiness=1 kernel.x", "value": "1"}),
                "name",
            ),
            (json!({"name": "-w", "value": "1"}), "name"),
            (json!({"name": "net/../../etc/x", "value": "1"}), "name"),
        ] {
            let mut args = args;
            args["sysctl_file"] = json!(file);
            args["reload"] = json!(false);
            refused::<sysctl::Sysctl>(args, false, arg).await;
        }
        assert_eq!(std::fs::read_to_string(&file).expect("read"), "a.b=1\n");
        // Tabs stay inside the line (tcp_rmem has them).
        let out = h
            .run::<sysctl::Sysctl>(
                json!({"name": "net.ipv4.tcp_rmem", "value": "4096\t87380", "sysctl_file": file, "reload": false}),
                false,
                false,
            )
            .await
            .expect("tab accepted");
        assert!(out.changed);
    }

    #[tokio::test]
    async fn fstab_fields_cannot_add_lines() {
        let h = Harness::new();
        let fstab = h.path("fstab");
        for arg in ["dump", "passno"] {
            let mut args = json!({"path": "/mnt/x", "src": "tmpfs", "fstype": "tmpfs",
                                  "state": "present", "fstab": fstab});
            args[arg] = json!("0\n/dev/sdb1 / ext4 defaults 0");
            refused::<mount::Mount>(args, false, arg).await;
        }
        refused::<mount::Mount>(
            json!({"path": "/mnt/x", "src": "#x", "fstype": "tmpfs", "state": "present",
                   "fstab": fstab}),
            false,
            "src",
        )
        .await;
        assert!(!std::path::Path::new(&fstab).exists());
        // Blanks and newlines in the other fields are escaped as fstab(5) does.
        h.run::<mount::Mount>(
            json!({"path": "/mnt/a b", "src": "x\ny z", "fstype": "tmpfs", "opts": "ro\tx",
                   "state": "present", "fstab": fstab}),
            false,
            false,
        )
        .await
        .expect("escaped");
        let text = std::fs::read_to_string(&fstab).expect("fstab");
        assert_eq!(text, "x\\012y\\040z /mnt/a\\040b tmpfs ro\\011x 0 0\n");
    }

    #[tokio::test]
    async fn blockinfile_marker_and_key_options_stay_on_one_line() {
        let h = Harness::new();
        let f = h.path("b");
        refused::<blockinfile::BlockInFile>(
            json!({"path": f, "block": "x", "create": true, "marker": "# {mark}\nevil"}),
            false,
            "marker",
        )
        .await;
        refused::<blockinfile::BlockInFile>(
            json!({"path": f, "block": "x", "create": true, "marker_end": "E\nevil"}),
            false,
            "marker",
        )
        .await;
        let key =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE3bGKVRRzV5+3V3lk5iAkeW4X6fP4H3fV8gq2p4wD8n";
        refused::<authorized_key::AuthorizedKey>(
            json!({"user": "root", "key": key, "path": h.path("ak"),
                   "key_options": "no-pty\nssh-ed25519 AAAAevil"}),
            false,
            "key_options",
        )
        .await;
        refused::<authorized_key::AuthorizedKey>(
            json!({"user": "root", "key": key, "path": h.path("ak"), "comment": "a\nb"}),
            false,
            "comment",
        )
        .await;
        refused::<authorized_key::AuthorizedKey>(
            json!({"user": "--help", "key": key, "path": h.path("ak")}),
            false,
            "user",
        )
        .await;
        assert!(!std::path::Path::new(&f).exists());
    }

    /// Names a tool would read as options are refused, in check mode so
    /// that the code before the fix could not change this machine.
    #[tokio::test]
    async fn names_that_read_as_options_are_refused() {
        refused::<user::User>(json!({"name": "-r"}), true, "name").await;
        refused::<user::User>(json!({"name": "bob", "group": "-g"}), true, "group").await;
        refused::<user::User>(json!({"name": "bob", "shell": "/bin/sh\nx"}), true, "shell").await;
        refused::<user::User>(json!({"name": "bob", "home": "/h:0:0"}), true, "home").await;
        refused::<group::Group>(json!({"name": "--help"}), true, "name").await;
        refused::<apt::Apt>(json!({"name": ["curl", "-y"]}), true, "name").await;
        refused::<apt::Apt>(json!({"name": "a b"}), true, "name").await;
        refused::<systemd::Systemd>(json!({"name": "--now", "state": "started"}), true, "name")
            .await;
        refused::<systemd::Service>(json!({"name": "a\nb", "state": "started"}), true, "name")
            .await;
        // Traditional netcat runs the program given with -e.
        refused::<wait_for::WaitFor>(
            json!({"host": "-e/bin/sh", "port": 9, "timeout": 1}),
            true,
            "host",
        )
        .await;
        refused::<reboot::Reboot>(json!({"msg": "-c"}), true, "msg").await;
    }

    /// What a rename over a device or FIFO would do: replace it with a
    /// regular file. Every writing module refuses, leaving it as it was.
    #[tokio::test]
    async fn a_fifo_or_device_dest_is_refused_and_kept() {
        let h = Harness::new();
        let fifo = h.path("fifo");
        let dev = h.path("null");
        let made = |cmd: &str, args: &[&str]| {
            std::process::Command::new(cmd)
                .args(args)
                .status()
                .is_ok_and(|s| s.success())
        };
        assert!(made("mkfifo", &[&fifo]));
        // Making a device needs root (CI runs as root).
        let have_dev = made("mknod", &[&dev, "c", "1", "3"]);
        std::fs::write(h.root().join("files/t.j2"), "x").expect("template");
        for dest in [&fifo, &dev]
            .into_iter()
            .filter(|d| have_dev || **d == fifo)
        {
            let runs: Vec<(&str, Result<crate::modules::Outcome, ModuleError>)> = vec![
                (
                    "copy",
                    h.run::<copy::Copy>(json!({"content": "x", "dest": dest}), false, false)
                        .await,
                ),
                (
                    "template",
                    h.run::<template::Template>(json!({"src": "t.j2", "dest": dest}), false, false)
                        .await,
                ),
                (
                    "lineinfile",
                    h.run::<lineinfile::LineInFile>(
                        json!({"path": dest, "line": "x"}),
                        false,
                        false,
                    )
                    .await,
                ),
                (
                    "blockinfile",
                    h.run::<blockinfile::BlockInFile>(
                        json!({"path": dest, "block": "x"}),
                        false,
                        false,
                    )
                    .await,
                ),
            ];
            for (name, r) in runs {
                let err = r
                    .err()
                    .unwrap_or_else(|| panic!("{name} replaced {dest}"))
                    .to_string();
                assert!(err.contains("not a regular file"), "{name}: {err}");
            }
            let t = std::fs::symlink_metadata(dest)
                .expect("still there")
                .file_type();
            assert!(t.is_fifo() || t.is_char_device(), "{dest} was replaced");
        }
        // A symlink dest is as before: copy (follow: no) replaces the link,
        // never what it points to; lineinfile writes through it, so refuses.
        let link = h.path("link");
        std::os::unix::fs::symlink(&fifo, &link).expect("symlink");
        h.run::<copy::Copy>(json!({"content": "x", "dest": link}), false, false)
            .await
            .expect("the link is replaced");
        assert_eq!(std::fs::read_to_string(&link).expect("file"), "x");
        std::os::unix::fs::symlink(&fifo, h.path("link2")).expect("symlink");
        let err = h
            .run::<lineinfile::LineInFile>(
                json!({"path": h.path("link2"), "line": "x"}),
                false,
                false,
            )
            .await
            .expect_err("through the link")
            .to_string();
        assert!(err.contains("not a regular file"), "{err}");
        let t = std::fs::symlink_metadata(&fifo).expect("fifo").file_type();
        assert!(t.is_fifo());
        let left: Vec<_> = std::fs::read_dir(h.root())
            .expect("dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".drover"))
            .collect();
        assert!(left.is_empty(), "temp files left: {left:?}");
    }

    /// Ansible runs `validate` as words, without a shell: a `;` in it is an
    /// argument, not a second command.
    #[tokio::test]
    async fn validate_is_words_not_shell_text() {
        let h = Harness::new();
        let pwned = h.path("PWNED");
        for (name, r) in [
            (
                "copy",
                h.run::<copy::Copy>(
                    json!({"content": "x", "dest": h.path("c"),
                           "validate": format!("test -f %s; touch {pwned}")}),
                    false,
                    false,
                )
                .await,
            ),
            (
                "lineinfile",
                h.run::<lineinfile::LineInFile>(
                    json!({"path": h.path("l"), "line": "x", "create": true,
                           "validate": format!("test -f %s; touch {pwned}")}),
                    false,
                    false,
                )
                .await,
            ),
        ] {
            let err = r
                .err()
                .unwrap_or_else(|| panic!("{name}: validated"))
                .to_string();
            assert!(err.contains("validate"), "{name}: {err}");
            assert!(!std::path::Path::new(&pwned).exists(), "{name} ran a shell");
        }
        assert!(!std::path::Path::new(&h.path("c")).exists());
        let ok = h
            .run::<copy::Copy>(
                json!({"content": "x", "dest": h.path("c"), "validate": "grep -q 'x' %s"}),
                false,
                false,
            )
            .await
            .expect("valid");
        assert!(ok.changed);
    }
}
