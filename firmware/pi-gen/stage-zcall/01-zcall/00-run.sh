#!/bin/bash -e
# Install the zcall package and the desk-unit files into the image (runs on the build host; pi-gen provides
# ROOTFS_DIR and on_chroot). Inputs: ZCALL_FIRMWARE_DIR (this repository's firmware/), ZCALL_DEB (the arm64
# package from `make deb` on arm64), ZCALL_AUDIO_HAT and ZCALL_ALSA_CARD (from the pi-gen config).
fw=${ZCALL_FIRMWARE_DIR:?}
deb=${ZCALL_DEB:?}
hat=${ZCALL_AUDIO_HAT:?}
card=${ZCALL_ALSA_CARD:?}
[ -f "${fw}/config/audio/${hat}.txt" ] || { echo "no audio fragment ${hat}.txt in ${fw}/config/audio" >&2; exit 1; }

install -m 0644 "${deb}" "${ROOTFS_DIR}/tmp/zcall.deb"
on_chroot <<CHROOT
apt-get install -y --no-install-recommends /tmp/zcall.deb
rm -f /tmp/zcall.deb
CHROOT

# The kiosk and first boot.
install -d "${ROOTFS_DIR}/usr/lib/zcall-desk"
install -m 0755 "${fw}/kiosk/zcall-kiosk" "${fw}/kiosk/zcall-firstboot" "${ROOTFS_DIR}/usr/lib/zcall-desk/"
install -m 0644 "${fw}/systemd/zcall-firstboot.service" "${ROOTFS_DIR}/etc/systemd/system/"
install -d "${ROOTFS_DIR}/etc/systemd/system/getty@tty1.service.d" "${ROOTFS_DIR}/etc/systemd/system.conf.d"
install -m 0644 "${fw}/systemd/getty@tty1.service.d/zcall-autologin.conf" \
    "${ROOTFS_DIR}/etc/systemd/system/getty@tty1.service.d/"
install -m 0644 "${fw}/systemd/zcall-watchdog.conf" "${ROOTFS_DIR}/etc/systemd/system.conf.d/"

# Firewall, sound, zcall's own defaults.
install -m 0755 "${fw}/nftables.conf" "${ROOTFS_DIR}/etc/nftables.conf"
sed "s/default \"wm8960soundcard\"/default \"${card}\"/" "${fw}/alsa/asound.conf" >"${ROOTFS_DIR}/etc/asound.conf"
install -d -m 0700 "${ROOTFS_DIR}/var/lib/zcall"
install -m 0600 "${fw}/zcall/config.toml" "${ROOTFS_DIR}/var/lib/zcall/config.toml"

# Boot configuration: board settings, buttons, the audio HAT.
{
    echo
    cat "${fw}/config/base.txt" "${fw}/config/buttons.txt" "${fw}/config/audio/${hat}.txt"
} >>"${ROOTFS_DIR}/boot/firmware/config.txt"
# Raspberry Pi OS's own first-boot resize would give the whole card to the root partition; zcall-firstboot
# sizes root itself and puts the state partition after it.
sed -i 's| init=/usr/lib/raspberrypi-sys-mods/firstboot||' "${ROOTFS_DIR}/boot/firmware/cmdline.txt"
