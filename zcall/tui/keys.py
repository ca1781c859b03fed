"""Keys of the zcall TUI, and how a desk unit's 4–6 hardware buttons map onto them.

The firmware's gpio-key overlay turns each button into an ordinary key code, so the TUI needs no GPIO code:

    button        key code   Home            Incoming   In call                    Screens
    ----------    --------   -------------   --------   ------------------------   -------
    1 UP          Up         previous peer   -          volume up                  move
    2 DOWN        Down       next peer       -          volume down                move
    3 OK (green)  Enter      call the peer   answer     words match (verify)       choose
    4 BACK (red)  Escape     -               reject     hang up                    back
    5 MUTE        m          -               -          mute / unmute              -
    6 DIFFER      n          -               -          words differ: hang up      -

Four buttons (1–4) are enough to use the phone: the words-differ case is covered by BACK, which hangs up.
The full keyboard has more: d dial a SIP URI, t trust, s settings, l log, q quit (Home); y/n words match or
differ, h hang up, +/- volume (In call); a/r answer or reject (Incoming). The footer always shows them.
"""

from __future__ import annotations

from typing import Final

HARDWARE_KEYS: Final = {
    "up": "UP",
    "down": "DOWN",
    "enter": "OK",
    "escape": "BACK",
    "m": "MUTE",
    "n": "DIFFER",
}
VOLUME_STEP: Final = 10
