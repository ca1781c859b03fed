"""`zcall trust` against a real cache file, as a user runs it."""

from __future__ import annotations

from pathlib import Path

from tests.unit.test_cli import zcall
from zcall.paths import Paths
from zcall.zrtp.cache import ZrtpCache

ALICE = bytes.fromhex("a1" * 12)
BOB = bytes.fromhex("b0b0" + "00" * 10)


def _seed(home: Path) -> Paths:
    paths = Paths.resolve(home)
    paths.ensure_private_dirs()
    with ZrtpCache(paths.cache_file) as cache:
        cache.touch(ALICE, 1_700_000_000.0, name="alice desk")
        cache.store_new_rs1(ALICE, b"\x11" * 32, 0xFFFFFFFF, 1_700_000_000.0)
        cache.touch(BOB, 1_700_000_100.0, name="bob")
        cache.store_new_rs1(BOB, b"\x22" * 32, 0xFFFFFFFF, 1_700_000_100.0)
        cache.remember_account("bob@example.org", BOB, 1_700_000_100.0)
    return paths


def _verified(paths: Paths) -> dict[bytes, tuple[str, bool]]:
    with ZrtpCache(paths.cache_file) as cache:
        return {r.zid: (r.name, r.verified) for r in cache.peers()}


def test_list_verify_rename_forget(tmp_path: Path) -> None:
    paths = _seed(tmp_path)
    home = str(tmp_path)
    listing = zcall("--home", home, "trust", "list")
    assert listing.returncode == 0
    assert ALICE.hex() in listing.stdout and "alice desk" in listing.stdout and "known" in listing.stdout
    assert "\x11" not in listing.stdout and "11" * 16 not in listing.stdout  # never a secret
    (bob_line,) = [line for line in listing.stdout.splitlines() if line.startswith(BOB.hex())]
    assert bob_line.endswith("bob@example.org")  # the server account a bound call met it at

    assert zcall("--home", home, "trust", "verify", "alice desk").returncode == 0
    assert _verified(paths)[ALICE] == ("alice desk", True)
    assert zcall("--home", home, "trust", "unverify", ALICE.hex()).returncode == 0
    assert _verified(paths)[ALICE] == ("alice desk", False)

    assert zcall("--home", home, "trust", "rename", "b0b000", "Bob (office)").returncode == 0
    assert _verified(paths)[BOB] == ("Bob (office)", False)

    assert zcall("--home", home, "trust", "forget", BOB.hex()).returncode == 0
    assert BOB not in _verified(paths)


def test_unknown_or_ambiguous_peer_is_a_clear_error(tmp_path: Path) -> None:
    _seed(tmp_path)
    missing = zcall("--home", str(tmp_path), "trust", "verify", "nobody")
    assert missing.returncode == 1
    assert "no known device match 'nobody'" in missing.stderr
    short = zcall("--home", str(tmp_path), "trust", "verify", "b0b")  # too short to be a prefix
    assert short.returncode == 1


def test_a_short_zid_prefix_and_rename_say_what_they_did(tmp_path: Path) -> None:
    paths = _seed(tmp_path)
    assert zcall("--home", str(tmp_path), "trust", "verify", "A1A1").returncode == 0  # 4 digits, any case
    assert _verified(paths)[ALICE] == ("alice desk", True)
    renamed = zcall("--home", str(tmp_path), "trust", "rename", "b0b0", "Bob at home")
    assert renamed.returncode == 0
    assert renamed.stdout == f"rename: {BOB.hex()} bob -> Bob at home\n"
    assert zcall("--home", str(tmp_path), "trust", "unverify", "ALICE DESK").returncode == 0  # any case
    assert _verified(paths)[ALICE] == ("alice desk", False)
    bad = zcall("--home", str(tmp_path), "trust", "rename", "b0b0", "x" * 64)
    assert bad.returncode == 1 and "printable" in bad.stderr


def test_a_name_that_looks_like_a_zid_prefix_is_ambiguous_not_a_winner(tmp_path: Path) -> None:
    paths = _seed(tmp_path)
    with ZrtpCache(paths.cache_file) as cache:
        cache.touch(bytes.fromhex("cc" * 12), 1_700_000_200.0, name="a1a1")  # names itself like alice's ZID
    clash = zcall("--home", str(tmp_path), "trust", "verify", "a1a1")
    assert clash.returncode == 1 and "2 known devices match" in clash.stderr
    assert _verified(paths)[ALICE] == ("alice desk", False)


def test_empty_cache_lists_nothing(tmp_path: Path) -> None:
    result = zcall("--home", str(tmp_path), "trust", "list")
    assert result.returncode == 0
    assert result.stdout == "no known devices\n"


def test_corrupt_cache_is_reported_not_replaced(tmp_path: Path) -> None:
    paths = Paths.resolve(tmp_path)
    paths.ensure_private_dirs()
    paths.cache_file.write_bytes(b"this is not sqlite" * 100)
    result = zcall("--home", str(tmp_path), "trust", "list")
    assert result.returncode == 1
    assert str(paths.cache_file) in result.stderr
    kept = [p for p in paths.data_dir.iterdir() if p.name.startswith("cache.sqlite.corrupt")]
    assert kept and kept[0].read_bytes() == b"this is not sqlite" * 100


def test_verify_of_an_expired_entry_is_refused(tmp_path: Path) -> None:
    paths = Paths.resolve(tmp_path)
    paths.ensure_private_dirs()
    with ZrtpCache(paths.cache_file) as cache:
        cache.touch(ALICE, 1_700_000_000.0, name="alice desk")
        cache.store_new_rs1(ALICE, b"\x11" * 32, 60, 1_700_000_000.0)  # long expired
    result = zcall("--home", str(tmp_path), "trust", "verify", "alice desk")
    assert result.returncode == 1
    assert "secrets expired" in result.stderr and "compare the words" in result.stderr
    assert _verified(paths)[ALICE] == ("alice desk", False)
    listing = zcall("--home", str(tmp_path), "trust", "list")
    assert "expired" in listing.stdout and "verified" not in listing.stdout
