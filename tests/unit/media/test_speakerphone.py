"""The speakerphone wrapping (zcall/media/speakerphone.py): when a call's devices get echo cancellation."""

from __future__ import annotations

import pytest

from zcall.media.speakerphone import wanted


@pytest.mark.parametrize(("mode", "audio_in", "audio_out", "on"), [
    ("auto", "default", "default", True),
    ("auto", "USB Headset", "USB Headset", False),
    ("auto", "file:x.wav", "default", False),
    ("auto", "default", "null", False),
    ("on", "USB Headset", "USB Headset", True),
    ("off", "default", "default", False),
])
def test_auto_is_on_for_a_speaker_and_microphone(mode: str, audio_in: str, audio_out: str, on: bool) -> None:
    assert wanted(mode, audio_in, audio_out) is on


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="echo_cancel"):
        wanted("maybe", "default", "default")
