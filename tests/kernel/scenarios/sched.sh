# Scheduler decisions: for each row of sched/cases.tsv, a fresh director namespace gets
# one service with four NAT real servers on a blackholed LAN (a dummy device, so every
# connection stays in SYN_RECV and counts as active), the client sends the 200 SYNs of
# sched/syns-SERVICE.txt in order, and `ipvsadm -Lnc` tells which real server each got.
# Output: $OUT/sched/CASE.txt, one line per SYN in sending order: "CLIENT:PORT DEST"
# (DEST = RIP:PORT, or "none" when the SYN created no connection).
set -eu
. "$IN/lib.sh"
CMAC=02:00:00:00:00:01 DMAC=02:00:00:00:00:10
$IP netns add client
quiet_v6_sysctls client
nsx client $IP link set lo up
start=$(cut -d' ' -f1 /proc/uptime)
mkdir -p "$OUT/sched"
n=0
grep -v '^#' "$IN/cases.tsv" | while IFS="$(printf '\t')" read -r case svc sched flags weights order; do
  $IP netns add d
  {
    echo "link set lo up"
    echo "link add rsnet type dummy"
    echo "link set rsnet up"
    echo "addr add 10.1.255.254/16 dev rsnet"
    echo "addr add 2001:db8:1::ffff/64 dev rsnet nodad"
    echo "link set dc0 up"
    echo "addr add 10.0.0.1/24 dev dc0"
    echo "addr add 2001:db8:c::1/64 dev dc0 nodad"
    case $svc in
      v4)  echo "addr add 10.0.0.100/32 dev lo";;
      v6)  echo "addr add 2001:db8:c::100/128 dev lo nodad";;
      fwm) echo "route add local 10.2.0.0/16 dev lo";;
    esac
  } > /tmp/dbatch
  $IP link add c0 netns client address $CMAC type veth peer name dc0 netns d address $DMAC
  $IP -n client link set c0 up
  $IP -n d -b /tmp/dbatch
  b=""; [ "$flags" = - ] || b="-b $flags"
  case $svc in
    v4)  s="-t 10.0.0.100:80"; pre=10.1.0.;;
    v6)  s="-t [2001:db8:c::100]:80"; pre=2001:db8:1::;;
    fwm) s="-f 1"; pre=10.1.0.
         nsx d $TC qdisc add dev dc0 ingress
         nsx d $TC filter add dev dc0 ingress matchall action skbedit mark 1;;
  esac
  idx="1 2 3 4"; [ "$order" = fwd ] || idx="4 3 2 1"
  {
    echo "-A $s -s $sched $b"
    for i in $idx; do
      w=$(echo "$weights" | cut -d, -f$i)
      case $pre in *:*) r="[$pre$i]";; *) r="$pre$i";; esac
      echo "-a $s -r $r:80 -m -w $w"
    done
  } > /tmp/rules
  nsx d ipvsadm -R < /tmp/rules
  nsx client sender c0 $DMAC < "$IN/syns-$svc.txt" 2>/dev/null
  usleep 100000
  nsx d ipvsadm -Lnc > /tmp/conns
  nsx d ipvsadm -L -n > /tmp/list
  {
    echo "# case $case: scheduler $sched, flags $flags, weights(rs1..rs4) $weights, add order $order"
    echo "# kernel $(uname -r); SYNs: syns-$svc.txt; director dc0 received $(nsx d cat /sys/class/net/dc0/statistics/rx_packets) frames, dropped $(nsx d cat /sys/class/net/dc0/statistics/rx_dropped)"
    echo "# rules (ipvsadm -R input, in this order):"
    sed 's/^/#   /' /tmp/rules
    echo "# ipvsadm -L -n afterwards:"
    sed 's/^/#   /' /tmp/list
    awk 'NR == FNR { if (FNR > 2) dest[$4] = $6; next }
         /^tcp/ { k = ($2 ~ /:/) ? "[" $2 "]:" $3 : $2 ":" $3
                  print k, (k in dest) ? dest[k] : "none" }' /tmp/conns "$IN/syns-$svc.txt"
  } > "$OUT/sched/$case.txt"
  $IP netns del d
  n=$((n + 1))
  [ $((n % 20)) -ne 0 ] || echo "sched: $n cases at $(cut -d' ' -f1 /proc/uptime)s"
done
echo "sched: started at ${start}s, done at $(cut -d' ' -f1 /proc/uptime)s"
