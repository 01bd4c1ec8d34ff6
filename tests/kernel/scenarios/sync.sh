# Sync daemon messages, v1 (default) and v0: a master director (client side dc0, real
# servers on a blackholed dummy LAN so connections stay where the client's packets put
# them) and a backup director joined by a sync link (s0 10.9.0.1 | b0 10.9.0.2). The
# client opens fixed flows; tcpdump on the backup's b0 records the multicast datagrams.
# Output: $OUT/sync/vN.pcap (Ethernet, UDP to 224.0.0.81:8848), vN.backup-Lnc.txt,
# vN.master-Lnc.txt, vN.daemon-master.txt, vN.daemon-backup.txt, vN.rules.txt.
set -eu
. "$IN/lib.sh"
mkdir -p "$OUT/sync"
CMAC=02:00:00:00:00:01 DMAC=02:00:00:00:00:10
for v in 1 0; do
  for ns in client master backup; do $IP netns del $ns 2>/dev/null || true; $IP netns add $ns; quiet_v6_sysctls $ns; nsx $ns $IP link set lo up; done
  $IP link add c0 netns client address $CMAC type veth peer name dc0 netns master address $DMAC
  $IP link add s0 netns master address 02:00:00:00:09:01 type veth peer name b0 netns backup address 02:00:00:00:09:02
  nsx client $IP link set c0 up
  for x in master:dc0 master:s0 backup:b0; do nsx ${x%%:*} $IP link set ${x#*:} up; no_offload ${x%%:*} ${x#*:}; done
  nsx master $IP link add rsnet type dummy
  nsx master $IP link set rsnet up
  nsx master $IP addr add 10.1.255.254/16 dev rsnet
  nsx master $IP addr add 2001:db8:1::ffff/64 dev rsnet nodad
  nsx master $IP addr add 10.0.0.1/24 dev dc0
  nsx master $IP addr add 2001:db8:c::1/64 dev dc0 nodad
  nsx master $IP addr add 10.0.0.100/32 dev lo
  nsx master $IP addr add 2001:db8:c::100/128 dev lo nodad
  nsx master $IP addr add 10.9.0.1/24 dev s0
  nsx backup $IP addr add 10.9.0.2/24 dev b0
  nsx master sysctl -qw net.ipv4.vs.sync_version=$v
  cat > /tmp/rules <<RULES
-A -t 10.0.0.100:80 -s rr
-a -t 10.0.0.100:80 -r 10.1.0.2:80 -m -w 1
-A -u 10.0.0.100:53 -s rr
-a -u 10.0.0.100:53 -r 10.1.0.3:5353 -m -w 1
-A -t 10.0.0.100:443 -s rr -p 300
-a -t 10.0.0.100:443 -r 10.1.0.4:443 -g -w 1
-A -t [2001:db8:c::100]:80 -s rr
-a -t [2001:db8:c::100]:80 -r [2001:db8:1::2]:80 -m -w 1
RULES
  for d in master backup; do nsx $d ipvsadm -R < /tmp/rules; done
  nsx backup ipvsadm --start-daemon backup --mcast-interface b0 --syncid 7
  nsx master ipvsadm --start-daemon master --mcast-interface s0 --syncid 7
  capture_start sync backup b0 /tmp/sync.pcap
  capture_wait sync
  # TCP: SYN, ACK (ESTABLISHED), data, data (3rd packet: synced), then FIN (FIN_WAIT:
  # state change, synced at once). UDP: 3 datagrams. Persistent :443 (template synced).
  nsx client sender c0 $DMAC 2>/dev/null <<TUPLES
tcp 10.0.0.2 41000 10.0.0.100 80 S
tcp 10.0.0.2 41000 10.0.0.100 80 A
tcp 10.0.0.2 41000 10.0.0.100 80 PA one
tcp 10.0.0.2 41000 10.0.0.100 80 PA two
udp 10.0.0.2 41001 10.0.0.100 53 a
udp 10.0.0.2 41001 10.0.0.100 53 b
udp 10.0.0.2 41001 10.0.0.100 53 c
tcp 10.0.0.2 41002 10.0.0.100 443 S
tcp 10.0.0.2 41002 10.0.0.100 443 A
tcp 10.0.0.2 41002 10.0.0.100 443 PA x
tcp 2001:db8:c::2 41003 2001:db8:c::100 80 S
tcp 2001:db8:c::2 41003 2001:db8:c::100 80 A
tcp 2001:db8:c::2 41003 2001:db8:c::100 80 PA one
TUPLES
  sleep 3
  nsx client sender c0 $DMAC 2>/dev/null <<TUPLES
tcp 10.0.0.2 41000 10.0.0.100 80 FA
TUPLES
  sleep 3
  capture_stop sync
  cp /tmp/sync.pcap "$OUT/sync/v$v.pcap"
  cp /tmp/rules "$OUT/sync/v$v.rules.txt"
  nsx master ipvsadm -L -n -c > "$OUT/sync/v$v.master-Lnc.txt"
  nsx backup ipvsadm -L -n -c > "$OUT/sync/v$v.backup-Lnc.txt"
  nsx master ipvsadm -L --daemon > "$OUT/sync/v$v.daemon-master.txt"
  nsx backup ipvsadm -L --daemon > "$OUT/sync/v$v.daemon-backup.txt"
  nsx master ipvsadm --stop-daemon master
  nsx backup ipvsadm --stop-daemon backup
done
