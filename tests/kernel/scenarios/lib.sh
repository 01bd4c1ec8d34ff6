# Helpers for scenarios (sourced inside the VM; $IN holds this file, topology.tsv, ...).
IP=/sbin/ip.iproute2   # iproute2 by path: busybox sh runs its own `ip` applet first
TC=/sbin/tc            # likewise busybox has a `tc` applet
nsx() { local ns=$1; shift; $IP netns exec "$ns" "$@"; }
topo() { awk -v k="$1" '$1 == k {print $2}' "$IN/topology.tsv"; }

# no_offload NS DEV: TX checksum offload off, so captures show finished checksums
no_offload() { nsx "$1" ethtool -K "$2" tx off rx off tso off gso off gro off >/dev/null 2>&1 || true; }

quiet_v6_sysctls() {
  nsx "$1" sysctl -qw net.ipv6.conf.default.router_solicitations=0 \
    net.ipv6.conf.all.router_solicitations=0 net.ipv6.conf.default.accept_dad=0 \
    net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_ra=0 || true
}

# build_topology: client -- director -- rs, as topology.tsv describes.
build_topology() {
  for ns in client director rs; do
    $IP netns add $ns
    quiet_v6_sysctls $ns
    nsx $ns $IP link set lo up
  done
  $IP link add c0 netns client address "$(topo client_mac)" type veth \
      peer name dc0 netns director address "$(topo dir_c_mac)"
  $IP link add dr0 netns director address "$(topo dir_r_mac)" type veth \
      peer name r0 netns rs address "$(topo rs_mac)"
  for x in client:c0 director:dc0 director:dr0 rs:r0; do
    nsx ${x%%:*} $IP link set ${x#*:} up
    no_offload ${x%%:*} ${x#*:}
  done
  nsx director sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
  nsx director $IP addr add "$(topo dir_c4)/24" dev dc0
  nsx director $IP addr add "$(topo dir_c6)/64" dev dc0 nodad
  nsx director $IP addr add "$(topo dir_r4)/24" dev dr0
  nsx director $IP addr add "$(topo dir_r6)/64" dev dr0 nodad
  nsx director $IP neigh replace "$(topo client4)" lladdr "$(topo client_mac)" dev dc0 nud permanent
  nsx director $IP neigh replace "$(topo client6)" lladdr "$(topo client_mac)" dev dc0 nud permanent
  nsx director $IP neigh replace "$(topo rs4)" lladdr "$(topo rs_mac)" dev dr0 nud permanent
  nsx director $IP neigh replace "$(topo rs6)" lladdr "$(topo rs_mac)" dev dr0 nud permanent
  nsx rs $IP addr add "$(topo rs4)/24" dev r0
  nsx rs $IP addr add "$(topo rs6)/64" dev r0 nodad
  nsx rs $IP route add default via "$(topo dir_r4)"
  nsx rs $IP -6 route add default via "$(topo dir_r6)"
  nsx rs $IP neigh replace "$(topo dir_r4)" lladdr "$(topo dir_r_mac)" dev r0 nud permanent
  nsx rs $IP neigh replace "$(topo dir_r6)" lladdr "$(topo dir_r_mac)" dev r0 nud permanent
}

# capture_start NAME NS DEV FILE: tcpdump in the background (then capture_wait NAME).
# Filter: no ARP, no IPv6 neighbour/router discovery or MLD (hop-by-hop), no IGMP.
CAP_FILTER='not arp and not (ip6 proto 0) and not (icmp6 and ip6[40] >= 128) and not igmp'
capture_start() {
  nsx "$2" tcpdump -Z root --immediate-mode -i "$3" -U -s 0 -nn -w "$4" "$CAP_FILTER" 2> "/tmp/tcpdump.$1.log" &
  echo $! > "/tmp/tcpdump.$1.pid"
}
# capture_wait NAME: returns once tcpdump NAME listens
capture_wait() {
  local i=0
  while ! grep -q 'listening on' "/tmp/tcpdump.$1.log" 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 200 ] || { echo "tcpdump $1 did not start" >&2; cat "/tmp/tcpdump.$1.log" >&2; return 1; }
    usleep 20000
  done
}
capture_stop() {
  local pid; pid=$(cat "/tmp/tcpdump.$1.pid")
  # SIGTERM: a background job of a non-interactive shell ignores SIGINT
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
}
