#!/usr/bin/env bash
# The desk-unit layer: everything that turns a Debian-family root file system into a zcall desk unit. Every
# image recipe runs this one script on its root file system (pi-gen's stage, firmware/image/build.sh):
#   firmware/install-layer.sh ROOT ZCALL_DEB BOOT_FLAVOUR
# ROOT        the image's root file system (a directory on the build host); its apt must work in a chroot
# ZCALL_DEB   the zcall Debian package for the image's architecture (`make deb`)
# BOOT_FLAVOUR where the board settings go:
#   pi-os          Raspberry Pi OS: appended to ROOT/boot/firmware/config.txt (pi-gen)
#   debian-raspi   Debian's raspi-firmware: /etc/default/raspi-firmware-custom, which its kernel hook appends
#                  to /boot/firmware/config.txt
#   pc             a PC or virtual machine: no config.txt, no buttons overlay
# Environment: ZCALL_AUDIO_HAT (a name in config/audio/, Raspberry Pi only, default wm8960) and
# ZCALL_ALSA_CARD (that card's ALSA name, or number; a PC uses card 0 unless told otherwise).
set -euo pipefail

if [ $# -ne 3 ]; then
    echo "usage: $0 ROOT ZCALL_DEB pi-os|debian-raspi|pc" >&2
    exit 2
fi
root=$(cd "$1" && pwd)
deb=$2
flavour=$3
fw=$(cd "$(dirname "$0")" && pwd)
hat=${ZCALL_AUDIO_HAT:-wm8960}
case $flavour in
    pi-os | debian-raspi) card=${ZCALL_ALSA_CARD-wm8960soundcard} ;;
    pc) card=${ZCALL_ALSA_CARD:-0} ;;
    *) echo "unknown boot flavour $flavour (pi-os, debian-raspi or pc)" >&2; exit 2 ;;
esac
[ -f "$deb" ] || { echo "no package at $deb" >&2; exit 1; }
[ -f "$fw/config/audio/$hat.txt" ] || { echo "unknown audio HAT $hat (see $fw/config/audio)" >&2; exit 1; }

in_root() {
    chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root DEBIAN_FRONTEND=noninteractive \
        LC_ALL=C.UTF-8 "$@"
}

# Packages: the layer's list, then zcall itself (its dependencies come from the image's own archive).
mapfile -t packages < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$fw/packages.txt")
install -m 0644 "$deb" "$root/tmp/zcall.deb"
in_root apt-get install -y -q --no-install-recommends "${packages[@]}" /tmp/zcall.deb
rm -f "$root/tmp/zcall.deb"

# The kiosk on tty1 and first boot.
install -d "$root/usr/lib/zcall-desk" "$root/etc/systemd/system/getty@tty1.service.d" \
    "$root/etc/systemd/system.conf.d" "$root/etc/systemd/journald.conf.d"
install -m 0755 "$fw/kiosk/zcall-kiosk" "$fw/kiosk/zcall-firstboot" "$root/usr/lib/zcall-desk/"
install -m 0644 "$fw/systemd/zcall-firstboot.service" "$root/etc/systemd/system/"
install -m 0644 "$fw/systemd/getty@tty1.service.d/zcall-autologin.conf" \
    "$root/etc/systemd/system/getty@tty1.service.d/"
# The watchdog and boot timeouts; the journal in RAM (the root is a RAM overlay in use).
install -m 0644 "$fw/systemd/zcall-watchdog.conf" "$fw/systemd/zcall-timeouts.conf" \
    "$root/etc/systemd/system.conf.d/"
install -m 0644 "$fw/systemd/zcall-journald.conf" "$root/etc/systemd/journald.conf.d/"

# Firewall, sound, zcall's own defaults (moved onto the state partition by first boot).
install -m 0755 "$fw/nftables.conf" "$root/etc/nftables.conf"
# Always written, on a PC too: ALSA's own default for most cards is plug over dmix, which aborts zcall (see
# alsa/asound.conf).
sed "s/default \"wm8960soundcard\"/default \"$card\"/" "$fw/alsa/asound.conf" >"$root/etc/asound.conf"
install -d -m 0700 "$root/var/lib/zcall"
install -m 0600 "$fw/zcall/config.toml" "$root/var/lib/zcall/config.toml"
# The phone must start from what the image holds: the layer's config must load with the zcall it ships with
# (an image once paired a newer config with an older package: the TUI refused it and restarted forever), and
# the engine and TUI must import (a dependency missing from the package's lock fails only at the first call
# otherwise). Checked here, at build time.
in_root /opt/zcall/bin/python -I -B -c 'import pathlib, zcall.config as c, zcall.engine, zcall.call, zcall.tui.app
c.load(pathlib.Path("/var/lib/zcall/config.toml"))' ||
    { echo "install-layer: the installed zcall cannot start with firmware/zcall/config.toml" >&2; exit 1; }

# The zcall user (made by the package) logs in on tty1 into the TUI, with the groups for sound and the
# buttons' input device; its state directory is its own.
in_root usermod --shell /usr/lib/zcall-desk/zcall-kiosk --append --groups audio,input,video zcall
in_root chown -R zcall:zcall /var/lib/zcall
grep -qx /usr/lib/zcall-desk/zcall-kiosk "$root/etc/shells" || echo /usr/lib/zcall-desk/zcall-kiosk >>"$root/etc/shells"
in_root systemctl enable zcall-firstboot.service nftables.service
# The headless service would fight the TUI for the SIP port and the control socket.
in_root systemctl disable zcall.service

# Board settings: watchdog, buttons (our own overlay, compiled here), the audio HAT.
boot_settings() {
    cat "$fw/config/base.txt" "$fw/config/buttons.txt" "$fw/config/audio/$hat.txt"
}
install_overlay() {
    install -d "$root/boot/firmware/overlays"
    dtc -@ -q -I dts -O dtb -o "$root/boot/firmware/overlays/zcall-buttons.dtbo" "$fw/overlays/zcall-buttons.dts"
}
case $flavour in
    pi-os)
        install_overlay
        { echo; boot_settings; } >>"$root/boot/firmware/config.txt"
        # Raspberry Pi OS's own first-boot resize would give the whole card to the root partition;
        # zcall-firstboot sizes root itself and puts the state partition after it.
        sed -i 's| init=/usr/lib/raspberrypi-sys-mods/firstboot||' "$root/boot/firmware/cmdline.txt"
        ;;
    debian-raspi)
        install_overlay
        boot_settings >"$root/etc/default/raspi-firmware-custom"
        # The hook's cmdline.txt says `rw`; what follows it here, `ro`, wins. The initramfs must mount the
        # root read-only: overlayroot keeps that mount, as it is, under its RAM overlay (the arm64 boot test
        # found the lower root writable). First boot's systemd remounts it rw from fstab, as on a PC.
        echo ro >"$root/etc/default/raspi-extra-cmdline"
        # raspi-firmware's kernel hook writes config.txt (appending the file above) and cmdline.txt (ending
        # with the file above): run it again now.
        if [ -x "$root/etc/kernel/postinst.d/z50-raspi-firmware" ]; then
            in_root env DEB_MAINT_PARAMS=configure /etc/kernel/postinst.d/z50-raspi-firmware
        fi
        ;;
    pc) ;;
esac
