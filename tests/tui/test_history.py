"""zcall.history on real files: folding the phone's events, surviving a restart, bounds, owner-only mode,
and hostile file contents (skipped and counted, never raised)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from zcall import events
from zcall.history import MAX_ENTRIES, MAX_LINE, CallRecord, History, Reject, parse_line

BOB = "b0b0b0b0b0b0b0b0b0b0b0b0"
DAVE = "da7eda7eda7eda7eda7eda7e"


def record(n: int, **kw: object) -> CallRecord:
    fields: dict[str, object] = {
        "at": 1_795_000_000.0 + n, "direction": "out", "peer": f"peer{n}", "zid": BOB,
        "uri": "sip:zcall@10.0.0.5:5060", "reason": "remote hangup", "duration_s": 3.0, "secure": True,
    }
    return CallRecord(**{**fields, **kw})  # type: ignore[arg-type]


def test_events_make_records_that_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "data" / "history.jsonl"
    history = History(path, clock=lambda: 1_795_000_000.0)
    for event in (
        events.Peer(action="up", name="bob-desk", zid=BOB, address="10.0.0.5", port=5062),
        events.Call(id="c1", state="dialing", direction="out", peer="bob-desk"),
        events.Call(id="c1", state="secure", direction="out", peer="bob-desk"),
        events.Secure(id="c1", method="zrtp", srtp_profile="x", peer_zid=BOB, cache="new", verified=False),
        events.Ended(id="c1", reason="remote hangup", duration_s=12.5),
        events.Call(id="c2", state="incoming", direction="in", peer="sip:carol@10.0.0.9"),
        events.Ended(id="c2", reason="603 Decline", duration_s=0.0),
        events.Ended(id="unknown", reason="never seen", duration_s=1.0),  # nothing to record
        # dave calls in from off the LAN list (mDNS off): his own URI is what calls him back
        events.Call(
            id="c3", state="incoming", direction="in", peer="dave", uri="sip:zcall@10.0.0.7:5060",
            address="10.0.0.7", port=5060,
        ),
        events.Secure(id="c3", method="zrtp", srtp_profile="x", peer_zid=DAVE, cache="new", verified=False),
        events.Ended(id="c3", reason="remote hangup", duration_s=3.0),
    ):
        history.hear(event)
    assert [r.peer for r in history.entries] == ["dave", "sip:carol@10.0.0.9", "bob-desk"]  # newest first
    dave, carol, bob = history.entries
    assert (dave.zid, dave.uri) == (DAVE, "sip:zcall@10.0.0.7:5060")
    assert (bob.zid, bob.uri, bob.secure, bob.duration_s) == (BOB, "sip:zcall@10.0.0.5:5062", True, 12.5)
    assert (carol.zid, carol.uri, carol.secure) == ("", "sip:carol@10.0.0.9", False)
    assert path.stat().st_mode & 0o777 == 0o600
    again = History(path)
    assert list(again.entries) == list(history.entries) and not again.rejected
    assert again.last_uri(BOB) == "sip:zcall@10.0.0.5:5062" and again.last_uri("0" * 24) == ""


def test_the_file_stays_bounded_and_keeps_the_newest(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    history = History(path)
    for n in range(2 * MAX_ENTRIES + 7):
        history.add(record(n))
    assert len(history.entries) == MAX_ENTRIES
    assert len(path.read_text().splitlines()) < 2 * MAX_ENTRIES
    again = History(path)
    assert [r.peer for r in again.entries][:2] == [f"peer{2 * MAX_ENTRIES + 6}", f"peer{2 * MAX_ENTRIES + 5}"]
    assert len(again.entries) == MAX_ENTRIES


def test_a_readable_file_is_tightened_and_a_symlink_is_not_followed(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    path.write_text(record(1).to_json() + "\n")
    os.chmod(path, 0o644)
    history = History(path)
    history.add(record(2))
    assert path.stat().st_mode & 0o777 == 0o600
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text(record(3).to_json() + "\n")
    link = tmp_path / "link.jsonl"
    link.symlink_to(elsewhere)
    linked = History(link)
    assert not linked.entries  # not read through the link
    linked.add(record(4))  # nor written through it; the call is not disturbed
    assert elsewhere.read_text() == record(3).to_json() + "\n"


def test_bad_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    good = record(1).to_json()
    bad_zid = json.dumps({**json.loads(good), "zid": "not-hex"})
    lines = [good, "x" * (MAX_LINE + 1), "{not json", "[1, 2]", bad_zid, json.dumps({"at": 1}), good, ""]
    path.write_text("\n".join(lines))
    history = History(path)
    assert len(history.entries) == 2
    assert history.rejected == {
        Reject.TOO_LONG: 1, Reject.NOT_JSON: 1, Reject.NOT_A_RECORD: 2, Reject.BAD_FIELD: 1
    }


def test_only_the_end_of_a_huge_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    with path.open("w") as handle:
        for n in range(20_000):
            handle.write(record(n).to_json() + "\n")
    history = History(path)
    assert len(history.entries) == MAX_ENTRIES and history.entries[0].peer == "peer19999"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=MAX_LINE + 50))
def test_any_line_parses_to_a_record_or_a_reason(line: str) -> None:
    parsed = parse_line(line)
    assert isinstance(parsed, (CallRecord, Reject))


@settings(max_examples=200, deadline=None)
@given(
    st.builds(
        record,
        st.integers(0, 10**6),
        direction=st.sampled_from(["in", "out"]),
        peer=st.text(max_size=100),
        reason=st.text(max_size=100),
        duration_s=st.floats(0, 1e6),
        secure=st.booleans(),
    )
)
def test_records_round_trip(item: CallRecord) -> None:
    assert parse_line(item.to_json()) == item


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["at", "direction", "peer", "zid", "uri", "reason", "duration_s",
                                         "secure", "extra"]),
                       st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=30))))
def test_json_objects_of_any_shape_never_raise(data: dict[str, object]) -> None:
    assert isinstance(parse_line(json.dumps(data)), (CallRecord, Reject))
