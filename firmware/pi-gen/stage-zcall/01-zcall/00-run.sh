#!/bin/bash -e
# Install the zcall package and the desk-unit layer into the image (runs on the build host; pi-gen provides
# ROOTFS_DIR and on_chroot). Inputs: ZCALL_FIRMWARE_DIR (this repository's firmware/), ZCALL_DEB (the arm64
# package from `make deb` on arm64), ZCALL_AUDIO_HAT and ZCALL_ALSA_CARD (from the pi-gen config).
# The layer is the same one every zcall image gets (firmware/install-layer.sh).
fw=${ZCALL_FIRMWARE_DIR:?}
# on_chroot mounts /proc, /dev and /sys in the root file system; the layer's chroot then finds them there.
on_chroot true
"${fw}/install-layer.sh" "${ROOTFS_DIR}" "${ZCALL_DEB:?}" pi-os
