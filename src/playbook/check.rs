//! Static checks before any connection: template syntax, and variables that
//! nothing in the inventory, playbook or roles could define.
