"""Fast checks of the packaging sources: shellcheck on every script, the pinned requirements against
pyproject.toml, versions that agree, and the systemd unit's essentials."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.packaging import layout
from tests.support.prereq import require_binary

SCRIPTS = layout.shell_scripts()


def test_script_discovery_finds_the_known_scripts() -> None:
    names = {p.relative_to(layout.TOP).as_posix() for p in SCRIPTS}
    for expected in ["packaging/build-deb.sh", "packaging/apt-ensure.sh", "packaging/debian/postinst",
                     "packaging/debian/postrm", "firmware/kiosk/zcall-kiosk",
                     "firmware/kiosk/zcall-firstboot", "firmware/build-image.sh",
                     "firmware/install-layer.sh", "firmware/image/build.sh",
                     "firmware/pi-gen/stage-zcall/prerun.sh",
                     "firmware/pi-gen/stage-zcall/01-zcall/00-run.sh", "tests/packaging/debian-chroot.sh"]:
        assert expected in names


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.relative_to(layout.TOP).as_posix())
def test_shellcheck(script: Path) -> None:
    require_binary("shellcheck")
    argv = ["shellcheck", "--external-sources"]
    if script in layout.SOURCED_FRAGMENTS:
        argv += ["--shell=bash"]
    result = subprocess.run([*argv, str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_shellcheck_catches_a_bug(tmp_path: Path) -> None:
    require_binary("shellcheck")
    bad = tmp_path / "bad.sh"
    bad.write_text("#!/bin/sh\nrm -rf $1/*\n")
    assert subprocess.run(["shellcheck", str(bad)], capture_output=True).returncode != 0


def _lock() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for raw in (layout.PACKAGING / "requirements.lock").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        (spec,) = req.specifier
        assert spec.operator == "==", f"{line}: the lock pins exact versions"
        name = canonicalize_name(req.name)
        assert name not in pins, f"{req.name} pinned twice"
        pins[name] = Version(spec.version)
    return pins


def _pyproject() -> dict[str, object]:
    return tomllib.loads((layout.TOP / "pyproject.toml").read_text())


def test_lock_pins_every_runtime_dependency_inside_its_range() -> None:
    pins = _lock()
    project = _pyproject()["project"]
    assert isinstance(project, dict)
    for line in project["dependencies"]:
        req = Requirement(line)
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is a dependency but not in packaging/requirements.lock"
        assert req.specifier.contains(pins[name]), f"{req.name}=={pins[name]} is outside {req.specifier}"


# Imports whose module first appeared in a given release: the dependency floor must not go below it.
NEEDED_FLOORS = {
    "cryptography": Version("47.0.0"),  # cryptography.hazmat.decrepit.ciphers.modes.CFB (zrtp/crypto.py)
}


def test_dependency_floors_have_what_the_code_imports() -> None:
    project = _pyproject()["project"]
    assert isinstance(project, dict)
    for line in project["dependencies"]:
        req = Requirement(line)
        floor = NEEDED_FLOORS.get(canonicalize_name(req.name))
        if floor is not None:
            below = Version(f"{floor.major - 1}.999")
            assert below not in req.specifier and floor in req.specifier, f"{line}: needs >= {floor}"


def test_changelog_version_matches_pyproject() -> None:
    first = (layout.PACKAGING / "debian" / "changelog").read_text().splitlines()[0]
    deb_version = first.split("(", 1)[1].split(")", 1)[0]
    project = _pyproject()["project"]
    assert isinstance(project, dict)
    assert deb_version.rsplit("-", 1)[0] == project["version"]


def test_control_depends_on_the_system_libraries() -> None:
    control = (layout.PACKAGING / "debian" / "control").read_text()
    for lib in ["libopus0", "libportaudio2", "libasound2", "python3 (>= 3.11)", "python3 (<< 3.12)"]:
        assert lib in control


def _unit(path: Path) -> dict[str, list[str]]:
    entries: dict[str, list[str]] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            entries.setdefault(key, []).append(value)
    return entries


def test_service_runs_headless_as_the_zcall_user_with_its_own_home() -> None:
    unit = _unit(layout.PACKAGING / "debian" / "zcall.service")
    (exec_start,) = unit["ExecStart"]
    assert exec_start.startswith("/opt/zcall/bin/zcall --home /var/lib/zcall --headless")
    assert unit["User"] == ["zcall"] and unit["StateDirectory"] == ["zcall"]
    assert unit["NoNewPrivileges"] == ["yes"] and unit["ProtectSystem"] == ["strict"]
    assert unit["CapabilityBoundingSet"] == [""]
    default = (layout.PACKAGING / "debian" / "zcall.default").read_text()
    assert "ZCALL_OPTS=" in default and "$ZCALL_OPTS" in exec_start


def test_makefile_has_the_deb_target() -> None:
    makefile = (layout.TOP / "Makefile").read_text()
    phony = next(line for line in makefile.splitlines() if line.startswith(".PHONY:"))
    assert "deb" in phony.split()
    assert "\ndeb:" in makefile
    assert "packaging/build-deb.sh" in makefile
