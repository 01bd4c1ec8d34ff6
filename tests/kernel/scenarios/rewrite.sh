# Packet rewriting: one IPVS service per row of rewrite-modes.tsv (TCP and UDP), one real
# server; per mode the client sends a TCP SYN, a TCP segment with data and a UDP datagram
# (the real server's UDP port is closed, so NAT modes also carry an ICMP error back).
# Output: $OUT/rewrite/MODE.client.pcap (client's veth: what it sent and got back) and
# $OUT/rewrite/MODE.rs.pcap (real server's veth: what it received and sent).
set -eu
. "$IN/lib.sh"
build_topology

# Real server: decapsulate every tunnel type quietly, so no ICMP error comes back from
# the tunnel endpoint (the decapsulated packets, for a VIP it does not own, are dropped).
for d in tunl0 gre0 sit0 ip6tnl0 ip6gre0; do nsx rs $IP link set $d up 2>/dev/null || true; done
nsx rs $IP link add t46 type ip6tnl mode any local "$(topo rs6)" 2>/dev/null && nsx rs $IP link set t46 up || true
nsx rs $IP link add grec type gre local "$(topo rs4)" icsum 2>/dev/null && nsx rs $IP link set grec up || true
nsx rs $IP link add grec6 type ip6gre local "$(topo rs6)" icsum 2>/dev/null && nsx rs $IP link set grec6 up || true
nsx rs $IP fou add port 6080 gue 2>/dev/null || true
nsx rs $IP fou add port 6080 gue -6 2>/dev/null || true

nsx director $IP addr add 10.0.0.100/32 dev lo
nsx director $IP addr add 2001:db8:c::100/128 dev lo nodad

bracket() { case "$1" in *:*) echo "[$1]";; *) echo "$1";; esac; }
grep -v '^#' "$IN/rewrite-modes.tsv" | while IFS="$(printf '\t')" read -r mode vip vport rip rport fwd tt tp tc; do
  case $fwd in nat) f=-m;; dr) f=-g;; tun) f=-i;; esac
  t=""
  [ "$tt" = - ] || t="--tun-type $tt"
  [ "$tp" = - ] || t="$t --tun-port $tp"
  [ "$tc" = - ] || t="$t --tun-$tc"
  for p in -t -u; do
    nsx director ipvsadm -A $p "$(bracket $vip):$vport" -s rr
    nsx director ipvsadm -a $p "$(bracket $vip):$vport" -r "$(bracket $rip):$rport" $f -w 1 $t
  done
done
nsx director ipvsadm -S -n > "$OUT/rewrite-rules.txt"

mkdir -p "$OUT/rewrite"
sport=$(topo client_sport)
grep -v '^#' "$IN/rewrite-modes.tsv" | while IFS="$(printf '\t')" read -r mode vip vport rest; do
  case $vip in *:*) c=$(topo client6);; *) c=$(topo client4);; esac
  capture_start cl client c0 "/tmp/$mode.client.pcap"
  capture_start rs rs r0 "/tmp/$mode.rs.pcap"
  capture_wait cl; capture_wait rs
  nsx client sender c0 "$(topo dir_c_mac)" <<TUPLES
tcp $c $sport $vip $vport S
tcp $c $sport $vip $vport PA hello $mode
udp $c $sport $vip $vport ping $mode
TUPLES
  usleep 200000
  capture_stop cl
  capture_stop rs
  cp "/tmp/$mode.client.pcap" "/tmp/$mode.rs.pcap" "$OUT/rewrite/"
done
nsx director ipvsadm -L -n -c > "$OUT/rewrite-conns.txt"
nsx director cat /proc/net/snmp > "$OUT/director-snmp.txt"
