#!/usr/bin/env bash
# Builds target/kernel-vm/initramfs.cpio.gz: static busybox, the IPVS modules and their
# dependencies (closure from modules.dep, in load order), ipvsadm, tcpdump, iproute2's
# ip and tc with the libraries ldd lists, and the harness's static packet sender.
set -euo pipefail
. "$(dirname "$0")/common.sh"
[ -f "$KROOT/lib/modules/$KVER/modules.dep" ] || "$HARNESS_DIR/fetch.sh"

MODULES="ip_vs ip_vs_rr ip_vs_wrr ip_vs_lc ip_vs_wlc ip_vs_fo ip_vs_ovf ip_vs_lblc ip_vs_lblcr
ip_vs_dh ip_vs_sh ip_vs_sed ip_vs_nq ip_vs_mh ip_vs_twos veth dummy ipip sit ip_gre ip6_gre
fou fou6 ip6_tunnel sch_ingress cls_matchall act_skbedit 9pnet_virtio 9p"

stage="$VM_DIR/initramfs.d"
rm -rf "$stage"
mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,lib/modules,lib64,proc,sys,dev,tmp,run,etc,mnt}
cp "$(command -v busybox)" "$stage/bin/busybox"
cp "$HARNESS_DIR/init" "$stage/init"
chmod +x "$stage/init"
echo 'root:x:0:0:root:/root:/bin/sh' > "$stage/etc/passwd"
echo 'root:x:0:' > "$stage/etc/group"
touch "$stage/etc/fstab"

# modules: dependency closure in load order, duplicates removed
: > "$stage/lib/modules/load.order"
for m in $MODULES; do
  modprobe -d "$KROOT" -S "$KVER" --show-depends "$m" | awk '$1 == "insmod" {print $2}'
done | awk '!seen[$0]++' | while read -r ko; do
  cp "$ko" "$stage/lib/modules/"
  basename "$ko" >> "$stage/lib/modules/load.order"
done

# user-space tools and their libraries; iproute2 goes to /sbin/ip.iproute2 so scripts
# can never pick busybox's ip applet by accident.
bins=(/usr/sbin/ipvsadm /usr/bin/tcpdump /bin/ip /sbin/tc /usr/sbin/ethtool)
cp /usr/sbin/ipvsadm "$stage/sbin/ipvsadm"
cp /usr/bin/tcpdump "$stage/usr/bin/tcpdump"
cp /bin/ip "$stage/sbin/ip.iproute2"
cp /sbin/tc "$stage/sbin/tc"
cp /usr/sbin/ethtool "$stage/sbin/ethtool"
for lib in $(ldd "${bins[@]}" | grep -o '/[^ ]*\.so[^ ]*' | sort -u); do
  mkdir -p "$stage$(dirname "$lib")"
  cp -L "$lib" "$stage$lib"
done
[ -e "$stage/lib64/ld-linux-x86-64.so.2" ] || cp -L /lib64/ld-linux-x86-64.so.2 "$stage/lib64/"

gcc -static -O2 -Wall -Wextra -o "$VM_DIR/sender" "$HARNESS_DIR/sender.c"
cp "$VM_DIR/sender" "$stage/bin/sender"

( cd "$stage" && find . | cpio -o -H newc --quiet ) | gzip -1 > "$INITRAMFS"
echo "initramfs: $(du -h "$INITRAMFS" | cut -f1) with $(wc -l < "$stage/lib/modules/load.order") modules"
