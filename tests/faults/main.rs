//! The fault suite: hostile input, failing networks and failing hosts, each
//! class of defect with a test that fails on the code before its fix (see
//! issue "Hardening"). Tests that need a lab start real OpenSSH nodes, each
//! on its own address block, as the end-to-end tests do.

// A test binary has no outside users: `pub` in its modules only says what
// sibling modules use.
#![allow(unreachable_pub)]

mod ansible_cfg;
mod apt_key;
mod apt_repository;
mod become_su;
mod behaviour;
mod cli_habits;
mod cluster_modules;
mod copy_remote_dir;
mod crlf_input;
mod deb822_repository;
mod debian_modules;
mod executor_semantics;
mod facts;
mod flow;
#[path = "../e2e/harness.rs"]
#[allow(dead_code)]
mod harness;
mod host_paths;
mod inject;
mod input;
mod iptables;
mod jump_hosts;
mod keywords;
mod known_hosts;
mod kubeconfig_local;
mod loader_includes;
mod local;
mod module_names;
mod mutable_inventory;
mod new_modules;
mod omitted_delegation;
mod output;
mod redaction;
mod result_warnings;
mod semantics;
mod shell;
mod slurp;
mod ssh_config;
mod templar;
mod textedit;
mod ufw;
mod unarchive;
mod uri;
mod user_keys;
mod vault;
mod vault_interop;
mod writes;
