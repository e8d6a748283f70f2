# pyinfra inventory for the benchmark: the hosts of the lab's Ansible
# inventory (YAML; its path in BENCH_INVENTORY), so that pyinfra, drover and
# ansible-playbook target the same nodes with the same variables.
#
#   BENCH_INVENTORY=/tmp/drover-bench-lab/inventory.yml \
#       pyinfra benches/pyinfra/inventory.py benches/pyinfra/mixed.py
#
# Each host's data are its Ansible variables, merged as Ansible does (group
# `all`, then groups from parents to children, then the host's own), plus
# pyinfra's connection settings taken from them: ssh_hostname (ansible_host),
# ssh_user, ssh_key, ssh_known_hosts_file (the UserKnownHostsFile of
# ansible_ssh_common_args), strict host key checking, and sudo for every
# operation. Groups are Ansible's, a host belonging to a group through its
# children too. Module-level names starting with `_` are not groups to pyinfra.
import os as _os
import shlex as _shlex

import yaml as _yaml

_PATH = _os.environ.get("BENCH_INVENTORY")
if not _PATH:
    raise RuntimeError("BENCH_INVENTORY must name the lab's inventory.yml")

with open(_PATH, encoding="utf-8") as _f:
    _ROOT = _yaml.safe_load(_f)

_hosts = {}  # name -> host vars, in inventory order
_members = {}  # group -> names of hosts listed in it directly
_children = {}  # group -> child groups
_group_vars = {}  # group -> vars
_depth = {}  # group -> distance from `all`


def _walk(name, group, depth):
    group = group or {}
    _depth[name] = max(depth, _depth.get(name, 0))
    _group_vars.setdefault(name, {}).update(group.get("vars") or {})
    for host, host_vars in (group.get("hosts") or {}).items():
        _hosts.setdefault(host, {}).update(host_vars or {})
        _members.setdefault(name, [])
        if host not in _members[name]:
            _members[name].append(host)
    for child, child_group in (group.get("children") or {}).items():
        _children.setdefault(name, []).append(child)
        _walk(child, child_group, depth + 1)


_walk("all", _ROOT["all"], 0)


def _group_hosts(name, seen=()):
    names = list(_members.get(name, []))
    for child in _children.get(name, []):
        if child not in seen:
            names += [h for h in _group_hosts(child, seen + (name,)) if h not in names]
    return names


_host_groups = {h: [] for h in _hosts}
for _g in _depth:
    for _h in _group_hosts(_g):
        _host_groups[_h].append(_g)


def _host_data(name):
    data = {}
    # Ansible's precedence: shallower groups first, ties by name, host last.
    for group in sorted(_host_groups[name], key=lambda g: (_depth[g], g)):
        data.update(_group_vars.get(group, {}))
    data.update(_hosts[name])
    data["inventory_hostname"] = name
    known_hosts = None
    for option in _shlex.split(data.get("ansible_ssh_common_args", "")):
        if option.startswith("UserKnownHostsFile="):
            known_hosts = option.split("=", 1)[1]
    data.update(
        ssh_hostname=data.get("ansible_host", name),
        ssh_port=int(data.get("ansible_port", 22)),
        ssh_user=data["ansible_user"],
        ssh_key=data["ansible_ssh_private_key_file"],
        ssh_known_hosts_file=known_hosts,
        ssh_strict_host_key_checking="yes",
        # The lab key only: no agent, no ~/.ssh/id_* keys.
        ssh_allow_agent=False,
        ssh_look_for_keys=False,
        _sudo=True,
    )
    return data


all = ([(_h, _host_data(_h)) for _h in _hosts], {})  # noqa: A001 (pyinfra's name)
globals().update({_g: _group_hosts(_g) for _g in _depth if _g != "all"})
