"""The desk-unit firmware files: config.txt fragments against the overlay reference, the button map, ALSA,
the firewall, zcall's own config and the pi-gen stage."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.packaging import layout
from tests.support.prereq import require_binary, require_root
from zcall import config as configmod

FRAGMENTS = sorted((layout.FIRMWARE / "config").rglob("*.txt"))


def test_fragments_exist_for_buttons_and_several_hats() -> None:
    names = {p.relative_to(layout.FIRMWARE / "config").as_posix() for p in FRAGMENTS}
    assert {"base.txt", "buttons.txt"} <= names
    assert len([n for n in names if n.startswith("audio/")]) >= 4


@pytest.mark.parametrize("fragment", FRAGMENTS, ids=lambda p: p.name)
def test_every_overlay_and_dtparam_is_in_the_reference_list(fragment: Path) -> None:
    known = layout.overlay_list()
    ours = {p.stem for p in (layout.FIRMWARE / "overlays").glob("*.dts")}
    for directive, name, _ in layout.config_txt_settings(fragment):
        if directive == "dtoverlay":
            assert name in known["overlays"] | ours, f"{fragment.name}: overlay {name}: not ours, not listed"
        elif directive == "dtparam":
            assert name in known["dtparams"], f"{fragment.name}: dtparam {name} not in firmware/overlays.txt"


def test_overlay_list_names_its_source() -> None:
    text = (layout.FIRMWARE / "overlays.txt").read_text()
    assert "arch/arm/boot/dts/overlays/README" in text
    assert re.search(r"\b[0-9a-f]{40}\b", text), "the list must pin the commit it was checked against"


def test_readme_states_the_key_mapping() -> None:
    readme = (layout.FIRMWARE / "README.md").read_text()
    for key, code in layout.KEYCODES.items():
        assert re.search(rf"{key}\b.*\b{code}\b", readme), f"firmware/README.md does not map {key} ({code})"


def test_base_fragment_turns_on_the_watchdog() -> None:
    settings = layout.config_txt_settings(layout.FIRMWARE / "config" / "base.txt")
    assert ("dtparam", "watchdog", {"watchdog": "on"}) in settings
    watchdog = (layout.FIRMWARE / "systemd" / "zcall-watchdog.conf").read_text()
    assert re.search(r"^RuntimeWatchdogSec=\d+s$", watchdog, re.MULTILINE)


def test_every_audio_fragment_names_its_alsa_card() -> None:
    for fragment in (layout.FIRMWARE / "config" / "audio").glob("*.txt"):
        assert re.search(r"ALSA card name", fragment.read_text()), fragment.name


def _alsa_open_error(tmp_path: Path, card_env: str | None, tool: str) -> str:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / ".asoundrc").write_text((layout.FIRMWARE / "alsa" / "asound.conf").read_text())
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALSA_")}
    env["HOME"] = str(home)
    env.pop("ZCALL_ALSA_CARD", None)
    if card_env is not None:
        env["ZCALL_ALSA_CARD"] = card_env
    result = subprocess.run(
        [tool, "-q", "-D", "default", "-f", "S16_LE", "-r", "48000", "-d", "1", "/dev/zero" if tool == "aplay"
         else "/dev/null"],
        env=env, capture_output=True, text=True, timeout=30,
    )
    assert result.returncode != 0, "no sound card here, so opening must fail"
    return result.stderr


@pytest.mark.parametrize("tool", ["aplay", "arecord"])
def test_asound_conf_selects_the_card_by_name(tmp_path: Path, tool: str) -> None:
    """No sound card here: opening `default` must fail exactly at the card lookup, by the configured name —
    which proves alsa-lib parsed the file and routed both directions to the named card."""
    require_binary(tool)
    assert "Cannot get card index for wm8960soundcard" in _alsa_open_error(tmp_path, None, tool)
    assert "Cannot get card index for Headset" in _alsa_open_error(tmp_path, "Headset", tool)


def test_asound_conf_broken_copy_is_rejected(tmp_path: Path) -> None:
    """The check above can fail: a syntax error gives a different message."""
    require_binary("aplay")
    broken = tmp_path / "asound.conf"
    text = (layout.FIRMWARE / "alsa" / "asound.conf").read_text()
    broken.write_text(text.replace("type asym", "type asym {"))
    home = tmp_path / "home"
    home.mkdir()
    (home / ".asoundrc").write_text(broken.read_text())
    result = subprocess.run(
        ["aplay", "-q", "-D", "default", "-d", "1", "/dev/zero"],
        env={**os.environ, "HOME": str(home)}, capture_output=True, text=True, timeout=30,
    )
    assert result.returncode != 0
    assert "Cannot get card index" not in result.stderr


def test_nftables_file_loads(tmp_path: Path) -> None:
    """nft's own check (-c) against the kernel, in a throwaway network namespace."""
    require_root()
    require_binary("nft", "unshare")
    path = layout.FIRMWARE / "nftables.conf"
    good = subprocess.run(["unshare", "--net", "nft", "-c", "-f", str(path)], capture_output=True, text=True)
    assert good.returncode == 0, good.stderr
    broken = tmp_path / "broken.conf"
    broken.write_text(path.read_text().replace("policy drop;", "policy maybe;", 1))
    bad = subprocess.run(["unshare", "--net", "nft", "-c", "-f", str(broken)], capture_output=True, text=True)
    assert bad.returncode != 0


def test_firewall_opens_the_ports_zcall_uses() -> None:
    nft = layout.FIRMWARE / "nftables.conf"
    defines = layout.nft_defines(nft)
    cfg = configmod.load(layout.FIRMWARE / "zcall" / "config.toml")
    assert int(defines["SIP_PORT"]) == cfg.network.sip_port
    assert int(defines["RTP_FIRST"]) <= cfg.network.rtp_port <= int(defines["RTP_LAST"])
    assert cfg.network.mdns and "udp dport 5353" in nft.read_text()
    assert re.search(r"policy drop;", nft.read_text())


def test_desk_config_changes_only_the_media_port_and_auto_answer() -> None:
    desk = configmod.load(layout.FIRMWARE / "zcall" / "config.toml")
    default = configmod.Config()
    assert desk.network.rtp_port != 0
    assert desk.unit == default.unit and desk.security == default.security
    # Calls are answered by themselves only from devices whose words were compared (issue 12).
    assert desk.call == dataclasses.replace(default.call, auto_answer=configmod.AutoAnswer.VERIFIED.value)


def test_pi_gen_stage_layout() -> None:
    """pi-gen has no checker of its own; this encodes the rules its build.sh follows: prerun.sh and NN-run.sh
    run only when executable, NN-run-chroot.sh is fed to the chroot's shell, NN-packages[-nr] are package
    lists, EXPORT_IMAGE makes the stage produce an image."""
    stage = layout.FIRMWARE / "pi-gen" / "stage-zcall"
    assert os.access(stage / "prerun.sh", os.X_OK)
    assert "copy_previous" in (stage / "prerun.sh").read_text()
    assert (stage / "EXPORT_IMAGE").is_file()
    subs = sorted(p for p in stage.iterdir() if p.is_dir())
    assert subs and all(re.fullmatch(r"\d\d-[a-z0-9-]+", p.name) for p in subs)
    for sub in subs:
        for item in sub.iterdir():
            assert re.fullmatch(r"\d\d-(run\.sh|run-chroot\.sh|packages|packages-nr|debconf|patches)|files",
                                item.name), item
            if item.name.endswith("-run.sh"):
                assert os.access(item, os.X_OK), f"pi-gen skips {item} unless it is executable"


def _source_pigen_config(extra_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    script = 'source "$1" && printf "%s\\n" "$IMG_NAME" "$STAGE_LIST" "$FIRST_USER_NAME" "$ZCALL_AUDIO_HAT"'
    env = {"PATH": os.environ["PATH"], **extra_env}
    config = layout.FIRMWARE / "pi-gen" / "config"
    return subprocess.run(["bash", "-c", script, "-", str(config)], env=env, capture_output=True, text=True)


def test_pi_gen_config_satisfies_build_sh() -> None:
    """What pi-gen's build.sh insists on: IMG_NAME set; a lower-case first user name; a password when the
    first-boot rename wizard is off. And our own inputs must be required, not silently empty."""
    ok = _source_pigen_config({"ZCALL_FIRMWARE_DIR": "/fw", "ZCALL_ADMIN_PASSWORD": "x"})
    assert ok.returncode == 0, ok.stderr
    img_name, stage_list, user, hat = ok.stdout.splitlines()
    assert img_name
    assert stage_list.split()[:3] == ["stage0", "stage1", "stage2"]
    assert stage_list.split()[-1] == "/fw/pi-gen/stage-zcall"
    assert re.fullmatch(r"[a-z][-a-z0-9_]*", user)
    assert (layout.FIRMWARE / "config" / "audio" / f"{hat}.txt").is_file()
    assert _source_pigen_config({"ZCALL_FIRMWARE_DIR": "/fw"}).returncode != 0
    assert _source_pigen_config({"ZCALL_ADMIN_PASSWORD": "x"}).returncode != 0
