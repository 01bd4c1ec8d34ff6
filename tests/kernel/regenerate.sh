#!/usr/bin/env bash
# THE command that regenerates the kernel goldens: fetches the kernel and tools, rebuilds
# the initramfs, boots one VM per part and rewrites tests/kernel/golden/PART/.
# Usage: tests/kernel/regenerate.sh [rewrite] [sched] [ipvsadm] [sync]   (default: all)
# Takes a few minutes of one CPU (qemu TCG); the sched part is the longest (~5 min).
set -euo pipefail
. "$(dirname "$0")/common.sh"
parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(rewrite sched ipvsadm sync)

"$HARNESS_DIR/fetch.sh"
"$HARNESS_DIR/build-initramfs.sh"
mkdir -p "$GOLDEN_DIR"
kver=""
for part in "${parts[@]}"; do
  out="$VM_DIR/out/$part"
  rm -rf "$out"
  case $part in
    rewrite) "$HARNESS_DIR/run.sh" rewrite "$out" "$HARNESS_DIR/rewrite-modes.tsv" "$HARNESS_DIR/topology.tsv"
             rm -rf "$GOLDEN_DIR/rewrite"; mkdir -p "$GOLDEN_DIR/rewrite"
             cp "$out"/rewrite/*.pcap "$GOLDEN_DIR/rewrite/"
             cp "$HARNESS_DIR/rewrite-modes.tsv" "$GOLDEN_DIR/rewrite/modes.tsv"
             cp "$HARNESS_DIR/topology.tsv" "$GOLDEN_DIR/rewrite/topology.tsv"
             cp "$out/rewrite-rules.txt" "$GOLDEN_DIR/rewrite/ipvsadm-S-n.txt" ;;
    sched)   VM_TIMEOUT=900 "$HARNESS_DIR/run.sh" sched "$out" "$HARNESS_DIR"/sched/cases.tsv "$HARNESS_DIR"/sched/syns-*.txt
             rm -rf "$GOLDEN_DIR/sched"; mkdir -p "$GOLDEN_DIR/sched"
             cp "$out"/sched/*.txt "$GOLDEN_DIR/sched/"
             cp "$HARNESS_DIR"/sched/cases.tsv "$HARNESS_DIR"/sched/syns-*.txt "$GOLDEN_DIR/sched/" ;;
    ipvsadm) "$HARNESS_DIR/run.sh" ipvsadm "$out" "$HARNESS_DIR"/ipvsadm-rules "$HARNESS_DIR/topology.tsv"
             rm -rf "$GOLDEN_DIR/ipvsadm"; mkdir -p "$GOLDEN_DIR/ipvsadm"
             cp "$out"/ipvsadm/* "$GOLDEN_DIR/ipvsadm/"
             cp "$HARNESS_DIR"/ipvsadm-rules/*.rules "$GOLDEN_DIR/ipvsadm/" ;;
    sync)    "$HARNESS_DIR/run.sh" sync "$out" "$HARNESS_DIR/topology.tsv"
             rm -rf "$GOLDEN_DIR/sync"; mkdir -p "$GOLDEN_DIR/sync"
             cp "$out"/sync/* "$GOLDEN_DIR/sync/" ;;
    *) echo "unknown part $part (rewrite sched ipvsadm sync)" >&2; exit 2 ;;
  esac
  kver=$(sed -n 's/.*HARNESS: kernel \([^ ]*\) up.*/\1/p' "$out/console.log")
  echo "regenerated $part with kernel $kver in $(cat "$out/boot-seconds")s"
done
pkgver=$(dpkg-deb -f "$(ls "$VM_DIR"/deb/"${KERNEL_PKG}"_*.deb | head -n1)" Version)
cat > "$GOLDEN_DIR/KERNEL" <<EOT
kernel	$kver
package	$KERNEL_PKG $pkgver (Debian)
ipvsadm	$(cat "$VM_DIR/out/$part/ipvsadm-version"), Debian $(dpkg-query -W -f '${Version}' ipvsadm)
config	$(grep -E '^CONFIG_IP_VS_(TAB_BITS|SH_TAB_BITS|MH_TAB_INDEX)=' "$KROOT/boot/config-$KVER" | tr '\n' ' ' | sed 's/ $//')
EOT
echo "goldens in $GOLDEN_DIR; run: cargo test --test kernel_golden"
