"""`make boot-test`: two desk units from the amd64 image, booted in QEMU (TCG), on one emulated LAN.

Checked from the serial console and the QEMU monitor: first boot makes the state partition, applies
zcall-name.txt and reboots into a read-only root; tty1 shows the phone (screen dumps kept); the phone answers
`zcall ctl status`; the watchdog is armed; the units find each other by mDNS and complete a call; pairing
with the buttons (words match, then differ in the next call); a power cut during trust-cache writes leaves
the cache intact, and both units are on the LAN again after it (a switch of the test's own, switch.py).
A JSON report and the serial logs go to
build/boot-test/. Opt-in (ZCALL_BOOT_TEST=1, set by `make boot-test`): it needs the image
(`make image ARCH=amd64`), root, qemu-system-x86 and minutes of CPU.

The test changes its copies of the image in two ways a person flashing a card would not: a zcall-name.txt on
the boot partition (as a person would), and a root shell on the serial console (the test's only way in)."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.boot.disk import prepare
from tests.boot.firstboot import check_protected_unit
from tests.boot.qemu import BootTestError, Unit
from tests.boot.switch import switch
from tests.support.prereq import require_binary, require_root

TOP = Path(__file__).resolve().parents[2]
IMAGE = Path(os.environ.get("ZCALL_BOOT_IMAGE", TOP / "dist" / "zcall-desk-amd64.img"))
REPORT_DIR = TOP / "build" / "boot-test"
GROW_MIB = 1536  # the "card" is bigger than the image: root grows by 1 GiB, the state partition gets the rest
NAMES = {"alpha": "Desk Alpha", "beta": "Desk Beta"}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(2400),
    pytest.mark.skipif(os.environ.get("ZCALL_BOOT_TEST") != "1", reason="opt-in: make boot-test"),
]

AS_ZCALL = "setpriv --reuid zcall --regid zcall --init-groups"
# Stores peers in the real trust cache, one transaction each, as the zcall user, without end: it says when
# it begins a transaction and when store_new_rs1 has returned (the commit the phone would report).
CACHE_WRITER = (
    "import pathlib, time\n"
    "from zcall.zrtp.cache import ZrtpCache\n"
    "cache = ZrtpCache(pathlib.Path('/var/lib/zcall/data/cache.sqlite'))\n"
    "for i in range(1, 100000):\n"
    "    zid = (0xC0DE0000 + i).to_bytes(12, 'big')\n"
    "    print(f'begin {i}', flush=True)\n"
    "    cache.store_new_rs1(zid, bytes([i % 256]) * 32, 86400, time.time())\n"
    "    print(f'stored {i} {time.monotonic():.3f}', flush=True)\n"
)
# After the reboot: the WAL SQLite must recover from (before anything opens the file), whether the file is
# sound, which of the writer's peers are there, and the peers the phone itself stored.
CACHE_CHECK = (
    "import pathlib, sqlite3, time\n"
    "from zcall.zrtp.cache import ZrtpCache\n"
    "path = pathlib.Path('/var/lib/zcall/data/cache.sqlite')\n"
    "wal = path.with_name(path.name + '-wal')\n"
    "print('wal_bytes', wal.stat().st_size if wal.exists() else 0)\n"
    "print('aside', sorted(p.name for p in path.parent.iterdir() if '.corrupt-' in p.name))\n"
    "db = sqlite3.connect(path)\n"
    "print('integrity', db.execute('PRAGMA integrity_check').fetchone()[0])\n"
    "db.close()\n"
    "cache = ZrtpCache(path)\n"
    "ours = [p.zid for p in cache.peers() if p.zid[:8] == bytes(8)]\n"
    "ids = sorted(int.from_bytes(z, 'big') - 0xC0DE0000 for z in ours)\n"
    "ids = [i for i in ids if 0 < i < 100000]\n"
    "print('stored', len(ids), 'max', max(ids, default=0), 'prefix', ids == list(range(1, len(ids) + 1)))\n"
    "print('others', sorted((p.zid.hex(), p.verified) for p in cache.peers() if p.zid[:8] != bytes(8)))\n"
)


@pytest.fixture
def units(tmp_path: Path) -> Iterator[dict[str, Unit]]:
    require_root()
    require_binary("qemu-system-x86_64", "mcopy", "sfdisk", "losetup", "dnsmasq")
    if not IMAGE.is_file():
        pytest.fail(f"no image at {IMAGE}: make image ARCH=amd64", pytrace=False)
    work = Path(tempfile.mkdtemp(prefix="zcall-boot-", dir=os.environ.get("ZCALL_BOOT_TMP", "/var/tmp")))
    for old in REPORT_DIR.glob("*.log"):
        old.unlink()
    made: dict[str, Unit] = {}
    try:
        # One LAN that belongs to neither unit: a switch with a DHCP server (tests/boot/switch.py).
        with switch(list(NAMES), REPORT_DIR) as lan:
            for i, key in enumerate(NAMES, start=1):
                made[key] = Unit(key, work / f"{key}.img", REPORT_DIR, f"52:54:00:7a:00:{i:02x}",
                                 lan.netdev(key), wrap=lan.inside([]))
                prepare(IMAGE, made[key].image, NAMES[key], work, GROW_MIB)
            try:
                yield made
            finally:
                for unit in made.values():
                    unit.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _status(unit: Unit) -> dict[str, object]:
    out = unit.run("zcall --home /var/lib/zcall ctl status", timeout=120)
    return dict(json.loads(out[out.index("{"):]))


def _write(unit: Unit, path: str, text: str) -> None:
    """A file on the unit, in one shell line (a here-document would need the END marker on its own line)."""
    unit.run(f"echo {base64.b64encode(text.encode()).decode()} | base64 -d > {path}", timeout=60)


def _python(unit: Unit, code: str, timeout: float = 120) -> str:
    """Python with zcall's own environment, as the zcall user (the owner of the state)."""
    _write(unit, "/run/zcall-test.py", code)
    return unit.run(f"{AS_ZCALL} /opt/zcall/bin/python /run/zcall-test.py", timeout=timeout)


def _call_beta(alpha: Unit) -> None:
    """alpha calls beta. `ctl call` waits 10 s for the phone's reply; a guest starved of CPU (host load 29
    in one run) can take longer while the call still goes out. A reply that timed out is therefore not a
    failure here: the caller's next step waits for beta to ring, which fails if no call came."""
    out = alpha.run(f"zcall --home /var/lib/zcall ctl call '{NAMES['beta']}'; echo exit=$?", timeout=120)
    assert out.endswith("exit=0") or out.endswith("zcall: timed out\nexit=1"), out


def _no_phone_restarts(units: dict[str, Unit], checks: dict[str, object], when: str,
                       since: dict[str, str] | None = None) -> None:
    """The kiosk logs every non-zero exit of zcall: none may have happened (it once aborted in alsa-lib on
    its first call, and getty's restart hid it). `since`: a unit's guest clock (epoch s) to look from."""
    found = {
        key: unit.run("journalctl -b -q --no-pager -t zcall-kiosk"
                      + (f" --since @{since[key]}" if since and key in since else ""))
        for key, unit in units.items()
    }
    checks[f"phone_exits_{when}"] = found
    assert not any(found.values()), found


def test_two_desk_units(units: dict[str, Unit], report: dict[str, object]) -> None:
    checks: dict[str, object] = report["checks"]  # type: ignore[assignment]
    timings: dict[str, float] = report["timings_s"]  # type: ignore[assignment]
    t0 = time.monotonic()

    def mark(what: str) -> None:
        timings[what] = round(time.monotonic() - t0, 1)

    alpha, beta = units["alpha"], units["beta"]
    alpha.start()
    beta.start()

    # First boot: state partition, name, read-only root, reboot; then the protected system's shell.
    for unit in (alpha, beta):
        unit.wait_for(b"zcall-firstboot: adding the state partition", timeout=900)
        unit.wait_for(b"zcall-firstboot: naming this unit", timeout=300)
        unit.wait_for(b"zcall-firstboot: switching the root file system to a read-only overlay", timeout=300)
        mark(f"{unit.name}_first_boot_protecting")
    # The root shell is there only once first boot is over (it runs before logins): the second boot.
    for unit in (alpha, beta):
        unit.login(timeout=900)
        mark(f"{unit.name}_second_boot_shell")

    for key, unit in units.items():
        checks[f"{key}_first_boot"] = check_protected_unit(unit, NAMES[key].lower().replace(" ", "-"),
                                                           NAMES[key])
    mark("first_boot_checked")

    # The phone on tty1, answering on its control socket.
    for key, unit in units.items():
        unit.poll("zcall --home /var/lib/zcall ctl status", re.compile(r'"zid"'), timeout=600, every=5)
        status = _status(unit)
        assert status["name"] == NAMES[key], status
        screen = unit.poll("cat /dev/vcs1 | tr -s ' '", re.compile(re.escape(NAMES[key])), timeout=120)
        png = REPORT_DIR / f"{key}-tty1.png"
        unit.screendump(png)
        checks[f"{key}_phone"] = {"status": status, "tty1_text": screen[:2000], "screendump": str(png)}
        mark(f"{key}_phone_up")

    # mDNS: each sees the other.
    for key, unit in units.items():
        other = NAMES["beta" if key == "alpha" else "alpha"]
        unit.poll("zcall --home /var/lib/zcall ctl status", re.compile(re.escape(f'"name": "{other}"')),
                  timeout=300, every=5)
    mark("peers_seen")

    _no_phone_restarts(units, checks, "with_phones_up")

    # A headless call: both units switch from the TUI to the package's headless service (zcall.service, the
    # same engine without a screen), alpha calls beta, beta answers, both are secure with the same words,
    # alpha hangs up. (Two TUIs under TCG on a loaded host answer ZRTP too slowly: the callee's Hellos, about
    # 4 s of them, ran out before the caller's TUI replied, and the call ended "peer does not support ZRTP".)
    for unit in (alpha, beta):
        unit.run("systemctl stop getty@tty1.service && systemctl start zcall.service", timeout=180)
    for key, unit in units.items():
        other = NAMES["beta" if key == "alpha" else "alpha"]
        unit.poll("zcall --home /var/lib/zcall ctl status", re.compile(re.escape(f'"name": "{other}"')),
                  timeout=300, every=5)
    mark("headless_up")
    _call_beta(alpha)
    beta.poll("zcall --home /var/lib/zcall ctl status", re.compile(r'"state": "incoming"'), timeout=180)
    beta.run("zcall --home /var/lib/zcall ctl answer", timeout=120)
    secure = re.compile(r'"state": "secure"')
    alpha.poll("zcall --home /var/lib/zcall ctl status", secure, timeout=300)
    beta.poll("zcall --home /var/lib/zcall ctl status", secure, timeout=300)
    calls = {key: _status(unit)["calls"] for key, unit in units.items()}
    words = {key: [c["secure"].get("sas") for c in calls[key] if "secure" in c] for key in calls}  # type: ignore
    checks["headless_call"] = {"calls": calls, "sas": words}
    assert words["alpha"] and words["alpha"] == words["beta"], words
    alpha.run("zcall --home /var/lib/zcall ctl hangup", timeout=120)
    ended = re.compile(r'"calls": \[\]|"state": "ended"')
    beta.poll("zcall --home /var/lib/zcall ctl status", ended, timeout=120)
    mark("call_done")
    # beta goes back to its TUI for the buttons; alpha stays headless: the caller below, then the unit whose
    # power is cut (one switch fewer per unit than going back and forth: each start of zcall costs TCG time).
    beta.run("systemctl stop zcall.service && systemctl start getty@tty1.service", timeout=180)
    tui_since = {"beta": beta.run("date +%s")}

    # A failed pairing is recorded and the power cut still runs (it proves other things); the test fails at
    # the end.
    failures: list[str] = []
    try:
        _pair_with_buttons(alpha, beta, checks)
        mark("paired")
        _words_differ_with_buttons(alpha, beta, checks)
        mark("words_differed")
    except (BootTestError, AssertionError) as exc:
        failures.append(f"pairing with the buttons: {exc}")
        checks.setdefault("pairing_with_buttons", {})["error"] = str(exc)[:2000]  # type: ignore[index]
    _no_phone_restarts({"beta": beta}, checks, "after_pairing", since=tui_since)

    _power_cut(alpha, beta, checks, mark, paired=not failures)
    _back_on_the_lan(alpha, beta, checks)
    mark("lan_again_after_power_cut")
    _phone_comes_back(beta, checks)
    mark("beta_phone_back_after_exit")

    report["watchdog_misses_under_emulation"] = {
        u.name: (REPORT_DIR / f"{u.name}-qemu.log").read_text(errors="replace").count("watchdog")
        for u in units.values()
    }
    report["serial_logs"] = [str(u.serial_log) for u in units.values()]
    assert not failures, failures


def _pair_with_buttons(alpha: Unit, beta: Unit, checks: dict[str, object]) -> None:
    """Pairing as the README tells a person, with the buttons (keys on beta's tty1, sent through the QEMU
    monitor): alpha, headless, calls; beta's OK answers; beta's screen shows the words alpha has; OK on beta
    and `ctl verify` on alpha say they match; each now lists the other as verified. (The TUI is the callee:
    a TUI caller under TCG answered the callee's ZRTP Hellos too late, see above.)"""
    status = "zcall --home /var/lib/zcall ctl status"
    beta.poll(status, re.compile(re.escape(f'"name": "{NAMES["alpha"]}"')), timeout=300, every=5)
    alpha.poll(status, re.compile(re.escape(f'"name": "{NAMES["beta"]}"')), timeout=300, every=5)
    _call_beta(alpha)
    beta.poll(status, re.compile(r'"state": "incoming"'), timeout=180)
    beta.screendump(REPORT_DIR / "beta-incoming.png")
    beta.monitor("sendkey ret")
    secure = re.compile(r'"state": "secure"')
    alpha.poll(status, secure, timeout=300)
    beta.poll(status, secure, timeout=300)
    shown: dict[str, list[str]] = {}
    for key, unit in (("alpha", alpha), ("beta", beta)):
        said = [c["secure"]["sas_words"] for c in _status(unit)["calls"] if "secure" in c]  # type: ignore
        assert said, key
        shown[key] = said[0]
    assert shown["alpha"] == shown["beta"], shown
    text = beta.poll("cat /dev/vcs1 | tr -s ' '", re.compile(re.escape(shown["beta"][0])), timeout=120)
    assert all(word in text for word in shown["beta"]), (shown, text)
    beta.screendump(REPORT_DIR / "beta-words.png")
    beta.monitor("sendkey ret")
    alpha.run("zcall --home /var/lib/zcall ctl verify", timeout=120)
    trusted: dict[str, str] = {}
    for key, unit, other in (("alpha", alpha, NAMES["beta"]), ("beta", beta, NAMES["alpha"])):
        trusted[key] = unit.poll(f"{AS_ZCALL} zcall --home /var/lib/zcall trust list",
                                 re.compile(re.escape(other) + r".*\bverified\b"), timeout=180)
    beta.screendump(REPORT_DIR / "beta-verified.png")
    alpha.run("zcall --home /var/lib/zcall ctl hangup", timeout=120)
    beta.poll(status, re.compile(r'"calls": \[\]|"state": "ended"'), timeout=120)
    checks["pairing_with_buttons"] = {"words": shown, "beta_tty1_text": text[:2000], "trust_list": trusted}


def _words_differ_with_buttons(alpha: Unit, beta: Unit, checks: dict[str, object]) -> None:
    """After pairing, a call whose words differ: beta answers the verified alpha by itself, the words show,
    and beta's DIFFER button (KEY_N, as the gpio-keys overlay sends it) says they differ. The call ends at
    once as an alarm on both units, beta's screen says so, its history records the SAS mismatch, and its
    trust list, read by another process as a person would, no longer says alpha is verified. (It once still
    did: the kiosk's TUI holds two connections to the cache in one process, and opening the second dropped
    the process's SQLite locks, so `trust list` deleted the WAL under the phone; zcall/zrtp/cache.py.)"""
    status = "zcall --home /var/lib/zcall ctl status"
    # beta's phone has just come back on its TUI: each must see the other again before alpha calls by name.
    beta.poll(status, re.compile(re.escape(f'"name": "{NAMES["alpha"]}"')), timeout=300, every=5)
    alpha.poll(status, re.compile(re.escape(f'"name": "{NAMES["beta"]}"')), timeout=300, every=5)
    _call_beta(alpha)
    # No button to answer: alpha is verified now, and the unit answers verified devices by itself.
    secure = re.compile(r'"state": "secure"')
    alpha.poll(status, secure, timeout=300)
    beta.poll(status, secure, timeout=300)
    calls = [c for c in _status(beta)["calls"] if "secure" in c]  # type: ignore[attr-defined]
    assert calls and calls[0]["secure"]["verified"], calls
    words = [c["secure"]["sas_words"] for c in calls]
    beta.poll("cat /dev/vcs1 | tr -s ' '", re.compile(re.escape(words[0][0])), timeout=120)
    beta.monitor("sendkey n")
    ended = re.compile(r'"calls": \[\]|"state": "ended"')
    alpha.poll(status, ended, timeout=180)
    beta.poll(status, ended, timeout=180)
    # One word of the warning (a phrase may wrap across the screen's lines).
    screen = beta.poll("cat /dev/vcs1 | tr -s ' '", re.compile(r"\bdiffered\b"), timeout=120)
    beta.screendump(REPORT_DIR / "beta-words-differ.png")
    history = beta.run("tail -n 1 /var/lib/zcall/data/history.jsonl")
    last = json.loads(history)
    trust = beta.run(f"{AS_ZCALL} zcall --home /var/lib/zcall trust list", timeout=120)
    row = [line.split() for line in trust.splitlines() if NAMES["alpha"] in line]
    checks["words_differ_with_buttons"] = {"words": words[0], "beta_tty1_text": screen[:2000],
                                           "beta_history_last_call": last, "beta_trust_row": row}
    alpha_zid = checks["alpha_phone"]["status"]["zid"]  # type: ignore[index]
    assert last["reason"] == "sas mismatch" and last["zid"] == alpha_zid, last
    # The row: ZID, the two words of the name, its standing, first and last seen (date, time), accounts.
    assert len(row) == 1 and row[0][0] == alpha_zid and row[0][3] == "known", trust
    beta.monitor("sendkey esc")  # the alarm stays until read: Escape leaves it for the home screen


def _back_on_the_lan(alpha: Unit, beta: Unit, checks: dict[str, object]) -> None:
    """After alpha's power cut both units are on the LAN again (the old hub in alpha's QEMU left beta cut
    off): alpha, freshly booted with an empty mDNS cache, finds beta; and a fresh mDNS browse on beta (a
    discovery of its own, next to the phone, so no old record counts) finds the rebooted alpha."""
    status = "zcall --home /var/lib/zcall ctl status"
    alpha_seen = alpha.poll(status, re.compile(re.escape(f'"name": "{NAMES["beta"]}"')), timeout=300, every=5)
    alpha_zid = checks["alpha_phone"]["status"]["zid"]  # type: ignore[index]
    browse = (f"{AS_ZCALL} /opt/zcall/bin/python -m zcall.discovery --name boot-test-probe --zid {'00' * 12}"
              " --browse-only --for 30")
    found = beta.poll(browse, re.compile(r'"event": "up", [^\n]*"zid": "' + alpha_zid + '"'), timeout=300,
                      every=5)
    checks["lan_after_power_cut"] = {
        "alpha_peers": json.loads(alpha_seen[alpha_seen.index("{"):])["peers"],
        "beta_fresh_browse": [line for line in found.splitlines() if '"up"' in line],
    }


def _power_cut(alpha: Unit, beta: Unit, checks: dict[str, object], mark: Callable[[str], None],
               paired: bool) -> None:
    """A power cut while the trust cache is being written (by a writer without end, next to the running
    phone); after it, the cache is sound, every commit reported before the cut is on the card, and a file
    written to the RAM overlay is gone."""
    alpha.run("touch /etc/zcall-ram-probe")
    _write(alpha, "/run/zcall-writer.py", CACHE_WRITER)
    started = alpha.serial_log.stat().st_size
    alpha.send(f"{AS_ZCALL} /opt/zcall/bin/python /run/zcall-writer.py")
    commit = re.compile(rb"stored (\d+) [\d.]+\r?\n")

    def newest() -> int:
        found = commit.findall(alpha.log_text(started))
        return int(found[-1]) if found else 0

    deadline = time.monotonic() + 300
    while newest() < 40:
        assert time.monotonic() < deadline and alpha.proc and alpha.proc.poll() is None, "the writer stalled"
        time.sleep(0.2)
    # Cut the moment a new commit is reported: the writer is in its loop, in a commit or between two.
    seen = newest()
    while newest() == seen:
        assert time.monotonic() < deadline, "the writer stalled"
        time.sleep(0.02)
    fresh = time.monotonic()
    alpha.power_cut()
    cut = time.monotonic()
    mark("power_cut")
    said = alpha.log_text(started).decode(errors="replace").replace("\r", "")
    stamps = {int(n): float(t) for n, t in re.findall(r"stored (\d+) ([\d.]+)\n", said)}
    reported = sorted(stamps)
    begun = [int(n) for n in re.findall(r"begin (\d+)\n", said)]
    last_reported = max(reported)
    writing = {
        "commits_reported": last_reported,
        "transactions_begun": max(begun),
        "commits_per_s_guest": round((last_reported - 1) / max(stamps[last_reported] - stamps[1], 0.001), 1),
        "cut_s_after_a_new_report": round(cut - fresh, 3),
        "writer_still_running": "@@END" not in said,
        "serial_tail_at_cut": said[-60:],
    }
    # Writes in flight: the writer was still going (it never stops), reporting commits right up to the cut.
    assert writing["writer_still_running"] and cut - fresh < 2, writing
    assert reported == list(range(1, last_reported + 1)), "the writer's reports are garbled"

    alpha.start()
    alpha.login(timeout=900)
    mark("alpha_rebooted_after_cut")
    after = _python(alpha, CACHE_CHECK)
    probe = alpha.run("test -e /etc/zcall-ram-probe && echo present || echo gone")
    trust = alpha.run(f"{AS_ZCALL} zcall --home /var/lib/zcall trust list", timeout=120)
    writer_rows = [row for row in trust.splitlines() if row.startswith(bytes(8).hex() + "c0de")]
    checks["power_cut"] = {"writing_at_cut": writing, "after_reboot": after.splitlines(), "ram_probe": probe,
                           "trust_list": [row for row in trust.splitlines() if row not in writer_rows],
                           "trust_list_writer_rows": len(writer_rows)}
    assert "aside []" in after and "integrity ok" in after, after
    stored = re.search(r"stored (\d+) max (\d+) prefix (True|False)", after)
    assert stored and stored.group(3) == "True", after
    on_card = int(stored.group(1))
    checks["power_cut"]["commits_on_card"] = on_card  # type: ignore[index]
    assert on_card >= last_reported, f"commits lost: {last_reported} reported, {on_card} on the card"
    beta_zid = checks["beta_phone"]["status"]["zid"]  # type: ignore[index]
    assert beta_zid in after, "the peer of the calls is still in the cache"
    if paired:
        assert f"('{beta_zid}', True)" in after, "the pairing's verified flag survived the power cut"
    assert probe == "gone", "the root file system kept a write: it is not a RAM overlay"
    # The phone comes back by itself, with the same identity.
    alpha.poll("zcall --home /var/lib/zcall ctl status", re.compile(r'"zid"'), timeout=600, every=5)
    status = _status(alpha)
    assert status["zid"] == checks["alpha_phone"]["status"]["zid"], status  # type: ignore[index]
    alpha.screendump(REPORT_DIR / "alpha-after-power-cut.png")
    mark("alpha_phone_back")


def _phone_comes_back(unit: Unit, checks: dict[str, object]) -> None:
    """zcall on tty1 is stopped (as a crash would): the kiosk logs its exit, getty logs zcall in again and
    the phone is back, a new process, on the screen and on its control socket."""
    before = unit.run("pgrep -t tty1 -x zcall")
    assert re.fullmatch(r"\d+", before), before
    since = unit.run("date +%s")
    unit.run("pkill -TERM -t tty1 -x zcall")
    after = unit.poll("pgrep -t tty1 -x zcall", re.compile(rf"^(?!{before}$)\d+$"), timeout=300, every=5)
    unit.poll("zcall --home /var/lib/zcall ctl status", re.compile(r'"zid"'), timeout=600, every=5)
    screen = unit.poll("cat /dev/vcs1 | tr -s ' '", re.compile(re.escape(NAMES[unit.name])), timeout=120)
    logged = unit.run(f"journalctl -b -q --no-pager -t zcall-kiosk --since @{since}")
    checks[f"{unit.name}_phone_after_exit"] = {"pid_before": before, "pid_after": after, "kiosk_log": logged,
                                               "tty1_text": screen[:500]}
