# Helpers for scenarios (sourced inside the VM).
IP=/sbin/ip.iproute2   # iproute2; busybox's ip applet lacks veth/tunnel features
set -e
nsx() { local ns=$1; shift; $IP netns exec "$ns" "$@"; }
# no_offload NS DEV: captures must show finished checksums
no_offload() { nsx "$1" /bin/sh -c "echo" >/dev/null; }
