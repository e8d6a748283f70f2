#!/bin/sh
# TEST DOUBLE: stands in for the get.k3s.io install script (air-gapped mode) in drover's lab; never ship it.
#
# Interface and behaviour of the real script, for an air-gapped install:
#   INSTALL_K3S_SKIP_DOWNLOAD=true  the binary must already be /usr/local/bin/k3s
#                                   (this double never downloads: anything else fails)
#   INSTALL_K3S_VERSION             recorded only, as the real script does when skipping the download
#   INSTALL_K3S_EXEC                "server ...", "agent ..." or flags (then server, or agent if K3S_URL)
#   K3S_URL, K3S_TOKEN, K3S_TOKEN_FILE, other K3S_*   written to the unit's .env file (0600)
#   INSTALL_K3S_SKIP_ENABLE, INSTALL_K3S_SKIP_START, INSTALL_K3S_FORCE_RESTART
# It links kubectl/crictl/ctr to k3s, writes k3s[-agent].service, its .env and
# k3s[-agent]-uninstall.sh, enables the unit and restarts it through systemctl
# -- unless the binary, unit and .env are byte-for-byte what they were before
# ("No change detected so skipping service start"), as the real script does.
# Paths are resolved under $K3S_DOUBLE_ROOT (default /) for the double's tests;
# the files written name the node's own paths.
set -e

R="${K3S_DOUBLE_ROOT:-/}"
R="${R%/}"
BIN_DIR=/usr/local/bin
SYSTEMD_DIR=/etc/systemd/system

info() { echo "[INFO]  $*"; }
fatal() { echo "[ERROR]  $*" >&2; exit 1; }

hashes() {
    sha256sum "$R$BIN_DIR/k3s" "$R$SYSTEMD_DIR/$SERVICE" "$R$SYSTEMD_DIR/$SERVICE.env" 2>&1 || true
}

# --- which command and unit (setup_env in the real script)
case "$INSTALL_K3S_EXEC" in
    server* | agent*) CMD_K3S_EXEC="$INSTALL_K3S_EXEC" ;;
    *)
        if [ -n "$K3S_URL" ]; then CMD="agent"; else CMD="server"; fi
        CMD_K3S_EXEC="$CMD${INSTALL_K3S_EXEC:+ $INSTALL_K3S_EXEC}"
        ;;
esac
CMD_K3S="${CMD_K3S_EXEC%% *}"
if [ "$CMD_K3S" = agent ]; then
    if [ -n "$K3S_URL" ] && [ -z "$K3S_TOKEN" ] && [ -z "$K3S_TOKEN_FILE" ]; then
        fatal "Defaulted k3s exec command to 'agent' because K3S_URL is defined, but K3S_TOKEN, K3S_TOKEN_FILE or K3S_CLUSTER_SECRET is not defined."
    fi
    SYSTEM_NAME=k3s-agent
else
    SYSTEM_NAME=k3s
fi
SERVICE="$SYSTEM_NAME.service"
UNINSTALL="$BIN_DIR/$SYSTEM_NAME-uninstall.sh"
[ -n "$INSTALL_K3S_VERSION" ] && info "Using $INSTALL_K3S_VERSION as release"
PRE_INSTALL_HASHES=$(hashes)

# --- the binary (download_and_verify)
[ "$INSTALL_K3S_SKIP_DOWNLOAD" = true ] ||
    fatal "This install.sh is the drover lab's air-gapped double: set INSTALL_K3S_SKIP_DOWNLOAD=true"
info "Skipping k3s download and verify"
[ -x "$R$BIN_DIR/k3s" ] || fatal "Executable k3s binary not found at $BIN_DIR/k3s"

# --- symlinks
for cmd in kubectl crictl ctr; do
    if [ ! -e "$R$BIN_DIR/$cmd" ]; then
        info "Creating $BIN_DIR/$cmd symlink to k3s"
        ln -sf k3s "$R$BIN_DIR/$cmd"
    else
        info "Skipping $BIN_DIR/$cmd symlink to k3s, already exists"
    fi
done

# --- uninstall script: removes what this script wrote, and the k3s state
info "Creating uninstall script $UNINSTALL"
cat >"$R$UNINSTALL" <<EOF
#!/bin/sh
# TEST DOUBLE: stands in for k3s's $SYSTEM_NAME-uninstall.sh in drover's lab; never ship it.
set -x
R="\${K3S_DOUBLE_ROOT:-/}"; R="\${R%/}"
systemctl stop $SERVICE || true
systemctl disable $SERVICE || true
rm -f "\$R$SYSTEMD_DIR/$SERVICE" "\$R$SYSTEMD_DIR/$SERVICE.env"
systemctl daemon-reload || true
for cmd in kubectl crictl ctr; do
    [ -L "\$R$BIN_DIR/\$cmd" ] && rm -f "\$R$BIN_DIR/\$cmd"
done
rm -rf "\$R/etc/rancher/k3s" "\$R/run/k3s" "\$R/var/lib/rancher/k3s" "\$R/var/lib/kubelet"
rm -f "\$R$BIN_DIR/k3s" "\$R$UNINSTALL"
EOF
chmod 755 "$R$UNINSTALL"

# --- environment file (K3S_* variables of this run, 0600) and unit
info "env: Creating environment file $SYSTEMD_DIR/$SERVICE.env"
umask 077
env | grep -E '^(K3S|CONTAINERD)_' | grep -v '^K3S_DOUBLE_' | sort | while IFS= read -r line; do
    name="${line%%=*}"
    value="${line#*=}"
    case "$value" in
        *[!A-Za-z0-9_./:@+,=-]*) printf "%s='%s'\n" "$name" "$value" ;;
        *) printf '%s=%s\n' "$name" "$value" ;;
    esac
done >"$R$SYSTEMD_DIR/$SERVICE.env"
chmod 600 "$R$SYSTEMD_DIR/$SERVICE.env"
umask 022

if [ "$CMD_K3S" = server ]; then TYPE=notify; else TYPE=exec; fi
info "systemd: Creating service file $SYSTEMD_DIR/$SERVICE"
cat >"$R$SYSTEMD_DIR/$SERVICE" <<EOF
[Unit]
Description=Lightweight Kubernetes
Documentation=https://k3s.io
Wants=network-online.target
After=network-online.target

[Install]
WantedBy=multi-user.target

[Service]
Type=$TYPE
EnvironmentFile=-$SYSTEMD_DIR/$SERVICE.env
KillMode=process
Delegate=yes
LimitNOFILE=1048576
TimeoutStartSec=0
Restart=always
RestartSec=5s
ExecStart=$BIN_DIR/k3s $CMD_K3S_EXEC
EOF

# --- enable and start
[ "$INSTALL_K3S_SKIP_ENABLE" = true ] && exit 0
info "systemd: Enabling $SYSTEM_NAME unit"
systemctl enable "$SERVICE" >/dev/null
systemctl daemon-reload >/dev/null
[ "$INSTALL_K3S_SKIP_START" = true ] && exit 0
POST_INSTALL_HASHES=$(hashes)
if [ "$PRE_INSTALL_HASHES" = "$POST_INSTALL_HASHES" ] && [ "$INSTALL_K3S_FORCE_RESTART" != true ]; then
    info "No change detected so skipping service start"
    exit 0
fi
info "systemd: Starting $SYSTEM_NAME"
systemctl restart "$SERVICE"
