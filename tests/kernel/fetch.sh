#!/usr/bin/env bash
# Installs the host tools of the harness and fetches the Debian kernel into target/.
# Idempotent: a second run only checks that everything is there.
set -euo pipefail
. "$(dirname "$0")/common.sh"

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
need=()
for p in qemu-system-x86 busybox-static ipvsadm tcpdump iproute2 gcc libc6-dev kmod zstd xz-utils cpio ethtool; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

mkdir -p "$VM_DIR/deb"
if [ ! -f "$VMLINUZ" ]; then
  echo "== downloading $KERNEL_PKG"
  ( cd "$VM_DIR/deb" && apt-get download "$KERNEL_PKG" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true )
  deb=$(ls "$VM_DIR"/deb/"${KERNEL_PKG}"_*.deb | head -n1)
  rm -rf "$KROOT"
  dpkg -x "$deb" "$KROOT"
fi
[ -f "$VMLINUZ" ] || { echo "kernel image $VMLINUZ missing after download" >&2; exit 1; }

# The uncompressed ELF boots through its PVH entry point about a second faster than the
# bzImage (no in-guest decompression under TCG). Debian compresses with zstd: find the
# zstd frame magic in the bzImage and decompress from there (extract-vmlinux's method).
if [ ! -s "$VMLINUX" ]; then
  off=$(grep -abo $'\x28\xb5\x2f\xfd' "$VMLINUZ" | head -n1 | cut -d: -f1 || true)
  if [ -n "$off" ] && tail -c +$((off + 1)) "$VMLINUZ" | zstd -dcq > "$VMLINUX.tmp" 2>/dev/null \
     || [ -s "$VMLINUX.tmp" ]; then :; fi
  if [ -s "$VMLINUX.tmp" ] && head -c 4 "$VMLINUX.tmp" | grep -q 'ELF'; then
    mv "$VMLINUX.tmp" "$VMLINUX"
  else
    rm -f "$VMLINUX.tmp"; echo "note: could not extract vmlinux; run.sh boots the bzImage" >&2
  fi
fi

# Uncompressed modules and modules.dep (the package ships neither).
if [ ! -f "$KROOT/lib/modules/$KVER/modules.dep" ]; then
  find "$KROOT/lib/modules/$KVER" -name '*.ko.xz' -exec xz -d -f {} +
  depmod -b "$KROOT" "$KVER"
fi
echo "kernel $KVER ready in $VM_DIR"
