"""The linphonec fixture's parsers and config writer, on lines captured from Debian's linphonec 5.1.65.

No linphonec runs here: these pin the report formats the bench relies on, so a changed format fails loudly.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from tests.support.linphone import (
    MAX_LINE_CHARS,
    ConsoleSas,
    LinphoneConfig,
    LinphoneError,
    LinphoneParseError,
    LogSecrets,
    LogToken,
    Negotiated,
    corrupt_retained_secrets,
    parse_console_sas,
    parse_log_algorithms,
    parse_log_secrets,
    parse_log_time,
    parse_log_token,
    read_zid_cache,
    suite_values,
)

T = "2026-11-23 17:45:10:325 "


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Call 1 is fully encrypted and auth token is 1gmz.", ConsoleSas(1, "1gmz", True)),
        ("linphonec> Call 12 is fully encrypted and auth token is Aztec:direction.",
         ConsoleSas(12, "Aztec:direction", True)),
        ("Call 3 is not fully encrypted and auth token is w1zq.", ConsoleSas(3, "w1zq", False)),
        ("Call 1 with sip:b@10.140.1.2 connected.", None),
        ("Media streams established with sip:b@10.140.1.2 for call 1 (audio).", None),
    ],
)  # fmt: skip
def test_console_sas(line: str, expected: ConsoleSas | None) -> None:
    assert parse_console_sas(line) == expected


@pytest.mark.parametrize(
    "line",
    [
        "Call 1 is fully encrypted and auth token is .",
        "Call 1 is fully encrypted and auth token is 1g mz.",
        "Call 1 is fully encrypted and auth token is 1GMZ.",  # bzrtp's B32 is lowercase
        "Call 1 is fully encrypted and auth token is Aztec:direction:extra.",
        "Call 1 is fully encrypted and auth token is 1gmz;" + "x" * MAX_LINE_CHARS + ".",
    ],
)
def test_console_sas_rejects_malformed(line: str) -> None:
    with pytest.raises(LinphoneParseError):
        parse_console_sas(line)


def test_log_reports() -> None:
    secrets = T + "mediastreamer-message-ZRTP secrets on: SAS is w1zq previously verified yes on session [0]"
    assert parse_log_secrets(secrets) == LogSecrets("w1zq", True)
    assert parse_log_secrets(secrets.replace("yes", "no")) == LogSecrets("w1zq", False)
    assert parse_log_token(T + "liblinphone-message-Authentication token is iz1c(unverified)") == LogToken(
        "iz1c", False
    )
    assert parse_log_token(T + "liblinphone-message-Authentication token is Aztec:direction(verified)") == (
        LogToken("Aztec:direction", True)
    )
    algo = (
        T + "mediastreamer-message-ZRTP algo used during negotiation: Cipher: AES-128"
        " - KeyAgreement: DHM-3072 - Hash: SHA-256 - AuthTag: HMAC-SHA1-80 - Sas Rendering: Base32"
    )
    assert parse_log_algorithms(algo) == Negotiated("AES1", "DH3k", "S256", "HS80", "B32")
    x255 = algo.replace("DHM-3072", "ECDH-255").replace("Base32", "PGP-WordList")
    x255 = x255.replace("AES-128", "AES-256")
    assert parse_log_algorithms(x255) == Negotiated("AES3", "X255", "S256", "HS80", "B256")
    assert parse_log_time(secrets) == datetime(2026, 11, 23, 17, 45, 10, 325000)
    for parse in (parse_log_secrets, parse_log_token, parse_log_algorithms):
        assert parse(T + "liblinphone-message-All streams are encrypted, key exchanged using ZRTP") is None
    assert parse_log_time("\tStream #0 (audio) | cpu: 5.07%") is None


@pytest.mark.parametrize(
    ("parse", "line"),
    [
        (parse_log_secrets, T + "ZRTP secrets on: SAS is w1zq previously verified maybe on session [0x1]"),
        (parse_log_secrets, T + "ZRTP secrets on: SAS is w1zq!x previously verified no on session [0x1]"),
        (parse_log_token, T + "liblinphone-message-Authentication token is iz1c(trusted)"),
        (parse_log_token, T + "liblinphone-message-Authentication token is (verified)"),
        (parse_log_algorithms, T + "ZRTP algo used during negotiation: Cipher: AES-128"
         " - KeyAgreement: KYBER-512 - Hash: SHA-256 - AuthTag: HMAC-SHA1-80 - Sas Rendering: Base32"),
        (parse_log_time, "2026-13-45 17:45:10:325 a month that does not exist"),
        (parse_log_time, T + "x" * MAX_LINE_CHARS),
    ],
)  # fmt: skip
def test_log_reports_reject_malformed(parse: Callable[[str], object], line: str) -> None:
    with pytest.raises(LinphoneParseError):
        parse(line)


def test_config_sets_addresses_encryption_suites_and_private_databases(tmp_path: Path) -> None:
    cfg = LinphoneConfig(tmp_path, "10.1.2.3", "alice", 5070, "udp", (7000, 7010), "zrtp", True,
                         key_agreements=["X255", "DH3k"], sas_types=["B256"])  # fmt: skip
    text = cfg.render()
    for line in (
        "contact=sip:alice@10.1.2.3", "bind_address=10.1.2.3", "auto_net_state_mon=0", "sip_port=5070",
        "sip_tcp_port=0", "sip_tls_port=0", "media_encryption=zrtp", "media_encryption_mandatory=1",
        "zrtp_key_agreements_suites=MS_ZRTP_KEY_AGREEMENT_X255, MS_ZRTP_KEY_AGREEMENT_DH3K",
        "zrtp_sas_suites=MS_ZRTP_SAS_B256", "audio_rtp_port=7000-7010",
        f"zrtp_secrets_db_uri={tmp_path / 'zrtp-secrets.db'}", f"uri={tmp_path / 'linphone.db'}",
    ):  # fmt: skip
        assert line in text.splitlines(), line
    named = LinphoneConfig(tmp_path, "10.1.2.3", "alice", display_name="Alice L").render().splitlines()
    assert 'contact="Alice L" <sip:alice@10.1.2.3>' in named
    with pytest.raises(ValueError, match="display name"):
        LinphoneConfig(tmp_path, "10.1.2.3", display_name='x"\n[sip]').render()
    assert "zrtp_cipher_suites" not in text  # unset lists stay out: an empty one would break ZRTP
    tcp = LinphoneConfig(tmp_path, "10.1.2.3", transport="tcp", media_encryption="none").render().splitlines()
    assert "sip_port=0" in tcp and "sip_tcp_port=5060" in tcp and "media_encryption=none" in tcp


def test_suite_names_are_checked() -> None:
    assert suite_values("auth_tags", ["HS32"]) == "MS_ZRTP_AUTHTAG_HS32"
    assert suite_values("hashes", ["S384", "S256"]) == "MS_ZRTP_HASH_S384, MS_ZRTP_HASH_S256"
    with pytest.raises(ValueError, match="not offered"):
        suite_values("key_agreements", ["EC25"])  # Debian's bzrtp has no NIST curves
    with pytest.raises(ValueError, match="empty"):
        suite_values("sas_types", [])


def test_read_zid_cache(tmp_path: Path) -> None:
    path = tmp_path / "cache"
    assert read_zid_cache(path) == (None, [])
    # bzrtp's schema (as found in a linphonec $HOME/.linphone-zidcache), trimmed to the columns we read.
    with sqlite3.connect(path) as db:
        db.executescript(
            "CREATE TABLE ziduri (zuid INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, zid BLOB NOT NULL,"
            " selfuri TEXT NOT NULL, peeruri TEXT NOT NULL, active INTEGER DEFAULT 0);"
            "CREATE TABLE zrtp (zuid INTEGER NOT NULL UNIQUE, rs1 BLOB, rs2 BLOB, aux BLOB, pbx BLOB,"
            " pvs BLOB);"
        )
        add = "INSERT INTO ziduri VALUES (?, ?, 'sip:a@10.0.0.1', ?, 1)"
        db.execute(add, (1, bytes.fromhex("aa" * 12), "self"))
        db.execute(add, (2, b"\x01" * 12, "sip:b@10.0.0.2"))
        db.execute(add, (3, b"\x02" * 12, "sip:c@10.0.0.3"))
        db.execute("INSERT INTO zrtp VALUES (2, ?, NULL, NULL, NULL, ?)", (b"s" * 32, b"\x01"))
        db.execute("INSERT INTO zrtp VALUES (3, ?, ?, NULL, NULL, ?)", (b"s" * 32, b"t" * 32, b"\x00"))
    own, peers = read_zid_cache(path)
    assert own == "aa" * 12
    assert [(p.zid, p.peer_uri, p.verified, p.has_rs1, p.has_rs2) for p in peers] == [
        ("01" * 12, "sip:b@10.0.0.2", True, True, False),
        ("02" * 12, "sip:c@10.0.0.3", False, True, True),
    ]
    rs1_before = sqlite3.connect(path).execute("SELECT rs1 FROM zrtp WHERE zuid = 3").fetchone()[0]
    corrupt_retained_secrets(path, "02" * 12)
    peer_c = read_zid_cache(path)[1][1]
    assert (peer_c.has_rs1, peer_c.has_rs2) == (True, False)
    assert sqlite3.connect(path).execute("SELECT rs1 FROM zrtp WHERE zuid = 3").fetchone()[0] != rs1_before
    with pytest.raises(LinphoneError, match="no retained secrets"):
        corrupt_retained_secrets(path, "03" * 12)


def test_call_failure_ignores_the_previous_calls_end() -> None:
    from tests.support.linphone import _CallFailure

    failed = _CallFailure()
    # The previous call's end can trail the mark the wait starts from: it must not fail the new call.
    assert not failed("Call 2 with sip:alice@10.0.0.1 ended (No error).")
    assert not failed("Receiving new incoming call from \"Alice L\" <sip:alice@10.0.0.1>, assigned id 3")
    assert failed("Call 3 with \"Alice L\" <sip:alice@10.0.0.1> ended (Call declined).")
    after_answer = _CallFailure()
    assert not after_answer("Call 4 with sip:alice@10.0.0.1 connected.")
    assert after_answer("Call 4 with sip:alice@10.0.0.1 error.")
