"""The TUI's folded state, meters, SAS rendering and settings form, with real inputs."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from tests.tui import scenes
from zcall import config as configmod
from zcall import events
from zcall.tui.model import KnownDevice, PhoneView, describe
from zcall.tui.screens.incall import clock_text
from zcall.tui.screens.settings import with_values
from zcall.tui.widgets.meter import level_text, loss_percent, quality_text, rms_dbfs
from zcall.tui.widgets.sas import big, sas_lines


def test_fold_home_and_call() -> None:
    view = PhoneView(clock=lambda: 100.0)
    view.set_known([KnownDevice(scenes.CAROL_ZID.hex(), "Carol", False, True)])
    for event in scenes.home_events():
        view.apply(event)
    assert (view.name, view.zid) == ("desk-a", scenes.ME_ZID)
    rows = view.peer_rows()
    assert [(r.label, r.trust) for r in rows] == [("Carol", "known"), ("bob-desk", "new"), ("dave", "new")]
    assert [r.peer.name for r in rows if r.busy] == ["dave"]  # the last call to dave got 486
    assert view.active is None
    for event in scenes.in_call_events():
        view.apply(event)
    call = view.active
    assert call is not None and call.secure is not None and call.stats is not None
    assert call.state == "secure" and not call.muted
    view.apply(events.Peer(action="down", name="bob-desk", zid=scenes.BOB_ZID.hex()))
    assert scenes.BOB_ZID.hex() not in view.peers
    assert len(view.log) == view.logged == 6 + 6 + 1


def test_alarm_mutes_and_survives_the_end() -> None:
    view = PhoneView(clock=lambda: 0.0)
    for event in scenes.alarm_events():
        view.apply(event)
    call = view.active
    assert call is not None and call.alarm is not None and call.alarm.alert == "cache_mismatch"
    assert call.muted
    view.apply(events.Ended(id=call.id, reason="cache mismatch", duration_s=3.0))
    call = view.calls[call.id]  # kept a while after the end, for the screen that shows it
    assert view.active is None and call.ended is not None and call.alarm is not None
    assert view.elapsed(call) == 3.0


def test_describe_is_readable_and_never_shows_keys() -> None:
    line = describe(scenes.secure_event("x"))
    assert "X255" in line and "cache match" in line and "Tambourine" not in line
    assert describe(events.Alert(id="x", alert="cache_mismatch", message="m")).startswith("ALERT")
    assert describe(events.Error(message="boom")) == "error: boom"
    ringing = events.Call("c", "incoming", "in", "vm", "sip:zcall@10.0.0.7:5060", "10.0.0.7", 5062)
    assert describe(ringing) == "call c in vm (sip:zcall@10.0.0.7:5060 at 10.0.0.7:5062): incoming"
    assert describe(events.Call("c", "secure", "in", "vm", "sip:zcall@10.0.0.7:5060", "10.0.0.7", 5062)) == (
        "call c in vm: secure"
    )


def test_meters() -> None:
    tone = (np.sin(np.arange(960) / 8.0) * 16384).astype("<i2").tobytes()
    assert -10 < rms_dbfs(tone) < -8  # a half-scale sine is about -9 dBFS
    assert math.isinf(rms_dbfs(bytes(960 * 2))) and math.isinf(rms_dbfs(b""))
    assert "silent" in level_text(-math.inf).plain and "no input" in level_text(None).plain
    stats = events.Stats(
        id="a", sent=0, received=90, lost=10, jitter_ms=1, rtt_ms=None, jitter_buffer_ms=0, mos=2.5
    )
    assert loss_percent(stats) == 10.0
    text = quality_text(stats).plain
    assert "loss 10.0%" in text and "RTT -" in text and "MOS 2.5" in text
    assert clock_text(62) == "01:02" and clock_text(3723) == "1:02:03"


def test_sas_lines_large_and_narrow() -> None:
    rows = sas_lines(("tambourine", "Yucatan"), "B256", 60)
    assert len(rows) == len(big("tambourine")) + len(big("Yucatan"))
    assert max(len(r) for r in rows) <= 60
    assert sas_lines(("tambourine", "Yucatan"), "B256", 30)[0] == "T A M B O U R I N E"
    assert len(sas_lines(("k7xq",), "B32", 60)) == len(big("k7xq"))


def test_settings_form_is_checked_like_the_file() -> None:
    values = {
        "name": "desk",
        "audio_in": "tone:440",
        "audio_out": "null",
        "server_uri": "",
        "server_user": "",
        "server_password": "",
    }
    config = with_values(configmod.Config(), values, "B32")
    assert config.unit.name == "desk" and config.security.sas_types == ("B32", "B256")
    assert config.audio.input == "tone:440"
    with pytest.raises(configmod.ConfigError, match=r"server\.uri"):
        with_values(configmod.Config(), {**values, "server_uri": "http://x"}, "B256")
    with pytest.raises(configmod.ConfigError, match=r"unit\.name"):
        with_values(configmod.Config(), {**values, "name": "x" * 64}, "B256")


def test_two_units_announcing_one_name_are_both_listed() -> None:
    view = PhoneView()
    for zid in ("aa" * 12, "bb" * 12):
        view.apply(events.Peer(action="up", name="bob", zid=zid, address="10.0.0.2", port=5060))
    assert sorted(row.peer.zid for row in view.peer_rows()) == ["aa" * 12, "bb" * 12]
    view.apply(events.Peer(action="down", name="bob", zid="aa" * 12))
    assert [row.peer.zid for row in view.peer_rows()] == ["bb" * 12]


def test_server_path_calls_say_whether_they_have_words() -> None:
    words = dataclasses.replace(
        scenes.secure_event("s1"), method="dtls-srtp", cipher=None, auth=None, fingerprint_ok=True,
        verifiable=True,
    )  # fmt: skip
    none = events.Secure(id="s2", method="dtls-srtp", srtp_profile="AEAD_AES_128_GCM", fingerprint_ok=True,
                         verifiable=False)  # fmt: skip
    assert "words by ZRTP" in describe(words) and "cache match" in describe(words)
    assert "not verifiable" in describe(none)
    view = PhoneView(clock=lambda: 0.0)
    for call_id, secure in (("s1", words), ("s2", none)):
        state = events.CallState.DIALING
        view.apply(events.Call(id=call_id, state=state, direction="out", peer="sips:bob@x"))
        view.apply(secure)
        call = view.calls[call_id]
        standing = view.who(call).standing
        assert standing == ("known, not verified" if call_id == "s1" else "not verifiable"), standing
