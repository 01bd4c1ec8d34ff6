#!/usr/bin/env bash
# End-to-end test of the TUN/TAP director (examples/tun_director) and the userspace
# tunnel real server (examples/tun_realserver) in network namespaces, with real HTTP
# servers and real clients, in every forwarding mode: NAT, IPIP, GUE and direct routing.
#
#   client ns  c0 10.0.0.2 ──veth── d0 10.0.0.1   director ns   br0 10.0.1.1 (bridge)
#                                                  tun0 (NAT, IPIP, GUE) │  ├─ veth ── rs1 10.0.1.11
#                                                  tap0 in br0 (DR)      │  ├─ veth ── rs2 10.0.1.12
#                                                                        │  └─ veth ── rs3 10.0.1.13
# VIP 10.0.2.100:80. NAT: the director ns routes the VIP and (policy routing on the
# source) the real servers' replies into tun0. IPIP/GUE: the VIP goes into tun0, the
# director writes the encapsulated packet back, the kernel routes it to the real server,
# where tun_realserver decapsulates it into its own TUN; the real server (VIP on lo)
# answers the client directly. DR: the director is a host on the bridge (tap0) that
# answers ARP for the VIP and forwards frames to the real servers' MACs.
#
# Checks, per mode: 300 sequential requests all succeed and are spread as the scheduler
# says (rr 1:1:1, wrr 1:2:3; sequential requests make the split exact, the tolerance is
# 2% of the requests); a server set to weight 0 gets no new connections while a
# slow download from it completes intact, and once removed gets none either.
# Then wrk measures requests/s through the director (and once directly, as a baseline).
#
# Needs root and network namespaces; fails (never skips) without them. Installs curl,
# wrk, python3, iproute2 with apt-get if missing. Bounded: every curl has a timeout, the
# whole run a watchdog. Cleans up its namespaces and processes on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
T0=$SECONDS
WATCHDOG_SECS=${E2E_WATCHDOG_SECS:-600}
N=${E2E_REQUESTS:-300}   # requests per mode
DRAIN_N=60               # requests during the drain checks
WRK_ARGS=(-t2 -c32 -d5s)
MODES=${E2E_MODES:-nat ipip gue dr} # a developer's shortcut; CI runs them all
want() { [[ " $MODES " == *" $1 "* ]]; }

say() { printf '\n=== %s\n' "$*"; }
fail() {
    printf 'e2e FAIL: %s\n' "$*" >&2
    exit 1
}

[[ $(id -u) -eq 0 ]] || fail "must run as root (creates network namespaces)"

# ---------------------------------------------------------------- tools
need_pkgs=()
command -v curl >/dev/null || need_pkgs+=(curl)
command -v wrk >/dev/null || need_pkgs+=(wrk)
command -v python3 >/dev/null || need_pkgs+=(python3)
command -v ip >/dev/null || need_pkgs+=(iproute2)
command -v timeout >/dev/null || need_pkgs+=(coreutils)
if ((${#need_pkgs[@]})); then
    say "installing ${need_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi
for t in curl wrk python3 ip timeout; do
    command -v "$t" >/dev/null || fail "$t is missing and could not be installed"
done
[[ -c /dev/net/tun ]] || fail "/dev/net/tun is missing"

say "building the examples (release)"
cargo build --release --quiet --example tun_director --example tun_realserver
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
DIR_BIN=$TARGET/release/examples/tun_director
RS_BIN=$TARGET/release/examples/tun_realserver
[[ -x $DIR_BIN && -x $RS_BIN ]] || fail "built examples not found under $TARGET"

# ---------------------------------------------------------------- cleanup
P=lvse2e$$
NSC=$P-c NSD=$P-d
RS_NS=("$P-r1" "$P-r2" "$P-r3")
ALL_NS=("$NSC" "$NSD" "${RS_NS[@]}")
WORK=$(mktemp -d /tmp/lvs-e2e.XXXXXX)
PIDS=()
CREATED_NS=()

cleanup() {
    local rc=$? ns pids
    set +e
    trap - EXIT TERM INT
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    for ns in "${CREATED_NS[@]}"; do
        pids=$(ip netns pids "$ns" 2>/dev/null)
        [[ -n $pids ]] && kill $pids 2>/dev/null
    done
    sleep 0.3
    for ns in "${CREATED_NS[@]}"; do
        pids=$(ip netns pids "$ns" 2>/dev/null)
        [[ -n $pids ]] && kill -9 $pids 2>/dev/null
        ip netns del "$ns" 2>/dev/null
    done
    if ((rc != 0)); then
        for f in "$WORK"/*.log; do
            [[ -f $f ]] || continue
            echo "--- last lines of $(basename "$f")" >&2
            tail -n 25 "$f" >&2
        done
    fi
    rm -rf "$WORK"
    echo "e2e: cleaned up (exit $rc, $((SECONDS - T0)) s)"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 124' TERM INT
(
    trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
    sleep "$WATCHDOG_SECS" &
    sleeper=$!
    wait "$sleeper"
    echo "e2e FAIL: watchdog: still running after $WATCHDOG_SECS s" >&2
    kill -TERM $$
) &
PIDS+=($!)

# Foreground only: a backgrounded function would be a subshell, and $! its PID.
nsx() { ip netns exec "$@"; }

# ---------------------------------------------------------------- topology
say "topology"
for ns in "${ALL_NS[@]}"; do
    ip netns add "$ns" || fail "cannot create network namespace $ns"
    CREATED_NS+=("$ns")
    ip -n "$ns" link set lo up
    nsx "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    nsx "$ns" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
done
VIP=10.0.2.100
RS_IP=(10.0.1.11 10.0.1.12 10.0.1.13)
RS_MAC=(02:00:00:00:01:11 02:00:00:00:01:12 02:00:00:00:01:13)
DIRECTOR_MAC=02:00:00:00:00:fe
GUE_PORT=6080

ip link add c0 netns "$NSC" type veth peer name d0 netns "$NSD"
ip -n "$NSC" addr add 10.0.0.2/24 dev c0
ip -n "$NSC" link set c0 up
ip -n "$NSC" route add default via 10.0.0.1
ip -n "$NSD" addr add 10.0.0.1/24 dev d0
ip -n "$NSD" link set d0 up
# A fixed bridge MAC: enslaving tap0 later must not change it.
ip -n "$NSD" link add br0 address 02:00:00:00:01:01 type bridge
ip -n "$NSD" addr add 10.0.1.1/24 dev br0
ip -n "$NSD" link set br0 up
nsx "$NSD" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.accept_local=1
for i in 0 1 2; do
    ns=${RS_NS[$i]}
    ip link add eth0 netns "$ns" address "${RS_MAC[$i]}" type veth peer name "dr$((i + 1))" netns "$NSD"
    ip -n "$NSD" link set "dr$((i + 1))" master br0 up
    ip -n "$ns" addr add "${RS_IP[$i]}/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" route add default via 10.0.1.1
    # The VIP is local on every real server (tunnel and DR) but never answered by ARP.
    ip -n "$ns" addr add "$VIP/32" dev lo
    nsx "$ns" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
done

# ---------------------------------------------------------------- HTTP servers
say "HTTP servers"
cat >"$WORK/httpd.py" <<'EOF'
import functools, http.server, os, sys, time
class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # keep-alive for wrk
    disable_nagle_algorithm = True  # headers and body are separate writes
    def log_message(self, *args):
        pass
    def do_GET(self):
        if self.path != "/slow":
            return super().do_GET()
        # big.bin, trickled over about 4 s: a long-lived connection whatever the client.
        with open(os.path.join(self.directory, "big.bin"), "rb") as f:
            body = f.read()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        step = len(body) // 64 + 1
        for i in range(0, len(body), step):
            self.wfile.write(body[i:i + step])
            time.sleep(0.0625)
class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 512
    daemon_threads = True
    def handle_error(self, request, client_address):
        pass  # clients (wrk, curl --max-time) reset connections; not our concern
addr, port, root = sys.argv[1], int(sys.argv[2]), sys.argv[3]
Server((addr, port), functools.partial(Handler, directory=root)).serve_forever()
EOF
head -c 1048576 /dev/urandom >"$WORK/payload"
for i in 0 1 2; do
    name=rs$((i + 1))
    mkdir -p "$WORK/$name"
    echo "$name" >"$WORK/$name/whoami"
    { echo "$name"; cat "$WORK/payload"; } >"$WORK/$name/big.bin"
    # One server on the real server's own address (NAT), one on the VIP (tunnel, DR).
    for addr in "${RS_IP[$i]}" "$VIP"; do
        ip netns exec "${RS_NS[$i]}" python3 "$WORK/httpd.py" "$addr" 80 "$WORK/$name" \
            >>"$WORK/httpd-$name.log" 2>&1 &
        PIDS+=($!)
    done
done
for i in 0 1 2; do
    for addr in "${RS_IP[$i]}" "$VIP"; do
        ok=
        for _ in $(seq 50); do
            if out=$(nsx "${RS_NS[$i]}" curl -sS --max-time 1 "http://$addr/whoami" 2>/dev/null) &&
                [[ $out == "rs$((i + 1))" ]]; then
                ok=1
                break
            fi
            sleep 0.1
        done
        [[ -n $ok ]] || fail "HTTP server rs$((i + 1)) on $addr did not come up"
    done
done
# The client reaches the real servers directly (through the director ns's kernel).
for ip in "${RS_IP[@]}"; do
    nsx "$NSC" curl -sS --max-time 5 -o /dev/null "http://$ip/whoami" || fail "client cannot reach $ip"
done

say "userspace tunnel endpoints on the real servers"
for i in 0 1 2; do
    ip netns exec "${RS_NS[$i]}" "$RS_BIN" --dev tunr --ipip --gue-port "$GUE_PORT" --stats-interval 2 \
        >"$WORK/realserver-rs$((i + 1)).log" 2>&1 &
    PIDS+=($!)
done
for i in 0 1 2; do
    for _ in $(seq 100); do
        ip -n "${RS_NS[$i]}" link show tunr >/dev/null 2>&1 && break
        sleep 0.05
    done
    ip -n "${RS_NS[$i]}" link show tunr >/dev/null 2>&1 || fail "tun_realserver on rs$((i + 1)) did not start"
    nsx "${RS_NS[$i]}" sysctl -qw net.ipv4.conf.tunr.rp_filter=0
done

# ---------------------------------------------------------------- helpers
SOCK=$WORK/director.sock
DPID=

ctl() { "$DIR_BIN" ctl "$SOCK" "$@"; }

# start_director MODE RULES [director options...]
start_director() {
    local mode=$1 rules=$2
    shift 2
    printf '%s\n' "$rules" >"$WORK/rules-$mode"
    rm -f "$SOCK"
    ip netns exec "$NSD" "$DIR_BIN" --rules "$WORK/rules-$mode" --control "$SOCK" "$@" \
        >"$WORK/director-$mode.log" 2>&1 &
    DPID=$!
    PIDS+=("$DPID")
    for _ in $(seq 100); do
        [[ -S $SOCK ]] && break
        kill -0 "$DPID" 2>/dev/null || fail "director ($mode) exited: $(cat "$WORK/director-$mode.log")"
        sleep 0.05
    done
    [[ -S $SOCK ]] || fail "director ($mode) did not open its control socket"
}

stop_director() {
    local mode=$1
    ctl quit >/dev/null || fail "director ($mode) did not take quit"
    timeout 10 tail --pid="$DPID" -f /dev/null || fail "director ($mode) did not exit"
    wait "$DPID" || fail "director ($mode) exited with an error"
    DPID=
    echo "--- director ($mode) at exit:"
    sed -n '/^IP Virtual Server/,$p' "$WORK/director-$mode.log"
    ENGINE[$mode]=$(grep -o '[0-9]* ns each in handle_packet' "$WORK/director-$mode.log" || true)
}

# requests COUNT: COUNT sequential requests from the client, one connection each; prints
# one line per request: the server's name, or FAIL.
requests() {
    nsx "$NSC" bash -c '
        for ((i = 0; i < $1; i++)); do
            curl -sS --max-time 5 "http://$2/whoami" 2>/dev/null || echo FAIL
        done' _ "$1" "$VIP"
}

# check_split MODE COUNT W1 W2 W3: COUNT requests, all answered, split as the weights.
check_split() {
    local mode=$1 n=$2 out total c exp tol=$(($2 * 2 / 100))
    local w=("$3" "$4" "$5")
    total=$((w[0] + w[1] + w[2]))
    out=$(requests "$n")
    c=$(grep -c FAIL <<<"$out" || true)
    ((c == 0)) || fail "$mode: $c of $n requests failed"
    for i in 0 1 2; do
        c=$(grep -cx "rs$((i + 1))" <<<"$out" || true)
        exp=$((n * w[i] / total))
        printf '%s: rs%d answered %d of %d (expected %d +- %d)\n' "$mode" $((i + 1)) "$c" "$n" "$exp" "$tol"
        ((c >= exp - tol && c <= exp + tol)) || fail "$mode: rs$((i + 1)) answered $c, expected $exp +- $tol"
    done
}

# check_drain MODE FORWARD-OPTIONS: quiesce rs3 (weight 0) while a slow download from it
# (/slow: the server trickles 1 MiB over about 4 s) runs, then remove it.
check_drain() {
    local mode=$1 fwd=$2 k who pid found= out c
    local svc="-t $VIP:80" rs3=${RS_IP[2]}:80
    local dl_pids=() rs3_pid=
    for k in 1 2 3 4 5 6; do
        ip netns exec "$NSC" curl -sS --max-time 60 -o "$WORK/dl-$mode-$k" \
            -w 'connect %{time_connect} first byte %{time_starttransfer} total %{time_total}\n' \
            "http://$VIP/slow" 2>"$WORK/dl-$mode-$k.err" >"$WORK/dl-$mode-$k.time" &
        pid=$!
        PIDS+=("$pid")
        dl_pids+=("$pid")
        who=
        for _ in $(seq 100); do
            if [[ -s $WORK/dl-$mode-$k ]] && who=$(head -c 3 "$WORK/dl-$mode-$k") && [[ ${#who} == 3 ]]; then
                break
            fi
            sleep 0.05
        done
        [[ $who == rs[123] ]] || fail "$mode: download $k did not start ($(cat "$WORK/dl-$mode-$k.err"))"
        if [[ $who == rs3 ]]; then
            found=$k
            rs3_pid=$pid
            break
        fi
    done
    [[ -n $found ]] || fail "$mode: none of 6 downloads went to rs3"
    echo "$mode: download $found is served by rs3; setting its weight to 0"
    ctl -e $svc -r "$rs3" $fwd -w 0 >/dev/null || fail "$mode: weight 0 refused"
    out=$(ctl -L -n)
    grep -E "^  -> $rs3 +[A-Za-z]+ +0 +[1-9][0-9]* +[0-9]+ *$" <<<"$out" >/dev/null ||
        fail "$mode: listing does not show rs3 at weight 0 with an active connection:
$out
$(ctl -L -n -c)"
    out=$(requests "$DRAIN_N")
    c=$(grep -c FAIL <<<"$out" || true)
    ((c == 0)) || fail "$mode: $c requests failed while rs3 was quiesced"
    c=$(grep -cx rs3 <<<"$out" || true)
    ((c == 0)) || fail "$mode: rs3 got $c new connections at weight 0"
    kill -0 "$rs3_pid" 2>/dev/null ||
        fail "$mode: the download from rs3 ended before the checks ($(stat -c %s "$WORK/dl-$mode-$found") bytes; $(cat "$WORK/dl-$mode-$found.err" "$WORK/dl-$mode-$found.time"))"
    echo "$mode: $DRAIN_N new requests avoided rs3 while its download was still running"
    for k in $(seq "$found"); do
        wait "${dl_pids[$((k - 1))]}" || fail "$mode: download $k failed: $(cat "$WORK/dl-$mode-$k.err")"
        who=$(head -c 3 "$WORK/dl-$mode-$k")
        cmp -s "$WORK/dl-$mode-$k" "$WORK/$who/big.bin" || fail "$mode: download $k from $who is corrupt"
    done
    echo "$mode: all $found downloads (rs3's included) completed intact"
    ctl -d $svc -r "$rs3" >/dev/null || fail "$mode: removing rs3 refused"
    out=$(ctl -L -n)
    ! grep -q -- "-> $rs3 " <<<"$out" || fail "$mode: rs3 still listed after -d"
    out=$(requests "$DRAIN_N")
    c=$(grep -c FAIL <<<"$out" || true)
    ((c == 0)) || fail "$mode: $c requests failed after rs3 was removed"
    c=$(grep -cx rs3 <<<"$out" || true)
    ((c == 0)) || fail "$mode: rs3 got $c connections after removal"
    echo "$mode: after removal, $DRAIN_N requests, none to rs3"
}

# director_load: "PACKETS CPU-TICKS" of the running director so far.
director_load() {
    local rx ticks
    rx=$(ctl counters | awk '/^device:/ {print $3}')
    ticks=$(awk '{print $14 + $15}' "/proc/$DPID/stat")
    echo "$rx $ticks"
}

declare -A RPS LOAD ENGINE
# run_wrk LABEL URL: prints wrk's output, records requests/s (and, with a director
# running, its packets/s and CPU use meanwhile).
run_wrk() {
    local label=$1 url=$2 out rps before after t0 t1
    [[ -z $DPID ]] || before=$(director_load)
    t0=$(date +%s.%N)
    out=$(nsx "$NSC" timeout 30 wrk "${WRK_ARGS[@]}" "$url") || fail "wrk ($label) failed: $out"
    t1=$(date +%s.%N)
    echo "$out"
    if [[ -n $DPID ]]; then
        after=$(director_load)
        LOAD[$label]=$(awk -v b="$before" -v a="$after" -v t0="$t0" -v t1="$t1" -v hz="$(getconf CLK_TCK)" 'BEGIN {
            split(b, x, " "); split(a, y, " "); dt = t1 - t0
            printf "director %.0f packets/s, %.0f%% of a core", (y[1] - x[1]) / dt, 100 * (y[2] - x[2]) / hz / dt }')
        echo "${LOAD[$label]}"
    fi
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    [[ -n $rps ]] || fail "wrk ($label): no Requests/sec line"
    ! grep -q "Non-2xx" <<<"$out" || fail "wrk ($label): non-2xx responses"
    # Socket errors (connect, read, write, timeout) must stay under 1% of the requests.
    awk '/requests in/ {n = $1} /Socket errors/ {gsub(",", ""); e = $4 + $6 + $8 + $10}
         END { exit !(e * 100 <= n) }' <<<"$out" || fail "wrk ($label): too many socket errors"
    awk -v r="$rps" 'BEGIN { exit !(r > 0) }' || fail "wrk ($label): no request completed"
    RPS[$label]=$rps
}

# ---------------------------------------------------------------- baseline
say "baseline: wrk from the client straight to rs1 (kernel routing, no director)"
run_wrk direct-rs1 "http://${RS_IP[0]}/whoami"

rules() { # rules SCHEDULER FORWARD-OPTIONS W1 W2 W3
    printf -- '-A -t %s:80 -s %s\n' "$VIP" "$1"
    for i in 0 1 2; do
        printf -- '-a -t %s:80 -r %s:80 %s -w %s\n' "$VIP" "${RS_IP[$i]}" "$2" "${@:$((i + 3)):1}"
    done
}

# ---------------------------------------------------------------- NAT
if want nat; then
say "NAT (wrr 1:2:3)"
FWD="-m"
start_director nat "$(rules wrr "$FWD" 1 2 3)" --dev tun0
ip -n "$NSD" route replace "$VIP/32" dev tun0
ip -n "$NSD" rule add from 10.0.1.0/24 iif br0 lookup 100 pref 100
ip -n "$NSD" route replace default dev tun0 table 100
check_split nat "$N" 1 2 3
run_wrk nat "http://$VIP/whoami"
check_drain nat "$FWD"
stop_director nat
ip -n "$NSD" rule del pref 100
fi

# ---------------------------------------------------------------- IPIP
if want ipip; then
say "tunnel, IPIP (rr)"
FWD="-i --tun-type ipip"
start_director ipip "$(rules rr "$FWD" 1 1 1)" --dev tun0 --tunnel-source 10.0.1.1
ip -n "$NSD" route replace "$VIP/32" dev tun0
check_split ipip "$N" 1 1 1
run_wrk ipip "http://$VIP/whoami"
check_drain ipip "$FWD"
stop_director ipip
fi

# ---------------------------------------------------------------- GUE
if want gue; then
say "tunnel, GUE (wrr 1:2:3)"
FWD="-i --tun-type gue --tun-port $GUE_PORT"
start_director gue "$(rules wrr "$FWD" 1 2 3)" --dev tun0 --tunnel-source 10.0.1.1
ip -n "$NSD" route replace "$VIP/32" dev tun0
check_split gue "$N" 1 2 3
run_wrk gue "http://$VIP/whoami"
check_drain gue "$FWD"
stop_director gue
for i in 0 1 2; do
    grep -q "decapsulated ipip [1-9][0-9]* gue [1-9]" "$WORK/realserver-rs$((i + 1)).log" ||
        { sleep 2.5; grep -q "decapsulated ipip [1-9][0-9]* gue [1-9]" "$WORK/realserver-rs$((i + 1)).log"; } ||
        fail "tun_realserver on rs$((i + 1)) did not report both IPIP and GUE packets"
done
fi

# ---------------------------------------------------------------- DR
if want dr; then
say "direct routing over TAP (rr)"
FWD="-g"
NEIGH=()
for i in 0 1 2; do NEIGH+=(--neigh "${RS_IP[$i]}=${RS_MAC[$i]}"); done
start_director dr "$(rules rr "$FWD" 1 1 1)" --dev tap0 --tap --mac "$DIRECTOR_MAC" "${NEIGH[@]}"
ip -n "$NSD" link set tap0 master br0 up
ip -n "$NSD" route replace "$VIP/32" dev br0
ip -n "$NSD" neigh flush dev br0 to "$VIP" 2>/dev/null || true
check_split dr "$N" 1 1 1
mac=$(ip -n "$NSD" neigh show "$VIP" dev br0 | awk '{print $3}')
[[ $mac == "$DIRECTOR_MAC" ]] || fail "dr: the router resolved the VIP to '$mac', not the director's MAC"
run_wrk dr "http://$VIP/whoami"
check_drain dr "$FWD"
stop_director dr
ip -n "$NSD" route del "$VIP/32" dev br0
fi

say "wrk ${WRK_ARGS[*]} requests/s"
for k in direct-rs1 $MODES; do
    printf '  %-11s %9s  %s\n' "$k" "${RPS[$k]}" "${LOAD[$k]:-}${ENGINE[$k]:+; whole run: ${ENGINE[$k]}}"
done
echo "e2e: all modes passed in $((SECONDS - T0)) s"
