#!/usr/bin/env bash
# Boots the harness VM once and runs one scenario inside it.
# Usage: run.sh SCENARIO OUTDIR [INPUT-FILES...]
#   SCENARIO  a script in scenarios/ (name or path); it runs as root in the VM with $IN
#             (read-only inputs: the scenario, tests/kernel/scenarios/lib.sh, INPUT-FILES)
#             and $OUT (results, copied back to OUTDIR) set.
# qemu: -M pc, TCG (nested KVM cannot run this kernel), no NIC, a virtio-9p share for in/out,
# serial console, no reboot; the boot is killed after $VM_TIMEOUT seconds (default 300).
set -euo pipefail
. "$(dirname "$0")/common.sh"
[ $# -ge 2 ] || { echo "usage: $0 SCENARIO OUTDIR [INPUT-FILES...]" >&2; exit 2; }
scen="$1"; outdir="$2"; shift 2
[ -f "$scen" ] || scen="$HARNESS_DIR/scenarios/${scen%.sh}.sh"
[ -f "$scen" ] || { echo "no scenario $scen" >&2; exit 2; }
[ -f "$INITRAMFS" ] || "$HARNESS_DIR/build-initramfs.sh"

share=$(mktemp -d "$VM_DIR/share.XXXXXX")
trap 'rm -rf "$share"' EXIT
mkdir -p "$share/in" "$share/out"
cp "$scen" "$share/in/scenario.sh"
chmod +x "$share/in/scenario.sh"
cp "$HARNESS_DIR/scenarios/lib.sh" "$share/in/lib.sh"
for f in "$@"; do cp -r "$f" "$share/in/"; done

kernel="$VMLINUX"
[ -s "$kernel" ] || kernel="$VMLINUZ"
start=$(date +%s.%N)
set +e
timeout "${VM_TIMEOUT:-300}" qemu-system-x86_64 -M pc -accel tcg -cpu max -smp 1 -m 512 \
  -nodefaults -no-user-config -nographic -no-reboot -net none \
  -serial stdio -monitor none \
  -kernel "$kernel" -initrd "$INITRAMFS" \
  -append "console=ttyS0 panic=-1 quiet loglevel=4 rdinit=/init mitigations=off nokaslr tsc=reliable" \
  -fsdev local,id=fs0,path="$share",security_model=none \
  -device virtio-9p-pci,fsdev=fs0,mount_tag=share \
  > "$share/console.log" 2>&1
qrc=$?
set -e
end=$(date +%s.%N)
mkdir -p "$outdir"
cp -r "$share/out/." "$outdir/"
cp "$share/console.log" "$outdir/console.log"
secs=$(echo "$end - $start" | bc 2>/dev/null || awk "BEGIN{print $end - $start}")
echo "$secs" > "$outdir/boot-seconds"
if ! grep -q 'HARNESS: done' "$outdir/console.log"; then
  echo "VM did not finish (qemu rc $qrc); console:" >&2
  tail -n 40 "$outdir/console.log" >&2
  exit 1
fi
rc=$(cat "$outdir/scenario.rc" 2>/dev/null || echo missing)
echo "run.sh: $(basename "$scen") in ${secs}s, scenario rc $rc"
[ "$rc" = 0 ] || { tail -n 30 "$outdir/scenario.log" >&2; exit 1; }
