#!/usr/bin/env bash
# CI's check that the harness itself still works: fetch the kernel and tools, build the
# initramfs, boot the VM once (about 10-15 s of one CPU under TCG) for a short rewrite
# scenario (modes nat4, dr4, nat6, gre6-csum), and require the packets the real server
# received to equal the goldens byte for byte (these modes carry no kernel-state field).
# Fails loudly -- never skips -- if anything is missing or the VM does not boot.
set -euo pipefail
. "$(dirname "$0")/common.sh"
"$HARNESS_DIR/fetch.sh"
"$HARNESS_DIR/build-initramfs.sh"

modes="nat4 dr4 nat6 gre6-csum"
work="$VM_DIR/smoke"
rm -rf "$work"; mkdir -p "$work/in"
{ grep '^#' "$HARNESS_DIR/rewrite-modes.tsv"
  for m in $modes; do awk -F'\t' -v m="$m" '$1 == m' "$HARNESS_DIR/rewrite-modes.tsv"; done
} > "$work/in/rewrite-modes.tsv"
VM_TIMEOUT="${VM_TIMEOUT:-180}" "$HARNESS_DIR/run.sh" rewrite "$work/out" \
  "$work/in/rewrite-modes.tsv" "$HARNESS_DIR/topology.tsv"

rs_mac=$(awk '$1 == "rs_mac" {print $2}' "$HARNESS_DIR/topology.tsv")
fail=0
for m in $modes; do
  dump() { tcpdump -t -nn -xx -r "$1" "ether dst $rs_mac" 2>/dev/null; }
  new=$(dump "$work/out/rewrite/$m.rs.pcap")
  old=$(dump "$GOLDEN_DIR/rewrite/$m.rs.pcap")
  if [ -z "$new" ] || [ "$new" != "$old" ]; then
    echo "SMOKE FAIL: $m: what the real server received differs from the golden" >&2
    diff <(echo "$old") <(echo "$new") >&2 || true
    fail=1
  else
    echo "smoke: $m matches the golden ($(echo "$new" | grep -vc '^[[:space:]]*0x') packets)"
  fi
done
[ $fail = 0 ] || exit 1
echo "smoke: OK, kernel $(sed -n 's/.*HARNESS: kernel \([^ ]*\) up.*/\1/p' "$work/out/console.log"), VM run $(cat "$work/out/boot-seconds")s"
