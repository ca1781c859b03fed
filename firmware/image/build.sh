#!/usr/bin/env bash
# A zcall desk-unit disk image from Debian packages only (Debian 12), with mmdebstrap:
#   firmware/image/build.sh ARCH ZCALL_DEB OUT.img
# ARCH amd64: a PC / QEMU disk (MBR, GRUB for BIOS); arm64: a Raspberry Pi 3B+/4 card (Debian's
# raspi-firmware and linux-image-arm64; on an amd64 host the chroot runs under qemu-user, see README).
# Layout, like Raspberry Pi OS: 1 = FAT boot partition (label bootfs, /boot/firmware: zcall-name.txt goes
# here), 2 = ext4 root (label rootfs). First boot adds 3 = the state partition (firmware/kiosk/zcall-firstboot).
# The FAT partition is filled with mtools, not mounted: the build host's kernel may lack vfat (containers).
# Needs root, mmdebstrap, dosfstools, mtools, e2fsprogs, fdisk, dtc; amd64 also grub-pc-bin and grub-common
# (grub-mkimage); arm64 on another
# architecture also qemu-user-static and binfmt-support. DEBIAN_MIRROR overrides deb.debian.org.
set -euo pipefail

if [ $# -ne 3 ]; then
    echo "usage: $0 amd64|arm64 ZCALL_DEB OUT.img" >&2
    exit 2
fi
arch=$1
deb=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
out=$3
here=$(cd "$(dirname "$0")" && pwd)
fw=$(dirname "$here")
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
boot_mib=${BOOT_MIB:-256}
# Downloaded packages are kept between builds (gitignored).
cache=${ZCALL_IMAGE_CACHE:-$(dirname "$fw")/build/image-cache}/apt-$arch
root_mib=${ROOT_MIB:-2048}

case $(dpkg-deb -f "$deb" Architecture) in
    "$arch") ;;
    *) echo "$deb is not an $arch package (make deb on $arch, or tests/packaging/debian-chroot.sh build)" >&2
       exit 1 ;;
esac
# What the recipe adds to Debian's minimal base: a kernel and boot loader for the board, the init system
# and udev, networking (systemd-networkd, DHCP), the tools first boot and the kiosk need.
common=systemd-sysv,udev,kmod,dbus,iproute2,procps,initramfs-tools,zstd,less,ca-certificates
case $arch in
    amd64)
        flavour=pc
        packages=$common,linux-image-amd64
        components=main
        ;;
    arm64)
        flavour=debian-raspi
        # raspi-firmware: the GPU firmware and boot files, and a kernel hook that writes config.txt and
        # cmdline.txt; firmware-brcm80211: the on-board Wi-Fi.
        packages=$common,linux-image-arm64,raspi-firmware,firmware-brcm80211
        components="main non-free-firmware"
        ;;
    *) echo "unknown ARCH $arch (amd64 or arm64)" >&2; exit 2 ;;
esac

work=$(mktemp -d "${TMPDIR:-/var/tmp}/zcall-image.XXXXXX")
loop=""
cleanup() {
    set +e
    if mountpoint -q "$work/root"; then umount -R "$work/root"; fi
    if [ -n "$loop" ]; then losetup -d "$loop"; fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 143' TERM INT HUP

# The disk: partitions first, so the system is installed straight onto them.
img=$work/disk.img
truncate -s $(((4 + boot_mib + root_mib) * 1024 * 1024)) "$img"
sfdisk --quiet "$img" <<TABLE
label: dos
start=4MiB, size=${boot_mib}MiB, type=c
size=${root_mib}MiB, type=83
TABLE
loop=$(losetup --find --show --partscan "$img")
partx --update "$loop" 2>/dev/null || true
for _ in $(seq 50); do [ -b "${loop}p2" ] && break; sleep 0.1; done
mkfs.vfat -F 32 -n bootfs "${loop}p1" >/dev/null
mkfs.ext4 -q -L rootfs "${loop}p2"
mkdir -p "$work/root"
mount "${loop}p2" "$work/root"

cat >"$work/fstab" <<FSTAB
LABEL=rootfs / ext4 defaults,noatime 0 1
LABEL=bootfs /boot/firmware vfat defaults,noatime,umask=0022 0 2
FSTAB
cat >"$work/raspi-firmware" <<RASPI
# Written by the zcall image recipe: the root by label (the card may be mmcblk0 or mmcblk1), consoles on the
# screen (tty1: the phone) and the first serial port.
ROOTPART=LABEL=rootfs
CONSOLES="ttyS1,115200 tty1"
RASPI

mkdir -p "$cache"
# shellcheck disable=SC2016  # the hooks are run by mmdebstrap's shell, with $1 = the root file system
# force-confold while building (not in the image): the recipe writes /etc/default/raspi-firmware before
# raspi-firmware is installed; it is that package's conffile, and dpkg asked which to keep and failed (no one
# answers).
nice mmdebstrap --arch="$arch" --variant=minbase --components="$components" --include="$packages" \
    --skip=essential/unlink \
    --setup-hook='mkdir -p "$1/etc/dpkg/dpkg.cfg.d"; echo force-confold >"$1/etc/dpkg/dpkg.cfg.d/zcall-build"' \
    --setup-hook='mkdir -p "$1/var/cache/apt/archives"' \
    --setup-hook='sync-in '"$cache"' /var/cache/apt/archives' \
    --setup-hook='mkdir -p "$1/boot/firmware" "$1/etc/default"' \
    --setup-hook='cp '"$work/fstab"' "$1/etc/fstab"' \
    --setup-hook='if [ '"$arch"' = arm64 ]; then cp '"$work/raspi-firmware"' "$1/etc/default/raspi-firmware"; fi' \
    --customize-hook='echo zcall >"$1/etc/hostname"; printf "127.0.0.1 localhost\n127.0.1.1 zcall\n" >"$1/etc/hosts"' \
    --customize-hook='cp -a '"$here"'/network/. "$1/etc/systemd/network/"' \
    --customize-hook='chroot "$1" systemctl enable systemd-networkd.service' \
    --customize-hook='ZCALL_ALSA_CARD="${ZCALL_ALSA_CARD:-}" '"$fw"'/install-layer.sh "$1" '"$deb $flavour" \
    --customize-hook='sync-out /var/cache/apt/archives '"$cache" \
    --customize-hook='chroot "$1" apt-get clean' \
    --customize-hook='rm "$1/etc/dpkg/dpkg.cfg.d/zcall-build"' \
    bookworm "$work/root" "$mirror"

if [ "$arch" = amd64 ]; then
    # GRUB for BIOS: its core image (the modules it needs, and a search for the root by label) in the gap
    # after the MBR, the boot sector in the MBR. Written directly: grub-install would probe the disk and
    # cannot map a loop device's partitions. The configuration boots Debian's /vmlinuz and /initrd.img
    # links, which the kernel packages keep current. grub-early.cfg has no comments: GRUB's early parser
    # choked on them. It uses search.fs_label: `search --label --set=root` left root unset at that stage.
    grub=/usr/lib/grub/i386-pc
    grub-mkimage -O i386-pc -d "$grub" -o "$work/core.img" -c "$here/grub-early.cfg" -p /boot/grub \
        biosdisk part_msdos ext2 search search_label normal configfile linux echo test
    gap=$((4 * 1024 * 1024 - 512))
    [ "$(stat -c %s "$work/core.img")" -lt "$gap" ] || { echo "GRUB core image too big for the gap" >&2; exit 1; }
    dd if="$grub/boot.img" of="$loop" bs=440 count=1 conv=notrunc status=none
    dd if="$work/core.img" of="$loop" bs=512 seek=1 conv=notrunc status=none
    install -D -m 0644 "$here/grub.cfg" "$work/root/boot/grub/grub.cfg"
fi

# What the packages and the layer put in /boot/firmware goes onto the FAT partition; the directory stays
# as its (empty) mount point.
if [ -n "$(ls -A "$work/root/boot/firmware")" ]; then
    mcopy -s -i "${loop}p1" "$work/root/boot/firmware"/* ::/
    find "$work/root/boot/firmware" -mindepth 1 -delete
fi
sync
umount "$work/root"
losetup -d "$loop"
loop=""
mkdir -p "$(dirname "$out")"
mv "$img" "$out"
echo "built $out ($arch, $((4 + boot_mib + root_mib)) MiB)"
