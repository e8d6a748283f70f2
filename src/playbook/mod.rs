//! Playbooks and roles: raw YAML nodes turned into validated, typed plays,
//! blocks and tasks.
