#!/usr/bin/env bash
# Build the zcall Debian package with Debian's tooling (dpkg-buildpackage, debhelper, dh-virtualenv).
# Usage: packaging/build-deb.sh [OUTDIR]   (default: dist/). Builds for the machine's own architecture;
# run it inside an arm64 system (a Pi, or an arm64 chroot under qemu-user) for the desk unit's package.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$top/dist}
work=$top/build/deb
src=$work/zcall

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$top/pyproject.toml")
deb_version=$(dpkg-parsechangelog -l "$top/packaging/debian/changelog" -S Version)
if [ "${deb_version%-*}" != "$version" ]; then
    echo "build-deb: debian/changelog says $deb_version but pyproject.toml says $version" >&2
    exit 1
fi

rm -rf "$work"
mkdir -p "$src" "$out"
# Only what the package is built from: the Python package, its metadata, assets, the Debian directory.
cp -a "$top/pyproject.toml" "$top/README.md" "$top/zcall" "$src/"
if [ -d "$top/assets" ]; then cp -a "$top/assets" "$src/"; fi
cp -a "$top/packaging/debian" "$src/debian"
cp "$top/packaging/requirements.lock" "$src/requirements.lock"
find "$src" \( -name __pycache__ -o -name '*.egg-info' \) -prune -exec rm -rf {} +

(cd "$src" && dpkg-buildpackage -b -us -uc --no-sign)
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
deb=$work/zcall_${deb_version}_${arch}.deb
mv "$deb" "$out/"
echo "built $out/$(basename "$deb")"
