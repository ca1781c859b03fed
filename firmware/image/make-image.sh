#!/usr/bin/env bash
# `make image ARCH=...`: the zcall package for ARCH (rebuilt when the sources are newer than it), then the
# image: dist/zcall-desk-ARCH.img. An arm64 package on an amd64 host is built in an emulated Debian chroot,
# from a wheelhouse of aarch64 wheels the host fetched (tests/packaging/debian-chroot.sh).
set -euo pipefail

arch=${1:?usage: make-image.sh amd64|arm64}
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
if [ "$arch" != "$(dpkg --print-architecture)" ]; then
    # The foreign chroots run through qemu-user, which the kernel starts by binfmt_misc. binfmt-support
    # registers it when installed, but only where binfmt_misc is mounted (not in every container).
    cpu=$(dpkg-architecture -a"$arch" -qDEB_HOST_GNU_CPU 2>/dev/null)
    if [ ! -e "/proc/sys/fs/binfmt_misc/qemu-$cpu" ]; then
        mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
        update-binfmts --enable "qemu-$cpu"
    fi
fi
deb=$(find dist -maxdepth 1 -name "zcall_*_${arch}.deb" 2>/dev/null | sort | tail -n 1)
if [ -z "$deb" ] || [ -n "$(find zcall packaging pyproject.toml -newer "$deb" -type f \
        -not -path '*/__pycache__/*' -not -path 'packaging/.cache/*' -print -quit)" ]; then
    if [ "$arch" = "$(dpkg --print-architecture)" ]; then
        make deb
    else
        tests/packaging/debian-chroot.sh build "$arch" dist
    fi
    deb=$(find dist -maxdepth 1 -name "zcall_*_${arch}.deb" | sort | tail -n 1)
fi
image=dist/zcall-desk-$arch.img
if [ -f "$image" ] && [ -z "$(find "$deb" firmware -newer "$image" -type f -print -quit)" ]; then
    echo "$image is up to date"
    exit 0
fi
firmware/image/build.sh "$arch" "$deb" "$image"
