"""`make deb` builds; the package installs into a clean Debian 12 chroot (debootstrap) and runs there; its
systemd unit and the desk unit's units pass `systemd-analyze verify` inside that chroot.

The chroot tarball and downloaded .debs are cached under packaging/.cache/ (gitignored): the first run
debootstraps (a few minutes), later runs only unpack. Timings are printed (pytest -s) for the report."""

from __future__ import annotations

import os
import platform
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.packaging import layout
from tests.support.prereq import require, require_binary, require_root

# Building and installing take minutes, more than the suite's default per-test timeout.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

Completed = subprocess.CompletedProcess[str]
CHROOT = layout.TESTS / "debian-chroot.sh"
NATIVE_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def _prerequisites() -> None:
    require_root()
    require_binary("debootstrap", "dpkg-buildpackage", "dh_virtualenv", "unshare", "chroot")


def _run(argv: list[str], timeout: float, env: dict[str, str] | None = None) -> Completed:
    """Run in its own process group; on a timeout (ours or pytest's) the whole group gets SIGTERM, so the
    chroot script's cleanup runs and nothing is left behind."""
    started = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.communicate(timeout=60)
        raise
    print(f"[{time.monotonic() - started:6.1f} s] {' '.join(argv[:3])} ... -> {proc.returncode}")
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def _tail(result: subprocess.CompletedProcess[str], lines: int = 60) -> str:
    return "\n".join((result.stdout + result.stderr).splitlines()[-lines:])


@pytest.fixture(scope="module")
def deb() -> Iterator[Path]:
    """`make deb`, exactly as a developer runs it."""
    _prerequisites()
    result = _run(["make", "-C", str(layout.TOP), "deb"], timeout=900)
    assert result.returncode == 0, _tail(result)
    built = sorted((layout.TOP / "dist").glob(f"zcall_*_{NATIVE_ARCH}.deb"), key=lambda p: p.stat().st_mtime)
    assert built, result.stdout
    yield built[-1]


def test_package_contents(deb: Path) -> None:
    listing = _run(["dpkg-deb", "--contents", str(deb)], timeout=60).stdout
    for path in ["./opt/zcall/bin/zcall", "./usr/bin/zcall -> /opt/zcall/bin/zcall",
                 "./lib/systemd/system/zcall.service", "./etc/default/zcall",
                 "./usr/share/doc/zcall/README.md"]:
        assert path in listing, path
    assert "site-packages/pip/" not in listing
    fields = _run(["dpkg-deb", "-f", str(deb), "Depends", "Architecture"], timeout=60).stdout
    assert "libopus0" in fields and "libportaudio2" in fields and "python3 (>= 3.11)" in fields
    assert f"Architecture: {NATIVE_ARCH}" in fields


# The chroot has no sound card (doctor fails without one) and shares the host's network: any free SIP port.
NO_SOUND = "--audio-in silence --audio-out null --sip-port 0"
UNIT_CHECKS = [
    # The service user exists, owns its state directory, and can run zcall there without root.
    "id zcall",
    'test "$(stat -c %U:%a /var/lib/zcall)" = zcall:700',
    f"setpriv --reuid zcall --regid zcall --init-groups /usr/bin/zcall --home /var/lib/zcall {NO_SOUND}"
    " doctor",
    # The package wrote the service's config: private, and answering by itself only verified devices.
    'test "$(stat -c %U:%a /var/lib/zcall/config.toml)" = zcall:600',
    "setpriv --reuid zcall --regid zcall --init-groups /usr/bin/zcall --home /var/lib/zcall config show"
    " | grep -qx 'auto_answer = \"verified\"'",
    # The units, verified by this Debian's own systemd; the desk unit's files installed as the stage does.
    "apt-get install -y -q --no-install-recommends systemd >/dev/null",
    "systemd-analyze verify /lib/systemd/system/zcall.service",
    "install -d /usr/lib/zcall-desk /etc/systemd/system/getty@tty1.service.d"
    " && install -m 0755 /tmp/firmware/kiosk/zcall-kiosk /tmp/firmware/kiosk/zcall-firstboot"
    " /usr/lib/zcall-desk/"
    " && install -m 0644 /tmp/firmware/systemd/zcall-firstboot.service /etc/systemd/system/"
    " && install -m 0644 /tmp/firmware/systemd/getty@tty1.service.d/zcall-autologin.conf"
    " /etc/systemd/system/getty@tty1.service.d/",
    "systemd-analyze verify /etc/systemd/system/zcall-firstboot.service",
    # --man=no: Debian's getty unit points at man pages, which a minimal system does not have.
    "systemd-analyze verify --man=no getty@tty1.service",
    # ... and verify does read that drop-in: a broken one next to it must fail.
    "d=/etc/systemd/system/getty@tty1.service.d"
    " && printf '[Service]\\nExecStart=\\nExecStart=/nonexistent/agetty\\n' >$d/zz-broken.conf"
    " && ! systemd-analyze verify --man=no getty@tty1.service && rm $d/zz-broken.conf",
    # The security settings of the headless unit, as systemd scores them (printed for the report).
    "systemd-analyze security --offline=true /lib/systemd/system/zcall.service | tail -n 1",
    # Removal and purge leave no state behind (the user stays, as Debian policy asks).
    "apt-get purge -y -q zcall >/dev/null && test ! -e /var/lib/zcall && test ! -e /opt/zcall && id zcall",
]


def test_installs_and_runs_in_a_clean_bookworm_chroot(deb: Path) -> None:
    commands = ["zcall --version", f"zcall {NO_SOUND} doctor", *UNIT_CHECKS]
    result = _run(
        [str(CHROOT), "install", NATIVE_ARCH, str(deb), *commands],
        timeout=900, env={**os.environ, "CHROOT_COPY": str(layout.FIRMWARE)},
    )
    out = result.stdout + result.stderr
    print(_tail(result, 25))
    assert result.returncode == 0, _tail(result)
    assert "zcall 0.1.0" in out
    assert "all checks passed" in out
    assert "Setting up zcall" in out


def _arm64_runs_here() -> tuple[bool, str]:
    binfmt = Path("/proc/sys/fs/binfmt_misc")
    if not (binfmt / "status").exists():
        subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(binfmt)], capture_output=True)
    if not (binfmt / "qemu-aarch64").exists() and shutil.which("update-binfmts"):
        subprocess.run(["update-binfmts", "--enable", "qemu-aarch64"], capture_output=True)
    if not (binfmt / "qemu-aarch64").exists():
        return False, "no qemu-aarch64 binfmt_misc handler (install qemu-user-static and binfmt-support)"
    return True, ""


def package_layout(deb: Path) -> set[str]:
    """The package's paths, with what differs by architecture alone made equal: the triplets in extension
    names, and the libraries a wheel vendors (auditwheel names them by hash, and each platform's wheel
    bundles its own set) collapsed to their directory."""
    listing = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True, check=True)
    names = subprocess.run(["tar", "-t"], input=listing.stdout, capture_output=True, check=True)
    paths = set()
    for name in names.stdout.decode().splitlines():
        name = re.sub(r"(x86_64|aarch64)", "ARCH", name)
        paths.add(re.sub(r"(\.libs/).+", r"\1*", name))
    return paths


@pytest.mark.skipif(NATIVE_ARCH != "amd64", reason="the foreign-architecture check runs on amd64 hosts")
@pytest.mark.timeout(5400)
def test_arm64_package_builds_and_installs_under_qemu(tmp_path: Path, deb: Path) -> None:
    """The desk unit's architecture: build the package inside an arm64 Debian 12 chroot (qemu-user) and
    install it into a second, clean one. Emulation makes it far slower than the ~10 minute budget of the
    packaging tests (first run: debootstrap and build dependencies under qemu), so it is opt-in:
    ZCALL_TEST_ARM64=1. Once opted in, a machine that cannot run arm64 binaries fails loudly in CI."""
    if os.environ.get("ZCALL_TEST_ARM64") != "1":
        pytest.skip("set ZCALL_TEST_ARM64=1 to build and install the arm64 package under qemu")
    _prerequisites()
    ok, why = _arm64_runs_here()
    require(ok, why)
    built = _run([str(CHROOT), "build", "arm64", str(tmp_path)], timeout=3600)
    assert built.returncode == 0, _tail(built)
    (arm64,) = tmp_path.glob("zcall_*_arm64.deb")
    # Built from the host's aarch64 wheelhouse, the package has the native one's layout (an sdist installed
    # by pip's legacy path once gave opuslib an egg-info where the native package has a dist-info).
    assert package_layout(arm64) ^ package_layout(deb) == set()
    checks = ["uname -m", "zcall --version", f"zcall {NO_SOUND} doctor"]
    installed = _run([str(CHROOT), "install", "arm64", str(arm64), *checks], timeout=1800)
    print(_tail(installed, 20))
    assert installed.returncode == 0, _tail(installed)
    assert "aarch64" in installed.stdout and "all checks passed" in installed.stdout
