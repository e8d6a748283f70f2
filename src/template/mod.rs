//! Jinja2 templating with minijinja, behaving like Ansible's for what
//! playbooks use.

pub mod filters;
