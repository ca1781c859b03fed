#!/usr/bin/env bash
# Clean Debian 12 chroots for the packaging tests.
#   debian-chroot.sh base ARCH                 make (once) and print the cached minbase tarball for ARCH
#   debian-chroot.sh install ARCH DEB [CMD..]  unpack a fresh chroot, apt-get install DEB, then run each CMD
#                                              (a shell line) inside it; mounts live in a private namespace
#   debian-chroot.sh build ARCH OUTDIR         build the package inside a fresh ARCH chroot (make deb there)
#   debian-chroot.sh wheels ARCH               fetch (once) and print the wheelhouse a foreign ARCH builds from
# CHROOT_COPY="DIR..." copies those directories into the chroot's /tmp first.
# The cache (tarballs, downloaded .debs, wheels) is under packaging/.cache/ (gitignored). Needs root and
# debootstrap; a foreign ARCH also needs qemu-user-static with binfmt_misc, and the repository's .venv (pip).
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
cache=${ZCALL_CHROOT_CACHE:-$top/packaging/.cache}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=bookworm

base() {
    local arch=$1
    local tarball=$cache/$suite-$arch-minbase.tar
    if [ ! -s "$tarball" ]; then
        mkdir -p "$cache"
        local dir
        dir=$(mktemp -d "$cache/debootstrap.XXXXXX")
        debootstrap --variant=minbase --arch="$arch" "$suite" "$dir" "$mirror" >&2
        # Package lists in the tarball: each test run then installs without fetching indexes again.
        cp /etc/resolv.conf "$dir/etc/resolv.conf"
        chroot "$dir" apt-get update -qq >&2
        chroot "$dir" apt-get clean
        tar -C "$dir" -cf "$tarball.tmp" .
        mv "$tarball.tmp" "$tarball"
        rm -rf "$dir"
    fi
    echo "$tarball"
}

# A foreign ARCH's package is built from a wheelhouse the host fetched, so that pip under qemu-user only unpacks:
# the locked versions as PyPI's binary wheels for ARCH (pip download --platform: nothing of the target runs on
# the host), PyAudio's sdist (no Linux wheel: compiled in the chroot against Debian's PortAudio), opuslib as
# a wheel built here from its sdist (pure Python; installed from the sdist, pip would fall back to a legacy
# `setup.py install`, an egg-info where the native package has a dist-info), and the build backends they and
# zcall name. The chroot's pip runs with --no-index against it: the versions and layout of a native build.
wheels() {
    local arch=$1 dir cpu lock pip key
    dir=$cache/wheels-$arch
    lock=$top/packaging/requirements.lock
    pip=("$top/.venv/bin/python" -m pip)
    # Fetched again when the lock or this recipe changes (a wheelhouse kept from before opuslib was built
    # as a wheel still gave the package an egg-info).
    key=$(cat "$lock" <(declare -f wheels) | sha256sum | cut -d ' ' -f 1)
    if [ "$(cat "$dir/.complete" 2>/dev/null)" != "$key" ]; then
        cpu=$(dpkg-architecture -a"$arch" -qDEB_HOST_GNU_CPU 2>/dev/null)
        rm -rf "$dir"
        mkdir -p "$dir"
        local target=(--implementation cp --python-version 3.11 --abi cp311 --abi abi3 --abi none
                      --platform "manylinux2014_$cpu" --platform "linux_$cpu")
        local glibc  # Debian 12 has glibc 2.36: every manylinux_2_X wheel up to it runs there
        for glibc in $(seq 17 36); do target+=(--platform "manylinux_2_${glibc}_$cpu"); done
        local binary=() compiled=() pure=() req
        while read -r req; do
            case $req in
                ''|'#'*) ;;
                PyAudio==*) compiled+=("$req") ;;
                opuslib==*) pure+=("$req") ;;
                *) binary+=("$req") ;;
            esac
        done <"$lock"
        "${pip[@]}" download -q --no-deps --only-binary=:all: "${target[@]}" -d "$dir" "${binary[@]}" >&2
        "${pip[@]}" download -q --no-deps --no-binary=:all: -d "$dir" "${compiled[@]}" >&2
        "${pip[@]}" wheel -q --no-deps --no-binary=:all: -w "$dir" "${pure[@]}" >&2
        # The build backends (zcall's pyproject.toml; setuptools for the sdists) with what they need
        # (wheel needs packaging): pip installs them into each isolated build environment.
        "${pip[@]}" download -q --only-binary=:all: --python-version 3.11 -d "$dir" \
            'setuptools>=68' wheel >&2
        echo "$key" >"$dir/.complete"
    fi
    echo "$dir"
}

# The build environment: base plus what the package needs to build, cached as its own tarball (installing
# it under qemu takes minutes).
BUILD_DEPS="build-essential make python3 dpkg-dev debhelper dh-virtualenv fakeroot python3-venv python3-dev
 portaudio19-dev libasound2-dev ca-certificates"
build_base() {
    local arch=$1
    local tarball=$cache/$suite-$arch-build.tar
    if [ ! -s "$tarball" ]; then
        fresh_chroot "$arch" >&2
        # shellcheck disable=SC2086  # a word list
        in_chroot apt-get install -y -q --no-install-recommends $BUILD_DEPS >&2
        in_chroot apt-get clean
        umount -R "$root/var/cache/apt/archives" "$root/proc" "$root/dev"
        tar -C "$root" -cf "$tarball.tmp" .
        mv "$tarball.tmp" "$tarball"
        cleanup
        root=""
    fi
    echo "$tarball"
}

# The chroot of this run; removed on exit, after its mounts (callers also run in a private mount
# namespace, see the bottom, so nothing leaks onto the host even if the script is killed).
root=""
# A signal (the test's timeout) must still run cleanup: turn it into an ordinary exit.
trap 'exit 143' TERM INT HUP
cleanup() {
    [ -n "$root" ] || return 0
    local m
    for m in var/cache/apt/archives dev proc; do
        if mountpoint -q "$root/$m"; then umount -R "$root/$m" || true; fi
        # Never delete through a mount that is still there (the host's /dev, the shared apt cache).
        if mountpoint -q "$root/$m"; then echo "left $root: $m still mounted" >&2; return 0; fi
    done
    rm -rf "$root"
}

# Unpack a fresh chroot from the cached tarball into $root, with /proc, /dev and the shared apt archive.
fresh_chroot() {
    local arch=$1 tarball=${2:-} archives extra
    [ -n "$tarball" ] || tarball=$(base "$arch")
    root=$(mktemp -d "${TMPDIR:-/tmp}/zcall-chroot.XXXXXX")
    trap cleanup EXIT
    tar -C "$root" -xf "$tarball"
    chmod 0755 "$root"  # it is /, and the zcall user must be able to enter it (tar restored mktemp's 0700)
    archives=$cache/apt-archives-$arch
    mkdir -p "$archives/partial"
    mount --bind "$archives" "$root/var/cache/apt/archives"
    mount -t proc proc "$root/proc"
    mount --rbind /dev "$root/dev"
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    install -D -m 0644 "${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}" "$root/etc/ssl/host-ca-bundle.crt"
    # Fresh indexes: the tarball's may name versions the mirror has since replaced (point releases).
    chroot "$root" apt-get update -qq >&2
    for extra in ${CHROOT_COPY:-}; do
        cp -a "$extra" "$root/tmp/"
    done
}

# Only a clean environment goes in (not the host's pip or proxy settings); pip trusts the host's CA bundle,
# copied in by fresh_chroot, so a TLS-intercepting proxy in front of PyPI works as on the host.
# CHROOT_ENV: more NAME=VALUE words for it (the wheelhouse).
CHROOT_ENV=()
in_chroot() {
    chroot "$root" env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
        TERM=dumb DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 PIP_CERT=/etc/ssl/host-ca-bundle.crt \
        PIP_DISABLE_PIP_VERSION_CHECK=1 "${CHROOT_ENV[@]}" "$@"
}

install_in_chroot() {
    local arch=$1 deb=$2 line
    shift 2
    fresh_chroot "$arch"
    cp "$deb" "$root/tmp/"
    in_chroot apt-get install -y -q --no-install-recommends "/tmp/$(basename "$deb")"
    for line in "$@"; do
        echo "+ $line"
        in_chroot /bin/sh -c "$line"
    done
}

build_in_chroot() {
    local arch=$1 out=$2 tarball wheelhouse=""
    if [ "$arch" != "$(dpkg --print-architecture)" ]; then wheelhouse=$(wheels "$arch"); fi
    tarball=$(build_base "$arch")
    fresh_chroot "$arch" "$tarball"
    if [ -n "$wheelhouse" ]; then
        cp -a "$wheelhouse" "$root/wheels"
        CHROOT_ENV=(PIP_NO_INDEX=1 PIP_FIND_LINKS=/wheels)
    fi
    mkdir -p "$root/src"
    cp -a "$top/pyproject.toml" "$top/README.md" "$top/Makefile" "$top/zcall" "$top/packaging" "$root/src/"
    if [ -d "$top/assets" ]; then cp -a "$top/assets" "$root/src/"; fi
    rm -rf "$root/src/packaging/.cache"
    in_chroot bash /src/packaging/build-deb.sh /out
    mkdir -p "$out"
    cp "$root"/out/*.deb "$out/"
}

case ${1:-} in
    base)
        base "$2"
        ;;
    install)
        [ $# -ge 3 ] || { echo "usage: $0 install ARCH DEB [CMD...]" >&2; exit 2; }
        exec unshare --mount --propagation private "$0" _install "${@:2}"
        ;;
    _install)
        install_in_chroot "${@:2}"
        ;;
    build)
        [ $# -eq 3 ] || { echo "usage: $0 build ARCH OUTDIR" >&2; exit 2; }
        exec unshare --mount --propagation private "$0" _build "$2" "$(mkdir -p "$3" && cd "$3" && pwd)"
        ;;
    _build)
        build_in_chroot "${@:2}"
        ;;
    wheels)
        wheels "$2"
        ;;
    *)
        echo "usage: $0 base ARCH | install ARCH DEB [CMD...] | build ARCH OUTDIR | wheels ARCH" >&2
        exit 2
        ;;
esac
