#!/usr/bin/env bash
# Instructions per rewrite under callgrind: each kind of benches/icount.rs runs with
# N = 0 and N = 10000; (b - a) / 10000 is the cost of one rewrite, free of machine noise.
#
# Usage: scripts/icount.sh [kind...]   (default: every kind)
set -euo pipefail
cd "$(dirname "$0")/.."

N=10000
KINDS=("$@")
if [ ${#KINDS[@]} -eq 0 ]; then
    KINDS=(nat_inbound ipip_encap gue_encap dr_macs director_established director_established_burst director_new_connection)
fi

# Build once and find the bench executable cargo made.
bin=$(cargo bench --bench icount --no-run --message-format=json 2>/dev/null |
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)
if [ -z "$bin" ] || [ ! -x "$bin" ]; then
    echo "could not find the icount bench executable" >&2
    exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

total() {
    valgrind --tool=callgrind --callgrind-out-file="$tmp/out" "$bin" "$1" "$2" \
        >/dev/null 2>"$tmp/log"
    sed -n 's/^summary: //p' "$tmp/out"
}

printf '%-12s %14s\n' kind 'instr/rewrite'
for k in "${KINDS[@]}"; do
    a=$(total "$k" 0)
    b=$(total "$k" "$N")
    awk -v k="$k" -v a="$a" -v b="$b" -v n="$N" \
        'BEGIN { printf "%-12s %14.1f\n", k, (b - a) / n }'
done
