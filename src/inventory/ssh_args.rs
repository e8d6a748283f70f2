//! What drover honours from `ansible_ssh_common_args` and
//! `ansible_ssh_extra_args`: the OpenSSH command-line options that map onto
//! its own SSH client (known hosts file, host key checking, host key alias,
//! port, key, agent, user, proxy).

use std::path::PathBuf;

use crate::shlex;

/// Options found in an OpenSSH argument string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SshArgOptions {
    /// `-o UserKnownHostsFile=PATH` (the first file when several are given).
    pub known_hosts: Option<PathBuf>,
    /// `-o StrictHostKeyChecking=yes|no|accept-new|ask|off` as written.
    pub strict: Option<String>,
    /// `-p PORT` or `-o Port=PORT` (`-p` wins, as in ssh).
    pub port: Option<u16>,
    /// `-i KEY` or `-o IdentityFile=KEY`.
    pub identity: Option<PathBuf>,
    /// `-l USER` or `-o User=USER`.
    pub user: Option<String>,
    /// `-J HOSTS`, `-o ProxyJump=HOSTS` or `-o ProxyCommand=COMMAND`: the
    /// host is reached through another one (the first given wins, as in
    /// ssh; `none` is a direct connection).
    pub proxy: Option<ProxyOpt>,
    /// `-o IdentitiesOnly=yes|no`: only the identities named (files, or
    /// their agent keys), not every key the agent holds.
    pub identities_only: Option<bool>,
    /// `-o IdentityAgent=SOCKET` (`none`, `SSH_AUTH_SOCK`, `$VAR` or a
    /// path), unexpanded.
    pub identity_agent: Option<String>,
    /// `-o HostKeyAlias=NAME`: the name the host's key is looked up and
    /// recorded under in known_hosts.
    pub host_key_alias: Option<String>,
    /// `-F FILE`: the OpenSSH client configuration read instead of
    /// `~/.ssh/config` and `/etc/ssh/ssh_config` (`none`: no file).
    pub config_file: Option<PathBuf>,
    /// Everything else (`-C`, `-o ControlMaster=...`, unknown words),
    /// as written, so that the caller can warn that it is ignored.
    pub ignored: Vec<String>,
}

/// A way to reach a host through another one, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyOpt {
    /// `ProxyJump` / `-J`: `[user@]host[:port]` hops (or `ssh://` URIs),
    /// separated by commas.
    Jump(String),
    /// `ProxyCommand`, with its `%` tokens not yet expanded.
    Command(String),
}

impl std::fmt::Display for ProxyOpt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProxyOpt::Jump(hosts) => write!(f, "ProxyJump={hosts}"),
            ProxyOpt::Command(cmd) => write!(f, "ProxyCommand={cmd}"),
        }
    }
}

/// ssh flags without an argument that drover accepts without a word:
/// compression (`-C`, in Ansible's default `ssh_args`), which changes
/// nothing a task sees.
const QUIET_FLAGS: &str = "C";

/// ssh flags that take an argument (from ssh(1)).
const FLAGS_WITH_ARG: &str = "BbcDEeFIiJLlmOopQRSWw";

/// Parse an OpenSSH argument string, split like a shell would. The first
/// value of each option wins, as ssh does for `-o`; a `~/` prefix on paths
/// is expanded with `$HOME`.
pub fn ssh_args_options(args: &str) -> SshArgOptions {
    let mut out = SshArgOptions::default();
    let words: Vec<String> = match shlex::split(args, false) {
        Ok(words) => words.into_iter().map(|w| w.text).collect(),
        Err(_) => {
            out.ignored.push(args.to_string());
            return out;
        }
    };
    let mut cli_port: Option<u16> = None;
    let mut i = 0;
    while i < words.len() {
        let word = &words[i];
        i += 1;
        let Some(flags) = word.strip_prefix('-').filter(|f| !f.is_empty()) else {
            out.ignored.push(word.clone());
            continue;
        };
        for (at, flag) in flags.char_indices() {
            if !FLAGS_WITH_ARG.contains(flag) {
                if !QUIET_FLAGS.contains(flag) {
                    out.ignored.push(format!("-{flag}"));
                }
                continue;
            }
            // The argument is the rest of this word, or the next word.
            let rest = &flags[at + flag.len_utf8()..];
            let arg = if !rest.is_empty() {
                rest.to_string()
            } else if i < words.len() {
                i += 1;
                words[i - 1].clone()
            } else {
                out.ignored.push(word.clone());
                break;
            };
            match flag {
                'o' => option(&arg, &mut out),
                'p' => match arg.parse() {
                    Ok(p) => cli_port = Some(p),
                    Err(_) => out.ignored.push(format!("-p {arg}")),
                },
                'i' => {
                    if out.identity.is_none() {
                        out.identity = Some(expand_tilde(&arg));
                    }
                }
                'l' => {
                    if out.user.is_none() {
                        out.user = Some(arg);
                    }
                }
                'F' => {
                    if out.config_file.is_none() {
                        out.config_file = Some(expand_tilde(&arg));
                    }
                }
                'J' => {
                    if out.proxy.is_none() && !arg.eq_ignore_ascii_case("none") {
                        out.proxy = Some(ProxyOpt::Jump(arg));
                    }
                }
                other => out.ignored.push(format!("-{other} {arg}")),
            }
            break;
        }
    }
    if cli_port.is_some() {
        out.port = cli_port;
    }
    out
}

/// One `-o` value: `Key=Value`, `Key Value` or `Key = Value`.
fn option(arg: &str, out: &mut SshArgOptions) {
    let arg = arg.trim();
    let split = arg.find(|c: char| c == '=' || c.is_whitespace()).map(|at| {
        (
            &arg[..at],
            arg[at..].trim_start_matches(|c: char| c == '=' || c.is_whitespace()),
        )
    });
    let Some((key, value)) = split.filter(|(k, v)| !k.is_empty() && !v.is_empty()) else {
        out.ignored.push(format!("-o {arg}"));
        return;
    };
    let value = value.trim();
    match key.to_ascii_lowercase().as_str() {
        "userknownhostsfile" => {
            if out.known_hosts.is_none() {
                let first = value.split_whitespace().next().unwrap_or(value);
                out.known_hosts = Some(expand_tilde(first));
            }
        }
        "stricthostkeychecking" => {
            if out.strict.is_none() {
                out.strict = Some(value.to_string());
            }
        }
        "port" => match value.parse() {
            Ok(p) => {
                if out.port.is_none() {
                    out.port = Some(p);
                }
            }
            Err(_) => out.ignored.push(format!("-o {arg}")),
        },
        "identityfile" => {
            if out.identity.is_none() {
                out.identity = Some(expand_tilde(value));
            }
        }
        "user" => {
            if out.user.is_none() {
                out.user = Some(value.to_string());
            }
        }
        "identitiesonly" => match value.to_ascii_lowercase().as_str() {
            "yes" | "true" => {
                out.identities_only.get_or_insert(true);
            }
            "no" | "false" => {
                out.identities_only.get_or_insert(false);
            }
            _ => out.ignored.push(format!("-o {arg}")),
        },
        "identityagent" => {
            if out.identity_agent.is_none() {
                out.identity_agent = Some(value.to_string());
            }
        }
        "hostkeyalias" => {
            if out.host_key_alias.is_none() {
                out.host_key_alias = Some(value.to_string());
            }
        }
        "proxyjump" if !value.eq_ignore_ascii_case("none") => {
            if out.proxy.is_none() {
                out.proxy = Some(ProxyOpt::Jump(value.to_string()));
            }
        }
        "proxycommand" if !value.eq_ignore_ascii_case("none") => {
            if out.proxy.is_none() {
                out.proxy = Some(ProxyOpt::Command(value.to_string()));
            }
        }
        // OpenSSH's connection sharing, in Ansible's default `ssh_args`
        // (`-C -o ControlMaster=auto -o ControlPersist=60s`): drover keeps
        // one connection per host for the whole run anyway.
        "controlmaster" | "controlpersist" | "controlpath" | "compression" => {}
        // `none` is the direct connection drover makes anyway.
        "proxyjump" | "proxycommand" => {}
        _ => out.ignored.push(format!("-o {arg}")),
    }
}

fn expand_tilde(path: &str) -> PathBuf {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty());
    match (path, home) {
        ("~", Some(home)) => PathBuf::from(home),
        (p, Some(home)) if p.starts_with("~/") => PathBuf::from(home).join(&p[2..]),
        (p, _) => PathBuf::from(p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_hosts_and_strict() {
        let o =
            ssh_args_options("-o UserKnownHostsFile=/tmp/kh -o StrictHostKeyChecking=accept-new");
        assert_eq!(o.known_hosts, Some(PathBuf::from("/tmp/kh")));
        assert_eq!(o.strict.as_deref(), Some("accept-new"));
        assert!(o.ignored.is_empty(), "{:?}", o.ignored);
    }

    #[test]
    fn attached_spaced_and_quoted_forms() {
        let o = ssh_args_options(
            r#"-oStrictHostKeyChecking=no "-o" "UserKnownHostsFile /dev/null /x" -p2222 -i '/k ey' -l admin"#,
        );
        assert_eq!(o.strict.as_deref(), Some("no"));
        assert_eq!(o.known_hosts, Some(PathBuf::from("/dev/null")));
        assert_eq!(o.port, Some(2222));
        assert_eq!(o.identity, Some(PathBuf::from("/k ey")));
        assert_eq!(o.user.as_deref(), Some("admin"));
    }

    #[test]
    fn first_o_wins_and_dash_p_beats_o_port() {
        let o = ssh_args_options(
            "-o Port=1 -o Port=2 -o StrictHostKeyChecking=yes -o stricthostkeychecking=no",
        );
        assert_eq!(o.port, Some(1));
        assert_eq!(o.strict.as_deref(), Some("yes"));
        let o = ssh_args_options("-o Port=1 -p 2");
        assert_eq!(o.port, Some(2));
    }

    #[test]
    fn combined_flags_and_ignored_options() {
        let o = ssh_args_options(
            "-C -tt -4p 2200 -J bastion -o ProxyCommand='nc %h %p' -o ControlMaster=auto",
        );
        assert_eq!(o.port, Some(2200));
        // The first way to a jump host is the one named; flags without
        // an argument are ignored too, and said so.
        assert_eq!(o.proxy, Some(ProxyOpt::Jump("bastion".into())));
        assert_eq!(o.ignored, ["-t", "-t", "-4"]);
        let o = ssh_args_options("-o ProxyJump=none -o ProxyCommand='ssh -W %h:%p gw'");
        assert_eq!(o.proxy, Some(ProxyOpt::Command("ssh -W %h:%p gw".into())));
    }

    #[test]
    fn ansibles_default_ssh_args_are_accepted_without_a_warning() {
        let o = ssh_args_options("-C -o ControlMaster=auto -o ControlPersist=60s");
        assert!(o.ignored.is_empty(), "{:?}", o.ignored);
        let o = ssh_args_options("-o ControlPath=/tmp/%C -o Compression=yes");
        assert!(o.ignored.is_empty(), "{:?}", o.ignored);
    }

    /// IdentitiesOnly, IdentityAgent and HostKeyAlias were reported as
    /// ignored in the arguments while honoured from ~/.ssh/config.
    #[test]
    fn identities_only_agent_and_host_key_alias() {
        let o = ssh_args_options(
            "-o IdentitiesOnly=yes -o IdentitiesOnly=no -o IdentityAgent=none \
             -o 'HostKeyAlias pi-key' -o IdentityAgent=/run/agent",
        );
        assert_eq!(o.identities_only, Some(true));
        assert_eq!(o.identity_agent.as_deref(), Some("none"));
        assert_eq!(o.host_key_alias.as_deref(), Some("pi-key"));
        assert!(o.ignored.is_empty(), "{:?}", o.ignored);
        let o = ssh_args_options("-o IdentitiesOnly=maybe");
        assert_eq!(o.identities_only, None);
        assert_eq!(o.ignored, ["-o IdentitiesOnly=maybe"]);
    }

    #[test]
    fn dash_f_names_the_ssh_config_file() {
        let o = ssh_args_options("-F /etc/drover/ssh_config -F /other");
        assert_eq!(o.config_file, Some(PathBuf::from("/etc/drover/ssh_config")));
        assert!(o.ignored.is_empty(), "{:?}", o.ignored);
        let o = ssh_args_options("-Fnone");
        assert_eq!(o.config_file, Some(PathBuf::from("none")));
    }

    #[test]
    fn tilde_is_expanded() {
        let o = ssh_args_options("-i ~/.ssh/pi");
        let home = std::env::var("HOME").unwrap_or_default();
        if !home.is_empty() {
            assert_eq!(o.identity, Some(PathBuf::from(home).join(".ssh/pi")));
        }
    }

    #[test]
    fn empty_and_broken() {
        assert_eq!(ssh_args_options(""), SshArgOptions::default());
        assert_eq!(ssh_args_options("-o 'Port=1").ignored, ["-o 'Port=1"]);
    }
}
