"""The optional aor= TXT key: a unit's server address, how others reach it when the LAN path fails."""

from __future__ import annotations

import pytest

from zcall.discovery.service import TxtError, decode_announcement, encode_txt

ZID = bytes(range(12))


def _props(txt: dict[str, str]) -> dict[str, bytes | None]:
    return {k: v.encode() for k, v in txt.items()}


def test_aor_round_trips_and_is_optional() -> None:
    with_aor = decode_announcement(_props(encode_txt(ZID, 5060, "desk", "0.1.0", "alice@sip.example.org")))
    assert with_aor.aor == "alice@sip.example.org"
    assert decode_announcement(_props(encode_txt(ZID, 5060, "desk", "0.1.0"))).aor is None


@pytest.mark.parametrize("aor", ["alice", "@host", "a@b c", "a@" + "h" * 70, "a\x00@host", "a@host;x=<y>"])
def test_bad_aor_is_refused_both_ways(aor: str) -> None:
    with pytest.raises(ValueError):
        encode_txt(ZID, 5060, "desk", "0.1.0", aor)
    props = _props(encode_txt(ZID, 5060, "desk", "0.1.0"))
    props["aor"] = aor.encode()
    with pytest.raises(TxtError):
        decode_announcement(props)
