//! drover: an agentless node provisioner over SSH. It reads Ansible-style
//! inventories and Ansible-syntax playbooks and roles and converges hosts over
//! plain SSH, many at once, with nothing installed on the targets but a POSIX
//! shell and coreutils.
//!
//! Layers, in the order a run passes through them: [`inventory`] and
//! [`playbook`] load and validate input (errors carry file:line:col),
//! [`template`] renders Jinja2 expressions, [`executor`] runs plays over
//! [`transport`] connections using [`modules`], and [`report`] renders the
//! events. [`lab`] starts local OpenSSH nodes to try playbooks on.
//! `ARCHITECTURE.md` at the repository's root draws the data flow of one
//! `drover apply`.

pub mod cli;
pub mod config;
pub mod error;
pub mod executor;
#[cfg(test)]
mod input_fuzz;
pub mod interrupt;
pub mod inventory;
pub mod lab;
pub mod localfs;
pub mod modules;
pub mod playbook;
pub mod report;
pub mod secret;
pub mod shlex;
pub mod template;
pub mod transport;
pub mod vault;
pub mod yaml;

/// The data type of variables, facts and module results.
pub type Value = serde_json::Value;
/// A mapping of variables.
pub type Map = serde_json::Map<String, Value>;
