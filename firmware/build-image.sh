#!/usr/bin/env bash
# Build the desk unit's SD-card image with Raspberry Pi's pi-gen (arm64 branch, on a Debian/Raspberry Pi OS
# host with pi-gen's dependencies, as root):
#   ZCALL_ADMIN_PASSWORD=... firmware/build-image.sh PI_GEN_DIR ZCALL_ARM64_DEB [AUDIO_HAT [ALSA_CARD]]
# AUDIO_HAT is a name from firmware/config/audio/ (default wm8960), ALSA_CARD that card's ALSA name.
# The image lands in PI_GEN_DIR/deploy/. See firmware/README.md.
set -euo pipefail

if [ $# -lt 2 ]; then
    echo "usage: $0 PI_GEN_DIR ZCALL_ARM64_DEB [AUDIO_HAT [ALSA_CARD]]" >&2
    exit 2
fi
pigen=$(cd "$1" && pwd)
deb=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
firmware=$(cd "$(dirname "$0")" && pwd)

[ -x "$pigen/build.sh" ] || { echo "$pigen is not a pi-gen checkout (no build.sh)" >&2; exit 1; }
case $(dpkg-deb -f "$deb" Architecture) in
    arm64) ;;
    *) echo "$deb is not an arm64 package: build it with make deb on arm64" >&2; exit 1 ;;
esac

export ZCALL_FIRMWARE_DIR=$firmware
export ZCALL_DEB=$deb
export ZCALL_AUDIO_HAT=${3:-wm8960}
if [ -n "${4:-}" ]; then export ZCALL_ALSA_CARD=$4; fi
[ -f "$firmware/config/audio/$ZCALL_AUDIO_HAT.txt" ] || { echo "unknown audio HAT $ZCALL_AUDIO_HAT" >&2; exit 1; }

# Lite image only: stage0-2 of pi-gen, then the zcall stage (STAGE_LIST in the config).
cd "$pigen"
./build.sh -c "$firmware/pi-gen/config"
