"""Fixed scenes for the snapshot tests: an app with no engine, fed contract events with fixed ids, ZIDs and
times, and a real trust cache in a temporary home. Nothing random or clock-dependent reaches the screen."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from zcall import config as configmod
from zcall import events
from zcall import settings as settingsmod
from zcall.paths import Paths
from zcall.tui.app import ZcallApp
from zcall.zrtp.cache import ZrtpCache

NOW = 1_795_000_000.0  # 2026-11-18 (UTC): every clock on screen reads from here
ME_ZID = "0a1b2c3d4e5f60718293a4b5"
BOB_ZID = bytes.fromhex("b0b0b0b0b0b0b0b0b0b0b0b0")
CAROL_ZID = bytes.fromhex("ca401ca401ca401ca401ca40")
DAVE_ZID = bytes.fromhex("da7eda7eda7eda7eda7eda7e")


def make_app(home: Path) -> ZcallApp:
    paths = Paths.for_home(home)
    paths.ensure_private_dirs()
    cache = ZrtpCache(paths.cache_file)
    cache.touch(BOB_ZID, NOW - 86400 * 3, name="bob")
    cache.store_new_rs1(BOB_ZID, b"\x01" * 32, 3600 * 24 * 30, NOW - 86400 * 3)
    cache.set_verified(BOB_ZID, True)
    cache.touch(BOB_ZID, NOW - 600)
    cache.touch(CAROL_ZID, NOW - 86400, name="Carol (front desk)")
    cache.store_new_rs1(CAROL_ZID, b"\x02" * 32, 3600 * 24 * 30, NOW - 86400)
    settings = dataclasses.replace(settingsmod.merge(configmod.Config()), name="desk-a")
    return ZcallApp(None, paths, cache=cache, clock=lambda: NOW, live=False, settings=settings)


def home_events() -> list[events.Event]:
    return [
        events.Ready(name="desk-a", zid=ME_ZID, sip_uri="sip:zcall@10.0.0.2:5060"),
        events.Peer(action="up", name="bob-desk", zid=BOB_ZID.hex(), address="10.0.0.5", port=5060),
        events.Peer(action="up", name="dave", zid=DAVE_ZID.hex(), address="10.0.0.7", port=5060),
        events.Peer(action="up", name="carol", zid=CAROL_ZID.hex(), address="10.0.0.6", port=5062),
        events.Call(id="c0ffee01", state="dialing", direction="out", peer="dave"),
        events.Ended(id="c0ffee01", reason="486 Busy Here", duration_s=0.0, cause=events.EndCause.BUSY),
    ]


def secure_event(call_id: str, cache: str = "match", verified: bool = False) -> events.Secure:
    return events.Secure(
        id=call_id,
        method="zrtp",
        srtp_profile="AES_CM_128_HMAC_SHA1_80",
        sas="Tambourine Yucatan",
        sas_type="B256",
        sas_words=("tambourine", "Yucatan"),
        hash="S256",
        cipher="AES1",
        auth="HS80",
        key_agreement="X255",
        peer_zid=BOB_ZID.hex(),
        cache="mismatch" if cache == "mismatch" else ("new" if cache == "new" else "match"),
        verified=verified,
    )


def in_call_events(call_id: str = "5ca1ab1e") -> list[events.Event]:
    return [
        events.Call(id=call_id, state="dialing", direction="out", peer="bob-desk"),
        events.Call(id=call_id, state="ringing", direction="out", peer="bob-desk"),
        events.Call(id=call_id, state="answered", direction="out", peer="bob-desk"),
        events.Call(id=call_id, state="secure", direction="out", peer="bob-desk"),
        secure_event(call_id),
        events.Stats(
            id=call_id, sent=250, received=248, lost=2, jitter_ms=4.2, rtt_ms=18.0, jitter_buffer_ms=40.0,
            mos=4.3,
        ),
    ]


def alarm_events(call_id: str = "a1a2a3a4") -> list[events.Event]:
    return [
        events.Call(id=call_id, state="incoming", direction="in", peer="bob-desk"),
        events.Call(id=call_id, state="answered", direction="in", peer="bob-desk"),
        events.Alert(id=call_id, alert="cache_mismatch", message="engine text"),
        events.Call(id=call_id, state="secure", direction="in", peer="bob-desk"),
        secure_event(call_id, cache="mismatch"),
    ]


def b32_events(call_id: str = "b32b32b3") -> list[events.Event]:
    return [
        events.Call(id=call_id, state="dialing", direction="out", peer="sip:linphone@10.0.0.9"),
        events.Call(id=call_id, state="answered", direction="out", peer="sip:linphone@10.0.0.9"),
        events.Call(id=call_id, state="secure", direction="out", peer="sip:linphone@10.0.0.9"),
        events.Secure(
            id=call_id, method="zrtp", srtp_profile="AES_CM_128_HMAC_SHA1_32", sas="k7xq", sas_type="B32",
            sas_words=("k7xq",), hash="S256", cipher="AES1", auth="HS32", key_agreement="DH3k",
            peer_zid=DAVE_ZID.hex(), cache="new", verified=False,
        ),
    ]


def carol_call_events(call_id: str = "ca401ca4") -> list[events.Event]:
    return [
        events.Call(id=call_id, state="incoming", direction="in", peer="carol"),
        events.Call(id=call_id, state="answered", direction="in", peer="carol"),
        events.Secure(
            id=call_id, method="zrtp", srtp_profile="AES_CM_128_HMAC_SHA1_80", peer_zid=CAROL_ZID.hex(),
            cache="match", verified=False,
        ),
        events.Ended(id=call_id, reason="remote hangup", duration_s=754.0),
    ]


def server_call(call_id: str, peer: str) -> list[events.Event]:
    """A call placed through the server, up to the moment its keys are agreed."""
    return [
        events.Call(id=call_id, state="dialing", direction="out", peer=peer, uri=peer),
        events.Call(id=call_id, state="answered", direction="out", peer=peer, uri=peer),
    ]


def unbound_events(call_id: str = "d715b0d0") -> list[events.Event]:
    """Bob's unit through the server, but the DTLS session keying the audio is not his: the engine raises
    channel_binding_mismatch before the secure event (zcall/calltrust.py), and keeps the microphone muted."""
    peer = "sip:bob@sip.example.org"
    return [
        *server_call(call_id, peer),
        events.Alert(id=call_id, alert="channel_binding_mismatch", message="engine text"),
        events.Call(id=call_id, state="secure", direction="out", peer=peer, uri=peer),
        dataclasses.replace(
            secure_event(call_id), method="dtls-srtp", cipher=None, auth=None, fingerprint_ok=True,
            verifiable=True,
        ),
    ]


def downgrade_events(call_id: str = "d0e1d0e1") -> list[events.Event]:
    """Bob, verified, reached through the server without words: downgrade (zcall/keying.py), mic live."""
    peer = "sip:bob@sip.example.org"
    return [
        *server_call(call_id, peer),
        events.Alert(id=call_id, alert="downgrade", message="engine text"),
        events.Call(id=call_id, state="secure", direction="out", peer=peer, uri=peer),
        events.Secure(
            id=call_id, method="dtls-srtp", srtp_profile="AES_CM_128_HMAC_SHA1_80", fingerprint_ok=True,
            verifiable=False,
        ),
    ]
