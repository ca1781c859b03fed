from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zcall import identity, zidfile


def test_created_once_then_reused(tmp_path: Path) -> None:
    first = identity.load_or_create(tmp_path)
    second = identity.load_or_create(tmp_path)
    assert len(first.zid) == 12
    assert first.zid == second.zid
    assert first.fingerprint() == second.fingerprint()
    for name in ("zid", "cert.pem", "key.pem"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o600


def test_two_homes_differ(tmp_path: Path) -> None:
    a = identity.load_or_create(tmp_path / "a")
    b = identity.load_or_create(tmp_path / "b")
    assert a.zid != b.zid
    assert a.fingerprint() != b.fingerprint()


def test_fingerprint_format(tmp_path: Path) -> None:
    fingerprint = identity.load_or_create(tmp_path).fingerprint()
    parts = fingerprint.split(":")
    assert len(parts) == 32
    assert all(len(part) == 2 and part == part.upper() for part in parts)


def test_certificate_is_p256_and_long_lived(tmp_path: Path) -> None:
    ident = identity.load_or_create(tmp_path)
    assert ident.private_key.curve.name == "secp256r1"
    lifetime = ident.certificate.not_valid_after_utc - ident.certificate.not_valid_before_utc
    assert lifetime.days >= 3650


def test_concurrent_first_runs_agree(tmp_path: Path) -> None:
    code = "import sys;from pathlib import Path;from zcall import identity;"
    code += "print(identity.load_or_create(Path(sys.argv[1])).zid.hex())"
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    zids = {proc.communicate(timeout=60)[0].strip() for proc in procs}
    assert len(zids) == 1


def test_damaged_identity_is_a_clear_error(tmp_path: Path) -> None:
    identity.load_or_create(tmp_path)
    (tmp_path / "zid").write_text("not hex\n")
    with pytest.raises(identity.IdentityError, match="unusable"):
        identity.load_or_create(tmp_path)


def test_mismatched_key_is_refused(tmp_path: Path) -> None:
    identity.load_or_create(tmp_path / "a")
    identity.load_or_create(tmp_path / "b")
    (tmp_path / "a" / "key.pem").write_bytes((tmp_path / "b" / "key.pem").read_bytes())
    with pytest.raises(identity.IdentityError, match="does not belong"):
        identity.load_or_create(tmp_path / "a")


def test_a_leftover_temporary_file_cannot_widen_the_key(tmp_path: Path) -> None:
    # A stale temporary file (same name a crashed run with our pid would use), readable by everyone: writing
    # through it must not keep its mode, nor follow it if it is a link.
    tmp_path.chmod(0o700)
    for name in ("key.pem", "cert.pem", "zid"):
        stale = tmp_path / f".{name}.{os.getpid()}.tmp"
        stale.write_bytes(b"old")
        stale.chmod(0o644)
    identity.load_or_create(tmp_path)
    for name in ("key.pem", "cert.pem", "zid"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name


def test_a_key_found_readable_by_others_is_made_owner_only(tmp_path: Path) -> None:
    identity.load_or_create(tmp_path)
    (tmp_path / "key.pem").chmod(0o644)  # a careless copy or restore
    identity.load_or_create(tmp_path)
    assert stat.S_IMODE((tmp_path / "key.pem").stat().st_mode) == 0o600


def test_the_zid_file_reads_without_the_crypto_stack(tmp_path: Path) -> None:
    """The TUI's first screen reads the ZID zcall.identity wrote, through zcall.zidfile alone."""
    zid = identity.load_or_create(tmp_path).zid
    assert zidfile.read(tmp_path) == zid
    assert zidfile.read(tmp_path / "nowhere") is None
    (tmp_path / zidfile.FILE_NAME).write_bytes(zid.hex().encode() + b" " * zidfile.MAX_FILE_BYTES)
    assert zidfile.read(tmp_path) is None  # over the size limit: not read on
    (tmp_path / zidfile.FILE_NAME).write_bytes(b"\xff" * 24)
    assert zidfile.read(tmp_path) is None


@given(st.text(max_size=40) | st.from_regex(r"\s*[0-9a-fA-F ]{20,30}\s*", fullmatch=True))
def test_zid_parse_takes_24_hex_digits_and_nothing_else(text: str) -> None:
    try:
        zid = zidfile.parse(text)
    except ValueError:
        assert not re.fullmatch(r"[0-9a-fA-F]{24}", text.strip())
    else:
        assert len(zid) == zidfile.ZID_BYTES and zid.hex() == text.strip().lower()
