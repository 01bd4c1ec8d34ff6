# Shared settings of the kernel harness; sourced by the other scripts.
# Everything generated goes under $VM_DIR (target/ is gitignored).
KERNEL_PKG_VERSION="${KERNEL_PKG_VERSION:-6.12.117+deb12}"
KVER="${KERNEL_PKG_VERSION}-amd64"
KERNEL_PKG="linux-image-${KVER}-unsigned"
HARNESS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$HARNESS_DIR/../.." && pwd)"
VM_DIR="${VM_DIR:-$REPO_DIR/target/kernel-vm}"
KROOT="$VM_DIR/root"             # dpkg -x of the kernel package
VMLINUX="$VM_DIR/vmlinux"        # uncompressed kernel (PVH entry) if extraction worked
VMLINUZ="$KROOT/boot/vmlinuz-$KVER"
INITRAMFS="$VM_DIR/initramfs.cpio.gz"
GOLDEN_DIR="$HARNESS_DIR/golden"
