# ipvsadm text: for each rules file in $IN/ipvsadm-rules (ipvsadm -R input), a fresh
# topology (as the rewrite scenario, real server at 10.1.0.2 / 2001:db8:1::2), the rules
# restored, a fixed client flow list sent (so counters are not all zero), then every
# listing saved as $OUT/ipvsadm/RULES.OPTIONS.txt.
set -eu
. "$IN/lib.sh"
mkdir -p "$OUT/ipvsadm"
# ipvsadm -R with a comment line: the error text and exit status, recorded as they are
$IP netns add probe
echo '# a comment' | nsx probe ipvsadm -R > "$OUT/ipvsadm/restore-comment-line.txt" 2>&1 \
  && echo "exit 0" >> "$OUT/ipvsadm/restore-comment-line.txt" \
  || echo "exit $?" >> "$OUT/ipvsadm/restore-comment-line.txt"
$IP netns del probe
for rf in "$IN"/ipvsadm-rules/*.rules; do
  r=$(basename "$rf" .rules)
  for ns in client director rs; do $IP netns del $ns 2>/dev/null || true; done
  build_topology
  nsx director $IP addr add 10.0.0.100/32 dev lo
  nsx director $IP addr add 2001:db8:c::100/128 dev lo nodad
  # ipvsadm -R itself rejects '#' lines ("unexpected argument #"): strip them
  grep -v '^#' "$rf" | nsx director ipvsadm -R
  c4=$(topo client4) c6=$(topo client6)
  nsx client sender c0 "$(topo dir_c_mac)" 2>/dev/null <<TUPLES
tcp $c4 40001 10.0.0.100 80 S
tcp $c4 40001 10.0.0.100 80 A
tcp $c4 40001 10.0.0.100 80 PA hello
tcp $c4 40002 10.0.0.100 80 S
udp $c4 40003 10.0.0.100 53 query
udp $c4 40003 10.0.0.100 514 log line
tcp $c4 40004 10.0.0.100 8000 S
tcp $c6 40005 2001:db8:c::100 80 S
udp $c6 40006 2001:db8:c::100 53 query6
TUPLES
  sleep 3   # lets the rate estimator (2 s period) run once
  L() { name=$1; shift; nsx director ipvsadm "$@" > "$OUT/ipvsadm/$r.$name.txt" 2>&1 || echo "exit $?" >> "$OUT/ipvsadm/$r.$name.txt"; }
  L S-n -S -n
  L L-n -L -n
  L L-n-nosort -L -n --nosort
  L L-n-stats -L -n --stats
  L L-n-stats-exact -L -n --stats --exact
  L L-n-rate -L -n --rate
  L L-n-thresholds -L -n --thresholds
  L L-n-persistent-conn -L -n --persistent-conn
  L L-n-tun-info -L -n --tun-info
  L L-timeout -L --timeout
  L L-n-c -L -n -c
  L L-n-c-persistent-conn -L -n -c --persistent-conn
  L L-daemon -L --daemon
  nsx director cat /proc/net/ip_vs > "$OUT/ipvsadm/$r.proc-net-ip_vs.txt"
  nsx director cat /proc/net/ip_vs_stats > "$OUT/ipvsadm/$r.proc-net-ip_vs_stats.txt"
  nsx director ipvsadm --set 100 20 30
  L L-timeout-set -L --timeout
done
