#!/bin/sh
# The ufw scenario, run inside scripts/in-firewall-ns (never on a host's
# own firewall): the playbooks of this directory in order, each step's
# result (JSON) and the firewall after it saved in OUT.
#   scenario.sh drover|ansible OUT
# drover: $DROVER is its binary. ansible: $ANSIBLE_PLAYBOOK is
# ansible-playbook, community.general on $ANSIBLE_COLLECTIONS_PATH.
set -u
tool=$1
out=$2
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out/home"
cd "$out"
printf 'localhost ansible_connection=local\n' > hosts
export HOME="$out/home"
step() {
    name=$1
    play=$2
    shift 2
    case $tool in
    drover)
        "$DROVER" apply "$here/$play" -i hosts --output json -v "$@" > "$name.json" 2> "$name.err"
        ;;
    ansible)
        ANSIBLE_STDOUT_CALLBACK=ansible.posix.json ANSIBLE_NOCOLOR=1 \
            "$ANSIBLE_PLAYBOOK" -i hosts -e ansible_python_interpreter=/usr/bin/python3 \
            "$here/$play" "$@" > "$name.json" 2> "$name.err"
        ;;
    esac
    echo $? > "$name.rc"
    ufw status verbose > "$name.status" 2>&1
    iptables -S > "$name.iptables" 2>&1
    grep -h '^### tuple' /etc/ufw/user.rules /etc/ufw/user6.rules > "$name.rules" 2>/dev/null || true
}
step check-fresh site.yml --check
step apply site.yml
step again site.yml
step check-converged site.yml --check
step check-delete delete.yml --check
step delete delete.yml
step delete-again delete.yml
step check-reset reset.yml --check
step reset reset.yml
# ufw names its backups of the rules by the second and refuses a reset
# whose backup name exists: a second reset within the same second fails.
sleep 1
step reset-again reset.yml
