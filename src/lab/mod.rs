//! The lab: real OpenSSH servers on loopback addresses, one per node.
