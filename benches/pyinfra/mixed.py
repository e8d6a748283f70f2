# pyinfra (3.10) version of benches/playbooks/mixed.yml, for scripts/bench:
# the same 30 tasks and one handler, in the same order, with sudo (`_sudo` in
# the inventory's host data), leaving byte-identical files with the same
# modes and owners, so that pyinfra changes nothing on nodes drover converged
# and drover changes nothing after pyinfra.
#
#   BENCH_INVENTORY=/tmp/drover-bench-lab/inventory.yml .venv/bench/bin/pyinfra \
#       -y --parallel 8 benches/pyinfra/inventory.py benches/pyinfra/mixed.py
#
# The templates are the playbook's (benches/playbooks/templates/*.j2), rendered
# with the variables Ansible would give them (play vars, inventory_hostname,
# ansible_host, groups, hostvars) and Ansible's trim_blocks.
#
# Where pyinfra differs from the Ansible tasks (results on the lab the same):
# - lineinfile/blockinfile `create: true, mode: ...`: files.line and files.block
#   cannot create a file with a mode (files.block creates it 0600 from a
#   mktemp file), so a files.file op creates the empty file with its mode
#   first: 34 operations for 30 tasks + 1 handler.
# - copy `force: false` (listen.conf): no such option on files.put; the op runs
#   only if the file does not exist (`_if`, checked when the op executes).
# - command/shell `creates:`: server.shell with an `_if` on the File fact; the
#   guard is any path type there, as in Ansible.
# - replace `^backlog \d+$` -> `backlog 1024`: Ansible compares the result and
#   finds nothing to change; files.replace runs sed whenever the pattern
#   matches, so the pattern (ERE) leaves out `backlog 1024` itself: the same
#   edits, idempotent. (\d is also not POSIX: [0-9].)
# - lineinfile edits the last matching line; files.line's sed edits all.
#   lineinfile appends a newline to a file that lacks a final one before
#   adding a line; files.line does not (its ensure_newline also adds an empty
#   line to an empty file, as /etc/environment is on the lab), so neither does
#   this deploy: same bytes on the lab, not on a file without a final newline.
# - regexes are POSIX (grep/sed on the node), not Python's: the same here.
# - the handler is an op at the end with `_if` on the main config's result,
#   as Ansible runs handlers at the end of the play.
# - authorized_key: server.user_authorized_keys also ensures ~/.ssh (0700) and
#   authorized_keys (0600) owned by the user, as Ansible does; a key is
#   appended if missing, as a line of its own.
# - Parent directories are not created (create_remote_dir=False), as Ansible
#   does not create them either.
# - files.put/template replace a changed file in place (`cp` over it, same
#   inode) where Ansible renames a temporary file over it: same bytes, mode
#   and owner.
# - file `state: absent` removes a directory too: files.file with force (no
#   backup).
import os
from io import StringIO

from pyinfra import host, inventory
from pyinfra.facts.files import File
from pyinfra.operations import files, server

APP_DIR = "/opt/bench"
APP_PORT = 8080
APP_WORKERS = 4
APP_FEATURES = ["metrics", "tracing", "gzip"]
OPS_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops@example"
CI_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAq2B7t9YG7xruDi7dw+Lj7JBBxKbPYo4CiHA2qAn06G ci@example"

TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "playbooks", "templates")

# What Ansible's templates see: the play's vars and the inventory's.
_hosts = list(inventory)
_groups = {name: [h.name for h in members] for name, members in inventory.groups.items()}
_groups["all"] = [h.name for h in _hosts]
TEMPLATE_VARS = dict(
    inventory_hostname=host.name,
    ansible_host=host.data.ansible_host,
    groups=_groups,
    hostvars={h.name: h.data.dict() for h in _hosts},
    app_dir=APP_DIR,
    app_port=APP_PORT,
    app_workers=APP_WORKERS,
    app_features=APP_FEATURES,
)


def template(name, src, dest, **kwargs):
    files.template(
        name=name,
        src=os.path.join(TEMPLATES, src),
        dest=dest,
        create_remote_dir=False,
        # Ansible's defaults; pyinfra already keeps the trailing newline.
        jinja_env_kwargs={"trim_blocks": True},
        **kwargs,
        **TEMPLATE_VARS,
    )


def missing(path):
    """An `_if` guard: true when nothing is at path, checked when the op runs."""
    return lambda: host.get_fact(File, path=path) is None


# file: directories
files.directory(name="app directory", path=APP_DIR, mode="0755")
files.directory(name="conf.d directory", path=f"{APP_DIR}/conf.d", mode="0755")
files.directory(name="log directory", path=f"{APP_DIR}/log", user="root", group="root", mode="0750")
files.directory(
    name="data directory owned by admin",
    path=f"{APP_DIR}/data",
    user="admin",
    group="admin",
    mode="0700",
)

# copy: inline content
main_config = files.put(
    name="main config",
    src=StringIO(f"name={host.name}\nport={APP_PORT}\n"),
    dest=f"{APP_DIR}/app.conf",
    mode="0644",
    create_remote_dir=False,
)
files.put(
    name="base drop-in",
    src=StringIO("log_level=info\n"),
    dest=f"{APP_DIR}/conf.d/10-base.conf",
    mode="0644",
    create_remote_dir=False,
)
files.put(
    name="extra drop-in, root only",
    src=StringIO("secret_ref=vault:app\n"),
    dest=f"{APP_DIR}/conf.d/20-extra.conf",
    user="root",
    group="root",
    mode="0600",
    create_remote_dir=False,
)
files.put(
    name="listen file, written once",
    src=StringIO("listen 127.0.0.1\nbacklog 128\n"),
    dest=f"{APP_DIR}/listen.conf",
    create_remote_dir=False,
    _if=missing(f"{APP_DIR}/listen.conf"),
)
files.put(
    name="sysctl drop-in",
    src=StringIO("vm.swappiness = 10\n"),
    dest="/etc/sysctl.d/90-bench.conf",
    mode="0644",
    create_remote_dir=False,
)

# template
template("app.ini from a template", "app.ini.j2", f"{APP_DIR}/app.ini", mode="0640")
template("hosts list from a template", "hosts.j2", f"{APP_DIR}/hosts", mode="0644")
template(
    "motd from a template", "motd.j2", "/etc/motd.bench", user="root", group="root", mode="0644"
)
template("unit file from a template", "unit.j2", "/etc/systemd/system/bench.service", mode="0644")

# lineinfile
files.file(
    name="port line (create)", path=f"{APP_DIR}/line.conf", mode="0600", create_remote_dir=False
)
files.line(name="port line", path=f"{APP_DIR}/line.conf", line="^port=", replace=f"port={APP_PORT}")
files.line(
    name="workers line",
    path=f"{APP_DIR}/line.conf",
    line="^workers=",
    replace=f"workers={APP_WORKERS}",
)
files.line(
    name="environment line",
    path="/etc/environment",
    line="^BENCH_HOME=",
    replace=f"BENCH_HOME={APP_DIR}",
)
files.line(name="no debug line", path=f"{APP_DIR}/line.conf", line="^debug=", present=False)

# blockinfile
files.file(
    name="managed block (create)", path=f"{APP_DIR}/block.conf", mode="0644", create_remote_dir=False
)
files.block(
    name="managed block",
    path=f"{APP_DIR}/block.conf",
    content=["a=1", "b=2"],
    marker="# {mark} ANSIBLE MANAGED BLOCK",
)
files.file(
    name="hosts block with its own marker (create)",
    path=f"{APP_DIR}/hosts.extra",
    create_remote_dir=False,
)
files.block(
    name="hosts block with its own marker",
    path=f"{APP_DIR}/hosts.extra",
    content=["10.0.0.1 registry", "10.0.0.2 mirror"],
    marker="# {mark} BENCH HOSTS",
)

# replace
files.replace(
    name="listen on all addresses",
    path=f"{APP_DIR}/listen.conf",
    text=r"^listen 127\.0\.0\.1$",
    replace="listen 0.0.0.0",
)
files.replace(
    name="larger backlog",
    path=f"{APP_DIR}/listen.conf",
    # Any number but 1024.
    text=r"^backlog ([0-9]{1,3}|[0-9]{5,}|0[0-9]{3}|[2-9][0-9]{3}|1[1-9][0-9]{2}|10[013-9][0-9]|102[0-35-9])$",
    replace="backlog 1024",
    extended_regex=True,
)

# file: touch, link, absent (a touch that preserves times: create if missing)
files.file(name="stamp", path=f"{APP_DIR}/stamp", create_remote_dir=False)
files.file(name="log file", path=f"{APP_DIR}/log/app.log", mode="0640", create_remote_dir=False)
files.link(
    name="current config link",
    path=f"{APP_DIR}/current.conf",
    target=f"{APP_DIR}/app.conf",
    create_remote_dir=False,
)
files.link(
    name="unit link",
    path=f"{APP_DIR}/bench.service",
    target="/etc/systemd/system/bench.service",
    create_remote_dir=False,
)
files.file(
    name="nothing old", path=f"{APP_DIR}/old", present=False, force=True, force_backup=False
)

# authorized_key
server.user_authorized_keys(name="operator key", user="admin", public_keys=[OPS_KEY])
server.user_authorized_keys(name="CI key", user="admin", public_keys=[CI_KEY])

# guarded commands
server.shell(
    name="command guarded by creates",
    commands=[f"touch {APP_DIR}/created"],
    _if=missing(f"{APP_DIR}/created"),
)
server.shell(
    name="shell guarded by creates",
    commands=[f"hostname > {APP_DIR}/hostname.out"],
    _if=missing(f"{APP_DIR}/hostname.out"),
)

# handler: restart app
files.put(
    name="restart app",
    src=StringIO("restarted\n"),
    dest=f"{APP_DIR}/restarted",
    create_remote_dir=False,
    _if=main_config.did_change,
)
