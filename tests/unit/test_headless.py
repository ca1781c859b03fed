"""The headless runner's bookkeeping: which events end the run and with what exit code (no phone needed)."""

from __future__ import annotations

import argparse

from zcall import events, headless
from zcall.events import EndCause
from zcall.exitcodes import ExitCode


def _runner() -> headless._Runner:
    args = argparse.Namespace(exit_after_call=True, hangup_after=None)
    return headless._Runner(None, args)  # type: ignore[arg-type]  # the phone is not used by on_event


def _secure(call_id: str) -> events.Secure:
    return events.Secure(id=call_id, method="dtls-srtp", srtp_profile="AES_CM_128_HMAC_SHA1_80")


def _ended(call_id: str, cause: EndCause) -> events.Ended:
    return events.Ended(id=call_id, reason=str(cause), duration_s=1.0, cause=cause)


def test_a_lan_call_falling_back_to_the_server_does_not_end_the_run() -> None:
    runner = _runner()
    runner.on_event(_ended("1", EndCause.FALLBACK))
    assert not runner.done.is_set()
    runner.on_event(_secure("2"))
    runner.on_event(_ended("2", EndCause.REMOTE_HANGUP))
    assert runner.done.is_set() and runner.exit_code == ExitCode.OK


def test_the_first_ended_call_decides_the_code() -> None:
    runner = _runner()
    runner.on_event(_secure("1"))
    runner.on_event(events.Alert(id="1", alert=events.AlertKind.SAS_MISMATCH, message="words differ"))
    runner.on_event(_ended("1", EndCause.ALARM))
    runner.on_event(_ended("2", EndCause.BUSY))
    assert runner.exit_code == ExitCode.ALERT
    never_secure = _runner()
    never_secure.on_event(_ended("3", EndCause.BUSY))
    assert never_secure.exit_code == ExitCode.FAILED


def test_ended_calls_leave_no_bookkeeping_behind() -> None:
    """A unit that runs for months keeps nothing per ended call (the soak's heap diff found every call's id
    kept in the runner's sets)."""
    runner = headless._Runner(None, argparse.Namespace(exit_after_call=False, hangup_after=None))  # type: ignore[arg-type]
    for n in range(100):
        runner.on_event(_secure(str(n)))
        runner.on_event(events.Alert(id=str(n), alert=events.AlertKind.SAS_MISMATCH, message="words differ"))
        runner.on_event(_ended(str(n), EndCause.LOCAL_HANGUP))
    assert not runner._secure and not runner._alerted and not runner.done.is_set()
