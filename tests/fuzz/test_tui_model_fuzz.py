"""Any sequence of contract events, in any order, folds into a consistent TUI state without raising."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from zcall import events
from zcall.tui.model import MAX_ENDED, MAX_LOG, PhoneView

ids = st.sampled_from(["a", "b", "c"])
names = st.sampled_from(["bob", "carol", "", "x" * 80])
states = st.sampled_from(["dialing", "ringing", "incoming", "answered", "secure", "ended"])
text = st.text(max_size=40)

event_strategy = st.one_of(
    st.builds(events.Ready, name=names, zid=st.just("00" * 12), sip_uri=text),
    st.builds(
        events.Peer,
        action=st.sampled_from(["up", "down"]),
        name=names,
        zid=st.sampled_from(["00" * 12, "11" * 12]),
        address=st.none() | st.just("10.0.0.1"),
        port=st.none() | st.integers(1, 65535),
    ),
    st.builds(events.Call, id=ids, state=states, direction=st.sampled_from(["in", "out"]), peer=names),
    st.builds(
        events.Secure,
        id=ids,
        method=st.just("zrtp"),
        srtp_profile=text,
        sas_words=st.none() | st.tuples(text, text),
        cache=st.sampled_from(["new", "match", "mismatch"]),
        verified=st.booleans(),
    ),
    st.builds(events.Alert, id=st.none() | ids, alert=st.sampled_from(["cache_mismatch", "x"]), message=text),
    st.builds(
        events.Stats, id=ids, sent=st.integers(0, 10**6), received=st.integers(0, 10**6),
        lost=st.integers(0, 10**6), jitter_ms=st.floats(0, 1e4), rtt_ms=st.none() | st.floats(0, 1e4),
        jitter_buffer_ms=st.floats(0, 1e4), mos=st.none() | st.floats(1, 5),
    ),
    st.builds(events.Ended, id=ids, reason=text, duration_s=st.floats(0, 1e6)),
    st.builds(events.Error, message=text),
    st.builds(events.RegistrationFailed, reason=text),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(event_strategy, max_size=60))
def test_any_event_sequence_folds(sequence: list[events.Event]) -> None:
    view = PhoneView(clock=lambda: 1000.0)
    for event in sequence:
        view.apply(event)
    assert len(view.log) == min(len(sequence), MAX_LOG) and view.logged == len(sequence)
    assert sum(call.ended is not None for call in view.calls.values()) <= MAX_ENDED
    rows = view.peer_rows()
    assert len(rows) == len(view.peers)
    active = view.active
    if active is not None:
        assert view.elapsed(active) >= 0.0
        assert active.alarm is None or active.muted
    for call in view.calls.values():
        who = view.who(call)
        assert who.claimed == call.peer and (who.standing == "") == (call.secure is None)
